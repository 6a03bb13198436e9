//! The crate's error type and the single place where errors become protocol `ErrorResponse`s.

use meridian_sql::{Datum, SqlError, SqlType};
use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_ERROR, SEVERITY_FATAL};

/// Errors of the wire protocol server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`crate::PgServerConfig::insecure`] was `false`, but the configuration lacks what
    /// secure mode needs.
    #[error("secure mode (`insecure: false`) needs {0}")]
    SecureModeIncomplete(&'static str),
    /// The backend returned a row whose width differs from its column list.
    #[error("result row has {actual} values but the result has {expected} columns")]
    RowWidthMismatch {
        /// Number of result columns.
        expected: usize,
        /// Number of values in the row.
        actual: usize,
    },
    /// The backend returned a value that does not belong to its column's type.
    #[error("value {datum:?} does not match column type {ty:?}")]
    DatumTypeMismatch {
        /// The column type.
        ty: SqlType,
        /// The offending value.
        datum: Datum,
    },
    /// The backend returned several results for a prepared statement, which holds one.
    #[error("backend returned several results for one prepared statement")]
    SeveralResults,
    /// A connection reached query processing without a session (a broken invariant).
    #[error("connection has no SQL session")]
    MissingSession,
    /// Socket errors.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Io(err) => err,
            Error::SecureModeIncomplete(_) => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, err)
            }
            other => std::io::Error::other(other),
        }
    }
}

impl Error {
    /// The error as reported to a client. Every variant but `SecureModeIncomplete` and `Io`
    /// is a bug in the server or the backend, and says so.
    pub(crate) fn to_sql_error(&self) -> SqlError {
        sql_error("XX000", format!("internal error: {self}"))
    }
}

/// Severity of an error sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// The statement failed; the connection goes on.
    Error,
    /// The connection is closed after the error is sent.
    Fatal,
}

/// Builds a [`SqlError`] with only a code and a message.
pub(crate) fn sql_error(code: &'static str, message: impl Into<String>) -> SqlError {
    SqlError {
        code,
        message: message.into(),
        detail: None,
        hint: None,
        position: None,
    }
}

/// The one mapping from a [`SqlError`] to the fields of a protocol `ErrorResponse`.
pub(crate) fn error_info(err: SqlError, severity: Severity) -> ErrorInfo {
    let severity = match severity {
        Severity::Error => SEVERITY_ERROR,
        Severity::Fatal => SEVERITY_FATAL,
    };
    let mut info = ErrorInfo::new(severity.to_owned(), err.code.to_owned(), err.message);
    info.severity_nonlocalized = Some(severity.to_owned());
    info.detail = err.detail;
    info.hint = err.hint;
    info.position = err.position.map(|p| p.to_string());
    info
}

/// A [`SqlError`] as a pgwire handler error, sent to the client by pgwire's error path.
pub(crate) fn pg_error(err: SqlError, severity: Severity) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(err, severity)))
}

impl From<Error> for PgWireError {
    fn from(err: Error) -> Self {
        pg_error(err.to_sql_error(), Severity::Error)
    }
}
