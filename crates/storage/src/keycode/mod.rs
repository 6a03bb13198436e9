//! Memcomparable (order-preserving) key encoding.
//!
//! Every value is encoded as one tag byte followed by a type-specific body, such that for two
//! values `a`, `b` of the same type, `encode(a) < encode(b)` byte-wise exactly when `a < b`.
//! Every encoding is *self-delimiting* (no encoding is a proper prefix of another), so values
//! can be concatenated into compound keys that compare lexicographically, column by column, and
//! decode back one value at a time with a [`Decoder`]. The SQL layer also uses concatenated
//! ascending encodings as its row value format.
//!
//! ```text
//!  value          ascending bytes                           notes
//!  NULL           00                                        smallest value of every type
//!  false / true   10 / 11
//!  integer        1F..=30 tag, then 0..=8 big-endian bytes  tag encodes sign and length
//!  float          40, 8 bytes                               -inf < .. < -0 == +0 < .. < +inf < NaN
//!  decimal        47 (negative) | 48 (zero) | 49 (positive), exponent, packed digits, 00
//!  bytes          50, escaped bytes, 00 01                  00 is escaped as 00 FF
//!  string         51, escaped UTF-8, 00 01
//!  date           58, 4 bytes                               days since 1970-01-01
//!  timestamp      59, 8 bytes                               microseconds since 1970-01-01 UTC
//! ```
//!
//! [`Direction::Desc`] inverts every byte of the ascending encoding. Because ascending
//! encodings are prefix-free, inversion exactly reverses their order, so descending columns
//! mix freely with ascending ones in one compound key. As a consequence NULL sorts **first**
//! in ascending columns and **last** in descending ones (NULL behaves as the smallest value;
//! CockroachDB does the same, PostgreSQL's default is the opposite).
//!
//! Integers of every width share one encoding; the typed decoders reject values outside their
//! width. `-0.0` is normalised to `+0.0` and every NaN to the canonical NaN, which sorts after
//! `+inf` as in PostgreSQL. Decimals order numerically, so `1.0` and `1.00` encode identically.

mod datum;
mod decimal;
mod decoder;

pub use datum::{KeyDatum, decode_all, decode_key, encode_key};
pub use decimal::Decimal;
pub use decoder::Decoder;

/// Sort direction of one encoded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Ascending order: the byte order of encodings is the order of values.
    #[default]
    Asc,
    /// Descending order: the ascending encoding with every byte inverted.
    Desc,
}

impl Direction {
    /// The byte mask applied to the ascending encoding.
    pub(crate) const fn mask(self) -> u8 {
        match self {
            Direction::Asc => 0x00,
            Direction::Desc => 0xFF,
        }
    }
}

/// Tag bytes of the ascending encoding.
pub(crate) mod tag {
    pub const NULL: u8 = 0x00;
    pub const FALSE: u8 = 0x10;
    pub const TRUE: u8 = 0x11;
    /// Tag of a non-negative integer with zero significant bytes (the value 0). A non-negative
    /// integer with `n` significant bytes has tag `INT_ZERO + n`; a negative integer whose
    /// complement has `n` significant bytes has tag `INT_ZERO - 1 - n`.
    pub const INT_ZERO: u8 = 0x28;
    pub const INT_MIN: u8 = INT_ZERO - 1 - 8;
    pub const INT_MAX: u8 = INT_ZERO + 8;
    pub const FLOAT: u8 = 0x40;
    pub const DECIMAL_NEG: u8 = 0x47;
    pub const DECIMAL_ZERO: u8 = 0x48;
    pub const DECIMAL_POS: u8 = 0x49;
    pub const BYTES: u8 = 0x50;
    pub const STRING: u8 = 0x51;
    pub const DATE: u8 = 0x58;
    pub const TIMESTAMP: u8 = 0x59;
}

/// The escape byte inside escaped byte strings and the bytes that may follow it.
pub(crate) const ESCAPE: u8 = 0x00;
pub(crate) const ESCAPED_ZERO: u8 = 0xFF;
pub(crate) const TERMINATOR: u8 = 0x01;

/// Applies `dir` to the bytes appended to `buf` since `start`.
fn finish(buf: &mut [u8], start: usize, dir: Direction) {
    if dir == Direction::Desc {
        for b in &mut buf[start..] {
            *b = !*b;
        }
    }
}

/// Appends NULL.
pub fn encode_null(buf: &mut Vec<u8>, dir: Direction) {
    buf.push(tag::NULL ^ dir.mask());
}

/// Appends a boolean (`false < true`).
pub fn encode_bool(buf: &mut Vec<u8>, v: bool, dir: Direction) {
    buf.push(if v { tag::TRUE } else { tag::FALSE } ^ dir.mask());
}

