//! Bound scalar expressions and their evaluation.
//!
//! The binder turns parser expressions into [`Expr`], where column
//! references are positions in the input row, so evaluation never looks a
//! name up. Subqueries hold their own bound plan and run through the
//! executor with the current row pushed as their outer row.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::{sqlstate, Result, SqlError};
use crate::exec::ExecContext;
use crate::plan::Plan;
use crate::types::cast;
use crate::types::functions;
use crate::types::ops::{self, BinaryOp, UnaryOp};
use crate::types::{DataType, Value};

/// A bound plan used by a subquery expression; compared by identity.
#[derive(Debug, Clone)]
pub struct SubPlan {
    /// The subquery's plan.
    pub plan: Arc<Plan>,
    /// True when the plan refers to an enclosing query's row.
    pub correlated: bool,
    /// Identifies the subquery within its statement (cache key).
    pub id: usize,
    /// The enclosing query's columns the plan reads (its own and its nested subqueries'
    /// references one level up), sorted.
    pub outer_cols: Vec<usize>,
    /// Where each enclosing column is found in the row the subquery is evaluated on, when that
    /// row is not the enclosing query's FROM row: an aggregate query's output holds its group
    /// keys, so `remap[column] = Some(position of that key)`.
    pub remap: Option<Arc<Vec<Option<usize>>>>,
}

impl PartialEq for SubPlan {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan)
    }
}

/// What a subquery expression computes.
#[derive(Debug, Clone, PartialEq)]
pub enum SubqueryKind {
    /// `(SELECT x ...)`: the single value, NULL for no rows, error for more.
    Scalar,
    /// `EXISTS (...)`.
    Exists,
    /// `ARRAY(SELECT ...)`: the first column of every row, as an array.
    Array,
    /// `x IN (SELECT ...)`, or `x op ANY (SELECT ...)` with `op`.
    Any(Box<Expr>, BinaryOp),
    /// `x op ALL (SELECT ...)`.
    All(Box<Expr>, BinaryOp),
}

/// The clock a time function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFunc {
    /// `now()`, `current_timestamp`, `transaction_timestamp()`.
    TxnTimestamp,
    /// `statement_timestamp()`.
    StatementTimestamp,
    /// `clock_timestamp()`.
    ClockTimestamp,
    /// `current_date`.
    CurrentDate,
    /// `localtimestamp`.
    LocalTimestamp,
}

/// Functions that need the session (sequences, settings).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionFunc {
    /// `nextval(seq)`.
    Nextval(u32),
    /// `currval(seq)`.
    Currval(u32),
    /// `setval(seq, v [, is_called])`.
    Setval(u32),
    /// `lastval()`.
    Lastval,
    /// `current_setting(name)`.
    CurrentSetting,
    /// `pg_sleep(seconds)`: waits, unless the statement is cancelled or times out first.
    Sleep,
}

