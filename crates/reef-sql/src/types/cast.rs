//! Casts between types: explicit `CAST`, assignment casts for INSERT and
//! UPDATE, the implicit-cast rules and common-type resolution.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::datetime;
use super::ops::{float_overflow, float_underflow, type_display};
use super::text::{self, apply_numeric_typmod, pad_char};
use super::{DataType, Value};
use crate::error::{sqlstate, Result, SqlError};

/// SQLSTATE for a cast that does not exist.
pub const CANNOT_COERCE: &str = "42846";

fn cannot_cast(from: &DataType, to: &DataType) -> SqlError {
    SqlError::new(
        CANNOT_COERCE,
        format!(
            "cannot cast type {} to {}",
            type_display(from),
            to.pg_name()
        ),
    )
}

/// Explicit `CAST(v AS to)`: numeric rounding to the type modifier, integer
/// range checks, floats rounded half to even into integers, text I/O
/// conversion to and from every type, `varchar(n)` truncation and `char(n)`
/// padding. NULL casts to NULL.
pub fn cast(v: Value, to: &DataType) -> Result<Value> {
    convert(v, to, true)
}

/// Like [`cast`], but first treats a `char(n)` source as PostgreSQL does:
/// its trailing spaces are insignificant and dropped when converting to
/// another string type.
pub fn cast_from(v: Value, from: &DataType, to: &DataType) -> Result<Value> {
    match (from, v) {
        (DataType::Char(_), Value::Text(s))
            if matches!(to, DataType::Text | DataType::Varchar(_)) =>
        {
            let trimmed = s.trim_end_matches(' ');
            let s = if trimmed.len() == s.len() {
                s
            } else {
                trimmed.to_owned()
            };
            convert(Value::Text(s), to, true)
        }
        (_, v) => convert(v, to, true),
    }
}

/// True if a value of type `from` may be stored in a column of type `to` (PostgreSQL's
/// assignment casts: within the numeric, string and date/time families, and anything to a string).
pub fn assignment_allowed(from: &DataType, to: &DataType) -> bool {
    let datetime = |t: &DataType| {
        matches!(
            t,
            DataType::Date | DataType::Timestamp | DataType::TimestampTz
        )
    };
    *from == DataType::Unknown
        || implicit_cast_allowed(from, to)
        || (from.is_numeric() && to.is_numeric())
        || to.is_string()
        || (datetime(from) && datetime(to))
}

/// The assignment cast of INSERT and UPDATE: like [`cast`], except that a
/// string too long for `varchar(n)` or `char(n)` is an error (22001) unless
/// the excess is all spaces, instead of being truncated.
pub fn assignment_cast(v: Value, to: &DataType) -> Result<Value> {
    convert(v, to, false)
}

/// Truncates (explicit) or checks (assignment) a string against a length.
fn fit_length(s: String, n: u32, to: &DataType, explicit: bool) -> Result<String> {
    match s.char_indices().nth(n as usize) {
        None => Ok(s),
        Some((cut, _)) => {
            if explicit || s[cut..].bytes().all(|b| b == b' ') {
                let mut s = s;
                s.truncate(cut);
                Ok(s)
            } else {
                Err(SqlError::new(
                    sqlstate::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type {}", to.pg_name()),
                ))
            }
        }
    }
}

/// Rounds a double to an integer half to even and checks its range.
fn float_to_int(f: f64, name: &str, min: i64, max: i64) -> Result<i64> {
    let r = f.round_ties_even();
    // `max + 1` is a power of two, exact as a double, so the bound is strict.
    if r.is_nan() || r < min as f64 || r >= (max as f64) + 1.0 {
        return Err(SqlError::out_of_range(name));
    }
    Ok(r as i64)
}

fn decimal_to_int(d: &Decimal, name: &str, min: i64, max: i64) -> Result<i64> {
    let r = d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    match r.to_i64() {
        Some(i) if i >= min && i <= max => Ok(i),
        _ => Err(SqlError::out_of_range(name)),
    }
}

