//! The operators: each runs its inputs and materializes its rows. Those that retain rows
//! while they work (sorts, DISTINCT, aggregation, windows, set operations, joins) count them
//! against the statement's memory (`memory.rs`).

use std::collections::HashSet;

use super::aggregate::aggregate;
use super::analyze::node_id;
use super::memory::{Reservation, key_bytes, row_bytes};
use super::{BoxFut, Executor, Row, check_rows};
use crate::api::SqlError;
use crate::error::Result;
use crate::expr::{Env, ScalarExpr, cmp_for_sort};
use crate::keys::hash_key;
use crate::plan::{Rel, SortKey};

impl Executor<'_> {
    /// The rows of `rel`. `want` is a hint: the caller needs at most that many rows, so an
    /// operator that can stop early (a scan under a projection) may. Under EXPLAIN ANALYZE
    /// the run is recorded in the profile.
    pub(crate) fn run<'s>(
        &'s mut self,
        rel: &'s Rel,
        env: Env<'s>,
        want: Option<usize>,
    ) -> BoxFut<'s, Result<Vec<Row>>> {
        Box::pin(async move {
            // Aggregation asks its input for every row whatever its caller wants.
            let all = want.is_none() || matches!(rel, Rel::Aggregate { .. });
            if self.vectorize && all && super::vector::supported(rel) {
                let rows = self.run_vectorized(rel, env).await?;
                check_rows(rows.len())?;
                return Ok(rows);
            }
            let Some(profile) = self.profile.clone() else {
                return self.operator(rel, env, want).await;
            };
            let watch = crate::metrics::Stopwatch::start();
            let outer = std::mem::replace(&mut self.node, node_id(rel));
            let rows = self.operator(rel, env, want).await;
            self.node = outer;
            if let Ok(rows) = &rows {
                profile.ran(node_id(rel), rows.len(), watch.elapsed());
            }
            rows
        })
    }

    /// The rows of `rel` (see [`Executor::run`]).
    async fn operator(&mut self, rel: &Rel, env: Env<'_>, want: Option<usize>) -> Result<Vec<Row>> {
        let rows = match rel {
            Rel::Values { rows, .. } => {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(self.eval_all(r, &[], env).await?);
                }
                out
            }
            Rel::Function { func, args, .. } => {
                let values = self.eval_all(args, &[], env).await?;
                crate::plan::table_function_rows(*func, &values, super::MAX_ROWS)?
            }
            Rel::Scan(s) => self.scan(s, env, want).await?,
            Rel::Filter { input, predicate } => {
                // Over a scan that checks the same condition on every row it reads, the filter
                // drops nothing, so a LIMIT's row count may pass through it.
                let passes = matches!(&**input, Rel::Scan(s) if s.filter.as_ref().is_some_and(|f| implies(f, predicate)));
                let rows = self.run(input, env, want.filter(|_| passes)).await?;
                self.filter(rows, predicate, env).await?
            }
            Rel::Project { input, exprs } => {
                let rows = self.run(input, env, want).await?;
                self.project(rows, exprs, env).await?
            }
            Rel::Join(j) => self.join(rel, j, env).await?,
            Rel::Aggregate { input, plan } => {
                let rows = self.run(input, env, None).await?;
                aggregate(plan, &rows, &env, &mut self.reserve("Aggregate"))?
            }
            Rel::Window { input, plan } => {
                let rows = self.run(input, env, None).await?;
                super::window::compute(plan, rows, &env, &mut self.reserve("Window"))?
            }
            Rel::Distinct { input, on } => {
                let rows = self.run(input, env, None).await?;
                distinct(rows, on.as_deref(), &mut self.reserve("Distinct"))?
            }
            Rel::Sort { input, keys } => {
                let mut rows = self.run(input, env, None).await?;
                let mut memory = self.reserve("Sort");
                memory.grow_rows(&rows)?;
                sort_rows(&mut rows, keys);
                rows
            }
            Rel::Limit {
                input,
                limit,
                offset,
                counts,
            } => {
                let (limit, offset) = match counts {
                    None => (*limit, *offset),
                    Some(c) => runtime_counts(c, &env)?,
                };
                let offset = usize::try_from(offset).unwrap_or(usize::MAX);
                let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
                let need = offset.saturating_add(limit.min(want.unwrap_or(usize::MAX)));
                let rows = self.run(input, env, Some(need)).await?;
                rows.into_iter().skip(offset).take(limit).collect()
            }
            Rel::SetOp {
                op,
                all,
                left,
                right,
            } => {
                let l = self.run(left, env, None).await?;
                let r = self.run(right, env, None).await?;
                super::setop::combine(*op, *all, l, r, &mut self.reserve(op.name()))?
            }
        };
        check_rows(rows.len())?;
        Ok(rows)
    }

    /// Evaluates `exprs` over every row.
    pub(crate) async fn project(
        &mut self,
        rows: Vec<Row>,
        exprs: &[crate::expr::ScalarExpr],
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        // Keeping a prefix of the columns (dropping hidden sort keys) needs no evaluation.
        let prefix = exprs
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, crate::expr::ScalarExpr::Column(c, _) if *c == i));
        if prefix {
            return Ok(rows
                .into_iter()
                .map(|mut r| {
                    r.truncate(exprs.len());
                    r
                })
                .collect());
        }
        let mut out = Vec::with_capacity(rows.len());
        let subs: Vec<Vec<super::eval::Deferred<'_>>> =
            exprs.iter().map(super::eval::subqueries_of).collect();
        if subs.iter().any(|s| !s.is_empty()) {
            for r in &rows {
                let mut row = Vec::with_capacity(exprs.len());
                for (e, s) in exprs.iter().zip(&subs) {
                    row.push(self.eval_with(e, s, r, env).await?);
                }
                out.push(row);
            }
        } else {
            for r in &rows {
                out.push(
                    exprs
                        .iter()
                        .map(|e| e.eval(r, &env))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
        }
        Ok(out)
    }
}

