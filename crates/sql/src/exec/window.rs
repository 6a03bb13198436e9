//! Window functions: for each call, rows are grouped by the PARTITION BY values, each
//! partition is sorted by the window's ORDER BY, and the call's value for every row is appended
//! to it. Rows keep their input order. The rows, and each call's partitions, sort keys and
//! values, count against the statement's memory while the operator works.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::Row;
use super::aggregate::Accumulator;
use super::memory::{Reservation, datum_bytes, key_bytes, row_bytes};
use crate::api::{Datum, SqlError};
use crate::expr::{Env, cmp_for_sort};
use crate::keys::hash_key;
use crate::plan::window::{FrameBound, WindowCall, WindowFunc, WindowPlan};

/// Appends one column per window call to every row.
pub(crate) fn compute(
    plan: &WindowPlan,
    mut rows: Vec<Row>,
    env: &Env<'_>,
    memory: &mut Reservation,
) -> Result<Vec<Row>, SqlError> {
    memory.grow_rows(&rows)?;
    for call in &plan.funcs {
        let values = compute_call(call, &rows, env, memory)?;
        memory.grow(values.iter().map(datum_bytes).sum())?;
        for (r, v) in rows.iter_mut().zip(values) {
            r.push(v);
        }
    }
    Ok(rows)
}

