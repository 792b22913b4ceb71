//! Logical plans.
//!
//! The binder builds a [`Plan`] tree; the optimizer rewrites it (predicate
//! pushdown, access-path selection, join strategy); the executor runs it.
//! Every node's output is a row of values by position; column names live in
//! the binder's scopes, not here.

use std::fmt::Write;
use std::sync::Arc;

use crate::catalog::{IndexDesc, TableDesc};
use crate::expr::Expr;
use crate::types::DataType;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)`.
    CountStar,
    /// `count(x)`.
    Count,
    /// `sum(x)`.
    Sum,
    /// `avg(x)`.
    Avg,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `bool_and(x)` / `every(x)`.
    BoolAnd,
    /// `bool_or(x)`.
    BoolOr,
    /// `string_agg(x, sep)`.
    StringAgg,
    /// `array_agg(x [ORDER BY k, ...])`: the arguments are `x` then the sort keys.
    ArrayAgg,
    /// `stddev_samp(x)` / `stddev(x)`.
    StddevSamp,
    /// `stddev_pop(x)`.
    StddevPop,
    /// `var_samp(x)` / `variance(x)`.
    VarSamp,
    /// `var_pop(x)`.
    VarPop,
}

/// One aggregate call in an Aggregate node.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Arguments, evaluated against the Aggregate's input row.
    pub args: Vec<Expr>,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
    /// `FILTER (WHERE ..)`.
    pub filter: Option<Expr>,
    /// The result type.
    pub ty: DataType,
}

/// How a scan reaches its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every row of the table, in primary-key order.
    Full,
    /// One primary key value: every key column fixed.
    PointGet(Vec<Expr>),
    /// Several values of a one-column primary key (`id IN (..)`): the rows are read one key
    /// at a time, in key order, each key once.
    PointGets(Vec<Expr>),
    /// A range of an index (the primary key when `index` is None): the
    /// leading columns equal `eq`, then the next one within the bounds.
    Range {
        /// The secondary index, or None for the primary key.
        index: Option<IndexDesc>,
        /// Values for the leading key columns.
        eq: Vec<Expr>,
        /// Lower bound on the next key column: (value, inclusive).
        lower: Option<(Expr, bool)>,
        /// Upper bound on the next key column: (value, inclusive).
        upper: Option<(Expr, bool)>,
    },
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER and CROSS.
    Inner,
    /// LEFT OUTER.
    Left,
    /// RIGHT OUTER.
    Right,
    /// FULL OUTER.
    Full,
    /// Semi join: left rows with a match (EXISTS / IN).
    Semi,
    /// Anti join: left rows without a match (NOT EXISTS).
    Anti,
}

/// A set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpKind {
    /// UNION.
    Union,
    /// INTERSECT.
    Intersect,
    /// EXCEPT.
    Except,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The expression sorted on.
    pub expr: Expr,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST (PostgreSQL's default: first for DESC, last for ASC).
    pub nulls_first: bool,
}

/// A logical plan node.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Reads a table. Outputs every column of the table in declaration
    /// order; columns not in `needed` are left NULL and never decoded.
    Scan {
        /// The table.
        table: Arc<TableDesc>,
        /// Which column positions the query reads.
        needed: Vec<bool>,
        /// A filter evaluated on each row as it is read.
        filter: Option<Expr>,
        /// The access path.
        access: Access,
        /// Stop after this many rows (pushed-down LIMIT, no filter).
        limit: Option<u64>,
    },
    /// Literal rows.
    Values {
        /// Row expressions (no input columns).
        rows: Vec<Vec<Expr>>,
        /// Columns per row.
        width: usize,
    },
    /// Rows from `generate_series(start, stop[, step])`.
    GenerateSeries {
        /// Start, stop and step expressions.
        args: Vec<Expr>,
        /// The element type.
        ty: DataType,
    },
    /// Keeps the rows for which the predicate is true.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        predicate: Expr,
    },
    /// Computes new columns.
    Project {
        /// Input.
        input: Box<Plan>,
        /// Output expressions.
        exprs: Vec<Expr>,
    },
    /// Set-returning functions in a select list (`unnest(indkey)`, `generate_subscripts(..)`):
    /// each input row followed by one column per function, repeated as many times as the
    /// longest function's result has elements (the shorter ones padded with NULL), and no row
    /// when every result is empty.
    ProjectSet {
        /// Input.
        input: Box<Plan>,
        /// Each function's result as an array over the input row.
        srfs: Vec<Expr>,
    },
    /// Window functions: each input row followed by one column per call. Only `row_number()`
    /// so far: the row's position in its partition in the call's order.
    Window {
        /// Input.
        input: Box<Plan>,
        /// Each call's PARTITION BY expressions and ORDER BY keys, over the input row.
        calls: Vec<(Vec<Expr>, Vec<SortKey>)>,
    },
    /// Groups and aggregates: outputs the group keys then the aggregates.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// Grouping expressions.
        group_by: Vec<Expr>,
        /// Aggregate calls.
        aggs: Vec<AggCall>,
    },
    /// Sorts.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys, most significant first.
        keys: Vec<SortKey>,
    },
    /// LIMIT / OFFSET.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Row limit.
        limit: Option<Expr>,
        /// Rows skipped first.
        offset: Option<Expr>,
    },
    /// Removes duplicate rows.
    Distinct {
        /// Input.
        input: Box<Plan>,
        /// DISTINCT ON: keep the first row per value of these (None = whole row).
        on: Option<Vec<Expr>>,
    },
    /// A join; the output is the left row followed by the right row (semi
    /// and anti joins output the left row only).
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// The kind.
        kind: JoinKind,
        /// Equality keys: (left expression, right expression), each over its
        /// own side's row. Non-empty means a hash join.
        equi: Vec<(Expr, Expr)>,
        /// Any remaining condition over the combined row.
        on: Option<Expr>,
        /// Left and right widths.
        widths: (usize, usize),
    },
    /// UNION / INTERSECT / EXCEPT.
    SetOp {
        /// The operation.
        kind: SetOpKind,
        /// ALL keeps duplicates.
        all: bool,
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
    },
    /// Inserts the input rows (full table width, declaration order).
    Insert {
        /// The table.
        table: Arc<TableDesc>,
        /// The rows.
        input: Box<Plan>,
        /// RETURNING expressions over the inserted row.
        returning: Option<Vec<Expr>>,
        /// ON CONFLICT DO NOTHING.
        on_conflict_do_nothing: bool,
    },
    /// Updates the input rows (a scan of the table, possibly joined).
    Update {
        /// The table.
        table: Arc<TableDesc>,
        /// Rows whose first columns are the table's current row.
        input: Box<Plan>,
        /// (column position, new value over the input row).
        assignments: Vec<(usize, Expr)>,
        /// RETURNING expressions over the new row.
        returning: Option<Vec<Expr>>,
    },
    /// Deletes the input rows.
    Delete {
        /// The table.
        table: Arc<TableDesc>,
        /// Rows whose first columns are the table's row.
        input: Box<Plan>,
        /// RETURNING expressions over the deleted row.
        returning: Option<Vec<Expr>>,
    },
}

impl Plan {
    /// Renders the plan as EXPLAIN prints it, one line per node.
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.explain_into(0, &mut lines);
        lines
    }

    fn explain_into(&self, depth: usize, out: &mut Vec<String>) {
        let pad = if depth == 0 {
            String::new()
        } else {
            format!("{}->  ", "  ".repeat(depth * 2 - 1))
        };
        let mut line = pad;
        let children: Vec<&Plan> = match self {
            Plan::Scan {
                table,
                filter,
                access,
                limit,
                ..
            } => {
                match access {
                    Access::Full => write!(line, "Seq Scan on {}", table.name).unwrap(),
                    Access::PointGet(_) => {
                        write!(line, "Point Get on {} (primary key)", table.name).unwrap()
                    }
                    Access::PointGets(keys) => write!(
                        line,
                        "Point Get on {} (primary key, {} values)",
                        table.name,
                        keys.len()
                    )
                    .unwrap(),
                    Access::Range {
                        index,
                        eq,
                        lower,
                        upper,
                    } => {
                        let name = index
                            .as_ref()
                            .map(|i| i.name.clone())
                            .unwrap_or_else(|| "primary key".into());
                        write!(
                            line,
                            "Index Scan using {} on {} (eq: {}, range: {})",
                            name,
                            table.name,
                            eq.len(),
                            match (lower, upper) {
                                (None, None) => "none",
                                (Some(_), None) => "lower",
                                (None, Some(_)) => "upper",
                                (Some(_), Some(_)) => "both",
                            }
                        )
                        .unwrap()
                    }
                }
                if filter.is_some() {
                    line.push_str(" with filter");
                }
                if let Some(l) = limit {
                    write!(line, " limit {l}").unwrap();
                }
                vec![]
            }
            Plan::Values { rows, .. } => {
                write!(line, "Values ({} rows)", rows.len()).unwrap();
                vec![]
            }
            Plan::GenerateSeries { .. } => {
                line.push_str("Function Scan on generate_series");
                vec![]
            }
            Plan::Filter { input, .. } => {
                line.push_str("Filter");
                vec![input]
            }
            Plan::Project { input, exprs } => {
                write!(line, "Project ({} columns)", exprs.len()).unwrap();
                vec![input]
            }
            Plan::ProjectSet { input, srfs } => {
                write!(line, "ProjectSet ({} functions)", srfs.len()).unwrap();
                vec![input]
            }
            Plan::Window { input, calls } => {
                write!(line, "WindowAgg ({} functions)", calls.len()).unwrap();
                vec![input]
            }
            Plan::Aggregate {
                input,
                group_by,
                aggs,
            } => {
                if group_by.is_empty() {
                    write!(line, "Aggregate ({} aggregates)", aggs.len()).unwrap();
                } else {
                    write!(
                        line,
                        "HashAggregate ({} keys, {} aggregates)",
                        group_by.len(),
                        aggs.len()
                    )
                    .unwrap();
                }
                vec![input]
            }
            Plan::Sort { input, keys } => {
                write!(line, "Sort ({} keys)", keys.len()).unwrap();
                vec![input]
            }
            Plan::Limit { input, .. } => {
                line.push_str("Limit");
                vec![input]
            }
            Plan::Distinct { input, .. } => {
                line.push_str("HashDistinct");
                vec![input]
            }
            Plan::Join {
                left,
                right,
                kind,
                equi,
                ..
            } => {
                let k = match kind {
                    JoinKind::Inner => "Inner",
                    JoinKind::Left => "Left",
                    JoinKind::Right => "Right",
                    JoinKind::Full => "Full",
                    JoinKind::Semi => "Semi",
                    JoinKind::Anti => "Anti",
                };
                if equi.is_empty() {
                    write!(line, "Nested Loop {k} Join").unwrap();
                } else {
                    write!(line, "Hash {k} Join ({} keys)", equi.len()).unwrap();
                }
                vec![left, right]
            }
            Plan::SetOp {
                kind,
                all,
                left,
                right,
            } => {
                write!(line, "{:?}{}", kind, if *all { " All" } else { "" }).unwrap();
                vec![left, right]
            }
            Plan::Insert { table, input, .. } => {
                write!(line, "Insert on {}", table.name).unwrap();
                vec![input]
            }
            Plan::Update { table, input, .. } => {
                write!(line, "Update on {}", table.name).unwrap();
                vec![input]
            }
            Plan::Delete { table, input, .. } => {
                write!(line, "Delete on {}", table.name).unwrap();
                vec![input]
            }
        };
        out.push(line);
        for c in children {
            c.explain_into(depth + 1, out);
        }
    }
}
