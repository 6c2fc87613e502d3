//! The real worker binary, with its default limits, under the load an attacker can make with
//! sockets and valid tokens of their own: readers that never read, sockets that never present a
//! token, and messages that never end. Each test says what was tried and what must hold; each
//! failed on the worker before connections had shares, strangers were capped and evicted, and
//! socket bytes were metered.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use disktro_core::ShardId;
use disktro_core::token::Operation;
use disktro_core::wire::{Body, Frame};
use disktro_net::client::{ConnectOptions, WorkerClient};
use futures_util::{SinkExt as _, StreamExt as _};
use support::{Fixture, Worker, shard};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// How long the honest requests may take under attack. Unhindered they take milliseconds;
/// before the fixes they waited for the write timeout (about 28 s). The margin is for a loaded
/// two-core test machine, not for the worker.
const PROMPT: Duration = Duration::from_secs(2);

/// A TCP connection to `w` from the loopback address `source` (127.0.0.0/8 is all local), so
/// tests can play clients on other addresses.
async fn tcp_from(w: &Worker, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(w.info.listen).await
}

/// Put `n` shards of `len` bytes; returns their ids.
async fn stored_shards(fx: &Fixture, w: &Worker, n: u64, len: usize) -> Vec<ShardId> {
    let c = w.client().await;
    let put = fx.token(&w.node_id, Operation::Put, 1 << 40, &[]);
    let mut ids = Vec::new();
    for seed in 0..n {
        let (id, bytes) = shard(1000 + seed, len);
        c.put(&put, id, bytes).await.unwrap();
        ids.push(id);
    }
    ids
}

/// An honest client's get, put and audit, each timed.
async fn honest_round(fx: &Fixture, w: &Worker, ids: &[ShardId], seed: u64) -> [Duration; 3] {
    let c = WorkerClient::connect(&w.info.url, &ConnectOptions::default())
        .await
        .expect("an honest client connects");
    let t = Instant::now();
    let get = fx.token(&w.node_id, Operation::Get, 1 << 30, &ids[..1]);
    c.get(&get, ids[0]).await.expect("get");
    let got = t.elapsed();
    let t = Instant::now();
    let (id, bytes) = shard(seed, 700_000);
    c.put(&fx.token(&w.node_id, Operation::Put, 1 << 20, &[]), id, bytes)
        .await
        .expect("put");
    let put = t.elapsed();
    let t = Instant::now();
    let audit = fx.token(&w.node_id, Operation::Audit, 0, &ids[1..2]);
    let proof = c.audit(&audit, ids[1], 0, 4096, [9; 32]).await.expect("audit");
    assert!(!proof.is_empty());
    [got, put, t.elapsed()]
}

