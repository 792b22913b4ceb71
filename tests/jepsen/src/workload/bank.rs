//! Bank: transfers between accounts in repeatable-read transactions, and reads of every
//! balance in one statement (one snapshot). The accounts spread over partitions as the table
//! splits, so transfers are distributed transactions.

use std::sync::atomic::AtomicU64;

use rand::rngs::StdRng;
use rand::Rng;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{outcome_of, Workload};
use crate::check::bank::{self, BankOp};
use crate::check::Anomaly;
use crate::history::{History, Outcome};

/// The bank workload.
#[derive(Debug, Clone)]
pub struct Bank {
    /// How many accounts.
    pub accounts: u32,
    /// Each account's opening balance.
    pub opening: i64,
}

impl Default for Bank {
    fn default() -> Self {
        Bank {
            accounts: 8,
            opening: 100,
        }
    }
}

impl Bank {
    /// The sum every read must show.
    pub fn total(&self) -> i64 {
        self.opening * i64::from(self.accounts)
    }

    async fn transfer(&self, client: &Client, from: u32, to: u32, amount: i64) -> Outcome {
        let body = async {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .await?;
            let row = client
                .query_one("SELECT balance FROM bank WHERE id = $1", &[&(from as i32)])
                .await?;
            let balance: i64 = row.get(0);
            if balance < amount {
                client.batch_execute("ROLLBACK").await?;
                return Ok(false);
            }
            client
                .execute(
                    "UPDATE bank SET balance = balance - $2 WHERE id = $1",
                    &[&(from as i32), &amount],
                )
                .await?;
            client
                .execute(
                    "UPDATE bank SET balance = balance + $2 WHERE id = $1",
                    &[&(to as i32), &amount],
                )
                .await?;
            Ok::<bool, tokio_postgres::Error>(true)
        };
        match body.await {
            Ok(false) => return Outcome::Fail,
            Ok(true) => {}
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return outcome_of(&e, false);
            }
        }
        match client.batch_execute("COMMIT").await {
            Ok(()) => Outcome::Ok,
            Err(e) => outcome_of(&e, true),
        }
    }

    async fn read(&self, client: &Client) -> Option<Vec<i64>> {
        let messages = client
            .simple_query("SELECT id, balance FROM bank ORDER BY id")
            .await
            .ok()?;
        let balances = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(1).and_then(|v| v.parse().ok()),
                _ => None,
            })
            .collect();
        Some(balances)
    }
}

impl Workload for Bank {
    type Value = BankOp;

    async fn setup(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        client
            .batch_execute("DROP TABLE IF EXISTS bank; CREATE TABLE bank (id integer PRIMARY KEY, balance bigint NOT NULL)")
            .await?;
        client
            .execute(
                "INSERT INTO bank SELECT g, $2 FROM generate_series(0, $1) AS g",
                &[&(self.accounts as i32 - 1), &self.opening],
            )
            .await?;
        Ok(())
    }

    fn generate(&self, rng: &mut StdRng, _unique: &AtomicU64) -> BankOp {
        if rng.random_bool(0.3) {
            return BankOp::Read(None);
        }
        let from = rng.random_range(0..self.accounts);
        let to = (from + rng.random_range(1..self.accounts)) % self.accounts;
        BankOp::Transfer {
            from,
            to,
            amount: rng.random_range(1..=5),
        }
    }

    async fn invoke(&self, client: &Client, op: BankOp) -> (Outcome, BankOp) {
        match op {
            BankOp::Read(_) => match self.read(client).await {
                Some(balances) => (Outcome::Ok, BankOp::Read(Some(balances))),
                None => (Outcome::Fail, BankOp::Read(None)),
            },
            BankOp::Transfer { from, to, amount } => {
                (self.transfer(client, from, to, amount).await, op)
            }
        }
    }

    fn final_reads(&self) -> Vec<BankOp> {
        vec![BankOp::Read(None)]
    }

    fn check(&self, history: &History<BankOp>) -> Vec<Anomaly> {
        bank::check(history, self.total(), false)
    }

    fn writes(&self, op: &BankOp) -> Vec<u64> {
        match op {
            BankOp::Transfer { from, to, .. } => vec![u64::from(*from), u64::from(*to)],
            BankOp::Read(_) => Vec::new(),
        }
    }
}
