//! The rule-based optimizer.
//!
//! Rules, in order: predicate pushdown (through joins into scans), join
//! strategy (equality conditions become hash-join keys), access-path
//! selection (point gets and index ranges from equality and range
//! predicates on key columns), limit pushdown into scans, and column
//! pruning (scans decode only the columns the query reads).

use std::sync::Arc;

use crate::catalog::TableDesc;
use crate::error::Result;
use crate::expr::{conjoin, conjuncts, Expr};
use crate::plan::{Access, JoinKind, Plan};
use crate::types::ops::BinaryOp;
use crate::types::{DataType, Value};

/// Optimizes a bound plan.
pub fn optimize(plan: Plan) -> Result<Plan> {
    let plan = push_down(plan)?;
    let plan = choose_access(plan);
    let plan = push_limit(plan);
    let width = output_width(&plan);
    Ok(prune(plan, &vec![true; width]))
}

/// The number of columns a plan outputs.
pub fn output_width(plan: &Plan) -> usize {
    match plan {
        Plan::Scan { table, .. } => table.columns.len(),
        Plan::Values { width, .. } => *width,
        Plan::GenerateSeries { .. } => 1,
        Plan::Filter { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Limit { input, .. }
        | Plan::Distinct { input, .. } => output_width(input),
        Plan::Project { exprs, .. } => exprs.len(),
        Plan::ProjectSet { input, srfs } => output_width(input) + srfs.len(),
        Plan::Window { input, calls } => output_width(input) + calls.len(),
        Plan::Aggregate { group_by, aggs, .. } => group_by.len() + aggs.len(),
        Plan::Join { kind, widths, .. } => match kind {
            JoinKind::Semi | JoinKind::Anti => widths.0,
            _ => widths.0 + widths.1,
        },
        Plan::SetOp { left, .. } => output_width(left),
        Plan::Insert { returning, .. }
        | Plan::Update { returning, .. }
        | Plan::Delete { returning, .. } => returning.as_ref().map(|r| r.len()).unwrap_or(0),
    }
}

/// True if a predicate may move to another row context: it must not hold
/// correlated subqueries, whose outer references are positions in the row
/// they are evaluated on.
fn movable(e: &Expr) -> bool {
    !e.any(&mut |x| matches!(x, Expr::Subquery(_, p, _) if p.correlated))
}

fn max_col(e: &Expr) -> Option<usize> {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    cols.into_iter().max()
}

fn min_col(e: &Expr) -> Option<usize> {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    cols.into_iter().min()
}

fn push_down(plan: Plan) -> Result<Plan> {
    match plan {
        Plan::Filter { input, predicate } => {
            let input = push_down(*input)?;
            let mut preds = Vec::new();
            conjuncts(predicate, &mut preds);
            Ok(apply_filters(input, preds))
        }
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } => {
            let left = push_down(*left)?;
            let right = push_down(*right)?;
            let join = Plan::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                equi,
                on: None,
                widths,
            };
            let mut preds = Vec::new();
            if let Some(on) = on {
                conjuncts(on, &mut preds);
            }
            Ok(place_join_conditions(join, preds))
        }
        other => map_children(other, &mut |c| push_down(c)),
    }
}

