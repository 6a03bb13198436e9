//! Documented intentional differences from PostgreSQL (listed in `meridian-sql`'s crate docs,
//! "Differences from PostgreSQL"), recognised so that they are counted apart from
//! mismatches. Each is recognised narrowly: only when the difference it names accounts for
//! the whole of what differs.

use crate::ast::Query;
use crate::compare::{NUMERIC, Outcome, Verdict, exact};

/// Values that compare equal but print differently (NUMERIC `0.00` and `0.000`) are one value
/// to DISTINCT, GROUP BY and the set operations; which of them a group prints as is the
/// implementation's choice (PostgreSQL's hashed EXCEPT ALL prints its first one for every
/// copy).
const NUMERIC_SCALE_OF_EQUALS: &str = "equal NUMERIC values of different display scales merged by DISTINCT, GROUP BY or a set operation";

/// The documented difference that accounts for `m` (Meridian) differing from `p`
/// (PostgreSQL) on `query`, if any.
pub fn explain(query: &Query, m: &Outcome, p: &Outcome) -> Option<&'static str> {
    let sql = query.to_string();
    let merges = [
        "DISTINCT ",
        "GROUP BY",
        ") UNION",
        ") INTERSECT",
        ") EXCEPT",
    ]
    .iter()
    .any(|k| sql.contains(k));
    if merges && exact(query, &strip_scale(m), &strip_scale(p)) == Verdict::Same {
        return Some(NUMERIC_SCALE_OF_EQUALS);
    }
    let maps_case = ["upper(", "lower(", "initcap("]
        .iter()
        .any(|f| sql.contains(f));
    if maps_case && has_non_ascii(m) && exact(query, &fold_case(m), &fold_case(p)) == Verdict::Same
    {
        return Some(UNICODE_CASE_MAPPING);
    }
    None
}

/// `upper`, `lower` and `initcap` map the case of non-ASCII letters by Unicode (PostgreSQL
/// under a UTF-8 locale); the tester's PostgreSQL runs under the C locale, where only ASCII
/// letters change case and `initcap` starts a word after a non-ASCII letter.
const UNICODE_CASE_MAPPING: &str =
    "case mapping of non-ASCII letters by Unicode (PostgreSQL's C locale maps only ASCII)";

/// Whether any text value of `o` has a non-ASCII character.
fn has_non_ascii(o: &Outcome) -> bool {
    match o {
        Outcome::Rows { rows, .. } => rows.iter().flatten().flatten().any(|v| !v.is_ascii()),
        Outcome::Error { .. } => false,
    }
}

/// `o` with every value in lower case (Unicode).
fn fold_case(o: &Outcome) -> Outcome {
    map_values(o, |v, _| v.to_lowercase())
}

/// `o` with the trailing fraction zeros of its NUMERIC values removed.
fn strip_scale(o: &Outcome) -> Outcome {
    map_values(o, |v, oid| {
        if oid == NUMERIC {
            crate::compare::strip_scale(v)
        } else {
            v.to_string()
        }
    })
}

/// `o` with `f(value, type oid)` applied to every non-NULL value.
fn map_values(o: &Outcome, f: impl Fn(&str, u32) -> String) -> Outcome {
    match o {
        Outcome::Rows { types, rows } => Outcome::Rows {
            types: types.clone(),
            rows: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(types)
                        .map(|(v, t)| v.as_deref().map(|v| f(v, t.0)))
                        .collect()
                })
                .collect(),
        },
        e => e.clone(),
    }
}
