//! [`Driver`]: runs a node's [`Host`]s, one per thread, each fed through a crossbeam channel.
//!
//! Each thread waits for messages until its next tick is due, handles every message already
//! queued (so a burst of proposals from many clients lands in one persist round and one fsync
//! for all the groups the host owns), ticks when due, and runs a persist round whenever a
//! replica has work. Threads run their rounds independently; RocksDB merges concurrent synced
//! writes into one WAL fsync. Callers talk to the pool through a cloneable [`Router`], which
//! sends each request to the thread owning its partition ([`Shard::of`]); a full queue is
//! reported as `ServerBusy` rather than blocking the caller. Partitions a split creates for
//! another thread are handed over through the same channels, which never refuse that.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use reef_txn::{Command, Mutation, MvccStore};

use crate::error::{RaftError, Result};
use crate::host::{Handoff, Host, ReplicaChange, ReplicaStatus};
use crate::peer::{OnePcCallback, ProposeCallback, ReadCallback, ReadView};
use crate::registry::{Registry, Shard};
use crate::state::{Epoch, Partition};
use crate::transport::Clock;
use crate::transport::Envelope;

/// How many requests may wait for a replication thread before callers get `ServerBusy`.
const CHANNEL_CAPACITY: usize = 64 * 1024;
/// The most messages handled before a persist round, so a flood cannot starve the fsync.
const MAX_BATCH: usize = 4096;

/// A request for the replication thread.
// Raft envelopes are by far the most common request; boxing them would add an allocation per
// message to save channel slot space.
#[allow(clippy::large_enum_variant)]
pub enum HostMsg {
    /// An incoming Raft message.
    Raft(Envelope),
    /// A Percolator command to propose.
    Propose {
        /// The partition.
        partition_id: u64,
        /// The epoch the caller routed with.
        epoch: Epoch,
        /// The command.
        cmd: Command,
        /// Gets the outcome.
        cb: ProposeCallback,
    },
    /// A read of `[start, end)`.
    Read {
        /// The partition.
        partition_id: u64,
        /// The epoch the caller routed with.
        epoch: Epoch,
        /// The first key read.
        start: Vec<u8>,
        /// The key the read stops before (empty: the partition's end).
        end: Vec<u8>,
        /// The MVCC timestamp the read is at (0: none).
        read_ts: u64,
        /// Runs the read.
        cb: ReadCallback,
    },
    /// A one-phase commit (see [`Host::propose_one_pc`]).
    OnePc {
        /// The partition.
        partition_id: u64,
        /// The epoch the caller routed with.
        epoch: Epoch,
        /// The transaction's mutations.
        mutations: Vec<Mutation>,
        /// The transaction's start timestamp.
        start_ts: u64,
        /// The highest commit timestamp the caller accepts.
        max_commit_ts: u64,
        /// Gets the commit timestamp, or `None` if the leader declined.
        cb: OnePcCallback,
    },
    /// Marks the leaders waiting for a timestamp (see [`Host::mark_read_ts`]); every thread
    /// answers on `reply` once done.
    MarkReadTs {
        /// The mark.
        mark: u64,
        /// Gets one `()` per thread.
        reply: Sender<()>,
    },
    /// A timestamp fetched after a mark (see [`Host::sync_read_ts`]), for every thread.
    SyncReadTs {
        /// The mark it was fetched after.
        mark: u64,
        /// The timestamp.
        ts: u64,
    },
    /// A split at a key.
    Split {
        /// The partition.
        partition_id: u64,
        /// The epoch the caller saw.
        epoch: Epoch,
        /// The first key of the new partition.
        split_key: Vec<u8>,
        /// Gets the outcome.
        cb: ProposeCallback,
    },
    /// A membership change.
    ChangeReplica {
        /// The partition.
        partition_id: u64,
        /// The epoch the caller saw.
        epoch: Epoch,
        /// The change.
        change: ReplicaChange,
        /// Gets the outcome.
        cb: ProposeCallback,
    },
    /// A leadership transfer.
    TransferLeader {
        /// The partition.
        partition_id: u64,
        /// The voter to hand leadership to.
        to_replica_id: u64,
        /// Gets whether the transfer started.
        reply: Sender<Result<()>>,
    },
    /// A status request, answered by every thread.
    Status(Sender<Vec<ReplicaStatus>>),
    /// A node could not be reached (told to every thread).
    Unreachable(u64),
    /// A partition a split on another thread created, for its owner to start.
    Adopt(Box<Handoff>),
    /// A snapshot was delivered or failed.
    SnapshotStatus {
        /// The partition.
        partition_id: u64,
        /// The receiving replica.
        replica_id: u64,
        /// Whether it arrived.
        delivered: bool,
    },
    /// Stops the thread.
    Stop,
}

