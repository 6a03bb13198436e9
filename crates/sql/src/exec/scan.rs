//! Reading rows of a table: point gets for point lookups, paged scans for ranges, with the
//! WHERE condition applied to every decoded row.

use meridian_clock::Timestamp;
use meridian_tablet::{KvClient, Span};

use crate::api::Datum;
use crate::error::{Error, Result};
use crate::expr::is_true;
use crate::keys;
use crate::plan::ScanPlan;
use crate::plan::keyrange::ByteSpan;

/// Rows fetched per scan request.
const PAGE_SIZE: usize = 1024;

/// A row read from storage, with its key.
#[derive(Debug, Clone)]
pub(crate) struct ScannedRow {
    pub key: Vec<u8>,
    pub row: Vec<Datum>,
}

/// What a scan returned and what it read (for write validation).
#[derive(Debug, Default)]
pub(crate) struct ScanOutput {
    pub rows: Vec<ScannedRow>,
    pub spans: Vec<Span>,
}

/// Reads the rows of `plan` matching its filter as of `ts`, stopping after `stop_after`
/// matches if given. The returned spans cover everything that was (or would have been) read.
pub(crate) async fn scan_rows(
    kv: &dyn KvClient,
    ts: Timestamp,
    plan: &ScanPlan,
    stop_after: Option<usize>,
) -> Result<ScanOutput> {
    let mut out = ScanOutput::default();
    let table = &plan.table;
    let keep = |row: &[Datum]| -> Result<bool> {
        match &plan.filter {
            Some(f) => Ok(is_true(&f.eval(row)?)),
            None => Ok(true),
        }
    };
    let done = |out: &ScanOutput| stop_after.is_some_and(|n| out.rows.len() >= n);
    for span in plan.range.byte_spans(table) {
        if done(&out) {
            break;
        }
        match span {
            ByteSpan::Point(key) => {
                if let Some(value) = kv.get(&key, ts).await.map_err(Error::Read)? {
                    let row = keys::decode_row(table, &key, &value)?;
                    if keep(&row)? {
                        out.rows.push(ScannedRow {
                            key: key.clone(),
                            row,
                        });
                    }
                }
                out.spans.push(Span {
                    start: key,
                    end: None,
                });
            }
            ByteSpan::Range(start, end) => {
                let mut from = start.clone();
                loop {
                    let page = kv
                        .scan(&from, &end, ts, Some(PAGE_SIZE))
                        .await
                        .map_err(Error::Read)?;
                    let full = page.len() == PAGE_SIZE;
                    let mut last = None;
                    for (key, value) in page {
                        let row = keys::decode_row(table, &key, &value)?;
                        if keep(&row)? {
                            out.rows.push(ScannedRow {
                                key: key.clone(),
                                row,
                            });
                        }
                        last = Some(key);
                        if done(&out) {
                            break;
                        }
                    }
                    match last {
                        Some(mut k) if full && !done(&out) => {
                            // The smallest key after `k`.
                            k.push(0);
                            from = k;
                        }
                        _ => break,
                    }
                }
                out.spans.push(Span {
                    start,
                    end: Some(end),
                });
            }
        }
    }
    Ok(out)
}
