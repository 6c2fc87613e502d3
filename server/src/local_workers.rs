//! `--local-workers N`: N storage workers inside the server process, on 127.0.0.1 with their data
//! under `<data-dir>/workers/<n>`, registering with this server over HTTP like any other worker.
//! One command then gives a working network for trying Disktro or for tests. This is the server's
//! only use of the worker crate.

use std::path::Path;
use std::time::Duration;

use disktro_worker::WorkerConfig;
pub use disktro_worker::{RunningWorker as LocalWorker, StartError};

/// Start `count` workers that register at `server_url` with `join_token`.
pub async fn start(
    count: usize,
    data_dir: &Path,
    server_url: &str,
    join_token: &str,
    capacity: u64,
    heartbeat_interval: Duration,
) -> Result<Vec<LocalWorker>, StartError> {
    let mut workers = Vec::with_capacity(count);
    for n in 0..count {
        workers.push(start_one(n, data_dir, server_url, join_token, capacity, heartbeat_interval, None).await?);
    }
    Ok(workers)
}

/// Start worker `n` of [`start`] alone: with `listen`, on that address (a worker restarted where
/// readers knew it), else on a free port.
pub async fn start_one(
    n: usize,
    data_dir: &Path,
    server_url: &str,
    join_token: &str,
    capacity: u64,
    heartbeat_interval: Duration,
    listen: Option<std::net::SocketAddr>,
) -> Result<LocalWorker, StartError> {
    let mut config = WorkerConfig::new(data_dir.join("workers").join(n.to_string()));
    if let Some(listen) = listen {
        config.listen = listen;
    }
    config.capacity = capacity;
    config.server = Some(server_url.to_owned());
    config.join_token = Some(join_token.to_owned());
    config.zone = "local".to_owned();
    config.allowed_origins = browser_origins(server_url);
    config.heartbeat_interval = heartbeat_interval;
    disktro_worker::start(config).await
}

/// The origins a browser may show this server under: its own, and for a loopback server the
/// other loopback spelling too (people type `localhost` as often as `127.0.0.1`).
fn browser_origins(server_url: &str) -> Vec<String> {
    let origin = disktro_net::config::origin_of(server_url);
    let mut origins = vec![origin.clone()];
    for (a, b) in [("://127.0.0.1:", "://localhost:"), ("://localhost:", "://127.0.0.1:")] {
        if origin.contains(a) {
            origins.push(origin.replace(a, b));
        }
    }
    origins
}

/// Stop them all, in parallel.
pub async fn stop(workers: Vec<LocalWorker>) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in workers {
        tasks.spawn(w.shutdown());
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::browser_origins;

    #[test]
    fn loopback_servers_allow_both_spellings_and_others_only_their_own() {
        assert_eq!(
            browser_origins("http://127.0.0.1:3000"),
            ["http://127.0.0.1:3000", "http://localhost:3000"]
        );
        assert_eq!(
            browser_origins("http://localhost:3000/"),
            ["http://localhost:3000", "http://127.0.0.1:3000"]
        );
        assert_eq!(browser_origins("https://disktro.example"), ["https://disktro.example"]);
    }
}
