//! The bank workload: transfers between accounts, and reads of every balance in one snapshot.
//! Every read must sum to the total the accounts started with, and (when the workload never
//! overdraws) show no negative balance.

use serde::{Deserialize, Serialize};

use super::Anomaly;
use crate::history::{History, Outcome};

/// A bank operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BankOp {
    /// Moves `amount` from one account to another (never below zero).
    Transfer {
        /// The account debited.
        from: u32,
        /// The account credited.
        to: u32,
        /// How much.
        amount: i64,
    },
    /// Reads every balance in one snapshot (`None` until it completed).
    Read(Option<Vec<i64>>),
}

/// Checks every completed read against `total`; with `allow_negative` false, also that no
/// balance is negative.
pub fn check(history: &History<BankOp>, total: i64, allow_negative: bool) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    for op in history.iter().filter(|op| op.outcome == Outcome::Ok) {
        let BankOp::Read(Some(balances)) = &op.value else {
            continue;
        };
        let sum: i64 = balances.iter().sum();
        if sum != total {
            anomalies.push(Anomaly::new(
                "wrong-total",
                format!(
                    "process {} read {balances:?} at {} ns: total {sum}, expected {total}",
                    op.process, op.invoke_ns
                ),
            ));
        }
        if !allow_negative && balances.iter().any(|b| *b < 0) {
            anomalies.push(Anomaly::new(
                "negative-balance",
                format!(
                    "process {} read {balances:?} at {} ns",
                    op.process, op.invoke_ns
                ),
            ));
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn read(balances: Vec<i64>) -> Op<BankOp> {
        Op {
            process: 1,
            invoke_ns: 10,
            complete_ns: 20,
            outcome: Outcome::Ok,
            value: BankOp::Read(Some(balances)),
        }
    }

    #[test]
    fn reads_that_keep_the_total_pass() {
        let history = vec![read(vec![50, 50]), read(vec![40, 60]), read(vec![100, 0])];
        assert!(check(&history, 100, false).is_empty());
    }

    #[test]
    fn a_partial_transfer_and_an_overdraft_are_found() {
        // Read skew: the debit is seen without the credit.
        let history = vec![read(vec![50, 50]), read(vec![40, 50]), read(vec![110, -10])];
        let kinds: Vec<String> = check(&history, 100, false)
            .into_iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, ["wrong-total", "negative-balance"]);
        assert_eq!(check(&history, 100, true).len(), 1);
    }

    #[test]
    fn failed_and_unknown_reads_are_not_judged() {
        let mut bad = read(vec![1, 2]);
        bad.outcome = Outcome::Info;
        assert!(check(&vec![bad], 100, false).is_empty());
    }
}
