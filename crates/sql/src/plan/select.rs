//! SELECT: FROM and WHERE (via `from.rs` and `join.rs`), GROUP BY / aggregates, HAVING,
//! window functions, the select list, DISTINCT [ON] and ORDER BY. LIMIT and OFFSET are applied
//! by the caller (`query.rs`).
//!
//! Operator order: FROM/WHERE -> aggregate -> HAVING -> window -> project (visible columns,
//! then hidden ORDER BY keys) -> DISTINCT -> sort -> drop hidden columns.

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, OrderByExpr, Select, SelectItem, SelectItemQualifiedWildcardKind,
};

use super::BindContext;
use super::access::conjuncts;
use super::aggregate::{AggState, contains_aggregate};
use super::bind::ExprBinder;
use super::from::bind_from;
use super::join;
use super::names::{column_label, ident};
use super::query::{ordinal, sort_desc};
use super::rel::{Access, QueryPlan, Rel, SortKey};
use super::scope::{Frame, Lookup, Scope};
use super::window::{self, WINDOW_BASE, WindowState};
use crate::api::{ColumnInfo, SqlError};
use crate::expr::ScalarExpr;

/// Output expressions with their result columns (used by RETURNING).
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    pub exprs: Vec<ScalarExpr>,
    pub columns: Vec<ColumnInfo>,
}

/// One select-list item: an expression, or a column `*` expanded to (by position, since `*`
/// may include columns no name reaches unambiguously).
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Expr(Box<Expr>),
    Column(usize),
}

/// Binds a select-list item.
fn bind_item(b: &mut ExprBinder<'_>, item: &Item) -> Result<ScalarExpr, SqlError> {
    match item {
        Item::Expr(e) => b.bind_typed(e),
        Item::Column(i) => {
            let ty = b.scope.cols[*i].ty;
            let col = ScalarExpr::Column(*i, ty);
            match &b.agg {
                None => Ok(col),
                Some(state) => match state.groups.iter().position(|g| *g == col) {
                    Some(g) => Ok(ScalarExpr::Column(g, ty)),
                    None => {
                        let c = &b.scope.cols[*i];
                        let shown = match &c.qualifier {
                            Some(q) => format!("{q}.{}", c.name),
                            None => c.name.clone(),
                        };
                        Err(SqlError::new(
                            "42803",
                            format!(
                                "column \"{shown}\" must appear in the GROUP BY clause or be used in an aggregate function"
                            ),
                        ))
                    }
                },
            }
        }
    }
}

