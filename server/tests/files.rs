//! Files and shares through a real server process with 10 local workers, on SQLite and
//! PostgreSQL: uploads by the client library (the CLI's), commits with every kind of bad input,
//! reads, deletes, share links and their policies, and another account's objects.

#![allow(clippy::cast_possible_truncation)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use disktro_client::account::{self, Identity};
use disktro_client::server::Server as Api;
use disktro_client::upload::{UploadOptions, upload};
use disktro_client::{ClientError, download};
use disktro_core::api::Base64;
use disktro_core::api::{BeginUpload, Commit, NewShare, Replan, Resize, ShareAccess, UploadPlan};
use disktro_core::keys::{FileKey, KdfParams, Keypair, share_password_proof};
use disktro_core::metadata::FileMetadata;
use disktro_core::padding;
use disktro_core::token::Receipt;
use disktro_core::{FileId, Redundancy};
use disktro_net::client::{ConnectOptions, WorkerClient};
use serde_json::{Value, json};
use sqlx::Row as _;
use support::{Server, databases, wait_online};

const CHUNK: u32 = 64 * 1024;

/// Bytes as the API carries them.
fn b64(bytes: &[u8]) -> Base64 {
    Base64::from(bytes)
}

fn random_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = *blake3::hash(&[seed]).as_bytes();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = *blake3::hash(&block).as_bytes();
    }
    out.truncate(len);
    out
}

fn meta(name: &str, size: usize) -> FileMetadata {
    FileMetadata {
        name: name.to_owned(),
        mime: "application/octet-stream".to_owned(),
        size: size as u64,
        attributes: Vec::new(),
    }
}

fn small_chunks() -> UploadOptions {
    UploadOptions {
        chunk_size: Some(CHUNK),
        ..UploadOptions::default()
    }
}

async fn put_file(api: &Api, me: &Identity, data: &[u8], name: &str) -> (String, FileKey) {
    let up = upload(
        api,
        me,
        std::io::Cursor::new(data.to_vec()),
        data.len() as u64,
        &meta(name, data.len()),
        &small_chunks(),
        &|_| {},
    )
    .await
    .unwrap_or_else(|e| panic!("upload of {name}: {e}"));
    (up.summary.file_id.to_hex(), up.file_key)
}

async fn get_file(api: &Api, me: &Identity, file_id: &str) -> (Vec<u8>, FileMetadata) {
    let answer = api.file(file_id).await.unwrap();
    let key = me.file_key(&answer.file_id, answer.wrapped_key.as_deref()).unwrap();
    let (fetched, out) = download::download(&answer, &key, Some(&me.public_key()), Vec::new(), &|_| {})
        .await
        .unwrap();
    (out, fetched.metadata)
}

/// A writer that only counts what it is given (the download takes its writer by value).
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn api_code(e: &ClientError) -> &'static str {
    e.code().unwrap_or_else(|| panic!("not an API error: {e}")).as_str()
}

async fn start_network(db: &support::TestDb, extra: &[&str]) -> (Server, Api) {
    let mut args = vec!["--local-workers", "10"];
    args.extend_from_slice(extra);
    let server = Server::start(db.dir.path(), &db.url, &args);
    assert!(
        wait_online(&server.url, 10).await,
        "{}: workers not online:\n{}",
        db.backend,
        server.log_text()
    );
    let api = Api::new(&server.url).unwrap();
    (server, api)
}

