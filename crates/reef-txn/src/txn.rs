//! The client side of Percolator: transactions with buffered writes and two-phase commit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reef_common::Timestamp;
use reef_storage::Engine;

use crate::buffer::{Buffered, BufferedOp, BufferedRange, Pending, SpillEngine, WriteBuffer};
use crate::error::{LockInfo, Result, TxnError};
use crate::mvcc::{GcProgress, KvPair, Mutation, MutationOp, TxnStatus};
use crate::store::{LocalStore, Store};
use crate::tso::{LocalTso, TimestampOracle};

/// The isolation level of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Each statement reads a fresh snapshot; writes conflict only with commits newer than the
    /// writing statement's snapshot.
    ReadCommitted,
    /// Every statement reads the snapshot at the transaction's start timestamp (snapshot
    /// isolation); writes conflict with any commit newer than it.
    RepeatableRead,
}

/// Tuning of a [`TxnClient`].
#[derive(Clone, Debug)]
pub struct TxnConfig {
    /// The longest a read or prewrite waits for other transactions' live locks.
    pub lock_wait_timeout: Duration,
    /// The smallest lock time to live (the size-based part may raise it).
    pub min_lock_ttl_ms: u64,
    /// The first batch size a scanner fetches; it doubles up to `scan_batch_max`.
    pub scan_batch_min: usize,
    /// The largest batch size a scanner fetches.
    pub scan_batch_max: usize,
    /// The most bytes of mutations sent in one prewrite or commit request.
    pub max_batch_bytes: usize,
    /// The most keys sent in one prewrite or commit request.
    pub max_batch_keys: usize,
    /// Commit secondary keys in the background once the primary committed, instead of before
    /// `commit` returns. The transaction is decided by its primary either way; readers that
    /// meet a secondary lock first commit it themselves. Worth it when every commit request
    /// is a network round trip (a cluster); off on a single node.
    pub async_secondaries: bool,
    /// Where a transaction's writes go once more than `spill_bytes` of them wait in memory
    /// (see [`SpillEngine`]). Without one, every write stays in memory until commit.
    pub spill: Option<SpillEngine>,
    /// How many bytes of writes a transaction keeps in memory before it spills them.
    pub spill_bytes: usize,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            lock_wait_timeout: Duration::from_secs(30),
            min_lock_ttl_ms: 3000,
            scan_batch_min: 32,
            scan_batch_max: 4096,
            max_batch_bytes: 4 << 20,
            max_batch_keys: 4096,
            async_secondaries: false,
            spill: None,
            spill_bytes: 16 << 20,
        }
    }
}

/// State shared by a client and all of its transactions and scanners.
struct Shared {
    store: Arc<dyn Store>,
    tso: Arc<dyn TimestampOracle>,
    config: TxnConfig,
    /// Start timestamps of live transactions and scanners, with reference counts.
    active: Arc<Mutex<BTreeMap<Timestamp, usize>>>,
    /// Transactions between asking the oracle for a start timestamp and registering it.
    beginning: std::sync::atomic::AtomicUsize,
    /// Commits so far, by kind.
    one_phase: std::sync::atomic::AtomicU64,
    two_phase: std::sync::atomic::AtomicU64,
    /// The queue of the background secondary committers, with `async_secondaries`.
    committer: Option<crossbeam_channel::Sender<SecondaryCommit>>,
    /// The committer threads, joined when the client goes away.
    committers: Vec<std::thread::JoinHandle<()>>,
    /// Secondary commits handed to the committers and not yet done.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Set when the client stops waiting for the committers: they drop what is left.
    abandoned: Arc<std::sync::atomic::AtomicBool>,
}

/// Secondary keys of a committed transaction, for a background committer.
struct SecondaryCommit {
    keys: Vec<Vec<u8>>,
    start_ts: Timestamp,
    commit_ts: Timestamp,
    /// Holds the GC safe point below `start_ts` until the keys are committed: GC must not
    /// remove the primary's commit record while a secondary lock may still need it.
    _active: Option<Arc<ActiveGuard>>,
}

/// How many secondary commits may wait for a background committer; past it, the committing
/// transaction commits its secondaries itself.
const SECONDARY_QUEUE: usize = 4096;
/// How many background committer threads a client runs.
const SECONDARY_COMMITTERS: usize = 2;

/// Commits secondary keys of one transaction, logging a failure: the transaction is committed,
/// and a reader that meets a leftover lock commits it.
fn commit_secondaries(store: &dyn Store, job: &SecondaryCommit) {
    if let Err(err) = store.commit(&job.keys, job.start_ts, job.commit_ts) {
        tracing::warn!(
            start_ts = job.start_ts,
            commit_ts = job.commit_ts,
            %err,
            "failed to commit secondary keys"
        );
    }
}

/// Starts the background committers; they stop once the client is gone and the queue is
/// drained (see `Shared`'s `Drop`).
fn start_committers(
    store: &Arc<dyn Store>,
    queued: &Arc<std::sync::atomic::AtomicUsize>,
    abandoned: &Arc<std::sync::atomic::AtomicBool>,
) -> (
    crossbeam_channel::Sender<SecondaryCommit>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let (tx, rx) = crossbeam_channel::bounded::<SecondaryCommit>(SECONDARY_QUEUE);
    let handles = (0..SECONDARY_COMMITTERS)
        .map(|i| {
            let (store, rx) = (store.clone(), rx.clone());
            let (queued, abandoned) = (queued.clone(), abandoned.clone());
            std::thread::Builder::new()
                .name(format!("reef-commit-{i}"))
                .spawn(move || {
                    for job in rx {
                        if !abandoned.load(std::sync::atomic::Ordering::Acquire) {
                            commit_secondaries(&*store, &job);
                        }
                        queued.fetch_sub(1, std::sync::atomic::Ordering::Release);
                    }
                })
                .expect("spawning a secondary committer")
        })
        .collect();
    (tx, handles)
}

