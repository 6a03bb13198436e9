//! Writes to a group's Raft log: appending a Ready, snapshots, compaction, bootstrap.

use std::sync::{Arc, RwLock};

use raft::StorageError;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};

use super::{LogState, RaftLogStore, keys};
use crate::engine::{Durability, ScanOrder, Space, WriteBatch};
use crate::error::{Error, Result};

/// Log writes added to a [`WriteBatch`] by [`RaftLogStore::stage`] whose effect on the
/// store's cache is still pending: call [`StagedLog::commit`] once the batch is written.
#[must_use = "the store's cache is only updated by StagedLog::commit"]
#[derive(Debug)]
pub struct StagedLog {
    state: Arc<RwLock<LogState>>,
    /// New last index and term, if entries were appended.
    last: Option<(u64, u64)>,
    hard_state: Option<HardState>,
    /// Bytes of the entries written, and of the stored entries they replace.
    added_bytes: u64,
    removed_bytes: u64,
}

impl StagedLog {
    /// Makes the staged writes visible through the store, after the batch that holds them
    /// has been written.
    pub fn commit(self) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some((index, term)) = self.last {
            state.last_index = index;
            state.last_term = term;
        }
        state.entry_bytes = state
            .entry_bytes
            .saturating_sub(self.removed_bytes)
            .saturating_add(self.added_bytes);
        if let Some(hs) = self.hard_state {
            state.hard_state = hs;
        }
    }
}

