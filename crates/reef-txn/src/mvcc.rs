//! The storage side of Percolator: deterministic MVCC commands over an [`Engine`].

use std::sync::Arc;

use reef_common::{ts_physical_ms, Timestamp};
use reef_storage::{Cf, Cursor, Engine, WriteBatch};

use crate::error::{LockInfo, Result, TxnError};
use crate::latch::Latches;
use crate::record::{
    decode_user_key, encode_lock, lock_key, split_write_key, versions_end, write_key, Lock,
    LockKind, WriteKind, WriteRef,
};

/// A key-value pair returned by scans.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// What a mutation does to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MutationOp {
    /// Writes a value.
    Put(Vec<u8>),
    /// Deletes the key.
    Delete,
    /// Writes a value, asserting that the key does not exist (its latest committed version is
    /// not a `Put`).
    Insert(Vec<u8>),
    /// Locks the key without changing it.
    Lock,
}

/// One key's prewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// What to do.
    pub op: MutationOp,
    /// The user key.
    pub key: Vec<u8>,
    /// The timestamp that committed writes must not be newer than: the transaction's start
    /// timestamp at REPEATABLE READ, or the writing statement's read timestamp at READ
    /// COMMITTED. `None` means the start timestamp.
    pub conflict_ts: Option<Timestamp>,
}

impl Mutation {
    /// Creates a mutation checked against the transaction's start timestamp.
    pub fn new(op: MutationOp, key: Vec<u8>) -> Mutation {
        Mutation {
            op,
            key,
            conflict_ts: None,
        }
    }

    fn size(&self) -> usize {
        self.key.len()
            + match &self.op {
                MutationOp::Put(value) | MutationOp::Insert(value) => value.len(),
                MutationOp::Delete | MutationOp::Lock => 0,
            }
    }
}

/// A write command. Its outcome depends only on the engine state and the command, so replicas
/// applying the same command log reach the same state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Percolator's first phase: locks every key of `mutations` for the transaction.
    Prewrite {
        /// The keys and their new values.
        mutations: Vec<Mutation>,
        /// The transaction's primary key, whose status decides the whole transaction.
        primary: Vec<u8>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
        /// The locks' time to live, counted from the physical part of `start_ts`.
        lock_ttl_ms: u64,
        /// The smallest commit timestamp the transaction may use (0 if unconstrained).
        min_commit_ts: Timestamp,
    },
    /// Percolator's second phase: replaces the transaction's locks on `keys` by commit records.
    Commit {
        /// The keys to commit (the primary first, in its own command).
        keys: Vec<Vec<u8>>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
        /// The commit timestamp (greater than `start_ts`).
        commit_ts: Timestamp,
    },
    /// A transaction whose keys all lie in one partition, committed in one step: every
    /// mutation is checked as a prewrite would check it, then written committed at `commit_ts`,
    /// with no lock. The partition's leader chooses `commit_ts` above every timestamp it has
    /// served a read at, so no reader can have missed the writes (see `reef-raft`).
    OnePc {
        /// The keys and their new values.
        mutations: Vec<Mutation>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Removes the transaction's locks on `keys` and leaves rollback records.
    Rollback {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The transaction's start timestamp.
        start_ts: Timestamp,
    },
    /// Decides the fate of the transaction that holds (or held) a lock with `lock_ts` by
    /// looking at its primary key, rolling it back if its lock expired or is missing.
    CheckTxnStatus {
        /// The transaction's primary key.
        primary: Vec<u8>,
        /// The transaction's start timestamp.
        lock_ts: Timestamp,
        /// The caller's current timestamp, against which lock expiry is judged.
        current_ts: Timestamp,
    },
    /// Commits (with `commit_ts`) or rolls back (without) a decided transaction's leftover locks.
    ResolveLock {
        /// The transaction's start timestamp.
        start_ts: Timestamp,
        /// The commit timestamp if the transaction committed, `None` if it rolled back.
        commit_ts: Option<Timestamp>,
        /// The locked keys.
        keys: Vec<Vec<u8>>,
    },
    /// Removes versions no snapshot at or above `safe_point` can see, for at most `limit` user
    /// keys starting at `start` (and before `end`, if not empty).
    Gc {
        /// Every reader's timestamp is at least this.
        safe_point: Timestamp,
        /// The first user key to collect.
        start: Vec<u8>,
        /// The user key to stop before (empty: no end).
        end: Vec<u8>,
        /// The most user keys to visit in this command.
        limit: usize,
    },
    /// Removes every version and lock of the user keys in `start..end` outright, below MVCC.
    /// Only for ranges no snapshot can read any more: a dropped table's, once the GC safe
    /// point has passed the drop (see [`Transaction::destroy_range`](crate::Transaction::destroy_range)).
    DestroyRange {
        /// The first user key to remove.
        start: Vec<u8>,
        /// The user key to stop before (not empty).
        end: Vec<u8>,
    },
    /// Writes raw, unversioned values (below MVCC, in their own column family) if every
    /// expectation holds: the store of system state such as the root service's.
    Raw(RawBatch),
}

