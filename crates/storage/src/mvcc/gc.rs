//! Garbage collection of versions no reader can see.

use meridian_clock::Timestamp;

use super::{Mvcc, data_range, decode_value, split_storage_key};
use crate::engine::{Durability, ScanOrder, Space, WriteBatch};
use crate::error::Result;

/// Deletes are written in engine batches of about this many operations.
const GC_BATCH_OPS: usize = 4096;

/// What a garbage collection pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// User keys examined.
    pub keys: u64,
    /// Versions examined.
    pub versions: u64,
    /// Versions deleted.
    pub deleted: u64,
}

impl Mvcc {
    /// Garbage-collects every key below `horizon`; see [`Mvcc::gc_range`].
    pub fn gc(&self, horizon: Timestamp) -> Result<GcStats> {
        self.gc_range(b"", b"", horizon)
    }

    /// Garbage-collects the user keys in `[start, end)` (empty `end`: unbounded). For each
    /// key it keeps every version newer than `horizon` and the newest version at or below
    /// `horizon` unless that one is a tombstone, and deletes the rest, so that reads at any
    /// timestamp `>= horizon` return exactly what they returned before.
    ///
    /// The caller guarantees no read below `horizon` will happen and no write at or below
    /// `horizon` is still to come. Deletes are not synced: a crash may bring collected
    /// versions back, for the next pass to collect again. A key's deletions always go into
    /// one atomic write, so a crash can never lose the deletion of a tombstone while keeping
    /// the deletion of the versions it hides (or the reverse).
    pub fn gc_range(&self, start: &[u8], end: &[u8], horizon: Timestamp) -> Result<GcStats> {
        let mut stats = GcStats::default();
        let mut batch = WriteBatch::new();
        let mut key = KeyState::default();
        for pair in self
            .engine
            .iter(Space::Data, data_range(start, end), ScanOrder::Forward)?
        {
            let (storage_key, value) = pair?;
            let (prefix, ts) = split_storage_key(&storage_key)?;
            let live = decode_value(&value)?.is_some();
            stats.versions += 1;
            if key.prefix.as_deref() != Some(prefix) {
                key.finish(&mut batch, &mut stats);
                if batch.len() >= GC_BATCH_OPS {
                    self.engine
                        .write(std::mem::take(&mut batch), Durability::NoSync)?;
                }
                key = KeyState {
                    prefix: Some(prefix.to_vec()),
                    ..KeyState::default()
                };
                stats.keys += 1;
            }
            if ts > horizon {
                continue;
            }
            if key.kept_at_horizon {
                key.older.push(storage_key);
            } else {
                // The newest version at or below the horizon: what reads at the horizon see.
                key.kept_at_horizon = true;
                if !live {
                    key.tombstone = Some(storage_key);
                }
            }
        }
        key.finish(&mut batch, &mut stats);
        if !batch.is_empty() {
            self.engine.write(batch, Durability::NoSync)?;
        }
        tracing::debug!(?horizon, ?stats, "mvcc gc");
        Ok(stats)
    }
}

/// Per-key progress of a GC pass.
#[derive(Default)]
struct KeyState {
    prefix: Option<Vec<u8>>,
    /// Whether the newest version at or below the horizon has been seen.
    kept_at_horizon: bool,
    /// That version, if it is a tombstone.
    tombstone: Option<Vec<u8>>,
    /// Versions older than it.
    older: Vec<Vec<u8>>,
}

impl KeyState {
    fn finish(&mut self, batch: &mut WriteBatch, stats: &mut GcStats) {
        for k in self.older.drain(..).chain(self.tombstone.take()) {
            batch.delete(Space::Data, k);
            stats.deleted += 1;
        }
    }
}
