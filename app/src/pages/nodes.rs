//! The operators' view: every storage node with its health and reputation (`/nodes`), one node
//! with charts of capacity, traffic and audit score over time and its earnings per day
//! (`/nodes/<id>`), and the network at a glance for the home page.
//! All of it is public, polled from the API every few seconds so it updates without a reload,
//! and the charts are SVG drawn here.

use crate::error::Failure;
use disktro_core::api::{DailyEarnings, DurabilityStatus, NodeSample, NodeStatus, NodeView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::format;

/// How often the lists refresh.
const POLL_MS: u64 = 2_000;

/// A polled value: `None` until the first answer.
type Polled<T> = RwSignal<Option<Result<T, Failure>>>;

/// Fetch `path` now and every `every_ms` while the page is shown.
fn poll<T>(path: impl Fn() -> String + Send + Sync + 'static, every_ms: u64) -> Polled<T>
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let value: Polled<T> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    {
        let path = std::sync::Arc::new(path);
        let fetch = move || {
            let path = path();
            leptos::task::spawn_local(async move {
                let got = crate::browser::api::Api::default()
                    .get::<T>(&path)
                    .await
                    .map_err(Failure::Api);
                value.set(Some(got));
            });
        };
        let first = fetch.clone();
        Effect::new(first);
        if let Ok(handle) = set_interval_with_handle(fetch, std::time::Duration::from_millis(every_ms)) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (path, every_ms);
    value
}

fn now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        i64::try_from(format::whole(js_sys::Date::now() / 1000.0)).unwrap_or(0)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

fn status_word(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Online => "online",
        NodeStatus::Suspect => "suspect",
        NodeStatus::Offline => "offline",
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn used_pct(n: &NodeView) -> f64 {
    if n.capacity <= 0 {
        0.0
    } else {
        (n.used as f64 * 100.0 / n.capacity as f64).clamp(0.0, 100.0)
    }
}

/// A score in millionths as a decimal.
fn score(v: i64) -> String {
    format!("{:.3}", v as f64 / 1e6)
}

/// An arrow for the score's change over the last hour.
fn trend(now: i64, before: i64) -> &'static str {
    match now.cmp(&before) {
        std::cmp::Ordering::Greater => "↑",
        std::cmp::Ordering::Less => "↓",
        std::cmp::Ordering::Equal => "→",
    }
}

/// The audits cell: pass rate, score and its trend.
fn audits(n: &NodeView) -> AnyView {
    let total = n.audits_passed + n.audits_failed;
    if total == 0 {
        return view! { <span class="muted" title="Not audited yet">"no audits yet"</span> }.into_any();
    }
    let rate = n.audits_passed as f64 * 100.0 / total as f64;
    let title = format!(
        "{} passed, {} failed; audit score {} (an hour ago {}), online score {}",
        n.audits_passed,
        n.audits_failed,
        score(n.audit_score),
        score(n.audit_score_before),
        score(n.online_score)
    );
    view! {
        <span title=title data-testid="audit-rate">{format!("{rate:.1}% of {total}")}</span>
        " "<span class="muted">{format!("score {} {}", score(n.audit_score), trend(n.audit_score, n.audit_score_before))}</span>
    }
    .into_any()
}

/// A tag for a node that is not simply active, with the reason: suspended or disqualified
/// (bad news), or draining or exited (an operator's choice).
fn state_tag(n: &NodeView) -> Option<AnyView> {
    (!n.state.is_empty() && n.state != "active").then(|| {
        let class = if matches!(n.state.as_str(), "draining" | "exited") {
            "tag"
        } else {
            "tag bad"
        };
        view! { <span class=class title=n.state_reason.clone() data-testid="node-state">{n.state.clone()}</span> }
            .into_any()
    })
}

/// The network at a glance (home page).
#[component]
pub fn NetworkGlance() -> impl IntoView {
    let nodes = poll::<Vec<NodeView>>(|| "/nodes".to_owned(), POLL_MS * 2);
    let health = poll::<DurabilityStatus>(|| "/durability".to_owned(), POLL_MS * 5);
    let redundancy = move || match health.get() {
        Some(Ok(d)) if d.chunks > 0 => format!("{} / {}", d.full, d.chunks),
        Some(Ok(_)) => "–".to_owned(),
        _ => "…".to_owned(),
    };
    let zones = move || match health.get() {
        Some(Ok(d)) => format!("{} of {}", d.zones_survivable, d.zones),
        _ => "…".to_owned(),
    };
    view! {
        <section class="panel" aria-labelledby="glance-title">
            <h2 id="glance-title">"The network now"</h2>
            {move || match nodes.get() {
                None => view! { <p class="muted">"Asking the server…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                Some(Ok(list)) => {
                    let online = list.iter().filter(|n| n.status == NodeStatus::Online).count();
                    let capacity: i64 = list.iter().filter(|n| n.status == NodeStatus::Online).map(|n| n.capacity).sum();
                    let used: i64 = list.iter().map(|n| n.used).sum();
                    let shards: i64 = list.iter().map(|n| n.shards).sum();
                    view! {
                        <div class="stats">
                            <div class="stat"><span class="stat-n" data-testid="glance-online">{format!("{online} / {}", list.len())}</span><span class="muted">"nodes online"</span></div>
                            <div class="stat"><span class="stat-n">{format::bytes_i(capacity)}</span><span class="muted">"capacity online"</span></div>
                            <div class="stat"><span class="stat-n">{format::bytes_i(used)}</span><span class="muted">"stored"</span></div>
                            <div class="stat"><span class="stat-n">{shards}</span><span class="muted">"shards"</span></div>
                            <div class="stat"><span class="stat-n">"6 + 4"</span><span class="muted">"shards per chunk (any 6 rebuild it)"</span></div>
                            <div class="stat"><span class="stat-n" data-testid="glance-full">{redundancy}</span><span class="muted">"chunks at full redundancy"</span></div>
                            <div class="stat"><span class="stat-n" data-testid="glance-zones">{zones}</span><span class="muted">"whole zones a new file survives losing"</span></div>
                        </div>
                        <p><a href="/nodes">"All nodes →"</a></p>
                    }.into_any()
                }
            }}
        </section>
    }
}

/// `Some(secs)` as a duration, `None` as a dash (nothing measured yet).
fn seconds(v: Option<u64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format::duration(s as f64))
}

/// One figure of a stats grid.
fn stat(value: String, label: &'static str, testid: &'static str) -> impl IntoView {
    view! { <div class="stat"><span class="stat-n" data-testid=testid>{value}</span><span class="muted">{label}</span></div> }
}

/// The network's durability for operators: chunks by health, the repairer's queue, rate and
/// times to detect and to repair, and the rebalancer's progress (`/api/v1/durability`).
#[component]
fn DurabilityPanel() -> impl IntoView {
    // Every 10 s, as the home page's glance: counting chunks by health reads every placement,
    // which an open dashboard should not ask for every 2 s.
    let health = poll::<DurabilityStatus>(|| "/durability".to_owned(), POLL_MS * 5);
    view! {
        <section class="panel" aria-labelledby="durability-title" data-testid="durability-panel">
            <h2 id="durability-title">"Durability"</h2>
            {move || match health.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Some(Ok(d)) => {
                    let (r, b) = (&d.repair, &d.rebalance);
                    view! {
                        <div class="stats">
                            {stat(format!("{} / {}", d.full, d.chunks), "chunks at full redundancy", "durability-full")}
                            {stat(d.degraded.to_string(), "missing a shard, still readable", "durability-degraded")}
                            {stat(d.at_risk.to_string(), "at risk (near the minimum)", "durability-at-risk")}
                            {stat(d.unreadable.to_string(), "unreadable until workers return", "durability-unreadable")}
                            {stat(format!("{} of {}", d.zones_survivable, d.zones), "whole zones a new file survives losing", "durability-zones")}
                        </div>
                        <h3>"Repair"</h3>
                        <div class="stats">
                            {stat(format!("{} of {}", r.done, r.queued), if r.running { "chunks below full handled, pass running" } else { "chunks below full handled by the last pass" }, "repair-queue")}
                            {stat(r.deferred.to_string(), "chunks waiting to retry (no worker could take a shard)", "repair-deferred")}
                            {stat(format!("{} ({} shards)", format::bytes(r.bytes_rebuilt), r.shards_rebuilt), "rebuilt since start-up", "repair-rebuilt")}
                            {stat(if r.last_pass_bytes_per_sec > 0 { format::rate(r.last_pass_bytes_per_sec, 1000.0) } else { "—".to_owned() }, "rebuild rate of the last pass that rebuilt", "repair-rate")}
                            {stat(format!("{} / {}", seconds(r.time_to_detect_p50_secs), seconds(r.time_to_detect_max_secs)), "time to detect a loss (median / worst)", "repair-detect")}
                            {stat(format!("{} / {}", seconds(r.time_to_repair_p50_secs), seconds(r.time_to_repair_max_secs)), "time to repair a chunk (median / worst)", "repair-time")}
                        </div>
                        <p class="muted">{format!(
                            "Since start-up: {} chunks repaired; {} repair attempts failed (such a chunk waits, then is tried again).",
                            r.chunks_repaired, r.chunks_failed
                        )}</p>
                        <h3>"Rebalance"</h3>
                        <div class="stats">
                            {stat(b.unbalanced.to_string(), "workers off their share by more than 10%", "rebalance-unbalanced")}
                            {stat(format!("{}%", b.worst_pct), "farthest from its share", "rebalance-worst")}
                            {stat(format!("{} ({})", b.shards_moved, format::bytes(b.bytes_moved)), "shards moved since start-up", "rebalance-moved")}
                        </div>
                    }.into_any()
                }
            }}
        </section>
    }
}

