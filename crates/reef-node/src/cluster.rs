//! A node of a cluster run by the root service: it bootstraps a new cluster or joins one,
//! serves its replicas (and, with the root role, the root service), and reports to the root
//! leader every heartbeat interval, carrying out the placement and repair operations the
//! answers bring.
//!
//! * **Bootstrap.** A node started without `--join` on an empty data directory founds a new
//!   cluster: it becomes node 1 with a random cluster id, writes the root group's first records
//!   (itself, the settings, the partition map) and creates the root partition (the system key
//!   range) and the first data partition (every other key), each with one replica on itself.
//!   The root leader then up-replicates both as nodes join.
//! * **Join.** A node started with `--join` on an empty data directory asks the root service,
//!   through any of the given addresses, for a node id, with a random token persisted first so
//!   a retried join gets the same id. Its data directory then records the identity.
//! * **Restart.** A data directory that has an identity is reopened as that node; `--join`
//!   only seeds the root addresses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use reef_client::RootClient;
use reef_raft::{HostMsg, RaftConfig, Router, StateRole, StoreIdent};
use reef_root::{NodeDesc, Operation, Root, RootConfig, Settings};
use reef_rpc::{pb, MetaService, NodeServices, PeerAddrs};
use reef_storage::{Cf, Engine, WriteBatch};
use reef_txn::{Command, CommandResponse, MvccStore};

use crate::store::{open_engine, serve_node, start_driver};

/// The `Cf::Meta` key of the token a joining node registers with.
const JOIN_TOKEN_KEY: &[u8] = b"cluster/join-token";
/// The `Cf::Meta` key marking a completed bootstrap.
const BOOTSTRAPPED_KEY: &[u8] = b"cluster/bootstrapped";
/// The `Cf::Meta` key of the last member list this node learned: after a restart it must
/// reach its peers before any root leader can be elected to tell it where they are.
const MEMBERS_KEY: &[u8] = b"cluster/members";

/// Reads the persisted member list (`id=host:port` lines).
fn load_members(engine: &dyn Engine) -> Result<Vec<(u64, String)>> {
    let Some(raw) = engine.get(Cf::Meta, MEMBERS_KEY)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(raw).context("the member list is not UTF-8")?;
    text.lines()
        .map(|line| {
            let (id, addr) = line
                .split_once('=')
                .with_context(|| format!("bad member list line {line:?}"))?;
            Ok((
                id.parse().context("bad node id in the member list")?,
                addr.to_string(),
            ))
        })
        .collect()
}

/// Persists the member list (unsynced: a later synced write or a clean stop makes it durable,
/// and a lost update is relearned from the next heartbeat).
fn save_members(engine: &dyn Engine, members: &[(u64, String)]) -> Result<()> {
    let text: String = members
        .iter()
        .map(|(id, addr)| format!("{id}={addr}\n"))
        .collect();
    let mut batch = WriteBatch::new();
    batch.put(Cf::Meta, MEMBERS_KEY, text.as_bytes());
    engine.write(&batch, false)?;
    Ok(())
}

/// The settings of a cluster node.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Where RocksDB keeps the node's data.
    pub data_dir: PathBuf,
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The gRPC address other nodes use (default: the bound listen address).
    pub advertise: Option<String>,
    /// The PostgreSQL address to advertise (empty: none).
    pub pg_addr: String,
    /// Root service addresses to join through; empty to bootstrap a new cluster.
    pub join: Vec<String>,
    /// Whether this node may hold a replica of the root group.
    pub root: bool,
    /// Replication settings.
    pub raft: RaftConfig,
    /// How many replication threads drive the node's replicas (at least 1).
    pub raft_threads: usize,
    /// The settings a new cluster starts with (used only when bootstrapping).
    pub settings: Settings,
    /// The root service's settings.
    pub root_config: RootConfig,
    /// How often the node reports to the root leader.
    pub heartbeat_interval: Duration,
    /// How often the node collects MVCC garbage when the root leader asks it to.
    pub gc_interval: Duration,
    /// RocksDB's block cache size in bytes.
    pub block_cache_bytes: usize,
    /// Where to serve `/metrics` and `/healthz` (`None`: nowhere).
    pub metrics_addr: Option<SocketAddr>,
    /// Whether a metrics address that is taken falls back to any free port (for the default
    /// address) instead of failing.
    pub metrics_fallback: bool,
    /// Shared with the node's SQL layer: its oldest live transaction goes out with every
    /// heartbeat.
    pub gc: Arc<GcLink>,
}

