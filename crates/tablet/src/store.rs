//! A store: the replicas of every tablet one node holds, on one engine.
//!
//! All replicas of a store share the node's engine: the MVCC data is one keyspace (a tablet
//! owns the keys of its range), Raft logs and node-local records are keyed by tablet id. A split
//! therefore moves no data: the new tablet's replica starts on the same engine, over keys that
//! are already there. Nor does a merge: the left tablet's replica extends its range over keys
//! its right neighbour's replica on the same engine leaves behind when it retires.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use async_trait::async_trait;
use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::KvEngine;
use raft::prelude::Message;
use tokio::task::JoinHandle;

use crate::kv::{KvPair, WriteRequest};
use crate::local;
use crate::range::{self, RangeDescriptor};
use crate::replica::{Replica, ReplicaConfig, ReplicaHooks};
use crate::router::ReplicaEndpoint;
use crate::transport::Transport;
use crate::txn::{OpOutcome, TabletOp};
use crate::{Error, Result};

/// Every tablet replica of one node.
pub struct Store {
    id: u64,
    engine: Arc<dyn KvEngine>,
    clock: Arc<TrueTime>,
    transport: Arc<dyn Transport>,
    base: ReplicaConfig,
    replicas: RwLock<BTreeMap<u64, Replica>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    me: Weak<Store>,
    stopped: std::sync::atomic::AtomicBool,
    /// Tablets whose replica here retired after a merge (since the store opened).
    merged_away: Mutex<BTreeSet<u64>>,
    /// Key spans `[start, end)` (empty end: to the end of the keyspace) that a snapshot took
    /// from a local replica whose range it shrank: the replica missed splits, and this store
    /// may hold no replica of the tablets they made (see [`Store::adopt_dropped`]).
    dropped: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Store {
    /// Opens the store on `engine` and starts a replica for every range stored there; a store
    /// opened for the first time starts `bootstrap` (if given). Replica ids are the store id.
    pub fn open(
        id: u64,
        engine: Arc<dyn KvEngine>,
        clock: Arc<TrueTime>,
        transport: Arc<dyn Transport>,
        mut base: ReplicaConfig,
        bootstrap: Option<RangeDescriptor>,
    ) -> Result<Arc<Store>> {
        // One group commit for every replica's log writes on the engine.
        base.log_sync = Some(crate::logsync::LogSync::new(engine.clone()));
        let mut descs = finish_merges(&engine, local::load_descriptors(engine.as_ref())?)?;
        // Bootstrap once: a store whose replicas were all moved away starts with none.
        if descs.is_empty() && !local::is_bootstrapped(engine.as_ref())? {
            descs.extend(bootstrap);
            let mut batch = meridian_storage::WriteBatch::new();
            local::mark_bootstrapped(&mut batch);
            engine.write(batch, meridian_storage::Durability::Sync)?;
        }
        let store = Arc::new_cyclic(|me| Store {
            id,
            engine,
            clock,
            transport,
            base,
            replicas: RwLock::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            me: me.clone(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            merged_away: Mutex::new(BTreeSet::new()),
            dropped: Mutex::new(Vec::new()),
        });
        for desc in descs {
            match store.start_replica(desc, Timestamp::ZERO, false) {
                // Merged into its left neighbour, whose replica started first and applied the
                // merge already.
                Err(Error::RangeMerging { .. }) => {}
                other => drop(other?),
            }
        }
        Ok(store)
    }

    /// Starts this store's replica of `desc` (a no-op if it runs). A tablet merged into its
    /// left neighbour here is not started (`RangeMerging`): its state is deleted instead.
    pub fn start_replica(
        &self,
        desc: RangeDescriptor,
        min_ts: Timestamp,
        campaign: bool,
    ) -> Result<Replica> {
        let mut replicas = self.replicas.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = replicas.get(&desc.tablet_id) {
            return Ok(r.clone());
        }
        if self.was_merged(desc.tablet_id) {
            retire_state(&self.engine, desc.tablet_id)?;
            return Err(Error::RangeMerging {
                tablet: desc.tablet_id,
            });
        }
        let replica = self.launch(
            &mut replicas,
            ReplicaConfig {
                tablet_id: desc.tablet_id,
                replica_id: self.id,
                initial_voters: desc.replicas.clone(),
                range: Some(desc.clone()),
                min_ts,
                ..self.base.clone()
            },
        )?;
        if campaign {
            replica.campaign();
        }
        Ok(replica)
    }

    /// Starts a replica with `config` and registers it and its task.
    fn launch(
        &self,
        replicas: &mut BTreeMap<u64, Replica>,
        config: ReplicaConfig,
    ) -> Result<Replica> {
        let tablet = config.tablet_id;
        let hooks = Arc::new(StoreHooks(self.me.clone()));
        let (replica, task) = Replica::start_with_hooks(
            config,
            self.engine.clone(),
            self.clock.clone(),
            self.transport.clone(),
            hooks,
        )?;
        replicas.insert(tablet, replica.clone());
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        Ok(replica)
    }

    /// Creates an empty replica of `desc`'s tablet, which its leader fills with a snapshot
    /// once the group adds this store (the first step of adding a replica; see
    /// `membership.rs`). Nothing happens if the replica exists. Refused while another local
    /// replica holds keys of the range (this store has not applied a split or a removal yet).
    pub fn create_replica(&self, desc: &RangeDescriptor) -> Result<()> {
        if self.replica(desc.tablet_id).is_some() {
            return Ok(());
        }
        if self.was_merged(desc.tablet_id) {
            return Err(self.missing_replica(desc.tablet_id));
        }
        let overlapping = self
            .replicas()
            .into_iter()
            .find(|r| r.is_initialized() && crate::dist::overlap(&r.descriptor(), desc));
        if let Some(r) = overlapping {
            return Err(Error::Unavailable {
                tablet: desc.tablet_id,
                reason: format!(
                    "store {} still holds tablet {}, which overlaps the range",
                    self.id,
                    r.tablet_id()
                ),
            });
        }
        let mut replicas = self.replicas.write().unwrap_or_else(|e| e.into_inner());
        if replicas.contains_key(&desc.tablet_id) {
            return Ok(());
        }
        self.launch(
            &mut replicas,
            ReplicaConfig {
                tablet_id: desc.tablet_id,
                replica_id: self.id,
                initial_voters: Vec::new(),
                range: None,
                empty: true,
                ..self.base.clone()
            },
        )?;
        tracing::info!(
            tablet = desc.tablet_id,
            store = self.id,
            "created an empty replica"
        );
        Ok(())
    }

    /// Remembers the keys a snapshot took from a local replica (`old` became `new`).
    fn note_dropped_keys(&self, old: &RangeDescriptor, new: &RangeDescriptor) {
        let mut spans = Vec::new();
        if old.start_key < new.start_key {
            spans.push((old.start_key.clone(), new.start_key.clone()));
        }
        if !new.end_key.is_empty() && (old.end_key.is_empty() || new.end_key < old.end_key) {
            spans.push((new.end_key.clone(), old.end_key.clone()));
        }
        if !spans.is_empty() {
            tracing::info!(
                tablet = new.tablet_id,
                store = self.id,
                ?spans,
                "a snapshot shrank a replica's range; will look for the tablets now holding the keys"
            );
            self.dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(spans);
        }
    }

    /// Creates an empty replica of every tablet that holds keys a snapshot took from a local
    /// replica (see [`Store::note_dropped_keys`]), when its meta record names this store: the
    /// local replica missed the split that made the tablet, so this store never started its
    /// replica, and the tablet's leader fills the empty one with a snapshot (as it does a
    /// replica being added). Spans the meta records do not account for yet are kept for the
    /// next round.
    pub async fn adopt_dropped(&self, client: &crate::RangeClient) {
        let spans = std::mem::take(&mut *self.dropped.lock().unwrap_or_else(|e| e.into_inner()));
        let mut keep = Vec::new();
        for (start, end) in spans {
            if !self.adopt_span(client, &start, &end).await {
                keep.push((start, end));
            }
        }
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keep);
    }

    /// [`Store::adopt_dropped`] for one span; whether it is settled.
    async fn adopt_span(&self, client: &crate::RangeClient, start: &[u8], end: &[u8]) -> bool {
        let mut key = start.to_vec();
        loop {
            let record = match client.meta_record(&key).await {
                Ok(Some(record)) => record,
                Ok(None) => return false,
                Err(e) => {
                    tracing::debug!(store = self.id, error = %e, "cannot read a meta record");
                    return false;
                }
            };
            if record.replicas.contains(&self.id) && self.replica(record.tablet_id).is_none() {
                match self.create_replica(&record) {
                    Ok(()) => tracing::info!(
                        tablet = record.tablet_id,
                        store = self.id,
                        "created the replica of a tablet whose split this store missed"
                    ),
                    Err(e) => {
                        tracing::debug!(tablet = record.tablet_id, store = self.id, error = %e,
                            "cannot create a missing replica yet");
                        return false;
                    }
                }
            }
            if record.end_key.is_empty() || (!end.is_empty() && record.end_key.as_slice() >= end) {
                return true;
            }
            key = record.end_key;
        }
    }

    /// The store's id (the replica id of all its replicas).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn KvEngine> {
        &self.engine
    }

