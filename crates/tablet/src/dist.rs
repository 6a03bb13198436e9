//! The range-aware client: Meridian's keyspace across all its tablets, as one [`KvClient`].
//!
//! It finds the tablet of a key in the meta records of the root tablet (`range.rs`) and caches
//! what it found; a tablet that no longer holds a key answers `RangeMismatch` with its current
//! range, and the client refreshes and retries. Reads at a timestamp go to each tablet the keys
//! live in; a snapshot read's timestamp is `TT.now().latest` at the gateway, which every tablet
//! serves once nothing at or below it can still change there.
//!
//! A write within one tablet commits with one Raft write (1PC). A write across tablets commits
//! by two-phase commit (see `txn.rs` for the protocol): prepare at every participant, decide at
//! the coordinator (the tablet of the first written key), resolve everywhere.
//!
//! The client also keeps the ranges in order: [`maintain`] writes meta records for ranges
//! whose descriptor changed, splits tablets that grew past the size threshold or stayed busy
//! (`load.rs`) and merges small, cold neighbours (`merge.rs`); [`recover_prepared`] recovers
//! transactions left prepared and settles merges whose right tablet stayed frozen.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use meridian_clock::{Timestamp, TrueTime};
use prost::Message;

use crate::kv::{Condition, KvClient, KvPair, Mutation, Span, WriteRequest};
use crate::locks::LockOwner;
use crate::membership::ReplicaChange;
use crate::range::{self, ROOT_TABLET, RangeDescriptor};
use crate::replica::Replica;
use crate::router::{RETRY_BACKOFF, ReplicaEndpoint, Router};
use crate::store::Store;
use crate::txn::{OpOutcome, TabletOp};
use crate::{Error, Result};
use meridian_proto::v1 as pb;

/// Turns a range's replicas into endpoints a [`Router`] can reach (local replicas or remote
/// nodes).
pub trait Resolver: Send + Sync + 'static {
    /// One endpoint per replica of `desc`.
    fn endpoints(&self, desc: &RangeDescriptor) -> Vec<Arc<dyn ReplicaEndpoint>>;
}

/// Rounds of unavailable replicas after which a tablet's router gives up, so that the client
/// looks the range up again (its replicas may have moved). Elections take longer; the client
/// then simply retries through the same replicas.
const GIVE_UP_ROUNDS: usize = 3;

/// How often a tablet holding all its pieces of a large transaction hears that the
/// transaction is alive while other tablets still receive theirs.
const STAGING_KEEPALIVE: Duration = Duration::from_secs(1);

/// The default size of the pieces a large transaction is shipped in.
pub const DEFAULT_TXN_PIECE_BYTES: u64 = 1 << 20;

/// How long decisions that came due wait for others to be forgotten with them: one log entry
/// at a coordinator drops many decisions instead of one entry each.
const FORGET_BATCH_DELAY: Duration = Duration::from_millis(20);

/// The most decisions one forget drops.
const FORGET_BATCH_MAX: usize = 1024;

/// Decisions waiting to be forgotten, in the order they were settled.
#[derive(Default)]
struct ForgetQueue {
    /// (not before, coordinator, transaction).
    due: std::collections::VecDeque<(Timestamp, Arc<Cached>, Vec<u8>)>,
    /// A task is draining the queue.
    draining: bool,
}

type Forgets = Arc<std::sync::Mutex<ForgetQueue>>;

/// How ranges are kept.
#[derive(Debug, Clone)]
pub struct RangeSettings {
    /// Split a tablet once about this many bytes were written to it.
    pub split_bytes: u64,
    /// Split a tablet whose leader served more than this many requests per second for
    /// `split_qps_after`, where its load divides in half (see `load.rs`); 0: never.
    pub split_qps: u64,
    /// See `split_qps`.
    pub split_qps_after: Duration,
    /// The left half of a split by load is not merged with its right neighbour for this long.
    pub load_merge_delay: Duration,
    /// Merge a tablet with its right neighbour when at most about this many bytes were written
    /// to the two together (and at most half of `split_bytes`) and both are cold; 0: never.
    pub merge_bytes: u64,
    /// A tablet is cold when it took at most `merge_cold_rate` bytes of writes per second over
    /// the last `merge_cold_window` and over the window in progress.
    pub merge_cold_window: Duration,
    /// See `merge_cold_window`.
    pub merge_cold_rate: u64,
    /// A transaction prepared this many Raft ticks ago without being resolved is recovered
    /// (its coordinator is asked to decide).
    pub recovery_ticks: u64,
    /// How often [`maintain`] runs.
    pub interval: Duration,
    /// How long a node's liveness record lasts; nodes renew theirs three times as often.
    pub liveness_ttl: Duration,
    /// A node whose liveness record expired this long ago is dead: the placement driver
    /// replaces its replicas.
    pub dead_after: Duration,
    /// Whether nodes record their liveness and the placement driver runs.
    pub placement: bool,
    /// How many replicas the placement driver keeps of every tablet.
    pub replication: usize,
    /// Whether the placement driver also evens out replica counts between live nodes.
    pub rebalance: bool,
    /// Whether every node evens out leader counts (`placement::balance_leaders`). Off by
    /// default, so that tests driving a tablet's leader replica directly keep their leader;
    /// a cluster node turns it on.
    pub balance_leaders: bool,
    /// With `balance_leaders`: a tablet whose requests come from another node's gateway at
    /// this many per second and more than twice as often as from its leader's own node hands
    /// its leadership to that node (see `follow.rs`); 0: leaders stay where counts put them.
    pub follow_qps: f64,
    /// A learner in the meta records this long is left over from an interrupted addition and
    /// removed. An addition gives up after three request deadlines (`replace_replica`), so
    /// this must be longer than that.
    pub learner_patience: Duration,
    /// A transaction whose share in a tablet is larger than this is shipped there in pieces
    /// of about this size, each its own Raft entry (see `txn.rs`).
    pub txn_piece_bytes: u64,
    /// This process's locality (recorded in its nodes' liveness records).
    pub region: String,
    /// See `region`.
    pub zone: String,
}

impl Default for RangeSettings {
    fn default() -> Self {
        RangeSettings {
            split_bytes: 64 << 20,
            split_qps: 0,
            split_qps_after: Duration::from_secs(5),
            load_merge_delay: Duration::from_secs(300),
            merge_bytes: 16 << 20,
            merge_cold_window: Duration::from_secs(300),
            merge_cold_rate: 1 << 10,
            recovery_ticks: 30,
            interval: Duration::from_millis(200),
            liveness_ttl: Duration::from_millis(4500),
            dead_after: Duration::from_secs(300),
            placement: true,
            replication: 3,
            rebalance: true,
            balance_leaders: false,
            follow_qps: 0.0,
            learner_patience: Duration::from_secs(60),
            txn_piece_bytes: DEFAULT_TXN_PIECE_BYTES,
            region: String::new(),
            zone: String::new(),
        }
    }
}

/// The end of a cached range, ordered with "no end" last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RangeEnd {
    Key(Vec<u8>),
    Last,
}

impl RangeEnd {
    fn of(desc: &RangeDescriptor) -> RangeEnd {
        if desc.end_key.is_empty() {
            RangeEnd::Last
        } else {
            RangeEnd::Key(desc.end_key.clone())
        }
    }
}

pub(crate) struct Cached {
    pub(crate) desc: RangeDescriptor,
    pub(crate) router: Arc<Router>,
}

/// The whole keyspace over all tablets.
pub struct RangeClient {
    resolver: Arc<dyn Resolver>,
    clock: Arc<TrueTime>,
    /// The root tablet's router, rebuilt when its replicas change.
    root: RwLock<Arc<Router>>,
    /// Every node (store) id, where the root tablet is looked for when none of the replicas
    /// its router knows answers.
    members: RwLock<Vec<u64>>,
    cache: RwLock<BTreeMap<RangeEnd, Arc<Cached>>>,
    deadline: Duration,
    txn_prefix: u64,
    txn_seq: AtomicU64,
    /// See `RangeSettings::txn_piece_bytes`.
    piece_bytes: AtomicU64,
    /// Decisions waiting to be forgotten (see [`RangeClient::forget`]).
    forgets: Forgets,
}

