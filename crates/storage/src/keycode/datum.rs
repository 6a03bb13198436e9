//! A generic value that covers every encodable type, for callers that do not know types
//! statically (row values, debugging, tests).

use std::cmp::Ordering;

use super::{
    Decimal, Decoder, Direction, encode_bool, encode_bytes, encode_date, encode_decimal,
    encode_f64, encode_i64, encode_null, encode_string, encode_timestamp, float_sort_bits, tag,
};
use crate::error::{Error, Result};

/// One encodable value. Its `Eq`/`Ord` agree with the byte order of the ascending encoding:
/// values of different types order by type tag (NULL first), floats compare by total order
/// with `-0.0 == +0.0` and NaN equal to itself and greatest.
///
/// Integers of every width decode as [`KeyDatum::Int`]; the caller's schema says which width
/// a column has.
#[derive(Clone, Debug)]
pub enum KeyDatum {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer of any width.
    Int(i64),
    /// A double-precision float.
    Float(f64),
    /// An arbitrary-precision decimal.
    Decimal(Decimal),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A UTF-8 string.
    String(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
}

impl KeyDatum {
    /// The rank of this value's type in the encoding order.
    fn type_rank(&self) -> u8 {
        match self {
            KeyDatum::Null => tag::NULL,
            KeyDatum::Bool(_) => tag::FALSE,
            KeyDatum::Int(_) => tag::INT_MIN,
            KeyDatum::Float(_) => tag::FLOAT,
            KeyDatum::Decimal(_) => tag::DECIMAL_NEG,
            KeyDatum::Bytes(_) => tag::BYTES,
            KeyDatum::String(_) => tag::STRING,
            KeyDatum::Date(_) => tag::DATE,
            KeyDatum::Timestamp(_) => tag::TIMESTAMP,
        }
    }
}

impl Ord for KeyDatum {
    fn cmp(&self, other: &Self) -> Ordering {
        use KeyDatum as K;
        match (self, other) {
            (K::Null, K::Null) => Ordering::Equal,
            (K::Bool(a), K::Bool(b)) => a.cmp(b),
            (K::Int(a), K::Int(b)) => a.cmp(b),
            (K::Float(a), K::Float(b)) => float_sort_bits(*a).cmp(&float_sort_bits(*b)),
            (K::Decimal(a), K::Decimal(b)) => a.cmp(b),
            (K::Bytes(a), K::Bytes(b)) => a.cmp(b),
            (K::String(a), K::String(b)) => a.cmp(b),
            (K::Date(a), K::Date(b)) => a.cmp(b),
            (K::Timestamp(a), K::Timestamp(b)) => a.cmp(b),
            _ => self.type_rank().cmp(&other.type_rank()),
        }
    }
}

impl PartialOrd for KeyDatum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for KeyDatum {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for KeyDatum {}

/// Appends the encoding of `v` in direction `dir`.
pub fn encode_key(buf: &mut Vec<u8>, v: &KeyDatum, dir: Direction) {
    match v {
        KeyDatum::Null => encode_null(buf, dir),
        KeyDatum::Bool(b) => encode_bool(buf, *b, dir),
        KeyDatum::Int(i) => encode_i64(buf, *i, dir),
        KeyDatum::Float(f) => encode_f64(buf, *f, dir),
        KeyDatum::Decimal(d) => encode_decimal(buf, d, dir),
        KeyDatum::Bytes(b) => encode_bytes(buf, b, dir),
        KeyDatum::String(s) => encode_string(buf, s, dir),
        KeyDatum::Date(d) => encode_date(buf, *d, dir),
        KeyDatum::Timestamp(t) => encode_timestamp(buf, *t, dir),
    }
}

/// Decodes one value from the front of `input`, returning it and the rest of the input.
pub fn decode_key(input: &[u8], dir: Direction) -> Result<(KeyDatum, &[u8])> {
    let mut d = Decoder::new(input);
    let v = d.decode_key(dir)?;
    Ok((v, d.remaining()))
}

/// Decodes a whole sequence of values that were all encoded in direction `dir` (for example
/// a row value).
pub fn decode_all(input: &[u8], dir: Direction) -> Result<Vec<KeyDatum>> {
    let mut d = Decoder::new(input);
    let mut out = Vec::new();
    while !d.is_empty() {
        out.push(d.decode_key(dir)?);
    }
    Ok(out)
}

impl Decoder<'_> {
    /// Decodes the next value, whatever its type.
    pub fn decode_key(&mut self, dir: Direction) -> Result<KeyDatum> {
        Ok(match self.peek_tag(dir)? {
            tag::NULL => {
                self.decode_null(dir)?;
                KeyDatum::Null
            }
            tag::FALSE | tag::TRUE => KeyDatum::Bool(self.decode_bool(dir)?),
            tag::INT_MIN..=tag::INT_MAX => KeyDatum::Int(self.decode_i64(dir)?),
            tag::FLOAT => KeyDatum::Float(self.decode_f64(dir)?),
            tag::DECIMAL_NEG | tag::DECIMAL_ZERO | tag::DECIMAL_POS => {
                KeyDatum::Decimal(self.decode_decimal(dir)?)
            }
            tag::BYTES => KeyDatum::Bytes(self.decode_bytes(dir)?),
            tag::STRING => KeyDatum::String(self.decode_string(dir)?),
            tag::DATE => KeyDatum::Date(self.decode_date(dir)?),
            tag::TIMESTAMP => KeyDatum::Timestamp(self.decode_timestamp(dir)?),
            other => {
                return Err(Error::corrupt(format!(
                    "keycode: unknown tag {other:#04x} at offset {}",
                    self.position()
                )));
            }
        })
    }
}
