//! INSERT, UPDATE and DELETE: compute the mutations, then commit them in one conditional,
//! validated write.
//!
//! Every write carries the statement's read timestamp and read spans: the table descriptor's
//! catalog key (so a concurrent DROP TABLE conflicts) and, for UPDATE and DELETE, the key
//! ranges or points the statement scanned (so a concurrent change of any row it looked at,
//! matching or not, conflicts and the statement is retried). New primary keys carry a
//! NotExists condition, which turns a duplicate into 23505.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use meridian_tablet::{Condition, Mutation, Span, WriteRequest};

use super::ExecContext;
use super::query::run_select;
use super::scan::scan_rows;
use crate::api::{Datum, SqlError, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::{Error, Result};
use crate::expr::{CastContext, cast_datum};
use crate::keys;
use crate::plan::{DeletePlan, InsertPlan, InsertSource, Projection, UpdatePlan};

/// The point span of `table`'s descriptor.
fn descriptor_span(table: &TableDesc) -> Span {
    Span {
        start: catalog::table_key(&table.name),
        end: None,
    }
}

/// Rejects NULL in NOT NULL columns with PostgreSQL's message and "Failing row" detail.
fn check_not_null(table: &TableDesc, row: &[Datum]) -> Result<(), SqlError> {
    for (c, v) in table.columns.iter().zip(row) {
        if !c.nullable && *v == Datum::Null {
            let shown: Vec<String> = table
                .columns
                .iter()
                .zip(row)
                .filter(|(c, _)| !c.hidden)
                .map(|(_, v)| v.to_pg_text().unwrap_or_else(|| "null".to_string()))
                .collect();
            return Err(SqlError::not_null_violation(
                &c.name,
                &table.name,
                &format!("({})", shown.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The statement result: RETURNING rows, or the command tag.
fn result(
    returning: &Option<Projection>,
    rows: &[Vec<Datum>],
    tag: String,
) -> Result<StatementResult> {
    let Some(p) = returning else {
        return Ok(StatementResult::Command { tag });
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(
            p.exprs
                .iter()
                .map(|e| e.eval(r))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(StatementResult::Query {
        columns: p.columns.clone(),
        rows: out,
    })
}

async fn commit(cx: &mut ExecContext<'_>, table: &Arc<TableDesc>, req: WriteRequest) -> Result<()> {
    if req.mutations.is_empty() {
        return Ok(());
    }
    cx.kv
        .write(req)
        .await
        .map(|_| ())
        .map_err(|source| Error::Write {
            source,
            table: Some(table.clone()),
        })
}

/// Executes an INSERT.
pub(crate) async fn insert(cx: &mut ExecContext<'_>, plan: &InsertPlan) -> Result<StatementResult> {
    let table = &plan.table;
    let mut read_spans = vec![descriptor_span(table)];
    let rows: Vec<Vec<Datum>> = match &plan.source {
        InsertSource::Values(rows) => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let mut row = Vec::with_capacity(r.len());
                for e in r {
                    row.push(match e {
                        Some(e) => e.eval(&[])?,
                        None => Datum::Int(cx.rowids.next(cx.read_ts)),
                    });
                }
                out.push(row);
            }
            out
        }
        InsertSource::Query {
            plan: q,
            targets,
            defaults,
        } => {
            let (source, spans) = run_select(cx.kv, cx.read_ts, q).await?;
            read_spans.extend(spans);
            let mut out = Vec::with_capacity(source.len());
            for src in source {
                let mut row = Vec::with_capacity(defaults.len());
                for d in defaults {
                    row.push(match d {
                        Some(e) => e.eval(&[])?,
                        None => Datum::Int(cx.rowids.next(cx.read_ts)),
                    });
                }
                for ((v, &col), info) in src.into_iter().zip(targets).zip(&q.columns) {
                    row[col] = cast_datum(
                        v,
                        info.ty,
                        table.columns[col].spec(),
                        CastContext::Assignment,
                    )?;
                }
                out.push(row);
            }
            out
        }
    };
    let mut seen = HashSet::with_capacity(rows.len());
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        read_spans,
        ..Default::default()
    };
    for row in &rows {
        check_not_null(table, row)?;
        let key = keys::row_key(table, row);
        if !seen.insert(key.clone()) {
            let pk: Vec<Datum> = table.pk.iter().map(|&i| row[i].clone()).collect();
            return Err(SqlError::unique_violation(table, &pk).into());
        }
        req.conditions.push(Condition::NotExists(key.clone()));
        req.mutations.push(Mutation::Put {
            key,
            value: keys::row_value(table, row),
        });
    }
    commit(cx, table, req).await?;
    result(&plan.returning, &rows, format!("INSERT 0 {}", rows.len()))
}

/// Executes an UPDATE. Changing a primary key deletes the old key and writes the new one
/// (with a NotExists condition unless this statement itself deletes that key).
pub(crate) async fn update(cx: &mut ExecContext<'_>, plan: &UpdatePlan) -> Result<StatementResult> {
    let table = &plan.scan.table;
    let scanned = scan_rows(cx.kv, cx.read_ts, &plan.scan, None).await?;
    let mut new_rows = Vec::with_capacity(scanned.rows.len());
    let mut old_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut new_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut puts = Vec::with_capacity(scanned.rows.len());
    for s in &scanned.rows {
        let mut row = s.row.clone();
        for (col, e) in &plan.assignments {
            row[*col] = e.eval(&s.row)?;
        }
        check_not_null(table, &row)?;
        let key = keys::row_key(table, &row);
        if !new_keys.insert(key.clone()) {
            let pk: Vec<Datum> = table.pk.iter().map(|&i| row[i].clone()).collect();
            return Err(SqlError::unique_violation(table, &pk).into());
        }
        old_keys.insert(s.key.clone());
        puts.push((key, keys::row_value(table, &row)));
        new_rows.push(row);
    }
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    req.read_spans.push(descriptor_span(table));
    req.read_spans.extend(scanned.spans);
    for k in old_keys.iter().filter(|k| !new_keys.contains(*k)) {
        req.mutations.push(Mutation::Delete { key: k.clone() });
    }
    for (key, value) in puts {
        if !old_keys.contains(&key) {
            req.conditions.push(Condition::NotExists(key.clone()));
        }
        req.mutations.push(Mutation::Put { key, value });
    }
    commit(cx, table, req).await?;
    result(
        &plan.returning,
        &new_rows,
        format!("UPDATE {}", new_rows.len()),
    )
}

/// Executes a DELETE.
pub(crate) async fn delete(cx: &mut ExecContext<'_>, plan: &DeletePlan) -> Result<StatementResult> {
    let table = &plan.scan.table;
    let scanned = scan_rows(cx.kv, cx.read_ts, &plan.scan, None).await?;
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    req.read_spans.push(descriptor_span(table));
    req.read_spans.extend(scanned.spans);
    req.mutations = scanned
        .rows
        .iter()
        .map(|r| Mutation::Delete { key: r.key.clone() })
        .collect();
    commit(cx, table, req).await?;
    let rows: Vec<Vec<Datum>> = scanned.rows.into_iter().map(|r| r.row).collect();
    result(&plan.returning, &rows, format!("DELETE {}", rows.len()))
}
