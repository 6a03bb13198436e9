//! Walking plans: every expression of a plan (including those inside subqueries), used to
//! find the types the binder gave `$n` parameters; the tables a plan joins.

use std::sync::Arc;

use super::dml::{ConflictAction, InsertSource};
use super::rel::Rel;
use super::window::WindowFunc;
use super::{AggCall, Plan};
use crate::api::{SqlError, SqlType};
use crate::catalog::TableDesc;
use crate::expr::ScalarExpr;

/// Calls `f` on every expression node of `plan`.
pub(crate) fn plan_exprs(plan: &Plan, f: &mut dyn FnMut(&ScalarExpr)) {
    match plan {
        Plan::Query(q) => rel_exprs(&q.rel, f),
        Plan::ExplainAnalyze(a) => plan_exprs(&a.plan, f),
        Plan::Insert(i) => {
            match &i.source {
                InsertSource::Values(rows) => {
                    for e in rows.iter().flatten().flatten() {
                        expr(e, f);
                    }
                }
                InsertSource::Query { plan, defaults, .. } => {
                    rel_exprs(&plan.rel, f);
                    for e in defaults.iter().flatten() {
                        expr(e, f);
                    }
                }
            }
            if let Some(oc) = &i.on_conflict
                && let ConflictAction::Update {
                    assignments,
                    filter,
                } = &oc.action
            {
                for (_, e) in assignments {
                    expr(e, f);
                }
                if let Some(e) = filter {
                    expr(e, f);
                }
            }
            for e in i.returning.iter().flat_map(|p| &p.exprs) {
                expr(e, f);
            }
        }
        Plan::Update(u) => {
            rel_exprs(&u.source, f);
            for (_, e) in &u.assignments {
                expr(e, f);
            }
            for e in u.returning.iter().flat_map(|p| &p.exprs) {
                expr(e, f);
            }
        }
        Plan::Delete(d) => {
            rel_exprs(&d.source, f);
            for e in d.returning.iter().flat_map(|p| &p.exprs) {
                expr(e, f);
            }
        }
        Plan::CreateTable(_)
        | Plan::Alter(_)
        | Plan::Truncate(_)
        | Plan::CreateIndex(_)
        | Plan::CreateView(_)
        | Plan::CreateSequence(_)
        | Plan::Drop(_)
        | Plan::User(_)
        | Plan::Explain(_) => {}
    }
}

/// Calls `f` on `e` and every node below it, subquery plans included.
fn expr(e: &ScalarExpr, f: &mut dyn FnMut(&ScalarExpr)) {
    f(e);
    if let ScalarExpr::Subquery(sq) = e {
        rel_exprs(&sq.plan, f);
    }
    for c in e.children() {
        expr(c, f);
    }
}

fn agg(a: &AggCall, f: &mut dyn FnMut(&ScalarExpr)) {
    for e in a.exprs() {
        expr(e, f);
    }
}

fn rel_exprs(r: &Rel, f: &mut dyn FnMut(&ScalarExpr)) {
    match r {
        Rel::Values { rows, .. } => {
            for e in rows.iter().flatten() {
                expr(e, f);
            }
        }
        Rel::Function { args, .. } => {
            for e in args {
                expr(e, f);
            }
        }
        Rel::Scan(s) => {
            if let Some(e) = &s.filter {
                expr(e, f);
            }
        }
        Rel::Filter { input, predicate } => {
            expr(predicate, f);
            rel_exprs(input, f);
        }
        Rel::Project { input, exprs } => {
            for e in exprs {
                expr(e, f);
            }
            rel_exprs(input, f);
        }
        Rel::Join(j) => {
            for e in j
                .left_keys
                .iter()
                .chain(&j.right_keys)
                .chain(j.residual.iter())
            {
                expr(e, f);
            }
            if let Some(l) = &j.lookup {
                for e in &l.key_exprs {
                    expr(e, f);
                }
            }
            rel_exprs(&j.left, f);
            rel_exprs(&j.right, f);
        }
        Rel::Aggregate { input, plan } => {
            for e in &plan.groups {
                expr(e, f);
            }
            for a in &plan.aggs {
                agg(a, f);
            }
            rel_exprs(input, f);
        }
        Rel::Window { input, plan } => {
            for w in &plan.funcs {
                for e in w
                    .args
                    .iter()
                    .chain(&w.partition)
                    .chain(w.order.iter().map(|(e, _, _)| e))
                {
                    expr(e, f);
                }
                if let WindowFunc::Agg(a) = &w.func {
                    agg(a, f);
                }
            }
            rel_exprs(input, f);
        }
        Rel::Limit { input, counts, .. } => {
            if let Some(c) = counts {
                for e in c.limit.iter().chain(c.offset.iter()) {
                    expr(e, f);
                }
            }
            rel_exprs(input, f)
        }
        Rel::Distinct { input, .. } | Rel::Sort { input, .. } => rel_exprs(input, f),
        Rel::SetOp { left, right, .. } => {
            rel_exprs(left, f);
            rel_exprs(right, f);
        }
    }
}

/// The types of the `$n` parameters `plan` uses (`$n` is element `n - 1`): the type the binder
/// gave each; a parameter used with two different types is an error (42P08), and one the
/// statement does not use is text.
pub(crate) fn param_types(
    plan: &Plan,
    given: &[Option<SqlType>],
) -> Result<Vec<SqlType>, SqlError> {
    let mut types: Vec<Option<SqlType>> = given.to_vec();
    let mut conflict = None;
    plan_exprs(plan, &mut |e| {
        if let ScalarExpr::Param(n, ty) = e {
            if types.len() <= *n {
                types.resize(n + 1, None);
            }
            match types[*n] {
                None => types[*n] = Some(*ty),
                Some(t) if t == *ty => {}
                Some(t) => {
                    conflict.get_or_insert((*n, t, *ty));
                }
            }
        }
    });
    if let Some((n, a, b)) = conflict {
        return Err(SqlError::new(
            "42P08",
            format!("inconsistent types deduced for parameter ${}", n + 1),
        )
        .with_detail(format!("{} versus {}", a.pg_name(), b.pg_name())));
    }
    Ok(types
        .into_iter()
        .map(|t| t.unwrap_or(SqlType::Text))
        .collect())
}

/// The tables `plan` scans as inputs of joins (outside subqueries): those whose statistics
/// decide the join's order and method.
pub(crate) fn joined_tables(plan: &Plan) -> Vec<Arc<TableDesc>> {
    fn walk(r: &Rel, joined: bool, out: &mut Vec<Arc<TableDesc>>) {
        match r {
            Rel::Scan(s) if joined => out.push(s.table.clone()),
            Rel::Join(_) => r.inputs().into_iter().for_each(|i| walk(i, true, out)),
            _ => r.inputs().into_iter().for_each(|i| walk(i, joined, out)),
        }
    }
    let mut out = Vec::new();
    match plan {
        Plan::Query(q) => walk(&q.rel, false, &mut out),
        Plan::Insert(i) => {
            if let InsertSource::Query { plan, .. } = &i.source {
                walk(&plan.rel, false, &mut out);
            }
        }
        Plan::Update(u) => walk(&u.source, false, &mut out),
        Plan::Delete(d) => walk(&d.source, false, &mut out),
        Plan::ExplainAnalyze(a) => out = joined_tables(&a.plan),
        _ => {}
    }
    out
}
