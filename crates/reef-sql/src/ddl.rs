//! Schema changes: CREATE/DROP/ALTER of tables, indexes, views and
//! sequences, and TRUNCATE.
//!
//! Each change writes the new descriptor through the statement's
//! transaction (and the session overlay), so a failed or rolled-back DDL
//! leaves nothing behind. A change that reads or rewrites the rows of a table
//! others may be writing first fences it (see [`crate::fence`]): CREATE INDEX
//! publishes the index write-only and backfills it online, in chunks of their
//! own outside a transaction block; ALTER TABLE forms that check or rewrite
//! rows, and TRUNCATE, hold writers off with a write fence until they commit.

use std::sync::Arc;

use sqlparser::ast;

use crate::binder::{convert_type, ident_name, object_name, Binder, Scope};
use crate::catalog::{
    self, ColumnDesc, IndexDesc, IndexState, Object, SequenceDesc, TableDesc, ViewDesc,
};
use crate::error::{sqlstate, Result, SqlError};
use crate::exec::{self, decode_table_row, index_entry, prefix_end, row_key, row_value, Row};
use crate::optimizer;
use crate::session::{ExecResult, StmtCtx};
use crate::types::{DataType, Value};

fn tag(t: &str) -> Result<ExecResult> {
    Ok(ExecResult {
        copy: None,
        tag: t.into(),
        columns: None,
        rows: vec![],
    })
}

fn already_exists(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::DUPLICATE_TABLE,
        format!("relation \"{name}\" already exists"),
    )
}

fn txn_err(e: reef_txn::TxnError) -> SqlError {
    crate::error::from_txn(e)
}

/// Returns the rows of `table` as the statement's transaction sees them now, read one by one:
/// the transaction's writes after this call (even into the table) are not among them, so a
/// schema change can rewrite a table while reading it without holding it in memory.
fn table_rows<'t>(
    ctx: &StmtCtx,
    table: &'t TableDesc,
) -> Result<impl Iterator<Item = Result<Row>> + 't> {
    let prefix = catalog::index_prefix(table.id, 0);
    let end = prefix_end(&prefix);
    let needed = vec![true; table.columns.len()];
    let scanner = ctx.txn.scan(&prefix, &end).map_err(txn_err)?;
    Ok(scanner.map(move |kv| {
        let (k, v) = kv.map_err(txn_err)?;
        decode_table_row(table, &k, &v, &needed)
    }))
}

/// Fails with 23502 if a row of `table` holds NULL in a column at `positions`, naming the
/// first such column in their order; reads the table once.
fn check_no_nulls(ctx: &StmtCtx, table: &TableDesc, positions: &[usize]) -> Result<()> {
    let mut nulls = vec![false; positions.len()];
    for row in table_rows(ctx, table)? {
        let row = row?;
        for (seen, &pos) in nulls.iter_mut().zip(positions) {
            *seen |= row[pos].is_null();
        }
        if nulls.first() == Some(&true) {
            break;
        }
    }
    match positions.iter().zip(&nulls).find(|(_, &null)| null) {
        Some((&pos, _)) => Err(SqlError::new(
            sqlstate::NOT_NULL_VIOLATION,
            format!(
                "column \"{}\" of relation \"{}\" contains null values",
                table.columns[pos].name, table.name
            ),
        )),
        None => Ok(()),
    }
}

/// Deletes every key in a range in the statement's transaction.
fn delete_range(ctx: &StmtCtx, start: &[u8], end: &[u8]) -> Result<()> {
    // The scan does not see the deletions it makes (see `table_rows`).
    for kv in ctx.txn.scan(start, end).map_err(txn_err)? {
        let (k, _) = kv.map_err(txn_err)?;
        ctx.txn.delete(k);
    }
    exec::check_write_buffer(&ctx.txn, ctx.mem_limit)
}

fn is_serial(ty: &ast::DataType) -> Option<DataType> {
    if let ast::DataType::Custom(name, _) = ty {
        let n = object_name(name).ok()?;
        return match n.as_str() {
            "serial" | "serial4" => Some(DataType::Int32),
            "bigserial" | "serial8" => Some(DataType::Int64),
            "smallserial" | "serial2" => Some(DataType::Int16),
            _ => None,
        };
    }
    None
}

fn column_ids(table: &TableDesc, cols: &[ast::IndexColumn]) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for c in cols {
        let name = match &c.column.expr {
            ast::Expr::Identifier(i) => ident_name(i),
            other => {
                return Err(SqlError::unsupported(format!(
                    "index expressions are not supported: {other}"
                )))
            }
        };
        let (_, col) = table
            .column(&name)
            .filter(|(_, c)| !c.hidden)
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{name}\" does not exist"),
                )
            })?;
        if ids.contains(&col.id) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{name}\" appears twice in index"),
            ));
        }
        ids.push(col.id);
    }
    Ok(ids)
}

fn column_ids_by_name(table: &TableDesc, names: &[String]) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for name in names {
        let (_, col) = table
            .column(name)
            .filter(|(_, c)| !c.hidden)
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{name}\" named in key does not exist"),
                )
            })?;
        if ids.contains(&col.id) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{name}\" appears twice in key"),
            ));
        }
        ids.push(col.id);
    }
    Ok(ids)
}

fn index_column_names(cols: &[ast::IndexColumn]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(i) => Ok(ident_name(i)),
            other => Err(SqlError::unsupported(format!(
                "index expressions are not supported: {other}"
            ))),
        })
        .collect()
}

/// Picks a free relation name like PostgreSQL does (`t_a_key`, `t_a_key1`).
fn unique_name(ctx: &StmtCtx, base: &str) -> String {
    let view = ctx.view();
    if !view.name_taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !view.name_taken(n))
        .unwrap()
}

