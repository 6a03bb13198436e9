//! Forming a cluster: `meridian init` asks one node to initialise; that node asks every
//! address of its `--join` list who they are, numbers the nodes, and sends each the cluster
//! descriptor, which every node stores durably before it starts its replicas. Restarted nodes
//! load the descriptor and rejoin by themselves.
//!
//! Initialisation is idempotent: a node that is already initialised re-sends its descriptor to
//! every member, so an `init` interrupted half-way can simply be repeated.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_proto::v1 as pb;
use meridian_proto::v1::node_client::NodeClient;
use meridian_storage::{Durability, KvEngine, Space, WriteBatch};
use prost::Message;
use tonic::Status;

use crate::state::{ClusterMode, NodeState};

/// Where the descriptor lives in the node's Meta space.
const DESCRIPTOR_KEY: &[u8] = b"cluster/descriptor";
/// Where this node's id lives.
const NODE_ID_KEY: &[u8] = b"cluster/node_id";

/// Replicas of the root tablet (and of every tablet split from it): three, as CockroachDB and
/// Spanner default to; more voters only slow every write. The placement driver keeps the count
/// when nodes die.
const MAX_ROOT_REPLICAS: usize = 3;

/// The stored descriptor and node id, if this node was bootstrapped before.
pub(crate) fn load(engine: &dyn KvEngine) -> anyhow::Result<Option<(pb::ClusterDescriptor, u64)>> {
    let Some(desc) = engine.get(Space::Meta, DESCRIPTOR_KEY)? else {
        return Ok(None);
    };
    let desc = pb::ClusterDescriptor::decode(desc.as_slice())?;
    let id = engine
        .get(Space::Meta, NODE_ID_KEY)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| anyhow::anyhow!("cluster descriptor stored without a node id"))?;
    Ok(Some((desc, id)))
}

fn store(engine: &dyn KvEngine, desc: &pb::ClusterDescriptor, node_id: u64) -> anyhow::Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(Space::Meta, DESCRIPTOR_KEY, desc.encode_to_vec());
    batch.put(Space::Meta, NODE_ID_KEY, node_id.to_be_bytes().to_vec());
    engine.write(batch, Durability::Sync)?;
    Ok(())
}

/// Handles `Bootstrap`: adopt the cluster (once; the same descriptor again is fine).
pub(crate) fn bootstrap(
    state: &NodeState,
    cluster: &ClusterMode,
    req: pb::BootstrapRequest,
) -> Result<(), Status> {
    let desc = req
        .cluster
        .ok_or_else(|| Status::invalid_argument("bootstrap without a cluster"))?;
    let me = desc
        .members
        .iter()
        .find(|m| m.node_id == req.node_id)
        .ok_or_else(|| {
            Status::invalid_argument("bootstrap names a node id that is not a member")
        })?;
    if me.listen_addr != state.listen_addr {
        return Err(Status::invalid_argument(format!(
            "bootstrap for {} reached {}",
            me.listen_addr, state.listen_addr
        )));
    }
    if let Some((existing, id)) = cluster.joined.borrow().as_ref() {
        return if existing.cluster_id == desc.cluster_id && *id == req.node_id {
            Ok(())
        } else {
            Err(Status::already_exists(format!(
                "node already belongs to cluster {} as node {id}",
                existing.cluster_id
            )))
        };
    }
    store(cluster.engine.as_ref(), &desc, req.node_id)
        .map_err(|e| Status::internal(format!("cannot store the cluster descriptor: {e:#}")))?;
    tracing::info!(cluster_id = %desc.cluster_id, node_id = req.node_id, members = desc.members.len(),
        "joined cluster");
    cluster.joined.send_replace(Some((desc, req.node_id)));
    Ok(())
}

/// Handles `Init`: form the cluster from the join list (or re-send an existing descriptor).
pub(crate) async fn init(
    state: &NodeState,
    cluster: &ClusterMode,
) -> Result<pb::ClusterDescriptor, Status> {
    let existing = cluster.joined.borrow().as_ref().map(|(d, _)| d.clone());
    let desc = match existing {
        Some(desc) => desc,
        None => form(state, cluster).await?,
    };
    for m in &desc.members {
        let mut client = client(state, &m.listen_addr)?;
        let req = pb::BootstrapRequest {
            cluster: Some(desc.clone()),
            node_id: m.node_id,
        };
        client.bootstrap(req).await.map_err(|s| {
            Status::unavailable(format!(
                "cannot bootstrap node {} at {}: {} (run init again once it is up)",
                m.node_id,
                m.listen_addr,
                s.message()
            ))
        })?;
    }
    Ok(desc)
}

/// Asks every join address who it is and numbers the nodes by listen address.
async fn form(state: &NodeState, cluster: &ClusterMode) -> Result<pb::ClusterDescriptor, Status> {
    let mut addrs: Vec<String> = cluster.join.clone();
    addrs.push(state.listen_addr.clone());
    let mut infos = BTreeMap::new();
    let mut unreachable = Vec::new();
    for addr in addrs {
        match client(state, &addr)?
            .node_info(pb::NodeInfoRequest {})
            .await
        {
            Ok(info) => {
                let info = info.into_inner();
                if !info.cluster_id.is_empty() {
                    return Err(Status::failed_precondition(format!(
                        "{addr} already belongs to cluster {}",
                        info.cluster_id
                    )));
                }
                infos.insert(info.listen_addr.clone(), info);
            }
            Err(s) => unreachable.push(format!("{addr} ({})", s.message())),
        }
    }
    if !unreachable.is_empty() {
        return Err(Status::unavailable(format!(
            "cannot reach every --join address: {}",
            unreachable.join(", ")
        )));
    }
    let members: Vec<pb::ClusterMember> = infos
        .into_values()
        .enumerate()
        .map(|(i, info)| pb::ClusterMember {
            node_id: i as u64 + 1,
            listen_addr: info.listen_addr,
            sql_addr: info.sql_addr,
            region: info.region,
            zone: info.zone,
        })
        .collect();
    let root_replicas = members
        .iter()
        .take(MAX_ROOT_REPLICAS)
        .map(|m| m.node_id)
        .collect();
    let now = state
        .clock
        .now()
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let cluster_id = format!("{:016x}-{:08x}", now.latest.as_nanos(), std::process::id());
    tracing::info!(%cluster_id, nodes = members.len(), "initialising cluster");
    Ok(pb::ClusterDescriptor {
        cluster_id,
        members,
        root_replicas,
    })
}

fn client(state: &NodeState, addr: &str) -> Result<NodeClient<tonic::transport::Channel>, Status> {
    state
        .dialer
        .client(addr, Duration::from_secs(5))
        .map_err(|e| Status::invalid_argument(format!("bad address {addr}: {e:#}")))
}
