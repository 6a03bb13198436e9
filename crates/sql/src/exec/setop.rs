//! UNION, INTERSECT and EXCEPT, with and without ALL, by hashing rows (NULLs compare equal
//! here, as SQL's set operations require). The rows kept and the keys hashed count against the
//! statement's memory.

use std::collections::{HashMap, HashSet};

use super::Row;
use super::memory::{Reservation, key_bytes, row_bytes};
use crate::api::SqlError;
use crate::keys::hash_key;
use crate::plan::SetOpKind;

/// Combines the rows of the two inputs. Output order: left rows first, in input order.
pub(crate) fn combine(
    op: SetOpKind,
    all: bool,
    left: Vec<Row>,
    right: Vec<Row>,
    memory: &mut Reservation,
) -> Result<Vec<Row>, SqlError> {
    match (op, all) {
        (SetOpKind::Union, true) => {
            let mut out = left;
            out.extend(right);
            memory.grow_rows(&out)?;
            Ok(out)
        }
        (SetOpKind::Union, false) => {
            let mut out = left;
            out.extend(right);
            super::run::distinct(out, None, memory)
        }
        (SetOpKind::Intersect | SetOpKind::Except, _) => {
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            for r in &right {
                let key = hash_key(r);
                if !counts.contains_key(&key) {
                    memory.grow_key(&key)?;
                }
                *counts.entry(key).or_default() += 1;
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for r in left {
                let k = hash_key(&r);
                // Without ALL, each row kept also leaves its key in `seen`.
                let kept_bytes = row_bytes(&r) + if all { 0 } else { key_bytes(&k) };
                let in_right = counts.get(&k).copied().unwrap_or(0);
                let keep = match (op, all) {
                    (SetOpKind::Intersect, false) => in_right > 0 && seen.insert(k),
                    (SetOpKind::Except, false) => in_right == 0 && seen.insert(k),
                    (SetOpKind::Intersect, true) => {
                        // Each right copy matches one left copy.
                        if in_right > 0 {
                            counts.insert(k, in_right - 1);
                            true
                        } else {
                            false
                        }
                    }
                    _ => {
                        if in_right > 0 {
                            counts.insert(k, in_right - 1);
                            false
                        } else {
                            true
                        }
                    }
                };
                if keep {
                    memory.grow(kept_bytes)?;
                    out.push(r);
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Datum;
    use crate::exec::MemoryPool;

    fn rows(v: &[Option<i64>]) -> Vec<Row> {
        v.iter()
            .map(|x| vec![x.map_or(Datum::Null, Datum::Int)])
            .collect()
    }

    #[test]
    fn set_operations_count_duplicates_and_equate_nulls() {
        let l = rows(&[Some(1), Some(1), Some(2), None, None]);
        let r = rows(&[Some(1), None, Some(3)]);
        let pool = MemoryPool::new(usize::MAX);
        let run = |op, all| {
            combine(
                op,
                all,
                l.clone(),
                r.clone(),
                &mut pool.reserve("set", None),
            )
            .unwrap()
        };
        assert_eq!(
            run(SetOpKind::Union, false),
            rows(&[Some(1), Some(2), None, Some(3)])
        );
        assert_eq!(run(SetOpKind::Union, true).len(), 8);
        assert_eq!(run(SetOpKind::Intersect, false), rows(&[Some(1), None]));
        assert_eq!(run(SetOpKind::Intersect, true), rows(&[Some(1), None]));
        assert_eq!(run(SetOpKind::Except, false), rows(&[Some(2)]));
        assert_eq!(
            run(SetOpKind::Except, true),
            rows(&[Some(1), Some(2), None])
        );
    }
}