/// What a cluster node's heartbeats carry for MVCC garbage collection.
#[derive(Default)]
pub struct GcLink {
    /// The transaction client of the node's SQL layer, once it runs: the start of its
    /// oldest live transaction holds the cluster's safe point back.
    pub txns: std::sync::OnceLock<reef_txn::TxnClient>,
    /// The cluster's safe point as last heard from the root leader (0: none yet); the node
    /// refuses reads and prewrites below it.
    pub safe_point: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the root leader asked this node to collect garbage.
    pub driver: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for GcLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcLink")
            .field("sql", &self.txns.get().is_some())
            .field("safe_point", &self.safe_point)
            .field("driver", &self.driver)
            .finish()
    }
}

impl ClusterConfig {
    /// Returns a configuration with default settings for `data_dir` and `listen`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> ClusterConfig {
        ClusterConfig {
            data_dir,
            listen,
            advertise: None,
            pg_addr: String::new(),
            join: Vec::new(),
            root: true,
            raft: RaftConfig::default(),
            raft_threads: 2,
            settings: Settings::default(),
            root_config: RootConfig::default(),
            heartbeat_interval: Duration::from_secs(1),
            gc_interval: Duration::from_secs(60),
            block_cache_bytes: reef_storage::EngineOptions::default().block_cache_bytes,
            metrics_addr: None,
            metrics_fallback: false,
            gc: Arc::default(),
        }
    }
}

/// Returns true if the engine holds any MVCC versions or locks (a bootstrap's first writes are
/// raw records, which it finishes on restart).
fn holds_data(engine: &dyn Engine) -> bool {
    [Cf::Lock, Cf::Write].iter().any(|cf| {
        let mut cursor = engine.cursor(*cf, None, None);
        cursor.seek_to_first();
        cursor.valid()
    })
}

/// A running node's own services, for the clients inside the same process to call directly.
pub struct LocalServices {
    /// The `Kv` service.
    pub kv: NodeServices,
    /// The `Meta` service, on a node with the root role.
    pub meta: Option<MetaService>,
    /// The address other nodes reach this one at.
    pub advertise: String,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
}

/// The size in bytes of the files under `dir` (0 for what cannot be read).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Returns a random non-zero number from the standard library's per-process random keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

fn meta_u64(engine: &dyn Engine, key: &[u8]) -> Result<Option<u64>> {
    Ok(match engine.get(Cf::Meta, key)? {
        Some(raw) => Some(u64::from_be_bytes(raw.as_slice().try_into().with_context(
            || format!("bad {} record", String::from_utf8_lossy(key)),
        )?)),
        None => None,
    })
}

fn put_meta_u64(engine: &dyn Engine, key: &[u8], value: u64) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(Cf::Meta, key, &value.to_be_bytes());
    engine.write(&batch, true)?;
    Ok(())
}

