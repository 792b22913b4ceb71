//! [`Host`]: the replicas one node hosts, driven together.
//!
//! A host is single-threaded and deterministic: it changes only when its owner calls
//! [`step`](Host::step) (an incoming message), [`tick`](Host::tick) (time),
//! [`propose`](Host::propose), [`read`](Host::read) and the admin calls, and
//! [`handle_ready`](Host::handle_ready). The last one runs one *persist round* over every replica
//! with pending work: it gathers all their new log entries, hard states and snapshots into one
//! engine batch, writes it with at most one fsync, then sends the messages that had to wait for
//! that fsync and applies the newly committed entries. Tests drive a host directly with a
//! simulated network; [`Driver`](crate::Driver) drives a node's hosts, one per thread.
//!
//! A node may split its partitions over several hosts (see [`Shard`]); a host then recovers and
//! serves only the partitions it owns, and hands a partition that a split created for another
//! host over through [`take_handoffs`](Host::take_handoffs) and [`adopt`](Host::adopt).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, Entry, EntryType,
    MessageType,
};
use raft::{RawNode, ReadOnlyOption, StateRole};
use reef_storage::{Cf, Engine, WriteBatch};
use reef_txn::{Command, CommandResponse, Mutation, MvccStore, DATA_CFS};

use crate::cmd::{ChangeContext, CmdBody, RaftCmd};
use crate::error::{RaftError, Result};
use crate::keys;
use crate::log_store::RaftLogStore;
use crate::logger::replica_logger;
use crate::peer::{
    InflightOnePc, OnePcCallback, Peer, PendingRead, Proposal, ProposeCallback, ReadCallback,
    ReadTsSync, ReadView,
};
use crate::registry::{Refusal, Registry, Shard};
use crate::snapshot::{cf_bounds, SnapshotData};
use crate::state::{
    ApplyState, Epoch, Partition, PartitionState, PartitionStatus, Replica, StoreIdent,
};
use crate::transport::{Clock, Envelope, Transport};

/// Replication settings.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// The time between ticks.
    pub tick_interval: Duration,
    /// Ticks without a leader's message before a follower campaigns (at least).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// The randomised election timeout's range in ticks, `[min, max)`; 0 means
    /// `[election_ticks, 2 * election_ticks)`. Tests give each node its own range.
    pub min_election_ticks: usize,
    /// See `min_election_ticks`.
    pub max_election_ticks: usize,
    /// The most bytes of entries in one append message.
    pub max_size_per_msg: u64,
    /// The most append messages in flight to one follower.
    pub max_inflight_msgs: usize,
    /// Compact a partition's log when it holds more entries than this.
    pub log_gc_threshold: u64,
    /// Split a partition when its data exceeds this many bytes (0: never split automatically).
    pub split_size: u64,
    /// Ticks between a leader's log-compaction and split checks.
    pub check_ticks: usize,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            tick_interval: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            min_election_ticks: 0,
            max_election_ticks: 0,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            log_gc_threshold: 10_000,
            split_size: 96 << 20,
            check_ticks: 50,
        }
    }
}

impl RaftConfig {
    /// Returns the leader lease: 80% of the election timeout. Followers that heard from the
    /// leader within an election timeout refuse to vote (raft-rs `check_quorum`), so no other
    /// leader can be elected for an election timeout after a quorum acknowledged the leader;
    /// the margin absorbs clock-rate differences.
    pub fn lease(&self) -> Duration {
        self.tick_interval * self.election_ticks as u32 * 4 / 5
    }

    fn raw_config(&self, id: u64, applied: u64) -> raft::Config {
        raft::Config {
            id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            min_election_tick: self.min_election_ticks,
            max_election_tick: self.max_election_ticks,
            applied,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            max_uncommitted_size: 64 << 20,
            max_committed_size_per_ready: 16 << 20,
            ..raft::Config::default()
        }
    }
}

/// A membership change request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaChange {
    /// Adds a learner on a node (it catches up, then can be promoted).
    AddLearner {
        /// The node to host the new replica.
        node_id: u64,
    },
    /// Turns a learner into a voter.
    Promote {
        /// The learner's replica id.
        replica_id: u64,
    },
    /// Removes a replica (not the leader: transfer leadership first).
    Remove {
        /// The replica id.
        replica_id: u64,
    },
}

/// A read-only view of one hosted replica, for status output and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The descriptor (`None`: uninitialised).
    pub partition: Option<Partition>,
    /// This replica.
    pub replica: Replica,
    /// The Raft role.
    pub role: StateRole,
    /// The current term.
    pub term: u64,
    /// The leader's replica id (0: unknown).
    pub leader_id: u64,
    /// The commit index.
    pub commit: u64,
    /// The applied index.
    pub applied: u64,
    /// The first index in the log.
    pub first_index: u64,
    /// The last index in the log.
    pub last_index: u64,
    /// The approximate size of the replica's data on disk (flushed data only), in bytes.
    pub bytes: u64,
}

/// The node-wide parts a replica's processing needs besides the replica itself.
struct Ctx {
    node_id: u64,
    engine: Arc<dyn Engine>,
    mvcc: MvccStore,
    config: RaftConfig,
    clock: Arc<dyn Clock>,
    transport: Box<dyn Transport>,
    shard: Shard,
    registry: Arc<Registry>,
    metrics: RaftMetrics,
}

/// The replication counters of the process (see `reef_common::metrics`).
struct RaftMetrics {
    proposals: reef_common::metrics::Counter,
    applied: reef_common::metrics::Counter,
    rounds: reef_common::metrics::Counter,
    elections_won: reef_common::metrics::Counter,
}

impl RaftMetrics {
    fn new() -> RaftMetrics {
        let r = reef_common::metrics::registry();
        RaftMetrics {
            proposals: r.counter(
                "reef_raft_proposals_total",
                "Raft proposals (commands, splits, membership changes) accepted by leaders here.",
                &[],
                &[],
            ),
            applied: r.counter(
                "reef_raft_entries_applied_total",
                "Raft log entries applied by the replicas here.",
                &[],
                &[],
            ),
            rounds: r.counter(
                "reef_raft_persist_rounds_total",
                "Persist rounds that wrote Raft state (one write, at most one fsync, each).",
                &[],
                &[],
            ),
            elections_won: r.counter(
                "reef_raft_leaderships_won_total",
                "Times a replica here became its partition's leader.",
                &[],
                &[],
            ),
        }
    }
}

/// What applying a batch of entries asks the host to do afterwards.
#[derive(Default)]
struct ApplyEffects {
    /// Partitions created by splits, to start replicas for.
    created: Vec<Handoff>,
}

/// A partition a split created, for its host to start.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// The new partition, already recorded on disk.
    pub partition: Partition,
    /// Whether its replica here should campaign at once (the parent's replica here led).
    pub campaign: bool,
}