impl RaftLogStore {
    /// Persists what a Raft `Ready` asks for in one atomic write: `entries` are appended,
    /// replacing any existing entries from `entries[0].index` on (a conflicting suffix left
    /// by an old leader), then `hard_state` is saved.
    pub fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        durability: Durability,
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        let staged = self.stage(&mut batch, entries, hard_state)?;
        self.engine.write(batch, durability)?;
        staged.commit();
        Ok(())
    }

    /// Adds the writes of [`RaftLogStore::persist`] to `batch` without writing it, so that
    /// one engine write can carry the Ready of many groups. After the batch is written, call
    /// [`StagedLog::commit`]; stage a group at most once per batch.
    pub fn stage(
        &self,
        batch: &mut WriteBatch,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<StagedLog> {
        let state = self.read();
        let mut last = None;
        let (mut added_bytes, mut removed_bytes) = (0u64, 0u64);
        if let Some(tail) = entries.last() {
            self.check_append(&state, entries)?;
            let first = entries[0].index;
            if first <= state.last_index {
                // A conflicting suffix is replaced (rare): weigh what goes.
                let range = keys::entry_range(self.group_id, first, state.last_index + 1);
                for item in self
                    .engine
                    .iter(Space::RaftLog, range, ScanOrder::Forward)?
                {
                    let (_, value) = item?;
                    removed_bytes = removed_bytes.saturating_add(value.len() as u64);
                }
            }
            for e in entries {
                let value = keys::encode(e)?;
                added_bytes = added_bytes.saturating_add(value.len() as u64);
                batch.put(
                    Space::RaftLog,
                    keys::entry_key(self.group_id, e.index),
                    value,
                );
            }
            // Entries past the new tail belong to the replaced suffix.
            if state.last_index > tail.index {
                for index in tail.index + 1..=state.last_index {
                    batch.delete(Space::RaftLog, keys::entry_key(self.group_id, index));
                }
            }
            last = Some((tail.index, tail.term));
        }
        if let Some(hs) = hard_state {
            batch.put(
                Space::RaftState,
                keys::hard_state_key(self.group_id),
                keys::encode(hs)?,
            );
        }
        Ok(StagedLog {
            state: Arc::clone(&self.state),
            last,
            hard_state: hard_state.cloned(),
            added_bytes,
            removed_bytes,
        })
    }

    fn check_append(&self, state: &LogState, entries: &[Entry]) -> Result<()> {
        let first = entries[0].index;
        let reject = |index, reason| Error::LogAppend {
            group_id: self.group_id,
            index,
            reason,
        };
        if first < state.first_index() {
            return Err(reject(first, "the log is compacted past it"));
        }
        if first > state.last_index.saturating_add(1) {
            return Err(reject(first, "it leaves a gap after the last entry"));
        }
        for (i, e) in entries.iter().enumerate() {
            if first.checked_add(i as u64) != Some(e.index) {
                return Err(reject(e.index, "entries are not contiguous"));
            }
        }
        Ok(())
    }

    /// Replaces the log with the state described by `snap`'s metadata: every entry is
    /// removed, the log continues after the snapshot index, the conf state is the
    /// snapshot's, and the hard state commits the snapshot index. Synced.
    ///
    /// Fails with `SnapshotOutOfDate` if the snapshot is older than the first index.
    pub fn apply_snapshot(&self, snap: &Snapshot) -> Result<()> {
        self.apply_snapshot_with(snap, WriteBatch::new())
    }

    /// [`RaftLogStore::apply_snapshot`], writing `extra` (the state machine's share of the
    /// snapshot) in the same atomic write.
    pub fn apply_snapshot_with(&self, snap: &Snapshot, mut batch: WriteBatch) -> Result<()> {
        let meta = snap.get_metadata();
        let mut state = self.write();
        if state.first_index() > meta.index {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        let mut hard_state = state.hard_state.clone();
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = meta.index;
        for index in state.first_index()..=state.last_index {
            batch.delete(Space::RaftLog, keys::entry_key(self.group_id, index));
        }
        batch.put(
            Space::RaftState,
            keys::truncated_key(self.group_id),
            keys::encode_truncated(meta.index, meta.term),
        );
        batch.put(
            Space::RaftState,
            keys::conf_state_key(self.group_id),
            keys::encode(meta.get_conf_state())?,
        );
        batch.put(
            Space::RaftState,
            keys::hard_state_key(self.group_id),
            keys::encode(&hard_state)?,
        );
        self.engine.write(batch, Durability::Sync)?;
        state.truncated_index = meta.index;
        state.truncated_term = meta.term;
        state.last_index = meta.index;
        state.last_term = meta.term;
        state.entry_bytes = 0;
        state.conf_state = meta.get_conf_state().clone();
        state.hard_state = hard_state;
        state.snapshot = Some(meta.clone());
        Ok(())
    }

    /// Removes every entry and all state of the group, with `extra` in the same synced write
    /// (a replica that left its group). The store must not be used afterwards.
    pub fn destroy_with(&self, mut batch: WriteBatch) -> Result<()> {
        let mut state = self.write();
        for index in state.first_index()..=state.last_index {
            batch.delete(Space::RaftLog, keys::entry_key(self.group_id, index));
        }
        batch.delete(Space::RaftState, keys::truncated_key(self.group_id));
        batch.delete(Space::RaftState, keys::conf_state_key(self.group_id));
        batch.delete(Space::RaftState, keys::hard_state_key(self.group_id));
        self.engine.write(batch, Durability::Sync)?;
        *state = LogState::default();
        Ok(())
    }

    /// Removes the entries before `compact_index`, remembering the term of the last one
    /// removed. Compacting at or below the first index does nothing. It is the caller's job
    /// not to compact past the applied index.
    ///
    /// Not synced: a compaction lost in a crash only leaves entries that are still valid.
    pub fn compact(&self, compact_index: u64) -> Result<()> {
        let mut state = self.write();
        if compact_index <= state.first_index() {
            return Ok(());
        }
        if compact_index > state.last_index.saturating_add(1) {
            return Err(Error::CompactBeyondLog {
                group_id: self.group_id,
                compact_index,
                last_index: state.last_index,
            });
        }
        let term = self.term_of(&state, compact_index - 1)?;
        let mut batch = WriteBatch::new();
        let mut removed_bytes = 0u64;
        let range = keys::entry_range(self.group_id, state.first_index(), compact_index);
        for item in self
            .engine
            .iter(Space::RaftLog, range, ScanOrder::Forward)?
        {
            let (key, value) = item?;
            removed_bytes = removed_bytes.saturating_add(value.len() as u64);
            batch.delete(Space::RaftLog, key);
        }
        batch.put(
            Space::RaftState,
            keys::truncated_key(self.group_id),
            keys::encode_truncated(compact_index - 1, term),
        );
        self.engine.write(batch, Durability::NoSync)?;
        state.truncated_index = compact_index - 1;
        state.truncated_term = term;
        state.entry_bytes = state.entry_bytes.saturating_sub(removed_bytes);
        Ok(())
    }

    /// Bootstraps a new group with `conf_state` (synced). Fails if the group already has a
    /// configuration, entries or a hard state.
    pub fn initialize(&self, conf_state: ConfState) -> Result<()> {
        let mut state = self.write();
        self.check_uninitialized(&state)?;
        self.save_conf_state(&mut state, conf_state, WriteBatch::new(), Durability::Sync)
    }

    /// Bootstraps a new group whose log starts after `index` at `term`, as if a snapshot at
    /// that index had been applied, writing `extra` (the state machine's matching state) in
    /// the same synced write. A replica added to the group later has an empty log, which is
    /// behind the first index: the leader must send it a snapshot, which carries the state
    /// machine's data.
    pub fn initialize_at(
        &self,
        conf_state: ConfState,
        index: u64,
        term: u64,
        mut batch: WriteBatch,
    ) -> Result<()> {
        let mut state = self.write();
        self.check_uninitialized(&state)?;
        let hard_state = HardState {
            term,
            commit: index,
            ..Default::default()
        };
        batch.put(
            Space::RaftState,
            keys::truncated_key(self.group_id),
            keys::encode_truncated(index, term),
        );
        batch.put(
            Space::RaftState,
            keys::hard_state_key(self.group_id),
            keys::encode(&hard_state)?,
        );
        self.save_conf_state(&mut state, conf_state, batch, Durability::Sync)?;
        state.truncated_index = index;
        state.truncated_term = term;
        state.last_index = index;
        state.last_term = term;
        state.hard_state = hard_state;
        Ok(())
    }

    fn check_uninitialized(&self, state: &LogState) -> Result<()> {
        if state.conf_state != ConfState::default()
            || state.last_index != 0
            || state.hard_state != HardState::default()
        {
            return Err(Error::AlreadyInitialized {
                group_id: self.group_id,
            });
        }
        Ok(())
    }

    /// Saves a new conf state, after a configuration change has been applied.
    pub fn set_conf_state(&self, conf_state: ConfState, durability: Durability) -> Result<()> {
        self.set_conf_state_with(conf_state, WriteBatch::new(), durability)
    }

    /// [`RaftLogStore::set_conf_state`], writing `extra` in the same atomic write (the state
    /// machine's record of the change and its applied index).
    pub fn set_conf_state_with(
        &self,
        conf_state: ConfState,
        extra: WriteBatch,
        durability: Durability,
    ) -> Result<()> {
        let mut state = self.write();
        self.save_conf_state(&mut state, conf_state, extra, durability)
    }

    fn save_conf_state(
        &self,
        state: &mut LogState,
        conf_state: ConfState,
        mut batch: WriteBatch,
        durability: Durability,
    ) -> Result<()> {
        batch.put(
            Space::RaftState,
            keys::conf_state_key(self.group_id),
            keys::encode(&conf_state)?,
        );
        self.engine.write(batch, durability)?;
        state.conf_state = conf_state;
        Ok(())
    }
}
