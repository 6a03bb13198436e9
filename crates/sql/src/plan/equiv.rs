//! Conditions implied by equalities between columns.
//!
//! Conjuncts `a = b` between plain columns put columns into equivalence classes; a conjunct
//! that restricts one member by a value known before any row is read (`a = 1`, `a < $1`,
//! `a BETWEEN 1 AND 5`, `a IN (1, 2)`) then holds for every other member too, because every
//! row satisfying the conjunction has equal, non-NULL values in all members (`=` is never true
//! for NULL). The planner adds these implied conditions next to the ones written, so each
//! member's scan narrows its key range and chooses its index as if the condition had been
//! written for it: in `orders o JOIN order_line l ON l.ol_w_id = o.o_w_id WHERE o.o_w_id = 1`,
//! `l.ol_w_id = 1` restricts `order_line`'s scan as well.
//!
//! Only columns whose values compare alike are joined in a class: of one type, or integers of
//! any width (which compare as integers and share one key encoding). Floating-point and
//! interval columns are left out: equal values of theirs can differ in representation (`-0`
//! and `0`, `'1 month'` and `'30 days'`), which a key range would tell apart.
//!
//! Every caller must hand in conditions that all hold on the rows it filters: the conjuncts of
//! WHERE and inner-join conditions, or an outer join's ON condition for its matched pairs.

use crate::api::SqlType;
use crate::expr::{CmpOp, ScalarExpr};
use crate::types::is_integer;

/// The conditions `conds` imply through equalities between their columns that are not among
/// them already; each reads one column. Columns are positions in the row `conds` read.
pub(crate) fn implied(conds: &[ScalarExpr]) -> Vec<ScalarExpr> {
    let mut classes = Classes::default();
    for c in conds {
        if let Some((a, b)) = column_equality(c) {
            classes.union(a, b);
        }
    }
    let mut out: Vec<ScalarExpr> = Vec::new();
    for c in conds {
        let Some((col, ty)) = restricted_column(c) else {
            continue;
        };
        for (other, other_ty) in classes.members(col) {
            if other == col || !alike(ty, other_ty) {
                continue;
            }
            let derived = with_column(c, other, other_ty);
            if !conds.contains(&derived) && !out.contains(&derived) {
                out.push(derived);
            }
        }
    }
    out
}

/// Whether values of the two types compare alike (see the module documentation).
fn alike(a: SqlType, b: SqlType) -> bool {
    let exact = !matches!(a, SqlType::Float8 | SqlType::Interval);
    exact && (a == b || (is_integer(a) && is_integer(b)))
}

/// `a = b` between two different plain columns whose values compare alike.
fn column_equality(c: &ScalarExpr) -> Option<((usize, SqlType), (usize, SqlType))> {
    let ScalarExpr::Compare {
        op: CmpOp::Eq,
        left,
        right,
    } = c
    else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (ScalarExpr::Column(a, at), ScalarExpr::Column(b, bt)) if a != b && alike(*at, *bt) => {
            Some(((*a, *at), (*b, *bt)))
        }
        _ => None,
    }
}

/// The column a conjunct restricts by values known before rows are read: `col op value`
/// (either way round, any comparison but `<>`) or `col IN (values)`.
fn restricted_column(c: &ScalarExpr) -> Option<(usize, SqlType)> {
    let known = |e: &ScalarExpr| e.is_row_independent();
    match c {
        ScalarExpr::Compare { op, left, right } if *op != CmpOp::NotEq => {
            match (left.as_ref(), right.as_ref()) {
                (ScalarExpr::Column(a, ty), v) | (v, ScalarExpr::Column(a, ty)) if known(v) => {
                    Some((*a, *ty))
                }
                _ => None,
            }
        }
        ScalarExpr::InList {
            expr,
            list,
            negated: false,
        } if list.iter().all(known) => match expr.as_ref() {
            ScalarExpr::Column(a, ty) => Some((*a, *ty)),
            _ => None,
        },
        _ => None,
    }
}

/// A restriction (as [`restricted_column`] accepts) with its column replaced by `col`.
fn with_column(c: &ScalarExpr, col: usize, ty: SqlType) -> ScalarExpr {
    let mut out = c.clone();
    match &mut out {
        ScalarExpr::Compare { left, right, .. } => {
            for side in [left, right] {
                if let ScalarExpr::Column(..) = side.as_ref() {
                    **side = ScalarExpr::Column(col, ty);
                }
            }
        }
        ScalarExpr::InList { expr, .. } => **expr = ScalarExpr::Column(col, ty),
        _ => {}
    }
    out
}

