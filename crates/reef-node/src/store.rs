//! A replicating storage node with fixed membership (`reef store --peer ...`), and the pieces
//! every storage node shares: opening the engine, starting the replication threads, serving
//! the gRPC services. The cluster mode run by the root service is in [`crate::cluster`].
//!
//! With fixed membership, a founding node bootstraps partition 1 (every key) with one voter on
//! each founding node on its first start, as every founder does with the same list; other nodes
//! start empty and get replicas through membership changes. Afterwards a node recovers its
//! replicas from disk.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use parking_lot::RwLock;
use reef_raft::{Driver, Host, Partition, RaftConfig, Registry, Shard, StoreIdent};
use reef_rpc::{GrpcTransport, MetaService, NodeServices, PeerAddrs};
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
    let engine = open_engine(&cfg.data_dir, &EngineOptions::default())?;
    let addrs: HashMap<u64, String> = cfg.peers.iter().cloned().collect();
    let addrs = Arc::new(RwLock::new(addrs));
    let ident = StoreIdent {
        cluster_id: cfg.cluster_id,
        node_id: cfg.node_id,
    };
    let founding = if founders.contains(&cfg.node_id) {
        vec![Partition::first(&founders)]
    } else {
        Vec::new()
    };
    let driver = start_driver(
        engine,
        ident,
        &cfg.raft,
        cfg.raft_threads,
        addrs.clone(),
        &founding,
    )?;
    let services = NodeServices::new(cfg.cluster_id, cfg.node_id, driver.router(), addrs)
        .with_scan_filter(Arc::new(reef_sql::pushdown::PushdownFilter));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    // Connections to other nodes leave from the address this node listens on.
    reef_rpc::dial::set_source(local.ip());
    serve_node(listener, services, None, driver, shutdown, || ready(local)).await
}

/// Opens (creating if needed) the node's RocksDB in `data_dir`.
pub(crate) fn open_engine(data_dir: &Path, opts: &EngineOptions) -> Result<Arc<dyn Engine>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    Ok(Arc::new(RocksEngine::open(data_dir, opts).with_context(
        || format!("opening {}", data_dir.display()),
    )?))
}

/// Opens the node's replication hosts over `engine`, bootstraps the `founding` partitions
/// the node does not hold yet, and starts the replication threads, whose Raft messages go
/// through a gRPC transport addressing nodes by `addrs`.
pub(crate) fn start_driver(
    engine: Arc<dyn Engine>,
    ident: StoreIdent,
    raft: &RaftConfig,
    threads: usize,
    addrs: PeerAddrs,
    founding: &[Partition],
) -> Result<Driver> {
    let router_cell = Arc::new(OnceLock::new());
    let transport = GrpcTransport::new(
        ident.cluster_id,
        ident.node_id,
        addrs,
        tokio::runtime::Handle::current(),
        router_cell.clone(),
    );
    let count = threads.max(1);
    let registry = Arc::new(Registry::new());
    let mut hosts = Vec::with_capacity(count);
    for index in 0..count {
        hosts.push(Host::open_shard(
            engine.clone(),
            ident,
            raft.clone(),
            Box::new(transport.clone()),
            Arc::new(reef_raft::SystemClock),
            Shard { index, count },
            registry.clone(),
        )?);
    }
    for partition in founding {
        if hosts[Shard::of(partition.id, count)].bootstrap(partition.clone())? {
            tracing::info!(%partition, "bootstrapped a partition");
        }
    }
    let driver = Driver::start(hosts, raft.tick_interval);
    let _ = router_cell.set(driver.router());
    Ok(driver)
}

/// Serves the node's gRPC services (and the root service's, if given) on `listener` until
/// `shutdown` resolves, then stops the replication threads. `ready` runs once clients can
/// connect.
pub(crate) async fn serve_node(
    listener: tokio::net::TcpListener,
    services: NodeServices,
    meta: Option<MetaService>,
    driver: Driver,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // The listener is bound, so clients can connect as soon as readiness is announced.
    let mut server = tokio::spawn(reef_rpc::serve(listener, services, meta, async move {
        let _ = stop_rx.changed().await;
    }));
    ready();
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
    tracing::info!("gRPC stopped; stopping the replication threads");
    tokio::task::spawn_blocking(move || driver.stop()).await?;
    tracing::info!("replication threads stopped");
    Ok(())
}
