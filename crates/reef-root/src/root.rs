//! [`Root`]: the root service as it runs on every node that may hold a root replica. Only the
//! node whose replica leads the root group answers; the others say who does.
//!
//! The leader keeps a copy of the root group's records in memory, loaded by a linearizable
//! read once per Raft term, and changes them only through raw proposals to the root partition.
//! Every request first confirms, through the partition's read path (the leader lease, or a
//! ReadIndex round), that this replica still leads in the term the copy was loaded in; a
//! request that finds a new term reloads. A deposed leader's proposals cannot commit after its
//! successor's first entry, so whatever the successor loaded includes every committed change,
//! and a proposal whose outcome is unknown drops the copy so the next request reloads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reef_common::{compose_ts, ts_physical_ms, Timestamp};
use reef_raft::{Epoch, HostMsg, Partition, RaftError, ReadView, Router};
use reef_txn::{now_ms, Command, CommandResponse, RawBatch, TsoWindow};
use tokio::sync::{oneshot, Mutex, MutexGuard};

use crate::error::{Result, RootError};
use crate::meta::{self, NodeDesc, NodeState, RootData, Settings, ROOT_PARTITION_ID, SYSTEM_END};
use crate::schedule::{self, Liveness, Move, Operation, Progress, View};

/// The smallest step, in milliseconds, by which the GC safe point moves (each move is a write
/// to the root group).
const GC_STEP_MS: u64 = 10_000;
/// How long an operator's replica move may take before placement forgets it.
const MOVE_TIMEOUT: Duration = Duration::from_secs(600);

/// The root service's settings.
#[derive(Clone, Debug)]
pub struct RootConfig {
    /// How far ahead of the handed-out timestamps the oracle's persisted limit is placed.
    pub tso_window_ms: u64,
    /// The most timestamps one request may take.
    pub max_tso_batch: u32,
    /// The least time between two balancing moves, long enough for the partition map to show
    /// the last one (a heartbeat interval or two).
    pub balance_interval: Duration,
}

impl Default for RootConfig {
    fn default() -> RootConfig {
        RootConfig {
            tso_window_ms: 3000,
            max_tso_batch: 1 << 16,
            balance_interval: Duration::from_secs(3),
        }
    }
}

/// What a node reports about one of its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaReport {
    /// The partition as the replica knows it.
    pub partition: Partition,
    /// True if the replica leads its group.
    pub leader: bool,
    /// Its Raft term.
    pub term: u64,
    /// Its commit index.
    pub commit: u64,
    /// Its applied index.
    pub applied: u64,
    /// The approximate size of its data on disk, in bytes.
    pub bytes: u64,
}

/// What a node reports about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// When its process started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The size of its data directory, in bytes.
    pub disk_bytes: u64,
}

/// A node's periodic report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The node, with its current addresses and roles (its token is ignored).
    pub node: NodeDesc,
    /// Its initialised replicas.
    pub replicas: Vec<ReplicaReport>,
    /// The start timestamp of the oldest transaction live on the node, if any: the GC safe
    /// point stays below it.
    pub min_active_ts: Option<Timestamp>,
    /// What the node says of itself.
    pub stats: NodeStats,
}

/// The root leader's answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Every member node, so the node can address its peers.
    pub nodes: Vec<NodeDesc>,
    /// Operations for partitions the node leads.
    pub operations: Vec<Operation>,
    /// The cluster's MVCC garbage collection safe point (0: none yet).
    pub gc_safe_point: Timestamp,
    /// Whether this node should collect garbage at the safe point (one node does: the root
    /// leader's).
    pub gc_driver: bool,
}

/// Where a key lives, as the root leader knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The partition holding the key.
    pub partition: Partition,
    /// The node whose replica last reported leading it.
    pub leader: Option<u64>,
    /// The nodes holding its replicas.
    pub nodes: Vec<NodeDesc>,
}

/// A node as the cluster status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub desc: NodeDesc,
    /// Its health.
    pub liveness: Liveness,
    /// Milliseconds since its last heartbeat reached this root leader.
    pub silent_ms: u64,
    /// How many replicas it holds.
    pub replicas: usize,
    /// How many partitions it leads.
    pub leaders: usize,
    /// What it last said of itself (zeros before its first heartbeat to this leader).
    pub stats: NodeStats,
}

