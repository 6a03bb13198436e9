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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
use crate::logger::raft_logger;
use crate::transport::Transport;
use crate::tsoracle::TsOracle;
use crate::{Error, Result};

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
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum Msg {
    Write {
        req: WriteRequest,
        reply: Reply<Timestamp>,
    },
    ReadTs {
        reply: Reply<Timestamp>,
    },
    Gc {
        horizon: Timestamp,
        reply: Reply<()>,
    },
    Raft(Box<Message>),
    Campaign,
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
}

/// A handle to a running replica. Cloning is cheap; all clones talk to the same task.
#[derive(Clone)]
pub struct Replica {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    request_timeout: Duration,
}

impl Replica {
    /// Opens (or creates) the replica's state in `engine` and starts its driver task.
    pub fn start(
        config: ReplicaConfig,
        engine: Arc<dyn KvEngine>,
        clock: Arc<TrueTime>,
        transport: Arc<dyn Transport>,
    ) -> Result<(Replica, tokio::task::JoinHandle<()>)> {
        let store = RaftLogStore::open(engine.clone(), config.tablet_id)?;
        if !store.is_initialized() {
            store.initialize(ConfState {
                voters: config.initial_voters.clone(),
                ..Default::default()
            })?;
        }
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
            safe_ts: AtomicU64::new(0),
            status: Mutex::new(ReplicaStatus {
                applied_index: applied,
                ..Default::default()
            }),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let replica = Replica {
            tx,
            shared: shared.clone(),
            request_timeout: config.request_timeout,
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
            oracle: TsOracle::default(),
            proposals: HashMap::new(),
            next_id: 1,
            reads_awaiting_index: HashMap::new(),
            reads_awaiting_term: Vec::new(),
            reads_awaiting_apply: Vec::new(),
            applied_max_ts: Timestamp::ZERO,
            was_leader: false,
            lease,
            writes_awaiting_lease: Vec::new(),
            ticks: 0,
            heartbeat_ticks: config.heartbeat_ticks.max(1) as u64,
            leader_since: None,
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
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Write { req, reply })?;
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
        let (reply, rx) = oneshot::channel();
        self.send(Msg::ReadTs { reply })?;
        self.await_reply(rx).await
    }

    /// Replicates a garbage collection of versions no reader at or above `horizon` needs.
    pub async fn gc(&self, horizon: Timestamp) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Gc { horizon, reply })?;
        self.await_reply(rx).await
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

/// A write waiting to be applied.
struct Proposal {
    ts: Timestamp,
    reply: Reply<Timestamp>,
}

/// A read whose timestamp is assigned and whose ReadIndex is known.
struct ReadAwaitingApply {
    read_ts: Timestamp,
    index: u64,
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
    proposals: HashMap<u64, Proposal>,
    next_id: u64,
    /// ReadIndex requests sent to Raft, by request id (the ReadIndex context).
    reads_awaiting_index: HashMap<u64, (Timestamp, Reply<Timestamp>)>,
    /// Reads received before this leader committed an entry of its term (raft-rs drops
    /// ReadIndex requests until then).
    reads_awaiting_term: Vec<Reply<Timestamp>>,
    reads_awaiting_apply: Vec<ReadAwaitingApply>,
    /// Largest commit timestamp applied by this replica since it started.
    applied_max_ts: Timestamp,
    was_leader: bool,
    lease: LeaseState,
    /// Writes that reached the leader before it held a lease.
    writes_awaiting_lease: Vec<(WriteRequest, Reply<Timestamp>)>,
    ticks: u64,
    heartbeat_ticks: u64,
    leader_since: Option<Timestamp>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut ticker = tokio::time::interval(self.tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => {
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
                }
                _ = ticker.tick() => self.on_tick(),
            }
            // Handling a Ready can create work that needs another (deferred writes, renewals).
            let mut failed = None;
            for _ in 0..4 {
                if let Err(e) = self.on_ready() {
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
        }
        let tablet = self.shared.tablet_id;
        self.fail_all(|| Error::Unavailable {
            tablet,
            reason: "replica stopped".into(),
        });
    }

