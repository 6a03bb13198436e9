//! Join planning for the inner-joined units of a FROM clause.
//!
//! The units (tables, derived tables, outer-join trees) and the conditions over them (WHERE
//! conjuncts and inner-join ON conditions) are planned together:
//!
//! 1. The conditions that equalities between columns imply are added (`equiv.rs`: with
//!    `a.x = b.y AND a.x = 1`, also `b.y = 1`). A condition that reads one unit is pushed into
//!    it (into a table's scan, where it narrows the key range and picks the index); one that
//!    reads none goes to the first unit.
//! 2. Greedy ordering: start with the unit estimated to yield the fewest rows; then repeatedly
//!    join the smallest unit connected to the joined ones by some condition (or, when none is,
//!    the smallest unit at all: a cross join). When some unit's table has statistics, the
//!    estimates come from them (`estimate.rs`) and the next unit is the connected one whose
//!    join is estimated to yield the fewest rows (then the smallest).
//! 3. Each join takes the conditions that became evaluable: equalities between the joined
//!    side and the new unit become hash keys, the rest a residual condition. When the new unit
//!    is a table whose primary key or an index is fully determined by the keys and the left
//!    side is small, the join looks rows up instead of reading the table. With statistics, a
//!    hash join hashes whichever side is estimated smaller.
//! 4. A final projection restores the FROM clause's column order.

use std::sync::Arc;

use super::access::{TABLE_ROWS, and_all, plan_scan, shifted};
use super::from::{Source, Unit};
use super::rel::{Access, JoinKind, JoinPlan, Lookup, Rel};
use super::{equiv, estimate};
use crate::api::SqlError;
use crate::catalog::TableDesc;
use crate::expr::{CmpOp, ScalarExpr};

/// Left sides estimated at most this many rows use a lookup join when one is possible.
const LOOKUP_MAX_LEFT: f64 = 200.0;

