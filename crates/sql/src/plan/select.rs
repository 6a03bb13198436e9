//! SELECT: FROM (one table or none), WHERE, GROUP BY / aggregates, HAVING, the select list,
//! DISTINCT, ORDER BY, LIMIT / OFFSET.

use std::sync::Arc;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, Ident, LimitClause, OrderByKind, OrderBySort, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableFactor, Value,
};

use super::aggregate::{AggState, AggregatePlan, contains_aggregate};
use super::bind::ExprBinder;
use super::keyrange::{self, KeyRange};
use super::names::{column_label, ident};
use super::scope::Scope;
use super::{BindContext, Tables, lookup_table};
use crate::api::{ColumnInfo, Datum, SqlError, SqlType};
use crate::catalog::{ColumnDesc, TableDesc};
use crate::expr::ScalarExpr;

/// Reading one table: which keys, and which rows among them.
#[derive(Debug, Clone)]
pub(crate) struct ScanPlan {
    /// The table.
    pub table: Arc<TableDesc>,
    /// The primary-key ranges that can hold matching rows.
    pub range: KeyRange,
    /// The full WHERE condition, re-checked on every row read.
    pub filter: Option<ScalarExpr>,
}

/// One ORDER BY key: a position in the projected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub column: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Output expressions with their result columns (used by RETURNING).
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    pub exprs: Vec<ScalarExpr>,
    pub columns: Vec<ColumnInfo>,
}

/// A planned SELECT. Execution order: scan (or one empty row) -> filter -> aggregate -> having
/// -> project -> distinct -> sort -> offset/limit -> drop hidden sort columns.
#[derive(Debug, Clone)]
pub(crate) struct SelectPlan {
    /// The table read, if any.
    pub scan: Option<ScanPlan>,
    /// WHERE of a query without FROM.
    pub filter: Option<ScalarExpr>,
    /// Aggregation, if this is an aggregate query.
    pub aggregate: Option<AggregatePlan>,
    /// HAVING, over aggregate rows.
    pub having: Option<ScalarExpr>,
    /// Output expressions: the visible columns, then hidden ORDER BY keys.
    pub projection: Vec<ScalarExpr>,
    /// The visible result columns.
    pub columns: Vec<ColumnInfo>,
    /// SELECT DISTINCT.
    pub distinct: bool,
    /// ORDER BY keys over the projected row.
    pub order_by: Vec<SortKey>,
    /// OFFSET.
    pub offset: u64,
    /// LIMIT.
    pub limit: Option<u64>,
}

impl SelectPlan {
    /// When rows flow straight from the scan to the output, the scan can stop after this many
    /// matching rows.
    pub(crate) fn scan_stop_after(&self) -> Option<usize> {
        if self.aggregate.is_some() || self.distinct || !self.order_by.is_empty() {
            return None;
        }
        let n = self.limit?.saturating_add(self.offset);
        usize::try_from(n).ok()
    }
}

/// Plans a query.
pub(crate) fn plan_query(
    q: &Query,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<SelectPlan, SqlError> {
    if q.with.is_some() {
        return Err(SqlError::unsupported("WITH queries are not supported yet"));
    }
    if q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return Err(SqlError::unsupported(
            "FETCH, FOR UPDATE/SHARE and pipe operators are not supported yet",
        ));
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { .. } => {
            return Err(SqlError::unsupported(
                "UNION, INTERSECT and EXCEPT are not supported yet",
            ));
        }
        SetExpr::Values(_) => {
            return Err(SqlError::unsupported(
                "VALUES as a query is not supported yet",
            ));
        }
        _ => {
            return Err(SqlError::unsupported(
                "this query form is not supported yet",
            ));
        }
    };
    check_select_clauses(select)?;
    let scope = from_scope(select, ctx, tables)?;

    // WHERE.
    let filter = match &select.selection {
        Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w, "WHERE")?),
        None => None,
    };

    let items = expand_items(&select.projection, &scope)?;
    let order_exprs = match &q.order_by {
        None => vec![],
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(v) => v.clone(),
            OrderByKind::All(_) => {
                return Err(SqlError::unsupported("ORDER BY ALL is not supported"));
            }
        },
    };

    // GROUP BY and aggregates.
    let groups = bind_group_by(&select.group_by, &items, ctx, &scope)?;
    let is_agg = !groups.is_empty()
        || select.having.is_some()
        || items.iter().any(|(e, _)| contains_aggregate(e))
        || order_exprs.iter().any(|o| contains_aggregate(&o.expr));
    let mut binder = ExprBinder::new(ctx, &scope, "SELECT");
    if is_agg {
        binder.agg = Some(AggState {
            groups,
            aggs: vec![],
        });
    }

    let mut projection = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    for (e, name) in &items {
        let expr = binder.bind_typed(e)?;
        columns.push(ColumnInfo {
            name: name.clone(),
            ty: expr.ty(),
        });
        projection.push(expr);
    }
    let having = match &select.having {
        Some(h) => Some(binder.bind_bool(h, "HAVING")?),
        None => None,
    };
    let distinct = matches!(select.distinct, Some(Distinct::Distinct));

    let mut order_by = Vec::with_capacity(order_exprs.len());
    for o in &order_exprs {
        let desc = match &o.options.sort {
            None | Some(OrderBySort::Asc) => false,
            Some(OrderBySort::Desc) => true,
            Some(OrderBySort::Using(_)) => {
                return Err(SqlError::unsupported("ORDER BY ... USING is not supported"));
            }
        };
        let column = order_column(
            &o.expr,
            &columns,
            &mut projection,
            &mut binder,
            distinct,
            ctx,
        )?;
        order_by.push(SortKey {
            column,
            desc,
            nulls_first: o.options.nulls_first.unwrap_or(desc),
        });
    }

    let (limit, offset) = bind_limit(q.limit_clause.as_ref(), ctx)?;
    let aggregate = binder.agg.take().map(|s| AggregatePlan {
        groups: s.groups,
        aggs: s.aggs,
    });
    let (scan, filter) = match scope.table_desc() {
        Some(t) => {
            let range = keyrange::extract(t, filter.as_ref());
            (
                Some(ScanPlan {
                    table: t.clone(),
                    range,
                    filter,
                }),
                None,
            )
        }
        None => (None, filter),
    };
    // bind_limit rejects negative values, so these conversions are lossless.
    let (offset, limit) = (offset.unsigned_abs(), limit.map(i64::unsigned_abs));
    Ok(SelectPlan {
        scan,
        filter,
        aggregate,
        having,
        projection,
        columns,
        distinct,
        order_by,
        offset,
        limit,
    })
}

