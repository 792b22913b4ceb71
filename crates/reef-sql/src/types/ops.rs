//! Operators: result types, evaluation, comparison, hashing and LIKE.
//!
//! The rules follow PostgreSQL 15: integer arithmetic keeps the wider
//! operand's width and fails on overflow, `/` on integers truncates toward
//! zero, `%` takes the dividend's sign, numeric division picks its result
//! scale as `select_div_scale` does, and comparisons work across the numeric
//! types and across dates and timestamps. NULL operands give NULL, except for
//! the three-valued `AND` and `OR`.

use std::cmp::Ordering;
use std::hash::Hasher;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use super::datetime::{self, USECS_PER_DAY};
use super::text::{self, numeric_overflow};
use super::{DataType, Interval, Value};
use crate::error::{sqlstate, Result, SqlError};

/// SQLSTATE for an invalid argument to a power function.
pub const INVALID_ARGUMENT_FOR_POWER_FUNCTION: &str = "2201F";
/// SQLSTATE for an invalid argument to a logarithm.
pub const INVALID_ARGUMENT_FOR_LOG: &str = "2201E";

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `||`
    Concat,
    /// `LIKE`
    Like,
    /// `NOT LIKE`
    NotLike,
    /// `ILIKE`
    ILike,
    /// `NOT ILIKE`
    NotILike,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `#`
    BitXor,
    /// `<<`
    ShiftLeft,
    /// `>>`
    ShiftRight,
}

impl BinaryOp {
    /// The operator as PostgreSQL spells it in error messages.
    pub fn symbol(&self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
            BinaryOp::Like => "~~",
            BinaryOp::NotLike => "!~~",
            BinaryOp::ILike => "~~*",
            BinaryOp::NotILike => "!~~*",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "#",
            BinaryOp::ShiftLeft => "<<",
            BinaryOp::ShiftRight => ">>",
        }
    }

    /// True for the six comparison operators.
    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `NOT x`
    Not,
    /// `+x`
    Plus,
    /// `~x`
    BitNot,
}

impl UnaryOp {
    /// The operator as PostgreSQL spells it in error messages.
    pub fn symbol(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "NOT",
            UnaryOp::Plus => "+",
            UnaryOp::BitNot => "~",
        }
    }
}

/// A type's name without its modifier, as PostgreSQL prints argument types
/// in "operator does not exist" and "function does not exist" errors.
pub fn type_display(ty: &DataType) -> &'static str {
    match ty {
        DataType::Bool => "boolean",
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Numeric(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "character varying",
        DataType::Char(_) => "character",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp without time zone",
        DataType::TimestampTz => "timestamp with time zone",
        DataType::Interval => "interval",
        DataType::Unknown => "unknown",
        DataType::Int2Vector => "int2vector",
        DataType::Record(_) => "record",
        DataType::Array(e) => match type_display(e) {
            "boolean" => "boolean[]",
            "smallint" => "smallint[]",
            "integer" => "integer[]",
            "bigint" => "bigint[]",
            "text" => "text[]",
            "character varying" => "character varying[]",
            _ => "anyarray",
        },
    }
}

fn no_operator(op: BinaryOp, l: &DataType, r: &DataType) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!("operator does not exist: {} {} {}", type_display(l), op.symbol(), type_display(r)),
    )
    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

fn no_unary_operator(op: UnaryOp, t: &DataType) -> SqlError {
    SqlError::new(sqlstate::UNDEFINED_FUNCTION, format!("operator does not exist: {} {}", op.symbol(), type_display(t)))
        .with_hint("No operator matches the given name and argument type. You might need to add an explicit type cast.")
}

/// The width rank of an integer type.
fn int_rank(t: &DataType) -> Option<u8> {
    match t {
        DataType::Int16 => Some(1),
        DataType::Int32 => Some(2),
        DataType::Int64 => Some(3),
        _ => None,
    }
}

/// The result type of arithmetic between two numeric-category types.
fn numeric_promote(l: &DataType, r: &DataType) -> Option<DataType> {
    use DataType::*;
    if !l.is_numeric() || !r.is_numeric() {
        return None;
    }
    Some(match (l, r) {
        (Float32, Float32) => Float32,
        (Float32 | Float64, _) | (_, Float32 | Float64) => Float64,
        (Numeric(_), _) | (_, Numeric(_)) => Numeric(None),
        _ => {
            if int_rank(l)? >= int_rank(r)? {
                *l
            } else {
                *r
            }
        }
    })
}

/// The type of `op` applied to `l` and `r`, or 42883 if no such operator
/// exists. An `Unknown` operand (an untyped literal) takes the other
/// operand's type.
pub fn binary_result_type(op: BinaryOp, l: &DataType, r: &DataType) -> Result<DataType> {
    use DataType::*;
    let (lt, rt) = match (l, r) {
        (Unknown, Unknown) => (Text, Text),
        (Unknown, other) => (unknown_as(other, op), *other),
        (other, Unknown) => (*other, unknown_as(other, op)),
        _ => (*l, *r),
    };
    let bad = || no_operator(op, l, r);
    match op {
        BinaryOp::And | BinaryOp::Or => {
            for t in [l, r] {
                if !matches!(t, Bool | Unknown) {
                    return Err(SqlError::new(
                        sqlstate::DATATYPE_MISMATCH,
                        format!(
                            "argument of {} must be type boolean, not type {}",
                            op.symbol(),
                            type_display(t)
                        ),
                    ));
                }
            }
            Ok(Bool)
        }
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => {
            if *l == Unknown || *r == Unknown || super::cast::common_type(&lt, &rt).is_some() {
                Ok(Bool)
            } else {
                Err(bad())
            }
        }
        BinaryOp::Like | BinaryOp::NotLike | BinaryOp::ILike | BinaryOp::NotILike => {
            if (lt.is_string() && rt.is_string())
                || (lt == Bytea && rt == Bytea && matches!(op, BinaryOp::Like | BinaryOp::NotLike))
            {
                Ok(Bool)
            } else {
                Err(bad())
            }
        }
        BinaryOp::Concat => {
            if lt.element().is_some() && rt.element().is_some() {
                Ok(lt)
            } else if lt == Bytea && rt == Bytea {
                Ok(Bytea)
            } else if lt.is_string() || rt.is_string() {
                Ok(Text)
            } else {
                Err(bad())
            }
        }
        BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor => {
            match (int_rank(&lt), int_rank(&rt)) {
                (Some(a), Some(b)) => Ok(if a >= b { lt } else { rt }),
                _ => Err(bad()),
            }
        }
        BinaryOp::ShiftLeft | BinaryOp::ShiftRight => match (int_rank(&lt), &rt) {
            (Some(_), Int16 | Int32) => Ok(lt),
            _ => Err(bad()),
        },
        BinaryOp::Pow => match (&lt, &rt) {
            (a, b) if a.is_numeric() && b.is_numeric() => {
                if matches!(a, Float32 | Float64) || matches!(b, Float32 | Float64) {
                    Ok(Float64)
                } else if matches!(a, Numeric(_)) || matches!(b, Numeric(_)) {
                    Ok(Numeric(None))
                } else {
                    Ok(Float64)
                }
            }
            _ => Err(bad()),
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
            if let Some(t) = numeric_promote(&lt, &rt) {
                if op == BinaryOp::Mod && matches!(t, Float32 | Float64) {
                    return Err(bad());
                }
                return Ok(t);
            }
            let small_int = |t: &DataType| matches!(t, Int16 | Int32);
            let ts_like = |t: &DataType| matches!(t, Date | Timestamp | TimestampTz);
            let as_ts = |t: &DataType| if *t == Date { Timestamp } else { *t };
            match (op, &lt, &rt) {
                (BinaryOp::Add, Date, t) | (BinaryOp::Add, t, Date) if small_int(t) => Ok(Date),
                (BinaryOp::Sub, Date, t) if small_int(t) => Ok(Date),
                (BinaryOp::Sub, Date, Date) => Ok(Int32),
                (BinaryOp::Add, t, Interval) | (BinaryOp::Add, Interval, t) if ts_like(t) => {
                    Ok(as_ts(t))
                }
                (BinaryOp::Sub, t, Interval) if ts_like(t) => Ok(as_ts(t)),
                (BinaryOp::Sub, a, b) if ts_like(a) && ts_like(b) => Ok(Interval),
                (BinaryOp::Add | BinaryOp::Sub, Interval, Interval) => Ok(Interval),
                (BinaryOp::Mul, Interval, t) | (BinaryOp::Mul, t, Interval) if t.is_numeric() => {
                    Ok(Interval)
                }
                (BinaryOp::Div, Interval, t) if t.is_numeric() => Ok(Interval),
                _ => Err(bad()),
            }
        }
    }
}

