//! The interface a transaction talks to, and its single-node implementation.

use std::sync::Arc;

use reef_common::Timestamp;
use reef_storage::Engine;

use crate::error::{LockInfo, Result};
use crate::mvcc::{GcProgress, KvPair, Mutation, MvccStore, TxnStatus};

/// The transactional key-value service a [`Transaction`](crate::Transaction) uses.
///
/// [`LocalStore`] serves it from the local engine; a routed cluster client will implement the
/// same trait later. Every method corresponds to one MVCC read or [`Command`](crate::Command).
pub trait Store: Send + Sync {
    /// Reads `key` as of `read_ts` (see [`MvccStore::get`]).
    fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>>;
    /// Reads up to `limit` pairs in `start..end` (empty `end`: unbounded) as of `read_ts`, in
    /// ascending order.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<KvPair>>;
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