impl RangeClient {
    /// A client whose root tablet has replicas `root_replicas`; `deadline` bounds each request
    /// including its retries.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        clock: Arc<TrueTime>,
        root_replicas: Vec<u64>,
        deadline: Duration,
    ) -> Self {
        let root_desc = range::whole_keyspace(ROOT_TABLET, root_replicas.clone());
        let root = Arc::new(
            Router::new(ROOT_TABLET, resolver.endpoints(&root_desc), deadline)
                .give_up_after(GIVE_UP_ROUNDS),
        );
        // Transaction ids: a per-client prefix from the clock, then a sequence.
        let txn_prefix = clock.now().map_or(0, |now| now.latest.as_nanos());
        RangeClient {
            resolver,
            clock,
            root: RwLock::new(root),
            members: RwLock::new(root_replicas),
            cache: RwLock::new(BTreeMap::new()),
            deadline,
            txn_prefix,
            txn_seq: AtomicU64::new(0),
            piece_bytes: AtomicU64::new(DEFAULT_TXN_PIECE_BYTES),
            forgets: Forgets::default(),
        }
    }

    /// Ships transactions whose share in a tablet exceeds `bytes` in pieces of about that size
    /// (see `RangeSettings::txn_piece_bytes`).
    pub fn set_txn_piece_bytes(&self, bytes: u64) {
        self.piece_bytes.store(bytes.max(1), Ordering::Relaxed);
    }

    fn txn_piece_bytes(&self) -> u64 {
        self.piece_bytes.load(Ordering::Relaxed)
    }

    /// The root tablet's router.
    fn root(&self) -> Arc<Router> {
        self.root.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Routes the root tablet's requests to the replicas of `desc` (its meta record) if they
    /// differ from the current ones.
    fn refresh_root(&self, desc: &RangeDescriptor) {
        let mut root = self.root.write().unwrap_or_else(|e| e.into_inner());
        let mut current = root.replica_ids();
        current.sort_unstable();
        let mut wanted = desc.replicas.clone();
        wanted.sort_unstable();
        if current != wanted && !wanted.is_empty() {
            tracing::info!(replicas = ?wanted, "the root tablet's replicas changed");
            *root = Arc::new(
                Router::new(ROOT_TABLET, self.resolver.endpoints(desc), self.deadline)
                    .give_up_after(GIVE_UP_ROUNDS),
            );
        }
    }

    fn cached(&self, key: &[u8]) -> Option<Arc<Cached>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let (_, c) = cache
            .range((
                Bound::Excluded(RangeEnd::Key(key.to_vec())),
                Bound::Unbounded,
            ))
            .next()?;
        range::contains(&c.desc, key).then(|| c.clone())
    }

    /// How long a request may take, retries included.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// One endpoint per replica of `desc` (those the resolver knows).
    pub(crate) fn endpoints(&self, desc: &RangeDescriptor) -> Vec<Arc<dyn ReplicaEndpoint>> {
        self.resolver.endpoints(desc)
    }

    /// Caches `desc`, dropping cached ranges it overlaps (they are older).
    pub(crate) fn install(&self, desc: RangeDescriptor) -> Arc<Cached> {
        let router = if desc.tablet_id == ROOT_TABLET {
            self.refresh_root(&desc);
            self.root()
        } else {
            Arc::new(
                Router::new(
                    desc.tablet_id,
                    self.resolver.endpoints(&desc),
                    self.deadline,
                )
                .give_up_after(GIVE_UP_ROUNDS),
            )
        };
        let entry = Arc::new(Cached { desc, router });
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<RangeEnd> = cache
            .iter()
            .filter(|(_, c)| {
                c.desc.tablet_id == entry.desc.tablet_id || overlap(&c.desc, &entry.desc)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            cache.remove(&k);
        }
        cache.insert(RangeEnd::of(&entry.desc), entry.clone());
        entry
    }

    pub(crate) fn evict(&self, tablet: u64) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, c| c.desc.tablet_id != tablet);
    }

    /// The range holding `key`: from the cache, else from the meta records.
    async fn lookup(&self, key: &[u8]) -> Result<Arc<Cached>> {
        if let Some(c) = self.cached(key) {
            return Ok(c);
        }
        let desc = match self.meta_record(key).await? {
            Some(desc) => desc,
            // No meta records yet: the root tablet holds everything until its first split.
            None => range::whole_keyspace(ROOT_TABLET, self.root().replica_ids()),
        };
        if !range::contains(&desc, key) {
            return Err(Error::Unavailable {
                tablet: desc.tablet_id,
                reason: format!(
                    "the meta records do not cover key {} yet",
                    range::pretty_key(key)
                ),
            });
        }
        Ok(self.install(desc))
    }

    /// Runs `f` on the range holding `key`, refreshing the range and retrying when it moved,
    /// until the deadline.
    pub(crate) async fn with_range<T, F, Fut>(&self, key: &[u8], f: F) -> Result<T>
    where
        F: Fn(Arc<Cached>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retrying(|| async {
            let c = self.lookup(key).await?;
            f(c).await
        })
        .await
    }

    /// Retries `f` through range moves (and meta records that lag behind a split or a merge)
    /// until the deadline.
    async fn retrying<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let attempts = async {
            loop {
                match f().await {
                    Err(Error::RangeMismatch { tablet, range }) => {
                        self.evict(tablet);
                        if range.tablet_id == tablet {
                            self.install(*range);
                        }
                    }
                    Err(e @ Error::Unavailable { .. }) if is_meta_lag(&e) => {}
                    // The tablet is merging into its left neighbour: once the merge is done,
                    // the meta records name the merged tablet.
                    Err(Error::RangeMerging { tablet }) => {
                        self.evict(tablet);
                        tokio::time::sleep(RETRY_BACKOFF).await;
                    }
                    Err(Error::ReplicasChanged { tablet, leader }) => {
                        self.evict(tablet);
                        if tablet == ROOT_TABLET {
                            self.reload_root(leader).await;
                        }
                    }
                    other => return other,
                }
                tokio::time::sleep(RETRY_BACKOFF / 4).await;
            }
        };
        match tokio::time::timeout(self.deadline, attempts).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                tablet: 0,
                reason: "no range answered in time".into(),
            }),
        }
    }

    /// The root tablet's leader is `leader`, which its router does not know: route to it too,
    /// then read the root's meta record for its current replicas. With no leader named (no
    /// known replica answered), ask every member.
    async fn reload_root(&self, leader: u64) {
        if leader == 0 {
            self.rediscover_root().await;
            return;
        }
        let mut ids = self.root().replica_ids();
        if !ids.contains(&leader) {
            ids.push(leader);
            self.refresh_root(&range::whole_keyspace(ROOT_TABLET, ids));
        }
        match read_meta_record(&self.root(), b"").await {
            // A record that does not list the leader lags behind the change that made it one:
            // keep routing to the leader too until the record catches up.
            Ok(Some(desc)) if desc.tablet_id == ROOT_TABLET && desc.replicas.contains(&leader) => {
                self.refresh_root(&desc)
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the root tablet's meta record"),
        }
    }

    /// Sets every node id of the cluster (the root tablet may move to any of them).
    pub fn set_members(&self, members: Vec<u64>) {
        *self.members.write().unwrap_or_else(|e| e.into_inner()) = members;
    }

    /// None of the root replicas this client knows answers: asks every member for the root
    /// tablet's meta record and routes to the replicas it names.
    async fn rediscover_root(&self) {
        let members = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let all = Router::new(
            ROOT_TABLET,
            self.resolver
                .endpoints(&range::whole_keyspace(ROOT_TABLET, members)),
            self.deadline,
        );
        match read_meta_record(&all, b"").await {
            Ok(Some(desc)) if desc.tablet_id == ROOT_TABLET => self.refresh_root(&desc),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "no member knows the root tablet's replicas"),
        }
    }

    /// Runs `f` on the root tablet's router; when the root's replicas changed under it, routes
    /// to the new ones and runs it again.
    async fn on_root<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Arc<Router>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        for _ in 0..3 {
            match f(self.root()).await {
                Err(Error::ReplicasChanged {
                    tablet: ROOT_TABLET,
                    leader,
                }) => self.reload_root(leader).await,
                other => return other,
            }
        }
        f(self.root()).await
    }

    /// Replaces the replica of `desc`'s tablet on node `remove` (if any) by one on node `add`:
    /// `add` creates an empty replica, the leader adds it as a learner and sends it a snapshot,
    /// then one joint configuration change promotes it and removes `remove` (see
    /// `membership.rs`). If the new replica does not catch up in time it is removed again.
    pub async fn replace_replica(
        &self,
        desc: &RangeDescriptor,
        remove: Option<u64>,
        add: u64,
    ) -> Result<()> {
        let target = RangeDescriptor {
            replicas: vec![add],
            ..desc.clone()
        };
        let endpoint = self
            .resolver
            .endpoints(&target)
            .into_iter()
            .next()
            .ok_or_else(|| Error::Unavailable {
                tablet: desc.tablet_id,
                reason: format!("node {add} is not reachable"),
            })?;
        endpoint.op(TabletOp::CreateReplica(desc.clone())).await?;
        self.change_replicas(desc, vec![ReplicaChange::AddLearner(add)], true)
            .await?;
        let mut changes = vec![ReplicaChange::AddVoter(add)];
        changes.extend(remove.map(ReplicaChange::Remove));
        let promote = async {
            loop {
                match self.change_replicas(desc, changes.clone(), false).await {
                    // Not caught up yet, or the learner step is still being left.
                    Err(Error::Unavailable { .. }) => tokio::time::sleep(RETRY_BACKOFF * 10).await,
                    other => return other,
                }
            }
        };
        let result = match tokio::time::timeout(self.deadline * 3, promote).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                tablet: desc.tablet_id,
                reason: format!("node {add}'s new replica did not catch up in time"),
            }),
        };
        if let Err(e) = &result {
            tracing::warn!(tablet = desc.tablet_id, node = add, error = %e,
                "adding a replica failed; removing the learner");
            let _ = self
                .change_replicas(desc, vec![ReplicaChange::Remove(add)], false)
                .await;
        }
        self.evict(desc.tablet_id);
        result
    }

    /// Proposes `changes` to the members of `desc`'s tablet at its leader, and waits until they
    /// are applied there. With `checked`, the leader refuses them unless its descriptor still
    /// has `desc`'s generation (they were planned on it).
    pub async fn change_replicas(
        &self,
        desc: &RangeDescriptor,
        changes: Vec<ReplicaChange>,
        checked: bool,
    ) -> Result<()> {
        let op = TabletOp::ChangeReplicas {
            changes,
            generation: checked.then_some(desc.generation),
        };
        self.op_on_tablet(desc, op).await.map(|_| ())
    }

    /// Runs `op` at the leader of `desc`'s tablet, found by its start key; refused when that
    /// key is now another tablet's (its range was merged into its left neighbour's).
    pub(crate) async fn op_on_tablet(
        &self,
        desc: &RangeDescriptor,
        op: TabletOp,
    ) -> Result<OpOutcome> {
        let tablet = desc.tablet_id;
        self.with_range(&desc.start_key, |c| {
            let op = op.clone();
            async move {
                if c.desc.tablet_id != tablet {
                    // The next attempt looks the key up again, in case this was a stale entry.
                    self.evict(c.desc.tablet_id);
                    return Err(Error::Refused {
                        tablet,
                        reason: "the range moved to another tablet".into(),
                    });
                }
                c.router.op(op).await
            }
        })
        .await
    }

    /// Renews `record`'s node liveness for `ttl` from now (a blind write to the root tablet).
    pub async fn heartbeat(&self, mut record: pb::NodeLiveness, ttl: Duration) -> Result<()> {
        let now = self.clock.now()?;
        record.expiration = now.latest.as_nanos().saturating_add(ttl.as_nanos() as u64);
        self.write_root(Mutation::Put {
            key: range::node_key(range::LIVENESS_PREFIX, record.node_id),
            value: record.encode_to_vec(),
        })
        .await
    }

    /// A blind write of `mutation` to the root tablet.
    async fn write_root(&self, mutation: Mutation) -> Result<()> {
        let req = WriteRequest {
            mutations: vec![mutation],
            ..Default::default()
        };
        self.on_root(|root| {
            let req = req.clone();
            async move { root.write(req).await }
        })
        .await
        .map(|_| ())
    }

    /// Marks node `node` as leaving the cluster (`true`) or staying (`false`).
    pub async fn set_decommissioning(&self, node: u64, leaving: bool) -> Result<()> {
        let key = range::node_key(range::DECOMMISSION_PREFIX, node);
        let mutation = if leaving {
            Mutation::Put {
                key,
                value: Vec::new(),
            }
        } else {
            Mutation::Delete { key }
        };
        self.write_root(mutation).await
    }

    /// The nodes marked as leaving the cluster.
    pub async fn decommissioning(&self) -> Result<std::collections::BTreeSet<u64>> {
        let (lo, hi) = range::prefix_span(range::DECOMMISSION_PREFIX);
        Ok(self
            .scan_root(&lo, &hi)
            .await?
            .into_iter()
            .filter_map(|(k, _)| {
                let id = k.strip_prefix(range::DECOMMISSION_PREFIX)?;
                Some(u64::from_be_bytes(id.try_into().ok()?))
            })
            .collect())
    }

    /// Registers a node joining after `init` as `member` (its `join_token` set, its id
    /// ignored) and returns its id: the id already recorded for the same token, else the next
    /// one of the node-id counter, which starts at `first` (one past the ids `init` gave).
    pub async fn register_node(&self, member: &pb::ClusterMember, first: u64) -> Result<u64> {
        let key = &range::next_node_id_key();
        let (lo, hi) = &range::prefix_span(range::NODE_PREFIX);
        self.retry_conflicts(|| {
            self.on_root(|root| async move {
                let ts = root.read_ts().await?;
                let known = root.scan(lo, hi, ts, None).await?;
                for (_, v) in &known {
                    let m = decode_member(v)?;
                    if m.join_token == member.join_token {
                        return Ok(m.node_id);
                    }
                }
                let id = counter(root.get(key, ts).await?, first, "node-id")?;
                let record = pb::ClusterMember {
                    node_id: id,
                    ..member.clone()
                };
                let mut req = WriteRequest::put_if_unchanged(
                    ts,
                    key.clone(),
                    (id + 1).to_be_bytes().to_vec(),
                );
                req.read_spans.push(Span {
                    start: lo.clone(),
                    end: Some(hi.clone()),
                });
                req.mutations.push(Mutation::Put {
                    key: range::node_key(range::NODE_PREFIX, id),
                    value: record.encode_to_vec(),
                });
                root.write(req).await?;
                Ok(id)
            })
        })
        .await
    }

    /// The records of the nodes that joined after `init`.
    pub async fn joined_nodes(&self) -> Result<Vec<pb::ClusterMember>> {
        let (lo, hi) = range::prefix_span(range::NODE_PREFIX);
        self.scan_root(&lo, &hi)
            .await?
            .iter()
            .map(|(_, v)| decode_member(v))
            .collect()
    }

    /// Every node's liveness record.
    pub async fn liveness(&self) -> Result<Vec<pb::NodeLiveness>> {
        let (lo, hi) = range::prefix_span(range::LIVENESS_PREFIX);
        self.scan_root(&lo, &hi)
            .await?
            .into_iter()
            .map(|(_, v)| {
                pb::NodeLiveness::decode(v.as_slice())
                    .map_err(|e| Error::Internal(format!("undecodable liveness record: {e}")))
            })
            .collect()
    }

    /// The meta record of the range holding `key`, read now (not from the cache).
    pub async fn meta_record(&self, key: &[u8]) -> Result<Option<RangeDescriptor>> {
        self.on_root(|root| async move { read_meta_record(&root, key).await })
            .await
    }

    /// The gateway's clock reading.
    pub fn now(&self) -> Result<meridian_clock::TtInterval> {
        Ok(self.clock.now()?)
    }

    /// Every range, from the meta records, in key order.
    pub async fn ranges(&self) -> Result<Vec<RangeDescriptor>> {
        let (lo, hi) = range::meta_span();
        self.scan_root(&lo, &hi)
            .await?
            .into_iter()
            .map(|(_, v)| range::decode_meta(&v))
            .collect()
    }

    /// A fresh read of `[lo, hi)` in the root tablet.
    async fn scan_root(&self, lo: &[u8], hi: &[u8]) -> Result<Vec<KvPair>> {
        self.on_root(|root| async move {
            let ts = root.read_ts().await?;
            root.scan(lo, hi, ts, None).await
        })
        .await
    }

    /// Splits the range holding `key` so that a tablet starts at `key`, and records both halves
    /// in the meta records. Nothing happens when a range already starts there. When both halves
    /// are small and cold later, they may be merged again; [`RangeClient::split_at_sticky`]
    /// makes a boundary merges keep.
    pub async fn split_at(&self, key: &[u8]) -> Result<Option<(RangeDescriptor, RangeDescriptor)>> {
        self.split(key, false).await
    }

    /// [`RangeClient::split_at`] for a split a user asked for (`ALTER TABLE ... SPLIT AT`):
    /// merges keep the boundary.
    pub async fn split_at_sticky(
        &self,
        key: &[u8],
    ) -> Result<Option<(RangeDescriptor, RangeDescriptor)>> {
        self.split(key, true).await
    }

    async fn split(
        &self,
        key: &[u8],
        sticky: bool,
    ) -> Result<Option<(RangeDescriptor, RangeDescriptor)>> {
        if key < range::USER_START {
            return Err(Error::Internal(format!(
                "cannot split at {}: the root tablet keeps the catalog and the meta records",
                range::pretty_key(key)
            )));
        }
        let current = self
            .with_range(key, |c| async move { Ok(c.desc.clone()) })
            .await?;
        if current.start_key == key {
            return Ok(None);
        }
        let id = self.allocate_tablet_id().await?;
        let outcome = self
            .with_range(key, |c| async move {
                c.router
                    .op(TabletOp::Split {
                        key: key.to_vec(),
                        new_tablet_id: id,
                        sticky,
                    })
                    .await
            })
            .await?;
        let (left, right) = outcome
            .split
            .ok_or_else(|| Error::Internal("a split answered without its ranges".into()))?;
        self.update_meta(&[left.clone(), right.clone()]).await?;
        self.install(left.clone());
        self.install(right.clone());
        Ok(Some((left, right)))
    }

    /// A new, cluster-unique tablet id from the counter in the root tablet.
    async fn allocate_tablet_id(&self) -> Result<u64> {
        let key = &range::next_tablet_id_key();
        self.retry_conflicts(|| {
            self.on_root(|root| async move {
                let ts = root.read_ts().await?;
                let next = counter(root.get(key, ts).await?, ROOT_TABLET + 1, "tablet-id")?;
                root.write(WriteRequest::put_if_unchanged(
                    ts,
                    key.clone(),
                    (next + 1).to_be_bytes().to_vec(),
                ))
                .await?;
                Ok(next)
            })
        })
        .await
    }

    /// Writes the meta records of `descs` (the two halves of a split, together) in one atomic
    /// write, skipping any whose record is as new already, so that the records tile the
    /// keyspace at every timestamp. The records of older ranges that end inside a descriptor
    /// (the left half of a merge) are deleted in the same write.
    pub async fn update_meta(&self, descs: &[RangeDescriptor]) -> Result<()> {
        self.retry_conflicts(|| {
            self.on_root(|root| async move {
                let ts = root.read_ts().await?;
                let mut req = WriteRequest {
                    read_ts: Some(ts),
                    ..Default::default()
                };
                for desc in descs {
                    let (lo, hi) = range::meta_overlap_span(desc);
                    let recorded = root.scan(&lo, &hi, ts, None).await?;
                    let Some(stale) = stale_meta_records(desc, &recorded)? else {
                        continue;
                    };
                    req.read_spans.push(Span {
                        start: lo,
                        end: Some(hi),
                    });
                    req.mutations
                        .extend(stale.into_iter().map(|key| Mutation::Delete { key }));
                    req.mutations.push(Mutation::Put {
                        key: range::meta_key(&desc.end_key),
                        value: desc.encode_to_vec(),
                    });
                }
                if !req.mutations.is_empty() {
                    root.write(req).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Runs the read-modify-write `f` on the root tablet again while it conflicts, until the
    /// deadline. A conflict can outlast a quick retry: a root leader's timestamps may run up to
    /// `2 × max_epsilon` ahead of the clock (a new leader, or a merge that raised them above
    /// its right half's), and a read at the clock's time does not see what it wrote there, so
    /// the conflicts last until the clock catches up. Backs off from 5 to 80 ms.
    async fn retry_conflicts<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let attempts = async {
            let mut backoff = RETRY_BACKOFF / 4;
            loop {
                match f().await {
                    Err(Error::WriteConflict { .. }) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(RETRY_BACKOFF * 4);
                    }
                    other => return other,
                }
            }
        };
        tokio::time::timeout(self.deadline, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable {
                    tablet: ROOT_TABLET,
                    reason: "meta update kept conflicting".into(),
                })
            })
    }

    /// Asks the coordinator of a transaction to decide (`commit`: at or above `min_ts`, with
    /// the coordinator's own share and the time its requests expire when `own` is given);
    /// the answer is the decision of record: `Ok(commit_ts)` or `Err(TxnAborted)` (or the
    /// refusal of the own share, which recorded "abort").
    async fn decide(
        &self,
        txn_id: &[u8],
        anchor: &[u8],
        commit: bool,
        min_ts: Timestamp,
        own: Option<(WriteRequest, Timestamp)>,
    ) -> Result<Timestamp> {
        let mut last = None;
        let (write, expires) = match own {
            Some((w, expires)) => (Some(w), expires),
            None => (None, Timestamp::ZERO),
        };
        let write = &write;
        // A decision is idempotent: an ambiguous answer is asked again.
        for _ in 0..3 {
            let result = self
                .with_range(anchor, |c| async move {
                    c.router
                        .op(TabletOp::Decide {
                            txn_id: txn_id.to_vec(),
                            anchor: anchor.to_vec(),
                            commit,
                            min_commit_ts: min_ts,
                            write: write.clone(),
                            expires,
                        })
                        .await
                })
                .await;
            match result {
                Ok(outcome) => return Ok(outcome.ts),
                Err(e @ Error::Ambiguous { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::Ambiguous { tablet: 0 }))
    }

    fn new_txn_id(&self) -> Vec<u8> {
        let seq = self.txn_seq.fetch_add(1, Ordering::Relaxed);
        [self.txn_prefix.to_be_bytes(), seq.to_be_bytes()].concat()
    }

    /// Splits a write by range: one share per tablet it touches.
    async fn partition(&self, req: &WriteRequest) -> Result<Vec<(Arc<Cached>, WriteRequest)>> {
        let mut parts: BTreeMap<u64, (Arc<Cached>, WriteRequest)> = BTreeMap::new();
        for m in &req.mutations {
            let key = match m {
                Mutation::Put { key, .. } | Mutation::Delete { key } => key,
            };
            let c = self.lookup(key).await?;
            entry(&mut parts, &c, req).mutations.push(m.clone());
        }
        for cond in &req.conditions {
            let key = match cond {
                Condition::NotExists(k) | Condition::Exists(k) => k,
            };
            let c = self.lookup(key).await?;
            entry(&mut parts, &c, req).conditions.push(cond.clone());
        }
        for span in &req.read_spans {
            match &span.end {
                None => {
                    let c = self.lookup(&span.start).await?;
                    entry(&mut parts, &c, req).read_spans.push(span.clone());
                }
                Some(end) => {
                    let mut cur = span.start.clone();
                    loop {
                        let c = self.lookup(&cur).await?;
                        let Some((lo, hi)) = range::clip(&c.desc, &cur, end) else {
                            break;
                        };
                        entry(&mut parts, &c, req).read_spans.push(Span {
                            start: lo,
                            end: Some(hi),
                        });
                        if past_end(&c.desc, end) {
                            break;
                        }
                        cur = c.desc.end_key.clone();
                    }
                }
            }
        }
        Ok(parts.into_values().collect())
    }

    /// Commits a write whose changes are all in one tablet but whose reads span others (a
    /// statement reads the catalog in the root tablet and writes a table): picks a window for
    /// the commit timestamp first, `[lo, hi]` with `lo = TT.now().latest` here and `hi` one
    /// uncertainty bound later, checks in every read-only tablet that nothing read changed up
    /// to `hi` (which also keeps anything from being written there at or below `hi`), then
    /// commits the changes with one Raft write at a timestamp the writing tablet picks in the
    /// window. If that tablet is already past `hi`, nothing is written and it is tried again
    /// above. The reads hold at the commit timestamp everywhere, so the result is as if it all
    /// ran then; commit wait on it keeps it externally consistent.
    async fn commit_with_refresh(
        &self,
        parts: &[(Arc<Cached>, WriteRequest)],
        writer: usize,
        read_ts: Timestamp,
    ) -> Result<Timestamp> {
        let mut floor = Timestamp::ZERO;
        for _ in 0..5 {
            // A timestamp from this clock, past whatever the writing tablet reported: wait
            // until the clock has certainly passed it (at most the uncertainty bound).
            if floor > Timestamp::ZERO {
                self.clock.commit_wait(floor).await?;
            }
            let lo = self.clock.now()?.latest;
            let hi = lo.saturating_add(self.clock.config().max_epsilon);
            for (i, (c, w)) in parts.iter().enumerate() {
                if i != writer {
                    c.router
                        .op(TabletOp::Refresh {
                            spans: w.read_spans.clone(),
                            read_ts,
                            up_to: hi,
                        })
                        .await?;
                }
            }
            let (c, w) = &parts[writer];
            match c.router.write_at(w.clone(), lo, hi).await {
                Err(Error::CommitTsTooLow { min, .. }) => floor = min.next(),
                other => return other,
            }
        }
        // The writing tablet kept running ahead: fall back to two-phase commit.
        let anchor = first_key(&parts[writer].1);
        self.commit_across(parts, &anchor).await
    }

    /// Two-phase commit of a write whose shares are in several tablets.
    async fn commit_across(
        &self,
        parts: &[(Arc<Cached>, WriteRequest)],
        anchor: &[u8],
    ) -> Result<Timestamp> {
        let staged = vec![0; parts.len()];
        self.two_phase(parts, anchor, &self.new_txn_id(), &staged)
            .await
    }

    /// Two-phase commit of `parts`, of which `staged[i]` pieces were staged ahead at part
    /// `i` (its prepare then carries nothing but the snapshot).
    ///
    /// The coordinator's own share (the part holding `anchor`, when none of it was staged) is
    /// not prepared: it travels with the commit decision, which validates it as a prepare
    /// would and applies it with the decision, or records "abort" if it does not hold. That
    /// is two log entries fewer than preparing and resolving it, and one round fewer before
    /// the answer and before the row locks are released.
    async fn two_phase(
        &self,
        parts: &[(Arc<Cached>, WriteRequest)],
        anchor: &[u8],
        txn_id: &[u8],
        staged: &[u32],
    ) -> Result<Timestamp> {
        // The requests carrying the coordinator's share expire after the deadline; the
        // decision is forgotten only after that. Read before anything is prepared, so that an
        // unusable clock leaves nothing to abort.
        let expires = self.clock.now()?.latest.saturating_add(self.deadline);
        let coordinator = parts
            .iter()
            .zip(staged)
            .position(|((c, _), &n)| n == 0 && range::contains(&c.desc, anchor));
        let prepares = parts
            .iter()
            .zip(staged)
            .enumerate()
            .filter(|(i, _)| Some(*i) != coordinator)
            .map(|(_, ((c, w), &n))| {
                let write = if n > 0 {
                    WriteRequest {
                        read_ts: w.read_ts,
                        lock_owner: w.lock_owner.clone(),
                        ..Default::default()
                    }
                } else {
                    w.clone()
                };
                c.router.op(TabletOp::Prepare {
                    txn_id: txn_id.to_vec(),
                    anchor: anchor.to_vec(),
                    write,
                    staged: n,
                })
            });
        let mut max_prepare = Timestamp::ZERO;
        let mut failure = None;
        for result in futures::future::join_all(prepares).await {
            match result {
                Ok(outcome) => max_prepare = max_prepare.max(outcome.ts),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            self.abort(parts, txn_id, anchor, coordinator).await;
            return Err(e);
        }
        let own = coordinator.map(|i| (parts[i].1.clone(), expires));
        let decided = match self.decide(txn_id, anchor, true, max_prepare, own).await {
            Ok(ts) => Ok(ts),
            Err(e @ Error::TxnAborted { .. }) => Err((e, true)),
            // A refusal of the coordinator's share, or no answer: the decision of record
            // settles it (asking to abort records "abort" if nothing is recorded yet).
            Err(e) => match self
                .decide(txn_id, anchor, false, Timestamp::ZERO, None)
                .await
            {
                Ok(ts) => Ok(ts),
                Err(Error::TxnAborted { .. }) => Err((e, true)),
                Err(again) => Err((again, false)),
            },
        };
        let first_tablet = parts.first().map_or(0, |(c, _)| c.desc.tablet_id);
        match decided {
            Ok(commit_ts) => {
                // The participants apply their shares (and release the transaction's row
                // locks) while commit wait runs here: the answer waits for both, the locks
                // only for the resolve.
                let (resolved, waited) = tokio::join!(
                    self.resolve_all(parts, txn_id, Some(commit_ts), staged, coordinator),
                    self.clock.commit_wait(commit_ts)
                );
                if resolved {
                    self.forget(txn_id, anchor, expires);
                }
                match waited {
                    Ok(waited) => {
                        crate::metrics::COMMIT_WAIT.observe(waited.as_secs_f64());
                        Ok(commit_ts)
                    }
                    Err(e) => {
                        // Committed, but this clock cannot tell when that is in the past.
                        tracing::warn!(error = %e, "commit wait failed after the decision");
                        Err(Error::Ambiguous {
                            tablet: first_tablet,
                        })
                    }
                }
            }
            Err((e, true)) => {
                if self
                    .resolve_all(parts, txn_id, None, staged, coordinator)
                    .await
                {
                    self.forget(txn_id, anchor, expires);
                }
                Err(e)
            }
            Err((e, false)) => {
                tracing::warn!(error = %e, "commit decision outcome unknown");
                Err(Error::Ambiguous {
                    tablet: first_tablet,
                })
            }
        }
    }

    /// Aborts a transaction this gateway has not asked to commit: records the abort at the
    /// coordinator and drops every share but part `skip` (never prepared; recovery cleans up
    /// any share still prepared).
    async fn abort(
        &self,
        parts: &[(Arc<Cached>, WriteRequest)],
        txn_id: &[u8],
        anchor: &[u8],
        skip: Option<usize>,
    ) {
        // Nobody decides "commit" but this gateway, so the transaction is aborted whatever
        // happens below.
        if let Err(abort_err) = self
            .decide(txn_id, anchor, false, Timestamp::ZERO, None)
            .await
            && !matches!(abort_err, Error::TxnAborted { .. })
        {
            tracing::debug!(error = %abort_err, "abort decision not recorded; recovery will");
        }
        let none = vec![0; parts.len()];
        if self.resolve_all(parts, txn_id, None, &none, skip).await {
            // No request carried the coordinator's share: nothing can commit it later.
            self.forget(txn_id, anchor, Timestamp::ZERO);
        }
    }

    /// Commits a write with a share larger than the piece size in some tablet: ships each
    /// such share in pieces (`TabletOp::Stage`, one Raft entry each), then commits by two-phase
    /// commit as usual, the large shares' prepares naming their pieces (see `txn.rs`). Not
    /// bounded by the request deadline as a whole (each step is): a large transaction takes
    /// as long as shipping it takes.
    async fn commit_large(&self, req: &WriteRequest) -> Result<Timestamp> {
        let anchor = first_key(req);
        let mut attempt = 0;
        loop {
            let started = crate::metrics::Stopwatch::start();
            let parts = self.retrying(|| self.partition(req)).await?;
            let txn_id = self.new_txn_id();
            let remaining = AtomicUsize::new(parts.len());
            let staging = parts
                .iter()
                .map(|(c, w)| self.stage_share(c, &txn_id, &anchor, w, &remaining));
            let mut staged = Vec::with_capacity(parts.len());
            let mut failure = None;
            for result in futures::future::join_all(staging).await {
                match result {
                    Ok(n) => staged.push(n),
                    Err(e) => {
                        staged.push(0);
                        failure.get_or_insert(e);
                    }
                }
            }
            let staging_took = started.elapsed();
            let result = match failure {
                Some(e) => {
                    self.abort(&parts, &txn_id, &anchor, None).await;
                    Err(e)
                }
                None => self.two_phase(&parts, &anchor, &txn_id, &staged).await,
            };
            tracing::info!(
                tablets = parts.len(),
                pieces = staged.iter().sum::<u32>(),
                bytes = share_bytes(req),
                staging_ms = staging_took.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                committed = result.is_ok(),
                "a large transaction was shipped in pieces"
            );
            attempt += 1;
            match result {
                // A tablet split or merged before its first piece arrived (splits and merges
                // wait while anything is staged): partition again.
                Err(Error::RangeMismatch { tablet, range }) if attempt < 3 => {
                    self.evict(tablet);
                    if range.tablet_id == tablet {
                        self.install(*range);
                    }
                }
                Err(Error::RangeMerging { tablet }) if attempt < 3 => {
                    self.evict(tablet);
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    /// Ships the share `w` of transaction `txn_id` to tablet `c` in pieces when it is larger
    /// than the piece size; returns the number of pieces (0: small enough to prepare whole).
    /// Until every share is shipped (`remaining` counts those still shipping), a tablet that
    /// has all its pieces is reminded every second that the transaction is alive (a repeated
    /// piece, empty, which only refreshes its age): recovery aborts a transaction left
    /// staging too long.
    async fn stage_share(
        &self,
        c: &Cached,
        txn_id: &[u8],
        anchor: &[u8],
        w: &WriteRequest,
        remaining: &AtomicUsize,
    ) -> Result<u32> {
        let result = self.ship_pieces(c, txn_id, anchor, w).await;
        remaining.fetch_sub(1, Ordering::AcqRel);
        if let Ok(n) = result
            && n > 0
        {
            while remaining.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(STAGING_KEEPALIVE).await;
                if remaining.load(Ordering::Acquire) == 0 {
                    break;
                }
                let touch = TabletOp::Stage {
                    txn_id: txn_id.to_vec(),
                    anchor: anchor.to_vec(),
                    seq: n - 1,
                    write: WriteRequest::default(),
                };
                if let Err(e) = c.router.op(touch).await {
                    tracing::debug!(error = %e, "a staging transaction's keepalive failed");
                }
            }
        }
        result
    }

    async fn ship_pieces(
        &self,
        c: &Cached,
        txn_id: &[u8],
        anchor: &[u8],
        w: &WriteRequest,
    ) -> Result<u32> {
        let limit = self.txn_piece_bytes();
        if (share_bytes(w) as u64) <= limit {
            return Ok(0);
        }
        let pieces = Pieces::new(w, limit);
        let mut seq = 0u32;
        for i in 0..pieces.len() {
            let piece = pieces.piece(i);
            // A piece is idempotent: an ambiguous answer is asked again.
            let mut tries = 0;
            loop {
                let op = TabletOp::Stage {
                    txn_id: txn_id.to_vec(),
                    anchor: anchor.to_vec(),
                    seq,
                    write: piece.clone(),
                };
                match c.router.op(op).await {
                    Ok(_) => break,
                    Err(Error::Ambiguous { .. }) if tries < 3 => tries += 1,
                    Err(e) => return Err(e),
                }
            }
            crate::metrics::TXN_PIECES_STAGED.inc();
            seq += 1;
        }
        Ok(seq)
    }

    /// Resolves every share; true when all answered. A committed share staged in pieces is
    /// applied piece by piece first (partial resolves), each its own Raft entry.
    async fn resolve_all(
        &self,
        parts: &[(Arc<Cached>, WriteRequest)],
        txn_id: &[u8],
        commit_ts: Option<Timestamp>,
        staged: &[u32],
        skip: Option<usize>,
    ) -> bool {
        let resolves = parts
            .iter()
            .zip(staged)
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, ((c, _), &n))| resolve_share(c.router.as_ref(), txn_id, commit_ts, n));
        let mut all = true;
        for r in futures::future::join_all(resolves).await {
            if let Err(e) = r {
                tracing::debug!(error = %e, "resolve failed; the participant will recover");
                all = false;
            }
        }
        all
    }

    /// Drops the decision in the background, once every participant resolved and
    /// `TT.after(not_before)` (the expiry of the requests that carried the coordinator's share:
    /// none of them can apply after that, see `TabletOp::Decide`), together with the others
    /// of its coordinator that came due within [`FORGET_BATCH_DELAY`]. A decision not
    /// forgotten (the process stopped, the request failed) stays: it only takes room.
    fn forget(&self, txn_id: &[u8], anchor: &[u8], not_before: Timestamp) {
        let Some(c) = self.cached(anchor) else {
            return;
        };
        let mut queue = self.forgets.lock().unwrap_or_else(|e| e.into_inner());
        queue.due.push_back((not_before, c, txn_id.to_vec()));
        if std::mem::replace(&mut queue.draining, true) {
            return;
        }
        drop(queue);
        let (forgets, clock) = (Arc::downgrade(&self.forgets), self.clock.clone());
        tokio::spawn(drain_forgets(forgets, clock));
    }

    /// Settles a transaction prepared at `replica` (a leader) whose gateway went silent: asks
    /// its coordinator to abort, which answers with the decision of record, and resolves the
    /// share accordingly.
    pub async fn recover(&self, replica: &Replica, txn_id: &[u8], anchor: &[u8]) -> Result<()> {
        let commit_ts = match self
            .decide(txn_id, anchor, false, Timestamp::ZERO, None)
            .await
        {
            Ok(ts) => Some(ts),
            Err(Error::TxnAborted { .. }) => None,
            Err(e) => return Err(e),
        };
        tracing::info!(
            tablet = replica.tablet_id(),
            committed = commit_ts.is_some(),
            "recovered a transaction left prepared"
        );
        let pieces = if commit_ts.is_some() {
            replica.staged_pieces(txn_id)
        } else {
            0
        };
        resolve_share(replica, txn_id, commit_ts, pieces).await
    }

    /// Splits `replica`'s tablet (it leads) near the middle of its data.
    async fn split_by_size(&self, replica: &Replica) -> Result<()> {
        let desc = replica.descriptor();
        // The root tablet splits only where table data begins, or above.
        let start = desc.start_key.as_slice().max(range::USER_START);
        // Finding the middle reads the whole tablet: off the async workers, which drive the
        // replicas' loops (a large tablet takes a while).
        let mvcc = replica.mvcc().clone();
        let (from, end) = (start.to_vec(), desc.end_key.clone());
        let middle = tokio::task::spawn_blocking(move || mvcc.middle_key(&from, &end))
            .await
            .map_err(|e| Error::Internal(format!("finding a tablet's middle key failed: {e}")))?;
        let Some(key) = middle? else {
            return Ok(());
        };
        if key.as_slice() <= desc.start_key.as_slice() {
            return Ok(());
        }
        tracing::info!(tablet = desc.tablet_id, bytes = replica.approx_bytes(),
            key = %range::pretty_key(&key), "splitting a large tablet");
        self.split_at(&key).await?;
        Ok(())
    }
}

/// Forgets the queued decisions as they come due, a batch per coordinator tablet, until the
/// queue is empty. Holds the queue (whose routers hold the node's stores) only while it
/// works, not while it waits: a stopped node's client and stores go away at once.
async fn drain_forgets(
    forgets: std::sync::Weak<std::sync::Mutex<ForgetQueue>>,
    clock: Arc<TrueTime>,
) {
    loop {
        let next = {
            let Some(forgets) = forgets.upgrade() else {
                return;
            };
            let mut queue = forgets.lock().unwrap_or_else(|e| e.into_inner());
            match queue.due.front() {
                Some((not_before, _, _)) => *not_before,
                None => {
                    queue.draining = false;
                    return;
                }
            }
        };
        if clock.commit_wait(next).await.is_err() {
            // No usable clock: try again later.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tokio::time::sleep(FORGET_BATCH_DELAY).await;
        let Ok(now) = clock.now() else {
            continue;
        };
        let mut batches: BTreeMap<u64, (Arc<Cached>, Vec<Vec<u8>>)> = BTreeMap::new();
        {
            let Some(forgets) = forgets.upgrade() else {
                return;
            };
            let mut queue = forgets.lock().unwrap_or_else(|e| e.into_inner());
            while queue
                .due
                .front()
                .is_some_and(|(not_before, _, _)| *not_before < now.earliest)
            {
                if let Some((_, c, txn_id)) = queue.due.pop_front() {
                    batches
                        .entry(c.desc.tablet_id)
                        .or_insert_with(|| (c, Vec::new()))
                        .1
                        .push(txn_id);
                }
            }
        }
        for (c, txn_ids) in batches.into_values() {
            for chunk in txn_ids.chunks(FORGET_BATCH_MAX) {
                let op = TabletOp::Forget {
                    txn_ids: chunk.to_vec(),
                };
                if let Err(e) = c.router.op(op).await {
                    tracing::debug!(error = %e, "decisions not forgotten");
                }
            }
        }
    }
}

/// The share of `req` for the tablet of `c` (empty at first, with `req`'s snapshot and lock
/// owner).
fn entry<'a>(
    parts: &'a mut BTreeMap<u64, (Arc<Cached>, WriteRequest)>,
    c: &Arc<Cached>,
    req: &WriteRequest,
) -> &'a mut WriteRequest {
    &mut parts
        .entry(c.desc.tablet_id)
        .or_insert_with(|| {
            (
                c.clone(),
                WriteRequest {
                    read_ts: req.read_ts,
                    lock_owner: req.lock_owner.clone(),
                    ..Default::default()
                },
            )
        })
        .1
}

pub(crate) fn overlap(a: &RangeDescriptor, b: &RangeDescriptor) -> bool {
    let a_before_b = !a.end_key.is_empty() && a.end_key <= b.start_key;
    let b_before_a = !b.end_key.is_empty() && b.end_key <= a.start_key;
    !a_before_b && !b_before_a
}

/// The meta records among `recorded` (those of `range::meta_overlap_span(desc)`) that
/// `desc`'s record makes stale: older ranges ending inside it. `None` when `desc` is stale
/// itself: a record as new or newer already covers some of its keys.
fn stale_meta_records(desc: &RangeDescriptor, recorded: &[KvPair]) -> Result<Option<Vec<Vec<u8>>>> {
    let own = range::meta_key(&desc.end_key);
    let mut stale = Vec::new();
    for (key, value) in recorded {
        let r = range::decode_meta(value)?;
        // Every range descends from the ones it replaced, with a larger generation. Where
        // this one ends, a record of another tablet at the same generation is older (the
        // range it split from); inside, nothing is replaced unless provably older.
        let newer = if *key == own {
            r.generation > desc.generation
                || (r.generation == desc.generation && r.tablet_id == desc.tablet_id)
        } else {
            r.generation >= desc.generation
        };
        if newer {
            return Ok(None);
        }
        if *key != own {
            stale.push(key.clone());
        }
    }
    Ok(Some(stale))
}

/// A counter's value (`first` when it was never written).
fn counter(value: Option<Vec<u8>>, first: u64, what: &str) -> Result<u64> {
    match value {
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Internal(format!("corrupt {what} counter"))),
        None => Ok(first),
    }
}

/// A record of a node that joined after `init`.
fn decode_member(value: &[u8]) -> Result<pb::ClusterMember> {
    pb::ClusterMember::decode(value)
        .map_err(|e| Error::Internal(format!("undecodable node record: {e}")))
}

/// Whether `desc` reaches `end` (empty: the end of the keyspace).
fn past_end(desc: &RangeDescriptor, end: &[u8]) -> bool {
    desc.end_key.is_empty() || (!end.is_empty() && desc.end_key.as_slice() >= end)
}

fn is_meta_lag(e: &Error) -> bool {
    matches!(e, Error::Unavailable { reason, .. } if reason.starts_with("the meta records"))
}

#[async_trait]
impl KvClient for RangeClient {
    async fn read_ts(&self) -> Result<Timestamp> {
        Ok(self.clock.now()?.latest)
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        self.with_range(key, |c| async move { c.router.get_seen(key, ts).await })
            .await
    }

    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        self.retrying(|| async {
            let mut groups: BTreeMap<u64, (Arc<Cached>, Vec<usize>)> = BTreeMap::new();
            for (i, k) in keys.iter().enumerate() {
                let c = self.lookup(k).await?;
                groups
                    .entry(c.desc.tablet_id)
                    .or_insert_with(|| (c.clone(), Vec::new()))
                    .1
                    .push(i);
            }
            let mut out = vec![None; keys.len()];
            let mut seen = Timestamp::ZERO;
            for (c, idx) in groups.into_values() {
                let ks: Vec<Vec<u8>> = idx.iter().map(|&i| keys[i].clone()).collect();
                let (values, at) = c.router.get_many_seen(&ks, ts).await?;
                seen = seen.max(at);
                for (i, v) in idx.into_iter().zip(values) {
                    out[i] = v;
                }
            }
            Ok((out, seen))
        })
        .await
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        let mut out: Vec<KvPair> = Vec::new();
        let mut seen = Timestamp::ZERO;
        let mut cur = start.to_vec();
        loop {
            let remaining = limit.map(|l| l - out.len());
            let ((rows, at), desc) = self
                .with_range(&cur, |c| {
                    let cur = cur.clone();
                    async move {
                        let Some((lo, hi)) = range::clip(&c.desc, &cur, end) else {
                            return Ok(((Vec::new(), Timestamp::ZERO), c.desc.clone()));
                        };
                        let read = c.router.scan_seen(&lo, &hi, ts, remaining).await?;
                        Ok((read, c.desc.clone()))
                    }
                })
                .await?;
            out.extend(rows);
            seen = seen.max(at);
            if limit.is_some_and(|l| out.len() >= l) || past_end(&desc, end) {
                return Ok((out, seen));
            }
            cur = desc.end_key;
        }
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        if share_bytes(&req) as u64 > self.txn_piece_bytes() {
            return self.commit_large(&req).await;
        }
        self.retrying(|| async {
            let parts = self.partition(&req).await?;
            let writers: Vec<usize> = (0..parts.len())
                .filter(|&i| !parts[i].1.mutations.is_empty() || !parts[i].1.conditions.is_empty())
                .collect();
            match (parts.as_slice(), writers.as_slice(), req.read_ts) {
                ([], _, _) => Ok(self.clock.now()?.latest),
                ([(c, w)], _, _) => c.router.write(w.clone()).await,
                (_, [writer], Some(read_ts)) => {
                    self.commit_with_refresh(&parts, *writer, read_ts).await
                }
                _ => {
                    let anchor = first_key(&req);
                    self.commit_across(&parts, &anchor).await
                }
            }
        })
        .await
    }

    async fn split_at(&self, key: &[u8]) -> Result<()> {
        RangeClient::split_at_sticky(self, key).await.map(|_| ())
    }

    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &LockOwner,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let mut moved: Option<Timestamp> = None;
        // One key at a time, in order: a tablet that split meanwhile is looked up again.
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        for key in sorted {
            let ts = self
                .with_range(key, |c| async move {
                    c.router
                        .lock(std::slice::from_ref(key), owner, read_ts)
                        .await
                })
                .await?;
            moved = moved.max(ts);
        }
        Ok(moved)
    }

    async fn unlock(&self, keys: &[Vec<u8>], owner: &[u8]) -> Result<()> {
        let mut tablets: BTreeMap<u64, Arc<Cached>> = BTreeMap::new();
        for key in keys {
            let c = self.lookup(key).await?;
            tablets.entry(c.desc.tablet_id).or_insert(c);
        }
        let unlocks = tablets.values().map(|c| c.router.unlock(&[], owner));
        for r in futures::future::join_all(unlocks).await {
            r?;
        }
        Ok(())
    }

    async fn refresh(&self, spans: &[Span], from: Timestamp, to: Timestamp) -> Result<()> {
        let reads = WriteRequest {
            read_ts: Some(from),
            read_spans: spans.to_vec(),
            ..Default::default()
        };
        self.retrying(|| async {
            let parts = self.partition(&reads).await?;
            let refreshes = parts
                .iter()
                .map(|(c, w)| c.router.refresh(&w.read_spans, from, to));
            for r in futures::future::join_all(refreshes).await {
                r?;
            }
            Ok(())
        })
        .await
    }
}

/// The meta record of the range holding `key`, read through `root`.
async fn read_meta_record(root: &Router, key: &[u8]) -> Result<Option<RangeDescriptor>> {
    let (lo, hi) = range::meta_lookup_span(key);
    let ts = root.read_ts().await?;
    let rows = root.scan(&lo, &hi, ts, Some(1)).await?;
    rows.first().map(|(_, v)| range::decode_meta(v)).transpose()
}

/// The transaction's anchor: its first written key (or first key of any kind).
fn first_key(req: &WriteRequest) -> Vec<u8> {
    if let Some(m) = req.mutations.first() {
        return match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key.clone(),
        };
    }
    if let Some(c) = req.conditions.first() {
        return match c {
            Condition::NotExists(k) | Condition::Exists(k) => k.clone(),
        };
    }
    req.read_spans
        .first()
        .map(|s| s.start.clone())
        .unwrap_or_default()
}

