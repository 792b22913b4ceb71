//! The seam between the wire protocol and the SQL layer.
//!
//! The connection code is generic over these traits so that the protocol machinery can be tested
//! against a scripted engine; the only production implementation is `reef_sql`'s
//! `Database`/`Session`, which the public [`crate::serve`] uses.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use reef_sql::{Column, DataType, ExecResult, Result, TxnStatus, Value};

/// A statement prepared by the extended protocol's Parse.
pub(crate) struct Described<P> {
    /// The engine's handle to the statement.
    pub handle: P,
    /// Resolved parameter types.
    pub param_types: Vec<DataType>,
    /// Result columns, if the statement returns rows.
    pub columns: Option<Vec<Column>>,
}

/// A database that opens sessions.
pub(crate) trait SqlDatabase: Clone + Send + Sync + 'static {
    /// The session type.
    type Session: SqlSession;
    /// The role named `user`, for authentication; None if there is none.
    fn role(&self, user: &str) -> Result<Option<reef_sql::role::RoleDesc>>;
    /// Opens a session; fails with SQLSTATE 3D000 if the database does not exist.
    fn session(&self, user: &str, database: &str) -> Result<Self::Session>;
}

/// One client session. All methods may block.
pub(crate) trait SqlSession: Send + 'static {
    /// The engine's prepared-statement handle.
    type Statement: Send + Sync + 'static;
    /// Runs every statement of a simple query.
    fn execute_simple(&mut self, sql: &str) -> Vec<Result<ExecResult>>;
    /// Parses and describes one statement.
    fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> Result<Described<Self::Statement>>;
    /// Runs a prepared statement with bound parameters.
    fn execute_prepared(&mut self, stmt: &Self::Statement, params: &[Value]) -> Result<ExecResult>;
    /// Runs the statements of a simple query that followed a COPY FROM STDIN.
    fn resume(&mut self) -> Vec<Result<ExecResult>>;
    /// Takes a CopyData message's bytes during COPY FROM STDIN.
    fn copy_data(&mut self, data: &[u8]) -> Result<()>;
    /// Ends COPY FROM STDIN (CopyDone).
    fn copy_done(&mut self) -> Result<ExecResult>;
    /// Abandons COPY FROM STDIN (CopyFail, or a protocol error); returns the error to report.
    fn copy_fail(&mut self, message: &str) -> reef_sql::SqlError;
    /// The flag a CancelRequest for this session raises.
    fn cancel_flag(&self) -> Arc<AtomicBool>;
    /// The status for ReadyForQuery.
    fn txn_status(&self) -> TxnStatus;
    /// Settings reported in ParameterStatus.
    fn parameter_status(&self) -> Vec<(String, String)>;
}

impl SqlDatabase for reef_sql::Database {
    type Session = reef_sql::Session;

    fn role(&self, user: &str) -> Result<Option<reef_sql::role::RoleDesc>> {
        reef_sql::Database::role(self, user)
    }

    fn session(&self, user: &str, database: &str) -> Result<Self::Session> {
        reef_sql::Database::session(self, user, database)
    }
}

impl SqlSession for reef_sql::Session {
    type Statement = reef_sql::Prepared;

    fn execute_simple(&mut self, sql: &str) -> Vec<Result<ExecResult>> {
        reef_sql::Session::execute_simple(self, sql)
    }

    fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> Result<Described<Self::Statement>> {
        let prepared = reef_sql::Session::prepare(self, sql, param_types)?;
        Ok(Described {
            param_types: prepared.param_types.clone(),
            columns: prepared.columns.clone(),
            handle: prepared,
        })
    }

    fn execute_prepared(&mut self, stmt: &Self::Statement, params: &[Value]) -> Result<ExecResult> {
        reef_sql::Session::execute_prepared(self, stmt, params)
    }

    fn resume(&mut self) -> Vec<Result<ExecResult>> {
        reef_sql::Session::resume(self)
    }

    fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        reef_sql::Session::copy_data(self, data)
    }

    fn copy_done(&mut self) -> Result<ExecResult> {
        reef_sql::Session::copy_done(self)
    }

    fn copy_fail(&mut self, message: &str) -> reef_sql::SqlError {
        reef_sql::Session::copy_fail(self, message)
    }

    fn cancel_flag(&self) -> Arc<AtomicBool> {
        reef_sql::Session::cancel_flag(self)
    }

    fn txn_status(&self) -> TxnStatus {
        reef_sql::Session::txn_status(self)
    }

    fn parameter_status(&self) -> Vec<(String, String)> {
        reef_sql::Session::parameter_status(self)
    }
}