/// A bound scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The input row's column at this position.
    Column(usize),
    /// A column of an enclosing query's row: `depth` 1 is the nearest.
    Outer {
        /// How many query levels out.
        depth: usize,
        /// The column's position in that row.
        index: usize,
    },
    /// A constant.
    Literal(Value),
    /// A statement parameter `$n`, 0-based, converted to the given type.
    Param(usize, DataType),
    /// A unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operator; AND and OR use three-valued logic.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A cast to a type.
    Cast(Box<Expr>, DataType),
    /// An assignment cast (INSERT/UPDATE): too-long strings are errors.
    AssignCast(Box<Expr>, DataType),
    /// A built-in scalar function by name.
    Func(String, Vec<Expr>),
    /// A time function.
    Time(TimeFunc),
    /// A function that needs the session.
    Session(SessionFunc, Vec<Expr>),
    /// `CASE [operand] WHEN .. THEN .. ELSE .. END`.
    Case {
        /// The simple-CASE operand.
        operand: Option<Box<Expr>>,
        /// Conditions (or operand values) and results.
        whens: Vec<(Expr, Expr)>,
        /// The ELSE result.
        otherwise: Option<Box<Expr>>,
    },
    /// `COALESCE(..)`.
    Coalesce(Vec<Expr>),
    /// `NULLIF(a, b)`.
    NullIf(Box<Expr>, Box<Expr>),
    /// `GREATEST(..)` (true) or `LEAST(..)` (false).
    Extreme(bool, Vec<Expr>),
    /// `x [NOT] IN (list)`.
    InList {
        /// The tested value.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// NOT IN.
        negated: bool,
    },
    /// `x IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `x IS [NOT] TRUE/FALSE/UNKNOWN`: (expr, tested value (None = unknown), negated).
    IsBool(Box<Expr>, Option<bool>, bool),
    /// `a IS [NOT] DISTINCT FROM b`.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `x [NOT] [I]LIKE pattern [ESCAPE e]`.
    Like {
        /// The string.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// The escape character, if given.
        escape: Option<Box<Expr>>,
        /// NOT LIKE.
        negated: bool,
        /// ILIKE.
        case_insensitive: bool,
    },
    /// A subquery expression.
    Subquery(SubqueryKind, SubPlan, bool),
}

impl Expr {
    /// A literal boolean.
    pub fn bool(b: bool) -> Expr {
        Expr::Literal(Value::Bool(b))
    }

