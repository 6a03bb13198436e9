//! Decoding of memcomparable values, one at a time.

use super::{Decimal, Direction, ESCAPE, ESCAPED_ZERO, TERMINATOR, tag};
use crate::error::{Error, Result};

/// Reads a sequence of encoded values back. Each `decode_*` call consumes one value encoded
/// with the same [`Direction`] it was written with; a value of another type, truncated input
/// or a non-canonical encoding is an [`Error::Corrupt`], never a panic.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder positioned at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Decoder { input, pos: 0 }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// The number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The input not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    /// Whether the next value is NULL, without consuming it.
    pub fn peek_null(&self, dir: Direction) -> Result<bool> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b ^ dir.mask() == tag::NULL),
            None => Err(self.error("a value", "end of input")),
        }
    }

    /// Consumes the next value if it is NULL and returns whether it was.
    pub fn decode_null(&mut self, dir: Direction) -> Result<bool> {
        let null = self.peek_null(dir)?;
        if null {
            self.pos += 1;
        }
        Ok(null)
    }

    /// Decodes a boolean.
    pub fn decode_bool(&mut self, dir: Direction) -> Result<bool> {
        match self.byte(dir.mask(), "bool tag")? {
            tag::FALSE => Ok(false),
            tag::TRUE => Ok(true),
            other => Err(self.bad_tag("bool", other)),
        }
    }

    /// Decodes an integer that must fit in 16 bits.
    pub fn decode_i16(&mut self, dir: Direction) -> Result<i16> {
        let at = self.pos;
        let v = self.decode_i64(dir)?;
        i16::try_from(v).map_err(|_| Error::corrupt(format!("keycode: i16 out of range at {at}")))
    }

    /// Decodes an integer that must fit in 32 bits.
    pub fn decode_i32(&mut self, dir: Direction) -> Result<i32> {
        let at = self.pos;
        let v = self.decode_i64(dir)?;
        i32::try_from(v).map_err(|_| Error::corrupt(format!("keycode: i32 out of range at {at}")))
    }

    /// Decodes a 64-bit integer.
    pub fn decode_i64(&mut self, dir: Direction) -> Result<i64> {
        let mask = dir.mask();
        let t = self.byte(mask, "integer tag")?;
        if !(tag::INT_MIN..=tag::INT_MAX).contains(&t) {
            return Err(self.bad_tag("integer", t));
        }
        let negative = t < tag::INT_ZERO;
        let n = if negative {
            (tag::INT_ZERO - 1 - t) as usize
        } else {
            (t - tag::INT_ZERO) as usize
        };
        let mut bytes = if negative { [0xFF; 8] } else { [0; 8] };
        for slot in &mut bytes[8 - n..] {
            *slot = self.byte(mask, "integer body")?;
        }
        // The encoder writes the fewest significant bytes; anything else is not canonical.
        if n > 0 {
            let top = bytes[8 - n];
            let sign_ok = n < 8 || (top >= 0x80) == negative;
            if top == if negative { 0xFF } else { 0x00 } || !sign_ok {
                return Err(Error::corrupt(format!(
                    "keycode: non-canonical integer ending at {}",
                    self.pos
                )));
            }
        }
        Ok(i64::from_be_bytes(bytes))
    }

    /// Decodes a float.
    pub fn decode_f64(&mut self, dir: Direction) -> Result<f64> {
        let mask = dir.mask();
        let t = self.byte(mask, "float tag")?;
        if t != tag::FLOAT {
            return Err(self.bad_tag("float", t));
        }
        let sort_bits = u64::from_be_bytes(self.array::<8>(mask, "float body")?);
        let bits = if sort_bits >> 63 == 1 {
            sort_bits & !(1 << 63)
        } else {
            !sort_bits
        };
        let v = f64::from_bits(bits);
        let canonical = if v.is_nan() {
            bits == f64::NAN.to_bits()
        } else {
            bits != (-0.0f64).to_bits()
        };
        if !canonical {
            return Err(Error::corrupt(format!(
                "keycode: non-canonical float ending at {}",
                self.pos
            )));
        }
        Ok(v)
    }

    /// Decodes a decimal.
    pub fn decode_decimal(&mut self, dir: Direction) -> Result<Decimal> {
        let mask = dir.mask();
        let t = self.byte(mask, "decimal tag")?;
        match t {
            tag::DECIMAL_ZERO => Ok(Decimal::ZERO),
            tag::DECIMAL_POS => self.decimal_magnitude(false, mask),
            // Negative magnitudes are stored inverted so that larger magnitudes sort first.
            tag::DECIMAL_NEG => self.decimal_magnitude(true, mask ^ 0xFF),
            other => Err(self.bad_tag("decimal", other)),
        }
    }

    fn decimal_magnitude(&mut self, negative: bool, mask: u8) -> Result<Decimal> {
        let exponent =
            (u32::from_be_bytes(self.array::<4>(mask, "decimal exponent")?) ^ (1 << 31)) as i32;
        let mut digits = Vec::new();
        loop {
            let b = self.byte(mask, "decimal digits")?;
            if b == 0 {
                break;
            }
            if b % 2 == 0 {
                let pair = (b - 2) / 2;
                if pair > 99 {
                    return Err(self.bad_tag("decimal digit pair", b));
                }
                digits.push(pair / 10);
                digits.push(pair % 10);
            } else {
                let single = (b - 1) / 20;
                if (b - 1) % 20 != 0 || single > 9 {
                    return Err(self.bad_tag("decimal final digit", b));
                }
                digits.push(single);
                // A single digit only ever ends the mantissa.
                let next = self.byte(mask, "decimal terminator")?;
                if next != 0 {
                    return Err(self.bad_tag("decimal terminator", next));
                }
                break;
            }
        }
        Decimal::from_parts(negative, exponent, digits).map_err(|reason| {
            Error::corrupt(format!("keycode: decimal ending at {}: {reason}", self.pos))
        })
    }

    /// Decodes a byte string.
    pub fn decode_bytes(&mut self, dir: Direction) -> Result<Vec<u8>> {
        let mask = dir.mask();
        let t = self.byte(mask, "bytes tag")?;
        if t != tag::BYTES {
            return Err(self.bad_tag("bytes", t));
        }
        self.unescape(mask)
    }

    /// Decodes a UTF-8 string.
    pub fn decode_string(&mut self, dir: Direction) -> Result<String> {
        let mask = dir.mask();
        let t = self.byte(mask, "string tag")?;
        if t != tag::STRING {
            return Err(self.bad_tag("string", t));
        }
        let at = self.pos;
        String::from_utf8(self.unescape(mask)?)
            .map_err(|_| Error::corrupt(format!("keycode: invalid UTF-8 in string at {at}")))
    }

    /// Decodes a date (days since 1970-01-01).
    pub fn decode_date(&mut self, dir: Direction) -> Result<i32> {
        let mask = dir.mask();
        let t = self.byte(mask, "date tag")?;
        if t != tag::DATE {
            return Err(self.bad_tag("date", t));
        }
        Ok((u32::from_be_bytes(self.array::<4>(mask, "date body")?) ^ (1 << 31)) as i32)
    }

    /// Decodes a timestamp (microseconds since 1970-01-01 UTC).
    pub fn decode_timestamp(&mut self, dir: Direction) -> Result<i64> {
        let mask = dir.mask();
        let t = self.byte(mask, "timestamp tag")?;
        if t != tag::TIMESTAMP {
            return Err(self.bad_tag("timestamp", t));
        }
        Ok((u64::from_be_bytes(self.array::<8>(mask, "timestamp body")?) ^ (1 << 63)) as i64)
    }

    /// The ascending tag of the next value, without consuming it.
    pub(crate) fn peek_tag(&self, dir: Direction) -> Result<u8> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b ^ dir.mask()),
            None => Err(self.error("a value", "end of input")),
        }
    }

    /// Reads an escaped, terminated byte string (see `escape_into`).
    pub(crate) fn unescape(&mut self, mask: u8) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.escaped_len(mask));
        loop {
            // The run up to the next escape byte, copied at once.
            let rest = self.input.get(self.pos..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|&b| b ^ mask == ESCAPE)
                .unwrap_or(rest.len());
            out.extend(rest[..run].iter().map(|&b| b ^ mask));
            self.pos += run;
            self.byte(mask, "escaped bytes")?;
            match self.byte(mask, "escape sequence")? {
                ESCAPED_ZERO => out.push(0),
                TERMINATOR => return Ok(out),
                other => return Err(self.bad_tag("escape sequence", other)),
            }
        }
    }

    /// The unescaped length of the escaped string at the current position, as far as it is
    /// well formed (only a capacity hint: [`Decoder::unescape`] reports malformed input).
    fn escaped_len(&self, mask: u8) -> usize {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let (mut len, mut i) = (0, 0);
        while i < rest.len() {
            if rest[i] ^ mask != ESCAPE {
                len += 1;
                i += 1;
            } else if rest.get(i + 1).map(|b| b ^ mask) == Some(ESCAPED_ZERO) {
                len += 1;
                i += 2;
            } else {
                break;
            }
        }
        len
    }

    /// Consumes `N` bytes, unmasked.
    pub(crate) fn array<const N: usize>(&mut self, mask: u8, what: &str) -> Result<[u8; N]> {
        let Some(chunk) = self.input.get(self.pos..self.pos + N) else {
            return Err(self.error(what, "end of input"));
        };
        let mut out = [0; N];
        for (o, b) in out.iter_mut().zip(chunk) {
            *o = b ^ mask;
        }
        self.pos += N;
        Ok(out)
    }

    fn byte(&mut self, mask: u8, what: &str) -> Result<u8> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b ^ mask)
            }
            None => Err(self.error(what, "end of input")),
        }
    }

    fn bad_tag(&self, expected: &str, found: u8) -> Error {
        Error::corrupt(format!(
            "keycode: expected {expected} at offset {}, found byte {found:#04x}",
            self.pos.saturating_sub(1)
        ))
    }

    fn error(&self, expected: &str, found: &str) -> Error {
        Error::corrupt(format!(
            "keycode: expected {expected} at offset {}, found {found}",
            self.pos
        ))
    }
}
