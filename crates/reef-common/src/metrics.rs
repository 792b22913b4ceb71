//! Process-wide metrics: counters and latency histograms that every layer bumps where the work
//! happens, rendered in Prometheus' text format by the node's `/metrics` endpoint.
//!
//! A metric is a name and a fixed set of label values, registered on first use and kept for
//! the life of the process; bumping one is an atomic add. Callers keep the handle
//! ([`Counter`], [`Histogram`]) where the path is hot, rather than looking it up by name each
//! time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution of durations over [`LATENCY_BUCKETS`].
#[derive(Clone, Debug, Default)]
pub struct Histogram(Arc<HistogramCells>);

#[derive(Debug, Default)]
struct HistogramCells {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.0.count.fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

enum Metric {
    Counter(Counter),
    Histogram(Histogram),
}

/// One metric family: its help text and kind, and its series by label values.
struct Family {
    help: &'static str,
    labels: &'static [&'static str],
    series: BTreeMap<Vec<String>, Metric>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    fn series(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
        make: impl FnOnce() -> Metric,
        pick: impl FnOnce(&Metric) -> Option<Metric>,
    ) -> Metric {
        debug_assert_eq!(labels.len(), values.len(), "label values for {name}");
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            labels,
            series: BTreeMap::new(),
        });
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let metric = family.series.entry(key).or_insert_with(make);
        pick(metric).unwrap_or_else(|| panic!("metric {name} registered with another kind"))
    }

    /// The counter `name` with these label values, registered on first use.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
    ) -> Counter {
        match self.series(
            name,
            help,
            labels,
            values,
            || Metric::Counter(Counter::default()),
            |m| match m {
                Metric::Counter(c) => Some(Metric::Counter(c.clone())),
                Metric::Histogram(_) => None,
            },
        ) {
            Metric::Counter(c) => c,
            Metric::Histogram(_) => unreachable!("picked a counter"),
        }
    }

    /// The latency histogram `name` with these label values, registered on first use.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        values: &[&str],
    ) -> Histogram {
        match self.series(
            name,
            help,
            labels,
            values,
            || Metric::Histogram(Histogram::default()),
            |m| match m {
                Metric::Histogram(h) => Some(Metric::Histogram(h.clone())),
                Metric::Counter(_) => None,
            },
        ) {
            Metric::Histogram(h) => h,
            Metric::Counter(_) => unreachable!("picked a histogram"),
        }
    }

    /// Renders every metric in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.series.values().next() {
                Some(Metric::Histogram(_)) => "histogram",
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (values, metric) in &family.series {
                let labels = labels_text(family.labels, values, None);
                match metric {
                    Metric::Counter(c) => {
                        let _ = writeln!(out, "{name}{labels} {}", c.get());
                    }
                    Metric::Histogram(h) => {
                        let mut cumulative = 0;
                        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                            cumulative += h.0.buckets[i].load(Ordering::Relaxed);
                            let le = labels_text(family.labels, values, Some(&bound.to_string()));
                            let _ = writeln!(out, "{name}_bucket{le} {cumulative}");
                        }
                        // The counters are read one by one while others add to them: the
                        // total never shows fewer than the buckets below it.
                        let count = h.count().max(cumulative);
                        let inf = labels_text(family.labels, values, Some("+Inf"));
                        let _ = writeln!(out, "{name}_bucket{inf} {count}");
                        let sum = h.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                        let _ = writeln!(out, "{name}_sum{labels} {sum}");
                        let _ = writeln!(out, "{name}_count{labels} {count}");
                    }
                }
            }
        }
        out
    }
}

/// `{a="x",b="y"}` (with an `le` label for a histogram bucket), or nothing without labels.
fn labels_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders a gauge (a value read when scraped) in Prometheus' text format.
pub fn gauge_text(name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) -> String {
    let mut out = format!("# HELP {name} {help}\n# TYPE {name} gauge\n");
    for (labels, value) in samples {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!(
                "{{{}}}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let _ = writeln!(out, "{name}{labels} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let registry = Registry::default();
        let c = registry.counter("t_total", "things", &["kind"], &["a\"b"]);
        c.add(3);
        registry
            .counter("t_total", "things", &["kind"], &["a\"b"])
            .inc();
        let h = registry.histogram("t_seconds", "latency", &[], &[]);
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(10));
        let text = registry.render();
        assert!(
            text.contains("# TYPE t_total counter\nt_total{kind=\"a\\\"b\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_count 2\n"), "{text}");
        assert!(gauge_text("g", "a gauge", &[(&[("x", "1")], 2.5)]).contains("g{x=\"1\"} 2.5\n"));
    }
}
