//! One replica of a tablet: a raft-rs `RawNode` driven by its own task.
//!
//! ```text
//!   callers ──Write/ReadTs──▶ mailbox ──▶ Driver (one task) ──▶ RawNode ──Ready──▶ persist log
//!   Transport ──Raft msg──▶ mailbox        │  ticks                              apply to MVCC
//!                                          └──────────────▶ Transport (messages to peers)
//! ```
//!
//! Writes are proposed only by the leader, which assigns each one its commit timestamp
//! ([`TsOracle`]) before proposing; every replica applies committed writes to its MVCC engine
//! at that timestamp. The proposer answers its caller after the entry is applied AND
//! `TT.after(commit_ts)` holds (commit wait). Reads obtain a timestamp from the leader, which
//! confirms its leadership with Raft's ReadIndex and waits until every write at or below the
//! timestamp is applied; afterwards the snapshot at that timestamp never changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use meridian_clock::{Timestamp, TrueTime, TtInterval};
use meridian_proto::v1 as pb;
use meridian_storage::{Durability, KvEngine, Mvcc, RaftLogStore};
use protobuf::Message as _;
use raft::prelude::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, RawNode, Ready,
};
use raft::{StateRole, Storage};
use tokio::sync::{mpsc, oneshot};

use crate::apply::ApplyBatch;
use crate::command;
use crate::kv::WriteRequest;
use crate::lease::LeaseState;
use crate::load::LoadTracker;
use crate::local;
use crate::locks::{LockOwner, LockTable};
use crate::logger::raft_logger;
use crate::logsync::LogSync;
use crate::membership::{self, ReplicaChange};
use crate::merge::{Activity, Freeze};
use crate::range::{self, RangeDescriptor};
use crate::transport::Transport;
use crate::tsoracle::TsOracle;
use crate::txn::{self, OpOutcome, Prepared, PreparedSet, TabletOp};
use crate::{Error, Result};

mod ranges;

/// How a replica is set up.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The tablet (Raft group) id.
    pub tablet_id: u64,
    /// This replica's id, unique within the group.
    pub replica_id: u64,
    /// The group's voters when it is created for the first time (ignored on restart).
    pub initial_voters: Vec<u64>,
    /// Length of one Raft tick.
    pub tick_interval: Duration,
    /// Ticks without a leader before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// The largest clock uncertainty any node may have (`TrueTimeConfig::max_epsilon`); a new
    /// leader starts its timestamps `2 × max_epsilon` above its clock (see `tsoracle`).
    pub max_clock_epsilon: Duration,
    /// How long a caller waits for a proposal or read before giving up.
    pub request_timeout: Duration,
    /// The range of a replica created for the first time (default: the whole keyspace, with
    /// `initial_voters` as replicas). A restarted replica uses the range it stored.
    pub range: Option<RangeDescriptor>,
    /// A tablet created by a split assigns timestamps above this (the split's timestamp).
    pub min_ts: Timestamp,
    /// Whether the group stops ticking while idle (see `Driver::maybe_quiesce`).
    pub quiesce: bool,
    /// Ticks between the closed timestamps an active leader publishes (0: none); followers
    /// serve reads up to the last one they applied.
    pub close_ticks: u64,
    /// Start without a range or configuration, to be filled by a snapshot from the group's
    /// leader (a replica being added; see `membership.rs`). Ignored when the replica has a
    /// stored range.
    pub empty: bool,
    /// Shared by every replica of a node: while set, a leader hands its group to another voter
    /// (the node is draining).
    pub draining: Arc<AtomicBool>,
    /// Log compaction: once the Raft log holds more than this many entries, or more than
    /// `raft_log_max_bytes`, the replica truncates it below its applied index (0: no limit of
    /// this kind; both 0: the log is never compacted). See `Driver::maybe_compact_log`.
    pub raft_log_max_entries: u64,
    /// See `raft_log_max_entries`.
    pub raft_log_max_bytes: u64,
    /// Group commit of the log writes of every replica on the same engine (a store sets one
    /// for all its replicas); a replica whose engine it does not sync gets its own.
    pub log_sync: Option<Arc<LogSync>>,
}

/// A leader keeps the entries that its live followers still need unless its log grows past
/// this many times a compaction threshold; then it compacts anyway, and the followers left
/// behind catch up by snapshot.
pub const RAFT_LOG_HARD_CAP_FACTOR: u64 = 4;

/// What a replica asks of whoever hosts it.
pub trait ReplicaHooks: Send + Sync + 'static {
    /// A split applied here created tablet `right`; its replica on this node should start
    /// (and campaign at once when `campaign`: the splitting replica led). `split_ts` is the
    /// split's timestamp.
    fn split(&self, right: RangeDescriptor, split_ts: Timestamp, campaign: bool);

    /// The replica of `tablet` left its group and deleted its state; its task has ended.
    fn removed(&self, _tablet: u64) {}

    /// A merge applied here took over tablet `right`: its replica on this node retires (its
    /// data stays: it is the merged tablet's now).
    fn merged(&self, _right: u64) {}

    /// A snapshot replaced this replica's range `old` with `new` (a different one: the
    /// replica missed splits, merges or membership changes that its leader's log no longer
    /// holds). Replicas of other tablets that `new` took over by a merge retire.
    fn snapshot_installed(&self, _old: &RangeDescriptor, _new: &RangeDescriptor) {}
}

/// Hooks that do nothing (a single tablet that never splits).
pub struct NoHooks;

impl ReplicaHooks for NoHooks {
    fn split(&self, right: RangeDescriptor, _split_ts: Timestamp, _campaign: bool) {
        tracing::warn!(
            tablet = right.tablet_id,
            "a split created a tablet nobody hosts"
        );
    }
}

impl ReplicaConfig {
    /// A single-voter group with production tick settings.
    pub fn single(tablet_id: u64, max_clock_epsilon: Duration) -> Self {
        ReplicaConfig {
            tablet_id,
            replica_id: 1,
            initial_voters: vec![1],
            tick_interval: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_clock_epsilon,
            request_timeout: Duration::from_secs(10),
            range: None,
            min_ts: Timestamp::ZERO,
            quiesce: true,
            close_ticks: 10,
            empty: false,
            draining: Arc::new(AtomicBool::new(false)),
            raft_log_max_entries: 10_000,
            raft_log_max_bytes: 16 << 20,
            log_sync: None,
        }
    }
}

/// A snapshot of a replica's Raft state, for status displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The leader this replica knows of (0: none).
    pub leader_id: u64,
    /// Current term.
    pub term: u64,
    /// Highest committed log index known.
    pub commit_index: u64,
    /// Highest log index applied to the MVCC engine.
    pub applied_index: u64,
    /// Whether this replica is the leader.
    pub is_leader: bool,
    /// While leading: when its current lease ends (see `lease.rs`).
    pub lease_end: Option<Timestamp>,
    /// While leading: `TT.now().earliest` when it became leader.
    pub leader_since: Option<Timestamp>,
    /// The group is idle and this replica stopped ticking.
    pub quiesced: bool,
    /// The first index still in this replica's Raft log (compaction moves it forward).
    pub log_first_index: u64,
    /// Entries in this replica's Raft log, and the bytes they take.
    pub log_entries: u64,
    /// See `log_entries`.
    pub log_bytes: u64,
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum Msg {
    Write {
        req: WriteRequest,
        /// Commit at a timestamp within this window (refused when the leader is past it).
        at: Option<(Timestamp, Timestamp)>,
        reply: Reply<Timestamp>,
    },
    ReadTs {
        at: Option<Timestamp>,
        /// What the read touches, if known: it then waits only for transactions prepared on
        /// those keys (see `Driver::after_ready`, where waiting reads are answered).
        reads: Option<Vec<crate::Span>>,
        reply: Reply<Timestamp>,
    },
    Op {
        op: TabletOp,
        reply: Reply<OpOutcome>,
    },
    Gc {
        horizon: Timestamp,
        reply: Reply<()>,
    },
    Raft(Box<Message>),
    Campaign,
    /// To the given voter, or (`None`) to the most up-to-date one.
    TransferLeadership(Option<u64>),
    /// Leave: delete this replica's state and stop (it is no longer a member).
    Destroy,
    /// Leave after a merge: delete this replica's records and log, keep its data (the merged
    /// tablet's now), and stop.
    Retire,
    Stop,
}

struct Shared {
    tablet_id: u64,
    replica_id: u64,
    mvcc: Mvcc,
    /// Every write with a timestamp at or below this is applied here, and no later write
    /// will get one: reads at or below it may be served from this replica's engine.
    safe_ts: AtomicU64,
    status: Mutex<ReplicaStatus>,
    /// The keys this replica holds (changes when a split applies).
    desc: RwLock<RangeDescriptor>,
    /// Transactions prepared here.
    prepared: Mutex<PreparedSet>,
    /// Raft ticks since the replica started.
    ticks: AtomicU64,
    /// Approximate bytes written to the tablet (the split threshold's measure).
    approx_bytes: AtomicU64,
    /// The range changed (or the replica just started) and the meta records may not show it.
    meta_dirty: AtomicBool,
    /// Whether this replica leads (as of its last Ready), readable without a lock.
    leader: AtomicBool,
    /// The upper half of this replica's last split: its meta record is written with this one's.
    split_sibling: Mutex<Option<RangeDescriptor>>,
    /// Whether the replica has a range: false for an empty replica until its first snapshot.
    initialized: AtomicBool,
    /// Row locks of transactions (used while this replica leads; see `locks.rs`).
    locks: LockTable,
    /// The tablet is frozen for a merge into its left neighbour (see `merge.rs`).
    freeze: Mutex<Option<Freeze>>,
    /// Recent writes, as the merge planner samples them.
    activity: Mutex<Activity>,
    /// The requests this replica served while leading (see `load.rs`).
    load: LoadTracker,
    /// The driver's `applied_max_ts` as of its last apply (snapshots carry it).
    max_ts: AtomicU64,
}

