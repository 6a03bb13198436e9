//! Sync samples and the uncertainty model.
//!
//! A sync learns the *offset* of true time from the local physical clock, as a window
//! `offset ∈ [lo, hi]` valid at one local reading. TrueTime keeps it as a midpoint (the offset
//! it applies to readings) and a half-width (the sync uncertainty); afterwards the offset can
//! wander by at most the drift bound times the time elapsed, which is the second term of
//! epsilon.

use std::time::Duration;

use crate::marzullo::{intersect_majority, marzullo};
use crate::{ClockError, Result, Timestamp, TtInterval};

const PPM: u128 = 1_000_000;

/// One exchange with a time source: the local clock read `local_send`, the source answered
/// with its own TrueTime interval `source`, and the local clock read `local_receive` when the
/// answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSample {
    /// Local physical reading when the request was sent.
    pub local_send: Timestamp,
    /// Local physical reading when the answer arrived.
    pub local_receive: Timestamp,
    /// The source's interval, read at some moment during the round trip.
    pub source: TtInterval,
}

impl SyncSample {
    /// The round trip as measured by the local clock.
    pub fn round_trip(&self) -> Duration {
        self.local_receive.duration_since(self.local_send)
    }

    /// The uncertainty this sample alone gives: half the round trip plus the source's epsilon.
    pub fn uncertainty(&self) -> Duration {
        let source_eps = self.source.latest.duration_since(self.source.earliest) / 2;
        self.round_trip() / 2 + source_eps
    }

    /// The window of offsets (true time minus local reading) this sample allows.
    ///
    /// The source read its clock at some moment during the round trip, when the local clock
    /// read between `local_send` and `local_receive`, so the offset then lay in
    /// `[source.earliest - local_receive, source.latest - local_send]`: its half-width is the
    /// source's epsilon plus half the round trip. The window is dated `local_send`, the earliest
    /// the source can have answered, so drift is counted from then.
    fn window(&self, index: usize, local_now: Timestamp) -> Result<OffsetWindow> {
        let invalid = |reason: String| ClockError::InvalidSample { index, reason };
        if self.local_receive < self.local_send {
            return Err(invalid(format!(
                "received at {} before it was sent at {}",
                self.local_receive, self.local_send
            )));
        }
        if self.local_receive > local_now {
            return Err(invalid(format!(
                "received at {}, after the local clock's current reading {local_now}",
                self.local_receive
            )));
        }
        if self.source.latest < self.source.earliest {
            return Err(invalid(format!(
                "source interval {} is inverted",
                self.source
            )));
        }
        Ok(OffsetWindow {
            lo: nanos(self.source.earliest) - nanos(self.local_receive),
            hi: nanos(self.source.latest) - nanos(self.local_send),
            at: self.local_send,
        })
    }
}

fn nanos(t: Timestamp) -> i128 {
    i128::from(t.as_nanos())
}

/// `t + delta` nanoseconds, saturating at the ends of time.
fn add_signed(t: Timestamp, delta: i128) -> Timestamp {
    let sum = (nanos(t) + delta).clamp(0, i128::from(u64::MAX));
    Timestamp::from_nanos(u64::try_from(sum).unwrap_or(u64::MAX))
}

fn duration_nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// How far the offset may have moved after `elapsed` of local time, given that the local
/// clock's rate is within `drift_bound_ppm` parts per million of true time.
///
/// Rounded so that it never underestimates: the elapsed local time is scaled by
/// `1 / (1 - bound)` because a slow clock under-measures true time, the division rounds up,
/// and one nanosecond is added because readings are whole nanoseconds, so a drifting clock's
/// reading can be a nanosecond off the exact drifted value. A bound of a million ppm or more
/// means the clock may stand still, and no finite allowance is sound; the result is then
/// `u64::MAX` nanoseconds, which exceeds any sensible maximum epsilon.
pub fn drift_allowance(elapsed: Duration, drift_bound_ppm: u64) -> Duration {
    if elapsed.is_zero() || drift_bound_ppm == 0 {
        return Duration::ZERO;
    }
    let bound = u128::from(drift_bound_ppm);
    if bound >= PPM {
        return Duration::from_nanos(u64::MAX);
    }
    let drift = elapsed
        .as_nanos()
        .saturating_mul(bound)
        .div_ceil(PPM - bound);
    Duration::from_nanos(u64::try_from(drift.saturating_add(1)).unwrap_or(u64::MAX))
}

