//! The workload's error type.

/// Errors of `meridian workload`. Failures of individual benchmark transactions are not errors
/// of the tool: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection URL could not be parsed.
    #[error("invalid connection URL {url:?}: {}", describe(.cause))]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        cause: tokio_postgres::Error,
    },
    /// The database did not accept a connection.
    #[error("cannot connect to {url}: {}", describe(.cause))]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why the connection failed.
        cause: tokio_postgres::Error,
    },
    /// A statement of the schema, the load or the consistency check failed.
    #[error("{context}: {}", describe(.cause))]
    Sql {
        /// What was being done.
        context: String,
        /// The database's answer.
        cause: tokio_postgres::Error,
    },
    /// The tables are missing or do not hold a loaded TPC-C database.
    #[error("{0}")]
    NotLoaded(String),
    /// A report or plot file could not be written.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A configuration value is out of range (clap checks the syntax; this checks the sense).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A database error as `SQLSTATE: message` when the server sent one; otherwise
/// tokio-postgres's description with its cause (which its `Display` already includes, so the
/// errors above carry the cause in their message rather than as a `source`, which would print
/// it twice).
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The workload's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to a database error.
pub(crate) trait SqlContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|cause| Error::Sql {
            context: what.into(),
            cause,
        })
    }
}
