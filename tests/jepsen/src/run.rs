//! One test run: start the cluster, set up the workload, run clients while the nemesis
//! injects faults, heal, make the final reads, check, and write everything to the output
//! folder (`history.jsonl`, `faults.jsonl`, `report.txt`, `report.json`, `plot.png`, and each
//! node's log under `nodes/`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::check::Anomaly;
use crate::cluster::{self, Cluster};
use crate::error::{Error, Result};
use crate::history::History;
use crate::nemesis::{self, Kind, Plan};
use crate::net::Namespace;
use crate::plot;
use crate::report::{failover_times, Report, Spread};
use crate::workload::{self, append::Append, bank::Bank, register::Register, Recorder, Workload};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// `bank`, `register` or `append`.
    pub workload: String,
    /// How long the clients run, in seconds.
    pub seconds: u64,
    /// The seed of the workload's and the nemesis's choices.
    pub seed: u64,
    /// How many nodes (3 or 5).
    pub nodes: usize,
    /// How many concurrent clients.
    pub clients: usize,
    /// The output folder.
    pub out: PathBuf,
    /// The `reef` binary.
    pub bin: PathBuf,
    /// The fault kinds (none: a run without faults).
    pub kinds: Vec<Kind>,
    /// Instead of a cluster of our own, an existing server speaking the PostgreSQL protocol
    /// (no faults); used to show that the checkers find what weaker databases allow.
    pub target: Option<String>,
    /// The isolation level of the append workload's transactions.
    pub isolation: String,
    /// Keep the nodes' data directories even when the run passes.
    pub keep: bool,
}

/// Runs the test. Enters a network namespace of its own first (unless `target` is given), so
/// it must be called before the process starts any thread.
pub fn run(opts: &Options) -> Result<Report> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::io(format!("creating {}", opts.out.display()), e))?;
    let _ns = match opts.target {
        Some(_) => None,
        None => Some(Namespace::enter(&format!("reefj-{}", std::process::id()))?),
    };
    match opts.workload.as_str() {
        "bank" => go(Bank::default(), opts),
        "register" => go(Register::default(), opts),
        "append" => go(Append::new(&opts.isolation), opts),
        other => Err(Error::Setup(format!(
            "unknown workload {other:?} (expected bank, register or append)"
        ))),
    }
}

