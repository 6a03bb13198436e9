//! Binding the array forms: `ARRAY[...]`, `arr[i]` and `x op ANY/ALL (array)` (`ARRAY(SELECT
//! ...)` is a subquery, see `subquery.rs`). Arrays are text in PostgreSQL's array syntax (see
//! `expr/array.rs`).

use sqlparser::ast::{AccessExpr, Expr, Subscript};

use super::bind::ExprBinder;
use super::coerce::{Bound, common_type, compare, implicit};
use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{CmpOp, Func, ScalarExpr};

impl ExprBinder<'_> {
    /// `ARRAY[a, b, ...]`: the elements converted to their common type.
    pub(super) fn bind_array_literal(
        &mut self,
        elems: &[Expr],
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let bound = elems
            .iter()
            .map(|e| self.bind(e))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Bound> = bound.iter().collect();
        let ty = common_type(&refs).ok_or_else(|| {
            let names: Vec<&str> = bound.iter().map(Bound::type_name).collect();
            SqlError::datatype_mismatch(format!(
                "ARRAY types {} cannot be matched",
                names.join(" and ")
            ))
        })?;
        let args = bound
            .into_iter()
            .map(|b| implicit(b, ty))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bound::known(
            ScalarExpr::Func {
                func: Func::ArrayBuild,
                args,
                ty: SqlType::Text,
            },
            pos,
        ))
    }

    /// `arr[i]`: an element, untyped until its use decides (like a string literal).
    pub(super) fn bind_subscript(
        &mut self,
        root: &Expr,
        chain: &[AccessExpr],
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let [AccessExpr::Subscript(Subscript::Index { index })] = chain else {
            return Err(SqlError::unsupported(
                "only one subscript of a one-dimensional array is supported",
            ));
        };
        let arr = self.bind(root)?;
        let arr = implicit(arr, SqlType::Text)?;
        let i = self.bind(index)?;
        let i = implicit(i, SqlType::Int4)?;
        Ok(Bound {
            expr: ScalarExpr::Func {
                func: Func::ArrayElement,
                args: vec![arr, i],
                ty: SqlType::Text,
            },
            unknown: true,
            param: None,
            pos,
        })
    }

    /// `x op ANY (array)` / `x op ALL (array)` where the array is not a subquery.
    pub(super) fn bind_array_quantified(
        &mut self,
        left: &Expr,
        op: CmpOp,
        right: &Expr,
        all: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        if let Expr::Array(arr) = right {
            return self.bind_quantified_list(left, op, &arr.elem, all, pos);
        }
        let x = self.bind(left)?;
        let x = if x.unknown {
            implicit(x, SqlType::Text)?
        } else {
            x.expr
        };
        let arr = self.bind(right)?;
        let arr = implicit(arr, SqlType::Text)?;
        Ok(Bound::known(
            ScalarExpr::Func {
                func: Func::ArrayQuantified { op, all },
                args: vec![x, arr],
                ty: SqlType::Bool,
            },
            pos,
        ))
    }

    /// `x op ANY (ARRAY[a, b])`: `x IN (a, b)` for `= ANY`, `x NOT IN (a, b)` for `<> ALL`,
    /// otherwise the comparisons joined by OR (ANY) or AND (ALL), which is the same
    /// three-valued result.
    fn bind_quantified_list(
        &mut self,
        left: &Expr,
        op: CmpOp,
        elems: &[Expr],
        all: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        match (op, all) {
            (CmpOp::Eq, false) if !elems.is_empty() => {
                return self.bind_in_list(left, elems, false, pos);
            }
            (CmpOp::NotEq, true) if !elems.is_empty() => {
                return self.bind_in_list(left, elems, true, pos);
            }
            _ => {}
        }
        let x = self.bind(left)?;
        let mut out: Option<ScalarExpr> = None;
        for e in elems {
            let c = compare(op, x.clone(), self.bind(e)?)?;
            out = Some(match out {
                None => c,
                Some(prev) if all => ScalarExpr::And(Box::new(prev), Box::new(c)),
                Some(prev) => ScalarExpr::Or(Box::new(prev), Box::new(c)),
            });
        }
        let expr = out.unwrap_or(ScalarExpr::Literal(Datum::Bool(all), SqlType::Bool));
        Ok(Bound::known(expr, pos))
    }
}
