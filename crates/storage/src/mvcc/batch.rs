//! Atomic multi-version writes, together with the Raft applied index.

use std::sync::Arc;

use meridian_clock::Timestamp;

use super::{Mvcc, encode_value, encode_version_key};
use crate::engine::{Durability, KvEngine, Space, WriteBatch};
use crate::error::{Error, Result};

/// Prefix of applied-index keys in [`Space::Meta`]: `01 ++ be64(group id)` → `be64(index)`.
const APPLIED_INDEX_PREFIX: u8 = 0x01;

fn applied_index_key(group_id: u64) -> [u8; 9] {
    let mut key = [APPLIED_INDEX_PREFIX; 9];
    key[1..].copy_from_slice(&group_id.to_be_bytes());
    key
}

/// Versions and bookkeeping to be written in one atomic engine write. A Raft apply loop puts
/// the data of a batch of committed entries and the new applied index in one `MvccBatch`, so
/// after a crash the applied index always describes exactly the data that is there.
pub struct MvccBatch {
    engine: Arc<dyn KvEngine>,
    batch: WriteBatch,
}

/// Adds to `batch` the record of `index` as the applied index of Raft group `group_id`.
pub fn put_applied_index(batch: &mut WriteBatch, group_id: u64, index: u64) {
    batch.put(
        Space::Meta,
        applied_index_key(group_id),
        index.to_be_bytes(),
    );
}

/// Adds to `batch` the removal of Raft group `group_id`'s applied index.
pub fn delete_applied_index(batch: &mut WriteBatch, group_id: u64) {
    batch.delete(Space::Meta, applied_index_key(group_id));
}

impl Mvcc {
    /// An empty batch on this store.
    pub fn batch(&self) -> MvccBatch {
        MvccBatch {
            engine: Arc::clone(&self.engine),
            batch: WriteBatch::new(),
        }
    }

    /// The applied index recorded for Raft group `group_id` (0 if never set).
    pub fn applied_index(&self, group_id: u64) -> Result<u64> {
        match self.engine.get(Space::Meta, &applied_index_key(group_id))? {
            None => Ok(0),
            Some(v) => {
                let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| {
                    Error::corrupt(format!(
                        "mvcc: applied index of group {group_id} has {} bytes",
                        v.len()
                    ))
                })?;
                Ok(u64::from_be_bytes(bytes))
            }
        }
    }
}

impl MvccBatch {
    /// Adds version `ts` of `key` with `value`.
    pub fn put(&mut self, key: &[u8], ts: Timestamp, value: &[u8]) {
        self.batch.put(
            Space::Data,
            encode_version_key(key, ts),
            encode_value(Some(value)),
        );
    }

    /// Adds a tombstone for `key` at `ts`.
    pub fn delete(&mut self, key: &[u8], ts: Timestamp) {
        self.batch
            .put(Space::Data, encode_version_key(key, ts), encode_value(None));
    }

    /// Records `index` as the applied index of Raft group `group_id`.
    pub fn set_applied_index(&mut self, group_id: u64, index: u64) {
        put_applied_index(&mut self.batch, group_id, index);
    }

    /// The underlying engine batch, for adding other operations (such as Raft log writes)
    /// to the same atomic write.
    pub fn write_batch(&mut self) -> &mut WriteBatch {
        &mut self.batch
    }

    /// The number of engine operations in the batch.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Writes everything atomically.
    pub fn commit(self, durability: Durability) -> Result<()> {
        self.engine.write(self.batch, durability)
    }
}
