//! `disktro-worker`: the storage worker as a library, so the server can embed local workers.
//!
//! - [`store`]: shards on disk, durable and content-addressed; [`durable`] is its crash-safe write.
//! - [`admission`]: token checks, budgets and single-use serials.
//! - [`handler`]: one request to one response; [`connection`]: one multiplexed WebSocket;
//!   [`listener`]: accepting, TLS ([`tls`]), Origin checks; [`slots`]: connection limits and
//!   eviction of strangers; [`gate`]: what a socket may make the worker buffer;
//!   [`memory`]: the memory budget's pools and each connection's share.
//! - [`scrub`]: background re-hashing; [`control`]: registration and heartbeats, which carry
//!   inventory summaries of what the worker holds and its egress claims (the JSON of both is
//!   `disktro_core::api::node`, shared with the server).
//! - [`metrics`]: `GET /metrics` (Prometheus) on its own address, for operators' monitoring.
//! - [`config`], [`node`]: settings, and the state one running worker shares.
//!
//! The protocol client, TLS, durable writes, the node key file and units live in `disktro-net`,
//! shared with the server and the CLI.
//!
//! [`start`] runs a whole worker and returns a [`RunningWorker`] handle.

pub mod admission;
pub mod config;
pub mod connection;
pub mod control;
pub mod drain;
pub mod gate;
pub mod handler;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod node;
pub mod scrub;
pub mod slots;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use disktro_core::NodeId;
use disktro_core::keys::PublicKey;
use disktro_net::{durable, keyfile, tls};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::WorkerConfig;
use node::Node;

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    NodeKey(#[from] keyfile::KeyFileError),
    #[error("cannot open the shard store: {0}")]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    PinnedKey(#[from] control::PinnedKeyError),
    #[error("--issuer-key {given} differs from the server key pinned in {} ({pinned})", path.display())]
    IssuerMismatch {
        given: String,
        pinned: String,
        path: std::path::PathBuf,
    },
    #[error("cannot open the serial book: {0}")]
    SerialBook(std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot set up ACME: {0}")]
    Acme(#[from] disktro_net::acme::AcmeError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot write the ready file {}: {source}", path.display())]
    ReadyFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What `--ready-file` receives once the worker listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub listen: SocketAddr,
    pub url: String,
    pub node_id: String,
    pub public_key: String,
    /// Where `GET /metrics` is served, when it is (`--metrics-listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
}

/// A started worker.
#[derive(Debug)]
pub struct RunningWorker {
    pub local_addr: SocketAddr,
    pub url: String,
    pub node_id: NodeId,
    pub public_key: PublicKey,
    node: Arc<Node>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl RunningWorker {
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Stop accepting, let in-flight requests finish, close connections, and return when done.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn write_ready_file(path: &Path, info: &ReadyInfo) -> std::io::Result<()> {
    durable::replace(path, &serde_json::to_vec_pretty(info).expect("plain struct"))
}

/// Open the data directory, bind, and start serving and the background tasks.
pub async fn start(config: WorkerConfig) -> Result<RunningWorker, StartError> {
    tls::install_default_provider();
    if let Some(path) = &config.ca_cert {
        tls::trust(path)?;
    }
    let data_dir = config.data_dir.clone();
    let capacity = config.capacity;
    let (store, keypair, pinned) = tokio::task::spawn_blocking(move || {
        let (keypair, created) = keyfile::load_or_create(&data_dir)?;
        if created {
            tracing::info!(data_dir = %data_dir.display(), "created a new node identity");
        }
        let store = store::ShardStore::open(&data_dir, capacity)?;
        let pinned = control::pinned_server_key(&data_dir)?;
        Ok::<_, StartError>((store, keypair, pinned))
    })
    .await
    .expect("opening the data directory does not panic")?;

    if let (Some(given), Some(pinned)) = (config.issuer_key, pinned)
        && given != pinned
    {
        return Err(StartError::IssuerMismatch {
            given: given.fingerprint(),
            pinned: pinned.fingerprint(),
            path: config.data_dir.join(control::PINNED_KEY_FILE),
        });
    }
    let node_id = keypair.public().node_id();
    let admission = admission::Admission::open(
        &config.data_dir,
        node_id,
        config.issuer_key.or(pinned),
        disktro_net::unix_now(),
    )
    .map_err(StartError::SerialBook)?;
    let acme = match &config.acme {
        Some(settings) => Some(Arc::new(disktro_net::acme::Acme::open(
            settings.clone(),
            &config.data_dir,
        )?)),
        None => None,
    };
    let tls = match (&config.tls, &acme) {
        (Some(files), _) => Some(tls::acceptor(files)?),
        (None, Some(acme)) => Some(acme.acceptor()),
        (None, None) => None,
    };
    let stats = store.stats();
    if stats.stale_temp_files_removed > 0 {
        tracing::info!(
            count = stats.stale_temp_files_removed,
            "removed temp files left by an interrupted run"
        );
    }
    let public_key = keypair.public();
    let node = Arc::new(Node::new(store, keypair, admission, config.limits));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            metrics::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = config.advertise_url.clone().unwrap_or_else(|| match &acme {
        // The certificate names the domain, not the address: that is what clients must dial.
        Some(acme) if local_addr.port() == 443 => format!("wss://{}", acme.settings().public_name()),
        Some(acme) => format!("wss://{}:{}", acme.settings().public_name(), local_addr.port()),
        None => format!("{scheme}://{local_addr}"),
    });

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(listener::run(
        listener,
        tls,
        Arc::clone(&node),
        Arc::new(config.allowed_origins.clone()),
        shutdown.clone(),
    ));
    if let Some(acme) = acme {
        // After the listener: the CA connects to it to validate the domain.
        tasks.spawn(acme.run(shutdown.clone()));
    }
    if let Some(listener) = metrics_listener {
        tasks.spawn(metrics::serve(listener, Arc::clone(&node), shutdown.clone()));
    }
    tasks.spawn(scrub::run(
        Arc::clone(&node),
        config.scrub_rate,
        config.scrub_interval,
        shutdown.clone(),
    ));
    if let (Some(server), Some(join_token)) = (&config.server, &config.join_token) {
        let control = control::ControlConfig {
            server: server.clone(),
            join_token: join_token.clone(),
            url: url.clone(),
            zone: config.zone.clone(),
            operator: config.operator.clone(),
            data_dir: config.data_dir.clone(),
            interval: config.heartbeat_interval,
            inventory_interval: config.inventory_interval,
            expected_server_key: config.issuer_key,
        };
        tasks.spawn(control::run(Arc::clone(&node), control, shutdown.clone()));
    }

    tracing::info!(
        %url,
        node_id = %node_id,
        shards = stats.shards,
        used = stats.used,
        capacity = stats.capacity,
        "worker listening"
    );
    if let Some(path) = &config.ready_file {
        let info = ReadyInfo {
            listen: local_addr,
            url: url.clone(),
            node_id: node_id.to_hex(),
            public_key: disktro_core::ids::to_hex(public_key.as_bytes()),
            metrics: metrics_addr,
        };
        write_ready_file(path, &info).map_err(|source| StartError::ReadyFile {
            path: path.clone(),
            source,
        })?;
    }
    Ok(RunningWorker {
        local_addr,
        url,
        node_id,
        public_key,
        node,
        shutdown,
        tasks,
    })
}
