//! The database: SQLite by default, PostgreSQL when the URL says `postgres://`, through sqlx's
//! `Any` driver so every query is written once (`$1` placeholders work on both).
//!
//! Migrations live in `migrations/`, written in the SQL both dialects share, embedded in the
//! binary and run at start-up. Times are unix seconds in `BIGINT` columns, ids are hex `TEXT` and
//! binary values base64url `TEXT`, so both backends hold the same values.

use std::path::Path;
use std::str::FromStr as _;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor as _};

static MIGRATIONS: Migrator = sqlx::migrate!("../migrations");

/// The table whose one row replicas lock in turn to migrate a PostgreSQL database (made before
/// the migrations, outside them).
pub const MIGRATION_LOCK: &str = "disktro_migration_lock";

/// Which database is behind the pool (for the few places where they differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    /// Where write transactions run ([`Db::begin_write`]): on SQLite a pool of one connection
    /// (SQLite has one writer at a time: writers wait their turn in the pool's queue, not in
    /// SQLite's busy handler, which sleeps up to 100 ms between tries while holding a connection
    /// readers could use); on PostgreSQL the same pool.
    writer: AnyPool,
    pub backend: Backend,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbError(String);

/// The default SQLite URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("disktro.db").display())
}

impl Db {
    /// Connections of the pool: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        (
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        )
    }

    /// Connect and migrate. `url` is `sqlite://…` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DbError(format!(
                "unsupported database URL {:?}: expected sqlite:// or postgres://",
                redact(url)
            )));
        };
        let options = AnyPoolOptions::new().max_connections(match backend {
            // Readers alongside the one writer ([`Db::writer`]) in WAL mode.
            Backend::Sqlite => 4,
            Backend::Postgres => postgres_pool_size(),
        });
        let pool = match backend {
            Backend::Sqlite => sqlite_pool(options, url).await,
            // `DISKTRO_DB_ISOLATION=serializable`: every transaction SERIALIZABLE, as CockroachDB
            // runs them; a conflict is a clean failure (40001) that the request runs again for
            // (`api::retry`). Not the default: 8 clients uploading to one account without pause
            // exhausted the retries on the account's row (docs/benchmarks-log.md, 2026-12-05).
            Backend::Postgres => {
                let serializable = serializable_wanted();
                options
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // No parallel query: every statement here reads a few index ranges,
                            // and the planner, estimating 84 shard rows per file id on 10 million
                            // rows, ran a 100-file statement of the repairer's search with two
                            // parallel workers: 12 ms, 8 of them starting the workers (4 ms
                            // without; `make bench-scale`, docs/benchmarks-log.md).
                            conn.execute("SET max_parallel_workers_per_gather = 0").await?;
                            if serializable {
                                conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
            }
        }
        .map_err(|e| DbError(format!("cannot open the database {}: {e}", redact(url))))?;
        let writer = match backend {
            Backend::Sqlite => sqlite_pool(AnyPoolOptions::new().max_connections(1), url)
                .await
                .map_err(|e| DbError(format!("cannot open the database {}: {e}", redact(url))))?,
            Backend::Postgres => pool.clone(),
        };
        let db = Self { pool, writer, backend };
        db.migrate(url)
            .await
            .map_err(|e| DbError(format!("database migration failed: {e}")))?;
        Ok(db)
    }

    /// Apply the migrations not applied yet. On PostgreSQL, replicas starting at once take turns
    /// by a row lock (`SELECT … FOR UPDATE` on [`MIGRATION_LOCK`]), not by sqlx's advisory lock,
    /// which CockroachDB does not have: the first applies what is missing while the others wait,
    /// then find nothing to do. The lock is held on a connection of its own (`url`), so the
    /// pool's size (`DISKTRO_DB_POOL` may be 1) leaves the migrator one. SQLite has one writer
    /// anyway.
    async fn migrate(&self, url: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Sqlite {
            MIGRATIONS.run(&self.pool).await?;
            return Ok(());
        }
        // Two replicas creating the table at once: one of them may fail on the catalog's unique
        // index; the table is there then.
        let create = format!("CREATE TABLE IF NOT EXISTS {MIGRATION_LOCK} (id BIGINT PRIMARY KEY)");
        if self.pool.execute(sqlx::AssertSqlSafe(create.clone())).await.is_err() {
            self.pool.execute(sqlx::AssertSqlSafe(create)).await?;
        }
        self.pool
            .execute(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {MIGRATION_LOCK} (id) VALUES (1) ON CONFLICT (id) DO NOTHING"
            )))
            .await?;
        let mut holder = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
        let mut turn = sqlx::Connection::begin(&mut holder).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM {MIGRATION_LOCK} WHERE id = 1 FOR UPDATE"
        )))
        .fetch_one(&mut *turn)
        .await?;
        let unlocked = Migrator {
            migrations: MIGRATIONS.migrations.clone(),
            ignore_missing: MIGRATIONS.ignore_missing,
            locking: false,
            no_tx: MIGRATIONS.no_tx,
            table_name: MIGRATIONS.table_name.clone(),
            create_schemas: MIGRATIONS.create_schemas.clone(),
        };
        let applied = unlocked.run(&self.pool).await;
        turn.commit().await?;
        applied.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN IMMEDIATE`:
    /// a deferred transaction that reads first and then writes fails with "database is locked"
    /// whenever another connection wrote in between (busy_timeout cannot help an upgrade), which
    /// concurrent uploads hit at once. PostgreSQL's row locks need no such care.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }
}

/// A pool of SQLite connections to `url`, each in WAL mode with a busy timeout (set on every
/// connection the pool opens).
async fn sqlite_pool(options: AnyPoolOptions, url: &str) -> Result<AnyPool, sqlx::Error> {
    let url = sqlx::any::AnyConnectOptions::from_str(url)?;
    options
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                // 32 MiB of pages per connection instead of SQLite's 2 MiB: a list page or a
                // begin on a database of millions of shard rows otherwise re-reads its index
                // pages from the OS every time (`make bench-scale`). A small database never
                // fills it.
                conn.execute("PRAGMA cache_size = -32768").await?;
                Ok(())
            })
        })
        .connect_with(url)
        .await
}

/// Connections to PostgreSQL: four per core, enough to keep the cores busy while transactions
/// wait on round trips, few enough that the database's own processes are not fighting over them
/// (more connections only queue inside PostgreSQL instead of inside the pool). Measured on
/// 2 cores (`make bench`, docs/benchmarks-log.md): 5 connections cost uploads 15%, 16 cost
/// manifest reads 3–15%. `DISKTRO_DB_POOL` overrides it, for a database on a bigger machine.
fn postgres_pool_size() -> u32 {
    std::env::var("DISKTRO_DB_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(64));
            (cores * 4).clamp(4, 64)
        })
}

impl Db {
    /// A transaction for counters alone (one atomic increment of a row, as the log-in throttle
    /// keeps): on PostgreSQL at READ COMMITTED, where concurrent increments of one row wait for
    /// each other's row lock and are each counted, instead of failing as serialization conflicts
    /// and running again one by one (under a guessing attack, every guess behind every other).
    /// An increment's outcome is the same at any isolation; nothing else may run in it.
    pub async fn begin_counter(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            (&mut *tx)
                .execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .await?;
        }
        Ok(tx)
    }
}

/// Whether `DISKTRO_DB_ISOLATION` asks for SERIALIZABLE transactions on PostgreSQL.
pub fn serializable_wanted() -> bool {
    std::env::var("DISKTRO_DB_ISOLATION").is_ok_and(|v| v.eq_ignore_ascii_case("serializable"))
}

/// Whether `e` is the database asking for the transaction to be run again: a serialization
/// failure (SQLSTATE 40001) or a deadlock (40P01). Nothing of the transaction was kept.
pub fn is_serialization_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// Errors that may be the database asking for a transaction to run again
/// ([`is_serialization_failure`] underneath): what the job runner runs a pass again at once for.
pub trait Conflict {
    fn is_conflict(&self) -> bool;
}

impl Conflict for sqlx::Error {
    fn is_conflict(&self) -> bool {
        is_serialization_failure(self)
    }
}

impl Conflict for super::StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, Self::Database(e) if is_serialization_failure(e))
    }
}

impl Conflict for crate::error::ServerError {
    fn is_conflict(&self) -> bool {
        matches!(self, Self::Database(e) if is_serialization_failure(e))
    }
}

/// A failure described in words only is never a conflict (tests' passes).
impl Conflict for String {
    fn is_conflict(&self) -> bool {
        false
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("postgres://disktro:s3cret@127.0.0.1:5432/disktro"),
            "postgres://disktro:***@127.0.0.1:5432/disktro"
        );
        assert_eq!(super::redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
