//! Statements about the tablets that hold the data: `SHOW RANGES [FROM TABLE t]` and
//! `ALTER TABLE t SPLIT AT VALUES (...)`.
//!
//! Both read or change the keyspace's range directory through the [`KvClient`]: the meta
//! records in the root tablet (`meridian_tablet::range`) and [`KvClient::split_at`].

use meridian_tablet::KvClient;
use meridian_tablet::range::{self, RangeDescriptor};

use crate::api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::Error;
use crate::expr::{CastContext, cast_datum};
use crate::keys;

/// `ALTER TABLE <name> SPLIT AT <query>` recognised in the statement text (the parser does not
/// know it): the table name and the query giving the split points.
pub(crate) fn parse_split(sql: &str) -> Option<(String, String)> {
    let words: Vec<&str> = without_leading_comments(sql)
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    let is = |i: usize, w: &str| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
    if !(is(0, "alter") && is(1, "table") && is(3, "split") && is(4, "at") && words.len() > 5) {
        return None;
    }
    let name = words[2].trim_matches('"');
    let name = if words[2].starts_with('"') {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    };
    Some((name, words[5..].join(" ")))
}

/// `sql` from its first character that is not blank or in a comment.
fn without_leading_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start();
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.find('\n').map_or("", |n| &rest[n + 1..]);
        } else if sql.starts_with("/*") {
            // `statements` finds where a (nested) block comment ends.
            let end = statements_skip(sql, 0);
            sql = &sql[end..];
        } else {
            return sql;
        }
    }
}

/// The statements of `sql`, a query string holding more than one, when one of them is an
/// `ALTER TABLE ... SPLIT AT` (which the parser does not know, so the string cannot be parsed
/// whole); `None` otherwise.
pub(crate) fn pieces_with_split(sql: &str) -> Option<Vec<&str>> {
    if !sql
        .as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"split"))
    {
        return None;
    }
    let pieces = statements(sql);
    (pieces.len() > 1 && pieces.iter().any(|p| parse_split(p).is_some())).then_some(pieces)
}

/// `sql` cut at every `;` outside quotes (`'...'`, `"..."`, `$tag$...$tag$`) and comments
/// (`--`, nested `/* */`), without empty statements.
pub(crate) fn statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if b[i] == b';' {
            out.push(&sql[start..i]);
            start = i + 1;
            i += 1;
        } else {
            i = statements_skip(sql, i);
        }
    }
    out.push(&sql[start..]);
    out.retain(|p| !p.trim().is_empty());
    out
}

/// Where the construct of `sql` that opens at byte `i` ends (the index after it): a quoted
/// string or identifier, a dollar-quoted string, a comment, or else the one character.
fn statements_skip(sql: &str, i: usize) -> usize {
    let b = sql.as_bytes();
    let rest = &b[i..];
    // The index after the first `pat` at or after `from` (relative to `i`), or the end.
    let after = |pat: &[u8], from: usize| {
        rest[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map_or(b.len(), |p| i + from + p + pat.len())
    };
    match b[i] {
        q @ (b'\'' | b'"') => {
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == q {
                    // A doubled quote stays inside.
                    if b.get(j + 1) == Some(&q) {
                        j += 2;
                        continue;
                    }
                    return j + 1;
                }
                j += 1;
            }
            b.len()
        }
        b'-' if rest.starts_with(b"--") => after(b"\n", 2),
        b'/' if rest.starts_with(b"/*") => {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            j
        }
        b'$' => {
            // `$tag$` (the tag may be empty) opens a string that the same `$tag$` closes;
            // `$1` is a parameter.
            let tag = rest[1..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80));
            match tag {
                Some(n) if rest[1 + n] == b'$' && !rest[1].is_ascii_digit() => {
                    after(&rest[..n + 2], n + 2)
                }
                _ => i + 1,
            }
        }
        _ => i + 1,
    }
}

