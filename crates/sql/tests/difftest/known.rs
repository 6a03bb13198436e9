//! Documented intentional differences from PostgreSQL (listed in `meridian-sql`'s crate docs,
//! "Differences from PostgreSQL"), recognised so that they are counted apart from
//! mismatches. Each names its reason.

use crate::compare::Outcome;

/// The documented difference `sql` with outcomes `m` (Meridian) and `p` (PostgreSQL) shows,
/// if any.
pub fn explain(_sql: &str, _m: &Outcome, _p: &Outcome) -> Option<&'static str> {
    None
}