async fn person(api: &Api, email: &str) -> (Identity, Api) {
    let me = account::signup(api, email, "correct horse battery staple", KdfParams::MINIMUM, "tests")
        .await
        .unwrap();
    let authed = api.clone().with_token(&me.token);
    (me, authed)
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_list_download_share_and_delete() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (ada, api) = person(&anon, "ada@example.org").await;

        // Tried: an empty file, a small text file, a random file of 9 chunks and a bit.
        // Must hold: each downloads byte-identical with its name, and lists with full health.
        let empty: Vec<u8> = Vec::new();
        let text = b"Sing, O goddess, the anger of Achilles son of Peleus\n".repeat(40);
        let random = random_bytes(9 * CHUNK as usize + 1234, 1);
        let (empty_id, _) = put_file(&api, &ada, &empty, "empty").await;
        let (text_id, _) = put_file(&api, &ada, &text, "iliad.txt").await;
        let (random_id, random_key) = put_file(&api, &ada, &random, "noise.bin").await;
        for (id, data, name) in [
            (&empty_id, &empty, "empty"),
            (&text_id, &text, "iliad.txt"),
            (&random_id, &random, "noise.bin"),
        ] {
            let (bytes, metadata) = get_file(&api, &ada, id).await;
            assert!(bytes == *data, "{}: {name} came back different", db.backend);
            assert_eq!(metadata.name, name);
        }
        // Tried: 8 uploads at once. Must hold: all commit (SQLite's single writer queues them;
        // a transaction that reads then writes must not fail with "database is locked").
        let many: Vec<Vec<u8>> = (0..8u8).map(|i| random_bytes(2 * CHUNK as usize, 100 + i)).collect();
        let (many_meta, options) = (meta("many", 2 * CHUNK as usize), small_chunks());
        let results = futures_util::future::join_all(many.iter().map(|d| {
            upload(
                &api,
                &ada,
                std::io::Cursor::new(d.clone()),
                d.len() as u64,
                &many_meta,
                &options,
                &|_| {},
            )
        }))
        .await;
        let mut many_ids = Vec::new();
        for r in results {
            many_ids.push(
                r.unwrap_or_else(|e| panic!("{}: concurrent upload: {e}", db.backend))
                    .summary
                    .file_id,
            );
        }

        // Tried: the 11 files listed 4 at a time, a file of the first page deleted before the
        // second is asked for, then an `after` that no page gave.
        // Must hold: the pages hold every other file exactly once, newest first (ties by id, descending), a
        // deletion neither repeats nor hides a file of the later pages (as an offset would), the
        // last page has no `next`, each page's files carry their health, and a forged cursor is
        // refused with a clear error.
        let everything = api.files().await.unwrap();
        assert_eq!((everything.files.len(), everything.total), (11, 11), "{}", db.backend);
        assert!(everything.next.is_none());
        let order: Vec<(i64, String)> = everything
            .files
            .iter()
            .map(|f| (f.created_at, f.file_id.to_hex()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(order, sorted, "{}: newest first, ties by id descending", db.backend);
        let first = api.files_page(4, None).await.unwrap();
        assert_eq!(first.files.len(), 4);
        // One of the 8 (the 3 files before them are used below), not the page's last.
        let gone = first.files[..3]
            .iter()
            .map(|f| f.file_id)
            .find(|id| many_ids.contains(id))
            .expect("the newest files are of the 8")
            .to_hex();
        api.delete_file(&gone).await.unwrap();
        let mut seen: Vec<String> = first.files.iter().map(|f| f.file_id.to_hex()).collect();
        let mut next = first.next.clone();
        let mut pages = 1;
        while let Some(after) = next {
            let page = api.files_page(4, Some(&after)).await.unwrap();
            assert!(page.files.len() <= 4);
            assert!(
                page.files.iter().all(|f| f.health.weakest_chunk_healthy == 10),
                "{}",
                db.backend
            );
            seen.extend(page.files.iter().map(|f| f.file_id.to_hex()));
            next = page.next;
            pages += 1;
        }
        assert_eq!(pages, 3, "{}", db.backend);
        let expected: Vec<String> = order.into_iter().map(|(_, id)| id).collect();
        assert_eq!(seen, expected, "{}: every file once, in order", db.backend);
        let forged = api.files_page(4, Some("12.not-a-file")).await.unwrap_err();
        assert_eq!(
            (status(&forged), api_code(&forged)),
            (400, "invalid_field"),
            "{}",
            db.backend
        );

        for id in many_ids.iter().map(|id| id.to_hex()).filter(|id| *id != gone) {
            api.delete_file(&id).await.unwrap();
        }
        let list = api.files().await.unwrap();
        assert_eq!(list.total, 3);
        // Eleven files placed, eight deleted: the per-node totals and the durability status's
        // chunk count (kept per account) follow.
        let pool = db_pool(&db.url).await;
        support::assert_placed_totals_match(&pool).await;
        let health: Value = reqwest::get(format!("{}/api/v1/durability", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let chunks: u64 = list.files.iter().map(|f| f.chunk_count).sum();
        assert_eq!(health["chunks"], chunks, "{}", db.backend);
        assert_eq!(health["full"], chunks, "{}", db.backend);
        pool.close().await;
        assert!(
            list.files
                .iter()
                .all(|f| f.health.weakest_chunk_healthy == 10 && f.health.needed == 6)
        );
        let stored: u64 = list.files.iter().map(|f| f.stored_bytes).sum();
        assert_eq!(list.used_bytes, stored, "{}: quota use is the stored bytes", db.backend);
        let noise = list.files.iter().find(|f| f.file_id.to_hex() == random_id).unwrap();
        assert_eq!(noise.chunk_count, 10);
        // Text compresses: fewer stored bytes than the raw size times 10/6.
        let iliad = list.files.iter().find(|f| f.file_id.to_hex() == text_id).unwrap();
        assert!(
            iliad.stored_bytes < text.len() as u64,
            "{}: {}",
            db.backend,
            iliad.stored_bytes
        );

        // Shares: a password and two downloads.
        let proof = share_password_proof(&random_key, "open sesame");
        let share = api
            .share(
                &random_id,
                &NewShare {
                    expires_in: Some(3600),
                    max_downloads: Some(2),
                    password_proof: Some(b64(&proof)),
                },
            )
            .await
            .unwrap();
        assert!(share.password && !share.revoked);
        let no_password = anon
            .open_share(&share.share_id, &ShareAccess::default())
            .await
            .unwrap_err();
        assert_eq!(api_code(&no_password), "share_password_required");
        let wrong = ShareAccess {
            download_id: None,
            password_proof: Some(b64(&share_password_proof(&random_key, "open barley"))),
            order_key: None,
        };
        assert_eq!(
            api_code(&anon.open_share(&share.share_id, &wrong).await.unwrap_err()),
            "share_password_wrong"
        );
        let right = ShareAccess {
            download_id: None,
            password_proof: Some(b64(&proof)),
            order_key: None,
        };
        let info = anon.open_share(&share.share_id, &right).await.unwrap();
        // The server knows the size class only; the exact size is in the sealed metadata.
        let class = padding::size_class(random.len() as u64, CHUNK);
        assert_eq!((info.size, info.downloads_left), (class, Some(2)));
        for round in 0..2 {
            let answer = anon.download_share(&share.share_id, &right).await.unwrap();
            assert!(answer.wrapped_key.is_none(), "a share never hands out the wrapped key");
            let (fetched, out) = download::download(&answer, &random_key, None, Vec::new(), &|_| {})
                .await
                .unwrap();
            assert!(out == random, "{}: share download {round} differs", db.backend);
            assert_eq!(fetched.owner, ada.public_key());
        }
        let exhausted = anon.download_share(&share.share_id, &right).await.unwrap_err();
        assert_eq!((api_code(&exhausted), status(&exhausted)), ("share_exhausted", 410));
        // A wrong key in the link: the metadata does not open, nothing is written.
        let other = plain_share(&api, &random_id).await;
        let answer = anon.download_share(&other, &ShareAccess::default()).await.unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let err = download::download(
            &answer,
            &FileKey::generate(),
            None,
            Counted(Arc::clone(&written)),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::Integrity(_)), "{err}");
        assert_eq!(
            written.load(Ordering::Relaxed),
            0,
            "a download with the wrong key wrote bytes"
        );

        // Revoked and expired links say so.
        let revoked = plain_share(&api, &text_id).await;
        let view = api.revoke_share(&revoked).await.unwrap();
        assert!(view.revoked);
        let e = anon.open_share(&revoked, &ShareAccess::default()).await.unwrap_err();
        assert_eq!((api_code(&e), status(&e)), ("share_revoked", 410));
        let short = api
            .share(
                &text_id,
                &NewShare {
                    expires_in: Some(1),
                    ..NewShare::default()
                },
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let e = anon
            .download_share(&short.share_id, &ShareAccess::default())
            .await
            .unwrap_err();
        assert_eq!((api_code(&e), status(&e)), ("share_expired", 410));
        let e = anon
            .open_share("AAAAAAAAAAAAAAAAAAAAAA", &ShareAccess::default())
            .await
            .unwrap_err();
        assert_eq!((api_code(&e), status(&e)), ("share_not_found", 404));
        // Bad share requests: no expiry, a zero limit.
        for bad in [
            NewShare {
                expires_in: Some(0),
                ..NewShare::default()
            },
            NewShare {
                max_downloads: Some(0),
                ..NewShare::default()
            },
        ] {
            assert_eq!(status(&api.share(&text_id, &bad).await.unwrap_err()), 400);
        }

        // Delete: gone from the list, shards handed to garbage collection, quota returned, the
        // file's shares revoked.
        let live = api.share(&random_id, &NewShare::default()).await.unwrap();
        api.delete_file(&random_id).await.unwrap();
        assert_eq!(api_code(&api.file(&random_id).await.unwrap_err()), "file_not_found");
        assert_eq!(
            api_code(&api.delete_file(&random_id).await.unwrap_err()),
            "file_not_found"
        );
        let list = api.files().await.unwrap();
        assert_eq!(list.total, 2);
        assert_eq!(list.used_bytes, list.files.iter().map(|f| f.stored_bytes).sum::<u64>());
        assert_eq!(
            api_code(
                &anon
                    .open_share(&live.share_id, &ShareAccess::default())
                    .await
                    .unwrap_err()
            ),
            "share_revoked"
        );
        let pool = db_pool(&db.url).await;
        let gc: i64 = sqlx::query("SELECT COUNT(*) AS n FROM gc_shards")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(
            gc,
            8 * 20 + 100,
            "{}: the 8 small files and 10 chunks × 10 shards await garbage collection",
            db.backend
        );

        server.stop();
    }
}

fn status(e: &ClientError) -> u16 {
    match e {
        ClientError::Api { status, .. } => *status,
        other => panic!("not an API error: {other}"),
    }
}

async fn db_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

/// A share with the default policy.
async fn plain_share(owner: &Api, file_id: &str) -> String {
    owner.share(file_id, &NewShare::default()).await.unwrap().share_id
}

#[tokio::test(flavor = "multi_thread")]
async fn another_accounts_objects_are_not_found_and_writes_need_csrf() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (ada, ada_api) = person(&anon, "ada@example.org").await;
        let (bob, bob_api) = person(&anon, "bob@example.org").await;
        let data = random_bytes(3000, 2);
        let (file_id, _) = put_file(&ada_api, &ada, &data, "private").await;
        let share = ada_api.share(&file_id, &NewShare::default()).await.unwrap();
        let plan = ada_api
            .begin_upload(&BeginUpload {
                file_id: FileId::random().to_hex(),
                size: 10,
                data_shards: None,
                parity_shards: None,
                chunk_size: Some(CHUNK),
                folder_id: None,
            })
            .await
            .unwrap();

        // Tried: Bob reading, deleting and sharing Ada's file, revoking her share, renewing,
        // cancelling and committing her upload. Must hold: "not found" every time (existence is
        // not revealed), and Ada's objects unchanged.
        let e = bob_api.file(&file_id).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (404, "file_not_found"));
        assert_eq!(
            api_code(&bob_api.delete_file(&file_id).await.unwrap_err()),
            "file_not_found"
        );
        assert_eq!(
            api_code(&bob_api.share(&file_id, &NewShare::default()).await.unwrap_err()),
            "file_not_found"
        );
        assert_eq!(
            api_code(&bob_api.restripe(&file_id).await.unwrap_err()),
            "file_not_found"
        );
        // Ada's own file is at the policy (6 + 4 on 10 workers): nothing to restripe.
        assert_eq!(api_code(&ada_api.restripe(&file_id).await.unwrap_err()), "at_policy");
        assert_eq!(
            api_code(&bob_api.revoke_share(&share.share_id).await.unwrap_err()),
            "share_not_found"
        );
        assert_eq!(
            api_code(&bob_api.renew_upload(&plan.upload_id).await.unwrap_err()),
            "upload_not_found"
        );
        assert_eq!(
            api_code(&bob_api.cancel_upload(&plan.upload_id).await.unwrap_err()),
            "upload_not_found"
        );
        let replan = Replan {
            failed: vec![plan.nodes[0].node_id],
            chunks: vec![0],
        };
        assert_eq!(
            api_code(&bob_api.replan_upload(&plan.upload_id, &replan).await.unwrap_err()),
            "upload_not_found"
        );
        assert_eq!(
            api_code(&bob_api.upload_plan(&plan.upload_id).await.unwrap_err()),
            "upload_not_found"
        );
        let commit = Commit {
            manifest: Base64::default(),
            metadata: Base64::default(),
            wrapped_key: Base64::default(),
            receipts: vec![],
        };
        assert_eq!(
            api_code(&bob_api.commit(&plan.upload_id, &commit).await.unwrap_err()),
            "upload_not_found"
        );
        assert_eq!(bob_api.files().await.unwrap().total, 0);
        let shares: Vec<Value> = reqwest::Client::new()
            .get(format!("{}/api/v1/shares", server.url))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(shares.is_empty());
        assert_eq!(get_file(&ada_api, &ada, &file_id).await.0, data);
        assert!(ada_api.revoke_share(&share.share_id).await.unwrap().revoked);
        ada_api.renew_upload(&plan.upload_id).await.unwrap();
        ada_api.cancel_upload(&plan.upload_id).await.unwrap();
        assert_eq!(
            api_code(&ada_api.renew_upload(&plan.upload_id).await.unwrap_err()),
            "upload_not_found"
        );

        // Without credentials: 401. With a session cookie but no CSRF header: 403.
        let http = reqwest::Client::new();
        let r = http.get(format!("{}/api/v1/files", server.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let login = login_cookie(&server.url, &anon, "ada@example.org").await;
        for (method, path) in [
            ("POST", "/uploads".to_owned()),
            ("DELETE", format!("/files/{file_id}")),
            ("POST", format!("/files/{file_id}/shares")),
            ("POST", format!("/files/{file_id}/restripe")),
            ("POST", format!("/files/{file_id}/move")),
            ("POST", format!("/files/{file_id}/rename")),
            ("POST", "/folders".to_owned()),
            ("DELETE", format!("/folders/{}", disktro_core::FolderId::random())),
            ("DELETE", format!("/shares/{}", share.share_id)),
        ] {
            let r = http
                .request(method.parse().unwrap(), format!("{}/api/v1{path}", server.url))
                .header("cookie", &login.0)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "csrf_required");
        }
        // The same session with its CSRF token may read and write.
        let r = http
            .get(format!("{}/api/v1/files", server.url))
            .header("cookie", &login.0)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        server.stop();
    }
}

/// Log in over HTTP as a browser would; returns the cookie and CSRF token.
async fn login_cookie(url: &str, anon: &Api, email: &str) -> (String, String) {
    let setup = anon.prelogin(email).await.unwrap();
    let setup = disktro_core::keys::KdfSetup::decode(&setup.kdf_setup).unwrap();
    let keys = disktro_core::keys::derive_account_keys("correct horse battery staple", &setup).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"email": email, "auth_key": b64(keys.auth_key.as_bytes())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

/// An upload done by hand: shards really stored, receipts collected, nothing committed yet.
struct Prepared {
    plan: UploadPlan,
    manifest: disktro_core::Manifest,
    receipts: Vec<Base64>,
    metadata: Vec<u8>,
    wrapped: Vec<u8>,
}

impl Prepared {
    fn commit(&self, me: &Identity) -> Commit {
        Commit {
            manifest: b64(self.manifest.clone().sign(&me.keys.identity).unwrap().as_bytes()),
            metadata: b64(&self.metadata),
            wrapped_key: b64(&self.wrapped),
            receipts: self.receipts.clone(),
        }
    }
}

async fn prepare(api: &Api, me: &Identity, data: &[u8]) -> Prepared {
    let file_id = FileId::random();
    let key = FileKey::generate();
    let plan = api
        .begin_upload(&BeginUpload {
            file_id: file_id.to_hex(),
            size: padding::size_class(data.len() as u64, CHUNK),
            data_shards: None,
            parity_shards: None,
            chunk_size: Some(CHUNK),
            folder_id: None,
        })
        .await
        .unwrap();
    let r = Redundancy::new(plan.data_shards, plan.parity_shards).unwrap();
    let (chunks, manifest) = disktro_core::chunk::encode_all(&key, file_id, r, CHUNK, data).unwrap();
    let mut workers = Vec::new();
    for n in &plan.nodes {
        workers.push(Arc::new(
            WorkerClient::connect(&n.url, &ConnectOptions::default()).await.unwrap(),
        ));
    }
    let mut receipts = Vec::new();
    for chunk in &chunks {
        for (i, (id, bytes)) in chunk.shards.iter().enumerate() {
            let n = usize::from(plan.placement[chunk.index as usize][i]);
            let token = plan.nodes[n].token.to_vec();
            receipts.push(b64(&workers[n].put(&token, id, bytes.to_vec()).await.unwrap()));
        }
    }
    Prepared {
        metadata: meta("prepared", data.len()).seal(&key, &file_id).unwrap(),
        wrapped: me.keys.identity.wrap_file_key(&file_id, &key),
        plan,
        manifest,
        receipts,
    }
}

async fn counts(pool: &sqlx::AnyPool) -> (i64, i64, i64) {
    let n = |sql: &'static str| async move { sqlx::query(sql).fetch_one(pool).await.unwrap().get::<i64, _>("n") };
    (
        n("SELECT COUNT(*) AS n FROM files").await,
        n("SELECT COUNT(*) AS n FROM file_shards").await,
        n("SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) AS n FROM accounts").await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_commits_are_refused_whole() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &["--default-quota", "600KiB"]).await;
        let (ada, api) = person(&anon, "ada@example.org").await;
        let pool = db_pool(&db.url).await;
        let data = random_bytes(3 * CHUNK as usize + 5, 3);
        let p = prepare(&api, &ada, &data).await;
        let good = p.commit(&ada);
        let id = p.plan.upload_id.clone();
        let refuse = |commit: Commit, code: &'static str, why: &'static str| {
            let api = api.clone();
            let id = id.clone();
            let pool = pool.clone();
            async move {
                let e = api.commit(&id, &commit).await.unwrap_err();
                assert_eq!((status(&e), api_code(&e)), (400, code), "{why}: {e}");
                assert_eq!(counts(&pool).await, (0, 0, 0), "{why}: something was recorded");
            }
        };

        // Tried, one at a time: each must be a 400 with its code and leave nothing recorded.
        let mut tampered = good.manifest.to_vec();
        let at = tampered.len() - 100;
        tampered[at] ^= 1;
        refuse(
            Commit {
                manifest: b64(&tampered),
                ..good.clone()
            },
            "bad_manifest",
            "a flipped manifest byte",
        )
        .await;
        let stranger = Keypair::generate();
        let foreign = p.manifest.clone().sign(&stranger).unwrap();
        refuse(
            Commit {
                manifest: b64(foreign.as_bytes()),
                ..good.clone()
            },
            "wrong_owner",
            "another key signed",
        )
        .await;
        let mut other_file = p.manifest.clone();
        other_file.file_id = FileId::random();
        let other_file = other_file.sign(&ada.keys.identity).unwrap();
        refuse(
            Commit {
                manifest: b64(other_file.as_bytes()),
                ..good.clone()
            },
            "manifest_mismatch",
            "another file id",
        )
        .await;
        let mut short = p.manifest.clone();
        short.chunks.pop();
        let short = short.sign(&ada.keys.identity).unwrap();
        refuse(
            Commit {
                manifest: b64(short.as_bytes()),
                ..good.clone()
            },
            "manifest_mismatch",
            "a chunk left out",
        )
        .await;
        let mut missing = good.clone();
        missing.receipts.remove(7);
        refuse(missing, "missing_receipt", "one receipt missing").await;
        let mut doubled = good.clone();
        doubled.receipts[1] = doubled.receipts[0].clone();
        refuse(doubled, "missing_receipt", "a receipt sent twice in place of another").await;
        // A receipt signed by a worker the server never registered.
        let rogue = Keypair::generate();
        let entry = &p.manifest.chunks[0];
        let forged = Receipt {
            worker: rogue.public().node_id(),
            shard: entry.shards[0],
            size: p.manifest.redundancy.shard_len(entry.sealed_len as usize) as u32,
            serial: p.plan.nodes[0].serial,
        }
        .sign(&rogue)
        .unwrap();
        let mut unknown = good.clone();
        unknown.receipts[0] = b64(&forged);
        refuse(unknown, "unknown_worker", "a receipt from an unregistered worker").await;
        // A receipt whose signature was tampered with.
        let mut bytes = good.receipts[0].to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut tampered = good.clone();
        tampered.receipts[0] = b64(&bytes);
        refuse(tampered, "bad_receipt", "a receipt with a broken signature").await;
        // A real receipt from another upload (its serial belongs to another upload's token).
        let other = prepare(&api, &ada, &random_bytes(100, 4)).await;
        let mut crossed = good.clone();
        let worker_of = |r: &Base64| Receipt::claimed_worker(r).unwrap();
        let stranger_worker = worker_of(&other.receipts[0]);
        let index = good
            .receipts
            .iter()
            .position(|r| worker_of(r) == stranger_worker)
            .unwrap();
        crossed.receipts[index] = other.receipts[0].clone();
        refuse(
            crossed,
            "receipt_not_for_upload",
            "a receipt of another upload in place of one",
        )
        .await;
        let mut extra_serial = good.clone();
        extra_serial.receipts.push(other.receipts[0].clone());
        refuse(
            extra_serial,
            "receipt_not_for_upload",
            "a receipt of another upload added",
        )
        .await;
        refuse(
            Commit {
                metadata: b64(b"plain name.txt"),
                ..good.clone()
            },
            "bad_metadata",
            "unsealed metadata",
        )
        .await;
        refuse(
            Commit {
                wrapped_key: b64(&[0; 10]),
                ..good.clone()
            },
            "bad_wrapped_key",
            "a short wrapped key",
        )
        .await;

        // Tried: malformed JSON and wrong types (400 malformed_json); well-formed JSON whose
        // manifest, or one receipt, is not base64url (400 invalid_field: the value is refused
        // where the JSON is read). Must hold: the API's error shape, nothing recorded.
        let http = reqwest::Client::new();
        for (body, code) in [
            ("{", "malformed_json"),
            (r#"{"manifest": 5}"#, "malformed_json"),
            (
                r#"{"manifest": "", "metadata": "", "wrapped_key": "", "receipts": "x"}"#,
                "malformed_json",
            ),
            (
                r#"{"manifest": "%%%", "metadata": "", "wrapped_key": "", "receipts": []}"#,
                "invalid_field",
            ),
            (
                r#"{"manifest": "", "metadata": "", "wrapped_key": "", "receipts": ["AA=="]}"#,
                "invalid_field",
            ),
        ] {
            let r = http
                .post(format!("{}/api/v1/uploads/{id}/commit", server.url))
                .bearer_auth(&ada.token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{body}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], code, "{body}");
            assert_eq!(counts(&pool).await, (0, 0, 0), "{body}: something was recorded");
        }
        // Oversized: past the commit's 64 MiB limit, and past 1 MiB elsewhere. Must hold: refused
        // with 413 (or, when the server answers and closes before the client finished sending,
        // the connection cut mid-body; an accepted body would be a 400 for its bad JSON).
        for (path, size) in [
            (format!("/uploads/{id}/commit"), 65 << 20),
            ("/uploads".to_owned(), 2 << 20),
        ] {
            let sent = http
                .post(format!("{}/api/v1{path}", server.url))
                .bearer_auth(&ada.token)
                .header("content-type", "application/json")
                .body(vec![b' '; size])
                .send()
                .await;
            match sent {
                Ok(r) => assert_eq!(r.status(), 413, "{path}"),
                Err(e) => assert!(e.is_request(), "{path}: {e}"),
            }
        }

        // The good commit still goes through: the refusals left the upload intact.
        let summary = api.commit(&id, &good).await.unwrap();
        assert_eq!(summary.size, padding::size_class(data.len() as u64, CHUNK));
        assert_eq!(counts(&pool).await, (1, 40, summary.stored_bytes as i64));
        // Committing twice: the upload is gone.
        assert_eq!(api_code(&api.commit(&id, &good).await.unwrap_err()), "upload_not_found");

        // Quota: 600 KiB. The raw estimate of a 500 KiB file (833 KiB stored) is refused at
        // begin. Two uploads that fit alone but not together: the open one holds its storage, so
        // the second is refused at begin, before any bytes move.
        let e = api.begin_upload(&begin_of(500 << 10)).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (413, "quota_exceeded"));
        let a = prepare(&api, &ada, &random_bytes(150 << 10, 5)).await;
        let e = api.begin_upload(&begin_of(150 << 10)).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (413, "quota_exceeded"));
        // The commit checks the quota again: with the quota lowered under the open upload (an
        // operator's change), its commit is refused whole.
        sqlx::query("UPDATE accounts SET quota_bytes = used_bytes")
            .execute(&pool)
            .await
            .unwrap();
        let before = counts(&pool).await;
        let e = api.commit(&a.plan.upload_id, &a.commit(&ada)).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (413, "quota_exceeded"));
        assert_eq!(counts(&pool).await, before, "an over-quota commit recorded something");
        sqlx::query("UPDATE accounts SET quota_bytes = 614400")
            .execute(&pool)
            .await
            .unwrap();
        // Begin refusals: a taken file id, a bad id, impossible redundancy, too few workers.
        let taken = BeginUpload {
            file_id: summary.file_id.to_hex(),
            size: 1,
            data_shards: None,
            parity_shards: None,
            chunk_size: None,
            folder_id: None,
        };
        assert_eq!(api_code(&api.begin_upload(&taken).await.unwrap_err()), "file_exists");
        let bad_id = BeginUpload {
            file_id: "XYZ".to_owned(),
            ..taken.clone()
        };
        assert_eq!(
            api_code(&api.begin_upload(&bad_id).await.unwrap_err()),
            "invalid_file_id"
        );
        let zero = BeginUpload {
            file_id: FileId::random().to_hex(),
            data_shards: Some(0),
            ..taken.clone()
        };
        assert_eq!(
            api_code(&api.begin_upload(&zero).await.unwrap_err()),
            "invalid_redundancy"
        );
        let wide = BeginUpload {
            file_id: FileId::random().to_hex(),
            data_shards: Some(1),
            parity_shards: Some(1),
            chunk_size: Some(1),
            ..taken.clone()
        };
        assert_eq!(
            api_code(&api.begin_upload(&wide).await.unwrap_err()),
            "invalid_chunk_size"
        );
        // Tried: an exact size that is not a size class (a client that would leak it). Must
        // hold: refused, naming the class to send.
        let exact = BeginUpload {
            file_id: FileId::random().to_hex(),
            size: 1001,
            chunk_size: Some(CHUNK),
            ..taken.clone()
        };
        let e = api.begin_upload(&exact).await.unwrap_err();
        assert_eq!(api_code(&e), "invalid_field");
        assert!(e.to_string().contains("1024"), "{e}");

        // The janitor removes expired uploads (here: `a`, never committed), and only those, and
        // gives back what they reserved.
        let reserved = "SELECT reserved_bytes FROM accounts";
        assert!(sqlx::query(reserved).fetch_one(&pool).await.unwrap().get::<i64, _>(0) > 0);
        let removed = disktro_server::leases::sweep(
            &disktro_server::db::Db::open(&db.url).await.unwrap(),
            disktro_server::context::unix_now() + disktro_server::uploads::UPLOAD_TTL + 1,
        )
        .await
        .unwrap();
        assert!(removed >= 1, "{}: {removed}", db.backend);
        assert_eq!(
            api_code(&api.renew_upload(&a.plan.upload_id).await.unwrap_err()),
            "upload_not_found"
        );
        assert_eq!(
            sqlx::query(reserved).fetch_one(&pool).await.unwrap().get::<i64, _>(0),
            0
        );
        server.stop();
    }
}