    /// Handles one mailbox message; false means stop.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Raft(m) if self.lease.suppress_vote(m.get_msg_type()) => {
                tracing::debug!(
                    tablet = self.shared.tablet_id,
                    from = m.from,
                    "vote request ignored: this replica just started and may have promised a lease"
                );
            }
            Msg::Raft(m) => {
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!(tablet = self.shared.tablet_id, error = %e, "dropped raft message");
                }
            }
            Msg::Write { req, reply } => self.propose_write(req, reply),
            Msg::ReadTs { reply } => self.start_read(reply),
            Msg::Gc { horizon, reply } => self.propose_gc(horizon, reply),
            Msg::Campaign => {
                if let Err(e) = self.raw.campaign() {
                    tracing::warn!(tablet = self.shared.tablet_id, error = %e, "campaign failed");
                }
            }
            Msg::Stop => return false,
        }
        true
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
        self.raw.tick();
        self.lease.on_tick();
        self.ticks += 1;
        if self.ticks.is_multiple_of(self.heartbeat_ticks) {
            self.renew_lease();
        }
    }

    /// Starts a lease renewal round (see `lease.rs`).
    fn renew_lease(&mut self) {
        if !self.is_leader() || !self.raw.raft.commit_to_current_term() {
            return;
        }
        if let Ok(now) = self.clock.now() {
            self.raw.read_index(LeaseState::renewal_ctx(now.earliest));
        }
    }

    fn propose_write(&mut self, req: WriteRequest, reply: Reply<Timestamp>) {
        let now = match self.leader_now() {
            Ok(now) => now,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if !self.lease.valid(now) {
            // A leader assigns timestamps only under a lease; it gets one within a heartbeat
            // round, or steps down and fails these with NotLeader.
            self.writes_awaiting_lease.push((req, reply));
            return;
        }
        let ts = self.oracle.assign_write(now.latest);
        let id = self.next_id();
        let data = command::encode_write(id, ts, &req);
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                crate::metrics::PROPOSALS.inc();
                self.proposals.insert(id, Proposal { ts, reply });
            }
            Err(e) => {
                self.oracle.resolve(ts);
                let _ = reply.send(Err(Error::Raft(e)));
            }
        }
    }

    fn propose_gc(&mut self, horizon: Timestamp, reply: Reply<()>) {
        if !self.is_leader() {
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        let id = self.next_id();
        let result = self
            .raw
            .propose(Vec::new(), command::encode_gc(id, horizon));
        // GC is idempotent and needs no result: acknowledge once it is in the log.
        let _ = reply.send(result.map_err(Error::Raft));
    }

    fn start_read(&mut self, reply: Reply<Timestamp>) {
        if self.is_leader() && !self.raw.raft.commit_to_current_term() {
            self.reads_awaiting_term.push(reply);
            return;
        }
        let now = match self.leader_now() {
            Ok(now) => now,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let read_ts = self.oracle.assign_read(now.latest);
        if self.lease.valid(now) {
            // Under a lease no other leader exists: the committed index is the latest.
            let index = self.raw.raft.raft_log.committed;
            self.reads_awaiting_apply.push(ReadAwaitingApply {
                read_ts,
                index,
                reply,
            });
            return;
        }
        let id = self.next_id();
        self.reads_awaiting_index.insert(id, (read_ts, reply));
        self.raw.read_index(id.to_be_bytes().to_vec());
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Processes a Ready in raft-rs's order (see raft-rs `examples/`).
    fn on_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready: Ready = self.raw.ready();
        // 1. Messages a leader may send before its own log write is durable.
        if !ready.messages().is_empty() {
            self.transport
                .send(self.shared.tablet_id, ready.take_messages());
        }
        // 2. A snapshot from the leader replaces the log. Shipping state machine data with it
        //    comes with replica snapshots; until then logs are never compacted, so leaders
        //    never send one.
        if !ready.snapshot().is_empty() {
            self.store.apply_snapshot(ready.snapshot())?;
        }
        // 3. Read states: leadership confirmed up to an index.
        for rs in ready.take_read_states() {
            self.on_read_state(&rs.request_ctx, rs.index);
        }
        // 4. Committed entries (already durable here) go to the state machine.
        self.apply_entries(ready.take_committed_entries())?;
        // 5 + 6. New entries and the hard state: one durable write.
        if !ready.entries().is_empty() || ready.hs().is_some() {
            self.store
                .persist(ready.entries(), ready.hs(), Durability::Sync)?;
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
            self.transport
                .send(self.shared.tablet_id, light.take_messages());
        }
        self.apply_entries(light.take_committed_entries())?;
        // 9. Everything handed out is applied.
        self.raw.advance_apply();
        Ok(())
    }

    fn on_read_state(&mut self, ctx: &[u8], index: u64) {
        if let Some(sent) = LeaseState::parse_renewal(ctx) {
            self.lease.renewed(sent);
            return;
        }
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        if let Some((read_ts, reply)) = self.reads_awaiting_index.remove(&u64::from_be_bytes(bytes))
        {
            self.reads_awaiting_apply.push(ReadAwaitingApply {
                read_ts,
                index,
                reply,
            });
        }
    }

    /// Applies committed entries in one atomic engine write with the new applied index, then
    /// answers the proposers.
    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mut results: Vec<(u64, Result<Timestamp>)> = Vec::new();
        let mut batch = ApplyBatch::new(&self.shared.mvcc);
        for entry in &entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {}
                EntryType::EntryNormal => {
                    let cmd = command::decode(&entry.data)?;
                    match &cmd.command {
                        Some(pb::tablet_command::Command::Write(w)) => {
                            results.push((cmd.proposal_id, batch.apply_write(w)));
                        }
                        Some(pb::tablet_command::Command::Gc(gc)) => {
                            // GC rewrites the engine directly: flush what precedes it first.
                            std::mem::replace(&mut batch, ApplyBatch::new(&self.shared.mvcc))
                                .commit(self.shared.tablet_id, entry.index - 1)?;
                            self.shared.mvcc.gc(Timestamp::from_nanos(gc.horizon))?;
                        }
                        None => {}
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| {
                        Error::Internal(format!("undecodable conf change in the raft log: {e}"))
                    })?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.store.set_conf_state(cs, Durability::Sync)?;
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(|e| {
                        Error::Internal(format!("undecodable conf change in the raft log: {e}"))
                    })?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.store.set_conf_state(cs, Durability::Sync)?;
                }
            }
        }
        if let Some(ts) = batch.max_ts {
            self.applied_max_ts = self.applied_max_ts.max(ts);
        }
        batch.commit(self.shared.tablet_id, last)?;
        crate::metrics::APPLIED_ENTRIES.inc_by(entries.len() as u64);
        for (id, result) in results {
            let Some(p) = self.proposals.remove(&id) else {
                continue;
            };
            self.oracle.resolve(p.ts);
            match result {
                Ok(ts) => {
                    // Commit wait: acknowledge only once TT.after(ts). Replication already
                    // used up part (usually all) of the wait.
                    let clock = self.clock.clone();
                    tokio::spawn(async move {
                        let result = clock.commit_wait(ts).await.map_err(Error::from);
                        if let Ok(waited) = &result {
                            crate::metrics::COMMIT_WAIT.observe(waited.as_secs_f64());
                        }
                        let _ = p.reply.send(result.map(|_| ts));
                    });
                }
                Err(e) => {
                    if matches!(e, Error::WriteConflict { .. }) {
                        crate::metrics::WRITE_CONFLICTS.inc();
                    }
                    let _ = p.reply.send(Err(e));
                }
            }
        }
        let mut status = self.shared.status.lock().unwrap_or_else(|e| e.into_inner());
        status.applied_index = last;
        Ok(())
    }

    /// Leadership changes, deferred reads, status.
    fn after_ready(&mut self) {
        let leader = self.is_leader();
        if leader && !self.was_leader {
            match self.clock.now() {
                Ok(now) => self
                    .oracle
                    .become_leader(now.latest, self.margin, self.applied_max_ts),
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
            self.leader_since = self.clock.now().ok().map(|now| now.earliest);
        } else if !leader && self.was_leader {
            self.oracle.step_down();
            self.lease.clear();
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
            for reply in std::mem::take(&mut self.reads_awaiting_term) {
                self.start_read(reply);
            }
            let lease_valid = self.clock.now().is_ok_and(|now| self.lease.valid(now));
            if lease_valid {
                for (req, reply) in std::mem::take(&mut self.writes_awaiting_lease) {
                    self.propose_write(req, reply);
                }
            }
        }
        let applied = self.raw.raft.raft_log.applied;
        let mut still_waiting = Vec::new();
        for read in std::mem::take(&mut self.reads_awaiting_apply) {
            if read.index <= applied && self.oracle.can_serve(read.read_ts) {
                self.shared
                    .safe_ts
                    .fetch_max(read.read_ts.as_nanos(), Ordering::AcqRel);
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
    }

    /// Fails every waiting caller, on step-down and on stop. Proposed writes may still commit
    /// under a new leader, so their outcome is ambiguous; reads get `read_err` and may retry.
    fn fail_all(&mut self, read_err: impl Fn() -> Error) {
        let tablet = self.shared.tablet_id;
        for (_, p) in self.proposals.drain() {
            let _ = p.reply.send(Err(Error::Ambiguous { tablet }));
        }
        for (_, (_, reply)) in self.reads_awaiting_index.drain() {
            let _ = reply.send(Err(read_err()));
        }
        for reply in self.reads_awaiting_term.drain(..) {
            let _ = reply.send(Err(read_err()));
        }
        for read in self.reads_awaiting_apply.drain(..) {
            let _ = read.reply.send(Err(read_err()));
        }
        for (_, reply) in self.writes_awaiting_lease.drain(..) {
            let _ = reply.send(Err(read_err()));
        }
    }
}
