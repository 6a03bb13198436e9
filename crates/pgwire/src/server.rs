//! The accept loop, connection tasks and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pgwire::api::RandomPidSecretKeyGenerator;
use pgwire::api::auth::AuthDriver;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::ScramSource;
use crate::backend::SqlBackend;
use crate::cancel::CancelRegistry;
use crate::config::PgServerConfig;
use crate::conn::serve_connection;
use crate::error::Error;
use crate::extended::StatementParser;
use crate::startup::ServerParameters;
use crate::state::ServerState;

/// Pause after a failed `accept` (e.g. out of file descriptors) so that a persistent failure
/// does not spin the accept loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The ALPN protocol name of PostgreSQL over TLS.
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// Serves the PostgreSQL wire protocol on `listener` until `shutdown` resolves.
///
/// Each connection runs in its own task; a connection that sends garbage is closed without
/// affecting the others. When `shutdown` resolves the listener is closed, new statements are
/// refused with SQLSTATE `57P01` (FATAL), statements already running get up to
/// [`PgServerConfig::shutdown_grace`] to finish and send their results, and then every
/// remaining connection is closed and this function returns.
///
/// Fails at once with `InvalidInput` if `config.insecure` is `false` and `config.tls` or
/// `config.users` is missing.
pub async fn serve<B: SqlBackend>(
    listener: TcpListener,
    backend: Arc<B>,
    config: PgServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let security = Security::from_config(&config)?;
    let tls = config.tls.clone().map(|tls| {
        let mut tls = Arc::unwrap_or_clone(tls);
        if tls.alpn_protocols.is_empty() {
            tls.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
        }
        TlsAcceptor::from(Arc::new(tls))
    });
    let state = ServerState::new();
    let parameters = Arc::new(ServerParameters {
        server_version: config.server_version.clone(),
    });
    let handler = Arc::new(Handler {
        parser: Arc::new(StatementParser {
            backend: Arc::clone(&backend),
        }),
        backend,
        state: Arc::clone(&state),
        driver: AuthDriver::new(Arc::clone(&parameters)),
        parameters,
        pid_generator: RandomPidSecretKeyGenerator::default(),
        security,
        cancels: Arc::new(CancelRegistry::default()),
    });
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handler = Arc::clone(&handler);
                    let tls = tls.clone();
                    let max = config.max_message_size;
                    connections.spawn(async move {
                        if let Err(err) = serve_connection(socket, tls, handler, max).await {
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

/// How connections authenticate.
pub(crate) struct Security {
    /// Refuse sessions on connections without TLS.
    pub require_tls: bool,
    /// SCRAM-SHA-256 password authentication; `None` is trust authentication.
    pub scram: Option<ScramAuth>,
}

impl Security {
    fn from_config(config: &PgServerConfig) -> std::io::Result<Security> {
        if config.insecure {
            return Ok(Security {
                require_tls: false,
                scram: None,
            });
        }
        if config.tls.is_none() {
            return Err(Error::SecureModeIncomplete("a TLS configuration (`tls`)").into());
        }
        let Some(users) = config.users.clone() else {
            return Err(Error::SecureModeIncomplete("a user store (`users`)").into());
        };
        Ok(Security {
            require_tls: true,
            scram: Some(ScramAuth::new(Arc::new(ScramSource::new(users)?))),
        })
    }
}

/// The handler of every protocol phase, shared by all connections of one server.
pub(crate) struct Handler<B: SqlBackend> {
    pub backend: Arc<B>,
    pub state: Arc<ServerState>,
    pub parameters: Arc<ServerParameters>,
    /// Runs the SCRAM exchange (pgwire keeps each connection's exchange state in the
    /// connection's session extensions).
    pub driver: AuthDriver<Arc<ServerParameters>>,
    pub pid_generator: RandomPidSecretKeyGenerator,
    pub parser: Arc<StatementParser<B>>,
    pub security: Security,
    pub cancels: Arc<CancelRegistry>,
}
