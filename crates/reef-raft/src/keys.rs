//! The layout of the `raft` column family.
//!
//! Every key starts with a one-byte tag; partition ids and log indexes follow as big-endian
//! `u64`s, so one partition's log entries are contiguous and ordered by index:
//!
//! * `I` → the node's identity ([`StoreIdent`](crate::state::StoreIdent)).
//! * `N` → the last id the node allocated for a partition or replica it created.
//! * `L <partition> <index>` → a Raft log entry (raft-rs `Entry`, protobuf-encoded).
//! * `S <partition>` → the partition's [`RaftLocalState`](crate::state::RaftLocalState).
//! * `A <partition>` → the partition's [`ApplyState`](crate::state::ApplyState).
//! * `P <partition>` → the partition's [`PartitionState`](crate::state::PartitionState).
//!
//! Partition states sit under their own prefix so that a restarting node finds every replica it
//! hosts without reading any log.

/// The key of the node's identity.
pub const STORE_IDENT: &[u8] = b"I";
/// The key of the node's id allocator (the last id handed out).
pub const ID_ALLOC: &[u8] = b"N";

const LOG: u8 = b'L';
const RAFT_STATE: u8 = b'S';
const APPLY_STATE: u8 = b'A';
const PARTITION: u8 = b'P';

fn tagged(tag: u8, partition_id: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = tag;
    key[1..].copy_from_slice(&partition_id.to_be_bytes());
    key
}

/// Returns the key of log entry `index` of a partition.
pub fn log_key(partition_id: u64, index: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..9].copy_from_slice(&tagged(LOG, partition_id));
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Returns the log index in a key written by [`log_key`].
pub fn log_index(key: &[u8]) -> Option<u64> {
    (key.len() == 17 && key[0] == LOG).then(|| u64::from_be_bytes(key[9..].try_into().unwrap()))
}

/// Returns the key of a partition's Raft hard state and log bounds.
pub fn raft_state_key(partition_id: u64) -> [u8; 9] {
    tagged(RAFT_STATE, partition_id)
}

/// Returns the key of a partition's apply progress.
pub fn apply_state_key(partition_id: u64) -> [u8; 9] {
    tagged(APPLY_STATE, partition_id)
}

/// Returns the key of a partition's descriptor and status.
pub fn partition_key(partition_id: u64) -> [u8; 9] {
    tagged(PARTITION, partition_id)
}

/// Returns the bounds `[start, end)` of every partition state key.
pub fn partition_keys_range() -> ([u8; 1], [u8; 1]) {
    ([PARTITION], [PARTITION + 1])
}

/// Returns the partition id in a key written by [`partition_key`].
pub fn partition_id_of(key: &[u8]) -> Option<u64> {
    (key.len() == 9 && key[0] == PARTITION)
        .then(|| u64::from_be_bytes(key[1..].try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_partition_then_index() {
        assert!(log_key(1, 9) < log_key(1, 10));
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert_eq!(log_index(&log_key(7, 300)), Some(300));
        assert_eq!(partition_id_of(&partition_key(42)), Some(42));
        let (start, end) = partition_keys_range();
        assert!(start.as_slice() <= partition_key(0).as_slice());
        assert!(partition_key(u64::MAX).as_slice() < end.as_slice());
    }
}
