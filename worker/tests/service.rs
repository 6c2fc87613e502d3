//! The real worker binary over real WebSockets: round trips, multiplexing, restarts, and every
//! kind of bad input. Each bad-input test says what was tried and what must hold.
#![allow(clippy::cast_possible_truncation)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use disktro_core::token::{Operation, Receipt};
use disktro_core::wire::{Body, ErrorCode, Frame};
use disktro_core::{ShardId, keys::Keypair, keys::PublicKey};
use disktro_net::client::{ClientError, ConnectOptions, WorkerClient};
use futures_util::{SinkExt as _, StreamExt as _};
use support::{Fixture, Worker, eventually, shard};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn refused(r: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn code_of(frame: &Frame) -> Option<ErrorCode> {
    match frame.body {
        Body::Error { code, .. } => Some(code),
        _ => None,
    }
}

fn worker_key(w: &Worker) -> PublicKey {
    PublicKey(disktro_core::ids::from_hex(&w.info.public_key).unwrap())
}

async fn raw(
    w: &Worker,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    tokio_tungstenite::connect_async(&w.info.url).await.unwrap().0
}

/// Send one binary message on a raw socket and decode the one frame that comes back.
async fn exchange<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, bytes: Vec<u8>) -> Frame
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::Binary(bytes.into())).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => return Frame::decode(&b).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_shards_round_trip_over_one_connection_and_many_and_survive_a_restart() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let key = worker_key(&w);
    let put_token = Arc::new(fx.token(&w.node_id, Operation::Put, 64 << 20, &[]));

    // 64 shards at once over one connection.
    let one = Arc::new(w.client().await);
    let shards: Vec<_> = (0..64).map(|i| shard(i, 50_000 + i as usize * 1000)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (id, bytes) in shards.clone() {
        let (c, t) = (Arc::clone(&one), Arc::clone(&put_token));
        tasks.spawn(async move { (id, bytes.len(), c.put(&t, id, bytes).await.unwrap()) });
    }
    while let Some(r) = tasks.join_next().await {
        let (id, len, receipt) = r.unwrap();
        let receipt = Receipt::verify(&receipt, &key).unwrap();
        assert_eq!(
            (receipt.shard, receipt.size as usize, receipt.worker),
            (id, len, w.node_id)
        );
    }

    // 8 connections, 16 shards each, at once.
    let more: Vec<_> = (100..228).map(|i| shard(i, 20_000)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for batch in more.chunks(16) {
        let (batch, t, url) = (batch.to_vec(), Arc::clone(&put_token), w.info.url.clone());
        tasks.spawn(async move {
            let c = Arc::new(WorkerClient::connect(&url, &ConnectOptions::default()).await.unwrap());
            let mut inner = tokio::task::JoinSet::new();
            for (id, bytes) in batch {
                let (c, t) = (Arc::clone(&c), Arc::clone(&t));
                inner.spawn(async move { c.put(&t, id, bytes).await.unwrap() });
            }
            while let Some(r) = inner.join_next().await {
                r.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let all: Vec<_> = shards.iter().chain(&more).cloned().collect();
    assert_eq!(w.stored_files().len(), all.len());

    let ids: Vec<ShardId> = all.iter().map(|(id, _)| *id).collect();
    let check_all = |w: &Worker| {
        let get_token = Arc::new(fx.token(&w.node_id, Operation::Get, 64 << 20, &ids));
        let all = all.clone();
        let url = w.info.url.clone();
        async move {
            let c = Arc::new(WorkerClient::connect(&url, &ConnectOptions::default()).await.unwrap());
            let mut tasks = tokio::task::JoinSet::new();
            for (id, bytes) in all {
                let (c, t) = (Arc::clone(&c), Arc::clone(&get_token));
                tasks.spawn(async move { assert_eq!(c.get(&t, id).await.unwrap().into_bytes(), bytes) });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
        }
    };
    check_all(&w).await;
    drop(one);

    // A clean stop and a start on the same data dir keep every shard and the node identity.
    let node_id = w.node_id;
    w.stop();
    let w = fx.start("w", &[]);
    assert_eq!(w.node_id, node_id);
    check_all(&w).await;

    // Putting a stored shard again answers with a receipt and rewrites nothing.
    let (id, bytes) = all[0].clone();
    let before = std::fs::metadata(w.shard_path(&id)).unwrap().modified().unwrap();
    let c = w.client().await;
    c.put(&put_token, id, bytes).await.unwrap();
    assert_eq!(
        std::fs::metadata(w.shard_path(&id)).unwrap().modified().unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_get_error_frames_and_the_worker_stays_up() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let put_token = fx.token(&w.node_id, Operation::Put, 1 << 20, &[]);
    let (id, bytes) = shard(1, 1000);
    let good = Frame {
        request_id: 77,
        body: Body::Put {
            token: put_token.clone(),
            shard: id,
            data: bytes.clone().into(),
        },
    }
    .encode()
    .unwrap();
    let mut ws = raw(&w).await;

    // Tried: a version byte and then nothing sensible. Must hold: Malformed, connection open.
    let f = exchange(&mut ws, vec![disktro_core::FORMAT_VERSION, 0xad]).await;
    assert_eq!(code_of(&f), Some(ErrorCode::Malformed), "{f:?}");
    // Tried: a put frame cut short. Must hold: Malformed with the request id echoed.
    let f = exchange(&mut ws, good[..good.len() - 10].to_vec()).await;
    assert_eq!(f.request_id, 77);
    assert_eq!(code_of(&f), Some(ErrorCode::Malformed), "{f:?}");
    // Tried: an unknown protocol version. Must hold: UnsupportedVersion.
    let mut v = good.clone();
    v[0] = 99;
    let f = exchange(&mut ws, v).await;
    assert_eq!(code_of(&f), Some(ErrorCode::UnsupportedVersion), "{f:?}");
    // Tried: an unknown frame kind, and a response kind sent as a request. Must hold: Malformed.
    let mut k = good.clone();
    k[1] = 250;
    let f = exchange(&mut ws, k).await;
    assert_eq!(code_of(&f), Some(ErrorCode::Malformed), "{f:?}");
    let deleted = Frame {
        request_id: 5,
        body: Body::Deleted { shards: vec![] },
    }
    .encode()
    .unwrap();
    let f = exchange(&mut ws, deleted).await;
    assert_eq!(code_of(&f), Some(ErrorCode::Malformed), "{f:?}");
    // Tried: a text message. Must hold: Malformed.
    ws.send(Message::text("put please")).await.unwrap();
    let Some(Ok(Message::Binary(b))) = ws.next().await else {
        panic!("no answer to a text message")
    };
    assert_eq!(code_of(&Frame::decode(&b).unwrap()), Some(ErrorCode::Malformed));
    assert!(w.stored_files().is_empty(), "nothing stored by bad frames");

    // The same connection still works.
    let f = exchange(&mut ws, good).await;
    assert_eq!(f.request_id, 77);
    assert!(matches!(f.body, Body::Receipt { .. }), "{f:?}");

    // Tried: one message larger than the largest frame. Must hold: close 1009, nothing stored,
    // other clients unaffected.
    let mut big = raw(&w).await;
    let oversized = vec![1u8; disktro_core::wire::MAX_FRAME_LEN + 1];
    let _ = big.send(Message::Binary(oversized.into())).await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), big.next()).await.unwrap() {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Size);
    assert_eq!(w.stored_files().len(), 1);
    let (id2, bytes2) = shard(2, 1000);
    w.client().await.put(&put_token, id2, bytes2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_shard_ids_are_checked_before_anything_is_stored() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let other = fx.start("other", &[]);
    let c = w.client().await;
    let (id, bytes) = shard(1, 100_000);
    let put = |budget| fx.token(&w.node_id, Operation::Put, budget, &[]);

    // Tried: a token signed by a key that is not the server's. Must hold: BadToken.
    let forger = Keypair::generate();
    let forged = fx.token_with(&forger, &w.node_id, Operation::Put, 1 << 20, &[], 3600);
    assert_eq!(refused(c.put(&forged, id, bytes.clone()).await), ErrorCode::BadToken);
    // Tried: a valid token with one byte changed. Must hold: BadToken.
    let mut tampered = put(1 << 20);
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    assert!(matches!(
        refused(c.put(&tampered, id, bytes.clone()).await),
        ErrorCode::BadToken | ErrorCode::Malformed
    ));
    // Tried: an expired token. Must hold: TokenExpired.
    let expired = fx.token_with(&fx.server, &w.node_id, Operation::Put, 1 << 20, &[], -1);
    assert_eq!(
        refused(c.put(&expired, id, bytes.clone()).await),
        ErrorCode::TokenExpired
    );
    // Tried: a token for another worker. Must hold: WrongWorker.
    let theirs = fx.token(&other.node_id, Operation::Put, 1 << 20, &[]);
    assert_eq!(refused(c.put(&theirs, id, bytes.clone()).await), ErrorCode::WrongWorker);
    // Tried: a get token used to put. Must hold: WrongOperation.
    let get = fx.token(&w.node_id, Operation::Get, 1 << 20, &[id]);
    assert_eq!(refused(c.put(&get, id, bytes.clone()).await), ErrorCode::WrongOperation);
    // Tried: bytes that do not hash to the claimed id. Must hold: HashMismatch.
    let mut wrong = bytes.clone();
    wrong[500] ^= 1;
    assert_eq!(refused(c.put(&put(1 << 20), id, wrong).await), ErrorCode::HashMismatch);
    // Tried: an id whose bytes spell a path traversal (ids are 32 raw bytes on the wire and
    // always become 64 hex digits on disk). Must hold: HashMismatch, nothing written anywhere.
    let mut traversal = [b'/'; 32];
    traversal[..15].copy_from_slice(b"../../../../etc");
    assert_eq!(
        refused(c.put(&put(1 << 20), ShardId(traversal), bytes.clone()).await),
        ErrorCode::HashMismatch
    );
    assert!("../../etc/passwd".parse::<ShardId>().is_err());
    assert!(w.stored_files().is_empty(), "nothing stored by refused puts");
    assert!(support::files_under(&w.data_dir.join("tmp")).is_empty());

    // Tried: a budget of 150 kB and two 100 kB shards. Must hold: the first is stored, the
    // second is OverBudget and not stored; re-putting the first costs nothing.
    let small = put(150_000);
    c.put(&small, id, bytes.clone()).await.unwrap();
    let (id2, bytes2) = shard(2, 100_000);
    assert_eq!(refused(c.put(&small, id2, bytes2.clone()).await), ErrorCode::OverBudget);
    assert!(!w.shard_path(&id2).exists());
    c.put(&small, id, bytes.clone()).await.unwrap();

    // Tried: a get token for another shard, and a get of a shard that is not stored.
    let get_other = fx.token(&w.node_id, Operation::Get, 1 << 20, &[id2]);
    assert_eq!(refused(c.get(&get_other, id).await), ErrorCode::NotInScope);
    assert_eq!(refused(c.get(&get_other, id2).await), ErrorCode::NotFound);
    // Tried: a get budget smaller than the shard. Must hold: OverBudget.
    let tiny = fx.token(&w.node_id, Operation::Get, 10, &[id]);
    assert_eq!(refused(c.get(&tiny, id).await), ErrorCode::OverBudget);

    // Tried: a delete token used twice, and one covering other shards. Must hold: the first use
    // deletes, the second is TokenReplayed; out of scope is NotInScope and deletes nothing.
    let del_other = fx.token(&w.node_id, Operation::Delete, 0, &[id2]);
    assert_eq!(refused(c.delete(&del_other, vec![id]).await), ErrorCode::NotInScope);
    assert!(w.shard_path(&id).exists());
    let put_only = fx.token(&w.node_id, Operation::Put, 1 << 20, &[]);
    assert_eq!(refused(c.delete(&put_only, vec![id]).await), ErrorCode::WrongOperation);
    let del = fx.token(&w.node_id, Operation::Delete, 0, &[id]);
    assert_eq!(c.delete(&del, vec![id]).await.unwrap(), vec![id]);
    assert!(!w.shard_path(&id).exists());
    c.put(&put_only, id, bytes.clone()).await.unwrap();
    assert_eq!(refused(c.delete(&del, vec![id]).await), ErrorCode::TokenReplayed);
    assert!(w.shard_path(&id).exists(), "a replayed delete deletes nothing");

    // The worker is still up for everyone.
    let get = fx.token(&w.node_id, Operation::Get, 1 << 20, &[id]);
    assert_eq!(w.client().await.get(&get, id).await.unwrap().into_bytes(), bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_proofs_verify_for_real_shards_only() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let c = w.client().await;
    let (id, bytes) = shard(3, 300_000);
    c.put(&fx.token(&w.node_id, Operation::Put, 1 << 20, &[]), id, bytes.clone())
        .await
        .unwrap();
    let nonce = disktro_core::random_bytes::<32>();
    let audit = fx.token(&w.node_id, Operation::Audit, 0, &[id]);
    let proof = c.audit(&audit, id, 123_456, 4096, nonce).await.unwrap();
    let proven = disktro_core::audit::verify(&id, bytes.len() as u64, 123_456, 4096, &proof).unwrap();
    assert_eq!(proven, &bytes[123_456..123_456 + 4096]);
    // Tried: the same audit token again. Must hold: TokenReplayed.
    assert_eq!(
        refused(c.audit(&audit, id, 0, 100, nonce).await),
        ErrorCode::TokenReplayed
    );
    // Tried: a proof checked against another range. Must hold: it does not verify.
    assert!(disktro_core::audit::verify(&id, bytes.len() as u64, 0, 4096, &proof).is_err());
    // Tried: a missing shard. Must hold: NotFound.
    let (missing, _) = shard(4, 1000);
    let t = fx.token(&w.node_id, Operation::Audit, 0, &[missing]);
    assert_eq!(refused(c.audit(&t, missing, 0, 100, nonce).await), ErrorCode::NotFound);
    // Tried: a shard modified on disk. Must hold: no proof (Corrupt), the shard is quarantined.
    let path = w.shard_path(&id);
    let mut on_disk = std::fs::read(&path).unwrap();
    on_disk[200_000] ^= 0x40;
    std::fs::write(&path, &on_disk).unwrap();
    let t = fx.token(&w.node_id, Operation::Audit, 0, &[id]);
    assert_eq!(refused(c.audit(&t, id, 123_456, 4096, nonce).await), ErrorCode::Corrupt);
    assert!(!path.exists());
    assert_eq!(w.files_in("quarantine").len(), 1);
    // And a proof made from the modified bytes does not verify against the id.
    let forged = disktro_core::audit::prove(&on_disk, 123_456, 4096).unwrap();
    assert!(disktro_core::audit::verify(&id, bytes.len() as u64, 123_456, 4096, &forged).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn bit_rot_is_quarantined_on_read_and_by_the_scrubber() {
    let fx = Fixture::default();
    let w = fx.start("w", &["--scrub-interval", "1s"]);
    let c = w.client().await;
    let put = fx.token(&w.node_id, Operation::Put, 1 << 20, &[]);
    let (a, a_bytes) = shard(10, 50_000);
    let (b, b_bytes) = shard(11, 50_000);
    c.put(&put, a, a_bytes).await.unwrap();
    c.put(&put, b, b_bytes).await.unwrap();
    let flip = |id: &ShardId| {
        let path = w.shard_path(id);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1234] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    };

    // Tried: a flipped byte, then a get. Must hold: Corrupt, never the bytes; quarantined.
    flip(&a);
    let get = fx.token(&w.node_id, Operation::Get, 1 << 20, &[a, b]);
    assert_eq!(refused(c.get(&get, a).await), ErrorCode::Corrupt);
    assert_eq!(refused(c.get(&get, a).await), ErrorCode::NotFound);
    // Tried: a flipped byte and no reads. Must hold: the scrubber quarantines it.
    flip(&b);
    let path = w.shard_path(&b);
    assert!(
        eventually(Duration::from_secs(20), || !path.exists()).await,
        "scrubber did not quarantine:\n{}",
        w.log_text()
    );
    assert_eq!(w.files_in("quarantine").len(), 2);
    assert!(w.log_text().contains("quarantined"));
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_stalled_clients_are_disconnected_and_others_are_served() {
    let fx = Fixture::default();
    let w = fx.start("w", &["--idle-timeout", "2s", "--write-timeout", "2s"]);
    let put = fx.token(&w.node_id, Operation::Put, 64 << 20, &[]);
    let (id, bytes) = shard(20, 4 << 20);
    w.client().await.put(&put, id, bytes.clone()).await.unwrap();

    // Tried: a TCP connection that never sends a byte. Must hold: closed after the handshake
    // timeout.
    let mut silent = tokio::net::TcpStream::connect(w.info.listen).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("the worker closes a silent connection");
    assert!(matches!(n, Ok(0) | Err(_)));

    // Tried: a WebSocket that never sends a request. Must hold: closed with 1000 "idle timeout".
    let mut idle = raw(&w).await;
    match tokio::time::timeout(Duration::from_secs(10), idle.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(c)))) => assert_eq!(c.code, CloseCode::Normal),
        other => panic!("expected an idle close, got {other:?}"),
    }

    // Tried: 32 gets of a 4 MiB shard on a connection that never reads. Must hold: the worker
    // stays within its memory budget, serves another client meanwhile, and drops the stalled one.
    let get = fx.token(&w.node_id, Operation::Get, 1 << 30, &[id]);
    let request = w.info.url.clone().into_client_request().unwrap();
    let tcp = tokio::net::TcpStream::connect(w.info.listen).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    for i in 0..32 {
        let frame = Frame {
            request_id: i,
            body: Body::Get {
                token: get.clone(),
                shard: id,
            },
        };
        stalled
            .send(Message::Binary(frame.encode().unwrap().into()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let other = w.client().await;
    let (id2, bytes2) = shard(21, 100_000);
    other.put(&put, id2, bytes2.clone()).await.unwrap();
    let get2 = fx.token(&w.node_id, Operation::Get, 1 << 20, &[id2]);
    assert_eq!(other.get(&get2, id2).await.unwrap().into_bytes(), bytes2);
    // 32 × 4 MiB were asked for; the budget (32 MiB) and socket buffers bound what is held.
    let rss = w.peak_rss();
    assert!(rss < 160 << 20, "peak RSS {} MiB", rss >> 20);
    // The stalled client is dropped after the write timeout (2 s, passed here while it still
    // does not read): reading now ends within seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        let mut frames = 0;
        loop {
            match stalled.next().await {
                Some(Ok(Message::Binary(_))) => frames += 1,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return frames,
            }
        }
    })
    .await
    .expect("the stalled connection was dropped");
    assert!(
        ended < 32,
        "the worker gave up before sending everything ({ended} frames)"
    );
    // (`other` idled out meanwhile under the 2 s idle timeout.)
    assert_eq!(w.client().await.get(&get2, id2).await.unwrap().into_bytes(), bytes2);
}

#[tokio::test(flavor = "multi_thread")]
async fn origins_are_checked() {
    let fx = Fixture::default();
    let w = fx.start("w", &["--allowed-origin", "https://app.example"]);
    let connect = |origin: Option<&str>| {
        let options = ConnectOptions {
            origin: origin.map(str::to_owned),
            ..ConnectOptions::default()
        };
        let url = w.info.url.clone();
        async move { WorkerClient::connect(&url, &options).await }
    };
    // Tried: a browser origin not on the list. Must hold: the handshake is refused (403).
    match connect(Some("https://evil.example")).await {
        Err(ClientError::Connect { reason, .. }) => assert!(reason.contains("403"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The allowed origin and programs without an origin get in.
    let c = connect(Some("https://app.example")).await.unwrap();
    let (id, bytes) = shard(30, 1000);
    c.put(&fx.token(&w.node_id, Operation::Put, 1 << 20, &[]), id, bytes)
        .await
        .unwrap();
    connect(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_wss_with_the_operators_certificate() {
    let fx = Fixture::default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = fx.tmp.path().join("cert.pem");
    let key_path = fx.tmp.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let w = fx.start(
        "w",
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(w.info.url.starts_with("wss://"));
    let url = format!("wss://localhost:{}", w.info.listen.port());
    // Tried: a client that does not trust the certificate. Must hold: no connection.
    assert!(WorkerClient::connect(&url, &ConnectOptions::default()).await.is_err());
    let options = ConnectOptions {
        tls: Some(disktro_net::tls::client_config_with_roots(&[cert.cert.der().clone()])),
        ..ConnectOptions::default()
    };
    let c = WorkerClient::connect(&url, &options).await.unwrap();
    let (id, bytes) = shard(40, 200_000);
    c.put(&fx.token(&w.node_id, Operation::Put, 1 << 20, &[]), id, bytes.clone())
        .await
        .unwrap();
    assert_eq!(
        c.get(&fx.token(&w.node_id, Operation::Get, 1 << 20, &[id]), id)
            .await
            .unwrap()
            .into_bytes(),
        bytes
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_settings_stop_the_worker_with_a_clear_message() {
    // Tried: a capacity without a number, and a TLS key without a certificate. Must hold: exit
    // code 2 and a message naming the flag.
    for (args, needle) in [
        (vec!["--capacity", "lots"], "--capacity"),
        (vec!["--tls-key", "/nonexistent"], "--tls-cert"),
    ] {
        let out = std::process::Command::new(support::BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // Tried: a TLS certificate file that does not exist. Must hold: exit 1 naming the file.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.key",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pem"));
}
