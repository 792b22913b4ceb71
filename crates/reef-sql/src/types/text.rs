//! PostgreSQL text I/O for values: the input syntax accepted by each type's
//! input function and the output format of its output function.
//!
//! Output uses `DateStyle = ISO, MDY`, `IntervalStyle = postgres`,
//! `bytea_output = hex`, `extra_float_digits = 1` (shortest exact float
//! output, PostgreSQL 12 and later) and the session time zone UTC.

use std::fmt::Write;

use rust_decimal::Decimal;

use super::datetime;
use super::{DataType, Value};
use crate::error::{sqlstate, Result, SqlError};

/// Parses PostgreSQL text input for a type (`t`, `1.5`, `2024-01-02`,
/// `1 day 02:00`, `\x0102`...). `Unknown` parses to text.
pub fn parse_text(input: &str, ty: &DataType) -> Result<Value> {
    Ok(match ty {
        DataType::Bool => Value::Bool(parse_bool(input)?),
        DataType::Int16 => {
            Value::Int16(parse_int(input, "smallint", i16::MIN as i64, i16::MAX as i64)? as i16)
        }
        DataType::Int32 => {
            Value::Int32(parse_int(input, "integer", i32::MIN as i64, i32::MAX as i64)? as i32)
        }
        DataType::Int64 => Value::Int64(parse_int(input, "bigint", i64::MIN, i64::MAX)?),
        DataType::Float32 => Value::Float32(parse_f32(input)?),
        DataType::Float64 => Value::Float64(parse_f64(input)?),
        DataType::Numeric(typmod) => {
            let d = parse_numeric(input)?;
            match typmod {
                Some((p, s)) => Value::Numeric(apply_numeric_typmod(d, *p, *s)?),
                None => Value::Numeric(d),
            }
        }
        DataType::Text | DataType::Varchar(None) | DataType::Unknown => {
            Value::Text(input.to_owned())
        }
        DataType::Varchar(Some(n)) => Value::Text(check_length(input, *n, ty)?.to_owned()),
        DataType::Char(n) => Value::Text(pad_char(check_length(input, *n, ty)?, *n)),
        DataType::Bytea => Value::Bytea(parse_bytea(input)?),
        DataType::Date => Value::Date(datetime::parse_date(input)?),
        DataType::Timestamp => Value::Timestamp(datetime::parse_timestamp(input, false)?),
        DataType::TimestampTz => Value::TimestampTz(datetime::parse_timestamp(input, true)?),
        DataType::Interval => Value::Interval(datetime::parse_interval(input)?),
        DataType::Array(e) => Value::Array(parse_array(input, e)?),
        DataType::Record(_) => {
            return Err(SqlError::unsupported(
                "input of anonymous composite types is not implemented",
            ))
        }
        DataType::Int2Vector => Value::Array(
            input
                .split_whitespace()
                .map(|n| parse_text(n, &DataType::Int16))
                .collect::<Result<_>>()?,
        ),
    })
}

/// Parses a one-dimensional array literal (`{1,2}`, `{"a b",NULL}`) with elements of type `e`.
fn parse_array(input: &str, e: &DataType) -> Result<Vec<Value>> {
    let bad = || {
        SqlError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("malformed array literal: \"{input}\""),
        )
    };
    let inner = input
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next().ok_or_else(bad)? {
                    '"' => break,
                    '\\' => item.push(chars.next().ok_or_else(bad)?),
                    c => item.push(c),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ',' {
                break;
            }
            chars.next();
            if c == '\\' {
                item.push(chars.next().ok_or_else(bad)?);
            } else if !quoted {
                item.push(c);
            }
        }
        let item = if quoted { item } else { item.trim().to_owned() };
        items.push(if !quoted && item.eq_ignore_ascii_case("null") {
            Value::Null
        } else {
            parse_text(&item, e)?
        });
        if chars.next().is_none() {
            return Ok(items);
        }
    }
}

