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
use crate::encode::{encode_rows, field_infos, query_response};
use crate::error::{Severity, error_info, pg_error};
use crate::server::Handler;
use crate::session::session_slot;
use crate::shape;

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
        let responses = self.do_query(client, &query.query).await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        for response in responses? {
            match response {
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Query(results) => send_query_response(client, results, true).await?,
                Response::Execution(tag)
                | Response::TransactionStart(tag)
                | Response::TransactionEnd(tag) => send_execution_response(client, tag).await?,
                Response::Error(e) => {
                    client
                        .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                        .await?;
                }
                Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
                    return Err(pg_error(
                        crate::error::sql_error("0A000", "COPY is not supported yet"),
                        Severity::Error,
                    ));
                }
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
        // Text made only of comments is an empty query too (pgwire catches the rest).
        if shape::scan(query).statements == 0 {
            return Ok(vec![Response::EmptyQuery]);
        }
        let slot = session_slot::<B::Session, C>(client)?;
        let results = {
            let mut session = slot.session.lock().await;
            let cancel = StatementCancel::start(client);
            self.backend
                .execute_cancellable(&mut session, query, cancel.token())
                .await
        };
        if results.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(results.len());
        for result in results {
            let response = simple_response(result);
            let failed = matches!(response, Response::Error(_));
            responses.push(response);
            if failed {
                // As in PostgreSQL, nothing is reported after the first error.
                break;
            }
        }
        Ok(responses)
    }
}

impl<B: SqlBackend> Handler<B> {
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
        Err(err) => error_response(err),
    }
}

fn error_response(err: SqlError) -> Response {
    Response::Error(Box::new(error_info(err, Severity::Error)))
}
