//! Registration and heartbeats of the real worker binary against an HTTP endpoint playing the
//! control server's two node routes (the server crate implements them for real; this endpoint
//! checks the same signatures and answers the same JSON, and can be stopped and forget nodes).
#![allow(clippy::cast_possible_truncation)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use disktro_core::ShardId;
use disktro_core::api::node as api;
use disktro_core::keys::{Keypair, PublicKey};
use disktro_core::token::Operation;
use disktro_core::wire::{Body, ErrorCode};
use disktro_net::client::ClientError;
use support::{Fixture, eventually, shard};

const JOIN_TOKEN: &str = "join-secret";

#[derive(Default)]
struct Seen {
    nodes: HashMap<disktro_core::NodeId, PublicKey>,
    registrations: usize,
    heartbeats: Vec<api::Heartbeat>,
}

#[derive(Clone)]
struct ControlEndpoint {
    key: Arc<Keypair>,
    seen: Arc<Mutex<Seen>>,
}

fn signature(headers: &HeaderMap) -> Option<[u8; 64]> {
    let hex = headers.get(api::SIGNATURE_HEADER)?.to_str().ok()?;
    disktro_core::ids::from_hex::<64>(hex).ok()
}

async fn register(
    State(s): State<ControlEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::Registered>, StatusCode> {
    let r: api::Registration = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    if r.join_token != JOIN_TOKEN {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let key = r.public_key;
    let sig = signature(&headers).ok_or(StatusCode::BAD_REQUEST)?;
    key.verify(api::REGISTER_DOMAIN, &body, &sig)
        .map_err(|_| StatusCode::FORBIDDEN)?;
    let node_id = key.node_id();
    let mut seen = s.seen.lock().unwrap();
    seen.nodes.insert(node_id, key);
    seen.registrations += 1;
    Ok(Json(api::Registered {
        node_id,
        server_key: s.key.public(),
        heartbeat_interval_secs: 1,
    }))
}

async fn heartbeat(
    State(s): State<ControlEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::HeartbeatAck>, StatusCode> {
    let beat: api::Heartbeat = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut seen = s.seen.lock().unwrap();
    let key = *seen.nodes.get(&beat.node_id).ok_or(StatusCode::NOT_FOUND)?;
    let sig = signature(&headers).ok_or(StatusCode::BAD_REQUEST)?;
    key.verify(api::HEARTBEAT_DOMAIN, &body, &sig)
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    seen.heartbeats.push(beat);
    // Ask for the listing of bucket 0 every time: the next heartbeat must carry it.
    Ok(Json(api::HeartbeatAck {
        heartbeat_interval_secs: 1,
        list_buckets: vec![0],
        revoked: Vec::new(),
    }))
}

/// Serve the endpoint on `addr` (port 0 for any) until the returned task is aborted.
async fn serve(addr: SocketAddr, endpoint: ControlEndpoint) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route(api::REGISTER_PATH, post(register))
        .route(api::HEARTBEAT_PATH, post(heartbeat))
        .with_state(endpoint);
    (
        addr,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

fn endpoint(key: Arc<Keypair>) -> ControlEndpoint {
    ControlEndpoint {
        key,
        seen: Arc::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_heartbeats_reports_corruption_and_survives_the_server() {
    let fx = Fixture::default();
    let server_key = Arc::new(fx.server.clone());
    let first = endpoint(Arc::clone(&server_key));
    let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), first.clone()).await;
    let url = format!("http://{addr}");
    let w = fx.start_with(
        "w",
        &[
            "--server",
            &url,
            "--join-token",
            JOIN_TOKEN,
            "--zone",
            "rack-7",
            "--capacity",
            "1GiB",
            "--heartbeat-interval",
            "1s",
            "--inventory-interval",
            "1s",
        ],
    );

    // Registration, then heartbeats with the node's state; the server key is pinned.
    assert!(
        eventually(Duration::from_secs(15), || !first
            .seen
            .lock()
            .unwrap()
            .heartbeats
            .is_empty())
        .await,
        "no heartbeat:\n{}",
        w.log_text()
    );
    {
        let seen = first.seen.lock().unwrap();
        let beat = &seen.heartbeats[0];
        assert_eq!(beat.node_id, w.node_id);
        assert_eq!(
            (beat.capacity, beat.zone.as_str(), beat.url.as_str()),
            (1 << 30, "rack-7", w.info.url.as_str())
        );
        assert_eq!(beat.version, env!("CARGO_PKG_VERSION"));
        assert!(beat.free_disk > 0);
    }
    let pinned = std::fs::read_to_string(w.data_dir.join("server.pub")).unwrap();
    assert_eq!(pinned.trim(), fx.server_key_hex());

    // Tokens from the learnt key work; traffic and shard counts reach the server.
    let c = w.client().await;
    let put = fx.token(&w.node_id, Operation::Put, 1 << 20, &[]);
    let (a, a_bytes) = shard(1, 10_000);
    let (b, b_bytes) = shard(2, 10_000);
    c.put(&put, a, a_bytes).await.unwrap();
    c.put(&put, b, b_bytes.clone()).await.unwrap();
    let reader = Keypair::generate();
    let get = fx.read_token(&w.node_id, 1 << 20, &[a, b], reader.public());
    let path = w.shard_path(&a);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        c.get(&get, a).await,
        Err(ClientError::Refused {
            code: ErrorCode::Corrupt,
            ..
        })
    ));
    // The corrupt shard is reported with the next heartbeat.
    assert!(
        eventually(Duration::from_secs(10), || {
            first.seen.lock().unwrap().heartbeats.iter().any(|h| {
                h.corrupt_shards.contains(&a) && h.shards == 1 && h.quarantined == 1 && h.ingress_bytes == 20_000
            })
        })
        .await,
        "corruption not reported"
    );

    // What the worker holds and what it served reach the server: an inventory summary equal to
    // one of its store (the quarantined shard gone), the listing of the bucket the server asked
    // for, and the reader's order for what it received under the get token, by serial.
    assert_eq!(c.get(&get, b).await.unwrap().into_bytes(), b_bytes);
    let serial = disktro_core::token::Token::decode(&get).unwrap().serial;
    // Tried: orders signed by another key, naming another worker, and for a serial this worker
    // served nothing under. Must hold: each refused with its code, and none displaces the
    // reader's own order, which is taken.
    let order = disktro_core::order::Order {
        serial,
        worker: w.node_id,
        bytes: 10_000,
    };
    let refused = |answer: Result<Body, ClientError>| match answer {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("an order that should be refused was answered {other:?}"),
    };
    let forged = order.sign(&Keypair::generate());
    assert_eq!(
        refused(c.request(Body::Order { order: forged }).await),
        ErrorCode::BadToken
    );
    let elsewhere = disktro_core::order::Order {
        worker: disktro_core::NodeId([3; 32]),
        ..order
    };
    let elsewhere = elsewhere.sign(&reader);
    assert_eq!(
        refused(c.request(Body::Order { order: elsewhere }).await),
        ErrorCode::WrongWorker
    );
    let unknown = disktro_core::order::Order {
        serial: disktro_core::Serial::random(),
        ..order
    };
    let unknown = unknown.sign(&reader);
    assert_eq!(
        refused(c.request(Body::Order { order: unknown }).await),
        ErrorCode::NotInScope
    );
    let taken = c
        .request(Body::Order {
            order: order.sign(&reader),
        })
        .await
        .unwrap();
    assert_eq!(taken, Body::OrderTaken);
    let expected = disktro_core::inventory::summarize(&[b]);
    let bucket0: Vec<String> = [b]
        .iter()
        .filter(|id| disktro_core::inventory::bucket_of(id) == 0)
        .map(ShardId::to_hex)
        .collect();
    assert!(
        eventually(Duration::from_secs(15), || {
            let seen = first.seen.lock().unwrap();
            let claimed = seen.heartbeats.iter().any(|h| {
                h.egress_claims.iter().any(|c| {
                    c.serial == serial
                        && c.served == 10_000
                        && c.order
                            .as_ref()
                            .map(|o| disktro_core::order::Order::verify(o, &reader.public()))
                            == Some(Ok(order))
                })
            });
            let summarized = seen.heartbeats.iter().any(|h| h.inventory.as_ref() == Some(&expected));
            let listed = seen
                .heartbeats
                .iter()
                .any(|h| h.listings.iter().any(|l| l.bucket == 0 && l.shards == bucket0));
            claimed && summarized && listed
        })
        .await,
        "claims, inventory or listing missing"
    );

    // Server down: the worker keeps serving stored shards.
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.get(&get, b).await.unwrap().into_bytes(), b_bytes);
    assert!(
        eventually(Duration::from_secs(10), || w.log_text().contains("server unreachable")).await,
        "{}",
        w.log_text()
    );

    // Server back, having forgotten the node: the worker registers again.
    let second = endpoint(Arc::clone(&server_key));
    let (_, task) = serve(addr, second.clone()).await;
    assert!(
        eventually(Duration::from_secs(45), || {
            let seen = second.seen.lock().unwrap();
            seen.registrations >= 1 && !seen.heartbeats.is_empty()
        })
        .await,
        "no re-registration:\n{}",
        w.log_text()
    );
    task.abort();
    let _ = task.await;

    // A server presenting another key is not obeyed: the pinned key stays, its tokens stay good,
    // the impostor's tokens are refused.
    let impostor_key = Arc::new(Keypair::generate());
    let impostor = endpoint(Arc::clone(&impostor_key));
    let (_, task) = serve(addr, impostor.clone()).await;
    assert!(
        eventually(Duration::from_secs(45), || w.log_text().contains("refusing to obey")).await,
        "{}",
        w.log_text()
    );
    assert!(impostor.seen.lock().unwrap().heartbeats.is_empty());
    let forged = fx.token_with(&impostor_key, &w.node_id, Operation::Get, 1 << 20, &[b], 3600);
    assert!(matches!(
        c.get(&forged, b).await,
        Err(ClientError::Refused {
            code: ErrorCode::BadToken,
            ..
        })
    ));
    assert_eq!(c.get(&get, b).await.unwrap().into_bytes(), b_bytes);
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_join_token_is_reported_and_the_worker_stays_up() {
    let fx = Fixture::default();
    let ep = endpoint(Arc::new(fx.server.clone()));
    let (addr, _task) = serve("127.0.0.1:0".parse().unwrap(), ep.clone()).await;
    let w = fx.start_with("w", &["--server", &format!("http://{addr}"), "--join-token", "guess"]);
    assert!(
        eventually(Duration::from_secs(15), || w.log_text().contains("join token refused")).await,
        "{}",
        w.log_text()
    );
    assert_eq!(ep.seen.lock().unwrap().registrations, 0);
    // Not registered and no --issuer-key: every token is refused, clearly.
    let put = fx.token(&w.node_id, Operation::Put, 1 << 20, &[]);
    let (id, bytes) = shard(3, 1000);
    match w.client().await.put(&put, id, bytes).await {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, ErrorCode::BadToken);
            assert!(message.contains("not registered"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
