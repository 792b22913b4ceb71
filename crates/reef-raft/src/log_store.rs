//! [`RaftLogStore`]: raft-rs's `Storage` over the node's RocksDB engine.
//!
//! A replica's log entries, hard state and apply progress live in the `raft` column family (see
//! [`keys`](crate::keys)); its data lives in the shared `lock` and `write` column families under
//! the partition's key range. The store keeps the small state records in memory and reads log
//! entries from the engine; everything raft-rs is told was persisted has been written to the
//! engine before.

use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{RaftError, Result};
use crate::keys;
use crate::snapshot::SnapshotData;
use crate::state::{
    ApplyState, Partition, PartitionState, PartitionStatus, RaftLocalState, INIT_INDEX, INIT_TERM,
};

/// A replica's Raft storage.
pub struct RaftLogStore {
    engine: Arc<dyn Engine>,
    partition_id: u64,
    /// The hard state and log bounds, as last written to the batch of a persist round.
    pub(crate) raft_state: RaftLocalState,
    /// The apply progress, as last written.
    pub(crate) apply_state: ApplyState,
    /// The partition descriptor; `None` while the replica is uninitialised (created by a
    /// message, waiting for a snapshot).
    pub(crate) partition: Option<Partition>,
}

impl RaftLogStore {
    /// Loads a replica's state from the engine. An initialised replica (with a descriptor) must
    /// have its apply state; an uninitialised one starts empty unless it voted before.
    ///
    /// A replica that a bootstrap or a split just created has no Raft state of its own yet, or
    /// only the one an uninitialised replica left behind (an early message made it vote): it
    /// starts at the initial log position, keeping any vote cast in a later term.
    pub fn load(
        engine: Arc<dyn Engine>,
        partition_id: u64,
        partition: Option<Partition>,
    ) -> Result<RaftLogStore> {
        let stored = engine
            .get(Cf::Raft, &keys::raft_state_key(partition_id))?
            .map(|raw| RaftLocalState::decode(&raw))
            .transpose()?;
        let apply_state = match engine.get(Cf::Raft, &keys::apply_state_key(partition_id))? {
            Some(raw) if partition.is_some() => ApplyState::decode(&raw)?,
            None if partition.is_some() => {
                return Err(RaftError::Corruption(format!(
                    "partition {partition_id} has a descriptor but no apply state"
                )))
            }
            _ => ApplyState::default(),
        };
        let raft_state = match stored {
            Some(state) if partition.is_none() || state.last_index >= INIT_INDEX => state,
            None if partition.is_none() => RaftLocalState::default(),
            _ if apply_state.applied_index != INIT_INDEX => {
                return Err(RaftError::Corruption(format!(
                    "partition {partition_id} has applied entries but no Raft state"
                )))
            }
            None => RaftLocalState::initial(),
            Some(early) => {
                let mut state = RaftLocalState::initial();
                if early.term > INIT_TERM {
                    state.term = early.term;
                    state.vote = early.vote;
                }
                state
            }
        };
        if partition.is_some()
            && (apply_state.applied_index > raft_state.commit
                || raft_state.commit > raft_state.last_index
                || apply_state.truncated_index > apply_state.applied_index)
        {
            return Err(RaftError::Corruption(format!(
                "partition {partition_id}: inconsistent states {raft_state:?} {apply_state:?}"
            )));
        }
        Ok(RaftLogStore {
            engine,
            partition_id,
            raft_state,
            apply_state,
            partition,
        })
    }

    /// Returns the partition id.
    pub fn partition_id(&self) -> u64 {
        self.partition_id
    }

    /// Returns the first index still in the log.
    pub fn first_index(&self) -> u64 {
        self.apply_state.truncated_index + 1
    }

    /// Returns the last index in the log.
    pub fn last_index(&self) -> u64 {
        self.raft_state.last_index
    }