/// Everything the server stores and the workers receive about one file, less its ids and
/// ciphertext bytes (which are random): the lengths and counts an honest-but-curious operator sees.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// files: size, stored_bytes, data_shards, parity_shards, chunk_count.
    row: Vec<i64>,
    /// Bytes of the stored manifest, sealed metadata and wrapped key.
    blob_lens: [usize; 3],
    /// Each chunk's sealed length, as the stored manifest states it.
    sealed_lens: Vec<u32>,
    /// file_shards: (chunk, index, size) of every shard.
    shards: Vec<(i64, i64, i64)>,
    /// The length of every shard as a worker holds it on disk, in (chunk, index) order.
    on_disk: Vec<u64>,
    /// What the account is charged.
    charged: i64,
}

async fn observe(pool: &sqlx::AnyPool, data_dir: &std::path::Path, file_hex: &str, charged: i64) -> Observed {
    let row = sqlx::query(
        "SELECT size, stored_bytes, data_shards, parity_shards, chunk_count, manifest, metadata, wrapped_key \
         FROM files WHERE id = $1",
    )
    .bind(file_hex)
    .fetch_one(pool)
    .await
    .unwrap();
    let blob = |c: &str| Base64::decode(&row.get::<String, _>(c)).unwrap().into_vec();
    let (manifest, metadata, wrapped) = (blob("manifest"), blob("metadata"), blob("wrapped_key"));
    let signed = disktro_core::SignedManifest::decode(&manifest).unwrap();
    let shard_rows =
        sqlx::query("SELECT chunk, idx, size, shard_id FROM file_shards WHERE file_id = $1 ORDER BY chunk, idx")
            .bind(file_hex)
            .fetch_all(pool)
            .await
            .unwrap();
    let on_disk = shard_rows
        .iter()
        .map(|r| {
            let id: disktro_core::ShardId = r.get::<String, _>("shard_id").parse().unwrap();
            (0..10)
                .map(|n| disktro_worker::store::shard_file(&data_dir.join("workers").join(n.to_string()), &id))
                .find_map(|path| std::fs::metadata(path).ok())
                .map(|m| m.len())
                .expect("every placed shard is on a worker")
        })
        .collect();
    Observed {
        row: ["size", "stored_bytes", "data_shards", "parity_shards", "chunk_count"]
            .iter()
            .map(|c| row.get::<i64, _>(*c))
            .collect(),
        blob_lens: [manifest.len(), metadata.len(), wrapped.len()],
        sealed_lens: signed.manifest().chunks.iter().map(|c| c.sealed_len).collect(),
        shards: shard_rows
            .iter()
            .map(|r| (r.get("chunk"), r.get("idx"), r.get("size")))
            .collect(),
        on_disk,
        charged,
    }
}