#[component]
pub fn NodesPage() -> impl IntoView {
    let nodes = poll::<Vec<NodeView>>(|| "/nodes".to_owned(), POLL_MS);
    view! {
        <section class="panel" aria-labelledby="nodes-title">
            <div class="panel-head">
                <h1 id="nodes-title">"Storage nodes"</h1>
                <span class="muted">"Live: refreshed every 2 s"</span>
            </div>
            {move || match nodes.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="muted">"No node has registered yet."</p> }.into_any(),
                Some(Ok(list)) => {
                    let t = now();
                    view! {
                        <div class="table-wrap">
                        <table class="nodes" data-testid="node-list">
                            <thead><tr>
                                <th>"Status"</th><th>"Node"</th><th>"Zone"</th><th>"Capacity"</th><th>"Shards"</th>
                                <th>"Last heartbeat"</th><th>"Traffic in / out"</th><th>"Audits"</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|n| {
                                    let word = status_word(n.status);
                                    let pct = used_pct(&n);
                                    view! {
                                        <tr data-testid="node-row" data-node-id=n.node_id.to_hex() data-status=word>
                                            // `data-label`: the column's name, shown beside each value where
                                            // the table becomes cards (a phone's width, style/main.css).
                                            <td data-label="Status"><span class=format!("light {word}") aria-hidden="true"></span>{word}" "{state_tag(&n)}</td>
                                            <td data-label="Node"><a href=format!("/nodes/{}", n.node_id)><code>{short(&n.node_id.to_hex())}</code></a></td>
                                            <td data-label="Zone">{n.zone.clone()}</td>
                                            <td class="capacity" data-label="Capacity">
                                                <meter class="bar" min="0" max="100" low="80" high="95" optimum="0" value=format!("{pct:.1}") aria-label="Used"></meter>
                                                <span class="muted">{format!("{} of {}", format::bytes_i(n.used), format::bytes_i(n.capacity))}</span>
                                            </td>
                                            <td data-label="Shards">{n.shards}{(n.quarantined > 0).then(|| view! { <span class="tag bad" title="corrupt shards quarantined">{format!("{} quarantined", n.quarantined)}</span> })}</td>
                                            <td data-label="Last heartbeat">{format::ago(n.last_seen, t)}</td>
                                            <td data-label="Traffic in / out">{format!("{} / {}", format::bytes_i(n.ingress_bytes), format::bytes_i(n.egress_bytes))}</td>
                                            <td data-label="Audits">{audits(&n)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                    }.into_any()
                }
            }}
        </section>
        <DurabilityPanel/>
    }
}

/// One series of a chart.
struct Series<'a> {
    label: &'a str,
    class: &'a str,
    points: Vec<(i64, f64)>,
}

