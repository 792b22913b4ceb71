//! Built-in scalar functions, by name: type resolution and evaluation.
//!
//! [`resolve_scalar`] gives a call's result type (or 42883 when no function
//! of that name takes those argument types); [`eval_scalar`] evaluates it.
//! Function names arrive lower-cased. Every function here is strict (NULL
//! in, NULL out) except `concat` and `concat_ws`, which skip NULL arguments.
//!
//! The time functions read a per-thread [`StatementClock`]: the session sets
//! it with [`set_statement_clock`] before running a statement so that
//! `now()` (the transaction's start) and `statement_timestamp()` are stable
//! within it. Without a clock they fall back to the system clock, and
//! `clock_timestamp()` always reads the system clock.

use std::borrow::Cow;
use std::cell::Cell;

use md5::{Digest, Md5};
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use super::datetime::{self, ExtractSource, USECS_PER_DAY};
use super::ops::{
    self, decimal_to_f64, float_overflow, float_underflow, round_to_scale, type_display,
};
use super::text::{self, numeric_overflow};
use super::{DataType, Value};
use crate::error::{sqlstate, Result, SqlError};

/// The instants the time functions report, in microseconds since the Unix
/// epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementClock {
    /// When the current transaction started: `now()`, `current_timestamp`,
    /// `transaction_timestamp()`, `current_date`.
    pub transaction: i64,
    /// When the current statement started: `statement_timestamp()`.
    pub statement: i64,
}

thread_local! {
    static CLOCK: Cell<Option<StatementClock>> = const { Cell::new(None) };
}

/// Sets (or with None, clears) the calling thread's statement clock.
pub fn set_statement_clock(clock: Option<StatementClock>) {
    CLOCK.with(|c| c.set(clock));
}

/// The calling thread's statement clock, or the system clock's current
/// time for both instants if none is set.
pub fn statement_clock() -> StatementClock {
    CLOCK.with(|c| c.get()).unwrap_or_else(|| {
        let now = datetime::clock_now();
        StatementClock {
            transaction: now,
            statement: now,
        }
    })
}

