//! TrueTime's epsilon model, syncing, fencing and interval semantics, on a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{
    ClockError, ManualClock, PhysicalClock, SyncSample, SyncSource, Timestamp, TrueTime,
    TrueTimeConfig, TtInterval, drift_allowance,
};

const START: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);
const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

fn setup() -> (ManualClock, TrueTime) {
    let clock = ManualClock::new(START);
    let tt = TrueTime::new(Arc::new(clock.clone()), TrueTimeConfig::default());
    (clock, tt)
}

/// A truthful source: reads true time halfway through a round trip of `rtt`, with epsilon
/// `source_epsilon`.
fn truthful_sample(clock: &ManualClock, rtt: Duration, source_epsilon: Duration) -> SyncSample {
    let local_send = clock.now();
    clock.advance(rtt / 2);
    let source = TtInterval::around(clock.true_now(), source_epsilon);
    clock.advance(rtt / 2);
    SyncSample {
        local_send,
        local_receive: clock.now(),
        source,
    }
}

#[test]
fn starts_synced_to_the_local_source() {
    let (clock, tt) = setup();
    assert_eq!(tt.epsilon().unwrap(), MS);
    assert_eq!(tt.now().unwrap(), TtInterval::around(clock.now(), MS));
    let status = tt.status();
    assert_eq!(status.source, SyncSource::Local);
    assert_eq!(
        (status.last_sync, status.offset_nanos, status.since_sync),
        (START, 0, Duration::ZERO)
    );
    assert_eq!(status.error, None);
}

#[test]
fn epsilon_grows_with_drift_bound_times_time_since_sync() {
    let (clock, tt) = setup();
    let mut last = tt.epsilon().unwrap();
    for secs in [1, 10, 100, 1_000] {
        clock.set(START.saturating_add(Duration::from_secs(secs)));
        let eps = tt.epsilon().unwrap();
        // 200 µs per second since the sync, plus rounding up of well under a microsecond.
        let drift = Duration::from_micros(200 * secs);
        assert!(
            eps >= MS + drift && eps <= MS + drift + drift / 4_000 + US,
            "{secs}s: {eps:?}"
        );
        assert_eq!(eps, MS + drift_allowance(Duration::from_secs(secs), 200));
        assert!(eps > last);
        last = eps;
        assert_eq!(tt.now().unwrap(), TtInterval::around(clock.now(), eps));
    }
}

#[test]
fn exceeding_max_epsilon_fails_and_syncing_recovers() {
    let (clock, tt) = setup();
    // 1 ms + 200 ppm × 1244 s ≈ 249.85 ms: still usable.
    clock.advance(Duration::from_secs(1_244));
    assert!(tt.now().is_ok());
    // One second more ≈ 250.05 ms: over the 250 ms maximum.
    clock.advance(Duration::from_secs(1));
    match tt.now() {
        Err(ClockError::UncertaintyTooLarge { epsilon, max }) => {
            assert_eq!(max, Duration::from_millis(250));
            assert!(epsilon > max, "{epsilon:?}");
        }
        other => panic!("expected UncertaintyTooLarge, got {other:?}"),
    }
    assert!(tt.epsilon().is_err() && tt.after(START).is_err() && tt.before(START).is_err());
    let status = tt.status();
    assert!(status.epsilon > status.sync_uncertainty);
    assert!(matches!(
        status.error,
        Some(ClockError::UncertaintyTooLarge { .. })
    ));

    tt.sync_local();
    assert_eq!(tt.epsilon().unwrap(), MS);
    assert_eq!(tt.status().last_sync, clock.now());
}

#[test]
fn after_and_before_at_the_interval_edges() {
    let (_clock, tt) = setup();
    let TtInterval { earliest, latest } = tt.now().unwrap();
    // after(t) holds only strictly below earliest; before(t) only strictly above latest.
    assert!(tt.after(earliest.prev()).unwrap());
    assert!(!tt.after(earliest).unwrap());
    assert!(!tt.after(latest).unwrap());
    assert!(tt.before(latest.next()).unwrap());
    assert!(!tt.before(latest).unwrap());
    assert!(!tt.before(earliest).unwrap());
}

#[test]
fn manual_clock_offset_is_reported_but_not_corrected_by_the_local_source() {
    let (clock, tt) = setup();
    clock.set_offset_nanos(400_000); // 0.4 ms ahead: inside the 1 ms local uncertainty
    let now = tt.now().unwrap();
    assert_eq!(now.midpoint(), clock.now());
    assert!(now.contains(clock.true_now()));
}

#[test]
fn record_sync_learns_offset_and_uncertainty() {
    let (clock, tt) = setup();
    clock.set_offset_nanos(5_000_000); // 5 ms ahead: outside what the local source allows
    tt.sync_local();
    assert!(!tt.now().unwrap().contains(clock.true_now()));

    let sample = truthful_sample(&clock, 200 * US, 50 * US);
    assert_eq!(sample.round_trip(), 200 * US);
    tt.record_sync(sample).unwrap();
    let status = tt.status();
    assert_eq!(status.offset_nanos, -5_000_000);
    assert_eq!(status.sync_uncertainty, 150 * US); // rtt/2 + source epsilon
    assert_eq!(status.source, SyncSource::Sample);
    assert_eq!(status.last_sync, sample.local_send);
    let now = tt.now().unwrap();
    assert!(
        now.contains(clock.true_now()),
        "{now} vs {}",
        clock.true_now()
    );
    assert_eq!(now.midpoint(), clock.true_now());
}

