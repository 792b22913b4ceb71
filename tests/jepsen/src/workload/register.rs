//! Register: one row per key holding an integer, read, written and compared-and-set by
//! single autocommit statements. Every key's history must be linearizable.

use std::sync::atomic::AtomicU64;

use rand::rngs::StdRng;
use rand::Rng;
use tokio_postgres::Client;

use super::{outcome_of, pick_key, Workload};
use crate::check::register::{self, RegisterOp};
use crate::check::Anomaly;
use crate::history::{History, Outcome};

/// The register workload.
#[derive(Debug, Clone)]
pub struct Register {
    /// How many keys.
    pub keys: u64,
}

impl Default for Register {
    fn default() -> Self {
        Register { keys: 8 }
    }
}

impl Workload for Register {
    type Value = RegisterOp;

    async fn setup(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        client
            .batch_execute(
                "DROP TABLE IF EXISTS reg; CREATE TABLE reg (k integer PRIMARY KEY, v bigint)",
            )
            .await?;
        client
            .execute(
                "INSERT INTO reg SELECT g, NULL FROM generate_series(0, $1) AS g",
                &[&(self.keys as i32 - 1)],
            )
            .await?;
        Ok(())
    }

    fn generate(&self, rng: &mut StdRng, _unique: &AtomicU64) -> RegisterOp {
        let key = pick_key(rng, self.keys);
        match rng.random_range(0..10) {
            0..=3 => RegisterOp::Read { key, value: None },
            4..=6 => RegisterOp::Write {
                key,
                value: rng.random_range(0..5),
            },
            _ => RegisterOp::Cas {
                key,
                from: rng.random_range(0..5),
                to: rng.random_range(0..5),
                swapped: None,
            },
        }
    }

    async fn invoke(&self, client: &Client, op: RegisterOp) -> (Outcome, RegisterOp) {
        match op {
            RegisterOp::Read { key, .. } => {
                match client
                    .query_opt("SELECT v FROM reg WHERE k = $1", &[&(key as i32)])
                    .await
                {
                    Ok(Some(row)) => (
                        Outcome::Ok,
                        RegisterOp::Read {
                            key,
                            value: Some(row.get::<_, Option<i64>>(0)),
                        },
                    ),
                    // The row is never deleted: its absence is a wrong answer, and the checker
                    // sees it as a read of a value nobody wrote.
                    Ok(None) => (
                        Outcome::Ok,
                        RegisterOp::Read {
                            key,
                            value: Some(Some(i64::MIN)),
                        },
                    ),
                    Err(_) => (Outcome::Fail, op),
                }
            }
            RegisterOp::Write { key, value } => {
                match client
                    .execute(
                        "UPDATE reg SET v = $2 WHERE k = $1",
                        &[&(key as i32), &value],
                    )
                    .await
                {
                    Ok(1) => (Outcome::Ok, op),
                    Ok(_) => (
                        Outcome::Ok,
                        RegisterOp::Write {
                            key,
                            value: i64::MIN,
                        },
                    ),
                    Err(e) => (outcome_of(&e, true), op),
                }
            }
            RegisterOp::Cas { key, from, to, .. } => {
                match client
                    .execute(
                        "UPDATE reg SET v = $3 WHERE k = $1 AND v = $2",
                        &[&(key as i32), &from, &to],
                    )
                    .await
                {
                    Ok(n) => (
                        Outcome::Ok,
                        RegisterOp::Cas {
                            key,
                            from,
                            to,
                            swapped: Some(n == 1),
                        },
                    ),
                    Err(e) => (outcome_of(&e, true), op),
                }
            }
        }
    }

    fn final_reads(&self) -> Vec<RegisterOp> {
        (0..self.keys)
            .map(|key| RegisterOp::Read { key, value: None })
            .collect()
    }

    fn check(&self, history: &History<RegisterOp>) -> Vec<Anomaly> {
        // A write that found no row to update: rows are never deleted, so one went missing.
        let mut anomalies: Vec<Anomaly> = history
            .iter()
            .filter(|op| {
                op.outcome == Outcome::Ok
                    && matches!(
                        op.value,
                        RegisterOp::Write {
                            value: i64::MIN,
                            ..
                        }
                    )
            })
            .map(|op| {
                Anomaly::new(
                    "lost-row",
                    format!(
                        "process {} wrote to a key whose row was gone: {op:?}",
                        op.process
                    ),
                )
            })
            .collect();
        anomalies.extend(register::check(history));
        anomalies
    }

    fn writes(&self, op: &RegisterOp) -> Vec<u64> {
        match op {
            RegisterOp::Write { key, .. } => vec![*key],
            RegisterOp::Cas {
                key,
                swapped: Some(true),
                ..
            } => vec![*key],
            _ => Vec::new(),
        }
    }
}
