//! `--local-workers N`: N storage workers inside the server process, on 127.0.0.1 with their data
//! under `<data-dir>/workers/<n>`, registering with this server over HTTP like any other worker.
//! One command then gives a working network for trying Disktro or for tests.

use std::path::Path;
use std::time::Duration;

use disktro_worker::{RunningWorker, WorkerConfig};

/// Start `count` workers that register at `server_url` with `join_token`.
pub async fn start(
    count: usize,
    data_dir: &Path,
    server_url: &str,
    join_token: &str,
    capacity: u64,
    heartbeat_interval: Duration,
) -> Result<Vec<RunningWorker>, disktro_worker::StartError> {
    let mut workers = Vec::with_capacity(count);
    for n in 0..count {
        let mut config = WorkerConfig::new(data_dir.join("workers").join(n.to_string()));
        config.capacity = capacity;
        config.server = Some(server_url.to_owned());
        config.join_token = Some(join_token.to_owned());
        config.zone = "local".to_owned();
        config.allowed_origins = vec![disktro_worker::config::origin_of(server_url)];
        config.heartbeat_interval = heartbeat_interval;
        workers.push(disktro_worker::start(config).await?);
    }
    Ok(workers)
}

/// Stop them all, in parallel.
pub async fn stop(workers: Vec<RunningWorker>) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in workers {
        tasks.spawn(w.shutdown());
    }
    while tasks.join_next().await.is_some() {}
}
