//! The executor: runs a plan as a tree of pull-based row iterators.
//!
//! Scans, filters, projections, limits and the probe side of hash joins
//! stream row by row; sorts, hash tables and aggregates hold what they must
//! and charge it to the query's [`MemTracker`], which fails the query with
//! SQLSTATE 53200 past the session's memory limit instead of letting it
//! take the node down.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reef_txn::Transaction;

use crate::catalog::{index_prefix, IndexDesc, TableDesc};
use crate::codec;
use crate::error::{sqlstate, Result, SqlError};
use crate::expr::{Expr, SessionFunc, SubPlan, TimeFunc};
use crate::plan::{Access, AggCall, AggFunc, JoinKind, Plan, SetOpKind, SortKey};
use crate::pushdown;
use crate::types::ops::{self, BinaryOp};
use crate::types::{cast, DataType, Decimal, Interval, Value};

/// A row of values.
pub type Row = Vec<Value>;

/// A stream of rows.
pub type RowIter<'a> = Box<dyn Iterator<Item = Result<Row>> + 'a>;

/// Counts the bytes a query holds and refuses to go past a limit.
#[derive(Debug)]
pub struct MemTracker {
    used: AtomicUsize,
    limit: usize,
}

impl MemTracker {
    /// A tracker with a limit in bytes.
    pub fn new(limit: usize) -> Self {
        MemTracker {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Charges `bytes`; errors with 53200 past the limit.
    pub fn charge(&self, bytes: usize) -> Result<()> {
        let now = self.used.fetch_add(bytes, AtomicOrdering::Relaxed) + bytes;
        if now > self.limit {
            return Err(SqlError::new(
                sqlstate::OUT_OF_MEMORY,
                format!("query exceeded its memory limit of {} bytes", self.limit),
            )
            .with_hint("Raise the limit with SET reef.query_memory_limit, or make the query hold fewer rows."));
        }
        Ok(())
    }

    /// Bytes charged so far.
    pub fn used(&self) -> usize {
        self.used.load(AtomicOrdering::Relaxed)
    }
}

/// Stops a running statement when its client cancels it (a CancelRequest) or its
/// `statement_timeout` passes. Scans, joins, series and sleeps check it as they go.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    cancel: Option<Arc<AtomicBool>>,
    deadline: Option<Instant>,
}

impl Interrupt {
    /// An interrupt raised by `cancel` becoming true or, with a timeout, by the clock.
    pub fn new(cancel: Arc<AtomicBool>, timeout: Option<Duration>) -> Self {
        Interrupt {
            cancel: Some(cancel),
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    /// Fails with SQLSTATE 57014 once the statement is cancelled or past its timeout.
    pub fn check(&self) -> Result<()> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(AtomicOrdering::Relaxed))
        {
            return Err(SqlError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to user request",
            ));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SqlError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to statement timeout",
            ));
        }
        Ok(())
    }

    /// Waits for `d`, failing early if the statement is interrupted.
    pub fn sleep(&self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }
}

/// An estimate of a row's heap footprint.
pub fn row_bytes(row: &[Value]) -> usize {
    let mut n = 24 + row.len() * std::mem::size_of::<Value>();
    for v in row {
        match v {
            Value::Text(s) => n += s.len(),
            Value::Bytea(b) => n += b.len(),
            _ => {}
        }
    }
    n
}

/// The hooks into the session that expressions need.
pub trait SessionHooks: Send + Sync {
    /// `nextval`.
    fn nextval(&self, seq: u32) -> Result<i64>;
    /// `currval`.
    fn currval(&self, seq: u32) -> Result<i64>;
    /// `setval(seq, value, is_called)`.
    fn setval(&self, seq: u32, value: i64, is_called: bool) -> Result<i64>;
    /// `lastval`.
    fn lastval(&self) -> Result<i64>;
    /// `current_setting(name)`.
    fn current_setting(&self, name: &str) -> Result<String>;
    /// A fresh row id for a table without a declared primary key.
    fn next_rowid(&self, table: u32) -> Result<i64>;
}

/// Everything a running statement needs.
pub struct ExecContext {
    /// The transaction, absent only for constant folding.
    pub txn: Option<Transaction>,
    /// Bound parameter values.
    pub params: Vec<Value>,
    outer: Vec<Row>,
    hooks: Option<Arc<dyn SessionHooks>>,
    /// The transaction's start time (microseconds since the Unix epoch).
    pub txn_time: i64,
    /// The statement's start time.
    pub stmt_time: i64,
    cache: Arc<Mutex<HashMap<usize, Arc<Vec<Row>>>>>,
    /// The statement's memory budget.
    pub mem: Arc<MemTracker>,
    /// Cancellation and timeout.
    pub interrupt: Interrupt,
}

impl ExecContext {
    /// A context for a statement.
    pub fn new(
        txn: Transaction,
        params: Vec<Value>,
        hooks: Arc<dyn SessionHooks>,
        txn_time: i64,
        stmt_time: i64,
        mem_limit: usize,
        interrupt: Interrupt,
    ) -> Self {
        ExecContext {
            txn: Some(txn),
            params,
            outer: Vec::new(),
            hooks: Some(hooks),
            txn_time,
            stmt_time,
            cache: Arc::new(Mutex::new(HashMap::new())),
            mem: Arc::new(MemTracker::new(mem_limit)),
            interrupt,
        }
    }

    /// A context for folding constants at bind time.
    pub fn constant() -> Self {
        let now = chrono::Utc::now().timestamp_micros();
        ExecContext {
            txn: None,
            params: Vec::new(),
            outer: Vec::new(),
            hooks: None,
            txn_time: now,
            stmt_time: now,
            cache: Arc::new(Mutex::new(HashMap::new())),
            mem: Arc::new(MemTracker::new(usize::MAX)),
            interrupt: Interrupt::default(),
        }
    }

    fn txn(&self) -> Result<&Transaction> {
        self.txn
            .as_ref()
            .ok_or_else(|| SqlError::internal("no transaction for table access"))
    }

    fn hooks(&self) -> Result<&Arc<dyn SessionHooks>> {
        self.hooks
            .as_ref()
            .ok_or_else(|| SqlError::internal("no session for this function"))
    }