/// Rejects SELECT clauses of other dialects and features not implemented yet.
fn check_select_clauses(s: &Select) -> Result<(), SqlError> {
    if matches!(s.distinct, Some(Distinct::On(_))) {
        return Err(SqlError::unsupported(
            "SELECT DISTINCT ON is not supported yet",
        ));
    }
    if s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || !s.named_window.is_empty()
        || s.qualify.is_some()
        || s.exclude.is_some()
        || s.value_table_mode.is_some()
    {
        return Err(SqlError::unsupported("this SELECT clause is not supported"));
    }
    Ok(())
}

/// The scope of the FROM clause: one table (with an optional alias) or nothing.
fn from_scope(s: &Select, ctx: &BindContext<'_>, tables: &Tables) -> Result<Scope, SqlError> {
    match s.from.as_slice() {
        [] => Ok(Scope::empty()),
        [twj] if twj.joins.is_empty() => match &twj.relation {
            TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                partitions,
                ..
            } if with_hints.is_empty() && partitions.is_empty() => {
                let table = lookup_table(name, ctx, tables)?;
                let visible = match alias {
                    Some(a) if !a.columns.is_empty() => {
                        return Err(SqlError::unsupported(
                            "column aliases in FROM are not supported yet",
                        ));
                    }
                    Some(a) => ident(&a.name),
                    None => table.name.clone(),
                };
                Ok(Scope::table(visible, table))
            }
            TableFactor::Derived { .. } => Err(SqlError::unsupported(
                "subqueries in FROM are not supported yet",
            )),
            _ => Err(SqlError::unsupported("this FROM item is not supported yet")),
        },
        _ => Err(SqlError::unsupported("joins are not supported yet")),
    }
}

/// The select list as (expression, result column name) pairs, with `*` expanded into the
/// visible columns (quoted identifiers, so names survive case folding).
fn expand_items(items: &[SelectItem], scope: &Scope) -> Result<Vec<(Expr, String)>, SqlError> {
    let mut out = Vec::new();
    let star = |out: &mut Vec<(Expr, String)>| -> Result<(), SqlError> {
        let t = scope
            .table_desc()
            .ok_or_else(|| SqlError::syntax("SELECT * with no tables specified is not valid"))?;
        for c in t.columns.iter().filter(|c| !c.hidden) {
            out.push((
                Expr::Identifier(Ident::with_quote('"', c.name.clone())),
                c.name.clone(),
            ));
        }
        Ok(())
    };
    for item in items {
        match item {
            SelectItem::UnnamedExpr(e) => out.push((e.clone(), column_label(e))),
            SelectItem::ExprWithAlias { expr, alias } => out.push((expr.clone(), ident(alias))),
            SelectItem::Wildcard(opts) => {
                check_wildcard_options(opts)?;
                star(&mut out)?;
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                opts,
            ) => {
                check_wildcard_options(opts)?;
                let q = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(ident)
                    .unwrap_or_default();
                if scope.relation_name() != Some(q.as_str()) {
                    return Err(SqlError::new(
                        "42P01",
                        format!("missing FROM-clause entry for table \"{q}\""),
                    ));
                }
                star(&mut out)?;
            }
            _ => {
                return Err(SqlError::unsupported(
                    "this select list item is not supported yet",
                ));
            }
        }
    }
    Ok(out)
}

