//! Durability with real worker processes on 127.0.0.1 and the real server binary (its audit,
//! repair and garbage-collection jobs on short test intervals): repair after losing workers,
//! cheating workers caught by audits, bit rot, garbage collection and orphans. The ledger test
//! drives the rewards pass by hand with chosen clocks against an in-process server. The network
//! tests put the server and workers on hosts of their own (network namespaces, as root): across
//! slow links, and with every certificate from a local ACME CA.

#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use disktro_client::account::{self, Identity};
use disktro_client::download;
use disktro_client::server::Server as Api;
use disktro_client::upload::{UploadOptions, upload};
use disktro_core::ShardId;
use disktro_core::keys::KdfParams;
use disktro_core::metadata::FileMetadata;
use disktro_core::wire::{Body, ErrorCode, Frame};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use sqlx::Row as _;
use support::{Server, databases, eventually, wait_online};
use tokio_tungstenite::tungstenite::Message;

const CHUNK: u32 = 64 * 1024;
const JOIN: &str = "durability-join";

/// One scenario at a time: each runs 10 to 14 worker processes with second-scale timeouts, and
/// two at once on a small machine would measure the machine, not the server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The worker binary `cargo test --workspace` built next to this test (or `DISKTRO_WORKER_BIN`).
fn worker_bin() -> PathBuf {
    built_bin("disktro-worker", "DISKTRO_WORKER_BIN")
}

/// A binary of the workspace that `cargo test --workspace` built next to this test, or the one
/// the environment variable `var` names (a release build).
fn built_bin(name: &str, var: &str) -> PathBuf {
    if let Ok(bin) = std::env::var(var) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// One worker process.
struct Worker {
    child: Child,
    dir: tempfile::TempDir,
    node_id: String,
    listen: SocketAddr,
    /// Where it serves `GET /metrics`, when started with `--metrics-listen`.
    metrics: Option<SocketAddr>,
    /// Started with the tests' 1 s heartbeats (else at the default interval operators run).
    fast: bool,
}

impl Worker {
    /// Start a worker registered with `server`; `advertise` is the URL clients are told (a proxy).
    fn start(server: &str, extra: &[&str], advertise: Option<&str>) -> Self {
        Self::spawn(tempfile::tempdir().unwrap(), server, extra, advertise, true)
    }

    /// Start a worker at its default intervals, as operators run it.
    fn start_at_defaults(server: &str) -> Self {
        Self::spawn(tempfile::tempdir().unwrap(), server, &[], None, false)
    }

    /// Kill the worker (SIGKILL, unless it is down already) and start it again on the same data
    /// directory and key, with the same intervals.
    fn restart(mut self, server: &str, extra: &[&str]) -> Self {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::spawn(dir, server, extra, None, self.fast)
    }

    fn spawn(dir: tempfile::TempDir, server: &str, extra: &[&str], advertise: Option<&str>, fast: bool) -> Self {
        Self::spawn_on(None, dir, server, extra, advertise, fast)
    }

    /// Start a worker on `host` (its own namespace and address), at its default intervals.
    fn start_on(host: &support::Host, server: &str, extra: &[&str]) -> Self {
        Self::spawn_on(Some(host), tempfile::tempdir().unwrap(), server, extra, None, false)
    }

    fn spawn_on(
        host: Option<&support::Host>,
        dir: tempfile::TempDir,
        server: &str,
        extra: &[&str],
        advertise: Option<&str>,
        fast: bool,
    ) -> Self {
        let ready = dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("worker.log"))
            .unwrap();
        let listen = host.map_or_else(|| "127.0.0.1:0".to_owned(), |h| format!("{}:4000", h.address));
        let mut cmd = support::Host::command(host, worker_bin());
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", &listen]);
        }
        cmd.args(["--capacity", "2GiB"])
            .args(if fast {
                &["--heartbeat-interval", "1s"][..]
            } else {
                &[][..]
            })
            .args(["--server", server, "--join-token", JOIN])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        if let Some(url) = advertise {
            cmd.args(["--advertise-url", url]);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let info: disktro_worker::ReadyInfo = loop {
            if let Some(info) = std::fs::read(&ready).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                break info;
            }
            assert!(Instant::now() < deadline, "worker did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            dir,
            node_id: info.node_id,
            listen: info.listen,
            metrics: info.metrics,
            fast,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop the worker the way an operator's service manager does (SIGTERM), and wait.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    fn shard_path(&self, id: &str) -> PathBuf {
        let id = id.parse().expect("a shard id");
        disktro_worker::store::shard_file(&self.dir.path().join("data"), &id)
    }

    /// Ids of the shards on disk.
    fn shards_on_disk(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                    out.push(name.to_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("data/shards"), &mut out);
        out.sort();
        out
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a proxy in front of a worker misbehaves.
#[derive(Debug, Clone, Copy)]
enum Policy {
    /// Never answer an audit challenge the worker cannot prove (it dodges by going silent).
    WithholdMissingAudits,
    /// Answer everything, this much later (an honest but slow node).
    Delay(Duration),
}

/// A WebSocket proxy on 127.0.0.1 in front of a worker, applying `policy` to its answers.
/// Returns its URL and the slot for the worker's address (set once the worker listens).
async fn proxy(policy: Policy) -> (String, Arc<OnceLock<SocketAddr>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let upstream: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
    let target = Arc::clone(&upstream);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let target = Arc::clone(&target);
            tokio::spawn(async move {
                let Some(addr) = target.get().copied() else { return };
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((worker, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await else {
                    return;
                };
                let (mut to_client, mut from_client) = client.split();
                let (mut to_worker, mut from_worker) = worker.split();
                let audits: Arc<Mutex<HashSet<u32>>> = Arc::default();
                let seen = Arc::clone(&audits);
                let up = async move {
                    while let Some(Ok(msg)) = from_client.next().await {
                        if let Message::Binary(b) = &msg
                            && let Ok(Frame {
                                request_id,
                                body: Body::AuditChallenge { .. },
                            }) = Frame::decode(b)
                        {
                            seen.lock().unwrap().insert(request_id);
                        }
                        if to_worker.send(msg).await.is_err() {
                            break;
                        }
                    }
                };
                // Answers leave in order, each `delay` after it arrived (latency, not a queue).
                let (later, mut due) = tokio::sync::mpsc::unbounded_channel::<(Instant, Message)>();
                let send = async move {
                    while let Some((at, msg)) = due.recv().await {
                        tokio::time::sleep_until(at.into()).await;
                        if to_client.send(msg).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    while let Some(Ok(msg)) = from_worker.next().await {
                        let mut delay = Duration::ZERO;
                        if let Message::Binary(b) = &msg
                            && let Ok(frame) = Frame::decode(b)
                        {
                            let audit = audits.lock().unwrap().remove(&frame.request_id);
                            match policy {
                                Policy::WithholdMissingAudits => {
                                    if audit
                                        && matches!(
                                            frame.body,
                                            Body::Error {
                                                code: ErrorCode::NotFound,
                                                ..
                                            }
                                        )
                                    {
                                        continue;
                                    }
                                }
                                Policy::Delay(d) => delay = d,
                            }
                        }
                        if later.send((Instant::now() + delay, msg)).is_err() {
                            break;
                        }
                    }
                };
                tokio::select! {
                    () = up => {}
                    () = async { tokio::join!(down, send); } => {}
                }
            });
        }
    });
    (url, upstream)
}

/// The server binary with its jobs on test intervals.
fn start_server(dir: &Path, database_url: &str, extra: &[&str]) -> Server {
    start_server_on(None, dir, database_url, extra)
}

/// [`start_server`] on `host` (its namespace and address), or on 127.0.0.1.
fn start_server_on(host: Option<&support::Host>, dir: &Path, database_url: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--join-token",
        JOIN,
        "--heartbeat-interval",
        "1s",
        "--audit-interval",
        "1s",
        "--audit-window",
        "20s",
        "--audit-timeout",
        "2s",
        "--repair-interval",
        "1s",
        // Repair as soon as one shard of a chunk is unhealthy (k + 3 of k + 4), so every chunk
        // returns to full redundancy.
        "--repair-margin",
        "3",
        "--gc-interval",
        "1s",
        "--gc-grace",
        "2s",
        "--orphan-grace",
        "3s",
    ];
    args.extend_from_slice(extra);
    Server::start_on(host, dir, database_url, &args)
}

fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = *blake3::hash(&seed.to_le_bytes()).as_bytes();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = *blake3::hash(&block).as_bytes();
    }
    out.truncate(len);
    out
}

/// 30 files from 1 byte to 1.5 MB (1 to 24 chunks of 64 KiB), random and text alike.
fn mixed_files() -> Vec<Vec<u8>> {
    (0..30u32)
        .map(|i| {
            let len = match i % 6 {
                0 => 1 + i as usize,
                1 => 70_000 + 3_000 * i as usize,
                2 => 1_500_000,
                3 => 200_000 + 9_999 * i as usize,
                4 => 65_536,
                _ => 400_000,
            };
            if i % 2 == 0 {
                random_bytes(len, i)
            } else {
                format!("line {i} of a text file that compresses well\n")
                    .repeat(len / 40 + 1)
                    .into_bytes()[..len]
                    .to_vec()
            }
        })
        .collect()
}

struct Account {
    api: Api,
    me: Identity,
}

async fn account(url: &str) -> Account {
    let api = Api::new(url).unwrap();
    let me = account::signup(
        &api,
        "operator@example.com",
        "correct horse battery staple",
        KdfParams::MINIMUM,
        "tests",
    )
    .await
    .unwrap();
    let api = api.with_token(&me.token);
    Account { api, me }
}

async fn put(a: &Account, data: &[u8], name: &str) -> String {
    let options = UploadOptions {
        chunk_size: Some(CHUNK),
        data_shards: Some(6),
        parity_shards: Some(4),
        ..UploadOptions::default()
    };
    put_with(a, data, name, &options).await
}

/// Upload `data` as `name` with `options`; returns its id.
async fn put_with(a: &Account, data: &[u8], name: &str, options: &UploadOptions) -> String {
    let meta = FileMetadata {
        name: name.to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: data.len() as u64,
        attributes: Vec::new(),
    };
    upload(
        &a.api,
        &a.me,
        std::io::Cursor::new(data.to_vec()),
        data.len() as u64,
        &meta,
        options,
        &|_| {},
    )
    .await
    .unwrap_or_else(|e| panic!("upload of {name}: {e}"))
    .summary
    .file_id
    .to_hex()
}

/// Upload [`mixed_files`]; returns them and their ids.
async fn put_mixed_files(a: &Account) -> (Vec<Vec<u8>>, Vec<String>) {
    let files = mixed_files();
    let mut ids = Vec::new();
    for (i, data) in files.iter().enumerate() {
        ids.push(put(a, data, &format!("file-{i}")).await);
    }
    (files, ids)
}

async fn get(a: &Account, file_id: &str) -> Vec<u8> {
    let answer = a.api.file(file_id).await.unwrap();
    let key = a.me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let (_, out) = download::download(&answer, &key, Some(&a.me.public_key()), Vec::new(), &|_| {})
        .await
        .unwrap_or_else(|e| panic!("download of {file_id}: {e}"));
    out
}

async fn json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn durability(url: &str) -> Value {
    json(&format!("{url}/api/v1/durability")).await
}

