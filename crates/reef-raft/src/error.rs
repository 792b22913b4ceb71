//! The replication layer's error type.

use reef_common::ErrorCode;
use reef_storage::StorageError;
use reef_txn::TxnError;
use thiserror::Error;

use crate::state::{Epoch, Partition, Replica};

/// An error of the replication layer. The variants a client must act on (`NotLeader`,
/// `EpochMismatch`, `ServerBusy`, and the transaction errors inside `Txn`) carry what it needs
/// to retry well.
#[derive(Debug, Error)]
pub enum RaftError {
    /// The replica is not the leader; `leader` is the one it knows of, if any.
    #[error("partition {partition_id}: this replica is not the leader{}", .leader.map(|l| format!(" (leader is replica {} on node {})", l.id, l.node_id)).unwrap_or_default())]
    NotLeader {
        /// The partition.
        partition_id: u64,
        /// The current leader, if known.
        leader: Option<Replica>,
    },
    /// The request's epoch is stale (the partition split or changed membership since).
    #[error("partition {partition_id}: epoch mismatch (request has {requested}, partition has {})", .current.first().map(|p| p.epoch.to_string()).unwrap_or_default())]
    EpochMismatch {
        /// The partition.
        partition_id: u64,
        /// The epoch the request carried.
        requested: Epoch,
        /// The partitions that now cover the requested partition's old range, as this node
        /// knows them.
        current: Vec<Partition>,
    },
    /// The node hosts no replica of the partition.
    #[error("partition {0} is not hosted on this node")]
    PartitionNotFound(u64),
    /// A key lies outside the partition.
    #[error("key '{}' is not in {partition}", .key.escape_ascii())]
    KeyNotInPartition {
        /// The key.
        key: Vec<u8>,
        /// The partition as the replica knows it.
        partition: Partition,
    },
    /// The command was dropped or superseded by a leader change; it may or may not have taken
    /// effect.
    #[error("partition {0}: the command was superseded by a leader change or did not apply in time; it may or may not have taken effect")]
    StaleCommand(u64),
    /// The replica is overloaded; retry after a short backoff.
    #[error("server is busy: {0}")]
    ServerBusy(String),
    /// The replica is shutting down or was removed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The applied command failed with a deterministic transaction error.
    #[error(transparent)]
    Txn(#[from] TxnError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// raft-rs reported an error.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// Persistent Raft state failed validation.
    #[error("corrupted Raft state: {0}")]
    Corruption(String),
}

impl RaftError {
    /// Returns the stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RaftError::NotLeader { .. } => ErrorCode::NotLeader,
            RaftError::EpochMismatch { .. } => ErrorCode::EpochMismatch,
            RaftError::PartitionNotFound(_) => ErrorCode::PartitionNotFound,
            RaftError::KeyNotInPartition { .. } => ErrorCode::KeyNotInPartition,
            RaftError::StaleCommand(_) => ErrorCode::StaleCommand,
            RaftError::ServerBusy(_) => ErrorCode::ServerBusy,
            RaftError::Unavailable(_) => ErrorCode::Unavailable,
            RaftError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            RaftError::Txn(err) => err.code(),
            RaftError::Storage(err) => err.code(),
            RaftError::Raft(_) => ErrorCode::Internal,
            RaftError::Corruption(_) => ErrorCode::Corruption,
        }
    }
}

impl From<reef_common::codec::CodecError> for RaftError {
    fn from(err: reef_common::codec::CodecError) -> RaftError {
        RaftError::Corruption(err.to_string())
    }
}

impl From<protobuf::ProtobufError> for RaftError {
    fn from(err: protobuf::ProtobufError) -> RaftError {
        RaftError::Corruption(format!("protobuf: {err}"))
    }
}

/// A replication result.
pub type Result<T> = std::result::Result<T, RaftError>;
