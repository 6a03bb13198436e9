//! Row-at-a-time evaluation of bound expressions.

use super::{CastContext, ScalarExpr, SubqueryValues, cast_datum, cmp_datums, like, ops};
use crate::api::{Datum, SqlError};

/// What an expression reads besides its input row: statement parameters, the enclosing
/// query's values (inside a correlated subquery) and the values of the subqueries it contains
/// (computed by the executor before evaluation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    /// `$1`, `$2`, ... (0-based).
    pub params: &'a [Datum],
    /// Values captured from the enclosing query's row.
    pub outer: &'a [Datum],
    /// Values of the subqueries of the expression being evaluated.
    pub subqueries: Option<&'a SubqueryValues>,
}

impl Env<'static> {
    /// No parameters, no enclosing row, no subqueries.
    pub(crate) const EMPTY: Env<'static> = Env {
        params: &[],
        outer: &[],
        subqueries: None,
    };
}

impl ScalarExpr {
    /// Evaluates the expression over `row`.
    pub(crate) fn eval(&self, row: &[Datum], env: &Env<'_>) -> Result<Datum, SqlError> {
        // One level of recursion per level of nesting: grow the stack on the heap when deep.
        stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, || self.eval_node(row, env))
    }

    fn eval_node(&self, row: &[Datum], env: &Env<'_>) -> Result<Datum, SqlError> {
        use ScalarExpr::*;
        Ok(match self {
            Literal(d, _) => d.clone(),
            Column(i, _) => row.get(*i).cloned().ok_or_else(|| {
                SqlError::internal(format!("column {i} outside a row of {}", row.len()))
            })?,
            Not(e) => match e.eval(row, env)? {
                Datum::Bool(b) => Datum::Bool(!b),
                _ => Datum::Null,
            },
            Neg(e) => ops::negate(e.eval(row, env)?, e.ty())?,
            Arith {
                op,
                left,
                right,
                ty,
            } => ops::arith(*op, left.eval(row, env)?, right.eval(row, env)?, *ty)?,
            Compare { op, left, right } => {
                let (l, r) = (left.eval(row, env)?, right.eval(row, env)?);
                match cmp_datums(&l, &r) {
                    Some(ord) => Datum::Bool(op.holds(ord)),
                    None => Datum::Null,
                }
            }
            And(l, r) => {
                let a = l.eval(row, env)?;
                if a == Datum::Bool(false) {
                    return Ok(a);
                }
                match (a, r.eval(row, env)?) {
                    (_, Datum::Bool(false)) => Datum::Bool(false),
                    (Datum::Bool(true), Datum::Bool(true)) => Datum::Bool(true),
                    _ => Datum::Null,
                }
            }
            Or(l, r) => {
                let a = l.eval(row, env)?;
                if a == Datum::Bool(true) {
                    return Ok(a);
                }
                match (a, r.eval(row, env)?) {
                    (_, Datum::Bool(true)) => Datum::Bool(true),
                    (Datum::Bool(false), Datum::Bool(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                }
            }
            Concat(l, r) => match (l.eval(row, env)?, r.eval(row, env)?) {
                (Datum::Text(mut a), Datum::Text(b)) => {
                    a.push_str(&b);
                    Datum::Text(a)
                }
                _ => Datum::Null,
            },
            IsNull { expr, negated } => {
                Datum::Bool((expr.eval(row, env)? == Datum::Null) != *negated)
            }
            IsBool {
                expr,
                value,
                negated,
            } => Datum::Bool((expr.eval(row, env)? == Datum::Bool(*value)) != *negated),
            IsDistinct {
                left,
                right,
                negated,
            } => {
                let (l, r) = (left.eval(row, env)?, right.eval(row, env)?);
                let distinct = match (&l, &r) {
                    (Datum::Null, Datum::Null) => false,
                    (Datum::Null, _) | (_, Datum::Null) => true,
                    _ => cmp_datums(&l, &r) != Some(std::cmp::Ordering::Equal),
                };
                Datum::Bool(distinct != *negated)
            }
            InList {
                expr,
                list,
                negated,
            } => eval_in_list(expr.eval(row, env)?, list, *negated, row, env)?,
            Like {
                expr,
                pattern,
                escape,
                negated,
                case_insensitive,
            } => {
                let escape = match escape {
                    Some(e) => match e.eval(row, env)? {
                        Datum::Null => return Ok(Datum::Null),
                        Datum::Text(s) => Some(s),
                        _ => None,
                    },
                    None => None,
                };
                match (expr.eval(row, env)?, pattern.eval(row, env)?) {
                    (Datum::Text(s), Datum::Text(p)) => {
                        let m = like::like(&s, &p, escape.as_deref(), *case_insensitive)?;
                        Datum::Bool(m != *negated)
                    }
                    _ => Datum::Null,
                }
            }
            Cast { expr, to, explicit } => {
                let from = expr.ty();
                let ctx = if *explicit {
                    CastContext::Explicit
                } else {
                    CastContext::Assignment
                };
                cast_datum(expr.eval(row, env)?, from, *to, ctx)?
            }
            Case {
                whens, otherwise, ..
            } => {
                for (cond, result) in whens {
                    if cond.eval(row, env)? == Datum::Bool(true) {
                        return result.eval(row, env);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, env)?,
                    None => Datum::Null,
                }
            }
            Func { func, args, .. } => func.eval(args, row, env)?,
            Param(i, _) => env.params.get(*i).cloned().ok_or_else(|| {
                SqlError::new("08P01", format!("there is no parameter ${}", i + 1))
            })?,
            Outer(i, _) => env.outer.get(*i).cloned().ok_or_else(|| {
                SqlError::internal(format!("outer value {i} of {} missing", env.outer.len()))
            })?,
            Subquery(s) => s.eval(row, env)?,
            Volatile(v) => v.eval(env)?,
        })
    }
}

/// `v IN (list)` with SQL's three-valued logic: true if some element equals `v`, otherwise
/// NULL if `v` or some element is NULL, otherwise false.
fn eval_in_list(
    v: Datum,
    list: &[ScalarExpr],
    negated: bool,
    row: &[Datum],
    env: &Env<'_>,
) -> Result<Datum, SqlError> {
    if v == Datum::Null {
        return Ok(Datum::Null);
    }
    let mut saw_null = false;
    for e in list {
        let item = e.eval(row, env)?;
        match cmp_datums(&v, &item) {
            Some(std::cmp::Ordering::Equal) => return Ok(Datum::Bool(!negated)),
            None => saw_null = true,
            Some(_) => {}
        }
    }
    Ok(if saw_null {
        Datum::Null
    } else {
        Datum::Bool(negated)
    })
}
