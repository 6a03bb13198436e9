//! Cancel requests: which statement a `(pid, secret key)` pair names, and stopping it.
//!
//! Every authenticated connection registers its key pair in the server's [`CancelRegistry`]
//! (until the connection ends). While a statement runs, the connection's slot holds that
//! statement's [`CancellationToken`]; a CancelRequest with a matching key pair, arriving on a
//! separate connection as the protocol prescribes, cancels the token. A request that matches
//! nothing, or arrives between statements, does nothing (and, as in PostgreSQL, the requester
//! is told nothing either way).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use pgwire::api::ClientInfo;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio_util::sync::CancellationToken;

use crate::backend::SqlBackend;
use crate::server::Handler;

type Key = (i32, Bytes);

/// The connections that can be cancelled, by key pair.
#[derive(Debug, Default)]
pub(crate) struct CancelRegistry {
    connections: Mutex<HashMap<Key, Arc<RunningStatement>>>,
}

/// The token of the statement a connection is running, if any.
#[derive(Debug, Default)]
pub(crate) struct RunningStatement {
    token: Mutex<Option<CancellationToken>>,
}

/// A connection's entry in the registry, kept in its session extensions; dropping it (when
/// the connection ends) removes the entry.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<CancelRegistry>,
    key: Key,
    running: Arc<RunningStatement>,
}

/// Marks a statement as running for as long as it lives.
#[derive(Debug)]
pub(crate) struct StatementCancel {
    running: Option<Arc<RunningStatement>>,
    token: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The critical sections below cannot panic halfway through an update.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CancelRegistry {
    /// Registers a connection under its key pair.
    pub(crate) fn register(self: &Arc<Self>, pid: i32, secret: &SecretKey) -> Registration {
        let key = (pid, secret.to_bytes());
        let running = Arc::new(RunningStatement::default());
        lock(&self.connections).insert(key.clone(), Arc::clone(&running));
        Registration {
            registry: Arc::clone(self),
            key,
            running,
        }
    }

    /// Cancels the statement running on the connection with this key pair, if any. Returns
    /// whether a statement was cancelled.
    pub(crate) fn cancel(&self, pid: i32, secret: &SecretKey) -> bool {
        let key = (pid, secret.to_bytes());
        let Some(running) = lock(&self.connections).get(&key).cloned() else {
            return false;
        };
        let token = lock(&running.token).clone();
        match token {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.connections).len()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.registry.connections).remove(&self.key);
    }
}

impl StatementCancel {
    /// Starts a statement on the connection of `client`. A connection that never registered
    /// (which authentication always does) gets a token nobody can cancel.
    pub(crate) fn start<C: ClientInfo + ?Sized>(client: &C) -> StatementCancel {
        let token = CancellationToken::new();
        let running = client
            .session_extensions()
            .get::<Registration>()
            .map(|registration| Arc::clone(&registration.running));
        if let Some(running) = &running {
            *lock(&running.token) = Some(token.clone());
        }
        StatementCancel { running, token }
    }

    /// The token the statement watches.
    pub(crate) fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

impl Drop for StatementCancel {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            lock(&running.token).take();
        }
    }
}

#[async_trait::async_trait]
impl<B: SqlBackend> CancelHandler for Handler<B> {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let cancelled = self.cancels.cancel(request.pid, &request.secret_key);
        tracing::debug!(pid = request.pid, cancelled, "cancel request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_key_pair_cancels_and_only_while_running() {
        let registry = Arc::new(CancelRegistry::default());
        let registration = registry.register(7, &SecretKey::I32(42));
        // Nothing running yet.
        assert!(!registry.cancel(7, &SecretKey::I32(42)));

        let token = CancellationToken::new();
        *lock(&registration.running.token) = Some(token.clone());
        assert!(!registry.cancel(7, &SecretKey::I32(41)));
        assert!(!registry.cancel(8, &SecretKey::I32(42)));
        assert!(!token.is_cancelled());
        assert!(registry.cancel(7, &SecretKey::I32(42)));
        assert!(token.is_cancelled());

        drop(registration);
        assert_eq!(registry.len(), 0);
        assert!(!registry.cancel(7, &SecretKey::I32(42)));
    }
}