/// The replicas of one node (or, when the node runs several hosts, the share one host owns).
pub struct Host {
    ctx: Ctx,
    peers: BTreeMap<u64, Peer>,
    ticks: u64,
    handoffs: Vec<Handoff>,
    /// Partitions with a snapshot reserved in the registry since the last persist round.
    reserved: Vec<u64>,
}

impl Host {
    /// Opens the only host of a node over `engine`: checks (or, on a fresh engine, records)
    /// the node's identity, and recovers every replica recorded on disk.
    pub fn open(
        engine: Arc<dyn Engine>,
        ident: StoreIdent,
        config: RaftConfig,
        transport: Box<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> Result<Host> {
        Host::open_shard(
            engine,
            ident,
            config,
            transport,
            clock,
            Shard::SINGLE,
            Arc::new(Registry::new()),
        )
    }

    /// Opens one of a node's hosts: like [`open`](Host::open), but recovers only the replicas
    /// `shard` owns, and shares `registry` with the node's other hosts.
    pub fn open_shard(
        engine: Arc<dyn Engine>,
        ident: StoreIdent,
        config: RaftConfig,
        transport: Box<dyn Transport>,
        clock: Arc<dyn Clock>,
        shard: Shard,
        registry: Arc<Registry>,
    ) -> Result<Host> {
        match StoreIdent::load(&*engine)? {
            Some(stored) => {
                if stored != ident {
                    return Err(RaftError::InvalidArgument(format!(
                        "the data directory belongs to node {} of cluster {}, not node {} of cluster {}",
                        stored.node_id, stored.cluster_id, ident.node_id, ident.cluster_id
                    )));
                }
            }
            None => {
                let mut batch = WriteBatch::new();
                batch.put(Cf::Raft, keys::STORE_IDENT, &ident.encode());
                engine.write(&batch, true)?;
            }
        }
        let mut host = Host {
            ctx: Ctx {
                node_id: ident.node_id,
                mvcc: MvccStore::new(engine.clone()),
                engine,
                config,
                clock,
                transport,
                shard,
                registry,
                metrics: RaftMetrics::new(),
            },
            peers: BTreeMap::new(),
            ticks: 0,
            handoffs: Vec::new(),
            reserved: Vec::new(),
        };
        let (start, end) = keys::partition_keys_range();
        let mut states = Vec::new();
        {
            let mut cursor = host.ctx.engine.cursor(Cf::Raft, Some(&start), Some(&end));
            cursor.seek_to_first();
            while cursor.valid() {
                states.push(PartitionState::decode(cursor.value())?);
                cursor.next();
            }
            cursor.status()?;
        }
        for state in states {
            if !shard.owns(state.partition.id) {
                continue;
            }
            match state.status {
                PartitionStatus::Normal => {
                    host.start_peer(state.partition)?;
                }
                PartitionStatus::Tombstone { .. } => {}
                PartitionStatus::Applying => {
                    return Err(RaftError::Corruption(format!(
                        "{} was left half-installed",
                        state.partition
                    )))
                }
            }
        }
        Ok(host)
    }

    /// Returns the node id.
    pub fn node_id(&self) -> u64 {
        self.ctx.node_id
    }

    /// Returns the MVCC store over the node's engine.
    pub fn mvcc(&self) -> &MvccStore {
        &self.ctx.mvcc
    }

    /// Returns which of the node's hosts this is.
    pub fn shard(&self) -> Shard {
        self.ctx.shard
    }

    /// Creates a partition of a new cluster on this node, unless the node holds (or held) a
    /// replica of it. Every founding node calls it with the same descriptor, on the host that
    /// owns it; a restarted node calls it again harmlessly. Returns false if the partition was
    /// already recorded here.
    pub fn bootstrap(&mut self, partition: Partition) -> Result<bool> {
        if !self.ctx.shard.owns(partition.id) {
            return Err(RaftError::InvalidArgument(format!(
                "{partition} belongs to another host of node {}",
                self.ctx.node_id
            )));
        }
        if self
            .ctx
            .engine
            .get(Cf::Raft, &keys::partition_key(partition.id))?
            .is_some()
        {
            return Ok(false);
        }
        if partition.replica_on(self.ctx.node_id).is_none() {
            return Err(RaftError::InvalidArgument(format!(
                "{partition} has no replica on node {}",
                self.ctx.node_id
            )));
        }
        let mut batch = WriteBatch::new();
        write_initial_states(&mut batch, &partition);
        self.ctx.engine.write(&batch, true)?;
        let (id, single) = (partition.id, partition.replicas.len() == 1);
        self.start_peer(partition)?;
        if single {
            let peer = self.peers.get_mut(&id).expect("just started");
            peer.raw.campaign()?;
        }
        Ok(true)
    }

    /// Starts the replica of an initialised partition from its persisted state.
    fn start_peer(&mut self, partition: Partition) -> Result<()> {
        let replica = *partition.replica_on(self.ctx.node_id).ok_or_else(|| {
            RaftError::Corruption(format!(
                "{partition} is recorded on node {} but has no replica there",
                self.ctx.node_id
            ))
        })?;
        let id = partition.id;
        self.ctx.registry.set(&partition);
        let store = RaftLogStore::load(self.ctx.engine.clone(), id, Some(partition))?;
        let peer = self.new_peer(store, replica)?;
        self.ctx.registry.set_gate(id, peer.gate.clone());
        self.peers.insert(id, peer);
        Ok(())
    }

    fn new_peer(&self, store: RaftLogStore, replica: Replica) -> Result<Peer> {
        let applied = store.apply_state.applied_index;
        let config = self.ctx.config.raw_config(replica.id, applied);
        let logger = replica_logger(store.partition_id(), replica.id);
        let raw = RawNode::new(&config, store, &logger)?;
        Ok(Peer::new(raw, replica))
    }

    // ----- Inputs -----

    /// Hands an incoming message to its replica, creating the replica if the message may
    /// legitimately create one. Messages for another node, for a stale replica, or that would
    /// create a replica overlapping one this node hosts are dropped (and logged).
    pub fn step(&mut self, env: Envelope) {
        if env.to.node_id != self.ctx.node_id {
            tracing::warn!(
                partition = env.partition_id,
                to_node = env.to.node_id,
                "dropping a message addressed to another node"
            );
            return;
        }
        if !self.peers.contains_key(&env.partition_id) && !self.maybe_create_peer(&env) {
            return;
        }
        if env.message.get_msg_type() == MessageType::MsgSnapshot {
            if !snapshot_acceptable(&self.ctx.registry, &env) {
                return;
            }
            // Held until the next persist round installs it or finds raft-rs refused it.
            self.reserved.push(env.partition_id);
        }
        let peer = self.peers.get_mut(&env.partition_id).expect("exists");
        if peer.replica.id != env.to.id {
            tracing::debug!(
                partition = env.partition_id,
                local = peer.replica.id,
                to = env.to.id,
                "dropping a message for another replica id"
            );
            return;
        }
        if let Some(partition) = peer.partition() {
            if env.removed {
                // A member saw a membership this replica has not applied yet, without it.
                if env.epoch.conf_ver > partition.epoch.conf_ver && peer.removed.is_none() {
                    tracing::info!(
                        partition = env.partition_id,
                        replica = peer.replica.id,
                        "told by a member that this replica was removed"
                    );
                    peer.removed = Some(env.epoch.conf_ver);
                }
                return;
            }
            if partition.replica(env.from.id).is_none()
                && env.epoch.conf_ver < partition.epoch.conf_ver
            {
                // The sender missed its own removal (it was down or cut off when it applied
                // here): it would campaign forever. Tell it instead of stepping the message.
                tracing::debug!(
                    partition = env.partition_id,
                    from = env.from.id,
                    "message from a removed replica"
                );
                peer.send_removed(env.from, &mut *self.ctx.transport);
                return;
            }
        } else if env.removed {
            return;
        }
        peer.known.insert(env.from.id, env.from);
        match peer.raw.step(env.message) {
            Ok(()) | Err(raft::Error::StepPeerNotFound) => {}
            Err(err) => tracing::warn!(partition = env.partition_id, %err, "raft step failed"),
        }
    }

    fn maybe_create_peer(&mut self, env: &Envelope) -> bool {
        let creating = matches!(
            env.message.get_msg_type(),
            MessageType::MsgAppend
                | MessageType::MsgHeartbeat
                | MessageType::MsgSnapshot
                | MessageType::MsgRequestVote
                | MessageType::MsgRequestPreVote
        );
        if !creating {
            return false;
        }
        match self
            .ctx
            .engine
            .get(Cf::Raft, &keys::partition_key(env.partition_id))
        {
            Ok(Some(raw)) => match PartitionState::decode(&raw) {
                Ok(PartitionState {
                    status: PartitionStatus::Tombstone { removed_at },
                    partition,
                }) if env.epoch.conf_ver <= removed_at
                    || partition.replica_on(self.ctx.node_id).map(|r| r.id) == Some(env.to.id) =>
                {
                    // The sender has not seen this node's replica removed (a membership that
                    // still holds the destroyed replica has a version at or below the
                    // removal's): recreating it with an empty log would let it vote again.
                    // A membership that added this node back is newer, with a new replica id.
                    tracing::debug!(
                        partition = env.partition_id,
                        to = env.to.id,
                        "message for a removed replica"
                    );
                    return false;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(partition = env.partition_id, %err, "bad partition record");
                    return false;
                }
            },
            Ok(None) => {}
            Err(err) => {
                tracing::error!(partition = env.partition_id, %err, "cannot read partition record");
                return false;
            }
        }
        if self.ctx.registry.contains(env.partition_id) {
            // A split here created it for this host, which has yet to adopt it.
            tracing::debug!(
                partition = env.partition_id,
                "message for a partition waiting to be started"
            );
            return false;
        }
        if let Some(other) = self
            .ctx
            .registry
            .overlapping(env.partition_id, &env.start, &env.end)
        {
            tracing::debug!(
                partition = env.partition_id,
                overlapping = other,
                "not creating a replica that overlaps a hosted partition"
            );
            return false;
        }
        let store = match RaftLogStore::load(self.ctx.engine.clone(), env.partition_id, None) {
            Ok(store) => store,
            Err(err) => {
                tracing::error!(partition = env.partition_id, %err, "cannot load replica state");
                return false;
            }
        };
        match self.new_peer(store, env.to) {
            Ok(peer) => {
                tracing::info!(
                    partition = env.partition_id,
                    replica = env.to.id,
                    "created an uninitialised replica for an incoming message"
                );
                self.ctx
                    .registry
                    .set_gate(env.partition_id, peer.gate.clone());
                self.peers.insert(env.partition_id, peer);
                true
            }
            Err(err) => {
                tracing::error!(partition = env.partition_id, %err, "cannot create replica");
                false
            }
        }
    }

    /// Advances every replica's logical clock by one tick, and now and then checks whether a
    /// leader should compact its log or split its partition.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let check = self
            .ticks
            .is_multiple_of(self.ctx.config.check_ticks.max(1) as u64);
        let mut splits = Vec::new();
        for peer in self.peers.values_mut() {
            peer.raw.tick();
            if check && peer.is_leader() {
                if let Err(err) = maybe_compact(&self.ctx, peer) {
                    tracing::warn!(partition = peer.partition_id(), %err, "log compaction check failed");
                }
                match split_key_if_large(&self.ctx, peer) {
                    Ok(Some(key)) => splits.push((peer.partition_id(), key)),
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(partition = peer.partition_id(), %err, "split check failed")
                    }
                }
            }
            if check {
                // Read-index requests ride on heartbeats that may be lost: send them again.
                peer.retry_reads();
            }
        }
        for (id, key) in splits {
            let Some(epoch) = self.peers[&id].partition().map(|p| p.epoch) else {
                continue;
            };
            tracing::info!(partition = id, split_key = %key.escape_ascii(), "splitting a large partition");
            self.split(
                id,
                epoch,
                key,
                Box::new(move |result| {
                    if let Err(err) = result {
                        tracing::warn!(partition = id, %err, "automatic split failed");
                    }
                }),
            );
        }
    }

    /// Proposes a Percolator command on a partition; `cb` gets its outcome once applied.
    pub fn propose(&mut self, partition_id: u64, epoch: Epoch, cmd: Command, cb: ProposeCallback) {
        let result = self.prepare(partition_id, epoch, |partition| {
            check_keys(partition, &cmd)?;
            Ok(CmdBody::Txn(cmd))
        });
        self.submit(partition_id, result, cb);
    }

    /// Commits a transaction whose keys all lie in one partition in one step
    /// ([`Command::OnePc`]), if this leader can: it must know a timestamp above every read any
    /// leader of the partition served (see [`Host::sync_read_ts`]), and the commit timestamp
    /// it picks (the smallest odd timestamp above that and `start_ts`) must not exceed
    /// `max_commit_ts`. Otherwise
    /// `cb` gets `Ok(None)` at once and nothing was proposed. Once applied, `cb` gets the
    /// commit timestamp; reads that must see the writes wait until then.
    pub fn propose_one_pc(
        &mut self,
        partition_id: u64,
        epoch: Epoch,
        mutations: Vec<Mutation>,
        start_ts: u64,
        max_commit_ts: u64,
        cb: OnePcCallback,
    ) {
        // The gate stays locked until the commit is listed in it: a read admitted meanwhile
        // on another thread either raised the highest read timestamp first (and the commit
        // lands above it) or finds the commit listed and waits for it.
        let (gate, unsynced) = match self.peers.get(&partition_id) {
            Some(peer) => (
                peer.gate.clone(),
                peer.is_leader() && peer.read_ts_sync != ReadTsSync::Synced,
            ),
            None => return cb(Err(RaftError::PartitionNotFound(partition_id))),
        };
        let mut gate = gate.lock();
        // Odd, so never an oracle timestamp (see `reef_common::TSO_STEP`).
        let commit_ts = reef_common::one_phase_commit_ts(gate.max_read_ts.max(start_ts));
        if unsynced || commit_ts > max_commit_ts {
            drop(gate);
            return cb(Ok(None));
        }
        let mut keys: Vec<Vec<u8>> = mutations.iter().map(|m| m.key.clone()).collect();
        keys.sort_unstable();
        let cmd = Command::OnePc {
            mutations,
            start_ts,
            commit_ts,
        };
        let result = self.prepare(partition_id, epoch, |partition| {
            check_keys(partition, &cmd)?;
            Ok(CmdBody::Txn(cmd))
        });
        let proposed = result.is_ok();
        self.submit(
            partition_id,
            result,
            Box::new(move |result| cb(result.map(|_| Some(commit_ts)))),
        );
        if let Some(peer) = self.peers.get(&partition_id) {
            let index = peer.raw.raft.raft_log.last_index();
            if proposed && peer.proposals.back().is_some_and(|p| p.index == index) {
                gate.one_pc.push_back(InflightOnePc {
                    index,
                    keys,
                    commit_ts,
                });
            }
        }
    }

    /// Marks every leader still waiting for a timestamp to cover earlier leaders' reads with
    /// `mark`. The node then fetches a timestamp from the oracle and hands it to
    /// [`Host::sync_read_ts`] with the same mark: fetched after these replicas became
    /// leaders, it is above every read their predecessors served (a predecessor's lease ended
    /// before they were elected).
    pub fn mark_read_ts(&mut self, mark: u64) {
        for peer in self.peers.values_mut() {
            if peer.is_leader() && peer.read_ts_sync == ReadTsSync::Pending(None) {
                peer.read_ts_sync = ReadTsSync::Pending(Some(mark));
            }
        }
    }

    /// Raises the highest read timestamp of every leader marked at or before `mark` to `ts`,
    /// an oracle timestamp fetched after the mark (see [`Host::mark_read_ts`]); those leaders
    /// may commit in one phase from now on.
    pub fn sync_read_ts(&mut self, mark: u64, ts: u64) {
        for peer in self.peers.values_mut() {
            if let ReadTsSync::Pending(Some(marked)) = peer.read_ts_sync {
                if marked <= mark && peer.is_leader() {
                    let mut gate = peer.gate.lock();
                    gate.max_read_ts = gate.max_read_ts.max(ts);
                    peer.read_ts_sync = ReadTsSync::Synced;
                }
            }
        }
    }

    /// Splits a partition at `split_key` (empty: the key halfway through its data by size);
    /// `cb` gets the outcome once applied.
    pub fn split(
        &mut self,
        partition_id: u64,
        epoch: Epoch,
        split_key: Vec<u8>,
        cb: ProposeCallback,
    ) {
        let node_id = self.ctx.node_id;
        let engine = self.ctx.engine.clone();
        let registry = self.ctx.registry.clone();
        let data = self.ctx.engine.clone();
        let result = self.prepare(partition_id, epoch, |partition| {
            if partition.epoch != epoch {
                return Err(epoch_mismatch(partition, epoch));
            }
            let split_key = match split_key.is_empty() {
                false => split_key,
                true => middle_key(&*data, partition, 0)?.ok_or_else(|| {
                    RaftError::InvalidArgument(format!(
                        "{partition} holds no key past its start to split at"
                    ))
                })?,
            };
            if split_key.as_slice() < reef_common::keys::SYSTEM_END {
                return Err(RaftError::InvalidArgument(
                    "the system key range (the root group's partition) never splits".into(),
                ));
            }
            if !partition.contains(&split_key) || split_key == partition.start {
                return Err(RaftError::InvalidArgument(format!(
                    "split key '{}' is not strictly inside {partition}",
                    split_key.escape_ascii()
                )));
            }
            let first =
                registry.alloc_ids(&*engine, node_id, partition.replicas.len() as u64 + 1)?;
            Ok(CmdBody::Split {
                split_key,
                new_partition_id: first,
                new_replica_ids: (1..=partition.replicas.len() as u64)
                    .map(|i| first + i)
                    .collect(),
            })
        });
        self.submit(partition_id, result, cb);
    }

    fn prepare(
        &mut self,
        partition_id: u64,
        epoch: Epoch,
        body: impl FnOnce(&Partition) -> Result<CmdBody>,
    ) -> Result<Vec<u8>> {
        let peer = self
            .peers
            .get(&partition_id)
            .ok_or(RaftError::PartitionNotFound(partition_id))?;
        let partition = peer.check_leader()?;
        if partition.epoch.version != epoch.version {
            return Err(epoch_mismatch(partition, epoch));
        }
        let body = body(partition)?;
        Ok(RaftCmd {
            partition_id,
            epoch: partition.epoch,
            body,
        }
        .encode())
    }

    fn submit(&mut self, partition_id: u64, data: Result<Vec<u8>>, cb: ProposeCallback) {
        let data = match data {
            Ok(data) => data,
            Err(err) => return cb(Err(err)),
        };
        let now = self.ctx.clock.now();
        let peer = self
            .peers
            .get_mut(&partition_id)
            .expect("checked by prepare");
        match peer.raw.propose(Vec::new(), data) {
            Ok(()) => {
                self.ctx.metrics.proposals.inc();
                push_proposal(peer, now, cb)
            }
            Err(err) => cb(Err(dropped(peer, err))),
        }
    }

    /// Changes a partition's membership; `cb` gets the outcome once applied.
    pub fn change_replica(
        &mut self,
        partition_id: u64,
        epoch: Epoch,
        change: ReplicaChange,
        cb: ProposeCallback,
    ) {
        let now = self.ctx.clock.now();
        let Some(peer) = self.peers.get_mut(&partition_id) else {
            return cb(Err(RaftError::PartitionNotFound(partition_id)));
        };
        let ctx = &self.ctx;
        match conf_change(peer, ctx, partition_id, epoch, change) {
            Ok(cc) => match peer.raw.propose_conf_change(Vec::new(), cc) {
                Ok(()) => push_proposal(peer, now, cb),
                Err(err) => cb(Err(dropped(peer, err))),
            },
            Err(err) => cb(Err(err)),
        }
    }

    /// Asks the leader of a partition to hand leadership to another voter.
    pub fn transfer_leader(&mut self, partition_id: u64, to_replica_id: u64) -> Result<()> {
        let peer = self
            .peers
            .get_mut(&partition_id)
            .ok_or(RaftError::PartitionNotFound(partition_id))?;
        let partition = peer.check_leader()?;
        match partition.replica(to_replica_id) {
            Some(r) if !r.learner => {}
            _ => {
                return Err(RaftError::InvalidArgument(format!(
                    "replica {to_replica_id} is not a voter of {partition}"
                )))
            }
        }
        // The transferee campaigns past the followers' lease check, so the lease ends now.
        peer.end_lease();
        peer.raw.transfer_leader(to_replica_id);
        Ok(())
    }

    /// What readers on other threads need to serve reads under a lease (see
    /// [`Router::read`](crate::Router::read)).
    pub(crate) fn local_reads(&self) -> crate::driver::LocalReads {
        crate::driver::LocalReads {
            registry: self.ctx.registry.clone(),
            mvcc: MvccStore::new(self.ctx.engine.clone()),
            clock: self.ctx.clock.clone(),
        }
    }

    /// Reads from a partition: `cb` runs once the read may see every write acknowledged
    /// before it arrived, right away under a valid lease and otherwise after a ReadIndex round.
    /// `[start, end)` must lie in the partition; an empty `end` means the partition's end.
    /// `read_ts` is the MVCC timestamp the read is at (0 for none): one-phase commits take
    /// commit timestamps above every one the leader accepted, and a read that must see a
    /// one-phase commit still being applied fails with `ServerBusy`.
    pub fn read(
        &mut self,
        partition_id: u64,
        epoch: Epoch,
        start: &[u8],
        end: &[u8],
        read_ts: u64,
        cb: ReadCallback,
    ) {
        let now = self.ctx.clock.now();
        let Some(peer) = self.peers.get_mut(&partition_id) else {
            return cb(Err(RaftError::PartitionNotFound(partition_id)));
        };
        let check = peer.check_leader().and_then(|partition| {
            if partition.epoch.version != epoch.version {
                return Err(epoch_mismatch(partition, epoch));
            }
            if !partition.serves_read(start, end) {
                return Err(RaftError::KeyNotInPartition {
                    key: start.to_vec(),
                    partition: partition.clone(),
                });
            }
            Ok(())
        });
        if let Err(err) = check.and_then(|()| peer.admit_read(start, end, read_ts)) {
            return cb(Err(err));
        }
        if peer.can_read_locally(now) {
            let term = peer.raw.raft.term;
            let partition = peer.partition().expect("checked leader");
            return cb(Ok(ReadView {
                mvcc: &self.ctx.mvcc,
                partition,
                term,
            }));
        }
        peer.reads.push_back(PendingRead {
            ctx: 0,
            index: None,
            cb,
        });
        peer.flush_reads(now);
    }

    /// Tells raft-rs that a node could not be reached, so it stops pipelining to it.
    pub fn report_unreachable(&mut self, node_id: u64) {
        for peer in self.peers.values_mut() {
            if let Some(r) = peer
                .partition()
                .and_then(|p| p.replica_on(node_id))
                .copied()
            {
                peer.raw.report_unreachable(r.id);
            }
        }
    }

    /// Reports whether a snapshot reached its replica.
    pub fn report_snapshot(&mut self, partition_id: u64, replica_id: u64, delivered: bool) {
        if let Some(peer) = self.peers.get_mut(&partition_id) {
            let status = if delivered {
                raft::SnapshotStatus::Finish
            } else {
                raft::SnapshotStatus::Failure
            };
            peer.raw.report_snapshot(replica_id, status);
        }
    }

    // ----- Status -----

    /// Returns the status of every hosted replica, ordered by partition id.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        let mut out: Vec<ReplicaStatus> = self
            .peers
            .values()
            .map(|peer| {
                let store = peer.raw.store();
                let bytes = store.partition.as_ref().map_or(0, |p| {
                    let (lower, upper) = reef_txn::data_bounds(&p.start, &p.end);
                    let upper = upper.unwrap_or_else(|| vec![0xff; 9]);
                    self.ctx
                        .engine
                        .approximate_size(Cf::Write, &lower, &upper)
                        .unwrap_or(0)
                });
                ReplicaStatus {
                    bytes,
                    partition: store.partition.clone(),
                    replica: peer.replica,
                    role: peer.raw.raft.state,
                    term: peer.raw.raft.term,
                    leader_id: peer.raw.raft.leader_id,
                    commit: peer.raw.raft.raft_log.committed,
                    applied: store.apply_state.applied_index,
                    first_index: store.first_index(),
                    last_index: store.last_index(),
                }
            })
            .collect();
        out.sort_by_key(|s| s.partition.as_ref().map_or(u64::MAX, |p| p.id));
        out
    }

    /// Returns the partitions this node hosts initialised replicas of.
    pub fn partitions(&self) -> Vec<Partition> {
        let mut out: Vec<Partition> = self
            .peers
            .values()
            .filter_map(|p| p.partition().cloned())
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Returns the partitions splits created for other hosts of the node since the last call;
    /// the caller passes each to its host's [`adopt`](Host::adopt).
    pub fn take_handoffs(&mut self) -> Vec<Handoff> {
        std::mem::take(&mut self.handoffs)
    }

    /// Starts the replica of a partition a split created (on this host or another), replacing
    /// an uninitialised replica an early message created.
    pub fn adopt(&mut self, handoff: Handoff) {
        let id = handoff.partition.id;
        if !self.ctx.shard.owns(id) {
            panic!("partition {id} was handed to a host that does not own it");
        }
        if self.peers.get(&id).is_some_and(|p| p.partition().is_some()) {
            return;
        }
        if self.peers.remove(&id).is_some() {
            self.ctx.registry.remove_gate(id);
        }
        if let Err(err) = self.start_peer(handoff.partition) {
            panic!("cannot start the replica of split partition {id}: {err}");
        }
        if handoff.campaign {
            let peer = self.peers.get_mut(&id).expect("just started");
            if let Err(err) = peer.raw.campaign() {
                tracing::warn!(partition = id, %err, "campaign after split failed");
            }
        }
    }

    /// Returns true if any replica has work for [`handle_ready`](Host::handle_ready).
    pub fn has_ready(&self) -> bool {
        !self.reserved.is_empty()
            || self
                .peers
                .values()
                .any(|p| p.removed.is_some() || p.raw.has_ready())
    }

    // ----- The persist round -----

    /// Runs one persist round over every replica with pending work (see the module docs).
    pub fn handle_ready(&mut self) {
        let ctx = &mut self.ctx;
        let mut batch = WriteBatch::new();
        let mut sync = false;
        let mut readies = Vec::new();
        for (&id, peer) in self.peers.iter_mut() {
            if !peer.raw.has_ready() {
                continue;
            }
            let mut rd = peer.raw.ready();
            if let Some(ss) = rd.ss() {
                if ss.raft_state == StateRole::Leader && peer.role != StateRole::Leader {
                    ctx.metrics.elections_won.inc();
                }
                peer.on_role_change(ss.raft_state);
            }
            // A leader may send appends before its own fsync (Raft thesis 10.2.1).
            peer.send(rd.take_messages(), &mut *ctx.transport);
            let mut installed = None;
            let store = peer.raw.mut_store();
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                match store.apply_snapshot(&snap, &mut batch) {
                    Ok(partition) => installed = Some((snap.get_metadata().index, partition)),
                    Err(err) => panic!("partition {id}: cannot install a snapshot: {err}"),
                }
            }
            if !rd.entries().is_empty() {
                if let Err(err) = store.append(rd.entries(), &mut batch) {
                    panic!("partition {id}: cannot append to the Raft log: {err}");
                }
            }
            if let Some(hs) = rd.hs() {
                store.set_hard_state(hs);
            }
            if installed.is_some() || !rd.entries().is_empty() || rd.hs().is_some() {
                store.save_raft_state(&mut batch);
            }
            sync |= rd.must_sync();
            readies.push((id, rd, installed));
        }
        if !batch.is_empty() {
            ctx.metrics.rounds.inc();
            if let Err(err) = ctx.engine.write(&batch, sync) {
                // raft-rs cannot take back what it was told; continuing would lose acknowledged
                // state.
                panic!("cannot persist the Raft state: {err}");
            }
        }
        let mut effects = ApplyEffects::default();
        let lease = ctx.config.lease();
        let now = ctx.clock.now();
        for (id, mut rd, installed) in readies {
            let peer = self.peers.get_mut(&id).expect("peer of a ready");
            if let Some((_, partition)) = &installed {
                ctx.registry.set(partition);
                tracing::info!(partition = id, "installed a snapshot: {partition}");
            }
            peer.send(rd.take_persisted_messages(), &mut *ctx.transport);
            for rs in rd.take_read_states() {
                peer.on_read_state(&rs.request_ctx, rs.index, lease);
            }
            apply_entries(ctx, peer, rd.take_committed_entries(), &mut effects);
            let mut light = peer.raw.advance_append(rd);
            if let Some((index, _)) = installed {
                peer.raw.advance_apply_to(index);
            }
            if let Some(commit) = light.commit_index() {
                peer.raw.mut_store().raft_state.commit = commit;
                peer.commit_dirty = true;
            }
            peer.send(light.take_messages(), &mut *ctx.transport);
            apply_entries(ctx, peer, light.take_committed_entries(), &mut effects);
            if peer.commit_dirty {
                let mut batch = WriteBatch::new();
                peer.raw.mut_store().save_raft_state(&mut batch);
                peer.commit_dirty = false;
                if let Err(err) = ctx.engine.write(&batch, false) {
                    panic!("cannot persist the Raft state: {err}");
                }
            }
            peer.serve_reads(&ctx.mvcc);
            peer.flush_reads(now);
            peer.publish_permit();
        }
        // Installed snapshots replaced their reservations; the rest were refused by raft-rs.
        for id in self.reserved.drain(..) {
            self.ctx.registry.release(id);
        }
        self.finish_effects(effects);
        self.ctx.transport.flush();
    }

    fn finish_effects(&mut self, effects: ApplyEffects) {
        for handoff in effects.created {
            if self.ctx.shard.owns(handoff.partition.id) {
                self.adopt(handoff);
            } else {
                self.handoffs.push(handoff);
            }
        }
        let removed: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.removed.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in removed {
            let mut peer = self.peers.remove(&id).expect("listed");
            self.ctx.registry.remove_gate(id);
            peer.fail_all("the replica was removed from its partition");
            if let Err(err) = destroy_replica(&self.ctx, &peer) {
                panic!("cannot destroy removed replica of partition {id}: {err}");
            }
            tracing::info!(
                partition = id,
                replica = peer.replica.id,
                "destroyed a removed replica"
            );
        }
    }
}

