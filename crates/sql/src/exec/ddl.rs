//! DDL: catalog writes, validated like any other write. CREATE INDEX backfills the new index
//! in the same write as the descriptor change, with the table's rows in its read spans: a
//! concurrent write to the table makes one of the two conflict (and retry), so no row is left
//! unindexed.

use meridian_tablet::{Condition, Mutation, Span, WriteRequest};

use super::ExecContext;
use super::dml::backfill_entries;
use crate::api::{SqlError, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::{Error, Result};
use crate::keys;
use crate::plan::{CreateIndexPlan, CreateTablePlan, CreateViewPlan, DropPlan};

/// Rows read per scan page when dropping or backfilling.
const PAGE_SIZE: usize = 4096;

pub(super) fn tag(t: &str) -> StatementResult {
    StatementResult::Command { tag: t.to_string() }
}

pub(super) fn point(key: Vec<u8>) -> Span {
    Span {
        start: key,
        end: None,
    }
}

/// Whether a relation (table, view, index or sequence) called `name` exists as of the read
/// timestamp.
pub(super) async fn relation_exists(cx: &ExecContext<'_>, name: &str) -> Result<bool> {
    for key in [
        catalog::table_key(name),
        catalog::index_key(name),
        catalog::sequence_key(name),
    ] {
        if cx
            .kv
            .get(&key, cx.read_ts)
            .await
            .map_err(Error::Read)?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The name keys a new relation called `name` claims: read, and required not to exist.
pub(super) fn claim_name(req: &mut WriteRequest, name: &str) {
    for key in [
        catalog::table_key(name),
        catalog::index_key(name),
        catalog::sequence_key(name),
    ] {
        req.read_spans.push(point(key.clone()));
        req.conditions.push(Condition::NotExists(key));
    }
}

/// Every key in `[start, end)` as of the read timestamp.
pub(super) async fn keys_in(
    cx: &ExecContext<'_>,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut from = start.to_vec();
    loop {
        let page = cx
            .kv
            .scan(&from, end, cx.read_ts, Some(PAGE_SIZE))
            .await
            .map_err(Error::Read)?;
        let full = page.len() == PAGE_SIZE;
        let last = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        match last {
            Some(mut k) if full => {
                k.push(0);
                from = k;
            }
            _ => break,
        }
    }
    Ok(out)
}

pub(super) async fn write(cx: &ExecContext<'_>, req: WriteRequest) -> Result<()> {
    cx.kv
        .write(req)
        .await
        .map(|_| ())
        .map_err(|source| Error::Write {
            source,
            table: None,
        })
}

/// Takes the next table id (the counter is read and rewritten, so concurrent creations
/// conflict instead of sharing an id).
async fn take_id(cx: &ExecContext<'_>, req: &mut WriteRequest) -> Result<u64> {
    let id = catalog::next_table_id(cx.kv, cx.read_ts).await?;
    req.read_spans
        .push(point(catalog::TABLE_ID_COUNTER_KEY.to_vec()));
    req.mutations.push(Mutation::Put {
        key: catalog::TABLE_ID_COUNTER_KEY.to_vec(),
        value: catalog::encode_counter(id + 1),
    });
    Ok(id)
}

/// Creates a table (and the unique indexes of its UNIQUE constraints).
pub(crate) async fn create_table(
    cx: &mut ExecContext<'_>,
    plan: &CreateTablePlan,
) -> Result<StatementResult> {
    if relation_exists(cx, &plan.name).await? {
        if plan.if_not_exists {
            return Ok(tag("CREATE TABLE"));
        }
        return Err(SqlError::duplicate_table(&plan.name).into());
    }
    for ix in &plan.indexes {
        if relation_exists(cx, &ix.name).await? {
            return Err(SqlError::duplicate_table(&ix.name).into());
        }
    }
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    let id = take_id(cx, &mut req).await?;
    let desc = plan.descriptor(id)?;
    claim_name(&mut req, &plan.name);
    for seq in &plan.sequences {
        if relation_exists(cx, &seq.name).await? {
            return Err(SqlError::duplicate_table(&seq.name).into());
        }
        claim_name(&mut req, &seq.name);
        req.mutations.push(Mutation::Put {
            key: catalog::sequence_key(&seq.name),
            value: catalog::encode_sequence(seq),
        });
    }
    for ix in &desc.indexes {
        claim_name(&mut req, &ix.name);
        req.mutations.push(Mutation::Put {
            key: catalog::index_key(&ix.name),
            value: plan.name.as_bytes().to_vec(),
        });
    }
    req.mutations.push(Mutation::Put {
        key: catalog::table_key(&plan.name),
        value: catalog::encode_descriptor(&desc),
    });
    write(cx, req).await?;
    Ok(tag("CREATE TABLE"))
}

/// Creates an index and backfills it from the table's rows.
pub(crate) async fn create_index(
    cx: &mut ExecContext<'_>,
    plan: &CreateIndexPlan,
) -> Result<StatementResult> {
    let name = &plan.index.name;
    if relation_exists(cx, name).await? {
        if plan.if_not_exists {
            return Ok(tag("CREATE INDEX"));
        }
        return Err(SqlError::duplicate_table(name).into());
    }
    let mut desc: TableDesc = (*plan.table).clone();
    let mut ix = plan.index.clone();
    ix.id = desc.next_index_id;
    desc.next_index_id += 1;
    desc.version += 1;
    desc.indexes.push(ix.clone());
    let primary = keys::primary_prefix(desc.id);
    let end = keys::successor(&primary);
    let pairs = keys_in(cx, &primary, &end).await?;
    let rows = pairs
        .iter()
        .map(|(k, v)| keys::decode_row(&desc, k, v))
        .collect::<Result<Vec<_>>>()?;
    let entries = backfill_entries(&desc, &ix, &rows)?;
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        read_spans: vec![
            point(catalog::table_key(&desc.name)),
            Span {
                start: primary,
                end: Some(end),
            },
        ],
        ..Default::default()
    };
    claim_name(&mut req, name);
    req.mutations.push(Mutation::Put {
        key: catalog::index_key(name),
        value: desc.name.as_bytes().to_vec(),
    });
    req.mutations.push(Mutation::Put {
        key: catalog::table_key(&desc.name),
        value: catalog::encode_descriptor(&desc),
    });
    req.mutations.extend(
        entries
            .into_iter()
            .map(|(key, value)| Mutation::Put { key, value }),
    );
    write(cx, req).await?;
    Ok(tag("CREATE INDEX"))
}

/// Creates (or replaces) a view: a descriptor with the query text and result columns.
pub(crate) async fn create_view(
    cx: &mut ExecContext<'_>,
    plan: &CreateViewPlan,
) -> Result<StatementResult> {
    let key = catalog::table_key(&plan.name);
    let existing = catalog::get_table(cx.kv, &plan.name, cx.read_ts).await?;
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    // A replaced view keeps its id and gets a new version, so plans made against its old
    // definition are made again.
    let (id, version) = match existing {
        Some(t) if plan.or_replace && t.is_view() => {
            req.read_spans.push(point(key.clone()));
            (t.id, t.version + 1)
        }
        Some(t) if plan.or_replace => {
            return Err(SqlError::new("42809", format!("\"{}\" is not a view", t.name)).into());
        }
        Some(_) if plan.if_not_exists => return Ok(tag("CREATE VIEW")),
        Some(_) => return Err(SqlError::duplicate_table(&plan.name).into()),
        None => {
            if relation_exists(cx, &plan.name).await? {
                return Err(SqlError::duplicate_table(&plan.name).into());
            }
            claim_name(&mut req, &plan.name);
            (take_id(cx, &mut req).await?, 1)
        }
    };
    let mut desc = TableDesc::new(
        id,
        plan.name.clone(),
        plan.columns.clone(),
        vec![0],
        version,
    )?;
    desc.view = Some(plan.sql.clone());
    req.mutations.push(Mutation::Put {
        key,
        value: catalog::encode_descriptor(&desc),
    });
    write(cx, req).await?;
    Ok(tag("CREATE VIEW"))
}

/// Drops tables, views or indexes, atomically with their rows and entries.
pub(crate) async fn drop(cx: &mut ExecContext<'_>, plan: &DropPlan) -> Result<StatementResult> {
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    let done = match plan {
        DropPlan::Relations { relations, views } => {
            for t in relations {
                let name_key = catalog::table_key(&t.name);
                req.read_spans.push(point(name_key.clone()));
                req.mutations.push(Mutation::Delete { key: name_key });
                for ix in &t.indexes {
                    req.mutations.push(Mutation::Delete {
                        key: catalog::index_key(&ix.name),
                    });
                }
                for seq in t.columns.iter().filter_map(|c| c.owned_sequence.as_ref()) {
                    req.mutations.push(Mutation::Delete {
                        key: catalog::sequence_key(seq),
                    });
                    req.mutations.push(Mutation::Delete {
                        key: catalog::sequence_value_key(seq),
                    });
                }
                if !t.is_view() {
                    req.mutations.push(Mutation::Delete {
                        key: crate::stats::stats_key(t.id),
                    });
                    let (start, end) = keys::table_span(t.id);
                    for (key, _) in keys_in(cx, &start, &end).await? {
                        req.mutations.push(Mutation::Delete { key });
                    }
                    req.read_spans.push(Span {
                        start,
                        end: Some(end),
                    });
                }
            }
            if *views { "DROP VIEW" } else { "DROP TABLE" }
        }
        DropPlan::Indexes { names, if_exists } => {
            let mut changed: Vec<TableDesc> = Vec::new();
            for name in names {
                let Some(owner) = catalog::index_owner(cx.kv, name, cx.read_ts).await? else {
                    if catalog::get_table(cx.kv, name, cx.read_ts).await?.is_some() {
                        return Err(
                            SqlError::new("42809", format!("\"{name}\" is not an index"))
                                .with_hint("Use DROP TABLE to remove a table.")
                                .into(),
                        );
                    }
                    if *if_exists {
                        continue;
                    }
                    return Err(
                        SqlError::new("42704", format!("index \"{name}\" does not exist")).into(),
                    );
                };
                let pos = changed.iter().position(|t| t.name == owner);
                let mut desc = match pos {
                    Some(p) => changed.remove(p),
                    None => {
                        let Some(t) = catalog::get_table(cx.kv, &owner, cx.read_ts).await? else {
                            return Err(Error::Corrupt(format!(
                                "index {name:?} belongs to missing table {owner:?}"
                            )));
                        };
                        (*t).clone()
                    }
                };
                let Some(i) = desc.index_named(name) else {
                    return Err(Error::Corrupt(format!(
                        "table {owner:?} does not list its index {name:?}"
                    )));
                };
                let ix = desc.indexes.remove(i);
                desc.version += 1;
                let start = keys::index_prefix(desc.id, ix.id);
                let end = keys::successor(&start);
                for (key, _) in keys_in(cx, &start, &end).await? {
                    req.mutations.push(Mutation::Delete { key });
                }
                let index_key = catalog::index_key(name);
                req.read_spans.push(point(index_key.clone()));
                req.mutations.push(Mutation::Delete { key: index_key });
                changed.push(desc);
            }
            for desc in changed {
                let key = catalog::table_key(&desc.name);
                req.read_spans.push(point(key.clone()));
                req.mutations.push(Mutation::Put {
                    key,
                    value: catalog::encode_descriptor(&desc),
                });
            }
            "DROP INDEX"
        }
        DropPlan::Sequences { names, if_exists } => {
            for name in names {
                if catalog::get_sequence(cx.kv, name, cx.read_ts)
                    .await?
                    .is_none()
                {
                    if *if_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        "42P01",
                        format!("sequence \"{name}\" does not exist"),
                    )
                    .into());
                }
                let key = catalog::sequence_key(name);
                req.read_spans.push(point(key.clone()));
                req.mutations.push(Mutation::Delete { key });
                req.mutations.push(Mutation::Delete {
                    key: catalog::sequence_value_key(name),
                });
            }
            "DROP SEQUENCE"
        }
    };
    if !req.mutations.is_empty() {
        write(cx, req).await?;
    }
    Ok(tag(done))
}

/// Creates a sequence.
pub(crate) async fn create_sequence(
    cx: &mut ExecContext<'_>,
    plan: &crate::plan::CreateSequencePlan,
) -> Result<StatementResult> {
    let name = &plan.seq.name;
    if relation_exists(cx, name).await? {
        if plan.if_not_exists {
            return Ok(tag("CREATE SEQUENCE"));
        }
        return Err(SqlError::duplicate_table(name).into());
    }
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    claim_name(&mut req, name);
    req.mutations.push(Mutation::Put {
        key: catalog::sequence_key(name),
        value: catalog::encode_sequence(&plan.seq),
    });
    req.mutations.push(Mutation::Delete {
        key: catalog::sequence_value_key(name),
    });
    write(cx, req).await?;
    Ok(tag("CREATE SEQUENCE"))
}
