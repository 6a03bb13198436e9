//! The shell's error type.

use crate::client::ServerError;

/// Errors of the shell. SQL errors of individual statements are not errors of the shell: they
/// are printed and decide the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection URL or connection string could not be parsed.
    #[error("invalid connection URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The URL asks for something the shell does not do yet.
    #[error("{0} is not supported by meridian sql yet")]
    Unsupported(&'static str),
    /// No host of the URL accepted a connection.
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// The host and port (or socket path) tried last.
        target: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("timed out connecting to {target}")]
    ConnectTimeout {
        /// The host and port (or socket path).
        target: String,
    },
    /// The server refused the session (bad database, authentication failure, ...).
    #[error("{}: {} (SQLSTATE {})", .0.severity, .0.message, .0.code)]
    Refused(Box<ServerError>),
    /// TLS could not be set up (the server refused it, or the handshake failed).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server wants a password and none was given.
    #[error("the server requires a password: put it in the URL or in PGPASSWORD")]
    PasswordRequired,
    /// The server sent something the protocol does not allow at that point.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection was lost.
    #[error("connection to server was lost")]
    ConnectionLost,
    /// Reading input or writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The line editor failed.
    #[error("line editor: {0}")]
    Editor(#[from] rustyline::error::ReadlineError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