    /// Adds `entries` (which continue or overwrite the log) to `batch`, removing any old entries
    /// past the new last one.
    pub fn append(&mut self, entries: &[Entry], batch: &mut WriteBatch) -> Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        if first.index < self.first_index() {
            return Err(RaftError::Corruption(format!(
                "partition {}: appending at {} below the first index {}",
                self.partition_id,
                first.index,
                self.first_index()
            )));
        }
        let mut buf = Vec::new();
        for entry in entries {
            buf.clear();
            entry.write_to_vec(&mut buf)?;
            batch.put(
                Cf::Raft,
                &keys::log_key(self.partition_id, entry.index),
                &buf,
            );
        }
        if last.index < self.raft_state.last_index {
            batch.delete_range(
                Cf::Raft,
                &keys::log_key(self.partition_id, last.index + 1),
                &keys::log_key(self.partition_id, self.raft_state.last_index + 1),
            );
        }
        self.raft_state.last_index = last.index;
        self.raft_state.last_term = last.term;
        Ok(())
    }

    /// Records a new hard state (written by the next [`save_raft_state`](Self::save_raft_state)).
    pub fn set_hard_state(&mut self, hs: &HardState) {
        self.raft_state.term = hs.term;
        self.raft_state.vote = hs.vote;
        self.raft_state.commit = hs.commit;
    }

    /// Adds the hard state and log bounds to `batch`.
    pub fn save_raft_state(&self, batch: &mut WriteBatch) {
        batch.put(
            Cf::Raft,
            &keys::raft_state_key(self.partition_id),
            &self.raft_state.encode(),
        );
    }

    /// Adds the apply progress to `batch`.
    pub fn save_apply_state(&self, batch: &mut WriteBatch) {
        batch.put(
            Cf::Raft,
            &keys::apply_state_key(self.partition_id),
            &self.apply_state.encode(),
        );
    }

    /// Removes the log up to and including `index` (at most the applied index): adds the
    /// deletion and the new apply state to `batch`.
    pub fn compact_to(&mut self, index: u64, batch: &mut WriteBatch) -> Result<()> {
        if index <= self.apply_state.truncated_index || index > self.apply_state.applied_index {
            return Ok(());
        }
        let term = self.entry_term(index)?;
        batch.delete_range(
            Cf::Raft,
            &keys::log_key(self.partition_id, self.first_index()),
            &keys::log_key(self.partition_id, index + 1),
        );
        self.apply_state.truncated_index = index;
        self.apply_state.truncated_term = term;
        self.save_apply_state(batch);
        Ok(())
    }

    /// Installs a snapshot received from the leader: replaces the partition's data, log and
    /// states in `batch` (atomically, as one engine write) and returns the new descriptor.
    pub fn apply_snapshot(&mut self, snap: &Snapshot, batch: &mut WriteBatch) -> Result<Partition> {
        let meta = snap.get_metadata();
        let data = SnapshotData::decode(&snap.data)?;
        if data.partition.id != self.partition_id {
            return Err(RaftError::Corruption(format!(
                "snapshot of partition {} sent to partition {}",
                data.partition.id, self.partition_id
            )));
        }
        data.write_to(&*self.engine, batch)?;
        batch.delete_range(
            Cf::Raft,
            &keys::log_key(self.partition_id, 0),
            &keys::log_key(self.partition_id, u64::MAX),
        );
        self.raft_state.last_index = meta.index;
        self.raft_state.last_term = meta.term;
        self.raft_state.commit = self.raft_state.commit.max(meta.index);
        self.raft_state.term = self.raft_state.term.max(meta.term);
        self.apply_state = ApplyState {
            applied_index: meta.index,
            applied_term: meta.term,
            truncated_index: meta.index,
            truncated_term: meta.term,
        };
        self.save_apply_state(batch);
        self.save_raft_state(batch);
        let state = PartitionState {
            status: PartitionStatus::Normal,
            partition: data.partition.clone(),
        };
        batch.put(
            Cf::Raft,
            &keys::partition_key(self.partition_id),
            &state.encode(),
        );
        self.partition = Some(data.partition.clone());
        Ok(data.partition)
    }

    /// Reads the term of the entry at `index`, which must be in `[truncated, last]`.
    pub fn entry_term(&self, index: u64) -> Result<u64> {
        if index == self.apply_state.truncated_index {
            return Ok(self.apply_state.truncated_term);
        }
        if index == self.raft_state.last_index {
            return Ok(self.raft_state.last_term);
        }
        let raw = self
            .engine
            .get(Cf::Raft, &keys::log_key(self.partition_id, index))?
            .ok_or_else(|| {
                RaftError::Corruption(format!(
                    "partition {}: log entry {index} is missing",
                    self.partition_id
                ))
            })?;
        Ok(Entry::parse_from_bytes(&raw)?.term)
    }

    fn conf_state(&self) -> ConfState {
        self.partition
            .as_ref()
            .map(Partition::conf_state)
            .unwrap_or_default()
    }

    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let lower = keys::log_key(self.partition_id, low);
        let upper = keys::log_key(self.partition_id, high);
        let mut cursor = self.engine.cursor(Cf::Raft, Some(&lower), Some(&upper));
        cursor.seek_to_first();
        let mut entries = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let mut expected = low;
        while cursor.valid() {
            let entry = Entry::parse_from_bytes(cursor.value())?;
            if entry.index != expected {
                return Err(RaftError::Corruption(format!(
                    "partition {}: log entry {expected} is missing (found {})",
                    self.partition_id, entry.index
                )));
            }
            size += entry.compute_size() as u64;
            if !entries.is_empty() && max_size.is_some_and(|max| size > max) {
                return Ok(entries);
            }
            entries.push(entry);
            expected += 1;
            cursor.next();
        }
        cursor.status()?;
        if expected != high {
            return Err(RaftError::Corruption(format!(
                "partition {}: log entries {expected}..{high} are missing",
                self.partition_id
            )));
        }
        Ok(entries)
    }
}

fn storage_error(err: RaftError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(err)))
}

impl raft::Storage for RaftLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.raft_state.hard_state(),
            conf_state: self.conf_state(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.read_entries(low, high, max_size.into())
            .map_err(storage_error)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.apply_state.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.entry_term(idx).map_err(storage_error)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(RaftLogStore::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(RaftLogStore::last_index(self))
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let Some(partition) = &self.partition else {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        if self.apply_state.applied_index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        // Apply runs on the thread that calls into raft-rs, so the engine holds exactly the
        // state at the applied index.
        let data = SnapshotData::read(&*self.engine, partition).map_err(storage_error)?;
        let mut snap = Snapshot {
            data: data.encode().into(),
            ..Snapshot::default()
        };
        let meta = snap.mut_metadata();
        meta.index = self.apply_state.applied_index;
        meta.term = self.apply_state.applied_term;
        meta.set_conf_state(partition.conf_state());
        Ok(snap)
    }
}
