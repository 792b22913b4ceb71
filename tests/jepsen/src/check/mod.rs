//! Checkers: each takes a history and returns the anomalies it found (none is a pass).

pub mod append;
pub mod bank;
pub mod register;

use serde::Serialize;

/// One anomaly: its kind (for example `G1c` or `lost-write`) and what shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// The kind, a short stable name.
    pub kind: String,
    /// What shows it, for the report: the operations involved.
    pub detail: String,
}

impl Anomaly {
    /// Creates an anomaly.
    pub fn new(kind: &str, detail: impl Into<String>) -> Anomaly {
        Anomaly {
            kind: kind.to_string(),
            detail: detail.into(),
        }
    }
}
