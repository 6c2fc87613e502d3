//! What the `disktro` process tests share: a real network on 127.0.0.1 (the server on a real
//! socket with SQLite in a temp dir, and storage workers, in the test process) and `disktro`
//! run as a separate process with its own config directory.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use disktro_server::local_workers::LocalWorker;

pub const BIN: &str = env!("CARGO_BIN_EXE_disktro");
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Network {
    pub url: String,
    pub ctx: Arc<disktro_server::Context>,
    pub workers: Vec<Option<LocalWorker>>,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub _dir: tempfile::TempDir,
}

impl Network {
    pub async fn start(workers: usize) -> Self {
        Self::start_with_token_ttl(workers, disktro_server::grants::GET_TOKEN_TTL).await
    }

    /// A network whose get tokens last `get_token_ttl` (`--get-token-ttl`).
    pub async fn start_with_token_ttl(workers: usize, get_token_ttl: Duration) -> Self {
        disktro_net::tls::install_default_provider();
        let dir = tempfile::tempdir().unwrap();
        let interval = Duration::from_secs(1);
        let ctx = disktro_server::Context::open(
            dir.path(),
            &disktro_server::db::sqlite_url(dir.path()),
            Some("join".to_owned()),
            interval,
        )
        .await
        .unwrap();
        let mut ctx = ctx;
        ctx.get_token_ttl = get_token_ttl;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Arc::new(ctx);
        let app = disktro_server::app(disktro_server::site_options("target/site", addr), Arc::clone(&ctx));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
        });
        let url = format!("http://{addr}");
        let running = disktro_server::local_workers::start(workers, dir.path(), &url, "join", 1 << 30, interval)
            .await
            .unwrap();
        let net = Self {
            url,
            ctx,
            workers: running.into_iter().map(Some).collect(),
            shutdown,
            _dir: dir,
        };
        net.wait_online(workers).await;
        net
    }

    pub async fn online(&self) -> usize {
        let Ok(r) = reqwest::get(format!("{}/api/v1/nodes", self.url)).await else {
            return 0;
        };
        let nodes: Vec<serde_json::Value> = r.json().await.unwrap_or_default();
        nodes.iter().filter(|n| n["status"] == "online").count()
    }

    /// Bytes the workers have received, as their last heartbeats (1 s apart here) reported.
    pub async fn ingress(&self) -> u64 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let nodes: Vec<serde_json::Value> = reqwest::get(format!("{}/api/v1/nodes", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        nodes.iter().map(|n| n["ingress_bytes"].as_u64().unwrap()).sum()
    }

    pub async fn wait_online(&self, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.online().await != want {
            assert!(Instant::now() < deadline, "{want} workers did not come online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop the workers of `range` and start them again on the same addresses and data: their
    /// connections end, their tokens stay good.
    pub async fn restart_workers(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            let Some(w) = self.workers[i].take() else { continue };
            let address = w.local_addr;
            w.shutdown().await;
            let again = disktro_server::local_workers::start_one(
                i,
                self._dir.path(),
                &self.url,
                "join",
                1 << 30,
                Duration::from_secs(1),
                Some(address),
            )
            .await
            .unwrap();
            self.workers[i] = Some(again);
        }
    }

    pub async fn stop_workers(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            if let Some(w) = self.workers[i].take() {
                w.shutdown().await;
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One `disktro` invocation with its own config dir, optional stdin; run off the async threads.
pub async fn disktro(config: &Path, server: Option<&str>, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    disktro_env(config, server, args, &[], stdin).await
}

/// [`disktro`] with environment variables set.
pub async fn disktro_env(
    config: &Path,
    server: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<Vec<u8>>,
) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env("DISKTRO_CONFIG_DIR", config)
        .env_remove("DISKTRO_SERVER")
        .envs(env.iter().copied())
        .args(args);
    if let Some(url) = server {
        cmd.args(["--server", url]);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

pub fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed ({}): {}", o.status, stderr(o));
}

/// A failure with `code` and one clear line on stderr.
pub fn fails(o: &Output, code: i32, what: &str) {
    assert_eq!(o.status.code(), Some(code), "{what}: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{what}: one line expected: {err}");
    assert!(err.starts_with("disktro: "), "{what}: {err}");
}

/// Kill `child` (SIGKILL) as soon as `ready()` holds; `false` when it exited first. Panics when
/// neither happens within `within`, naming `what` was awaited.
pub async fn kill_when(
    mut child: std::process::Child,
    ready: impl Fn() -> bool + Send + 'static,
    within: Duration,
    what: &'static str,
) -> bool {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + within;
        loop {
            if ready() {
                child.kill().unwrap();
                child.wait().unwrap();
                return true;
            }
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await
    .unwrap()
}

/// Sign up `email` with config dir `cfg` on the network's server.
pub async fn sign_up(net: &Network, cfg: &Path, email: &str) {
    let o = disktro(
        cfg,
        Some(&net.url),
        &["signup", "--email", email, "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "signup");
}

pub fn random(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&[seed]);
    h.finalize_xof().fill(&mut out);
    out
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}
