//! The COPY sub-protocol.
//!
//! `COPY ... FROM STDIN`: when a statement answers [`meridian_sql::StatementResult::CopyIn`]
//! the server sends CopyInResponse and the connection enters pgwire's copy-in state; CopyData
//! messages are collected here ([`PendingCopy`], bounded by [`MAX_COPY_BYTES`]) and CopyDone hands them to
//! [`SqlBackend::copy_in`], whose row count completes the statement (`COPY n`). CopyFail, or an
//! error, ends it with nothing loaded. pgwire sends the ReadyForQuery (simple protocol) or
//! waits for Sync (extended).
//!
//! `COPY ... TO STDOUT` ([`meridian_sql::StatementResult::CopyOut`]): CopyOutResponse, one
//! CopyData per line, CopyDone and `COPY n`, all at once.

use std::fmt::Debug;
use std::sync::Mutex;

use futures::{Sink, SinkExt};
use meridian_sql::CopyIn;
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::Tag;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};

use crate::backend::SqlBackend;
use crate::error::{Severity, pg_error, sql_error};
use crate::server::Handler;
use crate::session::session_slot;

/// The most COPY data one statement may send (the rows are loaded as one transaction).
pub(crate) const MAX_COPY_BYTES: usize = 1 << 30;

/// The COPY FROM STDIN a connection is receiving data for.
#[derive(Default)]
pub(crate) struct PendingCopy {
    state: Mutex<Option<Receiving>>,
}

/// A COPY FROM STDIN and the data received so far.
struct Receiving {
    copy: CopyIn,
    data: Vec<u8>,
    /// The data passed [`MAX_COPY_BYTES`]: the rest is discarded and CopyDone fails.
    overflow: bool,
}

impl PendingCopy {
    fn of<C: ClientInfo + ?Sized>(client: &C) -> std::sync::Arc<PendingCopy> {
        client
            .session_extensions()
            .get_or_insert_with(PendingCopy::default)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Receiving>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts a COPY FROM STDIN: CopyInResponse (text format, one code per column) and the
/// copy-in state; `extended` when it came through Execute.
pub(crate) async fn start_copy_in<C>(
    client: &mut C,
    copy: CopyIn,
    extended: bool,
) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let columns = copy.columns.len();
    *PendingCopy::of(client).lock() = Some(Receiving {
        copy,
        data: Vec::new(),
        overflow: false,
    });
    let width = i16::try_from(columns).unwrap_or(i16::MAX);
    client
        .send(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(
            0,
            width,
            vec![0; columns],
        )))
        .await?;
    client.set_state(PgWireConnectionState::CopyInProgress(extended));
    Ok(())
}

/// Sends the whole answer of a COPY TO STDOUT.
pub(crate) async fn send_copy_out<C>(
    client: &mut C,
    rows: u64,
    lines: Vec<Vec<u8>>,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    // The column count is informational for text COPY; clients read lines.
    client
        .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            0,
            vec![],
        )))
        .await?;
    for line in lines {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(line.into())))
            .await?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    client
        .feed(PgWireBackendMessage::CommandComplete(
            Tag::new("COPY").with_rows(rows as usize).into(),
        ))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl<B: SqlBackend> CopyHandler for Handler<B> {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pending = PendingCopy::of(client);
        let mut state = pending.lock();
        let Some(r) = state.as_mut() else {
            return Err(pg_error(
                sql_error("08P01", "CopyData outside COPY FROM STDIN"),
                Severity::Error,
            ));
        };
        if r.overflow || r.data.len() + copy_data.data.len() > MAX_COPY_BYTES {
            // As PostgreSQL does after an error in COPY, the rest is read and discarded.
            r.overflow = true;
            r.data = Vec::new();
        } else {
            r.data.extend_from_slice(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(r) = PendingCopy::of(client).lock().take() else {
            return Err(pg_error(
                sql_error("08P01", "CopyDone outside COPY FROM STDIN"),
                Severity::Error,
            ));
        };
        if r.overflow {
            return Err(pg_error(
                sql_error(
                    "54000",
                    format!("COPY data exceeds the limit of {MAX_COPY_BYTES} bytes per statement"),
                ),
                Severity::Error,
            ));
        }
        let (copy, data) = (r.copy, r.data);
        let loaded = {
            let slot = session_slot::<B::Session, C>(client)?;
            let mut session = slot.session.lock().await;
            self.backend.copy_in(&mut session, &copy, data).await
        };
        self.sync_transaction_status(client).await?;
        let rows = loaded.map_err(|err| pg_error(err, Severity::Error))?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        PendingCopy::of(client).lock().take();
        pg_error(
            sql_error("57014", format!("COPY from stdin failed: {}", fail.message)),
            Severity::Error,
        )
    }
}
