//! [`Peer`]: one replica of one partition, a raft-rs `RawNode` plus the bookkeeping around it:
//! pending proposals waiting for their entries to apply, reads waiting for a read index, and
//! the leader lease.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use raft::prelude::Message;
use raft::{RawNode, StateRole};
use reef_txn::{CommandResponse, MvccStore};

use crate::error::{RaftError, Result};
use crate::log_store::RaftLogStore;
use crate::state::{Partition, Replica};
use crate::transport::{Envelope, Transport};

/// Called with a proposal's outcome once its entry is applied (or it is known lost).
pub type ProposeCallback = Box<dyn FnOnce(Result<CommandResponse>) + Send>;

/// Called with a one-phase commit's outcome: its commit timestamp once applied, or `None` when
/// the leader declined it before proposing anything.
pub type OnePcCallback = Box<dyn FnOnce(Result<Option<u64>>) + Send>;

/// What a read may use once it is safe: the MVCC store and the partition as it stands, whose
/// range a scan must not leave (other partitions' data shares the engine).
pub struct ReadView<'a> {
    /// The MVCC store over the node's engine.
    pub mvcc: &'a MvccStore,
    /// The partition the read was routed to.
    pub partition: &'a Partition,
    /// The Raft term in which the replica confirmed its leadership for this read. A service
    /// that keeps leader-only state beside the partition (the root service's timestamp window)
    /// compares it with the term that state was built in.
    pub term: u64,
}

impl ReadView<'_> {
    /// Returns `end` clipped to the partition: an empty `end` (unbounded) becomes the
    /// partition's end.
    pub fn clip_end<'e>(&'e self, end: &'e [u8]) -> &'e [u8] {
        if end.is_empty() {
            &self.partition.end
        } else {
            end
        }
    }
}

/// Called once a read may run: with a [`ReadView`] when the replica is the leader and has
/// applied everything committed before the read arrived, or with the reason it cannot serve.
pub type ReadCallback = Box<dyn for<'a> FnOnce(Result<ReadView<'a>>) + Send>;

/// A proposal waiting for its entry.
pub(crate) struct Proposal {
    pub index: u64,
    pub term: u64,
    /// When it was proposed: a committed proposal proves leadership from then on.
    pub issued: Instant,
    pub cb: ProposeCallback,
}

/// A read waiting for leadership confirmation and for the apply to reach its read index.
pub(crate) struct PendingRead {
    /// The read-index request context shared by a batch of reads (0: not sent yet).
    pub ctx: u64,
    /// The read index, once the quorum confirmed leadership.
    pub index: Option<u64>,
    pub cb: ReadCallback,
}

/// A one-phase commit proposed by this leader and not applied yet: reads at or above its
/// commit timestamp that touch its keys must wait for it.
pub(crate) struct InflightOnePc {
    /// The entry's index.
    pub index: u64,
    /// Its keys, sorted.
    pub keys: Vec<Vec<u8>>,
    /// The commit timestamp the leader chose.
    pub commit_ts: u64,
}

/// What a leader shares with readers on other threads, so that a read under a valid lease can
/// run on the thread that asks for it instead of waiting for the replication thread (see
/// [`Router::read`](crate::Router::read)). The replication thread is the only writer of the
/// permit; readers and one-phase commits meet on `max_read_ts` and `one_pc` under the lock,
/// so a one-phase commit takes a timestamp above every read admitted before it, and a read
/// admitted after it sees it in `one_pc` until it has applied.
#[derive(Default)]
pub(crate) struct ReadGate {
    /// Set while the replica leads under a valid lease, has applied an entry of its term and
    /// transfers no leadership: until when, in which term, over which partition.
    pub permit: Option<Permit>,
    /// As leader: the highest timestamp a read was admitted at. A one-phase commit takes a
    /// commit timestamp above it, so no read can have missed its writes.
    pub max_read_ts: u64,
    /// One-phase commits proposed and not applied yet, in index order.
    pub one_pc: VecDeque<InflightOnePc>,
}

/// A leader's lease as readers on other threads see it (see [`ReadGate`]).
pub(crate) struct Permit {
    /// The end of the lease.
    pub until: Instant,
    /// The term the lease was granted in.
    pub term: u64,
    /// The partition as the leader last applied it.
    pub partition: Arc<Partition>,
}