fn go<W: Workload>(workload: W, opts: &Options) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the tokio runtime", e))?;
    let cluster = match opts.target {
        Some(_) => None,
        None => {
            let mut c = Cluster::new(&opts.bin, &opts.out.join("nodes"), opts.nodes)?;
            say(&format!("starting {} nodes", opts.nodes));
            c.start_all()?;
            Some(Arc::new(Mutex::new(c)))
        }
    };
    let urls: Vec<String> = match &opts.target {
        Some(url) => vec![url.clone()],
        None => (0..opts.nodes).map(cluster::pg_url).collect(),
    };
    runtime.block_on(async {
        let client = workload::connect(&urls[0])
            .await
            .map_err(|e| Error::sql(format!("connecting to {}", urls[0]), e))?;
        workload
            .setup(&client)
            .await
            .map_err(|e| Error::sql("setting up the workload", e))
    })?;
    if let Some(c) = &cluster {
        // Start with the data over several partitions, so transactions span them at once.
        let c = c.lock().expect("cluster lock");
        for _ in 0..2 {
            if let Ok(parts) = c.admin(&["partitions"]) {
                for id in nemesis::table_partitions(&parts) {
                    let _ = c.admin(&["split", "--partition", &id.to_string()]);
                }
            }
        }
    }

    let start = Instant::now();
    let workload = Arc::new(workload);
    let recorder = Recorder::new(start);
    let stop = Arc::new(AtomicBool::new(false));
    let nemesis = match (&cluster, opts.kinds.is_empty()) {
        (Some(c), false) => {
            let plan = Plan {
                kinds: opts.kinds.clone(),
                seed: opts.seed,
                gap: (Duration::from_secs(2), Duration::from_secs(5)),
                hold: (Duration::from_secs(3), Duration::from_secs(8)),
            };
            let (c, stop) = (c.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                nemesis::run(c, plan, start, stop)
            }))
        }
        _ => None,
    };
    say(&format!(
        "running {} clients of the {} workload for {} s (seed {})",
        opts.clients, opts.workload, opts.seconds, opts.seed
    ));
    let until = Instant::now() + Duration::from_secs(opts.seconds);
    runtime.block_on(workload::run_clients(
        workload.clone(),
        recorder.clone(),
        urls.clone(),
        opts.clients,
        opts.seed,
        until,
        Duration::from_millis(20),
    ));
    stop.store(true, Ordering::Relaxed);
    let faults = nemesis
        .map(|n| n.join().unwrap_or_default())
        .unwrap_or_default();

    say("healing every fault and waiting for the cluster to recover");
    let mut recovery_error = None;
    if let Some(c) = &cluster {
        let mut c = c.lock().expect("cluster lock");
        if let Err(e) =
            nemesis::heal_all(&mut c).and_then(|()| c.wait_healthy(Duration::from_secs(120)))
        {
            recovery_error = Some(e.to_string());
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    say("final reads");
    if !runtime.block_on(workload::final_reads(
        &*workload,
        &recorder,
        &urls,
        Duration::from_secs(60),
    )) {
        recovery_error.get_or_insert_with(|| "the final reads did not succeed within 60 s".into());
    }
    let history = recorder.history();
    write_jsonl(&opts.out.join("history.jsonl"), &history)?;
    write_jsonl(&opts.out.join("faults.jsonl"), &faults)?;

    say(&format!("checking {} operations", history.len()));
    let mut anomalies = workload.check(&history);
    anomalies.extend(node_panics(&opts.out.join("nodes")));
    let report = summarize(
        &*workload,
        opts,
        &history,
        &faults,
        recovery_error,
        anomalies,
    );
    std::fs::write(opts.out.join("report.txt"), report.text(&faults))
        .map_err(|e| Error::io("writing report.txt", e))?;
    std::fs::write(
        opts.out.join("report.json"),
        serde_json::to_string_pretty(&report).expect("the report serializes"),
    )
    .map_err(|e| Error::io("writing report.json", e))?;
    let points: Vec<plot::Point> = history
        .iter()
        .map(|op| plot::Point {
            invoke_ns: op.invoke_ns,
            latency_ns: op.complete_ns.saturating_sub(op.invoke_ns),
            outcome: op.outcome,
        })
        .collect();
    let duration = history.iter().map(|op| op.complete_ns).max().unwrap_or(0);
    plot::draw(&opts.out.join("plot.png"), duration, &points, &faults)?;

    if let Some(c) = cluster {
        let mut c = c.lock().expect("cluster lock");
        c.kill_all();
        if report.valid && !opts.keep {
            for i in 0..opts.nodes {
                let _ = std::fs::remove_dir_all(
                    opts.out
                        .join("nodes")
                        .join(format!("n{}", i + 1))
                        .join("data"),
                );
            }
        }
    }
    Ok(report)
}

fn summarize<W: Workload>(
    workload: &W,
    opts: &Options,
    history: &History<W::Value>,
    faults: &[nemesis::Fault],
    recovery_error: Option<String>,
    anomalies: Vec<Anomaly>,
) -> Report {
    let (ok, fail, info) = workload::tally(history);
    let mut kinds = BTreeMap::new();
    for f in faults {
        *kinds.entry(f.kind.name().to_string()).or_insert(0) += 1;
    }
    let latency = Spread::of(
        history
            .iter()
            .filter(|op| op.outcome == crate::history::Outcome::Ok)
            .map(|op| op.complete_ns.saturating_sub(op.invoke_ns))
            .collect(),
    );
    let stalls = |kind| {
        Spread::of(failover_times(history, faults, kind, |v| {
            workload.writes(v)
        }))
    };
    let (failover, pause_stall, partition_stall) = (
        stalls(Kind::Kill),
        stalls(Kind::Pause),
        stalls(Kind::Partition),
    );
    let valid = recovery_error.is_none() && anomalies.is_empty();
    Report {
        workload: opts.workload.clone(),
        seed: opts.seed,
        nodes: if opts.target.is_some() { 1 } else { opts.nodes },
        seconds: opts.seconds,
        ok,
        fail,
        info,
        faults: kinds,
        fault_errors: faults.iter().filter(|f| f.error.is_some()).count(),
        latency,
        failover,
        pause_stall,
        partition_stall,
        recovered: recovery_error.is_none(),
        recovery_error,
        anomalies,
        valid,
    }
}

/// A node that panicked is a bug whatever the checkers say.
fn node_panics(dir: &Path) -> Vec<Anomaly> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let log = entry.path().join("reef.log");
        let Ok(text) = std::fs::read_to_string(&log) else {
            continue;
        };
        for line in text.lines().filter(|l| l.contains("panicked at")) {
            found.push(Anomaly::new(
                "node-panic",
                format!("{}: {line}", log.display()),
            ));
        }
    }
    found
}

fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let file = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut out = std::io::BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut out, item).expect("history items serialize");
        out.write_all(b"\n")
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    out.flush()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn say(text: &str) {
    eprintln!("reef-jepsen: {text}");
}
