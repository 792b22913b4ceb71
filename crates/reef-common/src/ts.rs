//! Hybrid timestamps: physical milliseconds plus a logical counter.

/// A transaction timestamp: `physical_ms << 18 | logical`.
///
/// Timestamps are totally ordered as plain integers, which is what MVCC visibility relies on.
pub type Timestamp = u64;

/// The number of low bits of a [`Timestamp`] that hold the logical counter.
pub const TS_LOGICAL_BITS: u32 = 18;

/// The mask selecting the logical counter of a [`Timestamp`].
pub const TS_LOGICAL_MASK: u64 = (1 << TS_LOGICAL_BITS) - 1;

/// The distance between consecutive timestamps a timestamp oracle hands out: every one it
/// hands out has an even logical part. The odd ones are left to the commit timestamps
/// partition leaders choose for one-phase commits (see [`one_phase_commit_ts`]), so the two
/// never collide on one key: a start timestamp (which keys rollback records) or an oracle
/// commit timestamp is never a one-phase commit timestamp.
pub const TSO_STEP: u64 = 2;

/// The one-phase commit timestamp a partition leader picks above `floor` (its start
/// timestamp, or a timestamp it served a read at): the smallest odd timestamp above it.
pub fn one_phase_commit_ts(floor: Timestamp) -> Timestamp {
    (floor + 1) | 1
}

/// Composes a timestamp from milliseconds since the Unix epoch and a logical counter.
///
/// The logical part is truncated to [`TS_LOGICAL_BITS`] bits; callers keep it below
/// `1 << TS_LOGICAL_BITS`.
pub fn compose_ts(physical_ms: u64, logical: u64) -> Timestamp {
    (physical_ms << TS_LOGICAL_BITS) | (logical & TS_LOGICAL_MASK)
}

/// Returns the physical (milliseconds since the Unix epoch) part of a timestamp.
pub fn ts_physical_ms(ts: Timestamp) -> u64 {
    ts >> TS_LOGICAL_BITS
}

/// The timestamp `ms` milliseconds (of physical time) after `ts`, logical part 0.
pub fn ts_after_ms(ts: Timestamp, ms: u64) -> Timestamp {
    compose_ts(ts_physical_ms(ts).saturating_add(ms), 0)
}

/// Returns the logical counter part of a timestamp.
pub fn ts_logical(ts: Timestamp) -> u64 {
    ts & TS_LOGICAL_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_and_split() {
        let ts = compose_ts(1_700_000_000_123, 42);
        assert_eq!(ts_physical_ms(ts), 1_700_000_000_123);
        assert_eq!(ts_logical(ts), 42);
        assert!(compose_ts(5, TS_LOGICAL_MASK) < compose_ts(6, 0));
    }
}
