//! Key-range extraction: which ranges of an index (the primary index or a secondary one) can
//! hold rows matching a WHERE condition.
//!
//! The condition is split into AND-ed conjuncts. Walking the index's key columns in order,
//! equality constraints (`k = c`, `k IN (c1, c2)`) on a prefix of the key become a set of
//! prefixes; the first column without an equality may contribute a range (`<`, `<=`, `>`,
//! `>=`, `BETWEEN`). Equality on every key column gives point lookups. The extracted ranges are
//! a superset of the matching rows: the executor still evaluates the whole condition on each
//! row it reads, so extraction only has to be sound, never complete.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::api::{Datum, SqlType};
use crate::catalog::TableDesc;
use crate::expr::{CmpOp, ScalarExpr, cmp_datums};
use crate::keys;
use crate::plan::rel::Access;

/// More point lookups than this (the product of IN-list sizes) fall back to a range scan.
const MAX_POINTS: usize = 1024;

/// The part of a table's primary index a scan must read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyRange {
    /// Nothing can match (e.g. `k = 1 AND k = 2`, `k = NULL`).
    Empty,
    /// Point lookups of complete primary keys (in key-column order, sorted).
    Points(Vec<Vec<Datum>>),
    /// Ranges, each an equality prefix plus bounds on the next key column.
    Spans(Vec<KeySpan>),
    /// The whole table.
    Full,
}

/// Keys starting with `prefix` whose next column lies within `lower..upper`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeySpan {
    pub prefix: Vec<Datum>,
    pub lower: Bound<Datum>,
    pub upper: Bound<Datum>,
}

/// A byte-level read: one key or a `[start, end)` range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ByteSpan {
    Point(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
}

/// What one conjunct says about one column.
enum Constraint {
    /// The column is one of these values (none: no row matches).
    In(Vec<Datum>),
    /// `column op value`.
    Cmp(CmpOp, Datum),
}

/// The key columns of an access path: positions into the table's columns, and DESC flags.
pub(crate) fn key_columns(table: &TableDesc, access: Access) -> Vec<(usize, bool)> {
    match access {
        Access::Primary => table.pk.iter().map(|&c| (c, false)).collect(),
        Access::Index(i) => table.indexes[i].columns.clone(),
    }
}

/// How a conjunct of a filter constrains one key column.
#[derive(Clone, Copy, PartialEq)]
enum KeyConstraint {
    /// `col = value`: one value.
    Equal,
    /// `col IN (values)`: a few values.
    In,
    /// `col < value` and the like.
    Bound,
}

/// Per column of `key`, the constraints `filter`'s conjuncts put on it with values known
/// before the row is read (parameters and outer values count as known).
fn key_constraints(
    table: &TableDesc,
    key: &[usize],
    filter: Option<&ScalarExpr>,
) -> Vec<Vec<KeyConstraint>> {
    let mut out = vec![Vec::new(); key.len()];
    let Some(filter) = filter else {
        return out;
    };
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    for c in conjuncts {
        let (col, kind) = match c {
            ScalarExpr::Compare { op, left, right } => {
                let (col, other) =
                    match (key_column(table, key, left), key_column(table, key, right)) {
                        (Some(col), None) => (col, right),
                        (None, Some(col)) => (col, left),
                        _ => continue,
                    };
                if !other.is_row_independent() || *op == CmpOp::NotEq {
                    continue;
                }
                let kind = if *op == CmpOp::Eq {
                    KeyConstraint::Equal
                } else {
                    KeyConstraint::Bound
                };
                (col, kind)
            }
            ScalarExpr::InList {
                expr,
                list,
                negated: false,
            } => match key_column(table, key, expr) {
                Some(col) if list.iter().all(ScalarExpr::is_row_independent) => {
                    (col, KeyConstraint::In)
                }
                _ => continue,
            },
            _ => continue,
        };
        if let Some(k) = key.iter().position(|&x| x == col) {
            out[k].push(kind);
        }
    }
    out
}

/// How well an access path with key columns `key` narrows a scan for `filter`: the number of
/// leading key columns constrained by equality, and whether the next one has a bound. Values
/// known only at execution (parameters, outer values) count as constants.
pub(crate) fn score(
    table: &TableDesc,
    key: &[usize],
    filter: Option<&ScalarExpr>,
) -> (usize, bool) {
    let constraints = key_constraints(table, key, filter);
    let eq = |c: &Vec<KeyConstraint>| c.iter().any(|k| *k != KeyConstraint::Bound);
    let n = constraints.iter().take_while(|c| eq(c)).count();
    let bounded = constraints
        .get(n)
        .is_some_and(|c| c.contains(&KeyConstraint::Bound));
    (n, bounded)
}

