//! DATE, TIMESTAMPTZ and INTERVAL: text input and output as PostgreSQL's (with the session
//! time zone fixed at UTC), and their arithmetic. UUID and BYTEA text forms live here too.
//!
//! A date is days since 1970-01-01; timestamps are microseconds since 1970-01-01 00:00:00 (UTC
//! for TIMESTAMPTZ); an interval keeps months, days and microseconds apart, as PostgreSQL does,
//! because a month and a day have no fixed length. Comparisons and hashing of intervals use
//! PostgreSQL's normalisation (a month is 30 days, a day 24 hours).

use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, Timelike};

use super::ArithOp;
use crate::api::{Datum, Interval, SqlError};
use crate::datum_text::format_timestamp;

const MICROS_PER_DAY: i64 = 86_400_000_000;
const UNIX_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("the epoch is a valid date"),
};

fn out_of_range() -> SqlError {
    SqlError::new("22008", "date/time value out of range")
}

/// The calendar date of day number `days`.
pub(crate) fn to_date(days: i32) -> Option<NaiveDate> {
    UNIX_EPOCH.checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
}

/// The day number of `d`.
pub(crate) fn from_date(d: NaiveDate) -> i32 {
    (d - UNIX_EPOCH).num_days() as i32
}

/// PostgreSQL's output of a date.
pub(crate) fn format_date(days: i32) -> String {
    match to_date(days) {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        None => days.to_string(),
    }
}

/// Parses a date (`YYYY-MM-DD`, optionally followed by a time, which is dropped).
pub(crate) fn parse_date(s: &str) -> Result<i32, SqlError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("epoch") {
        return Ok(0);
    }
    let micros = super::cast::parse_timestamp(t).map_err(|e| {
        if e.code == "22007" {
            SqlError::new(
                "22007",
                format!("invalid input syntax for type date: \"{s}\""),
            )
        } else {
            e
        }
    })?;
    Ok(micros.div_euclid(MICROS_PER_DAY) as i32)
}

/// PostgreSQL's output of a TIMESTAMPTZ in UTC.
pub(crate) fn format_timestamptz(micros: i64) -> String {
    format!("{}+00", format_timestamp(micros))
}

/// Parses a TIMESTAMPTZ: a timestamp with an optional zone (`Z`, `UTC`, `+HH[:MM]`), UTC when
/// none is given (the session time zone).
pub(crate) fn parse_timestamptz(s: &str) -> Result<i64, SqlError> {
    let t = s.trim();
    let local = super::cast::parse_timestamp(t)?;
    // The zone, if any, follows the time: find a trailing +HH[:MM] / -HH[:MM].
    let offset = t
        .rfind(['+', '-'])
        .filter(|&i| i > 10 && t[..i].contains(':'))
        .map(|i| {
            let sign = if t.as_bytes()[i] == b'-' { -1 } else { 1 };
            let z = &t[i + 1..];
            let (h, m) = match z.split_once(':') {
                Some((h, m)) => (h, m),
                None if z.len() == 4 => (&z[..2], &z[2..]),
                None => (z, "0"),
            };
            let h: i64 = h.trim().parse().unwrap_or(0);
            let m: i64 = m.trim().parse().unwrap_or(0);
            sign * (h * 3600 + m * 60) * 1_000_000
        })
        .unwrap_or(0);
    local.checked_sub(offset).ok_or_else(out_of_range)
}

/// Normalised length of an interval in microseconds (30-day months, 24-hour days).
pub(crate) fn interval_micros(i: &Interval) -> i128 {
    (i128::from(i.months) * 30 + i128::from(i.days)) * i128::from(MICROS_PER_DAY)
        + i128::from(i.micros)
}

