//! The workload's error type.

/// Errors of `meridian workload`. Failures of individual benchmark transactions are not errors
/// of the tool: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection URL could not be parsed.
    #[error("invalid connection URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database did not accept a connection.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why the connection failed.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement of the schema, the load or the consistency check failed.
    #[error("{context}: {source}")]
    Sql {
        /// What was being done.
        context: String,
        /// The database's answer.
        #[source]
        source: tokio_postgres::Error,
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

/// The workload's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to a database error.
pub(crate) trait SqlContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Sql {
            context: what.into(),
            source,
        })
    }
}