/// Validates a DEFAULT expression for a column and returns its SQL text.
fn check_default(ctx: &StmtCtx, e: &ast::Expr, ty: DataType, col: &str) -> Result<String> {
    let mut binder = Binder::new(ctx.view(), vec![]);
    let (x, t) = binder.bind_expr(e, &Scope::default())?;
    if crate::binder::contains_agg_expr(&x) {
        return Err(SqlError::new(
            sqlstate::GROUPING_ERROR,
            "aggregate functions are not allowed in DEFAULT expressions",
        ));
    }
    if !crate::types::cast::assignment_allowed(&t, &ty) {
        return Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!("column \"{col}\" is of type {ty} but default expression is of type {t}"),
        ));
    }
    Ok(e.to_string())
}

/// CREATE TABLE.
pub(crate) fn create_table(ctx: &mut StmtCtx, ct: &ast::CreateTable) -> Result<ExecResult> {
    let name = object_name(&ct.name)?;
    if ctx.view().name_taken(&name) {
        if ct.if_not_exists {
            return tag("CREATE TABLE");
        }
        return Err(already_exists(&name));
    }
    if ct.temporary {
        return Err(SqlError::unsupported(
            "temporary tables are not supported yet",
        ));
    }
    if ct.like.is_some() || ct.clone.is_some() || ct.partition_of.is_some() || ct.inherits.is_some()
    {
        return Err(SqlError::unsupported(
            "this form of CREATE TABLE is not supported",
        ));
    }
    let id = ctx.alloc_id()?;
    let mut columns: Vec<ColumnDesc> = Vec::new();
    let mut pk_names: Option<(Vec<String>, Option<String>)> = None;
    let mut uniques: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut serials: Vec<(usize, DataType)> = Vec::new();
    let mut next_col = 1u32;
    // CREATE TABLE ... AS SELECT.
    let as_query = match &ct.query {
        Some(q) => {
            let mut binder = Binder::new(ctx.view(), vec![]);
            let b = binder.bind_query(q)?;
            Some(b)
        }
        None => None,
    };
    if let Some(b) = &as_query {
        if !ct.columns.is_empty() && ct.columns.len() != b.scope.columns.len() {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "CREATE TABLE AS column list does not match the query",
            ));
        }
        for (i, c) in b.scope.columns.iter().enumerate() {
            let cname = ct
                .columns
                .get(i)
                .map(|d| ident_name(&d.name))
                .unwrap_or_else(|| c.name.clone());
            if columns.iter().any(|x| x.name == cname) {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!("column \"{cname}\" specified more than once"),
                ));
            }
            columns.push(ColumnDesc {
                id: next_col,
                name: cname,
                ty: if c.ty == DataType::Unknown {
                    DataType::Text
                } else {
                    c.ty
                },
                nullable: true,
                default: None,
                hidden: false,
            });
            next_col += 1;
        }
    } else {
        for cd in &ct.columns {
            let cname = ident_name(&cd.name);
            if columns.iter().any(|c| c.name == cname) {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!("column \"{cname}\" specified more than once"),
                ));
            }
            let (ty, serial) = match is_serial(&cd.data_type) {
                Some(t) => (t, true),
                None => (convert_type(&cd.data_type)?, false),
            };
            let mut col = ColumnDesc {
                id: next_col,
                name: cname.clone(),
                ty,
                nullable: true,
                default: None,
                hidden: false,
            };
            next_col += 1;
            for opt in &cd.options {
                match &opt.option {
                    ast::ColumnOption::Null => col.nullable = true,
                    ast::ColumnOption::NotNull => col.nullable = false,
                    ast::ColumnOption::Default(e) => {
                        col.default = Some(check_default(ctx, e, ty, &cname)?)
                    }
                    ast::ColumnOption::PrimaryKey(_) => {
                        if pk_names.is_some() {
                            return Err(SqlError::new(
                                sqlstate::INVALID_TABLE_DEFINITION,
                                format!(
                                    "multiple primary keys for table \"{name}\" are not allowed"
                                ),
                            ));
                        }
                        pk_names = Some((vec![cname.clone()], opt.name.as_ref().map(ident_name)));
                        col.nullable = false;
                    }
                    ast::ColumnOption::Unique(_) => {
                        uniques.push((vec![cname.clone()], opt.name.as_ref().map(ident_name)))
                    }
                    ast::ColumnOption::Check(_) => {
                        return Err(SqlError::unsupported(
                            "CHECK constraints are not supported yet",
                        ))
                    }
                    ast::ColumnOption::ForeignKey(_) => {
                        return Err(SqlError::unsupported(
                            "FOREIGN KEY constraints are not supported yet",
                        ))
                    }
                    ast::ColumnOption::Collation(_) | ast::ColumnOption::Comment(_) => {}
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "column option {other} is not supported"
                        )))
                    }
                }
            }
            if serial {
                if col.default.is_some() {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        format!("multiple default values specified for column \"{cname}\" of table \"{name}\""),
                    ));
                }
                col.nullable = false;
                serials.push((columns.len(), ty));
            }
            columns.push(col);
        }
    }
    for c in &ct.constraints {
        match c {
            ast::TableConstraint::PrimaryKey(pk) => {
                if pk_names.is_some() {
                    return Err(SqlError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                pk_names = Some((
                    index_column_names(&pk.columns)?,
                    pk.name.as_ref().map(ident_name),
                ));
            }
            ast::TableConstraint::Unique(u) => uniques.push((
                index_column_names(&u.columns)?,
                u.name.as_ref().map(ident_name),
            )),
            ast::TableConstraint::Check(_) => {
                return Err(SqlError::unsupported(
                    "CHECK constraints are not supported yet",
                ))
            }
            ast::TableConstraint::ForeignKey(_) => {
                return Err(SqlError::unsupported(
                    "FOREIGN KEY constraints are not supported yet",
                ))
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "constraint {other} is not supported"
                )))
            }
        }
    }
    let mut table = TableDesc {
        id,
        name: name.clone(),
        columns,
        primary_key: vec![],
        pk_name: None,
        indexes: vec![],
        next_column_id: next_col,
        next_index_id: 1,
        version: 1,
        write_version: 0,
        fence: None,
        building: None,
        row_estimate: None,
    };
    // Sequences for SERIAL columns.
    for (pos, ty) in serials {
        let cname = table.columns[pos].name.clone();
        let seq_name = unique_name(ctx, &format!("{name}_{cname}_seq"));
        let max = match ty {
            DataType::Int16 => i16::MAX as i64,
            DataType::Int32 => i32::MAX as i64,
            _ => i64::MAX,
        };
        let seq_id = ctx.alloc_id()?;
        let col_id = table.columns[pos].id;
        ctx.put_object(Object::Sequence(SequenceDesc {
            id: seq_id,
            name: seq_name.clone(),
            increment: 1,
            min_value: 1,
            max_value: max,
            start: 1,
            cycle: false,
            owned_by: Some((id, col_id)),
            version: 1,
        }));
        table.columns[pos].default = Some(format!("nextval('{seq_name}')"));
    }
    match pk_names {
        Some((cols, cname)) => {
            table.primary_key = column_ids_by_name(&table, &cols)?;
            for cid in table.primary_key.clone() {
                let p = table.column_pos(cid).unwrap();
                table.columns[p].nullable = false;
            }
            let pk_name = cname.unwrap_or_else(|| format!("{name}_pkey"));
            if ctx.view().name_taken(&pk_name) {
                return Err(already_exists(&pk_name));
            }
            table.pk_name = Some(pk_name);
        }
        None => add_hidden_key(&mut table),
    }
    for (cols, cname) in uniques {
        let ids = column_ids_by_name(&table, &cols)?;
        if ids == table.primary_key || table.indexes.iter().any(|i| i.columns == ids && i.unique) {
            continue;
        }
        let iname = match cname {
            Some(n) => n,
            None => unique_name(ctx, &format!("{name}_{}_key", cols.join("_"))),
        };
        if table.indexes.iter().any(|i| i.name == iname) || ctx.view().name_taken(&iname) {
            return Err(already_exists(&iname));
        }
        let iid = table.next_index_id;
        table.next_index_id += 1;
        table.indexes.push(IndexDesc {
            id: iid,
            name: iname,
            columns: ids,
            unique: true,
            state: IndexState::Public,
            constraint: true,
        });
    }
    let table_arc = Arc::new(table.clone());
    ctx.put_object(Object::Table(table));
    if let Some(b) = as_query {
        let plan = optimizer::optimize(b.plan)?;
        let ectx = ctx.exec_ctx(vec![]);
        let hidden = if table_arc.has_hidden_key() {
            table_arc.column_pos(table_arc.primary_key[0])
        } else {
            None
        };
        let mut rows = Vec::new();
        for r in exec::build(&plan, &ectx)? {
            let r = r?;
            ectx.mem.charge(exec::row_bytes(&r))?;
            rows.push(r);
        }
        let n = rows.len();
        for r in rows {
            let mut row = r;
            if let Some(h) = hidden {
                row.insert(h, Value::Null);
                row[h] = Value::Int64(ctx.hooks.next_rowid(table_arc.id)?);
            }
            ctx.txn
                .put(row_key(&table_arc, &row), row_value(&table_arc, &row));
        }
        return Ok(ExecResult {
            copy: None,
            tag: format!("SELECT {n}"),
            columns: None,
            rows: vec![],
        });
    }
    tag("CREATE TABLE")
}