/// PostgreSQL's output of an interval (`IntervalStyle = postgres`).
pub(crate) fn format_interval(i: &Interval) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut is_before = false;
    let mut field = |v: i64, unit: &str, parts: &mut Vec<String>| {
        if v == 0 {
            return;
        }
        let plural = if v == 1 { "" } else { "s" };
        let sign = if v > 0 && is_before { "+" } else { "" };
        if v < 0 {
            is_before = true;
        }
        parts.push(format!("{sign}{v} {unit}{plural}"));
    };
    let (years, months) = (i.months / 12, i.months % 12);
    field(i64::from(years), "year", &mut parts);
    field(i64::from(months), "mon", &mut parts);
    field(i64::from(i.days), "day", &mut parts);
    if i.micros != 0 || parts.is_empty() {
        let neg = i.micros < 0;
        let m = i.micros.unsigned_abs();
        let (h, rest) = (m / 3_600_000_000, m % 3_600_000_000);
        let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
        let (sec, frac) = (rest / 1_000_000, rest % 1_000_000);
        let sign = if neg {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        let mut t = format!("{sign}{h:02}:{min:02}:{sec:02}");
        if frac != 0 {
            let f = format!("{frac:06}");
            t.push('.');
            t.push_str(f.trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// Parses an interval: `[@] quantity unit [quantity unit ...] [HH:MM[:SS[.f]]] [ago]`, or a bare
/// number of seconds.
pub(crate) fn parse_interval(s: &str) -> Result<Interval, SqlError> {
    let invalid = || SqlError::invalid_text("interval", s);
    let lower = s.trim().to_ascii_lowercase();
    let body = lower.strip_prefix('@').unwrap_or(&lower).trim();
    let (body, ago) = match body.strip_suffix("ago") {
        Some(b) => (b.trim(), true),
        None => (body, false),
    };
    let mut out = Interval {
        months: 0,
        days: 0,
        micros: 0,
    };
    let tokens: Vec<&str> = body.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(invalid());
    }
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            let (neg, t) = match tok.strip_prefix('-') {
                Some(t) => (true, t),
                None => (false, tok.strip_prefix('+').unwrap_or(tok)),
            };
            let f: Vec<&str> = t.split(':').collect();
            let num = |p: &str| p.parse::<f64>().map_err(|_| invalid());
            let (h, m, sec) = match f.as_slice() {
                [h, m] => (num(h)?, num(m)?, 0.0),
                [h, m, s] => (num(h)?, num(m)?, num(s)?),
                _ => return Err(invalid()),
            };
            let micros = ((h * 3600.0 + m * 60.0 + sec) * 1e6).round() as i64;
            out.micros += if neg { -micros } else { micros };
            i += 1;
            continue;
        }
        let value: f64 = tok.parse().map_err(|_| invalid())?;
        let unit = tokens.get(i + 1).copied();
        let unit = unit.map(|u| u.trim_end_matches(','));
        let add_micros = |out: &mut Interval, factor: f64| {
            out.micros += (value * factor).round() as i64;
        };
        match unit {
            None => add_micros(&mut out, 1e6),
            Some(u) => {
                match u {
                    "millennium" | "millennia" | "millenniums" => {
                        out.months += (value * 12000.0) as i32
                    }
                    "century" | "centuries" => out.months += (value * 1200.0) as i32,
                    "decade" | "decades" => out.months += (value * 120.0) as i32,
                    "year" | "years" | "y" | "yr" | "yrs" => out.months += (value * 12.0) as i32,
                    "month" | "months" | "mon" | "mons" => {
                        out.months += value.trunc() as i32;
                        let frac_days = value.fract() * 30.0;
                        out.days += frac_days.trunc() as i32;
                        out.micros += (frac_days.fract() * MICROS_PER_DAY as f64).round() as i64;
                    }
                    "week" | "weeks" | "w" => {
                        let d = value * 7.0;
                        out.days += d.trunc() as i32;
                        out.micros += (d.fract() * MICROS_PER_DAY as f64).round() as i64;
                    }
                    "day" | "days" | "d" => {
                        out.days += value.trunc() as i32;
                        out.micros += (value.fract() * MICROS_PER_DAY as f64).round() as i64;
                    }
                    "hour" | "hours" | "h" | "hr" | "hrs" => add_micros(&mut out, 3.6e9),
                    "minute" | "minutes" | "min" | "mins" | "m" => add_micros(&mut out, 6e7),
                    "second" | "seconds" | "sec" | "secs" | "s" => add_micros(&mut out, 1e6),
                    "millisecond" | "milliseconds" | "ms" => add_micros(&mut out, 1e3),
                    "microsecond" | "microseconds" | "us" => add_micros(&mut out, 1.0),
                    _ => return Err(invalid()),
                }
                i += 1;
            }
        }
        i += 1;
    }
    if ago {
        out = negate(&out)?;
    }
    Ok(out)
}

/// `-i`.
pub(crate) fn negate(i: &Interval) -> Result<Interval, SqlError> {
    let overflow = || SqlError::out_of_range("interval out of range");
    Ok(Interval {
        months: i.months.checked_neg().ok_or_else(overflow)?,
        days: i.days.checked_neg().ok_or_else(overflow)?,
        micros: i.micros.checked_neg().ok_or_else(overflow)?,
    })
}

/// `ts + i` for a timestamp in microseconds: months (clamping the day), then days, then time.
pub(crate) fn add_interval(ts: i64, i: &Interval) -> Result<i64, SqlError> {
    let days = ts.div_euclid(MICROS_PER_DAY);
    let time = ts.rem_euclid(MICROS_PER_DAY);
    let date =
        to_date(i32::try_from(days).map_err(|_| out_of_range())?).ok_or_else(out_of_range)?;
    let date = if i.months >= 0 {
        date.checked_add_months(Months::new(i.months as u32))
    } else {
        date.checked_sub_months(Months::new(i.months.unsigned_abs()))
    }
    .ok_or_else(out_of_range)?;
    let date = if i.days >= 0 {
        date.checked_add_days(Days::new(i.days as u64))
    } else {
        date.checked_sub_days(Days::new(u64::from(i.days.unsigned_abs())))
    }
    .ok_or_else(out_of_range)?;
    i64::from(from_date(date))
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .and_then(|t| t.checked_add(i.micros))
        .ok_or_else(out_of_range)
}

/// `a - b` for timestamps: whole days and the rest, as PostgreSQL's `timestamp_mi`.
pub(crate) fn diff(a: i64, b: i64) -> Result<Interval, SqlError> {
    let d = a.checked_sub(b).ok_or_else(out_of_range)?;
    Ok(Interval {
        months: 0,
        days: (d / MICROS_PER_DAY) as i32,
        micros: d % MICROS_PER_DAY,
    })
}

/// `i * f`, carrying fractional months into days and fractional days into time.
pub(crate) fn scale(i: &Interval, f: f64) -> Result<Interval, SqlError> {
    let months = f64::from(i.months) * f;
    let days = f64::from(i.days) * f + months.fract() * 30.0;
    let micros = i.micros as f64 * f + days.fract() * MICROS_PER_DAY as f64;
    let fits = |v: f64, max: f64| v.is_finite() && v.abs() <= max;
    if !fits(months, f64::from(i32::MAX))
        || !fits(days, f64::from(i32::MAX))
        || !fits(micros, 9.2e18)
    {
        return Err(SqlError::out_of_range("interval out of range"));
    }
    Ok(Interval {
        months: months.trunc() as i32,
        days: days.trunc() as i32,
        micros: micros.round() as i64,
    })
}

/// Arithmetic involving dates, timestamps and intervals (the binder checked the operand
/// types; the result type follows from the operands).
pub(crate) fn arith(op: ArithOp, l: Datum, r: Datum) -> Result<Datum, SqlError> {
    use Datum::*;
    let overflow = || SqlError::out_of_range("interval out of range");
    Ok(match (op, l, r) {
        (ArithOp::Add, Date(d), Int(n)) | (ArithOp::Add, Int(n), Date(d)) => {
            Date(i32::try_from(i64::from(d) + n).map_err(|_| out_of_range())?)
        }
        (ArithOp::Sub, Date(d), Int(n)) => {
            Date(i32::try_from(i64::from(d) - n).map_err(|_| out_of_range())?)
        }
        (ArithOp::Sub, Date(a), Date(b)) => Int(i64::from(a) - i64::from(b)),
        (ArithOp::Add, Date(d), Interval(i)) | (ArithOp::Add, Interval(i), Date(d)) => {
            Timestamp(add_interval(i64::from(d) * MICROS_PER_DAY, &i)?)
        }
        (ArithOp::Sub, Date(d), Interval(i)) => {
            Timestamp(add_interval(i64::from(d) * MICROS_PER_DAY, &negate(&i)?)?)
        }
        (ArithOp::Add, Timestamp(t), Interval(i)) | (ArithOp::Add, Interval(i), Timestamp(t)) => {
            Timestamp(add_interval(t, &i)?)
        }
        (ArithOp::Sub, Timestamp(t), Interval(i)) => Timestamp(add_interval(t, &negate(&i)?)?),
        (ArithOp::Add, TimestampTz(t), Interval(i))
        | (ArithOp::Add, Interval(i), TimestampTz(t)) => TimestampTz(add_interval(t, &i)?),
        (ArithOp::Sub, TimestampTz(t), Interval(i)) => TimestampTz(add_interval(t, &negate(&i)?)?),
        (ArithOp::Sub, Timestamp(a), Timestamp(b))
        | (ArithOp::Sub, TimestampTz(a), TimestampTz(b)) => Interval(diff(a, b)?),
        (ArithOp::Add, Interval(a), Interval(b)) => Interval(crate::api::Interval {
            months: a.months.checked_add(b.months).ok_or_else(overflow)?,
            days: a.days.checked_add(b.days).ok_or_else(overflow)?,
            micros: a.micros.checked_add(b.micros).ok_or_else(overflow)?,
        }),
        (ArithOp::Sub, Interval(a), Interval(b)) => Interval(crate::api::Interval {
            months: a.months.checked_sub(b.months).ok_or_else(overflow)?,
            days: a.days.checked_sub(b.days).ok_or_else(overflow)?,
            micros: a.micros.checked_sub(b.micros).ok_or_else(overflow)?,
        }),
        (ArithOp::Mul, Interval(i), n) | (ArithOp::Mul, n, Interval(i)) => {
            Interval(scale(&i, factor(&n)?)?)
        }
        (ArithOp::Div, Interval(i), n) => {
            let f = factor(&n)?;
            if f == 0.0 {
                return Err(SqlError::division_by_zero());
            }
            Interval(scale(&i, 1.0 / f)?)
        }
        (op, l, r) => {
            return Err(SqlError::internal(format!(
                "date/time arithmetic {l:?} {} {r:?}",
                op.symbol()
            )));
        }
    })
}

fn factor(d: &Datum) -> Result<f64, SqlError> {
    match d {
        Datum::Int(v) => Ok(*v as f64),
        Datum::Float(v) => Ok(*v),
        Datum::Numeric(v, _) => Ok(v.to_f64()),
        other => Err(SqlError::internal(format!("interval factor {other:?}"))),
    }
}

/// `date_trunc(unit, ts)` for a timestamp in microseconds.
pub(crate) fn trunc(unit: &str, ts: i64) -> Result<i64, SqlError> {
    let dt = chrono::DateTime::from_timestamp_micros(ts)
        .ok_or_else(out_of_range)?
        .naive_utc();
    let d = dt.date();
    let date =
        |y: i32, m: u32, day: u32| NaiveDate::from_ymd_opt(y, m, day).ok_or_else(out_of_range);
    let at = |d: NaiveDate, h: u32, m: u32, s: u32| -> Result<i64, SqlError> {
        Ok(d.and_hms_opt(h, m, s)
            .ok_or_else(out_of_range)?
            .and_utc()
            .timestamp_micros())
    };
    match unit.to_ascii_lowercase().as_str() {
        "microseconds" | "microsecond" => Ok(ts),
        "milliseconds" | "millisecond" => Ok(ts - ts.rem_euclid(1000)),
        "second" | "seconds" => Ok(ts - ts.rem_euclid(1_000_000)),
        "minute" | "minutes" => at(d, dt.hour(), dt.minute(), 0),
        "hour" | "hours" => at(d, dt.hour(), 0, 0),
        "day" | "days" => at(d, 0, 0, 0),
        "week" | "weeks" => at(
            d - chrono::TimeDelta::days(i64::from(d.weekday().num_days_from_monday())),
            0,
            0,
            0,
        ),
        "month" | "months" => at(date(d.year(), d.month(), 1)?, 0, 0, 0),
        "quarter" => at(date(d.year(), (d.month() - 1) / 3 * 3 + 1, 1)?, 0, 0, 0),
        "year" | "years" => at(date(d.year(), 1, 1)?, 0, 0, 0),
        "decade" => at(date(d.year().div_euclid(10) * 10, 1, 1)?, 0, 0, 0),
        "century" => at(
            date((d.year() - 1).div_euclid(100) * 100 + 1, 1, 1)?,
            0,
            0,
            0,
        ),
        other => Err(SqlError::new(
            "22023",
            format!("unit \"{other}\" not recognized for type timestamp"),
        )),
    }
}

/// `extract(field FROM x)` as a float (PostgreSQL's `date_part`).
pub(crate) fn part(field: &str, d: &Datum) -> Result<f64, SqlError> {
    let f = field.to_ascii_lowercase();
    if let Datum::Interval(i) = d {
        let secs = i.micros as f64 / 1e6;
        return Ok(match f.as_str() {
            "epoch" => interval_micros(i) as f64 / 1e6,
            "year" | "years" => f64::from(i.months / 12),
            "month" | "months" | "mon" => f64::from(i.months % 12),
            "day" | "days" => f64::from(i.days),
            "hour" | "hours" => (i.micros / 3_600_000_000) as f64,
            "minute" | "minutes" => ((i.micros / 60_000_000) % 60) as f64,
            "second" | "seconds" => secs % 60.0,
            _ => {
                return Err(SqlError::new(
                    "22023",
                    format!("unit \"{f}\" not recognized for type interval"),
                ));
            }
        });
    }
    let micros = match d {
        Datum::Date(days) => i64::from(*days) * MICROS_PER_DAY,
        Datum::Timestamp(t) | Datum::TimestampTz(t) => *t,
        other => return Err(SqlError::internal(format!("extract from {other:?}"))),
    };
    let dt: NaiveDateTime = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(out_of_range)?
        .naive_utc();
    let sec = f64::from(dt.second()) + f64::from(dt.nanosecond() / 1000) / 1e6;
    Ok(match f.as_str() {
        "epoch" => micros as f64 / 1e6,
        "year" | "years" => f64::from(dt.year()),
        "month" | "months" | "mon" => f64::from(dt.month()),
        "day" | "days" => f64::from(dt.day()),
        "hour" | "hours" => f64::from(dt.hour()),
        "minute" | "minutes" => f64::from(dt.minute()),
        "second" | "seconds" => sec,
        "millisecond" | "milliseconds" => sec * 1000.0,
        "microsecond" | "microseconds" => sec * 1e6,
        "dow" => f64::from(dt.weekday().num_days_from_sunday()),
        "isodow" => f64::from(dt.weekday().number_from_monday()),
        "doy" => f64::from(dt.ordinal()),
        "week" => f64::from(dt.iso_week().week()),
        "quarter" => f64::from((dt.month() - 1) / 3 + 1),
        "decade" => f64::from(dt.year().div_euclid(10)),
        "century" => f64::from((dt.year() - 1).div_euclid(100) + 1),
        _ => {
            return Err(SqlError::new(
                "22023",
                format!("unit \"{f}\" not recognized for type timestamp"),
            ));
        }
    })
}

/// The canonical text of a UUID.
pub(crate) fn format_uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses a UUID: 32 hex digits, with or without dashes and braces.
pub(crate) fn parse_uuid(s: &str) -> Result<u128, SqlError> {
    let t = s.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SqlError::invalid_text("uuid", s));
    }
    u128::from_str_radix(&hex, 16).map_err(|_| SqlError::invalid_text("uuid", s))
}

