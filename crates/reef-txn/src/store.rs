//! The interface a transaction talks to, and its single-node implementation.

use std::sync::Arc;

use reef_common::Timestamp;
use reef_storage::Engine;

use crate::error::{LockInfo, Result};
use crate::mvcc::{GcProgress, KvPair, Mutation, MvccStore, TxnStatus};

/// A filter and projection a client attaches to a scan, run where the data is stored: the SQL
/// layer's pushed-down predicates and needed columns. The program is opaque to this crate;
/// the node that stores the data compiles it with the [`ScanFilter`] it was given.
pub trait ScanFilter: Send + Sync {
    /// Compiles `program` for one scan.
    fn compile(&self, program: &[u8]) -> Result<Box<dyn PairFilter>>;
}

/// A compiled scan program (see [`ScanFilter`]).
pub trait PairFilter: Send {
    /// Returns the value to return for the pair, reduced to what the client needs, or `None`
    /// to leave the pair out. The client applies its own filter again, so passing a pair it
    /// would drop is always correct.
    fn apply(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>>;
}

/// A batch of a filtered scan: the pairs that passed, and where the scan stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilteredBatch {
    /// The pairs that passed, in key order.
    pub pairs: Vec<KvPair>,
    /// The key the scan goes on from, or `None` once it reached its end.
    pub resume: Option<Vec<u8>>,
}

/// Where a scan that read `pairs` with a limit of `limit` goes on from: just after the last
/// pair when the batch was full, `None` when the scan reached the end of its range.
pub fn resume_key(pairs: &[KvPair], limit: usize) -> Option<Vec<u8>> {
    match pairs.last() {
        Some((last, _)) if pairs.len() >= limit => {
            let mut next = Vec::with_capacity(last.len() + 1);
            next.extend_from_slice(last);
            next.push(0);
            Some(next)
        }
        _ => None,
    }
}

