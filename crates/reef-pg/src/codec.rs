//! Value encodings on the wire: PostgreSQL's text and binary formats.
//!
//! Binary formats follow PostgreSQL's `*send`/`*recv` functions: big-endian integers and IEEE
//! floats, dates as days and timestamps as microseconds since 2000-01-01, intervals as
//! (microseconds i64, days i32, months i32), and numeric as base-10000 digits with a weight,
//! sign and display scale. reef-sql counts dates and timestamps from 1970-01-01; the shift
//! happens here.

use bytes::{BufMut, BytesMut};
use reef_sql::{sqlstate, DataType, Decimal, Interval, Result, SqlError, Value};

use reef_sql::types::text::{format_text_into, parse_text};

/// Format code of PostgreSQL's text format.
pub(crate) const FORMAT_TEXT: i16 = 0;
/// Format code of PostgreSQL's binary format.
pub(crate) const FORMAT_BINARY: i16 = 1;

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 00:00:00 to 2000-01-01 00:00:00.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// The largest scale rust_decimal can represent.
const MAX_DECIMAL_SCALE: u32 = 28;

/// SQLSTATE for byte sequences that are not valid UTF-8 (or contain NUL).
const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";

/// Decodes a parameter sent in `format` for a parameter of type `ty`.
pub(crate) fn decode_param(bytes: &[u8], format: i16, ty: &DataType) -> Result<Value> {
    if format == FORMAT_BINARY {
        decode_binary(bytes, ty)
    } else {
        let s = utf8(bytes)?;
        match ty {
            DataType::Unknown => Ok(Value::Text(s.to_owned())),
            _ => parse_text(s, ty),
        }
    }
}

/// Checks that bytes are UTF-8 without NUL, as PostgreSQL requires of all text.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str> {
    let s = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let bad = &bytes[at..bytes.len().min(at + 2)];
        let hex: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
        SqlError::new(
            CHARACTER_NOT_IN_REPERTOIRE,
            format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                hex.join(" ")
            ),
        )
    })?;
    if s.contains('\0') {
        return Err(SqlError::new(
            CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
    }
    Ok(s)
}

fn bad_binary(ty: &DataType) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_BINARY_REPRESENTATION,
        format!("incorrect binary data format for type {ty}"),
    )
}

fn fixed<const N: usize>(bytes: &[u8], ty: &DataType) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| bad_binary(ty))
}

/// Decodes PostgreSQL's binary format of a value of type `ty`.
pub(crate) fn decode_binary(b: &[u8], ty: &DataType) -> Result<Value> {
    let date_range = || SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "date out of range");
    let ts_range = || SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range");
    Ok(match ty {
        DataType::Bool => Value::Bool(fixed::<1>(b, ty)?[0] != 0),
        DataType::Int16 => Value::Int16(i16::from_be_bytes(fixed(b, ty)?)),
        DataType::Int32 => Value::Int32(i32::from_be_bytes(fixed(b, ty)?)),
        DataType::Int64 => Value::Int64(i64::from_be_bytes(fixed(b, ty)?)),
        DataType::Float32 => Value::Float32(f32::from_be_bytes(fixed(b, ty)?)),
        DataType::Float64 => Value::Float64(f64::from_be_bytes(fixed(b, ty)?)),
        DataType::Numeric(_) => Value::Numeric(decode_numeric(b)?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            Value::Text(utf8(b)?.to_owned())
        }
        DataType::Bytea => Value::Bytea(b.to_vec()),
        DataType::Date => {
            let pg = i32::from_be_bytes(fixed(b, ty)?);
            Value::Date(pg.checked_add(PG_EPOCH_DAYS).ok_or_else(date_range)?)
        }
        DataType::Timestamp => {
            let pg = i64::from_be_bytes(fixed(b, ty)?);
            Value::Timestamp(pg.checked_add(PG_EPOCH_MICROS).ok_or_else(ts_range)?)
        }
        DataType::TimestampTz => {
            let pg = i64::from_be_bytes(fixed(b, ty)?);
            Value::TimestampTz(pg.checked_add(PG_EPOCH_MICROS).ok_or_else(ts_range)?)
        }
        DataType::Interval => {
            let raw: [u8; 16] = fixed(b, ty)?;
            let micros = i64::from_be_bytes([
                raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
            ]);
            let days = i32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let months = i32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]);
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        DataType::Array(_) | DataType::Int2Vector | DataType::Record(_) => {
            return Err(SqlError::unsupported(format!(
                "the binary format of {ty} is not supported"
            )))
        }
    })
}