impl Shared {
    fn descriptor(&self) -> RangeDescriptor {
        self.desc.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `Ok` when the replica's current range satisfies `holds`; otherwise `RangeMismatch`
    /// with that range.
    fn check_range(&self, holds: impl FnOnce(&RangeDescriptor) -> bool) -> Result<()> {
        if !self.initialized.load(Ordering::Acquire) {
            return Err(Error::Unavailable {
                tablet: self.tablet_id,
                reason: "the replica is new and has not received its snapshot yet".into(),
            });
        }
        let desc = self.desc.read().unwrap_or_else(|e| e.into_inner());
        if holds(&desc) {
            Ok(())
        } else {
            Err(Error::RangeMismatch {
                tablet: self.tablet_id,
                range: Box::new(desc.clone()),
            })
        }
    }

    fn frozen(&self) -> Option<Freeze> {
        self.freeze
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `RangeMerging` while the tablet is frozen for a merge.
    fn frozen_error(&self) -> Option<Error> {
        self.freeze
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
            .then_some(Error::RangeMerging {
                tablet: self.tablet_id,
            })
    }
}

/// The prepared transactions of `records`, each registered with `oracle` (reads at or above
/// its timestamp wait).
fn prepared_set(records: Vec<pb::PreparedTxn>, oracle: &mut TsOracle, tick: u64) -> PreparedSet {
    let mut prepared = PreparedSet::default();
    for p in records {
        let (txn_id, p) = Prepared::from_record(p, tick);
        if !p.staging {
            oracle.add_prepared(p.ts);
        }
        prepared.insert(txn_id, p);
    }
    prepared
}

/// Builds the snapshots the leader sends new replicas and followers its log compaction left
/// behind: the applied state, read in the driver task (raft-rs asks from inside `step`), so
/// nothing applies meanwhile.
fn snapshot_builder(shared: std::sync::Weak<Shared>) -> meridian_storage::raftlog::SnapshotBuilder {
    Arc::new(move |store: &RaftLogStore| {
        let Some(shared) = shared.upgrade() else {
            return Err(meridian_storage::Error::Corrupt {
                what: "snapshot of a stopped replica".into(),
            });
        };
        let applied = shared.mvcc.applied_index(shared.tablet_id)?;
        let data = membership::build_snapshot(
            shared.mvcc.engine().as_ref(),
            &shared.descriptor(),
            Timestamp::from_nanos(shared.safe_ts.load(Ordering::Acquire)),
            Timestamp::from_nanos(shared.max_ts.load(Ordering::Acquire)),
        )?;
        let mut snap = raft::prelude::Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = applied;
        meta.term = store.term_at(applied)?;
        meta.set_conf_state(store.conf_state());
        crate::metrics::SNAPSHOTS_SENT.inc();
        Ok(snap)
    })
}

/// A handle to a running replica. Cloning is cheap; all clones talk to the same task.
#[derive(Clone)]
pub struct Replica {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    request_timeout: Duration,
    tick_interval: Duration,
}

impl Replica {
    /// Opens (or creates) the replica's state in `engine` and starts its driver task.
    pub fn start(
        config: ReplicaConfig,
        engine: Arc<dyn KvEngine>,
        clock: Arc<TrueTime>,
        transport: Arc<dyn Transport>,
    ) -> Result<(Replica, tokio::task::JoinHandle<()>)> {
        Self::start_with_hooks(config, engine, clock, transport, Arc::new(NoHooks))
    }

    /// [`Replica::start`], with `hooks` told about splits.
    pub fn start_with_hooks(
        config: ReplicaConfig,
        engine: Arc<dyn KvEngine>,
        clock: Arc<TrueTime>,
        transport: Arc<dyn Transport>,
        hooks: Arc<dyn ReplicaHooks>,
    ) -> Result<(Replica, tokio::task::JoinHandle<()>)> {
        let store = RaftLogStore::open(engine.clone(), config.tablet_id)?;
        let log_sync = match &config.log_sync {
            Some(sync) if sync.is_for(&engine) => sync.clone(),
            _ => LogSync::new(engine.clone()),
        };
        let stored = local::load_descriptor(engine.as_ref(), config.tablet_id)?;
        let (desc, initialized) = match stored {
            Some(desc) => (desc, true),
            None if config.empty => (
                RangeDescriptor {
                    tablet_id: config.tablet_id,
                    ..Default::default()
                },
                false,
            ),
            None => {
                let desc = config.range.clone().unwrap_or_else(|| {
                    range::whole_keyspace(config.tablet_id, config.initial_voters.clone())
                });
                (desc, true)
            }
        };
        if initialized && !store.is_initialized() {
            // A new group (bootstrapped, or made by a split whose apply stored the range): its
            // log starts after RAFT_INIT_INDEX, and the range, with the data already in the
            // engine, is the state at that index.
            let mut batch = meridian_storage::WriteBatch::new();
            local::put_descriptor(&mut batch, &desc);
            meridian_storage::mvcc::put_applied_index(
                &mut batch,
                config.tablet_id,
                membership::RAFT_INIT_INDEX,
            );
            let voters = if desc.replicas.is_empty() {
                config.initial_voters.clone()
            } else {
                desc.replicas
                    .iter()
                    .copied()
                    .filter(|r| !desc.learners.contains(r))
                    .collect()
            };
            store.initialize_at(
                ConfState {
                    voters,
                    learners: desc.learners.clone(),
                    ..Default::default()
                },
                membership::RAFT_INIT_INDEX,
                membership::RAFT_INIT_INDEX,
                batch,
            )?;
        }
        let mut oracle = TsOracle::default();
        let prepared = prepared_set(
            local::load_prepared(engine.as_ref(), config.tablet_id)?,
            &mut oracle,
            0,
        );
        let approx_bytes = local::load_size(engine.as_ref(), config.tablet_id)?;
        let freeze = local::load_freeze(engine.as_ref(), config.tablet_id)?
            .map(|record| Freeze::from_record(record, 0));
        let mvcc = Mvcc::new(engine);
        let applied = mvcc.applied_index(config.tablet_id)?;
        let raft_state = store.initial_state()?;
        if raft_state.hard_state.commit < applied {
            // The apply batch reached the journal after a commit index it implies was lost:
            // entries that were applied were certainly committed.
            let mut hs = raft_state.hard_state.clone();
            hs.commit = applied;
            store.persist(&[], Some(&hs), Durability::Sync)?;
        }
        let raft_config = raft::Config {
            id: config.replica_id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            // One Ready applies at most this much (at least one entry): a replica catching up
            // on many large entries (the pieces of a large transaction) applies them over
            // several turns of its loop, ticking and answering in between.
            max_committed_size_per_ready: MAX_APPLY_BYTES_PER_READY,
            ..Default::default()
        };
        raft_config.validate()?;
        let logger = raft_logger(config.tablet_id, config.replica_id);
        let raw = RawNode::new(&raft_config, store.clone(), &logger)?;
        let single_voter = raw.raft.prs().conf().voters().ids().len() == 1;
        let shared = Arc::new(Shared {
            tablet_id: config.tablet_id,
            replica_id: config.replica_id,
            mvcc,
            // A frozen tablet's snapshot at its freeze timestamp is final (see `apply_freeze`).
            safe_ts: AtomicU64::new(freeze.as_ref().map_or(0, |f| f.ts.as_nanos())),
            status: Mutex::new(ReplicaStatus {
                applied_index: applied,
                ..Default::default()
            }),
            desc: RwLock::new(desc),
            prepared: Mutex::new(prepared),
            ticks: AtomicU64::new(0),
            approx_bytes: AtomicU64::new(approx_bytes),
            // A tablet made by a split is recorded with its lower half, by that half's leader.
            meta_dirty: AtomicBool::new(config.min_ts == Timestamp::ZERO && initialized),
            leader: AtomicBool::new(false),
            split_sibling: Mutex::new(None),
            initialized: AtomicBool::new(initialized),
            locks: LockTable::new(clock.clone(), config.request_timeout / 4),
            freeze: Mutex::new(freeze),
            activity: Mutex::new(Activity::default()),
            load: LoadTracker::new(config.tablet_id ^ config.replica_id.rotate_left(32)),
            max_ts: AtomicU64::new(config.min_ts.as_nanos()),
        });
        store.set_snapshot_builder(snapshot_builder(Arc::downgrade(&shared)));
        let (tx, rx) = mpsc::unbounded_channel();
        let replica = Replica {
            tx,
            shared: shared.clone(),
            request_timeout: config.request_timeout,
            tick_interval: config.tick_interval,
        };
        let lease = LeaseState::new(
            config.tick_interval,
            config.election_ticks,
            clock.config().drift_bound_ppm,
        );
        let driver = Driver {
            raw,
            store,
            shared,
            clock,
            transport,
            tick_interval: config.tick_interval,
            margin: config.max_clock_epsilon * 2,
            oracle,
            hooks,
            proposals: HashMap::new(),
            next_id: 1,
            reads_awaiting_index: HashMap::new(),
            reads_awaiting_term: Vec::new(),
            reads_awaiting_apply: Vec::new(),
            applied_max_ts: config.min_ts,
            was_leader: false,
            lease,
            writes_awaiting_lease: Vec::new(),
            ticks: 0,
            heartbeat_ticks: config.heartbeat_ticks.max(1) as u64,
            election_ticks: config.election_ticks.max(1) as u64,
            quiesce: config.quiesce,
            quiesced: false,
            stay_quiesced: false,
            idle_ticks: 0,
            last_heard: HashMap::new(),
            close_ticks: config.close_ticks,
            last_close_index: 0,
            leader_since: None,
            removed: false,
            merged: false,
            freezing: false,
            term_start: 0,
            snapshots_sent: HashMap::new(),
            learners_added: HashMap::new(),
            draining: config.draining.clone(),
            log_max_entries: config.raft_log_max_entries,
            log_max_bytes: config.raft_log_max_bytes,
            log_sync,
            prepared_owners: HashMap::new(),
            turn: TurnStats::default(),
        };
        let handle = tokio::spawn(driver.run(rx));
        if single_voter {
            // A lone voter need not wait out an election timeout to lead.
            let _ = replica.tx.send(Msg::Campaign);
        }
        Ok((replica, handle))
    }

    /// The tablet this replica belongs to.
    pub fn tablet_id(&self) -> u64 {
        self.shared.tablet_id
    }

    /// This replica's id within its group.
    pub fn replica_id(&self) -> u64 {
        self.shared.replica_id
    }

    /// The replica's MVCC engine (what it has applied).
    pub fn mvcc(&self) -> &Mvcc {
        &self.shared.mvcc
    }

    /// Reads at or below this timestamp may be served from [`Replica::mvcc`].
    pub fn safe_ts(&self) -> Timestamp {
        Timestamp::from_nanos(self.shared.safe_ts.load(Ordering::Acquire))
    }

    /// The replica's current Raft status.
    pub fn status(&self) -> ReplicaStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands a Raft message from a peer to this replica.
    pub fn deliver(&self, msg: Message) {
        let _ = self.tx.send(Msg::Raft(Box::new(msg)));
    }

    /// Proposes a write (only the leader accepts) and returns its commit timestamp once it is
    /// applied and commit wait is over.
    pub async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.write_maybe_at(req, None).await
    }

    /// Proposes a write to commit at a timestamp in `[lo, hi]`: the leader picks the one it
    /// would pick anyway, raised to `lo`, and refuses (`CommitTsTooLow`, without effect) when
    /// that is above `hi` or `lo` is further ahead of its clock than the uncertainty bound
    /// allows. A gateway that validated the transaction's reads in other tablets up to `hi`
    /// commits it this way.
    pub async fn write_at(
        &self,
        req: WriteRequest,
        lo: Timestamp,
        hi: Timestamp,
    ) -> Result<Timestamp> {
        self.write_maybe_at(req, Some((lo, hi))).await
    }

    async fn write_maybe_at(
        &self,
        req: WriteRequest,
        at: Option<(Timestamp, Timestamp)>,
    ) -> Result<Timestamp> {
        let owner = req.lock_owner.as_ref().map(|o| o.id.clone());
        self.note_write(&req);
        self.admit(&req).await?;
        let result = self.propose_write(req, at).await;
        if let Some(owner) = owner
            && ends_locks(&result)
        {
            self.shared.locks.release(&owner);
        }
        result
    }

    /// Waits, at the leader, until the engine keeps up with writes (see
    /// [`Replica::wait_for_engine`]) and no other transaction holds a lock on a key `req`
    /// changes (see `locks.rs`); then refuses it with `WriteConflict` if something it read
    /// has changed already. Validation at apply decides; a write refused here is one that
    /// validation would refuse, found out without a Raft write.
    async fn admit(&self, req: &WriteRequest) -> Result<()> {
        if !self.is_leader() {
            // The driver answers NotLeader; locks matter only where the write is proposed.
            return Ok(());
        }
        self.wait_for_engine().await;
        let keys = req.mutations.iter().map(crate::Mutation::key);
        self.shared
            .locks
            .admit_write(keys, req.lock_owner.as_ref())
            .await?;
        let Some(read_ts) = req.read_ts else {
            return Ok(());
        };
        for s in &req.read_spans {
            if span_changed(self.mvcc(), s, read_ts, Timestamp::MAX)? {
                crate::metrics::WRITE_CONFLICTS.inc();
                return Err(Error::WriteConflict { read_ts });
            }
        }
        Ok(())
    }

    /// Write admission: while the engine's flushes or compactions are behind
    /// ([`meridian_storage::WriteBacklog`]), a new write waits here, before it is proposed, in
    /// steps of [`ADMISSION_STEP`] for at most [`ADMISSION_MAX`]. Writers slow down before the
    /// engine halts writes inside the replica loops (which would stall every group of the
    /// store, heartbeats and reads included, until requests time out). The wait is bounded so
    /// that a backlog that does not clear costs each write latency, not availability.
    async fn wait_for_engine(&self) {
        let engine = self.shared.mvcc.engine();
        if !engine.write_backlog().is_behind() {
            return;
        }
        let mut waited = Duration::ZERO;
        while waited < ADMISSION_MAX && engine.write_backlog().is_behind() {
            tokio::time::sleep(ADMISSION_STEP).await;
            waited += ADMISSION_STEP;
        }
        crate::metrics::ADMISSION_WAITS.inc();
        crate::metrics::ADMISSION_WAIT_SECONDS.inc_by(waited.as_secs_f64());
    }

    async fn propose_write(
        &self,
        req: WriteRequest,
        at: Option<(Timestamp, Timestamp)>,
    ) -> Result<Timestamp> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Write { req, at, reply })?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Ambiguous {
                tablet: self.shared.tablet_id,
            }),
            Err(_) => Err(Error::Ambiguous {
                tablet: self.shared.tablet_id,
            }),
        }
    }

    /// A read timestamp from the leader; see [`crate::KvClient::read_ts`]. When it returns,
    /// this replica's engine holds the complete snapshot at that timestamp.
    pub async fn read_ts(&self) -> Result<Timestamp> {
        self.read_ts_for(None).await
    }

    /// [`Replica::read_ts`] for a read of `reads` only: the engine holds the snapshot of
    /// those keys when it returns, not necessarily of the others.
    async fn read_ts_for(&self, reads: Option<Vec<crate::Span>>) -> Result<Timestamp> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::ReadTs {
            at: None,
            reads,
            reply,
        })?;
        self.await_reply(rx).await
    }

    /// Makes the snapshot at `ts` final on this tablet (at the leader): no later write gets a
    /// timestamp at or below it, and every write at or below it is applied here when this
    /// returns. Refused when `ts` is further ahead of the leader's clock than the uncertainty
    /// bound allows.
    pub async fn read_at(&self, ts: Timestamp) -> Result<Timestamp> {
        self.read_at_for(ts, None).await
    }

    /// [`Replica::read_at`] for a read of `reads` only (`None`: of everything). A transaction
    /// prepared here at or below `ts` holds back only the reads of the keys it writes.
    pub(crate) async fn read_at_for(
        &self,
        ts: Timestamp,
        reads: Option<Vec<crate::Span>>,
    ) -> Result<Timestamp> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::ReadTs {
            at: Some(ts),
            reads,
            reply,
        })?;
        self.await_reply(rx).await
    }

    /// Proposes a 2PC step, a split or a merge step (only the leader accepts), or serves a
    /// refresh, a lock request or a wait for an applied index.
    pub async fn op(&self, op: TabletOp) -> Result<OpOutcome> {
        self.note_op(&op);
        if matches!(op, TabletOp::Freeze { .. })
            && self.shared.load.keeps_apart()
            && self.shared.frozen().is_none()
        {
            // Merged, the two tablets could be busy enough to split again (see `load.rs`). A
            // freeze asked again (its answer was lost) is answered as before, whatever the
            // load: its merge is under way.
            return Err(Error::Refused {
                tablet: self.shared.tablet_id,
                reason: "the tablet is busy; it is not merged while its load is high".into(),
            });
        }
        match &op {
            TabletOp::Refresh {
                spans,
                read_ts,
                up_to,
            } => return self.refresh(spans, *read_ts, *up_to).await,
            TabletOp::Lock {
                keys,
                owner,
                read_ts,
            } => return self.lock(keys, owner, *read_ts).await,
            TabletOp::Unlock { owner } => {
                self.shared.locks.release(owner);
                return Ok(OpOutcome::default());
            }
            TabletOp::WaitApplied { index } => return self.wait_applied(*index).await,
            TabletOp::Prepare { write, .. } | TabletOp::Stage { write, .. } => {
                self.admit(write).await?
            }
            TabletOp::Decide {
                write: Some(write), ..
            } => {
                self.note_write(write);
                self.admit(write).await?
            }
            _ => {}
        }
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Op { op, reply })?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(Error::Ambiguous {
                tablet: self.shared.tablet_id,
            }),
        }
    }

    /// At the leader: takes the locks on `keys` for `owner`, then reports whether any of them
    /// changed after `read_ts` (zero: none did; otherwise a timestamp whose snapshot is final
    /// here and holds their newest versions). No Raft write.
    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &LockOwner,
        read_ts: Timestamp,
    ) -> Result<OpOutcome> {
        for k in keys {
            self.check_key(k)?;
        }
        if !self.is_leader() {
            return Err(self.not_leading());
        }
        self.shared.locks.acquire(keys, owner).await?;
        let mut changed = false;
        for k in keys {
            // A split applied while waiting moved the key to another tablet.
            self.check_key(k)?;
            changed |= self
                .mvcc()
                .key_changed_between(k, read_ts, Timestamp::MAX)?;
        }
        if !changed {
            return Ok(OpOutcome::default());
        }
        // A fresh timestamp from the leader: every write of these keys at or below it is
        // applied here when it returns, so their newest versions are visible at it.
        let reads = keys.iter().map(|k| crate::Span::key(k)).collect();
        Ok(OpOutcome::at(self.read_ts_for(Some(reads)).await?))
    }

    /// What this replica measures of its load (see `load.rs`).
    pub(crate) fn load(&self) -> &LoadTracker {
        &self.shared.load
    }

    /// Counts a request served here for the load measure, while leading; `pick` chooses one
    /// key it touched for the sample (see [`LoadTracker::record`]).
    pub(crate) fn note_load<'k>(&self, pick: impl FnOnce(u64) -> Option<&'k [u8]>) {
        if self.is_leader() {
            let origin = crate::follow::gateway().unwrap_or(self.shared.replica_id);
            self.shared.load.record(origin, pick);
        }
    }

    fn note_write(&self, req: &WriteRequest) {
        self.note_load(|r| one_of(&req.mutations, r).map(crate::Mutation::key));
    }

    /// Counts a 2PC step, lock or refresh request for the load measure; merge and membership
    /// steps are upkeep, not load.
    fn note_op(&self, op: &TabletOp) {
        match op {
            TabletOp::Prepare { write, .. } | TabletOp::Stage { write, .. } => {
                self.note_write(write)
            }
            TabletOp::Lock { keys, .. } => self.note_load(|r| one_of(keys, r).map(Vec::as_slice)),
            TabletOp::Refresh { spans, .. } => {
                self.note_load(|r| one_of(spans, r).map(|s| s.start.as_slice()))
            }
            TabletOp::Decide { .. } | TabletOp::Resolve { .. } => self.note_load(|_| None),
            _ => {}
        }
    }

    /// `NotLeader` naming the leader this replica last heard of.
    fn not_leading(&self) -> Error {
        let status = self.status();
        Error::NotLeader {
            tablet: self.shared.tablet_id,
            replica: self.shared.replica_id,
            leader: (status.leader_id != 0).then_some(status.leader_id),
        }
    }

    /// At the leader: whether what a transaction read in `spans` at `read_ts` is still what
    /// it would read at `up_to`. Makes the snapshot at `up_to` final first (no later write gets
    /// a timestamp at or below it), then looks for versions in `(read_ts, up_to]`; none means
    /// the reads hold at any commit timestamp up to `up_to`. No Raft write.
    async fn refresh(
        &self,
        spans: &[crate::Span],
        read_ts: Timestamp,
        up_to: Timestamp,
    ) -> Result<OpOutcome> {
        for s in spans {
            match &s.end {
                None => self.check_key(&s.start)?,
                Some(end) => self.check_span(&s.start, end)?,
            }
        }
        self.read_at_for(up_to, Some(spans.to_vec())).await?;
        for s in spans {
            // A split applied while waiting moved the span to another tablet.
            match &s.end {
                None => self.check_key(&s.start)?,
                Some(end) => self.check_span(&s.start, end)?,
            }
            if span_changed(self.mvcc(), s, read_ts, up_to)? {
                crate::metrics::WRITE_CONFLICTS.inc();
                return Err(Error::WriteConflict { read_ts });
            }
        }
        Ok(OpOutcome::at(up_to))
    }

    /// The keys this replica holds.
    pub fn descriptor(&self) -> RangeDescriptor {
        self.shared.descriptor()
    }

    /// An error unless this replica holds `key`.
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        self.shared.check_range(|d| range::contains(d, key))
    }

    /// An error unless this replica holds every key of `[start, end)`.
    pub fn check_span(&self, start: &[u8], end: &[u8]) -> Result<()> {
        self.shared
            .check_range(|d| range::contains_span(d, start, end))
    }

    /// Approximate bytes written to this tablet.
    pub fn approx_bytes(&self) -> u64 {
        self.shared.approx_bytes.load(Ordering::Relaxed)
    }

    /// How many commit decisions this replica keeps as a coordinator (until every participant
    /// of their transactions resolved and they are forgotten).
    pub fn decision_count(&self) -> Result<usize> {
        Ok(local::load_decisions(self.shared.mvcc.engine().as_ref(), self.shared.tablet_id)?.len())
    }

    /// How many transactions are prepared here.
    pub fn prepared_count(&self) -> usize {
        self.shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Transactions prepared here for at least `ticks` Raft ticks: (id, anchor key). Their
    /// gateway may be gone; recovery asks their coordinator.
    /// A transaction still receiving its pieces (`TabletOp::Stage`) counts as stale only after
    /// ten times as many ticks: its gateway may be busy shipping pieces to other tablets.
    pub fn stale_prepared(&self, ticks: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let now = self.shared.ticks.load(Ordering::Relaxed);
        let Some(cutoff) = now.checked_sub(ticks) else {
            return Vec::new();
        };
        let staging_cutoff = now.saturating_sub(ticks.saturating_mul(10));
        self.shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .older_than(cutoff, staging_cutoff)
    }

    /// How many pieces of transaction `txn_id` are staged here (0: none, or not known here).
    pub fn staged_pieces(&self, txn_id: &[u8]) -> u32 {
        self.shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(txn_id)
            .map_or(0, |p| u32::try_from(p.staged.len()).unwrap_or(u32::MAX))
    }

    /// Whether this replica leads its group (as of its last Raft step; lock-free).
    pub fn is_leader(&self) -> bool {
        self.shared.leader.load(Ordering::Relaxed)
    }

    /// The upper half of the last split this replica applied, if any.
    pub fn split_sibling(&self) -> Option<RangeDescriptor> {
        self.shared
            .split_sibling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes the "meta records may be stale" flag (set at start and by splits).
    pub fn take_meta_dirty(&self) -> bool {
        self.shared.meta_dirty.swap(false, Ordering::AcqRel)
    }

    /// Sets the flag again (a meta update failed).
    pub fn set_meta_dirty(&self) {
        self.shared.meta_dirty.store(true, Ordering::Release);
    }

    /// Replicates a garbage collection of versions no reader at or above `horizon` needs.
    pub async fn gc(&self, horizon: Timestamp) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Gc { horizon, reply })?;
        self.await_reply(rx).await
    }

    /// If this replica leads, hands leadership to its most up-to-date follower (a node
    /// draining before shutdown). It gives up its lease first, so it serves nothing on the
    /// strength of it while the follower takes over.
    pub fn transfer_leadership(&self) {
        let _ = self.tx.send(Msg::TransferLeadership(None));
    }

    /// If this replica leads, hands leadership to the voter `to` (the leader balancing of the
    /// placement driver), giving up its lease first. Nothing happens if `to` is not a voter.
    pub fn transfer_leadership_to(&self, to: u64) {
        let _ = self.tx.send(Msg::TransferLeadership(Some(to)));
    }

    /// Deletes this replica's state and stops it (it is no longer a member of its group).
    pub fn destroy(&self) {
        let _ = self.tx.send(Msg::Destroy);
    }

    /// Whether the replica has a range (false for a new replica until its snapshot arrives).
    pub fn is_initialized(&self) -> bool {
        self.shared.initialized.load(Ordering::Acquire)
    }

    /// Asks this replica to start an election.
    pub fn campaign(&self) {
        let _ = self.tx.send(Msg::Campaign);
    }

    /// Stops the driver task (pending callers get an error).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .send(msg)
            .map_err(|_| self.unavailable("replica stopped"))
    }

    async fn await_reply<T>(&self, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.unavailable("replica stopped")),
            Err(_) => Err(self.unavailable("request timed out")),
        }
    }

    fn unavailable(&self, reason: &str) -> Error {
        Error::Unavailable {
            tablet: self.shared.tablet_id,
            reason: reason.to_string(),
        }
    }
}

