//! Bound scalar expressions and their evaluation.
//!
//! The binder ([`crate::plan`]) turns parsed expressions into [`ScalarExpr`] trees whose
//! operands already have matching types (it inserts the implicit casts PostgreSQL would), so
//! evaluation never has to resolve types. Evaluation works on one row at a time: a row is a
//! slice of [`Datum`]s and [`ScalarExpr::Column`] indexes into it.

mod cast;
mod func;
mod like;
mod ops;

pub(crate) use cast::{CastContext, can_cast, cast_datum, parse_text};
pub(crate) use func::Func;
pub(crate) use ops::{ArithOp, CmpOp, cmp_datums, cmp_for_sort};

use crate::api::{Datum, SqlError, SqlType};
use crate::types::TypeSpec;

/// A bound, typed scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScalarExpr {
    /// A constant of the given type.
    Literal(Datum, SqlType),
    /// The value at a position of the input row.
    Column(usize, SqlType),
    /// Boolean NOT.
    Not(Box<ScalarExpr>),
    /// Arithmetic negation.
    Neg(Box<ScalarExpr>),
    /// Arithmetic on two operands of the same numeric class; `ty` is the result type, whose
    /// range decides overflow.
    Arith {
        op: ArithOp,
        left: Box<ScalarExpr>,
        right: Box<ScalarExpr>,
        ty: SqlType,
    },
    /// Comparison of two operands of comparable types.
    Compare {
        op: CmpOp,
        left: Box<ScalarExpr>,
        right: Box<ScalarExpr>,
    },
    /// Three-valued AND.
    And(Box<ScalarExpr>, Box<ScalarExpr>),
    /// Three-valued OR.
    Or(Box<ScalarExpr>, Box<ScalarExpr>),
    /// Text concatenation (`||`), both operands text.
    Concat(Box<ScalarExpr>, Box<ScalarExpr>),
    /// `IS [NOT] NULL`.
    IsNull {
        expr: Box<ScalarExpr>,
        negated: bool,
    },
    /// `IS [NOT] TRUE` / `IS [NOT] FALSE`.
    IsBool {
        expr: Box<ScalarExpr>,
        value: bool,
        negated: bool,
    },
    /// `IS [NOT] DISTINCT FROM`.
    IsDistinct {
        left: Box<ScalarExpr>,
        right: Box<ScalarExpr>,
        negated: bool,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        expr: Box<ScalarExpr>,
        list: Vec<ScalarExpr>,
        negated: bool,
    },
    /// `expr [NOT] [I]LIKE pattern [ESCAPE escape]`.
    Like {
        expr: Box<ScalarExpr>,
        pattern: Box<ScalarExpr>,
        escape: Option<Box<ScalarExpr>>,
        negated: bool,
        case_insensitive: bool,
    },
    /// A cast; `explicit` distinguishes `CAST`/`::` (which truncates to a `VARCHAR(n)`) from an
    /// assignment (which rejects values that are too long).
    Cast {
        expr: Box<ScalarExpr>,
        to: TypeSpec,
        explicit: bool,
    },
    /// `CASE WHEN c THEN r ... ELSE e END`.
    Case {
        whens: Vec<(ScalarExpr, ScalarExpr)>,
        otherwise: Option<Box<ScalarExpr>>,
        ty: SqlType,
    },
    /// A scalar function call.
    Func {
        func: Func,
        args: Vec<ScalarExpr>,
        ty: SqlType,
    },
}

impl ScalarExpr {
    /// The result type.
    pub(crate) fn ty(&self) -> SqlType {
        match self {
            ScalarExpr::Literal(_, ty) | ScalarExpr::Column(_, ty) => *ty,
            ScalarExpr::Neg(e) => e.ty(),
            ScalarExpr::Arith { ty, .. }
            | ScalarExpr::Case { ty, .. }
            | ScalarExpr::Func { ty, .. } => *ty,
            ScalarExpr::Cast { to, .. } => to.ty,
            ScalarExpr::Concat(..) => SqlType::Text,
            ScalarExpr::Not(_)
            | ScalarExpr::Compare { .. }
            | ScalarExpr::And(..)
            | ScalarExpr::Or(..)
            | ScalarExpr::IsNull { .. }
            | ScalarExpr::IsBool { .. }
            | ScalarExpr::IsDistinct { .. }
            | ScalarExpr::InList { .. }
            | ScalarExpr::Like { .. } => SqlType::Bool,
        }
    }

    /// A typed NULL.
    pub(crate) fn null(ty: SqlType) -> ScalarExpr {
        ScalarExpr::Literal(Datum::Null, ty)
    }

