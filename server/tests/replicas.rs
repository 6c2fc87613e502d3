//! Several server replicas on one database: they share nothing but the database and the key file,
//! so a file uploaded through one downloads through another, and a background job runs on one
//! replica at a time (leases).

mod support;

use std::time::Duration;

use disktro_client::account;
use disktro_client::download;
use disktro_client::server::Server as Api;
use disktro_client::upload::{UploadOptions, upload};
use disktro_core::keys::KdfParams;
use disktro_core::metadata::FileMetadata;
use disktro_server::db::Db;
use disktro_server::leases::{release, try_acquire};
use support::{Server, databases, wait_online};

/// Tried: on a fresh PostgreSQL database, another session holds the advisory lock sqlx's
/// migrator takes for that database (as if a migration under it hung; CockroachDB has no
/// advisory locks at all), and four replicas open the database at once.
/// Must hold: every replica opens within the time limit (none waits on the advisory lock), every
/// migration is applied exactly once, and the schema is whole (the files table answers).
#[tokio::test(flavor = "multi_thread")]
async fn replicas_migrate_in_turn_without_advisory_locks() {
    for db in databases().await {
        if db.backend != "postgres" {
            continue;
        }
        let name = &db.url[db.url.rfind('/').unwrap() + 1..];
        let held = 0x3d32_ad9e_i64 * i64::from(crc32fast::hash(name.as_bytes()));
        let mut other = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(held)
            .execute(&mut other)
            .await
            .unwrap();
        let opening = futures_util::future::join_all((0..4).map(|_| Db::open(&db.url)));
        let opened = tokio::time::timeout(Duration::from_secs(60), opening)
            .await
            .expect("a replica waited on the advisory lock");
        let dbs: Vec<Db> = opened
            .into_iter()
            .map(|r| r.expect("a replica failed to migrate"))
            .collect();
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&dbs[0].pool)
            .await
            .unwrap();
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
            .count();
        assert_eq!(
            applied,
            i64::try_from(migrations).unwrap(),
            "each migration applied once"
        );
        let files: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM files")
            .fetch_one(&dbs[0].pool)
            .await
            .unwrap();
        assert_eq!(files, 0);
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    for db in databases().await {
        let pool = Db::open(&db.url).await.unwrap();
        let ttl = Duration::from_secs(30);
        let t = 1_000_000;
        // Tried: two replicas asking for the same job's lease, renewals, expiry and release.
        // Must hold: exactly one holder at any time.
        assert!(try_acquire(&pool, "repair", "a", ttl, t).await.unwrap());
        assert!(
            !try_acquire(&pool, "repair", "b", ttl, t + 1).await.unwrap(),
            "{}",
            db.backend
        );
        assert!(try_acquire(&pool, "repair", "a", ttl, t + 20).await.unwrap(), "renewal");
        assert!(
            !try_acquire(&pool, "repair", "b", ttl, t + 49).await.unwrap(),
            "renewed until t+50"
        );
        assert!(
            try_acquire(&pool, "repair", "b", ttl, t + 50).await.unwrap(),
            "expired: b takes over"
        );
        assert!(!try_acquire(&pool, "repair", "a", ttl, t + 51).await.unwrap());
        // Another job's lease is independent.
        assert!(try_acquire(&pool, "audit", "a", ttl, t + 51).await.unwrap());
        release(&pool, "repair", "a").await.unwrap();
        assert!(
            !try_acquire(&pool, "repair", "a", ttl, t + 52).await.unwrap(),
            "a cannot release b's lease"
        );
        release(&pool, "repair", "b").await.unwrap();
        assert!(
            try_acquire(&pool, "repair", "a", ttl, t + 52).await.unwrap(),
            "released: free at once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_through_one_replica_download_through_another() {
    for db in databases().await {
        // Replica one runs the workers; replica two has its own data directory holding only a
        // copy of the key file.
        let one = Server::start(db.dir.path(), &db.url, &["--local-workers", "10"]);
        assert!(wait_online(&one.url, 10).await, "{}:\n{}", db.backend, one.log_text());
        let two_dir = db.dir.path().join("replica-two");
        std::fs::create_dir_all(&two_dir).unwrap();
        std::fs::copy(db.dir.path().join("server.key"), two_dir.join("server.key")).unwrap();
        let two = Server::start(&two_dir, &db.url, &[]);

        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        let api_one = Api::new(&one.url).unwrap();
        let me = account::signup(&api_one, "ada@example.org", "pass phrase", KdfParams::MINIMUM, "one")
            .await
            .unwrap();
        let metadata = FileMetadata {
            name: "numbers.bin".to_owned(),
            mime: "application/octet-stream".to_owned(),
            size: data.len() as u64,
            attributes: Vec::new(),
        };
        let options = UploadOptions {
            chunk_size: Some(256 * 1024),
            ..UploadOptions::default()
        };
        let up = upload(
            &api_one.clone().with_token(&me.token),
            &me,
            std::io::Cursor::new(data.clone()),
            data.len() as u64,
            &metadata,
            &options,
            &|_| {},
        )
        .await
        .unwrap();

        // Log in at replica two (a session made there), list and download from there.
        let api_two = Api::new(&two.url).unwrap();
        let again = account::login(&api_two, "ada@example.org", "pass phrase", "two")
            .await
            .unwrap();
        let api_two = api_two.with_token(&again.token);
        let list = api_two.files().await.unwrap();
        assert_eq!(list.total, 1, "{}", db.backend);
        let answer = api_two.file(&up.summary.file_id.to_hex()).await.unwrap();
        let key = again
            .file_key(&up.summary.file_id, answer.wrapped_key.as_deref())
            .unwrap();
        let (_, out) = download::download(&answer, &key, Some(&again.public_key()), Vec::new(), &|_| {})
            .await
            .unwrap();
        assert!(
            out == data,
            "{}: the file came back different through replica two",
            db.backend
        );

        // Both replicas run the janitor loop; one lease row names one of them.
        let pool = Db::open(&db.url).await.unwrap();
        let holders: Vec<String> = sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'janitor'")
            .fetch_all(&pool.pool)
            .await
            .unwrap();
        assert_eq!(holders.len(), 1, "{}", db.backend);
        two.stop();
        one.stop();
    }
}