async fn node(url: &str, node_id: &str) -> Value {
    let nodes = json(&format!("{url}/api/v1/nodes")).await;
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == node_id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Every chunk has all k + m shards healthy.
async fn all_full(url: &str) -> bool {
    let d = durability(url).await;
    d["chunks"].as_i64().unwrap_or(0) > 0 && d["full"] == d["chunks"]
}

async fn db(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}

async fn placed_on(pool: &sqlx::AnyPool, node: &str) -> Vec<String> {
    sqlx::query("SELECT shard_id FROM file_shards WHERE node_id = $1 ORDER BY shard_id")
        .bind(node)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("shard_id").unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_restores_full_redundancy_and_files_survive_eight_lost_workers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for db_case in databases().await {
        let server = start_server(db_case.dir.path(), &db_case.url, &[]);
        let mut workers: Vec<Worker> = (0..14).map(|_| Worker::start(&server.url, &[], None)).collect();
        assert!(
            wait_online(&server.url, 14).await,
            "[{}] 14 workers online",
            db_case.backend
        );
        let a = account(&server.url).await;
        let (files, ids) = put_mixed_files(&a).await;
        assert!(eventually(Duration::from_secs(20), || all_full(&server.url)).await);
        let chunks = durability(&server.url).await["chunks"].as_i64().unwrap();

        // Tried: 4 of 14 workers killed. Must hold: every chunk is rebuilt to 10 healthy shards,
        // all on the 10 workers left, within the stated 90 seconds.
        let started = Instant::now();
        for w in &mut workers[..4] {
            w.kill();
        }
        let pool = db(&db_case.url).await;
        let dead: Vec<String> = workers[..4].iter().map(|w| w.node_id.clone()).collect();
        let repaired = eventually(Duration::from_secs(90), || async {
            let mut left = 0;
            for n in &dead {
                left += placed_on(&pool, n).await.len();
            }
            left == 0 && all_full(&server.url).await
        })
        .await;
        let d = durability(&server.url).await;
        assert!(
            repaired,
            "[{}] not repaired in 90 s: {d}\n{}",
            db_case.backend,
            server.log_text()
        );
        eprintln!(
            "[{}] {chunks} chunks back to 10 healthy shards {:.1} s after 4 of 14 workers died: {d}",
            db_case.backend,
            started.elapsed().as_secs_f64()
        );
        // The jobs registry shows every background job, and the repair it just did.
        let jobs = json(&format!("{}/api/v1/jobs", server.url)).await;
        let names: Vec<&str> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["audit", "gc", "hot", "janitor", "rebalance", "repair", "rewards"],
            "{jobs}"
        );
        let repair = jobs.as_array().unwrap().iter().find(|j| j["name"] == "repair").unwrap();
        assert!(repair["runs"].as_u64().unwrap() >= 1, "{repair}");
        assert_eq!(repair["failures"], 0, "{repair}");
        assert!(repair["progress"]["chunks_repaired"].as_u64().unwrap() >= 1, "{repair}");
        // What repair moved and how long it took: bytes rebuilt (at least one shard per chunk
        // of the 4 workers' share), a rebuild rate, detection after the killed workers' last
        // heartbeat (the offline window, 12 heartbeats, is part of it), repair within the bound.
        let progress = &repair["progress"];
        assert!(progress["bytes_rebuilt"].as_u64().unwrap() > 0, "{progress}");
        assert!(progress["last_pass_bytes_per_sec"].as_u64().unwrap() > 0, "{progress}");
        let detect = progress["time_to_detect_max_secs"].as_u64().expect("a time to detect");
        let mend = progress["time_to_repair_max_secs"].as_u64().expect("a time to repair");
        assert!(detect <= 90 && mend <= 90, "{progress}");
        assert_eq!(
            d["repair"], repair["progress"],
            "the durability view shows the same repairer"
        );
        assert_eq!(d["chunks"].as_i64(), Some(chunks));
        for r in sqlx::query("SELECT COUNT(DISTINCT node_id) AS n FROM file_shards GROUP BY file_id, chunk")
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            assert_eq!(
                r.try_get::<i64, _>("n").unwrap(),
                10,
                "a chunk without 10 distinct workers"
            );
        }

        // Tried: 4 more killed, leaving 6 (= k). Must hold: every file byte-identical.
        for w in &mut workers[4..8] {
            w.kill();
        }
        for (data, id) in files.iter().zip(&ids) {
            assert!(get(&a, id).await == *data, "[{}] file {id} differs", db_case.backend);
        }
        pool.close().await;
        server.stop();
    }
}

/// Every node of `ids` is no longer counted online (so its shards count as lost).
async fn seen_offline(url: &str, ids: &[String]) -> bool {
    let limit = Duration::from_secs(30);
    eventually(limit, || async {
        let mut all = true;
        for id in ids {
            all &= node(url, id).await["status"] != "online";
        }
        all
    })
    .await
}

/// Most shards of one chunk in one zone, over every chunk.
async fn most_per_zone(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query(
        "SELECT COALESCE(MAX(n), 0) AS most FROM (SELECT COUNT(*) AS n FROM file_shards s \
         JOIN nodes z ON z.node_id = s.node_id GROUP BY s.file_id, s.chunk, z.zone) AS per_zone",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get("most")
    .unwrap()
}

/// Worker processes of the chaos test: 20, or `DISKTRO_CHAOS_WORKERS` (`make chaos` runs 40);
/// a multiple of 5, at least 20 (the 3 zones left after losing 2 must hold 10 shards).
fn chaos_workers() -> usize {
    let n: usize = std::env::var("DISKTRO_CHAOS_WORKERS")
        .ok()
        .map_or(20, |v| v.parse().expect("DISKTRO_CHAOS_WORKERS is a number"));
    assert!(
        n >= 20 && n.is_multiple_of(5),
        "DISKTRO_CHAOS_WORKERS must be a multiple of 5, at least 20"
    );
    n
}

/// The chaos test of failure domains: 20 worker processes (40 under `make chaos`) in 5 equal
/// zones, 30 files of mixed sizes (1 B to 1.5 MB, random and text) uploaded through the client
/// library the CLI runs.
///
/// Tried, in order:
/// 1. two whole zones stopped at once (40% of the workers: one zone SIGKILLed, one SIGTERMed).
///    Must hold: every file downloads byte-identical at once, before any repair: no zone held
///    more than 2 of a chunk's 10 shards. Repair then brings every chunk back to 10 healthy
///    shards on the workers left, at most 4 per zone (all 3 zones left can give).
/// 2. the two zones come back, then a random wave kills 4 (m) workers. Must hold: every chunk is
///    back to full before the second wave.
/// 3. a second random wave of 4. Must hold: every file still reads byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_survive_two_lost_zones_and_waves_of_failures() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let count = chaos_workers();
    let zone_args: Vec<[String; 2]> = (0..count)
        .map(|i| ["--zone".to_owned(), format!("zone-{}", i % 5)])
        .collect();
    let args = |i: usize| -> Vec<&str> { zone_args[i].iter().map(String::as_str).collect() };
    let mut workers: Vec<Option<Worker>> = (0..count)
        .map(|i| Some(Worker::start(&server.url, &args(i), None)))
        .collect();
    assert!(wait_online(&server.url, count).await, "{count} workers online");
    let a = account(&server.url).await;
    let (files, ids) = put_mixed_files(&a).await;
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);
    let pool = db(&db_case.url).await;
    assert_eq!(
        most_per_zone(&pool).await,
        2,
        "a zone holds more than 2 of a chunk's shards"
    );
    let d = durability(&server.url).await;
    assert_eq!(
        (d["zones"].as_u64(), d["zones_survivable"].as_u64()),
        (Some(5), Some(2)),
        "{d}"
    );
    // Each file says so too (the list `disktro ls` prints), with the model's yearly loss.
    let api = &a.api;
    let survivable = |want: u64| async move {
        let list = api.files().await.unwrap();
        list.files.iter().all(|f| {
            f.health.zones_survivable == Some(want) && f.health.yearly_loss > 0.0 && f.health.yearly_loss < 1e-6
        })
    };
    assert!(
        survivable(2).await,
        "{:?}",
        a.api.files().await.unwrap().files[0].health
    );

    // 1. Zones 0 and 1 go at once.
    let started = Instant::now();
    for (i, w) in workers.iter_mut().enumerate() {
        let w = w.as_mut().unwrap();
        match i % 5 {
            0 => w.kill(),
            1 => w.terminate(),
            _ => {}
        }
    }
    for (data, id) in files.iter().zip(&ids) {
        assert!(get(&a, id).await == *data, "file {id} differs with two zones down");
    }
    let gone: Vec<String> = (0..count)
        .filter(|i| i % 5 < 2)
        .map(|i| workers[i].as_ref().unwrap().node_id.clone())
        .collect();
    assert!(seen_offline(&server.url, &gone).await);
    let repaired = eventually(Duration::from_secs(120), || all_full(&server.url)).await;
    assert!(
        repaired,
        "not back to full on 3 zones: {}\n{}",
        durability(&server.url).await,
        server.log_text()
    );
    eprintln!(
        "two zones lost: every chunk back to 10 healthy shards on the 3 zones left in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(most_per_zone(&pool).await <= 4);
    // On 3 zones at most 4 shards of a chunk each: one whole zone can go, and each file says so.
    assert!(
        survivable(1).await,
        "{:?}",
        a.api.files().await.unwrap().files[0].health
    );

    // 2. The zones come back (their data is still on disk: it is now surplus, collected); a
    // random wave takes 4 workers.
    for i in (0..count).filter(|i| i % 5 < 2) {
        let w = workers[i].take().unwrap();
        workers[i] = Some(w.restart(&server.url, &args(i)));
    }
    assert!(wait_online(&server.url, count).await, "the zones did not come back");
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|i| *blake3::hash(&i.to_le_bytes()).as_bytes());
    let started = Instant::now();
    for &i in &order[..4] {
        workers[i].as_mut().unwrap().kill();
    }
    let gone: Vec<String> = order[..4]
        .iter()
        .map(|&i| workers[i].as_ref().unwrap().node_id.clone())
        .collect();
    assert!(seen_offline(&server.url, &gone).await);
    let repaired = eventually(Duration::from_secs(120), || all_full(&server.url)).await;
    assert!(
        repaired,
        "not back to full after the first wave: {}",
        durability(&server.url).await
    );
    eprintln!(
        "first wave (4 random workers): back to full in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 3. The second wave, before anything else changes.
    for &i in &order[4..8] {
        workers[i].as_mut().unwrap().kill();
    }
    for (data, id) in files.iter().zip(&ids) {
        assert!(get(&a, id).await == *data, "file {id} differs after the second wave");
    }
    pool.close().await;
    server.stop();
}

/// Run `disktro-worker drain` (with `extra` flags) as an operator would, on `w`'s data directory.
fn drain_command(w: &Worker, server: &str, extra: &[&str]) -> std::process::Output {
    Command::new(worker_bin())
        .args(["--server", server, "--join-token", JOIN, "--data-dir"])
        .arg(w.dir.path().join("data"))
        .arg("drain")
        .args(extra)
        .output()
        .unwrap()
}

/// Tried: an operator drains one of 12 workers with `disktro-worker drain` while it keeps
/// running, and another asks to drain and then withdraws. Must hold: the command follows the
/// moves and reports the node drained; nothing is placed on it any more and every chunk is back
/// to 10 healthy shards elsewhere, copied from the draining worker (the others serve less than
/// what moved); its copies are then collected from its disk; every file reads
/// byte-identical; the withdrawn node is active again; a request signed by another key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_worker_leaves_without_costing_a_shard() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let workers: Vec<Worker> = (0..12).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 12).await);
    let a = account(&server.url).await;
    let files = mixed_files();
    let mut ids = Vec::new();
    for (i, data) in files.iter().enumerate().take(8) {
        ids.push(put(&a, data, &format!("file-{i}")).await);
    }
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);
    let pool = db(&db_case.url).await;
    let leaving = &workers[0];
    assert!(!placed_on(&pool, &leaving.node_id).await.is_empty());
    let moving: i64 = sqlx::query("SELECT CAST(SUM(size) AS BIGINT) AS n FROM file_shards WHERE node_id = $1")
        .bind(&leaving.node_id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    let served_by_others = || async {
        let nodes = json(&format!("{}/api/v1/nodes", server.url)).await;
        nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["node_id"] != leaving.node_id.as_str())
            .map(|n| n["egress_bytes"].as_i64().unwrap())
            .sum::<i64>()
    };
    let served_before = served_by_others().await;

    let out = drain_command(leaving, &server.url, &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", server.log_text());
    assert!(stdout.contains("drained"), "{stdout}\n{stderr}");
    assert!(stderr.contains("draining"), "no progress shown: {stderr}");
    assert_eq!(node(&server.url, &leaving.node_id).await["state"], "exited");
    assert!(placed_on(&pool, &leaving.node_id).await.is_empty());
    // Its shards were copied from it, not rebuilt from 6 others each: the other workers served
    // less than the bytes moved (a rebuild reads 6 times as much). Heartbeats report egress.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let served = served_by_others().await - served_before;
    assert!(served < moving, "other workers served {served} bytes to move {moving}");
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);
    assert!(
        eventually(Duration::from_secs(30), || async {
            leaving.shards_on_disk().is_empty()
        })
        .await,
        "the drained worker still holds {} shards",
        leaving.shards_on_disk().len()
    );
    for (data, id) in files.iter().zip(&ids) {
        assert!(get(&a, id).await == *data, "file {id} differs after the drain");
    }

    // Asked, then withdrawn: active again.
    let out = drain_command(&workers[1], &server.url, &["--no-wait"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("draining"));
    let out = drain_command(&workers[1], &server.url, &["--cancel"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("staying"));
    assert_eq!(node(&server.url, &workers[1].node_id).await["state"], "active");

    // A request for worker 2 signed by worker 3's key: refused, nothing changes.
    let body = serde_json::to_vec(&disktro_core::api::node::DrainRequest {
        node_id: workers[2].node_id.parse().unwrap(),
        sent_at: disktro_net::unix_now(),
        drain: true,
    })
    .unwrap();
    let (other, _) = disktro_net::keyfile::load_or_create(&workers[3].dir.path().join("data")).unwrap();
    let signature = other.sign(disktro_core::api::node::DRAIN_DOMAIN, &body);
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/nodes/drain", server.url))
        .header("content-type", "application/json")
        .header(
            disktro_core::api::node::SIGNATURE_HEADER,
            disktro_core::ids::to_hex(&signature),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(node(&server.url, &workers[2].node_id).await["state"], "active");
    pool.close().await;
    server.stop();
}

/// Bytes placed on each of `ids` (0 for one holding nothing).
async fn placed_bytes(pool: &sqlx::AnyPool, ids: &[String]) -> Vec<i64> {
    let rows = sqlx::query("SELECT node_id, CAST(SUM(size) AS BIGINT) AS bytes FROM file_shards GROUP BY node_id")
        .fetch_all(pool)
        .await
        .unwrap();
    let by_node: HashMap<String, i64> = rows
        .iter()
        .map(|r| (r.try_get("node_id").unwrap(), r.try_get("bytes").unwrap()))
        .collect();
    ids.iter().map(|id| by_node.get(id).copied().unwrap_or(0)).collect()
}

/// Tried: 10 workers hold every chunk's 10 shards (one each), then 5 empty workers of the same
/// capacity join. Must hold: the rebalancer moves shards onto them until every worker holds
/// within ±10% of the mean (equal capacities: equal shares); every chunk stays at 10 healthy
/// shards at every check while it does (copy first, move after); the moved copies leave the old
/// workers' disks; every file reads byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_workers_take_their_share_and_no_chunk_loses_a_shard() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &["--rebalance-interval", "1s"]);
    let mut workers: Vec<Worker> = (0..10).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 10).await);
    let a = account(&server.url).await;
    let (files, ids) = put_mixed_files(&a).await;
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);
    let pool = db(&db_case.url).await;
    workers.extend((0..5).map(|_| Worker::start(&server.url, &[], None)));
    assert!(wait_online(&server.url, 15).await);
    let all: Vec<String> = workers.iter().map(|w| w.node_id.clone()).collect();

    let started = Instant::now();
    let mut never_short = true;
    let balanced = loop {
        never_short &= all_full(&server.url).await;
        let bytes = placed_bytes(&pool, &all).await;
        let mean = bytes.iter().sum::<i64>() / bytes.len() as i64;
        if bytes.iter().all(|&b| (b - mean).abs() * 10 <= mean) {
            break Some(bytes);
        }
        if started.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let bytes = placed_bytes(&pool, &all).await;
    assert!(
        balanced.is_some(),
        "not within ±10% in 120 s: {bytes:?}\n{}",
        server.log_text()
    );
    eprintln!(
        "5 new workers took their share in {:.1} s: {bytes:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(never_short, "a chunk was below 10 healthy shards during the moves");
    let jobs = json(&format!("{}/api/v1/jobs", server.url)).await;
    let rebalance = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "rebalance")
        .unwrap();
    assert!(
        rebalance["progress"]["shards_moved"].as_u64().unwrap() > 0,
        "{rebalance}"
    );
    // The old workers' disks hold what is placed on them (plus at most a pass of collection).
    let on_disk = |w: &Worker| w.shards_on_disk().len();
    assert!(
        eventually(Duration::from_secs(30), || async {
            let mut ok = true;
            for w in &workers[..10] {
                ok &= on_disk(w) == placed_on(&pool, &w.node_id).await.len();
            }
            ok
        })
        .await,
        "moved copies were not collected from the old workers"
    );
    for (data, id) in files.iter().zip(&ids) {
        assert!(get(&a, id).await == *data, "file {id} differs after the rebalance");
    }
    support::assert_placed_totals_match(&pool).await;
    pool.close().await;
    server.stop();
}

