//! [`GrpcTransport`]: carries Raft messages to other nodes over gRPC.
//!
//! Each destination node gets one task and one long-lived client stream (`Raft.Send`). The
//! replication thread only queues envelopes (never blocking: a full queue drops, and Raft
//! retransmits); the task batches whatever is queued into one `RaftBatch`. Snapshots leave the
//! batch stream and go through their own `Raft.Snapshot` call in 1 MiB chunks, and their
//! outcome is reported back to the sending replica. When a stream breaks, the task reports the
//! node unreachable (so raft-rs stops pipelining to it) and reconnects with a backoff.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use reef_raft::{Envelope, HostMsg, Router, Transport};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::convert::{encode_message, envelope_to_pb};
use crate::pb;
use crate::pb::raft_client::RaftClient;

/// Node id → gRPC address (`http://host:port`) of every node this node may talk to.
pub type PeerAddrs = Arc<RwLock<HashMap<u64, String>>>;

/// The queue length per destination node.
const QUEUE: usize = 16 * 1024;
/// The most envelopes in one batch.
const MAX_BATCH_ENVELOPES: usize = 1024;
/// The most encoded bytes in one batch (below the receiver's 64 MiB message limit).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// The snapshot chunk size.
const CHUNK: usize = 1 << 20;

/// Sends Raft messages to other nodes over gRPC. Clones (one per replication thread) share
/// the links: one task and one stream per destination node.
pub struct GrpcTransport {
    cluster_id: u64,
    node_id: u64,
    addrs: PeerAddrs,
    runtime: tokio::runtime::Handle,
    router: Arc<OnceLock<Router>>,
    /// The link queues of every destination, shared by all clones.
    links: Arc<Mutex<HashMap<u64, mpsc::Sender<Envelope>>>>,
    /// This clone's copy of the queues it has used, so sending takes no lock.
    queues: HashMap<u64, mpsc::Sender<Envelope>>,
}

impl Clone for GrpcTransport {
    fn clone(&self) -> GrpcTransport {
        GrpcTransport {
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            addrs: self.addrs.clone(),
            runtime: self.runtime.clone(),
            router: self.router.clone(),
            links: self.links.clone(),
            queues: HashMap::new(),
        }
    }
}

impl GrpcTransport {
    /// Creates a transport for node `node_id`. `router` is filled in once the replication
    /// thread runs; until then, delivery failures are not reported.
    pub fn new(
        cluster_id: u64,
        node_id: u64,
        addrs: PeerAddrs,
        runtime: tokio::runtime::Handle,
        router: Arc<OnceLock<Router>>,
    ) -> GrpcTransport {
        GrpcTransport {
            cluster_id,
            node_id,
            addrs,
            runtime,
            router,
            links: Arc::new(Mutex::new(HashMap::new())),
            queues: HashMap::new(),
        }
    }
}

impl Transport for GrpcTransport {
    fn send(&mut self, envelope: Envelope) {
        let node = envelope.to.node_id;
        let queue = self.queues.entry(node).or_insert_with(|| {
            let mut links = self.links.lock();
            links
                .entry(node)
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    let link = Link {
                        cluster_id: self.cluster_id,
                        from_node: self.node_id,
                        to_node: node,
                        addrs: self.addrs.clone(),
                        router: self.router.clone(),
                    };
                    self.runtime.spawn(link.run(rx));
                    tx
                })
                .clone()
        });
        if let Err(err) = queue.try_send(envelope) {
            tracing::debug!(to_node = node, "dropping a Raft message: {err}");
        }
    }
}

/// The sending side of the connection to one node.
struct Link {
    cluster_id: u64,
    from_node: u64,
    to_node: u64,
    addrs: PeerAddrs,
    router: Arc<OnceLock<Router>>,
}

impl Link {
    fn report(&self, msg: HostMsg) {
        if let Some(router) = self.router.get() {
            let _ = router.send(msg);
        }
    }