/// Tried: two files of different sizes (591,058 and 600,000 bytes) and names of different
/// lengths, in one size class (606,208 bytes in 64 KiB chunks), uploaded by the real client to
/// real workers; and a third of 589,000 bytes in the class below. Must hold: the first two are
/// indistinguishable in everything the server stores and the workers hold (sizes, counts,
/// manifest and metadata lengths, every chunk's sealed length, every shard's length, the quota
/// charged); the third differs (the comparison can fail); all three download byte-identical.
#[tokio::test(flavor = "multi_thread")]
async fn two_files_in_one_size_class_look_the_same_to_the_server_and_workers() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (ada, api) = person(&anon, "ada@example.org").await;
        let pool = db_pool(&db.url).await;
        let sizes = [9 * CHUNK as usize + 1234, 600_000, 589_000];
        assert_eq!(padding::size_class(sizes[0] as u64, CHUNK), 606_208);
        assert_eq!(padding::size_class(sizes[1] as u64, CHUNK), 606_208);
        assert_eq!(padding::size_class(sizes[2] as u64, CHUNK), 589_824);
        let names = [
            "a.bin",
            "a much longer name for the second file, which pads the same.bin",
            "c.bin",
        ];
        let mut seen = Vec::new();
        for (i, (size, name)) in sizes.iter().zip(names).enumerate() {
            let data = random_bytes(*size, 40 + i as u8);
            let used_before = api.files().await.unwrap().used_bytes;
            let (file_id, _) = put_file(&api, &ada, &data, name).await;
            let charged = i64::try_from(api.files().await.unwrap().used_bytes - used_before).unwrap();
            seen.push(observe(&pool, db.dir.path(), &file_id, charged).await);
            let (out, metadata) = get_file(&api, &ada, &file_id).await;
            assert!(out == data, "{}: file {i} did not come back whole", db.backend);
            assert_eq!(metadata.size, *size as u64, "the exact size is in the sealed metadata");
        }
        assert_eq!(
            seen[0], seen[1],
            "{}: two files of one class are told apart",
            db.backend
        );
        assert_ne!(
            seen[0], seen[2],
            "{}: the observation cannot tell classes apart",
            db.backend
        );
        assert_eq!(seen[0].row[0], 606_208, "{}: the server keeps the class", db.backend);
        server.stop();
    }
}