/// Tried: an honest worker SIGKILLed while the server still counts it online (the default 10 s
/// heartbeat interval: online for 30 s after its last beat), under audits every second, then
/// restarted on the same data 20 s later. Must hold: being unreachable is not a failed audit:
/// it is never disqualified, fails no audit, is audited again once back, and its data is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_honest_worker_that_crashes_and_restarts_is_not_disqualified() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = Server::start(
        db_case.dir.path(),
        &db_case.url,
        &[
            "--join-token",
            JOIN,
            "--audit-interval",
            "1s",
            "--audit-window",
            "20s",
            "--audit-timeout",
            "2s",
        ],
    );
    let mut workers: Vec<Worker> = (0..11).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 11).await);
    let a = account(&server.url).await;
    let files = mixed_files();
    let mut ids = Vec::new();
    for (i, data) in files.iter().enumerate().take(3) {
        ids.push(put(&a, data, &format!("file-{i}")).await);
    }
    let victim_id = workers[0].node_id.clone();
    let passed = |v: &Value| v["audits_passed"].as_i64().unwrap_or(0);
    assert!(
        eventually(Duration::from_secs(60), || async {
            passed(&node(&server.url, &victim_id).await) >= 3
        })
        .await,
        "the victim was not audited before the crash"
    );

    let mut victim = workers.remove(0);
    victim.kill();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = node(&server.url, &victim_id).await;
    assert_eq!(during["state"], "active", "disqualified while down: {during}");
    assert_eq!(during["audits_failed"], 0, "{during}");
    let mut victim = victim.restart(&server.url, &[]);
    let before = passed(&node(&server.url, &victim_id).await);
    let audited_again = eventually(Duration::from_secs(60), || async {
        passed(&node(&server.url, &victim_id).await) >= before + 5
    })
    .await;
    let back = node(&server.url, &victim_id).await;
    assert!(
        audited_again,
        "not audited again after the restart: {back}\n{}",
        server.log_text()
    );
    assert_eq!(back["state"], "active", "{back}");
    assert_eq!(back["audits_failed"], 0, "{back}");
    for (data, id) in files.iter().zip(&ids) {
        assert!(get(&a, id).await == *data);
    }
    victim.kill();
    server.stop();
}

/// The downtime an honest worker must survive (a reboot, an upgrade, a crash with a service
/// manager that restarts it).
const HONEST_DOWNTIME: Duration = Duration::from_secs(5 * 60);

/// One network of 10 workers (so nobody can take a lost worker's shards: they stay placed on
/// it): a worker SIGKILLed, left down for [`HONEST_DOWNTIME`], and started again on its data.
/// `defaults`: server and workers at the settings operators run (no interval given), else the
/// tests' fast settings (1 s heartbeats, audits every second). Returns what failed, if anything.
async fn down_and_back(db_case: support::TestDb, defaults: bool) -> Result<(), String> {
    let label = if defaults { "default settings" } else { "fast settings" };
    let server = if defaults {
        Server::start(db_case.dir.path(), &db_case.url, &["--join-token", JOIN])
    } else {
        start_server(db_case.dir.path(), &db_case.url, &[])
    };
    let start = |_| {
        if defaults {
            Worker::start_at_defaults(&server.url)
        } else {
            Worker::start(&server.url, &[], None)
        }
    };
    let mut workers: Vec<Worker> = (0..10).map(start).collect();
    if !wait_online(&server.url, 10).await {
        return Err(format!("{label}: 10 workers not online"));
    }
    let a = account(&server.url).await;
    let files = mixed_files();
    let mut ids = Vec::new();
    for (i, data) in files.iter().enumerate().take(4) {
        ids.push(put(&a, data, &format!("file-{i}")).await);
    }
    if !eventually(Duration::from_secs(60), || all_full(&server.url)).await {
        return Err(format!("{label}: not full after the uploads"));
    }
    let pool = db(&db_case.url).await;
    let mut victim = workers.remove(0);
    let victim_id = victim.node_id.clone();
    let placed = placed_on(&pool, &victim_id).await;
    if placed.is_empty() {
        return Err(format!("{label}: the victim holds nothing"));
    }
    victim.kill();
    tokio::time::sleep(HONEST_DOWNTIME).await;
    let during = node(&server.url, &victim_id).await;
    if during["state"] != "active" || during["audits_failed"] != 0 || during["status"] == "online" {
        return Err(format!("{label}: after 5 minutes down: {during}"));
    }
    let victim = victim.restart(&server.url, &[]);
    // Back online at its next heartbeat, and every chunk full again with its shards.
    let back = eventually(Duration::from_secs(90), || async {
        node(&server.url, &victim_id).await["status"] == "online" && all_full(&server.url).await
    })
    .await;
    let after = node(&server.url, &victim_id).await;
    if !back || after["state"] != "active" || after["audits_failed"] != 0 {
        return Err(format!("{label}: back {back}: {after}\n{}", server.log_text()));
    }
    if placed_on(&pool, &victim_id).await != placed {
        return Err(format!("{label}: its placements changed while it was down"));
    }
    let on_disk = victim.shards_on_disk();
    if let Some(missing) = placed.iter().find(|id| !on_disk.contains(id)) {
        return Err(format!("{label}: shard {missing} is gone from its disk"));
    }
    for (data, id) in files.iter().zip(&ids) {
        if get(&a, id).await != *data {
            return Err(format!("{label}: file {id} differs"));
        }
    }
    server.stop();
    Ok(())
}

/// Tried: an honest worker SIGKILLed and started again 5 minutes later on its data, on two
/// networks at once: one at the default settings operators run, one at the tests' fast settings.
/// Must hold on both: while down it is offline but stays active with no failed audit; back, it
/// is online and active with no failed audit, keeps its placements and the shards on its disk,
/// every chunk is back at full, and every file reads byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_honest_worker_down_five_minutes_comes_back_active_with_its_data() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let at_defaults = databases().await.remove(0);
    let fast = databases().await.remove(0);
    let (a, b) = tokio::join!(down_and_back(at_defaults, true), down_and_back(fast, false));
    a.unwrap();
    b.unwrap();
}

/// Item 4 of the durability work: a file written on a small network (7 workers: 4 + 3, short of
/// the target) is below the policy once the network grows to 15 (9 + 6, 15 nines); its owner's
/// client restripes it, and the file reads the same, through its owner and through a share link
/// made before. Tried besides: another account restripes it (404), the owner restripes it again
/// (409 `at_policy`). Must hold: the file is byte-identical at every step, every chunk ends with
/// 15 healthy shards on 15 distinct workers, the old shards leave the workers, and the per-node
/// totals match the placements.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_written_on_a_small_network_is_restriped_to_the_policy_once_it_grows() {
    use disktro_client::restripe;
    use disktro_core::api::{NewShare, ShareAccess};
    let _alone = ONE_AT_A_TIME.lock().await;
    for db_case in databases().await {
        let b = db_case.backend;
        let server = start_server(db_case.dir.path(), &db_case.url, &[]);
        let mut workers: Vec<Worker> = (0..7).map(|_| Worker::start(&server.url, &[], None)).collect();
        assert!(wait_online(&server.url, 7).await, "[{b}] 7 workers online");
        let policy = &durability(&server.url).await["policy"];
        assert_eq!(
            (&policy["data_shards"], &policy["parity_shards"]),
            (&4.into(), &3.into()),
            "[{b}] {policy}"
        );
        assert_eq!(policy["meets_target"], false, "[{b}] 4 + 3 is short of 11 nines");

        let a = account(&server.url).await;
        let data = random_bytes(5 * CHUNK as usize + 1234, 23);
        let options = UploadOptions {
            chunk_size: Some(CHUNK),
            ..UploadOptions::default()
        };
        let id = put_with(&a, &data, "small-network.bin", &options).await;
        let listed = |a: &Account| {
            let (api, id) = (a.api.clone(), id.clone());
            async move {
                api.files()
                    .await
                    .unwrap()
                    .files
                    .into_iter()
                    .find(|f| f.file_id.to_hex() == id)
                    .unwrap()
            }
        };
        let before = listed(&a).await;
        assert_eq!((before.data_shards, before.parity_shards), (4, 3), "[{b}]");
        assert!(!before.health.below_policy, "[{b}] the policy gives 4 + 3 on 7 workers");
        let key = a.me.file_key(&before.file_id, Some(&before.wrapped_key)).unwrap();
        let share = a
            .api
            .share(
                &id,
                &NewShare {
                    expires_in: Some(3600),
                    max_downloads: None,
                    password_proof: None,
                },
            )
            .await
            .unwrap();
        let pool = db(&db_case.url).await;
        let old_shards: Vec<(String, String)> =
            sqlx::query("SELECT node_id, shard_id FROM file_shards WHERE file_id = $1")
                .bind(&id)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.try_get("node_id").unwrap(), r.try_get("shard_id").unwrap()))
                .collect();
        assert_eq!(old_shards.len(), 6 * 7, "[{b}] 6 chunks of 7 shards");

        workers.extend((0..8).map(|_| Worker::start(&server.url, &[], None)));
        assert!(wait_online(&server.url, 15).await, "[{b}] 15 workers online");
        let policy = &durability(&server.url).await["policy"];
        assert_eq!(
            (&policy["data_shards"], &policy["parity_shards"]),
            (&9.into(), &6.into()),
            "[{b}] {policy}"
        );
        assert_eq!(policy["meets_target"], true, "[{b}] {policy}");
        let below = listed(&a).await;
        assert!(below.health.below_policy, "[{b}] 4 + 3 is below 9 + 6 now");

        // Tried: another account restripes the file. Must hold: it is not found for them.
        let mallory = {
            let api = Api::new(&server.url).unwrap();
            let me = account::signup(
                &api,
                "mallory@example.com",
                "another long password",
                KdfParams::MINIMUM,
                "t",
            )
            .await
            .unwrap();
            api.with_token(&me.token)
        };
        let refused = mallory.restripe(&id).await.unwrap_err();
        assert_eq!(
            refused.code().map(|c| c.as_str()),
            Some("file_not_found"),
            "[{b}] {refused}"
        );

        let after = restripe::restripe(&a.api, &a.me, &below, &|_| {}).await.unwrap();
        assert_eq!((after.data_shards, after.parity_shards), (9, 6), "[{b}]");
        assert_eq!(get(&a, &id).await, data, "[{b}] the restriped file reads the same");
        let anon = Api::new(&server.url).unwrap();
        let answer = anon
            .download_share(&share.share_id, &ShareAccess::default())
            .await
            .unwrap();
        let (_, out) = download::download(&answer, &key, None, Vec::new(), &|_| {})
            .await
            .unwrap();
        assert!(out == data, "[{b}] the share link made before reads the restriped file");
        let now = listed(&a).await;
        assert!(!now.health.below_policy, "[{b}] at the policy now");
        assert_eq!(
            (&now.metadata, &now.wrapped_key),
            (&before.metadata, &before.wrapped_key),
            "[{b}] kept"
        );
        let again = restripe::restripe(&a.api, &a.me, &now, &|_| {}).await.unwrap_err();
        assert_eq!(again.code().map(|c| c.as_str()), Some("at_policy"), "[{b}] {again}");

        let spread: Vec<(i64, i64)> = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT node_id) AS nodes FROM file_shards WHERE file_id = $1 GROUP BY chunk",
        )
        .bind(&id)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get("n").unwrap(), r.try_get("nodes").unwrap()))
        .collect();
        assert_eq!(
            spread,
            vec![(15, 15); 6],
            "[{b}] 6 chunks of 15 shards on 15 workers each"
        );
        support::assert_placed_totals_match(&pool).await;
        assert!(
            eventually(Duration::from_secs(20), || all_full(&server.url)).await,
            "[{b}] every chunk full: {}",
            durability(&server.url).await
        );
        // The old shards go after the GC grace (2 s here): no worker keeps one.
        let old: HashSet<&str> = old_shards.iter().map(|(_, s)| s.as_str()).collect();
        let gone = eventually(Duration::from_secs(30), || {
            let old = &old;
            let workers = &workers;
            async move {
                workers
                    .iter()
                    .all(|w| w.shards_on_disk().iter().all(|s| !old.contains(s.as_str())))
            }
        })
        .await;
        assert!(gone, "[{b}] the 4 + 3 shards are collected from the workers");
        assert_eq!(get(&a, &id).await, data, "[{b}] and the file still reads the same");
    }
}