/// Gives a table without a declared primary key a hidden row-id column.
fn add_hidden_key(table: &mut TableDesc) {
    let name = if table.column("rowid").is_some() {
        "_reef_rowid"
    } else {
        "rowid"
    };
    let id = table.next_column_id;
    table.next_column_id += 1;
    table.columns.push(ColumnDesc {
        id,
        name: name.into(),
        ty: DataType::Int64,
        nullable: false,
        default: None,
        hidden: true,
    });
    table.primary_key = vec![id];
    table.pk_name = None;
}

/// Writes index entries for every existing row (backfill).
fn backfill_index(ctx: &StmtCtx, table: &TableDesc, idx: &IndexDesc) -> Result<()> {
    for row in table_rows(ctx, table)? {
        write_entry(&ctx.txn, table, Some(idx), &row?, false)?;
    }
    exec::check_write_buffer(&ctx.txn, ctx.mem_limit)
}

/// Rows an online backfill reads and indexes per transaction.
const BACKFILL_CHUNK: usize = 1024;

/// Backfills a write-only index online: the table is read in chunks, each in a transaction of
/// its own at a fresh snapshot that writes the chunk's entries and commits, so no transaction
/// grows with the table and concurrent writers (which maintain the index themselves) are held
/// up by one chunk at most. A chunk that conflicts with a writer is read and written again.
fn backfill_online(ctx: &StmtCtx, table: &TableDesc, idx: &IndexDesc) -> Result<()> {
    let prefix = catalog::index_prefix(table.id, 0);
    let end = prefix_end(&prefix);
    let needed = vec![true; table.columns.len()];
    let mut start = prefix;
    loop {
        let mut attempt = 0u32;
        let next = loop {
            attempt += 1;
            let txn = ctx
                .db
                .client()
                .begin(reef_txn::IsolationLevel::RepeatableRead)
                .map_err(txn_err)?;
            let mut rows = Vec::with_capacity(BACKFILL_CHUNK);
            let mut next = None;
            for kv in txn.scan(&start, &end).map_err(txn_err)? {
                let (k, v) = kv.map_err(txn_err)?;
                rows.push(decode_table_row(table, &k, &v, &needed)?);
                if rows.len() == BACKFILL_CHUNK {
                    let mut after = k;
                    after.push(0);
                    next = Some(after);
                    break;
                }
            }
            let written = rows
                .iter()
                .try_for_each(|row| write_entry(&txn, table, Some(idx), row, true))
                .and_then(|_| txn.commit().map_err(txn_err));
            match written {
                Ok(_) => break next,
                Err(e) if e.code == sqlstate::SERIALIZATION_FAILURE && attempt < 100 => {
                    std::thread::sleep(std::time::Duration::from_millis(attempt.min(50) as u64));
                }
                Err(e) => return Err(e),
            }
        };
        match next {
            Some(after) => start = after,
            None => return Ok(()),
        }
    }
}