impl Drop for Shared {
    /// Closes the committers' queue and waits for them to commit what it holds, so no
    /// committer outlives the client (and the store it writes to).
    fn drop(&mut self) {
        self.committer = None;
        for handle in self.committers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Registers a timestamp as in use until dropped, holding back the GC safe point. It holds the
/// client's table of live timestamps, not the client: a queued background commit keeps its
/// guard, and must not keep the client alive.
struct ActiveGuard {
    active: Arc<Mutex<BTreeMap<Timestamp, usize>>>,
    ts: Timestamp,
}

impl ActiveGuard {
    fn new(shared: &Shared, ts: Timestamp) -> Arc<ActiveGuard> {
        *shared.active.lock().entry(ts).or_insert(0) += 1;
        Arc::new(ActiveGuard {
            active: shared.active.clone(),
            ts,
        })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut active = self.active.lock();
        if let Some(count) = active.get_mut(&self.ts) {
            *count -= 1;
            if *count == 0 {
                active.remove(&self.ts);
            }
        }
    }
}

/// Exponential backoff while waiting for a live lock, bounded by a deadline.
struct Backoff {
    delay: Duration,
    deadline: Instant,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(50);

    fn new(timeout: Duration) -> Backoff {
        Backoff {
            delay: Backoff::FIRST,
            deadline: Instant::now() + timeout,
        }
    }

    fn wait(&mut self) -> Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(TxnError::LockWaitTimeout);
        }
        std::thread::sleep(self.delay.min(self.deadline - now));
        self.delay = (self.delay * 2).min(Backoff::MAX);
        Ok(())
    }
}

/// A condition a transaction confirms with its commit timestamp in hand: after every key is
/// prewritten and before the primary commits, so nothing can commit between the check and the
/// decision below it. The SQL layer fences commits against concurrent schema changes this way.
///
/// A commit at or below `free_until` is accepted without running `check` (the caller knows
/// the condition holds until then); above it, `check` reads what it needs at the commit
/// timestamp through the [`CommitView`] and returns an error to refuse the commit, which
/// rolls the transaction back and fails [`Transaction::commit`] with [`TxnError::Fenced`] (or
/// the check's own error).
pub struct CommitFence {
    /// The highest commit timestamp accepted without running `check`.
    pub free_until: Timestamp,
    /// Decides a commit above `free_until`.
    pub check: Box<dyn Fn(&CommitView<'_>) -> Result<()> + Send + Sync>,
}

impl std::fmt::Debug for CommitFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitFence")
            .field("free_until", &self.free_until)
            .finish_non_exhaustive()
    }
}

/// Takes a timestamp, waits until the oracle is `ms` milliseconds past it, and returns the
/// first timestamp it gives from then on.
fn wait_past(tso: &dyn TimestampOracle, ms: u64) -> Result<Timestamp> {
    let from = tso.get_ts()?;
    let until = reef_common::ts_after_ms(from, ms);
    loop {
        let now = tso.get_ts()?;
        if now > until {
            return Ok(now);
        }
        let left =
            reef_common::ts_physical_ms(until).saturating_sub(reef_common::ts_physical_ms(now));
        std::thread::sleep(Duration::from_millis(left.clamp(1, 50)));
    }
}

/// Holds a two-phase commit back after its prewrite until the oracle has moved `ms`
/// milliseconds past a timestamp taken once every key was prewritten, so the commit timestamp
/// lies that far above the moment its locks became visible. A reader that found a key
/// unlocked and saw its newest version (see [`Transaction::get_newest`]) at timestamp `t` then
/// knows the key keeps that version until `t` plus `ms` at least. The SQL layer lets nodes
/// trust their cached catalog for a while this way. A transaction with a commit wait never
/// commits in one phase.
pub struct CommitWait {
    /// How far past the prewrite, in milliseconds of oracle time, the commit must land.
    pub ms: u64,
    /// Runs once every key is prewritten, before the commit timestamp is taken; returns
    /// whether the commit must wait (false: no reader can be relying on the keys).
    pub after_prewrite: Box<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for CommitWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitWait")
            .field("ms", &self.ms)
            .finish_non_exhaustive()
    }
}

/// What a [`CommitFence`] check sees: committed data as of the commit timestamp.
pub struct CommitView<'a> {
    shared: &'a Shared,
    start_ts: Timestamp,
    commit_ts: Timestamp,
}

impl CommitView<'_> {
    /// The timestamp the transaction is about to commit at.
    pub fn commit_ts(&self) -> Timestamp {
        self.commit_ts
    }

    /// Reads the committed value of `key` as of the commit timestamp, resolving the locks of
    /// finished transactions on it. It does not wait for a live transaction's lock, which
    /// could be waiting for this transaction's own locks: it fails with
    /// [`TxnError::KeyIsLocked`] instead. The transaction's own writes are not visible here
    /// either: a key it wrote is locked by itself, which is an error.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let shared = self.shared;
        loop {
            let lock = match shared.store.get(key, self.commit_ts) {
                Err(TxnError::KeyIsLocked(lock)) => lock,
                result => return result,
            };
            if lock.start_ts == self.start_ts {
                return Err(TxnError::InvalidArgument(
                    "a commit fence read a key its own transaction wrote".into(),
                ));
            }
            if !shared.resolve_decided(&lock)? {
                return Err(TxnError::KeyIsLocked(lock));
            }
        }
    }
}

impl Shared {
    /// Deals with a lock in the way: resolves it if its transaction is decided (or expired),
    /// otherwise waits a little. The caller retries afterwards.
    fn handle_lock(&self, lock: &LockInfo, backoff: &mut Backoff) -> Result<()> {
        if self.resolve_decided(lock)? {
            Ok(())
        } else {
            backoff.wait()
        }
    }

    /// Resolves a lock whose transaction is decided (committed, rolled back, or expired and
    /// now rolled back): returns false, without touching it, while the transaction may still
    /// commit.
    fn resolve_decided(&self, lock: &LockInfo) -> Result<bool> {
        let current_ts = self.tso.get_ts()?;
        let keys = std::slice::from_ref(&lock.key);
        match self
            .store
            .check_txn_status(&lock.primary, lock.start_ts, current_ts)?
        {
            TxnStatus::Committed(commit_ts) => {
                tracing::debug!(
                    start_ts = lock.start_ts,
                    commit_ts,
                    "committing a secondary lock"
                );
                self.store
                    .resolve_lock(lock.start_ts, Some(commit_ts), keys)?;
            }
            TxnStatus::RolledBack => {
                tracing::debug!(start_ts = lock.start_ts, "rolling back an abandoned lock");
                self.store.resolve_lock(lock.start_ts, None, keys)?;
            }
            TxnStatus::Locked { .. } => return Ok(false),
        }
        Ok(true)
    }

