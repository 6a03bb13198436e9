//! Subqueries inside expressions: scalar subqueries, `EXISTS`, and `x op ANY/ALL (...)` (which
//! `IN` and `NOT IN` become).
//!
//! A subquery's plan runs in the executor, which is asynchronous; expression evaluation is not.
//! So the executor computes every subquery value an expression needs first (once per statement
//! for an uncorrelated subquery, once per row for a correlated one, handing it the values it
//! captures from the enclosing row) and evaluation reads them from [`super::Env::subqueries`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{CmpOp, Env, ScalarExpr, cmp_datums};
use crate::api::{Datum, SqlError, SqlType};
use crate::plan::Rel;

/// A subquery used as a value.
#[derive(Debug, Clone)]
pub(crate) struct SubqueryExpr {
    /// Identifies the subquery within its statement (and its cached value).
    pub id: usize,
    /// The subquery's plan. A scalar or quantified subquery yields one column.
    pub plan: Arc<Rel>,
    /// Expressions over the enclosing row whose values the subquery reads as
    /// [`ScalarExpr::Outer`]; empty for an uncorrelated subquery.
    pub captures: Vec<ScalarExpr>,
    /// How the rows become a value.
    pub kind: SubqueryKind,
    /// The value's type.
    pub ty: SqlType,
}

impl PartialEq for SubqueryExpr {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.captures == other.captures && self.kind == other.kind
    }
}

/// How a subquery's rows become a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SubqueryKind {
    /// `(SELECT x ...)`: the single value, NULL for no rows, an error for several.
    Scalar,
    /// `EXISTS (...)`.
    Exists,
    /// `ARRAY(SELECT x ...)`: the values as an array (text, see `array.rs`).
    Array,
    /// A lookup in an uncorrelated subquery's rows `(k1, ..., kn, value)`: the value of the
    /// row whose keys equal `keys` (evaluated on the enclosing row), NULL if none does. The
    /// catalog functions that find an object by oid are bound so.
    Lookup { keys: Vec<ScalarExpr> },
    /// `left op ANY (...)` / `left op ALL (...)`; `IN` is `= ANY`, `NOT IN` is `<> ALL`.
    Quantified {
        left: Box<ScalarExpr>,
        op: CmpOp,
        all: bool,
    },
}

/// The computed value of a subquery.
#[derive(Debug, Clone)]
pub(crate) enum SubqueryValue {
    Scalar(Datum),
    Exists(bool),
    List(Arc<ValueList>),
    /// A lookup subquery's rows: key encoding to value.
    Map(Arc<HashMap<Vec<u8>, Datum>>),
}

/// Values of the subqueries of one expression, by subquery id.
pub(crate) type SubqueryValues = HashMap<usize, SubqueryValue>;

/// The single-column result of a quantified subquery.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueList {
    /// The non-NULL values.
    values: Vec<Datum>,
    /// Their equality keys, for `IN` / `NOT IN` membership.
    keys: HashSet<Vec<u8>>,
    /// Whether the result held a NULL.
    has_null: bool,
}