fn to_int(v: &Value, to: &DataType, name: &str, min: i64, max: i64) -> Result<i64> {
    let i = match v {
        Value::Int16(i) => *i as i64,
        Value::Int32(i) => *i as i64,
        Value::Int64(i) => *i,
        Value::Bool(b) => *b as i64,
        Value::Float32(f) => return float_to_int(*f as f64, name, min, max),
        Value::Float64(f) => return float_to_int(*f, name, min, max),
        Value::Numeric(d) => return decimal_to_int(d, name, min, max),
        Value::Text(s) => return text::parse_int(s, name, min, max),
        other => return Err(cannot_cast(&other.data_type(), to)),
    };
    if i < min || i > max {
        return Err(SqlError::out_of_range(name));
    }
    Ok(i)
}

/// Converts a double to numeric via its 15-significant-digit text form, as
/// PostgreSQL's `float8_numeric` does (`0.1::float8::numeric` is 0.1).
fn float_to_decimal(f: f64, digits: usize) -> Result<Decimal> {
    if f.is_nan() {
        return Err(SqlError::unsupported("cannot convert NaN to numeric"));
    }
    if f.is_infinite() {
        return Err(SqlError::unsupported("cannot convert infinity to numeric"));
    }
    let s = format!("{:.*e}", digits - 1, f);
    // Trim trailing zeros of the mantissa so that the scale is the shortest,
    // as %g prints it.
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    text::parse_numeric(&format!("{mantissa}e{exp}"))
}

