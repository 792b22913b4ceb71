//! [`Registry`] and [`Shard`]: how the hosts of one node share its partitions.
//!
//! A node runs a small pool of [`Host`](crate::Host)s, one per replication thread. Each
//! partition belongs to exactly one of them for the life of the process, chosen by
//! [`Shard::of`] from the partition id alone, so every message, proposal and read for a
//! partition reaches the same thread without a lookup. What the hosts must agree on goes
//! through the registry, behind one mutex that is only taken on rare paths (replica creation,
//! snapshot acceptance, splits, membership changes, removal, id allocation):
//!
//! - the key ranges of the initialised replicas of every host, so no host creates or installs a
//!   replica that overlaps another host's partition;
//! - partitions a split created on one host for another host to start ("pending"): until that
//!   host adopts them, messages for them are dropped rather than creating a second replica;
//! - the node's id allocator.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{RaftError, Result};
use crate::keys;
use crate::peer::ReadGate;
use crate::state::Partition;

/// Which of a node's hosts this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This host's index, below `count`.
    pub index: usize,
    /// How many hosts the node runs.
    pub count: usize,
}

impl Shard {
    /// The only host of a node that runs one.
    pub const SINGLE: Shard = Shard { index: 0, count: 1 };

    /// Returns the index of the host (out of `count`) that owns `partition_id`.
    pub fn of(partition_id: u64, count: usize) -> usize {
        // Ids carry the allocating node in their high bits; mixing spreads any pattern.
        let mixed = partition_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((mixed >> 32) % count.max(1) as u64) as usize
    }

    /// Returns true if this host owns `partition_id`.
    pub fn owns(&self, partition_id: u64) -> bool {
        Shard::of(partition_id, self.count) == self.index
    }
}

#[derive(Default)]
struct Inner {
    /// Initialised partitions by id, with whether their host has yet to adopt them.
    partitions: HashMap<u64, (Partition, bool)>,
    /// Snapshots accepted but not yet installed, by partition id.
    reserved: HashMap<u64, Partition>,
}

impl Inner {
    fn overlapping(&self, except: u64, start: &[u8], end: &[u8]) -> Option<u64> {
        self.partitions
            .values()
            .map(|(p, _)| p)
            .chain(self.reserved.values())
            .find(|p| p.id != except && p.overlaps(start, end))
            .map(|p| p.id)
    }
}

/// Why a snapshot was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A split here created the partition and its host has not started it yet.
    Pending,
    /// The snapshot's range overlaps this partition (hosted or being installed).
    Overlaps(u64),
}

/// The node-wide view of hosted partitions that a node's hosts share.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Serialises the id allocator's read-modify-write (with its fsync) apart from `inner`.
    ids: Mutex<()>,
    /// The read gates of the replicas the hosts run, by partition id, for reads served on
    /// other threads (see `Router::read`).
    gates: RwLock<HashMap<u64, Arc<Mutex<ReadGate>>>>,
}

impl Registry {
    /// Creates an empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Lists the read gate of a replica a host runs now.
    pub(crate) fn set_gate(&self, id: u64, gate: Arc<Mutex<ReadGate>>) {
        self.gates.write().insert(id, gate);
    }

    /// Unlists the read gate of a replica a host stopped running, withdrawing its lease.
    pub(crate) fn remove_gate(&self, id: u64) {
        if let Some(gate) = self.gates.write().remove(&id) {
            gate.lock().permit = None;
        }
    }

    /// The read gate of partition `id`'s replica here, if a host runs one.
    pub(crate) fn gate(&self, id: u64) -> Option<Arc<Mutex<ReadGate>>> {
        self.gates.read().get(&id).cloned()
    }

    /// Records the current descriptor of a hosted partition (ending any reservation).
    pub(crate) fn set(&self, partition: &Partition) {
        let mut inner = self.inner.lock();
        inner.reserved.remove(&partition.id);
        inner
            .partitions
            .insert(partition.id, (partition.clone(), false));
    }

    /// Reserves the range of a snapshot about to be installed for its partition, unless the
    /// partition waits for adoption or the range overlaps another partition, hosted or
    /// reserved. Checking and reserving under one lock keeps two hosts from installing
    /// overlapping snapshots.
    pub(crate) fn reserve(&self, snapshot: &Partition) -> std::result::Result<(), Refusal> {
        let mut inner = self.inner.lock();
        if inner
            .partitions
            .get(&snapshot.id)
            .is_some_and(|(_, pending)| *pending)
        {
            return Err(Refusal::Pending);
        }
        if let Some(other) = inner.overlapping(snapshot.id, &snapshot.start, &snapshot.end) {
            return Err(Refusal::Overlaps(other));
        }
        inner.reserved.insert(snapshot.id, snapshot.clone());
        Ok(())
    }

    /// Ends a reservation whose snapshot was not installed (raft-rs refused it).
    pub(crate) fn release(&self, partition_id: u64) {
        self.inner.lock().reserved.remove(&partition_id);
    }

