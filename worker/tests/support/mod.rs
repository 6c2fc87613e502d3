//! Test support: the real `disktro-worker` binary on 127.0.0.1 with a temp data dir, a server key
//! to sign tokens with, and shard and token makers.
#![allow(dead_code, clippy::cast_possible_truncation)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use disktro_core::keys::{Keypair, PublicKey};
use disktro_core::token::{Operation, Scope, Token};
use disktro_core::{NodeId, Serial, ShardId};
use disktro_net::client::{ConnectOptions, WorkerClient};
use disktro_worker::ReadyInfo;

pub const BIN: &str = env!("CARGO_BIN_EXE_disktro-worker");

/// A temp dir holding any number of workers' data dirs, and the server key that signs tokens.
pub struct Fixture {
    pub server: Keypair,
    pub tmp: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            server: Keypair::generate(),
            tmp: tempfile::tempdir().unwrap(),
        }
    }
}

/// A running worker process.
pub struct Worker {
    pub child: Child,
    pub info: ReadyInfo,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub node_id: NodeId,
}

impl Fixture {
    pub fn server_key_hex(&self) -> String {
        disktro_core::ids::to_hex(self.server.public().as_bytes())
    }

    /// Start worker `name` (data in `<tmp>/<name>`) trusting this fixture's server key.
    pub fn start(&self, name: &str, extra: &[&str]) -> Worker {
        let key = self.server_key_hex();
        let mut args = vec!["--issuer-key", key.as_str()];
        args.extend_from_slice(extra);
        self.start_with(name, &args)
    }

    /// Start worker `name` with exactly these extra arguments.
    pub fn start_with(&self, name: &str, extra: &[&str]) -> Worker {
        let data_dir = self.tmp.path().join(name);
        let ready = self.tmp.path().join(format!("{name}.ready"));
        let _ = fs::remove_file(&ready);
        let log = self.tmp.path().join(format!("{name}.log"));
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut worker = Worker {
            child,
            info: ReadyInfo {
                listen: "127.0.0.1:0".parse().unwrap(),
                url: String::new(),
                node_id: String::new(),
                public_key: String::new(),
                metrics: None,
            },
            data_dir,
            log,
            node_id: NodeId([0; 32]),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = fs::read_to_string(&ready)
                && let Ok(info) = serde_json::from_str::<ReadyInfo>(&text)
            {
                worker.node_id = info.node_id.parse().unwrap();
                worker.info = info;
                return worker;
            }
            if let Some(status) = worker.child.try_wait().unwrap() {
                panic!(
                    "worker exited with {status} before it was ready:\n{}",
                    worker.log_text()
                );
            }
            assert!(Instant::now() < deadline, "worker not ready:\n{}", worker.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A token signed by this fixture's server.
    pub fn token(&self, node: &NodeId, operation: Operation, budget: u64, shards: &[ShardId]) -> Vec<u8> {
        self.token_with(&self.server, node, operation, budget, shards, 3600)
    }

    /// A get token signed by this fixture's server naming the reader's `order_key`.
    pub fn read_token(&self, node: &NodeId, budget: u64, shards: &[ShardId], order_key: PublicKey) -> Vec<u8> {
        let mut shards = shards.to_vec();
        shards.sort_unstable();
        Token {
            operation: Operation::Get,
            issuer: self.server.public(),
            worker: *node,
            scope: Scope::Upload([9; 16]),
            serial: Serial::random(),
            expires_at: disktro_net::unix_now() + 3600,
            byte_budget: budget,
            order_key: Some(order_key),
            shards,
        }
        .sign(&self.server)
        .unwrap()
    }

    pub fn token_with(
        &self,
        signer: &Keypair,
        node: &NodeId,
        operation: Operation,
        budget: u64,
        shards: &[ShardId],
        expires_in: i64,
    ) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Token {
            operation,
            issuer: signer.public(),
            worker: *node,
            scope: Scope::Upload([9; 16]),
            serial: Serial::random(),
            expires_at: now.saturating_add_signed(expires_in),
            byte_budget: budget,
            order_key: None,
            shards: shards.to_vec(),
        }
        .sign(signer)
        .unwrap()
    }
}

impl Worker {
    pub async fn client(&self) -> WorkerClient {
        WorkerClient::connect(&self.info.url, &ConnectOptions::default())
            .await
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait; the exit must be clean.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(30));
        assert!(status.success(), "worker exited with {status}:\n{}", self.log_text());
    }

    /// SIGKILL: the crash case.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn shard_path(&self, id: &ShardId) -> PathBuf {
        disktro_worker::store::shard_file(&self.data_dir, id)
    }

    /// Files under `shards/`.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("shards"))
    }

    pub fn files_in(&self, sub: &str) -> Vec<PathBuf> {
        files_under(&self.data_dir.join(sub))
    }

    /// Peak resident memory (VmHWM) in bytes.
    pub fn peak_rss(&self) -> u64 {
        peak_rss(self.pid())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn peak_rss(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "worker did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Deterministic, distinct, incompressible-looking shard bytes.
pub fn shard(seed: u64, len: usize) -> (ShardId, Vec<u8>) {
    let mut bytes = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.finalize_xof().fill(&mut bytes);
    (ShardId::of(&bytes), bytes)
}

/// Poll `f` until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
