//! Reading tables: point gets and paged range scans of the primary index or a secondary
//! index, with the scan's condition applied to every row.
//!
//! A secondary index entry decodes into a partial row (its key, primary key and stored
//! columns). A covering scan uses it as is; otherwise the row is fetched from the primary index
//! by its key. Every key and range read is recorded in [`Executor::spans`]; ranges read in full
//! are cached for the rest of the statement (correlated subqueries read the same ranges over
//! and over).

use std::borrow::Cow;
use std::sync::Arc;

use meridian_tablet::{KvPair, Span};

use super::{Executor, Read, Row, check_rows};
use crate::api::Datum;
use crate::catalog::TableDesc;
use crate::error::{Error, Result};
use crate::expr::{Env, ScalarExpr, is_true};
use crate::keys;
use crate::plan::keyrange::{ByteSpan, KeyRange, extract_for, key_columns};
use crate::plan::{Access, ScanPlan};

/// Rows fetched per scan request.
const PAGE_SIZE: usize = 1024;

impl Executor<'_> {
    /// The rows of `plan` matching its condition, stopping after `stop_after` of them.
    pub(crate) async fn scan(
        &mut self,
        plan: &ScanPlan,
        env: Env<'_>,
        stop_after: Option<usize>,
    ) -> Result<Vec<Row>> {
        let (range, filter) = run_range(plan, &env)?;
        let spans = range.byte_spans_for(&plan.table, plan.access);
        self.read_spans(plan, &spans, filter.as_deref(), env, stop_after)
            .await
    }

    /// Reads `spans` of `plan`'s index, keeping rows that satisfy `filter`.
    pub(crate) async fn read_spans(
        &mut self,
        plan: &ScanPlan,
        spans: &[ByteSpan],
        filter: Option<&ScalarExpr>,
        env: Env<'_>,
        stop_after: Option<usize>,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        let done = |out: &Vec<Row>| stop_after.is_some_and(|n| out.len() >= n);
        for span in spans {
            if done(&out) {
                break;
            }
            match span {
                ByteSpan::Point(key) => {
                    let for_update = self.locks(&plan.table, plan.access);
                    let how = match &self.compared {
                        Some((table, columns))
                            if !for_update
                                && *table == plan.table.id
                                && plan.access == Access::Primary =>
                        {
                            Read::Compared(super::same_columns(
                                plan.table.clone(),
                                key.clone(),
                                columns.clone(),
                            ))
                        }
                        _ if for_update => Read::ForUpdate,
                        _ => Read::Plain,
                    };
                    let value = self.read_key_as(key, how).await?;
                    if let Some(value) = value
                        && let Some(row) = self.entry_row(plan, key, &value).await?
                        && keep(filter, &row, &env)?
                    {
                        out.push(row);
                    }
                }
                ByteSpan::Range(start, end) if stop_after.is_some() => {
                    let want = stop_after.unwrap_or(0);
                    self.read_range_until(plan, start, end, filter, env, &mut out, want)
                        .await?;
                }
                ByteSpan::Range(start, end) => {
                    let pairs = self.read_range(start, end).await?;
                    self.spans.push(Span {
                        start: start.clone(),
                        end: Some(end.clone()),
                    });
                    for (key, value) in pairs.iter() {
                        if let Some(row) = self.entry_row(plan, key, value).await?
                            && keep(filter, &row, &env)?
                        {
                            out.push(row);
                            if done(&out) {
                                break;
                            }
                        }
                    }
                    check_rows(out.len())?;
                }
            }
        }
        Ok(out)
    }

    /// Reads `[start, end)` page by page only until `out` holds `want` rows (a scan under a
    /// LIMIT), recording as read only the part up to the last key it looked at: rows beyond
    /// it cannot change the result, so a transaction does not conflict with writes there (an
    /// insert at the end of the range while it took the first row, as TPC-C's Delivery does).
    #[allow(clippy::too_many_arguments)]
    async fn read_range_until(
        &mut self,
        plan: &ScanPlan,
        start: &[u8],
        end: &[u8],
        filter: Option<&ScalarExpr>,
        env: Env<'_>,
        out: &mut Vec<Row>,
        want: usize,
    ) -> Result<()> {
        let mut from = start.to_vec();
        let (mut rows, mut bytes) = (0, 0);
        let mut growth = 1;
        let read_end = loop {
            // Pages of the rows still missing; larger ones each time a filter dropped rows.
            let missing = want.saturating_sub(out.len()).max(1);
            let page_size = missing.saturating_mul(growth).min(PAGE_SIZE);
            growth = growth.saturating_mul(4);
            let page = self
                .kv
                .scan(&from, end, self.ts, Some(page_size))
                .await
                .map_err(Error::Read)?;
            let full = page.len() == page_size;
            rows += page.len();
            bytes += page.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            let mut last = None;
            for (key, value) in &page {
                last = Some(key);
                if let Some(row) = self.entry_row(plan, key, value).await?
                    && keep(filter, &row, &env)?
                {
                    out.push(row);
                    if out.len() >= want {
                        break;
                    }
                }
            }
            check_rows(out.len())?;
            match last {
                Some(k) if out.len() >= want => break keys::next_key(k),
                Some(k) if full => from = keys::next_key(k),
                _ => break end.to_vec(),
            }
        };
        let span = Span {
            start: start.to_vec(),
            end: Some(read_end),
        };
        if let Some(p) = &self.profile {
            p.read(self.node, span.clone(), rows, bytes);
        }
        self.spans.push(span);
        Ok(())
    }

    /// Every pair of `[start, end)`, kept for the statement's later reads of the same range
    /// (for a scan that will not stop early).
    pub(super) async fn read_range(
        &mut self,
        start: &[u8],
        end: &[u8],
    ) -> Result<Arc<Vec<KvPair>>> {
        let cache_key = (start.to_vec(), end.to_vec());
        if let Some(hit) = self.ranges.get(&cache_key) {
            return Ok(hit.clone());
        }
        let mut all = Vec::new();
        let mut from = Some(start.to_vec());
        let mut bytes = 0;
        while let Some(page) = self.next_page(&mut from, end, PAGE_SIZE).await? {
            if self.profile.is_some() {
                bytes += page.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            }
            all.extend(page);
            check_rows(all.len())?;
        }
        if let Some(p) = &self.profile {
            let span = Span {
                start: start.to_vec(),
                end: Some(end.to_vec()),
            };
            p.read(self.node, span, all.len(), bytes);
        }
        let all = Arc::new(all);
        self.ranges.insert(cache_key, all.clone());
        Ok(all)
    }

    /// The next page, at most `size` pairs, of a range read resuming at `*from` and ending
    /// before `end`; `None` once the range is done. Advances `*from` past the page.
    pub(super) async fn next_page(
        &mut self,
        from: &mut Option<Vec<u8>>,
        end: &[u8],
        size: usize,
    ) -> Result<Option<Vec<KvPair>>> {
        let Some(start) = from.take() else {
            return Ok(None);
        };
        let page = self
            .kv
            .scan(&start, end, self.ts, Some(size))
            .await
            .map_err(Error::Read)?;
        if page.len() == size
            && let Some((last, _)) = page.last()
        {
            *from = Some(keys::next_key(last));
        }
        Ok(Some(page))
    }

    /// The table row of an entry of `plan`'s index (`None`: a secondary entry whose row is
    /// gone, which a consistent snapshot never shows).
    pub(super) async fn entry_row(
        &mut self,
        plan: &ScanPlan,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Row>> {
        let table = &plan.table;
        match plan.access {
            Access::Primary => Ok(Some(keys::decode_row(table, key, value)?)),
            Access::Index(i) => {
                let partial = keys::decode_index_entry(table, &table.indexes[i], key, value)?;
                if plan.covering {
                    return Ok(Some(partial));
                }
                self.fetch_row(table, &partial).await
            }
        }
    }

    /// Whether an entry of `table`'s index `access` is read for update: a row the statement
    /// is about to change, read by primary key (locked inside a transaction block).
    pub(super) fn locks(&self, table: &TableDesc, access: Access) -> bool {
        access == Access::Primary && (self.lock_all || self.lock_table == Some(table.id))
    }

    /// The full row with the primary key of `partial`, read from the primary index.
    pub(crate) async fn fetch_row(
        &mut self,
        table: &TableDesc,
        partial: &[Datum],
    ) -> Result<Option<Row>> {
        let key = keys::row_key(table, partial);
        let for_update = self.locks(table, Access::Primary);
        match self.read_key(&key, for_update).await? {
            Some(v) => Ok(Some(keys::decode_row(table, &key, &v)?)),
            None => Ok(None),
        }
    }

    /// The rows of `plan`'s table whose `access` key columns equal `values` (a lookup join's
    /// probe), with the scan's own condition applied.
    pub(crate) async fn lookup(
        &mut self,
        plan: &ScanPlan,
        access: Access,
        values: Vec<Datum>,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let probe = ScanPlan {
            access,
            covering: false,
            ..plan.clone()
        };
        let spans = KeyRange::Points(vec![values]).byte_spans_for(&plan.table, access);
        let filter = match &plan.filter {
            Some(f) if f.has_runtime_values() => Some(f.substitute_runtime(&env)?),
            Some(f) => Some(f.clone()),
            None => None,
        };
        self.read_spans(&probe, &spans, filter.as_ref(), env, None)
            .await
    }
}

/// The range `plan` reads in this execution and its condition: when the range depends on
/// parameters or outer values, both with those values put in, the range extracted anew.
pub(crate) fn run_range<'p>(
    plan: &'p ScanPlan,
    env: &Env<'_>,
) -> Result<(Cow<'p, KeyRange>, Option<Cow<'p, ScalarExpr>>)> {
    if !plan.dynamic {
        return Ok((
            Cow::Borrowed(&plan.range),
            plan.filter.as_ref().map(Cow::Borrowed),
        ));
    }
    let f = match &plan.filter {
        Some(f) => Some(f.substitute_runtime(env)?),
        None => None,
    };
    let key: Vec<usize> = key_columns(&plan.table, plan.access)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let range = extract_for(&plan.table, &key, f.as_ref());
    Ok((Cow::Owned(range), f.map(Cow::Owned)))
}

fn keep(filter: Option<&ScalarExpr>, row: &[Datum], env: &Env<'_>) -> Result<bool> {
    match filter {
        Some(f) => Ok(is_true(&f.eval(row, env)?)),
        None => Ok(true),
    }
}