    /// Runs `op`, resolving or waiting for locks it meets and retrying.
    fn retry_locks<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut backoff = Backoff::new(self.config.lock_wait_timeout);
        loop {
            match op() {
                Err(TxnError::KeyIsLocked(lock)) => self.handle_lock(&lock, &mut backoff)?,
                result => return result,
            }
        }
    }

    /// Splits mutations into request-sized chunks.
    fn chunks<'a>(&self, mutations: &'a [Mutation]) -> Vec<&'a [Mutation]> {
        let mut chunks = Vec::new();
        let (mut begin, mut bytes) = (0, 0);
        for (i, m) in mutations.iter().enumerate() {
            let size = m.key.len()
                + match &m.op {
                    MutationOp::Put(v) | MutationOp::Insert(v) => v.len(),
                    _ => 0,
                };
            if i > begin
                && (bytes + size > self.config.max_batch_bytes
                    || i - begin >= self.config.max_batch_keys)
            {
                chunks.push(&mutations[begin..i]);
                begin = i;
                bytes = 0;
            }
            bytes += size;
        }
        if begin < mutations.len() {
            chunks.push(&mutations[begin..]);
        }
        chunks
    }
}

/// The transaction counters of the process (see `reef_common::metrics`).
pub(crate) struct TxnMetrics {
    /// Bytes of writes transactions moved from memory to the spill engine.
    pub spilled_bytes: reef_common::metrics::Counter,
    one_phase: reef_common::metrics::Counter,
    two_phase: reef_common::metrics::Counter,
    conflicts: reef_common::metrics::Counter,
    aborts: reef_common::metrics::Counter,
    unavailable: reef_common::metrics::Counter,
}

pub(crate) fn txn_metrics() -> &'static TxnMetrics {
    static METRICS: std::sync::OnceLock<TxnMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let r = reef_common::metrics::registry();
        let commits = |kind| {
            r.counter(
                "reef_txn_commits_total",
                "Transactions committed, by how.",
                &["kind"],
                &[kind],
            )
        };
        let failed = |reason| {
            r.counter(
                "reef_txn_commit_failures_total",
                "Commits that failed, by why: a write conflict, another abort, or an unavailable \
                 cluster (it did not answer in time; when that was the primary's commit, the \
                 outcome is unknown to the client).",
                &["reason"],
                &[reason],
            )
        };
        TxnMetrics {
            spilled_bytes: r.counter(
                "reef_txn_spilled_bytes_total",
                "Bytes of writes that transactions too large for memory moved to disk.",
                &[],
                &[],
            ),
            one_phase: commits("one_phase"),
            two_phase: commits("two_phase"),
            conflicts: failed("conflict"),
            aborts: failed("abort"),
            unavailable: failed("unavailable"),
        }
    })
}

/// The entry point for transactions: a cheap, cloneable handle on a store and an oracle.
#[derive(Clone)]
pub struct TxnClient {
    shared: Arc<Shared>,
}

impl TxnClient {
    /// Creates a client with default tuning.
    pub fn new(store: Arc<dyn Store>, tso: Arc<dyn TimestampOracle>) -> TxnClient {
        TxnClient::with_config(store, tso, TxnConfig::default())
    }

    /// Creates a client with the given tuning.
    pub fn with_config(
        store: Arc<dyn Store>,
        tso: Arc<dyn TimestampOracle>,
        config: TxnConfig,
    ) -> TxnClient {
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (committer, committers) = match config.async_secondaries {
            true => {
                let (tx, handles) = start_committers(&store, &queued, &abandoned);
                (Some(tx), handles)
            }
            false => (None, Vec::new()),
        };
        TxnClient {
            shared: Arc::new(Shared {
                store,
                tso,
                config,
                active: Arc::new(Mutex::new(BTreeMap::new())),
                beginning: std::sync::atomic::AtomicUsize::new(0),
                one_phase: Default::default(),
                two_phase: Default::default(),
                committer,
                committers,
                queued,
                abandoned,
            }),
        }
    }

