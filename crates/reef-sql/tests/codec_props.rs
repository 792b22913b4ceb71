//! Property tests of the key and row encodings: key byte order equals value
//! order (with NULL first), keys and rows round-trip, and composite keys
//! compare lexicographically.

use std::cmp::Ordering;

use proptest::prelude::*;
use reef_sql::codec::{
    decode_key_value, decode_key_value_desc, decode_row, encode_key, encode_key_value,
    encode_key_value_desc, encode_row,
};
use reef_sql::types::ops::sort_cmp;
use reef_sql::{DataType, Decimal, Interval, Value};

/// The number of column kinds `column` can generate.
const KINDS: usize = 11;

/// A strategy for the values of one column kind, NULLs included, and the
/// column type to decode them as.
fn column(kind: usize) -> (BoxedStrategy<Value>, DataType) {
    let (inner, ty): (BoxedStrategy<Value>, DataType) = match kind {
        0 => (
            prop_oneof![
                any::<i16>().prop_map(Value::Int16),
                any::<i32>().prop_map(Value::Int32),
                any::<i64>().prop_map(Value::Int64),
                (-3i16..3).prop_map(Value::Int16),
                (-3i64..3).prop_map(Value::Int64),
            ]
            .boxed(),
            DataType::Int64,
        ),
        1 => (
            prop_oneof![
                any::<f64>().prop_map(Value::Float64),
                any::<f32>().prop_map(Value::Float32),
                Just(Value::Float64(-0.0)),
                Just(Value::Float64(0.0)),
                Just(Value::Float64(f64::NAN)),
                Just(Value::Float64(-f64::NAN)),
                Just(Value::Float64(f64::INFINITY)),
                Just(Value::Float64(f64::NEG_INFINITY)),
                Just(Value::Float64(f64::MIN_POSITIVE / 4.0)),
                (-5i32..5).prop_map(|i| Value::Float64(i as f64 / 2.0)),
            ]
            .boxed(),
            DataType::Float64,
        ),
        2 => (
            prop_oneof![
                (any::<i64>(), 0u32..20, 0u32..6).prop_map(|(m, s, k)| {
                    Value::Numeric(Decimal::from_i128_with_scale(
                        m as i128 * 10i128.pow(k),
                        s + k,
                    ))
                }),
                (-1000i64..1000, 0u32..4, 0u32..3).prop_map(|(m, s, k)| {
                    Value::Numeric(Decimal::from_i128_with_scale(
                        m as i128 * 10i128.pow(k),
                        s + k,
                    ))
                }),
                (any::<i128>(), 0u32..=28).prop_map(|(m, s)| {
                    Value::Numeric(Decimal::from_i128_with_scale(m % (1i128 << 95), s))
                }),
                Just(Value::Numeric(Decimal::MAX)),
                Just(Value::Numeric(Decimal::MIN)),
            ]
            .boxed(),
            DataType::Numeric(None),
        ),
        3 => (
            proptest::collection::vec(
                prop_oneof![
                    Just('\0'),
                    Just('a'),
                    Just('b'),
                    Just('\u{1}'),
                    Just('é'),
                    Just('\u{10FFFF}'),
                    any::<char>()
                ],
                0..14,
            )
            .prop_map(|cs| Value::Text(cs.into_iter().collect()))
            .boxed(),
            DataType::Text,
        ),
        4 => (
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(0xffu8), any::<u8>()],
                0..20,
            )
            .prop_map(Value::Bytea)
            .boxed(),
            DataType::Bytea,
        ),
        5 => (any::<i32>().prop_map(Value::Date).boxed(), DataType::Date),
        6 => (
            any::<i64>().prop_map(Value::Timestamp).boxed(),
            DataType::Timestamp,
        ),
        7 => (
            any::<i64>().prop_map(Value::TimestampTz).boxed(),
            DataType::TimestampTz,
        ),
        8 => (
            prop_oneof![
                (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, micros)| {
                    Value::Interval(Interval {
                        months,
                        days,
                        micros,
                    })
                }),
                (-2i32..2, -60i32..60, -3i64..3).prop_map(|(months, days, micros)| {
                    Value::Interval(Interval {
                        months,
                        days,
                        micros: micros * 86_400_000_000,
                    })
                }),
            ]
            .boxed(),
            DataType::Interval,
        ),
        9 => (any::<bool>().prop_map(Value::Bool).boxed(), DataType::Bool),
        _ => (
            (-100i16..100).prop_map(Value::Int16).boxed(),
            DataType::Int16,
        ),
    };
    (prop_oneof![1 => Just(Value::Null), 8 => inner].boxed(), ty)
}

