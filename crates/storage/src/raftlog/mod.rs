//! A durable Raft log for one Raft group, implementing raft-rs's [`raft::Storage`].
//!
//! Many groups share one engine: each group's entries and state live under keys that start
//! with its group id (layout in `keys.rs`). A [`RaftLogStore`] caches the small state (hard
//! state, conf state, first and last index, last term) in memory and reads entries from the
//! engine.
//!
//! The semantics follow raft-rs's `MemStorage` (its tests are mirrored in this module's
//! tests), with three deliberate differences:
//! - `term(first_index - 1)` returns the term of the last compacted entry instead of
//!   `Compacted`, as etcd's storage does, so log matching works right after a compaction;
//! - requests raft-rs documents as panics (reading past the last index, appending over
//!   compacted entries or with a gap, compacting past the end) return errors instead;
//! - [`raft::Storage::snapshot`] asks the state machine for one through the builder it
//!   installed with [`RaftLogStore::set_snapshot_builder`] (the builder puts the data of the
//!   applied state in it); without a builder it serves the metadata the state machine last
//!   declared with [`RaftLogStore::set_snapshot_metadata`], without data, instead of
//!   inventing one from the commit index.

mod keys;
mod write;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

pub use write::StagedLog;

use crate::engine::{KvEngine, ScanOrder, Space};
use crate::error::{Error, Result};

/// The Raft log and state of one group. Clones share the same cache; the Ready loop that
/// owns the group is the only writer.
#[derive(Clone)]
pub struct RaftLogStore {
    group_id: u64,
    engine: Arc<dyn KvEngine>,
    state: Arc<RwLock<LogState>>,
    builder: Arc<RwLock<Option<SnapshotBuilder>>>,
}

/// Builds a snapshot of the state machine as applied now: metadata (applied index, its term,
/// the conf state at that index) and data.
pub type SnapshotBuilder = Arc<dyn Fn(&RaftLogStore) -> Result<Snapshot> + Send + Sync>;

/// The cached, small part of a group's log state.
#[derive(Clone, Debug, Default)]
struct LogState {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last entry removed by compaction or a snapshot; the first
    /// entry in the log is `truncated_index + 1`.
    truncated_index: u64,
    truncated_term: u64,
    /// Index and term of the last entry (equal to the truncated ones when the log is empty).
    last_index: u64,
    last_term: u64,
    /// Bytes the stored entries take (their encoded size), which compaction policies weigh.
    entry_bytes: u64,
    /// What [`raft::Storage::snapshot`] returns; in memory only.
    snapshot: Option<SnapshotMetadata>,
}

impl LogState {
    fn first_index(&self) -> u64 {
        self.truncated_index.saturating_add(1)
    }
}

impl RaftLogStore {
    /// Opens the log of `group_id` in `engine`, recovering its state (an empty log if the
    /// group has never written anything).
    pub fn open(engine: Arc<dyn KvEngine>, group_id: u64) -> Result<Self> {
        let get = |key: &[u8]| engine.get(Space::RaftState, key);
        let mut state = LogState::default();
        if let Some(v) = get(&keys::hard_state_key(group_id))? {
            state.hard_state = keys::decode(group_id, "hard state", &v)?;
        }
        if let Some(v) = get(&keys::conf_state_key(group_id))? {
            state.conf_state = keys::decode(group_id, "conf state", &v)?;
        }
        if let Some(v) = get(&keys::truncated_key(group_id))? {
            (state.truncated_index, state.truncated_term) = keys::decode_truncated(group_id, &v)?;
        }
        let last = engine.first(
            Space::RaftLog,
            keys::all_entries(group_id),
            ScanOrder::Reverse,
        )?;
        // One pass over the stored entries for their size (compaction keeps the log short).
        for item in engine.iter(
            Space::RaftLog,
            keys::all_entries(group_id),
            ScanOrder::Forward,
        )? {
            let (_, value) = item?;
            state.entry_bytes = state.entry_bytes.saturating_add(value.len() as u64);
        }
        (state.last_index, state.last_term) = match last {
            None => (state.truncated_index, state.truncated_term),
            Some((key, value)) => {
                let entry = parse_entry(group_id, keys::entry_index(group_id, &key)?, &value)?;
                (entry.index, entry.term)
            }
        };
        if state.last_index < state.truncated_index || state.hard_state.commit > state.last_index {
            return Err(Error::corrupt(format!(
                "raft log of group {group_id}: truncated at {}, last index {}, commit {}",
                state.truncated_index, state.last_index, state.hard_state.commit
            )));
        }
        tracing::debug!(group_id, ?state, "opened raft log");
        Ok(RaftLogStore {
            group_id,
            engine,
            state: Arc::new(RwLock::new(state)),
            builder: Arc::new(RwLock::new(None)),
        })
    }

    /// The Raft group this log belongs to.
    pub fn group_id(&self) -> u64 {
        self.group_id
    }

    /// Whether the group has a configuration (bootstrapped, or received a snapshot).
    pub fn is_initialized(&self) -> bool {
        self.read().conf_state != ConfState::default()
    }

    /// The current hard state.
    pub fn hard_state(&self) -> HardState {
        self.read().hard_state.clone()
    }

    /// The current conf state.
    pub fn conf_state(&self) -> ConfState {
        self.read().conf_state.clone()
    }