fn compute_call(
    call: &WindowCall,
    rows: &[Row],
    env: &Env<'_>,
    memory: &mut Reservation,
) -> Result<Vec<Datum>, SqlError> {
    // Partitions, in order of first appearance.
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut partitions: Vec<Vec<usize>> = Vec::new();
    let mut order_keys: Vec<Vec<Datum>> = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let p = call
            .partition
            .iter()
            .map(|e| e.eval(r, env))
            .collect::<Result<Vec<_>, _>>()?;
        let k = hash_key(&p);
        let slot = match index.get(&k) {
            Some(&slot) => slot,
            None => {
                memory.grow(key_bytes(&k))?;
                partitions.push(Vec::new());
                index.insert(k, partitions.len() - 1);
                partitions.len() - 1
            }
        };
        partitions[slot].push(i);
        let keys = call
            .order
            .iter()
            .map(|(e, _, _)| e.eval(r, env))
            .collect::<Result<Vec<_>, _>>()?;
        memory.grow(row_bytes(&keys) + std::mem::size_of::<usize>())?;
        order_keys.push(keys);
    }
    let cmp = |a: usize, b: usize| -> Ordering {
        call.order
            .iter()
            .enumerate()
            .map(|(k, (_, desc, nulls_first))| {
                cmp_for_sort(&order_keys[a][k], &order_keys[b][k], *desc, *nulls_first)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let mut out = vec![Datum::Null; rows.len()];
    for mut part in partitions {
        part.sort_by(|&a, &b| cmp(a, b));
        let values = partition_values(call, &part, rows, &cmp, env)?;
        for (&i, v) in part.iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// The values for one sorted partition (`part` holds row indexes).
fn partition_values(
    call: &WindowCall,
    part: &[usize],
    rows: &[Row],
    cmp: &dyn Fn(usize, usize) -> Ordering,
    env: &Env<'_>,
) -> Result<Vec<Datum>, SqlError> {
    let n = part.len();
    // Peer groups: [first, last] position of the rows equal to each row under ORDER BY.
    let mut peer_start = vec![0; n];
    let mut peer_end = vec![0; n];
    let mut s = 0;
    for i in 0..n {
        if i > 0 && cmp(part[i - 1], part[i]) != Ordering::Equal {
            s = i;
        }
        peer_start[i] = s;
    }
    let mut e = n.saturating_sub(1);
    for i in (0..n).rev() {
        if i + 1 < n && cmp(part[i], part[i + 1]) != Ordering::Equal {
            e = i;
        }
        peer_end[i] = e;
    }
    let arg = |k: usize, i: usize| -> Result<Datum, SqlError> {
        match call.args.get(k) {
            Some(a) => a.eval(&rows[part[i]], env),
            None => Ok(Datum::Null),
        }
    };
    let frame = |i: usize| -> (usize, usize) {
        // Inclusive bounds; start > end is an empty frame.
        let f = call.frame;
        let start = match f.start {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::Preceding(k) => i.saturating_sub(k as usize),
            FrameBound::CurrentRow if f.rows => i,
            FrameBound::CurrentRow => peer_start[i],
            FrameBound::Following(k) => i.saturating_add(k as usize),
            FrameBound::UnboundedFollowing => n,
        };
        let end = match f.end {
            FrameBound::UnboundedFollowing => n.saturating_sub(1),
            FrameBound::Following(k) => (i.saturating_add(k as usize)).min(n.saturating_sub(1)),
            FrameBound::CurrentRow if f.rows => i,
            FrameBound::CurrentRow => peer_end[i],
            FrameBound::Preceding(k) => match i.checked_sub(k as usize) {
                Some(x) => x,
                None => return (1, 0),
            },
            FrameBound::UnboundedPreceding => return (1, 0),
        };
        (start, end)
    };
    let mut out = Vec::with_capacity(n);
    match &call.func {
        WindowFunc::RowNumber => out.extend((1..=n).map(|i| Datum::Int(i as i64))),
        WindowFunc::Rank => out.extend(peer_start.iter().map(|s| Datum::Int(*s as i64 + 1))),
        WindowFunc::DenseRank => {
            let mut rank = 0;
            for (i, s) in peer_start.iter().enumerate() {
                if *s == i {
                    rank += 1;
                }
                out.push(Datum::Int(rank));
            }
        }
        WindowFunc::PercentRank => out.extend(peer_start.iter().map(|s| {
            Datum::Float(if n <= 1 {
                0.0
            } else {
                *s as f64 / (n - 1) as f64
            })
        })),
        WindowFunc::CumeDist => out.extend(
            peer_end
                .iter()
                .map(|e| Datum::Float((*e + 1) as f64 / n as f64)),
        ),
        WindowFunc::Ntile => {
            for i in 0..n {
                let buckets = match arg(0, i)? {
                    Datum::Int(b) if b > 0 => b as usize,
                    Datum::Null => {
                        out.push(Datum::Null);
                        continue;
                    }
                    _ => {
                        return Err(SqlError::new(
                            "22014",
                            "argument of ntile must be greater than zero",
                        ));
                    }
                };
                // The first n % buckets buckets get one extra row.
                let size = n / buckets;
                let extra = n % buckets;
                let big = extra * (size + 1);
                let bucket = if i < big {
                    i / (size + 1)
                } else {
                    extra + (i - big) / size.max(1)
                };
                out.push(Datum::Int(bucket as i64 + 1));
            }
        }
        WindowFunc::Lag | WindowFunc::Lead => {
            for i in 0..n {
                let offset = match arg(1, i)? {
                    Datum::Int(o) => o,
                    _ => {
                        out.push(Datum::Null);
                        continue;
                    }
                };
                let offset = if matches!(call.func, WindowFunc::Lag) {
                    -offset
                } else {
                    offset
                };
                let target = i as i64 + offset;
                if target >= 0 && (target as usize) < n {
                    out.push(arg(0, target as usize)?);
                } else {
                    out.push(arg(2, i)?);
                }
            }
        }
        WindowFunc::FirstValue | WindowFunc::LastValue => {
            for i in 0..n {
                let (s, e) = frame(i);
                if s > e || s >= n {
                    out.push(Datum::Null);
                } else if matches!(call.func, WindowFunc::FirstValue) {
                    out.push(arg(0, s)?);
                } else {
                    out.push(arg(0, e)?);
                }
            }
        }
        WindowFunc::Agg(agg) => {
            let running = call.frame.start == FrameBound::UnboundedPreceding;
            if running {
                // Frames only grow: add rows as the frame's end advances.
                let mut acc = Accumulator::new(agg);
                let mut added = 0;
                for i in 0..n {
                    let (s, e) = frame(i);
                    if s <= e {
                        while added <= e.min(n - 1) {
                            acc.add(agg, &rows[part[added]], env)?;
                            added += 1;
                        }
                    }
                    out.push(acc.value());
                }
            } else {
                for i in 0..n {
                    let (s, e) = frame(i);
                    let mut acc = Accumulator::new(agg);
                    if s <= e {
                        for &r in &part[s.min(n)..=e.min(n.saturating_sub(1))] {
                            acc.add(agg, &rows[r], env)?;
                        }
                    }
                    out.push(acc.value());
                }
            }
        }
    }
    Ok(out)
}