/// The primary-key prefix keys of `table` for split points `rows` (each a prefix of the
/// primary key columns, cast to their types).
pub(crate) fn split_keys(
    table: &TableDesc,
    columns: &[ColumnInfo],
    rows: Vec<Vec<Datum>>,
) -> Result<Vec<Vec<u8>>, SqlError> {
    if columns.is_empty() || columns.len() > table.pk.len() {
        return Err(SqlError::new(
            "42601",
            format!(
                "split points of table {:?} have {} values; its primary key has {} columns",
                table.name,
                columns.len(),
                table.pk.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut key = keys::primary_prefix(table.id);
        for ((d, col), &pk) in row.into_iter().zip(columns).zip(&table.pk) {
            let target = &table.columns[pk];
            let v = cast_datum(d, col.ty, target.spec(), CastContext::Explicit)?;
            if matches!(v, Datum::Null) {
                return Err(SqlError::new("22004", "a split point cannot contain NULL"));
            }
            keys::encode_datum(&mut key, &v);
        }
        out.push(key);
    }
    Ok(out)
}

/// Splits `table` at each key; answers one row per split point, as CockroachDB does.
pub(crate) async fn split_at(
    kv: &dyn KvClient,
    table: &TableDesc,
    keys: Vec<Vec<u8>>,
) -> Result<StatementResult, SqlError> {
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        kv.split_at(&key).await.map_err(|e| {
            Error::Write {
                source: e,
                table: None,
            }
            .into_sql()
        })?;
        rows.push(vec![Datum::Text(table_key(table, &key, false))]);
    }
    Ok(StatementResult::Query {
        columns: vec![ColumnInfo {
            name: "split_key".into(),
            ty: SqlType::Text,
        }],
        rows,
    })
}

/// `SHOW RANGES [FROM TABLE t]`: every range from the meta records (only the table's, with
/// its keys shown as primary key values, when a table is named).
pub(crate) async fn show_ranges(
    kv: &dyn KvClient,
    table: Option<&TableDesc>,
) -> Result<StatementResult, SqlError> {
    let descs = directory(kv).await?;
    let span = table.map(|t| keys::table_span(t.id));
    let rows = descs
        .into_iter()
        .filter(|d| match &span {
            Some((start, end)) => range::clip(d, start, end).is_some(),
            None => true,
        })
        .map(|d| {
            let show = |k: &[u8], is_end: bool| match table {
                Some(t) => Datum::Text(table_key(t, k, is_end)),
                None if k.is_empty() => Datum::Null,
                None => Datum::Text(range::pretty_key(k)),
            };
            let replicas = d
                .replicas
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            vec![
                Datum::Int(i64::try_from(d.tablet_id).unwrap_or(i64::MAX)),
                show(&d.start_key, false),
                show(&d.end_key, true),
                Datum::Text(format!("{{{replicas}}}")),
                Datum::Int(i64::try_from(d.generation).unwrap_or(i64::MAX)),
            ]
        })
        .collect();
    let col = |name: &str, ty| ColumnInfo {
        name: name.into(),
        ty,
    };
    Ok(StatementResult::Query {
        columns: vec![
            col("range_id", SqlType::Int8),
            col("start_key", SqlType::Text),
            col("end_key", SqlType::Text),
            col("replicas", SqlType::Text),
            col("generation", SqlType::Int8),
        ],
        rows,
    })
}

/// Every range of the keyspace, in key order, as the meta records say now (none for a
/// keyspace that is a single tablet without a directory, as the in-memory test keyspace).
pub(crate) async fn directory(kv: &dyn KvClient) -> Result<Vec<RangeDescriptor>, SqlError> {
    let ts = kv.read_ts().await.map_err(|e| Error::Read(e).into_sql())?;
    let (lo, hi) = range::meta_span();
    let records = kv
        .scan(&lo, &hi, ts, None)
        .await
        .map_err(|e| Error::Read(e).into_sql())?;
    let mut descs: Vec<RangeDescriptor> = Vec::with_capacity(records.len());
    for (_, v) in records {
        descs.push(range::decode_meta(&v).map_err(|e| Error::Read(e).into_sql())?);
    }
    Ok(descs)
}

/// A range boundary inside table `t`, shown like CockroachDB: `/<pk values>` for a row key of
/// the table, `<before>`/`<after>` outside it, the raw key otherwise.
fn table_key(t: &TableDesc, key: &[u8], is_end: bool) -> String {
    let (start, end) = keys::table_span(t.id);
    if is_end && (key.is_empty() || key >= end.as_slice()) {
        return "<after>".into();
    }
    if !is_end && key <= start.as_slice() {
        return "<before>".into();
    }
    let prefix = keys::primary_prefix(t.id);
    let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
        return range::pretty_key(key);
    };
    let mut dec = meridian_storage::keycode::Decoder::new(rest);
    let mut parts = Vec::new();
    for &i in &t.pk {
        if dec.is_empty() {
            break;
        }
        match keys::decode_datum(&mut dec, t.columns[i].ty) {
            Ok(d) => parts.push(crate::datum_text::to_pg_text(&d).unwrap_or_else(|| "NULL".into())),
            Err(_) => return range::pretty_key(key),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Table `name` as of now, or 42P01.
pub(crate) async fn current_table(
    kv: &dyn KvClient,
    name: &str,
) -> Result<std::sync::Arc<TableDesc>, SqlError> {
    let ts = kv.read_ts().await.map_err(|e| Error::Read(e).into_sql())?;
    catalog::get_table(kv, name, ts)
        .await
        .map_err(Error::into_sql)?
        .ok_or_else(|| SqlError::undefined_table(name))
}

/// The table of `SHOW RANGES FROM TABLE t`, from the words after `RANGES`.
pub(crate) async fn named_table(
    kv: &dyn KvClient,
    words: &[String],
) -> Result<Option<std::sync::Arc<TableDesc>>, SqlError> {
    match words {
        [] => Ok(None),
        [from, table, name]
            if from.eq_ignore_ascii_case("from") && table.eq_ignore_ascii_case("table") =>
        {
            current_table(kv, name).await.map(Some)
        }
        _ => Err(SqlError::new(
            "42601",
            "expected SHOW RANGES or SHOW RANGES FROM TABLE <name>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_statements_are_recognised_by_their_words() {
        assert_eq!(
            parse_split("ALTER TABLE Kv SPLIT AT VALUES (5), (10);"),
            Some(("kv".into(), "VALUES (5), (10)".into()))
        );
        assert_eq!(
            parse_split("alter table \"Kv\" split at select 1"),
            Some(("Kv".into(), "select 1".into()))
        );
        assert_eq!(parse_split("ALTER TABLE kv ADD COLUMN x INT"), None);
        assert_eq!(parse_split("ALTER TABLE kv SPLIT AT"), None);
    }
}