/// Writes the entry of one index of `table` (the primary index when `idx` is `None`) for
/// `row` through `txn`. Only a complete unique key can collide (entries with a NULL key
/// column, and every non-unique entry, end with the row's key): it must not be among the
/// transaction's own writes, since the range holds no other entry (a new index's, or a table
/// range deleted in this transaction, see `Transaction::put_absent`); with `stored`, it is
/// also looked up and must be absent or point at the same row (an online backfill, whose
/// other chunks and concurrent writers fill the same index).
fn write_entry(
    txn: &reef_txn::Transaction,
    table: &TableDesc,
    idx: Option<&IndexDesc>,
    row: &Row,
    stored: bool,
) -> Result<()> {
    let (k, v) = match idx {
        Some(idx) => index_entry(table, idx, row),
        None => (row_key(table, row), row_value(table, row)),
    };
    let duplicate = || {
        let (name, key) = exec::unique_key_text(table, idx, row);
        SqlError::new(
            sqlstate::UNIQUE_VIOLATION,
            format!("could not create unique index \"{name}\""),
        )
        .with_detail(format!("Key {key} is duplicated."))
    };
    // Only the primary index and a unique entry without NULLs (whose value is the row's key)
    // can collide.
    if idx.is_some() && v.is_empty() {
        txn.put(k, v);
        return Ok(());
    }
    if stored {
        match txn.get(&k).map_err(txn_err)? {
            Some(existing) if existing == v => return Ok(()),
            Some(_) => return Err(duplicate()),
            None => {}
        }
        txn.put(k, v);
        return Ok(());
    }
    match txn.put_absent(k, v) {
        Err(reef_txn::TxnError::DuplicateKey { .. }) => Err(duplicate()),
        other => other.map_err(txn_err),
    }
}

/// CREATE INDEX.
pub(crate) fn create_index(ctx: &mut StmtCtx, ci: &ast::CreateIndex) -> Result<ExecResult> {
    let tname = object_name(&ci.table_name)?;
    let mut table = (*ctx.view().table(&tname)?).clone();
    if ci.predicate.is_some() {
        return Err(SqlError::unsupported(
            "partial indexes are not supported yet",
        ));
    }
    let ids = column_ids(&table, &ci.columns)?;
    let iname = match &ci.name {
        Some(n) => object_name(n)?,
        None => {
            let cols: Vec<String> = ids
                .iter()
                .map(|c| table.columns[table.column_pos(*c).unwrap()].name.clone())
                .collect();
            unique_name(ctx, &format!("{tname}_{}_idx", cols.join("_")))
        }
    };
    if ctx.view().name_taken(&iname) {
        if ci.if_not_exists {
            return tag("CREATE INDEX");
        }
        return Err(already_exists(&iname));
    }
    let idx = IndexDesc {
        id: table.next_index_id,
        name: iname,
        columns: ids,
        unique: ci.unique,
        state: IndexState::Public,
        constraint: false,
    };
    let table = match ctx.fence_table(&table, Some(&idx))? {
        // Others may write the table: the index is write-only until its backfill ends.
        Some(mut table) => {
            let pending = table
                .indexes
                .iter()
                .find(|i| i.name == idx.name)
                .cloned()
                .expect("the fence added the index");
            if ctx.autocommit {
                backfill_online(ctx, &table, &pending)?;
            } else {
                backfill_index(ctx, &table, &pending)?;
            }
            for i in &mut table.indexes {
                if i.id == pending.id {
                    i.state = IndexState::Public;
                }
            }
            table.building = None;
            table
        }
        None => {
            table.next_index_id += 1;
            backfill_index(ctx, &table, &idx)?;
            table.indexes.push(idx);
            table
        }
    };
    let mut table = table;
    table.version += 1;
    ctx.put_object(Object::Table(table));
    tag("CREATE INDEX")
}

