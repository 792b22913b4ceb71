//! The `Meta` gRPC service: the root service of `reef-root`, served on every node that may
//! hold a root replica, and the conversions its messages need on both sides.

use std::sync::Arc;

use reef_raft::ReplicaChange;
use reef_root::{
    Heartbeat, Liveness, NodeDesc, NodeState, NodeStats, Operation, ReplicaReport, Root, RootError,
};
use tonic::{Request, Response, Status};

use crate::convert::{epoch_from_pb, epoch_to_pb, partition_from_pb, partition_to_pb};
use crate::pb;
use crate::transport::PeerAddrs;

/// Converts a node record to its protocol form.
pub fn node_to_pb(n: &NodeDesc) -> pb::NodeDesc {
    pb::NodeDesc {
        id: n.id,
        addr: n.addr.clone(),
        pg_addr: n.pg_addr.clone(),
        root: n.root,
        token: n.token,
        state: n.state.as_str().to_string(),
    }
}

/// Converts a node record from its protocol form (an unknown state reads as active).
pub fn node_from_pb(n: &pb::NodeDesc) -> NodeDesc {
    NodeDesc {
        id: n.id,
        addr: n.addr.clone(),
        pg_addr: n.pg_addr.clone(),
        root: n.root,
        token: n.token,
        state: NodeState::parse(&n.state).unwrap_or_default(),
    }
}

/// Converts an operation to its protocol form.
pub fn operation_to_pb(op: &Operation) -> pb::Operation {
    use pb::operation::Op;
    match *op {
        Operation::Change {
            partition_id,
            epoch,
            change,
        } => pb::Operation {
            partition_id,
            epoch: Some(epoch_to_pb(epoch)),
            op: Some(match change {
                ReplicaChange::AddLearner { node_id } => Op::AddLearnerOnNode(node_id),
                ReplicaChange::Promote { replica_id } => Op::PromoteReplica(replica_id),
                ReplicaChange::Remove { replica_id } => Op::RemoveReplica(replica_id),
            }),
        },
        Operation::TransferLeader {
            partition_id,
            to_replica_id,
        } => pb::Operation {
            partition_id,
            epoch: None,
            op: Some(Op::TransferLeaderTo(to_replica_id)),
        },
    }
}

/// Converts an operation from its protocol form (`None` if it names no operation).
pub fn operation_from_pb(op: &pb::Operation) -> Option<Operation> {
    use pb::operation::Op;
    let partition_id = op.partition_id;
    let epoch = epoch_from_pb(op.epoch.as_ref());
    let change = |change| Operation::Change {
        partition_id,
        epoch,
        change,
    };
    Some(match op.op? {
        Op::AddLearnerOnNode(node_id) => change(ReplicaChange::AddLearner { node_id }),
        Op::PromoteReplica(replica_id) => change(ReplicaChange::Promote { replica_id }),
        Op::RemoveReplica(replica_id) => change(ReplicaChange::Remove { replica_id }),
        Op::TransferLeaderTo(to_replica_id) => Operation::TransferLeader {
            partition_id,
            to_replica_id,
        },
    })
}

/// The `Meta` service of one node.
#[derive(Clone)]
pub struct MetaService {
    cluster_id: u64,
    root: Arc<Root>,
    peers: PeerAddrs,
}

impl MetaService {
    /// Serves `root` for cluster `cluster_id`; `peers` resolves a leader hint to an address.
    pub fn new(cluster_id: u64, root: Arc<Root>, peers: PeerAddrs) -> MetaService {
        MetaService {
            cluster_id,
            root,
            peers,
        }
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Box<pb::MetaError>> {
        if cluster_id != self.cluster_id {
            return Err(Box::new(pb::MetaError {
                message: format!(
                    "this node belongs to cluster {}, not cluster {cluster_id}",
                    self.cluster_id
                ),
                error: Some(pb::meta_error::Error::InvalidArgument(true)),
            }));
        }
        Ok(())
    }

    fn error(&self, err: RootError) -> pb::MetaError {
        use pb::meta_error::Error;
        let error = match &err {
            RootError::NotLeader { leader } => Error::NotLeader(pb::NotRootLeader {
                leader_node_id: leader.unwrap_or(0),
                leader_addr: leader
                    .and_then(|id| self.peers.read().get(&id).cloned())
                    .map(|addr| addr.trim_start_matches("http://").to_string())
                    .unwrap_or_default(),
            }),
            RootError::InvalidArgument(_) => Error::InvalidArgument(true),
            _ => Error::Unavailable(true),
        };
        pb::MetaError {
            message: err.to_string(),
            error: Some(error),
        }
    }
}

#[tonic::async_trait]
impl pb::meta_server::Meta for MetaService {
    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::JoinResponse::default();
        if req.cluster_id != 0 {
            if let Err(err) = self.check_cluster(req.cluster_id) {
                resp.error = Some(*err);
                return Ok(Response::new(resp));
            }
        }
        let Some(node) = req.node.as_ref() else {
            return Err(Status::invalid_argument("a join request names the node"));
        };
        match self.root.join(node_from_pb(node)).await {
            Ok(id) => {
                resp.cluster_id = self.cluster_id;
                resp.node_id = id;
            }
            Err(err) => resp.error = Some(self.error(err)),
        }
        Ok(Response::new(resp))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::HeartbeatResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        let Some(node) = req.node.as_ref() else {
            return Err(Status::invalid_argument("a heartbeat names the node"));
        };
        let heartbeat = Heartbeat {
            node: node_from_pb(node),
            replicas: req
                .replicas
                .iter()
                .filter_map(|r| {
                    Some(ReplicaReport {
                        partition: partition_from_pb(r.partition.as_ref()?),
                        leader: r.leader,
                        term: r.term,
                        commit: r.commit,
                        applied: r.applied,
                        bytes: r.bytes,
                    })
                })
                .collect(),
            min_active_ts: (req.min_active_ts != 0).then_some(req.min_active_ts),
            stats: NodeStats {
                started_ms: req.started_ms,
                disk_bytes: req.disk_bytes,
            },
        };
        match self.root.heartbeat(heartbeat).await {
            Ok(reply) => {
                resp.nodes = reply.nodes.iter().map(node_to_pb).collect();
                resp.operations = reply.operations.iter().map(operation_to_pb).collect();
                resp.gc_safe_point = reply.gc_safe_point;
                resp.gc_driver = reply.gc_driver;
            }
            Err(err) => resp.error = Some(self.error(err)),
        }
        Ok(Response::new(resp))
    }

