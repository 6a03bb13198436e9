//! Routing requests for one tablet to its leader.
//!
//! A [`Router`] holds one [`ReplicaEndpoint`] per replica of a tablet. An endpoint is either a
//! replica in this process ([`Replica`]) or a stub that forwards over the network (the server
//! crate's gRPC endpoint). The router sends writes and read-timestamp requests to the leader,
//! follows `NotLeader` hints, rides out elections until a deadline, and serves reads at a
//! timestamp from any replica whose safe time covers it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use meridian_clock::Timestamp;

use crate::kv::{KvClient, KvPair, WriteRequest};
use crate::locks::LockOwner;
use crate::replica::Replica;
use crate::txn::{OpOutcome, TabletOp};
use crate::{Error, Result};

/// How long to back off before retrying while a group has no reachable leader.
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// One replica of a tablet, as seen by a router.
#[async_trait]
pub trait ReplicaEndpoint: Send + Sync + 'static {
    /// The replica's id within its group.
    fn replica_id(&self) -> u64;

    /// `Some(term)` when this replica is known, locally, to believe it leads in `term`;
    /// `None` when unknown (remote replicas).
    fn leading_term(&self) -> Option<u64>;

    /// The replica's safe time when known locally (`None` for remote replicas).
    fn local_safe_ts(&self) -> Option<Timestamp>;

    /// A read timestamp (leader only); see [`KvClient::read_ts`].
    async fn read_ts(&self) -> Result<Timestamp>;

    /// Proposes a write (leader only).
    async fn write(&self, req: WriteRequest) -> Result<Timestamp>;

    /// Commits at a timestamp in `[lo, hi]` (see [`Replica::write_at`]).
    async fn write_at(&self, req: WriteRequest, lo: Timestamp, hi: Timestamp) -> Result<Timestamp>;

    /// At the leader: makes the snapshot at `ts` final on the tablet (see
    /// [`Replica::read_at`]).
    async fn read_at(&self, ts: Timestamp) -> Result<Timestamp>;

    /// A 2PC step or a split, at the leader.
    async fn op(&self, op: TabletOp) -> Result<OpOutcome>;

    /// Reads `key` at `ts` if this replica's snapshot at `ts` is complete (a leader makes it
    /// so), with the timestamp of the version read (see [`KvClient::get_seen`]).
    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)>;

    /// Several keys at `ts` under the same rule as [`ReplicaEndpoint::get`], in order, with
    /// the newest version seen, in one request.
    async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)>;

    /// Scans at `ts` under the same rule as [`ReplicaEndpoint::get`], with the newest version
    /// seen.
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)>;
}

impl Replica {
    /// Ensures this replica's engine holds the snapshot at `ts` of what `reads` gives (the
    /// spans read), asking the Raft group for a read timestamp (which only a leader grants) if
    /// its safe time is behind.
    async fn ensure_safe(
        &self,
        ts: Timestamp,
        reads: impl FnOnce() -> Vec<crate::Span>,
    ) -> Result<()> {
        if self.safe_ts() >= ts {
            return Ok(());
        }
        let granted = self.read_at_for(ts, Some(reads())).await?;
        if granted >= ts {
            Ok(())
        } else {
            Err(Error::Unavailable {
                tablet: self.tablet_id(),
                reason: format!("read timestamp {ts} is in the future"),
            })
        }
    }
}

#[async_trait]
impl ReplicaEndpoint for Replica {
    fn replica_id(&self) -> u64 {
        Replica::replica_id(self)
    }

    fn leading_term(&self) -> Option<u64> {
        let s = self.status();
        s.is_leader.then_some(s.term)
    }

    fn local_safe_ts(&self) -> Option<Timestamp> {
        Some(self.safe_ts())
    }

    async fn read_ts(&self) -> Result<Timestamp> {
        Replica::read_ts(self).await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        Replica::write(self, req).await
    }

    async fn read_at(&self, ts: Timestamp) -> Result<Timestamp> {
        Replica::read_at(self, ts).await
    }

    async fn write_at(&self, req: WriteRequest, lo: Timestamp, hi: Timestamp) -> Result<Timestamp> {
        Replica::write_at(self, req, lo, hi).await
    }