/// Builds the raft-rs membership change for `change`, after checking that the replica leads,
/// that the epoch is current, that no other change is in progress and that the change makes
/// sense for the partition. A new learner gets a fresh replica id.
fn conf_change(
    peer: &Peer,
    ctx: &Ctx,
    partition_id: u64,
    epoch: Epoch,
    change: ReplicaChange,
) -> Result<ConfChangeV2> {
    let partition = peer.check_leader()?;
    if partition.epoch.conf_ver != epoch.conf_ver {
        return Err(epoch_mismatch(partition, epoch));
    }
    if peer.raw.raft.has_pending_conf() {
        return Err(RaftError::ServerBusy(format!(
            "partition {partition_id} has a membership change in progress"
        )));
    }
    let (change_type, replica) = match change {
        ReplicaChange::AddLearner { node_id: target } => {
            if partition.replica_on(target).is_some() {
                return Err(RaftError::InvalidArgument(format!(
                    "{partition} already has a replica on node {target}"
                )));
            }
            let id = ctx.registry.alloc_ids(&*ctx.engine, ctx.node_id, 1)?;
            (
                ConfChangeType::AddLearnerNode,
                Replica {
                    id,
                    node_id: target,
                    learner: true,
                },
            )
        }
        ReplicaChange::Promote { replica_id } => match partition.replica(replica_id) {
            Some(r) if r.learner => (
                ConfChangeType::AddNode,
                Replica {
                    learner: false,
                    ..*r
                },
            ),
            _ => {
                return Err(RaftError::InvalidArgument(format!(
                    "replica {replica_id} is not a learner of {partition}"
                )))
            }
        },
        ReplicaChange::Remove { replica_id } => {
            if replica_id == peer.replica.id {
                return Err(RaftError::InvalidArgument(format!(
                    "replica {replica_id} is the leader of {partition}: transfer leadership first"
                )));
            }
            match partition.replica(replica_id) {
                Some(r) => (ConfChangeType::RemoveNode, *r),
                None => {
                    return Err(RaftError::InvalidArgument(format!(
                        "replica {replica_id} is not in {partition}"
                    )))
                }
            }
        }
    };
    let mut single = ConfChangeSingle::default();
    single.set_change_type(change_type);
    single.node_id = replica.id;
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.mut_changes().push(single);
    cc.context = ChangeContext {
        partition_id,
        epoch: partition.epoch,
        replica,
    }
    .encode()
    .into();
    Ok(cc)
}

