//! Clock synchronisation: a node polls its time masters over gRPC and intersects their
//! answers with Marzullo's algorithm (see `meridian_clock::TrueTime::record_marzullo`); a node
//! with no masters, or that is a master itself, trusts its local source (the operating
//! system's disciplined clock).
//!
//! A node whose masters disagree with no majority fences its clock: `TrueTime::now()` fails, so
//! it assigns no timestamps (no writes, no strong reads) and says why in its log and in
//! `/ready`, until a later round agrees again. A node that reaches no master keeps its last
//! sync; its epsilon grows with the drift bound until it passes `max_epsilon`, and then it stops
//! assigning timestamps the same way.
//!
//! An answer whose round trip alone makes it too uncertain to use (half the round trip plus the
//! master's epsilon at half `max_epsilon` or more: a busy node or network, as during a bulk
//! load) is dropped, as NTP drops high-delay samples: recording it would push epsilon up to
//! the bound and fence a node whose clock is fine. If a round has no usable answer, the node
//! keeps its last sync, which ages only at the drift bound.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{ClockError, SyncSample, Timestamp, TrueTime, TtInterval};
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_client::NodeClient;
use tonic::transport::Channel;

use crate::tls::NodeDialer;

/// The reason a fence set by this module carries, so it only lifts its own fences.
const FENCE_PREFIX: &str = "time masters disagree";

/// Polls `masters`, reached through `dialer`, every `interval` until `stop` resolves.
pub(crate) async fn run(
    clock: Arc<TrueTime>,
    masters: Vec<String>,
    dialer: NodeDialer,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let clients: Vec<(String, NodeClient<Channel>)> = masters
        .iter()
        .filter_map(|addr| match dialer.client(addr, interval.max(Duration::from_millis(200))) {
            Ok(client) => Some((addr.clone(), client)),
            Err(e) => {
                tracing::error!(master = %addr, error = %e, "ignoring unusable time master address");
                None
            }
        })
        .collect();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut was_usable = true;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        if clients.is_empty() {
            clock.sync_local();
        } else {
            sync_round(&clock, &clients).await;
        }
        // Say so once when the clock becomes unusable, and once when it recovers.
        match clock.now() {
            Err(e) if was_usable => {
                tracing::error!(error = %e, "clock unusable: this node assigns no timestamps");
                was_usable = false;
            }
            Ok(_) if !was_usable => {
                tracing::info!("clock usable again");
                was_usable = true;
            }
            _ => {}
        }
    }
}

/// The answers of a round worth recording, with their masters' names: those whose own
/// uncertainty is under half of `max_epsilon` (so one slow round cannot take a node to its
/// bound). `None` when they are not a strict majority of the `masters` polled: recording fewer
/// would let a minority, perhaps a lying one, set the clock.
fn usable(
    samples: Vec<SyncSample>,
    names: Vec<&str>,
    masters: usize,
    max_epsilon: Duration,
) -> Option<(Vec<SyncSample>, Vec<&str>)> {
    let (kept, kept_names): (Vec<SyncSample>, Vec<&str>) = samples
        .into_iter()
        .zip(names)
        .filter(|(s, _)| s.uncertainty() < max_epsilon / 2)
        .unzip();
    (kept.len() * 2 > masters).then_some((kept, kept_names))
}

/// Asks every master for its interval and records what a majority agrees on.
async fn sync_round(clock: &TrueTime, clients: &[(String, NodeClient<Channel>)]) {
    let mut samples = Vec::new();
    let mut names = Vec::new();
    for (addr, client) in clients {
        let local_send = clock.physical_clock().now();
        match client.clone().time(pb::TimeRequest {}).await {
            Ok(resp) => {
                let local_receive = clock.physical_clock().now();
                let r = resp.into_inner();
                let source = TtInterval {
                    earliest: Timestamp::from_nanos(r.earliest),
                    latest: Timestamp::from_nanos(r.latest),
                };
                samples.push(SyncSample {
                    local_send,
                    local_receive,
                    source,
                });
                names.push(addr.as_str());
            }
            Err(status) => {
                tracing::debug!(master = %addr, error = %status.message(), "time master unreachable");
            }
        }
    }
    if samples.is_empty() {
        tracing::warn!(epsilon = ?clock.status().epsilon, "no time master reachable; keeping the last sync");
        return;
    }
    let Some((samples, names)) = usable(samples, names, clients.len(), clock.config().max_epsilon)
    else {
        tracing::warn!(epsilon = ?clock.status().epsilon,
            "too few time masters answered fast enough to be useful; keeping the last sync");
        return;
    };
    match clock.record_marzullo(&samples) {
        Ok(outcome) => {
            if !outcome.rejected.is_empty() {
                let liars: Vec<&str> = outcome.rejected.iter().map(|&i| names[i]).collect();
                tracing::warn!(
                    ?liars,
                    "time masters disagreeing with the majority were ignored"
                );
            }
            if clock
                .status()
                .fenced
                .as_deref()
                .is_some_and(|r| r.starts_with(FENCE_PREFIX))
            {
                clock.unfence();
            }
        }
        Err(ClockError::NoMajority { agreeing, sources }) => {
            let reason = format!(
                "{FENCE_PREFIX}: at most {agreeing} of {sources} agree, no majority ({})",
                names.join(", ")
            );
            tracing::error!(%reason, "fencing the clock");
            clock.fence(reason);
        }
        Err(e) => tracing::warn!(error = %e, "time sync round rejected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(round_trip_ms: u64, source_eps_ms: u64) -> SyncSample {
        let send = Timestamp::from_nanos(1_000_000_000_000);
        let mid = Timestamp::from_nanos(2_000_000_000_000);
        let eps = Duration::from_millis(source_eps_ms).as_nanos() as u64;
        SyncSample {
            local_send: send,
            local_receive: Timestamp::from_nanos(
                send.as_nanos() + Duration::from_millis(round_trip_ms).as_nanos() as u64,
            ),
            source: TtInterval {
                earliest: Timestamp::from_nanos(mid.as_nanos() - eps),
                latest: Timestamp::from_nanos(mid.as_nanos() + eps),
            },
        }
    }

    #[test]
    fn slow_answers_are_dropped_and_a_minority_is_not_enough() {
        let max = Duration::from_millis(100);
        assert_eq!(sample(40, 5).uncertainty(), Duration::from_millis(25));
        // Two of three fast enough: a majority, the slow one dropped.
        let (kept, names) = usable(
            vec![sample(2, 1), sample(240, 1), sample(4, 1)],
            vec!["a", "b", "c"],
            3,
            max,
        )
        .unwrap();
        assert_eq!((kept.len(), names), (2, vec!["a", "c"]));
        // A round trip of 240 ms (uncertainty 120 ms) alone never moves the clock.
        assert!(usable(vec![sample(240, 1)], vec!["a"], 1, max).is_none());
        // Nor does a master's own large epsilon.
        assert!(usable(vec![sample(2, 60)], vec!["a"], 1, max).is_none());
        // One fast answer out of three masters is a minority.
        assert!(usable(vec![sample(2, 1)], vec!["a"], 3, max).is_none());
    }
}
