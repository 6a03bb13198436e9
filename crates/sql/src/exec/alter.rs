//! ALTER TABLE and TRUNCATE: one write each, with the table's rows in its read spans so that a
//! concurrent write to the table conflicts instead of slipping past the change.

use meridian_tablet::{Condition, Mutation, Span, WriteRequest};

use super::ddl::{claim_name, keys_in, point, relation_exists, write};
use super::dml::backfill_entries;
use super::{ExecContext, Executor, Row};
use crate::api::{Datum, SqlError, StatementResult};
use crate::catalog;
use crate::error::Result;
use crate::expr::is_true;
use crate::keys;
use crate::plan::{AlterPlan, TruncatePlan};

fn tag(t: &str) -> StatementResult {
    StatementResult::Command { tag: t.to_string() }
}

/// Moves every row of the table to its key under the new primary key and rebuilds every
/// secondary index (their entries end with the primary key). Old keys that are not written
/// again are deleted; two rows with the same new key fail as PostgreSQL's index build does.
async fn rekey(
    cx: &mut ExecContext<'_>,
    plan: &AlterPlan,
    old_pairs: &[meridian_tablet::KvPair],
    rows: &[Row],
    req: &mut WriteRequest,
) -> Result<()> {
    let new = &plan.new;
    // Key -> value (None: delete); later writes of a key replace earlier ones, so a new key
    // that happens to equal an old one is written, not deleted.
    let mut changes: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
        old_pairs.iter().map(|(k, _)| (k.clone(), None)).collect();
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    for row in rows {
        let key = keys::row_key(new, row);
        if !seen.insert(key.clone()) {
            let pk: Vec<Datum> = new.pk.iter().map(|&c| row[c].clone()).collect();
            let dup = SqlError::unique_violation(new, &pk);
            return Err(SqlError::new(
                "23505",
                format!("could not create unique index \"{}\"", new.pkey_name()),
            )
            .with_detail(
                dup.detail
                    .unwrap_or_default()
                    .replace("already exists.", "is duplicated."),
            )
            .into());
        }
        changes.insert(key, Some(keys::row_value(new, row)));
    }
    for ix in &new.indexes {
        let start = keys::index_prefix(new.id, ix.id);
        let end = keys::successor(&start);
        for (key, _) in keys_in(cx, &start, &end).await? {
            changes.entry(key).or_insert(None);
        }
        for (key, value) in backfill_entries(new, ix, rows)? {
            changes.insert(key, Some(value));
        }
    }
    req.mutations
        .extend(changes.into_iter().map(|(key, v)| match v {
            Some(value) => Mutation::Put { key, value },
            None => Mutation::Delete { key },
        }));
    Ok(())
}

/// Applies an ALTER TABLE.
pub(crate) async fn alter(cx: &mut ExecContext<'_>, plan: &AlterPlan) -> Result<StatementResult> {
    let old = &plan.old;
    let new = &plan.new;
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    let old_key = catalog::table_key(&old.name);
    req.read_spans.push(point(old_key.clone()));
    let renamed = old.name != new.name;
    if renamed {
        if relation_exists(cx, &new.name).await? {
            return Err(SqlError::duplicate_table(&new.name).into());
        }
        claim_name(&mut req, &new.name);
        req.mutations.push(Mutation::Delete { key: old_key });
        for ix in &new.indexes {
            req.mutations.push(Mutation::Put {
                key: catalog::index_key(&ix.name),
                value: new.name.as_bytes().to_vec(),
            });
        }
    }
    let needs_rows = plan.rewrite.is_some()
        || !plan.validate.is_empty()
        || !plan.not_null.is_empty()
        || plan.added_index.is_some();
    if needs_rows {
        let (start, end) = keys::table_span(old.id);
        req.read_spans.push(Span {
            start,
            end: Some(end),
        });
        let primary = keys::primary_prefix(old.id);
        let pairs = keys_in(cx, &primary, &keys::successor(&primary)).await?;
        let mut ex = Executor::new(cx);
        let env = ex.env();
        let mut rows: Vec<Row> = Vec::with_capacity(pairs.len());
        for (k, v) in &pairs {
            // Without a rewrite the layout is unchanged, except for columns added at the end,
            // which the new descriptor reads as NULL.
            let row = match &plan.rewrite {
                Some(exprs) => {
                    let row = keys::decode_row(old, k, v)?;
                    ex.eval_all(exprs, &row, env).await?
                }
                None => keys::decode_row(new, k, v)?,
            };
            rows.push(row);
        }
        for row in &rows {
            for &c in &plan.not_null {
                if row.get(c).is_none_or(|d| *d == Datum::Null) {
                    return Err(SqlError::new(
                        "23502",
                        format!(
                            "column \"{}\" of relation \"{}\" contains null values",
                            new.columns[c].name, new.name
                        ),
                    )
                    .into());
                }
            }
            for (name, cond) in &plan.validate {
                let v = cond.eval(row, &env)?;
                if !is_true(&v) && v != Datum::Null {
                    return Err(SqlError::new(
                        "23514",
                        format!(
                            "check constraint \"{name}\" of relation \"{}\" is violated by some row",
                            new.name
                        ),
                    )
                    .into());
                }
            }
        }
        if plan.rekey {
            rekey(cx, plan, &pairs, &rows, &mut req).await?;
        } else if plan.rewrite.is_some() {
            for row in &rows {
                req.mutations.push(Mutation::Put {
                    key: keys::row_key(new, row),
                    value: keys::row_value(new, row),
                });
            }
        }
        if let Some(ix) = &plan.added_index {
            if relation_exists(cx, &ix.name).await? {
                return Err(SqlError::duplicate_table(&ix.name).into());
            }
            claim_name(&mut req, &ix.name);
            req.mutations.push(Mutation::Put {
                key: catalog::index_key(&ix.name),
                value: new.name.as_bytes().to_vec(),
            });
            for (key, value) in backfill_entries(new, ix, &rows)? {
                req.mutations.push(Mutation::Put { key, value });
            }
        }
    }
    for ix in &plan.dropped_indexes {
        let start = keys::index_prefix(old.id, ix.id);
        let end = keys::successor(&start);
        for (key, _) in keys_in(cx, &start, &end).await? {
            req.mutations.push(Mutation::Delete { key });
        }
        req.mutations.push(Mutation::Delete {
            key: catalog::index_key(&ix.name),
        });
    }
    req.mutations.push(Mutation::Put {
        key: catalog::table_key(&new.name),
        value: catalog::encode_descriptor(new),
    });
    if renamed {
        req.conditions
            .push(Condition::Exists(catalog::table_key(&old.name)));
    }
    write(cx, req).await?;
    Ok(tag("ALTER TABLE"))
}

/// Deletes every row and index entry of the tables.
pub(crate) async fn truncate(
    cx: &mut ExecContext<'_>,
    plan: &TruncatePlan,
) -> Result<StatementResult> {
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    let mut rows = Vec::with_capacity(plan.tables.len());
    for t in &plan.tables {
        req.read_spans.push(point(catalog::table_key(&t.name)));
        let (start, end) = keys::table_span(t.id);
        let primary = keys::primary_prefix(t.id);
        let mut n = 0;
        for (key, _) in keys_in(cx, &start, &end).await? {
            n += u64::from(key.starts_with(&primary));
            req.mutations.push(Mutation::Delete { key });
        }
        rows.push((t.clone(), n));
        req.read_spans.push(Span {
            start,
            end: Some(end),
        });
    }
    if !req.mutations.is_empty() {
        write(cx, req).await?;
        cx.written.extend(rows);
    }
    Ok(tag("TRUNCATE TABLE"))
}