fn push_proposal(peer: &mut Peer, now: std::time::Instant, cb: ProposeCallback) {
    let index = peer.raw.raft.raft_log.last_index();
    let term = peer.raw.raft.term;
    peer.proposals.push_back(Proposal {
        index,
        term,
        issued: now,
        cb,
    });
}

fn dropped(peer: &Peer, err: raft::Error) -> RaftError {
    match err {
        raft::Error::ProposalDropped => RaftError::NotLeader {
            partition_id: peer.partition_id(),
            leader: peer.leader(),
        },
        other => RaftError::Raft(other),
    }
}

fn epoch_mismatch(partition: &Partition, requested: Epoch) -> RaftError {
    RaftError::EpochMismatch {
        partition_id: partition.id,
        requested,
        current: vec![partition.clone()],
    }
}

/// Fails unless every key the command touches lies in the partition.
fn check_keys(partition: &Partition, cmd: &Command) -> Result<()> {
    let outside = |key: &[u8]| RaftError::KeyNotInPartition {
        key: key.to_vec(),
        partition: partition.clone(),
    };
    match cmd {
        Command::Gc { start, end, .. } | Command::DestroyRange { start, end } => {
            if !partition.contains_range(start, end) {
                return Err(outside(start));
            }
        }
        _ => {
            for key in cmd.latch_keys() {
                if !partition.contains(key) {
                    return Err(outside(key));
                }
            }
        }
    }
    Ok(())
}

