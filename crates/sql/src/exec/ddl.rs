//! CREATE TABLE and DROP TABLE: catalog writes, validated like any other write.

use meridian_tablet::{Condition, Mutation, Span, WriteRequest};

use super::ExecContext;
use crate::api::{SqlError, StatementResult};
use crate::catalog;
use crate::error::{Error, Result};
use crate::keys;
use crate::plan::{CreateTablePlan, DropTablePlan};

/// Rows deleted per scan page when dropping a table.
const PAGE_SIZE: usize = 4096;

fn tag(t: &str) -> StatementResult {
    StatementResult::Command { tag: t.to_string() }
}

/// Creates a table: takes the next id from the counter and stores the descriptor under its
/// name. The counter is in the read spans, so concurrent CREATE TABLEs conflict instead of
/// sharing an id; the name key has a NotExists condition, so the same name cannot be taken
/// twice.
pub(crate) async fn create_table(
    cx: &mut ExecContext<'_>,
    plan: &CreateTablePlan,
) -> Result<StatementResult> {
    let name_key = catalog::table_key(&plan.name);
    if cx
        .kv
        .get(&name_key, cx.read_ts)
        .await
        .map_err(Error::Read)?
        .is_some()
    {
        if plan.if_not_exists {
            return Ok(tag("CREATE TABLE"));
        }
        return Err(SqlError::duplicate_table(&plan.name).into());
    }
    let id = catalog::next_table_id(cx.kv, cx.read_ts).await?;
    let desc = plan.descriptor(id)?;
    let req = WriteRequest {
        read_ts: Some(cx.read_ts),
        read_spans: vec![
            Span {
                start: catalog::TABLE_ID_COUNTER_KEY.to_vec(),
                end: None,
            },
            Span {
                start: name_key.clone(),
                end: None,
            },
        ],
        conditions: vec![Condition::NotExists(name_key.clone())],
        mutations: vec![
            Mutation::Put {
                key: catalog::TABLE_ID_COUNTER_KEY.to_vec(),
                value: catalog::encode_counter(id + 1),
            },
            Mutation::Put {
                key: name_key,
                value: catalog::encode_descriptor(&desc),
            },
        ],
    };
    cx.kv.write(req).await.map_err(|source| Error::Write {
        source,
        table: None,
    })?;
    Ok(tag("CREATE TABLE"))
}

/// Drops tables: deletes their descriptors and every row, atomically.
pub(crate) async fn drop_table(
    cx: &mut ExecContext<'_>,
    plan: &DropTablePlan,
) -> Result<StatementResult> {
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    for t in &plan.tables {
        let name_key = catalog::table_key(&t.name);
        req.read_spans.push(Span {
            start: name_key.clone(),
            end: None,
        });
        req.mutations.push(Mutation::Delete { key: name_key });
        let (start, end) = keys::table_span(t.id);
        let mut from = start.clone();
        loop {
            let page = cx
                .kv
                .scan(&from, &end, cx.read_ts, Some(PAGE_SIZE))
                .await
                .map_err(Error::Read)?;
            let full = page.len() == PAGE_SIZE;
            let last = page.last().map(|(k, _)| k.clone());
            req.mutations
                .extend(page.into_iter().map(|(key, _)| Mutation::Delete { key }));
            match last {
                Some(mut k) if full => {
                    k.push(0);
                    from = k;
                }
                _ => break,
            }
        }
        req.read_spans.push(Span {
            start,
            end: Some(end),
        });
    }
    if !req.mutations.is_empty() {
        cx.kv.write(req).await.map_err(|source| Error::Write {
            source,
            table: None,
        })?;
    }
    Ok(tag("DROP TABLE"))
}