/// Formats a record: `(1,2)`, its fields quoted where needed and NULL ones empty.
pub fn format_record(items: &[Value]) -> String {
    let fields: Vec<String> = items
        .iter()
        .map(|v| {
            if v.is_null() {
                return String::new();
            }
            let t = format_text(v);
            if t.is_empty()
                || t.chars()
                    .any(|c| matches!(c, ',' | '(' | ')' | '"' | '\\') || c.is_whitespace())
            {
                format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\"\""))
            } else {
                t
            }
        })
        .collect();
    format!("({})", fields.join(","))
}

/// Formats an `int2vector`: its numbers separated by spaces.
pub fn format_vector(items: &[Value]) -> String {
    items.iter().map(format_text).collect::<Vec<_>>().join(" ")
}

/// Formats a value in PostgreSQL's text output format. NULL formats as an
/// empty string; callers normally send NULL separately.
pub fn format_text(v: &Value) -> String {
    let mut out = String::new();
    format_text_into(v, &mut out);
    out
}

/// Appends a value in PostgreSQL's text output format to `out`.
pub fn format_text_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Int16(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float32(f) => format_f32_into(*f, out),
        Value::Float64(f) => format_f64_into(*f, out),
        Value::Numeric(d) => format_numeric_into(d, out),
        Value::Text(s) => out.push_str(s),
        Value::Bytea(b) => {
            out.reserve(2 + b.len() * 2);
            out.push_str("\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Value::Date(d) => datetime::format_date_into(*d, out),
        Value::Timestamp(t) => datetime::format_timestamp_into(*t, out),
        Value::TimestampTz(t) => datetime::format_timestamptz_into(*t, out),
        Value::Interval(iv) => datetime::format_interval_into(iv, out),
        Value::Array(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if item.is_null() {
                    out.push_str("NULL");
                    continue;
                }
                let text = format_text(item);
                let plain = !text.is_empty()
                    && !text.eq_ignore_ascii_case("null")
                    && !text
                        .chars()
                        .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
                if plain {
                    out.push_str(&text);
                } else {
                    out.push('"');
                    for c in text.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
            out.push('}');
        }
    }
}

/// Parses a boolean: `t`, `true`, `yes`, `on`, `1` and their false
/// counterparts, case-insensitively, with unambiguous prefixes allowed.
pub fn parse_bool(input: &str) -> Result<bool> {
    let s = input.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || s == "1" {
        Ok(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0" {
        Ok(false)
    } else {
        Err(SqlError::invalid_text("boolean", input))
    }
}

/// Parses an integer with optional surrounding whitespace and sign, checking
/// it against `[min, max]`.
pub fn parse_int(input: &str, type_name: &str, min: i64, max: i64) -> Result<i64> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SqlError::invalid_text(type_name, input));
    }
    let out_of_range = || {
        SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{input}\" is out of range for type {type_name}"),
        )
    };
    let mut v: i64 = 0;
    for b in digits.bytes() {
        let d = (b - b'0') as i64;
        // Accumulate negatively so that i64::MIN parses.
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_sub(d))
            .ok_or_else(out_of_range)?;
    }
    let v = if neg {
        v
    } else {
        v.checked_neg().ok_or_else(out_of_range)?
    };
    if v < min || v > max {
        return Err(out_of_range());
    }
    Ok(v)
}

/// Recognises PostgreSQL's special float spellings.
fn special_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Checks the shape of a decimal float literal (Rust's parser is more lenient
/// about some spellings than PostgreSQL's) and reports whether its mantissa has
/// a nonzero digit.
fn float_syntax(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits = 0;
    let mut nonzero = false;
    while i < b.len() && b[i].is_ascii_digit() {
        nonzero |= b[i] != b'0';
        digits += 1;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            nonzero |= b[i] != b'0';
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    (i == b.len()).then_some(nonzero)
}

/// Parses a `double precision`.
pub fn parse_f64(input: &str) -> Result<f64> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(v) = special_float(s) {
        return Ok(v);
    }
    let nonzero =
        float_syntax(s).ok_or_else(|| SqlError::invalid_text("double precision", input))?;
    let v: f64 = s
        .parse()
        .map_err(|_| SqlError::invalid_text("double precision", input))?;
    if v.is_infinite() || (v == 0.0 && nonzero) {
        return Err(SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type double precision"),
        ));
    }
    Ok(v)
}

