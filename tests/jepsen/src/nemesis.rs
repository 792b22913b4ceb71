//! The nemesis: faults chosen and timed by a seeded random generator, one at a time, each
//! healed before the next: `kill -9` and restart, SIGSTOP and SIGCONT, network partitions
//! (one node isolated, two halves, a majority ring, a bridge), a skewed wall clock (a restart
//! under libfaketime), and the operator's own disruptions (splitting a partition, moving its
//! leadership). Every fault is recorded with its start and end for the report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::cluster::{addr, Cluster};
use crate::error::Result;
use crate::net;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// SIGKILL a node, restart it when healing.
    Kill,
    /// SIGSTOP a node, SIGCONT it when healing.
    Pause,
    /// Cut the network between groups of nodes.
    Partition,
    /// Restart a node with its wall clock moved by seconds.
    Skew,
    /// Split a partition.
    Split,
    /// Move a partition's leadership.
    Transfer,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Skew,
        Kind::Split,
        Kind::Transfer,
    ];

    /// Parses a kind's name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Skew => "skew",
            Kind::Split => "split",
            Kind::Transfer => "transfer",
        }
    }
}

/// One fault as it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    /// What kind.
    pub kind: Kind,
    /// Which nodes or partitions, how.
    pub detail: String,
    /// When it began, in nanoseconds since the run started.
    pub start_ns: u64,
    /// When it was healed (for instant faults, when the command returned).
    pub end_ns: u64,
    /// The nodes it hit (1-based), for kills the victims.
    pub nodes: Vec<usize>,
    /// Why applying or healing it failed, if it did (the run goes on).
    pub error: Option<String>,
}

/// The nemesis's settings.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The kinds to choose from.
    pub kinds: Vec<Kind>,
    /// The seed of the choices.
    pub seed: u64,
    /// The quiet time between faults, from..to.
    pub gap: (Duration, Duration),
    /// How long a fault lasts, from..to.
    pub hold: (Duration, Duration),
}

