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
//!  Router (router.rs): route to the leader, retry through elections; LocalGroup (group.rs)
//!  runs all replicas of a tablet in this process behind a Router
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
//! Not here yet: multi-raft batching, log compaction with snapshots, splits, membership
//! changes.

mod apply;
mod command;
mod error;
mod group;
mod kv;
mod lease;
mod logger;
pub mod metrics;
mod replica;
mod router;
mod transport;
mod tsoracle;

pub use command::{write_from_proto, write_to_proto};
pub use error::{ConditionFailure, Error, Result};
pub use group::LocalGroup;
pub use kv::{Condition, KvClient, KvPair, Mutation, Span, WriteRequest};
pub use replica::{Replica, ReplicaConfig, ReplicaStatus};
pub use router::{ReplicaEndpoint, Router};
pub use transport::{LocalTransport, Transport};
