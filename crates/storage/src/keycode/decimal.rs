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

// ---------------------------------------------------------------------------------------------
// Arithmetic, as PostgreSQL's `numeric` does it: exact for addition, subtraction and
// multiplication; division and rounding to a given number of fraction digits, rounding half
// away from zero.
// ---------------------------------------------------------------------------------------------

/// Magnitude digits (most significant first) without leading zeros.
fn strip(mut d: Vec<u8>) -> Vec<u8> {
    let lead = d.iter().take_while(|&&x| x == 0).count();
    d.drain(..lead);
    d
}

fn cmp_mag(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = a.len().max(b.len());
    let mut out = vec![0u8; n + 1];
    let mut carry = 0u8;
    for i in 0..n {
        let x = if i < a.len() { a[a.len() - 1 - i] } else { 0 };
        let y = if i < b.len() { b[b.len() - 1 - i] } else { 0 };
        let s = x + y + carry;
        out[n - i] = s % 10;
        carry = s / 10;
    }
    out[0] = carry;
    strip(out)
}

/// `a - b` for `a >= b`.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i8;
    for i in 0..a.len() {
        let y = if i < b.len() {
            b[b.len() - 1 - i] as i8
        } else {
            0
        };
        let idx = a.len() - 1 - i;
        let mut v = out[idx] as i8 - y - borrow;
        borrow = 0;
        if v < 0 {
            v += 10;
            borrow = 1;
        }
        out[idx] = v as u8;
    }
    strip(out)
}