/// How many leading key columns of `key` `filter` fixes to a single value (`col = value`);
/// `IN` lists do not count, as they allow several.
pub(crate) fn fixed_prefix(table: &TableDesc, key: &[usize], filter: Option<&ScalarExpr>) -> usize {
    key_constraints(table, key, filter)
        .iter()
        .take_while(|c| c.contains(&KeyConstraint::Equal))
        .count()
}

/// Extracts the range of an index with key columns `key` that can satisfy `filter`.
pub(crate) fn extract_for(
    table: &TableDesc,
    key: &[usize],
    filter: Option<&ScalarExpr>,
) -> KeyRange {
    let Some(filter) = filter else {
        return KeyRange::Full;
    };
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    if conjuncts
        .iter()
        .any(|c| matches!(c, ScalarExpr::Literal(Datum::Bool(false) | Datum::Null, _)))
    {
        return KeyRange::Empty;
    }
    let mut constraints: Vec<(usize, Constraint)> = conjuncts
        .iter()
        .filter_map(|c| constraint(table, key, c))
        .collect();

    let mut prefixes: Vec<Vec<Datum>> = vec![vec![]];
    for &col in key {
        let mine: Vec<Constraint> = extract_col(&mut constraints, col);
        let (eq, bounds) = combine(mine);
        match eq {
            Some(values) => {
                let values: Vec<Datum> =
                    values.into_iter().filter(|v| within(v, &bounds)).collect();
                if values.is_empty() {
                    return KeyRange::Empty;
                }
                if prefixes.len() * values.len() > MAX_POINTS {
                    break;
                }
                prefixes = prefixes
                    .into_iter()
                    .flat_map(|p| values.iter().map(move |v| with(&p, v.clone())))
                    .collect();
            }
            None => {
                let (lower, upper) = bounds;
                if let (
                    Bound::Included(l) | Bound::Excluded(l),
                    Bound::Included(u) | Bound::Excluded(u),
                ) = (&lower, &upper)
                {
                    let ord = cmp_datums(l, u).unwrap_or(Ordering::Equal);
                    let both_inclusive =
                        matches!((&lower, &upper), (Bound::Included(_), Bound::Included(_)));
                    if ord == Ordering::Greater || (ord == Ordering::Equal && !both_inclusive) {
                        return KeyRange::Empty;
                    }
                }
                if prefixes[0].is_empty()
                    && matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded))
                {
                    return KeyRange::Full;
                }
                return KeyRange::Spans(
                    prefixes
                        .into_iter()
                        .map(|prefix| KeySpan {
                            prefix,
                            lower: lower.clone(),
                            upper: upper.clone(),
                        })
                        .collect(),
                );
            }
        }
    }
    if prefixes[0].len() == key.len() {
        return KeyRange::Points(prefixes);
    }
    if prefixes[0].is_empty() {
        return KeyRange::Full;
    }
    KeyRange::Spans(
        prefixes
            .into_iter()
            .map(|prefix| KeySpan {
                prefix,
                lower: Bound::Unbounded,
                upper: Bound::Unbounded,
            })
            .collect(),
    )
}

fn with(p: &[Datum], v: Datum) -> Vec<Datum> {
    let mut out = p.to_vec();
    out.push(v);
    out
}

fn flatten_and<'e>(e: &'e ScalarExpr, out: &mut Vec<&'e ScalarExpr>) {
    match e {
        ScalarExpr::And(l, r) => {
            flatten_and(l, out);
            flatten_and(r, out);
        }
        other => out.push(other),
    }
}

fn extract_col(constraints: &mut Vec<(usize, Constraint)>, col: usize) -> Vec<Constraint> {
    let mut mine = Vec::new();
    let mut i = 0;
    while i < constraints.len() {
        if constraints[i].0 == col {
            mine.push(constraints.swap_remove(i).1);
        } else {
            i += 1;
        }
    }
    mine
}