/// Tried: 10 workers, so every chunk (6 + 4) has a shard on each, and one of them killed: no
/// worker is left that could take its shards. Must hold: the repairer reads nothing it cannot
/// place (the live workers serve no bytes at all once the loss is seen: nobody else reads), and
/// backs off: chunks wait between tries instead of failing every pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_reads_nothing_it_cannot_place_and_backs_off() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let mut workers: Vec<Worker> = (0..10).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 10).await);
    let a = account(&server.url).await;
    for (i, data) in mixed_files().iter().enumerate().take(6) {
        put(&a, data, &format!("file-{i}")).await;
    }
    assert!(eventually(Duration::from_secs(20), || all_full(&server.url)).await);
    let dead = workers[0].node_id.clone();
    workers[0].kill();
    assert!(
        eventually(Duration::from_secs(20), || async {
            node(&server.url, &dead).await["status"] != "online"
        })
        .await
    );
    let served = || async {
        let nodes = json(&format!("{}/api/v1/nodes", server.url)).await;
        nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["node_id"] != dead.as_str())
            .map(|n| n["egress_bytes"].as_i64().unwrap())
            .sum::<i64>()
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = served().await;
    let failed_before = json(&format!("{}/api/v1/jobs", server.url)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let read = served().await - before;
    let jobs = json(&format!("{}/api/v1/jobs", server.url)).await;
    let repair = |jobs: &Value| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "repair")
            .cloned()
            .unwrap()
    };
    let (then, now) = (repair(&failed_before), repair(&jobs));
    assert_eq!(read, 0, "the repairer read {read} bytes it could not place: {now}");
    let chunks = now["progress"]["queued"].as_u64().unwrap() + now["progress"]["deferred"].as_u64().unwrap();
    assert!(chunks > 0, "nothing was due for repair: {now}");
    assert!(
        now["progress"]["deferred"].as_u64().unwrap() > 0,
        "no chunk waits: {now}"
    );
    // Ten passes ran; with back-off each chunk was tried at most four times in them.
    let failures =
        now["progress"]["chunks_failed"].as_u64().unwrap() - then["progress"]["chunks_failed"].as_u64().unwrap();
    assert!(
        failures <= 4 * chunks,
        "{failures} failed tries of {chunks} chunks in 10 s: {now}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cheating_workers_are_disqualified_and_an_honest_slow_one_is_not() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    // Worker 0 deletes shards and its own inventory reports them missing within seconds;
    // worker 1 deletes shards and goes silent when audited on them, and its long inventory
    // interval keeps its listings from reporting the losses: audits must find them. Worker 2
    // answers everything 1 s late (half the audit timeout).
    let (silent_url, silent_addr) = proxy(Policy::WithholdMissingAudits).await;
    let (slow_url, slow_addr) = proxy(Policy::Delay(Duration::from_secs(1))).await;
    let quiet = ["--inventory-interval", "1h"];
    let telling = ["--inventory-interval", "2s"];
    let mut workers = vec![
        Worker::start(&server.url, &telling, None),
        Worker::start(&server.url, &quiet, Some(&silent_url)),
        Worker::start(&server.url, &quiet, Some(&slow_url)),
    ];
    silent_addr.set(workers[1].listen).unwrap();
    slow_addr.set(workers[2].listen).unwrap();
    workers.extend((3..14).map(|_| Worker::start(&server.url, &quiet, None)));
    assert!(wait_online(&server.url, 14).await);
    let a = account(&server.url).await;
    let (files, ids) = put_mixed_files(&a).await;
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);

    // Tried: workers 0 and 1 silently delete every tenth shard they hold.
    let audited = |v: &Value| v["audits_passed"].as_i64().unwrap() + v["audits_failed"].as_i64().unwrap();
    let mut before = Vec::new();
    for w in &workers[..2] {
        let held = w.shards_on_disk();
        before.push((audited(&node(&server.url, &w.node_id).await), held.len() as i64));
        let doomed: Vec<&String> = held.iter().step_by(10).collect();
        assert!(
            doomed.len() >= 5,
            "{} shards held: too few to lose 10%: {}\n{}",
            held.len(),
            node(&server.url, &w.node_id).await,
            server.log_text()
        );
        for id in doomed {
            std::fs::remove_file(w.shard_path(id)).unwrap();
        }
    }
    // Must hold: both disqualified, whether their inventory admits the losses or not: the one
    // that reports them is charged each missing shard as a failed audit; the silent one within
    // two audit windows of its shards: fewer resolved audits after the loss than twice the
    // shards held. (The silent one's failures resolve only
    // after 4 timed-out rounds each, while its other shards keep passing; the figures found are
    // printed: 12 and 39 audits in one run, 127 for the silent one in another.)
    let cheats = [workers[0].node_id.clone(), workers[1].node_id.clone()];
    let caught = eventually(Duration::from_secs(120), || async {
        let mut all = true;
        for n in &cheats {
            all &= node(&server.url, n).await["state"] == "disqualified";
        }
        all
    })
    .await;
    assert!(caught, "cheaters not disqualified:\n{}", server.log_text());
    for ((who, n), (audits_before, held)) in ["reported by its inventory", "silent"].iter().zip(&cheats).zip(&before) {
        let v = node(&server.url, n).await;
        let audits = audited(&v) - audits_before;
        eprintln!(
            "{who}: disqualified {audits} audits after losing 10% of {held} shards: {}",
            v["state_reason"]
        );
        assert!(audits <= 2 * held, "{who}: {audits} audits before disqualification");
    }
    // The silent one's failures came from timeouts that resolved as failures, not errors.
    let pool = db(&db_case.url).await;
    let timeouts: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audits WHERE node_id = $1 AND outcome = 'timeout'")
        .bind(&cheats[1])
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert!(timeouts >= 3, "the silent worker's audits timed out {timeouts} times");

    // Must hold: their shards are repaired onto the others and every chunk is full again.
    let repaired = eventually(Duration::from_secs(90), || async {
        placed_on(&pool, &cheats[0]).await.is_empty()
            && placed_on(&pool, &cheats[1]).await.is_empty()
            && all_full(&server.url).await
    })
    .await;
    assert!(
        repaired,
        "cheaters' shards not repaired: {}",
        durability(&server.url).await
    );

    // Must hold: the honest slow worker was audited, passed every time, and stays active.
    let slow = node(&server.url, &workers[2].node_id).await;
    eprintln!(
        "slow worker: {} audits passed, state {}",
        slow["audits_passed"], slow["state"]
    );
    assert_eq!(slow["state"], "active");
    assert_eq!(slow["audits_failed"], 0);
    assert!(slow["audits_passed"].as_i64().unwrap() >= 20, "{slow}");
    for (data, id) in files.iter().zip(&ids).take(6) {
        assert!(get(&a, id).await == *data);
    }
    pool.close().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bit_rot_is_rebuilt_elsewhere_and_garbage_is_collected() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let fast = ["--scrub-interval", "2s", "--inventory-interval", "2s"];
    let workers: Vec<Worker> = (0..11).map(|_| Worker::start(&server.url, &fast, None)).collect();
    assert!(wait_online(&server.url, 11).await);
    let a = account(&server.url).await;
    let files = mixed_files();
    let kept = put(&a, &files[2], "kept").await;
    let doomed = put(&a, &files[3], "doomed").await;
    assert!(eventually(Duration::from_secs(20), || all_full(&server.url)).await);
    let pool = db(&db_case.url).await;

    // Tried: one byte flipped in a shard on worker 0's disk. Must hold: its scrubber quarantines
    // and reports it, and the shard is rebuilt on another worker, byte-identical to its id.
    // A shard of a whole chunk (a file's last chunk can make shards of a few bytes).
    let rotten: String = sqlx::query("SELECT shard_id FROM file_shards WHERE node_id = $1 AND size >= 1024 LIMIT 1")
        .bind(&workers[0].node_id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("shard_id")
        .unwrap();
    let path = workers[0].shard_path(&rotten);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let moved = eventually(Duration::from_secs(60), || async {
        let row = sqlx::query("SELECT node_id FROM file_shards WHERE shard_id = $1")
            .bind(&rotten)
            .fetch_one(&pool)
            .await
            .unwrap();
        row.try_get::<String, _>("node_id").unwrap() != workers[0].node_id
    })
    .await;
    assert!(
        moved,
        "the rotten shard was not rebuilt elsewhere:\n{}",
        server.log_text()
    );
    let new_home: String = sqlx::query("SELECT node_id FROM file_shards WHERE shard_id = $1")
        .bind(&rotten)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("node_id")
        .unwrap();
    let holder = workers.iter().find(|w| w.node_id == new_home).unwrap();
    let rebuilt = std::fs::read(holder.shard_path(&rotten)).unwrap();
    assert!(rotten.parse::<ShardId>().unwrap().matches(&rebuilt));
    assert!(eventually(Duration::from_secs(20), || all_full(&server.url)).await);
    assert!(get(&a, &kept).await == files[2]);

    // Tried: a file deleted. Must hold: after the grace its shards are on no worker.
    let doomed_shards: Vec<String> = sqlx::query("SELECT shard_id FROM file_shards WHERE file_id = $1")
        .bind(&doomed)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("shard_id").unwrap())
        .collect();
    assert_eq!(doomed_shards.len() % 10, 0);
    a.api.delete_file(&doomed).await.unwrap();
    let on_disk = |ids: &[String]| -> usize {
        workers
            .iter()
            .map(|w| ids.iter().filter(|id| w.shard_path(id).exists()).count())
            .sum()
    };
    assert_eq!(
        on_disk(&doomed_shards),
        doomed_shards.len(),
        "deleted at once, before the grace"
    );
    assert!(
        eventually(Duration::from_secs(30), || async { on_disk(&doomed_shards) == 0 }).await,
        "{} shards of the deleted file remain",
        on_disk(&doomed_shards)
    );
    // A shard rebuilt elsewhere and a file deleted: the per-node totals follow both.
    support::assert_placed_totals_match(&pool).await;

    // Tried: a valid shard no file needs, planted on worker 1's disk. Must hold: found through
    // the worker's holdings summary and removed after the orphan grace; the kept file is intact.
    let orphan = random_bytes(5000, 99);
    let orphan_id = ShardId::of(&orphan).to_hex();
    let orphan_path = workers[1].shard_path(&orphan_id);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, &orphan).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async { !orphan_path.exists() }).await,
        "the orphan was not collected:\n{}",
        server.log_text()
    );
    assert!(get(&a, &kept).await == files[2]);
    pool.close().await;
    server.stop();
}

/// The in-process server of the ledger test: its jobs do not run; the test runs rewards passes.
async fn in_process(dir: &Path, database_url: &str) -> (Arc<disktro_server::Context>, String) {
    disktro_net::tls::install_default_provider();
    let ctx = disktro_server::Context::open(dir, database_url, Some(JOIN.to_owned()), Duration::from_secs(1))
        .await
        .unwrap();
    let ctx = Arc::new(ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = disktro_server::app(disktro_server::site_options("target/site", addr), Arc::clone(&ctx));
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    (ctx, format!("http://{addr}"))
}

async fn ledger(pool: &sqlx::AnyPool) -> Vec<(i64, String, String, i64, i64, i64, String)> {
    sqlx::query("SELECT seq, node_id, kind, period_start, period_end, quantity, reference FROM ledger ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("seq").unwrap(),
                r.try_get("node_id").unwrap(),
                r.try_get("kind").unwrap(),
                r.try_get("period_start").unwrap(),
                r.try_get("period_end").unwrap(),
                r.try_get("quantity").unwrap(),
                r.try_get("reference").unwrap(),
            )
        })
        .collect()
}

