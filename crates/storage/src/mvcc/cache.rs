//! A cache of each user key's newest version, in front of an engine.
//!
//! A point read in an LSM tree by key range (as [`Mvcc::get`](super::Mvcc::get) must do, since
//! it does not know the timestamps of a key's versions) merges an iterator over every memtable
//! and every table whose range covers the key, and cannot use bloom filters. Hot rows (the
//! catalog's descriptors, a TPC-C warehouse, the rows a point-select benchmark reads) are read
//! far more often than they change, so the newest version of a key, or the fact that it has
//! none, is kept here and served without touching the tree.
//!
//! [`VersionCache`] wraps the node's engine and implements [`KvEngine`] itself, so every write
//! to [`Space::Data`], whichever part of the node makes it (applying Raft commands,
//! installing snapshots, garbage collection), passes through [`KvEngine::write`] and drops the
//! cached entries of the keys it touches. Only [`KvEngine::first_with_prefix`] on the data
//! space is cached; everything else goes straight to the engine.
//!
//! The cache is exact, not approximate. An entry is a key's newest version at some moment, and
//! it stays in the cache only while no write to that key has completed since. Filling races
//! with writing, so each of a fixed number of shards has a write counter: a reader notes the
//! counter before reading the engine and inserts its result only if the counter has not moved
//! (checked under the shard's lock), while a writer, after its write is in the engine, bumps the
//! counter and removes the key under the same lock. Either the reader sees the counter moved,
//! or its insert happened before the writer's removal.
//!
//! Storage keys in the data space are `prefix ++ 8 bytes of timestamp`, where the prefix (the
//! escaped user key) is self-delimiting, so the storage keys starting with a prefix are exactly
//! the versions of one user key, and a write's key names the cached prefix it invalidates.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::engine::{
    BatchOp, Durability, KeyRange, KvEngine, KvIter, KvPair, ScanOrder, Space, WriteBatch,
};
use crate::error::Result;

/// Shards of the write counter; a write to one key stops fills of keys of its shard only.
const SHARDS: usize = 64;

/// Bytes an entry costs beyond its key and value (the map's slot, the `Arc`, lengths).
const ENTRY_OVERHEAD: u64 = 64;

/// The engine with a cache of newest versions in front of [`Space::Data`] point reads.
pub struct VersionCache {
    inner: Arc<dyn KvEngine>,
    /// Escaped user key → its newest version (storage key and value), or `None` for a key
    /// with no version at all.
    entries: Cache<Vec<u8>, Option<Arc<KvPair>>, EntryWeight>,
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Shard {
    /// Completed writes to keys of this shard. Changed only under `lock`.
    writes: AtomicU64,
    lock: Mutex<()>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own, so a panic while it was held leaves nothing
        // half-done.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
struct EntryWeight;

impl Weighter<Vec<u8>, Option<Arc<KvPair>>> for EntryWeight {
    fn weight(&self, key: &Vec<u8>, val: &Option<Arc<KvPair>>) -> u64 {
        let pair = val.as_ref().map_or(0, |p| p.0.len() + p.1.len());
        (key.len() + pair) as u64 + ENTRY_OVERHEAD
    }
}

impl VersionCache {
    /// `inner` with a cache holding about `capacity_bytes` of newest versions.
    pub fn new(inner: Arc<dyn KvEngine>, capacity_bytes: u64) -> Self {
        // quick_cache sizes its tables from an estimate of the item count.
        let estimated_items = (capacity_bytes / 256).max(16) as usize;
        VersionCache {
            inner,
            entries: Cache::with_weighter(estimated_items, capacity_bytes.max(1), EntryWeight),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: Default::default(),
        }
    }

    /// Bytes of entries held now (keys, values and overhead).
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }

    fn shard(&self, prefix: &[u8]) -> &Shard {
        &self.shards[(self.hasher.hash_one(prefix) as usize) % SHARDS]
    }

    /// Drops the cached entry of the user key a data-space storage key belongs to.
    fn invalidate(&self, storage_key: &[u8]) {
        let Some(split) = storage_key.len().checked_sub(8) else {
            return;
        };
        let prefix = &storage_key[..split];
        let shard = self.shard(prefix);
        let _held = shard.lock();
        shard.writes.fetch_add(1, Ordering::Release);
        self.entries.remove(prefix);
    }
}

impl std::fmt::Debug for VersionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionCache")
            .field("weight", &self.entries.weight())
            .field("capacity", &self.entries.capacity())
            .finish_non_exhaustive()
    }
}

