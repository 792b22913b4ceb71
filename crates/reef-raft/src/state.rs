//! The persistent records of a replica: the partition descriptor, the Raft hard state and log
//! bounds, the apply progress and the node's identity, with their binary encodings.
//!
//! Records are varints and length-prefixed byte strings behind a one-byte version tag. Decoding
//! validates everything and reports [`RaftError::Corruption`] instead of panicking.

use std::fmt;

use raft::prelude::{ConfState, HardState};
use reef_common::codec::{decode_var_u64, encode_var_u64};

use crate::error::{RaftError, Result};

/// The log index and term that a bootstrapped or split-created partition starts at. A leader
/// has no entry at or below it, so a brand-new empty replica can only be filled by a snapshot.
pub const INIT_INDEX: u64 = 5;
/// The term of [`INIT_INDEX`].
pub const INIT_TERM: u64 = 5;

/// A partition's version: `version` grows with every split, `conf_ver` with every membership
/// change. A request or command carrying an older epoch is refused with `EpochMismatch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Epoch {
    /// Bumped by membership changes.
    pub conf_ver: u64,
    /// Bumped by splits.
    pub version: u64,
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conf_ver {} version {}", self.conf_ver, self.version)
    }
}

/// One replica of a partition: its Raft peer id (unique in the cluster, never reused) and the
/// node that hosts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Replica {
    /// The Raft peer id.
    pub id: u64,
    /// The hosting node.
    pub node_id: u64,
    /// True for a learner, which receives the log but does not vote.
    pub learner: bool,
}

impl Replica {
    /// Creates a voting replica.
    pub fn voter(id: u64, node_id: u64) -> Replica {
        Replica {
            id,
            node_id,
            learner: false,
        }
    }
}

/// A partition: the user keys in `[start, end)` (an empty `end` is unbounded), replicated by a
/// Raft group of `replicas`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    /// The partition id (unique in the cluster, never reused).
    pub id: u64,
    /// The first user key of the partition.
    pub start: Vec<u8>,
    /// The first user key after the partition; empty means no end.
    pub end: Vec<u8>,
    /// The partition's epoch.
    pub epoch: Epoch,
    /// The replicas, voters and learners.
    pub replicas: Vec<Replica>,
}

impl Partition {
    /// Returns the first partition of a new cluster: id 1, every key, one voter per founding
    /// node, whose replica id is the node id.
    pub fn first(node_ids: &[u64]) -> Partition {
        Partition {
            id: 1,
            start: Vec::new(),
            end: Vec::new(),
            epoch: Epoch {
                conf_ver: 1,
                version: 1,
            },
            replicas: node_ids.iter().map(|&id| Replica::voter(id, id)).collect(),
        }
    }

    /// Returns true if `key` lies in the partition.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }

    /// Returns true if the user key range `[start, end)` (empty `end`: unbounded) lies in the
    /// partition.
    pub fn contains_range(&self, start: &[u8], end: &[u8]) -> bool {
        start >= self.start.as_slice()
            && (self.end.is_empty() || (!end.is_empty() && end <= self.end.as_slice()))
    }

    /// Returns true if a read of `[start, end)` stays in the partition; an empty `end` reads
    /// to the partition's end.
    pub fn serves_read(&self, start: &[u8], end: &[u8]) -> bool {
        if end.is_empty() {
            self.contains(start)
        } else {
            self.contains_range(start, end)
        }
    }