/// Tried: a 40 MiB download through the client library (the CLI's), with its own order key.
/// Must hold: the file is identical; every claim the workers make is for a token naming that
/// key; and what they claim in all is what the reader received: at least the data shards of
/// every chunk (k of n of the stored bytes) and at most every shard once (a worker's orders come
/// both every few MiB and at the end, so 7 MB per worker exercises both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_download_orders_what_it_received_and_the_workers_claim_that() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let (_ctx, url) = in_process(db_case.dir.path(), &db_case.url).await;
    let _workers: Vec<Worker> = (0..10).map(|_| Worker::start(&url, &[], None)).collect();
    assert!(wait_online(&url, 10).await);
    let a = account(&url).await;
    let data = random_bytes(40 << 20, 7);
    let id = put(&a, &data, "big").await;
    let pool = db(&db_case.url).await;

    let orders = disktro_core::order::Orders::new();
    let order_key = orders.key();
    let answer = a.api.file_reading(&id, &order_key).await.unwrap();
    let key = a.me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let (_, out) = download::download_renewing(
        &answer,
        &key,
        Some(&a.me.public_key()),
        Vec::new(),
        &|_| {},
        None,
        orders,
    )
    .await
    .unwrap();
    assert!(out == data, "the download differs");

    let stored: i64 = sqlx::query("SELECT stored_bytes FROM files WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("stored_bytes");
    let data_part = stored * 6 / 10;
    let claims = || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT bytes, order_key FROM egress_claims")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<i64, _>("bytes"), r.get::<String, _>("order_key")))
                .collect::<Vec<_>>()
        }
    };
    let enough = eventually(Duration::from_secs(20), || async {
        claims().await.iter().map(|(b, _)| b).sum::<i64>() >= data_part
    })
    .await;
    let claimed = claims().await;
    let total: i64 = claimed.iter().map(|(b, _)| b).sum();
    assert!(
        enough,
        "the workers claimed {total} bytes; the reader needed at least {data_part}"
    );
    assert!(total <= stored, "claimed {total} of {stored} stored bytes");
    let hex = disktro_core::ids::to_hex(order_key.as_bytes());
    assert!(
        claimed.iter().all(|(_, k)| *k == hex),
        "a claim under another order key"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewards_match_a_hand_calculation_and_ledger_tampering_is_detected() {
    let _alone = ONE_AT_A_TIME.lock().await;
    use disktro_server::rewards;
    for db_case in databases().await {
        let (ctx, url) = in_process(db_case.dir.path(), &db_case.url).await;
        let _workers: Vec<Worker> = (0..10).map(|_| Worker::start(&url, &[], None)).collect();
        assert!(wait_online(&url, 10).await);
        let a = account(&url).await;
        let files = mixed_files();
        let ids = [put(&a, &files[2], "a").await, put(&a, &files[3], "b").await];
        let pool = db(&db_case.url).await;

        // Storage: a first pass starts every node's clock; an hour later each node is owed
        // (bytes of the shards placed on it) × 3,600 byte-seconds.
        let t0 = disktro_server::context::unix_now();
        // The test's clock runs hours ahead of the workers' real heartbeats: it writes the chart
        // samples (one per minute a node heartbeats, what storage is paid by) for the next three
        // hours of every node, as the heartbeat handler would.
        let node_ids: Vec<String> = sqlx::query("SELECT node_id FROM nodes")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("node_id").unwrap())
            .collect();
        for node in &node_ids {
            for minute in 0..180 {
                sqlx::query(
                    "INSERT INTO node_samples (node_id, at, capacity, used, shards, ingress_bytes, egress_bytes, \
                     uptime_secs, audit_score) VALUES ($1, $2, 0, 0, 0, 0, 0, 0, 1000000) \
                     ON CONFLICT (node_id, at) DO NOTHING",
                )
                .bind(node)
                .bind(t0 - t0.rem_euclid(60) + 60 * minute)
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        rewards::accrue(&ctx.db, t0).await.unwrap();
        assert!(ledger(&pool).await.is_empty(), "the first pass only starts the clocks");
        // Tried: one shard reported lost where it is placed. Must hold: its node is not paid for
        // its bytes (only healthy-on-record shards are).
        let lost = sqlx::query("SELECT node_id, shard_id FROM file_shards ORDER BY node_id, shard_id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        let (lost_node, lost_shard): (String, String) = (lost.get("node_id"), lost.get("shard_id"));
        sqlx::query("INSERT INTO corrupt_reports (node_id, shard_id, reported_at) VALUES ($1, $2, $3)")
            .bind(&lost_node)
            .bind(&lost_shard)
            .bind(t0)
            .execute(&pool)
            .await
            .unwrap();
        let mut held: HashMap<String, i64> = HashMap::new();
        for r in sqlx::query("SELECT node_id, shard_id, size FROM file_shards")
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let (node, shard): (String, String) = (r.get("node_id"), r.get("shard_id"));
            if (&node, &shard) != (&lost_node, &lost_shard) {
                *held.entry(node).or_default() += r.get::<i64, _>("size");
            }
        }
        let t1 = t0 + 3600;
        rewards::accrue(&ctx.db, t1).await.unwrap();
        let entries = ledger(&pool).await;
        assert_eq!(entries.len(), held.len(), "one storage entry per node holding shards");
        for (_, node, kind, start, end, quantity, _) in &entries {
            assert_eq!((kind.as_str(), *start, *end), ("storage", t0, t1));
            assert_eq!(*quantity, held[node] * 3600, "node {node}");
        }
        // Tried: one node away for half an hour from t1 (no heartbeat, so no samples), longer
        // than the next period. Must hold: it is paid storage only for the minutes it was seen.
        let mut holders: Vec<&String> = held.keys().collect();
        holders.sort();
        let away = holders[0].clone();
        sqlx::query("DELETE FROM node_samples WHERE node_id = $1 AND at >= $2 AND at < $3")
            .bind(&away)
            .bind(t1)
            .bind(t1 + 1800)
            .execute(&pool)
            .await
            .unwrap();

        // Egress: the test reads shards 0 and 1 of every chunk of file a, straight from their
        // workers under the server's get tokens, as a reader does: the tokens name its order key,
        // and it hands each worker its signed orders (every few MiB and at the end). It knows
        // what each worker served.
        let mut orders = disktro_core::order::Orders::new();
        let answer = a.api.file_reading(&ids[0], &orders.key()).await.unwrap();
        let signed = disktro_core::SignedManifest::decode(&answer.manifest).unwrap();
        let mut served: HashMap<String, i64> = HashMap::new();
        let mut clients: HashMap<usize, disktro_net::client::WorkerClient> = HashMap::new();
        for (c, chunk) in signed.manifest().chunks.iter().enumerate() {
            for idx in 0..2 {
                let at = usize::from(answer.locations[c][idx]);
                let n = &answer.nodes[at];
                let token = n.tokens[0].token.to_vec();
                if let std::collections::hash_map::Entry::Vacant(slot) = clients.entry(at) {
                    let client = disktro_net::client::WorkerClient::connect(&n.url, &Default::default())
                        .await
                        .unwrap();
                    slot.insert(client);
                }
                let bytes = clients[&at].get(&token, chunk.shards[idx]).await.unwrap();
                let len = bytes.bytes().len() as u64;
                *served.entry(n.node_id.to_hex()).or_default() += len as i64;
                if let Some(due) = orders.received(at, &token, len) {
                    clients[&due.to].order(due.order).await.unwrap();
                }
            }
        }
        for due in orders.settle() {
            clients[&due.to].order(due.order).await.unwrap();
        }
        let total: i64 = served.values().sum();
        let claimed = eventually(Duration::from_secs(15), || async {
            let r = sqlx::query("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS n FROM egress_claims")
                .fetch_one(&pool)
                .await
                .unwrap();
            r.try_get::<i64, _>("n").unwrap() == total
        })
        .await;
        assert!(
            claimed,
            "the workers' claims of the reader's orders did not reach {total} bytes"
        );
        let expiry: i64 = sqlx::query("SELECT MAX(expires_at) AS e FROM egress_claims")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("e")
            .unwrap();
        // Reading the file issued tokens and recorded nothing: no claim opens before a worker
        // presents its token.
        let reader = disktro_core::keys::Keypair::generate();
        let fresh = a.api.file_reading(&ids[1], &reader.public()).await.unwrap();
        let victim = &fresh.nodes[0];
        let token = disktro_core::token::Token::decode(&victim.tokens[0].token).unwrap();
        assert_eq!(
            token.order_key,
            Some(reader.public()),
            "the token names the reader's order key"
        );
        let (serial, budget) = (token.serial, token.byte_budget as i64);
        let open = |serial: disktro_core::Serial| {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT COUNT(*) AS n FROM egress_claims WHERE serial = $1")
                    .bind(serial.to_hex())
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<i64, _>("n")
            }
        };
        assert_eq!(open(serial).await, 0, "issuing a get token wrote a claim");
        let order = |bytes: u64, worker: disktro_core::NodeId, key: &disktro_core::keys::Keypair| {
            disktro_core::api::Base64::new(disktro_core::order::Order { serial, worker, bytes }.sign(key))
        };
        // Every claim also says the worker served ten times the budget: its own count, never paid.
        let claim_of = |order: disktro_core::api::Base64, token: bool| disktro_core::api::node::EgressClaim {
            serial,
            served: budget as u64 * 10,
            order: Some(order),
            token: token.then(|| victim.tokens[0].token.clone()),
        };
        // Tried: a claim for more than the token's budget; the same token claimed by another
        // worker; a claim with no token for a serial never opened; a token signed by another
        // key; a token presented after its claims closed. Must hold: capped at the budget; the
        // rest ignored.
        let issuer = ctx.key.public();
        let now = disktro_server::context::unix_now();
        let greedy = claim_of(order(budget as u64 * 10, victim.node_id, &reader), true);
        let other = fresh.nodes[1].node_id.to_hex();
        let victim_hex = victim.node_id.to_hex();
        let claim = |node: String, claims: Vec<disktro_core::api::node::EgressClaim>, at: i64| {
            let ctx = Arc::clone(&ctx);
            async move {
                rewards::record_claims(&ctx.db, &issuer, &node, &claims, at)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim(other, vec![greedy.clone()], now).await, 0);
        let tokenless = disktro_core::api::node::EgressClaim {
            serial: disktro_core::Serial::random(),
            served: 1000,
            order: Some(order(1000, victim.node_id, &reader)),
            token: None,
        };
        assert_eq!(claim(victim_hex.clone(), vec![tokenless], now).await, 0);
        let forger = disktro_core::keys::Keypair::generate();
        let forged = disktro_core::token::Token {
            serial: disktro_core::Serial::random(),
            issuer: forger.public(),
            ..token.clone()
        }
        .sign(&forger)
        .unwrap();
        let forged_claim = disktro_core::api::node::EgressClaim {
            serial: disktro_core::token::Token::decode(&forged).unwrap().serial,
            served: 1000,
            order: Some(order(1000, victim.node_id, &reader)),
            token: Some(disktro_core::api::Base64::new(forged)),
        };
        assert_eq!(claim(victim_hex.clone(), vec![forged_claim], now).await, 0);
        let too_late = token.expires_at as i64 + rewards::CLAIM_GRACE;
        assert_eq!(claim(victim_hex.clone(), vec![greedy.clone()], too_late).await, 0);
        assert_eq!(open(serial).await, 0);

        // A worker over-claiming. Tried: the reader signed for half the token's budget; the
        // worker claims that, then the same order with its figure raised to the budget, an order
        // for the budget it signed itself, and the reader's order for another worker under this
        // serial. Must hold: only the half the reader signed for is taken.
        let claimed_bytes = || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT bytes FROM egress_claims WHERE serial = $1")
                    .bind(serial.to_hex())
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<i64, _>("bytes")
            }
        };
        let half = budget / 2;
        let honest = order(half as u64, victim.node_id, &reader);
        assert_eq!(
            claim(victim_hex.clone(), vec![claim_of(honest.clone(), true)], now).await,
            1
        );
        assert_eq!(claimed_bytes().await, half);
        let mut raised = honest.to_vec();
        let figure = disktro_core::order::ORDER_LEN - 64 - 8;
        raised[figure..figure + 8].copy_from_slice(&(budget as u64).to_be_bytes());
        let self_signed = order(budget as u64, victim.node_id, &forger);
        let elsewhere = order(budget as u64, fresh.nodes[1].node_id, &reader);
        for over in [disktro_core::api::Base64::new(raised), self_signed, elsewhere] {
            assert_eq!(claim(victim_hex.clone(), vec![claim_of(over, false)], now).await, 0);
            assert_eq!(
                claimed_bytes().await,
                half,
                "an order the reader did not sign was taken"
            );
        }
        // The reader's own order beyond the budget: capped at the budget.
        assert_eq!(claim(victim_hex.clone(), vec![greedy], now).await, 1);
        assert_eq!(claimed_bytes().await, budget);
        served.insert(
            victim.node_id.to_hex(),
            served.get(&victim.node_id.to_hex()).copied().unwrap_or(0) + budget,
        );

        // Settlement after the tokens expired (plus the grace): storage up to then, and each
        // serial's egress once. Hand calculation: storage = held × (t2 − t0) in all, egress =
        // what the test read from each worker (+ the capped claim), amounts at the stated rates.
        let t2 = expiry.max(t1) + rewards::CLAIM_GRACE + 1;
        rewards::accrue(&ctx.db, t2).await.unwrap();
        rewards::accrue(&ctx.db, t2 + 10).await.unwrap();
        let mut storage: HashMap<String, i64> = HashMap::new();
        let mut egress: HashMap<String, i64> = HashMap::new();
        let mut serials = HashSet::new();
        for (_, node, kind, start, end, quantity, reference) in ledger(&pool).await {
            match kind.as_str() {
                "storage" => *storage.entry(node).or_default() += quantity,
                _ => {
                    assert!(serials.insert(reference), "a serial paid twice");
                    assert!(end <= t2 && start < end);
                    *egress.entry(node).or_default() += quantity;
                }
            }
        }
        let seen_away: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM node_samples WHERE node_id = $1 AND at > $2 AND at < $3")
                .bind(&away)
                .bind(t1 - 60)
                .bind(t2)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>("n")
                * 60;
        let seen_away = seen_away.min(t2 - t1);
        assert!(t2 + 10 < t1 + 1800);
        // Away from t1 through the whole next period: only the minute its last heartbeat fell
        // in overlaps it.
        assert!(
            seen_away <= 60 && seen_away < t2 - t1,
            "{seen_away} s of {} counted",
            t2 - t1
        );
        let want_storage: HashMap<String, i64> = held
            .iter()
            .map(|(n, b)| {
                // Still away in the last 10 s period (t2 + 10 < t1 + 1800): nothing for it.
                let seconds = if *n == away {
                    (t1 - t0) + seen_away
                } else {
                    t2 + 10 - t0
                };
                (n.clone(), b * seconds)
            })
            .collect();
        let differ: Vec<_> = want_storage
            .iter()
            .filter(|(n, w)| storage.get(*n) != Some(*w))
            .map(|(n, w)| (n.clone(), *w, storage.get(n).copied(), *n == away))
            .collect();
        assert!(
            differ.is_empty() && storage.len() == want_storage.len(),
            "storage paid differs (node, wanted, paid, away): {differ:?}"
        );
        assert_eq!(egress, served);
        for r in sqlx::query("SELECT kind, quantity, amount FROM ledger")
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let (kind, q, amount): (String, i64, i64) = (
                r.try_get("kind").unwrap(),
                r.try_get("quantity").unwrap(),
                r.try_get("amount").unwrap(),
            );
            let want = if kind == "storage" { q * 15 / 25_920_000 } else { q * 2 };
            assert_eq!(amount, want, "{kind} of {q}");
        }
        let earnings = json(&format!("{url}/api/v1/nodes/{}/earnings", victim.node_id)).await;
        let day_total: i64 = earnings
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["amount"].as_i64().unwrap())
            .sum();
        assert!(day_total > 0, "{earnings}");

        // The chain verifies, through the library and the endpoint.
        let check = rewards::verify(&ctx.db).await.unwrap();
        assert!(check.valid, "{check:?}");
        let n = check.entries as i64;
        assert!(n >= 12, "{n} entries");
        assert_eq!(json(&format!("{url}/api/v1/ledger/verify")).await["valid"], true);

        // Tried: one amount changed; a row deleted; a row changed with its own hash recomputed.
        // Must hold: each is found, at the right entry.
        let q = |sql: &'static str| sqlx::query(sql);
        q("UPDATE ledger SET amount = amount + 1 WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        let bad = rewards::verify(&ctx.db).await.unwrap();
        assert_eq!((bad.valid, bad.first_bad_seq), (false, Some(2)), "{bad:?}");
        assert_eq!(json(&format!("{url}/api/v1/ledger/verify")).await["first_bad_seq"], 2);
        q("UPDATE ledger SET amount = amount - 1 WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        assert!(rewards::verify(&ctx.db).await.unwrap().valid);

        let third = rewards::entry(&ctx.db, 3).await.unwrap().unwrap();
        q("DELETE FROM ledger WHERE seq = 3").execute(&pool).await.unwrap();
        let bad = rewards::verify(&ctx.db).await.unwrap();
        assert_eq!((bad.valid, bad.first_bad_seq), (false, Some(3)), "{bad:?}");
        assert!(bad.problem.unwrap().contains("missing"));
        rewards::insert(&mut pool.acquire().await.unwrap(), &third)
            .await
            .unwrap();
        assert!(rewards::verify(&ctx.db).await.unwrap().valid);

        let mut forged = rewards::entry(&ctx.db, 4).await.unwrap().unwrap();
        forged.quantity += 1000;
        forged.hash = forged.compute_hash();
        sqlx::query("UPDATE ledger SET quantity = $1, hash = $2 WHERE seq = 4")
            .bind(forged.quantity)
            .bind(&forged.hash)
            .execute(&pool)
            .await
            .unwrap();
        let bad = rewards::verify(&ctx.db).await.unwrap();
        assert_eq!((bad.valid, bad.first_bad_seq), (false, Some(5)), "{bad:?}");
        pool.close().await;
    }
}

