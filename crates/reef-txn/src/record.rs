//! The storage layout and binary record encodings of the MVCC layer.
//!
//! * `Cf::Lock`: `encode_bytes(key)` → [`Lock`].
//! * `Cf::Write`: `encode_bytes(key) ++ encode_u64_desc(commit_ts)` → [`Write`]; a rollback
//!   record sits at `start_ts` in place of a commit timestamp.
//!
//! Records start with a one-byte kind tag, followed by varints and length-prefixed byte
//! strings. Decoding validates everything and reports [`TxnError::Corruption`] instead of
//! panicking.

use reef_common::codec::{self, decode_var_u64, encode_var_u64};
use reef_common::Timestamp;

use crate::error::{LockInfo, Result, TxnError};

/// Appends the lock CF key of `key`.
pub(crate) fn lock_key(buf: &mut Vec<u8>, key: &[u8]) {
    codec::encode_bytes(buf, key);
}

/// Appends the write CF key of `key` at `ts`.
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &[u8], ts: Timestamp) {
    codec::encode_bytes(buf, key);
    codec::encode_u64_desc(buf, ts);
}

/// Appends the smallest write CF key greater than every version of `encoded_key`.
pub(crate) fn versions_end(buf: &mut Vec<u8>, encoded_key: &[u8]) {
    buf.extend_from_slice(encoded_key);
    buf.extend_from_slice(&[0xFF; 9]);
}

/// Splits a write CF key into its encoded user key part and its timestamp.
pub(crate) fn split_write_key(raw: &[u8]) -> Result<(&[u8], Timestamp)> {
    if raw.len() < 9 + 8 {
        return Err(TxnError::Corruption(format!(
            "write key too short: {:?}",
            raw
        )));
    }
    let (user, mut ts) = raw.split_at(raw.len() - 8);
    Ok((user, codec::decode_u64_desc(&mut ts)?))
}

/// Decodes an encoded user key (a lock CF key or the first part of a write CF key).
pub(crate) fn decode_user_key(encoded: &[u8]) -> Result<Vec<u8>> {
    let mut input = encoded;
    let key = codec::decode_bytes(&mut input)?;
    if !input.is_empty() {
        return Err(TxnError::Corruption(format!(
            "trailing bytes after key {:?}",
            encoded
        )));
    }
    Ok(key)
}

/// What a lock will write when its transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Writes a new value.
    Put,
    /// Deletes the key.
    Delete,
    /// Writes nothing readable; only guards the key (e.g. `SELECT ... FOR UPDATE`).
    Lock,
}

/// What a write CF record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// A committed value.
    Put,
    /// A committed deletion.
    Delete,
    /// A rolled-back transaction's marker, which refuses that transaction's late prewrites.
    Rollback,
    /// A committed lock-only mutation.
    Lock,
}

/// A Percolator lock: the prewritten, undecided write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// What the lock writes on commit.
    pub kind: LockKind,
    /// The transaction's primary key.
    pub primary: Vec<u8>,
    /// The transaction's start timestamp.
    pub start_ts: Timestamp,
    /// The lock's time to live in milliseconds, counted from the physical part of `start_ts`.
    pub ttl_ms: u64,
    /// The smallest allowed commit timestamp (0 if unconstrained).
    pub min_commit_ts: Timestamp,
    /// The value written on commit (for `LockKind::Put`).
    pub value: Vec<u8>,
}

const LOCK_PUT: u8 = b'P';
const LOCK_DELETE: u8 = b'D';
const LOCK_LOCK: u8 = b'L';
const WRITE_PUT: u8 = b'P';
const WRITE_DELETE: u8 = b'D';
const WRITE_ROLLBACK: u8 = b'R';
const WRITE_LOCK: u8 = b'L';

pub(crate) fn put_bytes(buf: &mut Vec<u8>, data: &[u8]) {
    codec::encode_len_prefixed(buf, data);
}

pub(crate) fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    codec::decode_len_prefixed(input)
        .map_err(|err| TxnError::Corruption(format!("record field: {err}")))
}

pub(crate) fn take_tag(input: &mut &[u8], what: &str) -> Result<u8> {
    match input.split_first() {
        Some((&tag, rest)) => {
            *input = rest;
            Ok(tag)
        }
        None => Err(TxnError::Corruption(format!("empty {what} record"))),
    }
}

pub(crate) fn expect_end(input: &[u8], what: &str) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(TxnError::Corruption(format!(
            "{} trailing bytes after {what} record",
            input.len()
        )))
    }
}

/// Appends the binary form of a lock given by its parts (see [`Lock::encode`]).
pub(crate) fn encode_lock(
    buf: &mut Vec<u8>,
    kind: LockKind,
    primary: &[u8],
    start_ts: Timestamp,
    ttl_ms: u64,
    min_commit_ts: Timestamp,
    value: &[u8],
) {
    buf.push(match kind {
        LockKind::Put => LOCK_PUT,
        LockKind::Delete => LOCK_DELETE,
        LockKind::Lock => LOCK_LOCK,
    });
    encode_var_u64(buf, start_ts);
    encode_var_u64(buf, ttl_ms);
    encode_var_u64(buf, min_commit_ts);
    put_bytes(buf, primary);
    if kind == LockKind::Put {
        put_bytes(buf, value);
    }
}

