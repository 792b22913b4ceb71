//! The SQL layer's encodings of values in keys and rows.
//!
//! **Keys** (primary keys and index entries) use a memcomparable encoding:
//! every value is a one-byte type tag followed by an order-preserving,
//! self-delimiting payload built on `reef_common::codec`, so that for two
//! values of the same column type the byte-wise order of their encodings is
//! the order of the values, and a composite key is just the concatenation of
//! its columns' encodings. NULL is the tag `0x00` alone and sorts before
//! every non-NULL value (PostgreSQL's default for ascending order is NULLS
//! LAST; the planner accounts for the storage order). Integers of every width
//! share one encoding, floats order -0 = 0 and NaN highest, numerics order
//! across scales (`1.0` and `1.00` encode identically, so decoding gives the
//! normalised value, rescaled to the column's declared scale when it has
//! one), and strings and byte strings use the grouped byte-string encoding.
//!
//! Descending key columns use [`encode_key_value_desc`]: the bitwise
//! complement of the ascending encoding. Complementing reverses the order of
//! any two encodings that are not prefixes of each other, and since every
//! ascending encoding is self-delimiting (no encoding is a proper prefix of
//! another), the complemented encodings are self-delimiting too.
//!
//! **Rows** use a compact, self-describing format: each non-NULL column is a
//! varint column id, a one-byte tag and a payload whose length the tag
//! determines (or which carries its own length). NULL columns are omitted. A
//! reader asks for the column ids it wants; absent ones read as NULL (so a
//! column added later reads NULL from old rows) and unknown ones are skipped
//! (so a dropped column's bytes are ignored).

use reef_common::codec::{
    decode_bytes_into, decode_f64, decode_i64, decode_u64, decode_var_u64, encode_bytes,
    encode_f64, encode_i64, encode_u64, encode_var_u64, skip_bytes, CodecError,
};
use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::types::{DataType, Interval, Value};

// ---------------------------------------------------------------------------
// Key encoding.

/// Key tag of NULL.
const KEY_NULL: u8 = 0x00;
/// Key tag of a boolean.
const KEY_BOOL: u8 = 0x10;
/// Key tag of an integer of any width.
const KEY_INT: u8 = 0x20;
/// Key tag of a float of either width.
const KEY_FLOAT: u8 = 0x30;
/// Key tag of a numeric.
const KEY_NUMERIC: u8 = 0x40;
/// Key tag of a character string.
const KEY_TEXT: u8 = 0x50;
/// Key tag of a byte string.
const KEY_BYTEA: u8 = 0x58;
/// Key tag of a date.
const KEY_DATE: u8 = 0x60;
/// Key tag of a timestamp.
const KEY_TIMESTAMP: u8 = 0x61;
/// Key tag of a timestamptz.
const KEY_TIMESTAMPTZ: u8 = 0x62;
/// Key tag of an interval.
const KEY_INTERVAL: u8 = 0x70;

/// Numeric sign markers, in order.
const NUM_NEG: u8 = 0x01;
const NUM_ZERO: u8 = 0x02;
const NUM_POS: u8 = 0x03;

fn corrupt(what: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError::internal(format!("corrupt {what} encoding: {e}"))
}

fn key_err(e: CodecError) -> SqlError {
    corrupt("key", e)
}