impl HostMsg {
    /// Returns the partition a request is for, or `None` for one every thread handles.
    fn partition_id(&self) -> Option<u64> {
        match self {
            HostMsg::Raft(env) => Some(env.partition_id),
            HostMsg::Propose { partition_id, .. }
            | HostMsg::Read { partition_id, .. }
            | HostMsg::OnePc { partition_id, .. }
            | HostMsg::Split { partition_id, .. }
            | HostMsg::ChangeReplica { partition_id, .. }
            | HostMsg::TransferLeader { partition_id, .. }
            | HostMsg::SnapshotStatus { partition_id, .. } => Some(*partition_id),
            HostMsg::Adopt(handoff) => Some(handoff.partition.id),
            HostMsg::Status(_)
            | HostMsg::Unreachable(_)
            | HostMsg::MarkReadTs { .. }
            | HostMsg::SyncReadTs { .. }
            | HostMsg::Stop => None,
        }
    }

    /// Returns true for requests that a full queue refuses; the thread's own bookkeeping
    /// (handoffs, reports, stop) is always queued.
    fn bounded(&self) -> bool {
        matches!(
            self,
            HostMsg::Raft(_)
                | HostMsg::Propose { .. }
                | HostMsg::Read { .. }
                | HostMsg::OnePc { .. }
                | HostMsg::Split { .. }
                | HostMsg::ChangeReplica { .. }
                | HostMsg::TransferLeader { .. }
        )
    }
}

/// A cloneable handle that sends requests to the thread owning their partition.
#[derive(Clone)]
pub struct Router {
    txs: Arc<[Sender<HostMsg>]>,
    local: Arc<LocalReads>,
}

/// What [`Router::read`] needs to serve a read on the calling thread.
pub(crate) struct LocalReads {
    /// The node's replicas' read gates.
    pub registry: Arc<Registry>,
    /// The MVCC store over the node's engine (reads take no latches).
    pub mvcc: MvccStore,
    /// The hosts' clock, which leases are measured on.
    pub clock: Arc<dyn Clock>,
}

impl Router {
    /// Reads from partition `partition_id` (see [`Host::read`]): on the calling thread when
    /// this node's replica leads it under a valid lease, its epoch is `epoch` and the range
    /// lies in it, which is the common case and spares the replication thread and two thread
    /// switches; otherwise on the replication thread, which confirms leadership through
    /// ReadIndex or answers why it cannot serve. `cb` gets the view or the error.
    pub fn read(
        &self,
        partition_id: u64,
        epoch: Epoch,
        start: Vec<u8>,
        end: Vec<u8>,
        read_ts: u64,
        cb: ReadCallback,
    ) {
        if let Some(gate) = self.local.registry.gate(partition_id) {
            let now = self.local.clock.now();
            let mut gate = gate.lock();
            let permit = gate.permit.as_ref().filter(|p| {
                now < p.until
                    && p.partition.epoch.version == epoch.version
                    && p.partition.serves_read(&start, &end)
            });
            if let Some(permit) = permit {
                let (partition, term) = (permit.partition.clone(), permit.term);
                let admitted = gate.admit(&start, &end, read_ts);
                drop(gate);
                return match admitted {
                    Ok(()) => cb(Ok(ReadView {
                        mvcc: &self.local.mvcc,
                        partition: &partition,
                        term,
                    })),
                    Err(err) => cb(Err(err)),
                };
            }
        }
        self.send_or_fail(HostMsg::Read {
            partition_id,
            epoch,
            start,
            end,
            read_ts,
            cb,
        });
    }

    /// Queues a request, failing with `ServerBusy` when the queue is full and `Unavailable`
    /// when the thread has stopped. A request for no particular partition goes to every
    /// thread.
    pub fn send(&self, msg: HostMsg) -> Result<()> {
        match msg.partition_id() {
            Some(id) => self.to_owner(id, msg).map_err(|rejected| rejected.1),
            None => self.broadcast(&msg),
        }
    }

