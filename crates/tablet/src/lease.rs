//! Leader leases measured with TrueTime.
//!
//! A leader serves reads without a Raft round trip, and assigns timestamps, only while
//! `TT.before(lease_end)`. Why no other leader can exist before `lease_end`, in real time:
//!
//! 1. The leader renews its lease by sending a ReadIndex request (a heartbeat round) and noting
//!    `TT.now().earliest` at that moment, `s`. When a quorum has acknowledged the round, each of
//!    those followers heard from the leader at a real time `>= s`.
//! 2. With Raft's check-quorum, a follower that heard from its leader less than an election
//!    timeout ago (counted in its own ticks, which never run faster than real time) grants no
//!    vote or pre-vote. A follower that restarted has forgotten when it last heard from a
//!    leader, so it grants no vote for a full election timeout after it starts (see
//!    [`LeaseState::suppress_vote`]).
//! 3. A new leader needs votes from a quorum, which shares a member with the acknowledging
//!    quorum, so it is elected at real time `> s + election_timeout`.
//! 4. The lease is `s + (election_ticks - 1) × tick × (1 - drift bound)` minus a margin: the
//!    first tick after hearing from the leader may come at once, and the leader's own clock may
//!    run fast by the drift bound. `s <= true time` at renewal, so `lease_end` falls before any
//!    new leader's election.
//!
//! A new leader's timestamps must also exceed every timestamp the old one handed out; the
//! timestamp floor in `tsoracle.rs` keeps that.

use std::time::Duration;

use meridian_clock::{Timestamp, TtInterval};
use raft::prelude::MessageType;

/// The first byte of a ReadIndex context that renews the lease (plain reads use 8-byte ids).
const RENEWAL_TAG: u8 = b'L';

/// Safety margin subtracted from every lease, for scheduling jitter in message handling.
const MARGIN: Duration = Duration::from_millis(10);

/// A replica's lease bookkeeping.
#[derive(Debug)]
pub(crate) struct LeaseState {
    duration: Duration,
    end: Timestamp,
    /// Ticks left during which vote requests are ignored after start.
    quiet_ticks: usize,
}

impl LeaseState {
    /// Lease rules for a group ticking every `tick`, with elections after `election_ticks`,
    /// on clocks whose rate is within `drift_bound_ppm` of true time.
    pub(crate) fn new(tick: Duration, election_ticks: usize, drift_bound_ppm: u64) -> Self {
        let base = tick.saturating_mul(election_ticks.saturating_sub(1) as u32);
        let drift = base.mul_f64(drift_bound_ppm.min(1_000_000) as f64 / 1e6);
        LeaseState {
            duration: base.saturating_sub(drift).saturating_sub(MARGIN),
            end: Timestamp::ZERO,
            // One tick more than an election timeout: the first tick fires at once.
            quiet_ticks: election_ticks + 1,
        }
    }

    /// How long one renewal grants.
    #[cfg(test)]
    pub(crate) fn duration(&self) -> Duration {
        self.duration
    }

    /// Counts a tick of the replica.
    pub(crate) fn on_tick(&mut self) {
        self.quiet_ticks = self.quiet_ticks.saturating_sub(1);
    }

    /// True for vote requests that must be ignored because this replica has just started and
    /// may have promised a leader, before it restarted, not to vote yet.
    pub(crate) fn suppress_vote(&self, msg_type: MessageType) -> bool {
        self.quiet_ticks > 0
            && matches!(
                msg_type,
                MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
            )
    }

    /// The ReadIndex context of a renewal sent when `TT.now().earliest` was `sent`.
    pub(crate) fn renewal_ctx(sent: Timestamp) -> Vec<u8> {
        let mut ctx = vec![RENEWAL_TAG];
        ctx.extend_from_slice(&sent.to_be_bytes());
        ctx
    }

    /// The send time carried by a renewal context; `None` for other contexts.
    pub(crate) fn parse_renewal(ctx: &[u8]) -> Option<Timestamp> {
        match ctx {
            [RENEWAL_TAG, rest @ ..] => {
                <[u8; 8]>::try_from(rest).ok().map(Timestamp::from_be_bytes)
            }
            _ => None,
        }
    }

    /// A quorum acknowledged the renewal sent at `sent`.
    pub(crate) fn renewed(&mut self, sent: Timestamp) {
        self.end = self.end.max(sent.saturating_add(self.duration));
    }

    /// `TT.before(lease_end)`: the lease certainly has not expired.
    pub(crate) fn valid(&self, now: TtInterval) -> bool {
        now.latest < self.end
    }

    /// The lease is gone (leadership lost).
    pub(crate) fn clear(&mut self) {
        self.end = Timestamp::ZERO;
    }

    /// When the lease ends, if there is one.
    pub(crate) fn end(&self) -> Option<Timestamp> {
        (self.end != Timestamp::ZERO).then_some(self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    fn around(ms: u64, eps_ms: u64) -> TtInterval {
        TtInterval {
            earliest: ts(ms - eps_ms),
            latest: ts(ms + eps_ms),
        }
    }

    #[test]
    fn lease_is_shorter_than_the_election_timeout_by_drift_and_margin() {
        let l = LeaseState::new(Duration::from_millis(50), 10, 200);
        // 9 ticks of 50 ms = 450 ms, minus 200 ppm (90 µs), minus the 10 ms margin.
        assert_eq!(l.duration(), Duration::from_micros(450_000 - 90 - 10_000));
        assert!(
            LeaseState::new(Duration::from_millis(50), 1, 200)
                .duration()
                .is_zero()
        );
    }

    #[test]
    fn validity_is_measured_with_the_interval_latest_bound() {
        let mut l = LeaseState::new(Duration::from_millis(100), 11, 0);
        assert!(!l.valid(around(1_000, 1)));
        assert_eq!(l.end(), None);
        l.renewed(ts(1_000));
        let end = ts(1_000).saturating_add(l.duration());
        assert_eq!(l.end(), Some(end));
        assert!(l.valid(around(1_500, 1)));
        // Valid only while even the latest possible true time is before the end.
        let edge = (end.as_nanos() / 1_000_000) - 1;
        assert!(!l.valid(around(edge, 5)));
        // Renewals never shorten a lease.
        l.renewed(ts(500));
        assert_eq!(l.end(), Some(end));
        l.clear();
        assert!(!l.valid(around(1_001, 1)));
    }

    #[test]
    fn renewal_contexts_round_trip_and_plain_reads_are_not_renewals() {
        let ctx = LeaseState::renewal_ctx(ts(42));
        assert_eq!(LeaseState::parse_renewal(&ctx), Some(ts(42)));
        assert_eq!(LeaseState::parse_renewal(&7u64.to_be_bytes()), None);
        assert_eq!(LeaseState::parse_renewal(b"L"), None);
    }

    #[test]
    fn votes_are_suppressed_for_an_election_timeout_after_start() {
        let mut l = LeaseState::new(Duration::from_millis(10), 3, 0);
        for _ in 0..4 {
            assert!(l.suppress_vote(MessageType::MsgRequestVote));
            assert!(l.suppress_vote(MessageType::MsgRequestPreVote));
            assert!(!l.suppress_vote(MessageType::MsgHeartbeat));
            l.on_tick();
        }
        assert!(!l.suppress_vote(MessageType::MsgRequestVote));
    }
}
