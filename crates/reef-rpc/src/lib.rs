//! The gRPC node protocol of reefdb: the generated code of `proto/node.proto` and
//! `proto/meta.proto`, the transport that carries Raft messages between storage nodes, the
//! services a storage node offers, and the root service's `Meta` service.
//!
//! `reef-rpc` sits on `reef-raft` and below `reef-node`. It is the only crate that knows both
//! the replication core and tonic/tokio: the core sees only its [`Transport`](reef_raft::Transport)
//! trait, implemented here by [`GrpcTransport`], and receives requests through its
//! [`Router`](reef_raft::Router). Raft messages travel as raft-rs's protobuf bytes inside our
//! own messages; snapshots stream in chunks over their own call.
//!
//! Every request carries the cluster id and the addressed node id, and every Raft batch the
//! sending node id: a node refuses and logs requests from another cluster, for another node, or
//! from a node it does not know, and never hands them to a replica.
//!
//! See `docs/architecture/reef-rpc.md` for the message flow.

#![warn(missing_docs)]

mod convert;
pub mod dial;
mod meta;
mod service;
mod transport;

/// The generated protocol types, clients and servers.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("reef.node");
}

pub use convert::{
    lock_info_from_pb, lock_info_to_pb, partition_error, partition_from_pb, partition_to_pb,
};
pub use meta::{
    liveness_from_str, node_from_pb, node_to_pb, operation_from_pb, operation_to_pb, MetaService,
};
pub use service::{serve, NodeServices};
pub use transport::{GrpcTransport, PeerAddrs};