fn check_wildcard_options(o: &sqlparser::ast::WildcardAdditionalOptions) -> Result<(), SqlError> {
    if o.opt_ilike.is_some()
        || o.opt_exclude.is_some()
        || o.opt_except.is_some()
        || o.opt_replace.is_some()
        || o.opt_rename.is_some()
    {
        return Err(SqlError::unsupported("options of * are not supported"));
    }
    Ok(())
}

/// An integer literal used as a position (`ORDER BY 2`, `GROUP BY 1`).
fn ordinal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Binds GROUP BY: positions and output column names refer to select list items, as in
/// PostgreSQL; anything else is an expression over the input rows.
fn bind_group_by(
    g: &GroupByExpr,
    items: &[(Expr, String)],
    ctx: &BindContext<'_>,
    scope: &Scope,
) -> Result<Vec<ScalarExpr>, SqlError> {
    let exprs = match g {
        GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => exprs,
        _ => {
            return Err(SqlError::unsupported(
                "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS are not supported yet",
            ));
        }
    };
    let mut out = Vec::new();
    for e in exprs {
        let target = if let Some(n) = ordinal(e) {
            let i = usize::try_from(n - 1)
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(|| {
                    SqlError::new(
                        "42P10",
                        format!("GROUP BY position {n} is not in select list"),
                    )
                })?;
            &items[i].0
        } else if let Expr::Identifier(id) = e
            && scope.resolve(std::slice::from_ref(id), ctx).is_err()
            && let Some((item, _)) = items.iter().find(|(_, name)| *name == ident(id))
        {
            item
        } else {
            e
        };
        if contains_aggregate(target) {
            return Err(SqlError::new(
                "42803",
                "aggregate functions are not allowed in GROUP BY",
            ));
        }
        let bound = ExprBinder::new(ctx, scope, "GROUP BY").bind_typed(target)?;
        if !out.contains(&bound) {
            out.push(bound);
        }
    }
    Ok(out)
}

/// Resolves one ORDER BY item to a position in the projected row, adding a hidden column when
/// it is not in the select list.
fn order_column(
    e: &Expr,
    columns: &[ColumnInfo],
    projection: &mut Vec<ScalarExpr>,
    binder: &mut ExprBinder<'_>,
    distinct: bool,
    ctx: &BindContext<'_>,
) -> Result<usize, SqlError> {
    let pos = ctx.position(sqlparser::ast::Spanned::span(e).start);
    if let Some(n) = ordinal(e) {
        return usize::try_from(n - 1)
            .ok()
            .filter(|i| *i < columns.len())
            .ok_or_else(|| {
                SqlError::new(
                    "42P10",
                    format!("ORDER BY position {n} is not in select list"),
                )
                .with_position(pos)
            });
    }
    if let Expr::Identifier(id) = e {
        let name = ident(id);
        let hits: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].name == name)
            .collect();
        match hits.as_slice() {
            [i] => return Ok(*i),
            [_, _, ..] => {
                return Err(
                    SqlError::new("42702", format!("ORDER BY \"{name}\" is ambiguous"))
                        .with_position(pos),
                );
            }
            [] => {}
        }
    }
    let bound = binder.bind_typed(e)?;
    if let Some(i) = projection[..columns.len()].iter().position(|p| *p == bound) {
        return Ok(i);
    }
    if distinct {
        return Err(SqlError::new(
            "42P10",
            "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
        )
        .with_position(pos));
    }
    projection.push(bound);
    Ok(projection.len() - 1)
}

/// Evaluates LIMIT and OFFSET (constant expressions; NULL or ALL means no limit).
fn bind_limit(
    l: Option<&LimitClause>,
    ctx: &BindContext<'_>,
) -> Result<(Option<i64>, i64), SqlError> {
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
    let eval = |e: &Expr, what: &'static str| -> Result<Option<i64>, SqlError> {
        let target = ColumnDesc {
            id: 0,
            name: what.to_ascii_lowercase(),
            ty: SqlType::Int8,
            nullable: true,
            max_len: None,
            default_expr: None,
            hidden: false,
        };
        let mut b = ExprBinder::new(ctx, &scope, what);
        let expr = b.bind(e)?;
        let expr =
            super::bind::assign(expr, &target, "argument of LIMIT/OFFSET").map_err(|_| {
                SqlError::datatype_mismatch(format!("argument of {what} must be type bigint"))
            })?;
        match expr.eval(&[])? {
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
    Ok((limit, offset))
}

/// Binds a RETURNING list over full table rows (no aggregates).
pub(crate) fn bind_returning(
    items: &[SelectItem],
    scope: &Scope,
    ctx: &BindContext<'_>,
) -> Result<Projection, SqlError> {
    let items = expand_items(items, scope)?;
    let mut binder = ExprBinder::new(ctx, scope, "RETURNING");
    let mut exprs = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    for (e, name) in &items {
        let expr = binder.bind_typed(e)?;
        columns.push(ColumnInfo {
            name: name.clone(),
            ty: expr.ty(),
        });
        exprs.push(expr);
    }
    Ok(Projection { exprs, columns })
}
