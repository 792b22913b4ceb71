//! A transaction's buffered writes: in memory while they are few, in a scratch engine once
//! they outgrow a bound.
//!
//! A transaction keeps its writes until commit. A bulk load or a mass update writes more than
//! a node should hold in memory, so past [`TxnConfig::spill_bytes`](crate::TxnConfig) the
//! buffer moves its writes to a [`SpillEngine`] (a scratch RocksDB whose contents need not
//! survive a restart, like PostgreSQL's temporary files), keyed by the transaction's start
//! timestamp, the user key and a *generation*: the number of the flush that wrote it. Reads of
//! the transaction's own writes look in memory first, then at the newest spilled version; a
//! scanner sees the buffer as it was when the scan began by reading only the generations
//! flushed by then, so a statement that writes into the range it scans never meets its own new
//! rows. Commit streams the newest version of every key in key order. Dropping the buffer
//! deletes its spilled writes.
//!
//! Most lookups of a bulk load are for keys it never wrote (every insert checks its key), and
//! a rewrite of a table looks up every key it deleted a moment before; an engine cursor costs
//! microseconds to open, so the buffer keeps a Bloom filter of each generation's keys and reads
//! only the generations that may hold a key, newest first, each with a point read of the exact
//! key.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reef_common::codec;
use reef_common::Timestamp;
use reef_storage::{Cf, Engine, WriteBatch};

use crate::error::{Result, TxnError};
use crate::mvcc::{Mutation, MutationOp};
use crate::record::{decode_user_key, split_write_key, write_key};

/// A buffered write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BufferedOp {
    Put(Vec<u8>),
    Insert(Vec<u8>),
    Delete,
    Lock,
}

/// A buffered write and the timestamp it conflicts above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Buffered {
    pub op: BufferedOp,
    /// The read timestamp of the statement that wrote it (see [`Mutation::conflict_ts`]).
    pub conflict_ts: Timestamp,
}

const OP_PUT: u8 = b'P';
const OP_INSERT: u8 = b'I';
const OP_DELETE: u8 = b'D';
const OP_LOCK: u8 = b'L';

impl Buffered {
    /// The bytes the write stands for: its key and value.
    pub fn size(&self, key: &[u8]) -> usize {
        key.len()
            + match &self.op {
                BufferedOp::Put(v) | BufferedOp::Insert(v) => v.len(),
                BufferedOp::Delete | BufferedOp::Lock => 0,
            }
    }

    /// The value a read of the key sees: `Some(None)` for a deletion, `None` for a lock,
    /// which leaves the committed value visible.
    pub fn visible(&self) -> Option<Option<&[u8]>> {
        match &self.op {
            BufferedOp::Put(v) | BufferedOp::Insert(v) => Some(Some(v)),
            BufferedOp::Delete => Some(None),
            BufferedOp::Lock => None,
        }
    }

    /// Appends the spilled form: a tag, the conflict timestamp, then the value.
    fn encode(&self, buf: &mut Vec<u8>) {
        let (tag, value): (u8, &[u8]) = match &self.op {
            BufferedOp::Put(v) => (OP_PUT, v),
            BufferedOp::Insert(v) => (OP_INSERT, v),
            BufferedOp::Delete => (OP_DELETE, &[]),
            BufferedOp::Lock => (OP_LOCK, &[]),
        };
        buf.push(tag);
        buf.extend_from_slice(&self.conflict_ts.to_be_bytes());
        buf.extend_from_slice(value);
    }