/// Records a new initialised replica: its descriptor and initial apply state. The Raft state
/// is left to whoever owns the replica's key: absent, or written by an uninitialised replica
/// that an early message created, it is completed at load (see [`RaftLogStore::load`]).
fn write_initial_states(batch: &mut WriteBatch, partition: &Partition) {
    let id = partition.id;
    let state = PartitionState {
        status: PartitionStatus::Normal,
        partition: partition.clone(),
    };
    batch.put(Cf::Raft, &keys::partition_key(id), &state.encode());
    batch.put(
        Cf::Raft,
        &keys::apply_state_key(id),
        &ApplyState::initial().encode(),
    );
}

/// Refuses a snapshot that does not belong to the envelope's partition, whose partition waits
/// for adoption, or whose range overlaps another partition on this node; otherwise reserves
/// its range in the registry.
fn snapshot_acceptable(registry: &Registry, env: &Envelope) -> bool {
    // Checked without copying the records; they are decoded once, when installed.
    let partition = match SnapshotData::validate(&env.message.get_snapshot().data) {
        Ok(partition) => partition,
        Err(err) => {
            tracing::warn!(partition = env.partition_id, %err, "dropping a malformed snapshot");
            return false;
        }
    };
    if partition.id != env.partition_id {
        tracing::warn!(
            partition = env.partition_id,
            "dropping a snapshot of another partition"
        );
        return false;
    }
    match registry.reserve(&partition) {
        Ok(()) => true,
        Err(Refusal::Pending) => {
            // The split that created it here has not been adopted yet; the leader retries.
            tracing::debug!(
                partition = env.partition_id,
                "dropping a snapshot for a partition waiting to be started"
            );
            false
        }
        Err(Refusal::Overlaps(other)) => {
            tracing::info!(
                partition = env.partition_id,
                overlapping = other,
                "dropping a snapshot that overlaps a hosted partition"
            );
            false
        }
    }
}