    /// A column of an enclosing query's current row.
    pub fn outer_value(&self, depth: usize, index: usize) -> Result<Value> {
        let n = self.outer.len();
        if depth == 0 || depth > n {
            return Err(SqlError::internal("outer reference out of scope"));
        }
        Ok(self.outer[n - depth]
            .get(index)
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Reads a clock.
    pub fn time(&self, f: TimeFunc) -> Value {
        match f {
            TimeFunc::TxnTimestamp => Value::TimestampTz(self.txn_time),
            TimeFunc::StatementTimestamp => Value::TimestampTz(self.stmt_time),
            TimeFunc::ClockTimestamp => Value::TimestampTz(chrono::Utc::now().timestamp_micros()),
            TimeFunc::CurrentDate => Value::Date(self.txn_time.div_euclid(86_400_000_000) as i32),
            TimeFunc::LocalTimestamp => Value::Timestamp(self.txn_time),
        }
    }

    /// Evaluates a session function.
    pub fn session_func(&self, f: &SessionFunc, args: &[Value]) -> Result<Value> {
        let h = self.hooks()?;
        let int = |v: &Value| -> Result<i64> {
            match cast::cast(v.clone(), &DataType::Int64)? {
                Value::Int64(i) => Ok(i),
                _ => Err(SqlError::new(
                    sqlstate::NULL_VALUE_NOT_ALLOWED,
                    "argument must not be null",
                )),
            }
        };
        Ok(match f {
            SessionFunc::Nextval(s) => Value::Int64(h.nextval(*s)?),
            SessionFunc::Currval(s) => Value::Int64(h.currval(*s)?),
            SessionFunc::Setval(s) => {
                let v = int(args.first().unwrap_or(&Value::Null))?;
                let called = match args.get(1) {
                    Some(Value::Bool(b)) => *b,
                    _ => true,
                };
                Value::Int64(h.setval(*s, v, called)?)
            }
            SessionFunc::Lastval => Value::Int64(h.lastval()?),
            SessionFunc::CurrentSetting => match args.first() {
                Some(Value::Text(n)) => Value::Text(h.current_setting(n)?),
                _ => Value::Null,
            },
            SessionFunc::Sleep => {
                if let Some(Value::Float64(secs)) = args.first() {
                    if secs.is_finite() && *secs > 0.0 {
                        self.interrupt
                            .sleep(Duration::from_secs_f64(secs.min(1e7)))?;
                    }
                }
                Value::Null
            }
        })
    }

    /// Runs a subquery for the current row: uncorrelated ones run once per
    /// statement and are cached.
    pub fn run_subquery(&self, sub: &SubPlan, row: &[Value]) -> Result<Arc<Vec<Row>>> {
        if !sub.correlated {
            if let Some(rows) = self.cache.lock().get(&sub.id).cloned() {
                return Ok(rows);
            }
        }
        let child = ExecContext {
            txn: self.txn.clone(),
            params: self.params.clone(),
            outer: {
                let mut o = self.outer.clone();
                o.push(match &sub.remap {
                    None => row.to_vec(),
                    Some(map) => map
                        .iter()
                        .map(|m| m.and_then(|i| row.get(i).cloned()).unwrap_or(Value::Null))
                        .collect(),
                });
                o
            },
            hooks: self.hooks.clone(),
            txn_time: self.txn_time,
            stmt_time: self.stmt_time,
            cache: if sub.correlated {
                Arc::new(Mutex::new(HashMap::new()))
            } else {
                self.cache.clone()
            },
            mem: self.mem.clone(),
            interrupt: self.interrupt.clone(),
        };
        let mut rows = Vec::new();
        for r in build(&sub.plan, &child)? {
            let r = r?;
            child.mem.charge(row_bytes(&r))?;
            rows.push(r);
        }
        let rows = Arc::new(rows);
        if !sub.correlated {
            self.cache.lock().insert(sub.id, rows.clone());
        }
        Ok(rows)
    }
}

/// Converts transaction errors into SQL errors with their SQLSTATE.
pub fn txn_error(e: reef_txn::TxnError) -> SqlError {
    crate::error::from_txn(e)
}

// ----- keys -----

/// Encodes a table row's primary key.
pub fn row_key(table: &TableDesc, row: &[Value]) -> Vec<u8> {
    let mut k = index_prefix(table.id, 0);
    for id in &table.primary_key {
        let pos = table.column_pos(*id).expect("key column exists");
        codec::encode_key_value(&mut k, &row[pos]);
    }
    k
}

/// Encodes a row's non-key columns.
pub fn row_value(table: &TableDesc, row: &[Value]) -> Vec<u8> {
    let mut cols: Vec<(u32, &Value)> = Vec::with_capacity(table.columns.len());
    for (i, c) in table.columns.iter().enumerate() {
        if !table.primary_key.contains(&c.id) {
            cols.push((c.id, &row[i]));
        }
    }
    let mut buf = Vec::with_capacity(64);
    codec::encode_row(&mut buf, &cols);
    buf
}

/// The key and value of a secondary index entry for a row. A unique index
/// entry whose columns are all non-NULL is keyed by the columns alone (so
/// two writers of the same value conflict) and holds the primary key as its
/// value; any other entry appends the primary key to the key.
pub fn index_entry(table: &TableDesc, idx: &IndexDesc, row: &[Value]) -> (Vec<u8>, Vec<u8>) {
    let mut k = index_prefix(table.id, idx.id);
    let mut has_null = false;
    for id in &idx.columns {
        let pos = table.column_pos(*id).expect("index column exists");
        has_null |= row[pos].is_null();
        codec::encode_key_value(&mut k, &row[pos]);
    }
    let mut pk = Vec::new();
    for id in &table.primary_key {
        let pos = table.column_pos(*id).expect("key column exists");
        codec::encode_key_value(&mut pk, &row[pos]);
    }
    if idx.unique && !has_null {
        (k, pk)
    } else {
        k.extend_from_slice(&pk);
        (k, Vec::new())
    }
}

/// Decodes a stored row into a full-width row, decoding only `needed`
/// columns (the key columns always).
pub fn decode_table_row(
    table: &TableDesc,
    key: &[u8],
    value: &[u8],
    needed: &[bool],
) -> Result<Row> {
    let mut row = vec![Value::Null; table.columns.len()];
    let mut rest = &key[9..];
    for id in &table.primary_key {
        let pos = table.column_pos(*id).expect("key column exists");
        row[pos] = codec::decode_key_value(&mut rest, &table.columns[pos].ty)?;
    }
    let wanted: Vec<(u32, DataType)> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            needed.get(*i).copied().unwrap_or(true) && !table.primary_key.contains(&c.id)
        })
        .map(|(_, c)| (c.id, c.ty))
        .collect();
    if !wanted.is_empty() {
        let mut vals = Vec::with_capacity(wanted.len());
        codec::decode_row(value, &wanted, &mut vals)?;
        for ((id, _), v) in wanted.iter().zip(vals) {
            let pos = table.column_pos(*id).expect("column exists");
            row[pos] = v;
        }
    }
    Ok(row)
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

fn key_value_for(col_ty: DataType, v: Value) -> Result<Value> {
    if v.is_null()
        || v.data_type() == col_ty.base()
        || (col_ty.is_integer() && v.data_type().is_integer())
    {
        return Ok(v);
    }
    cast::cast(v, &col_ty)
}

// ----- building iterators -----

/// Builds the iterator for a query plan.
pub fn build<'a>(plan: &'a Plan, ctx: &'a ExecContext) -> Result<RowIter<'a>> {
    match plan {
        Plan::Scan {
            table,
            needed,
            filter,
            access,
            limit,
        } => {
            let rows = scan_table(table, needed, filter.as_ref(), access, ctx, *limit)?;
            let filtered: RowIter<'a> = match filter {
                Some(f) => Box::new(rows.filter_map(move |r| match r {
                    Ok(row) => match f.eval_pred(&row, ctx) {
                        Ok(true) => Some(Ok(row)),
                        Ok(false) => None,
                        Err(e) => Some(Err(e)),
                    },
                    Err(e) => Some(Err(e)),
                })),
                None => rows,
            };
            Ok(filtered)
        }
        Plan::Values { rows, .. } => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let mut row = Vec::with_capacity(r.len());
                for e in r {
                    row.push(e.eval(&[], ctx)?);
                }
                out.push(Ok(row));
            }
            Ok(Box::new(out.into_iter()))
        }
        Plan::GenerateSeries { args, ty } => {
            let series = generate_series(args, *ty, ctx)?;
            Ok(Box::new(series.map(move |r| {
                ctx.interrupt.check()?;
                r
            })))
        }
        Plan::Filter { input, predicate } => {
            let input = build(input, ctx)?;
            Ok(Box::new(input.filter_map(move |r| match r {
                Ok(row) => match predicate.eval_pred(&row, ctx) {
                    Ok(true) => Some(Ok(row)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                },
                Err(e) => Some(Err(e)),
            })))
        }
        Plan::Project { input, exprs } => {
            let input = build(input, ctx)?;
            Ok(Box::new(input.map(move |r| {
                let row = r?;
                let mut out = Vec::with_capacity(exprs.len());
                for e in exprs {
                    out.push(match e {
                        Expr::Column(i) => row[*i].clone(),
                        e => e.eval(&row, ctx)?,
                    });
                }
                Ok(out)
            })))
        }
        Plan::ProjectSet { input, srfs } => {
            let input = build(input, ctx)?;
            Ok(Box::new(input.flat_map(move |r| {
                let expand = || -> Result<Vec<Row>> {
                    let row = r?;
                    let mut lists = Vec::with_capacity(srfs.len());
                    for e in srfs {
                        lists.push(match e.eval(&row, ctx)? {
                            Value::Array(items) => items,
                            _ => Vec::new(),
                        });
                    }
                    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
                    Ok((0..n)
                        .map(|i| {
                            let mut out = row.clone();
                            out.extend(
                                lists
                                    .iter()
                                    .map(|l| l.get(i).cloned().unwrap_or(Value::Null)),
                            );
                            out
                        })
                        .collect())
                };
                match expand() {
                    Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                }
            })))
        }
        Plan::Window { input, calls } => {
            let mut rows: Vec<Row> = build(input, ctx)?.collect::<Result<_>>()?;
            for (parts, keys) in calls {
                // Sort row positions by (partition, order); number each partition from 1.
                let mut keyed = Vec::with_capacity(rows.len());
                for (i, row) in rows.iter().enumerate() {
                    let mut k = Vec::with_capacity(parts.len() + keys.len());
                    for e in parts {
                        k.push(e.eval(row, ctx)?);
                    }
                    for key in keys {
                        k.push(key.expr.eval(row, ctx)?);
                    }
                    keyed.push((k, i));
                }
                let all_keys: Vec<SortKey> = parts
                    .iter()
                    .map(|e| SortKey {
                        expr: e.clone(),
                        desc: false,
                        nulls_first: false,
                    })
                    .chain(keys.iter().cloned())
                    .collect();
                keyed.sort_by(|a, b| compare_keys(&a.0, &b.0, &all_keys));
                let mut numbers = vec![0i64; rows.len()];
                let mut n = 0;
                for (j, (k, i)) in keyed.iter().enumerate() {
                    let np = parts.len();
                    let same = j > 0
                        && compare_keys(&keyed[j - 1].0[..np], &k[..np], &all_keys[..np])
                            == Ordering::Equal;
                    n = if same { n + 1 } else { 1 };
                    numbers[*i] = n;
                }
                for (row, n) in rows.iter_mut().zip(numbers) {
                    row.push(Value::Int64(n));
                }
            }
            Ok(Box::new(rows.into_iter().map(Ok)))
        }
        Plan::Aggregate {
            input,
            group_by,
            aggs,
        } => aggregate(build(input, ctx)?, group_by, aggs, ctx),
        Plan::Sort { input, keys } => sort(build(input, ctx)?, keys, ctx),
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let limit = match limit {
                Some(e) => match e.eval(&[], ctx)? {
                    Value::Null => None,
                    v => Some(nonneg(v, "LIMIT")?),
                },
                None => None,
            };
            let offset = match offset {
                Some(e) => match e.eval(&[], ctx)? {
                    Value::Null => 0,
                    v => nonneg(v, "OFFSET")?,
                },
                None => 0,
            };
            let input = build(input, ctx)?;
            let it = input.skip(offset as usize);
            Ok(match limit {
                Some(l) => Box::new(it.take(l as usize)),
                None => Box::new(it),
            })
        }
        Plan::Distinct { input, on } => {
            let input = build(input, ctx)?;
            let mut seen: std::collections::HashSet<KeyRow> = std::collections::HashSet::new();
            let mem = ctx.mem.clone();
            Ok(Box::new(input.filter_map(move |r| {
                let row = match r {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                };
                let key = match on {
                    None => row.clone(),
                    Some(exprs) => {
                        let mut k = Vec::new();
                        for e in exprs {
                            match e.eval(&row, ctx) {
                                Ok(v) => k.push(v),
                                Err(e) => return Some(Err(e)),
                            }
                        }
                        k
                    }
                };
                if let Err(e) = mem.charge(row_bytes(&key)) {
                    return Some(Err(e));
                }
                if seen.insert(KeyRow(key)) {
                    Some(Ok(row))
                } else {
                    None
                }
            })))
        }
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } => join(left, right, *kind, equi, on.as_ref(), *widths, ctx),
        Plan::SetOp {
            kind,
            all,
            left,
            right,
        } => set_op(*kind, *all, build(left, ctx)?, build(right, ctx)?, ctx),
        Plan::Insert { .. } | Plan::Update { .. } | Plan::Delete { .. } => {
            Err(SqlError::internal("DML plans run through execute_dml"))
        }
    }
}

