//! What an operator's monitoring scrapes from a worker: `GET /metrics` in the Prometheus
//! (OpenMetrics) text format, on its own address (`--metrics-listen`), apart from the WebSocket
//! port clients and browsers reach. One registry per worker (not a global one: a server with
//! local workers runs several in one process).
//!
//! Counters are counted where things happen (bytes in and out, requests by kind and outcome,
//! token refusals by reason, connections); gauges that describe state (memory pools, disk use,
//! the scrubber's pass) are read when scraped. Names: `disktro_worker_` prefix, base units,
//! `_total` on counters.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use disktro_core::wire::{Body, ErrorCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

use crate::node::Node;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: &'static str,
    /// `ok`, or the refusal's error code (`token_expired`, `not_found`, …).
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: &'static str,
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// A worker's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Bytes read from clients' sockets and written to them (every frame, as on the wire).
    pub received_bytes: Counter,
    pub sent_bytes: Counter,
    pub requests: Family<RequestLabels, Counter>,
    pub in_flight: Gauge,
    pub connections: Gauge,
    /// Requests refused for their token, by reason.
    pub token_refusals: Family<ReasonLabels, Counter>,
    pub memory: Family<PoolLabels, Gauge>,
    pub disk: Family<StateLabels, Gauge>,
    pub shards: Family<StateLabels, Gauge>,
    pub scrub_passes: Gauge,
    pub scrub_checked: Gauge,
    pub scrub_pass_shards: Gauge,
    pub scrub_corrupt_found: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("disktro_worker");
        let received_bytes = Counter::default();
        registry.register_with_unit(
            "received",
            "Bytes received from clients",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let sent_bytes = Counter::default();
        registry.register_with_unit("sent", "Bytes sent to clients", Unit::Bytes, sent_bytes.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered, by kind and outcome", requests.clone());
        let in_flight = Gauge::default();
        registry.register("requests_in_flight", "Requests being handled", in_flight.clone());
        let connections = Gauge::default();
        registry.register("connections", "Client connections open", connections.clone());
        let token_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "token_refusals",
            "Requests refused for their token, by reason",
            token_refusals.clone(),
        );
        let memory = Family::<PoolLabels, Gauge>::default();
        registry.register_with_unit(
            "memory_budget",
            "The memory budget's pools (clients, background): capacity and bytes in use",
            Unit::Bytes,
            memory.clone(),
        );
        let disk = Family::<StateLabels, Gauge>::default();
        registry.register_with_unit(
            "disk",
            "Space offered (capacity) and used by shards",
            Unit::Bytes,
            disk.clone(),
        );
        let shards = Family::<StateLabels, Gauge>::default();
        registry.register("shards", "Shards held (stored, quarantined)", shards.clone());
        let scrub_passes = Gauge::default();
        registry.register(
            "scrub_passes",
            "Scrub passes finished since start",
            scrub_passes.clone(),
        );
        let scrub_checked = Gauge::default();
        registry.register(
            "scrub_checked_shards",
            "Shards checked in the current (or last) scrub pass",
            scrub_checked.clone(),
        );
        let scrub_pass_shards = Gauge::default();
        registry.register(
            "scrub_pass_shards",
            "Shards in the current (or last) scrub pass",
            scrub_pass_shards.clone(),
        );
        let scrub_corrupt_found = Gauge::default();
        registry.register(
            "scrub_corrupt_found",
            "Corrupt shards the scrubber found since start",
            scrub_corrupt_found.clone(),
        );
        // Every known series from the start, at zero: a rate over a series that appears only
        // with its first event misses that event, and dashboards show "no data" for "none".
        for kind in ["put", "get", "hello", "delete", "audit"] {
            let _ = requests.get_or_create(&RequestLabels { kind, outcome: "ok" });
        }
        for code in TOKEN_REFUSALS {
            let _ = token_refusals.get_or_create(&ReasonLabels { reason: code.name() });
        }
        Self {
            registry,
            received_bytes,
            sent_bytes,
            requests,
            in_flight,
            connections,
            token_refusals,
            memory,
            disk,
            shards,
            scrub_passes,
            scrub_checked,
            scrub_pass_shards,
            scrub_corrupt_found,
        }
    }
}

/// A request's kind, as labelled.
pub fn kind(body: &Body) -> &'static str {
    match body {
        Body::Put { .. } => "put",
        Body::Get { .. } => "get",
        Body::Hello { .. } => "hello",
        Body::Order { .. } => "order",
        Body::Delete { .. } => "delete",
        Body::AuditChallenge { .. } => "audit",
        _ => "other",
    }
}

/// Refusals that are about the token presented.
const TOKEN_REFUSALS: [ErrorCode; 8] = [
    ErrorCode::BadToken,
    ErrorCode::TokenExpired,
    ErrorCode::TokenReplayed,
    ErrorCode::WrongWorker,
    ErrorCode::WrongOperation,
    ErrorCode::NotInScope,
    ErrorCode::OverBudget,
    ErrorCode::Revoked,
];

fn about_the_token(code: ErrorCode) -> bool {
    TOKEN_REFUSALS.contains(&code)
}

/// A request in flight: counted in while it lives, by outcome when it ends.
#[derive(Debug)]
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
}

impl Metrics {
    /// A request of `kind` begins.
    pub fn request(&self, kind: &'static str) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight { metrics: self, kind }
    }

    /// The text exposition, with the state gauges read from `node` now.
    pub fn render(&self, node: &Node) -> String {
        let stats = node.store.stats();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (state, v) in [("capacity", stats.capacity), ("used", stats.used)] {
            self.disk.get_or_create(&StateLabels { state }).set(gauge(v));
        }
        for (state, v) in [("stored", stats.shards), ("quarantined", stats.quarantined)] {
            self.shards.get_or_create(&StateLabels { state }).set(gauge(v));
        }
        for (pool, capacity, available) in node.memory.pools() {
            let used = capacity.saturating_sub(available);
            for (state, v) in [("capacity", capacity), ("used", used)] {
                self.memory
                    .get_or_create(&PoolLabels { pool, state })
                    .set(gauge(v as u64));
            }
        }
        let scrub = node.scrub.snapshot();
        self.scrub_passes.set(gauge(scrub.passes));
        self.scrub_checked.set(gauge(scrub.checked));
        self.scrub_pass_shards.set(gauge(scrub.total));
        self.scrub_corrupt_found.set(gauge(scrub.corrupt_found));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl InFlight<'_> {
    /// It ended: answered, or refused with `refused`.
    pub fn ended(self, refused: Option<ErrorCode>) {
        let outcome = refused.map_or("ok", ErrorCode::name);
        if let Some(code) = refused.filter(|c| about_the_token(*c)) {
            self.metrics
                .token_refusals
                .get_or_create(&ReasonLabels { reason: code.name() })
                .inc();
        }
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                kind: self.kind,
                outcome,
            })
            .inc();
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// A client connection open while this lives.
#[derive(Debug)]
pub struct Connected(Gauge);

impl Connected {
    pub fn new(metrics: &Metrics) -> Self {
        metrics.connections.inc();
        Self(metrics.connections.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn scrape(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let text = node.metrics.render(&node);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Serve `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>, shutdown: CancellationToken) {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(node);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::warn!(error = %e, "the metrics endpoint stopped");
    }
}

/// Bind the metrics address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_refusals_are_told_apart_from_other_refusals() {
        assert!(about_the_token(ErrorCode::OverBudget));
        assert!(!about_the_token(ErrorCode::NotFound));
    }
}
