//! `make bench-scale`: how the server's cost grows with the data it manages.
//!
//! For each database (SQLite, and PostgreSQL when `DISKTRO_TEST_POSTGRES_URL` names a server)
//! and each size (1×, 10× and 100× of [`BASE_FILES`] files of one chunk, 10 shard rows each, on
//! [`BASE_WORKERS`] workers per 1×; so 100× is 1,000 workers, 1 million files and 10 million
//! shard rows):
//!
//! 1. **Network.** The real `disktro-server` binary starts on an empty database; the simulated
//!    workers register through `POST /nodes/register` with keys of their own (their URLs lead
//!    nowhere: nothing listens there), and one account signs up through the API.
//! 2. **Generator.** With the server stopped, the files, their shard rows, other accounts, shares,
//!    audit log rows, ledger entries and shards awaiting collection are written through the real
//!    schema (the migrations' tables and indexes) by `INSERT … SELECT` over a number series, then
//!    `ANALYZE`d, as a database in service would be. One account holds a tenth of the files.
//! 3. **Background passes**, in this process on the server's own code, one at a time: an
//!    auditor's first round and the round after, one worker's holdings comparison, a rewards
//!    accrual, a GC pass, and with 1% of the workers lost a repair pass and its search alone. Each prints its wall time, its units of work, the time per
//!    unit, and on PostgreSQL the rows it touched (`pg_stat_user_tables`/`_indexes`). Audits,
//!    repair and GC reach for workers that are not there: their network part fails at once, so
//!    the figures are the metadata's share of a pass.
//! 4. **Requests**, against the real server binary again, while every simulated worker sends its
//!    heartbeat at the real interval: p50 and p99 of a list page (the first, and one half-way
//!    down the big account), a file read, an upload's begin + commit (receipts signed by the
//!    simulated workers' keys: no bytes move), a share link opened, and the heartbeats.
//!
//! Each figure prints as one `scale/...` line; `scripts/bench-scale` copies them into
//! BENCHMARKS.md. `DISKTRO_SCALE_SIZES` (e.g. `1,10`) picks the sizes; with `DISKTRO_SCALE_KEEP`
//! set, the databases are kept (their paths and URLs on stderr) to look into afterwards.
#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use disktro_client::account;
use disktro_client::server::Server as Api;
use disktro_core::api::node::{HEARTBEAT_DOMAIN, Heartbeat, Registration, SIGNATURE_HEADER, ScrubReport};
use disktro_core::api::{Base64, BeginUpload, Commit, FileList, JobStatus, ShareAccess, UploadPlan};
use disktro_core::keys::{KdfParams, Keypair};
use disktro_core::token::Receipt;
use disktro_core::{Encoder, FileId, FileKey, NodeId, Redundancy};
use disktro_server::context::Context;
use disktro_server::db::{Backend, Db};
use disktro_server::durability::{audit, fleet::Fleet, gc, holdings, repair};
use sqlx::{Executor as _, Row as _};
use support::{drop_database, joined, percentile, postgres_database, start};

mod support;

/// Files at 1×: one chunk each, 10 shard rows each.
const BASE_FILES: i64 = 10_000;
/// Workers at 1×.
const BASE_WORKERS: i64 = 10;
/// Shards of a chunk.
const SHARDS: i64 = 10;
/// Files per account but the big one.
const FILES_PER_ACCOUNT: i64 = 100;
/// Ledger entries per worker already written (a month of daily accruals).
const LEDGER_PER_WORKER: i64 = 30;
/// Where simulated workers say they are: a port nothing listens on.
const NOWHERE: &str = "ws://127.0.0.1:9";
const JOIN_TOKEN: &str = "scale-bench-join-token";
/// The server's default heartbeat interval, which the simulated workers keep.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Requests per measured operation, and the clients making them at once.
const REQUESTS: usize = 400;
const CLIENTS: usize = 4;
/// Requests of each operation made before it is measured.
const WARM_UP: usize = 20;
/// Offsets keeping generated ids apart from each other and from real random ones (which have
/// random high digits).
const FILE_IDS: i64 = 0x0bec_0000_0000;
const ACCOUNT_IDS: i64 = 0x0bec_1000_0000;

fn unix_now() -> i64 {
    disktro_server::context::unix_now()
}

/// One size of the synthetic network.
#[derive(Debug, Clone, Copy)]
struct Shape {
    factor: i64,
    workers: i64,
    files: i64,
    /// Files of the account the requests are made as.
    big: i64,
}

impl Shape {
    fn new(factor: i64) -> Self {
        let files = BASE_FILES * factor;
        Self {
            factor,
            workers: BASE_WORKERS * factor,
            files,
            big: files / 10,
        }
    }

