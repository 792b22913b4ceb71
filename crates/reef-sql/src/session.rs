//! Sessions: the entry point of the SQL layer.
//!
//! A [`Database`] is shared by every connection of a node: the transaction
//! client, the catalog, the id allocators. A [`Session`] is one client's
//! state: its transaction block, its uncommitted schema changes, its
//! settings. Statements run synchronously; the wire front end calls them
//! from a blocking thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use parking_lot::{ArcMutexGuard, Mutex, RawMutex};
use reef_txn::{IsolationLevel, Transaction, TxnClient};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::binder::{object_name, Binder, BoundQuery};
use crate::catalog::{
    self, Catalog, CatalogView, IndexDesc, IndexState, Object, Overlay, SchemaStep, TableDesc,
    WriteFence,
};
use crate::copy::{CopyOptions, CopyReader, CopyTransfer, Fields};
use crate::ddl;
use crate::error::{sqlstate, Result, SqlError};
use crate::exec::{self, ExecContext, SessionHooks};
use crate::optimizer;
use crate::plan::Plan;
use crate::types::{DataType, Value};

/// One column of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name as the client sees it.
    pub name: String,
    /// The column's type.
    pub data_type: DataType,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecResult {
    /// The CommandComplete tag.
    pub tag: String,
    /// Some(columns) when the statement returns rows.
    pub columns: Option<Vec<Column>>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
    /// Set by COPY: the data transfer the connection carries out with the client.
    pub copy: Option<CopyTransfer>,
}

impl ExecResult {
    pub(crate) fn tag(tag: impl Into<String>) -> Self {
        ExecResult {
            copy: None,
            tag: tag.into(),
            columns: None,
            rows: vec![],
        }
    }
}

/// ReadyForQuery status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Not in a transaction block.
    Idle,
    /// In a transaction block.
    InBlock,
    /// In a failed transaction block.
    Failed,
}

/// A parsed, described statement.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement's text.
    pub sql: String,
    /// Parameter types.
    pub param_types: Vec<DataType>,
    /// Result columns, if any.
    pub columns: Option<Vec<Column>>,
    stmt: Option<Arc<ast::Statement>>,
    /// The statement's last plan, shared by the copies of this handle.
    plan: Arc<PlanSlot>,
}

/// Holds a prepared statement's plan for its next executions: binding and optimizing run
/// again only when the committed catalog changed since (its generation moved), when the
/// transaction has uncommitted schema changes of its own, or when the plan holds rows that
/// are true only once (a system view's).
#[derive(Debug, Default)]
pub(crate) struct PlanSlot(Mutex<Option<Arc<Planned>>>);

/// A bound, optimized statement.
#[derive(Debug)]
struct Planned {
    /// The catalog generation it was bound at.
    generation: u64,
    plan: Plan,
    /// The result columns of a query, or the RETURNING columns of a DML statement.
    columns: Vec<Column>,
    /// The parameter types the binder settled on.
    params: Vec<DataType>,
    /// The tables a DML statement writes.
    written: Vec<Arc<TableDesc>>,
}

/// Settings of the SQL layer.
#[derive(Clone)]
pub struct SqlConfig {
    /// Default per-query memory limit in bytes.
    pub query_memory_limit: usize,
    /// Answers whether this node is, right now, the only one that can run SQL over the data
    /// (a cluster of one node, or a node on local storage). A schema change then waits only
    /// for this node's older transactions instead of the whole schema lease (see
    /// [`crate::fence`]). Over a cluster the answer must be linearizable: a node that joins
    /// after it was given starts its transactions later.
    pub alone: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Fills the system views (`reef_catalog.*`) in.
    pub system: Arc<dyn crate::system::SystemViews>,
}

impl std::fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConfig")
            .field("query_memory_limit", &self.query_memory_limit)
            .finish_non_exhaustive()
    }
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            query_memory_limit: 1 << 30,
            alone: Arc::new(|| true),
            system: Arc::new(crate::system::NoCluster),
        }
    }
}

/// The shared database handle.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

struct DbInner {
    client: TxnClient,
    catalog: Catalog,
    /// What the cached catalog is and when it may be used without reading the version key.
    catalog_state: Mutex<CatalogState>,
    /// How many transactions read the catalog version key (see [`Database::begin`]).
    catalog_checks: AtomicU64,
    config: SqlConfig,
    /// Cached blocks of sequence values and row ids: counter id -> (next, end).
    blocks: Mutex<HashMap<u32, (i64, i64)>>,
    next_pid: AtomicU32,
}

/// The cached catalog's standing (see [`Database::begin`]).
#[derive(Default)]
struct CatalogState {
    /// The value of [`catalog::version_key`] the cached catalog was loaded at (empty: the key
    /// was never written), or `None` after a local DDL published its changes: the next
    /// transaction reloads.
    version: Option<Vec<u8>>,
    /// The timestamp the cached catalog is current as of: a reload from an older snapshot
    /// must not replace it.
    as_of: reef_txn::Timestamp,
    /// Timestamps (inclusive) at which the cached catalog is known to be the committed one:
    /// a transaction starting in this window plans with it without reading the version key.
    trusted: (reef_txn::Timestamp, reef_txn::Timestamp),
    /// Moves whenever a local DDL transaction withdraws the trust: a read of the version key
    /// made before the move must not grant it again.
    distrusts: u64,
}

impl CatalogState {
    fn trusts(&self, ts: reef_txn::Timestamp) -> bool {
        self.version.is_some() && self.trusted.0 <= ts && ts <= self.trusted.1
    }
}

/// Databases a client may connect to.
const DATABASES: &[&str] = &["reef", "postgres"];

impl Database {
    /// Opens the SQL layer over a transaction client: loads the catalog.
    pub fn open(client: TxnClient, config: SqlConfig) -> Result<Database> {
        let db = Database {
            inner: Arc::new(DbInner {
                client,
                catalog: Catalog::load(Vec::new()),
                catalog_state: Mutex::new(CatalogState::default()),
                catalog_checks: AtomicU64::new(0),
                config,
                blocks: Mutex::new(HashMap::new()),
                next_pid: AtomicU32::new(1000),
            }),
        };
        db.inner
            .catalog
            .set_system_views(db.inner.config.system.clone());
        let txn = db
            .inner
            .client
            .begin(IsolationLevel::RepeatableRead)
            .map_err(crate::error::from_txn)?;
        let version = txn
            .get(&catalog::version_key())
            .map_err(crate::error::from_txn)?;
        db.load_catalog(&txn, version.unwrap_or_default())?;
        txn.rollback().map_err(crate::error::from_txn)?;
        Ok(db)
    }

    /// Loads the catalog as of `txn`'s snapshot, where the version key holds `version`.
    fn load_catalog(&self, txn: &Transaction, version: Vec<u8>) -> Result<()> {
        let (start, end) = catalog::object_key_range();
        let mut objects = Vec::new();
        for kv in txn.scan(&start, &end).map_err(crate::error::from_txn)? {
            let (_, v) = kv.map_err(crate::error::from_txn)?;
            objects.push(catalog::decode_object(&v)?);
        }
        let mut state = self.inner.catalog_state.lock();
        if txn.start_ts() > state.as_of {
            self.inner.catalog.replace(objects);
            state.version = Some(version);
            state.as_of = txn.start_ts();
            state.trusted = (0, 0);
        }
        Ok(())
    }

    /// Whether this node is the only one that can run SQL over the data right now (see
    /// [`SqlConfig::alone`]).
    pub(crate) fn runs_sql_alone(&self) -> bool {
        (self.inner.config.alone)()
    }

    /// Publishes a committed local DDL transaction's changes to the cached catalog.
    pub(crate) fn publish(&self, changes: &HashMap<u32, Option<Arc<Object>>>) {
        // A timestamp after the commit, taken before the lock so no begin waits on the oracle:
        // reloads from snapshots before it would undo the change; the next transaction
        // reloads from a later one.
        let now = self.inner.client.tso().get_ts().ok();
        let mut state = self.inner.catalog_state.lock();
        self.inner.catalog.publish(changes);
        let as_of = now.unwrap_or(state.as_of).max(state.as_of);
        state.version = None;
        state.as_of = as_of;
        state.trusted = (0, 0);
    }

    /// Stops trusting the cached catalog without reading the version key: a local DDL
    /// transaction is about to commit (see [`Database::begin`]).
    pub(crate) fn distrust_catalog(&self) {
        let mut state = self.inner.catalog_state.lock();
        state.trusted = (0, 0);
        state.distrusts += 1;
    }

    /// Reloads the cached catalog if a DDL transaction (on this node or another) committed
    /// since it was loaded.
    pub fn sync_catalog(&self) -> Result<()> {
        let txn = self.begin(IsolationLevel::RepeatableRead)?;
        txn.rollback().map_err(crate::error::from_txn)
    }

    /// Begins a transaction, first reloading the cached catalog if a DDL transaction (on
    /// this node or another) committed since it was loaded.
    ///
    /// Every DDL transaction writes [`catalog::version_key`], and holds its commit back until
    /// the oracle is [`CATALOG_TRUST_MS`](crate::fence::CATALOG_TRUST_MS) past its prewrite
    /// (see [`reef_txn::CommitWait`]). So a transaction starting at `s` that finds the key
    /// unlocked with its newest version committed at `c <= s` knows the catalog stays as it is
    /// from `c` until `s` plus that time: transactions starting in that window plan with the
    /// cached catalog without reading the key (the common case: one read per node every so
    /// often instead of one per transaction). While a DDL commits, transactions read the key
    /// at their start as before. On a node that runs SQL alone DDL does not wait; this node's
    /// own DDL withdraws the trust after its prewrite instead.
    pub fn begin(&self, isolation: IsolationLevel) -> Result<Transaction> {
        let txn = self
            .inner
            .client
            .begin(isolation)
            .map_err(crate::error::from_txn)?;
        let ts = txn.start_ts();
        let distrusts = {
            let state = self.inner.catalog_state.lock();
            if state.trusts(ts) {
                return Ok(txn);
            }
            state.distrusts
        };
        self.inner
            .catalog_checks
            .fetch_add(1, AtomicOrdering::Relaxed);
        let key = catalog::version_key();
        // The newest version, if no DDL is committing and it is visible at `ts`.
        let newest = txn
            .get_newest(&key)
            .map_err(crate::error::from_txn)?
            .filter(|(newest_ts, _)| *newest_ts <= ts)
            .map(|(newest_ts, value)| (newest_ts, value.unwrap_or_default()));
        let version = match &newest {
            Some((_, value)) => value.clone(),
            None => txn
                .get(&key)
                .map_err(crate::error::from_txn)?
                .unwrap_or_default(),
        };
        // Not under the catalog's commit lock: a session running DDL holds it while it begins.
        // A DML transaction that checks its tables against a reloaded, newer catalog fails its
        // check, as it should.
        if self.inner.catalog_state.lock().version.as_ref() != Some(&version) {
            self.load_catalog(&txn, version)?;
        }
        if let Some((newest_ts, value)) = newest {
            let until = reef_common::ts_after_ms(ts, crate::fence::CATALOG_TRUST_MS);
            let mut state = self.inner.catalog_state.lock();
            if state.version.as_ref() == Some(&value)
                && state.distrusts == distrusts
                && !state.trusts(until)
            {
                state.trusted = (newest_ts, until);
            }
        }
        Ok(txn)
    }

    /// Marks the catalog changed by `txn`: writes [`catalog::version_key`] and holds the
    /// commit back as [`Database::begin`] relies on. Every transaction that changes the
    /// catalog goes through here; one that wrote the key without the wait would let other
    /// nodes plan with a descriptor older than its commit.
    pub(crate) fn mark_catalog_changed(&self, txn: &Transaction) {
        txn.put(
            catalog::version_key(),
            txn.start_ts().to_be_bytes().to_vec(),
        );
        let db = self.clone();
        // Fails only once the transaction is finished, and then there is no commit to hold.
        let _ = txn.set_commit_wait(reef_txn::CommitWait {
            ms: crate::fence::CATALOG_TRUST_MS,
            after_prewrite: Box::new(move || {
                db.distrust_catalog();
                !db.runs_sql_alone()
            }),
        });
    }

