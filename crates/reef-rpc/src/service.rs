//! The gRPC services of a storage node: `Raft` (from other nodes), `Kv` (transactional
//! commands and reads) and `Admin` (status, split, membership, leadership).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use reef_raft::{
    Epoch, HostMsg, RaftError, ReadView, ReplicaChange, ReplicaStatus, Router, StateRole,
};
use reef_txn::{Command, CommandResponse as TxnResponse, ScanFilter, TxnError};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{
    envelope_from_pb, epoch_from_pb, key_error, mutation_from_pb, partition_error, partition_to_pb,
    replica_to_pb, txn_status_to_pb,
};
use crate::pb;
use crate::transport::PeerAddrs;

/// The largest snapshot a node accepts.
const MAX_SNAPSHOT: u64 = 4 << 30;
/// The most pairs one scan returns.
const MAX_SCAN: usize = 10_000;
/// How long a request waits for its proposal to apply or its read to become safe. A replica
/// cut off from its group would otherwise keep the caller forever.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for a callback's answer, giving up after [`REQUEST_TIMEOUT`].
async fn wait<T>(
    rx: oneshot::Receiver<Result<T, RaftError>>,
    partition_id: u64,
) -> Result<Result<T, RaftError>, Status> {
    match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_)) => Err(Status::unavailable("the replication thread stopped")),
        // The command may still apply later: the same answer as a superseded proposal.
        Err(_) => Ok(Err(RaftError::StaleCommand(partition_id))),
    }
}

/// Counts a `Kv` request and records its latency when dropped.
struct RequestTimer {
    started: std::time::Instant,
    latency: reef_common::metrics::Histogram,
}

impl RequestTimer {
    fn start(method: &'static str) -> RequestTimer {
        static LATENCIES: std::sync::OnceLock<
            std::collections::HashMap<&'static str, reef_common::metrics::Histogram>,
        > = std::sync::OnceLock::new();
        let latencies = LATENCIES.get_or_init(|| {
            [
                "get",
                "scan",
                "prewrite",
                "commit",
                "rollback",
                "check_txn_status",
                "resolve_lock",
                "scan_locks",
                "gc",
                "destroy_range",
            ]
            .into_iter()
            .map(|m| {
                let h = reef_common::metrics::registry().histogram(
                    "reef_kv_request_duration_seconds",
                    "Kv requests served by this node, by method, and how long they took.",
                    &["method"],
                    &[m],
                );
                (m, h)
            })
            .collect()
        });
        RequestTimer {
            started: std::time::Instant::now(),
            latency: latencies[method].clone(),
        }
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.latency.observe(self.started.elapsed());
    }
}

/// The services of one node, sharing its identity and its replication router.
#[derive(Clone)]
pub struct NodeServices {
    cluster_id: u64,
    node_id: u64,
    router: Router,
    peers: PeerAddrs,
    /// The cluster's GC safe point as this node last heard it (0: none): reads and prewrites
    /// below it are refused, since versions they need may be gone.
    gc_safe_point: Arc<AtomicU64>,
    /// Runs the programs clients attach to scans (see `ScanRequest.filter`); without one, a
    /// filtered scan returns every pair it read.
    scan_filter: Option<Arc<dyn ScanFilter>>,
}

impl NodeServices {
    /// Creates the services of node `node_id` of cluster `cluster_id`; `peers` lists the nodes
    /// it accepts Raft messages from.
    pub fn new(cluster_id: u64, node_id: u64, router: Router, peers: PeerAddrs) -> NodeServices {
        NodeServices {
            cluster_id,
            node_id,
            router,
            peers,
            gc_safe_point: Arc::default(),
            scan_filter: None,
        }
    }

    /// Runs scan programs with `filter`.
    pub fn with_scan_filter(mut self, filter: Arc<dyn ScanFilter>) -> NodeServices {
        self.scan_filter = Some(filter);
        self
    }

    /// Refuses reads and prewrites below the safe point `gc_safe_point` holds.
    pub fn with_gc_safe_point(mut self, gc_safe_point: Arc<AtomicU64>) -> NodeServices {
        self.gc_safe_point = gc_safe_point;
        self
    }