/// Runs faults against `cluster` until `stop` is set, then heals whatever is still broken.
/// Returns the faults as they happened.
pub fn run(
    cluster: Arc<Mutex<Cluster>>,
    plan: Plan,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut faults = Vec::new();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let sleep = |d: Duration, stop: &AtomicBool| {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let between = |rng: &mut StdRng, (a, b): (Duration, Duration)| {
        Duration::from_millis(rng.random_range(a.as_millis() as u64..=b.as_millis() as u64))
    };
    while !stop.load(Ordering::Relaxed) {
        let gap = between(&mut rng, plan.gap);
        sleep(gap, &stop);
        if stop.load(Ordering::Relaxed) || plan.kinds.is_empty() {
            break;
        }
        let kind = plan.kinds[rng.random_range(0..plan.kinds.len())];
        let count = cluster.lock().expect("cluster lock").nodes.len();
        let node = rng.random_range(0..count);
        let mut fault = Fault {
            kind,
            detail: String::new(),
            start_ns: now_ns(),
            end_ns: 0,
            nodes: Vec::new(),
            error: None,
        };
        let applied: Result<()> = (|| {
            let mut c = cluster.lock().expect("cluster lock");
            match kind {
                Kind::Kill => {
                    fault.detail = format!("kill -9 node {}", node + 1);
                    fault.nodes = vec![node + 1];
                    c.kill(node)
                }
                Kind::Pause => {
                    fault.detail = format!("SIGSTOP node {}", node + 1);
                    fault.nodes = vec![node + 1];
                    c.pause(node, true)
                }
                Kind::Partition => {
                    let (name, cuts) = partition(&mut rng, count);
                    fault.detail = name;
                    net::cut(&cuts)
                }
                Kind::Skew => {
                    let secs = *[-30i64, -5, -1, 1, 5, 30]
                        .choose(&mut rng)
                        .expect("offsets");
                    fault.detail = format!("node {} restarted with its clock {secs:+} s", node + 1);
                    fault.nodes = vec![node + 1];
                    c.restart_with_skew(node, secs)
                }
                Kind::Split => {
                    let parts = c.admin(&["partitions"])?;
                    let mut ids = table_partitions(&parts);
                    ids.shuffle(&mut rng);
                    // Some partitions hold too little to split (the refusal says so): the
                    // first that splits counts.
                    let mut last = Ok(());
                    for id in ids {
                        fault.detail = format!("split partition {id}");
                        last = c
                            .admin(&["split", "--partition", &id.to_string()])
                            .map(|_| ());
                        if last.is_ok() {
                            break;
                        }
                    }
                    last
                }
                Kind::Transfer => {
                    let parts = c.admin(&["partitions"])?;
                    let moves = leader_moves(&parts);
                    let Some((id, to)) = moves.choose(&mut rng) else {
                        fault.detail = "transfer: no partition with a follower".into();
                        return Ok(());
                    };
                    fault.detail = format!("move partition {id}'s leadership to node {to}");
                    c.admin(&[
                        "transfer-leader",
                        "--partition",
                        &id.to_string(),
                        "--to",
                        &to.to_string(),
                    ])
                    .map(|_| ())
                }
            }
        })();
        if let Err(e) = applied {
            fault.error = Some(e.to_string());
        }
        if matches!(
            kind,
            Kind::Kill | Kind::Pause | Kind::Partition | Kind::Skew
        ) {
            let hold = between(&mut rng, plan.hold);
            sleep(hold, &stop);
            let healed: Result<()> = (|| {
                let mut c = cluster.lock().expect("cluster lock");
                match kind {
                    Kind::Kill => c.start(node),
                    Kind::Pause => c.pause(node, false),
                    Kind::Partition => net::cut(&[]),
                    Kind::Skew => c.restart_with_skew(node, 0),
                    _ => Ok(()),
                }
            })();
            if let Err(e) = healed {
                let text = format!("healing: {e}");
                fault.error = Some(match fault.error.take() {
                    Some(before) => format!("{before}; {text}"),
                    None => text,
                });
            }
        }
        fault.end_ns = now_ns();
        faults.push(fault);
    }
    faults
}

/// Heals everything: the network, paused nodes, skewed clocks and stopped nodes.
pub fn heal_all(cluster: &mut Cluster) -> Result<()> {
    net::cut(&[])?;
    for i in 0..cluster.nodes.len() {
        if cluster.nodes[i].paused {
            cluster.pause(i, false)?;
        }
        if cluster.nodes[i].skew_s != 0 {
            cluster.restart_with_skew(i, 0)?;
        }
        if !cluster.is_running(i) {
            cluster.start(i)?;
        }
    }
    Ok(())
}

/// Picks a network partition of `count` nodes: its name and the links to cut.
fn partition(
    rng: &mut StdRng,
    count: usize,
) -> (String, Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr)>) {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(rng);
    let names = |g: &[usize]| {
        g.iter()
            .map(|i| (i + 1).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let shape = if count >= 5 {
        rng.random_range(0..4)
    } else {
        rng.random_range(0..3)
    };
    match shape {
        0 => {
            let (one, rest) = order.split_at(1);
            let groups = vec![one.to_vec(), rest.to_vec()];
            (
                format!("isolate node {}", names(one)),
                net::cuts_between(&groups, addr),
            )
        }
        1 => {
            let (a, b) = order.split_at(count / 2);
            let groups = vec![a.to_vec(), b.to_vec()];
            (
                format!("halves [{}] [{}]", names(a), names(b)),
                net::cuts_between(&groups, addr),
            )
        }
        2 => {
            // The first node reaches both sides, which cannot reach each other.
            let bridge = order[0];
            let rest = &order[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            let groups = vec![a.to_vec(), b.to_vec()];
            (
                format!(
                    "bridge node {} between [{}] and [{}]",
                    bridge + 1,
                    names(a),
                    names(b)
                ),
                net::cuts_between(&groups, addr),
            )
        }
        _ => {
            // A ring: each node reaches only its two neighbours, a majority of five counting
            // itself, but no two nodes agree on which majority.
            let mut cuts = Vec::new();
            for (x, &a) in order.iter().enumerate() {
                for (y, &b) in order.iter().enumerate() {
                    let d = x.abs_diff(y);
                    if a != b && d != 1 && d != count - 1 {
                        cuts.push((addr(a), addr(b)));
                    }
                }
            }
            (format!("majority ring {}", names(&order)), cuts)
        }
    }
}

/// The ids of partitions holding SQL data (every one but the root service's own).
pub fn table_partitions(parts: &serde_json::Value) -> Vec<u64> {
    parts
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["start"] != "start")
                .filter_map(|p| p["id"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// Every (partition, node) pair where the node holds a voting replica but not the lead.
fn leader_moves(parts: &serde_json::Value) -> Vec<(u64, u64)> {
    let mut moves = Vec::new();
    for p in parts.as_array().into_iter().flatten() {
        let (Some(id), leader) = (p["id"].as_u64(), p["leader"].as_u64()) else {
            continue;
        };
        for r in p["replicas"].as_array().into_iter().flatten() {
            if r["learner"] == false && r["node"].as_u64() != leader {
                if let Some(node) = r["node"].as_u64() {
                    moves.push((id, node));
                }
            }
        }
    }
    moves
}
