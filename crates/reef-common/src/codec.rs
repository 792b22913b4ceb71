//! Memcomparable ("order-preserving") encodings of primitive values, TiKV style.
//!
//! Every `encode_*` function appends to a buffer, and for any two values `a` and `b` of the same
//! type the byte-wise comparison of the encodings equals the comparison of the values. Because
//! every encoding is also self-delimiting (fixed width, or terminated by a marker byte for byte
//! strings), the concatenation of several encoded fields compares exactly like the tuple of the
//! fields, which is how composite keys (table id, index columns, row id) are built.
//!
//! Decoders consume from a cursor (`&mut &[u8]`), advancing it past the decoded field, so that a
//! composite key can be taken apart field by field.
//!
//! [`encode_var_u64`] / [`decode_var_u64`] are a LEB128 varint for values; they do not preserve
//! order and must not be used inside keys.

use thiserror::Error;

use crate::ErrorCode;

/// An error decoding an encoded value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before the value was complete.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEof {
        /// How many bytes the decoder needed.
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A byte-string group ended with a marker byte that no encoder produces.
    #[error("invalid byte-string group marker {0:#04x}")]
    InvalidMarker(u8),
    /// The padding of the last byte-string group was not all zeros.
    #[error("invalid byte-string padding")]
    InvalidPadding,
    /// A varint did not fit in 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
}

impl CodecError {
    /// Returns the stable error code ([`ErrorCode::Codec`]).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Codec
    }
}

const SIGN_MASK: u64 = 1 << 63;
const GROUP_SIZE: usize = 8;
const MARKER: u8 = 0xFF;
/// The canonical NaN bit pattern that every NaN is encoded as.
const CANONICAL_NAN: u64 = 0x7FF8_0000_0000_0000;

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], CodecError> {
    if input.len() < n {
        return Err(CodecError::UnexpectedEof {
            needed: n,
            remaining: input.len(),
        });
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_u64(input: &mut &[u8]) -> Result<u64, CodecError> {
    let bytes = take(input, 8)?;
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    Ok(u64::from_be_bytes(array))
}

/// Appends `v` in big-endian order (ascending).
pub fn encode_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Decodes a value written by [`encode_u64`].
pub fn decode_u64(input: &mut &[u8]) -> Result<u64, CodecError> {
    take_u64(input)
}

/// Appends `v` so that larger values sort first (descending).
pub fn encode_u64_desc(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&(!v).to_be_bytes());
}

/// Decodes a value written by [`encode_u64_desc`].
pub fn decode_u64_desc(input: &mut &[u8]) -> Result<u64, CodecError> {
    Ok(!take_u64(input)?)
}

/// Appends `v` with its sign bit flipped, so that negative values sort before positive ones.
pub fn encode_i64(buf: &mut Vec<u8>, v: i64) {
    encode_u64(buf, (v as u64) ^ SIGN_MASK);
}

/// Decodes a value written by [`encode_i64`].
pub fn decode_i64(input: &mut &[u8]) -> Result<i64, CodecError> {
    Ok((take_u64(input)? ^ SIGN_MASK) as i64)
}

/// Appends `v` in an order-preserving form.
///
/// `-0.0` is encoded as `0.0`, and every NaN is encoded as one canonical NaN that sorts above
/// positive infinity (the order PostgreSQL uses).
pub fn encode_f64(buf: &mut Vec<u8>, v: f64) {
    let bits = if v.is_nan() {
        CANONICAL_NAN
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    };
    let ordered = if bits & SIGN_MASK != 0 {
        !bits
    } else {
        bits | SIGN_MASK
    };
    encode_u64(buf, ordered);
}

/// Decodes a value written by [`encode_f64`].
pub fn decode_f64(input: &mut &[u8]) -> Result<f64, CodecError> {
    let ordered = take_u64(input)?;
    let bits = if ordered & SIGN_MASK != 0 {
        ordered ^ SIGN_MASK
    } else {
        !ordered
    };
    Ok(f64::from_bits(bits))
}

/// Appends `data` as groups of 8 bytes, each followed by a marker byte.
///
/// The last group is padded with zeros and its marker is `0xFF - padding`; full groups have
/// marker `0xFF`. This keeps the order of byte strings (including embedded zeros and strings that
/// are prefixes of others) and makes the encoding self-delimiting. The encoded length is
/// `(len / 8 + 1) * 9`.
pub fn encode_bytes(buf: &mut Vec<u8>, data: &[u8]) {
    buf.reserve(encoded_bytes_len(data.len()));
    let mut chunks = data.chunks_exact(GROUP_SIZE);
    for chunk in &mut chunks {
        buf.extend_from_slice(chunk);
        buf.push(MARKER);
    }
    let rest = chunks.remainder();
    let pad = GROUP_SIZE - rest.len();
    buf.extend_from_slice(rest);
    buf.extend_from_slice(&[0u8; GROUP_SIZE][..pad]);
    buf.push(MARKER - pad as u8);
}

/// Returns the length of [`encode_bytes`]'s output for an input of `len` bytes.
pub fn encoded_bytes_len(len: usize) -> usize {
    (len / GROUP_SIZE + 1) * (GROUP_SIZE + 1)
}

/// Decodes a value written by [`encode_bytes`].
pub fn decode_bytes(input: &mut &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(input.len().min(64));
    decode_bytes_into(input, &mut out)?;
    Ok(out)
}

/// Decodes a value written by [`encode_bytes`], appending it to `out` (which is left with
/// unspecified contents on error).
pub fn decode_bytes_into(input: &mut &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut rest = *input;
    loop {
        let group = take(&mut rest, GROUP_SIZE + 1)?;
        let marker = group[GROUP_SIZE];
        let pad = (MARKER - marker) as usize;
        if pad == 0 {
            out.extend_from_slice(&group[..GROUP_SIZE]);
            continue;
        }
        if pad > GROUP_SIZE {
            return Err(CodecError::InvalidMarker(marker));
        }
        let real = GROUP_SIZE - pad;
        if group[real..GROUP_SIZE].iter().any(|&b| b != 0) {
            return Err(CodecError::InvalidPadding);
        }
        out.extend_from_slice(&group[..real]);
        *input = rest;
        return Ok(());
    }
}

/// Skips over one value written by [`encode_bytes`] without copying it, returning the number of
/// encoded bytes it occupied.
pub fn skip_bytes(input: &mut &[u8]) -> Result<usize, CodecError> {
    let mut rest = *input;
    let mut len = 0;
    loop {
        let group = take(&mut rest, GROUP_SIZE + 1)?;
        len += GROUP_SIZE + 1;
        let marker = group[GROUP_SIZE];
        if marker == MARKER {
            continue;
        }
        if ((MARKER - marker) as usize) > GROUP_SIZE {
            return Err(CodecError::InvalidMarker(marker));
        }
        *input = rest;
        return Ok(len);
    }
}

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes). Not order-preserving.
pub fn encode_var_u64(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Decodes a value written by [`encode_var_u64`].
pub fn decode_var_u64(input: &mut &[u8]) -> Result<u64, CodecError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == 9 && byte > 1 {
            return Err(CodecError::VarintOverflow);
        }
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(CodecError::UnexpectedEof {
        needed: input.len() + 1,
        remaining: input.len(),
    })
}

