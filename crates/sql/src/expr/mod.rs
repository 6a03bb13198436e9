//! Bound scalar expressions and their evaluation.
//!
//! The binder ([`crate::plan`]) turns parsed expressions into [`ScalarExpr`] trees whose
//! operands already have matching types (it inserts the implicit casts PostgreSQL would), so
//! evaluation never has to resolve types. Evaluation works on one row at a time: a row is a
//! slice of [`Datum`]s and [`ScalarExpr::Column`] indexes into it. `exec/vector/` evaluates
//! a subset of these expressions over Arrow batches, falling back to this evaluation for the
//! exact errors.

pub(crate) mod array;
mod cast;
pub(crate) mod datetime;
mod eval;
mod func;
mod like;
pub(crate) mod numeric;
mod ops;
mod subquery;
mod volatile;

pub(crate) use cast::{CastContext, can_cast, cast_datum, parse_text};
pub(crate) use eval::Env;
pub(crate) use func::Func;
pub(crate) use numeric::to_text as numeric_text;
pub(crate) use ops::{ArithOp, CmpOp, cmp_datums, cmp_for_sort};
pub(crate) use subquery::{SubqueryExpr, SubqueryKind, SubqueryValue, SubqueryValues, ValueList};
pub(crate) use volatile::{VolatileCall, VolatileFunc};

use crate::api::{Datum, SqlError, SqlType};
use crate::types::TypeSpec;

