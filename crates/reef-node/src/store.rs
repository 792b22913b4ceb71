//! A replicating storage node: the partitions this node hosts, their Raft groups, and the gRPC
//! services that carry Raft traffic and transactional commands.
//!
//! On its first start a founding node bootstraps partition 1 (every key) with one voter on each
//! founding node, as every founder does with the same list; other nodes start empty and get
//! replicas through membership changes. Afterwards a node recovers its replicas from disk. SQL does not run over replicated storage yet: that needs the
//! routed client and the timestamp oracle of the root service.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use parking_lot::RwLock;
use reef_raft::{Driver, Host, Partition, RaftConfig, Registry, Shard, StoreIdent};
use reef_rpc::{GrpcTransport, NodeServices};
use reef_storage::{Engine, EngineOptions, RocksEngine};

/// The settings of a storage node.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where RocksDB keeps the node's data.
    pub data_dir: PathBuf,
    /// The cluster id every node of the cluster shares.
    pub cluster_id: u64,
    /// This node's id (not 0).
    pub node_id: u64,
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The id and gRPC address of every node this one talks to, this one included.
    pub peers: Vec<(u64, String)>,
    /// The nodes that found the cluster with a replica of partition 1 each (empty: every
    /// peer). A node outside this list starts empty and waits to be given replicas.
    pub founders: Vec<u64>,
    /// Replication settings.
    pub raft: RaftConfig,
    /// How many replication threads drive the node's replicas (at least 1).
    pub raft_threads: usize,
}

/// Parses `ID=HOST:PORT`.
pub fn parse_peer(text: &str) -> Result<(u64, String)> {
    let (id, addr) = text
        .split_once('=')
        .with_context(|| format!("peer {text:?} is not ID=HOST:PORT"))?;
    let id: u64 = id
        .parse()
        .with_context(|| format!("peer {text:?}: {id:?} is not a node id"))?;
    if id == 0 {
        bail!("peer {text:?}: node ids start at 1");
    }
    addr.parse::<SocketAddr>()
        .with_context(|| format!("peer {text:?}: {addr:?} is not HOST:PORT"))?;
    Ok((id, format!("http://{addr}")))
}

/// Runs a storage node until `shutdown` resolves. `ready` is called once it serves.
pub async fn run_store(
    cfg: StoreConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    if cfg.node_id == 0 {
        bail!("--node-id must be at least 1");
    }
    if !cfg.peers.iter().any(|(id, _)| *id == cfg.node_id) {
        bail!("the peer list must include this node ({})", cfg.node_id);
    }
    let mut ids: Vec<u64> = cfg.peers.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != cfg.peers.len() {
        bail!("the peer list names a node twice");
    }
    let founders = if cfg.founders.is_empty() {
        ids.clone()
    } else {
        let mut founders = cfg.founders.clone();
        founders.sort_unstable();
        founders.dedup();
        if let Some(stranger) = founders.iter().find(|id| !ids.contains(id)) {
            bail!("founder {stranger} is not in the peer list");
        }
        founders
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let engine: Arc<dyn Engine> = Arc::new(
        RocksEngine::open(&cfg.data_dir, &EngineOptions::default())
            .with_context(|| format!("opening {}", cfg.data_dir.display()))?,
    );
    let addrs: HashMap<u64, String> = cfg.peers.iter().cloned().collect();
    let addrs = Arc::new(RwLock::new(addrs));
    let router_cell = Arc::new(OnceLock::new());
    let transport = GrpcTransport::new(
        cfg.cluster_id,
        cfg.node_id,
        addrs.clone(),
        tokio::runtime::Handle::current(),
        router_cell.clone(),
    );
    let tick = cfg.raft.tick_interval;
    let ident = StoreIdent {
        cluster_id: cfg.cluster_id,
        node_id: cfg.node_id,
    };
    let count = cfg.raft_threads.max(1);
    let registry = Arc::new(Registry::new());
    let mut hosts = Vec::with_capacity(count);
    for index in 0..count {
        hosts.push(Host::open_shard(
            engine.clone(),
            ident,
            cfg.raft.clone(),
            Box::new(transport.clone()),
            Arc::new(reef_raft::SystemClock),
            Shard { index, count },
            registry.clone(),
        )?);
    }
    if founders.contains(&cfg.node_id) {
        let first = Partition::first(&founders);
        if hosts[Shard::of(first.id, count)].bootstrap(first)? {
            tracing::info!(nodes = ?founders, "bootstrapped partition 1");
        }
    }
    let driver = Driver::start(hosts, tick);
    let _ = router_cell.set(driver.router());
    let services = NodeServices::new(cfg.cluster_id, cfg.node_id, driver.router(), addrs);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // The listener is bound, so clients can connect as soon as readiness is announced.
    let mut server = tokio::spawn(reef_rpc::serve(listener, services, async move {
        let _ = stop_rx.changed().await;
    }));
    ready(local);
    tokio::select! {
        result = &mut server => {
            result??;
            bail!("the gRPC server stopped unexpectedly");
        }
        () = shutdown => {}
    }
    let _ = stop_tx.send(true);
    // Other nodes keep their Raft streams open, so a graceful drain never ends on its own.
    if tokio::time::timeout(Duration::from_secs(2), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    tokio::task::spawn_blocking(move || driver.stop()).await?;
    Ok(())
}