    /// Returns the error for a read or a prewrite at `ts` below the GC safe point.
    fn too_old(&self, ts: u64) -> Option<RaftError> {
        let safe_point = self.gc_safe_point.load(Ordering::SeqCst);
        (ts < safe_point).then(|| RaftError::Txn(TxnError::SnapshotTooOld { ts, safe_point }))
    }

    /// Refuses a request for another cluster or node.
    fn check_identity(&self, cluster_id: u64, node_id: u64, what: &str) -> Result<(), Status> {
        if cluster_id != self.cluster_id || node_id != self.node_id {
            tracing::warn!(
                cluster_id,
                node_id,
                "refusing a {what} meant for node {node_id} of cluster {cluster_id} (this is node {} of cluster {})",
                self.node_id,
                self.cluster_id
            );
            return Err(Status::permission_denied(format!(
                "this is node {} of cluster {}, not node {node_id} of cluster {cluster_id}",
                self.node_id, self.cluster_id
            )));
        }
        Ok(())
    }

    fn check_sender(&self, from_node: u64) -> Result<(), Status> {
        if !self.peers.read().contains_key(&from_node) {
            tracing::warn!(from_node, "refusing Raft messages from an unknown node");
            return Err(Status::permission_denied(format!(
                "node {from_node} is not known here"
            )));
        }
        Ok(())
    }

    fn context(&self, ctx: Option<&pb::Context>) -> Result<(u64, Epoch), Status> {
        let ctx = ctx.ok_or_else(|| Status::invalid_argument("the request has no context"))?;
        self.check_identity(ctx.cluster_id, ctx.node_id, "request")?;
        Ok((ctx.partition_id, epoch_from_pb(ctx.epoch.as_ref())))
    }

    /// Proposes a command and waits for its outcome.
    async fn propose(
        &self,
        ctx: Option<&pb::Context>,
        cmd: Command,
    ) -> Result<pb::CommandResponse, Status> {
        let (partition_id, epoch) = self.context(ctx)?;
        let result = self
            .submit(partition_id, |cb| HostMsg::Propose {
                partition_id,
                epoch,
                cmd,
                cb,
            })
            .await?;
        Ok(command_response(result))
    }

    /// Sends a request whose callback reports a proposal's outcome, and waits for it.
    async fn submit(
        &self,
        partition_id: u64,
        build: impl FnOnce(reef_raft::ProposeCallback) -> HostMsg,
    ) -> Result<Result<TxnResponse, RaftError>, Status> {
        let (tx, rx) = oneshot::channel();
        self.router.send_or_fail(build(Box::new(move |result| {
            let _ = tx.send(result);
        })));
        wait(rx, partition_id).await
    }

    /// Runs `read` on the replication thread once the partition may serve it.
    async fn read<T: Send + 'static>(
        &self,
        ctx: Option<&pb::Context>,
        start: Vec<u8>,
        end: Vec<u8>,
        read_ts: u64,
        read: impl for<'a> FnOnce(ReadView<'a>) -> reef_txn::Result<T> + Send + 'static,
    ) -> Result<Result<T, RaftError>, Status> {
        let (partition_id, epoch) = self.context(ctx)?;
        let (tx, rx) = oneshot::channel();
        self.router.read(
            partition_id,
            epoch,
            start,
            end,
            read_ts,
            Box::new(move |view| {
                let result = view.and_then(|view| read(view).map_err(RaftError::from));
                let _ = tx.send(result);
            }),
        );
        wait(rx, partition_id).await
    }

    /// A scan with a program: reads up to `limit` pairs, keeps (and reduces) those the
    /// program passes, and says where it stopped.
    async fn scan_filtered(
        &self,
        req: pb::ScanRequest,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
    ) -> Result<pb::ScanResponse, Status> {
        let mut program = match &self.scan_filter {
            Some(filter) => match filter.compile(&req.filter) {
                Ok(program) => Some(program),
                Err(err) => {
                    return Ok(pb::ScanResponse {
                        key_error: key_error(&RaftError::Txn(err)),
                        ..Default::default()
                    })
                }
            },
            None => None,
        };
        let (read_start, read_end, read_ts) = (start.clone(), end.clone(), req.read_ts);
        let result = self
            .read(req.context.as_ref(), start, end, read_ts, move |view| {
                let end = view.clip_end(&read_end);
                let pairs = view.mvcc.scan(&read_start, end, read_ts, limit)?;
                let resume = reef_txn::resume_key(&pairs, limit).unwrap_or_default();
                let kept = pairs
                    .into_iter()
                    .filter_map(|(key, value)| {
                        let value = match program.as_mut() {
                            Some(program) => program.apply(&key, &value)?,
                            None => value,
                        };
                        Some(pb::KvPair {
                            key: key.into(),
                            value: value.into(),
                        })
                    })
                    .collect();
                Ok((kept, resume))
            })
            .await?;
        Ok(match result {
            Ok((pairs, resume)) => pb::ScanResponse {
                pairs,
                resume: resume.into(),
                ..Default::default()
            },
            Err(err) => pb::ScanResponse {
                partition_error: partition_error(&err),
                key_error: key_error(&err),
                ..Default::default()
            },
        })
    }

    async fn admin(
        &self,
        partition_id: u64,
        build: impl FnOnce(reef_raft::ProposeCallback) -> HostMsg,
    ) -> Result<pb::AdminResponse, Status> {
        let result = self.submit(partition_id, build).await?;
        Ok(admin_response(result.map(|_| ())))
    }
}

