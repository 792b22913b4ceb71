//! The binary form of [`Command`]s, as they travel in Raft log entries.
//!
//! A command is a one-byte tag followed by varints and length-prefixed byte strings, the same
//! building blocks as the MVCC records. Decoding validates everything and reports
//! [`TxnError::Corruption`] instead of panicking; every replica decodes the same bytes, so a
//! decoding failure is deterministic.

use reef_common::codec::{decode_var_u64, encode_var_u64};

use crate::error::{Result, TxnError};
use crate::mvcc::{Command, Mutation, MutationOp, RawBatch, RawPairs};
use crate::record::{expect_end, put_bytes, take_bytes, take_tag};

const PREWRITE: u8 = 1;
const COMMIT: u8 = 2;
const ROLLBACK: u8 = 3;
const CHECK_TXN_STATUS: u8 = 4;
const RESOLVE_LOCK: u8 = 5;
const GC: u8 = 6;
const DESTROY_RANGE: u8 = 7;
const RAW: u8 = 8;
const ONE_PC: u8 = 9;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_INSERT: u8 = 3;
const OP_LOCK: u8 = 4;

fn put_keys(buf: &mut Vec<u8>, keys: &[Vec<u8>]) {
    encode_var_u64(buf, keys.len() as u64);
    for key in keys {
        put_bytes(buf, key);
    }
}

fn take_count(input: &mut &[u8]) -> Result<usize> {
    let count = decode_var_u64(input)?;
    // Every element takes at least one byte, which bounds the allocation a corrupt count causes.
    if count > input.len() as u64 {
        return Err(TxnError::Corruption(format!(
            "a list of {count} elements exceeds the {} bytes left",
            input.len()
        )));
    }
    Ok(count as usize)
}

/// Appends `(key, optional value)` pairs: a value is preceded by 1, its absence is 0.
fn put_pairs(buf: &mut Vec<u8>, pairs: &RawPairs) {
    encode_var_u64(buf, pairs.len() as u64);
    for (key, value) in pairs {
        put_bytes(buf, key);
        match value {
            Some(value) => {
                buf.push(1);
                put_bytes(buf, value);
            }
            None => buf.push(0),
        }
    }
}

