//! Property test: whatever the clock's offset and drift, as long as they stay within what the
//! last sync assumed, every interval TrueTime returns contains true time.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{
    ClockError, ManualClock, PhysicalClock, SyncSample, Timestamp, TrueTime, TrueTimeConfig,
    TtInterval,
};
use proptest::prelude::*;

const START: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);
const DRIFT_BOUND_PPM: i64 = 200;
const LOCAL_UNCERTAINTY_NANOS: i64 = 1_000_000;

/// One exchange with a truthful source.
#[derive(Debug, Clone)]
struct Exchange {
    /// Local-clock time before the source reads its clock (nanoseconds of true time).
    outbound: u64,
    /// Time after it reads its clock.
    inbound: u64,
    /// How far the source's interval reaches below and above true time.
    below: u64,
    above: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    SetDrift(i64),
    SyncLocal,
    Sync(Exchange),
    /// Truthful exchanges, then `liars` sources that answer a second or more away.
    Marzullo(Vec<Exchange>, usize),
}

/// Half the time exactly zero: a source with no uncertainty and an instant round trip leaves
/// the drift allowance as the only slack, which is where an unsound bound would show.
fn nanos_up_to(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 0..max]
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        nanos_up_to(2_000_000),
        nanos_up_to(2_000_000),
        nanos_up_to(500_000),
        nanos_up_to(500_000),
    )
        .prop_map(|(outbound, inbound, below, above)| Exchange {
            outbound,
            inbound,
            below,
            above,
        })
}

/// Often exactly at the bounds, where rounding errors in the model would show.
fn edge_or(bound: i64, range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = i64> {
    prop_oneof![Just(-bound), Just(bound), range]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![0u64..1_000, 0u64..10_000_000, 0u64..200_000_000_000].prop_map(Op::Advance),
        1 => edge_or(DRIFT_BOUND_PPM, -DRIFT_BOUND_PPM..=DRIFT_BOUND_PPM).prop_map(Op::SetDrift),
        1 => Just(Op::SyncLocal),
        1 => exchange().prop_map(Op::Sync),
        // Fewer liars than truthful sources, so the truthful ones are a strict majority.
        1 => prop::collection::vec(exchange(), 1..6)
            .prop_flat_map(|truthful| {
                let liars = 0..truthful.len();
                (Just(truthful), liars)
            })
            .prop_map(|(truthful, liars)| Op::Marzullo(truthful, liars)),
    ]
}

fn run(clock: &ManualClock, x: &Exchange, lie_by: Option<Duration>) -> SyncSample {
    let local_send = clock.now();
    clock.advance(Duration::from_nanos(x.outbound));
    let truth = clock.true_now();
    let source = match lie_by {
        None => TtInterval {
            earliest: truth.saturating_sub(Duration::from_nanos(x.below)),
            latest: truth.saturating_add(Duration::from_nanos(x.above)),
        },
        Some(lie) => TtInterval::around(truth.saturating_add(lie), Duration::from_nanos(x.below)),
    };
    clock.advance(Duration::from_nanos(x.inbound));
    SyncSample {
        local_send,
        local_receive: clock.now(),
        source,
    }
}

/// Whether the clock's reading is within the local source's assumed uncertainty.
fn local_source_is_truthful(clock: &ManualClock) -> bool {
    let error = i128::from(clock.now().as_nanos()) - i128::from(clock.true_now().as_nanos());
    error.abs() <= i128::from(LOCAL_UNCERTAINTY_NANOS)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn intervals_contain_true_time(
        offset in edge_or(LOCAL_UNCERTAINTY_NANOS, -3 * LOCAL_UNCERTAINTY_NANOS..=3 * LOCAL_UNCERTAINTY_NANOS),
        drift in edge_or(DRIFT_BOUND_PPM, -DRIFT_BOUND_PPM..=DRIFT_BOUND_PPM),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let clock = ManualClock::new(START);
        clock.set_offset_nanos(offset);
        clock.set_drift_ppm(drift);
        let tt = TrueTime::new(Arc::new(clock.clone()), TrueTimeConfig::default());
        // Whether the last sync's assumptions hold, so that containment is promised.
        let mut sound = local_source_is_truthful(&clock);

        for op in &ops {
            match op {
                Op::Advance(nanos) => clock.advance(Duration::from_nanos(*nanos)),
                Op::SetDrift(ppm) => clock.set_drift_ppm(*ppm),
                Op::SyncLocal => {
                    sound = local_source_is_truthful(&clock);
                    tt.sync_local();
                }
                Op::Sync(x) => {
                    tt.record_sync(run(&clock, x, None)).unwrap();
                    sound = true;
                }
                Op::Marzullo(truthful, liars) => {
                    let mut samples: Vec<SyncSample> =
                        truthful.iter().map(|x| run(&clock, x, None)).collect();
                    for i in 0..*liars {
                        let lie = Duration::from_secs(1) + Duration::from_millis(10 * i as u64);
                        samples.push(run(&clock, &truthful[0], Some(lie)));
                    }
                    let outcome = tt.record_marzullo(&samples).unwrap();
                    let liar_indices: Vec<usize> = (truthful.len()..samples.len()).collect();
                    prop_assert_eq!(outcome.rejected, liar_indices);
                    sound = true;
                }
            }
            match tt.now() {
                Ok(interval) => {
                    if sound {
                        prop_assert!(
                            interval.contains(clock.true_now()),
                            "{} does not contain {} after {:?}", interval, clock.true_now(), op
                        );
                    }
                }
                Err(ClockError::UncertaintyTooLarge { epsilon, max }) => {
                    prop_assert!(epsilon > max);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