/// Equivalence classes of columns (union-find over the columns seen).
#[derive(Default)]
struct Classes {
    /// Each column seen, its type, and the index of its parent in this list.
    nodes: Vec<(usize, SqlType, usize)>,
}

impl Classes {
    fn node(&mut self, (col, ty): (usize, SqlType)) -> usize {
        match self.nodes.iter().position(|n| n.0 == col) {
            Some(i) => i,
            None => {
                self.nodes.push((col, ty, self.nodes.len()));
                self.nodes.len() - 1
            }
        }
    }

    fn root(&self, mut i: usize) -> usize {
        while self.nodes[i].2 != i {
            i = self.nodes[i].2;
        }
        i
    }

    fn union(&mut self, a: (usize, SqlType), b: (usize, SqlType)) {
        let (a, b) = (self.node(a), self.node(b));
        let (ra, rb) = (self.root(a), self.root(b));
        self.nodes[rb].2 = ra;
    }

    /// The columns in `col`'s class (none when it is in no equality).
    fn members(&self, col: usize) -> Vec<(usize, SqlType)> {
        let Some(i) = self.nodes.iter().position(|n| n.0 == col) else {
            return Vec::new();
        };
        let root = self.root(i);
        (0..self.nodes.len())
            .filter(|&j| self.root(j) == root)
            .map(|j| (self.nodes[j].0, self.nodes[j].1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Datum;

    fn col(i: usize, ty: SqlType) -> ScalarExpr {
        ScalarExpr::Column(i, ty)
    }

    fn int(v: i64) -> ScalarExpr {
        ScalarExpr::Literal(Datum::Int(v), SqlType::Int4)
    }

    fn cmp(op: CmpOp, l: ScalarExpr, r: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Compare {
            op,
            left: Box::new(l),
            right: Box::new(r),
        }
    }

    #[test]
    fn a_constant_reaches_every_member_of_a_class() {
        let i4 = SqlType::Int4;
        let conds = vec![
            cmp(CmpOp::Eq, col(0, i4), col(3, i4)),
            cmp(CmpOp::Eq, col(6, SqlType::Int8), col(3, i4)),
            cmp(CmpOp::Eq, int(1), col(0, i4)),
        ];
        assert_eq!(
            implied(&conds),
            vec![
                cmp(CmpOp::Eq, int(1), col(3, i4)),
                cmp(CmpOp::Eq, int(1), col(6, SqlType::Int8)),
            ]
        );
    }

    #[test]
    fn ranges_and_in_lists_carry_over_but_not_inequality() {
        let t = SqlType::Text;
        let text = |s: &str| ScalarExpr::Literal(Datum::Text(s.into()), t);
        let conds = vec![
            cmp(CmpOp::Eq, col(0, t), col(1, t)),
            cmp(CmpOp::Lt, text("m"), col(1, t)),
            cmp(CmpOp::NotEq, col(0, t), text("x")),
            ScalarExpr::InList {
                expr: Box::new(col(0, t)),
                list: vec![text("a"), text("z")],
                negated: false,
            },
        ];
        assert_eq!(
            implied(&conds),
            vec![
                cmp(CmpOp::Lt, text("m"), col(0, t)),
                ScalarExpr::InList {
                    expr: Box::new(col(1, t)),
                    list: vec![text("a"), text("z")],
                    negated: false,
                },
            ]
        );
    }

    #[test]
    fn nothing_crosses_types_that_compare_differently_or_conditions_already_there() {
        let conds = vec![
            cmp(CmpOp::Eq, col(0, SqlType::Float8), col(1, SqlType::Float8)),
            cmp(
                CmpOp::Eq,
                col(0, SqlType::Float8),
                ScalarExpr::Literal(Datum::Float(0.0), SqlType::Float8),
            ),
            cmp(CmpOp::Eq, col(2, SqlType::Int4), col(3, SqlType::Int4)),
            cmp(CmpOp::Eq, col(2, SqlType::Int4), int(5)),
            cmp(CmpOp::Eq, col(3, SqlType::Int4), int(5)),
            // A value read from another column is not known before the row is read.
            cmp(CmpOp::Gt, col(2, SqlType::Int4), col(4, SqlType::Int4)),
        ];
        assert!(implied(&conds).is_empty());
    }
}