fn take_pairs(input: &mut &[u8]) -> Result<RawPairs> {
    let count = take_count(input)?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key = take_bytes(input)?.to_vec();
        let value = match take_tag(input, "raw value")? {
            0 => None,
            1 => Some(take_bytes(input)?.to_vec()),
            tag => return Err(TxnError::Corruption(format!("unknown raw value tag {tag}"))),
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn take_keys(input: &mut &[u8]) -> Result<Vec<Vec<u8>>> {
    let count = take_count(input)?;
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(take_bytes(input)?.to_vec());
    }
    Ok(keys)
}

fn put_mutations(buf: &mut Vec<u8>, mutations: &[Mutation]) {
    encode_var_u64(buf, mutations.len() as u64);
    for m in mutations {
        match &m.op {
            MutationOp::Put(value) => {
                buf.push(OP_PUT);
                put_bytes(buf, value);
            }
            MutationOp::Delete => buf.push(OP_DELETE),
            MutationOp::Insert(value) => {
                buf.push(OP_INSERT);
                put_bytes(buf, value);
            }
            MutationOp::Lock => buf.push(OP_LOCK),
        }
        put_bytes(buf, &m.key);
        // Zero stands for "none": a conflict timestamp is never zero.
        encode_var_u64(buf, m.conflict_ts.unwrap_or(0));
    }
}

fn take_mutations(input: &mut &[u8]) -> Result<Vec<Mutation>> {
    let count = take_count(input)?;
    let mut mutations = Vec::with_capacity(count);
    for _ in 0..count {
        let op = match take_tag(input, "mutation")? {
            OP_PUT => MutationOp::Put(take_bytes(input)?.to_vec()),
            OP_DELETE => MutationOp::Delete,
            OP_INSERT => MutationOp::Insert(take_bytes(input)?.to_vec()),
            OP_LOCK => MutationOp::Lock,
            tag => return Err(TxnError::Corruption(format!("unknown mutation tag {tag}"))),
        };
        let key = take_bytes(input)?.to_vec();
        let conflict_ts = decode_var_u64(input)?;
        mutations.push(Mutation {
            op,
            key,
            conflict_ts: (conflict_ts != 0).then_some(conflict_ts),
        });
    }
    Ok(mutations)
}

impl Command {
    /// Appends the command's binary form to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Command::Prewrite {
                mutations,
                primary,
                start_ts,
                lock_ttl_ms,
                min_commit_ts,
            } => {
                buf.push(PREWRITE);
                put_bytes(buf, primary);
                encode_var_u64(buf, *start_ts);
                encode_var_u64(buf, *lock_ttl_ms);
                encode_var_u64(buf, *min_commit_ts);
                put_mutations(buf, mutations);
            }
            Command::OnePc {
                mutations,
                start_ts,
                commit_ts,
            } => {
                buf.push(ONE_PC);
                encode_var_u64(buf, *start_ts);
                encode_var_u64(buf, *commit_ts);
                put_mutations(buf, mutations);
            }
            Command::Commit {
                keys,
                start_ts,
                commit_ts,
            } => {
                buf.push(COMMIT);
                encode_var_u64(buf, *start_ts);
                encode_var_u64(buf, *commit_ts);
                put_keys(buf, keys);
            }
            Command::Rollback { keys, start_ts } => {
                buf.push(ROLLBACK);
                encode_var_u64(buf, *start_ts);
                put_keys(buf, keys);
            }
            Command::CheckTxnStatus {
                primary,
                lock_ts,
                current_ts,
            } => {
                buf.push(CHECK_TXN_STATUS);
                put_bytes(buf, primary);
                encode_var_u64(buf, *lock_ts);
                encode_var_u64(buf, *current_ts);
            }
            Command::ResolveLock {
                start_ts,
                commit_ts,
                keys,
            } => {
                buf.push(RESOLVE_LOCK);
                encode_var_u64(buf, *start_ts);
                encode_var_u64(buf, commit_ts.unwrap_or(0));
                put_keys(buf, keys);
            }
            Command::Gc {
                safe_point,
                start,
                end,
                limit,
            } => {
                buf.push(GC);
                encode_var_u64(buf, *safe_point);
                put_bytes(buf, start);
                put_bytes(buf, end);
                encode_var_u64(buf, *limit as u64);
            }
            Command::DestroyRange { start, end } => {
                buf.push(DESTROY_RANGE);
                put_bytes(buf, start);
                put_bytes(buf, end);
            }
            Command::Raw(raw) => {
                buf.push(RAW);
                put_pairs(buf, &raw.expect);
                put_pairs(buf, &raw.writes);
            }
        }
    }

    /// Decodes a command written by [`Command::encode`], which must span all of `input`.
    pub fn decode(mut input: &[u8]) -> Result<Command> {
        let input = &mut input;
        let nonzero = |ts: u64| (ts != 0).then_some(ts);
        let cmd = match take_tag(input, "command")? {
            PREWRITE => {
                let primary = take_bytes(input)?.to_vec();
                let start_ts = decode_var_u64(input)?;
                let lock_ttl_ms = decode_var_u64(input)?;
                let min_commit_ts = decode_var_u64(input)?;
                let mutations = take_mutations(input)?;
                Command::Prewrite {
                    mutations,
                    primary,
                    start_ts,
                    lock_ttl_ms,
                    min_commit_ts,
                }
            }
            ONE_PC => Command::OnePc {
                start_ts: decode_var_u64(input)?,
                commit_ts: decode_var_u64(input)?,
                mutations: take_mutations(input)?,
            },
            COMMIT => Command::Commit {
                start_ts: decode_var_u64(input)?,
                commit_ts: decode_var_u64(input)?,
                keys: take_keys(input)?,
            },
            ROLLBACK => Command::Rollback {
                start_ts: decode_var_u64(input)?,
                keys: take_keys(input)?,
            },
            CHECK_TXN_STATUS => Command::CheckTxnStatus {
                primary: take_bytes(input)?.to_vec(),
                lock_ts: decode_var_u64(input)?,
                current_ts: decode_var_u64(input)?,
            },
            RESOLVE_LOCK => Command::ResolveLock {
                start_ts: decode_var_u64(input)?,
                commit_ts: nonzero(decode_var_u64(input)?),
                keys: take_keys(input)?,
            },
            GC => Command::Gc {
                safe_point: decode_var_u64(input)?,
                start: take_bytes(input)?.to_vec(),
                end: take_bytes(input)?.to_vec(),
                limit: decode_var_u64(input)? as usize,
            },
            DESTROY_RANGE => Command::DestroyRange {
                start: take_bytes(input)?.to_vec(),
                end: take_bytes(input)?.to_vec(),
            },
            RAW => Command::Raw(RawBatch {
                expect: take_pairs(input)?,
                writes: take_pairs(input)?,
            }),
            tag => return Err(TxnError::Corruption(format!("unknown command tag {tag}"))),
        };
        expect_end(input, "command")?;
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..12)
    }

    fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(bytes(), 0..4)
    }

    fn pairs() -> impl Strategy<Value = RawPairs> {
        proptest::collection::vec((bytes(), proptest::option::of(bytes())), 0..4)
    }

    fn ts() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), Just(u64::MAX), 1u64..1 << 40]
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let op = prop_oneof![
            bytes().prop_map(MutationOp::Put),
            Just(MutationOp::Delete),
            bytes().prop_map(MutationOp::Insert),
            Just(MutationOp::Lock),
        ];
        (op, bytes(), proptest::option::of(1u64..u64::MAX)).prop_map(|(op, key, conflict_ts)| {
            Mutation {
                op,
                key,
                conflict_ts,
            }
        })
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (
                proptest::collection::vec(mutation(), 0..4),
                bytes(),
                ts(),
                ts(),
                ts()
            )
                .prop_map(
                    |(mutations, primary, start_ts, lock_ttl_ms, min_commit_ts)| {
                        Command::Prewrite {
                            mutations,
                            primary,
                            start_ts,
                            lock_ttl_ms,
                            min_commit_ts,
                        }
                    }
                ),
            (proptest::collection::vec(mutation(), 0..4), ts(), ts()).prop_map(
                |(mutations, start_ts, commit_ts)| Command::OnePc {
                    mutations,
                    start_ts,
                    commit_ts,
                }
            ),
            (keys(), ts(), ts()).prop_map(|(keys, start_ts, commit_ts)| Command::Commit {
                keys,
                start_ts,
                commit_ts
            }),
            (keys(), ts()).prop_map(|(keys, start_ts)| Command::Rollback { keys, start_ts }),
            (bytes(), ts(), ts()).prop_map(|(primary, lock_ts, current_ts)| {
                Command::CheckTxnStatus {
                    primary,
                    lock_ts,
                    current_ts,
                }
            }),
            (ts(), proptest::option::of(1u64..u64::MAX), keys()).prop_map(
                |(start_ts, commit_ts, keys)| Command::ResolveLock {
                    start_ts,
                    commit_ts,
                    keys
                }
            ),
            (ts(), bytes(), bytes(), 0usize..1 << 20).prop_map(
                |(safe_point, start, end, limit)| Command::Gc {
                    safe_point,
                    start,
                    end,
                    limit
                }
            ),
            (bytes(), bytes()).prop_map(|(start, end)| Command::DestroyRange { start, end }),
            (pairs(), pairs())
                .prop_map(|(expect, writes)| Command::Raw(RawBatch { expect, writes })),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(cmd in command()) {
            let mut buf = Vec::new();
            cmd.encode(&mut buf);
            prop_assert_eq!(Command::decode(&buf).unwrap(), cmd);
        }

        #[test]
        fn truncated_or_extended_input_is_an_error(cmd in command(), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            cmd.encode(&mut buf);
            let cut = cut.index(buf.len());
            prop_assert!(Command::decode(&buf[..cut]).is_err());
            buf.push(0);
            prop_assert!(Command::decode(&buf).is_err());
        }

        #[test]
        fn garbage_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Command::decode(&raw);
        }
    }
}
