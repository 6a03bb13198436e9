//! Key and value encoding of table rows.
//!
//! ```text
//!  key   = "/t/" enc(table_id) enc(index_id = 1) enc(pk column 1) .. enc(pk column n)
//!  value = enc(non-key column 1) .. enc(non-key column m)          (declaration order)
//! ```
//!
//! Secondary index entries live next to the rows, under their own index id (see
//! [`index_entry`]).
//!
//! `enc` is the ascending memcomparable encoding of `meridian_storage::keycode`: it preserves
//! order and is self-delimiting, so a primary key range is a byte range and a row value is a
//! plain concatenation that decodes column by column. All integer widths share one encoding, so
//! an `INT4` key compares with an `INT8` constant without conversion. A value shorter than the
//! descriptor's column list decodes the missing trailing columns as NULL, which is what lets a
//! future `ALTER TABLE ADD COLUMN` leave existing rows untouched.

use meridian_storage::keycode::{self, Decoder, Direction};

use crate::api::{Datum, SqlType};
use crate::catalog::{IndexDesc, TableDesc};
use crate::error::{Error, Result};

/// Prefix of all table data.
pub(crate) const TABLE_DATA_PREFIX: &[u8] = b"/t/";
/// Index id of every table's primary index.
pub(crate) const PRIMARY_INDEX_ID: i64 = 1;

const ASC: Direction = Direction::Asc;

/// The prefix of all keys of table `table_id` (every index).
pub(crate) fn table_prefix(table_id: u64) -> Vec<u8> {
    let mut k = TABLE_DATA_PREFIX.to_vec();
    // Table ids come from a counter starting at 100 and never reach i64::MAX.
    keycode::encode_i64(&mut k, table_id as i64, ASC);
    k
}

/// The prefix of all rows of the primary index of `table_id`.
pub(crate) fn primary_prefix(table_id: u64) -> Vec<u8> {
    let mut k = table_prefix(table_id);
    keycode::encode_i64(&mut k, PRIMARY_INDEX_ID, ASC);
    k
}

/// `[start, end)` covering every key of table `table_id`.
pub(crate) fn table_span(table_id: u64) -> (Vec<u8>, Vec<u8>) {
    let start = table_prefix(table_id);
    let end = successor(&start);
    (start, end)
}

/// The smallest key greater than every key starting with `prefix`.
pub(crate) fn successor(prefix: &[u8]) -> Vec<u8> {
    // Our prefixes always start with "/t/", so a successor exists.
    keycode::prefix_successor(prefix).unwrap_or_else(|| vec![0xFF; prefix.len() + 1])
}

/// The smallest key after `k` (`k` with a zero byte appended): `[k, next_key(k))` is `k` alone.
pub(crate) fn next_key(k: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(k.len() + 1);
    s.extend_from_slice(k);
    s.push(0);
    s
}

/// Appends the ascending encoding of `d`.
pub(crate) fn encode_datum(buf: &mut Vec<u8>, d: &Datum) {
    encode_datum_dir(buf, d, ASC);
}

/// Appends the encoding of `d` in direction `dir`.
pub(crate) fn encode_datum_dir(buf: &mut Vec<u8>, d: &Datum, dir: Direction) {
    match d {
        Datum::Null => keycode::encode_null(buf, dir),
        Datum::Bool(b) => keycode::encode_bool(buf, *b, dir),
        Datum::Int(v) => keycode::encode_i64(buf, *v, dir),
        Datum::Float(v) => keycode::encode_f64(buf, *v, dir),
        Datum::Text(s) => keycode::encode_string(buf, s, dir),
        Datum::Timestamp(v) => keycode::encode_timestamp(buf, *v, dir),
        Datum::Numeric(v, _) => keycode::encode_decimal(buf, v, dir),
        Datum::Date(d) => keycode::encode_date(buf, *d, dir),
        Datum::TimestampTz(t) => keycode::encode_timestamp(buf, *t, dir),
        // Keys order and equate intervals by their normalised length, as PostgreSQL compares
        // them; values keep the fields (see `encode_value_datum`).
        Datum::Interval(i) => {
            let n = crate::expr::datetime::interval_micros(i);
            keycode::encode_i64(
                buf,
                n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
                dir,
            )
        }
        Datum::Uuid(u) => keycode::encode_bytes(buf, &u.to_be_bytes(), dir),
        Datum::Bytea(b) => keycode::encode_bytes(buf, b, dir),
    }
}

