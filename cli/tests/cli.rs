//! The `disktro` binary as a script would run it, against a real network on 127.0.0.1: the
//! server (its router on a real socket, SQLite in a temp dir) and 10 storage workers run in this
//! test process; every `disktro` command is a separate process with its own config directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn signup_upload_list_download_share_get_and_remove() {
    let mut net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    let url = net.url.clone();

    let o = disktro(
        &cfg,
        Some(&url),
        &["signup", "--email", "ada@example.org", "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "signup");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cfg.join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the saved keys are readable by the user only");
    }

    // A 9 MiB random file (3 chunks) and a 13 MiB text file (4 chunks: text is squeezed two
    // chunks at a time after the first, so this ends on a pair and then a lone last chunk).
    let noise = random(9 << 20, 1);
    let text = b"It was the best of times, it was the worst of times.\n".repeat(250_000);
    std::fs::write(work.path().join("noise.bin"), &noise).unwrap();
    std::fs::write(work.path().join("tale.txt"), &text).unwrap();
    let o = disktro(
        &cfg,
        None,
        &[
            "upload",
            work.path().join("noise.bin").to_str().unwrap(),
            work.path().join("tale.txt").to_str().unwrap(),
        ],
        None,
    )
    .await;
    ok(&o, "upload");
    let ids: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "one id per file: {ids:?}");
    assert!(ids.iter().all(|id| id.len() == 32));

    // stdin in, stdout out: text of two chunks and a byte (the squeezed pair ends the file).
    let mut piped = b"The quality of mercy is not strained.\n".repeat((8 << 20) / 38 + 1);
    piped.truncate((8 << 20) + 1);
    let o = disktro(&cfg, None, &["upload", "-", "--name", "piped.bin"], Some(piped.clone())).await;
    ok(&o, "upload from stdin");
    let piped_id = stdout(&o);
    let o = disktro(&cfg, None, &["download", &piped_id, "-o", "-"], None).await;
    ok(&o, "download to stdout");
    assert!(o.stdout == piped, "stdout download differs");

    let o = disktro(&cfg, None, &["ls", "--json"], None).await;
    ok(&o, "ls");
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"noise.bin") && names.contains(&"tale.txt") && names.contains(&"piped.bin"),
        "{names:?}"
    );
    let tale = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tale.txt")
        .unwrap();
    assert!(
        tale["stored_bytes"].as_u64().unwrap() < text.len() as u64,
        "text is squeezed"
    );
    let o = disktro(&cfg, None, &["ls"], None).await;
    ok(&o, "ls text");
    assert!(
        stdout(&o).contains("noise.bin") && stdout(&o).contains("10/10"),
        "{}",
        stdout(&o)
    );

    let out = work.path().join("noise.out");
    let o = disktro(&cfg, None, &["download", &ids[0], "-o", out.to_str().unwrap()], None).await;
    ok(&o, "download");
    assert!(std::fs::read(&out).unwrap() == noise, "download differs");
    // Tried: a download to a device and to a FIFO. Must hold: the bytes go into them (the FIFO's
    // reader gets the file whole) and they stay what they are, not replaced by a regular file.
    use std::os::unix::fs::FileTypeExt as _;
    let o = disktro(&cfg, None, &["download", &ids[0], "-o", "/dev/null"], None).await;
    ok(&o, "download to /dev/null");
    assert!(
        std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(),
        "a download replaced /dev/null"
    );
    let fifo = work.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success(), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        tokio::task::spawn_blocking(move || std::fs::read(fifo).unwrap())
    };
    let o = disktro(&cfg, None, &["download", &ids[0], "-o", fifo.to_str().unwrap()], None).await;
    ok(&o, "download to a FIFO");
    assert!(reader.await.unwrap() == noise, "the FIFO's reader got other bytes");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // Share with one download; get it with no account (a fresh config dir).
    let o = disktro(
        &cfg,
        None,
        &["share", &ids[0], "--expires", "1h", "--max-downloads", "1"],
        None,
    )
    .await;
    ok(&o, "share");
    let link = stdout(&o);
    assert!(link.starts_with(&format!("{url}/s/")) && link.contains('#'), "{link}");
    let stranger = home.path().join("stranger");
    let got = work.path().join("got.bin");
    let o = disktro(&stranger, None, &["get", &link, "-o", got.to_str().unwrap()], None).await;
    ok(&o, "get");
    assert!(std::fs::read(&got).unwrap() == noise, "get differs");
    let o = disktro(
        &stranger,
        None,
        &["get", &link, "-o", work.path().join("again.bin").to_str().unwrap()],
        None,
    )
    .await;
    fails(&o, 10, "a used-up link");
    assert!(!work.path().join("again.bin").exists());

    // A password-protected link.
    let o = disktro(
        &cfg,
        None,
        &["share", &ids[1], "--password-stdin"],
        Some(b"open sesame\n".to_vec()),
    )
    .await;
    ok(&o, "share with password");
    let guarded = stdout(&o);
    let o = disktro(&stranger, None, &["get", &guarded, "-o", "-"], None).await;
    fails(&o, 4, "no password");
    let o = disktro(
        &stranger,
        None,
        &["get", &guarded, "-o", "-", "--password-stdin"],
        Some(b"open barley\n".to_vec()),
    )
    .await;
    fails(&o, 4, "wrong password");
    let o = disktro(
        &stranger,
        None,
        &["get", &guarded, "-o", "-", "--password-stdin"],
        Some(b"open sesame\n".to_vec()),
    )
    .await;
    ok(&o, "right password");
    assert!(o.stdout == text);

    // Stop 4 of the 10 workers: every file still downloads byte-identical.
    net.stop_workers(0..4).await;
    for (id, data) in [(&ids[0], &noise), (&ids[1], &text)] {
        let o = disktro(&cfg, None, &["download", id, "-o", "-"], None).await;
        ok(&o, "download with 4 workers stopped");
        assert!(o.stdout == *data, "a download with 4 workers stopped differs");
    }

    // Remove: gone from the list; its id is then "not found".
    let o = disktro(&cfg, None, &["rm", &ids[0]], None).await;
    ok(&o, "rm");
    let o = disktro(&cfg, None, &["download", &ids[0], "-o", "-"], None).await;
    fails(&o, 3, "a removed file");

    // API tokens: this machine's is listed (never its secret) with its expiry; revoked by id,
    // it stops working, and the CLI says to log in again.
    let o = disktro(&cfg, None, &["tokens", "--json"], None).await;
    ok(&o, "tokens");
    let tokens: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["current"], true);
    assert!(!o.stdout.windows(4).any(|w| w == b"dkt_"), "no secret listed");
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    let o = disktro(&cfg, None, &["tokens"], None).await;
    assert!(
        stdout(&o).contains(&id) && stdout(&o).contains("(this machine)"),
        "{}",
        stdout(&o)
    );
    let o = disktro(&cfg, None, &["tokens", "rm", "0000000000000000"], None).await;
    fails(&o, 3, "revoking a token that is not there");
    let o = disktro(&cfg, None, &["tokens", "rm", &id], None).await;
    ok(&o, "tokens rm");
    let o = disktro(&cfg, None, &["ls"], None).await;
    fails(&o, 4, "ls with a revoked token");
    assert!(stderr(&o).contains("log in again"), "{}", stderr(&o));
    let o = disktro(&cfg, None, &["logout"], None).await;
    ok(&o, "logout");
    let o = disktro(&cfg, None, &["ls"], None).await;
    fails(&o, 4, "ls after logout");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_one_line_a_distinct_code_and_no_partial_file() {
    let mut net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bob");
    let url = net.url.clone();
    let o = disktro(
        &cfg,
        Some(&url),
        &["signup", "--email", "bob@example.org", "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "signup");

    // Tried: each input below. Must hold: the exit code named, one line on stderr.
    let o = disktro(
        &cfg,
        None,
        &["upload", work.path().join("missing.bin").to_str().unwrap()],
        None,
    )
    .await;
    fails(&o, 9, "a missing file");
    // A directory is uploaded as a folder (`folders_are_made_listed_moved_downloaded_and_removed`);
    // a device is neither.
    let o = disktro(&cfg, None, &["upload", "/dev/null"], None).await;
    fails(&o, 9, "a device");
    let o = disktro(
        &home.path().join("nobody"),
        Some(&url),
        &["login", "--email", "bob@example.org", "--password-stdin"],
        Some(b"wrong password\n".to_vec()),
    )
    .await;
    fails(&o, 4, "a wrong password");
    let o = disktro(&home.path().join("nobody"), None, &["ls"], None).await;
    fails(&o, 4, "not logged in");
    let o = disktro(
        &cfg,
        None,
        &["download", "00000000000000000000000000000000", "-o", "-"],
        None,
    )
    .await;
    fails(&o, 3, "an unknown file id");
    for bad in [
        format!("{url}/s/short#key"),
        "not a link".to_owned(),
        format!("{url}/s/AAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let o = disktro(&cfg, None, &["get", &bad, "-o", "-"], None).await;
        fails(&o, 2, "a malformed link");
    }
    let o = disktro(
        &home.path().join("x"),
        Some("http://127.0.0.1:1"),
        &["login", "--email", "a@b.cd", "--password-stdin"],
        Some(b"pw\n".to_vec()),
    )
    .await;
    fails(&o, 6, "the server down");

    // An expired link.
    let data = random(200_000, 3);
    std::fs::write(work.path().join("data.bin"), &data).unwrap();
    let o = disktro(
        &cfg,
        None,
        &["upload", work.path().join("data.bin").to_str().unwrap()],
        None,
    )
    .await;
    ok(&o, "upload");
    let id = stdout(&o);
    let o = disktro(&cfg, None, &["share", &id, "--expires", "1s"], None).await;
    ok(&o, "share");
    let link = stdout(&o);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let o = disktro(&cfg, None, &["get", &link, "-o", "-"], None).await;
    fails(&o, 10, "an expired link");
    // A wrong key in a well-formed link: the metadata does not open.
    let o = disktro(&cfg, None, &["share", &id], None).await;
    let good = stdout(&o);
    let (base, _) = good.split_once('#').unwrap();
    let wrong = format!(
        "{base}#{}",
        disktro_core::keys::encode_link_key(&disktro_core::FileKey::generate())
    );
    let o = disktro(&cfg, None, &["get", &wrong, "-o", "-"], None).await;
    fails(&o, 8, "a wrong key");
    // A download whose output cannot be written (stdout is /dev/full, where every write fails
    // with "no space"). Must hold: the write error, exit code 9, not a success.
    let o = {
        let mut cmd = Command::new(BIN);
        cmd.env("DISKTRO_CONFIG_DIR", &cfg)
            .env_remove("DISKTRO_SERVER")
            .args(["download", &id, "-o", "-"])
            .stdin(Stdio::null())
            .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
            .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    fails(&o, 9, "a full disk");
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));

    // All workers down: the download fails and leaves nothing in the output directory.
    net.stop_workers(0..10).await;
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let o = disktro(
        &cfg,
        None,
        &["download", &id, "-o", out_dir.join("data.bin").to_str().unwrap()],
        None,
    )
    .await;
    fails(&o, 7, "all workers down");
    assert!(
        files_in(&out_dir).is_empty(),
        "a partial file was left: {:?}",
        files_in(&out_dir)
    );
    let o = disktro(
        &cfg,
        None,
        &["upload", work.path().join("data.bin").to_str().unwrap()],
        None,
    )
    .await;
    fails(&o, 7, "upload with all workers down");
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_verify_accepts_a_sound_chain_and_refuses_a_changed_one() {
    use disktro_server::rewards::{Entry, GENESIS};
    let net = Network::start(1).await;
    let home = tempfile::tempdir().unwrap();
    let o = disktro(home.path(), Some(&net.url), &["ledger", "verify"], None).await;
    ok(&o, "verify an empty ledger");
    assert!(String::from_utf8_lossy(&o.stdout).contains("ledger verified: 0 entries"));

    // One sound entry, then the same entry with its amount changed in the database.
    let mut entry = Entry {
        seq: 1,
        node_id: "00".repeat(32),
        kind: "egress".to_owned(),
        period_start: 1000,
        period_end: 4600,
        quantity: 5000,
        amount: 10_000,
        reference: "11".repeat(16),
        created_at: 5000,
        prev_hash: GENESIS.to_owned(),
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    let mut conn = net.ctx.db.pool.acquire().await.unwrap();
    disktro_server::rewards::insert(&mut conn, &entry).await.unwrap();
    drop(conn);
    let o = disktro(home.path(), Some(&net.url), &["--json", "ledger", "verify"], None).await;
    ok(&o, "verify one entry");
    let check: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (check["valid"].as_bool(), check["entries"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(check["head"], entry.hash);

    // Tried: the amount raised in the database. Must hold: the integrity exit code and one line
    // naming the entry.
    sqlx::query("UPDATE ledger SET amount = amount * 2")
        .execute(&net.ctx.db.pool)
        .await
        .unwrap();
    let o = disktro(home.path(), Some(&net.url), &["ledger", "verify"], None).await;
    fails(&o, i32::from(disktro_client::exit::INTEGRITY), "a changed entry");
    assert!(stderr(&o).contains("entry 1"), "{}", stderr(&o));
}

/// Open a WebSocket to the worker at `url` (`ws://host:port`) from the loopback address `source`
/// and never send a request: a socket without a token, as an attacker would hold it.
async fn silent_socket(url: &str, source: std::net::IpAddr) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
    let mut tcp = socket.connect(addr).await.ok()?;
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: worker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .ok()?;
    let mut response = [0u8; 12];
    tcp.read_exact(&mut response).await.ok()?;
    Some(tcp)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_goes_through_while_every_worker_is_full_of_sockets_without_tokens() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("eve");
    let o = disktro(
        &cfg,
        Some(&net.url),
        &["signup", "--email", "eve@example.org", "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "signup");

    // Tried: 256 WebSockets (each worker's connection limit) that never send a token, opened to
    // every worker from 16 other addresses and held. Must hold: `disktro upload` of 20 MiB
    // succeeds at once and the file downloads byte-identical (before, every upload on the
    // network failed with exit 7 while the sockets were held).
    let nodes: Vec<serde_json::Value> = reqwest::get(format!("{}/api/v1/nodes", net.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = random(20 << 20, 7);
    let path = work.path().join("under-attack.bin");
    std::fs::write(&path, &data).unwrap();
    // All at once, so that they are all held when the upload starts (a stranger is closed
    // after 5 s).
    let mut opening = tokio::task::JoinSet::new();
    for node in &nodes {
        for i in 0..256u32 {
            let url = node["url"].as_str().unwrap().to_owned();
            let source = std::net::IpAddr::from([127, 0, 1, u8::try_from(1 + i % 16).unwrap()]);
            opening.spawn(async move { silent_socket(&url, source).await });
        }
    }
    let mut held = Vec::new();
    while let Some(socket) = opening.join_next().await {
        held.extend(socket.unwrap());
    }
    assert!(held.len() >= 2000, "only {} sockets opened", held.len());
    let o = disktro(&cfg, None, &["upload", path.to_str().unwrap()], None).await;
    ok(&o, "upload while every worker is full of sockets without tokens");
    let id = stdout(&o).split_whitespace().next().unwrap().to_owned();
    let o = disktro(&cfg, None, &["download", &id, "-o", "-"], None).await;
    ok(&o, "download");
    assert!(o.stdout == data, "the file differs");
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_password_is_replaced_with_the_recovery_key() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (ada, laptop, new_machine) = (
        home.path().join("ada"),
        home.path().join("laptop"),
        home.path().join("new"),
    );
    let url = net.url.clone();
    let key_file = work.path().join("recovery.txt");

    // Sign-up shows the recovery key and writes it where asked.
    let o = disktro(
        &ada,
        Some(&url),
        &[
            "signup",
            "--email",
            "ada@example.org",
            "--password-stdin",
            "--recovery-key-file",
            key_file.to_str().unwrap(),
        ],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "signup");
    let key = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    assert!(key.starts_with("DKRK-") && stdout(&o).contains(&key), "{}", stdout(&o));
    let data = random(300_000, 7);
    std::fs::write(work.path().join("kept.bin"), &data).unwrap();
    let o = disktro(
        &ada,
        None,
        &["upload", work.path().join("kept.bin").to_str().unwrap()],
        None,
    )
    .await;
    ok(&o, "upload");
    let id = stdout(&o);
    let o = disktro(
        &laptop,
        Some(&url),
        &["login", "--email", "ada@example.org", "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    ok(&o, "login on a second machine");

    // Tried: a mistyped key, then a well-formed key that is not the account's. Must hold: one
    // clear line each, a usage error for the typo, refused by the server for the stranger.
    let mut typo = key.clone();
    typo.replace_range(6..7, if &key[6..7] == "A" { "B" } else { "A" });
    for (bad, code) in [
        (typo, 2),
        (disktro_core::recovery::RecoveryKey::generate().to_text(), 4),
    ] {
        let o = disktro_env(
            &new_machine,
            Some(&url),
            &["recover", "--email", "ada@example.org", "--password-stdin"],
            &[("DISKTRO_RECOVERY_KEY", &bad)],
            Some(b"a new and longer password\n".to_vec()),
        )
        .await;
        fails(&o, code, "recover with a bad key");
    }

    // Tried: the password is forgotten; a new machine recovers with the key file. Must hold: the
    // file downloads byte-identical, the new password logs in, the old one does not, and the
    // other machine's log-in has ended.
    let o = disktro(
        &new_machine,
        Some(&url),
        &[
            "recover",
            "--email",
            "ada@example.org",
            "--recovery-key-file",
            key_file.to_str().unwrap(),
            "--password-stdin",
        ],
        Some(b"a new and longer password\n".to_vec()),
    )
    .await;
    ok(&o, "recover");
    let out = work.path().join("kept.out");
    let o = disktro(
        &new_machine,
        None,
        &["download", &id, "-o", out.to_str().unwrap()],
        None,
    )
    .await;
    ok(&o, "download after recovery");
    assert!(std::fs::read(&out).unwrap() == data, "the file changed");
    let o = disktro(&laptop, None, &["ls"], None).await;
    fails(&o, 4, "the other machine after recovery");
    let o = disktro(
        &laptop,
        Some(&url),
        &["login", "--email", "ada@example.org", "--password-stdin"],
        Some(format!("{PASSWORD}\n").into_bytes()),
    )
    .await;
    fails(&o, 4, "the old password");
    let o = disktro(
        &laptop,
        Some(&url),
        &["login", "--email", "ada@example.org", "--password-stdin"],
        Some(b"a new and longer password\n".to_vec()),
    )
    .await;
    ok(&o, "the new password");
    // The key still works after use, and a new one replaces it.
    let o = disktro(
        &laptop,
        None,
        &["recovery-key", "--password-stdin"],
        Some(b"a new and longer password\n".to_vec()),
    )
    .await;
    ok(&o, "a new recovery key");
    assert!(stdout(&o).contains("DKRK-") && !stdout(&o).contains(&key));
    let o = disktro_env(
        &new_machine,
        Some(&url),
        &["recover", "--email", "ada@example.org", "--password-stdin"],
        &[("DISKTRO_RECOVERY_KEY", &key)],
        Some(b"yet another long password\n".to_vec()),
    )
    .await;
    fails(&o, 4, "the replaced recovery key");
}

/// Tried: `disktro get` of a one-download link killed (SIGKILL) as soon as its download began;
/// another recipient asking meanwhile; the same `disktro get` run again; the other recipient
/// asking after it.
/// Must hold: the killed run leaves no output file; the other recipient is refused while the
/// killed download holds the link (exit 10, saying a download is under way); the re-run
/// continues that download and saves the file byte-identical, leaving no note behind; after it
/// the link is used up.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_get_continues_as_the_same_download_when_run_again() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let data = random(48 << 20, 5);
    let source = work.path().join("film.bin");
    std::fs::write(&source, &data).unwrap();
    let o = disktro(&cfg, None, &["upload", source.to_str().unwrap()], None).await;
    ok(&o, "upload");
    let id = stdout(&o);
    let o = disktro(&cfg, None, &["share", &id, "--max-downloads", "1"], None).await;
    ok(&o, "share");
    let link = stdout(&o);

    let stranger = home.path().join("stranger");
    let notes = stranger.join("share-downloads");
    let got = work.path().join("got.bin");
    let child = Command::new(BIN)
        .env("DISKTRO_CONFIG_DIR", &stranger)
        .env_remove("DISKTRO_SERVER")
        .args(["get", &link, "-o", got.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A note is published by renaming `<name>.tmp` to `<name>`: the download has begun when a
    // note without the suffix is there.
    let noted = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| !e.file_name().to_string_lossy().ends_with(".tmp")))
    };
    let watched = notes.clone();
    let killed = kill_when(
        child,
        move || noted(&watched),
        Duration::from_secs(60),
        "the get's beginning",
    )
    .await;
    assert!(killed, "the get finished before it could be killed");
    assert!(!got.exists(), "a killed get left its output");

    let other = home.path().join("other");
    let o = disktro(&other, None, &["get", &link, "-o", "-"], None).await;
    fails(&o, 10, "a link whose one download is under way");
    assert!(stderr(&o).contains("under way"), "{}", stderr(&o));

    let o = disktro(&stranger, None, &["get", &link, "-o", got.to_str().unwrap()], None).await;
    ok(&o, "the same get again");
    assert!(std::fs::read(&got).unwrap() == data, "the continued get differs");
    assert!(!noted(&notes), "a finished get left its note");
    let o = disktro(&other, None, &["get", &link, "-o", "-"], None).await;
    fails(&o, 10, "a used-up link");
    assert!(stderr(&o).contains("download limit"), "{}", stderr(&o));
}

/// Run `disktro` with stdout read slowly (1 MiB every 125 ms, 8 MiB/s) by the test: the download
/// can go no faster than its reader. Returns the exit status and every byte read.
async fn disktro_read_slowly(config: &Path, args: &[&str]) -> (std::process::ExitStatus, Vec<u8>, String) {
    use std::io::Read as _;
    let mut child = Command::new(BIN)
        .env("DISKTRO_CONFIG_DIR", config)
        .env_remove("DISKTRO_SERVER")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let mut got = Vec::new();
        let mut step = vec![0u8; 1 << 20];
        loop {
            let mut filled = 0;
            while filled < step.len() {
                match out.read(&mut step[filled..]).unwrap() {
                    0 => break,
                    n => filled += n,
                }
            }
            got.extend_from_slice(&step[..filled]);
            if filled < step.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(125));
        }
        (child.wait().unwrap(), got, errors.join().unwrap())
    })
    .await
    .unwrap()
}

/// Tried: get tokens that last 2 s; `disktro download` of a 40 MiB file into a pipe read at
/// 8 MiB/s (about 5 s, so the tokens expire twice over), and `disktro get` of a one-download link
/// to it the same way.
/// Must hold: both finish byte-identical, renewing their tokens (the server is asked again; a
/// share download is continued as the same download, so the link is then used up, once).
#[tokio::test(flavor = "multi_thread")]
async fn a_download_that_outlasts_its_tokens_renews_them() {
    let net = Network::start_with_token_ttl(10, Duration::from_secs(2)).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let data = random(40 << 20, 6);
    let source = work.path().join("slow.bin");
    std::fs::write(&source, &data).unwrap();
    let o = disktro(&cfg, None, &["upload", source.to_str().unwrap()], None).await;
    ok(&o, "upload");
    let id = stdout(&o);

    let started = Instant::now();
    let (status, got, errors) = disktro_read_slowly(&cfg, &["download", &id, "-o", "-"]).await;
    assert!(status.success(), "a slow download failed: {errors}");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the reader did not slow the download"
    );
    assert!(got == data, "the slow download differs");

    let o = disktro(&cfg, None, &["share", &id, "--max-downloads", "1"], None).await;
    ok(&o, "share");
    let link = stdout(&o);
    let stranger = home.path().join("stranger");
    let (status, got, errors) = disktro_read_slowly(&stranger, &["get", &link, "-o", "-"]).await;
    assert!(status.success(), "a slow get failed: {errors}");
    assert!(got == data, "the slow get differs");
    let o = disktro(&home.path().join("other"), None, &["get", &link, "-o", "-"], None).await;
    fails(&o, 10, "a used-up link");
}

/// Tried: a 40 MiB download read at 8 MiB/s (about 5 s); a second into it, 5 of the 10 workers
/// are restarted on the same addresses and data, so their connections to the CLI end.
/// Must hold: the download finishes byte-identical. The chunks after the restart need 6 shards
/// and only 5 connections are left: the CLI must connect to the restarted workers again (before,
/// a connection that ended was lost for the rest of the download, and it failed).
#[tokio::test(flavor = "multi_thread")]
async fn a_download_connects_again_to_workers_restarted_under_it() {
    let mut net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let data = random(40 << 20, 9);
    let source = work.path().join("restarts.bin");
    std::fs::write(&source, &data).unwrap();
    let o = disktro(&cfg, None, &["upload", source.to_str().unwrap()], None).await;
    ok(&o, "upload");
    let id = stdout(&o);

    let reading = {
        let cfg = cfg.clone();
        tokio::spawn(async move { disktro_read_slowly(&cfg, &["download", &id, "-o", "-"]).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    net.restart_workers(0..5).await;
    let (status, got, errors) = reading.await.unwrap();
    assert!(status.success(), "the download failed: {errors}");
    assert!(got == data, "the download differs");
}

/// Tried: `disktro upload` of a 256 MiB file (64 chunks) killed (SIGKILL) once half of its
/// shards' receipts are noted; the same command run again.
/// Must hold: the second run continues the noted upload rather than beginning another: it
/// commits, the file downloads byte-identical and is listed once; the workers received in the
/// second run no more than the chunks that lacked receipts, and over both runs no more than the
/// file's shards plus the chunks in flight at the kill and one more (3 chunks); no note is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_upload_continues_where_it_stopped_when_run_again() {
    const CHUNKS: usize = 64;
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let data = random(CHUNKS * (4 << 20), 9);
    let source = work.path().join("archive.bin");
    std::fs::write(&source, &data).unwrap();
    let before = net.ingress().await;

    let notes = cfg.join("uploads");
    let receipts_noted = move || -> usize {
        std::fs::read_dir(&notes)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
            .map_or(0, |e| {
                std::fs::read_to_string(e.path()).map_or(0, |t| t.lines().count().saturating_sub(1))
            })
    };
    let child = Command::new(BIN)
        .env("DISKTRO_CONFIG_DIR", &cfg)
        .env_remove("DISKTRO_SERVER")
        .args(["upload", source.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let counting = receipts_noted.clone();
    let half = (CHUNKS / 2) * 10;
    let killed = kill_when(
        child,
        move || counting() >= half,
        Duration::from_secs(120),
        "half the upload",
    )
    .await;
    assert!(killed, "the upload finished before it could be killed");
    let first = net.ingress().await - before;
    let noted = receipts_noted();
    assert!(noted < CHUNKS * 10, "everything was stored before the kill");

    let o = disktro(&cfg, None, &["upload", source.to_str().unwrap()], None).await;
    ok(&o, "the same upload again");
    let id = stdout(&o);
    let second = net.ingress().await - before - first;
    assert_eq!(receipts_noted(), 0, "a committed upload left its note");

    let o = disktro(&cfg, None, &["ls", "--json"], None).await;
    ok(&o, "ls");
    let files: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(files["files"].as_array().map(Vec::len), Some(1), "{files}");
    let got = work.path().join("got.bin");
    let o = disktro(&cfg, None, &["download", &id, "-o", got.to_str().unwrap()], None).await;
    ok(&o, "download");
    assert!(std::fs::read(&got).unwrap() == data, "the continued upload differs");

    // A chunk's shards as stored: 10 of a sealed 4 MiB chunk (plus its header and tag) over 6.
    let per_shard = disktro_core::Redundancy::DEFAULT.shard_len((4 << 20) + 9 + 16) as u64;
    let missing_shards = (CHUNKS * 10 - noted) as u64;
    let slack = 64 << 10;
    eprintln!(
        "first run {first} B, second {second} B, {noted} of {} receipts noted at the kill",
        CHUNKS * 10
    );
    assert!(
        second <= missing_shards * per_shard + slack,
        "the second run sent {second} B for {missing_shards} missing shards of {per_shard} B"
    );
    assert!(
        first + second <= (CHUNKS as u64 + 3) * 10 * per_shard + slack,
        "both runs sent {} B for {CHUNKS} chunks",
        first + second
    );
}

/// Tried: a network served over TLS end to end, as a private deployment would run it: the
/// server's HTTPS (`disktro_server::https::TlsListener`) and 10 workers' `wss://`, all with one
/// certificate for `localhost`/`127.0.0.1` from a CA of the test's own, the workers told to trust
/// it for their heartbeats (`ca_cert`, as `--ca-cert`); `disktro` run without and with
/// `--ca-cert`, and with `DISKTRO_CA_CERT`.
/// Must hold: the workers advertise `wss://` and come online over HTTPS; without the CA the CLI
/// refuses the server's certificate (exit 6, saying so); with it, sign-up, a 10 MiB upload over
/// `wss://` and its download work and the bytes are the same; the environment variable does as
/// the flag.
#[tokio::test(flavor = "multi_thread")]
async fn a_network_served_over_tls_is_trusted_with_its_own_ca() {
    disktro_net::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let files = disktro_net::tls::TlsFiles {
        cert: cert_path.clone(),
        key: key_path.clone(),
    };

    let interval = Duration::from_secs(1);
    let mut ctx = disktro_server::Context::open(
        dir.path(),
        &disktro_server::db::sqlite_url(dir.path()),
        Some("join".to_owned()),
        interval,
    )
    .await
    .unwrap();
    ctx.secure_cookies = true;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let ctx = Arc::new(ctx);
    let app = disktro_server::app(disktro_server::site_options("target/site", addr), Arc::clone(&ctx));
    let listener = axum::serve::ListenerExt::tap_io(
        disktro_server::https::TlsListener::new(tcp, disktro_net::tls::acceptor(&files).unwrap()).unwrap(),
        |_| {},
    );
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
    let url = format!("https://localhost:{}", addr.port());
    let mut workers = Vec::new();
    for n in 0..10 {
        let mut config = disktro_worker::config::WorkerConfig::new(dir.path().join(format!("w{n}")));
        config.capacity = 1 << 30;
        config.server = Some(url.clone());
        config.join_token = Some("join".to_owned());
        config.heartbeat_interval = interval;
        config.tls = Some(files.clone());
        config.ca_cert = Some(cert_path.clone());
        let w = disktro_worker::start(config).await.unwrap();
        assert!(w.url.starts_with("wss://"), "{}", w.url);
        workers.push(w);
    }
    let trusting = reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes: Vec<serde_json::Value> = trusting
            .get(format!("{url}/api/v1/nodes"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if nodes.iter().filter(|n| n["status"] == "online").count() == 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the workers did not come online over HTTPS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("tls");
    let signup = ["signup", "--email", "tls@example.org", "--password-stdin"];
    let stdin = || Some(format!("{PASSWORD}\n").into_bytes());
    let o = disktro(&cfg, Some(&url), &signup, stdin()).await;
    fails(&o, 6, "a server whose certificate is not trusted");
    let told = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(told.contains("certificate"), "{told}");

    let ca = cert_path.to_str().unwrap();
    let mut with_ca = vec!["--ca-cert", ca];
    with_ca.extend_from_slice(&signup);
    let o = disktro(&cfg, Some(&url), &with_ca, stdin()).await;
    ok(&o, "signup trusting the CA");
    let data = random(10 << 20, 21);
    let source = home.path().join("secret.bin");
    std::fs::write(&source, &data).unwrap();
    let o = disktro(&cfg, None, &["--ca-cert", ca, "upload", source.to_str().unwrap()], None).await;
    ok(&o, "upload over wss://");
    let id = stdout(&o);
    let got = home.path().join("got.bin");
    let o = disktro_env(
        &cfg,
        None,
        &["download", &id, "-o", got.to_str().unwrap()],
        &[("DISKTRO_CA_CERT", ca)],
        None,
    )
    .await;
    ok(&o, "download trusting the CA through DISKTRO_CA_CERT");
    assert!(std::fs::read(&got).unwrap() == data, "the download differs");
    disktro_server::local_workers::stop(workers).await;
    shutdown.cancel();
}

/// Process `pid`'s environment (NUL-separated), once it names `name`, within 10 s.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_once_set(pid: u32, name: &str) -> Option<String> {
    let wanted = format!("{name}=");
    for _ in 0..200 {
        if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
            let environ = String::from_utf8_lossy(&environ).into_owned();
            if environ.contains(&wanted) {
                return Some(environ);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_cli_runs_with_its_allocator_settings_unless_the_user_set_their_own() {
    // Tried: `disktro signup --password-stdin` (it waits on stdin, so the running process can be
    // looked at) started without GLIBC_TUNABLES, then with a user's own.
    // Must hold: the process runs with the CLI's allocator settings (it started itself again
    // with them, same pid, same stdin: it still reads the password afterwards), and a user's own
    // setting is kept as given.
    for (given, expected) in [
        (
            None,
            "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=33554432",
        ),
        (Some("glibc.malloc.arena_max=2"), "glibc.malloc.arena_max=2"),
    ] {
        let config = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .args([
                "--server",
                "http://127.0.0.1:9",
                "signup",
                "--email",
                "a@example.org",
                "--password-stdin",
            ])
            .env("DISKTRO_CONFIG_DIR", config.path())
            .env_remove("GLIBC_TUNABLES")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(given) = given {
            command.env("GLIBC_TUNABLES", given);
        }
        let mut child = command.spawn().unwrap();
        let environ = environment_once_set(child.id(), "GLIBC_TUNABLES");
        // The password goes to the process as it runs now: it reads it and fails to reach the
        // server (nothing listens on port 9), with the network error's code.
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"a password\n").unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        // glibc splits the variable in place as it reads it (each setting ends in a NUL).
        let environ = environ.unwrap_or_else(|| panic!("given {given:?}: no GLIBC_TUNABLES"));
        let mut settings = expected.split(':');
        let first = format!("GLIBC_TUNABLES={}", settings.next().unwrap());
        let listed: Vec<&str> = environ.split('\0').collect();
        assert!(listed.contains(&first.as_str()), "given {given:?}: {listed:?}");
        for setting in settings {
            assert!(
                listed.contains(&setting),
                "given {given:?}: {setting} not in {listed:?}"
            );
        }
        if given.is_some() {
            assert!(
                !environ.contains("trim_threshold"),
                "the user's own settings, alone: {listed:?}"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("disktro:") && !out.status.success(), "{stderr}");
    }
}

/// A file uploaded while the network had 7 workers (4 + 3) is below the policy once it has 15
/// (9 + 6): `disktro ls` says so and names the command, `disktro restripe` re-encodes it (worker
/// ingress: the new stripe's bytes once, within 5%), and it downloads byte-identical. Run again, the
/// command has nothing to do; `--json` reports each file's old and new (k, m).
#[tokio::test(flavor = "multi_thread")]
async fn restripe_brings_a_file_from_a_small_network_up_to_the_policy() {
    let mut net = Network::start(7).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let data = random((9 << 20) + 77, 9);
    let path = work.path().join("early.bin");
    std::fs::write(&path, &data).unwrap();
    let o = disktro(&cfg, None, &["upload", path.to_str().unwrap()], None).await;
    ok(&o, "upload on 7 workers");
    let id = stdout(&o);
    let o = disktro(&cfg, None, &["ls"], None).await;
    ok(&o, "ls");
    assert!(stdout(&o).contains("7/7"), "stored 4 + 3: {}", stdout(&o));
    assert!(
        !stderr(&o).contains("restripe"),
        "at the policy of 7 workers: {}",
        stderr(&o)
    );

    for i in 7..15 {
        let w = disktro_server::local_workers::start_one(
            i,
            net._dir.path(),
            &net.url,
            "join",
            1 << 30,
            Duration::from_secs(1),
            None,
        )
        .await
        .unwrap();
        net.workers.push(Some(w));
    }
    net.wait_online(15).await;
    let o = disktro(&cfg, None, &["ls"], None).await;
    ok(&o, "ls on 15 workers");
    assert!(stderr(&o).contains("`disktro restripe`"), "{}", stderr(&o));
    let o = disktro(&cfg, None, &["--json", "ls"], None).await;
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list["files"][0]["below_policy"], true, "{list}");

    let before = net.ingress().await;
    let o = disktro(&cfg, None, &["--json", "restripe"], None).await;
    ok(&o, "restripe");
    let done: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(done["restriped"][0]["file_id"], id.as_str(), "{done}");
    assert_eq!(done["restriped"][0]["from"], serde_json::json!([4, 3]), "{done}");
    assert_eq!(done["restriped"][0]["to"], serde_json::json!([9, 6]), "{done}");
    let sent = net.ingress().await - before;
    let stored = done["restriped"][0]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored >= data.len() as u64 * 15 / 9 && (stored..=stored + stored / 20).contains(&sent),
        "the workers took {sent} bytes for a stripe of {stored}"
    );

    let out = work.path().join("early.out");
    let o = disktro(&cfg, None, &["download", &id, "-o", out.to_str().unwrap()], None).await;
    ok(&o, "download after the restripe");
    assert!(std::fs::read(&out).unwrap() == data, "the restriped file differs");
    let o = disktro(&cfg, None, &["ls"], None).await;
    assert!(
        stdout(&o).contains("15/15") && !stderr(&o).contains("restripe"),
        "{}",
        stdout(&o)
    );
    let o = disktro(&cfg, None, &["restripe"], None).await;
    ok(&o, "restripe with nothing to do");
    assert!(
        stdout(&o).contains("every file is at the network's redundancy policy"),
        "{}",
        stdout(&o)
    );
    // Tried: naming the file. Must hold: the server's refusal, with the API error's exit code.
    let o = disktro(&cfg, None, &["restripe", &id], None).await;
    fails(&o, 2, "restripe of a file at the policy");
    assert!(stderr(&o).contains("at_policy"), "{}", stderr(&o));
}

/// Folders from the command line. Tried: a local folder with a subfolder, an empty file and a
/// file of 5 MiB + 1 uploaded with `--to`; `ls` of folders; `mkdir -p`; `mv` of a file into a
/// folder and of a folder to a new name elsewhere; `download` of a folder; `rm` of a folder that
/// is not empty, then `rm -r`; `ls` of what is gone. Must hold: the tree lists as it was made and
/// moved, the folder downloads as a tree of byte-identical files, the refusals have their exit
/// codes (2: not empty, 3: not found).
#[tokio::test(flavor = "multi_thread")]
async fn folders_are_made_listed_moved_downloaded_and_removed() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cfg = home.path().join("ada");
    sign_up(&net, &cfg, "ada@example.org").await;
    let album = work.path().join("album");
    std::fs::create_dir_all(album.join("sub")).unwrap();
    let big = random((5 << 20) + 1, 4);
    std::fs::write(album.join("a.txt"), b"hello folders\n").unwrap();
    std::fs::write(album.join("empty.txt"), b"").unwrap();
    std::fs::write(album.join("sub").join("b.bin"), &big).unwrap();

    let o = disktro(
        &cfg,
        None,
        &["upload", album.to_str().unwrap(), "--to", "/backup"],
        None,
    )
    .await;
    ok(&o, "upload of a folder");
    assert_eq!(stdout(&o).lines().count(), 3, "one id per file: {}", stdout(&o));
    let o = disktro(&cfg, None, &["--json", "ls", "/backup/album"], None).await;
    ok(&o, "ls /backup/album");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = listed[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("folders"), ["sub"], "{listed}");
    assert_eq!(names("files"), ["a.txt", "empty.txt"], "{listed}");
    assert_eq!(listed["path"], "/backup/album");
    let o = disktro(&cfg, None, &["ls"], None).await;
    assert!(
        stdout(&o).contains("backup/"),
        "the top lists the folder: {}",
        stdout(&o)
    );

    ok(&disktro(&cfg, None, &["mkdir", "-p", "/x/y"], None).await, "mkdir -p");
    fails(
        &disktro(&cfg, None, &["mkdir", "/x/y"], None).await,
        2,
        "mkdir of a folder that exists",
    );
    fails(
        &disktro(&cfg, None, &["mkdir", "/nowhere/z"], None).await,
        3,
        "mkdir under a missing folder",
    );
    ok(
        &disktro(&cfg, None, &["mv", "/backup/album/a.txt", "/x/y"], None).await,
        "mv a file into a folder",
    );
    ok(
        &disktro(&cfg, None, &["mv", "/backup/album/sub", "/x/renamed"], None).await,
        "mv a folder to a new name",
    );
    // Tried: a folder into its own subfolder. Must hold: refused, nothing moved.
    fails(
        &disktro(&cfg, None, &["mv", "/x", "/x/y"], None).await,
        2,
        "mv of a folder below itself",
    );
    let o = disktro(&cfg, None, &["--json", "ls", "/x/renamed"], None).await;
    ok(&o, "ls /x/renamed");
    assert!(stdout(&o).contains("\"b.bin\""), "{}", stdout(&o));

    let out = work.path().join("x-copy");
    ok(
        &disktro(&cfg, None, &["download", "/x", "-o", out.to_str().unwrap()], None).await,
        "download of a folder",
    );
    assert_eq!(std::fs::read(out.join("y").join("a.txt")).unwrap(), b"hello folders\n");
    assert!(
        std::fs::read(out.join("renamed").join("b.bin")).unwrap() == big,
        "b.bin differs"
    );

    let o = disktro(&cfg, None, &["rm", "/backup"], None).await;
    fails(&o, 2, "rm of a folder that is not empty");
    assert!(stderr(&o).contains("rm -r"), "{}", stderr(&o));
    let o = disktro(&cfg, None, &["--json", "rm", "-r", "/backup"], None).await;
    ok(&o, "rm -r");
    let removed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (removed["folders"].as_u64(), removed["files"].as_u64()),
        (Some(2), Some(1)),
        "{removed}"
    );
    fails(
        &disktro(&cfg, None, &["ls", "/backup"], None).await,
        3,
        "ls of a removed folder",
    );
}
