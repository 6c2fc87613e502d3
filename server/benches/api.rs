//! Server requests per second with the real `disktro-server` binary and 10 local workers, on
//! SQLite and (when `DISKTRO_TEST_POSTGRES_URL` names a server) PostgreSQL:
//!
//! - manifest gets: `GET /files/{id}` (manifest, metadata, wrapped key, locations and freshly
//!   signed get tokens for 10 workers) from 32 concurrent clients over keep-alive connections;
//! - small-file uploads: begin, 10 shard puts to the workers, commit (manifest signature, 10
//!   receipts checked, one transaction) from 8 concurrent clients;
//! - the server process's peak RSS (it also runs the 10 workers).
//!
//! `cargo bench -p disktro-server --bench api` prints one `server/...` line per figure;
//! `scripts/bench` copies them into BENCHMARKS.md. The load generator shares the machine's cores.
#![allow(clippy::print_stdout, clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use disktro_client::account;
use disktro_client::server::Server as Api;
use disktro_client::upload::{UploadOptions, upload};
use disktro_core::keys::KdfParams;
use disktro_core::metadata::FileMetadata;
use support::{joined, percentile, postgres_database, start};

mod support;

const RUN: Duration = Duration::from_secs(8);

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn wait_online(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/api/v1/nodes")).await {
            let nodes: Vec<serde_json::Value> = r.json().await.unwrap_or_default();
            if nodes.iter().filter(|n| n["status"] == "online").count() == 10 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "workers did not come online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `clients` loops of `op` for [`RUN`]; returns requests per second and latencies.
async fn hammer<F, Fut>(clients: usize, op: F) -> (f64, Vec<Duration>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    op().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let all = joined(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    (all.len() as f64 / elapsed, all)
}

async fn bench(backend: &str, dir: &Path, database_url: &str) {
    let (server, url) = start(dir, database_url, &["--local-workers", "10"], "info");
    wait_online(&url).await;
    let anon = Api::new(&url).unwrap();
    let me = Arc::new(
        account::signup(
            &anon,
            "bench@example.org",
            "bench pass phrase",
            KdfParams::MINIMUM,
            "bench",
        )
        .await
        .unwrap(),
    );
    let api = anon.with_token(&me.token);
    let small = vec![7u8; 10_000];
    let metadata = FileMetadata {
        name: "small.bin".to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: small.len() as u64,
        attributes: Vec::new(),
    };
    let first = upload(
        &api,
        &me,
        std::io::Cursor::new(small.clone()),
        small.len() as u64,
        &metadata,
        &UploadOptions::default(),
        &|_| {},
    )
    .await
    .unwrap();

    // Manifest gets over plain keep-alive HTTP, as the app and CLI make them.
    let http = reqwest::Client::new();
    let get_url = format!("{url}/api/v1/files/{}", first.summary.file_id);
    let token = me.token.clone();
    let (rate, lat) = hammer(32, move || {
        let http = http.clone();
        let get_url = get_url.clone();
        let token = token.clone();
        async move {
            let r = http.get(&get_url).bearer_auth(&token).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await.unwrap();
        }
    })
    .await;
    println!(
        "server/{backend}/manifest-get: {rate:.0} req/s (p50 {:.1} ms, p99 {:.1} ms; 32 clients, 10 get tokens under one signature per answer)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    let (rate, lat) = hammer(8, move || {
        let api = api.clone();
        let me = Arc::clone(&me);
        let small = small.clone();
        let metadata = metadata.clone();
        async move {
            upload(
                &api,
                &me,
                std::io::Cursor::new(small.clone()),
                small.len() as u64,
                &metadata,
                &UploadOptions::default(),
                &|_| {},
            )
            .await
            .unwrap();
        }
    })
    .await;
    println!(
        "server/{backend}/small-upload: {rate:.0} uploads/s (begin + 10 puts + commit; p50 {:.1} ms, p99 {:.1} ms; 8 clients)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    println!(
        "server/{backend}/peak-rss: {:.0} MiB (server with 10 in-process workers)",
        peak_rss_mib(server.0.id())
    );
}

#[tokio::main]
async fn main() {
    disktro_net::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    bench("sqlite", dir.path(), &disktro_server::db::sqlite_url(dir.path())).await;
    if let Some(admin) = std::env::var("DISKTRO_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let (url, _) = postgres_database(&admin, "disktro_test_bench").await;
        let pg_dir = tempfile::tempdir().unwrap();
        bench("postgres", pg_dir.path(), &url).await;
    } else {
        println!("server/postgres: skipped (DISKTRO_TEST_POSTGRES_URL is not set)");
    }
}