impl KvEngine for VersionCache {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }

    fn iter(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<KvIter> {
        self.inner.iter(space, range, order)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let touched: Vec<Vec<u8>> = batch
            .ops()
            .iter()
            .filter_map(|op| match op {
                BatchOp::Put {
                    space: Space::Data,
                    key,
                    ..
                }
                | BatchOp::Delete {
                    space: Space::Data,
                    key,
                } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let result = self.inner.write(batch, durability);
        // Even a failed write may have reached the engine in part: forget the keys either way.
        for key in &touched {
            self.invalidate(key);
        }
        result
    }

    fn first_with_prefix(&self, space: Space, prefix: &[u8]) -> Result<Option<KvPair>> {
        if space != Space::Data {
            return self.inner.first_with_prefix(space, prefix);
        }
        if let Some(hit) = self.entries.get(prefix) {
            return Ok(hit.map(|p| (*p).clone()));
        }
        let before = self.shard(prefix).writes.load(Ordering::Acquire);
        let found = self.inner.first_with_prefix(space, prefix)?;
        self.fill(prefix, before, &found);
        Ok(found)
    }

    fn write_backlog(&self) -> crate::engine::WriteBacklog {
        self.inner.write_backlog()
    }
}

impl VersionCache {
    /// Caches `found`, read from the engine after the shard's write counter was `before`,
    /// unless a write to the shard completed since. Returns whether it was cached.
    fn fill(&self, prefix: &[u8], before: u64, found: &Option<KvPair>) -> bool {
        let shard = self.shard(prefix);
        let _held = shard.lock();
        if shard.writes.load(Ordering::Acquire) != before {
            return false;
        }
        self.entries
            .insert(prefix.to_vec(), found.clone().map(Arc::new));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemEngine;
    use crate::mvcc::Mvcc;
    use meridian_clock::Timestamp;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    fn cached() -> (Arc<VersionCache>, Mvcc) {
        let engine = Arc::new(VersionCache::new(Arc::new(MemEngine::new()), 1 << 20));
        let mvcc = Mvcc::new(engine.clone());
        (engine, mvcc)
    }

    #[test]
    fn reads_see_every_write_after_the_key_was_cached() {
        let (cache, mvcc) = cached();
        assert_eq!(mvcc.get(b"k", ts(10)).unwrap(), None);
        assert!(cache.weight() > 0, "the missing key is cached");
        mvcc.put(b"k", ts(20), b"a").unwrap();
        assert_eq!(mvcc.get(b"k", ts(25)).unwrap(), Some(b"a".to_vec()));
        mvcc.put(b"k", ts(30), b"b").unwrap();
        assert_eq!(mvcc.get(b"k", ts(35)).unwrap(), Some(b"b".to_vec()));
        // An older snapshot still reads the older version, past the cached newest one.
        assert_eq!(mvcc.get(b"k", ts(25)).unwrap(), Some(b"a".to_vec()));
        assert_eq!(mvcc.get(b"k", ts(15)).unwrap(), None);
        mvcc.delete(b"k", ts(40)).unwrap();
        assert_eq!(mvcc.get(b"k", ts(45)).unwrap(), None);
        assert_eq!(mvcc.newest_version(b"k").unwrap(), Some((ts(40), false)));
    }

    #[test]
    fn keys_that_extend_a_cached_key_are_separate_entries() {
        let (_, mvcc) = cached();
        mvcc.put(b"ab", ts(10), b"long").unwrap();
        assert_eq!(mvcc.get(b"a", ts(20)).unwrap(), None);
        mvcc.put(b"a", ts(30), b"short").unwrap();
        assert_eq!(mvcc.get(b"a", ts(40)).unwrap(), Some(b"short".to_vec()));
        assert_eq!(mvcc.get(b"ab", ts(40)).unwrap(), Some(b"long".to_vec()));
    }

    #[test]
    fn a_write_between_a_miss_and_its_fill_is_not_hidden() {
        // Interleave by hand: note the counter, let a write complete, then try to fill.
        let (cache, mvcc) = cached();
        mvcc.put(b"k", ts(10), b"old").unwrap();
        let prefix = crate::mvcc::user_key_prefix(b"k");
        let before = cache.shard(&prefix).writes.load(Ordering::Acquire);
        let stale = cache.inner.first_with_prefix(Space::Data, &prefix).unwrap();
        mvcc.put(b"k", ts(20), b"new").unwrap();
        assert!(
            !cache.fill(&prefix, before, &stale),
            "a stale read was cached"
        );
        assert_eq!(mvcc.get(b"k", ts(30)).unwrap(), Some(b"new".to_vec()));
        // Without a write in between, the same read is cached.
        let before = cache.shard(&prefix).writes.load(Ordering::Acquire);
        let fresh = cache.inner.first_with_prefix(Space::Data, &prefix).unwrap();
        assert!(cache.fill(&prefix, before, &fresh));
    }

    #[test]
    fn concurrent_writers_and_readers_never_read_a_stale_newest_version() {
        let (_, mvcc) = cached();
        let writer = {
            let mvcc = mvcc.clone();
            std::thread::spawn(move || {
                for n in 1..=2_000u64 {
                    mvcc.put(b"hot", ts(n * 10), &n.to_be_bytes()).unwrap();
                }
            })
        };
        let reader = {
            let mvcc = mvcc.clone();
            std::thread::spawn(move || {
                let mut last = 0u64;
                for _ in 0..20_000 {
                    // The writer's versions only grow, so a read at the top never goes back.
                    if let Some(v) = mvcc.get(b"hot", ts(u64::MAX / 2)).unwrap() {
                        let n = u64::from_be_bytes(v.try_into().unwrap());
                        assert!(n >= last, "read {n} after {last}");
                        last = n;
                    }
                }
            })
        };
        writer.join().unwrap();
        reader.join().unwrap();
        let top = mvcc.get(b"hot", ts(u64::MAX / 2)).unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(top.try_into().unwrap()), 2_000);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let engine = Arc::new(VersionCache::new(Arc::new(MemEngine::new()), 64 * 1024));
        let mvcc = Mvcc::new(engine.clone());
        for n in 0..5_000u32 {
            let key = n.to_be_bytes();
            mvcc.put(&key, ts(10), &[7; 100]).unwrap();
            assert!(mvcc.get(&key, ts(20)).unwrap().is_some());
        }
        assert!(engine.weight() <= 64 * 1024, "weight {}", engine.weight());
        for n in 0..5_000u32 {
            assert_eq!(
                mvcc.get(&n.to_be_bytes(), ts(20)).unwrap(),
                Some(vec![7; 100])
            );
        }
    }
}
