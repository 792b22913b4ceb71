//! The functions catalog queries call (`format_type`, `pg_get_expr`, `pg_table_is_visible`,
//! ...), the array functions they use (`array_to_string`, `array_upper`, subscripts, `= ANY`)
//! and the regular-expression match operators `~` and `~*`.
//!
//! Those that need the catalog's contents (`pg_get_indexdef`, `regclass` output) are not here:
//! the binder turns them into lookups over the statement's catalog view (see
//! `pg_catalog.rs`). What remains depends only on its arguments, so it evaluates anywhere.

use std::cell::RefCell;

use super::text;
use super::{DataType, Value};
use crate::error::{sqlstate, Result, SqlError};
use crate::pg_catalog;

/// The result type of catalog function `name` over `a`, or None if it is not one.
pub fn resolve(name: &str, a: &[DataType]) -> Option<DataType> {
    use DataType::*;
    let int = |t: &DataType| t.is_integer() || *t == Unknown;
    let arr = |t: &DataType| t.element().is_some() || *t == Unknown;
    Some(match (name, a.len()) {
        ("format_type", 2) => Text,
        ("pg_get_userbyid", 1) => Text,
        (
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "pg_collation_is_visible"
            | "pg_relation_is_publishable",
            1,
        ) => Bool,
        ("pg_get_expr", 2 | 3) => Text,
        ("obj_description" | "shobj_description", 1 | 2) => Text,
        ("col_description", 2) => Text,
        ("pg_encoding_to_char", 1) => Text,
        ("pg_size_pretty", 1) if int(&a[0]) || a[0].is_numeric() => Text,
        (
            "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size",
            1,
        ) => Int64,
        (
            "pg_get_statisticsobjdef_columns"
            | "pg_get_function_result"
            | "pg_get_function_arguments"
            | "pg_get_triggerdef"
            | "pg_get_ruledef",
            1 | 2,
        ) => Text,
        ("pg_partition_ancestors", 1) => DataType::array_of(Int64),
        ("json_build_object", _) => Text,
        ("textregexeq" | "texticregexeq", 2) => Bool,
        ("array_to_string", 2 | 3) if arr(&a[0]) => Text,
        ("array_upper" | "array_lower" | "array_length", 2) if arr(&a[0]) => Int32,
        ("cardinality", 1) if arr(&a[0]) => Int32,
        ("array_position", 2) if arr(&a[0]) => Int32,
        ("reef_array_subscripts", 2) if arr(&a[0]) => DataType::array_of(Int32),
        // The rows of `information_schema._pg_expandarray(a)`, as an array of records; the
        // binder treats the call as set-returning.
        ("reef_expand_records", 1) if arr(&a[0]) => DataType::array_of(Text),
        ("reef_array_get", 3) => a[0].element().unwrap_or(Text),
        ("reef_array_any_eq" | "reef_array_all_ne", 2) => Bool,
        ("reef_array", _) => DataType::array_of(a.iter().copied().find(|t| *t != Unknown)?),
        (
            "reef_character_maximum_length"
            | "reef_character_octet_length"
            | "reef_numeric_precision"
            | "reef_numeric_scale"
            | "reef_datetime_precision",
            2,
        ) => Int32,
        ("reef_numeric_precision_radix", 1) => Int32,
        _ => return None,
    })
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int16(i) => Some(*i as i64),
        Value::Int32(i) => Some(*i as i64),
        Value::Int64(i) => Some(*i),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

/// `format_type(oid, typmod)`: the SQL name of a type, with its modifier.
pub fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    let m = typmod.filter(|m| *m >= 0);
    let base = |oid: i64| -> Option<String> {
        Some(match oid {
            16 => "boolean".into(),
            17 => "bytea".into(),
            18 => "\"char\"".into(),
            19 => "name".into(),
            20 => "bigint".into(),
            21 => "smallint".into(),
            22 => "int2vector".into(),
            23 => "integer".into(),
            24 => "regproc".into(),
            25 => "text".into(),
            26 => "oid".into(),
            30 => "oidvector".into(),
            114 => "json".into(),
            700 => "real".into(),
            701 => "double precision".into(),
            705 => "unknown".into(),
            1042 => match m {
                Some(n) => format!("character({})", n - 4),
                None => "character".into(),
            },
            1043 => match m {
                Some(n) => format!("character varying({})", n - 4),
                None => "character varying".into(),
            },
            1082 => "date".into(),
            1114 => "timestamp without time zone".into(),
            1184 => "timestamp with time zone".into(),
            1186 => "interval".into(),
            1700 => match m {
                Some(n) => format!("numeric({},{})", (n - 4) >> 16, (n - 4) & 0xffff),
                None => "numeric".into(),
            },
            2205 => "regclass".into(),
            2206 => "regtype".into(),
            2249 => "record".into(),
            2277 => "anyarray".into(),
            2278 => "void".into(),
            4089 => "regnamespace".into(),
            _ => return None,
        })
    };
    if let Some(b) = base(oid) {
        return Some(b);
    }
    let elem = pg_catalog::TYPES.iter().find(|t| t.array == oid)?;
    Some(format!("{}[]", base(elem.oid)?))
}