/// Keys, each with a value or `None` (no value).
pub type RawPairs = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A conditional batch of raw writes (see [`Command::Raw`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawBatch {
    /// Each key must hold exactly this value (`None`: no value) for the writes to happen.
    pub expect: RawPairs,
    /// The writes, in order: a value, or `None` to delete the key.
    pub writes: RawPairs,
}

impl RawBatch {
    /// Adds a write of `value` to `key`.
    pub fn put(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> RawBatch {
        self.writes.push((key.into(), Some(value.into())));
        self
    }

    /// Adds a deletion of `key`.
    pub fn delete(mut self, key: impl Into<Vec<u8>>) -> RawBatch {
        self.writes.push((key.into(), None));
        self
    }

    /// Adds the condition that `key` holds `value` (`None`: no value).
    pub fn expect(mut self, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) -> RawBatch {
        self.expect.push((key.into(), value));
        self
    }
}

impl Command {
    /// Returns the user keys whose latches the command needs when commands run concurrently.
    pub fn latch_keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Prewrite { mutations, .. } | Command::OnePc { mutations, .. } => {
                mutations.iter().map(|m| m.key.as_slice()).collect()
            }
            Command::Commit { keys, .. }
            | Command::Rollback { keys, .. }
            | Command::ResolveLock { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            Command::CheckTxnStatus { primary, .. } => vec![primary.as_slice()],
            Command::Gc { .. } | Command::DestroyRange { .. } => Vec::new(),
            Command::Raw(raw) => raw
                .expect
                .iter()
                .chain(&raw.writes)
                .map(|(key, _)| key.as_slice())
                .collect(),
        }
    }
}

/// The fate of a transaction, as decided by [`Command::CheckTxnStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// The transaction committed at this timestamp.
    Committed(Timestamp),
    /// The transaction is undecided and its primary lock is alive.
    Locked {
        /// The lock's time to live, counted from the physical part of its start timestamp.
        ttl_ms: u64,
    },
    /// The transaction was rolled back (possibly just now, because its lock expired).
    RolledBack,
}

/// The progress of one [`Command::Gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcProgress {
    /// The user key to continue from, or `None` if the range is done.
    pub next_key: Option<Vec<u8>>,
    /// How many user keys were visited.
    pub keys_scanned: usize,
    /// How many write records were deleted.
    pub versions_deleted: usize,
    /// How many registered ranges were destroyed (by [`TxnClient::run_gc`](crate::TxnClient::run_gc)).
    pub ranges_destroyed: usize,
    /// How many abandoned locks at or below the safe point were committed or rolled back
    /// before collecting (by [`TxnClient::run_gc`](crate::TxnClient::run_gc)).
    pub locks_resolved: usize,
}

/// The result of [`MvccStore::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandResponse {
    /// The command succeeded and has nothing to report.
    Done,
    /// The outcome of `CheckTxnStatus`.
    TxnStatus(TxnStatus),
    /// The outcome of `Gc`.
    Gc(GcProgress),
    /// A raw batch found `key` holding `current` instead of what it expected, and wrote
    /// nothing.
    RawMismatch {
        /// The first key whose expectation failed.
        key: Vec<u8>,
        /// Its value.
        current: Option<Vec<u8>>,
    },
}

/// The number of latch slots.
const LATCH_SLOTS: usize = 4096;
/// The most write records one GC command deletes before stopping at a key boundary.
const GC_MAX_DELETES: usize = 16 * 1024;

/// Returns true if `lock` keeps a reader at `read_ts` from knowing the key's value.
fn blocks_read(lock: &Lock, read_ts: Timestamp) -> bool {
    lock.kind != LockKind::Lock && lock.start_ts <= read_ts
}

/// Refuses a commit timestamp that is not after the start timestamp.
fn check_commit_ts(start_ts: Timestamp, commit_ts: Timestamp) -> Result<()> {
    if commit_ts <= start_ts {
        return Err(TxnError::InvalidArgument(format!(
            "commit ts {commit_ts} is not greater than start ts {start_ts}"
        )));
    }
    Ok(())
}

/// Adds [`Command::DestroyRange`]'s range deletions to `batch`.
fn destroy_range_into(batch: &mut WriteBatch, start: &[u8], end: &[u8]) -> Result<()> {
    if end.is_empty() || start >= end {
        return Err(TxnError::InvalidArgument(format!(
            "cannot destroy the range {}..{}: it must be bounded and not empty",
            start.escape_ascii(),
            end.escape_ascii()
        )));
    }
    // Every version key of a user key `k` sorts between `encode_bytes(k)` and the encoding of
    // the next user key, so the encoded bounds cover exactly the range's versions.
    let (lower, upper) = data_bounds(start, end);
    let upper = upper.expect("bounded range");
    batch.delete_range(Cf::Lock, &lower, &upper);
    batch.delete_range(Cf::Write, &lower, &upper);
    Ok(())
}

/// The column families holding a partition's data: MVCC locks and versions, and raw values.
/// Every one keys a user key's records by the key's memcomparable encoding, so
/// [`data_bounds`] delimits a key range in each.
pub const DATA_CFS: [Cf; 3] = [Cf::Lock, Cf::Write, Cf::Default];

/// Returns the key bounds, in every column family of [`DATA_CFS`], that hold exactly the
/// records of the user keys in `start..end` (an empty `end` is unbounded, giving `None`). Each
/// column family keys a user key's records by its memcomparable encoding, which preserves order.
pub fn data_bounds(start: &[u8], end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut lower = Vec::new();
    lock_key(&mut lower, start);
    let upper = (!end.is_empty()).then(|| {
        let mut upper = Vec::new();
        lock_key(&mut upper, end);
        upper
    });
    (lower, upper)
}

/// The MVCC store: applies Percolator [`Command`]s and serves snapshot reads on an [`Engine`].
///
/// Commands touching the same keys are serialised by latches; everything else runs
/// concurrently. Each command reads the engine, decides, and writes one atomic batch.
pub struct MvccStore {
    engine: Arc<dyn Engine>,
    latches: Latches,
}

/// What [`MvccStore::check_mutation`] decided for a mutation.
enum Checked<'m> {
    /// Write it: what to write.
    Write(LockKind, &'m [u8]),
    /// The transaction itself already locked the key (a retried prewrite).
    OwnLock,
    /// The transaction itself already committed the key (a very late retry).
    OwnRecord,
}

/// What a prewrite found among a key's versions at or above its start timestamp.
#[derive(Default)]
struct NewerVersions {
    /// The transaction's own commit or rollback record: (timestamp, kind).
    own: Option<(Timestamp, WriteKind)>,
    /// The newest conflicting committed write: (commit_ts, start_ts).
    conflict: Option<(Timestamp, Timestamp)>,
}

/// The versions of the keys a command checks, read through one write CF cursor over the
/// command's key range: opening a cursor costs more than the seeks that follow it, and a bulk
/// load's prewrite checks thousands of keys. The engine does not change under the cursor while
/// the command runs: its keys are latched (or its Raft replica applies one command at a time),
/// and its own writes wait in its batch.
struct VersionWalk<'e> {
    /// Opened on the first seek: a command whose keys all meet locks never needs it.
    cursor: Option<Box<dyn Cursor + 'e>>,
    engine: &'e dyn Engine,
    /// The bounds of the cursor: from the smallest key's versions to past the largest's.
    lower: Vec<u8>,
    upper: Vec<u8>,
    /// The encoded user key being walked.
    encoded: Vec<u8>,
    seek_buf: Vec<u8>,
}