/// Item `r` (modulo their number) of `items`, if any.
pub(crate) fn one_of<T>(items: &[T], r: u64) -> Option<&T> {
    let n = items.len() as u64;
    (n > 0).then(|| &items[(r % n) as usize])
}

/// The command's name, for logs.
fn command_name(command: &pb::tablet_command::Command) -> &'static str {
    use pb::tablet_command::Command;
    match command {
        Command::Write(_) => "write",
        Command::Gc(_) => "gc",
        Command::Split(_) => "split",
        Command::Prepare(_) => "prepare",
        Command::Decide(_) => "decide",
        Command::Resolve(r) if r.pieces > 0 => "partial resolve",
        Command::Resolve(_) => "resolve",
        Command::Forget(_) => "forget",
        Command::Close(_) => "close",
        Command::Freeze(_) => "freeze",
        Command::Unfreeze(_) => "unfreeze",
        Command::Merge(_) => "merge",
        Command::AbortMerge(_) => "abort merge",
        Command::Stage(_) => "stage",
    }
}

/// Applies staged piece `seq` of transaction `txn_id` at `ts` and drops its record. Every piece
/// below the count in the transaction's record is staged until applied, so a missing one is
/// corruption.
fn apply_piece(
    engine: &dyn KvEngine,
    batch: &mut ApplyBatch<'_>,
    tablet: u64,
    txn_id: &[u8],
    seq: u32,
    ts: Timestamp,
) -> Result<()> {
    let Some(piece) = local::load_staged(engine, tablet, txn_id, seq)? else {
        return Err(Error::Internal(format!(
            "staged piece {seq} of a transaction at tablet {tablet} is missing"
        )));
    };
    batch.apply_mutations(&piece.mutations, ts)?;
    local::delete_staged(batch.write_batch(), tablet, txn_id, seq);
    Ok(())
}

/// Whether a write with this result ends the use of its transaction's locks at the tablet:
/// it committed, or failed for good. After a conflict the gateway may move the transaction's
/// snapshot and write again on them; it releases them when the transaction ends (or they
/// lapse, see `locks.rs`).
fn ends_locks<T>(result: &Result<T>) -> bool {
    !matches!(result, Err(Error::WriteConflict { .. }))
}

/// Validates transaction `txn_id`'s share `w` as a prepare does: clear of every other
/// transaction prepared or staging here (`WriteConflict` otherwise), its conditions holding and
/// nothing it read changed since its snapshot.
fn validate_share(
    batch: &ApplyBatch<'_>,
    prepared: &PreparedSet,
    txn_id: &[u8],
    w: &pb::WriteCommand,
) -> Result<()> {
    if prepared.conflicts(w, Some(txn_id)) {
        return Err(Error::WriteConflict {
            read_ts: Timestamp::from_nanos(w.read_ts),
        });
    }
    batch.validate(w)
}

/// Whether a key or range read in `span` has a version in `(after, up_to]`.
fn span_changed(
    mvcc: &meridian_storage::Mvcc,
    span: &crate::Span,
    after: Timestamp,
    up_to: Timestamp,
) -> Result<bool> {
    Ok(match &span.end {
        None => mvcc.key_changed_between(&span.start, after, up_to)?,
        Some(end) => mvcc.changed_between(&span.start, end, after, up_to)?,
    })
}

/// The context of the heartbeat by which a leader tells its followers it stops ticking.
const QUIESCE_CONTEXT: &[u8] = b"quiesce";

/// The most a replica applies for one Raft `Ready` (see `max_committed_size_per_ready`).
const MAX_APPLY_BYTES_PER_READY: u64 = 8 << 20;

/// A proposal waiting to be applied.
struct Proposal {
    /// The timestamp the leader assigned it (pending in the oracle until applied), or zero.
    ts: Timestamp,
    reply: ProposalReply,
    /// The transaction whose commit this is (a write, or the final resolve of a committed
    /// share), if it holds row locks here: they are released as soon as it is applied, before
    /// commit wait (a waiter reads at a timestamp above it anyway), which keeps commit wait
    /// out of a hot row's critical section.
    lock_owner: Option<Vec<u8>>,
}

enum ProposalReply {
    Write(Reply<Timestamp>),
    Op(Reply<OpOutcome>),
}

/// A request that reached the leader before it held a lease.
enum Deferred {
    Write(
        WriteRequest,
        Option<(Timestamp, Timestamp)>,
        Reply<Timestamp>,
    ),
    Op(TabletOp, Reply<OpOutcome>),
}

impl Deferred {
    fn fail(self, e: Error) {
        match self {
            Deferred::Write(_, _, reply) => drop(reply.send(Err(e))),
            Deferred::Op(_, reply) => drop(reply.send(Err(e))),
        }
    }
}

