//! Worker settings: command-line flags, their environment variables, and an optional TOML file.
//!
//! Precedence: a flag (or its `DISKTRO_WORKER_*` variable) wins over the file, the file over the
//! defaults. The TOML keys are the flag names with `_` for `-` (`data_dir = "/srv/disktro"`).
//! [`WorkerConfig`] is what the library runs on, so the server can embed workers without flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use disktro_core::keys::PublicKey;
use disktro_core::wire::MAX_SHARD_LEN;
use serde::Deserialize;

use disktro_net::config;
pub use disktro_net::config::ConfigError;
pub use disktro_net::tls::TlsFiles;

/// Resource limits of the WebSocket service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent connections; when all are taken the oldest one without a valid token makes
    /// room, and only when none is left is a newcomer closed with "try again later".
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold.
    pub max_connections_per_address: usize,
    /// A connection must send a request with a valid token within this long.
    pub introduce_timeout: Duration,
    /// A request waits at most this long for memory, then is refused as busy.
    pub memory_wait: Duration,
    /// A message whose sender gives no byte for this long in its middle closes its connection.
    pub stall_timeout: Duration,
    /// Requests one connection may have in flight; the worker stops reading beyond it.
    pub max_in_flight: usize,
    /// Bytes of request and response data held in memory at once, over all connections.
    pub memory_budget: usize,
    /// Largest shard accepted.
    pub max_shard_len: usize,
    /// A connection with nothing in flight that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A client that does not take a response within this long is disconnected.
    pub write_timeout: Duration,
    /// TLS and WebSocket handshakes must finish within this long.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_address: 32,
            introduce_timeout: Duration::from_secs(5),
            memory_wait: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            max_in_flight: 32,
            memory_budget: 32 << 20,
            max_shard_len: MAX_SHARD_LEN,
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a worker runs on.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub listen: SocketAddr,
    /// Where `GET /metrics` is served (Prometheus); none: not served.
    pub metrics_listen: Option<SocketAddr>,
    pub ready_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub capacity: u64,
    /// The control server's base URL (`http://…`); none for a standalone worker.
    pub server: Option<String>,
    pub join_token: Option<String>,
    pub zone: String,
    /// Who runs this node (a failure domain beside the zone); empty: the node alone.
    pub operator: String,
    /// Browser origins allowed to connect (`*` for any). Requests without an Origin header (the
    /// CLI, the server) are always let through: tokens, not origins, authorize requests.
    pub allowed_origins: Vec<String>,
    pub tls: Option<TlsFiles>,
    /// Serve `wss://` with a certificate obtained over ACME (instead of `tls`).
    pub acme: Option<disktro_net::acme::AcmeSettings>,
    /// A CA bundle trusted besides the system's roots (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// The server's public key, when given instead of learnt at registration.
    pub issuer_key: Option<PublicKey>,
    /// The URL clients reach this worker at; by default `ws(s)://` + the bound address.
    pub advertise_url: Option<String>,
    pub limits: Limits,
    /// Scrubber read rate, bytes per second.
    pub scrub_rate: u64,
    /// Time between the starts of two scrub passes.
    pub scrub_interval: Duration,
    /// Heartbeat period until the server says otherwise.
    pub heartbeat_interval: Duration,
    /// How often a heartbeat carries a summary of the shards held.
    pub inventory_interval: Duration,
}

impl WorkerConfig {
    /// Defaults for a worker on `data_dir`, listening on an ephemeral loopback port.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            ready_file: None,
            data_dir: data_dir.into(),
            capacity: 10 << 30,
            server: None,
            join_token: None,
            zone: "default".to_owned(),
            operator: String::new(),
            allowed_origins: Vec::new(),
            ca_cert: None,
            tls: None,
            acme: None,
            issuer_key: None,
            advertise_url: None,
            limits: Limits::default(),
            scrub_rate: 32 << 20,
            scrub_interval: Duration::from_secs(24 * 3600),
            heartbeat_interval: Duration::from_secs(10),
            inventory_interval: Duration::from_secs(60),
        }
    }
}