/// Places WHERE conjuncts on top of `input`, pushing each as deep as it may go.
fn apply_filters(input: Plan, preds: Vec<Expr>) -> Plan {
    if preds.is_empty() {
        return input;
    }
    match input {
        Plan::Scan {
            table,
            needed,
            filter,
            access,
            limit: None,
        } => {
            let mut all = Vec::new();
            if let Some(f) = filter {
                conjuncts(f, &mut all);
            }
            all.extend(preds);
            Plan::Scan {
                table,
                needed,
                filter: conjoin(all),
                access,
                limit: None,
            }
        }
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } if kind == JoinKind::Inner => {
            let mut cond = Vec::new();
            if let Some(on) = on {
                conjuncts(on, &mut cond);
            }
            for (l, r) in equi {
                cond.push(Expr::Binary(
                    BinaryOp::Eq,
                    Box::new(l),
                    Box::new(r.shift_columns(widths.0 as isize)),
                ));
            }
            cond.extend(preds);
            let join = Plan::Join {
                left,
                right,
                kind,
                equi: vec![],
                on: None,
                widths,
            };
            place_join_conditions(join, cond)
        }
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } if matches!(kind, JoinKind::Left | JoinKind::Semi | JoinKind::Anti) => {
            // Conditions on the preserved (left) side go below the join.
            let (to_left, rest): (Vec<Expr>, Vec<Expr>) = preds
                .into_iter()
                .partition(|p| movable(p) && max_col(p).map(|m| m < widths.0).unwrap_or(false));
            let left = apply_filters(*left, to_left);
            let join = Plan::Join {
                left: Box::new(left),
                right,
                kind,
                equi,
                on,
                widths,
            };
            wrap_filter(join, rest)
        }
        Plan::Join {
            left,
            right,
            kind: JoinKind::Right,
            equi,
            on,
            widths,
        } => {
            let (to_right, rest): (Vec<Expr>, Vec<Expr>) = preds
                .into_iter()
                .partition(|p| movable(p) && min_col(p).map(|m| m >= widths.0).unwrap_or(false));
            let to_right = to_right
                .into_iter()
                .map(|p| p.shift_columns(-(widths.0 as isize)))
                .collect();
            let right = apply_filters(*right, to_right);
            let join = Plan::Join {
                left,
                right: Box::new(right),
                kind: JoinKind::Right,
                equi,
                on,
                widths,
            };
            wrap_filter(join, rest)
        }
        other => wrap_filter(other, preds),
    }
}

fn wrap_filter(input: Plan, preds: Vec<Expr>) -> Plan {
    match conjoin(preds) {
        Some(p) => Plan::Filter {
            input: Box::new(input),
            predicate: p,
        },
        None => input,
    }
}

/// Distributes a join's conditions: single-side conjuncts go below the join
/// where the join kind allows, equalities between the sides become hash
/// keys, the rest stays as the join condition.
fn place_join_conditions(join: Plan, preds: Vec<Expr>) -> Plan {
    let Plan::Join {
        left,
        right,
        kind,
        mut equi,
        on,
        widths,
    } = join
    else {
        unreachable!()
    };
    let lw = widths.0;
    let mut to_left = Vec::new();
    let mut to_right = Vec::new();
    let mut rest = Vec::new();
    if let Some(on) = on {
        conjuncts(on, &mut rest);
    }
    for p in preds {
        let lo = min_col(&p);
        let hi = max_col(&p);
        let only_left = hi.map(|h| h < lw).unwrap_or(false);
        let only_right = lo.map(|l| l >= lw).unwrap_or(false);
        let can_left = matches!(
            kind,
            JoinKind::Inner | JoinKind::Right | JoinKind::Semi | JoinKind::Anti
        ) && kind != JoinKind::Anti;
        let can_right = matches!(
            kind,
            JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti
        );
        if movable(&p) && only_left && can_left {
            to_left.push(p);
        } else if movable(&p) && only_right && can_right {
            to_right.push(p.shift_columns(-(lw as isize)));
        } else if let Some((l, r)) = equi_pair(&p, lw) {
            equi.push((l, r));
        } else {
            rest.push(p);
        }
    }
    let left = apply_filters(*left, to_left);
    let right = apply_filters(*right, to_right);
    Plan::Join {
        left: Box::new(left),
        right: Box::new(right),
        kind,
        equi,
        on: conjoin(rest),
        widths,
    }
}

/// `l = r` with one side over the left input and the other over the right:
/// returns (left expression, right expression shifted to the right row).
fn equi_pair(p: &Expr, lw: usize) -> Option<(Expr, Expr)> {
    if !movable(p) {
        return None;
    }
    if let Expr::Binary(BinaryOp::Eq, a, b) = p {
        let (alo, ahi) = (min_col(a)?, max_col(a)?);
        let (blo, bhi) = (min_col(b)?, max_col(b)?);
        if ahi < lw && blo >= lw {
            return Some(((**a).clone(), (**b).clone().shift_columns(-(lw as isize))));
        }
        if bhi < lw && alo >= lw {
            return Some(((**b).clone(), (**a).clone().shift_columns(-(lw as isize))));
        }
    }
    None
}

