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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts one node holding every role.
    Start {
        /// Data directory (default ./reef-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL protocol listen address (default 127.0.0.1:5433).
        #[arg(long)]
        pg_addr: Option<SocketAddr>,
        /// A TOML configuration file; flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log filter, e.g. info or reef_txn=debug (also REEF_LOG).
        #[arg(long)]
        log: Option<String>,
    },
    /// Starts a storage node that replicates partitions with its peers over gRPC.
    Store {
        /// Data directory (default ./reef-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// This node's id, at least 1.
        #[arg(long)]
        node_id: u64,
        /// The cluster id shared by every node (default 1).
        #[arg(long, default_value_t = 1)]
        cluster_id: u64,
        /// The gRPC listen address (default 127.0.0.1:20160).
        #[arg(long, default_value = "127.0.0.1:20160")]
        listen: SocketAddr,
        /// A node as ID=HOST:PORT; repeat for each, this node included.
        #[arg(long = "peer", required = true)]
        peers: Vec<String>,
        /// The ids of the nodes founding the cluster with a replica of partition 1 each,
        /// comma-separated (default: every peer); other nodes start empty.
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
}

fn init_logging(log: Option<String>) {
    let filter = log
        .or_else(|| std::env::var("REEF_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Start {
            data_dir,
            pg_addr,
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
            start(cfg)
        }
        Command::Store {
            data_dir,
            node_id,
            cluster_id,
            listen,
            peers,
            founders,
            tick_ms,
            split_size,
            log_gc_threshold,
            raft_threads,
            log,
        } => {
            init_logging(log);
            let peers = peers
                .iter()
                .map(|p| reef_node::store::parse_peer(p))
                .collect::<Result<Vec<_>>>()?;
            let raft = reef_raft::RaftConfig {
                tick_interval: std::time::Duration::from_millis(tick_ms.max(1)),
                split_size,
                log_gc_threshold,
                ..reef_raft::RaftConfig::default()
            };
            let cfg = reef_node::store::StoreConfig {
                data_dir: data_dir.unwrap_or_else(|| PathBuf::from("reef-data")),
                cluster_id,
                node_id,
                listen,
                peers,
                founders,
                raft,
                raft_threads: raft_threads as usize,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("reef-io")
                .build()?;
            runtime.block_on(reef_node::store::run_store(
                cfg,
                shutdown_signal(),
                |addr| {
                    println!("reef store ready: node {node_id} serving gRPC on {addr}");
                    use std::io::Write;
                    let _ = std::io::stdout().flush();
                },
            ))?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

fn start(cfg: reef_node::Config) -> Result<()> {
    // Statements run on the runtime's blocking threads. Binding and
    // evaluation recurse over the expression tree, whose depth the parser
    // bounds; 64 MiB of (lazily committed) stack covers that bound even in
    // debug builds, where frames are large.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("reef-io")
        .thread_stack_size(64 << 20)
        .build()?;
    let data_dir = cfg.data_dir.clone();
    let node = reef_node::Node::open(cfg)?;
    runtime.block_on(async {
        node.serve(shutdown_signal(), |addr| {
            println!(
                "reefdb ready: postgresql://reef@{addr}/reef (data in {})",
                data_dir.display()
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
        })
        .await
    })?;
    drop(node);
    tracing::info!("stopped cleanly");
    Ok(())
}