    fn decode(raw: &[u8]) -> Result<Buffered> {
        if raw.len() < 9 {
            return Err(TxnError::Corruption(format!(
                "spilled write too short: {} bytes",
                raw.len()
            )));
        }
        let conflict_ts = Timestamp::from_be_bytes(raw[1..9].try_into().expect("8 bytes"));
        let value = raw[9..].to_vec();
        let op = match raw[0] {
            OP_PUT => BufferedOp::Put(value),
            OP_INSERT => BufferedOp::Insert(value),
            OP_DELETE => BufferedOp::Delete,
            OP_LOCK => BufferedOp::Lock,
            tag => {
                return Err(TxnError::Corruption(format!(
                    "spilled write with unknown tag {tag}"
                )))
            }
        };
        Ok(Buffered { op, conflict_ts })
    }

    /// The mutation that commits the write.
    pub fn into_mutation(self, key: Vec<u8>) -> Mutation {
        let op = match self.op {
            BufferedOp::Put(v) => MutationOp::Put(v),
            BufferedOp::Insert(v) => MutationOp::Insert(v),
            BufferedOp::Delete => MutationOp::Delete,
            BufferedOp::Lock => MutationOp::Lock,
        };
        Mutation {
            op,
            key,
            conflict_ts: Some(self.conflict_ts),
        }
    }
}

/// Where transactions put their writes once they outgrow memory: a scratch engine of this
/// process whose contents need not survive a restart (the node empties it when it starts).
/// Set it in [`TxnConfig::spill`](crate::TxnConfig).
#[derive(Clone)]
pub struct SpillEngine {
    engine: Arc<dyn Engine>,
}

impl SpillEngine {
    /// Spills to `engine`, which nothing else writes to.
    pub fn new(engine: Arc<dyn Engine>) -> SpillEngine {
        SpillEngine { engine }
    }
}

impl std::fmt::Debug for SpillEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillEngine")
            .field("path", &self.engine.path())
            .finish()
    }
}

/// Spilled writes past this many bytes are compacted away when their transaction ends, so a
/// bulk load does not leave its copy on disk until the next one.
const COMPACT_AFTER_BYTES: usize = 64 << 20;

/// One transaction's writes in the spill engine: every key starts with its start timestamp.
/// Dropping it deletes them.
pub(crate) struct SpillArea {
    engine: Arc<dyn Engine>,
    /// The start timestamp, big-endian: the prefix of every key.
    prefix: [u8; 8],
    /// The next timestamp's prefix: the end of the area.
    end: [u8; 8],
    bytes: AtomicUsize,
}

