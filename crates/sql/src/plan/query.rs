//! Queries: WITH, set operations (UNION / INTERSECT / EXCEPT [ALL]), VALUES, and the ORDER BY
//! and LIMIT that apply to their result. A plain SELECT is planned in `select.rs`.

use std::sync::Arc;

use sqlparser::ast::{
    Expr, LimitClause, OrderByExpr, OrderByKind, OrderBySort, Query, SetExpr, SetOperator,
    SetQuantifier, Value, Values,
};

use super::bind::ExprBinder;
use super::coerce::{Bound, common_type, implicit};
use super::names::ident;
use super::rel::{LimitCounts, QueryPlan, Rel, SetOpKind, SortKey};
use super::scope::{Frame, Scope};
use super::select::plan_select;
use super::{BindContext, Cte};
use crate::api::{ColumnInfo, Datum, SqlError, SqlType};
use crate::catalog::ColumnDesc;
use crate::expr::ScalarExpr;

/// Plans a query; `outer` is the enclosing query when this is a subquery.
pub(crate) fn plan_query(
    q: &Query,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<QueryPlan, SqlError> {
    let mark = ctx.ctes.borrow().len();
    let result = plan_with(q, ctx, outer);
    ctx.ctes.borrow_mut().truncate(mark);
    let mut plan = result?;
    plan.locking |= locking_clause(&q.locks)?;
    Ok(plan)
}

/// Whether `FOR UPDATE` / `FOR NO KEY UPDATE` / `FOR SHARE` / `FOR KEY SHARE` asks for row
/// locks. Every strength takes the same exclusive lock (stronger than PostgreSQL's shared
/// modes, never weaker); `NOWAIT` and `SKIP LOCKED` are refused.
fn locking_clause(locks: &[sqlparser::ast::LockClause]) -> Result<bool, SqlError> {
    if locks.iter().any(|l| l.nonblock.is_some()) {
        return Err(SqlError::unsupported(
            "NOWAIT and SKIP LOCKED are not supported: a locking read waits for the lock",
        ));
    }
    Ok(!locks.is_empty())
}

fn plan_with(
    q: &Query,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<QueryPlan, SqlError> {
    if let Some(with) = &q.with {
        if with.recursive {
            return Err(SqlError::unsupported("WITH RECURSIVE is not supported yet"));
        }
        for cte in &with.cte_tables {
            let name = ident(&cte.alias.name);
            let columns = cte.alias.columns.iter().map(|c| ident(&c.name)).collect();
            ctx.ctes.borrow_mut().push(Cte {
                name,
                query: Arc::new((*cte.query).clone()),
                columns,
            });
        }
    }
    if q.fetch.is_some() || q.for_clause.is_some() || !q.pipe_operators.is_empty() {
        return Err(SqlError::unsupported(
            "FETCH and pipe operators are not supported yet",
        ));
    }
    let order_by: &[OrderByExpr] = match &q.order_by {
        None => &[],
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(v) => v,
            OrderByKind::All(_) => {
                return Err(SqlError::unsupported("ORDER BY ALL is not supported"));
            }
        },
    };
    let (limit, offset, counts) = bind_limit(q.limit_clause.as_ref(), ctx)?;
    if let SetExpr::Select(s) = q.body.as_ref() {
        let plan = plan_select(s, order_by, ctx, outer)?;
        return Ok(with_limit(plan, limit, offset, counts));
    }
    let body = plan_set_expr(&q.body, ctx, outer)?;
    let keys = order_output(order_by, &body.columns, ctx)?;
    let rel = if keys.is_empty() {
        body.rel
    } else {
        Rel::Sort {
            input: Box::new(body.rel),
            keys,
        }
    };
    Ok(with_limit(
        QueryPlan {
            rel,
            columns: body.columns,
            locking: false,
        },
        limit,
        offset,
        counts,
    ))
}

fn with_limit(
    plan: QueryPlan,
    limit: Option<u64>,
    offset: u64,
    counts: Option<LimitCounts>,
) -> QueryPlan {
    if limit.is_none() && offset == 0 && counts.is_none() {
        return plan;
    }
    QueryPlan {
        rel: Rel::Limit {
            input: Box::new(plan.rel),
            limit,
            offset,
            counts: counts.map(Box::new),
        },
        locking: plan.locking,
        columns: plan.columns,
    }
}

/// Plans the body of a query without its ORDER BY and LIMIT.
fn plan_set_expr(
    e: &SetExpr,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<QueryPlan, SqlError> {
    match e {
        SetExpr::Select(s) => plan_select(s, &[], ctx, outer),
        SetExpr::Query(q) => plan_query(q, ctx, outer),
        SetExpr::Values(v) => plan_values(v, ctx, outer),
        SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            let kind = match op {
                SetOperator::Union => SetOpKind::Union,
                SetOperator::Intersect => SetOpKind::Intersect,
                SetOperator::Except | SetOperator::Minus => SetOpKind::Except,
            };
            let all = match set_quantifier {
                SetQuantifier::All => true,
                SetQuantifier::Distinct | SetQuantifier::None => false,
                _ => {
                    return Err(SqlError::unsupported(format!(
                        "{} {set_quantifier} is not supported",
                        kind.name()
                    )));
                }
            };
            let l = plan_set_expr(left, ctx, outer)?;
            let r = plan_set_expr(right, ctx, outer)?;
            set_operation(kind, all, l, r)
        }
        _ => Err(SqlError::unsupported(
            "this query form is not supported yet",
        )),
    }
}

/// Combines two inputs of a set operation, converting columns to their common types.
fn set_operation(
    kind: SetOpKind,
    all: bool,
    l: QueryPlan,
    r: QueryPlan,
) -> Result<QueryPlan, SqlError> {
    if l.columns.len() != r.columns.len() {
        return Err(SqlError::syntax(format!(
            "each {} query must have the same number of columns",
            kind.name()
        )));
    }
    let mut types = Vec::with_capacity(l.columns.len());
    for (a, b) in l.columns.iter().zip(&r.columns) {
        let ba = Bound::known(ScalarExpr::Column(0, a.ty), None);
        let bb = Bound::known(ScalarExpr::Column(0, b.ty), None);
        let t = common_type(&[&ba, &bb]).ok_or_else(|| {
            SqlError::datatype_mismatch(format!(
                "{} types {} and {} cannot be matched",
                kind.name(),
                a.ty.pg_name(),
                b.ty.pg_name()
            ))
        })?;
        types.push(t);
    }
    let columns = l
        .columns
        .iter()
        .zip(&types)
        .map(|(c, t)| ColumnInfo {
            name: c.name.clone(),
            ty: *t,
        })
        .collect();
    Ok(QueryPlan {
        rel: Rel::SetOp {
            op: kind,
            all,
            left: Box::new(convert(l, &types)?),
            right: Box::new(convert(r, &types)?),
        },
        locking: false,
        columns,
    })
}

/// `plan`'s rows with columns converted to `types`.
pub(crate) fn convert(plan: QueryPlan, types: &[SqlType]) -> Result<Rel, SqlError> {
    if plan.columns.iter().zip(types).all(|(c, t)| c.ty == *t) {
        return Ok(plan.rel);
    }
    let exprs = plan
        .columns
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (c, t))| implicit(Bound::known(ScalarExpr::Column(i, c.ty), None), *t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rel::Project {
        input: Box::new(plan.rel),
        exprs,
    })
}

