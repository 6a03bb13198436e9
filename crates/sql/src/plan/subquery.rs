//! Binding subqueries in expressions: `(SELECT ...)`, `EXISTS`, `IN (SELECT ...)`, and
//! `op ANY/ALL (SELECT ...)`.
//!
//! The subquery is planned with a [`Frame`] for the enclosing query, so that names it does not
//! define resolve outward; the frame's captures become the subquery's
//! [`SubqueryExpr::captures`].

use std::sync::Arc;

use sqlparser::ast::{BinaryOperator, Expr, Query};

use super::bind::ExprBinder;
use super::coerce::{Bound, common_type, implicit};
use super::query::plan_query;
use super::rel::{QueryPlan, Rel};
use super::scope::Frame;
use crate::api::{SqlError, SqlType};
use crate::expr::{CmpOp, ScalarExpr, SubqueryExpr, SubqueryKind};

impl ExprBinder<'_> {
    /// Plans `q` as a subquery of the query being bound; returns its plan and captures.
    pub(super) fn plan_subquery(
        &self,
        q: &Query,
    ) -> Result<(QueryPlan, Vec<ScalarExpr>), SqlError> {
        let groups = self.agg.as_ref().map(|a| a.groups.as_slice());
        let frame = Frame::new(self.scope, groups, self.outer);
        let plan = plan_query(q, self.ctx, Some(&frame))?;
        Ok((plan, frame.captures.into_inner()))
    }

    pub(super) fn subquery(
        &self,
        rel: Rel,
        captures: Vec<ScalarExpr>,
        kind: SubqueryKind,
        ty: SqlType,
        pos: Option<u32>,
    ) -> Bound {
        Bound::known(
            ScalarExpr::Subquery(Box::new(SubqueryExpr {
                id: self.ctx.next_subquery_id(),
                plan: Arc::new(rel),
                captures,
                kind,
                ty,
            })),
            pos,
        )
    }

    /// `(SELECT x ...)` as a value.
    pub(super) fn bind_scalar_subquery(
        &mut self,
        q: &Query,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        self.bind_one_column(q, SubqueryKind::Scalar, pos)
    }

    /// `q`, which must yield one column, as a subquery of `kind`: a scalar subquery has the
    /// column's type, an array subquery is text (see `expr/array.rs`).
    pub(super) fn bind_one_column(
        &mut self,
        q: &Query,
        kind: SubqueryKind,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let (plan, captures) = self.plan_subquery(q)?;
        if plan.columns.len() != 1 {
            return Err(SqlError::syntax("subquery must return only one column").with_position(pos));
        }
        let ty = match kind {
            SubqueryKind::Array => SqlType::Text,
            _ => plan.columns[0].ty,
        };
        Ok(self.subquery(plan.rel, captures, kind, ty, pos))
    }

    /// `[NOT] EXISTS (SELECT ...)`.
    pub(super) fn bind_exists(
        &mut self,
        q: &Query,
        negated: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let (plan, captures) = self.plan_subquery(q)?;
        let b = self.subquery(plan.rel, captures, SubqueryKind::Exists, SqlType::Bool, pos);
        Ok(if negated {
            Bound::known(ScalarExpr::Not(Box::new(b.expr)), pos)
        } else {
            b
        })
    }

    /// `x [NOT] IN (SELECT ...)`: `= ANY`, negated.
    pub(super) fn bind_in_subquery(
        &mut self,
        x: &Expr,
        q: &Query,
        negated: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let left = self.bind(x)?;
        let b = self.quantified(left, q, CmpOp::Eq, false, pos)?;
        Ok(if negated {
            Bound::known(ScalarExpr::Not(Box::new(b.expr)), pos)
        } else {
            b
        })
    }

    /// `x op ANY (SELECT ...)` / `x op ALL (SELECT ...)`.
    pub(super) fn bind_quantified(
        &mut self,
        left: &Expr,
        op: &BinaryOperator,
        right: &Expr,
        all: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let op = match op {
            BinaryOperator::Eq => CmpOp::Eq,
            BinaryOperator::NotEq => CmpOp::NotEq,
            BinaryOperator::Lt => CmpOp::Lt,
            BinaryOperator::LtEq => CmpOp::LtEq,
            BinaryOperator::Gt => CmpOp::Gt,
            BinaryOperator::GtEq => CmpOp::GtEq,
            other => {
                return Err(SqlError::unsupported(format!(
                    "operator {other} with ANY/ALL is not supported"
                )));
            }
        };
        let q = match right {
            Expr::Subquery(q) => q,
            Expr::Nested(inner) if matches!(inner.as_ref(), Expr::Subquery(_)) => {
                let Expr::Subquery(q) = inner.as_ref() else {
                    unreachable!("matched above")
                };
                q
            }
            array => return self.bind_array_quantified(left, op, array, all, pos),
        };
        let left = self.bind(left)?;
        self.quantified(left, q, op, all, pos)
    }

    fn quantified(
        &mut self,
        left: Bound,
        q: &Query,
        op: CmpOp,
        all: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let (plan, captures) = self.plan_subquery(q)?;
        if plan.columns.len() != 1 {
            let msg = if plan.columns.len() > 1 {
                "subquery has too many columns"
            } else {
                "subquery has too few columns"
            };
            return Err(SqlError::syntax(msg).with_position(pos));
        }
        let col_ty = plan.columns[0].ty;
        let col = Bound::known(ScalarExpr::Column(0, col_ty), None);
        let ty = common_type(&[&left, &col]).ok_or_else(|| {
            SqlError::undefined_operator(op.symbol(), Some(left.type_name()), col_ty.pg_name())
        })?;
        // Integers of different widths compare directly.
        let target = |t: SqlType| {
            if crate::types::is_integer(ty) && crate::types::is_integer(t) {
                t
            } else {
                ty
            }
        };
        let left_target = if left.unknown { ty } else { target(left.ty()) };
        let left = implicit(left, left_target)?;
        let mut rel = plan.rel;
        if target(col_ty) != col_ty {
            let cast = implicit(col, target(col_ty))?;
            rel = Rel::Project {
                input: Box::new(rel),
                exprs: vec![cast],
            };
        }
        let kind = SubqueryKind::Quantified {
            left: Box::new(left),
            op,
            all,
        };
        Ok(self.subquery(rel, captures, kind, SqlType::Bool, pos))
    }
}