fn nonneg(v: Value, what: &str) -> Result<u64> {
    match cast::cast(v, &DataType::Int64)? {
        Value::Int64(n) if n >= 0 => Ok(n as u64),
        _ => Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("{what} must not be negative"),
        )),
    }
}

/// Encodes the primary key of `table` from values for its leading key columns; None when one
/// of them is NULL (no row has that key).
fn primary_key(table: &TableDesc, vals: &[Expr], ctx: &ExecContext) -> Result<Option<Vec<u8>>> {
    let mut key = index_prefix(table.id, 0);
    for (e, id) in vals.iter().zip(&table.primary_key) {
        let pos = table.column_pos(*id).unwrap();
        let v = key_value_for(table.columns[pos].ty, e.eval(&[], ctx)?)?;
        if v.is_null() {
            return Ok(None);
        }
        codec::encode_key_value(&mut key, &v);
    }
    Ok(Some(key))
}

/// Reads and decodes the row stored under a primary key, if there is one.
fn read_row(
    table: &TableDesc,
    key: &[u8],
    needed: &[bool],
    ctx: &ExecContext,
) -> Result<Option<Row>> {
    match ctx.txn()?.get(key).map_err(txn_error)? {
        Some(value) => Ok(Some(decode_table_row(table, key, &value, needed)?)),
        None => Ok(None),
    }
}