/// Runs a cluster node until `shutdown` resolves. `ready` gets the bound gRPC address, the
/// node's identity and the root service addresses known at start, once it serves.
pub async fn run_cluster_node(
    cfg: ClusterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr, StoreIdent, Vec<String>, LocalServices),
) -> Result<()> {
    let engine = open_engine(
        &cfg.data_dir,
        &reef_storage::EngineOptions {
            block_cache_bytes: cfg.block_cache_bytes,
            ..Default::default()
        },
    )?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    // Connections to other nodes leave from the address this node listens on.
    reef_rpc::dial::set_source(local.ip());
    let advertise = cfg.advertise.clone().unwrap_or_else(|| local.to_string());
    let mut desc = NodeDesc {
        id: 0,
        addr: advertise.clone(),
        pg_addr: cfg.pg_addr.clone(),
        root: cfg.root,
        token: 0,
        state: Default::default(),
    };

    let stored = StoreIdent::load(&*engine)?;
    if stored.is_none() && holds_data(&*engine) {
        bail!(
            "{} holds data but no cluster node: it was written by an older reef that ran \
             without a cluster; start with an empty data directory",
            cfg.data_dir.display()
        );
    }
    let bootstrapped = meta_u64(&*engine, BOOTSTRAPPED_KEY)?.is_some();
    if cfg.join.is_empty() && stored.is_none() && meta_u64(&*engine, JOIN_TOKEN_KEY)?.is_some() {
        bail!(
            "{} holds a node that started joining a cluster; restart it with --join",
            cfg.data_dir.display()
        );
    }
    // A bootstrap that crashed half-way is finished on restart.
    let bootstrap =
        cfg.join.is_empty() && !bootstrapped && stored.is_none_or(|ident| ident.node_id == 1);
    let ident = match stored {
        Some(ident) => ident,
        None if bootstrap => StoreIdent {
            cluster_id: random_u64(),
            node_id: 1,
        },
        None => {
            let token = match meta_u64(&*engine, JOIN_TOKEN_KEY)? {
                Some(token) => token,
                None => {
                    let token = random_u64();
                    put_meta_u64(&*engine, JOIN_TOKEN_KEY, token)?;
                    token
                }
            };
            let joiner = RootClient::new(0, cfg.join.clone(), Duration::from_secs(60));
            let (cluster_id, node_id) = joiner
                .join(reef_rpc::node_to_pb(&NodeDesc {
                    token,
                    ..desc.clone()
                }))
                .await
                .context("joining the cluster")?;
            tracing::info!(cluster_id, node_id, "joined the cluster");
            StoreIdent {
                cluster_id,
                node_id,
            }
        }
    };
    desc.id = ident.node_id;
    if !cfg.root && bootstrap {
        bail!("the node founding a cluster must hold the root role");
    }

    let addrs: PeerAddrs = Default::default();
    {
        let mut book = addrs.write();
        for (id, addr) in load_members(&*engine)? {
            book.insert(id, format!("http://{addr}"));
        }
        book.insert(ident.node_id, format!("http://{advertise}"));
    }
    let founding = if bootstrap {
        // The root group's first records, then its partitions. Both steps are idempotent, so
        // a bootstrap interrupted by a crash completes on restart.
        let mut first = desc.clone();
        first.token = random_u64();
        let batch = reef_root::bootstrap_batch(&first, &cfg.settings);
        match MvccStore::new(engine.clone()).apply(&Command::Raw(batch))? {
            CommandResponse::Done | CommandResponse::RawMismatch { .. } => {}
            other => bail!("unexpected answer to the bootstrap write: {other:?}"),
        }
        vec![
            reef_root::root_partition(ident.node_id),
            reef_root::first_data_partition(ident.node_id),
        ]
    } else {
        Vec::new()
    };
    let driver = start_driver(
        engine.clone(),
        ident,
        &cfg.raft,
        cfg.raft_threads,
        addrs.clone(),
        &founding,
    )?;
    if bootstrap {
        put_meta_u64(&*engine, BOOTSTRAPPED_KEY, ident.cluster_id)?;
        tracing::info!(cluster_id = ident.cluster_id, "bootstrapped a new cluster");
    }
    let router = driver.router();
    let services = NodeServices::new(
        ident.cluster_id,
        ident.node_id,
        router.clone(),
        addrs.clone(),
    )
    .with_gc_safe_point(cfg.gc.safe_point.clone())
    .with_scan_filter(Arc::new(reef_sql::pushdown::PushdownFilter));
    let metrics = match cfg.metrics_addr {
        Some(addr) => Some(bind_metrics(addr, cfg.metrics_fallback).await?),
        None => None,
    };
    let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_task = metrics.map(|listener| {
        tokio::spawn(crate::metrics::serve(
            listener,
            crate::metrics::Sources {
                router: router.clone(),
                engine: engine.clone(),
                node_id: ident.node_id,
            },
        ))
    });
    let mut local_services = LocalServices {
        kv: services.clone(),
        meta: None,
        advertise: advertise.clone(),
        metrics_addr,
    };
    let meta = cfg.root.then(|| {
        let root = Arc::new(Root::new(
            ident.node_id,
            router.clone(),
            cfg.root_config.clone(),
        ));
        MetaService::new(ident.cluster_id, root, addrs.clone())
    });
    local_services.meta = meta.clone();

    // Root addresses to start from: the given ones, this node, and every member known from
    // before a restart (non-root members answer "not the leader" and are skipped).
    let mut seeds = cfg.join.clone();
    if cfg.root {
        seeds.push(advertise.clone());
    }
    for (id, addr) in load_members(&*engine)? {
        if id != ident.node_id && !seeds.contains(&addr) {
            seeds.push(addr);
        }
    }
    let roots = Arc::new(RootClient::new(
        ident.cluster_id,
        seeds.clone(),
        cfg.heartbeat_interval.max(Duration::from_secs(2)),
    ));
    let heartbeats = tokio::spawn(heartbeat_loop(
        roots.clone(),
        desc,
        router,
        addrs,
        engine,
        cfg.heartbeat_interval,
        cfg.gc.clone(),
    ));
    let read_ts = tokio::spawn(read_ts_loop(roots.clone(), driver.router()));
    let gc = tokio::spawn(gc_loop(roots, cfg.gc.clone(), cfg.gc_interval));
    let result = serve_node(listener, services, meta, driver, shutdown, || {
        ready(local, ident, seeds, local_services)
    })
    .await;
    heartbeats.abort();
    read_ts.abort();
    gc.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    result
}

