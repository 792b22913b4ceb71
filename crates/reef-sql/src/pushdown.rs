//! Filters and projections evaluated where the data is stored.
//!
//! A table scan ships its filter and the columns it needs to the nodes that hold the table's
//! partitions as a *program* (`reef_txn::Transaction::scan_filtered`): each node reads its
//! rows, drops the ones the filter rejects, and returns the others reduced to the needed
//! columns, so rows that fail a filter never cross the network and unneeded columns never
//! travel. The program is self-contained (the table's column ids and types, its primary key,
//! the needed columns, the filter), so a node needs no catalog to run it, and it is plain JSON
//! (`serde_json`), since the program is small beside the rows it saves.
//!
//! Only what evaluates the same anywhere is shipped: columns, constants (statement parameters
//! are bound first), operators, casts and functions that read no clock, session or random
//! state. A filter with anything else is not shipped (the projection still is). The executor
//! applies its filter to every row it gets, as before: a node that cannot evaluate the filter
//! on a row (an error, say) returns the row whole and lets the executor decide, and the
//! transaction's own uncommitted rows, merged on the client, pass through the same filter.

use serde::{Deserialize, Serialize};

use crate::catalog::{type_code, ColumnDesc, TableDesc};
use crate::exec::{decode_table_row, ExecContext};
use crate::expr::Expr;
use crate::types::ops::{BinaryOp, UnaryOp};
use crate::types::{cast, text, DataType, Value};

/// Functions whose result depends on more than their arguments.
const UNSHIPPABLE_FUNCTIONS: &[&str] = &[
    "random",
    "setseed",
    "now",
    "current_timestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "clock_timestamp",
    "localtimestamp",
    "current_date",
    "age",
    "nextval",
    "currval",
    "lastval",
    "gen_random_uuid",
];

/// A scan program.
#[derive(Serialize, Deserialize)]
struct Program {
    /// The table's columns in table order: (id, type code).
    columns: Vec<(u32, String)>,
    /// The primary key's column ids.
    primary_key: Vec<u32>,
    /// Which columns (by position) the scan needs, the filter's included.
    needed: Vec<bool>,
    /// The filter, if it could be shipped.
    filter: Option<PExpr>,
}

/// A shippable expression: the pure part of [`Expr`], with constants as text.
#[derive(Serialize, Deserialize)]
enum PExpr {
    Column(usize),
    Null,
    /// A constant: its type code and its text form.
    Const(String, String),
    Unary(UnaryOp, Box<PExpr>),
    Binary(BinaryOp, Box<PExpr>, Box<PExpr>),
    Cast(Box<PExpr>, String),
    Func(String, Vec<PExpr>),
    Case(Option<Box<PExpr>>, Vec<(PExpr, PExpr)>, Option<Box<PExpr>>),
    Coalesce(Vec<PExpr>),
    NullIf(Box<PExpr>, Box<PExpr>),
    Extreme(bool, Vec<PExpr>),
    InList(Box<PExpr>, Vec<PExpr>, bool),
    IsNull(Box<PExpr>, bool),
    IsBool(Box<PExpr>, Option<bool>, bool),
    IsDistinct(Box<PExpr>, Box<PExpr>, bool),
    Like(Box<PExpr>, Box<PExpr>, Option<Box<PExpr>>, bool, bool),
}

/// Converts a constant, if its text form reads back as the same value.
fn constant(v: &Value) -> Option<PExpr> {
    if v.is_null() {
        return Some(PExpr::Null);
    }
    let ty = v.data_type();
    let text = text::format_text(v);
    match text::parse_text(&text, &ty) {
        Ok(back) if back == *v => Some(PExpr::Const(type_code::encode(&ty), text)),
        _ => None,
    }
}

