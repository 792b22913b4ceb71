//! [`Client`]: routes each key to its partition's leader and retries through leader changes,
//! splits and busy nodes within a deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use reef_rpc::pb;
use reef_rpc::pb::admin_client::AdminClient;
use reef_rpc::pb::kv_client::KvClient;
use tonic::transport::Channel;

use crate::cache::{PartitionCache, Route};
use crate::conn::KvConn;
use crate::error::{ClientError, Result};
use crate::root::RootClient;
use crate::shun::Shunned;

/// The first wait after a retryable failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How many partitions a filtered scan asks at once.
pub const SCAN_FANOUT: usize = 4;

/// What the client does after a partition error.
enum Next {
    /// Retry at once: the cache was corrected.
    Retry,
    /// Retry after a backoff.
    Backoff,
}

/// A routing client of a reefdb storage cluster.
pub struct Client {
    cluster_id: u64,
    /// Node id → `http://host:port`.
    nodes: RwLock<HashMap<u64, String>>,
    channels: Mutex<HashMap<u64, Channel>>,
    cache: RwLock<PartitionCache>,
    deadline: Duration,
    /// The root service, which knows the partition map and the nodes' addresses; without it
    /// the client asks its nodes what they host.
    root: Option<Arc<RootClient>>,
    /// Turns through a partition's voters when no one knows its leader.
    guesses: std::sync::atomic::AtomicUsize,
    /// The node this client runs in and its `Kv` service, called directly.
    local: Option<(u64, Arc<dyn pb::kv_server::Kv>)>,
    /// Nodes that just failed to answer.
    shunned: Shunned<u64>,
}

/// Whether a gRPC failure says the node could not be reached or did not answer in time (as
/// opposed to an answer that refused the request).
pub(crate) fn unreachable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
    )
}

/// Returns where a request on `partition` for a range ending at `end` (empty: no end) stops:
/// never past the partition's end, since a node refuses ranges its partition lacks.
fn clip_end(partition: &pb::Partition, end: &bytes::Bytes) -> bytes::Bytes {
    if end.is_empty() || (!partition.end.is_empty() && partition.end < end) {
        partition.end.clone()
    } else {
        end.clone()
    }
}

/// Returns the first key of the partition after `partition` if a range ending at `end`
/// (empty: no end) continues there.
fn next_start(partition: &pb::Partition, end: &[u8]) -> Option<Vec<u8>> {
    if partition.end.is_empty() || (!end.is_empty() && end <= partition.end.as_ref()) {
        None
    } else {
        Some(partition.end.to_vec())
    }
}

impl Client {
    /// Creates a client of cluster `cluster_id` whose nodes are `nodes` (id, `host:port`).
    /// Each request gives up after `deadline`.
    pub fn new(cluster_id: u64, nodes: &[(u64, String)], deadline: Duration) -> Client {
        Client {
            cluster_id,
            nodes: RwLock::new(
                nodes
                    .iter()
                    .map(|(id, addr)| (*id, format!("http://{addr}")))
                    .collect(),
            ),
            channels: Mutex::new(HashMap::new()),
            cache: RwLock::new(PartitionCache::default()),
            deadline,
            root: None,
            guesses: Default::default(),
            local: None,
            shunned: Shunned::default(),
        }
    }

    /// Creates a client that looks partitions and nodes up in the root service. Each request
    /// gives up after `deadline`.
    pub fn with_root(root: Arc<RootClient>, deadline: Duration) -> Client {
        Client {
            cluster_id: root.cluster_id(),
            root: Some(root),
            ..Client::new(0, &[], deadline)
        }
    }

    /// Calls `services`, the `Kv` service of node `node_id` (the node this client runs in),
    /// directly instead of over gRPC: the same handlers, without encoding or a socket.
    pub fn with_local(mut self, node_id: u64, services: Arc<dyn pb::kv_server::Kv>) -> Client {
        self.local = Some((node_id, services));
        self
    }

    /// Asks the root service for the partition holding `key` (with `before`, the keys just
    /// below it), and caches it with its leader and its nodes' addresses.
    async fn lookup(&self, root: &RootClient, key: &[u8], before: bool) -> Result<()> {
        let found = root.locate(key, before).await?;
        {
            let mut nodes = self.nodes.write();
            for node in &found.nodes {
                nodes.insert(node.id, format!("http://{}", node.addr));
            }
        }
        let Some(partition) = found.partition else {
            return Err(ClientError::NoLeader);
        };
        let leader = (found.leader_node_id != 0).then_some(found.leader_node_id);
        self.cache.write().insert(partition, leader);
        Ok(())
    }

    /// The cluster id requests carry: the root client's, once it knows it, when the client
    /// was made without one.
    fn cluster_id(&self) -> u64 {
        match (&self.root, self.cluster_id) {
            (Some(root), 0) => root.cluster_id(),
            (_, id) => id,
        }
    }

