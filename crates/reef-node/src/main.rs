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
            let filter = log
                .or_else(|| std::env::var("REEF_LOG").ok())
                .unwrap_or_else(|| "info".into());
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_new(&filter)
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
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
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
        };
        node.serve(shutdown, |addr| {
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
