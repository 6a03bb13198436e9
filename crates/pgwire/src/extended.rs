//! The extended query protocol (Parse, Bind, Describe, Execute, Close, Sync).
//!
//! pgwire stores statements and portals; this handler decides what they mean. Parse accepts
//! exactly one statement and asks the backend to prepare it ([`SqlBackend::prepare`]), which
//! yields the parameter types (declared by the client or inferred from use) and the result
//! columns, so Describe answers without running anything. Bind checks the parameter count and
//! decodes every value (`decode.rs`) before BindComplete. A portal runs once, at its first
//! Execute, through [`SqlBackend::execute_prepared`]; its result is kept in [`PortalRuns`] and
//! handed out by Execute in `max_rows` chunks (`PortalSuspended` between chunks).
//!
//! A backend that does not prepare (`prepare` answers `None`) gets the older path: statements
//! without placeholders only, run as text, at their Describe when the backend cannot describe
//! them either.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Sink, SinkExt};
use meridian_sql::{ColumnInfo, SqlType, StatementResult};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Bind, BindComplete, Describe, Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;

use crate::backend::{SqlBackend, StatementInfo, query_canceled, until_cancelled};
use crate::cancel::StatementCancel;
use crate::copy::{send_copy_out, start_copy_in};
use crate::decode::{declared_type, decode_params};
use crate::encode::{column_formats, encode_rows, field_infos, pg_type, query_response};
use crate::error::{Error, Severity, pg_error, sql_error};
use crate::server::Handler;
use crate::session::{PortalRun, PortalRuns, session_slot};
use meridian_sql::lexical as shape;

/// A parsed statement: its text and what the backend said about it at Parse.
#[derive(Debug, Clone)]
pub(crate) struct PreparedSql {
    pub sql: Arc<str>,
    /// Parameter and result types; `None` when the backend does not prepare statements.
    pub info: Option<Arc<StatementInfo>>,
    /// The parameter types the client declared (`None`: inferred).
    pub declared: Arc<[Option<SqlType>]>,
    /// The type each parameter's value arrives as: the declared type, else the inferred one.
    pub wire: Arc<[Type]>,
}

/// Checks statement text at Parse time and prepares it with the connection's session; see the
/// module documentation.
pub(crate) struct StatementParser<B: SqlBackend> {
    pub backend: Arc<B>,
}

impl<B: SqlBackend> Debug for StatementParser<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatementParser")
    }
}

#[async_trait::async_trait]
impl<B: SqlBackend> QueryParser for StatementParser<B> {
    type Statement = PreparedSql;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedSql>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let shape = shape::scan(sql);
        match shape.statements {
            0 => return Ok(None),
            1 => {}
            _ => {
                return Err(user_error(
                    "42601",
                    "cannot insert multiple commands into a prepared statement",
                ));
            }
        }
        let declared = types
            .iter()
            .map(|t| declared_type(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| pg_error(err, Severity::Error))?;
        let info = {
            let slot = session_slot::<B::Session, C>(client)?;
            let mut session = slot.session.lock().await;
            self.backend
                .prepare(&mut session, sql, &declared)
                .await
                .map_err(|err| pg_error(err, Severity::Error))?
        };
        let Some(info) = info else {
            if shape.has_placeholders || !types.is_empty() {
                return Err(user_error(
                    "0A000",
                    "extended query protocol with parameters is not supported by this backend",
                ));
            }
            return Ok(Some(PreparedSql {
                sql: sql.into(),
                info: None,
                declared: Arc::from(declared),
                wire: Arc::from(Vec::new()),
            }));
        };
        let wire: Vec<Type> = info
            .params
            .iter()
            .enumerate()
            .map(|(i, ty)| match types.get(i) {
                Some(Some(t)) if t.oid() != 0 && t.oid() != 705 => t.clone(),
                _ => pg_type(*ty),
            })
            .collect();
        Ok(Some(PreparedSql {
            sql: sql.into(),
            info: Some(Arc::new(info)),
            declared: Arc::from(declared),
            wire: Arc::from(wire),
        }))
    }

    fn get_parameter_types(&self, stmt: &PreparedSql) -> PgWireResult<Vec<Type>> {
        Ok(stmt.wire.to_vec())
    }

    fn get_result_schema(
        &self,
        _stmt: &PreparedSql,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        // Result schemas come from the statement's info or the backend session; the
        // handler's describe methods never call this.
        Err(user_error(
            "XX000",
            "internal error: result schema requested from the parser",
        ))
    }
}

