//! Row estimates from table statistics (`crate::stats`): the fraction of a table's rows a
//! condition keeps, the entries an access path reads, and the rows a join produces.
//!
//! The rules are the textbook ones PostgreSQL and System R use, with columns taken as
//! independent: `col = value` keeps `(1 - null fraction) / distinct(col)`, `IN` of k values k
//! times that, a bound `1/3`, `IS NULL` the null fraction; an equi-join of inputs of `l` and
//! `r` rows produces `l * r / max(distinct(left key), distinct(right key))`. These are used
//! only for tables with statistics: without them the planner estimates by shape
//! (`access.rs`), exactly as before statistics existed.

use super::keyrange::key_columns;
use super::rel::Access;
use crate::api::Datum;
use crate::catalog::TableDesc;
use crate::expr::{CmpOp, ScalarExpr};

/// The fraction of rows a bound on a column (`x < 5`) keeps: PostgreSQL's default.
pub(crate) const RANGE_SEL: f64 = 1.0 / 3.0;
/// The fraction of rows a condition statistics say nothing about keeps.
pub(crate) const OTHER_SEL: f64 = 0.5;
/// The fraction of rows an equality keeps on a column without statistics (one added after
/// the last collection).
const UNKNOWN_EQ_SEL: f64 = 0.1;
/// What reading one row through a secondary index that does not cover the statement costs,
/// relative to reading one row of a range (an index entry, then a point read of the row).
const ROW_FETCH_COST: f64 = 4.0;

/// The column of the row `e` reads, through casts.
pub(crate) fn column_of(e: &ScalarExpr) -> Option<usize> {
    match e {
        ScalarExpr::Column(c, _) => Some(*c),
        ScalarExpr::Cast { expr, .. } => column_of(expr),
        _ => None,
    }
}

/// The number of distinct non-NULL values of column `c` of `table` (at least 1), if its
/// statistics know it.
pub(crate) fn distinct(table: &TableDesc, c: usize) -> Option<f64> {
    let stats = table.stats.as_ref()?;
    let col = stats.column(table.columns.get(c)?.id)?;
    Some((col.distinct as f64).max(1.0))
}

/// The fraction of column `c`'s values that are NULL (0 when unknown).
fn null_frac(table: &TableDesc, c: usize) -> f64 {
    let Some(stats) = table.stats.as_ref() else {
        return 0.0;
    };
    match table.columns.get(c).and_then(|col| stats.column(col.id)) {
        Some(col) if stats.row_count > 0 => col.nulls as f64 / stats.row_count as f64,
        _ => 0.0,
    }
}

/// Whether column `c` holds no value but NULL.
fn all_null(table: &TableDesc, c: usize) -> bool {
    let Some(stats) = table.stats.as_ref() else {
        return false;
    };
    table
        .columns
        .get(c)
        .and_then(|col| stats.column(col.id))
        .is_some_and(|col| col.distinct == 0)
}

/// The fraction of rows where column `c` equals one given value.
fn eq_sel(table: &TableDesc, c: usize) -> f64 {
    if all_null(table, c) {
        return 0.0;
    }
    match distinct(table, c) {
        Some(d) => (1.0 - null_frac(table, c)) / d,
        None => UNKNOWN_EQ_SEL,
    }
}