    async fn op(&self, op: TabletOp) -> Result<OpOutcome> {
        Replica::op(self, op).await
    }

    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        self.check_key(key)?;
        self.note_load(|_| Some(key));
        self.ensure_safe(ts, || vec![crate::Span::key(key)]).await?;
        // A split applied while waiting moved the key to another tablet.
        self.check_key(key)?;
        Ok(self.mvcc().get_seen(key, ts)?)
    }

    async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        for k in keys {
            self.check_key(k)?;
        }
        self.note_load(|r| crate::replica::one_of(keys, r).map(Vec::as_slice));
        self.ensure_safe(ts, || keys.iter().map(|k| crate::Span::key(k)).collect())
            .await?;
        for k in keys {
            self.check_key(k)?;
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut seen = Timestamp::ZERO;
        for k in keys {
            let (v, at) = self.mvcc().get_seen(k, ts)?;
            out.push(v);
            seen = seen.max(at);
        }
        Ok((out, seen))
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        self.check_span(start, end)?;
        self.note_load(|_| Some(start));
        let span = || {
            vec![crate::Span {
                start: start.to_vec(),
                end: Some(end.to_vec()),
            }]
        };
        self.ensure_safe(ts, span).await?;
        self.check_span(start, end)?;
        Ok(self.mvcc().scan_seen(start, end, ts, limit)?)
    }
}

/// Routes a tablet's requests to its leader. A [`KvClient`].
pub struct Router {
    tablet_id: u64,
    endpoints: Vec<Arc<dyn ReplicaEndpoint>>,
    /// Index into `endpoints` of the replica believed to lead.
    leader_hint: AtomicUsize,
    /// How long a request keeps retrying through elections and unreachable replicas.
    deadline: Duration,
    /// Give up early after this many rounds in which every replica was unavailable (the
    /// caller knows where else to look); `None`: retry until the deadline.
    give_up_rounds: Option<usize>,
}

impl Router {
    /// A router over `endpoints` (at least one).
    pub fn new(
        tablet_id: u64,
        endpoints: Vec<Arc<dyn ReplicaEndpoint>>,
        deadline: Duration,
    ) -> Self {
        assert!(!endpoints.is_empty(), "a tablet has at least one replica");
        Router {
            tablet_id,
            endpoints,
            leader_hint: AtomicUsize::new(0),
            deadline,
            give_up_rounds: None,
        }
    }

    /// Makes requests fail with `ReplicasChanged` (leader unknown) after `rounds` rounds in
    /// which no replica was available, instead of retrying until the deadline: for callers
    /// that can look the replicas up again (the range client, whose cached replica set may be
    /// stale).
    pub fn give_up_after(mut self, rounds: usize) -> Self {
        self.give_up_rounds = Some(rounds);
        self
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> &[Arc<dyn ReplicaEndpoint>] {
        &self.endpoints
    }

    /// The replica ids of the endpoints, in the order given.
    pub fn replica_ids(&self) -> Vec<u64> {
        self.endpoints.iter().map(|e| e.replica_id()).collect()
    }

    fn no_leader(&self) -> Error {
        Error::Unavailable {
            tablet: self.tablet_id,
            reason: "no leader reachable in time".into(),
        }
    }

    /// The endpoint most likely to lead: among local replicas that believe they lead (a
    /// deposed leader may not know it yet), the one with the highest term; otherwise the last
    /// known leader.
    fn likely_leader(&self) -> usize {
        self.endpoints
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.leading_term().map(|t| (i, t)))
            .max_by_key(|(_, term)| *term)
            .map(|(i, _)| i)
            .unwrap_or_else(|| self.leader_hint.load(Ordering::Relaxed) % self.endpoints.len())
    }

