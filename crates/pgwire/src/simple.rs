//! The simple query protocol: one `Query` message, any number of statements.

use std::fmt::Debug;

use futures::{Sink, SinkExt};
use meridian_sql::{SqlError, StatementResult, TxnStatus};
use pgwire::api::PgWireConnectionState;
use pgwire::api::query::{
    SimpleQueryHandler, send_execution_response, send_query_response, send_ready_for_query,
};
use pgwire::api::results::{FieldFormat, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::simplequery::Query;

use crate::backend::SqlBackend;
use crate::cancel::StatementCancel;
use crate::copy::{send_copy_out, start_copy_in};
use crate::encode::{encode_rows, field_infos, query_response};
use crate::error::{Severity, error_info, pg_error};
use crate::server::Handler;
use crate::session::session_slot;
use meridian_sql::lexical as shape;

#[async_trait::async_trait]
impl<B: SqlBackend> SimpleQueryHandler for Handler<B> {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The guard spans the whole exchange up to ReadyForQuery, so a shutdown waits for
        // the results to be written, not only computed.
        let _running = self
            .state
            .begin()
            .map_err(|err| pg_error(err, Severity::Fatal))?;
        // pgwire's default loop infers the transaction status from command tags; the session
        // knows it (a failed COMMIT ends the block, ROLLBACK TO SAVEPOINT revives a failed
        // one), so this loop asks the session before ReadyForQuery.
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let results = self.run_simple(client, &query.query).await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        let results = results?;
        if results.is_none() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        for result in results.into_iter().flatten() {
            match result {
                // The data comes next; pgwire sends ReadyForQuery once it is loaded.
                Ok(StatementResult::CopyIn(copy)) => {
                    return start_copy_in(client, copy, false).await;
                }
                Ok(StatementResult::CopyOut { rows, lines }) => {
                    send_copy_out(client, rows, lines).await?;
                }
                other => match simple_response(other) {
                    Response::Query(results) => {
                        send_query_response(client, results, true).await?;
                    }
                    Response::Execution(tag) => send_execution_response(client, tag).await?,
                    Response::Error(e) => {
                        client
                            .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                            .await?;
                    }
                    _ => unreachable_response()?,
                },
            }
        }
        let status = self.sync_transaction_status(client).await?;
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Used only by pgwire's default query loop, which `on_query` replaces.
        let Some(results) = self.run_simple(client, query).await? else {
            return Ok(vec![Response::EmptyQuery]);
        };
        Ok(results.into_iter().map(simple_response).collect())
    }
}

impl<B: SqlBackend> Handler<B> {
    /// Runs a simple-query string: `None` when it holds no statement; else the results up to
    /// and including the first error (as in PostgreSQL, nothing after it is reported).
    async fn run_simple<C: ClientInfo>(
        &self,
        client: &C,
        query: &str,
    ) -> PgWireResult<Option<Vec<Result<StatementResult, SqlError>>>> {
        // Text made only of comments is an empty query too.
        if shape::scan(query).statements == 0 {
            return Ok(None);
        }
        let slot = session_slot::<B::Session, C>(client)?;
        let mut results = {
            let mut session = slot.session.lock().await;
            let cancel = StatementCancel::start(client);
            self.backend
                .execute_cancellable(&mut session, query, cancel.token())
                .await
        };
        if results.is_empty() {
            return Ok(None);
        }
        if let Some(first_error) = results.iter().position(Result::is_err) {
            results.truncate(first_error + 1);
        }
        Ok(Some(results))
    }

    /// Records the session's transaction status on the connection (for ReadyForQuery, which
    /// Sync also sends) and returns it.
    pub(crate) async fn sync_transaction_status<C: ClientInfo>(
        &self,
        client: &mut C,
    ) -> PgWireResult<TransactionStatus> {
        let slot = session_slot::<B::Session, C>(client)?;
        let status = match self.backend.transaction_status(&*slot.session.lock().await) {
            TxnStatus::Idle => TransactionStatus::Idle,
            TxnStatus::InBlock => TransactionStatus::Transaction,
            TxnStatus::Failed => TransactionStatus::Error,
        };
        client.set_transaction_status(status);
        Ok(status)
    }
}

/// A response kind the simple protocol never produces.
fn unreachable_response() -> PgWireResult<()> {
    Err(pg_error(
        crate::error::sql_error("XX000", "internal error: unexpected response kind"),
        Severity::Error,
    ))
}

/// The simple-protocol response to one statement's outcome (always in text format).
fn simple_response(result: Result<StatementResult, SqlError>) -> Response {
    match result {
        Ok(StatementResult::Command { tag }) => Response::Execution(Tag::new(&tag)),
        Ok(StatementResult::Query { columns, rows }) => {
            let formats = vec![FieldFormat::Text; columns.len()];
            match encode_rows(&columns, &formats, &rows) {
                Ok(data) => Response::Query(query_response(field_infos(&columns, &formats), data)),
                Err(err) => error_response(err.to_sql_error()),
            }
        }
        Ok(StatementResult::CopyIn(_) | StatementResult::CopyOut { .. }) => error_response(
            crate::error::sql_error("XX000", "internal error: COPY outside the query loop"),
        ),
        Err(err) => error_response(err),
    }
}

fn error_response(err: SqlError) -> Response {
    Response::Error(Box::new(error_info(err, Severity::Error)))
}