    /// How many transactions began by reading the catalog version key, rather than trusting
    /// the cached catalog (see [`Database::begin`]).
    pub fn catalog_checks(&self) -> u64 {
        self.inner.catalog_checks.load(AtomicOrdering::Relaxed)
    }

    /// The transaction client.
    pub fn client(&self) -> &TxnClient {
        &self.inner.client
    }

    /// The committed catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Opens a session; errors 3D000 if the database does not exist.
    pub fn session(&self, user: &str, database: &str) -> Result<Session> {
        let database = if database.is_empty() { user } else { database };
        if !DATABASES.contains(&database) {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_DATABASE,
                format!("database \"{database}\" does not exist"),
            ));
        }
        let pid = self.inner.next_pid.fetch_add(1, AtomicOrdering::Relaxed);
        let shared = Arc::new(SessionShared {
            db: self.clone(),
            currval: Mutex::new(HashMap::new()),
            lastval: Mutex::new(None),
            settings: Mutex::new(Settings::new(
                user,
                database,
                self.inner.config.query_memory_limit,
            )),
        });
        Ok(Session {
            db: self.clone(),
            shared,
            block: None,
            failed: false,
            overlay: Overlay::default(),
            ddl_guard: None,
            pid,
            prepared: HashMap::new(),
            copy_in: None,
            pending: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A role, read at a fresh snapshot (for authentication); None if there is none.
    pub fn role(&self, name: &str) -> Result<Option<crate::role::RoleDesc>> {
        let txn = self
            .inner
            .client
            .begin(IsolationLevel::RepeatableRead)
            .map_err(crate::error::from_txn)?;
        let role = crate::role::load(&txn, name);
        let _ = txn.rollback();
        role
    }

    /// Runs a closure in a short transaction of its own, retrying on
    /// conflicts (sequence and row-id blocks, which are not transactional).
    fn autonomous<T>(&self, f: impl Fn(&Transaction) -> Result<T>) -> Result<T> {
        let mut delay = 1u64;
        for _ in 0..50 {
            let txn = self
                .inner
                .client
                .begin(IsolationLevel::RepeatableRead)
                .map_err(crate::error::from_txn)?;
            let out = f(&txn)?;
            match txn.commit() {
                Ok(_) => return Ok(out),
                Err(e) if e.code() == reef_common::ErrorCode::WriteConflict => {
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    delay = (delay * 2).min(50);
                }
                Err(e) => return Err(crate::error::from_txn(e)),
            }
        }
        Err(SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not allocate ids: too much contention",
        ))
    }

    /// Reads a counter (row-id allocator or sequence position).
    fn read_counter(txn: &Transaction, id: u32) -> Result<Option<i64>> {
        Ok(txn
            .get(&catalog::counter_key(id))
            .map_err(crate::error::from_txn)?
            .map(|b| i64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]))))
    }

    fn write_counter(txn: &Transaction, id: u32, v: i64) {
        txn.put(catalog::counter_key(id), v.to_be_bytes().to_vec());
    }

    /// A fresh row id for a table (blocks of 1000 per node).
    fn next_rowid(&self, table: u32) -> Result<i64> {
        let mut blocks = self.inner.blocks.lock();
        if let Some((next, end)) = blocks.get_mut(&table) {
            if *next < *end {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let start = self.autonomous(|txn| {
            let cur = Self::read_counter(txn, table)?.unwrap_or(1);
            Self::write_counter(txn, table, cur + 1000);
            Ok(cur)
        })?;
        blocks.insert(table, (start + 1, start + 1000));
        Ok(start)
    }

    /// The next value of a sequence (blocks of up to 32 per node).
    fn nextval(&self, seq: &catalog::SequenceDesc) -> Result<i64> {
        let mut blocks = self.inner.blocks.lock();
        if let Some((next, end)) = blocks.get_mut(&seq.id) {
            if *next != *end {
                let v = *next;
                *next += seq.increment;
                return Ok(v);
            }
        }
        let s = seq.clone();
        let (first, end) = self.autonomous(|txn| {
            let mut cur = Self::read_counter(txn, s.id)?.unwrap_or(s.start);
            let out_of_range = if s.increment > 0 {
                cur > s.max_value
            } else {
                cur < s.min_value
            };
            if out_of_range {
                if !s.cycle {
                    let (which, bound) = if s.increment > 0 {
                        ("maximum", s.max_value)
                    } else {
                        ("minimum", s.min_value)
                    };
                    return Err(SqlError::new(
                        "2200H",
                        format!(
                            "nextval: reached {which} value of sequence \"{}\" ({bound})",
                            s.name
                        ),
                    ));
                }
                cur = if s.increment > 0 {
                    s.min_value
                } else {
                    s.max_value
                };
            }
            // Hand out up to 32 values without leaving the range.
            let mut n = 1i64;
            while n < 32 {
                let nxt = cur.checked_add(s.increment * n);
                match nxt {
                    Some(x)
                        if (s.increment > 0 && x <= s.max_value)
                            || (s.increment < 0 && x >= s.min_value) =>
                    {
                        n += 1
                    }
                    _ => break,
                }
            }
            let end = cur.saturating_add(s.increment * n);
            Self::write_counter(txn, s.id, end);
            Ok((cur, end))
        })?;
        blocks.insert(seq.id, (first + seq.increment, end));
        Ok(first)
    }

    fn setval(&self, seq: &catalog::SequenceDesc, v: i64, is_called: bool) -> Result<()> {
        if v < seq.min_value || v > seq.max_value {
            return Err(SqlError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!(
                    "setval: value {v} is out of bounds for sequence \"{}\" ({}..{})",
                    seq.name, seq.min_value, seq.max_value
                ),
            ));
        }
        let next = if is_called { v + seq.increment } else { v };
        self.autonomous(|txn| {
            Self::write_counter(txn, seq.id, next);
            Ok(())
        })?;
        self.inner.blocks.lock().remove(&seq.id);
        Ok(())
    }

    /// Forgets cached id blocks of an object (after DROP or TRUNCATE).
    pub(crate) fn forget_blocks(&self, id: u32) {
        self.inner.blocks.lock().remove(&id);
    }
}

/// Session settings (SET / SHOW).
#[derive(Debug, Clone)]
pub struct Settings {
    values: HashMap<String, String>,
    /// The per-query memory limit in bytes.
    pub query_memory_limit: usize,
    /// `statement_timeout`: how long a statement may run (None: no limit).
    pub statement_timeout: Option<std::time::Duration>,
}

/// Settings clients may SET, with their defaults. Names are lower case.
pub(crate) const KNOWN_SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("server_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("extra_float_digits", "1"),
    ("search_path", "\"$user\", public"),
    ("standard_conforming_strings", "on"),
    ("bytea_output", "hex"),
    ("client_min_messages", "notice"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
    ("statement_timeout", "0"),
    ("lock_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("synchronous_commit", "on"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("integer_datetimes", "on"),
    ("max_identifier_length", "63"),
    ("is_superuser", "on"),
    ("session_authorization", "reef"),
    ("row_security", "on"),
    ("work_mem", "4MB"),
    ("maintenance_work_mem", "64MB"),
    ("jit", "off"),
    ("enable_seqscan", "on"),
    ("geqo", "on"),
    ("max_parallel_workers_per_gather", "0"),
    ("max_index_keys", "32"),
    ("default_table_access_method", "heap"),
    ("reef.query_memory_limit", ""),
];

impl Settings {
    fn new(user: &str, _database: &str, mem: usize) -> Self {
        let mut values: HashMap<String, String> = KNOWN_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        values.insert("session_authorization".into(), user.to_string());
        values.insert("reef.query_memory_limit".into(), mem.to_string());
        Settings {
            values,
            query_memory_limit: mem,
            statement_timeout: None,
        }
    }

    /// The value of a setting.
    pub fn get(&self, name: &str) -> Result<String> {
        self.values
            .get(&name.to_lowercase())
            .cloned()
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })
    }

    /// Sets a setting back to its default, through [`Settings::set`] so that the parsed forms
    /// (the statement timeout) follow.
    fn reset(&mut self, name: &str, default: &str) -> Result<()> {
        match name {
            "reef.query_memory_limit" | "transaction_isolation" | "transaction_read_only" => {
                self.values.insert(name.to_string(), default.to_string());
                Ok(())
            }
            // Settings that cannot change keep their value.
            _ => match self.set(name, default) {
                Err(e) if e.code == sqlstate::CANT_CHANGE_RUNTIME_PARAM => Ok(()),
                r => r,
            },
        }
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.to_lowercase();
        if !self.values.contains_key(&name) {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
        let bad = |hint: &str| {
            SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"{name}\": \"{value}\""),
            )
            .with_hint(hint.to_string())
        };
        let v = match name.as_str() {
            // The session's role is the one that authenticated; it cannot be changed.
            "server_version"
            | "server_version_num"
            | "server_encoding"
            | "integer_datetimes"
            | "max_identifier_length"
            | "max_index_keys"
            | "is_superuser"
            | "session_authorization" => {
                return Err(SqlError::new(
                    sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                    format!("parameter \"{name}\" cannot be changed"),
                ))
            }
            "client_encoding" => {
                let u = value.to_uppercase().replace(['-', '_'], "");
                match u.as_str() {
                    "UTF8" | "UNICODE" => "UTF8".to_string(),
                    // psql in a C locale asks for SQL_ASCII: bytes pass through unchanged, as in
                    // PostgreSQL.
                    "SQLASCII" => "SQL_ASCII".to_string(),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "client encoding \"{value}\" is not supported; reefdb speaks UTF8 only"
                        )))
                    }
                }
            }
            "standard_conforming_strings" => {
                if !matches!(value.to_lowercase().as_str(), "on" | "true" | "1") {
                    return Err(SqlError::unsupported(
                        "standard_conforming_strings can only be on",
                    ));
                }
                "on".into()
            }
            "bytea_output" => {
                if value.to_lowercase() != "hex" {
                    return Err(SqlError::unsupported("bytea_output can only be hex"));
                }
                "hex".into()
            }
            "datestyle" => {
                let u = value.to_uppercase();
                if !u.contains("ISO") {
                    return Err(SqlError::unsupported("DateStyle must include ISO"));
                }
                // Input order: only month-day-year is implemented; accepting another order and
                // reading dates as MDY would silently swap days and months.
                if u.contains("DMY") || u.contains("YMD") || u.contains("EURO") {
                    return Err(SqlError::unsupported(
                        "DateStyle input orders other than MDY are not supported",
                    ));
                }
                "ISO, MDY".into()
            }
            "intervalstyle" => {
                if value.to_lowercase() != "postgres" {
                    return Err(SqlError::unsupported("IntervalStyle can only be postgres"));
                }
                "postgres".into()
            }
            "timezone" => {
                let u = value.to_uppercase();
                if !matches!(
                    u.as_str(),
                    "UTC"
                        | "GMT"
                        | "ETC/UTC"
                        | "Z"
                        | "ZULU"
                        | "UCT"
                        | "UNIVERSAL"
                        | "ETC/UNIVERSAL"
                        | "ETC/UCT"
                        | "ETC/ZULU"
                        | "ETC/GMT"
                        | "+00"
                        | "0"
                        | "00:00"
                        | "+00:00"
                ) {
                    return Err(SqlError::unsupported(format!(
                        "time zone \"{value}\" is not supported yet; reefdb runs in UTC"
                    )));
                }
                "UTC".into()
            }
            "default_transaction_isolation" | "transaction_isolation" => {
                match parse_isolation_name(value)? {
                    IsolationLevel::ReadCommitted => "read committed".into(),
                    IsolationLevel::RepeatableRead => "repeatable read".into(),
                }
            }
            "reef.query_memory_limit" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("Give a number of bytes."))?;
                if n < 1 << 20 {
                    return Err(bad("The limit must be at least 1048576 bytes."));
                }
                self.query_memory_limit = n;
                n.to_string()
            }
            "statement_timeout" => {
                let ms = parse_duration_ms(value).ok_or_else(|| {
                    bad("Give milliseconds, or a number with a unit (ms, s, min, h, d).")
                })?;
                self.statement_timeout =
                    (ms > 0).then(|| std::time::Duration::from_millis(ms as u64));
                // Shown as PostgreSQL shows it: in the largest unit that divides it.
                match [
                    (86_400_000, "d"),
                    (3_600_000, "h"),
                    (60_000, "min"),
                    (1000, "s"),
                ]
                .into_iter()
                .find(|(unit, _)| ms > 0 && ms % unit == 0)
                {
                    Some((unit, name)) => format!("{}{name}", ms / unit),
                    None if ms == 0 => "0".into(),
                    None => format!("{ms}ms"),
                }
            }
            "lock_timeout" | "idle_in_transaction_session_timeout" | "extra_float_digits" => {
                let t = value.trim().trim_end_matches("ms").trim();
                t.parse::<i64>().map_err(|_| bad("Give a whole number."))?;
                value.to_string()
            }
            _ => value.to_string(),
        };
        self.values.insert(name, v);
        Ok(())
    }
}

