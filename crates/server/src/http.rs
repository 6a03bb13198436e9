//! The node's HTTP endpoint: `/health` (the process is up) and `/ready` (it can serve SQL:
//! it belongs to an initialised cluster, a leader of its tablet is known, and the clock is
//! usable).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::state::NodeState;

pub(crate) fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(state)
}

async fn ready(State(state): State<Arc<NodeState>>) -> (StatusCode, String) {
    if let Err(e) = state.clock.now() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("clock unusable: {e}\n"),
        );
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
