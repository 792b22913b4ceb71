//! The root service's error type.

use reef_common::ErrorCode;
use reef_raft::RaftError;
use thiserror::Error;

/// An error of the root service.
#[derive(Debug, Error)]
pub enum RootError {
    /// This node does not lead the root group; `leader` is the node that does, if known.
    #[error("this node is not the root leader{}", .leader.map(|id| format!(" (node {id} is)")).unwrap_or_default())]
    NotLeader {
        /// The leader's node id, if known.
        leader: Option<u64>,
    },
    /// The root group cannot serve right now (an election, a leadership change under way).
    #[error("the root service is unavailable: {0}")]
    Unavailable(String),
    /// The request is malformed or names an unknown node.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The root group's replication layer failed.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// Stored root state failed validation.
    #[error("corrupted root state: {0}")]
    Corruption(String),
}

impl RootError {
    /// Returns the stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RootError::NotLeader { .. } => ErrorCode::NotLeader,
            RootError::Unavailable(_) => ErrorCode::Unavailable,
            RootError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            RootError::Raft(err) => err.code(),
            RootError::Corruption(_) => ErrorCode::Corruption,
        }
    }
}

impl From<reef_txn::TxnError> for RootError {
    fn from(err: reef_txn::TxnError) -> RootError {
        RootError::Raft(RaftError::Txn(err))
    }
}

/// The root service's result type.
pub type Result<T, E = RootError> = std::result::Result<T, E>;
