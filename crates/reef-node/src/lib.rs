//! A reefdb node: assembles storage, transactions, the SQL layer and the
//! PostgreSQL front end into one running server.
//!
//! `reef-node` sits at the top of the dependency stack, just below the
//! `reef` binary's command line. It owns process concerns (configuration,
//! data directory, background jobs such as MVCC garbage collection, clean
//! shutdown) and wires the crates below together; none of them depend on
//! it. `reef start` ([`Node`]) runs SQL over the local MVCC store;
//! [`store`] runs a storage node with fixed membership, and [`cluster`] a
//! storage node of a cluster run by the root service (bootstrap, join,
//! heartbeats, root operations). SQL over the cluster plugs in here next.
//!
//! See `docs/architecture/reef-node.md`.

#![warn(missing_docs)]

pub mod cluster;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A running node.
pub struct Node {
    db: reef_sql::Database,
    client: reef_txn::TxnClient,
    config: Config,
    stop_gc: Arc<AtomicBool>,
    gc_thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Opens the data directory and the SQL layer (no network yet).
    pub fn open(config: Config) -> Result<Node> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let opts = reef_storage::EngineOptions {
            block_cache_bytes: config.block_cache_bytes,
            ..Default::default()
        };
        let engine = reef_storage::RocksEngine::open(&config.data_dir.join("db"), &opts)
            .with_context(|| format!("cannot open storage in {}", config.data_dir.display()))?;
        let engine: Arc<dyn reef_storage::Engine> = Arc::new(engine);
        let client =
            reef_txn::TxnClient::local(engine).context("cannot start the transaction layer")?;
        let sql_config = reef_sql::SqlConfig {
            query_memory_limit: config.query_memory_limit,
        };
        let db = reef_sql::Database::open(client.clone(), sql_config)
            .map_err(|e| anyhow::anyhow!("cannot load the catalog: {e}"))?;
        let stop_gc = Arc::new(AtomicBool::new(false));
        let gc_thread = Some(spawn_gc(client.clone(), &config, stop_gc.clone()));
        Ok(Node {
            db,
            client,
            config,
            stop_gc,
            gc_thread,
        })
    }

    /// The SQL database.
    pub fn database(&self) -> &reef_sql::Database {
        &self.db
    }

    /// The transaction client.
    pub fn client(&self) -> &reef_txn::TxnClient {
        &self.client
    }

    /// Serves the PostgreSQL protocol until `shutdown` resolves; calls
    /// `on_ready` with the bound address once connections are accepted.
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        on_ready: impl FnOnce(SocketAddr),
    ) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.config.pg_addr)
            .await
            .with_context(|| format!("cannot listen on {}", self.config.pg_addr))?;
        let addr = listener.local_addr()?;
        on_ready(addr);
        let pg = reef_pg::PgConfig {
            max_message_bytes: self.config.max_message_bytes,
            ..Default::default()
        };
        reef_pg::serve(self.db.clone(), listener, pg, shutdown)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Runs a node of a cluster run by the root service with SQL on top: the storage and root
/// roles of [`cluster::run_cluster_node`], and the PostgreSQL front end over transactions that
/// reach the cluster's partitions through the routing client (partitions, leaders and node
/// addresses from the root service) with timestamps from the root service's oracle. Calls
/// `on_ready` with the PostgreSQL address and the node's identity once both serve.
///
/// MVCC garbage collection does not run over the cluster yet.
pub async fn serve_cluster(
    config: Config,
    cluster: cluster::ClusterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr, SocketAddr, reef_raft::StoreIdent),
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let gc = cluster.gc.clone();
    let mut storage = tokio::spawn(cluster::run_cluster_node(
        cluster,
        async move {
            let _ = stop_rx.await;
        },
        move |addr, ident, seeds| {
            let _ = ready_tx.send((addr, ident, seeds));
        },
    ));
    let (grpc_addr, ident, seeds) = tokio::select! {
        ready = ready_rx => ready.context("the storage node stopped before it was ready")?,
        result = &mut storage => {
            result??;
            anyhow::bail!("the storage node stopped before it was ready");
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let roots = Arc::new(reef_client::RootClient::new(
        ident.cluster_id,
        seeds,
        Duration::from_secs(10),
    ));
    let client = Arc::new(reef_client::Client::with_root(
        roots.clone(),
        Duration::from_secs(10),
    ));
    let store = Arc::new(reef_client::ClusterStore::new(client, runtime.clone()));
    let tso = Arc::new(reef_client::RemoteTso::new(roots, &runtime));
    // Every commit request is a network round trip: secondaries commit in the background.
    let txn_config = reef_txn::TxnConfig {
        async_secondaries: true,
        ..Default::default()
    };
    let txns = reef_txn::TxnClient::with_config(store, tso, txn_config);
    // Its oldest live transaction holds the cluster's GC safe point back.
    let _ = gc.txns.set(txns.clone());
    let sql_config = reef_sql::SqlConfig {
        query_memory_limit: config.query_memory_limit,
    };
    // Loading the catalog waits for the cluster to elect leaders and report them.
    let db = tokio::task::spawn_blocking(move || reef_sql::Database::open(txns, sql_config))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot load the catalog from the cluster: {e}"))?;
    let listener = tokio::net::TcpListener::bind(config.pg_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.pg_addr))?;
    let pg_addr = listener.local_addr()?;
    on_ready(pg_addr, grpc_addr, ident);
    let pg = reef_pg::PgConfig {
        max_message_bytes: config.max_message_bytes,
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
    let _ = stop_tx.send(());
    storage.await??;
    served
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_gc.store(true, Ordering::SeqCst);
        if let Some(t) = self.gc_thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs MVCC garbage collection periodically: versions older than the GC
/// life time, and older than every live transaction, are removed.
fn spawn_gc(
    client: reef_txn::TxnClient,
    config: &Config,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let life = Duration::from_secs(config.gc_life_time_secs);
    let interval = Duration::from_secs(config.gc_interval_secs.max(1));
    std::thread::Builder::new()
        .name("reef-gc".into())
        .spawn(move || {
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                waited += Duration::from_millis(200);
                if waited < interval {
                    continue;
                }
                waited = Duration::ZERO;
                let now = match client.tso().get_ts() {
                    Ok(ts) => ts,
                    Err(e) => {
                        tracing::warn!("gc: cannot read the timestamp oracle: {e}");
                        continue;
                    }
                };
                let physical = reef_common::ts_physical_ms(now);
                let safe_ms = physical.saturating_sub(life.as_millis() as u64);
                let safe_point = reef_common::compose_ts(safe_ms, 0);
                match client.run_gc(safe_point) {
                    Ok(p) if p.ranges_destroyed > 0 || p.versions_deleted > 0 => tracing::info!(
                        "gc at safe point {safe_point}: destroyed {} dropped ranges, removed {} old versions of {} keys",
                        p.ranges_destroyed,
                        p.versions_deleted,
                        p.keys_scanned
                    ),
                    Ok(p) => tracing::debug!("gc at safe point {safe_point}: {p:?}"),
                    Err(e) => tracing::warn!("gc failed: {e}"),
                }
            }
        })
        .expect("spawning the GC thread")
}
