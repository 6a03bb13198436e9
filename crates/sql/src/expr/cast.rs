//! Casts between types and the text input functions of every type, following PostgreSQL's
//! rules for which casts are allowed where (`pg_cast.castcontext`) and its input syntax.

use chrono::{NaiveDate, NaiveTime};

use super::{datetime, numeric};
use crate::api::{Datum, SqlError, SqlType};
use crate::datum_text::{format_float8, format_timestamp};
use crate::types::{
    TypeSpec, check_int_range, display_name, int_out_of_range, is_integer, is_numeric,
};

/// Where a cast happens, which decides whether PostgreSQL allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CastContext {
    /// Silently, to make operand types match (`int4 + int8`).
    Implicit,
    /// Storing into a column (INSERT, UPDATE).
    Assignment,
    /// Written by the user (`CAST(x AS t)`, `x::t`).
    Explicit,
}

/// Whether a value of type `from` may be converted to `to` in `ctx`.
pub(crate) fn can_cast(from: SqlType, to: SqlType, ctx: CastContext) -> bool {
    use SqlType::*;
    if from == to {
        return true;
    }
    let needed = match (from, to) {
        (Int2, Int4 | Int8) | (Int4, Int8) => CastContext::Implicit,
        (f, Float8) if is_integer(f) => CastContext::Implicit,
        (f, Numeric) if is_integer(f) => CastContext::Implicit,
        (Numeric, Float8) => CastContext::Implicit,
        (Date, Timestamp | TimestampTz) | (Timestamp, TimestampTz) => CastContext::Implicit,
        (TimestampTz, Timestamp) | (Timestamp | TimestampTz, Date) => CastContext::Assignment,
        (f, t) if is_numeric(f) && is_numeric(t) => CastContext::Assignment,
        (_, Text) => CastContext::Assignment,
        (Text, _) => CastContext::Explicit,
        (Int4, Bool) | (Bool, Int4) => CastContext::Explicit,
        _ => return false,
    };
    ctx >= needed
}

/// Converts `d` (of type `from`) to `to`. The caller has checked [`can_cast`].
pub(crate) fn cast_datum(
    d: Datum,
    from: SqlType,
    to: TypeSpec,
    ctx: CastContext,
) -> Result<Datum, SqlError> {
    let out = match (d, to.ty) {
        (Datum::Null, _) => return Ok(Datum::Null),
        (Datum::Text(s), SqlType::Text) => Datum::Text(s),
        (Datum::Text(s), _) => parse_text(&s, to.ty)?,
        (d, SqlType::Text) => Datum::Text(to_text(&d)),
        (Datum::Int(v), t) if is_integer(t) => Datum::Int(check_int_range(v, t)?),
        (Datum::Int(v), SqlType::Float8) => Datum::Float(v as f64),
        (Datum::Float(v), t) if is_integer(t) => Datum::Int(float_to_int(v, t)?),
        (Datum::Float(v), SqlType::Float8) => Datum::Float(v),
        (Datum::Int(v), SqlType::Bool) => Datum::Bool(v != 0),
        (Datum::Bool(b), t) if is_integer(t) => Datum::Int(i64::from(b)),
        (Datum::Int(v), SqlType::Numeric) => numeric::from_i64(v),
        (Datum::Float(v), SqlType::Numeric) => numeric::from_f64(v)?,
        (d @ Datum::Numeric(..), SqlType::Numeric) => d,
        (Datum::Numeric(v, _), SqlType::Float8) => {
            let f = v.to_f64();
            if f.is_infinite() {
                return Err(SqlError::out_of_range(
                    "value out of range for type double precision",
                ));
            }
            Datum::Float(f)
        }
        (Datum::Date(d), SqlType::Timestamp) => Datum::Timestamp(i64::from(d) * 86_400_000_000),
        (Datum::Date(d), SqlType::TimestampTz) => Datum::TimestampTz(i64::from(d) * 86_400_000_000),
        (Datum::Timestamp(t), SqlType::TimestampTz) => Datum::TimestampTz(t),
        (Datum::TimestampTz(t), SqlType::Timestamp) => Datum::Timestamp(t),
        (Datum::Timestamp(t) | Datum::TimestampTz(t), SqlType::Date) => Datum::Date(
            i32::try_from(t.div_euclid(86_400_000_000))
                .map_err(|_| SqlError::new("22008", "date out of range"))?,
        ),
        (
            d @ (Datum::Date(_)
            | Datum::TimestampTz(_)
            | Datum::Interval(_)
            | Datum::Uuid(_)
            | Datum::Bytea(_)),
            t,
        ) if kind_type(&d) == Some(t) => d,
        (Datum::Numeric(v, _), t) if is_integer(t) => {
            let i = numeric::to_i64(&v, || int_out_of_range(t))?;
            Datum::Int(check_int_range(i, t)?)
        }
        (d @ Datum::Bool(_), SqlType::Bool) | (d @ Datum::Timestamp(_), SqlType::Timestamp) => d,
        (d, _) => {
            return Err(SqlError::new(
                "42846",
                format!("cannot cast type {} to {}", from.pg_name(), to.ty.pg_name()),
            )
            .with_detail(format!("value {d:?}")));
        }
    };
    match (out, to.max_len, to.numeric) {
        (Datum::Text(s), Some(n), _) => {
            fit_varchar(s, n, to.fixed, ctx).map(|s| Datum::Text(pad_char(s, n, to.fixed)))
        }
        (Datum::Numeric(v, _), _, Some((p, s))) => numeric::apply_typmod(&v, p, s),
        (out, _, _) => Ok(out),
    }
}