fn scan_table<'a>(
    table: &'a Arc<TableDesc>,
    needed: &'a [bool],
    filter: Option<&Expr>,
    access: &'a Access,
    ctx: &'a ExecContext,
    limit: Option<u64>,
) -> Result<RowIter<'a>> {
    let txn = ctx.txn()?;
    // Rows of the table itself: the filter and the needed columns travel to where they are
    // stored (see `pushdown`); the caller filters again.
    let scan_rows =
        |start: &[u8], end: &[u8]| match pushdown::program(table, needed, filter, &ctx.params) {
            Some(program) => txn.scan_filtered(start, end, program.into()),
            None => txn.scan(start, end),
        };
    match access {
        Access::PointGet(vals) => {
            let row = match primary_key(table, vals, ctx)? {
                Some(key) => read_row(table, &key, needed, ctx)?,
                None => None,
            };
            Ok(Box::new(row.into_iter().map(Ok)))
        }
        Access::PointGets(vals) => {
            let mut keys = Vec::with_capacity(vals.len());
            for e in vals {
                keys.extend(primary_key(table, std::slice::from_ref(e), ctx)?);
            }
            keys.sort_unstable();
            keys.dedup();
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                ctx.interrupt.check()?;
                rows.extend(read_row(table, &key, needed, ctx)?);
            }
            Ok(Box::new(rows.into_iter().map(Ok)))
        }
        Access::Full => {
            let prefix = index_prefix(table.id, 0);
            let end = prefix_end(&prefix);
            let scanner = scan_rows(&prefix, &end).map_err(txn_error)?;
            let it = scanner.map(move |kv| {
                ctx.interrupt.check()?;
                let (k, v) = kv.map_err(txn_error)?;
                decode_table_row(table, &k, &v, needed)
            });
            Ok(match limit {
                Some(n) => Box::new(it.take(n as usize)),
                None => Box::new(it),
            })
        }
        Access::Range {
            index,
            eq,
            lower,
            upper,
        } => {
            let index_id = index.as_ref().map(|i| i.id).unwrap_or(0);
            let key_cols: Vec<usize> = match index {
                Some(i) => i
                    .columns
                    .iter()
                    .map(|c| table.column_pos(*c).unwrap())
                    .collect(),
                None => table.pk_positions(),
            };
            let mut prefix = index_prefix(table.id, index_id);
            for (k, e) in eq.iter().enumerate() {
                let v = key_value_for(table.columns[key_cols[k]].ty, e.eval(&[], ctx)?)?;
                if v.is_null() {
                    return Ok(Box::new(std::iter::empty()));
                }
                codec::encode_key_value(&mut prefix, &v);
            }
            let next_ty = key_cols.get(eq.len()).map(|p| table.columns[*p].ty);
            let mut start = prefix.clone();
            let mut end = prefix_end(&prefix);
            if let (Some((e, inclusive)), Some(ty)) = (lower, next_ty) {
                let v = key_value_for(ty, e.eval(&[], ctx)?)?;
                if v.is_null() {
                    return Ok(Box::new(std::iter::empty()));
                }
                let mut k = prefix.clone();
                codec::encode_key_value(&mut k, &v);
                start = if *inclusive { k } else { prefix_end(&k) };
            } else if next_ty.is_some() {
                // Skip NULLs, which sort first and never satisfy a range.
                let mut k = prefix.clone();
                codec::encode_key_value(&mut k, &Value::Null);
                if upper.is_some() {
                    start = prefix_end(&k);
                }
            }
            if let (Some((e, inclusive)), Some(ty)) = (upper, next_ty) {
                let v = key_value_for(ty, e.eval(&[], ctx)?)?;
                if v.is_null() {
                    return Ok(Box::new(std::iter::empty()));
                }
                let mut k = prefix.clone();
                codec::encode_key_value(&mut k, &v);
                end = if *inclusive { prefix_end(&k) } else { k };
            }
            if start >= end {
                return Ok(Box::new(std::iter::empty()));
            }
            let scanner = match index {
                None => scan_rows(&start, &end),
                Some(_) => txn.scan(&start, &end),
            }
            .map_err(txn_error)?;
            match index {
                None => {
                    let it = scanner.map(move |kv| {
                        ctx.interrupt.check()?;
                        let (k, v) = kv.map_err(txn_error)?;
                        decode_table_row(table, &k, &v, needed)
                    });
                    Ok(match limit {
                        Some(n) => Box::new(it.take(n as usize)),
                        None => Box::new(it),
                    })
                }
                Some(idx) => {
                    let nidx = idx.columns.len();
                    let it = scanner.filter_map(move |kv| {
                        let r = (|| -> Result<Option<Row>> {
                            ctx.interrupt.check()?;
                            let (k, v) = kv.map_err(txn_error)?;
                            let pk_bytes: Vec<u8> = if v.is_empty() {
                                // Skip the index columns to reach the primary key.
                                let mut rest = &k[9..];
                                for c in idx.columns.iter().take(nidx) {
                                    let pos = table.column_pos(*c).unwrap();
                                    codec::decode_key_value(&mut rest, &table.columns[pos].ty)?;
                                }
                                rest.to_vec()
                            } else {
                                v
                            };
                            let mut key = index_prefix(table.id, 0);
                            key.extend_from_slice(&pk_bytes);
                            match read_row(table, &key, needed, ctx)? {
                                Some(row) => Ok(Some(row)),
                                None => Err(SqlError::internal(format!(
                                    "index \"{}\" points at a missing row",
                                    idx.name
                                ))),
                            }
                        })();
                        r.transpose()
                    });
                    Ok(match limit {
                        Some(n) => Box::new(it.take(n as usize)),
                        None => Box::new(it),
                    })
                }
            }
        }
    }
}

fn generate_series<'a>(
    args: &'a [Expr],
    ty: DataType,
    ctx: &'a ExecContext,
) -> Result<RowIter<'a>> {
    let mut vals = Vec::new();
    for a in args {
        vals.push(a.eval(&[], ctx)?);
    }
    if vals.iter().any(|v| v.is_null()) {
        return Ok(Box::new(std::iter::empty()));
    }
    match ty {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let get = |v: &Value| -> Result<i64> {
                match cast::cast(v.clone(), &DataType::Int64)? {
                    Value::Int64(i) => Ok(i),
                    _ => Err(SqlError::internal("generate_series argument")),
                }
            };
            let start = get(&vals[0])?;
            let stop = get(&vals[1])?;
            let step = if vals.len() > 2 { get(&vals[2])? } else { 1 };
            if step == 0 {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            let mut cur = Some(start);
            Ok(Box::new(std::iter::from_fn(move || {
                let c = cur?;
                if (step > 0 && c > stop) || (step < 0 && c < stop) {
                    return None;
                }
                cur = c.checked_add(step);
                Some(Ok(vec![match ty {
                    DataType::Int64 => Value::Int64(c),
                    _ => Value::Int32(c as i32),
                }]))
            })))
        }
        DataType::Numeric(_) => {
            let get = |v: &Value| -> Result<Decimal> {
                match cast::cast(v.clone(), &DataType::Numeric(None))? {
                    Value::Numeric(d) => Ok(d),
                    _ => Err(SqlError::internal("generate_series argument")),
                }
            };
            let start = get(&vals[0])?;
            let stop = get(&vals[1])?;
            let step = if vals.len() > 2 {
                get(&vals[2])?
            } else {
                Decimal::ONE
            };
            if step.is_zero() {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            let mut cur = start;
            Ok(Box::new(std::iter::from_fn(move || {
                if (step.is_sign_positive() && cur > stop)
                    || (step.is_sign_negative() && cur < stop)
                {
                    return None;
                }
                let v = cur;
                cur += step;
                Some(Ok(vec![Value::Numeric(v)]))
            })))
        }
        DataType::Timestamp | DataType::TimestampTz => {
            let step = match vals.get(2) {
                Some(Value::Interval(i)) => *i,
                _ => {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_FUNCTION,
                        "generate_series over timestamps needs an interval step",
                    ))
                }
            };
            if step.as_micros_total() == 0 {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            let start = cast::cast(vals[0].clone(), &ty)?;
            let stop = cast::cast(vals[1].clone(), &ty)?;
            let forward = step.as_micros_total() > 0;
            let mut cur = start;
            Ok(Box::new(std::iter::from_fn(move || {
                let ord = ops::compare_values(&cur, &stop)?;
                if (forward && ord == Ordering::Greater) || (!forward && ord == Ordering::Less) {
                    return None;
                }
                let v = cur.clone();
                match ops::eval_binary(BinaryOp::Add, &cur, &Value::Interval(step)) {
                    Ok(n) => cur = n,
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(vec![v]))
            })))
        }
        other => Err(SqlError::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!("function generate_series({other}) does not exist"),
        )),
    }
}

