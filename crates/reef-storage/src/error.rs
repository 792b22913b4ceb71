//! The storage error type.

use reef_common::ErrorCode;
use thiserror::Error;

/// A storage engine error.
#[derive(Clone, Debug, Error)]
pub enum StorageError {
    /// The engine (RocksDB) reported an error.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// The engine reported that stored data is corrupted.
    #[error("storage corruption: {0}")]
    Corruption(String),
    /// The engine could not be opened with the given options.
    #[error("cannot open storage at {path}: {message}")]
    Open {
        /// The directory that was being opened.
        path: String,
        /// The engine's message.
        message: String,
    },
}

impl StorageError {
    /// Returns the stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::Corruption(_) => ErrorCode::Corruption,
            StorageError::Engine(_) | StorageError::Open { .. } => ErrorCode::Storage,
        }
    }
}

/// A storage result.
pub type Result<T> = std::result::Result<T, StorageError>;