/// Plans one SELECT block with the ORDER BY of its query.
pub(crate) fn plan_select(
    select: &Select,
    order_by: &[OrderByExpr],
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<QueryPlan, SqlError> {
    check_select_clauses(select)?;
    let from = bind_from(&select.from, ctx, outer)?;
    let scope = &from.scope;
    let mut conds = from.conds;
    if let Some(w) = &select.selection {
        let f = ExprBinder::new(ctx, scope, "WHERE")
            .with_outer(outer)
            .bind_bool(w, "WHERE")?;
        conjuncts(f, &mut conds);
    }

    let items = expand_items(&select.projection, scope)?;
    let groups = bind_group_by(&select.group_by, &items, ctx, scope, outer)?;
    let item_has_agg = |i: &(Item, String)| matches!(&i.0, Item::Expr(e) if contains_aggregate(e));
    let is_agg = !groups.is_empty()
        || select.having.is_some()
        || items.iter().any(item_has_agg)
        || order_by.iter().any(|o| contains_aggregate(&o.expr));
    let mut binder = ExprBinder::new(ctx, scope, "SELECT").with_outer(outer);
    if is_agg {
        binder.agg = Some(AggState {
            groups,
            aggs: vec![],
        });
    }
    binder.windows = Some(WindowState::default());

    let mut projection = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    for (item, name) in &items {
        let expr = bind_item(&mut binder, item)?;
        columns.push(ColumnInfo {
            name: name.clone(),
            ty: expr.ty(),
        });
        projection.push(expr);
    }
    let having = match &select.having {
        Some(h) => {
            let windows = binder.windows.take();
            let r = binder.bind_bool(h, "HAVING");
            binder.windows = windows;
            Some(r?)
        }
        None => None,
    };
    let distinct_on = match &select.distinct {
        Some(Distinct::On(exprs)) => Some(exprs),
        _ => None,
    };
    let distinct = matches!(select.distinct, Some(Distinct::Distinct | Distinct::On(_)));
    // DISTINCT ON expressions lead the sort, as PostgreSQL requires of ORDER BY.
    let mut on_columns = Vec::new();
    if let Some(exprs) = distinct_on {
        for e in exprs {
            let bound = binder.bind_typed(e)?;
            let i = match projection.iter().position(|p| *p == bound) {
                Some(i) => i,
                None => {
                    projection.push(bound);
                    projection.len() - 1
                }
            };
            on_columns.push(i);
        }
    }
    let mut order = Vec::with_capacity(order_by.len());
    for o in order_by {
        let desc = sort_desc(o)?;
        let column = order_column(
            &o.expr,
            &columns,
            &mut projection,
            &mut binder,
            distinct && distinct_on.is_none(),
            ctx,
        )?;
        order.push(SortKey {
            column,
            desc,
            nulls_first: o.options.nulls_first.unwrap_or(desc),
        });
    }

    let agg_state = binder.agg.take();
    let window_state = binder.windows.take().unwrap_or_default();
    // Which FROM columns the statement reads (for covering indexes).
    let mut used_cols = Vec::new();
    for c in &conds {
        c.columns(&mut used_cols);
    }
    match &agg_state {
        Some(s) => {
            for g in &s.groups {
                g.columns(&mut used_cols);
            }
            for a in &s.aggs {
                for e in a.exprs() {
                    e.columns(&mut used_cols);
                }
            }
        }
        None => {
            for p in &projection {
                p.columns(&mut used_cols);
            }
            window_state.columns(&mut used_cols);
        }
    }
    let mut used = vec![false; scope.len()];
    for c in used_cols {
        if c < WINDOW_BASE && c < used.len() {
            used[c] = true;
        }
    }

    let mut rel = if from.units.is_empty() {
        let one = Rel::Values {
            rows: vec![vec![]],
            width: 0,
        };
        one.filtered_all(conds)
    } else {
        join::build(from.units, conds, Some(&used))?
    };
    if let Some(s) = agg_state {
        let types: Vec<_> = scope.cols.iter().map(|c| c.ty).collect();
        rel = s.into_rel(rel, &types);
    }
    if let Some(h) = having {
        rel = rel.filtered(h);
    }
    if !window_state.is_empty() {
        let base = rel.width();
        for p in &mut projection {
            window::place(p, base);
        }
        rel = Rel::Window {
            input: Box::new(rel),
            plan: window_state.into_plan(base),
        };
    }
    let types: Vec<_> = columns.iter().map(|c| c.ty).collect();
    rel = rel.project(projection);
    if distinct_on.is_some() {
        // Sort by the DISTINCT ON keys (then ORDER BY), keep the first row of each group.
        let mut keys: Vec<SortKey> = Vec::new();
        for (i, &c) in on_columns.iter().enumerate() {
            match order.get(i) {
                Some(k) if k.column == c => keys.push(k.clone()),
                Some(_) => {
                    return Err(SqlError::new(
                        "42P10",
                        "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
                    ));
                }
                None => keys.push(SortKey {
                    column: c,
                    desc: false,
                    nulls_first: false,
                }),
            }
        }
        keys.extend(order.iter().skip(on_columns.len()).cloned());
        rel = Rel::Sort {
            input: Box::new(rel),
            keys,
        };
        rel = Rel::Distinct {
            input: Box::new(rel),
            on: Some(on_columns),
        };
    } else {
        if distinct {
            rel = Rel::Distinct {
                input: Box::new(rel),
                on: None,
            };
        }
        if !order.is_empty() && !in_key_order(&rel, &order) {
            rel = Rel::Sort {
                input: Box::new(rel),
                keys: order,
            };
        }
    }
    Ok(QueryPlan {
        rel: rel.truncated(columns.len(), &types),
        columns,
        locking: false,
    })
}

/// Whether `rel` already yields its rows in the order of `keys`: a scan of the primary index
/// (rows come in primary-key order: its spans are read in key order), under filters and
/// plain column projections, where the ascending sort keys are the primary-key columns that
/// follow those its condition fixes to one value (fixed columns may appear anywhere among
/// them: they are constant). Such an ORDER BY needs no Sort, so a LIMIT above it stops the scan
/// after the rows it needs (`ORDER BY pk LIMIT 1` reads one row).
fn in_key_order(rel: &Rel, keys: &[SortKey]) -> bool {
    if keys.iter().any(|k| k.desc || k.nulls_first) {
        return false;
    }
    let mut cols: Vec<usize> = keys.iter().map(|k| k.column).collect();
    let mut r = rel;
    let scan = loop {
        match r {
            Rel::Project { input, exprs } => {
                for c in cols.iter_mut() {
                    match exprs.get(*c) {
                        Some(ScalarExpr::Column(i, _)) => *c = *i,
                        _ => return false,
                    }
                }
                r = input;
            }
            Rel::Filter { input, .. } => r = input,
            Rel::Scan(s) => break s,
            _ => return false,
        }
    };
    if scan.access != Access::Primary {
        return false;
    }
    let pk = &scan.table.pk;
    let fixed = crate::plan::keyrange::fixed_prefix(&scan.table, pk, scan.filter.as_ref());
    let rest: Vec<usize> = cols
        .into_iter()
        .filter(|c| !pk[..fixed].contains(c))
        .collect();
    pk[fixed..].starts_with(&rest)
}

/// Rejects SELECT clauses of other dialects and features not implemented yet.
fn check_select_clauses(s: &Select) -> Result<(), SqlError> {
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

/// The select list as (item, result column name) pairs, with `*` and `t.*` expanded into the
/// visible columns.
pub(crate) fn expand_items(
    items: &[SelectItem],
    scope: &Scope,
) -> Result<Vec<(Item, String)>, SqlError> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::UnnamedExpr(e) => {
                out.push((Item::Expr(Box::new(e.clone())), column_label(e)))
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                out.push((Item::Expr(Box::new(expr.clone())), ident(alias)))
            }
            SelectItem::Wildcard(opts) => {
                check_wildcard_options(opts)?;
                if scope.cols.is_empty() {
                    return Err(SqlError::syntax(
                        "SELECT * with no tables specified is not valid",
                    ));
                }
                for i in scope.star() {
                    out.push((Item::Column(i), scope.cols[i].name.clone()));
                }
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
                if !scope.has_qualifier(&q) {
                    return Err(SqlError::new(
                        "42P01",
                        format!("missing FROM-clause entry for table \"{q}\""),
                    ));
                }
                for (i, c) in scope.cols.iter().enumerate() {
                    let hidden_rowid = c.hidden && !c.qualified_only;
                    if c.qualifier.as_deref() == Some(q.as_str()) && !hidden_rowid {
                        out.push((Item::Column(i), c.name.clone()));
                    }
                }
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

/// Binds GROUP BY: positions and output column names refer to select list items, as in
/// PostgreSQL; anything else is an expression over the input rows.
fn bind_group_by(
    g: &GroupByExpr,
    items: &[(Item, String)],
    ctx: &BindContext<'_>,
    scope: &Scope,
    outer: Option<&Frame<'_>>,
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
        let target: Item = if let Some(n) = ordinal(e) {
            let i = usize::try_from(n - 1)
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(|| {
                    SqlError::new(
                        "42P10",
                        format!("GROUP BY position {n} is not in select list"),
                    )
                })?;
            items[i].0.clone()
        } else if let Expr::Identifier(id) = e
            && matches!(
                scope.lookup(std::slice::from_ref(id), ctx),
                Ok(Lookup::Missing { .. })
            )
            && let Some((item, _)) = items.iter().find(|(_, name)| *name == ident(id))
        {
            item.clone()
        } else {
            Item::Expr(Box::new(e.clone()))
        };
        if matches!(&target, Item::Expr(t) if contains_aggregate(t)) {
            return Err(SqlError::new(
                "42803",
                "aggregate functions are not allowed in GROUP BY",
            ));
        }
        let mut b = ExprBinder::new(ctx, scope, "GROUP BY").with_outer(outer);
        let bound = bind_item(&mut b, &target)?;
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
            [first, rest @ ..] => {
                if rest.iter().all(|&r| projection[r] == projection[*first]) {
                    return Ok(*first);
                }
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

/// Binds a RETURNING list over the rows of `scope` (no aggregates).
pub(crate) fn bind_returning(
    items: &[SelectItem],
    scope: &Scope,
    ctx: &BindContext<'_>,
) -> Result<Projection, SqlError> {
    let items = expand_items(items, scope)?;
    let mut binder = ExprBinder::new(ctx, scope, "RETURNING");
    let mut exprs = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    for (item, name) in &items {
        let expr = bind_item(&mut binder, item)?;
        columns.push(ColumnInfo {
            name: name.clone(),
            ty: expr.ty(),
        });
        exprs.push(expr);
    }
    Ok(Projection { exprs, columns })
}