    /// Runs `op` against the leader, following hints and retrying while there is none or it
    /// cannot be reached. Only errors raised before anything was proposed are retried here.
    pub async fn with_leader<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Arc<dyn ReplicaEndpoint>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let n = self.endpoints.len();
        let attempts = async {
            let mut i = self.likely_leader();
            let mut unavailable = 0;
            loop {
                match op(self.endpoints[i].clone()).await {
                    Ok(v) => {
                        self.leader_hint.store(i, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Err(Error::NotLeader { leader, .. }) => {
                        if let Some(id) = leader
                            && !self.endpoints.iter().any(|e| e.replica_id() == id)
                        {
                            return Err(Error::ReplicasChanged {
                                tablet: self.tablet_id,
                                leader: id,
                            });
                        }
                        let hinted = leader.and_then(|id| {
                            self.endpoints.iter().position(|e| e.replica_id() == id)
                        });
                        i = match hinted {
                            Some(h) if h != i => h,
                            _ => {
                                tokio::time::sleep(RETRY_BACKOFF).await;
                                (i + 1) % n
                            }
                        };
                    }
                    Err(Error::Unavailable { .. }) => {
                        unavailable += 1;
                        if self.give_up_rounds.is_some_and(|r| unavailable >= r * n) {
                            return Err(Error::ReplicasChanged {
                                tablet: self.tablet_id,
                                leader: 0,
                            });
                        }
                        tokio::time::sleep(RETRY_BACKOFF).await;
                        i = (i + 1) % n;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(self.deadline, attempts)
            .await
            .map_err(|_| self.no_leader())?
    }

    /// A local endpoint whose safe time already covers `ts`, if any.
    /// A 2PC step or a split at the leader, retried through elections. Every op is idempotent
    /// or refused without effect, so retrying is safe.
    pub async fn op(&self, op: TabletOp) -> Result<OpOutcome> {
        self.with_leader(|e| {
            let op = op.clone();
            async move { e.op(op).await }
        })
        .await
    }

    /// Commits `req` at a timestamp in `[lo, hi]` at the leader (see [`Replica::write_at`]).
    pub async fn write_at(
        &self,
        req: WriteRequest,
        lo: Timestamp,
        hi: Timestamp,
    ) -> Result<Timestamp> {
        self.with_leader(|e| {
            let req = req.clone();
            async move { e.write_at(req, lo, hi).await }
        })
        .await
    }

    /// Makes the snapshot at `ts` final on the tablet (see [`Replica::read_at`]).
    pub async fn read_at(&self, ts: Timestamp) -> Result<Timestamp> {
        self.with_leader(|e| async move { e.read_at(ts).await })
            .await
    }

    /// The tablet this router reaches.
    pub fn tablet_id(&self) -> u64 {
        self.tablet_id
    }

    fn local_reader(&self, ts: Timestamp) -> Option<Arc<dyn ReplicaEndpoint>> {
        self.endpoints
            .iter()
            .find(|e| e.local_safe_ts().is_some_and(|safe| safe >= ts))
            .cloned()
    }
}

#[async_trait]
impl KvClient for Router {
    async fn read_ts(&self) -> Result<Timestamp> {
        self.with_leader(|e| async move { e.read_ts().await }).await
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        if let Some(e) = self.local_reader(ts) {
            return e.get(key, ts).await;
        }
        self.with_leader(|e| async move { e.get(key, ts).await })
            .await
    }

    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        if let Some(e) = self.local_reader(ts) {
            return e.get_many(keys, ts).await;
        }
        self.with_leader(|e| async move { e.get_many(keys, ts).await })
            .await
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        if let Some(e) = self.local_reader(ts) {
            return e.scan(start, end, ts, limit).await;
        }
        self.with_leader(|e| async move { e.scan(start, end, ts, limit).await })
            .await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.with_leader(|e| {
            let req = req.clone();
            async move { e.write(req).await }
        })
        .await
    }

    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &LockOwner,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let outcome = self
            .op(TabletOp::Lock {
                keys: keys.to_vec(),
                owner: owner.clone(),
                read_ts,
            })
            .await?;
        Ok((outcome.ts > Timestamp::ZERO).then_some(outcome.ts))
    }

    async fn unlock(&self, _keys: &[Vec<u8>], owner: &[u8]) -> Result<()> {
        self.op(TabletOp::Unlock {
            owner: owner.to_vec(),
        })
        .await
        .map(drop)
    }

    async fn refresh(&self, spans: &[crate::Span], from: Timestamp, to: Timestamp) -> Result<()> {
        self.op(TabletOp::Refresh {
            spans: spans.to_vec(),
            read_ts: from,
            up_to: to,
        })
        .await
        .map(drop)
    }
}