/// Something that takes a tablet's 2PC steps: a router (the gateway) or a replica (recovery).
trait TxnSteps {
    async fn step(&self, op: TabletOp) -> Result<OpOutcome>;
}

impl TxnSteps for Router {
    async fn step(&self, op: TabletOp) -> Result<OpOutcome> {
        self.op(op).await
    }
}

impl TxnSteps for Replica {
    async fn step(&self, op: TabletOp) -> Result<OpOutcome> {
        self.op(op).await
    }
}

/// Resolves one share of transaction `txn_id`: a committed share staged in `pieces` pieces is
/// applied one piece per Raft entry (partial resolves), then the final resolve ends it. Every
/// step is idempotent, so an ambiguous one is asked again.
async fn resolve_share(
    tablet: &impl TxnSteps,
    txn_id: &[u8],
    commit_ts: Option<Timestamp>,
    pieces: u32,
) -> Result<()> {
    let steps = if commit_ts.is_some() { pieces } else { 0 };
    // Steps 1..=pieces apply pieces below each number; step 0, last, ends the transaction.
    for n in (1..=steps).chain([0]) {
        let mut tries = 0;
        loop {
            let op = TabletOp::Resolve {
                txn_id: txn_id.to_vec(),
                commit_ts,
                pieces: n,
            };
            match tablet.step(op).await {
                Ok(_) => break,
                Err(Error::Ambiguous { .. }) if tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// About how many bytes a write carries (keys, values, spans), as the piece size counts them.
fn share_bytes(w: &WriteRequest) -> usize {
    const ITEM: usize = 8;
    let mutations: usize = w
        .mutations
        .iter()
        .map(|m| match m {
            Mutation::Put { key, value } => key.len() + value.len() + ITEM,
            Mutation::Delete { key } => key.len() + ITEM,
        })
        .sum();
    let conditions: usize = w
        .conditions
        .iter()
        .map(|c| match c {
            Condition::NotExists(k) | Condition::Exists(k) => k.len() + ITEM,
        })
        .sum();
    let spans: usize = w
        .read_spans
        .iter()
        .map(|s| s.start.len() + s.end.as_ref().map_or(0, Vec::len) + ITEM)
        .sum();
    mutations + conditions + spans
}

/// An item of a write, as a piece carries it.
enum Item<'a> {
    M(&'a Mutation),
    C(&'a Condition),
    S(&'a Span),
}

/// How a write is cut into pieces of about `limit` bytes each (`share_bytes`), every piece
/// with the write's snapshot and lock owner. Mutations, conditions and read spans go in key
/// order, so that each piece covers a narrow stretch of keys (its bounds are what it blocks;
/// see `txn.rs`). Pieces are built one at a time, when sent.
struct Pieces<'a> {
    w: &'a WriteRequest,
    items: Vec<(&'a [u8], Item<'a>)>,
    cuts: Vec<std::ops::Range<usize>>,
    /// Range spans reaching past the piece they start in are cut at the following pieces'
    /// first keys, so that each piece validates the stretch of keys it covers (a scan of a
    /// whole table read by one statement is spread over the pieces): the end each such span
    /// keeps in its own piece, by item index, and the parts every later piece takes.
    clipped: std::collections::HashMap<usize, Vec<u8>>,
    carried: Vec<Vec<Span>>,
}

impl<'a> Pieces<'a> {
    fn new(w: &'a WriteRequest, limit: u64) -> Pieces<'a> {
        let mut items: Vec<(&[u8], Item<'_>)> =
            Vec::with_capacity(w.mutations.len() + w.conditions.len() + w.read_spans.len());
        items.extend(w.mutations.iter().map(|m| match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => (key.as_slice(), Item::M(m)),
        }));
        items.extend(w.conditions.iter().map(|c| match c {
            Condition::NotExists(k) | Condition::Exists(k) => (k.as_slice(), Item::C(c)),
        }));
        items.extend(
            w.read_spans
                .iter()
                .map(|s| (s.start.as_slice(), Item::S(s))),
        );
        items.sort_by(|a, b| a.0.cmp(b.0));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let mut cuts = Vec::new();
        let (mut from, mut bytes) = (0, 0);
        for (i, (key, item)) in items.iter().enumerate() {
            let more = key.len()
                + 8
                + match item {
                    Item::M(Mutation::Put { value, .. }) => value.len(),
                    Item::S(s) => s.end.as_ref().map_or(0, Vec::len),
                    _ => 0,
                };
            if bytes > 0 && bytes + more > limit {
                cuts.push(from..i);
                (from, bytes) = (i, 0);
            }
            bytes += more;
        }
        if bytes > 0 {
            cuts.push(from..items.len());
        }
        // The first key of each piece after the first.
        let firsts: Vec<&[u8]> = cuts.iter().skip(1).map(|c| items[c.start].0).collect();
        let mut clipped = std::collections::HashMap::new();
        let mut carried = vec![Vec::new(); cuts.len()];
        for (piece, cut) in cuts.iter().enumerate() {
            for idx in cut.clone() {
                let Item::S(span) = &items[idx].1 else {
                    continue;
                };
                let Some(end) = &span.end else { continue };
                let mut from = span.start.as_slice();
                for (next, first) in firsts.iter().enumerate().skip(piece) {
                    // `next + 1` is the piece starting at `first`.
                    if *first >= end.as_slice() {
                        break;
                    }
                    if *first <= from {
                        continue;
                    }
                    if from == span.start.as_slice() {
                        clipped.insert(idx, first.to_vec());
                    } else {
                        carried[next].push(Span {
                            start: from.to_vec(),
                            end: Some(first.to_vec()),
                        });
                    }
                    from = first;
                }
                if from != span.start.as_slice() {
                    let last = firsts
                        .iter()
                        .rposition(|f| *f == from)
                        .map_or(piece, |i| i + 1);
                    carried[last].push(Span {
                        start: from.to_vec(),
                        end: Some(end.clone()),
                    });
                }
            }
        }
        Pieces {
            w,
            items,
            cuts,
            clipped,
            carried,
        }
    }

    fn len(&self) -> usize {
        self.cuts.len()
    }

    /// Piece `i`.
    fn piece(&self, i: usize) -> WriteRequest {
        let mut piece = WriteRequest {
            read_ts: self.w.read_ts,
            lock_owner: self.w.lock_owner.clone(),
            ..Default::default()
        };
        for idx in self.cuts[i].clone() {
            match &self.items[idx].1 {
                Item::M(m) => piece.mutations.push((*m).clone()),
                Item::C(c) => piece.conditions.push((*c).clone()),
                Item::S(s) => piece.read_spans.push(match self.clipped.get(&idx) {
                    Some(end) => Span {
                        start: s.start.clone(),
                        end: Some(end.clone()),
                    },
                    None => (*s).clone(),
                }),
            }
        }
        piece.read_spans.extend(self.carried[i].iter().cloned());
        piece
    }
}

/// One round of range upkeep on `stores` (the stores of this node or process): meta records
/// for changed ranges, splits by size and by load, and merges of small, cold neighbours. Runs
/// on leaders only; everything it does is idempotent.
pub async fn maintain(stores: &[Arc<Store>], client: &RangeClient, settings: &RangeSettings) {
    for store in stores {
        let neighbours = if settings.merge_bytes > 0 {
            crate::merge::by_start_key(store)
        } else {
            Default::default()
        };
        for replica in store.replicas() {
            if !replica.is_leader() {
                continue;
            }
            if replica.take_meta_dirty() {
                // After a split, the halves' records are written together.
                let mut descs = vec![replica.descriptor()];
                descs.extend(replica.split_sibling());
                if let Err(e) = client.update_meta(&descs).await {
                    tracing::debug!(tablet = replica.tablet_id(), error = %e, "meta update failed");
                    replica.set_meta_dirty();
                }
            }
            if replica.approx_bytes() > settings.split_bytes {
                if replica.prepared_count() == 0 {
                    match client.split_by_size(&replica).await {
                        Ok(_) => {}
                        // Transactions were prepared meanwhile; a later round tries again.
                        Err(e @ Error::Refused { .. }) => tracing::debug!(
                            tablet = replica.tablet_id(), error = %e, "size split refused"),
                        Err(e) => tracing::warn!(
                            tablet = replica.tablet_id(), error = %e, "size split failed"),
                    }
                }
                continue;
            }
            if crate::load::maybe_split(&replica, client, settings).await {
                continue;
            }
            match crate::merge::maybe_merge(&replica, &neighbours, client, settings).await {
                Ok(()) => {}
                // Nothing happened: the right tablet is busy (its leader is elsewhere) or the
                // plan is stale. The next round plans again.
                Err(e @ Error::Refused { .. }) => {
                    tracing::debug!(tablet = replica.tablet_id(), error = %e, "merge refused")
                }
                Err(e) => tracing::info!(tablet = replica.tablet_id(), error = %e,
                    "merge with the right neighbour failed; will retry"),
            }
        }
    }
}

/// One round of recovery on `stores`: every transaction prepared at a leader for
/// `settings.recovery_ticks` is settled by its coordinator, and every merge whose right tablet
/// stayed frozen is settled (`merge.rs`). It runs in a loop of its own, apart from
/// [`maintain`], because reads of a tablet (a meta update's, say) wait for the transactions
/// prepared there, which only recovery may settle.
pub async fn recover_prepared(
    stores: &[Arc<Store>],
    client: &RangeClient,
    settings: &RangeSettings,
) {
    for store in stores {
        for replica in store.replicas() {
            if !replica.is_leader() {
                continue;
            }
            for (txn_id, anchor) in replica.stale_prepared(settings.recovery_ticks) {
                if let Err(e) = client.recover(&replica, &txn_id, &anchor).await {
                    tracing::debug!(tablet = replica.tablet_id(), error = %e,
                        "recovery of a prepared transaction failed; will retry");
                }
            }
        }
    }
    crate::merge::settle_stale_freezes(stores, client).await;
}

/// Runs `round` every `period` (the first at once) until the task is aborted; a slow round
/// delays the next.
fn repeat<F, Fut>(period: Duration, round: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            round().await;
        }
    })
}

/// Runs [`maintain`] and [`recover_prepared`] every `settings.interval`, each in its own loop,
/// removed-replica collection every five intervals, and node liveness and the placement
/// driver (see `placement.rs`) in a fourth loop, until the returned tasks are aborted.
pub fn spawn_upkeep(
    stores: Vec<Arc<Store>>,
    client: Arc<RangeClient>,
    settings: RangeSettings,
) -> [tokio::task::JoinHandle<()>; 4] {
    let every = settings.interval;
    let upkeep = {
        let (stores, client, settings) = (stores.clone(), client.clone(), settings.clone());
        repeat(every, move || {
            let (stores, client, settings) = (stores.clone(), client.clone(), settings.clone());
            async move { maintain(&stores, &client, &settings).await }
        })
    };
    let recovery = {
        let (stores, client, settings) = (stores.clone(), client.clone(), settings.clone());
        repeat(every, move || {
            let (stores, client, settings) = (stores.clone(), client.clone(), settings.clone());
            async move { recover_prepared(&stores, &client, &settings).await }
        })
    };
    let collection = {
        let (stores, client) = (stores.clone(), client.clone());
        repeat(every * 5, move || {
            let (stores, client) = (stores.clone(), client.clone());
            async move { crate::placement::collect_removed(&stores, &client).await }
        })
    };
    let placement = if settings.placement {
        let memory = Arc::new(crate::placement::Memory::default());
        repeat(settings.liveness_ttl / 3, move || {
            let (stores, client, settings) = (stores.clone(), client.clone(), settings.clone());
            let memory = memory.clone();
            async move {
                crate::placement::heartbeat(&stores, &client, &settings).await;
                crate::placement::place(&stores, &client, &settings, &memory).await;
                if settings.balance_leaders {
                    crate::placement::balance_leaders(&stores, &client, &settings).await;
                }
            }
        })
    } else {
        tokio::spawn(async {})
    };
    [upkeep, recovery, collection, placement]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: &str, end: Option<&str>) -> Span {
        Span {
            start: start.as_bytes().to_vec(),
            end: end.map(|e| e.as_bytes().to_vec()),
        }
    }

    #[test]
    fn pieces_carry_everything_in_key_order_and_spread_range_reads() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
        let w = WriteRequest {
            read_ts: Some(Timestamp::from_nanos(7)),
            read_spans: vec![span("k00", Some("k99")), span("k05", None)],
            conditions: vec![Condition::NotExists(b"k10".to_vec())],
            mutations: keys
                .iter()
                .map(|k| Mutation::Put {
                    key: k.as_bytes().to_vec(),
                    value: vec![b'v'; 20],
                })
                .collect(),
            lock_owner: None,
        };
        let pieces = Pieces::new(&w, 200);
        assert!(pieces.len() > 4, "{}", pieces.len());
        let all: Vec<WriteRequest> = (0..pieces.len()).map(|i| pieces.piece(i)).collect();
        // Every mutation and condition once, in order, each piece with the snapshot.
        let muts: Vec<&Mutation> = all.iter().flat_map(|p| &p.mutations).collect();
        assert_eq!(muts, w.mutations.iter().collect::<Vec<_>>());
        assert_eq!(all.iter().map(|p| p.conditions.len()).sum::<usize>(), 1);
        assert!(all.iter().all(|p| p.read_ts == w.read_ts));
        // The range read is cut where pieces start: its parts tile it, each in the piece
        // whose keys it covers.
        let mut parts: Vec<Span> = all
            .iter()
            .flat_map(|p| p.read_spans.iter().filter(|s| s.end.is_some()).cloned())
            .collect();
        parts.sort_by(|a, b| a.start.cmp(&b.start));
        assert_eq!(parts.len(), pieces.len());
        assert_eq!(parts[0].start, b"k00");
        assert_eq!(parts.last().unwrap().end.as_deref(), Some(&b"k99"[..]));
        for pair in parts.windows(2) {
            assert_eq!(pair[0].end.as_ref(), Some(&pair[1].start));
        }
        for p in &all {
            let first = match &p.mutations[0] {
                Mutation::Put { key, .. } | Mutation::Delete { key } => key.clone(),
            };
            let range = p.read_spans.iter().find(|s| s.end.is_some()).unwrap();
            assert!(range.start <= first, "{range:?}");
        }
        // The point read stays whole.
        assert_eq!(
            all.iter()
                .flat_map(|p| &p.read_spans)
                .filter(|s| s.end.is_none())
                .count(),
            1
        );
    }
}
