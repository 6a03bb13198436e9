//! A tablet whose replicas all live in this process: one replica for a single node, or several
//! exchanging Raft messages through a [`LocalTransport`] (tests and the embedded demo). It is a
//! [`KvClient`] through its [`Router`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{FjallEngine, KvEngine};

use crate::kv::{KvClient, KvPair, WriteRequest};
use crate::replica::{Replica, ReplicaConfig};
use crate::router::{RETRY_BACKOFF, ReplicaEndpoint, Router};
use crate::transport::LocalTransport;
use crate::{Error, Result};

/// The replicas of one tablet, all in this process.
pub struct LocalGroup {
    tablet_id: u64,
    replicas: Vec<Replica>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    transport: Arc<LocalTransport>,
    router: Router,
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
        let endpoints = replicas
            .iter()
            .map(|r| Arc::new(r.clone()) as Arc<dyn ReplicaEndpoint>)
            .collect();
        Ok(LocalGroup {
            tablet_id: base.tablet_id,
            router: Router::new(base.tablet_id, endpoints, base.request_timeout),
            replicas,
            tasks: std::sync::Mutex::new(tasks),
            transport,
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
}

#[async_trait]
impl KvClient for LocalGroup {
    async fn read_ts(&self) -> Result<Timestamp> {
        self.router.read_ts().await
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        self.router.get_seen(key, ts).await
    }

    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        self.router.get_many_seen(keys, ts).await
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        self.router.scan_seen(start, end, ts, limit).await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.router.write(req).await
    }

    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &crate::LockOwner,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        self.router.lock(keys, owner, read_ts).await
    }

    async fn unlock(&self, keys: &[Vec<u8>], owner: &[u8]) -> Result<()> {
        self.router.unlock(keys, owner).await
    }

    async fn refresh(&self, spans: &[crate::Span], from: Timestamp, to: Timestamp) -> Result<()> {
        self.router.refresh(spans, from, to).await
    }
}