    /// Queues a request; if it cannot be queued, hands its callback the error instead.
    pub fn send_or_fail(&self, msg: HostMsg) {
        match msg.partition_id() {
            Some(id) => {
                if let Err(rejected) = self.to_owner(id, msg) {
                    let (msg, err) = *rejected;
                    fail(msg, err);
                }
            }
            None => {
                let _ = self.broadcast(&msg);
            }
        }
    }

    /// Queues a request on the thread owning partition `id`, handing it back with the reason
    /// when the queue is full or the thread has stopped.
    fn to_owner(
        &self,
        id: u64,
        msg: HostMsg,
    ) -> std::result::Result<(), Box<(HostMsg, RaftError)>> {
        let tx = &self.txs[Shard::of(id, self.txs.len())];
        if msg.bounded() && tx.len() >= CHANNEL_CAPACITY {
            let busy = RaftError::ServerBusy("the replication queue is full".into());
            return Err(Box::new((msg, busy)));
        }
        tx.send(msg)
            .map_err(|err| Box::new((err.into_inner(), stopped())))
    }

    /// Gives every thread a copy of a request for no particular partition, even past a thread
    /// that has stopped.
    fn broadcast(&self, msg: &HostMsg) -> Result<()> {
        let mut delivered = true;
        for tx in self.txs.iter() {
            let copy = match msg {
                HostMsg::Status(reply) => HostMsg::Status(reply.clone()),
                HostMsg::Unreachable(node) => HostMsg::Unreachable(*node),
                HostMsg::MarkReadTs { mark, reply } => HostMsg::MarkReadTs {
                    mark: *mark,
                    reply: reply.clone(),
                },
                HostMsg::SyncReadTs { mark, ts } => HostMsg::SyncReadTs {
                    mark: *mark,
                    ts: *ts,
                },
                _ => HostMsg::Stop,
            };
            delivered &= tx.send(copy).is_ok();
        }
        if delivered {
            Ok(())
        } else {
            Err(stopped())
        }
    }

    /// Marks every thread's leaders that wait for a timestamp (see [`Host::mark_read_ts`]),
    /// blocking until all threads answer. A timestamp fetched from the oracle afterwards goes
    /// to [`Router::sync_read_ts`] with the same mark.
    pub fn mark_read_ts(&self, mark: u64) -> Result<()> {
        let (tx, rx) = bounded(self.txs.len());
        self.send(HostMsg::MarkReadTs { mark, reply: tx })?;
        for _ in 0..self.txs.len() {
            rx.recv().map_err(|_| stopped())?;
        }
        Ok(())
    }

    /// Raises the highest read timestamp of the leaders marked at or before `mark` to `ts`
    /// (see [`Host::sync_read_ts`]).
    pub fn sync_read_ts(&self, mark: u64, ts: u64) -> Result<()> {
        self.send(HostMsg::SyncReadTs { mark, ts })
    }

    /// Returns the status of every replica of every thread, ordered by partition id
    /// (uninitialised replicas last), blocking until all threads answer.
    pub fn status(&self) -> Result<Vec<ReplicaStatus>> {
        let (tx, rx) = bounded(self.txs.len());
        self.send(HostMsg::Status(tx))?;
        let mut out = Vec::new();
        for _ in 0..self.txs.len() {
            out.extend(rx.recv().map_err(|_| stopped())?);
        }
        out.sort_by_key(|s| s.partition.as_ref().map_or(u64::MAX, |p| p.id));
        Ok(out)
    }

    /// Returns the partitions this node hosts initialised replicas of (blocking).
    pub fn partitions(&self) -> Result<Vec<Partition>> {
        Ok(self
            .status()?
            .into_iter()
            .filter_map(|s| s.partition)
            .collect())
    }
}

fn stopped() -> RaftError {
    RaftError::Unavailable("the replication thread has stopped".into())
}

fn fail(msg: HostMsg, err: RaftError) {
    match msg {
        HostMsg::Propose { cb, .. }
        | HostMsg::Split { cb, .. }
        | HostMsg::ChangeReplica { cb, .. } => cb(Err(err)),
        HostMsg::Read { cb, .. } => cb(Err(err)),
        HostMsg::OnePc { cb, .. } => cb(Err(err)),
        HostMsg::TransferLeader { reply, .. } => {
            let _ = reply.send(Err(err));
        }
        _ => {}
    }
}