    fn accounts(&self) -> i64 {
        (self.files - self.big + FILES_PER_ACCOUNT - 1) / FILES_PER_ACCOUNT
    }
}

/// A simulated worker: its key, and the node id the server knows it by.
struct SimWorker {
    key: Keypair,
    id: NodeId,
}

fn sign_hex(key: &Keypair, domain: &str, body: &[u8]) -> String {
    disktro_core::ids::to_hex(&key.sign(domain, body))
}

async fn register(http: &reqwest::Client, url: &str, workers: &[SimWorker], zones: i64) {
    futures_util::future::join_all(workers.iter().enumerate().map(|(i, w)| async move {
        let body = serde_json::to_vec(&Registration {
            join_token: JOIN_TOKEN.to_owned(),
            public_key: w.key.public(),
            url: NOWHERE.to_owned(),
            zone: format!("zone-{}", i as i64 % zones),
            operator: String::new(),
            capacity: 1 << 40,
            version: "bench".to_owned(),
            sent_at: unix_now() as u64,
        })
        .unwrap();
        let r = http
            .post(format!("{url}/api/v1/nodes/register"))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sign_hex(&w.key, "register", &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "registration: {}", r.text().await.unwrap());
    }))
    .await;
}

fn heartbeat_body(w: &SimWorker, i: usize, started: Instant) -> Vec<u8> {
    serde_json::to_vec(&Heartbeat {
        node_id: w.id,
        sent_at: unix_now() as u64,
        url: NOWHERE.to_owned(),
        zone: format!("zone-{}", i % 5),
        operator: String::new(),
        version: "bench".to_owned(),
        uptime_secs: started.elapsed().as_secs(),
        capacity: 1 << 40,
        used: 1 << 30,
        free_disk: 1 << 40,
        shards: 0,
        quarantined: 0,
        ingress_bytes: 0,
        egress_bytes: 0,
        scrub: ScrubReport::default(),
        corrupt_shards: Vec::new(),
        inventory: None,
        listings: Vec::new(),
        egress_claims: Vec::new(),
        revocations_since: 0,
    })
    .unwrap()
}

// ---- The generator -------------------------------------------------------------------------

/// SQL that differs between the two databases.
struct Dialect(Backend);

impl Dialect {
    /// `INSERT … SELECT` of `select` (which reads `g.i`, 0 ≤ i < n) over a number series.
    fn insert_series(&self, n: i64, insert: &str, select: &str) -> String {
        match self.0 {
            Backend::Postgres => format!(
                "{insert} SELECT {select} FROM generate_series(0::BIGINT, {}) AS g(i)",
                n - 1
            ),
            Backend::Sqlite => format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < {n}) {insert} SELECT {select} FROM g"
            ),
        }
    }

    /// `expr` as `width` lower-case hex digits.
    fn hex(&self, expr: &str, width: usize) -> String {
        match self.0 {
            Backend::Postgres => format!("lpad(to_hex(({expr})::bigint), {width}, '0')"),
            Backend::Sqlite => format!("printf('%0{width}x', {expr})"),
        }
    }

    /// The node id of simulated worker number `expr` (a lookup in `bench_workers`).
    fn worker(&self, expr: &str) -> String {
        format!("(SELECT node_id FROM bench_workers WHERE n = ({expr}))")
    }
}

async fn exec(pool: &sqlx::AnyPool, sql: String) {
    let started = Instant::now();
    let head: String = sql.chars().take(60).collect();
    pool.execute(sqlx::AssertSqlSafe(sql))
        .await
        .unwrap_or_else(|e| panic!("{head}…: {e}"));
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!("  {head}… took {:.1} s", started.elapsed().as_secs_f64());
    }
}

/// The file id of generated file `i` (an SQL expression).
fn file_of(d: &Dialect, i: &str) -> String {
    d.hex(&format!("{FILE_IDS} + ({i})"), 32)
}

/// The account of generated file `i`: the big account's for the first [`Shape::big`].
fn account_of(d: &Dialect, s: &Shape, big_account: &str, i: &str) -> String {
    format!(
        "CASE WHEN ({i}) < {big} THEN '{big_account}' ELSE {synthetic} END",
        big = s.big,
        synthetic = d.hex(
            &format!("{ACCOUNT_IDS} + (({i}) - {}) / {FILES_PER_ACCOUNT}", s.big),
            32
        )
    )
}

/// The worker holding shard `idx` of file `file` (distinct workers within a file, zones in
/// turn as placement spreads them).
fn holder(s: &Shape, file: &str, idx: &str) -> String {
    format!("((({file}) * 7 + ({idx})) % {})", s.workers)
}

/// What the generated rows hold where the server keeps client-made blobs: a real signed
/// manifest, sealed metadata and wrapped key of a small file (the server never opens them).
struct Blobs {
    manifest: String,
    metadata: String,
    wrapped_key: String,
}