    /// Returns the cached route of `key`, if any (for tests and diagnostics).
    pub fn cached_route(&self, key: &[u8]) -> Option<Route> {
        self.cache.read().locate(key).cloned()
    }

    fn channel(&self, node_id: u64) -> Result<Channel> {
        if let Some(ch) = self.channels.lock().get(&node_id) {
            return Ok(ch.clone());
        }
        let addr = self
            .nodes
            .read()
            .get(&node_id)
            .cloned()
            .ok_or(ClientError::UnknownNode(node_id))?;
        let ch = crate::conn::lazy_channel(addr)?;
        self.channels.lock().insert(node_id, ch.clone());
        Ok(ch)
    }

    fn drop_channel(&self, node_id: u64) {
        self.channels.lock().remove(&node_id);
    }

    /// Asks every node which partitions it hosts and leads, and caches what they say.
    pub async fn refresh(&self) -> Result<()> {
        let ids: Vec<u64> = self.nodes.read().keys().copied().collect();
        let mut answered = false;
        for node_id in ids {
            let Ok(ch) = self.channel(node_id) else {
                continue;
            };
            let status = AdminClient::new(ch)
                .status(pb::StatusRequest {
                    cluster_id: self.cluster_id(),
                })
                .await;
            let Ok(status) = status else {
                self.drop_channel(node_id);
                continue;
            };
            answered = true;
            let mut cache = self.cache.write();
            for replica in status.into_inner().replicas {
                if let Some(partition) = replica.partition {
                    let leader = (replica.role == "leader").then_some(node_id);
                    if leader.is_some() {
                        cache.insert(partition, leader);
                    } else if cache.locate(&partition.start).is_none() {
                        cache.insert(partition, None);
                    }
                }
            }
        }
        if answered {
            Ok(())
        } else {
            Err(ClientError::Transport("no node answered".into()))
        }
    }

    /// Returns the route of `key`, looking it up when the cache has none (or no leader). When
    /// the partition is known but its leader is not (the root service learns leaders from
    /// reports, which lag elections), the route names one of its voters in turn: a voter that
    /// does not lead answers with the leader it knows.
    ///
    /// A leader that just failed to answer (see [`Shunned`]) is passed over the same way: the
    /// route names another voter, which knows the new leader once one is elected.
    async fn route(&self, key: &[u8]) -> Result<Route> {
        let route = match self.cached_route(key).filter(|r| r.leader.is_some()) {
            Some(route) => route,
            None => {
                match &self.root {
                    Some(root) => self.lookup(root, key, false).await?,
                    None => self.refresh().await?,
                }
                self.cached_route(key).ok_or(ClientError::NoLeader)?
            }
        };
        if route.leader.is_some_and(|l| !self.shunned.is_shunned(&l)) {
            return Ok(route);
        }
        let voters: Vec<u64> = route
            .partition
            .replicas
            .iter()
            .filter(|r| !r.learner)
            .map(|r| r.node_id)
            .collect();
        if voters.is_empty() {
            return Err(ClientError::NoLeader);
        }
        let turn = self
            .guesses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let guess = match self.shunned.pick(&voters, turn) {
            Some(voter) => *voter,
            // Every voter is shunned: the known leader, if any, is the best guess left.
            None => route.leader.unwrap_or(voters[turn % voters.len()]),
        };
        Ok(Route {
            leader: Some(guess),
            ..route
        })
    }

    /// Corrects the cache after a partition error from `route`'s leader.
    fn on_partition_error(&self, route: &Route, err: &pb::PartitionError) -> Next {
        use pb::partition_error::Error;
        let id = route.partition.id;
        let mut cache = self.cache.write();
        match &err.error {
            Some(Error::NotLeader(not_leader)) => match &not_leader.leader {
                Some(leader) if Some(leader.node_id) != route.leader => {
                    cache.set_leader(id, Some(leader.node_id));
                    // A hint at a node that just failed is probably stale: wait a little
                    // before asking around again.
                    if self.shunned.is_shunned(&leader.node_id) {
                        Next::Backoff
                    } else {
                        Next::Retry
                    }
                }
                // No leader known yet (an election): wait for one.
                _ => {
                    cache.set_leader(id, None);
                    Next::Backoff
                }
            },
            Some(Error::EpochMismatch(mismatch)) => {
                cache.invalidate(id);
                for partition in &mismatch.current {
                    // The answering node's own view; leaders are looked up when needed.
                    let leader = (partition.id == id).then_some(route.leader).flatten();
                    cache.insert(partition.clone(), leader);
                }
                Next::Retry
            }
            Some(Error::PartitionNotFound(_)) | Some(Error::KeyNotInPartition(_)) => {
                cache.invalidate(id);
                Next::Backoff
            }
            Some(Error::ServerBusy(_))
            | Some(Error::StaleCommand(_))
            | Some(Error::Unavailable(_))
            | None => Next::Backoff,
        }
    }

