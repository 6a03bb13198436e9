//! NUMERIC: exact decimal arithmetic with PostgreSQL's display scales.
//!
//! A numeric value is a [`Decimal`] and its *display scale*, the number of fraction digits it
//! prints with (`1.50` has scale 2). Scales follow PostgreSQL: the larger of the operands' for
//! `+`, `-` and `%`, their sum for `*`, and for `/` at least 16 significant digits (its
//! `select_div_scale`, computed on base-10000 digits as PostgreSQL stores them).

use meridian_storage::keycode::Decimal;

use crate::api::{Datum, SqlError};

/// The most fraction digits a result may carry (PostgreSQL's NUMERIC_MAX_DISPLAY_SCALE).
const MAX_DISPLAY_SCALE: i32 = 1000;
/// Significant digits a quotient has at least (NUMERIC_MIN_SIG_DIGITS).
const MIN_SIG_DIGITS: i32 = 16;

fn overflow() -> SqlError {
    SqlError::out_of_range("value overflows numeric format")
}

/// A numeric datum, with its scale clamped to what a display scale can be.
pub(crate) fn datum(value: Decimal, scale: i32) -> Datum {
    let scale = scale.clamp(0, MAX_DISPLAY_SCALE);
    Datum::Numeric(value, scale as u16)
}

/// Parses PostgreSQL's numeric input (`12`, `-1.50`, `1e3`); the display scale is the number
/// of fraction digits written (after applying the exponent).
pub(crate) fn parse(s: &str) -> Result<Datum, SqlError> {
    let t = s.trim();
    let invalid = || SqlError::invalid_text("numeric", s);
    let value: Decimal = t.parse().map_err(|_| invalid())?;
    let lower = t.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| invalid())?),
        None => (lower.as_str(), 0),
    };
    let frac = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    let scale = (frac - exp).clamp(0, i64::from(MAX_DISPLAY_SCALE));
    Ok(datum(value, scale as i32))
}

/// An integer as numeric.
pub(crate) fn from_i64(v: i64) -> Datum {
    Datum::Numeric(Decimal::from(v), 0)
}