    /// Returns true if the partition's range and `[start, end)` share a key.
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        (end.is_empty() || self.start.as_slice() < end)
            && (self.end.is_empty() || start < self.end.as_slice())
    }

    /// Returns the replica with Raft peer id `id`.
    pub fn replica(&self, id: u64) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.id == id)
    }

    /// Returns the replica hosted on node `node_id`.
    pub fn replica_on(&self, node_id: u64) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.node_id == node_id)
    }

    /// Returns the Raft configuration the replica list describes.
    pub fn conf_state(&self) -> ConfState {
        let mut cs = ConfState::default();
        for r in &self.replicas {
            if r.learner {
                cs.learners.push(r.id);
            } else {
                cs.voters.push(r.id);
            }
        }
        cs
    }

    /// Appends the descriptor's binary form.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        encode_var_u64(buf, self.id);
        put_bytes(buf, &self.start);
        put_bytes(buf, &self.end);
        encode_var_u64(buf, self.epoch.conf_ver);
        encode_var_u64(buf, self.epoch.version);
        encode_var_u64(buf, self.replicas.len() as u64);
        for r in &self.replicas {
            encode_var_u64(buf, r.id);
            encode_var_u64(buf, r.node_id);
            buf.push(r.learner as u8);
        }
    }

    /// Decodes a descriptor written by [`Partition::encode`] from the front of `input`.
    pub fn decode_from(input: &mut &[u8]) -> Result<Partition> {
        let id = var(input)?;
        let start = take_bytes(input)?.to_vec();
        let end = take_bytes(input)?.to_vec();
        let epoch = Epoch {
            conf_ver: var(input)?,
            version: var(input)?,
        };
        let count = var(input)?;
        if count > input.len() as u64 {
            return Err(corrupt("replica count exceeds the record"));
        }
        let mut replicas = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let id = var(input)?;
            let node_id = var(input)?;
            let learner = match take_u8(input)? {
                0 => false,
                1 => true,
                other => return Err(corrupt(&format!("bad learner flag {other}"))),
            };
            replicas.push(Replica {
                id,
                node_id,
                learner,
            });
        }
        Ok(Partition {
            id,
            start,
            end,
            epoch,
            replicas,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} ['{}', '{}') epoch {}/{}",
            self.id,
            self.start.escape_ascii(),
            self.end.escape_ascii(),
            self.epoch.conf_ver,
            self.epoch.version
        )
    }
}

/// Whether a hosted partition is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionStatus {
    /// The replica serves.
    Normal,
    /// A snapshot is being installed; a restart finding this status redoes the install.
    Applying,
    /// The replica was removed; the record only keeps stale messages from recreating it.
    Tombstone {
        /// The membership version as of which the replica is known to be removed. A sender at
        /// or below it has not seen the removal: its messages may address the destroyed
        /// replica, which must not come back with an empty log (it could vote twice and help a
        /// stale membership to a second history).
        removed_at: u64,
    },
}

/// A hosted partition's persistent record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// Whether the replica is usable.
    pub status: PartitionStatus,
    /// The descriptor.
    pub partition: Partition,
}

impl PartitionState {
    /// Returns the record's binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![
            VERSION,
            match self.status {
                PartitionStatus::Normal => 0,
                PartitionStatus::Applying => 1,
                PartitionStatus::Tombstone { .. } => 3,
            },
        ];
        self.partition.encode(&mut buf);
        if let PartitionStatus::Tombstone { removed_at } = self.status {
            encode_var_u64(&mut buf, removed_at);
        }
        buf
    }

    /// Decodes a record written by [`PartitionState::encode`].
    pub fn decode(mut input: &[u8]) -> Result<PartitionState> {
        let input = &mut input;
        expect_version(input)?;
        let status = take_u8(input)?;
        let partition = Partition::decode_from(input)?;
        let status = match status {
            0 => PartitionStatus::Normal,
            1 => PartitionStatus::Applying,
            // A tombstone written before `removed_at` existed: its descriptor's version.
            2 => PartitionStatus::Tombstone {
                removed_at: partition.epoch.conf_ver,
            },
            3 => PartitionStatus::Tombstone {
                removed_at: take_var(input)?,
            },
            other => return Err(corrupt(&format!("bad partition status {other}"))),
        };
        expect_end(input)?;
        Ok(PartitionState { status, partition })
    }
}

