//! The simple query protocol: one `Query` message, any number of statements.

use std::fmt::Debug;

use futures::Sink;
use meridian_sql::{SqlError, StatementResult};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{FieldFormat, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
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
        self._on_query(client, query).await
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