/// The order keys must follow: `sort_cmp` with NULL first instead of last,
/// and intervals of equal length ordered by (months, days), since their
/// keys keep those fields.
fn key_cmp(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => sort_cmp(a, b).then_with(|| match (a, b) {
            (Value::Interval(x), Value::Interval(y)) => (x.months, x.days).cmp(&(y.months, y.days)),
            _ => Ordering::Equal,
        }),
    }
}

fn key_of(v: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    encode_key_value(&mut b, v);
    b
}

/// Two values of the same (random) column kind.
fn pair() -> impl Strategy<Value = (Value, Value, DataType)> {
    (0..KINDS).prop_flat_map(|k| {
        let (s, ty) = column(k);
        (s.clone(), s, Just(ty))
    })
}

/// Two rows of the same 2-3 random column kinds.
fn row_pair() -> impl Strategy<Value = (Vec<Value>, Vec<Value>, Vec<DataType>)> {
    proptest::collection::vec(0..KINDS, 2..=3).prop_flat_map(|kinds| {
        let cols: Vec<(BoxedStrategy<Value>, DataType)> =
            kinds.iter().map(|k| column(*k)).collect();
        let strategies: Vec<BoxedStrategy<Value>> = cols.iter().map(|(s, _)| s.clone()).collect();
        let types: Vec<DataType> = cols.iter().map(|(_, t)| *t).collect();
        // Bias the second row towards sharing a prefix with the first.
        (strategies.clone(), strategies, Just(types), any::<u8>()).prop_map(
            |(a, mut b, types, share)| {
                let n = (share as usize) % (a.len() + 1);
                b[..n].clone_from_slice(&a[..n]);
                (a, b, types)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn key_order_matches_value_order((a, b, _ty) in pair()) {
        let (ka, kb) = (key_of(&a), key_of(&b));
        prop_assert_eq!(ka.cmp(&kb), key_cmp(&a, &b), "{:?} vs {:?}", a, b);
    }

    #[test]
    fn desc_key_order_is_reversed((a, b, ty) in pair()) {
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        encode_key_value_desc(&mut ka, &a);
        encode_key_value_desc(&mut kb, &b);
        prop_assert_eq!(ka.cmp(&kb), key_cmp(&a, &b).reverse());
        ka.extend_from_slice(&kb);
        let mut input: &[u8] = &ka;
        let da = decode_key_value_desc(&mut input, &ty).unwrap();
        let db = decode_key_value_desc(&mut input, &ty).unwrap();
        prop_assert!(input.is_empty());
        prop_assert_eq!(key_cmp(&da, &a), Ordering::Equal);
        prop_assert_eq!(key_cmp(&db, &b), Ordering::Equal);
    }

    #[test]
    fn keys_round_trip((a, _b, ty) in pair()) {
        let mut k = key_of(&a);
        k.push(0x42);
        let mut input: &[u8] = &k;
        let d = decode_key_value(&mut input, &ty).unwrap();
        prop_assert_eq!(input, &[0x42u8][..]);
        prop_assert_eq!(key_cmp(&d, &a), Ordering::Equal, "{:?} decoded as {:?}", a, d);
        // Same-typed values decode to exactly the same value (numerics up to
        // scale, floats up to -0 and NaN payloads).
        match (&a, &d) {
            (Value::Numeric(x), Value::Numeric(y)) => prop_assert_eq!(x.normalize(), *y),
            (Value::Float64(x), Value::Float64(y)) => prop_assert!(x.is_nan() && y.is_nan() || x == y),
            (Value::Float32(x), Value::Float64(y)) => prop_assert!(x.is_nan() && y.is_nan() || *x as f64 == *y),
            (Value::Int16(_) | Value::Int32(_), Value::Int64(_)) => {}
            _ => prop_assert_eq!(&a, &d),
        }
        prop_assert_eq!(key_of(&d), key_of(&a));
    }

    #[test]
    fn composite_keys_compare_lexicographically((a, b, types) in row_pair()) {
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        encode_key(&mut ka, &a);
        encode_key(&mut kb, &b);
        let want = a.iter().zip(&b).map(|(x, y)| key_cmp(x, y)).find(|o| *o != Ordering::Equal).unwrap_or(Ordering::Equal);
        prop_assert_eq!(ka.cmp(&kb), want);
        let mut input: &[u8] = &ka;
        for (v, ty) in a.iter().zip(&types) {
            let d = decode_key_value(&mut input, ty).unwrap();
            prop_assert_eq!(key_cmp(&d, v), Ordering::Equal);
        }
        prop_assert!(input.is_empty());
    }

    #[test]
    fn rows_round_trip(
        (values, types) in proptest::collection::vec(0..KINDS, 0..8).prop_flat_map(|kinds| {
            let cols: Vec<(BoxedStrategy<Value>, DataType)> = kinds.iter().map(|k| column(*k)).collect();
            let strategies: Vec<BoxedStrategy<Value>> = cols.iter().map(|(s, _)| s.clone()).collect();
            let types: Vec<DataType> = cols.iter().map(|(_, t)| *t).collect();
            (strategies, Just(types))
        }),
        reverse in any::<bool>(),
    ) {
        // Column ids 10, 20, 30...; read them back (maybe in reverse order)
        // together with a column the row never had (id 5).
        let ids: Vec<u32> = (0..values.len() as u32).map(|i| (i + 1) * 10).collect();
        let cols: Vec<(u32, &Value)> = ids.iter().copied().zip(values.iter()).collect();
        let mut buf = Vec::new();
        encode_row(&mut buf, &cols);
        let mut wanted: Vec<(u32, DataType)> = ids.iter().copied().zip(types.iter().copied()).collect();
        wanted.push((5, DataType::Text));
        if reverse {
            wanted.reverse();
        }
        let mut out = vec![Value::Bool(true)];
        decode_row(&buf, &wanted, &mut out).unwrap();
        prop_assert_eq!(out.len(), wanted.len() + 1);
        prop_assert_eq!(&out[0], &Value::Bool(true));
        for ((id, _), got) in wanted.iter().zip(&out[1..]) {
            let want = ids.iter().position(|i| i == id).map_or(&Value::Null, |p| &values[p]);
            match (want, got) {
                (Value::Float64(x), Value::Float64(y)) => prop_assert!(x.to_bits() == y.to_bits()),
                (Value::Float32(x), Value::Float64(y)) => prop_assert!(x.is_nan() && y.is_nan() || *x as f64 == *y),
                (Value::Int16(_) | Value::Int32(_), Value::Int64(_)) => prop_assert_eq!(sort_cmp(want, got), Ordering::Equal),
                (Value::Numeric(x), Value::Numeric(y)) => {
                    prop_assert_eq!(x, y);
                    prop_assert_eq!(x.scale(), y.scale());
                }
                _ => prop_assert_eq!(want, got),
            }
        }
        // Reading a subset skips the other columns.
        let mut out = Vec::new();
        decode_row(&buf, &wanted[..wanted.len() / 2], &mut out).unwrap();
        prop_assert_eq!(out.len(), wanted.len() / 2);
    }
}
