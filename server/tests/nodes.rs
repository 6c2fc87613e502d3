//! Node registration, heartbeats and health, through `oneshot` and with real processes, on
//! SQLite and PostgreSQL. Each bad-input case says what was tried and what must hold.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use disktro_core::api::node as api;
use disktro_core::keys::Keypair;
use support::{Server, databases, eventually, nodes_of};
use tower::ServiceExt as _;

const JOIN: &str = "test-join-token";

async fn context(db: &support::TestDb) -> Arc<disktro_server::Context> {
    Arc::new(
        disktro_server::Context::open(db.dir.path(), &db.url, Some(JOIN.to_owned()), Duration::from_secs(10))
            .await
            .unwrap(),
    )
}

fn app(ctx: &Arc<disktro_server::Context>) -> axum::Router {
    disktro_server::app(
        disktro_server::site_options("target/site", "127.0.0.1:0".parse().unwrap()),
        Arc::clone(ctx),
    )
}

fn now() -> u64 {
    u64::try_from(disktro_server::context::unix_now()).unwrap()
}

/// POST `body` to `path`, signed by `key` under `domain` (unless `sign` is false).
async fn post(
    app: &axum::Router,
    path: &str,
    body: Vec<u8>,
    signature: Option<[u8; 64]>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::post(format!("/api/v1{path}")).header("content-type", "application/json");
    if let Some(sig) = signature {
        request = request.header(api::SIGNATURE_HEADER, disktro_core::ids::to_hex(&sig));
    }
    let res = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn registration(node: &Keypair, join: &str, sent_at: u64) -> Vec<u8> {
    serde_json::to_vec(&api::Registration {
        join_token: join.to_owned(),
        public_key: node.public(),
        url: "ws://127.0.0.1:4999".to_owned(),
        zone: "rack-1".to_owned(),
        operator: String::new(),
        capacity: 1 << 30,
        version: "0.1.0".to_owned(),
        sent_at,
    })
    .unwrap()
}

fn heartbeat(node: &Keypair, sent_at: u64, corrupt: Vec<disktro_core::ShardId>) -> Vec<u8> {
    serde_json::to_vec(&api::Heartbeat {
        node_id: node.public().node_id(),
        sent_at,
        url: "ws://127.0.0.1:4999".to_owned(),
        zone: "rack-1".to_owned(),
        operator: "alice".to_owned(),
        version: "0.1.0".to_owned(),
        uptime_secs: 42,
        capacity: 1 << 30,
        used: 1000,
        free_disk: 5 << 30,
        shards: 3,
        quarantined: u64::from(!corrupt.is_empty()),
        ingress_bytes: 7000,
        egress_bytes: 9000,
        scrub: Default::default(),
        corrupt_shards: corrupt,
        inventory: None,
        listings: Vec::new(),
        egress_claims: Vec::new(),
        revocations_since: 0,
    })
    .unwrap()
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_heartbeats_and_the_node_list() {
    for db in databases().await {
        let ctx = context(&db).await;
        let app = app(&ctx);
        let node = Keypair::generate();
        let sign = |domain: &str, body: &[u8]| Some(node.sign(domain, body));

        let body = registration(&node, JOIN, now());
        let (status, v) = post(&app, "/nodes/register", body.clone(), sign(api::REGISTER_DOMAIN, &body)).await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.backend);
        assert_eq!(v["node_id"], node.public().node_id().to_hex());
        assert_eq!(v["server_key"], disktro_core::ids::to_hex(ctx.key.public().as_bytes()));
        assert_eq!(v["heartbeat_interval_secs"], 10);

        let shard = disktro_core::ShardId::of(b"rotten");
        let t = now();
        let body = heartbeat(&node, t, vec![shard]);
        let (status, v) = post(
            &app,
            "/nodes/heartbeat",
            body.clone(),
            sign(api::HEARTBEAT_DOMAIN, &body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.backend);

        let res = app
            .clone()
            .oneshot(Request::get("/api/v1/nodes").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let list: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap()).unwrap();
        let n = &list[0];
        assert_eq!(n["status"], "online", "{}", db.backend);
        assert_eq!(
            (n["used"].as_i64(), n["shards"].as_i64(), n["egress_bytes"].as_i64()),
            (Some(1000), Some(3), Some(9000))
        );
        assert_eq!(n["zone"], "rack-1");
        // The heartbeat left a sample for the node's charts; an unknown node's are 404.
        let get = |path: String| {
            let app = app.clone();
            async move {
                let res = app
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
                (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
            }
        };
        let (status, samples) = get(format!("/api/v1/nodes/{}/samples", node.public().node_id().to_hex())).await;
        assert_eq!(status, StatusCode::OK, "{}: {samples}", db.backend);
        assert_eq!(samples.as_array().map(Vec::len), Some(1), "{}: {samples}", db.backend);
        assert_eq!(
            (samples[0]["used"].as_i64(), samples[0]["egress_bytes"].as_i64()),
            (Some(1000), Some(9000))
        );
        let (status, v) = get(format!("/api/v1/nodes/{}/samples", "ab".repeat(32))).await;
        assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "node_not_found"));
        let (status, samples) = get(format!(
            "/api/v1/nodes/{}/samples?since={}",
            node.public().node_id().to_hex(),
            now() + 3600
        ))
        .await;
        assert_eq!(
            (status, samples),
            (StatusCode::OK, serde_json::json!([])),
            "{}",
            db.backend
        );
        // The reported shard belongs to no file placed on this node (an orphan or a collected
        // copy): nobody's loss, so nothing is recorded and the node is not charged for it. (The
        // durability tests report placed shards.)
        let reports = disktro_server::nodes::corrupt_reports(&ctx.db).await.unwrap();
        assert_eq!(reports, vec![], "{}", db.backend);

        // Tried: the same heartbeat again (a replay). Must hold: 409 stale_heartbeat.
        let (status, v) = post(
            &app,
            "/nodes/heartbeat",
            body.clone(),
            sign(api::HEARTBEAT_DOMAIN, &body),
        )
        .await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::CONFLICT, "stale_heartbeat"),
            "{}",
            db.backend
        );
        // Tried: a heartbeat signed by another key. Must hold: 401 bad_signature.
        let body = heartbeat(&node, t + 1, vec![]);
        let other = Keypair::generate();
        let (status, v) = post(
            &app,
            "/nodes/heartbeat",
            body.clone(),
            Some(other.sign(api::HEARTBEAT_DOMAIN, &body)),
        )
        .await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "bad_signature"));
        // Tried: a registration signature presented on a heartbeat (wrong domain). Must hold: 401.
        let (status, _) = post(
            &app,
            "/nodes/heartbeat",
            body.clone(),
            sign(api::REGISTER_DOMAIN, &body),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Tried: no signature. Must hold: 401 missing_signature.
        let (status, v) = post(&app, "/nodes/heartbeat", body.clone(), None).await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "missing_signature"));
        // Tried: a node that never registered. Must hold: 404 unknown_node (the worker re-registers).
        let body = heartbeat(&other, now(), vec![]);
        let (status, v) = post(
            &app,
            "/nodes/heartbeat",
            body.clone(),
            Some(other.sign(api::HEARTBEAT_DOMAIN, &body)),
        )
        .await;
        assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "unknown_node"));
        // Tried: a wrong join token. Must hold: 401 join_token_refused, nothing stored.
        let body = registration(&other, "guess", now());
        let (status, v) = post(
            &app,
            "/nodes/register",
            body.clone(),
            Some(other.sign(api::REGISTER_DOMAIN, &body)),
        )
        .await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "join_token_refused"));
        // Tried: a registration whose clock is an hour off. Must hold: 400 clock_skew.
        let body = registration(&other, JOIN, now() - 3600);
        let (status, v) = post(
            &app,
            "/nodes/register",
            body.clone(),
            Some(other.sign(api::REGISTER_DOMAIN, &body)),
        )
        .await;
        assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "clock_skew"));
        // Tried: malformed JSON, a wrong type, and an unknown field. Must hold: 400 malformed_json.
        for bad in [&b"{not json"[..], br#"{"join_token": 5}"#, br#"{"zzz": 1}"#] {
            let (status, v) = post(&app, "/nodes/register", bad.to_vec(), None).await;
            assert_eq!(
                (status, code(&v)),
                (StatusCode::BAD_REQUEST, "malformed_json"),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Tried: a registration whose public key is not 64 hex digits, and a heartbeat naming a
        // malformed corrupt shard. Must hold: 400 invalid_field (refused where the JSON is read).
        let mut bad: serde_json::Value = serde_json::from_slice(&registration(&other, JOIN, now())).unwrap();
        bad["public_key"] = "zz".into();
        let (status, v) = post(&app, "/nodes/register", serde_json::to_vec(&bad).unwrap(), None).await;
        assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "invalid_field"), "{v}");
        let mut bad: serde_json::Value = serde_json::from_slice(&heartbeat(&node, now(), vec![])).unwrap();
        bad["corrupt_shards"] = serde_json::json!(["not-a-shard"]);
        let (status, v) = post(&app, "/nodes/heartbeat", serde_json::to_vec(&bad).unwrap(), None).await;
        assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "invalid_field"), "{v}");
        // Tried: a 2 MiB body. Must hold: 413, nothing read into the database.
        let (status, _) = post(&app, "/nodes/heartbeat", vec![b' '; 2 << 20], None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let list = disktro_server::nodes::list(&ctx.db, Duration::from_secs(10), disktro_server::context::unix_now())
            .await
            .unwrap();
        assert_eq!(list.len(), 1, "{}: only the registered node", db.backend);
        // Unknown API routes are JSON 404s.
        let res = app
            .clone()
            .oneshot(Request::get("/api/v1/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

/// The fingerprint of the server key in `dir`, as the server logs it.
fn ctx_fingerprint(dir: &std::path::Path) -> String {
    let (key, _) = disktro_net::keyfile::load_or_create_file(dir, "server.key").unwrap();
    key.public().fingerprint()
}

#[tokio::test(flavor = "multi_thread")]
async fn local_workers_and_a_joining_worker_show_their_health() {
    disktro_net::tls::install_default_provider();
    for db in databases().await {
        let server = Server::start(
            db.dir.path(),
            &db.url,
            &[
                "--local-workers",
                "3",
                "--heartbeat-interval",
                "1s",
                "--join-token",
                JOIN,
            ],
        );
        let online = |want: usize| {
            let url = server.url.clone();
            move || {
                let url = url.clone();
                async move { nodes_of(&url).await.iter().filter(|n| n["status"] == "online").count() == want }
            }
        };
        assert!(
            eventually(Duration::from_secs(20), online(3)).await,
            "{}: local workers not online:\n{}",
            db.backend,
            server.log_text()
        );

        // A worker started on its own joins with the join token and shows up; stopped, it turns
        // suspect.
        let worker_dir = db.dir.path().join("joined");
        let mut config = disktro_worker::WorkerConfig::new(&worker_dir);
        config.server = Some(server.url.clone());
        config.join_token = Some(JOIN.to_owned());
        config.zone = "far".to_owned();
        config.heartbeat_interval = Duration::from_secs(1);
        let worker = disktro_worker::start(config).await.unwrap();
        assert!(
            eventually(Duration::from_secs(20), online(4)).await,
            "{}: joined worker not online",
            db.backend
        );
        // The worker pins the key after the server answered, so poll for it.
        let pin = worker_dir.join("server.pub");
        assert!(eventually(Duration::from_secs(10), || std::future::ready(pin.exists())).await);
        let pinned = std::fs::read_to_string(&pin).unwrap();
        let key = std::fs::read(db.dir.path().join("server.key")).unwrap();
        assert_eq!(key.len(), 37);
        assert_eq!(pinned.trim().len(), 64);
        worker.shutdown().await;
        let url = server.url.clone();
        assert!(
            eventually(Duration::from_secs(15), || {
                let url = url.clone();
                async move {
                    nodes_of(&url)
                        .await
                        .iter()
                        .any(|n| n["zone"] == "far" && n["status"] == "suspect")
                }
            })
            .await,
            "{}: a silent worker must turn suspect",
            db.backend
        );
        // The join token never appears in the log.
        assert!(!server.log_text().contains(JOIN));
        if db.backend == "postgres" {
            // A second replica on the same database (and key file) sees the same network.
            let replica = Server::start(db.dir.path(), &db.url, &["--join-token", JOIN]);
            let seen = nodes_of(&replica.url).await;
            assert_eq!(seen.len(), 4, "the replica lists every node");
            assert!(replica.log_text().contains(&ctx_fingerprint(db.dir.path())));
            replica.stop();
        }
        server.stop();
    }
}

/// Tried: a node with samples 9 days, 8 days and 1 hour old, whose rewards are accounted up to
/// just after the 8-day-old one, sends a heartbeat in a new minute. Must hold: the 9-day-old
/// sample goes (older than the week kept, and paid for); the 8-day-old one stays (its minute is
/// not yet accounted: storage is paid by the minutes a node was seen); the recent one stays; the
/// new minute's sample is added. A second heartbeat in the same minute prunes nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn old_samples_are_pruned_once_accounted() {
    for db in databases().await {
        let ctx = context(&db).await;
        let app = app(&ctx);
        let node = Keypair::generate();
        let id = node.public().node_id().to_hex();
        let body = registration(&node, JOIN, now());
        let (status, v) = post(
            &app,
            "/nodes/register",
            body.clone(),
            Some(node.sign(api::REGISTER_DOMAIN, &body)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}: {v}", db.backend);
        let t0 = i64::try_from(now()).unwrap();
        let t0 = t0 - t0.rem_euclid(60) + 120;
        let day = 86_400;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        for at in [t0 - 9 * day, t0 - 8 * day, t0 - 3600] {
            sqlx::query(
                "INSERT INTO node_samples (node_id, at, capacity, used, shards, ingress_bytes, egress_bytes, uptime_secs) \
                 VALUES ($1, $2, 1, 1, 1, 1, 1, 1)",
            )
            .bind(&id)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("UPDATE nodes SET accrued_until = $2 WHERE node_id = $1")
            .bind(&id)
            .bind(t0 - 8 * day + 30)
            .execute(&pool)
            .await
            .unwrap();
        let samples = || async {
            sqlx::query("SELECT at FROM node_samples WHERE node_id = $1 ORDER BY at")
                .bind(&id)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| sqlx::Row::get::<i64, _>(r, "at"))
                .collect::<Vec<i64>>()
        };
        for sent in [t0, t0 + 5] {
            let body = heartbeat(&node, u64::try_from(sent).unwrap(), Vec::new());
            let signature = Some(node.sign(api::HEARTBEAT_DOMAIN, &body));
            disktro_server::nodes::heartbeat(
                &ctx.db,
                &ctx.roster,
                &ctx.key.public(),
                Duration::from_secs(10),
                &body,
                signature,
                sent,
            )
            .await
            .unwrap();
            assert_eq!(
                samples().await,
                [t0 - 8 * day, t0 - 3600, t0],
                "{}: after the heartbeat at {sent}",
                db.backend
            );
        }
    }
}

/// Tried: one replica places uploads from its copy of the nodes ([`disktro_server::roster`])
/// while another replica on the same database disqualifies a node and registers a new one, and
/// heartbeats (to this replica and to the other) report a node full. Must hold: the state
/// changes count at the very next placement on either replica; a full node reported to this
/// replica at once, to the other within the copy's refresh; and the copy is judged by each
/// request's clock (a node silent for long is not placed on, whatever the copy says).
#[tokio::test(flavor = "multi_thread")]
async fn placement_sees_every_node_change_at_once_from_any_replica() {
    use disktro_server::nodes::writable_now;
    for db in databases().await {
        let here = context(&db).await;
        let there = context(&db).await;
        let (app_here, app_there) = (app(&here), app(&there));
        // `body` signed by `node` under `domain`, posted to `path`: answered 200.
        let signed_ok = |app: axum::Router, path: &'static str, domain: &'static str, node: Keypair, body: Vec<u8>| async move {
            let signature = Some(node.sign(domain, &body));
            let (status, v) = post(&app, path, body, signature).await;
            assert_eq!(status, StatusCode::OK, "{path}: {v}");
        };
        let register = |app: axum::Router, node: Keypair| {
            let body = registration(&node, JOIN, now());
            signed_ok(app, "/nodes/register", api::REGISTER_DOMAIN, node, body)
        };
        let nodes: Vec<Keypair> = (0..12).map(|_| Keypair::generate()).collect();
        for n in &nodes {
            register(app_here.clone(), n.clone()).await;
        }
        let placeable = |ctx: Arc<disktro_server::Context>, min_free: i64| async move {
            let t = disktro_server::context::unix_now();
            writable_now(&ctx, t, min_free)
                .await
                .unwrap()
                .into_iter()
                .map(|w| w.node_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(placeable(Arc::clone(&here), 0).await.len(), 12, "{}", db.backend);

        // Disqualified by the other replica: gone here at the next placement.
        let gone = nodes[0].public().node_id();
        let mut tx = there.db.begin_write().await.unwrap();
        disktro_server::store::nodes::set_state(&mut tx, &gone.to_hex(), "disqualified", "test", 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let seen = placeable(Arc::clone(&here), 0).await;
        assert!(
            !seen.contains(&gone),
            "{}: a disqualified node is still placed on",
            db.backend
        );
        assert_eq!(seen.len(), 11, "{}", db.backend);

        // Registered through the other replica: placed on here at once.
        let new = Keypair::generate();
        register(app_there.clone(), new.clone()).await;
        assert!(
            placeable(Arc::clone(&here), 0).await.contains(&new.public().node_id()),
            "{}: a new node is not placed on",
            db.backend
        );

        // Full, by a heartbeat to this replica: at once.
        let report_full = |app: axum::Router, node: Keypair| {
            let mut v: serde_json::Value = serde_json::from_slice(&heartbeat(&node, now(), Vec::new())).unwrap();
            v["used"] = v["capacity"].clone();
            let body = serde_json::to_vec(&v).unwrap();
            signed_ok(app, "/nodes/heartbeat", api::HEARTBEAT_DOMAIN, node, body)
        };
        report_full(app_here.clone(), nodes[1].clone()).await;
        let with_room = placeable(Arc::clone(&here), 1).await;
        assert!(
            !with_room.contains(&nodes[1].public().node_id()),
            "{}: a full node is placed on",
            db.backend
        );
        // Full, by a heartbeat to the other replica: here within the refresh.
        report_full(app_there.clone(), nodes[2].clone()).await;
        let limit = disktro_server::roster::REFRESH * 3;
        assert!(
            eventually(limit, || {
                let here = Arc::clone(&here);
                let node = nodes[2].public().node_id();
                async move { !placeable(here, 1).await.contains(&node) }
            })
            .await,
            "{}: a node reported full elsewhere is still placed on after {limit:?}",
            db.backend
        );

        // An hour on, without a heartbeat, nothing is online, whatever the copy holds.
        let later = disktro_server::context::unix_now() + 3600;
        assert!(
            writable_now(&here, later, 0).await.unwrap().is_empty(),
            "{}",
            db.backend
        );
    }
}
