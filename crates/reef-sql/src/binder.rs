//! The binder: resolves names and types in a parsed statement and builds a
//! logical plan.
//!
//! Names resolve against a [`Scope`] (the columns of the FROM clause) and
//! then outward through the scopes of enclosing queries, which is how
//! correlated subqueries find their outer columns. Types follow PostgreSQL:
//! string literals and parameters stay `unknown` until the context fixes
//! their type.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::{CatalogView, Object, TableDesc};
use crate::error::{sqlstate, Result, SqlError};
use crate::expr::{Expr, SessionFunc, SubPlan, SubqueryKind, TimeFunc};
use crate::plan::{Access, AggCall, AggFunc, JoinKind, Plan, SetOpKind, SortKey};
use crate::types::ops::{self, BinaryOp, UnaryOp};
use crate::types::{cast, functions, text, DataType, Interval, Value};

/// A column visible to name resolution.
#[derive(Debug, Clone)]
pub struct ScopeColumn {
    /// The table (or alias) that provides it.
    pub table: Option<String>,
    /// The column name.
    pub name: String,
    /// The column's type.
    pub ty: DataType,
    /// Left out of `*` (hidden row ids, USING duplicates).
    pub hidden: bool,
}

/// The columns of a plan's output, by position.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The columns.
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    fn types(&self) -> Vec<DataType> {
        self.columns.iter().map(|c| c.ty).collect()
    }
}

/// A bound query: its plan and its output columns.
#[derive(Debug, Clone)]
pub struct BoundQuery {
    /// The plan.
    pub plan: Plan,
    /// The output columns.
    pub scope: Scope,
}

/// Resolves names and types and builds plans for one statement.
pub struct Binder<'a> {
    catalog: CatalogView<'a>,
    /// Parameter types, inferred as binding goes.
    pub params: Vec<DataType>,
    outer: Vec<Scope>,
    /// Every outer reference bound so far, as (level in `outer`, column): a subquery is
    /// correlated when its body (nested subqueries included) added one at or below its level.
    outer_uses: Vec<(usize, usize)>,
    ctes: Vec<HashMap<String, (ast::Query, Vec<String>)>>,
    next_subquery: usize,
    /// Aggregates collected while binding an aggregate query's expressions.
    aggs: Option<Vec<AggCall>>,
    /// Tables this statement writes (for the commit-time schema check).
    pub written_tables: Vec<Arc<TableDesc>>,
    /// Names and types of the RETURNING columns of the last DML bound.
    pub returning_names: Vec<(String, DataType)>,
    /// The clause being bound, for error messages.
    clause: String,
    /// The catalog functions' lookups (`regclass`, `pg_get_indexdef`, ...), made on first use.
    lookups: Option<Arc<crate::pg_catalog::Lookups>>,
    /// Window function calls of the select list being bound (None where none are allowed).
    windows: Option<Vec<(Vec<Expr>, Vec<SortKey>)>>,
    /// True while binding a view's query to find its column types for `pg_attribute`: the
    /// catalog relations read inside leave view types unknown instead of recursing.
    typing_views: bool,
    /// Whether the plan holds what is true only now (a system view's rows), so that it must
    /// be bound again next time instead of cached.
    pub volatile: bool,
}

/// Marks a set-returning function call in a select list until `finish_select` moves it into a
/// ProjectSet: `Func(SRF_MARK, [array])` stands for one element of the array.
const SRF_MARK: &str = "\u{1}srf";

/// Marks a window function call until `finish_select` puts a Window node under the projection:
/// `Func(WINDOW_MARK + n, [])` is the nth call's column.
const WINDOW_MARK: &str = "\u{1}win";

/// The row type of `information_schema._pg_expandarray`.
const EXPANDED_ARRAY: DataType =
    DataType::Record(&[("x", DataType::Int64), ("n", DataType::Int32)]);

/// `format_type(oid, NULL)`: a type's SQL name, as `regtype` prints it.
fn functions_format_type(oid: i64) -> Option<String> {
    crate::types::catalog_funcs::format_type(oid, None)
}

fn err(code: &'static str, msg: impl Into<String>) -> SqlError {
    SqlError::new(code, msg)
}

/// Normalises an identifier: unquoted names fold to lower case.
pub fn ident_name(id: &ast::Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The last part of an object name (schema qualifiers `public.` and `pg_catalog.` are accepted
/// and ignored, except that a relation of `pg_catalog` cannot be named this way: reading one
/// goes through the binder's own path).
pub fn object_name(name: &ast::ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => Ok(ident_name(i)),
            _ => Err(SqlError::unsupported(format!("unsupported name {name}"))),
        })
        .collect::<Result<_>>()?;
    match parts.len() {
        1 => Ok(parts[0].clone()),
        // Reading a catalog relation goes through `bind_catalog_relation`; every other use
        // names it as something to change.
        2 if parts[0] == crate::pg_catalog::SCHEMA && crate::pg_catalog::find(&parts[1]).is_some() => {
            Err(err(
                sqlstate::WRONG_OBJECT_TYPE,
                format!(
                    "\"{}.{}\" cannot be changed: the pg_catalog schema is computed from reef's own catalog",
                    parts[0], parts[1]
                ),
            ))
        }
        2 if parts[0] == "public" || parts[0] == "pg_catalog" => Ok(parts[1].clone()),
        // Reading a system view goes through `bind_system_view`; every other use names it
        // as something to change.
        2 if parts[0] == crate::system::SCHEMA => Err(err(
            sqlstate::WRONG_OBJECT_TYPE,
            format!(
                "\"{}.{}\" cannot be changed: the {} schema holds read-only system views",
                parts[0],
                parts[1],
                crate::system::SCHEMA
            ),
        )),
        2 => Err(err(
            sqlstate::UNDEFINED_OBJECT,
            format!("schema \"{}\" does not exist", parts[0]),
        )),
        3 => Ok(parts[2].clone()),
        _ => Err(err(
            sqlstate::SYNTAX_ERROR,
            format!("improper qualified name (too many dotted names): {name}"),
        )),
    }
}

/// Converts a parser data type to ours.
pub fn convert_type(ty: &ast::DataType) -> Result<DataType> {
    use ast::DataType as T;
    let char_len = |l: &Option<ast::CharacterLength>| -> Option<u32> {
        match l {
            Some(ast::CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
            _ => None,
        }
    };
    let numeric = |info: &ast::ExactNumberInfo| -> Result<DataType> {
        Ok(match info {
            ast::ExactNumberInfo::None => DataType::Numeric(None),
            ast::ExactNumberInfo::Precision(p) => DataType::Numeric(Some((*p as u32, 0))),
            ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
                if *s < 0 || *s as u64 > *p {
                    return Err(err(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                    ));
                }
                DataType::Numeric(Some((*p as u32, *s as u32)))
            }
        })
    };
    Ok(match ty {
        T::Bool | T::Boolean => DataType::Bool,
        T::SmallInt(_) | T::Int2(_) => DataType::Int16,
        T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Int32,
        T::BigInt(_) | T::Int8(_) => DataType::Int64,
        T::Real | T::Float4 => DataType::Float32,
        T::Double(_) | T::DoublePrecision | T::Float8 => DataType::Float64,
        T::Float(info) => match info {
            ast::ExactNumberInfo::Precision(p) if *p <= 24 => DataType::Float32,
            _ => DataType::Float64,
        },
        T::Numeric(i) | T::Decimal(i) | T::Dec(i) => numeric(i)?,
        T::Text | T::String(None) => DataType::Text,
        T::Varchar(l) | T::CharacterVarying(l) | T::CharVarying(l) => {
            DataType::Varchar(char_len(l))
        }
        T::Char(l) | T::Character(l) => DataType::Char(char_len(l).unwrap_or(1)),
        T::Bytea => DataType::Bytea,
        T::Date => DataType::Date,
        T::Timestamp(_, tz) => match tz {
            ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => DataType::TimestampTz,
            _ => DataType::Timestamp,
        },
        T::Interval { .. } => DataType::Interval,
        T::Regclass => DataType::Int64,
        T::Array(
            ast::ArrayElemTypeDef::SquareBracket(inner, _)
            | ast::ArrayElemTypeDef::AngleBracket(inner)
            | ast::ArrayElemTypeDef::Parenthesis(inner),
        ) => DataType::array_of(convert_type(inner)?),
        T::Custom(name, mods) => {
            let n = object_name(name)?;
            match n.as_str() {
                "int2" => DataType::Int16,
                "int4" | "int" | "serial" | "serial4" => DataType::Int32,
                "int8" | "bigserial" | "serial8" => DataType::Int64,
                "smallserial" | "serial2" => DataType::Int16,
                "float4" => DataType::Float32,
                "float8" => DataType::Float64,
                "bpchar" => DataType::Char(
                    mods.first()
                        .and_then(|m| match m {
                            ast::TypeModifier::Number(n, _) => n.parse().ok(),
                            _ => None,
                        })
                        .unwrap_or(1),
                ),
                "timestamptz" => DataType::TimestampTz,
                "bool" => DataType::Bool,
                // Catalog types: OIDs (and the reg* types, outside the casts the binder gives
                // their PostgreSQL meaning) are bigints, names and "char" are text.
                "oid" | "regclass" | "regtype" | "regproc" | "regnamespace" | "regrole" => {
                    DataType::Int64
                }
                "name" | "char" => DataType::Text,
                "int2vector" => DataType::Int2Vector,
                "oidvector" => DataType::array_of(DataType::Int64),
                "_name" | "_text" => DataType::array_of(DataType::Text),
                // Schema-qualified spellings of the built-in types (`pg_catalog.text`).
                "text" => DataType::Text,
                "varchar" => DataType::Varchar(None),
                "boolean" => DataType::Bool,
                "smallint" => DataType::Int16,
                "integer" => DataType::Int32,
                "bigint" => DataType::Int64,
                "real" => DataType::Float32,
                "numeric" | "decimal" => DataType::Numeric(None),
                "bytea" => DataType::Bytea,
                "date" => DataType::Date,
                "timestamp" => DataType::Timestamp,
                "interval" => DataType::Interval,
                _ => {
                    return Err(err(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("type \"{n}\" does not exist"),
                    ))
                }
            }
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "type {other} is not supported"
            )))
        }
    })
}

/// True for the names of aggregate functions.
pub fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "bool_and"
            | "bool_or"
            | "every"
            | "string_agg"
            | "array_agg"
            | "stddev"
            | "stddev_samp"
            | "stddev_pop"
            | "variance"
            | "var_samp"
            | "var_pop"
    )
}

/// Parses one expression (a stored column default).
pub fn parse_expr(sql: &str) -> Result<ast::Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::internal(format!("stored expression {sql} does not parse: {e}")))
}

fn literal_type(v: &Value) -> DataType {
    v.data_type()
}

impl<'a> Binder<'a> {
    /// Creates a binder; `params` are the declared parameter types
    /// (Unknown where the client declared none).
    pub fn new(catalog: CatalogView<'a>, params: Vec<DataType>) -> Self {
        Binder {
            catalog,
            params,
            outer: Vec::new(),
            outer_uses: Vec::new(),
            ctes: Vec::new(),
            next_subquery: 0,
            aggs: None,
            written_tables: Vec::new(),
            returning_names: Vec::new(),
            lookups: None,
            windows: None,
            typing_views: false,
            volatile: false,
            clause: String::new(),
        }
    }

