//! An arbitrary-precision decimal number in normalised form, with a memcomparable encoding.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::tag;
use crate::error::Error;

/// A decimal number `±0.d1 d2 ... dn × 10^exponent`, normalised so that equal numbers have
/// equal representations: no leading or trailing zero digits, and zero has no digits, no
/// sign and exponent 0. Consequently the scale of a literal is not kept (`"1.50"` and `"1.5"`
/// are the same `Decimal`); a column's declared scale belongs to its type, not its values.
///
/// Parse with [`str::parse`], print with `Display` (plain notation, never exponents). The
/// derived equality is numeric equality, and `Ord` is numeric order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    negative: bool,
    exponent: i32,
    digits: Vec<u8>,
}

impl Decimal {
    /// The largest supported exponent: up to 131072 digits before the decimal point, as in
    /// PostgreSQL's `numeric`.
    pub const MAX_EXPONENT: i32 = 131_072;
    /// The most digits supported after the decimal point, as in PostgreSQL's `numeric`.
    pub const MAX_FRACTION_DIGITS: i64 = 16_383;

    /// The number zero.
    pub const ZERO: Decimal = Decimal {
        negative: false,
        exponent: 0,
        digits: Vec::new(),
    };

    /// Builds a decimal from its normalised parts, checking every invariant.
    pub(crate) fn from_parts(
        negative: bool,
        exponent: i32,
        digits: Vec<u8>,
    ) -> Result<Decimal, &'static str> {
        let (Some(&first), Some(&last)) = (digits.first(), digits.last()) else {
            return Err("non-zero decimal without digits");
        };
        if digits.iter().any(|&d| d > 9) {
            return Err("digit out of range");
        }
        if first == 0 || last == 0 {
            return Err("leading or trailing zero digit");
        }
        check_range(exponent.into(), digits.len())?;
        Ok(Decimal {
            negative,
            exponent,
            digits,
        })
    }

    /// Whether the number is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the number is less than zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The number with its sign flipped.
    pub fn neg(&self) -> Decimal {
        let mut out = self.clone();
        out.negative = !self.is_zero() && !self.negative;
        out
    }

    /// Appends the ascending encoding (tag included).
    pub(crate) fn encode_ascending(&self, buf: &mut Vec<u8>) {
        if self.is_zero() {
            buf.push(tag::DECIMAL_ZERO);
            return;
        }
        buf.push(if self.negative {
            tag::DECIMAL_NEG
        } else {
            tag::DECIMAL_POS
        });
        let start = buf.len();
        // Magnitude: a larger exponent means a larger magnitude because the mantissa is in
        // [0.1, 1); equal exponents compare digit strings, shorter (a prefix) first.
        buf.extend_from_slice(&((self.exponent as u32) ^ (1 << 31)).to_be_bytes());
        // Two digits per byte as 2 + 2*(10a + b) (2..=200); a final single digit `a` as
        // 1 + 20a, which sorts just before every pair starting with `a`; then a 0 terminator
        // that sorts before any further digits.
        let mut pairs = self.digits.chunks_exact(2);
        for pair in &mut pairs {
            buf.push(2 + 2 * (10 * pair[0] + pair[1]));
        }
        if let [single] = pairs.remainder() {
            buf.push(1 + 20 * single);
        }
        buf.push(0);
        // A negative number sorts in reverse order of its magnitude.
        if self.negative {
            for b in &mut buf[start..] {
                *b = !*b;
            }
        }
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        self.exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

/// Checks the PostgreSQL `numeric` limits for a value with `digits` significant digits.
fn check_range(exponent: i64, digits: usize) -> Result<(), &'static str> {
    if exponent > i64::from(Decimal::MAX_EXPONENT) {
        return Err("too many digits before the decimal point");
    }
    if digits as i64 - exponent > Decimal::MAX_FRACTION_DIGITS {
        return Err("too many digits after the decimal point");
    }
    Ok(())
}

impl From<i64> for Decimal {
    fn from(v: i64) -> Self {
        let mut digits: Vec<u8> = v
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        let exponent = digits.len() as i32;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Decimal::ZERO;
        }
        Decimal {
            negative: v < 0,
            exponent,
            digits,
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let class = |d: &Decimal| match (d.is_zero(), d.negative) {
            (true, _) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        match class(self).cmp(&class(other)) {
            Ordering::Equal if self.negative => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Decimal {
    type Err = Error;

    /// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (at least one mantissa digit).
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidDecimal {
            input: s.chars().take(64).collect(),
            reason,
        };
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part)
        {
            return Err(invalid("expected digits with an optional decimal point"));
        }
        let exp: i64 = match exp {
            None => 0,
            Some(e) => {
                let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
                if unsigned.is_empty() || !all_digits(unsigned) || unsigned.len() > 9 {
                    return Err(invalid("bad exponent"));
                }
                e.parse().map_err(|_| invalid("bad exponent"))?
            }
        };
        let mut digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        if leading == digits.len() {
            return Ok(Decimal::ZERO);
        }
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let exponent = int_part.len() as i64 - leading as i64 + exp;
        check_range(exponent, digits.len()).map_err(invalid)?;
        Ok(Decimal {
            negative,
            exponent: exponent as i32,
            digits,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut out = String::with_capacity(self.digits.len() + 4);
        if self.negative {
            out.push('-');
        }
        let digit = |d: &u8| char::from(b'0' + d);
        let n = self.digits.len() as i64;
        let e = i64::from(self.exponent);
        if e <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-e) as usize));
            out.extend(self.digits.iter().map(digit));
        } else if e < n {
            out.extend(self.digits[..e as usize].iter().map(digit));
            out.push('.');
            out.extend(self.digits[e as usize..].iter().map(digit));
        } else {
            out.extend(self.digits.iter().map(digit));
            out.extend(std::iter::repeat_n('0', (e - n) as usize));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}
