//! What the gRPC and HTTP handlers of a node see: its identity, its local replicas, and, in a
//! cluster, the bootstrap state.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, RwLock};

use meridian_clock::TrueTime;
use meridian_proto::v1 as pb;
use meridian_storage::KvEngine;
use meridian_tablet::{Error as TabletError, RangeClient, Replica, Store};
use tokio::sync::watch;

use crate::tls::NodeDialer;

/// How this node came to be.
pub(crate) enum Mode {
    /// `--single-node` (or the demo): the node is its own cluster, always initialised.
    Single,
    /// A member of a multi-node cluster, initialised by `meridian init`.
    Cluster(ClusterMode),
}

/// Cluster bootstrap state.
pub(crate) struct ClusterMode {
    /// The node's store, where the cluster descriptor is kept.
    pub engine: Arc<dyn KvEngine>,
    /// The `--join` addresses.
    pub join: Vec<String>,
    /// Set once: the descriptor and this node's id, when bootstrapped (or loaded on restart).
    pub joined: watch::Sender<Option<(pb::ClusterDescriptor, u64)>>,
}

/// Shared node state.
pub(crate) struct NodeState {
    pub clock: Arc<TrueTime>,
    /// How this node reaches the other nodes (plaintext, or TLS in secure mode).
    pub dialer: NodeDialer,
    pub listen_addr: String,
    pub sql_addr: String,
    pub region: String,
    pub zone: String,
    pub mode: Mode,
    /// This node's id (1 for a single node); unset until a cluster member is bootstrapped.
    pub node_id: OnceLock<u64>,
    /// The cluster id; unset until bootstrapped (single nodes have none).
    pub cluster_id: OnceLock<String>,
    /// Replicas hosted here.
    /// The node's stores: one in a cluster, one per in-process replica on a single node.
    pub stores: RwLock<Vec<Arc<Store>>>,
    /// The range client over the cluster, once the node serves.
    pub client: OnceLock<Arc<RangeClient>>,
    /// Set by `meridian node drain`: the node leads nothing and reports itself not ready.
    pub draining: AtomicBool,
    /// The node's range upkeep settings (liveness, placement).
    pub settings: meridian_tablet::RangeSettings,
}

impl NodeState {
    /// The local replica of `tablet`, if this node hosts one.
    pub(crate) fn replica(&self, tablet: u64) -> Option<Replica> {
        let stores = self.stores.read().unwrap_or_else(|e| e.into_inner());
        stores.iter().find_map(|s| s.replica(tablet))
    }

    /// Creates an empty replica of `desc` on this node's store (see `Store::create_replica`).
    pub(crate) fn create_replica(&self, desc: &pb::RangeDescriptor) -> Result<(), TabletError> {
        match self.stores().as_slice() {
            [store] => store.create_replica(desc),
            _ => Err(TabletError::Unavailable {
                tablet: desc.tablet_id,
                reason: "only a cluster node with one store takes new replicas".into(),
            }),
        }
    }

    /// The node's stores.
    pub(crate) fn stores(&self) -> Vec<Arc<Store>> {
        self.stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn all_replicas(&self) -> Vec<Replica> {
        let stores = self.stores.read().unwrap_or_else(|e| e.into_inner());
        stores.iter().flat_map(|s| s.replicas()).collect()
    }

    pub(crate) fn add_store(&self, store: Arc<Store>) {
        self.stores
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(store);
    }

    pub(crate) fn info(&self) -> pb::NodeInfoResponse {
        pb::NodeInfoResponse {
            cluster_id: self.cluster_id.get().cloned().unwrap_or_default(),
            node_id: self.node_id.get().copied().unwrap_or(0),
            listen_addr: self.listen_addr.clone(),
            sql_addr: self.sql_addr.clone(),
            region: self.region.clone(),
            zone: self.zone.clone(),
        }
    }
}