fn no_function(name: &str, args: &[DataType]) -> SqlError {
    let list: Vec<&str> = args.iter().map(type_display).collect();
    SqlError::new(sqlstate::UNDEFINED_FUNCTION, format!("function {name}({}) does not exist", list.join(", ")))
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

fn is_int(t: &DataType) -> bool {
    t.is_integer() || *t == DataType::Unknown
}

fn is_text(t: &DataType) -> bool {
    t.is_string() || *t == DataType::Unknown
}

fn is_num(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Unknown
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

/// Numeric when an argument is numeric (and none is a float), else double.
fn numeric_or_float(args: &[DataType]) -> DataType {
    if args.iter().any(|t| matches!(t, DataType::Numeric(_))) && !args.iter().any(is_float) {
        DataType::Numeric(None)
    } else {
        DataType::Float64
    }
}

/// Numeric unless an argument is a float (then no function exists).
fn numeric_only(args: &[DataType]) -> Option<DataType> {
    if args.iter().any(is_float) {
        None
    } else {
        Some(DataType::Numeric(None))
    }
}

fn is_datetime(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date | DataType::Timestamp | DataType::TimestampTz | DataType::Unknown
    )
}

/// The result type of calling `name` with arguments of `arg_types`, or
/// 42883 ("function foo(integer) does not exist") if there is no such
/// function.
pub fn resolve_scalar(name: &str, arg_types: &[DataType]) -> Result<DataType> {
    use DataType::*;
    if let Some(t) = super::catalog_funcs::resolve(name, arg_types) {
        return Ok(t);
    }
    let a = arg_types;
    let t = match (name, a.len()) {
        ("abs", 1) if is_num(&a[0]) => match a[0] {
            Unknown => Float64,
            t => t.base(),
        },
        ("ceil" | "ceiling" | "floor" | "sign" | "sqrt" | "exp" | "ln" | "round" | "trunc", 1)
            if is_num(&a[0]) =>
        {
            numeric_or_float(a)
        }
        ("log" | "log10", 1) if is_num(&a[0]) => numeric_or_float(a),
        ("cbrt", 1) if is_num(&a[0]) => Float64,
        ("round" | "trunc", 2) if is_num(&a[0]) && is_int(&a[1]) => {
            numeric_only(&a[..1]).ok_or_else(|| no_function(name, a))?
        }
        ("log", 2) if is_num(&a[0]) && is_num(&a[1]) => {
            numeric_only(a).ok_or_else(|| no_function(name, a))?
        }
        ("power" | "pow", 2) if is_num(&a[0]) && is_num(&a[1]) => numeric_or_float(a),
        ("mod", 2) if is_num(&a[0]) && is_num(&a[1]) => {
            if a.iter().any(is_float) {
                return Err(no_function(name, a));
            }
            match (&a[0], &a[1]) {
                (x, y) if x.is_integer() && y.is_integer() => {
                    ops::binary_result_type(ops::BinaryOp::Mod, x, y)?
                }
                (x, Unknown) if x.is_integer() => *x,
                (Unknown, y) if y.is_integer() => *y,
                _ => Numeric(None),
            }
        }
        ("div", 2) if is_num(&a[0]) && is_num(&a[1]) => {
            numeric_only(a).ok_or_else(|| no_function(name, a))?
        }
        ("pi" | "random", 0) => Float64,
        ("length" | "char_length" | "character_length", 1) if is_text(&a[0]) || a[0] == Bytea => {
            Int32
        }
        ("octet_length", 1) if is_text(&a[0]) || a[0] == Bytea => Int32,
        ("lower" | "upper" | "initcap" | "reverse", 1) if is_text(&a[0]) => Text,
        ("substr" | "substring", 2) if is_int(&a[1]) && a[0] == Bytea => Bytea,
        ("substr" | "substring", 3) if is_int(&a[1]) && is_int(&a[2]) && a[0] == Bytea => Bytea,
        ("substr" | "substring", 2) if is_text(&a[0]) && is_int(&a[1]) => Text,
        ("substr" | "substring", 3) if is_text(&a[0]) && is_int(&a[1]) && is_int(&a[2]) => Text,
        ("strpos", 2) if is_text(&a[0]) && is_text(&a[1]) => Int32,
        ("left" | "right" | "repeat", 2) if is_text(&a[0]) && is_int(&a[1]) => Text,
        ("lpad" | "rpad", 2) if is_text(&a[0]) && is_int(&a[1]) => Text,
        ("lpad" | "rpad", 3) if is_text(&a[0]) && is_int(&a[1]) && is_text(&a[2]) => Text,
        ("ltrim" | "rtrim" | "btrim", 1) if is_text(&a[0]) => Text,
        ("ltrim" | "rtrim" | "btrim", 2) if is_text(&a[0]) && is_text(&a[1]) => Text,
        ("replace" | "translate", 3) if a.iter().all(is_text) => Text,
        ("concat", _) => Text,
        ("concat_ws", n) if n >= 1 && is_text(&a[0]) => Text,
        ("split_part", 3) if is_text(&a[0]) && is_text(&a[1]) && is_int(&a[2]) => Text,
        ("ascii", 1) if is_text(&a[0]) => Int32,
        ("chr", 1) if is_int(&a[0]) => Text,
        ("md5", 1) if is_text(&a[0]) || a[0] == Bytea => Text,
        ("to_hex", 1) if is_int(&a[0]) => Text,
        ("starts_with", 2) if is_text(&a[0]) && is_text(&a[1]) => Bool,
        (
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp",
            0,
        ) => TimestampTz,
        ("localtimestamp", 0) => Timestamp,
        ("current_date", 0) => Date,
        ("date_part", 2) if is_text(&a[0]) && (is_datetime(&a[1]) || a[1] == Interval) => Float64,
        ("extract", 2) if is_text(&a[0]) && (is_datetime(&a[1]) || a[1] == Interval) => {
            Numeric(None)
        }
        ("date_trunc", 2) if is_text(&a[0]) && is_datetime(&a[1]) => match a[1] {
            Timestamp => Timestamp,
            _ => TimestampTz,
        },
        ("age", 1) if is_datetime(&a[0]) => Interval,
        ("age", 2) if is_datetime(&a[0]) && is_datetime(&a[1]) => Interval,
        ("make_date", 3) if a.iter().all(is_int) => Date,
        ("make_timestamp", 6) if a[..5].iter().all(is_int) && is_num(&a[5]) => Timestamp,
        ("to_char", 2)
            if (is_datetime(&a[0]) || a[0] == Interval || a[0].is_numeric()) && is_text(&a[1]) =>
        {
            Text
        }
        _ => return Err(no_function(name, a)),
    };
    Ok(t)
}

// ---------------------------------------------------------------------------
// Argument helpers.

fn text_arg(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Text(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(text::format_text(other)),
    }
}

fn int_arg(v: &Value) -> Result<i64> {
    Ok(match v {
        Value::Int16(i) => *i as i64,
        Value::Int32(i) => *i as i64,
        Value::Int64(i) => *i,
        Value::Text(s) => text::parse_int(s, "integer", i32::MIN as i64, i32::MAX as i64)?,
        other => {
            return Err(SqlError::internal(format!(
                "expected an integer argument, got {other:?}"
            )))
        }
    })
}

fn f64_arg(v: &Value) -> Result<f64> {
    match v {
        Value::Text(s) => text::parse_f64(s),
        other => ops::to_f64(other)
            .ok_or_else(|| SqlError::internal(format!("expected a number, got {other:?}"))),
    }
}

fn dec_arg(v: &Value) -> Result<Decimal> {
    match v {
        Value::Text(s) => text::parse_numeric(s),
        other => ops::to_decimal(other)
            .ok_or_else(|| SqlError::internal(format!("expected a numeric, got {other:?}"))),
    }
}

/// True when the numeric version of a float-or-numeric function applies.
fn use_numeric(args: &[Value]) -> bool {
    args.iter().any(|v| matches!(v, Value::Numeric(_)))
        && !args
            .iter()
            .any(|v| matches!(v, Value::Float32(_) | Value::Float64(_)))
}

fn check_f64(r: f64, inf_ok: bool, zero_ok: bool) -> Result<Value> {
    if r.is_infinite() && !inf_ok {
        return Err(float_overflow());
    }
    if r == 0.0 && !zero_ok {
        return Err(float_underflow());
    }
    Ok(Value::Float64(r))
}

fn log_error(zero: bool) -> SqlError {
    SqlError::new(
        ops::INVALID_ARGUMENT_FOR_LOG,
        if zero {
            "cannot take logarithm of zero"
        } else {
            "cannot take logarithm of a negative number"
        },
    )
}

fn sqrt_error() -> SqlError {
    SqlError::new(
        ops::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
        "cannot take square root of a negative number",
    )
}

fn clamp_scale(s: i64) -> u32 {
    s.clamp(0, text::MAX_NUMERIC_SCALE as i64) as u32
}

/// The decimal weight of ln(x), as PostgreSQL's `estimate_ln_dweight`.
fn estimate_ln_dweight(x: &Decimal) -> i64 {
    if x.is_sign_negative() || x.is_zero() {
        return 0;
    }
    if *x >= Decimal::new(9, 1) && *x <= Decimal::new(11, 1) {
        let y = *x - Decimal::ONE;
        if y.is_zero() {
            0
        } else {
            ops::decimal_exponent(&y)
        }
    } else {
        let ln = decimal_to_f64(x).ln();
        ln.abs().log10() as i64
    }
}

/// ln(x) of a numeric, with PostgreSQL's result scale.
fn numeric_ln(x: &Decimal) -> Result<Decimal> {
    if x.is_zero() {
        return Err(log_error(true));
    }
    if x.is_sign_negative() {
        return Err(log_error(false));
    }
    let rscale = clamp_scale((16 - estimate_ln_dweight(x)).max(x.scale() as i64));
    Ok(round_to_scale(ops::numeric_ln_raw(x)?, rscale))
}

/// log_base(x) of numerics, with PostgreSQL's result scale.
fn numeric_log(base: &Decimal, x: &Decimal) -> Result<Decimal> {
    for v in [base, x] {
        if v.is_zero() {
            return Err(log_error(true));
        }
        if v.is_sign_negative() {
            return Err(log_error(false));
        }
    }
    if *base == Decimal::ONE {
        return Err(SqlError::division_by_zero());
    }
    let dweight = estimate_ln_dweight(x) - estimate_ln_dweight(base);
    let rscale = clamp_scale(
        (16 - dweight)
            .max(base.scale() as i64)
            .max(x.scale() as i64),
    );
    let r = ops::numeric_ln_raw(x)?
        .checked_div(ops::numeric_ln_raw(base)?)
        .ok_or_else(numeric_overflow)?;
    Ok(round_to_scale(r, rscale))
}

fn numeric_sqrt(x: &Decimal) -> Result<Decimal> {
    if x.is_sign_negative() && !x.is_zero() {
        return Err(sqrt_error());
    }
    let weight = nbase_weight(x);
    let sweight = (weight + 1) * 4 / 2 - 1;
    let rscale = clamp_scale((16 - sweight).max(x.scale() as i64));
    let r = x.sqrt().ok_or_else(sqrt_error)?;
    Ok(round_to_scale(r, rscale))
}

/// The base-10000 weight of a decimal (0 for zero).
fn nbase_weight(d: &Decimal) -> i64 {
    if d.is_zero() {
        0
    } else {
        ops::decimal_exponent(d).div_euclid(4)
    }
}

fn numeric_exp(x: &Decimal) -> Result<Decimal> {
    let val = (decimal_to_f64(x) * std::f64::consts::LOG10_E).clamp(-1000.0, 1000.0);
    let rscale = clamp_scale((16 - val as i64).max(x.scale() as i64));
    Ok(round_to_scale(ops::numeric_exp_raw(x)?, rscale))
}

/// Rounds (or truncates) a numeric to `places` decimals; negative places
/// round to tens, hundreds... The result has scale `max(places, 0)`.
fn numeric_round(d: &Decimal, places: i64, strategy: RoundingStrategy) -> Result<Decimal> {
    if places >= 0 {
        let p = places.min(text::MAX_NUMERIC_SCALE as i64) as u32;
        let mut r = d.round_dp_with_strategy(p, strategy);
        if r.scale() < p {
            r.rescale(p);
        }
        if r.is_zero() {
            r.set_sign_positive(true);
        }
        Ok(r)
    } else {
        let k = (-places).min(40) as u32;
        if k > 28 {
            return Ok(Decimal::ZERO);
        }
        let factor = Decimal::TEN
            .checked_powu(k as u64)
            .ok_or_else(numeric_overflow)?;
        let q = (*d / factor).round_dp_with_strategy(0, strategy);
        let mut r = q.checked_mul(factor).ok_or_else(numeric_overflow)?;
        r.rescale(0);
        if r.is_zero() {
            r.set_sign_positive(true);
        }
        Ok(r)
    }
}

fn float_round_trip(f: f64, op: fn(f64) -> f64) -> Value {
    Value::Float64(op(f))
}

// ---------------------------------------------------------------------------
// String helpers.

/// PostgreSQL's substring with 1-based start that may be zero or negative.
fn substring_range(len: usize, start: i64, count: Option<i64>) -> Result<(usize, usize)> {
    let end = match count {
        Some(c) if c < 0 => {
            return Err(SqlError::new(
                "22011",
                "negative substring length not allowed",
            ));
        }
        Some(c) => start.saturating_add(c),
        None => i64::MAX,
    };
    let s = start.max(1);
    if end <= s {
        return Ok((0, 0));
    }
    let from = ((s - 1) as u64).min(len as u64) as usize;
    let to = ((end - 1) as u64).min(len as u64) as usize;
    Ok((from, to.max(from)))
}

fn char_slice(s: &str, from: usize, to: usize) -> &str {
    let mut idx = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()));
    let start = idx.nth(from).unwrap_or(s.len());
    let end = if to > from {
        s.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .nth(to)
            .unwrap_or(s.len())
    } else {
        start
    };
    &s[start..end]
}

