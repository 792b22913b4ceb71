//! SQL data types and values.
//!
//! `DataType` is a column's or expression's type; `Value` is one datum.
//! Dates are days since 1970-01-01, timestamps are microseconds since
//! 1970-01-01 00:00:00 (UTC for `timestamptz`), as in chrono; the wire front
//! end converts to PostgreSQL's 2000-01-01 epoch for the binary format.

use std::cmp::Ordering;
use std::fmt;

pub use rust_decimal::Decimal;

/// A SQL data type, with its type modifier where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int16,
    /// `integer`.
    Int32,
    /// `bigint`.
    Int64,
    /// `real`.
    Float32,
    /// `double precision`.
    Float64,
    /// `numeric(p, s)`; `None` is unconstrained `numeric`.
    Numeric(Option<(u32, u32)>),
    /// `text`.
    Text,
    /// `varchar(n)`; `None` is unbounded `varchar`.
    Varchar(Option<u32>),
    /// `char(n)` (PostgreSQL's `bpchar`), blank-padded to n.
    Char(u32),
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `timestamp without time zone`.
    Timestamp,
    /// `timestamp with time zone`.
    TimestampTz,
    /// `interval`.
    Interval,
    /// The type of an untyped NULL or string literal before resolution.
    Unknown,
    /// A one-dimensional array (lower bound 1) of the element type, which is one of
    /// [`ELEMENT_TYPES`]. Arrays are values of queries only (the catalog's, `ARRAY[...]`,
    /// `array_agg`); no table column has one.
    Array(&'static DataType),
    /// `int2vector`: the catalog's 0-based list of column numbers (`pg_index.indkey`),
    /// written as space-separated numbers.
    Int2Vector,
    /// A composite value with these named fields (PostgreSQL's `record`), held as a
    /// [`Value::Array`] of the fields. Only functions return one
    /// (`information_schema._pg_expandarray`); `(r).field` reads a field.
    Record(&'static [(&'static str, DataType)]),
}

/// The element types an array can have (each a type without its modifier).
pub static ELEMENT_TYPES: [DataType; 15] = [
    DataType::Bool,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::Float32,
    DataType::Float64,
    DataType::Numeric(None),
    DataType::Text,
    DataType::Varchar(None),
    DataType::Char(1),
    DataType::Bytea,
    DataType::Date,
    DataType::Timestamp,
    DataType::TimestampTz,
    DataType::Interval,
];

/// PostgreSQL's array type OIDs, by element type OID.
const ARRAY_OIDS: [(u32, u32); 15] = [
    (16, 1000),
    (21, 1005),
    (23, 1007),
    (20, 1016),
    (700, 1021),
    (701, 1022),
    (1700, 1231),
    (25, 1009),
    (1043, 1015),
    (1042, 1014),
    (17, 1001),
    (1082, 1182),
    (1114, 1115),
    (1184, 1185),
    (1186, 1187),
];

