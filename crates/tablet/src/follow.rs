//! Leaders follow their workload: a tablet whose requests come mostly from another node's SQL
//! gateway hands its leadership to that node's replica, so the requests stop crossing the
//! network twice (gateway to leader, leader to followers) and commit wait is not added to a
//! gRPC round trip.
//!
//! A leader counts where each request it serves comes from ([`Origins`], inside the load
//! tracker, so it is reset with it when the leadership or the range changes): a request
//! forwarded by another node over gRPC carries that node's id (the server crate runs the
//! request inside [`from_gateway`]), any other request comes from the leader's own node. Every
//! placement round ([`crate::placement::balance_leaders`]) turns the counts into decayed rates
//! per node, and [`plan_follow`] decides:
//!
//! - the leadership moves to the voter on node `v` when `v` sends at least
//!   `RangeSettings::follow_qps` requests per second and more than [`FOLLOW_RATIO`] times what
//!   the leader's own node sends. After such a move the old leader's node sends at most
//!   `1 / FOLLOW_RATIO` of the new one's, so the leadership does not swing back unless the
//!   workload itself moves;
//! - balancing leader counts never hands a tablet to a node the rule above would take it back
//!   from ([`held_against`]): count balancing gives way to where the load is.
//!
//! Three rounds of measurement (a few seconds) come before any decision, so a new leader is
//! judged on what it served, not on a burst or on the pause while requests found it.
//! CockroachDB's load-based lease rebalancing works the same way, by locality; here the unit
//! is the node, because within a region the hop between gateway and leader is still the
//! largest cost of a short transaction.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_clock::Timestamp;

/// A remote node sending this many times what the leader's node sends takes the leadership.
pub const FOLLOW_RATIO: f64 = 2.0;

/// Gateways counted one by one; requests from further ones count only towards the total.
const SLOTS: usize = 8;

/// The time constant of the decayed rates.
const DECAY: Duration = Duration::from_secs(4);

/// Measurements (placement rounds) before a leader's rates are trusted: the first interval
/// after a leadership moves includes the requests' pause while they found the new leader.
const MIN_ROUNDS: u32 = 3;

tokio::task_local! {
    static GATEWAY: u64;
}

/// Runs `f` as a request forwarded by node `gateway`: the load it puts on a leader counts as
/// coming from that node.
pub async fn from_gateway<F: Future>(gateway: u64, f: F) -> F::Output {
    GATEWAY.scope(gateway, f).await
}

/// The node that forwarded the request being served, if it came over the network.
pub(crate) fn gateway() -> Option<u64> {
    GATEWAY.try_with(|g| *g).ok()
}

/// Requests counted by the node they came from. Counting is two relaxed atomic operations
/// (finding the node's slot, then incrementing it); a slot is claimed once per node and kept.
pub(crate) struct Origins {
    /// The node each slot counts (0: free).
    nodes: [AtomicU64; SLOTS],
    counts: [AtomicU64; SLOTS],
    /// Requests from nodes without a slot.
    overflow: AtomicU64,
    measure: Mutex<Measure>,
}

#[derive(Debug, Default)]
struct Measure {
    /// The last observation: when, and the slots' counts then.
    last: Option<(Timestamp, [u64; SLOTS])>,
    /// Requests per second per slot, decayed.
    rates: [f64; SLOTS],
    /// Completed measurements since the last reset.
    rounds: u32,
}

impl Origins {
    pub(crate) fn new() -> Origins {
        Origins {
            nodes: std::array::from_fn(|_| AtomicU64::new(0)),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
            measure: Mutex::new(Measure::default()),
        }
    }