impl ValueList {
    /// The list of `rows`' first values.
    pub(crate) fn new(rows: Vec<Vec<Datum>>) -> ValueList {
        let mut out = ValueList::default();
        for row in rows {
            match row.into_iter().next() {
                None | Some(Datum::Null) => out.has_null = true,
                Some(d) => {
                    if out
                        .keys
                        .insert(crate::keys::hash_key(std::slice::from_ref(&d)))
                    {
                        out.values.push(d);
                    }
                }
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty() && !self.has_null
    }
}

impl SubqueryExpr {
    pub(super) fn children(&self) -> Vec<&ScalarExpr> {
        let mut v: Vec<&ScalarExpr> = self.captures.iter().collect();
        match &self.kind {
            SubqueryKind::Quantified { left, .. } => v.push(left),
            SubqueryKind::Lookup { keys } => v.extend(keys),
            _ => {}
        }
        v
    }

    pub(super) fn for_each_child_mut(&mut self, f: &mut dyn FnMut(&mut ScalarExpr)) {
        self.captures.iter_mut().for_each(&mut *f);
        match &mut self.kind {
            SubqueryKind::Quantified { left, .. } => f(left),
            SubqueryKind::Lookup { keys } => keys.iter_mut().for_each(&mut *f),
            _ => {}
        }
    }

    /// The value, from the executor's precomputed results.
    pub(super) fn eval(&self, row: &[Datum], env: &Env<'_>) -> Result<Datum, SqlError> {
        let value = env
            .subqueries
            .and_then(|m| m.get(&self.id))
            .ok_or_else(|| SqlError::internal(format!("subquery {} was not computed", self.id)))?;
        match (&self.kind, value) {
            (SubqueryKind::Scalar | SubqueryKind::Array, SubqueryValue::Scalar(d)) => Ok(d.clone()),
            (SubqueryKind::Exists, SubqueryValue::Exists(b)) => Ok(Datum::Bool(*b)),
            (SubqueryKind::Quantified { left, op, all }, SubqueryValue::List(list)) => {
                quantified(left.eval(row, env)?, *op, *all, list)
            }
            (SubqueryKind::Lookup { keys }, SubqueryValue::Map(map)) => {
                let key = keys
                    .iter()
                    .map(|k| k.eval(row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                if key.contains(&Datum::Null) {
                    return Ok(Datum::Null);
                }
                Ok(map
                    .get(&crate::keys::hash_key(&key))
                    .cloned()
                    .unwrap_or(Datum::Null))
            }
            (kind, value) => Err(SqlError::internal(format!(
                "subquery {} of kind {kind:?} got {value:?}",
                self.id
            ))),
        }
    }
}

/// `l op ANY (list)` / `l op ALL (list)` with SQL's three-valued logic.
pub(crate) fn quantified(
    l: Datum,
    op: CmpOp,
    all: bool,
    list: &ValueList,
) -> Result<Datum, SqlError> {
    if list.is_empty() {
        return Ok(Datum::Bool(all));
    }
    if l == Datum::Null {
        return Ok(Datum::Null);
    }
    // Membership tests use the equality keys.
    if matches!((op, all), (CmpOp::Eq, false) | (CmpOp::NotEq, true)) {
        let found = list
            .keys
            .contains(&crate::keys::hash_key(std::slice::from_ref(&l)));
        return Ok(match (found, list.has_null) {
            (true, _) => Datum::Bool(!all),
            (false, true) => Datum::Null,
            (false, false) => Datum::Bool(all),
        });
    }
    // ANY: true if some comparison holds; ALL: false if some fails; else NULL if NULLs took
    // part.
    let mut saw_null = list.has_null;
    for v in &list.values {
        match cmp_datums(&l, v) {
            Some(ord) if op.holds(ord) != all => return Ok(Datum::Bool(!all)),
            Some(_) => {}
            None => saw_null = true,
        }
    }
    Ok(if saw_null {
        Datum::Null
    } else {
        Datum::Bool(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[Option<i64>]) -> ValueList {
        ValueList::new(
            values
                .iter()
                .map(|v| vec![v.map_or(Datum::Null, Datum::Int)])
                .collect(),
        )
    }

    #[test]
    fn in_and_not_in_follow_three_valued_logic() {
        let i = Datum::Int;
        let l = list(&[Some(1), Some(2), None]);
        assert_eq!(
            quantified(i(1), CmpOp::Eq, false, &l).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(quantified(i(3), CmpOp::Eq, false, &l).unwrap(), Datum::Null);
        assert_eq!(
            quantified(i(1), CmpOp::NotEq, true, &l).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            quantified(i(3), CmpOp::NotEq, true, &l).unwrap(),
            Datum::Null
        );
        let no_null = list(&[Some(1)]);
        assert_eq!(
            quantified(i(3), CmpOp::NotEq, true, &no_null).unwrap(),
            Datum::Bool(true)
        );
        let empty = list(&[]);
        assert_eq!(
            quantified(Datum::Null, CmpOp::Eq, false, &empty).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            quantified(Datum::Null, CmpOp::NotEq, true, &empty).unwrap(),
            Datum::Bool(true)
        );
    }

    #[test]
    fn ordered_comparisons_with_any_and_all() {
        let i = Datum::Int;
        let l = list(&[Some(1), Some(5)]);
        assert_eq!(
            quantified(i(3), CmpOp::Gt, false, &l).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(
            quantified(i(3), CmpOp::Gt, true, &l).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            quantified(i(9), CmpOp::Gt, true, &l).unwrap(),
            Datum::Bool(true)
        );
        let with_null = list(&[Some(1), None]);
        assert_eq!(
            quantified(i(9), CmpOp::Gt, true, &with_null).unwrap(),
            Datum::Null
        );
        assert_eq!(
            quantified(i(0), CmpOp::Gt, true, &with_null).unwrap(),
            Datum::Bool(false)
        );
    }
}