fn map_children(plan: Plan, f: &mut dyn FnMut(Plan) -> Result<Plan>) -> Result<Plan> {
    Ok(match plan {
        Plan::Filter { input, predicate } => Plan::Filter {
            input: Box::new(f(*input)?),
            predicate,
        },
        Plan::Project { input, exprs } => Plan::Project {
            input: Box::new(f(*input)?),
            exprs,
        },
        Plan::ProjectSet { input, srfs } => Plan::ProjectSet {
            input: Box::new(f(*input)?),
            srfs,
        },
        Plan::Window { input, calls } => Plan::Window {
            input: Box::new(f(*input)?),
            calls,
        },
        Plan::Aggregate {
            input,
            group_by,
            aggs,
        } => Plan::Aggregate {
            input: Box::new(f(*input)?),
            group_by,
            aggs,
        },
        Plan::Sort { input, keys } => Plan::Sort {
            input: Box::new(f(*input)?),
            keys,
        },
        Plan::Limit {
            input,
            limit,
            offset,
        } => Plan::Limit {
            input: Box::new(f(*input)?),
            limit,
            offset,
        },
        Plan::Distinct { input, on } => Plan::Distinct {
            input: Box::new(f(*input)?),
            on,
        },
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } => Plan::Join {
            left: Box::new(f(*left)?),
            right: Box::new(f(*right)?),
            kind,
            equi,
            on,
            widths,
        },
        Plan::SetOp {
            kind,
            all,
            left,
            right,
        } => Plan::SetOp {
            kind,
            all,
            left: Box::new(f(*left)?),
            right: Box::new(f(*right)?),
        },
        Plan::Insert {
            table,
            input,
            returning,
            on_conflict_do_nothing,
        } => Plan::Insert {
            table,
            input: Box::new(f(*input)?),
            returning,
            on_conflict_do_nothing,
        },
        Plan::Update {
            table,
            input,
            assignments,
            returning,
        } => Plan::Update {
            table,
            input: Box::new(f(*input)?),
            assignments,
            returning,
        },
        Plan::Delete {
            table,
            input,
            returning,
        } => Plan::Delete {
            table,
            input: Box::new(f(*input)?),
            returning,
        },
        leaf => leaf,
    })
}

/// True when a key value expression can be computed before the scan: no
/// input columns (literals, parameters and outer references are fine).
fn is_key_value(e: &Expr) -> bool {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    cols.is_empty()
        && movable(e)
        && !e.any(&mut |x| matches!(x, Expr::Subquery(..) | Expr::Session(..)))
}

/// True when values of type `vt` encode like keys of a column of type `ct`.
fn key_compatible(ct: DataType, vt: DataType) -> bool {
    if ct.is_integer() && vt.is_integer() {
        return true;
    }
    if ct.is_string() && vt.is_string() {
        // char(n) compares blank-insensitively; keep those as filters.
        return !matches!(ct, DataType::Char(_)) && !matches!(vt, DataType::Char(_));
    }
    ct.base() == vt.base() && ct != DataType::Unknown
}

fn expr_type(e: &Expr) -> Option<DataType> {
    match e {
        Expr::Literal(v) if !v.is_null() => Some(v.data_type()),
        Expr::Param(_, t) if *t != DataType::Unknown => Some(*t),
        Expr::Cast(_, t) | Expr::AssignCast(_, t) => Some(*t),
        _ => None,
    }
}

/// One conjunct as `column op value`, normalised so the column is on the left.
fn as_column_cmp(p: &Expr) -> Option<(usize, BinaryOp, Expr)> {
    if let Expr::Binary(op, a, b) = p {
        let flipped = match op {
            BinaryOp::Eq => BinaryOp::Eq,
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::LtEq => BinaryOp::GtEq,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::GtEq => BinaryOp::LtEq,
            _ => return None,
        };
        if let Expr::Column(c) = **a {
            if is_key_value(b) {
                return Some((c, *op, (**b).clone()));
            }
        }
        if let Expr::Column(c) = **b {
            if is_key_value(a) {
                return Some((c, flipped, (**a).clone()));
            }
        }
    }
    None
}

