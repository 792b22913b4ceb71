//! The engine-independent write batch.

use crate::Cf;

/// One operation of a [`WriteBatch`], borrowing its keys and values from the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Sets `key` to `value`.
    Put {
        /// The column family.
        cf: Cf,
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Removes `key`.
    Delete {
        /// The column family.
        cf: Cf,
        /// The key.
        key: &'a [u8],
    },
    /// Removes every key in `start..end`.
    DeleteRange {
        /// The column family.
        cf: Cf,
        /// The first key removed.
        start: &'a [u8],
        /// The first key kept after the range.
        end: &'a [u8],
    },
}

#[derive(Clone, Copy, Debug)]
enum OpKind {
    Put,
    Delete,
    DeleteRange,
}

/// An operation's kind, column family and the end offsets of its two byte fields in `data`.
#[derive(Clone, Copy, Debug)]
struct OpEntry {
    kind: OpKind,
    cf: Cf,
    first_end: usize,
    second_end: usize,
}

/// An ordered list of writes applied atomically by [`Engine::write`](crate::Engine::write).
///
/// All keys and values are stored in one contiguous buffer, so building a batch allocates
/// only when the buffer grows.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    data: Vec<u8>,
    ops: Vec<OpEntry>,
}

impl WriteBatch {
    /// Creates an empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Creates an empty batch with room for `bytes` bytes of keys and values.
    pub fn with_capacity(bytes: usize) -> WriteBatch {
        WriteBatch {
            data: Vec::with_capacity(bytes),
            ops: Vec::new(),
        }
    }

    fn push(&mut self, kind: OpKind, cf: Cf, first: &[u8], second: &[u8]) {
        self.data.extend_from_slice(first);
        let first_end = self.data.len();
        self.data.extend_from_slice(second);
        let second_end = self.data.len();
        self.ops.push(OpEntry {
            kind,
            cf,
            first_end,
            second_end,
        });
    }

    /// Sets `key` to `value` in `cf`.
    pub fn put(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        self.push(OpKind::Put, cf, key, value);
    }

    /// Removes `key` from `cf`.
    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.push(OpKind::Delete, cf, key, &[]);
    }

    /// Removes every key `k` with `start <= k < end` from `cf`.
    pub fn delete_range(&mut self, cf: Cf, start: &[u8], end: &[u8]) {
        self.push(OpKind::DeleteRange, cf, start, end);
    }

    /// Reserves room for at least `bytes` more bytes of keys and values.
    pub fn reserve(&mut self, bytes: usize) {
        self.data.reserve(bytes);
    }

    /// Returns true if the batch holds no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Returns the number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Returns the total size of the keys and values in the batch.
    pub fn size_bytes(&self) -> usize {
        self.data.len()
    }

    /// Removes every operation, keeping the allocated memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ops.clear();
    }

    /// Iterates over the operations in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = BatchOp<'_>> + '_ {
        let mut start = 0;
        self.ops.iter().map(move |op| {
            let first = &self.data[start..op.first_end];
            let second = &self.data[op.first_end..op.second_end];
            start = op.second_end;
            match op.kind {
                OpKind::Put => BatchOp::Put {
                    cf: op.cf,
                    key: first,
                    value: second,
                },
                OpKind::Delete => BatchOp::Delete {
                    cf: op.cf,
                    key: first,
                },
                OpKind::DeleteRange => BatchOp::DeleteRange {
                    cf: op.cf,
                    start: first,
                    end: second,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_operations_in_order() {
        let mut batch = WriteBatch::new();
        assert!(batch.is_empty());
        batch.put(Cf::Lock, b"k1", b"v1");
        batch.delete(Cf::Write, b"k2");
        batch.delete_range(Cf::Default, b"a", b"z");
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.size_bytes(), 8);
        let ops: Vec<_> = batch.iter().collect();
        assert_eq!(
            ops,
            vec![
                BatchOp::Put {
                    cf: Cf::Lock,
                    key: b"k1",
                    value: b"v1"
                },
                BatchOp::Delete {
                    cf: Cf::Write,
                    key: b"k2"
                },
                BatchOp::DeleteRange {
                    cf: Cf::Default,
                    start: b"a",
                    end: b"z"
                },
            ]
        );
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.iter().count(), 0);
    }
}