    /// Calls `f` on every direct child.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(_)
            | Expr::Outer { .. }
            | Expr::Literal(_)
            | Expr::Param(..)
            | Expr::Time(_) => {
                vec![]
            }
            Expr::Unary(_, e)
            | Expr::Cast(e, _)
            | Expr::AssignCast(e, _)
            | Expr::IsNull(e, _)
            | Expr::IsBool(e, _, _) => vec![e],
            Expr::Binary(_, a, b) | Expr::NullIf(a, b) | Expr::IsDistinct(a, b, _) => vec![a, b],
            Expr::Func(_, args)
            | Expr::Session(_, args)
            | Expr::Coalesce(args)
            | Expr::Extreme(_, args) => args.iter().collect(),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let mut v: Vec<&Expr> = operand.iter().map(|b| &**b).collect();
                for (w, t) in whens {
                    v.push(w);
                    v.push(t);
                }
                v.extend(otherwise.iter().map(|b| &**b));
                v
            }
            Expr::InList { expr, list, .. } => {
                let mut v = vec![&**expr];
                v.extend(list.iter());
                v
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                ..
            } => {
                let mut v = vec![&**expr, &**pattern];
                v.extend(escape.iter().map(|b| &**b));
                v
            }
            Expr::Subquery(kind, _, _) => match kind {
                SubqueryKind::Any(e, _) | SubqueryKind::All(e, _) => vec![e],
                _ => vec![],
            },
        }
    }

    /// Rewrites the tree bottom-up with `f`.
    pub fn transform(self, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        let e = match self {
            Expr::Unary(op, e) => Expr::Unary(op, Box::new(e.transform(f)?)),
            Expr::Binary(op, a, b) => {
                Expr::Binary(op, Box::new(a.transform(f)?), Box::new(b.transform(f)?))
            }
            Expr::Cast(e, t) => Expr::Cast(Box::new(e.transform(f)?), t),
            Expr::AssignCast(e, t) => Expr::AssignCast(Box::new(e.transform(f)?), t),
            Expr::Func(n, args) => Expr::Func(n, transform_all(args, f)?),
            Expr::Session(k, args) => Expr::Session(k, transform_all(args, f)?),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: match operand {
                    Some(o) => Some(Box::new(o.transform(f)?)),
                    None => None,
                },
                whens: whens
                    .into_iter()
                    .map(|(w, t)| Ok((w.transform(f)?, t.transform(f)?)))
                    .collect::<Result<_>>()?,
                otherwise: match otherwise {
                    Some(o) => Some(Box::new(o.transform(f)?)),
                    None => None,
                },
            },
            Expr::Coalesce(args) => Expr::Coalesce(transform_all(args, f)?),
            Expr::NullIf(a, b) => {
                Expr::NullIf(Box::new(a.transform(f)?), Box::new(b.transform(f)?))
            }
            Expr::Extreme(g, args) => Expr::Extreme(g, transform_all(args, f)?),
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: Box::new(expr.transform(f)?),
                list: transform_all(list, f)?,
                negated,
            },
            Expr::IsNull(e, n) => Expr::IsNull(Box::new(e.transform(f)?), n),
            Expr::IsBool(e, v, n) => Expr::IsBool(Box::new(e.transform(f)?), v, n),
            Expr::IsDistinct(a, b, n) => {
                Expr::IsDistinct(Box::new(a.transform(f)?), Box::new(b.transform(f)?), n)
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: Box::new(expr.transform(f)?),
                pattern: Box::new(pattern.transform(f)?),
                escape: match escape {
                    Some(e) => Some(Box::new(e.transform(f)?)),
                    None => None,
                },
                negated,
                case_insensitive,
            },
            Expr::Subquery(kind, plan, neg) => {
                let kind = match kind {
                    SubqueryKind::Any(e, op) => SubqueryKind::Any(Box::new(e.transform(f)?), op),
                    SubqueryKind::All(e, op) => SubqueryKind::All(Box::new(e.transform(f)?), op),
                    k => k,
                };
                Expr::Subquery(kind, plan, neg)
            }
            leaf => leaf,
        };
        f(e)
    }

    /// True if `pred` holds for this node or any node below it.
    pub fn any(&self, pred: &mut dyn FnMut(&Expr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        self.children().into_iter().any(|c| c.any(pred))
    }

    /// The input columns the expression reads.
    pub fn columns(&self, out: &mut Vec<usize>) {
        if let Expr::Column(i) = self {
            out.push(*i);
        }
        for c in self.children() {
            c.columns(out);
        }
    }

    /// True if the expression reads no input column, outer row, parameter
    /// or volatile function, so it can be folded once.
    pub fn is_constant(&self) -> bool {
        !self.any(&mut |e| {
            matches!(
                e,
                Expr::Column(_)
                    | Expr::Outer { .. }
                    | Expr::Param(..)
                    | Expr::Session(..)
                    | Expr::Time(_)
                    | Expr::Subquery(..)
            ) || matches!(e, Expr::Func(name, _) if name == "random" || name.starts_with(['\u{0}', '\u{1}']))
        })
    }

    /// True if the expression refers to an enclosing query.
    pub fn has_outer(&self) -> bool {
        self.any(&mut |e| {
            matches!(e, Expr::Outer { .. }) || matches!(e, Expr::Subquery(_, p, _) if p.correlated)
        })
    }

    /// Shifts column references by `delta` (used when moving an expression
    /// over a join's right side).
    pub fn shift_columns(self, delta: isize) -> Expr {
        self.transform(&mut |e| {
            Ok(match e {
                Expr::Column(i) => Expr::Column((i as isize + delta) as usize),
                e => e,
            })
        })
        .expect("shifting never fails")
    }

    /// Evaluates the expression against a row.
    pub fn eval(&self, row: &[Value], ctx: &ExecContext) -> Result<Value> {
        match self {
            Expr::Column(i) => Ok(row[*i].clone()),
            Expr::Outer { depth, index } => ctx.outer_value(*depth, *index),
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Param(i, ty) => {
                let v = ctx.params.get(*i).cloned().ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_PARAMETER,
                        format!("there is no parameter ${}", i + 1),
                    )
                })?;
                if v.is_null() || *ty == DataType::Unknown || v.data_type() == *ty {
                    Ok(v)
                } else {
                    cast::cast(v, ty)
                }
            }
            Expr::Unary(op, e) => ops::eval_unary(*op, &e.eval(row, ctx)?),
            Expr::Binary(BinaryOp::And, a, b) => {
                let l = a.eval(row, ctx)?;
                if l == Value::Bool(false) {
                    return Ok(l);
                }
                let r = b.eval(row, ctx)?;
                Ok(match (l, r) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                })
            }
            Expr::Binary(BinaryOp::Or, a, b) => {
                let l = a.eval(row, ctx)?;
                if l == Value::Bool(true) {
                    return Ok(l);
                }
                let r = b.eval(row, ctx)?;
                Ok(match (l, r) {
                    (_, Value::Bool(true)) => Value::Bool(true),
                    (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                    _ => Value::Null,
                })
            }
            Expr::Binary(op, a, b) => {
                let l = a.eval(row, ctx)?;
                let r = b.eval(row, ctx)?;
                ops::eval_binary(*op, &l, &r)
            }
            Expr::Cast(e, ty) => cast::cast(e.eval(row, ctx)?, ty),
            Expr::AssignCast(e, ty) => cast::assignment_cast(e.eval(row, ctx)?, ty),
            Expr::Func(name, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval(row, ctx)?);
                }
                functions::eval_scalar(name, &vals)
            }
            Expr::Time(f) => Ok(ctx.time(*f)),
            Expr::Session(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval(row, ctx)?);
                }
                ctx.session_func(f, &vals)
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = match operand {
                    Some(o) => Some(o.eval(row, ctx)?),
                    None => None,
                };
                for (w, t) in whens {
                    let wv = w.eval(row, ctx)?;
                    let hit = match &op {
                        Some(o) => ops::compare_values(o, &wv) == Some(Ordering::Equal),
                        None => wv == Value::Bool(true),
                    };
                    if hit {
                        return t.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, ctx),
                    None => Ok(Value::Null),
                }
            }
            Expr::Coalesce(args) => {
                for a in args {
                    let v = a.eval(row, ctx)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(Value::Null)
            }
            Expr::NullIf(a, b) => {
                let l = a.eval(row, ctx)?;
                let r = b.eval(row, ctx)?;
                if ops::compare_values(&l, &r) == Some(Ordering::Equal) {
                    Ok(Value::Null)
                } else {
                    Ok(l)
                }
            }
            Expr::Extreme(greatest, args) => {
                let mut best = Value::Null;
                for a in args {
                    let v = a.eval(row, ctx)?;
                    if v.is_null() {
                        continue;
                    }
                    let better = match ops::compare_values(&v, &best) {
                        None => true,
                        Some(o) => (o == Ordering::Greater) == *greatest && o != Ordering::Equal,
                    };
                    if better {
                        best = v;
                    }
                }
                Ok(best)
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let v = expr.eval(row, ctx)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let c = item.eval(row, ctx)?;
                    match ops::compare_values(&v, &c) {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                })
            }
            Expr::IsNull(e, negated) => Ok(Value::Bool(e.eval(row, ctx)?.is_null() != *negated)),
            Expr::IsBool(e, want, negated) => {
                let v = e.eval(row, ctx)?;
                let is = match (want, &v) {
                    (None, Value::Null) => true,
                    (Some(b), Value::Bool(x)) => b == x,
                    _ => false,
                };
                Ok(Value::Bool(is != *negated))
            }
            Expr::IsDistinct(a, b, negated) => {
                let l = a.eval(row, ctx)?;
                let r = b.eval(row, ctx)?;
                let distinct = match (l.is_null(), r.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    _ => ops::compare_values(&l, &r) != Some(Ordering::Equal),
                };
                Ok(Value::Bool(distinct != *negated))
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                negated,
                case_insensitive,
            } => {
                let s = expr.eval(row, ctx)?;
                let p = pattern.eval(row, ctx)?;
                let esc = match escape {
                    Some(e) => e.eval(row, ctx)?,
                    None => Value::Text("\\".into()),
                };
                let (s, p) = match (s, p) {
                    (Value::Text(s), Value::Text(p)) => (s, p),
                    (Value::Null, _) | (_, Value::Null) => return Ok(Value::Null),
                    (s, p) => (as_text(&s), as_text(&p)),
                };
                let esc = match esc {
                    Value::Null => return Ok(Value::Null),
                    Value::Text(t) => {
                        let mut chars = t.chars();
                        match (chars.next(), chars.next()) {
                            (None, _) => None,
                            (Some(c), None) => Some(c),
                            _ => {
                                return Err(SqlError::new(
                                    sqlstate::INVALID_ESCAPE_SEQUENCE,
                                    "invalid escape string",
                                )
                                .with_hint("Escape string must be empty or one character."))
                            }
                        }
                    }
                    _ => Some('\\'),
                };
                let m = ops::like_match(&s, &p, esc, *case_insensitive)?;
                Ok(Value::Bool(m != *negated))
            }
            Expr::Subquery(kind, sub, negated) => {
                let v = eval_subquery(kind, sub, row, ctx)?;
                if *negated {
                    Ok(match v {
                        Value::Bool(b) => Value::Bool(!b),
                        other => other,
                    })
                } else {
                    Ok(v)
                }
            }
        }
    }

    /// Evaluates a predicate: true only for TRUE (NULL and FALSE reject).
    pub fn eval_pred(&self, row: &[Value], ctx: &ExecContext) -> Result<bool> {
        match self.eval(row, ctx)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => Err(SqlError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "argument of WHERE must be type boolean, not type {}",
                    other.data_type()
                ),
            )),
        }
    }
}

