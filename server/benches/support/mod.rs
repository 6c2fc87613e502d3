//! What the server benchmarks share: the real `disktro-server` binary started and stopped,
//! percentiles of latencies, and PostgreSQL databases of their own.
#![allow(
    dead_code,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sqlx::Executor as _;

/// A server process, stopped when dropped as a service manager stops it: SIGTERM, then SIGKILL
/// if it has not exited within 10 s. (A killed server keeps its jobs' leases until they lapse,
/// so the next server on the same database would stand by instead of running its jobs.)
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the server binary on a free port with its data in `dir`, `args` added and `rust_log`
/// as its log filter (its log is `dir/server.log`); returns once it listens, with its URL.
pub fn start(dir: &Path, database_url: &str, args: &[&str], rust_log: &str) -> (Process, String) {
    let log = dir.join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_disktro-server"))
        .args(["--listen", "127.0.0.1:0", "--site-root", "target/site"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let process = Process(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(at) = text.find("listening on http://") {
            let url = text[at + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            return (process, url);
        }
        assert!(Instant::now() < deadline, "the server did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `p` quantile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A fresh database named `prefix` and random hex digits on the PostgreSQL server `admin`
/// names: its URL and name.
pub async fn postgres_database(admin: &str, prefix: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let name = format!(
        "{prefix}_{}",
        disktro_core::ids::to_hex(&disktro_core::random_bytes::<6>())
    );
    let pool = sqlx::AnyPool::connect(admin).await.unwrap();
    // The name is made here from a fixed prefix and hex digits only.
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    pool.close().await;
    let base = &admin[..admin.rfind('/').unwrap()];
    (format!("{base}/{name}"), name)
}

/// Drop a database [`postgres_database`] made.
pub async fn drop_database(admin: &str, name: &str) {
    let pool = sqlx::AnyPool::connect(admin).await.unwrap();
    pool.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .await
        .unwrap();
    pool.close().await;
}

/// The latencies `tasks` measured, together and sorted.
pub async fn joined(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all
}
