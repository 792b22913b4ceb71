//! The storage engine abstraction of reefdb: a small ordered key-value interface over RocksDB.
//!
//! `reef-storage` sits between `reef-common` (below) and `reef-txn` (above). It knows nothing of
//! transactions, SQL, tokio or the network: it stores raw byte keys and values in a fixed set of
//! column families ([`Cf`]) and offers point reads, bounded raw cursors, atomic write batches and
//! a few maintenance operations. The MVCC layer in `reef-txn` (and, later, Raft log storage) is
//! written against the [`Engine`] trait only; no RocksDB type appears in this crate's public API,
//! so the rest of the system never depends on the `rocksdb` crate directly.
//!
//! [`RocksEngine`] is the one implementation. It is `Send + Sync` and meant to be shared through
//! an `Arc`.
//!
//! See `docs/architecture/reef-storage.md` for the design notes.

#![warn(missing_docs)]

mod batch;
mod error;
mod rocks;

use std::path::Path;

pub use batch::{BatchOp, WriteBatch};
pub use error::{Result, StorageError};
pub use rocks::{EngineOptions, RocksEngine};

/// A column family: an independent ordered key space within one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// General data (unused by the MVCC layer for now, which keeps values inline).
    Default,
    /// Percolator locks of in-flight transactions.
    Lock,
    /// Committed versions, rollback and lock records.
    Write,
    /// Node-local metadata, such as the timestamp oracle's persisted bound.
    Meta,
    /// Raft logs, hard states and partition descriptors of the replicas a node hosts.
    Raft,
}

impl Cf {
    /// Every column family, in a fixed order. An engine creates all of them when it opens.
    pub const ALL: [Cf; 5] = [Cf::Default, Cf::Lock, Cf::Write, Cf::Meta, Cf::Raft];

    /// Returns the RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Default => "default",
            Cf::Lock => "lock",
            Cf::Write => "write",
            Cf::Meta => "meta",
            Cf::Raft => "raft",
        }
    }

    /// Returns the position of the column family in [`Cf::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Cf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A raw, allocation-free cursor over one column family, optionally bounded.
///
/// A cursor starts unpositioned; call one of the seek methods first. `key` and `value` return
/// empty slices when the cursor is not [`valid`](Cursor::valid). When iteration stops early
/// because of an I/O error, `valid` turns false and [`status`](Cursor::status) reports the error,
/// so callers check `status` after a loop ends.
pub trait Cursor {
    /// Positions at the first key `>= key` (within bounds).
    fn seek(&mut self, key: &[u8]);
    /// Positions at the first key within bounds.
    fn seek_to_first(&mut self);
    /// Positions at the last key `<= key` (within bounds).
    fn seek_for_prev(&mut self, key: &[u8]);
    /// Positions at the last key within bounds.
    fn seek_to_last(&mut self);
    /// Returns true if the cursor is positioned at an entry.
    fn valid(&self) -> bool;
    /// Returns the current key (empty if not valid).
    fn key(&self) -> &[u8];
    /// Returns the current value (empty if not valid).
    fn value(&self) -> &[u8];
    /// Moves to the next entry.
    fn next(&mut self);
    /// Moves to the previous entry.
    fn prev(&mut self);
    /// Returns the error that stopped the iteration, if any.
    fn status(&self) -> Result<()>;
}

/// A point-in-time view of an [`Engine`] (see [`Engine::snapshot`]).
pub trait EngineSnapshot {
    /// Opens a cursor over `cf` in the view, restricted like [`Engine::cursor`].
    fn cursor(&self, cf: Cf, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_>;
}

/// An ordered, column-family-aware key-value engine.
pub trait Engine: Send + Sync + 'static {
    /// Reads the value of `key`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Reads the value of `key` into `buf` (cleared first), returning false if it is absent. This
    /// lets hot paths reuse one buffer instead of allocating per read.
    fn get_into(&self, cf: Cf, key: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
        buf.clear();
        match self.get(cf, key)? {
            Some(value) => {
                buf.extend_from_slice(&value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Opens a cursor over `cf` restricted to `lower <= key < upper` (each bound optional). The
    /// cursor reads a consistent point-in-time view taken when it is created.
    fn cursor(&self, cf: Cf, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_>;

    /// Takes a point-in-time view of every column family: cursors opened on it all read the
    /// engine as it was when it was taken, whatever is written meanwhile.
    fn snapshot(&self) -> Box<dyn EngineSnapshot + '_>;

    /// Applies a batch atomically. With `sync`, the write-ahead log is fsynced before returning.
    fn write(&self, batch: &WriteBatch, sync: bool) -> Result<()>;

    /// Fsyncs the write-ahead log, making every earlier write durable.
    fn sync_wal(&self) -> Result<()>;

    /// Estimates the on-disk size in bytes of the keys in `start..end` (flushed data only).
    fn approximate_size(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<u64>;

    /// Compacts the keys in the given range (the whole column family if both bounds are `None`).
    fn compact_range(&self, cf: Cf, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()>;

    /// Returns the directory the engine stores its files in.
    fn path(&self) -> &Path;

    /// Returns an integer property of the engine summed over every column family (RocksDB's
    /// `rocksdb.*` properties, such as `rocksdb.cur-size-all-mem-tables`), if it has it.
    fn property(&self, name: &str) -> Option<u64>;
}