fn command_response(result: Result<TxnResponse, RaftError>) -> pb::CommandResponse {
    match result {
        Ok(TxnResponse::TxnStatus(status)) => pb::CommandResponse {
            txn_status: Some(txn_status_to_pb(status)),
            ..Default::default()
        },
        Ok(TxnResponse::Gc(progress)) => pb::CommandResponse {
            gc: Some(pb::GcProgress {
                more: progress.next_key.is_some(),
                next_key: progress.next_key.unwrap_or_default().into(),
                keys_scanned: progress.keys_scanned as u64,
                versions_deleted: progress.versions_deleted as u64,
            }),
            ..Default::default()
        },
        Ok(_) => pb::CommandResponse::default(),
        Err(err) => {
            // An error that is neither a routing nor a typed transaction error still reaches
            // the client, described, as an untyped key error.
            let partition_error = partition_error(&err);
            let key_error = key_error(&err).or_else(|| {
                partition_error.is_none().then(|| pb::KeyError {
                    message: err.to_string(),
                    error: None,
                })
            });
            pb::CommandResponse {
                partition_error,
                key_error,
                ..Default::default()
            }
        }
    }
}

fn admin_response(result: Result<(), RaftError>) -> pb::AdminResponse {
    match result {
        Ok(()) => pb::AdminResponse::default(),
        Err(err) => pb::AdminResponse {
            partition_error: partition_error(&err),
            error: err.to_string(),
        },
    }
}

