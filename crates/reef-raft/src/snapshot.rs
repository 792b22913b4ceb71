//! The content of a partition snapshot: its descriptor and every lock, write and raw record of
//! its key range, read at the applied index.
//!
//! The encoded form travels in raft-rs `Snapshot.data`; the gRPC transport streams it in chunks.
//! A snapshot is held in memory whole, which bounds partitions to a size the split threshold
//! keeps modest.

use reef_storage::{Cf, Engine, WriteBatch};
use reef_txn::{data_bounds, DATA_CFS};

use crate::error::{RaftError, Result};
use crate::state::{put_bytes, take_bytes, Partition};

/// The format written: 2 added raw records (tag 3). Version 1 snapshots still decode.
const VERSION: u8 = 2;

/// A partition's snapshot content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotData {
    /// The descriptor at the snapshot's index.
    pub partition: Partition,
    /// The records of each data column family, in key order: `(cf, key, value)`.
    pub records: Vec<(Cf, Vec<u8>, Vec<u8>)>,
}

/// Returns the engine key bounds `[lower, upper)` of a partition's records in `cf`, or `None`
/// if the column family holds nothing at or after `lower`. An unbounded partition's upper bound
/// is just past the column family's last key.
pub(crate) fn cf_bounds(
    engine: &dyn Engine,
    cf: Cf,
    partition: &Partition,
) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (lower, upper) = data_bounds(&partition.start, &partition.end);
    let upper = match upper {
        Some(upper) => upper,
        None => {
            let mut cursor = engine.cursor(cf, Some(&lower), None);
            cursor.seek_to_last();
            cursor.status()?;
            if !cursor.valid() {
                return Ok(None);
            }
            let mut upper = cursor.key().to_vec();
            upper.push(0);
            upper
        }
    };
    Ok(Some((lower, upper)))
}

impl SnapshotData {
    /// Reads a partition's records from the engine.
    pub fn read(engine: &dyn Engine, partition: &Partition) -> Result<SnapshotData> {
        let mut records = Vec::new();
        for cf in DATA_CFS {
            let Some((lower, upper)) = cf_bounds(engine, cf, partition)? else {
                continue;
            };
            let mut cursor = engine.cursor(cf, Some(&lower), Some(&upper));
            cursor.seek_to_first();
            while cursor.valid() {
                records.push((cf, cursor.key().to_vec(), cursor.value().to_vec()));
                cursor.next();
            }
            cursor.status()?;
        }
        Ok(SnapshotData {
            partition: partition.clone(),
            records,
        })
    }

    /// Adds to `batch` the removal of whatever the engine holds in the partition's range and
    /// the snapshot's records.
    pub fn write_to(&self, engine: &dyn Engine, batch: &mut WriteBatch) -> Result<()> {
        for cf in DATA_CFS {
            if let Some((lower, upper)) = cf_bounds(engine, cf, &self.partition)? {
                batch.delete_range(cf, &lower, &upper);
            }
        }
        for (cf, key, value) in &self.records {
            batch.put(*cf, key, value);
        }
        Ok(())
    }

    /// Returns the binary form.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .records
            .iter()
            .map(|(_, k, v)| k.len() + v.len() + 8)
            .sum();
        let mut buf = Vec::with_capacity(size + 64);
        buf.push(VERSION);
        self.partition.encode(&mut buf);
        for (cf, key, value) in &self.records {
            buf.push(match cf {
                Cf::Lock => 1,
                Cf::Write => 2,
                Cf::Default => 3,
                other => unreachable!("{other:?} holds no partition data"),
            });
            put_bytes(&mut buf, key);
            put_bytes(&mut buf, value);
        }
        buf
    }

    /// Checks a snapshot written by [`SnapshotData::encode`] without copying its records, and
    /// returns its descriptor.
    pub fn validate(input: &[u8]) -> Result<Partition> {
        Self::walk(input, |_, _, _| {})
    }

    /// Decodes a snapshot written by [`SnapshotData::encode`].
    pub fn decode(input: &[u8]) -> Result<SnapshotData> {
        let mut records = Vec::new();
        let partition = Self::walk(input, |cf, key, value| {
            records.push((cf, key.to_vec(), value.to_vec()))
        })?;
        Ok(SnapshotData { partition, records })
    }

    /// Parses a snapshot, handing each record to `record` in order, and returns the descriptor.
    fn walk(mut input: &[u8], mut record: impl FnMut(Cf, &[u8], &[u8])) -> Result<Partition> {
        let input = &mut input;
        match input.split_first() {
            Some((&(1 | VERSION), rest)) => *input = rest,
            _ => return Err(RaftError::Corruption("bad snapshot header".into())),
        }
        let partition = Partition::decode_from(input)?;
        while let Some((&tag, rest)) = input.split_first() {
            *input = rest;
            let cf = match tag {
                1 => Cf::Lock,
                2 => Cf::Write,
                3 => Cf::Default,
                other => {
                    return Err(RaftError::Corruption(format!(
                        "bad snapshot record tag {other}"
                    )))
                }
            };
            let key = take_bytes(input)?;
            let value = take_bytes(input)?;
            record(cf, key, value);
        }
        Ok(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Epoch, Replica};

    #[test]
    fn roundtrip() {
        let data = SnapshotData {
            partition: Partition {
                id: 3,
                start: b"a".to_vec(),
                end: Vec::new(),
                epoch: Epoch {
                    conf_ver: 1,
                    version: 2,
                },
                replicas: vec![Replica::voter(4, 1)],
            },
            records: vec![
                (Cf::Lock, b"k1".to_vec(), b"v1".to_vec()),
                (Cf::Write, b"k2".to_vec(), Vec::new()),
                (Cf::Default, b"k3".to_vec(), b"v3".to_vec()),
            ],
        };
        let raw = data.encode();
        assert_eq!(SnapshotData::decode(&raw).unwrap(), data);
        assert_eq!(SnapshotData::validate(&raw).unwrap(), data.partition);
        assert!(SnapshotData::decode(&raw[..raw.len() - 1]).is_err());
        assert!(SnapshotData::validate(&raw[..raw.len() - 1]).is_err());
    }
}
