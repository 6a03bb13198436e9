//! Forming a cluster: `meridian init` asks one node to initialise; that node asks every
//! address of its `--join` list who they are, numbers the nodes, and sends each the cluster
//! descriptor, which every node stores durably before it starts its replicas. Restarted nodes
//! load the descriptor and rejoin by themselves.
//!
//! Initialisation is idempotent: a node that is already initialised re-sends its descriptor to
//! every member, so an `init` interrupted half-way can simply be repeated.
//!
//! A node started later with `--join` (never initialised, not in the descriptor) joins by
//! itself: it asks its join addresses to `Join` until one that is initialised answers, with a
//! token it keeps in its data directory. The answering node registers it in the root tablet
//! (`/sys/node/<id>`, a new id from a counter there; the same token gets the same id) and
//! hands it the descriptor with every member. Every member reads those records
//! periodically ([`add_members`]), starts talking to the new nodes and keeps them in its
//! stored descriptor; the placement driver then moves replicas onto them.

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
/// The token this node asks to join with (see the module doc).
const JOIN_TOKEN_KEY: &[u8] = b"cluster/join_token";

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
    adopt(cluster, desc, req.node_id)
}

/// Stores `desc` and `node_id` as this node's and starts the node with them.
fn adopt(cluster: &ClusterMode, desc: pb::ClusterDescriptor, node_id: u64) -> Result<(), Status> {
    store(cluster.engine.as_ref(), &desc, node_id)
        .map_err(|e| Status::internal(format!("cannot store the cluster descriptor: {e:#}")))?;
    tracing::info!(cluster_id = %desc.cluster_id, node_id, members = desc.members.len(),
        "joined cluster");
    cluster.joined.send_replace(Some((desc, node_id)));
    Ok(())
}

/// Handles `Join` (see the module doc).
pub(crate) async fn join(
    state: &NodeState,
    cluster: &ClusterMode,
    req: pb::JoinRequest,
) -> Result<pb::JoinResponse, Status> {
    if req.listen_addr.is_empty() || req.token.is_empty() {
        return Err(Status::invalid_argument(
            "a join request needs the node's listen address and a token",
        ));
    }
    let Some((mut desc, _)) = cluster.joined.borrow().clone() else {
        return Err(Status::failed_precondition(format!(
            "{} is not initialised yet (run `meridian init`)",
            state.listen_addr
        )));
    };
    let client = state
        .client
        .get()
        .ok_or_else(|| Status::unavailable("the node does not serve yet"))?;
    let unavailable = |e: meridian_tablet::Error| Status::unavailable(e.to_string());
    let initial = desc
        .members
        .iter()
        .find(|m| m.listen_addr == req.listen_addr && m.join_token.is_empty())
        .map(|m| m.node_id);
    let node_id = match initial {
        // A member `init` named whose bootstrap has not reached it yet. One that has run
        // before (its liveness is recorded) lost its data directory: giving it its old id
        // would make its replicas forget what they voted and acknowledged.
        Some(id) => {
            let records = client.liveness().await.map_err(unavailable)?;
            if records.iter().any(|r| r.node_id == id) {
                return Err(Status::already_exists(format!(
                    "{} is node {id}, which has run before: a node whose data directory is \
                     gone must join with another address",
                    req.listen_addr
                )));
            }
            id
        }
        None => {
            let member = pb::ClusterMember {
                node_id: 0,
                listen_addr: req.listen_addr.clone(),
                sql_addr: req.sql_addr.clone(),
                region: req.region.clone(),
                zone: req.zone.clone(),
                join_token: req.token.clone(),
            };
            let first = desc.members.iter().map(|m| m.node_id).max().unwrap_or(0) + 1;
            let id = client
                .register_node(&member, first)
                .await
                .map_err(unavailable)?;
            tracing::info!(node_id = id, listen_addr = %req.listen_addr, "a node joined the cluster");
            id
        }
    };
    let joined = client.joined_nodes().await.map_err(unavailable)?;
    merge_members(&mut desc, joined);
    Ok(pb::JoinResponse {
        cluster: Some(desc),
        node_id,
    })
}

/// Adds to `desc` the members of `joined` it lacks; whether there were any.
fn merge_members(desc: &mut pb::ClusterDescriptor, joined: Vec<pb::ClusterMember>) -> bool {
    let mut added = false;
    for m in joined {
        if !desc.members.iter().any(|known| known.node_id == m.node_id) {
            desc.members.push(m);
            added = true;
        }
    }
    added
}

/// Adds the nodes that joined after `init` (`joined`, from the root tablet) to this node's
/// stored descriptor; returns the members that are new to it.
pub(crate) fn add_members(
    cluster: &ClusterMode,
    joined: Vec<pb::ClusterMember>,
) -> anyhow::Result<Vec<pb::ClusterMember>> {
    let Some((mut desc, node_id)) = cluster.joined.borrow().clone() else {
        return Ok(Vec::new());
    };
    let before = desc.members.len();
    if !merge_members(&mut desc, joined) {
        return Ok(Vec::new());
    }
    store(cluster.engine.as_ref(), &desc, node_id)?;
    let new = desc.members[before..].to_vec();
    cluster.joined.send_replace(Some((desc, node_id)));
    Ok(new)
}

/// Until this node is initialised (by `init`, or by joining), asks its `--join` addresses
/// every `period` to let it join; returns once one did.
pub(crate) async fn keep_asking_to_join(
    state: &NodeState,
    cluster: &ClusterMode,
    period: Duration,
) {
    let token = match join_token(cluster.engine.as_ref(), state) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot keep a join token");
            return;
        }
    };
    let req = pb::JoinRequest {
        listen_addr: state.listen_addr.clone(),
        sql_addr: state.sql_addr.clone(),
        region: state.region.clone(),
        zone: state.zone.clone(),
        token,
    };
    let others: Vec<&String> = cluster
        .join
        .iter()
        .filter(|a| **a != state.listen_addr)
        .collect();
    loop {
        tokio::time::sleep(period).await;
        for addr in &others {
            if cluster.joined.borrow().is_some() {
                return;
            }
            let answer = match client(state, addr) {
                Ok(mut c) => c.join(req.clone()).await,
                Err(s) => Err(s),
            };
            match answer {
                Ok(r) => {
                    let r = r.into_inner();
                    let Some(desc) = r.cluster else { continue };
                    if cluster.joined.borrow().is_some() {
                        return;
                    }
                    if let Err(s) = adopt(cluster, desc, r.node_id) {
                        tracing::error!(error = %s.message(), "cannot join the cluster");
                    }
                    return;
                }
                Err(s) if s.code() == tonic::Code::AlreadyExists => {
                    tracing::error!(%addr, error = %s.message(), "the cluster refuses this node");
                }
                Err(s) => tracing::debug!(%addr, error = %s.message(), "cannot join through"),
            }
        }
    }
}

/// This node's join token, made and stored on first use.
fn join_token(engine: &dyn KvEngine, state: &NodeState) -> anyhow::Result<String> {
    if let Some(t) = engine.get(Space::Meta, JOIN_TOKEN_KEY)? {
        return Ok(String::from_utf8_lossy(&t).into_owned());
    }
    let nanos = state
        .clock
        .now()
        .map(|t| t.latest.as_nanos())
        .unwrap_or_default();
    let token = format!("{nanos:x}-{:x}-{}", std::process::id(), state.listen_addr);
    let mut batch = WriteBatch::new();
    batch.put(Space::Meta, JOIN_TOKEN_KEY, token.clone().into_bytes());
    engine.write(batch, Durability::Sync)?;
    Ok(token)
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
            join_token: String::new(),
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
