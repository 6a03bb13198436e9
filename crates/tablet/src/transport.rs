//! How replicas reach each other. Raft messages leave a replica through a [`Transport`]; the
//! in-process [`LocalTransport`] connects replicas living in one process (tests, the embedded
//! demo) and can cut links to simulate partitions. The gRPC transport between nodes implements
//! the same trait.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use raft::prelude::Message;

use crate::replica::Replica;

/// Delivers Raft messages to other replicas. Sending never blocks and may drop messages (Raft
/// retransmits); it must not reorder messages between one pair of replicas.
pub trait Transport: Send + Sync + 'static {
    /// Sends `msgs` (each names its destination in `to`) for tablet `tablet`.
    fn send(&self, tablet: u64, msgs: Vec<Message>);
}

/// An in-process transport: a routing table from replica id to replica.
#[derive(Default)]
pub struct LocalTransport {
    routes: RwLock<HashMap<u64, Route>>,
    /// Directed links (from, to) that currently drop every message.
    cut: Mutex<HashSet<(u64, u64)>>,
}

impl LocalTransport {
    /// An empty routing table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `replica` reachable under its replica id.
    pub fn register(&self, replica: Replica) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.insert(replica.replica_id(), Route::Replica(replica));
    }

    /// Routes messages for replica id `id` of any tablet to `store`.
    pub fn register_store(&self, id: u64, store: std::sync::Weak<crate::store::Store>) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.insert(id, Route::Store(store));
    }

    /// Removes a replica (it is stopped or gone).
    pub fn unregister(&self, replica_id: u64) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.remove(&replica_id);
    }

    /// Drops all messages between `a` and `b`, both directions.
    pub fn partition(&self, a: u64, b: u64) {
        let mut cut = self.cut.lock().unwrap_or_else(|e| e.into_inner());
        cut.insert((a, b));
        cut.insert((b, a));
    }

    /// Drops the messages `from` sends `to` (one direction only).
    pub fn cut(&self, from: u64, to: u64) {
        let mut cut = self.cut.lock().unwrap_or_else(|e| e.into_inner());
        cut.insert((from, to));
    }

    /// Isolates `replica` from every other registered replica.
    pub fn isolate(&self, replica: u64) {
        let ids: Vec<u64> = {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            routes.keys().copied().collect()
        };
        for other in ids.into_iter().filter(|id| *id != replica) {
            self.partition(replica, other);
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Where a replica id's messages go: one replica (a single tablet) or a store holding a
/// replica of every tablet on its node.
enum Route {
    Replica(Replica),
    Store(std::sync::Weak<crate::store::Store>),
}

impl Transport for LocalTransport {
    fn send(&self, tablet: u64, msgs: Vec<Message>) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let cut = self.cut.lock().unwrap_or_else(|e| e.into_inner());
        for msg in msgs {
            if cut.contains(&(msg.from, msg.to)) {
                continue;
            }
            match routes.get(&msg.to) {
                Some(Route::Replica(replica)) => replica.deliver(msg),
                Some(Route::Store(store)) => {
                    if let Some(store) = store.upgrade() {
                        store.deliver(tablet, msg);
                    }
                }
                None => {}
            }
        }
    }
}