/// A line chart of `series` over time, in SVG; `unit` formats the y axis.
fn chart(title: &str, series: &[Series<'_>], unit: fn(f64) -> String) -> AnyView {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    // Room on the left for the y axis's labels ("1023.9 GiB", "12.3 MB/s") at their full width,
    // and below for the dates.
    const LEFT: f64 = 84.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 30.0;
    let all: Vec<&(i64, f64)> = series.iter().flat_map(|s| s.points.iter()).collect();
    if all.len() < 2 {
        return view! { <figure class="chart"><figcaption>{title.to_owned()}</figcaption><p class="muted">"Not enough samples yet: one is kept per minute."</p></figure> }.into_any();
    }
    let (t0, t1) = all
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let ymax = all.iter().fold(0.0f64, |m, p| m.max(p.1)).max(1.0);
    let x = |t: i64| LEFT + (t - t0) as f64 / ((t1 - t0).max(1) as f64) * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / ymax * (H - TOP - BOTTOM);
    let lines = series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect::<Vec<_>>()
                .join(" ");
            view! { <polyline class=format!("line {}", s.class) points=pts fill="none" /> }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|s| view! { <span class=format!("legend {}", s.class)>{s.label.to_owned()}</span> })
        .collect_view();
    view! {
        <figure class="chart">
            <figcaption>{title.to_owned()} " " {legend}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=title.to_owned()>
                <line class="axis" x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM />
                <line class="axis" x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM />
                <text class="tick" x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end" data-testid="chart-ymax">{unit(ymax)}</text>
                <text class="tick" x=LEFT - 6.0 y=y(ymax / 2.0) + 4.0 text-anchor="end">{unit(ymax / 2.0)}</text>
                <text class="tick" x=LEFT - 6.0 y=H - BOTTOM + 4.0 text-anchor="end">{unit(0.0)}</text>
                <text class="tick" x=LEFT y=H - 8.0>{format::date(t0)}</text>
                <text class="tick" x=W - RIGHT y=H - 8.0 text-anchor="end">{format::date(t1)}</text>
                {lines}
            </svg>
        </figure>
    }
    .into_any()
}