/// LIMIT and OFFSET from parameter expressions (NULL: no limit, no offset).
fn runtime_counts(
    c: &crate::plan::LimitCounts,
    env: &Env<'_>,
) -> Result<(Option<u64>, u64), SqlError> {
    use crate::api::Datum;
    let eval = |e: &Option<crate::expr::ScalarExpr>| -> Result<Option<i64>, SqlError> {
        match e {
            None => Ok(None),
            Some(e) => match e.eval(&[], env)? {
                Datum::Int(v) => Ok(Some(v)),
                _ => Ok(None),
            },
        }
    };
    let limit = eval(&c.limit)?;
    if limit.is_some_and(|v| v < 0) {
        return Err(SqlError::new("2201W", "LIMIT must not be negative"));
    }
    let offset = eval(&c.offset)?.unwrap_or(0);
    if offset < 0 {
        return Err(SqlError::new("2201X", "OFFSET must not be negative"));
    }
    Ok((limit.map(i64::unsigned_abs), offset.unsigned_abs()))
}

/// The first row of each group of rows equal in every column, or (DISTINCT ON) in the `on`
/// columns; `memory` counts the rows kept and the keys seen.
pub(super) fn distinct(
    rows: Vec<Row>,
    on: Option<&[usize]>,
    memory: &mut Reservation,
) -> Result<Vec<Row>, SqlError> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out = Vec::new();
    for r in rows {
        let key = match on {
            None => hash_key(&r),
            Some(cols) => {
                let vals: Vec<_> = cols.iter().map(|&c| r[c].clone()).collect();
                hash_key(&vals)
            }
        };
        if seen.contains(&key) {
            continue;
        }
        memory.grow(key_bytes(&key) + row_bytes(&r))?;
        seen.insert(key);
        out.push(r);
    }
    Ok(out)
}

/// Sorts rows by `keys` (stable).
pub(crate) fn sort_rows(rows: &mut [Row], keys: &[SortKey]) {
    rows.sort_by(|a, b| {
        keys.iter()
            .map(|k| cmp_for_sort(&a[k.column], &b[k.column], k.desc, k.nulls_first))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

/// Whether every row satisfying `strong` satisfies `weak`: each conjunct of `weak` is one of
/// `strong`'s.
pub(super) fn implies(strong: &ScalarExpr, weak: &ScalarExpr) -> bool {
    let (mut have, mut need) = (Vec::new(), Vec::new());
    crate::plan::access::conjuncts(strong.clone(), &mut have);
    crate::plan::access::conjuncts(weak.clone(), &mut need);
    need.iter().all(|c| have.contains(c))
}
