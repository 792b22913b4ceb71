//! [`StoreCluster`]: real `reef store` processes on loopback, for multi-process tests and the
//! replication benchmark, with a small gRPC client that finds the leader and commits
//! transactions through leader changes.
//!
//! Debugging: `REEF_TEST_LOG` sets the nodes' log filter (default `warn`); `REEF_TEST_KEEP=1`
//! sends each node's log to `node<ID>.log` in the cluster directory and keeps that directory
//! (data directories included) when the cluster is dropped, printing its path.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reef_rpc::pb;
use reef_rpc::pb::admin_client::AdminClient;
use reef_rpc::pb::kv_client::KvClient;
use tonic::transport::Channel;

use crate::error::Error;
use crate::server::free_port;

/// The cluster id the harness's nodes share.
pub const CLUSTER_ID: u64 = 7;

/// The prewrite of a one-key transaction writing `key = value` (its own primary).
pub fn put_prewrite(
    ctx: pb::Context,
    key: bytes::Bytes,
    value: bytes::Bytes,
    start_ts: u64,
    lock_ttl_ms: u64,
) -> pb::PrewriteRequest {
    pb::PrewriteRequest {
        context: Some(ctx),
        mutations: vec![pb::Mutation {
            op: pb::mutation::Op::Put as i32,
            key: key.clone(),
            value,
            conflict_ts: 0,
        }],
        primary: key,
        start_ts,
        lock_ttl_ms,
        ..Default::default()
    }
}

/// The commit, at `start_ts + 1`, of the one-key transaction [`put_prewrite`] started.
pub fn put_commit(ctx: pb::Context, key: bytes::Bytes, start_ts: u64) -> pb::CommitRequest {
    pb::CommitRequest {
        context: Some(ctx),
        keys: vec![key],
        start_ts,
        commit_ts: start_ts + 1,
    }
}

/// One `reef store` process.
pub struct StoreNode {
    /// The node id.
    pub id: u64,
    /// The gRPC address.
    pub addr: String,
    /// The data directory.
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl StoreNode {
    /// Returns true if the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// How a [`StoreCluster`]'s nodes come together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Fixed membership (`--peer` lists); the first `founders` nodes share partition 1.
    Fixed {
        /// How many nodes found the cluster.
        founders: u64,
    },
    /// Run by the root service: node 1 founds the cluster, the others `--join` it in order
    /// (so node `i + 1` is at index `i`), with heartbeats every `heartbeat_ms`.
    Joined {
        /// Milliseconds between heartbeats.
        heartbeat_ms: u64,
    },
}

/// A cluster of `reef store` processes.
pub struct StoreCluster {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    tick_ms: u64,
    membership: Membership,
    /// The cluster id: [`CLUSTER_ID`] with fixed membership, the founder's choice otherwise.
    pub cluster_id: u64,
    extra_args: Vec<String>,
    /// The nodes, node `i + 1` at index `i`.
    pub nodes: Vec<StoreNode>,
    peers: Vec<String>,
    channels: std::collections::HashMap<usize, Channel>,
}

/// Returns true when `REEF_TEST_KEEP` asks to keep clusters' data directories and node logs.
fn keep() -> bool {
    std::env::var_os("REEF_TEST_KEEP").is_some()
}

impl StoreCluster {
    /// Starts `n` nodes of `bin` (`reef`) with `tick_ms` between Raft ticks, each with a fresh
    /// data directory, and waits until each says it is ready.
    pub fn start(bin: &Path, n: u64, tick_ms: u64) -> Result<StoreCluster, Error> {
        StoreCluster::start_with(bin, n, n, tick_ms, &[])
    }

    /// Starts `n` nodes of which the first `founders` found the cluster (the others start
    /// empty), passing `extra_args` to every `reef store`.
    pub fn start_with(
        bin: &Path,
        n: u64,
        founders: u64,
        tick_ms: u64,
        extra_args: &[&str],
    ) -> Result<StoreCluster, Error> {
        StoreCluster::start_as(bin, n, Membership::Fixed { founders }, tick_ms, extra_args)
    }

