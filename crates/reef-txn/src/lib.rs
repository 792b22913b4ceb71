//! Percolator MVCC transactions over the reefdb storage engine.
//!
//! `reef-txn` sits on `reef-storage` and `reef-common` and below `reef-sql`. It knows nothing of
//! SQL, tokio or the network, and must never depend on them: later, Raft replicas will apply its
//! commands inside their state machines.
//!
//! The crate has two halves, split the way TiKV and its clients are:
//!
//! * The storage side, [`MvccStore`], keeps multi-version data in the lock and write column
//!   families and applies deterministic [`Command`]s (prewrite, commit, rollback, check
//!   transaction status, resolve lock, GC). Each command reads the engine, decides, and writes a
//!   single atomic batch; its outcome depends only on the engine state and the command, so
//!   replicas applying the same command log stay identical. Latches serialise commands on the
//!   same keys. Snapshot reads ([`MvccStore::get`], [`MvccStore::scan`]) report locks of
//!   undecided transactions instead of guessing.
//! * The client side, [`TxnClient`] and [`Transaction`], buffers writes (in memory, spilling to
//!   a scratch [`SpillEngine`] past a bound), reads through
//!   the [`Store`] trait at a snapshot timestamp from a [`TimestampOracle`], resolves or waits
//!   for other transactions' locks, and commits with Percolator's two-phase commit. [`LocalStore`]
//!   and [`LocalTso`] are the single-node implementations of the store and the oracle.
//!
//! See `docs/architecture/reef-txn.md` for the storage layout and the protocol in detail.

#![warn(missing_docs)]

mod buffer;
mod command_codec;
mod error;
mod latch;
mod mvcc;
mod record;
mod store;
mod tso;
mod txn;

pub use buffer::SpillEngine;
pub use error::{LockInfo, Result, TxnError};
pub use latch::{LatchGuard, Latches};
pub use mvcc::{
    data_bounds, Command, CommandResponse, GcProgress, KvPair, Mutation, MutationOp, MvccStore,
    RawBatch, RawPairs, TxnStatus, DATA_CFS,
};
pub use record::{Lock, LockKind, WriteKind, WriteRef};
pub use reef_common::Timestamp;
pub use store::{resume_key, FilteredBatch, LocalStore, PairFilter, ScanFilter, Store};
pub use tso::{now_ms, LocalTso, TimestampOracle, TsoWindow};
pub use txn::{
    CommitFence, CommitView, CommitWait, IsolationLevel, Scanner, Transaction, TxnClient,
    TxnConfig, DESTROY_REGISTRY,
};