/// Converts the shippable part of a filter; `None` if any of it is not.
fn ship(e: &Expr, params: &[Value]) -> Option<PExpr> {
    let b = |e: &Expr| ship(e, params).map(Box::new);
    let all = |v: &[Expr]| {
        v.iter()
            .map(|e| ship(e, params))
            .collect::<Option<Vec<_>>>()
    };
    Some(match e {
        Expr::Column(i) => PExpr::Column(*i),
        Expr::Literal(v) => constant(v)?,
        Expr::Param(i, ty) => constant(&cast::cast(params.get(*i)?.clone(), ty).ok()?)?,
        Expr::Unary(op, x) => PExpr::Unary(*op, b(x)?),
        Expr::Binary(op, l, r) => PExpr::Binary(*op, b(l)?, b(r)?),
        Expr::Cast(x, ty) => PExpr::Cast(b(x)?, type_code::encode(ty)),
        Expr::Func(name, args) if !UNSHIPPABLE_FUNCTIONS.contains(&name.as_str()) => {
            PExpr::Func(name.clone(), all(args)?)
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => PExpr::Case(
            match operand {
                Some(o) => Some(b(o)?),
                None => None,
            },
            whens
                .iter()
                .map(|(w, t)| Some((ship(w, params)?, ship(t, params)?)))
                .collect::<Option<Vec<_>>>()?,
            match otherwise {
                Some(o) => Some(b(o)?),
                None => None,
            },
        ),
        Expr::Coalesce(v) => PExpr::Coalesce(all(v)?),
        Expr::NullIf(x, y) => PExpr::NullIf(b(x)?, b(y)?),
        Expr::Extreme(greatest, v) => PExpr::Extreme(*greatest, all(v)?),
        Expr::InList {
            expr,
            list,
            negated,
        } => PExpr::InList(b(expr)?, all(list)?, *negated),
        Expr::IsNull(x, negated) => PExpr::IsNull(b(x)?, *negated),
        Expr::IsBool(x, value, negated) => PExpr::IsBool(b(x)?, *value, *negated),
        Expr::IsDistinct(x, y, negated) => PExpr::IsDistinct(b(x)?, b(y)?, *negated),
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
            case_insensitive,
        } => PExpr::Like(
            b(expr)?,
            b(pattern)?,
            match escape {
                Some(x) => Some(b(x)?),
                None => None,
            },
            *negated,
            *case_insensitive,
        ),
        _ => return None,
    })
}

fn data_type(code: &str) -> Result<DataType, String> {
    type_code::decode(code).ok_or_else(|| format!("unknown type code {code}"))
}

/// Rebuilds an expression on the node that runs the program.
fn unship(p: PExpr) -> Result<Expr, String> {
    let b = |p: Box<PExpr>| unship(*p).map(Box::new);
    let all = |v: Vec<PExpr>| v.into_iter().map(unship).collect::<Result<Vec<_>, _>>();
    let opt = |p: Option<Box<PExpr>>| p.map(|p| unship(*p).map(Box::new)).transpose();
    Ok(match p {
        PExpr::Column(i) => Expr::Column(i),
        PExpr::Null => Expr::Literal(Value::Null),
        PExpr::Const(code, text) => {
            Expr::Literal(text::parse_text(&text, &data_type(&code)?).map_err(|e| e.message)?)
        }
        PExpr::Unary(op, x) => Expr::Unary(op, b(x)?),
        PExpr::Binary(op, l, r) => Expr::Binary(op, b(l)?, b(r)?),
        PExpr::Cast(x, code) => Expr::Cast(b(x)?, data_type(&code)?),
        PExpr::Func(name, args) => Expr::Func(name, all(args)?),
        PExpr::Case(operand, whens, otherwise) => Expr::Case {
            operand: opt(operand)?,
            whens: whens
                .into_iter()
                .map(|(w, t)| Ok((unship(w)?, unship(t)?)))
                .collect::<Result<Vec<_>, String>>()?,
            otherwise: opt(otherwise)?,
        },
        PExpr::Coalesce(v) => Expr::Coalesce(all(v)?),
        PExpr::NullIf(x, y) => Expr::NullIf(b(x)?, b(y)?),
        PExpr::Extreme(greatest, v) => Expr::Extreme(greatest, all(v)?),
        PExpr::InList(x, list, negated) => Expr::InList {
            expr: b(x)?,
            list: all(list)?,
            negated,
        },
        PExpr::IsNull(x, negated) => Expr::IsNull(b(x)?, negated),
        PExpr::IsBool(x, value, negated) => Expr::IsBool(b(x)?, value, negated),
        PExpr::IsDistinct(x, y, negated) => Expr::IsDistinct(b(x)?, b(y)?, negated),
        PExpr::Like(x, pattern, escape, negated, case_insensitive) => Expr::Like {
            expr: b(x)?,
            pattern: b(pattern)?,
            escape: opt(escape)?,
            negated,
            case_insensitive,
        },
    })
}

