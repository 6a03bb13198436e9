//! Pushing conditions into an already planned unit of a FROM clause (an outer join, a
//! parenthesized join, a derived table or view): each condition goes as far down as it stays
//! correct, so that it reaches a table's scan where it can, and the scan is planned again
//! with it (narrowing its key range or choosing an index as the scan's own WHERE would).
//!
//! * Through a projection, a condition reading only column references is rewritten over the
//!   projection's input.
//! * Into an inner join, a condition reading one side goes to that side; the join's equality
//!   keys carry it to the other side too (`equiv.rs`).
//! * Into a LEFT JOIN, a condition reading only the preserved (left) side goes to it: every
//!   row the join yields carries an unchanged left row. Whatever such conditions, the left
//!   side's own ([`restrictions`]) and the join condition imply for the null-supplying side
//!   alone goes to that side as well: a right row failing it matches no left row that
//!   survives. Nothing else goes below, since a condition above an outer join also sees its
//!   NULL-extended rows (a RIGHT JOIN is a LEFT JOIN with its sides swapped under a
//!   projection, so it is covered too).
//! * A FULL JOIN, an aggregation, a window, DISTINCT, a sort or a LIMIT keeps the conditions
//!   above it, as does every operator for a condition with a subquery or a volatile call.

use super::access::{conjuncts, plan_scan};
use super::equiv;
use super::rel::{JoinKind, JoinPlan, Rel};
use crate::expr::{CmpOp, ScalarExpr};

/// `rel` filtered by `conds` (over its columns), each condition pushed as far down as it may
/// go.
pub(crate) fn push_filters(rel: Rel, conds: Vec<ScalarExpr>) -> Rel {
    let (above, conds): (Vec<_>, Vec<_>) = conds.into_iter().partition(ScalarExpr::has_subquery);
    let rel = if conds.is_empty() {
        rel
    } else {
        match rel {
            Rel::Join(j) if j.kind != JoinKind::Full => into_join(*j, conds),
            Rel::Project { input, exprs } => through_projection(*input, exprs, conds),
            Rel::Filter { input, predicate } if !predicate.has_subquery() => {
                let mut all = Vec::new();
                conjuncts(predicate, &mut all);
                all.extend(conds);
                push_filters(*input, all)
            }
            Rel::Scan(s) => {
                let mut all = Vec::new();
                if let Some(f) = s.filter.clone() {
                    conjuncts(f, &mut all);
                }
                all.extend(conds);
                plan_scan(&s.table, all, None).0
            }
            other => other.filtered_all(conds),
        }
    };
    rel.filtered_all(above)
}

/// The rows an outer join yields, when statistics estimate both inputs: every preserved row
/// once (more when keys repeat, which this ignores).
pub(crate) fn outer_join_rows(kind: JoinKind, left: &Rel, right: &Rel) -> Option<f64> {
    let (l, r) = (left.estimate()?, right.estimate()?);
    Some(match kind {
        JoinKind::Full => l + r,
        JoinKind::Left | JoinKind::Inner => l,
    })
}

/// Which input of a join a condition reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
    /// Both, or neither (a condition reading no column).
    Other,
}

/// Which input a condition over a join's rows reads, the left one being `left_width` wide.
pub(crate) fn side(c: &ScalarExpr, left_width: usize) -> Side {
    let mut cols = Vec::new();
    c.columns(&mut cols);
    if cols.is_empty() {
        Side::Other
    } else if cols.iter().all(|&x| x < left_width) {
        Side::Left
    } else if cols.iter().all(|&x| x >= left_width) {
        Side::Right
    } else {
        Side::Other
    }
}

/// `conds` (without subqueries) pushed into an inner or left join.
fn into_join(mut j: JoinPlan, conds: Vec<ScalarExpr>) -> Rel {
    let lw = j.left.width();
    let inner = j.kind == JoinKind::Inner;
    // A lookup join reads its right side by the left rows' keys, not through a filter of
    // ours.
    let right_open = j.lookup.is_none();
    // What the rows the join yields satisfy (for a left join: its matched pairs whose left
    // row passes the conditions going into the left side).
    let mut facts = restrictions(&j.left);
    facts.extend(matched(&j));
    if inner {
        facts.extend(shifted_up(restrictions(&j.right), lw));
    }
    let (mut left, mut right, mut above) = (Vec::new(), Vec::new(), Vec::new());
    for c in conds {
        let s = side(&c, lw);
        if inner || s == Side::Left {
            facts.push(c.clone());
        }
        match s {
            Side::Left => left.push(c),
            Side::Right if inner && right_open => right.push(c),
            _ => above.push(c),
        }
    }
    // An implied condition that cannot go below is not needed above: what implies it is
    // there. The null-supplying side of a left join takes only what implies it there.
    for c in equiv::implied(&facts) {
        match side(&c, lw) {
            Side::Left if inner => left.push(c),
            Side::Right if right_open => right.push(c),
            _ => {}
        }
    }
    let before = (j.left.estimate(), j.right.estimate());
    if !left.is_empty() {
        j.left = push_filters(j.left, left);
    }
    if !right.is_empty() {
        let right = right
            .into_iter()
            .map(|mut c| {
                c.remap_columns(&|x| x - lw);
                c
            })
            .collect();
        j.right = push_filters(j.right, right);
    }
    j.estimate = match j.kind {
        JoinKind::Inner => rescaled(j.estimate, before, (j.left.estimate(), j.right.estimate())),
        kind => outer_join_rows(kind, &j.left, &j.right),
    };
    Rel::Join(Box::new(j)).filtered_all(above)
}