    /// Runs `call` against the leader of the partition holding `key` until it answers
    /// without a partition error. `call` gets the client of the leader, the request context,
    /// and the partition; `partition_error` extracts the error from its answer.
    async fn with_leader<T, F, Fut>(
        &self,
        key: &[u8],
        call: F,
        partition_error: impl Fn(&T) -> Option<&pb::PartitionError>,
    ) -> Result<(T, pb::Partition)>
    where
        F: Fn(KvConn, pb::Context, pb::Partition) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.with_leader_via(key, |node| self.kv(node), call, partition_error)
            .await
    }

    /// Like `with_leader`, for any service of the leader: `call` gets its channel.
    async fn with_leader_channel<T, F, Fut>(
        &self,
        key: &[u8],
        call: F,
        partition_error: impl Fn(&T) -> Option<&pb::PartitionError>,
    ) -> Result<(T, pb::Partition)>
    where
        F: Fn(Channel, pb::Context, pb::Partition) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.with_leader_via(key, |node| self.channel(node), call, partition_error)
            .await
    }

    /// The `Kv` service of node `node_id`: a direct call for the node this client runs in.
    fn kv(&self, node_id: u64) -> Result<KvConn> {
        match &self.local {
            Some((id, services)) if *id == node_id => Ok(KvConn::Local(services.clone())),
            _ => Ok(KvConn::Remote(KvClient::new(self.channel(node_id)?))),
        }
    }

    /// The routing and retry loop behind `with_leader`: `connect` reaches a node.
    async fn with_leader_via<C, T, F, Fut>(
        &self,
        key: &[u8],
        connect: impl Fn(u64) -> Result<C>,
        call: F,
        partition_error: impl Fn(&T) -> Option<&pb::PartitionError>,
    ) -> Result<(T, pb::Partition)>
    where
        F: Fn(C, pb::Context, pb::Partition) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let until = Instant::now() + self.deadline;
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        loop {
            if Instant::now() > until {
                return Err(ClientError::Timeout {
                    key: key.to_vec(),
                    last,
                });
            }
            let route = match self.route(key).await {
                Ok(route) => route,
                Err(err) => {
                    last = err.to_string();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let leader = route.leader.expect("routes have leaders");
            let ctx = pb::Context {
                cluster_id: self.cluster_id(),
                node_id: leader,
                partition_id: route.partition.id,
                epoch: route.partition.epoch,
            };
            let answer = match connect(leader) {
                Ok(conn) => call(conn, ctx, route.partition.clone()).await,
                Err(err) => Err(tonic::Status::unavailable(err.to_string())),
            };
            let next = match answer {
                Ok(resp) => {
                    self.shunned.answered(&leader);
                    let resp = resp.into_inner();
                    match partition_error(&resp) {
                        None => return Ok((resp, route.partition)),
                        Some(err) => {
                            last = err.message.clone();
                            self.on_partition_error(&route, err)
                        }
                    }
                }
                Err(status) => {
                    // The node is down or unreachable: look the leader up again.
                    if unreachable(&status) {
                        self.shunned.failed(&leader);
                    }
                    last = status.to_string();
                    self.drop_channel(leader);
                    self.cache.write().set_leader(route.partition.id, None);
                    Next::Backoff
                }
            };
            if let Next::Backoff = next {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Splits the partition holding `key` at `key`, so that `key` starts a partition. A split
    /// whose answer was lost and that a retry finds done counts as done.
    pub async fn split(&self, key: &[u8]) -> Result<()> {
        self.split_at(key, Some(key)).await
    }

    /// Splits the partition holding `key` at `at`, or without `at` at the key halfway through
    /// its data (by size, as its leader sees it). Either way a split whose answer was lost is
    /// not made twice: a retry that finds the partition changed since counts it as done.
    pub async fn split_at(&self, key: &[u8], at: Option<&[u8]>) -> Result<()> {
        let split_key = bytes::Bytes::copy_from_slice(at.unwrap_or_default());
        // The partition (id, version) a request went to whose outcome is unknown.
        let unknown: Mutex<Option<(u64, u64)>> = Mutex::new(None);
        let unknown = &unknown;
        let (resp, partition) = self
            .with_leader_channel(
                key,
                |ch, ctx, partition| {
                    let split_key = split_key.clone();
                    async move {
                        let version = partition.epoch.map_or(0, |e| e.version);
                        let changed = unknown
                            .lock()
                            .is_some_and(|(id, v)| id != partition.id || v < version);
                        if changed {
                            return Ok(tonic::Response::new(pb::AdminResponse::default()));
                        }
                        let answer = AdminClient::new(ch)
                            .split(pb::SplitRequest {
                                context: Some(ctx),
                                split_key,
                            })
                            .await;
                        if answer.is_err() {
                            *unknown.lock() = Some((partition.id, version));
                        }
                        answer
                    }
                },
                |r: &pb::AdminResponse| r.partition_error.as_ref(),
            )
            .await?;
        if resp.error.is_empty() || at.is_some_and(|at| partition.start.as_ref() == at) {
            // The partition splits under the cached descriptor: forget it.
            self.cache.write().invalidate(partition.id);
            return Ok(());
        }
        Err(ClientError::Admin(resp.error))
    }

    /// Moves the leadership of the partition holding `key` to its replica on node `node_id`,
    /// and waits (within the deadline) until that replica leads.
    pub async fn transfer_leader(&self, key: &[u8], node_id: u64) -> Result<()> {
        let until = Instant::now() + self.deadline;
        loop {
            let route = self.route(key).await?;
            if route.leader == Some(node_id) {
                return Ok(());
            }
            let to_replica = route
                .partition
                .replicas
                .iter()
                .find(|r| r.node_id == node_id && !r.learner)
                .map(|r| r.id)
                .ok_or_else(|| {
                    ClientError::Admin(format!(
                        "node {node_id} holds no voting replica of partition {}",
                        route.partition.id
                    ))
                })?;
            let (resp, _) = self
                .with_leader_channel(
                    key,
                    |ch, ctx, _| async move {
                        AdminClient::new(ch)
                            .transfer_leader(pb::TransferLeaderRequest {
                                context: Some(ctx),
                                to_replica,
                            })
                            .await
                    },
                    |r: &pb::AdminResponse| r.partition_error.as_ref(),
                )
                .await?;
            if !resp.error.is_empty() {
                return Err(ClientError::Admin(resp.error));
            }
            if Instant::now() > until {
                return Err(ClientError::Timeout {
                    key: key.to_vec(),
                    last: format!("node {node_id} did not take the leadership"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Learn the leader afresh.
            self.cache.write().set_leader(route.partition.id, None);
        }
    }

    /// Reads `key` at `read_ts`.
    pub async fn get(&self, key: &[u8], read_ts: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.read_key(key, read_ts, false).await?.1)
    }

    /// Reads the newest committed version of `key` (see `MvccStore::get_newest`): its commit
    /// timestamp and value. The read is recorded at `read_ts`.
    pub async fn get_newest(&self, key: &[u8], read_ts: u64) -> Result<(u64, Option<Vec<u8>>)> {
        self.read_key(key, read_ts, true).await
    }

    async fn read_key(
        &self,
        key: &[u8],
        read_ts: u64,
        newest: bool,
    ) -> Result<(u64, Option<Vec<u8>>)> {
        let key_bytes = bytes::Bytes::copy_from_slice(key);
        let (resp, _) = self
            .with_leader(
                key,
                |mut kv, ctx, _| {
                    let key = key_bytes.clone();
                    async move {
                        kv.get(pb::GetRequest {
                            context: Some(ctx),
                            key,
                            read_ts,
                            newest,
                        })
                        .await
                    }
                },
                |r: &pb::GetResponse| r.partition_error.as_ref(),
            )
            .await?;
        if let Some(err) = resp.key_error {
            return Err(ClientError::Key(Box::new(err)));
        }
        Ok((resp.commit_ts, resp.found.then(|| resp.value.to_vec())))
    }

    /// Reads up to `limit` pairs of `[start, end)` (empty `end`: no end) at `read_ts`, in key
    /// order, partition by partition.
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut from = start.to_vec();
        while out.len() < limit {
            let want = (limit - out.len()).min(u32::MAX as usize) as u32;
            let end_bytes = bytes::Bytes::copy_from_slice(end);
            let from_bytes = bytes::Bytes::copy_from_slice(&from);
            let (resp, partition) = self
                .with_leader(
                    &from,
                    |mut kv, ctx, partition| {
                        let stop = clip_end(&partition, &end_bytes);
                        let start = from_bytes.clone();
                        async move {
                            kv.scan(pb::ScanRequest {
                                context: Some(ctx),
                                start,
                                end: stop,
                                read_ts,
                                limit: want,
                                reverse: false,
                                ..Default::default()
                            })
                            .await
                        }
                    },
                    |r: &pb::ScanResponse| r.partition_error.as_ref(),
                )
                .await?;
            if let Some(err) = resp.key_error {
                return Err(ClientError::Key(Box::new(err)));
            }
            let got = resp.pairs.len();
            out.extend(
                resp.pairs
                    .into_iter()
                    .map(|p| (p.key.to_vec(), p.value.to_vec())),
            );
            if got >= want as usize {
                // The partition may hold more: continue after the last key.
                let mut next = out.last().expect("got pairs").0.clone();
                next.push(0);
                from = next;
                continue;
            }
            // This partition is exhausted: move to the next, unless the range ends here.
            match next_start(&partition, end) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Reads `[start, end)` (empty `end`: no end) at `read_ts` in key order with `program`
    /// applied where the pairs are stored (see `ScanRequest.filter`), reading at most `limit`
    /// pairs per partition. The partitions the range covers are asked in parallel, up to
    /// [`SCAN_FANOUT`] at a time as the cache knows them, and their answers joined in key
    /// order; the batch ends at the first partition that did not reach its end. Returns the
    /// pairs that passed and the key to go on from (`None`: the range is done).
    pub async fn scan_filtered(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: u64,
        limit: usize,
        program: &[u8],
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut from = start.to_vec();
        loop {
            // This partition's start and the next ones the cache knows of.
            let mut starts = vec![from.clone()];
            while starts.len() < SCAN_FANOUT {
                let last = starts.last().expect("one start");
                let next = self
                    .cached_route(last)
                    .and_then(|route| next_start(&route.partition, end));
                match next {
                    Some(next) => starts.push(next),
                    None => break,
                }
            }
            let answers = futures::future::join_all(
                starts
                    .iter()
                    .map(|s| self.scan_partition_filtered(s, end, read_ts, limit, program)),
            )
            .await;
            for (i, answer) in answers.into_iter().enumerate() {
                let (pairs, resume, partition) = answer?;
                out.extend(pairs);
                if resume.is_some() {
                    return Ok((out, resume));
                }
                match next_start(&partition, end) {
                    Some(next) => from = next,
                    None => return Ok((out, None)),
                }
                // A partition split since the cache listed it: ask again from here.
                if starts.get(i + 1).is_some_and(|s| *s != from) {
                    break;
                }
            }
            if !out.is_empty() {
                return Ok((out, Some(from)));
            }
        }
    }

    /// One filtered scan request on the partition holding `start`: the pairs that passed, the
    /// key to go on from inside that partition (`None`: it reached the partition's end or
    /// `end`), and the partition.
    async fn scan_partition_filtered(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: u64,
        limit: usize,
        program: &[u8],
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>, pb::Partition)> {
        let want = limit.clamp(1, u32::MAX as usize) as u32;
        let end_bytes = bytes::Bytes::copy_from_slice(end);
        let from_bytes = bytes::Bytes::copy_from_slice(start);
        let filter = bytes::Bytes::copy_from_slice(program);
        let (resp, partition) = self
            .with_leader(
                start,
                |mut kv, ctx, partition| {
                    let request = pb::ScanRequest {
                        context: Some(ctx),
                        start: from_bytes.clone(),
                        end: clip_end(&partition, &end_bytes),
                        read_ts,
                        limit: want,
                        reverse: false,
                        filter: filter.clone(),
                    };
                    async move { kv.scan(request).await }
                },
                |r: &pb::ScanResponse| r.partition_error.as_ref(),
            )
            .await?;
        if let Some(err) = resp.key_error {
            return Err(ClientError::Key(Box::new(err)));
        }
        let pairs = resp
            .pairs
            .into_iter()
            .map(|p| (p.key.to_vec(), p.value.to_vec()))
            .collect();
        let resume = (!resp.resume.is_empty()).then(|| resp.resume.to_vec());
        Ok((pairs, resume, partition))
    }

    /// Returns up to `limit` locks in `[start, end)` (empty `end`: no end) of transactions
    /// that started at or below `max_ts`, in key order, partition by partition.
    pub async fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        max_ts: u64,
        limit: usize,
    ) -> Result<Vec<pb::LockInfo>> {
        let end_bytes = bytes::Bytes::copy_from_slice(end);
        let mut out: Vec<pb::LockInfo> = Vec::new();
        let mut from = start.to_vec();
        while out.len() < limit {
            let want = (limit - out.len()).min(u32::MAX as usize) as u32;
            let from_bytes = bytes::Bytes::copy_from_slice(&from);
            let (resp, partition) = self
                .with_leader(
                    &from,
                    |mut kv, ctx, partition| {
                        let req = pb::ScanLocksRequest {
                            context: Some(ctx),
                            start: from_bytes.clone(),
                            end: clip_end(&partition, &end_bytes),
                            max_ts,
                            limit: want,
                        };
                        async move { kv.scan_locks(req).await }
                    },
                    |r: &pb::ScanLocksResponse| r.partition_error.as_ref(),
                )
                .await?;
            if let Some(err) = resp.key_error {
                return Err(ClientError::Key(Box::new(err)));
            }
            let got = resp.locks.len();
            out.extend(resp.locks);
            if got >= want as usize {
                let mut next = out.last().expect("got locks").key.to_vec();
                next.push(0);
                from = next;
                continue;
            }
            match next_start(&partition, end) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Runs one MVCC garbage collection step on the partition holding `start`: at most
    /// `limit` user keys of `[start, end)` (empty `end`: no end), never past the partition's
    /// end. Returns the keys visited, the versions removed, and where the range continues
    /// (in this partition or the next), if anywhere.
    pub async fn gc(
        &self,
        safe_point: u64,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<(u64, u64, Option<Vec<u8>>)> {
        let end_bytes = bytes::Bytes::copy_from_slice(end);
        let start_bytes = bytes::Bytes::copy_from_slice(start);
        let limit = limit.min(u32::MAX as usize) as u32;
        let (resp, partition) = self
            .with_leader(
                start,
                |mut kv, ctx, partition| {
                    let req = pb::GcRequest {
                        context: Some(ctx),
                        safe_point,
                        start: start_bytes.clone(),
                        end: clip_end(&partition, &end_bytes),
                        limit,
                    };
                    async move { kv.gc(req).await }
                },
                |r: &pb::CommandResponse| r.partition_error.as_ref(),
            )
            .await?;
        if let Some(err) = resp.key_error {
            return Err(ClientError::Key(Box::new(err)));
        }
        let progress = resp
            .gc
            .ok_or_else(|| ClientError::Transport("a GC answer without progress".into()))?;
        let next = if progress.more {
            Some(progress.next_key.to_vec())
        } else {
            next_start(&partition, end)
        };
        Ok((progress.keys_scanned, progress.versions_deleted, next))
    }

    /// Removes every version and lock of `[start, end)` outright (`end` not empty),
    /// partition by partition.
    pub async fn destroy_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        let end_bytes = bytes::Bytes::copy_from_slice(end);
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let from_bytes = bytes::Bytes::copy_from_slice(&from);
            let (resp, partition) = self
                .with_leader(
                    &from,
                    |mut kv, ctx, partition| {
                        let req = pb::DestroyRangeRequest {
                            context: Some(ctx),
                            start: from_bytes.clone(),
                            end: clip_end(&partition, &end_bytes),
                        };
                        async move { kv.destroy_range(req).await }
                    },
                    |r: &pb::CommandResponse| r.partition_error.as_ref(),
                )
                .await?;
            if let Some(err) = resp.key_error {
                return Err(ClientError::Key(Box::new(err)));
            }
            match next_start(&partition, end) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(())
    }

    /// Returns the first key of the partition holding the keys just below `end` (empty: the
    /// last partition), looking partitions up when the cache has none there.
    async fn start_before(&self, end: &[u8], until: Instant) -> Result<Vec<u8>> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if let Some(route) = self.cache.read().locate_before(end) {
                return Ok(route.partition.start.to_vec());
            }
            let refreshed = match &self.root {
                Some(root) => self.lookup(root, end, true).await,
                None => self.refresh().await,
            };
            if let Some(route) = self.cache.read().locate_before(end) {
                return Ok(route.partition.start.to_vec());
            }
            if Instant::now() > until {
                return Err(ClientError::Timeout {
                    key: end.to_vec(),
                    last: refreshed.err().map_or_else(
                        || "no partition reaches the key".to_string(),
                        |e| e.to_string(),
                    ),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Reads the last `limit` pairs of `[start, end)` (empty `end`: no end) at `read_ts`, in
    /// descending key order, partition by partition from the end.
    pub async fn scan_reverse(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let until = Instant::now() + self.deadline;
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        // Exclusive; empty: no end.
        let mut upper = end.to_vec();
        while out.len() < limit {
            let want = (limit - out.len()).min(u32::MAX as usize) as u32;
            let route_key = self.start_before(&upper, until).await?;
            let upper_bytes = bytes::Bytes::copy_from_slice(&upper);
            let start_bytes = bytes::Bytes::copy_from_slice(start);
            let (resp, partition) = self
                .with_leader(
                    &route_key,
                    |mut kv, ctx, partition| {
                        // Never outside the partition: the node refuses ranges it lacks.
                        let lo = if partition.start > start_bytes {
                            partition.start.clone()
                        } else {
                            start_bytes.clone()
                        };
                        let hi = if upper_bytes.is_empty()
                            || (!partition.end.is_empty() && partition.end < upper_bytes)
                        {
                            partition.end.clone()
                        } else {
                            upper_bytes.clone()
                        };
                        async move {
                            kv.scan(pb::ScanRequest {
                                context: Some(ctx),
                                start: lo,
                                end: hi,
                                read_ts,
                                limit: want,
                                reverse: true,
                                ..Default::default()
                            })
                            .await
                        }
                    },
                    |r: &pb::ScanResponse| r.partition_error.as_ref(),
                )
                .await?;
            // The partition the node confirmed must reach `upper`, or keys below `upper` would
            // be skipped: the cache was wrong there, so look again.
            let reaches = partition.end.is_empty()
                || (!upper.is_empty() && partition.end.as_ref() >= upper.as_slice());
            if !reaches {
                if Instant::now() > until {
                    return Err(ClientError::Timeout {
                        key: upper,
                        last: "the partition map keeps missing the range".into(),
                    });
                }
                self.cache.write().invalidate(partition.id);
                continue;
            }
            if let Some(err) = resp.key_error {
                return Err(ClientError::Key(Box::new(err)));
            }
            let got = resp.pairs.len();
            out.extend(
                resp.pairs
                    .into_iter()
                    .map(|p| (p.key.to_vec(), p.value.to_vec())),
            );
            if got >= want as usize {
                // The partition may hold more: continue below the smallest key so far.
                upper = out.last().expect("got pairs").0.clone();
                continue;
            }
            // This partition is exhausted: move to the previous one, unless the range starts
            // here.
            if partition.start.as_ref() <= start {
                break;
            }
            upper = partition.start.to_vec();
        }
        Ok(out)
    }

    /// Runs a command over `keys`, one request per partition holding some of them, all
    /// partitions at once (a two-phase commit's secondary commits cost one round trip, not one
    /// per partition), retrying each group after a partition error with the keys regrouped.
    /// With `lead`, the partition holding the first key is asked first and the others once it
    /// answered: a prewrite locks its primary before any secondary, so a reader that meets a
    /// secondary lock finds the primary's lock (and does not roll the transaction back while
    /// its primary's prewrite is still on its way). `request` builds the request for a context
    /// and the group's keys; `errors` extracts the errors of an answer.
    async fn per_partition<T, F, Fut>(
        &self,
        keys: Vec<Vec<u8>>,
        mut lead: bool,
        request: F,
        errors: impl Fn(&T) -> (Option<&pb::PartitionError>, Option<&pb::KeyError>) + Copy,
    ) -> Result<()>
    where
        F: Fn(KvConn, pb::Context, Vec<Vec<u8>>) -> Fut + Copy,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut pending = keys;
        while !pending.is_empty() {
            // The keys by the partition the cache places them in, in their order; keys it
            // cannot place go together, routed by the first of them.
            let mut groups: Vec<(Option<u64>, Vec<&Vec<u8>>)> = Vec::new();
            {
                let cache = self.cache.read();
                for key in &pending {
                    let id = cache.locate(key).map(|route| route.partition.id);
                    match groups.iter_mut().find(|(group, _)| *group == id) {
                        Some((_, members)) => members.push(key),
                        None => groups.push((id, vec![key])),
                    }
                }
            }
            // Each group goes to its leader at once (after the first key's, with `lead`); a
            // group sends whatever of it lies in the partition holding its first key, as
            // routed when each attempt is sent.
            let mut answers = Vec::with_capacity(groups.len());
            let mut rest = &groups[..];
            if std::mem::take(&mut lead) && groups.len() > 1 {
                let first = self.send_group(&groups[0].1, request, errors).await;
                let failed = first
                    .as_ref()
                    .map_or(true, |(resp, _)| errors(resp).1.is_some());
                answers.push(first);
                // Nothing more is sent once the first group failed.
                rest = if failed { &[] } else { &groups[1..] };
            }
            let sends = rest
                .iter()
                .map(|(_, m)| self.send_group(m, request, errors));
            answers.extend(futures::future::join_all(sends).await);
            let mut done = Vec::with_capacity(answers.len());
            for answer in answers {
                let (resp, partition) = answer?;
                if let Some(err) = errors(&resp).1 {
                    return Err(ClientError::Key(Box::new(err.clone())));
                }
                done.push(partition);
            }
            pending.retain(|k| !done.iter().any(|partition| partition.contains(k)));
        }
        Ok(())
    }

    /// Sends whatever of `members` lies in the partition holding the first of them, as routed
    /// when each attempt is sent (see `per_partition`).
    async fn send_group<T, F, Fut>(
        &self,
        members: &[&Vec<u8>],
        request: F,
        errors: impl Fn(&T) -> (Option<&pb::PartitionError>, Option<&pb::KeyError>) + Copy,
    ) -> Result<(T, pb::Partition)>
    where
        F: Fn(KvConn, pb::Context, Vec<Vec<u8>>) -> Fut + Copy,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.with_leader(
            members[0],
            move |kv, ctx, partition| {
                let group: Vec<Vec<u8>> = members
                    .iter()
                    .filter(|k| partition.contains(k))
                    .map(|k| (*k).clone())
                    .collect();
                request(kv, ctx, group)
            },
            move |r: &T| errors(r).0,
        )
        .await
    }

    /// Prewrites `mutations` of the transaction `start_ts` whose primary is `primary`, in
    /// every partition they touch at once.
    pub async fn prewrite(
        &self,
        mutations: Vec<pb::Mutation>,
        primary: &[u8],
        start_ts: u64,
        lock_ttl_ms: u64,
    ) -> Result<()> {
        let keys: Vec<Vec<u8>> = mutations.iter().map(|m| m.key.to_vec()).collect();
        let by_key: HashMap<Vec<u8>, pb::Mutation> =
            mutations.into_iter().map(|m| (m.key.to_vec(), m)).collect();
        let by_key = &by_key;
        let primary = bytes::Bytes::copy_from_slice(primary);
        let primary = &primary;
        self.per_partition(
            keys,
            true,
            move |mut kv, ctx, group| {
                let req = pb::PrewriteRequest {
                    context: Some(ctx),
                    mutations: group.iter().map(|k| by_key[k].clone()).collect(),
                    primary: primary.clone(),
                    start_ts,
                    lock_ttl_ms,
                    ..Default::default()
                };
                async move { kv.prewrite(req).await }
            },
            |r: &pb::CommandResponse| (r.partition_error.as_ref(), r.key_error.as_ref()),
        )
        .await
    }

    /// Commits `mutations` of the transaction `start_ts` in one phase, if every key lies in
    /// one partition and its leader can pick a commit timestamp no higher than
    /// `max_commit_ts`. Returns the commit timestamp, or `None` when the keys span partitions
    /// or the leader declined; nothing was written then. A request retried after an unknown
    /// outcome is safe: a leader that finds the transaction's own records answers as if it
    /// committed now.
    pub async fn one_pc(
        &self,
        mutations: Vec<pb::Mutation>,
        start_ts: u64,
        max_commit_ts: u64,
    ) -> Result<Option<u64>> {
        let Some(first) = mutations.first().map(|m| m.key.clone()) else {
            return Ok(None);
        };
        let mutations = &mutations;
        let (resp, _) = self
            .with_leader(
                &first,
                move |mut kv, ctx, partition| {
                    let whole = mutations.iter().all(|m| partition.contains(&m.key));
                    let req = pb::PrewriteRequest {
                        context: Some(ctx),
                        mutations: if whole { mutations.clone() } else { Vec::new() },
                        start_ts,
                        one_pc: true,
                        max_commit_ts,
                        ..Default::default()
                    };
                    async move {
                        if whole {
                            kv.prewrite(req).await
                        } else {
                            // Spread over partitions: two phases.
                            Ok(tonic::Response::new(pb::CommandResponse::default()))
                        }
                    }
                },
                |r: &pb::CommandResponse| r.partition_error.as_ref(),
            )
            .await?;
        if let Some(err) = resp.key_error {
            return Err(ClientError::Key(Box::new(err)));
        }
        Ok((resp.one_pc_commit_ts != 0).then_some(resp.one_pc_commit_ts))
    }

    /// Commits `keys` of the transaction `start_ts` at `commit_ts`, in every partition they
    /// touch at once.
    pub async fn commit(&self, keys: Vec<Vec<u8>>, start_ts: u64, commit_ts: u64) -> Result<()> {
        self.per_partition(
            keys,
            false,
            move |mut kv, ctx, group| {
                let req = pb::CommitRequest {
                    context: Some(ctx),
                    keys: group.into_iter().map(Into::into).collect(),
                    start_ts,
                    commit_ts,
                };
                async move { kv.commit(req).await }
            },
            |r: &pb::CommandResponse| (r.partition_error.as_ref(), r.key_error.as_ref()),
        )
        .await
    }

    /// Rolls back `keys` of the transaction `start_ts`, in every partition they touch at once.
    pub async fn rollback(&self, keys: Vec<Vec<u8>>, start_ts: u64) -> Result<()> {
        self.per_partition(
            keys,
            false,
            move |mut kv, ctx, group| {
                let req = pb::RollbackRequest {
                    context: Some(ctx),
                    keys: group.into_iter().map(Into::into).collect(),
                    start_ts,
                };
                async move { kv.rollback(req).await }
            },
            |r: &pb::CommandResponse| (r.partition_error.as_ref(), r.key_error.as_ref()),
        )
        .await
    }

    /// Commits (with `commit_ts`) or rolls back (without) the leftover locks of the
    /// transaction `start_ts` on `keys`, in every partition they touch at once.
    pub async fn resolve_lock(
        &self,
        start_ts: u64,
        commit_ts: Option<u64>,
        keys: Vec<Vec<u8>>,
    ) -> Result<()> {
        self.per_partition(
            keys,
            false,
            move |mut kv, ctx, group| {
                let req = pb::ResolveLockRequest {
                    context: Some(ctx),
                    start_ts,
                    commit_ts: commit_ts.unwrap_or(0),
                    keys: group.into_iter().map(Into::into).collect(),
                };
                async move { kv.resolve_lock(req).await }
            },
            |r: &pb::CommandResponse| (r.partition_error.as_ref(), r.key_error.as_ref()),
        )
        .await
    }

    /// Decides the fate of the transaction `lock_ts` whose primary is `primary`, rolling it
    /// back if its lock expired by `current_ts`.
    pub async fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: u64,
        current_ts: u64,
    ) -> Result<pb::TxnStatus> {
        let primary_bytes = bytes::Bytes::copy_from_slice(primary);
        let (resp, _) = self
            .with_leader(
                primary,
                |mut kv, ctx, _| {
                    let primary = primary_bytes.clone();
                    async move {
                        kv.check_txn_status(pb::CheckTxnStatusRequest {
                            context: Some(ctx),
                            primary,
                            lock_ts,
                            current_ts,
                        })
                        .await
                    }
                },
                |r: &pb::CommandResponse| r.partition_error.as_ref(),
            )
            .await?;
        if let Some(err) = resp.key_error {
            return Err(ClientError::Key(Box::new(err)));
        }
        resp.txn_status
            .ok_or_else(|| ClientError::Transport("a status answer without a status".into()))
    }
}
