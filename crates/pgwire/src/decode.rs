//! Parameter decoding for Bind: the client's declared type OIDs become SQL types, and each
//! parameter value, in text or binary format, becomes a [`Datum`].
//!
//! Text values are passed on as text: the SQL layer converts them to the parameter's type
//! exactly as a cast from a string literal would (so `'12'` for an `int4` parameter is 12 and
//! `'x'` is 22P02). Binary values are decoded from PostgreSQL's binary layouts of the type the
//! client sent them as (the declared OID, else the type the server described), which may be
//! narrower than the SQL type (a `float4` sent for a `float8` parameter).

use meridian_sql::{Datum, Interval, SqlError, SqlType};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;

use crate::encode::{PG_EPOCH_OFFSET_DAYS, PG_EPOCH_OFFSET_MICROS};
use crate::error::sql_error;

/// The SQL type of a parameter type OID a client declared in Parse (`None`: unspecified, the
/// server infers it). An OID of a type Meridian does not have is 0A000.
pub(crate) fn declared_type(ty: Option<&Type>) -> Result<Option<SqlType>, SqlError> {
    let Some(ty) = ty else { return Ok(None) };
    Ok(Some(match ty.oid() {
        0 | 705 => return Ok(None), // unspecified, `unknown`
        16 => SqlType::Bool,
        21 => SqlType::Int2,
        23 => SqlType::Int4,
        20 => SqlType::Int8,
        // float4 values are carried as float8, which holds every float4 exactly.
        700 | 701 => SqlType::Float8,
        25 | 1043 | 1042 | 19 => SqlType::Text,
        1114 => SqlType::Timestamp,
        1184 => SqlType::TimestampTz,
        1082 => SqlType::Date,
        1186 => SqlType::Interval,
        1700 => SqlType::Numeric,
        2950 => SqlType::Uuid,
        17 => SqlType::Bytea,
        oid => {
            return Err(sql_error(
                "0A000",
                format!(
                    "parameters of type {} (oid {oid}) are not supported",
                    ty.name()
                ),
            ));
        }
    }))
}

/// Decodes the parameters of a Bind: one value per wire type, each in the format the client
/// chose (no format code: all text; one: for all; else one per parameter).
pub(crate) fn decode_params(
    values: &[Option<bytes::Bytes>],
    format: &Format,
    wire: &[Type],
) -> Result<Vec<Datum>, SqlError> {
    if let Format::Individual(codes) = format
        && codes.len() != values.len()
    {
        return Err(sql_error(
            "08P01",
            format!(
                "bind message has {} parameter formats but {} parameters",
                codes.len(),
                values.len()
            ),
        ));
    }
    values
        .iter()
        .zip(wire)
        .enumerate()
        .map(|(i, (v, ty))| decode_param(v.as_deref(), format.format_for(i), ty, i + 1))
        .collect()
}