/// Runs a node's hosts, each on its own thread.
pub struct Driver {
    router: Router,
    handles: Vec<JoinHandle<()>>,
}

impl Driver {
    /// Starts one thread per host; `hosts` are the node's shards in index order, and
    /// `tick_interval` is the time between ticks.
    pub fn start(hosts: Vec<Host>, tick_interval: Duration) -> Driver {
        let count = hosts.len();
        assert!(count > 0, "a node runs at least one host");
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..count).map(|_| unbounded()).unzip();
        let router = Router {
            txs: txs.into(),
            local: Arc::new(hosts[0].local_reads()),
        };
        let handles = hosts
            .into_iter()
            .zip(rxs)
            .enumerate()
            .map(|(index, (host, rx))| {
                assert_eq!(host.shard(), Shard { index, count }, "hosts out of order");
                let router = router.clone();
                std::thread::Builder::new()
                    .name(format!("reef-raft-{index}"))
                    .spawn(move || {
                        let run = || run(host, rx, router, tick_interval);
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                            // A host panics only when continuing could diverge from the other
                            // replicas or lose acknowledged state; the node stops whole rather
                            // than serving on with this thread's partitions gone.
                            tracing::error!("replication thread {index} panicked; aborting");
                            std::process::abort();
                        }
                    })
                    .expect("spawn a replication thread")
            })
            .collect();
        Driver { router, handles }
    }

    /// Returns a handle for sending requests.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Stops the threads and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        let _ = self.router.send(HostMsg::Stop);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(mut host: Host, rx: Receiver<HostMsg>, router: Router, tick_interval: Duration) {
    let mut next_tick = Instant::now() + tick_interval;
    loop {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(timeout) {
            Ok(msg) => {
                if !handle(&mut host, msg) {
                    return;
                }
                for msg in rx.try_iter().take(MAX_BATCH) {
                    if !handle(&mut host, msg) {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if now >= next_tick {
            host.tick();
            next_tick += tick_interval;
            if next_tick < now {
                // The thread fell behind (a long fsync); ticks are never bunched up, which
                // would shorten election timeouts.
                next_tick = now + tick_interval;
            }
        }
        if host.has_ready() {
            host.handle_ready();
            for handoff in host.take_handoffs() {
                // Handoffs are never refused by a full queue; only a stopping pool drops them,
                // and the new partition is then started from disk at the next start.
                let _ = router.send(HostMsg::Adopt(Box::new(handoff)));
            }
        }
    }
}

/// Handles one request; returns false on `Stop`.
fn handle(host: &mut Host, msg: HostMsg) -> bool {
    match msg {
        HostMsg::Raft(env) => host.step(env),
        HostMsg::Propose {
            partition_id,
            epoch,
            cmd,
            cb,
        } => host.propose(partition_id, epoch, cmd, cb),
        HostMsg::Read {
            partition_id,
            epoch,
            start,
            end,
            read_ts,
            cb,
        } => host.read(partition_id, epoch, &start, &end, read_ts, cb),
        HostMsg::OnePc {
            partition_id,
            epoch,
            mutations,
            start_ts,
            max_commit_ts,
            cb,
        } => host.propose_one_pc(partition_id, epoch, mutations, start_ts, max_commit_ts, cb),
        HostMsg::MarkReadTs { mark, reply } => {
            host.mark_read_ts(mark);
            let _ = reply.send(());
        }
        HostMsg::SyncReadTs { mark, ts } => host.sync_read_ts(mark, ts),
        HostMsg::Split {
            partition_id,
            epoch,
            split_key,
            cb,
        } => host.split(partition_id, epoch, split_key, cb),
        HostMsg::ChangeReplica {
            partition_id,
            epoch,
            change,
            cb,
        } => host.change_replica(partition_id, epoch, change, cb),
        HostMsg::TransferLeader {
            partition_id,
            to_replica_id,
            reply,
        } => {
            let _ = reply.send(host.transfer_leader(partition_id, to_replica_id));
        }
        HostMsg::Status(reply) => {
            let _ = reply.send(host.status());
        }
        HostMsg::Unreachable(node_id) => host.report_unreachable(node_id),
        HostMsg::Adopt(handoff) => host.adopt(*handoff),
        HostMsg::SnapshotStatus {
            partition_id,
            replica_id,
            delivered,
        } => host.report_snapshot(partition_id, replica_id, delivered),
        HostMsg::Stop => return false,
    }
    true
}