/// What a join's matched pairs satisfy, over a left row followed by a right row: the key
/// equalities and the residual condition.
fn matched(j: &JoinPlan) -> Vec<ScalarExpr> {
    let lw = j.left.width();
    let mut out: Vec<ScalarExpr> = j
        .left_keys
        .iter()
        .zip(shifted_up(j.right_keys.clone(), lw))
        .map(|(l, r)| ScalarExpr::Compare {
            op: CmpOp::Eq,
            left: Box::new(l.clone()),
            right: Box::new(r),
        })
        .collect();
    if let Some(r) = &j.residual {
        conjuncts(r.clone(), &mut out);
    }
    out
}

/// Conditions every row of `rel` satisfies, over its columns, as far as the plan shows them:
/// the conditions of its scans and filters, carried through projections, the inputs of an
/// inner join (with the join's own condition) and the preserved input of a left join.
pub(crate) fn restrictions(rel: &Rel) -> Vec<ScalarExpr> {
    let mut out = Vec::new();
    match rel {
        Rel::Scan(s) => {
            if let Some(f) = &s.filter {
                conjuncts(f.clone(), &mut out);
            }
        }
        Rel::Filter { input, predicate } => {
            conjuncts(predicate.clone(), &mut out);
            out.extend(restrictions(input));
        }
        Rel::Project { input, exprs } => {
            let position = |c: usize| {
                exprs
                    .iter()
                    .position(|e| matches!(e, ScalarExpr::Column(i, _) if *i == c))
            };
            for mut c in restrictions(input) {
                let mut cols = Vec::new();
                c.columns(&mut cols);
                if cols.iter().all(|&x| position(x).is_some()) {
                    c.remap_columns(&|x| position(x).unwrap_or(x));
                    out.push(c);
                }
            }
        }
        Rel::Join(j) if j.kind != JoinKind::Full => {
            out.extend(restrictions(&j.left));
            if j.kind == JoinKind::Inner {
                out.extend(shifted_up(restrictions(&j.right), j.left.width()));
                out.extend(matched(j));
            }
        }
        _ => {}
    }
    out
}

/// `conds` with every column reference moved up by `by`.
pub(crate) fn shifted_up(conds: Vec<ScalarExpr>, by: usize) -> Vec<ScalarExpr> {
    conds
        .into_iter()
        .map(|mut c| {
            c.remap_columns(&|x| x + by);
            c
        })
        .collect()
}

/// Splits `conds` (over a join's rows, its right input starting at `right_start`) into those
/// for input `to` alone, with what they and `facts` imply for it, and the rest.
pub(crate) fn split_for(
    conds: Vec<ScalarExpr>,
    mut facts: Vec<ScalarExpr>,
    to: Side,
    right_start: usize,
) -> (Vec<ScalarExpr>, Vec<ScalarExpr>) {
    facts.extend(conds.iter().cloned());
    let (mut below, rest): (Vec<_>, Vec<_>) =
        conds.into_iter().partition(|c| side(c, right_start) == to);
    below.extend(
        equiv::implied(&facts)
            .into_iter()
            .filter(|c| side(c, right_start) == to),
    );
    (below, rest)
}

/// An inner join's estimate after its inputs shrank from `before` to `after`: by the larger
/// shrinking of the two, as conditions pushed to both sides are mostly the same condition
/// carried over the join's keys.
fn rescaled(
    estimate: Option<f64>,
    before: (Option<f64>, Option<f64>),
    after: (Option<f64>, Option<f64>),
) -> Option<f64> {
    let ratio = |b: Option<f64>, a: Option<f64>| match (b, a) {
        (Some(b), Some(a)) if b > 0.0 => a / b,
        _ => 1.0,
    };
    estimate.map(|e| e * ratio(before.0, after.0).min(ratio(before.1, after.1)))
}

/// `conds` pushed through a projection: those that read only columns the projection passes
/// through unchanged go below it, over its input's columns.
fn through_projection(input: Rel, exprs: Vec<ScalarExpr>, conds: Vec<ScalarExpr>) -> Rel {
    let passed = |c: usize| match exprs.get(c) {
        Some(ScalarExpr::Column(i, _)) => Some(*i),
        _ => None,
    };
    let (below, above): (Vec<_>, Vec<_>) = conds.into_iter().partition(|c| {
        let mut cols = Vec::new();
        c.columns(&mut cols);
        !cols.is_empty() && cols.iter().all(|&x| passed(x).is_some())
    });
    let below = below
        .into_iter()
        .map(|mut c| {
            c.remap_columns(&|x| passed(x).unwrap_or(x));
            c
        })
        .collect();
    Rel::Project {
        input: Box::new(push_filters(input, below)),
        exprs,
    }
    .filtered_all(above)
}