/// A row used as a hash key: equal by SQL equality, with NULL equal to NULL
/// (grouping semantics), hashed consistently across numeric types.
#[derive(Debug, Clone)]
pub struct KeyRow(pub Row);

impl PartialEq for KeyRow {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| match (a.is_null(), b.is_null()) {
                    (true, true) => true,
                    (false, false) => ops::compare_values(a, b) == Some(Ordering::Equal),
                    _ => false,
                })
    }
}

impl Eq for KeyRow {}

impl Hash for KeyRow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for v in &self.0 {
            ops::hash_value(v, state);
        }
    }
}

// ----- sort -----

fn compare_keys(a: &[Value], b: &[Value], keys: &[SortKey]) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = ops::compare_values(x, y).unwrap_or(Ordering::Equal);
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn sort<'a>(input: RowIter<'a>, keys: &'a [SortKey], ctx: &'a ExecContext) -> Result<RowIter<'a>> {
    let mut rows: Vec<(Row, Row)> = Vec::new();
    for r in input {
        let row = r?;
        let mut k = Vec::with_capacity(keys.len());
        for key in keys {
            k.push(key.expr.eval(&row, ctx)?);
        }
        ctx.mem.charge(row_bytes(&row) + row_bytes(&k))?;
        rows.push((k, row));
    }
    rows.sort_by(|a, b| compare_keys(&a.0, &b.0, keys));
    Ok(Box::new(rows.into_iter().map(|(_, r)| Ok(r))))
}

// ----- aggregation -----

#[derive(Debug, Clone)]
enum AggState {
    Count(i64),
    SumInt(Option<i128>),
    SumNumeric(Option<Decimal>),
    SumFloat(Option<f64>),
    SumInterval(Option<Interval>),
    AvgNumeric(Decimal, i64),
    AvgFloat(f64, i64),
    AvgInterval(i128, i64),
    MinMax(Option<Value>),
    Bool(Option<bool>),
    StringAgg(Option<String>),
    ArrayAgg(Vec<(Vec<Value>, Value)>),
    Moments(i64, f64, f64),
}

fn init_state(call: &AggCall, arg_ty: Option<DataType>) -> AggState {
    match call.func {
        AggFunc::CountStar | AggFunc::Count => AggState::Count(0),
        AggFunc::Sum => match arg_ty {
            Some(DataType::Int16 | DataType::Int32 | DataType::Int64) => AggState::SumInt(None),
            Some(DataType::Float32 | DataType::Float64) => AggState::SumFloat(None),
            Some(DataType::Interval) => AggState::SumInterval(None),
            _ => AggState::SumNumeric(None),
        },
        AggFunc::Avg => match call.ty {
            DataType::Float64 => AggState::AvgFloat(0.0, 0),
            DataType::Interval => AggState::AvgInterval(0, 0),
            _ => AggState::AvgNumeric(Decimal::ZERO, 0),
        },
        AggFunc::Min | AggFunc::Max => AggState::MinMax(None),
        AggFunc::BoolAnd | AggFunc::BoolOr => AggState::Bool(None),
        AggFunc::StringAgg => AggState::StringAgg(None),
        AggFunc::ArrayAgg => AggState::ArrayAgg(Vec::new()),
        AggFunc::StddevSamp | AggFunc::StddevPop | AggFunc::VarSamp | AggFunc::VarPop => {
            AggState::Moments(0, 0.0, 0.0)
        }
    }
}

fn to_f64(v: &Value) -> Result<f64> {
    match cast::cast(v.clone(), &DataType::Float64)? {
        Value::Float64(f) => Ok(f),
        _ => Ok(0.0),
    }
}

fn to_decimal(v: &Value) -> Result<Decimal> {
    match v {
        Value::Int16(i) => Ok(Decimal::from(*i)),
        Value::Int32(i) => Ok(Decimal::from(*i)),
        Value::Int64(i) => Ok(Decimal::from(*i)),
        Value::Numeric(d) => Ok(*d),
        other => match cast::cast(other.clone(), &DataType::Numeric(None))? {
            Value::Numeric(d) => Ok(d),
            _ => Ok(Decimal::ZERO),
        },
    }
}

fn update_state(state: &mut AggState, func: AggFunc, args: &[Value]) -> Result<()> {
    let v = args.first().cloned().unwrap_or(Value::Null);
    if func == AggFunc::CountStar {
        if let AggState::Count(n) = state {
            *n += 1;
        }
        return Ok(());
    }
    if let AggState::ArrayAgg(items) = state {
        // NULLs are elements too.
        items.push((args.get(1..).unwrap_or_default().to_vec(), v));
        return Ok(());
    }
    if v.is_null() {
        return Ok(());
    }
    match state {
        AggState::Count(n) => *n += 1,
        AggState::ArrayAgg(_) => {}
        AggState::SumInt(s) => {
            let i: i128 = match v {
                Value::Int16(i) => i as i128,
                Value::Int32(i) => i as i128,
                Value::Int64(i) => i as i128,
                _ => 0,
            };
            *s = Some(
                s.unwrap_or(0)
                    .checked_add(i)
                    .ok_or_else(|| SqlError::out_of_range("numeric"))?,
            );
        }
        AggState::SumNumeric(s) => {
            let d = to_decimal(&v)?;
            *s = Some(match s {
                Some(x) => x
                    .checked_add(d)
                    .ok_or_else(|| SqlError::out_of_range("numeric"))?,
                None => d,
            });
        }
        AggState::SumFloat(s) => *s = Some(s.unwrap_or(0.0) + to_f64(&v)?),
        AggState::SumInterval(s) => {
            if let Value::Interval(i) = v {
                let cur = s.unwrap_or_default();
                *s = Some(Interval {
                    months: cur
                        .months
                        .checked_add(i.months)
                        .ok_or_else(|| SqlError::out_of_range("interval"))?,
                    days: cur
                        .days
                        .checked_add(i.days)
                        .ok_or_else(|| SqlError::out_of_range("interval"))?,
                    micros: cur
                        .micros
                        .checked_add(i.micros)
                        .ok_or_else(|| SqlError::out_of_range("interval"))?,
                });
            }
        }
        AggState::AvgNumeric(sum, n) => {
            *sum = sum
                .checked_add(to_decimal(&v)?)
                .ok_or_else(|| SqlError::out_of_range("numeric"))?;
            *n += 1;
        }
        AggState::AvgFloat(sum, n) => {
            *sum += to_f64(&v)?;
            *n += 1;
        }
        AggState::AvgInterval(sum, n) => {
            if let Value::Interval(i) = v {
                *sum += i.as_micros_total();
                *n += 1;
            }
        }
        AggState::MinMax(cur) => {
            let replace = match cur {
                None => true,
                Some(c) => {
                    let o = ops::compare_values(&v, c).unwrap_or(Ordering::Equal);
                    if func == AggFunc::Min {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    }
                }
            };
            if replace {
                *cur = Some(v);
            }
        }
        AggState::Bool(cur) => {
            let b = v == Value::Bool(true);
            *cur = Some(match (cur.take(), func) {
                (None, _) => b,
                (Some(c), AggFunc::BoolAnd) => c && b,
                (Some(c), _) => c || b,
            });
        }
        AggState::StringAgg(cur) => {
            let s = match &v {
                Value::Text(s) => s.clone(),
                other => crate::types::text::format_text(other),
            };
            match cur {
                None => *cur = Some(s),
                Some(acc) => {
                    if let Some(Value::Text(sep)) = args.get(1) {
                        acc.push_str(sep);
                    }
                    acc.push_str(&s);
                }
            }
        }
        AggState::Moments(n, mean, m2) => {
            let x = to_f64(&v)?;
            *n += 1;
            let delta = x - *mean;
            *mean += delta / *n as f64;
            *m2 += delta * (x - *mean);
        }
    }
    Ok(())
}

