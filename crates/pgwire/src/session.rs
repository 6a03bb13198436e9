//! Per-connection state kept in pgwire's session extensions: the backend session, and the
//! results of extended-protocol portals that have started running.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use pgwire::api::ClientInfo;
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::results::FieldInfo;
use pgwire::messages::data::DataRow;

use crate::error::Error;

/// The backend session of one connection (opened for the user and database of its startup
/// message, which pgwire also keeps in the connection's metadata).
pub(crate) struct SessionSlot<S> {
    /// The session. pgwire handles one message of a connection at a time, so this lock is
    /// never contended; it exists because the slot is shared through an `Arc`.
    pub session: tokio::sync::Mutex<S>,
}

/// The session slot of a connection, stored at startup.
pub(crate) fn session_slot<S: Send + 'static, C: ClientInfo + ?Sized>(
    client: &C,
) -> Result<Arc<SessionSlot<S>>, Error> {
    client
        .session_extensions()
        .get::<SessionSlot<S>>()
        .ok_or(Error::MissingSession)
}

/// The result of a portal that has run, as far as it has been sent.
pub(crate) enum PortalRun {
    /// A row-returning statement: its fields and the rows not sent yet.
    Rows {
        /// Result fields in the portal's formats.
        fields: Vec<FieldInfo>,
        /// Encoded rows still to send.
        rows: VecDeque<DataRow>,
    },
    /// A statement without rows, with its command tag. Executing the portal again repeats
    /// the tag without running the statement again.
    Command(String),
    /// The text held no statement.
    Empty,
    /// A `COPY ... FROM STDIN`, whose data the client sends after Execute.
    CopyIn(meridian_sql::CopyIn),
    /// A `COPY ... TO STDOUT`: the row count and the formatted lines.
    CopyOut { rows: u64, lines: Vec<Vec<u8>> },
}

/// pgwire's per-portal state cell; its address identifies a portal for as long as it lives.
type PortalCell = tokio::sync::Mutex<PortalExecutionState>;

/// The runs of the connection's live portals.
///
/// Entries are keyed by the portal's state cell and hold only a weak reference to it, so an
/// entry dies with its portal (closed, rebound under the same name, or the unnamed portal at
/// Sync) and is pruned on the next access.
#[derive(Default)]
pub(crate) struct PortalRuns {
    runs: Mutex<Vec<(Weak<PortalCell>, PortalRun)>>,
}

impl PortalRuns {
    /// The registry of a connection.
    pub(crate) fn of<C: ClientInfo + ?Sized>(client: &C) -> Arc<PortalRuns> {
        client
            .session_extensions()
            .get_or_insert_with(PortalRuns::default)
    }

    /// Removes and returns the run of `portal`, if it has started.
    pub(crate) fn take(&self, portal: &Arc<PortalCell>) -> Option<PortalRun> {
        let mut runs = self.lock();
        let at = runs.iter().position(|(cell, _)| is(cell, portal))?;
        Some(runs.swap_remove(at).1)
    }

    /// The result fields of `portal` if it has started and returns rows: `Some(vec![])` for
    /// a command or empty statement, `None` if it has not run.
    pub(crate) fn fields(&self, portal: &Arc<PortalCell>) -> Option<Vec<FieldInfo>> {
        let runs = self.lock();
        runs.iter()
            .find(|(cell, _)| is(cell, portal))
            .map(|(_, run)| match run {
                PortalRun::Rows { fields, .. } => fields.clone(),
                _ => Vec::new(),
            })
    }

    /// Records the run of `portal`.
    pub(crate) fn put(&self, portal: &Arc<PortalCell>, run: PortalRun) {
        let mut runs = self.lock();
        runs.retain(|(cell, _)| cell.strong_count() > 0 && !is(cell, portal));
        runs.push((Arc::downgrade(portal), run));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Weak<PortalCell>, PortalRun)>> {
        // A panic while holding this lock cannot leave the vector half-updated.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn is(cell: &Weak<PortalCell>, portal: &Arc<PortalCell>) -> bool {
    std::ptr::eq(cell.as_ptr(), Arc::as_ptr(portal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_die_with_their_portal() {
        let runs = PortalRuns::default();
        let a = Arc::new(PortalCell::default());
        let b = Arc::new(PortalCell::default());
        runs.put(&a, PortalRun::Command("INSERT 0 1".into()));
        runs.put(&b, PortalRun::Empty);
        assert_eq!(runs.fields(&a), Some(vec![]));
        drop(b);
        let c = Arc::new(PortalCell::default());
        assert!(runs.take(&c).is_none());
        runs.put(&c, PortalRun::Empty);
        // The dead portal's entry was pruned by the last put.
        assert_eq!(runs.lock().len(), 2);
        assert!(matches!(runs.take(&a), Some(PortalRun::Command(tag)) if tag == "INSERT 0 1"));
        assert!(runs.take(&a).is_none());
    }
}