impl DataType {
    /// PostgreSQL's name for the type, as `format_type` prints it.
    pub fn pg_name(&self) -> String {
        match self {
            DataType::Bool => "boolean".into(),
            DataType::Int16 => "smallint".into(),
            DataType::Int32 => "integer".into(),
            DataType::Int64 => "bigint".into(),
            DataType::Float32 => "real".into(),
            DataType::Float64 => "double precision".into(),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "character varying".into(),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(n) => format!("character({n})"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp without time zone".into(),
            DataType::TimestampTz => "timestamp with time zone".into(),
            DataType::Interval => "interval".into(),
            DataType::Unknown => "unknown".into(),
            DataType::Array(e) => format!("{}[]", e.pg_name()),
            DataType::Int2Vector => "int2vector".into(),
            DataType::Record(_) => "record".into(),
        }
    }

    /// The array type with elements of type `t` (text for an unknown or unsupported element).
    pub fn array_of(t: DataType) -> DataType {
        let base = match t {
            DataType::Int2Vector => DataType::Int16,
            t => t.base(),
        };
        DataType::Array(
            ELEMENT_TYPES
                .iter()
                .find(|e| **e == base)
                .unwrap_or(&ELEMENT_TYPES[7]),
        )
    }

    /// The element type of an array type (`int2vector`'s is `smallint`).
    pub fn element(&self) -> Option<DataType> {
        match self {
            DataType::Array(e) => Some(**e),
            DataType::Int2Vector => Some(DataType::Int16),
            _ => None,
        }
    }

    /// PostgreSQL's type OID.
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Bytea => 17,
            DataType::Int64 => 20,
            DataType::Int16 => 21,
            DataType::Int32 => 23,
            DataType::Text => 25,
            DataType::Float32 => 700,
            DataType::Float64 => 701,
            DataType::Unknown => 705,
            DataType::Char(_) => 1042,
            DataType::Varchar(_) => 1043,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Interval => 1186,
            DataType::Numeric(_) => 1700,
            DataType::Int2Vector => 22,
            DataType::Record(_) => 2249,
            DataType::Array(e) => {
                let eo = e.oid();
                ARRAY_OIDS
                    .iter()
                    .find(|(el, _)| *el == eo)
                    .map(|(_, a)| *a)
                    .unwrap_or(1009)
            }
        }
    }

    /// The type with the given PostgreSQL OID, if reefdb supports it.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            17 => DataType::Bytea,
            20 => DataType::Int64,
            21 => DataType::Int16,
            23 => DataType::Int32,
            25 => DataType::Text,
            700 => DataType::Float32,
            701 => DataType::Float64,
            705 => DataType::Unknown,
            1042 => DataType::Char(1),
            1043 => DataType::Varchar(None),
            1082 => DataType::Date,
            1114 => DataType::Timestamp,
            1184 => DataType::TimestampTz,
            1186 => DataType::Interval,
            1700 => DataType::Numeric(None),
            22 => DataType::Int2Vector,
            other => {
                let (el, _) = ARRAY_OIDS.iter().find(|(_, a)| *a == other)?;
                DataType::array_of(DataType::from_oid(*el)?)
            }
        })
    }

    /// The fixed length PostgreSQL reports in RowDescription, or -1.
    pub fn type_len(&self) -> i16 {
        match self {
            DataType::Bool => 1,
            DataType::Int16 => 2,
            DataType::Int32 | DataType::Float32 | DataType::Date => 4,
            DataType::Int64 | DataType::Float64 | DataType::Timestamp | DataType::TimestampTz => 8,
            DataType::Interval => 16,
            _ => -1,
        }
    }

    /// The type modifier PostgreSQL reports in RowDescription, or -1.
    pub fn type_modifier(&self) -> i32 {
        match self {
            DataType::Varchar(Some(n)) | DataType::Char(n) => *n as i32 + 4,
            DataType::Varchar(None) => -1,
            DataType::Numeric(Some((p, s))) => (((*p as i32) << 16) | *s as i32) + 4,
            _ => -1,
        }
    }

    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int16 | DataType::Int32 | DataType::Int64)
    }

    /// True for every numeric type (integers, numeric, floats).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Numeric(_)
        )
    }

    /// True for the character string types.
    pub fn is_string(&self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_)
        )
    }

    /// The type without its modifier (`varchar(10)` -> `varchar`).
    pub fn base(&self) -> DataType {
        match self {
            DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Char(_) => DataType::Char(1),
            other => *other,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pg_name())
    }
}

/// An `interval`: months, days and microseconds kept apart, as in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Whole months.
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

impl Interval {
    /// The interval as microseconds, counting a month as 30 days and a day
    /// as 24 hours, which is how PostgreSQL compares intervals.
    pub fn as_micros_total(&self) -> i128 {
        const DAY: i128 = 86_400_000_000;
        self.months as i128 * 30 * DAY + self.days as i128 * DAY + self.micros as i128
    }
}

impl PartialOrd for Interval {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Interval {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_micros_total().cmp(&other.as_micros_total())
    }
}

/// One SQL datum.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    Int16(i16),
    /// `integer`.
    Int32(i32),
    /// `bigint`.
    Int64(i64),
    /// `real`.
    Float32(f32),
    /// `double precision`.
    Float64(f64),
    /// `numeric`.
    Numeric(Decimal),
    /// `text`, `varchar` and `char` values.
    Text(String),
    /// `bytea`.
    Bytea(Vec<u8>),
    /// `date`: days since 1970-01-01.
    Date(i32),
    /// `timestamp`: microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// `timestamptz`: microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// `interval`.
    Interval(Interval),
    /// An array's elements (arrays and `int2vector`).
    Array(Vec<Value>),
}

impl Value {
    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value's own type (`Unknown` for NULL).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Unknown,
            Value::Bool(_) => DataType::Bool,
            Value::Int16(_) => DataType::Int16,
            Value::Int32(_) => DataType::Int32,
            Value::Int64(_) => DataType::Int64,
            Value::Float32(_) => DataType::Float32,
            Value::Float64(_) => DataType::Float64,
            Value::Numeric(_) => DataType::Numeric(None),
            Value::Text(_) => DataType::Text,
            Value::Bytea(_) => DataType::Bytea,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::TimestampTz(_) => DataType::TimestampTz,
            Value::Interval(_) => DataType::Interval,
            Value::Array(items) => DataType::array_of(
                items
                    .iter()
                    .map(Value::data_type)
                    .find(|t| *t != DataType::Unknown)
                    .unwrap_or(DataType::Text),
            ),
        }
    }
}

pub mod cast;
pub mod catalog_funcs;
pub mod datetime;
pub mod functions;
pub mod ops;
pub mod text;

pub use ops::compare_values;