fn decode_param(
    value: Option<&[u8]>,
    format: FieldFormat,
    ty: &Type,
    n: usize,
) -> Result<Datum, SqlError> {
    let Some(bytes) = value else {
        return Ok(Datum::Null);
    };
    let text = |b: &[u8]| {
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| {
            sql_error(
                "22021",
                format!("invalid byte sequence for encoding \"UTF8\" in parameter ${n}"),
            )
        })
    };
    if format == FieldFormat::Text {
        return Ok(Datum::Text(text(bytes)?));
    }
    let bad = || {
        sql_error(
            "22P03",
            format!("incorrect binary data format in bind parameter {n}"),
        )
    };
    let fixed = |len: usize| -> Result<&[u8], SqlError> {
        if bytes.len() == len {
            Ok(bytes)
        } else {
            Err(bad())
        }
    };
    Ok(match ty.oid() {
        16 => Datum::Bool(fixed(1)?[0] != 0),
        21 => Datum::Int(i64::from(i16::from_be_bytes(arr(fixed(2)?)))),
        23 => Datum::Int(i64::from(i32::from_be_bytes(arr(fixed(4)?)))),
        20 => Datum::Int(i64::from_be_bytes(arr(fixed(8)?))),
        700 => Datum::Float(f64::from(f32::from_be_bytes(arr(fixed(4)?)))),
        701 => Datum::Float(f64::from_be_bytes(arr(fixed(8)?))),
        25 | 1043 | 1042 | 19 | 705 | 0 => Datum::Text(text(bytes)?),
        1114 => Datum::Timestamp(pg_micros(fixed(8)?).ok_or_else(bad)?),
        1184 => Datum::TimestampTz(pg_micros(fixed(8)?).ok_or_else(bad)?),
        1082 => Datum::Date(
            i32::from_be_bytes(arr(fixed(4)?))
                .checked_add(PG_EPOCH_OFFSET_DAYS)
                .ok_or_else(bad)?,
        ),
        1186 => {
            let b = fixed(16)?;
            Datum::Interval(Interval {
                micros: i64::from_be_bytes(arr(&b[..8])),
                days: i32::from_be_bytes(arr(&b[8..12])),
                months: i32::from_be_bytes(arr(&b[12..])),
            })
        }
        2950 => Datum::Uuid(u128::from_be_bytes(arr(fixed(16)?))),
        17 => Datum::Bytea(bytes.to_vec()),
        // The SQL layer parses the decimal text exactly.
        1700 => Datum::Text(numeric_text(bytes).ok_or_else(bad)?),
        oid => {
            return Err(sql_error(
                "0A000",
                format!("binary parameters of type oid {oid} are not supported"),
            ));
        }
    })
}

/// The first `N` bytes of `b` (callers checked the length).
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[..N]);
    out
}

fn pg_micros(b: &[u8]) -> Option<i64> {
    i64::from_be_bytes(arr(b)).checked_add(PG_EPOCH_OFFSET_MICROS)
}

