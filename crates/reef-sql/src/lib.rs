//! The SQL layer of reefdb: parser front, binder, planner, optimizer,
//! executor, catalog and sessions.
//!
//! `reef-sql` sits above the transaction layer (`reef-txn`) and below the
//! PostgreSQL wire front end (`reef-pg`). It turns SQL text into plans and
//! runs them inside Percolator transactions; it stores every table row,
//! index entry and catalog descriptor as a key-value pair through a
//! [`reef_txn::Transaction`], and never touches RocksDB, the network, tokio
//! or the wire protocol itself.
//!
//! The path of a statement: [`session::Session`] parses it with
//! `sqlparser` (PostgreSQL dialect), [`binder`] resolves names and types
//! against the [`catalog`] and builds a [`plan::Plan`], [`optimizer`]
//! pushes predicates down, picks index and point-get access paths, hash
//! joins and column pruning, and [`exec`] runs the plan as streaming row
//! iterators. Data types and their semantics live in [`types`]; the
//! order-preserving key and compact row encodings in [`codec`].
//!
//! See `docs/architecture/reef-sql.md`.

#![warn(missing_docs)]

pub mod binder;
pub mod catalog;
pub mod codec;
pub mod copy;
pub(crate) mod ddl;
pub mod error;
pub mod exec;
pub mod expr;
pub mod fence;
pub mod optimizer;
pub mod pg_catalog;
pub mod plan;
pub mod pushdown;
pub mod role;
pub mod session;
pub mod system;
pub mod types;

pub use error::{sqlstate, ErrorObject, Result, SqlError};
pub use session::{Column, Database, ExecResult, Prepared, Session, SqlConfig, TxnStatus};
pub use types::{DataType, Decimal, Interval, Value};