/// CREATE VIEW.
pub(crate) fn create_view(ctx: &mut StmtCtx, cv: &ast::CreateView) -> Result<ExecResult> {
    if cv.materialized {
        return Err(SqlError::unsupported(
            "materialized views are not supported",
        ));
    }
    let name = object_name(&cv.name)?;
    // The query must bind now.
    let mut binder = Binder::new(ctx.view(), vec![]);
    let b = binder.bind_query(&cv.query)?;
    if binder.params.iter().any(|_| true) {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_PARAMETER,
            "views cannot have parameters",
        ));
    }
    let column_names: Vec<String> = cv.columns.iter().map(|c| ident_name(&c.name)).collect();
    if column_names.len() > b.scope.columns.len() {
        return Err(SqlError::new(
            sqlstate::SYNTAX_ERROR,
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let existing = ctx.view().get_by_name(&name);
    let id = match existing.as_deref() {
        Some(Object::View(v)) if cv.or_replace => v.id,
        Some(_) if cv.if_not_exists => return tag("CREATE VIEW"),
        Some(_) => return Err(already_exists(&name)),
        None => {
            if ctx.view().name_taken(&name) {
                return Err(already_exists(&name));
            }
            ctx.alloc_id()?
        }
    };
    let version = existing.map(|o| o.version() + 1).unwrap_or(1);
    ctx.put_object(Object::View(ViewDesc {
        id,
        name,
        query: cv.query.to_string(),
        column_names,
        version,
    }));
    tag("CREATE VIEW")
}

fn seq_int(e: &ast::Expr) -> Result<i64> {
    let s = e.to_string();
    s.replace(' ', "").parse::<i64>().map_err(|_| {
        SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid sequence option value {s}"),
        )
    })
}

/// CREATE SEQUENCE.
pub(crate) fn create_sequence(
    ctx: &mut StmtCtx,
    name: &ast::ObjectName,
    if_not_exists: bool,
    opts: &[ast::SequenceOptions],
) -> Result<ExecResult> {
    let name = object_name(name)?;
    if ctx.view().name_taken(&name) {
        if if_not_exists {
            return tag("CREATE SEQUENCE");
        }
        return Err(already_exists(&name));
    }
    let mut increment = 1i64;
    let mut min = None;
    let mut max = None;
    let mut start = None;
    let mut cycle = false;
    let mut type_max = i64::MAX;
    let mut type_min = i64::MIN;
    for o in opts {
        match o {
            ast::SequenceOptions::IncrementBy(e, _) => increment = seq_int(e)?,
            ast::SequenceOptions::MinValue(Some(e)) => min = Some(seq_int(e)?),
            ast::SequenceOptions::MaxValue(Some(e)) => max = Some(seq_int(e)?),
            ast::SequenceOptions::MinValue(None) | ast::SequenceOptions::MaxValue(None) => {}
            ast::SequenceOptions::StartWith(e, _) => start = Some(seq_int(e)?),
            ast::SequenceOptions::Cycle(c) => cycle = *c,
            ast::SequenceOptions::Cache(_) => {}
            ast::SequenceOptions::DataType(t) => match convert_type(t)? {
                DataType::Int16 => {
                    type_max = i16::MAX as i64;
                    type_min = i16::MIN as i64;
                }
                DataType::Int32 => {
                    type_max = i32::MAX as i64;
                    type_min = i32::MIN as i64;
                }
                DataType::Int64 => {}
                _ => {
                    return Err(SqlError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        "sequence type must be smallint, integer, or bigint",
                    ))
                }
            },
            ast::SequenceOptions::OwnedBy(_) => {}
        }
    }
    if increment == 0 {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "INCREMENT must not be zero",
        ));
    }
    let min_value = min.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max_value = max.unwrap_or(if increment > 0 { type_max } else { -1 });
    if min_value >= max_value {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("MINVALUE ({min_value}) must be less than MAXVALUE ({max_value})"),
        ));
    }
    let start = start.unwrap_or(if increment > 0 { min_value } else { max_value });
    if start < min_value || start > max_value {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("START value ({start}) cannot be outside the sequence range ({min_value}..{max_value})"),
        ));
    }
    let id = ctx.alloc_id()?;
    ctx.put_object(Object::Sequence(SequenceDesc {
        id,
        name,
        increment,
        min_value,
        max_value,
        start,
        cycle,
        owned_by: None,
        version: 1,
    }));
    tag("CREATE SEQUENCE")
}

/// Rewrites every row of a table under a new descriptor (new key layout or
/// new column values), rebuilding its indexes; `convert` turns an old row into a new one.
/// Rows stream through: the old rows are read from a scan that began before the old range
/// was deleted (see `table_rows`), and the transaction spills what it writes.
///
/// A committed row whose key the new layout keeps (a hidden row id equal to the new primary
/// key, as after loading rows numbered in order) is not deleted first, only written again,
/// which spares a deletion per row and a lookup that would find it. Every new row still goes
/// through `put_absent`, which refuses a key another row of the rewrite wrote: as every old row
/// is either deleted or rewritten, no other row can hold a new key. A row this transaction
/// wrote itself is deleted first, since `put_absent` would take its old value for a duplicate.
fn rewrite_table(
    ctx: &StmtCtx,
    old: &TableDesc,
    new: &TableDesc,
    convert: impl Fn(Row) -> Row,
) -> Result<()> {
    let rows = table_rows(ctx, old)?;
    let (start, end) = catalog::table_range(old.id);
    let primary = catalog::index_prefix(old.id, 0);
    let needed = vec![true; old.columns.len()];
    // The scan does not see the deletions it makes (see `table_rows`).
    for kv in ctx.txn.scan(&start, &end).map_err(txn_err)? {
        let (k, v) = kv.map_err(txn_err)?;
        if k.starts_with(&primary) && !ctx.txn.has_written(&k).map_err(txn_err)? {
            let row = convert(decode_table_row(old, &k, &v, &needed)?);
            if row_key(new, &row) == k {
                continue;
            }
        }
        ctx.txn.delete(k);
    }
    exec::check_write_buffer(&ctx.txn, ctx.mem_limit)?;
    for row in rows {
        let row = convert(row?);
        write_entry(&ctx.txn, new, None, &row, false)?;
        for idx in &new.indexes {
            write_entry(&ctx.txn, new, Some(idx), &row, false)?;
        }
    }
    exec::check_write_buffer(&ctx.txn, ctx.mem_limit)
}