/// A blob as the server stores it: base64url text.
fn text(blob: &Base64) -> String {
    serde_json::to_value(blob).unwrap().as_str().unwrap().to_owned()
}

fn blobs(owner: &Keypair) -> Blobs {
    let file_id = FileId::random();
    let key = FileKey::generate();
    let mut encoder = Encoder::new(&key, file_id, Redundancy { data: 6, parity: 4 });
    encoder.push(&[7u8; 1000]).unwrap();
    let (_, manifest) = encoder.finish().unwrap();
    let metadata = disktro_core::metadata::FileMetadata {
        name: "generated.bin".to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: 1000,
        attributes: Vec::new(),
    }
    .seal(&key, &file_id)
    .unwrap();
    let commit = Commit::new(manifest, owner, &key, &metadata, Vec::new()).unwrap();
    Blobs {
        manifest: text(&commit.manifest),
        metadata: text(&commit.metadata),
        wrapped_key: text(&commit.wrapped_key),
    }
}

/// Fill the database: files, shard rows, accounts, shares, audits, ledger entries, shards to
/// collect. `workers` are the registered simulated workers, in order.
async fn generate(db: &Db, s: &Shape, workers: &[SimWorker], big_account: &str, blobs: &Blobs) {
    let d = Dialect(db.backend);
    // One connection for all of it: SQLite connections that did not make a schema change can
    // act on the schema they knew (an index dropped on one was still there for another).
    let one = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect_with((*db.pool.connect_options()).clone())
        .await
        .unwrap();
    let now = unix_now();
    let t0 = now - 30 * 86_400;
    exec(
        &one,
        "CREATE TABLE bench_workers (n BIGINT PRIMARY KEY, node_id TEXT NOT NULL)".to_owned(),
    )
    .await;
    let mut tx = one.begin().await.unwrap();
    for (n, w) in workers.iter().enumerate() {
        sqlx::query("INSERT INTO bench_workers (n, node_id) VALUES ($1, $2)")
            .bind(n as i64)
            .bind(w.id.to_hex())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    exec(
        &one,
        d.insert_series(
            s.accounts(),
            "INSERT INTO accounts (id, email, kdf_setup, auth_hash, wrapped_identity, public_key, quota_bytes, used_bytes, created_at, file_count, chunk_count)",
            &format!(
                "{id}, 'scale-' || {id} || '@example.org', 'x', 'x', 'x', 'x', {quota}, {used}, {t0}, {FILES_PER_ACCOUNT}, {FILES_PER_ACCOUNT}",
                id = d.hex(&format!("{ACCOUNT_IDS} + g.i"), 32),
                quota = 1i64 << 40,
                used = FILES_PER_ACCOUNT * 1700,
            ),
        ),
    )
    .await;
    exec(
        &one,
        d.insert_series(
            s.files,
            "INSERT INTO files (id, account_id, manifest, metadata, wrapped_key, size, stored_bytes, data_shards, parity_shards, chunk_count, created_at)",
            &format!(
                "{id}, {account}, '{m}', '{md}', '{wk}', 1000, 1700, 6, 4, 1, {t0} + g.i",
                id = file_of(&d, "g.i"),
                account = account_of(&d, s, big_account, "g.i"),
                m = blobs.manifest,
                md = blobs.metadata,
                wk = blobs.wrapped_key,
            ),
        ),
    )
    .await;
    sqlx::query(
        "UPDATE accounts SET file_count = file_count + $1, chunk_count = chunk_count + $1, used_bytes = used_bytes + $2 \
         WHERE id = $3",
    )
        .bind(s.big)
        .bind(s.big * 1700)
        .bind(big_account)
        .execute(&one)
        .await
        .unwrap();

    // Shard rows, the bulk: the table's indexes are dropped and made again afterwards (as a
    // bulk load would), with the definitions the migrations gave them.
    let indexes = shard_indexes(&one, db.backend).await;
    for (name, _) in &indexes {
        exec(&one, format!("DROP INDEX {name}")).await;
    }
    exec(
        &one,
        d.insert_series(
            s.files * SHARDS,
            "INSERT INTO file_shards (file_id, chunk, idx, shard_id, node_id, size, audited_at, placed_at)",
            &format!(
                "{file}, 0, g.i % {SHARDS}, {shard}, {node}, 170, {t0} + (g.i * 7919) % 86400, {t0}",
                file = file_of(&d, &format!("g.i / {SHARDS}")),
                shard = d.hex("g.i", 64),
                node = d.worker(&holder(s, &format!("g.i / {SHARDS}"), &format!("g.i % {SHARDS}"))),
            ),
        ),
    )
    .await;
    for (_, definition) in &indexes {
        exec(&one, definition.clone()).await;
    }
    // The per-node totals the placing transactions keep, as migration 0018 sums them.
    exec(
        &one,
        "INSERT INTO node_placed (node_id, shards, bytes) \
         SELECT node_id, COUNT(*), COALESCE(SUM(size), 0) FROM file_shards GROUP BY node_id"
            .to_owned(),
    )
    .await;

    // A share link for every tenth file.
    exec(
        &one,
        d.insert_series(
            s.files / 10,
            "INSERT INTO shares (id, file_id, account_id, created_at, expires_at, downloads)",
            &format!(
                "{id}, {file}, {account}, {t0}, {far}, 0",
                id = d.hex("g.i", 22),
                file = file_of(&d, "g.i * 10"),
                account = account_of(&d, s, big_account, "g.i * 10"),
                far = now + 365 * 86_400,
            ),
        ),
    )
    .await;
    // The audit log: one row per ten shards, a day's worth.
    exec(
        &one,
        d.insert_series(
            s.files,
            "INSERT INTO audits (node_id, at, shard_id, outcome)",
            &format!(
                "{node}, {t0} + g.i % 86400, {shard}, 'pass'",
                node = d.worker(&holder(s, "g.i", "0")),
                shard = d.hex(&format!("g.i * {SHARDS}"), 64),
            ),
        ),
    )
    .await;
    // A month of daily storage entries per worker (the chain's hashes are placeholders: the
    // accrual appends after the last, and verifying the chain is not measured here).
    exec(
        &one,
        d.insert_series(
            s.workers * LEDGER_PER_WORKER,
            "INSERT INTO ledger (seq, node_id, kind, period_start, period_end, quantity, amount, reference, created_at, prev_hash, hash)",
            &format!(
                "g.i + 1, {node}, 'storage', {t0} + (g.i / {w}) * 86400, {t0} + (g.i / {w} + 1) * 86400, 1000, 1, '', {t0}, 'x', 'x'",
                node = d.worker(&format!("g.i % {}", s.workers)),
                w = s.workers,
            ),
        ),
    )
    .await;
    // Shards of deleted files waiting for collection: one per thousand stored.
    exec(
        &one,
        d.insert_series(
            s.files / 100,
            "INSERT INTO gc_shards (node_id, shard_id, deleted_at)",
            &format!(
                "{node}, {shard}, {t0}",
                node = d.worker(&format!("g.i % {}", s.workers)),
                shard = d.hex(&format!("{FILE_IDS} * 16 + g.i"), 64),
            ),
        ),
    )
    .await;
    // The last hour's samples (one a minute), which storage accrual counts as time seen.
    exec(
        &one,
        d.insert_series(
            s.workers * 60,
            "INSERT INTO node_samples (node_id, at, capacity, used, shards, ingress_bytes, egress_bytes, uptime_secs)",
            &format!(
                "{node}, {start} + (g.i / {w}) * 60, {cap}, 0, 0, 0, 0, 0",
                node = d.worker(&format!("g.i % {}", s.workers)),
                start = now - 3_600,
                w = s.workers,
                cap = 1i64 << 40,
            ),
        ),
    )
    .await;
    exec(&one, "DROP TABLE bench_workers".to_owned()).await;
    // As autovacuum would have left a table in service (PostgreSQL's index-only scans need its
    // visibility map); SQLite's statistics likewise.
    exec(
        &one,
        match db.backend {
            Backend::Postgres => "VACUUM ANALYZE",
            Backend::Sqlite => "ANALYZE",
        }
        .to_owned(),
    )
    .await;
    // Every worker last heard from now (generating the larger sizes takes minutes) and accrued
    // up to an hour ago.
    sqlx::query("UPDATE nodes SET accrued_until = $1, last_seen = $2")
        .bind(now - 3_600)
        .bind(unix_now())
        .execute(&one)
        .await
        .unwrap();
    one.close().await;
}

/// The indexes of `file_shards` but its primary key, with their definitions.
async fn shard_indexes(pool: &sqlx::AnyPool, backend: Backend) -> Vec<(String, String)> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'file_shards' AND sql IS NOT NULL"
        }
        Backend::Postgres => {
            "SELECT indexname::TEXT AS name, indexdef AS sql FROM pg_indexes WHERE tablename = 'file_shards' AND indexname NOT LIKE '%pkey'"
        }
    };
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("name"), r.get::<String, _>("sql")))
        .collect()
}

