//! What clients did and heard: one [`Op`] per operation, from its invocation to its completion.

use serde::{Deserialize, Serialize};

/// How an operation ended, as the client knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It took effect (a commit acknowledged, a read answered).
    Ok,
    /// It certainly did not take effect (an error before anything was applied, a rollback).
    Fail,
    /// Unknown: a timeout, a lost connection, an outcome-unknown error. It may or may not have
    /// taken effect, at any time after its invocation.
    Info,
}

/// One operation of one client process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op<V> {
    /// The client process; each runs one operation at a time.
    pub process: u64,
    /// When it was invoked, in nanoseconds since the run started.
    pub invoke_ns: u64,
    /// When its outcome was known (for `Info`, when the client gave up).
    pub complete_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it was, with what it read filled in for completed reads.
    pub value: V,
}

/// A run's operations, in invocation order.
pub type History<V> = Vec<Op<V>>;