/// The direction of a key column.
pub(crate) fn direction(desc: bool) -> Direction {
    if desc { Direction::Desc } else { ASC }
}

/// The encoding used to compare values for grouping, DISTINCT, set operations, hash joins and
/// `IN` lists: equal values (by SQL equality) encode equally. It equates `-0` with `0` and all
/// NaNs, as PostgreSQL's equality does. NULLs encode too (they group together).
pub(crate) fn hash_key(values: &[Datum]) -> Vec<u8> {
    let mut k = Vec::new();
    for v in values {
        encode_datum(&mut k, v);
    }
    k
}

/// Decodes one value of type `ty` (or NULL).
pub(crate) fn decode_datum(dec: &mut Decoder<'_>, ty: SqlType) -> Result<Datum> {
    decode_datum_dir(dec, ty, ASC)
}

/// Decodes one value of type `ty` (or NULL) encoded in direction `dir`.
fn decode_datum_dir(dec: &mut Decoder<'_>, ty: SqlType, dir: Direction) -> Result<Datum> {
    if dec.decode_null(dir)? {
        return Ok(Datum::Null);
    }
    Ok(match ty {
        SqlType::Bool => Datum::Bool(dec.decode_bool(dir)?),
        SqlType::Int2 => Datum::Int(i64::from(dec.decode_i16(dir)?)),
        SqlType::Int4 => Datum::Int(i64::from(dec.decode_i32(dir)?)),
        SqlType::Int8 => Datum::Int(dec.decode_i64(dir)?),
        SqlType::Float8 => Datum::Float(dec.decode_f64(dir)?),
        SqlType::Text => Datum::Text(dec.decode_string(dir)?),
        SqlType::Timestamp => Datum::Timestamp(dec.decode_timestamp(dir)?),
        SqlType::Numeric => {
            let v = dec.decode_decimal(dir)?;
            let scale = v.fraction_digits().min(u32::from(u16::MAX)) as u16;
            Datum::Numeric(v, scale)
        }
        SqlType::Date => Datum::Date(dec.decode_date(dir)?),
        SqlType::TimestampTz => Datum::TimestampTz(dec.decode_timestamp(dir)?),
        SqlType::Interval => Datum::Interval(crate::api::Interval {
            months: 0,
            days: 0,
            micros: dec.decode_i64(dir)?,
        }),
        SqlType::Uuid => {
            let b = dec.decode_bytes(dir)?;
            let arr: [u8; 16] = b
                .as_slice()
                .try_into()
                .map_err(|_| Error::Corrupt(format!("uuid of {} bytes", b.len())))?;
            Datum::Uuid(u128::from_be_bytes(arr))
        }
        SqlType::Bytea => Datum::Bytea(dec.decode_bytes(dir)?),
    })
}

/// The prefix of all entries of index `index_id` of table `table_id`.
pub(crate) fn index_prefix(table_id: u64, index_id: u32) -> Vec<u8> {
    let mut k = table_prefix(table_id);
    keycode::encode_i64(&mut k, i64::from(index_id), ASC);
    k
}

/// Whether `row`'s entry in `index` uses the unique form (key columns only, the primary key
/// in the value): a unique index whose key columns are all non-NULL.
fn unique_form(index: &IndexDesc, row: &[Datum]) -> bool {
    index.unique && index.columns.iter().all(|(c, _)| row[*c] != Datum::Null)
}

