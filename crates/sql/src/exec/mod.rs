//! Execution of plans over a [`KvClient`] at one read timestamp.
//!
//! Execution is row-at-a-time over vectors of [`crate::Datum`] rows for now; Arrow record
//! batches come with the distributed SQL engine.

mod aggregate;
mod ddl;
mod dml;
mod query;
mod rowid;
mod scan;

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;

pub(crate) use rowid::RowIdGen;

use crate::api::{ColumnInfo, Datum, SqlType, StatementResult};
use crate::error::Result;
use crate::plan::Plan;

/// Everything a statement's execution needs.
pub(crate) struct ExecContext<'a> {
    /// The keyspace.
    pub kv: &'a dyn KvClient,
    /// The snapshot all reads of the statement use; writes are validated against it.
    pub read_ts: Timestamp,
    /// The session's rowid generator.
    pub rowids: &'a mut RowIdGen,
}

/// Executes `plan`.
pub(crate) async fn execute(cx: &mut ExecContext<'_>, plan: &Plan) -> Result<StatementResult> {
    match plan {
        Plan::Select(s) => {
            let (rows, _) = query::run_select(cx.kv, cx.read_ts, s).await?;
            Ok(StatementResult::Query {
                columns: s.columns.clone(),
                rows,
            })
        }
        Plan::Insert(p) => dml::insert(cx, p).await,
        Plan::Update(p) => dml::update(cx, p).await,
        Plan::Delete(p) => dml::delete(cx, p).await,
        Plan::CreateTable(p) => ddl::create_table(cx, p).await,
        Plan::DropTable(p) => ddl::drop_table(cx, p).await,
        Plan::Explain(lines) => Ok(StatementResult::Query {
            columns: vec![ColumnInfo {
                name: "QUERY PLAN".to_string(),
                ty: SqlType::Text,
            }],
            rows: lines.iter().map(|l| vec![Datum::Text(l.clone())]).collect(),
        }),
    }
}
