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
#[derive(Clone)]
struct PeerLink {
    from_node: u64,
    to_node: u64,
    cluster_id: String,
}

async fn send_loop(
    link: PeerLink,
    client: NodeClient<Channel>,
    mut rx: mpsc::Receiver<pb::RaftMessage>,
    net: Arc<NetworkSim>,
) {
    let mut sender = Sender {
        link,
        client,
        failures: 0,
    };
    // Batches for a delayed link go through a second task that holds each until it is due,
    // so that delays overlap as on a real long link instead of adding up batch after batch.
    // Once it exists, every batch takes it, so none overtakes another.
    let mut delayed: Option<mpsc::Sender<(Option<tokio::time::Instant>, Vec<pb::RaftMessage>)>> =
        None;
    while let Some(first) = rx.recv().await {
        let mut messages = vec![first];
        while messages.len() < BATCH_LIMIT {
            match rx.try_recv() {
                Ok(m) => messages.push(m),
                Err(_) => break,
            }
        }
        let Some(due) = net.arrival(sender.link.from_node, sender.link.to_node) else {
            continue;
        };
        if due.is_some() && delayed.is_none() {
            let (tx, mut later) = mpsc::channel(QUEUE_LIMIT);
            let mut sender = Sender {
                link: sender.link.clone(),
                client: sender.client.clone(),
                failures: 0,
            };
            tokio::spawn(async move {
                while let Some((due, messages)) = later.recv().await {
                    if let Some(due) = due {
                        tokio::time::sleep_until(due).await;
                    }
                    sender.send(messages).await;
                }
            });
            delayed = Some(tx);
        }
        match &delayed {
            Some(tx) => {
                if tx.send((due, messages)).await.is_err() {
                    return;
                }
            }
            None => sender.send(messages).await,
        }
    }
}

/// Sends batches over one peer link, counting consecutive failures.
struct Sender {
    link: PeerLink,
    client: NodeClient<Channel>,
    failures: u32,
}

impl Sender {
    async fn send(&mut self, messages: Vec<pb::RaftMessage>) {
        let PeerLink {
            from_node,
            to_node,
            ref cluster_id,
        } = self.link;
        let batch = pb::RaftMessageBatch {
            from_node,
            cluster_id: cluster_id.clone(),
            messages,
        };
        match self.client.raft(batch).await {
            Ok(_) => self.failures = 0,
            Err(status) => {
                self.failures = self.failures.saturating_add(1);
                let failures = self.failures;
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