/// Parses a `real`.
pub fn parse_f32(input: &str) -> Result<f32> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(v) = special_float(s) {
        return Ok(v as f32);
    }
    let nonzero = float_syntax(s).ok_or_else(|| SqlError::invalid_text("real", input))?;
    let v: f32 = s
        .parse()
        .map_err(|_| SqlError::invalid_text("real", input))?;
    if v.is_infinite() || (v == 0.0 && nonzero) {
        return Err(SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type real"),
        ));
    }
    Ok(v)
}

/// The largest mantissa a `Decimal` holds (2^96 - 1).
const MAX_MANTISSA: u128 = (1u128 << 96) - 1;
/// The largest scale a `Decimal` holds.
pub const MAX_NUMERIC_SCALE: u32 = 28;

/// The error for a numeric value beyond `Decimal`'s range.
pub fn numeric_overflow() -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

/// Builds a decimal from significant digits and a scale, rounding away
/// excess fractional digits (half away from zero) to fit `Decimal`'s 96-bit
/// mantissa and maximum scale of 28.
fn decimal_from_digits(neg: bool, digits: &[u8], scale: i64) -> Result<Decimal> {
    // Drop leading zeros.
    let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
    let mut digits = &digits[first..];
    let mut scale = scale;
    if digits.is_empty() {
        let s = scale.clamp(0, MAX_NUMERIC_SCALE as i64) as u32;
        return Ok(Decimal::new(0, s));
    }
    let mut zeros_to_append = 0usize;
    if scale < 0 {
        zeros_to_append = (-scale) as usize;
        scale = 0;
    }
    if digits.len() + zeros_to_append > 40 {
        return Err(numeric_overflow());
    }
    // Drop fractional digits beyond the maximum scale or the mantissa's range.
    let mut round_up = false;
    loop {
        let value: Option<u128> = digits
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, zeros_to_append))
            .try_fold(0u128, |acc, d| acc.checked_mul(10)?.checked_add(d as u128));
        let fits = value.is_some_and(|v| v + round_up as u128 <= MAX_MANTISSA);
        if fits && scale <= MAX_NUMERIC_SCALE as i64 {
            let m = value.unwrap_or(0) + round_up as u128;
            let m = if neg { -(m as i128) } else { m as i128 };
            return Decimal::try_from_i128_with_scale(m, scale as u32)
                .map_err(|_| numeric_overflow());
        }
        if scale == 0 || digits.is_empty() {
            return Err(numeric_overflow());
        }
        round_up = digits[digits.len() - 1] >= 5;
        digits = &digits[..digits.len() - 1];
        scale -= 1;
    }
}

/// Parses a `numeric`: optional sign, digits with an optional point, and an
/// optional exponent (`1.5e3` is 1500). `NaN` and infinities are not
/// supported by reefdb's numeric and raise 0A000.
pub fn parse_numeric(input: &str) -> Result<Decimal> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if special_float(s).is_some() {
        return Err(SqlError::unsupported(format!(
            "numeric value \"{}\" is not supported",
            s
        )));
    }
    let bad = || SqlError::invalid_text("numeric", input);
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut digits: Vec<u8> = Vec::with_capacity(b.len());
    let mut frac_digits: i64 = 0;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                digits.push(c - b'0');
                if seen_point {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits.is_empty() {
        return Err(bad());
    }
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let exp_neg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        if exp > 1000 {
            return Err(SqlError::invalid_text("numeric", input));
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(bad());
    }
    decimal_from_digits(neg, &digits, frac_digits - exp)
}

