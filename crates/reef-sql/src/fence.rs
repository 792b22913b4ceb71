//! Schema changes that stay correct while other nodes keep writing.
//!
//! Every node caches the catalog and plans statements against it, so a transaction may write a
//! table under a descriptor that another node has just changed. Three rules keep that safe,
//! with no lock shared between nodes (see `docs/architecture/reef-sql.md`, "Schema changes
//! across nodes"):
//!
//! * **The schema lease.** A transaction reads the catalog version at its start timestamp
//!   `s` (see `Database::begin`), so the descriptors it plans with are current as of `s`. It
//!   may commit without further checks up to [`SCHEMA_LEASE_MS`] after `s` (in timestamp
//!   time); a later commit runs a commit fence that reads, at the commit timestamp, the
//!   descriptors of the tables it wrote and refuses the commit (40001) if their write version
//!   changed.
//! * **Waiting out the lease.** A schema change that reads existing rows (an index backfill, a
//!   NOT NULL check, a table rewrite) first commits a descriptor that changes what writers do (a
//!   write-only index that writers maintain, or a write fence that holds writers off) in a
//!   transaction of its own, at `c`. It then waits until the oracle passes `c` plus the lease:
//!   from then on no writer planned against the older descriptor can commit unchecked, so a
//!   snapshot taken then sees every such writer's rows. On a node that runs SQL alone, it
//!   waits only until its own older transactions are gone.
//! * **Write fences expire.** A fence names the timestamp it ends at; the schema change must
//!   commit below it (its own commit fence checks that), so a fence whose schema change died
//!   with its node stops holding writers off by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_common::{ts_after_ms, ts_physical_ms};
use reef_txn::{CommitFence, IsolationLevel, Timestamp, Transaction, TxnError};

use crate::catalog::{self, IndexState, Object, SchemaStep, TableDesc, WriteFence};
use crate::error::{sqlstate, Result, SqlError};
use crate::session::Database;

/// How long, in milliseconds of timestamp time, a transaction may commit without checking the
/// schema it planned with. Every node must use the same value.
pub const SCHEMA_LEASE_MS: u64 = 1000;

/// How long, in milliseconds of timestamp time, a node trusts its cached catalog after it
/// found the catalog version key unlocked and unchanged, and so how long every DDL commit
/// waits after its prewrite (see `Database::begin`). Every node must use the same value.
pub const CATALOG_TRUST_MS: u64 = 250;

/// How long a write fence lasts at most, in milliseconds: the longest a schema change that
/// holds writers off may run.
pub const FENCE_TTL_MS: u64 = 10 * 60 * 1000;

/// How long a writer (or another schema change) waits for a table's write fence to go.
const FENCE_WAIT: Duration = Duration::from_secs(60);

/// The commit fence of a transaction that started at `start_ts` and wrote the tables in
/// `written` (table id, write version planned with). A schema change that holds a write fence
/// passes the fence's end as `deadline`: its commit must land below it.
pub(crate) fn commit_fence(
    start_ts: Timestamp,
    written: Vec<(u32, u64)>,
    deadline: Option<Timestamp>,
) -> CommitFence {
    let lease_end = ts_after_ms(start_ts, SCHEMA_LEASE_MS);
    let free_until = match deadline {
        Some(d) => d.min(lease_end),
        None => lease_end,
    };
    CommitFence {
        free_until,
        check: Box::new(move |view| {
            if deadline.is_some_and(|d| view.commit_ts() >= d) {
                return Err(TxnError::Fenced(
                    "the schema change ran past the end of its write fence".into(),
                ));
            }
            for (id, write_version) in &written {
                let raw =
                    match view.get(&catalog::object_key(*id)) {
                        Err(TxnError::KeyIsLocked(_)) => return Err(TxnError::Fenced(
                            "could not serialize access: a table written by this transaction is \
                             being altered"
                                .into(),
                        )),
                        other => other?,
                    };
                let current = raw
                    .map(|raw| catalog::decode_object(&raw))
                    .transpose()
                    .map_err(|e| TxnError::Corruption(e.message))?;
                let same =
                    matches!(&current, Some(Object::Table(t)) if t.write_version == *write_version);
                if !same {
                    return Err(TxnError::Fenced(
                        "could not serialize access: a table written by this transaction changed \
                         schema concurrently"
                            .into(),
                    ));
                }
            }
            Ok(())
        }),
    }
}

/// The fence of `table` that holds writers off now, if any.
pub(crate) fn active_fence(table: &TableDesc, now: Timestamp) -> Option<WriteFence> {
    table.fence.filter(|f| now < f.until)
}

/// The marks of schema changes in progress on `table` (its fence, an index build) that other
/// schema changes wait for, now.
pub(crate) fn active_marks(table: &TableDesc, now: Timestamp) -> Vec<WriteFence> {
    [table.fence, table.building]
        .into_iter()
        .flatten()
        .filter(|f| now < f.until)
        .collect()
}

