//! The interface between the wire protocol server and a SQL engine.

use meridian_sql::{ColumnInfo, CopyIn, Datum, SqlError, SqlType, StatementResult, TxnStatus};
use tokio_util::sync::CancellationToken;

use crate::error::sql_error;

/// The error of a statement stopped by a cancel request: SQLSTATE `57014`, as in PostgreSQL.
pub fn query_canceled() -> SqlError {
    sql_error("57014", "canceling statement due to user request")
}

/// Runs `work` unless `cancel` fires first, in which case `work` is dropped at its current await
/// point and the answer is `None`.
pub(crate) async fn until_cancelled<T>(
    work: impl std::future::Future<Output = T>,
    cancel: &CancellationToken,
) -> Option<T> {
    tokio::select! {
        biased;
        result = work => Some(result),
        () = cancel.cancelled() => None,
    }
}

/// What Parse learns about a statement from the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementInfo {
    /// The type of each parameter (`$1` first).
    pub params: Vec<SqlType>,
    /// The result columns (empty for statements that return no rows).
    pub columns: Vec<ColumnInfo>,
}

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

    /// [`SqlBackend::execute`], stopping when `cancel` is cancelled (a client's
    /// CancelRequest for this connection); the server always calls this one.
    ///
    /// The default runs `execute` and, if `cancel` fires first, drops its future and answers
    /// [`query_canceled`] alone (results of statements of the string that had completed are
    /// not reported). That is right for a backend whose `execute` can be abandoned at any
    /// await point without harm; a backend with points where it must not stop (a write
    /// proposed but not yet acknowledged) overrides this and checks `cancel` where stopping is
    /// safe, returning [`query_canceled`] as the error of the statement it stopped.
    async fn execute_cancellable(
        &self,
        session: &mut Self::Session,
        sql: &str,
        cancel: CancellationToken,
    ) -> Vec<Result<StatementResult, SqlError>> {
        until_cancelled(self.execute(session, sql), &cancel)
            .await
            .unwrap_or_else(|| vec![Err(query_canceled())])
    }

    /// Prepares the single statement `sql` for the extended protocol (Parse): checks and plans
    /// it and reports its parameter types (`types` are those the client declared, `None`
    /// where the server infers the type from the parameter's use) and result columns.
    /// `Ok(None)`: this backend does not prepare statements; then Parse refuses statements
    /// with parameters and runs the others through [`SqlBackend::execute`].
    async fn prepare(
        &self,
        session: &mut Self::Session,
        sql: &str,
        types: &[Option<SqlType>],
    ) -> Result<Option<StatementInfo>, SqlError> {
        let _ = (session, sql, types);
        Ok(None)
    }

    /// Runs a statement [`SqlBackend::prepare`] accepted, with one value per parameter
    /// (binary values decoded, text values as [`Datum::Text`] for the backend to convert to
    /// the parameter's type). Called only when `prepare` answered `Some`; may be abandoned at
    /// an await point when the client cancels.
    async fn execute_prepared(
        &self,
        session: &mut Self::Session,
        sql: &str,
        types: &[Option<SqlType>],
        params: Vec<Datum>,
    ) -> Result<StatementResult, SqlError> {
        let _ = (session, sql, types, params);
        Err(sql_error("0A000", "prepared statements are not supported"))
    }

    /// Loads the data a client sent for a `COPY ... FROM STDIN` the session answered with
    /// [`StatementResult::CopyIn`]; returns the number of rows loaded.
    async fn copy_in(
        &self,
        session: &mut Self::Session,
        copy: &CopyIn,
        data: Vec<u8>,
    ) -> Result<u64, SqlError> {
        let _ = (session, copy, data);
        Err(sql_error("0A000", "COPY FROM STDIN is not supported"))
    }

    /// Where `session` is with respect to transaction blocks, reported to the client in every
    /// ReadyForQuery (`I`, `T` or `E`). The default: always idle (autocommit only).
    fn transaction_status(&self, session: &Self::Session) -> TxnStatus {
        let _ = session;
        TxnStatus::Idle
    }

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