    /// The replica of `tablet`, if this store holds one.
    pub fn replica(&self, tablet: u64) -> Option<Replica> {
        self.replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tablet)
            .cloned()
    }

    /// Why this store has no replica of `tablet` to serve a request: the tablet was merged into
    /// its left neighbour here (`RangeMerging`, so that the gateway looks the range up again),
    /// or this store has not applied the change that creates it.
    pub fn missing_replica(&self, tablet: u64) -> Error {
        if self.was_merged(tablet) {
            Error::RangeMerging { tablet }
        } else {
            Error::Unavailable {
                tablet,
                reason: format!("store {} has no replica of it yet", self.id),
            }
        }
    }

    fn was_merged(&self, tablet: u64) -> bool {
        self.merged_away
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&tablet)
    }

    /// Every replica, by tablet id.
    pub fn replicas(&self) -> Vec<Replica> {
        self.replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Hands a Raft message to the replica of `tablet` (dropped if there is none yet: a split
    /// this store has not applied).
    pub fn deliver(&self, tablet: u64, msg: Message) {
        if let Some(r) = self.replica(tablet) {
            r.deliver(msg);
        }
    }

    /// Starts (`true`) or ends draining: while draining, every replica of the store that
    /// leads hands its group to another voter within a heartbeat, and none keeps a leadership
    /// another voter can take.
    pub fn set_draining(&self, draining: bool) {
        self.base
            .draining
            .store(draining, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the store is draining (see [`Store::set_draining`]).
    pub fn is_draining(&self) -> bool {
        self.base
            .draining
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether [`Store::shutdown`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops every replica and waits for their tasks.
    pub async fn shutdown(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        for r in self.replicas() {
            r.stop();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}

struct StoreHooks(Weak<Store>);

impl ReplicaHooks for StoreHooks {
    fn split(&self, right: RangeDescriptor, split_ts: Timestamp, campaign: bool) {
        let Some(store) = self.0.upgrade() else {
            return;
        };
        let tablet = right.tablet_id;
        if let Err(e) = store.start_replica(right, split_ts, campaign) {
            tracing::error!(tablet, error = %e, "cannot start the replica of a new tablet");
        }
    }

    fn removed(&self, tablet: u64) {
        if let Some(store) = self.0.upgrade() {
            store
                .replicas
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&tablet);
        }
    }

    fn merged(&self, right: u64) {
        let Some(store) = self.0.upgrade() else {
            return;
        };
        // Under the lock `start_replica` holds: the replica either runs already and retires,
        // or will never start.
        let replicas = store.replicas.write().unwrap_or_else(|e| e.into_inner());
        store
            .merged_away
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(right);
        let replica = replicas.get(&right).cloned();
        drop(replicas);
        if let Some(r) = replica {
            r.retire();
        }
    }

    fn snapshot_installed(&self, old: &RangeDescriptor, new: &RangeDescriptor) {
        let Some(store) = self.0.upgrade() else {
            return;
        };
        for other in store.replicas() {
            if other.tablet_id() == new.tablet_id
                || !other.is_initialized()
                || !crate::dist::overlap(&other.descriptor(), new)
            {
                continue;
            }
            let desc = other.descriptor();
            // As `finish_merges` decides after a restart: frozen for a merge into this tablet,
            // whose range now covers it at a newer generation. The snapshot holds its data.
            let taken_over = other
                .freeze()
                .is_some_and(|f| f.left.tablet_id == new.tablet_id)
                && range::contains(new, &desc.start_key)
                && new.generation > desc.generation;
            if taken_over {
                tracing::info!(
                    tablet = desc.tablet_id,
                    merged_into = new.tablet_id,
                    store = store.id(),
                    "a snapshot carried a merge this store missed; retiring the merged replica"
                );
                self.merged(desc.tablet_id);
            } else {
                tracing::warn!(
                    tablet = new.tablet_id,
                    other = desc.tablet_id,
                    store = store.id(),
                    "a snapshot's range overlaps another local replica"
                );
            }
        }
        store.note_dropped_keys(old, new);
    }
}

/// Finishes the merges a crash interrupted, before any replica starts: a frozen tablet whose
/// range a local replica of its left neighbour covers, at a newer generation, was taken over
/// (a takeover is durable before the right tablet's replica starts to retire). Its records and
/// log are deleted; its data stays, the merged tablet's now. Answers the other descriptors.
fn finish_merges(
    engine: &Arc<dyn KvEngine>,
    descs: Vec<RangeDescriptor>,
) -> Result<Vec<RangeDescriptor>> {
    let mut live = Vec::with_capacity(descs.len());
    for desc in &descs {
        let left = local::load_freeze(engine.as_ref(), desc.tablet_id)?
            .and_then(|f| f.left)
            .map_or(0, |l| l.tablet_id);
        let taken_over = descs.iter().any(|l| {
            l.tablet_id == left
                && range::contains(l, &desc.start_key)
                && l.generation > desc.generation
        });
        if !taken_over {
            live.push(desc.clone());
            continue;
        }
        retire_state(engine, desc.tablet_id)?;
        tracing::info!(
            tablet = desc.tablet_id,
            left,
            "finished retiring a tablet merged before the restart"
        );
    }
    Ok(live)
}

/// Deletes the records and the Raft log of `tablet`, merged into its left neighbour; its data
/// stays (the merged tablet's).
fn retire_state(engine: &Arc<dyn KvEngine>, tablet: u64) -> Result<()> {
    let mut batch = meridian_storage::WriteBatch::new();
    crate::membership::clear_records(engine.as_ref(), tablet, &mut batch)?;
    meridian_storage::RaftLogStore::open(engine.clone(), tablet)?.destroy_with(batch)?;
    Ok(())
}

/// The replica of one tablet on a store in this process, looked up on every call (it may not
/// exist yet when the store has not applied the split that creates it).
pub struct StoreEndpoint {
    store: Arc<Store>,
    tablet: u64,
}

impl StoreEndpoint {
    /// The endpoint of `tablet` on `store`.
    pub fn new(store: Arc<Store>, tablet: u64) -> Self {
        StoreEndpoint { store, tablet }
    }

    fn replica(&self) -> Result<Replica> {
        self.store
            .replica(self.tablet)
            .ok_or_else(|| self.store.missing_replica(self.tablet))
    }
}

#[async_trait]
impl ReplicaEndpoint for StoreEndpoint {
    fn replica_id(&self) -> u64 {
        self.store.id
    }

    fn leading_term(&self) -> Option<u64> {
        self.replica().ok().and_then(|r| r.leading_term())
    }

    fn local_safe_ts(&self) -> Option<Timestamp> {
        self.replica().ok().map(|r| r.safe_ts())
    }

    async fn read_ts(&self) -> Result<Timestamp> {
        self.replica()?.read_ts().await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.replica()?.write(req).await
    }

    async fn read_at(&self, ts: Timestamp) -> Result<Timestamp> {
        self.replica()?.read_at(ts).await
    }

    async fn write_at(&self, req: WriteRequest, lo: Timestamp, hi: Timestamp) -> Result<Timestamp> {
        self.replica()?.write_at(req, lo, hi).await
    }

    async fn op(&self, op: TabletOp) -> Result<OpOutcome> {
        if let TabletOp::CreateReplica(desc) = &op {
            self.store.create_replica(desc)?;
            return Ok(OpOutcome::default());
        }
        self.replica()?.op(op).await
    }

    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        ReplicaEndpoint::get(&self.replica()?, key, ts).await
    }

    async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        ReplicaEndpoint::get_many(&self.replica()?, keys, ts).await
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        ReplicaEndpoint::scan(&self.replica()?, start, end, ts, limit).await
    }
}

#[cfg(test)]
mod tests {
    use meridian_proto::v1 as pb;
    use meridian_storage::{Durability, MemEngine, Mvcc, WriteBatch};

    use super::*;

    fn desc(tablet: u64, start: &str, end: &str, generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id: tablet,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            generation,
            replicas: vec![1],
            ..Default::default()
        }
    }

    /// An engine holding `descs`, with tablet 2 frozen for a merge into tablet 1 and a row
    /// under its keys.
    fn engine_with(descs: &[RangeDescriptor]) -> Arc<dyn KvEngine> {
        let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
        let mut batch = WriteBatch::new();
        for d in descs {
            local::put_descriptor(&mut batch, d);
        }
        let freeze = pb::MergeFreeze {
            left: Some(desc(1, "", "m", 4)),
            freeze_ts: 9,
            freeze_index: 7,
        };
        local::put_freeze(&mut batch, 2, &freeze);
        local::put_size(&mut batch, 2, 100);
        meridian_storage::mvcc::put_applied_index(&mut batch, 2, 7);
        engine.write(batch, Durability::Sync).unwrap();
        Mvcc::new(engine.clone())
            .put(b"n", Timestamp::from_nanos(5), b"row")
            .unwrap();
        engine
    }

    #[test]
    fn a_merge_a_crash_interrupted_is_finished_when_the_store_opens() {
        // The takeover is durable (tablet 1 covers tablet 2's keys at a newer generation), the
        // retirement never ran.
        let merged = desc(1, "", "", 5);
        let engine = engine_with(&[merged.clone(), desc(2, "m", "", 3)]);
        let descs = local::load_descriptors(engine.as_ref()).unwrap();
        assert_eq!(finish_merges(&engine, descs).unwrap(), vec![merged]);
        assert_eq!(local::load_descriptor(engine.as_ref(), 2).unwrap(), None);
        assert_eq!(local::load_freeze(engine.as_ref(), 2).unwrap(), None);
        assert_eq!(local::load_size(engine.as_ref(), 2).unwrap(), 0);
        assert_eq!(Mvcc::new(engine.clone()).applied_index(2).unwrap(), 0);
        // The data is the merged tablet's.
        let row = Mvcc::new(engine)
            .get(b"n", Timestamp::from_nanos(6))
            .unwrap();
        assert_eq!(row.as_deref(), Some(&b"row"[..]));
    }

    #[test]
    fn a_frozen_tablet_not_taken_over_yet_stays() {
        let descs = [desc(1, "", "m", 4), desc(2, "m", "", 3)];
        let engine = engine_with(&descs);
        let loaded = local::load_descriptors(engine.as_ref()).unwrap();
        assert_eq!(finish_merges(&engine, loaded).unwrap(), descs.to_vec());
        assert!(local::load_freeze(engine.as_ref(), 2).unwrap().is_some());
    }
}