    /// Forgets a partition (its replica was destroyed).
    pub(crate) fn remove(&self, partition_id: u64) {
        self.inner.lock().partitions.remove(&partition_id);
    }

    /// Records the halves of a split at once: `left` is the parent's new descriptor, `right` is
    /// the new partition, pending until its host adopts it. Returns false (and records only
    /// `left`) if `right` is already known or a snapshot of it is being installed, which a
    /// split must then not overwrite.
    pub(crate) fn split(&self, left: &Partition, right: &Partition) -> bool {
        let mut inner = self.inner.lock();
        inner.partitions.insert(left.id, (left.clone(), false));
        if inner.partitions.contains_key(&right.id) || inner.reserved.contains_key(&right.id) {
            return false;
        }
        inner.partitions.insert(right.id, (right.clone(), true));
        true
    }

    /// Returns true if `partition_id` is initialised on this node (on any host, or waiting
    /// for its host to adopt it).
    pub(crate) fn contains(&self, partition_id: u64) -> bool {
        self.inner.lock().partitions.contains_key(&partition_id)
    }

    /// Returns the id of a partition other than `except` whose range, hosted or reserved for
    /// a snapshot, overlaps `[start, end)`.
    pub(crate) fn overlapping(&self, except: u64, start: &[u8], end: &[u8]) -> Option<u64> {
        self.inner.lock().overlapping(except, start, end)
    }

    /// Allocates `n` consecutive ids unique in the cluster (while node ids are): the node id
    /// in the high bits and a persisted counter in the low 40. Returns the first.
    pub(crate) fn alloc_ids(&self, engine: &dyn Engine, node_id: u64, n: u64) -> Result<u64> {
        let _guard = self.ids.lock();
        let last = match engine.get(Cf::Raft, keys::ID_ALLOC)? {
            Some(raw) => u64::from_be_bytes(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| RaftError::Corruption("bad id allocator record".into()))?,
            ),
            None => 0,
        };
        let next = last + n;
        if next >= 1 << 40 {
            return Err(RaftError::Unavailable("node ran out of ids".into()));
        }
        let mut batch = WriteBatch::new();
        batch.put(Cf::Raft, keys::ID_ALLOC, &next.to_be_bytes());
        engine.write(&batch, true)?;
        Ok((node_id << 40) | (last + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(id: u64, start: &str, end: &str) -> Partition {
        Partition {
            id,
            start: start.as_bytes().to_vec(),
            end: end.as_bytes().to_vec(),
            ..Partition::first(&[1])
        }
    }

    #[test]
    fn snapshots_reserve_their_range_until_installed_or_released() {
        let registry = Registry::new();
        registry.set(&range(1, "", "m"));
        // Overlapping a hosted partition.
        assert_eq!(
            registry.reserve(&range(2, "k", "")),
            Err(Refusal::Overlaps(1))
        );
        // Two hosts racing with overlapping snapshots: the second is refused.
        assert_eq!(registry.reserve(&range(2, "m", "")), Ok(()));
        assert_eq!(
            registry.reserve(&range(3, "p", "")),
            Err(Refusal::Overlaps(2))
        );
        assert_eq!(registry.overlapping(9, b"x", b""), Some(2));
        // A split cannot create a partition whose snapshot is being installed.
        assert!(!registry.split(&range(1, "", "c"), &range(2, "c", "m")));
        // Released (raft-rs refused it): the range is free again.
        registry.release(2);
        assert_eq!(registry.reserve(&range(3, "p", "")), Ok(()));
        // Installed: the reservation becomes the hosted partition.
        registry.set(&range(3, "p", ""));
        registry.release(3);
        assert_eq!(registry.overlapping(9, b"q", b"r"), Some(3));
    }

    #[test]
    fn split_partitions_are_pending_until_adopted() {
        let registry = Registry::new();
        registry.set(&range(1, "", ""));
        assert!(registry.split(&range(1, "", "m"), &range(2, "m", "")));
        assert!(registry.contains(2));
        assert_eq!(registry.reserve(&range(2, "m", "")), Err(Refusal::Pending));
        // A second split record of the same partition does not overwrite it.
        assert!(!registry.split(&range(1, "", "m"), &range(2, "m", "")));
        registry.set(&range(2, "m", ""));
        assert_eq!(registry.reserve(&range(2, "m", "")), Ok(()));
        registry.remove(2);
        assert!(!registry.contains(2));
    }

    #[test]
    fn shards_cover_every_host_and_agree() {
        for count in 1..=4 {
            let mut seen = vec![0; count];
            for id in (1..200u64).chain((1..200).map(|n| (3 << 40) | n)) {
                let index = Shard::of(id, count);
                assert!(index < count);
                seen[index] += 1;
                assert!(Shard { index, count }.owns(id));
            }
            assert!(seen.iter().all(|&n| n > 0), "{count} hosts: {seen:?}");
        }
    }
}
