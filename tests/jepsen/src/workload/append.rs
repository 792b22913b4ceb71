//! List append: repeatable-read transactions of one to four steps, each appending a unique
//! value to a key's list or reading the list, as Elle's list-append workload does. A list is
//! a row `(k, v)` with `v` the comma-separated values. The keys in use move along as appends
//! accumulate, so lists stay short and new rows keep being inserted.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::Rng;
use tokio_postgres::Client;

use super::{outcome_of, take_unique, Workload};
use crate::check::append::{self, Micro, Txn};
use crate::check::Anomaly;
use crate::history::{History, Outcome};

/// How many keys are in use at once.
const WINDOW: u64 = 8;
/// How many appends move the window along by one key.
const APPENDS_PER_KEY: u64 = 32;

/// The list-append workload.
#[derive(Debug)]
pub struct Append {
    /// The isolation level the transactions ask for (`REPEATABLE READ` for reefdb; weaker
    /// ones show that the checker finds what they allow).
    pub isolation: String,
    highest_key: AtomicU64,
}

impl Append {
    /// A workload whose transactions run at `isolation`.
    pub fn new(isolation: &str) -> Append {
        Append {
            isolation: isolation.to_string(),
            highest_key: AtomicU64::new(WINDOW - 1),
        }
    }

    async fn run(&self, client: &Client, txn: &mut Txn) -> Result<(), tokio_postgres::Error> {
        client
            .batch_execute(&format!("BEGIN ISOLATION LEVEL {}", self.isolation))
            .await?;
        for micro in txn.iter_mut() {
            match micro {
                Micro::Read { key, value } => {
                    let row = client
                        .query_opt("SELECT v FROM app WHERE k = $1", &[&(*key as i32)])
                        .await?;
                    *value = Some(match row {
                        None => Vec::new(),
                        Some(row) => {
                            let text: String = row.get(0);
                            text.split(',')
                                .map(|v| v.parse().unwrap_or(i64::MIN))
                                .collect()
                        }
                    });
                }
                Micro::Append { key, value } => {
                    let text = value.to_string();
                    let updated = client
                        .execute(
                            "UPDATE app SET v = v || ',' || $2 WHERE k = $1",
                            &[&(*key as i32), &text],
                        )
                        .await?;
                    if updated == 0 {
                        client
                            .execute(
                                "INSERT INTO app (k, v) VALUES ($1, $2)",
                                &[&(*key as i32), &text],
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Workload for Append {
    type Value = Txn;

    async fn setup(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        client
            .batch_execute("DROP TABLE IF EXISTS app; CREATE TABLE app (k integer PRIMARY KEY, v text NOT NULL)")
            .await
    }

    fn generate(&self, rng: &mut StdRng, unique: &AtomicU64) -> Txn {
        let steps = rng.random_range(1..=4);
        (0..steps)
            .map(|_| {
                let base = unique.load(Ordering::Relaxed) / APPENDS_PER_KEY;
                let key = base + rng.random_range(0..WINDOW);
                self.highest_key.fetch_max(key, Ordering::Relaxed);
                if rng.random_bool(0.5) {
                    Micro::Read { key, value: None }
                } else {
                    Micro::Append {
                        key,
                        value: take_unique(unique) as i64,
                    }
                }
            })
            .collect()
    }

    async fn invoke(&self, client: &Client, mut txn: Txn) -> (Outcome, Txn) {
        if let Err(e) = self.run(client, &mut txn).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return (outcome_of(&e, false), txn);
        }
        match client.batch_execute("COMMIT").await {
            Ok(()) => (Outcome::Ok, txn),
            Err(e) => (outcome_of(&e, true), txn),
        }
    }

    fn final_reads(&self) -> Vec<Txn> {
        let keys: Vec<u64> = (0..=self.highest_key.load(Ordering::Relaxed)).collect();
        keys.chunks(WINDOW as usize)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|&key| Micro::Read { key, value: None })
                    .collect()
            })
            .collect()
    }

    fn check(&self, history: &History<Txn>) -> Vec<Anomaly> {
        append::check(history)
    }

    fn writes(&self, txn: &Txn) -> Vec<u64> {
        txn.iter()
            .filter_map(|m| match m {
                Micro::Append { key, .. } => Some(*key),
                Micro::Read { .. } => None,
            })
            .collect()
    }
}
