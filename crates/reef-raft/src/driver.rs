//! [`Driver`]: runs a [`Host`] on its own thread, fed through a bounded crossbeam channel.
//!
//! The thread waits for messages until the next tick is due, handles every message already
//! queued (so a burst of proposals from many clients lands in one persist round and one fsync),
//! ticks when due, and runs a persist round whenever a replica has work. Callers talk to it
//! through a cloneable [`Router`]; a full channel is reported as `ServerBusy` rather than
//! blocking the caller.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use reef_txn::Command;

use crate::error::{RaftError, Result};
use crate::host::{Host, ReplicaChange, ReplicaStatus};
use crate::peer::{ProposeCallback, ReadCallback};
use crate::state::{Epoch, Partition};
use crate::transport::Envelope;

/// How many messages may wait for the replication thread before callers get `ServerBusy`.
const CHANNEL_CAPACITY: usize = 64 * 1024;
/// The most messages handled before a persist round, so a flood cannot starve the fsync.
const MAX_BATCH: usize = 4096;

/// A request for the replication thread.
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
        /// The key the read stops before (empty: unbounded).
        end: Vec<u8>,
        /// Runs the read.
        cb: ReadCallback,
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
    /// A status request.
    Status(Sender<Vec<ReplicaStatus>>),
    /// A node could not be reached.
    Unreachable(u64),
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

/// A cloneable handle that sends requests to a [`Driver`]'s thread.
#[derive(Clone)]
pub struct Router {
    tx: Sender<HostMsg>,
}

impl Router {
    /// Queues a request, failing with `ServerBusy` when the queue is full and `Unavailable`
    /// when the thread has stopped.
    pub fn send(&self, msg: HostMsg) -> Result<()> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(RaftError::ServerBusy(
                "the replication queue is full".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(RaftError::Unavailable(
                "the replication thread has stopped".into(),
            )),
        }
    }

    /// Queues a request; if it cannot be queued, hands its callback the error instead.
    pub fn send_or_fail(&self, msg: HostMsg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => fail(
                msg,
                RaftError::ServerBusy("the replication queue is full".into()),
            ),
            Err(TrySendError::Disconnected(msg)) => fail(
                msg,
                RaftError::Unavailable("the replication thread has stopped".into()),
            ),
        }
    }

    /// Returns the status of every replica (blocking).
    pub fn status(&self) -> Result<Vec<ReplicaStatus>> {
        let (tx, rx) = bounded(1);
        self.send(HostMsg::Status(tx))?;
        rx.recv()
            .map_err(|_| RaftError::Unavailable("the replication thread has stopped".into()))
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

fn fail(msg: HostMsg, err: RaftError) {
    match msg {
        HostMsg::Propose { cb, .. }
        | HostMsg::Split { cb, .. }
        | HostMsg::ChangeReplica { cb, .. } => cb(Err(err)),
        HostMsg::Read { cb, .. } => cb(Err(err)),
        HostMsg::TransferLeader { reply, .. } => {
            let _ = reply.send(Err(err));
        }
        _ => {}
    }
}

/// Runs a host on a dedicated thread.
pub struct Driver {
    router: Router,
    handle: Option<JoinHandle<()>>,
}

impl Driver {
    /// Starts the thread; `tick_interval` is the time between ticks.
    pub fn start(host: Host, tick_interval: Duration) -> Driver {
        let (tx, rx) = bounded(CHANNEL_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("reef-raft".into())
            .spawn(move || run(host, rx, tick_interval))
            .expect("spawn the replication thread");
        Driver {
            router: Router { tx },
            handle: Some(handle),
        }
    }

    /// Returns a handle for sending requests.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.router.tx.send(HostMsg::Stop);
            let _ = handle.join();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(mut host: Host, rx: Receiver<HostMsg>, tick_interval: Duration) {
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
            cb,
        } => host.read(partition_id, epoch, &start, &end, cb),
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
        HostMsg::SnapshotStatus {
            partition_id,
            replica_id,
            delivered,
        } => host.report_snapshot(partition_id, replica_id, delivered),
        HostMsg::Stop => return false,
    }
    true
}