/// The type an untyped literal takes opposite `other` under `op`.
fn unknown_as(other: &DataType, op: BinaryOp) -> DataType {
    match (op, other) {
        (BinaryOp::Concat, _) => DataType::Text,
        (
            BinaryOp::Add | BinaryOp::Sub,
            DataType::Date | DataType::Timestamp | DataType::TimestampTz,
        ) => DataType::Interval,
        (_, t) if t.is_string() => DataType::Text,
        (_, t) => *t,
    }
}

/// The result type of a unary operator.
pub fn unary_result_type(op: UnaryOp, t: &DataType) -> Result<DataType> {
    match (op, t) {
        (UnaryOp::Not, DataType::Bool | DataType::Unknown) => Ok(DataType::Bool),
        (UnaryOp::Not, other) => Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "argument of NOT must be type boolean, not type {}",
                type_display(other)
            ),
        )),
        (UnaryOp::Neg | UnaryOp::Plus, t) if t.is_numeric() || *t == DataType::Interval => {
            Ok(t.base())
        }
        (UnaryOp::BitNot, t) if t.is_integer() => Ok(*t),
        _ => Err(no_unary_operator(op, t)),
    }
}

// ---------------------------------------------------------------------------
// Evaluation.

/// An integer width, for overflow checks and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IntWidth {
    I16,
    I32,
    I64,
}

impl IntWidth {
    fn name(self) -> &'static str {
        match self {
            IntWidth::I16 => "smallint",
            IntWidth::I32 => "integer",
            IntWidth::I64 => "bigint",
        }
    }

    fn make(self, v: i128) -> Result<Value> {
        let err = || SqlError::out_of_range(self.name());
        Ok(match self {
            IntWidth::I16 => Value::Int16(i16::try_from(v).map_err(|_| err())?),
            IntWidth::I32 => Value::Int32(i32::try_from(v).map_err(|_| err())?),
            IntWidth::I64 => Value::Int64(i64::try_from(v).map_err(|_| err())?),
        })
    }
}

fn int_of(v: &Value) -> Option<(i64, IntWidth)> {
    match v {
        Value::Int16(i) => Some((*i as i64, IntWidth::I16)),
        Value::Int32(i) => Some((*i as i64, IntWidth::I32)),
        Value::Int64(i) => Some((*i, IntWidth::I64)),
        _ => None,
    }
}

/// A value's number as a decimal, for integer and numeric values.
pub fn to_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Int16(i) => Some(Decimal::from(*i)),
        Value::Int32(i) => Some(Decimal::from(*i)),
        Value::Int64(i) => Some(Decimal::from(*i)),
        Value::Numeric(d) => Some(*d),
        _ => None,
    }
}

/// A numeric value as a double, as PostgreSQL's implicit casts to
/// `double precision` compute it.
pub fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int16(i) => Some(*i as f64),
        Value::Int32(i) => Some(*i as f64),
        Value::Int64(i) => Some(*i as f64),
        Value::Float32(f) => Some(*f as f64),
        Value::Float64(f) => Some(*f),
        Value::Numeric(d) => Some(decimal_to_f64(d)),
        _ => None,
    }
}

/// Converts a decimal to the nearest double (normalising first so that equal
/// decimals of different scales convert identically).
pub fn decimal_to_f64(d: &Decimal) -> f64 {
    let n = d.normalize();
    if n.scale() == 0 {
        if let Some(i) = n.to_i128() {
            return i as f64;
        }
    }
    n.to_string().parse().unwrap_or(0.0)
}

/// The error for a float result that overflowed.
pub fn float_overflow() -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: overflow",
    )
}

/// The error for a float result that underflowed to zero.
pub fn float_underflow() -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: underflow",
    )
}

/// Checks a float result the way PostgreSQL's `check_float8_val` does.
fn check_float(r: f64, inf_ok: bool, zero_ok: bool) -> Result<f64> {
    if r.is_infinite() && !inf_ok {
        return Err(float_overflow());
    }
    if r == 0.0 && !zero_ok {
        return Err(float_underflow());
    }
    Ok(r)
}

fn float_arith(op: BinaryOp, a: f64, b: f64) -> Result<f64> {
    let any_inf = a.is_infinite() || b.is_infinite();
    match op {
        BinaryOp::Add => check_float(a + b, any_inf, true),
        BinaryOp::Sub => check_float(a - b, any_inf, true),
        BinaryOp::Mul => check_float(a * b, any_inf, a == 0.0 || b == 0.0),
        BinaryOp::Div => {
            if b == 0.0 && !a.is_nan() {
                return Err(SqlError::division_by_zero());
            }
            check_float(a / b, a.is_infinite(), a == 0.0 || b.is_infinite())
        }
        BinaryOp::Pow => float_pow(a, b),
        _ => Err(SqlError::internal(format!("bad float operator {op:?}"))),
    }
}

fn float32_arith(op: BinaryOp, a: f32, b: f32) -> Result<f32> {
    let any_inf = a.is_infinite() || b.is_infinite();
    let check = |r: f32, inf_ok: bool, zero_ok: bool| -> Result<f32> {
        if r.is_infinite() && !inf_ok {
            return Err(float_overflow());
        }
        if r == 0.0 && !zero_ok {
            return Err(float_underflow());
        }
        Ok(r)
    };
    match op {
        BinaryOp::Add => check(a + b, any_inf, true),
        BinaryOp::Sub => check(a - b, any_inf, true),
        BinaryOp::Mul => check(a * b, any_inf, a == 0.0 || b == 0.0),
        BinaryOp::Div => {
            if b == 0.0 && !a.is_nan() {
                return Err(SqlError::division_by_zero());
            }
            check(a / b, a.is_infinite(), a == 0.0 || b.is_infinite())
        }
        _ => Err(SqlError::internal(format!("bad float operator {op:?}"))),
    }
}