    /// The direct children of this node.
    fn children(&self) -> Vec<&ScalarExpr> {
        use ScalarExpr::*;
        match self {
            Literal(..) | Column(..) => vec![],
            Not(e)
            | Neg(e)
            | IsNull { expr: e, .. }
            | IsBool { expr: e, .. }
            | Cast { expr: e, .. } => {
                vec![e]
            }
            Arith { left, right, .. }
            | Compare { left, right, .. }
            | IsDistinct { left, right, .. }
            | And(left, right)
            | Or(left, right)
            | Concat(left, right) => vec![left, right],
            InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Like {
                expr,
                pattern,
                escape,
                ..
            } => {
                let mut v = vec![&**expr, &**pattern];
                v.extend(escape.as_deref());
                v
            }
            Case {
                whens, otherwise, ..
            } => {
                let mut v: Vec<&ScalarExpr> = whens.iter().flat_map(|(c, r)| [c, r]).collect();
                v.extend(otherwise.as_deref());
                v
            }
            Func { args, .. } => args.iter().collect(),
        }
    }

    /// True when the expression reads no column (its value is the same for every row).
    pub(crate) fn is_constant(&self) -> bool {
        !matches!(self, ScalarExpr::Column(..)) && self.children().iter().all(|c| c.is_constant())
    }

    /// Replaces a constant expression by its value. Expressions whose evaluation fails are left
    /// alone, so that an error only surfaces if a row actually reaches them (`CASE WHEN false
    /// THEN 1/0 END` is fine).
    pub(crate) fn fold(self) -> ScalarExpr {
        if matches!(self, ScalarExpr::Literal(..)) || !self.is_constant() {
            return self;
        }
        match self.eval(&[]) {
            Ok(d) => {
                let ty = self.ty();
                ScalarExpr::Literal(d, ty)
            }
            Err(_) => self,
        }
    }