/// PostgreSQL's binary NUMERIC (digit count, weight, sign, display scale, then base-10000
/// digits) as decimal text; `None` when malformed or not a finite number.
fn numeric_text(b: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = i64::from(word(2)?);
    let sign = word(4)? as u16;
    let dscale = usize::try_from(word(6)?).ok()?;
    if b.len() != 8 + 2 * ndigits || dscale > 16_383 {
        return None;
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        _ => return None, // NaN and infinities have no Meridian value
    };
    let mut int_part = String::new();
    let mut frac = String::new();
    // Fraction groups before the first digit when the number is below 0.0001.
    for _ in 0..(-1 - weight).max(0) {
        frac.push_str("0000");
    }
    for i in 0..ndigits {
        let d = word(8 + 2 * i)?;
        if !(0..10_000).contains(&d) {
            return None;
        }
        let power = weight - i as i64;
        if power >= 0 {
            if int_part.is_empty() {
                int_part = d.to_string();
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        } else {
            frac.push_str(&format!("{d:04}"));
        }
    }
    // Integer groups after the last digit (trailing zeros the digits omit).
    let trailing = weight + 1 - ndigits as i64;
    if trailing > 0 && !int_part.is_empty() {
        for _ in 0..trailing {
            int_part.push_str("0000");
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    frac.truncate(dscale);
    while frac.len() < dscale {
        frac.push('0');
    }
    let mut s = String::with_capacity(int_part.len() + frac.len() + 2);
    if negative {
        s.push('-');
    }
    s.push_str(&int_part);
    if !frac.is_empty() {
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&ndigits.to_be_bytes());
        b.extend_from_slice(&weight.to_be_bytes());
        b.extend_from_slice(&sign.to_be_bytes());
        b.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn binary_numerics_become_exact_decimal_text() {
        // 12345.678 = [1, 2345, 6780] with weight 1.
        let b = numeric(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_text(&b).as_deref(), Some("12345.678"));
        // -0.00012 = [1, 2000] with weight -1.
        let b = numeric(2, -1, 0x4000, 5, &[1, 2000]);
        assert_eq!(numeric_text(&b).as_deref(), Some("-0.00012"));
        // 0.00000001 = [1] with weight -2: a whole zero group before the first digit.
        let b = numeric(1, -2, 0, 8, &[1]);
        assert_eq!(numeric_text(&b).as_deref(), Some("0.00000001"));
        // 100000000 = [1] with weight 2.
        let b = numeric(1, 2, 0, 0, &[1]);
        assert_eq!(numeric_text(&b).as_deref(), Some("100000000"));
        // 0 with display scale 2.
        let b = numeric(0, 0, 0, 2, &[]);
        assert_eq!(numeric_text(&b).as_deref(), Some("0.00"));
        // NaN, a digit out of range and a short buffer are rejected.
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])), None);
        assert_eq!(numeric_text(&numeric(1, 0, 0, 0, &[10_000])), None);
        assert_eq!(numeric_text(&numeric(2, 0, 0, 0, &[1])), None);
    }

    #[test]
    fn binary_values_use_postgres_layouts() {
        let d = |oid: u32, b: &[u8]| {
            decode_param(
                Some(b),
                FieldFormat::Binary,
                &Type::from_oid(oid).unwrap(),
                1,
            )
        };
        assert_eq!(d(23, &7i32.to_be_bytes()).unwrap(), Datum::Int(7));
        assert_eq!(d(21, &(-2i16).to_be_bytes()).unwrap(), Datum::Int(-2));
        assert_eq!(
            d(20, &(1i64 << 40).to_be_bytes()).unwrap(),
            Datum::Int(1 << 40)
        );
        assert_eq!(d(700, &1.5f32.to_be_bytes()).unwrap(), Datum::Float(1.5));
        assert_eq!(d(16, &[1]).unwrap(), Datum::Bool(true));
        assert_eq!(d(25, "hé".as_bytes()).unwrap(), Datum::Text("hé".into()));
        assert_eq!(
            d(1082, &2i32.to_be_bytes()).unwrap(),
            Datum::Date(PG_EPOCH_OFFSET_DAYS + 2)
        );
        assert_eq!(
            d(1114, &1_000_000i64.to_be_bytes()).unwrap(),
            Datum::Timestamp(PG_EPOCH_OFFSET_MICROS + 1_000_000)
        );
        // Wrong lengths and bad UTF-8 are errors, not panics.
        assert_eq!(d(23, &[0, 1]).unwrap_err().code, "22P03");
        assert_eq!(d(20, &[]).unwrap_err().code, "22P03");
        assert_eq!(d(25, &[0xff, 0xfe]).unwrap_err().code, "22021");
        assert_eq!(d(114, b"{}").unwrap_err().code, "0A000");
    }

    #[test]
    fn text_values_and_nulls_pass_through() {
        let ty = Type::INT4;
        assert_eq!(
            decode_param(Some(b"42"), FieldFormat::Text, &ty, 1).unwrap(),
            Datum::Text("42".into())
        );
        assert_eq!(
            decode_param(None, FieldFormat::Binary, &ty, 1).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn format_code_counts_are_checked() {
        let values = vec![Some(bytes::Bytes::from_static(b"1")); 2];
        let wire = [Type::INT4, Type::INT4];
        let err = decode_params(&values, &Format::Individual(vec![0, 0, 0]), &wire).unwrap_err();
        assert_eq!(err.code, "08P01");
        assert_eq!(
            decode_params(&values, &Format::UnifiedText, &wire).unwrap(),
            [Datum::Text("1".into()), Datum::Text("1".into())]
        );
    }

    #[test]
    fn declared_types_map_to_sql_types() {
        assert_eq!(declared_type(None).unwrap(), None);
        assert_eq!(declared_type(Some(&Type::UNKNOWN)).unwrap(), None);
        assert_eq!(
            declared_type(Some(&Type::INT8)).unwrap(),
            Some(SqlType::Int8)
        );
        assert_eq!(
            declared_type(Some(&Type::VARCHAR)).unwrap(),
            Some(SqlType::Text)
        );
        assert_eq!(declared_type(Some(&Type::JSON)).unwrap_err().code, "0A000");
    }
}
