//! Shared foundations of reefdb: memcomparable key encodings, timestamps and stable error codes.
//!
//! `reef-common` sits at the very bottom of the dependency graph
//! (`reef-common -> reef-storage -> reef-txn -> reef-sql -> reef-pg -> reef-node`). It must not
//! depend on any other reef crate, on RocksDB, on tokio or on anything that does I/O: everything
//! here is pure data manipulation that every layer (and, later, every Raft replica) must agree on
//! byte for byte.
//!
//! * [`codec`] holds the order-preserving ("memcomparable") encodings of primitive values that the
//!   storage layout and the SQL row/index keys are built from, plus a LEB128 varint for values.
//! * [`Timestamp`], [`compose_ts`] and [`ts_physical_ms`] define the hybrid timestamp handed out by
//!   the timestamp oracle: milliseconds since the Unix epoch in the high bits and an 18-bit
//!   logical counter in the low bits.
//! * [`ErrorCode`] is the stable, machine-readable classification that every crate's error type
//!   exposes through a `code()` method, so that clients (and the PostgreSQL wire layer) can map
//!   failures without parsing messages.
//!
//! See `docs/architecture/reef-common.md` for the design notes.

#![warn(missing_docs)]

pub mod codec;
mod error;
pub mod keys;
pub mod metrics;
mod ts;

pub use error::ErrorCode;

/// The stack size of every thread that runs SQL sessions: the node's runtime and blocking-pool
/// threads and each connection's own thread. Binding and planning recurse over the statement,
/// so deeply nested queries need more than the platform's default.
pub const THREAD_STACK_BYTES: usize = 64 << 20;
pub use ts::{
    compose_ts, one_phase_commit_ts, ts_after_ms, ts_logical, ts_physical_ms, Timestamp, TSO_STEP,
    TS_LOGICAL_BITS, TS_LOGICAL_MASK,
};