/// Applies committed entries in order, one engine write per entry (the next entry's command
/// must see this one's writes), and answers their proposals.
fn apply_entries(ctx: &Ctx, peer: &mut Peer, entries: Vec<Entry>, effects: &mut ApplyEffects) {
    if entries.is_empty() {
        return;
    }
    let lease = ctx.config.lease();
    let mut batch = WriteBatch::new();
    let mut last = 0;
    for entry in entries {
        batch.clear();
        if peer.removed.is_some() {
            break;
        }
        let result = match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => None,
            EntryType::EntryNormal => Some(exec_normal(ctx, peer, &entry, &mut batch, effects)),
            EntryType::EntryConfChangeV2 => Some(exec_conf_change(ctx, peer, &entry, &mut batch)),
            EntryType::EntryConfChange => Some(Err(RaftError::InvalidArgument(
                "version 1 membership changes are not used".into(),
            ))),
        };
        let store = peer.raw.mut_store();
        store.apply_state.applied_index = entry.index;
        store.apply_state.applied_term = entry.term;
        store.save_apply_state(&mut batch);
        if peer.commit_dirty {
            peer.raw.mut_store().save_raft_state(&mut batch);
            peer.commit_dirty = false;
        }
        if let Err(err) = ctx.engine.write(&batch, false) {
            panic!(
                "partition {}: cannot apply entry {}: {err}",
                peer.partition_id(),
                entry.index
            );
        }
        ctx.metrics.applied.inc();
        peer.settle_proposals(entry.index, entry.term, result, lease);
        let mut gate = peer.gate.lock();
        while gate.one_pc.front().is_some_and(|c| c.index <= entry.index) {
            gate.one_pc.pop_front();
        }
        drop(gate);
        last = entry.index;
    }
    if last > 0 {
        peer.raw.advance_apply_to(last);
    }
}

