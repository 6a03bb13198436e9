//! Raft messages between nodes over gRPC.
//!
//! One queue and one sender task per peer node: the task takes everything queued (up to a
//! batch limit) and sends it as one `Raft` call, so a node's messages to a peer travel in
//! batches over one HTTP/2 connection, in order. A full queue or a failed call drops messages;
//! Raft retransmits what matters.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use meridian_proto::v1 as pb;
use meridian_proto::v1::node_client::NodeClient;
use meridian_tablet::Transport;
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::netsim::NetworkSim;

/// Messages queued per peer before new ones are dropped.
const QUEUE_LIMIT: usize = 8192;
/// Messages per `Raft` call at most.
const BATCH_LIMIT: usize = 512;

/// Sends Raft messages to the nodes of a cluster. Replica ids are node ids.
pub(crate) struct GrpcTransport {
    from_node: u64,
    cluster_id: String,
    net: Arc<NetworkSim>,
    peers: RwLock<HashMap<u64, mpsc::Sender<pb::RaftMessage>>>,
}

impl GrpcTransport {
    /// Starts one sender task per peer (`(node id, client)`), each stopping when the transport
    /// is dropped. Batches cross `net` from `from_node` to the peer.
    pub(crate) fn start(
        from_node: u64,
        cluster_id: String,
        peers: Vec<(u64, NodeClient<Channel>)>,
        net: Arc<NetworkSim>,
    ) -> GrpcTransport {
        let transport = GrpcTransport {
            from_node,
            cluster_id,
            net,
            peers: RwLock::new(HashMap::new()),
        };
        for (node_id, client) in peers {
            transport.add_peer(node_id, client);
        }
        transport
    }

    /// Starts sending to `node_id` (a node that joined the cluster), unless it already does.
    pub(crate) fn add_peer(&self, node_id: u64, client: NodeClient<Channel>) {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if peers.contains_key(&node_id) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let link = PeerLink {
            from_node: self.from_node,
            to_node: node_id,
            cluster_id: self.cluster_id.clone(),
        };
        tokio::spawn(send_loop(link, client, rx, self.net.clone()));
        peers.insert(node_id, tx);
    }
}

impl Transport for GrpcTransport {
    fn send(&self, tablet: u64, msgs: Vec<Message>) {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        for msg in msgs {
            let Some(peer) = peers.get(&msg.to) else {
                tracing::debug!(to = msg.to, "raft message for an unknown node dropped");
                continue;
            };
            let bytes = match msg.write_to_bytes() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a raft message");
                    continue;
                }
            };
            // A full queue means the peer is slow or down: drop, Raft will retry.
            let _ = peer.try_send(pb::RaftMessage {
                tablet_id: tablet,
                message: bytes,
            });
        }
    }
}

/// The two ends of a sender task.
struct PeerLink {
    from_node: u64,
    to_node: u64,
    cluster_id: String,
}

async fn send_loop(
    link: PeerLink,
    mut client: NodeClient<Channel>,
    mut rx: mpsc::Receiver<pb::RaftMessage>,
    net: Arc<NetworkSim>,
) {
    let PeerLink {
        from_node,
        to_node,
        cluster_id,
    } = link;
    let mut failures: u32 = 0;
    while let Some(first) = rx.recv().await {
        let mut messages = vec![first];
        while messages.len() < BATCH_LIMIT {
            match rx.try_recv() {
                Ok(m) => messages.push(m),
                Err(_) => break,
            }
        }
        if !net.traverse(from_node, to_node).await {
            continue;
        }
        let batch = pb::RaftMessageBatch {
            from_node,
            cluster_id: cluster_id.clone(),
            messages,
        };
        match client.raft(batch).await {
            Ok(_) => failures = 0,
            Err(status) => {
                failures = failures.saturating_add(1);
                // A peer restarting or shutting down misses a few rounds; say so when it lasts.
                if failures >= 4 && failures.is_power_of_two() {
                    tracing::warn!(to_node, error = %status.message(), failures,
                        "raft messages to node dropped");
                } else {
                    tracing::debug!(to_node, error = %status.message(), "raft messages dropped");
                }
                // Do not spin on a dead peer; Raft retransmits after the pause.
                tokio::time::sleep(Duration::from_millis(50.min(10 * u64::from(failures)))).await;
            }
        }
    }
}

/// Decodes a received Raft message.
pub(crate) fn decode(bytes: &[u8]) -> Option<Message> {
    Message::parse_from_bytes(bytes).ok()
}
