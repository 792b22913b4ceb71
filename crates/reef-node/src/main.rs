//! The `reef` binary: starts a node, and later runs operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "reef",
    version,
    about = "reefdb: a distributed SQL database that speaks PostgreSQL"
)]
struct Cli {
    /// Log lines as text, or as JSON objects (one per line) for log collectors; also
    /// REEF_LOG_FORMAT.
    #[arg(
        long,
        value_enum,
        global = true,
        env = "REEF_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Starts one node holding every role: storage replicas, the root service and SQL. The
    /// first node (without --join) founds a cluster and works alone, one replica of
    /// everything; nodes started with --join add themselves, and the cluster grows every
    /// partition to three replicas as soon as it has three nodes.
    Start {
        /// Data directory (default ./reef-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL protocol listen address (default 127.0.0.1:5433).
        #[arg(long)]
        pg_addr: Option<SocketAddr>,
        /// Require a password of every PostgreSQL client, even from loopback (otherwise a
        /// user without a password, such as the initial `reef`, may connect from loopback).
        #[arg(long)]
        require_password: bool,
        /// PEM certificate chain for TLS on the PostgreSQL port (needs --tls-key).
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// The gRPC address other nodes reach this one at.
        #[arg(long, default_value = "127.0.0.1:20160")]
        grpc_addr: SocketAddr,
        /// Addresses (HOST:PORT, comma-separated) of cluster nodes to join through.
        #[arg(long, value_delimiter = ',')]
        join: Vec<String>,
        /// Where to serve Prometheus metrics (`/metrics`) and `/healthz` over HTTP. Without
        /// it, 127.0.0.1:20180, or any free port when that is taken.
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Milliseconds between heartbeats to the root leader (in a cluster).
        #[arg(long, default_value_t = 1000)]
        heartbeat_ms: u64,
        /// A TOML configuration file; flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log filter, e.g. info or reef_txn=debug (also REEF_LOG).
        #[arg(long)]
        log: Option<String>,
    },
    /// Starts a storage node that replicates partitions with its peers over gRPC. Without
    /// --peer, the node belongs to a cluster run by the root service: the first node (no
    /// --join) founds it, the others join it. With --peer, membership is fixed by the list.
    Store {
        /// Data directory (default ./reef-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The gRPC listen address (default 127.0.0.1:20160).
        #[arg(long, default_value = "127.0.0.1:20160")]
        listen: SocketAddr,
        /// The gRPC address other nodes use to reach this one (default: the listen address).
        #[arg(long)]
        advertise: Option<String>,
        /// Root service addresses (HOST:PORT, comma-separated) to join an existing cluster
        /// through; without it, a node with an empty data directory founds a new cluster.
        #[arg(long, value_delimiter = ',')]
        join: Vec<String>,
        /// Never hold a replica of the root group.
        #[arg(long)]
        no_root: bool,
        /// Where to serve Prometheus metrics (`/metrics`) and `/healthz` over HTTP (in a
        /// cluster run by the root service; none by default).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Milliseconds between heartbeats to the root leader.
        #[arg(long, default_value_t = 1000)]
        heartbeat_ms: u64,
        /// For a new cluster: replicas per data partition.
        #[arg(long, default_value_t = 3)]
        replicas: u64,
        /// For a new cluster: milliseconds of silence after which a node is suspect.
        #[arg(long, default_value_t = 5000)]
        suspect_after_ms: u64,
        /// For a new cluster: milliseconds of silence after which a node is dead and its
        /// replicas are re-created elsewhere.
        #[arg(long, default_value_t = 60000)]
        dead_after_ms: u64,
        /// For a new cluster: milliseconds old versions stay readable after being overwritten
        /// (the MVCC garbage collection life time).
        #[arg(long, default_value_t = reef_root::DEFAULT_GC_LIFE_MS)]
        gc_life_ms: u64,
        /// Milliseconds between garbage collection rounds, when the root leader names this
        /// node the collector.
        #[arg(long, default_value_t = 60_000)]
        gc_interval_ms: u64,
        /// Fixed membership: this node's id, at least 1.
        #[arg(long, requires = "peers")]
        node_id: Option<u64>,
        /// Fixed membership: the cluster id shared by every node (default 1).
        #[arg(long, default_value_t = 1)]
        cluster_id: u64,
        /// Fixed membership: a node as ID=HOST:PORT; repeat for each, this node included.
        #[arg(long = "peer", requires = "node_id", conflicts_with = "join")]
        peers: Vec<String>,
        /// Fixed membership: the ids of the nodes founding the cluster with a replica of
        /// partition 1 each, comma-separated (default: every peer); other nodes start empty.
        #[arg(long, value_delimiter = ',')]
        founders: Vec<u64>,
        /// Milliseconds between Raft ticks (elections take 10 to 20 ticks).
        #[arg(long, default_value_t = 100)]
        tick_ms: u64,
        /// Split a partition past this many bytes of data.
        #[arg(long, default_value_t = 96 << 20)]
        split_size: u64,
        /// Compact a partition's Raft log past this many entries.
        #[arg(long, default_value_t = 10_000)]
        log_gc_threshold: u64,
        /// Replication threads driving the node's partitions (each partition belongs to one).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
        raft_threads: u64,
        /// Log filter (also REEF_LOG).
        #[arg(long)]
        log: Option<String>,
    },
    /// Runs a local cluster of N `reef start` processes on loopback ports, each with its own
    /// data directory under one folder; waits until it is healthy, creates a small sample
    /// schema, prints how to connect, and stops every node on Ctrl-C. A second run reuses the
    /// data.
    Demo {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// The folder for the nodes' data directories and logs.
        #[arg(long, default_value = "reef-demo")]
        data_dir: PathBuf,
        /// The first node's PostgreSQL port (node i listens on this plus i - 1).
        #[arg(long, default_value_t = 5433)]
        pg_port: u16,
        /// The first node's gRPC port.
        #[arg(long, default_value_t = 20160)]
        grpc_port: u16,
        /// The first node's metrics port.
        #[arg(long, default_value_t = 20180)]
        metrics_port: u16,
    },
    /// Operator commands against a running cluster.
    Cluster {
        /// The gRPC address (HOST:PORT) of any node; several, comma-separated, are tried in
        /// turn.
        #[arg(
            long,
            alias = "root",
            value_delimiter = ',',
            default_value = "127.0.0.1:20160",
            global = true
        )]
        host: Vec<String>,
        /// Output: human-readable tables, or JSON for scripts.
        #[arg(long, value_enum, default_value = "table", global = true)]
        format: OutputFormat,
        /// The cluster id (0: whichever cluster answers).
        #[arg(long, default_value_t = 0, global = true)]
        cluster_id: u64,
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Shows every node (address, roles, state, liveness, uptime, replica and leader counts,
    /// disk use) and the cluster's health (under-replicated and unavailable partitions).
    Status,
    /// Shows the partitions: key ranges (as table/index and values), size, replicas, leader,
    /// epoch.
    Partitions {
        /// Only the partitions holding this table's rows and index entries.
        #[arg(long)]
        table: Option<String>,
    },
    /// Splits a partition in two, in the middle of its data or at a key.
    Split {
        /// The partition id.
        #[arg(long)]
        partition: u64,
        /// The raw key (hex) to split at; the middle of its data by default.
        #[arg(long)]
        at: Option<String>,
    },
    /// Moves a partition's leadership to another node holding a replica.
    TransferLeader {
        /// The partition id.
        #[arg(long)]
        partition: u64,
        /// The node to lead it.
        #[arg(long)]
        to: u64,
    },
    /// Moves a partition's replica from one node to another.
    MoveReplica {
        /// The partition id.
        #[arg(long)]
        partition: u64,
        /// The node that gives its replica up.
        #[arg(long)]
        from: u64,
        /// The node that gets one.
        #[arg(long)]
        to: u64,
    },
    /// Moves every replica off a node so that it can leave the cluster, showing the progress.
    Decommission {
        /// The node id.
        node: u64,
        /// Return at once instead of waiting until the node holds nothing.
        #[arg(long)]
        no_wait: bool,
        /// Give up (exit code 5, naming the stuck partitions) after this many seconds without
        /// progress.
        #[arg(long, default_value_t = 60)]
        stall_secs: u64,
    },
    /// Makes a decommissioning or draining node a full member again.
    Recommission {
        /// The node id.
        node: u64,
    },
    /// Names the nodes that should lead every partition they hold a replica of (the nodes
    /// applications connect to, so their reads, timestamps and commits start where the
    /// leaders are), and waits until they do. --clear spreads leadership evenly again.
    PreferLeaders {
        /// The node ids, comma-separated.
        #[arg(
            value_delimiter = ',',
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        nodes: Vec<u64>,
        /// Drop the preference.
        #[arg(long)]
        clear: bool,
        /// Return at once instead of waiting until the preferred nodes lead.
        #[arg(long)]
        no_wait: bool,
        /// Give up after this many seconds without progress.
        #[arg(long, default_value_t = 60)]
        stall_secs: u64,
    },
    /// Moves every leadership off a node before a planned restart.
    Drain {
        /// The node id.
        node: u64,
        /// Return at once instead of waiting until the node leads nothing.
        #[arg(long)]
        no_wait: bool,
        /// Give up after this many seconds without progress.
        #[arg(long, default_value_t = 60)]
        stall_secs: u64,
    },
}

