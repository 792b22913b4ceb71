//! The top-level layout of the key space, which every layer shares.
//!
//! | first byte | owner                                   | partition                         |
//! |------------|-----------------------------------------|-----------------------------------|
//! | `0x00`     | the root group (raw records)            | partition 1, never split          |
//! | `0x01`     | metadata: the transaction layer's keys (`0x01 0x00 ...`) and the SQL catalog | data partitions |
//! | `0x02`     | SQL table and index data                | data partitions                   |

/// The end of the system key range `["", SYSTEM_END)`, which the root group's partition owns
/// and which never splits; every other key starts at or after it.
pub const SYSTEM_END: &[u8] = &[0x01];

/// The prefix of the transaction layer's own keys (inside the metadata range, before every
/// SQL catalog key).
pub const TXN_PREFIX: &[u8] = &[0x01, 0x00];