    /// Waits up to `timeout` for the background committers to finish every secondary commit
    /// handed to them so far, and returns how many were left: those the committers then drop
    /// (the transactions are committed; a reader that meets a leftover lock commits it). A
    /// node calls it before it stops its storage, so no commit is left to fail against a
    /// stopped store, each after waiting out its deadline.
    pub fn drain_secondaries(&self, timeout: Duration) -> usize {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let until = Instant::now() + timeout;
        loop {
            let left = self.shared.queued.load(Acquire);
            if left == 0 {
                return 0;
            }
            if Instant::now() >= until {
                self.shared.abandoned.store(true, Release);
                return left;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Creates a single-node client: a [`LocalStore`] and a [`LocalTso`] on `engine`.
    pub fn local(engine: Arc<dyn Engine>) -> Result<TxnClient> {
        let tso = Arc::new(LocalTso::open(engine.clone())?);
        Ok(TxnClient::new(Arc::new(LocalStore::new(engine)), tso))
    }

    /// Returns the store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Returns the timestamp oracle.
    pub fn tso(&self) -> &Arc<dyn TimestampOracle> {
        &self.shared.tso
    }

    /// Starts a transaction, taking its start timestamp from the oracle.
    pub fn begin(&self, isolation: IsolationLevel) -> Result<Transaction> {
        use std::sync::atomic::Ordering::SeqCst;
        self.shared.beginning.fetch_add(1, SeqCst);
        let start_ts = self.shared.tso.get_ts();
        let active = start_ts
            .as_ref()
            .ok()
            .map(|ts| ActiveGuard::new(&self.shared, *ts));
        self.shared.beginning.fetch_sub(1, SeqCst);
        let (start_ts, active) = (start_ts?, active.expect("registered with its timestamp"));
        let config = &self.shared.config;
        let spill = config
            .spill
            .clone()
            .map(|engine| (engine, config.spill_bytes));
        Ok(Transaction {
            inner: Arc::new(TxnInner {
                shared: self.shared.clone(),
                start_ts,
                isolation,
                started: Instant::now(),
                state: Mutex::new(TxnState {
                    read_ts: start_ts,
                    writes: WriteBuffer::new(spill, start_ts),
                    failed: None,
                    status: Status::Active,
                    active: Some(active),
                    fence: None,
                    wait: None,
                }),
            }),
        })
    }

    /// Returns how many transactions of this client committed so far in one phase and in two.
    pub fn commit_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.shared.one_phase.load(Relaxed),
            self.shared.two_phase.load(Relaxed),
        )
    }

    /// Returns the start timestamps of this client's live transactions (and scanners, and
    /// queued background commits), oldest first.
    pub fn live_start_timestamps(&self) -> Vec<Timestamp> {
        self.shared.active.lock().keys().copied().collect()
    }

    /// Returns the smallest start timestamp of a live transaction (or scanner) of this client.
    /// A GC safe point must stay below it.
    pub fn min_active_start_ts(&self) -> Option<Timestamp> {
        self.shared.active.lock().keys().next().copied()
    }

    /// Returns true if a live transaction (or scanner) of this client other than the one that
    /// started at `except` started below `ts`. A transaction still taking its start timestamp
    /// counts as live: called after `ts` was handed out, a `false` means every transaction of
    /// this client that is not live yet starts above `ts`.
    pub fn has_live_before(&self, ts: Timestamp, except: Option<Timestamp>) -> bool {
        if self
            .shared
            .beginning
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            return true;
        }
        self.shared
            .active
            .lock()
            .range(..ts)
            .any(|(start, count)| Some(*start) != except || *count > 1)
    }

    /// Collects garbage over the whole key space: settles the locks of finished transactions
    /// that started at or below the safe point, destroys the ranges registered by
    /// [`Transaction::destroy_range`] whose transactions committed at or below `safe_point`,
    /// then removes versions that no snapshot at or above `safe_point` can see. The safe point
    /// is lowered below the oldest live transaction of this client if needed. Returns the
    /// totals.
    pub fn run_gc(&self, safe_point: Timestamp) -> Result<GcProgress> {
        let safe_point = match self.min_active_start_ts() {
            Some(min) => safe_point.min(min.saturating_sub(1)),
            None => safe_point,
        };
        let (safe_point, locks_resolved) = self.settle_locks(safe_point)?;
        let mut total = GcProgress {
            ranges_destroyed: self.destroy_registered_ranges(safe_point)?,
            locks_resolved,
            ..GcProgress::default()
        };
        let mut start = Vec::new();
        loop {
            let progress = self.shared.store.gc(safe_point, &start, &[], 1024)?;
            total.keys_scanned += progress.keys_scanned;
            total.versions_deleted += progress.versions_deleted;
            match progress.next_key {
                Some(next) => start = next,
                None => return Ok(total),
            }
        }
    }

    /// Commits or rolls back, by their primaries' outcome, the locks of finished transactions
    /// that started at or below `safe_point` (a client that died after committing its primary
    /// leaves secondary locks). GC then never removes a commit record a leftover lock still
    /// needs: once the primary is overwritten, its record is garbage, and a reader meeting the
    /// secondary would find no record and roll it back. A lock whose transaction may still
    /// commit (its TTL has not run out) keeps the safe point below its start. Returns the safe
    /// point to collect at and how many locks were resolved.
    fn settle_locks(&self, mut safe_point: Timestamp) -> Result<(Timestamp, usize)> {
        const BATCH: usize = 1024;
        let store = &self.shared.store;
        let mut resolved = 0;
        let mut start = Vec::new();
        loop {
            let locks = store.scan_locks(&start, &[], safe_point, BATCH)?;
            let current_ts = self.shared.tso.get_ts()?;
            // One status check and one resolve per transaction in the batch. The outcome is
            // `None` while the transaction may still commit, else its commit ts, if any.
            let mut txns: BTreeMap<Timestamp, (Option<Option<Timestamp>>, Vec<Vec<u8>>)> =
                BTreeMap::new();
            for lock in &locks {
                let (outcome, keys) = match txns.entry(lock.start_ts) {
                    std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        let outcome = match store.check_txn_status(
                            &lock.primary,
                            lock.start_ts,
                            current_ts,
                        )? {
                            TxnStatus::Committed(commit_ts) => Some(Some(commit_ts)),
                            TxnStatus::RolledBack => Some(None),
                            TxnStatus::Locked { .. } => None,
                        };
                        entry.insert((outcome, Vec::new()))
                    }
                };
                if outcome.is_some() {
                    keys.push(lock.key.clone());
                }
            }
            for (start_ts, (outcome, keys)) in txns {
                match outcome {
                    Some(commit_ts) => {
                        store.resolve_lock(start_ts, commit_ts, &keys)?;
                        resolved += keys.len();
                    }
                    None => safe_point = safe_point.min(start_ts.saturating_sub(1)),
                }
            }
            match locks.last() {
                Some(last) if locks.len() >= BATCH => {
                    start = last.key.clone();
                    start.push(0);
                }
                _ => return Ok((safe_point, resolved)),
            }
        }
    }

    /// Destroys the registered ranges whose registering transactions committed at or below
    /// `safe_point`, and removes their records. Returns how many it destroyed.
    fn destroy_registered_ranges(&self, safe_point: Timestamp) -> Result<usize> {
        let registry_end = [
            DESTROY_REGISTRY[0],
            DESTROY_REGISTRY[1],
            DESTROY_REGISTRY[2] + 1,
        ];
        // A current snapshot first: reading resolves what crashed transactions left locked,
        // which would otherwise stand in the way of the read at the safe point forever.
        let probe = self.begin(IsolationLevel::RepeatableRead)?;
        let pending = probe
            .scan(DESTROY_REGISTRY, &registry_end)?
            .next()
            .transpose()?
            .is_some();
        probe.rollback()?;
        if !pending {
            return Ok(0);
        }
        let records =
            match self
                .shared
                .store
                .scan(DESTROY_REGISTRY, &registry_end, safe_point, 1024)
            {
                Ok(records) => records,
                // A registering transaction is still undecided: a later round takes its range.
                Err(TxnError::KeyIsLocked(_)) => return Ok(0),
                Err(err) => return Err(err),
            };
        for (key, end) in &records {
            self.shared
                .store
                .destroy_range(&key[DESTROY_REGISTRY.len()..], end)?;
            // Destroying is idempotent: if removing the record fails, a later round repeats it.
            let txn = self.begin(IsolationLevel::RepeatableRead)?;
            txn.delete(key.clone());
            let _ = txn.commit();
        }
        Ok(records.len())
    }
}