/// A partition as the cluster status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The partition.
    pub partition: Partition,
    /// The node that last reported leading it.
    pub leader: Option<u64>,
    /// Its approximate size on disk as its leader last reported it, in bytes.
    pub bytes: u64,
}

/// The whole cluster as the root leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The root leader's node id.
    pub root_leader: u64,
    /// The settings.
    pub settings: Settings,
    /// The member nodes.
    pub nodes: Vec<NodeStatus>,
    /// The partitions.
    pub partitions: Vec<PartitionStatus>,
    /// The MVCC garbage collection safe point (0: none yet).
    pub gc_safe_point: Timestamp,
}

/// The leader of a partition, as last reported.
#[derive(Clone, Copy, Debug)]
struct Led {
    node_id: u64,
    term: u64,
}

/// What the root leader keeps for one term.
struct LeaderState {
    term: u64,
    data: RootData,
    settings: Settings,
    tso: TsoWindow,
    /// When this leader started: nodes not heard from yet count as heard from then.
    since: Instant,
    seen: HashMap<u64, Instant>,
    leaders: HashMap<u64, Led>,
    /// Node → replica id → the progress the node last reported for it.
    progress: HashMap<u64, HashMap<u64, Progress>>,
    /// Learner replica id → when this leader first saw it in a partition.
    learners: HashMap<u64, Instant>,
    /// When the last balancing move was handed out.
    balanced_at: Option<Instant>,
    /// Node → the start timestamp of its oldest live transaction as last reported to this
    /// leader (`Timestamp::MAX`: none).
    active: HashMap<u64, Timestamp>,
    /// Node → what it last said of itself.
    stats: HashMap<u64, NodeStats>,
    /// Partition → its size as its leader last reported it.
    sizes: HashMap<u64, u64>,
    /// Partition → the replica move operators asked for, and when. Kept by this leader only:
    /// a new leader knows none, and the operator's command asks again.
    moves: HashMap<u64, (Move, Instant)>,
}

impl LeaderState {
    /// Returns the GC safe point the cluster may move to: the clock less the GC life time,
    /// and below the oldest transaction live on any node that is not dead. `None` until
    /// every such node has reported to this leader (a new leader knows nobody's yet).
    fn gc_candidate(&self, now: Instant, now_ms: u64) -> Option<Timestamp> {
        let liveness = self.liveness(now);
        let mut bound = compose_ts(now_ms.saturating_sub(self.settings.gc_life_ms), 0);
        for (id, state) in &liveness {
            if *state == Liveness::Dead {
                continue;
            }
            let oldest = *self.active.get(id)?;
            bound = bound.min(oldest.saturating_sub(1));
        }
        Some(bound)
    }

    /// The nodes heard from within half the suspect time.
    fn fresh(&self, now: Instant) -> HashSet<u64> {
        let within = Duration::from_millis(self.settings.suspect_after_ms / 2);
        self.seen
            .iter()
            .filter(|(_, at)| now.duration_since(**at) < within)
            .map(|(id, _)| *id)
            .collect()
    }

    fn liveness(&self, now: Instant) -> HashMap<u64, Liveness> {
        let suspect = Duration::from_millis(self.settings.suspect_after_ms);
        let dead = Duration::from_millis(self.settings.dead_after_ms);
        self.data
            .nodes
            .keys()
            .map(|&id| {
                let silent = now.duration_since(self.seen.get(&id).copied().unwrap_or(self.since));
                let liveness = if silent >= dead {
                    Liveness::Dead
                } else if silent >= suspect {
                    Liveness::Suspect
                } else {
                    Liveness::Up
                };
                (id, liveness)
            })
            .collect()
    }

