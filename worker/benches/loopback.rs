//! Worker ingest and egress over loopback WebSockets, with the real `disktro-worker` binary: 1 and
//! 8 concurrent clients, shards the size a 4 MiB chunk makes with k = 6 (every put fsynced),
//! the worker's peak RSS, and the fsync cost measured on its own.
//!
//! `cargo bench -p disktro-worker --bench loopback` prints one `worker/...` line per figure;
//! `scripts/bench` copies them into BENCHMARKS.md.
#![allow(clippy::print_stdout, clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use disktro_core::keys::Keypair;
use disktro_core::token::{Operation, Scope, Token};
use disktro_core::{NodeId, Serial, ShardId};
use disktro_net::client::{ConnectOptions, WorkerClient};
use disktro_worker::ReadyInfo;

/// A 4 MiB chunk sealed (+16 B tag) and split six ways.
const SHARD_LEN: usize = (4 * 1024 * 1024 + 16usize).div_ceil(6);
/// Data moved per run.
const TOTAL: usize = 768 << 20;
/// Requests each client keeps in flight.
const WINDOW: usize = 8;

fn token(server: &Keypair, node: NodeId, operation: Operation, shards: &[ShardId]) -> Vec<u8> {
    Token {
        operation,
        issuer: server.public(),
        worker: node,
        scope: Scope::Upload([1; 16]),
        serial: Serial::random(),
        expires_at: u64::MAX,
        byte_budget: u64::MAX,
        order_key: None,
        shards: shards.to_vec(),
    }
    .sign(server)
    .expect("the server key signs")
}

fn shards(count: usize, salt: u64) -> Vec<(ShardId, Arc<Vec<u8>>)> {
    (0..count)
        .map(|i| {
            let mut bytes = vec![0u8; SHARD_LEN];
            let mut h = blake3::Hasher::new();
            h.update(&salt.to_le_bytes());
            h.update(&(i as u64).to_le_bytes());
            h.finalize_xof().fill(&mut bytes);
            (ShardId::of(&bytes), Arc::new(bytes))
        })
        .collect()
}

/// Run `clients` connections, each with a window of requests in flight, over `work`.
async fn drive<F, Fut>(url: &str, clients: usize, work: &[(ShardId, Arc<Vec<u8>>)], op: F) -> f64
where
    F: Fn(Arc<WorkerClient>, ShardId, Arc<Vec<u8>>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Arc::new(
            WorkerClient::connect(url, &ConnectOptions::default())
                .await
                .expect("connect"),
        ));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        let mine: Vec<_> = work.iter().skip(c).step_by(clients).cloned().collect();
        let (conn, op) = (Arc::clone(conn), op.clone());
        tasks.spawn(async move {
            let window = Arc::new(tokio::sync::Semaphore::new(WINDOW));
            let mut inner = tokio::task::JoinSet::new();
            for (id, bytes) in mine {
                let permit = Arc::clone(&window).acquire_owned().await.expect("open");
                let (conn, op) = (Arc::clone(&conn), op.clone());
                inner.spawn(async move {
                    op(conn, id, bytes).await;
                    drop(permit);
                });
            }
            while let Some(r) = inner.join_next().await {
                r.expect("request task");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("client task");
    }
    let bytes = (work.len() * SHARD_LEN) as f64;
    bytes / started.elapsed().as_secs_f64() / 1e6
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The cost of durability alone, one thread, shard-sized files: a plain buffered `write`; the
/// same with fdatasync, rename and a directory fsync; and the worker's own durable write (direct
/// I/O where the file system allows it).
fn fsync_cost(dir: &std::path::Path) -> [f64; 3] {
    use std::io::Write as _;
    let data = vec![7u8; SHARD_LEN];
    let n = 64;
    let time = |mode: usize| {
        let started = Instant::now();
        for i in 0..n {
            let path = dir.join(format!("f{mode}-{i}"));
            let temp = dir.join(format!("t{mode}-{i}"));
            match mode {
                0 => std::fs::write(&path, &data).expect("write"),
                1 => {
                    let mut f = std::fs::File::create_new(&temp).expect("create");
                    f.write_all(&data).expect("write");
                    f.sync_data().expect("fdatasync");
                    disktro_net::durable::publish(&temp, &path).expect("rename");
                }
                _ => {
                    disktro_net::durable::write_synced(&temp, &data).expect("write");
                    disktro_net::durable::publish(&temp, &path).expect("rename");
                }
            }
        }
        (n * SHARD_LEN) as f64 / started.elapsed().as_secs_f64() / 1e6
    };
    [time(0), time(1), time(2)]
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filter is ignored here.
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = Keypair::generate();
    let ready = tmp.path().join("ready.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_disktro-worker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--capacity",
            "64GiB",
            "--scrub-interval",
            "24h",
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .args(["--issuer-key", &disktro_core::ids::to_hex(server.public().as_bytes())])
        .args(
            std::env::var("DISKTRO_BENCH_WORKER_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    let info: ReadyInfo = loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(info) = serde_json::from_str(&text)
        {
            break info;
        }
        assert!(Instant::now() < deadline, "worker did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let node: NodeId = info.node_id.parse().expect("node id");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let count = TOTAL / SHARD_LEN;
    println!(
        "worker/setup: shard {SHARD_LEN} B, {count} shards ({} MiB) per run, window {WINDOW} per client, every put fsynced",
        TOTAL >> 20
    );
    runtime.block_on(async {
        for (salt, clients) in [(1u64, 1usize), (2, 8)] {
            let work = shards(count, salt);
            let put = Arc::new(token(&server, node, Operation::Put, &[]));
            let ingest = drive(&info.url, clients, &work, move |c, id, bytes| {
                let put = Arc::clone(&put);
                async move {
                    c.put(&put, id, bytes.to_vec()).await.expect("put");
                }
            })
            .await;
            let ids: Vec<ShardId> = work.iter().map(|(id, _)| *id).collect();
            let gets: Vec<Arc<Vec<u8>>> = ids
                .chunks(1024)
                .map(|chunk| Arc::new(token(&server, node, Operation::Get, chunk)))
                .collect();
            let index: Arc<std::collections::HashMap<ShardId, usize>> =
                Arc::new(ids.iter().enumerate().map(|(i, id)| (*id, i / 1024)).collect());
            let gets = Arc::new(gets);
            let egress = drive(&info.url, clients, &work, move |c, id, _| {
                let (gets, index) = (Arc::clone(&gets), Arc::clone(&index));
                async move {
                    let data = c.get(&gets[index[&id]], id).await.expect("get");
                    assert_eq!(data.bytes().len(), SHARD_LEN);
                }
            })
            .await;
            println!("worker/ingest/{clients}_clients: {ingest:.0} MB/s");
            println!("worker/egress/{clients}_clients: {egress:.0} MB/s");
        }
    });
    println!("worker/peak_rss: {} MiB", peak_rss_mib(child.id()));
    let [plain, buffered, worker] = fsync_cost(tmp.path());
    println!(
        "worker/fsync_cost: one thread, shard-sized files: buffered write {plain:.0} MB/s; buffered + fdatasync + rename + dir fsync {buffered:.0} MB/s; the worker's durable write (O_DIRECT + fdatasync + rename + dir fsync) {worker:.0} MB/s"
    );
    let _ = child.kill();
    let _ = child.wait();
}
