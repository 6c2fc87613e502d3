//! Crashes and shutdowns of the real worker process while shards are being written.
#![allow(clippy::cast_possible_truncation)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use disktro_core::ShardId;
use disktro_core::token::Operation;
use disktro_net::client::{ClientError, ConnectOptions, WorkerClient};
use support::{Fixture, Worker, shard};

const SHARD_LEN: usize = 4 << 20;

/// Every file under `shards/` must be a whole shard: its bytes hash to its name.
fn assert_no_partial_shard(w: &Worker) {
    for path in w.stored_files() {
        let id: ShardId = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        assert!(
            id.matches(&std::fs::read(&path).unwrap()),
            "partial shard {}",
            path.display()
        );
    }
}

/// Keep `connections` clients putting 4 MiB shards until stopped; returns the receipted ids
/// and, for every put started, its seed.
struct Load {
    receipted: Arc<Mutex<Vec<ShardId>>>,
    started: Arc<Mutex<HashMap<ShardId, u64>>>,
    tasks: tokio::task::JoinSet<Option<ClientError>>,
}

impl Load {
    async fn start(fx: &Fixture, w: &Worker, connections: u64, first_seed: u64) -> Self {
        let token = Arc::new(fx.token(&w.node_id, Operation::Put, 1 << 40, &[]));
        let receipted: Arc<Mutex<Vec<ShardId>>> = Arc::default();
        let started: Arc<Mutex<HashMap<ShardId, u64>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..connections {
            let client = WorkerClient::connect(&w.info.url, &ConnectOptions::default())
                .await
                .unwrap();
            let (token, receipted, started) = (Arc::clone(&token), Arc::clone(&receipted), Arc::clone(&started));
            tasks.spawn(async move {
                for i in 0.. {
                    let seed = first_seed + c * 1_000_000 + i;
                    let (id, bytes) = shard(seed, SHARD_LEN);
                    started.lock().unwrap().insert(id, seed);
                    match client.put(&token, id, bytes).await {
                        Ok(_) => receipted.lock().unwrap().push(id),
                        Err(e) => return Some(e),
                    }
                }
                None
            });
        }
        Self {
            receipted,
            started,
            tasks,
        }
    }

    async fn wait_for_receipts(&self, n: usize) {
        assert!(
            support::eventually(Duration::from_secs(60), || self.receipted.lock().unwrap().len() >= n).await,
            "no progress"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_large_puts_leaves_no_partial_shard_and_the_shard_can_be_put_again() {
    let fx = Fixture::default();
    let mut saw_temp_files = false;
    for attempt in 0..6u64 {
        let w = fx.start("w", &[]);
        let load = Load::start(&fx, &w, 4, attempt * 100_000_000).await;
        load.wait_for_receipts(4).await;
        tokio::time::sleep(Duration::from_millis(15 * attempt)).await;
        let data_dir = w.data_dir.clone();
        w.kill9();
        let temp_files = support::files_under(&data_dir.join("tmp"));
        saw_temp_files |= !temp_files.is_empty();
        let receipted = load.receipted.lock().unwrap().clone();
        let started = load.started.lock().unwrap().clone();
        drop(load.tasks);

        // Tried: SIGKILL with 4 large puts in flight. Must hold after a restart: no partial shard
        // under shards/, temp files removed, every receipted shard intact, and the interrupted
        // shards can be put again.
        let w = fx.start("w", &[]);
        assert_no_partial_shard(&w);
        assert!(w.files_in("tmp").is_empty(), "temp files left after restart");
        let c = w.client().await;
        let get = fx.token(&w.node_id, Operation::Get, 1 << 40, &receipted);
        for id in &receipted {
            let (_, bytes) = shard(started[id], SHARD_LEN);
            assert_eq!(c.get(&get, *id).await.unwrap().into_bytes(), bytes);
        }
        let put = fx.token(&w.node_id, Operation::Put, 1 << 40, &[]);
        for temp in &temp_files {
            let name = temp.file_name().unwrap().to_str().unwrap();
            let id: ShardId = name.split('.').next().unwrap().parse().unwrap();
            let (_, bytes) = shard(started[&id], SHARD_LEN);
            c.put(&put, id, bytes).await.unwrap();
            assert!(w.shard_path(&id).exists());
        }
        assert!(w.log_text().contains("removed temp files") || temp_files.is_empty());
        w.stop();
        if saw_temp_files {
            break;
        }
    }
    assert!(saw_temp_files, "no kill landed during a write in 6 attempts");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_puts_and_closes_with_going_away() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let mut load = Load::start(&fx, &w, 3, 7_000_000_000).await;
    load.wait_for_receipts(3).await;
    // Tried: SIGTERM under load. Must hold: exit 0; every client is told 1001 (going away) or
    // has its answer; every receipted shard is intact after a restart; no temp file is left.
    w.stop();
    while let Some(outcome) = load.tasks.join_next().await {
        match outcome.unwrap() {
            Some(ClientError::Closed(reason)) => assert!(
                reason.contains("1001") || reason.contains("connection ended"),
                "{reason}"
            ),
            other => panic!("expected a clean close, got {other:?}"),
        }
    }
    let receipted = load.receipted.lock().unwrap().clone();
    let started = load.started.lock().unwrap().clone();
    let w = fx.start("w", &[]);
    assert!(w.files_in("tmp").is_empty());
    assert_no_partial_shard(&w);
    let c = w.client().await;
    let get = fx.token(&w.node_id, Operation::Get, 1 << 40, &receipted);
    for id in &receipted {
        let (_, bytes) = shard(started[id], SHARD_LEN);
        assert_eq!(c.get(&get, *id).await.unwrap().into_bytes(), bytes);
    }
    assert!(!w.log_text().contains("removed temp files"));
}
