//! Server configuration.

use std::time::Duration;

/// Configuration of the PostgreSQL wire protocol server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgServerConfig {
    /// Accept every user without a password and without TLS. Must be `true` for now: the
    /// secure mode (TLS and password authentication) is not implemented yet, and [`crate::serve`]
    /// refuses to start without it.
    pub insecure: bool,
    /// Reported to clients as the `server_version` parameter, e.g. `15.0 (Meridian 0.1.0)`.
    /// Clients parse the leading number, so it should start with a PostgreSQL version.
    pub server_version: String,
    /// How long [`crate::serve`] waits for running statements after shutdown is requested
    /// before closing the remaining connections.
    pub shutdown_grace: Duration,
}

impl Default for PgServerConfig {
    fn default() -> Self {
        PgServerConfig {
            insecure: true,
            server_version: format!("15.0 (Meridian {})", env!("CARGO_PKG_VERSION")),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