fn pad(s: &str, len: i64, fill: &str, left: bool) -> Result<String> {
    if len <= 0 {
        return Ok(String::new());
    }
    let len = len as usize;
    check_result_size(len.saturating_mul(4))?;
    let n = s.chars().count();
    if n >= len || fill.is_empty() {
        return Ok(char_slice(s, 0, len.min(n)).to_owned());
    }
    let mut padding = String::new();
    let mut fill_chars = fill.chars().cycle();
    for _ in n..len {
        padding.push(fill_chars.next().unwrap_or(' '));
    }
    Ok(if left {
        padding + s
    } else {
        s.to_owned() + &padding
    })
}

fn check_result_size(bytes: usize) -> Result<()> {
    if bytes > (1 << 30) - 1 {
        return Err(SqlError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "requested length too large",
        ));
    }
    Ok(())
}

fn trim<'a>(s: &'a str, chars: &str, left: bool, right: bool) -> &'a str {
    let set = |c: char| chars.contains(c);
    let s = if left { s.trim_start_matches(set) } else { s };
    if right {
        s.trim_end_matches(set)
    } else {
        s
    }
}

fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

fn split_part(s: &str, delim: &str, n: i64) -> Result<String> {
    if n == 0 {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "field position must not be zero",
        ));
    }
    if delim.is_empty() {
        return Ok(if n == 1 || n == -1 {
            s.to_owned()
        } else {
            String::new()
        });
    }
    let parts: Vec<&str> = s.split(delim).collect();
    let idx = if n > 0 { n - 1 } else { parts.len() as i64 + n };
    Ok(if idx >= 0 && (idx as usize) < parts.len() {
        parts[idx as usize].to_owned()
    } else {
        String::new()
    })
}

fn translate(s: &str, from: &str, to: &str) -> String {
    let from: Vec<char> = from.chars().collect();
    let to: Vec<char> = to.chars().collect();
    s.chars()
        .filter_map(|c| match from.iter().position(|f| *f == c) {
            Some(i) => to.get(i).copied(),
            None => Some(c),
        })
        .collect()
}

fn chr(code: i64) -> Result<String> {
    if code == 0 {
        return Err(SqlError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "null character not permitted",
        ));
    }
    if code < 0 {
        return Err(SqlError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "character number must be positive",
        ));
    }
    match u32::try_from(code).ok().and_then(char::from_u32) {
        Some(c) => Ok(c.to_string()),
        None => Err(SqlError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!("requested character too large for encoding: {code}"),
        )),
    }
}

fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    let mut out = String::with_capacity(32);
    for b in digest.iter() {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

// ---------------------------------------------------------------------------
// Date/time helpers.

fn extract_source(v: &Value) -> Result<(ExtractSource, i64)> {
    Ok(match v {
        Value::Date(d) => (ExtractSource::Date, *d as i64),
        Value::Timestamp(t) => (ExtractSource::Timestamp, *t),
        Value::TimestampTz(t) => (ExtractSource::TimestampTz, *t),
        Value::Text(s) => (
            ExtractSource::TimestampTz,
            datetime::parse_timestamp(s, true)?,
        ),
        other => return Err(SqlError::internal(format!("bad extract source {other:?}"))),
    })
}

fn extract_value(field: &str, v: &Value) -> Result<Decimal> {
    match v {
        Value::Interval(iv) => datetime::extract_interval(field, iv),
        other => {
            let (src, x) = extract_source(other)?;
            datetime::extract(field, src, x)
        }
    }
}

fn ts_of(v: &Value) -> Result<i64> {
    Ok(match v {
        Value::Date(d) => datetime::date_to_timestamp(*d),
        Value::Timestamp(t) | Value::TimestampTz(t) => *t,
        Value::Text(s) => datetime::parse_timestamp(s, false)?,
        other => {
            return Err(SqlError::internal(format!(
                "expected a timestamp, got {other:?}"
            )))
        }
    })
}

fn make_date(y: i64, m: i64, d: i64) -> Result<i32> {
    let err = || {
        SqlError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("date field value out of range: {y}-{m:02}-{d:02}"),
        )
    };
    if y == 0 {
        return Err(err());
    }
    // Negative years mean BC: -1 is 1 BC, proleptic year 0.
    let year = if y < 0 { y + 1 } else { y };
    let year = i32::try_from(year).map_err(|_| err())?;
    let (m, d) = (
        u32::try_from(m).map_err(|_| err())?,
        u32::try_from(d).map_err(|_| err())?,
    );
    datetime::ymd_to_days(year, m, d).ok_or_else(err)
}

