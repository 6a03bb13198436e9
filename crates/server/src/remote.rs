//! Tablet replicas on other nodes, reached over gRPC, and the one place where tablet errors
//! cross the wire in each direction.

use std::sync::Arc;

use async_trait::async_trait;
use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_client::NodeClient;
use meridian_tablet::{
    ConditionFailure, Error, KvPair, OpOutcome, ReplicaEndpoint, Result, TabletOp, WriteRequest,
};
use tonic::transport::Channel;

use crate::netsim::NetworkSim;

/// The gRPC metadata key under which a forwarded KV request names the node it comes from.
pub(crate) const GATEWAY_HEADER: &str = "meridian-gateway";

/// The largest gRPC message a node sends or accepts. A transaction's share in a tablet larger
/// than `--txn-piece-bytes` travels in pieces of about that size (`meridian_tablet::txn`);
/// smaller ones, Raft messages batching many entries and snapshots (one message per tablet)
/// travel whole, so this bounds those; tonic's default of 4 MiB would refuse a modest
/// snapshot.
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// A node client on `ch` that sends and accepts messages up to [`MAX_MESSAGE_BYTES`].
pub(crate) fn node_client(ch: Channel) -> NodeClient<Channel> {
    NodeClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The replica of `tablet_id` hosted by another node (its replica id is that node's id).
pub(crate) struct RemoteReplica {
    pub tablet_id: u64,
    pub node_id: u64,
    pub client: NodeClient<Channel>,
    /// This (the calling) node's id and its network, for injected faults.
    pub from_node: u64,
    pub net: Arc<NetworkSim>,
}

impl RemoteReplica {
    /// One call to the replica's node: crosses the simulated link there (`Unavailable` when
    /// it is down), sends `msg` naming this node as its gateway (the serving leader counts the
    /// load as coming from it, see `meridian_tablet::from_gateway`), and waits out the link's
    /// delay on the way back, as the answer crosses the same distance. The inner result is the
    /// call's own.
    async fn round_trip<T, R, F, Fut>(
        &self,
        msg: T,
        rpc: F,
    ) -> Result<std::result::Result<R, tonic::Status>>
    where
        F: FnOnce(NodeClient<Channel>, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<R>, tonic::Status>>,
    {
        if !self.net.traverse(self.from_node, self.node_id).await {
            return Err(Error::Unavailable {
                tablet: self.tablet_id,
                reason: format!("node {} unreachable: link down", self.node_id),
            });
        }
        let mut req = tonic::Request::new(msg);
        req.metadata_mut().insert(
            GATEWAY_HEADER,
            tonic::metadata::MetadataValue::from(self.from_node),
        );
        let resp = rpc(self.client.clone(), req).await;
        self.net.traverse(self.node_id, self.from_node).await;
        Ok(resp.map(tonic::Response::into_inner))
    }

    /// Forwards a write; a non-zero `lo` asks to commit within `[lo, hi]`.
    async fn forward_write(
        &self,
        req: WriteRequest,
        lo: Timestamp,
        hi: Timestamp,
    ) -> Result<Timestamp> {
        let req = pb::KvWriteRequest {
            tablet_id: self.tablet_id,
            write: Some(pb::WriteCommand {
                commit_ts: lo.as_nanos(),
                ..meridian_tablet::write_to_proto(&req)
            }),
            max_commit_ts: hi.as_nanos(),
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_write(r).await })
            .await?;
        let resp = resp.map_err(|s| self.unknown_outcome(s))?;
        check(resp.error)?;
        Ok(Timestamp::from_nanos(resp.commit_ts))
    }

    async fn read_ts_at(&self, at: u64) -> Result<Timestamp> {
        let req = pb::KvReadTsRequest {
            tablet_id: self.tablet_id,
            at,
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_read_ts(r).await })
            .await?;
        let resp = resp.map_err(|s| self.transport_error(s))?;
        check(resp.error)?;
        Ok(Timestamp::from_nanos(resp.ts))
    }

    /// A failed call that changes state: unless it never connected, the request may have
    /// reached the leader, so its outcome is unknown.
    fn unknown_outcome(&self, s: tonic::Status) -> Error {
        match s.code() {
            tonic::Code::Unavailable if s.message().contains("connect") => self.transport_error(s),
            _ => {
                tracing::warn!(node = self.node_id, tablet = self.tablet_id, code = ?s.code(),
                    error = %s.message(), "forwarded request failed; its outcome is unknown");
                Error::Ambiguous {
                    tablet: self.tablet_id,
                }
            }
        }
    }

    fn transport_error(&self, status: tonic::Status) -> Error {
        Error::Unavailable {
            tablet: self.tablet_id,
            reason: format!("node {} unreachable: {}", self.node_id, status.message()),
        }
    }
}

#[async_trait]
impl ReplicaEndpoint for RemoteReplica {
    fn replica_id(&self) -> u64 {
        self.node_id
    }

    fn leading_term(&self) -> Option<u64> {
        None
    }

    fn local_safe_ts(&self) -> Option<Timestamp> {
        None
    }

    async fn read_ts(&self) -> Result<Timestamp> {
        self.read_ts_at(0).await
    }

    async fn read_at(&self, ts: Timestamp) -> Result<Timestamp> {
        self.read_ts_at(ts.as_nanos()).await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        self.forward_write(req, Timestamp::ZERO, Timestamp::ZERO)
            .await
    }

    async fn write_at(&self, req: WriteRequest, lo: Timestamp, hi: Timestamp) -> Result<Timestamp> {
        self.forward_write(req, lo, hi).await
    }

    async fn op(&self, op: TabletOp) -> Result<OpOutcome> {
        let req = pb::KvOpRequest {
            tablet_id: self.tablet_id,
            op: Some(meridian_tablet::op_to_proto(&op)),
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_op(r).await })
            .await?;
        let resp = resp.map_err(|s| self.unknown_outcome(s))?;
        check(resp.error)?;
        Ok(OpOutcome {
            ts: Timestamp::from_nanos(resp.ts),
            split: resp.left.zip(resp.right),
            range: resp.range,
            index: resp.index,
        })
    }

    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        let req = pb::KvGetRequest {
            tablet_id: self.tablet_id,
            key: key.to_vec(),
            ts: ts.as_nanos(),
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_get(r).await })
            .await?;
        let resp = resp.map_err(|s| self.transport_error(s))?;
        check(resp.error)?;
        Ok((resp.found.then_some(resp.value), seen(resp.seen, ts)))
    }

    async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        let req = pb::KvMultiGetRequest {
            tablet_id: self.tablet_id,
            keys: keys.to_vec(),
            ts: ts.as_nanos(),
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_multi_get(r).await })
            .await?;
        let resp = resp.map_err(|s| self.transport_error(s))?;
        check(resp.error)?;
        if resp.values.len() != keys.len() {
            return Err(Error::Internal(format!(
                "node {} answered {} values for {} keys",
                self.node_id,
                resp.values.len(),
                keys.len()
            )));
        }
        let values = resp
            .values
            .into_iter()
            .map(|v| v.found.then_some(v.value))
            .collect();
        Ok((values, seen(resp.seen, ts)))
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        let req = pb::KvScanRequest {
            tablet_id: self.tablet_id,
            start: start.to_vec(),
            end: end.to_vec(),
            ts: ts.as_nanos(),
            limit: limit.map_or(0, |l| l as u64),
        };
        let resp = self
            .round_trip(req, |mut c, r| async move { c.kv_scan(r).await })
            .await?;
        let resp = resp.map_err(|s| self.transport_error(s))?;
        check(resp.error)?;
        let pairs = resp.pairs.into_iter().map(|p| (p.key, p.value)).collect();
        Ok((pairs, seen(resp.seen, ts)))
    }
}

