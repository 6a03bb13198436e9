//! INSERT, UPDATE and DELETE: compute the row changes, then commit them with their index
//! entries in one conditional, validated write (see `index.rs`).
//!
//! Every write carries the statement's read timestamp and read spans: the table descriptor's
//! catalog key (so a concurrent schema change conflicts) and everything the statement read
//! (the target rows' ranges or keys, subqueries, ON CONFLICT probes), so a concurrent change of
//! anything it looked at conflicts and the statement is retried.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use meridian_tablet::Span;

use super::index::{WriteSet, index_violation};
use super::{ExecContext, Executor, Row};
use crate::api::{Datum, SqlError, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::{Error, Result};
use crate::expr::{CastContext, Env, ScalarExpr, cast_datum};
use crate::keys;
use crate::plan::{Access, DeletePlan, InsertPlan, InsertSource, Projection, UpdatePlan};
use crate::plan::{ConflictAction, OnConflictPlan};

/// The point span of `table`'s descriptor.
fn descriptor_span(table: &TableDesc) -> Span {
    Span {
        start: catalog::table_key(&table.name),
        end: None,
    }
}

/// The text PostgreSQL shows for a row in "Failing row contains" details.
fn row_text(table: &TableDesc, row: &[Datum]) -> String {
    let shown: Vec<String> = table
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| !c.hidden)
        .map(|(_, v)| v.to_pg_text().unwrap_or_else(|| "null".to_string()))
        .collect();
    format!("({})", shown.join(", "))
}

/// Rejects NULL in NOT NULL columns and rows failing a CHECK constraint.
fn check_row(
    table: &TableDesc,
    row: &[Datum],
    checks: &[(String, ScalarExpr)],
    env: &Env<'_>,
) -> Result<(), SqlError> {
    for (c, v) in table.columns.iter().zip(row) {
        if !c.nullable && *v == Datum::Null {
            return Err(SqlError::not_null_violation(
                &c.name,
                &table.name,
                &row_text(table, row),
            ));
        }
    }
    for (name, cond) in checks {
        if cond.eval(row, env)? == Datum::Bool(false) {
            return Err(SqlError::check_violation(
                &table.name,
                name,
                &row_text(table, row),
            ));
        }
    }
    Ok(())
}

/// The statement result: RETURNING rows, or the command tag.
async fn result(
    ex: &mut Executor<'_>,
    returning: &Option<Projection>,
    rows: &[Row],
    tag: String,
) -> Result<StatementResult> {
    let Some(p) = returning else {
        return Ok(StatementResult::Command { tag });
    };
    let env = ex.env();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(ex.eval_all(&p.exprs, r, env).await?);
    }
    Ok(StatementResult::Query {
        columns: p.columns.clone(),
        rows: out,
    })
}

/// Commits `writes`, which change `rows` rows of `table`.
async fn commit(
    cx: &mut ExecContext<'_>,
    table: &Arc<TableDesc>,
    writes: WriteSet,
    mut spans: Vec<Span>,
    rows: usize,
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    spans.push(descriptor_span(table));
    let req = writes.into_request(cx.read_ts, spans);
    cx.kv.write(req).await.map_err(|source| Error::Write {
        source,
        table: Some(table.clone()),
    })?;
    cx.written.push((table.clone(), rows as u64));
    Ok(())
}