/// PostgreSQL's hex output of a BYTEA (`\x0102`).
pub(crate) fn format_bytea(b: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * b.len());
    out.push_str("\\x");
    for byte in b {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Parses a BYTEA: `\x` followed by hex digits, or the escape format (bytes as written, `\\`
/// for a backslash, `\nnn` octal).
pub(crate) fn parse_bytea(s: &str) -> Result<Vec<u8>, SqlError> {
    let invalid = || SqlError::invalid_text("bytea", s);
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(invalid());
        }
        return digits
            .chunks(2)
            .map(|p| {
                let h = std::str::from_utf8(p).map_err(|_| invalid())?;
                u8::from_str_radix(h, 16).map_err(|_| invalid())
            })
            .collect();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(u8::try_from(v).map_err(|_| invalid())?);
            i += 4;
        } else {
            return Err(invalid());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, micros: i64) -> Interval {
        Interval {
            months,
            days,
            micros,
        }
    }

    #[test]
    fn intervals_print_and_parse_like_postgresql() {
        assert_eq!(
            format_interval(&iv(14, 3, 14_706_000_000)),
            "1 year 2 mons 3 days 04:05:06"
        );
        assert_eq!(format_interval(&iv(0, 0, 0)), "00:00:00");
        assert_eq!(format_interval(&iv(0, -1, 0)), "-1 days");
        assert_eq!(
            format_interval(&iv(-1, -1, 3_600_000_000)),
            "-1 mons -1 days +01:00:00"
        );
        assert_eq!(format_interval(&iv(0, 1, 1_500_000)), "1 day 00:00:01.5");
        assert_eq!(
            parse_interval("1 day 2 hours").unwrap(),
            iv(0, 1, 7_200_000_000)
        );
        assert_eq!(parse_interval("@ 1 month ago").unwrap(), iv(-1, 0, 0));
        assert_eq!(parse_interval("01:30").unwrap(), iv(0, 0, 5_400_000_000));
        assert_eq!(
            parse_interval("1.5 days").unwrap(),
            iv(0, 1, 43_200_000_000)
        );
        assert_eq!(parse_interval("90").unwrap(), iv(0, 0, 90_000_000));
        assert_eq!(parse_interval("2 fortnights").unwrap_err().code, "22P02");
    }

    #[test]
    fn date_arithmetic_follows_the_calendar() {
        let jan31 = parse_date("2024-01-31").unwrap();
        let ts = i64::from(jan31) * MICROS_PER_DAY;
        let feb = add_interval(ts, &iv(1, 0, 0)).unwrap();
        assert_eq!(format_timestamp(feb), "2024-02-29 00:00:00");
        assert_eq!(format_date(jan31 + 1), "2024-02-01");
        let d = diff(ts + 3_600_000_000 + MICROS_PER_DAY, ts).unwrap();
        assert_eq!(format_interval(&d), "1 day 01:00:00");
        assert_eq!(
            parse_timestamptz("2024-01-01 10:00:00+02").unwrap(),
            1_704_096_000_000_000
        );
        assert_eq!(format_timestamptz(0), "1970-01-01 00:00:00+00");
        assert_eq!(
            format_timestamp(trunc("month", feb + 123).unwrap()),
            "2024-02-01 00:00:00"
        );
        assert_eq!(part("dow", &Datum::Date(jan31)).unwrap(), 3.0);
    }

    #[test]
    fn uuids_and_bytes() {
        let u = parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(format_uuid(u), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        assert_eq!(parse_uuid("{a0eebc999c0b4ef8bb6d6bb9bd380a11}").unwrap(), u);
        assert_eq!(parse_uuid("xyz").unwrap_err().code, "22P02");
        assert_eq!(parse_bytea("\\x01ff").unwrap(), vec![1, 255]);
        assert_eq!(parse_bytea("a\\\\b\\001").unwrap(), b"a\\b\x01".to_vec());
        assert_eq!(format_bytea(&[0, 171]), "\\x00ab");
        assert_eq!(parse_bytea("\\x0").unwrap_err().code, "22P02");
    }
}