/// `double precision ^ double precision` with PostgreSQL's error cases.
pub fn float_pow(a: f64, b: f64) -> Result<f64> {
    if a == 0.0 && b < 0.0 {
        return Err(SqlError::new(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "zero raised to a negative power is undefined",
        ));
    }
    if a < 0.0 && b.is_finite() && b.floor() != b {
        return Err(SqlError::new(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    let r = a.powf(b);
    let finite_args = a.is_finite() && b.is_finite();
    if r.is_infinite() && finite_args {
        return Err(float_overflow());
    }
    if r == 0.0 && finite_args && a != 0.0 {
        return Err(float_underflow());
    }
    Ok(r)
}

/// The decimal weight (position of the leading digit: 0 for units, -1 for
/// tenths) of a nonzero decimal.
pub(crate) fn decimal_exponent(d: &Decimal) -> i64 {
    let m = d.mantissa().unsigned_abs();
    let digits = if m == 0 { 1 } else { m.ilog10() as i64 + 1 };
    digits - 1 - d.scale() as i64
}

/// The base-10000 weight and leading base-10000 digit of a decimal, as
/// PostgreSQL's numeric stores them (zero gives (0, 0)).
fn nbase_weight_digit(d: &Decimal) -> (i64, u128) {
    if d.is_zero() {
        return (0, 0);
    }
    let e = decimal_exponent(d);
    let weight = e.div_euclid(4);
    let m = d.mantissa().unsigned_abs();
    let k = -(d.scale() as i64) - 4 * weight;
    let digit = if k >= 0 {
        m * 10u128.pow(k as u32)
    } else {
        m / 10u128.pow((-k) as u32)
    };
    (weight, digit)
}

/// The result scale PostgreSQL picks for numeric division
/// (`select_div_scale`): at least 16 significant digits, and no fewer
/// decimals than either input; capped at 28, the most a `Decimal` holds.
pub fn numeric_div_scale(a: &Decimal, b: &Decimal) -> u32 {
    let (w1, f1) = nbase_weight_digit(a);
    let (w2, f2) = nbase_weight_digit(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (16 - qweight * 4)
        .max(a.scale() as i64)
        .max(b.scale() as i64)
        .max(0);
    rscale.min(text::MAX_NUMERIC_SCALE as i64) as u32
}

/// Rounds a decimal to `scale` places (half away from zero) and pads it out
/// to exactly that scale where the mantissa allows.
pub fn round_to_scale(d: Decimal, scale: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    if r.scale() < scale {
        r.rescale(scale);
    }
    if r.is_zero() && r.is_sign_negative() {
        r.set_sign_positive(true);
    }
    r
}

/// Numeric division with PostgreSQL's result scale.
pub fn numeric_div(a: &Decimal, b: &Decimal) -> Result<Decimal> {
    if b.is_zero() {
        return Err(SqlError::division_by_zero());
    }
    let scale = numeric_div_scale(a, b);
    let q = a.checked_div(*b).ok_or_else(numeric_overflow)?;
    Ok(round_to_scale(q, scale))
}

/// Numeric `^` with PostgreSQL's result scale: at least 16 significant
/// digits (fewer when `Decimal`'s 28-digit limit forbids).
pub fn numeric_pow(base: &Decimal, exp: &Decimal) -> Result<Decimal> {
    if base.is_zero() && exp.is_sign_negative() && !exp.is_zero() {
        return Err(SqlError::new(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "zero raised to a negative power is undefined",
        ));
    }
    let integral = exp.fract().is_zero();
    if base.is_sign_negative() && !base.is_zero() && !integral {
        return Err(SqlError::new(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if integral {
        if let Some(n) = exp.to_i64().filter(|n| i32::try_from(*n).is_ok()) {
            let rscale = 16u32.max(base.scale()).min(text::MAX_NUMERIC_SCALE);
            if exp.is_zero() {
                return Ok(round_to_scale(Decimal::ONE, rscale));
            }
            if base.is_zero() {
                return Ok(round_to_scale(Decimal::ZERO, rscale));
            }
            let shrinks = (base.abs() > Decimal::ONE) == (n < 0);
            let r = if n >= 0 {
                base.checked_powu(n as u64)
            } else {
                base.checked_powu(n.unsigned_abs())
                    .and_then(|p| Decimal::ONE.checked_div(p))
            };
            return match r {
                Some(r) => Ok(round_to_scale(r, rscale)),
                // A result too small for the scale rounds to zero.
                None if shrinks => Ok(round_to_scale(Decimal::ZERO, rscale)),
                None => Err(numeric_overflow()),
            };
        }
        // An integral exponent beyond the int32 range: the result is 1,
        // zero at the display scale, or an overflow.
        let rscale = 16u32.max(base.scale()).min(text::MAX_NUMERIC_SCALE);
        let mag = base.abs();
        if mag == Decimal::ONE {
            let odd = (exp % Decimal::TWO) != Decimal::ZERO;
            let one = if base.is_sign_negative() && odd {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            return Ok(round_to_scale(one, rscale));
        }
        if base.is_zero() || (mag > Decimal::ONE) == exp.is_sign_negative() {
            return Ok(round_to_scale(Decimal::ZERO, rscale));
        }
        return Err(numeric_overflow());
    }
    if base.is_zero() {
        return Ok(round_to_scale(Decimal::ZERO, 16));
    }
    let ln_base = numeric_ln_raw(base)?;
    let val = decimal_to_f64(&ln_base) * decimal_to_f64(exp) * std::f64::consts::LOG10_E;
    let val = val.clamp(-1000.0, 1000.0);
    let rscale = (16 - val as i64)
        .max(base.scale() as i64)
        .max(exp.scale() as i64)
        .max(0);
    let rscale = rscale.min(text::MAX_NUMERIC_SCALE as i64) as u32;
    let prod = ln_base.checked_mul(*exp).ok_or_else(numeric_overflow)?;
    let r = numeric_exp_raw(&prod)?;
    Ok(round_to_scale(r, rscale))
}

/// e^x to about 28 significant digits.
pub(crate) fn numeric_exp_raw(x: &Decimal) -> Result<Decimal> {
    // Reduce: e^x = (e^(x/2^k))^(2^k) with |x/2^k| < 0.5.
    let mut k = 0u32;
    let mut r = *x;
    while r.abs() > Decimal::new(5, 1) {
        r /= Decimal::TWO;
        k += 1;
        if k > 200 {
            return Err(numeric_overflow());
        }
    }
    // Taylor series.
    let mut sum = Decimal::ONE;
    let mut term = Decimal::ONE;
    for i in 1..60 {
        term = term.checked_mul(r).ok_or_else(numeric_overflow)? / Decimal::from(i);
        if term.is_zero() {
            break;
        }
        sum += term;
    }
    for _ in 0..k {
        sum = sum.checked_mul(sum).ok_or_else(numeric_overflow)?;
    }
    Ok(sum)
}

/// ln(x) for x > 0 to about 28 significant digits.
pub(crate) fn numeric_ln_raw(x: &Decimal) -> Result<Decimal> {
    if x.is_sign_negative() || x.is_zero() {
        return Err(SqlError::internal("ln of a non-positive number"));
    }
    // x = m * 10^e with m in [1, 10): ln x = ln m + e ln 10.
    let e = decimal_exponent(x);
    let ten = Decimal::TEN;
    let m = if e >= 0 {
        *x / ten.powu(e as u64)
    } else {
        *x * ten.powu((-e) as u64)
    };
    // ln m via atanh series: ln m = 2 atanh((m-1)/(m+1)), after square roots to
    // bring m close to 1.
    let mut m = m;
    let mut doublings = 0u32;
    while (m - Decimal::ONE).abs() > Decimal::new(1, 2) {
        m = m.sqrt().ok_or_else(|| SqlError::internal("sqrt failed"))?;
        doublings += 1;
    }
    let z = (m - Decimal::ONE) / (m + Decimal::ONE);
    let z2 = z * z;
    let mut term = z;
    let mut sum = Decimal::ZERO;
    let mut n = 1u32;
    while !term.is_zero() && n < 200 {
        sum += term / Decimal::from(n);
        term *= z2;
        n += 2;
    }
    let ln_m = sum * Decimal::TWO * Decimal::from(1u64 << doublings);
    let ln_10 = Decimal::from_i128_with_scale(23_025_850_929_940_456_840_179_914_547, 28);
    Ok(ln_m + ln_10 * Decimal::from(e))
}

fn numeric_arith(op: BinaryOp, a: &Decimal, b: &Decimal) -> Result<Value> {
    let r = match op {
        BinaryOp::Add => a.checked_add(*b),
        BinaryOp::Sub => a.checked_sub(*b),
        BinaryOp::Mul => a.checked_mul(*b),
        BinaryOp::Div => return numeric_div(a, b).map(Value::Numeric),
        BinaryOp::Mod => {
            if b.is_zero() {
                return Err(SqlError::division_by_zero());
            }
            a.checked_rem(*b).map(|r| {
                let mut r = r;
                let scale = a.scale().max(b.scale());
                if r.scale() < scale {
                    r.rescale(scale);
                }
                r
            })
        }
        BinaryOp::Pow => return numeric_pow(a, b).map(Value::Numeric),
        _ => return Err(SqlError::internal(format!("bad numeric operator {op:?}"))),
    };
    let mut r = r.ok_or_else(numeric_overflow)?;
    // PostgreSQL keeps the exact result scale: the larger input scale for
    // addition and subtraction, the sum of the scales for multiplication.
    let want = match op {
        BinaryOp::Mul => (a.scale() + b.scale()).min(text::MAX_NUMERIC_SCALE),
        _ => a.scale().max(b.scale()),
    };
    if r.scale() < want {
        r.rescale(want);
    }
    if r.is_zero() && r.is_sign_negative() {
        r.set_sign_positive(true);
    }
    Ok(Value::Numeric(r))
}

fn int_arith(op: BinaryOp, a: i64, b: i64, w: IntWidth) -> Result<Value> {
    let (a, b) = (a as i128, b as i128);
    let r = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => {
            if b == 0 {
                return Err(SqlError::division_by_zero());
            }
            a / b
        }
        BinaryOp::Mod => {
            if b == 0 {
                return Err(SqlError::division_by_zero());
            }
            a % b
        }
        BinaryOp::BitAnd => a & b,
        BinaryOp::BitOr => a | b,
        BinaryOp::BitXor => a ^ b,
        BinaryOp::ShiftLeft | BinaryOp::ShiftRight => {
            let shift = b as u32;
            let left = op == BinaryOp::ShiftLeft;
            return Ok(match w {
                IntWidth::I16 => {
                    let v = a as i32;
                    Value::Int16(
                        (if left {
                            v.wrapping_shl(shift)
                        } else {
                            v.wrapping_shr(shift)
                        }) as i16,
                    )
                }
                IntWidth::I32 => {
                    let v = a as i32;
                    Value::Int32(if left {
                        v.wrapping_shl(shift)
                    } else {
                        v.wrapping_shr(shift)
                    })
                }
                IntWidth::I64 => {
                    let v = a as i64;
                    Value::Int64(if left {
                        v.wrapping_shl(shift)
                    } else {
                        v.wrapping_shr(shift)
                    })
                }
            });
        }
        _ => return Err(SqlError::internal(format!("bad integer operator {op:?}"))),
    };
    w.make(r)
}

/// Evaluates a binary operator. NULL operands give NULL except for the
/// three-valued `AND` (false wins) and `OR` (true wins).
pub fn eval_binary(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    match op {
        BinaryOp::And => {
            return Ok(match (as_bool(l)?, as_bool(r)?) {
                (Some(false), _) | (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            })
        }
        BinaryOp::Or => {
            return Ok(match (as_bool(l)?, as_bool(r)?) {
                (Some(true), _) | (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            })
        }
        _ => {}
    }
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    // An untyped literal that reached evaluation as text takes the other
    // operand's type, as PostgreSQL resolves unknown-type literals.
    if op != BinaryOp::Concat {
        if let (Value::Text(s), other) = (l, r) {
            if let Some(t) = coerce_target(other, op) {
                return eval_binary(op, &text::parse_text(s, &t)?, r);
            }
        }
        if let (other, Value::Text(s)) = (l, r) {
            if let Some(t) = coerce_target(other, op) {
                return eval_binary(op, l, &text::parse_text(s, &t)?);
            }
        }
    }
    match op {
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => {
            let Some(ord) = compare_values(l, r) else {
                return Ok(Value::Null);
            };
            let b = match op {
                BinaryOp::Eq => ord == Ordering::Equal,
                BinaryOp::NotEq => ord != Ordering::Equal,
                BinaryOp::Lt => ord == Ordering::Less,
                BinaryOp::LtEq => ord != Ordering::Greater,
                BinaryOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            Ok(Value::Bool(b))
        }
        BinaryOp::Concat => match (l, r) {
            (Value::Array(a), Value::Array(b)) => {
                Ok(Value::Array(a.iter().chain(b).cloned().collect()))
            }
            (Value::Bytea(a), Value::Bytea(b)) => {
                let mut out = Vec::with_capacity(a.len() + b.len());
                out.extend_from_slice(a);
                out.extend_from_slice(b);
                Ok(Value::Bytea(out))
            }
            _ => {
                // Non-string operands convert as by a cast to text, so a
                // boolean reads `true`, not its output form `t`.
                let mut out = String::new();
                for v in [l, r] {
                    match v {
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        other => text::format_text_into(other, &mut out),
                    }
                }
                Ok(Value::Text(out))
            }
        },
        BinaryOp::Like | BinaryOp::NotLike | BinaryOp::ILike | BinaryOp::NotILike => {
            let ci = matches!(op, BinaryOp::ILike | BinaryOp::NotILike);
            let negate = matches!(op, BinaryOp::NotLike | BinaryOp::NotILike);
            let m = match (l, r) {
                (Value::Text(s), Value::Text(p)) => like_match(s, p, Some('\\'), ci)?,
                (Value::Bytea(s), Value::Bytea(p)) if !ci => like_match_bytes(s, p)?,
                _ => return Err(no_operator(op, &l.data_type(), &r.data_type())),
            };
            Ok(Value::Bool(m != negate))
        }
        _ => eval_arith(op, l, r),
    }
}

/// The type a text operand should be parsed as opposite `other`.
fn coerce_target(other: &Value, op: BinaryOp) -> Option<DataType> {
    match other {
        Value::Text(_) | Value::Null => None,
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_)
            if matches!(op, BinaryOp::Add | BinaryOp::Sub) =>
        {
            Some(DataType::Interval)
        }
        v => Some(v.data_type()),
    }
}

fn as_bool(v: &Value) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Text(s) => text::parse_bool(s).map(Some),
        other => Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "argument of AND must be type boolean, not type {}",
                type_display(&other.data_type())
            ),
        )),
    }
}

fn eval_arith(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    use Value::*;
    let bad = || no_operator(op, &l.data_type(), &r.data_type());
    // Integers.
    if let (Some((a, wa)), Some((b, wb))) = (int_of(l), int_of(r)) {
        if op == BinaryOp::Pow {
            return float_pow(a as f64, b as f64).map(Float64);
        }
        if matches!(op, BinaryOp::ShiftLeft | BinaryOp::ShiftRight) {
            return int_arith(op, a, b, wa);
        }
        return int_arith(op, a, b, wa.max(wb));
    }
    match (l, r) {
        (Float32(a), Float32(b)) if op != BinaryOp::Pow && op != BinaryOp::Mod => {
            return float32_arith(op, *a, *b).map(Float32)
        }
        (Float32(_) | Float64(_), _) | (_, Float32(_) | Float64(_))
            if l.data_type().is_numeric() && r.data_type().is_numeric() =>
        {
            if op == BinaryOp::Mod
                || !matches!(
                    op,
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow
                )
            {
                return Err(bad());
            }
            let (a, b) = (to_f64(l).ok_or_else(bad)?, to_f64(r).ok_or_else(bad)?);
            return float_arith(op, a, b).map(Float64);
        }
        _ => {}
    }
    if let (Some(a), Some(b)) = (to_decimal(l), to_decimal(r)) {
        if !matches!(
            op,
            BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Mod
                | BinaryOp::Pow
        ) {
            return Err(bad());
        }
        return numeric_arith(op, &a, &b);
    }
    let days_int = |v: &Value| match v {
        Int16(i) => Some(*i as i64),
        Int32(i) => Some(*i as i64),
        _ => None,
    };
    let ts_of = |v: &Value| match v {
        Date(d) => Some(datetime::date_to_timestamp(*d)),
        Timestamp(t) | TimestampTz(t) => Some(*t),
        _ => None,
    };
    let rewrap = |like: &Value, ts: i64| match like {
        TimestampTz(_) => TimestampTz(ts),
        _ => Timestamp(ts),
    };
    match (op, l, r) {
        (BinaryOp::Add, Date(d), n) | (BinaryOp::Add, n, Date(d)) if days_int(n).is_some() => {
            date_plus_days(*d, days_int(n).unwrap_or(0))
        }
        (BinaryOp::Sub, Date(d), n) if days_int(n).is_some() => {
            date_plus_days(*d, -days_int(n).unwrap_or(0))
        }
        (BinaryOp::Sub, Date(a), Date(b)) => Ok(Int32(
            i32::try_from(*a as i64 - *b as i64).map_err(|_| SqlError::out_of_range("integer"))?,
        )),
        (BinaryOp::Add, t, Interval(iv)) | (BinaryOp::Add, Interval(iv), t)
            if ts_of(t).is_some() =>
        {
            Ok(rewrap(
                t,
                datetime::timestamp_add_interval(ts_of(t).unwrap_or(0), iv)?,
            ))
        }
        (BinaryOp::Sub, t, Interval(iv)) if ts_of(t).is_some() => Ok(rewrap(
            t,
            datetime::timestamp_add_interval(ts_of(t).unwrap_or(0), &datetime::interval_neg(iv)?)?,
        )),
        (BinaryOp::Sub, a, b) if ts_of(a).is_some() && ts_of(b).is_some() => Ok(Interval(
            datetime::timestamp_diff(ts_of(a).unwrap_or(0), ts_of(b).unwrap_or(0))?,
        )),
        (BinaryOp::Add, Interval(a), Interval(b)) => Ok(Interval(datetime::interval_add(a, b)?)),
        (BinaryOp::Sub, Interval(a), Interval(b)) => Ok(Interval(datetime::interval_add(
            a,
            &datetime::interval_neg(b)?,
        )?)),
        (BinaryOp::Mul, Interval(iv), n) | (BinaryOp::Mul, n, Interval(iv))
            if to_f64(n).is_some() =>
        {
            Ok(Interval(datetime::interval_mul(
                iv,
                to_f64(n).unwrap_or(0.0),
            )?))
        }
        (BinaryOp::Div, Interval(iv), n) if to_f64(n).is_some() => {
            let f = to_f64(n).unwrap_or(0.0);
            if f == 0.0 {
                return Err(SqlError::division_by_zero());
            }
            Ok(Interval(datetime::interval_mul(iv, 1.0 / f)?))
        }
        _ => Err(bad()),
    }
}

fn date_plus_days(d: i32, n: i64) -> Result<Value> {
    let r = i32::try_from(d as i64 + n).map_err(|_| datetime::date_out_of_range())?;
    datetime::days_to_ymd(r)?;
    Ok(Value::Date(r))
}

/// Evaluates a unary operator; NULL gives NULL.
pub fn eval_unary(op: UnaryOp, v: &Value) -> Result<Value> {
    use Value::*;
    if v.is_null() {
        return Ok(Null);
    }
    Ok(match (op, v) {
        (UnaryOp::Not, Bool(b)) => Bool(!b),
        (UnaryOp::Not, Text(s)) => Bool(!text::parse_bool(s)?),
        (UnaryOp::Plus, v) if v.data_type().is_numeric() || matches!(v, Interval(_)) => v.clone(),
        (UnaryOp::Neg, Int16(i)) => Int16(
            i.checked_neg()
                .ok_or_else(|| SqlError::out_of_range("smallint"))?,
        ),
        (UnaryOp::Neg, Int32(i)) => Int32(
            i.checked_neg()
                .ok_or_else(|| SqlError::out_of_range("integer"))?,
        ),
        (UnaryOp::Neg, Int64(i)) => Int64(
            i.checked_neg()
                .ok_or_else(|| SqlError::out_of_range("bigint"))?,
        ),
        (UnaryOp::Neg, Float32(f)) => Float32(-f),
        (UnaryOp::Neg, Float64(f)) => Float64(-f),
        (UnaryOp::Neg, Numeric(d)) => {
            let mut n = -*d;
            if n.is_zero() {
                n.set_sign_positive(true);
            }
            Numeric(n)
        }
        (UnaryOp::Neg, Interval(iv)) => Interval(datetime::interval_neg(iv)?),
        (UnaryOp::BitNot, Int16(i)) => Int16(!i),
        (UnaryOp::BitNot, Int32(i)) => Int32(!i),
        (UnaryOp::BitNot, Int64(i)) => Int64(!i),
        (op, v) => return Err(no_unary_operator(op, &v.data_type())),
    })
}

// ---------------------------------------------------------------------------
// Comparison and hashing.

/// A number reduced to a canonical form that comparison and hashing agree
/// on: an exact integer when the value is integral and fits in an `i64`,
/// otherwise a double.
#[derive(Clone, Copy)]
enum CanonNum {
    Int(i64),
    Float(f64),
}

fn canon_f64(f: f64) -> CanonNum {
    // The range check admits -2^63 and excludes 2^63 exactly.
    if f.is_finite()
        && f.fract() == 0.0
        && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
    {
        CanonNum::Int(f as i64)
    } else {
        CanonNum::Float(f)
    }
}

fn canon_decimal(d: &Decimal) -> CanonNum {
    if d.fract().is_zero() {
        if let Some(i) = d.to_i64() {
            return CanonNum::Int(i);
        }
    }
    CanonNum::Float(decimal_to_f64(d))
}

fn canon(v: &Value) -> Option<CanonNum> {
    Some(match v {
        Value::Int16(i) => CanonNum::Int(*i as i64),
        Value::Int32(i) => CanonNum::Int(*i as i64),
        Value::Int64(i) => CanonNum::Int(*i),
        Value::Float32(f) => canon_f64(*f as f64),
        Value::Float64(f) => canon_f64(*f),
        Value::Numeric(d) => canon_decimal(d),
        _ => return None,
    })
}

/// Orders doubles as PostgreSQL does: NaN above everything (and equal to
/// itself), -0 equal to 0.
pub fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn canon_cmp(a: CanonNum, b: CanonNum) -> Ordering {
    match (a, b) {
        (CanonNum::Int(x), CanonNum::Int(y)) => x.cmp(&y),
        (CanonNum::Float(x), CanonNum::Float(y)) => float_cmp(x, y),
        (CanonNum::Int(x), CanonNum::Float(y)) => int_float_cmp(x, y),
        (CanonNum::Float(x), CanonNum::Int(y)) => int_float_cmp(y, x).reverse(),
    }
}

/// Compares an integer with a double that is not an integral value in the
/// `i64` range (so the two are never equal).
fn int_float_cmp(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    match (i as f64).partial_cmp(&f) {
        // Only f = 2^63 can compare equal after rounding, and i is below it.
        Some(Ordering::Equal) | None => Ordering::Less,
        Some(o) => o,
    }
}

fn numeric_family_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let float_involved = matches!(a, Value::Float32(_) | Value::Float64(_))
        || matches!(b, Value::Float32(_) | Value::Float64(_));
    if !float_involved {
        if let (Some((x, _)), Some((y, _))) = (int_of(a), int_of(b)) {
            return Some(x.cmp(&y));
        }
        return Some(to_decimal(a)?.cmp(&to_decimal(b)?));
    }
    Some(canon_cmp(canon(a)?, canon(b)?))
}

/// A rank per type family, to order values of unrelated types consistently.
fn family_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 255,
        Value::Bool(_) => 1,
        Value::Int16(_)
        | Value::Int32(_)
        | Value::Int64(_)
        | Value::Float32(_)
        | Value::Float64(_)
        | Value::Numeric(_) => 2,
        Value::Text(_) => 3,
        Value::Bytea(_) => 4,
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => 5,
        Value::Interval(_) => 6,
        Value::Array(_) => 8,
    }
}

fn datetime_micros(v: &Value) -> Option<i128> {
    match v {
        Value::Date(d) => Some(*d as i128 * USECS_PER_DAY as i128),
        Value::Timestamp(t) | Value::TimestampTz(t) => Some(*t as i128),
        _ => None,
    }
}

/// Compares two values; None if either is NULL. Numbers compare across
/// widths and kinds (floats order NaN highest and -0 = 0), dates compare
/// with timestamps as their midnight, intervals by their total length
/// (a month counted as 30 days), strings byte-wise (the C collation).
/// Values of unrelated types order by type family, so sorting stays total.
pub fn compare_values(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    if a.is_null() || b.is_null() {
        return None;
    }
    let ord = match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Text(x), Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bytea(x), Bytea(y)) => x.cmp(y),
        (Date(x), Date(y)) => x.cmp(y),
        (Interval(x), Interval(y)) => x.cmp(y),
        (Array(x), Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                match sort_cmp(a, b) {
                    Ordering::Equal => {}
                    o => return Some(o),
                }
            }
            x.len().cmp(&y.len())
        }
        _ => {
            let (fa, fb) = (family_rank(a), family_rank(b));
            if fa != fb {
                return Some(fa.cmp(&fb));
            }
            match fa {
                2 => numeric_family_cmp(a, b)?,
                5 => datetime_micros(a)?.cmp(&datetime_micros(b)?),
                _ => Ordering::Equal,
            }
        }
    };
    Some(ord)
}