/// The fraction of `table`'s rows (with statistics) for which `cond`, over its row, is true.
pub(crate) fn selectivity(table: &TableDesc, cond: &ScalarExpr) -> f64 {
    let s = match cond {
        ScalarExpr::And(a, b) => selectivity(table, a) * selectivity(table, b),
        ScalarExpr::Or(a, b) => {
            let (x, y) = (selectivity(table, a), selectivity(table, b));
            x + y - x * y
        }
        ScalarExpr::Not(x) => 1.0 - selectivity(table, x),
        ScalarExpr::Literal(Datum::Bool(true), _) => 1.0,
        ScalarExpr::Literal(..) => 0.0,
        ScalarExpr::Compare { op, left, right } => compare(table, *op, left, right),
        ScalarExpr::InList {
            expr,
            list,
            negated,
        } => match column_of(expr) {
            Some(c) if list.iter().all(ScalarExpr::is_row_independent) => {
                let s = (list.len() as f64 * eq_sel(table, c)).min(1.0 - null_frac(table, c));
                if *negated {
                    1.0 - s - null_frac(table, c)
                } else {
                    s
                }
            }
            _ => OTHER_SEL,
        },
        ScalarExpr::IsNull { expr, negated } => match column_of(expr) {
            Some(c) if *negated => 1.0 - null_frac(table, c),
            Some(c) => null_frac(table, c),
            None => OTHER_SEL,
        },
        _ => OTHER_SEL,
    };
    s.clamp(0.0, 1.0)
}

fn compare(table: &TableDesc, op: CmpOp, left: &ScalarExpr, right: &ScalarExpr) -> f64 {
    let value = |e: &ScalarExpr| e.is_row_independent();
    let (c, other_col) = match (column_of(left), column_of(right)) {
        (Some(a), Some(b)) => (a, Some(b)),
        (Some(a), None) if value(right) => (a, None),
        (None, Some(b)) if value(left) => (b, None),
        _ => {
            return if op == CmpOp::Eq {
                UNKNOWN_EQ_SEL
            } else {
                OTHER_SEL
            };
        }
    };
    let not_null = 1.0 - null_frac(table, c);
    match (op, other_col) {
        (CmpOp::Eq, None) => eq_sel(table, c),
        (CmpOp::NotEq, None) => not_null - eq_sel(table, c),
        (_, None) => not_null * RANGE_SEL,
        (CmpOp::Eq, Some(b)) if b == c => not_null,
        (CmpOp::Eq, Some(b)) => {
            let d = distinct(table, c)
                .unwrap_or(1.0 / UNKNOWN_EQ_SEL)
                .max(distinct(table, b).unwrap_or(1.0 / UNKNOWN_EQ_SEL));
            not_null * (1.0 - null_frac(table, b)) / d
        }
        _ => RANGE_SEL,
    }
}

/// Estimated rows of `table` (with statistics) satisfying all of `conds`.
pub(crate) fn filtered_rows(table: &TableDesc, conds: &[ScalarExpr]) -> f64 {
    let rows = table.stats.as_ref().map_or(0.0, |s| s.row_count as f64);
    // A column bounded from both sides (`a <= x AND x < b`) is a range, not two independent
    // thirds: PostgreSQL's default for it, without a histogram, is 0.5%.
    let (mut lower, mut upper) = (Vec::new(), Vec::new());
    for c in conds {
        match bound_side(c) {
            Some((col, true)) => lower.push(col),
            Some((col, false)) => upper.push(col),
            None => {}
        }
    }
    let ranged: Vec<usize> = lower.into_iter().filter(|c| upper.contains(c)).collect();
    let others = conds
        .iter()
        .filter(|c| !bound_side(c).is_some_and(|(col, _)| ranged.contains(&col)))
        .map(|c| selectivity(table, c))
        .product::<f64>();
    let mut ranges = ranged;
    ranges.sort_unstable();
    ranges.dedup();
    let ranges = ranges
        .iter()
        .map(|&c| (1.0 - null_frac(table, c)) * RANGE_PAIR_SEL)
        .product::<f64>();
    rows * others * ranges
}

/// The selectivity of a column bounded from both sides, without a histogram.
const RANGE_PAIR_SEL: f64 = 0.005;

/// The column a conjunct bounds by a value known before the row is read, and whether from
/// below (`col > v`, `col >= v`, `v < col`) rather than from above.
fn bound_side(c: &ScalarExpr) -> Option<(usize, bool)> {
    let ScalarExpr::Compare { op, left, right } = c else {
        return None;
    };
    let below = match op {
        CmpOp::Gt | CmpOp::GtEq => true,
        CmpOp::Lt | CmpOp::LtEq => false,
        _ => return None,
    };
    match (column_of(left), column_of(right)) {
        (Some(col), None) if right.is_row_independent() => Some((col, below)),
        (None, Some(col)) if left.is_row_independent() => Some((col, !below)),
        _ => None,
    }
}