/// True time minus the local reading lay in `[lo, hi]` as of local reading `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetWindow {
    lo: i128,
    hi: i128,
    at: Timestamp,
}

impl OffsetWindow {
    /// The same knowledge dated `later`: widened by the drift allowance for the time between.
    fn carried_to(self, later: Timestamp, drift_bound_ppm: u64) -> OffsetWindow {
        let widen = duration_nanos(drift_allowance(
            later.duration_since(self.at),
            drift_bound_ppm,
        ));
        OffsetWindow {
            lo: self.lo - widen,
            hi: self.hi + widen,
            at: later,
        }
    }
}

/// How the last sync was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncSource {
    /// Synced to the local source: the operating system clock, trusted to within
    /// `TrueTimeConfig::local_uncertainty`.
    Local,
    /// Synced from one sample of a time source.
    Sample,
    /// Synced from several time sources intersected with Marzullo's algorithm.
    Marzullo {
        /// How many sources agreed.
        agreeing: usize,
        /// How many sources were consulted.
        sources: usize,
    },
}

/// What the last sync established: at local reading `at`, true time was the local reading
/// plus `offset_nanos`, give or take `uncertainty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncPoint {
    pub(crate) at: Timestamp,
    pub(crate) offset_nanos: i64,
    pub(crate) uncertainty: Duration,
    pub(crate) source: SyncSource,
}

/// A physical reading interpreted through a [`SyncPoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) physical: Timestamp,
    pub(crate) since_sync: Duration,
    pub(crate) epsilon: Duration,
    pub(crate) interval: TtInterval,
}

impl SyncPoint {
    /// Synced to the local source at local reading `at`: no correction.
    pub(crate) fn local(at: Timestamp, uncertainty: Duration) -> Self {
        SyncPoint {
            at,
            offset_nanos: 0,
            uncertainty,
            source: SyncSource::Local,
        }
    }

    /// The midpoint and half-width (rounded up, so the window is covered) of `window`, or
    /// `None` when the offset does not fit in an `i64` (about ±292 years).
    fn from_window(window: OffsetWindow, source: SyncSource) -> Option<Self> {
        let offset = window.lo + (window.hi - window.lo) / 2;
        let half_width = u64::try_from(window.hi - offset).unwrap_or(u64::MAX);
        Some(SyncPoint {
            at: window.at,
            offset_nanos: i64::try_from(offset).ok()?,
            uncertainty: Duration::from_nanos(half_width),
            source,
        })
    }

    /// From one sample, given the local clock's current reading.
    pub(crate) fn from_sample(sample: &SyncSample, local_now: Timestamp) -> Result<Self> {
        let window = sample.window(0, local_now)?;
        SyncPoint::from_window(window, SyncSource::Sample).ok_or_else(|| {
            ClockError::InvalidSample {
                index: 0,
                reason: "offset beyond ±292 years".into(),
            }
        })
    }

    /// Interprets physical reading `physical`. A reading before `at` (the clock was stepped
    /// back) is treated as no time elapsed; callers check for that separately.
    pub(crate) fn read(&self, physical: Timestamp, drift_bound_ppm: u64) -> Reading {
        let since_sync = physical.duration_since(self.at);
        let epsilon = self
            .uncertainty
            .saturating_add(drift_allowance(since_sync, drift_bound_ppm));
        let corrected = add_signed(physical, i128::from(self.offset_nanos));
        Reading {
            physical,
            since_sync,
            epsilon,
            interval: TtInterval::around(corrected, epsilon),
        }
    }
}

