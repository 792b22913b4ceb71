//! Raft-replicated partitions: the replication core of a reefdb storage node.
//!
//! `reef-raft` sits on `reef-txn`, `reef-storage` and `reef-common`, and below the node's gRPC
//! server. It must not depend on tokio, tonic, prost or SQL: everything that leaves the process
//! goes through the [`Transport`] trait, and time enters only through [`Host::tick`] and the
//! [`Clock`] trait, so tests can drive several hosts in one thread over a simulated network
//! that drops, delays, reorders and partitions messages.
//!
//! The key space is split into [`Partition`]s, contiguous user-key ranges with an id and an
//! [`Epoch`]. Each partition is a Raft group (raft-rs `RawNode`) whose replicas live on
//! different nodes; a [`Host`] drives many replicas together, persisting the log entries and
//! hard states of many groups in one RocksDB write with one fsync per round. A node runs a
//! small pool of hosts, one per replication thread ([`Driver`]), each owning the partitions
//! [`Shard`] assigns it, over one RocksDB instance. The
//! Percolator commands of `reef-txn` are proposals: every replica applies them in log order
//! through [`MvccStore::execute`](reef_txn::MvccStore::execute), and an apply error that is not
//! deterministic panics rather than letting replicas diverge. Reads are served by the leader:
//! directly while its lease holds, otherwise after a ReadIndex round. Splits, log compaction
//! and membership changes are log entries too, so every replica performs them at the same index.
//!
//! See `docs/architecture/reef-raft.md` for the message flow, where each fsync happens and why
//! reads are linearizable.

#![warn(missing_docs)]

mod cmd;
mod driver;
mod error;
mod host;
pub mod keys;
mod log_store;
mod logger;
mod peer;
mod registry;
mod snapshot;
pub mod state;
mod transport;

pub use cmd::{ChangeContext, CmdBody, RaftCmd};
pub use driver::{Driver, HostMsg, Router};
pub use error::{RaftError, Result};
pub use host::{Handoff, Host, RaftConfig, ReplicaChange, ReplicaStatus};
pub use log_store::RaftLogStore;
pub use peer::{OnePcCallback, ProposeCallback, ReadCallback, ReadView};
pub use raft::prelude::Message as RaftMessage;
pub use raft::prelude::MessageType;
pub use raft::StateRole;
pub use registry::{Registry, Shard};
pub use snapshot::SnapshotData;
pub use state::{Epoch, Partition, Replica, StoreIdent};
pub use transport::{Clock, Envelope, SystemClock, Transport};
