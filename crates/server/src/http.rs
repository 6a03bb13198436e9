//! The node's HTTP endpoint: `/health` (the process is up), `/ready` (it can serve SQL: it
//! belongs to an initialised cluster, a leader of its tablet is known, and the clock is
//! usable) and `/metrics` (Prometheus text format: the counters and histograms the tablet and
//! SQL layers record, plus the clock and replica gauges read at scrape time).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::state::NodeState;

pub(crate) fn router(state: Arc<NodeState>) -> Router {
    meridian_tablet::metrics::register();
    meridian_sql::register_metrics();
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<Arc<NodeState>>) -> (StatusCode, String) {
    if let Err(e) = state.clock.now() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("clock unusable: {e}\n"),
        );
    }
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into());
    }
    if state.node_id.get().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for `meridian init`\n".into(),
        );
    }
    if state
        .all_replicas()
        .iter()
        .any(|r| r.status().leader_id != 0)
        || state.all_replicas().is_empty()
    {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no tablet leader known yet\n".into(),
        )
    }
}

async fn metrics(
    State(state): State<Arc<NodeState>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let content_type = [("content-type", "text/plain; version=0.0.4")];
    match render_metrics(&state) {
        Ok(text) => (StatusCode::OK, content_type, text),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            content_type,
            format!("metrics unavailable: {e}\n"),
        ),
    }
}

/// The default registry's metrics followed by this node's gauges.
fn render_metrics(state: &NodeState) -> prometheus::Result<String> {
    use prometheus::{Encoder, Gauge, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
    let node = Registry::new();
    let status = state.clock.status();
    let epsilon = Gauge::new(
        "meridian_clock_epsilon_seconds",
        "The clock's current uncertainty bound (sync uncertainty plus drift allowance).",
    )?;
    epsilon.set(status.epsilon.as_secs_f64());
    node.register(Box::new(epsilon))?;
    let usable = IntGauge::new(
        "meridian_clock_usable",
        "1 while the clock may assign timestamps; 0 when fenced or beyond its maximum epsilon.",
    )?;
    usable.set(i64::from(state.clock.now().is_ok()));
    node.register(Box::new(usable))?;
    let replicas = state.all_replicas();
    let count = IntGauge::new("meridian_replicas", "Tablet replicas hosted by this node.")?;
    count.set(replicas.len() as i64);
    node.register(Box::new(count))?;
    let leaders = IntGauge::new(
        "meridian_leaders",
        "Tablet replicas on this node that lead their group.",
    )?;
    let per_tablet = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["tablet"]);
    let applied = per_tablet(
        "meridian_raft_applied_index",
        "Highest Raft log index applied, per tablet.",
    )?;
    let committed = per_tablet(
        "meridian_raft_commit_index",
        "Highest Raft log index known committed, per tablet.",
    )?;
    let term = per_tablet("meridian_raft_term", "Current Raft term, per tablet.")?;
    let mut leading = 0;
    for r in &replicas {
        let s = r.status();
        let tablet = r.tablet_id().to_string();
        applied
            .with_label_values(&[&tablet])
            .set(s.applied_index as i64);
        committed
            .with_label_values(&[&tablet])
            .set(s.commit_index as i64);
        term.with_label_values(&[&tablet]).set(s.term as i64);
        leading += i64::from(s.is_leader);
    }
    leaders.set(leading);
    node.register(Box::new(leaders))?;
    node.register(Box::new(applied))?;
    node.register(Box::new(committed))?;
    node.register(Box::new(term))?;

    let mut families = prometheus::gather();
    families.extend(node.gather());
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}