/// The key and value of `row`'s entry in `index`.
///
/// ```text
///  unique form:  /t/<table>/<index>/<key columns>              -> <pk columns><stored columns>
///  otherwise:    /t/<table>/<index>/<key columns>/<pk columns> -> <stored columns>
/// ```
///
/// Key columns use their declared direction; everything else is ascending. Two rows with the
/// same unique-form key are a unique violation, detected by a NotExists condition on the key.
pub(crate) fn index_entry(
    table: &TableDesc,
    index: &IndexDesc,
    row: &[Datum],
) -> (Vec<u8>, Vec<u8>) {
    let mut key = index_prefix(table.id, index.id);
    for (c, desc) in &index.columns {
        encode_datum_dir(&mut key, &row[*c], direction(*desc));
    }
    let mut value = Vec::new();
    let pk_buf = if unique_form(index, row) {
        &mut value
    } else {
        &mut key
    };
    for &c in &table.pk {
        encode_datum(pk_buf, &row[c]);
    }
    for &c in &index.stored {
        encode_value_datum(&mut value, &row[c]);
    }
    (key, value)
}

/// Whether `row`'s entry in `index` must not already exist (its key is a unique-form key).
pub(crate) fn index_entry_is_unique(index: &IndexDesc, row: &[Datum]) -> bool {
    unique_form(index, row)
}

/// Decodes an index entry into a row of `table` in which the index's key columns, the primary
/// key and the stored columns are set and every other column is NULL.
pub(crate) fn decode_index_entry(
    table: &TableDesc,
    index: &IndexDesc,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<Datum>> {
    let prefix = index_prefix(table.id, index.id);
    let rest = key
        .strip_prefix(prefix.as_slice())
        .ok_or_else(|| Error::Corrupt(format!("key {key:?} is not in index {:?}", index.name)))?;
    let mut row = vec![Datum::Null; table.columns.len()];
    let mut dec = Decoder::new(rest);
    for (c, desc) in &index.columns {
        row[*c] = decode_datum_dir(&mut dec, table.columns[*c].ty, direction(*desc))?;
    }
    let mut vdec = Decoder::new(value);
    let pk_dec = if unique_form(index, &row) {
        &mut vdec
    } else {
        &mut dec
    };
    for &c in &table.pk {
        row[c] = decode_datum(pk_dec, table.columns[c].ty)?;
    }
    if !dec.is_empty() {
        return Err(Error::Corrupt(format!(
            "trailing bytes in key {key:?} of index {:?}",
            index.name
        )));
    }
    for &c in &index.stored {
        if vdec.is_empty() {
            break;
        }
        row[c] = decode_value_datum(&mut vdec, &table.columns[c])?;
    }
    Ok(row)
}

/// The index of `table` whose entries `key` belongs to, and the values of its key columns.
pub(crate) fn index_of_key<'t>(
    table: &'t TableDesc,
    key: &[u8],
) -> Option<(&'t IndexDesc, Vec<Datum>)> {
    table.indexes.iter().find_map(|ix| {
        let rest = key.strip_prefix(index_prefix(table.id, ix.id).as_slice())?;
        let mut dec = Decoder::new(rest);
        let values = ix
            .columns
            .iter()
            .map(|(c, d)| decode_datum_dir(&mut dec, table.columns[*c].ty, direction(*d)).ok())
            .collect::<Option<Vec<_>>>()?;
        Some((ix, values))
    })
}

/// The key of the row whose primary key columns hold `pk_values` (in key order).
#[cfg(test)]
pub(crate) fn pk_key(table: &TableDesc, pk_values: &[Datum]) -> Vec<u8> {
    let mut k = primary_prefix(table.id);
    for d in pk_values {
        encode_datum(&mut k, d);
    }
    k
}

