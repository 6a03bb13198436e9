//! Server-wide state for graceful shutdown: how many statements are running, and whether the
//! server is draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use meridian_sql::SqlError;
use tokio::sync::watch;

use crate::error::sql_error;

/// Counts running statements and refuses new ones once draining has begun.
#[derive(Debug)]
pub(crate) struct ServerState {
    draining: AtomicBool,
    in_flight: watch::Sender<usize>,
}

/// Held while a statement runs and its response is written; see [`ServerState::begin`].
#[derive(Debug)]
pub(crate) struct StatementGuard(Arc<ServerState>);

impl Drop for StatementGuard {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n -= 1);
    }
}

impl ServerState {
    pub(crate) fn new() -> Arc<ServerState> {
        Arc::new(ServerState {
            draining: AtomicBool::new(false),
            in_flight: watch::Sender::new(0),
        })
    }

    /// Registers a statement about to run, or refuses it with `57P01` when the server is
    /// shutting down.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<StatementGuard, SqlError> {
        // Count first, then check: a statement that passes the check is always counted
        // before `wait_idle` can observe zero.
        self.in_flight.send_modify(|n| *n += 1);
        let guard = StatementGuard(Arc::clone(self));
        if self.draining.load(Ordering::SeqCst) {
            return Err(sql_error(
                "57P01",
                "terminating connection due to administrator command",
            ));
        }
        Ok(guard)
    }

    /// Refuses every statement from now on.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Resolves once no statement is running.
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.in_flight.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_refuses_new_statements_and_waits_for_running_ones() {
        let state = ServerState::new();
        let running = state.begin().unwrap();
        state.start_draining();
        assert_eq!(state.begin().unwrap_err().code, "57P01");
        let waiter = tokio::spawn({
            let state = Arc::clone(&state);
            async move { state.wait_idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(running);
        waiter.await.unwrap();
    }
}