/// The program for a scan of `table` that needs the columns marked in `needed` and keeps the
/// rows `filter` passes, with statement parameters `params`; `None` when shipping it would
/// save nothing (no shippable filter, every column needed).
pub fn program(
    table: &TableDesc,
    needed: &[bool],
    filter: Option<&Expr>,
    params: &[Value],
) -> Option<Vec<u8>> {
    let filter = filter.and_then(|f| ship(f, params));
    let projects = (0..table.columns.len()).any(|i| !needed.get(i).copied().unwrap_or(true));
    if filter.is_none() && !projects {
        return None;
    }
    let program = Program {
        columns: table
            .columns
            .iter()
            .map(|c| (c.id, type_code::encode(&c.ty)))
            .collect(),
        primary_key: table.primary_key.clone(),
        needed: (0..table.columns.len())
            .map(|i| needed.get(i).copied().unwrap_or(true))
            .collect(),
        filter,
    };
    Some(serde_json::to_vec(&program).expect("programs always serialise"))
}

/// Runs scan programs on the node that stores the rows (install it on the node's services).
pub struct PushdownFilter;

impl reef_txn::ScanFilter for PushdownFilter {
    fn compile(&self, program: &[u8]) -> reef_txn::Result<Box<dyn reef_txn::PairFilter>> {
        let bad = |e: String| reef_txn::TxnError::InvalidArgument(format!("bad scan program: {e}"));
        let program: Program = serde_json::from_slice(program).map_err(|e| bad(e.to_string()))?;
        let columns = program
            .columns
            .iter()
            .map(|(id, code)| {
                Ok(ColumnDesc {
                    id: *id,
                    name: String::new(),
                    ty: data_type(code)?,
                    nullable: true,
                    default: None,
                    hidden: false,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(bad)?;
        if program.needed.len() != columns.len()
            || program
                .primary_key
                .iter()
                .any(|id| !columns.iter().any(|c| c.id == *id))
        {
            return Err(bad("columns, key and needed columns disagree".into()));
        }
        let filter = program.filter.map(unship).transpose().map_err(bad)?;
        if let Some(f) = &filter {
            let mut used = Vec::new();
            f.columns(&mut used);
            if used.iter().any(|i| *i >= columns.len()) {
                return Err(bad("the filter reads a column the table lacks".into()));
            }
        }
        let all_needed = program.needed.iter().all(|n| *n);
        let table = TableDesc {
            id: 0,
            name: String::new(),
            columns,
            primary_key: program.primary_key,
            pk_name: None,
            indexes: Vec::new(),
            next_column_id: 0,
            next_index_id: 0,
            version: 0,
            write_version: 0,
            fence: None,
            building: None,
            row_estimate: None,
        };
        Ok(Box::new(Compiled {
            table,
            needed: program.needed,
            all_needed,
            filter,
            ctx: ExecContext::constant(),
        }))
    }
}

/// A compiled program.
struct Compiled {
    table: TableDesc,
    needed: Vec<bool>,
    all_needed: bool,
    filter: Option<Expr>,
    ctx: ExecContext,
}

impl reef_txn::PairFilter for Compiled {
    fn apply(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        // Anything this node cannot decide goes back whole, for the executor to decide. (A
        // table row's key has its prefix: 0x02, the table and index ids.)
        if key.len() < 9 {
            return Some(value.to_vec());
        }
        let Ok(row) = decode_table_row(&self.table, key, value, &self.needed) else {
            return Some(value.to_vec());
        };
        if let Some(filter) = &self.filter {
            match filter.eval_pred(&row, &self.ctx) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => return Some(value.to_vec()),
            }
        }
        if self.all_needed {
            return Some(value.to_vec());
        }
        let cols: Vec<(u32, &Value)> = self
            .table
            .columns
            .iter()
            .zip(&row)
            .enumerate()
            .filter(|(i, (c, _))| self.needed[*i] && !self.table.primary_key.contains(&c.id))
            .map(|(_, (c, v))| (c.id, v))
            .collect();
        let mut out = Vec::with_capacity(value.len());
        crate::codec::encode_row(&mut out, &cols);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use reef_txn::ScanFilter;

    use super::*;
    use crate::catalog::TableDesc;
    use crate::exec::{row_key, row_value};

    fn table() -> TableDesc {
        let col = |id: u32, ty: DataType| ColumnDesc {
            id,
            name: format!("c{id}"),
            ty,
            nullable: true,
            default: None,
            hidden: false,
        };
        TableDesc {
            id: 7,
            name: "t".into(),
            columns: vec![
                col(1, DataType::Int32),
                col(2, DataType::Text),
                col(3, DataType::Numeric(None)),
                col(4, DataType::Float64),
            ],
            primary_key: vec![1],
            pk_name: None,
            indexes: vec![],
            next_column_id: 5,
            next_index_id: 1,
            version: 1,
            write_version: 1,
            fence: None,
            building: None,
            row_estimate: None,
        }
    }

    fn row(id: i32, name: &str, amount: &str, f: f64) -> Vec<Value> {
        vec![
            Value::Int32(id),
            Value::Text(name.into()),
            Value::Numeric(amount.parse().unwrap()),
            Value::Float64(f),
        ]
    }

    /// Runs `filter` (with `params`) and projection `needed` on the node side over `rows`, and
    /// returns the decoded rows that come back.
    fn run(
        filter: &Expr,
        params: &[Value],
        needed: &[bool],
        rows: &[Vec<Value>],
    ) -> Vec<Vec<Value>> {
        let t = table();
        let program = program(&t, needed, Some(filter), params).expect("something to ship");
        let mut compiled = PushdownFilter.compile(&program).unwrap();
        rows.iter()
            .filter_map(|r| {
                let (k, v) = (row_key(&t, r), row_value(&t, r));
                compiled
                    .apply(&k, &v)
                    .map(|v| decode_table_row(&t, &k, &v, needed).unwrap())
            })
            .collect()
    }

    #[test]
    fn filters_and_projects_where_the_rows_are() {
        let rows = vec![
            row(1, "apple", "10.50", 0.5),
            row(2, "banana", "3", f64::NAN),
            row(3, "cherry", "-7.25", 1e300),
        ];
        // amount > $1 AND name LIKE '%a%'
        let filter = Expr::Binary(
            BinaryOp::And,
            Box::new(Expr::Binary(
                BinaryOp::Gt,
                Box::new(Expr::Column(2)),
                Box::new(Expr::Param(0, DataType::Numeric(None))),
            )),
            Box::new(Expr::Like {
                expr: Box::new(Expr::Column(1)),
                pattern: Box::new(Expr::Literal(Value::Text("%a%".into()))),
                escape: None,
                negated: false,
                case_insensitive: false,
            }),
        );
        let needed = [true, true, true, false];
        let out = run(
            &filter,
            &[Value::Numeric("2.99".parse().unwrap())],
            &needed,
            &rows,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0][..3], rows[0][..3]);
        assert_eq!(out[1][..3], rows[1][..3]);
        // The unneeded column did not travel.
        assert!(out.iter().all(|r| r[3].is_null()));
    }

    #[test]
    fn unshippable_filters_stay_home() {
        let t = table();
        let now = Expr::Func("now".into(), vec![]);
        let uses_clock = Expr::IsNull(Box::new(now), true);
        // Nothing to save: no program at all.
        assert!(program(&t, &[true; 4], Some(&uses_clock), &[]).is_none());
        // The projection still ships, without the filter: every row comes back.
        let rows = vec![row(1, "a", "1", 1.0), row(2, "b", "2", 2.0)];
        assert_eq!(
            run(&uses_clock, &[], &[true, false, true, true], &rows).len(),
            2
        );
    }

    #[test]
    fn rows_the_node_cannot_decide_come_back_whole() {
        let rows = vec![row(1, "a", "1", 1.0), row(2, "b", "0", 2.0)];
        // 10 / amount > 100 rejects the first row and divides by zero on the second: the
        // executor decides that one.
        let filter = Expr::Binary(
            BinaryOp::Gt,
            Box::new(Expr::Binary(
                BinaryOp::Div,
                Box::new(Expr::Literal(Value::Numeric(10.into()))),
                Box::new(Expr::Column(2)),
            )),
            Box::new(Expr::Literal(Value::Numeric(100.into()))),
        );
        let out = run(&filter, &[], &[true; 4], &rows);
        assert_eq!(out, vec![rows[1].clone()]);
    }

    #[test]
    fn bad_programs_are_errors() {
        assert!(PushdownFilter.compile(b"not json").is_err());
        let mut p: serde_json::Value = serde_json::from_slice(
            &program(&table(), &[true, false, true, true], None, &[]).unwrap(),
        )
        .unwrap();
        p["filter"] = serde_json::json!({"Column": 99});
        assert!(PushdownFilter
            .compile(&serde_json::to_vec(&p).unwrap())
            .is_err());
    }
}