/// A replica's Raft hard state and the bounds of its log, written with every appended batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftLocalState {
    /// The current term.
    pub term: u64,
    /// The peer voted for in `term` (0: none).
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
    /// The index of the last log entry (or of the snapshot, if the log is empty).
    pub last_index: u64,
    /// The term of `last_index`.
    pub last_term: u64,
}

impl RaftLocalState {
    /// The state a bootstrapped or split-created replica starts with.
    pub fn initial() -> RaftLocalState {
        RaftLocalState {
            term: INIT_TERM,
            vote: 0,
            commit: INIT_INDEX,
            last_index: INIT_INDEX,
            last_term: INIT_TERM,
        }
    }

    /// Returns the hard state part.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.commit,
            ..HardState::default()
        }
    }

    /// Returns the record's binary form.
    pub fn encode(&self) -> Vec<u8> {
        encode_u64s(&[
            self.term,
            self.vote,
            self.commit,
            self.last_index,
            self.last_term,
        ])
    }

    /// Decodes a record written by [`RaftLocalState::encode`].
    pub fn decode(input: &[u8]) -> Result<RaftLocalState> {
        let [term, vote, commit, last_index, last_term] = decode_u64s(input)?;
        Ok(RaftLocalState {
            term,
            vote,
            commit,
            last_index,
            last_term,
        })
    }
}

/// How far a replica has applied its log, and where the log was truncated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyState {
    /// The last applied index.
    pub applied_index: u64,
    /// The term of `applied_index`.
    pub applied_term: u64,
    /// The last index removed from the log (entries start at `truncated_index + 1`).
    pub truncated_index: u64,
    /// The term of `truncated_index`.
    pub truncated_term: u64,
}

impl ApplyState {
    /// The state a bootstrapped or split-created replica starts with.
    pub fn initial() -> ApplyState {
        ApplyState {
            applied_index: INIT_INDEX,
            applied_term: INIT_TERM,
            truncated_index: INIT_INDEX,
            truncated_term: INIT_TERM,
        }
    }

    /// Returns the record's binary form.
    pub fn encode(&self) -> Vec<u8> {
        encode_u64s(&[
            self.applied_index,
            self.applied_term,
            self.truncated_index,
            self.truncated_term,
        ])
    }

    /// Decodes a record written by [`ApplyState::encode`].
    pub fn decode(input: &[u8]) -> Result<ApplyState> {
        let [applied_index, applied_term, truncated_index, truncated_term] = decode_u64s(input)?;
        Ok(ApplyState {
            applied_index,
            applied_term,
            truncated_index,
            truncated_term,
        })
    }
}

/// The identity a node's data directory was created with: a data directory is never reused by
/// another cluster or under another node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreIdent {
    /// The cluster id.
    pub cluster_id: u64,
    /// The node id.
    pub node_id: u64,
}

impl StoreIdent {
    /// Returns the record's binary form.
    pub fn encode(&self) -> Vec<u8> {
        encode_u64s(&[self.cluster_id, self.node_id])
    }

    /// Reads the identity a data directory was created with, if any.
    pub fn load(engine: &dyn reef_storage::Engine) -> Result<Option<StoreIdent>> {
        engine
            .get(reef_storage::Cf::Raft, crate::keys::STORE_IDENT)?
            .map(|raw| StoreIdent::decode(&raw))
            .transpose()
    }

    /// Decodes a record written by [`StoreIdent::encode`].
    pub fn decode(input: &[u8]) -> Result<StoreIdent> {
        let [cluster_id, node_id] = decode_u64s(input)?;
        Ok(StoreIdent {
            cluster_id,
            node_id,
        })
    }
}

const VERSION: u8 = 1;

fn corrupt(what: &str) -> RaftError {
    RaftError::Corruption(what.to_string())
}

fn var(input: &mut &[u8]) -> Result<u64> {
    decode_var_u64(input).map_err(|err| corrupt(&err.to_string()))
}

fn take_u8(input: &mut &[u8]) -> Result<u8> {
    let (&byte, rest) = input
        .split_first()
        .ok_or_else(|| corrupt("record ends early"))?;
    *input = rest;
    Ok(byte)
}