/// ALTER TABLE.
pub(crate) fn alter_table(ctx: &mut StmtCtx, at: &ast::AlterTable) -> Result<ExecResult> {
    let name = object_name(&at.name)?;
    let obj = ctx.view().get_by_name(&name);
    let mut table = match obj.as_deref() {
        Some(Object::Table(t)) => t.clone(),
        Some(other) => {
            return Err(SqlError::new(
                sqlstate::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not a table but a {}", other.kind_name()),
            ))
        }
        None if at.if_exists => return tag("ALTER TABLE"),
        None => return Err(catalog::undefined_table(&name)),
    };
    // Forms that check or rewrite existing rows hold writers off while they run.
    let reads_rows = at.operations.iter().any(|op| match op {
        ast::AlterTableOperation::AddColumn { column_def, .. } => {
            column_def.options.iter().any(|o| {
                matches!(
                    o.option,
                    ast::ColumnOption::NotNull
                        | ast::ColumnOption::Default(_)
                        | ast::ColumnOption::Unique(_)
                )
            })
        }
        ast::AlterTableOperation::AddConstraint { .. } => true,
        ast::AlterTableOperation::AlterColumn { op, .. } => {
            matches!(op, ast::AlterColumnOperation::SetNotNull)
        }
        _ => false,
    });
    if reads_rows {
        if let Some(fenced) = ctx.fence_table(&table, None)? {
            table = fenced;
        }
    } else {
        ctx.respect_fence(&table)?;
    }
    // This statement's own fence goes with it; another's never reaches here.
    table.fence = None;
    for op in &at.operations {
        table.version += 1;
        match op {
            ast::AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let cname = ident_name(&column_def.name);
                if table.column(&cname).filter(|(_, c)| !c.hidden).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{cname}\" of relation \"{name}\" already exists"),
                    ));
                }
                let ty = match is_serial(&column_def.data_type) {
                    Some(_) => {
                        return Err(SqlError::unsupported(
                            "adding a SERIAL column is not supported yet",
                        ))
                    }
                    None => convert_type(&column_def.data_type)?,
                };
                let mut col = ColumnDesc {
                    id: table.next_column_id,
                    name: cname.clone(),
                    ty,
                    nullable: true,
                    default: None,
                    hidden: false,
                };
                let mut unique = false;
                for opt in &column_def.options {
                    match &opt.option {
                        ast::ColumnOption::Null => {}
                        ast::ColumnOption::NotNull => col.nullable = false,
                        ast::ColumnOption::Default(e) => col.default = Some(check_default(ctx, e, ty, &cname)?),
                        ast::ColumnOption::Unique(_) => unique = true,
                        ast::ColumnOption::PrimaryKey(_) => {
                            return Err(SqlError::unsupported("ADD COLUMN ... PRIMARY KEY is not supported; add the column, then ADD PRIMARY KEY"))
                        }
                        other => return Err(SqlError::unsupported(format!("column option {other} is not supported here"))),
                    }
                }
                table.next_column_id += 1;
                let old = table.clone();
                table.columns.push(col.clone());
                // Existing rows get the default (or NULL).
                // The default is bound at the first row: an empty table takes any.
                let mut default = None;
                for row in table_rows(ctx, &old)? {
                    let mut row = row?;
                    let (x, ectx) = match &default {
                        Some(d) => d,
                        None => {
                            let mut binder = Binder::new(ctx.view(), vec![]);
                            let x = binder.default_expr(&table, table.columns.len() - 1)?;
                            default.insert((x, ctx.exec_ctx(vec![])))
                        }
                    };
                    let v = x.eval(&[], ectx)?;
                    if v.is_null() && !col.nullable {
                        return Err(SqlError::new(
                            sqlstate::NOT_NULL_VIOLATION,
                            format!(
                                "column \"{cname}\" of relation \"{name}\" contains null values"
                            ),
                        ));
                    }
                    row.push(v);
                    if !row.last().unwrap().is_null() {
                        ctx.txn.put(row_key(&table, &row), row_value(&table, &row));
                    }
                }
                exec::check_write_buffer(&ctx.txn, ctx.mem_limit)?;
                if unique {
                    let iname = unique_name(ctx, &format!("{name}_{cname}_key"));
                    let idx = IndexDesc {
                        id: table.next_index_id,
                        name: iname,
                        columns: vec![col.id],
                        unique: true,
                        state: IndexState::Public,
                        constraint: true,
                    };
                    table.next_index_id += 1;
                    backfill_index(ctx, &table, &idx)?;
                    table.indexes.push(idx);
                }
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for cn in column_names {
                    let cname = ident_name(cn);
                    let Some((pos, col)) = table
                        .column(&cname)
                        .filter(|(_, c)| !c.hidden)
                        .map(|(p, c)| (p, c.clone()))
                    else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        ));
                    };
                    if table.primary_key.contains(&col.id) {
                        return Err(SqlError::unsupported(format!(
                            "cannot drop column \"{cname}\": it is part of the primary key of \"{name}\""
                        )));
                    }
                    // Indexes on the column go with it.
                    let dropped: Vec<IndexDesc> = table
                        .indexes
                        .iter()
                        .filter(|i| i.columns.contains(&col.id))
                        .cloned()
                        .collect();
                    for idx in &dropped {
                        let p = catalog::index_prefix(table.id, idx.id);
                        ctx.txn.destroy_range(&p, &prefix_end(&p));
                    }
                    table.indexes.retain(|i| !i.columns.contains(&col.id));
                    table.columns.remove(pos);
                }
            }
            ast::AlterTableOperation::AddConstraint { constraint, .. } => match constraint {
                ast::TableConstraint::PrimaryKey(pk) => {
                    if !table.has_hidden_key() {
                        return Err(SqlError::new(
                            sqlstate::INVALID_TABLE_DEFINITION,
                            format!("multiple primary keys for table \"{name}\" are not allowed"),
                        ));
                    }
                    let names = index_column_names(&pk.columns)?;
                    let ids = column_ids_by_name(&table, &names)?;
                    let pk_name = pk
                        .name
                        .as_ref()
                        .map(ident_name)
                        .unwrap_or_else(|| format!("{name}_pkey"));
                    if ctx.view().name_taken(&pk_name) {
                        return Err(already_exists(&pk_name));
                    }
                    let old = table.clone();
                    let positions: Vec<usize> = ids
                        .iter()
                        .map(|id| table.column_pos(*id).unwrap())
                        .collect();
                    check_no_nulls(ctx, &old, &positions)?;
                    for &p in &positions {
                        table.columns[p].nullable = false;
                    }
                    let hidden_pos = table.column_pos(table.primary_key[0]).unwrap();
                    table.primary_key = ids;
                    table.pk_name = Some(pk_name);
                    table.columns.remove(hidden_pos);
                    rewrite_table(ctx, &old, &table, |mut r| {
                        r.remove(hidden_pos);
                        r
                    })?;
                    ctx.forget_blocks(table.id);
                }
                ast::TableConstraint::Unique(u) => {
                    let names = index_column_names(&u.columns)?;
                    let ids = column_ids_by_name(&table, &names)?;
                    let iname = match &u.name {
                        Some(n) => ident_name(n),
                        None => unique_name(ctx, &format!("{name}_{}_key", names.join("_"))),
                    };
                    if ctx.view().name_taken(&iname) {
                        return Err(already_exists(&iname));
                    }
                    let idx = IndexDesc {
                        id: table.next_index_id,
                        name: iname,
                        columns: ids,
                        unique: true,
                        state: IndexState::Public,
                        constraint: true,
                    };
                    table.next_index_id += 1;
                    backfill_index(ctx, &table, &idx)?;
                    table.indexes.push(idx);
                }
                _ => {
                    return Err(SqlError::unsupported(
                        "only PRIMARY KEY and UNIQUE constraints can be added",
                    ))
                }
            },
            ast::AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let old = ident_name(old_column_name);
                let new = ident_name(new_column_name);
                if table.column(&new).is_some() {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{new}\" of relation \"{name}\" already exists"),
                    ));
                }
                let pos = table
                    .column(&old)
                    .filter(|(_, c)| !c.hidden)
                    .map(|(p, _)| p)
                    .ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{old}\" does not exist"),
                        )
                    })?;
                table.columns[pos].name = new;
            }
            ast::AlterTableOperation::RenameTable { table_name } => {
                let new = match table_name {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                        object_name(n)?
                    }
                };
                if ctx.view().name_taken(&new) {
                    return Err(already_exists(&new));
                }
                table.name = new;
            }
            ast::AlterTableOperation::AlterColumn { column_name, op } => {
                let cname = ident_name(column_name);
                let pos = table
                    .column(&cname)
                    .filter(|(_, c)| !c.hidden)
                    .map(|(p, _)| p)
                    .ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        )
                    })?;
                match op {
                    ast::AlterColumnOperation::SetNotNull => {
                        check_no_nulls(ctx, &table, &[pos])?;
                        table.columns[pos].nullable = false;
                    }
                    ast::AlterColumnOperation::DropNotNull => {
                        if table.primary_key.contains(&table.columns[pos].id) {
                            return Err(SqlError::new(
                                sqlstate::INVALID_TABLE_DEFINITION,
                                format!("column \"{cname}\" is in a primary key"),
                            ));
                        }
                        table.columns[pos].nullable = true;
                    }
                    ast::AlterColumnOperation::SetDefault { value } => {
                        let ty = table.columns[pos].ty;
                        table.columns[pos].default = Some(check_default(ctx, value, ty, &cname)?);
                    }
                    ast::AlterColumnOperation::DropDefault => table.columns[pos].default = None,
                    _ => {
                        return Err(SqlError::unsupported(
                            "this ALTER COLUMN form is not supported yet",
                        ))
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE {other} is not supported yet"
                )))
            }
        }
    }
    ctx.put_object(Object::Table(table));
    tag("ALTER TABLE")
}