/// The key of `row` (a full row in column order).
pub(crate) fn row_key(table: &TableDesc, row: &[Datum]) -> Vec<u8> {
    let mut k = primary_prefix(table.id);
    for &i in &table.pk {
        encode_datum(&mut k, &row[i]);
    }
    k
}

/// The value of `row`: its non-key columns.
pub(crate) fn row_value(table: &TableDesc, row: &[Datum]) -> Vec<u8> {
    let mut v = Vec::new();
    for &i in &table.non_key {
        encode_value_datum(&mut v, &row[i]);
    }
    v
}

/// Appends `d` as a value (not a key): like its key encoding, plus what keys drop (the display
/// scale of a numeric).
fn encode_value_datum(buf: &mut Vec<u8>, d: &Datum) {
    encode_datum(buf, d);
    match d {
        Datum::Numeric(_, scale) => keycode::encode_i64(buf, i64::from(*scale), ASC),
        Datum::Interval(i) => {
            keycode::encode_i64(buf, i64::from(i.months), ASC);
            keycode::encode_i64(buf, i64::from(i.days), ASC);
            keycode::encode_i64(buf, i.micros, ASC);
        }
        _ => {}
    }
}

/// Decodes a value written by [`encode_value_datum`] for column `col`.
fn decode_value_datum(dec: &mut Decoder<'_>, col: &crate::catalog::ColumnDesc) -> Result<Datum> {
    let d = decode_datum(dec, col.ty)?;
    Ok(match d {
        Datum::Numeric(v, _) => {
            let scale = dec.decode_i64(ASC)?;
            Datum::Numeric(v, u16::try_from(scale).unwrap_or(0))
        }
        Datum::Interval(_) => {
            let field = |dec: &mut Decoder<'_>| -> Result<i32> {
                i32::try_from(dec.decode_i64(ASC)?)
                    .map_err(|_| Error::Corrupt("interval field out of range".into()))
            };
            let months = field(dec)?;
            let days = field(dec)?;
            Datum::Interval(crate::api::Interval {
                months,
                days,
                micros: dec.decode_i64(ASC)?,
            })
        }
        other => other,
    })
}

/// True when `key` is a row key of `table`'s primary index.
pub(crate) fn is_row_key_of(table: &TableDesc, key: &[u8]) -> bool {
    key.starts_with(&primary_prefix(table.id))
}

/// A decoder positioned after the primary-index prefix of `key`, a row key of `table` (an
/// error otherwise). The prefix is decoded rather than compared with an encoded copy, which
/// spares an allocation per row: its integer encodings are canonical, so equal values mean
/// equal bytes.
fn pk_decoder<'k>(table: &TableDesc, key: &'k [u8]) -> Result<Decoder<'k>> {
    let not_a_row = || {
        Error::Corrupt(format!(
            "key {key:?} is not a row of table {:?}",
            table.name
        ))
    };
    let rest = key.strip_prefix(TABLE_DATA_PREFIX).ok_or_else(not_a_row)?;
    let mut dec = Decoder::new(rest);
    if dec.decode_i64(ASC).ok() != Some(table.id as i64)
        || dec.decode_i64(ASC).ok() != Some(PRIMARY_INDEX_ID)
    {
        return Err(not_a_row());
    }
    Ok(dec)
}

/// Fails unless `dec`, having decoded a key's columns, is at its end.
fn key_end(dec: &Decoder<'_>, table: &TableDesc, key: &[u8]) -> Result<()> {
    if !dec.is_empty() {
        return Err(Error::Corrupt(format!(
            "trailing bytes in key {key:?} of table {:?}",
            table.name
        )));
    }
    Ok(())
}

/// The primary key values (in key order) encoded in `key`.
pub(crate) fn decode_pk(table: &TableDesc, key: &[u8]) -> Result<Vec<Datum>> {
    let mut dec = pk_decoder(table, key)?;
    let mut out = Vec::with_capacity(table.pk.len());
    for &i in &table.pk {
        out.push(decode_datum(&mut dec, table.columns[i].ty)?);
    }
    key_end(&dec, table, key)?;
    Ok(out)
}