/// The cost of reading `table` through `access` for conditions `conds`, of which the
/// access path's range uses equalities on its first `eq` key columns and, when `bounded`, a
/// bound on the next: the entries read, each costing a point read of its row more when the
/// index does not cover the statement.
pub(crate) fn access_cost(
    table: &TableDesc,
    access: Access,
    (eq, bounded): (usize, bool),
    covering: bool,
    conds: &[ScalarExpr],
) -> f64 {
    let key: Vec<usize> = key_columns(table, access)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let fixed = &key[..eq.min(key.len())];
    let next = key.get(eq).filter(|_| bounded);
    let used: Vec<ScalarExpr> = conds
        .iter()
        .filter(|c| match range_column(c) {
            Some((col, true)) => fixed.contains(&col),
            Some((col, false)) => next == Some(&col),
            None => false,
        })
        .cloned()
        .collect();
    let entries = filtered_rows(table, &used);
    match access {
        Access::Index(_) if !covering => entries * ROW_FETCH_COST,
        _ => entries,
    }
}

/// The column a conjunct can narrow an index range on, and whether by equality (`col = v`,
/// `col IN (...)`) rather than by a bound.
fn range_column(c: &ScalarExpr) -> Option<(usize, bool)> {
    match c {
        ScalarExpr::Compare { op, left, right } if *op != CmpOp::NotEq => {
            match (column_of(left), column_of(right)) {
                (Some(col), None) if right.is_row_independent() => Some((col, *op == CmpOp::Eq)),
                (None, Some(col)) if left.is_row_independent() => Some((col, *op == CmpOp::Eq)),
                _ => None,
            }
        }
        ScalarExpr::InList {
            expr,
            list,
            negated: false,
        } if list.iter().all(ScalarExpr::is_row_independent) => {
            column_of(expr).map(|col| (col, true))
        }
        _ => None,
    }
}

/// The distinct values of the two sides of an equality between a join's inputs (`None`:
/// unknown).
pub(crate) type KeyDistinct = (Option<f64>, Option<f64>);

/// The rows a join of inputs of `left` and `right` rows produces when its equality keys
/// pair columns with `pairs` distinct values each and `residual` other conditions apply. A pair whose sides are both unknown keeps the shape-based rule (a key
/// joins each row of the smaller side to about one of the larger).
pub(crate) fn join_rows(left: f64, right: f64, pairs: &[KeyDistinct], residual: usize) -> f64 {
    let mut rows = left * right;
    for pair in pairs {
        let d = match *pair {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => left.min(right),
        };
        rows /= d.max(1.0);
    }
    rows *= RANGE_SEL.powi(i32::try_from(residual).unwrap_or(i32::MAX));
    if left == 0.0 || right == 0.0 {
        0.0
    } else {
        rows.max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equi_joins_divide_by_the_larger_distinct_count() {
        // 1000 orders of 100 customers (each customer once in a table of 100).
        assert_eq!(
            join_rows(1000.0, 100.0, &[(Some(100.0), Some(100.0))], 0),
            1000.0
        );
        // Only 10 of the customers pass a filter: a tenth of the orders match.
        assert_eq!(
            join_rows(1000.0, 10.0, &[(Some(100.0), Some(10.0))], 0),
            100.0
        );
        assert_eq!(join_rows(50.0, 20.0, &[], 0), 1000.0);
        assert_eq!(join_rows(0.0, 20.0, &[(None, None)], 0), 0.0);
        assert_eq!(join_rows(30.0, 20.0, &[(None, None)], 0), 30.0);
        assert_eq!(join_rows(3.0, 3.0, &[], 1), 3.0);
    }
}