fn expect_version(input: &mut &[u8]) -> Result<()> {
    match take_u8(input)? {
        VERSION => Ok(()),
        other => Err(corrupt(&format!("unknown record version {other}"))),
    }
}

fn expect_end(input: &[u8]) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(corrupt(&format!("{} trailing bytes", input.len())))
    }
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, data: &[u8]) {
    reef_common::codec::encode_len_prefixed(buf, data);
}

/// Takes a length-prefixed byte string from the front of `input`.
pub(crate) fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    reef_common::codec::decode_len_prefixed(input).map_err(|err| corrupt(&err.to_string()))
}

/// Takes a varint from the front of `input`.
pub(crate) fn take_var(input: &mut &[u8]) -> Result<u64> {
    var(input)
}

fn encode_u64s(values: &[u64]) -> Vec<u8> {
    let mut buf = vec![VERSION];
    for &v in values {
        encode_var_u64(&mut buf, v);
    }
    buf
}

fn decode_u64s<const N: usize>(mut input: &[u8]) -> Result<[u64; N]> {
    let input = &mut input;
    expect_version(input)?;
    let mut out = [0u64; N];
    for v in out.iter_mut() {
        *v = var(input)?;
    }
    expect_end(input)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn partition() -> impl Strategy<Value = Partition> {
        (
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..8),
            any::<(u64, u64)>(),
            proptest::collection::vec(any::<(u64, u64, bool)>(), 0..5),
        )
            .prop_map(
                |(id, start, end, (conf_ver, version), replicas)| Partition {
                    id,
                    start,
                    end,
                    epoch: Epoch { conf_ver, version },
                    replicas: replicas
                        .into_iter()
                        .map(|(id, node_id, learner)| Replica {
                            id,
                            node_id,
                            learner,
                        })
                        .collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn partition_state_roundtrips(partition in partition(), status in 0u8..3, removed_at: u64) {
            let status = [
                PartitionStatus::Normal,
                PartitionStatus::Applying,
                PartitionStatus::Tombstone { removed_at },
            ][status as usize];
            let state = PartitionState { status, partition };
            let raw = state.encode();
            prop_assert_eq!(PartitionState::decode(&raw).unwrap(), state);
            for cut in 0..raw.len() {
                prop_assert!(PartitionState::decode(&raw[..cut]).is_err());
            }
        }

        #[test]
        fn states_roundtrip(v in any::<[u64; 5]>()) {
            let rs = RaftLocalState { term: v[0], vote: v[1], commit: v[2], last_index: v[3], last_term: v[4] };
            prop_assert_eq!(RaftLocalState::decode(&rs.encode()).unwrap(), rs);
            let aps = ApplyState { applied_index: v[0], applied_term: v[1], truncated_index: v[2], truncated_term: v[3] };
            prop_assert_eq!(ApplyState::decode(&aps.encode()).unwrap(), aps);
            prop_assert!(ApplyState::decode(&rs.encode()).is_err());
        }

        #[test]
        fn garbage_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = PartitionState::decode(&raw);
            let _ = RaftLocalState::decode(&raw);
        }
    }

    #[test]
    fn ranges() {
        let p = Partition {
            start: b"b".to_vec(),
            end: b"d".to_vec(),
            ..Partition::default()
        };
        assert!(p.contains(b"b") && p.contains(b"c\xff") && !p.contains(b"d") && !p.contains(b"a"));
        assert!(
            p.contains_range(b"b", b"d")
                && !p.contains_range(b"b", b"")
                && !p.contains_range(b"a", b"c")
        );
        assert!(
            p.overlaps(b"a", b"c")
                && p.overlaps(b"c", b"")
                && !p.overlaps(b"d", b"")
                && !p.overlaps(b"", b"b")
        );
        let all = Partition::default();
        assert!(all.contains(b"") && all.contains_range(b"", b"") && all.overlaps(b"x", b"y"));
    }
}