/// Views whose definition mentions a relation name.
fn dependent_views(ctx: &StmtCtx, name: &str) -> Vec<ViewDesc> {
    ctx.view()
        .objects()
        .iter()
        .filter_map(|o| match &**o {
            Object::View(v) if v.name != name && mentions(&v.query, name) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn mentions(sql: &str, name: &str) -> bool {
    sql.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == name)
}

/// DROP TABLE / VIEW / INDEX / SEQUENCE.
pub(crate) fn drop(
    ctx: &mut StmtCtx,
    kind: ast::ObjectType,
    if_exists: bool,
    names: &[ast::ObjectName],
    cascade: bool,
) -> Result<ExecResult> {
    let tag_name = match kind {
        ast::ObjectType::Table => "DROP TABLE",
        ast::ObjectType::View => "DROP VIEW",
        ast::ObjectType::Index => "DROP INDEX",
        ast::ObjectType::Sequence => "DROP SEQUENCE",
        other => {
            return Err(SqlError::unsupported(format!(
                "DROP {other} is not supported"
            )))
        }
    };
    // Check every name first, so a failing DROP changes nothing.
    let mut targets = Vec::new();
    for n in names {
        let name = object_name(n)?;
        if kind == ast::ObjectType::Index {
            match ctx.view().index_owner(&name) {
                Some(t) => {
                    if t.pk_name.as_deref() == Some(name.as_str()) {
                        return Err(SqlError::new(
                            sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("cannot drop index {name} because constraint {name} on table {} requires it", t.name),
                        ));
                    }
                    targets.push((name, Some(t.id)));
                }
                None if if_exists => {}
                None => {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("index \"{name}\" does not exist"),
                    ))
                }
            }
            continue;
        }
        match ctx.view().get_by_name(&name).as_deref() {
            Some(obj) => {
                let matches = matches!(
                    (kind, obj),
                    (ast::ObjectType::Table, Object::Table(_))
                        | (ast::ObjectType::View, Object::View(_))
                        | (ast::ObjectType::Sequence, Object::Sequence(_))
                );
                if !matches {
                    return Err(SqlError::new(
                        sqlstate::WRONG_OBJECT_TYPE,
                        format!("\"{name}\" is not a {}", tag_name[5..].to_lowercase()),
                    )
                    .with_hint(format!(
                        "Use DROP {} to remove a {}.",
                        obj.kind_name().to_uppercase(),
                        obj.kind_name()
                    )));
                }
                if kind != ast::ObjectType::Sequence && !cascade {
                    let deps: Vec<ViewDesc> = dependent_views(ctx, &name)
                        .into_iter()
                        .filter(|v| {
                            !names
                                .iter()
                                .any(|n| object_name(n).ok().as_deref() == Some(v.name.as_str()))
                        })
                        .collect();
                    if let Some(v) = deps.first() {
                        return Err(SqlError::new(
                            sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!(
                                "cannot drop {} {name} because other objects depend on it",
                                obj.kind_name()
                            ),
                        )
                        .with_detail(format!(
                            "view {} depends on {} {name}",
                            v.name,
                            obj.kind_name()
                        ))
                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                    }
                }
                targets.push((name, None));
            }
            None if if_exists => {}
            None => {
                let what = match kind {
                    ast::ObjectType::Table => format!("table \"{name}\" does not exist"),
                    ast::ObjectType::View => format!("view \"{name}\" does not exist"),
                    _ => format!("sequence \"{name}\" does not exist"),
                };
                return Err(SqlError::new(sqlstate::UNDEFINED_TABLE, what));
            }
        }
    }
    for (name, owner) in targets {
        if let Some(tid) = owner {
            let Some(Object::Table(t)) = ctx.view().get(tid).as_deref().cloned() else {
                continue;
            };
            ctx.respect_fence(&t)?;
            let mut t = t;
            if let Some(pos) = t.indexes.iter().position(|i| i.name == name) {
                let idx = t.indexes.remove(pos);
                // Index ids are never reused: the entries go in one range deletion once no
                // snapshot can read them.
                let p = catalog::index_prefix(t.id, idx.id);
                ctx.txn.destroy_range(&p, &prefix_end(&p));
                t.version += 1;
                ctx.put_object(Object::Table(t));
            }
            continue;
        }
        let Some(obj) = ctx.view().get_by_name(&name) else {
            continue;
        };
        match &*obj {
            Object::Table(t) => {
                ctx.respect_fence(t)?;
                if cascade {
                    for v in dependent_views(ctx, &name) {
                        ctx.drop_object(v.id);
                    }
                }
                // Table ids are never reused: the rows go in one range deletion once no snapshot
                // can read them, so dropping costs the same for any table size.
                let (start, end) = catalog::table_range(t.id);
                ctx.txn.destroy_range(&start, &end);
                // Owned sequences go with the table.
                for o in ctx.view().objects() {
                    if let Object::Sequence(s) = &*o {
                        if s.owned_by.map(|(tid, _)| tid) == Some(t.id) {
                            ctx.drop_object(s.id);
                            ctx.txn.delete(catalog::counter_key(s.id));
                        }
                    }
                }
                ctx.txn.delete(catalog::counter_key(t.id));
                ctx.drop_object(t.id);
            }
            Object::View(v) => {
                if cascade {
                    for d in dependent_views(ctx, &name) {
                        ctx.drop_object(d.id);
                    }
                }
                ctx.drop_object(v.id)
            }
            Object::Sequence(s) => {
                ctx.txn.delete(catalog::counter_key(s.id));
                ctx.drop_object(s.id);
            }
        }
    }
    tag(tag_name)
}

/// TRUNCATE.
pub(crate) fn truncate(ctx: &mut StmtCtx, t: &ast::Truncate) -> Result<ExecResult> {
    let mut tables = Vec::new();
    for target in &t.table_names {
        let name = object_name(&target.name)?;
        match ctx.view().get_by_name(&name).as_deref() {
            Some(Object::Table(tb)) => tables.push(tb.clone()),
            Some(other) => {
                return Err(SqlError::new(
                    sqlstate::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a table but a {}", other.kind_name()),
                ))
            }
            None if t.if_exists => {}
            None => return Err(catalog::undefined_table(&name)),
        }
    }
    let restart = matches!(t.identity, Some(ast::TruncateIdentityOption::Restart));
    for tb in tables {
        let mut tb = ctx.fence_table(&tb, None)?.unwrap_or(tb);
        tb.fence = None;
        let (start, end) = catalog::table_range(tb.id);
        delete_range(ctx, &start, &end)?;
        if restart {
            for o in ctx.view().objects() {
                if let Object::Sequence(s) = &*o {
                    if s.owned_by.map(|(tid, _)| tid) == Some(tb.id) {
                        ctx.txn.delete(catalog::counter_key(s.id));
                        ctx.forget_blocks(s.id);
                    }
                }
            }
        }
        tb.version += 1;
        ctx.put_object(Object::Table(tb));
    }
    tag("TRUNCATE TABLE")
}
