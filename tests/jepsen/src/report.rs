//! What a run found, for people (`report.txt`) and scripts (`report.json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::check::Anomaly;
use crate::history::{History, Outcome};
use crate::nemesis::{Fault, Kind};

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Spread {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    /// Summarizes samples given in nanoseconds.
    pub fn of(mut samples: Vec<u64>) -> Spread {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1e6
        };
        Spread {
            count: samples.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: samples.last().map_or(0.0, |&s| s as f64 / 1e6),
        }
    }
}

/// A run's summary.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The workload.
    pub workload: String,
    /// The seed (replays the same choices).
    pub seed: u64,
    /// How many nodes.
    pub nodes: usize,
    /// How long clients ran, in seconds.
    pub seconds: u64,
    /// Operations that completed ok, failed, or ended unknown.
    pub ok: usize,
    /// See `ok`.
    pub fail: usize,
    /// See `ok`.
    pub info: usize,
    /// Faults by kind.
    pub faults: BTreeMap<String, usize>,
    /// Faults whose application or healing failed.
    pub fault_errors: usize,
    /// Latency of ok operations.
    pub latency: Spread,
    /// For each kill: the time from the kill until every key in use just before it had
    /// committed a write again.
    pub failover: Spread,
    /// The same from the start of each pause (SIGSTOP).
    pub pause_stall: Spread,
    /// The same from the start of each network partition.
    pub partition_stall: Spread,
    /// Whether the cluster healed and answered the final reads.
    pub recovered: bool,
    /// What went wrong in recovery, if it did.
    pub recovery_error: Option<String>,
    /// What the checker found.
    pub anomalies: Vec<Anomaly>,
    /// Whether the run passed: recovered and no anomaly.
    pub valid: bool,
}

/// How recently before a kill a key must have been written to count as in use then.
const ACTIVE_BEFORE_KILL_NS: u64 = 2_000_000_000;

/// The failover time of each fault of `kind` (for `kill -9`, the failover time proper): from
/// the fault until every key that was in use just before it (an ok write completed in the two
/// seconds before) had an ok write complete after it.
/// Keys that no client happened to write again are left out; with a handful of hot keys and
/// tens of writes a second, the figure is the longest stall of any key in use.
pub fn failover_times<V>(
    history: &History<V>,
    faults: &[Fault],
    kind: Kind,
    writes: impl Fn(&V) -> Vec<u64>,
) -> Vec<u64> {
    let mut by_key: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for op in history.iter().filter(|op| op.outcome == Outcome::Ok) {
        for key in writes(&op.value) {
            by_key.entry(key).or_default().push(op.complete_ns);
        }
    }
    for times in by_key.values_mut() {
        times.sort_unstable();
    }
    faults
        .iter()
        .filter(|f| f.kind == kind && f.error.is_none())
        .filter_map(|f| {
            let kill = f.start_ns;
            by_key
                .values()
                .filter_map(|times| {
                    let i = times.partition_point(|&t| t < kill);
                    let in_use = i > 0 && times[i - 1] + ACTIVE_BEFORE_KILL_NS >= kill;
                    times.get(i).filter(|_| in_use).map(|&t| t - kill)
                })
                .max()
        })
        .collect()
}

impl Report {
    /// The human-readable report.
    pub fn text(&self, faults: &[Fault]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "reef-jepsen: workload {}, seed {}, {} nodes, {} s",
            self.workload, self.seed, self.nodes, self.seconds
        );
        let _ = writeln!(
            out,
            "verdict: {}",
            if self.valid {
                "VALID (no anomaly found)"
            } else {
                "INVALID"
            }
        );
        let _ = writeln!(
            out,
            "operations: {} ok, {} failed, {} unknown; ok latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.ok, self.fail, self.info, self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
        );
        let kinds: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let _ = writeln!(
            out,
            "faults: {} ({} could not be applied or healed)",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            },
            self.fault_errors
        );
        if self.failover.count > 0 {
            let _ = writeln!(
                out,
                "failover after kill -9 (until every key in use committed again): {} kills, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                self.failover.count, self.failover.p50_ms, self.failover.p99_ms, self.failover.max_ms
            );
        }
        for (what, spread) in [
            ("a pause", &self.pause_stall),
            ("a partition", &self.partition_stall),
        ] {
            if spread.count > 0 {
                let _ = writeln!(
                    out,
                    "writes stalled after {what} (same measure): {} faults, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                    spread.count, spread.p50_ms, spread.p99_ms, spread.max_ms
                );
            }
        }
        let _ = writeln!(
            out,
            "recovery: {}",
            match &self.recovery_error {
                None => "healed; final reads answered".to_string(),
                Some(e) => format!("FAILED: {e}"),
            }
        );
        let _ = writeln!(out, "anomalies: {}", self.anomalies.len());
        for a in self.anomalies.iter().take(50) {
            let _ = writeln!(out, "  {}: {}", a.kind, a.detail);
        }
        if self.anomalies.len() > 50 {
            let _ = writeln!(
                out,
                "  ... and {} more (report.json has all)",
                self.anomalies.len() - 50
            );
        }
        let _ = writeln!(out, "\nfault timeline (seconds since start):");
        for f in faults {
            let _ = writeln!(
                out,
                "  {:7.1} - {:7.1}  {:<9} {}{}",
                f.start_ns as f64 / 1e9,
                f.end_ns as f64 / 1e9,
                f.kind.name(),
                f.detail,
                f.error
                    .as_ref()
                    .map_or(String::new(), |e| format!("  [error: {e}]"))
            );
        }
        let _ = writeln!(
            out,
            "\nplot.png: latency (log scale, 0.1 ms to 20 s; grid at 1 ms, 10 ms, 100 ms, 1 s, 10 s) over time \
             (grid every 10 s). Dots: blue ok, orange failed, red unknown. Bands: red kill, yellow pause, \
             purple partition, green clock skew; lines: grey split, cyan leader transfer."
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn write(key: u64, complete_s: f64) -> Op<u64> {
        Op {
            process: 0,
            invoke_ns: 0,
            complete_ns: (complete_s * 1e9) as u64,
            outcome: Outcome::Ok,
            value: key,
        }
    }

    fn kill_at(s: f64) -> Fault {
        Fault {
            kind: Kind::Kill,
            detail: String::new(),
            start_ns: (s * 1e9) as u64,
            end_ns: (s * 1e9) as u64,
            nodes: vec![1],
            error: None,
        }
    }

    #[test]
    fn failover_is_the_longest_stall_of_a_key_in_use() {
        // Keys 1 and 2 are in use at the kill (t = 10 s); key 3 was last written long before.
        let history = vec![
            write(1, 9.5),
            write(2, 9.9),
            write(3, 1.0),
            write(1, 10.4),
            write(2, 13.0),
            write(3, 20.0),
        ];
        let times = failover_times(&history, &[kill_at(10.0)], Kind::Kill, |k| vec![*k]);
        assert!(failover_times(&history, &[kill_at(10.0)], Kind::Pause, |k| vec![*k]).is_empty());
        assert_eq!(times, vec![3_000_000_000]);
        // A kill that failed to happen is not measured.
        let mut failed = kill_at(10.0);
        failed.error = Some("no such process".into());
        assert!(failover_times(&history, &[failed], Kind::Kill, |k| vec![*k]).is_empty());
    }

    #[test]
    fn spreads_take_percentiles_in_milliseconds() {
        let s = Spread::of((1..=100).map(|ms| ms * 1_000_000).collect());
        assert_eq!(
            (s.count, s.p50_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        assert_eq!(Spread::of(Vec::new()).count, 0);
    }
}