/// Joins `units` (contiguous, in FROM order, starting at column `units[0].offset`) under
/// `conds` (over that layout, with the first unit's offset as column 0... see `base`). `used`
/// says which columns of the layout the statement reads (`None`: all). The result's rows are
/// the units' rows concatenated in FROM order.
pub(crate) fn build(
    units: Vec<Unit>,
    mut conds: Vec<ScalarExpr>,
    used: Option<&[bool]>,
) -> Result<Rel, SqlError> {
    let implied = equiv::implied(&conds);
    conds.extend(implied);
    let Some(base) = units.first().map(|u| u.offset) else {
        return Err(SqlError::internal("join of no units"));
    };
    let n = units.len();
    let unit_of = |c: usize| {
        units
            .iter()
            .position(|u| c >= u.offset && c < u.offset + u.width)
    };
    let mut local: Vec<Vec<ScalarExpr>> = vec![Vec::new(); n];
    let mut multi: Vec<(Vec<usize>, ScalarExpr)> = Vec::new();
    for c in conds {
        let mut cols = Vec::new();
        c.columns(&mut cols);
        let mut set: Vec<usize> = cols.iter().filter_map(|&col| unit_of(col)).collect();
        set.sort_unstable();
        set.dedup();
        match set.as_slice() {
            [] => local[0].push(c),
            [u] => local[*u].push(c),
            _ => multi.push((set, c)),
        }
    }
    // Which columns each unit must deliver: the ones the statement reads and the ones later
    // join conditions read. With several units the others are dropped right after the unit, so
    // joins do not copy them around (they read as NULL in the final row).
    let mut join_cols = Vec::new();
    for (_, c) in &multi {
        c.columns(&mut join_cols);
    }
    let keep: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            (0..u.width)
                .filter(|&i| {
                    n == 1
                        || used.is_none_or(|m| m.get(u.offset + i - base).copied().unwrap_or(true))
                        || join_cols.contains(&(u.offset + i))
                })
                .collect()
        })
        .collect();
    // new_pos[u][i]: where unit u's column i is in its (pruned) rows.
    let new_pos: Vec<Vec<Option<usize>>> = units
        .iter()
        .zip(&keep)
        .map(|(u, k)| {
            let mut v = vec![None; u.width];
            for (j, &i) in k.iter().enumerate() {
                v[i] = Some(j);
            }
            v
        })
        .collect();
    let widths: Vec<usize> = keep.iter().map(Vec::len).collect();
    // Plan every unit with its own conditions.
    let mut planned: Vec<Option<(Rel, f64)>> = Vec::with_capacity(n);
    let mut with_stats = false;
    for ((u, conds), k) in units.iter().zip(local).zip(&keep) {
        let conds: Vec<ScalarExpr> = conds.into_iter().map(|c| shifted(c, u.offset)).collect();
        let unit_used: Option<Vec<bool>> = used.map(|m| {
            (u.offset..u.offset + u.width)
                .map(|c| m.get(c - base).copied().unwrap_or(true) || join_cols.contains(&c))
                .collect()
        });
        let (mut rel, est) = match &u.source {
            Source::Table(t) => plan_scan(t, conds, unit_used.as_deref()),
            Source::Rel(r) => {
                let rel = super::pushdown::push_filters(r.clone(), conds);
                let est = rel.estimate().unwrap_or(TABLE_ROWS);
                (rel, est)
            }
        };
        with_stats |= rel.estimate().is_some();
        if k.len() < u.width {
            rel = Rel::Project {
                input: Box::new(rel),
                exprs: k
                    .iter()
                    .map(|&i| ScalarExpr::Column(i, u.types[i]))
                    .collect(),
            };
        }
        planned.push(Some((rel, est)));
    }
    if n == 1 {
        let (rel, _) = planned[0]
            .take()
            .ok_or_else(|| SqlError::internal("unit planned twice"))?;
        return Ok(rel);
    }
    let est = |p: &[Option<(Rel, f64)>], u: usize| p[u].as_ref().map_or(f64::INFINITY, |x| x.1);
    let unit_rows: Vec<f64> = (0..n).map(|u| est(&planned, u)).collect();
    // The columns of each table unit its scan's filter fixes to one value.
    let fixed: Vec<Vec<usize>> = planned
        .iter()
        .map(|p| {
            let scan = p.as_ref().and_then(|(rel, _)| rel.as_scan());
            let filter = scan.and_then(|(s, _)| s.filter.as_ref());
            filter_constants(filter)
                .into_iter()
                .map(|(c, _)| c)
                .collect()
        })
        .collect();
    // Distinct values of a key expression reading one column of a table unit with
    // statistics (no more than the unit's rows; one when its scan fixes the column, as an
    // implied condition often does to both sides of an equality).
    let distinct_of = |e: &ScalarExpr| -> Option<f64> {
        let c = estimate::column_of(e)?;
        let u = unit_of(c)?;
        match &units[u].source {
            Source::Table(_) if fixed[u].contains(&(c - units[u].offset)) => Some(1.0),
            Source::Table(t) => {
                estimate::distinct(t, c - units[u].offset).map(|d| d.min(unit_rows[u].max(1.0)))
            }
            Source::Rel(_) => None,
        }
    };
    let start = (0..n)
        .min_by(|&a, &b| est(&planned, a).total_cmp(&est(&planned, b)))
        .unwrap_or(0);
    let (mut cur, mut cur_est) = planned[start]
        .take()
        .ok_or_else(|| SqlError::internal("unit planned twice"))?;
    let mut order = vec![start];
    // Position of a unit-local column in that unit's pruned rows.
    let local = |u: usize, c: usize| new_pos[u][c - units[u].offset].unwrap_or(0);
    while order.len() < n {
        let joined = |u: usize, order: &[usize]| order.contains(&u);
        let connected: Vec<usize> = (0..n)
            .filter(|&v| !joined(v, &order))
            .filter(|&v| {
                multi.iter().any(|(set, _)| {
                    set.contains(&v) && set.iter().all(|x| *x == v || joined(*x, &order))
                })
            })
            .collect();
        let pool: Vec<usize> = if connected.is_empty() {
            (0..n).filter(|&v| !joined(v, &order)).collect()
        } else {
            connected
        };
        let next = if with_stats {
            let rows = |v: usize| {
                let (pairs, residual) = join_conditions(v, &order, &multi, &unit_of, &distinct_of);
                estimate::join_rows(cur_est, unit_rows[v], &pairs, residual)
            };
            pool.into_iter().min_by(|&a, &b| {
                rows(a)
                    .total_cmp(&rows(b))
                    .then(unit_rows[a].total_cmp(&unit_rows[b]))
            })
        } else {
            pool.into_iter()
                .min_by(|&a, &b| est(&planned, a).total_cmp(&est(&planned, b)))
        }
        .ok_or_else(|| SqlError::internal("no unit left to join"))?;
        let join_est = with_stats.then(|| {
            let (pairs, residual) = join_conditions(next, &order, &multi, &unit_of, &distinct_of);
            estimate::join_rows(cur_est, unit_rows[next], &pairs, residual)
        });
        // Conditions that become evaluable with `next`.
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut multi)
            .into_iter()
            .partition(|(set, _)| set.iter().all(|x| *x == next || joined(*x, &order)));
        multi = later;
        // Positions: the joined units in `order`, then `next`.
        let mut layout_start = vec![usize::MAX; n];
        let mut at = 0;
        for &u in &order {
            layout_start[u] = at;
            at += widths[u];
        }
        layout_start[next] = at;
        let position = |c: usize| -> usize {
            let u = unit_of(c).unwrap_or(0);
            layout_start[u] + local(u, c)
        };
        let in_next = |e: &ScalarExpr| {
            let mut cols = Vec::new();
            e.columns(&mut cols);
            !cols.is_empty() && cols.iter().all(|&c| unit_of(c) == Some(next))
        };
        let in_left = |e: &ScalarExpr| {
            let mut cols = Vec::new();
            e.columns(&mut cols);
            !cols.is_empty()
                && cols
                    .iter()
                    .all(|&c| unit_of(c).is_some_and(|u| joined(u, &order)))
        };
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut residual = Vec::new();
        for (_, c) in now {
            match c {
                ScalarExpr::Compare {
                    op: CmpOp::Eq,
                    left,
                    right,
                } if !left.has_subquery() && !right.has_subquery() => {
                    let (mut l, mut r) = if in_left(&left) && in_next(&right) {
                        (*left, *right)
                    } else if in_next(&left) && in_left(&right) {
                        (*right, *left)
                    } else {
                        residual.push(ScalarExpr::Compare {
                            op: CmpOp::Eq,
                            left,
                            right,
                        });
                        continue;
                    };
                    l.remap_columns(&position);
                    r.remap_columns(&|c| local(next, c));
                    left_keys.push(l);
                    right_keys.push(r);
                }
                other => residual.push(other),
            }
        }
        let mut residual = and_all(residual);
        if let Some(r) = &mut residual {
            r.remap_columns(&position);
        }
        let (right, right_est) = planned[next]
            .take()
            .ok_or_else(|| SqlError::internal("unit planned twice"))?;
        let lookup = if cur_est <= LOOKUP_MAX_LEFT {
            lookup_for(&right, &left_keys, &right_keys)
        } else {
            None
        };
        // With statistics, a hash join hashes the side estimated smaller.
        let build_left =
            with_stats && lookup.is_none() && !left_keys.is_empty() && cur_est < right_est;
        cur_est = match join_est {
            Some(e) => e,
            None if left_keys.is_empty() => cur_est * right_est,
            None => cur_est.max(right_est),
        };
        cur = Rel::Join(Box::new(JoinPlan {
            kind: JoinKind::Inner,
            left: cur,
            right,
            left_keys,
            right_keys,
            residual,
            lookup,
            build_left,
            estimate: join_est,
        }));
        order.push(next);
    }
    if let Some(rest) = and_all(multi.into_iter().map(|(_, c)| c).collect()) {
        return Err(SqlError::internal(format!(
            "join condition left over: {rest:?}"
        )));
    }
    Ok(restore_order(cur, &order, &units, &widths, &new_pos))
}

