//! Joins: hash join on equality keys (the right side is hashed, or the left one when the
//! planner estimates it smaller), nested loops without keys, and lookup joins that probe the
//! right table's index with each left row's keys.
//!
//! NULL keys never match. LEFT joins pad unmatched left rows with NULLs; FULL joins also pad
//! the right rows nothing matched. The right rows and hash table (or a lookup join's probe
//! results) and the joined rows count against the statement's memory.

use std::collections::HashMap;

use super::analyze::node_id;
use super::memory::Reservation;
use super::{Executor, Row, check_rows};
use crate::api::Datum;
use crate::error::Result;
use crate::expr::{Env, ScalarExpr, is_true};
use crate::keys::hash_key;
use crate::plan::{JoinKind, JoinPlan, Lookup, Rel};

impl Executor<'_> {
    /// The rows of a join. A chain of joins (each the left input of the next, as the join
    /// planner builds them) runs as a loop rather than a recursion, so a join of many tables
    /// does not nest as many futures.
    ///
    /// Under EXPLAIN ANALYZE, each join of the chain below `rel` (the top, which `run` records)
    /// is recorded as if it had run its inputs itself.
    pub(crate) async fn join(
        &mut self,
        rel: &Rel,
        top: &JoinPlan,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let mut chain = vec![(rel, top)];
        let mut leftmost = &top.left;
        while let Rel::Join(j) = leftmost {
            chain.push((leftmost, j));
            leftmost = &j.left;
        }
        let watch = self
            .profile
            .is_some()
            .then(crate::metrics::Stopwatch::start);
        let mut rows = self.run(leftmost, env, None).await?;
        let outer = self.node;
        for (node, j) in chain.into_iter().rev() {
            self.node = node_id(node);
            rows = self.join_step(j, rows, env).await?;
            if let (Some(p), Some(w)) = (&self.profile, &watch)
                && !std::ptr::eq(node, rel)
            {
                p.ran(self.node, rows.len(), w.elapsed());
            }
        }
        self.node = outer;
        Ok(rows)
    }

    /// Joins `left` (the rows of `j.left`) with `j.right`.
    async fn join_step(&mut self, j: &JoinPlan, left: Vec<Row>, env: Env<'_>) -> Result<Vec<Row>> {
        let sync = !j.residual.as_ref().is_some_and(ScalarExpr::has_subquery);
        if let (Some(lookup), Some((scan, projection))) = (&j.lookup, j.right.as_scan()) {
            return self
                .lookup_join(j, sync, lookup, scan, projection, left, env)
                .await;
        }
        if left.is_empty() && j.kind != JoinKind::Full {
            return Ok(vec![]);
        }
        if j.build_left && j.kind == JoinKind::Inner && !j.left_keys.is_empty() {
            return self.hash_left(j, sync, left, env).await;
        }
        let mut memory = self.reserve(if j.left_keys.is_empty() {
            "Nested loop join"
        } else {
            "Hash join"
        });
        let right = self.run(&j.right, env, None).await?;
        memory.grow_rows(&right)?;
        let right_width = j.right.width();
        let left_width = j.left.width();
        let mut right_matched = vec![
            false;
            if j.kind == JoinKind::Full {
                right.len()
            } else {
                0
            }
        ];
        let mut out = Vec::new();
        // Candidate right rows per left row: by hash of the keys, or all of them.
        let table = if j.left_keys.is_empty() {
            None
        } else {
            Some(hash_rows(&j.right_keys, &right, &env, &mut memory)?)
        };
        let all: Vec<usize> = if table.is_none() {
            (0..right.len()).collect()
        } else {
            vec![]
        };
        let none: Vec<usize> = vec![];
        for l in left {
            let candidates: &[usize] = match &table {
                None => &all,
                Some(t) => match key_of(&j.left_keys, &l, &env)? {
                    Some(k) => t.get(&k).map_or(&none[..], |v| &v[..]),
                    None => &none,
                },
            };
            let mut matched = false;
            for &ri in candidates {
                let mut row = l.clone();
                row.extend(right[ri].iter().cloned());
                if self.residual(j, sync, &row, env).await? {
                    matched = true;
                    if let Some(m) = right_matched.get_mut(ri) {
                        *m = true;
                    }
                    push(&mut out, row, &mut memory)?;
                }
            }
            if !matched && j.kind != JoinKind::Inner {
                let mut row = l;
                row.extend(std::iter::repeat_n(Datum::Null, right_width));
                push(&mut out, row, &mut memory)?;
            }
        }
        for (ri, m) in right_matched.iter().enumerate() {
            if !m {
                let mut row = vec![Datum::Null; left_width];
                row.extend(right[ri].iter().cloned());
                push(&mut out, row, &mut memory)?;
            }
        }
        Ok(out)
    }

    /// An inner hash join that hashes its `left` rows and probes them with each right row
    /// (the planner's choice when the left side is estimated smaller).
    async fn hash_left(
        &mut self,
        j: &JoinPlan,
        sync: bool,
        left: Vec<Row>,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let mut memory = self.reserve("Hash join");
        memory.grow_rows(&left)?;
        let table = hash_rows(&j.left_keys, &left, &env, &mut memory)?;
        let right = self.run(&j.right, env, None).await?;
        let mut out = Vec::new();
        for r in &right {
            let Some(k) = key_of(&j.right_keys, r, &env)? else {
                continue;
            };
            for &li in table.get(&k).map_or(&[][..], |v| &v[..]) {
                let mut row = left[li].clone();
                row.extend(r.iter().cloned());
                if self.residual(j, sync, &row, env).await? {
                    push(&mut out, row, &mut memory)?;
                }
            }
        }
        Ok(out)
    }

    /// Whether a joined row satisfies the residual condition; `sync` when it has no subquery.
    async fn residual(
        &mut self,
        j: &JoinPlan,
        sync: bool,
        row: &[Datum],
        env: Env<'_>,
    ) -> Result<bool> {
        match &j.residual {
            None => Ok(true),
            Some(r) if sync => Ok(is_true(&r.eval(row, &env)?)),
            Some(r) => Ok(is_true(&self.eval(r, row, env).await?)),
        }
    }

    /// A lookup join: for each left row, read the right rows whose index keys equal its key
    /// values (one probe per distinct key).
    #[allow(clippy::too_many_arguments)]
    async fn lookup_join(
        &mut self,
        j: &JoinPlan,
        sync: bool,
        lookup: &Lookup,
        scan: &crate::plan::ScanPlan,
        projection: Option<&[ScalarExpr]>,
        left: Vec<Row>,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let right_width = j.right.width();
        let mut memory = self.reserve("Lookup join");
        let mut probes: HashMap<Vec<u8>, Vec<Row>> = HashMap::new();
        let mut out = Vec::new();
        for l in left {
            let values = lookup
                .key_exprs
                .iter()
                .map(|e| e.eval(&l, &env))
                .collect::<Result<Vec<_>, _>>()?;
            let rights: Vec<Row> = if values.contains(&Datum::Null) {
                vec![]
            } else {
                let k = hash_key(&values);
                match probes.get(&k) {
                    Some(rows) => rows.clone(),
                    None => {
                        let rows = self
                            .probe(&j.right, scan, lookup, projection, values, env)
                            .await?;
                        memory.grow_key(&k)?;
                        memory.grow_rows(&rows)?;
                        probes.insert(k, rows.clone());
                        rows
                    }
                }
            };
            let mut matched = false;
            // A NULL key matches nothing (`key_of` gives `None` for it, on either side).
            let lk = key_of(&j.left_keys, &l, &env)?;
            for r in rights {
                if lk.is_none() || key_of(&j.right_keys, &r, &env)? != lk {
                    continue;
                }
                let mut row = l.clone();
                row.extend(r);
                if self.residual(j, sync, &row, env).await? {
                    matched = true;
                    push(&mut out, row, &mut memory)?;
                }
            }
            if !matched && j.kind == JoinKind::Left {
                let mut row = l;
                row.extend(std::iter::repeat_n(Datum::Null, right_width));
                push(&mut out, row, &mut memory)?;
            }
        }
        Ok(out)
    }

    /// The right rows of a lookup join for one left row's key `values`: read from the
    /// right side's table (`right` is its scan, possibly under a projection). Under EXPLAIN
    /// ANALYZE each probe counts as one run of the right side.
    async fn probe(
        &mut self,
        right: &Rel,
        scan: &crate::plan::ScanPlan,
        lookup: &Lookup,
        projection: Option<&[ScalarExpr]>,
        values: Vec<Datum>,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let scan_node = match right {
            Rel::Project { input, .. } => input.as_ref(),
            other => other,
        };
        let watch = self
            .profile
            .is_some()
            .then(crate::metrics::Stopwatch::start);
        let outer = std::mem::replace(&mut self.node, node_id(scan_node));
        let rows = self.lookup(scan, lookup.access, values, env).await;
        self.node = outer;
        let mut rows = rows?;
        let read = rows.len();
        if let Some(exprs) = projection {
            rows = rows
                .iter()
                .map(|r| exprs.iter().map(|e| e.eval(r, &env)).collect())
                .collect::<Result<Vec<_>, _>>()?;
        }
        if let (Some(p), Some(w)) = (&self.profile, &watch) {
            p.ran(node_id(scan_node), read, w.elapsed());
            if !std::ptr::eq(scan_node, right) {
                p.ran(node_id(right), rows.len(), w.elapsed());
            }
        }
        Ok(rows)
    }
}