fn finish_state(state: AggState, call: &AggCall) -> Result<Value> {
    Ok(match state {
        AggState::Count(n) => Value::Int64(n),
        AggState::SumInt(s) => match s {
            None => Value::Null,
            Some(i) => match call.ty {
                DataType::Int64 => {
                    Value::Int64(i64::try_from(i).map_err(|_| SqlError::out_of_range("bigint"))?)
                }
                _ => Value::Numeric(Decimal::from_i128_with_scale(i, 0)),
            },
        },
        AggState::SumNumeric(s) => s.map(Value::Numeric).unwrap_or(Value::Null),
        AggState::SumFloat(s) => match (s, call.ty) {
            (None, _) => Value::Null,
            (Some(f), DataType::Float32) => Value::Float32(f as f32),
            (Some(f), _) => Value::Float64(f),
        },
        AggState::SumInterval(s) => s.map(Value::Interval).unwrap_or(Value::Null),
        AggState::AvgNumeric(sum, n) => {
            if n == 0 {
                Value::Null
            } else {
                ops::eval_binary(
                    BinaryOp::Div,
                    &Value::Numeric(sum),
                    &Value::Numeric(Decimal::from(n)),
                )?
            }
        }
        AggState::AvgFloat(sum, n) => {
            if n == 0 {
                Value::Null
            } else {
                Value::Float64(sum / n as f64)
            }
        }
        AggState::AvgInterval(sum, n) => {
            if n == 0 {
                Value::Null
            } else {
                let avg = sum / n as i128;
                Value::Interval(Interval {
                    months: 0,
                    days: 0,
                    micros: avg as i64,
                })
            }
        }
        AggState::MinMax(v) => v.unwrap_or(Value::Null),
        AggState::Bool(b) => b.map(Value::Bool).unwrap_or(Value::Null),
        AggState::StringAgg(s) => s.map(Value::Text).unwrap_or(Value::Null),
        AggState::ArrayAgg(mut items) => {
            if items.is_empty() {
                Value::Null
            } else {
                items.sort_by(|(a, _), (b, _)| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| ops::sort_cmp(x, y))
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            }
        }
        AggState::Moments(n, _, m2) => {
            let (num, den) = match call.func {
                AggFunc::StddevPop | AggFunc::VarPop => (m2, n as f64),
                _ => (m2, n as f64 - 1.0),
            };
            if n == 0 || den <= 0.0 {
                return Ok(Value::Null);
            }
            let var = num / den;
            let r = match call.func {
                AggFunc::StddevPop | AggFunc::StddevSamp => var.sqrt(),
                _ => var,
            };
            match call.ty {
                DataType::Float64 => Value::Float64(r),
                _ => cast::cast(Value::Float64(r), &DataType::Numeric(None))?,
            }
        }
    })
}

struct Group {
    key: Row,
    states: Vec<AggState>,
    distinct: Vec<Option<std::collections::HashSet<KeyRow>>>,
}

fn aggregate<'a>(
    input: RowIter<'a>,
    group_by: &'a [Expr],
    aggs: &'a [AggCall],
    ctx: &'a ExecContext,
) -> Result<RowIter<'a>> {
    let mut index: HashMap<KeyRow, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut arg_types: Vec<Option<DataType>> = vec![None; aggs.len()];
    let mut args_buf: Vec<Value> = Vec::new();
    for r in input {
        let row = r?;
        let mut key = Vec::with_capacity(group_by.len());
        for g in group_by {
            key.push(g.eval(&row, ctx)?);
        }
        let gi = match index.get(&KeyRow(key.clone())) {
            Some(i) => *i,
            None => {
                ctx.mem.charge(row_bytes(&key) + 64 * aggs.len())?;
                let states = aggs.iter().map(|a| init_state(a, None)).collect();
                let distinct = aggs
                    .iter()
                    .map(|a| {
                        if a.distinct {
                            Some(Default::default())
                        } else {
                            None
                        }
                    })
                    .collect();
                groups.push(Group {
                    key: key.clone(),
                    states,
                    distinct,
                });
                index.insert(KeyRow(key), groups.len() - 1);
                groups.len() - 1
            }
        };
        let g = &mut groups[gi];
        for (i, call) in aggs.iter().enumerate() {
            if let Some(f) = &call.filter {
                if !f.eval_pred(&row, ctx)? {
                    continue;
                }
            }
            args_buf.clear();
            for a in &call.args {
                args_buf.push(a.eval(&row, ctx)?);
            }
            if arg_types[i].is_none() {
                if let Some(v) = args_buf.first() {
                    if !v.is_null() {
                        arg_types[i] = Some(v.data_type());
                    }
                }
            }
            // The state's numeric flavour follows the first non-NULL argument.
            if let (AggState::SumNumeric(None), Some(t)) = (&g.states[i], arg_types[i]) {
                g.states[i] = init_state(call, Some(t));
            }
            if let Some(seen) = &mut g.distinct[i] {
                if args_buf.first().map(|v| v.is_null()).unwrap_or(true) {
                    continue;
                }
                let k = KeyRow(vec![args_buf[0].clone()]);
                if seen.contains(&k) {
                    continue;
                }
                ctx.mem.charge(row_bytes(&k.0))?;
                seen.insert(k);
            }
            update_state(&mut g.states[i], call.func, &args_buf)?;
        }
    }
    if groups.is_empty() && group_by.is_empty() {
        let states = aggs.iter().map(|a| init_state(a, None)).collect();
        groups.push(Group {
            key: vec![],
            states,
            distinct: vec![],
        });
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let mut row = g.key;
        for (s, call) in g.states.into_iter().zip(aggs) {
            row.push(finish_state(s, call)?);
        }
        out.push(Ok(row));
    }
    Ok(Box::new(out.into_iter()))
}

// ----- joins -----

fn eval_keys(exprs: &[&Expr], row: &[Value], ctx: &ExecContext) -> Result<Option<Row>> {
    let mut k = Vec::with_capacity(exprs.len());
    for e in exprs {
        let v = e.eval(row, ctx)?;
        if v.is_null() {
            return Ok(None);
        }
        k.push(v);
    }
    Ok(Some(k))
}