/// Where shard `id` would be on local worker `n` of a server started on `data_dir`.
fn on_local_worker(data_dir: &std::path::Path, id: &disktro_core::ShardId) -> bool {
    (0..10).any(|n| disktro_worker::store::shard_file(&data_dir.join("workers").join(n.to_string()), id).exists())
}

/// Begin a file of `size` bytes (stating its size class, as clients do).
fn begin_of(size: u64) -> BeginUpload {
    BeginUpload {
        file_id: FileId::random().to_hex(),
        size: padding::size_class(size, CHUNK),
        data_shards: None,
        parity_shards: None,
        chunk_size: Some(CHUNK),
        folder_id: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn open_uploads_hold_their_storage_and_cancelling_reaches_the_workers() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &["--default-quota", "1MiB"]).await;
        let (_, api) = person(&anon, "ada@example.org").await;
        let pool = db_pool(&db.url).await;

        // Tried: begin a 400 KiB upload, then a second one. Must hold: the grants of the first
        // add up to what it reserved and fit the quota; the second would pass the quota beside
        // it and is refused before any bytes move.
        let first = api.begin_upload(&begin_of(400 << 10)).await.unwrap();
        let granted: u64 = first.nodes.iter().map(|n| n.budget).sum();
        let reserved: i64 = sqlx::query("SELECT reserved_bytes FROM accounts")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(granted, reserved as u64, "{}", db.backend);
        assert!(granted <= 1 << 20, "{}: {granted} granted on a 1 MiB quota", db.backend);
        let e = api.begin_upload(&begin_of(400 << 10)).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (413, "quota_exceeded"), "{}", db.backend);

        // Tried: a renewal. Must hold: the same serials (one budget per worker across renewals).
        let renewed = api.renew_upload(&first.upload_id).await.unwrap();
        let serials = |grants: &[disktro_core::api::PutGrant]| {
            let mut s: Vec<_> = grants.iter().map(|g| g.serial).collect();
            s.sort();
            s
        };
        assert_eq!(serials(&renewed), serials(&first.nodes));

        // Tried: store one shard under the first upload's token, cancel, keep putting. Must
        // hold: once the worker has heard from the server (its next heartbeat, default
        // interval), puts under the token are refused as revoked, the shard it stored is
        // deleted, and the reservation is back at once.
        let key = FileKey::generate();
        let file_id: FileId = first.file_id;
        let r = Redundancy::new(first.data_shards, first.parity_shards).unwrap();
        let data = random_bytes(CHUNK as usize, 9);
        let (chunks, _) = disktro_core::chunk::encode_all(&key, file_id, r, CHUNK, &data).unwrap();
        let n = usize::from(first.placement[0][0]);
        let grant = &first.nodes[n];
        let worker = WorkerClient::connect(&grant.url, &ConnectOptions::default())
            .await
            .unwrap();
        let shards = &chunks[0].shards;
        let stored_id = shards.ids()[0];
        worker
            .put(&grant.token, stored_id, shards.shard(0).to_vec())
            .await
            .unwrap();
        assert!(on_local_worker(db.dir.path(), &stored_id));
        api.cancel_upload(&first.upload_id).await.unwrap();
        let second = api.begin_upload(&begin_of(400 << 10)).await.unwrap();
        let mut refused = None;
        // The same second shard again and again: after its first put a re-put costs no budget.
        for _ in 0..40 {
            match worker
                .put(&grant.token, shards.ids()[1], shards.shard(1).to_vec())
                .await
            {
                Ok(_) => tokio::time::sleep(Duration::from_millis(750)).await,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{}: puts still accepted 30 s after the cancel", db.backend));
        assert!(refused.to_string().contains("revoked"), "{}: {refused}", db.backend);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let stored = || shards.ids()[..2].iter().any(|id| on_local_worker(db.dir.path(), id));
        while stored() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !stored(),
            "{}: the cancelled upload's shards are still stored",
            db.backend
        );
        api.cancel_upload(&second.upload_id).await.unwrap();

        // Tried: 33 uploads open at once. Must hold: the 33rd is refused 429 too_many_uploads;
        // finishing one lets the next begin.
        sqlx::query("UPDATE accounts SET quota_bytes = 1099511627776")
            .execute(&pool)
            .await
            .unwrap();
        let mut open = Vec::new();
        for _ in 0..disktro_server::uploads::MAX_OPEN_UPLOADS {
            open.push(api.begin_upload(&begin_of(1)).await.unwrap());
        }
        let e = api.begin_upload(&begin_of(1)).await.unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (429, "too_many_uploads"), "{}", db.backend);
        api.cancel_upload(&open[0].upload_id).await.unwrap();
        api.begin_upload(&begin_of(1)).await.unwrap();
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_typed_in_another_unicode_form_opens_the_account() {
    for db in databases().await {
        let server = Server::start(db.dir.path(), &db.url, &[]);
        let api = Api::new(&server.url).unwrap();
        // Tried: sign up with "é" composed and a full-width letter, log in with "e" + combining
        // accent and the ASCII letter (another keyboard, a password manager). Must hold: the
        // same account and identity key open; a different password still does not.
        let composed = "Am\u{e9}lie's \u{ff30}assword";
        let decomposed = "Ame\u{301}lie's Password";
        let made = account::signup(&api, "amelie@example.org", composed, KdfParams::MINIMUM, "tests")
            .await
            .unwrap();
        let opened = account::login(&api, "amelie@example.org", decomposed, "tests")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
        assert_eq!(opened.public_key(), made.public_key());
        let e = account::login(&api, "amelie@example.org", "Amelie's Password", "tests")
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "wrong_credentials", "{}", db.backend);
        server.stop();
    }
}

/// Everything the database holds, as far as a write could show: every table's row count, on
/// PostgreSQL a digest of every table's rows, on SQLite the `data_version` seen by `watcher` (a
/// connection of its own, which sees it change whenever another connection commits).
async fn database_state(backend: &str, pool: &sqlx::AnyPool, watcher: &sqlx::AnyPool) -> Vec<(String, String)> {
    let tables: Vec<String> = if backend == "sqlite" {
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    } else {
        sqlx::query(
            "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
        )
    }
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>("name"))
    .collect();
    let mut state = Vec::new();
    for table in tables {
        // Table names come from the database's own catalogue.
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(pool)
            .await
            .unwrap()
            .get("n");
        let digest = if backend == "sqlite" {
            String::new()
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM {table} t"
            )))
            .fetch_one(pool)
            .await
            .unwrap()
            .get("h")
        };
        state.push((table, format!("{count} {digest}")));
    }
    if backend == "sqlite" {
        let version: i64 = sqlx::query("PRAGMA data_version")
            .fetch_one(watcher)
            .await
            .unwrap()
            .get(0);
        state.push(("data_version".to_owned(), version.to_string()));
    }
    state
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_a_file_writes_nothing() {
    use tower::ServiceExt as _;
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (ada, api) = person(&anon, "ada@example.org").await;
        let data = random_bytes(3 * CHUNK as usize + 7, 4);
        let (id, _) = put_file(&api, &ada, &data, "read me").await;
        // The server process (its heartbeats and background jobs write) stops; the same
        // database is served in this process with nothing else running.
        server.stop();
        let ctx = disktro_server::Context::open(db.dir.path(), &db.url, Some("j".to_owned()), Duration::from_secs(10))
            .await
            .unwrap();
        let app = disktro_server::app(
            disktro_server::site_options("target/site", "127.0.0.1:0".parse().unwrap()),
            Arc::new(ctx),
        );
        let pool = db_pool(&db.url).await;
        let watcher = sqlx::pool::PoolOptions::<sqlx::Any>::new()
            .max_connections(1)
            .connect(&db.url)
            .await
            .unwrap();
        let before = database_state(db.backend, &pool, &watcher).await;

        // Tried: 20 reads of the file (manifest, placement, get tokens for every worker). Must
        // hold: each answers 200 with tokens, and the database is exactly as it was.
        for _ in 0..20 {
            let request = axum::http::Request::builder()
                .uri(format!("/api/v1/files/{id}"))
                .header("authorization", format!("Bearer {}", ada.token))
                .body(axum::body::Body::empty())
                .unwrap();
            let answer = app.clone().oneshot(request).await.unwrap();
            assert_eq!(answer.status(), 200, "{}", db.backend);
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
            let read: Value = serde_json::from_slice(&body).unwrap();
            assert!(!read["nodes"][0]["tokens"].as_array().unwrap().is_empty());
        }
        assert_eq!(
            database_state(db.backend, &pool, &watcher).await,
            before,
            "{}",
            db.backend
        );
    }
}