fn mismatch(v: &Value, ty: &DataType) -> SqlError {
    SqlError::internal(format!(
        "a value of type {} cannot be sent as {ty}",
        v.data_type()
    ))
}

fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Int16(i) => Some(*i as i64),
        Value::Int32(i) => Some(*i as i64),
        Value::Int64(i) => Some(*i),
        _ => None,
    }
}

/// Appends the binary format of a non-NULL value for a column of type `ty`.
///
/// Integer values are widened or narrowed (with a range check) and floats converted to the
/// column's width, so that the bytes always match the type announced in RowDescription.
pub(crate) fn encode_binary(v: &Value, ty: &DataType, out: &mut BytesMut) -> Result<()> {
    let out_of_range = || SqlError::out_of_range(&ty.pg_name());
    match (ty, v) {
        (DataType::Bool, Value::Bool(b)) => out.put_u8(*b as u8),
        (DataType::Int16, _) => {
            let i = int_value(v).ok_or_else(|| mismatch(v, ty))?;
            out.put_i16(i16::try_from(i).map_err(|_| out_of_range())?)
        }
        (DataType::Int32, _) => {
            let i = int_value(v).ok_or_else(|| mismatch(v, ty))?;
            out.put_i32(i32::try_from(i).map_err(|_| out_of_range())?)
        }
        (DataType::Int64, _) => out.put_i64(int_value(v).ok_or_else(|| mismatch(v, ty))?),
        (DataType::Float32, Value::Float32(f)) => out.put_f32(*f),
        (DataType::Float32, Value::Float64(f)) => out.put_f32(*f as f32),
        (DataType::Float64, Value::Float64(f)) => out.put_f64(*f),
        (DataType::Float64, Value::Float32(f)) => out.put_f64(*f as f64),
        (DataType::Numeric(_), Value::Numeric(d)) => encode_numeric(d, out),
        (DataType::Numeric(_), _) if int_value(v).is_some() => {
            encode_numeric(&Decimal::from(int_value(v).unwrap_or_default()), out)
        }
        (
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown,
            Value::Text(s),
        ) => out.put_slice(s.as_bytes()),
        (DataType::Bytea, Value::Bytea(b)) => out.put_slice(b),
        (DataType::Date, Value::Date(d)) => {
            out.put_i32(d.checked_sub(PG_EPOCH_DAYS).ok_or_else(|| {
                SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "date out of range")
            })?)
        }
        (DataType::Timestamp, Value::Timestamp(t))
        | (DataType::TimestampTz, Value::TimestampTz(t)) => {
            out.put_i64(t.checked_sub(PG_EPOCH_MICROS).ok_or_else(|| {
                SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
            })?)
        }
        (DataType::Interval, Value::Interval(iv)) => {
            out.put_i64(iv.micros);
            out.put_i32(iv.days);
            out.put_i32(iv.months);
        }
        _ => return Err(mismatch(v, ty)),
    }
    Ok(())
}