/// Appends `data` prefixed by its length as a varint. Not order-preserving.
pub fn encode_len_prefixed(buf: &mut Vec<u8>, data: &[u8]) {
    encode_var_u64(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Takes a byte string written by [`encode_len_prefixed`] from the front of `input`, borrowing
/// it.
pub fn decode_len_prefixed<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], CodecError> {
    let len = decode_var_u64(input)?;
    if len > input.len() as u64 {
        return Err(CodecError::UnexpectedEof {
            needed: usize::try_from(len).unwrap_or(usize::MAX),
            remaining: input.len(),
        });
    }
    take(input, len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn enc<T: Copy>(f: fn(&mut Vec<u8>, T), v: T) -> Vec<u8> {
        let mut buf = Vec::new();
        f(&mut buf, v);
        buf
    }

    fn enc_bytes(v: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_bytes(&mut buf, v);
        buf
    }

    /// Total order on f64 with -0 == 0 and all NaNs equal and largest.
    fn f64_cmp(a: f64, b: f64) -> Ordering {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.partial_cmp(&b).unwrap(),
        }
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::MIN_POSITIVE),
            Just(-f64::MIN_POSITIVE),
            Just(f64::MAX),
            Just(f64::MIN),
            (-1000i32..1000).prop_map(|i| i as f64 / 8.0),
        ]
    }

    /// Byte strings biased toward zeros, 0xFF and lengths around group boundaries.
    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(0xFFu8), Just(1u8), any::<u8>()],
            0..20,
        )
    }

    proptest! {
        #[test]
        fn u64_order_and_roundtrip(a: u64, b: u64) {
            let (ea, eb) = (enc(encode_u64, a), enc(encode_u64, b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            prop_assert_eq!(decode_u64(&mut ea.as_slice()).unwrap(), a);
        }

        #[test]
        fn u64_desc_order_and_roundtrip(a: u64, b: u64) {
            let (ea, eb) = (enc(encode_u64_desc, a), enc(encode_u64_desc, b));
            prop_assert_eq!(b.cmp(&a), ea.cmp(&eb));
            prop_assert_eq!(decode_u64_desc(&mut ea.as_slice()).unwrap(), a);
        }

        #[test]
        fn i64_order_and_roundtrip(a: i64, b: i64) {
            let (ea, eb) = (enc(encode_i64, a), enc(encode_i64, b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            prop_assert_eq!(decode_i64(&mut ea.as_slice()).unwrap(), a);
        }

        #[test]
        fn f64_order_and_roundtrip(a in any_f64(), b in any_f64()) {
            let (ea, eb) = (enc(encode_f64, a), enc(encode_f64, b));
            prop_assert_eq!(f64_cmp(a, b), ea.cmp(&eb));
            let back = decode_f64(&mut ea.as_slice()).unwrap();
            if a.is_nan() {
                prop_assert!(back.is_nan());
            } else {
                prop_assert_eq!(back, a);
                if a == 0.0 {
                    prop_assert!(back.is_sign_positive());
                }
            }
        }

        #[test]
        fn bytes_order_and_roundtrip(a in any_bytes(), b in any_bytes()) {
            let (ea, eb) = (enc_bytes(&a), enc_bytes(&b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            prop_assert_eq!(ea.len(), encoded_bytes_len(a.len()));
            let mut cursor = ea.as_slice();
            prop_assert_eq!(decode_bytes(&mut cursor).unwrap(), a);
            prop_assert!(cursor.is_empty());
            let mut cursor = ea.as_slice();
            prop_assert_eq!(skip_bytes(&mut cursor).unwrap(), ea.len());
        }

        #[test]
        fn prefix_sorts_first(a in any_bytes(), suffix in any_bytes()) {
            let mut longer = a.clone();
            longer.extend_from_slice(&suffix);
            prop_assert_eq!(a.cmp(&longer), enc_bytes(&a).cmp(&enc_bytes(&longer)));
        }

        #[test]
        fn composite_keys_compare_as_tuples(
            a in (any_bytes(), any::<i64>(), any_bytes()),
            b in (any_bytes(), any::<i64>(), any_bytes()),
        ) {
            let encode = |t: &(Vec<u8>, i64, Vec<u8>)| {
                let mut buf = Vec::new();
                encode_bytes(&mut buf, &t.0);
                encode_i64(&mut buf, t.1);
                encode_bytes(&mut buf, &t.2);
                buf
            };
            let (ea, eb) = (encode(&a), encode(&b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            let mut cursor = ea.as_slice();
            prop_assert_eq!(decode_bytes(&mut cursor).unwrap(), a.0);
            prop_assert_eq!(decode_i64(&mut cursor).unwrap(), a.1);
            prop_assert_eq!(decode_bytes(&mut cursor).unwrap(), a.2);
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn varint_roundtrip(v: u64) {
            let e = enc(encode_var_u64, v);
            let mut cursor = e.as_slice();
            prop_assert_eq!(decode_var_u64(&mut cursor).unwrap(), v);
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn decoders_never_panic(data in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_bytes(&mut data.as_slice());
            let _ = skip_bytes(&mut data.as_slice());
            let _ = decode_var_u64(&mut data.as_slice());
            let _ = decode_f64(&mut data.as_slice());
        }
    }

    #[test]
    fn embedded_zeros_and_prefixes() {
        let values: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0",
            b"a\0\0\0\0\0\0\0\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"b",
        ];
        for w in values.windows(2) {
            assert!(enc_bytes(w[0]) < enc_bytes(w[1]), "{:?} < {:?}", w[0], w[1]);
        }
        assert_eq!(enc_bytes(b""), vec![0, 0, 0, 0, 0, 0, 0, 0, 0xF7]);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            decode_u64(&mut &[1u8, 2][..]),
            Err(CodecError::UnexpectedEof {
                needed: 8,
                remaining: 2
            })
        );
        assert_eq!(
            decode_bytes(&mut &[0u8; 9][..]),
            Err(CodecError::InvalidMarker(0))
        );
        assert_eq!(
            decode_bytes(&mut &[b'a', 1, 0, 0, 0, 0, 0, 7, 0xF9][..]),
            Err(CodecError::InvalidPadding)
        );
        assert!(decode_var_u64(&mut &[0xFFu8; 11][..]).is_err());
        assert!(decode_var_u64(&mut &[0x80u8][..]).is_err());
        let mut input = &[0x80u8, 0x01, 0x05][..];
        assert_eq!(decode_var_u64(&mut input), Ok(128));
        assert_eq!(input, &[0x05]);
    }
}