/// A limited share's one download, counted by how it ends. Tried, on a one-download link each:
/// a download abandoned before any byte moved and then continued with its `download_id`; a
/// download abandoned for good; a download fetched whole whose client never reports; and
/// another recipient asking while a download is under way, with a forged `download_id`, and
/// reporting an unknown download complete. Get tokens last 5 s (`--get-token-ttl`), so the
/// downloads' tokens run out within the test; every other setting is the default.
/// Must hold: the continued download fetches byte-identical and, once reported, counts; while a
/// download holds the link nobody else gets one; the abandoned one gives the link back once its
/// tokens expired and the workers' claims are in; the unreported whole fetch counts by the
/// workers' claims; an unknown download is 404.
#[tokio::test(flavor = "multi_thread")]
async fn a_share_download_counts_when_it_is_done_not_when_it_starts() {
    for db in databases().await {
        let (_server, anon) = start_network(&db, &["--get-token-ttl", "5s"]).await;
        let (ada, api) = person(&anon, "ada@example.org").await;
        let data = random_bytes(3 * CHUNK as usize + 77, 9);
        let (file_id, key) = put_file(&api, &ada, &data, "report.pdf").await;
        let once = NewShare {
            max_downloads: Some(1),
            ..NewShare::default()
        };
        let continued = api.share(&file_id, &once).await.unwrap().share_id;
        let abandoned = api.share(&file_id, &once).await.unwrap().share_id;
        let unreported = api.share(&file_id, &once).await.unwrap().share_id;
        let left = |share: String| {
            let anon = anon.clone();
            // Downloads left, or the link's refusal once it is used up.
            async move {
                match anon.open_share(&share, &ShareAccess::default()).await {
                    Ok(info) => Ok(info.downloads_left),
                    Err(e) => Err(api_code(&e)),
                }
            }
        };

        // The first try fails before any byte moves; the recipient tries again as the same download.
        let first = anon.download_share(&continued, &ShareAccess::default()).await.unwrap();
        let id = first.download_id.clone().expect("a share download has an id");
        let someone_else = anon
            .download_share(&continued, &ShareAccess::default())
            .await
            .unwrap_err();
        assert_eq!(
            api_code(&someone_else),
            "share_exhausted",
            "{}: a second download while one holds the link",
            db.backend
        );
        let forged = ShareAccess {
            download_id: Some("AAAAAAAAAAAAAAAAAAAAAA".to_owned()),
            ..ShareAccess::default()
        };
        let e = anon.download_share(&continued, &forged).await.unwrap_err();
        assert_eq!(
            api_code(&e),
            "share_exhausted",
            "{}: a forged download id is a new download",
            db.backend
        );
        let again = ShareAccess {
            download_id: Some(id.clone()),
            ..ShareAccess::default()
        };
        let retry = anon.download_share(&continued, &again).await.unwrap();
        assert_eq!(retry.download_id.as_deref(), Some(id.as_str()));
        let (_, out) = download::download(&retry, &key, None, Vec::new(), &|_| {})
            .await
            .unwrap();
        assert!(out == data, "{}: the continued download differs", db.backend);
        anon.complete_share_download(&continued, &id).await.unwrap();
        let e = anon
            .complete_share_download(&continued, "AAAAAAAAAAAAAAAAAAAAAA")
            .await
            .unwrap_err();
        assert_eq!((api_code(&e), status(&e)), ("share_not_found", 404));

        // One recipient gives up at once; another fetches everything and never reports.
        let given_up = anon.download_share(&abandoned, &ShareAccess::default()).await.unwrap();
        assert!(given_up.download_id.is_some());
        let silent = anon.download_share(&unreported, &ShareAccess::default()).await.unwrap();
        let (_, out) = download::download(&silent, &key, None, Vec::new(), &|_| {})
            .await
            .unwrap();
        assert!(out == data, "{}: the unreported download differs", db.backend);
        assert_eq!(
            left(abandoned.clone()).await,
            Ok(Some(0)),
            "a download under way holds the link"
        );

        // Tokens expire after 5 s; the workers claim in their next heartbeats (10 s apart); the
        // server settles 2 heartbeats and 10 s after expiry.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while left(abandoned.clone()).await != Ok(Some(1)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: the abandoned download never gave the link back",
                db.backend
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // Its tokens were issued a little later, so it may settle a pass later: while it is
        // under way (none left, not used up) wait, then it must count, never be given back.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while left(unreported.clone()).await == Ok(Some(0)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: the fetched download never settled",
                db.backend
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert_eq!(
            left(unreported.clone()).await,
            Err("share_exhausted"),
            "{}: a whole fetch counts without a report",
            db.backend
        );
        assert_eq!(
            left(continued.clone()).await,
            Err("share_exhausted"),
            "{}: a reported download counts",
            db.backend
        );
        let e = anon
            .download_share(&unreported, &ShareAccess::default())
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "share_exhausted");
        let back = anon.download_share(&abandoned, &ShareAccess::default()).await.unwrap();
        let (_, out) = download::download(&back, &key, None, Vec::new(), &|_| {})
            .await
            .unwrap();
        assert!(out == data, "{}: the link given back downloads", db.backend);
    }
}

/// Tried: a 4 + 2 upload of 3 chunks over 10 workers; replans naming no worker, a worker not of
/// the upload, a chunk past the file; a worker of chunk 1 failed, with chunk 1 waiting on it;
/// more replans than an upload may make.
/// Must hold: the malformed ones are refused (invalid_field) and change nothing; the real one
/// moves exactly that shard to a new slot at the end of `nodes` (a worker not in the chunk, with
/// its own token), keeps every other slot and shard, and renews every token; `GET /uploads/{id}`
/// answers the amended plan; the 17th replan is
/// too_many_replans. (A commit after replans: `durability.rs`, two workers killed mid-upload.)
#[tokio::test(flavor = "multi_thread")]
async fn a_replan_moves_only_the_failed_workers_waiting_shards() {
    for db in databases().await {
        let (_server, anon) = start_network(&db, &[]).await;
        let (_me, api) = person(&anon, "ada@example.org").await;
        let size = 3 * u64::from(CHUNK) - 10;
        let plan = api
            .begin_upload(&BeginUpload {
                file_id: FileId::random().to_hex(),
                size: padding::size_class(size, CHUNK),
                data_shards: Some(4),
                parity_shards: Some(2),
                chunk_size: Some(CHUNK),
                folder_id: None,
            })
            .await
            .unwrap();
        let failed = plan.nodes[usize::from(plan.placement[1][2])].node_id;
        let ask = |failed: Vec<disktro_core::NodeId>, chunks: Vec<u64>| Replan { failed, chunks };
        for (bad, why) in [
            (ask(vec![], vec![1]), "no worker"),
            (ask(vec![disktro_core::NodeId([7; 32])], vec![1]), "a stranger"),
            (ask(vec![failed], vec![3]), "a chunk past the file"),
        ] {
            let e = api.replan_upload(&plan.upload_id, &bad).await.unwrap_err();
            assert_eq!(api_code(&e), "invalid_field", "{}: {why}", db.backend);
        }

        let amended = api
            .replan_upload(&plan.upload_id, &ask(vec![failed], vec![1]))
            .await
            .unwrap();
        let old = plan.nodes.len();
        assert_eq!(amended.nodes.len(), old + 1, "{}: one new slot", db.backend);
        for (a, b) in amended.nodes.iter().zip(&plan.nodes) {
            assert_eq!((a.serial, a.node_id), (b.serial, b.node_id));
        }
        let moved = &amended.nodes[old];
        assert_ne!(moved.node_id, failed);
        assert!(moved.budget > 0);
        assert_eq!(usize::from(amended.placement[1][2]), old);
        let chunk: Vec<_> = amended.placement[1]
            .iter()
            .map(|&s| amended.nodes[usize::from(s)].node_id)
            .collect();
        assert_eq!(
            chunk.iter().collect::<HashSet<_>>().len(),
            6,
            "{}: one worker per shard",
            db.backend
        );
        for c in [0, 2] {
            assert_eq!(
                amended.placement[c], plan.placement[c],
                "{}: chunk {c} moved",
                db.backend
            );
        }
        for (i, &s) in amended.placement[1].iter().enumerate().filter(|(i, _)| *i != 2) {
            assert_eq!(s, plan.placement[1][i]);
        }
        // Asked again (a client continuing the upload), the plan is the amended one.
        let again = api.upload_plan(&plan.upload_id).await.unwrap();
        assert_eq!(again.placement, amended.placement, "{}", db.backend);
        assert_eq!(again.nodes.len(), amended.nodes.len());

        // 15 more replans (16 in all) are allowed, the next is not.
        for _ in 0..15 {
            api.replan_upload(&plan.upload_id, &ask(vec![failed], vec![1]))
                .await
                .unwrap();
        }
        let e = api
            .replan_upload(&plan.upload_id, &ask(vec![failed], vec![1]))
            .await
            .unwrap_err();
        assert_eq!((status(&e), api_code(&e)), (429, "too_many_replans"), "{}", db.backend);
        api.cancel_upload(&plan.upload_id).await.unwrap();
    }
}

