//! The node's gRPC service (`meridian.v1.Node`): status and time, Raft transport, key-value
//! access to local replicas for gateways on other nodes, and cluster bootstrap.

use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_server::Node;
use meridian_tablet::{Error as TabletError, OpOutcome, Replica, ReplicaEndpoint, TabletOp};
use tonic::{Request, Response, Status};

use crate::remote::{GATEWAY_HEADER, error_to_proto};
use crate::state::{Mode, NodeState};
use crate::{cluster, transport};

/// Serves `meridian.v1.Node` for one node.
pub(crate) struct NodeService {
    pub state: Arc<NodeState>,
}

fn clock_status(e: meridian_clock::ClockError) -> Status {
    Status::unavailable(format!("clock unusable: {e}"))
}

impl NodeService {
    /// The local replica of `tablet`, or the error a gateway reacts to by trying elsewhere (or,
    /// for a tablet merged away here, by looking the range up again).
    fn replica(&self, tablet: u64) -> Result<Replica, TabletError> {
        if let Some(r) = self.state.replica(tablet) {
            return Ok(r);
        }
        Err(match self.state.stores().first() {
            Some(store) => match store.missing_replica(tablet) {
                e @ TabletError::RangeMerging { .. } => e,
                _ => self.no_replica(tablet),
            },
            None => self.no_replica(tablet),
        })
    }

    fn no_replica(&self, tablet: u64) -> TabletError {
        TabletError::Unavailable {
            tablet,
            reason: format!("node {} hosts no replica of it", self.state.info().node_id),
        }
    }
}

type GrpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Node for NodeService {
    async fn status(
        &self,
        _req: Request<pb::NodeStatusRequest>,
    ) -> GrpcResult<pb::NodeStatusResponse> {
        let now = self.state.clock.now().map_err(clock_status)?;
        let tablets = self
            .state
            .all_replicas()
            .iter()
            .map(|r| {
                let s = r.status();
                let desc = r.descriptor();
                pb::TabletStatus {
                    tablet_id: r.tablet_id(),
                    replica_id: r.replica_id(),
                    leader_id: s.leader_id,
                    term: s.term,
                    commit_index: s.commit_index,
                    applied_index: s.applied_index,
                    start_key: desc.start_key,
                    end_key: desc.end_key,
                    replicas: desc.replicas,
                    approx_bytes: r.approx_bytes(),
                }
            })
            .collect();
        let info = self.state.info();
        let members = match &self.state.mode {
            Mode::Cluster(c) => c
                .joined
                .borrow()
                .as_ref()
                .map(|(desc, _)| desc.members.clone())
                .unwrap_or_default(),
            Mode::Single => vec![pb::ClusterMember {
                node_id: info.node_id,
                listen_addr: info.listen_addr.clone(),
                sql_addr: info.sql_addr.clone(),
                region: info.region.clone(),
                zone: info.zone.clone(),
                join_token: String::new(),
            }],
        };
        Ok(Response::new(pb::NodeStatusResponse {
            node_id: info.node_id,
            sql_addr: info.sql_addr,
            listen_addr: info.listen_addr,
            version: env!("CARGO_PKG_VERSION").to_string(),
            tt_earliest: now.earliest.as_nanos(),
            tt_latest: now.latest.as_nanos(),
            tablets,
            members,
            region: info.region,
            zone: info.zone,
        }))
    }

    async fn time(&self, _req: Request<pb::TimeRequest>) -> GrpcResult<pb::TimeResponse> {
        let now = self.state.clock.now().map_err(clock_status)?;
        Ok(Response::new(pb::TimeResponse {
            earliest: now.earliest.as_nanos(),
            latest: now.latest.as_nanos(),
        }))
    }

    async fn raft(&self, req: Request<pb::RaftMessageBatch>) -> GrpcResult<pb::RaftAck> {
        let batch = req.into_inner();
        match self.state.cluster_id.get() {
            Some(id) if *id == batch.cluster_id => {}
            _ => {
                return Err(Status::failed_precondition(format!(
                    "raft messages for cluster {:?} reached a node of another cluster",
                    batch.cluster_id
                )));
            }
        }
        let me = self.state.node_id.get().copied();
        for m in batch.messages {
            let Some(msg) = transport::decode(&m.message) else {
                return Err(Status::invalid_argument("undecodable raft message"));
            };
            // For a node that had this address before (replica ids are node ids).
            if me != Some(msg.to) {
                continue;
            }
            if let Some(replica) = self.state.replica(m.tablet_id) {
                replica.deliver(msg);
            }
        }
        Ok(Response::new(pb::RaftAck {}))
    }

    async fn kv_read_ts(
        &self,
        req: Request<pb::KvReadTsRequest>,
    ) -> GrpcResult<pb::KvReadTsResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let result = served(gateway, async {
            match self.replica(req.tablet_id) {
                Ok(r) if req.at != 0 => r.read_at(Timestamp::from_nanos(req.at)).await,
                Ok(r) => r.read_ts().await,
                Err(e) => Err(e),
            }
        })
        .await;
        Ok(Response::new(match result {
            Ok(ts) => pb::KvReadTsResponse {
                ts: ts.as_nanos(),
                error: None,
            },
            Err(e) => pb::KvReadTsResponse {
                ts: 0,
                error: Some(error_to_proto(&e)),
            },
        }))
    }

    async fn kv_get(&self, req: Request<pb::KvGetRequest>) -> GrpcResult<pb::KvGetResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let ts = Timestamp::from_nanos(req.ts);
        let result = served(gateway, async {
            match self.replica(req.tablet_id) {
                Ok(r) => ReplicaEndpoint::get(&r, &req.key, ts).await,
                Err(e) => Err(e),
            }
        })
        .await;
        Ok(Response::new(match result {
            Ok((v, seen)) => pb::KvGetResponse {
                found: v.is_some(),
                value: v.unwrap_or_default(),
                error: None,
                seen: seen.as_nanos(),
            },
            Err(e) => pb::KvGetResponse {
                error: Some(error_to_proto(&e)),
                ..Default::default()
            },
        }))
    }

    async fn kv_multi_get(
        &self,
        req: Request<pb::KvMultiGetRequest>,
    ) -> GrpcResult<pb::KvMultiGetResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let ts = Timestamp::from_nanos(req.ts);
        let result = served(gateway, async {
            match self.replica(req.tablet_id) {
                Ok(r) => ReplicaEndpoint::get_many(&r, &req.keys, ts).await,
                Err(e) => Err(e),
            }
        })
        .await;
        Ok(Response::new(match result {
            Ok((values, seen)) => pb::KvMultiGetResponse {
                values: values
                    .into_iter()
                    .map(|v| pb::KvValue {
                        found: v.is_some(),
                        value: v.unwrap_or_default(),
                    })
                    .collect(),
                error: None,
                seen: seen.as_nanos(),
            },
            Err(e) => pb::KvMultiGetResponse {
                error: Some(error_to_proto(&e)),
                ..Default::default()
            },
        }))
    }

    async fn kv_scan(&self, req: Request<pb::KvScanRequest>) -> GrpcResult<pb::KvScanResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let ts = Timestamp::from_nanos(req.ts);
        let limit = (req.limit != 0).then(|| usize::try_from(req.limit).unwrap_or(usize::MAX));
        let result = served(gateway, async {
            match self.replica(req.tablet_id) {
                Ok(r) => ReplicaEndpoint::scan(&r, &req.start, &req.end, ts, limit).await,
                Err(e) => Err(e),
            }
        })
        .await;
        Ok(Response::new(match result {
            Ok((pairs, seen)) => pb::KvScanResponse {
                pairs: pairs
                    .into_iter()
                    .map(|(key, value)| pb::KvPair { key, value })
                    .collect(),
                error: None,
                seen: seen.as_nanos(),
            },
            Err(e) => pb::KvScanResponse {
                error: Some(error_to_proto(&e)),
                ..Default::default()
            },
        }))
    }

    async fn kv_write(&self, req: Request<pb::KvWriteRequest>) -> GrpcResult<pb::KvWriteResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let write = req
            .write
            .ok_or_else(|| Status::invalid_argument("write request without a write"))?;
        let (lo, hi) = (write.commit_ts, req.max_commit_ts);
        let result = served(gateway, async {
            match (
                self.replica(req.tablet_id),
                meridian_tablet::write_from_proto(write),
            ) {
                (Ok(r), Ok(w)) if lo != 0 => {
                    r.write_at(
                        w,
                        Timestamp::from_nanos(lo),
                        Timestamp::from_nanos(hi.max(lo)),
                    )
                    .await
                }
                (Ok(r), Ok(w)) => r.write(w).await,
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        })
        .await;
        Ok(Response::new(match result {
            Ok(ts) => pb::KvWriteResponse {
                commit_ts: ts.as_nanos(),
                error: None,
            },
            Err(e) => pb::KvWriteResponse {
                commit_ts: 0,
                error: Some(error_to_proto(&e)),
            },
        }))
    }

    async fn kv_op(&self, req: Request<pb::KvOpRequest>) -> GrpcResult<pb::KvOpResponse> {
        let gateway = gateway(&req);
        let req = req.into_inner();
        let op = req
            .op
            .ok_or_else(|| Status::invalid_argument("operation request without an operation"))?;
        let result = match meridian_tablet::op_from_proto(op) {
            // Addressed to this node's store, not to a replica.
            Ok(TabletOp::CreateReplica(desc)) => self
                .state
                .create_replica(&desc)
                .map(|()| OpOutcome::default()),
            Ok(op) => match self.replica(req.tablet_id) {
                Ok(r) => served(gateway, r.op(op)).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        Ok(Response::new(match result {
            Ok(outcome) => {
                let (left, right) = outcome.split.unzip();
                pb::KvOpResponse {
                    ts: outcome.ts.as_nanos(),
                    error: None,
                    left,
                    right,
                    range: outcome.range,
                    index: outcome.index,
                }
            }
            Err(e) => pb::KvOpResponse {
                error: Some(error_to_proto(&e)),
                ..Default::default()
            },
        }))
    }

    async fn decommission(
        &self,
        req: Request<pb::DecommissionRequest>,
    ) -> GrpcResult<pb::DecommissionResponse> {
        let req = req.into_inner();
        let client = self
            .state
            .client
            .get()
            .ok_or_else(|| Status::unavailable("the node does not serve yet"))?;
        let Mode::Cluster(cluster) = &self.state.mode else {
            return Err(Status::failed_precondition(
                "a single node cannot be decommissioned: it holds every replica",
            ));
        };
        let known = cluster
            .joined
            .borrow()
            .as_ref()
            .is_some_and(|(d, _)| d.members.iter().any(|m| m.node_id == req.node_id));
        if !known {
            return Err(Status::not_found(format!(
                "node {} is not a member of the cluster",
                req.node_id
            )));
        }
        let unavailable = |e: TabletError| Status::unavailable(e.to_string());
        client
            .set_decommissioning(req.node_id, req.decommission)
            .await
            .map_err(unavailable)?;
        let replicas = client
            .ranges()
            .await
            .map_err(unavailable)?
            .iter()
            .filter(|d| d.replicas.contains(&req.node_id))
            .count() as u64;
        Ok(Response::new(pb::DecommissionResponse {
            replicas,
            decommissioning: req.decommission,
        }))
    }

    async fn drain(&self, _req: Request<pb::DrainRequest>) -> GrpcResult<pb::DrainResponse> {
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let stores = self.state.stores();
        for s in &stores {
            s.set_draining(true);
        }
        // Tell the cluster at once, so that leader balancing gives this node nothing more.
        if let Some(client) = self.state.client.get()
            && self.state.settings.placement
        {
            meridian_tablet::placement::heartbeat(&stores, client, &self.state.settings).await;
        }
        // Give the handovers a moment, then report what is still led here.
        crate::node::hand_over_leaderships(
            &self.state.all_replicas(),
            std::time::Duration::from_secs(5),
        )
        .await;
        let leaders = crate::node::leading(&self.state.all_replicas()).len() as u64;
        tracing::info!(leaders, "draining: leaderships handed over");
        Ok(Response::new(pb::DrainResponse { leaders }))
    }

    async fn node_info(
        &self,
        _req: Request<pb::NodeInfoRequest>,
    ) -> GrpcResult<pb::NodeInfoResponse> {
        Ok(Response::new(self.state.info()))
    }

    async fn init(&self, _req: Request<pb::InitRequest>) -> GrpcResult<pb::InitResponse> {
        let Mode::Cluster(cluster) = &self.state.mode else {
            return Err(Status::failed_precondition(
                "this node runs with --single-node and needs no init",
            ));
        };
        let desc = cluster::init(&self.state, cluster).await?;
        Ok(Response::new(pb::InitResponse {
            cluster: Some(desc),
        }))
    }

    async fn bootstrap(
        &self,
        req: Request<pb::BootstrapRequest>,
    ) -> GrpcResult<pb::BootstrapResponse> {
        let Mode::Cluster(cluster) = &self.state.mode else {
            return Err(Status::failed_precondition(
                "this node runs with --single-node",
            ));
        };
        cluster::bootstrap(&self.state, cluster, req.into_inner())?;
        Ok(Response::new(pb::BootstrapResponse {}))
    }

    async fn join(&self, req: Request<pb::JoinRequest>) -> GrpcResult<pb::JoinResponse> {
        let Mode::Cluster(cluster) = &self.state.mode else {
            return Err(Status::failed_precondition(
                "this node runs with --single-node: nothing can join it",
            ));
        };
        Ok(Response::new(
            cluster::join(&self.state, cluster, req.into_inner()).await?,
        ))
    }
}

/// The node that forwarded `req`, as its gateway header says (absent or malformed: unknown,
/// and the request counts as the serving node's own).
fn gateway<T>(req: &Request<T>) -> Option<u64> {
    req.metadata()
        .get(GATEWAY_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Runs `f`, a request's work at a replica, as coming from `gateway` when known.
async fn served<F: std::future::Future>(gateway: Option<u64>, f: F) -> F::Output {
    match gateway {
        Some(node) => meridian_tablet::from_gateway(node, f).await,
        None => f.await,
    }
}