/// A connection that asks for every shard in `ids` and never reads an answer.
async fn stalled_reader(fx: &Fixture, w: &Worker, ids: &[ShardId]) -> impl Drop {
    let get = fx.token(&w.node_id, Operation::Get, 1 << 40, ids);
    let request = w.info.url.clone().into_client_request().unwrap();
    let tcp = TcpStream::connect(w.info.listen).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let frame = Frame {
            request_id: u32::try_from(i).unwrap(),
            body: Body::Get {
                token: get.clone(),
                shard: *id,
            },
        };
        ws.send(Message::Binary(frame.encode().unwrap().into())).await.unwrap();
    }
    // Keep the socket open, unread, for as long as the test holds the value.
    let (_sink, stream) = ws.split();
    Box::new(stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_readers_starve_neither_other_clients_nor_audits() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let ids = stored_shards(&fx, &w, 32, 1 << 20).await;
    let baseline = honest_round(&fx, &w, &ids, 1).await;

    // Tried: two connections with valid get tokens ask for 32 shards of 1 MiB each and never
    // read, and keep doing so (a dropped one comes back) past the write timeout (30 s). Must
    // hold all along: another client's get, put and audit are answered promptly.
    let attack_until = Instant::now() + Duration::from_secs(40);
    let mut round = 0;
    let mut stalled = vec![stalled_reader(&fx, &w, &ids).await, stalled_reader(&fx, &w, &ids).await];
    tokio::time::sleep(Duration::from_millis(500)).await;
    while Instant::now() < attack_until {
        round += 1;
        let times = honest_round(&fx, &w, &ids, 100 + round).await;
        for (what, took) in ["get", "put", "audit"].iter().zip(times) {
            assert!(
                took < PROMPT,
                "round {round}: the honest {what} took {took:?} beside two stalled readers (alone: {baseline:?})"
            );
        }
        if round % 10 == 0 {
            // The attacker replaces its readers (the worker drops them after the write timeout).
            stalled = vec![stalled_reader(&fx, &w, &ids).await, stalled_reader(&fx, &w, &ids).await];
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn sockets_without_a_token_cannot_lock_out_token_holders() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let ids = stored_shards(&fx, &w, 2, 100_000).await;

    // Tried: 256 WebSockets (the default connection limit) that never send a request, from 16
    // addresses. Must hold: a client with a token still connects and puts, gets and audits;
    // one address holds at most its 32 slots; the strangers are closed within the
    // introduction timeout (5 s).
    let mut strangers = Vec::new();
    let mut refused_per_address = 0;
    for i in 0..256u32 {
        let source = IpAddr::from([127, 0, 1, u8::try_from(1 + i % 16).unwrap()]);
        let tcp = tcp_from(&w, source).await.unwrap();
        let request = w.info.url.clone().into_client_request().unwrap();
        let (ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
        strangers.push(ws);
    }
    // 33 more from one address, at once: the 33rd is over that address's share.
    let crowd = IpAddr::from([127, 0, 2, 1]);
    let mut crowded = Vec::new();
    for _ in 0..33 {
        let tcp = tcp_from(&w, crowd).await.unwrap();
        let request = w.info.url.clone().into_client_request().unwrap();
        crowded.push(tokio_tungstenite::client_async(request, tcp).await.unwrap().0);
    }
    for ws in &mut crowded {
        if let Ok(Some(Ok(Message::Close(Some(close))))) =
            tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
            assert!(close.reason.contains("address"), "{}", close.reason);
            refused_per_address += 1;
        }
    }
    assert_eq!(
        refused_per_address, 1,
        "the 33rd socket from one address is turned away"
    );
    let t = Instant::now();
    let times = honest_round(&fx, &w, &ids, 7).await;
    assert!(t.elapsed() < PROMPT, "honest round took {:?} ({times:?})", t.elapsed());

    // Every stranger is gone within the introduction timeout, evicted or timed out.
    let deadline = Instant::now() + Duration::from_secs(8);
    for ws in &mut strangers {
        let left = deadline.saturating_duration_since(Instant::now());
        let ended = tokio::time::timeout(left, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "a socket without a token outlived the introduction timeout"
        );
    }
}

/// A WebSocket handshake by hand on `tcp`, with the headers a browser sends (a long request,
/// which the worker must read in reads of normal size: tungstenite takes many tiny reads for an
/// attack), so a test can then send a message that never ends.
async fn handshake_by_hand(tcp: &mut TcpStream) {
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nPragma: no-cache\r\n\
          Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
          (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\n\
          Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

/// The header of a masked binary frame of `len` bytes, with a zero mask (the payload is sent
/// as is).
fn frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    header
}

/// Send the header of a `len`-byte message and as much of its payload as the worker takes
/// within `for_how_long`, keeping the last byte back so it never ends.
async fn send_endless_message(mut tcp: TcpStream, prefix: Vec<u8>, len: u64, for_how_long: Duration) -> TcpStream {
    let mut header = frame_header(len);
    header.extend_from_slice(&prefix);
    tcp.write_all(&header).await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = prefix.len() as u64;
    let until = Instant::now() + for_how_long;
    while sent + (chunk.len() as u64) < len && Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len() as u64,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    tcp
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_that_never_end_are_not_buffered_beyond_the_budget() {
    let fx = Fixture::default();
    let w = fx.start("w", &[]);
    let ids = stored_shards(&fx, &w, 2, 100_000).await;
    let base = w.peak_rss();

    // Tried: 20 sockets each send 15 MiB of a 16 MiB message and stop: 10 strangers (no token
    // at all), and 10 that introduced themselves with a valid put token first. Must hold: the
    // worker's peak RSS stays under 64 MiB (300 MiB were sent); the strangers are closed within
    // the introduction timeout (5 s), the stalled messages within the stall timeout (10 s) and
    // those waiting in line for memory within the memory wait (10 s), after which an honest
    // client is served promptly. (Until then the introduced ones hold the clients' memory
    // pool: their bytes are charged before they are read, and honest puts wait in line.)
    let put = fx.token(&w.node_id, Operation::Put, 1 << 40, &[]);
    let hello = Frame {
        request_id: 1,
        body: Body::Hello { token: put.clone() },
    }
    .encode()
    .unwrap();
    let mut senders = tokio::task::JoinSet::new();
    for i in 0..20u8 {
        let mut tcp = tcp_from(&w, IpAddr::from([127, 0, 3, 1 + i])).await.unwrap();
        handshake_by_hand(&mut tcp).await;
        if i >= 10 {
            // A short frame: 7-bit length (under 126 bytes) or 16-bit length.
            let mut framed = if hello.len() < 126 {
                vec![0x82, 0x80 | u8::try_from(hello.len()).unwrap()]
            } else {
                let mut f = vec![0x82, 0x80 | 126];
                f.extend_from_slice(&u16::try_from(hello.len()).unwrap().to_be_bytes());
                f
            };
            framed.extend_from_slice(&[0; 4]);
            framed.extend_from_slice(&hello);
            tcp.write_all(&framed).await.unwrap();
        }
        // A put frame's beginning: header, token, shard id, then 15 MiB of its data.
        let mut prefix = vec![disktro_core::FORMAT_VERSION, 1, 0, 0, 0, 2];
        prefix.extend_from_slice(&u16::try_from(put.len()).unwrap().to_be_bytes());
        prefix.extend_from_slice(&put);
        senders.spawn(send_endless_message(tcp, prefix, 16 << 20, Duration::from_secs(4)));
    }
    let mut held = Vec::new();
    while let Some(tcp) = senders.join_next().await {
        held.push(tcp.unwrap());
    }
    let peak = w.peak_rss();
    assert!(
        peak < 64 << 20,
        "worker peak RSS {} MiB (before the attack {} MiB)",
        peak >> 20,
        base >> 20
    );
    let mut served = false;
    let deadline = Instant::now() + Duration::from_secs(25);
    while !served && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        served = tokio::time::timeout(PROMPT, honest_round(&fx, &w, &ids, 8))
            .await
            .is_ok();
    }
    assert!(served, "no honest round went through within 25 s");
    drop(held);
}