fn convert(v: Value, to: &DataType, explicit: bool) -> Result<Value> {
    use DataType as T;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let from = v.data_type();
    Ok(match to {
        T::Unknown => v,
        T::Bool => match v {
            Value::Bool(b) => Value::Bool(b),
            Value::Int16(i) => Value::Bool(i != 0),
            Value::Int32(i) => Value::Bool(i != 0),
            Value::Int64(i) => Value::Bool(i != 0),
            Value::Text(s) => Value::Bool(text::parse_bool(&s)?),
            _ => return Err(cannot_cast(&from, to)),
        },
        T::Int16 => {
            Value::Int16(to_int(&v, to, "smallint", i16::MIN as i64, i16::MAX as i64)? as i16)
        }
        T::Int32 => {
            Value::Int32(to_int(&v, to, "integer", i32::MIN as i64, i32::MAX as i64)? as i32)
        }
        T::Int64 => Value::Int64(to_int(&v, to, "bigint", i64::MIN, i64::MAX)?),
        T::Float64 => Value::Float64(match v {
            Value::Int16(i) => i as f64,
            Value::Int32(i) => i as f64,
            Value::Int64(i) => i as f64,
            Value::Float32(f) => f as f64,
            Value::Float64(f) => f,
            Value::Numeric(d) => super::ops::decimal_to_f64(&d),
            Value::Text(s) => text::parse_f64(&s)?,
            _ => return Err(cannot_cast(&from, to)),
        }),
        T::Float32 => Value::Float32(match v {
            Value::Int16(i) => i as f32,
            Value::Int32(i) => i as f32,
            Value::Int64(i) => i as f32,
            Value::Float32(f) => f,
            Value::Float64(f) => {
                let r = f as f32;
                if r.is_infinite() && f.is_finite() {
                    return Err(float_overflow());
                }
                if r == 0.0 && f != 0.0 {
                    return Err(float_underflow());
                }
                r
            }
            Value::Numeric(d) => {
                let f = super::ops::decimal_to_f64(&d) as f32;
                if f.is_infinite() {
                    return Err(float_overflow());
                }
                f
            }
            Value::Text(s) => text::parse_f32(&s)?,
            _ => return Err(cannot_cast(&from, to)),
        }),
        T::Numeric(typmod) => {
            let d = match v {
                Value::Int16(i) => Decimal::from(i),
                Value::Int32(i) => Decimal::from(i),
                Value::Int64(i) => Decimal::from(i),
                Value::Numeric(d) => d,
                Value::Float32(f) => float_to_decimal(f as f64, 6)?,
                Value::Float64(f) => float_to_decimal(f, 15)?,
                Value::Text(s) => text::parse_numeric(&s)?,
                _ => return Err(cannot_cast(&from, to)),
            };
            Value::Numeric(match typmod {
                Some((p, s)) => apply_numeric_typmod(d, *p, *s)?,
                None => d,
            })
        }
        T::Text | T::Varchar(_) | T::Char(_) => {
            let s = match v {
                Value::Text(s) => s,
                Value::Bool(b) => (if b { "true" } else { "false" }).to_owned(),
                other => text::format_text(&other),
            };
            match to {
                T::Varchar(Some(n)) => Value::Text(fit_length(s, *n, to, explicit)?),
                T::Char(n) => {
                    let s = fit_length(s, *n, to, explicit)?;
                    if s.chars().count() >= *n as usize {
                        Value::Text(s)
                    } else {
                        Value::Text(pad_char(&s, *n))
                    }
                }
                _ => Value::Text(s),
            }
        }
        T::Bytea => match v {
            Value::Bytea(b) => Value::Bytea(b),
            Value::Text(s) => Value::Bytea(text::parse_bytea(&s)?),
            _ => return Err(cannot_cast(&from, to)),
        },
        T::Date => match v {
            Value::Date(d) => Value::Date(d),
            Value::Timestamp(t) | Value::TimestampTz(t) => {
                Value::Date(datetime::timestamp_to_date(t)?)
            }
            Value::Text(s) => Value::Date(datetime::parse_date(&s)?),
            _ => return Err(cannot_cast(&from, to)),
        },
        T::Timestamp | T::TimestampTz => {
            let ts = match v {
                Value::Date(d) => datetime::check_timestamp(datetime::date_to_timestamp(d))?,
                Value::Timestamp(t) | Value::TimestampTz(t) => t,
                Value::Text(s) => datetime::parse_timestamp(&s, *to == T::TimestampTz)?,
                _ => return Err(cannot_cast(&from, to)),
            };
            if *to == T::Timestamp {
                Value::Timestamp(ts)
            } else {
                Value::TimestampTz(ts)
            }
        }
        T::Interval => match v {
            Value::Interval(iv) => Value::Interval(iv),
            Value::Text(s) => Value::Interval(datetime::parse_interval(&s)?),
            _ => return Err(cannot_cast(&from, to)),
        },
        T::Record(_) => match v {
            Value::Array(items) => Value::Array(items),
            _ => return Err(cannot_cast(&from, to)),
        },
        T::Array(_) | T::Int2Vector => {
            let e = to.element().unwrap_or(T::Text);
            match v {
                Value::Array(items) => Value::Array(
                    items
                        .into_iter()
                        .map(|i| convert(i, &e, explicit))
                        .collect::<Result<_>>()?,
                ),
                Value::Text(s) => text::parse_text(&s, to)?,
                _ => return Err(cannot_cast(&from, to)),
            }
        }
    })
}

/// The position of a numeric-category type in PostgreSQL's implicit
/// promotion chain `int2 -> int4 -> int8 -> numeric -> float4 -> float8`.
fn numeric_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int16 => 1,
        DataType::Int32 => 2,
        DataType::Int64 => 3,
        DataType::Numeric(_) => 4,
        DataType::Float32 => 5,
        DataType::Float64 => 6,
        _ => return None,
    })
}

fn datetime_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Date => 1,
        DataType::Timestamp => 2,
        DataType::TimestampTz => 3,
        _ => return None,
    })
}

