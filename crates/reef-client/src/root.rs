//! [`RootClient`]: talks to the root service's leader, wherever it is.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use reef_rpc::pb;
use reef_rpc::pb::meta_client::MetaClient;

use crate::conn::MetaConn;
use tonic::transport::Channel;

use crate::client::unreachable;
use crate::error::{ClientError, Result};
use crate::shun::Shunned;

/// The first wait after a retryable failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A client of the root service. It knows some nodes that may hold root replicas, remembers
/// which one leads, follows `NotRootLeader` hints, tries the next address when a node is down,
/// backs off during elections, and gives up at its deadline.
pub struct RootClient {
    cluster_id: RwLock<u64>,
    /// Candidate root addresses, `host:port`.
    addrs: RwLock<Vec<String>>,
    leader: RwLock<Option<String>>,
    channels: Mutex<HashMap<String, Channel>>,
    deadline: Duration,
    /// The address of the node this client runs in and its `Meta` service, called directly.
    local: Option<(String, Arc<dyn pb::meta_server::Meta>)>,
    /// Addresses that just failed to answer.
    shunned: Shunned<String>,
}

impl RootClient {
    /// Creates a client of cluster `cluster_id` (0: not known yet, for a joining node) that
    /// starts from the root nodes at `addrs`.
    pub fn new(cluster_id: u64, addrs: Vec<String>, deadline: Duration) -> RootClient {
        RootClient {
            cluster_id: RwLock::new(cluster_id),
            addrs: RwLock::new(addrs),
            leader: RwLock::new(None),
            channels: Mutex::new(HashMap::new()),
            deadline,
            local: None,
            shunned: Shunned::default(),
        }
    }

    /// Calls `services`, the `Meta` service of the node at `addr` (the node this client runs
    /// in), directly instead of over gRPC when that node is the one to ask.
    pub fn with_local(mut self, addr: String, services: Arc<dyn pb::meta_server::Meta>) -> Self {
        self.local = Some((addr, services));
        self
    }

    /// Whether the root leader, as last heard, is the node this client runs in (whose `Meta`
    /// service it calls directly).
    pub fn leader_is_local(&self) -> bool {
        match (&self.local, self.leader.read().as_ref()) {
            (Some((local, _)), Some(leader)) => local == leader,
            _ => false,
        }
    }

    /// The `Meta` service of the node at `addr`.
    fn meta(&self, addr: &str) -> Result<MetaConn> {
        match &self.local {
            Some((local, services)) if local == addr => Ok(MetaConn::Local(services.clone())),
            _ => Ok(MetaConn::Remote(MetaClient::new(self.channel(addr)?))),
        }
    }

    /// Returns the cluster id (0 until known).
    pub fn cluster_id(&self) -> u64 {
        *self.cluster_id.read()
    }

