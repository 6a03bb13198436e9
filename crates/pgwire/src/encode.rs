//! Result encoding: column lists become `RowDescription` fields, rows become `DataRow`s in the
//! text or binary format each column was asked for.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures::stream;
use meridian_sql::{ColumnInfo, Datum, SqlError, SqlType};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse};
use pgwire::messages::data::DataRow;

use crate::error::{Error, Result, sql_error};

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01), which binary
/// timestamps count from.
pub(crate) const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Days from the Unix epoch to PostgreSQL's epoch, which binary dates count from.
pub(crate) const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// The format of each result column, checked against the number of columns.
///
/// A client may send no format code (all text), one (for all columns) or one per column;
/// any other count is a protocol violation (`08P01`), as in PostgreSQL.
pub(crate) fn column_formats(
    format: &Format,
    columns: usize,
) -> std::result::Result<Vec<FieldFormat>, SqlError> {
    if let Format::Individual(codes) = format
        && codes.len() != columns
    {
        return Err(sql_error(
            "08P01",
            format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            ),
        ));
    }
    Ok((0..columns).map(|i| format.format_for(i)).collect())
}

/// The `RowDescription` fields for `columns` in the given formats.
pub(crate) fn field_infos(columns: &[ColumnInfo], formats: &[FieldFormat]) -> Vec<FieldInfo> {
    columns
        .iter()
        .zip(formats)
        .map(|(col, format)| {
            FieldInfo::new(col.name.clone(), None, None, pg_type(col.ty), *format)
                .with_type_size(type_size(col.ty))
        })
        .collect()
}

/// A simple-query or portal response for fully computed rows.
pub(crate) fn query_response(fields: Vec<FieldInfo>, rows: Vec<DataRow>) -> QueryResponse {
    QueryResponse::new(Arc::new(fields), stream::iter(rows.into_iter().map(Ok)))
}

/// Encodes every row of a result in the given column formats.
pub(crate) fn encode_rows(
    columns: &[ColumnInfo],
    formats: &[FieldFormat],
    rows: &[Vec<Datum>],
) -> Result<Vec<DataRow>> {
    rows.iter()
        .map(|row| encode_row(columns, formats, row))
        .collect()
}

