//! Collecting a table's statistics: read every row of its primary index at one timestamp,
//! page by page (memory stays bounded by the page and the per-column counters), and store the
//! result with one conditional write.

use meridian_tablet::{KvClient, Mutation, Span, WriteRequest};

use super::sketch::{DistinctCounter, hash_bytes};
use super::{ColumnStats, TableStats, encode, read, stats_key};
use crate::api::Datum;
use crate::catalog;
use crate::error::{Error, Result};
use crate::keys;

/// Rows read per scan request.
const PAGE_SIZE: usize = 1024;

/// What is counted for one column.
#[derive(Default)]
struct ColumnCounter {
    distinct: DistinctCounter,
    nulls: u64,
    bytes: u64,
}

/// Reads table `name` at a fresh timestamp and stores its statistics, provided it is still
/// the table with id `id` (`None` otherwise). The write carries the descriptor's and the old
/// statistics' keys as read, so a concurrent schema change or collection makes it conflict
/// (retryable) rather than store statistics of another shape or lose a generation.
pub(super) async fn collect(
    kv: &dyn KvClient,
    name: &str,
    id: u64,
    automatic: bool,
) -> Result<Option<TableStats>> {
    let ts = kv.read_ts().await.map_err(Error::Read)?;
    let Some(table) = catalog::get_table(kv, name, ts).await? else {
        return Ok(None);
    };
    if table.id != id || table.is_view() {
        return Ok(None);
    }
    let previous = read(kv, id, ts).await?;
    let mut counters: Vec<ColumnCounter> = table
        .columns
        .iter()
        .map(|_| ColumnCounter::default())
        .collect();
    let mut rows = 0u64;
    let mut from = keys::primary_prefix(id);
    let end = keys::successor(&from);
    let mut buf = Vec::new();
    loop {
        let page = kv
            .scan(&from, &end, ts, Some(PAGE_SIZE))
            .await
            .map_err(Error::Read)?;
        for (key, value) in &page {
            let row = keys::decode_row(&table, key, value)?;
            rows += 1;
            for (counter, d) in counters.iter_mut().zip(&row) {
                if *d == Datum::Null {
                    counter.nulls += 1;
                    continue;
                }
                buf.clear();
                keys::encode_datum(&mut buf, d);
                counter.distinct.add(hash_bytes(&buf));
                counter.bytes += buf.len() as u64;
            }
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE_SIZE => {
                // The smallest key after `last`.
                from = last.clone();
                from.push(0);
            }
            _ => break,
        }
    }
    let columns = table
        .columns
        .iter()
        .zip(counters)
        .map(|(c, counter)| {
            let values = rows - counter.nulls;
            ColumnStats {
                column_id: c.id,
                // An estimate never exceeds the values counted.
                distinct: counter.distinct.estimate().min(values),
                nulls: counter.nulls,
                avg_size: u32::try_from(counter.bytes.checked_div(values).unwrap_or(0))
                    .unwrap_or(u32::MAX),
            }
        })
        .collect();
    let stats = TableStats {
        row_count: rows,
        columns,
        collected_at: ts,
        automatic,
        generation: previous.map_or(1, |p| p.generation + 1),
    };
    let point = |key: Vec<u8>| Span {
        start: key,
        end: None,
    };
    let req = WriteRequest {
        read_ts: Some(ts),
        read_spans: vec![point(catalog::table_key(name)), point(stats_key(id))],
        mutations: vec![Mutation::Put {
            key: stats_key(id),
            value: encode(id, &stats),
        }],
        ..Default::default()
    };
    kv.write(req).await.map_err(|source| Error::Write {
        source,
        table: None,
    })?;
    Ok(Some(stats))
}