/// Operator commands, run with the worker's own settings (`--config`, `--data-dir`, `--server`).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Leave the network without costing any file a shard: the server moves every shard held
    /// here to other nodes (keep the worker running), then marks the node exited.
    Drain {
        /// Withdraw the request: the node stays and gets new shards again.
        #[arg(long)]
        cancel: bool,
        /// Return once the server has the request instead of following the moves to the end.
        #[arg(long)]
        no_wait: bool,
    },
}

/// Disktro storage worker: stores erasure-coded shards for a Disktro network and serves them
/// over WebSockets to holders of server-signed tokens.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(version, about, long_about = None)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// TOML file with any of these settings (keys are the flag names with `_`).
    #[arg(long, env = "DISKTRO_WORKER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// What to do instead of serving (with the worker's own settings).
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:4000].
    #[arg(long, env = "DISKTRO_WORKER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, apart from the client port,
    /// e.g. `127.0.0.1:9464` [default: not served].
    #[arg(long, env = "DISKTRO_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Write the bound address, URL and node id (JSON) here once listening.
    #[arg(long, env = "DISKTRO_WORKER_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Where shards, the node key and the token book live [default: ./worker-data].
    #[arg(long, env = "DISKTRO_WORKER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Space offered to the network, e.g. `500GB` or `2TiB` [default: 10GiB].
    #[arg(long, env = "DISKTRO_WORKER_CAPACITY")]
    pub capacity: Option<String>,
    /// Control server URL, e.g. `https://disktro.example`.
    #[arg(long, env = "DISKTRO_WORKER_SERVER")]
    pub server: Option<String>,
    /// Join token printed by the server, needed to register.
    #[arg(long, env = "DISKTRO_WORKER_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Failure zone (site, rack): placement spreads a file's shards over zones [default: default].
    #[arg(long, env = "DISKTRO_WORKER_ZONE")]
    pub zone: Option<String>,
    /// Operator (person or organization running the node): nodes of one operator may fail
    /// together, so placement never puts more of a chunk's shards on one operator than on one
    /// zone [default: the node is its own operator].
    #[arg(long, env = "DISKTRO_WORKER_OPERATOR")]
    pub operator: Option<String>,
    /// Browser origin allowed to connect (repeatable; `*` for any) [default: the server's origin].
    #[arg(
        long = "allowed-origin",
        env = "DISKTRO_WORKER_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub allowed_origin: Vec<String>,
    /// PEM certificate chain: serve `wss://` (with --tls-key).
    #[arg(long, env = "DISKTRO_WORKER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "DISKTRO_WORKER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Obtain and renew the `wss://` certificate over ACME from this CA directory (instead of
    /// --tls-cert/--tls-key), answering its tls-alpn-01 challenge on --listen, which must be
    /// port 443 as the CA sees it; the worker then advertises wss://<first --acme-domain>.
    #[arg(long, env = "DISKTRO_WORKER_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// Domain of the ACME certificate (repeatable or comma-separated): this worker's own name.
    #[arg(long = "acme-domain", env = "DISKTRO_WORKER_ACME_DOMAIN", value_delimiter = ',')]
    pub acme_domain: Option<Vec<String>>,
    /// E-mail address the ACME CA may write to about the certificate.
    #[arg(long, env = "DISKTRO_WORKER_ACME_CONTACT")]
    pub acme_contact: Option<String>,
    /// PEM bundle of the CA of the ACME directory's own HTTPS (a private or test ACME server).
    #[arg(long, env = "DISKTRO_WORKER_ACME_CA_CERT")]
    pub acme_ca_cert: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM bundle (a private network's own CA) when
    /// talking to the server over HTTPS; the system's roots stay trusted.
    #[arg(long, env = "DISKTRO_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The server's public key (64 hex digits), for a worker that does not register.
    #[arg(long, env = "DISKTRO_WORKER_ISSUER_KEY")]
    pub issuer_key: Option<String>,
    /// URL clients use to reach this worker [default: ws(s)://<bound address>].
    #[arg(long, env = "DISKTRO_WORKER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Maximum concurrent connections [default: 256].
    #[arg(long, env = "DISKTRO_WORKER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Maximum concurrent connections from one address (an IPv6 /64) [default: 32].
    #[arg(long, env = "DISKTRO_WORKER_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Maximum requests in flight per connection [default: 32].
    #[arg(long, env = "DISKTRO_WORKER_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Memory for request and response data, all connections together [default: 32MiB].
    #[arg(long, env = "DISKTRO_WORKER_MEMORY_BUDGET")]
    pub memory_budget: Option<String>,
    /// Close connections idle this long [default: 2m].
    #[arg(long, env = "DISKTRO_WORKER_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Disconnect clients that take no response for this long [default: 30s].
    #[arg(long, env = "DISKTRO_WORKER_WRITE_TIMEOUT")]
    pub write_timeout: Option<String>,
    /// Scrubber read rate [default: 32MiB per second].
    #[arg(long, env = "DISKTRO_WORKER_SCRUB_RATE")]
    pub scrub_rate: Option<String>,
    /// Time between scrub passes [default: 24h].
    #[arg(long, env = "DISKTRO_WORKER_SCRUB_INTERVAL")]
    pub scrub_interval: Option<String>,
    /// Heartbeat period [default: 10s].
    #[arg(long, env = "DISKTRO_WORKER_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// How often a heartbeat carries a summary of the shards held [default: 1m].
    #[arg(long, env = "DISKTRO_WORKER_INVENTORY_INTERVAL")]
    pub inventory_interval: Option<String>,
}

