//! The FROM clause: tables, views, CTEs, derived tables and joins become *units* laid out side
//! by side in one row (FROM order), plus the conditions that relate them.
//!
//! Inner joins (`JOIN ... ON`, `CROSS JOIN`, commas) are not planned here: their units and ON
//! conditions go to `join.rs` together with WHERE, which orders them. An outer join needs its
//! inputs fixed, so when one appears, everything to its left in the same FROM item is planned
//! into one unit first, and the outer join becomes a single unit itself.

use std::sync::Arc;

use sqlparser::ast::{
    JoinConstraint, JoinOperator, ObjectName, TableAlias, TableFactor, TableWithJoins,
};

use super::access::{and_all, conjuncts, plan_scan, shifted};
use super::bind::ExprBinder;
use super::coerce::comparable_pair;
use super::join;
use super::names::ident;
use super::pushdown::{Side, outer_join_rows, restrictions, shifted_up, split_for};
use super::query::plan_query;
use super::rel::{JoinKind, JoinPlan, QueryPlan, Rel};
use super::scope::{Frame, Scope, ScopeColumn};
use super::{BindContext, Relation, lookup_relation};
use crate::api::{SqlError, SqlType};
use crate::catalog::TableDesc;
use crate::expr::{CmpOp, Func, ScalarExpr};

/// Where a unit's rows come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A table, scanned with the conditions pushed to it.
    Table(Arc<TableDesc>),
    /// Anything already planned (derived tables, views, CTEs, outer joins).
    Rel(Rel),
}

/// One input of the FROM clause's row.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub source: Source,
    /// Its first column's position in the FROM row.
    pub offset: usize,
    /// Its number of columns.
    pub width: usize,
    /// Its column types.
    pub types: Vec<SqlType>,
}

/// A bound FROM clause.
#[derive(Debug, Default)]
pub(crate) struct FromClause {
    pub units: Vec<Unit>,
    pub scope: Scope,
    /// Inner-join conditions, over the FROM row.
    pub conds: Vec<ScalarExpr>,
    /// Inner-join conditions of the current FROM item that read no column (`ON FALSE`): an
    /// outer join later in the item takes them into its left side, which they filter; at the
    /// end of the item they join `conds`.
    item_consts: Vec<ScalarExpr>,
}

impl FromClause {
    /// Adds a unit; two FROM items may not be called the same.
    fn add(&mut self, source: Source, scope: Scope) -> Result<(), SqlError> {
        if let Some(q) = scope.cols.first().and_then(|c| c.qualifier.clone())
            && self.scope.has_qualifier(&q)
        {
            return Err(SqlError::new(
                "42712",
                format!("table name \"{q}\" specified more than once"),
            ));
        }
        self.push(source, scope);
        Ok(())
    }

    fn push(&mut self, source: Source, scope: Scope) {
        let types = scope.cols.iter().map(|c| c.ty).collect();
        self.units.push(Unit {
            source,
            offset: self.scope.len(),
            width: scope.len(),
            types,
        });
        self.scope.extend(scope);
    }
}