/// The key column a conjunct side refers to, looking through integer widening casts (all
/// integer widths share one key encoding).
fn key_column(table: &TableDesc, key: &[usize], e: &ScalarExpr) -> Option<usize> {
    let (i, ty) = match e {
        ScalarExpr::Column(i, ty) => (*i, *ty),
        ScalarExpr::Cast { expr, to, .. } => match expr.as_ref() {
            ScalarExpr::Column(i, ty)
                if crate::types::is_integer(*ty) && crate::types::is_integer(to.ty) =>
            {
                (*i, to.ty)
            }
            _ => return None,
        },
        _ => return None,
    };
    (key.contains(&i) && same_class(table.columns[i].ty, ty)).then_some(i)
}

fn same_class(a: SqlType, b: SqlType) -> bool {
    a == b || (crate::types::is_integer(a) && crate::types::is_integer(b))
}

/// A constant usable as a key value of column `col`.
fn key_value(table: &TableDesc, col: usize, e: &ScalarExpr) -> Option<Datum> {
    let ScalarExpr::Literal(d, ty) = e else {
        return None;
    };
    let ok = match d {
        Datum::Null => true,
        _ => same_class(table.columns[col].ty, *ty),
    };
    ok.then(|| d.clone())
}

fn constraint(table: &TableDesc, key: &[usize], c: &ScalarExpr) -> Option<(usize, Constraint)> {
    match c {
        ScalarExpr::Compare { op, left, right } => {
            let (col, value, op) = if let Some(col) = key_column(table, key, left) {
                (col, key_value(table, col, right)?, *op)
            } else {
                let col = key_column(table, key, right)?;
                (col, key_value(table, col, left)?, op.flip())
            };
            if value == Datum::Null {
                return Some((col, Constraint::In(vec![])));
            }
            match op {
                CmpOp::Eq => Some((col, Constraint::In(vec![value]))),
                CmpOp::NotEq => None,
                other => Some((col, Constraint::Cmp(other, value))),
            }
        }
        ScalarExpr::InList {
            expr,
            list,
            negated: false,
        } => {
            let col = key_column(table, key, expr)?;
            let values = list
                .iter()
                .map(|e| key_value(table, col, e))
                .collect::<Option<Vec<_>>>()?;
            Some((
                col,
                Constraint::In(values.into_iter().filter(|v| *v != Datum::Null).collect()),
            ))
        }
        // Primary key columns are never NULL.
        ScalarExpr::IsNull {
            expr,
            negated: false,
        } => key_column(table, key, expr)
            .filter(|c| table.pk.contains(c))
            .map(|col| (col, Constraint::In(vec![]))),
        _ => None,
    }
}

type Bounds = (Bound<Datum>, Bound<Datum>);

/// Intersects the constraints on one column: the allowed value set (if any equality) and the
/// tightest bounds.
fn combine(cs: Vec<Constraint>) -> (Option<Vec<Datum>>, Bounds) {
    let mut eq: Option<Vec<Datum>> = None;
    let mut lower = Bound::Unbounded;
    let mut upper = Bound::Unbounded;
    for c in cs {
        match c {
            Constraint::In(mut values) => {
                values.sort_by(|a, b| cmp_datums(a, b).unwrap_or(Ordering::Equal));
                values.dedup_by(|a, b| cmp_datums(a, b) == Some(Ordering::Equal));
                eq = Some(match eq {
                    None => values,
                    Some(prev) => prev
                        .into_iter()
                        .filter(|p| {
                            values
                                .iter()
                                .any(|v| cmp_datums(p, v) == Some(Ordering::Equal))
                        })
                        .collect(),
                });
            }
            Constraint::Cmp(op, v) => match op {
                CmpOp::Gt => lower = tighter_lower(lower, Bound::Excluded(v)),
                CmpOp::GtEq => lower = tighter_lower(lower, Bound::Included(v)),
                CmpOp::Lt => upper = tighter_upper(upper, Bound::Excluded(v)),
                CmpOp::LtEq => upper = tighter_upper(upper, Bound::Included(v)),
                CmpOp::Eq | CmpOp::NotEq => {}
            },
        }
    }
    (eq, (lower, upper))
}

fn tighter_lower(a: Bound<Datum>, b: Bound<Datum>) -> Bound<Datum> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match cmp_datums(x, y).unwrap_or(Ordering::Equal) {
                Ordering::Less => b,
                Ordering::Greater => a,
                Ordering::Equal => {
                    if matches!(a, Bound::Excluded(_)) {
                        a
                    } else {
                        b
                    }
                }
            }
        }
    }
}

