//! Stable error codes shared by all crates.

use std::fmt;

/// A stable, machine-readable classification of an error.
///
/// The string form returned by [`ErrorCode::as_str`] is part of the external interface (it is
/// logged and reported to clients) and never changes for an existing variant.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Another transaction committed a conflicting write after this transaction's snapshot.
    WriteConflict,
    /// A key is locked by another, still undecided transaction.
    KeyIsLocked,
    /// An insert met a key that already exists.
    DuplicateKey,
    /// Waiting for another transaction's lock took too long.
    LockWaitTimeout,
    /// The transaction was rolled back (by itself or by another transaction resolving its locks).
    TxnAborted,
    /// The transaction's lock or commit record could not be found.
    TxnNotFound,
    /// The transaction was already committed, so it cannot be rolled back.
    AlreadyCommitted,
    /// The storage engine reported an error.
    Storage,
    /// Stored data failed validation.
    Corruption,
    /// A value could not be encoded or decoded.
    Codec,
    /// The server is overloaded; the request may be retried later.
    ServerBusy,
    /// The request reached a replica that is not the leader.
    NotLeader,
    /// The request was routed with a stale partition epoch.
    EpochMismatch,
    /// The node hosts no replica of the requested partition.
    PartitionNotFound,
    /// A key of the request lies outside the partition it was sent to.
    KeyNotInPartition,
    /// The command was dropped or superseded by a leader change before it was applied; it may
    /// or may not take effect and is safe to retry only if idempotent.
    StaleCommand,
    /// The replica cannot serve right now (for example, it is shutting down).
    Unavailable,
    /// The caller passed an invalid argument or used an object in an invalid state.
    InvalidArgument,
    /// An internal invariant failed.
    Internal,
    /// A read or write used a timestamp below the GC safe point: versions it would need may
    /// have been collected.
    SnapshotTooOld,
    /// A condition the caller set for its commit no longer held when the commit timestamp was
    /// known (for example, the schema the transaction was planned against changed).
    Fenced,
}

impl ErrorCode {
    /// Returns the stable upper-case name of the code, e.g. `"WRITE_CONFLICT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::WriteConflict => "WRITE_CONFLICT",
            ErrorCode::KeyIsLocked => "KEY_IS_LOCKED",
            ErrorCode::DuplicateKey => "DUPLICATE_KEY",
            ErrorCode::LockWaitTimeout => "LOCK_WAIT_TIMEOUT",
            ErrorCode::TxnAborted => "TXN_ABORTED",
            ErrorCode::TxnNotFound => "TXN_NOT_FOUND",
            ErrorCode::AlreadyCommitted => "ALREADY_COMMITTED",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Corruption => "CORRUPTION",
            ErrorCode::Codec => "CODEC",
            ErrorCode::ServerBusy => "SERVER_BUSY",
            ErrorCode::NotLeader => "NOT_LEADER",
            ErrorCode::EpochMismatch => "EPOCH_MISMATCH",
            ErrorCode::PartitionNotFound => "PARTITION_NOT_FOUND",
            ErrorCode::KeyNotInPartition => "KEY_NOT_IN_PARTITION",
            ErrorCode::StaleCommand => "STALE_COMMAND",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::SnapshotTooOld => "SNAPSHOT_TOO_OLD",
            ErrorCode::Fenced => "FENCED",
        }
    }

    /// Returns true if an operation failing with this code may succeed when retried as a whole
    /// (for a transaction: restarted with a new start timestamp).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::WriteConflict
                | ErrorCode::KeyIsLocked
                | ErrorCode::LockWaitTimeout
                | ErrorCode::TxnAborted
                | ErrorCode::ServerBusy
                | ErrorCode::NotLeader
                | ErrorCode::EpochMismatch
                | ErrorCode::PartitionNotFound
                | ErrorCode::KeyNotInPartition
                | ErrorCode::StaleCommand
                | ErrorCode::Unavailable
                | ErrorCode::SnapshotTooOld
                | ErrorCode::Fenced
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(ErrorCode::WriteConflict.as_str(), "WRITE_CONFLICT");
        assert_eq!(ErrorCode::KeyIsLocked.to_string(), "KEY_IS_LOCKED");
        assert_eq!(ErrorCode::EpochMismatch.as_str(), "EPOCH_MISMATCH");
        assert!(ErrorCode::WriteConflict.is_retryable());
        assert!(!ErrorCode::DuplicateKey.is_retryable());
    }
}
