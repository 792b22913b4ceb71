//! A reefdb node: assembles storage, replication, the root service,
//! transactions, the SQL layer and the PostgreSQL front end into one running
//! server.
//!
//! `reef-node` sits at the top of the dependency stack, just below the
//! `reef` binary's command line. It owns process concerns (configuration,
//! data directory, background jobs such as MVCC garbage collection, clean
//! shutdown) and wires the crates below together; none of them depend on
//! it. `reef start` ([`serve_cluster`]) runs a node of a cluster run by the
//! root service ([`cluster`]: bootstrap or join, heartbeats, root operations)
//! with SQL over the cluster's partitions; a node started alone founds a
//! cluster of one. [`store`] runs a storage node with fixed membership, for
//! the replication tests and benchmark.
//!
//! See `docs/architecture/reef-node.md`.

#![warn(missing_docs)]

pub mod admin;
pub mod cluster;
pub mod demo;
pub mod metrics;
pub mod store;
pub mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

/// Node configuration, from defaults, a TOML file and command-line flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where RocksDB keeps the node's data.
    pub data_dir: PathBuf,
    /// The PostgreSQL protocol listen address.
    pub pg_addr: SocketAddr,
    /// Per-query memory limit in bytes (SQLSTATE 53200 past it).
    pub query_memory_limit: usize,
    /// The largest protocol message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// RocksDB block cache size in bytes.
    pub block_cache_bytes: usize,
    /// How long old MVCC versions are kept for readers, in seconds.
    pub gc_life_time_secs: u64,
    /// How often garbage collection runs, in seconds.
    pub gc_interval_secs: u64,
    /// Whether every PostgreSQL client must give a password, even from loopback.
    pub require_password: bool,
    /// A PEM certificate chain for TLS on the PostgreSQL port (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// How many bytes of a transaction's writes stay in memory before they spill to
    /// `<data_dir>/tmp`.
    pub txn_spill_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("reef-data"),
            pg_addr: "127.0.0.1:5433".parse().unwrap(),
            query_memory_limit: 1 << 30,
            max_message_bytes: 64 << 20,
            block_cache_bytes: 256 << 20,
            gc_life_time_secs: 600,
            gc_interval_secs: 60,
            require_password: false,
            tls_cert: None,
            tls_key: None,
            txn_spill_bytes: reef_txn::TxnConfig::default().spill_bytes,
        }
    }
}

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Opens, empty, the scratch engine at `dir` that large transactions spill their writes to
/// (see [`reef_txn::SpillEngine`]): whatever an earlier run left there belonged to
/// transactions that ended with it.
fn open_spill(dir: &Path) -> Result<reef_txn::SpillEngine> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot empty {}", dir.display())),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let opts = reef_storage::EngineOptions {
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: 16 << 20,
        max_background_jobs: 2,
        // A transaction reads its spilled writes back with point reads of exact keys.
        bloom_bits_per_key: 10.0,
        memtable_budget_bytes: 0,
        compression: false,
        wal: false,
        ..Default::default()
    };
    let engine = reef_storage::RocksEngine::open(dir, &opts)
        .with_context(|| format!("cannot open {}", dir.display()))?;
    Ok(reef_txn::SpillEngine::new(Arc::new(engine)))
}