/// Binds a FROM clause; `outer` is the enclosing query when this is a subquery.
pub(crate) fn bind_from(
    from: &[TableWithJoins],
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<FromClause, SqlError> {
    let mut fc = FromClause::default();
    for twj in from {
        bind_item(&mut fc, twj, ctx, outer)?;
    }
    Ok(fc)
}

/// The FROM row of an UPDATE or DELETE: the target table, then the FROM / USING tables.
pub(crate) fn bind_dml_from(
    target: &Arc<TableDesc>,
    visible: &str,
    extra: &[TableWithJoins],
    ctx: &BindContext<'_>,
) -> Result<FromClause, SqlError> {
    let mut fc = FromClause::default();
    fc.push(Source::Table(target.clone()), Scope::table(visible, target));
    for twj in extra {
        bind_item(&mut fc, twj, ctx, None)?;
    }
    Ok(fc)
}

fn bind_item(
    fc: &mut FromClause,
    twj: &TableWithJoins,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<(), SqlError> {
    let group_start = fc.units.len();
    let (source, scope) = bind_factor(&twj.relation, ctx, outer)?;
    fc.add(source, scope)?;
    for j in &twj.joins {
        let (kind, constraint) = match &j.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::CrossJoin(c) => {
                (None, c)
            }
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (Some(JoinKind::Left), c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Some(JoinKind::Left), c),
            JoinOperator::FullOuter(c) => (Some(JoinKind::Full), c),
            _ => return Err(SqlError::unsupported("this kind of join is not supported")),
        };
        let right_join = matches!(
            j.join_operator,
            JoinOperator::Right(_) | JoinOperator::RightOuter(_)
        );
        let left_scope_end = fc.scope.len();
        let (source, scope) = bind_factor(&j.relation, ctx, outer)?;
        match kind {
            None => {
                fc.add(source, scope)?;
                let conds =
                    bind_constraint(fc, constraint, left_scope_end, false, None, ctx, outer)?;
                for c in conds {
                    let mut cols = Vec::new();
                    c.columns(&mut cols);
                    if cols.is_empty() {
                        fc.item_consts.push(c);
                    } else {
                        fc.conds.push(c);
                    }
                }
            }
            Some(kind) => {
                outer_join(
                    fc,
                    group_start,
                    kind,
                    right_join,
                    source,
                    scope,
                    constraint,
                    ctx,
                    outer,
                )?;
            }
        }
    }
    let consts = std::mem::take(&mut fc.item_consts);
    fc.conds.extend(consts);
    Ok(())
}

/// The conditions of a join constraint over the FROM row, with `USING` / `NATURAL` columns
/// merged in the scope: the copies become qualified-only, and the merged column is the left
/// copy, the right copy (RIGHT JOIN) or a COALESCE of both appended by the caller (FULL JOIN,
/// signalled by returning the pairs through `full_pairs`).
#[allow(clippy::too_many_arguments)]
fn bind_constraint(
    fc: &mut FromClause,
    constraint: &JoinConstraint,
    right_start: usize,
    right_join: bool,
    mut full_pairs: Option<&mut Vec<(usize, usize, String)>>,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<Vec<ScalarExpr>, SqlError> {
    let names: Vec<String> = match constraint {
        JoinConstraint::None => return Ok(vec![]),
        JoinConstraint::On(e) => {
            let cond = ExprBinder::new(ctx, &fc.scope, "JOIN/ON")
                .with_outer(outer)
                .bind_bool(e, "JOIN/ON")?;
            let mut out = Vec::new();
            conjuncts(cond, &mut out);
            return Ok(out);
        }
        JoinConstraint::Using(cols) => cols.iter().map(object_ident).collect::<Result<_, _>>()?,
        JoinConstraint::UsingAlias(..) => {
            return Err(SqlError::unsupported("USING ... AS is not supported"));
        }
        JoinConstraint::Natural => {
            let right: Vec<String> = fc.scope.cols[right_start..]
                .iter()
                .filter(|c| !c.hidden)
                .map(|c| c.name.clone())
                .collect();
            fc.scope.cols[..right_start]
                .iter()
                .filter(|c| !c.hidden && !c.qualified_only && right.contains(&c.name))
                .map(|c| c.name.clone())
                .collect()
        }
    };
    let mut out = Vec::new();
    for name in names {
        let find = |range: std::ops::Range<usize>, side: &str| -> Result<usize, SqlError> {
            let hits: Vec<usize> = range
                .filter(|&i| !fc.scope.cols[i].qualified_only && fc.scope.cols[i].name == name)
                .collect();
            match hits.as_slice() {
                [i] => Ok(*i),
                [] => Err(SqlError::new(
                    "42703",
                    format!(
                        "column \"{name}\" specified in USING clause does not exist in {side} table"
                    ),
                )),
                _ => Err(SqlError::new(
                    "42702",
                    format!("common column name \"{name}\" appears more than once in {side} table"),
                )),
            }
        };
        let l = find(0..right_start, "left")?;
        let r = find(right_start..fc.scope.len(), "right")?;
        let (lt, rt) = (fc.scope.cols[l].ty, fc.scope.cols[r].ty);
        let (le, re) = comparable_pair(
            super::coerce::Bound::known(ScalarExpr::Column(l, lt), None),
            super::coerce::Bound::known(ScalarExpr::Column(r, rt), None),
            "=",
        )?;
        out.push(ScalarExpr::Compare {
            op: CmpOp::Eq,
            left: Box::new(le),
            right: Box::new(re),
        });
        match full_pairs.as_deref_mut() {
            Some(pairs) => {
                for i in [l, r] {
                    fc.scope.cols[i].qualified_only = true;
                    fc.scope.cols[i].hidden = true;
                }
                pairs.push((l, r, name));
            }
            None => {
                // The merged column is the left copy (the right one for RIGHT JOIN); `*`
                // lists it first.
                let (keep, drop) = if right_join { (r, l) } else { (l, r) };
                fc.scope.cols[keep].qualified_only = false;
                fc.scope.cols[keep].hidden = false;
                fc.scope.cols[drop].qualified_only = true;
                fc.scope.cols[drop].hidden = true;
                if !fc.scope.star_first.contains(&keep) {
                    fc.scope.star_first.push(keep);
                }
            }
        }
    }
    Ok(out)
}

fn object_ident(n: &ObjectName) -> Result<String, SqlError> {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .ok_or_else(|| SqlError::syntax(format!("invalid column name {n}")))
}

/// Replaces the units from `group_start` on (the left input) and the new right unit by one
/// outer-join unit.
#[allow(clippy::too_many_arguments)]
fn outer_join(
    fc: &mut FromClause,
    group_start: usize,
    kind: JoinKind,
    right_join: bool,
    right_source: Source,
    right_scope: Scope,
    constraint: &JoinConstraint,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<(), SqlError> {
    let g_off = fc.units[group_start].offset;
    if let Some(q) = right_scope.cols.first().and_then(|c| c.qualifier.clone())
        && fc.scope.has_qualifier(&q)
    {
        return Err(SqlError::new(
            "42712",
            format!("table name \"{q}\" specified more than once"),
        ));
    }
    let right_start = fc.scope.len();
    let right_width = right_scope.len();
    let right_types: Vec<SqlType> = right_scope.cols.iter().map(|c| c.ty).collect();
    fc.scope.extend(right_scope);
    let end = fc.scope.len();
    // Plan the left side with the inner-join conditions that concern only it.
    let in_range = |e: &ScalarExpr, lo: usize, hi: usize| {
        let mut cols = Vec::new();
        e.columns(&mut cols);
        cols.iter().all(|&c| c >= lo && c < hi)
    };
    let (mine, others): (Vec<_>, Vec<_>) =
        std::mem::take(&mut fc.conds).into_iter().partition(|c| {
            in_range(c, g_off, right_start) && {
                let mut cols = Vec::new();
                c.columns(&mut cols);
                !cols.is_empty()
            }
        });
    fc.conds = others;
    let mut mine = mine;
    mine.append(&mut fc.item_consts);
    let left_units: Vec<_> = fc.units.drain(group_start..).collect();
    let left_types: Vec<SqlType> = left_units.iter().flat_map(|u| u.types.clone()).collect();
    let mut full_pairs = Vec::new();
    let conds = bind_constraint(
        fc,
        constraint,
        right_start,
        right_join,
        (kind == JoinKind::Full).then_some(&mut full_pairs),
        ctx,
        outer,
    )?;
    if conds.iter().any(|c| !in_range(c, g_off, end)) {
        return Err(SqlError::unsupported(
            "a JOIN condition may only refer to the tables of its join",
        ));
    }
    // An ON conjunct for the null-supplying input alone, and what the ON condition and the
    // preserved input's conditions imply for it, filter that input before the join: a row
    // failing one pairs with no row. The preserved input keeps every row.
    let (left, right_only, join_conds) = match (kind, right_join) {
        (JoinKind::Left, false) => {
            let left = join::build(left_units, mine, None)?;
            let facts = shifted_up(restrictions(&left), g_off);
            let (right_only, join_conds) = split_for(conds, facts, Side::Right, right_start);
            (left, right_only, join_conds)
        }
        (JoinKind::Left, true) => {
            // RIGHT JOIN: the left input supplies the NULLs; every row of it satisfies `mine`.
            let (below, join_conds) = split_for(conds, mine.clone(), Side::Left, right_start);
            mine.extend(below);
            (join::build(left_units, mine, None)?, Vec::new(), join_conds)
        }
        _ => (join::build(left_units, mine, None)?, Vec::new(), conds),
    };
    let right_only = right_only
        .into_iter()
        .map(|c| shifted(c, right_start))
        .collect();
    let right = match right_source {
        Source::Table(t) => plan_scan(&t, right_only, None).0,
        Source::Rel(r) => r.filtered_all(right_only),
    };
    // Split equalities between the sides into hash keys.
    let side_of = |e: &ScalarExpr| -> Option<bool> {
        let mut cols = Vec::new();
        e.columns(&mut cols);
        if cols.is_empty() || e.has_subquery() {
            return None;
        }
        if cols.iter().all(|&c| c < right_start) {
            Some(false)
        } else if cols.iter().all(|&c| c >= right_start) {
            Some(true)
        } else {
            None
        }
    };
    let mut lk = Vec::new();
    let mut rk = Vec::new();
    let mut residual = Vec::new();
    for c in join_conds {
        if let ScalarExpr::Compare {
            op: CmpOp::Eq,
            left,
            right,
        } = &c
        {
            match (side_of(left), side_of(right)) {
                (Some(false), Some(true)) => {
                    lk.push(shifted((**left).clone(), g_off));
                    rk.push(shifted((**right).clone(), right_start));
                    continue;
                }
                (Some(true), Some(false)) => {
                    lk.push(shifted((**right).clone(), g_off));
                    rk.push(shifted((**left).clone(), right_start));
                    continue;
                }
                _ => {}
            }
        }
        residual.push(shifted(c, g_off));
    }
    let left_width = right_start - g_off;
    let mut residual = and_all(residual);
    let rel = if right_join {
        // RIGHT JOIN: a LEFT JOIN with the sides swapped, then the columns put back.
        if let Some(r) = &mut residual {
            r.remap_columns(&|c| {
                if c < left_width {
                    c + right_width
                } else {
                    c - left_width
                }
            });
        }
        let estimate = outer_join_rows(JoinKind::Left, &right, &left);
        let joined = Rel::Join(Box::new(JoinPlan {
            kind: JoinKind::Left,
            left: right,
            right: left,
            left_keys: rk,
            right_keys: lk,
            residual,
            lookup: None,
            build_left: false,
            estimate,
        }));
        let exprs = (0..left_width)
            .map(|i| ScalarExpr::Column(right_width + i, left_types[i]))
            .chain((0..right_width).map(|i| ScalarExpr::Column(i, right_types[i])))
            .collect();
        Rel::Project {
            input: Box::new(joined),
            exprs,
        }
    } else {
        let estimate = outer_join_rows(kind, &left, &right);
        Rel::Join(Box::new(JoinPlan {
            kind,
            left,
            right,
            left_keys: lk,
            right_keys: rk,
            residual,
            lookup: None,
            build_left: false,
            estimate,
        }))
    };
    // FULL JOIN USING: the merged columns are COALESCEs, appended.
    let rel = if full_pairs.is_empty() {
        rel
    } else {
        let mut exprs: Vec<ScalarExpr> = (0..end - g_off)
            .map(|i| ScalarExpr::Column(i, fc.scope.cols[g_off + i].ty))
            .collect();
        for (l, r, name) in &full_pairs {
            let (le, re) = comparable_pair(
                super::coerce::Bound::known(
                    ScalarExpr::Column(l - g_off, fc.scope.cols[*l].ty),
                    None,
                ),
                super::coerce::Bound::known(
                    ScalarExpr::Column(r - g_off, fc.scope.cols[*r].ty),
                    None,
                ),
                "=",
            )?;
            let ty = le.ty();
            exprs.push(ScalarExpr::Func {
                func: Func::Coalesce,
                args: vec![le, re],
                ty,
            });
            fc.scope.star_first.push(fc.scope.cols.len());
            fc.scope.cols.push(ScopeColumn {
                qualifier: None,
                name: name.clone(),
                ty,
                hidden: false,
                qualified_only: false,
            });
        }
        Rel::Project {
            input: Box::new(rel),
            exprs,
        }
    };
    let types = fc.scope.cols[g_off..].iter().map(|c| c.ty).collect();
    fc.units.push(Unit {
        source: Source::Rel(rel),
        offset: g_off,
        width: fc.scope.len() - g_off,
        types,
    });
    Ok(())
}

/// Binds one FROM item: its source and the scope of its columns.
fn bind_factor(
    f: &TableFactor,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<(Source, Scope), SqlError> {
    match f {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            partitions,
            ..
        } if with_hints.is_empty() && partitions.is_empty() => match lookup_relation(name, ctx)? {
            Relation::Cte(cte) => {
                let plan = {
                    // A CTE sees the CTEs declared before it, not the caller's later ones.
                    let saved = ctx.ctes.borrow().clone();
                    let idx = saved
                        .iter()
                        .rposition(|c| c.name == cte.name && Arc::ptr_eq(&c.query, &cte.query))
                        .unwrap_or(saved.len());
                    ctx.ctes.borrow_mut().truncate(idx);
                    let r = plan_query(&cte.query, ctx, outer);
                    *ctx.ctes.borrow_mut() = saved;
                    r?
                };
                derived(plan, &cte.columns, Some(&cte.name), alias.as_ref())
            }
            Relation::Table(t) => match &t.view {
                Some(sql) => {
                    let stmts = crate::parse::parse(sql)?;
                    let Some(sqlparser::ast::Statement::Query(q)) = stmts.first() else {
                        return Err(SqlError::internal(format!(
                            "view {:?} does not hold a query",
                            t.name
                        )));
                    };
                    let saved = std::mem::take(&mut *ctx.ctes.borrow_mut());
                    let r = plan_query(q, ctx, None);
                    *ctx.ctes.borrow_mut() = saved;
                    let mut plan = r?;
                    // The view's stored column names win over the query's labels.
                    for (c, d) in plan.columns.iter_mut().zip(&t.columns) {
                        c.name = d.name.clone();
                    }
                    let (source, mut scope) = derived(plan, &[], Some(&t.name), alias.as_ref())?;
                    // Hidden columns of a view (those of the catalog views) are not listed
                    // by `*`.
                    for (c, d) in scope.cols.iter_mut().zip(&t.columns) {
                        c.hidden = d.hidden;
                    }
                    Ok((source, scope))
                }
                None => {
                    let visible = match alias {
                        Some(a) => ident(&a.name),
                        None => t.name.clone(),
                    };
                    let mut scope = Scope::table(&visible, &t);
                    if let Some(a) = alias {
                        rename(
                            &mut scope,
                            &a.columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>(),
                            &visible,
                        )?;
                    }
                    Ok((Source::Table(t), scope))
                }
            },
        },
        TableFactor::Table {
            name,
            alias,
            args: Some(args),
            with_hints,
            version: None,
            partitions,
            with_ordinality: false,
            ..
        } if with_hints.is_empty() && partitions.is_empty() => {
            super::table_func::bind(name, args, alias.as_ref(), ctx, outer)
        }
        TableFactor::Derived {
            lateral,
            subquery,
            alias,
            ..
        } => {
            if *lateral {
                return Err(SqlError::unsupported("LATERAL is not supported yet"));
            }
            let plan = plan_query(subquery, ctx, outer)?;
            derived(plan, &[], None, alias.as_ref())
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            if alias.is_some() {
                return Err(SqlError::unsupported(
                    "an alias for a parenthesized join is not supported",
                ));
            }
            let inner = bind_from(std::slice::from_ref(table_with_joins), ctx, outer)?;
            let rel = join::build(inner.units, inner.conds, None)?;
            Ok((Source::Rel(rel), inner.scope))
        }
        _ => Err(SqlError::unsupported("this FROM item is not supported yet")),
    }
}

/// A planned query used as a FROM item, with `names` (then its own labels) as column names.
fn derived(
    plan: QueryPlan,
    names: &[String],
    default_qualifier: Option<&str>,
    alias: Option<&TableAlias>,
) -> Result<(Source, Scope), SqlError> {
    let mut cols: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
    if names.len() > cols.len() {
        return Err(SqlError::syntax(format!(
            "table \"{}\" has {} columns available but {} columns specified",
            default_qualifier.unwrap_or("?"),
            cols.len(),
            names.len()
        )));
    }
    cols[..names.len()].clone_from_slice(names);
    let qualifier = alias
        .map(|a| ident(&a.name))
        .or_else(|| default_qualifier.map(str::to_string));
    let types: Vec<SqlType> = plan.columns.iter().map(|c| c.ty).collect();
    let mut scope = Scope::named(qualifier.as_deref(), &cols, &types);
    if let Some(a) = alias {
        let q = ident(&a.name);
        rename(
            &mut scope,
            &a.columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>(),
            &q,
        )?;
    }
    Ok((Source::Rel(plan.rel), scope))
}

/// Applies a column alias list (`AS t(a, b)`).
fn rename(scope: &mut Scope, names: &[String], table: &str) -> Result<(), SqlError> {
    let visible: Vec<usize> = (0..scope.len())
        .filter(|&i| !scope.cols[i].hidden)
        .collect();
    if names.len() > visible.len() {
        return Err(SqlError::syntax(format!(
            "table \"{table}\" has {} columns available but {} columns specified",
            visible.len(),
            names.len()
        )));
    }
    for (n, &i) in names.iter().zip(&visible) {
        scope.cols[i].name = n.clone();
    }
    Ok(())
}
