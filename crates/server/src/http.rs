//! The node's HTTP endpoint: `/health` (the process is up) and `/ready` (it can serve SQL:
//! its tablet has a leader and the clock is usable).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use meridian_clock::TrueTime;
use meridian_tablet::LocalGroup;

#[derive(Clone)]
struct HttpState {
    clock: Arc<TrueTime>,
    tablet: Arc<LocalGroup>,
}

pub(crate) fn router(clock: Arc<TrueTime>, tablet: Arc<LocalGroup>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(HttpState { clock, tablet })
}

async fn ready(State(state): State<HttpState>) -> (StatusCode, String) {
    if let Err(e) = state.clock.now() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("clock unusable: {e}\n"),
        );
    }
    if state.tablet.replicas().iter().any(|r| r.status().is_leader) {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no tablet leader yet\n".into(),
        )
    }
}