/// A float8 as numeric: its 15 significant digits, as PostgreSQL converts.
pub(crate) fn from_f64(v: f64) -> Result<Datum, SqlError> {
    if !v.is_finite() {
        return Err(SqlError::new(
            "0A000",
            "cannot convert infinity or NaN to numeric",
        ));
    }
    let text = format!("{v:.14e}");
    let (m, e) = text.split_once('e').unwrap_or((&text, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let value: Decimal = text.parse().map_err(|_| overflow())?;
    // Fraction digits the 15-digit form needs, without trailing zeros.
    let digits = m.trim_start_matches('-').replace('.', "");
    let significant = digits.trim_end_matches('0').len() as i32;
    let scale = (significant - 1 - e).max(0);
    Ok(datum(value.round(scale), scale))
}

/// Rounds a numeric to an integer (half away from zero), or fails with `err`.
pub(crate) fn to_i64(v: &Decimal, err: impl FnOnce() -> SqlError) -> Result<i64, SqlError> {
    v.round(0).to_i64().ok_or_else(err)
}

/// PostgreSQL's `select_div_scale`: the scale of `a / b`.
pub(crate) fn div_scale(a: &Decimal, sa: u16, b: &Decimal, sb: u16) -> i32 {
    let (w1, f1) = a.nbase_first();
    let (w2, f2) = b.nbase_first();
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = MIN_SIG_DIGITS - qweight * 4;
    rscale
        .max(i32::from(sa))
        .max(i32::from(sb))
        .clamp(0, MAX_DISPLAY_SCALE)
}

/// `a op b` for `+ - * / %`.
pub(crate) fn arith(
    op: super::ArithOp,
    a: &Decimal,
    sa: u16,
    b: &Decimal,
    sb: u16,
) -> Result<Datum, SqlError> {
    use super::ArithOp::*;
    let (sa32, sb32) = (i32::from(sa), i32::from(sb));
    Ok(match op {
        Add => datum(a.checked_add(b).ok_or_else(overflow)?, sa32.max(sb32)),
        Sub => datum(a.checked_sub(b).ok_or_else(overflow)?, sa32.max(sb32)),
        Mul => {
            let scale = (sa32 + sb32).min(MAX_DISPLAY_SCALE);
            let v = a.checked_mul(b).ok_or_else(overflow)?;
            datum(v.round(scale), scale)
        }
        Div => {
            if b.is_zero() {
                return Err(SqlError::division_by_zero());
            }
            let scale = div_scale(a, sa, b, sb);
            datum(a.checked_div(b, scale, false).ok_or_else(overflow)?, scale)
        }
        Mod => {
            if b.is_zero() {
                return Err(SqlError::division_by_zero());
            }
            datum(a.checked_rem(b).ok_or_else(overflow)?, sa32.max(sb32))
        }
    })
}

/// Applies a `NUMERIC(precision, scale)` type modifier: rounds to `scale` fraction digits and
/// rejects values with more than `precision - scale` integer digits.
pub(crate) fn apply_typmod(v: &Decimal, precision: u16, scale: u16) -> Result<Datum, SqlError> {
    let r = v.round(i32::from(scale));
    let int_digits = i64::from(r.integer_digits());
    let allowed = i64::from(precision) - i64::from(scale);
    if !r.is_zero() && int_digits > allowed {
        return Err(SqlError::out_of_range("numeric field overflow").with_detail(format!(
            "A field with precision {precision}, scale {scale} must round to an absolute value less than {}.",
            if allowed <= 0 {
                "1".to_string()
            } else {
                format!("10^{allowed}")
            }
        )));
    }
    Ok(Datum::Numeric(r, scale))
}

/// The text form: plain notation with exactly the display scale.
pub(crate) fn to_text(v: &Decimal, scale: u16) -> String {
    v.round(i32::from(scale))
        .to_string_with_scale(u32::from(scale))
}

#[cfg(test)]
mod tests {
    use super::super::ArithOp;
    use super::*;

    fn n(s: &str) -> (Decimal, u16) {
        match parse(s).unwrap() {
            Datum::Numeric(v, sc) => (v, sc),
            other => panic!("{other:?}"),
        }
    }

    fn text(d: Datum) -> String {
        match d {
            Datum::Numeric(v, s) => to_text(&v, s),
            other => panic!("{other:?}"),
        }
    }

    fn op(o: ArithOp, a: &str, b: &str) -> String {
        let (a, sa) = n(a);
        let (b, sb) = n(b);
        text(arith(o, &a, sa, &b, sb).unwrap())
    }

    #[test]
    fn scales_follow_postgresql() {
        assert_eq!(op(ArithOp::Add, "1.50", "2"), "3.50");
        assert_eq!(op(ArithOp::Mul, "1.5", "2.25"), "3.375");
        assert_eq!(op(ArithOp::Div, "1", "3"), "0.33333333333333333333");
        assert_eq!(op(ArithOp::Div, "3", "2"), "1.5000000000000000");
        assert_eq!(op(ArithOp::Div, "10", "4"), "2.5000000000000000");
        assert_eq!(op(ArithOp::Div, "1.0", "8"), "0.12500000000000000000");
        assert_eq!(op(ArithOp::Mod, "7.5", "2"), "1.5");
        assert_eq!(text(parse("1e3").unwrap()), "1000");
        assert_eq!(text(parse("1.2e-2").unwrap()), "0.012");
        assert_eq!(text(parse(" -0.50 ").unwrap()), "-0.50");
        assert_eq!(parse("abc").unwrap_err().code, "22P02");
        assert_eq!(text(from_f64(0.1).unwrap()), "0.1");
        assert_eq!(text(from_f64(1.0 / 3.0).unwrap()), "0.333333333333333");
        assert_eq!(text(from_f64(1234.5).unwrap()), "1234.5");
    }

    #[test]
    fn typmods_round_and_check_precision() {
        let (v, _) = n("123.456");
        assert_eq!(text(apply_typmod(&v, 5, 2).unwrap()), "123.46");
        let e = apply_typmod(&v, 4, 2).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22003", "numeric field overflow")
        );
        let (z, _) = n("0.001");
        assert_eq!(text(apply_typmod(&z, 3, 2).unwrap()), "0.00");
    }
}