    /// The catalog view.
    pub fn catalog(&self) -> &CatalogView<'a> {
        &self.catalog
    }

    // ----- queries -----

    /// Binds a query (SELECT, VALUES, set operations, WITH).
    pub fn bind_query(&mut self, q: &ast::Query) -> Result<BoundQuery> {
        let pushed = if let Some(with) = &q.with {
            if with.recursive {
                return Err(SqlError::unsupported("WITH RECURSIVE is not supported"));
            }
            let mut map = HashMap::new();
            self.ctes.push(HashMap::new());
            for cte in &with.cte_tables {
                let name = ident_name(&cte.alias.name);
                if map.contains_key(&name) {
                    self.ctes.pop();
                    return Err(err(
                        sqlstate::DUPLICATE_ALIAS,
                        format!("WITH query name \"{name}\" specified more than once"),
                    ));
                }
                let cols: Vec<String> = cte
                    .alias
                    .columns
                    .iter()
                    .map(|c| ident_name(&c.name))
                    .collect();
                map.insert(name.clone(), ((*cte.query).clone(), cols.clone()));
                // Later CTEs see earlier ones.
                self.ctes
                    .last_mut()
                    .unwrap()
                    .insert(name, ((*cte.query).clone(), cols));
            }
            true
        } else {
            false
        };
        let result = self.bind_query_body(q);
        if pushed {
            self.ctes.pop();
        }
        result
    }

    fn bind_query_body(&mut self, q: &ast::Query) -> Result<BoundQuery> {
        if let Some(f) = &q.fetch {
            if f.percent || f.with_ties {
                return Err(SqlError::unsupported(
                    "FETCH ... PERCENT / WITH TIES is not supported",
                ));
            }
        }
        let order_by: Vec<ast::OrderByExpr> = match &q.order_by {
            None => vec![],
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(v) => v.clone(),
                ast::OrderByKind::All(_) => {
                    return Err(SqlError::unsupported("ORDER BY ALL is not supported"))
                }
            },
        };
        let (limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                (limit.clone(), offset.as_ref().map(|o| o.value.clone()))
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(limit.clone()), Some(offset.clone()))
            }
        };
        let limit =
            match (&q.fetch, limit) {
                (Some(f), None) => Some(f.quantity.clone().unwrap_or_else(|| {
                    ast::Expr::Value(ast::Value::Number("1".into(), false).into())
                })),
                (_, l) => l,
            };
        let mut bound = match &*q.body {
            ast::SetExpr::Select(sel) => self.bind_select(sel, &order_by)?,
            body => {
                let mut b = self.bind_set_expr(body)?;
                if !order_by.is_empty() {
                    let keys = self.bind_output_order(&b.scope, &order_by)?;
                    b.plan = Plan::Sort {
                        input: Box::new(b.plan),
                        keys,
                    };
                }
                b
            }
        };
        if limit.is_some() || offset.is_some() {
            let limit = match limit {
                Some(ast::Expr::Value(v)) if matches!(v.value, ast::Value::Null) => None,
                Some(e) => Some(self.bind_constant_int(&e, "LIMIT")?),
                None => None,
            };
            let offset = match offset {
                Some(e) => Some(self.bind_constant_int(&e, "OFFSET")?),
                None => None,
            };
            bound.plan = Plan::Limit {
                input: Box::new(bound.plan),
                limit,
                offset,
            };
        }
        Ok(bound)
    }

    fn bind_constant_int(&mut self, e: &ast::Expr, what: &str) -> Result<Expr> {
        let (x, ty) = self.bind_expr(e, &Scope::default())?;
        let x = self.coerce(x, ty, DataType::Int64, what)?;
        Ok(x)
    }

    fn bind_set_expr(&mut self, body: &ast::SetExpr) -> Result<BoundQuery> {
        match body {
            ast::SetExpr::Select(sel) => self.bind_select(sel, &[]),
            ast::SetExpr::Query(q) => self.bind_query(q),
            ast::SetExpr::Values(v) => self.bind_values(v, None),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.bind_set_expr(left)?;
                let r = self.bind_set_expr(right)?;
                let kind = match op {
                    ast::SetOperator::Union => SetOpKind::Union,
                    ast::SetOperator::Intersect => SetOpKind::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
                };
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => {
                        return Err(SqlError::unsupported(format!("{other} is not supported")))
                    }
                };
                let name = format!("{op}").to_uppercase();
                if l.scope.columns.len() != r.scope.columns.len() {
                    return Err(err(
                        sqlstate::SYNTAX_ERROR,
                        format!("each {name} query must have the same number of columns"),
                    ));
                }
                let mut types = Vec::new();
                for (a, b) in l.scope.columns.iter().zip(&r.scope.columns) {
                    let t = self.unify(a.ty, b.ty, &name)?;
                    types.push(t);
                }
                let lp = self.cast_plan(l.plan, &l.scope.types(), &types);
                let rp = self.cast_plan(r.plan, &r.scope.types(), &types);
                let scope = Scope {
                    columns: l
                        .scope
                        .columns
                        .iter()
                        .zip(&types)
                        .map(|(c, t)| ScopeColumn {
                            table: None,
                            name: c.name.clone(),
                            ty: *t,
                            hidden: false,
                        })
                        .collect(),
                };
                Ok(BoundQuery {
                    plan: Plan::SetOp {
                        kind,
                        all,
                        left: Box::new(lp),
                        right: Box::new(rp),
                    },
                    scope,
                })
            }
            ast::SetExpr::Table(_) => Err(SqlError::unsupported(
                "TABLE t is not supported; use SELECT * FROM t",
            )),
            _ => Err(SqlError::unsupported("this query form is not supported")),
        }
    }

    /// The common type of two inputs (UNION, CASE, VALUES): unknown
    /// literals become text if nothing else decides.
    fn unify(&self, a: DataType, b: DataType, ctx: &str) -> Result<DataType> {
        if a == b {
            return Ok(if a == DataType::Unknown {
                DataType::Text
            } else {
                a
            });
        }
        match cast::common_type(&a, &b) {
            Some(DataType::Unknown) => Ok(DataType::Text),
            Some(t) => Ok(t),
            None => Err(err(
                sqlstate::DATATYPE_MISMATCH,
                format!("{ctx} types {} and {} cannot be matched", a, b),
            )),
        }
    }

    fn cast_plan(&self, plan: Plan, from: &[DataType], to: &[DataType]) -> Plan {
        if from.iter().zip(to).all(|(a, b)| a == b) {
            return plan;
        }
        // Constant VALUES rows are cast in place.
        let exprs = from
            .iter()
            .zip(to)
            .enumerate()
            .map(|(i, (a, b))| {
                if a == b {
                    Expr::Column(i)
                } else {
                    Expr::Cast(Box::new(Expr::Column(i)), *b)
                }
            })
            .collect();
        Plan::Project {
            input: Box::new(plan),
            exprs,
        }
    }

    fn bind_values(&mut self, v: &ast::Values, target: Option<&[DataType]>) -> Result<BoundQuery> {
        let width = v.rows.first().map(|r| r.len()).unwrap_or(0);
        let mut rows = Vec::new();
        let mut types: Vec<DataType> = vec![DataType::Unknown; width];
        let empty = Scope::default();
        let mut typed_rows = Vec::new();
        for r in &v.rows {
            if r.len() != width {
                return Err(err(
                    sqlstate::SYNTAX_ERROR,
                    "VALUES lists must all be the same length",
                ));
            }
            let mut row = Vec::new();
            for (i, e) in r.iter().enumerate() {
                let (mut x, mut t) = self.bind_expr(e, &empty)?;
                if let Some(target) = target {
                    if let Some(tt) = target.get(i) {
                        if t == DataType::Unknown {
                            x = self.coerce(x, t, *tt, "VALUES")?;
                            t = *tt;
                        }
                    }
                }
                row.push((x, t));
            }
            typed_rows.push(row);
        }
        for row in &typed_rows {
            for (i, (_, t)) in row.iter().enumerate() {
                types[i] = if types[i] == DataType::Unknown && *t == DataType::Unknown {
                    DataType::Unknown
                } else if types[i] == DataType::Unknown {
                    *t
                } else if *t == DataType::Unknown {
                    types[i]
                } else {
                    self.unify(types[i], *t, "VALUES")?
                };
            }
        }
        for t in types.iter_mut() {
            if *t == DataType::Unknown && target.is_none() {
                *t = DataType::Text;
            }
        }
        for row in typed_rows {
            let mut out = Vec::new();
            for (i, (x, t)) in row.into_iter().enumerate() {
                if types[i] == DataType::Unknown || t == types[i] {
                    out.push(x);
                } else {
                    out.push(self.coerce(x, t, types[i], "VALUES")?);
                }
            }
            rows.push(out);
        }
        let scope = Scope {
            columns: types
                .iter()
                .enumerate()
                .map(|(i, t)| ScopeColumn {
                    table: None,
                    name: format!("column{}", i + 1),
                    ty: *t,
                    hidden: false,
                })
                .collect(),
        };
        Ok(BoundQuery {
            plan: Plan::Values { rows, width },
            scope,
        })
    }

    fn bind_select(
        &mut self,
        sel: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<BoundQuery> {
        // Window calls belong to this select list, not to an enclosing or nested one.
        let saved = self.windows.replace(Vec::new());
        let bound = self.bind_select_list(sel, order_by);
        self.windows = saved;
        bound
    }

    fn bind_select_list(
        &mut self,
        sel: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<BoundQuery> {
        if sel.into.is_some() {
            return Err(SqlError::unsupported(
                "SELECT INTO is not supported; use CREATE TABLE AS",
            ));
        }
        if !sel.named_window.is_empty() || sel.qualify.is_some() {
            return Err(SqlError::unsupported("window functions are not supported"));
        }
        // `SELECT generate_series(a, b)` without FROM reads like a FROM item.
        if sel.from.is_empty()
            && sel.projection.len() == 1
            && sel.selection.is_none()
            && order_by.is_empty()
        {
            let (e, alias) = match &sel.projection[0] {
                ast::SelectItem::UnnamedExpr(e) => (e, None),
                ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(ident_name(alias))),
                _ => (&ast::Expr::Value(ast::Value::Null.into()), None),
            };
            if let ast::Expr::Function(f) = e {
                if object_name(&f.name).ok().as_deref() == Some("generate_series") {
                    if let ast::FunctionArguments::List(l) = &f.args {
                        let (plan, mut scope) =
                            self.bind_table_function("generate_series", &l.args, None)?;
                        if let Some(a) = alias {
                            scope.columns[0].name = a;
                        }
                        return self.finish_select(
                            plan,
                            vec![Expr::Column(0)],
                            scope.columns.clone(),
                            vec![],
                            sel,
                            &scope,
                        );
                    }
                }
            }
        }
        // FROM
        let (mut plan, scope) = if sel.from.is_empty() {
            (
                Plan::Values {
                    rows: vec![vec![]],
                    width: 0,
                },
                Scope::default(),
            )
        } else {
            let mut acc: Option<(Plan, Scope)> = None;
            for twj in &sel.from {
                let (p, s) = self.bind_table_with_joins(twj)?;
                acc = Some(match acc {
                    None => (p, s),
                    Some((lp, ls)) => self.make_join(lp, ls, p, s, JoinKind::Inner, None)?,
                });
            }
            acc.unwrap()
        };
        // WHERE
        if let Some(w) = &sel.selection {
            let pred = self.bind_predicate(w, &scope, "WHERE")?;
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate: pred,
            };
        }
        // Select list expansion.
        let mut items: Vec<(ast::Expr, Option<String>)> = Vec::new();
        let mut star_cols: Vec<(usize, String)> = Vec::new(); // (item index, name) for expanded stars
        let mut expanded: Vec<Option<usize>> = Vec::new();
        for item in &sel.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    items.push((e.clone(), None));
                    expanded.push(None);
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push((expr.clone(), Some(ident_name(alias))));
                    expanded.push(None);
                }
                ast::SelectItem::Wildcard(_) => {
                    if scope.columns.is_empty() && sel.from.is_empty() {
                        return Err(err(
                            sqlstate::SYNTAX_ERROR,
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        if !c.hidden {
                            items.push((
                                ast::Expr::Value(ast::Value::Null.into()),
                                Some(c.name.clone()),
                            ));
                            expanded.push(Some(i));
                            star_cols.push((i, c.name.clone()));
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n)?,
                        ast::SelectItemQualifiedWildcardKind::Expr(_) => {
                            return Err(SqlError::unsupported("expression.* is not supported"))
                        }
                    };
                    let mut found = false;
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.table.as_deref() == Some(q.as_str()) {
                            found = true;
                            if c.hidden && c.name == "rowid" {
                                continue;
                            }
                            items.push((
                                ast::Expr::Value(ast::Value::Null.into()),
                                Some(c.name.clone()),
                            ));
                            expanded.push(Some(i));
                        }
                    }
                    if !found {
                        return Err(err(
                            sqlstate::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{q}\""),
                        ));
                    }
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(SqlError::unsupported("multiple aliases are not supported"))
                }
            }
        }
        let _ = star_cols;

        let has_group = match &sel.group_by {
            ast::GroupByExpr::Expressions(v, _) => !v.is_empty(),
            ast::GroupByExpr::All(_) => {
                return Err(SqlError::unsupported("GROUP BY ALL is not supported"))
            }
        };
        let mut has_agg = has_group || sel.having.is_some();
        for (e, _) in &items {
            has_agg |= contains_aggregate(e);
        }
        for o in order_by {
            has_agg |= contains_aggregate(&o.expr);
        }

        let mut out_exprs: Vec<Expr> = Vec::new();
        let mut out_cols: Vec<ScopeColumn> = Vec::new();
        // The scope that output expressions are bound against.
        let post_scope: Scope;
        if has_agg {
            // Group keys.
            let mut group_exprs: Vec<Expr> = Vec::new();
            let mut group_types = Vec::new();
            if let ast::GroupByExpr::Expressions(v, _) = &sel.group_by {
                for g in v {
                    // GROUP BY ordinal or output-column name.
                    let target = match g {
                        ast::Expr::Value(ast::ValueWithSpan {
                            value: ast::Value::Number(n, _),
                            ..
                        }) => {
                            let k: usize = n.parse().map_err(|_| {
                                err(sqlstate::SYNTAX_ERROR, "invalid GROUP BY position")
                            })?;
                            if k == 0 || k > items.len() {
                                return Err(err(
                                    sqlstate::INVALID_COLUMN_REFERENCE,
                                    format!("GROUP BY position {k} is not in select list"),
                                ));
                            }
                            Some(k - 1)
                        }
                        ast::Expr::Identifier(id) => {
                            let n = ident_name(id);
                            if scope.columns.iter().any(|c| c.name == n) {
                                None
                            } else {
                                items
                                    .iter()
                                    .position(|(_, a)| a.as_deref() == Some(n.as_str()))
                            }
                        }
                        _ => None,
                    };
                    let (x, t) = match target {
                        Some(k) => match expanded[k] {
                            Some(col) => (Expr::Column(col), scope.columns[col].ty),
                            None => self.bind_expr(&items[k].0, &scope)?,
                        },
                        None => self.bind_expr(g, &scope)?,
                    };
                    if contains_agg_expr(&x) {
                        return Err(err(
                            sqlstate::GROUPING_ERROR,
                            "aggregate functions are not allowed in GROUP BY",
                        ));
                    }
                    group_exprs.push(x);
                    group_types.push(t);
                }
            }
            self.aggs = Some(Vec::new());
            let mut pre_items = Vec::new();
            for (k, (e, alias)) in items.iter().enumerate() {
                let (x, t) = match expanded[k] {
                    Some(col) => (Expr::Column(col), scope.columns[col].ty),
                    None => self.bind_expr(e, &scope)?,
                };
                let name = alias.clone().unwrap_or_else(|| output_name(e));
                pre_items.push((x, t, name));
            }
            let having = match &sel.having {
                Some(h) => Some(self.bind_predicate(h, &scope, "HAVING")?),
                None => None,
            };
            // ORDER BY expressions over the pre-aggregation scope.
            let mut pre_order = Vec::new();
            for o in order_by {
                pre_order.push(self.bind_order_item(o, &scope, &pre_items)?);
            }
            let aggs = self.aggs.take().unwrap();
            let ng = group_exprs.len();
            let names: Vec<String> = scope
                .columns
                .iter()
                .map(|c| match &c.table {
                    Some(t) => format!("{t}.{}", c.name),
                    None => c.name.clone(),
                })
                .collect();
            let rewrite = |x: Expr| -> Result<Expr> {
                rewrite_for_agg(x, &group_exprs, ng).map_err(|e| match e.message.as_str() {
                    m if m.starts_with("\u{0}col") => {
                        let i: usize = m[4..].parse().unwrap_or(0);
                        err(
                            sqlstate::GROUPING_ERROR,
                            format!(
                                "column \"{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                                names.get(i).cloned().unwrap_or_default()
                            ),
                        )
                    }
                    m if m.starts_with("\u{0}sub") => {
                        let i: usize = m[4..].parse().unwrap_or(0);
                        err(
                            sqlstate::GROUPING_ERROR,
                            format!(
                                "subquery uses ungrouped column \"{}\" from outer query",
                                names.get(i).cloned().unwrap_or_default()
                            ),
                        )
                    }
                    _ => e,
                })
            };
            for (x, t, name) in pre_items {
                out_exprs.push(rewrite(x)?);
                out_cols.push(ScopeColumn {
                    table: None,
                    name,
                    ty: t,
                    hidden: false,
                });
            }
            let having = match having {
                Some(h) => Some(rewrite(h)?),
                None => None,
            };
            let mut order_keys = Vec::new();
            for (x, desc, nulls_first) in pre_order {
                order_keys.push((rewrite(x)?, desc, nulls_first));
            }
            plan = Plan::Aggregate {
                input: Box::new(plan),
                group_by: group_exprs.clone(),
                aggs,
            };
            if let Some(h) = having {
                plan = Plan::Filter {
                    input: Box::new(plan),
                    predicate: h,
                };
            }
            post_scope = Scope::default();
            return self.finish_select(plan, out_exprs, out_cols, order_keys, sel, &post_scope);
        }

        for (k, (e, alias)) in items.iter().enumerate() {
            let (x, t) = match expanded[k] {
                Some(col) => (Expr::Column(col), scope.columns[col].ty),
                None => self.bind_expr(e, &scope)?,
            };
            let name = alias.clone().unwrap_or_else(|| output_name(e));
            let t = if t == DataType::Unknown {
                DataType::Text
            } else {
                t
            };
            let x = match &x {
                Expr::Literal(Value::Text(_)) | Expr::Literal(Value::Null) | Expr::Param(..) => x,
                _ => x,
            };
            out_exprs.push(x);
            out_cols.push(ScopeColumn {
                table: None,
                name,
                ty: t,
                hidden: false,
            });
        }
        let pre_items: Vec<(Expr, DataType, String)> = out_exprs
            .iter()
            .cloned()
            .zip(out_cols.iter())
            .map(|(x, c)| (x, c.ty, c.name.clone()))
            .collect();
        let mut order_keys = Vec::new();
        for o in order_by {
            order_keys.push(self.bind_order_item(o, &scope, &pre_items)?);
        }
        self.finish_select(plan, out_exprs, out_cols, order_keys, sel, &scope)
    }

    /// Adds projection, DISTINCT and ORDER BY on top of the FROM/WHERE/GROUP
    /// plan. `order_keys` are over the same input as `out_exprs`.
    fn finish_select(
        &mut self,
        plan: Plan,
        out_exprs: Vec<Expr>,
        out_cols: Vec<ScopeColumn>,
        order_keys: Vec<(Expr, bool, bool)>,
        sel: &ast::Select,
        _scope: &Scope,
    ) -> Result<BoundQuery> {
        let width = out_exprs.len();
        let distinct = match &sel.distinct {
            None | Some(ast::Distinct::All) => None,
            Some(ast::Distinct::Distinct) => Some(None),
            Some(ast::Distinct::On(exprs)) => {
                let mut on = Vec::new();
                let pre_items: Vec<(Expr, DataType, String)> = out_exprs
                    .iter()
                    .cloned()
                    .zip(out_cols.iter())
                    .map(|(x, c)| (x, c.ty, c.name.clone()))
                    .collect();
                for e in exprs {
                    let ob = ast::OrderByExpr {
                        expr: e.clone(),
                        options: ast::OrderByOptions {
                            sort: None,
                            nulls_first: None,
                        },
                        with_fill: None,
                    };
                    on.push(self.bind_order_item(&ob, _scope, &pre_items)?.0);
                }
                Some(Some(on))
            }
        };
        // Sort keys become extra projected columns when they are not plain
        // output columns.
        let mut exprs = out_exprs.clone();
        let mut keys = Vec::new();
        for (x, desc, nulls_first) in order_keys {
            let pos = match exprs.iter().position(|e| *e == x) {
                Some(p) => p,
                None => {
                    if matches!(distinct, Some(None)) {
                        return Err(err(
                            sqlstate::INVALID_COLUMN_REFERENCE,
                            "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                        ));
                    }
                    exprs.push(x);
                    exprs.len() - 1
                }
            };
            keys.push(SortKey {
                expr: Expr::Column(pos),
                desc,
                nulls_first,
            });
        }
        // Window functions run in a Window node under the projection, each call a column.
        let windows = self.windows.take().unwrap_or_default();
        let (plan, exprs) = if windows.is_empty() {
            (plan, exprs)
        } else {
            if matches!(plan, Plan::Aggregate { .. }) {
                return Err(SqlError::unsupported(
                    "window functions over aggregates are not supported",
                ));
            }
            let width = crate::optimizer::output_width(&plan);
            let exprs = exprs
                .into_iter()
                .map(|x| {
                    x.transform(&mut |e| match e {
                        Expr::Func(n, args) if args.is_empty() && n.starts_with(WINDOW_MARK) => {
                            let k: usize = n[WINDOW_MARK.len()..].parse().unwrap_or(0);
                            Ok(Expr::Column(width + k))
                        }
                        other => Ok(other),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            (
                Plan::Window {
                    input: Box::new(plan),
                    calls: windows,
                },
                exprs,
            )
        };
        // Set-returning functions in the select list run in a ProjectSet under the projection,
        // each one becoming a column of its rows.
        let mut srfs = Vec::new();
        let input_width = crate::optimizer::output_width(&plan);
        let exprs: Vec<Expr> = exprs
            .into_iter()
            .map(|x| {
                x.transform(&mut |e| match e {
                    Expr::Func(n, mut args) if n == SRF_MARK && args.len() == 1 => {
                        srfs.push(args.remove(0));
                        Ok(Expr::Column(input_width + srfs.len() - 1))
                    }
                    other => Ok(other),
                })
            })
            .collect::<Result<_>>()?;
        let plan = if srfs.is_empty() {
            plan
        } else {
            Plan::ProjectSet {
                input: Box::new(plan),
                srfs,
            }
        };
        let mut plan = Plan::Project {
            input: Box::new(plan),
            exprs: exprs.clone(),
        };
        match distinct {
            Some(None) => {
                plan = Plan::Distinct {
                    input: Box::new(plan),
                    on: None,
                }
            }
            Some(Some(on_exprs)) => {
                // DISTINCT ON keeps the first row of each group in ORDER BY
                // order: sort first, then keep firsts.
                let mut on = Vec::new();
                for x in on_exprs {
                    let pos = match exprs.iter().position(|e| *e == x) {
                        Some(p) => p,
                        None => {
                            return Err(err(
                                sqlstate::INVALID_COLUMN_REFERENCE,
                                "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
                            ))
                        }
                    };
                    on.push(Expr::Column(pos));
                }
                if !keys.is_empty() {
                    plan = Plan::Sort {
                        input: Box::new(plan),
                        keys: keys.clone(),
                    };
                    keys.clear();
                }
                plan = Plan::Distinct {
                    input: Box::new(plan),
                    on: Some(on),
                };
            }
            None => {}
        }
        if !keys.is_empty() {
            plan = Plan::Sort {
                input: Box::new(plan),
                keys,
            };
        }
        if exprs.len() > width {
            plan = Plan::Project {
                input: Box::new(plan),
                exprs: (0..width).map(Expr::Column).collect(),
            };
        }
        Ok(BoundQuery {
            plan,
            scope: Scope { columns: out_cols },
        })
    }

    /// Binds one ORDER BY item: an output ordinal, an output name, or an
    /// expression over the input scope.
    fn bind_order_item(
        &mut self,
        o: &ast::OrderByExpr,
        scope: &Scope,
        items: &[(Expr, DataType, String)],
    ) -> Result<(Expr, bool, bool)> {
        let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
        let nulls_first = o.options.nulls_first.unwrap_or(desc);
        let x = match &o.expr {
            ast::Expr::Value(ast::ValueWithSpan {
                value: ast::Value::Number(n, _),
                ..
            }) => {
                let k: usize = n
                    .parse()
                    .map_err(|_| err(sqlstate::SYNTAX_ERROR, "invalid ORDER BY position"))?;
                if k == 0 || k > items.len() {
                    return Err(err(
                        sqlstate::INVALID_COLUMN_REFERENCE,
                        format!("ORDER BY position {k} is not in select list"),
                    ));
                }
                items[k - 1].0.clone()
            }
            ast::Expr::Identifier(id) => {
                let n = ident_name(id);
                let matches: Vec<&(Expr, DataType, String)> =
                    items.iter().filter(|(_, _, name)| *name == n).collect();
                if matches.len() > 1 && !matches.iter().all(|m| m.0 == matches[0].0) {
                    return Err(err(
                        sqlstate::AMBIGUOUS_COLUMN,
                        format!("ORDER BY \"{n}\" is ambiguous"),
                    ));
                }
                match matches.first() {
                    Some(m) => m.0.clone(),
                    None => self.bind_expr(&o.expr, scope)?.0,
                }
            }
            e => self.bind_expr(e, scope)?.0,
        };
        Ok((x, desc, nulls_first))
    }

    /// ORDER BY over a set operation's output: names and ordinals only.
    fn bind_output_order(
        &mut self,
        scope: &Scope,
        order_by: &[ast::OrderByExpr],
    ) -> Result<Vec<SortKey>> {
        let items: Vec<(Expr, DataType, String)> = scope
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (Expr::Column(i), c.ty, c.name.clone()))
            .collect();
        let mut keys = Vec::new();
        for o in order_by {
            let (expr, desc, nulls_first) = self.bind_order_item(o, scope, &items)?;
            keys.push(SortKey {
                expr,
                desc,
                nulls_first,
            });
        }
        Ok(keys)
    }

    // ----- FROM -----

    fn bind_table_with_joins(&mut self, twj: &ast::TableWithJoins) -> Result<(Plan, Scope)> {
        let (mut plan, mut scope) = self.bind_table_factor(&twj.relation)?;
        for j in &twj.joins {
            let (rp, rs) = self.bind_table_factor(&j.relation)?;
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(_) => (JoinKind::Inner, None),
                _ => return Err(SqlError::unsupported("this join type is not supported")),
            };
            let (p, s) = match constraint {
                None | Some(ast::JoinConstraint::None) => {
                    self.make_join(plan, scope, rp, rs, kind, None)?
                }
                Some(ast::JoinConstraint::On(e)) => {
                    self.make_join(plan, scope, rp, rs, kind, Some(e))?
                }
                Some(ast::JoinConstraint::Using(cols)) => {
                    let names: Vec<String> = cols.iter().map(object_name).collect::<Result<_>>()?;
                    self.make_using_join(plan, scope, rp, rs, kind, names)?
                }
                Some(ast::JoinConstraint::Natural) => {
                    let names: Vec<String> = scope
                        .columns
                        .iter()
                        .filter(|c| {
                            !c.hidden && rs.columns.iter().any(|r| !r.hidden && r.name == c.name)
                        })
                        .map(|c| c.name.clone())
                        .collect();
                    self.make_using_join(plan, scope, rp, rs, kind, names)?
                }
                Some(_) => {
                    return Err(SqlError::unsupported(
                        "this join constraint is not supported",
                    ))
                }
            };
            plan = p;
            scope = s;
        }
        Ok((plan, scope))
    }

    fn make_join(
        &mut self,
        lp: Plan,
        ls: Scope,
        rp: Plan,
        rs: Scope,
        kind: JoinKind,
        on: Option<&ast::Expr>,
    ) -> Result<(Plan, Scope)> {
        let widths = (ls.columns.len(), rs.columns.len());
        let mut scope = Scope {
            columns: ls.columns.clone(),
        };
        scope.columns.extend(rs.columns.iter().cloned());
        let on = match on {
            Some(e) => Some(self.bind_predicate(e, &scope, "JOIN/ON")?),
            None => None,
        };
        let plan = Plan::Join {
            left: Box::new(lp),
            right: Box::new(rp),
            kind,
            equi: vec![],
            on,
            widths,
        };
        Ok((plan, scope))
    }

    fn make_using_join(
        &mut self,
        lp: Plan,
        ls: Scope,
        rp: Plan,
        rs: Scope,
        kind: JoinKind,
        names: Vec<String>,
    ) -> Result<(Plan, Scope)> {
        let widths = (ls.columns.len(), rs.columns.len());
        let mut conds = Vec::new();
        let mut right_hidden = Vec::new();
        let mut left_hidden = Vec::new();
        for n in &names {
            let li = ls
                .columns
                .iter()
                .position(|c| &c.name == n && !c.hidden)
                .ok_or_else(|| {
                    err(
                        sqlstate::UNDEFINED_COLUMN,
                        format!(
                            "column \"{n}\" specified in USING clause does not exist in left table"
                        ),
                    )
                })?;
            let ri = rs.columns.iter().position(|c| &c.name == n && !c.hidden).ok_or_else(|| {
                err(sqlstate::UNDEFINED_COLUMN, format!("column \"{n}\" specified in USING clause does not exist in right table"))
            })?;
            let lt = ls.columns[li].ty;
            let rt = rs.columns[ri].ty;
            ops::binary_result_type(BinaryOp::Eq, &lt, &rt)?;
            conds.push(Expr::Binary(
                BinaryOp::Eq,
                Box::new(Expr::Column(li)),
                Box::new(Expr::Column(widths.0 + ri)),
            ));
            if kind == JoinKind::Right {
                left_hidden.push(li);
            } else {
                right_hidden.push(ri);
            }
        }
        let mut scope = Scope {
            columns: ls.columns.clone(),
        };
        for i in &left_hidden {
            scope.columns[*i].hidden = true;
            scope.columns[*i].table = Some(format!(
                "{}\u{0}",
                scope.columns[*i].table.clone().unwrap_or_default()
            ));
        }
        for (i, c) in rs.columns.iter().enumerate() {
            let mut c = c.clone();
            if right_hidden.contains(&i) {
                // Still reachable qualified, but not unqualified or by `*`.
                c.hidden = true;
                if kind == JoinKind::Full {
                    c.hidden = true;
                }
            }
            scope.columns.push(c);
        }
        // Unqualified references to a USING column resolve to the visible one.
        let on = crate::expr::conjoin(conds);
        let plan = Plan::Join {
            left: Box::new(lp),
            right: Box::new(rp),
            kind,
            equi: vec![],
            on,
            widths,
        };
        if kind == JoinKind::Full {
            // FULL JOIN USING: the merged column is COALESCE(left, right).
            let mut exprs: Vec<Expr> = (0..scope.columns.len()).map(Expr::Column).collect();
            for n in &names {
                let li = ls
                    .columns
                    .iter()
                    .position(|c| &c.name == n && !c.hidden)
                    .unwrap();
                let ri = rs
                    .columns
                    .iter()
                    .position(|c| &c.name == n && !c.hidden)
                    .unwrap();
                exprs[li] = Expr::Coalesce(vec![Expr::Column(li), Expr::Column(widths.0 + ri)]);
            }
            return Ok((
                Plan::Project {
                    input: Box::new(plan),
                    exprs,
                },
                scope,
            ));
        }
        Ok((plan, scope))
    }

    /// A system view (`reef_catalog.<view>`): its rows as of now, as literal rows.
    fn bind_system_view(
        &mut self,
        name: &str,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        let shape = crate::system::find(crate::system::SCHEMA, name)
            .ok_or_else(|| crate::system::undefined(name))?;
        self.volatile = true;
        let qual = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| name.to_string());
        let rows = self
            .catalog
            .catalog
            .system_rows(name)?
            .into_iter()
            .map(|row| {
                if row.len() != shape.columns.len() {
                    return Err(SqlError::internal(format!(
                        "system view {name} got a row of {} values for {} columns",
                        row.len(),
                        shape.columns.len()
                    )));
                }
                Ok(row.into_iter().map(Expr::Literal).collect())
            })
            .collect::<Result<Vec<Vec<Expr>>>>()?;
        literal_relation(
            qual,
            shape.columns.iter().map(|(name, ty)| (*name, *ty)),
            rows,
            alias,
        )
    }

    /// A relation of `pg_catalog`: its rows as the statement's catalog view sees them, as
    /// literal rows (see `pg_catalog.rs`).
    fn bind_catalog_relation(
        &mut self,
        rel: &'static crate::pg_catalog::Relation,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        let snap = self.catalog_snapshot(matches!(rel.name, "pg_attribute" | "pg_class"));
        let rows = crate::pg_catalog::rows(rel, &snap);
        let qual = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| rel.name.to_string());
        let columns = rel.columns();
        literal_relation(qual, columns.iter().map(|c| (c.name, c.ty)), rows, alias)
    }

    /// The user's objects for the catalog relations; with `view_types`, each view's column
    /// types too, found by binding its query.
    fn catalog_snapshot(&self, view_types: bool) -> crate::pg_catalog::Snapshot {
        let mut snap = crate::pg_catalog::Snapshot::new(&self.catalog);
        if view_types && !self.typing_views {
            for o in &snap.objects {
                if let Object::View(v) = &**o {
                    let mut b = Binder::new(self.catalog, vec![]);
                    b.typing_views = true;
                    if let Ok(bound) = parse_query(&v.query).and_then(|q| b.bind_query(&q)) {
                        snap.view_types.insert(
                            v.id,
                            bound
                                .scope
                                .columns
                                .iter()
                                .map(|c| (c.name.clone(), c.ty))
                                .collect(),
                        );
                    }
                }
            }
        }
        snap
    }

    /// The catalog lookups of this statement, made on first use.
    fn lookups(&mut self) -> Arc<crate::pg_catalog::Lookups> {
        if self.lookups.is_none() {
            let snap = self.catalog_snapshot(false);
            self.lookups = Some(Arc::new(crate::pg_catalog::Lookups::new(&snap)));
        }
        self.lookups.clone().unwrap_or_else(|| unreachable!())
    }

    /// A view of `information_schema`: SQL over `pg_catalog`, bound like a user view.
    fn bind_information_schema(
        &mut self,
        name: &str,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        let sql = crate::pg_catalog::information_schema_view(name).ok_or_else(|| {
            crate::catalog::undefined_table(&format!(
                "{}.{name}",
                crate::pg_catalog::INFORMATION_SCHEMA
            ))
        })?;
        let q = parse_query(sql)?;
        // The view's own names must not see the statement's outer scopes.
        let outer = std::mem::take(&mut self.outer);
        let bound = self.bind_query(&q);
        self.outer = outer;
        let b = bound?;
        let qual = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| name.to_string());
        let mut scope = b.scope;
        let names: Vec<String> = scope.columns.iter().map(|c| c.name.clone()).collect();
        rename_scope(&mut scope, &qual, &names)?;
        if let Some(a) = alias {
            let cols: Vec<String> = a.columns.iter().map(|c| ident_name(&c.name)).collect();
            rename_scope(&mut scope, &qual, &cols)?;
        }
        Ok((b.plan, scope))
    }

    fn bind_table_factor(&mut self, tf: &ast::TableFactor) -> Result<(Plan, Scope)> {
        match tf {
            ast::TableFactor::Table {
                name,
                alias,
                args,
                with_ordinality,
                ..
            } => {
                if let [ast::ObjectNamePart::Identifier(schema), ast::ObjectNamePart::Identifier(view)] =
                    name.0.as_slice()
                {
                    let (schema, view) = (ident_name(schema), ident_name(view));
                    if schema == crate::system::SCHEMA {
                        return self.bind_system_view(&view, alias.as_ref());
                    }
                    if args.is_none() && schema == crate::pg_catalog::SCHEMA {
                        let rel = crate::pg_catalog::find(&view).ok_or_else(|| {
                            crate::catalog::undefined_table(&format!("{schema}.{view}"))
                        })?;
                        return self.bind_catalog_relation(rel, alias.as_ref());
                    }
                    if schema == crate::pg_catalog::INFORMATION_SCHEMA {
                        return self.bind_information_schema(&view, alias.as_ref());
                    }
                }
                let n = object_name(name)?;
                if let Some(args) = args {
                    if n == "unnest" || n == "pg_partition_ancestors" {
                        return self.bind_array_table_function(
                            &n,
                            &args.args,
                            *with_ordinality,
                            alias.as_ref(),
                        );
                    }
                    return self.bind_table_function(&n, &args.args, alias.as_ref());
                }
                // CTE?
                let cte = self.ctes.iter().rev().find_map(|m| m.get(&n).cloned());
                if let Some((q, cols)) = cte {
                    let b = self.bind_derived(&q)?;
                    let qual = alias
                        .as_ref()
                        .map(|a| ident_name(&a.name))
                        .unwrap_or(n.clone());
                    let mut scope = b.scope;
                    rename_scope(&mut scope, &qual, &cols)?;
                    if let Some(a) = alias {
                        let cols: Vec<String> =
                            a.columns.iter().map(|c| ident_name(&c.name)).collect();
                        rename_scope(&mut scope, &qual, &cols)?;
                    }
                    return Ok((b.plan, scope));
                }
                let obj = match self.catalog.get_by_name(&n) {
                    Some(obj) => obj,
                    None => match crate::pg_catalog::find(&n) {
                        // pg_catalog is on every search path, after the user's relations here
                        // (PostgreSQL looks there first, but refuses user tables named pg_*).
                        Some(rel) => return self.bind_catalog_relation(rel, alias.as_ref()),
                        None => return Err(crate::catalog::undefined_table(&n)),
                    },
                };
                let qual = alias
                    .as_ref()
                    .map(|a| ident_name(&a.name))
                    .unwrap_or(n.clone());
                match &*obj {
                    Object::Table(t) => {
                        let table = Arc::new(t.clone());
                        let mut scope = Scope {
                            columns: t
                                .columns
                                .iter()
                                .map(|c| ScopeColumn {
                                    table: Some(qual.clone()),
                                    name: c.name.clone(),
                                    ty: c.ty,
                                    hidden: c.hidden,
                                })
                                .collect(),
                        };
                        if let Some(a) = alias {
                            let cols: Vec<String> =
                                a.columns.iter().map(|c| ident_name(&c.name)).collect();
                            rename_scope(&mut scope, &qual, &cols)?;
                        }
                        let needed = vec![true; t.columns.len()];
                        Ok((
                            Plan::Scan {
                                table,
                                needed,
                                filter: None,
                                access: Access::Full,
                                limit: None,
                            },
                            scope,
                        ))
                    }
                    Object::View(v) => {
                        let q = parse_query(&v.query)?;
                        let b = self.bind_derived(&q)?;
                        let mut scope = b.scope;
                        rename_scope(&mut scope, &qual, &v.column_names)?;
                        if let Some(a) = alias {
                            let cols: Vec<String> =
                                a.columns.iter().map(|c| ident_name(&c.name)).collect();
                            rename_scope(&mut scope, &qual, &cols)?;
                        }
                        Ok((b.plan, scope))
                    }
                    Object::Sequence(_) => Err(SqlError::unsupported(
                        "selecting from a sequence is not supported",
                    )),
                }
            }
            ast::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(SqlError::unsupported("LATERAL is not supported"));
                }
                if alias.is_none() {
                    return Err(err(
                        sqlstate::SYNTAX_ERROR,
                        "subquery in FROM must have an alias",
                    )
                    .with_hint("For example, FROM (SELECT ...) [AS] foo."));
                }
                let b = self.bind_derived(subquery)?;
                let mut scope = b.scope;
                match alias {
                    Some(a) => {
                        let qual = ident_name(&a.name);
                        let cols: Vec<String> =
                            a.columns.iter().map(|c| ident_name(&c.name)).collect();
                        rename_scope(&mut scope, &qual, &cols)?;
                    }
                    None => {
                        for c in scope.columns.iter_mut() {
                            c.table = None;
                        }
                    }
                }
                Ok((b.plan, scope))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (p, mut s) = self.bind_table_with_joins(table_with_joins)?;
                if let Some(a) = alias {
                    let qual = ident_name(&a.name);
                    let cols: Vec<String> = a.columns.iter().map(|c| ident_name(&c.name)).collect();
                    rename_scope(&mut s, &qual, &cols)?;
                }
                Ok((p, s))
            }
            ast::TableFactor::Function {
                name,
                args,
                alias,
                with_ordinality,
                ..
            } => {
                let n = object_name(name)?;
                if n == "unnest" || n == "pg_partition_ancestors" {
                    return self.bind_array_table_function(
                        &n,
                        args,
                        *with_ordinality,
                        alias.as_ref(),
                    );
                }
                self.bind_table_function(&n, args, alias.as_ref())
            }
            ast::TableFactor::UNNEST {
                alias,
                array_exprs,
                with_ordinality,
                ..
            } => {
                let args: Vec<ast::FunctionArg> = array_exprs
                    .iter()
                    .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e.clone())))
                    .collect();
                self.bind_array_table_function("unnest", &args, *with_ordinality, alias.as_ref())
            }
            _ => Err(SqlError::unsupported("this FROM item is not supported")),
        }
    }

    /// A derived table is bound with the current outer scopes but no access
    /// to sibling FROM items (no LATERAL).
    fn bind_derived(&mut self, q: &ast::Query) -> Result<BoundQuery> {
        self.bind_query(q)
    }

    /// A set-returning function in FROM other than generate_series (`unnest(a)`,
    /// `pg_partition_ancestors(oid)`), optionally WITH ORDINALITY: a ProjectSet over one empty
    /// row. Its arguments may refer to enclosing queries.
    fn bind_array_table_function(
        &mut self,
        name: &str,
        args: &[ast::FunctionArg],
        with_ordinality: bool,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        let empty = Scope::default();
        let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] = args else {
            return Err(err(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {name} takes one argument"),
            ));
        };
        let (a, at) = self.bind_expr(e, &empty)?;
        let (array, elem) = if name == "pg_partition_ancestors" {
            (
                Expr::Func("pg_partition_ancestors".into(), vec![a]),
                DataType::Int64,
            )
        } else {
            let Some(elem) = at.element() else {
                return Err(err(
                    sqlstate::UNDEFINED_FUNCTION,
                    format!("function {name}({at}) does not exist"),
                ));
            };
            (a, elem)
        };
        let mut srfs = vec![array.clone()];
        let mut types = vec![elem];
        if with_ordinality {
            srfs.push(Expr::Func(
                "reef_array_subscripts".into(),
                vec![array, Expr::Literal(Value::Int32(1))],
            ));
            types.push(DataType::Int64);
        }
        let qual = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| name.to_string());
        let mut names: Vec<String> = vec![if alias.is_some()
            && alias.is_some_and(|a| a.columns.is_empty())
        {
            qual.clone()
        } else {
            name.to_string()
        }];
        if with_ordinality {
            names.push("ordinality".into());
        }
        if let Some(a) = alias {
            for (i, c) in a.columns.iter().enumerate() {
                if i < names.len() {
                    names[i] = ident_name(&c.name);
                }
            }
        }
        let scope = Scope {
            columns: names
                .into_iter()
                .zip(types)
                .map(|(n, ty)| ScopeColumn {
                    table: Some(qual.clone()),
                    name: n,
                    ty,
                    hidden: false,
                })
                .collect(),
        };
        let plan = Plan::ProjectSet {
            input: Box::new(Plan::Values {
                rows: vec![vec![]],
                width: 0,
            }),
            srfs,
        };
        Ok((plan, scope))
    }

    fn bind_table_function(
        &mut self,
        name: &str,
        args: &[ast::FunctionArg],
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        if name != "generate_series" {
            return Err(err(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {name} does not exist"),
            ));
        }
        if args.len() < 2 || args.len() > 3 {
            return Err(err(
                sqlstate::UNDEFINED_FUNCTION,
                "function generate_series requires 2 or 3 arguments",
            ));
        }
        let mut bound = Vec::new();
        let mut ty = DataType::Int32;
        let empty = Scope::default();
        let mut raw = Vec::new();
        for a in args {
            let e = match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => e,
                _ => return Err(SqlError::unsupported("named arguments are not supported")),
            };
            let (x, t) = self.bind_expr(e, &empty)?;
            raw.push((x, t));
        }
        for (i, (_, t)) in raw.iter().enumerate() {
            if i == 2 && matches!(t, DataType::Interval) {
                continue;
            }
            ty = match (ty, *t) {
                (_, DataType::Timestamp) | (DataType::Timestamp, _) => DataType::Timestamp,
                (_, DataType::TimestampTz) | (DataType::TimestampTz, _) => DataType::TimestampTz,
                (_, DataType::Numeric(_)) | (DataType::Numeric(_), _) => DataType::Numeric(None),
                (_, DataType::Int64) | (DataType::Int64, _) => DataType::Int64,
                (a, DataType::Unknown) => a,
                (a, DataType::Int32 | DataType::Int16) => a,
                (_, other) => {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("function generate_series({other}) does not exist"),
                    ))
                }
            };
        }
        for (i, (x, t)) in raw.into_iter().enumerate() {
            let target = if i == 2 && matches!(ty, DataType::Timestamp | DataType::TimestampTz) {
                DataType::Interval
            } else {
                ty
            };
            bound.push(self.coerce(x, t, target, "generate_series")?);
        }
        let qual = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| "generate_series".into());
        let col = alias
            .and_then(|a| a.columns.first().map(|c| ident_name(&c.name)))
            .unwrap_or_else(|| {
                if alias.is_some() {
                    qual.clone()
                } else {
                    "generate_series".into()
                }
            });
        let scope = Scope {
            columns: vec![ScopeColumn {
                table: Some(qual),
                name: col,
                ty,
                hidden: false,
            }],
        };
        Ok((Plan::GenerateSeries { args: bound, ty }, scope))
    }

    // ----- expressions -----

    /// Binds a boolean predicate.
    pub fn bind_predicate(&mut self, e: &ast::Expr, scope: &Scope, clause: &str) -> Result<Expr> {
        let saved = std::mem::replace(&mut self.clause, clause.to_string());
        let r = self.bind_expr(e, scope);
        self.clause = saved;
        let (x, t) = r?;
        if clause != "HAVING" && self.aggs.is_none() && contains_agg_expr(&x) {
            return Err(err(
                sqlstate::GROUPING_ERROR,
                format!("aggregate functions are not allowed in {clause}"),
            ));
        }
        match t {
            DataType::Bool => Ok(x),
            DataType::Unknown => self.coerce(x, t, DataType::Bool, clause),
            other => Err(err(
                sqlstate::DATATYPE_MISMATCH,
                format!("argument of {clause} must be type boolean, not type {other}"),
            )),
        }
    }

    /// Converts `x` of type `from` to `to` where PostgreSQL would do so
    /// implicitly; unknown literals and parameters take the target type.
    pub fn coerce(&mut self, x: Expr, from: DataType, to: DataType, ctx: &str) -> Result<Expr> {
        if from == to || to == DataType::Unknown {
            return Ok(x);
        }
        match x {
            Expr::Param(i, DataType::Unknown) => {
                if self.params[i] == DataType::Unknown {
                    self.params[i] = to;
                }
                let pt = self.params[i];
                if pt == to {
                    return Ok(Expr::Param(i, to));
                }
                return Ok(Expr::Cast(Box::new(Expr::Param(i, pt)), to));
            }
            Expr::Literal(Value::Null) => return Ok(Expr::Literal(Value::Null)),
            Expr::Literal(Value::Text(s)) if from == DataType::Unknown => {
                if to.is_string() {
                    return Ok(Expr::Literal(cast::cast(Value::Text(s), &to)?));
                }
                return Ok(Expr::Literal(text::parse_text(&s, &to)?));
            }
            x => {
                if from == DataType::Unknown
                    || cast::implicit_cast_allowed(&from, &to)
                    || from.base() == to.base()
                {
                    Ok(Expr::Cast(Box::new(x), to))
                } else {
                    Err(err(
                        sqlstate::DATATYPE_MISMATCH,
                        format!("{ctx}: cannot use a value of type {from} where {to} is expected"),
                    ))
                }
            }
        }
    }

    /// Binds a scalar expression against a scope; returns it with its type.
    pub fn bind_expr(&mut self, e: &ast::Expr, scope: &Scope) -> Result<(Expr, DataType)> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => self.resolve_column(None, &ident_name(id), scope),
            E::CompoundIdentifier(ids) => {
                let names: Vec<String> = ids.iter().map(ident_name).collect();
                match names.len() {
                    2 => self.resolve_column(Some(&names[0]), &names[1], scope),
                    3 => self.resolve_column(Some(&names[1]), &names[2], scope),
                    _ => Err(err(
                        sqlstate::SYNTAX_ERROR,
                        format!("improper qualified name: {e}"),
                    )),
                }
            }
            E::Value(v) => self.bind_value(&v.value),
            E::TypedString(ts) => {
                let ty = convert_type(&ts.data_type)?;
                let s = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok((Expr::Literal(text::parse_text(&s, &ty)?), ty))
            }
            E::Interval(iv) => {
                let (x, t) = self.bind_expr(&iv.value, scope)?;
                let s = match x {
                    Expr::Literal(Value::Text(s)) => s,
                    Expr::Literal(v) => text::format_text(&v),
                    _ => {
                        let _ = t;
                        return Err(SqlError::unsupported("INTERVAL needs a constant string"));
                    }
                };
                let s = match &iv.leading_field {
                    Some(f) if !s.chars().any(|c| c.is_alphabetic()) && !s.contains(':') => {
                        format!("{s} {f}")
                    }
                    _ => s,
                };
                Ok((
                    Expr::Literal(text::parse_text(&s, &DataType::Interval)?),
                    DataType::Interval,
                ))
            }
            E::Nested(inner) => self.bind_expr(inner, scope),
            E::UnaryOp { op, expr } => {
                // Fold negative numeric literals so -2147483648 is an integer.
                if matches!(op, ast::UnaryOperator::Minus) {
                    if let E::Value(ast::ValueWithSpan {
                        value: ast::Value::Number(n, _),
                        ..
                    }) = &**expr
                    {
                        return self.bind_number(&format!("-{n}"));
                    }
                }
                let (x, t) = self.bind_expr(expr, scope)?;
                let uop = match op {
                    ast::UnaryOperator::Minus => UnaryOp::Neg,
                    ast::UnaryOperator::Plus => UnaryOp::Plus,
                    ast::UnaryOperator::Not => UnaryOp::Not,
                    ast::UnaryOperator::BitwiseNot => UnaryOp::BitNot,
                    ast::UnaryOperator::PGAbs => {
                        return self.bind_func_call("abs", vec![(x, t)]);
                    }
                    ast::UnaryOperator::PGSquareRoot => {
                        return self.bind_func_call("sqrt", vec![(x, t)])
                    }
                    ast::UnaryOperator::PGCubeRoot => {
                        return self.bind_func_call("cbrt", vec![(x, t)])
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "operator {other} is not supported"
                        )))
                    }
                };
                let (x, t) = if uop == UnaryOp::Not {
                    (self.coerce(x, t, DataType::Bool, "NOT")?, DataType::Bool)
                } else if t == DataType::Unknown {
                    (
                        self.coerce(x, t, DataType::Numeric(None), "unary operator")?,
                        DataType::Numeric(None),
                    )
                } else {
                    (x, t)
                };
                if uop == UnaryOp::Not && t != DataType::Bool {
                    return Err(err(
                        sqlstate::DATATYPE_MISMATCH,
                        format!("argument of NOT must be type boolean, not type {t}"),
                    ));
                }
                if matches!(uop, UnaryOp::Neg | UnaryOp::Plus)
                    && !(t.is_numeric() || t == DataType::Interval)
                {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!(
                            "operator does not exist: {}{}",
                            if uop == UnaryOp::Neg { "-" } else { "+" },
                            t
                        ),
                    ));
                }
                let folded = Expr::Unary(uop, Box::new(x));
                Ok((self.fold(folded)?, t))
            }
            E::BinaryOp { left, op, right } => self.bind_binary(left, op, right, scope),
            E::IsNull(x) => {
                let (x, _) = self.bind_expr(x, scope)?;
                Ok((Expr::IsNull(Box::new(x), false), DataType::Bool))
            }
            E::IsNotNull(x) => {
                let (x, _) = self.bind_expr(x, scope)?;
                Ok((Expr::IsNull(Box::new(x), true), DataType::Bool))
            }
            E::IsTrue(x)
            | E::IsNotTrue(x)
            | E::IsFalse(x)
            | E::IsNotFalse(x)
            | E::IsUnknown(x)
            | E::IsNotUnknown(x) => {
                let (bx, t) = self.bind_expr(x, scope)?;
                let bx = self.coerce(bx, t, DataType::Bool, "IS")?;
                let (want, neg) = match e {
                    E::IsTrue(_) => (Some(true), false),
                    E::IsNotTrue(_) => (Some(true), true),
                    E::IsFalse(_) => (Some(false), false),
                    E::IsNotFalse(_) => (Some(false), true),
                    E::IsUnknown(_) => (None, false),
                    _ => (None, true),
                };
                Ok((Expr::IsBool(Box::new(bx), want, neg), DataType::Bool))
            }
            E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => {
                let (a, b) = self.bind_comparable(a, b, scope, "IS DISTINCT FROM")?;
                Ok((
                    Expr::IsDistinct(
                        Box::new(a),
                        Box::new(b),
                        matches!(e, E::IsNotDistinctFrom(..)),
                    ),
                    DataType::Bool,
                ))
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, xt) = self.bind_expr(expr, scope)?;
                let (lo, lt) = self.bind_expr(low, scope)?;
                let (hi, ht) = self.bind_expr(high, scope)?;
                let (x1, lo) = self.unify_pair(x.clone(), xt, lo, lt, "BETWEEN")?;
                let (x2, hi) = self.unify_pair(x, xt, hi, ht, "BETWEEN")?;
                let ge = Expr::Binary(BinaryOp::GtEq, Box::new(x1), Box::new(lo));
                let le = Expr::Binary(BinaryOp::LtEq, Box::new(x2), Box::new(hi));
                let both = Expr::Binary(BinaryOp::And, Box::new(ge), Box::new(le));
                let x = if *negated {
                    Expr::Unary(UnaryOp::Not, Box::new(both))
                } else {
                    both
                };
                Ok((self.fold(x)?, DataType::Bool))
            }
            E::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => {
                let (x, xt) = self.bind_expr(expr, scope)?;
                let mut items = Vec::new();
                let mut ty = xt;
                for item in list {
                    let (ix, it) = self.bind_expr(item, scope)?;
                    if ty == DataType::Unknown {
                        ty = it;
                    } else if it != DataType::Unknown && it != ty {
                        ty = self.unify(ty, it, "IN")?;
                    }
                    items.push((ix, it));
                }
                let x = self.coerce(
                    x,
                    xt,
                    if ty == DataType::Unknown {
                        DataType::Text
                    } else {
                        ty
                    },
                    "IN",
                )?;
                let mut out = Vec::new();
                for (ix, it) in items {
                    let target = if ty == DataType::Unknown {
                        DataType::Text
                    } else {
                        ty
                    };
                    let ix = self.coerce(ix, it, target, "IN")?;
                    out.push(ix);
                }
                Ok((
                    self.fold(Expr::InList {
                        expr: Box::new(x),
                        list: out,
                        negated: *negated,
                    })?,
                    DataType::Bool,
                ))
            }
            E::In {
                expr,
                target: ast::InTarget::Subquery(subquery),
                negated,
                ..
            } => {
                let (x, xt) = self.bind_expr(expr, scope)?;
                let (sub, cols) = self.bind_subquery(subquery, scope)?;
                if cols.len() != 1 {
                    return Err(err(sqlstate::SYNTAX_ERROR, "subquery has too many columns"));
                }
                let x = if xt == DataType::Unknown {
                    self.coerce(x, xt, cols[0], "IN")?
                } else {
                    x
                };
                if xt != DataType::Unknown {
                    ops::binary_result_type(BinaryOp::Eq, &xt, &cols[0])?;
                }
                Ok((
                    Expr::Subquery(SubqueryKind::Any(Box::new(x), BinaryOp::Eq), sub, *negated),
                    DataType::Bool,
                ))
            }
            E::AnyOp {
                left,
                compare_op,
                right,
                ..
            }
            | E::AllOp {
                left,
                compare_op,
                right,
            } => {
                let is_all = matches!(e, E::AllOp { .. });
                let op = comparison_op(compare_op)?;
                let (x, xt) = self.bind_expr(left, scope)?;
                let q = match &**right {
                    E::Subquery(q) => q,
                    arr => return self.bind_array_any(x, xt, op, is_all, arr, scope),
                };
                let (sub, cols) = self.bind_subquery(q, scope)?;
                if cols.len() != 1 {
                    return Err(err(sqlstate::SYNTAX_ERROR, "subquery has too many columns"));
                }
                let x = if xt == DataType::Unknown {
                    self.coerce(x, xt, cols[0], "ANY")?
                } else {
                    x
                };
                let kind = if is_all {
                    SubqueryKind::All(Box::new(x), op)
                } else {
                    SubqueryKind::Any(Box::new(x), op)
                };
                Ok((Expr::Subquery(kind, sub, false), DataType::Bool))
            }
            E::Exists { subquery, negated } => {
                let (sub, _) = self.bind_subquery(subquery, scope)?;
                Ok((
                    Expr::Subquery(SubqueryKind::Exists, sub, *negated),
                    DataType::Bool,
                ))
            }
            E::Subquery(q) => {
                let (sub, cols) = self.bind_subquery(q, scope)?;
                if cols.len() != 1 {
                    return Err(err(
                        sqlstate::SYNTAX_ERROR,
                        "subquery must return only one column",
                    ));
                }
                Ok((Expr::Subquery(SubqueryKind::Scalar, sub, false), cols[0]))
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            } => {
                if *any {
                    return Err(SqlError::unsupported("LIKE ANY is not supported"));
                }
                let ci = matches!(e, E::ILike { .. });
                self.bind_like(expr, pattern, escape_char.as_deref(), *negated, ci, scope)
            }
            E::Cast {
                expr,
                data_type,
                kind,
                ..
            } => {
                if matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast) {
                    return Err(SqlError::unsupported("TRY_CAST is not supported"));
                }
                if let ast::DataType::Regclass = data_type {
                    let (x, t) = self.bind_expr(expr, scope)?;
                    return self.bind_reg_cast("regclass", x, t);
                }
                if let ast::DataType::Custom(name, _) = data_type {
                    let n = object_name(name)?;
                    if matches!(
                        n.as_str(),
                        "regclass" | "regtype" | "regproc" | "regnamespace" | "regrole" | "oid"
                    ) {
                        let (x, t) = self.bind_expr(expr, scope)?;
                        return self.bind_reg_cast(&n, x, t);
                    }
                }
                let ty = convert_type(data_type)?;
                let (x, t) = self.bind_expr(expr, scope)?;
                if t == DataType::Int2Vector && ty.is_string() {
                    // int2vector's text form is its numbers separated by spaces.
                    let sep = Expr::Literal(Value::Text(" ".into()));
                    let x = Expr::Func("array_to_string".into(), vec![x, sep]);
                    return Ok((self.fold(Expr::Cast(Box::new(x), ty))?, ty));
                }
                if let Expr::Param(i, DataType::Unknown) = x {
                    if self.params[i] == DataType::Unknown {
                        self.params[i] = ty;
                    }
                    let pt = self.params[i];
                    return Ok((
                        if pt == ty {
                            Expr::Param(i, ty)
                        } else {
                            Expr::Cast(Box::new(Expr::Param(i, pt)), ty)
                        },
                        ty,
                    ));
                }
                if t == ty {
                    return Ok((x, ty));
                }
                Ok((self.fold(Expr::Cast(Box::new(x), ty))?, ty))
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.bind_case(
                operand.as_deref(),
                conditions,
                else_result.as_deref(),
                scope,
            ),
            E::Function(f) => self.bind_function(f, scope),
            E::Extract { field, expr, .. } => {
                let (x, t) = self.bind_expr(expr, scope)?;
                let field_name = format!("{field}").to_lowercase();
                let x = if t == DataType::Unknown {
                    self.coerce(x, t, DataType::Timestamp, "EXTRACT")?
                } else {
                    x
                };
                let t = if t == DataType::Unknown {
                    DataType::Timestamp
                } else {
                    t
                };
                self.bind_func_call(
                    "extract",
                    vec![
                        (Expr::Literal(Value::Text(field_name)), DataType::Text),
                        (x, t),
                    ],
                )
            }
            E::Ceil { expr, .. } => {
                let b = self.bind_expr(expr, scope)?;
                self.bind_func_call("ceil", vec![b])
            }
            E::Floor { expr, .. } => {
                let b = self.bind_expr(expr, scope)?;
                self.bind_func_call("floor", vec![b])
            }
            E::Position { expr, r#in } => {
                let needle = self.bind_expr(expr, scope)?;
                let hay = self.bind_expr(r#in, scope)?;
                self.bind_func_call("strpos", vec![hay, needle])
            }
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.bind_expr(expr, scope)?];
                match substring_from {
                    Some(f) => args.push(self.bind_expr(f, scope)?),
                    None => args.push((Expr::Literal(Value::Int32(1)), DataType::Int32)),
                }
                if let Some(f) = substring_for {
                    args.push(self.bind_expr(f, scope)?);
                }
                self.bind_func_call("substr", args)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![self.bind_expr(expr, scope)?];
                if let Some(w) = trim_what {
                    args.push(self.bind_expr(w, scope)?);
                } else if let Some(chars) = trim_characters {
                    if let Some(c) = chars.first() {
                        args.push(self.bind_expr(c, scope)?);
                    }
                }
                self.bind_func_call(name, args)
            }
            E::AtTimeZone { .. } => Err(SqlError::unsupported("AT TIME ZONE is not supported yet")),
            E::Collate { expr, .. } => self.bind_expr(expr, scope),
            E::Tuple(_) => Err(SqlError::unsupported("row constructors are not supported")),
            E::Array(a) => {
                let mut items = Vec::new();
                let mut ty = DataType::Unknown;
                for el in &a.elem {
                    let (x, t) = self.bind_expr(el, scope)?;
                    if t != DataType::Unknown {
                        ty = if ty == DataType::Unknown {
                            t
                        } else {
                            self.unify(ty, t, "ARRAY")?
                        };
                    }
                    items.push((x, t));
                }
                let ty = if ty == DataType::Unknown {
                    DataType::Text
                } else {
                    ty
                };
                let mut xs = Vec::new();
                for (x, t) in items {
                    xs.push(self.cast_to(x, t, ty)?);
                }
                let x = Expr::Func("reef_array".into(), xs);
                Ok((self.fold(x)?, DataType::array_of(ty)))
            }
            E::CompoundFieldAccess { root, access_chain } => {
                // `con.confkey[pos.n]` arrives as `con` then `.confkey` then the subscript:
                // leading dotted names are a column reference.
                let mut names = match &**root {
                    E::Identifier(id) => vec![id.clone()],
                    E::CompoundIdentifier(ids) => ids.clone(),
                    _ => vec![],
                };
                let mut rest = access_chain.as_slice();
                if !names.is_empty() {
                    while let Some(ast::AccessExpr::Dot(E::Identifier(id))) = rest.first() {
                        names.push(id.clone());
                        rest = &rest[1..];
                    }
                }
                let (mut x, mut t) = if names.len() > 1 {
                    self.bind_expr(&E::CompoundIdentifier(names), scope)?
                } else {
                    self.bind_expr(root, scope)?
                };
                for access in rest {
                    if let (ast::AccessExpr::Dot(E::Identifier(field)), DataType::Record(fields)) =
                        (access, t)
                    {
                        let name = ident_name(field);
                        let Some(pos) = fields.iter().position(|(f, _)| *f == name) else {
                            return Err(err(
                                sqlstate::UNDEFINED_COLUMN,
                                format!("could not identify column \"{name}\" in record data type"),
                            ));
                        };
                        x = Expr::Func(
                            "reef_array_get".into(),
                            vec![
                                x,
                                Expr::Literal(Value::Int32(pos as i32 + 1)),
                                Expr::Literal(Value::Int32(1)),
                            ],
                        );
                        t = fields[pos].1;
                        continue;
                    }
                    let index = match access {
                        ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => index,
                        _ => return Err(SqlError::unsupported(format!("expression {e}"))),
                    };
                    let Some(elem) = t.element() else {
                        return Err(err(
                            sqlstate::DATATYPE_MISMATCH,
                            format!("cannot subscript type {t} because it does not support subscripting"),
                        ));
                    };
                    let (i, it) = self.bind_expr(index, scope)?;
                    let i = self.coerce(i, it, DataType::Int32, "array subscript")?;
                    // int2vector counts from 0, arrays from 1.
                    let lower = if t == DataType::Int2Vector { 0 } else { 1 };
                    x = Expr::Func(
                        "reef_array_get".into(),
                        vec![x, i, Expr::Literal(Value::Int32(lower))],
                    );
                    t = elem;
                }
                Ok((self.fold(x)?, t))
            }
            other => Err(SqlError::unsupported(format!(
                "expression {other} is not supported"
            ))),
        }
    }

    /// `x = ANY (array)` and `x <> ALL (array)`.
    fn bind_array_any(
        &mut self,
        x: Expr,
        xt: DataType,
        op: BinaryOp,
        is_all: bool,
        arr: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let (a, at) = self.bind_expr(arr, scope)?;
        let (a, at) = if at == DataType::Unknown {
            let target = DataType::array_of(if xt == DataType::Unknown {
                DataType::Text
            } else {
                xt
            });
            (self.coerce(a, at, target, "ANY")?, target)
        } else {
            (a, at)
        };
        let Some(elem) = at.element() else {
            return Err(err(
                sqlstate::DATATYPE_MISMATCH,
                format!("op ANY/ALL (array) requires array on right side, not {at}"),
            ));
        };
        let x = if xt == DataType::Unknown {
            self.coerce(x, xt, elem, "ANY")?
        } else {
            x
        };
        let name = match (is_all, op) {
            (false, BinaryOp::Eq) => "reef_array_any_eq",
            (true, BinaryOp::NotEq) => "reef_array_all_ne",
            _ => {
                return Err(SqlError::unsupported(
                    "only = ANY and <> ALL are supported over arrays",
                ))
            }
        };
        Ok((
            self.fold(Expr::Func(name.into(), vec![x, a]))?,
            DataType::Bool,
        ))
    }

    fn fold(&self, x: Expr) -> Result<Expr> {
        // Constant folding would change when errors surface (PostgreSQL also
        // folds, so errors like 1/0 in constants raise at plan time).
        if x.is_constant() && !matches!(x, Expr::Literal(_)) {
            let ctx = crate::exec::ExecContext::constant();
            // A constant that fails to evaluate stays unfolded: the error
            // surfaces only if the expression is evaluated (a CASE branch
            // never taken must not fail the statement).
            if let Ok(v) = x.eval(&[], &ctx) {
                return Ok(Expr::Literal(v));
            }
        }
        Ok(x)
    }

    fn bind_value(&mut self, v: &ast::Value) -> Result<(Expr, DataType)> {
        match v {
            ast::Value::Number(n, _) => self.bind_number(n),
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. })
            | ast::Value::UnicodeStringLiteral(s) => {
                Ok((Expr::Literal(Value::Text(s.clone())), DataType::Unknown))
            }
            ast::Value::NationalStringLiteral(s) => {
                Ok((Expr::Literal(Value::Text(s.clone())), DataType::Unknown))
            }
            ast::Value::HexStringLiteral(_) => Err(SqlError::unsupported(
                "bit string literals are not supported",
            )),
            ast::Value::Boolean(b) => Ok((Expr::Literal(Value::Bool(*b)), DataType::Bool)),
            ast::Value::Null => Ok((Expr::Literal(Value::Null), DataType::Unknown)),
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| err(sqlstate::SYNTAX_ERROR, format!("invalid parameter {p}")))?;
                if n == 0 {
                    return Err(err(
                        sqlstate::UNDEFINED_PARAMETER,
                        format!("there is no parameter {p}"),
                    ));
                }
                if n > 65535 {
                    return Err(err(
                        sqlstate::UNDEFINED_PARAMETER,
                        format!("there is no parameter {p}"),
                    ));
                }
                while self.params.len() < n {
                    self.params.push(DataType::Unknown);
                }
                let t = self.params[n - 1];
                Ok((Expr::Param(n - 1, t), t))
            }
            other => Err(SqlError::unsupported(format!(
                "literal {other} is not supported"
            ))),
        }
    }

    fn bind_number(&mut self, n: &str) -> Result<(Expr, DataType)> {
        if let Ok(i) = n.parse::<i32>() {
            return Ok((Expr::Literal(Value::Int32(i)), DataType::Int32));
        }
        if let Ok(i) = n.parse::<i64>() {
            return Ok((Expr::Literal(Value::Int64(i)), DataType::Int64));
        }
        match text::parse_text(n, &DataType::Numeric(None)) {
            Ok(v) => Ok((Expr::Literal(v), DataType::Numeric(None))),
            // Beyond the numeric type's 28 digits: keep the value as a double.
            Err(_) => Ok((
                Expr::Literal(text::parse_text(n, &DataType::Float64)?),
                DataType::Float64,
            )),
        }
    }

    fn resolve_column(
        &mut self,
        table: Option<&str>,
        name: &str,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        if let Some(r) = self.find_in_scope(table, name, scope)? {
            return Ok((Expr::Column(r), scope.columns[r].ty));
        }
        // Enclosing queries, innermost first.
        for level in (0..self.outer.len()).rev() {
            let s = &self.outer[level];
            if let Some(r) = Self::find_in(table, name, s)? {
                let depth = self.outer.len() - level;
                self.outer_uses.push((level, r));
                let ty = s.columns[r].ty;
                return Ok((Expr::Outer { depth, index: r }, ty));
            }
        }
        match table {
            Some(t) => {
                let known = scope.columns.iter().any(|c| c.table.as_deref() == Some(t))
                    || self
                        .outer
                        .iter()
                        .any(|s| s.columns.iter().any(|c| c.table.as_deref() == Some(t)));
                if known {
                    Err(err(
                        sqlstate::UNDEFINED_COLUMN,
                        format!("column {t}.{name} does not exist"),
                    ))
                } else {
                    Err(err(
                        sqlstate::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{t}\""),
                    ))
                }
            }
            None => Err(err(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" does not exist"),
            )),
        }
    }

    fn find_in_scope(
        &self,
        table: Option<&str>,
        name: &str,
        scope: &Scope,
    ) -> Result<Option<usize>> {
        Self::find_in(table, name, scope)
    }

    fn find_in(table: Option<&str>, name: &str, scope: &Scope) -> Result<Option<usize>> {
        let mut found: Option<usize> = None;
        for (i, c) in scope.columns.iter().enumerate() {
            if c.name != name {
                continue;
            }
            match table {
                Some(t) => {
                    if c.table.as_deref() != Some(t) {
                        continue;
                    }
                }
                None => {
                    // Unqualified names skip USING duplicates (hidden, non-rowid).
                    if c.hidden && c.name != "rowid" {
                        continue;
                    }
                }
            }
            if found.is_some() {
                let shown = match table {
                    Some(t) => format!("{t}.{name}"),
                    None => name.to_string(),
                };
                return Err(err(
                    sqlstate::AMBIGUOUS_COLUMN,
                    format!("column reference \"{shown}\" is ambiguous"),
                ));
            }
            found = Some(i);
        }
        Ok(found)
    }

    fn bind_subquery(&mut self, q: &ast::Query, scope: &Scope) -> Result<(SubPlan, Vec<DataType>)> {
        let saved_aggs = self.aggs.take();
        let level = self.outer.len();
        let uses_start = self.outer_uses.len();
        self.outer.push(scope.clone());
        let result = self.bind_query(q);
        self.outer.pop();
        self.aggs = saved_aggs;
        let b = match result {
            Ok(b) => b,
            Err(e) => {
                self.outer_uses.truncate(uses_start);
                return Err(e);
            }
        };
        let correlated = self.outer_uses[uses_start..]
            .iter()
            .any(|(l, _)| *l <= level);
        let id = self.next_subquery;
        self.next_subquery += 1;
        let mut outer_cols: Vec<usize> = self.outer_uses[uses_start..]
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, r)| *r)
            .collect();
        outer_cols.sort_unstable();
        outer_cols.dedup();
        let types = b.scope.types();
        let plan = crate::optimizer::optimize(b.plan)?;
        Ok((
            SubPlan {
                plan: Arc::new(plan),
                correlated,
                id,
                outer_cols,
                remap: None,
            },
            types,
        ))
    }

    fn unify_pair(
        &mut self,
        a: Expr,
        at: DataType,
        b: Expr,
        bt: DataType,
        ctx: &str,
    ) -> Result<(Expr, Expr)> {
        match (at, bt) {
            (DataType::Unknown, DataType::Unknown) => Ok((
                self.coerce(a, at, DataType::Text, ctx)?,
                self.coerce(b, bt, DataType::Text, ctx)?,
            )),
            (DataType::Unknown, t) => Ok((self.coerce(a, at, t, ctx)?, b)),
            (t, DataType::Unknown) => Ok((a, self.coerce(b, bt, t, ctx)?)),
            (l, r) => {
                ops::binary_result_type(BinaryOp::Eq, &l, &r)?;
                Ok((a, b))
            }
        }
    }

    fn bind_comparable(
        &mut self,
        a: &ast::Expr,
        b: &ast::Expr,
        scope: &Scope,
        ctx: &str,
    ) -> Result<(Expr, Expr)> {
        let (a, at) = self.bind_expr(a, scope)?;
        let (b, bt) = self.bind_expr(b, scope)?;
        self.unify_pair(a, at, b, bt, ctx)
    }

    fn bind_binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use ast::BinaryOperator as B;
        let bop = match op {
            B::Plus => BinaryOp::Add,
            B::Minus => BinaryOp::Sub,
            B::Multiply => BinaryOp::Mul,
            B::Divide => BinaryOp::Div,
            B::Modulo => BinaryOp::Mod,
            B::PGExp => BinaryOp::Pow,
            B::Eq => BinaryOp::Eq,
            B::NotEq => BinaryOp::NotEq,
            B::Lt => BinaryOp::Lt,
            B::LtEq => BinaryOp::LtEq,
            B::Gt => BinaryOp::Gt,
            B::GtEq => BinaryOp::GtEq,
            B::And => BinaryOp::And,
            B::Or => BinaryOp::Or,
            B::StringConcat => BinaryOp::Concat,
            B::BitwiseAnd => BinaryOp::BitAnd,
            B::BitwiseOr => BinaryOp::BitOr,
            B::PGBitwiseXor | B::BitwiseXor => BinaryOp::BitXor,
            B::PGBitwiseShiftLeft => BinaryOp::ShiftLeft,
            B::PGBitwiseShiftRight => BinaryOp::ShiftRight,
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                let ci = matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch);
                let negated = matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch);
                return self.bind_regex(left, right, ci, negated, scope);
            }
            B::PGCustomBinaryOperator(parts) => {
                // `OPERATOR(pg_catalog.~)`: the schema-qualified spelling of an operator.
                let sym = parts.last().map(String::as_str).unwrap_or("");
                let plain = match sym {
                    "~" => B::PGRegexMatch,
                    "~*" => B::PGRegexIMatch,
                    "!~" => B::PGRegexNotMatch,
                    "!~*" => B::PGRegexNotIMatch,
                    "=" => B::Eq,
                    "<>" => B::NotEq,
                    "<" => B::Lt,
                    "<=" => B::LtEq,
                    ">" => B::Gt,
                    ">=" => B::GtEq,
                    "~~" => B::PGLikeMatch,
                    "!~~" => B::PGNotLikeMatch,
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "operator {other} is not supported"
                        )))
                    }
                };
                return self.bind_binary(left, &plain, right, scope);
            }
            B::PGLikeMatch | B::PGNotLikeMatch | B::PGILikeMatch | B::PGNotILikeMatch => {
                let negated = matches!(op, B::PGNotLikeMatch | B::PGNotILikeMatch);
                let ci = matches!(op, B::PGILikeMatch | B::PGNotILikeMatch);
                return self.bind_like(left, right, None, negated, ci, scope);
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "operator {other} is not supported"
                )))
            }
        };
        let (l, lt) = self.bind_expr(left, scope)?;
        let (r, rt) = self.bind_expr(right, scope)?;
        if matches!(bop, BinaryOp::And | BinaryOp::Or) {
            let name = if bop == BinaryOp::And { "AND" } else { "OR" };
            for t in [lt, rt] {
                if t != DataType::Bool && t != DataType::Unknown {
                    return Err(err(
                        sqlstate::DATATYPE_MISMATCH,
                        format!("argument of {name} must be type boolean, not type {t}"),
                    ));
                }
            }
            let l = self.coerce(l, lt, DataType::Bool, name)?;
            let r = self.coerce(r, rt, DataType::Bool, name)?;
            return Ok((
                self.fold(Expr::Binary(bop, Box::new(l), Box::new(r)))?,
                DataType::Bool,
            ));
        }
        // Unknown operands take the other side's type (text for ||).
        let (l, lt, r, rt) = match (lt, rt) {
            (DataType::Unknown, DataType::Unknown) => {
                let l = self.coerce(l, lt, DataType::Text, "operator")?;
                let r = self.coerce(r, rt, DataType::Text, "operator")?;
                (l, DataType::Text, r, DataType::Text)
            }
            (DataType::Unknown, t) => {
                let target = unknown_target(bop, t);
                (self.coerce(l, lt, target, "operator")?, target, r, rt)
            }
            (t, DataType::Unknown) => {
                let target = unknown_target(bop, t);
                (l, lt, self.coerce(r, rt, target, "operator")?, target)
            }
            _ => (l, lt, r, rt),
        };
        let ty = ops::binary_result_type(bop, &lt, &rt)?;
        // Operators are strict: a NULL constant operand makes the result
        // NULL without evaluating the other side, as PostgreSQL folds it.
        if matches!(l, Expr::Literal(Value::Null)) || matches!(r, Expr::Literal(Value::Null)) {
            return Ok((Expr::Literal(Value::Null), ty));
        }
        let (l, r) = if bop == BinaryOp::Concat {
            (strip_bpchar(l, lt).0, strip_bpchar(r, rt).0)
        } else {
            (l, r)
        };
        Ok((self.fold(Expr::Binary(bop, Box::new(l), Box::new(r)))?, ty))
    }

    /// `s ~ pattern` (POSIX regular expressions, through the `regex` crate's close dialect).
    fn bind_regex(
        &mut self,
        left: &ast::Expr,
        right: &ast::Expr,
        ci: bool,
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let (l, lt) = self.bind_expr(left, scope)?;
        let (r, rt) = self.bind_expr(right, scope)?;
        let l = self.coerce_to_text(l, lt, "~")?;
        let r = self.coerce_to_text(r, rt, "~")?;
        let name = if ci { "texticregexeq" } else { "textregexeq" };
        let x = Expr::Func(name.into(), vec![l, r]);
        let x = if negated {
            Expr::Unary(UnaryOp::Not, Box::new(x))
        } else {
            x
        };
        Ok((self.fold(x)?, DataType::Bool))
    }

    /// A lookup in a table made at bind time: `CASE key WHEN k THEN v ... ELSE otherwise END`.
    fn lookup_case(key: Expr, pairs: Vec<(Value, Value)>, otherwise: Expr) -> Expr {
        Expr::Case {
            operand: Some(Box::new(key)),
            whens: pairs
                .into_iter()
                .map(|(k, v)| (Expr::Literal(k), Expr::Literal(v)))
                .collect(),
            otherwise: Some(Box::new(otherwise)),
        }
    }

    /// `x::regclass` and its relatives. PostgreSQL's reg* types are OIDs that read and print as
    /// names; reefdb has no such type, so a cast from a name (text) gives the OID and a cast
    /// from an OID (a number) gives the name, which covers how clients use them: comparing
    /// `'orders'::regclass` with an OID column, and showing `conrelid::regclass`.
    fn bind_reg_cast(&mut self, kind: &str, x: Expr, t: DataType) -> Result<(Expr, DataType)> {
        let from_name = t == DataType::Unknown || t.is_string();
        if kind == "oid" {
            let x = self.coerce(x, t, DataType::Int64, "oid")?;
            return Ok((self.fold(x)?, DataType::Int64));
        }
        let pairs: Vec<(String, i64)> = match kind {
            "regclass" => self.lookups().class_oids.clone(),
            "regtype" => crate::pg_catalog::TYPES
                .iter()
                .flat_map(|ty| {
                    let mut v = vec![(ty.name.to_string(), ty.oid)];
                    if let Some(f) = functions_format_type(ty.oid) {
                        v.push((f, ty.oid));
                    }
                    if ty.array != 0 {
                        v.push((format!("_{}", ty.name), ty.array));
                        if let Some(f) = functions_format_type(ty.array) {
                            v.push((f, ty.array));
                        }
                    }
                    v
                })
                .collect(),
            "regproc" => vec![
                ("array_in".into(), crate::pg_catalog::ARRAY_IN),
                ("version".into(), 89),
            ],
            "regnamespace" => vec![
                ("pg_catalog".into(), crate::pg_catalog::NS_PG_CATALOG),
                ("public".into(), crate::pg_catalog::NS_PUBLIC),
                (
                    "information_schema".into(),
                    crate::pg_catalog::NS_INFORMATION_SCHEMA,
                ),
                (
                    crate::system::SCHEMA.into(),
                    crate::pg_catalog::NS_REEF_CATALOG,
                ),
            ],
            _ => vec![("reef".into(), crate::pg_catalog::ROLE_REEF)],
        };
        if from_name {
            let x = self.coerce(x, t, DataType::Text, kind)?;
            // Names may be schema-qualified (`pg_catalog.pg_class`) and numbers stand for
            // themselves; the catalog relations and types are also found qualified.
            let mut all: Vec<(Value, Value)> = Vec::new();
            for (n, oid) in &pairs {
                all.push((Value::Text(n.clone()), Value::Int64(*oid)));
                if kind != "regclass" && !n.contains('.') {
                    all.push((Value::Text(format!("pg_catalog.{n}")), Value::Int64(*oid)));
                }
            }
            let otherwise = Expr::Cast(Box::new(x.clone()), DataType::Int64);
            let x = Self::lookup_case(x, all, otherwise);
            return Ok((self.fold(x)?, DataType::Int64));
        }
        let x = self.coerce(x, t, DataType::Int64, kind)?;
        let names: Vec<(Value, Value)> = match kind {
            "regclass" => self
                .lookups()
                .class_names
                .iter()
                .map(|(o, n)| (Value::Int64(*o), Value::Text(n.clone())))
                .collect(),
            "regtype" => crate::pg_catalog::TYPES
                .iter()
                .flat_map(|ty| [ty.oid, ty.array])
                .filter(|o| *o != 0)
                .filter_map(|o| Some((Value::Int64(o), Value::Text(functions_format_type(o)?))))
                .collect(),
            _ => {
                let mut seen = std::collections::HashSet::new();
                pairs
                    .into_iter()
                    .filter(|(_, o)| seen.insert(*o))
                    .map(|(n, o)| (Value::Int64(o), Value::Text(n)))
                    .collect()
            }
        };
        let otherwise = Expr::Cast(Box::new(x.clone()), DataType::Text);
        let x = Self::lookup_case(x, names, otherwise);
        Ok((self.fold(x)?, DataType::Text))
    }

    fn bind_like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        escape: Option<&ast::Expr>,
        negated: bool,
        ci: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let (x, xt) = self.bind_expr(expr, scope)?;
        let (p, pt) = self.bind_expr(pattern, scope)?;
        let x = self.coerce_to_text(x, xt, "LIKE")?;
        let p = self.coerce_to_text(p, pt, "LIKE")?;
        let escape = match escape {
            Some(e) => {
                let (ex, et) = self.bind_expr(e, scope)?;
                Some(Box::new(self.coerce_to_text(ex, et, "ESCAPE")?))
            }
            None => None,
        };
        let x = Expr::Like {
            expr: Box::new(x),
            pattern: Box::new(p),
            escape,
            negated,
            case_insensitive: ci,
        };
        Ok((self.fold(x)?, DataType::Bool))
    }

    fn coerce_to_text(&mut self, x: Expr, t: DataType, ctx: &str) -> Result<Expr> {
        if t.is_string() {
            return Ok(x);
        }
        if t == DataType::Unknown {
            return self.coerce(x, t, DataType::Text, ctx);
        }
        Err(err(
            sqlstate::UNDEFINED_FUNCTION,
            format!("operator does not exist: {t} ~~ text"),
        )
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."))
    }

    fn bind_case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let op = match operand {
            Some(o) => Some(self.bind_expr(o, scope)?),
            None => None,
        };
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for cw in conditions {
            let (c, ct) = self.bind_expr(&cw.condition, scope)?;
            let c = match &op {
                Some((_, ot)) => {
                    if *ot == DataType::Unknown {
                        c
                    } else {
                        let c = self.coerce(
                            c.clone(),
                            ct,
                            if ct == DataType::Unknown { *ot } else { ct },
                            "CASE",
                        )?;
                        if ct != DataType::Unknown {
                            ops::binary_result_type(BinaryOp::Eq, ot, &ct)?;
                        }
                        c
                    }
                }
                None => {
                    if ct != DataType::Bool && ct != DataType::Unknown {
                        return Err(err(
                            sqlstate::DATATYPE_MISMATCH,
                            format!("argument of CASE/WHEN must be type boolean, not type {ct}"),
                        ));
                    }
                    self.coerce(c, ct, DataType::Bool, "CASE/WHEN")?
                }
            };
            whens.push(c);
            results.push(self.bind_expr(&cw.result, scope)?);
        }
        let otherwise = match else_result {
            Some(e) => Some(self.bind_expr(e, scope)?),
            None => None,
        };
        let mut ty = DataType::Unknown;
        for (_, t) in results.iter().chain(otherwise.iter()) {
            if *t == DataType::Unknown {
                continue;
            }
            ty = if ty == DataType::Unknown {
                *t
            } else {
                self.unify(ty, *t, "CASE")?
            };
        }
        let ty = if ty == DataType::Unknown {
            DataType::Text
        } else {
            ty
        };
        let mut pairs = Vec::new();
        for (w, (r, rt)) in whens.into_iter().zip(results) {
            pairs.push((w, self.cast_to(r, rt, ty)?));
        }
        let otherwise = match otherwise {
            Some((e, t)) => Some(Box::new(self.cast_to(e, t, ty)?)),
            None => None,
        };
        let operand = op.map(|(o, _)| Box::new(o));
        Ok((
            Expr::Case {
                operand,
                whens: pairs,
                otherwise,
            },
            ty,
        ))
    }

    fn cast_to(&mut self, x: Expr, from: DataType, to: DataType) -> Result<Expr> {
        if from == to {
            Ok(x)
        } else if from == DataType::Unknown {
            self.coerce(x, from, to, "CASE")
        } else {
            Ok(Expr::Cast(Box::new(x), to))
        }
    }

    fn bind_function(&mut self, f: &ast::Function, scope: &Scope) -> Result<(Expr, DataType)> {
        let name = match f.name.0.as_slice() {
            // The one function of information_schema clients call.
            [ast::ObjectNamePart::Identifier(schema), ast::ObjectNamePart::Identifier(n)]
                if ident_name(schema) == crate::pg_catalog::INFORMATION_SCHEMA
                    && ident_name(n) == "_pg_expandarray" =>
            {
                "_pg_expandarray".to_string()
            }
            _ => object_name(&f.name)?,
        };
        if let Some(over) = &f.over {
            return self.bind_window_call(&name, f, over, scope);
        }
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::Subquery(q) if name == "array" => {
                let (sub, cols) = self.bind_subquery(q, scope)?;
                if cols.len() != 1 {
                    return Err(err(
                        sqlstate::SYNTAX_ERROR,
                        "subquery must return only one column",
                    ));
                }
                return Ok((
                    Expr::Subquery(SubqueryKind::Array, sub, false),
                    DataType::array_of(cols[0]),
                ));
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("function(subquery) is not supported"))
            }
            ast::FunctionArguments::List(l) => {
                let distinct = matches!(
                    l.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                // array_agg(x ORDER BY k, ...) takes its sort keys as extra arguments.
                if name == "array_agg" {
                    for c in &l.clauses {
                        if let ast::FunctionArgumentClause::OrderBy(keys) = c {
                            let extra: Vec<ast::FunctionArg> = keys
                                .iter()
                                .map(|k| {
                                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                                        k.expr.clone(),
                                    ))
                                })
                                .collect();
                            for a in l.args.iter().chain(extra.iter()) {
                                if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a
                                {
                                    args.push(e.clone());
                                }
                            }
                        }
                    }
                    if !args.is_empty() {
                        return self.bind_aggregate(
                            &name,
                            &args,
                            distinct,
                            false,
                            f.filter.as_deref(),
                            scope,
                        );
                    }
                }
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            args.push(e.clone())
                        }
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(SqlError::unsupported(
                                "named function arguments are not supported",
                            ))
                        }
                    }
                }
                (args, distinct, star)
            }
        };
        if is_aggregate(&name) {
            return self.bind_aggregate(&name, &args, distinct, star, f.filter.as_deref(), scope);
        }
        if star {
            return Err(err(
                sqlstate::SYNTAX_ERROR,
                format!("{name}(*) is not a valid call"),
            ));
        }
        if f.filter.is_some() {
            return Err(err(
                sqlstate::SYNTAX_ERROR,
                format!("FILTER specified, but {name} is not an aggregate function"),
            ));
        }
        // Time functions and special forms.
        let time = match name.as_str() {
            "now" | "current_timestamp" | "transaction_timestamp" => {
                Some((TimeFunc::TxnTimestamp, DataType::TimestampTz))
            }
            "statement_timestamp" => Some((TimeFunc::StatementTimestamp, DataType::TimestampTz)),
            "clock_timestamp" => Some((TimeFunc::ClockTimestamp, DataType::TimestampTz)),
            "current_date" => Some((TimeFunc::CurrentDate, DataType::Date)),
            "localtimestamp" => Some((TimeFunc::LocalTimestamp, DataType::Timestamp)),
            _ => None,
        };
        if let Some((tf, ty)) = time {
            return Ok((Expr::Time(tf), ty));
        }
        let mut bound = Vec::new();
        for a in &args {
            bound.push(self.bind_expr(a, scope)?);
        }
        match name.as_str() {
            "coalesce" | "greatest" | "least" => {
                if bound.is_empty() {
                    return Err(err(
                        sqlstate::SYNTAX_ERROR,
                        format!("{name} needs arguments"),
                    ));
                }
                let mut ty = DataType::Unknown;
                for (_, t) in &bound {
                    if *t != DataType::Unknown {
                        ty = if ty == DataType::Unknown {
                            *t
                        } else {
                            self.unify(ty, *t, &name.to_uppercase())?
                        };
                    }
                }
                let ty = if ty == DataType::Unknown {
                    DataType::Text
                } else {
                    ty
                };
                let mut xs = Vec::new();
                for (x, t) in bound {
                    xs.push(self.cast_to(x, t, ty)?);
                }
                let x = match name.as_str() {
                    "coalesce" => Expr::Coalesce(xs),
                    "greatest" => Expr::Extreme(true, xs),
                    _ => Expr::Extreme(false, xs),
                };
                Ok((x, ty))
            }
            "nullif" => {
                if bound.len() != 2 {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        "function nullif requires 2 arguments",
                    ));
                }
                let mut it = bound.into_iter();
                let (a, at) = it.next().unwrap();
                let (b, bt) = it.next().unwrap();
                let (a, b) = self.unify_pair(a, at, b, bt, "NULLIF")?;
                let ty = if at == DataType::Unknown {
                    if bt == DataType::Unknown {
                        DataType::Text
                    } else {
                        bt
                    }
                } else {
                    at
                };
                Ok((Expr::NullIf(Box::new(a), Box::new(b)), ty))
            }
            "nextval" | "currval" | "setval" => {
                let seq = match bound.first() {
                    Some((Expr::Literal(Value::Text(s)), _)) => s.clone(),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "{name} needs a constant sequence name"
                        )))
                    }
                };
                let seq_name = seq.trim_matches('"').to_lowercase();
                let seq_name = seq_name
                    .strip_prefix("public.")
                    .unwrap_or(&seq_name)
                    .to_string();
                let id = match self.catalog.get_by_name(&seq_name).as_deref() {
                    Some(Object::Sequence(s)) => s.id,
                    _ => {
                        return Err(err(
                            sqlstate::UNDEFINED_TABLE,
                            format!("relation \"{seq_name}\" does not exist"),
                        ))
                    }
                };
                let rest: Vec<Expr> = bound.into_iter().skip(1).map(|(x, _)| x).collect();
                let f = match name.as_str() {
                    "nextval" => SessionFunc::Nextval(id),
                    "currval" => SessionFunc::Currval(id),
                    _ => SessionFunc::Setval(id),
                };
                Ok((Expr::Session(f, rest), DataType::Int64))
            }
            "lastval" => Ok((Expr::Session(SessionFunc::Lastval, vec![]), DataType::Int64)),
            "pg_sleep" => {
                let mut bound = bound;
                if bound.len() != 1 {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        "function pg_sleep takes one argument (seconds)",
                    ));
                }
                let (x, t) = bound.pop().unwrap();
                let x = self.coerce(x, t, DataType::Float64, "pg_sleep")?;
                Ok((Expr::Session(SessionFunc::Sleep, vec![x]), DataType::Text))
            }
            "current_setting" => {
                let xs = bound.into_iter().map(|(x, _)| x).collect();
                Ok((
                    Expr::Session(SessionFunc::CurrentSetting, xs),
                    DataType::Text,
                ))
            }
            "version" => Ok((
                Expr::Literal(Value::Text(format!(
                    "PostgreSQL 15.0 (reefdb {}) on x86_64-pc-linux-gnu",
                    env!("CARGO_PKG_VERSION")
                ))),
                DataType::Text,
            )),
            "current_database" | "current_catalog" => {
                Ok((Expr::Literal(Value::Text("reef".into())), DataType::Text))
            }
            "current_schema" => Ok((Expr::Literal(Value::Text("public".into())), DataType::Text)),
            "current_user" | "session_user" | "user" | "current_role" => Ok((
                Expr::Session(
                    SessionFunc::CurrentSetting,
                    vec![Expr::Literal(Value::Text("session_authorization".into()))],
                ),
                DataType::Text,
            )),
            "current_schemas" => {
                let implicit = bound
                    .into_iter()
                    .next()
                    .map(|(x, _)| x)
                    .unwrap_or(Expr::bool(false));
                let list = |names: &[&str]| {
                    Expr::Literal(Value::Array(
                        names.iter().map(|n| Value::Text(n.to_string())).collect(),
                    ))
                };
                let x = Expr::Case {
                    operand: None,
                    whens: vec![(implicit, list(&["pg_catalog", "public"]))],
                    otherwise: Some(Box::new(list(&["public"]))),
                };
                Ok((self.fold(x)?, DataType::array_of(DataType::Text)))
            }
            "pg_get_indexdef" | "pg_get_constraintdef" | "pg_get_viewdef" => {
                let lookups = self.lookups();
                let mut it = bound.into_iter();
                let (oid, ot) = it.next().ok_or_else(|| {
                    err(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("{name}() needs an OID"),
                    )
                })?;
                let oid = self.coerce(oid, ot, DataType::Int64, &name)?;
                let pairs = |v: &[(i64, String)]| -> Vec<(Value, Value)> {
                    v.iter()
                        .map(|(k, d)| (Value::Int64(*k), Value::Text(d.clone())))
                        .collect()
                };
                let null = Expr::Literal(Value::Null);
                let x = match name.as_str() {
                    "pg_get_constraintdef" => {
                        Self::lookup_case(oid, pairs(&lookups.constraint_defs), null)
                    }
                    "pg_get_viewdef" => Self::lookup_case(oid, pairs(&lookups.view_defs), null),
                    _ => match it.next() {
                        // (oid, column, pretty): column 0 is the whole index, n its nth column.
                        Some((col, ct)) => {
                            let pretty =
                                matches!(it.next(), Some((Expr::Literal(Value::Bool(true)), _)));
                            let whole = if pretty {
                                &lookups.index_defs_pretty
                            } else {
                                &lookups.index_defs
                            };
                            let col = self.coerce(col, ct, DataType::Int64, &name)?;
                            let key = Expr::Binary(
                                BinaryOp::Add,
                                Box::new(Expr::Binary(
                                    BinaryOp::Mul,
                                    Box::new(oid.clone()),
                                    Box::new(Expr::Literal(Value::Int64(4096))),
                                )),
                                Box::new(col.clone()),
                            );
                            Expr::Case {
                                operand: None,
                                whens: vec![(
                                    Expr::Binary(
                                        BinaryOp::Eq,
                                        Box::new(col),
                                        Box::new(Expr::Literal(Value::Int64(0))),
                                    ),
                                    Self::lookup_case(oid, pairs(whole), null.clone()),
                                )],
                                otherwise: Some(Box::new(Self::lookup_case(
                                    key,
                                    pairs(&lookups.index_columns),
                                    null,
                                ))),
                            }
                        }
                        None => Self::lookup_case(oid, pairs(&lookups.index_defs), null),
                    },
                };
                Ok((self.fold(x)?, DataType::Text))
            }
            "pg_get_serial_sequence" => {
                let lookups = self.lookups();
                if bound.len() != 2 {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        "function pg_get_serial_sequence requires 2 arguments",
                    ));
                }
                let mut it = bound.into_iter();
                let (t, tt) = it
                    .next()
                    .unwrap_or((Expr::Literal(Value::Null), DataType::Text));
                let (c, ct) = it
                    .next()
                    .unwrap_or((Expr::Literal(Value::Null), DataType::Text));
                let t = self.coerce_to_text(t, tt, &name)?;
                let c = self.coerce_to_text(c, ct, &name)?;
                let key = Expr::Func(
                    "concat".into(),
                    vec![t, Expr::Literal(Value::Text(".".into())), c],
                );
                let mut pairs = Vec::new();
                for (k, seq) in &lookups.serial_sequences {
                    pairs.push((Value::Text(k.clone()), Value::Text(seq.clone())));
                    pairs.push((Value::Text(format!("public.{k}")), Value::Text(seq.clone())));
                }
                let x = Self::lookup_case(key, pairs, Expr::Literal(Value::Null));
                Ok((self.fold(x)?, DataType::Text))
            }
            "to_regtype" | "to_regclass" | "to_regnamespace" => {
                let (x, t) = bound
                    .into_iter()
                    .next()
                    .unwrap_or((Expr::Literal(Value::Null), DataType::Text));
                let kind = &name[3..];
                let x = self.coerce_to_text(x, t, &name)?;
                let (x, _) = self.bind_reg_cast(kind, x, DataType::Text)?;
                // Unknown names give NULL, not an error.
                let x = match x {
                    Expr::Case { operand, whens, .. } => Expr::Case {
                        operand,
                        whens,
                        otherwise: Some(Box::new(Expr::Literal(Value::Null))),
                    },
                    other => other,
                };
                Ok((self.fold(x)?, DataType::Int64))
            }
            "_pg_expandarray" => {
                // information_schema._pg_expandarray(a): a row (x, n) per element, x the element
                // and n its 1-based position; set-returning like unnest.
                let (a, at) = bound.into_iter().next().ok_or_else(|| {
                    err(
                        sqlstate::UNDEFINED_FUNCTION,
                        "function _pg_expandarray() does not exist",
                    )
                })?;
                if at.element().is_none() {
                    return Err(err(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("function information_schema._pg_expandarray({at}) does not exist"),
                    ));
                }
                let rows = Expr::Func("reef_expand_records".into(), vec![a]);
                Ok((Expr::Func(SRF_MARK.into(), vec![rows]), EXPANDED_ARRAY))
            }
            "unnest" | "generate_subscripts" | "pg_partition_ancestors" => {
                // Set-returning functions in a select list: the call stands for one element of
                // an array, expanded by a ProjectSet under the projection (`finish_select`).
                let mut it = bound.into_iter();
                let (a, at) = it.next().ok_or_else(|| {
                    err(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("function {name}() does not exist"),
                    )
                })?;
                let (array, elem) = match name.as_str() {
                    "pg_partition_ancestors" => (
                        Expr::Func("pg_partition_ancestors".into(), vec![a]),
                        DataType::Int64,
                    ),
                    _ => {
                        let Some(elem) = at.element() else {
                            return Err(err(
                                sqlstate::UNDEFINED_FUNCTION,
                                format!("function {name}({at}) does not exist"),
                            ));
                        };
                        if name == "unnest" {
                            (a, elem)
                        } else {
                            let lower = if at == DataType::Int2Vector { 0 } else { 1 };
                            (
                                Expr::Func(
                                    "reef_array_subscripts".into(),
                                    vec![a, Expr::Literal(Value::Int32(lower))],
                                ),
                                DataType::Int32,
                            )
                        }
                    }
                };
                Ok((Expr::Func(SRF_MARK.into(), vec![array]), elem))
            }
            _ => self.bind_func_call(&name, bound),
        }
    }

    /// `row_number() OVER (PARTITION BY .. ORDER BY ..)`: a column of a Window node under the
    /// select list's projection (`finish_select`).
    fn bind_window_call(
        &mut self,
        name: &str,
        f: &ast::Function,
        over: &ast::WindowType,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let ast::WindowType::WindowSpec(spec) = over else {
            return Err(SqlError::unsupported("named windows are not supported"));
        };
        if name != "row_number"
            || !matches!(&f.args, ast::FunctionArguments::List(l) if l.args.is_empty())
                && !matches!(f.args, ast::FunctionArguments::None)
        {
            return Err(SqlError::unsupported(format!(
                "window function {name} is not supported (row_number() is)"
            )));
        }
        if spec.window_frame.is_some() {
            return Err(SqlError::unsupported("window frames are not supported"));
        }
        let mut parts = Vec::new();
        for e in &spec.partition_by {
            parts.push(self.bind_expr(e, scope)?.0);
        }
        let mut keys = Vec::new();
        for o in &spec.order_by {
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            keys.push(SortKey {
                expr: self.bind_expr(&o.expr, scope)?.0,
                desc,
                nulls_first: o.options.nulls_first.unwrap_or(desc),
            });
        }
        let Some(windows) = self.windows.as_mut() else {
            return Err(err(
                sqlstate::WINDOWING_ERROR,
                "window functions are not allowed here",
            ));
        };
        windows.push((parts, keys));
        Ok((
            Expr::Func(format!("{WINDOW_MARK}{}", windows.len() - 1), vec![]),
            DataType::Int64,
        ))
    }

    fn bind_func_call(
        &mut self,
        name: &str,
        args: Vec<(Expr, DataType)>,
    ) -> Result<(Expr, DataType)> {
        // char(n) values lose their padding when used as text, except
        // where PostgreSQL has a bpchar variant that keeps it.
        let args: Vec<(Expr, DataType)> = if name == "octet_length" {
            args
        } else {
            args.into_iter().map(|(x, t)| strip_bpchar(x, t)).collect()
        };
        let mut types: Vec<DataType> = args.iter().map(|(_, t)| *t).collect();
        let ret = match functions::resolve_scalar(name, &types) {
            Ok(t) => t,
            Err(e) => {
                // Retry with unknown literals as text.
                if types.contains(&DataType::Unknown) {
                    for t in types.iter_mut() {
                        if *t == DataType::Unknown {
                            *t = DataType::Text;
                        }
                    }
                    functions::resolve_scalar(name, &types).map_err(|_| e)?
                } else {
                    return Err(e);
                }
            }
        };
        let mut xs = Vec::new();
        for ((x, t), want) in args.into_iter().zip(types) {
            xs.push(if t == DataType::Unknown {
                self.coerce(x, t, want, name)?
            } else {
                x
            });
        }
        let x = Expr::Func(name.to_string(), xs);
        Ok((self.fold(x)?, ret))
    }

    fn bind_aggregate(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        distinct: bool,
        star: bool,
        filter: Option<&ast::Expr>,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        if self.aggs.is_none() {
            let clause = if self.clause.is_empty() {
                "this context".to_string()
            } else {
                self.clause.clone()
            };
            return Err(err(
                sqlstate::GROUPING_ERROR,
                format!("aggregate functions are not allowed in {clause}"),
            ));
        }
        // Arguments may not contain aggregates themselves.
        let saved = self.aggs.take();
        let mut bound = Vec::new();
        for a in args {
            if contains_aggregate(a) {
                self.aggs = saved;
                return Err(err(
                    sqlstate::GROUPING_ERROR,
                    "aggregate function calls cannot be nested",
                ));
            }
            bound.push(self.bind_expr(a, scope)?);
        }
        let filter = match filter {
            Some(f) => Some(self.bind_predicate(f, scope, "FILTER")?),
            None => None,
        };
        self.aggs = saved;
        let (func, ty, args) = match (name, star, bound.len()) {
            ("array_agg", false, n) if n >= 1 => {
                let mut xs = Vec::new();
                let mut elem = DataType::Text;
                for (i, (x, t)) in bound.iter().cloned().enumerate() {
                    let (x, t) = if t == DataType::Unknown {
                        (self.coerce(x, t, DataType::Text, name)?, DataType::Text)
                    } else {
                        (x, t)
                    };
                    if i == 0 {
                        elem = t;
                    }
                    xs.push(x);
                }
                (AggFunc::ArrayAgg, DataType::array_of(elem), xs)
            }
            ("count", true, 0) => (AggFunc::CountStar, DataType::Int64, vec![]),
            ("count", false, 1) => (AggFunc::Count, DataType::Int64, vec![bound[0].0.clone()]),
            (_, false, 1) | ("string_agg", false, 2) => {
                let (x, t) = bound[0].clone();
                let t = if t == DataType::Unknown {
                    DataType::Text
                } else {
                    t
                };
                let x = if bound[0].1 == DataType::Unknown {
                    self.coerce(x, DataType::Unknown, t, name)?
                } else {
                    x
                };
                let (func, ty) = match name {
                    "sum" => (
                        AggFunc::Sum,
                        match t {
                            DataType::Int16 | DataType::Int32 => DataType::Int64,
                            DataType::Int64 | DataType::Numeric(_) => DataType::Numeric(None),
                            DataType::Float32 => DataType::Float32,
                            DataType::Float64 => DataType::Float64,
                            DataType::Interval => DataType::Interval,
                            other => return Err(no_agg(name, other)),
                        },
                    ),
                    "avg" => (
                        AggFunc::Avg,
                        match t {
                            DataType::Int16
                            | DataType::Int32
                            | DataType::Int64
                            | DataType::Numeric(_) => DataType::Numeric(None),
                            DataType::Float32 | DataType::Float64 => DataType::Float64,
                            DataType::Interval => DataType::Interval,
                            other => return Err(no_agg(name, other)),
                        },
                    ),
                    "min" | "max" => {
                        if t == DataType::Bool {
                            return Err(no_agg(name, t));
                        }
                        (
                            if name == "min" {
                                AggFunc::Min
                            } else {
                                AggFunc::Max
                            },
                            t,
                        )
                    }
                    "bool_and" | "every" | "bool_or" => {
                        if t != DataType::Bool {
                            return Err(no_agg(name, t));
                        }
                        (
                            if name == "bool_or" {
                                AggFunc::BoolOr
                            } else {
                                AggFunc::BoolAnd
                            },
                            DataType::Bool,
                        )
                    }
                    "string_agg" => {
                        if !t.is_string() {
                            return Err(no_agg(name, t));
                        }
                        (AggFunc::StringAgg, DataType::Text)
                    }
                    "stddev" | "stddev_samp" | "stddev_pop" | "variance" | "var_samp"
                    | "var_pop" => {
                        if !t.is_numeric() {
                            return Err(no_agg(name, t));
                        }
                        let f = match name {
                            "stddev" | "stddev_samp" => AggFunc::StddevSamp,
                            "stddev_pop" => AggFunc::StddevPop,
                            "variance" | "var_samp" => AggFunc::VarSamp,
                            _ => AggFunc::VarPop,
                        };
                        let ty = if matches!(t, DataType::Float32 | DataType::Float64) {
                            DataType::Float64
                        } else {
                            DataType::Numeric(None)
                        };
                        (f, ty)
                    }
                    _ => return Err(no_agg(name, t)),
                };
                let mut args = vec![x];
                if name == "string_agg" {
                    let (s, st) = bound[1].clone();
                    args.push(self.coerce(s, st, DataType::Text, name)?);
                }
                (func, ty, args)
            }
            _ => {
                let types: Vec<String> = bound.iter().map(|(_, t)| t.to_string()).collect();
                return Err(err(
                    sqlstate::UNDEFINED_FUNCTION,
                    format!("function {name}({}) does not exist", types.join(", ")),
                ));
            }
        };
        let aggs = self.aggs.as_mut().unwrap();
        let call = AggCall {
            func,
            args,
            distinct,
            filter,
            ty,
        };
        let idx = match aggs.iter().position(|a| *a == call) {
            Some(i) => i,
            None => {
                aggs.push(call);
                aggs.len() - 1
            }
        };
        Ok((Expr::Func(format!("\u{0}agg{idx}"), vec![]), ty))
    }

    // ----- DML -----

    /// Binds INSERT.
    pub fn bind_insert(&mut self, ins: &ast::Insert) -> Result<Plan> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => object_name(n)?,
            _ => {
                return Err(SqlError::unsupported(
                    "INSERT into a table function is not supported",
                ))
            }
        };
        let table = self.catalog.table(&name)?;
        self.written_tables.push(table.clone());
        let mut on_conflict_do_nothing = false;
        if let Some(on) = &ins.on {
            match on {
                ast::OnInsert::OnConflict(oc) => match &oc.action {
                    ast::OnConflictAction::DoNothing => on_conflict_do_nothing = true,
                    _ => {
                        return Err(SqlError::unsupported(
                            "ON CONFLICT DO UPDATE is not supported yet",
                        ))
                    }
                },
                _ => return Err(SqlError::unsupported("ON DUPLICATE KEY is not supported")),
            }
        }
        // Target columns.
        let targets: Vec<usize> = if ins.columns.is_empty() {
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.hidden)
                .map(|(i, _)| i)
                .collect()
        } else {
            let mut v = Vec::new();
            for c in &ins.columns {
                let cname = object_name(c)?;
                let (pos, _) = target_column(&table, &cname)?;
                if v.contains(&pos) {
                    return Err(err(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{cname}\" specified more than once"),
                    ));
                }
                v.push(pos);
            }
            v
        };
        let source = match &ins.source {
            Some(q) => q,
            None => return self.bind_default_values(&table, ins.returning.as_ref()),
        };
        // VALUES get target types for unknown literals and parameters.
        let bound = match (
            &*source.body,
            &source.order_by,
            &source.limit_clause,
            &source.with,
        ) {
            (ast::SetExpr::Values(v), None, None, None) => {
                self.bind_values_for_insert(v, &table, &targets)?
            }
            _ => self.bind_query(source)?,
        };
        if bound.scope.columns.len() > targets.len() {
            return Err(err(
                sqlstate::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ));
        }
        if bound.scope.columns.len() < targets.len() && !ins.columns.is_empty() {
            return Err(err(
                sqlstate::SYNTAX_ERROR,
                "INSERT has more target columns than expressions",
            ));
        }
        // Unknown-type outputs of the SELECT list take their columns' types, as in PostgreSQL,
        // where INSERT leaves them unresolved until it knows the targets: a parameter is
        // typed as its column, and a bare NULL converts to it.
        let mut bound = bound;
        if let Plan::Project { exprs, .. } = &mut bound.plan {
            for (k, pos) in targets.iter().enumerate() {
                match exprs.get(k) {
                    Some(Expr::Param(i, DataType::Unknown)) => {
                        let (i, ty) = (*i, table.columns[*pos].ty);
                        if self.params[i] == DataType::Unknown {
                            self.params[i] = ty;
                        }
                        exprs[k] = Expr::Param(i, self.params[i]);
                        bound.scope.columns[k].ty = self.params[i];
                    }
                    Some(Expr::Literal(Value::Null)) => {
                        bound.scope.columns[k].ty = DataType::Unknown;
                    }
                    _ => {}
                }
            }
        }
        let mut exprs = Vec::new();
        for (pos, col) in table.columns.iter().enumerate() {
            let src = targets
                .iter()
                .position(|t| *t == pos)
                .filter(|k| *k < bound.scope.columns.len());
            let x = match src {
                Some(k) => {
                    let st = bound.scope.columns[k].ty;
                    self.assign_expr(Expr::Column(k), st, col.ty, &col.name)?
                }
                None => self.default_expr(&table, pos)?,
            };
            exprs.push(x);
        }
        let input = Plan::Project {
            input: Box::new(bound.plan),
            exprs,
        };
        let returning = self.bind_returning(&table, ins.returning.as_ref())?;
        Ok(Plan::Insert {
            table,
            input: Box::new(input),
            returning,
            on_conflict_do_nothing,
        })
    }

    fn bind_default_values(
        &mut self,
        table: &Arc<TableDesc>,
        returning: Option<&Vec<ast::SelectItem>>,
    ) -> Result<Plan> {
        let mut exprs = Vec::new();
        for pos in 0..table.columns.len() {
            exprs.push(self.default_expr(table, pos)?);
        }
        let input = Plan::Values {
            rows: vec![exprs],
            width: table.columns.len(),
        };
        let returning = self.bind_returning(table, returning)?;
        Ok(Plan::Insert {
            table: table.clone(),
            input: Box::new(input),
            returning,
            on_conflict_do_nothing: false,
        })
    }

    fn bind_values_for_insert(
        &mut self,
        v: &ast::Values,
        table: &TableDesc,
        targets: &[usize],
    ) -> Result<BoundQuery> {
        let width = v.rows.first().map(|r| r.len()).unwrap_or(0);
        let mut rows = Vec::new();
        let mut types: Vec<DataType> = Vec::new();
        for (ri, r) in v.rows.iter().enumerate() {
            if r.len() != width {
                return Err(err(
                    sqlstate::SYNTAX_ERROR,
                    "VALUES lists must all be the same length",
                ));
            }
            if r.len() > targets.len() {
                return Err(err(
                    sqlstate::SYNTAX_ERROR,
                    "INSERT has more expressions than target columns",
                ));
            }
            let mut row = Vec::new();
            for (i, e) in r.iter().enumerate() {
                let col = &table.columns[targets[i]];
                let x = if is_default_keyword(e) {
                    self.default_expr(table, targets[i])?
                } else {
                    let (x, t) = self.bind_expr(e, &Scope::default())?;
                    self.assign_expr(x, t, col.ty, &col.name)?
                };
                row.push(x);
                if ri == 0 {
                    types.push(col.ty);
                }
            }
            rows.push(row);
        }
        let scope = Scope {
            columns: types
                .into_iter()
                .enumerate()
                .map(|(i, ty)| ScopeColumn {
                    table: None,
                    name: format!("column{}", i + 1),
                    ty,
                    hidden: false,
                })
                .collect(),
        };
        Ok(BoundQuery {
            plan: Plan::Values { rows, width },
            scope,
        })
    }

    /// Converts a value for storage in a column (assignment cast).
    fn assign_expr(&mut self, x: Expr, from: DataType, to: DataType, col: &str) -> Result<Expr> {
        if from == to {
            return Ok(x);
        }
        match x {
            Expr::Param(i, DataType::Unknown) => {
                if self.params[i] == DataType::Unknown {
                    self.params[i] = to;
                }
                let pt = self.params[i];
                Ok(if pt == to {
                    Expr::Param(i, to)
                } else {
                    Expr::AssignCast(Box::new(Expr::Param(i, pt)), to)
                })
            }
            Expr::Literal(Value::Null) => Ok(Expr::Literal(Value::Null)),
            Expr::Literal(Value::Text(s)) if from == DataType::Unknown => {
                let parse_as = if to.is_string() { DataType::Text } else { to };
                let v = text::parse_text(&s, &parse_as)?;
                Ok(Expr::Literal(cast::assignment_cast(v, &to)?))
            }
            x => {
                if !cast::assignment_allowed(&from, &to) {
                    return Err(err(
                        sqlstate::DATATYPE_MISMATCH,
                        format!(
                            "column \"{col}\" is of type {to} but expression is of type {from}"
                        ),
                    )
                    .with_hint("You will need to rewrite or cast the expression."));
                }
                Ok(self.fold(Expr::AssignCast(Box::new(x), to))?)
            }
        }
    }

    /// The DEFAULT of a column, bound (NULL when there is none).
    pub fn default_expr(&mut self, table: &TableDesc, pos: usize) -> Result<Expr> {
        let col = &table.columns[pos];
        match &col.default {
            Some(sql) => {
                let e = parse_expr(sql)?;
                let (x, t) = self.bind_expr(&e, &Scope::default())?;
                self.assign_expr(x, t, col.ty, &col.name)
            }
            None => Ok(Expr::Literal(Value::Null)),
        }
    }

    fn bind_returning(
        &mut self,
        table: &TableDesc,
        items: Option<&Vec<ast::SelectItem>>,
    ) -> Result<Option<Vec<Expr>>> {
        let Some(items) = items else { return Ok(None) };
        let scope = table_scope(table, &table.name);
        let mut exprs = Vec::new();
        self.returning_names.clear();
        for item in items {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let (x, t) = self.bind_expr(e, &scope)?;
                    exprs.push(x);
                    self.returning_names.push((
                        output_name(e),
                        if t == DataType::Unknown {
                            DataType::Text
                        } else {
                            t
                        },
                    ));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let (x, t) = self.bind_expr(expr, &scope)?;
                    exprs.push(x);
                    self.returning_names.push((
                        ident_name(alias),
                        if t == DataType::Unknown {
                            DataType::Text
                        } else {
                            t
                        },
                    ));
                }
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    for (i, c) in table.columns.iter().enumerate() {
                        if !c.hidden {
                            exprs.push(Expr::Column(i));
                            self.returning_names.push((c.name.clone(), c.ty));
                        }
                    }
                }
                _ => {
                    return Err(SqlError::unsupported(
                        "this RETURNING item is not supported",
                    ))
                }
            }
        }
        Ok(Some(exprs))
    }

    /// Binds UPDATE.
    pub fn bind_update(&mut self, up: &ast::Update) -> Result<Plan> {
        if up.from.is_some() {
            return Err(SqlError::unsupported(
                "UPDATE ... FROM is not supported yet",
            ));
        }
        let (name, alias) = match &up.table.relation {
            ast::TableFactor::Table { name, alias, .. } => (
                object_name(name)?,
                alias.as_ref().map(|a| ident_name(&a.name)),
            ),
            _ => return Err(SqlError::unsupported("UPDATE target must be a table")),
        };
        if !up.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE with JOIN is not supported"));
        }
        let table = self.catalog.table(&name)?;
        self.written_tables.push(table.clone());
        let qual = alias.unwrap_or(name.clone());
        let scope = table_scope(&table, &qual);
        let mut plan = Plan::Scan {
            table: table.clone(),
            needed: vec![true; table.columns.len()],
            filter: None,
            access: Access::Full,
            limit: None,
        };
        if let Some(w) = &up.selection {
            let pred = self.bind_predicate(w, &scope, "WHERE")?;
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate: pred,
            };
        }
        let mut assignments = Vec::new();
        for a in &up.assignments {
            let names: Vec<String> = match &a.target {
                ast::AssignmentTarget::ColumnName(n) => vec![object_name(n)?],
                ast::AssignmentTarget::Tuple(ns) => {
                    ns.iter().map(object_name).collect::<Result<_>>()?
                }
            };
            if names.len() != 1 {
                return Err(SqlError::unsupported(
                    "multi-column assignment is not supported",
                ));
            }
            let cname = &names[0];
            let (pos, col) = target_column(&table, cname)?;
            if assignments.iter().any(|(p, _)| *p == pos) {
                return Err(err(
                    sqlstate::SYNTAX_ERROR,
                    format!("multiple assignments to same column \"{cname}\""),
                ));
            }
            let x = if is_default_keyword(&a.value) {
                self.default_expr(&table, pos)?
            } else {
                let (x, t) = self.bind_expr(&a.value, &scope)?;
                if contains_agg_expr(&x) {
                    return Err(err(
                        sqlstate::GROUPING_ERROR,
                        "aggregate functions are not allowed in UPDATE",
                    ));
                }
                self.assign_expr(x, t, col.ty, cname)?
            };
            assignments.push((pos, x));
        }
        let returning = self.bind_returning(&table, up.returning.as_ref())?;
        Ok(Plan::Update {
            table,
            input: Box::new(plan),
            assignments,
            returning,
        })
    }

    /// Binds DELETE.
    pub fn bind_delete(&mut self, del: &ast::Delete) -> Result<Plan> {
        if del.using.is_some() {
            return Err(SqlError::unsupported(
                "DELETE ... USING is not supported yet",
            ));
        }
        let from = match &del.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        if from.len() != 1 || !from[0].joins.is_empty() {
            return Err(SqlError::unsupported(
                "DELETE from several tables is not supported",
            ));
        }
        let (name, alias) = match &from[0].relation {
            ast::TableFactor::Table { name, alias, .. } => (
                object_name(name)?,
                alias.as_ref().map(|a| ident_name(&a.name)),
            ),
            _ => return Err(SqlError::unsupported("DELETE target must be a table")),
        };
        let table = self.catalog.table(&name)?;
        self.written_tables.push(table.clone());
        let qual = alias.unwrap_or(name.clone());
        let scope = table_scope(&table, &qual);
        let mut plan = Plan::Scan {
            table: table.clone(),
            needed: vec![true; table.columns.len()],
            filter: None,
            access: Access::Full,
            limit: None,
        };
        if let Some(w) = &del.selection {
            let pred = self.bind_predicate(w, &scope, "WHERE")?;
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate: pred,
            };
        }
        let returning = self.bind_returning(&table, del.returning.as_ref())?;
        Ok(Plan::Delete {
            table,
            input: Box::new(plan),
            returning,
        })
    }
}