/// A duration setting in milliseconds: a bare number is milliseconds; units ms, s, min, h, d.
fn parse_duration_ms(value: &str) -> Option<i64> {
    let v = value.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1e3,
        "min" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        _ => return None,
    };
    let ms = (n * scale).round();
    (ms >= 0.0 && ms <= i32::MAX as f64).then_some(ms as i64)
}

fn parse_isolation_name(v: &str) -> Result<IsolationLevel> {
    match v.to_lowercase().trim() {
        "read committed" | "read uncommitted" => Ok(IsolationLevel::ReadCommitted),
        "repeatable read" => Ok(IsolationLevel::RepeatableRead),
        "serializable" => Err(serializable_error()),
        other => Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"transaction_isolation\": \"{other}\""),
        )),
    }
}

fn serializable_error() -> SqlError {
    SqlError::unsupported("SERIALIZABLE isolation is not supported; use REPEATABLE READ")
        .with_detail("reefdb provides snapshot isolation at REPEATABLE READ and never runs a transaction at a weaker level than requested.")
}

/// State a session shares with its running statements.
struct SessionShared {
    db: Database,
    currval: Mutex<HashMap<u32, i64>>,
    lastval: Mutex<Option<i64>>,
    settings: Mutex<Settings>,
}

impl SessionShared {
    fn sequence(&self, id: u32) -> Result<catalog::SequenceDesc> {
        match self.db.catalog().get(id).as_deref() {
            Some(Object::Sequence(s)) => Ok(s.clone()),
            _ => Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                "sequence does not exist",
            )),
        }
    }
}

impl SessionHooks for SessionShared {
    fn nextval(&self, seq: u32) -> Result<i64> {
        let s = self.sequence(seq)?;
        let v = self.db.nextval(&s)?;
        self.currval.lock().insert(seq, v);
        *self.lastval.lock() = Some(v);
        Ok(v)
    }

    fn currval(&self, seq: u32) -> Result<i64> {
        let s = self.sequence(seq)?;
        self.currval.lock().get(&seq).copied().ok_or_else(|| {
            SqlError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "currval of sequence \"{}\" is not yet defined in this session",
                    s.name
                ),
            )
        })
    }

    fn setval(&self, seq: u32, value: i64, is_called: bool) -> Result<i64> {
        let s = self.sequence(seq)?;
        self.db.setval(&s, value, is_called)?;
        if is_called {
            self.currval.lock().insert(seq, value);
        }
        Ok(value)
    }

    fn lastval(&self) -> Result<i64> {
        self.lastval.lock().ok_or_else(|| {
            SqlError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "lastval is not yet defined in this session",
            )
        })
    }

    fn current_setting(&self, name: &str) -> Result<String> {
        self.settings.lock().get(name)
    }

    fn next_rowid(&self, table: u32) -> Result<i64> {
        self.db.next_rowid(table)
    }
}

/// An explicit transaction block.
struct Block {
    /// Started lazily by the first statement that needs it.
    txn: Option<Transaction>,
    isolation: IsolationLevel,
    read_only: bool,
    /// Whether isolation may still change (no statement has run yet).
    fresh: bool,
    started_at: i64,
    /// Tables written, with the write version the writes were planned with.
    written: Vec<(u32, u64)>,
    /// Savepoints, oldest first: each one's name and whether the block could go back to it
    /// (see `Session::savepoint`).
    savepoints: Vec<(String, bool)>,
}

/// One client session.
pub struct Session {
    db: Database,
    shared: Arc<SessionShared>,
    block: Option<Block>,
    failed: bool,
    overlay: Overlay,
    /// Held while the session's transaction changes the schema: this node's schema changes run
    /// one at a time (other nodes' conflict on the catalog version key instead).
    ddl_guard: Option<ArcMutexGuard<RawMutex, ()>>,
    pid: u32,
    prepared: HashMap<String, Prepared>,
    /// A COPY FROM STDIN receiving rows.
    copy_in: Option<CopyIn>,
    /// Statements of a simple query that follow a COPY FROM STDIN; they run once it ends.
    pending: Vec<ast::Statement>,
    /// Raised by a CancelRequest for this session ([`Session::cancel_flag`]); cleared when a
    /// new request from the client starts.
    cancel: Arc<AtomicBool>,
}

/// Rows a COPY FROM STDIN inserts in one INSERT statement.
const COPY_BATCH: usize = 500;

/// A COPY FROM STDIN in progress.
struct CopyIn {
    /// The table's name, for messages.
    table: String,
    /// The target columns' types, in input order.
    types: Vec<DataType>,
    /// The target columns' names, in input order.
    names: Vec<String>,
    reader: CopyReader,
    /// Rows read and not yet inserted.
    rows: Vec<Fields>,
    /// Rows inserted.
    count: u64,
    /// Whether the COPY began the transaction block it runs in (it then ends it too).
    implicit: bool,
    /// The INSERT for a full batch, parsed once.
    batch: Option<ast::Statement>,
    /// SQL text of INSERT ... VALUES up to (but excluding) the value lists.
    insert_head: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(b) = self.block.take() {
            if let Some(t) = b.txn {
                let _ = t.rollback();
            }
        }
        // Takes back the schema change steps an unfinished transaction committed ahead.
        self.release_ddl(false);
    }
}

/// Parses SQL text into statements.
pub fn parse_sql(sql: &str) -> Result<Vec<ast::Statement>> {
    if let Some(role) = create_user_as_role(sql) {
        return parse_sql_text(&role);
    }
    match parse_sql_text(sql) {
        Err(e) => match copy_option_booleans(sql) {
            Some(fixed) => parse_sql_text(&fixed).map_err(|_| e),
            None => Err(e),
        },
        ok => ok,
    }
}

/// PostgreSQL's `CREATE USER name ...` as the `CREATE ROLE name LOGIN ...` it stands for (the
/// parser reads CREATE USER in another dialect's form); None if the text has no CREATE USER.
/// The original text is edited in place (USER becomes ROLE, LOGIN is inserted after the name),
/// so literals and everything else keep their exact spelling.
fn create_user_as_role(sql: &str) -> Option<String> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Location, Token, Tokenizer};
    let lower = sql.to_ascii_lowercase();
    if !(lower.contains("create") && lower.contains("user")) {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    // Byte offsets of locations (1-based lines, 1-based columns counted in characters).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |loc: Location| -> Option<usize> {
        let start = *line_starts.get((loc.line as usize).checked_sub(1)?)?;
        let line = &sql[start..];
        let col = (loc.column as usize).checked_sub(1)?;
        Some(start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i))
    };
    let is_ws = |t: &Token| matches!(t, Token::Whitespace(_));
    let kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let mut at_start = true;
    for i in 0..tokens.len() {
        let t = &tokens[i].token;
        if is_ws(t) {
            continue;
        }
        let start = at_start;
        at_start = *t == Token::SemiColon;
        if !(start && kw(t, Keyword::CREATE)) {
            continue;
        }
        let sig: Vec<usize> = (i + 1..tokens.len())
            .filter(|&j| !is_ws(&tokens[j].token))
            .collect();
        let (Some(&u), Some(&after_user)) = (sig.first(), sig.get(1)) else {
            continue;
        };
        if !kw(&tokens[u].token, Keyword::USER) || kw(&tokens[after_user].token, Keyword::MAPPING) {
            continue;
        }
        // The name: the first significant token after USER [IF NOT EXISTS].
        let mut k = 1;
        if kw(&tokens[after_user].token, Keyword::IF) {
            k = 4;
        }
        let name = *sig.get(k)?;
        let end = (name..tokens.len())
            .find(|&j| tokens[j].token == Token::SemiColon)
            .unwrap_or(tokens.len());
        let has_login = (name + 1..end).any(|j| {
            kw(&tokens[j].token, Keyword::LOGIN) || kw(&tokens[j].token, Keyword::NOLOGIN)
        });
        let user_at = offset(tokens[u].span.start)?;
        let user_end = offset(tokens[u].span.end)?;
        edits.push((user_at, user_end, "ROLE"));
        if !has_login {
            // After the name, or after WITH when it follows the name.
            let mut at = offset(tokens[name].span.end)?;
            if let Some(&w) = sig.get(k + 1).filter(|&&w| w < end) {
                if kw(&tokens[w].token, Keyword::WITH) {
                    at = offset(tokens[w].span.end)?;
                }
            }
            edits.push((at, at, " LOGIN"));
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort();
    let mut out = String::with_capacity(sql.len() + 8 * edits.len());
    let mut rest = 0;
    for (at, end, text) in edits {
        out.push_str(&sql[rest..at]);
        out.push_str(text);
        rest = end;
    }
    out.push_str(&sql[rest..]);
    Some(out)
}

/// COPY options written `FREEZE on` or `HEADER off` (PostgreSQL's generic option values, which
/// pgbench sends) in the `true`/`false` form the parser reads; None if there are none.
fn copy_option_booleans(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !lower.trim_start().starts_with("copy") {
        return None;
    }
    let mut edits = Vec::new();
    for name in ["freeze", "header"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let start = from + at + name.len();
            from = start;
            let after = &lower[start..];
            let word_at = start + after.len() - after.trim_start().len();
            if word_at == start {
                continue;
            }
            for (word, value) in [("on", "true"), ("off", "false")] {
                let end = word_at + word.len();
                if lower[word_at..].starts_with(word)
                    && !lower[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    edits.push((word_at, end, value));
                }
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort();
    let mut out = String::with_capacity(sql.len());
    let mut rest = 0;
    for (at, end, value) in edits {
        out.push_str(&sql[rest..at]);
        out.push_str(value);
        rest = end;
    }
    out.push_str(&sql[rest..]);
    Some(out)
}

fn parse_sql_text(sql: &str) -> Result<Vec<ast::Statement>> {
    // The parser's default recursion limit (50) rejects WHERE clauses that
    // PostgreSQL accepts; statements run on threads with a large stack.
    Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(400)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let msg = e.to_string();
            let msg = msg
                .strip_prefix("sql parser error: ")
                .unwrap_or(&msg)
                .to_string();
            // PostgreSQL's form: syntax error at or near "TOKEN".
            if let Some(pos) = msg.find(", found: ") {
                let rest = &msg[pos + 9..];
                let token = rest.split(" at Line:").next().unwrap_or(rest).trim();
                let near = if token.eq_ignore_ascii_case("eof") {
                    "syntax error at end of input".to_string()
                } else {
                    format!("syntax error at or near \"{token}\"")
                };
                return SqlError::new(sqlstate::SYNTAX_ERROR, near).with_detail(msg);
            }
            SqlError::new(sqlstate::SYNTAX_ERROR, format!("syntax error: {msg}"))
        })
}

/// Context a statement runs in, after the session picked its transaction.
pub(crate) struct StmtCtx<'s> {
    pub db: &'s Database,
    /// The statement's transaction. Outside a transaction block a statement that has to wait
    /// for a schema change may replace it by a newer one, which the session then commits.
    pub txn: Transaction,
    /// Whether the statement runs in its own transaction (no transaction block).
    pub autocommit: bool,
    pub overlay: &'s mut Overlay,
    pub hooks: Arc<dyn SessionHooks>,
    pub mem_limit: usize,
    pub interrupt: exec::Interrupt,
    pub txn_time: i64,
    pub stmt_time: i64,
}