/// What the account holds in reserve for its open uploads.
async fn reserved(pool: &sqlx::AnyPool) -> u64 {
    let n: i64 = sqlx::query("SELECT reserved_bytes FROM accounts")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
    n as u64
}

/// Resizes of an upload begun at 2 chunks (a stream's, whose size comes at its end), on both
/// databases. Tried: a size that is no size class, one past the largest file, one past the quota;
/// growth to 4 chunks; a shrink to the class of 2 chunks and 100 bytes (3 chunks, the last a
/// part), then growth from that part of a chunk. Then a whole stream of 40 chunks
/// through `upload_described` (begun at 16 chunks, grown twice, shrunk at its end).
/// Must hold: the refusals are invalid_field, file_too_large, quota_exceeded and
/// invalid_field, and change neither the plan nor the reservation; growth keeps every chunk and
/// slot it had and adds slots after them; the reservation is always the sum of the budgets
/// granted for the chunks planned (less on a shrink); the stream commits under its size class
/// and downloads byte-identical, and nothing stays reserved.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_of_unknown_size_grows_and_shrinks_to_its_size_class() {
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (me, api) = person(&anon, "ada@example.org").await;
        let pool = db_pool(&db.url).await;
        let resize = |size| Resize { size };
        let plan = api.begin_upload(&begin_of(2 * u64::from(CHUNK))).await.unwrap();
        let at_begin = reserved(&pool).await;
        assert_eq!(plan.nodes.iter().map(|n| n.budget).sum::<u64>(), at_begin);

        for (size, code) in [
            (2 * u64::from(CHUNK) + 1, "invalid_field"),
            (128u64 << 30, "file_too_large"),
            (64 << 30, "quota_exceeded"),
        ] {
            let e = match api.resize_upload(&plan.upload_id, &resize(size)).await {
                Ok(p) => panic!("{}: resized to {size} ({} chunks)", db.backend, p.chunk_count),
                Err(e) => e,
            };
            assert_eq!(api_code(&e), code, "{}: {size}", db.backend);
        }
        assert_eq!(reserved(&pool).await, at_begin, "{}", db.backend);
        assert_eq!(
            api.upload_plan(&plan.upload_id).await.unwrap().placement,
            plan.placement
        );

        let grown = api
            .resize_upload(&plan.upload_id, &resize(4 * u64::from(CHUNK)))
            .await
            .unwrap();
        assert_eq!(grown.chunk_count, 4, "{}", db.backend);
        assert_eq!(grown.placement[..2], plan.placement[..], "{}: chunks kept", db.backend);
        for (a, b) in grown.nodes.iter().zip(&plan.nodes) {
            assert_eq!(
                (a.serial, a.node_id),
                (b.serial, b.node_id),
                "{}: slots kept",
                db.backend
            );
        }
        assert!(
            grown.placement[2..]
                .iter()
                .flatten()
                .all(|&s| usize::from(s) >= plan.nodes.len()),
            "{}: the added chunks go to added slots",
            db.backend
        );
        let at_four = reserved(&pool).await;
        assert_eq!(
            grown.nodes.iter().map(|n| n.budget).sum::<u64>(),
            at_four,
            "{}",
            db.backend
        );

        let shrunk_to = padding::size_class(2 * u64::from(CHUNK) + 100, CHUNK);
        let shrunk = api.resize_upload(&plan.upload_id, &resize(shrunk_to)).await.unwrap();
        assert_eq!(shrunk.placement[..], grown.placement[..3], "{}", db.backend);
        let after_shrink = reserved(&pool).await;
        assert!(
            at_begin < after_shrink && after_shrink < at_four,
            "{}: 2 chunks {at_begin}, 2 and a part {after_shrink}, 4 {at_four}",
            db.backend
        );
        let e = api
            .resize_upload(&plan.upload_id, &resize(4 * u64::from(CHUNK)))
            .await
            .unwrap_err();
        assert_eq!(
            api_code(&e),
            "invalid_field",
            "{}: growth from part of a chunk",
            db.backend
        );
        assert_eq!(reserved(&pool).await, after_shrink, "{}", db.backend);
        api.cancel_upload(&plan.upload_id).await.unwrap();
        assert_eq!(reserved(&pool).await, 0, "{}", db.backend);

        let data = random_bytes(40 * CHUNK as usize - 1234, 7);
        let (describe, described) = tokio::sync::oneshot::channel();
        describe.send(meta("stream.bin", data.len())).unwrap();
        let up = disktro_client::upload::upload_described(
            &api,
            &me,
            std::io::Cursor::new(data.clone()),
            None,
            described,
            &small_chunks(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            up.summary.size,
            padding::size_class(data.len() as u64, CHUNK),
            "{}: the server learns the size class",
            db.backend
        );
        let (got, metadata) = get_file(&api, &me, &up.summary.file_id.to_hex()).await;
        assert!(got == data, "{}: the stream came back different", db.backend);
        assert_eq!(metadata.name, "stream.bin");
        assert_eq!(reserved(&pool).await, 0, "{}", db.backend);
        server.stop();
    }
}

/// Tried: on PostgreSQL (every transaction SERIALIZABLE), two transactions updating one row,
/// the second after the first committed. Must hold: the database answers 40001 and the server
/// recognizes it as a request to run the transaction again (what `api::retry` acts on), and a
/// constraint violation is not taken for one.
#[tokio::test(flavor = "multi_thread")]
async fn a_serialization_failure_is_recognized_for_what_it_is() {
    for db in databases().await {
        if db.backend != "postgres" {
            continue;
        }
        let store = disktro_server::store::Db::open(&db.url).await.unwrap();
        let pool = &store.pool;
        sqlx::query("CREATE TABLE serialization_probe (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO serialization_probe VALUES (1, 0)")
            .execute(pool)
            .await
            .unwrap();
        let mut first = pool.begin().await.unwrap();
        let mut second = pool.begin().await.unwrap();
        for tx in [&mut first, &mut second] {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .execute(&mut **tx)
                .await
                .unwrap();
        }
        // The second's snapshot is taken before the first commits.
        sqlx::query("SELECT n FROM serialization_probe WHERE id = 1")
            .fetch_one(&mut *second)
            .await
            .unwrap();
        sqlx::query("UPDATE serialization_probe SET n = n + 1 WHERE id = 1")
            .execute(&mut *first)
            .await
            .unwrap();
        first.commit().await.unwrap();
        let conflict = sqlx::query("UPDATE serialization_probe SET n = n + 1 WHERE id = 1")
            .execute(&mut *second)
            .await
            .unwrap_err();
        assert!(
            disktro_server::store::is_serialization_failure(&conflict),
            "not recognized: {conflict}"
        );
        drop(second);
        let duplicate = sqlx::query("INSERT INTO serialization_probe VALUES (1, 0)")
            .execute(pool)
            .await
            .unwrap_err();
        assert!(!disktro_server::store::is_serialization_failure(&duplicate));
    }
}

/// Tried: 12 uploads of one account committed at once (every commit updates the account's
/// quota row), on SQLite and on PostgreSQL at SERIALIZABLE (`DISKTRO_DB_ISOLATION`). Must hold:
/// every upload succeeds (a conflict runs the request again instead of reaching the client),
/// and the account's figures add up.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_commits_of_one_account_all_succeed() {
    for db in databases().await {
        let server = Server::start_with_env(
            db.dir.path(),
            &db.url,
            &["--local-workers", "10"],
            &[("DISKTRO_DB_ISOLATION", "serializable")],
        );
        assert!(wait_online(&server.url, 10).await, "{}", server.log_text());
        let anon = Api::new(&server.url).unwrap();
        let (me, api) = person(&anon, "many@example.org").await;
        let (api, me) = (Arc::new(api), Arc::new(me));
        let uploads: Vec<_> = (0..12u8)
            .map(|i| {
                let (api, me) = (Arc::clone(&api), Arc::clone(&me));
                tokio::spawn(async move {
                    let data = random_bytes(50_000 + usize::from(i), i);
                    upload(
                        &api,
                        &me,
                        std::io::Cursor::new(data.clone()),
                        data.len() as u64,
                        &meta(&format!("f{i}"), data.len()),
                        &UploadOptions::default(),
                        &|_| {},
                    )
                    .await
                })
            })
            .collect();
        for (i, u) in uploads.into_iter().enumerate() {
            if let Err(e) = u.await.unwrap() {
                panic!("{}: upload {i} failed: {e}\n{}", db.backend, server.log_text());
            }
        }
        let list = api.files().await.unwrap();
        assert_eq!((list.files.len(), list.total), (12, 12), "{}", db.backend);
        let stored: u64 = list.files.iter().map(|f| f.stored_bytes).sum();
        assert_eq!(list.used_bytes, stored, "{}", db.backend);
    }
}