fn encode_row(columns: &[ColumnInfo], formats: &[FieldFormat], row: &[Datum]) -> Result<DataRow> {
    if row.len() != columns.len() {
        return Err(Error::RowWidthMismatch {
            expected: columns.len(),
            actual: row.len(),
        });
    }
    let mut buf = BytesMut::with_capacity(16 * row.len());
    for ((datum, col), format) in row.iter().zip(columns).zip(formats) {
        if matches!(datum, Datum::Null) {
            buf.put_i32(-1);
            continue;
        }
        let len_at = buf.len();
        buf.put_i32(0);
        match format {
            FieldFormat::Text => put_text(&mut buf, col.ty, datum)?,
            FieldFormat::Binary => put_binary(&mut buf, col.ty, datum)?,
        }
        let len = i32::try_from(buf.len() - len_at - 4).map_err(|_| Error::DatumTypeMismatch {
            ty: col.ty,
            datum: datum.clone(),
        })?;
        buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    // The row width fits in i16: it equals the column count of a RowDescription.
    let field_count = i16::try_from(row.len()).unwrap_or(i16::MAX);
    Ok(DataRow::new(buf, field_count))
}

fn put_text(buf: &mut BytesMut, ty: SqlType, datum: &Datum) -> Result<()> {
    match datum.to_pg_text() {
        Some(text) => {
            buf.put_slice(text.as_bytes());
            Ok(())
        }
        None => Err(mismatch(ty, datum)),
    }
}

fn put_binary(buf: &mut BytesMut, ty: SqlType, datum: &Datum) -> Result<()> {
    match (ty, datum) {
        (SqlType::Bool, Datum::Bool(b)) => buf.put_u8(u8::from(*b)),
        (SqlType::Int2, Datum::Int(v)) => {
            buf.put_i16(i16::try_from(*v).map_err(|_| mismatch(ty, datum))?)
        }
        (SqlType::Int4, Datum::Int(v)) => {
            buf.put_i32(i32::try_from(*v).map_err(|_| mismatch(ty, datum))?)
        }
        (SqlType::Int8, Datum::Int(v)) => buf.put_i64(*v),
        (SqlType::Float8, Datum::Float(v)) => buf.put_f64(*v),
        (SqlType::Text, Datum::Text(s)) => buf.put_slice(s.as_bytes()),
        (SqlType::Timestamp, Datum::Timestamp(us))
        | (SqlType::TimestampTz, Datum::TimestampTz(us)) => buf.put_i64(
            us.checked_sub(PG_EPOCH_OFFSET_MICROS)
                .ok_or_else(|| mismatch(ty, datum))?,
        ),
        (SqlType::Date, Datum::Date(days)) => buf.put_i32(
            days.checked_sub(PG_EPOCH_OFFSET_DAYS)
                .ok_or_else(|| mismatch(ty, datum))?,
        ),
        // PostgreSQL's interval layout: microseconds, then days, then months.
        (SqlType::Interval, Datum::Interval(iv)) => {
            buf.put_i64(iv.micros);
            buf.put_i32(iv.days);
            buf.put_i32(iv.months);
        }
        (SqlType::Uuid, Datum::Uuid(u)) => buf.put_u128(*u),
        (SqlType::Numeric, Datum::Numeric(..)) => {
            let text = datum.to_pg_text().ok_or_else(|| mismatch(ty, datum))?;
            put_numeric(buf, &text).ok_or_else(|| mismatch(ty, datum))?;
        }
        (SqlType::Bytea, Datum::Bytea(b)) => buf.put_slice(b),
        _ => return Err(mismatch(ty, datum)),
    }
    Ok(())
}

/// PostgreSQL's binary NUMERIC for the decimal text `text` (`-123.4500`): digit count,
/// weight (of the first base-10000 digit), sign, display scale, then the base-10000 digits
/// without leading or trailing zero digits.
fn put_numeric(buf: &mut BytesMut, text: &str) -> Option<()> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dscale = i16::try_from(frac.len()).ok()?;
    let int = int.trim_start_matches('0');
    // Pad the integer part on the left and the fraction on the right to whole groups of 4.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> = digits
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i16::try_from((int.len() + int_pad) / 4).ok()? - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= i16::try_from(leading).ok()?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(i16::try_from(groups.len()).ok()?);
    buf.put_i16(weight);
    buf.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    buf.put_i16(dscale);
    for g in groups {
        buf.put_i16(g);
    }
    Some(())
}

fn mismatch(ty: SqlType, datum: &Datum) -> Error {
    Error::DatumTypeMismatch {
        ty,
        datum: datum.clone(),
    }
}

/// The wire type of a SQL type.
pub(crate) fn pg_type(ty: SqlType) -> Type {
    Type::from_oid(ty.pg_oid()).unwrap_or(Type::UNKNOWN)
}