#[allow(clippy::too_many_arguments)]
fn join<'a>(
    left: &'a Plan,
    right: &'a Plan,
    kind: JoinKind,
    equi: &'a [(Expr, Expr)],
    on: Option<&'a Expr>,
    widths: (usize, usize),
    ctx: &'a ExecContext,
) -> Result<RowIter<'a>> {
    // Materialize the right side (the build side).
    let mut right_rows: Vec<Row> = Vec::new();
    for r in build(right, ctx)? {
        let r = r?;
        ctx.mem.charge(row_bytes(&r))?;
        right_rows.push(r);
    }
    let mut table: HashMap<KeyRow, Vec<usize>> = HashMap::new();
    let lkeys: Vec<&Expr> = equi.iter().map(|(l, _)| l).collect();
    let rkeys: Vec<&Expr> = equi.iter().map(|(_, r)| r).collect();
    if !equi.is_empty() {
        for (i, r) in right_rows.iter().enumerate() {
            if let Some(k) = eval_keys(&rkeys, r, ctx)? {
                table.entry(KeyRow(k)).or_default().push(i);
            }
        }
    }
    let right_rows = Arc::new(right_rows);
    let mut matched_right = vec![false; right_rows.len()];
    let left_iter = build(left, ctx)?;
    let mut out: Vec<Row> = Vec::new();
    let all_right: Vec<usize> = (0..right_rows.len()).collect();
    let mut combined: Row = Vec::with_capacity(widths.0 + widths.1);
    // Streaming would need the matched-right bookkeeping to outlive the
    // iterator; right and full joins are materialized, the others stream.
    let streaming = matches!(
        kind,
        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti
    );
    if streaming {
        let rr = right_rows.clone();
        let it = left_iter.flat_map(move |l| -> Vec<Result<Row>> {
            let l = match l.and_then(|l| ctx.interrupt.check().map(|()| l)) {
                Ok(l) => l,
                Err(e) => return vec![Err(e)],
            };
            let mut res = Vec::new();
            let candidates: &[usize] = if equi.is_empty() {
                &all_right
            } else {
                match eval_keys(&lkeys, &l, ctx) {
                    Ok(Some(k)) => match table.get(&KeyRow(k)) {
                        Some(v) => v,
                        None => &[],
                    },
                    Ok(None) => &[],
                    Err(e) => return vec![Err(e)],
                }
            };
            let mut any = false;
            for &ri in candidates {
                let mut row = Vec::with_capacity(widths.0 + widths.1);
                row.extend_from_slice(&l);
                row.extend_from_slice(&rr[ri]);
                let ok = match on {
                    Some(p) => match p.eval_pred(&row, ctx) {
                        Ok(b) => b,
                        Err(e) => return vec![Err(e)],
                    },
                    None => true,
                };
                if ok {
                    any = true;
                    match kind {
                        JoinKind::Inner | JoinKind::Left => res.push(Ok(row)),
                        JoinKind::Semi => {
                            res.push(Ok(l.clone()));
                            break;
                        }
                        _ => break,
                    }
                }
            }
            if !any {
                match kind {
                    JoinKind::Left => {
                        let mut row = l.clone();
                        row.resize(widths.0 + widths.1, Value::Null);
                        res.push(Ok(row));
                    }
                    JoinKind::Anti => res.push(Ok(l)),
                    _ => {}
                }
            }
            res
        });
        return Ok(Box::new(it));
    }
    for l in left_iter {
        let l = l?;
        ctx.interrupt.check()?;
        let candidates: Vec<usize> = if equi.is_empty() {
            all_right.clone()
        } else {
            match eval_keys(&lkeys, &l, ctx)? {
                Some(k) => table.get(&KeyRow(k)).cloned().unwrap_or_default(),
                None => vec![],
            }
        };
        let mut any = false;
        for ri in candidates {
            combined.clear();
            combined.extend_from_slice(&l);
            combined.extend_from_slice(&right_rows[ri]);
            let ok = match on {
                Some(p) => p.eval_pred(&combined, ctx)?,
                None => true,
            };
            if ok {
                any = true;
                matched_right[ri] = true;
                ctx.mem.charge(row_bytes(&combined))?;
                out.push(combined.clone());
            }
        }
        if !any && kind == JoinKind::Full {
            let mut row = l.clone();
            row.resize(widths.0 + widths.1, Value::Null);
            out.push(row);
        }
    }
    for (i, m) in matched_right.iter().enumerate() {
        if !m {
            let mut row = vec![Value::Null; widths.0];
            row.extend_from_slice(&right_rows[i]);
            out.push(row);
        }
    }
    Ok(Box::new(out.into_iter().map(Ok)))
}

// ----- set operations -----

fn set_op<'a>(
    kind: SetOpKind,
    all: bool,
    left: RowIter<'a>,
    right: RowIter<'a>,
    ctx: &'a ExecContext,
) -> Result<RowIter<'a>> {
    match (kind, all) {
        (SetOpKind::Union, true) => Ok(Box::new(left.chain(right))),
        (SetOpKind::Union, false) => {
            let mut seen = std::collections::HashSet::new();
            let mem = ctx.mem.clone();
            Ok(Box::new(left.chain(right).filter_map(move |r| match r {
                Ok(row) => {
                    if let Err(e) = mem.charge(row_bytes(&row)) {
                        return Some(Err(e));
                    }
                    if seen.insert(KeyRow(row.clone())) {
                        Some(Ok(row))
                    } else {
                        None
                    }
                }
                Err(e) => Some(Err(e)),
            })))
        }
        (kind, all) => {
            let mut counts: HashMap<KeyRow, usize> = HashMap::new();
            for r in right {
                let r = r?;
                ctx.mem.charge(row_bytes(&r))?;
                *counts.entry(KeyRow(r)).or_default() += 1;
            }
            let mut out = Vec::new();
            let mut emitted: std::collections::HashSet<KeyRow> = std::collections::HashSet::new();
            for l in left {
                let l = l?;
                let key = KeyRow(l);
                let c = counts.get(&key).copied().unwrap_or(0);
                match kind {
                    SetOpKind::Intersect => {
                        if c > 0 {
                            if all {
                                *counts.get_mut(&key).unwrap() -= 1;
                                out.push(key.0);
                            } else if emitted.insert(key.clone()) {
                                out.push(key.0);
                            }
                        }
                    }
                    SetOpKind::Except => {
                        if all {
                            if c > 0 {
                                *counts.get_mut(&key).unwrap() -= 1;
                            } else {
                                out.push(key.0);
                            }
                        } else if c == 0 && emitted.insert(key.clone()) {
                            out.push(key.0);
                        }
                    }
                    SetOpKind::Union => unreachable!(),
                }
            }
            Ok(Box::new(out.into_iter().map(Ok)))
        }
    }
}

// ----- DML -----

/// The outcome of a DML statement.
pub struct DmlResult {
    /// Rows affected.
    pub count: u64,
    /// RETURNING rows.
    pub rows: Vec<Row>,
}

fn duplicate_error(table: &TableDesc, index: Option<&IndexDesc>, row: &[Value]) -> SqlError {
    let (name, key) = unique_key_text(table, index, row);
    SqlError::new(
        sqlstate::UNIQUE_VIOLATION,
        format!("duplicate key value violates unique constraint \"{name}\""),
    )
    .with_detail(format!("Key {key} already exists."))
    .on_object(&table.name, None, Some(&name))
}