/// Folders, on both databases. Tried: a tree made, listed, renamed and moved; a file uploaded
/// into a folder, moved and renamed; a move into its own subtree; another account's folder as a
/// parent, a destination and a target; a folder deleted while not empty, then recursively.
/// Must hold: names are never in the clear in the database; listings by folder hold exactly
/// their children; a move makes no cycle; moving and renaming a file keep its shards and it
/// downloads byte-identical; another account's folders are not found; a recursive delete takes
/// every file below (their shards to garbage collection, the quota given back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folders_keep_names_sealed_and_the_tree_a_tree() {
    use disktro_client::tree::{Item, Tree};
    use disktro_core::FolderId;
    use disktro_core::api::{MoveTo, NewFolder, Rename};
    use disktro_core::folder;
    for db in databases().await {
        let (server, anon) = start_network(&db, &[]).await;
        let (ada, ada_api) = person(&anon, "ada@example.org").await;
        let (bob, bob_api) = person(&anon, "bob@example.org").await;
        let b = db.backend;

        let mut tree = Tree::load(&ada_api, &ada).await.unwrap();
        let photos = tree.make_all(&ada_api, &ada, "/photos/2024").await.unwrap().unwrap();
        let docs = tree.make(&ada_api, &ada, None, "docs").await.unwrap();
        let again = Tree::load(&ada_api, &ada).await.unwrap();
        assert_eq!(again.folder_at("photos/2024"), Some(Some(photos)), "[{b}]");
        assert_eq!(again.path_of(Some(photos)), "/photos/2024");
        // The database holds ids and sealed bytes: no name.
        let pool = db_pool(&db.url).await;
        let stored = texts(&pool, "SELECT metadata AS t FROM folders", "").await;
        assert_eq!(stored.len(), 3, "[{b}]");
        for m in &stored {
            let bytes = Base64::decode(m).unwrap();
            assert!(disktro_core::metadata::is_padded_shape(&bytes));
            for name in ["photos", "2024", "docs"] {
                assert!(
                    !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                    "[{b}] {name} in the clear"
                );
            }
        }

        // A file into /photos/2024, at upload.
        let data = random_bytes(150_000, 9);
        let up = upload(
            &ada_api,
            &ada,
            std::io::Cursor::new(data.clone()),
            data.len() as u64,
            &meta("beach.jpg", data.len()),
            &UploadOptions {
                folder_id: Some(photos),
                ..small_chunks()
            },
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(up.summary.folder_id, Some(photos), "[{b}]");
        let id = up.summary.file_id;
        let in_photos = ada_api.files_in(Some(&photos)).await.unwrap().files;
        assert_eq!(
            in_photos.iter().map(|f| f.file_id).collect::<Vec<_>>(),
            vec![id],
            "[{b}]"
        );
        assert!(
            ada_api.files_in(None).await.unwrap().files.is_empty(),
            "[{b}] nothing at the top"
        );
        assert_eq!(
            ada_api.files().await.unwrap().files.len(),
            1,
            "[{b}] every file without a folder"
        );
        match again.resolve(&ada_api, &ada, "/photos/2024/beach.jpg").await.unwrap() {
            Some(Item::File(f)) => assert_eq!(f.file_id, id),
            other => panic!("[{b}] resolved to {other:?}"),
        }

        // Move the file to /docs and rename it: its shards stay where they are.
        const SHARDS: &str = "SELECT shard_id AS t FROM file_shards WHERE file_id = $1 ORDER BY chunk, idx";
        let shards_before = texts(&pool, SHARDS, &id.to_hex()).await;
        ada_api.move_file(&id, Some(docs)).await.unwrap();
        let key = ada.file_key(&id, Some(&up.summary.wrapped_key)).unwrap();
        let renamed = meta("sea.jpg", data.len()).seal(&key, &id).unwrap();
        ada_api
            .rename_file(
                &id,
                &Rename {
                    metadata: Base64::new(renamed),
                    wrapped_key: None,
                },
            )
            .await
            .unwrap();
        let (out, m) = get_file(&ada_api, &ada, &id.to_hex()).await;
        assert!(out == data && m.name == "sea.jpg", "[{b}] {}", m.name);
        let shards_after = texts(&pool, SHARDS, &id.to_hex()).await;
        assert_eq!(shards_before, shards_after, "[{b}] a move and a rename touch no shard");
        assert_eq!(ada_api.files_in(Some(&docs)).await.unwrap().files.len(), 1, "[{b}]");
        // Tried: a file's rename carrying a wrapped key; unpadded metadata. Must hold: refused.
        let e = ada_api
            .rename_file(
                &id,
                &Rename {
                    metadata: Base64::new(vec![1; 40]),
                    wrapped_key: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "bad_metadata", "[{b}]");

        // Tried: /photos into /photos/2024 (below itself), and into itself. Must hold: refused.
        let top = again.folder_at("photos").unwrap().unwrap();
        for into in [photos, top] {
            let e = ada_api.move_folder(&top, Some(into)).await.unwrap_err();
            assert_eq!(api_code(&e), "invalid_field", "[{b}] {e}");
        }
        // /photos/2024 to the top, renamed "2024-photos".
        ada_api.move_folder(&photos, None).await.unwrap();
        let sealed = folder::seal_name(&ada.keys.identity, &photos, "2024-photos").unwrap();
        ada_api
            .rename_folder(
                &photos,
                &Rename {
                    metadata: Base64::new(sealed.metadata),
                    wrapped_key: Some(Base64::new(sealed.wrapped_key)),
                },
            )
            .await
            .unwrap();
        let moved = Tree::load(&ada_api, &ada).await.unwrap();
        assert_eq!(moved.folder_at("/2024-photos"), Some(Some(photos)), "[{b}]");
        assert_eq!(moved.children(Some(top)).len(), 0, "[{b}]");

        // Another account: Ada's folders are not found as a parent, a destination or a target.
        let bob_folder = FolderId::random();
        let sealed = folder::seal_name(&bob.keys.identity, &bob_folder, "mine").unwrap();
        let e = bob_api
            .create_folder(&NewFolder {
                folder_id: bob_folder,
                parent_id: Some(docs),
                metadata: Base64::new(sealed.metadata.clone()),
                wrapped_key: Base64::new(sealed.wrapped_key.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "folder_not_found", "[{b}]");
        assert_eq!(
            api_code(&bob_api.move_folder(&docs, None).await.unwrap_err()),
            "folder_not_found"
        );
        assert_eq!(
            api_code(&bob_api.delete_folder(&docs, true).await.unwrap_err()),
            "folder_not_found"
        );
        assert_eq!(
            api_code(&bob_api.files_in(Some(&docs)).await.unwrap_err()),
            "folder_not_found"
        );
        assert_eq!(
            api_code(&bob_api.move_file(&id, None).await.unwrap_err()),
            "file_not_found"
        );
        assert!(bob_api.folders().await.unwrap().folders.is_empty(), "[{b}]");
        let (bob_file, _) = put_file(&bob_api, &bob, &random_bytes(10, 3), "b").await;
        let e = bob_api
            .move_file(&bob_file.parse().unwrap(), Some(docs))
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "folder_not_found", "[{b}]");
        let e = bob_api
            .begin_upload(&BeginUpload {
                file_id: FileId::random().to_hex(),
                size: padding::size_class(10, CHUNK),
                data_shards: None,
                parity_shards: None,
                chunk_size: Some(CHUNK),
                folder_id: Some(docs),
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "folder_not_found", "[{b}]");
        // A folder's key does not open as a file's, nor another account's.
        let f = &moved.get(&photos).unwrap();
        assert_eq!(f.name, "2024-photos");
        let listed = ada_api.folders().await.unwrap().folders;
        let raw = listed.iter().find(|f| f.folder_id == photos).unwrap();
        assert!(folder::open_name(&bob.keys, &photos, &raw.metadata, &raw.wrapped_key).is_err());

        // /docs holds the file: refused without recursive; recursive takes it all.
        let (_, used_before) = store_usage(&ada_api).await;
        let e = ada_api.delete_folder(&docs, false).await.unwrap_err();
        assert_eq!(api_code(&e), "folder_not_empty", "[{b}]");
        let removed = ada_api.delete_folder(&docs, true).await.unwrap();
        assert_eq!((removed.folders, removed.files), (1, 1), "[{b}]");
        assert_eq!(
            api_code(&ada_api.file(&id.to_hex()).await.unwrap_err()),
            "file_not_found"
        );
        let (_, used_after) = store_usage(&ada_api).await;
        assert!(used_after < used_before, "[{b}] the quota is given back");
        let gc: i64 = sqlx::query("SELECT COUNT(*) AS n FROM gc_shards")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(
            gc as usize,
            shards_before.len(),
            "[{b}] the file's shards go to garbage collection"
        );
        // An empty folder goes without recursive.
        let empty = ada_api.delete_folder(&top, false).await.unwrap();
        assert_eq!((empty.folders, empty.files), (1, 0), "[{b}]");
        let _ = MoveTo::default();
        server.stop();
    }
}

/// Column `t` of every row of `sql`, with `$1` bound to `bind` when the statement has it.
async fn texts(pool: &sqlx::AnyPool, sql: &'static str, bind: &str) -> Vec<String> {
    let query = sqlx::query(sql);
    let query = if sql.contains("$1") {
        query.bind(bind.to_owned())
    } else {
        query
    };
    query
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("t").unwrap())
        .collect()
}

/// The account's (quota, used) bytes, as the file list states them.
async fn store_usage(api: &Api) -> (u64, u64) {
    let list = api.files().await.unwrap();
    (list.quota_bytes, list.used_bytes)
}
