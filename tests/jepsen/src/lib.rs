//! Jepsen-style fault testing for reefdb.
//!
//! This crate sits outside the database, beside `reef-testkit`: it drives real `reef`
//! processes through the PostgreSQL wire protocol while faults are injected, records what every
//! client asked and heard as a [`history::History`], and checks the history afterwards. It
//! depends on no reef crate, so what it checks is only what a user's application could see.
//!
//! The checkers ([`check`]) are pure functions of a history and are tested on handcrafted
//! anomalous histories, so a checker that cannot find an anomaly is itself a failing test:
//!
//! - [`check::bank`]: every read of all accounts sums to the constant, none is negative.
//! - [`check::register`]: per-key reads, writes and compare-and-sets are linearizable
//!   (Wing–Gong with Lowe's memoization).
//! - [`check::append`]: list-append transactions lose no acknowledged write and their
//!   dependency graph has no G0, G1a, G1b, G1c or G-single cycle (Elle's approach), the
//!   anomalies snapshot isolation forbids.
//!
//! See [docs/architecture/reef-jepsen.md](../../../docs/architecture/reef-jepsen.md).

pub mod check;
pub mod cluster;
pub mod error;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod plot;
pub mod report;
pub mod run;
pub mod workload;

pub use error::{Error, Result};