/// The log format, set once from the command line before logging starts.
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

fn init_logging(log: Option<String>) {
    let filter = log
        .or_else(|| std::env::var("REEF_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match LOG_FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

/// The process's allocator, for Rust and (through the unprefixed `malloc` symbols) RocksDB
/// alike. glibc's malloc keeps what the session, Raft and RocksDB threads free in per-thread
/// arenas: during a 10-million-row load it held 1.27 GB from the system for 427 MB in use
/// (`malloc_stats`). jemalloc returns freed pages.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let _ = LOG_FORMAT.set(cli.log_format);
    match cli.command {
        Command::Start {
            data_dir,
            pg_addr,
            require_password,
            tls_cert,
            tls_key,
            grpc_addr,
            join,
            metrics_addr,
            heartbeat_ms,
            config,
            log,
        } => {
            init_logging(log);
            let mut cfg = match &config {
                Some(p) => reef_node::Config::from_file(p)?,
                None => reef_node::Config::default(),
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if let Some(a) = pg_addr {
                cfg.pg_addr = a;
            }
            cfg.require_password |= require_password;
            if tls_cert.is_some() {
                cfg.tls_cert = tls_cert;
            }
            if tls_key.is_some() {
                cfg.tls_key = tls_key;
            }
            let mut cluster =
                reef_node::cluster::ClusterConfig::new(cfg.data_dir.join("db"), grpc_addr);
            cluster.join = join;
            cluster.pg_addr = cfg.pg_addr.to_string();
            cluster.heartbeat_interval = std::time::Duration::from_millis(heartbeat_ms.max(10));
            cluster.gc_interval = std::time::Duration::from_secs(cfg.gc_interval_secs.max(1));
            cluster.settings.gc_life_ms = cfg.gc_life_time_secs.saturating_mul(1000);
            cluster.block_cache_bytes = cfg.block_cache_bytes;
            cluster.metrics_fallback = metrics_addr.is_none();
            cluster.metrics_addr =
                Some(metrics_addr.unwrap_or_else(|| "127.0.0.1:20180".parse().expect("valid")));
            start_cluster(cfg, cluster)
        }
        Command::Store {
            data_dir,
            listen,
            advertise,
            join,
            no_root,
            metrics_addr,
            heartbeat_ms,
            replicas,
            suspect_after_ms,
            dead_after_ms,
            gc_life_ms,
            gc_interval_ms,
            node_id,
            cluster_id,
            peers,
            founders,
            tick_ms,
            split_size,
            log_gc_threshold,
            raft_threads,
            log,
        } => {
            init_logging(log);
            let raft = reef_raft::RaftConfig {
                tick_interval: std::time::Duration::from_millis(tick_ms.max(1)),
                split_size,
                log_gc_threshold,
                ..reef_raft::RaftConfig::default()
            };
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("reef-data"));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("reef-io")
                .build()?;
            if let Some(node_id) = node_id {
                let peers = peers
                    .iter()
                    .map(|p| reef_node::store::parse_peer(p))
                    .collect::<Result<Vec<_>>>()?;
                let cfg = reef_node::store::StoreConfig {
                    data_dir,
                    cluster_id,
                    node_id,
                    listen,
                    peers,
                    founders,
                    raft,
                    raft_threads: raft_threads as usize,
                };
                runtime.block_on(reef_node::store::run_store(
                    cfg,
                    shutdown_signal(),
                    |addr| {
                        println!("reef store ready: node {node_id} serving gRPC on {addr}");
                        use std::io::Write;
                        let _ = std::io::stdout().flush();
                    },
                ))?;
            } else {
                if replicas == 0 {
                    anyhow::bail!("--replicas must be at least 1");
                }
                if suspect_after_ms >= dead_after_ms {
                    anyhow::bail!("--suspect-after-ms must be less than --dead-after-ms");
                }
                let mut cfg = reef_node::cluster::ClusterConfig::new(data_dir, listen);
                cfg.advertise = advertise;
                cfg.join = join;
                cfg.root = !no_root;
                cfg.metrics_addr = metrics_addr;
                cfg.raft = raft;
                cfg.raft_threads = raft_threads as usize;
                cfg.heartbeat_interval = std::time::Duration::from_millis(heartbeat_ms.max(10));
                cfg.settings = reef_root::Settings {
                    replicas,
                    suspect_after_ms,
                    dead_after_ms,
                    gc_life_ms,
                    preferred_leaders: Vec::new(),
                };
                cfg.gc_interval = std::time::Duration::from_millis(gc_interval_ms.max(10));
                runtime.block_on(reef_node::cluster::run_cluster_node(
                    cfg,
                    shutdown_signal(),
                    |addr, ident, _, _| {
                        println!(
                            "reef store ready: node {} of cluster {} serving gRPC on {addr}",
                            ident.node_id, ident.cluster_id
                        );
                        use std::io::Write;
                        let _ = std::io::stdout().flush();
                    },
                ))?;
            }
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Command::Demo {
            nodes,
            data_dir,
            pg_port,
            grpc_port,
            metrics_port,
        } => {
            init_logging(Some("warn".into()));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(reef_node::demo::run(
                reef_node::demo::DemoConfig {
                    nodes,
                    data_dir,
                    pg_port,
                    grpc_port,
                    metrics_port,
                },
                shutdown_signal(),
            ))
        }
        Command::Cluster {
            host,
            format,
            cluster_id,
            command,
        } => cluster_command(host, format, cluster_id, command),
    }
}

/// Runs an operator's command; failures print one line and exit with the command's code.
fn cluster_command(
    hosts: Vec<String>,
    format: OutputFormat,
    cluster_id: u64,
    command: ClusterCommand,
) -> Result<()> {
    use reef_node::admin::{Admin, Command as Op, Format};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let format = match format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Json => Format::Json,
    };
    let op = match command {
        ClusterCommand::Status => Op::Status,
        ClusterCommand::Partitions { table } => Op::Partitions { table },
        ClusterCommand::Split { partition, at } => Op::Split { partition, at },
        ClusterCommand::TransferLeader { partition, to } => Op::TransferLeader { partition, to },
        ClusterCommand::MoveReplica {
            partition,
            from,
            to,
        } => Op::MoveReplica {
            partition,
            from,
            to,
        },
        ClusterCommand::Decommission {
            node,
            no_wait,
            stall_secs,
        } => Op::Decommission {
            node,
            no_wait,
            stall: std::time::Duration::from_secs(stall_secs.max(1)),
        },
        ClusterCommand::Recommission { node } => Op::Recommission { node },
        ClusterCommand::Drain {
            node,
            no_wait,
            stall_secs,
        } => Op::Drain {
            node,
            no_wait,
            stall: std::time::Duration::from_secs(stall_secs.max(1)),
        },
        ClusterCommand::PreferLeaders {
            nodes,
            clear: _,
            no_wait,
            stall_secs,
        } => Op::PreferLeaders {
            nodes,
            no_wait,
            stall: std::time::Duration::from_secs(stall_secs.max(1)),
        },
    };
    let admin = Admin::new(hosts, cluster_id);
    match runtime.block_on(admin.run(op, format)) {
        Ok(text) => {
            println!("{}", text.trim_end());
            Ok(())
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(err.code);
        }
    }
}

fn start_cluster(cfg: reef_node::Config, cluster: reef_node::cluster::ClusterConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("reef-io")
        .thread_stack_size(reef_common::THREAD_STACK_BYTES)
        .build()?;
    runtime.block_on(reef_node::serve_cluster(
        cfg,
        cluster,
        shutdown_signal(),
        |pg_addr, grpc_addr, ident, metrics| {
            let metrics = metrics.map_or(String::new(), |m| format!(", metrics on http://{m}/metrics"));
            println!(
                "reefdb ready: postgresql://reef@{pg_addr}/reef (node {} of cluster {}, gRPC on {grpc_addr}{metrics})",
                ident.node_id, ident.cluster_id
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
        },
    ))?;
    // Everything that holds data has stopped and synced; a blocking task still finishing a
    // request (say, one that waits on a peer that is gone) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    tracing::info!("stopped cleanly");
    Ok(())
}
