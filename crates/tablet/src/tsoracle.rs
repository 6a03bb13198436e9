//! Timestamp assignment at a tablet leader, and the safe time for reads.
//!
//! Invariants (DESIGN.md section 4):
//! - Timestamps a leader assigns strictly increase, reads included: a read at `r` raises the
//!   floor so that no later write gets a timestamp `<= r`, which keeps every snapshot final.
//! - A new leader starts above every timestamp a previous leader can have assigned. A previous
//!   leader assigned `t <= TT.now().latest <= true_time + 2ε_max` before this leader was
//!   elected, so this leader's first timestamp is above `TT.now().latest + 2ε_max` taken when it
//!   takes office. (Leader leases replace this margin when tablets span nodes.)
//! - A read at `r` may be served once no write with timestamp `<= r` is still in flight: the
//!   pending set holds the timestamps proposed but not yet applied.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_clock::Timestamp;

/// The timestamp state of a leader.
#[derive(Debug, Default)]
pub(crate) struct TsOracle {
    last_assigned: Timestamp,
    /// The newest timestamp assigned to a write (or a prepared transaction) here.
    last_write: Timestamp,
    /// Timestamps of proposed writes not yet applied (with multiplicity).
    pending: BTreeMap<Timestamp, u32>,
    /// Prepare timestamps of transactions prepared here (replicated state: kept across
    /// leadership changes, maintained on every replica as entries apply).
    prepared: BTreeMap<Timestamp, u32>,
}

impl TsOracle {
    /// Takes office: every timestamp from now on is above `now_latest + margin` and above
    /// everything already applied.
    pub(crate) fn become_leader(
        &mut self,
        now_latest: Timestamp,
        margin: Duration,
        applied_max: Timestamp,
    ) {
        let floor = now_latest.saturating_add(margin).max(applied_max);
        self.last_assigned = self.last_assigned.max(floor);
        self.pending.clear();
    }

    /// Leaves office: in-flight writes are no longer tracked here.
    pub(crate) fn step_down(&mut self) {
        self.pending.clear();
    }

    /// A commit timestamp for a write proposed now: `max(TT.now().latest, last + 1)`.
    pub(crate) fn assign_write(&mut self, now_latest: Timestamp) -> Timestamp {
        let ts = now_latest.max(self.last_assigned.next());
        self.last_assigned = ts;
        self.last_write = ts;
        *self.pending.entry(ts).or_default() += 1;
        ts
    }

    /// A commit timestamp chosen elsewhere (a 2PC decision) was applied here: later writes get
    /// larger ones.
    pub(crate) fn observe(&mut self, ts: Timestamp) {
        self.last_assigned = self.last_assigned.max(ts);
    }

    /// A transaction was prepared at `ts`: reads at or above it wait until it is resolved.
    pub(crate) fn add_prepared(&mut self, ts: Timestamp) {
        self.last_write = self.last_write.max(ts);
        *self.prepared.entry(ts).or_default() += 1;
    }