/// True if PostgreSQL converts `from` to `to` implicitly: along the
/// numeric chain `int2 -> int4 -> int8 -> numeric -> float4 -> float8`,
/// between the string types, `date -> timestamp -> timestamptz`, and from
/// `unknown` (an untyped literal) to anything.
pub fn implicit_cast_allowed(from: &DataType, to: &DataType) -> bool {
    if from == to || from.base() == to.base() || *from == DataType::Unknown {
        return true;
    }
    if let (Some(a), Some(b)) = (from.element(), to.element()) {
        return implicit_cast_allowed(&a, &b);
    }
    if let (Some(a), Some(b)) = (numeric_rank(from), numeric_rank(to)) {
        return a <= b;
    }
    if from.is_string() && to.is_string() {
        return true;
    }
    if let (Some(a), Some(b)) = (datetime_rank(from), datetime_rank(to)) {
        return a <= b;
    }
    false
}

/// The type two values are converted to when they meet in UNION, CASE, IN,
/// or a comparison: the later type of the numeric chain, `text` for mixed
/// string types, the later of date/timestamp/timestamptz, the other type for
/// `unknown`. None if the types do not mix.
pub fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(if *a == Unknown { Text } else { *a });
    }
    match (a, b) {
        (Unknown, t) | (t, Unknown) => return Some(*t),
        _ => {}
    }
    if a.base() == b.base() {
        return Some(a.base());
    }
    if let (Some(x), Some(y)) = (a.element(), b.element()) {
        return common_type(&x, &y).map(DataType::array_of);
    }
    if let (Some(x), Some(y)) = (numeric_rank(a), numeric_rank(b)) {
        let t = if x >= y { a } else { b };
        return Some(t.base());
    }
    if a.is_string() && b.is_string() {
        return Some(Text);
    }
    if let (Some(x), Some(y)) = (datetime_rank(a), datetime_rank(b)) {
        return Some(if x >= y { *a } else { *b });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::text::{format_text, parse_text};

    fn c(v: Value, to: DataType) -> String {
        format_text(&cast(v, &to).unwrap())
    }

    fn num(s: &str) -> Value {
        parse_text(s, &DataType::Numeric(None)).unwrap()
    }

    #[test]
    fn numeric_casts_round_and_check() {
        assert_eq!(c(num("123.456"), DataType::Numeric(Some((5, 2)))), "123.46");
        assert_eq!(c(Value::Int32(5), DataType::Numeric(Some((5, 2)))), "5.00");
        let e = cast(num("1234.5"), &DataType::Numeric(Some((5, 2)))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "numeric field overflow")
        );
        assert_eq!(c(num("2.5"), DataType::Int32), "3");
        assert_eq!(c(num("-2.5"), DataType::Int32), "-3");
        assert_eq!(c(Value::Float64(2.5), DataType::Int32), "2");
        assert_eq!(c(Value::Float64(3.5), DataType::Int32), "4");
        assert_eq!(c(Value::Float64(-0.5), DataType::Int64), "0");
        assert_eq!(c(Value::Float64(0.1), DataType::Numeric(None)), "0.1");
        assert_eq!(
            c(Value::Float64(1.0 / 3.0), DataType::Numeric(None)),
            "0.333333333333333"
        );
        assert_eq!(
            c(Value::Float64(1e20), DataType::Numeric(None)),
            "100000000000000000000"
        );
        assert_eq!(c(Value::Float32(1.1), DataType::Numeric(None)), "1.1");
        let e = cast(Value::Int32(40000), &DataType::Int16).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "smallint out of range")
        );
        assert_eq!(
            cast(Value::Float64(3e9), &DataType::Int32)
                .unwrap_err()
                .message,
            "integer out of range"
        );
        assert_eq!(
            cast(Value::Float64(9.3e18), &DataType::Int64)
                .unwrap_err()
                .message,
            "bigint out of range"
        );
        assert_eq!(
            cast(Value::Float64(f64::NAN), &DataType::Int32)
                .unwrap_err()
                .code,
            "22003"
        );
        assert_eq!(
            cast(Value::Float64(f64::NAN), &DataType::Numeric(None))
                .unwrap_err()
                .code,
            "0A000"
        );
        assert_eq!(
            cast(Value::Float64(1e300), &DataType::Float32)
                .unwrap_err()
                .message,
            "value out of range: overflow"
        );
    }

    #[test]
    fn string_casts() {
        assert_eq!(
            c(Value::Text("abcdef".into()), DataType::Varchar(Some(3))),
            "abc"
        );
        assert_eq!(c(Value::Text("ab".into()), DataType::Char(4)), "ab  ");
        assert_eq!(c(Value::Text("abcdef".into()), DataType::Char(2)), "ab");
        let e =
            assignment_cast(Value::Text("abcd".into()), &DataType::Varchar(Some(3))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22001", "value too long for type character varying(3)")
        );
        assert_eq!(
            assignment_cast(Value::Text("abc  ".into()), &DataType::Varchar(Some(3))).unwrap(),
            Value::Text("abc".into())
        );
        assert_eq!(c(Value::Bool(true), DataType::Text), "true");
        assert_eq!(c(Value::Int32(42), DataType::Text), "42");
        assert_eq!(c(Value::Text(" 42 ".into()), DataType::Int32), "42");
        assert_eq!(
            cast(Value::Text("abc".into()), &DataType::Int32)
                .unwrap_err()
                .code,
            "22P02"
        );
        assert_eq!(
            cast_from(
                Value::Text("ab  ".into()),
                &DataType::Char(4),
                &DataType::Text
            )
            .unwrap(),
            Value::Text("ab".into())
        );
        assert_eq!(
            c(Value::Text("2024-01-02".into()), DataType::Date),
            "2024-01-02"
        );
        assert_eq!(c(Value::Text("\\x01".into()), DataType::Bytea), "\\x01");
    }

    #[test]
    fn other_casts() {
        assert_eq!(c(Value::Int32(0), DataType::Bool), "f");
        assert_eq!(c(Value::Bool(true), DataType::Int32), "1");
        let ts = parse_text("2024-01-02 03:04:05", &DataType::Timestamp).unwrap();
        assert_eq!(c(ts.clone(), DataType::Date), "2024-01-02");
        assert_eq!(c(ts, DataType::TimestampTz), "2024-01-02 03:04:05+00");
        assert_eq!(
            c(Value::Date(0), DataType::Timestamp),
            "1970-01-01 00:00:00"
        );
        let e = cast(Value::Int32(1), &DataType::Date).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("42846", "cannot cast type integer to date")
        );
        assert_eq!(cast(Value::Null, &DataType::Int32).unwrap(), Value::Null);
    }

    #[test]
    fn implicit_and_common_types() {
        use DataType::*;
        assert!(implicit_cast_allowed(&Int16, &Int64));
        assert!(implicit_cast_allowed(&Int64, &Numeric(None)));
        assert!(implicit_cast_allowed(&Numeric(None), &Float64));
        assert!(!implicit_cast_allowed(&Float64, &Numeric(None)));
        assert!(!implicit_cast_allowed(&Int64, &Int32));
        assert!(implicit_cast_allowed(&Varchar(Some(3)), &Text));
        assert!(implicit_cast_allowed(&Unknown, &Date));
        assert!(implicit_cast_allowed(&Date, &TimestampTz));
        assert!(!implicit_cast_allowed(&Timestamp, &Date));
        assert!(!implicit_cast_allowed(&Int32, &Text));
        assert_eq!(common_type(&Int32, &Int64), Some(Int64));
        assert_eq!(
            common_type(&Int32, &Numeric(Some((5, 2)))),
            Some(Numeric(None))
        );
        assert_eq!(common_type(&Numeric(None), &Float32), Some(Float32));
        assert_eq!(common_type(&Unknown, &Date), Some(Date));
        assert_eq!(common_type(&Unknown, &Unknown), Some(Text));
        assert_eq!(common_type(&Varchar(Some(3)), &Char(2)), Some(Text));
        assert_eq!(
            common_type(&Varchar(Some(3)), &Varchar(Some(5))),
            Some(Varchar(None))
        );
        assert_eq!(common_type(&Date, &Timestamp), Some(Timestamp));
        assert_eq!(common_type(&Int32, &Text), None);
        assert_eq!(common_type(&Bool, &Int32), None);
    }
}
