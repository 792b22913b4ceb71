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

use parking_lot::Mutex;
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{RaftError, Result};
use crate::keys;
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
}

/// The node-wide view of hosted partitions that a node's hosts share.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    /// Creates an empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Records the current descriptor of a hosted partition.
    pub(crate) fn set(&self, partition: &Partition) {
        self.inner
            .lock()
            .partitions
            .insert(partition.id, (partition.clone(), false));
    }

    /// Forgets a partition (its replica was destroyed).
    pub(crate) fn remove(&self, partition_id: u64) {
        self.inner.lock().partitions.remove(&partition_id);
    }

    /// Records the halves of a split at once: `left` is the parent's new descriptor, `right` is
    /// the new partition, pending until its host adopts it. Returns false (and records only
    /// `left`) if `right` is already known, which a split must then not overwrite.
    pub(crate) fn split(&self, left: &Partition, right: &Partition) -> bool {
        let mut inner = self.inner.lock();
        inner.partitions.insert(left.id, (left.clone(), false));
        if inner.partitions.contains_key(&right.id) {
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

    /// Returns true if a split created `partition_id` and its host has not started it yet.
    pub(crate) fn is_pending(&self, partition_id: u64) -> bool {
        self.inner
            .lock()
            .partitions
            .get(&partition_id)
            .is_some_and(|(_, pending)| *pending)
    }

    /// Returns the id of a partition other than `except` whose range overlaps `[start, end)`.
    pub(crate) fn overlapping(&self, except: u64, start: &[u8], end: &[u8]) -> Option<u64> {
        self.inner
            .lock()
            .partitions
            .values()
            .find(|(p, _)| p.id != except && p.overlaps(start, end))
            .map(|(p, _)| p.id)
    }

    /// Returns every recorded partition, ordered by id.
    pub fn partitions(&self) -> Vec<Partition> {
        let mut out: Vec<Partition> = self
            .inner
            .lock()
            .partitions
            .values()
            .map(|(p, _)| p.clone())
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Allocates `n` consecutive ids unique in the cluster (while node ids are): the node id
    /// in the high bits and a persisted counter in the low 40. Returns the first.
    pub(crate) fn alloc_ids(&self, engine: &dyn Engine, node_id: u64, n: u64) -> Result<u64> {
        // The registry's mutex serialises the read-modify-write across hosts.
        let _guard = self.inner.lock();
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