impl SpillArea {
    fn new(engine: Arc<dyn Engine>, start_ts: Timestamp) -> SpillArea {
        SpillArea {
            engine,
            prefix: start_ts.to_be_bytes(),
            end: start_ts.saturating_add(1).to_be_bytes(),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Appends the area's key of the encoded user key, without a generation.
    fn key(&self, buf: &mut Vec<u8>, encoded: &[u8]) {
        buf.clear();
        buf.extend_from_slice(&self.prefix);
        buf.extend_from_slice(encoded);
    }

    /// Sets `buf` to the area's key of `user`'s write in `generation`.
    fn versioned_key(&self, buf: &mut Vec<u8>, user: &[u8], generation: u64) {
        buf.clear();
        buf.extend_from_slice(&self.prefix);
        write_key(buf, user, generation);
    }

    /// Splits a key of the area into the encoded user key and the generation.
    fn split<'k>(&self, raw: &'k [u8]) -> Result<(&'k [u8], u64)> {
        match raw.strip_prefix(&self.prefix[..]) {
            Some(rest) => split_write_key(rest),
            None => Err(TxnError::Corruption(
                "a spilled write outside its transaction's area".into(),
            )),
        }
    }

    /// Writes `writes` as generation `generation`.
    fn write<'a>(
        &self,
        generation: u64,
        writes: impl Iterator<Item = (&'a Vec<u8>, &'a Buffered)>,
        bytes: usize,
    ) -> Result<()> {
        let mut batch = WriteBatch::with_capacity(bytes + bytes / 4 + 64);
        let (mut key, mut value) = (Vec::new(), Vec::new());
        for (user, write) in writes {
            self.versioned_key(&mut key, user, generation);
            value.clear();
            write.encode(&mut value);
            batch.put(Cf::Write, &key, &value);
        }
        self.engine.write(&batch, false)?;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the write of `user` in `generation`, if it has one.
    fn get(&self, user: &[u8], generation: u64, buf: &mut Vec<u8>) -> Result<Option<Buffered>> {
        self.versioned_key(buf, user, generation);
        match self.engine.get(Cf::Write, buf)? {
            Some(raw) => Buffered::decode(&raw).map(Some),
            None => Ok(None),
        }
    }
}

impl Drop for SpillArea {
    fn drop(&mut self) {
        let mut batch = WriteBatch::new();
        batch.delete_range(Cf::Write, &self.prefix, &self.end);
        if let Err(err) = self.engine.write(&batch, false) {
            tracing::warn!(%err, "cannot delete a transaction's spilled writes");
            return;
        }
        if self.bytes.load(Ordering::Relaxed) >= COMPACT_AFTER_BYTES {
            let _ = self
                .engine
                .compact_range(Cf::Write, Some(&self.prefix), Some(&self.end));
        }
    }
}

/// The Bloom filters of the keys a transaction spilled, one per generation, so that a read
/// asks the engine only about the generations that may hold its key, newest first, and each
/// with a point read of the exact key rather than a cursor. About 1.5 bytes per key.
#[derive(Default)]
struct SpilledKeys {
    /// The filter of generation `g` at index `g`.
    generations: Vec<Bloom>,
}

/// A blocked Bloom filter: a key's bits all fall in one 64-byte block, so a lookup touches
/// one cache line. [`Bloom::BITS_PER_KEY`] bits per key, [`Bloom::HASHES`] bits per key set
/// (a false positive rate near 0.5 %).
struct Bloom {
    blocks: Vec<[u64; 8]>,
}

impl Bloom {
    const BITS_PER_KEY: usize = 12;
    const HASHES: u64 = 8;

    fn new(keys: usize) -> Bloom {
        Bloom {
            blocks: vec![[0; 8]; (keys.max(1) * Bloom::BITS_PER_KEY).div_ceil(512)],
        }
    }

    /// The block of a key's hash, and the bit positions in it (double hashing on the top
    /// nine bits).
    fn positions(&self, hash: u64) -> (usize, impl Iterator<Item = usize>) {
        let block = ((hash >> 32) * self.blocks.len() as u64) >> 32;
        let step = hash.rotate_left(21) | 1;
        let bits = (0..Bloom::HASHES)
            .map(move |i| (hash.wrapping_add(i.wrapping_mul(step)) >> 55) as usize);
        (block as usize, bits)
    }