/// The type of the date/time, UUID and BYTEA values.
fn kind_type(d: &Datum) -> Option<SqlType> {
    Some(match d {
        Datum::Date(_) => SqlType::Date,
        Datum::TimestampTz(_) => SqlType::TimestampTz,
        Datum::Interval(_) => SqlType::Interval,
        Datum::Uuid(_) => SqlType::Uuid,
        Datum::Bytea(_) => SqlType::Bytea,
        _ => return None,
    })
}

/// The text form used by casts to text (`true::text` is `true`, unlike the output format's
/// `t`).
fn to_text(d: &Datum) -> String {
    match d {
        Datum::Bool(b) => b.to_string(),
        Datum::Int(v) => v.to_string(),
        Datum::Float(v) => format_float8(*v),
        Datum::Text(s) => s.clone(),
        Datum::Timestamp(v) => format_timestamp(*v),
        Datum::Numeric(v, s) => numeric::to_text(v, *s),
        other @ (Datum::Date(_)
        | Datum::TimestampTz(_)
        | Datum::Interval(_)
        | Datum::Uuid(_)
        | Datum::Bytea(_)) => other.to_pg_text().unwrap_or_default(),
        Datum::Null => String::new(),
    }
}

/// Blank-pads a `CHAR(n)` value to `n` characters.
fn pad_char(mut s: String, n: u32, fixed: bool) -> String {
    if fixed {
        let len = s.chars().count();
        s.extend(std::iter::repeat_n(' ', (n as usize).saturating_sub(len)));
    }
    s
}

/// Applies a `VARCHAR(n)` or `CHAR(n)` limit: explicit casts truncate, assignments fail
/// unless only spaces would be cut (PostgreSQL's rule).
fn fit_varchar(s: String, n: u32, fixed: bool, ctx: CastContext) -> Result<String, SqlError> {
    let n = n as usize;
    let Some((cut, _)) = s.char_indices().nth(n) else {
        return Ok(s);
    };
    if ctx == CastContext::Explicit || s[cut..].chars().all(|c| c == ' ') {
        return Ok(s[..cut].to_string());
    }
    Err(SqlError::new(
        "22001",
        format!(
            "value too long for type {}",
            display_name(TypeSpec {
                ty: SqlType::Text,
                max_len: Some(n as u32),
                numeric: None,
                fixed,
            })
        ),
    ))
}

/// float8 to an integer type: round half to even (`rint`), then range-check.
fn float_to_int(v: f64, ty: SqlType) -> Result<i64, SqlError> {
    let r = v.round_ties_even();
    // `i64::MAX as f64` rounds up to 2^63, so the upper bound must be exclusive.
    if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        return Err(int_out_of_range(ty));
    }
    check_int_range(r as i64, ty)
}

