//! The interface between the wire protocol server and a SQL engine.

use meridian_sql::{ColumnInfo, SqlError, StatementResult};

/// A SQL engine the wire protocol server runs statements on.
///
/// The node implements it for `meridian_sql::Engine`; tests implement it with canned answers.
/// One session is opened per authenticated connection and used by that connection only, so
/// `execute` and `describe` are never called concurrently on the same session.
#[async_trait::async_trait]
pub trait SqlBackend: Send + Sync + 'static {
    /// Per-connection state (current transaction, settings, ...).
    type Session: Send + 'static;

    /// Opens a session for an authenticated connection. An error here is sent to the client
    /// as a FATAL error and closes the connection (e.g. `3D000` for an unknown database).
    fn open_session(&self, user: &str, database: &str) -> Result<Self::Session, SqlError>;

    /// Runs every statement of a simple-query string in order, stopping after the first error,
    /// which is then the last element. An empty vector means the string held no statement.
    async fn execute(
        &self,
        session: &mut Self::Session,
        sql: &str,
    ) -> Vec<Result<StatementResult, SqlError>>;

    /// The result columns of the single statement `sql`, without running it: `Some(columns)`
    /// (empty for statements that return no rows), or `None` when the backend cannot tell
    /// without running the statement. An `Err` is reported to the client as it is.
    ///
    /// Used for the extended protocol's Describe. The default answers `None`, which makes
    /// Describe of a prepared statement fail with `0A000` and Describe of a portal run the
    /// portal early (see the crate documentation).
    async fn describe(
        &self,
        session: &mut Self::Session,
        sql: &str,
    ) -> Result<Option<Vec<ColumnInfo>>, SqlError> {
        let _ = (session, sql);
        Ok(None)
    }
}