/// What applying one command produced, beyond its result.
enum Applied {
    Done(Result<OpOutcome>),
    Split {
        left: RangeDescriptor,
        right: RangeDescriptor,
        split_ts: Timestamp,
    },
    Merge {
        merged: RangeDescriptor,
        /// The tablet taken over.
        right: u64,
    },
}

/// A read whose timestamp is assigned and whose ReadIndex is known.
struct ReadAwaitingApply {
    read_ts: Timestamp,
    index: u64,
    /// The keys read, if known (see `Msg::ReadTs`).
    reads: Option<Vec<crate::Span>>,
    reply: Reply<Timestamp>,
}

/// A read at a timestamp, with what it reads, waiting for its ReadIndex round.
type ReadAwaitingIndex = (Timestamp, Option<Vec<crate::Span>>, Reply<Timestamp>);

/// A read timestamp asked for before this leader committed an entry of its term.
struct ReadAwaitingTerm {
    at: Option<Timestamp>,
    reads: Option<Vec<crate::Span>>,
    reply: Reply<Timestamp>,
}

/// The task that owns the `RawNode`.
struct Driver {
    raw: RawNode<RaftLogStore>,
    store: RaftLogStore,
    shared: Arc<Shared>,
    clock: Arc<TrueTime>,
    transport: Arc<dyn Transport>,
    tick_interval: Duration,
    margin: Duration,
    oracle: TsOracle,
    hooks: Arc<dyn ReplicaHooks>,
    proposals: HashMap<u64, Proposal>,
    next_id: u64,
    /// ReadIndex requests sent to Raft, by request id (the ReadIndex context).
    reads_awaiting_index: HashMap<u64, ReadAwaitingIndex>,
    /// Reads received before this leader committed an entry of its term (raft-rs drops
    /// ReadIndex requests until then).
    reads_awaiting_term: Vec<ReadAwaitingTerm>,
    reads_awaiting_apply: Vec<ReadAwaitingApply>,
    /// Largest commit timestamp applied by this replica since it started.
    applied_max_ts: Timestamp,
    was_leader: bool,
    lease: LeaseState,
    /// Writes that reached the leader before it held a lease.
    writes_awaiting_lease: Vec<Deferred>,
    ticks: u64,
    heartbeat_ticks: u64,
    election_ticks: u64,
    /// Whether idle groups stop ticking (see `maybe_quiesce`).
    quiesce: bool,
    /// Not ticking until a message arrives.
    quiesced: bool,
    /// The message just handled quiesced this replica: the next wake-up check keeps it so.
    stay_quiesced: bool,
    /// Consecutive ticks without work.
    idle_ticks: u64,
    /// The tick at which each peer was last heard from.
    last_heard: HashMap<u64, u64>,
    /// Ticks between closed timestamps (0: never).
    close_ticks: u64,
    /// The log index of the last closed-timestamp entry this leader proposed.
    last_close_index: u64,
    leader_since: Option<Timestamp>,
    /// This replica applied its own removal (or was told to leave): it deletes its state.
    removed: bool,
    /// The tablet was merged into its left neighbour: this replica deletes its records and
    /// log, not its data.
    merged: bool,
    /// This leader proposed a freeze not applied yet: it assigns no timestamp meanwhile.
    freezing: bool,
    /// The log index of this leader's first entry: once it is applied, so is every entry of
    /// earlier leaders.
    term_start: u64,
    /// On the leader: the tick at which a snapshot was last sent to each follower.
    snapshots_sent: HashMap<u64, u64>,
    /// The log index at which each learner was added (as applied here since the start).
    learners_added: HashMap<u64, u64>,
    /// See `ReplicaConfig::draining`.
    draining: Arc<AtomicBool>,
    /// See `ReplicaConfig::raft_log_max_entries`.
    log_max_entries: u64,
    log_max_bytes: u64,
    /// Group commit of the log writes (`logsync.rs`).
    log_sync: Arc<LogSync>,
    /// On the leader: the lock owner of each transaction prepared here that holds row locks,
    /// by transaction id; the resolve that commits the share releases them when applied.
    prepared_owners: HashMap<Vec<u8>, Vec<u8>>,
    /// Where the current turn of the loop spends its time (reported when it is slow).
    turn: TurnStats,
}

/// How often a write waiting in write admission looks at the engine again.
const ADMISSION_STEP: Duration = Duration::from_millis(5);
/// The longest a write waits in write admission.
const ADMISSION_MAX: Duration = Duration::from_secs(1);

/// A turn of a replica's loop longer than this is logged with where its time went: the loop
/// ticks, heartbeats and answers only between turns.
const SLOW_TURN: Duration = Duration::from_millis(200);

/// How far ahead of the clock a leader under lease grants a read at a given timestamp on a
/// quiet tablet (see [`TsOracle::read_ahead`]): the reads of the next moment then find their
/// snapshot final (`safe_ts`) and do not message the driver; a write that follows waits at
/// most this much longer in commit wait. A new leader starts its timestamps this much further
/// above its clock, so they stay above what a predecessor granted.
const READ_AHEAD: Duration = Duration::from_millis(2);

/// A tablet is quiet for [`READ_AHEAD`] when no write or prepared transaction got a timestamp
/// in this long.
const READ_AHEAD_QUIET: Duration = Duration::from_millis(100);