/// The conditions that joining unit `next` to the units in `order` makes evaluable: the
/// distinct counts of both sides of each equality between them (see
/// [`estimate::join_rows`]), and how many others there are.
fn join_conditions(
    next: usize,
    order: &[usize],
    multi: &[(Vec<usize>, ScalarExpr)],
    unit_of: &dyn Fn(usize) -> Option<usize>,
    distinct_of: &dyn Fn(&ScalarExpr) -> Option<f64>,
) -> (Vec<estimate::KeyDistinct>, usize) {
    // Which side an expression reads: Some(true) the new unit, Some(false) the joined ones.
    let side = |e: &ScalarExpr| -> Option<bool> {
        let mut cols = Vec::new();
        e.columns(&mut cols);
        let units: Vec<Option<usize>> = cols.iter().map(|&c| unit_of(c)).collect();
        if units.is_empty() || e.has_subquery() {
            None
        } else if units.iter().all(|u| *u == Some(next)) {
            Some(true)
        } else if units.iter().all(|u| u.is_some_and(|u| order.contains(&u))) {
            Some(false)
        } else {
            None
        }
    };
    let mut pairs = Vec::new();
    let mut residual = 0;
    for (set, c) in multi {
        if !set.contains(&next) || !set.iter().all(|x| *x == next || order.contains(x)) {
            continue;
        }
        match c {
            ScalarExpr::Compare {
                op: CmpOp::Eq,
                left,
                right,
            } if side(left).is_some() && side(right).is_some() && side(left) != side(right) => {
                pairs.push((distinct_of(left), distinct_of(right)));
            }
            _ => residual += 1,
        }
    }
    (pairs, residual)
}