/// Appends the memcomparable key encoding of one value.
pub fn encode_key_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => buf.push(KEY_NULL),
        Value::Bool(b) => {
            buf.push(KEY_BOOL);
            buf.push(*b as u8);
        }
        Value::Int16(i) => {
            buf.push(KEY_INT);
            encode_i64(buf, *i as i64);
        }
        Value::Int32(i) => {
            buf.push(KEY_INT);
            encode_i64(buf, *i as i64);
        }
        Value::Int64(i) => {
            buf.push(KEY_INT);
            encode_i64(buf, *i);
        }
        Value::Float32(f) => {
            buf.push(KEY_FLOAT);
            encode_f64(buf, *f as f64);
        }
        Value::Float64(f) => {
            buf.push(KEY_FLOAT);
            encode_f64(buf, *f);
        }
        Value::Numeric(d) => {
            buf.push(KEY_NUMERIC);
            encode_numeric_key(buf, d);
        }
        Value::Text(s) => {
            buf.push(KEY_TEXT);
            encode_bytes(buf, s.as_bytes());
        }
        Value::Bytea(b) => {
            buf.push(KEY_BYTEA);
            encode_bytes(buf, b);
        }
        Value::Date(d) => {
            buf.push(KEY_DATE);
            encode_i64(buf, *d as i64);
        }
        Value::Timestamp(t) => {
            buf.push(KEY_TIMESTAMP);
            encode_i64(buf, *t);
        }
        Value::TimestampTz(t) => {
            buf.push(KEY_TIMESTAMPTZ);
            encode_i64(buf, *t);
        }
        Value::Array(_) => {
            // No column holds an array; a sort or grouping key that is one orders by its text.
            encode_key_value(buf, &Value::Text(crate::types::text::format_text(v)));
        }
        Value::Interval(iv) => {
            buf.push(KEY_INTERVAL);
            let total = iv.as_micros_total();
            encode_i64(buf, (total >> 64) as i64);
            encode_u64(buf, total as u64);
            encode_i64(buf, iv.months as i64);
            encode_i64(buf, iv.days as i64);
        }
    }
}

/// Appends the key encoding of a value stored in a column of type `ty`.
/// For `char(n)` the trailing spaces are dropped first, so that keys
/// compare as PostgreSQL compares `bpchar` (trailing spaces insignificant);
/// [`decode_key_value`] pads them back.
pub fn encode_key_value_typed(buf: &mut Vec<u8>, v: &Value, ty: &DataType) {
    match (ty, v) {
        (DataType::Char(_), Value::Text(s)) => {
            buf.push(KEY_TEXT);
            encode_bytes(buf, s.trim_end_matches(' ').as_bytes());
        }
        _ => encode_key_value(buf, v),
    }
}

/// Appends the descending key encoding of a value: the complement of the
/// ascending encoding, so byte order is the reverse of value order (and
/// NULL sorts after every value).
pub fn encode_key_value_desc(buf: &mut Vec<u8>, v: &Value) {
    let start = buf.len();
    encode_key_value(buf, v);
    for b in &mut buf[start..] {
        *b = !*b;
    }
}

/// Appends the composite key of several values (ascending order).
pub fn encode_key(buf: &mut Vec<u8>, values: &[Value]) {
    for v in values {
        encode_key_value(buf, v);
    }
}

/// Decimal digits of a nonzero numeric, without trailing zeros, and its
/// exponent `e` such that the value is `0.d1d2d3... * 10^e`.
fn numeric_digits(d: &Decimal) -> (Vec<u8>, i32) {
    let mut m = d.mantissa().unsigned_abs();
    let mut digits = Vec::with_capacity(30);
    while m > 0 {
        digits.push((m % 10) as u8);
        m /= 10;
    }
    digits.reverse();
    let len = digits.len() as i32;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    (digits, len - d.scale() as i32)
}

/// Appends a numeric's order-preserving encoding: a sign byte, then for
/// nonzero values an exponent byte and base-100 digit pairs (each byte
/// 1..=100) ended by 0x00, all complemented for negative values.
fn encode_numeric_key(buf: &mut Vec<u8>, d: &Decimal) {
    if d.is_zero() {
        buf.push(NUM_ZERO);
        return;
    }
    let neg = d.is_sign_negative();
    buf.push(if neg { NUM_NEG } else { NUM_POS });
    let start = buf.len();
    let (digits, exp) = numeric_digits(d);
    // The exponent of a Decimal lies within [-28, 29].
    buf.push((exp + 128) as u8);
    for pair in digits.chunks(2) {
        let hi = pair[0];
        let lo = pair.get(1).copied().unwrap_or(0);
        buf.push(1 + hi * 10 + lo);
    }
    buf.push(0);
    if neg {
        for b in &mut buf[start..] {
            *b = !*b;
        }
    }
}

