//! The SQL layer's error type.
//!
//! Every error carries a PostgreSQL SQLSTATE so that the wire front end can
//! report it unchanged; the code is part of the contract with clients.

use std::fmt;

/// SQLSTATE codes used by reefdb. The list follows PostgreSQL's appendix A.
#[allow(missing_docs)]
pub mod sqlstate {
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_TRANSACTION_STATE: &str = "25000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_ESCAPE_SEQUENCE: &str = "22025";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const ARRAY_SUBSCRIPT_ERROR: &str = "2202E";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const INTEGRITY_CONSTRAINT_VIOLATION: &str = "23000";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const OBJECT_IN_USE: &str = "55006";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_ALIAS: &str = "42712";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const AMBIGUOUS_FUNCTION: &str = "42725";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const GROUPING_ERROR: &str = "42803";
    pub const WINDOWING_ERROR: &str = "42P20";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_OBJECT_DEFINITION: &str = "42P17";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const UNDEFINED_DATABASE: &str = "3D000";
    pub const INVALID_PREPARED_STATEMENT_DEFINITION: &str = "42P14";
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const UNDEFINED_PREPARED_STATEMENT: &str = "26000";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const QUERY_CANCELED: &str = "57014";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const UNDEFINED_SETTING: &str = "42704";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const IO_ERROR: &str = "58030";
}

/// An error raised by the SQL layer, with the SQLSTATE a client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The five-character SQLSTATE.
    pub code: &'static str,
    /// The primary, human-readable message.
    pub message: String,
    /// Optional detail line (PostgreSQL's DETAIL).
    pub detail: Option<String>,
    /// Optional hint line (PostgreSQL's HINT).
    pub hint: Option<String>,
    /// The object the error is about (schema, table, column, constraint), for clients that map
    /// constraint errors without parsing messages.
    pub object: Option<Box<ErrorObject>>,
}

/// The object an error concerns, as PostgreSQL reports it in ErrorResponse fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorObject {
    /// The schema (always `public` for tables).
    pub schema: Option<String>,
    /// The table.
    pub table: Option<String>,
    /// The column.
    pub column: Option<String>,
    /// The constraint (or unique index).
    pub constraint: Option<String>,
}

impl SqlError {
    /// Creates an error with a SQLSTATE and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            object: None,
        }
    }

    /// Names the table (in `public`), and optionally the column and constraint, the error
    /// concerns.
    pub fn on_object(
        mut self,
        table: &str,
        column: Option<&str>,
        constraint: Option<&str>,
    ) -> Self {
        self.object = Some(Box::new(ErrorObject {
            schema: Some("public".into()),
            table: Some(table.into()),
            column: column.map(Into::into),
            constraint: constraint.map(Into::into),
        }));
        self
    }

    /// Whether the same statement may succeed if tried again unchanged: a conflict, a lock
    /// held, a busy or unavailable cluster.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            sqlstate::SERIALIZATION_FAILURE | sqlstate::LOCK_NOT_AVAILABLE | "40003" | "53300"
        )
    }

    /// Adds a DETAIL line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a HINT line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A feature reefdb does not provide.
    pub fn unsupported(what: impl Into<String>) -> Self {
        SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, what)
    }

    /// An internal invariant failed; this is always a bug.
    pub fn internal(what: impl Into<String>) -> Self {
        SqlError::new(sqlstate::INTERNAL_ERROR, what)
    }

    /// A malformed input value for a type.
    pub fn invalid_text(type_name: &str, input: &str) -> Self {
        SqlError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{input}\""),
        )
    }

    /// A numeric result that does not fit its type.
    pub fn out_of_range(type_name: &str) -> Self {
        SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{type_name} out of range"),
        )
    }

    /// Division by zero.
    pub fn division_by_zero() -> Self {
        SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero")
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SqlError {}

/// The SQL layer's result type.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// Maps a transaction-layer error to the SQLSTATE a client must act on.
pub fn from_txn(e: reef_txn::TxnError) -> SqlError {
    use reef_common::ErrorCode;
    let msg = e.to_string();
    match e.code() {
        ErrorCode::WriteConflict => SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not serialize access due to concurrent update",
        )
        .with_detail(msg)
        .with_hint("The transaction might succeed if retried."),
        ErrorCode::TxnAborted | ErrorCode::TxnNotFound => SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not serialize access: the transaction was aborted",
        )
        .with_detail(msg)
        .with_hint("The transaction might succeed if retried."),
        // A commit fence refused the commit: the message says why (a schema change).
        ErrorCode::Fenced => SqlError::new(sqlstate::SERIALIZATION_FAILURE, msg)
            .with_hint("The transaction might succeed if retried."),
        ErrorCode::DuplicateKey => SqlError::new(
            sqlstate::UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint",
        ),
        ErrorCode::LockWaitTimeout | ErrorCode::KeyIsLocked => SqlError::new(
            sqlstate::LOCK_NOT_AVAILABLE,
            "could not obtain lock: another transaction holds it",
        )
        .with_detail(msg),
        ErrorCode::ServerBusy => SqlError::new("53300", "server is busy").with_detail(msg),
        // The cluster could not answer in time (nodes down, an election): for a write the
        // outcome is unknown, which PostgreSQL's statement_completion_unknown says.
        ErrorCode::Unavailable => SqlError::new(
            "40003",
            "the cluster could not complete the statement in time; its outcome is unknown",
        )
        .with_detail(msg)
        .with_hint("Check whether the change was made, then retry."),
        // PostgreSQL's own error for a snapshot older than old_snapshot_threshold.
        ErrorCode::SnapshotTooOld => SqlError::new("72000", "snapshot too old")
            .with_detail(msg)
            .with_hint("The transaction ran longer than the GC life time; retry it."),
        ErrorCode::Storage => SqlError::new(sqlstate::IO_ERROR, format!("storage error: {msg}")),
        _ => SqlError::internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_errors_map_to_sqlstates() {
        let cases = [
            (
                reef_txn::TxnError::WriteConflict {
                    key: b"k".to_vec(),
                    start_ts: 1,
                    conflict_start_ts: 2,
                    conflict_commit_ts: 3,
                },
                "40001",
            ),
            (reef_txn::TxnError::TxnAborted, "40001"),
            (reef_txn::TxnError::LockWaitTimeout, "55P03"),
            (
                reef_txn::TxnError::Unavailable("no leader before the deadline".into()),
                "40003",
            ),
            (
                reef_txn::TxnError::SnapshotTooOld {
                    ts: 5,
                    safe_point: 9,
                },
                "72000",
            ),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            assert_eq!(from_txn(err).code, code, "{text}");
        }
    }
}