/// A small `to_char` covering the common template patterns: YYYY, YY, MM,
/// DD, HH24, HH12, HH, MI, SS, MS, US, Mon, Month, Dy, Day, AM/PM, and
/// quoted text; numbers are formatted by their text output.
fn to_char(v: &Value, fmt: &str) -> Result<String> {
    let ts = match v {
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => ts_of(v)?,
        other => return Ok(text::format_text(other)),
    };
    let f = datetime::timestamp_to_fields(ts)?;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let dow = (ts.div_euclid(USECS_PER_DAY) + 4).rem_euclid(7) as usize;
    let mut out = String::new();
    let mut rest = fmt;
    use std::fmt::Write;
    while !rest.is_empty() {
        let upper_rest = rest.to_ascii_uppercase();
        let take = |p: &str| upper_rest.starts_with(p);
        let hour12 = if f.hour % 12 == 0 { 12 } else { f.hour % 12 };
        let consumed = if let Some(quoted) = rest.strip_prefix('"') {
            // Quoted text is copied as is, without the quotes.
            match quoted.find('"') {
                Some(i) => {
                    out.push_str(&quoted[..i]);
                    i + 2
                }
                None => {
                    out.push_str(quoted);
                    rest.len()
                }
            }
        } else if take("YYYY") {
            let _ = write!(out, "{:04}", if f.year <= 0 { 1 - f.year } else { f.year });
            4
        } else if take("YY") {
            let _ = write!(out, "{:02}", f.year.rem_euclid(100));
            2
        } else if take("MONTH") {
            let name = MONTHS[f.month as usize - 1];
            let _ = write!(
                out,
                "{:<9}",
                if rest.starts_with("MONTH") {
                    name.to_uppercase()
                } else {
                    name.to_owned()
                }
            );
            5
        } else if take("MON") {
            let name = &MONTHS[f.month as usize - 1][..3];
            out.push_str(&if rest.starts_with("MON") {
                name.to_uppercase()
            } else {
                name.to_owned()
            });
            3
        } else if take("MM") {
            let _ = write!(out, "{:02}", f.month);
            2
        } else if take("DAY") {
            let name = DAYS[dow];
            let _ = write!(
                out,
                "{:<9}",
                if rest.starts_with("DAY") {
                    name.to_uppercase()
                } else {
                    name.to_owned()
                }
            );
            3
        } else if take("DY") {
            let name = &DAYS[dow][..3];
            out.push_str(&if rest.starts_with("DY") {
                name.to_uppercase()
            } else {
                name.to_owned()
            });
            2
        } else if take("DD") {
            let _ = write!(out, "{:02}", f.day);
            2
        } else if take("HH24") {
            let _ = write!(out, "{:02}", f.hour);
            4
        } else if take("HH12") {
            let _ = write!(out, "{hour12:02}");
            4
        } else if take("HH") {
            let _ = write!(out, "{hour12:02}");
            2
        } else if take("MI") {
            let _ = write!(out, "{:02}", f.minute);
            2
        } else if take("SS") {
            let _ = write!(out, "{:02}", f.second);
            2
        } else if take("MS") {
            let _ = write!(out, "{:03}", f.micros / 1000);
            2
        } else if take("US") {
            let _ = write!(out, "{:06}", f.micros);
            2
        } else if take("AM") || take("PM") {
            out.push_str(if f.hour < 12 { "AM" } else { "PM" });
            2
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            c.len_utf8()
        };
        rest = &rest[consumed.min(rest.len())..];
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Evaluation.

/// Evaluates a scalar function call. Strict functions return NULL when any
/// argument is NULL; `concat` and `concat_ws` skip NULLs (NULL separator
/// gives NULL). Arguments are expected to have the types [`resolve_scalar`]
/// accepted; text arguments in numeric or date positions (untyped literals)
/// are parsed.
pub fn eval_scalar(name: &str, args: &[Value]) -> Result<Value> {
    if let Some(v) = super::catalog_funcs::eval(name, args) {
        return v;
    }
    match name {
        "concat" => {
            let mut out = String::new();
            for a in args {
                text::format_text_into(a, &mut out);
            }
            return Ok(Value::Text(out));
        }
        "concat_ws" => {
            let Some(sep) = args.first() else {
                return Err(no_function(name, &[]));
            };
            if sep.is_null() {
                return Ok(Value::Null);
            }
            let sep = text_arg(sep);
            let mut out = String::new();
            let mut first = true;
            for a in &args[1..] {
                if a.is_null() {
                    continue;
                }
                if !first {
                    out.push_str(&sep);
                }
                first = false;
                text::format_text_into(a, &mut out);
            }
            return Ok(Value::Text(out));
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let a = args;
    let arity = |n: usize| -> Result<()> {
        if a.len() == n {
            Ok(())
        } else {
            let types: Vec<DataType> = a.iter().map(Value::data_type).collect();
            Err(no_function(name, &types))
        }
    };
    let v = match (name, a.len()) {
        // Mathematical functions.
        ("abs", 1) => match &a[0] {
            Value::Int16(i) => Value::Int16(
                i.checked_abs()
                    .ok_or_else(|| SqlError::out_of_range("smallint"))?,
            ),
            Value::Int32(i) => Value::Int32(
                i.checked_abs()
                    .ok_or_else(|| SqlError::out_of_range("integer"))?,
            ),
            Value::Int64(i) => Value::Int64(
                i.checked_abs()
                    .ok_or_else(|| SqlError::out_of_range("bigint"))?,
            ),
            Value::Float32(f) => Value::Float32(f.abs()),
            Value::Numeric(d) => Value::Numeric(d.abs()),
            v => Value::Float64(f64_arg(v)?.abs()),
        },
        ("ceil" | "ceiling", 1) if use_numeric(a) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?.ceil(),
            0,
            RoundingStrategy::ToZero,
        )?),
        ("ceil" | "ceiling", 1) => float_round_trip(f64_arg(&a[0])?, f64::ceil),
        ("floor", 1) if use_numeric(a) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?.floor(),
            0,
            RoundingStrategy::ToZero,
        )?),
        ("floor", 1) => float_round_trip(f64_arg(&a[0])?, f64::floor),
        ("round", 1) if use_numeric(a) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?,
            0,
            RoundingStrategy::MidpointAwayFromZero,
        )?),
        ("round", 1) => float_round_trip(f64_arg(&a[0])?, f64::round_ties_even),
        ("round", 2) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?,
            int_arg(&a[1])?,
            RoundingStrategy::MidpointAwayFromZero,
        )?),
        ("trunc", 1) if use_numeric(a) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?,
            0,
            RoundingStrategy::ToZero,
        )?),
        ("trunc", 1) => float_round_trip(f64_arg(&a[0])?, f64::trunc),
        ("trunc", 2) => Value::Numeric(numeric_round(
            &dec_arg(&a[0])?,
            int_arg(&a[1])?,
            RoundingStrategy::ToZero,
        )?),
        ("sign", 1) if use_numeric(a) => {
            let d = dec_arg(&a[0])?;
            Value::Numeric(if d.is_zero() {
                Decimal::ZERO
            } else if d.is_sign_negative() {
                -Decimal::ONE
            } else {
                Decimal::ONE
            })
        }
        ("sign", 1) => {
            let f = f64_arg(&a[0])?;
            Value::Float64(if f > 0.0 {
                1.0
            } else if f < 0.0 {
                -1.0
            } else {
                0.0
            })
        }
        ("sqrt", 1) if use_numeric(a) => Value::Numeric(numeric_sqrt(&dec_arg(&a[0])?)?),
        ("sqrt", 1) => {
            let f = f64_arg(&a[0])?;
            if f < 0.0 {
                return Err(sqrt_error());
            }
            Value::Float64(f.sqrt())
        }
        ("cbrt", 1) => Value::Float64(f64_arg(&a[0])?.cbrt()),
        ("exp", 1) if use_numeric(a) => Value::Numeric(numeric_exp(&dec_arg(&a[0])?)?),
        ("exp", 1) => {
            let f = f64_arg(&a[0])?;
            check_f64(f.exp(), f.is_infinite(), f == f64::NEG_INFINITY)?
        }
        ("ln", 1) if use_numeric(a) => Value::Numeric(numeric_ln(&dec_arg(&a[0])?)?),
        ("log" | "log10", 1) if use_numeric(a) => {
            Value::Numeric(numeric_log(&Decimal::TEN, &dec_arg(&a[0])?)?)
        }
        ("ln" | "log" | "log10", 1) => {
            let f = f64_arg(&a[0])?;
            if f == 0.0 {
                return Err(log_error(true));
            }
            if f < 0.0 {
                return Err(log_error(false));
            }
            Value::Float64(if name == "ln" { f.ln() } else { f.log10() })
        }
        ("log", 2) => Value::Numeric(numeric_log(&dec_arg(&a[0])?, &dec_arg(&a[1])?)?),
        ("power" | "pow", 2) if use_numeric(a) => {
            Value::Numeric(ops::numeric_pow(&dec_arg(&a[0])?, &dec_arg(&a[1])?)?)
        }
        ("power" | "pow", 2) => Value::Float64(ops::float_pow(f64_arg(&a[0])?, f64_arg(&a[1])?)?),
        ("mod", 2) => ops::eval_binary(ops::BinaryOp::Mod, &a[0], &a[1])?,
        ("div", 2) => {
            let (x, y) = (dec_arg(&a[0])?, dec_arg(&a[1])?);
            if y.is_zero() {
                return Err(SqlError::division_by_zero());
            }
            let q = x.checked_div(y).ok_or_else(numeric_overflow)?;
            Value::Numeric(numeric_round(&q, 0, RoundingStrategy::ToZero)?)
        }
        ("pi", 0) => Value::Float64(std::f64::consts::PI),
        ("random", 0) => Value::Float64(random_f64()),

        // String functions.
        ("length" | "char_length" | "character_length", 1) => match &a[0] {
            Value::Bytea(b) => Value::Int32(b.len() as i32),
            v => Value::Int32(text_arg(v).chars().count() as i32),
        },
        ("octet_length", 1) => match &a[0] {
            Value::Bytea(b) => Value::Int32(b.len() as i32),
            v => Value::Int32(text_arg(v).len() as i32),
        },
        ("lower", 1) => Value::Text(text_arg(&a[0]).to_lowercase()),
        ("upper", 1) => Value::Text(text_arg(&a[0]).to_uppercase()),
        ("initcap", 1) => Value::Text(initcap(&text_arg(&a[0]))),
        ("reverse", 1) => Value::Text(text_arg(&a[0]).chars().rev().collect()),
        ("substr" | "substring", 2 | 3) => {
            let start = int_arg(&a[1])?;
            let count = if a.len() == 3 {
                Some(int_arg(&a[2])?)
            } else {
                None
            };
            match &a[0] {
                Value::Bytea(b) => {
                    let (from, to) = substring_range(b.len(), start, count)?;
                    Value::Bytea(b[from..to].to_vec())
                }
                v => {
                    let s = text_arg(v);
                    let (from, to) = substring_range(s.chars().count(), start, count)?;
                    Value::Text(char_slice(&s, from, to).to_owned())
                }
            }
        }
        ("strpos", 2) => {
            let (s, sub) = (text_arg(&a[0]), text_arg(&a[1]));
            Value::Int32(match s.find(sub.as_ref()) {
                Some(byte) => s[..byte].chars().count() as i32 + 1,
                None => 0,
            })
        }
        ("left" | "right", 2) => {
            let s = text_arg(&a[0]);
            let n = int_arg(&a[1])?;
            let len = s.chars().count() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            let len = len as usize;
            Value::Text(
                if name == "left" {
                    char_slice(&s, 0, keep)
                } else {
                    char_slice(&s, len - keep, len)
                }
                .to_owned(),
            )
        }
        ("lpad" | "rpad", 2 | 3) => {
            let fill = if a.len() == 3 {
                text_arg(&a[2])
            } else {
                Cow::Borrowed(" ")
            };
            Value::Text(pad(
                &text_arg(&a[0]),
                int_arg(&a[1])?,
                &fill,
                name == "lpad",
            )?)
        }
        ("ltrim" | "rtrim" | "btrim", 1 | 2) => {
            let chars = if a.len() == 2 {
                text_arg(&a[1])
            } else {
                Cow::Borrowed(" ")
            };
            let s = text_arg(&a[0]);
            Value::Text(trim(&s, &chars, name != "rtrim", name != "ltrim").to_owned())
        }
        ("replace", 3) => {
            let (s, from, to) = (text_arg(&a[0]), text_arg(&a[1]), text_arg(&a[2]));
            Value::Text(if from.is_empty() {
                s.into_owned()
            } else {
                s.replace(from.as_ref(), &to)
            })
        }
        ("repeat", 2) => {
            let s = text_arg(&a[0]);
            let n = int_arg(&a[1])?.max(0) as usize;
            check_result_size(s.len().saturating_mul(n))?;
            Value::Text(s.repeat(n))
        }
        ("split_part", 3) => Value::Text(split_part(
            &text_arg(&a[0]),
            &text_arg(&a[1]),
            int_arg(&a[2])?,
        )?),
        ("translate", 3) => Value::Text(translate(
            &text_arg(&a[0]),
            &text_arg(&a[1]),
            &text_arg(&a[2]),
        )),
        ("ascii", 1) => Value::Int32(text_arg(&a[0]).chars().next().map_or(0, |c| c as i32)),
        ("chr", 1) => Value::Text(chr(int_arg(&a[0])?)?),
        ("md5", 1) => Value::Text(match &a[0] {
            Value::Bytea(b) => md5_hex(b),
            v => md5_hex(text_arg(v).as_bytes()),
        }),
        ("to_hex", 1) => Value::Text(match &a[0] {
            Value::Int64(i) => format!("{:x}", *i as u64),
            v => format!("{:x}", int_arg(v)? as i32 as u32),
        }),
        ("starts_with", 2) => Value::Bool(text_arg(&a[0]).starts_with(text_arg(&a[1]).as_ref())),

        // Date and time functions.
        ("now" | "current_timestamp" | "transaction_timestamp", 0) => {
            Value::TimestampTz(statement_clock().transaction)
        }
        ("statement_timestamp", 0) => Value::TimestampTz(statement_clock().statement),
        ("clock_timestamp", 0) => Value::TimestampTz(datetime::clock_now()),
        ("localtimestamp", 0) => Value::Timestamp(statement_clock().transaction),
        ("current_date", 0) => {
            Value::Date(datetime::timestamp_to_date(statement_clock().transaction)?)
        }
        ("date_part", 2) => {
            let d = extract_value(&text_arg(&a[0]), &a[1])?;
            Value::Float64(decimal_to_f64(&d))
        }
        ("extract", 2) => Value::Numeric(extract_value(&text_arg(&a[0]), &a[1])?),
        ("date_trunc", 2) => {
            let field = text_arg(&a[0]);
            match &a[1] {
                Value::Timestamp(t) => Value::Timestamp(datetime::date_trunc(&field, *t, false)?),
                v => Value::TimestampTz(datetime::date_trunc(&field, ts_of(v)?, true)?),
            }
        }
        ("age", 1) => {
            let today = datetime::timestamp_to_date(statement_clock().transaction)?;
            Value::Interval(datetime::age(
                datetime::date_to_timestamp(today),
                ts_of(&a[0])?,
            )?)
        }
        ("age", 2) => Value::Interval(datetime::age(ts_of(&a[0])?, ts_of(&a[1])?)?),
        ("make_date", 3) => Value::Date(make_date(
            int_arg(&a[0])?,
            int_arg(&a[1])?,
            int_arg(&a[2])?,
        )?),
        ("make_timestamp", 6) => {
            let days = make_date(int_arg(&a[0])?, int_arg(&a[1])?, int_arg(&a[2])?)?;
            let (h, mi, s) = (int_arg(&a[3])?, int_arg(&a[4])?, f64_arg(&a[5])?);
            if !(0..=23).contains(&h) || !(0..=59).contains(&mi) || !(0.0..60.0).contains(&s) {
                return Err(SqlError::new(
                    sqlstate::DATETIME_FIELD_OVERFLOW,
                    format!("time field value out of range: {h}:{mi:02}:{s:02}"),
                ));
            }
            let micros = h * datetime::USECS_PER_HOUR
                + mi * datetime::USECS_PER_MINUTE
                + (s * 1e6).round() as i64;
            Value::Timestamp(datetime::check_timestamp(
                datetime::date_to_timestamp(days) + micros,
            )?)
        }
        ("to_char", 2) => Value::Text(to_char(&a[0], &text_arg(&a[1]))?),
        _ => {
            // Report arity problems and unknown names as PostgreSQL does.
            arity(usize::MAX)?;
            return Err(SqlError::internal("unreachable"));
        }
    };
    Ok(v)
}