/// Tried: 10 worker processes; a 12-chunk file; the worker holding the first data shard of the
/// first chunk stalls (SIGSTOP: its sockets stay open and nothing is read or answered) just
/// before the reader asks the server for the file, so the answer still calls it online and it
/// ranks first for every chunk it holds a data shard of.
/// Must hold: the download finishes byte-identical in well under 15 s: the chunks that asked the
/// stalled worker ask one more after `fetch::HEDGE_AFTER` (5 s), and the chunks after rank it
/// last (it straggled), so the stall costs about one hedge (5.1 s measured). Without hedging a
/// chunk waits out the 60 s request timeout; without straggler ranking every window of chunks
/// fetched ahead pays a hedge (20 s measured for this file).
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_worker_costs_a_download_seconds_not_minutes() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let workers: Vec<Worker> = (0..10).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 10).await);
    let a = account(&server.url).await;
    let data = random_bytes(12 * CHUNK as usize - 100, 77);
    let id = put(&a, &data, "stalled.bin").await;

    let first = a.api.file(&id).await.unwrap();
    let holder = first.nodes[usize::from(first.locations[0][0])].node_id.to_string();
    let stalled = workers.iter().find(|w| w.node_id == holder).expect("a worker of ours");
    let pid = stalled.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let started = Instant::now();
    let answer = a.api.file(&id).await.unwrap();
    let key = a.me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let result = download::download(&answer, &key, Some(&a.me.public_key()), Vec::new(), &|_| {}).await;
    let took = started.elapsed();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let (_, out) = result.unwrap_or_else(|e| panic!("the download failed: {e}"));
    assert!(out == data, "the download differs");
    eprintln!("a download past a stalled worker took {took:?}");
    assert!(
        took < Duration::from_secs(15),
        "the download waited on the stalled worker for {took:?}"
    );
}

/// Tried: a 256 MiB upload (4 MiB chunks, 6 + 4) to 10 worker processes; once a quarter of it is
/// stored, two of the workers are killed (SIGKILL) while shards are on the wire to them.
/// Must hold: the upload completes: the killed workers' waiting shards are placed again by a
/// replan, and since 8 workers cannot hold 10 shards of a chunk on distinct workers, those left
/// without a worker are recorded lost ("unplaced") on the killed worker, at most 2 per chunk, for
/// repair; the file downloads byte-identical; every chunk has 10 shard rows, at least 8 of them
/// on live workers; nothing was stored on a killed worker after the kill.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_survives_two_workers_killed_mid_upload() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let mut workers: Vec<Worker> = (0..10).map(|_| Worker::start(&server.url, &[], None)).collect();
    assert!(wait_online(&server.url, 10).await);
    let a = account(&server.url).await;
    let data = random_bytes(256 << 20, 91);
    let meta = FileMetadata {
        name: "survivor.bin".to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: data.len() as u64,
        attributes: Vec::new(),
    };
    let victims: Vec<u32> = workers[..2].iter().map(|w| w.child.id()).collect();
    let killed_at = Mutex::new(None::<u64>);
    let kill_when_a_quarter_is_stored = |p: disktro_client::upload::Progress| {
        let mut killed = killed_at.lock().unwrap();
        if killed.is_none() && p.bytes_done >= p.size / 4 {
            for pid in &victims {
                assert!(
                    Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status()
                        .unwrap()
                        .success()
                );
            }
            *killed = Some(p.bytes_done);
        }
    };
    let uploaded = upload(
        &a.api,
        &a.me,
        std::io::Cursor::new(data.clone()),
        data.len() as u64,
        &meta,
        &UploadOptions::default(),
        &kill_when_a_quarter_is_stored,
    )
    .await
    .unwrap_or_else(|e| panic!("the upload failed after two workers were killed: {e}"));
    let killed_at = killed_at.lock().unwrap().expect("the workers were killed mid-upload");
    assert!(killed_at < data.len() as u64, "the kill came after the upload");
    for w in &mut workers[..2] {
        w.kill();
    }
    let id = uploaded.summary.file_id.to_hex();
    assert!(get(&a, &id).await == data, "the download differs");

    let pool = db(&db_case.url).await;
    let killed: Vec<String> = workers[..2].iter().map(|w| w.node_id.clone()).collect();
    let rows = sqlx::query("SELECT chunk, node_id, shard_id FROM file_shards WHERE file_id = $1")
        .bind(&id)
        .fetch_all(&pool)
        .await
        .unwrap();
    let lost: HashSet<(String, String)> = sqlx::query("SELECT node_id, shard_id, reason FROM corrupt_reports")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.get::<String, _>("reason"), "unplaced");
            (r.get("node_id"), r.get("shard_id"))
        })
        .collect();
    let mut per_chunk: HashMap<i64, (usize, usize)> = HashMap::new();
    for r in &rows {
        let (node, shard): (String, String) = (r.get("node_id"), r.get("shard_id"));
        let entry = per_chunk.entry(r.get::<i64, _>("chunk")).or_default();
        entry.0 += 1;
        if !killed.contains(&node) && !lost.contains(&(node.clone(), shard.clone())) {
            entry.1 += 1;
        }
    }
    assert_eq!(per_chunk.len(), 64);
    for (chunk, (rows, live)) in &per_chunk {
        assert_eq!(*rows, 10, "chunk {chunk}");
        assert!(*live >= 8, "chunk {chunk} has {live} shards on live workers");
    }
    // Shards recorded on a killed worker and not reported lost were stored there (receipted)
    // before the kill: the chunks before the kill point and the window in flight at most.
    let on_killed_chunks: HashSet<i64> = rows
        .iter()
        .filter(|r| {
            let (node, shard): (String, String) = (r.get("node_id"), r.get("shard_id"));
            killed.contains(&node) && !lost.contains(&(node, shard))
        })
        .map(|r| r.get::<i64, _>("chunk"))
        .collect();
    let last_before_kill = (killed_at / (4 << 20)) as i64;
    let in_flight = UploadOptions::default().chunks_in_flight as i64;
    assert!(
        on_killed_chunks.iter().all(|&c| c <= last_before_kill + in_flight),
        "shards stored on killed workers in chunks {on_killed_chunks:?}, killed after chunk {last_before_kill}"
    );
    eprintln!(
        "killed at {killed_at} bytes; {} shards left unplaced for repair",
        lost.len()
    );
    pool.close().await;
}

/// The value of the series `name` (with its labels as printed, e.g. `x_total{kind="put"}`) in a
/// metrics text; 0 when absent.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.split_whitespace().next())
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "not an OpenMetrics exposition: {text}");
    text
}

/// The sum of `name` over every worker's metrics.
async fn over_workers(workers: &[Worker], name: &str) -> f64 {
    let mut sum = 0.0;
    for w in workers {
        let text = scrape(&format!("http://{}/metrics", w.metrics.expect("metrics served"))).await;
        sum += series(&text, name);
    }
    sum
}