impl Args {
    /// Flags over file over defaults.
    pub fn into_config(self) -> Result<WorkerConfig, ConfigError> {
        let file: Self = config::file_layer(self.config.as_deref())?;
        macro_rules! pick {
            ($field:ident) => {
                disktro_net::pick!(self, file, $field)
            };
        }
        let data_dir = pick!(data_dir).unwrap_or_else(|| PathBuf::from("worker-data"));
        let mut config = WorkerConfig::new(data_dir);
        config.listen = pick!(listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000)));
        config.metrics_listen = pick!(metrics_listen);
        config.ready_file = pick!(ready_file);
        if let Some(c) = config::size("capacity", pick!(capacity))? {
            config.capacity = c;
        }
        config.server = pick!(server).map(|s| s.trim_end_matches('/').to_owned());
        if let Some(server) = &config.server
            && !(server.starts_with("http://") || server.starts_with("https://"))
        {
            return Err(ConfigError::setting(
                "server",
                format!("{server:?}: expected an http:// or https:// URL"),
            ));
        }
        config.join_token = pick!(join_token);
        if config.server.is_some() && config.join_token.is_none() {
            return Err(ConfigError::Conflict(
                "--server needs --join-token (the server prints it at start-up)",
            ));
        }
        if let Some(zone) = pick!(zone) {
            config.zone = zone;
        }
        if let Some(operator) = pick!(operator) {
            config.operator = operator;
        }
        config.allowed_origins = if self.allowed_origin.is_empty() {
            file.allowed_origin
        } else {
            self.allowed_origin
        };
        if config.allowed_origins.is_empty()
            && let Some(server) = &config.server
        {
            config.allowed_origins.push(config::origin_of(server));
        }
        config.tls = match (pick!(tls_cert), pick!(tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError::Conflict("--tls-cert and --tls-key go together")),
        };
        config.acme = disktro_net::acme::AcmeSettings::from_flags(
            pick!(acme_directory),
            pick!(acme_domain).unwrap_or_default(),
            pick!(acme_contact),
            pick!(acme_ca_cert),
        )?;
        if config.tls.is_some() && config.acme.is_some() {
            return Err(ConfigError::Conflict(
                "a certificate comes from --tls-cert/--tls-key or from --acme-directory, not both",
            ));
        }
        config.ca_cert = pick!(ca_cert);
        if let Some(hex) = pick!(issuer_key) {
            let bytes = disktro_core::ids::from_hex::<32>(hex.trim())
                .map_err(|_| ConfigError::setting("issuer-key", "expected 64 hex digits"))?;
            config.issuer_key = Some(PublicKey(bytes));
        }
        config.advertise_url = pick!(advertise_url);
        let limits = &mut config.limits;
        if let Some(n) = pick!(max_connections) {
            limits.max_connections = n.max(1);
        }
        if let Some(n) = pick!(max_connections_per_address) {
            limits.max_connections_per_address = n.max(1);
        }
        if let Some(n) = pick!(max_in_flight) {
            limits.max_in_flight = n.max(1);
        }
        if let Some(bytes) = config::size("memory-budget", pick!(memory_budget))? {
            limits.memory_budget = usize::try_from(bytes)
                .ok()
                .filter(|b| *b >= 1 << 20)
                .ok_or_else(|| ConfigError::setting("memory-budget", "at least 1MiB"))?;
        }
        if let Some(d) = config::duration("idle-timeout", pick!(idle_timeout))? {
            limits.idle_timeout = d;
            // A handshake is never allowed longer than an idle connection.
            limits.handshake_timeout = limits.handshake_timeout.min(d);
        }
        if let Some(d) = config::duration("write-timeout", pick!(write_timeout))? {
            limits.write_timeout = d;
        }
        if let Some(rate) = config::size("scrub-rate", pick!(scrub_rate))? {
            config.scrub_rate = rate.max(1);
        }
        if let Some(d) = config::duration("scrub-interval", pick!(scrub_interval))? {
            config.scrub_interval = d;
        }
        if let Some(d) = config::duration("inventory-interval", pick!(inventory_interval))? {
            config.inventory_interval = d;
        }
        if let Some(d) = config::duration("heartbeat-interval", pick!(heartbeat_interval))? {
            config.heartbeat_interval = d;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings `docs/operators.md` tells an operator to write, read as written there.
    #[test]
    fn the_operators_guide_settings_are_read() {
        let guide = include_str!("../../docs/operators.md");
        let start = guide.find("cat > /etc/disktro/worker.toml <<'TOML'\n").unwrap();
        let body = &guide[start..];
        let body = &body[body.find('\n').unwrap() + 1..body.find("\nTOML").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(&path, body).unwrap();
        let c = Args::parse_from(["disktro-worker", "--config", path.to_str().unwrap()])
            .into_config()
            .unwrap();
        assert_eq!(c.advertise_url, None, "derived from the ACME domain");
        assert_eq!(c.metrics_listen, Some("10.0.0.5:9464".parse().unwrap()));
        assert_eq!(c.acme.expect("ACME settings").public_name(), "node1.hosting.example");
        assert!(c.tls.is_none());
        assert_eq!(c.operator, "hosting-example");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/d\"\ncapacity = \"2TiB\"\nzone = \"rack-1\"\nidle_timeout = \"5m\"\n",
        )
        .unwrap();
        let args = Args::parse_from(["disktro-worker", "--config", path.to_str().unwrap(), "--zone", "rack-2"]);
        let config = args.into_config().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/d"));
        assert_eq!(config.capacity, 2 << 40);
        assert_eq!(config.zone, "rack-2");
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 4000)));
    }

    #[test]
    fn bad_settings_are_named() {
        // Tried: an unknown TOML key, a capacity without a number, a server without a join token,
        // a short issuer key. Must hold: an error naming the setting.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(&path, "capacityy = \"1GB\"\n").unwrap();
        let err = Args::parse_from(["w", "--config", path.to_str().unwrap()])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("capacityy"), "{err}");
        let err = Args::parse_from(["w", "--capacity", "lots"]).into_config().unwrap_err();
        assert!(err.to_string().contains("--capacity"), "{err}");
        let err = Args::parse_from(["w", "--server", "http://s"])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("--join-token"), "{err}");
        let err = Args::parse_from(["w", "--issuer-key", "abcd"])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("--issuer-key"), "{err}");
    }

    #[test]
    fn the_server_origin_is_allowed_by_default() {
        let config = Args::parse_from(["w", "--server", "https://disktro.example/app/", "--join-token", "t"])
            .into_config()
            .unwrap();
        assert_eq!(config.allowed_origins, ["https://disktro.example"]);
    }
}