// ---- Background passes ---------------------------------------------------------------------

/// Rows PostgreSQL read (sequential and index scans) and wrote, all tables, so far.
async fn rows_touched(url: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let row = sqlx::query(
        "SELECT (SELECT COALESCE(SUM(seq_tup_read + n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables)::BIGINT \
         + (SELECT COALESCE(SUM(idx_tup_read), 0) FROM pg_stat_user_indexes)::BIGINT AS touched",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    row.get("touched")
}

/// Run one pass on a context of its own (so its connections, closed after, have reported
/// their statistics) and print its figures.
async fn pass<F, Fut>(label: &str, s: &Shape, dir: &Path, url: &str, unit: &str, run: F)
where
    F: FnOnce(Arc<Context>) -> Fut,
    Fut: Future<Output = u64>,
{
    let ctx = Arc::new(Context::open(dir, url, None, HEARTBEAT).await.unwrap());
    let postgres = ctx.db.backend == Backend::Postgres;
    let before = if postgres { rows_touched(url).await } else { 0 };
    let started = Instant::now();
    let units = run(Arc::clone(&ctx)).await;
    let took = started.elapsed();
    ctx.db.pool.close().await;
    let rows = if postgres {
        format!(", {} rows touched", rows_touched(url).await - before)
    } else {
        String::new()
    };
    let per_unit = took.as_secs_f64() * 1e6 / units.max(1) as f64;
    println!(
        "scale/{}/{}x/{label}: {:.1} ms for {units} {unit} ({per_unit:.1} µs per {unit}){rows}",
        backend_name(postgres),
        s.factor,
        took.as_secs_f64() * 1000.0,
    );
}

fn backend_name(postgres: bool) -> &'static str {
    if postgres { "postgres" } else { "sqlite" }
}

