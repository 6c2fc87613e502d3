//! The server's settings: flags, `DISKTRO_*` environment variables and an optional TOML file
//! (`--config`; keys are the flag names with `_`). Flags and variables win over the file, the file
//! over the defaults; unknown keys in the file are refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use disktro_net::config::{self, ConfigError};

/// Disktro server: the web app, the JSON API and the control plane of a storage network.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(version, about)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// TOML file with any of these settings (keys are the flag names with `_`).
    #[arg(long, env = "DISKTRO_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Run a tool instead of the server.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// Address to listen on (port 0 picks a free port; the bound address is logged) [default: 127.0.0.1:3000].
    #[arg(long, env = "DISKTRO_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, the server key and local workers' data [default: data].
    #[arg(long, env = "DISKTRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL; `postgres://user:password@host/db` for PostgreSQL [default: SQLite in the data dir].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Token workers present to register [default: generated once, kept in the database, printed].
    #[arg(long, env = "DISKTRO_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Start this many storage workers in-process on 127.0.0.1 [default: 0].
    #[arg(long, env = "DISKTRO_LOCAL_WORKERS")]
    pub local_workers: Option<usize>,
    /// Capacity of each local worker, e.g. `10GiB` [default: 10GiB].
    #[arg(long, env = "DISKTRO_LOCAL_WORKER_CAPACITY")]
    pub local_worker_capacity: Option<String>,
    /// URL people and workers reach this server at [default: http(s)://<listen address>].
    #[arg(long, env = "DISKTRO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain: serve HTTPS on --listen (with --tls-key), no proxy needed.
    #[arg(long, env = "DISKTRO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "DISKTRO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Obtain and renew the HTTPS certificate over ACME from this CA directory (instead of
    /// --tls-cert/--tls-key), answering its tls-alpn-01 challenge on --listen, which must be
    /// port 443 as the CA sees it; e.g. https://acme-v02.api.letsencrypt.org/directory.
    #[arg(long, env = "DISKTRO_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// Domain of the ACME certificate (repeatable or comma-separated; the first is the public
    /// name, so the public URL defaults to https://<it>).
    #[arg(long = "acme-domain", env = "DISKTRO_ACME_DOMAIN", value_delimiter = ',')]
    pub acme_domain: Option<Vec<String>>,
    /// E-mail address the ACME CA may write to about the certificate.
    #[arg(long, env = "DISKTRO_ACME_CONTACT")]
    pub acme_contact: Option<String>,
    /// PEM bundle of the CA of the ACME directory's own HTTPS (a private or test ACME server).
    #[arg(long, env = "DISKTRO_ACME_CA_CERT")]
    pub acme_ca_cert: Option<PathBuf>,
    /// Also trust the CA certificates of this PEM bundle (a private network's own CA) when
    /// connecting to workers over wss://; the system's roots stay trusted.
    #[arg(long, env = "DISKTRO_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// With TLS: also listen here for plain HTTP and answer every request with a permanent
    /// redirect to the same path over HTTPS, e.g. `0.0.0.0:80` [default: none].
    #[arg(long, env = "DISKTRO_HTTP_REDIRECT")]
    pub http_redirect: Option<SocketAddr>,
    /// Storage quota of each new account, e.g. `10GiB` [default: 10GiB].
    #[arg(long, env = "DISKTRO_DEFAULT_QUOTA")]
    pub default_quota: Option<String>,
    /// A reverse proxy (address or range, repeatable or comma-separated) whose `X-Forwarded-For`
    /// names the client, for per-client limits [default: none, the TCP peer is the client].
    #[arg(long = "trusted-proxy", env = "DISKTRO_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Sign-ups accepted from one client address (an IPv6 /64) per 15 minutes; 0 for no limit [default: 5].
    #[arg(long, env = "DISKTRO_SIGNUPS_PER_ADDRESS")]
    pub signups_per_address: Option<u32>,
    /// Heartbeat period asked of workers; node health thresholds are multiples of it [default: 10s].
    #[arg(long, env = "DISKTRO_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// Lifetime of the get tokens a download is given; clients ask for fresh ones before they
    /// expire [default: 1h].
    #[arg(long, env = "DISKTRO_GET_TOKEN_TTL")]
    pub get_token_ttl: Option<String>,
    /// Time between audit rounds [default: 30s].
    #[arg(long, env = "DISKTRO_AUDIT_INTERVAL")]
    pub audit_interval: Option<String>,
    /// Every stored shard is audited at least once per this window [default: 24h].
    #[arg(long, env = "DISKTRO_AUDIT_WINDOW")]
    pub audit_window: Option<String>,
    /// An audit unanswered this long is a timeout; the shard is re-challenged [default: 10s].
    #[arg(long, env = "DISKTRO_AUDIT_TIMEOUT")]
    pub audit_timeout: Option<String>,
    /// Re-challenges of a timed-out shard before the audit counts as failed [default: 3].
    #[arg(long, env = "DISKTRO_AUDIT_RETRIES")]
    pub audit_retries: Option<u32>,
    /// Time between repair passes [default: 1m].
    #[arg(long, env = "DISKTRO_REPAIR_INTERVAL")]
    pub repair_interval: Option<String>,
    /// Chunks with at most k + this many healthy shards are reported at risk; every chunk below
    /// k + m is repaired, fewest healthy first [default: 2].
    #[arg(long, env = "DISKTRO_REPAIR_MARGIN")]
    pub repair_margin: Option<u32>,
    /// Nines a year a 1 GiB file should have under the stated failure model (10% of nodes lost a
    /// year, 24 h to repair): new uploads get the narrowest stripe that reaches it where the
    /// network allows (6+4, 9+6 or 12+8) [default: 11].
    #[arg(long, env = "DISKTRO_DURABILITY_TARGET")]
    pub durability_target: Option<f64>,
    /// Chunks repaired at once [default: 4].
    #[arg(long, env = "DISKTRO_REPAIR_CONCURRENCY")]
    pub repair_concurrency: Option<usize>,
    /// Time between garbage collection passes [default: 10m].
    #[arg(long, env = "DISKTRO_GC_INTERVAL")]
    pub gc_interval: Option<String>,
    /// Shards of deleted files are removed from workers after this long [default: 24h].
    #[arg(long, env = "DISKTRO_GC_GRACE")]
    pub gc_grace: Option<String>,
    /// Shards no file needs are removed once orphaned this long [default: 48h].
    #[arg(long, env = "DISKTRO_ORPHAN_GRACE")]
    pub orphan_grace: Option<String>,
    /// Time between rebalance passes (shards moved to workers below their share) [default: 10m].
    #[arg(long, env = "DISKTRO_REBALANCE_INTERVAL")]
    pub rebalance_interval: Option<String>,
    /// Time between rewards passes (storage accrual, egress settlement) [default: 1h].
    #[arg(long, env = "DISKTRO_REWARD_INTERVAL")]
    pub reward_interval: Option<String>,
    /// Time between passes of the hot-files job [default: 1m].
    #[arg(long, env = "DISKTRO_HOT_INTERVAL")]
    pub hot_interval: Option<String>,
    /// Reads of a file in ten minutes that make it hot: its shards are copied to the
    /// best-connected workers (never counted toward its redundancy) until it cools down; 0 for
    /// no copies [default: 20].
    #[arg(long, env = "DISKTRO_HOT_READS")]
    pub hot_reads: Option<u32>,
    /// Directory holding the built site (the `pkg/` bundle and static assets) [default: target/site].
    #[arg(long, env = "LEPTOS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,
}

