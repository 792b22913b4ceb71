//! Workloads: what the clients do, each with its checker.
//!
//! A workload generates operations, runs one against a connection and says how it ended
//! (filling in what it read), and names the final reads made after every fault has healed. The
//! runner ([`run_clients`]) drives several client processes, each one operation at a time on
//! its own connection, and records every operation in the history. A process whose operation
//! ended with an unknown outcome is retired (its operation may still take effect at any later
//! time) and a fresh process takes its place, as in Jepsen.

pub mod append;
pub mod bank;
pub mod register;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio_postgres::{Client, NoTls};

use crate::check::Anomaly;
use crate::history::{History, Op, Outcome};

/// How long one operation may take before its client gives up (outcome unknown).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// A workload.
pub trait Workload: Send + Sync + 'static {
    /// An operation, with what it read once completed.
    type Value: Clone + Send + Sync + Serialize + std::fmt::Debug + 'static;

    /// Creates the tables and rows the workload starts from.
    fn setup(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send;

    /// Picks the next operation; `unique` hands out values never used before in the run.
    fn generate(&self, rng: &mut StdRng, unique: &AtomicU64) -> Self::Value;

    /// Runs `op` on `client`.
    fn invoke(
        &self,
        client: &Client,
        op: Self::Value,
    ) -> impl Future<Output = (Outcome, Self::Value)> + Send;

    /// The reads made at the end, once the cluster has healed.
    fn final_reads(&self) -> Vec<Self::Value>;

    /// Checks the history.
    fn check(&self, history: &History<Self::Value>) -> Vec<Anomaly>;

    /// The keys an operation writes (for failover times).
    fn writes(&self, op: &Self::Value) -> Vec<u64>;
}

/// Says how an operation that failed with `err` ended. `committing` is true when the error
/// came from the statement that would have made its writes durable (COMMIT, or an autocommit
/// write): only there can an error leave the outcome unknown. Before it, an error means the
/// transaction never committed.
pub fn outcome_of(err: &tokio_postgres::Error, committing: bool) -> Outcome {
    if !committing {
        return Outcome::Fail;
    }
    match err.code().map(|c| c.code()) {
        // Serialization failures, deadlocks and constraint violations roll back; 40003 says
        // the outcome is unknown.
        Some("40003") => Outcome::Info,
        Some(code)
            if code.starts_with("40")
                || code.starts_with("23")
                || code.starts_with("42")
                || code.starts_with("22") =>
        {
            Outcome::Fail
        }
        _ => Outcome::Info,
    }
}

/// Connects to `url`, driving the connection on a task.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The recorder every client writes to.
pub struct Recorder<V> {
    start: Instant,
    ops: Mutex<History<V>>,
}

impl<V> Recorder<V> {
    /// Starts the run's clock.
    pub fn new(start: Instant) -> Arc<Recorder<V>> {
        Arc::new(Recorder {
            start,
            ops: Mutex::new(Vec::new()),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records one operation.
    pub fn record(&self, op: Op<V>) {
        self.ops.lock().expect("recorder lock").push(op);
    }

    /// The history, in invocation order.
    pub fn history(&self) -> History<V> {
        let mut ops = std::mem::take(&mut *self.ops.lock().expect("recorder lock"));
        ops.sort_by_key(|op| (op.invoke_ns, op.process));
        ops
    }
}

/// Runs one operation with the client timeout, recording it.
pub async fn run_op<W: Workload>(
    workload: &W,
    recorder: &Recorder<W::Value>,
    client: &Client,
    process: u64,
    op: W::Value,
) -> Outcome {
    let invoke_ns = recorder.now_ns();
    let (outcome, value) =
        match tokio::time::timeout(OP_TIMEOUT, workload.invoke(client, op.clone())).await {
            Ok(done) => done,
            Err(_) => (Outcome::Info, op),
        };
    recorder.record(Op {
        process,
        invoke_ns,
        complete_ns: recorder.now_ns(),
        outcome,
        value,
    });
    outcome
}

/// Runs `clients` client processes against the nodes at `urls` until `until`, each pausing a
/// random 0 to `think` between operations.
pub async fn run_clients<W: Workload>(
    workload: Arc<W>,
    recorder: Arc<Recorder<W::Value>>,
    urls: Vec<String>,
    clients: usize,
    seed: u64,
    until: Instant,
    think: Duration,
) {
    let unique = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for slot in 0..clients {
        let (workload, recorder, urls, unique) = (
            workload.clone(),
            recorder.clone(),
            urls.clone(),
            unique.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(
                seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(slot as u64 + 1)),
            );
            let mut process = slot as u64;
            // Each client has a home node and returns to it on every reconnect, so the
            // clients stay spread over the nodes: one that drifted for good onto whichever
            // node answered would leave all of them on one node, stalling together when the
            // nemesis pauses it.
            let home = slot % urls.len();
            let mut attempt = 0usize;
            let mut client: Option<Client> = None;
            while Instant::now() < until {
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    let node = (home + attempt) % urls.len();
                    match tokio::time::timeout(Duration::from_secs(5), connect(&urls[node])).await {
                        Ok(Ok(c)) => {
                            client = Some(c);
                            attempt = 0;
                        }
                        _ => {
                            // Try the next node, as a client's pool would.
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let c = client.as_ref().expect("connected");
                let op = workload.generate(&mut rng, &unique);
                let outcome = run_op(&*workload, &recorder, c, process, op).await;
                if outcome == Outcome::Info {
                    // The operation may still be running: this process is done, a new one
                    // (with a fresh connection) takes the slot.
                    process += clients as u64;
                    client = None;
                }
                if !think.is_zero() {
                    let pause = rng.random_range(0..=think.as_millis() as u64);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Makes the final reads, retrying each (on any node) until it succeeds or `timeout` passes.
/// Returns whether every read succeeded.
pub async fn final_reads<W: Workload>(
    workload: &W,
    recorder: &Recorder<W::Value>,
    urls: &[String],
    timeout: Duration,
) -> bool {
    let until = Instant::now() + timeout;
    let mut all = true;
    for (i, op) in workload.final_reads().into_iter().enumerate() {
        let process = 1_000_000 + i as u64;
        let mut done = false;
        let mut attempt = 0usize;
        while !done && Instant::now() < until {
            let url = &urls[attempt % urls.len()];
            attempt += 1;
            let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(5), connect(url)).await
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            done = run_op(workload, recorder, &client, process, op.clone()).await == Outcome::Ok;
        }
        all &= done;
    }
    all
}

/// Picks a key with a skew toward low keys, as real access patterns have hot rows.
pub fn pick_key(rng: &mut StdRng, keys: u64) -> u64 {
    let a = rng.random_range(0..keys);
    let b = rng.random_range(0..keys);
    a.min(b)
}

/// Counts operations by outcome.
pub fn tally<V>(history: &History<V>) -> (usize, usize, usize) {
    let count = |o| history.iter().filter(|op| op.outcome == o).count();
    (
        count(Outcome::Ok),
        count(Outcome::Fail),
        count(Outcome::Info),
    )
}

/// Takes the next value of `unique`, one no other operation of the run gets.
pub fn take_unique(unique: &AtomicU64) -> u64 {
    unique.fetch_add(1, Ordering::Relaxed)
}