/// Binds the metrics listener; a taken default address falls back to any free port.
async fn bind_metrics(addr: SocketAddr, fallback: bool) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(err) if fallback && err.kind() == std::io::ErrorKind::AddrInUse => {
            let any = SocketAddr::new(addr.ip(), 0);
            let listener = tokio::net::TcpListener::bind(any)
                .await
                .with_context(|| format!("cannot listen on {any} for metrics"))?;
            tracing::warn!(
                taken = %addr,
                serving = %listener.local_addr()?,
                "the default metrics address is taken; serving metrics elsewhere"
            );
            Ok(listener)
        }
        Err(err) => Err(err).with_context(|| format!("cannot listen on {addr} for metrics")),
    }
}

/// How often new partition leaders learn a timestamp above every read their predecessors
/// served: until then they commit nothing in one phase.
const READ_TS_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// Marks this node's new leaders and hands them a timestamp from the oracle fetched after the
/// mark (see `reef_raft::Host::mark_read_ts`), every [`READ_TS_SYNC_INTERVAL`].
async fn read_ts_loop(roots: Arc<RootClient>, router: Router) {
    let mut ticker = tokio::time::interval(READ_TS_SYNC_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mark = 0u64;
    loop {
        ticker.tick().await;
        mark += 1;
        let marking = router.clone();
        match tokio::task::spawn_blocking(move || marking.mark_read_ts(mark)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "cannot mark leaders for a read timestamp");
                continue;
            }
            Err(err) => {
                tracing::error!(%err, "the read timestamp task failed");
                return;
            }
        }
        match roots.tso(1).await {
            Ok(ts) => {
                if let Err(err) = router.sync_read_ts(mark, ts) {
                    tracing::debug!(%err, "cannot hand leaders a read timestamp");
                }
            }
            Err(err) => tracing::debug!(%err, "no timestamp for new leaders"),
        }
    }
}

/// Collects MVCC garbage over the whole cluster every `interval` while the root leader names
/// this node the collector, at the safe point it last announced: settles leftover locks
/// below it, destroys dropped tables' ranges, and removes old versions, partition by
/// partition on their leaders.
async fn gc_loop(roots: Arc<RootClient>, link: Arc<GcLink>, interval: Duration) {
    use std::sync::atomic::Ordering;
    let runtime = tokio::runtime::Handle::current();
    let client = Arc::new(reef_client::Client::with_root(
        roots.clone(),
        Duration::from_secs(30),
    ));
    let store = Arc::new(reef_client::ClusterStore::new(client, runtime.clone()));
    let tso = Arc::new(reef_client::RemoteTso::new(roots, &runtime));
    let txns = reef_txn::TxnClient::new(store, tso);
    let mut collected = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let safe_point = link.safe_point.load(Ordering::SeqCst);
        if !link.driver.load(Ordering::SeqCst) || safe_point <= collected {
            continue;
        }
        let gc_txns = txns.clone();
        match tokio::task::spawn_blocking(move || gc_txns.run_gc(safe_point)).await {
            Ok(Ok(p)) => {
                collected = safe_point;
                tracing::info!(
                    safe_point,
                    locks_resolved = p.locks_resolved,
                    ranges_destroyed = p.ranges_destroyed,
                    versions_deleted = p.versions_deleted,
                    keys_scanned = p.keys_scanned,
                    "collected garbage"
                );
            }
            Ok(Err(err)) => tracing::warn!(safe_point, %err, "garbage collection failed"),
            Err(err) => tracing::error!(%err, "the garbage collection task failed"),
        }
    }
}