/// Runs a node of a cluster run by the root service with SQL on top: the storage and root
/// roles of [`cluster::run_cluster_node`], and the PostgreSQL front end over transactions that
/// reach the cluster's partitions through the routing client (partitions, leaders and node
/// addresses from the root service) with timestamps from the root service's oracle. Calls
/// `on_ready` with the PostgreSQL and gRPC addresses, the node's identity and its metrics
/// address (if it serves metrics) once everything serves.
///
pub async fn serve_cluster(
    config: Config,
    cluster: cluster::ClusterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr, SocketAddr, reef_raft::StoreIdent, Option<SocketAddr>),
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let gc = cluster.gc.clone();
    let mut storage = tokio::spawn(cluster::run_cluster_node(
        cluster,
        async move {
            let _ = stop_rx.await;
        },
        move |addr, ident, seeds, services| {
            let _ = ready_tx.send((addr, ident, seeds, services));
        },
    ));
    let (grpc_addr, ident, seeds, services) = tokio::select! {
        ready = ready_rx => ready.context("the storage node stopped before it was ready")?,
        result = &mut storage => {
            result??;
            anyhow::bail!("the storage node stopped before it was ready");
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let metrics_addr = services.metrics_addr;
    let mut roots = reef_client::RootClient::new(ident.cluster_id, seeds, Duration::from_secs(10));
    if let Some(meta) = services.meta {
        roots = roots.with_local(services.advertise, Arc::new(meta));
    }
    let roots = Arc::new(roots);
    // Requests for partitions this node leads call its services directly.
    let client = Arc::new(
        reef_client::Client::with_root(roots.clone(), Duration::from_secs(10))
            .with_local(ident.node_id, Arc::new(services.kv)),
    );
    let store = Arc::new(reef_client::ClusterStore::new(
        client.clone(),
        runtime.clone(),
    ));
    let tso = Arc::new(reef_client::RemoteTso::new(roots.clone(), &runtime));
    // Every commit request is a network round trip: secondaries commit in the background.
    // Large transactions spill their writes to a scratch engine instead of holding them in
    // memory.
    let txn_config = reef_txn::TxnConfig {
        async_secondaries: true,
        spill: Some(open_spill(&config.data_dir.join("tmp"))?),
        spill_bytes: config.txn_spill_bytes,
        ..Default::default()
    };
    let txns = reef_txn::TxnClient::with_config(store, tso, txn_config);
    // Its oldest live transaction holds the cluster's GC safe point back.
    let _ = gc.txns.set(txns.clone());
    let txns_for_shutdown = txns.clone();
    // Whether this node is the cluster's only member, as the root leader knows it now: a
    // node that joins later starts its transactions later (see reef_sql::fence).
    let alone = {
        let (roots, runtime) = (roots.clone(), runtime.clone());
        move || {
            reef_client::block_on(&runtime, roots.cluster())
                .map(|status| status.nodes.len() <= 1)
                .unwrap_or(false)
        }
    };
    let views = views::ClusterViews {
        node_id: ident.node_id,
        roots: roots.clone(),
        client: client.clone(),
        runtime: runtime.clone(),
        gc: gc.clone(),
    };
    let sql_config = reef_sql::SqlConfig {
        query_memory_limit: config.query_memory_limit,
        alone: Arc::new(alone),
        system: Arc::new(views),
    };
    // Loading the catalog waits for the cluster to elect leaders and report them. After a
    // restart of the whole cluster that takes a quorum of the other nodes, which may still be
    // starting: the node keeps trying, and says so, while the failure is one that passes.
    let mut waited = false;
    let db = loop {
        let (txns, sql_config) = (txns.clone(), sql_config.clone());
        let opened = tokio::select! {
            opened = tokio::task::spawn_blocking(move || reef_sql::Database::open(txns, sql_config)) => opened?,
            result = &mut storage => {
                result??;
                anyhow::bail!("the storage node stopped before it was ready");
            }
        };
        match opened {
            Ok(db) => break db,
            Err(e) if e.is_transient() => {
                if !waited {
                    tracing::warn!(
                        error = %e,
                        "waiting for a quorum of the cluster to load the catalog"
                    );
                    waited = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("cannot load the catalog from the cluster: {e}"),
        }
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(
            reef_pg::TlsConfig::from_pem_files(cert, key).map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (--tls-cert) and a key (--tls-key)"),
    };
    let listener = tokio::net::TcpListener::bind(config.pg_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.pg_addr))?;
    let pg_addr = listener.local_addr()?;
    on_ready(pg_addr, grpc_addr, ident, metrics_addr);
    let pg = reef_pg::PgConfig {
        max_message_bytes: config.max_message_bytes,
        require_password: config.require_password,
        tls,
        ..Default::default()
    };
    let served = tokio::select! {
        served = reef_pg::serve(db, listener, pg, shutdown) => {
            served.map_err(|e| anyhow::anyhow!("{e}"))
        }
        result = &mut storage => {
            result??;
            anyhow::bail!("the storage node stopped unexpectedly");
        }
    };
    // Commits of secondary keys still queued go out while the storage still serves them.
    let left = tokio::task::spawn_blocking(move || {
        txns_for_shutdown.drain_secondaries(std::time::Duration::from_secs(10))
    })
    .await
    .unwrap_or(0);
    if left > 0 {
        tracing::warn!(
            left,
            "secondary commits dropped at shutdown; readers will settle their locks"
        );
    }
    tracing::info!("PostgreSQL sessions ended; stopping the storage node");
    let _ = stop_tx.send(());
    storage.await??;
    served
}