/// The newest version a peer says a read at `ts` saw. A read at `ts` sees no version above it,
/// so a larger answer (a faulty peer) is taken as `ts`: the reader then waits at most until
/// `TT.after(ts)`, never for a timestamp the peer made up.
fn seen(answered: u64, ts: Timestamp) -> Timestamp {
    Timestamp::from_nanos(answered).min(ts)
}

fn check(error: Option<pb::KvError>) -> Result<()> {
    match error {
        None => Ok(()),
        Some(e) => Err(error_from_proto(e)),
    }
}

/// A tablet error as it travels to the gateway that asked.
pub(crate) fn error_to_proto(e: &Error) -> pb::KvError {
    use pb::kv_error::Code;
    let mut out = pb::KvError {
        message: e.to_string(),
        ..Default::default()
    };
    match e {
        Error::NotLeader { tablet, leader, .. } => {
            out.code = Code::NotLeader as i32;
            out.tablet_id = *tablet;
            out.leader_hint = leader.unwrap_or(0);
        }
        Error::ReplicasChanged { tablet, leader } => {
            out.code = Code::NotLeader as i32;
            out.tablet_id = *tablet;
            out.leader_hint = *leader;
        }
        Error::Unavailable { tablet, .. } => {
            out.code = Code::Unavailable as i32;
            out.tablet_id = *tablet;
        }
        Error::ConditionFailed { key, kind } => {
            out.code = Code::ConditionFailed as i32;
            out.key = key.clone();
            out.key_exists = *kind == ConditionFailure::Exists;
        }
        Error::WriteConflict { read_ts } => {
            out.code = Code::WriteConflict as i32;
            out.read_ts = read_ts.as_nanos();
        }
        Error::Ambiguous { tablet } => {
            out.code = Code::Ambiguous as i32;
            out.tablet_id = *tablet;
        }
        Error::RangeMismatch { tablet, range } => {
            out.code = Code::RangeMismatch as i32;
            out.tablet_id = *tablet;
            out.range = Some((**range).clone());
        }
        Error::RangeMerging { tablet } => {
            out.code = Code::RangeMerging as i32;
            out.tablet_id = *tablet;
        }
        Error::Refused { tablet, .. } => {
            out.code = Code::Refused as i32;
            out.tablet_id = *tablet;
        }
        Error::TxnAborted { .. } => out.code = Code::TxnAborted as i32,
        Error::CommitTsTooLow { tablet, min } => {
            out.code = Code::CommitTsTooLow as i32;
            out.tablet_id = *tablet;
            out.read_ts = min.as_nanos();
        }
        Error::Clock(_) => out.code = Code::Clock as i32,
        Error::Storage(_) | Error::Raft(_) | Error::Internal(_) | Error::TxnTooLarge { .. } => {
            out.code = Code::Internal as i32
        }
    }
    out
}