    fn leader_counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for led in self.leaders.values() {
            *counts.entry(led.node_id).or_default() += 1;
        }
        counts
    }

    /// Returns true if no partition in the map is in the middle of a membership change (a
    /// learner, or more voters than its target), so balancing may start another.
    fn settled(&self) -> bool {
        self.data.partitions.values().all(|p| {
            p.replicas.iter().all(|r| !r.learner)
                && p.replicas.len() as u64 <= schedule::target(p.id, &self.settings)
        })
    }

    /// Returns true if `op` for `partition` is a balancing move rather than a repair: a
    /// learner added to a partition that has its full set of voters on active nodes that are
    /// not dead, or a leadership transfer away from an active node.
    /// Operations that serve operators' requests (a move, a draining or decommissioning node)
    /// are not balancing either, and are never held back.
    fn is_balancing(
        &self,
        partition: &Partition,
        leader_node: u64,
        op: &Operation,
        liveness: &HashMap<u64, Liveness>,
    ) -> bool {
        let target = schedule::target(partition.id, &self.settings);
        if self.moves.contains_key(&partition.id) {
            return false;
        }
        let active = |node_id: u64| {
            liveness.get(&node_id) != Some(&Liveness::Dead)
                && self
                    .data
                    .nodes
                    .get(&node_id)
                    .is_some_and(|n| n.state == NodeState::Active)
        };
        match op {
            // A move onto a preferred node off another serves the operators' preference.
            Operation::TransferLeader { to_replica_id, .. } => {
                let to_node = partition
                    .replicas
                    .iter()
                    .find(|r| r.id == *to_replica_id)
                    .map_or(0, |r| r.node_id);
                let serves_preference = self.settings.prefers_leader(to_node)
                    && !self.settings.prefers_leader(leader_node);
                active(leader_node) && !serves_preference
            }
            Operation::Change {
                change: reef_raft::ReplicaChange::AddLearner { .. },
                ..
            } => {
                let staying = partition
                    .replicas
                    .iter()
                    .filter(|r| !r.learner && active(r.node_id))
                    .count() as u64;
                staying >= target
            }
            Operation::Change { .. } => false,
        }
    }

    fn replica_counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for partition in self.data.partitions.values() {
            for replica in &partition.replicas {
                *counts.entry(replica.node_id).or_default() += 1;
            }
        }
        counts
    }
}

/// The root service of one node.
pub struct Root {
    node_id: u64,
    router: Router,
    config: RootConfig,
    /// The root partition's epoch version (it never splits, so this stays 1 unless an
    /// operator split it by hand).
    version: AtomicU64,
    state: Mutex<Option<LeaderState>>,
}

impl Root {
    /// Creates the root service of node `node_id`, reaching the node's replicas through
    /// `router`.
    pub fn new(node_id: u64, router: Router, config: RootConfig) -> Root {
        Root {
            node_id,
            router,
            config,
            version: AtomicU64::new(1),
            state: Mutex::new(None),
        }
    }