    async fn tso(
        &self,
        request: Request<pb::TsoRequest>,
    ) -> Result<Response<pb::TsoResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::TsoResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        match self.root.tso(req.count).await {
            Ok(first) => {
                resp.first = first;
                resp.count = req.count;
            }
            Err(err) => resp.error = Some(self.error(err)),
        }
        Ok(Response::new(resp))
    }

    async fn locate(
        &self,
        request: Request<pb::LocateRequest>,
    ) -> Result<Response<pb::LocateResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::LocateResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        match self.root.locate(&req.key, req.before).await {
            Ok(Some(location)) => {
                resp.partition = Some(partition_to_pb(&location.partition));
                resp.leader_node_id = location.leader.unwrap_or(0);
                resp.nodes = location.nodes.iter().map(node_to_pb).collect();
            }
            Ok(None) => {}
            Err(err) => resp.error = Some(self.error(err)),
        }
        Ok(Response::new(resp))
    }

    async fn set_node_state(
        &self,
        request: Request<pb::SetNodeStateRequest>,
    ) -> Result<Response<pb::SetNodeStateResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::SetNodeStateResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        let Some(state) = NodeState::parse(&req.state) else {
            resp.error = Some(self.error(RootError::InvalidArgument(format!(
                "unknown node state {:?}: use active, draining or decommissioning",
                req.state
            ))));
            return Ok(Response::new(resp));
        };
        if let Err(err) = self.root.set_node_state(req.node_id, state).await {
            resp.error = Some(self.error(err));
        }
        Ok(Response::new(resp))
    }

    async fn set_preferred_leaders(
        &self,
        request: Request<pb::SetPreferredLeadersRequest>,
    ) -> Result<Response<pb::SetPreferredLeadersResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::SetPreferredLeadersResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        if let Err(err) = self.root.set_preferred_leaders(req.node_ids).await {
            resp.error = Some(self.error(err));
        }
        Ok(Response::new(resp))
    }

    async fn move_replica(
        &self,
        request: Request<pb::MoveReplicaRequest>,
    ) -> Result<Response<pb::MoveReplicaResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::MoveReplicaResponse::default();
        if let Err(err) = self.check_cluster(req.cluster_id) {
            resp.error = Some(*err);
            return Ok(Response::new(resp));
        }
        let moved = self
            .root
            .move_replica(req.partition_id, req.from_node_id, req.to_node_id)
            .await;
        if let Err(err) = moved {
            resp.error = Some(self.error(err));
        }
        Ok(Response::new(resp))
    }

    async fn cluster(
        &self,
        request: Request<pb::ClusterRequest>,
    ) -> Result<Response<pb::ClusterResponse>, Status> {
        let req = request.into_inner();
        let mut resp = pb::ClusterResponse::default();
        // Operators may ask without knowing the cluster id.
        if req.cluster_id != 0 {
            if let Err(err) = self.check_cluster(req.cluster_id) {
                resp.error = Some(*err);
                return Ok(Response::new(resp));
            }
        }
        match self.root.cluster().await {
            Ok(status) => {
                resp.root_leader = status.root_leader;
                resp.replicas = status.settings.replicas;
                resp.suspect_after_ms = status.settings.suspect_after_ms;
                resp.dead_after_ms = status.settings.dead_after_ms;
                resp.gc_life_ms = status.settings.gc_life_ms;
                resp.preferred_leaders = status.settings.preferred_leaders.clone();
                resp.gc_safe_point = status.gc_safe_point;
                resp.cluster_id = self.cluster_id;
                resp.nodes = status
                    .nodes
                    .iter()
                    .map(|n| pb::NodeStatus {
                        node: Some(node_to_pb(&n.desc)),
                        liveness: n.liveness.as_str().to_string(),
                        silent_ms: n.silent_ms,
                        replicas: n.replicas as u64,
                        leaders: n.leaders as u64,
                        started_ms: n.stats.started_ms,
                        disk_bytes: n.stats.disk_bytes,
                    })
                    .collect();
                resp.partitions = status
                    .partitions
                    .iter()
                    .map(|p| pb::PartitionStatus {
                        partition: Some(partition_to_pb(&p.partition)),
                        leader_node_id: p.leader.unwrap_or(0),
                        bytes: p.bytes,
                    })
                    .collect();
            }
            Err(err) => resp.error = Some(self.error(err)),
        }
        Ok(Response::new(resp))
    }
}

/// Parses a liveness name written by [`Liveness::as_str`].
pub fn liveness_from_str(name: &str) -> Option<Liveness> {
    [Liveness::Up, Liveness::Suspect, Liveness::Dead]
        .into_iter()
        .find(|l| l.as_str() == name)
}