fn status_to_pb(s: &ReplicaStatus) -> pb::ReplicaStatus {
    pb::ReplicaStatus {
        partition: s.partition.as_ref().map(partition_to_pb),
        replica: Some(replica_to_pb(&s.replica)),
        role: match s.role {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "precandidate",
        }
        .to_string(),
        term: s.term,
        leader_id: s.leader_id,
        commit: s.commit,
        applied: s.applied,
        first_index: s.first_index,
        last_index: s.last_index,
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for NodeServices {
    async fn send(
        &self,
        request: Request<Streaming<pb::RaftBatch>>,
    ) -> Result<Response<pb::Done>, Status> {
        let mut stream = request.into_inner();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            self.check_identity(batch.cluster_id, batch.to_node, "Raft batch")?;
            self.check_sender(batch.from_node)?;
            for env in &batch.envelopes {
                let env = match envelope_from_pb(env) {
                    Ok(env) => env,
                    Err(err) => {
                        tracing::warn!(from_node = batch.from_node, "{err}");
                        continue;
                    }
                };
                if env.from.node_id != batch.from_node || env.to.node_id != self.node_id {
                    tracing::warn!(
                        from_node = batch.from_node,
                        "refusing a misaddressed Raft message"
                    );
                    continue;
                }
                if let Err(err) = self.router.send(HostMsg::Raft(env)) {
                    // Raft retransmits; a busy node drops rather than blocks the stream.
                    tracing::debug!(%err, "dropping an incoming Raft message");
                }
            }
        }
        Ok(Response::new(pb::Done {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::Done>, Status> {
        let mut stream = request.into_inner();
        let Some(first) = stream.next().await else {
            return Err(Status::invalid_argument("empty snapshot stream"));
        };
        let Some(pb::snapshot_chunk::Chunk::Header(header)) = first?.chunk else {
            return Err(Status::invalid_argument(
                "a snapshot stream must start with its header",
            ));
        };
        self.check_identity(header.cluster_id, header.to_node, "snapshot")?;
        self.check_sender(header.from_node)?;
        if header.data_len > MAX_SNAPSHOT {
            return Err(Status::resource_exhausted("snapshot too large"));
        }
        let mut data = Vec::with_capacity(header.data_len as usize);
        while let Some(chunk) = stream.next().await {
            match chunk?.chunk {
                Some(pb::snapshot_chunk::Chunk::Data(bytes)) => {
                    if data.len() as u64 + bytes.len() as u64 > header.data_len {
                        return Err(Status::invalid_argument("snapshot longer than announced"));
                    }
                    data.extend_from_slice(&bytes);
                }
                _ => return Err(Status::invalid_argument("unexpected snapshot chunk")),
            }
        }
        if data.len() as u64 != header.data_len {
            return Err(Status::invalid_argument("snapshot shorter than announced"));
        }
        let envelope = header
            .envelope
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("snapshot header has no envelope"))?;
        let mut env = envelope_from_pb(envelope).map_err(Status::invalid_argument)?;
        if env.from.node_id != header.from_node || env.to.node_id != self.node_id {
            return Err(Status::permission_denied("misaddressed snapshot"));
        }
        env.message.mut_snapshot().data = data.into();
        self.router
            .send(HostMsg::Raft(env))
            .map_err(|err| Status::unavailable(err.to_string()))?;
        Ok(Response::new(pb::Done {}))
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for NodeServices {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let _timer = RequestTimer::start("get");
        let req = request.into_inner();
        if let Some(err) = self.too_old(req.read_ts) {
            return Ok(Response::new(pb::GetResponse {
                key_error: key_error(&err),
                ..Default::default()
            }));
        }
        let key = req.key.to_vec();
        let mut end = key.clone();
        end.push(0);
        let read_key = key.clone();
        let result = self
            .read(req.context.as_ref(), key, end, req.read_ts, move |view| {
                if req.newest {
                    view.mvcc.get_newest(&read_key)
                } else {
                    Ok((0, view.mvcc.get(&read_key, req.read_ts)?))
                }
            })
            .await?;
        Ok(Response::new(match result {
            Ok((commit_ts, value)) => pb::GetResponse {
                found: value.is_some(),
                value: value.unwrap_or_default().into(),
                commit_ts,
                ..Default::default()
            },
            Err(err) => pb::GetResponse {
                partition_error: partition_error(&err),
                key_error: key_error(&err),
                ..Default::default()
            },
        }))
    }

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let _timer = RequestTimer::start("scan");
        let req = request.into_inner();
        if let Some(err) = self.too_old(req.read_ts) {
            return Ok(Response::new(pb::ScanResponse {
                key_error: key_error(&err),
                ..Default::default()
            }));
        }
        let (start, end) = (req.start.to_vec(), req.end.to_vec());
        let limit = (req.limit as usize).clamp(1, MAX_SCAN);
        if !req.filter.is_empty() && !req.reverse {
            return Ok(Response::new(
                self.scan_filtered(req, start, end, limit).await?,
            ));
        }
        let (read_start, read_end) = (start.clone(), end.clone());
        let result = self
            .read(req.context.as_ref(), start, end, req.read_ts, move |view| {
                // An empty end is the partition's end: other partitions share the engine.
                let end = view.clip_end(&read_end);
                if req.reverse {
                    view.mvcc.scan_reverse(&read_start, end, req.read_ts, limit)
                } else {
                    view.mvcc.scan(&read_start, end, req.read_ts, limit)
                }
            })
            .await?;
        Ok(Response::new(match result {
            Ok(pairs) => pb::ScanResponse {
                pairs: pairs
                    .into_iter()
                    .map(|(k, v)| pb::KvPair {
                        key: k.into(),
                        value: v.into(),
                    })
                    .collect(),
                ..Default::default()
            },
            Err(err) => pb::ScanResponse {
                partition_error: partition_error(&err),
                key_error: key_error(&err),
                ..Default::default()
            },
        }))
    }

    async fn prewrite(
        &self,
        request: Request<pb::PrewriteRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("prewrite");
        let req = request.into_inner();
        // A rollback record below the safe point may be collected: a prewrite that old could
        // otherwise revive a transaction that readers already rolled back.
        if let Some(err) = self.too_old(req.start_ts) {
            return Ok(Response::new(command_response(Err(err))));
        }
        if req.one_pc {
            let (partition_id, epoch) = self.context(req.context.as_ref())?;
            let (tx, rx) = oneshot::channel();
            self.router.send_or_fail(HostMsg::OnePc {
                partition_id,
                epoch,
                mutations: req.mutations.iter().map(mutation_from_pb).collect(),
                start_ts: req.start_ts,
                max_commit_ts: req.max_commit_ts,
                cb: Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            });
            let result = wait(rx, partition_id).await?;
            let commit_ts = result.as_ref().ok().copied().flatten().unwrap_or(0);
            let mut resp = command_response(result.map(|_| TxnResponse::Done));
            resp.one_pc_commit_ts = commit_ts;
            return Ok(Response::new(resp));
        }
        let cmd = Command::Prewrite {
            mutations: req.mutations.iter().map(mutation_from_pb).collect(),
            primary: req.primary.to_vec(),
            start_ts: req.start_ts,
            lock_ttl_ms: req.lock_ttl_ms,
            min_commit_ts: req.min_commit_ts,
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("commit");
        let req = request.into_inner();
        let cmd = Command::Commit {
            keys: req.keys.iter().map(|k| k.to_vec()).collect(),
            start_ts: req.start_ts,
            commit_ts: req.commit_ts,
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("rollback");
        let req = request.into_inner();
        let cmd = Command::Rollback {
            keys: req.keys.iter().map(|k| k.to_vec()).collect(),
            start_ts: req.start_ts,
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn check_txn_status(
        &self,
        request: Request<pb::CheckTxnStatusRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("check_txn_status");
        let req = request.into_inner();
        // Most checks find a live lock or a commit record: a read answers them without a
        // Raft round (a live lock's answer only tells the caller to wait; a record stays).
        let primary = req.primary.to_vec();
        let mut end = primary.clone();
        end.push(0);
        let (key, lock_ts, current_ts) = (primary.clone(), req.lock_ts, req.current_ts);
        let peeked = self
            .read(req.context.as_ref(), primary.clone(), end, 0, move |view| {
                view.mvcc.peek_txn_status(&key, lock_ts, current_ts)
            })
            .await?;
        if let Ok(Some(status)) = peeked {
            return Ok(Response::new(command_response(Ok(TxnResponse::TxnStatus(
                status,
            )))));
        }
        let cmd = Command::CheckTxnStatus {
            primary,
            lock_ts: req.lock_ts,
            current_ts: req.current_ts,
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn resolve_lock(
        &self,
        request: Request<pb::ResolveLockRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("resolve_lock");
        let req = request.into_inner();
        let cmd = Command::ResolveLock {
            start_ts: req.start_ts,
            commit_ts: (req.commit_ts != 0).then_some(req.commit_ts),
            keys: req.keys.iter().map(|k| k.to_vec()).collect(),
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn scan_locks(
        &self,
        request: Request<pb::ScanLocksRequest>,
    ) -> Result<Response<pb::ScanLocksResponse>, Status> {
        let _timer = RequestTimer::start("scan_locks");
        let req = request.into_inner();
        let (start, end) = (req.start.to_vec(), req.end.to_vec());
        let limit = (req.limit as usize).clamp(1, MAX_SCAN);
        let (read_start, read_end) = (start.clone(), end.clone());
        let result = self
            .read(req.context.as_ref(), start, end, 0, move |view| {
                // An empty end is the partition's end: other partitions share the engine.
                let end = view.clip_end(&read_end);
                view.mvcc.scan_locks(&read_start, end, req.max_ts, limit)
            })
            .await?;
        Ok(Response::new(match result {
            Ok(locks) => pb::ScanLocksResponse {
                locks: locks.iter().map(crate::lock_info_to_pb).collect(),
                ..Default::default()
            },
            Err(err) => pb::ScanLocksResponse {
                partition_error: partition_error(&err),
                key_error: key_error(&err),
                locks: Vec::new(),
            },
        }))
    }

    async fn gc(
        &self,
        request: Request<pb::GcRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("gc");
        let req = request.into_inner();
        let cmd = Command::Gc {
            safe_point: req.safe_point,
            start: req.start.to_vec(),
            end: req.end.to_vec(),
            limit: (req.limit as usize).clamp(1, MAX_SCAN),
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }

    async fn destroy_range(
        &self,
        request: Request<pb::DestroyRangeRequest>,
    ) -> Result<Response<pb::CommandResponse>, Status> {
        let _timer = RequestTimer::start("destroy_range");
        let req = request.into_inner();
        if req.end.is_empty() {
            return Err(Status::invalid_argument("DestroyRange needs an end key"));
        }
        let cmd = Command::DestroyRange {
            start: req.start.to_vec(),
            end: req.end.to_vec(),
        };
        self.propose(req.context.as_ref(), cmd)
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for NodeServices {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let req = request.into_inner();
        self.check_identity(req.cluster_id, self.node_id, "status request")?;
        let router = self.router.clone();
        let statuses = tokio::task::spawn_blocking(move || router.status())
            .await
            .map_err(|err| Status::internal(err.to_string()))?
            .map_err(|err| Status::unavailable(err.to_string()))?;
        Ok(Response::new(pb::StatusResponse {
            node_id: self.node_id,
            replicas: statuses.iter().map(status_to_pb).collect(),
        }))
    }

    async fn split(
        &self,
        request: Request<pb::SplitRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let req = request.into_inner();
        let (partition_id, epoch) = self.context(req.context.as_ref())?;
        let split_key = req.split_key.to_vec();
        self.admin(partition_id, move |cb| HostMsg::Split {
            partition_id,
            epoch,
            split_key,
            cb,
        })
        .await
        .map(Response::new)
    }

    async fn change_replica(
        &self,
        request: Request<pb::ChangeReplicaRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        use pb::change_replica_request::Change;
        let req = request.into_inner();
        let (partition_id, epoch) = self.context(req.context.as_ref())?;
        let change = match req.change {
            Some(Change::AddLearnerOnNode(node_id)) => ReplicaChange::AddLearner { node_id },
            Some(Change::PromoteReplica(replica_id)) => ReplicaChange::Promote { replica_id },
            Some(Change::RemoveReplica(replica_id)) => ReplicaChange::Remove { replica_id },
            None => return Err(Status::invalid_argument("no change given")),
        };
        self.admin(partition_id, move |cb| HostMsg::ChangeReplica {
            partition_id,
            epoch,
            change,
            cb,
        })
        .await
        .map(Response::new)
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let req = request.into_inner();
        let (partition_id, _) = self.context(req.context.as_ref())?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.router
            .send(HostMsg::TransferLeader {
                partition_id,
                to_replica_id: req.to_replica,
                reply: tx,
            })
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let result = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .map_err(|err| Status::internal(err.to_string()))?
            .map_err(|_| Status::unavailable("the replication thread stopped"))?;
        Ok(Response::new(admin_response(result)))
    }
}

/// Serves the node's services on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: NodeServices,
    meta: Option<crate::MetaService>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let limit = 64 << 20;
    // The server's own TCP settings apply only to listeners it binds: accepted connections get
    // TCP_NODELAY here, or small answers wait for delayed acknowledgements (tens of ms).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |stream| {
            stream.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    tonic::transport::Server::builder()
        .add_service(
            pb::raft_server::RaftServer::new(services.clone()).max_decoding_message_size(limit),
        )
        .add_service(
            pb::kv_server::KvServer::new(services.clone()).max_decoding_message_size(limit),
        )
        .add_service(pb::admin_server::AdminServer::new(services))
        .add_optional_service(meta.map(pb::meta_server::MetaServer::new))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
