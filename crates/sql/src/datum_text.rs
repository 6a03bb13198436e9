//! PostgreSQL's text output format of values (what `psql` shows and what the wire protocol sends
//! in text mode).

use chrono::{Datelike, Timelike};

use crate::api::Datum;

/// The text form of `d`, `None` for NULL.
pub(crate) fn to_pg_text(d: &Datum) -> Option<String> {
    Some(match d {
        Datum::Null => return None,
        Datum::Bool(true) => "t".to_string(),
        Datum::Bool(false) => "f".to_string(),
        Datum::Int(v) => v.to_string(),
        Datum::Float(v) => format_float8(*v),
        Datum::Text(s) => s.clone(),
        Datum::Timestamp(micros) => format_timestamp(*micros),
        Datum::Numeric(v, scale) => crate::expr::numeric_text(v, *scale),
        Datum::Date(d) => crate::expr::datetime::format_date(*d),
        Datum::TimestampTz(t) => crate::expr::datetime::format_timestamptz(*t),
        Datum::Interval(i) => crate::expr::datetime::format_interval(i),
        Datum::Uuid(u) => crate::expr::datetime::format_uuid(*u),
        Datum::Bytea(b) => crate::expr::datetime::format_bytea(b),
    })
}

/// Formats a float8 as PostgreSQL 12+ does with the default `extra_float_digits = 1`: the
/// shortest decimal that reads back to the same value, in positional notation when the decimal
/// exponent is in `-4..15` and in `d.ddde±XX` notation otherwise.
pub(crate) fn format_float8(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` prints the shortest round-trip digits, e.g. `-1.2345e-5`.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if v < 0.0 {
        out.push('-');
    }
    if (-4..15).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Formats microseconds since 1970-01-01 00:00:00 as `YYYY-MM-DD HH:MM:SS[.ffffff]`, trimming
/// trailing zeros of the fraction and printing years before 1 AD with PostgreSQL's ` BC` suffix.
pub(crate) fn format_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let Some(dt) = chrono::DateTime::from_timestamp(secs, 0) else {
        // Outside chrono's range (about ±262,000 years); values that large cannot be created
        // through the parser, so print the raw number rather than fail.
        return format!("{micros} microseconds after 1970-01-01");
    };
    let dt = dt.naive_utc();
    let (year, bc) = if dt.year() <= 0 {
        (1 - dt.year(), true)
    } else {
        (dt.year(), false)
    };
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        year,
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_postgresql() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789012345.0, "123456789012345"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.5e300, "1.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.5, "2.5"),
            (100.0, "100"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float8(*v), *want, "formatting {v:e}");
        }
    }

    #[test]
    fn timestamps_match_postgresql() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_timestamp(1_704_103_200_000_000),
            "2024-01-01 10:00:00"
        );
        assert_eq!(
            format_timestamp(1_704_103_200_500_000),
            "2024-01-01 10:00:00.5"
        );
        assert_eq!(
            format_timestamp(1_704_103_200_000_001),
            "2024-01-01 10:00:00.000001"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999999");
        // 0001-01-01 minus one day is 1 BC.
        assert_eq!(
            format_timestamp(-62_135_596_800_000_000 - 86_400_000_000),
            "0001-12-31 00:00:00 BC"
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(to_pg_text(&Datum::Null), None);
        assert_eq!(to_pg_text(&Datum::Bool(true)).unwrap(), "t");
        assert_eq!(to_pg_text(&Datum::Bool(false)).unwrap(), "f");
        assert_eq!(to_pg_text(&Datum::Int(-42)).unwrap(), "-42");
        assert_eq!(to_pg_text(&Datum::Text("x y".into())).unwrap(), "x y");
    }
}