/// The rows an INSERT proposes, before conflicts are handled.
async fn proposed_rows(ex: &mut Executor<'_>, plan: &InsertPlan) -> Result<Vec<Row>> {
    let table = &plan.table;
    let env = ex.env();
    match &plan.source {
        InsertSource::Values(rows) => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let mut row = Vec::with_capacity(r.len());
                for e in r {
                    row.push(match e {
                        Some(e) => ex.eval(e, &[], env).await?,
                        None => Datum::Int(ex.next_rowid()),
                    });
                }
                out.push(row);
            }
            Ok(out)
        }
        InsertSource::Query {
            plan: q,
            targets,
            defaults,
        } => {
            let source = ex.query(&q.rel).await?;
            let mut out = Vec::with_capacity(source.len());
            for src in source {
                let mut row = Vec::with_capacity(defaults.len());
                for d in defaults {
                    row.push(match d {
                        Some(e) => ex.eval(e, &[], env).await?,
                        None => Datum::Int(ex.next_rowid()),
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
            Ok(out)
        }
    }
}

/// Executes an INSERT.
pub(crate) async fn insert(cx: &mut ExecContext<'_>, plan: &InsertPlan) -> Result<StatementResult> {
    let table = &plan.table;
    let mut ex = Executor::new(cx);
    let rows = proposed_rows(&mut ex, plan).await?;
    let env = ex.env();
    let mut writes = WriteSet::new(table.clone());
    let mut written = Vec::with_capacity(rows.len());
    match &plan.on_conflict {
        None => {
            for row in rows {
                check_row(table, &row, &plan.checks, &env)?;
                writes.put(&row)?;
                written.push(row);
            }
        }
        Some(oc) if replaces_whole_row(table, oc) => {
            // The row written is the proposed one whether or not one exists: a blind write,
            // with no read of the old row (and so no read for the commit to validate).
            let mut claimed: HashSet<Vec<u8>> = HashSet::new();
            for row in rows {
                check_row(table, &row, &plan.checks, &env)?;
                if !claimed.insert(keys::row_key(table, &row)) {
                    return Err(affected_twice().into());
                }
                writes.delete(&row);
                writes.put(&row)?;
                written.push(row);
            }
        }
        Some(oc) => {
            let mut claimed: HashSet<Vec<u8>> = HashSet::new();
            for row in rows {
                check_row(table, &row, &plan.checks, &env)?;
                match conflict(&mut ex, table, oc, &row, &claimed).await? {
                    Conflict::None => {
                        claim(table, oc, &row, &mut claimed);
                        writes.put(&row)?;
                        written.push(row);
                    }
                    Conflict::InStatement => match oc.action {
                        ConflictAction::Nothing => {}
                        ConflictAction::Update { .. } => return Err(affected_twice().into()),
                    },
                    Conflict::Existing(old) => match &oc.action {
                        ConflictAction::Nothing => {}
                        ConflictAction::Update {
                            assignments,
                            filter,
                        } => {
                            let mut both = old.clone();
                            both.extend(row.iter().cloned());
                            if let Some(f) = filter
                                && !crate::expr::is_true(&ex.eval(f, &both, env).await?)
                            {
                                continue;
                            }
                            let mut new = old.clone();
                            for (col, e) in assignments {
                                new[*col] = ex.eval(e, &both, env).await?;
                            }
                            check_row(table, &new, &plan.checks, &env)?;
                            claim(table, oc, &old, &mut claimed);
                            claim(table, oc, &new, &mut claimed);
                            writes.delete(&old);
                            writes.put(&new)?;
                            written.push(new);
                        }
                    },
                }
            }
        }
    }
    let spans = std::mem::take(&mut ex.spans);
    commit(cx, table, writes, spans, written.len()).await?;
    let n = written.len();
    result(&mut ex, &plan.returning, &written, format!("INSERT 0 {n}")).await
}

fn affected_twice() -> SqlError {
    SqlError::new(
        "21000",
        "ON CONFLICT DO UPDATE command cannot affect row a second time",
    )
    .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values.")
}

/// Whether `oc` makes the proposed row replace whatever row has its primary key, so that the
/// statement need not read it (an upsert, as `INSERT ... ON CONFLICT (pk) DO UPDATE SET c =
/// excluded.c` for every other column): the primary key is the only arbiter and the only
/// unique constraint, no index entry of an old row needs deleting, and the update sets every
/// non-key column to the proposed value, unconditionally.
fn replaces_whole_row(table: &TableDesc, oc: &OnConflictPlan) -> bool {
    let ConflictAction::Update {
        assignments,
        filter: None,
    } = &oc.action
    else {
        return false;
    };
    let width = table.columns.len();
    let arbiter_is_pk = match oc.arbiters.as_slice() {
        [] => !table.has_hidden_key(),
        [Access::Primary] => true,
        _ => false,
    };
    let from_excluded = |col: usize| {
        assignments
            .iter()
            .any(|(c, e)| *c == col && matches!(e, ScalarExpr::Column(i, _) if *i == width + col))
    };
    arbiter_is_pk
        && table.indexes.is_empty()
        && assignments.iter().all(|(c, _)| !table.pk.contains(c))
        && (0..width)
            .filter(|c| !table.pk.contains(c))
            .all(from_excluded)
}

/// What an INSERT ... ON CONFLICT row runs into.
enum Conflict {
    None,
    /// A row this statement inserted or updated.
    InStatement,
    /// A row of the table (as of the snapshot).
    Existing(Row),
}

/// The keys by which `row` would conflict under `oc`'s arbiters.
fn arbiter_keys(table: &TableDesc, oc: &OnConflictPlan, row: &[Datum]) -> Vec<(Access, Vec<u8>)> {
    let mut out = Vec::new();
    let all = oc.arbiters.is_empty();
    if (all && !table.has_hidden_key()) || oc.arbiters.contains(&Access::Primary) {
        out.push((Access::Primary, keys::row_key(table, row)));
    }
    for (i, ix) in table.indexes.iter().enumerate() {
        let chosen = if all {
            ix.unique
        } else {
            oc.arbiters.contains(&Access::Index(i))
        };
        if chosen && keys::index_entry_is_unique(ix, row) {
            out.push((Access::Index(i), keys::index_entry(table, ix, row).0));
        }
    }
    out
}

fn claim(table: &TableDesc, oc: &OnConflictPlan, row: &[Datum], claimed: &mut HashSet<Vec<u8>>) {
    for (_, k) in arbiter_keys(table, oc, row) {
        claimed.insert(k);
    }
}

/// Finds the row `row` conflicts with under `oc`, reading (and recording) the arbiter keys.
async fn conflict(
    ex: &mut Executor<'_>,
    table: &Arc<TableDesc>,
    oc: &OnConflictPlan,
    row: &[Datum],
    claimed: &HashSet<Vec<u8>>,
) -> Result<Conflict> {
    for (access, key) in arbiter_keys(table, oc, row) {
        if claimed.contains(&key) {
            return Ok(Conflict::InStatement);
        }
        let Some(value) = ex.get(&key).await? else {
            continue;
        };
        let existing = match access {
            Access::Primary => Some(keys::decode_row(table, &key, &value)?),
            Access::Index(i) => {
                let partial = keys::decode_index_entry(table, &table.indexes[i], &key, &value)?;
                ex.fetch_row(table, &partial).await?
            }
        };
        if let Some(r) = existing {
            return Ok(Conflict::Existing(r));
        }
    }
    Ok(Conflict::None)
}

/// Executes an UPDATE. A target row matched by several FROM rows is updated once (by the
/// first), as in PostgreSQL.
pub(crate) async fn update(cx: &mut ExecContext<'_>, plan: &UpdatePlan) -> Result<StatementResult> {
    let table = &plan.table;
    let width = table.columns.len();
    let mut ex = Executor::new(cx);
    ex.lock_table = Some(table.id);
    let env = ex.env();
    let source = ex.query(&plan.source).await?;
    ex.lock_table = None;
    let mut seen: HashMap<Vec<u8>, ()> = HashMap::with_capacity(source.len());
    let mut writes = WriteSet::new(table.clone());
    let mut old_rows = Vec::with_capacity(source.len());
    let mut new_rows = Vec::with_capacity(source.len());
    for src in source {
        let old = &src[..width];
        if seen.insert(keys::row_key(table, old), ()).is_some() {
            continue;
        }
        let mut new = src.clone();
        for (col, e) in &plan.assignments {
            new[*col] = ex.eval(e, &src, env).await?;
        }
        check_row(table, &new[..width], &plan.checks, &env)?;
        old_rows.push(old.to_vec());
        new_rows.push(new);
    }
    for old in &old_rows {
        writes.delete(old);
    }
    for new in &new_rows {
        writes.put(&new[..width])?;
    }
    let spans = std::mem::take(&mut ex.spans);
    commit(cx, table, writes, spans, new_rows.len()).await?;
    let n = new_rows.len();
    result(&mut ex, &plan.returning, &new_rows, format!("UPDATE {n}")).await
}

/// Executes a DELETE.
pub(crate) async fn delete(cx: &mut ExecContext<'_>, plan: &DeletePlan) -> Result<StatementResult> {
    let table = &plan.table;
    let width = table.columns.len();
    let mut ex = Executor::new(cx);
    ex.lock_table = Some(table.id);
    let source = ex.query(&plan.source).await?;
    ex.lock_table = None;
    let mut seen = HashSet::with_capacity(source.len());
    let mut writes = WriteSet::new(table.clone());
    let mut deleted = Vec::with_capacity(source.len());
    for src in source {
        if !seen.insert(keys::row_key(table, &src[..width])) {
            continue;
        }
        writes.delete(&src[..width]);
        deleted.push(src);
    }
    let spans = std::mem::take(&mut ex.spans);
    commit(cx, table, writes, spans, deleted.len()).await?;
    let n = deleted.len();
    result(&mut ex, &plan.returning, &deleted, format!("DELETE {n}")).await
}

/// Backfill support: the index entries of every row of `rows` for `ix`, checking uniqueness.
pub(crate) fn backfill_entries(
    table: &TableDesc,
    ix: &crate::catalog::IndexDesc,
    rows: &[Row],
) -> Result<Vec<meridian_tablet::KvPair>, SqlError> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (k, v) = keys::index_entry(table, ix, row);
        if keys::index_entry_is_unique(ix, row) && !seen.insert(k.clone()) {
            let e = index_violation(table, ix, row);
            return Err(SqlError::new(
                "23505",
                format!("could not create unique index \"{}\"", ix.name),
            )
            .with_detail(
                e.detail
                    .unwrap_or_default()
                    .replace("already exists.", "is duplicated."),
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}