    fn insert(&mut self, hash: u64) {
        let (block, bits) = self.positions(hash);
        let block = &mut self.blocks[block];
        for bit in bits {
            block[bit / 64] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (block, mut bits) = self.positions(hash);
        let block = &self.blocks[block];
        bits.all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// Hashes a key for the Bloom filters (a multiply-xorshift mix, eight bytes at a time).
fn key_hash(key: &[u8]) -> u64 {
    const MUL: u64 = 0xbf58_476d_1ce4_e5b9;
    let mut h = 0x9e37_79b9_7f4a_7c15 ^ key.len() as u64;
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(MUL);
        h ^= h >> 31;
    }
    h ^= h >> 30;
    h = h.wrapping_mul(MUL);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl SpilledKeys {
    /// Records the keys of the next generation.
    fn add_generation<'k>(&mut self, keys: impl ExactSizeIterator<Item = &'k Vec<u8>>) {
        let mut bloom = Bloom::new(keys.len());
        for key in keys {
            bloom.insert(key_hash(key));
        }
        self.generations.push(bloom);
    }

    /// The generations that may hold `key`, newest first.
    fn candidates(&self, key: &[u8]) -> impl Iterator<Item = u64> + '_ {
        let hash = key_hash(key);
        (0..self.generations.len())
            .rev()
            .filter(move |&g| self.generations[g].may_contain(hash))
            .map(|g| g as u64)
    }
}

/// Reads the newest version, as of a generation, of each spilled key in a range, batch by
/// batch, forward or backward.
pub(crate) struct SpillReader {
    area: Arc<SpillArea>,
    /// The newest generation visible.
    generation: u64,
    /// What is left of the range, as area keys: `lower <= key < upper`.
    lower: Vec<u8>,
    upper: Vec<u8>,
    reverse: bool,
    done: bool,
}

impl SpillReader {
    fn new(
        area: Arc<SpillArea>,
        generation: u64,
        start: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> SpillReader {
        let mut lower = area.prefix.to_vec();
        codec::encode_bytes(&mut lower, start);
        let upper = if end.is_empty() {
            area.end.to_vec()
        } else {
            let mut upper = area.prefix.to_vec();
            codec::encode_bytes(&mut upper, end);
            upper
        };
        SpillReader {
            area,
            generation,
            lower,
            upper,
            reverse,
            done: false,
        }
    }

    /// Appends up to `max_keys` writes (fewer once they reach `max_bytes`) to `out`, in scan
    /// order. Returns false once the range is exhausted.
    fn next_batch(
        &mut self,
        max_keys: usize,
        max_bytes: usize,
        out: &mut VecDeque<(Vec<u8>, Buffered)>,
    ) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let area = &*self.area;
        let mut cursor = area
            .engine
            .cursor(Cf::Write, Some(&self.lower), Some(&self.upper));
        let (mut user, mut seek) = (Vec::new(), Vec::new());
        let (mut keys, mut bytes) = (0, 0);
        if self.reverse {
            cursor.seek_to_last();
        } else {
            cursor.seek_to_first();
        }
        while keys < max_keys.max(1) && bytes < max_bytes && cursor.valid() {
            user.clear();
            user.extend_from_slice(area.split(cursor.key())?.0);
            // The newest version no newer than the reader's generation.
            area.key(&mut seek, &user);
            codec::encode_u64_desc(&mut seek, self.generation);
            if self.reverse || area.split(cursor.key())?.1 > self.generation {
                cursor.seek(&seek);
            }
            if cursor.valid() && area.split(cursor.key())?.0 == user.as_slice() {
                let write = Buffered::decode(cursor.value())?;
                let key = decode_user_key(&user)?;
                bytes += write.size(&key);
                keys += 1;
                out.push_back((key, write));
            }
            // On to the next user key: backward, past the key without a generation, which
            // sorts before all its versions; forward, step by step, since most keys have a
            // single version. The seek above may already have left the key (all its versions
            // were newer than the generation): the cursor then stands on the next one.
            if self.reverse {
                area.key(&mut seek, &user);
                cursor.seek_for_prev(&seek);
            } else {
                while cursor.valid() && area.split(cursor.key())?.0 == user.as_slice() {
                    cursor.next();
                }
            }
        }
        cursor.status()?;
        if !cursor.valid() {
            self.done = true;
        } else if self.reverse {
            area.key(&mut self.upper, &user);
        } else {
            self.lower.clear();
            self.lower.extend_from_slice(cursor.key());
        }
        Ok(!self.done || keys > 0)
    }
}

/// A transaction's buffered writes in a range as they were when a scan began, in scan order;
/// `None` values are deletions (locks are left out).
pub(crate) struct BufferedRange {
    ready: VecDeque<(Vec<u8>, Option<Vec<u8>>)>,
    spilled: Option<SpillReader>,
    batch: VecDeque<(Vec<u8>, Buffered)>,
}

impl BufferedRange {
    /// The next write, without taking it; reads the next spilled batch when needed.
    pub fn peek(&mut self, max_keys: usize) -> Result<Option<&(Vec<u8>, Option<Vec<u8>>)>> {
        while self.ready.is_empty() {
            let Some(reader) = &mut self.spilled else {
                break;
            };
            if !reader.next_batch(max_keys, usize::MAX, &mut self.batch)? {
                self.spilled = None;
                break;
            }
            for (key, write) in self.batch.drain(..) {
                if let Some(value) = write.visible() {
                    self.ready.push_back((key, value.map(<[u8]>::to_vec)));
                }
            }
        }
        Ok(self.ready.front())
    }

