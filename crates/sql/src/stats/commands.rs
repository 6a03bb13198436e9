//! The statements about statistics: `ANALYZE [table]` and `SHOW STATISTICS FOR TABLE t`.

use sqlparser::ast::{Ident, ObjectName};

use super::TableStats;
use crate::api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::Error;
use crate::plan;
use crate::session::Session;

impl Session {
    /// `ANALYZE [name]`: collects the statistics of table `name`, or of every table, now.
    /// Like `nextval`, it commits on its own, outside any transaction block, so it collects
    /// only what is committed (a table created in the open block is skipped).
    pub(crate) async fn analyze(&mut self, name: Option<&ObjectName>) -> Result<(), SqlError> {
        let base = self.engine.inner.kv.clone();
        let ts = base
            .read_ts()
            .await
            .map_err(|e| Error::Read(e).into_sql())?;
        let names = match name {
            Some(n) => vec![plan::table_name(n)?],
            None => catalog::list_tables(base.as_ref(), ts)
                .await
                .map_err(Error::into_sql)?,
        };
        for name in names {
            let table = catalog::get_table(base.as_ref(), &name, ts)
                .await
                .map_err(Error::into_sql)?;
            if let Some(t) = table {
                self.engine
                    .inner
                    .stats
                    .analyze(&t)
                    .await
                    .map_err(Error::into_sql)?;
            }
        }
        Ok(())
    }

    /// `SHOW STATISTICS FOR TABLE <name>` (`words`: what follows `STATISTICS`): the stored
    /// statistics as of the statement's timestamp.
    pub(crate) async fn show_statistics(
        &mut self,
        words: &[Ident],
    ) -> Result<StatementResult, SqlError> {
        let name = match words {
            [r#for, table, name]
                if r#for.value.eq_ignore_ascii_case("for")
                    && table.value.eq_ignore_ascii_case("table") =>
            {
                plan::ident(name)
            }
            _ => {
                return Err(SqlError::new(
                    "42601",
                    "expected SHOW STATISTICS FOR TABLE <name>",
                ));
            }
        };
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(|e| Error::Read(e).into_sql())?;
        let table = catalog::get_table(kv.as_ref(), &name, ts)
            .await
            .map_err(Error::into_sql)?
            .ok_or_else(|| SqlError::undefined_table(&name))?;
        let stats = super::read(self.engine.inner.kv.as_ref(), table.id, ts)
            .await
            .map_err(Error::into_sql)?;
        Ok(show(&table, stats.as_ref()))
    }
}

/// `SHOW STATISTICS FOR TABLE t`, as CockroachDB shows it: one row per column of the table's
/// statistics (none without any).
fn show(table: &TableDesc, stats: Option<&TableStats>) -> StatementResult {
    let col = |name: &str, ty| ColumnInfo {
        name: name.into(),
        ty,
    };
    let columns = vec![
        col("statistics_name", SqlType::Text),
        col("column_names", SqlType::Text),
        col("created", SqlType::TimestampTz),
        col("row_count", SqlType::Int8),
        col("distinct_count", SqlType::Int8),
        col("null_count", SqlType::Int8),
        col("avg_size", SqlType::Int8),
    ];
    let int = |n: u64| Datum::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let rows = match stats {
        None => vec![],
        Some(s) => {
            let name = if s.automatic {
                "__auto__"
            } else {
                "__analyze__"
            };
            let created = i64::try_from(s.collected_at.as_nanos() / 1000).unwrap_or(i64::MAX);
            table
                .columns
                .iter()
                .filter_map(|c| s.column(c.id).map(|cs| (c, cs)))
                .map(|(c, cs)| {
                    vec![
                        Datum::Text(name.into()),
                        Datum::Text(format!("{{{}}}", c.name)),
                        Datum::TimestampTz(created),
                        int(s.row_count),
                        int(cs.distinct),
                        int(cs.nulls),
                        int(u64::from(cs.avg_size)),
                    ]
                })
                .collect()
        }
    };
    StatementResult::Query { columns, rows }
}