impl ReadGate {
    /// Admits a read at `read_ts` (0: none) of `[start, end)`: raises the highest read
    /// timestamp, and fails with `ServerBusy` if a one-phase commit the read must see is still
    /// being applied.
    pub(crate) fn admit(&mut self, start: &[u8], end: &[u8], read_ts: u64) -> Result<()> {
        self.max_read_ts = self.max_read_ts.max(read_ts);
        let blocked = self.one_pc.iter().any(|c| {
            c.commit_ts <= read_ts
                && c.keys
                    .iter()
                    .any(|k| k.as_slice() >= start && (end.is_empty() || k.as_slice() < end))
        });
        if blocked {
            return Err(RaftError::ServerBusy(
                "a one-phase commit the read must see is being applied".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a leader's highest read timestamp covers the reads earlier leaders served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadTsSync {
    /// Not yet: one-phase commits wait. `Some(mark)` once the node marked this leader for a
    /// timestamp fetch (see [`Host::mark_read_ts`](crate::Host::mark_read_ts)).
    Pending(Option<u64>),
    /// A timestamp from the oracle, fetched after this replica became leader, raised it.
    Synced,
}

/// One replica of a partition.
pub struct Peer {
    pub(crate) raw: RawNode<RaftLogStore>,
    /// This replica.
    pub(crate) replica: Replica,
    pub(crate) proposals: VecDeque<Proposal>,
    pub(crate) reads: VecDeque<PendingRead>,
    /// When each read-index context was sent.
    pub(crate) read_issued: HashMap<u64, Instant>,
    pub(crate) next_read_ctx: u64,
    /// The lease: until this instant no other replica can have become leader.
    pub(crate) lease_until: Option<Instant>,
    /// Replicas learnt from incoming messages (an uninitialised replica has no descriptor).
    pub(crate) known: HashMap<u64, Replica>,
    /// Whether the Raft state's commit index changed and still needs writing.
    pub(crate) commit_dirty: bool,
    /// Set when the replica was removed from its group and must be destroyed: the membership
    /// version as of which it is known to be out.
    pub(crate) removed: Option<u64>,
    /// Bytes written by applied commands since the last split check.
    pub(crate) written_bytes: u64,
    pub(crate) role: StateRole,
    /// Whether the gate's `max_read_ts` also covers what earlier leaders served.
    pub(crate) read_ts_sync: ReadTsSync,
    /// The lease, highest read timestamp and unapplied one-phase commits, shared with readers
    /// on other threads.
    pub(crate) gate: Arc<Mutex<ReadGate>>,
}

impl Peer {
    pub(crate) fn new(raw: RawNode<RaftLogStore>, replica: Replica) -> Peer {
        Peer {
            raw,
            replica,
            proposals: VecDeque::new(),
            reads: VecDeque::new(),
            read_issued: HashMap::new(),
            next_read_ctx: 1,
            lease_until: None,
            known: HashMap::new(),
            commit_dirty: false,
            removed: None,
            written_bytes: 0,
            role: StateRole::Follower,
            read_ts_sync: ReadTsSync::Pending(None),
            gate: Arc::default(),
        }
    }

    /// Returns the partition id.
    pub fn partition_id(&self) -> u64 {
        self.raw.store().partition_id()
    }

    /// Returns the descriptor, if the replica is initialised.
    pub fn partition(&self) -> Option<&Partition> {
        self.raw.store().partition.as_ref()
    }

    /// Returns true if the replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// Returns the leader as this replica knows it.
    pub fn leader(&self) -> Option<Replica> {
        let id = self.raw.raft.leader_id;
        (id != 0).then(|| self.lookup(id)).flatten()
    }

    pub(crate) fn lookup(&self, id: u64) -> Option<Replica> {
        if id == self.replica.id {
            return Some(self.replica);
        }
        self.partition()
            .and_then(|p| p.replica(id).copied())
            .or_else(|| self.known.get(&id).copied())
    }

    /// Fails unless the replica is an initialised leader.
    pub(crate) fn check_leader(&self) -> Result<&Partition> {
        match self.partition() {
            Some(partition) if self.is_leader() => Ok(partition),
            _ => Err(RaftError::NotLeader {
                partition_id: self.partition_id(),
                leader: self.leader(),
            }),
        }
    }

    /// Returns true if the lease is valid and the leader has applied an entry of its own term,
    /// so its applied state includes every write acknowledged by any leader.
    pub(crate) fn can_read_locally(&self, now: Instant) -> bool {
        self.is_leader()
            && self.lease_until.is_some_and(|until| now < until)
            && self.raw.store().apply_state.applied_term == self.raw.raft.term
    }

    /// Extends the lease to `issued + lease`, for an action started at `issued` that a quorum
    /// has since acknowledged.
    pub(crate) fn renew_lease(&mut self, issued: Instant, lease: Duration) {
        // During a leadership transfer the transferee may be elected past the followers'
        // lease check, so an acknowledgement arriving now proves nothing about the future.
        if self.is_leader() && self.raw.raft.lead_transferee.is_none() {
            let until = issued + lease;
            if self.lease_until.is_none_or(|old| old < until) {
                self.lease_until = Some(until);
            }
        }
    }

    /// Reacts to a role change reported in a ready.
    pub(crate) fn on_role_change(&mut self, role: StateRole) {
        if self.role == StateRole::Leader && role != StateRole::Leader {
            self.end_lease();
            let (partition_id, leader) = (self.partition_id(), self.leader());
            for read in self.reads.drain(..) {
                (read.cb)(Err(RaftError::NotLeader {
                    partition_id,
                    leader,
                }));
            }
            self.read_issued.clear();
        }
        if role == StateRole::Leader {
            self.end_lease();
        }
        if (self.role == StateRole::Leader) != (role == StateRole::Leader) {
            // Reads other leaders served are unknown here until a fresh oracle timestamp
            // covers them; proposals of an old term never apply under this one.
            // The permit went with the lease above.
            let mut gate = self.gate.lock();
            gate.max_read_ts = 0;
            gate.one_pc.clear();
            drop(gate);
            self.read_ts_sync = ReadTsSync::Pending(None);
        }
        self.role = role;
    }

    /// Records a read at `read_ts` of `[start, end)` (an empty `end`: the partition's end)
    /// and fails it while a one-phase commit at or below `read_ts` on a key in the range is
    /// still to apply: its writes belong in the read's snapshot.
    pub(crate) fn admit_read(&mut self, start: &[u8], end: &[u8], read_ts: u64) -> Result<()> {
        self.gate.lock().admit(start, end, read_ts)
    }

    /// Ends the lease at once, for this thread and for readers on others.
    pub(crate) fn end_lease(&mut self) {
        self.lease_until = None;
        self.gate.lock().permit = None;
    }

    /// Publishes the lease to readers on other threads (see [`ReadGate`]) while this replica
    /// may serve reads locally, and withdraws it otherwise. Called after every change the
    /// replication thread makes to the lease, the role, the applied state or the partition.
    pub(crate) fn publish_permit(&mut self) {
        let lease = self.lease_until.filter(|_| {
            self.is_leader()
                && self.raw.raft.lead_transferee.is_none()
                && self.raw.store().apply_state.applied_term == self.raw.raft.term
        });
        let partition = self.partition();
        let mut gate = self.gate.lock();
        gate.permit = match (lease, partition) {
            (Some(until), Some(partition)) => {
                let term = self.raw.raft.term;
                let partition = match gate.permit.take() {
                    Some(old) if *old.partition == *partition => old.partition,
                    _ => Arc::new(partition.clone()),
                };
                Some(Permit {
                    until,
                    term,
                    partition,
                })
            }
            _ => None,
        };
    }

    /// Sends a batch of reads that wait for the leader's first entry of its term through
    /// ReadIndex (raft-rs drops read-index requests before that entry commits).
    pub(crate) fn flush_reads(&mut self, now: Instant) {
        if !self.is_leader()
            || self.raw.store().apply_state.applied_term != self.raw.raft.term
            || !self.reads.iter().any(|r| r.ctx == 0)
        {
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        for read in self.reads.iter_mut().filter(|r| r.ctx == 0) {
            read.ctx = ctx;
        }
        self.read_issued.insert(ctx, now);
        self.raw.read_index(ctx.to_be_bytes().to_vec());
    }

    /// Resends read-index requests that got no answer (the heartbeat carrying them was lost).
    pub(crate) fn retry_reads(&mut self) {
        for read in self.reads.iter_mut().filter(|r| r.index.is_none()) {
            read.ctx = 0;
        }
        self.read_issued.clear();
    }

    /// Records the read index the quorum confirmed for a context.
    pub(crate) fn on_read_state(&mut self, ctx: &[u8], index: u64, lease: Duration) {
        let Ok(raw) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let ctx = u64::from_be_bytes(raw);
        if let Some(issued) = self.read_issued.remove(&ctx) {
            self.renew_lease(issued, lease);
        }
        for read in self.reads.iter_mut().filter(|r| r.ctx == ctx) {
            read.index = Some(index);
        }
    }

    /// Runs the reads whose read index has been applied, in arrival order.
    pub(crate) fn serve_reads(&mut self, mvcc: &MvccStore) {
        let applied = self.raw.store().apply_state.applied_index;
        let ready = self
            .reads
            .iter()
            .take_while(|r| r.index.is_some_and(|index| index <= applied))
            .count();
        if ready == 0 {
            return;
        }
        let Some(partition) = self.partition().cloned() else {
            return;
        };
        let term = self.raw.raft.term;
        for read in self.reads.drain(..ready) {
            (read.cb)(Ok(ReadView {
                mvcc,
                partition: &partition,
                term,
            }));
        }
    }

    /// Answers the proposals an applied entry settles: the one at its index with its term gets
    /// `result`; any other at or below the index was superseded.
    pub(crate) fn settle_proposals(
        &mut self,
        index: u64,
        term: u64,
        mut result: Option<Result<CommandResponse>>,
        lease: Duration,
    ) {
        while self.proposals.front().is_some_and(|p| p.index <= index) {
            let proposal = self.proposals.pop_front().expect("front exists");
            if proposal.index == index && proposal.term == term {
                if term == self.raw.raft.term {
                    self.renew_lease(proposal.issued, lease);
                }
                match result.take() {
                    Some(result) => (proposal.cb)(result),
                    // An empty entry stands where raft-rs dropped a conflicting conf change.
                    None => (proposal.cb)(Err(RaftError::StaleCommand(self.partition_id()))),
                }
            } else {
                (proposal.cb)(Err(RaftError::StaleCommand(self.partition_id())));
            }
        }
    }

    /// Fails every waiting proposal and read (the replica is going away).
    pub(crate) fn fail_all(&mut self, why: &str) {
        for p in self.proposals.drain(..) {
            (p.cb)(Err(RaftError::Unavailable(why.to_string())));
        }
        for r in self.reads.drain(..) {
            (r.cb)(Err(RaftError::Unavailable(why.to_string())));
        }
    }

    /// Wraps raft-rs messages in envelopes and queues them on the transport.
    pub(crate) fn send(&self, messages: Vec<Message>, transport: &mut dyn Transport) {
        for message in messages {
            let Some(to) = self.lookup(message.to) else {
                tracing::debug!(
                    partition = self.partition_id(),
                    to = message.to,
                    "dropping a message to an unknown replica"
                );
                continue;
            };
            transport.send(self.envelope(to, message, false));
        }
    }

    /// Tells `to`, a replica that is not in this replica's partition, that it was removed.
    pub(crate) fn send_removed(&self, to: Replica, transport: &mut dyn Transport) {
        transport.send(self.envelope(to, Message::default(), true));
    }

    /// Wraps a message to `to` with this replica's view of the partition.
    fn envelope(&self, to: Replica, message: Message, removed: bool) -> Envelope {
        let partition = self.partition();
        Envelope {
            partition_id: self.partition_id(),
            from: self.replica,
            to,
            epoch: partition.map(|p| p.epoch).unwrap_or_default(),
            start: partition.map(|p| p.start.clone()).unwrap_or_default(),
            end: partition.map(|p| p.end.clone()).unwrap_or_default(),
            message,
            removed,
        }
    }
}