/// Rounds a numeric to `numeric(p, s)`: rounds half away from zero to scale
/// `s` and fails with "numeric field overflow" (22003) if the result needs
/// more than `p - s` integer digits.
pub fn apply_numeric_typmod(d: Decimal, precision: u32, scale: u32) -> Result<Decimal> {
    let scale = scale.min(MAX_NUMERIC_SCALE);
    let mut r =
        d.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let max_digits = precision.saturating_sub(scale);
    let int_part = r.abs().trunc();
    let limit_exceeded = if max_digits >= 29 {
        false
    } else {
        let limit = Decimal::from_i128_with_scale(10i128.pow(max_digits), 0);
        int_part >= limit
    };
    if limit_exceeded {
        let bound = if max_digits == 0 {
            "1".to_string()
        } else {
            format!("10^{max_digits}")
        };
        return Err(SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow").with_detail(
            format!(
                "A field with precision {precision}, scale {scale} must round to an absolute value less than {bound}."
            ),
        ));
    }
    if r.scale() < scale {
        r.rescale(scale);
    }
    if r.is_zero() && r.is_sign_negative() {
        r.set_sign_positive(true);
    }
    Ok(r)
}

/// Checks a string against a length limit for `varchar(n)` / `char(n)`
/// input: an overlong value is an error unless the excess is all spaces,
/// which are dropped.
fn check_length<'a>(input: &'a str, n: u32, ty: &DataType) -> Result<&'a str> {
    match input.char_indices().nth(n as usize) {
        None => Ok(input),
        Some((cut, _)) => {
            if input[cut..].bytes().all(|b| b == b' ') {
                Ok(&input[..cut])
            } else {
                Err(SqlError::new(
                    sqlstate::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type {}", ty.pg_name()),
                ))
            }
        }
    }
}

/// Pads a string with spaces to `n` characters (`char(n)` semantics).
pub fn pad_char(s: &str, n: u32) -> String {
    let len = s.chars().count();
    let mut out = String::with_capacity(s.len() + (n as usize).saturating_sub(len));
    out.push_str(s);
    for _ in len..n as usize {
        out.push(' ');
    }
    out
}

/// Parses `bytea` input in hex (`\x0102`) or escape (`ab\000\\`) format.
pub fn parse_bytea(input: &str) -> Result<Vec<u8>> {
    let b = input.as_bytes();
    if b.len() >= 2 && b[0] == b'\\' && (b[1] == b'x' || b[1] == b'X') {
        let mut out = Vec::with_capacity((b.len() - 2) / 2);
        let mut i = 2;
        let hex = |c: u8| -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        };
        let bad_digit = |at: usize| {
            let mut at = at;
            while !input.is_char_boundary(at) {
                at -= 1;
            }
            let ch = input[at..].chars().next().unwrap_or('?');
            SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid hexadecimal digit: \"{ch}\""),
            )
        };
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let hi = hex(b[i]).ok_or_else(|| bad_digit(i))?;
            let Some(&lo) = b.get(i + 1) else {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    "invalid hexadecimal data: odd number of digits",
                ));
            };
            let lo = hex(lo).ok_or_else(|| bad_digit(i + 1))?;
            out.push(hi << 4 | lo);
            i += 2;
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && (b'0'..=b'7').contains(&b[i + 2])
            && (b'0'..=b'7').contains(&b[i + 3])
        {
            out.push((b[i + 1] - b'0') << 6 | (b[i + 2] - b'0') << 3 | (b[i + 3] - b'0'));
            i += 4;
        } else {
            return Err(SqlError::invalid_text("bytea", input));
        }
    }
    Ok(out)
}

/// Appends a `numeric` with its scale kept (`1.50`); never prints `-0`.
pub fn format_numeric_into(d: &Decimal, out: &mut String) {
    if d.is_zero() && d.is_sign_negative() {
        let mut z = *d;
        z.set_sign_positive(true);
        let _ = write!(out, "{z}");
    } else {
        let _ = write!(out, "{d}");
    }
}

