//! The root metadata service: the replicated brain of a reefdb cluster.
//!
//! `reef-root` sits on `reef-raft` (and through it on `reef-txn`, `reef-storage` and
//! `reef-common`), and below the gRPC layer (`reef-rpc`), which serves it as the `Meta`
//! service. It must not depend on gRPC, prost or SQL; it uses tokio only for its
//! synchronisation primitives, so any async server can drive it.
//!
//! The root group is an ordinary partition, partition 1, owning the system key range
//! `["", "\x01")` that no SQL key can take, replicated like any other partition but only on
//! nodes with the root role, up to three of them. Its state lives in raw (unversioned) values
//! of that range, changed by raw Raft proposals: the member nodes, the partition map (ranges,
//! epochs and replicas, as leaders report them), the cluster settings, and the timestamp
//! oracle's persisted limit. The [`Root`] on the node whose replica leads the group serves:
//!
//! * the **timestamp oracle**: strictly increasing timestamps from a [`TsoWindow`]
//!   (`reef_txn::TsoWindow`) whose limit is persisted through Raft before any timestamp
//!   reaches it; a new leader resumes above the persisted limit, and every request confirms
//!   leadership in the current term first, so no deposed leader hands out a timestamp after its
//!   successor started;
//! * **joins** (a node id for a new node) and **heartbeats** (liveness: suspect, then dead;
//!   the partition map from the replicas each node leads);
//! * **placement and repair** decisions ([`schedule`]), returned to partition leaders with their
//!   heartbeat replies and carried out as Raft membership changes;
//! * **routing** lookups and the cluster status for operators.
//!
//! See `docs/architecture/reef-root.md` for the records, the leadership rules and why the
//! timestamp oracle never goes back.
//!
//! [`TsoWindow`]: reef_txn::TsoWindow

#![warn(missing_docs)]

mod error;
pub mod meta;
mod root;
pub mod schedule;

pub use error::{Result, RootError};
pub use meta::{
    bootstrap_batch, first_data_partition, root_partition, NodeDesc, NodeState, RootData, Settings,
    DEFAULT_GC_LIFE_MS, FIRST_DATA_PARTITION_ID, ROOT_PARTITION_ID, SYSTEM_END,
};
pub use root::{
    ClusterStatus, Heartbeat, HeartbeatReply, Location, NodeStats, NodeStatus, PartitionStatus,
    ReplicaReport, Root, RootConfig,
};
pub use schedule::{Liveness, Operation, Progress};
