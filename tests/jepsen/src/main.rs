//! `reef-jepsen`: runs one Jepsen-style test against a cluster of real `reef` processes in a
//! network namespace of its own, and exits 0 when the history is valid, 1 when a checker found
//! an anomaly or the cluster did not recover, and 2 when the test itself could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use reef_jepsen::nemesis::Kind;
use reef_jepsen::run::{run, Options};

#[derive(Parser, Debug)]
#[command(about = "Runs a Jepsen-style fault test against a reef cluster and checks its history")]
struct Args {
    /// The workload: bank, register or append.
    #[arg(long, default_value = "bank")]
    workload: String,
    /// How long the clients run, in seconds.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// The seed of every random choice (a random one, printed, by default).
    #[arg(long)]
    seed: Option<u64>,
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// How many concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The fault kinds, comma-separated (kill, pause, partition, skew, split, transfer), or
    /// "none".
    #[arg(long, default_value = "kill,pause,partition,skew,split,transfer")]
    nemesis: String,
    /// The output folder.
    #[arg(long, default_value = "jepsen-out")]
    out: PathBuf,
    /// The reef binary.
    #[arg(long, env = "REEF_BIN", default_value = "reef")]
    bin: PathBuf,
    /// Test an existing PostgreSQL-protocol server at this URL instead (no cluster, no faults).
    #[arg(long)]
    target: Option<String>,
    /// The isolation level of the append workload's transactions.
    #[arg(long, default_value = "REPEATABLE READ")]
    isolation: String,
    /// Keep the nodes' data directories even when the run passes.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let kinds = if args.nemesis == "none" {
        Vec::new()
    } else {
        let mut kinds = Vec::new();
        for name in args.nemesis.split(',').map(str::trim) {
            match Kind::parse(name) {
                Some(k) => kinds.push(k),
                None => {
                    eprintln!("error: unknown fault kind {name:?} (expected kill, pause, partition, skew, split, transfer or none)");
                    return ExitCode::from(2);
                }
            }
        }
        kinds
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("reef-jepsen: seed {seed} (replay with --seed {seed})");
    let opts = Options {
        workload: args.workload,
        seconds: args.time,
        seed,
        nodes: args.nodes,
        clients: args.clients.max(1),
        out: args.out.clone(),
        bin: args.bin,
        kinds,
        target: args.target,
        isolation: args.isolation,
        keep: args.keep,
    };
    match run(&opts) {
        Ok(report) => {
            print!(
                "{}",
                std::fs::read_to_string(args.out.join("report.txt")).unwrap_or_default()
            );
            eprintln!(
                "reef-jepsen: history, report and plot in {}",
                args.out.display()
            );
            if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("reef-jepsen: error: {e}");
            ExitCode::from(2)
        }
    }
}