/// Appends PostgreSQL's binary numeric: ndigits, weight, sign, dscale (all 16-bit), then the
/// base-10000 digits, most significant first, without leading or trailing zero digits.
pub(crate) fn encode_numeric(d: &Decimal, out: &mut BytesMut) {
    let scale = d.scale();
    let mantissa = d.mantissa().unsigned_abs();
    // Pad the scale to a multiple of four so that the decimal point falls between digits.
    let pad = (4 - scale % 4) % 4;
    // |mantissa| < 2^96 and 10^3 < 2^10, so this cannot overflow.
    let mut m = mantissa * 10u128.pow(pad);
    let frac_digits = ((scale + pad) / 4) as i32;
    // Little-endian base-10000 digits; 2^106 < 10000^9.
    let mut digits = [0i16; 10];
    let mut n = 0;
    while m > 0 {
        digits[n] = (m % 10_000) as i16;
        m /= 10_000;
        n += 1;
    }
    let low = digits[..n].iter().take_while(|d| **d == 0).count();
    let weight = if n == 0 {
        0
    } else {
        n as i32 - frac_digits - 1
    };
    let sign = if d.is_sign_negative() && mantissa != 0 {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    out.put_i16((n - low) as i16);
    out.put_i16(weight as i16);
    out.put_u16(sign);
    out.put_u16(scale as u16);
    for digit in digits[low..n].iter().rev() {
        out.put_i16(*digit);
    }
}

/// Decodes PostgreSQL's binary numeric. Digits beyond the display scale are truncated, as
/// PostgreSQL's `numeric_recv` does; values that do not fit rust_decimal (28 digits of scale,
/// 96 bits of mantissa) are out of range.
pub(crate) fn decode_numeric(b: &[u8]) -> Result<Decimal> {
    let ty = DataType::Numeric(None);
    if b.len() < 8 {
        return Err(bad_binary(&ty));
    }
    let ndigits = i16::from_be_bytes([b[0], b[1]]);
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]);
    if ndigits < 0 || b.len() != 8 + 2 * ndigits as usize || dscale > 0x3FFF {
        return Err(bad_binary(&ty));
    }
    let negative = match sign {
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF => {
            return Err(SqlError::unsupported(
                "numeric NaN and infinity are not supported",
            ))
        }
        _ => return Err(bad_binary(&ty)),
    };
    let out_of_range = || {
        SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "numeric value out of range",
        )
    };

    // The value is m * 10^exp10, with m built from the digits.
    let mut m: u128 = 0;
    for pair in b[8..].chunks_exact(2) {
        let digit = i16::from_be_bytes([pair[0], pair[1]]);
        if !(0..10_000).contains(&digit) {
            return Err(bad_binary(&ty));
        }
        m = m
            .checked_mul(10_000)
            .and_then(|m| m.checked_add(digit as u128))
            .ok_or_else(out_of_range)?;
    }
    let mut exp10: i64 = if ndigits == 0 {
        0
    } else {
        4 * (weight as i64 - (ndigits as i64 - 1))
    };
    if exp10 > 0 {
        m = pow10(exp10)
            .and_then(|p| m.checked_mul(p))
            .ok_or_else(out_of_range)?;
        exp10 = 0;
    }
    // Now the value is m / 10^scale; bring the scale to dscale.
    let mut scale = (-exp10) as u64;
    let dscale = dscale as u64;
    if scale > dscale {
        m = pow10((scale - dscale) as i64).map_or(0, |p| m / p);
        scale = dscale;
    }
    if scale > MAX_DECIMAL_SCALE as u64 {
        // Only zeros may be dropped to fit rust_decimal's scale.
        let drop = pow10((scale - MAX_DECIMAL_SCALE as u64) as i64);
        match drop {
            Some(p) if m.is_multiple_of(p) => m /= p,
            None if m == 0 => {}
            _ => return Err(out_of_range()),
        }
        scale = MAX_DECIMAL_SCALE as u64;
    } else if scale < dscale {
        let target = dscale.min(MAX_DECIMAL_SCALE as u64);
        m = pow10((target - scale) as i64)
            .and_then(|p| m.checked_mul(p))
            .ok_or_else(out_of_range)?;
        scale = target;
    }
    let signed = i128::try_from(m).map_err(|_| out_of_range())?;
    let signed = if negative { -signed } else { signed };
    Decimal::try_from_i128_with_scale(signed, scale as u32).map_err(|_| out_of_range())
}

fn pow10(exp: i64) -> Option<u128> {
    u32::try_from(exp).ok().and_then(|e| 10u128.checked_pow(e))
}

/// Encodes rows into DataRow bodies, reusing its buffers across rows and values.
#[derive(Default)]
pub(crate) struct RowEncoder {
    text: String,
}