    /// Counts one request from node `origin`.
    pub(crate) fn record(&self, origin: u64) {
        for (node, count) in self.nodes.iter().zip(&self.counts) {
            let owner = match node.load(Ordering::Relaxed) {
                0 => match node.compare_exchange(0, origin, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => origin,
                    Err(other) => other,
                },
                n => n,
            };
            if owner == origin {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.overflow.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets the rates (the leadership or the range changed); the slots stay claimed.
    pub(crate) fn reset(&self) {
        *self.measure.lock().unwrap_or_else(|e| e.into_inner()) = Measure::default();
    }

    /// Takes one measurement at `now`.
    pub(crate) fn observe(&self, now: Timestamp) {
        let counts: [u64; SLOTS] = std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed));
        let mut m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        let last = m.last.replace((now, counts));
        let Some((then, before)) = last.filter(|(then, _)| *then < now) else {
            return;
        };
        let elapsed = (now.as_nanos() - then.as_nanos()) as f64 / 1e9;
        let keep = if m.rounds == 0 {
            0.0
        } else {
            (-elapsed / DECAY.as_secs_f64()).exp()
        };
        for i in 0..SLOTS {
            let current = counts[i].saturating_sub(before[i]) as f64 / elapsed;
            m.rates[i] = m.rates[i] * keep + current * (1.0 - keep);
        }
        m.rounds += 1;
    }

    /// Requests per second by origin node, once measured for long enough.
    pub(crate) fn rates(&self) -> Option<Vec<(u64, f64)>> {
        let m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        (m.rounds >= MIN_ROUNDS).then(|| {
            self.nodes
                .iter()
                .zip(m.rates)
                .map(|(n, r)| (n.load(Ordering::Relaxed), r))
                .filter(|(n, _)| *n != 0)
                .collect()
        })
    }
}

fn rate_of(rates: &[(u64, f64)], node: u64) -> f64 {
    rates
        .iter()
        .filter(|(n, _)| *n == node)
        .map(|(_, r)| r)
        .sum()
}

/// Where the leadership of a tablet led by node `me` should go, given its request `rates` by
/// origin node: the voter (not `me`, and `eligible`: live, not draining) sending the most, if
/// it sends at least `min_qps` and more than [`FOLLOW_RATIO`] times what `me` sends.
pub fn plan_follow(
    me: u64,
    voters: &[u64],
    rates: &[(u64, f64)],
    min_qps: f64,
    eligible: impl Fn(u64) -> bool,
) -> Option<u64> {
    if min_qps <= 0.0 {
        return None;
    }
    let local = rate_of(rates, me);
    voters
        .iter()
        .copied()
        .filter(|v| *v != me && eligible(*v))
        .map(|v| (rate_of(rates, v), v))
        .filter(|(r, _)| *r >= min_qps && *r > local * FOLLOW_RATIO)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// Whether count balancing must not hand the leadership from `me` to `to`, because
/// [`plan_follow`] at `to` could hand it back: `me`'s node sends more than [`FOLLOW_RATIO`]
/// times what `to`'s sends, and at least half of `min_qps` (half, so that a rate hovering
/// about the threshold does not send the leadership back and forth).
pub fn held_against(me: u64, to: u64, rates: &[(u64, f64)], min_qps: f64) -> bool {
    let local = rate_of(rates, me);
    min_qps > 0.0 && local >= min_qps / 2.0 && local > rate_of(rates, to) * FOLLOW_RATIO
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tenths: u64) -> Timestamp {
        Timestamp::from_nanos(1_000_000_000 + tenths * 100_000_000)
    }

    #[test]
    fn rates_are_counted_per_origin_and_trusted_after_three_rounds() {
        let o = Origins::new();
        o.observe(at(0));
        for _ in 0..300 {
            o.record(2);
        }
        for _ in 0..100 {
            o.record(1);
        }
        o.observe(at(10));
        assert_eq!(o.rates(), None, "one round is not enough");
        for round in [20, 30] {
            for _ in 0..300 {
                o.record(2);
            }
            for _ in 0..100 {
                o.record(1);
            }
            o.observe(at(round));
        }
        let rates = o.rates().unwrap();
        assert!((rate_of(&rates, 2) - 300.0).abs() < 1e-6, "{rates:?}");
        assert!((rate_of(&rates, 1) - 100.0).abs() < 1e-6, "{rates:?}");
        // The rate decays once the requests stop.
        o.observe(at(40));
        let quieter = rate_of(&o.rates().unwrap(), 2);
        assert!(quieter < 300.0 * 0.9 && quieter > 0.0, "{quieter}");
        // A reset forgets everything measured.
        o.reset();
        assert_eq!(o.rates(), None);
    }

    #[test]
    fn gateways_beyond_the_slots_count_towards_the_total_only() {
        let o = Origins::new();
        for node in 1..=(SLOTS as u64 + 3) {
            o.record(node);
        }
        assert_eq!(o.overflow.load(Ordering::Relaxed), 3);
        let counted: u64 = o.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(counted, SLOTS as u64);
    }

    #[tokio::test]
    async fn a_forwarded_request_carries_its_gateway() {
        assert_eq!(gateway(), None);
        assert_eq!(from_gateway(7, async { gateway() }).await, Some(7));
        assert_eq!(gateway(), None);
    }

    #[test]
    fn leadership_follows_a_dominant_remote_gateway_only() {
        let all = |_| true;
        let voters = [1, 2, 3];
        // Node 2 sends most, well over twice node 1's share: it gets the leadership.
        assert_eq!(
            plan_follow(1, &voters, &[(1, 40.0), (2, 500.0)], 10.0, all),
            Some(2)
        );
        // The biggest sender wins among several that qualify.
        assert_eq!(
            plan_follow(1, &voters, &[(2, 300.0), (3, 500.0)], 10.0, all),
            Some(3)
        );
        // Not twice the leader's own: stays.
        assert_eq!(
            plan_follow(1, &voters, &[(1, 300.0), (2, 500.0)], 10.0, all),
            None
        );
        // Too little load to act on.
        assert_eq!(plan_follow(1, &voters, &[(2, 5.0)], 10.0, all), None);
        // A sender without a voter, or not eligible (draining, not live), cannot take it.
        assert_eq!(plan_follow(1, &voters, &[(4, 500.0)], 10.0, all), None);
        assert_eq!(
            plan_follow(1, &voters, &[(2, 500.0)], 10.0, |n| n != 2),
            None
        );
        // Turned off.
        assert_eq!(plan_follow(1, &voters, &[(2, 500.0)], 0.0, all), None);
        // After a move, the new leader does not hand it back.
        assert_eq!(
            plan_follow(2, &voters, &[(1, 40.0), (2, 500.0)], 10.0, all),
            None
        );
    }

    #[test]
    fn count_balancing_gives_way_to_the_load() {
        let rates = [(1, 500.0), (2, 100.0), (3, 300.0)];
        assert!(held_against(1, 2, &rates, 10.0));
        assert!(!held_against(1, 3, &rates, 10.0), "3 would keep it");
        assert!(!held_against(2, 1, &rates, 10.0));
        assert!(
            held_against(1, 2, &[(1, 6.0)], 10.0),
            "held below the threshold to follow"
        );
        assert!(!held_against(1, 2, &[(1, 4.0)], 10.0), "too little load");
        assert!(!held_against(1, 2, &rates, 0.0), "turned off");
    }
}
