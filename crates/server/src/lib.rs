//! A Meridian node: the storage engine, its tablet replicas, the SQL engine, and the
//! PostgreSQL wire (SQL), gRPC (node API) and HTTP (`/health`, `/ready`, `/metrics`)
//! listeners, wired together with one shutdown path.
//!
//! Start with `node.rs` ([`Node::start`]); `config.rs` lists every setting. A node is either
//! a single node (its replicas in-process) or a cluster member: `cluster.rs` forms the
//! cluster, `transport.rs` carries Raft messages between nodes, `remote.rs` forwards key-value
//! requests to replicas on other nodes, `grpc.rs` serves both; in secure mode all of it runs
//! over mutual TLS, and HTTP over TLS, with certificates the node can reload (`tls.rs`).
//!
//! ```text
//!  psql ──pgwire──▶ meridian-pgwire ──▶ meridian-sql Engine ──KvClient──▶ RangeClient
//!  peers ──gRPC──▶ NodeService (raft, kv, ops, init, status, time)  │ tablets: Store (local)
//!  probes ──HTTP──▶ /health /ready /metrics                          ▼ or RemoteReplica (gRPC)
//! ```

mod cluster;
mod config;
mod grpc;
mod http;
mod local_cluster;
mod netsim;
mod node;
mod remote;
mod state;
mod timesync;
mod tls;
mod transport;

pub use config::NodeConfig;
pub use local_cluster::{LocalCluster, free_addr};
pub use meridian_tablet::range::ROOT_TABLET;
pub use netsim::{Link, NetworkSim};
pub use node::Node;
pub use tls::NodeDialer;

/// Asks the node listening (gRPC) at `host`, reached through `dialer`, to initialise its
/// cluster; returns the cluster.
pub async fn init_cluster(
    host: &str,
    dialer: &NodeDialer,
) -> anyhow::Result<meridian_proto::v1::ClusterDescriptor> {
    let mut client = dialer.client(host, std::time::Duration::from_secs(30))?;
    let resp = client
        .init(meridian_proto::v1::InitRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("init via {host} failed: {}", failure(&s)))?;
    resp.into_inner()
        .cluster
        .ok_or_else(|| anyhow::anyhow!("init answered without a cluster"))
}

/// The status of the node listening (gRPC) at `host`, reached through `dialer`.
pub async fn node_status(
    host: &str,
    dialer: &NodeDialer,
) -> anyhow::Result<meridian_proto::v1::NodeStatusResponse> {
    let mut client = dialer.client(host, std::time::Duration::from_secs(10))?;
    let resp = client
        .status(meridian_proto::v1::NodeStatusRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("cannot reach node at {host}: {}", failure(&s)))?;
    Ok(resp.into_inner())
}

/// Marks node `node_id` as leaving (`decommission`) or staying, through the node listening
/// (gRPC) at `host`, reached through `dialer`; answers how many tablets still have a replica
/// on it.
pub async fn decommission_node(
    host: &str,
    dialer: &NodeDialer,
    node_id: u64,
    decommission: bool,
) -> anyhow::Result<meridian_proto::v1::DecommissionResponse> {
    let mut client = dialer.client(host, std::time::Duration::from_secs(30))?;
    let resp = client
        .decommission(meridian_proto::v1::DecommissionRequest {
            node_id,
            decommission,
        })
        .await
        .map_err(|s| anyhow::anyhow!("decommission via {host} failed: {}", failure(&s)))?;
    Ok(resp.into_inner())
}

/// Asks the node listening (gRPC) at `host`, reached through `dialer`, to drain: hand over its
/// leaderships and take no more; answers how many it still holds.
pub async fn drain_node(
    host: &str,
    dialer: &NodeDialer,
) -> anyhow::Result<meridian_proto::v1::DrainResponse> {
    let mut client = dialer.client(host, std::time::Duration::from_secs(30))?;
    let resp = client
        .drain(meridian_proto::v1::DrainRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("drain of {host} failed: {}", failure(&s)))?;
    Ok(resp.into_inner())
}

/// A failed call's message and the causes under it (a refused TLS handshake is only "transport
/// error" without them), each once.
fn failure(status: &tonic::Status) -> String {
    let mut text = status.message().to_owned();
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = e.source();
    }
    text
}
