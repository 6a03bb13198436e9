//! The accept loop, connection tasks and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{PgWireServerHandlers, RandomPidSecretKeyGenerator};
use pgwire::tokio::process_socket;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::backend::SqlBackend;
use crate::config::PgServerConfig;
use crate::error::Error;
use crate::extended::StatementParser;
use crate::startup::ServerParameters;
use crate::state::ServerState;

/// Pause after a failed `accept` (e.g. out of file descriptors) so that a persistent failure
/// does not spin the accept loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the PostgreSQL wire protocol on `listener` until `shutdown` resolves.
///
/// Each connection runs in its own task; a connection that sends garbage is closed without
/// affecting the others. When `shutdown` resolves the listener is closed, new statements are
/// refused with SQLSTATE `57P01` (FATAL), statements already running get up to
/// [`PgServerConfig::shutdown_grace`] to finish and send their results, and then every
/// remaining connection is closed and this function returns.
///
/// Fails at once with `InvalidInput` if `config.insecure` is `false` (TLS and passwords are
/// not implemented yet).
pub async fn serve<B: SqlBackend>(
    listener: TcpListener,
    backend: Arc<B>,
    config: PgServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    if !config.insecure {
        return Err(Error::SecureModeUnsupported.into());
    }
    let state = ServerState::new();
    let handler = Arc::new(Handler {
        backend,
        state: Arc::clone(&state),
        parameters: ServerParameters {
            server_version: config.server_version.clone(),
        },
        pid_generator: RandomPidSecretKeyGenerator::default(),
        parser: Arc::new(StatementParser),
    });
    let handlers = Arc::new(Handlers(handler));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = Arc::clone(&handlers);
                    connections.spawn(async move {
                        if let Err(err) = process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, %err, "connection closed with an error");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "accepting a PostgreSQL connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(%err, "PostgreSQL connection task failed");
                }
            }
        }
    }
    drop(listener);
    state.start_draining();
    if tokio::time::timeout(config.shutdown_grace, state.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?config.shutdown_grace,
            "statements still running at the end of the shutdown grace period"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// The handler of every protocol phase, shared by all connections of one server.
pub(crate) struct Handler<B: SqlBackend> {
    pub backend: Arc<B>,
    pub state: Arc<ServerState>,
    pub parameters: ServerParameters,
    pub pid_generator: RandomPidSecretKeyGenerator,
    pub parser: Arc<StatementParser>,
}

/// pgwire's handler factory: every phase is served by the same [`Handler`].
struct Handlers<B: SqlBackend>(Arc<Handler<B>>);

impl<B: SqlBackend> PgWireServerHandlers for Handlers<B> {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.0)
    }
}
