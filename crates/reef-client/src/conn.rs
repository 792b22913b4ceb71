//! [`KvConn`] and [`MetaConn`]: the `Kv` and `Meta` services of one node, over gRPC or, for
//! the node the client runs in, as a direct call into its services (no encoding, no socket,
//! the same handlers).

use std::sync::Arc;
use std::time::Duration;

use reef_rpc::pb;
use reef_rpc::pb::kv_client::KvClient;
use reef_rpc::pb::meta_client::MetaClient;
use tonic::transport::Channel;

/// A channel to `uri` (`http://HOST:PORT`) that connects on first use, with the clients'
/// timeouts: 500 ms to connect, 5 s per request (on top of `reef_rpc::dial`'s settings).
pub(crate) fn lazy_channel(uri: String) -> crate::error::Result<Channel> {
    Ok(reef_rpc::dial::endpoint(uri.clone())
        .map_err(|e| crate::error::ClientError::Transport(format!("{uri}: {e}")))?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// A node's `Kv` service.
#[derive(Clone)]
pub enum KvConn {
    /// Another node, over gRPC.
    Remote(KvClient<Channel>),
    /// The node this client runs in.
    Local(Arc<dyn pb::kv_server::Kv>),
}

/// A node's `Meta` service (the root service).
#[derive(Clone)]
pub enum MetaConn {
    /// Another node, over gRPC.
    Remote(MetaClient<Channel>),
    /// The node this client runs in.
    Local(Arc<dyn pb::meta_server::Meta>),
}

/// Defines each call of a service once for both kinds of connection.
macro_rules! calls {
    ($conn:ident { $($name:ident($req:ty) -> $resp:ty;)* }) => {
        impl $conn {
            $(
                #[doc = concat!("Calls `", stringify!($name), "`.")]
                pub async fn $name(
                    &mut self,
                    req: $req,
                ) -> Result<tonic::Response<$resp>, tonic::Status> {
                    match self {
                        $conn::Remote(client) => client.$name(req).await,
                        $conn::Local(services) => services.$name(tonic::Request::new(req)).await,
                    }
                }
            )*
        }
    };
}

calls!(KvConn {
    get(pb::GetRequest) -> pb::GetResponse;
    scan(pb::ScanRequest) -> pb::ScanResponse;
    prewrite(pb::PrewriteRequest) -> pb::CommandResponse;
    commit(pb::CommitRequest) -> pb::CommandResponse;
    rollback(pb::RollbackRequest) -> pb::CommandResponse;
    check_txn_status(pb::CheckTxnStatusRequest) -> pb::CommandResponse;
    resolve_lock(pb::ResolveLockRequest) -> pb::CommandResponse;
    scan_locks(pb::ScanLocksRequest) -> pb::ScanLocksResponse;
    gc(pb::GcRequest) -> pb::CommandResponse;
    destroy_range(pb::DestroyRangeRequest) -> pb::CommandResponse;
});

calls!(MetaConn {
    join(pb::JoinRequest) -> pb::JoinResponse;
    heartbeat(pb::HeartbeatRequest) -> pb::HeartbeatResponse;
    tso(pb::TsoRequest) -> pb::TsoResponse;
    locate(pb::LocateRequest) -> pb::LocateResponse;
    cluster(pb::ClusterRequest) -> pb::ClusterResponse;
    set_node_state(pb::SetNodeStateRequest) -> pb::SetNodeStateResponse;
    move_replica(pb::MoveReplicaRequest) -> pb::MoveReplicaResponse;
    set_preferred_leaders(pb::SetPreferredLeadersRequest) -> pb::SetPreferredLeadersResponse;
});