/// `pg_size_pretty(bytes)`.
fn size_pretty(n: i64) -> String {
    let mut size = n as f64;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10240.0 || unit == "TB" {
            return format!("{} {unit}", size.round() as i64);
        }
        size /= 1024.0;
    }
    unreachable!()
}

thread_local! {
    static REGEX_CACHE: RefCell<Vec<(String, bool, regex::Regex)>> = const { RefCell::new(Vec::new()) };
}

/// `text ~ pattern` (or `~*` when `ci`), with a small per-thread cache of compiled patterns.
pub fn regex_match(s: &str, pattern: &str, ci: bool) -> Result<bool> {
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, re)) = cache.iter().find(|(p, c, _)| p == pattern && *c == ci) {
            return Ok(re.is_match(s));
        }
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(ci)
            .build()
            .map_err(|e| {
                SqlError::new(
                    sqlstate::INVALID_REGULAR_EXPRESSION,
                    format!("invalid regular expression: {e}"),
                )
            })?;
        let matched = re.is_match(s);
        if cache.len() >= 32 {
            cache.remove(0);
        }
        cache.push((pattern.to_string(), ci, re));
        Ok(matched)
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int16(_) | Value::Int32(_) | Value::Int64(_) | Value::Numeric(_) => {
            text::format_text(v)
        }
        Value::Float32(_) | Value::Float64(_) => text::format_text(v),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(json_value).collect::<Vec<_>>().join(",")
        ),
        other => json_string(&text::format_text(other)),
    }
}