fn exec_normal(
    ctx: &Ctx,
    peer: &mut Peer,
    entry: &Entry,
    batch: &mut WriteBatch,
    effects: &mut ApplyEffects,
) -> Result<CommandResponse> {
    let cmd = RaftCmd::decode(&entry.data)?;
    let partition = peer
        .partition()
        .expect("only initialised replicas apply")
        .clone();
    if cmd.partition_id != partition.id {
        return Err(RaftError::PartitionNotFound(cmd.partition_id));
    }
    match cmd.body {
        CmdBody::Txn(command) => {
            if cmd.epoch.version != partition.epoch.version {
                return Err(epoch_mismatch(&partition, cmd.epoch));
            }
            check_keys(&partition, &command)?;
            match ctx.mvcc.execute(&command, batch) {
                Ok(response) => {
                    peer.written_bytes += batch.size_bytes() as u64;
                    Ok(response)
                }
                Err(err) if err.is_deterministic() => {
                    batch.clear();
                    Err(err.into())
                }
                Err(err) => panic!(
                    "partition {}: applying entry {} failed non-deterministically: {err}",
                    partition.id, entry.index
                ),
            }
        }
        CmdBody::CompactLog { index, .. } => {
            let store = peer.raw.mut_store();
            if let Err(err) = store.compact_to(index, batch) {
                panic!("partition {}: log compaction failed: {err}", partition.id);
            }
            Ok(CommandResponse::Done)
        }
        CmdBody::Split {
            split_key,
            new_partition_id,
            new_replica_ids,
        } => {
            if cmd.epoch != partition.epoch {
                return Err(epoch_mismatch(&partition, cmd.epoch));
            }
            if !partition.contains(&split_key)
                || split_key == partition.start
                || new_replica_ids.len() != partition.replicas.len()
            {
                return Err(RaftError::InvalidArgument(format!(
                    "bad split of {partition} at '{}'",
                    split_key.escape_ascii()
                )));
            }
            let mut left = partition.clone();
            left.end = split_key.clone();
            left.epoch.version += 1;
            let right = Partition {
                id: new_partition_id,
                start: split_key,
                end: partition.end.clone(),
                epoch: left.epoch,
                replicas: partition
                    .replicas
                    .iter()
                    .zip(&new_replica_ids)
                    .map(|(r, &id)| Replica { id, ..*r })
                    .collect(),
            };
            let state = PartitionState {
                status: PartitionStatus::Normal,
                partition: left.clone(),
            };
            batch.put(Cf::Raft, &keys::partition_key(left.id), &state.encode());
            if ctx.registry.split(&left, &right) {
                write_initial_states(batch, &right);
                effects.created.push(Handoff {
                    partition: right.clone(),
                    campaign: peer.is_leader(),
                });
            } else {
                // Overlap checks keep a snapshot of the new partition out while its parent
                // covers the range, so this is not expected; the existing replica is kept.
                tracing::error!(
                    partition = right.id,
                    "split created a partition already hosted here"
                );
            }
            tracing::info!(partition = partition.id, "split into {left} and {right}");
            peer.raw.mut_store().partition = Some(left);
            peer.written_bytes = 0;
            Ok(CommandResponse::Done)
        }
    }
}

