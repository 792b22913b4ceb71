//! The wire front end's error type.

use reef_common::ErrorCode;
use reef_sql::{sqlstate, SqlError};

/// An error of the PostgreSQL front end.
///
/// Every variant maps to a SQLSTATE ([`PgError::sqlstate`]) that is reported to the client when
/// the connection is still able to receive it, and to a stable [`ErrorCode`] ([`PgError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The socket failed or the peer went away.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke the framing of the protocol; the connection cannot continue.
    #[error("protocol violation: {message}")]
    Protocol {
        /// The SQLSTATE reported to the client.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A message was longer than `PgConfig::max_message_bytes`.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The length the client announced.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The server refused the connection (unknown database, too many clients, ...).
    #[error("connection rejected: {0}")]
    Rejected(SqlError),
    /// A statement or message failed; the connection goes on.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// A backend message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The server is shutting down and terminated the connection.
    #[error("terminating connection due to administrator command")]
    Shutdown,
    /// An internal invariant failed (for example, the SQL engine panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl PgError {
    /// Creates a fatal protocol violation (SQLSTATE 08P01).
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        PgError::Protocol {
            code: sqlstate::PROTOCOL_VIOLATION,
            message: message.into(),
        }
    }

    /// The SQLSTATE reported to the client for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            PgError::Io(_) => "08006",
            PgError::Protocol { code, .. } => code,
            PgError::MessageTooLarge { .. } => sqlstate::PROGRAM_LIMIT_EXCEEDED,
            PgError::Sql(e) | PgError::Rejected(e) => e.code,
            PgError::Encode(_) | PgError::Internal(_) => sqlstate::INTERNAL_ERROR,
            PgError::Shutdown => "57P01",
        }
    }

    /// The stable, machine-readable classification of the error.
    pub fn code(&self) -> ErrorCode {
        match self {
            PgError::Io(_) | PgError::Protocol { .. } | PgError::MessageTooLarge { .. } => {
                ErrorCode::InvalidArgument
            }
            PgError::Sql(e) if e.code == sqlstate::INTERNAL_ERROR => ErrorCode::Internal,
            PgError::Sql(_) | PgError::Rejected(_) => ErrorCode::InvalidArgument,
            PgError::Shutdown => ErrorCode::ServerBusy,
            PgError::Encode(_) | PgError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// True if the error ends the connection. Only [`PgError::Sql`] leaves it usable.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, PgError::Sql(_))
    }
}

impl From<pgwire::error::PgWireError> for PgError {
    fn from(e: pgwire::error::PgWireError) -> Self {
        PgError::Encode(e.to_string())
    }
}
