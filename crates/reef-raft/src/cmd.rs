//! The commands a partition's Raft log carries, and their binary form.
//!
//! Normal entries hold a [`RaftCmd`]: a header naming the partition and the epoch the proposer
//! saw, then either a Percolator [`Command`] or an admin command (split, log compaction).
//! Membership changes travel as raft-rs `ConfChangeV2` entries whose context is a
//! [`ChangeContext`].

use reef_common::codec::encode_var_u64;
use reef_txn::Command;

use crate::error::{RaftError, Result};
use crate::state::{put_bytes, take_bytes, take_var, Epoch, Replica};

/// A command in a normal Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftCmd {
    /// The partition the proposer addressed.
    pub partition_id: u64,
    /// The partition epoch the proposer saw; checked again when the entry is applied.
    pub epoch: Epoch,
    /// What to do.
    pub body: CmdBody,
}

/// The body of a [`RaftCmd`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdBody {
    /// A Percolator command on the partition's keys.
    Txn(Command),
    /// Splits the partition at `split_key`: the partition keeps `[start, split_key)` and a new
    /// partition takes `[split_key, end)`, with one new replica per existing replica, on the
    /// same nodes, in the same order.
    Split {
        /// The first key of the new partition.
        split_key: Vec<u8>,
        /// The new partition's id.
        new_partition_id: u64,
        /// The new partition's replica ids, one per replica of the partition, in order.
        new_replica_ids: Vec<u64>,
    },
    /// Removes the log entries up to and including `index` (whose term is `term`).
    CompactLog {
        /// The last index removed.
        index: u64,
        /// Its term.
        term: u64,
    },
}

const TXN: u8 = 1;
const SPLIT: u8 = 2;
const COMPACT_LOG: u8 = 3;

impl RaftCmd {
    /// Returns the command's binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        encode_var_u64(&mut buf, self.partition_id);
        encode_var_u64(&mut buf, self.epoch.conf_ver);
        encode_var_u64(&mut buf, self.epoch.version);
        match &self.body {
            CmdBody::Txn(cmd) => {
                buf.push(TXN);
                cmd.encode(&mut buf);
            }
            CmdBody::Split {
                split_key,
                new_partition_id,
                new_replica_ids,
            } => {
                buf.push(SPLIT);
                put_bytes(&mut buf, split_key);
                encode_var_u64(&mut buf, *new_partition_id);
                encode_var_u64(&mut buf, new_replica_ids.len() as u64);
                for id in new_replica_ids {
                    encode_var_u64(&mut buf, *id);
                }
            }
            CmdBody::CompactLog { index, term } => {
                buf.push(COMPACT_LOG);
                encode_var_u64(&mut buf, *index);
                encode_var_u64(&mut buf, *term);
            }
        }
        buf
    }

    /// Decodes a command written by [`RaftCmd::encode`].
    pub fn decode(mut input: &[u8]) -> Result<RaftCmd> {
        let input = &mut input;
        let partition_id = take_var(input)?;
        let epoch = Epoch {
            conf_ver: take_var(input)?,
            version: take_var(input)?,
        };
        let (&tag, rest) = input
            .split_first()
            .ok_or_else(|| RaftError::Corruption("command has no body".into()))?;
        *input = rest;
        let body = match tag {
            TXN => {
                return Ok(RaftCmd {
                    partition_id,
                    epoch,
                    body: CmdBody::Txn(Command::decode(input).map_err(|err| {
                        RaftError::Corruption(format!("transaction command: {err}"))
                    })?),
                })
            }
            SPLIT => {
                let split_key = take_bytes(input)?.to_vec();
                let new_partition_id = take_var(input)?;
                let count = take_var(input)?;
                if count > input.len() as u64 {
                    return Err(RaftError::Corruption(
                        "replica id count exceeds the entry".into(),
                    ));
                }
                let new_replica_ids = (0..count)
                    .map(|_| take_var(input))
                    .collect::<Result<Vec<_>>>()?;
                CmdBody::Split {
                    split_key,
                    new_partition_id,
                    new_replica_ids,
                }
            }
            COMPACT_LOG => CmdBody::CompactLog {
                index: take_var(input)?,
                term: take_var(input)?,
            },
            other => {
                return Err(RaftError::Corruption(format!(
                    "unknown command tag {other}"
                )))
            }
        };
        if !input.is_empty() {
            return Err(RaftError::Corruption("trailing bytes after command".into()));
        }
        Ok(RaftCmd {
            partition_id,
            epoch,
            body,
        })
    }
}

/// The context of a membership change entry: which partition, at which epoch, and the replica
/// added, promoted or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeContext {
    /// The partition.
    pub partition_id: u64,
    /// The epoch the proposer saw.
    pub epoch: Epoch,
    /// The replica concerned (for a removal, only `id` and `node_id` matter).
    pub replica: Replica,
}

impl ChangeContext {
    /// Returns the context's binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(32);
        for v in [
            self.partition_id,
            self.epoch.conf_ver,
            self.epoch.version,
            self.replica.id,
            self.replica.node_id,
            self.replica.learner as u64,
        ] {
            encode_var_u64(&mut buf, v);
        }
        buf
    }

    /// Decodes a context written by [`ChangeContext::encode`].
    pub fn decode(mut input: &[u8]) -> Result<ChangeContext> {
        let input = &mut input;
        let mut v = [0u64; 6];
        for x in v.iter_mut() {
            *x = take_var(input)?;
        }
        if !input.is_empty() || v[5] > 1 {
            return Err(RaftError::Corruption(
                "bad membership change context".into(),
            ));
        }
        Ok(ChangeContext {
            partition_id: v[0],
            epoch: Epoch {
                conf_ver: v[1],
                version: v[2],
            },
            replica: Replica {
                id: v[3],
                node_id: v[4],
                learner: v[5] == 1,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use reef_txn::{Mutation, MutationOp};

    use super::*;

    #[test]
    fn roundtrip() {
        let epoch = Epoch {
            conf_ver: 3,
            version: 9,
        };
        for body in [
            CmdBody::Txn(Command::Prewrite {
                mutations: vec![Mutation::new(MutationOp::Put(b"v".to_vec()), b"k".to_vec())],
                primary: b"k".to_vec(),
                start_ts: 10,
                lock_ttl_ms: 3000,
                min_commit_ts: 0,
            }),
            CmdBody::Split {
                split_key: b"m".to_vec(),
                new_partition_id: 7,
                new_replica_ids: vec![8, 9, 10],
            },
            CmdBody::CompactLog {
                index: 100,
                term: 4,
            },
        ] {
            let cmd = RaftCmd {
                partition_id: 2,
                epoch,
                body,
            };
            let raw = cmd.encode();
            assert_eq!(RaftCmd::decode(&raw).unwrap(), cmd);
            for cut in 0..raw.len() {
                assert!(RaftCmd::decode(&raw[..cut]).is_err(), "cut at {cut}");
            }
        }
        let ctx = ChangeContext {
            partition_id: 1,
            epoch,
            replica: Replica {
                id: 4,
                node_id: 2,
                learner: true,
            },
        };
        assert_eq!(ChangeContext::decode(&ctx.encode()).unwrap(), ctx);
    }
}