fn exec_conf_change(
    ctx: &Ctx,
    peer: &mut Peer,
    entry: &Entry,
    batch: &mut WriteBatch,
) -> Result<CommandResponse> {
    let cc = ConfChangeV2::parse_from_bytes(&entry.data)?;
    if cc.changes.is_empty() {
        // Leaving a joint configuration.
        peer.raw.apply_conf_change(&cc)?;
        return Ok(CommandResponse::Done);
    }
    let change = ChangeContext::decode(&cc.context)?;
    let partition = peer
        .partition()
        .expect("only initialised replicas apply")
        .clone();
    if change.epoch.conf_ver != partition.epoch.conf_ver || cc.changes.len() != 1 {
        return Err(epoch_mismatch(&partition, change.epoch));
    }
    let single = &cc.changes[0];
    let mut next = partition.clone();
    let target = change.replica;
    match single.get_change_type() {
        ConfChangeType::AddLearnerNode => {
            if partition.replica(target.id).is_some()
                || partition.replica_on(target.node_id).is_some()
            {
                return Err(RaftError::InvalidArgument(format!(
                    "{partition} already has {target:?}"
                )));
            }
            next.replicas.push(Replica {
                learner: true,
                ..target
            });
        }
        ConfChangeType::AddNode => match next.replicas.iter_mut().find(|r| r.id == target.id) {
            Some(r) => r.learner = false,
            None => {
                return Err(RaftError::InvalidArgument(format!(
                    "replica {} is not in {partition}",
                    target.id
                )))
            }
        },
        ConfChangeType::RemoveNode => {
            if partition.replica(target.id).is_none() {
                return Err(RaftError::InvalidArgument(format!(
                    "replica {} is not in {partition}",
                    target.id
                )));
            }
            next.replicas.retain(|r| r.id != target.id);
        }
    }
    peer.raw.apply_conf_change(&cc)?;
    next.epoch.conf_ver += 1;
    let state = PartitionState {
        status: PartitionStatus::Normal,
        partition: next.clone(),
    };
    batch.put(Cf::Raft, &keys::partition_key(next.id), &state.encode());
    tracing::info!(
        partition = next.id,
        "membership changed: {:?} {:?} -> {next}",
        single.get_change_type(),
        target
    );
    if single.get_change_type() == ConfChangeType::RemoveNode && target.id == peer.replica.id {
        peer.removed = Some(next.epoch.conf_ver);
    }
    if single.get_change_type() == ConfChangeType::RemoveNode {
        // Conservative: a lease granted by a removed voter no longer proves anything.
        peer.end_lease();
    }
    ctx.registry.set(&next);
    peer.raw.mut_store().partition = Some(next);
    Ok(CommandResponse::Done)
}

/// Removes a removed replica's log, states and data, leaving a tombstone.
fn destroy_replica(ctx: &Ctx, peer: &Peer) -> Result<()> {
    let id = peer.partition_id();
    let mut batch = WriteBatch::new();
    if let Some(partition) = peer.partition() {
        for cf in DATA_CFS {
            if let Some((lower, upper)) = cf_bounds(&*ctx.engine, cf, partition)? {
                batch.delete_range(cf, &lower, &upper);
            }
        }
        let removed_at = peer.removed.unwrap_or(0).max(partition.epoch.conf_ver);
        let state = PartitionState {
            status: PartitionStatus::Tombstone { removed_at },
            partition: partition.clone(),
        };
        batch.put(Cf::Raft, &keys::partition_key(id), &state.encode());
    }
    batch.delete_range(
        Cf::Raft,
        &keys::log_key(id, 0),
        &keys::log_key(id, u64::MAX),
    );
    batch.delete(Cf::Raft, &keys::raft_state_key(id));
    batch.delete(Cf::Raft, &keys::apply_state_key(id));
    ctx.engine.write(&batch, true)?;
    ctx.registry.remove(id);
    Ok(())
}

/// Proposes a log compaction when the log is long: up to the slowest follower's matched index,
/// or up to the applied index when that follower lags too far (it will take a snapshot).
fn maybe_compact(ctx: &Ctx, peer: &mut Peer) -> Result<()> {
    let store = peer.raw.store();
    let (first, applied) = (store.first_index(), store.apply_state.applied_index);
    let threshold = ctx.config.log_gc_threshold.max(1);
    if applied < first || applied + 1 - first <= threshold {
        return Ok(());
    }
    let min_matched = peer
        .raw
        .raft
        .prs()
        .iter()
        .map(|(_, pr)| pr.matched)
        .min()
        .unwrap_or(applied);
    let index = if applied - min_matched.min(applied) > threshold {
        applied
    } else {
        min_matched.min(applied)
    };
    if index < first {
        return Ok(());
    }
    let term = store.entry_term(index)?;
    let partition = peer.check_leader()?.clone();
    let data = RaftCmd {
        partition_id: partition.id,
        epoch: partition.epoch,
        body: CmdBody::CompactLog { index, term },
    }
    .encode();
    if let Err(err) = peer.raw.propose(Vec::new(), data) {
        tracing::debug!(partition = partition.id, %err, "log compaction proposal dropped");
    }
    Ok(())
}

/// Returns a key near the middle of the partition's data if the partition grew past the split
/// size. Scans only after enough bytes were written since the last check.
fn split_key_if_large(ctx: &Ctx, peer: &mut Peer) -> Result<Option<Vec<u8>>> {
    let limit = ctx.config.split_size;
    if limit == 0 || peer.written_bytes < (limit / 8).max(1) {
        return Ok(None);
    }
    peer.written_bytes = 0;
    let Some(partition) = peer.partition().cloned() else {
        return Ok(None);
    };
    middle_key(&*ctx.engine, &partition, limit)
}

/// The user key halfway through `partition`'s data by size, if it holds more than `at_least`
/// bytes and has such a key after its start.
fn middle_key(
    engine: &dyn Engine,
    partition: &Partition,
    at_least: u64,
) -> Result<Option<Vec<u8>>> {
    let Some((lower, upper)) = cf_bounds(engine, Cf::Write, partition)? else {
        return Ok(None);
    };
    let scan = |stop_at: Option<u64>| -> Result<(u64, Option<Vec<u8>>)> {
        let mut total = 0u64;
        let mut cursor = engine.cursor(Cf::Write, Some(&lower), Some(&upper));
        cursor.seek_to_first();
        while cursor.valid() {
            total += (cursor.key().len() + cursor.value().len()) as u64;
            if stop_at.is_some_and(|half| total >= half) {
                // Write CF keys are the encoded user key followed by an 8-byte timestamp.
                let raw = cursor.key();
                let mut input = &raw[..raw.len().saturating_sub(8)];
                let user_key = reef_common::codec::decode_bytes(&mut input)?;
                if user_key != partition.start {
                    return Ok((total, Some(user_key)));
                }
            }
            cursor.next();
        }
        cursor.status()?;
        Ok((total, None))
    };
    let (total, _) = scan(None)?;
    if total <= at_least {
        return Ok(None);
    }
    let (_, key) = scan(Some(total / 2))?;
    Ok(key.filter(|k| partition.contains(k)))
}