fn mul_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() || b.is_empty() {
        return vec![];
    }
    let mut acc = vec![0u32; a.len() + b.len()];
    for (i, &x) in a.iter().rev().enumerate() {
        for (j, &y) in b.iter().rev().enumerate() {
            acc[i + j] += u32::from(x) * u32::from(y);
        }
    }
    let mut out = Vec::with_capacity(acc.len());
    let mut carry = 0u32;
    for v in acc {
        let s = v + carry;
        out.push((s % 10) as u8);
        carry = s / 10;
    }
    while carry > 0 {
        out.push((carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    strip(out)
}

/// Integer division of magnitudes: (quotient, remainder).
fn divmod_mag(a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut q = Vec::with_capacity(a.len());
    let mut r: Vec<u8> = Vec::new();
    for &d in a {
        r.push(d);
        r = strip(r);
        let mut n = 0u8;
        while cmp_mag(&r, b) != Ordering::Less {
            r = sub_mag(&r, b);
            n += 1;
        }
        q.push(n);
    }
    (strip(q), r)
}

fn zeros(mut d: Vec<u8>, n: usize) -> Vec<u8> {
    d.extend(std::iter::repeat_n(0, n));
    d
}

impl Decimal {
    /// The value as `±digits × 10^exp` with `digits` an integer (most significant first).
    fn to_int(&self) -> (bool, Vec<u8>, i64) {
        (
            self.negative,
            self.digits.clone(),
            i64::from(self.exponent) - self.digits.len() as i64,
        )
    }

    /// `±digits × 10^exp`, normalised; `None` outside numeric's range.
    fn from_int(negative: bool, digits: Vec<u8>, exp: i64) -> Option<Decimal> {
        let mut digits = strip(digits);
        if digits.is_empty() {
            return Some(Decimal::ZERO);
        }
        let mut exp = exp;
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        let exponent = exp + digits.len() as i64;
        check_range(exponent, digits.len()).ok()?;
        Some(Decimal {
            negative,
            exponent: i32::try_from(exponent).ok()?,
            digits,
        })
    }

    /// `self + other`; `None` when the result leaves numeric's range.
    pub fn checked_add(&self, other: &Decimal) -> Option<Decimal> {
        let (an, ad, ae) = self.to_int();
        let (bn, bd, be) = other.to_int();
        if self.is_zero() {
            return Some(other.clone());
        }
        if other.is_zero() {
            return Some(self.clone());
        }
        let e = ae.min(be);
        let a = zeros(ad, usize::try_from(ae - e).ok()?);
        let b = zeros(bd, usize::try_from(be - e).ok()?);
        if an == bn {
            return Decimal::from_int(an, add_mag(&a, &b), e);
        }
        match cmp_mag(&a, &b) {
            Ordering::Equal => Some(Decimal::ZERO),
            Ordering::Greater => Decimal::from_int(an, sub_mag(&a, &b), e),
            Ordering::Less => Decimal::from_int(bn, sub_mag(&b, &a), e),
        }
    }

    /// `self - other`.
    pub fn checked_sub(&self, other: &Decimal) -> Option<Decimal> {
        self.checked_add(&other.neg())
    }

    /// `self × other`.
    pub fn checked_mul(&self, other: &Decimal) -> Option<Decimal> {
        let (an, ad, ae) = self.to_int();
        let (bn, bd, be) = other.to_int();
        Decimal::from_int(an != bn, mul_mag(&ad, &bd), ae + be)
    }

    /// `self / other` with `scale` fraction digits, rounded half away from zero (`truncate`:
    /// cut instead). `None` for division by zero or a result out of range.
    pub fn checked_div(&self, other: &Decimal, scale: i32, truncate: bool) -> Option<Decimal> {
        if other.is_zero() {
            return None;
        }
        let (an, ad, ae) = self.to_int();
        let (bn, bd, be) = other.to_int();
        // Q = (A × 10^(ae - be + scale + 1)) / B, one digit more than wanted for rounding.
        let k = ae - be + i64::from(scale) + 1;
        if k > 2 * i64::from(Decimal::MAX_EXPONENT) {
            return None;
        }
        let (num, den) = if k >= 0 {
            (zeros(ad, usize::try_from(k).ok()?), bd)
        } else {
            let shift = usize::try_from(-k).ok()?;
            if shift > ad.len() + 2 {
                // The quotient is below the last kept digit.
                return Some(Decimal::ZERO);
            }
            (ad, zeros(bd, shift))
        };
        let (q, _) = divmod_mag(&num, &den);
        let last = q.last().copied().unwrap_or(0);
        let mut q = q;
        q.pop();
        let mut q = strip(q);
        if !truncate && last >= 5 {
            q = add_mag(&q, &[1]);
        }
        Decimal::from_int(an != bn, q, -i64::from(scale))
    }

    /// The remainder of truncating division (the sign of `self`), as PostgreSQL's `%`.
    pub fn checked_rem(&self, other: &Decimal) -> Option<Decimal> {
        let q = self.checked_div(other, 0, true)?;
        self.checked_sub(&q.checked_mul(other)?)
    }

    /// Rounded half away from zero to `scale` fraction digits (negative: to tens, hundreds...).
    pub fn round(&self, scale: i32) -> Decimal {
        self.round_with(scale, false)
    }

    /// Truncated toward zero to `scale` fraction digits.
    pub fn trunc(&self, scale: i32) -> Decimal {
        self.round_with(scale, true)
    }

    fn round_with(&self, scale: i32, truncate: bool) -> Decimal {
        let (neg, d, e) = self.to_int();
        let target = -i64::from(scale);
        if e >= target || self.is_zero() {
            return self.clone();
        }
        let drop = usize::try_from(target - e).unwrap_or(usize::MAX);
        if drop > d.len() {
            return Decimal::ZERO;
        }
        let keep = d.len() - drop;
        let first_dropped = d[keep];
        let mut q = strip(d[..keep].to_vec());
        if !truncate && first_dropped >= 5 {
            q = add_mag(&q, &[1]);
        }
        Decimal::from_int(neg, q, target).unwrap_or(Decimal::ZERO)
    }

    /// The smallest integer not below the value.
    pub fn ceil(&self) -> Decimal {
        let t = self.trunc(0);
        if t == *self || self.negative {
            t
        } else {
            t.checked_add(&Decimal::from(1)).unwrap_or(t)
        }
    }

    /// The largest integer not above the value.
    pub fn floor(&self) -> Decimal {
        let t = self.trunc(0);
        if t == *self || !self.negative {
            t
        } else {
            t.checked_sub(&Decimal::from(1)).unwrap_or(t)
        }
    }

    /// The number of digits after the decimal point (0 for integers).
    pub fn fraction_digits(&self) -> u32 {
        let f = self.digits.len() as i64 - i64::from(self.exponent);
        u32::try_from(f.max(0)).unwrap_or(u32::MAX)
    }

    /// The number of digits before the decimal point (0 for values below 1).
    pub fn integer_digits(&self) -> u32 {
        u32::try_from(self.exponent.max(0)).unwrap_or(0)
    }

    /// The weight and value of the most significant base-10000 digit, as PostgreSQL's
    /// `numeric` stores the number (groups of four decimal digits aligned at the point). Zero
    /// has weight 0 and first digit 0.
    pub fn nbase_first(&self) -> (i32, u32) {
        if self.is_zero() {
            return (0, 0);
        }
        let e = self.exponent;
        let weight = (e - 1).div_euclid(4);
        // The group holds the decimal digits of powers 4w+3 .. 4w.
        let mut first = 0u32;
        for p in (4 * weight..4 * weight + 4).rev() {
            // Digit of power p is digits[e - 1 - p].
            let idx = i64::from(e) - 1 - i64::from(p);
            let d = usize::try_from(idx)
                .ok()
                .and_then(|i| self.digits.get(i))
                .copied()
                .unwrap_or(0);
            first = first * 10 + u32::from(d);
        }
        (weight, first)
    }

    /// The value as an `i64` if it is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.fraction_digits() > 0 {
            return None;
        }
        self.to_string().parse().ok()
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Plain notation with exactly `scale` fraction digits (padded with zeros; the value must
    /// not have more).
    pub fn to_string_with_scale(&self, scale: u32) -> String {
        let s = self.to_string();
        let have = self.fraction_digits();
        if scale <= have {
            return s;
        }
        let mut out = s;
        if have == 0 {
            out.push('.');
        }
        out.extend(std::iter::repeat_n('0', (scale - have) as usize));
        out
    }
}

#[cfg(test)]
mod arithmetic_tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn add_sub_mul_are_exact() {
        assert_eq!(d("1.5").checked_add(&d("2.25")).unwrap(), d("3.75"));
        assert_eq!(d("1.5").checked_sub(&d("2.25")).unwrap(), d("-0.75"));
        assert_eq!(d("-1.5").checked_add(&d("1.5")).unwrap(), Decimal::ZERO);
        assert_eq!(d("999").checked_add(&d("1")).unwrap(), d("1000"));
        assert_eq!(d("0.1").checked_add(&d("0.2")).unwrap(), d("0.3"));
        assert_eq!(
            d("1e20").checked_add(&d("1e-5")).unwrap(),
            d("100000000000000000000.00001")
        );
        assert_eq!(d("-12.5").checked_mul(&d("0.4")).unwrap(), d("-5"));
        assert_eq!(
            d("123456789").checked_mul(&d("987654321")).unwrap(),
            d("121932631112635269")
        );
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        assert_eq!(d("1").checked_div(&d("3"), 5, false).unwrap(), d("0.33333"));
        assert_eq!(d("2").checked_div(&d("3"), 5, false).unwrap(), d("0.66667"));
        assert_eq!(d("-2").checked_div(&d("3"), 2, false).unwrap(), d("-0.67"));
        assert_eq!(d("1").checked_div(&d("8"), 2, false).unwrap(), d("0.13"));
        assert_eq!(d("7").checked_div(&d("2"), 0, true).unwrap(), d("3"));
        assert_eq!(
            d("1e-10").checked_div(&d("3"), 2, false).unwrap(),
            Decimal::ZERO
        );
        assert!(d("1").checked_div(&Decimal::ZERO, 2, false).is_none());
        assert_eq!(d("-7").checked_rem(&d("3")).unwrap(), d("-1"));
        assert_eq!(d("7.5").checked_rem(&d("2")).unwrap(), d("1.5"));
    }

    #[test]
    fn rounding_and_scales() {
        assert_eq!(d("2.5").round(0), d("3"));
        assert_eq!(d("-2.5").round(0), d("-3"));
        assert_eq!(d("2.449").round(1), d("2.4"));
        assert_eq!(d("1250").round(-2), d("1300"));
        assert_eq!(d("2.99").trunc(1), d("2.9"));
        assert_eq!(d("0.004").round(2), Decimal::ZERO);
        assert_eq!(d("-1.2").ceil(), d("-1"));
        assert_eq!(d("-1.2").floor(), d("-2"));
        assert_eq!(d("1.2").ceil(), d("2"));
        assert_eq!(d("12.345").fraction_digits(), 3);
        assert_eq!(d("12.345").integer_digits(), 2);
        assert_eq!(d("1.5").to_string_with_scale(3), "1.500");
        assert_eq!(d("7").to_string_with_scale(2), "7.00");
        assert_eq!(d("12345.6").nbase_first(), (1, 1));
        assert_eq!(d("0.05").nbase_first(), (-1, 500));
        assert_eq!(d("3").nbase_first(), (0, 3));
        assert_eq!(d("42").to_i64(), Some(42));
        assert_eq!(d("4.2").to_i64(), None);
    }
}