    /// Adds root addresses learned from the member list.
    pub fn learn(&self, addrs: impl IntoIterator<Item = String>) {
        let mut known = self.addrs.write();
        for addr in addrs {
            if !known.contains(&addr) {
                known.push(addr);
            }
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel> {
        if let Some(ch) = self.channels.lock().get(addr) {
            return Ok(ch.clone());
        }
        let ch = crate::conn::lazy_channel(format!("http://{addr}"))?;
        self.channels.lock().insert(addr.to_string(), ch.clone());
        Ok(ch)
    }

    /// Calls the root leader until it answers without a retryable error.
    async fn call<T, F, Fut>(
        &self,
        call: F,
        error: impl Fn(&T) -> Option<&pb::MetaError>,
    ) -> Result<T>
    where
        F: Fn(MetaConn, u64) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        use pb::meta_error::Error;
        let until = Instant::now() + self.deadline;
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::from("no root address");
        let mut next_addr = 0usize;
        let mut hints = 0u32;
        loop {
            if Instant::now() > until {
                return Err(ClientError::Root(format!(
                    "the root service did not answer before the deadline (last: {last})"
                )));
            }
            // The known leader first, then each candidate in turn.
            // A leader that just failed to answer is passed over while others may answer.
            let leader = self
                .leader
                .read()
                .clone()
                .filter(|addr| !self.shunned.is_shunned(addr));
            let addr = match leader {
                Some(addr) => addr,
                None => {
                    let (addr, round_done) = {
                        let addrs = self.addrs.read();
                        if addrs.is_empty() {
                            return Err(ClientError::Root("no root address is known".into()));
                        }
                        let addr = self
                            .shunned
                            .pick(&addrs[..], next_addr)
                            .unwrap_or(&addrs[next_addr % addrs.len()])
                            .clone();
                        next_addr += 1;
                        (addr, next_addr.is_multiple_of(addrs.len()))
                    };
                    if round_done {
                        // A full round without a leader: wait before the next one.
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    addr
                }
            };
            let answer = match self.meta(&addr) {
                Ok(conn) => call(conn, self.cluster_id()).await,
                Err(err) => Err(tonic::Status::unavailable(err.to_string())),
            };
            let resp = match answer {
                Ok(resp) => {
                    self.shunned.answered(&addr);
                    resp.into_inner()
                }
                Err(status) => {
                    if unreachable(&status) {
                        self.shunned.failed(&addr);
                    }
                    last = format!("{addr}: {status}");
                    self.channels.lock().remove(&addr);
                    *self.leader.write() = None;
                    continue;
                }
            };
            let Some(err) = error(&resp) else {
                *self.leader.write() = Some(addr);
                return Ok(resp);
            };
            last = format!("{addr}: {}", err.message);
            match &err.error {
                Some(Error::NotLeader(hint)) if !hint.leader_addr.is_empty() => {
                    let hinted = hint.leader_addr.clone();
                    self.learn([hinted.clone()]);
                    hints += 1;
                    // Follow a hint at once, but not around a cycle of stale hints, nor to
                    // an address that just failed (the hint is probably stale).
                    if hinted != addr && hints <= 3 && !self.shunned.is_shunned(&hinted) {
                        *self.leader.write() = Some(hinted);
                        continue;
                    }
                    hints = 0;
                    *self.leader.write() = None;
                }
                Some(Error::InvalidArgument(_)) => {
                    return Err(ClientError::Refused(err.message.clone()))
                }
                _ => *self.leader.write() = None,
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Registers this node (its `id` is ignored) and returns `(cluster_id, node_id)`. The
    /// client adopts the cluster id.
    pub async fn join(&self, node: pb::NodeDesc) -> Result<(u64, u64)> {
        let resp = self
            .call(
                |mut meta, cluster_id| {
                    let node = node.clone();
                    async move {
                        meta.join(pb::JoinRequest {
                            cluster_id,
                            node: Some(node),
                        })
                        .await
                    }
                },
                |r: &pb::JoinResponse| r.error.as_ref(),
            )
            .await?;
        *self.cluster_id.write() = resp.cluster_id;
        Ok((resp.cluster_id, resp.node_id))
    }

    /// Sends a node's heartbeat and returns the member list and operations.
    pub async fn heartbeat(&self, report: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        self.call(
            |mut meta, cluster_id| {
                let req = pb::HeartbeatRequest {
                    cluster_id,
                    ..report.clone()
                };
                async move { meta.heartbeat(req).await }
            },
            |r: &pb::HeartbeatResponse| r.error.as_ref(),
        )
        .await
    }

    /// Returns the first of `count` consecutive timestamps from the timestamp oracle.
    pub async fn tso(&self, count: u32) -> Result<u64> {
        let resp = self
            .call(
                |mut meta, cluster_id| async move {
                    meta.tso(pb::TsoRequest { cluster_id, count }).await
                },
                |r: &pb::TsoResponse| r.error.as_ref(),
            )
            .await?;
        Ok(resp.first)
    }

    /// Returns the partition holding `key` (with `before`, the keys just below `key`; empty:
    /// the last partition), as the root leader knows it.
    pub async fn locate(&self, key: &[u8], before: bool) -> Result<pb::LocateResponse> {
        let key = bytes::Bytes::copy_from_slice(key);
        self.call(
            |mut meta, cluster_id| {
                let key = key.clone();
                async move {
                    meta.locate(pb::LocateRequest {
                        cluster_id,
                        key,
                        before,
                    })
                    .await
                }
            },
            |r: &pb::LocateResponse| r.error.as_ref(),
        )
        .await
    }

    /// Records what operators ask of node `node_id`: "active", "draining" or
    /// "decommissioning".
    pub async fn set_node_state(&self, node_id: u64, state: &str) -> Result<()> {
        self.call(
            |mut meta, cluster_id| {
                let state = state.to_string();
                async move {
                    meta.set_node_state(pb::SetNodeStateRequest {
                        cluster_id,
                        node_id,
                        state,
                    })
                    .await
                }
            },
            |r: &pb::SetNodeStateResponse| r.error.as_ref(),
        )
        .await
        .map(|_| ())
    }

    /// Records the nodes that should lead every partition they hold a voter of (none:
    /// leadership spreads evenly).
    pub async fn set_preferred_leaders(&self, node_ids: &[u64]) -> Result<()> {
        self.call(
            |mut meta, cluster_id| {
                let node_ids = node_ids.to_vec();
                async move {
                    meta.set_preferred_leaders(pb::SetPreferredLeadersRequest {
                        cluster_id,
                        node_ids,
                    })
                    .await
                }
            },
            |r: &pb::SetPreferredLeadersResponse| r.error.as_ref(),
        )
        .await
        .map(|_| ())
    }

    /// Asks the root service to move partition `partition_id`'s replica on node `from` to
    /// node `to`; placement carries it out over the next heartbeats.
    pub async fn move_replica(&self, partition_id: u64, from: u64, to: u64) -> Result<()> {
        self.call(
            |mut meta, cluster_id| async move {
                meta.move_replica(pb::MoveReplicaRequest {
                    cluster_id,
                    partition_id,
                    from_node_id: from,
                    to_node_id: to,
                })
                .await
            },
            |r: &pb::MoveReplicaResponse| r.error.as_ref(),
        )
        .await
        .map(|_| ())
    }

    /// Returns the whole cluster as the root leader sees it. A client that did not know the
    /// cluster id adopts the one in the answer.
    pub async fn cluster(&self) -> Result<pb::ClusterResponse> {
        let resp = self
            .call(
                |mut meta, cluster_id| async move {
                    meta.cluster(pb::ClusterRequest { cluster_id }).await
                },
                |r: &pb::ClusterResponse| r.error.as_ref(),
            )
            .await?;
        if resp.cluster_id != 0 {
            let mut known = self.cluster_id.write();
            if *known == 0 {
                *known = resp.cluster_id;
            }
        }
        Ok(resp)
    }
}