/// The transactional key-value service a [`Transaction`](crate::Transaction) uses.
///
/// [`LocalStore`] serves it from the local engine; a routed cluster client will implement the
/// same trait later. Every method corresponds to one MVCC read or [`Command`](crate::Command).
pub trait Store: Send + Sync {
    /// Reads `key` as of `read_ts` (see [`MvccStore::get`]).
    fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>>;
    /// Reads the newest committed version of `key` (see [`MvccStore::get_newest`]): its commit
    /// timestamp and value. `read_ts` is the timestamp the caller reads at, which the store
    /// records as it does a [`Store::get`]'s.
    fn get_newest(&self, key: &[u8], read_ts: Timestamp) -> Result<(Timestamp, Option<Vec<u8>>)>;
    /// Reads up to `limit` pairs in `start..end` (empty `end`: unbounded) as of `read_ts`, in
    /// ascending order.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>>;
    /// Reads up to `limit` pairs in `start..end` (empty `end`: unbounded) as of `read_ts`, in
    /// ascending order, and applies `program` (see [`ScanFilter`]) to them where they are
    /// stored. A store without a filter returns them as they are, which the caller's own
    /// filter copes with.
    fn scan_filtered(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
        program: &[u8],
    ) -> Result<FilteredBatch> {
        let _ = program;
        let pairs = self.scan(start, end, read_ts, limit)?;
        let resume = resume_key(&pairs, limit);
        Ok(FilteredBatch { pairs, resume })
    }
    /// Reads the last `limit` pairs in `start..end` (empty `end`: unbounded) as of `read_ts`, in
    /// descending order.
    fn scan_reverse(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>>;
    /// Prewrites `mutations` (see [`Command::Prewrite`](crate::Command::Prewrite)).
    fn prewrite(
        &self,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: Timestamp,
        lock_ttl_ms: u64,
    ) -> Result<()>;
    /// Commits `mutations` in one step when the store can (see
    /// [`Command::OnePc`](crate::Command::OnePc)): every key in one partition, whose leader
    /// picks a commit timestamp no higher than `max_commit_ts`. Returns the commit timestamp,
    /// or `None` when the store declined before writing anything, and the caller commits in
    /// two phases instead. An error is the command's own (a conflict, a lock in the way) or an
    /// unknown outcome ([`TxnError::Unavailable`](crate::TxnError::Unavailable)). The
    /// default declines.
    fn one_pc(
        &self,
        mutations: &[Mutation],
        start_ts: Timestamp,
        max_commit_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let _ = (mutations, start_ts, max_commit_ts);
        Ok(None)
    }
    /// Commits `keys` (see [`Command::Commit`](crate::Command::Commit)).
    fn commit(&self, keys: &[Vec<u8>], start_ts: Timestamp, commit_ts: Timestamp) -> Result<()>;
    /// Rolls back `keys` (see [`Command::Rollback`](crate::Command::Rollback)).
    fn rollback(&self, keys: &[Vec<u8>], start_ts: Timestamp) -> Result<()>;
    /// Decides a transaction's status (see
    /// [`Command::CheckTxnStatus`](crate::Command::CheckTxnStatus)).
    fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> Result<TxnStatus>;
    /// Resolves leftover locks (see [`Command::ResolveLock`](crate::Command::ResolveLock)).
    fn resolve_lock(
        &self,
        start_ts: Timestamp,
        commit_ts: Option<Timestamp>,
        keys: &[Vec<u8>],
    ) -> Result<()>;
    /// Collects garbage for at most `limit` keys (see [`Command::Gc`](crate::Command::Gc)).
    fn gc(
        &self,
        safe_point: Timestamp,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<GcProgress>;
    /// Removes a range outright (see [`Command::DestroyRange`](crate::Command::DestroyRange)).
    fn destroy_range(&self, start: &[u8], end: &[u8]) -> Result<()>;
    /// Returns up to `limit` locks in `[start, end)` held by transactions that started at or
    /// below `max_ts` (see [`MvccStore::scan_locks`]).
    fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        max_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<LockInfo>>;
}

/// A [`Store`] over an [`MvccStore`] on the local engine.
#[derive(Clone)]
pub struct LocalStore {
    mvcc: Arc<MvccStore>,
}

impl LocalStore {
    /// Creates a store over `engine`.
    pub fn new(engine: Arc<dyn Engine>) -> LocalStore {
        LocalStore {
            mvcc: Arc::new(MvccStore::new(engine)),
        }
    }

    /// Returns the MVCC store it applies commands to.
    pub fn mvcc(&self) -> &Arc<MvccStore> {
        &self.mvcc
    }
}

impl Store for LocalStore {
    fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>> {
        self.mvcc.get(key, read_ts)
    }

    fn get_newest(&self, key: &[u8], _read_ts: Timestamp) -> Result<(Timestamp, Option<Vec<u8>>)> {
        self.mvcc.get_newest(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>> {
        self.mvcc.scan(start, end, read_ts, limit)
    }

    fn scan_reverse(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>> {
        self.mvcc.scan_reverse(start, end, read_ts, limit)
    }

    fn prewrite(
        &self,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: Timestamp,
        lock_ttl_ms: u64,
    ) -> Result<()> {
        self.mvcc
            .prewrite(mutations, primary, start_ts, lock_ttl_ms, 0)
    }

    fn commit(&self, keys: &[Vec<u8>], start_ts: Timestamp, commit_ts: Timestamp) -> Result<()> {
        self.mvcc.commit(keys, start_ts, commit_ts)
    }

    fn rollback(&self, keys: &[Vec<u8>], start_ts: Timestamp) -> Result<()> {
        self.mvcc.rollback(keys, start_ts)
    }

    fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> Result<TxnStatus> {
        self.mvcc.check_txn_status(primary, lock_ts, current_ts)
    }

    fn resolve_lock(
        &self,
        start_ts: Timestamp,
        commit_ts: Option<Timestamp>,
        keys: &[Vec<u8>],
    ) -> Result<()> {
        self.mvcc.resolve_lock(start_ts, commit_ts, keys)
    }

    fn gc(
        &self,
        safe_point: Timestamp,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<GcProgress> {
        self.mvcc.gc(safe_point, start, end, limit)
    }

    fn destroy_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        self.mvcc.destroy_range(start, end)
    }

    fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        max_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<LockInfo>> {
        self.mvcc.scan_locks(start, end, max_ts, limit)
    }
}