impl Lock {
    /// Appends the binary form of the lock.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        encode_lock(
            buf,
            self.kind,
            &self.primary,
            self.start_ts,
            self.ttl_ms,
            self.min_commit_ts,
            &self.value,
        );
    }

    /// Decodes a lock written by [`Lock::encode`].
    pub fn decode(mut input: &[u8]) -> Result<Lock> {
        let kind = match take_tag(&mut input, "lock")? {
            LOCK_PUT => LockKind::Put,
            LOCK_DELETE => LockKind::Delete,
            LOCK_LOCK => LockKind::Lock,
            tag => {
                return Err(TxnError::Corruption(format!(
                    "unknown lock kind {tag:#04x}"
                )))
            }
        };
        let start_ts = decode_var_u64(&mut input)?;
        let ttl_ms = decode_var_u64(&mut input)?;
        let min_commit_ts = decode_var_u64(&mut input)?;
        let primary = take_bytes(&mut input)?.to_vec();
        let value = if kind == LockKind::Put {
            take_bytes(&mut input)?.to_vec()
        } else {
            Vec::new()
        };
        expect_end(input, "lock")?;
        Ok(Lock {
            kind,
            primary,
            start_ts,
            ttl_ms,
            min_commit_ts,
            value,
        })
    }

    /// Describes the lock as found on `key`.
    pub fn info(&self, key: &[u8]) -> LockInfo {
        LockInfo {
            key: key.to_vec(),
            primary: self.primary.clone(),
            start_ts: self.start_ts,
            ttl_ms: self.ttl_ms,
            kind: self.kind,
            min_commit_ts: self.min_commit_ts,
        }
    }
}

/// A write CF record, borrowing its value from the encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRef<'a> {
    /// What the record is.
    pub kind: WriteKind,
    /// The start timestamp of the transaction that wrote it.
    pub start_ts: Timestamp,
    /// The value (for `WriteKind::Put`; empty otherwise).
    pub value: &'a [u8],
}

impl<'a> WriteRef<'a> {
    /// Appends the binary form of the record.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(match self.kind {
            WriteKind::Put => WRITE_PUT,
            WriteKind::Delete => WRITE_DELETE,
            WriteKind::Rollback => WRITE_ROLLBACK,
            WriteKind::Lock => WRITE_LOCK,
        });
        encode_var_u64(buf, self.start_ts);
        if self.kind == WriteKind::Put {
            put_bytes(buf, self.value);
        }
    }

    /// Decodes a record written by [`WriteRef::encode`] without copying the value.
    pub fn decode(mut input: &'a [u8]) -> Result<WriteRef<'a>> {
        let kind = match take_tag(&mut input, "write")? {
            WRITE_PUT => WriteKind::Put,
            WRITE_DELETE => WriteKind::Delete,
            WRITE_ROLLBACK => WriteKind::Rollback,
            WRITE_LOCK => WriteKind::Lock,
            tag => {
                return Err(TxnError::Corruption(format!(
                    "unknown write kind {tag:#04x}"
                )))
            }
        };
        let start_ts = decode_var_u64(&mut input)?;
        let value = if kind == WriteKind::Put {
            take_bytes(&mut input)?
        } else {
            &[]
        };
        expect_end(input, "write")?;
        Ok(WriteRef {
            kind,
            start_ts,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_roundtrip_and_corruption() {
        let lock = Lock {
            kind: LockKind::Put,
            primary: b"pk".to_vec(),
            start_ts: 1 << 40,
            ttl_ms: 3000,
            min_commit_ts: 0,
            value: b"value".to_vec(),
        };
        let mut buf = Vec::new();
        lock.encode(&mut buf);
        assert_eq!(Lock::decode(&buf).unwrap(), lock);
        for len in 0..buf.len() {
            assert!(Lock::decode(&buf[..len]).is_err(), "truncated at {len}");
        }
        buf.push(0);
        assert!(matches!(Lock::decode(&buf), Err(TxnError::Corruption(_))));
        assert!(matches!(
            Lock::decode(b"X\x01"),
            Err(TxnError::Corruption(_))
        ));
    }

    #[test]
    fn write_roundtrip_and_corruption() {
        for kind in [
            WriteKind::Put,
            WriteKind::Delete,
            WriteKind::Rollback,
            WriteKind::Lock,
        ] {
            let value: &[u8] = if kind == WriteKind::Put { b"v" } else { b"" };
            let write = WriteRef {
                kind,
                start_ts: 77,
                value,
            };
            let mut buf = Vec::new();
            write.encode(&mut buf);
            assert_eq!(WriteRef::decode(&buf).unwrap(), write);
            assert!(WriteRef::decode(&buf[..buf.len() - 1]).is_err());
        }
        // A length prefix larger than the record is corruption, not a panic.
        assert!(WriteRef::decode(b"P\x05\x7f").is_err());
    }

    #[test]
    fn write_keys_sort_newest_first() {
        let mut a = Vec::new();
        write_key(&mut a, b"k", 10);
        let mut b = Vec::new();
        write_key(&mut b, b"k", 5);
        let mut c = Vec::new();
        write_key(&mut c, b"k\0", 100);
        assert!(a < b && b < c);
        let (user, ts) = split_write_key(&a).unwrap();
        assert_eq!(ts, 10);
        assert_eq!(decode_user_key(user).unwrap(), b"k");
    }
}