    /// Starts `n` nodes that come together as `membership` says, passing `extra_args` to every
    /// `reef store`.
    pub fn start_as(
        bin: &Path,
        n: u64,
        membership: Membership,
        tick_ms: u64,
        extra_args: &[&str],
    ) -> Result<StoreCluster, Error> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
        if keep() {
            eprintln!("cluster directory (kept): {}", dir.path().display());
        }
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(StoreNode {
                id,
                addr: format!("127.0.0.1:{}", free_port()?),
                data_dir: dir.path().join(format!("node{id}")),
                child: None,
            });
        }
        let peers = nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.addr))
            .collect();
        let mut cluster = StoreCluster {
            _dir: dir,
            bin: bin.to_path_buf(),
            tick_ms,
            membership,
            cluster_id: CLUSTER_ID,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            nodes,
            peers,
            channels: Default::default(),
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Starts (or restarts, on its data directory) node index `i`.
    pub fn spawn(&mut self, i: usize) -> Result<(), Error> {
        let node = &self.nodes[i];
        let mut cmd = Command::new(&self.bin);
        cmd.arg("store")
            .args(["--listen", &node.addr])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--tick-ms", &self.tick_ms.to_string()])
            .args([
                "--log",
                &std::env::var("REEF_TEST_LOG").unwrap_or("warn".into()),
            ]);
        // Kept clusters log to a file per node (appended across restarts); others to stderr.
        let stderr = if keep() {
            let path = self._dir.path().join(format!("node{}.log", node.id));
            Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?,
            )
        } else {
            Stdio::inherit()
        };
        match self.membership {
            Membership::Fixed { founders } => {
                cmd.args(["--node-id", &node.id.to_string()])
                    .args(["--cluster-id", &CLUSTER_ID.to_string()])
                    .arg("--founders")
                    .arg(
                        (1..=founders)
                            .map(|id| id.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                for p in &self.peers {
                    cmd.arg("--peer").arg(p);
                }
            }
            Membership::Joined { heartbeat_ms } => {
                cmd.args(["--heartbeat-ms", &heartbeat_ms.to_string()]);
                // Node 1 founds the cluster on its first start; everyone else (and node 1
                // on a restart) joins through the other nodes.
                let others: Vec<&str> = self
                    .nodes
                    .iter()
                    .filter(|n| n.id != node.id && (n.id < node.id || n.data_dir.exists()))
                    .map(|n| n.addr.as_str())
                    .collect();
                if !others.is_empty() {
                    cmd.arg("--join").arg(others.join(","));
                }
            }
        }
        cmd.args(&self.extra_args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.bin.display()), e))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| Error::io("reading the node's first line", e))?;
        let expected = format!("node {} ", node.id);
        if !line.contains("reef store ready") || !line.contains(&expected) {
            let _ = child.kill();
            return Err(Error::Cluster(format!(
                "node {} did not start: {line:?}",
                node.id
            )));
        }
        if let Some(id) = line
            .split("of cluster ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse().ok())
        {
            self.cluster_id = id;
        }
        self.nodes[i].child = Some(child);
        self.channels.remove(&i);
        Ok(())
    }

    /// Kills node index `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) -> Result<(), Error> {
        let mut child = self.nodes[i].child.take().ok_or(Error::NotRunning)?;
        child.kill().map_err(|e| Error::io("killing a node", e))?;
        child
            .wait()
            .map_err(|e| Error::io("waiting for a node", e))?;
        self.channels.remove(&i);
        Ok(())
    }

    /// Returns node index `i`'s process id, so another thread can signal it mid-operation.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Waits for node index `i`, which another thread killed, and marks it stopped.
    pub fn reap(&mut self, i: usize) -> Result<(), Error> {
        let mut child = self.nodes[i].child.take().ok_or(Error::NotRunning)?;
        child
            .wait()
            .map_err(|e| Error::io("waiting for a node", e))?;
        self.channels.remove(&i);
        Ok(())
    }

    /// Stops every node with SIGTERM and waits for them to exit.
    pub fn stop_all(&mut self) -> Result<(), Error> {
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            // SAFETY: kill(2) with a pid this process spawned and still owns.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child
                    .try_wait()
                    .map_err(|e| Error::io("waiting for a node", e))?
                    .is_some()
                {
                    break;
                }
                if Instant::now() > deadline {
                    let stacks = crate::server::thread_stacks(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::StopTimeout {
                        secs: 20,
                        stacks,
                        tail: String::new(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.channels.clear();
        Ok(())
    }

    async fn channel(&mut self, i: usize) -> Result<Channel, Error> {
        if let Some(ch) = self.channels.get(&i) {
            return Ok(ch.clone());
        }
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", self.nodes[i].addr))
            .map_err(|e| Error::Connect(e.to_string()))?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        self.channels.insert(i, ch.clone());
        Ok(ch)
    }

    /// Returns every running node's replica statuses.
    pub async fn status(&mut self, i: usize) -> Result<pb::StatusResponse, Error> {
        let ch = self.channel(i).await?;
        let resp = AdminClient::new(ch)
            .status(pb::StatusRequest {
                cluster_id: self.cluster_id,
            })
            .await;
        match resp {
            Ok(resp) => Ok(resp.into_inner()),
            Err(status) => {
                self.channels.remove(&i);
                Err(Error::Connect(status.to_string()))
            }
        }
    }

    /// Returns the index of the node leading partition 1 and the partition's epoch, waiting up
    /// to `deadline` for one.
    pub async fn leader(&mut self, deadline: Duration) -> Result<(usize, pb::Epoch), Error> {
        let (i, partition) = self.leader_where(deadline, |p| p.id == 1).await?;
        Ok((i, partition.epoch.unwrap_or_default()))
    }

    /// Returns the index of the node leading the partition that holds `key`, and that
    /// partition, waiting up to `deadline` for one.
    pub async fn leader_for(
        &mut self,
        key: &[u8],
        deadline: Duration,
    ) -> Result<(usize, pb::Partition), Error> {
        self.leader_where(deadline, |p| p.contains(key)).await
    }

    async fn leader_where(
        &mut self,
        deadline: Duration,
        wanted: impl Fn(&pb::Partition) -> bool,
    ) -> Result<(usize, pb::Partition), Error> {
        let until = Instant::now() + deadline;
        loop {
            for i in 0..self.nodes.len() {
                if !self.nodes[i].running() {
                    continue;
                }
                let Ok(status) = self.status(i).await else {
                    continue;
                };
                for r in status.replicas {
                    if r.role == "leader" {
                        if let Some(p) = r.partition.filter(|p| wanted(p)) {
                            return Ok((i, p));
                        }
                    }
                }
            }
            if Instant::now() > until {
                return Err(Error::Cluster(format!("no leader within {deadline:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Returns the partitions node index `i` hosts initialised replicas of.
    pub async fn partitions(&mut self, i: usize) -> Result<Vec<pb::Partition>, Error> {
        Ok(self
            .status(i)
            .await?
            .replicas
            .into_iter()
            .filter_map(|r| r.partition)
            .collect())
    }

    /// Returns the leader of the partition holding `key` and the request context addressing
    /// the partition there.
    async fn route(&mut self, key: &[u8]) -> Result<(usize, pb::Context), Error> {
        let (leader, partition) = self.leader_for(key, Duration::from_secs(30)).await?;
        let ctx = pb::Context {
            cluster_id: self.cluster_id,
            node_id: self.nodes[leader].id,
            partition_id: partition.id,
            epoch: partition.epoch,
        };
        Ok((leader, ctx))
    }

    /// Runs an admin request on the leader of the partition holding `key`, retrying for up to
    /// 30 s while the partition's leader moves or is busy. `request` makes the call with the
    /// context addressing the leader.
    async fn admin<F, Fut>(&mut self, key: &[u8], request: F) -> Result<(), Error>
    where
        F: Fn(AdminClient<Channel>, pb::Context) -> Fut,
        Fut:
            std::future::Future<Output = Result<tonic::Response<pb::AdminResponse>, tonic::Status>>,
    {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (leader, ctx) = self.route(key).await?;
            let Ok(ch) = self.channel(leader).await else {
                continue;
            };
            match request(AdminClient::new(ch), ctx).await {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    if resp.partition_error.is_none() && resp.error.is_empty() {
                        return Ok(());
                    }
                    if Instant::now() > until {
                        return Err(Error::Cluster(format!(
                            "admin request failed: {:?} {}",
                            resp.partition_error, resp.error
                        )));
                    }
                    if !resp.error.is_empty() && resp.partition_error.is_none() {
                        return Err(Error::Cluster(resp.error));
                    }
                }
                Err(_) => {
                    self.channels.remove(&leader);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Splits the partition holding `key` at `key`.
    /// A retry of a split that applied late is refused; the split counts as done when a
    /// partition starts at `key`.
    pub async fn split(&mut self, key: &[u8]) -> Result<(), Error> {
        let split_key = bytes::Bytes::copy_from_slice(key);
        let result = self
            .admin(key, |mut admin, ctx| {
                let split_key = split_key.clone();
                async move {
                    admin
                        .split(pb::SplitRequest {
                            context: Some(ctx),
                            split_key,
                        })
                        .await
                }
            })
            .await;
        self.unless_done(key, result, |p| p.start.as_ref() == key)
            .await
    }

    /// Returns `result`, or success if it failed but the partition holding `key` shows the
    /// change was made (by an earlier attempt whose answer was lost).
    async fn unless_done(
        &mut self,
        key: &[u8],
        result: Result<(), Error>,
        done: impl Fn(&pb::Partition) -> bool,
    ) -> Result<(), Error> {
        if result.is_ok() {
            return result;
        }
        let (_, partition) = self.leader_for(key, Duration::from_secs(30)).await?;
        if done(&partition) {
            Ok(())
        } else {
            result
        }
    }

    /// Changes the membership of the partition holding `key`.
    pub async fn change_replica(
        &mut self,
        key: &[u8],
        change: pb::change_replica_request::Change,
    ) -> Result<(), Error> {
        use pb::change_replica_request::Change;
        let result = self
            .admin(key, |mut admin, ctx| async move {
                admin
                    .change_replica(pb::ChangeReplicaRequest {
                        context: Some(ctx),
                        change: Some(change),
                    })
                    .await
            })
            .await;
        self.unless_done(key, result, |p| match change {
            Change::AddLearnerOnNode(node) => p.replicas.iter().any(|r| r.node_id == node),
            Change::PromoteReplica(id) => p.replicas.iter().any(|r| r.id == id && !r.learner),
            Change::RemoveReplica(id) => p.replicas.iter().all(|r| r.id != id),
        })
        .await
    }

    /// Moves the leadership of the partition holding `key` to node index `i` and waits until
    /// that node leads it (up to 30 s).
    pub async fn move_leader(&mut self, key: &[u8], i: usize) -> Result<(), Error> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (leader, partition) = self.leader_for(key, Duration::from_secs(30)).await?;
            if leader == i {
                return Ok(());
            }
            let node_id = self.nodes[i].id;
            let to_replica = partition
                .replicas
                .iter()
                .find(|r| r.node_id == node_id)
                .ok_or_else(|| Error::Cluster(format!("node {node_id} has no replica there")))?
                .id;
            self.admin(key, |mut admin, ctx| async move {
                admin
                    .transfer_leader(pb::TransferLeaderRequest {
                        context: Some(ctx),
                        to_replica,
                    })
                    .await
            })
            .await?;
            if Instant::now() > until {
                return Err(Error::Cluster(format!(
                    "node {node_id} did not take the leadership within 30 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Returns node index `i`'s highest applied index.
    pub async fn applied(&mut self, i: usize) -> Result<u64, Error> {
        let status = self.status(i).await?;
        Ok(status.replicas.iter().map(|r| r.applied).max().unwrap_or(0))
    }

    /// Commits `key = value` at `start_ts` (commit at `start_ts + 1`) on the partition holding
    /// `key`, retrying through leader changes and splits for up to 30 s until acknowledged.
    /// Both phases are idempotent for a fixed start timestamp, so a retry after a lost
    /// response is safe.
    pub async fn write(&mut self, key: &[u8], value: &[u8], start_ts: u64) -> Result<(), Error> {
        let until = Instant::now() + Duration::from_secs(30);
        let mut prewritten = false;
        loop {
            if Instant::now() > until {
                return Err(Error::Cluster(format!(
                    "write of {:?} not acknowledged within 30 s",
                    String::from_utf8_lossy(key)
                )));
            }
            let (leader, ctx) = self.route(key).await?;
            let Ok(ch) = self.channel(leader).await else {
                continue;
            };
            let mut kv = KvClient::new(ch);
            if !prewritten {
                let req = put_prewrite(
                    ctx,
                    key.to_vec().into(),
                    value.to_vec().into(),
                    start_ts,
                    60_000,
                );
                match kv.prewrite(req).await.map(|r| r.into_inner()) {
                    Ok(resp) if resp.partition_error.is_some() => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    Ok(resp) => {
                        if let Some(err) = resp.key_error {
                            return Err(Error::Cluster(format!(
                                "prewrite failed: {}",
                                err.message
                            )));
                        }
                        prewritten = true;
                    }
                    Err(_) => {
                        self.channels.remove(&leader);
                        continue;
                    }
                }
            }
            let req = put_commit(ctx, key.to_vec().into(), start_ts);
            match kv.commit(req).await.map(|r| r.into_inner()) {
                Ok(resp) if resp.partition_error.is_some() => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(resp) => {
                    return match resp.key_error {
                        Some(err) => Err(Error::Cluster(format!("commit failed: {}", err.message))),
                        None => Ok(()),
                    };
                }
                Err(_) => {
                    self.channels.remove(&leader);
                }
            }
        }
    }
}

impl Drop for StoreCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if keep() {
            if let Ok(empty) = tempfile::tempdir() {
                let dir = std::mem::replace(&mut self._dir, empty);
                eprintln!("kept the cluster directory {}", dir.keep().display());
            }
        }
    }
}