    /// Declares that the state machine can produce a snapshot described by `meta` (applied
    /// index and term, and the conf state at that index); [`raft::Storage::snapshot`] serves
    /// it from then on. Kept in memory only: after a restart the state machine declares it
    /// again.
    pub fn set_snapshot_metadata(&self, meta: SnapshotMetadata) {
        self.write().snapshot = Some(meta);
    }

    /// Installs the function [`raft::Storage::snapshot`] builds snapshots with.
    pub fn set_snapshot_builder(&self, builder: SnapshotBuilder) {
        *self.builder.write().unwrap_or_else(|e| e.into_inner()) = Some(builder);
    }

    /// The first index still in the log.
    pub fn first_log_index(&self) -> u64 {
        self.read().first_index()
    }

    /// The last index in the log (the truncated index when the log is empty).
    pub fn last_log_index(&self) -> u64 {
        self.read().last_index
    }

    /// How many entries the log holds and how many bytes they take in the engine.
    pub fn log_size(&self) -> (u64, u64) {
        let state = self.read();
        (state.last_index - state.truncated_index, state.entry_bytes)
    }

    /// The term of entry `idx` (which must be in `[first_index - 1, last_index]`).
    pub fn term_at(&self, idx: u64) -> Result<u64> {
        self.term_of(&self.read(), idx)
    }

    fn read(&self) -> RwLockReadGuard<'_, LogState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, LogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The term of entry `idx`, which must be in `[first_index - 1, last_index]`.
    fn term_of(&self, state: &LogState, idx: u64) -> Result<u64> {
        if idx == state.truncated_index {
            return Ok(state.truncated_term);
        }
        if idx < state.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if idx > state.last_index {
            return Err(StorageError::Unavailable.into());
        }
        if idx == state.last_index {
            return Ok(state.last_term);
        }
        let key = keys::entry_key(self.group_id, idx);
        match self.engine.get(Space::RaftLog, &key)? {
            Some(v) => Ok(parse_entry(self.group_id, idx, &v)?.term),
            None => Err(Error::corrupt(format!(
                "raft log of group {}: entry {idx} is missing",
                self.group_id
            ))),
        }
    }

    /// Entries `[low, high)`, limited to `max_size` bytes but at least one entry.
    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let state = self.read();
        if low < state.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if high > state.last_index.saturating_add(1) || low > high {
            tracing::warn!(
                group_id = self.group_id,
                low,
                high,
                last_index = state.last_index,
                "raft log read out of bounds"
            );
            return Err(StorageError::Unavailable.into());
        }
        let max_size = max_size.unwrap_or(raft::NO_LIMIT);
        let mut out = Vec::new();
        let mut size = 0u64;
        let range = keys::entry_range(self.group_id, low, high);
        for pair in self
            .engine
            .iter(Space::RaftLog, range, ScanOrder::Forward)?
        {
            let (key, value) = pair?;
            let expected = low + out.len() as u64;
            let index = keys::entry_index(self.group_id, &key)?;
            if index != expected {
                return Err(Error::corrupt(format!(
                    "raft log of group {}: entry {expected} is missing",
                    self.group_id
                )));
            }
            size = size.saturating_add(value.len() as u64);
            if !out.is_empty() && size > max_size {
                return Ok(out);
            }
            out.push(parse_entry(self.group_id, index, &value)?);
        }
        if out.len() as u64 != high - low {
            return Err(Error::corrupt(format!(
                "raft log of group {}: entries [{}, {high}) are missing",
                self.group_id,
                low + out.len() as u64
            )));
        }
        Ok(out)
    }
}

impl std::fmt::Debug for RaftLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLogStore")
            .field("group_id", &self.group_id)
            .field("state", &*self.read())
            .finish_non_exhaustive()
    }
}

/// Parses the entry stored at `index`, checking that it is the entry for that index.
fn parse_entry(group_id: u64, index: u64, bytes: &[u8]) -> Result<Entry> {
    let entry: Entry = keys::decode(group_id, "entry", bytes)?;
    if entry.index != index {
        return Err(Error::corrupt(format!(
            "raft log of group {group_id}: entry stored at {index} has index {}",
            entry.index
        )));
    }
    Ok(entry)
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Raft(raft::Error::Store(e))
    }
}

impl raft::Storage for RaftLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let state = self.read();
        Ok(RaftState::new(
            state.hard_state.clone(),
            state.conf_state.clone(),
        ))
    }

    /// The log entries `[low, high)`, at most `max_size` bytes of them but at least one.
    /// Reads are synchronous, so the context is not used.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        Ok(self.read_entries(low, high, max_size.into())?)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        Ok(self.term_of(&self.read(), idx)?)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read().last_index)
    }

    /// A snapshot from the builder, if one is installed; otherwise the snapshot last declared
    /// with [`RaftLogStore::set_snapshot_metadata`] (or applied with
    /// [`RaftLogStore::apply_snapshot`]), without data. `SnapshotTemporarilyUnavailable` if
    /// there is none at or above `request_index`.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let builder = self
            .builder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(build) = builder {
            let snap = build(self)?;
            if snap.get_metadata().index < request_index {
                return Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable,
                ));
            }
            return Ok(snap);
        }
        match &self.read().snapshot {
            Some(meta) if meta.index >= request_index => {
                let mut snap = Snapshot::default();
                snap.set_metadata(meta.clone());
                Ok(snap)
            }
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}

#[cfg(test)]
mod tests;