/// Adds a joined row to `out`, counting it.
fn push(out: &mut Vec<Row>, row: Row, memory: &mut Reservation) -> Result<()> {
    memory.grow_row(&row)?;
    out.push(row);
    check_rows(out.len())?;
    Ok(())
}

/// The positions of `rows` by the hash of their `keys` (rows with a NULL key are left out:
/// they match nothing), each distinct key counted in `memory`.
fn hash_rows(
    keys: &[ScalarExpr],
    rows: &[Row],
    env: &Env<'_>,
    memory: &mut Reservation,
) -> Result<HashMap<Vec<u8>, Vec<usize>>> {
    let mut table: HashMap<Vec<u8>, Vec<usize>> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if let Some(k) = key_of(keys, r, env)? {
            if !table.contains_key(&k) {
                memory.grow_key(&k)?;
            }
            table.entry(k).or_default().push(i);
        }
    }
    Ok(table)
}

/// The hash key of `keys` over `row`; `None` when some key is NULL (it matches nothing).
fn key_of(keys: &[ScalarExpr], row: &[Datum], env: &Env<'_>) -> Result<Option<Vec<u8>>> {
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        let v = k.eval(row, env)?;
        if v == Datum::Null {
            return Ok(None);
        }
        values.push(v);
    }
    Ok(Some(hash_key(&values)))
}