/// Converts a `char(n)` value to text the way PostgreSQL does: trailing
/// blanks go.
fn strip_bpchar(x: Expr, t: DataType) -> (Expr, DataType) {
    if matches!(t, DataType::Char(_)) {
        (Expr::Func("rtrim".into(), vec![x]), DataType::Text)
    } else {
        (x, t)
    }
}

fn no_agg(name: &str, t: DataType) -> SqlError {
    err(sqlstate::UNDEFINED_FUNCTION, format!("function {name}({t}) does not exist"))
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The scope of one table's columns under a qualifier.
pub fn table_scope(table: &TableDesc, qual: &str) -> Scope {
    Scope {
        columns: table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                table: Some(qual.to_string()),
                name: c.name.clone(),
                ty: c.ty,
                hidden: c.hidden,
            })
            .collect(),
    }
}

/// A relation of literal rows (a system view or a catalog relation) named `qual`, with its
/// columns as the scope and the alias's column names applied.
fn literal_relation<'n>(
    qual: String,
    columns: impl Iterator<Item = (&'n str, DataType)>,
    rows: Vec<Vec<Expr>>,
    alias: Option<&ast::TableAlias>,
) -> Result<(Plan, Scope)> {
    let mut scope = Scope {
        columns: columns
            .map(|(name, ty)| ScopeColumn {
                table: Some(qual.clone()),
                name: name.to_string(),
                ty,
                hidden: false,
            })
            .collect(),
    };
    if let Some(a) = alias {
        let cols: Vec<String> = a.columns.iter().map(|c| ident_name(&c.name)).collect();
        rename_scope(&mut scope, &qual, &cols)?;
    }
    let width = scope.columns.len();
    Ok((Plan::Values { rows, width }, scope))
}