/// Tried: a server and 10 worker processes serving metrics on ports of their own
/// (`--metrics-listen`); scrapes before and after a 1 MiB upload (16 chunks of 6 + 4 shards), its
/// download, and a hello with a forged token sent to one worker.
/// Must hold: both answer OpenMetrics text; after the upload the server counts one more begin and
/// commit, the begin route answered 201 once more, and its latency histogram moved; the workers
/// received at least the file's bytes and stored 160 shards (`put`, `ok`); after the download
/// they sent at least the file's bytes; the forged token shows as a `bad_token` refusal; the
/// database pool is reported.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_what_the_network_does() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db_case = databases().await.remove(0);
    let server = start_server(db_case.dir.path(), &db_case.url, &[]);
    let workers: Vec<Worker> = (0..10)
        .map(|_| Worker::start(&server.url, &["--metrics-listen", "127.0.0.1:0"], None))
        .collect();
    assert!(wait_online(&server.url, 10).await);
    let a = account(&server.url).await;
    let metrics_url = format!("{}/metrics", server.url);
    let begin = "disktro_http_requests_total{route=\"/api/v1/uploads\",method=\"POST\",status=\"201\"}";
    let begin_time = "disktro_http_request_duration_seconds_count{route=\"/api/v1/uploads\"}";
    let puts = "disktro_worker_requests_total{kind=\"put\",outcome=\"ok\"}";

    let before = scrape(&metrics_url).await;
    let (received, stored) = (
        over_workers(&workers, "disktro_worker_received_bytes_total").await,
        over_workers(&workers, puts).await,
    );
    let data = random_bytes(16 * CHUNK as usize, 5);
    let id = put(&a, &data, "scraped.bin").await;
    let after = scrape(&metrics_url).await;
    for name in [
        "disktro_uploads_begun_total",
        "disktro_uploads_committed_total",
        begin,
        begin_time,
    ] {
        assert_eq!(series(&after, name), series(&before, name) + 1.0, "{name}");
    }
    assert!(
        series(&after, "disktro_db_connections{state=\"idle\"}")
            + series(&after, "disktro_db_connections{state=\"busy\"}")
            >= 1.0
    );
    assert!(over_workers(&workers, "disktro_worker_received_bytes_total").await - received >= data.len() as f64);
    assert!(over_workers(&workers, puts).await - stored >= 160.0);

    let sent = over_workers(&workers, "disktro_worker_sent_bytes_total").await;
    let answer = a.api.file(&id).await.unwrap();
    let key = a.me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let (_, got) = download::download(&answer, &key, Some(&a.me.public_key()), Vec::new(), &|_| {})
        .await
        .unwrap();
    assert!(got == data);
    assert!(over_workers(&workers, "disktro_worker_sent_bytes_total").await - sent >= data.len() as f64);

    let refusals = "disktro_worker_token_refusals_total{reason=\"bad_token\"}";
    let forged = over_workers(&workers, refusals).await;
    let client = disktro_net::client::WorkerClient::connect(
        &format!("ws://{}", workers[0].listen),
        &disktro_net::client::ConnectOptions::default(),
    )
    .await
    .unwrap();
    // Well formed, signed by a key that is not the server's.
    let forger = disktro_core::keys::Keypair::generate();
    let token = disktro_core::token::Token {
        operation: disktro_core::token::Operation::Put,
        issuer: forger.public(),
        worker: workers[0].node_id.parse().unwrap(),
        scope: disktro_core::token::Scope::Upload([7; 16]),
        serial: disktro_core::Serial::random(),
        expires_at: u64::try_from(disktro_server::context::unix_now()).unwrap() + 600,
        byte_budget: 1 << 20,
        order_key: None,
        shards: Vec::new(),
    }
    .sign(&forger)
    .unwrap();
    let refused = client.request(Body::Hello { token }).await;
    assert!(refused.is_err(), "a forged token was welcomed");
    assert_eq!(over_workers(&workers, refusals).await, forged + 1.0);

    // The dashboard in the repository asks only for series the two expose.
    let worker_text = scrape(&format!("http://{}/metrics", workers[0].metrics.unwrap())).await;
    let exposed = format!("{}{worker_text}", scrape(&metrics_url).await);
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring/grafana-dashboard.json"),
    )
    .unwrap();
    let mut asked = 0;
    for (at, _) in dashboard.match_indices("disktro_") {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name == "disktro_" {
            continue;
        }
        asked += 1;
        // Every family is declared (`# TYPE name kind`); the known series are there from the
        // start, at zero, so a quiet network (no audit yet) exposes them too.
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            exposed.lines().any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "the dashboard asks for {name}, which nothing exposes"
        );
    }
    assert!(asked > 10, "the dashboard names {asked} series");
}

/// Tried: the server and 10 workers each on a host of its own (network namespaces with their own
/// addresses in 198.18.0.0/15 joined by a bridge, `scripts/netns`), every interval at its
/// default, 4 of the workers' links limited to 20 Mbit/s each way (`tc tbf`); from this host,
/// through the library the CLI runs, sign-up, a 128 MiB upload (32 chunks of 4 MiB) and its
/// download.
/// Must hold: the workers register under their hosts' addresses and are all online; the upload
/// commits with shards on every host, the slow ones included; the download is byte-identical,
/// and the slow workers served at most a fifth of its shards: the readers measure each worker
/// and ask the fast ones first, after the first chunks and one measurement of each slow worker,
/// and hedge a chunk's last shards a few of its first shard's times later (12 of 204 with both;
/// 21 and 26 of 192 with the speed ranking alone; 78 by the data-first rule alone).
/// Skipped, saying so, when not run as root.
#[tokio::test(flavor = "multi_thread")]
async fn a_network_of_hosts_stores_and_serves_a_file() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let names: Vec<String> = std::iter::once("server".to_owned())
        .chain((0..10).map(|i| format!("w{i}")))
        .collect();
    let Some(hosts) = support::Hosts::up(&names.iter().map(String::as_str).collect::<Vec<_>>()) else {
        return;
    };
    for slow in 7..=10 {
        hosts.limit(slow, "20mbit");
    }
    let db_case = databases().await.remove(0);
    let server = Server::start_on(
        Some(&hosts.hosts[0]),
        db_case.dir.path(),
        &db_case.url,
        &["--join-token", JOIN],
    );
    assert!(server.url.contains(&hosts.hosts[0].address), "{}", server.url);
    let workers: Vec<Worker> = hosts.hosts[1..]
        .iter()
        .map(|h| Worker::start_on(h, &server.url, &["--metrics-listen", &format!("{}:9464", h.address)]))
        .collect();
    assert!(wait_online(&server.url, 10).await, "{}", server.log_text());
    let nodes: Vec<Value> = reqwest::get(format!("{}/api/v1/nodes", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for h in &hosts.hosts[1..] {
        let url = format!("ws://{}:4000", h.address);
        assert!(
            nodes.iter().any(|n| n["url"] == url.as_str()),
            "no worker at {url}: {nodes:?}"
        );
    }

    let a = account(&server.url).await;
    // Chunks of the real size: a 20 Mbit/s link takes about 0.3 s per shard of one.
    let data = random_bytes(128 << 20, 12);
    let id = put_with(&a, &data, "across.bin", &UploadOptions::default()).await;
    let gets = "disktro_worker_requests_total{kind=\"get\",outcome=\"ok\"}";
    let (fast, slow) = workers.split_at(6);
    let before = (over_workers(fast, gets).await, over_workers(slow, gets).await);
    let answer = a.api.file(&id).await.unwrap();
    let used: HashSet<&str> = answer
        .locations
        .iter()
        .flatten()
        .map(|&n| answer.nodes[usize::from(n)].url.as_str())
        .collect();
    assert_eq!(used.len(), 10, "shards on {used:?}");
    let key = a.me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let (_, got) = download::download(&answer, &key, Some(&a.me.public_key()), Vec::new(), &|_| {})
        .await
        .unwrap();
    assert!(got == data, "the download differs");
    let served = (
        over_workers(fast, gets).await - before.0,
        over_workers(slow, gets).await - before.1,
    );
    eprintln!(
        "gets served: {} by the 6 fast workers, {} by the 4 slow ones",
        served.0, served.1
    );
    assert!(
        served.1 <= 0.2 * (served.0 + served.1),
        "the slow workers served {} of {} gets",
        served.1,
        served.0 + served.1
    );
    drop(workers);
}

/// The `disktro` CLI binary `cargo test --workspace` built next to this test (or `DISKTRO_CLI_BIN`).
fn cli_bin() -> PathBuf {
    built_bin("disktro", "DISKTRO_CLI_BIN")
}

/// A local ACME CA: Debian's `pebble` (Let's Encrypt's test server) and `pebble-challtestsrv` as
/// its DNS, run in this namespace on the bridge of `hosts`, where every host is reached; the DNS
/// answers `HOST.disktro.test` with each host's address, so the CA validates the real listeners.
struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    directory: String,
    /// The CA of the directory's own HTTPS certificate (`--acme-ca-cert`).
    listener_ca: PathBuf,
    /// The root the certificates it issues chain to (`--ca-cert` for everyone who connects).
    issuing_root: PathBuf,
    issuing_root_pem: String,
}