/// Decodes a stored row into a full row in column order.
pub(crate) fn decode_row(table: &TableDesc, key: &[u8], value: &[u8]) -> Result<Vec<Datum>> {
    let mut row = vec![Datum::Null; table.columns.len()];
    decode_row_with(table, key, value, |i, d| {
        row[i] = d;
        Ok(())
    })?;
    Ok(row)
}

/// Decodes a stored row, handing each column's value to `put(column, value)` once, in storage
/// order (the key's columns, then the others; a column added after the row was written gets
/// NULL): a reader that wants the values in its own containers (a batch's column builders)
/// needs no row in between.
pub(crate) fn decode_row_with(
    table: &TableDesc,
    key: &[u8],
    value: &[u8],
    mut put: impl FnMut(usize, Datum) -> Result<()>,
) -> Result<()> {
    let mut dec = pk_decoder(table, key)?;
    for &i in &table.pk {
        let col = &table.columns[i];
        let d = match (decode_datum(&mut dec, col.ty)?, col.numeric) {
            // Key columns of a NUMERIC(p, s) type print with the type's scale.
            (Datum::Numeric(v, _), Some((_, s))) => Datum::Numeric(v, s),
            (d, _) => d,
        };
        put(i, d)?;
    }
    key_end(&dec, table, key)?;
    let mut dec = Decoder::new(value);
    for &i in &table.non_key {
        let d = if dec.is_empty() {
            Datum::Null
        } else {
            decode_value_datum(&mut dec, &table.columns[i])?
        };
        put(i, d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::sample;

    #[test]
    fn rows_round_trip() {
        let t = sample();
        let row = vec![Datum::Int(7), Datum::Text("x\0y".into()), Datum::Int(-3)];
        let key = row_key(&t, &row);
        let value = row_value(&t, &row);
        assert!(is_row_key_of(&t, &key));
        assert_eq!(decode_row(&t, &key, &value).unwrap(), row);
        assert_eq!(
            decode_pk(&t, &key).unwrap(),
            vec![Datum::Int(-3), Datum::Int(7)]
        );
        let with_null = vec![Datum::Int(7), Datum::Null, Datum::Int(-3)];
        assert_eq!(
            decode_row(&t, &key, &row_value(&t, &with_null)).unwrap(),
            with_null
        );
    }

    #[test]
    fn short_values_read_missing_columns_as_null() {
        let t = sample();
        let key = pk_key(&t, &[Datum::Int(1), Datum::Int(2)]);
        assert_eq!(
            decode_row(&t, &key, &[]).unwrap(),
            vec![Datum::Int(2), Datum::Null, Datum::Int(1)]
        );
    }

    #[test]
    fn keys_order_like_their_values_and_stay_in_the_table_span() {
        let t = sample();
        let (start, end) = table_span(t.id);
        let mut prev: Option<Vec<u8>> = None;
        for c in [-1000i64, -1, 0, 1, 255, 256, 1 << 40] {
            let k = pk_key(&t, &[Datum::Int(c), Datum::Int(0)]);
            assert!(k >= start && k < end);
            if let Some(p) = prev {
                assert!(p < k, "key order must follow value order at {c}");
            }
            prev = Some(k);
        }
        assert!(table_span(t.id).1 <= table_prefix(t.id + 1));
    }

    #[test]
    fn garbage_does_not_decode() {
        let t = sample();
        let mut key = pk_key(&t, &[Datum::Int(1), Datum::Int(2)]);
        key.push(0x77);
        assert!(decode_pk(&t, &key).is_err());
        assert!(decode_pk(&t, b"/t/zz").is_err());
        let key = pk_key(&t, &[Datum::Int(1), Datum::Int(2)]);
        assert!(decode_row(&t, &key, &[0x51, 0xFF]).is_err());
    }
}