    /// Runs `f` on the root partition's data once this replica proved it leads, and returns
    /// what it returns.
    async fn read<T: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(&ReadView<'a>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.router.read(
            ROOT_PARTITION_ID,
            self.epoch(),
            Vec::new(),
            SYSTEM_END.to_vec(),
            // Raw records, not MVCC data: no read timestamp.
            0,
            Box::new(move |view| {
                let _ = tx.send(view.map_err(RootError::from).and_then(|view| f(&view)));
            }),
        );
        self.settle(rx.await).await
    }

    /// Proposes raw writes to the root partition and waits until they apply.
    async fn propose(&self, batch: RawBatch) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.router.send_or_fail(HostMsg::Propose {
            partition_id: ROOT_PARTITION_ID,
            epoch: self.epoch(),
            cmd: Command::Raw(batch),
            cb: Box::new(move |result| {
                let _ = tx.send(result.map_err(RootError::from));
            }),
        });
        match self.settle(rx.await).await? {
            CommandResponse::Done => Ok(()),
            other => Err(RootError::Unavailable(format!(
                "a root write did not apply: {other:?}"
            ))),
        }
    }

    fn epoch(&self) -> Epoch {
        // Reads and proposals check only the version.
        Epoch {
            conf_ver: 0,
            version: self.version.load(Ordering::Relaxed),
        }
    }

    /// Maps the replication layer's answer to the root service's.
    async fn settle<T>(
        &self,
        answer: std::result::Result<Result<T>, oneshot::error::RecvError>,
    ) -> Result<T> {
        let result = answer.unwrap_or_else(|_| {
            Err(RootError::Unavailable(
                "the replication thread stopped".into(),
            ))
        });
        match result {
            Err(RootError::Raft(RaftError::NotLeader { leader, .. })) => {
                Err(RootError::NotLeader {
                    leader: leader.map(|r| r.node_id),
                })
            }
            Err(RootError::Raft(RaftError::PartitionNotFound(_))) => {
                Err(RootError::NotLeader { leader: None })
            }
            Err(RootError::Raft(RaftError::EpochMismatch { current, .. })) => {
                if let Some(root) = current.iter().find(|p| p.id == ROOT_PARTITION_ID) {
                    self.version.store(root.epoch.version, Ordering::Relaxed);
                }
                Err(RootError::Unavailable(
                    "the root partition's epoch changed; retry".into(),
                ))
            }
            other => other,
        }
    }

    /// Confirms that this replica leads the root group and returns the state of its term,
    /// loading it first if the term is new.
    async fn leader(&self) -> Result<MutexGuard<'_, Option<LeaderState>>> {
        let term = self.read(|view| Ok(view.term)).await?;
        let mut guard = self.state.lock().await;
        if guard.as_ref().is_some_and(|s| s.term == term) {
            return Ok(guard);
        }
        *guard = None;
        let (loaded_term, data) = self
            .read(|view| Ok((view.term, RootData::load(view.mvcc)?)))
            .await?;
        if loaded_term != term {
            return Err(RootError::Unavailable(
                "root leadership changed while loading".into(),
            ));
        }
        let settings = data
            .settings
            .clone()
            .ok_or_else(|| RootError::Unavailable("the root group holds no cluster yet".into()))?;
        tracing::info!(
            term,
            nodes = data.nodes.len(),
            partitions = data.partitions.len(),
            tso_limit = data.tso_limit,
            "leading the root group"
        );
        *guard = Some(LeaderState {
            term,
            tso: TsoWindow::resume(data.tso_limit, self.config.tso_window_ms),
            data,
            settings,
            since: Instant::now(),
            seen: HashMap::new(),
            leaders: HashMap::new(),
            progress: HashMap::new(),
            learners: HashMap::new(),
            // A new leader has heard from no node yet: the counts it would balance on fill
            // in over the first heartbeats, so balancing waits one interval.
            balanced_at: Some(Instant::now()),
            active: HashMap::new(),
            stats: HashMap::new(),
            sizes: HashMap::new(),
            moves: HashMap::new(),
        });
        Ok(guard)
    }

    /// Persists `batch` for the leader state in `guard`; if the outcome is unknown, drops the
    /// state so the next request reloads what actually applied.
    async fn persist(
        &self,
        guard: &mut MutexGuard<'_, Option<LeaderState>>,
        batch: RawBatch,
    ) -> Result<()> {
        // Out of the guard while the write is in flight: if this future is dropped (the
        // caller gave up) or the write fails, the copy is gone and the next request reloads.
        let state = guard.take();
        self.propose(batch).await?;
        **guard = state;
        Ok(())
    }

    /// Returns the first of `count` timestamps, `first + i * TSO_STEP`, each greater than every
    /// timestamp this cluster handed out before.
    pub async fn tso(&self, count: u32) -> Result<Timestamp> {
        if count == 0 || count > self.config.max_tso_batch {
            return Err(RootError::InvalidArgument(format!(
                "a timestamp request takes 1 to {} timestamps, not {count}",
                self.config.max_tso_batch
            )));
        }
        let mut guard = self.leader().await?;
        loop {
            let state = guard.as_mut().expect("leader state is loaded");
            match state.tso.next(now_ms(), count as u64) {
                Ok(ts) => return Ok(ts),
                Err(limit) => {
                    self.persist(&mut guard, meta::tso_batch(limit)).await?;
                    guard
                        .as_mut()
                        .expect("kept after a successful write")
                        .tso
                        .set_limit(limit);
                }
            }
        }
    }

    /// Registers a node (`node.id` is ignored) and returns its id. A retry with the same
    /// token returns the same id.
    pub async fn join(&self, node: NodeDesc) -> Result<u64> {
        if node.addr.is_empty() {
            return Err(RootError::InvalidArgument(
                "a joining node must give its gRPC address".into(),
            ));
        }
        let mut guard = self.leader().await?;
        let state = guard.as_mut().expect("leader state is loaded");
        let now = Instant::now();
        if let Some(known) = state.data.nodes.values().find(|n| n.token == node.token) {
            return Ok(known.id);
        }
        let liveness = state.liveness(now);
        if let Some(other) = state
            .data
            .nodes
            .values()
            .find(|n| n.addr == node.addr && liveness[&n.id] != Liveness::Dead)
        {
            return Err(RootError::InvalidArgument(format!(
                "address {} belongs to node {}, which is not dead; a node that lost its data \
                 joins under a new address or after the old node is declared dead",
                node.addr, other.id
            )));
        }
        let id = state
            .data
            .next_node_id
            .max(state.data.nodes.keys().max().map_or(1, |m| m + 1));
        // A node's state is the operators' to set: every node joins active.
        let desc = NodeDesc {
            id,
            state: NodeState::Active,
            ..node
        };
        self.persist(&mut guard, meta::join_batch(&desc)).await?;
        let state = guard.as_mut().expect("kept after a successful write");
        state.data.next_node_id = id + 1;
        state.data.nodes.insert(id, desc.clone());
        state.seen.insert(id, now);
        tracing::info!(node = id, addr = %desc.addr, root = desc.root, "node joined");
        Ok(id)
    }

    /// Takes a node's heartbeat: records it as alive, updates the partition map from the
    /// replicas it leads, and returns the member list and the operations for its partitions.
    pub async fn heartbeat(&self, heartbeat: Heartbeat) -> Result<HeartbeatReply> {
        let mut guard = self.leader().await?;
        let state = guard.as_mut().expect("leader state is loaded");
        let node_id = heartbeat.node.id;
        let Some(known) = state.data.nodes.get(&node_id) else {
            return Err(RootError::InvalidArgument(format!(
                "node {node_id} is not a member of this cluster"
            )));
        };
        let now = Instant::now();
        state.seen.insert(node_id, now);
        state
            .active
            .insert(node_id, heartbeat.min_active_ts.unwrap_or(Timestamp::MAX));
        state.stats.insert(node_id, heartbeat.stats);
        let mut batch = RawBatch::default();
        // The node reports its addresses and roles; its token and state are the root's.
        let updated = NodeDesc {
            token: known.token,
            state: known.state,
            ..heartbeat.node.clone()
        };
        if *known != updated {
            batch.writes.extend(meta::node_batch(&updated).writes);
            state.data.nodes.insert(node_id, updated);
        }
        // What the node holds now replaces what it held before.
        let progress = state.progress.entry(node_id).or_default();
        progress.clear();
        for report in &heartbeat.replicas {
            if let Some(replica) = report.partition.replica_on(node_id) {
                progress.insert(
                    replica.id,
                    Progress {
                        initialised: true,
                        applied: report.applied,
                    },
                );
            }
        }
        for report in &heartbeat.replicas {
            let id = report.partition.id;
            if report.leader {
                state.sizes.insert(id, report.bytes);
                for learner in report.partition.replicas.iter().filter(|r| r.learner) {
                    state.learners.entry(learner.id).or_insert(now);
                }
                if state.leaders.get(&id).is_none_or(|l| l.term <= report.term) {
                    state.leaders.insert(
                        id,
                        Led {
                            node_id,
                            term: report.term,
                        },
                    );
                }
                if let Some(writes) = state.data.observe(&report.partition) {
                    batch.expect.extend(writes.expect);
                    batch.writes.extend(writes.writes);
                }
            }
        }
        // The safe point moves in steps (a tenth of the life time, at most GC_STEP_MS), so
        // that it costs few writes.
        if let Some(candidate) = state.gc_candidate(now, now_ms()) {
            let current = state.data.gc_safe_point;
            let step = (state.settings.gc_life_ms / 10).clamp(1, GC_STEP_MS);
            if ts_physical_ms(candidate) >= ts_physical_ms(current) + step {
                batch.writes.extend(meta::gc_batch(candidate).writes);
                state.data.gc_safe_point = candidate;
            }
        }
        if !batch.writes.is_empty() {
            self.persist(&mut guard, batch).await?;
        }
        let state = guard.as_mut().expect("kept after a successful write");
        // A move is over once the source holds no replica, or when it took too long.
        let data = &state.data;
        state.moves.retain(|id, (wanted, since)| {
            now.duration_since(*since) < MOVE_TIMEOUT
                && data
                    .partitions
                    .get(id)
                    .is_some_and(|p| p.replica_on(wanted.from).is_some())
        });
        let moves: HashMap<u64, Move> = state.moves.iter().map(|(id, (m, _))| (*id, *m)).collect();
        let state = &*state;
        let liveness = state.liveness(now);
        let counts = state.replica_counts();
        let leader_counts = state.leader_counts();
        let fresh = state.fresh(now);
        let view = View {
            nodes: &state.data.nodes,
            liveness: &liveness,
            settings: &state.settings,
            replica_counts: &counts,
            leader_counts: &leader_counts,
            fresh: &fresh,
            // No balancing while a node that is not known dead has gone quiet: the cluster
            // is riding out a failure, and moving leaders now only adds elections to it.
            balance: state.settled()
                && liveness
                    .iter()
                    .all(|(id, l)| *l == Liveness::Dead || fresh.contains(id))
                && state
                    .balanced_at
                    .is_none_or(|at| now.duration_since(at) >= self.config.balance_interval),
            moves: &moves,
        };
        let mut balancing = false;
        let operations = heartbeat
            .replicas
            .iter()
            .filter(|r| r.leader)
            .filter_map(|r| {
                let op = schedule::next_operation(
                    &view,
                    &r.partition,
                    node_id,
                    r.commit,
                    |replica| {
                        state
                            .progress
                            .get(&replica.node_id)
                            .and_then(|p| p.get(&replica.id))
                            .copied()
                    },
                    |replica| {
                        state
                            .learners
                            .get(&replica.id)
                            .map_or(Duration::ZERO, |since| now.duration_since(*since))
                    },
                )?;
                // At most one balancing move per reply: the counts it was decided on change.
                let balance = state.is_balancing(&r.partition, node_id, &op, &liveness);
                if balance && std::mem::replace(&mut balancing, true) {
                    return None;
                }
                Some(op)
            })
            .collect::<Vec<_>>();
        let nodes = state.data.nodes.values().cloned().collect();
        if balancing {
            if let Some(state) = guard.as_mut() {
                state.balanced_at = Some(now);
            }
        }
        let gc_safe_point = guard.as_ref().map_or(0, |state| state.data.gc_safe_point);
        Ok(HeartbeatReply {
            nodes,
            operations,
            gc_safe_point,
            gc_driver: node_id == self.node_id,
        })
    }

    /// Returns the partition holding `key` (with `before`, the keys just below `key`), its
    /// leader and its nodes, as far as the map knows.
    pub async fn locate(&self, key: &[u8], before: bool) -> Result<Option<Location>> {
        let guard = self.leader().await?;
        let state = guard.as_ref().expect("leader state is loaded");
        let found = if before {
            state.data.locate_before(key)
        } else {
            state.data.locate(key)
        };
        Ok(found.map(|partition| Location {
            leader: state.leaders.get(&partition.id).map(|l| l.node_id),
            nodes: partition
                .replicas
                .iter()
                .filter_map(|r| state.data.nodes.get(&r.node_id).cloned())
                .collect(),
            partition: partition.clone(),
        }))
    }

    /// Returns the whole cluster as this root leader sees it.
    pub async fn cluster(&self) -> Result<ClusterStatus> {
        let guard = self.leader().await?;
        let state = guard.as_ref().expect("leader state is loaded");
        let now = Instant::now();
        let liveness = state.liveness(now);
        let counts = state.replica_counts();
        let nodes = state
            .data
            .nodes
            .values()
            .map(|desc| NodeStatus {
                liveness: liveness[&desc.id],
                silent_ms: now
                    .duration_since(state.seen.get(&desc.id).copied().unwrap_or(state.since))
                    .as_millis() as u64,
                replicas: counts.get(&desc.id).copied().unwrap_or(0),
                leaders: state
                    .leaders
                    .values()
                    .filter(|l| l.node_id == desc.id)
                    .count(),
                stats: state.stats.get(&desc.id).copied().unwrap_or_default(),
                desc: desc.clone(),
            })
            .collect();
        Ok(ClusterStatus {
            root_leader: self.node_id,
            settings: state.settings.clone(),
            nodes,
            partitions: state
                .data
                .partitions
                .values()
                .map(|p| PartitionStatus {
                    partition: p.clone(),
                    leader: state.leaders.get(&p.id).map(|l| l.node_id),
                    bytes: state.sizes.get(&p.id).copied().unwrap_or(0),
                })
                .collect(),
            gc_safe_point: state.data.gc_safe_point,
        })
    }

    /// Records an operator's request to move partition `partition_id`'s replica on node
    /// `from` to node `to`; placement carries it out over the next heartbeats (see
    /// [`schedule::Move`]). Asking again for a move under way or done is harmless.
    pub async fn move_replica(&self, partition_id: u64, from: u64, to: u64) -> Result<()> {
        let mut guard = self.leader().await?;
        let state = guard.as_mut().expect("leader state is loaded");
        let invalid = |message: String| Err(RootError::InvalidArgument(message));
        if from == to {
            return invalid(format!("a move from node {from} to itself"));
        }
        let Some(partition) = state.data.partitions.get(&partition_id) else {
            return invalid(format!("no partition {partition_id}"));
        };
        let Some(target) = state.data.nodes.get(&to) else {
            return invalid(format!("node {to} is not a member of this cluster"));
        };
        match (partition.replica_on(from), partition.replica_on(to)) {
            (None, Some(_)) => return Ok(()),
            (None, None) => {
                return invalid(format!(
                    "node {from} holds no replica of partition {partition_id}"
                ))
            }
            (Some(_), None) => {
                let liveness = state.liveness(Instant::now());
                if liveness.get(&to) != Some(&Liveness::Up) || target.state != NodeState::Active {
                    return invalid(format!(
                        "node {to} takes no replicas: it is {} and {}",
                        liveness.get(&to).map_or("unknown", |l| l.as_str()),
                        target.state.as_str()
                    ));
                }
                if partition_id == ROOT_PARTITION_ID && !target.root {
                    return invalid(format!(
                        "node {to} does not have the root role, so it cannot hold the root \
                         partition"
                    ));
                }
            }
            // A voter on the target is a move under way only while the partition holds more
            // voters than it should (the target added, the source not yet removed).
            (Some(_), Some(r)) => {
                let voters = partition.replicas.iter().filter(|r| !r.learner).count() as u64;
                let under_way = state
                    .moves
                    .get(&partition_id)
                    .is_some_and(|(m, _)| *m == Move { from, to });
                if !r.learner
                    && !under_way
                    && voters <= schedule::target(partition_id, &state.settings)
                {
                    return invalid(format!(
                        "node {to} already holds a replica of partition {partition_id}"
                    ));
                }
            }
        }
        let since = state
            .moves
            .get(&partition_id)
            .filter(|(m, _)| *m == Move { from, to })
            .map_or_else(Instant::now, |(_, since)| *since);
        state.moves.insert(partition_id, (Move { from, to }, since));
        tracing::info!(partition = partition_id, from, to, "replica move asked for");
        Ok(())
    }

    /// Records the nodes operators want to lead every partition they hold a voter of (none:
    /// leadership spreads evenly); placement moves leaders from the next heartbeats.
    pub async fn set_preferred_leaders(&self, mut nodes: Vec<u64>) -> Result<()> {
        let mut guard = self.leader().await?;
        let state = guard.as_mut().expect("leader state is loaded");
        nodes.sort_unstable();
        nodes.dedup();
        if let Some(unknown) = nodes.iter().find(|id| !state.data.nodes.contains_key(id)) {
            return Err(RootError::InvalidArgument(format!(
                "node {unknown} is not a member of this cluster"
            )));
        }
        if state.settings.preferred_leaders == nodes {
            return Ok(());
        }
        let settings = Settings {
            preferred_leaders: nodes,
            ..state.settings.clone()
        };
        self.persist(&mut guard, meta::settings_batch(&settings))
            .await?;
        let state = guard.as_mut().expect("kept after a successful write");
        tracing::info!(nodes = ?settings.preferred_leaders, "preferred leaders set");
        state.data.settings = Some(settings.clone());
        state.settings = settings;
        Ok(())
    }

    /// Records what operators asked of node `node_id` (see [`NodeState`]); placement acts on
    /// it from the next heartbeats.
    pub async fn set_node_state(&self, node_id: u64, node_state: NodeState) -> Result<()> {
        let mut guard = self.leader().await?;
        let state = guard.as_mut().expect("leader state is loaded");
        let Some(known) = state.data.nodes.get(&node_id) else {
            return Err(RootError::InvalidArgument(format!(
                "node {node_id} is not a member of this cluster"
            )));
        };
        if known.state == node_state {
            return Ok(());
        }
        let updated = NodeDesc {
            state: node_state,
            ..known.clone()
        };
        self.persist(&mut guard, meta::node_batch(&updated)).await?;
        let state = guard.as_mut().expect("kept after a successful write");
        state.data.nodes.insert(node_id, updated);
        tracing::info!(
            node = node_id,
            state = node_state.as_str(),
            "node state set"
        );
        Ok(())
    }
}