/// Appends a 16-bit integer (same encoding as [`encode_i64`]).
pub fn encode_i16(buf: &mut Vec<u8>, v: i16, dir: Direction) {
    encode_i64(buf, i64::from(v), dir);
}

/// Appends a 32-bit integer (same encoding as [`encode_i64`]).
pub fn encode_i32(buf: &mut Vec<u8>, v: i32, dir: Direction) {
    encode_i64(buf, i64::from(v), dir);
}

/// Appends a 64-bit integer: a tag that encodes sign and length, then the significant bytes
/// big-endian, so small magnitudes take one or two bytes.
pub fn encode_i64(buf: &mut Vec<u8>, v: i64, dir: Direction) {
    let start = buf.len();
    // For negative values, `!v` is the non-negative magnitude-minus-one; more significant
    // bytes there mean a more negative value, hence a smaller tag.
    let magnitude = if v < 0 { !v as u64 } else { v as u64 };
    let n = (8 - magnitude.leading_zeros() / 8) as usize;
    let tag = if v < 0 {
        tag::INT_ZERO - 1 - n as u8
    } else {
        tag::INT_ZERO + n as u8
    };
    buf.push(tag);
    buf.extend_from_slice(&(v as u64).to_be_bytes()[8 - n..]);
    finish(buf, start, dir);
}

/// Appends a float. `-0.0` is encoded as `+0.0` and every NaN as the canonical NaN, which
/// sorts after `+inf`.
pub fn encode_f64(buf: &mut Vec<u8>, v: f64, dir: Direction) {
    let start = buf.len();
    buf.push(tag::FLOAT);
    buf.extend_from_slice(&float_sort_bits(v).to_be_bytes());
    finish(buf, start, dir);
}

/// The order-preserving 64-bit image of a float (after normalising `-0.0` and NaN).
pub(crate) fn float_sort_bits(v: f64) -> u64 {
    let v = if v.is_nan() {
        f64::NAN
    } else if v == 0.0 {
        0.0
    } else {
        v
    };
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Appends an arbitrary-precision decimal, ordered numerically.
pub fn encode_decimal(buf: &mut Vec<u8>, v: &Decimal, dir: Direction) {
    let start = buf.len();
    v.encode_ascending(buf);
    finish(buf, start, dir);
}

/// Appends a byte string. Zero bytes are escaped and a terminator follows, so that a string
/// sorts before its extensions (`"a" < "a\0" < "ab" < "b"`).
pub fn encode_bytes(buf: &mut Vec<u8>, v: &[u8], dir: Direction) {
    let start = buf.len();
    buf.push(tag::BYTES);
    escape_into(buf, v);
    finish(buf, start, dir);
}

/// Appends a UTF-8 string (ordered by its bytes, i.e. by code point).
pub fn encode_string(buf: &mut Vec<u8>, v: &str, dir: Direction) {
    let start = buf.len();
    buf.push(tag::STRING);
    escape_into(buf, v.as_bytes());
    finish(buf, start, dir);
}

/// Appends a date given as days since 1970-01-01 (the Arrow `Date32` convention).
pub fn encode_date(buf: &mut Vec<u8>, days: i32, dir: Direction) {
    let start = buf.len();
    buf.push(tag::DATE);
    buf.extend_from_slice(&((days as u32) ^ (1 << 31)).to_be_bytes());
    finish(buf, start, dir);
}

/// Appends a timestamp given as microseconds since 1970-01-01 00:00:00 UTC (the Arrow
/// `Timestamp(Microsecond)` convention).
pub fn encode_timestamp(buf: &mut Vec<u8>, micros: i64, dir: Direction) {
    let start = buf.len();
    buf.push(tag::TIMESTAMP);
    buf.extend_from_slice(&((micros as u64) ^ (1 << 63)).to_be_bytes());
    finish(buf, start, dir);
}

/// Appends `v` escaped and terminated, without a tag: the order-preserving, self-delimiting
/// form of an arbitrary byte string. MVCC storage keys start with the escaped user key.
pub(crate) fn escape_into(buf: &mut Vec<u8>, v: &[u8]) {
    buf.reserve(v.len() + 2);
    for &b in v {
        buf.push(b);
        if b == ESCAPE {
            buf.push(ESCAPED_ZERO);
        }
    }
    buf.push(ESCAPE);
    buf.push(TERMINATOR);
}

/// The smallest key greater than every key that starts with `prefix`, or `None` if there is
/// none (the prefix is empty or all `0xFF`). Use it as the exclusive end of a prefix scan.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

#[cfg(test)]
mod tests;
