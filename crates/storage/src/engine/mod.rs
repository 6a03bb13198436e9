//! The embedded key-value engine behind everything in this crate, as a small trait.
//!
//! An engine holds a few named, independently ordered keyspaces ([`Space`]) and applies a
//! [`WriteBatch`] of puts and deletes across them atomically. Reads return owned data:
//! [`KvEngine::get`] a single value, [`KvEngine::iter`] a boxed iterator over an ordered
//! range that sees a consistent snapshot taken when it was created (later writes are not
//! visible through it).
//!
//! Two implementations: [`FjallEngine`] on disk, and [`MemEngine`] in memory for tests and
//! simulation, which can [`MemEngine::crash`] to lose exactly the writes that were not synced.

mod fjall_engine;
mod mem;

use std::ops::Bound;

pub use fjall_engine::FjallEngine;
pub use mem::MemEngine;

use crate::error::Result;

/// A named keyspace. Each has its own key order; keys in different spaces never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// MVCC versions of user data (see [`crate::mvcc`]).
    Data,
    /// Raft log entries of every group on the node (see [`crate::raftlog`]).
    RaftLog,
    /// Raft hard state, conf state and log truncation state of every group.
    RaftState,
    /// Node-local metadata, such as each group's applied index.
    Meta,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Space; 4] = [Space::Data, Space::RaftLog, Space::RaftState, Space::Meta];

    /// The name used on disk.
    pub const fn name(self) -> &'static str {
        match self {
            Space::Data => "data",
            Space::RaftLog => "raft_log",
            Space::RaftState => "raft_state",
            Space::Meta => "meta",
        }
    }

    /// Position in [`Space::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// How durable a write must be when [`KvEngine::write`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// The write, and every write before it, survives a machine crash (the journal is
    /// fsynced).
    Sync,
    /// The write survives only a process crash at best; a machine crash may lose it along
    /// with any later write, but never a write that precedes a completed `Sync`.
    NoSync,
}

/// One operation of a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put {
        /// The keyspace.
        space: Space,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` (a no-op if absent).
    Delete {
        /// The keyspace.
        space: Space,
        /// The key.
        key: Vec<u8>,
    },
}

/// Puts and deletes across spaces, applied all-or-nothing by [`KvEngine::write`]. Later
/// operations on the same key win.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put {
            space,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete {
            space,
            key: key.into(),
        });
    }

    /// Appends every operation of `other` after this batch's own.
    pub fn append(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }
}

/// A key range `(start, end)` with arbitrary bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// `[start, end)`.
    pub fn half_open(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match crate::keycode::prefix_successor(prefix) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
        }
    }

    /// Whether no key can be in the range (for example `start > end`).
    pub fn is_empty(&self) -> bool {
        use Bound::*;
        match (&self.start, &self.end) {
            (Unbounded, _) | (_, Unbounded) => false,
            (Included(s), Included(e)) => s > e,
            (Included(s), Excluded(e)) | (Excluded(s), Included(e)) => s >= e,
            // (s, e) is empty when e is s or s's immediate successor `s ++ [0]`.
            (Excluded(s), Excluded(e)) => {
                s >= e || (e.len() == s.len() + 1 && e.starts_with(s) && e.last() == Some(&0))
            }
        }
    }

    /// Whether `key` is inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Unbounded => true,
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
        };
        let before_end = match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
        };
        after_start && before_end
    }
}

/// Iteration order of [`KvEngine::iter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanOrder {
    /// Smallest key first.
    Forward,
    /// Largest key first.
    Reverse,
}

/// An owned key-value pair.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// A boxed iterator over key-value pairs; it owns what it needs, so it does not borrow the
/// engine.
pub type KvIter = Box<dyn Iterator<Item = Result<KvPair>> + Send + 'static>;

/// An ordered, transactional-batch key-value store with named keyspaces.
pub trait KvEngine: Send + Sync + 'static {
    /// The value of `key`, if present.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Iterates over the keys of `space` inside `range` in `order`, over a snapshot taken now.
    fn iter(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<KvIter>;

    /// Applies `batch` atomically. With [`Durability::Sync`] the batch and everything
    /// written before it are on stable storage when this returns (even if `batch` is empty).
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()>;

    /// Up to `limit` pairs of `range`, in key order.
    fn scan(&self, space: Space, range: KeyRange, limit: Option<usize>) -> Result<Vec<KvPair>> {
        let iter = self.iter(space, range, ScanOrder::Forward)?;
        iter.take(limit.unwrap_or(usize::MAX)).collect()
    }

    /// The first pair of `range` in `order`.
    fn first(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<Option<KvPair>> {
        self.iter(space, range, order)?.next().transpose()
    }

    /// The first pair whose key starts with `prefix`. An engine may answer it from a cache
    /// ([`crate::mvcc::VersionCache`] does, for MVCC versions).
    fn first_with_prefix(&self, space: Space, prefix: &[u8]) -> Result<Option<KvPair>> {
        self.first(space, KeyRange::prefix(prefix), ScanOrder::Forward)
    }

    /// How far the engine's background work (flushes, compactions) is behind its writes now;
    /// an engine without such work is never behind.
    fn write_backlog(&self) -> WriteBacklog {
        WriteBacklog::default()
    }
}

/// Background work an LSM engine has not caught up with, in its busiest keyspace. fjall stops
/// writes outright (in steps of 100 ms) at four sealed memtables waiting for their flush and
/// at 30 sorted runs in level 0, and slows them from 20 runs; writers that wait before that
/// point keep those halts from freezing a replica's loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteBacklog {
    /// Memtables full and waiting to be flushed.
    pub sealed_memtables: usize,
    /// Tables in level 0 (each flush adds one until a compaction merges them).
    pub l0_tables: usize,
}

impl WriteBacklog {
    /// Sealed memtables from which new writes wait (the engine halts at four).
    pub const SEALED_LIMIT: usize = 2;
    /// Level-0 tables from which new writes wait (the engine slows at 20 runs).
    pub const L0_LIMIT: usize = 16;

    /// Whether new writes should wait for the engine to catch up.
    pub fn is_behind(&self) -> bool {
        self.sealed_memtables >= Self::SEALED_LIMIT || self.l0_tables >= Self::L0_LIMIT
    }
}

#[cfg(test)]
mod tests;