/// The result of a successful [`crate::TrueTime::record_marzullo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarzulloOutcome {
    /// Indices of the samples whose sources agree, ascending.
    pub agreeing: Vec<usize>,
    /// Indices of the samples whose sources were rejected as liars, ascending.
    pub rejected: Vec<usize>,
    /// The offset now applied to physical readings, in nanoseconds.
    pub offset_nanos: i64,
    /// The sync uncertainty recorded (the half-width of the agreed interval).
    pub uncertainty: Duration,
}

/// Intersects `samples` into one sync point.
///
/// Each sample's offset window is carried to the latest `local_receive` among them (widened by
/// the drift allowance since its own `local_send`) so that all windows describe the same local
/// moment; Marzullo's algorithm then finds what a strict majority agrees on.
pub(crate) fn agree(
    samples: &[SyncSample],
    local_now: Timestamp,
    drift_bound_ppm: u64,
) -> Result<(SyncPoint, MarzulloOutcome)> {
    let windows = samples
        .iter()
        .enumerate()
        .map(|(i, s)| s.window(i, local_now))
        .collect::<Result<Vec<_>>>()?;
    let Some(reference) = samples.iter().map(|s| s.local_receive).max() else {
        return Err(ClockError::NoMajority {
            agreeing: 0,
            sources: 0,
        });
    };
    let intervals: Vec<(i128, i128)> = windows
        .iter()
        .map(|w| w.carried_to(reference, drift_bound_ppm))
        .map(|w| (w.lo, w.hi))
        .collect();
    let Some(majority) = intersect_majority(&intervals) else {
        let agreeing = marzullo(&intervals).map_or(0, |a| a.count);
        return Err(ClockError::NoMajority {
            agreeing,
            sources: samples.len(),
        });
    };
    let agreed = majority.agreement;
    let source = SyncSource::Marzullo {
        agreeing: agreed.count,
        sources: samples.len(),
    };
    let window = OffsetWindow {
        lo: agreed.lo,
        hi: agreed.hi,
        at: reference,
    };
    let point =
        SyncPoint::from_window(window, source).ok_or_else(|| ClockError::InvalidSample {
            index: agreed.members.first().copied().unwrap_or(0),
            reason: "agreed offset beyond ±292 years".into(),
        })?;
    let outcome = MarzulloOutcome {
        agreeing: agreed.members,
        rejected: majority.rejected,
        offset_nanos: point.offset_nanos,
        uncertainty: point.uncertainty,
    };
    Ok((point, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    fn sample(send: u64, receive: u64, earliest: u64, latest: u64) -> SyncSample {
        SyncSample {
            local_send: ts(send),
            local_receive: ts(receive),
            source: TtInterval {
                earliest: ts(earliest),
                latest: ts(latest),
            },
        }
    }

    #[test]
    fn drift_allowance_is_bound_times_elapsed_rounded_up() {
        let cases: &[(Duration, u64, u64)] = &[
            (Duration::ZERO, 200, 0),
            (Duration::from_secs(1), 0, 0),
            // 1 s at 200 ppm is 200 µs; scaled by 1/(1 - 0.0002), rounded up, plus 1 ns: 200_042 ns.
            (Duration::from_secs(1), 200, 200_042),
            (Duration::from_secs(10), 200, 2_000_402),
            (Duration::from_nanos(1), 200, 2),
            (Duration::from_secs(1), 1_000_000, u64::MAX),
        ];
        for &(elapsed, ppm, want) in cases {
            assert_eq!(
                drift_allowance(elapsed, ppm),
                Duration::from_nanos(want),
                "{elapsed:?} at {ppm} ppm"
            );
        }
    }

    #[test]
    fn sample_offset_and_uncertainty() {
        // Round trip 100 ns (local 1_000..1_100); the source said [5_040, 5_060] (epsilon 10).
        // Offsets allowed: [5_040 - 1_100, 5_060 - 1_000] = [3_940, 4_060].
        let p = SyncPoint::from_sample(&sample(1_000, 1_100, 5_040, 5_060), ts(2_000)).unwrap();
        assert_eq!(p.offset_nanos, 4_000);
        assert_eq!(p.uncertainty, Duration::from_nanos(60)); // rtt/2 + source epsilon
        assert_eq!(p.at, ts(1_000));
        let r = p.read(ts(1_100), 0);
        assert_eq!(
            r.interval,
            TtInterval {
                earliest: ts(5_040),
                latest: ts(5_160)
            }
        );
    }

    #[test]
    fn odd_window_rounds_uncertainty_up() {
        let p = SyncPoint::from_sample(&sample(0, 1, 10, 10), ts(1)).unwrap();
        // Window [9, 10]: offset 9, uncertainty 1 covers both ends.
        assert_eq!(
            (p.offset_nanos, p.uncertainty),
            (9, Duration::from_nanos(1))
        );
    }

    #[test]
    fn malformed_samples_are_rejected() {
        let bad = [
            sample(100, 50, 0, 10),  // received before sent
            sample(0, 5_000, 0, 10), // received in the local clock's future
            sample(0, 10, 100, 50),  // inverted source interval
        ];
        for s in bad {
            let err = SyncPoint::from_sample(&s, ts(1_000)).unwrap_err();
            assert!(
                matches!(err, ClockError::InvalidSample { index: 0, .. }),
                "{err}"
            );
        }
        let far = sample(0, 0, u64::MAX, u64::MAX);
        assert!(SyncPoint::from_sample(&far, ts(0)).is_err());
    }

    #[test]
    fn agree_rejects_the_liar_and_reports_indices() {
        let samples = [
            sample(1_000, 1_100, 5_040, 5_060),
            sample(1_000, 1_100, 9_000_000, 9_000_010), // a liar
            sample(1_000, 1_100, 5_050, 5_070),
        ];
        let (point, outcome) = agree(&samples, ts(1_100), 0).unwrap();
        assert_eq!(outcome.agreeing, vec![0, 2]);
        assert_eq!(outcome.rejected, vec![1]);
        // Windows [3_940, 4_060] and [3_950, 4_070] intersect in [3_950, 4_060].
        assert_eq!(
            (point.offset_nanos, point.uncertainty),
            (4_005, Duration::from_nanos(55))
        );
        assert_eq!(point.at, ts(1_100));
        assert_eq!(
            point.source,
            SyncSource::Marzullo {
                agreeing: 2,
                sources: 3
            }
        );
    }

    #[test]
    fn agree_widens_older_samples_by_drift() {
        // The first sample is 1 s older than the second; at 200 ppm its window grows by
        // 200_042 ns on each side, enough to reach the second's window.
        let older = sample(0, 0, 1_000_000, 1_000_000); // offset exactly 1 ms at t=0
        let newer = sample(1_000_000_000, 1_000_000_000, 1_001_150_000, 1_001_150_000);
        let samples = [older, newer];
        assert!(matches!(
            agree(&samples, ts(1_000_000_000), 0),
            Err(ClockError::NoMajority {
                agreeing: 1,
                sources: 2
            })
        ));
        let (point, outcome) = agree(&samples, ts(1_000_000_000), 200).unwrap();
        assert_eq!(outcome.agreeing, vec![0, 1]);
        assert_eq!(point.offset_nanos, 1_150_000);
        assert_eq!(point.uncertainty, Duration::ZERO);
    }

    #[test]
    fn agree_needs_samples() {
        assert_eq!(
            agree(&[], ts(0), 200),
            Err(ClockError::NoMajority {
                agreeing: 0,
                sources: 0
            })
        );
    }
}