/// Lays out shortest round-trip digits the way PostgreSQL's `float8out`
/// does: fixed notation for decimal exponents in `[-4, max_fixed)`,
/// otherwise `d.ddde+XX`.
fn format_shortest(sci: &str, max_fixed: i32, out: &mut String) {
    // `sci` is Rust's `{:e}` output: "-1.2345e17", "1e-5", "0e0".
    let (neg, body) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exp) = body.split_once('e').unwrap_or((body, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push('-');
    }
    if (-4..max_fixed).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Appends a `double precision` in PostgreSQL's shortest exact format
/// (`1.5`, `1e+20`, `Infinity`, `NaN`, `-0`).
pub fn format_f64_into(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        format_shortest(&format!("{f:e}"), 15, out);
    }
}

/// Appends a `real` in PostgreSQL's shortest exact format.
pub fn format_f32_into(f: f32, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        format_shortest(&format!("{f:e}"), 6, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ty: DataType, input: &str) -> String {
        format_text(&parse_text(input, &ty).unwrap())
    }

    fn err(ty: DataType, input: &str) -> SqlError {
        parse_text(input, &ty).unwrap_err()
    }

    #[test]
    fn booleans() {
        for s in ["t", "TRUE", "yes", "on", "1", " y ", "tr"] {
            assert_eq!(
                parse_text(s, &DataType::Bool).unwrap(),
                Value::Bool(true),
                "{s}"
            );
        }
        for s in ["f", "false", "NO", "off", "0", "of"] {
            assert_eq!(
                parse_text(s, &DataType::Bool).unwrap(),
                Value::Bool(false),
                "{s}"
            );
        }
        let e = err(DataType::Bool, "o");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22P02", "invalid input syntax for type boolean: \"o\"")
        );
        assert_eq!(format_text(&Value::Bool(true)), "t");
    }

    #[test]
    fn integers() {
        assert_eq!(
            parse_text("  42  ", &DataType::Int32).unwrap(),
            Value::Int32(42)
        );
        assert_eq!(
            parse_text("-32768", &DataType::Int16).unwrap(),
            Value::Int16(-32768)
        );
        assert_eq!(
            parse_text("-9223372036854775808", &DataType::Int64).unwrap(),
            Value::Int64(i64::MIN)
        );
        let e = err(DataType::Int32, "abc");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22P02", "invalid input syntax for type integer: \"abc\"")
        );
        let e = err(DataType::Int16, "32768");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "value \"32768\" is out of range for type smallint")
        );
        assert_eq!(err(DataType::Int64, "1.5").code, "22P02");
        assert_eq!(err(DataType::Int32, "").code, "22P02");
    }

    #[test]
    fn floats_use_shortest_output() {
        let cases = [
            ("1e15", "1e+15"),
            ("1e14", "100000000000000"),
            ("123456789012345678", "1.2345678901234568e+17"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5", "1.5"),
            ("-0", "-0"),
            ("1e20", "1e+20"),
            ("  Infinity ", "Infinity"),
            ("-inf", "-Infinity"),
            ("nan", "NaN"),
            ("1.5e300", "1.5e+300"),
            ("0.1", "0.1"),
        ];
        for (input, want) in cases {
            assert_eq!(fmt(DataType::Float64, input), want, "{input}");
        }
        let f = Value::Float64(1.0 / 3.0);
        assert_eq!(format_text(&f), "0.3333333333333333");
        assert_eq!(fmt(DataType::Float32, "1e6"), "1e+06");
        assert_eq!(fmt(DataType::Float32, "100000"), "100000");
        assert_eq!(fmt(DataType::Float32, "1.1"), "1.1");
        assert_eq!(fmt(DataType::Float32, "3.4e38"), "3.4e+38");
        let e = err(DataType::Float64, "1e400");
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "22003",
                "\"1e400\" is out of range for type double precision"
            )
        );
        assert_eq!(err(DataType::Float64, "1e-400").code, "22003");
        assert_eq!(err(DataType::Float32, "1e40").code, "22003");
        assert_eq!(err(DataType::Float64, "x1").code, "22P02");
    }

    #[test]
    fn numerics_keep_scale() {
        let n = DataType::Numeric(None);
        assert_eq!(fmt(n, "1.50"), "1.50");
        assert_eq!(fmt(n, "1.5e3"), "1500");
        assert_eq!(fmt(n, "1e-3"), "0.001");
        assert_eq!(fmt(n, " -.5 "), "-0.5");
        assert_eq!(fmt(n, "5."), "5");
        assert_eq!(fmt(n, "-0.00"), "0.00");
        assert_eq!(fmt(DataType::Numeric(Some((5, 2))), "1.005"), "1.01");
        assert_eq!(fmt(DataType::Numeric(Some((5, 2))), "-1.005"), "-1.01");
        assert_eq!(fmt(DataType::Numeric(Some((5, 2))), "3"), "3.00");
        let e = err(DataType::Numeric(Some((5, 2))), "1000");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "numeric field overflow")
        );
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "A field with precision 5, scale 2 must round to an absolute value less than 10^3."
            )
        );
        let e = err(DataType::Numeric(Some((2, 2))), "1");
        assert_eq!(
            e.detail.as_deref(),
            Some("A field with precision 2, scale 2 must round to an absolute value less than 1.")
        );
        assert_eq!(err(n, "NaN").code, "0A000");
        assert_eq!(err(n, "1.2.3").code, "22P02");
        assert_eq!(err(n, "1e").code, "22P02");
        assert_eq!(err(n, "1e40").code, "22003");
    }

    #[test]
    fn strings() {
        assert_eq!(fmt(DataType::Varchar(Some(3)), "ab "), "ab ");
        assert_eq!(fmt(DataType::Varchar(Some(3)), "abc   "), "abc");
        let e = err(DataType::Varchar(Some(3)), "abcd");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22001", "value too long for type character varying(3)")
        );
        assert_eq!(fmt(DataType::Char(4), "ab"), "ab  ");
        assert_eq!(
            fmt(DataType::Char(2), "héllo".get(..2).unwrap_or("h")),
            "h "
        );
        assert_eq!(
            err(DataType::Char(2), "abc").message,
            "value too long for type character(2)"
        );
        assert_eq!(fmt(DataType::Varchar(Some(2)), "éé"), "éé");
    }

    #[test]
    fn bytea() {
        assert_eq!(
            parse_text("\\x0102ff", &DataType::Bytea).unwrap(),
            Value::Bytea(vec![1, 2, 255])
        );
        assert_eq!(
            parse_text("\\x01 02", &DataType::Bytea).unwrap(),
            Value::Bytea(vec![1, 2])
        );
        assert_eq!(
            parse_text("ab\\000\\\\", &DataType::Bytea).unwrap(),
            Value::Bytea(vec![b'a', b'b', 0, b'\\'])
        );
        assert_eq!(format_text(&Value::Bytea(vec![1, 2])), "\\x0102");
        assert_eq!(format_text(&Value::Bytea(vec![])), "\\x");
        let e = err(DataType::Bytea, "\\x0");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22023", "invalid hexadecimal data: odd number of digits")
        );
        assert_eq!(
            err(DataType::Bytea, "\\xzz").message,
            "invalid hexadecimal digit: \"z\""
        );
        assert_eq!(err(DataType::Bytea, "a\\b").code, "22P02");
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(fmt(DataType::Date, "2024-01-02"), "2024-01-02");
        assert_eq!(
            fmt(DataType::Timestamp, "2024-01-02 03:04:05.120"),
            "2024-01-02 03:04:05.12"
        );
        assert_eq!(
            fmt(DataType::TimestampTz, "2024-01-02 03:04:05"),
            "2024-01-02 03:04:05+00"
        );
        assert_eq!(
            fmt(DataType::Interval, "1 year 2 mons 3 days 04:05:06"),
            "1 year 2 mons 3 days 04:05:06"
        );
        assert_eq!(
            fmt(DataType::Timestamp, "2024-01-02 03:04:05+05"),
            "2024-01-02 03:04:05"
        );
        assert_eq!(err(DataType::Date, "2024-02-30").code, "22008");
        assert_eq!(err(DataType::Timestamp, "infinity").code, "0A000");
    }
}