fn rename_scope(scope: &mut Scope, qual: &str, cols: &[String]) -> Result<()> {
    let visible: Vec<usize> = (0..scope.columns.len())
        .filter(|i| !scope.columns[*i].hidden)
        .collect();
    if cols.len() > visible.len() {
        return Err(err(
            sqlstate::INVALID_COLUMN_REFERENCE,
            format!(
                "table \"{qual}\" has {} columns available but {} columns specified",
                visible.len(),
                cols.len()
            ),
        ));
    }
    for c in scope.columns.iter_mut() {
        c.table = Some(qual.to_string());
    }
    for (k, name) in cols.iter().enumerate() {
        scope.columns[visible[k]].name = name.clone();
    }
    Ok(())
}

/// Parses a stored query (a view's definition).
pub fn parse_query(sql: &str) -> Result<ast::Query> {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| SqlError::internal(format!("stored query does not parse: {e}")))?;
    match stmts.into_iter().next() {
        Some(ast::Statement::Query(q)) => Ok(*q),
        _ => Err(SqlError::internal("stored view is not a query")),
    }
}

fn comparison_op(op: &ast::BinaryOperator) -> Result<BinaryOp> {
    use ast::BinaryOperator as B;
    Ok(match op {
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        other => {
            return Err(SqlError::unsupported(format!(
                "operator {other} with ANY/ALL is not supported"
            )))
        }
    })
}