#[test]
fn malformed_sample_changes_nothing() {
    let (clock, tt) = setup();
    let before = tt.status();
    let sample = SyncSample {
        local_send: clock.now(),
        local_receive: clock.now().saturating_add(MS), // in the local clock's future
        source: TtInterval::around(clock.now(), US),
    };
    assert!(matches!(
        tt.record_sync(sample),
        Err(ClockError::InvalidSample { index: 0, .. })
    ));
    assert!(matches!(
        tt.record_marzullo(&[sample, sample]),
        Err(ClockError::InvalidSample { index: 0, .. })
    ));
    assert_eq!(tt.status(), before);
}

#[test]
fn record_marzullo_rejects_liars() {
    let (clock, tt) = setup();
    clock.set_offset_nanos(-3_000_000);
    let mut samples: Vec<SyncSample> = (1..=3)
        .map(|i| truthful_sample(&clock, i * 100 * US, 20 * US))
        .collect();
    let mut liar = truthful_sample(&clock, 100 * US, 20 * US);
    liar.source = TtInterval::around(liar.source.midpoint().saturating_add(MS * 40), US);
    samples.insert(1, liar);

    let outcome = tt.record_marzullo(&samples).unwrap();
    assert_eq!(outcome.agreeing, vec![0, 2, 3]);
    assert_eq!(outcome.rejected, vec![1]);
    let status = tt.status();
    assert_eq!(
        status.source,
        SyncSource::Marzullo {
            agreeing: 3,
            sources: 4
        }
    );
    assert_eq!(status.offset_nanos, outcome.offset_nanos);
    assert!(
        (outcome.offset_nanos - 3_000_000).abs() <= 20_000,
        "{}",
        outcome.offset_nanos
    );
    // No wider than the tightest truthful sample (rtt/2 + 20 µs = 70 µs) plus the drift
    // allowance for its age relative to the newest sample.
    assert!(outcome.uncertainty <= 71 * US, "{:?}", outcome.uncertainty);
    assert!(tt.now().unwrap().contains(clock.true_now()));
}

#[test]
fn record_marzullo_without_majority_changes_nothing() {
    let (clock, tt) = setup();
    let a = truthful_sample(&clock, 100 * US, 10 * US);
    let mut b = truthful_sample(&clock, 100 * US, 10 * US);
    b.source = TtInterval::around(b.source.midpoint().saturating_add(MS), US);
    let before = tt.status();
    assert_eq!(
        tt.record_marzullo(&[a, b]),
        Err(ClockError::NoMajority {
            agreeing: 1,
            sources: 2
        })
    );
    assert_eq!(
        tt.record_marzullo(&[]),
        Err(ClockError::NoMajority {
            agreeing: 0,
            sources: 0
        })
    );
    assert_eq!(tt.status(), before);
}

#[test]
fn fencing_blocks_every_reading_until_unfenced() {
    let (_clock, tt) = setup();
    tt.fence("offset from the cluster exceeds the bound");
    let fenced = ClockError::Fenced {
        reason: "offset from the cluster exceeds the bound".into(),
    };
    assert_eq!(tt.now(), Err(fenced.clone()));
    assert_eq!(tt.epsilon(), Err(fenced.clone()));
    assert_eq!(tt.after(Timestamp::ZERO), Err(fenced.clone()));
    assert_eq!(tt.before(Timestamp::MAX), Err(fenced.clone()));
    tt.sync_local();
    assert_eq!(tt.now(), Err(fenced.clone()));
    let status = tt.status();
    assert_eq!(
        status.fenced.as_deref(),
        Some("offset from the cluster exceeds the bound")
    );
    assert_eq!(status.error, Some(fenced));
    tt.unfence();
    assert!(tt.now().is_ok());
    assert_eq!(tt.status().fenced, None);
}

#[test]
fn stepping_the_physical_clock_back_requires_a_resync() {
    let (clock, tt) = setup();
    clock.advance(Duration::from_secs(1));
    tt.sync_local();
    clock.set(START);
    assert_eq!(
        tt.now(),
        Err(ClockError::ClockWentBackwards {
            now: START,
            last_sync: START.saturating_add(Duration::from_secs(1))
        })
    );
    tt.sync_local();
    assert!(tt.now().is_ok());
}

#[test]
fn errors_explain_themselves() {
    let err = ClockError::UncertaintyTooLarge {
        epsilon: 300 * MS,
        max: 250 * MS,
    };
    assert_eq!(
        err.to_string(),
        "clock uncertainty 300ms exceeds the maximum of 250ms; the clock must re-sync"
    );
}

/// Guards against a drift allowance that forgets readings are whole nanoseconds: a clock
/// drifting at exactly the bound can then gain one nanosecond more than the exact drift.
#[test]
fn drift_allowance_covers_rounding_of_whole_nanosecond_readings() {
    let clock = ManualClock::new(START);
    clock.set_drift_ppm(-200); // slow by exactly the bound
    clock.advance(Duration::from_nanos(4_999)); // 0.9998 ns of drift, not yet visible
    clock.set_offset_nanos(-1_000_000); // behind by exactly the local uncertainty
    let tt = TrueTime::new(Arc::new(clock.clone()), TrueTimeConfig::default());
    assert!(tt.now().unwrap().contains(clock.true_now()));

    // 5001 ns of true time add 1.0002 ns of drift, which shows as 2 ns: the clock reads
    // 4999 ns later and now lags true time by 1 ms + 2 ns.
    clock.advance(Duration::from_nanos(5_001));
    assert_eq!(
        clock.now().as_nanos(),
        clock.true_now().as_nanos() - 1_000_002
    );
    let now = tt.now().unwrap();
    assert_eq!(now.epsilon(), Duration::from_nanos(1_000_002));
    assert!(
        now.contains(clock.true_now()),
        "{now} vs {}",
        clock.true_now()
    );
    assert_eq!(now.latest, clock.true_now());
}