/// A projection from the join order (with pruned units) back to the FROM row: every column in
/// FROM order, NULL for the columns no one reads.
fn restore_order(
    rel: Rel,
    order: &[usize],
    units: &[Unit],
    widths: &[usize],
    new_pos: &[Vec<Option<usize>>],
) -> Rel {
    let mut sorted = order.to_vec();
    sorted.sort_unstable();
    let pruned = units.iter().zip(widths).any(|(u, w)| u.width != *w);
    if sorted == order && !pruned {
        return rel;
    }
    // Where each unit's columns are in the joined row.
    let mut start = vec![0; units.len()];
    let mut at = 0;
    for &u in order {
        start[u] = at;
        at += widths[u];
    }
    let mut exprs = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        for (pos, ty) in new_pos[u].iter().zip(&unit.types) {
            exprs.push(match pos {
                Some(p) => ScalarExpr::Column(start[u] + p, *ty),
                None => ScalarExpr::null(*ty),
            });
        }
    }
    Rel::Project {
        input: Box::new(rel),
        exprs,
    }
}

/// A lookup join into `right` when it is a table scan and `right_keys` are plain columns that,
/// with the columns the scan's filter sets to a constant or parameter (`s_w_id = 1` in
/// `... JOIN stock ON s_i_id = ol_i_id WHERE s_w_id = 1`), fix the whole primary key or all key
/// columns of an index.
fn lookup_for(right: &Rel, left_keys: &[ScalarExpr], right_keys: &[ScalarExpr]) -> Option<Lookup> {
    let (scan, projection) = right.as_scan()?;
    let constants = filter_constants(scan.filter.as_ref());
    // Table column of each right key (through the unit's column pruning).
    let cols: Vec<Option<usize>> = right_keys
        .iter()
        .map(|k| match k {
            ScalarExpr::Column(c, _) => match projection {
                None => Some(*c),
                Some(exprs) => match exprs.get(*c) {
                    Some(ScalarExpr::Column(t, _)) => Some(*t),
                    _ => None,
                },
            },
            _ => None,
        })
        .collect();
    let find = |key: &[usize]| -> Option<Vec<ScalarExpr>> {
        key.iter()
            .map(|kc| match cols.iter().position(|c| *c == Some(*kc)) {
                Some(i) => same_type(&scan.table, *kc, &left_keys[i]).then(|| left_keys[i].clone()),
                None => constants
                    .iter()
                    .find(|(c, e)| *c == *kc && same_type(&scan.table, *kc, e))
                    .map(|(_, e)| e.clone()),
            })
            .collect()
    };
    if let Some(key_exprs) = find(&scan.table.pk) {
        return Some(Lookup {
            access: Access::Primary,
            key_exprs,
        });
    }
    scan.table.indexes.iter().enumerate().find_map(|(i, ix)| {
        let key: Vec<usize> = ix.columns.iter().map(|(c, _)| *c).collect();
        find(&key).map(|key_exprs| Lookup {
            access: Access::Index(i),
            key_exprs,
        })
    })
}

/// The table columns a scan filter sets equal to a constant or a parameter, with that value
/// (valid for every left row, so usable as a lookup key).
fn filter_constants(filter: Option<&ScalarExpr>) -> Vec<(usize, ScalarExpr)> {
    let mut conjuncts = Vec::new();
    if let Some(f) = filter {
        super::access::conjuncts(f.clone(), &mut conjuncts);
    }
    conjuncts
        .into_iter()
        .filter_map(|c| match c {
            ScalarExpr::Compare {
                op: CmpOp::Eq,
                left,
                right,
            } => match (*left, *right) {
                (
                    ScalarExpr::Column(c, _),
                    v @ (ScalarExpr::Literal(..) | ScalarExpr::Param(..)),
                )
                | (
                    v @ (ScalarExpr::Literal(..) | ScalarExpr::Param(..)),
                    ScalarExpr::Column(c, _),
                ) => Some((c, v)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Whether values of `e` can be encoded as keys of column `c` (same type class).
fn same_type(table: &Arc<TableDesc>, c: usize, e: &ScalarExpr) -> bool {
    let ct = table.columns[c].ty;
    let et = e.ty();
    ct == et || (crate::types::is_integer(ct) && crate::types::is_integer(et))
}