/// Reports to the root leader every `interval`, learns the member list, and carries out the
/// operations for the partitions this node leads.
async fn heartbeat_loop(
    roots: Arc<RootClient>,
    desc: NodeDesc,
    router: Router,
    addrs: PeerAddrs,
    engine: Arc<dyn Engine>,
    interval: Duration,
    gc: Arc<GcLink>,
) {
    use std::sync::atomic::Ordering;
    let node = reef_rpc::node_to_pb(&desc);
    let started_ms = reef_txn::now_ms();
    let mut members: Vec<(u64, String)> = Vec::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (status, disk_bytes) = {
            let (router, path) = (router.clone(), engine.path().to_path_buf());
            let read = move || router.status().map(|status| (status, dir_size(&path)));
            match tokio::task::spawn_blocking(read).await {
                Ok(Ok(read)) => read,
                Ok(Err(err)) => {
                    tracing::warn!(%err, "cannot read replica status");
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "the replica status task failed; heartbeats stop");
                    return;
                }
            }
        };
        let replicas = status
            .iter()
            .filter_map(|s| {
                Some(pb::ReplicaReport {
                    partition: Some(reef_rpc::partition_to_pb(s.partition.as_ref()?)),
                    leader: s.role == StateRole::Leader,
                    term: s.term,
                    commit: s.commit,
                    applied: s.applied,
                    bytes: s.bytes,
                })
            })
            .collect();
        let report = pb::HeartbeatRequest {
            node: Some(node.clone()),
            replicas,
            min_active_ts: gc
                .txns
                .get()
                .and_then(|t| t.min_active_start_ts())
                .unwrap_or(0),
            started_ms,
            disk_bytes,
            ..Default::default()
        };
        let reply = match roots.heartbeat(report).await {
            Ok(reply) => reply,
            Err(err @ reef_client::ClientError::Refused(_)) => {
                tracing::warn!(%err, "the root service refused the heartbeat");
                continue;
            }
            Err(err) => {
                tracing::debug!(%err, "heartbeat failed");
                continue;
            }
        };
        gc.safe_point
            .fetch_max(reply.gc_safe_point, Ordering::SeqCst);
        gc.driver.store(reply.gc_driver, Ordering::SeqCst);
        let learned: Vec<(u64, String)> =
            reply.nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
        if learned != members {
            {
                let mut book = addrs.write();
                for (id, addr) in &learned {
                    book.insert(*id, format!("http://{addr}"));
                }
            }
            if let Err(err) = save_members(&*engine, &learned) {
                tracing::warn!(%err, "cannot persist the member list");
            }
            members = learned;
        }
        roots.learn(
            reply
                .nodes
                .iter()
                .filter(|n| n.root)
                .map(|n| n.addr.clone()),
        );
        for op in reply
            .operations
            .iter()
            .filter_map(reef_rpc::operation_from_pb)
        {
            execute(&router, op);
        }
    }
}

/// Hands an operation to the partition's replication thread; the outcome is only logged, as
/// the next heartbeat decides again from what actually happened.
fn execute(router: &Router, op: Operation) {
    tracing::info!(?op, "carrying out a root operation");
    match op {
        Operation::Change {
            partition_id,
            epoch,
            change,
        } => router.send_or_fail(HostMsg::ChangeReplica {
            partition_id,
            epoch,
            change,
            cb: Box::new(move |result| {
                if let Err(err) = result {
                    tracing::info!(partition_id, ?change, %err, "membership change failed");
                }
            }),
        }),
        Operation::TransferLeader {
            partition_id,
            to_replica_id,
        } => {
            let (reply, _) = crossbeam_channel::bounded(1);
            router.send_or_fail(HostMsg::TransferLeader {
                partition_id,
                to_replica_id,
                reply,
            });
        }
    }
}