/// The type an unknown operand takes opposite a known one.
fn unknown_target(op: BinaryOp, other: DataType) -> DataType {
    match (op, other) {
        (BinaryOp::Concat, _) => DataType::Text,
        (
            BinaryOp::Add | BinaryOp::Sub,
            DataType::Date | DataType::Timestamp | DataType::TimestampTz,
        ) => DataType::Interval,
        (_, t) => t,
    }
}

/// The column name PostgreSQL gives an unaliased select item.
pub fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => ident_name(id),
        ast::Expr::CompoundIdentifier(ids) => ids.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => {
            let n = f.name.0.last().map(|p| match p {
                ast::ObjectNamePart::Identifier(i) => ident_name(i),
                _ => "?column?".into(),
            });
            n.unwrap_or_else(|| "?column?".into())
        }
        ast::Expr::Cast {
            expr, data_type, ..
        } => match &**expr {
            ast::Expr::Identifier(_)
            | ast::Expr::CompoundIdentifier(_)
            | ast::Expr::Function(_) => output_name(expr),
            _ => match convert_type(data_type) {
                Ok(DataType::Int32) => "int4".into(),
                Ok(DataType::Int64) => "int8".into(),
                Ok(DataType::Int16) => "int2".into(),
                Ok(DataType::Float64) => "float8".into(),
                Ok(DataType::Float32) => "float4".into(),
                Ok(DataType::Bool) => "bool".into(),
                Ok(DataType::Numeric(_)) => "numeric".into(),
                Ok(DataType::Text) => "text".into(),
                Ok(DataType::Varchar(_)) => "varchar".into(),
                Ok(DataType::Char(_)) => "bpchar".into(),
                Ok(DataType::Date) => "date".into(),
                Ok(DataType::Timestamp) => "timestamp".into(),
                Ok(DataType::TimestampTz) => "timestamptz".into(),
                Ok(DataType::Interval) => "interval".into(),
                Ok(DataType::Bytea) => "bytea".into(),
                _ => "?column?".into(),
            },
        },
        ast::Expr::Nested(inner) => output_name(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Exists { .. } => "exists".into(),
        ast::Expr::Subquery(q) => match &*q.body {
            ast::SetExpr::Select(s) => match s.projection.first() {
                Some(ast::SelectItem::UnnamedExpr(e)) => output_name(e),
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => ident_name(alias),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Trim { .. } => "btrim".into(),
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::TypedString(ts) => match convert_type(&ts.data_type) {
            Ok(t) => match t {
                DataType::Date => "date".into(),
                DataType::Timestamp => "timestamp".into(),
                DataType::TimestampTz => "timestamptz".into(),
                _ => "?column?".into(),
            },
            Err(_) => "?column?".into(),
        },
        ast::Expr::Interval(_) => "interval".into(),
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => "bool".into(),
        _ => "?column?".into(),
    }
}

/// Finds a column that INSERT or UPDATE may name (hidden columns are not among them).
fn target_column<'t>(
    table: &'t TableDesc,
    name: &str,
) -> Result<(usize, &'t crate::catalog::ColumnDesc)> {
    table
        .column(name)
        .filter(|(_, c)| !c.hidden)
        .ok_or_else(|| {
            err(
                sqlstate::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    table.name
                ),
            )
        })
}