/// Bytes per second between consecutive samples of a counter (a restart resets it: skipped).
fn rates(samples: &[NodeSample], counter: fn(&NodeSample) -> i64) -> Vec<(i64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let (dv, dt) = (counter(b) - counter(a), b.at - a.at);
            (dv >= 0 && dt > 0).then(|| (b.at, dv as f64 / dt as f64))
        })
        .collect()
}

#[component]
pub fn NodePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let nodes = poll::<Vec<NodeView>>(|| "/nodes".to_owned(), POLL_MS);
    let samples = poll::<Vec<NodeSample>>(move || format!("/nodes/{}/samples", id()), 10_000);
    let earnings = poll::<Vec<DailyEarnings>>(move || format!("/nodes/{}/earnings", id()), 30_000);
    view! {
        <section class="panel">
            <p><a href="/nodes">"← All nodes"</a></p>
            {move || {
                let node = nodes.get().and_then(Result::ok).and_then(|l| l.into_iter().find(|n| n.node_id.to_hex() == id()));
                match node {
                    None => view! { <h1>"Node"</h1><p class="muted">{move || format!("Looking for node {}…", short(&id()))}</p> }.into_any(),
                    Some(n) => {
                        let word = status_word(n.status);
                        view! {
                            <h1><span class=format!("light {word}") aria-hidden="true"></span><code>{short(&n.node_id.to_hex())}</code>" "<span class="muted">{word}</span></h1>
                            <dl class="facts">
                                <dt>"Address"</dt><dd><code>{n.url.clone()}</code></dd>
                                <dt>"Zone"</dt><dd>{n.zone.clone()}</dd>
                                <dt>"Version"</dt><dd>{n.version.clone()}</dd>
                                <dt>"Used"</dt><dd>{format!("{} of {} ({:.1}%)", format::bytes_i(n.used), format::bytes_i(n.capacity), used_pct(&n))}</dd>
                                <dt>"Free disk"</dt><dd>{format::bytes_i(n.free_disk)}</dd>
                                <dt>"Shards"</dt><dd>{format!("{} ({} quarantined)", n.shards, n.quarantined)}</dd>
                                <dt>"Up for"</dt><dd>{format::duration(n.uptime_secs as f64)}</dd>
                                <dt>"Last heartbeat"</dt><dd>{format::ago(n.last_seen, now())}</dd>
                                <dt>"Registered"</dt><dd>{format::date(n.registered_at)}</dd>
                                <dt>"Standing"</dt><dd>{if n.state.is_empty() { "active".to_owned() } else { n.state.clone() }}{(!n.state_reason.is_empty()).then(|| format!(": {}", n.state_reason))}</dd>
                                <dt>"Audit score"</dt><dd>{format!("{} {} (an hour ago {}); {} passed, {} failed", score(n.audit_score), trend(n.audit_score, n.audit_score_before), score(n.audit_score_before), n.audits_passed, n.audits_failed)}</dd>
                                <dt>"Online score"</dt><dd>{score(n.online_score)}</dd>
                            </dl>
                        }.into_any()
                    }
                }
            }}
        </section>
        <section class="panel charts">
            {move || match samples.get() {
                None => view! { <p class="muted">"Loading history…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                Some(Ok(s)) => {
                    let capacity = [
                        Series { label: "capacity", class: "s1", points: s.iter().map(|p| (p.at, p.capacity as f64)).collect() },
                        Series { label: "used", class: "s2", points: s.iter().map(|p| (p.at, p.used as f64)).collect() },
                    ];
                    let traffic = [
                        Series { label: "in", class: "s1", points: rates(&s, |p| p.ingress_bytes) },
                        Series { label: "out", class: "s2", points: rates(&s, |p| p.egress_bytes) },
                    ];
                    let reputation = [
                        Series { label: "audit score", class: "s1", points: s.iter().map(|p| (p.at, p.audit_score as f64 / 1e6)).collect() },
                    ];
                    view! {
                        {chart("Capacity and use", &capacity, |v| format::bytes(format::whole(v)))}
                        {chart("Traffic", &traffic, |v| format!("{}/s", format::bytes(format::whole(v))))}
                        {chart("Audit score", &reputation, |v| format!("{v:.2}"))}
                    }.into_any()
                }
            }}
        </section>
        <section class="panel" aria-labelledby="earnings-title">
            <h2 id="earnings-title">"Earnings"</h2>
            <p class="muted">"Storage at $1.50 per TB-month while audits pass, egress at $2 per TB served; from the hash-chained ledger."</p>
            {move || match earnings.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                Some(Ok(days)) if days.is_empty() => view! { <p class="muted">"Nothing earned yet: storage is credited at every rewards pass (hourly)."</p> }.into_any(),
                Some(Ok(days)) => view! {
                    <div class="table-wrap">
                    <table data-testid="earnings">
                        <thead><tr><th>"Day (UTC)"</th><th>"Storage"</th><th>"Egress"</th><th>"Earned"</th></tr></thead>
                        <tbody>
                            {days.into_iter().map(|d| view! {
                                <tr>
                                    <td>{format::date(d.day)}</td>
                                    <td>{format!("{} · hours", format::bytes_i(d.storage_byte_seconds / 3600))}</td>
                                    <td>{format::bytes_i(d.egress_bytes)}</td>
                                    <td>{format!("${:.6}", d.amount as f64 / 1e12)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}
