//! Timestamp oracles.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use reef_common::{compose_ts, ts_logical, ts_physical_ms, Timestamp, TS_LOGICAL_MASK};
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{Result, TxnError};

/// A source of strictly increasing timestamps.
pub trait TimestampOracle: Send + Sync {
    /// Returns a timestamp greater than every timestamp returned before, by any caller.
    fn get_ts(&self) -> Result<Timestamp>;
}

/// A timestamp oracle for a single node, persisted in `Cf::Meta`.
///
/// It hands out `compose_ts(now_ms, logical)`, never going backwards: if the wall clock stalls or
/// goes back, it keeps the last physical time and counts the logical part up (borrowing the next
/// millisecond when the counter is exhausted). It persists, synced, an upper bound
/// [`LocalTso::DEFAULT_WINDOW_MS`] ahead of what it hands out, and a reopened oracle starts above
/// the persisted bound, so timestamps keep increasing across restarts even if the clock went
/// back. Only crossing the bound costs an fsync, about once per window.
pub struct LocalTso {
    engine: Arc<dyn Engine>,
    window_ms: u64,
    state: Mutex<TsoState>,
}

struct TsoState {
    /// The last timestamp handed out.
    last: Timestamp,
    /// The persisted bound: every timestamp handed out is below it.
    limit: Timestamp,
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
        // Everything handed out before the restart was below `persisted`; start at it.
        let state = TsoState {
            last: persisted,
            limit: persisted,
        };
        Ok(LocalTso {
            engine,
            window_ms: window_ms.max(1),
            state: Mutex::new(state),
        })
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl TimestampOracle for LocalTso {
    fn get_ts(&self) -> Result<Timestamp> {
        let now = LocalTso::now_ms();
        let mut state = self.state.lock();
        let last_physical = ts_physical_ms(state.last);
        let ts = if now > last_physical {
            compose_ts(now, 0)
        } else if ts_logical(state.last) < TS_LOGICAL_MASK {
            state.last + 1
        } else {
            compose_ts(last_physical + 1, 0)
        };
        if ts >= state.limit {
            let limit = compose_ts(ts_physical_ms(ts) + self.window_ms, 0);
            let mut batch = WriteBatch::new();
            batch.put(Cf::Meta, LocalTso::META_KEY, &limit.to_be_bytes());
            self.engine.write(&batch, true)?;
            state.limit = limit;
        }
        state.last = ts;
        Ok(ts)
    }
}