/// `pg_type.typlen` of each type (-1: variable length).
fn type_size(ty: SqlType) -> i16 {
    match ty {
        SqlType::Bool => 1,
        SqlType::Int2 => 2,
        SqlType::Int4 | SqlType::Date => 4,
        SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp | SqlType::TimestampTz => 8,
        SqlType::Interval | SqlType::Uuid => 16,
        SqlType::Text | SqlType::Numeric | SqlType::Bytea => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: SqlType) -> ColumnInfo {
        ColumnInfo {
            name: "c".to_owned(),
            ty,
        }
    }

    fn binary(ty: SqlType, datum: Datum) -> Result<Vec<u8>> {
        let row = encode_row(&[col(ty)], &[FieldFormat::Binary], &[datum])?;
        Ok(row.data[4..].to_vec())
    }

    #[test]
    fn binary_values_use_postgres_layouts() {
        assert_eq!(binary(SqlType::Bool, Datum::Bool(true)).unwrap(), [1]);
        assert_eq!(binary(SqlType::Int2, Datum::Int(-2)).unwrap(), [0xff, 0xfe]);
        assert_eq!(binary(SqlType::Int4, Datum::Int(7)).unwrap(), [0, 0, 0, 7]);
        assert_eq!(
            binary(SqlType::Int8, Datum::Int(1)).unwrap(),
            1i64.to_be_bytes()
        );
        assert_eq!(
            binary(SqlType::Float8, Datum::Float(1.5)).unwrap(),
            1.5f64.to_be_bytes()
        );
        assert_eq!(
            binary(SqlType::Text, Datum::Text("hé".into())).unwrap(),
            "hé".as_bytes()
        );
        // 2000-01-01 00:00:01 is one second after PostgreSQL's epoch.
        let micros = PG_EPOCH_OFFSET_MICROS + 1_000_000;
        assert_eq!(
            binary(SqlType::Timestamp, Datum::Timestamp(micros)).unwrap(),
            1_000_000i64.to_be_bytes()
        );
        assert_eq!(
            binary(SqlType::Date, Datum::Date(PG_EPOCH_OFFSET_DAYS + 2)).unwrap(),
            2i32.to_be_bytes()
        );
        let iv = meridian_sql::Interval {
            months: 1,
            days: 2,
            micros: 3,
        };
        assert_eq!(
            binary(SqlType::Interval, Datum::Interval(iv)).unwrap(),
            [
                &3i64.to_be_bytes()[..],
                &2i32.to_be_bytes(),
                &1i32.to_be_bytes()
            ]
            .concat()
        );
        assert_eq!(binary(SqlType::Uuid, Datum::Uuid(1)).unwrap()[15], 1);
        assert_eq!(
            binary(SqlType::Bytea, Datum::Bytea(vec![0, 255])).unwrap(),
            [0, 255]
        );
    }

    fn numeric(text: &str) -> Vec<i16> {
        let mut buf = BytesMut::new();
        put_numeric(&mut buf, text).unwrap();
        buf.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_use_base_10000_digits() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric("12345.678"), [3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric("-0.00012"), [2, -1, 0x4000, 5, 1, 2000]);
        assert_eq!(numeric("100000000"), [1, 2, 0, 0, 1]);
        assert_eq!(numeric("0.00"), [0, 0, 0, 2]);
        assert_eq!(numeric("300"), [1, 0, 0, 0, 300]);
    }

    #[test]
    fn values_of_the_wrong_type_are_errors_not_panics() {
        assert!(matches!(
            binary(SqlType::Int2, Datum::Int(1 << 20)),
            Err(Error::DatumTypeMismatch { .. })
        ));
        assert!(matches!(
            binary(SqlType::Int4, Datum::Text("x".into())),
            Err(Error::DatumTypeMismatch { .. })
        ));
        assert!(matches!(
            binary(SqlType::Timestamp, Datum::Timestamp(i64::MIN)),
            Err(Error::DatumTypeMismatch { .. })
        ));
        let err = encode_row(&[col(SqlType::Int4)], &[FieldFormat::Text], &[]).unwrap_err();
        assert!(matches!(
            err,
            Error::RowWidthMismatch {
                expected: 1,
                actual: 0
            }
        ));
    }

    #[test]
    fn nulls_have_length_minus_one() {
        let row = encode_row(
            &[col(SqlType::Int4), col(SqlType::Text)],
            &[FieldFormat::Binary, FieldFormat::Text],
            &[Datum::Null, Datum::Null],
        )
        .unwrap();
        assert_eq!(row.field_count, 2);
        assert_eq!(
            &row.data[..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn format_counts_are_checked() {
        assert_eq!(
            column_formats(&Format::UnifiedBinary, 2).unwrap(),
            [FieldFormat::Binary, FieldFormat::Binary]
        );
        assert_eq!(
            column_formats(&Format::Individual(vec![0, 1]), 2).unwrap(),
            [FieldFormat::Text, FieldFormat::Binary]
        );
        let err = column_formats(&Format::Individual(vec![0, 1, 0]), 2).unwrap_err();
        assert_eq!(err.code, "08P01");
    }
}
