//! Values of the hidden `rowid` key of tables declared without a primary key.
//!
//! Like CockroachDB's `unique_rowid()`, a rowid is a time component followed by a per-session
//! component: `(read timestamp in 10 µs units) << 11 | session tag`, made strictly increasing
//! within the session. Ids of one session never repeat; two sessions could in principle draw
//! the same id (same 10 µs tick, same tag), which the insert's NotExists condition detects and
//! the session then retries the statement with fresh ids. 52 bits of 10 µs units last until
//! about the year 3400.

use meridian_clock::Timestamp;

/// Generates rowids for one session.
#[derive(Debug, Clone)]
pub(crate) struct RowIdGen {
    tag: i64,
    last: i64,
}

impl RowIdGen {
    /// A generator for the session numbered `session`.
    pub(crate) fn new(session: u64) -> RowIdGen {
        // Spread consecutive session numbers over the 11-bit tag space.
        let tag = (session.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 53) as i64;
        RowIdGen { tag, last: 0 }
    }

    /// The next id for a statement reading at `ts`.
    pub(crate) fn next(&mut self, ts: Timestamp) -> i64 {
        let ticks = (ts.as_nanos() / 10_000) as i64 & ((1 << 52) - 1);
        let candidate = (ticks << 11) | self.tag;
        self.last = candidate.max(self.last.saturating_add(1));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_within_a_session_even_at_one_timestamp() {
        let mut g = RowIdGen::new(7);
        let ts = Timestamp::from_nanos(1_764_072_277_123_456_789);
        let a = g.next(ts);
        let b = g.next(ts);
        let c = g.next(ts.prev());
        assert!(a > 0 && a < b && b < c);
        let later = g.next(Timestamp::from_nanos(1_764_072_278_000_000_000));
        assert!(later > c);
    }

    #[test]
    fn sessions_get_different_tags() {
        let ts = Timestamp::from_nanos(1_764_072_277_000_000_000);
        let ids: std::collections::HashSet<i64> =
            (0..64).map(|s| RowIdGen::new(s).next(ts)).collect();
        assert!(
            ids.len() > 60,
            "tags should rarely collide, got {} distinct",
            ids.len()
        );
    }
}
