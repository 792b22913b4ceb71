//! The client's error type.

use reef_common::ErrorCode;
use reef_rpc::pb;
use thiserror::Error;

/// An error of the routing client.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The request kept failing until its deadline; `last` is the last failure seen.
    #[error("request for key '{}' did not succeed before its deadline (last: {last})", .key.escape_ascii())]
    Timeout {
        /// The key routed.
        key: Vec<u8>,
        /// The last failure.
        last: String,
    },
    /// No node knows a leader for the key's partition yet.
    #[error("no leader is known for the partition")]
    NoLeader,
    /// The node id is not among the client's nodes.
    #[error("node {0} is unknown to the client")]
    UnknownNode(u64),
    /// A connection could not be made or broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The root service could not be reached, or had no leader, before the deadline.
    #[error("root service: {0}")]
    Root(String),
    /// The root service refused the request; retrying does not help.
    #[error("root service refused the request: {0}")]
    Refused(String),
    /// A node refused an administrative request; retrying does not help.
    #[error("{0}")]
    Admin(String),
    /// The transaction protocol refused the command (a lock, a conflict, ...).
    #[error("{}", .0.message)]
    Key(Box<pb::KeyError>),
}

impl ClientError {
    /// Returns the stable error code.
    pub fn code(&self) -> ErrorCode {
        use pb::key_error::Error;
        match self {
            ClientError::Timeout { .. } | ClientError::NoLeader => ErrorCode::Unavailable,
            ClientError::UnknownNode(_) | ClientError::Refused(_) | ClientError::Admin(_) => {
                ErrorCode::InvalidArgument
            }
            ClientError::Transport(_) | ClientError::Root(_) => ErrorCode::Unavailable,
            ClientError::Key(err) => match &err.error {
                Some(Error::Locked(_)) => ErrorCode::KeyIsLocked,
                Some(Error::Conflict(_)) => ErrorCode::WriteConflict,
                Some(Error::DuplicateKey(_)) => ErrorCode::DuplicateKey,
                Some(Error::Aborted(_)) => ErrorCode::TxnAborted,
                Some(Error::TxnNotFound(_)) => ErrorCode::TxnNotFound,
                Some(Error::AlreadyCommitted(_)) => ErrorCode::AlreadyCommitted,
                Some(Error::InvalidArgument(_)) => ErrorCode::InvalidArgument,
                Some(Error::SnapshotTooOld(_)) => ErrorCode::SnapshotTooOld,
                None => ErrorCode::Internal,
            },
        }
    }
}

/// The client's result type.
pub type Result<T> = std::result::Result<T, ClientError>;
