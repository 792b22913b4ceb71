//! The transaction layer over the cluster: [`ClusterStore`] serves `reef-txn`'s [`Store`]
//! through the routing [`Client`], and [`RemoteTso`] its [`TimestampOracle`] through the root
//! service, so a [`TxnClient`](reef_txn::TxnClient) runs Percolator across partitions exactly
//! as it does on one node: prewrite every key, commit the primary, then the secondaries, and
//! resolve the locks it meets by asking the primary's partition.

use std::sync::Arc;

use reef_common::Timestamp;
use reef_rpc::pb;
use reef_txn::{
    FilteredBatch, GcProgress, KvPair, LockInfo, Mutation, MutationOp, Store, TimestampOracle,
    TxnError, TxnStatus,
};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::ClientError;
use crate::root::RootClient;

/// Runs `wait`, which blocks the thread until tasks of the runtime finish something. On a
/// worker thread of a multi-threaded runtime the worker's other tasks move elsewhere first,
/// so blocking it cannot starve the tasks being waited for (on a 2-core machine the runtime
/// has only two workers).
fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// Runs `fut` to completion on `runtime` from synchronous code, which may be a worker thread
/// of that runtime (see `blocking`).
pub fn block_on<F: std::future::Future>(runtime: &Handle, fut: F) -> F::Output {
    blocking(|| runtime.block_on(fut))
}

/// Converts the client's error to the transaction layer's, keeping what lock resolution and
/// conflict handling need.
fn txn_error(err: ClientError, start_ts: Timestamp) -> TxnError {
    use pb::key_error::Error;
    let ClientError::Key(key_error) = err else {
        return TxnError::Unavailable(err.to_string());
    };
    match key_error.error {
        Some(Error::Locked(lock)) => TxnError::KeyIsLocked(reef_rpc::lock_info_from_pb(&lock)),
        Some(Error::Conflict(c)) => TxnError::WriteConflict {
            key: c.key.to_vec(),
            start_ts: c.start_ts,
            conflict_start_ts: c.conflict_start_ts,
            conflict_commit_ts: c.conflict_commit_ts,
        },
        Some(Error::DuplicateKey(key)) => TxnError::DuplicateKey { key: key.to_vec() },
        Some(Error::Aborted(_)) => TxnError::TxnAborted,
        Some(Error::TxnNotFound(key)) => TxnError::TxnNotFound {
            key: key.to_vec(),
            start_ts,
        },
        Some(Error::AlreadyCommitted(c)) => TxnError::AlreadyCommitted {
            key: c.key.to_vec(),
            start_ts: c.start_ts,
            commit_ts: c.commit_ts,
        },
        Some(Error::InvalidArgument(msg)) => TxnError::InvalidArgument(msg),
        Some(Error::SnapshotTooOld(old)) => TxnError::SnapshotTooOld {
            ts: old.ts,
            safe_point: old.safe_point,
        },
        None => TxnError::Corruption(format!(
            "a node answered with an empty key error: {}",
            key_error.message
        )),
    }
}

fn mutation_to_pb(m: &Mutation) -> pb::Mutation {
    use pb::mutation::Op;
    let (op, value) = match &m.op {
        MutationOp::Put(v) => (Op::Put, v.clone()),
        MutationOp::Delete => (Op::Delete, Vec::new()),
        MutationOp::Insert(v) => (Op::Insert, v.clone()),
        MutationOp::Lock => (Op::Lock, Vec::new()),
    };
    pb::Mutation {
        op: op as i32,
        key: m.key.clone().into(),
        value: value.into(),
        conflict_ts: m.conflict_ts.unwrap_or(0),
    }
}

/// A [`Store`] over the cluster's partitions.
pub struct ClusterStore {
    client: Arc<Client>,
    runtime: Handle,
}

impl ClusterStore {
    /// Serves the store through `client`, whose requests run on `runtime`.
    pub fn new(client: Arc<Client>, runtime: Handle) -> ClusterStore {
        ClusterStore { client, runtime }
    }

    fn run<T>(
        &self,
        start_ts: Timestamp,
        fut: impl std::future::Future<Output = crate::Result<T>>,
    ) -> reef_txn::Result<T> {
        block_on(&self.runtime, fut).map_err(|err| txn_error(err, start_ts))
    }
}

impl Store for ClusterStore {
    fn get(&self, key: &[u8], read_ts: Timestamp) -> reef_txn::Result<Option<Vec<u8>>> {
        self.run(0, self.client.get(key, read_ts))
    }

