//! UNION, INTERSECT and EXCEPT, with and without ALL, by hashing rows (NULLs compare equal
//! here, as SQL's set operations require).

use std::collections::{HashMap, HashSet};

use super::Row;
use crate::keys::hash_key;
use crate::plan::SetOpKind;

/// Combines the rows of the two inputs. Output order: left rows first, in input order.
pub(crate) fn combine(op: SetOpKind, all: bool, left: Vec<Row>, right: Vec<Row>) -> Vec<Row> {
    match (op, all) {
        (SetOpKind::Union, true) => {
            let mut out = left;
            out.extend(right);
            out
        }
        (SetOpKind::Union, false) => {
            let mut seen = HashSet::new();
            left.into_iter()
                .chain(right)
                .filter(|r| seen.insert(hash_key(r)))
                .collect()
        }
        (SetOpKind::Intersect | SetOpKind::Except, _) => {
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            for r in &right {
                *counts.entry(hash_key(r)).or_default() += 1;
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for r in left {
                let k = hash_key(&r);
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
                    out.push(r);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Datum;

    fn rows(v: &[Option<i64>]) -> Vec<Row> {
        v.iter()
            .map(|x| vec![x.map_or(Datum::Null, Datum::Int)])
            .collect()
    }

    #[test]
    fn set_operations_count_duplicates_and_equate_nulls() {
        let l = rows(&[Some(1), Some(1), Some(2), None, None]);
        let r = rows(&[Some(1), None, Some(3)]);
        let run = |op, all| combine(op, all, l.clone(), r.clone());
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