    /// Takes the write [`peek`](BufferedRange::peek) returned.
    pub fn pop(&mut self) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        self.ready.pop_front()
    }

    /// An empty range.
    pub fn empty() -> BufferedRange {
        BufferedRange {
            ready: VecDeque::new(),
            spilled: None,
            batch: VecDeque::new(),
        }
    }
}

/// The writes a commit takes from the buffer.
pub(crate) enum Pending {
    /// Every write, in key order.
    Memory(Vec<Mutation>),
    /// Spilled writes, read back in key order.
    Spilled(Arc<SpillArea>),
}

impl Pending {
    /// Calls `f` with the writes, in key order, in batches of at most `max_keys` keys and
    /// about `max_bytes` bytes, until `f` returns false.
    pub fn for_each_batch(
        &self,
        max_keys: usize,
        max_bytes: usize,
        mut f: impl FnMut(&[Mutation]) -> Result<bool>,
    ) -> Result<()> {
        match self {
            Pending::Memory(mutations) => {
                f(mutations)?;
            }
            Pending::Spilled(area) => {
                let mut reader = SpillReader::new(area.clone(), u64::MAX, &[], &[], false);
                let mut writes = VecDeque::new();
                let mut mutations = Vec::new();
                while reader.next_batch(max_keys, max_bytes, &mut writes)? {
                    mutations.clear();
                    mutations.extend(writes.drain(..).map(|(k, w)| w.into_mutation(k)));
                    if !f(&mutations)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What an entry of the in-memory buffer costs beyond its key and value: the map's node share,
/// the key's and value's vectors and the conflict timestamp. Counting it keeps a buffer of many
/// small writes (deletions) within its bound.
const ENTRY_OVERHEAD: usize = 96;

/// A transaction's writes until commit (see the module documentation).
pub(crate) struct WriteBuffer {
    /// The writes since the last flush, all of generation `generation`.
    mem: BTreeMap<Vec<u8>, Buffered>,
    mem_bytes: usize,
    spilled_bytes: usize,
    generation: u64,
    /// The spilled writes, once there are any.
    area: Option<Arc<SpillArea>>,
    /// The keys spilled so far.
    spilled_keys: SpilledKeys,
    /// Where to spill and past how many bytes in memory, if anywhere.
    spill: Option<(SpillEngine, usize)>,
    start_ts: Timestamp,
}

impl WriteBuffer {
    pub fn new(spill: Option<(SpillEngine, usize)>, start_ts: Timestamp) -> WriteBuffer {
        WriteBuffer {
            mem: BTreeMap::new(),
            mem_bytes: 0,
            spilled_bytes: 0,
            generation: 0,
            area: None,
            spilled_keys: SpilledKeys::default(),
            spill,
            start_ts,
        }
    }

    /// Returns the buffered write of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, Buffered>>> {
        if let Some(write) = self.mem.get(key) {
            return Ok(Some(Cow::Borrowed(write)));
        }
        let Some(area) = &self.area else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        for generation in self.spilled_keys.candidates(key) {
            if let Some(write) = area.get(key, generation, &mut buf)? {
                return Ok(Some(Cow::Owned(write)));
            }
        }
        Ok(None)
    }

    /// Returns what the buffer holds for `key` as a read sees it: `Some(true)` a value,
    /// `Some(false)` a deletion, `None` nothing (or only a lock).
    pub fn written(&self, key: &[u8]) -> Result<Option<bool>> {
        Ok(self
            .get(key)?
            .as_deref()
            .and_then(Buffered::visible)
            .map(|v| v.is_some()))
    }

    /// Buffers `write` for `key`, replacing an earlier one, and spills once memory holds
    /// too much.
    pub fn put(&mut self, key: Vec<u8>, write: Buffered) -> Result<()> {
        self.mem_bytes += write.size(&key) + ENTRY_OVERHEAD;
        if let Some(old) = self.mem.get(&key) {
            self.mem_bytes -= old.size(&key) + ENTRY_OVERHEAD;
        }
        self.mem.insert(key, write);
        match &self.spill {
            Some((_, limit)) if self.mem_bytes > *limit => self.flush(),
            _ => Ok(()),
        }
    }

    /// Moves the writes in memory to the spill engine as the next generation.
    fn flush(&mut self) -> Result<()> {
        if self.mem.is_empty() {
            return Ok(());
        }
        let Some((engine, _)) = &self.spill else {
            return Ok(());
        };
        let area = self
            .area
            .get_or_insert_with(|| Arc::new(SpillArea::new(engine.engine.clone(), self.start_ts)));
        area.write(self.generation, self.mem.iter(), self.mem_bytes)?;
        self.spilled_keys.add_generation(self.mem.keys());
        self.spilled_bytes += self.mem_bytes;
        crate::txn::txn_metrics()
            .spilled_bytes
            .add(self.mem_bytes as u64);
        self.generation += 1;
        self.mem.clear();
        self.mem_bytes = 0;
        Ok(())
    }

    /// Returns the bytes of writes held in memory, with what each entry costs beyond them.
    pub fn mem_bytes(&self) -> usize {
        self.mem_bytes
    }

    /// Returns the bytes of every write buffered, spilled ones included (overwritten spilled
    /// writes count too).
    pub fn total_bytes(&self) -> usize {
        self.mem_bytes + self.spilled_bytes
    }

    /// Returns true if nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.area.is_none()
    }

    /// Returns the writes in `start..end` (an empty `end`: no end) as they are now.
    pub fn range(&mut self, start: &[u8], end: &[u8], reverse: bool) -> Result<BufferedRange> {
        if !end.is_empty() && start >= end {
            return Ok(BufferedRange::empty());
        }
        if self.area.is_some() {
            // Everything goes to the engine first; later flushes write newer generations,
            // which the reader does not see.
            self.flush()?;
            let area = self.area.clone().expect("checked above");
            let mut range = BufferedRange::empty();
            range.spilled = Some(SpillReader::new(
                area,
                self.generation - 1,
                start,
                end,
                reverse,
            ));
            return Ok(range);
        }
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        let mut ready: VecDeque<_> = self
            .mem
            .range::<[u8], _>((Bound::Included(start), upper))
            .filter_map(|(k, w)| w.visible().map(|v| (k.clone(), v.map(<[u8]>::to_vec))))
            .collect();
        if reverse {
            ready.make_contiguous().reverse();
        }
        Ok(BufferedRange {
            ready,
            ..BufferedRange::empty()
        })
    }

    /// Takes every write for commit, leaving the buffer empty.
    pub fn take(&mut self) -> Result<Pending> {
        if self.area.is_some() {
            self.flush()?;
            let area = self.area.take().expect("checked above");
            self.clear();
            return Ok(Pending::Spilled(area));
        }
        let mem = std::mem::take(&mut self.mem);
        self.clear();
        Ok(Pending::Memory(
            mem.into_iter().map(|(k, w)| w.into_mutation(k)).collect(),
        ))
    }

    /// Drops every write, spilled ones included.
    pub fn clear(&mut self) {
        self.mem.clear();
        self.mem_bytes = 0;
        self.spilled_bytes = 0;
        self.area = None;
        self.spilled_keys = SpilledKeys::default();
    }
}