/// A bound, typed scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScalarExpr {
    /// A constant of the given type.
    Literal(Datum, SqlType),
    /// The value at a position of the input row.
    Column(usize, SqlType),
    /// Statement parameter `$n` (0-based here), fixed for one execution.
    Param(usize, SqlType),
    /// A value of the enclosing query's current row, handed to a correlated subquery when it
    /// runs (position in the subquery's capture list).
    Outer(usize, SqlType),
    /// A subquery; the executor computes its value before the expression is evaluated.
    Subquery(Box<SubqueryExpr>),
    /// A volatile function call; computed by the executor like a subquery.
    Volatile(Box<VolatileCall>),
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
            ScalarExpr::Literal(_, ty)
            | ScalarExpr::Column(_, ty)
            | ScalarExpr::Param(_, ty)
            | ScalarExpr::Outer(_, ty) => *ty,
            ScalarExpr::Subquery(s) => s.ty,
            ScalarExpr::Volatile(v) => v.ty,
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

    /// The direct children of this node: operands, and for a subquery the values it takes
    /// from the enclosing row (never the subquery's own plan).
    pub(crate) fn children(&self) -> Vec<&ScalarExpr> {
        use ScalarExpr::*;
        match self {
            Literal(..) | Column(..) | Param(..) | Outer(..) => vec![],
            Not(e)
            | Neg(e)
            | IsNull { expr: e, .. }
            | IsBool { expr: e, .. }
            | Cast { expr: e, .. } => vec![e],
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
            Volatile(v) => v.args.iter().collect(),
            Subquery(s) => s.children(),
        }
    }

    /// Calls `f` on every direct child, mutably (see [`ScalarExpr::children`]).
    pub(crate) fn for_each_child_mut(&mut self, f: &mut dyn FnMut(&mut ScalarExpr)) {
        use ScalarExpr::*;
        match self {
            Literal(..) | Column(..) | Param(..) | Outer(..) => {}
            Not(e)
            | Neg(e)
            | IsNull { expr: e, .. }
            | IsBool { expr: e, .. }
            | Cast { expr: e, .. } => f(e),
            Arith { left, right, .. }
            | Compare { left, right, .. }
            | IsDistinct { left, right, .. }
            | And(left, right)
            | Or(left, right)
            | Concat(left, right) => {
                f(left);
                f(right);
            }
            InList { expr, list, .. } => {
                f(expr);
                list.iter_mut().for_each(f);
            }
            Like {
                expr,
                pattern,
                escape,
                ..
            } => {
                f(expr);
                f(pattern);
                if let Some(e) = escape {
                    f(e);
                }
            }
            Case {
                whens, otherwise, ..
            } => {
                for (c, r) in whens {
                    f(c);
                    f(r);
                }
                if let Some(o) = otherwise {
                    f(o);
                }
            }
            Func { args, .. } => args.iter_mut().for_each(f),
            Volatile(v) => v.args.iter_mut().for_each(f),
            Subquery(s) => s.for_each_child_mut(f),
        }
    }

    /// True when some node of the tree satisfies `pred`.
    pub(crate) fn any(&self, pred: &dyn Fn(&ScalarExpr) -> bool) -> bool {
        pred(self) || self.children().iter().any(|c| c.any(pred))
    }

    /// True when the expression reads no column, parameter, outer value or subquery (its
    /// value is known when planning).
    pub(crate) fn is_constant(&self) -> bool {
        !self.any(&|e| {
            matches!(
                e,
                ScalarExpr::Column(..)
                    | ScalarExpr::Param(..)
                    | ScalarExpr::Outer(..)
                    | ScalarExpr::Subquery(_)
                    | ScalarExpr::Volatile(_)
            )
        })
    }

    /// True when the expression contains a subquery or a volatile call, and so needs the
    /// executor to evaluate it.
    pub(crate) fn has_subquery(&self) -> bool {
        self.any(&|e| matches!(e, ScalarExpr::Subquery(_) | ScalarExpr::Volatile(_)))
    }

    /// True when the expression reads parameters or outer values, which are fixed for one
    /// execution but unknown when planning.
    pub(crate) fn has_runtime_values(&self) -> bool {
        self.any(&|e| matches!(e, ScalarExpr::Param(..) | ScalarExpr::Outer(..)))
    }

    /// Whether the expression reads no input column (constants, parameters, outer values).
    pub(crate) fn is_row_independent(&self) -> bool {
        !self.any(&|e| {
            matches!(
                e,
                ScalarExpr::Column(..) | ScalarExpr::Subquery(_) | ScalarExpr::Volatile(_)
            )
        })
    }

    /// Renumbers input columns with `f` (subquery captures included).
    pub(crate) fn remap_columns(&mut self, f: &dyn Fn(usize) -> usize) {
        if let ScalarExpr::Column(i, _) = self {
            *i = f(*i);
            return;
        }
        self.for_each_child_mut(&mut |c| c.remap_columns(f));
    }

    /// The input columns the expression reads, in order of first use.
    pub(crate) fn columns(&self, out: &mut Vec<usize>) {
        if let ScalarExpr::Column(i, _) = self {
            if !out.contains(i) {
                out.push(*i);
            }
            return;
        }
        for c in self.children() {
            c.columns(out);
        }
    }

    /// Replaces parameters and outer values by their values in `env`.
    pub(crate) fn substitute_runtime(&self, env: &Env<'_>) -> Result<ScalarExpr, SqlError> {
        let mut out = self.clone();
        let mut err = None;
        out.substitute_in_place(env, &mut err);
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn substitute_in_place(&mut self, env: &Env<'_>, err: &mut Option<SqlError>) {
        match self {
            ScalarExpr::Param(..) | ScalarExpr::Outer(..) => match self.eval(&[], env) {
                Ok(d) => *self = ScalarExpr::Literal(d, self.ty()),
                Err(e) => *err = Some(e),
            },
            _ => self.for_each_child_mut(&mut |c| c.substitute_in_place(env, err)),
        }
    }

    /// Replaces a constant expression by its value. Expressions whose evaluation fails are left
    /// alone, so that an error only surfaces if a row actually reaches them (`CASE WHEN false
    /// THEN 1/0 END` is fine).
    pub(crate) fn fold(self) -> ScalarExpr {
        if matches!(self, ScalarExpr::Literal(..)) || !self.is_constant() {
            return self;
        }
        match self.eval(&[], &Env::EMPTY) {
            Ok(d) => {
                let ty = self.ty();
                ScalarExpr::Literal(d, ty)
            }
            Err(_) => self,
        }
    }

    /// Evaluates a constant expression.
    pub(crate) fn eval_const(&self) -> Result<Datum, SqlError> {
        self.eval(&[], &Env::EMPTY)
    }
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
        let and = |a, b| {
            ScalarExpr::And(Box::new(a), Box::new(b))
                .eval_const()
                .unwrap()
        };
        let or = |a, b| {
            ScalarExpr::Or(Box::new(a), Box::new(b))
                .eval_const()
                .unwrap()
        };
        assert_eq!(and(lit_b(false), null_b()), Datum::Bool(false));
        assert_eq!(and(null_b(), lit_b(false)), Datum::Bool(false));
        assert_eq!(and(null_b(), lit_b(true)), Datum::Null);
        assert_eq!(or(null_b(), lit_b(true)), Datum::Bool(true));
        assert_eq!(or(lit_b(false), null_b()), Datum::Null);
        assert_eq!(
            ScalarExpr::Not(Box::new(null_b())).eval_const().unwrap(),
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
            .eval_const()
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
            sum.eval(&[Datum::Null, Datum::Int(41)], &Env::EMPTY)
                .unwrap(),
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
        assert_eq!(div0.eval_const().unwrap_err().code, "22012");
    }

    #[test]
    fn case_picks_first_true_branch() {
        let case = ScalarExpr::Case {
            whens: vec![(null_b(), lit_i(1)), (lit_b(true), lit_i(2))],
            otherwise: Some(Box::new(lit_i(3))),
            ty: SqlType::Int4,
        };
        assert_eq!(case.eval_const().unwrap(), Datum::Int(2));
    }
}