fn take_byte(input: &mut &[u8]) -> Result<u8> {
    let (&b, rest) = input
        .split_first()
        .ok_or_else(|| corrupt("key", "unexpected end of input"))?;
    *input = rest;
    Ok(b)
}

fn decode_numeric_key(input: &mut &[u8]) -> Result<Decimal> {
    let sign = take_byte(input)?;
    if sign == NUM_ZERO {
        return Ok(Decimal::ZERO);
    }
    let neg = match sign {
        NUM_NEG => true,
        NUM_POS => false,
        other => return Err(corrupt("key", format!("numeric sign byte {other:#04x}"))),
    };
    let flip = |b: u8| if neg { !b } else { b };
    let exp = flip(take_byte(input)?) as i32 - 128;
    let mut mantissa: u128 = 0;
    let mut ndigits: i32 = 0;
    loop {
        let b = flip(take_byte(input)?);
        if b == 0 {
            break;
        }
        if b > 100 {
            return Err(corrupt("key", format!("numeric digit byte {b:#04x}")));
        }
        let pair = (b - 1) as u128;
        mantissa = mantissa
            .checked_mul(100)
            .and_then(|m| m.checked_add(pair))
            .ok_or_else(|| corrupt("key", "numeric too long"))?;
        ndigits += 2;
    }
    // value = 0.digits * 10^exp = mantissa * 10^(exp - ndigits)
    let mut scale = ndigits - exp;
    if scale < 0 {
        mantissa = mantissa
            .checked_mul(
                10u128
                    .checked_pow((-scale) as u32)
                    .ok_or_else(|| corrupt("key", "numeric exponent"))?,
            )
            .ok_or_else(|| corrupt("key", "numeric exponent"))?;
        scale = 0;
    }
    // Drop the padding zero of an odd digit count where the scale allows.
    while scale > 0 && mantissa != 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        scale -= 1;
    }
    let m = i128::try_from(mantissa).map_err(|_| corrupt("key", "numeric mantissa"))?;
    let m = if neg { -m } else { m };
    Decimal::try_from_i128_with_scale(m, scale as u32).map_err(|e| corrupt("key", e))
}

fn int_value(i: i64, ty: &DataType) -> Result<Value> {
    let bad = || corrupt("key", format!("integer {i} does not fit {ty}"));
    Ok(match ty {
        DataType::Int16 => Value::Int16(i16::try_from(i).map_err(|_| bad())?),
        DataType::Int32 => Value::Int32(i32::try_from(i).map_err(|_| bad())?),
        _ => Value::Int64(i),
    })
}