async fn passes(s: &Shape, dir: &Path, url: &str, workers: &[SimWorker]) {
    let now = unix_now();
    // The auditor's first round counts what each worker holds (to size its challenges); the
    // rounds after take those counts for ten minutes: the first, then one as the job runs them.
    let auditor = Arc::new(audit::Auditor::new(Duration::from_secs(5)));
    for label in ["audit-first-round", "audit-round"] {
        let auditor = Arc::clone(&auditor);
        pass(label, s, dir, url, "challenges", |ctx| async move {
            let round = auditor.round(&ctx, now).await.unwrap();
            (round.passed + round.failed + round.timeouts + round.unreachable) as u64
        })
        .await;
    }
    pass("holdings-comparison", s, dir, url, "shards", |ctx| {
        let node = workers[0].id.to_hex();
        async move {
            let placed: Vec<disktro_core::ShardId> =
                // What it should hold: its placed shards, and those it has yet to delete.
                sqlx::query("SELECT shard_id FROM file_shards WHERE node_id = $1 UNION SELECT shard_id FROM gc_shards WHERE node_id = $1")
                    .bind(&node)
                    .fetch_all(&ctx.db.pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("shard_id").parse().unwrap())
                    .collect();
            let summary = disktro_core::inventory::summarize(&placed);
            let wanted = holdings::on_heartbeat(&ctx.db, &node, Some(&summary), &[], now, now)
                .await
                .unwrap();
            assert!(wanted.is_empty(), "the holdings of a worker holding what it should differ");
            placed.len() as u64
        }
    })
    .await;
    pass("rewards-accrual", s, dir, url, "workers", |ctx| async move {
        let accrued = disktro_server::rewards::accrue(&ctx.db, now).await.unwrap();
        accrued.storage_entries as u64
    })
    .await;
    pass("gc-pass", s, dir, url, "shards-due", |ctx| async move {
        let due: i64 = sqlx::query("SELECT COUNT(*) AS n FROM gc_shards")
            .fetch_one(&ctx.db.pool)
            .await
            .unwrap()
            .get("n");
        gc::pass(&ctx, &Fleet::new(Duration::from_secs(5)), now).await.unwrap();
        due as u64
    })
    .await;
    // 1% of the workers lost (every hundredth; at 1× one of ten): their last heartbeat a day
    // ago. A file's shards are on ten workers in a row, so no chunk lost two: the damage has
    // the same shape at every size, one shard short in each chunk it touched.
    let db = Db::open(url).await.unwrap();
    for w in workers.iter().step_by(100) {
        sqlx::query("UPDATE nodes SET last_seen = $1 WHERE node_id = $2")
            .bind(now - 86_400)
            .bind(w.id.to_hex())
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // Its work: every chunk with a shard on a lost worker (a pass repairs up to its limit).
    let since = disktro_server::nodes::online_since(now, HEARTBEAT);
    let degraded = disktro_server::store::health::due_for_repair(&db, since, i64::MAX)
        .await
        .unwrap()
        .len() as u64;
    db.pool.close().await;
    // The pass's search for its chunks alone: the degraded ones, fewest healthy first, up to its
    // limit (its work is every degraded chunk: the limit is taken after the sort).
    pass("repair-scan", s, dir, url, "chunks-degraded", |ctx| async move {
        disktro_server::store::health::due_for_repair(&ctx.db, since, repair::MAX_CHUNKS_PER_PASS)
            .await
            .unwrap();
        degraded
    })
    .await;
    pass("repair-pass", s, dir, url, "chunks-degraded", |ctx| async move {
        let registry = Arc::new(disktro_server::jobs::Registry::default());
        let repairer = repair::Repairer::new(Arc::new(Fleet::new(Duration::from_secs(5))), registry);
        // It repairs none: their other shards are on workers that are not there either.
        repairer.pass(&ctx, now).await.unwrap();
        degraded
    })
    .await;
    // Back online for the requests.
    let db = Db::open(url).await.unwrap();
    sqlx::query("UPDATE nodes SET last_seen = $1")
        .bind(unix_now())
        .execute(&db.pool)
        .await
        .unwrap();
    db.pool.close().await;
}

// ---- Requests ------------------------------------------------------------------------------

/// [`REQUESTS`] runs of `op` from [`CLIENTS`] clients, after [`WARM_UP`]; prints p50 and p99.
async fn measure<F, Fut>(prefix: &str, label: &str, op: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // Unmeasured first: the server's connections and caches for this kind of request.
    for n in 0..WARM_UP {
        op(CLIENTS * REQUESTS + n).await;
    }
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for n in 0..REQUESTS / CLIENTS {
                    let t = Instant::now();
                    op(c * REQUESTS + n).await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let all = joined(tasks).await;
    println!(
        "{prefix}/{label}: p50 {:.2} ms, p99 {:.2} ms ({} requests, {CLIENTS} clients)",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len()
    );
}

/// Every simulated worker's heartbeats at [`HEARTBEAT`], spread over the interval, until
/// `stop`; returns the latencies of those sent once `measuring` was set.
fn heartbeats(
    url: &str,
    workers: Arc<Vec<SimWorker>>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    let url = url.to_owned();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers.len())
            .map(|i| {
                let (http, url, workers, measuring, stop) = (
                    http.clone(),
                    url.clone(),
                    Arc::clone(&workers),
                    Arc::clone(&measuring),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    let offset = HEARTBEAT.mul_f64(i as f64 / workers.len() as f64);
                    tokio::time::sleep(offset).await;
                    let mut lat = Vec::new();
                    let mut ticks = tokio::time::interval(HEARTBEAT);
                    while !stop.load(Ordering::Relaxed) {
                        ticks.tick().await;
                        let w = &workers[i];
                        let body = heartbeat_body(w, i, started);
                        let measured = measuring.load(Ordering::Relaxed);
                        let t = Instant::now();
                        let r = http
                            .post(format!("{url}/api/v1/nodes/heartbeat"))
                            .header("content-type", "application/json")
                            .header(SIGNATURE_HEADER, sign_hex(&w.key, HEARTBEAT_DOMAIN, &body))
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success(), "heartbeat: {}", r.text().await.unwrap());
                        let _ = r.bytes().await;
                        if measured {
                            lat.push(t.elapsed());
                        }
                    }
                    lat
                })
            })
            .collect();
        joined(tasks).await
    })
}