fn choose_access(plan: Plan) -> Plan {
    match plan {
        Plan::Scan {
            table,
            needed,
            filter: Some(filter),
            access: Access::Full,
            limit,
        } => {
            let mut preds = Vec::new();
            conjuncts(filter, &mut preds);
            let (access, rest) = pick_access(&table, preds);
            Plan::Scan {
                table,
                needed,
                filter: conjoin(rest),
                access,
                limit,
            }
        }
        other => map_children(other, &mut |c| Ok(choose_access(c)))
            .expect("access selection never fails"),
    }
}

/// Chooses the best access path for a table given its filter conjuncts;
/// returns it and the conjuncts still to evaluate per row. Conjuncts used as
/// key bounds stay in the filter too when the key comparison might be
/// looser than the predicate (never the case for exact equality).
fn pick_access(table: &Arc<TableDesc>, preds: Vec<Expr>) -> (Access, Vec<Expr>) {
    let cmps: Vec<Option<(usize, BinaryOp, Expr)>> = preds.iter().map(as_column_cmp).collect();
    let usable = |pos: usize, _op: BinaryOp, v: &Expr| -> bool {
        let ct = table.columns[pos].ty;
        // A value of unknown type (an outer reference) never bounds a key: its encoding
        // could not be checked against the column's.
        expr_type(v).is_some_and(|vt| key_compatible(ct, vt))
    };
    // Candidate key column lists: primary key first, then secondary indexes.
    let mut candidates: Vec<(Option<usize>, Vec<usize>)> = vec![(None, table.pk_positions())];
    // A write-only index is still being built: it may lack entries of older rows.
    for (i, idx) in table.indexes.iter().enumerate() {
        if idx.state != crate::catalog::IndexState::Public {
            continue;
        }
        let cols: Vec<usize> = idx
            .columns
            .iter()
            .filter_map(|c| table.column_pos(*c))
            .collect();
        candidates.push((Some(i), cols));
    }
    let mut best: Option<(usize, Access, Vec<usize>)> = None; // (score, access, used conjunct indexes)
    for (idx, cols) in candidates {
        let mut eq = Vec::new();
        let mut used = Vec::new();
        for col in &cols {
            let found = cmps.iter().enumerate().find(|(k, c)| {
                !used.contains(k)
                    && matches!(c, Some((p, BinaryOp::Eq, v)) if p == col && usable(*p, BinaryOp::Eq, v))
            });
            match found {
                Some((k, Some((_, _, v)))) => {
                    eq.push(v.clone());
                    used.push(k);
                }
                _ => break,
            }
        }
        let full_pk = idx.is_none() && eq.len() == cols.len() && !cols.is_empty();
        let mut lower = None;
        let mut upper = None;
        let mut range_used = Vec::new();
        if !full_pk && eq.len() < cols.len() {
            let next = cols[eq.len()];
            for (k, c) in cmps.iter().enumerate() {
                if let Some((p, op, v)) = c {
                    if *p != next || !usable(*p, *op, v) {
                        continue;
                    }
                    match op {
                        BinaryOp::Gt | BinaryOp::GtEq if lower.is_none() => {
                            lower = Some((v.clone(), *op == BinaryOp::GtEq));
                            range_used.push(k);
                        }
                        BinaryOp::Lt | BinaryOp::LtEq if upper.is_none() => {
                            upper = Some((v.clone(), *op == BinaryOp::LtEq));
                            range_used.push(k);
                        }
                        _ => {}
                    }
                }
            }
        }
        let score = if full_pk {
            1000
        } else {
            eq.len() * 10
                + if lower.is_some() { 3 } else { 0 }
                + if upper.is_some() { 3 } else { 0 }
        };
        if score == 0 {
            continue;
        }
        // A unique secondary index fully matched is nearly as good as the primary key.
        let score = match idx {
            Some(i) if table.indexes[i].unique && eq.len() == cols.len() => score + 50,
            Some(_) => score.saturating_sub(1),
            None => score,
        };
        let access = if full_pk {
            Access::PointGet(eq)
        } else {
            Access::Range {
                index: idx.map(|i| table.indexes[i].clone()),
                eq,
                lower,
                upper,
            }
        };
        // Range bounds are kept in the filter (NULL and type edge cases).
        let consumed: Vec<usize> = used;
        if best.as_ref().map(|(s, _, _)| score > *s).unwrap_or(true) {
            best = Some((score, access, consumed));
        }
        let _ = range_used;
    }
    // `pk IN (v1, v2, ..)` on a one-column primary key: a point get per value, unless an
    // equality already fixes the whole key. The IN stays in the filter.
    let pk = table.pk_positions();
    if best.as_ref().is_none_or(|(score, _, _)| *score < 1000) && pk.len() == 1 {
        let keys = preds.iter().find_map(|p| match p {
            Expr::InList {
                expr,
                list,
                negated: false,
            } if matches!(**expr, Expr::Column(c) if c == pk[0])
                && list.len() <= MAX_POINT_GETS
                && list.iter().all(|v| {
                    matches!(v, Expr::Literal(Value::Null))
                        || (is_key_value(v) && usable(pk[0], BinaryOp::Eq, v))
                }) =>
            {
                Some(list.clone())
            }
            _ => None,
        });
        if let Some(keys) = keys {
            return (Access::PointGets(keys), preds);
        }
    }
    match best {
        Some((_, access, consumed)) => {
            let rest = preds
                .into_iter()
                .enumerate()
                .filter(|(k, _)| !consumed.contains(k))
                .map(|(_, p)| p)
                .collect();
            (access, rest)
        }
        None => (Access::Full, preds),
    }
}

