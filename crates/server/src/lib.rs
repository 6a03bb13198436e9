//! A Meridian node: the storage engine, the tablet's replicas, the SQL engine, and the
//! PostgreSQL wire (SQL), gRPC (node API) and HTTP (`/health`, `/ready`) listeners, wired
//! together with one shutdown path.
//!
//! Start with `node.rs` ([`Node::start`]); `config.rs` lists every setting.
//!
//! ```text
//!  psql ──pgwire──▶ meridian-pgwire ──▶ meridian-sql Engine ──KvClient──▶ LocalGroup (tablet)
//!  peers ──gRPC──▶ NodeService (status, time)                              │ raft replicas
//!  probes ──HTTP──▶ /health /ready                                         ▼ fjall (MVCC + log)
//! ```

mod config;
mod grpc;
mod http;
mod node;

pub use config::NodeConfig;
pub use node::{Node, ROOT_TABLET};