/// The prefix of the destroy registry, inside the transaction layer's own key range
/// ([`reef_common::keys::TXN_PREFIX`]): each record holds a range to destroy once the GC safe
/// point passes the commit that wrote it (key: prefix, then the range's start; value: its end).
pub const DESTROY_REGISTRY: &[u8] = &[0x01, 0x00, b'd'];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Active,
    Committed,
    RolledBack,
}

struct TxnState {
    read_ts: Timestamp,
    writes: WriteBuffer,
    /// Why the write buffer failed (spilling to disk can), which fails everything but a
    /// rollback from then on.
    failed: Option<String>,
    status: Status,
    active: Option<Arc<ActiveGuard>>,
    fence: Option<CommitFence>,
    wait: Option<CommitWait>,
}

impl TxnState {
    fn check_active(&self) -> Result<()> {
        match self.status {
            Status::Active => Ok(()),
            Status::Committed => Err(TxnError::InvalidArgument(
                "the transaction is already committed".into(),
            )),
            Status::RolledBack => Err(TxnError::InvalidArgument(
                "the transaction is already rolled back".into(),
            )),
        }
    }

    /// Like `check_active`, and also fails once the write buffer has failed.
    fn check_usable(&self) -> Result<()> {
        self.check_active()?;
        match &self.failed {
            Some(err) => Err(TxnError::Storage(reef_storage::StorageError::Engine(
                format!("the transaction's writes could not be spilled to disk: {err}"),
            ))),
            None => Ok(()),
        }
    }

    /// Notes a failure of the write buffer.
    fn fail(&mut self, err: TxnError) {
        self.failed.get_or_insert_with(|| err.to_string());
    }

    /// Returns true if the transaction's write to `key` is an insert; a failure of the buffer
    /// counts as no (and fails the transaction's next read or commit).
    fn wrote_insert(&mut self, key: &[u8]) -> bool {
        match self.writes.get(key) {
            Ok(write) => matches!(write.as_deref().map(|w| &w.op), Some(BufferedOp::Insert(_))),
            Err(err) => {
                self.fail(err);
                false
            }
        }
    }

    /// Buffers a write that conflicts with commits above `conflict_ts`.
    fn buffer_since(&mut self, key: Vec<u8>, op: BufferedOp, conflict_ts: Timestamp) {
        if let Err(err) = self.writes.put(key, Buffered { op, conflict_ts }) {
            self.fail(err);
        }
    }

    /// Buffers a write of the current statement.
    fn buffer(&mut self, key: Vec<u8>, op: BufferedOp) {
        self.buffer_since(key, op, self.read_ts);
    }

    fn finish(&mut self, status: Status) {
        self.status = status;
        self.writes.clear();
        self.failed = None;
        self.active = None;
        self.fence = None;
    }
}

struct TxnInner {
    shared: Arc<Shared>,
    start_ts: Timestamp,
    isolation: IsolationLevel,
    started: Instant,
    state: Mutex<TxnState>,
}

/// A transaction handle. Clones share the same transaction; it is `Send + Sync`.
///
/// Writes are buffered until [`commit`](Transaction::commit), in memory or, past
/// [`TxnConfig::spill_bytes`], in the [`SpillEngine`], so a transaction that is dropped without
/// committing leaves nothing behind in the store.
#[derive(Clone)]
pub struct Transaction {
    inner: Arc<TxnInner>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("start_ts", &self.inner.start_ts)
            .field("isolation", &self.inner.isolation)
            .finish()
    }
}

impl Transaction {
    /// Returns the start timestamp.
    pub fn start_ts(&self) -> Timestamp {
        self.inner.start_ts
    }

    /// Returns the timestamp the current statement reads at.
    pub fn read_ts(&self) -> Timestamp {
        self.inner.state.lock().read_ts
    }

    /// Returns the isolation level.
    pub fn isolation(&self) -> IsolationLevel {
        self.inner.isolation
    }

    /// Marks the start of a statement: at READ COMMITTED it takes a fresh read timestamp; at
    /// REPEATABLE READ it keeps reading at the start timestamp.
    pub fn new_statement(&self) -> Result<()> {
        if self.inner.isolation == IsolationLevel::ReadCommitted {
            let ts = self.inner.shared.tso.get_ts()?;
            let mut state = self.inner.state.lock();
            state.check_active()?;
            state.read_ts = state.read_ts.max(ts);
        }
        Ok(())
    }

    /// Moves the read timestamp forward to `ts` (never back), at either isolation level: later
    /// reads see every commit below it, and later writes conflict only with commits above it.
    /// For a statement that must read fresher data than the transaction's snapshot (a schema
    /// change reading a table after fencing its writers).
    pub fn advance_read_ts(&self, ts: Timestamp) -> Result<()> {
        let mut state = self.inner.state.lock();
        state.check_active()?;
        state.read_ts = state.read_ts.max(ts);
        Ok(())
    }

    /// Sets the condition the commit must meet (see [`CommitFence`]), replacing any earlier one.
    pub fn set_commit_fence(&self, fence: CommitFence) -> Result<()> {
        let mut state = self.inner.state.lock();
        state.check_active()?;
        state.fence = Some(fence);
        Ok(())
    }

