//! Timestamp oracles.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use reef_common::{compose_ts, ts_logical, ts_physical_ms, Timestamp, TSO_STEP, TS_LOGICAL_MASK};
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{Result, TxnError};

/// A source of strictly increasing timestamps.
pub trait TimestampOracle: Send + Sync {
    /// Returns a timestamp greater than every timestamp returned before, by any caller.
    fn get_ts(&self) -> Result<Timestamp>;
}

/// The allocation state of an oracle that hands out timestamps from memory below a persisted
/// limit: every timestamp it returns is greater than every one before and below `limit`.
///
/// It follows the wall clock, `compose_ts(now_ms, logical)`, and never goes backwards: if the
/// clock stalls or goes back it counts the logical part up, in steps of [`TSO_STEP`] (every
/// timestamp it hands out has an even logical part), borrowing the next millisecond when the
/// counter is exhausted. When a request would reach the limit, [`TsoWindow::next`] returns
/// the new limit to persist instead; the caller persists it (synced, or through consensus) and
/// calls [`TsoWindow::set_limit`]. An oracle that restarts, or a new leader, resumes above the
/// persisted limit ([`TsoWindow::resume`]), so timestamps keep increasing across restarts and
/// leader changes whatever the clocks do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsoWindow {
    /// The last timestamp handed out.
    last: Timestamp,
    /// The persisted bound: every timestamp handed out is below it.
    limit: Timestamp,
    /// How far ahead of the handed-out timestamps a new limit is placed.
    window_ms: u64,
}

impl TsoWindow {
    /// Resumes above `persisted`, the last persisted limit (0: none), with new limits placed
    /// `window_ms` (at least 1) ahead.
    pub fn resume(persisted: Timestamp, window_ms: u64) -> TsoWindow {
        TsoWindow {
            last: persisted,
            limit: persisted,
            window_ms: window_ms.max(1),
        }
    }

    /// Returns the first of `count` (at least 1) new timestamps, `first + i * TSO_STEP` for `i`
    /// below `count`, or `Err(limit)` when they would reach the persisted limit: persist
    /// `limit`, call [`TsoWindow::set_limit`] and ask again.
    pub fn next(&mut self, now_ms: u64, count: u64) -> std::result::Result<Timestamp, Timestamp> {
        let count = count.max(1);
        let span = TSO_STEP * (count - 1);
        let last_physical = ts_physical_ms(self.last);
        // The next even logical value after the last one handed out.
        let next_logical = (ts_logical(self.last) | (TSO_STEP - 1)) + 1;
        let first = if now_ms > last_physical {
            compose_ts(now_ms, 0)
        } else if next_logical + span <= TS_LOGICAL_MASK {
            compose_ts(last_physical, next_logical)
        } else {
            compose_ts(last_physical + 1, 0)
        };
        let last = first.saturating_add(span);
        if last >= self.limit {
            return Err(compose_ts(ts_physical_ms(last) + self.window_ms, 0));
        }
        self.last = last;
        Ok(first)
    }

    /// Records that `limit` is persisted.
    pub fn set_limit(&mut self, limit: Timestamp) {
        self.limit = self.limit.max(limit);
    }

    /// Returns the persisted limit.
    pub fn limit(&self) -> Timestamp {
        self.limit
    }
}

/// Returns the wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A timestamp oracle for a single node, persisted in `Cf::Meta`.
///
/// A [`TsoWindow`] whose limit is persisted, synced, [`LocalTso::DEFAULT_WINDOW_MS`] ahead of
/// what it hands out; only crossing the limit costs an fsync, about once per window.
pub struct LocalTso {
    engine: Arc<dyn Engine>,
    window: Mutex<TsoWindow>,
}

impl LocalTso {
    /// The `Cf::Meta` key holding the persisted bound (a big-endian u64 timestamp).
    pub const META_KEY: &'static [u8] = b"tso/limit";
    /// How far ahead of the handed-out timestamps the persisted bound is kept.
    pub const DEFAULT_WINDOW_MS: u64 = 3000;