/// The longest IN list read as point gets; a longer one scans.
const MAX_POINT_GETS: usize = 1000;

fn const_limit(e: &Option<Expr>) -> Option<Option<u64>> {
    match e {
        None => Some(None),
        Some(Expr::Literal(Value::Int64(n))) if *n >= 0 => Some(Some(*n as u64)),
        Some(Expr::Literal(Value::Int32(n))) if *n >= 0 => Some(Some(*n as u64)),
        Some(Expr::Literal(Value::Null)) => Some(None),
        _ => None,
    }
}

fn push_limit(plan: Plan) -> Plan {
    match plan {
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let input = push_limit(*input);
            let n = match (const_limit(&limit), const_limit(&offset)) {
                (Some(Some(l)), Some(o)) => Some(l + o.unwrap_or(0)),
                _ => None,
            };
            let input = match (n, input) {
                (
                    Some(n),
                    Plan::Scan {
                        table,
                        needed,
                        filter: None,
                        access,
                        limit: None,
                    },
                ) => Plan::Scan {
                    table,
                    needed,
                    filter: None,
                    access,
                    limit: Some(n),
                },
                (
                    Some(n),
                    Plan::Project {
                        input: inner,
                        exprs,
                    },
                ) => match *inner {
                    Plan::Scan {
                        table,
                        needed,
                        filter: None,
                        access,
                        limit: None,
                    } => Plan::Project {
                        input: Box::new(Plan::Scan {
                            table,
                            needed,
                            filter: None,
                            access,
                            limit: Some(n),
                        }),
                        exprs,
                    },
                    other => Plan::Project {
                        input: Box::new(other),
                        exprs,
                    },
                },
                (_, other) => other,
            };
            Plan::Limit {
                input: Box::new(input),
                limit,
                offset,
            }
        }
        other => {
            map_children(other, &mut |c| Ok(push_limit(c))).expect("limit pushdown never fails")
        }
    }
}

fn mark(e: &Expr, req: &mut [bool]) {
    // A correlated subquery reads the row it is evaluated on by position:
    // keep every column.
    if e.any(&mut |x| matches!(x, Expr::Subquery(_, p, _) if p.correlated)) {
        req.iter_mut().for_each(|r| *r = true);
        return;
    }
    let mut cols = Vec::new();
    e.columns(&mut cols);
    for c in cols {
        if c < req.len() {
            req[c] = true;
        }
    }
}