    async fn run(self, mut rx: mpsc::Receiver<Envelope>) {
        let mut backoff = Duration::from_millis(50);
        let mut warned = false;
        loop {
            let Some(addr) = self.addrs.read().get(&self.to_node).cloned() else {
                // Normal while a cluster forms: the member list arrives with the next heartbeat.
                if !warned {
                    tracing::warn!(
                        to_node = self.to_node,
                        "no address for node yet; dropping its messages until one is known"
                    );
                    warned = true;
                }
                if rx.recv().await.is_none() {
                    return;
                }
                continue;
            };
            let client = match connect(&addr).await {
                Ok(client) => client,
                Err(err) => {
                    tracing::debug!(to_node = self.to_node, %addr, %err, "cannot connect");
                    self.report(HostMsg::Unreachable(self.to_node));
                    // Messages queued meanwhile are stale by the time the node is back.
                    while rx.try_recv().is_ok() {}
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            let (batch_tx, batch_rx) = mpsc::channel::<pb::RaftBatch>(64);
            let mut call_client = client.clone();
            let call =
                tokio::spawn(async move { call_client.send(ReceiverStream::new(batch_rx)).await });
            loop {
                let Some(first) = rx.recv().await else {
                    return;
                };
                let mut batch = pb::RaftBatch {
                    cluster_id: self.cluster_id,
                    from_node: self.from_node,
                    to_node: self.to_node,
                    envelopes: Vec::new(),
                };
                let mut bytes = 0;
                let mut next = Some(first);
                while let Some(env) = next.take() {
                    if env.message.get_msg_type() == reef_raft::MessageType::MsgSnapshot {
                        tokio::spawn(send_snapshot(
                            client.clone(),
                            self.cluster_id,
                            self.from_node,
                            env,
                            self.router.clone(),
                        ));
                    } else {
                        let message = encode_message(&env.message);
                        bytes += message.len();
                        batch.envelopes.push(envelope_to_pb(&env, message));
                    }
                    if batch.envelopes.len() < MAX_BATCH_ENVELOPES && bytes < MAX_BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                if batch.envelopes.is_empty() {
                    continue;
                }
                if batch_tx.send(batch).await.is_err() {
                    break;
                }
            }
            let outcome = call.await;
            tracing::debug!(to_node = self.to_node, ?outcome, "Raft stream ended");
            self.report(HostMsg::Unreachable(self.to_node));
            tokio::time::sleep(backoff).await;
        }
    }
}

async fn connect(
    addr: &str,
) -> Result<RaftClient<tonic::transport::Channel>, tonic::transport::Error> {
    let channel = crate::dial::endpoint(addr.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    Ok(RaftClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// Streams one snapshot and reports whether it arrived.
async fn send_snapshot(
    mut client: RaftClient<tonic::transport::Channel>,
    cluster_id: u64,
    from_node: u64,
    mut env: Envelope,
    router: Arc<OnceLock<Router>>,
) {
    let data = std::mem::take(&mut env.message.mut_snapshot().data);
    let header = pb::SnapshotHeader {
        cluster_id,
        from_node,
        to_node: env.to.node_id,
        envelope: Some(envelope_to_pb(&env, encode_message(&env.message))),
        data_len: data.len() as u64,
    };
    let mut chunks = vec![pb::SnapshotChunk {
        chunk: Some(pb::snapshot_chunk::Chunk::Header(header)),
    }];
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + CHUNK).min(data.len());
        chunks.push(pb::SnapshotChunk {
            chunk: Some(pb::snapshot_chunk::Chunk::Data(data.slice(offset..end))),
        });
        offset = end;
    }
    let result = client.snapshot(tokio_stream::iter(chunks)).await;
    let delivered = result.is_ok();
    if let Err(status) = &result {
        tracing::warn!(partition = env.partition_id, to_node = env.to.node_id, %status, "snapshot not delivered");
    } else {
        tracing::info!(
            partition = env.partition_id,
            to_node = env.to.node_id,
            bytes = data.len(),
            "snapshot delivered"
        );
    }
    if let Some(router) = router.get() {
        let _ = router.send(HostMsg::SnapshotStatus {
            partition_id: env.partition_id,
            replica_id: env.to.id,
            delivered,
        });
    }
}