    fn get_newest(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> reef_txn::Result<(Timestamp, Option<Vec<u8>>)> {
        self.run(0, self.client.get_newest(key, read_ts))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> reef_txn::Result<Vec<KvPair>> {
        self.run(0, self.client.scan(start, end, read_ts, limit))
    }

    fn scan_filtered(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
        program: &[u8],
    ) -> reef_txn::Result<FilteredBatch> {
        let (pairs, resume) = self.run(
            0,
            self.client
                .scan_filtered(start, end, read_ts, limit, program),
        )?;
        Ok(FilteredBatch { pairs, resume })
    }

    fn scan_reverse(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: usize,
    ) -> reef_txn::Result<Vec<KvPair>> {
        self.run(0, self.client.scan_reverse(start, end, read_ts, limit))
    }

    fn prewrite(
        &self,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: Timestamp,
        lock_ttl_ms: u64,
    ) -> reef_txn::Result<()> {
        let mutations = mutations.iter().map(mutation_to_pb).collect();
        self.run(
            start_ts,
            self.client
                .prewrite(mutations, primary, start_ts, lock_ttl_ms),
        )
    }

    fn one_pc(
        &self,
        mutations: &[Mutation],
        start_ts: Timestamp,
        max_commit_ts: Timestamp,
    ) -> reef_txn::Result<Option<Timestamp>> {
        let mutations = mutations.iter().map(mutation_to_pb).collect();
        self.run(
            start_ts,
            self.client.one_pc(mutations, start_ts, max_commit_ts),
        )
    }

    fn commit(
        &self,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> reef_txn::Result<()> {
        self.run(
            start_ts,
            self.client.commit(keys.to_vec(), start_ts, commit_ts),
        )
    }

    fn rollback(&self, keys: &[Vec<u8>], start_ts: Timestamp) -> reef_txn::Result<()> {
        self.run(start_ts, self.client.rollback(keys.to_vec(), start_ts))
    }

    fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: Timestamp,
        current_ts: Timestamp,
    ) -> reef_txn::Result<TxnStatus> {
        use pb::txn_status::Status;
        let status = self.run(
            lock_ts,
            self.client.check_txn_status(primary, lock_ts, current_ts),
        )?;
        match status.status {
            Some(Status::CommittedTs(ts)) => Ok(TxnStatus::Committed(ts)),
            Some(Status::LockedTtlMs(ttl_ms)) => Ok(TxnStatus::Locked { ttl_ms }),
            Some(Status::RolledBack(_)) => Ok(TxnStatus::RolledBack),
            None => Err(TxnError::Corruption(
                "a node answered a status request without a status".into(),
            )),
        }
    }

    fn resolve_lock(
        &self,
        start_ts: Timestamp,
        commit_ts: Option<Timestamp>,
        keys: &[Vec<u8>],
    ) -> reef_txn::Result<()> {
        self.run(
            start_ts,
            self.client.resolve_lock(start_ts, commit_ts, keys.to_vec()),
        )
    }

    fn gc(
        &self,
        safe_point: Timestamp,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> reef_txn::Result<GcProgress> {
        let (keys_scanned, versions_deleted, next_key) =
            self.run(safe_point, self.client.gc(safe_point, start, end, limit))?;
        Ok(GcProgress {
            next_key,
            keys_scanned: keys_scanned as usize,
            versions_deleted: versions_deleted as usize,
            ..GcProgress::default()
        })
    }

    fn destroy_range(&self, start: &[u8], end: &[u8]) -> reef_txn::Result<()> {
        if end.is_empty() {
            return Err(TxnError::InvalidArgument(
                "a range to destroy needs an end".into(),
            ));
        }
        self.run(0, self.client.destroy_range(start, end))
    }

    fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        max_ts: Timestamp,
        limit: usize,
    ) -> reef_txn::Result<Vec<LockInfo>> {
        let locks = self.run(max_ts, self.client.scan_locks(start, end, max_ts, limit))?;
        Ok(locks.iter().map(reef_rpc::lock_info_from_pb).collect())
    }
}

type Waiter = std::sync::mpsc::SyncSender<reef_txn::Result<Timestamp>>;

/// A [`TimestampOracle`] served by the root service. Concurrent callers of a remote root
/// leader are batched: one request serves every caller waiting when it is sent, each getting
/// its own timestamp of the consecutive run it returns. When the root leader is the node this
/// client runs in, a caller asks it directly on its own thread, which costs no more than a
/// batch and spares two thread switches. Either way a caller's timestamp is greater than every
/// timestamp any caller received before it asked.
pub struct RemoteTso {
    tx: mpsc::UnboundedSender<Waiter>,
    roots: Arc<RootClient>,
    runtime: Handle,
}

impl RemoteTso {
    /// The most callers one request serves.
    const MAX_BATCH: usize = 4096;

    /// Starts the batching task on `runtime`, asking the root service through `roots`.
    pub fn new(roots: Arc<RootClient>, runtime: &Handle) -> RemoteTso {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let batching = roots.clone();
        runtime.spawn(async move {
            let mut waiters = Vec::new();
            while let Some(first) = rx.recv().await {
                waiters.push(first);
                while waiters.len() < RemoteTso::MAX_BATCH {
                    match rx.try_recv() {
                        Ok(waiter) => waiters.push(waiter),
                        Err(_) => break,
                    }
                }
                match batching.tso(waiters.len() as u32).await {
                    Ok(first_ts) => {
                        for (i, waiter) in waiters.drain(..).enumerate() {
                            let _ = waiter.send(Ok(first_ts + i as u64 * reef_common::TSO_STEP));
                        }
                    }
                    Err(err) => {
                        let message = err.to_string();
                        for waiter in waiters.drain(..) {
                            let _ = waiter.send(Err(TxnError::Unavailable(message.clone())));
                        }
                    }
                }
            }
        });
        RemoteTso {
            tx,
            roots,
            runtime: runtime.clone(),
        }
    }
}

impl TimestampOracle for RemoteTso {
    fn get_ts(&self) -> reef_txn::Result<Timestamp> {
        if self.roots.leader_is_local() {
            return block_on(&self.runtime, self.roots.tso(1))
                .map_err(|err| TxnError::Unavailable(err.to_string()));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(tx)
            .map_err(|_| TxnError::Unavailable("the timestamp batching task stopped".into()))?;
        blocking(|| rx.recv())
            .map_err(|_| TxnError::Unavailable("the timestamp batching task stopped".into()))?
    }
}