/// `VALUES (...), (...)`: columns `column1`, `column2`, ... of the rows' common types.
fn plan_values(
    v: &Values,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<QueryPlan, SqlError> {
    let width = v.rows.first().map_or(0, |r| r.content.len());
    let scope = Scope::empty();
    let mut bound: Vec<Vec<Bound>> = Vec::with_capacity(v.rows.len());
    for r in &v.rows {
        if r.content.len() != width {
            return Err(SqlError::syntax("VALUES lists must all be the same length"));
        }
        let mut b = ExprBinder::new(ctx, &scope, "VALUES").with_outer(outer);
        bound.push(
            r.content
                .iter()
                .map(|e| b.bind(e))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let mut types = Vec::with_capacity(width);
    for c in 0..width {
        let col: Vec<&Bound> = bound.iter().map(|r| &r[c]).collect();
        let t = common_type(&col).ok_or_else(|| {
            let names: Vec<&str> = col.iter().map(|b| b.type_name()).collect();
            SqlError::datatype_mismatch(format!(
                "VALUES types {} cannot be matched",
                names.join(" and ")
            ))
        })?;
        types.push(t);
    }
    let rows = bound
        .into_iter()
        .map(|r| {
            r.into_iter()
                .zip(&types)
                .map(|(b, t)| implicit(b, *t))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let columns = types
        .iter()
        .enumerate()
        .map(|(i, t)| ColumnInfo {
            name: format!("column{}", i + 1),
            ty: *t,
        })
        .collect();
    Ok(QueryPlan {
        rel: Rel::Values { rows, width },
        columns,
        locking: false,
    })
}

/// ORDER BY over the result of a set operation or VALUES: output column names or positions.
fn order_output(
    order_by: &[OrderByExpr],
    columns: &[ColumnInfo],
    ctx: &BindContext<'_>,
) -> Result<Vec<SortKey>, SqlError> {
    let mut keys = Vec::with_capacity(order_by.len());
    for o in order_by {
        let desc = sort_desc(o)?;
        let pos = ctx.position(sqlparser::ast::Spanned::span(&o.expr).start);
        let column =
            if let Some(n) = ordinal(&o.expr) {
                usize::try_from(n - 1)
                    .ok()
                    .filter(|i| *i < columns.len())
                    .ok_or_else(|| {
                        SqlError::new(
                            "42P10",
                            format!("ORDER BY position {n} is not in select list"),
                        )
                        .with_position(pos)
                    })?
            } else if let Expr::Identifier(id) = &o.expr {
                let name = ident(id);
                columns
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| SqlError::undefined_column(&name).with_position(pos))?
            } else {
                return Err(SqlError::unsupported(
                    "invalid UNION/INTERSECT/EXCEPT ORDER BY clause",
                )
                .with_detail("Only result column names can be used, not expressions or functions.")
                .with_position(pos));
            };
        keys.push(SortKey {
            column,
            desc,
            nulls_first: o.options.nulls_first.unwrap_or(desc),
        });
    }
    Ok(keys)
}

/// Whether an ORDER BY item is DESC.
pub(crate) fn sort_desc(o: &OrderByExpr) -> Result<bool, SqlError> {
    match &o.options.sort {
        None | Some(OrderBySort::Asc) => Ok(false),
        Some(OrderBySort::Desc) => Ok(true),
        Some(OrderBySort::Using(_)) => {
            Err(SqlError::unsupported("ORDER BY ... USING is not supported"))
        }
    }
}

/// An integer literal used as a position (`ORDER BY 2`, `GROUP BY 1`).
pub(crate) fn ordinal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Evaluates LIMIT and OFFSET (constant expressions; NULL or ALL means no limit). Expressions
/// of parameters are kept for execution, in the third result.
#[allow(clippy::type_complexity)]
fn bind_limit(
    l: Option<&LimitClause>,
    ctx: &BindContext<'_>,
) -> Result<(Option<u64>, u64, Option<LimitCounts>), SqlError> {
    let (limit, offset) = match l {
        None => (None, None),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::unsupported("LIMIT BY is not supported"));
            }
            (limit.as_ref(), offset.as_ref().map(|o| &o.value))
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => {
            return Err(SqlError::syntax("LIMIT #,# syntax is not supported")
                .with_hint("Use separate LIMIT and OFFSET clauses."));
        }
    };
    let scope = Scope::empty();
    let dynamic = std::cell::RefCell::new(LimitCounts {
        limit: None,
        offset: None,
    });
    let eval = |e: &Expr, what: &'static str| -> Result<Option<i64>, SqlError> {
        let target = ColumnDesc::plain(0, what.to_ascii_lowercase(), SqlType::Int8);
        let mut b = ExprBinder::new(ctx, &scope, what);
        let expr = b.bind(e)?;
        let expr =
            super::bind::assign(expr, &target, "argument of LIMIT/OFFSET").map_err(|_| {
                SqlError::datatype_mismatch(format!("argument of {what} must be type bigint"))
            })?;
        if !expr.is_constant() {
            if !expr.is_row_independent() || expr.has_subquery() {
                return Err(SqlError::unsupported(format!(
                    "{what} must be a constant or a parameter"
                )));
            }
            let mut d = dynamic.borrow_mut();
            if what == "LIMIT" {
                d.limit = Some(expr);
            } else {
                d.offset = Some(expr);
            }
            return Ok(None);
        }
        match expr.eval_const()? {
            Datum::Int(v) => Ok(Some(v)),
            _ => Ok(None),
        }
    };
    let limit = match limit {
        // `LIMIT ALL` parses as no limit expression.
        Some(e) => eval(e, "LIMIT")?,
        None => None,
    };
    if limit.is_some_and(|v| v < 0) {
        return Err(SqlError::new("2201W", "LIMIT must not be negative"));
    }
    let offset = match offset {
        Some(e) => eval(e, "OFFSET")?.unwrap_or(0),
        None => 0,
    };
    if offset < 0 {
        return Err(SqlError::new("2201X", "OFFSET must not be negative"));
    }
    let dynamic = dynamic.into_inner();
    let counts = (dynamic.limit.is_some() || dynamic.offset.is_some()).then_some(dynamic);
    Ok((limit.map(i64::unsigned_abs), offset.unsigned_abs(), counts))
}
