//! Several stores in one process (a single node with one or more replicas of every tablet, and
//! tests): the stores exchange Raft messages through a [`LocalTransport`], and a
//! [`RangeClient`] over them is the keyspace.

use std::sync::{Arc, Mutex};

use meridian_clock::TrueTime;
use meridian_storage::KvEngine;
use tokio::task::JoinHandle;

use crate::dist::{RangeClient, RangeSettings, Resolver, spawn_upkeep};
use crate::range::{self, RangeDescriptor};
use crate::replica::{Replica, ReplicaConfig};
use crate::router::{RETRY_BACKOFF, ReplicaEndpoint};
use crate::store::{Store, StoreEndpoint};
use crate::transport::LocalTransport;
use crate::{KvClient, Result};

/// Stores `1..=n` of one process and the client over them.
pub struct LocalStores {
    stores: Vec<Arc<Store>>,
    transport: Arc<LocalTransport>,
    client: Arc<RangeClient>,
    maintenance: Mutex<Vec<JoinHandle<()>>>,
}

struct LocalResolver {
    stores: Vec<Arc<Store>>,
}

impl Resolver for LocalResolver {
    fn endpoints(&self, desc: &RangeDescriptor) -> Vec<Arc<dyn ReplicaEndpoint>> {
        desc.replicas
            .iter()
            .filter_map(|id| self.stores.iter().find(|s| s.id() == *id))
            .map(|s| Arc::new(StoreEndpoint::new(s.clone(), desc.tablet_id)) as _)
            .collect()
    }
}

impl LocalStores {
    /// Opens one store per engine (ids `1..=n`), bootstrapping the root tablet with a replica
    /// on each when the engines are new, and starts range upkeep.
    pub fn start(
        base: ReplicaConfig,
        engines: Vec<Arc<dyn KvEngine>>,
        clock: Arc<TrueTime>,
        settings: RangeSettings,
    ) -> Result<LocalStores> {
        let n = engines.len();
        Self::start_replicated(base, engines, clock, settings, n)
    }

    /// [`LocalStores::start`] with the root tablet on the first `replication` stores only (the
    /// others start empty and receive replicas from the placement driver).
    pub fn start_replicated(
        base: ReplicaConfig,
        engines: Vec<Arc<dyn KvEngine>>,
        clock: Arc<TrueTime>,
        settings: RangeSettings,
        replication: usize,
    ) -> Result<LocalStores> {
        let transport = Arc::new(LocalTransport::new());
        let ids: Vec<u64> = (1..=engines.len() as u64).collect();
        let root_ids: Vec<u64> = ids.iter().copied().take(replication.max(1)).collect();
        let root = range::whole_keyspace(range::ROOT_TABLET, root_ids.clone());
        let mut stores = Vec::new();
        for (id, engine) in ids.iter().zip(engines) {
            let store = Store::open(
                *id,
                engine,
                clock.clone(),
                transport.clone(),
                base.clone(),
                root_ids.contains(id).then(|| root.clone()),
            )?;
            transport.register_store(*id, Arc::downgrade(&store));
            stores.push(store);
        }
        let resolver = Arc::new(LocalResolver {
            stores: stores.clone(),
        });
        let client = Arc::new(RangeClient::new(
            resolver,
            clock,
            root_ids,
            base.request_timeout,
        ));
        client.set_members(ids.clone());
        client.set_txn_piece_bytes(settings.txn_piece_bytes);
        let tasks = spawn_upkeep(stores.clone(), client.clone(), settings);
        Ok(LocalStores {
            stores,
            transport,
            client,
            maintenance: Mutex::new(tasks.into()),
        })
    }

    /// Waits until the root tablet serves, and records it in the meta records.
    pub async fn ready(&self) -> Result<()> {
        let deadline = std::time::Duration::from_secs(30);
        let wait = async {
            loop {
                match self.client.get(b"", self.client.read_ts().await?).await {
                    Ok(_) => {
                        let root = self
                            .stores
                            .iter()
                            .find_map(|s| s.replica(range::ROOT_TABLET));
                        return match root {
                            Some(r) => self.client.update_meta(&[r.descriptor()]).await,
                            None => Ok(()),
                        };
                    }
                    Err(e) if e.is_retryable() => tokio::time::sleep(RETRY_BACKOFF).await,
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .unwrap_or_else(|_| {
                Err(crate::Error::Unavailable {
                    tablet: range::ROOT_TABLET,
                    reason: "the root tablet elected no leader in time".into(),
                })
            })
    }

    /// The keyspace over all tablets.
    pub fn client(&self) -> Arc<RangeClient> {
        self.client.clone()
    }

    /// The stores, by id.
    pub fn stores(&self) -> &[Arc<Store>] {
        &self.stores
    }

    /// Every replica of every store.
    pub fn replicas(&self) -> Vec<Replica> {
        self.stores.iter().flat_map(|s| s.replicas()).collect()
    }

    /// The in-process transport (tests cut links with it).
    pub fn transport(&self) -> &LocalTransport {
        &self.transport
    }

    /// Stops upkeep and every replica.
    pub async fn shutdown(&self) {
        let tasks =
            std::mem::take(&mut *self.maintenance.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        for s in &self.stores {
            s.shutdown().await;
        }
    }
}
