//! Test support: a fresh database per test on SQLite and, when `DISKTRO_TEST_POSTGRES_URL` names
//! a PostgreSQL server (`make test` always does), on PostgreSQL too; and the server binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::Executor as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_disktro-server");

/// The server binary to run: `DISKTRO_SERVER_BIN` (a release build, for `make chaos`) or the one
/// cargo built next to this test.
pub fn server_bin() -> String {
    std::env::var("DISKTRO_SERVER_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// One database to run a test against.
pub struct TestDb {
    pub backend: &'static str,
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// SQLite always; PostgreSQL when configured, each test in a database of its own.
pub async fn databases() -> Vec<TestDb> {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let mut out = vec![TestDb {
        backend: "sqlite",
        url: disktro_server::db::sqlite_url(sqlite_dir.path()),
        dir: sqlite_dir,
    }];
    if let Ok(admin) = std::env::var("DISKTRO_TEST_POSTGRES_URL") {
        sqlx::any::install_default_drivers();
        let name = format!(
            "disktro_test_{}",
            disktro_core::ids::to_hex(&disktro_core::random_bytes::<8>())
        );
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("DISKTRO_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}"));
        // The name is made here from hex digits only.
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let base = &admin[..admin.rfind('/').expect("a database in the URL")];
        out.push(TestDb {
            backend: "postgres",
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().unwrap(),
        });
    }
    out
}

/// A server process.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    /// Start the binary on a free port with `args`; returns once it listens.
    pub fn start(data_dir: &std::path::Path, database_url: &str, args: &[&str]) -> Self {
        Self::start_on(None, data_dir, database_url, args)
    }

    /// [`Self::start`] with these environment variables set too.
    pub fn start_with_env(data_dir: &std::path::Path, database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(None, data_dir, database_url, args, env)
    }

    /// [`Self::start`] on `host` (its namespace, listening on its address), or on 127.0.0.1.
    pub fn start_on(host: Option<&Host>, data_dir: &std::path::Path, database_url: &str, args: &[&str]) -> Self {
        Self::launch(host, data_dir, database_url, args, &[])
    }

    fn launch(
        host: Option<&Host>,
        data_dir: &std::path::Path,
        database_url: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        // Tests talk to it with reqwest, which needs the process's TLS provider chosen.
        disktro_net::tls::install_default_provider();
        let log = data_dir.join(format!(
            "server-{}.log",
            disktro_core::ids::to_hex(&disktro_core::random_bytes::<4>())
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let err_file = log_file.try_clone().unwrap();
        let listen = host.map_or_else(|| "127.0.0.1:0".to_owned(), |h| format!("{}:0", h.address));
        let mut command = Host::command(host, server_bin());
        if !args.contains(&"--listen") {
            command.args(["--listen", &listen]);
        }
        let child = command
            .args(["--site-root", "target/site", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .unwrap();
        // Owned by `server` at once, so a failed start is killed and reaped by Drop.
        let mut server = Self {
            child,
            url: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = server.log_text();
            // `listening on http://…`, or `https://…` with TLS.
            if let Some(at) = text.find("listening on http") {
                let rest = &text[at + "listening on ".len()..];
                server.url = rest.split_whitespace().next().unwrap().to_owned();
                return server;
            }
            assert!(Instant::now() < deadline, "server did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}:\n{}", self.log_text());
                return;
            }
            assert!(Instant::now() < deadline, "server did not stop:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll an async condition until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f().await
}

/// The node list of the server at `url` (empty while it is unreachable).
pub async fn nodes_of(url: &str) -> Vec<serde_json::Value> {
    let Ok(res) = reqwest::get(format!("{url}/api/v1/nodes")).await else {
        return vec![];
    };
    res.json().await.unwrap_or_default()
}

/// Wait until the server at `url` lists `want` online nodes.
pub async fn wait_online(url: &str, want: usize) -> bool {
    eventually(Duration::from_secs(30), || async move {
        nodes_of(url).await.iter().filter(|n| n["status"] == "online").count() == want
    })
    .await
}

/// A host of [`Hosts`]: a network namespace and its address.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub address: String,
}

impl Host {
    /// A command running `program` on `host` (in its namespace), or here.
    pub fn command(host: Option<&Self>, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &h.netns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// Hosts on this machine (`scripts/netns`): network namespaces with addresses of their own in
/// 198.18.0.0/15, joined by a bridge this process reaches them through; removed when dropped.
pub struct Hosts {
    name: String,
    pub hosts: Vec<Host>,
    /// This (the root) namespace's address on the bridge: where a program run here is reached.
    pub bridge: String,
}

const NETNS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns");

impl Hosts {
    /// One host per name, or `None` when this process may not make namespaces (not root): the
    /// caller skips, and says so.
    pub fn up(names: &[&str]) -> Option<Self> {
        if !Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        {
            eprintln!("skipped: network namespaces need root (`make test` in CI runs as root)");
            return None;
        }
        let pid = std::process::id();
        let name = format!("dk{}", pid % 100_000);
        let subnet = format!("198.18.{}", 20 + pid % 200);
        // Made first: a failed `up` is cleaned up by its Drop.
        let mut made = Self {
            name: name.clone(),
            hosts: Vec::new(),
            bridge: format!("{subnet}.254"),
        };
        let out = Command::new(NETNS)
            .args(["up", &name, &subnet])
            .args(names)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "netns up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        made.hosts = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (host, address) = l.split_once(' ').unwrap();
                Host {
                    netns: format!("{name}-{host}"),
                    address: address.to_owned(),
                }
            })
            .collect();
        Some(made)
    }

    /// Every host reaches every other as `HOST.domain` (programs run here do not: they dial
    /// addresses, or resolve names themselves).
    pub fn name_under(&self, domain: &str) {
        let status = Command::new(NETNS)
            .args(["names", &self.name, domain])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Limit host `index`'s link to `rate` (e.g. `16mbit`) each way.
    pub fn limit(&self, index: usize, rate: &str) {
        let host = self.hosts[index]
            .netns
            .trim_start_matches(&format!("{}-", self.name))
            .to_owned();
        let status = Command::new(NETNS)
            .args(["rate", &self.name, &host, rate])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new(NETNS).args(["down", &self.name]).status();
    }
}

/// Must hold wherever shards were placed, moved or deleted: the shards and bytes the rebalancer
/// reads per node (`node_placed` with the changes not yet folded in) are those of the placement
/// rows themselves.
pub async fn assert_placed_totals_match(pool: &sqlx::AnyPool) {
    use sqlx::Row as _;
    let rows = |sql: &'static str| async move {
        let mut v: Vec<(String, i64, i64)> = sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("node_id"), r.get("shards"), r.get("bytes")))
            .collect();
        v.sort();
        v
    };
    let kept = rows(
        "SELECT node_id, CAST(SUM(shards) AS BIGINT) AS shards, CAST(SUM(bytes) AS BIGINT) AS bytes FROM \
         (SELECT node_id, shards, bytes FROM node_placed UNION ALL SELECT node_id, shards, bytes FROM node_placed_changes) AS t \
         GROUP BY node_id HAVING SUM(shards) <> 0 OR SUM(bytes) <> 0",
    )
    .await;
    let counted = rows(
        "SELECT node_id, COUNT(*) AS shards, CAST(SUM(size) AS BIGINT) AS bytes FROM file_shards GROUP BY node_id",
    )
    .await;
    assert_eq!(kept, counted, "the per-node placed totals drifted from the placements");
}
