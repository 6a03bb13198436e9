//! [`KvEngine`] in memory, with a crash model for durability tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    BatchOp, Durability, KeyRange, KvEngine, KvIter, KvPair, ScanOrder, Space, WriteBatch,
};
use crate::error::Result;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory engine that keeps two images of the data: the *live* image every read sees,
/// and the *durable* image that a machine crash would leave behind. A
/// [`Durability::Sync`] write makes the live image durable; [`MemEngine::crash`] throws away
/// everything written since the last sync. This is the injected storage backend for
/// durability and simulation tests.
///
/// Iterators share the live maps copy-on-write, so they see a snapshot without blocking
/// writers (a write made while an iterator is alive copies the affected space once).
#[derive(Default)]
pub struct MemEngine {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    live: [Arc<Map>; 4],
    durable: [Map; 4],
    /// Batches applied to `live` but not yet to `durable`, in order.
    unsynced: Vec<WriteBatch>,
}

impl MemEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a machine crash and restart: every write not covered by a later `Sync` is
    /// lost. Handles built on this engine (such as a `RaftLogStore`) keep stale caches and
    /// must be reopened, as after a real restart.
    pub fn crash(&self) {
        let mut state = self.write_state();
        let lost = state.unsynced.len();
        state.unsynced.clear();
        state.live = std::array::from_fn(|i| Arc::new(state.durable[i].clone()));
        tracing::debug!(lost_batches = lost, "simulated crash");
    }

    /// The number of batches a crash would lose right now.
    pub fn unsynced_batches(&self) -> usize {
        self.read_state().unsynced.len()
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Mutable access to one space's map, for the live (shared) and durable (owned) images.
trait MapMut {
    fn map_mut(&mut self) -> &mut Map;
}

impl MapMut for Map {
    fn map_mut(&mut self) -> &mut Map {
        self
    }
}

impl MapMut for Arc<Map> {
    /// Copies the map first if an iterator still shares it.
    fn map_mut(&mut self) -> &mut Map {
        Arc::make_mut(self)
    }
}

fn apply(maps: &mut [impl MapMut; 4], batch: &WriteBatch) {
    for op in batch.ops() {
        match op {
            BatchOp::Put { space, key, value } => {
                maps[space.index()]
                    .map_mut()
                    .insert(key.clone(), value.clone());
            }
            BatchOp::Delete { space, key } => {
                maps[space.index()].map_mut().remove(key);
            }
        }
    }
}

impl KvEngine for MemEngine {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read_state().live[space.index()].get(key).cloned())
    }

    fn iter(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<KvIter> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let map = Arc::clone(&self.read_state().live[space.index()]);
        Ok(Box::new(MemIter {
            map,
            range,
            order,
            done: false,
        }))
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let mut state = self.write_state();
        let State {
            live,
            durable,
            unsynced,
        } = &mut *state;
        apply(live, &batch);
        unsynced.push(batch);
        if durability == Durability::Sync {
            for pending in unsynced.drain(..) {
                apply_owned(durable, pending);
            }
        }
        Ok(())
    }
}

/// Like `apply`, moving keys and values instead of copying them.
fn apply_owned(maps: &mut [Map; 4], batch: WriteBatch) {
    for op in batch.ops {
        match op {
            BatchOp::Put { space, key, value } => {
                maps[space.index()].insert(key, value);
            }
            BatchOp::Delete { space, key } => {
                maps[space.index()].remove(&key);
            }
        }
    }
}

/// A cursor over a shared map: each step re-seeks past the last key returned, which keeps
/// the iterator `'static` without holding a lock.
struct MemIter {
    map: Arc<Map>,
    range: KeyRange,
    order: ScanOrder,
    done: bool,
}

impl Iterator for MemIter {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.range.is_empty() {
            return None;
        }
        let bounds = (self.range.start.as_ref(), self.range.end.as_ref());
        let bounds = (bounds.0.map(Vec::as_slice), bounds.1.map(Vec::as_slice));
        let mut iter = self.map.range::<[u8], _>(bounds);
        let found = match self.order {
            ScanOrder::Forward => iter.next(),
            ScanOrder::Reverse => iter.next_back(),
        };
        let Some((k, v)) = found else {
            self.done = true;
            return None;
        };
        let pair = (k.clone(), v.clone());
        match self.order {
            ScanOrder::Forward => self.range.start = Bound::Excluded(k.clone()),
            ScanOrder::Reverse => self.range.end = Bound::Excluded(k.clone()),
        }
        Some(Ok(pair))
    }
}