/// The inverse of [`error_to_proto`]. Clock and internal errors keep only their message.
pub(crate) fn error_from_proto(e: pb::KvError) -> Error {
    use pb::kv_error::Code;
    match Code::try_from(e.code) {
        Ok(Code::NotLeader) => Error::NotLeader {
            tablet: e.tablet_id,
            replica: 0,
            leader: (e.leader_hint != 0).then_some(e.leader_hint),
        },
        Ok(Code::Unavailable) => Error::Unavailable {
            tablet: e.tablet_id,
            reason: e.message,
        },
        Ok(Code::ConditionFailed) => Error::ConditionFailed {
            key: e.key,
            kind: if e.key_exists {
                ConditionFailure::Exists
            } else {
                ConditionFailure::Missing
            },
        },
        Ok(Code::WriteConflict) => Error::WriteConflict {
            read_ts: Timestamp::from_nanos(e.read_ts),
        },
        Ok(Code::Ambiguous) => Error::Ambiguous {
            tablet: e.tablet_id,
        },
        Ok(Code::RangeMismatch) => Error::RangeMismatch {
            tablet: e.tablet_id,
            range: Box::new(e.range.unwrap_or_default()),
        },
        Ok(Code::RangeMerging) => Error::RangeMerging {
            tablet: e.tablet_id,
        },
        Ok(Code::Refused) => Error::Refused {
            tablet: e.tablet_id,
            reason: e
                .message
                .strip_prefix(&format!("tablet {} refused: ", e.tablet_id))
                .unwrap_or(&e.message)
                .to_string(),
        },
        Ok(Code::TxnAborted) => Error::TxnAborted {
            reason: e
                .message
                .strip_prefix("transaction aborted: ")
                .unwrap_or(&e.message)
                .to_string(),
        },
        Ok(Code::CommitTsTooLow) => Error::CommitTsTooLow {
            tablet: e.tablet_id,
            min: Timestamp::from_nanos(e.read_ts),
        },
        // The other node cannot assign timestamps (its clock is fenced or past its bound):
        // another replica may serve, once leadership moves off it.
        Ok(Code::Clock) => Error::Unavailable {
            tablet: e.tablet_id,
            reason: format!("the replica's clock is unusable: {}", e.message),
        },
        Ok(Code::Internal) | Err(_) => Error::Internal(format!("remote: {}", e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_make_a_reader_wait_past_its_own_timestamp() {
        let ts = Timestamp::from_nanos(1_000);
        assert_eq!(seen(400, ts), Timestamp::from_nanos(400));
        assert_eq!(seen(0, ts), Timestamp::ZERO);
        assert_eq!(seen(u64::MAX, ts), ts);
    }

    #[test]
    fn errors_round_trip_through_the_wire_form() {
        let cases = vec![
            Error::NotLeader {
                tablet: 1,
                replica: 2,
                leader: Some(3),
            },
            Error::NotLeader {
                tablet: 1,
                replica: 2,
                leader: None,
            },
            Error::Unavailable {
                tablet: 4,
                reason: "down".into(),
            },
            Error::ConditionFailed {
                key: b"k".to_vec(),
                kind: ConditionFailure::Exists,
            },
            Error::ConditionFailed {
                key: b"k".to_vec(),
                kind: ConditionFailure::Missing,
            },
            Error::WriteConflict {
                read_ts: Timestamp::from_nanos(77),
            },
            Error::Ambiguous { tablet: 5 },
            Error::RangeMismatch {
                tablet: 6,
                range: Box::new(meridian_tablet::RangeDescriptor {
                    tablet_id: 6,
                    start_key: b"a".to_vec(),
                    end_key: b"b".to_vec(),
                    generation: 2,
                    replicas: vec![1, 2, 3],
                    ..Default::default()
                }),
            },
            Error::RangeMerging { tablet: 7 },
            Error::Refused {
                tablet: 8,
                reason: "the tablet changed".into(),
            },
            Error::TxnAborted {
                reason: "coordinator said so".into(),
            },
        ];
        for e in cases {
            let back = error_from_proto(error_to_proto(&e));
            match (&e, &back) {
                (Error::NotLeader { leader: a, .. }, Error::NotLeader { leader: b, .. }) => {
                    assert_eq!(a, b)
                }
                (
                    Error::Unavailable {
                        reason: _,
                        tablet: a,
                    },
                    Error::Unavailable { tablet: b, .. },
                ) => {
                    assert_eq!(a, b)
                }
                (
                    Error::ConditionFailed { key: k1, kind: c1 },
                    Error::ConditionFailed { key: k2, kind: c2 },
                ) => assert_eq!((k1, c1), (k2, c2)),
                (Error::WriteConflict { read_ts: a }, Error::WriteConflict { read_ts: b }) => {
                    assert_eq!(a, b)
                }
                (Error::Ambiguous { tablet: a }, Error::Ambiguous { tablet: b }) => {
                    assert_eq!(a, b)
                }
                (
                    Error::RangeMismatch {
                        tablet: a,
                        range: r,
                    },
                    Error::RangeMismatch {
                        tablet: b,
                        range: s,
                    },
                ) => assert_eq!((a, r), (b, s)),
                (Error::RangeMerging { tablet: a }, Error::RangeMerging { tablet: b }) => {
                    assert_eq!(a, b)
                }
                (
                    Error::Refused {
                        tablet: a,
                        reason: r,
                    },
                    Error::Refused {
                        tablet: b,
                        reason: s,
                    },
                ) => assert_eq!((a, r), (b, s)),
                (Error::TxnAborted { .. }, Error::TxnAborted { .. }) => {}
                _ => panic!("{e:?} came back as {back:?}"),
            }
        }
        let unknown = pb::KvError {
            code: 99,
            message: "x".into(),
            ..Default::default()
        };
        assert!(matches!(error_from_proto(unknown), Error::Internal(_)));
    }
}
