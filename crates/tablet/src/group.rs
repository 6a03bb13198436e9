//! A tablet whose replicas all live in this process: one replica for a single node, or several
//! exchanging Raft messages through a [`LocalTransport`] (tests and the embedded demo). It is a
//! [`KvClient`]: requests go to the leader, following `NotLeader` hints and riding out
//! elections until a deadline.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{FjallEngine, KvEngine};

use crate::kv::{KvClient, KvPair, WriteRequest};
use crate::replica::{Replica, ReplicaConfig};
use crate::transport::LocalTransport;
use crate::{Error, Result};

/// How long to back off before retrying while a group has no leader.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// The replicas of one tablet, all in this process.
pub struct LocalGroup {
    tablet_id: u64,
    replicas: Vec<Replica>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    transport: Arc<LocalTransport>,
    /// Index into `replicas` of the replica believed to lead.
    leader_hint: AtomicUsize,
    /// How long a request keeps retrying through elections.
    deadline: Duration,
}

impl LocalGroup {
    /// Starts one replica per engine; replica ids are 1..=n, all initial voters.
    pub fn start(
        base: ReplicaConfig,
        engines: Vec<Arc<dyn KvEngine>>,
        clock: Arc<TrueTime>,
    ) -> Result<LocalGroup> {
        let transport = Arc::new(LocalTransport::new());
        let voters: Vec<u64> = (1..=engines.len() as u64).collect();
        let mut replicas = Vec::new();
        let mut tasks = Vec::new();
        for (i, engine) in engines.into_iter().enumerate() {
            let config = ReplicaConfig {
                replica_id: i as u64 + 1,
                initial_voters: voters.clone(),
                ..base.clone()
            };
            let (replica, task) = Replica::start(config, engine, clock.clone(), transport.clone())?;
            transport.register(replica.clone());
            replicas.push(replica);
            tasks.push(task);
        }
        Ok(LocalGroup {
            tablet_id: base.tablet_id,
            replicas,
            tasks: std::sync::Mutex::new(tasks),
            transport,
            leader_hint: AtomicUsize::new(0),
            deadline: base.request_timeout,
        })
    }

    /// A single-replica tablet over a fjall engine in `dir` (created if missing).
    pub fn open_single(
        dir: &Path,
        clock: Arc<TrueTime>,
        config: ReplicaConfig,
    ) -> Result<LocalGroup> {
        let engine: Arc<dyn KvEngine> = Arc::new(FjallEngine::open(dir)?);
        Self::start(config, vec![engine], clock)
    }

    /// The tablet id.
    pub fn tablet_id(&self) -> u64 {
        self.tablet_id
    }

    /// The replicas, in replica-id order.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The in-process transport (tests cut links with it).
    pub fn transport(&self) -> &LocalTransport {
        &self.transport
    }

    /// Waits until some replica leads and has committed an entry of its term; returns its index.
    pub async fn wait_for_leader(&self) -> Result<usize> {
        let wait = async {
            loop {
                if let Some(i) = self.replicas.iter().position(|r| r.status().is_leader) {
                    // A read timestamp proves the leader is ready to serve.
                    if self.replicas[i].read_ts().await.is_ok() {
                        self.leader_hint.store(i, Ordering::Relaxed);
                        return i;
                    }
                }
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        };
        tokio::time::timeout(self.deadline, wait)
            .await
            .map_err(|_| self.no_leader())
    }

    /// Stops every replica and waits for their tasks to end.
    pub async fn shutdown(&self) {
        for r in &self.replicas {
            r.stop();
            self.transport.unregister(r.replica_id());
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    fn no_leader(&self) -> Error {
        Error::Unavailable {
            tablet: self.tablet_id,
            reason: "no leader elected in time".into(),
        }
    }

    /// The replica most likely to lead: among those that believe they lead (a deposed leader
    /// may not know it yet), the one with the highest term; otherwise the last known leader.
    fn likely_leader(&self) -> usize {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.status()))
            .filter(|(_, s)| s.is_leader)
            .max_by_key(|(_, s)| s.term)
            .map(|(i, _)| i)
            .unwrap_or_else(|| self.leader_hint.load(Ordering::Relaxed) % self.replicas.len())
    }

    /// Runs `op` against the leader, following hints and retrying while there is none.
    /// Only errors raised before anything was proposed are retried here.
    async fn with_leader<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Replica) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let attempts = async {
            let mut i = self.likely_leader();
            loop {
                match op(self.replicas[i].clone()).await {
                    Ok(v) => {
                        self.leader_hint.store(i, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Err(Error::NotLeader { leader, .. }) => {
                        let hinted = leader
                            .and_then(|id| self.replicas.iter().position(|r| r.replica_id() == id));
                        i = match hinted {
                            Some(h) if h != i => h,
                            _ => {
                                tokio::time::sleep(RETRY_BACKOFF).await;
                                (i + 1) % self.replicas.len()
                            }
                        };
                    }
                    Err(Error::Unavailable { .. }) => {
                        tokio::time::sleep(RETRY_BACKOFF).await;
                        i = (i + 1) % self.replicas.len();
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(self.deadline, attempts)
            .await
            .map_err(|_| self.no_leader())?
    }

    /// A replica whose engine holds the complete snapshot at `ts`, asking the leader to make one
    /// so if none does yet.
    async fn replica_for(&self, ts: Timestamp) -> Result<Replica> {
        let hint = self.leader_hint.load(Ordering::Relaxed) % self.replicas.len();
        let ordered = std::iter::once(hint).chain((0..self.replicas.len()).filter(|i| *i != hint));
        for i in ordered {
            if self.replicas[i].safe_ts() >= ts {
                return Ok(self.replicas[i].clone());
            }
        }
        let (replica, safe) = self
            .with_leader(|r| async move {
                let safe = r.read_ts().await?;
                Ok((r, safe))
            })
            .await?;
        if safe >= ts {
            Ok(replica)
        } else {
            Err(Error::Unavailable {
                tablet: self.tablet_id,
                reason: format!("read timestamp {ts} is in the future"),
            })
        }
    }
}

#[async_trait]
impl KvClient for LocalGroup {
    async fn read_ts(&self) -> Result<Timestamp> {
        self.with_leader(|r| async move { r.read_ts().await }).await
    }

    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>> {
        let replica = self.replica_for(ts).await?;
        Ok(replica.mvcc().get(key, ts)?)
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<KvPair>> {
        let replica = self.replica_for(ts).await?;
        Ok(replica.mvcc().scan(start, end, ts, limit)?)
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.with_leader(|r| {
            let req = req.clone();
            async move { r.write(req).await }
        })
        .await
    }
}