/// Where one turn of a replica's loop spent its time.
#[derive(Default)]
struct TurnStats {
    persist: Duration,
    persisted_bytes: usize,
    apply: Duration,
    /// Of `apply`: writing apply batches to the engine.
    engine_write: Duration,
    applied_entries: usize,
    applied_bytes: usize,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut ticker = tokio::time::interval(self.tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let started: crate::metrics::Stopwatch;
            tokio::select! {
                msg = rx.recv() => {
                    started = crate::metrics::Stopwatch::start();
                    let Some(msg) = msg else { break };
                    if !self.handle(msg) {
                        break;
                    }
                    // Drain whatever else is queued so one Ready covers a batch of requests.
                    let mut stop = false;
                    while let Ok(msg) = rx.try_recv() {
                        if !self.handle(msg) {
                            stop = true;
                            break;
                        }
                    }
                    if stop {
                        break;
                    }
                    if self.quiesced && !self.stay_quiesced {
                        self.quiesced = false;
                        self.idle_ticks = 0;
                        ticker.reset();
                    }
                    self.stay_quiesced = false;
                }
                _ = ticker.tick(), if !self.quiesced => {
                    started = crate::metrics::Stopwatch::start();
                    self.on_tick();
                }
            }
            // Handling a Ready can create work that needs another (deferred writes, renewals).
            let mut failed = None;
            for _ in 0..4 {
                if let Err(e) = self.on_ready().await {
                    failed = Some(e);
                    break;
                }
                self.after_ready();
                if !self.raw.has_ready() {
                    break;
                }
            }
            if let Some(e) = failed {
                tracing::error!(tablet = self.shared.tablet_id, replica = self.shared.replica_id,
                    error = %e, "replica stopped: storage failure while handling raft ready");
                break;
            }
            let turn = std::mem::take(&mut self.turn);
            let took = started.elapsed();
            if took > SLOW_TURN {
                tracing::info!(
                    tablet = self.shared.tablet_id,
                    replica = self.shared.replica_id,
                    took_ms = took.as_millis() as u64,
                    persist_ms = turn.persist.as_millis() as u64,
                    persisted_bytes = turn.persisted_bytes,
                    apply_ms = turn.apply.as_millis() as u64,
                    engine_write_ms = turn.engine_write.as_millis() as u64,
                    applied_entries = turn.applied_entries,
                    applied_bytes = turn.applied_bytes,
                    "slow turn of a replica's loop"
                );
            }
            if self.removed || self.merged {
                break;
            }
        }
        if self.removed || self.merged {
            self.destroy();
        }
        let tablet = self.shared.tablet_id;
        let merged = self.merged;
        self.fail_all(|| {
            if merged {
                Error::RangeMerging { tablet }
            } else {
                Error::Unavailable {
                    tablet,
                    reason: "replica stopped".into(),
                }
            }
        });
    }

    /// Handles one mailbox message; false means stop.
    fn handle(&mut self, msg: Msg) -> bool {
        self.stay_quiesced = false;
        // Work restarts the idle count; the heartbeats of a quiet group do not.
        let quiet = matches!(&msg, Msg::Raft(m) if matches!(
            m.get_msg_type(),
            raft::prelude::MessageType::MsgHeartbeat | raft::prelude::MessageType::MsgHeartbeatResponse
        ));
        if !quiet {
            self.idle_ticks = 0;
        }
        match msg {
            Msg::Raft(m) if self.lease.suppress_vote(m.get_msg_type()) => {
                tracing::debug!(
                    tablet = self.shared.tablet_id,
                    from = m.from,
                    "vote request ignored: this replica just started and may have promised a lease"
                );
            }
            Msg::Raft(m) => {
                let quiesce = self.is_quiesce_heartbeat(&m);
                if m.from != raft::INVALID_ID {
                    self.last_heard.insert(m.from, self.ticks);
                }
                let is_quiesce_answer = m.get_msg_type()
                    == raft::prelude::MessageType::MsgHeartbeatResponse
                    && m.context == QUIESCE_CONTEXT;
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!(tablet = self.shared.tablet_id, error = %e, "dropped raft message");
                }
                if quiesce {
                    // The leader has nothing to replicate and stops ticking: so does this
                    // follower, until the next message wakes it.
                    self.quiesced = true;
                }
                // The answer to a quiesce heartbeat does not wake a quiesced leader.
                self.stay_quiesced = quiesce || (self.quiesced && is_quiesce_answer);
            }
            Msg::Write { req, at, reply } => self.propose_write(req, at, reply),
            Msg::ReadTs { at, reads, reply } => self.start_read(at, reads, reply),
            Msg::Op { op, reply } => self.propose_op(op, reply),
            Msg::Gc { horizon, reply } => self.propose_gc(horizon, reply),
            Msg::TransferLeadership(to) => self.transfer_leadership(to),
            Msg::Campaign => {
                if let Err(e) = self.raw.campaign() {
                    tracing::warn!(tablet = self.shared.tablet_id, error = %e, "campaign failed");
                }
            }
            Msg::Destroy => {
                self.removed = true;
                return false;
            }
            Msg::Retire => {
                self.merged = true;
                return false;
            }
            Msg::Stop => return false,
        }
        true
    }

    /// Deletes the state of a replica that left its group: its data, records and Raft log; or,
    /// for a tablet merged into its left neighbour, its records and Raft log only (the data
    /// under its keys is the merged tablet's).
    fn destroy(&mut self) {
        let tablet = self.shared.tablet_id;
        let engine = self.shared.mvcc.engine().clone();
        let mut batch = meridian_storage::WriteBatch::new();
        let result = if !self.shared.initialized.load(Ordering::Acquire) {
            Ok(())
        } else if self.merged {
            membership::clear_records(engine.as_ref(), tablet, &mut batch)
        } else {
            membership::clear_state(engine.as_ref(), &self.shared.descriptor(), &mut batch)
        }
        .and_then(|()| Ok(self.store.destroy_with(batch)?));
        match result {
            Ok(()) => {
                self.shared.initialized.store(false, Ordering::Release);
                if self.merged {
                    tracing::info!(
                        tablet,
                        replica = self.shared.replica_id,
                        "tablet merged into its left neighbour; its replica retired"
                    );
                } else {
                    tracing::info!(
                        tablet,
                        replica = self.shared.replica_id,
                        "replica removed from its group; its state is deleted"
                    );
                }
                self.hooks.removed(tablet);
            }
            Err(e) => {
                tracing::error!(tablet, error = %e, "cannot delete a removed replica's state")
            }
        }
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn not_leader(&self) -> Error {
        let leader = self.raw.raft.leader_id;
        Error::NotLeader {
            tablet: self.shared.tablet_id,
            replica: self.shared.replica_id,
            leader: (leader != raft::INVALID_ID).then_some(leader),
        }
    }

    /// The clock reading a leader assigns timestamps from; an error when this replica does not
    /// lead or its clock is unusable.
    fn leader_now(&self) -> Result<TtInterval> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        Ok(self.clock.now()?)
    }

    fn on_tick(&mut self) {
        if self.maybe_quiesce() {
            return;
        }
        self.raw.tick();
        self.lease.on_tick();
        self.ticks += 1;
        self.retry_lost_snapshots();
        self.shared.ticks.store(self.ticks, Ordering::Relaxed);
        // A draining node leads nothing that another voter can lead.
        if self.is_leader()
            && self.raw.raft.lead_transferee.is_none()
            && self.ticks.is_multiple_of(self.heartbeat_ticks)
            && self.draining.load(Ordering::Relaxed)
        {
            self.transfer_leadership(None);
        }
        // A leader whose clock became unusable (fenced, or epsilon past the bound) can assign
        // no timestamp: it hands the group to a follower that can.
        if self.is_leader()
            && self.raw.raft.lead_transferee.is_none()
            && self.ticks.is_multiple_of(self.heartbeat_ticks)
            && let Err(e) = self.clock.now()
        {
            tracing::warn!(tablet = self.shared.tablet_id, error = %e,
                "clock unusable: handing leadership to a follower");
            self.transfer_leadership(None);
        }
        // An idle leader lets its lease lapse (it is about to quiesce).
        if self.ticks.is_multiple_of(self.heartbeat_ticks) && self.idle_ticks < self.election_ticks
        {
            self.renew_lease();
        }
        self.maybe_close();
        if let Err(e) = self.maybe_compact_log() {
            tracing::warn!(tablet = self.shared.tablet_id, error = %e, "raft log compaction failed");
        }
    }

    /// Log compaction, in the manner of CockroachDB's raft log queue and TiKV's raft log GC:
    /// once the log holds more than `log_max_entries` entries or `log_max_bytes` bytes, the
    /// entries up to the applied index are removed (the state machine, durable up to the
    /// applied index before the compaction is, stands for them). A leader keeps what its live
    /// followers still need: every follower heard from within two election timeouts keeps the
    /// entries after its match index (after the snapshot it is being sent, if any), unless
    /// the log is past `RAFT_LOG_HARD_CAP_FACTOR` times a threshold; a follower left behind
    /// gets a snapshot, as a new replica does. Followers compact up to their applied index.
    fn maybe_compact_log(&mut self) -> Result<()> {
        let over =
            |size: u64, limit: u64, factor: u64| limit > 0 && size > limit.saturating_mul(factor);
        let (entries, bytes) = self.store.log_size();
        if !over(entries, self.log_max_entries, 1) && !over(bytes, self.log_max_bytes, 1) {
            return Ok(());
        }
        // Entries up to the applied index may go: compact before `applied + 1`.
        let mut compact = self.raw.raft.raft_log.applied.saturating_add(1);
        let hard = over(entries, self.log_max_entries, RAFT_LOG_HARD_CAP_FACTOR)
            || over(bytes, self.log_max_bytes, RAFT_LOG_HARD_CAP_FACTOR);
        if self.is_leader() && !hard {
            let me = self.shared.replica_id;
            let recent = self.ticks.saturating_sub(2 * self.election_ticks);
            for (id, pr) in self.raw.raft.prs().iter() {
                if *id == me || self.last_heard.get(id).is_none_or(|t| *t < recent) {
                    continue;
                }
                let needs = if pr.state == raft::ProgressState::Snapshot {
                    pr.pending_snapshot
                } else {
                    pr.matched
                };
                compact = compact.min(needs.saturating_add(1));
            }
        }
        let first = self.store.first_log_index();
        if compact <= first {
            return Ok(());
        }
        self.store.compact(compact)?;
        crate::metrics::LOG_COMPACTIONS.inc();
        tracing::debug!(
            tablet = self.shared.tablet_id,
            replica = self.shared.replica_id,
            from = first,
            to = compact,
            entries,
            bytes,
            hard,
            "compacted the raft log"
        );
        Ok(())
    }

    /// A requested timestamp no correct clock could be at yet, judged by this leader's: the
    /// caller's clock is broken (or a request is very old).
    fn too_far_ahead(&self, what: &str, ts: Timestamp, now: TtInterval) -> Error {
        Error::Unavailable {
            tablet: self.shared.tablet_id,
            reason: format!(
                "{what} timestamp {ts} is ahead of the leader's clock ({}) by more than the \
                 uncertainty bound",
                now.latest
            ),
        }
    }

    fn transfer_leadership(&mut self, to: Option<u64>) {
        if !self.is_leader() {
            return;
        }
        let me = self.shared.replica_id;
        let voters = self.raw.raft.prs().conf().to_conf_state().voters;
        let target = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != me && voters.contains(id) && to.is_none_or(|t| t == **id))
            .max_by_key(|(_, pr)| pr.matched)
            .map(|(id, _)| *id);
        if let Some(target) = target {
            // A lease must not outlive the leadership: the new leader is elected at once.
            self.lease.clear();
            self.raw.transfer_leader(target);
        }
    }

    /// Whether `m` is the heartbeat by which the current leader tells this follower it
    /// quiesces.
    fn is_quiesce_heartbeat(&self, m: &Message) -> bool {
        m.get_msg_type() == raft::prelude::MessageType::MsgHeartbeat
            && m.context == QUIESCE_CONTEXT
            && m.term == self.raw.raft.term
            && !self.is_leader()
    }

    /// Anything in flight that needs the clock to move: requests, Raft work, prepared
    /// transactions and freezes (their recovery counts ticks).
    fn busy(&self) -> bool {
        !self.proposals.is_empty()
            || !self.reads_awaiting_index.is_empty()
            || !self.reads_awaiting_term.is_empty()
            || !self.reads_awaiting_apply.is_empty()
            || !self.writes_awaiting_lease.is_empty()
            || self.raw.has_ready()
            || !self
                .shared
                .prepared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            // A frozen tablet's leader counts ticks until the merge is settled (`merge.rs`).
            || self.shared.frozen().is_some()
    }

    /// Stops ticking a group with nothing to do, so that thousands of idle tablets cost no
    /// CPU. Only a leader decides: once every voter has the whole log, committed, for two
    /// election timeouts, it tells its followers with a marked heartbeat and stops; they stop
    /// when it arrives. Any message or request wakes a replica. A quiesced leader stops renewing
    /// its lease, which therefore lapses: the first read after a wake-up confirms leadership
    /// with a ReadIndex round. Followers do not count ticks while quiesced, so they never time
    /// out a leader they stopped hearing from on purpose; a request reaching a follower (its
    /// router retrying after the leader's node failed) wakes it, and it campaigns after an
    /// election timeout.
    /// Returns whether the replica quiesced.
    fn maybe_quiesce(&mut self) -> bool {
        if !self.quiesce || self.busy() {
            self.idle_ticks = 0;
            return false;
        }
        self.idle_ticks += 1;
        if !self.is_leader() || self.idle_ticks < 2 * self.election_ticks {
            return false;
        }
        let raft = &self.raw.raft;
        let last = raft.raft_log.last_index();
        if raft.raft_log.committed != last {
            return false;
        }
        let me = self.shared.replica_id;
        // Every follower has the whole log and answered within the last heartbeats: a leader
        // cut off from them keeps ticking, so check-quorum deposes it.
        let recent = self.ticks.saturating_sub(2 * self.heartbeat_ticks);
        let caught_up = raft.prs().iter().all(|(id, pr)| {
            *id == me
                || (pr.matched == last && self.last_heard.get(id).is_some_and(|t| *t >= recent))
        });
        if !caught_up {
            return false;
        }
        let msgs: Vec<Message> = raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, _)| {
                let mut m = Message::default();
                m.set_msg_type(raft::prelude::MessageType::MsgHeartbeat);
                m.to = *id;
                m.from = me;
                m.term = raft.term;
                m.commit = last;
                m.context = QUIESCE_CONTEXT.to_vec().into();
                m
            })
            .collect();
        if !msgs.is_empty() {
            self.transport.send(self.shared.tablet_id, msgs);
        }
        self.quiesced = true;
        true
    }

    /// Starts a lease renewal round (see `lease.rs`).
    fn renew_lease(&mut self) {
        // No renewal while handing leadership over: the new leader's election ignores leases.
        if !self.is_leader()
            || !self.raw.raft.commit_to_current_term()
            || self.raw.raft.lead_transferee.is_some()
        {
            return;
        }
        if let Ok(now) = self.clock.now() {
            self.raw.read_index(LeaseState::renewal_ctx(now.earliest));
        }
    }

    fn propose_write(
        &mut self,
        req: WriteRequest,
        at: Option<(Timestamp, Timestamp)>,
        reply: Reply<Timestamp>,
    ) {
        let now = match self
            .leader_now()
            .and_then(|now| self.not_freezing().map(|()| now))
        {
            Ok(now) => now,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if !self.lease.valid(now) {
            // A leader assigns timestamps only under a lease; it gets one within a heartbeat
            // round, or steps down and fails these with NotLeader.
            self.writes_awaiting_lease
                .push(Deferred::Write(req, at, reply));
            return;
        }
        let ts = match at {
            None => self.oracle.assign_write(now.latest),
            Some((lo, _)) if lo > now.latest.saturating_add(self.margin) => {
                let _ = reply.send(Err(self.too_far_ahead("commit", lo, now)));
                return;
            }
            Some((lo, hi)) => match self.oracle.assign_within(now.latest, lo, hi) {
                Ok(ts) => ts,
                Err(min) => {
                    let _ = reply.send(Err(Error::CommitTsTooLow {
                        tablet: self.shared.tablet_id,
                        min,
                    }));
                    return;
                }
            },
        };
        let id = self.next_id();
        let data = command::encode_write(id, ts, &req);
        let owner = req.lock_owner.map(|o| o.id);
        self.propose(id, data, ts, ProposalReply::Write(reply), owner);
    }

    fn propose(
        &mut self,
        id: u64,
        data: Vec<u8>,
        ts: Timestamp,
        reply: ProposalReply,
        lock_owner: Option<Vec<u8>>,
    ) {
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                crate::metrics::PROPOSALS.inc();
                self.proposals.insert(
                    id,
                    Proposal {
                        ts,
                        reply,
                        lock_owner,
                    },
                );
            }
            Err(e) => {
                if ts != Timestamp::ZERO {
                    self.oracle.resolve(ts);
                }
                // Raft drops proposals while leadership is being handed over: the caller
                // should find the new leader.
                let err = || match &e {
                    raft::Error::ProposalDropped => self.not_leader(),
                    other => Error::Internal(format!("raft refused a proposal: {other}")),
                };
                match reply {
                    ProposalReply::Write(r) => drop(r.send(Err(err()))),
                    ProposalReply::Op(r) => drop(r.send(Err(err()))),
                }
            }
        }
    }

    /// The row locks a 2PC step being proposed releases when applied: a prepare that carries
    /// its transaction's lock owner is remembered, and the final resolve that commits its
    /// share releases that owner's locks. An abort releases nothing (the gateway may write
    /// again without losing its place in the queues; a block that ends releases its locks).
    fn lock_owner_released_by(&mut self, op: &TabletOp) -> Option<Vec<u8>> {
        /// Beyond this many, forgotten transactions (whose resolve went to another leader)
        /// are dropped; their locks lapse on their own.
        const MAX_REMEMBERED: usize = 65_536;
        match op {
            TabletOp::Prepare { txn_id, write, .. } => {
                if let Some(owner) = &write.lock_owner {
                    if self.prepared_owners.len() >= MAX_REMEMBERED {
                        self.prepared_owners.clear();
                    }
                    self.prepared_owners
                        .insert(txn_id.clone(), owner.id.clone());
                }
                None
            }
            TabletOp::Resolve {
                txn_id,
                commit_ts,
                pieces: 0,
            } => self
                .prepared_owners
                .remove(txn_id)
                .filter(|_| commit_ts.is_some()),
            // The coordinator's own share, committed with the decision.
            TabletOp::Decide {
                write: Some(write), ..
            } => write.lock_owner.as_ref().map(|o| o.id.clone()),
            _ => None,
        }
    }

    /// Proposes a 2PC step, a split or a merge step. Prepares, commit decisions, splits and
    /// freezes take a timestamp (so they need the lease); the others only need leadership.
    fn propose_op(&mut self, op: TabletOp, reply: Reply<OpOutcome>) {
        if let TabletOp::ChangeReplicas {
            changes,
            generation,
        } = &op
        {
            if self.is_leader() && changes.contains(&ReplicaChange::Remove(self.shared.replica_id))
            {
                // A leader does not remove itself: another voter takes over, and the caller
                // retries there.
                self.transfer_leadership(None);
            }
            let result = self.check_conf_change(changes, *generation);
            match result {
                Ok(true) => {
                    let id = self.next_id();
                    let cc = membership::conf_change(changes);
                    match self.raw.propose_conf_change(id.to_be_bytes().to_vec(), cc) {
                        Ok(()) => {
                            self.proposals.insert(
                                id,
                                Proposal {
                                    ts: Timestamp::ZERO,
                                    reply: ProposalReply::Op(reply),
                                    lock_owner: None,
                                },
                            );
                        }
                        Err(e) => {
                            let _ = reply.send(Err(match e {
                                raft::Error::ProposalDropped => self.not_leader(),
                                other => Error::Internal(format!("raft refused a change: {other}")),
                            }));
                        }
                    }
                }
                Ok(false) => drop(reply.send(Ok(OpOutcome::default()))),
                Err(e) => drop(reply.send(Err(e))),
            }
            return;
        }
        match self.admit_op(&op) {
            Ok(None) => {}
            Ok(Some(answer)) => {
                let _ = reply.send(Ok(answer));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        }
        let needs_ts = matches!(
            op,
            TabletOp::Prepare { .. }
                | TabletOp::Split { .. }
                | TabletOp::Decide { commit: true, .. }
                | TabletOp::Freeze { .. }
        );
        let mut ts = Timestamp::ZERO;
        if needs_ts {
            let now = match self.leader_now() {
                Ok(now) => now,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            };
            if !self.lease.valid(now) {
                self.writes_awaiting_lease.push(Deferred::Op(op, reply));
                return;
            }
            if let TabletOp::Decide {
                write: Some(_),
                expires,
                ..
            } = &op
                && now.latest > *expires
            {
                let _ = reply.send(Err(Error::Refused {
                    tablet: self.shared.tablet_id,
                    reason: "the commit request expired before it reached the leader".into(),
                }));
                return;
            }
            ts = match &op {
                // Each prepare timestamp was at least `TT.now().latest` at its participant
                // after the transaction asked to commit, so the largest is already above the
                // commit of anything acknowledged before (external consistency) without
                // raising it to this clock's `latest`: commit wait ends that much sooner.
                TabletOp::Decide { min_commit_ts, .. } if *min_commit_ts > Timestamp::ZERO => {
                    self.oracle.assign_write(*min_commit_ts)
                }
                _ => self.oracle.assign_write(now.latest),
            };
        } else if !self.is_leader() {
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        let lock_owner = self.lock_owner_released_by(&op);
        let Some(command) = command::op_command(&op, ts) else {
            let _ = reply.send(Err(Error::Internal(format!(
                "{} is not a replicated command",
                op.name()
            ))));
            return;
        };
        let id = self.next_id();
        let data = command::encode(id, command);
        self.propose(id, data, ts, ProposalReply::Op(reply), lock_owner);
        if matches!(op, TabletOp::Freeze { .. }) && self.proposals.contains_key(&id) {
            self.freezing = true;
        }
    }

    /// Whether a membership change may be proposed now: `Ok(false)` when the configuration
    /// already is what it asks for, an error when it must wait or is refused.
    fn check_conf_change(
        &self,
        changes: &[ReplicaChange],
        generation: Option<u64>,
    ) -> Result<bool> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let tablet = self.shared.tablet_id;
        let current = self.shared.descriptor().generation;
        if generation.is_some_and(|g| g != current) {
            return Err(Error::Internal(format!(
                "the replicas of tablet {tablet} changed since this change was planned \
                 (generation {current})"
            )));
        }
        let busy = |reason: &str| Error::Unavailable {
            tablet,
            reason: reason.into(),
        };
        self.not_freezing()?;
        // A freeze of an earlier leader may not be applied yet: no membership change may
        // follow it into the log.
        if !self.applied_earlier_terms() {
            return Err(busy("the leader is applying its predecessors' entries"));
        }
        let raft = &self.raw.raft;
        let conf_state = raft.prs().conf().to_conf_state();
        if raft.has_pending_conf() || !conf_state.voters_outgoing.is_empty() {
            return Err(busy("a membership change is in progress"));
        }
        let voters = &conf_state.voters;
        let learners = &conf_state.learners;
        let mut effective = false;
        for c in changes {
            match *c {
                ReplicaChange::AddLearner(n) => {
                    effective |= !learners.contains(&n) && !voters.contains(&n);
                }
                ReplicaChange::AddVoter(n) => {
                    if !voters.contains(&n) {
                        effective = true;
                        // A voter must hold the snapshot and most of the log first, or the
                        // group could lose its quorum while it catches up.
                        // It must also have acknowledged the entry that added it: a replica
                        // of the same node that acknowledged entries before it was removed
                        // and deleted must not pass for one that holds them.
                        let added_at = self
                            .learners_added
                            .get(&n)
                            .copied()
                            .unwrap_or(raft.raft_log.committed);
                        let caught_up = raft.prs().get(n).is_some_and(|pr| {
                            pr.matched >= self.store.first_log_index()
                                && pr.matched >= added_at
                                && pr.matched + 64 >= raft.raft_log.committed
                        });
                        if !caught_up {
                            return Err(busy(&format!(
                                "node {n}'s replica has not caught up with the log yet"
                            )));
                        }
                    }
                }
                ReplicaChange::Remove(n) => {
                    if n == self.shared.replica_id {
                        return Err(busy(
                            "the leader is handing its leadership over before its removal",
                        ));
                    }
                    effective |= voters.contains(&n) || learners.contains(&n);
                }
            }
        }
        // All or nothing: a change that is partly done already was planned on an outdated
        // configuration (a retry after the remainder went through, or a concurrent planner).
        let done = changes.iter().filter(|c| match **c {
            ReplicaChange::AddLearner(n) => learners.contains(&n) || voters.contains(&n),
            ReplicaChange::AddVoter(n) => voters.contains(&n),
            ReplicaChange::Remove(n) => !voters.contains(&n) && !learners.contains(&n),
        });
        if effective && done.count() > 0 {
            return Err(Error::Internal(format!(
                "the replicas of tablet {tablet} changed since this change was planned"
            )));
        }
        Ok(effective)
    }

    fn propose_gc(&mut self, horizon: Timestamp, reply: Reply<()>) {
        if !self.is_leader() {
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        if let Err(e) = self.not_freezing() {
            let _ = reply.send(Err(e));
            return;
        }
        let id = self.next_id();
        let result = self
            .raw
            .propose(Vec::new(), command::encode_gc(id, horizon));
        // GC is idempotent and needs no result: acknowledge once it is in the log.
        let _ = reply.send(result.map_err(Error::Raft));
    }

    fn start_read(
        &mut self,
        at: Option<Timestamp>,
        reads: Option<Vec<crate::Span>>,
        reply: Reply<Timestamp>,
    ) {
        if self.is_leader() && !self.raw.raft.commit_to_current_term() {
            self.reads_awaiting_term
                .push(ReadAwaitingTerm { at, reads, reply });
            return;
        }
        let now = match self.leader_now() {
            Ok(now) => now,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if let Some(frozen) = self.shared.frozen() {
            // The snapshot at the freeze timestamp is final here; the merged tablet serves
            // anything above it.
            let _ = reply.send(match at {
                Some(ts) if ts <= frozen.ts => Ok(frozen.ts),
                _ => Err(Error::RangeMerging {
                    tablet: self.shared.tablet_id,
                }),
            });
            return;
        }
        if let Err(e) = self.not_freezing() {
            let _ = reply.send(Err(e));
            return;
        }
        let requested = at.unwrap_or(Timestamp::ZERO);
        if requested > now.latest.saturating_add(self.margin) {
            let _ = reply.send(Err(self.too_far_ahead("read", requested, now)));
            return;
        }
        // A timestamp chosen here (not given) is at least the newest write applied: a write may
        // carry a timestamp above this clock's `latest` (a new leader's start, a commit
        // decided elsewhere), and a transaction that locked a row and moves its snapshot here
        // must see the row's newest version, or its commit would find it changed.
        let base = match at {
            Some(given) => now.latest.max(given),
            None => now.latest.max(self.applied_max_ts),
        };
        if self.lease.valid(now) {
            // A read at a given timestamp (not a transaction's choice of one) on a quiet tablet
            // is granted a little ahead, within the margin any read may ask for, so that the
            // reads after it find the snapshot final and skip this message.
            let granted = match at {
                Some(_) => self.oracle.read_ahead(
                    base,
                    now.latest,
                    READ_AHEAD.min(self.margin),
                    READ_AHEAD_QUIET,
                ),
                None => base,
            };
            let read_ts = self.oracle.assign_read(granted);
            // Under a lease no other leader exists: the committed index is the latest.
            let index = self.raw.raft.raft_log.committed;
            self.reads_awaiting_apply.push(ReadAwaitingApply {
                read_ts,
                index,
                reads,
                reply,
            });
            return;
        }
        let read_ts = self.oracle.assign_read(base);
        let id = self.next_id();
        self.reads_awaiting_index
            .insert(id, (read_ts, reads, reply));
        self.raw.read_index(id.to_be_bytes().to_vec());
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Processes a Ready in raft-rs's order (see raft-rs `examples/`). The log write is made
    /// durable by the store's group commit (`logsync.rs`): this task waits for it, and the
    /// other replicas of the store run and join the same fsync meanwhile.
    async fn on_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready: Ready = self.raw.ready();
        // 1. Messages a leader may send before its own log write is durable.
        if !ready.messages().is_empty() {
            let msgs = ready.take_messages();
            self.note_snapshots(&msgs);
            self.transport.send(self.shared.tablet_id, msgs);
        }
        // 2. A snapshot from the leader replaces the log and the state machine.
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.install_snapshot(&snap)?;
        }
        // 3. Read states: leadership confirmed up to an index.
        for rs in ready.take_read_states() {
            self.on_read_state(&rs.request_ctx, rs.index);
        }
        // 4. Committed entries (already durable here) go to the state machine.
        self.apply_entries(ready.take_committed_entries())?;
        // 5 + 6. New entries and the hard state: one write, durable before anything below.
        if !ready.entries().is_empty() || ready.hs().is_some() {
            let started = crate::metrics::Stopwatch::start();
            self.store
                .persist(ready.entries(), ready.hs(), Durability::NoSync)?;
            self.log_sync.sync().await?;
            self.turn.persist += started.elapsed();
            self.turn.persisted_bytes +=
                ready.entries().iter().map(|e| e.data.len()).sum::<usize>();
        }
        // 7. Messages that must follow the durable write (votes, append responses).
        if !ready.persisted_messages().is_empty() {
            self.transport
                .send(self.shared.tablet_id, ready.take_persisted_messages());
        }
        // 8. Advance, then the light ready: new commit index, messages, committed entries.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.store.initial_state()?.hard_state;
            hs.commit = commit;
            self.store.persist(&[], Some(&hs), Durability::NoSync)?;
        }
        if !light.messages().is_empty() {
            let msgs = light.take_messages();
            self.note_snapshots(&msgs);
            self.transport.send(self.shared.tablet_id, msgs);
        }
        self.apply_entries(light.take_committed_entries())?;
        // 9. Everything handed out is applied.
        self.raw.advance_apply();
        Ok(())
    }

    /// Remembers when snapshots went out, so that a lost one is sent again (`on_tick`).
    fn note_snapshots(&mut self, msgs: &[Message]) {
        for m in msgs {
            if m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot {
                self.snapshots_sent.insert(m.to, self.ticks);
            }
        }
    }

    /// A leader waits for a follower to acknowledge a snapshot before sending it anything
    /// else; the transport does not report lost messages, so a snapshot unacknowledged for a
    /// few election timeouts is reported failed, and raft-rs sends another.
    fn retry_lost_snapshots(&mut self) {
        if !self.is_leader() || self.snapshots_sent.is_empty() {
            return;
        }
        let patience = 3 * self.election_ticks;
        let mut failed = Vec::new();
        for (&to, &sent) in &self.snapshots_sent {
            let pending = self
                .raw
                .raft
                .prs()
                .get(to)
                .is_some_and(|pr| pr.state == raft::ProgressState::Snapshot);
            if !pending {
                failed.push((to, false));
            } else if self.ticks.saturating_sub(sent) > patience {
                failed.push((to, true));
            }
        }
        for (to, report) in failed {
            self.snapshots_sent.remove(&to);
            if report {
                tracing::info!(
                    tablet = self.shared.tablet_id,
                    to,
                    "snapshot unacknowledged; resending"
                );
                self.raw.report_snapshot(to, raft::SnapshotStatus::Failure);
            }
        }
    }

    fn on_read_state(&mut self, ctx: &[u8], index: u64) {
        if let Some(sent) = LeaseState::parse_renewal(ctx) {
            self.lease.renewed(sent);
            return;
        }
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        if let Some((read_ts, reads, reply)) =
            self.reads_awaiting_index.remove(&u64::from_be_bytes(bytes))
        {
            self.reads_awaiting_apply.push(ReadAwaitingApply {
                read_ts,
                index,
                reads,
                reply,
            });
        }
    }

    /// Applies committed entries in one atomic engine write with the new applied index, then
    /// answers the proposers.
    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        let started = crate::metrics::Stopwatch::start();
        self.turn.applied_entries += entries.len();
        self.turn.applied_bytes += entries.iter().map(|e| e.data.len()).sum::<usize>();
        let result = self.apply_entries_timed(entries);
        self.turn.apply += started.elapsed();
        result
    }

    fn apply_entries_timed(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mvcc = self.shared.mvcc.clone();
        let tablet = self.shared.tablet_id;
        let mut results: Vec<(u64, Result<OpOutcome>)> = Vec::new();
        let mut splits = Vec::new();
        let mut merges = Vec::new();
        let mut batch = ApplyBatch::new(&mvcc);
        // Decisions recorded or forgotten earlier in this batch (not yet in the engine).
        let mut decisions: BTreeMap<Vec<u8>, Option<pb::TxnDecision>> = BTreeMap::new();
        let mut closed: Option<Timestamp> = None;
        for entry in &entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {}
                EntryType::EntryNormal => {
                    let cmd = command::decode(&entry.data)?;
                    let Some(command) = cmd.command else { continue };
                    use pb::tablet_command::Command;
                    // GC, splits and merges rewrite engine state directly: flush what precedes
                    // them.
                    // Resolving a staged transaction reads its pieces from the engine, where
                    // the pieces staged earlier in this batch are not yet.
                    let resolves_staged = matches!(&command, Command::Resolve(r)
                        if self.has_staged(&r.txn_id));
                    if resolves_staged
                        || matches!(
                            command,
                            Command::Gc(_) | Command::Split(_) | Command::Merge(_)
                        )
                    {
                        self.commit_batch(
                            std::mem::replace(&mut batch, ApplyBatch::new(&mvcc)),
                            entry.index - 1,
                        )?;
                        decisions.clear();
                    }
                    let kind = command_name(&command);
                    let command_started = crate::metrics::Stopwatch::start();
                    let applied = match command {
                        Command::Write(w) => Applied::Done(self.apply_write(&mut batch, &w)),
                        Command::Gc(_) if self.shared.frozen().is_some() => {
                            Applied::Done(Ok(OpOutcome::default()))
                        }
                        Command::Gc(gc) => {
                            mvcc.gc(Timestamp::from_nanos(gc.horizon))?;
                            Applied::Done(Ok(OpOutcome::default()))
                        }
                        Command::Prepare(p) => Applied::Done(self.apply_prepare(&mut batch, p)),
                        Command::Stage(st) => Applied::Done(self.apply_stage(&mut batch, st)),
                        Command::Decide(d) => {
                            Applied::Done(self.apply_decide(&mut batch, &mut decisions, d)?)
                        }
                        Command::Resolve(r) => Applied::Done(self.apply_resolve(&mut batch, &r)),
                        Command::Forget(f) => match self.shared.frozen_error() {
                            // A frozen tablet's decisions are about to move: they stay as
                            // they are.
                            Some(e) => Applied::Done(Err(e)),
                            None => {
                                for txn_id in command::forgotten(f) {
                                    local::delete_decision(batch.write_batch(), tablet, &txn_id);
                                    decisions.insert(txn_id, None);
                                }
                                Applied::Done(Ok(OpOutcome::default()))
                            }
                        },
                        Command::Split(sp) => self.apply_split(&mut batch, &sp)?,
                        Command::Freeze(f) => {
                            Applied::Done(self.apply_freeze(&mut batch, &f, entry.index))
                        }
                        Command::Unfreeze(u) => {
                            Applied::Done(Ok(self.apply_unfreeze(&mut batch, &u)))
                        }
                        Command::Merge(m) => self.apply_merge(&mut batch, &m)?,
                        Command::AbortMerge(a) => {
                            Applied::Done(Ok(self.apply_abort_merge(&mut batch, &a)))
                        }
                        Command::Close(c) => {
                            closed = closed.max(Some(Timestamp::from_nanos(c.closed_ts)));
                            Applied::Done(Ok(OpOutcome::default()))
                        }
                    };
                    let took = command_started.elapsed();
                    if took > SLOW_TURN {
                        tracing::info!(
                            tablet,
                            replica = self.shared.replica_id,
                            command = kind,
                            index = entry.index,
                            bytes = entry.data.len(),
                            took_ms = took.as_millis() as u64,
                            "slow command apply"
                        );
                    }
                    match applied {
                        Applied::Done(r) => results.push((cmd.proposal_id, r)),
                        Applied::Split {
                            left,
                            right,
                            split_ts,
                        } => {
                            results.push((
                                cmd.proposal_id,
                                Ok(OpOutcome {
                                    ts: split_ts,
                                    split: Some((left, right.clone())),
                                    ..OpOutcome::default()
                                }),
                            ));
                            splits.push((right, split_ts));
                        }
                        Applied::Merge { merged, right } => {
                            // The takeover is durable before the right tablet's replica
                            // retires: a restart must find one or the other.
                            self.commit_batch_with(
                                std::mem::replace(&mut batch, ApplyBatch::new(&mvcc)),
                                entry.index,
                                Durability::Sync,
                            )?;
                            results.push((cmd.proposal_id, Ok(OpOutcome::with_range(merged))));
                            merges.push(right);
                        }
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.commit_batch(
                        std::mem::replace(&mut batch, ApplyBatch::new(&mvcc)),
                        entry.index - 1,
                    )?;
                    decisions.clear();
                    self.apply_conf_change(entry)?;
                    if entry.context.len() == 8 {
                        let mut id = [0; 8];
                        id.copy_from_slice(&entry.context);
                        results.push((u64::from_be_bytes(id), Ok(OpOutcome::default())));
                    }
                }
            }
        }
        self.commit_batch(batch, last)?;
        crate::metrics::APPLIED_ENTRIES.inc_by(entries.len() as u64);
        if let Some(closed) = closed {
            self.publish_closed(closed);
        }
        let leader = self.is_leader();
        for (right, split_ts) in splits {
            self.hooks.split(right, split_ts, leader);
        }
        for right in merges {
            self.hooks.merged(right);
        }
        for (id, result) in results {
            let Some(p) = self.proposals.remove(&id) else {
                continue;
            };
            if p.ts != Timestamp::ZERO {
                self.oracle.resolve(p.ts);
            }
            if let Some(owner) = &p.lock_owner
                && ends_locks(&result)
            {
                self.shared.locks.release(owner);
            }
            match p.reply {
                ProposalReply::Write(reply) => match result {
                    Ok(outcome) => self.acknowledge_after_commit_wait(outcome.ts, move |r| {
                        let _ = reply.send(r);
                    }),
                    Err(e) => {
                        if matches!(e, Error::WriteConflict { .. }) {
                            crate::metrics::WRITE_CONFLICTS.inc();
                        }
                        let _ = reply.send(Err(e));
                    }
                },
                // A commit decision is answered once applied: the gateway waits out commit wait
                // while the participants resolve (`dist.rs: two_phase`).
                ProposalReply::Op(reply) => {
                    let _ = reply.send(result);
                }
            }
        }
        self.shared
            .max_ts
            .store(self.applied_max_ts.as_nanos(), Ordering::Release);
        let mut status = self.shared.status.lock().unwrap_or_else(|e| e.into_inner());
        status.applied_index = last;
        Ok(())
    }

    /// Applies a configuration change (in a write of its own, with the new range descriptor
    /// and the applied index): the descriptor's replicas become the new members and its
    /// generation grows, so the meta record is rewritten.
    fn apply_conf_change(&mut self, entry: &Entry) -> Result<()> {
        let undecodable =
            |e: protobuf::ProtobufError| Error::Internal(format!("undecodable conf change: {e}"));
        let before = self.raw.raft.prs().conf().to_conf_state();
        let cs = if entry.get_entry_type() == EntryType::EntryConfChange {
            let cc = ConfChange::parse_from_bytes(&entry.data).map_err(undecodable)?;
            self.raw.apply_conf_change(&cc)?
        } else {
            let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(undecodable)?;
            self.raw.apply_conf_change(&cc)?
        };
        let tablet = self.shared.tablet_id;
        let learners_added: Vec<u64> = cs
            .learners
            .iter()
            .copied()
            .filter(|id| !before.learners.contains(id))
            .collect();
        let mut desc = self.shared.descriptor();
        desc.replicas = membership::members(&cs);
        desc.learners = membership::learners(&cs);
        desc.generation += 1;
        let mut batch = meridian_storage::WriteBatch::new();
        local::put_descriptor(&mut batch, &desc);
        meridian_storage::mvcc::put_applied_index(&mut batch, tablet, entry.index);
        let me = self.shared.replica_id;
        let member = desc.replicas.contains(&me);
        tracing::info!(tablet, replica = me, replicas = ?desc.replicas,
            joint = !cs.voters_outgoing.is_empty(), "membership changed");
        self.store
            .set_conf_state_with(cs, batch, Durability::Sync)?;
        *self.shared.desc.write().unwrap_or_else(|e| e.into_inner()) = desc;
        self.shared.meta_dirty.store(true, Ordering::Release);
        // The last change applied decides: a replica removed and added back within one batch
        // stays.
        self.removed = !member;
        for id in &learners_added {
            self.learners_added.insert(*id, entry.index);
        }
        Ok(())
    }

    /// Installs a snapshot from the leader: a new replica's first state, or the state of a
    /// follower the leader's log compaction left behind. The data and records it carries
    /// replace whatever this replica held, in one write with the Raft state; the in-memory
    /// state that mirrors them (range, prepared transactions, freeze, size) is replaced too,
    /// and the replica's safe time and timestamp floor rise to the sender's.
    fn install_snapshot(&mut self, snap: &raft::prelude::Snapshot) -> Result<()> {
        let tablet = self.shared.tablet_id;
        let decoded = membership::decode_snapshot(tablet, &snap.data)?;
        let engine = self.shared.mvcc.engine().clone();
        let old = self
            .shared
            .initialized
            .load(Ordering::Acquire)
            .then(|| self.shared.descriptor());
        let index = snap.get_metadata().index;
        let mut batch = meridian_storage::WriteBatch::new();
        membership::stage_install(engine.as_ref(), old.as_ref(), &decoded, index, &mut batch)?;
        self.store.apply_snapshot_with(snap, batch)?;
        let desc = decoded.range.clone().unwrap_or_default();
        // The transactions prepared before leave the oracle with the records they had.
        self.oracle.clear_prepared();
        let prepared = prepared_set(decoded.prepared, &mut self.oracle, self.ticks);
        let newest = self
            .shared
            .mvcc
            .max_version_ts(&desc.start_key, &desc.end_key)?
            .into_iter()
            .chain(
                decoded
                    .decisions
                    .iter()
                    .map(|d| Timestamp::from_nanos(d.commit_ts)),
            )
            .chain([Timestamp::from_nanos(decoded.max_ts)])
            .max();
        if let Some(ts) = newest {
            self.applied_max_ts = self.applied_max_ts.max(ts);
        }
        self.shared
            .max_ts
            .store(self.applied_max_ts.as_nanos(), Ordering::Release);
        *self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = prepared;
        let freeze = decoded
            .freeze
            .map(|record| Freeze::from_record(record, self.ticks));
        if let Some(f) = &freeze {
            // As at a restart: the frozen tablet's snapshot at its freeze timestamp is final.
            self.shared
                .safe_ts
                .fetch_max(f.ts.as_nanos(), Ordering::AcqRel);
        }
        *self.shared.freeze.lock().unwrap_or_else(|e| e.into_inner()) = freeze;
        self.shared
            .approx_bytes
            .store(decoded.approx_bytes, Ordering::Relaxed);
        let changed = old.as_ref() != Some(&desc);
        *self.shared.desc.write().unwrap_or_else(|e| e.into_inner()) = desc.clone();
        self.shared.initialized.store(true, Ordering::Release);
        if changed {
            self.shared.meta_dirty.store(true, Ordering::Release);
        }
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied_index = index;
        // Safe time after the prepared set and the freeze, which cap it.
        self.publish_closed(Timestamp::from_nanos(decoded.closed_ts));
        crate::metrics::SNAPSHOTS_APPLIED.inc();
        tracing::info!(
            tablet,
            replica = self.shared.replica_id,
            index,
            versions = decoded.data.len(),
            prepared = self
                .shared
                .prepared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            "installed a snapshot"
        );
        if let Some(old) = old.filter(|_| changed) {
            self.hooks.snapshot_installed(&old, &desc);
        }
        Ok(())
    }

    /// A closed timestamp was applied: reads up to it may be served here, except at or above
    /// the prepare timestamp of a transaction still prepared.
    fn publish_closed(&self, closed: Timestamp) {
        let below_prepared = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .min_ts()
            .map(Timestamp::prev);
        let safe = below_prepared.map_or(closed, |p| p.min(closed));
        // A frozen tablet serves nothing above its freeze, whatever a later leader closed.
        let safe = self.shared.frozen().map_or(safe, |f| f.ts.min(safe));
        self.shared
            .safe_ts
            .fetch_max(safe.as_nanos(), Ordering::AcqRel);
    }

    /// On the leader, every `close_ticks` ticks while writes happened since the last close:
    /// closes the current timestamp (see `CloseCommand`), so that followers can serve reads up
    /// to it. Needs the lease (it promises something about future timestamps).
    fn maybe_close(&mut self) {
        if !self.is_leader()
            || self.close_ticks == 0
            || !self.ticks.is_multiple_of(self.close_ticks)
            || !self.raw.raft.commit_to_current_term()
            || self.not_freezing().is_err()
        {
            return;
        }
        let last = self.raw.raft.raft_log.last_index();
        if last == self.last_close_index {
            return;
        }
        let Ok(now) = self.clock.now() else { return };
        if !self.lease.valid(now) {
            return;
        }
        let ts = self.oracle.assign_read(now.latest);
        let id = self.next_id();
        let data = command::encode(
            id,
            pb::tablet_command::Command::Close(pb::CloseCommand {
                closed_ts: ts.as_nanos(),
            }),
        );
        if self.raw.propose(Vec::new(), data).is_ok() {
            self.last_close_index = self.raw.raft.raft_log.last_index();
        }
    }

    /// Commit wait: runs `done` once `TT.after(ts)`. Replication already used up part (usually
    /// all) of the wait.
    fn acknowledge_after_commit_wait(
        &self,
        ts: Timestamp,
        done: impl FnOnce(Result<Timestamp>) + Send + 'static,
    ) {
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let result = clock.commit_wait(ts).await.map_err(Error::from);
            if let Ok(waited) = &result {
                crate::metrics::COMMIT_WAIT.observe(waited.as_secs_f64());
            }
            done(result.map(|_| ts));
        });
    }

    /// Writes the batch with the applied index and the tablet's size record (not synced: the
    /// log holds the entries).
    fn commit_batch(&mut self, batch: ApplyBatch<'_>, applied: u64) -> Result<()> {
        self.commit_batch_with(batch, applied, Durability::NoSync)
    }

    fn commit_batch_with(
        &mut self,
        mut batch: ApplyBatch<'_>,
        applied: u64,
        durability: Durability,
    ) -> Result<()> {
        let tablet = self.shared.tablet_id;
        if let Some(ts) = batch.max_ts {
            self.applied_max_ts = self.applied_max_ts.max(ts);
        }
        if batch.bytes > 0 {
            let size = self
                .shared
                .approx_bytes
                .fetch_add(batch.bytes, Ordering::Relaxed)
                + batch.bytes;
            local::put_size(batch.write_batch(), tablet, size);
        }
        let started = crate::metrics::Stopwatch::start();
        let result = batch.commit(tablet, applied, durability);
        self.turn.engine_write += started.elapsed();
        result
    }

    fn apply_write(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        w: &pb::WriteCommand,
    ) -> Result<OpOutcome> {
        if let Some(e) = self.shared.frozen_error() {
            return Err(e);
        }
        self.shared.check_range(|d| txn::write_in_range(d, w))?;
        let conflict = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conflicts(w, None);
        if conflict {
            return Err(Error::WriteConflict {
                read_ts: Timestamp::from_nanos(w.read_ts),
            });
        }
        Ok(OpOutcome::at(batch.apply_write(w)?))
    }

    fn apply_prepare(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        p: pb::PrepareCommand,
    ) -> Result<OpOutcome> {
        if let Some(e) = self.shared.frozen_error() {
            return Err(e);
        }
        let w = p.write.unwrap_or_default();
        self.shared.check_range(|d| txn::write_in_range(d, &w))?;
        let mut prepared = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let staged = match prepared.get(&p.txn_id) {
            // A retried prepare: the first one stands.
            Some(existing) if !existing.staging => return Ok(OpOutcome::at(existing.ts)),
            Some(existing) => existing.staged.clone(),
            None => Vec::new(),
        };
        if staged.len() != p.staged_pieces as usize {
            // A piece was refused, or dropped by an abort (recovery): never prepare without it.
            return Err(Error::TxnAborted {
                reason: format!(
                    "{} of the {} pieces of the transaction are staged at tablet {}",
                    staged.len(),
                    p.staged_pieces,
                    self.shared.tablet_id
                ),
            });
        }
        validate_share(batch, &prepared, &p.txn_id, &w)?;
        let ts = Timestamp::from_nanos(w.commit_ts);
        let entry = Prepared {
            ts,
            anchor: p.anchor_key,
            write: w,
            since_tick: self.ticks,
            staged,
            staging: false,
            resolved: 0,
        };
        local::put_prepared(
            batch.write_batch(),
            self.shared.tablet_id,
            &entry.record(&p.txn_id),
        );
        prepared.insert(p.txn_id, entry);
        self.oracle.add_prepared(ts);
        Ok(OpOutcome::at(ts))
    }

    /// Stages a piece of a large transaction (see `txn.rs`): validates it as a prepare would
    /// and keeps its mutations in a node-local record, invisible until a resolve applies them.
    fn apply_stage(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        st: pb::StageCommand,
    ) -> Result<OpOutcome> {
        if let Some(e) = self.shared.frozen_error() {
            return Err(e);
        }
        let w = st.write.unwrap_or_default();
        self.shared.check_range(|d| txn::write_in_range(d, &w))?;
        let tablet = self.shared.tablet_id;
        let mut prepared = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let staged = match prepared.get_mut(&st.txn_id) {
            // Prepared already: a late retry of a piece it holds.
            Some(existing) if !existing.staging => return Ok(OpOutcome::default()),
            Some(existing) if (st.seq as usize) < existing.staged.len() => {
                // A retried piece, or its gateway's reminder that it is alive (the piece
                // repeated empty): the first one stands, and the transaction is not stale.
                existing.since_tick = self.ticks;
                return Ok(OpOutcome::default());
            }
            Some(existing) => existing.staged.len(),
            None => 0,
        };
        if w.mutations.is_empty() && w.conditions.is_empty() && w.read_spans.is_empty() {
            // A reminder for a transaction no longer staging here: nothing to keep.
            return Ok(OpOutcome::default());
        }
        if st.seq as usize > staged {
            return Err(Error::TxnAborted {
                reason: format!(
                    "piece {} of the transaction reached tablet {tablet} before piece {staged}",
                    st.seq
                ),
            });
        }
        validate_share(batch, &prepared, &st.txn_id, &w)?;
        let bounds = txn::bounds(&w);
        local::put_staged(
            batch.write_batch(),
            tablet,
            &pb::StagedPiece {
                txn_id: st.txn_id.clone(),
                seq: st.seq,
                mutations: w.mutations,
            },
        );
        if prepared.get(&st.txn_id).is_none() {
            prepared.insert(
                st.txn_id.clone(),
                Prepared::staging(st.anchor_key, self.ticks),
            );
        }
        let Some(entry) = prepared.get_mut(&st.txn_id) else {
            return Err(Error::Internal("a staging transaction vanished".into()));
        };
        entry.staged.push(bounds);
        entry.since_tick = self.ticks;
        local::put_prepared(batch.write_batch(), tablet, &entry.record(&st.txn_id));
        Ok(OpOutcome::default())
    }

    /// Whether transaction `txn_id` has pieces staged here.
    fn has_staged(&self, txn_id: &[u8]) -> bool {
        self.shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(txn_id)
            .is_some_and(|p| !p.staged.is_empty())
    }

    /// Records a decision unless one is recorded; answers with the decision of record.
    fn apply_decide(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        decisions: &mut BTreeMap<Vec<u8>, Option<pb::TxnDecision>>,
        d: pb::DecideCommand,
    ) -> Result<Result<OpOutcome>> {
        if let Some(e) = self.shared.frozen_error() {
            return Ok(Err(e));
        }
        if let Err(e) = self
            .shared
            .check_range(|r| range::contains(r, &d.anchor_key))
        {
            return Ok(Err(e));
        }
        let tablet = self.shared.tablet_id;
        let recorded = match decisions.get(&d.txn_id) {
            Some(d) => d.clone(),
            None => local::load_decision(self.shared.mvcc.engine().as_ref(), tablet, &d.txn_id)?,
        };
        let mut refusal = None;
        let decision = match recorded {
            Some(existing) => existing,
            None => {
                // The coordinator's own share: validated as a prepare is, applied with a
                // commit decision; if it does not hold, the decision is "abort".
                let mut commit = d.commit;
                if let Some(w) = d.write.as_ref().filter(|_| commit)
                    && let Err(e) = self.apply_own_share(batch, &d.txn_id, w)
                {
                    refusal = Some(e);
                    commit = false;
                }
                let record = pb::TxnDecision {
                    txn_id: d.txn_id.clone(),
                    anchor_key: d.anchor_key.clone(),
                    commit,
                    commit_ts: if commit { d.commit_ts } else { 0 },
                };
                local::put_decision(batch.write_batch(), tablet, &record);
                decisions.insert(d.txn_id.clone(), Some(record.clone()));
                if record.commit {
                    let ts = Timestamp::from_nanos(record.commit_ts);
                    self.applied_max_ts = self.applied_max_ts.max(ts);
                }
                record
            }
        };
        Ok(if decision.commit {
            Ok(OpOutcome::at(Timestamp::from_nanos(decision.commit_ts)))
        } else if let Some(e) = refusal {
            Err(e)
        } else {
            Err(Error::TxnAborted {
                reason: "the transaction was aborted by its coordinator".into(),
            })
        })
    }

    /// Validates the coordinator's own share of a transaction as a prepare would (in range,
    /// clear of prepared transactions, its conditions and reads holding) and applies it at
    /// its commit timestamp. Nothing is written when it fails.
    fn apply_own_share(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        txn_id: &[u8],
        w: &pb::WriteCommand,
    ) -> Result<()> {
        self.shared.check_range(|d| txn::write_in_range(d, w))?;
        let prepared = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        validate_share(batch, &prepared, txn_id, w)?;
        batch.apply_mutations(&w.mutations, Timestamp::from_nanos(w.commit_ts))?;
        Ok(())
    }

    fn apply_resolve(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        r: &pb::ResolveCommand,
    ) -> Result<OpOutcome> {
        let tablet = self.shared.tablet_id;
        let engine = self.shared.mvcc.engine().clone();
        let mut prepared = self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(p) = prepared.get_mut(&r.txn_id) else {
            return Ok(OpOutcome::default());
        };
        let ts = Timestamp::from_nanos(r.commit_ts);
        let pieces = u32::try_from(p.staged.len()).unwrap_or(u32::MAX);
        if r.commit && p.staging {
            return Err(Error::Internal(format!(
                "a commit of a transaction still staging at tablet {tablet}"
            )));
        }
        if !r.commit && p.resolved > 0 {
            return Err(Error::Internal(format!(
                "an abort of a transaction partly applied at tablet {tablet}"
            )));
        }
        if r.pieces > 0 {
            // A partial resolve: apply the pieces below `r.pieces` not applied yet; the
            // transaction stays prepared, so nothing reads any of it yet.
            if r.commit {
                let upto = r.pieces.min(pieces);
                for seq in p.resolved..upto {
                    apply_piece(engine.as_ref(), batch, tablet, &r.txn_id, seq, ts)?;
                }
                if upto > p.resolved {
                    p.resolved = upto;
                    p.since_tick = self.ticks;
                    local::put_prepared(batch.write_batch(), tablet, &p.record(&r.txn_id));
                    self.oracle.observe(ts);
                }
            }
            return Ok(OpOutcome::default());
        }
        let Some(p) = prepared.remove(&r.txn_id) else {
            return Ok(OpOutcome::default());
        };
        if !p.staging {
            self.oracle.remove_prepared(p.ts);
        }
        local::delete_prepared(batch.write_batch(), tablet, &r.txn_id);
        if r.commit {
            for seq in p.resolved..pieces {
                apply_piece(engine.as_ref(), batch, tablet, &r.txn_id, seq, ts)?;
            }
            batch.apply_mutations(&p.write.mutations, ts)?;
            self.oracle.observe(ts);
        } else {
            for seq in 0..pieces {
                local::delete_staged(batch.write_batch(), tablet, &r.txn_id, seq);
            }
        }
        Ok(OpOutcome::default())
    }

    /// Leadership changes, deferred reads, status.
    fn after_ready(&mut self) {
        let leader = self.is_leader();
        if leader && !self.was_leader {
            match self.clock.now() {
                // Above the margin any read may ask for, by the most a predecessor granted
                // ahead of its clock: a leader that handed over at once (without waiting out
                // its lease) may have granted reads that far ahead.
                Ok(now) => self.oracle.become_leader(
                    now.latest,
                    self.margin + READ_AHEAD,
                    self.applied_max_ts,
                ),
                Err(e) => {
                    // Without a trustworthy clock this replica must not lead: its timestamps
                    // could break external consistency.
                    tracing::error!(tablet = self.shared.tablet_id, error = %e,
                        "clock unusable on election; stepping down");
                    self.raw
                        .raft
                        .become_follower(self.raw.raft.term, raft::INVALID_ID);
                    return;
                }
            }
            tracing::info!(
                tablet = self.shared.tablet_id,
                replica = self.shared.replica_id,
                term = self.raw.raft.term,
                "became leader"
            );
            self.term_start = self.raw.raft.raft_log.last_index();
            self.idle_ticks = 0;
            self.shared.load.reset();
            self.leader_since = self.clock.now().ok().map(|now| now.earliest);
        } else if !leader && self.was_leader {
            self.oracle.step_down();
            self.lease.clear();
            self.shared.load.reset();
            self.freezing = false;
            self.leader_since = None;
            let (tablet, replica) = (self.shared.tablet_id, self.shared.replica_id);
            self.fail_all(|| Error::NotLeader {
                tablet,
                replica,
                leader: None,
            });
        }
        self.was_leader = self.is_leader();
        if leader && self.raw.raft.commit_to_current_term() {
            if self.lease.end().is_none() {
                self.renew_lease();
            }
            for r in std::mem::take(&mut self.reads_awaiting_term) {
                self.start_read(r.at, r.reads, r.reply);
            }
            let lease_valid = self.clock.now().is_ok_and(|now| self.lease.valid(now));
            if lease_valid {
                for deferred in std::mem::take(&mut self.writes_awaiting_lease) {
                    match deferred {
                        Deferred::Write(req, at, reply) => self.propose_write(req, at, reply),
                        Deferred::Op(op, reply) => self.propose_op(op, reply),
                    }
                }
            }
        }
        let applied = self.raw.raft.raft_log.applied;
        let frozen_at = self.shared.frozen().map(|f| f.ts);
        let mut still_waiting = Vec::new();
        for read in std::mem::take(&mut self.reads_awaiting_apply) {
            if read.index <= applied && frozen_at.is_some_and(|ts| read.read_ts > ts) {
                // A freeze applied meanwhile: the merged tablet serves this timestamp.
                let _ = read.reply.send(Err(Error::RangeMerging {
                    tablet: self.shared.tablet_id,
                }));
            } else if read.index <= applied && self.oracle.can_serve(read.read_ts) {
                self.shared
                    .safe_ts
                    .fetch_max(read.read_ts.as_nanos(), Ordering::AcqRel);
                let _ = read.reply.send(Ok(read.read_ts));
            } else if read.index <= applied
                && self.oracle.applied_through(read.read_ts)
                && read.reads.as_ref().is_some_and(|reads| {
                    !self
                        .shared
                        .prepared
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .holds_back(read.read_ts, reads)
                })
            {
                // Final for the keys read, not for the tablet: `safe_ts` stays where it is.
                let _ = read.reply.send(Ok(read.read_ts));
            } else {
                still_waiting.push(read);
            }
        }
        self.reads_awaiting_apply = still_waiting;
        let mut status = self.shared.status.lock().unwrap_or_else(|e| e.into_inner());
        status.leader_id = self.raw.raft.leader_id;
        status.term = self.raw.raft.term;
        status.commit_index = self.raw.raft.raft_log.committed;
        status.applied_index = applied;
        status.is_leader = leader;
        status.lease_end = if leader { self.lease.end() } else { None };
        status.leader_since = self.leader_since;
        status.quiesced = self.quiesced;
        status.log_first_index = self.store.first_log_index();
        (status.log_entries, status.log_bytes) = self.store.log_size();
        drop(status);
        if !leader && self.shared.leader.swap(leader, Ordering::Relaxed) {
            // Locks live only at the leader: waiters go look for the new one.
            self.shared.locks.clear();
            self.prepared_owners.clear();
        }
        self.shared.leader.store(leader, Ordering::Relaxed);
    }

    /// Fails every waiting caller, on step-down and on stop. Proposed writes may still commit
    /// under a new leader, so their outcome is ambiguous; reads get `read_err` and may retry.
    fn fail_all(&mut self, read_err: impl Fn() -> Error) {
        let tablet = self.shared.tablet_id;
        for (_, p) in self.proposals.drain() {
            match p.reply {
                ProposalReply::Write(r) => drop(r.send(Err(Error::Ambiguous { tablet }))),
                ProposalReply::Op(r) => drop(r.send(Err(Error::Ambiguous { tablet }))),
            }
        }
        for (_, (_, _, reply)) in self.reads_awaiting_index.drain() {
            let _ = reply.send(Err(read_err()));
        }
        for r in self.reads_awaiting_term.drain(..) {
            let _ = r.reply.send(Err(read_err()));
        }
        for read in self.reads_awaiting_apply.drain(..) {
            let _ = read.reply.send(Err(read_err()));
        }
        for deferred in self.writes_awaiting_lease.drain(..) {
            deferred.fail(read_err());
        }
    }
}
