//! Running a SELECT plan: scan -> filter -> aggregate -> having -> project -> distinct ->
//! sort -> offset/limit, one vector of rows at a time.

use std::collections::HashSet;

use meridian_clock::Timestamp;
use meridian_tablet::{KvClient, Span};

use super::aggregate::{aggregate, hash_key};
use super::scan::scan_rows;
use crate::api::Datum;
use crate::error::Result;
use crate::expr::{cmp_for_sort, is_true};
use crate::plan::SelectPlan;

/// The result rows of `plan` as of `ts`, and the spans it read.
pub(crate) async fn run_select(
    kv: &dyn KvClient,
    ts: Timestamp,
    plan: &SelectPlan,
) -> Result<(Vec<Vec<Datum>>, Vec<Span>)> {
    let (input, spans) = match &plan.scan {
        Some(scan) => {
            let out = scan_rows(kv, ts, scan, plan.scan_stop_after()).await?;
            (
                out.rows.into_iter().map(|r| r.row).collect::<Vec<_>>(),
                out.spans,
            )
        }
        None => {
            let pass = match &plan.filter {
                Some(f) => is_true(&f.eval(&[])?),
                None => true,
            };
            (if pass { vec![vec![]] } else { vec![] }, vec![])
        }
    };
    Ok((finish(plan, input)?, spans))
}

/// Everything after the scan.
fn finish(plan: &SelectPlan, input: Vec<Vec<Datum>>) -> Result<Vec<Vec<Datum>>> {
    let mut rows = match &plan.aggregate {
        Some(agg) => aggregate(agg, &input)?,
        None => input,
    };
    if let Some(h) = &plan.having {
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if is_true(&h.eval(&r)?) {
                kept.push(r);
            }
        }
        rows = kept;
    }
    let mut projected = Vec::with_capacity(rows.len());
    for r in &rows {
        projected.push(
            plan.projection
                .iter()
                .map(|e| e.eval(r))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let visible = plan.columns.len();
    if plan.distinct {
        let mut seen = HashSet::new();
        projected.retain(|r| seen.insert(hash_key(&r[..visible])));
    }
    if !plan.order_by.is_empty() {
        projected.sort_by(|a, b| {
            plan.order_by
                .iter()
                .map(|k| cmp_for_sort(&a[k.column], &b[k.column], k.desc, k.nulls_first))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    let offset = usize::try_from(plan.offset).unwrap_or(usize::MAX);
    let limit = plan
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    Ok(projected
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|mut r| {
            r.truncate(visible);
            r
        })
        .collect())
}
