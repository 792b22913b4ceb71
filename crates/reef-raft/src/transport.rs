//! The seams through which the replication core meets the outside world: outgoing messages
//! ([`Transport`]) and time ([`Clock`]). Production plugs in gRPC streams and the monotonic
//! clock; tests plug in a simulated network and a manual clock.

use std::time::Instant;

use raft::prelude::Message;

use crate::state::{Epoch, Replica};

/// A Raft message between two replicas of a partition, with what the receiving node needs to
/// route it, create a missing replica, or refuse a stale one.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The partition.
    pub partition_id: u64,
    /// The sending replica.
    pub from: Replica,
    /// The receiving replica.
    pub to: Replica,
    /// The sender's view of the partition's epoch.
    pub epoch: Epoch,
    /// The sender's view of the partition's first key.
    pub start: Vec<u8>,
    /// The sender's view of the partition's end key (empty: unbounded).
    pub end: Vec<u8>,
    /// The raft-rs message.
    pub message: Message,
    /// Set on a notice (with an empty message) from a member of the partition telling `to`
    /// that it is no longer a replica as of `epoch`: it missed its own removal.
    pub removed: bool,
}

/// Carries envelopes to other nodes. Sending never blocks the replication thread: an
/// implementation queues and may drop (Raft retransmits).
pub trait Transport: Send {
    /// Queues an envelope for its destination node.
    fn send(&mut self, envelope: Envelope);
    /// Sends what was queued (called once per persist round).
    fn flush(&mut self) {}
}

/// A source of monotonic time for leases and timeouts.
pub trait Clock: Send + Sync {
    /// Returns the current instant.
    fn now(&self) -> Instant;
}

/// The process's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}