fn tighter_upper(a: Bound<Datum>, b: Bound<Datum>) -> Bound<Datum> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match cmp_datums(x, y).unwrap_or(Ordering::Equal) {
                Ordering::Less => a,
                Ordering::Greater => b,
                Ordering::Equal => {
                    if matches!(a, Bound::Excluded(_)) {
                        a
                    } else {
                        b
                    }
                }
            }
        }
    }
}

/// Whether `v` satisfies `bounds`.
fn within(v: &Datum, (lower, upper): &Bounds) -> bool {
    let ok_lower = match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => cmp_datums(v, l) != Some(Ordering::Less),
        Bound::Excluded(l) => cmp_datums(v, l) == Some(Ordering::Greater),
    };
    let ok_upper = match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => cmp_datums(v, u) != Some(Ordering::Greater),
        Bound::Excluded(u) => cmp_datums(v, u) == Some(Ordering::Less),
    };
    ok_lower && ok_upper
}

impl KeyRange {
    /// The byte keys and ranges to read for primary-key access, in key order.
    #[cfg(test)]
    pub(crate) fn byte_spans(&self, table: &TableDesc) -> Vec<ByteSpan> {
        self.byte_spans_for(table, Access::Primary)
    }

    /// The byte keys and ranges of `access` to read, in key order.
    pub(crate) fn byte_spans_for(&self, table: &TableDesc, access: Access) -> Vec<ByteSpan> {
        let (base, dirs, points_are_keys): (Vec<u8>, Vec<bool>, bool) = match access {
            Access::Primary => (
                keys::primary_prefix(table.id),
                vec![false; table.pk.len()],
                true,
            ),
            Access::Index(i) => {
                let ix = &table.indexes[i];
                (
                    keys::index_prefix(table.id, ix.id),
                    ix.columns.iter().map(|(_, d)| *d).collect(),
                    ix.unique,
                )
            }
        };
        let encode = |values: &[Datum]| {
            let mut k = base.clone();
            for (v, d) in values.iter().zip(&dirs) {
                keys::encode_datum_dir(&mut k, v, keys::direction(*d));
            }
            k
        };
        match self {
            KeyRange::Empty => vec![],
            KeyRange::Full => {
                let end = keys::successor(&base);
                vec![ByteSpan::Range(base, end)]
            }
            KeyRange::Points(points) => {
                let mut spans: Vec<ByteSpan> = points
                    .iter()
                    .map(|p| {
                        let k = encode(p);
                        if points_are_keys {
                            ByteSpan::Point(k)
                        } else {
                            let end = keys::successor(&k);
                            ByteSpan::Range(k, end)
                        }
                    })
                    .collect();
                spans.sort_by(|a, b| a.start().cmp(b.start()));
                spans
            }
            KeyRange::Spans(spans) => {
                let mut out: Vec<ByteSpan> = spans
                    .iter()
                    .filter_map(|s| {
                        let prefix = encode(&s.prefix);
                        let desc = dirs.get(s.prefix.len()).copied().unwrap_or(false);
                        let encoded = |v: &Datum| {
                            let mut k = prefix.clone();
                            keys::encode_datum_dir(&mut k, v, keys::direction(desc));
                            k
                        };
                        // A descending column stores larger values first: its upper bound
                        // starts the byte range.
                        let (first, last) = if desc {
                            (&s.upper, &s.lower)
                        } else {
                            (&s.lower, &s.upper)
                        };
                        let start = match first {
                            Bound::Unbounded => prefix.clone(),
                            Bound::Included(v) => encoded(v),
                            Bound::Excluded(v) => keys::successor(&encoded(v)),
                        };
                        let end = match last {
                            Bound::Unbounded => keys::successor(&prefix),
                            Bound::Included(v) => keys::successor(&encoded(v)),
                            Bound::Excluded(v) => encoded(v),
                        };
                        (start < end).then_some(ByteSpan::Range(start, end))
                    })
                    .collect();
                out.sort_by(|a, b| a.start().cmp(b.start()));
                out
            }
        }
    }
}

impl ByteSpan {
    /// The first key of the span.
    pub(crate) fn start(&self) -> &[u8] {
        match self {
            ByteSpan::Point(k) | ByteSpan::Range(k, _) => k,
        }
    }
}