fn transform_all(v: Vec<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Vec<Expr>> {
    v.into_iter().map(|e| e.transform(f)).collect()
}

fn as_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => crate::types::text::format_text(other),
    }
}

fn eval_subquery(
    kind: &SubqueryKind,
    sub: &SubPlan,
    row: &[Value],
    ctx: &ExecContext,
) -> Result<Value> {
    let rows = ctx.run_subquery(sub, row)?;
    match kind {
        SubqueryKind::Scalar => match rows.len() {
            0 => Ok(Value::Null),
            1 => Ok(rows[0].first().cloned().unwrap_or(Value::Null)),
            _ => Err(SqlError::new(
                sqlstate::CARDINALITY_VIOLATION,
                "more than one row returned by a subquery used as an expression",
            )),
        },
        SubqueryKind::Exists => Ok(Value::Bool(!rows.is_empty())),
        SubqueryKind::Array => Ok(Value::Array(
            rows.iter()
                .map(|r| r.first().cloned().unwrap_or(Value::Null))
                .collect(),
        )),
        SubqueryKind::Any(e, op) => {
            let v = e.eval(row, ctx)?;
            let mut saw_null = false;
            for r in rows.iter() {
                match ops::eval_binary(*op, &v, &r[0])? {
                    Value::Bool(true) => return Ok(Value::Bool(true)),
                    Value::Null => saw_null = true,
                    _ => {}
                }
            }
            Ok(if saw_null {
                Value::Null
            } else {
                Value::Bool(false)
            })
        }
        SubqueryKind::All(e, op) => {
            let v = e.eval(row, ctx)?;
            let mut saw_null = false;
            for r in rows.iter() {
                match ops::eval_binary(*op, &v, &r[0])? {
                    Value::Bool(false) => return Ok(Value::Bool(false)),
                    Value::Null => saw_null = true,
                    _ => {}
                }
            }
            Ok(if saw_null {
                Value::Null
            } else {
                Value::Bool(true)
            })
        }
    }
}

/// Splits a predicate into its AND-ed conjuncts.
pub fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary(BinaryOp::And, a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        e => out.push(e),
    }
}

/// Joins conjuncts back with AND; `None` for an empty list.
pub fn conjoin(mut preds: Vec<Expr>) -> Option<Expr> {
    let first = if preds.is_empty() {
        return None;
    } else {
        preds.remove(0)
    };
    Some(preds.into_iter().fold(first, |acc, p| {
        Expr::Binary(BinaryOp::And, Box::new(acc), Box::new(p))
    }))
}