impl Database {
    /// Commits a change to table `id`'s descriptor in a transaction of its own, bumping its
    /// version and write version, and publishes it on this node. Waits first for the schema
    /// changes in progress on the table (see [`active_marks`]) to end, except those whose
    /// marks are `owned` by the caller. `change` may also write through the transaction it
    /// gets. Returns the committed descriptor and the commit timestamp.
    pub(crate) fn change_table_now(
        &self,
        id: u32,
        owned: &[WriteFence],
        change: &dyn Fn(&mut TableDesc, &Transaction) -> Result<()>,
    ) -> Result<(TableDesc, Timestamp)> {
        let waited = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            let txn = self
                .client()
                .begin(IsolationLevel::RepeatableRead)
                .map_err(crate::error::from_txn)?;
            let raw = txn
                .get(&catalog::object_key(id))
                .map_err(crate::error::from_txn)?;
            let mut table = match raw.map(|r| catalog::decode_object(&r)).transpose()? {
                Some(Object::Table(t)) => t,
                _ => {
                    return Err(SqlError::new(
                        sqlstate::SERIALIZATION_FAILURE,
                        "could not serialize access: the table was dropped concurrently",
                    )
                    .with_hint("The transaction might succeed if retried."))
                }
            };
            let foreign = active_marks(&table, txn.start_ts())
                .into_iter()
                .find(|f| !owned.contains(f));
            if let Some(f) = foreign {
                let _ = txn.rollback();
                self.wait_for_fence(id, &table.name, f, waited)?;
                continue;
            }
            change(&mut table, &txn)?;
            table.version += 1;
            table.write_version += 1;
            txn.put(
                catalog::object_key(id),
                catalog::encode_object(&Object::Table(table.clone())),
            );
            self.mark_catalog_changed(&txn);
            match txn.commit() {
                Ok(commit_ts) => {
                    let commit_ts = commit_ts.expect("the change wrote keys");
                    let changes = [(id, Some(Arc::new(Object::Table(table.clone()))))]
                        .into_iter()
                        .collect();
                    self.publish(&changes);
                    return Ok((table, commit_ts));
                }
                // A concurrent change of the catalog: read it again. (Not an unknown outcome,
                // whose change may have landed: the caller takes its step back.)
                Err(e)
                    if matches!(
                        e.code(),
                        reef_common::ErrorCode::WriteConflict
                            | reef_common::ErrorCode::TxnAborted
                            | reef_common::ErrorCode::KeyIsLocked
                            | reef_common::ErrorCode::LockWaitTimeout
                    ) && waited.elapsed() < FENCE_WAIT =>
                {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(crate::error::from_txn(e)),
            }
        }
    }

    /// Waits until no transaction planned against a table descriptor older than one committed
    /// at `changed_at` can commit without its commit fence noticing, and returns a fresh
    /// timestamp to read the table at. `except` is the caller's own transaction.
    pub(crate) fn wait_out_lease(
        &self,
        changed_at: Timestamp,
        except: Timestamp,
    ) -> Result<Timestamp> {
        let lease_end = ts_after_ms(changed_at, SCHEMA_LEASE_MS);
        loop {
            let now = self
                .client()
                .tso()
                .get_ts()
                .map_err(crate::error::from_txn)?;
            if now > lease_end {
                return Ok(now);
            }
            // Alone, the only transactions planned against the old descriptor are this node's
            // that started before the change.
            if self.runs_sql_alone() && !self.client().has_live_before(changed_at, Some(except)) {
                return Ok(now);
            }
            let left = ts_physical_ms(lease_end).saturating_sub(ts_physical_ms(now)) + 1;
            std::thread::sleep(Duration::from_millis(left.min(10)));
        }
    }

    /// Waits for the mark `fence` on table `id` (a fence or an index build) to go (the schema
    /// change commits or gives up, or the mark expires), reloading the catalog meanwhile.
    /// Fails with 55P03 after a minute from `since`.
    pub(crate) fn wait_for_fence(
        &self,
        id: u32,
        name: &str,
        fence: WriteFence,
        since: Instant,
    ) -> Result<()> {
        let mut delay = Duration::from_millis(2);
        loop {
            if since.elapsed() >= FENCE_WAIT {
                return Err(SqlError::new(
                    sqlstate::LOCK_NOT_AVAILABLE,
                    format!("canceling statement: table \"{name}\" is being altered"),
                )
                .with_hint("Retry once the schema change has finished."));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
            self.sync_catalog()?;
            let now = self
                .client()
                .tso()
                .get_ts()
                .map_err(crate::error::from_txn)?;
            let still = match self.catalog().get(id).as_deref() {
                Some(Object::Table(t)) => active_marks(t, now).contains(&fence),
                _ => false,
            };
            if !still {
                return Ok(());
            }
        }
    }
}

impl Database {
    /// Takes back a schema change step committed ahead of a transaction that did not commit:
    /// drops the write-only index (and its entries), or lifts the write fence. Failing only
    /// leaves the step behind (a write-only index that writers keep maintaining until it is
    /// dropped, or a fence until it expires), so it is logged rather than returned.
    pub(crate) fn undo_schema_step(&self, step: SchemaStep) {
        let (table, owned) = match step {
            SchemaStep::WriteOnlyIndex { table, mark, .. } => (table, mark),
            SchemaStep::Fence { table, fence } => (table, fence),
        };
        let result = self.change_table_now(table, &[owned], &|t, txn| {
            match step {
                SchemaStep::WriteOnlyIndex { index, mark, .. } => {
                    if t.building == Some(mark) {
                        t.building = None;
                    }
                    let before = t.indexes.len();
                    t.indexes
                        .retain(|i| !(i.id == index && i.state == IndexState::WriteOnly));
                    // Only an index still being built goes, with its entries; one that turned
                    // public (its transaction committed after all) stays.
                    if t.indexes.len() < before {
                        let p = catalog::index_prefix(t.id, index);
                        txn.destroy_range(&p, &crate::exec::prefix_end(&p));
                    }
                }
                SchemaStep::Fence { fence, .. } => {
                    if t.fence == Some(fence) {
                        t.fence = None;
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(_) => tracing::debug!(?step, "took back a schema change step"),
            Err(SqlError { code, .. }) if code == sqlstate::SERIALIZATION_FAILURE => {
                // The table is gone: nothing to take back.
            }
            Err(err) => tracing::warn!(?step, %err, "could not take back a schema change step"),
        }
    }
}
