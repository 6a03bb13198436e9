//! Server configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::UserStore;

/// The default for [`PgServerConfig::max_message_size`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// Configuration of the PostgreSQL wire protocol server.
#[derive(Clone)]
pub struct PgServerConfig {
    /// `true`: every user is accepted without a password (trust authentication), with or
    /// without TLS. `false` (secure mode): connections must use TLS and authenticate with a
    /// SCRAM-SHA-256 password checked against [`PgServerConfig::users`]; [`crate::serve`]
    /// refuses to start without `tls` and `users`.
    pub insecure: bool,
    /// Reported to clients as the `server_version` parameter, e.g. `15.0 (Meridian 0.1.0)`.
    /// Clients parse the leading number, so it should start with a PostgreSQL version.
    pub server_version: String,
    /// How long [`crate::serve`] waits for running statements after shutdown is requested
    /// before closing the remaining connections.
    pub shutdown_grace: Duration,
    /// TLS for client connections. When set, an `SSLRequest` is answered `S` and the
    /// connection continues over TLS (a direct TLS handshake, as PostgreSQL 17 clients may
    /// send, works too); when unset it is answered `N`. An empty ALPN list is completed with
    /// `postgresql`. Build it with `meridian_security::sql_server_config`, or from a node's
    /// `meridian_security::NodeCerts` to follow its certificates as they are reloaded (the
    /// configuration consults them at every handshake).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Password credentials, required in secure mode; unused in insecure mode.
    pub users: Option<Arc<dyn UserStore>>,
    /// The largest frontend message accepted, in bytes (its length field). A longer message
    /// is answered with a FATAL `08P01` error and the connection is closed.
    pub max_message_size: usize,
}

impl Default for PgServerConfig {
    fn default() -> Self {
        PgServerConfig {
            insecure: true,
            server_version: format!("15.0 (Meridian {})", env!("CARGO_PKG_VERSION")),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            users: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl fmt::Debug for PgServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServerConfig")
            .field("insecure", &self.insecure)
            .field("server_version", &self.server_version)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.is_some())
            .field("max_message_size", &self.max_message_size)
            .finish()
    }
}