impl<'s> StmtCtx<'s> {
    /// A catalog view with the session's uncommitted changes.
    pub fn view(&self) -> CatalogView<'_> {
        CatalogView {
            catalog: self.db.catalog(),
            overlay: self.overlay,
        }
    }

    /// An execution context for a bound plan.
    pub fn exec_ctx(&self, params: Vec<Value>) -> ExecContext {
        ExecContext::new(
            self.txn.clone(),
            params,
            self.hooks.clone(),
            self.txn_time,
            self.stmt_time,
            self.mem_limit,
            self.interrupt.clone(),
        )
    }

    /// Allocates an object id.
    pub fn alloc_id(&self) -> Result<u32> {
        let key = catalog::next_id_key();
        let cur = self
            .txn
            .get(&key)
            .map_err(crate::error::from_txn)?
            .map(|b| u32::from_be_bytes(b[..4].try_into().unwrap_or([0; 4])))
            .unwrap_or(100);
        self.txn.put(key, (cur + 1).to_be_bytes().to_vec());
        Ok(cur)
    }

    /// Marks the catalog changed by this transaction (see [`catalog::version_key`]), and
    /// holds its commit back as [`Database::begin`] relies on.
    fn bump_catalog_version(&self) {
        self.db.mark_catalog_changed(&self.txn);
    }

    /// Records a changed object in the transaction and the overlay. A table's write version
    /// moves past every earlier one, committed or in this transaction, when writers must
    /// change what they do (see [`TableDesc::same_write_shape`]); it stays otherwise.
    pub fn put_object(&mut self, mut obj: Object) {
        if let Object::Table(t) = &mut obj {
            let committed = self.db.catalog().get(t.id);
            let own = self.overlay.changes.get(&t.id).cloned().flatten();
            let table = |o: &Option<Arc<Object>>| match o.as_deref() {
                Some(Object::Table(old)) => Some(old.clone()),
                _ => None,
            };
            let (committed, own) = (table(&committed), table(&own));
            let floor = [&committed, &own]
                .iter()
                .filter_map(|o| o.as_ref().map(|old| old.write_version))
                .fold(t.write_version, u64::max);
            let previous = own.as_ref().or(committed.as_ref());
            t.write_version = match previous {
                Some(old) if old.same_write_shape(t) => floor,
                _ => floor + 1,
            };
        }
        self.bump_catalog_version();
        let (key, value) = (catalog::object_key(obj.id()), catalog::encode_object(&obj));
        match self.overlay.based_at.get(&obj.id()) {
            Some(at) => self.txn.put_since(key, value, *at),
            None => self.txn.put(key, value),
        }
        self.overlay.changes.insert(obj.id(), Some(Arc::new(obj)));
    }

    /// Waits for a schema change another transaction has in progress on `table` (a write
    /// fence, an index build), and then fails the statement with 40001 (it planned against
    /// what that change replaces; a statement outside a transaction block is run again). A
    /// table this transaction changed is its own.
    pub fn respect_fence(&self, table: &TableDesc) -> Result<()> {
        if self.overlay.changes.contains_key(&table.id) {
            return Ok(());
        }
        let owned = self.own_marks(table.id);
        let Some(fence) = crate::fence::active_marks(table, self.txn.read_ts())
            .into_iter()
            .find(|f| !owned.contains(f))
        else {
            return Ok(());
        };
        self.db
            .wait_for_fence(table.id, &table.name, fence, std::time::Instant::now())?;
        Err(SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            format!(
                "could not serialize access: table \"{}\" was altered while this statement ran",
                table.name
            ),
        )
        .with_hint("The transaction might succeed if retried."))
    }

    /// Removes an object in the transaction and the overlay.
    pub fn drop_object(&mut self, id: u32) {
        self.bump_catalog_version();
        self.txn.delete(catalog::object_key(id));
        self.overlay.changes.insert(id, None);
        self.db.forget_blocks(id);
    }

    /// Forgets an object's cached id blocks.
    pub fn forget_blocks(&self, id: u32) {
        self.db.forget_blocks(id);
    }

    /// Prepares a schema change of `table` that reads or rewrites its rows while transactions
    /// on any node may be writing it (see [`crate::fence`]). With `index`, it commits the
    /// index as write-only (writers maintain it from then on); without, a write fence that
    /// holds writers off. Either is committed ahead of this transaction and taken back if the
    /// transaction does not commit. It then waits out the schema lease and moves the
    /// statement's read timestamp past it, so the statement reads every row a writer planned
    /// against the older descriptor could commit. Returns the descriptor to continue from,
    /// with the write-only index (its id assigned) or the fence; `None` for a table this
    /// transaction created or fenced already, which no one else can write: an index is then
    /// built as for a new table. A table this transaction already fenced keeps its fence (no
    /// new wait).
    pub fn fence_table(
        &mut self,
        table: &TableDesc,
        index: Option<&IndexDesc>,
    ) -> Result<Option<TableDesc>> {
        if self.db.catalog().get(table.id).is_none() {
            return Ok(None);
        }
        let marks = self.own_marks(table.id);
        let owned = self.overlay.undo.iter().find_map(|step| match step {
            SchemaStep::Fence { table: id, fence } if *id == table.id => Some(*fence),
            _ => None,
        });
        match (index, owned) {
            // Fenced by an earlier statement of this transaction: writers are held off and the
            // lease was waited out then.
            (None, Some(_)) => return Ok(Some(self.own_table(table.id)?)),
            // No writer can add rows meanwhile either: the index is built in this transaction,
            // as for a table it created (it may cover columns only this transaction has).
            (Some(_), Some(_)) => return Ok(None),
            _ => {}
        }
        let chosen_index = std::cell::Cell::new(None);
        let chosen_fence = std::cell::Cell::new(None);
        let changed = self.db.change_table_now(table.id, &marks, &|t, txn| {
            let mark = WriteFence {
                until: reef_common::ts_after_ms(txn.start_ts(), crate::fence::FENCE_TTL_MS),
            };
            chosen_fence.set(Some(mark));
            match index {
                Some(idx) => {
                    if t.indexes.iter().any(|i| i.name == idx.name) {
                        return Err(SqlError::new(
                            sqlstate::DUPLICATE_TABLE,
                            format!("relation \"{}\" already exists", idx.name),
                        ));
                    }
                    if idx.columns.iter().any(|c| t.column_pos(*c).is_none()) {
                        return Err(SqlError::new(
                            sqlstate::SERIALIZATION_FAILURE,
                            "could not serialize access: the table's columns changed concurrently",
                        )
                        .with_hint("The transaction might succeed if retried."));
                    }
                    let mut idx = idx.clone();
                    idx.id = t.next_index_id;
                    idx.state = IndexState::WriteOnly;
                    t.next_index_id += 1;
                    chosen_index.set(Some(idx.id));
                    t.indexes.push(idx);
                    // Other schema changes of the table wait for the build.
                    t.building = Some(mark);
                }
                None => t.fence = Some(mark),
            }
            Ok(())
        });
        // Record the step to take back even when the outcome is unknown: taking back a step
        // that did not land does nothing.
        let outcome_unknown = matches!(&changed, Err(e) if e.code == "40003");
        if changed.is_ok() || outcome_unknown {
            match (chosen_index.get(), chosen_fence.get()) {
                (Some(index), Some(mark)) => self.overlay.undo.push(SchemaStep::WriteOnlyIndex {
                    table: table.id,
                    index,
                    mark,
                }),
                (None, Some(fence)) => {
                    self.overlay.undo.push(SchemaStep::Fence {
                        table: table.id,
                        fence,
                    });
                    self.overlay.fence_deadline = Some(
                        self.overlay
                            .fence_deadline
                            .map_or(fence.until, |d| d.min(fence.until)),
                    );
                }
                _ => {}
            }
        }
        let (committed, changed_at) = changed?;
        self.overlay.based_at.insert(table.id, changed_at);
        if owned.is_none() {
            let now = self.db.wait_out_lease(changed_at, self.txn.start_ts())?;
            self.txn
                .advance_read_ts(now)
                .map_err(crate::error::from_txn)?;
        }
        // Continue from this transaction's own version of the table, if it changed it already.
        let base = match self.overlay.changes.get(&table.id) {
            Some(Some(obj)) => match &**obj {
                Object::Table(own) => {
                    let mut own = own.clone();
                    own.write_version = committed.write_version;
                    own.fence = committed.fence;
                    own.building = committed.building;
                    own.next_index_id = own.next_index_id.max(committed.next_index_id);
                    if let Some(id) = chosen_index.get() {
                        let added = committed
                            .indexes
                            .iter()
                            .find(|i| i.id == id)
                            .expect("the index was added");
                        own.indexes.push(added.clone());
                    }
                    own
                }
                _ => committed,
            },
            _ => committed,
        };
        Ok(Some(base))
    }

    /// The marks of schema changes this transaction has in progress on table `id`.
    fn own_marks(&self, id: u32) -> Vec<WriteFence> {
        self.overlay
            .undo
            .iter()
            .filter_map(|step| match step {
                SchemaStep::Fence { table, fence } if *table == id => Some(*fence),
                SchemaStep::WriteOnlyIndex { table, mark, .. } if *table == id => Some(*mark),
                _ => None,
            })
            .collect()
    }

    /// This transaction's view of a table it is changing.
    fn own_table(&self, id: u32) -> Result<TableDesc> {
        match self.view().get(id).as_deref() {
            Some(Object::Table(t)) => Ok(t.clone()),
            _ => Err(SqlError::internal(format!("table {id} vanished"))),
        }
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// What a statement needs from the session's transaction state.
enum StmtKind {
    /// Reads or writes data.
    Data,
    /// Changes the schema.
    Ddl,
}

impl Session {
    /// The session's backend process id (for BackendKeyData).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The flag a CancelRequest raises to stop this session's running statement: the
    /// statement fails with SQLSTATE 57014. The flag is lowered when the next request starts.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Runs a simple query.
    pub fn execute_simple(&mut self, sql: &str) -> Vec<Result<ExecResult>> {
        self.cancel.store(false, AtomicOrdering::Relaxed);
        if let Some(r) = self.vacuum(sql) {
            return vec![r];
        }
        let stmts = match parse_sql(sql) {
            Ok(s) => s,
            Err(e) => {
                if self.block.is_some() {
                    self.fail_block();
                }
                return vec![Err(e)];
            }
        };
        self.run_statements(stmts)
    }

    /// Runs statements of a simple query until one fails or one starts a COPY FROM STDIN
    /// (the rest then wait in `pending` for [`Session::resume`]).
    fn run_statements(&mut self, stmts: Vec<ast::Statement>) -> Vec<Result<ExecResult>> {
        let mut out = Vec::with_capacity(stmts.len());
        let mut stmts = stmts.into_iter();
        while let Some(stmt) = stmts.next() {
            let r = self.execute_stmt(&stmt, &[]);
            let stop = r.is_err();
            let copy_in = matches!(&r, Ok(r) if matches!(r.copy, Some(CopyTransfer::In { .. })));
            out.push(r);
            if copy_in {
                self.pending = stmts.collect();
                break;
            }
            if stop {
                break;
            }
        }
        out
    }

    /// Runs the statements of a simple query that followed a COPY FROM STDIN, once the copy
    /// succeeded.
    pub fn resume(&mut self) -> Vec<Result<ExecResult>> {
        self.cancel.store(false, AtomicOrdering::Relaxed);
        let stmts = std::mem::take(&mut self.pending);
        self.run_statements(stmts)
    }

    /// VACUUM in the forms the parser does not know (`VACUUM ANALYZE t`,
    /// `VACUUM (options) t`): accepted outside a transaction block; old
    /// versions are removed by background garbage collection.
    fn vacuum(&mut self, sql: &str) -> Option<Result<ExecResult>> {
        let t = sql.trim().trim_end_matches(';').trim();
        let mut words = t.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("vacuum") || t.contains(';') {
            return None;
        }
        if self.failed {
            return Some(Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        if self.block.is_some() {
            self.fail_block();
            return Some(Err(SqlError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                "VACUUM cannot run inside a transaction block",
            )));
        }
        // Every named table must exist.
        let view = CatalogView {
            catalog: self.db.catalog(),
            overlay: &self.overlay,
        };
        for w in t
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
            .skip(1)
        {
            let w = w.trim().to_lowercase();
            if w.is_empty()
                || matches!(
                    w.as_str(),
                    "analyze"
                        | "analyse"
                        | "full"
                        | "freeze"
                        | "verbose"
                        | "true"
                        | "false"
                        | "on"
                        | "off"
                        | "skip_locked"
                        | "index_cleanup"
                        | "truncate"
                        | "parallel"
                        | "disable_page_skipping"
                        | "process_toast"
                )
            {
                continue;
            }
            if w.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Err(e) = view.table(w.trim_matches('"')) {
                return Some(Err(e));
            }
        }
        Some(Ok(ExecResult::tag("VACUUM")))
    }

    /// Parses and describes one statement.
    pub fn prepare(&mut self, sql: &str, param_types: &[Option<DataType>]) -> Result<Prepared> {
        let mut stmts = parse_sql(sql)?;
        // Describing binds against the cached catalog before any transaction begins: bring it
        // up to date first, unless a transaction already fixed the snapshot it must match.
        if self.block.as_ref().is_none_or(|b| b.txn.is_none()) {
            self.db.sync_catalog()?;
        }
        if stmts.len() > 1 {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let stmt = match stmts.pop() {
            Some(s) => s,
            None => {
                return Ok(Prepared {
                    sql: sql.into(),
                    param_types: vec![],
                    columns: None,
                    stmt: None,
                    plan: Arc::default(),
                })
            }
        };
        let declared: Vec<DataType> = param_types
            .iter()
            .map(|t| t.unwrap_or(DataType::Unknown))
            .collect();
        let (params, columns) = self.describe(&stmt, declared)?;
        Ok(Prepared {
            sql: sql.into(),
            param_types: params,
            columns,
            stmt: Some(Arc::new(stmt)),
            plan: Arc::default(),
        })
    }

    /// Executes a prepared statement.
    pub fn execute_prepared(&mut self, p: &Prepared, params: &[Value]) -> Result<ExecResult> {
        self.cancel.store(false, AtomicOrdering::Relaxed);
        match &p.stmt {
            None => Ok(ExecResult::tag("")),
            Some(stmt) => {
                if params.len() != p.param_types.len() {
                    return Err(SqlError::new(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!(
                            "bind message supplies {} parameters, but prepared statement requires {}",
                            params.len(),
                            p.param_types.len()
                        ),
                    ));
                }
                self.execute_stmt_typed(stmt, params, &p.param_types, Some(&p.plan))
            }
        }
    }

    /// The ReadyForQuery status.
    pub fn txn_status(&self) -> TxnStatus {
        if self.failed {
            TxnStatus::Failed
        } else if self.block.is_some() {
            TxnStatus::InBlock
        } else {
            TxnStatus::Idle
        }
    }

    /// ParameterStatus pairs.
    pub fn parameter_status(&self) -> Vec<(String, String)> {
        let s = self.shared.settings.lock();
        let get = |n: &str| s.get(n).unwrap_or_default();
        vec![
            ("server_version".into(), "15.0 (reefdb 0.1.0)".into()),
            ("server_encoding".into(), "UTF8".into()),
            ("client_encoding".into(), get("client_encoding")),
            ("DateStyle".into(), get("datestyle")),
            ("IntervalStyle".into(), get("intervalstyle")),
            ("TimeZone".into(), get("timezone")),
            ("integer_datetimes".into(), "on".into()),
            ("standard_conforming_strings".into(), "on".into()),
            ("application_name".into(), get("application_name")),
            ("is_superuser".into(), "on".into()),
            ("session_authorization".into(), get("session_authorization")),
        ]
    }

    fn describe(
        &mut self,
        stmt: &ast::Statement,
        declared: Vec<DataType>,
    ) -> Result<(Vec<DataType>, Option<Vec<Column>>)> {
        let view = CatalogView {
            catalog: self.db.catalog(),
            overlay: &self.overlay,
        };
        let mut binder = Binder::new(view, declared);
        let columns = match stmt {
            ast::Statement::Query(q) => {
                let b = binder.bind_query(q)?;
                Some(columns_of(&b))
            }
            ast::Statement::Insert(ins) => {
                binder.bind_insert(ins)?;
                ins.returning.as_ref().map(|_| returning_columns(&binder))
            }
            ast::Statement::Update(up) => {
                binder.bind_update(up)?;
                up.returning.as_ref().map(|_| returning_columns(&binder))
            }
            ast::Statement::Delete(del) => {
                binder.bind_delete(del)?;
                del.returning.as_ref().map(|_| returning_columns(&binder))
            }
            ast::Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                if name.eq_ignore_ascii_case("all") {
                    Some(show_all_columns())
                } else {
                    Some(vec![Column {
                        name: name.to_lowercase(),
                        data_type: DataType::Text,
                    }])
                }
            }
            ast::Statement::Explain { .. } => Some(vec![Column {
                name: "QUERY PLAN".into(),
                data_type: DataType::Text,
            }]),
            _ => None,
        };
        let params = binder
            .params
            .iter()
            .map(|t| {
                if *t == DataType::Unknown {
                    DataType::Text
                } else {
                    *t
                }
            })
            .collect();
        Ok((params, columns))
    }

    fn fail_block(&mut self) {
        if let Some(b) = &mut self.block {
            if let Some(t) = b.txn.take() {
                let _ = t.rollback();
            }
            self.failed = true;
        }
        self.release_ddl(false);
    }

    /// Ends the transaction's schema changes: publishes them on commit,
    /// drops them on rollback, and releases the DDL lock.
    fn release_ddl(&mut self, committed: bool) {
        let changes = std::mem::take(&mut self.overlay.changes);
        let undo = std::mem::take(&mut self.overlay.undo);
        self.overlay.fence_deadline = None;
        if committed && !changes.is_empty() {
            self.db.publish(&changes);
        }
        if !committed {
            for step in undo {
                self.db.undo_schema_step(step);
            }
        }
        self.ddl_guard = None;
    }

    fn default_isolation(&self) -> Result<IsolationLevel> {
        parse_isolation_name(
            &self
                .shared
                .settings
                .lock()
                .get("default_transaction_isolation")?,
        )
    }

    fn execute_stmt(&mut self, stmt: &ast::Statement, params: &[Value]) -> Result<ExecResult> {
        self.execute_stmt_typed(stmt, params, &[], None)
    }

    fn execute_stmt_typed(
        &mut self,
        stmt: &ast::Statement,
        params: &[Value],
        types: &[DataType],
        plan: Option<&PlanSlot>,
    ) -> Result<ExecResult> {
        // Transaction control first.
        match stmt {
            ast::Statement::StartTransaction { modes, .. } => return self.begin(modes),
            ast::Statement::Commit { chain, .. } => {
                if *chain {
                    return Err(SqlError::unsupported("COMMIT AND CHAIN is not supported"));
                }
                return self.commit_block();
            }
            ast::Statement::Rollback { chain, savepoint } => {
                if let Some(name) = savepoint {
                    return self.rollback_to_savepoint(&crate::binder::ident_name(name));
                }
                if *chain {
                    return Err(SqlError::unsupported("ROLLBACK AND CHAIN is not supported"));
                }
                return self.rollback_block();
            }
            ast::Statement::Savepoint { name } => {
                return self.savepoint(&crate::binder::ident_name(name))
            }
            ast::Statement::ReleaseSavepoint { name } => {
                return self.release_savepoint(&crate::binder::ident_name(name))
            }
            _ => {}
        }
        if self.failed {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let mut result = match stmt {
            ast::Statement::Copy { .. } => self.start_copy(stmt),
            _ => self.run_in_txn(stmt, params, types, plan),
        };
        // A schema change outside a transaction block that met another one (a conflict on
        // the catalog, a write fence it waited for) is run again: nothing of it remains.
        let mut attempts = 1;
        while self.block.is_none()
            && matches!(Self::statement_kind(stmt), StmtKind::Ddl)
            && matches!(&result, Err(e) if e.code == sqlstate::SERIALIZATION_FAILURE)
            && attempts < 5
        {
            attempts += 1;
            result = self.run_in_txn(stmt, params, types, plan);
        }
        if result.is_err() && self.block.is_some() {
            self.fail_block();
        }
        result
    }

    /// Starts a COPY: TO STDOUT runs the query and formats its rows; FROM STDIN checks the
    /// table and columns, begins a transaction block unless one is open, and waits for rows.
    fn start_copy(&mut self, stmt: &ast::Statement) -> Result<ExecResult> {
        let ast::Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            payload,
        } = stmt
        else {
            return Err(SqlError::internal(
                "start_copy on a statement that is no COPY",
            ));
        };
        if self.copy_in.is_some() {
            return Err(SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "a COPY is already in progress",
            ));
        }
        let opts = CopyOptions::from_ast(options, legacy_options)?;
        let files = || {
            SqlError::unsupported(
                "COPY to or from a file or program on the server is not supported",
            )
            .with_hint("Use COPY ... FROM STDIN or TO STDOUT (psql's \\copy does).")
        };
        let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        if *to {
            if !matches!(target, ast::CopyTarget::Stdout) {
                return Err(files());
            }
            let query = match source {
                ast::CopySource::Query(q) => ast::Statement::Query(q.clone()),
                ast::CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let cols = if columns.is_empty() {
                        "*".to_string()
                    } else {
                        columns
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let mut q = parse_sql(&format!("SELECT {cols} FROM {table_name}"))?;
                    q.pop()
                        .ok_or_else(|| SqlError::internal("empty COPY query"))?
                }
            };
            let r = self.run_in_txn(&query, &[], &[], None)?;
            let columns = r.columns.unwrap_or_default();
            let (mut data, mut ends, mut text) = (Vec::new(), Vec::new(), String::new());
            if opts.header {
                let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                crate::copy::format_header(&names, &opts, &mut data);
                ends.push(data.len());
            }
            for row in &r.rows {
                crate::copy::format_row(row, &opts, &mut text, &mut data);
                ends.push(data.len());
            }
            return Ok(ExecResult {
                tag: format!("COPY {}", r.rows.len()),
                columns: None,
                rows: Vec::new(),
                copy: Some(CopyTransfer::Out {
                    columns: columns.len(),
                    data,
                    ends,
                }),
            });
        }
        if !matches!(target, ast::CopyTarget::Stdin) {
            return Err(files());
        }
        let ast::CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "COPY FROM needs a table, not a query",
            ));
        };
        if self.block.as_ref().is_some_and(|b| b.read_only) {
            return Err(SqlError::new(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                "cannot execute COPY FROM in a read-only transaction",
            ));
        }
        self.db.sync_catalog()?;
        let table = CatalogView {
            catalog: self.db.catalog(),
            overlay: &self.overlay,
        }
        .table(&object_name(table_name)?)?;
        let mut targets: Vec<&catalog::ColumnDesc> = Vec::new();
        if columns.is_empty() {
            targets.extend(table.columns.iter().filter(|c| !c.hidden));
        } else {
            for ident in columns {
                let name = crate::binder::ident_name(ident);
                let c = table
                    .columns
                    .iter()
                    .find(|c| !c.hidden && c.name == name)
                    .ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!(
                                "column \"{name}\" of relation \"{}\" does not exist",
                                table.name
                            ),
                        )
                    })?;
                if targets.iter().any(|t| t.id == c.id) {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{name}\" specified more than once"),
                    ));
                }
                targets.push(c);
            }
        }
        let insert_head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote(&table.name),
            targets
                .iter()
                .map(|c| quote(&c.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let implicit = self.block.is_none();
        if implicit {
            self.begin(&[])?;
        }
        self.copy_in = Some(CopyIn {
            table: table.name.clone(),
            types: targets.iter().map(|c| c.ty).collect(),
            names: targets.iter().map(|c| c.name.clone()).collect(),
            reader: CopyReader::new(opts),
            rows: Vec::new(),
            count: 0,
            implicit,
            batch: None,
            insert_head,
        });
        if payload.is_some() {
            // The parser took the text after `FROM STDIN;` as inline rows; over the wire the
            // rows come as CopyData, and that text was meant as further statements.
            let e = SqlError::unsupported(
                "COPY FROM STDIN must be the last statement of its query string; its rows travel as CopyData",
            );
            self.copy_in = None;
            return Err(self.copy_abort_implicit(implicit, e));
        }
        Ok(ExecResult {
            tag: String::new(),
            columns: None,
            rows: Vec::new(),
            copy: Some(CopyTransfer::In {
                columns: self.copy_in.as_ref().map_or(0, |c| c.types.len()),
            }),
        })
    }

    /// Takes rows of a COPY FROM STDIN (a CopyData message's bytes). On error the COPY is
    /// over: its transaction block is rolled back (or, if the client opened it, failed).
    pub fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        let Some(mut c) = self.copy_in.take() else {
            return Err(SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "unexpected COPY data outside COPY FROM STDIN",
            ));
        };
        let r = c.reader.push(data, &mut c.rows).and_then(|()| {
            if c.rows.len() >= COPY_BATCH {
                self.copy_rows(&mut c)
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => {
                self.copy_in = Some(c);
                Ok(())
            }
            Err(e) => Err(self.copy_abort(c, e)),
        }
    }

    /// Ends a COPY FROM STDIN (CopyDone): inserts the last rows and commits the block the
    /// COPY began. Returns `COPY n`.
    pub fn copy_done(&mut self) -> Result<ExecResult> {
        let Some(mut c) = self.copy_in.take() else {
            return Err(SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "unexpected CopyDone outside COPY FROM STDIN",
            ));
        };
        let r = c
            .reader
            .finish(&mut c.rows)
            .and_then(|()| self.copy_rows(&mut c));
        if let Err(e) = r {
            return Err(self.copy_abort(c, e));
        }
        if c.implicit {
            let committed = self.commit_block()?;
            if committed.tag != "COMMIT" {
                return Err(SqlError::new(
                    sqlstate::IN_FAILED_SQL_TRANSACTION,
                    "COPY's transaction was rolled back",
                ));
            }
        }
        Ok(ExecResult::tag(format!("COPY {}", c.count)))
    }

    /// Ends a COPY FROM STDIN that the client gave up on (CopyFail): nothing it sent stays.
    pub fn copy_fail(&mut self, message: &str) -> SqlError {
        let e = SqlError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        );
        match self.copy_in.take() {
            Some(c) => self.copy_abort(c, e),
            None => e,
        }
    }

    /// Whether a COPY FROM STDIN is waiting for rows.
    pub fn in_copy(&self) -> bool {
        self.copy_in.is_some()
    }

    fn copy_abort(&mut self, c: CopyIn, e: SqlError) -> SqlError {
        self.copy_abort_implicit(c.implicit, e)
    }

    fn copy_abort_implicit(&mut self, implicit: bool, e: SqlError) -> SqlError {
        self.pending.clear();
        if implicit {
            let _ = self.rollback_block();
        } else {
            self.fail_block();
        }
        e
    }

    /// Inserts the rows read so far, in batches of [`COPY_BATCH`].
    fn copy_rows(&mut self, c: &mut CopyIn) -> Result<()> {
        let rows = std::mem::take(&mut c.rows);
        let ncols = c.types.len();
        for chunk in rows.chunks(COPY_BATCH) {
            let mut params = Vec::with_capacity(chunk.len() * ncols);
            for (i, fields) in chunk.iter().enumerate() {
                let line = c.count + i as u64 + 1;
                let context = |e: SqlError| e.with_detail(format!("COPY {}, line {line}", c.table));
                if fields.len() > ncols {
                    return Err(context(SqlError::new(
                        sqlstate::BAD_COPY_FILE_FORMAT,
                        "extra data after last expected column",
                    )));
                }
                if fields.len() < ncols {
                    return Err(context(SqlError::new(
                        sqlstate::BAD_COPY_FILE_FORMAT,
                        format!("missing data for column \"{}\"", c.names[fields.len()]),
                    )));
                }
                for (f, ty) in fields.iter().zip(&c.types) {
                    params.push(match f {
                        None => Value::Null,
                        Some(text) => crate::types::text::parse_text(text, ty).map_err(context)?,
                    });
                }
            }
            let stmt = if chunk.len() == COPY_BATCH && c.batch.is_some() {
                c.batch.clone().unwrap()
            } else {
                let mut sql = c.insert_head.clone();
                for r in 0..chunk.len() {
                    sql.push_str(if r == 0 { "(" } else { ", (" });
                    for k in 0..ncols {
                        if k > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("${}", r * ncols + k + 1));
                    }
                    sql.push(')');
                }
                let stmt = parse_sql(&sql)?
                    .pop()
                    .ok_or_else(|| SqlError::internal("empty COPY insert"))?;
                if chunk.len() == COPY_BATCH {
                    c.batch = Some(stmt.clone());
                }
                stmt
            };
            let types: Vec<DataType> = (0..chunk.len())
                .flat_map(|_| c.types.iter().copied())
                .collect();
            self.run_in_txn(&stmt, &params, &types, None)?;
            c.count += chunk.len() as u64;
        }
        Ok(())
    }

    fn begin(&mut self, modes: &[ast::TransactionMode]) -> Result<ExecResult> {
        if self.failed {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if self.block.is_some() {
            // PostgreSQL warns and carries on.
            return Ok(ExecResult::tag("BEGIN"));
        }
        let mut isolation = self.default_isolation()?;
        let mut read_only = false;
        for m in modes {
            match m {
                ast::TransactionMode::IsolationLevel(l) => isolation = isolation_from_ast(l)?,
                ast::TransactionMode::AccessMode(a) => {
                    read_only = matches!(a, ast::TransactionAccessMode::ReadOnly)
                }
            }
        }
        self.block = Some(Block {
            txn: None,
            isolation,
            read_only,
            fresh: true,
            started_at: now_micros(),
            written: vec![],
            savepoints: vec![],
        });
        Ok(ExecResult::tag("BEGIN"))
    }

    fn commit_block(&mut self) -> Result<ExecResult> {
        let Some(block) = self.block.take() else {
            return Ok(ExecResult::tag("COMMIT"));
        };
        if self.failed {
            self.failed = false;
            self.release_ddl(false);
            return Ok(ExecResult::tag("ROLLBACK"));
        }
        let res = match block.txn {
            Some(txn) => self.commit_txn(&txn, &block.written),
            None => Ok(()),
        };
        match res {
            Ok(()) => {
                self.release_ddl(true);
                Ok(ExecResult::tag("COMMIT"))
            }
            Err(e) => {
                self.release_ddl(false);
                Err(e)
            }
        }
    }

    /// `SAVEPOINT name`. Savepoints are limited: the block can go back to one only if nothing
    /// was written or changed before it and the block reads a fresh snapshot per statement (or
    /// has read nothing yet), since going back then means starting the block's transaction
    /// afresh. That is how drivers use them around a query that may fail (psycopg's type
    /// lookups); going back over writes fails with 0A000 and leaves the block aborted.
    fn savepoint(&mut self, name: &str) -> Result<ExecResult> {
        let failed = self.failed;
        let overlay_clean = self.overlay.changes.is_empty();
        let Some(block) = self.block.as_mut() else {
            return Err(SqlError::new(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "SAVEPOINT can only be used in transaction blocks",
            ));
        };
        if failed {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let unwritten = block.txn.as_ref().is_none_or(|t| t.is_read_only()) && overlay_clean;
        let fresh_snapshot =
            block.txn.is_none() || block.isolation == IsolationLevel::ReadCommitted;
        block
            .savepoints
            .push((name.to_string(), unwritten && fresh_snapshot));
        Ok(ExecResult::tag("SAVEPOINT"))
    }

    fn no_savepoint(name: &str) -> SqlError {
        SqlError::new(
            sqlstate::INVALID_SAVEPOINT_SPECIFICATION,
            format!("savepoint \"{name}\" does not exist"),
        )
    }

    /// `RELEASE [SAVEPOINT] name`: forgets it and every later one.
    fn release_savepoint(&mut self, name: &str) -> Result<ExecResult> {
        if self.failed {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let Some(block) = self.block.as_mut() else {
            return Err(SqlError::new(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "RELEASE SAVEPOINT can only be used in transaction blocks",
            ));
        };
        let at = block
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Self::no_savepoint(name))?;
        block.savepoints.truncate(at);
        Ok(ExecResult::tag("RELEASE"))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`, for a savepoint taken before anything was written.
    fn rollback_to_savepoint(&mut self, name: &str) -> Result<ExecResult> {
        let Some(block) = self.block.as_mut() else {
            return Err(SqlError::new(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "ROLLBACK TO SAVEPOINT can only be used in transaction blocks",
            ));
        };
        let at = block
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Self::no_savepoint(name))?;
        if !block.savepoints[at].1 {
            let e = SqlError::unsupported(
                "rolling back to a savepoint taken after the transaction wrote or read is not \
                 supported yet",
            );
            self.fail_block();
            return Err(e);
        }
        block.savepoints.truncate(at + 1);
        block.written.clear();
        if let Some(t) = block.txn.take() {
            let _ = t.rollback();
        }
        self.release_ddl(false);
        self.failed = false;
        Ok(ExecResult::tag("ROLLBACK"))
    }

    fn rollback_block(&mut self) -> Result<ExecResult> {
        if let Some(block) = self.block.take() {
            if let Some(t) = block.txn {
                let _ = t.rollback();
            }
        }
        self.failed = false;
        self.release_ddl(false);
        Ok(ExecResult::tag("ROLLBACK"))
    }

    /// Commits a transaction behind its commit fence (see [`crate::fence`]): the tables it
    /// wrote must still have the write versions it planned with when it commits after the
    /// schema lease, and a schema change holding a write fence must commit before the fence
    /// ends. Tables whose schema this transaction changed itself are its own.
    fn commit_txn(&mut self, txn: &Transaction, written: &[(u32, u64)]) -> Result<()> {
        let checked: Vec<(u32, u64)> = written
            .iter()
            .filter(|(id, _)| !self.overlay.changes.contains_key(id))
            .copied()
            .collect();
        let deadline = self.overlay.fence_deadline;
        if !checked.is_empty() || deadline.is_some() {
            txn.set_commit_fence(crate::fence::commit_fence(
                txn.start_ts(),
                checked,
                deadline,
            ))
            .map_err(crate::error::from_txn)?;
        }
        txn.commit().map(|_| ()).map_err(crate::error::from_txn)
    }

    fn statement_kind(stmt: &ast::Statement) -> StmtKind {
        use ast::Statement as S;
        match stmt {
            S::CreateTable(_)
            | S::CreateIndex(_)
            | S::CreateView(_)
            | S::CreateSequence { .. }
            | S::AlterTable(_)
            | S::Drop { .. }
            | S::Truncate(_) => StmtKind::Ddl,
            _ => StmtKind::Data,
        }
    }

    /// Runs a statement inside the block's transaction, or in its own
    /// autocommit transaction outside a block.
    fn run_in_txn(
        &mut self,
        stmt: &ast::Statement,
        params: &[Value],
        types: &[DataType],
        plan: Option<&PlanSlot>,
    ) -> Result<ExecResult> {
        // Statements that need no transaction.
        match stmt {
            ast::Statement::Set(set) => return self.set(set),
            ast::Statement::ShowVariable { variable } => return self.show(variable),
            ast::Statement::Reset(r) => {
                let mut s = self.shared.settings.lock();
                let fixed = [
                    "server_version",
                    "server_version_num",
                    "server_encoding",
                    "integer_datetimes",
                    "max_identifier_length",
                    "is_superuser",
                    "session_authorization",
                    "reef.query_memory_limit",
                ];
                match &r.reset {
                    ast::Reset::ConfigurationParameter(n) => {
                        let n = n.to_string().to_lowercase();
                        let n = if n == "time zone" {
                            "timezone".to_string()
                        } else {
                            n
                        };
                        let def =
                            KNOWN_SETTINGS
                                .iter()
                                .find(|(k, _)| *k == n)
                                .ok_or_else(|| {
                                    SqlError::new(
                                        sqlstate::UNDEFINED_OBJECT,
                                        format!("unrecognized configuration parameter \"{n}\""),
                                    )
                                })?;
                        if !fixed.contains(&def.0) {
                            s.reset(def.0, def.1)?;
                        }
                    }
                    _ => {
                        for (k, v) in KNOWN_SETTINGS {
                            if !fixed.contains(k) {
                                s.reset(k, v)?;
                            }
                        }
                    }
                }
                return Ok(ExecResult::tag("RESET"));
            }
            ast::Statement::Discard { .. } => {
                self.prepared.clear();
                return Ok(ExecResult::tag("DISCARD ALL"));
            }
            ast::Statement::Vacuum(_) => {
                if self.block.is_some() {
                    return Err(SqlError::new(
                        sqlstate::ACTIVE_SQL_TRANSACTION,
                        "VACUUM cannot run inside a transaction block",
                    ));
                }
                return Ok(ExecResult::tag("VACUUM"));
            }
            ast::Statement::Prepare {
                name,
                data_types,
                statement,
            } => {
                let sql = statement.to_string();
                let declared: Vec<Option<DataType>> = data_types
                    .iter()
                    .map(|t| crate::binder::convert_type(t).map(Some))
                    .collect::<Result<_>>()?;
                let key = crate::binder::ident_name(name);
                if self.prepared.contains_key(&key) {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_PREPARED_STATEMENT,
                        format!("prepared statement \"{key}\" already exists"),
                    ));
                }
                let p = self.prepare(&sql, &declared)?;
                self.prepared.insert(key, p);
                return Ok(ExecResult::tag("PREPARE"));
            }
            ast::Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let key = object_name(name)?;
                let p = self.prepared.get(&key).cloned().ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_PREPARED_STATEMENT,
                        format!("prepared statement \"{key}\" does not exist"),
                    )
                })?;
                let mut vals = Vec::new();
                for (i, e) in parameters.iter().enumerate() {
                    let view = CatalogView {
                        catalog: self.db.catalog(),
                        overlay: &self.overlay,
                    };
                    let mut b = Binder::new(view, vec![]);
                    let (x, t) = b.bind_expr(e, &Default::default())?;
                    let want = p.param_types.get(i).copied().unwrap_or(DataType::Text);
                    let x = b.coerce(x, t, want, "EXECUTE")?;
                    vals.push(x.eval(&[], &ExecContext::constant())?);
                }
                return self.execute_prepared(&p, &vals);
            }
            ast::Statement::Deallocate { name, .. } => {
                let key = crate::binder::ident_name(name);
                if key == "all" {
                    self.prepared.clear();
                } else if self.prepared.remove(&key).is_none() {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_PREPARED_STATEMENT,
                        format!("prepared statement \"{key}\" does not exist"),
                    ));
                }
                return Ok(ExecResult::tag("DEALLOCATE"));
            }
            _ => {}
        }
        let kind = Self::statement_kind(stmt);
        let autocommit = self.block.is_none();
        let isolation = match &self.block {
            Some(b) => b.isolation,
            None => self.default_isolation()?,
        };
        if let (Some(b), StmtKind::Ddl) = (&self.block, &kind) {
            if b.read_only {
                return Err(SqlError::new(
                    sqlstate::READ_ONLY_SQL_TRANSACTION,
                    "cannot execute DDL in a read-only transaction",
                ));
            }
        }
        // DDL takes this node's DDL lock and keeps it until the transaction ends.
        if matches!(kind, StmtKind::Ddl) && self.ddl_guard.is_none() {
            let lock = self.db.catalog().ddl_lock.clone();
            self.ddl_guard = Some(lock.lock_arc());
        }
        let (txn, txn_time) = match &mut self.block {
            Some(b) => {
                if b.txn.is_none() {
                    b.txn = Some(self.db.begin(b.isolation)?);
                    b.started_at = now_micros();
                } else {
                    b.txn
                        .as_ref()
                        .unwrap()
                        .new_statement()
                        .map_err(crate::error::from_txn)?;
                }
                b.fresh = false;
                (b.txn.clone().unwrap(), b.started_at)
            }
            None => (self.db.begin(isolation)?, now_micros()),
        };
        let read_only = self.block.as_ref().map(|b| b.read_only).unwrap_or(false);
        let (mem_limit, timeout) = {
            let settings = self.shared.settings.lock();
            (settings.query_memory_limit, settings.statement_timeout)
        };
        let interrupt = exec::Interrupt::new(self.cancel.clone(), timeout);
        let hooks: Arc<dyn SessionHooks> = self.shared.clone();
        let mut ctx = StmtCtx {
            db: &self.db,
            txn,
            autocommit,
            overlay: &mut self.overlay,
            hooks,
            mem_limit,
            interrupt,
            txn_time,
            stmt_time: now_micros(),
        };
        let mut written = Vec::new();
        let result = run_statement(&mut ctx, stmt, params, types, plan, read_only, &mut written);
        // The statement may have restarted its own transaction (autocommit only).
        let txn = ctx.txn;
        match result {
            Ok(r) => {
                if autocommit {
                    match self.commit_txn(&txn, &written) {
                        Ok(()) => self.release_ddl(true),
                        Err(e) => {
                            self.release_ddl(false);
                            return Err(e);
                        }
                    }
                } else if let Some(b) = &mut self.block {
                    for w in written {
                        if !b.written.contains(&w) {
                            b.written.push(w);
                        }
                    }
                }
                Ok(r)
            }
            Err(e) => {
                if autocommit {
                    let _ = txn.rollback();
                    self.release_ddl(false);
                }
                Err(e)
            }
        }
    }

    fn set(&mut self, set: &ast::Set) -> Result<ExecResult> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = object_name(variable)
                    .unwrap_or_else(|_| variable.to_string())
                    .to_lowercase();
                let name = if name == "reef" {
                    variable.to_string().to_lowercase()
                } else {
                    name
                };
                let name = if variable.0.len() == 2 {
                    variable.to_string().to_lowercase()
                } else {
                    name
                };
                let value = values
                    .iter()
                    .map(set_value_text)
                    .collect::<Vec<_>>()
                    .join(", ");
                let value = if value.eq_ignore_ascii_case("default") {
                    KNOWN_SETTINGS
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.to_string())
                        .unwrap_or(value)
                } else {
                    value
                };
                if name == "transaction_isolation" {
                    return self.set_transaction_isolation(&value);
                }
                self.shared.settings.lock().set(&name, &value)?;
                Ok(ExecResult::tag("SET"))
            }
            ast::Set::SetTimeZone { value, .. } => {
                let v = set_value_text(value);
                self.shared.settings.lock().set("timezone", &v)?;
                Ok(ExecResult::tag("SET"))
            }
            ast::Set::SetNames { charset_name, .. } => {
                self.shared
                    .settings
                    .lock()
                    .set("client_encoding", &charset_name.value)?;
                Ok(ExecResult::tag("SET"))
            }
            ast::Set::SetTransaction { modes, session, .. } => {
                for m in modes {
                    match m {
                        ast::TransactionMode::IsolationLevel(l) => {
                            let iso = isolation_from_ast(l)?;
                            let name = match iso {
                                IsolationLevel::ReadCommitted => "read committed",
                                IsolationLevel::RepeatableRead => "repeatable read",
                            };
                            if *session {
                                self.shared
                                    .settings
                                    .lock()
                                    .set("default_transaction_isolation", name)?;
                            } else {
                                self.set_transaction_isolation(name)?;
                            }
                        }
                        ast::TransactionMode::AccessMode(a) => {
                            if let Some(b) = &mut self.block {
                                b.read_only = matches!(a, ast::TransactionAccessMode::ReadOnly);
                            }
                        }
                    }
                }
                Ok(ExecResult::tag("SET"))
            }
            _ => Err(SqlError::unsupported(format!("{set} is not supported"))),
        }
    }

    fn set_transaction_isolation(&mut self, value: &str) -> Result<ExecResult> {
        let iso = parse_isolation_name(value)?;
        match &mut self.block {
            Some(b) => {
                if !b.fresh {
                    return Err(SqlError::new(
                        sqlstate::ACTIVE_SQL_TRANSACTION,
                        "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                    ));
                }
                b.isolation = iso;
            }
            None => {
                // PostgreSQL warns that it only applies inside a block.
            }
        }
        Ok(ExecResult::tag("SET"))
    }

    fn show(&mut self, variable: &[ast::Ident]) -> Result<ExecResult> {
        let name = variable
            .iter()
            .map(|i| i.value.clone())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let name = if variable.len() > 1 && !name.contains(' ') {
            name
        } else {
            name
        };
        let s = self.shared.settings.lock();
        if name == "all" {
            let mut names: Vec<&(&str, &str)> = KNOWN_SETTINGS.iter().collect();
            names.sort();
            let rows = names
                .iter()
                .map(|(k, _)| {
                    vec![
                        Value::Text(k.to_string()),
                        Value::Text(s.get(k).unwrap_or_default()),
                        Value::Text(String::new()),
                    ]
                })
                .collect();
            return Ok(ExecResult {
                copy: None,
                tag: "SHOW".into(),
                columns: Some(show_all_columns()),
                rows,
            });
        }
        let key = match name.as_str() {
            "transaction isolation level" => "transaction_isolation".to_string(),
            "time zone" => "timezone".to_string(),
            other => other.replace(' ', "_"),
        };
        let value = if key == "transaction_isolation" {
            match &self.block {
                Some(b) => match b.isolation {
                    IsolationLevel::ReadCommitted => "read committed".into(),
                    IsolationLevel::RepeatableRead => "repeatable read".into(),
                },
                None => s.get("default_transaction_isolation")?,
            }
        } else {
            s.get(&key)?
        };
        let col = match key.as_str() {
            "timezone" => "TimeZone".to_string(),
            "datestyle" => "DateStyle".to_string(),
            other => other.to_string(),
        };
        Ok(ExecResult {
            copy: None,
            tag: "SHOW".into(),
            columns: Some(vec![Column {
                name: col,
                data_type: DataType::Text,
            }]),
            rows: vec![vec![Value::Text(value)]],
        })
    }
}

fn set_value_text(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            ast::Value::Boolean(b) => {
                if *b {
                    "on".into()
                } else {
                    "off".into()
                }
            }
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => i.value.clone(),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => format!("-{}", set_value_text(expr)),
        other => other.to_string(),
    }
}

fn isolation_from_ast(l: &ast::TransactionIsolationLevel) -> Result<IsolationLevel> {
    match l {
        ast::TransactionIsolationLevel::ReadCommitted
        | ast::TransactionIsolationLevel::ReadUncommitted => Ok(IsolationLevel::ReadCommitted),
        ast::TransactionIsolationLevel::RepeatableRead
        | ast::TransactionIsolationLevel::Snapshot => Ok(IsolationLevel::RepeatableRead),
        ast::TransactionIsolationLevel::Serializable => Err(serializable_error()),
    }
}

fn columns_of(b: &BoundQuery) -> Vec<Column> {
    b.scope
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            data_type: if c.ty == DataType::Unknown {
                DataType::Text
            } else {
                c.ty
            },
        })
        .collect()
}

fn returning_columns(b: &Binder) -> Vec<Column> {
    b.returning_names
        .iter()
        .map(|(n, t)| Column {
            name: n.clone(),
            data_type: *t,
        })
        .collect()
}

/// Converts bound parameter values to the types the binder settled on.
fn convert_params(params: &[Value], types: &[DataType]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        let v = params.get(i).cloned().unwrap_or(Value::Null);
        out.push(match (&v, t) {
            (Value::Null, _) => Value::Null,
            (_, DataType::Unknown) => v,
            (Value::Text(s), t) if !t.is_string() => crate::types::text::parse_text(s, t)?,
            (v, t) if v.data_type() == t.base() => v.clone(),
            (v, t) => crate::types::cast::cast(v.clone(), t)?,
        });
    }
    Ok(out)
}

/// Runs one data or schema statement in a transaction.
/// Binds and optimizes a statement with `bind`, or takes the plan `slot` holds if the
/// committed catalog is still the one it was bound against (see [`PlanSlot`]).
fn plan_statement(
    ctx: &StmtCtx,
    slot: Option<&PlanSlot>,
    declared: &[DataType],
    bind: impl FnOnce(&mut Binder) -> Result<(Plan, Vec<Column>)>,
) -> Result<Arc<Planned>> {
    let previous = slot.and_then(|s| s.0.lock().clone());
    // A transaction's own schema changes are no committed catalog's.
    let slot = slot.filter(|_| ctx.overlay.changes.is_empty());
    let generation = ctx.db.catalog().generation();
    if let Some(planned) = previous
        .as_ref()
        .filter(|p| slot.is_some() && p.generation == generation)
    {
        return Ok(planned.clone());
    }
    let mut binder = Binder::new(ctx.view(), declared.to_vec());
    let (plan, columns) = bind(&mut binder)?;
    // The client was told the result's columns when it described the statement: rows of
    // another shape would not match them (PostgreSQL refuses the same way).
    if previous.is_some_and(|p| p.columns != columns) {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "cached plan must not change result type",
        )
        .with_hint("Prepare the statement again."));
    }
    let planned = Arc::new(Planned {
        generation,
        plan: optimizer::optimize(plan)?,
        columns,
        params: binder.params,
        written: binder.written_tables,
    });
    if let Some(slot) = slot.filter(|_| !binder.volatile) {
        *slot.0.lock() = Some(planned.clone());
    }
    Ok(planned)
}

fn run_statement(
    ctx: &mut StmtCtx,
    stmt: &ast::Statement,
    params: &[Value],
    declared: &[DataType],
    slot: Option<&PlanSlot>,
    read_only: bool,
    written: &mut Vec<(u32, u64)>,
) -> Result<ExecResult> {
    use ast::Statement as S;
    match stmt {
        S::Query(q) => {
            let planned = plan_statement(ctx, slot, declared, |binder| {
                let b = binder.bind_query(q)?;
                let cols = columns_of(&b);
                Ok((b.plan, cols))
            })?;
            let params = convert_params(params, &planned.params)?;
            let ectx = ctx.exec_ctx(params);
            let mut rows = Vec::new();
            for r in exec::build(&planned.plan, &ectx)? {
                let r = r?;
                ectx.mem.charge(exec::row_bytes(&r))?;
                rows.push(r);
            }
            Ok(ExecResult {
                copy: None,
                tag: format!("SELECT {}", rows.len()),
                columns: Some(planned.columns.clone()),
                rows,
            })
        }
        S::Insert(_) | S::Update(_) | S::Delete(_) => {
            if read_only {
                return Err(SqlError::new(
                    sqlstate::READ_ONLY_SQL_TRANSACTION,
                    "cannot execute this statement in a read-only transaction",
                ));
            }
            let planned = plan_statement(ctx, slot, declared, |binder| {
                let plan = match stmt {
                    S::Insert(i) => binder.bind_insert(i)?,
                    S::Update(u) => binder.bind_update(u)?,
                    S::Delete(d) => binder.bind_delete(d)?,
                    _ => unreachable!(),
                };
                Ok((plan, returning_columns(binder)))
            })?;
            let tables = &planned.written;
            if let Some(fenced) = tables.iter().find(|t| {
                !ctx.overlay.changes.contains_key(&t.id)
                    && crate::fence::active_fence(t, ctx.txn.read_ts()).is_some()
            }) {
                // A schema change holds writers of the table off: wait for it, then plan
                // again in a transaction that sees its outcome.
                let fence = fenced.fence.expect("checked above");
                ctx.db
                    .wait_for_fence(fenced.id, &fenced.name, fence, std::time::Instant::now())?;
                if !ctx.autocommit {
                    return Err(SqlError::new(
                        sqlstate::SERIALIZATION_FAILURE,
                        format!(
                            "could not serialize access: table \"{}\" was altered while this transaction ran",
                            fenced.name
                        ),
                    )
                    .with_hint("The transaction might succeed if retried."));
                }
                let fresh = ctx.db.begin(ctx.txn.isolation())?;
                let _ = std::mem::replace(&mut ctx.txn, fresh).rollback();
                return run_statement(ctx, stmt, params, declared, slot, read_only, written);
            }
            for t in tables {
                written.push((t.id, t.write_version));
            }
            let params = convert_params(params, &planned.params)?;
            let ectx = ctx.exec_ctx(params);
            let res = exec::execute_dml(&planned.plan, &ectx)?;
            let (tag, has_ret) = match &planned.plan {
                Plan::Insert { returning, .. } => {
                    (format!("INSERT 0 {}", res.count), returning.is_some())
                }
                Plan::Update { returning, .. } => {
                    (format!("UPDATE {}", res.count), returning.is_some())
                }
                Plan::Delete { returning, .. } => {
                    (format!("DELETE {}", res.count), returning.is_some())
                }
                _ => unreachable!(),
            };
            Ok(ExecResult {
                copy: None,
                tag,
                columns: if has_ret {
                    Some(planned.columns.clone())
                } else {
                    None
                },
                rows: res.rows,
            })
        }
        S::Explain {
            statement, analyze, ..
        } => {
            if *analyze {
                return Err(SqlError::unsupported(
                    "EXPLAIN ANALYZE is not supported yet",
                ));
            }
            let plan = {
                let mut binder = Binder::new(ctx.view(), declared.to_vec());
                match &**statement {
                    S::Query(q) => binder.bind_query(q)?.plan,
                    S::Insert(i) => binder.bind_insert(i)?,
                    S::Update(u) => binder.bind_update(u)?,
                    S::Delete(d) => binder.bind_delete(d)?,
                    _ => return Err(SqlError::unsupported("EXPLAIN supports queries and DML")),
                }
            };
            let plan = optimizer::optimize(plan)?;
            let rows = plan
                .explain()
                .into_iter()
                .map(|l| vec![Value::Text(l)])
                .collect();
            Ok(ExecResult {
                copy: None,
                tag: "EXPLAIN".into(),
                columns: Some(vec![Column {
                    name: "QUERY PLAN".into(),
                    data_type: DataType::Text,
                }]),
                rows,
            })
        }
        S::Analyze(a) => {
            if let Some(t) = &a.table_name {
                let name = object_name(t)?;
                ctx.view().table(&name)?;
            }
            Ok(ExecResult::tag("ANALYZE"))
        }
        S::CreateTable(ct) => ddl::create_table(ctx, ct),
        S::CreateIndex(ci) => ddl::create_index(ctx, ci),
        S::CreateView(cv) => ddl::create_view(ctx, cv),
        S::CreateSequence {
            if_not_exists,
            name,
            sequence_options,
            ..
        } => ddl::create_sequence(ctx, name, *if_not_exists, sequence_options),
        S::AlterTable(at) => ddl::alter_table(ctx, at),
        S::CreateRole(cr) => crate::role::create(ctx, cr),
        S::AlterRole { name, operation } => crate::role::alter(ctx, name, operation),
        S::Drop {
            object_type: ast::ObjectType::Role | ast::ObjectType::User,
            if_exists,
            names,
            ..
        } => crate::role::drop(ctx, *if_exists, names),
        S::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => ddl::drop(ctx, *object_type, *if_exists, names, *cascade),
        S::Truncate(t) => ddl::truncate(ctx, t),
        S::CreateSchema { .. } | S::CreateDatabase { .. } => Err(SqlError::unsupported(
            "CREATE SCHEMA/DATABASE is not supported yet",
        )),
        S::Copy { .. } => Err(SqlError::unsupported("COPY is not supported yet")),
        other => Err(SqlError::unsupported(format!(
            "statement not supported: {}",
            first_words(&other.to_string())
        ))),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The columns of `SHOW ALL`, as described and as returned.
fn show_all_columns() -> Vec<Column> {
    ["name", "setting", "description"]
        .into_iter()
        .map(|name| Column {
            name: name.into(),
            data_type: DataType::Text,
        })
        .collect()
}

#[cfg(test)]
mod create_user_tests {
    use super::create_user_as_role;

    #[test]
    fn create_user_becomes_create_role_login_with_literals_untouched() {
        let cases = [
            ("CREATE USER bob", "CREATE ROLE bob LOGIN"),
            (
                "create user bob with password 'x'';DROP TABLE t;--'",
                "create ROLE bob with LOGIN password 'x'';DROP TABLE t;--'",
            ),
            (
                "CREATE USER a; INSERT INTO t VALUES ('O''Brien', E'a\\\\b')",
                "CREATE ROLE a LOGIN; INSERT INTO t VALUES ('O''Brien', E'a\\\\b')",
            ),
            (
                "CREATE USER IF NOT EXISTS \"Ünï\" NOLOGIN",
                "CREATE ROLE IF NOT EXISTS \"Ünï\" NOLOGIN",
            ),
            (
                "CREATE USER login PASSWORD 'p'",
                "CREATE ROLE login LOGIN PASSWORD 'p'",
            ),
            (
                "SELECT 1;\nCREATE USER x;CREATE USER y WITH SUPERUSER",
                "SELECT 1;\nCREATE ROLE x LOGIN;CREATE ROLE y WITH LOGIN SUPERUSER",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(create_user_as_role(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(
            create_user_as_role("CREATE USER MAPPING FOR bob SERVER s"),
            None
        );
        assert_eq!(create_user_as_role("SELECT 'create user'"), None);
    }
}
