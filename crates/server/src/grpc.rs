//! The node's gRPC service (`meridian.v1.Node`): status and time.

use std::sync::Arc;

use meridian_clock::TrueTime;
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_server::Node;
use meridian_tablet::LocalGroup;
use tonic::{Request, Response, Status};

/// Serves `meridian.v1.Node` for one node.
pub(crate) struct NodeService {
    pub node_id: u64,
    pub sql_addr: String,
    pub listen_addr: String,
    pub clock: Arc<TrueTime>,
    pub tablet: Arc<LocalGroup>,
}

fn clock_status(e: meridian_clock::ClockError) -> Status {
    Status::unavailable(format!("clock unusable: {e}"))
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn status(
        &self,
        _req: Request<pb::NodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatusResponse>, Status> {
        let now = self.clock.now().map_err(clock_status)?;
        let tablets = self
            .tablet
            .replicas()
            .iter()
            .map(|r| {
                let s = r.status();
                pb::TabletStatus {
                    tablet_id: r.tablet_id(),
                    replica_id: r.replica_id(),
                    leader_id: s.leader_id,
                    term: s.term,
                    commit_index: s.commit_index,
                    applied_index: s.applied_index,
                }
            })
            .collect();
        Ok(Response::new(pb::NodeStatusResponse {
            node_id: self.node_id,
            sql_addr: self.sql_addr.clone(),
            listen_addr: self.listen_addr.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            tt_earliest: now.earliest.as_nanos(),
            tt_latest: now.latest.as_nanos(),
            tablets,
        }))
    }

    async fn time(
        &self,
        _req: Request<pb::TimeRequest>,
    ) -> Result<Response<pb::TimeResponse>, Status> {
        let now = self.clock.now().map_err(clock_status)?;
        Ok(Response::new(pb::TimeResponse {
            earliest: now.earliest.as_nanos(),
            latest: now.latest.as_nanos(),
        }))
    }
}