/// Parses the text form of a value of type `ty` (PostgreSQL's type input functions).
pub(crate) fn parse_text(s: &str, ty: SqlType) -> Result<Datum, SqlError> {
    Ok(match ty {
        SqlType::Text => Datum::Text(s.to_string()),
        SqlType::Bool => Datum::Bool(parse_bool(s)?),
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => Datum::Int(parse_int(s, ty)?),
        SqlType::Float8 => Datum::Float(parse_float(s)?),
        SqlType::Timestamp => Datum::Timestamp(parse_timestamp(s)?),
        SqlType::Numeric => numeric::parse(s)?,
        SqlType::Date => Datum::Date(datetime::parse_date(s)?),
        SqlType::TimestampTz => Datum::TimestampTz(datetime::parse_timestamptz(s)?),
        SqlType::Interval => Datum::Interval(datetime::parse_interval(s)?),
        SqlType::Uuid => Datum::Uuid(datetime::parse_uuid(s)?),
        SqlType::Bytea => Datum::Bytea(datetime::parse_bytea(s)?),
    })
}

fn parse_bool(s: &str) -> Result<bool, SqlError> {
    let t = s.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || t == "on" || t == "1" {
        Ok(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Ok(false)
    } else {
        Err(SqlError::invalid_text("boolean", s))
    }
}

fn parse_int(s: &str, ty: SqlType) -> Result<i64, SqlError> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SqlError::invalid_text(ty.pg_name(), s));
    }
    let out_of_range = || {
        SqlError::out_of_range(format!(
            "value \"{s}\" is out of range for type {}",
            ty.pg_name()
        ))
    };
    let v: i64 = t.parse().map_err(|_| out_of_range())?;
    check_int_range(v, ty).map_err(|_| out_of_range())
}