impl Pebble {
    async fn start(hosts: &support::Hosts, names: &[String], dir: &Path) -> Self {
        disktro_net::tls::install_default_provider();
        for program in ["pebble", "pebble-challtestsrv"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "{program} is missing: run scripts/setup (Debian package pebble)"
            );
        }
        let at = &hosts.bridge;
        let listener = rcgen::generate_simple_self_signed(vec![at.clone()]).unwrap();
        let listener_ca = dir.join("pebble-listener.pem");
        std::fs::write(&listener_ca, listener.cert.pem()).unwrap();
        std::fs::write(dir.join("pebble-listener.key"), listener.signing_key.serialize_pem()).unwrap();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("{at}:14000"),
            "managementListenAddress": format!("{at}:15000"),
            "certificate": listener_ca,
            "privateKey": dir.join("pebble-listener.key"),
            "httpPort": 80,
            // Where it validates tls-alpn-01: the port every host serves TLS on.
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-management", &format!("{at}:8055"), "-dns01", &format!("{at}:8053")])
            .args([
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "",
                "-defaultIPv6",
                "",
            ])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .unwrap();
        let ca = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("{at}:8053")])
            // No random pauses before validating, no random nonce refusals: a test, not a drill.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let mut pebble = Self {
            children: vec![dns, ca],
            directory: format!("https://{at}:14000/dir"),
            listener_ca,
            issuing_root: dir.join("pebble-root.pem"),
            issuing_root_pem: String::new(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .add_root_certificate(reqwest::Certificate::from_pem(listener.cert.pem().as_bytes()).unwrap())
            .build()
            .unwrap();
        let plain = reqwest::Client::new();
        let up = eventually(Duration::from_secs(30), || {
            let (http, plain) = (http.clone(), plain.clone());
            let directory = pebble.directory.clone();
            async move {
                http.get(&directory).send().await.is_ok()
                    && plain.get(format!("http://{at}:8055/")).send().await.is_ok()
            }
        })
        .await;
        assert!(up, "pebble did not start: see {}", dir.display());
        for (name, host) in names.iter().zip(&hosts.hosts) {
            let r = plain
                .post(format!("http://{at}:8055/add-a"))
                .json(&serde_json::json!({"host": format!("{name}.disktro.test"), "addresses": [host.address]}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "add-a: {}", r.status());
        }
        let root = http
            .get(format!("https://{at}:15000/roots/0"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(root.contains("BEGIN CERTIFICATE"), "{root}");
        std::fs::write(&pebble.issuing_root, &root).unwrap();
        pebble.issuing_root_pem = root;
        pebble
    }

    /// The flags that get a process its certificate for `name` from this CA.
    fn flags(&self, name: &str) -> Vec<String> {
        vec![
            "--listen".to_owned(),
            String::new(), // the caller's address, port 443
            "--acme-directory".to_owned(),
            self.directory.clone(),
            "--acme-domain".to_owned(),
            format!("{name}.disktro.test"),
            "--acme-contact".to_owned(),
            "operator@disktro.test".to_owned(),
            "--acme-ca-cert".to_owned(),
            self.listener_ca.to_str().unwrap().to_owned(),
            "--ca-cert".to_owned(),
            self.issuing_root.to_str().unwrap().to_owned(),
        ]
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The certificate `host` shows to a client dialling `name` at `address:443` that trusts only
/// `root`; `None` when the handshake fails (no certificate yet, or one `root` did not issue).
async fn certificate_shown(address: &str, name: &str, root: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject as _;
    let roots: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(root.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots);
    let config = rustls::ClientConfig::builder_with_provider(disktro_net::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(format!("{address}:443")).await.ok()?;
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .ok()?
        .ok()?;
    tls.get_ref().1.peer_certificates().map(|c| c[0].to_vec())
}

/// Tried: the deployment the operator's guide describes, on hosts of their own (network
/// namespaces, `scripts/netns`), every name resolved as DNS would (`HOST.disktro.test`): a local
/// ACME CA (Debian's `pebble`, Let's Encrypt's test server, with its DNS), the server and 10
/// workers each given only `--acme-directory/--acme-domain` (no certificate files) and listening
/// on port 443 of their hosts, and the `disktro` CLI on an 11th host trusting only the CA's root
/// (`--ca-cert`): sign-up, a 24 MiB upload and its download. Then one worker is restarted with a
/// kept certificate due for renewal (issued by another CA, a day from expiry).
/// Must hold: the server and every worker obtain certificates over tls-alpn-01 on their own
/// port, the workers advertise `wss://NAME.disktro.test` and come online over HTTPS; the CLI's
/// upload and download work over https:// and wss:// with the CA's root alone and the bytes are
/// the same; the certificates are kept (owner-only keys) in the data directories; the worker with
/// the certificate due for renewal replaces it with one from the CA, and downloads work again.
/// Skipped, saying so, when not run as root.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_come_from_an_acme_ca_and_are_renewed() {
    use std::os::unix::fs::PermissionsExt as _;
    let _alone = ONE_AT_A_TIME.lock().await;
    let names: Vec<String> = std::iter::once("server".to_owned())
        .chain((0..10).map(|i| format!("w{i}")))
        .chain(std::iter::once("client".to_owned()))
        .collect();
    let Some(hosts) = support::Hosts::up(&names.iter().map(String::as_str).collect::<Vec<_>>()) else {
        return;
    };
    hosts.name_under("disktro.test");
    let work = tempfile::tempdir().unwrap();
    let pebble = Pebble::start(&hosts, &names, work.path()).await;
    let on_443 = |flags: &mut Vec<String>, host: &support::Host| flags[1] = format!("{}:443", host.address);

    let db_case = databases().await.remove(0);
    let mut flags = pebble.flags("server");
    on_443(&mut flags, &hosts.hosts[0]);
    flags.extend(["--join-token".to_owned(), JOIN.to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_on(Some(&hosts.hosts[0]), db_case.dir.path(), &db_case.url, &flags);
    let url = "https://server.disktro.test";
    let server_address: SocketAddr = format!("{}:443", hosts.hosts[0].address).parse().unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(reqwest::Certificate::from_pem(pebble.issuing_root_pem.as_bytes()).unwrap())
        .resolve("server.disktro.test", server_address)
        .build()
        .unwrap();
    let nodes = || async {
        match http.get(format!("{url}/api/v1/nodes")).send().await {
            Ok(r) => r.json::<Vec<Value>>().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    };
    let serving = eventually(Duration::from_secs(60), || async {
        http.get(format!("{url}/api/v1/nodes")).send().await.is_ok()
    })
    .await;
    assert!(serving, "no certificate for the server:\n{}", server.log_text());

    let mut workers: Vec<Worker> = Vec::new();
    for (i, host) in hosts.hosts[1..=10].iter().enumerate() {
        let mut flags = pebble.flags(&format!("w{i}"));
        on_443(&mut flags, host);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        workers.push(Worker::start_on(host, url, &flags));
    }
    let online = eventually(Duration::from_secs(60), || async {
        nodes().await.iter().filter(|n| n["status"] == "online").count() == 10
    })
    .await;
    assert!(
        online,
        "the workers did not come online: {:?}\n{}",
        nodes().await,
        server.log_text()
    );
    let listed = nodes().await;
    for i in 0..10 {
        let want = format!("wss://w{i}.disktro.test");
        assert!(
            listed.iter().any(|n| n["url"] == want.as_str()),
            "no {want} in {listed:?}"
        );
    }
    for (i, (w, host)) in workers.iter().zip(&hosts.hosts[1..]).enumerate() {
        let name = format!("w{i}.disktro.test");
        let got = eventually(Duration::from_secs(60), || async {
            certificate_shown(&host.address, &name, &pebble.issuing_root_pem)
                .await
                .is_some()
        })
        .await;
        assert!(got, "{name} has no certificate from the CA");
        let key = w.dir.path().join("data/acme/certificate.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", key.display());
    }

    // The CLI on a host of its own, resolving names from its hosts file like any client.
    let client = &hosts.hosts[11];
    let home = work.path().join("client");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = support::Host::command(Some(client), cli_bin());
        c.env("DISKTRO_CONFIG_DIR", home.join("config"))
            .env_remove("DISKTRO_SERVER")
            .env("DISKTRO_CA_CERT", &pebble.issuing_root)
            .args(["--server", url])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            std::io::Write::write_all(&mut pipe, text.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "disktro {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    run(
        &["signup", "--email", "acme@disktro.test", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    let data = random_bytes(24 << 20, 26);
    let source = home.join("source.bin");
    std::fs::write(&source, &data).unwrap();
    let id = run(&["upload", source.to_str().unwrap()], None);
    let got = home.join("got.bin");
    run(&["download", &id, "-o", got.to_str().unwrap()], None);
    assert!(std::fs::read(&got).unwrap() == data, "the download differs");

    // A kept certificate due for renewal: issued 60 days ago by another CA, a day from expiry.
    let renewing = workers.remove(0);
    let (mut renewing, host) = (renewing, &hosts.hosts[1]);
    renewing.kill();
    let mut stale_ca = rcgen::CertificateParams::new(vec!["stale.disktro.test".to_owned()]).unwrap();
    stale_ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(stale_ca, rcgen::KeyPair::generate().unwrap());
    let mut params = rcgen::CertificateParams::new(vec!["w0.disktro.test".to_owned()]).unwrap();
    let day = Duration::from_secs(86_400);
    params.not_before = (std::time::SystemTime::now() - 60 * day).into();
    params.not_after = (std::time::SystemTime::now() + day).into();
    let stale_key = rcgen::KeyPair::generate().unwrap();
    let stale = params.signed_by(&stale_key, &issuer).unwrap();
    let acme_dir = renewing.dir.path().join("data/acme");
    std::fs::write(acme_dir.join("certificate.pem"), stale.pem()).unwrap();
    std::fs::write(acme_dir.join("certificate.key"), stale_key.serialize_pem()).unwrap();
    let dir = std::mem::replace(&mut renewing.dir, tempfile::tempdir().unwrap());
    let mut flags = pebble.flags("w0");
    on_443(&mut flags, host);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let renewed = Worker::spawn_on(Some(host), dir, url, &flags, None, false);
    let replaced = eventually(Duration::from_secs(60), || async {
        certificate_shown(&host.address, "w0.disktro.test", &pebble.issuing_root_pem)
            .await
            .is_some()
    })
    .await;
    assert!(replaced, "the certificate due for renewal was not replaced");
    let kept = std::fs::read_to_string(renewed.dir.path().join("data/acme/certificate.pem")).unwrap();
    assert_ne!(kept, stale.pem(), "the renewed certificate was not kept");
    let online = eventually(Duration::from_secs(60), || async {
        nodes().await.iter().filter(|n| n["status"] == "online").count() == 10
    })
    .await;
    assert!(online, "the restarted worker did not come back");
    let again = home.join("again.bin");
    run(&["download", &id, "-o", again.to_str().unwrap()], None);
    assert!(
        std::fs::read(&again).unwrap() == data,
        "the download after renewal differs"
    );
    drop((renewed, workers, server));
}

/// The copies of hot files the answer for `file_id` lists: (chunk, slot, node id), with the node
/// id of each slot's placement.
async fn copies_listed(a: &Account, file_id: &str) -> (Vec<(usize, usize, String)>, Vec<Vec<String>>) {
    let answer = a.api.file(file_id).await.unwrap();
    let node = |n: u16| answer.nodes[usize::from(n)].node_id.to_hex();
    let copies = answer
        .copies
        .iter()
        .enumerate()
        .flat_map(|(c, list)| list.iter().map(move |&[slot, n]| (c, usize::from(slot), n)))
        .map(|(c, slot, n)| (c, slot, node(n)))
        .collect();
    let placed = answer
        .locations
        .iter()
        .map(|slots| slots.iter().map(|&n| node(n)).collect())
        .collect();
    (copies, placed)
}

/// Tried: the server and 10 workers each on a host of its own (network namespaces), 7 of the
/// workers' links at 20 Mbit/s each way; the server's jobs on test intervals (its hot-files job
/// every second; a file is hot at the default 20 reads in ten minutes); a 16 MiB file (4 chunks
/// of 4 MiB) read 20 times (the owner's download answers, each a read granted); then the server
/// restarted on the same address (its read counts are in memory: the file has cooled).
/// Must hold: the answers soon list copies of the file's shards, all on the 3 fast workers,
/// never where that shard is placed, and on their disks, so every chunk can be read from the
/// fast workers alone; the copies count for nothing: every chunk is still exactly full (k + m
/// healthy placements); a download is byte-identical and the slow workers serve none of it;
/// once cooled, the answers list no copies and the copied shards are collected from the workers
/// that held them as copies (their placements stay, every chunk still full).
/// Skipped, saying so, when not run as root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_files_get_copies_that_count_for_nothing_and_go_when_they_cool() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let names: Vec<String> = std::iter::once("server".to_owned())
        .chain((0..10).map(|i| format!("w{i}")))
        .collect();
    let Some(hosts) = support::Hosts::up(&names.iter().map(String::as_str).collect::<Vec<_>>()) else {
        return;
    };
    for slow in 4..=10 {
        hosts.limit(slow, "20mbit");
    }
    let db_case = databases().await.remove(0);
    let listen = format!("{}:3000", hosts.hosts[0].address);
    let flags = ["--hot-interval", "1s", "--listen", listen.as_str()];
    let server = start_server_on(Some(&hosts.hosts[0]), db_case.dir.path(), &db_case.url, &flags);
    let workers: Vec<Worker> = hosts.hosts[1..]
        .iter()
        .map(|h| {
            let extra = ["--metrics-listen", &format!("{}:9464", h.address)];
            Worker::spawn_on(Some(h), tempfile::tempdir().unwrap(), &server.url, &extra, None, true)
        })
        .collect();
    let (fast, slow) = workers.split_at(3);
    assert!(wait_online(&server.url, 10).await, "10 workers online");
    let a = account(&server.url).await;
    let data = random_bytes(16 << 20, 27);
    let id = put_with(&a, &data, "hot.bin", &UploadOptions::default()).await;
    assert!(eventually(Duration::from_secs(30), || all_full(&server.url)).await);
    let full_before = durability(&server.url).await;
    let (none, _) = copies_listed(&a, &id).await;
    assert!(none.is_empty(), "copies of a file read once: {none:?}");

    for _ in 0..20 {
        a.api.file(&id).await.unwrap();
    }
    let copied = eventually(Duration::from_secs(60), || async {
        let (copies, placed) = copies_listed(&a, &id).await;
        // Every chunk readable from the fast workers: k = 6 of its shards on them.
        let on_fast = |chunk: usize| {
            let slots: HashSet<usize> = placed[chunk]
                .iter()
                .enumerate()
                .filter(|(_, n)| fast.iter().any(|w| &&w.node_id == n))
                .map(|(s, _)| s)
                .chain(copies.iter().filter(|c| c.0 == chunk).map(|c| c.1))
                .collect();
            slots.len()
        };
        !copies.is_empty() && (0..placed.len()).all(|c| on_fast(c) >= 6)
    })
    .await;
    assert!(copied, "no copies of a file read 20 times:\n{}", server.log_text());
    let (copies, placed) = copies_listed(&a, &id).await;
    let answer = a.api.file(&id).await.unwrap();
    let manifest = disktro_core::SignedManifest::decode(&answer.manifest).unwrap();
    for (chunk, slot, node) in &copies {
        assert_ne!(
            &placed[*chunk][*slot], node,
            "a copy of chunk {chunk} slot {slot} where it is placed"
        );
        let shard = manifest.manifest().chunks[*chunk].shards[*slot].to_hex();
        let holder = fast
            .iter()
            .find(|w| &w.node_id == node)
            .expect("copies on the fast workers only");
        assert!(
            holder.shards_on_disk().contains(&shard),
            "the copy of {shard} is not on {node}"
        );
    }
    let full_after = durability(&server.url).await;
    assert_eq!(full_after["chunks"], full_before["chunks"]);
    assert_eq!(
        full_after["full"], full_before["full"],
        "copies changed the durability figures"
    );
    let gets = "disktro_worker_requests_total{kind=\"get\",outcome=\"ok\"}";
    let before = over_workers(slow, gets).await;
    assert!(get(&a, &id).await == data, "the download with copies differs");
    let served = over_workers(slow, gets).await - before;
    // Without the copies, every chunk needs the shards the fast workers lack from the slow ones.
    // With them, none: a slow worker is asked only as a hedge, when a fast one's answer was late
    // (a loaded machine), never for every chunk.
    let without_copies: usize = placed
        .iter()
        .map(|nodes| 6usize.saturating_sub(nodes.iter().filter(|n| fast.iter().any(|w| &&w.node_id == n)).count()))
        .sum();
    assert!(
        without_copies >= placed.len(),
        "the fast workers alone held whole chunks"
    );
    assert!(
        served < without_copies as f64 / 2.0,
        "the slow workers served {served} gets of a hot file (without copies: {without_copies})"
    );

    // Cooled: the restarted server has counted no reads.
    server.stop();
    let server = start_server_on(Some(&hosts.hosts[0]), db_case.dir.path(), &db_case.url, &flags);
    let dropped = eventually(Duration::from_secs(30), || async {
        copies_listed(&a, &id).await.0.is_empty()
    })
    .await;
    assert!(dropped, "the copies of a cold file stayed:\n{}", server.log_text());
    let collected = eventually(Duration::from_secs(30), || async {
        copies.iter().all(|(chunk, slot, node)| {
            let shard = manifest.manifest().chunks[*chunk].shards[*slot].to_hex();
            let holder = fast.iter().find(|w| &w.node_id == node).unwrap();
            !holder.shards_on_disk().contains(&shard)
        })
    })
    .await;
    assert!(
        collected,
        "the copies' shards were not collected:\n{}",
        server.log_text()
    );
    assert!(all_full(&server.url).await, "collecting the copies touched a placement");
    assert!(get(&a, &id).await == data, "the download after cooling differs");
    drop(workers);
}