/// Propagates the columns each node's parent needs down to the scans.
fn prune(plan: Plan, required: &[bool]) -> Plan {
    match plan {
        Plan::Scan {
            table,
            needed: _,
            filter,
            access,
            limit,
        } => {
            let mut needed: Vec<bool> = required.to_vec();
            needed.resize(table.columns.len(), false);
            if let Some(f) = &filter {
                mark(f, &mut needed);
            }
            Plan::Scan {
                table,
                needed,
                filter,
                access,
                limit,
            }
        }
        Plan::Filter { input, predicate } => {
            let mut req = required.to_vec();
            req.resize(output_width(&input), false);
            mark(&predicate, &mut req);
            Plan::Filter {
                input: Box::new(prune(*input, &req)),
                predicate,
            }
        }
        Plan::Project { input, exprs } => {
            let mut req = vec![false; output_width(&input)];
            for (i, e) in exprs.iter().enumerate() {
                if required.get(i).copied().unwrap_or(true) {
                    mark(e, &mut req);
                }
            }
            Plan::Project {
                input: Box::new(prune(*input, &req)),
                exprs,
            }
        }
        Plan::ProjectSet { input, srfs } => {
            let w = output_width(&input);
            let mut req = required.to_vec();
            req.resize(w, false);
            for e in &srfs {
                mark(e, &mut req);
            }
            Plan::ProjectSet {
                input: Box::new(prune(*input, &req)),
                srfs,
            }
        }
        Plan::Window { input, calls } => {
            let w = output_width(&input);
            let mut req = required.to_vec();
            req.resize(w, false);
            for (parts, keys) in &calls {
                for e in parts {
                    mark(e, &mut req);
                }
                for k in keys {
                    mark(&k.expr, &mut req);
                }
            }
            Plan::Window {
                input: Box::new(prune(*input, &req)),
                calls,
            }
        }
        Plan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let mut req = vec![false; output_width(&input)];
            for g in &group_by {
                mark(g, &mut req);
            }
            for a in &aggs {
                for x in &a.args {
                    mark(x, &mut req);
                }
                if let Some(f) = &a.filter {
                    mark(f, &mut req);
                }
            }
            Plan::Aggregate {
                input: Box::new(prune(*input, &req)),
                group_by,
                aggs,
            }
        }
        Plan::Sort { input, keys } => {
            let mut req = required.to_vec();
            req.resize(output_width(&input), false);
            for k in &keys {
                mark(&k.expr, &mut req);
            }
            Plan::Sort {
                input: Box::new(prune(*input, &req)),
                keys,
            }
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let req = required.to_vec();
            Plan::Limit {
                input: Box::new(prune(*input, &req)),
                limit,
                offset,
            }
        }
        Plan::Distinct { input, on } => {
            let w = output_width(&input);
            let req = vec![true; w];
            Plan::Distinct {
                input: Box::new(prune(*input, &req)),
                on,
            }
        }
        Plan::Join {
            left,
            right,
            kind,
            equi,
            on,
            widths,
        } => {
            let mut req = required.to_vec();
            req.resize(widths.0 + widths.1, false);
            if let Some(o) = &on {
                mark(o, &mut req);
            }
            let (mut lreq, mut rreq) = (req[..widths.0].to_vec(), req[widths.0..].to_vec());
            for (l, r) in &equi {
                mark(l, &mut lreq);
                mark(r, &mut rreq);
            }
            Plan::Join {
                left: Box::new(prune(*left, &lreq)),
                right: Box::new(prune(*right, &rreq)),
                kind,
                equi,
                on,
                widths,
            }
        }
        Plan::SetOp {
            kind,
            all,
            left,
            right,
        } => {
            let lw = output_width(&left);
            let rw = output_width(&right);
            Plan::SetOp {
                kind,
                all,
                left: Box::new(prune(*left, &vec![true; lw])),
                right: Box::new(prune(*right, &vec![true; rw])),
            }
        }
        Plan::Insert {
            table,
            input,
            returning,
            on_conflict_do_nothing,
        } => {
            let w = output_width(&input);
            Plan::Insert {
                table,
                input: Box::new(prune(*input, &vec![true; w])),
                returning,
                on_conflict_do_nothing,
            }
        }
        Plan::Update {
            table,
            input,
            assignments,
            returning,
        } => {
            let w = output_width(&input);
            Plan::Update {
                table,
                input: Box::new(prune(*input, &vec![true; w])),
                assignments,
                returning,
            }
        }
        Plan::Delete {
            table,
            input,
            returning,
        } => {
            let w = output_width(&input);
            Plan::Delete {
                table,
                input: Box::new(prune(*input, &vec![true; w])),
                returning,
            }
        }
        leaf => leaf,
    }
}