    /// The transaction prepared at `ts` was resolved.
    pub(crate) fn remove_prepared(&mut self, ts: Timestamp) {
        if let Some(n) = self.prepared.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                self.prepared.remove(&ts);
            }
        }
    }

    /// Forgets every prepared transaction (a snapshot replaced the replica's state).
    pub(crate) fn clear_prepared(&mut self) {
        self.prepared.clear();
    }

    /// A read timestamp: `TT.now().latest`, after which no write will be assigned a timestamp
    /// at or below it.
    pub(crate) fn assign_read(&mut self, now_latest: Timestamp) -> Timestamp {
        self.last_assigned = self.last_assigned.max(now_latest);
        now_latest
    }

    /// The write with timestamp `ts` was applied (or will never be).
    pub(crate) fn resolve(&mut self, ts: Timestamp) {
        if let Some(n) = self.pending.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&ts);
            }
        }
    }

    /// The timestamp to grant a read that needs the snapshot at `base` (at least
    /// `now_latest`) final. On a tablet where no write or prepared transaction got a
    /// timestamp within `quiet` before `now_latest` (so none in flight is near), that is up to
    /// `ahead` past `now_latest`: the snapshot is then final a little into the future, and the
    /// reads that follow within it need not ask again. The first write after it gets a
    /// timestamp above it, so its commit wait grows by at most `ahead`; busy tablets pay
    /// nothing. Elsewhere `base` itself.
    pub(crate) fn read_ahead(
        &self,
        base: Timestamp,
        now_latest: Timestamp,
        ahead: Duration,
        quiet: Duration,
    ) -> Timestamp {
        if self.last_write.saturating_add(quiet) >= now_latest {
            return base;
        }
        now_latest.saturating_add(ahead).max(base)
    }

    /// True when no write at or below `read_ts` is in flight.
    pub(crate) fn can_serve(&self, read_ts: Timestamp) -> bool {
        self.applied_through(read_ts) && self.none_prepared_through(read_ts)
    }

    /// True when every write proposed with a timestamp at or below `read_ts` is applied.
    pub(crate) fn applied_through(&self, read_ts: Timestamp) -> bool {
        self.pending.keys().next().is_none_or(|min| *min > read_ts)
    }

    /// True when no transaction is prepared here at or below `read_ts`.
    pub(crate) fn none_prepared_through(&self, read_ts: Timestamp) -> bool {
        self.prepared.keys().next().is_none_or(|min| *min > read_ts)
    }

    /// Assigns a write a timestamp in `[lo, hi]`: the one [`TsOracle::assign_write`] would
    /// pick, raised to `lo`. When that is above `hi`, assigns nothing and returns it.
    pub(crate) fn assign_within(
        &mut self,
        now_latest: Timestamp,
        lo: Timestamp,
        hi: Timestamp,
    ) -> Result<Timestamp, Timestamp> {
        let ts = now_latest.max(self.last_assigned.next()).max(lo);
        if ts > hi {
            return Err(ts);
        }
        Ok(self.assign_write(ts))
    }

    #[cfg(test)]
    pub(crate) fn last_assigned(&self) -> Timestamp {
        self.last_assigned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    #[test]
    fn timestamps_strictly_increase_even_when_the_clock_stalls() {
        let mut o = TsOracle::default();
        let a = o.assign_write(ts(100));
        let b = o.assign_write(ts(100));
        let c = o.assign_write(ts(50));
        assert!(a < b && b < c);
        let r = o.assign_read(ts(200));
        assert!(o.assign_write(ts(150)) > r);
    }

    #[test]
    fn a_new_leader_starts_above_the_margin() {
        let mut o = TsOracle::default();
        o.become_leader(ts(1_000), Duration::from_nanos(500), ts(10));
        assert!(o.assign_write(ts(1_000)) > ts(1_500));
        let mut o = TsOracle::default();
        o.become_leader(ts(1_000), Duration::from_nanos(500), ts(9_000));
        assert!(o.assign_write(ts(1_000)) > ts(9_000));
    }

    #[test]
    fn a_read_on_a_quiet_tablet_is_granted_ahead_of_the_clock() {
        let ahead = Duration::from_nanos(100);
        let quiet = Duration::from_nanos(1_000);
        let mut o = TsOracle::default();
        // Never written: quiet. The grant is ahead of the clock, never below what was asked.
        assert_eq!(o.read_ahead(ts(5_000), ts(5_000), ahead, quiet), ts(5_100));
        assert_eq!(o.read_ahead(ts(5_300), ts(5_000), ahead, quiet), ts(5_300));
        // A write a moment ago, or a transaction prepared: no read ahead.
        let w = o.assign_write(ts(5_000));
        assert_eq!(o.read_ahead(ts(5_500), ts(5_500), ahead, quiet), ts(5_500));
        o.resolve(w);
        o.add_prepared(ts(7_000));
        assert_eq!(o.read_ahead(ts(7_950), ts(7_950), ahead, quiet), ts(7_950));
        o.remove_prepared(ts(7_000));
        assert_eq!(o.read_ahead(ts(9_000), ts(9_000), ahead, quiet), ts(9_100));
        // Granted, the read's timestamp is taken: later writes are above it.
        let granted = o.assign_read(o.read_ahead(ts(9_000), ts(9_000), ahead, quiet));
        assert!(o.assign_write(ts(9_000)) > granted);
    }

    #[test]
    fn reads_wait_for_pending_writes_at_or_below_them() {
        let mut o = TsOracle::default();
        let w1 = o.assign_write(ts(10));
        let w2 = o.assign_write(ts(10));
        assert!(!o.can_serve(w1));
        assert!(o.can_serve(w1.prev()));
        o.resolve(w1);
        assert!(o.can_serve(w1));
        assert!(!o.can_serve(w2));
        o.resolve(w2);
        assert!(o.can_serve(ts(1_000)));
        o.assign_write(ts(5));
        o.step_down();
        assert!(o.can_serve(Timestamp::MAX));
        assert!(o.last_assigned() >= w2);
    }
}