/// A total order for sorting: NULL sorts after every value (callers apply
/// NULLS FIRST / LAST themselves), otherwise [`compare_values`].
pub fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => compare_values(a, b).unwrap_or(Ordering::Equal),
    }
}

/// Hashes a value consistently with [`compare_values`] equality: values
/// that compare equal hash equally across integer widths, numeric scales
/// and floats (`1::int2`, `1::int8`, `1.00::numeric` and `1.0::float8`),
/// across dates and timestamps, and across intervals of equal length. All
/// NULLs hash alike, for GROUP BY.
pub fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(*b as u8);
        }
        Value::Text(s) => {
            h.write_u8(3);
            h.write(s.as_bytes());
            h.write_u8(0xff);
        }
        Value::Bytea(b) => {
            h.write_u8(4);
            h.write(b);
            h.write_u8(0xff);
        }
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => {
            h.write_u8(5);
            h.write_i128(datetime_micros(v).unwrap_or(0));
        }
        Value::Interval(iv) => {
            h.write_u8(6);
            h.write_i128(iv.as_micros_total());
        }
        Value::Array(items) => {
            h.write_u8(8);
            h.write_usize(items.len());
            for item in items {
                hash_value(item, h);
            }
        }
        _ => match canon(v) {
            Some(CanonNum::Int(i)) => {
                h.write_u8(2);
                h.write_i64(i);
            }
            Some(CanonNum::Float(f)) => {
                h.write_u8(7);
                let bits = if f.is_nan() {
                    f64::NAN.to_bits()
                } else if f == 0.0 {
                    0
                } else {
                    f.to_bits()
                };
                h.write_u64(bits);
            }
            None => h.write_u8(0xfe),
        },
    }
}