    /// Evaluates the expression over `row`.
    pub(crate) fn eval(&self, row: &[Datum]) -> Result<Datum, SqlError> {
        use ScalarExpr::*;
        Ok(match self {
            Literal(d, _) => d.clone(),
            Column(i, _) => row.get(*i).cloned().ok_or_else(|| {
                SqlError::internal(format!("column {i} outside a row of {}", row.len()))
            })?,
            Not(e) => match e.eval(row)? {
                Datum::Bool(b) => Datum::Bool(!b),
                _ => Datum::Null,
            },
            Neg(e) => ops::negate(e.eval(row)?, e.ty())?,
            Arith {
                op,
                left,
                right,
                ty,
            } => ops::arith(*op, left.eval(row)?, right.eval(row)?, *ty)?,
            Compare { op, left, right } => {
                let (l, r) = (left.eval(row)?, right.eval(row)?);
                match cmp_datums(&l, &r) {
                    Some(ord) => Datum::Bool(op.holds(ord)),
                    None => Datum::Null,
                }
            }
            And(l, r) => {
                let a = l.eval(row)?;
                if a == Datum::Bool(false) {
                    return Ok(a);
                }
                match (a, r.eval(row)?) {
                    (_, Datum::Bool(false)) => Datum::Bool(false),
                    (Datum::Bool(true), Datum::Bool(true)) => Datum::Bool(true),
                    _ => Datum::Null,
                }
            }
            Or(l, r) => {
                let a = l.eval(row)?;
                if a == Datum::Bool(true) {
                    return Ok(a);
                }
                match (a, r.eval(row)?) {
                    (_, Datum::Bool(true)) => Datum::Bool(true),
                    (Datum::Bool(false), Datum::Bool(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                }
            }
            Concat(l, r) => match (l.eval(row)?, r.eval(row)?) {
                (Datum::Text(mut a), Datum::Text(b)) => {
                    a.push_str(&b);
                    Datum::Text(a)
                }
                _ => Datum::Null,
            },
            IsNull { expr, negated } => Datum::Bool((expr.eval(row)? == Datum::Null) != *negated),
            IsBool {
                expr,
                value,
                negated,
            } => Datum::Bool((expr.eval(row)? == Datum::Bool(*value)) != *negated),
            IsDistinct {
                left,
                right,
                negated,
            } => {
                let (l, r) = (left.eval(row)?, right.eval(row)?);
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
            } => eval_in_list(expr.eval(row)?, list, *negated, row)?,
            Like {
                expr,
                pattern,
                escape,
                negated,
                case_insensitive,
            } => {
                let escape = match escape {
                    Some(e) => match e.eval(row)? {
                        Datum::Null => return Ok(Datum::Null),
                        Datum::Text(s) => Some(s),
                        _ => None,
                    },
                    None => None,
                };
                match (expr.eval(row)?, pattern.eval(row)?) {
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
                cast_datum(expr.eval(row)?, from, *to, ctx)?
            }
            Case {
                whens, otherwise, ..
            } => {
                for (cond, result) in whens {
                    if cond.eval(row)? == Datum::Bool(true) {
                        return result.eval(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row)?,
                    None => Datum::Null,
                }
            }
            Func { func, args, .. } => func.eval(args, row)?,
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
) -> Result<Datum, SqlError> {
    if v == Datum::Null {
        return Ok(Datum::Null);
    }
    let mut saw_null = false;
    for e in list {
        let item = e.eval(row)?;
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

/// True when a WHERE/HAVING condition value lets a row through (NULL does not).
pub(crate) fn is_true(d: &Datum) -> bool {
    *d == Datum::Bool(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit_i(v: i64) -> ScalarExpr {
        ScalarExpr::Literal(Datum::Int(v), SqlType::Int4)
    }
    fn null_b() -> ScalarExpr {
        ScalarExpr::null(SqlType::Bool)
    }
    fn lit_b(b: bool) -> ScalarExpr {
        ScalarExpr::Literal(Datum::Bool(b), SqlType::Bool)
    }

    #[test]
    fn three_valued_logic() {
        let and = |a, b| ScalarExpr::And(Box::new(a), Box::new(b)).eval(&[]).unwrap();
        let or = |a, b| ScalarExpr::Or(Box::new(a), Box::new(b)).eval(&[]).unwrap();
        assert_eq!(and(lit_b(false), null_b()), Datum::Bool(false));
        assert_eq!(and(null_b(), lit_b(false)), Datum::Bool(false));
        assert_eq!(and(null_b(), lit_b(true)), Datum::Null);
        assert_eq!(or(null_b(), lit_b(true)), Datum::Bool(true));
        assert_eq!(or(lit_b(false), null_b()), Datum::Null);
        assert_eq!(
            ScalarExpr::Not(Box::new(null_b())).eval(&[]).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn in_list_with_nulls() {
        let in_list = |v: ScalarExpr, list: Vec<ScalarExpr>, negated| {
            ScalarExpr::InList {
                expr: Box::new(v),
                list,
                negated,
            }
            .eval(&[])
            .unwrap()
        };
        let null_i = || ScalarExpr::null(SqlType::Int4);
        assert_eq!(
            in_list(lit_i(1), vec![lit_i(2), lit_i(1)], false),
            Datum::Bool(true)
        );
        assert_eq!(
            in_list(lit_i(1), vec![lit_i(2), null_i()], false),
            Datum::Null
        );
        assert_eq!(
            in_list(lit_i(1), vec![lit_i(2), null_i()], true),
            Datum::Null
        );
        assert_eq!(in_list(lit_i(1), vec![lit_i(2)], true), Datum::Bool(true));
        assert_eq!(in_list(null_i(), vec![lit_i(2)], false), Datum::Null);
    }

    #[test]
    fn columns_and_folding() {
        let sum = ScalarExpr::Arith {
            op: ArithOp::Add,
            left: Box::new(ScalarExpr::Column(1, SqlType::Int4)),
            right: Box::new(lit_i(1)),
            ty: SqlType::Int4,
        };
        assert!(!sum.is_constant());
        assert_eq!(
            sum.eval(&[Datum::Null, Datum::Int(41)]).unwrap(),
            Datum::Int(42)
        );
        let c = ScalarExpr::Arith {
            op: ArithOp::Mul,
            left: Box::new(lit_i(6)),
            right: Box::new(lit_i(7)),
            ty: SqlType::Int4,
        };
        assert_eq!(c.fold(), lit_i(42));
        let div0 = ScalarExpr::Arith {
            op: ArithOp::Div,
            left: Box::new(lit_i(1)),
            right: Box::new(lit_i(0)),
            ty: SqlType::Int4,
        };
        assert!(
            matches!(div0.clone().fold(), ScalarExpr::Arith { .. }),
            "failing constants stay unfolded"
        );
        assert_eq!(div0.eval(&[]).unwrap_err().code, "22012");
    }

    #[test]
    fn case_picks_first_true_branch() {
        let case = ScalarExpr::Case {
            whens: vec![(null_b(), lit_i(1)), (lit_b(true), lit_i(2))],
            otherwise: Some(Box::new(lit_i(3))),
            ty: SqlType::Int4,
        };
        assert_eq!(case.eval(&[]).unwrap(), Datum::Int(2));
    }
}
