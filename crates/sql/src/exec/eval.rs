//! Evaluating expressions that contain subqueries: compute every subquery value the expression
//! needs, then evaluate it synchronously.
//!
//! An uncorrelated subquery runs once per statement. A correlated one runs with the values it
//! captures from the current row as its outer values; results are memoized by those values, so
//! rows that agree on them share one run.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Executor, Row};
use crate::api::{Datum, SqlError};
use crate::error::Result;
use crate::expr::{
    Env, ScalarExpr, SubqueryExpr, SubqueryKind, SubqueryValue, SubqueryValues, VolatileCall,
};
use crate::keys::hash_key;
use crate::plan::Rel;

/// Correlated results memoized per statement before the cache stops growing.
const MAX_MEMO: usize = 100_000;

/// A part of an expression the executor computes before evaluating it.
pub(crate) enum Deferred<'e> {
    Subquery(&'e SubqueryExpr),
    Volatile(&'e VolatileCall),
}

/// The subqueries and volatile calls of `e` (outside the plans of nested subqueries), inner
/// ones first.
pub(crate) fn subqueries_of(e: &ScalarExpr) -> Vec<Deferred<'_>> {
    fn walk<'e>(e: &'e ScalarExpr, out: &mut Vec<Deferred<'e>>) {
        for c in e.children() {
            walk(c, out);
        }
        match e {
            ScalarExpr::Subquery(sq) => out.push(Deferred::Subquery(sq)),
            ScalarExpr::Volatile(v) => out.push(Deferred::Volatile(v)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

impl Executor<'_> {
    /// Evaluates `e` over `row`, computing its subqueries first.
    pub(crate) async fn eval(
        &mut self,
        e: &ScalarExpr,
        row: &[Datum],
        env: Env<'_>,
    ) -> Result<Datum> {
        let subs = subqueries_of(e);
        self.eval_with(e, &subs, row, env).await
    }

    /// Evaluates `e`, whose subqueries are `subs` (from [`subqueries_of`]), over `row`.
    pub(crate) async fn eval_with(
        &mut self,
        e: &ScalarExpr,
        subs: &[Deferred<'_>],
        row: &[Datum],
        env: Env<'_>,
    ) -> Result<Datum> {
        if subs.is_empty() {
            return Ok(e.eval(row, &env)?);
        }
        let mut values = SubqueryValues::with_capacity(subs.len());
        for part in subs {
            match part {
                Deferred::Subquery(sq) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = values.entry(sq.id) {
                        slot.insert(self.subquery_value(sq, row, env).await?);
                    }
                }
                Deferred::Volatile(call) => {
                    // Arguments may use values computed before (inner parts come first).
                    let args_env = Env {
                        subqueries: Some(&values),
                        ..env
                    };
                    let args = call
                        .args
                        .iter()
                        .map(|a| a.eval(row, &args_env))
                        .collect::<Result<Vec<_>, _>>()?;
                    let v = self.volatile(call, args).await?;
                    values.insert(call.id, SubqueryValue::Scalar(v));
                }
            }
        }
        let env = Env {
            subqueries: Some(&values),
            ..env
        };
        Ok(e.eval(row, &env)?)
    }

    /// Evaluates several expressions over one row.
    pub(crate) async fn eval_all(
        &mut self,
        exprs: &[ScalarExpr],
        row: &[Datum],
        env: Env<'_>,
    ) -> Result<Row> {
        let mut out = Vec::with_capacity(exprs.len());
        for e in exprs {
            out.push(self.eval(e, row, env).await?);
        }
        Ok(out)
    }

    /// The value of subquery `sq` for the enclosing row `row`.
    async fn subquery_value(
        &mut self,
        sq: &SubqueryExpr,
        row: &[Datum],
        env: Env<'_>,
    ) -> Result<SubqueryValue> {
        // Captures are columns and outer values of the enclosing row.
        let outer: Vec<Datum> = sq
            .captures
            .iter()
            .map(|c| c.eval(row, &env))
            .collect::<Result<_, SqlError>>()?;
        let memo_key = (sq.id, hash_key(&outer));
        if let Some(v) = self.subqueries.get(&memo_key) {
            return Ok(v.clone());
        }
        let sub_env = Env {
            params: env.params,
            outer: &outer,
            subqueries: None,
        };
        let value = self.run_subquery(&sq.plan, &sq.kind, sub_env).await?;
        if self.subqueries.len() < MAX_MEMO {
            self.subqueries.insert(memo_key, value.clone());
        }
        Ok(value)
    }

    async fn run_subquery(
        &mut self,
        plan: &Rel,
        kind: &SubqueryKind,
        env: Env<'_>,
    ) -> Result<SubqueryValue> {
        Ok(match kind {
            SubqueryKind::Scalar => {
                let rows = self.run(plan, env, Some(2)).await?;
                match rows.len() {
                    0 => SubqueryValue::Scalar(Datum::Null),
                    1 => SubqueryValue::Scalar(
                        rows.into_iter()
                            .next()
                            .and_then(|r| r.into_iter().next())
                            .unwrap_or(Datum::Null),
                    ),
                    _ => {
                        return Err(SqlError::new(
                            "21000",
                            "more than one row returned by a subquery used as an expression",
                        )
                        .into());
                    }
                }
            }
            SubqueryKind::Array => {
                let rows = self.run(plan, env, None).await?;
                let values: Vec<Datum> = rows
                    .into_iter()
                    .map(|r| r.into_iter().next().unwrap_or(Datum::Null))
                    .collect();
                SubqueryValue::Scalar(crate::expr::array::from_datums(&values))
            }
            SubqueryKind::Lookup { keys } => {
                let rows = self.run(plan, env, None).await?;
                let mut map = HashMap::with_capacity(rows.len());
                for mut r in rows {
                    let value = r.pop().unwrap_or(Datum::Null);
                    map.entry(hash_key(&r[..keys.len().min(r.len())]))
                        .or_insert(value);
                }
                SubqueryValue::Map(Arc::new(map))
            }
            SubqueryKind::Exists => {
                SubqueryValue::Exists(!self.run(plan, env, Some(1)).await?.is_empty())
            }
            SubqueryKind::Quantified { .. } => {
                let rows = self.run(plan, env, None).await?;
                SubqueryValue::List(Arc::new(crate::expr::ValueList::new(rows)))
            }
        })
    }

    /// Keeps the rows for which `predicate` is true.
    pub(crate) async fn filter(
        &mut self,
        rows: Vec<Row>,
        predicate: &ScalarExpr,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::with_capacity(rows.len());
        let subs = subqueries_of(predicate);
        if !subs.is_empty() {
            for r in rows {
                if crate::expr::is_true(&self.eval_with(predicate, &subs, &r, env).await?) {
                    out.push(r);
                }
            }
        } else {
            for r in rows {
                if crate::expr::is_true(&predicate.eval(&r, &env)?) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
}