/// A wrapper giving a value `Eq` and `Hash` consistent with
/// [`compare_values`], for hash tables keyed by values (GROUP BY, hash
/// joins, DISTINCT). NULL equals NULL here, as grouping requires.
#[derive(Debug, Clone)]
pub struct HashKey(pub Value);

impl PartialEq for HashKey {
    fn eq(&self, other: &Self) -> bool {
        match (self.0.is_null(), other.0.is_null()) {
            (true, true) => true,
            (false, false) => compare_values(&self.0, &other.0) == Some(Ordering::Equal),
            _ => false,
        }
    }
}

impl Eq for HashKey {}

impl std::hash::Hash for HashKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(&self.0, state);
    }
}

/// Compares two rows of values element by element with [`sort_cmp`].
pub fn sort_cmp_rows(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = sort_cmp(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

// ---------------------------------------------------------------------------
// LIKE.

#[derive(Debug, Clone, PartialEq, Eq)]
enum LikeToken {
    Literal(char),
    AnyOne,
    AnyMany,
}

/// A compiled LIKE / ILIKE pattern, reusable across rows.
#[derive(Debug, Clone)]
pub struct LikePattern {
    tokens: Vec<LikeToken>,
    case_insensitive: bool,
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

impl LikePattern {
    /// Compiles a pattern: `%` matches any run of characters, `_` any one
    /// character, and the escape character (default backslash; `None` for
    /// none) makes the next character literal. A pattern ending in the escape
    /// character fails with 22025.
    pub fn compile(
        pattern: &str,
        escape: Option<char>,
        case_insensitive: bool,
    ) -> Result<LikePattern> {
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                match chars.next() {
                    Some(n) => tokens.push(LikeToken::Literal(if case_insensitive {
                        fold(n)
                    } else {
                        n
                    })),
                    None => {
                        return Err(SqlError::new(
                            sqlstate::INVALID_ESCAPE_SEQUENCE,
                            "LIKE pattern must not end with escape character",
                        ))
                    }
                }
            } else if c == '%' {
                if tokens.last() != Some(&LikeToken::AnyMany) {
                    tokens.push(LikeToken::AnyMany);
                }
            } else if c == '_' {
                tokens.push(LikeToken::AnyOne);
            } else {
                tokens.push(LikeToken::Literal(if case_insensitive {
                    fold(c)
                } else {
                    c
                }));
            }
        }
        Ok(LikePattern {
            tokens,
            case_insensitive,
        })
    }

    /// True if the whole of `s` matches the pattern.
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = if self.case_insensitive {
            s.chars().map(fold).collect()
        } else {
            s.chars().collect()
        };
        let p = &self.tokens;
        let (mut si, mut pi) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < chars.len() {
            match p.get(pi) {
                Some(LikeToken::AnyMany) => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some(LikeToken::AnyOne) => {
                    si += 1;
                    pi += 1;
                }
                Some(LikeToken::Literal(c)) if *c == chars[si] => {
                    si += 1;
                    pi += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == LikeToken::AnyMany)
    }
}

/// Matches `s` against a LIKE pattern (see [`LikePattern::compile`]).
pub fn like_match(
    s: &str,
    pattern: &str,
    escape: Option<char>,
    case_insensitive: bool,
) -> Result<bool> {
    Ok(LikePattern::compile(pattern, escape, case_insensitive)?.matches(s))
}

/// LIKE on `bytea`, byte by byte with backslash as the escape.
fn like_match_bytes(s: &[u8], pattern: &[u8]) -> Result<bool> {
    // Map bytes to chars one-to-one (Latin-1) and reuse the char matcher.
    let s: String = s.iter().map(|b| *b as char).collect();
    let p: String = pattern.iter().map(|b| *b as char).collect();
    like_match(&s, &p, Some('\\'), false)
}

/// Compares two intervals (PostgreSQL's `interval_cmp`).
pub fn interval_cmp(a: &Interval, b: &Interval) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::text::{format_text, parse_text};
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str, ty: DataType) -> Value {
        parse_text(s, &ty).unwrap()
    }

    fn num(s: &str) -> Value {
        v(s, DataType::Numeric(None))
    }

    fn ev(op: BinaryOp, l: Value, r: Value) -> String {
        format_text(&eval_binary(op, &l, &r).unwrap())
    }

    fn err(op: BinaryOp, l: Value, r: Value) -> SqlError {
        eval_binary(op, &l, &r).unwrap_err()
    }

    fn h(v: &Value) -> u64 {
        let mut s = DefaultHasher::new();
        hash_value(v, &mut s);
        s.finish()
    }

    #[test]
    fn result_types_follow_postgresql() {
        use DataType::*;
        let t = |op, l, r| binary_result_type(op, &l, &r).unwrap();
        assert_eq!(t(BinaryOp::Add, Int32, Int32), Int32);
        assert_eq!(t(BinaryOp::Add, Int16, Int16), Int16);
        assert_eq!(t(BinaryOp::Mul, Int16, Int32), Int32);
        assert_eq!(t(BinaryOp::Add, Int32, Int64), Int64);
        assert_eq!(
            t(BinaryOp::Div, Int32, Numeric(Some((5, 2)))),
            Numeric(None)
        );
        assert_eq!(t(BinaryOp::Add, Int32, Float32), Float64);
        assert_eq!(t(BinaryOp::Mul, Float32, Float32), Float32);
        assert_eq!(t(BinaryOp::Add, Numeric(None), Float32), Float64);
        assert_eq!(t(BinaryOp::Pow, Int32, Int32), Float64);
        assert_eq!(t(BinaryOp::Pow, Numeric(None), Int32), Numeric(None));
        assert_eq!(t(BinaryOp::Add, Date, Int32), Date);
        assert_eq!(t(BinaryOp::Sub, Date, Date), Int32);
        assert_eq!(t(BinaryOp::Add, Date, Interval), Timestamp);
        assert_eq!(t(BinaryOp::Sub, Timestamp, Timestamp), Interval);
        assert_eq!(t(BinaryOp::Sub, Date, Timestamp), Interval);
        assert_eq!(t(BinaryOp::Add, TimestampTz, Interval), TimestampTz);
        assert_eq!(t(BinaryOp::Mul, Interval, Float64), Interval);
        assert_eq!(t(BinaryOp::Concat, Text, Int32), Text);
        assert_eq!(t(BinaryOp::Concat, Unknown, Unknown), Text);
        assert_eq!(t(BinaryOp::Lt, Int16, Numeric(None)), Bool);
        assert_eq!(t(BinaryOp::Eq, Date, Timestamp), Bool);
        assert_eq!(t(BinaryOp::Add, Int32, Unknown), Int32);
        assert_eq!(t(BinaryOp::ShiftLeft, Int64, Int32), Int64);
        let e = binary_result_type(BinaryOp::Add, &Int32, &Text).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("42883", "operator does not exist: integer + text")
        );
        assert_eq!(
            binary_result_type(BinaryOp::Mod, &Float64, &Int32)
                .unwrap_err()
                .code,
            "42883"
        );
        assert_eq!(
            binary_result_type(BinaryOp::Concat, &Int32, &Int32)
                .unwrap_err()
                .code,
            "42883"
        );
        assert_eq!(
            binary_result_type(BinaryOp::ShiftLeft, &Int64, &Int64)
                .unwrap_err()
                .code,
            "42883"
        );
        assert_eq!(
            binary_result_type(BinaryOp::Add, &Date, &Int64)
                .unwrap_err()
                .code,
            "42883"
        );
        assert_eq!(
            binary_result_type(BinaryOp::Eq, &Int32, &Text)
                .unwrap_err()
                .code,
            "42883"
        );
        let e = binary_result_type(BinaryOp::And, &Bool, &Int32).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "42804",
                "argument of AND must be type boolean, not type integer"
            )
        );
    }

    #[test]
    fn integer_arithmetic() {
        assert_eq!(ev(BinaryOp::Div, Value::Int32(-7), Value::Int32(2)), "-3");
        assert_eq!(ev(BinaryOp::Mod, Value::Int32(-7), Value::Int32(2)), "-1");
        assert_eq!(ev(BinaryOp::Mod, Value::Int32(7), Value::Int32(-2)), "1");
        assert_eq!(
            ev(BinaryOp::Mod, Value::Int32(i32::MIN), Value::Int32(-1)),
            "0"
        );
        assert_eq!(
            err(BinaryOp::Div, Value::Int32(i32::MIN), Value::Int32(-1)).message,
            "integer out of range"
        );
        assert_eq!(
            err(BinaryOp::Add, Value::Int16(32767), Value::Int16(1)).message,
            "smallint out of range"
        );
        assert_eq!(
            ev(BinaryOp::Add, Value::Int16(32767), Value::Int32(1)),
            "32768"
        );
        assert_eq!(
            err(BinaryOp::Mul, Value::Int64(i64::MAX), Value::Int32(2)).message,
            "bigint out of range"
        );
        let e = err(BinaryOp::Div, Value::Int32(5), Value::Int32(0));
        assert_eq!((e.code, e.message.as_str()), ("22012", "division by zero"));
        assert_eq!(
            err(BinaryOp::Mod, Value::Int32(5), Value::Int16(0)).code,
            "22012"
        );
        assert_eq!(
            ev(BinaryOp::ShiftLeft, Value::Int16(1), Value::Int32(15)),
            "-32768"
        );
        assert_eq!(
            ev(BinaryOp::ShiftLeft, Value::Int32(1), Value::Int32(33)),
            "2"
        );
        assert_eq!(
            ev(BinaryOp::ShiftRight, Value::Int32(-8), Value::Int32(1)),
            "-4"
        );
        assert_eq!(ev(BinaryOp::BitXor, Value::Int32(5), Value::Int32(3)), "6");
        assert_eq!(
            format_text(&eval_unary(UnaryOp::BitNot, &Value::Int32(5)).unwrap()),
            "-6"
        );
        assert_eq!(
            eval_unary(UnaryOp::Neg, &Value::Int16(i16::MIN))
                .unwrap_err()
                .message,
            "smallint out of range"
        );
        assert_eq!(ev(BinaryOp::Pow, Value::Int32(2), Value::Int32(3)), "8");
    }

    #[test]
    fn numeric_and_float_arithmetic() {
        assert_eq!(
            ev(BinaryOp::Div, num("1"), num("3")),
            "0.33333333333333333333"
        );
        assert_eq!(
            ev(BinaryOp::Div, num("10"), Value::Int32(4)),
            "2.5000000000000000"
        );
        assert_eq!(
            ev(BinaryOp::Div, num("100000"), num("3")),
            "33333.333333333333"
        );
        assert_eq!(
            ev(BinaryOp::Div, num("2"), num("0.3")),
            "6.6666666666666667"
        );
        assert_eq!(
            ev(BinaryOp::Div, num("1.000000"), num("3")),
            "0.33333333333333333333"
        );
        assert_eq!(
            ev(BinaryOp::Div, num("123456789.123"), num("1000000000000")),
            "0.000123456789123000000000"
        );
        assert_eq!(ev(BinaryOp::Mod, num("5.5"), Value::Int32(2)), "1.5");
        assert_eq!(ev(BinaryOp::Mod, num("-7.5"), Value::Int32(2)), "-1.5");
        assert_eq!(ev(BinaryOp::Mul, Value::Int32(0), num("7.000")), "0.000");
        assert_eq!(ev(BinaryOp::Add, num("1.5"), num("1.50")), "3.00");
        assert_eq!(ev(BinaryOp::Sub, num("1.5"), num("1.5")), "0.0");
        assert_eq!(err(BinaryOp::Div, num("1"), num("0")).code, "22012");
        assert_eq!(
            ev(BinaryOp::Pow, num("2"), Value::Int32(3)),
            "8.0000000000000000"
        );
        assert_eq!(
            ev(BinaryOp::Pow, num("1.5"), Value::Int32(i32::MIN)),
            "0.0000000000000000"
        );
        assert_eq!(
            err(BinaryOp::Pow, num("-2.25"), Value::Int64(i64::MAX)).code,
            "22003"
        );
        assert_eq!(err(BinaryOp::Pow, num("0"), num("-1")).code, "2201F");
        assert_eq!(
            ev(BinaryOp::Div, Value::Float64(1.0), Value::Float64(3.0)),
            "0.3333333333333333"
        );
        assert_eq!(
            ev(BinaryOp::Add, Value::Int32(1), Value::Float32(1.5)),
            "2.5"
        );
        assert_eq!(
            err(BinaryOp::Div, Value::Float64(1.0), Value::Int32(0)).code,
            "22012"
        );
        let e = err(BinaryOp::Mul, Value::Float64(1e308), Value::Int32(10));
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "value out of range: overflow")
        );
        assert_eq!(
            err(BinaryOp::Mul, Value::Float64(1e-320), Value::Float64(1e-10)).message,
            "value out of range: underflow"
        );
        assert_eq!(
            ev(BinaryOp::Mul, Value::Float64(1e-308), Value::Float64(1e-10)),
            "1e-318"
        );
        assert_eq!(
            ev(
                BinaryOp::Add,
                Value::Float64(f64::INFINITY),
                Value::Int32(1)
            ),
            "Infinity"
        );
        assert_eq!(
            err(
                BinaryOp::Pow,
                Value::Float64(-8.0),
                Value::Float64(1.0 / 3.0)
            )
            .code,
            "2201F"
        );
    }

    #[test]
    fn date_time_arithmetic() {
        let d = v("2024-01-31", DataType::Date);
        let iv = v("1 month", DataType::Interval);
        assert_eq!(ev(BinaryOp::Add, d.clone(), iv), "2024-02-29 00:00:00");
        assert_eq!(ev(BinaryOp::Add, d.clone(), Value::Int32(1)), "2024-02-01");
        assert_eq!(
            ev(BinaryOp::Sub, d.clone(), v("2024-01-01", DataType::Date)),
            "30"
        );
        let ts = v("2024-03-01", DataType::Timestamp);
        assert_eq!(
            ev(
                BinaryOp::Sub,
                ts,
                v("2024-01-01 12:00", DataType::Timestamp)
            ),
            "59 days 12:00:00"
        );
        assert_eq!(
            ev(
                BinaryOp::Mul,
                v("1 day", DataType::Interval),
                Value::Float64(1.5)
            ),
            "1 day 12:00:00"
        );
        assert_eq!(
            ev(
                BinaryOp::Div,
                v("1 hour", DataType::Interval),
                Value::Int32(3)
            ),
            "00:20:00"
        );
        assert_eq!(
            ev(
                BinaryOp::Eq,
                v("1 mon", DataType::Interval),
                v("30 days", DataType::Interval)
            ),
            "t"
        );
        // An untyped literal meets a typed operand.
        assert_eq!(
            ev(BinaryOp::Add, d.clone(), Value::Text("1 day".into())),
            "2024-02-01 00:00:00"
        );
        assert_eq!(ev(BinaryOp::Lt, d, Value::Text("2024-02-01".into())), "t");
        assert_eq!(
            err(BinaryOp::Add, Value::Int32(1), Value::Text("x".into())).code,
            "22P02"
        );
    }

    #[test]
    fn three_valued_logic_and_nulls() {
        use Value::{Bool, Null};
        assert_eq!(
            eval_binary(BinaryOp::And, &Bool(false), &Null).unwrap(),
            Bool(false)
        );
        assert_eq!(
            eval_binary(BinaryOp::And, &Null, &Bool(true)).unwrap(),
            Null
        );
        assert_eq!(
            eval_binary(BinaryOp::Or, &Null, &Bool(true)).unwrap(),
            Bool(true)
        );
        assert_eq!(
            eval_binary(BinaryOp::Or, &Bool(false), &Null).unwrap(),
            Null
        );
        assert_eq!(
            eval_binary(BinaryOp::Add, &Value::Int32(1), &Null).unwrap(),
            Null
        );
        assert_eq!(eval_binary(BinaryOp::Eq, &Null, &Null).unwrap(), Null);
        assert_eq!(
            eval_binary(BinaryOp::Concat, &Value::Text("a".into()), &Null).unwrap(),
            Null
        );
        assert_eq!(eval_unary(UnaryOp::Not, &Null).unwrap(), Null);
        assert_eq!(
            ev(
                BinaryOp::Concat,
                Value::Text("abc".into()),
                Value::Bool(true)
            ),
            "abctrue"
        );
        assert_eq!(
            ev(BinaryOp::Concat, Value::Int32(1), Value::Text("abc".into())),
            "1abc"
        );
    }

    #[test]
    fn comparisons_cross_types() {
        use std::cmp::Ordering::*;
        let c = |a: Value, b: Value| compare_values(&a, &b).unwrap();
        assert_eq!(c(Value::Int16(1), Value::Int64(1)), Equal);
        assert_eq!(c(Value::Int32(1), num("1.00")), Equal);
        assert_eq!(c(num("0.5"), Value::Float64(0.5)), Equal);
        assert_eq!(c(Value::Int64(2), Value::Float64(1.5)), Greater);
        assert_eq!(
            c(Value::Float64(f64::NAN), Value::Float64(f64::INFINITY)),
            Greater
        );
        assert_eq!(c(Value::Float64(f64::NAN), Value::Float64(f64::NAN)), Equal);
        assert_eq!(c(Value::Float64(-0.0), Value::Int32(0)), Equal);
        assert_eq!(
            c(
                Value::Int64(i64::MAX),
                Value::Float64(9.223_372_036_854_776e18)
            ),
            Less
        );
        assert_eq!(c(Value::Date(1), Value::Timestamp(86_400_000_000)), Equal);
        assert_eq!(c(Value::Text("a".into()), Value::Text("B".into())), Greater);
        assert_eq!(compare_values(&Value::Null, &Value::Int32(1)), None);
        assert_eq!(sort_cmp(&Value::Null, &Value::Int32(1)), Greater);
        assert_eq!(sort_cmp(&Value::Null, &Value::Null), Equal);
    }

    #[test]
    fn hashing_agrees_with_equality() {
        let ones = [
            Value::Int16(1),
            Value::Int32(1),
            Value::Int64(1),
            num("1.0"),
            num("1.000"),
            Value::Float64(1.0),
            Value::Float32(1.0),
        ];
        for a in &ones {
            for b in &ones {
                assert_eq!(compare_values(a, b), Some(Ordering::Equal));
                assert_eq!(h(a), h(b), "{a:?} {b:?}");
            }
        }
        assert_eq!(h(&num("0.5")), h(&Value::Float64(0.5)));
        assert_eq!(h(&Value::Float64(-0.0)), h(&Value::Int32(0)));
        assert_eq!(h(&Value::Float64(f64::NAN)), h(&Value::Float64(-f64::NAN)));
        assert_eq!(h(&Value::Date(1)), h(&Value::Timestamp(86_400_000_000)));
        assert_eq!(
            h(&v("1 mon", DataType::Interval)),
            h(&v("30 days", DataType::Interval))
        );
        assert_ne!(h(&Value::Int32(1)), h(&Value::Int32(2)));
        assert_eq!(HashKey(Value::Null), HashKey(Value::Null));
        assert_eq!(HashKey(Value::Int16(3)), HashKey(num("3.0")));
    }

    #[test]
    fn like_patterns() {
        assert!(like_match("abc", "a%", Some('\\'), false).unwrap());
        assert!(like_match("abc", "a_c", Some('\\'), false).unwrap());
        assert!(!like_match("abc", "a_", Some('\\'), false).unwrap());
        assert!(like_match("a%", "a\\%", Some('\\'), false).unwrap());
        assert!(!like_match("ab", "a\\%", Some('\\'), false).unwrap());
        assert!(like_match("ab", "a#b", Some('#'), false).unwrap());
        assert!(like_match("a_c", "a\\_c", Some('\\'), false).unwrap());
        assert!(like_match("ABC", "a%c", Some('\\'), true).unwrap());
        assert!(like_match("xxaybyc", "%a%b%c", Some('\\'), false).unwrap());
        assert!(!like_match("xxaybyd", "%a%b%c", Some('\\'), false).unwrap());
        assert!(like_match("", "%", Some('\\'), false).unwrap());
        assert!(like_match("héllo", "h_llo", Some('\\'), false).unwrap());
        assert!(like_match("a\\b", "a\\b", None, false).unwrap());
        let e = like_match("ab", "a\\", Some('\\'), false).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22025", "LIKE pattern must not end with escape character")
        );
        assert_eq!(
            ev(
                BinaryOp::NotLike,
                Value::Text("abc".into()),
                Value::Text("a%".into())
            ),
            "f"
        );
        assert_eq!(
            ev(
                BinaryOp::ILike,
                Value::Text("A".into()),
                Value::Text("a".into())
            ),
            "t"
        );
    }
}