/// A pseudo-random double in [0, 1), from a per-thread xorshift generator
/// seeded from the clock and thread identity.
fn random_f64() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_i64(datetime::clock_now());
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::text::{format_text, parse_text};

    fn num(s: &str) -> Value {
        parse_text(s, &DataType::Numeric(None)).unwrap()
    }

    fn call(name: &str, args: &[Value]) -> String {
        format_text(&eval_scalar(name, args).unwrap())
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn resolution_matches_postgresql() {
        use DataType::*;
        let r = |n: &str, a: &[DataType]| resolve_scalar(n, a).unwrap();
        assert_eq!(r("round", &[Int32]), Float64);
        assert_eq!(r("round", &[Int32, Int32]), Numeric(None));
        assert_eq!(r("ceil", &[Numeric(None)]), Numeric(None));
        assert_eq!(r("abs", &[Int16]), Int16);
        assert_eq!(r("abs", &[Float32]), Float32);
        assert_eq!(r("sign", &[Int32]), Float64);
        assert_eq!(r("mod", &[Int16, Int32]), Int32);
        assert_eq!(r("mod", &[Int64, Int32]), Int64);
        assert_eq!(r("mod", &[Numeric(None), Int32]), Numeric(None));
        assert_eq!(r("div", &[Int32, Int32]), Numeric(None));
        assert_eq!(r("power", &[Int32, Int32]), Float64);
        assert_eq!(r("power", &[Numeric(None), Int32]), Numeric(None));
        assert_eq!(r("log", &[Int32, Int32]), Numeric(None));
        assert_eq!(r("cbrt", &[Int32]), Float64);
        assert_eq!(r("length", &[Varchar(Some(3))]), Int32);
        assert_eq!(r("date_trunc", &[Text, Date]), TimestampTz);
        assert_eq!(r("date_part", &[Unknown, Timestamp]), Float64);
        assert_eq!(r("extract", &[Text, Timestamp]), Numeric(None));
        let e = resolve_scalar("foo", &[Int32]).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("42883", "function foo(integer) does not exist")
        );
        let e = resolve_scalar("length", &[Int32]).unwrap_err();
        assert_eq!(e.message, "function length(integer) does not exist");
        assert_eq!(
            resolve_scalar("round", &[Float64, Int32]).unwrap_err().code,
            "42883"
        );
        assert_eq!(
            resolve_scalar("lower", &[]).unwrap_err().message,
            "function lower() does not exist"
        );
    }

    #[test]
    fn math_matches_postgresql() {
        assert_eq!(call("round", &[Value::Float64(2.5)]), "2");
        assert_eq!(call("round", &[Value::Float64(-0.5)]), "-0");
        assert_eq!(call("round", &[num("2.5")]), "3");
        assert_eq!(call("round", &[num("-2.5")]), "-3");
        assert_eq!(call("round", &[num("1.2345"), Value::Int32(2)]), "1.23");
        assert_eq!(call("round", &[num("1234.5678"), Value::Int32(-2)]), "1200");
        assert_eq!(call("trunc", &[num("1234.5678"), Value::Int32(-2)]), "1200");
        assert_eq!(call("trunc", &[num("-1.99"), Value::Int32(1)]), "-1.9");
        assert_eq!(call("trunc", &[Value::Float64(-2.7)]), "-2");
        assert_eq!(call("ceil", &[num("1.2")]), "2");
        assert_eq!(call("floor", &[num("-1.2")]), "-2");
        assert_eq!(call("ceil", &[Value::Float64(-0.5)]), "-0");
        assert_eq!(call("abs", &[Value::Int32(-5)]), "5");
        assert_eq!(
            eval_scalar("abs", &[Value::Int32(i32::MIN)])
                .unwrap_err()
                .message,
            "integer out of range"
        );
        assert_eq!(call("sign", &[num("-3.2")]), "-1");
        assert_eq!(call("sign", &[num("-0.0")]), "0");
        assert_eq!(call("cbrt", &[Value::Float64(-8.0)]), "-2");
        assert_eq!(
            call("power", &[Value::Float64(2.0), Value::Float64(10.0)]),
            "1024"
        );
        assert_eq!(call("pi", &[]), "3.141592653589793");
        assert_eq!(call("mod", &[Value::Int32(7), Value::Int32(-3)]), "1");
        assert_eq!(call("mod", &[Value::Int32(-7), Value::Int32(3)]), "-1");
        assert_eq!(call("mod", &[num("7.5"), Value::Int32(-2)]), "1.5");
        assert_eq!(call("div", &[Value::Int32(7), Value::Int32(2)]), "3");
        assert_eq!(call("div", &[num("-7.5"), Value::Int32(2)]), "-3");
        assert_eq!(call("exp", &[Value::Int32(0)]), "1");
        assert_eq!(call("ln", &[Value::Int32(1)]), "0");
        assert_eq!(call("log", &[Value::Int32(1000)]), "3");
        assert_eq!(call("log", &[Value::Float64(2.0)]), "0.3010299956639812");
        assert_eq!(call("sqrt", &[Value::Int32(2)]), "1.4142135623730951");
        let e = eval_scalar("sqrt", &[Value::Float64(-1.0)]).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("2201F", "cannot take square root of a negative number")
        );
        let e = eval_scalar("ln", &[num("0")]).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("2201E", "cannot take logarithm of zero")
        );
        assert_eq!(
            eval_scalar("div", &[Value::Int32(1), Value::Int32(0)])
                .unwrap_err()
                .code,
            "22012"
        );
        let r = eval_scalar("random", &[]).unwrap();
        assert!(matches!(r, Value::Float64(f) if (0.0..1.0).contains(&f)));
    }

    #[test]
    fn numeric_transcendentals_match_postgresql() {
        assert_eq!(call("sqrt", &[num("2")]), "1.414213562373095");
        assert_eq!(call("sqrt", &[num("100")]), "10.000000000000000");
        assert_eq!(call("sqrt", &[num("10000000000")]), "100000.00000000000");
        assert_eq!(call("sqrt", &[num("0.0001")]), "0.01000000000000000");
        assert_eq!(call("sqrt", &[num("2.00")]), "1.414213562373095");
        assert_eq!(call("exp", &[num("1")]), "2.7182818284590452");
        assert_eq!(call("exp", &[num("2.5")]), "12.182493960703473");
        assert_eq!(call("ln", &[num("2")]), "0.6931471805599453");
        assert_eq!(call("ln", &[num("10")]), "2.3025850929940457");
        assert_eq!(call("ln", &[num("1000000")]), "13.815510557964274");
        assert_eq!(call("log", &[num("100")]), "2.0000000000000000");
        assert_eq!(call("log", &[num("2")]), "0.3010299956639812");
        assert_eq!(call("log", &[num("1000000")]), "6.000000000000000");
        assert_eq!(
            call("log", &[num("2.0"), num("10.0")]),
            "3.3219280948873623"
        );
        assert_eq!(call("log", &[num("2"), num("8")]), "3.0000000000000000");
        assert_eq!(
            call("power", &[num("2"), Value::Int32(3)]),
            "8.0000000000000000"
        );
        assert_eq!(
            call("power", &[num("2.5"), Value::Int32(2)]),
            "6.2500000000000000"
        );
        assert_eq!(call("power", &[num("2"), num("0.5")]), "1.4142135623730950");
        assert_eq!(
            call("power", &[num("1.5"), Value::Int32(10)]),
            "57.6650390625000000"
        );
        assert_eq!(
            call("power", &[num("2"), Value::Int32(-2)]),
            "0.2500000000000000"
        );
        assert_eq!(
            call("power", &[num("1.01"), Value::Int32(100)]),
            "2.7048138294215261"
        );
        assert_eq!(
            call("power", &[num("123.456"), Value::Int32(2)]),
            "15241.3839360000000000"
        );
    }

    #[test]
    fn strings_match_postgresql() {
        assert_eq!(call("length", &[t("héllo")]), "5");
        assert_eq!(call("octet_length", &[t("héllo")]), "6");
        assert_eq!(
            call("initcap", &[t("hello wORLD foo-bar o'neil 3rd")]),
            "Hello World Foo-Bar O'Neil 3rd"
        );
        assert_eq!(call("substr", &[t("hello"), Value::Int32(2)]), "ello");
        assert_eq!(
            call("substr", &[t("hello"), Value::Int32(0), Value::Int32(3)]),
            "he"
        );
        assert_eq!(
            call("substr", &[t("hello"), Value::Int32(-2), Value::Int32(5)]),
            "he"
        );
        assert_eq!(
            call("substr", &[t("hello"), Value::Int32(2), Value::Int32(100)]),
            "ello"
        );
        assert_eq!(
            call("substr", &[t("héllo"), Value::Int32(2), Value::Int32(2)]),
            "él"
        );
        assert_eq!(
            eval_scalar("substr", &[t("x"), Value::Int32(1), Value::Int32(-1)])
                .unwrap_err()
                .code,
            "22011"
        );
        assert_eq!(call("left", &[t("hello"), Value::Int32(-2)]), "hel");
        assert_eq!(call("right", &[t("hello"), Value::Int32(-2)]), "llo");
        assert_eq!(call("left", &[t("hello"), Value::Int32(2)]), "he");
        assert_eq!(call("right", &[t("hello"), Value::Int32(2)]), "lo");
        assert_eq!(call("lpad", &[t("hi"), Value::Int32(5), t("xy")]), "xyxhi");
        assert_eq!(call("lpad", &[t("hello"), Value::Int32(3)]), "hel");
        assert_eq!(call("rpad", &[t("hi"), Value::Int32(5)]), "hi   ");
        assert_eq!(call("rpad", &[t("hi"), Value::Int32(5), t("")]), "hi");
        assert_eq!(call("ltrim", &[t("  xx  ")]), "xx  ");
        assert_eq!(call("btrim", &[t("xxhixx"), t("x")]), "hi");
        assert_eq!(call("rtrim", &[t("hixyxy"), t("xy")]), "hi");
        assert_eq!(call("replace", &[t("abcabc"), t("b"), t("XY")]), "aXYcaXYc");
        assert_eq!(call("replace", &[t("abc"), t(""), t("x")]), "abc");
        assert_eq!(call("repeat", &[t("ab"), Value::Int32(3)]), "ababab");
        assert_eq!(call("repeat", &[t("ab"), Value::Int32(-1)]), "");
        assert_eq!(call("reverse", &[t("abc")]), "cba");
        assert_eq!(
            call(
                "concat",
                &[
                    t("a"),
                    Value::Null,
                    Value::Int32(1),
                    num("2.50"),
                    Value::Bool(true)
                ]
            ),
            "a12.50t"
        );
        assert_eq!(
            call("concat_ws", &[t(","), t("a"), Value::Null, t("b")]),
            "a,b"
        );
        assert_eq!(
            eval_scalar("concat_ws", &[Value::Null, t("a")]).unwrap(),
            Value::Null
        );
        assert_eq!(
            call("split_part", &[t("a,b,c"), t(","), Value::Int32(2)]),
            "b"
        );
        assert_eq!(
            call("split_part", &[t("a,b,c"), t(","), Value::Int32(-1)]),
            "c"
        );
        assert_eq!(
            call("split_part", &[t("a,b,c"), t(","), Value::Int32(5)]),
            ""
        );
        assert_eq!(call("translate", &[t("12345"), t("143"), t("ax")]), "a2x5");
        assert_eq!(call("ascii", &[t("A")]), "65");
        assert_eq!(call("ascii", &[t("")]), "0");
        assert_eq!(call("chr", &[Value::Int32(233)]), "é");
        assert_eq!(
            eval_scalar("chr", &[Value::Int32(0)]).unwrap_err().code,
            "54000"
        );
        assert_eq!(call("md5", &[t("abc")]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(call("to_hex", &[Value::Int32(255)]), "ff");
        assert_eq!(call("to_hex", &[Value::Int32(-1)]), "ffffffff");
        assert_eq!(call("to_hex", &[Value::Int64(-1)]), "ffffffffffffffff");
        assert_eq!(call("starts_with", &[t("hello"), t("he")]), "t");
        assert_eq!(call("strpos", &[t("hello"), t("ll")]), "3");
        assert_eq!(call("strpos", &[t("héllo"), t("l")]), "3");
        assert_eq!(call("strpos", &[t("hello"), t("")]), "1");
        assert_eq!(eval_scalar("upper", &[Value::Null]).unwrap(), Value::Null);
    }

    #[test]
    fn dates_match_postgresql() {
        let ts = parse_text("2024-02-03 04:05:06.5", &DataType::Timestamp).unwrap();
        assert_eq!(call("extract", &[t("second"), ts.clone()]), "6.500000");
        assert_eq!(call("date_part", &[t("second"), ts.clone()]), "6.5");
        assert_eq!(call("date_part", &[t("epoch"), ts.clone()]), "1706933106.5");
        assert_eq!(
            call("date_trunc", &[t("month"), ts.clone()]),
            "2024-02-01 00:00:00"
        );
        let d = parse_text("2024-05-06", &DataType::Date).unwrap();
        assert_eq!(
            call("date_trunc", &[t("year"), d]),
            "2024-01-01 00:00:00+00"
        );
        assert_eq!(
            call(
                "make_date",
                &[Value::Int32(2024), Value::Int32(2), Value::Int32(29)]
            ),
            "2024-02-29"
        );
        let e = eval_scalar(
            "make_date",
            &[Value::Int32(2023), Value::Int32(2), Value::Int32(29)],
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22008", "date field value out of range: 2023-02-29")
        );
        let a = parse_text("2024-03-01", &DataType::Timestamp).unwrap();
        let b = parse_text("2023-01-15 12:00", &DataType::Timestamp).unwrap();
        assert_eq!(call("age", &[a, b]), "1 year 1 mon 16 days 12:00:00");
        set_statement_clock(Some(StatementClock {
            transaction: 86_400_000_000,
            statement: 86_400_000_001,
        }));
        assert_eq!(call("now", &[]), "1970-01-02 00:00:00+00");
        assert_eq!(
            call("statement_timestamp", &[]),
            "1970-01-02 00:00:00.000001+00"
        );
        assert_eq!(call("current_date", &[]), "1970-01-02");
        set_statement_clock(None);
        assert_eq!(
            call("to_char", &[ts, t("YYYY-MM-DD HH24:MI:SS Mon Dy")]),
            "2024-02-03 04:05:06 Feb Sat"
        );
    }
}
