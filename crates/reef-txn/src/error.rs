//! The transaction error type.

use std::fmt;

use reef_common::codec::CodecError;
use reef_common::{ErrorCode, Timestamp};
use reef_storage::StorageError;
use thiserror::Error;

use crate::record::LockKind;

/// Formats a key for messages: printable ASCII as is, other bytes escaped.
pub(crate) struct KeyDisplay<'a>(pub &'a [u8]);

impl fmt::Display for KeyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.escape_ascii())
    }
}

/// A lock found in the way of a read or a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The locked key.
    pub key: Vec<u8>,
    /// The primary key of the transaction holding the lock.
    pub primary: Vec<u8>,
    /// The start timestamp of the transaction holding the lock.
    pub start_ts: Timestamp,
    /// The lock's time to live, counted from the physical part of `start_ts`.
    pub ttl_ms: u64,
    /// What the lock will write when committed.
    pub kind: LockKind,
    /// The smallest commit timestamp the holder may use (0 if unconstrained).
    pub min_commit_ts: Timestamp,
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {} is locked by transaction {} (primary {}, ttl {} ms)",
            KeyDisplay(&self.key),
            self.start_ts,
            KeyDisplay(&self.primary),
            self.ttl_ms
        )
    }
}

/// A transaction error.
#[derive(Debug, Error)]
pub enum TxnError {
    /// Another transaction committed a write to `key` after this transaction's snapshot.
    #[error(
        "write conflict on key {k}: another transaction (start ts {conflict_start_ts}) committed at ts \
         {conflict_commit_ts} after this transaction's snapshot ts {start_ts}",
        k = KeyDisplay(.key)
    )]
    WriteConflict {
        /// The conflicting key.
        key: Vec<u8>,
        /// The snapshot timestamp the write was checked against.
        start_ts: Timestamp,
        /// The start timestamp of the transaction that committed the conflicting write.
        conflict_start_ts: Timestamp,
        /// The commit timestamp of the conflicting write.
        conflict_commit_ts: Timestamp,
    },
    /// A key is locked by another transaction.
    #[error("{0}")]
    KeyIsLocked(LockInfo),
    /// An insert met an existing key.
    #[error("duplicate key {k}", k = KeyDisplay(.key))]
    DuplicateKey {
        /// The existing key.
        key: Vec<u8>,
    },
    /// The transaction was rolled back, by itself or by another transaction resolving its locks.
    #[error("transaction aborted: it was rolled back, possibly by another transaction after its locks expired")]
    TxnAborted,
    /// Waiting for another transaction's lock took too long.
    #[error("lock wait timeout: gave up waiting for another transaction's lock")]
    LockWaitTimeout,
    /// Neither a lock nor a commit or rollback record of the transaction exists on `key`.
    #[error("transaction {start_ts} not found on key {k}", k = KeyDisplay(.key))]
    TxnNotFound {
        /// The key.
        key: Vec<u8>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
    },
    /// A rollback met a transaction that had already committed.
    #[error(
        "transaction {start_ts} is already committed at ts {commit_ts} on key {k}",
        k = KeyDisplay(.key)
    )]
    AlreadyCommitted {
        /// The key.
        key: Vec<u8>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
        /// Its commit timestamp.
        commit_ts: Timestamp,
    },
    /// The caller passed an invalid argument or used a finished transaction.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A key or value could not be decoded.
    #[error("codec error: {0}")]
    Codec(#[from] CodecError),
    /// A stored record failed validation.
    #[error("corrupted MVCC data: {0}")]
    Corruption(String),
    /// A remote store or oracle could not serve the request before its deadline (nodes down,
    /// elections, an unreachable network). For a write, the outcome is unknown.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// The transaction's timestamp is below the GC safe point: versions it would read may have
    /// been collected. Restarting it takes a new snapshot.
    #[error("snapshot too old: timestamp {ts} is below the GC safe point {safe_point}")]
    SnapshotTooOld {
        /// The read or start timestamp.
        ts: Timestamp,
        /// The safe point.
        safe_point: Timestamp,
    },
    /// The transaction's [`CommitFence`](crate::CommitFence) refused the commit; nothing was
    /// committed and the locks are rolled back.
    #[error("{0}")]
    Fenced(String),
}

impl TxnError {
    /// Returns the stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            TxnError::WriteConflict { .. } => ErrorCode::WriteConflict,
            TxnError::KeyIsLocked(_) => ErrorCode::KeyIsLocked,
            TxnError::DuplicateKey { .. } => ErrorCode::DuplicateKey,
            TxnError::TxnAborted => ErrorCode::TxnAborted,
            TxnError::LockWaitTimeout => ErrorCode::LockWaitTimeout,
            TxnError::TxnNotFound { .. } => ErrorCode::TxnNotFound,
            TxnError::AlreadyCommitted { .. } => ErrorCode::AlreadyCommitted,
            TxnError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            TxnError::Storage(err) => err.code(),
            TxnError::Codec(_) => ErrorCode::Codec,
            TxnError::Corruption(_) => ErrorCode::Corruption,
            TxnError::Unavailable(_) => ErrorCode::Unavailable,
            TxnError::SnapshotTooOld { .. } => ErrorCode::SnapshotTooOld,
            TxnError::Fenced(_) => ErrorCode::Fenced,
        }
    }
}

impl TxnError {
    /// Returns true if the error follows from the command and the replicated state alone, so
    /// every replica applying the same command meets it. Anything else (an I/O failure, damaged
    /// local data) must not be turned into a command result: replicas would diverge.
    pub fn is_deterministic(&self) -> bool {
        matches!(
            self,
            TxnError::WriteConflict { .. }
                | TxnError::KeyIsLocked(_)
                | TxnError::DuplicateKey { .. }
                | TxnError::TxnAborted
                | TxnError::TxnNotFound { .. }
                | TxnError::AlreadyCommitted { .. }
                | TxnError::InvalidArgument(_)
        )
    }
}

/// A transaction result.
pub type Result<T> = std::result::Result<T, TxnError>;