impl<'e> VersionWalk<'e> {
    /// How many steps forward a seek tries before it seeks.
    const MAX_STEPS: usize = 2;

    /// Prepares a walk over the versions of the keys of `mutations`.
    fn over(engine: &'e dyn Engine, mutations: &[Mutation]) -> VersionWalk<'e> {
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        if let Some(min) = mutations.iter().map(|m| &m.key).min() {
            lock_key(&mut lower, min);
        }
        if let Some(max) = mutations.iter().map(|m| &m.key).max() {
            let mut encoded = Vec::new();
            lock_key(&mut encoded, max);
            versions_end(&mut upper, &encoded);
        }
        VersionWalk {
            cursor: None,
            engine,
            lower,
            upper,
            encoded: Vec::new(),
            seek_buf: Vec::new(),
        }
    }

    /// Moves to the newest version of `key`, which must lie within the walk's bounds.
    fn seek(&mut self, key: &[u8]) {
        self.encoded.clear();
        lock_key(&mut self.encoded, key);
        self.seek_buf.clear();
        write_key(&mut self.seek_buf, key, Timestamp::MAX);
        let cursor = self.cursor.get_or_insert_with(|| {
            self.engine
                .cursor(Cf::Write, Some(&self.lower), Some(&self.upper))
        });
        // Keys in order with few versions each (a bulk load's) are usually a step or two ahead
        // of the last key's versions: stepping there is cheaper than a seek. A step that reaches
        // the target from below stands exactly where the seek would.
        for _ in 0..VersionWalk::MAX_STEPS {
            if !cursor.valid() || cursor.key() >= self.seek_buf.as_slice() {
                break;
            }
            cursor.next();
            if cursor.valid() && cursor.key() >= self.seek_buf.as_slice() {
                return;
            }
        }
        cursor.seek(&self.seek_buf);
    }

    /// Scans the versions of `key` at or above `start_ts` for the transaction's own record and
    /// for the newest committed `Put`/`Delete` newer than `check_ts`.
    fn newer_versions(
        &mut self,
        key: &[u8],
        start_ts: Timestamp,
        check_ts: Timestamp,
    ) -> Result<NewerVersions> {
        let mut found = NewerVersions::default();
        self.seek(key);
        let cursor = self.cursor.as_mut().expect("opened by the seek");
        while cursor.valid() {
            let (user, ts) = split_write_key(cursor.key())?;
            if user != self.encoded || ts < start_ts {
                break;
            }
            let write = WriteRef::decode(cursor.value())?;
            if write.start_ts == start_ts {
                found.own = Some((ts, write.kind));
                break;
            }
            if found.conflict.is_none()
                && ts > check_ts
                && matches!(write.kind, WriteKind::Put | WriteKind::Delete)
            {
                found.conflict = Some((ts, write.start_ts));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(found)
    }

    /// Returns the kind of the newest committed `Put` or `Delete` of `key`.
    fn latest_data_kind(&mut self, key: &[u8]) -> Result<Option<WriteKind>> {
        self.seek(key);
        let cursor = self.cursor.as_mut().expect("opened by the seek");
        while cursor.valid() {
            let (user, _) = split_write_key(cursor.key())?;
            if user != self.encoded {
                break;
            }
            let write = WriteRef::decode(cursor.value())?;
            if matches!(write.kind, WriteKind::Put | WriteKind::Delete) {
                return Ok(Some(write.kind));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(None)
    }
}

/// Reads the lock stored under `raw_key`, a lock CF key, if there is one.
fn read_lock(engine: &dyn Engine, raw_key: &[u8]) -> Result<Option<Lock>> {
    match engine.get(Cf::Lock, raw_key)? {
        Some(raw) => Ok(Some(Lock::decode(&raw)?)),
        None => Ok(None),
    }
}

/// Reads the locks of the keys a command commits: a point read each for a few keys, and for
/// many one lock CF cursor that steps from lock to lock, since a bulk commit's keys come in
/// order and their locks lie side by side. The engine does not change under the cursor while
/// the command runs (see [`VersionWalk`]).
struct LockReader<'e> {
    engine: &'e dyn Engine,
    /// The cursor and its bounds, for a command of many keys; opened on first use.
    cursor: Option<Box<dyn Cursor + 'e>>,
    bounds: Option<(Vec<u8>, Vec<u8>)>,
    key_buf: Vec<u8>,
}

impl<'e> LockReader<'e> {
    /// Commands of fewer keys than this read each lock with a point read.
    const WALK_FROM_KEYS: usize = 16;

    /// Prepares to read the locks of `keys`.
    fn over(engine: &'e dyn Engine, keys: &[Vec<u8>]) -> LockReader<'e> {
        let bounds = (keys.len() >= Self::WALK_FROM_KEYS).then(|| {
            let (mut lower, mut upper) = (Vec::new(), Vec::new());
            lock_key(&mut lower, keys.iter().min().expect("not empty"));
            lock_key(&mut upper, keys.iter().max().expect("not empty"));
            upper.push(0);
            (lower, upper)
        });
        LockReader {
            engine,
            cursor: None,
            bounds,
            key_buf: Vec::new(),
        }
    }

    /// Returns the lock on `key`, if any.
    fn lock(&mut self, key: &[u8]) -> Result<Option<Lock>> {
        self.key_buf.clear();
        lock_key(&mut self.key_buf, key);
        let Some((lower, upper)) = &self.bounds else {
            return read_lock(self.engine, &self.key_buf);
        };
        let cursor = self
            .cursor
            .get_or_insert_with(|| self.engine.cursor(Cf::Lock, Some(lower), Some(upper)));
        // The cursor stands on the lock after the previous key's: most often this key's.
        if !(cursor.valid() && cursor.key() == self.key_buf.as_slice()) {
            cursor.seek(&self.key_buf);
        }
        if cursor.valid() && cursor.key() == self.key_buf.as_slice() {
            let lock = Lock::decode(cursor.value())?;
            cursor.next();
            return Ok(Some(lock));
        }
        cursor.status()?;
        Ok(None)
    }
}

impl MvccStore {
    /// Creates a store over `engine`.
    pub fn new(engine: Arc<dyn Engine>) -> MvccStore {
        MvccStore {
            engine,
            latches: Latches::new(LATCH_SLOTS),
        }
    }

    /// Returns the underlying engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Applies a write command: takes the latches of its keys, executes it and writes its batch
    /// (synced, except for prewrites and GC, which a later synced write makes durable).
    pub fn apply(&self, cmd: &Command) -> Result<CommandResponse> {
        let _latch = self.latches.acquire(cmd.latch_keys());
        let mut batch = WriteBatch::new();
        let response = self.execute(cmd, &mut batch)?;
        if !batch.is_empty() {
            let sync = !matches!(cmd, Command::Prewrite { .. } | Command::Gc { .. });
            self.engine.write(&batch, sync)?;
        }
        Ok(response)
    }

    /// Executes a write command into `batch` without taking latches or writing: the caller
    /// serialises commands (a Raft replica applies its log in order) and writes the batch before
    /// executing the next command, which must see this one's writes. On error, `batch` may hold
    /// part of the command's writes and must be discarded.
    pub fn execute(&self, cmd: &Command, batch: &mut WriteBatch) -> Result<CommandResponse> {
        match cmd {
            Command::Prewrite {
                mutations,
                primary,
                start_ts,
                lock_ttl_ms,
                min_commit_ts,
            } => {
                self.prewrite_into(
                    batch,
                    mutations,
                    primary,
                    *start_ts,
                    *lock_ttl_ms,
                    *min_commit_ts,
                )?;
                Ok(CommandResponse::Done)
            }
            Command::Commit {
                keys,
                start_ts,
                commit_ts,
            } => {
                self.commit_into(batch, keys, *start_ts, *commit_ts)?;
                Ok(CommandResponse::Done)
            }
            Command::OnePc {
                mutations,
                start_ts,
                commit_ts,
            } => {
                self.one_pc_into(batch, mutations, *start_ts, *commit_ts)?;
                Ok(CommandResponse::Done)
            }
            Command::Rollback { keys, start_ts } => {
                for key in keys {
                    self.rollback_key(batch, key, *start_ts)?;
                }
                Ok(CommandResponse::Done)
            }
            Command::CheckTxnStatus {
                primary,
                lock_ts,
                current_ts,
            } => Ok(CommandResponse::TxnStatus(self.check_txn_status_into(
                batch,
                primary,
                *lock_ts,
                *current_ts,
            )?)),
            Command::ResolveLock {
                start_ts,
                commit_ts,
                keys,
            } => {
                self.resolve_lock_into(batch, *start_ts, *commit_ts, keys)?;
                Ok(CommandResponse::Done)
            }
            Command::Gc {
                safe_point,
                start,
                end,
                limit,
            } => Ok(CommandResponse::Gc(self.gc_into(
                batch,
                *safe_point,
                start,
                end,
                *limit,
            )?)),
            Command::DestroyRange { start, end } => {
                destroy_range_into(batch, start, end)?;
                Ok(CommandResponse::Done)
            }
            Command::Raw(raw) => self.raw_into(batch, raw),
        }
    }

    fn raw_into(&self, batch: &mut WriteBatch, raw: &RawBatch) -> Result<CommandResponse> {
        for (key, expected) in &raw.expect {
            let current = self.raw_get(key)?;
            if current != *expected {
                return Ok(CommandResponse::RawMismatch {
                    key: key.clone(),
                    current,
                });
            }
        }
        let mut encoded = Vec::new();
        for (key, value) in &raw.writes {
            encoded.clear();
            lock_key(&mut encoded, key);
            match value {
                Some(value) => batch.put(Cf::Default, &encoded, value),
                None => batch.delete(Cf::Default, &encoded),
            }
        }
        Ok(CommandResponse::Done)
    }

    /// Reads the raw value of `key` (see [`Command::Raw`]).
    pub fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut encoded = Vec::new();
        lock_key(&mut encoded, key);
        Ok(self.engine.get(Cf::Default, &encoded)?)
    }

    /// Reads up to `limit` raw pairs in `start..end` (empty `end`: unbounded), in key order.
    pub fn raw_scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>> {
        let (lower, upper) = data_bounds(start, end);
        let mut cursor = self
            .engine
            .cursor(Cf::Default, Some(&lower), upper.as_deref());
        cursor.seek(&lower);
        let mut out = Vec::new();
        while cursor.valid() && out.len() < limit {
            let mut encoded = cursor.key();
            let key = reef_common::codec::decode_bytes(&mut encoded)
                .map_err(|e| TxnError::Corruption(format!("raw key: {e}")))?;
            out.push((key, cursor.value().to_vec()));
            cursor.next();
        }
        cursor.status()?;
        Ok(out)
    }

    /// Takes the latches of `keys`, runs `f` on a fresh batch and writes the batch.
    fn run<'k, T>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        sync: bool,
        f: impl FnOnce(&mut WriteBatch) -> Result<T>,
    ) -> Result<T> {
        let _latch = self.latches.acquire(keys);
        let mut batch = WriteBatch::new();
        let out = f(&mut batch)?;
        if !batch.is_empty() {
            self.engine.write(&batch, sync)?;
        }
        Ok(out)
    }

    // ----- Write commands -----

    /// Applies [`Command::Prewrite`] from borrowed parts. Either every mutation is locked or,
    /// on the first error, none is.
    pub fn prewrite(
        &self,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: Timestamp,
        lock_ttl_ms: u64,
        min_commit_ts: Timestamp,
    ) -> Result<()> {
        // Unsynced: the synced commit that follows makes the log durable up to it.
        self.run(mutations.iter().map(|m| m.key.as_slice()), false, |batch| {
            self.prewrite_into(
                batch,
                mutations,
                primary,
                start_ts,
                lock_ttl_ms,
                min_commit_ts,
            )
        })
    }

    fn prewrite_into(
        &self,
        batch: &mut WriteBatch,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: Timestamp,
        lock_ttl_ms: u64,
        min_commit_ts: Timestamp,
    ) -> Result<()> {
        let size: usize = mutations.iter().map(Mutation::size).sum();
        batch.reserve(size + mutations.len() * 32);
        let mut key_buf = Vec::new();
        let mut value_buf = Vec::new();
        let mut walk = VersionWalk::over(&*self.engine, mutations);
        for mutation in mutations {
            let key = &mutation.key;
            key_buf.clear();
            lock_key(&mut key_buf, key);
            let Checked::Write(kind, value) =
                self.check_mutation(&mut walk, &key_buf, mutation, start_ts)?
            else {
                continue;
            };
            value_buf.clear();
            encode_lock(
                &mut value_buf,
                kind,
                primary,
                start_ts,
                lock_ttl_ms,
                min_commit_ts,
                value,
            );
            batch.put(Cf::Lock, &key_buf, &value_buf);
        }
        Ok(())
    }

    /// Decides whether `mutation` of the transaction that started at `start_ts` may be written:
    /// no other transaction's lock on the key (`lock_key` is its lock CF key), no write
    /// committed after the mutation's conflict timestamp, no existing row for an insert.
    fn check_mutation<'m>(
        &self,
        walk: &mut VersionWalk<'_>,
        lock_key: &[u8],
        mutation: &'m Mutation,
        start_ts: Timestamp,
    ) -> Result<Checked<'m>> {
        let key = &mutation.key;
        if let Some(lock) = read_lock(&*self.engine, lock_key)? {
            if lock.start_ts == start_ts {
                return Ok(Checked::OwnLock);
            }
            return Err(TxnError::KeyIsLocked(lock.info(key)));
        }
        let check_ts = mutation.conflict_ts.unwrap_or(start_ts).max(start_ts);
        let newer = walk.newer_versions(key, start_ts, check_ts)?;
        match newer.own {
            Some((_, WriteKind::Rollback)) => return Err(TxnError::TxnAborted),
            Some(_) => return Ok(Checked::OwnRecord),
            None => {}
        }
        if let Some((conflict_commit_ts, conflict_start_ts)) = newer.conflict {
            return Err(TxnError::WriteConflict {
                key: key.clone(),
                start_ts: check_ts,
                conflict_start_ts,
                conflict_commit_ts,
            });
        }
        Ok(match &mutation.op {
            MutationOp::Put(value) => Checked::Write(LockKind::Put, value),
            MutationOp::Insert(value) => {
                if walk.latest_data_kind(key)? == Some(WriteKind::Put) {
                    return Err(TxnError::DuplicateKey { key: key.clone() });
                }
                Checked::Write(LockKind::Put, value)
            }
            MutationOp::Delete => Checked::Write(LockKind::Delete, &[]),
            MutationOp::Lock => Checked::Write(LockKind::Lock, &[]),
        })
    }

    /// Executes [`Command::OnePc`]: every mutation passes the checks of a prewrite, then is
    /// written committed at `commit_ts` at once, with no lock in between.
    fn one_pc_into(
        &self,
        batch: &mut WriteBatch,
        mutations: &[Mutation],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> Result<()> {
        check_commit_ts(start_ts, commit_ts)?;
        let size: usize = mutations.iter().map(Mutation::size).sum();
        batch.reserve(size + mutations.len() * 32);
        let mut key_buf = Vec::new();
        let mut record = Vec::new();
        let mut walk = VersionWalk::over(&*self.engine, mutations);
        for mutation in mutations {
            key_buf.clear();
            lock_key(&mut key_buf, &mutation.key);
            let checked = match self.check_mutation(&mut walk, &key_buf, mutation, start_ts) {
                // A retry of this one-phase commit that applied already has its record, whatever
                // lock a newer transaction holds on the key now.
                Err(TxnError::KeyIsLocked(lock)) => {
                    match self.find_txn_record(&mutation.key, start_ts)? {
                        Some((_, kind)) if kind != WriteKind::Rollback => Checked::OwnRecord,
                        _ => return Err(TxnError::KeyIsLocked(lock)),
                    }
                }
                other => other?,
            };
            let (kind, value) = match checked {
                Checked::Write(kind, value) => (kind, value),
                // A retry of a one-phase commit that applied already.
                Checked::OwnRecord => continue,
                // A two-phase attempt of the same transaction holds the key.
                Checked::OwnLock => {
                    return Err(TxnError::InvalidArgument(format!(
                        "one-phase commit of {start_ts} met its own lock"
                    )))
                }
            };
            let kind = match kind {
                LockKind::Put => WriteKind::Put,
                LockKind::Delete => WriteKind::Delete,
                LockKind::Lock => WriteKind::Lock,
            };
            record.clear();
            WriteRef {
                kind,
                start_ts,
                value,
            }
            .encode(&mut record);
            key_buf.clear();
            write_key(&mut key_buf, &mutation.key, commit_ts);
            batch.put(Cf::Write, &key_buf, &record);
        }
        Ok(())
    }

    /// Applies [`Command::OnePc`] from borrowed parts (synced, like a commit).
    pub fn one_pc(
        &self,
        mutations: &[Mutation],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> Result<()> {
        self.run(mutations.iter().map(|m| m.key.as_slice()), true, |batch| {
            self.one_pc_into(batch, mutations, start_ts, commit_ts)
        })
    }

    /// Applies [`Command::Commit`] from borrowed parts.
    pub fn commit(
        &self,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> Result<()> {
        self.run(keys.iter().map(Vec::as_slice), true, |batch| {
            self.commit_into(batch, keys, start_ts, commit_ts)
        })
    }

    fn commit_into(
        &self,
        batch: &mut WriteBatch,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> Result<()> {
        check_commit_ts(start_ts, commit_ts)?;
        let mut locks = LockReader::over(&*self.engine, keys);
        for key in keys {
            self.commit_key(batch, &mut locks, key, start_ts, commit_ts, false)?;
        }
        Ok(())
    }

    /// Applies [`Command::Rollback`] from borrowed parts.
    pub fn rollback(&self, keys: &[Vec<u8>], start_ts: Timestamp) -> Result<()> {
        self.run(keys.iter().map(Vec::as_slice), true, |batch| {
            for key in keys {
                self.rollback_key(batch, key, start_ts)?;
            }
            Ok(())
        })
    }

    /// Applies [`Command::CheckTxnStatus`] from borrowed parts.
    pub fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> Result<TxnStatus> {
        self.run([primary], true, |batch| {
            self.check_txn_status_into(batch, primary, lock_ts, current_ts)
        })
    }

    fn check_txn_status_into(
        &self,
        batch: &mut WriteBatch,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> Result<TxnStatus> {
        if let Some(status) = self.peek_txn_status(primary, lock_ts, current_ts)? {
            return Ok(status);
        }
        // The primary's lock expired, or it has neither lock nor record: roll it back, and
        // leave a rollback record so that a late prewrite cannot succeed.
        self.rollback_key(batch, primary, lock_ts)?;
        Ok(TxnStatus::RolledBack)
    }

    /// The status of the transaction `lock_ts` with primary key `primary` as of `current_ts`,
    /// if finding it writes nothing: the primary is locked and the lock is live, or its commit
    /// or rollback record is there. `None` when [`Command::CheckTxnStatus`] must roll the
    /// transaction back (its lock expired, or it left no trace). A node answers a status check
    /// from a read this way, and proposes the command only for `None`.
    pub fn peek_txn_status(
        &self,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> Result<Option<TxnStatus>> {
        if let Some(lock) = self.load_lock(primary)?.filter(|l| l.start_ts == lock_ts) {
            let expires_ms = ts_physical_ms(lock.start_ts).saturating_add(lock.ttl_ms);
            return Ok(
                (ts_physical_ms(current_ts) <= expires_ms).then_some(TxnStatus::Locked {
                    ttl_ms: lock.ttl_ms,
                }),
            );
        }
        Ok(match self.find_txn_record(primary, lock_ts)? {
            Some((commit_ts, kind)) if kind != WriteKind::Rollback => {
                Some(TxnStatus::Committed(commit_ts))
            }
            Some(_) => Some(TxnStatus::RolledBack),
            None => None,
        })
    }

    /// Applies [`Command::ResolveLock`] from borrowed parts. Keys without the transaction's lock
    /// are left alone when committing.
    pub fn resolve_lock(
        &self,
        start_ts: Timestamp,
        commit_ts: Option<Timestamp>,
        keys: &[Vec<u8>],
    ) -> Result<()> {
        self.run(keys.iter().map(Vec::as_slice), true, |batch| {
            self.resolve_lock_into(batch, start_ts, commit_ts, keys)
        })
    }

    fn resolve_lock_into(
        &self,
        batch: &mut WriteBatch,
        start_ts: Timestamp,
        commit_ts: Option<Timestamp>,
        keys: &[Vec<u8>],
    ) -> Result<()> {
        if let Some(commit_ts) = commit_ts {
            check_commit_ts(start_ts, commit_ts)?;
        }
        let mut locks = LockReader::over(&*self.engine, keys);
        for key in keys {
            match commit_ts {
                Some(commit_ts) => {
                    self.commit_key(batch, &mut locks, key, start_ts, commit_ts, true)?
                }
                None => self.rollback_key(batch, key, start_ts)?,
            }
        }
        Ok(())
    }

    /// Applies [`Command::DestroyRange`] from borrowed parts: one range deletion per column
    /// family, so the cost does not grow with the number of keys.
    pub fn destroy_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        self.run([], true, |batch| destroy_range_into(batch, start, end))
    }

    /// Returns up to `limit` locks in `[start, end)` (an empty `end`: no bound), in key order,
    /// held by transactions that started at or below `max_ts`.
    pub fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        max_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<LockInfo>> {
        let (lower, upper) = data_bounds(start, end);
        let mut cursor = self.engine.cursor(Cf::Lock, Some(&lower), upper.as_deref());
        cursor.seek_to_first();
        let mut locks = Vec::new();
        while cursor.valid() && locks.len() < limit.max(1) {
            let lock = Lock::decode(cursor.value())?;
            if lock.start_ts <= max_ts {
                locks.push(lock.info(&decode_user_key(cursor.key())?));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(locks)
    }

    /// Applies [`Command::Gc`] from borrowed parts.
    ///
    /// For each key, versions newer than `safe_point` are kept; of the rest, the newest `Put`
    /// is kept, a newest `Delete` is removed, and everything older (and every rollback or lock
    /// record at or below the safe point) is removed.
    pub fn gc(
        &self,
        safe_point: Timestamp,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<GcProgress> {
        self.run([], false, |batch| {
            self.gc_into(batch, safe_point, start, end, limit)
        })
    }

    fn gc_into(
        &self,
        batch: &mut WriteBatch,
        safe_point: Timestamp,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<GcProgress> {
        let (lower, upper) = data_bounds(start, end);
        let mut cursor = self
            .engine
            .cursor(Cf::Write, Some(&lower), upper.as_deref());
        cursor.seek_to_first();
        let mut progress = GcProgress::default();
        let mut current: Vec<u8> = Vec::new();
        let mut has_current = false;
        // Whether the current key's newest version at or below the safe point was seen.
        let mut decided = false;
        while cursor.valid() {
            let (user, ts) = split_write_key(cursor.key())?;
            if !has_current || user != current.as_slice() {
                if progress.keys_scanned >= limit.max(1)
                    || progress.versions_deleted >= GC_MAX_DELETES
                {
                    progress.next_key = Some(decode_user_key(user)?);
                    break;
                }
                current.clear();
                current.extend_from_slice(user);
                has_current = true;
                decided = false;
                progress.keys_scanned += 1;
            }
            if ts <= safe_point {
                let delete = if decided {
                    true
                } else {
                    match WriteRef::decode(cursor.value())?.kind {
                        WriteKind::Put => {
                            decided = true;
                            false
                        }
                        WriteKind::Delete => {
                            decided = true;
                            true
                        }
                        WriteKind::Rollback | WriteKind::Lock => true,
                    }
                };
                if delete {
                    batch.delete(Cf::Write, cursor.key());
                    progress.versions_deleted += 1;
                }
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(progress)
    }

    /// Adds the commit of `key` to `batch`. With `lenient`, a key that has no lock and no commit
    /// record is skipped instead of failing with `TxnNotFound`.
    fn commit_key(
        &self,
        batch: &mut WriteBatch,
        locks: &mut LockReader<'_>,
        key: &[u8],
        start_ts: Timestamp,
        commit_ts: Timestamp,
        lenient: bool,
    ) -> Result<()> {
        match locks.lock(key)? {
            Some(lock) if lock.start_ts == start_ts => {
                if commit_ts < lock.min_commit_ts {
                    return Err(TxnError::InvalidArgument(format!(
                        "commit ts {commit_ts} is below the lock's min commit ts {}",
                        lock.min_commit_ts
                    )));
                }
                let kind = match lock.kind {
                    LockKind::Put => WriteKind::Put,
                    LockKind::Delete => WriteKind::Delete,
                    LockKind::Lock => WriteKind::Lock,
                };
                let mut record = Vec::with_capacity(lock.value.len() + 12);
                WriteRef {
                    kind,
                    start_ts,
                    value: &lock.value,
                }
                .encode(&mut record);
                let mut raw_key = Vec::new();
                write_key(&mut raw_key, key, commit_ts);
                batch.put(Cf::Write, &raw_key, &record);
                raw_key.clear();
                lock_key(&mut raw_key, key);
                batch.delete(Cf::Lock, &raw_key);
                Ok(())
            }
            _ => match self.find_txn_record(key, start_ts)? {
                Some((_, WriteKind::Rollback)) => Err(TxnError::TxnAborted),
                Some(_) => Ok(()), // Already committed: a retry.
                None if lenient => Ok(()),
                None => Err(TxnError::TxnNotFound {
                    key: key.to_vec(),
                    start_ts,
                }),
            },
        }
    }

    /// Adds the rollback of `key` to `batch`: removes the transaction's lock, if any, and leaves
    /// a rollback record unless the transaction committed (an error) or was rolled back already.
    fn rollback_key(&self, batch: &mut WriteBatch, key: &[u8], start_ts: Timestamp) -> Result<()> {
        let mut raw_key = Vec::new();
        match self.load_lock(key)? {
            Some(lock) if lock.start_ts == start_ts => {
                lock_key(&mut raw_key, key);
                batch.delete(Cf::Lock, &raw_key);
            }
            _ => match self.find_txn_record(key, start_ts)? {
                Some((_, WriteKind::Rollback)) => return Ok(()),
                Some((commit_ts, _)) => {
                    return Err(TxnError::AlreadyCommitted {
                        key: key.to_vec(),
                        start_ts,
                        commit_ts,
                    })
                }
                None => {}
            },
        }
        raw_key.clear();
        write_key(&mut raw_key, key, start_ts);
        // With timestamps from one oracle, no other transaction commits at our start ts; if one
        // did, its record wins and is kept.
        if self.engine.get(Cf::Write, &raw_key)?.is_none() {
            let mut record = Vec::with_capacity(12);
            WriteRef {
                kind: WriteKind::Rollback,
                start_ts,
                value: &[],
            }
            .encode(&mut record);
            batch.put(Cf::Write, &raw_key, &record);
        }
        Ok(())
    }

    // ----- Helpers reading one key's records -----

    fn load_lock(&self, key: &[u8]) -> Result<Option<Lock>> {
        let mut raw_key = Vec::new();
        lock_key(&mut raw_key, key);
        read_lock(&*self.engine, &raw_key)
    }

    /// Opens a cursor over the versions of `key` with timestamps `<= max_ts`, positioned at the
    /// newest of them, and returns it with the encoded key.
    fn versions_cursor(&self, key: &[u8], max_ts: Timestamp) -> (Box<dyn Cursor + '_>, Vec<u8>) {
        let mut encoded = Vec::new();
        lock_key(&mut encoded, key);
        let mut lower = Vec::with_capacity(encoded.len() + 8);
        write_key(&mut lower, key, max_ts);
        let mut upper = Vec::with_capacity(encoded.len() + 9);
        versions_end(&mut upper, &encoded);
        let mut cursor = self.engine.cursor(Cf::Write, Some(&lower), Some(&upper));
        cursor.seek_to_first();
        (cursor, encoded)
    }

    /// Looks for the commit or rollback record of the transaction `start_ts` on `key`, returning
    /// its timestamp and kind.
    fn find_txn_record(
        &self,
        key: &[u8],
        start_ts: Timestamp,
    ) -> Result<Option<(Timestamp, WriteKind)>> {
        let (mut cursor, _) = self.versions_cursor(key, Timestamp::MAX);
        while cursor.valid() {
            let (_, ts) = split_write_key(cursor.key())?;
            if ts < start_ts {
                break;
            }
            let write = WriteRef::decode(cursor.value())?;
            if write.start_ts == start_ts {
                return Ok(Some((ts, write.kind)));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(None)
    }

    // ----- Reads -----

    /// Reads `key` as of `read_ts`, failing with `KeyIsLocked` if an undecided transaction that
    /// started at or before `read_ts` holds a lock on it.
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key, read_ts)?.1)
    }

    /// Reads `key` as of `read_ts` like [`MvccStore::get`], with the commit timestamp of the
    /// version read (0: none).
    fn get_versioned(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<(Timestamp, Option<Vec<u8>>)> {
        if let Some(lock) = self.load_lock(key)? {
            if blocks_read(&lock, read_ts) {
                return Err(TxnError::KeyIsLocked(lock.info(key)));
            }
        }
        let (mut cursor, _) = self.versions_cursor(key, read_ts);
        while cursor.valid() {
            let write = WriteRef::decode(cursor.value())?;
            match write.kind {
                WriteKind::Put | WriteKind::Delete => {
                    let (_, commit_ts) = split_write_key(cursor.key())?;
                    let value = (write.kind == WriteKind::Put).then(|| write.value.to_vec());
                    return Ok((commit_ts, value));
                }
                WriteKind::Rollback | WriteKind::Lock => cursor.next(),
            }
        }
        cursor.status()?;
        Ok((0, None))
    }

    /// Reads the newest committed version of `key`, whatever its timestamp: its commit
    /// timestamp (0 if the key was never written) and value (`None` if deleted). Fails with
    /// `KeyIsLocked` if an undecided transaction holds a lock on it, whenever it started: the
    /// answer then tells a caller that no commit of the key is on its way.
    pub fn get_newest(&self, key: &[u8]) -> Result<(Timestamp, Option<Vec<u8>>)> {
        self.get_versioned(key, Timestamp::MAX)
    }

    /// Finds the visible value of the user key encoded as `encoded` at `read_ts`, leaving the
    /// cursor somewhere among (or after) that key's versions.
    fn visible_value(
        cursor: &mut dyn Cursor,
        encoded: &[u8],
        read_ts: Timestamp,
        seek_buf: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        seek_buf.clear();
        seek_buf.extend_from_slice(encoded);
        reef_common::codec::encode_u64_desc(seek_buf, read_ts);
        cursor.seek(seek_buf);
        Self::visible_from_here(cursor, encoded)
    }

    /// Returns up to `limit` visible pairs with `start <= key < end` (an empty `end` means no
    /// end) as of `read_ts`, in ascending key order. Fails with `KeyIsLocked` on the first
    /// blocking lock met before the limit is reached.
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>> {
        self.scan_impl(start, end, read_ts, limit, false)
    }

    /// Like [`MvccStore::scan`], but returns the last `limit` pairs of the range in descending
    /// key order.
    pub fn scan_reverse(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>> {
        self.scan_impl(start, end, read_ts, limit, true)
    }

    /// Scans in two passes. The first walks the write CF for up to `limit` visible values; the
    /// second checks the lock CF only over the key range the first covered. Keeping the lock
    /// cursor inside that range matters: the lock CF is mostly tombstones of resolved locks,
    /// and a cursor bounded by the whole range would step over all of them again on every batch.
    fn scan_impl(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KvPair>> {
        let mut lower = Vec::new();
        lock_key(&mut lower, start);
        let upper = (!end.is_empty()).then(|| {
            let mut upper = Vec::new();
            lock_key(&mut upper, end);
            upper
        });
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // Both passes read one point-in-time view: a transaction committing between them
        // would otherwise be in neither (its record not yet written in the first, its lock
        // gone in the second).
        let view = self.engine.snapshot();
        let mut writes = view.cursor(Cf::Write, Some(&lower), upper.as_deref());
        let mut current = Vec::new();
        let mut seek_buf = Vec::new();
        if reverse {
            writes.seek_to_last();
            while out.len() < limit && writes.valid() {
                current.clear();
                current.extend_from_slice(split_write_key(writes.key())?.0);
                if let Some(value) =
                    Self::visible_value(writes.as_mut(), &current, read_ts, &mut seek_buf)?
                {
                    out.push((decode_user_key(&current)?, value));
                }
                // Every version of `current` sorts after `current` itself.
                writes.seek_for_prev(&current);
            }
        } else {
            writes.seek_to_first();
            while out.len() < limit && writes.valid() {
                let (user, ts) = split_write_key(writes.key())?;
                current.clear();
                current.extend_from_slice(user);
                // The cursor usually stands on the key's newest version already; it only
                // needs a seek when that version is newer than the snapshot.
                let value = if ts <= read_ts {
                    Self::visible_from_here(writes.as_mut(), &current)?
                } else {
                    Self::visible_value(writes.as_mut(), &current, read_ts, &mut seek_buf)?
                };
                if let Some(value) = value {
                    out.push((decode_user_key(&current)?, value));
                }
                Self::skip_versions(writes.as_mut(), &current, &mut seek_buf)?;
            }
        }
        writes.status()?;

        // The locks that matter are those in the part of the range the first pass covered:
        // all of it when the pass ran out of keys, else up to the last key returned.
        let (lock_lower, lock_upper) = match (out.len() == limit, reverse) {
            (false, _) => (lower, upper),
            (true, false) => {
                let mut bound = Vec::new();
                let mut successor = out.last().map(|(k, _)| k.clone()).unwrap_or_default();
                successor.push(0);
                lock_key(&mut bound, &successor);
                (lower, Some(bound))
            }
            (true, true) => {
                let mut bound = Vec::new();
                lock_key(
                    &mut bound,
                    &out.last().map(|(k, _)| k.clone()).unwrap_or_default(),
                );
                (bound, upper)
            }
        };
        let mut locks = view.cursor(Cf::Lock, Some(&lock_lower), lock_upper.as_deref());
        locks.seek_to_first();
        while locks.valid() {
            let lock = Lock::decode(locks.value())?;
            if blocks_read(&lock, read_ts) {
                return Err(TxnError::KeyIsLocked(
                    lock.info(&decode_user_key(locks.key())?),
                ));
            }
            locks.next();
        }
        locks.status()?;
        Ok(out)
    }

    /// Reads the visible value of `encoded` from the cursor's position, which is on one of its
    /// versions no newer than the snapshot.
    fn visible_from_here(cursor: &mut dyn Cursor, encoded: &[u8]) -> Result<Option<Vec<u8>>> {
        while cursor.valid() {
            let (user, _) = split_write_key(cursor.key())?;
            if user != encoded {
                break;
            }
            let write = WriteRef::decode(cursor.value())?;
            match write.kind {
                WriteKind::Put => return Ok(Some(write.value.to_vec())),
                WriteKind::Delete => return Ok(None),
                WriteKind::Rollback | WriteKind::Lock => cursor.next(),
            }
        }
        Ok(None)
    }

    /// Moves a forward cursor past the versions of `encoded`: a few steps first, since most
    /// keys have one or two versions, then a seek.
    fn skip_versions(
        cursor: &mut dyn Cursor,
        encoded: &[u8],
        seek_buf: &mut Vec<u8>,
    ) -> Result<()> {
        for _ in 0..4 {
            if !cursor.valid() || split_write_key(cursor.key())?.0 != encoded {
                return Ok(());
            }
            cursor.next();
        }
        if cursor.valid() && split_write_key(cursor.key())?.0 == encoded {
            seek_buf.clear();
            versions_end(seek_buf, encoded);
            cursor.seek(seek_buf);
        }
        Ok(())
    }
}
