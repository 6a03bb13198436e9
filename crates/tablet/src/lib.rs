//! Tablets: Raft-replicated ranges of Meridian's keyspace.
//!
//! A tablet is one Raft group (raft-rs `RawNode` per replica). Its leader assigns every write a
//! commit timestamp from TrueTime, replicates it, and every replica applies it to its MVCC
//! engine at that timestamp; the writer is answered after commit wait. Reads get a timestamp
//! from the leader and read a snapshot that can no longer change.
//!
//! ```text
//!  KvClient (kv.rs) ◀── SQL layer
//!      │
//!  RangeClient (dist.rs): the keyspace over all tablets; meta records (range.rs) say which
//!  tablet holds a key; writes across tablets commit by 2PC (txn.rs)
//!      │
//!  Router (router.rs): route to a tablet's leader, retry through elections; LocalGroup
//!  (group.rs) runs all replicas of one tablet in this process behind a Router
//!      │
//!  Store (store.rs): every replica of one node on its engine; LocalStores (stores.rs): several
//!  stores in one process (a single node, tests)
//!      │
//!  Replica (replica.rs): RawNode + Ready loop ── Transport (transport.rs) ── other replicas
//!      │        │
//!      │        └─ TsOracle (tsoracle.rs): commit/read timestamps, safe time
//!      └─ apply.rs: validate conditions and read spans, write the MVCC batch + applied index
//! ```
//!
//! Start with `kv.rs` (the interface), then `replica.rs` (the protocol), then `apply.rs`.
//!
//! Leader leases (`lease.rs`) let a leader serve reads without a Raft round trip and gate
//! timestamp assignment.
//!
//! Membership changes (`membership.rs`: learners, snapshots, joint consensus) move replicas;
//! node liveness and the placement driver (`placement.rs`) decide where. Splits and merges
//! reshape ranges without moving data (`replica/ranges.rs` applies them; `merge.rs` has the
//! merge protocol: freeze the right tablet, take it over in the left one's log). Tablets split
//! by size and, measured by their leaders, by load (`load.rs`).
//!
//! Raft logs are compacted below the applied index once they pass a size (`ReplicaConfig::
//! raft_log_max_entries`, `raft_log_max_bytes`); a follower left behind catches up by snapshot,
//! as a new replica does (`membership.rs`).
//!
//! The replicas of one store share fsyncs of their log writes (group commit, `logsync.rs`).
//!
//! Not here yet: streamed (chunked) snapshots, merges of tablets whose replicas are on
//! different nodes.

mod apply;
mod command;
mod dist;
mod error;
mod follow;
mod group;
mod kv;
mod lease;
mod load;
mod local;
mod locks;
mod logger;
mod logsync;
mod membership;
mod merge;
pub mod metrics;
pub mod placement;
pub mod range;
mod replica;
mod router;
mod store;
mod stores;
mod transport;
mod tsoracle;
mod txn;

pub use command::{op_from_proto, op_to_proto, write_from_proto, write_to_proto};
pub use dist::{
    DEFAULT_TXN_PIECE_BYTES, RangeClient, RangeSettings, Resolver, maintain, recover_prepared,
    spawn_upkeep,
};
pub use error::{ConditionFailure, Error, Result};
pub use follow::from_gateway;
pub use group::LocalGroup;
pub use kv::{Condition, KvClient, KvPair, Mutation, SameResult, Span, WriteRequest};
pub use locks::{LOCK_TTL, LockOwner, LockTable};
pub use logsync::LogSync;
pub use membership::{RAFT_INIT_INDEX, ReplicaChange};
pub use range::RangeDescriptor;
pub use replica::{NoHooks, Replica, ReplicaConfig, ReplicaHooks, ReplicaStatus};
pub use router::{ReplicaEndpoint, Router};
pub use store::{Store, StoreEndpoint};
pub use stores::LocalStores;
pub use transport::{LocalTransport, Transport};
pub use txn::{OpOutcome, TabletOp};