fn parse_float(s: &str) -> Result<f64, SqlError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower
            .parse::<f64>()
            .map_err(|_| SqlError::invalid_text("double precision", s));
    }
    // Rust accepts exactly the decimal forms PostgreSQL does once the words are handled above.
    let v: f64 = t
        .parse()
        .map_err(|_| SqlError::invalid_text("double precision", s))?;
    let mantissa = lower.split('e').next().unwrap_or("");
    let nonzero_mantissa = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if v.is_infinite() || (v == 0.0 && nonzero_mantissa) {
        return Err(SqlError::out_of_range(format!(
            "\"{s}\" is out of range for type double precision"
        )));
    }
    Ok(v)
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][zone]`. A trailing time zone is ignored, as
/// PostgreSQL does for `timestamp without time zone`; fractions are rounded to microseconds.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, SqlError> {
    let syntax = || {
        SqlError::new(
            "22007",
            format!("invalid input syntax for type timestamp: \"{s}\""),
        )
    };
    let range = || {
        SqlError::new(
            "22008",
            format!("date/time field value out of range: \"{s}\""),
        )
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("epoch") {
        return Ok(0);
    }
    let (date_part, rest) = match t.find([' ', 'T', 't']) {
        Some(i) => (&t[..i], t[i + 1..].trim_start()),
        None => (t, ""),
    };
    let mut fields = date_part.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(syntax());
    };
    let num = |f: &str| -> Result<u32, SqlError> {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        f.parse().map_err(|_| syntax())
    };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let date =
        NaiveDate::from_ymd_opt(i32::try_from(y).map_err(|_| range())?, m, d).ok_or_else(range)?;
    let (time, frac_micros) = if rest.is_empty() {
        (NaiveTime::MIN, 0)
    } else {
        parse_time(rest, &syntax, &range)?
    };
    let micros = date.and_time(time).and_utc().timestamp_micros();
    micros.checked_add(frac_micros).ok_or_else(range)
}

/// Parses `HH:MM[:SS[.fraction]][zone]`; returns the whole-second time and the fraction in
/// microseconds (which may round up to a full second, hence kept separately).
fn parse_time(
    t: &str,
    syntax: &dyn Fn() -> SqlError,
    range: &dyn Fn() -> SqlError,
) -> Result<(NaiveTime, i64), SqlError> {
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(t.len());
    let (clock, zone) = t.split_at(end);
    let zone = zone.trim();
    let zone_ok = zone.is_empty()
        || zone.eq_ignore_ascii_case("z")
        || zone.eq_ignore_ascii_case("utc")
        || zone.eq_ignore_ascii_case("gmt")
        || (zone.starts_with(['+', '-'])
            && zone[1..].bytes().all(|b| b.is_ascii_digit() || b == b':'));
    if !zone_ok {
        return Err(syntax());
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, b),
        None => (clock, ""),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return Err(syntax());
    }
    let field = |p: &str| p.parse::<u32>().map_err(|_| syntax());
    let (h, m) = (field(parts[0])?, field(parts[1])?);
    let sec = if parts.len() == 3 {
        field(parts[2])?
    } else {
        0
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (!frac.is_empty() && parts.len() < 3) {
        return Err(syntax());
    }
    let frac_micros = if frac.is_empty() {
        0
    } else {
        // Round to microseconds: take 7 digits, round the last one away.
        let mut digits: String = frac.chars().take(7).collect();
        while digits.len() < 7 {
            digits.push('0');
        }
        let seven: i64 = digits.parse().map_err(|_| syntax())?;
        (seven + 5) / 10
    };
    // 24:00:00 is allowed by PostgreSQL and means midnight of the next day.
    if h == 24 && m == 0 && sec == 0 && frac_micros == 0 {
        return Ok((NaiveTime::MIN, 86_400_000_000));
    }
    let time = NaiveTime::from_hms_opt(h, m, sec).ok_or_else(range)?;
    Ok((time, frac_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: SqlType) -> TypeSpec {
        TypeSpec::plain(ty)
    }

    #[test]
    fn cast_rules() {
        use CastContext::*;
        assert!(can_cast(SqlType::Int4, SqlType::Int8, Implicit));
        assert!(!can_cast(SqlType::Int8, SqlType::Int4, Implicit));
        assert!(can_cast(SqlType::Int8, SqlType::Int4, Assignment));
        assert!(can_cast(SqlType::Int4, SqlType::Text, Assignment));
        assert!(!can_cast(SqlType::Text, SqlType::Int4, Assignment));
        assert!(can_cast(SqlType::Text, SqlType::Int4, Explicit));
        assert!(can_cast(SqlType::Bool, SqlType::Int4, Explicit));
        assert!(!can_cast(SqlType::Bool, SqlType::Float8, Explicit));
        assert!(!can_cast(SqlType::Timestamp, SqlType::Int8, Explicit));
    }

    #[test]
    fn numeric_casts() {
        let c = |d, from, to| cast_datum(d, from, spec(to), CastContext::Explicit);
        assert_eq!(
            c(Datum::Float(2.5), SqlType::Float8, SqlType::Int4).unwrap(),
            Datum::Int(2)
        );
        assert_eq!(
            c(Datum::Float(3.5), SqlType::Float8, SqlType::Int4).unwrap(),
            Datum::Int(4)
        );
        assert_eq!(
            c(Datum::Float(-2.5), SqlType::Float8, SqlType::Int8).unwrap(),
            Datum::Int(-2)
        );
        assert_eq!(
            c(Datum::Float(3e9), SqlType::Float8, SqlType::Int4)
                .unwrap_err()
                .message,
            "integer out of range"
        );
        assert_eq!(
            c(Datum::Float(f64::NAN), SqlType::Float8, SqlType::Int8)
                .unwrap_err()
                .code,
            "22003"
        );
        assert_eq!(
            c(Datum::Float(9.3e18), SqlType::Float8, SqlType::Int8)
                .unwrap_err()
                .code,
            "22003"
        );
        assert_eq!(
            c(Datum::Int(70000), SqlType::Int4, SqlType::Int2)
                .unwrap_err()
                .message,
            "smallint out of range"
        );
        assert_eq!(
            c(Datum::Int(3), SqlType::Int4, SqlType::Float8).unwrap(),
            Datum::Float(3.0)
        );
        assert_eq!(
            c(Datum::Bool(true), SqlType::Bool, SqlType::Text).unwrap(),
            Datum::Text("true".into())
        );
        assert_eq!(
            c(Datum::Float(0.1), SqlType::Float8, SqlType::Text).unwrap(),
            Datum::Text("0.1".into())
        );
        assert_eq!(
            c(Datum::Int(5), SqlType::Int4, SqlType::Bool).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(
            c(Datum::Null, SqlType::Int4, SqlType::Bool).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn varchar_limits() {
        let to = TypeSpec {
            ty: SqlType::Text,
            max_len: Some(3),
            numeric: None,
            fixed: false,
        };
        let t = |s: &str| Datum::Text(s.into());
        assert_eq!(
            cast_datum(t("abcdef"), SqlType::Text, to, CastContext::Explicit).unwrap(),
            t("abc")
        );
        assert_eq!(
            cast_datum(t("abc   "), SqlType::Text, to, CastContext::Assignment).unwrap(),
            t("abc")
        );
        let e = cast_datum(t("abcd"), SqlType::Text, to, CastContext::Assignment).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22001", "value too long for type character varying(3)")
        );
        assert_eq!(
            cast_datum(t("äöü"), SqlType::Text, to, CastContext::Assignment).unwrap(),
            t("äöü")
        );
        let fixed = TypeSpec { fixed: true, ..to };
        assert_eq!(
            cast_datum(t("a"), SqlType::Text, fixed, CastContext::Assignment).unwrap(),
            t("a  ")
        );
        assert_eq!(
            cast_datum(t("abcd"), SqlType::Text, fixed, CastContext::Assignment)
                .unwrap_err()
                .message,
            "value too long for type character(3)"
        );
    }

    #[test]
    fn text_input() {
        assert_eq!(parse_text(" 42 ", SqlType::Int4).unwrap(), Datum::Int(42));
        assert_eq!(parse_text("-7", SqlType::Int2).unwrap(), Datum::Int(-7));
        let e = parse_text("abc", SqlType::Int4).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22P02", "invalid input syntax for type integer: \"abc\"")
        );
        let e = parse_text("99999999999", SqlType::Int4).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "22003",
                "value \"99999999999\" is out of range for type integer"
            )
        );
        assert_eq!(parse_text("1.5", SqlType::Int4).unwrap_err().code, "22P02");
        assert_eq!(parse_text("", SqlType::Int8).unwrap_err().code, "22P02");
        assert_eq!(
            parse_text("1e3", SqlType::Float8).unwrap(),
            Datum::Float(1000.0)
        );
        assert_eq!(
            parse_text("-Infinity", SqlType::Float8).unwrap(),
            Datum::Float(f64::NEG_INFINITY)
        );
        assert!(
            matches!(parse_text("NaN", SqlType::Float8).unwrap(), Datum::Float(v) if v.is_nan())
        );
        assert_eq!(
            parse_text("1e400", SqlType::Float8).unwrap_err().code,
            "22003"
        );
        assert_eq!(
            parse_text("1e-400", SqlType::Float8).unwrap_err().code,
            "22003"
        );
        assert_eq!(
            parse_text("0e-400", SqlType::Float8).unwrap(),
            Datum::Float(0.0)
        );
        assert_eq!(parse_text("x1", SqlType::Float8).unwrap_err().code, "22P02");
        for (s, b) in [
            ("t", true),
            ("TRUE", true),
            ("yes", true),
            ("on", true),
            ("1", true),
            ("f", false),
            ("off", false),
            ("no", false),
            (" false ", false),
        ] {
            assert_eq!(parse_text(s, SqlType::Bool).unwrap(), Datum::Bool(b), "{s}");
        }
        assert_eq!(parse_text("o", SqlType::Bool).unwrap_err().code, "22P02");
        assert_eq!(
            parse_text("maybe", SqlType::Bool).unwrap_err().message,
            "invalid input syntax for type boolean: \"maybe\""
        );
    }

    #[test]
    fn timestamp_input() {
        let ts = |s: &str| parse_timestamp(s);
        assert_eq!(ts("2024-01-01 10:00:00").unwrap(), 1_704_103_200_000_000);
        assert_eq!(ts("2024-01-01T10:00:00").unwrap(), 1_704_103_200_000_000);
        assert_eq!(ts("2024-01-01 10:00").unwrap(), 1_704_103_200_000_000);
        assert_eq!(ts("2024-01-01").unwrap(), 1_704_067_200_000_000);
        assert_eq!(ts("2024-01-01 10:00:00.5").unwrap(), 1_704_103_200_500_000);
        assert_eq!(
            ts("2024-01-01 10:00:00.0000005").unwrap(),
            1_704_103_200_000_001
        );
        assert_eq!(ts("2024-01-01 10:00:00+02").unwrap(), 1_704_103_200_000_000);
        assert_eq!(ts("1970-01-01 24:00:00").unwrap(), 86_400_000_000);
        assert_eq!(ts("epoch").unwrap(), 0);
        assert_eq!(ts("2024-13-01").unwrap_err().code, "22008");
        assert_eq!(ts("2024-02-30 00:00").unwrap_err().code, "22008");
        assert_eq!(ts("2024-01-01 25:00").unwrap_err().code, "22008");
        assert_eq!(ts("yesterday-ish").unwrap_err().code, "22007");
        assert_eq!(
            ts("2024-01-01 10:00:00 Mars/Olympus").unwrap_err().code,
            "22007"
        );
    }
}