/// Waits until every background job of the server at `url` has finished its first pass (a
/// server starting on a large database does each job's first pass at once: a one-off, measured
/// here, and not what a request costs in service); prints how long that took, and each job's.
async fn start_up_passes(http: &reqwest::Client, prefix: &str, url: &str) {
    let started = Instant::now();
    let mut first_done: HashMap<String, f64> = HashMap::new();
    loop {
        let jobs: Vec<JobStatus> = http
            .get(format!("{url}/api/v1/jobs"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        for j in jobs.iter().filter(|j| j.runs > 0) {
            first_done
                .entry(j.name.clone())
                .or_insert_with(|| started.elapsed().as_secs_f64());
        }
        if !jobs.is_empty() && first_done.len() == jobs.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the server's start-up passes did not finish in 5 minutes: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut each: Vec<_> = first_done.into_iter().collect();
    each.sort_by(|a, b| a.1.total_cmp(&b.1));
    let each: Vec<String> = each.iter().map(|(n, t)| format!("{n} {t:.1} s")).collect();
    println!(
        "{prefix}/start-up-passes: {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        each.join(", ")
    );
}

async fn requests(s: &Shape, postgres: bool, url: &str, me: Arc<account::Identity>, workers: Arc<Vec<SimWorker>>) {
    let prefix = format!("scale/{}/{}x", backend_name(postgres), s.factor);
    let (measuring, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let beats = heartbeats(url, Arc::clone(&workers), Arc::clone(&measuring), Arc::clone(&stop));
    let http = reqwest::Client::new();
    // Heartbeats run meanwhile; theirs, like every request's, are measured after.
    start_up_passes(&http, &prefix, url).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let api = format!("{url}/api/v1");
    let token = me.token.clone();

    let get = {
        let (http, token) = (http.clone(), token.clone());
        move |path: String| {
            let (http, token) = (http.clone(), token.clone());
            async move {
                let r = http.get(&path).bearer_auth(&token).send().await.unwrap();
                assert!(r.status().is_success(), "{path}: {}", r.status());
                r.bytes().await.unwrap()
            }
        }
    };
    // A page half-way down the big account's list: after its middle file (newest first).
    let middle = s.big / 2;
    let cursor = format!("{}.{:032x}", unix_now() - 30 * 86_400 + middle, FILE_IDS + middle);
    let first: FileList = serde_json::from_slice(&get(format!("{api}/files?limit=100")).await).unwrap();
    assert_eq!(first.total, s.big as u64, "the big account's files");
    assert_eq!(first.files.len(), 100);
    let deep: FileList = serde_json::from_slice(&get(format!("{api}/files?limit=100&after={cursor}")).await).unwrap();
    assert_eq!(deep.files.len(), 100, "a page half-way down");

    let (g, a) = (get.clone(), api.clone());
    measure(&prefix, "list-first-page", move |_| {
        let (g, a) = (g.clone(), a.clone());
        async move {
            g(format!("{a}/files?limit=100")).await;
        }
    })
    .await;
    let (g, a) = (get.clone(), api.clone());
    measure(&prefix, "list-deep-page", move |_| {
        let (g, a, cursor) = (g.clone(), a.clone(), cursor.clone());
        async move {
            g(format!("{a}/files?limit=100&after={cursor}")).await;
        }
    })
    .await;
    let (g, a, big) = (get.clone(), api.clone(), s.big);
    measure(&prefix, "file-read", move |n| {
        let (g, a) = (g.clone(), a.clone());
        let i = (n as i64 * 7919) % big;
        async move {
            g(format!("{a}/files/{:032x}", FILE_IDS + i)).await;
        }
    })
    .await;
    let (h, a, big) = (http.clone(), api.clone(), s.big);
    measure(&prefix, "share-open", move |n| {
        let (h, a) = (h.clone(), a.clone());
        // Shares are on every tenth file; those of the big account come first.
        let i = (n as i64 * 7919) % (big / 10);
        async move {
            let r = h
                .post(format!("{a}/public/shares/{i:022x}"))
                .json(&ShareAccess {
                    password_proof: None,
                    download_id: None,
                    order_key: None,
                })
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "share open: {}", r.status());
            let _ = r.bytes().await;
        }
    })
    .await;
    let keys: Arc<HashMap<NodeId, usize>> = Arc::new(workers.iter().enumerate().map(|(i, w)| (w.id, i)).collect());
    let (h, a, sims) = (http.clone(), api.clone(), Arc::clone(&workers));
    measure(&prefix, "begin-commit", move |_| {
        let (h, a, me, workers, keys) = (
            h.clone(),
            a.clone(),
            Arc::clone(&me),
            Arc::clone(&sims),
            Arc::clone(&keys),
        );
        async move { begin_commit(&h, &a, &me, &workers, &keys).await }
    })
    .await;

    // At least two heartbeats from every worker.
    if let Some(left) = (HEARTBEAT * 2).checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    stop.store(true, Ordering::Relaxed);
    let beats = beats.await.unwrap();
    println!(
        "{prefix}/heartbeat: p50 {:.2} ms, p99 {:.2} ms ({} heartbeats from {} workers every {} s)",
        percentile(&beats, 0.5),
        percentile(&beats, 0.99),
        beats.len(),
        workers.len(),
        HEARTBEAT.as_secs()
    );
}

/// A small file's upload as far as the server sees it: begin, the workers' receipts (signed here
/// with the simulated workers' keys), commit.
async fn begin_commit(
    http: &reqwest::Client,
    api: &str,
    me: &account::Identity,
    workers: &[SimWorker],
    keys: &HashMap<NodeId, usize>,
) {
    let file_id = FileId::random();
    let key = FileKey::generate();
    let plan: UploadPlan = http
        .post(format!("{api}/uploads"))
        .bearer_auth(&me.token)
        .json(&BeginUpload {
            file_id: file_id.to_hex(),
            size: disktro_core::padding::size_class(1000, disktro_core::DEFAULT_CHUNK_SIZE),
            data_shards: None,
            parity_shards: None,
            chunk_size: None,
            folder_id: None,
        })
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let redundancy = Redundancy {
        data: plan.data_shards,
        parity: plan.parity_shards,
    };
    let mut encoder = Encoder::with_chunk_size(&key, file_id, redundancy, plan.chunk_size).unwrap();
    encoder.push(&[9u8; 1000]).unwrap();
    let (chunk, manifest) = encoder.finish().unwrap();
    let receipts: Vec<Base64> = plan.placement[0]
        .iter()
        .enumerate()
        .map(|(idx, &slot)| {
            let grant = &plan.nodes[usize::from(slot)];
            let worker = &workers[keys[&grant.node_id]];
            let receipt = Receipt {
                worker: grant.node_id,
                shard: chunk.shards.ids()[idx],
                size: chunk.shards.shard(idx).len() as u32,
                serial: grant.serial,
            };
            Base64::from(receipt.sign(&worker.key).unwrap())
        })
        .collect();
    let metadata = disktro_core::metadata::FileMetadata {
        name: "small.bin".to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: 1000,
        attributes: Vec::new(),
    }
    .seal(&key, &file_id)
    .unwrap();
    let commit = Commit::new(manifest, &me.keys.identity, &key, &metadata, receipts).unwrap();
    let r = http
        .post(format!("{api}/uploads/{}/commit", plan.upload_id))
        .bearer_auth(&me.token)
        .json(&commit)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "commit: {}", r.text().await.unwrap());
}

// ---- One size on one database --------------------------------------------------------------

async fn run(s: Shape, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let workers: Arc<Vec<SimWorker>> = Arc::new(
        (0..s.workers)
            .map(|_| {
                let key = Keypair::generate();
                let id = key.public().node_id();
                SimWorker { key, id }
            })
            .collect(),
    );
    let postgres = url.starts_with("postgres");
    let name = backend_name(postgres);
    let (server, base) = start(
        dir.path(),
        url,
        &["--join-token", JOIN_TOKEN],
        "warn,disktro_server=info",
    );
    let http = reqwest::Client::new();
    register(&http, &base, &workers, 5).await;
    let anon = Api::new(&base).unwrap();
    let me = Arc::new(
        account::signup(
            &anon,
            "scale@example.org",
            "scale pass phrase",
            KdfParams::MINIMUM,
            "bench",
        )
        .await
        .unwrap(),
    );
    drop(server);

    let db = Db::open(url).await.unwrap();
    let started = Instant::now();
    generate(&db, &s, &workers, &me.account_id, &blobs(&me.keys.identity)).await;
    db.pool.close().await;
    println!(
        "scale/{name}/{}x/generate: {:.1} s ({} workers, {} files, {} shard rows, {} accounts, {} shares)",
        s.factor,
        started.elapsed().as_secs_f64(),
        s.workers,
        s.files,
        s.files * SHARDS,
        s.accounts() + 1,
        s.files / 10
    );

    passes(&s, dir.path(), url, &workers).await;

    let (server, base) = start(
        dir.path(),
        url,
        &["--join-token", JOIN_TOKEN],
        "warn,disktro_server=info",
    );
    requests(&s, postgres, &base, me, workers).await;
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    // Warnings but the one about the web bundle, which this server is not asked for, and its
    // jobs failing to reach the simulated workers (nothing listens where they say they are).
    let nowhere = format!("{NOWHERE}:");
    let warned =
        |l: &&str| (l.contains(" WARN ") || l.contains("ERROR")) && !l.contains("web bundle") && !l.contains(&nowhere);
    let warnings = log.lines().filter(warned).count();
    if warnings > 0 {
        println!("scale/{name}/{}x/server-warnings: {warnings} (see below)", s.factor);
        for line in log.lines().filter(warned).take(5) {
            println!("  {line}");
        }
    }
    drop(server);
}

#[tokio::main]
async fn main() {
    disktro_net::tls::install_default_provider();
    sqlx::any::install_default_drivers();
    let sizes: Vec<i64> = std::env::var("DISKTRO_SCALE_SIZES")
        .unwrap_or_else(|_| "1,10,100".to_owned())
        .split(',')
        .map(|f| f.trim().parse().expect("DISKTRO_SCALE_SIZES: factors such as 1,10,100"))
        .collect();
    let postgres = std::env::var("DISKTRO_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    // Keep the databases to look into afterwards (`sqlite3`, `psql`): named on stderr.
    let keep = std::env::var_os("DISKTRO_SCALE_KEEP").is_some();
    for &factor in &sizes {
        let shape = Shape::new(factor);
        let dir = tempfile::tempdir().unwrap();
        run(shape, &disktro_server::db::sqlite_url(dir.path())).await;
        if keep {
            eprintln!("kept: {}", dir.keep().join("disktro.db").display());
        } else {
            // Gone before PostgreSQL's turn: at 100× each database is 6 GB or more.
            drop(dir);
        }
        match &postgres {
            Some(admin) => {
                let (url, name) = postgres_database(admin, "disktro_test_scale").await;
                run(shape, &url).await;
                if keep {
                    eprintln!("kept: {url}");
                } else {
                    drop_database(admin, &name).await;
                }
            }
            None => println!("scale/postgres: skipped (DISKTRO_TEST_POSTGRES_URL is not set)"),
        }
    }
}