#[async_trait::async_trait]
impl<B: SqlBackend> ExtendedQueryHandler for Handler<B> {
    type Statement = PreparedSql;
    type QueryParser = StatementParser<B>;

    fn query_parser(&self) -> Arc<StatementParser<B>> {
        Arc::clone(&self.parser)
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let statement = client
            .portal_store()
            .get_statement(statement_name)
            .ok_or_else(|| PgWireError::StatementNotFound(statement_name.to_owned()))?;
        if let Entry::Value(statement) = &statement {
            let wanted = statement.statement.wire.len();
            if message.parameters.len() != wanted {
                let shown = message.statement_name.as_deref().unwrap_or("");
                return Err(user_error(
                    "08P01",
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{shown}\" \
                         requires {wanted}",
                        message.parameters.len()
                    ),
                ));
            }
        } else if !message.parameters.is_empty() {
            return Err(user_error(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but the empty statement requires 0",
                    message.parameters.len()
                ),
            ));
        }
        match statement {
            Entry::Value(statement) => {
                let portal = Portal::try_new(&message, statement)?;
                // Decoded here so that a bad value fails the Bind, as in PostgreSQL; Execute
                // decodes again (cheap) rather than keeping a second copy in the portal.
                decode_params(
                    &portal.parameters,
                    &portal.parameter_format,
                    &portal.statement.statement.wire,
                )
                .map_err(|err| pg_error(err, Severity::Error))?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Entry::Empty => {
                let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_portal(portal_name);
            }
        }
        client
            .send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Describing a portal may run it, so it counts as a running statement.
        let _running = self
            .state
            .begin()
            .map_err(|err| pg_error(err, Severity::Fatal))?;
        self._on_describe(client, message).await
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // pgwire's default Execute is not used: it reserves memory for `max_rows` rows up
        // front, which a hostile client can set to 2^31.
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .send(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(name.to_owned())),
        };
        let _running = self
            .state
            .begin()
            .map_err(|err| pg_error(err, Severity::Fatal))?;
        let cell = portal.state();
        let runs = PortalRuns::of(client);
        let run = match runs.take(&cell) {
            Some(run) => run,
            None => {
                let run = self.run_portal(client, &portal).await;
                self.sync_transaction_status(client).await?;
                run?
            }
        };
        let run = send_run(client, run, message.max_rows).await?;
        runs.put(&cell, run);
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<PreparedSql>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(info) = &target.statement.info {
            let formats = vec![FieldFormat::Text; info.columns.len()];
            return Ok(DescribeStatementResponse::new(
                target.statement.wire.to_vec(),
                field_infos(&info.columns, &formats),
            ));
        }
        let Some(columns) = self.describe(client, &target.statement).await? else {
            return Err(user_error(
                "0A000",
                "describing a prepared statement is not supported yet",
            ));
        };
        let formats = vec![FieldFormat::Text; columns.len()];
        Ok(DescribeStatementResponse::new(
            Vec::new(),
            field_infos(&columns, &formats),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedSql>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = portal.state();
        let runs = PortalRuns::of(client);
        if let Some(fields) = runs.fields(&cell) {
            return Ok(DescribePortalResponse::new(fields));
        }
        let known = match &portal.statement.statement.info {
            Some(info) => Some(info.columns.clone()),
            None => self.describe(client, &portal.statement.statement).await?,
        };
        if let Some(columns) = known {
            let formats = column_formats(&portal.result_column_format, columns.len())
                .map_err(|err| pg_error(err, Severity::Error))?;
            return Ok(DescribePortalResponse::new(field_infos(&columns, &formats)));
        }
        // The backend cannot describe without running: run the portal now and keep the
        // result for its Execute.
        let run = self.run_portal(client, portal).await;
        self.sync_transaction_status(client).await?;
        let run = run?;
        let fields = match &run {
            PortalRun::Rows { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        runs.put(&cell, run);
        Ok(DescribePortalResponse::new(fields))
    }

    /// Runs a portal for pgwire's default Execute path, which [`Self::on_execute`] replaces;
    /// kept consistent with it.
    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedSql>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(match self.run_portal(client, portal).await? {
            PortalRun::Rows { fields, rows } => {
                Response::Query(query_response(fields, rows.into()))
            }
            PortalRun::Command(tag) => Response::Execution(Tag::new(&tag)),
            PortalRun::Empty => Response::EmptyQuery,
            PortalRun::CopyIn(_) | PortalRun::CopyOut { .. } => {
                return Err(user_error("0A000", "COPY needs the server's own Execute"));
            }
        })
    }
}

impl<B: SqlBackend> Handler<B> {
    /// Asks the backend for the result columns of a statement without running it.
    async fn describe<C: ClientInfo>(
        &self,
        client: &C,
        statement: &PreparedSql,
    ) -> PgWireResult<Option<Vec<ColumnInfo>>> {
        let slot = session_slot::<B::Session, C>(client)?;
        let mut session = slot.session.lock().await;
        self.backend
            .describe(&mut session, &statement.sql)
            .await
            .map_err(|err| pg_error(err, Severity::Error))
    }

    /// Runs a portal's statement and encodes its result in the portal's formats.
    async fn run_portal<C: ClientInfo>(
        &self,
        client: &C,
        portal: &Portal<PreparedSql>,
    ) -> PgWireResult<PortalRun> {
        let statement = &portal.statement.statement;
        let slot = session_slot::<B::Session, C>(client)?;
        let mut results = if statement.info.is_some() {
            let params = decode_params(
                &portal.parameters,
                &portal.parameter_format,
                &statement.wire,
            )
            .map_err(|err| pg_error(err, Severity::Error))?;
            let mut session = slot.session.lock().await;
            let cancel = StatementCancel::start(client);
            let run = self.backend.execute_prepared(
                &mut session,
                &statement.sql,
                &statement.declared,
                params,
            );
            // Dropping the statement at an await point is safe for the node's engine, as for
            // simple queries (see `SqlBackend::execute_cancellable`).
            vec![
                until_cancelled(run, &cancel.token())
                    .await
                    .unwrap_or_else(|| Err(query_canceled())),
            ]
        } else {
            let mut session = slot.session.lock().await;
            let cancel = StatementCancel::start(client);
            self.backend
                .execute_cancellable(&mut session, &statement.sql, cancel.token())
                .await
        }
        .into_iter();
        let run = match results.next() {
            None => PortalRun::Empty,
            Some(Err(err)) => return Err(pg_error(err, Severity::Error)),
            Some(Ok(StatementResult::Command { tag })) => PortalRun::Command(tag),
            Some(Ok(StatementResult::CopyIn(copy))) => PortalRun::CopyIn(copy),
            Some(Ok(StatementResult::CopyOut { rows, lines })) => {
                PortalRun::CopyOut { rows, lines }
            }
            Some(Ok(StatementResult::Query { columns, rows })) => {
                let formats = column_formats(&portal.result_column_format, columns.len())
                    .map_err(|err| pg_error(err, Severity::Error))?;
                let data = encode_rows(&columns, &formats, &rows)?;
                PortalRun::Rows {
                    fields: field_infos(&columns, &formats),
                    rows: data.into(),
                }
            }
        };
        if results.next().is_some() {
            // Parse admits a single statement, so this is a backend bug.
            return Err(Error::SeveralResults.into());
        }
        Ok(run)
    }
}

/// Sends up to `max_rows` rows of a run (all when `max_rows <= 0`), then `PortalSuspended` if
/// rows remain or the completion otherwise. Returns what is left of the run.
async fn send_run<C>(client: &mut C, run: PortalRun, max_rows: i32) -> PgWireResult<PortalRun>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match run {
        PortalRun::Rows { fields, mut rows } => {
            let limit = usize::try_from(max_rows)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(usize::MAX);
            let mut sent = 0;
            while sent < limit {
                let Some(row) = rows.pop_front() else { break };
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            let done = if rows.is_empty() {
                PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(sent).into())
            } else {
                PgWireBackendMessage::PortalSuspended(PortalSuspended::new())
            };
            client.send(done).await?;
            Ok(PortalRun::Rows { fields, rows })
        }
        PortalRun::Command(tag) => {
            client
                .send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).into()))
                .await?;
            Ok(PortalRun::Command(tag))
        }
        PortalRun::Empty => {
            client
                .send(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
            Ok(PortalRun::Empty)
        }
        // The data comes next (the client's Sync is ignored until CopyDone).
        PortalRun::CopyIn(copy) => {
            start_copy_in(client, copy, true).await?;
            Ok(PortalRun::Empty)
        }
        PortalRun::CopyOut { rows, lines } => {
            send_copy_out(client, rows, lines).await?;
            Ok(PortalRun::Command(format!("COPY {rows}")))
        }
    }
}

fn user_error(code: &'static str, message: impl Into<String>) -> PgWireError {
    pg_error(sql_error(code, message), Severity::Error)
}