    /// Holds the commit back after its prewrite (see [`CommitWait`]), replacing any earlier
    /// wait.
    pub fn set_commit_wait(&self, wait: CommitWait) -> Result<()> {
        let mut state = self.inner.state.lock();
        state.check_active()?;
        state.wait = Some(wait);
        Ok(())
    }

    /// Reads the newest committed version of `key` whatever its timestamp, ignoring the
    /// transaction's own writes: its commit timestamp (0: never written) and value. Returns
    /// `None`, without waiting, while any transaction holds a lock on the key (even one that
    /// began after this one), so an answer also says no commit of the key was under way.
    pub fn get_newest(&self, key: &[u8]) -> Result<Option<(Timestamp, Option<Vec<u8>>)>> {
        let read_ts = {
            let state = self.inner.state.lock();
            state.check_usable()?;
            state.read_ts
        };
        match self.inner.shared.store.get_newest(key, read_ts) {
            Ok(newest) => Ok(Some(newest)),
            Err(TxnError::KeyIsLocked(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads `key`: the transaction's own buffered write if any, otherwise the committed value
    /// at the read timestamp.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let read_ts = {
            let state = self.inner.state.lock();
            state.check_usable()?;
            match state
                .writes
                .get(key)?
                .as_deref()
                .and_then(Buffered::visible)
            {
                Some(value) => return Ok(value.map(<[u8]>::to_vec)),
                None => state.read_ts,
            }
        };
        self.read_store(key, read_ts)
    }

    fn read_store(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>> {
        let shared = &self.inner.shared;
        shared.retry_locks(|| shared.store.get(key, read_ts))
    }

    fn scanner(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        program: Option<Arc<[u8]>>,
    ) -> Result<Scanner> {
        let mut state = self.inner.state.lock();
        state.check_usable()?;
        let empty = !end.is_empty() && start >= end;
        let buffered = state.writes.range(start, end, reverse)?;
        Ok(Scanner {
            shared: self.inner.shared.clone(),
            _active: state.active.clone(),
            read_ts: state.read_ts,
            reverse,
            start: start.to_vec(),
            end: end.to_vec(),
            fetched: VecDeque::new(),
            store_done: empty,
            batch: self.inner.shared.config.scan_batch_min.max(1),
            buffered,
            failed: false,
            program,
        })
    }

    /// Scans `start <= key < end` (an empty `end` means no end) in ascending order, merging the
    /// transaction's buffered writes in the range as they are now.
    pub fn scan(&self, start: &[u8], end: &[u8]) -> Result<Scanner> {
        self.scanner(start, end, false, None)
    }

    /// Like [`Transaction::scan`], with `program` applied to committed pairs where they are
    /// stored (see [`ScanFilter`](crate::ScanFilter)): pairs it drops never travel, and the
    /// values that do may be reduced. The transaction's own buffered writes are merged
    /// unfiltered, so the caller applies its filter to every pair it gets.
    pub fn scan_filtered(&self, start: &[u8], end: &[u8], program: Arc<[u8]>) -> Result<Scanner> {
        self.scanner(start, end, false, Some(program))
    }

    /// Like [`Transaction::scan`], in descending order.
    pub fn scan_reverse(&self, start: &[u8], end: &[u8]) -> Result<Scanner> {
        self.scanner(start, end, true, None)
    }

    /// Buffers a write of `value` to `key`.
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        let mut state = self.inner.state.lock();
        // Keep the not-exists assertion of an earlier insert.
        let op = match state.wrote_insert(&key) {
            true => BufferedOp::Insert(value),
            false => BufferedOp::Put(value),
        };
        state.buffer(key, op);
    }

    /// Buffers a write of `value` to `key` that conflicts only with commits to `key` above
    /// `conflict_ts`, not above the statement's read timestamp: for a write based on what the
    /// caller read at `conflict_ts` (a schema change continuing from the descriptor it
    /// committed there).
    pub fn put_since(&self, key: Vec<u8>, value: Vec<u8>, conflict_ts: Timestamp) {
        let mut state = self.inner.state.lock();
        state.buffer_since(key, BufferedOp::Put(value), conflict_ts);
    }

    /// Registers `start..end` (bounded) to be destroyed outright once this transaction has
    /// committed and the GC safe point has passed its commit, when no snapshot can read the
    /// range any more. For data nothing will address again, such as a dropped table's: it
    /// costs one record however many keys the range holds. Rolling back drops the request.
    pub fn destroy_range(&self, start: &[u8], end: &[u8]) {
        let mut key = Vec::with_capacity(DESTROY_REGISTRY.len() + start.len());
        key.extend_from_slice(DESTROY_REGISTRY);
        key.extend_from_slice(start);
        self.put(key, end.to_vec());
    }

    /// Buffers a deletion of `key`.
    pub fn delete(&self, key: Vec<u8>) {
        self.inner.state.lock().buffer(key, BufferedOp::Delete);
    }

    /// Buffers a lock of `key` that writes nothing but makes the commit conflict with any
    /// concurrent committed write to it (for `SELECT ... FOR UPDATE`).
    pub fn lock_key(&self, key: Vec<u8>) {
        let mut state = self.inner.state.lock();
        match state.writes.get(&key) {
            Ok(Some(_)) => {}
            Ok(None) => state.buffer(key, BufferedOp::Lock),
            Err(err) => state.fail(err),
        }
    }

    /// Buffers an insert: fails with `DuplicateKey` if the key is visible now, and asserts at
    /// prewrite that no committed value exists.
    pub fn insert(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        let read_ts = {
            let mut state = self.inner.state.lock();
            state.check_usable()?;
            match state.writes.written(&key)? {
                Some(true) => return Err(TxnError::DuplicateKey { key }),
                Some(false) => {
                    // Deleted by this transaction: the key may exist underneath, so overwrite.
                    state.buffer(key, BufferedOp::Put(value));
                    return Ok(());
                }
                None => state.read_ts,
            }
        };
        if self.read_store(&key, read_ts)?.is_some() {
            return Err(TxnError::DuplicateKey { key });
        }
        let mut state = self.inner.state.lock();
        state.check_usable()?;
        if state.writes.written(&key)? == Some(true) {
            return Err(TxnError::DuplicateKey { key });
        }
        state.buffer(key, BufferedOp::Insert(value));
        Ok(())
    }

    /// Buffers a write of `value` to `key` unless the transaction has already written a value
    /// there ([`TxnError::DuplicateKey`]), without reading the store: for a range the caller
    /// knows holds nothing committed that the transaction has not deleted or does not write
    /// again this way itself (a new index, a table being rewritten).
    pub fn put_absent(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        let mut state = self.inner.state.lock();
        state.check_usable()?;
        if state.writes.written(&key)? == Some(true) {
            return Err(TxnError::DuplicateKey { key });
        }
        state.buffer(key, BufferedOp::Put(value));
        Ok(())
    }

    /// Returns true if the transaction has buffered any write of `key` (a value, a deletion or
    /// a lock).
    pub fn has_written(&self, key: &[u8]) -> Result<bool> {
        Ok(self.inner.state.lock().writes.get(key)?.is_some())
    }

    /// Returns the size of the buffered keys and values held in memory (spilled ones are not
    /// counted).
    pub fn buffer_bytes(&self) -> usize {
        self.inner.state.lock().writes.mem_bytes()
    }

    /// Returns true if nothing has been written.
    pub fn is_read_only(&self) -> bool {
        self.inner.state.lock().writes.is_empty()
    }

    /// Commits: returns `Ok(None)` if nothing was written, otherwise commits in one phase when
    /// the store can (every key in one request and one partition, see [`Store::one_pc`]) or
    /// runs Percolator's two-phase commit (prewrite everything with the first key as primary,
    /// commit the primary, then the secondaries), and returns the commit timestamp. A commit
    /// fence (see [`CommitFence`]) bounds the one-phase commit timestamp and checks a
    /// two-phase commit above its free bound.
    pub fn commit(&self) -> Result<Option<Timestamp>> {
        let (pending, bytes, fence, wait) = {
            let mut state = self.inner.state.lock();
            state.check_active()?;
            if let Err(err) = state.check_usable() {
                state.finish(Status::RolledBack);
                return Err(err);
            }
            if state.writes.is_empty() {
                state.finish(Status::Committed);
                return Ok(None);
            }
            let bytes = state.writes.total_bytes();
            let fence = state.fence.take();
            let wait = state.wait.take();
            match state.writes.take() {
                Ok(pending) => (pending, bytes, fence, wait),
                Err(err) => {
                    state.finish(Status::RolledBack);
                    return Err(err);
                }
            }
        };
        let result = self.two_phase_commit(&pending, bytes, fence.as_ref(), wait.as_ref());
        if let Err(err) = &result {
            let m = txn_metrics();
            match err {
                TxnError::WriteConflict { .. } => m.conflicts.inc(),
                TxnError::Unavailable(_) => m.unavailable.inc(),
                _ => m.aborts.inc(),
            }
        }
        let status = if result.is_ok() {
            Status::Committed
        } else {
            Status::RolledBack
        };
        self.inner.state.lock().finish(status);
        result.map(Some)
    }

    fn two_phase_commit(
        &self,
        pending: &Pending,
        bytes: usize,
        fence: Option<&CommitFence>,
        wait: Option<&CommitWait>,
    ) -> Result<Timestamp> {
        let shared = &self.inner.shared;
        let config = &shared.config;
        let start_ts = self.inner.start_ts;
        let elapsed_ms = self.inner.started.elapsed().as_millis() as u64;
        // About one extra millisecond per KiB written, capped at two minutes.
        let size_ms = ((bytes / 1024) as u64).min(120_000);
        let ttl_ms = elapsed_ms + config.min_lock_ttl_ms.max(size_ms);

        // One request's worth of keys may commit in one phase, if the store can: all in one
        // partition, at a timestamp the fence needs no check for.
        if let (Pending::Memory(mutations), None) = (pending, wait) {
            if let [chunk] = shared.chunks(mutations).as_slice() {
                let max_commit_ts = fence.map_or(Timestamp::MAX, |f| f.free_until);
                if let Some(commit_ts) =
                    shared.retry_locks(|| shared.store.one_pc(chunk, start_ts, max_commit_ts))?
                {
                    shared
                        .one_phase
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    txn_metrics().one_phase.inc();
                    return Ok(commit_ts);
                }
            }
        }
        // Calls `f` with each request-sized chunk of the writes, in key order, while it
        // returns true. Spilled writes are read back for each pass.
        let for_each_chunk = |f: &mut dyn FnMut(&[Mutation]) -> Result<bool>| {
            pending.for_each_batch(config.max_batch_keys, config.max_batch_bytes, |batch| {
                for chunk in shared.chunks(batch) {
                    if !f(chunk)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
        };
        // Rolls back the first `count` chunks (all of them with `None`).
        let roll_back = |count: Option<usize>| {
            let mut done = 0;
            let result = for_each_chunk(&mut |chunk| {
                if Some(done) == count {
                    return Ok(false);
                }
                done += 1;
                self.rollback_quietly(chunk);
                Ok(true)
            });
            if let Err(err) = result {
                tracing::warn!(start_ts, %err, "failed to roll back locks");
            }
        };

        let mut primary: Option<Vec<u8>> = None;
        let mut attempted = 0;
        let prewritten = for_each_chunk(&mut |chunk| {
            let primary = primary.get_or_insert_with(|| chunk[0].key.clone());
            attempted += 1;
            shared.retry_locks(|| shared.store.prewrite(chunk, primary, start_ts, ttl_ms))?;
            Ok(true)
        });
        if let Err(err) = prewritten {
            // Roll back what was prewritten, the failed chunk included: over a cluster a
            // chunk spans partitions, and those before the failing one kept their locks.
            roll_back(Some(attempted));
            return Err(err);
        }
        let primary = primary.ok_or_else(|| {
            TxnError::InvalidArgument("a commit found no buffered write to prewrite".into())
        })?;

        let commit_ts = match wait {
            Some(wait) if (wait.after_prewrite)() => match wait_past(&*shared.tso, wait.ms) {
                Ok(ts) => ts,
                Err(err) => {
                    roll_back(None);
                    return Err(err);
                }
            },
            _ => shared.tso.get_ts()?,
        };
        if let Some(fence) = fence.filter(|f| commit_ts > f.free_until) {
            let view = CommitView {
                shared,
                start_ts,
                commit_ts,
            };
            if let Err(err) = (fence.check)(&view) {
                roll_back(None);
                return Err(err);
            }
        }
        let committed = shared
            .store
            .commit(std::slice::from_ref(&primary), start_ts, commit_ts);
        if committed.is_ok() {
            shared
                .two_phase
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            txn_metrics().two_phase.inc();
        }
        if let Err(err) = committed {
            if matches!(err, TxnError::TxnAborted | TxnError::TxnNotFound { .. }) {
                // Someone rolled the transaction back (its locks expired): clean up.
                roll_back(None);
                return Err(TxnError::TxnAborted);
            }
            // The outcome is unknown; readers will resolve the locks either way.
            return Err(err);
        }

        // Spilled writes commit here: a background queue would hold all their keys in memory.
        let queue = match pending {
            Pending::Memory(_) => shared.committer.as_ref(),
            Pending::Spilled(_) => None,
        };
        let secondaries = for_each_chunk(&mut |chunk| {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .filter(|m| m.key != primary)
                .map(|m| m.key.clone())
                .collect();
            if keys.is_empty() {
                return Ok(true);
            }
            let job = SecondaryCommit {
                keys,
                start_ts,
                commit_ts,
                _active: self.inner.state.lock().active.clone(),
            };
            // In the background when configured and the queue has room; otherwise here.
            let job = match queue {
                Some(queue) => {
                    use std::sync::atomic::Ordering::Release;
                    shared.queued.fetch_add(1, Release);
                    match queue.try_send(job) {
                        Ok(()) => return Ok(true),
                        Err(err) => {
                            shared.queued.fetch_sub(1, Release);
                            err.into_inner()
                        }
                    }
                }
                None => job,
            };
            commit_secondaries(&*shared.store, &job);
            Ok(true)
        });
        if let Err(err) = secondaries {
            // The transaction is committed; readers commit the locks left behind.
            tracing::warn!(start_ts, commit_ts, %err, "cannot read back the secondary keys");
        }
        Ok(commit_ts)
    }

    fn rollback_quietly(&self, chunk: &[Mutation]) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|m| m.key.clone()).collect();
        if let Err(err) = self.inner.shared.store.rollback(&keys, self.inner.start_ts) {
            tracing::warn!(start_ts = self.inner.start_ts, %err, "failed to roll back locks");
        }
    }

    /// Discards the transaction's buffered writes. Nothing was written to the store before
    /// commit, so this never touches it.
    pub fn rollback(&self) -> Result<()> {
        let mut state = self.inner.state.lock();
        state.check_active()?;
        state.finish(Status::RolledBack);
        Ok(())
    }
}

/// An iterator over a range of a transaction's view: committed pairs at the read timestamp
/// (fetched in growing batches) merged with the transaction's buffered writes.
pub struct Scanner {
    shared: Arc<Shared>,
    _active: Option<Arc<ActiveGuard>>,
    read_ts: Timestamp,
    reverse: bool,
    /// The part of the range not fetched from the store yet: `start..end` (empty `end`: none).
    start: Vec<u8>,
    end: Vec<u8>,
    fetched: VecDeque<KvPair>,
    store_done: bool,
    batch: usize,
    /// Buffered writes in scan order, as they were when the scan began.
    buffered: BufferedRange,
    failed: bool,
    /// The program the store applies to committed pairs, if any.
    program: Option<Arc<[u8]>>,
}

impl Scanner {
    fn fetch(&mut self) -> Result<()> {
        let (shared, read_ts, limit) = (&self.shared, self.read_ts, self.batch);
        let (start, end) = (&self.start, &self.end);
        if let Some(program) = &self.program {
            let batch = shared.retry_locks(|| {
                shared
                    .store
                    .scan_filtered(start, end, read_ts, limit, program)
            })?;
            match batch.resume {
                Some(next) => self.start = next,
                None => self.store_done = true,
            }
            self.batch = (self.batch * 2).min(self.shared.config.scan_batch_max.max(1));
            self.fetched.extend(batch.pairs);
            return Ok(());
        }
        let pairs = if self.reverse {
            shared.retry_locks(|| shared.store.scan_reverse(start, end, read_ts, limit))?
        } else {
            shared.retry_locks(|| shared.store.scan(start, end, read_ts, limit))?
        };
        if pairs.len() < limit {
            self.store_done = true;
        } else if let Some((last, _)) = pairs.last() {
            if self.reverse {
                if last.is_empty() {
                    self.store_done = true;
                } else {
                    self.end = last.clone();
                }
            } else {
                self.start.clear();
                self.start.extend_from_slice(last);
                self.start.push(0);
            }
        }
        self.batch = (self.batch * 2).min(self.shared.config.scan_batch_max.max(1));
        self.fetched.extend(pairs);
        Ok(())
    }

    fn next_pair(&mut self) -> Result<Option<KvPair>> {
        loop {
            if self.fetched.is_empty() && !self.store_done {
                self.fetch()?;
                continue;
            }
            let buffered = self.buffered.peek(self.batch)?;
            let take_buffered = match (self.fetched.front(), buffered) {
                (None, None) => return Ok(None),
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((store_key, _)), Some((buffer_key, _))) => {
                    if store_key == buffer_key {
                        // The buffered write shadows the committed value.
                        self.fetched.pop_front();
                        true
                    } else {
                        (buffer_key < store_key) != self.reverse
                    }
                }
            };
            if take_buffered {
                let (key, value) = self.buffered.pop().expect("checked above");
                if let Some(value) = value {
                    return Ok(Some((key, value)));
                }
            } else {
                return Ok(self.fetched.pop_front());
            }
        }
    }
}

impl Iterator for Scanner {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Result<KvPair>> {
        if self.failed {
            return None;
        }
        match self.next_pair() {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => None,
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}
