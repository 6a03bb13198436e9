//! Access path selection: which index a table scan reads, given the conditions pushed down to
//! it and the columns the statement needs.
//!
//! Without statistics the choice is by shape: every access path (the primary index and each
//! secondary index) is scored by how many of its leading key columns the conditions fix by
//! equality, then by whether the next key column is bounded. The primary index wins ties, and
//! a secondary index is only used when it narrows the scan at all. An index is *covering* when
//! its entries hold every column the statement reads; otherwise each entry costs a point read
//! of the row.
//!
//! With statistics (`estimate.rs`) the same candidates compete on cost instead: the entries
//! each reads, times the point read of the row a non-covering index adds. So a condition
//! matching most of the table (`status = 'open'` with two statuses) reads the table rather
//! than an index, and of two indexes the more selective one wins; shape breaks ties. The
//! primary index fixed on its whole key is never second-guessed.

use std::sync::Arc;

use super::estimate;
use super::keyrange::{self, KeyRange};
use super::rel::{Access, Rel, ScanPlan};
use crate::api::Datum;
use crate::catalog::TableDesc;
use crate::expr::ScalarExpr;

/// Rows assumed for a table without any narrowing condition.
pub(crate) const TABLE_ROWS: f64 = 1000.0;

/// AND of `conjuncts` (`None` for none).
pub(crate) fn and_all(conjuncts: Vec<ScalarExpr>) -> Option<ScalarExpr> {
    conjuncts
        .into_iter()
        .reduce(|a, b| ScalarExpr::And(Box::new(a), Box::new(b)))
}

/// Splits a condition into its AND-ed conjuncts.
pub(crate) fn conjuncts(e: ScalarExpr, out: &mut Vec<ScalarExpr>) {
    match e {
        ScalarExpr::And(l, r) => {
            conjuncts(*l, out);
            conjuncts(*r, out);
        }
        // `WHERE true` filters nothing.
        ScalarExpr::Literal(Datum::Bool(true), _) => {}
        other => out.push(other),
    }
}

/// Plans a scan of `table` with `conds` (over its rows) applied; `used[c]` says whether the
/// statement reads column `c` (`None`: every column). Returns the plan and an estimate of the
/// rows it yields.
pub(crate) fn plan_scan(
    table: &Arc<TableDesc>,
    conds: Vec<ScalarExpr>,
    used: Option<&[bool]>,
) -> (Rel, f64) {
    let (with_subquery, plain): (Vec<ScalarExpr>, Vec<ScalarExpr>) =
        conds.into_iter().partition(ScalarExpr::has_subquery);
    let filter = and_all(plain);
    let is_used = |c: usize| used.is_none_or(|u| u.get(c).copied().unwrap_or(true));
    // Rank: leading equalities, then a bound on the next column, then being a single-row
    // lookup, then covering the statement's columns.
    let pk_score = keyrange::score(table, &table.pk, filter.as_ref());
    let pk_rank = (pk_score.0, pk_score.1, pk_score.0 == table.pk.len(), true);
    let mut candidates = vec![(Access::Primary, pk_rank)];
    if pk_score.0 < table.pk.len() {
        for (i, ix) in table.indexes.iter().enumerate() {
            let key: Vec<usize> = ix.columns.iter().map(|(c, _)| *c).collect();
            let s = keyrange::score(table, &key, filter.as_ref());
            let covering = (0..table.columns.len()).all(|c| !is_used(c) || ix.holds(table, c));
            let rank = (s.0, s.1, ix.unique && s.0 == key.len(), covering);
            if s.0 > 0 || s.1 {
                candidates.push((Access::Index(i), rank));
            }
        }
    }
    let mut plain_conds = Vec::new();
    if let Some(f) = &filter {
        conjuncts(f.clone(), &mut plain_conds);
    }
    let best = if table.stats.is_some() {
        let cost = |(access, rank): &(Access, Rank)| {
            estimate::access_cost(table, *access, (rank.0, rank.1), rank.3, &plain_conds)
        };
        candidates
            .iter()
            .min_by(|a, b| cost(a).total_cmp(&cost(b)).then(b.1.cmp(&a.1)))
            .copied()
    } else {
        // The first of the best ranks: the primary index on ties.
        candidates
            .iter()
            .copied()
            .reduce(|best, c| if c.1 > best.1 { c } else { best })
    }
    .unwrap_or((Access::Primary, pk_rank));
    let access = best.0;
    let key: Vec<usize> = keyrange::key_columns(table, access)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let range = keyrange::extract_for(table, &key, filter.as_ref());
    // Only a condition on the leading key column narrows the range: a parameter elsewhere
    // (`x < $1` on a table keyed by `id`) leaves it whole, so the range is fixed now (and the
    // scan may run vectorized).
    let (eq, bounded) = (best.1.0, best.1.1);
    let dynamic =
        (eq > 0 || bounded) && filter.as_ref().is_some_and(ScalarExpr::has_runtime_values);
    let lookups = dynamic && eq == key.len();
    let covering = match access {
        Access::Primary => false,
        Access::Index(_) => best.1.3,
    };
    let unique = match access {
        Access::Primary => true,
        Access::Index(i) => table.indexes[i].unique,
    };
    let mut est = match &range {
        KeyRange::Empty => 0.0,
        KeyRange::Points(p) if unique => p.len() as f64,
        KeyRange::Points(p) => p.len() as f64 * 10.0,
        _ if eq == key.len() && unique => 1.0,
        _ if eq > 0 => TABLE_ROWS / 10f64.powi(eq.min(3) as i32),
        _ if bounded => TABLE_ROWS / 4.0,
        _ => TABLE_ROWS,
    };
    if filter.is_some() && eq == 0 && !bounded {
        est /= 2.0;
    }
    let estimate = table.stats.as_ref().map(|_| match &range {
        KeyRange::Empty => 0.0,
        _ => estimate::filtered_rows(table, &plain_conds),
    });
    if let Some(e) = estimate {
        est = e * estimate::OTHER_SEL.powi(with_subquery.len() as i32);
    }
    let scan = Rel::Scan(Box::new(ScanPlan {
        table: table.clone(),
        access,
        range,
        dynamic,
        lookups,
        filter,
        covering,
        estimate,
    }));
    (scan.filtered_all(with_subquery), est)
}

/// How an access path narrows a scan: equalities on leading key columns, a bound on the next,
/// a single-row lookup, covering the statement's columns (better is greater).
type Rank = (usize, bool, bool, bool);

/// Shifts every column reference of `e` down by `by` (into a unit's own row).
pub(crate) fn shifted(mut e: ScalarExpr, by: usize) -> ScalarExpr {
    e.remap_columns(&|c| c - by);
    e
}