/// True if the parser expression calls an aggregate outside a subquery.
pub fn contains_aggregate(e: &ast::Expr) -> bool {
    use sqlparser::ast::Visit;
    struct Finder(bool);
    impl ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> std::ops::ControlFlow<()> {
            match e {
                ast::Expr::Function(f) => {
                    if let Some(ast::ObjectNamePart::Identifier(i)) = f.name.0.last() {
                        if is_aggregate(&ident_name(i)) && f.over.is_none() {
                            self.0 = true;
                            return std::ops::ControlFlow::Break(());
                        }
                    }
                }
                ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
                    // Aggregates inside a subquery belong to it; but the
                    // visitor descends anyway, so handle below.
                }
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, _q: &ast::Query) -> std::ops::ControlFlow<()> {
            std::ops::ControlFlow::Continue(())
        }
    }
    // Strip subqueries first: clone and replace them with NULL.
    let stripped = strip_subqueries(e);
    let mut f = Finder(false);
    let _ = stripped.visit(&mut f);
    f.0
}

fn strip_subqueries(e: &ast::Expr) -> ast::Expr {
    use sqlparser::ast::VisitMut;
    struct Stripper;
    impl ast::VisitorMut for Stripper {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut ast::Expr) -> std::ops::ControlFlow<()> {
            if matches!(e, ast::Expr::Subquery(_) | ast::Expr::Exists { .. }) {
                *e = ast::Expr::Value(ast::Value::Null.into());
            }
            if let ast::Expr::In {
                expr,
                target: ast::InTarget::Subquery(_),
                ..
            } = e
            {
                *e = (**expr).clone();
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut c = e.clone();
    let _ = c.visit(&mut Stripper);
    c
}

/// True if a bound expression holds an aggregate placeholder.
pub fn contains_agg_expr(x: &Expr) -> bool {
    x.any(&mut |e| matches!(e, Expr::Func(n, _) if n.starts_with('\u{0}')))
}

/// Rewrites an expression bound over the FROM scope into the Aggregate's
/// output space: group expressions become their key columns, aggregate
/// placeholders become aggregate columns; any other column is an error.
fn rewrite_for_agg(x: Expr, groups: &[Expr], ng: usize) -> Result<Expr> {
    if let Some(i) = groups.iter().position(|g| *g == x) {
        return Ok(Expr::Column(i));
    }
    match x {
        Expr::Func(ref n, _) if n.starts_with("\u{0}agg") => {
            let idx: usize = n[4..]
                .parse()
                .map_err(|_| SqlError::internal("bad aggregate reference"))?;
            Ok(Expr::Column(ng + idx))
        }
        Expr::Column(i) => Err(err(sqlstate::GROUPING_ERROR, format!("\u{0}col{i}"))),
        Expr::Subquery(kind, sub, neg) => {
            let kind = match kind {
                SubqueryKind::Any(e, op) => {
                    SubqueryKind::Any(Box::new(rewrite_for_agg(*e, groups, ng)?), op)
                }
                SubqueryKind::All(e, op) => {
                    SubqueryKind::All(Box::new(rewrite_for_agg(*e, groups, ng)?), op)
                }
                k => k,
            };
            if sub.outer_cols.is_empty() {
                return Ok(Expr::Subquery(kind, sub, neg));
            }
            // The subquery reads the FROM row's columns; evaluated on the aggregate's output it
            // finds each of them as a group key, and a column that is not one is an error.
            let width = sub.outer_cols.last().map_or(0, |c| c + 1);
            let mut remap = vec![None; width];
            for &c in &sub.outer_cols {
                match groups.iter().position(|g| *g == Expr::Column(c)) {
                    Some(i) => remap[c] = Some(i),
                    None => return Err(err(sqlstate::GROUPING_ERROR, format!("\u{0}sub{c}"))),
                }
            }
            let sub = SubPlan {
                remap: Some(Arc::new(remap)),
                ..sub
            };
            Ok(Expr::Subquery(kind, sub, neg))
        }
        other => {
            // Rebuild children one level at a time.
            let mut failed: Option<SqlError> = None;
            let rebuilt = rebuild_children(other, &mut |c| match rewrite_for_agg(c, groups, ng) {
                Ok(e) => e,
                Err(e) => {
                    failed.get_or_insert(e);
                    Expr::Literal(Value::Null)
                }
            });
            match failed {
                Some(e) => Err(e),
                None => Ok(rebuilt),
            }
        }
    }
}

/// Applies `f` to each direct child of an expression.
fn rebuild_children(x: Expr, f: &mut dyn FnMut(Expr) -> Expr) -> Expr {
    let b = |e: Box<Expr>, f: &mut dyn FnMut(Expr) -> Expr| Box::new(f(*e));
    match x {
        Expr::Unary(op, e) => Expr::Unary(op, b(e, f)),
        Expr::Binary(op, l, r) => {
            let l = b(l, f);
            Expr::Binary(op, l, b(r, f))
        }
        Expr::Cast(e, t) => Expr::Cast(b(e, f), t),
        Expr::AssignCast(e, t) => Expr::AssignCast(b(e, f), t),
        Expr::Func(n, args) => Expr::Func(n, args.into_iter().map(|a| f(a)).collect()),
        Expr::Session(k, args) => Expr::Session(k, args.into_iter().map(|a| f(a)).collect()),
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => Expr::Case {
            operand: operand.map(|o| b(o, f)),
            whens: whens.into_iter().map(|(w, t)| (f(w), f(t))).collect(),
            otherwise: otherwise.map(|o| b(o, f)),
        },
        Expr::Coalesce(args) => Expr::Coalesce(args.into_iter().map(|a| f(a)).collect()),
        Expr::NullIf(a, c) => {
            let a = b(a, f);
            Expr::NullIf(a, b(c, f))
        }
        Expr::Extreme(g, args) => Expr::Extreme(g, args.into_iter().map(|a| f(a)).collect()),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let expr = b(expr, f);
            Expr::InList {
                expr,
                list: list.into_iter().map(|a| f(a)).collect(),
                negated,
            }
        }
        Expr::IsNull(e, n) => Expr::IsNull(b(e, f), n),
        Expr::IsBool(e, v, n) => Expr::IsBool(b(e, f), v, n),
        Expr::IsDistinct(l, r, n) => {
            let l = b(l, f);
            Expr::IsDistinct(l, b(r, f), n)
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
            case_insensitive,
        } => {
            let expr = b(expr, f);
            let pattern = b(pattern, f);
            Expr::Like {
                expr,
                pattern,
                escape: escape.map(|e| b(e, f)),
                negated,
                case_insensitive,
            }
        }
        leaf => leaf,
    }
}

/// Interval literal helper kept for binder users.
pub fn interval_value(months: i32, days: i32, micros: i64) -> Value {
    Value::Interval(Interval {
        months,
        days,
        micros,
    })
}

#[allow(dead_code)]
fn literal_ty(v: &Value) -> DataType {
    literal_type(v)
}