/// Tools the server binary runs instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// How likely a file is to become unreadable: in an outage of part of the network, and per
    /// year under node churn with repair (the durability model; see DESIGN.md).
    Durability(crate::durability::model::Args),
}

/// Settings after defaults, units and checks.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub join_token: Option<String>,
    pub local_workers: usize,
    pub local_worker_capacity: u64,
    pub public_url: Option<String>,
    /// Serve HTTPS with these files.
    pub tls: Option<disktro_net::tls::TlsFiles>,
    /// Serve HTTPS with a certificate obtained over ACME.
    pub acme: Option<disktro_net::acme::AcmeSettings>,
    /// Trusted besides the system's roots, for wss:// to workers.
    pub ca_cert: Option<PathBuf>,
    /// Plain HTTP here redirects to HTTPS.
    pub http_redirect: Option<SocketAddr>,
    pub default_quota: u64,
    pub heartbeat_interval: Duration,
    pub get_token_ttl: Duration,
    pub site_root: PathBuf,
    pub durability: Durability,
    pub trusted_proxies: Vec<crate::client_addr::Cidr>,
    pub signups_per_address: u32,
}

impl Args {
    /// Flags over file over defaults.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let file: Self = config::file_layer(self.config.as_deref())?;
        macro_rules! pick {
            ($field:ident) => {
                disktro_net::pick!(self, file, $field)
            };
        }
        let size = |flag, value, default| Ok::<_, ConfigError>(config::size(flag, value)?.unwrap_or(default));
        let duration = |flag, value, default| Ok::<_, ConfigError>(config::duration(flag, value)?.unwrap_or(default));
        let d = Durability::default();
        let durability = Durability {
            audit_interval: duration("audit-interval", pick!(audit_interval), d.audit_interval)?,
            audit_window: duration("audit-window", pick!(audit_window), d.audit_window)?,
            audit_timeout: duration("audit-timeout", pick!(audit_timeout), d.audit_timeout)?,
            audit_retries: pick!(audit_retries).unwrap_or(d.audit_retries),
            repair_interval: duration("repair-interval", pick!(repair_interval), d.repair_interval)?,
            repair_margin: pick!(repair_margin).unwrap_or(d.repair_margin),
            durability_target: pick!(durability_target).unwrap_or(d.durability_target),
            repair_concurrency: pick!(repair_concurrency).unwrap_or(d.repair_concurrency).max(1),
            gc_interval: duration("gc-interval", pick!(gc_interval), d.gc_interval)?,
            gc_grace: duration("gc-grace", pick!(gc_grace), d.gc_grace)?,
            orphan_grace: duration("orphan-grace", pick!(orphan_grace), d.orphan_grace)?,
            rebalance_interval: duration("rebalance-interval", pick!(rebalance_interval), d.rebalance_interval)?,
            reward_interval: duration("reward-interval", pick!(reward_interval), d.reward_interval)?,
            hot_interval: duration("hot-interval", pick!(hot_interval), d.hot_interval)?,
            hot_reads: pick!(hot_reads).unwrap_or(d.hot_reads),
        };
        if !(1.0..=30.0).contains(&durability.durability_target) {
            return Err(ConfigError::Setting {
                flag: "durability-target",
                reason: format!(
                    "{} is not in nines from 1 to 30 (11: a 10^-11 chance a year)",
                    durability.durability_target
                ),
            });
        }
        if durability.audit_window < durability.audit_interval {
            return Err(ConfigError::Conflict(
                "--audit-window must be at least --audit-interval",
            ));
        }
        let tls = match (pick!(tls_cert), pick!(tls_key)) {
            (Some(cert), Some(key)) => Some(disktro_net::tls::TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError::Conflict("--tls-cert and --tls-key go together")),
        };
        let acme = disktro_net::acme::AcmeSettings::from_flags(
            pick!(acme_directory),
            pick!(acme_domain).unwrap_or_default(),
            pick!(acme_contact),
            pick!(acme_ca_cert),
        )?;
        if tls.is_some() && acme.is_some() {
            return Err(ConfigError::Conflict(
                "a certificate comes from --tls-cert/--tls-key or from --acme-directory, not both",
            ));
        }
        let http_redirect = pick!(http_redirect);
        if http_redirect.is_some() && tls.is_none() && acme.is_none() {
            return Err(ConfigError::Conflict(
                "--http-redirect redirects to HTTPS: it needs --tls-cert and --tls-key, or --acme-directory",
            ));
        }
        Ok(Settings {
            tls,
            acme,
            ca_cert: pick!(ca_cert),
            http_redirect,
            listen: pick!(listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
            data_dir: pick!(data_dir).unwrap_or_else(|| PathBuf::from("data")),
            database_url: pick!(database_url),
            join_token: pick!(join_token),
            local_workers: pick!(local_workers).unwrap_or(0),
            local_worker_capacity: size("local-worker-capacity", pick!(local_worker_capacity), 10 << 30)?,
            public_url: pick!(public_url).map(|u| u.trim_end_matches('/').to_owned()),
            default_quota: size("default-quota", pick!(default_quota), 10 << 30)?,
            heartbeat_interval: duration("heartbeat-interval", pick!(heartbeat_interval), Duration::from_secs(10))?,
            get_token_ttl: duration("get-token-ttl", pick!(get_token_ttl), crate::grants::GET_TOKEN_TTL)?,
            site_root: pick!(site_root).unwrap_or_else(|| PathBuf::from("target/site")),
            durability,
            trusted_proxies: pick!(trusted_proxies)
                .unwrap_or_default()
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(|e: crate::client_addr::BadCidr| ConfigError::setting("trusted-proxy", e))?,
            signups_per_address: pick!(signups_per_address).unwrap_or(crate::throttle::SIGNUPS_PER_SOURCE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings `docs/operators.md` tells an operator to write, read as written there.
    #[test]
    fn the_operators_guide_settings_are_read() {
        let guide = include_str!("../../docs/operators.md");
        let start = guide.find("cat > /etc/disktro/server.toml <<'TOML'\n").unwrap();
        let body = &guide[start..];
        let body = &body[body.find('\n').unwrap() + 1..body.find("\nTOML").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, body).unwrap();
        let s = Args::parse_from(["disktro-server", "--config", path.to_str().unwrap()])
            .into_settings()
            .unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://disktro.example.org"));
        let acme = s.acme.expect("ACME settings");
        assert_eq!(acme.domains, ["disktro.example.org"]);
        assert_eq!(acme.contact.as_deref(), Some("ops@example.org"));
        assert!(s.tls.is_none() && s.http_redirect.is_some());
        // A redirect without TLS is refused.
        let e = Args::parse_from(["disktro-server", "--http-redirect", "0.0.0.0:80"])
            .into_settings()
            .unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        // A certificate from files and over ACME at once is refused.
        let e = Args::parse_from([
            "disktro-server",
            "--config",
            path.to_str().unwrap(),
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .into_settings()
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/disktro\"\nlocal_workers = 4\ndefault_quota = \"1GiB\"\nlisten = \"0.0.0.0:8080\"\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "disktro-server",
            "--config",
            path.to_str().unwrap(),
            "--local-workers",
            "2",
        ]);
        let s = args.into_settings().unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/disktro"));
        assert_eq!(s.local_workers, 2, "the flag wins");
        assert_eq!(s.default_quota, 1 << 30);
        assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.heartbeat_interval, Duration::from_secs(10), "default");

        // Tried: an unknown key, a size without a number, a missing file. Must hold: a clear error.
        std::fs::write(&path, "local_wokers = 4\n").unwrap();
        let e = Args::parse_from(["disktro-server", "--config", path.to_str().unwrap()])
            .into_settings()
            .unwrap_err();
        assert!(e.to_string().contains("local_wokers"), "{e}");
        let e = Args::parse_from(["disktro-server", "--default-quota", "lots"])
            .into_settings()
            .unwrap_err();
        assert!(e.to_string().contains("--default-quota"), "{e}");
        let e = Args::parse_from(["disktro-server", "--config", "/nonexistent/server.toml"])
            .into_settings()
            .unwrap_err();
        assert!(e.to_string().contains("cannot read config"), "{e}");
    }
}

/// The durability jobs' settings (flags of the same names on `disktro-server`; see
/// [`crate::durability`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Durability {
    /// Time between audit rounds.
    pub audit_interval: Duration,
    /// Every stored shard is challenged at least once per this window.
    pub audit_window: Duration,
    /// An audit not answered within this long is a timeout (the shard is contained).
    pub audit_timeout: Duration,
    /// Re-challenges of a contained shard before its audit counts as failed.
    pub audit_retries: u32,
    pub repair_interval: Duration,
    /// Chunks with at most k + this many healthy shards are reported at risk (every chunk below
    /// k + m is repaired).
    pub repair_margin: u32,
    /// Nines a year of a 1 GiB file new uploads aim for ([`crate::durability::policy`]).
    pub durability_target: f64,
    /// Chunks repaired at once.
    pub repair_concurrency: usize,
    pub gc_interval: Duration,
    /// Shards of deleted files stay on workers this long (an undo window, and time for every
    /// reader of a manifest fetched before the delete).
    pub gc_grace: Duration,
    /// A shard a worker holds but no file needs is removed once it has been orphaned this long
    /// (and no upload that could still commit it is open).
    pub orphan_grace: Duration,
    pub rebalance_interval: Duration,
    pub reward_interval: Duration,
    /// Time between passes of the hot-files job.
    pub hot_interval: Duration,
    /// Reads in ten minutes that make a file hot (its shards copied to the best-connected
    /// workers); 0 makes no copies.
    pub hot_reads: u32,
}

impl Default for Durability {
    fn default() -> Self {
        Self {
            audit_interval: Duration::from_secs(30),
            audit_window: Duration::from_secs(24 * 3600),
            audit_timeout: Duration::from_secs(10),
            audit_retries: 3,
            repair_interval: Duration::from_secs(60),
            repair_margin: 2,
            durability_target: crate::durability::policy::DEFAULT_TARGET_NINES,
            repair_concurrency: 4,
            gc_interval: Duration::from_secs(600),
            gc_grace: Duration::from_secs(24 * 3600),
            orphan_grace: Duration::from_secs(48 * 3600),
            rebalance_interval: Duration::from_secs(600),
            reward_interval: Duration::from_secs(3600),
            hot_interval: Duration::from_secs(60),
            hot_reads: 20,
        }
    }
}
