//! What an operator's monitoring scrapes: `GET /metrics` in the Prometheus (OpenMetrics) text
//! format, one registry per server process (not a global one: tests run several servers in one
//! process).
//!
//! Counters are counted where things happen (requests, uploads, audits, repairs, collections,
//! ledger entries); gauges that describe state (the database pool, the repair queue) are read
//! when scraped. Names follow Prometheus conventions: `disktro_` prefix, base units (seconds,
//! bytes), `_total` on counters. Routes are labelled by their pattern (`/api/v1/files/{id}`),
//! never by the path asked, so the series stay few whatever clients send.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::context::Context;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub uploads_begun: Counter,
    pub uploads_committed: Counter,
    pub upload_replans: Counter,
    /// Audit answers by outcome (`pass`, `fail`, `unreachable`).
    pub audits: Family<OutcomeLabels, Counter>,
    /// Shards rebuilt and placed again by the repairer, and their bytes.
    pub repaired_shards: Counter,
    pub repaired_bytes: Counter,
    /// Shards deleted from workers by the garbage collector.
    pub collected_shards: Counter,
    /// Ledger entries appended, by kind (`storage`, `egress`).
    pub ledger_entries: Family<KindLabels, Counter>,
    /// Connections of the database pool, by state (`idle`, `busy`), read when scraped.
    pub db_connections: Family<StateLabels, Gauge>,
    /// The repairer's queue at its last pass, by state (`queued`, `deferred`: backing off), read
    /// when scraped; zero on a replica that does not hold the repair lease.
    pub repair_queue: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("disktro");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route pattern",
            Unit::Seconds,
            http_duration.clone(),
        );
        let uploads_begun = Counter::default();
        registry.register("uploads_begun", "Uploads begun", uploads_begun.clone());
        let uploads_committed = Counter::default();
        registry.register("uploads_committed", "Uploads committed", uploads_committed.clone());
        let upload_replans = Counter::default();
        registry.register(
            "upload_replans",
            "Replans of uploads whose workers failed",
            upload_replans.clone(),
        );
        let audits = Family::<OutcomeLabels, Counter>::default();
        registry.register("audits", "Audit challenges, by outcome", audits.clone());
        let repaired_shards = Counter::default();
        registry.register(
            "repaired_shards",
            "Shards rebuilt by the repairer and placed again",
            repaired_shards.clone(),
        );
        let repaired_bytes = Counter::default();
        registry.register_with_unit(
            "repaired",
            "Bytes of shards rebuilt by the repairer",
            Unit::Bytes,
            repaired_bytes.clone(),
        );
        let collected_shards = Counter::default();
        registry.register(
            "collected_shards",
            "Shards the garbage collector deleted from workers",
            collected_shards.clone(),
        );
        let ledger_entries = Family::<KindLabels, Counter>::default();
        registry.register(
            "ledger_entries",
            "Rewards ledger entries appended, by kind",
            ledger_entries.clone(),
        );
        let db_connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database pool connections, by state",
            db_connections.clone(),
        );
        let repair_queue = Family::<StateLabels, Gauge>::default();
        registry.register(
            "repair_queue_chunks",
            "Chunks the repairer has queued, by state, at its last pass",
            repair_queue.clone(),
        );
        // Every known series from the start, at zero: a rate over a series that appears only
        // with its first event misses that event, and dashboards show "no data" for "none".
        for outcome in ["pass", "fail", "timeout", "unreachable"] {
            let _ = audits.get_or_create(&OutcomeLabels { outcome });
        }
        for kind in ["storage", "egress"] {
            let _ = ledger_entries.get_or_create(&KindLabels { kind });
        }
        for state in ["idle", "busy"] {
            let _ = db_connections.get_or_create(&StateLabels { state });
        }
        for state in ["queued", "deferred"] {
            let _ = repair_queue.get_or_create(&StateLabels { state });
        }
        Self {
            registry,
            repair_queue,
            http_requests,
            http_duration,
            uploads_begun,
            uploads_committed,
            upload_replans,
            audits,
            repaired_shards,
            repaired_bytes,
            collected_shards,
            ledger_entries,
            db_connections,
        }
    }
}

impl Metrics {
    /// Count an audit answer.
    pub fn audit(&self, outcome: &'static str) {
        self.audits.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Count what a rewards pass appended.
    pub fn ledger_entries_appended(&self, accrued: crate::rewards::Accrued) {
        for (kind, n) in [("storage", accrued.storage_entries), ("egress", accrued.egress_entries)] {
            self.ledger_entries.get_or_create(&KindLabels { kind }).inc_by(n);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `GET /metrics`.
pub async fn scrape(State(ctx): State<Arc<Context>>) -> Response {
    let (size, idle) = ctx.db.pool_state();
    let m = &ctx.metrics;
    m.db_connections
        .get_or_create(&StateLabels { state: "idle" })
        .set(i64::from(idle));
    m.db_connections
        .get_or_create(&StateLabels { state: "busy" })
        .set(i64::from(size.saturating_sub(idle)));
    let repair: disktro_core::api::RepairProgress = crate::durability::progress(&ctx, "repair");
    for (state, n) in [("queued", repair.queued), ("deferred", repair.deferred)] {
        m.repair_queue
            .get_or_create(&StateLabels { state })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// Count every request by its route pattern (requests that match none are `unmatched`) and time
/// it.
pub async fn count_requests(State(ctx): State<Arc<Context>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = &ctx.metrics;
    m.http_duration
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