/// Names a unique key of `table` (`index`, or the primary key when `None`) and shows its value
/// in `row` as PostgreSQL's messages do: `(name, "(a, b)=(1, x)")`.
pub(crate) fn unique_key_text(
    table: &TableDesc,
    index: Option<&IndexDesc>,
    row: &[Value],
) -> (String, String) {
    let (name, cols): (String, &[u32]) = match index {
        Some(i) => (i.name.clone(), &i.columns),
        None => (
            table
                .pk_name
                .clone()
                .unwrap_or_else(|| format!("{}_pkey", table.name)),
            &table.primary_key,
        ),
    };
    let names: Vec<String> = cols
        .iter()
        .map(|c| table.columns[table.column_pos(*c).unwrap()].name.clone())
        .collect();
    let vals: Vec<String> = cols
        .iter()
        .map(|c| {
            let v = &row[table.column_pos(*c).unwrap()];
            if v.is_null() {
                "null".into()
            } else {
                crate::types::text::format_text(v)
            }
        })
        .collect();
    (
        name,
        format!("({})=({})", names.join(", "), vals.join(", ")),
    )
}

/// Fails with 53200 once a transaction's buffered writes exceed `limit` bytes.
pub(crate) fn check_write_buffer(txn: &Transaction, limit: usize) -> Result<()> {
    if txn.buffer_bytes() > limit {
        return Err(SqlError::new(
            sqlstate::OUT_OF_MEMORY,
            format!("transaction's pending writes exceed the memory limit of {limit} bytes"),
        ));
    }
    Ok(())
}

fn check_not_null(table: &TableDesc, row: &[Value]) -> Result<()> {
    for (i, c) in table.columns.iter().enumerate() {
        if !c.nullable && row[i].is_null() {
            return Err(SqlError::new(
                sqlstate::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                ),
            )
            .on_object(&table.name, Some(&c.name), None));
        }
    }
    Ok(())
}

fn map_insert_err(
    e: reef_txn::TxnError,
    table: &TableDesc,
    index: Option<&IndexDesc>,
    row: &[Value],
) -> SqlError {
    if matches!(e, reef_txn::TxnError::DuplicateKey { .. }) {
        duplicate_error(table, index, row)
    } else {
        txn_error(e)
    }
}

/// Writes a new row and its index entries; fails on duplicates.
fn insert_row(txn: &Transaction, table: &TableDesc, row: &[Value]) -> Result<()> {
    let key = row_key(table, row);
    if table.has_hidden_key() {
        // Hidden row ids come from a durable allocator and never repeat: no lookup needed.
        txn.put(key, row_value(table, row));
    } else {
        txn.insert(key, row_value(table, row))
            .map_err(|e| map_insert_err(e, table, None, row))?;
    }
    for idx in &table.indexes {
        let (k, v) = index_entry(table, idx, row);
        if idx.unique && !v.is_empty() {
            txn.insert(k, v)
                .map_err(|e| map_insert_err(e, table, Some(idx), row))?;
        } else {
            txn.put(k, v);
        }
    }
    Ok(())
}

fn delete_row(txn: &Transaction, table: &TableDesc, row: &[Value]) {
    txn.delete(row_key(table, row));
    for idx in &table.indexes {
        let (k, _) = index_entry(table, idx, row);
        txn.delete(k);
    }
}

/// True if a row with this primary key or any unique value exists.
fn conflicts(txn: &Transaction, table: &TableDesc, row: &[Value]) -> Result<bool> {
    if txn.get(&row_key(table, row)).map_err(txn_error)?.is_some() {
        return Ok(true);
    }
    for idx in table.indexes.iter().filter(|i| i.unique) {
        let (k, v) = index_entry(table, idx, row);
        if !v.is_empty() && txn.get(&k).map_err(txn_error)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs INSERT, UPDATE or DELETE.
pub fn execute_dml(plan: &Plan, ctx: &ExecContext) -> Result<DmlResult> {
    let txn = ctx.txn()?.clone();
    let mut count = 0u64;
    let mut out = Vec::new();
    match plan {
        Plan::Insert {
            table,
            input,
            returning,
            on_conflict_do_nothing,
        } => {
            // Materialize first so INSERT ... SELECT from the same table sees
            // only rows that existed before the statement.
            let mut rows = Vec::new();
            for r in build(input, ctx)? {
                let r = r?;
                ctx.mem.charge(row_bytes(&r))?;
                rows.push(r);
            }
            let hidden = if table.has_hidden_key() {
                table.column_pos(table.primary_key[0])
            } else {
                None
            };
            for mut row in rows {
                if let Some(h) = hidden {
                    row[h] = Value::Int64(ctx.hooks()?.next_rowid(table.id)?);
                }
                check_not_null(table, &row)?;
                if *on_conflict_do_nothing && conflicts(&txn, table, &row)? {
                    continue;
                }
                insert_row(&txn, table, &row)?;
                count += 1;
                if let Some(ret) = returning {
                    let mut r = Vec::with_capacity(ret.len());
                    for e in ret {
                        r.push(e.eval(&row, ctx)?);
                    }
                    out.push(r);
                }
                ctx.mem.charge(0)?;
            }
        }
        Plan::Update {
            table,
            input,
            assignments,
            returning,
        } => {
            let mut rows = Vec::new();
            for r in build(input, ctx)? {
                let old = r?;
                let mut new = old[..table.columns.len()].to_vec();
                for (pos, e) in assignments {
                    new[*pos] = e.eval(&old, ctx)?;
                }
                ctx.mem.charge(row_bytes(&old) * 2)?;
                rows.push((old[..table.columns.len()].to_vec(), new));
            }
            let pk = table.pk_positions();
            // Deletes first, so that key swaps inside one statement work.
            let mut moved = Vec::new();
            for (old, new) in &rows {
                check_not_null(table, new)?;
                let key_changed = pk
                    .iter()
                    .any(|p| ops::compare_values(&old[*p], &new[*p]) != Some(Ordering::Equal));
                if key_changed {
                    delete_row(&txn, table, old);
                    moved.push(new.clone());
                } else {
                    for idx in &table.indexes {
                        let (ok, _) = index_entry(table, idx, old);
                        let (nk, nv) = index_entry(table, idx, new);
                        if ok != nk {
                            txn.delete(ok);
                            if idx.unique && !nv.is_empty() {
                                txn.insert(nk, nv)
                                    .map_err(|e| map_insert_err(e, table, Some(idx), new))?;
                            } else {
                                txn.put(nk, nv);
                            }
                        }
                    }
                    txn.put(row_key(table, new), row_value(table, new));
                }
            }
            for new in &moved {
                insert_row(&txn, table, new)?;
            }
            for (_, new) in rows {
                count += 1;
                if let Some(ret) = returning {
                    let mut r = Vec::with_capacity(ret.len());
                    for e in ret {
                        r.push(e.eval(&new, ctx)?);
                    }
                    out.push(r);
                }
            }
        }
        Plan::Delete {
            table,
            input,
            returning,
        } => {
            let mut rows = Vec::new();
            for r in build(input, ctx)? {
                let r = r?;
                ctx.mem.charge(row_bytes(&r))?;
                rows.push(r);
            }
            for row in rows {
                delete_row(&txn, table, &row[..table.columns.len()]);
                count += 1;
                if let Some(ret) = returning {
                    let mut r = Vec::with_capacity(ret.len());
                    for e in ret {
                        r.push(e.eval(&row, ctx)?);
                    }
                    out.push(r);
                }
            }
        }
        _ => return Err(SqlError::internal("not a DML plan")),
    }
    check_write_buffer(&txn, ctx.mem.limit_bytes())?;
    Ok(DmlResult { count, rows: out })
}

impl MemTracker {
    /// The limit in bytes.
    pub fn limit_bytes(&self) -> usize {
        self.limit
    }
}