/// Decodes one key value of column type `ty`, advancing `input` past it.
/// Numerics come back normalised (`1.50` as `1.5`), or at the column's
/// declared scale for `numeric(p, s)`; `char(n)` values are padded to `n`.
pub fn decode_key_value(input: &mut &[u8], ty: &DataType) -> Result<Value> {
    let tag = take_byte(input)?;
    Ok(match tag {
        KEY_NULL => Value::Null,
        KEY_BOOL => Value::Bool(take_byte(input)? != 0),
        KEY_INT => int_value(decode_i64(input).map_err(key_err)?, ty)?,
        KEY_FLOAT => {
            let f = decode_f64(input).map_err(key_err)?;
            match ty {
                DataType::Float32 => Value::Float32(f as f32),
                _ => Value::Float64(f),
            }
        }
        KEY_NUMERIC => {
            let d = decode_numeric_key(input)?;
            match ty {
                DataType::Numeric(Some((_, s))) if d.scale() < *s => {
                    let mut d = d;
                    d.rescale(*s);
                    Value::Numeric(d)
                }
                _ => Value::Numeric(d),
            }
        }
        KEY_TEXT => {
            let mut bytes = Vec::new();
            decode_bytes_into(input, &mut bytes).map_err(key_err)?;
            let s = String::from_utf8(bytes).map_err(|e| corrupt("key", e))?;
            match ty {
                DataType::Char(n) => Value::Text(crate::types::text::pad_char(&s, *n)),
                _ => Value::Text(s),
            }
        }
        KEY_BYTEA => {
            let mut bytes = Vec::new();
            decode_bytes_into(input, &mut bytes).map_err(key_err)?;
            Value::Bytea(bytes)
        }
        KEY_DATE => {
            let d = decode_i64(input).map_err(key_err)?;
            Value::Date(i32::try_from(d).map_err(|e| corrupt("key", e))?)
        }
        KEY_TIMESTAMP => Value::Timestamp(decode_i64(input).map_err(key_err)?),
        KEY_TIMESTAMPTZ => Value::TimestampTz(decode_i64(input).map_err(key_err)?),
        KEY_INTERVAL => {
            let hi = decode_i64(input).map_err(key_err)?;
            let lo = decode_u64(input).map_err(key_err)?;
            let total = ((hi as i128) << 64) | lo as i128;
            let months = decode_i64(input).map_err(key_err)?;
            let days = decode_i64(input).map_err(key_err)?;
            let months = i32::try_from(months).map_err(|e| corrupt("key", e))?;
            let days = i32::try_from(days).map_err(|e| corrupt("key", e))?;
            let day_micros = (months as i128 * 30 + days as i128) * 86_400_000_000;
            let micros = i64::try_from(total - day_micros).map_err(|e| corrupt("key", e))?;
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        other => return Err(corrupt("key", format!("tag {other:#04x}"))),
    })
}

/// Decodes one descending key value (see [`encode_key_value_desc`]).
pub fn decode_key_value_desc(input: &mut &[u8], ty: &DataType) -> Result<Value> {
    let flipped: Vec<u8> = input.iter().map(|b| !b).collect();
    let mut cursor: &[u8] = &flipped;
    let v = decode_key_value(&mut cursor, ty)?;
    let consumed = flipped.len() - cursor.len();
    *input = &input[consumed..];
    Ok(v)
}

/// Decodes a composite key of the given column types.
pub fn decode_key(input: &mut &[u8], types: &[DataType]) -> Result<Vec<Value>> {
    types.iter().map(|t| decode_key_value(input, t)).collect()
}

// ---------------------------------------------------------------------------
// Row encoding.

const ROW_FALSE: u8 = 1;
const ROW_TRUE: u8 = 2;
const ROW_INT: u8 = 3;
const ROW_FLOAT32: u8 = 4;
const ROW_FLOAT64: u8 = 5;
const ROW_NUMERIC: u8 = 6;
const ROW_TEXT: u8 = 7;
const ROW_BYTEA: u8 = 8;
const ROW_DATE: u8 = 9;
const ROW_TIMESTAMP: u8 = 10;
const ROW_TIMESTAMPTZ: u8 = 11;
const ROW_INTERVAL: u8 = 12;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn encode_var_u128(buf: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn decode_var_u128(input: &mut &[u8]) -> Result<u128> {
    let mut v: u128 = 0;
    for shift in (0..128).step_by(7) {
        let b = take_row_byte(input)?;
        v |= ((b & 0x7f) as u128) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("row", "varint overflows 128 bits"))
}

fn take_row_byte(input: &mut &[u8]) -> Result<u8> {
    let (&b, rest) = input
        .split_first()
        .ok_or_else(|| corrupt("row", "unexpected end of input"))?;
    *input = rest;
    Ok(b)
}

fn take_row_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if input.len() < n {
        return Err(corrupt("row", "unexpected end of input"));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn row_err(e: CodecError) -> SqlError {
    corrupt("row", e)
}

/// Appends one row: each non-NULL column as (varint column id, tag,
/// payload); NULL columns are omitted.
pub fn encode_row(buf: &mut Vec<u8>, cols: &[(u32, &Value)]) {
    for (id, v) in cols {
        if v.is_null() {
            continue;
        }
        encode_var_u64(buf, *id as u64);
        match v {
            Value::Null => {}
            Value::Bool(b) => buf.push(if *b { ROW_TRUE } else { ROW_FALSE }),
            Value::Int16(i) => {
                buf.push(ROW_INT);
                encode_var_u64(buf, zigzag(*i as i64));
            }
            Value::Int32(i) => {
                buf.push(ROW_INT);
                encode_var_u64(buf, zigzag(*i as i64));
            }
            Value::Int64(i) => {
                buf.push(ROW_INT);
                encode_var_u64(buf, zigzag(*i));
            }
            Value::Float32(f) => {
                buf.push(ROW_FLOAT32);
                buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Float64(f) => {
                buf.push(ROW_FLOAT64);
                buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Numeric(d) => {
                buf.push(ROW_NUMERIC);
                buf.push(d.scale() as u8 | if d.is_sign_negative() { 0x80 } else { 0 });
                encode_var_u128(buf, d.mantissa().unsigned_abs());
            }
            Value::Text(s) => {
                buf.push(ROW_TEXT);
                encode_var_u64(buf, s.len() as u64);
                buf.extend_from_slice(s.as_bytes());
            }
            Value::Bytea(b) => {
                buf.push(ROW_BYTEA);
                encode_var_u64(buf, b.len() as u64);
                buf.extend_from_slice(b);
            }
            Value::Date(d) => {
                buf.push(ROW_DATE);
                encode_var_u64(buf, zigzag(*d as i64));
            }
            Value::Timestamp(t) => {
                buf.push(ROW_TIMESTAMP);
                encode_var_u64(buf, zigzag(*t));
            }
            Value::TimestampTz(t) => {
                buf.push(ROW_TIMESTAMPTZ);
                encode_var_u64(buf, zigzag(*t));
            }
            Value::Array(_) => {
                // No column holds an array; one in a row is kept as its text.
                let s = crate::types::text::format_text(v);
                buf.push(ROW_TEXT);
                encode_var_u64(buf, s.len() as u64);
                buf.extend_from_slice(s.as_bytes());
            }
            Value::Interval(iv) => {
                buf.push(ROW_INTERVAL);
                encode_var_u64(buf, zigzag(iv.months as i64));
                encode_var_u64(buf, zigzag(iv.days as i64));
                encode_var_u64(buf, zigzag(iv.micros));
            }
        }
    }
}

fn decode_len(input: &mut &[u8]) -> Result<usize> {
    let n = decode_var_u64(input).map_err(row_err)?;
    usize::try_from(n).map_err(|e| corrupt("row", e))
}

/// Skips one payload of a row column.
fn skip_payload(tag: u8, input: &mut &[u8]) -> Result<()> {
    match tag {
        ROW_FALSE | ROW_TRUE => {}
        ROW_INT | ROW_DATE | ROW_TIMESTAMP | ROW_TIMESTAMPTZ => {
            decode_var_u64(input).map_err(row_err)?;
        }
        ROW_FLOAT32 => {
            take_row_bytes(input, 4)?;
        }
        ROW_FLOAT64 => {
            take_row_bytes(input, 8)?;
        }
        ROW_NUMERIC => {
            take_row_byte(input)?;
            decode_var_u128(input)?;
        }
        ROW_TEXT | ROW_BYTEA => {
            let n = decode_len(input)?;
            take_row_bytes(input, n)?;
        }
        ROW_INTERVAL => {
            for _ in 0..3 {
                decode_var_u64(input).map_err(row_err)?;
            }
        }
        other => return Err(corrupt("row", format!("tag {other}"))),
    }
    Ok(())
}

/// Decodes one payload as a value of the wanted column type.
fn decode_payload(tag: u8, input: &mut &[u8], ty: &DataType) -> Result<Value> {
    let mismatch = |stored: &str| {
        corrupt(
            "row",
            format!("stored {stored} value for a column of type {ty}"),
        )
    };
    let int = |input: &mut &[u8]| -> Result<i64> {
        Ok(unzigzag(decode_var_u64(input).map_err(row_err)?))
    };
    Ok(match tag {
        ROW_FALSE => Value::Bool(false),
        ROW_TRUE => Value::Bool(true),
        ROW_INT => {
            let i = int(input)?;
            match ty {
                DataType::Int16 => {
                    Value::Int16(i16::try_from(i).map_err(|_| mismatch("wide integer"))?)
                }
                DataType::Int32 => {
                    Value::Int32(i32::try_from(i).map_err(|_| mismatch("wide integer"))?)
                }
                DataType::Int64 => Value::Int64(i),
                DataType::Numeric(_) => Value::Numeric(Decimal::from(i)),
                DataType::Float64 => Value::Float64(i as f64),
                DataType::Float32 => Value::Float32(i as f32),
                _ => return Err(mismatch("integer")),
            }
        }
        ROW_FLOAT32 => {
            let b = take_row_bytes(input, 4)?;
            let f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            match ty {
                DataType::Float64 => Value::Float64(f as f64),
                _ => Value::Float32(f),
            }
        }
        ROW_FLOAT64 => {
            let b = take_row_bytes(input, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Float64(f64::from_le_bytes(a))
        }
        ROW_NUMERIC => {
            let flags = take_row_byte(input)?;
            let m = decode_var_u128(input)?;
            let m = i128::try_from(m).map_err(|e| corrupt("row", e))?;
            let m = if flags & 0x80 != 0 { -m } else { m };
            Value::Numeric(
                Decimal::try_from_i128_with_scale(m, (flags & 0x7f) as u32)
                    .map_err(|e| corrupt("row", e))?,
            )
        }
        ROW_TEXT => {
            let n = decode_len(input)?;
            let b = take_row_bytes(input, n)?;
            Value::Text(
                std::str::from_utf8(b)
                    .map_err(|e| corrupt("row", e))?
                    .to_owned(),
            )
        }
        ROW_BYTEA => {
            let n = decode_len(input)?;
            Value::Bytea(take_row_bytes(input, n)?.to_vec())
        }
        ROW_DATE => {
            let d = int(input)?;
            let d = i32::try_from(d).map_err(|e| corrupt("row", e))?;
            match ty {
                DataType::Timestamp => {
                    Value::Timestamp(d as i64 * crate::types::datetime::USECS_PER_DAY)
                }
                DataType::TimestampTz => {
                    Value::TimestampTz(d as i64 * crate::types::datetime::USECS_PER_DAY)
                }
                _ => Value::Date(d),
            }
        }
        ROW_TIMESTAMP | ROW_TIMESTAMPTZ => {
            let t = int(input)?;
            match ty {
                DataType::TimestampTz => Value::TimestampTz(t),
                DataType::Timestamp => Value::Timestamp(t),
                _ if tag == ROW_TIMESTAMPTZ => Value::TimestampTz(t),
                _ => Value::Timestamp(t),
            }
        }
        ROW_INTERVAL => {
            let months = i32::try_from(int(input)?).map_err(|e| corrupt("row", e))?;
            let days = i32::try_from(int(input)?).map_err(|e| corrupt("row", e))?;
            let micros = int(input)?;
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        other => return Err(corrupt("row", format!("tag {other}"))),
    })
}

/// Decodes the wanted columns of a row, pushing one value per entry of
/// `wanted` onto `out` in `wanted`'s order: NULL for a column the row does
/// not hold. Columns the row holds but `wanted` omits are skipped.
pub fn decode_row(bytes: &[u8], wanted: &[(u32, DataType)], out: &mut Vec<Value>) -> Result<()> {
    let base = out.len();
    out.resize(base + wanted.len(), Value::Null);
    let mut input = bytes;
    // Rows are usually written in the same column order as they are read, so
    // try the slot after the last match first.
    let mut hint = 0usize;
    while !input.is_empty() {
        let id = decode_var_u64(&mut input).map_err(row_err)?;
        let tag = take_row_byte(&mut input)?;
        let slot = if wanted.get(hint).is_some_and(|(w, _)| *w as u64 == id) {
            Some(hint)
        } else {
            wanted.iter().position(|(w, _)| *w as u64 == id)
        };
        match slot {
            Some(i) => {
                out[base + i] = decode_payload(tag, &mut input, &wanted[i].1)?;
                hint = i + 1;
            }
            None => skip_payload(tag, &mut input)?,
        }
    }
    Ok(())
}

/// Skips a byte-string key field, returning its decoded length (useful to
/// step over key columns without decoding them).
pub fn skip_key_value(input: &mut &[u8]) -> Result<()> {
    let tag = take_byte(input)?;
    match tag {
        KEY_NULL => {}
        KEY_BOOL => {
            take_byte(input)?;
        }
        KEY_INT | KEY_FLOAT | KEY_DATE | KEY_TIMESTAMP | KEY_TIMESTAMPTZ => {
            decode_u64(input).map_err(key_err)?;
        }
        KEY_NUMERIC => {
            decode_numeric_key(input)?;
        }
        KEY_TEXT | KEY_BYTEA => {
            skip_bytes(input).map_err(key_err)?;
        }
        KEY_INTERVAL => {
            for _ in 0..4 {
                decode_u64(input).map_err(key_err)?;
            }
        }
        other => return Err(corrupt("key", format!("tag {other:#04x}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        encode_key_value(&mut b, v);
        b
    }

    fn num(s: &str) -> Value {
        Value::Numeric(s.parse().unwrap())
    }

    #[test]
    fn numeric_keys_ignore_scale_and_order() {
        assert_eq!(key(&num("1.0")), key(&num("1.00")));
        assert_eq!(key(&num("-0.00")), key(&num("0")));
        let ordered = [
            "-1000", "-12.5", "-12.34", "-12.3", "-0.001", "0", "0.0001", "0.12", "0.123", "1",
            "9.99", "10", "1500",
        ];
        for w in ordered.windows(2) {
            assert!(key(&num(w[0])) < key(&num(w[1])), "{} < {}", w[0], w[1]);
        }
        let mut input: &[u8] = &key(&num("1500"));
        assert_eq!(
            decode_key_value(&mut input, &DataType::Numeric(None)).unwrap(),
            num("1500")
        );
        assert!(input.is_empty());
        let mut input: &[u8] = &key(&num("1.5"));
        let v = decode_key_value(&mut input, &DataType::Numeric(Some((5, 2)))).unwrap();
        assert_eq!(crate::types::text::format_text(&v), "1.50");
    }

    #[test]
    fn char_keys_ignore_trailing_spaces() {
        let mut a = Vec::new();
        encode_key_value_typed(&mut a, &Value::Text("ab  ".into()), &DataType::Char(4));
        let mut b = Vec::new();
        encode_key_value(&mut b, &Value::Text("ab".into()));
        assert_eq!(a, b);
        let mut input: &[u8] = &a;
        assert_eq!(
            decode_key_value(&mut input, &DataType::Char(4)).unwrap(),
            Value::Text("ab  ".into())
        );
    }

    #[test]
    fn rows_skip_unknown_and_default_missing() {
        let mut buf = Vec::new();
        let (a, b, c) = (Value::Int32(7), Value::Text("x".into()), Value::Null);
        encode_row(&mut buf, &[(1, &a), (2, &b), (3, &c)]);
        let mut out = Vec::new();
        decode_row(
            &buf,
            &[
                (2, DataType::Text),
                (4, DataType::Int64),
                (1, DataType::Int64),
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![Value::Text("x".into()), Value::Null, Value::Int64(7)]
        );
        let mut out = vec![Value::Bool(true)];
        decode_row(&buf, &[(3, DataType::Int32)], &mut out).unwrap();
        assert_eq!(out, vec![Value::Bool(true), Value::Null]);
        assert!(decode_row(
            &buf[..buf.len() - 1],
            &[(2, DataType::Text)],
            &mut Vec::new()
        )
        .is_err());
    }
}