/// Evaluates catalog function `name`, or None if it is not one. Unlike most functions, some
/// take NULL arguments (`format_type(oid, NULL)`).
pub fn eval(name: &str, a: &[Value]) -> Option<Result<Value>> {
    let null_first = a.first().is_none_or(Value::is_null);
    let v = match (name, a.len()) {
        ("format_type", 2) => {
            if null_first {
                Value::Null
            } else {
                let oid = int_of(&a[0]).unwrap_or(0);
                match format_type(oid, int_of(&a[1])) {
                    Some(s) => Value::Text(s),
                    None => Value::Text("???".into()),
                }
            }
        }
        ("pg_get_userbyid", 1) => match int_of(&a[0]) {
            None => Value::Null,
            Some(pg_catalog::ROLE_REEF) => Value::Text("reef".into()),
            Some(pg_catalog::ROLE_DATABASE_OWNER) => Value::Text("pg_database_owner".into()),
            Some(o) => Value::Text(format!("unknown (OID={o})")),
        },
        ("pg_table_is_visible", 1) => match int_of(&a[0]) {
            None => Value::Null,
            // information_schema and reef_catalog are not on the search path.
            Some(o) => Value::Bool(!(13000..14000).contains(&o)),
        },
        ("pg_type_is_visible" | "pg_function_is_visible" | "pg_collation_is_visible", 1) => {
            if null_first {
                Value::Null
            } else {
                Value::Bool(true)
            }
        }
        ("pg_relation_is_publishable", 1) => Value::Bool(false),
        ("pg_get_expr", 2 | 3) => match &a[0] {
            Value::Null => Value::Null,
            v => Value::Text(text::format_text(v)),
        },
        (
            "obj_description"
            | "shobj_description"
            | "col_description"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_function_result"
            | "pg_get_function_arguments"
            | "pg_get_triggerdef"
            | "pg_get_ruledef",
            _,
        ) => Value::Null,
        ("pg_encoding_to_char", 1) => match int_of(&a[0]) {
            Some(6) => Value::Text("UTF8".into()),
            Some(0) => Value::Text("SQL_ASCII".into()),
            Some(_) => Value::Text(String::new()),
            None => Value::Null,
        },
        ("pg_size_pretty", 1) => match int_of(&a[0]) {
            Some(n) => Value::Text(size_pretty(n)),
            None => Value::Null,
        },
        (
            "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size",
            1,
        ) => {
            if null_first {
                Value::Null
            } else {
                Value::Int64(0)
            }
        }
        ("pg_partition_ancestors", 1) => Value::Array(Vec::new()),
        ("json_build_object", n) => {
            if n % 2 != 0 {
                return Some(Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "argument list must have even number of elements",
                )));
            }
            let fields: Vec<String> = a
                .chunks(2)
                .map(|kv| {
                    format!(
                        "{} : {}",
                        json_string(&text::format_text(&kv[0])),
                        json_value(&kv[1])
                    )
                })
                .collect();
            Value::Text(format!("{{{}}}", fields.join(", ")))
        }
        ("textregexeq" | "texticregexeq", 2) => match (&a[0], &a[1]) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (s, p) => {
                let ci = name == "texticregexeq";
                match regex_match(&text::format_text(s), &text::format_text(p), ci) {
                    Ok(b) => Value::Bool(b),
                    Err(e) => return Some(Err(e)),
                }
            }
        },
        ("array_to_string", 2 | 3) => {
            if a[0].is_null() || a[1].is_null() {
                Value::Null
            } else {
                let sep = text::format_text(&a[1]);
                let null = a.get(2).filter(|v| !v.is_null()).map(text::format_text);
                let parts: Vec<String> = items(&a[0])
                    .iter()
                    .filter_map(|v| {
                        if v.is_null() {
                            null.clone()
                        } else {
                            Some(text::format_text(v))
                        }
                    })
                    .collect();
                Value::Text(parts.join(&sep))
            }
        }
        ("array_upper" | "array_length", 2) => {
            let n = items(&a[0]).len();
            if a[0].is_null() || n == 0 || int_of(&a[1]) != Some(1) {
                Value::Null
            } else {
                Value::Int32(n as i32)
            }
        }
        ("array_lower", 2) => {
            if a[0].is_null() || items(&a[0]).is_empty() || int_of(&a[1]) != Some(1) {
                Value::Null
            } else {
                Value::Int32(1)
            }
        }
        ("cardinality", 1) => {
            if null_first {
                Value::Null
            } else {
                Value::Int32(items(&a[0]).len() as i32)
            }
        }
        ("array_position", 2) => {
            if null_first {
                Value::Null
            } else {
                match items(&a[0]).iter().position(|v| {
                    super::compare_values(v, &a[1]) == Some(std::cmp::Ordering::Equal)
                }) {
                    Some(p) => Value::Int32(p as i32 + 1),
                    None => Value::Null,
                }
            }
        }
        ("reef_array_subscripts", 2) => {
            if null_first {
                Value::Null
            } else {
                let lower = int_of(&a[1]).unwrap_or(1) as i32;
                Value::Array(
                    (0..items(&a[0]).len() as i32)
                        .map(|i| Value::Int32(lower + i))
                        .collect(),
                )
            }
        }
        ("reef_array_get", 3) => match (int_of(&a[1]), int_of(&a[2])) {
            (Some(i), Some(lower)) if !a[0].is_null() => {
                let at = i - lower;
                if at < 0 {
                    Value::Null
                } else {
                    items(&a[0])
                        .get(at as usize)
                        .cloned()
                        .unwrap_or(Value::Null)
                }
            }
            _ => Value::Null,
        },
        ("reef_array_any_eq" | "reef_array_all_ne", 2) => {
            if a[0].is_null() || a[1].is_null() {
                Value::Null
            } else {
                let any = name == "reef_array_any_eq";
                let mut saw_null = false;
                let mut hit = false;
                for v in items(&a[1]) {
                    match super::compare_values(&a[0], v) {
                        None => saw_null = true,
                        Some(std::cmp::Ordering::Equal) => hit = true,
                        Some(_) => {}
                    }
                }
                match (any, hit, saw_null) {
                    (true, true, _) => Value::Bool(true),
                    (false, true, _) => Value::Bool(false),
                    (_, false, true) => Value::Null,
                    (any, false, false) => Value::Bool(!any),
                }
            }
        }
        ("reef_array", _) => Value::Array(a.to_vec()),
        ("reef_expand_records", 1) => {
            if null_first {
                Value::Null
            } else {
                Value::Array(
                    items(&a[0])
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let x = match v {
                                Value::Int16(n) => Value::Int64(*n as i64),
                                Value::Int32(n) => Value::Int64(*n as i64),
                                other => other.clone(),
                            };
                            Value::Array(vec![x, Value::Int32(i as i32 + 1)])
                        })
                        .collect(),
                )
            }
        }
        ("reef_character_maximum_length", 2) => {
            match (int_of(&a[0]), int_of(&a[1]).filter(|m| *m >= 4)) {
                (Some(1042 | 1043), Some(m)) => Value::Int32(m as i32 - 4),
                _ => Value::Null,
            }
        }
        ("reef_character_octet_length", 2) => {
            match (int_of(&a[0]), int_of(&a[1]).filter(|m| *m >= 4)) {
                (Some(1042 | 1043), Some(m)) => Value::Int32((m as i32 - 4) * 4),
                (Some(25 | 1042 | 1043), None) => Value::Int32(1_073_741_824),
                _ => Value::Null,
            }
        }
        ("reef_numeric_precision", 2) => match int_of(&a[0]) {
            Some(21) => Value::Int32(16),
            Some(23) => Value::Int32(32),
            Some(20) => Value::Int32(64),
            Some(700) => Value::Int32(24),
            Some(701) => Value::Int32(53),
            Some(1700) => match int_of(&a[1]).filter(|m| *m >= 4) {
                Some(m) => Value::Int32(((m - 4) >> 16) as i32),
                None => Value::Null,
            },
            _ => Value::Null,
        },
        ("reef_numeric_precision_radix", 1) => match int_of(&a[0]) {
            Some(21 | 23 | 20 | 700 | 701) => Value::Int32(2),
            Some(1700) => Value::Int32(10),
            _ => Value::Null,
        },
        ("reef_numeric_scale", 2) => match int_of(&a[0]) {
            Some(21 | 23 | 20) => Value::Int32(0),
            Some(1700) => match int_of(&a[1]).filter(|m| *m >= 4) {
                Some(m) => Value::Int32(((m - 4) & 0xffff) as i32),
                None => Value::Null,
            },
            _ => Value::Null,
        },
        ("reef_datetime_precision", 2) => match int_of(&a[0]) {
            Some(1082) => Value::Int32(0),
            Some(1114 | 1184 | 1186) => Value::Int32(6),
            _ => Value::Null,
        },
        _ => return None,
    };
    Some(Ok(v))
}