impl RowEncoder {
    /// Appends one field (length and bytes, or -1 for NULL) in the given format.
    pub(crate) fn put_field(
        &mut self,
        v: &Value,
        ty: &DataType,
        format: i16,
        out: &mut BytesMut,
    ) -> Result<()> {
        if v.is_null() {
            out.put_i32(-1);
            return Ok(());
        }
        if format == FORMAT_BINARY {
            let len_at = out.len();
            out.put_i32(0);
            encode_binary(v, ty, out)?;
            let len = (out.len() - len_at - 4) as i32;
            out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        } else {
            self.text.clear();
            match (ty, v) {
                (DataType::Record(_), Value::Array(items)) => self
                    .text
                    .push_str(&reef_sql::types::text::format_record(items)),
                (DataType::Int2Vector, Value::Array(items)) => self
                    .text
                    .push_str(&reef_sql::types::text::format_vector(items)),
                _ => format_text_into(v, &mut self.text),
            }
            out.put_i32(self.text.len() as i32);
            out.put_slice(self.text.as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_round_trip(v: Value, ty: DataType) {
        let mut buf = BytesMut::new();
        encode_binary(&v, &ty, &mut buf).unwrap();
        assert_eq!(decode_binary(&buf, &ty).unwrap(), v, "{ty}");
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn binary_round_trips_every_type() {
        let iv = Interval {
            months: -14,
            days: 3,
            micros: 86_400_000_001,
        };
        let cases = [
            (DataType::Bool, Value::Bool(true)),
            (DataType::Bool, Value::Bool(false)),
            (DataType::Int16, Value::Int16(i16::MIN)),
            (DataType::Int32, Value::Int32(-7)),
            (DataType::Int64, Value::Int64(i64::MAX)),
            (DataType::Float32, Value::Float32(-0.5)),
            (DataType::Float64, Value::Float64(f64::INFINITY)),
            (DataType::Numeric(None), Value::Numeric(dec("0"))),
            (DataType::Numeric(None), Value::Numeric(dec("1.50"))),
            (
                DataType::Numeric(Some((10, 4))),
                Value::Numeric(dec("-0.0001")),
            ),
            (DataType::Numeric(None), Value::Numeric(dec("100000000"))),
            (
                DataType::Numeric(None),
                Value::Numeric(dec("79228162514264337593543950335")),
            ),
            (
                DataType::Numeric(None),
                Value::Numeric(dec("-0.0000000000000000000000000001")),
            ),
            (
                DataType::Numeric(None),
                Value::Numeric(dec("12345678.87654321")),
            ),
            (DataType::Text, Value::Text("ünïcode".into())),
            (DataType::Varchar(Some(3)), Value::Text("abc".into())),
            (DataType::Char(2), Value::Text("a ".into())),
            (DataType::Bytea, Value::Bytea(vec![0, 255, 1])),
            (DataType::Date, Value::Date(0)),
            (DataType::Date, Value::Date(-800_000)),
            (DataType::Timestamp, Value::Timestamp(1_700_000_000_000_001)),
            (DataType::TimestampTz, Value::TimestampTz(-5)),
            (DataType::Interval, Value::Interval(iv)),
        ];
        for (ty, v) in cases {
            binary_round_trip(v, ty);
        }
    }

    #[test]
    fn binary_layouts_match_postgres() {
        let mut buf = BytesMut::new();
        encode_binary(&Value::Date(PG_EPOCH_DAYS + 1), &DataType::Date, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 1]);

        buf.clear();
        encode_binary(
            &Value::Timestamp(PG_EPOCH_MICROS - 1),
            &DataType::Timestamp,
            &mut buf,
        )
        .unwrap();
        assert_eq!(&buf[..], &(-1i64).to_be_bytes());

        // 1.5 = digits [1, 5000], weight 0, dscale 1.
        buf.clear();
        encode_numeric(&dec("1.5"), &mut buf);
        assert_eq!(&buf[..], &[0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]);

        // -0.0001 = digits [1], weight -1, negative, dscale 4.
        buf.clear();
        encode_numeric(&dec("-0.0001"), &mut buf);
        assert_eq!(&buf[..], &[0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 1]);

        // 100000000 = digits [1], weight 2 (trailing zero digits are dropped).
        buf.clear();
        encode_numeric(&dec("100000000"), &mut buf);
        assert_eq!(&buf[..], &[0, 1, 0, 2, 0, 0, 0, 0, 0, 1]);

        buf.clear();
        let iv = Interval {
            months: 2,
            days: 3,
            micros: 4,
        };
        encode_binary(&Value::Interval(iv), &DataType::Interval, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2]);
    }

    #[test]
    fn numeric_decoding_handles_scales_and_limits() {
        // 12 with dscale 3 -> 12.000.
        let twelve = [0, 1, 0, 0, 0, 0, 0, 3, 0, 12];
        assert_eq!(decode_numeric(&twelve).unwrap().to_string(), "12.000");
        // Digits beyond dscale are truncated: 1.2345 with dscale 2 -> 1.23.
        let v = [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x09, 0x29];
        assert_eq!(decode_numeric(&v).unwrap().to_string(), "1.23");
        // Zero with dscale 40 fits by dropping zeros.
        let zero = [0, 0, 0, 0, 0, 0, 0, 40];
        assert_eq!(decode_numeric(&zero).unwrap(), Decimal::ZERO);
        // 1e40 does not fit.
        let big = [0, 1, 0, 10, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            decode_numeric(&big).unwrap_err().code,
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE
        );
        // NaN is valid PostgreSQL but unsupported here.
        let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        assert_eq!(
            decode_numeric(&nan).unwrap_err().code,
            sqlstate::FEATURE_NOT_SUPPORTED
        );
        // Malformed: digit out of range, wrong length, bad sign.
        for bad in [
            &[0u8, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10][..],
            &[0, 2, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0, 0, 0, 0, 0x12, 0, 0, 0],
            &[0, 0],
        ] {
            assert_eq!(
                decode_numeric(bad).unwrap_err().code,
                sqlstate::INVALID_BINARY_REPRESENTATION
            );
        }
    }

    #[test]
    fn malformed_binary_is_an_error() {
        assert_eq!(
            decode_binary(&[0, 1, 2], &DataType::Int32)
                .unwrap_err()
                .code,
            sqlstate::INVALID_BINARY_REPRESENTATION
        );
        assert_eq!(
            decode_binary(&[], &DataType::Bool).unwrap_err().code,
            sqlstate::INVALID_BINARY_REPRESENTATION
        );
        assert_eq!(
            decode_binary(&[0xff, 0xfe], &DataType::Text)
                .unwrap_err()
                .code,
            CHARACTER_NOT_IN_REPERTOIRE
        );
        assert_eq!(
            decode_binary(b"a\0b", &DataType::Text).unwrap_err().code,
            CHARACTER_NOT_IN_REPERTOIRE
        );
        assert_eq!(
            decode_binary(&[0; 15], &DataType::Interval)
                .unwrap_err()
                .code,
            sqlstate::INVALID_BINARY_REPRESENTATION
        );
        let far = i64::MAX.to_be_bytes();
        assert_eq!(
            decode_binary(&far, &DataType::Timestamp).unwrap_err().code,
            sqlstate::DATETIME_FIELD_OVERFLOW
        );
    }

    #[test]
    fn binary_output_follows_the_column_type() {
        let mut buf = BytesMut::new();
        encode_binary(&Value::Int32(5), &DataType::Int64, &mut buf).unwrap();
        assert_eq!(&buf[..], &5i64.to_be_bytes());
        buf.clear();
        let err = encode_binary(&Value::Int64(1 << 40), &DataType::Int32, &mut buf).unwrap_err();
        assert_eq!(err.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
        let err = encode_binary(&Value::Text("x".into()), &DataType::Int32, &mut buf).unwrap_err();
        assert_eq!(err.code, sqlstate::INTERNAL_ERROR);
    }

    #[test]
    fn params_in_both_formats() {
        assert_eq!(
            decode_param(b"42", FORMAT_TEXT, &DataType::Int64).unwrap(),
            Value::Int64(42)
        );
        assert_eq!(
            decode_param(&42i64.to_be_bytes(), FORMAT_BINARY, &DataType::Int64).unwrap(),
            Value::Int64(42)
        );
        assert_eq!(
            decode_param(b"42", FORMAT_TEXT, &DataType::Unknown).unwrap(),
            Value::Text("42".into())
        );
        assert_eq!(
            decode_param(b"x", FORMAT_TEXT, &DataType::Int32)
                .unwrap_err()
                .code,
            sqlstate::INVALID_TEXT_REPRESENTATION
        );
    }

    #[test]
    fn row_fields_carry_lengths() {
        let mut enc = RowEncoder::default();
        let mut out = BytesMut::new();
        enc.put_field(&Value::Null, &DataType::Int32, FORMAT_TEXT, &mut out)
            .unwrap();
        enc.put_field(&Value::Int32(-12), &DataType::Int32, FORMAT_TEXT, &mut out)
            .unwrap();
        enc.put_field(&Value::Int32(7), &DataType::Int32, FORMAT_BINARY, &mut out)
            .unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(b"-12");
        expected.extend_from_slice(&4i32.to_be_bytes());
        expected.extend_from_slice(&7i32.to_be_bytes());
        assert_eq!(&out[..], &expected[..]);
    }
}
