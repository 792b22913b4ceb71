//! The routing client of a reefdb storage cluster: sends each key's command to the leader of
//! the partition holding it, over the `Kv` gRPC service.
//!
//! `reef-client` sits on `reef-rpc` (the protocol types) and below the SQL layer, which will
//! reach storage only through it. It must not depend on the replication core's internals
//! (`reef-raft`) or on SQL: what it knows of the cluster is what nodes answer. It keeps a
//! [`PartitionCache`] (key ranges, epochs, last known leaders) that may be stale, and lets the
//! nodes' typed errors correct it: `NotLeader` moves to the hinted leader, `EpochMismatch`
//! replaces the cached partition by the ones the node reports, `ServerBusy` and elections back
//! off; every request retries within a deadline. Commands over many keys are split by
//! partition and regrouped when a partition splits under them; scans walk partition by
//! partition in key order.
//!
//! A client made with [`Client::with_root`] learns partitions, leaders and node addresses from
//! the root service's map ([`RootClient::locate`]); one made with [`Client::new`] asks the
//! nodes it was given for their status (fixed membership). [`RootClient`] talks to the root service's leader wherever it is: joins, heartbeats,
//! timestamps, routing lookups and the cluster status.
//!
//! See `docs/architecture/reef-client.md`.

#![warn(missing_docs)]

mod cache;
mod client;
mod conn;
mod error;
mod root;
mod shun;
mod txn;

pub use cache::{PartitionCache, Route};
pub use client::Client;
pub use conn::{KvConn, MetaConn};
pub use error::{ClientError, Result};
pub use root::RootClient;
pub use txn::{block_on, ClusterStore, RemoteTso};