    /// Opens the oracle stored in `engine`.
    pub fn open(engine: Arc<dyn Engine>) -> Result<LocalTso> {
        LocalTso::with_window(engine, LocalTso::DEFAULT_WINDOW_MS)
    }

    /// Opens the oracle with a persisted window of `window_ms` milliseconds (at least 1).
    pub fn with_window(engine: Arc<dyn Engine>, window_ms: u64) -> Result<LocalTso> {
        let persisted = match engine.get(Cf::Meta, LocalTso::META_KEY)? {
            Some(raw) => {
                let bytes: [u8; 8] = raw.as_slice().try_into().map_err(|_| {
                    TxnError::Corruption(format!("timestamp oracle bound has {} bytes", raw.len()))
                })?;
                u64::from_be_bytes(bytes)
            }
            None => 0,
        };
        Ok(LocalTso {
            engine,
            window: Mutex::new(TsoWindow::resume(persisted, window_ms)),
        })
    }
}

impl TimestampOracle for LocalTso {
    fn get_ts(&self) -> Result<Timestamp> {
        let mut window = self.window.lock();
        loop {
            match window.next(now_ms(), 1) {
                Ok(ts) => return Ok(ts),
                Err(limit) => {
                    let mut batch = WriteBatch::new();
                    batch.put(Cf::Meta, LocalTso::META_KEY, &limit.to_be_bytes());
                    self.engine.write(&batch, true)?;
                    window.set_limit(limit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_the_clock_and_never_goes_back() {
        let mut w = TsoWindow::resume(0, 1000);
        // Nothing is persisted yet: the first request asks for a limit a window ahead.
        assert_eq!(w.next(5000, 1), Err(compose_ts(6000, 0)));
        w.set_limit(compose_ts(6000, 0));
        let a = w.next(5000, 1).unwrap();
        assert_eq!(a, compose_ts(5000, 0));
        // The clock stalls, then goes back: the logical part counts up, in even steps.
        let b = w.next(5000, 3).unwrap();
        assert_eq!(b, a + 2);
        let c = w.next(4000, 1).unwrap();
        assert_eq!(c, b + 6);
        assert!([a, b, c].iter().all(|ts| ts_logical(*ts) % 2 == 0));
        // Reaching the limit asks for a new one instead of handing out past it.
        assert_eq!(w.next(6500, 1), Err(compose_ts(7500, 0)));
        w.set_limit(compose_ts(7500, 0));
        assert_eq!(w.next(6500, 1), Ok(compose_ts(6500, 0)));
        // A restart (or a new leader) resumes above the persisted limit even if the clock is
        // far behind it.
        let mut resumed = TsoWindow::resume(w.limit(), 1000);
        resumed.set_limit(compose_ts(9000, 0));
        let d = resumed.next(100, 1).unwrap();
        assert!(d > compose_ts(7500, 0), "{d} must be above the old limit");
    }

    #[test]
    fn exhausted_logical_counter_borrows_the_next_millisecond() {
        let mut w = TsoWindow::resume(compose_ts(10, TS_LOGICAL_MASK), 1000);
        w.set_limit(compose_ts(2000, 0));
        assert_eq!(w.next(5, 1), Ok(compose_ts(11, 0)));
        // A batch that does not fit in what is left of a millisecond starts the next one.
        let mut w = TsoWindow::resume(compose_ts(10, TS_LOGICAL_MASK - 5), 1000);
        w.set_limit(compose_ts(2000, 0));
        assert_eq!(w.next(5, 3), Ok(compose_ts(11, 0)));
    }

    #[test]
    fn oracle_and_one_phase_timestamps_never_meet() {
        let mut w = TsoWindow::resume(0, 1000);
        w.set_limit(compose_ts(2000, 0));
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..50 {
            let first = w.next(1000 + round / 10, 1 + round % 4).unwrap();
            for i in 0..1 + round % 4 {
                let ts = first + i * TSO_STEP;
                assert!(seen.insert(ts), "{ts} handed out twice");
                assert_eq!(ts % 2, 0, "oracle timestamps are even");
                let one_phase = reef_common::one_phase_commit_ts(ts);
                assert!(one_phase > ts && one_phase % 2 == 1);
            }
        }
    }
}
