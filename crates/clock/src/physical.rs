//! Physical clocks: the only way protocol code reads wall time.
//!
//! [`SystemClock`] reads the operating system; [`ManualClock`] is driven by tests and
//! simulations, with a configurable offset and drift from a "true" time it also exposes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Timestamp;

/// A source of wall-clock readings.
///
/// Readings carry no uncertainty of their own; [`crate::TrueTime`] bounds how far they may be
/// from true time. A reading may jump (an operator or NTP may step the clock), so callers must
/// not assume readings are monotonic.
pub trait PhysicalClock: Send + Sync + fmt::Debug {
    /// The current reading.
    fn now(&self) -> Timestamp;

    /// Waits about `duration` of this clock's time; [`crate::TrueTime::commit_wait`] sleeps
    /// with it and checks the clock again after. By default on tokio's timer (so tests on
    /// tokio's paused clock stay deterministic), which rounds up to whole milliseconds.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The operating system's wall clock (disciplined by NTP or chrony on a real node).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "SystemClock is the one place that reads the operating system's wall clock"
    )]
    fn now(&self) -> Timestamp {
        // A clock set before 1970 reads as the epoch; TrueTime's uncertainty model, not this
        // reading, is what protects correctness.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) => Timestamp::ZERO.saturating_add(since_epoch),
            Err(_) => Timestamp::ZERO,
        }
    }

    /// Within tens of microseconds of `duration` (see `precise.rs`): commit wait should last
    /// no longer than the uncertainty requires.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        crate::precise::sleep(duration)
    }
}

/// A clock moved by hand, for tests and simulations.
///
/// It keeps a *true* time, moved only by [`ManualClock::set`] and [`ManualClock::advance`], and
/// reports `true time + offset + accumulated drift`:
///
/// - the offset ([`ManualClock::set_offset_nanos`]) is a fixed error, positive when the clock is
///   ahead;
/// - the drift ([`ManualClock::set_drift_ppm`]) makes the clock gain that many nanoseconds per
///   millisecond of true time (parts per million), accumulated as true time advances and kept
///   when the drift rate later changes.
///
/// Clones share one clock, so a test can hold a handle while [`crate::TrueTime`] holds another.
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    true_now: Timestamp,
    offset_nanos: i64,
    drift_ppm: i64,
    /// The sum over all true-time advances of `elapsed nanoseconds × drift ppm`; the drift
    /// accumulated so far is this divided by one million. Keeping the undivided sum makes the
    /// drift exact however the time is advanced.
    drift_ppm_nanos: i128,
}

const PPM: i128 = 1_000_000;

impl ManualClock {
    /// A clock whose true time and reading both start at `start`, with no offset or drift.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                true_now: start,
                offset_nanos: 0,
                drift_ppm: 0,
                drift_ppm_nanos: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        // The state is plain numbers updated in place; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves true time to `t`. Moving forward accumulates drift as [`ManualClock::advance`]
    /// does; moving backward is a jump that leaves the accumulated drift unchanged.
    pub fn set(&self, t: Timestamp) {
        let mut s = self.lock();
        if t > s.true_now {
            let elapsed = i128::from(t.as_nanos() - s.true_now.as_nanos());
            s.drift_ppm_nanos = s
                .drift_ppm_nanos
                .saturating_add(elapsed.saturating_mul(i128::from(s.drift_ppm)));
        }
        s.true_now = t;
    }

    /// Advances true time by `d` (saturating at [`Timestamp::MAX`]).
    pub fn advance(&self, d: Duration) {
        let target = self.true_now().saturating_add(d);
        self.set(target);
    }

    /// Sets the fixed offset of readings from true time; negative means the clock is behind.
    pub fn set_offset_nanos(&self, offset_nanos: i64) {
        self.lock().offset_nanos = offset_nanos;
    }

    /// Sets the drift rate for subsequent advances: positive runs fast, negative runs slow.
    pub fn set_drift_ppm(&self, drift_ppm: i64) {
        self.lock().drift_ppm = drift_ppm;
    }

    /// The fixed offset, as set by [`ManualClock::set_offset_nanos`].
    pub fn offset_nanos(&self) -> i64 {
        self.lock().offset_nanos
    }

    /// The drift rate, as set by [`ManualClock::set_drift_ppm`].
    pub fn drift_ppm(&self) -> i64 {
        self.lock().drift_ppm
    }

    /// The true time, which the readings approximate. Tests check TrueTime's bounds against it.
    pub fn true_now(&self) -> Timestamp {
        self.lock().true_now
    }

    /// The drift accumulated so far, in nanoseconds (rounded toward zero).
    pub fn accumulated_drift_nanos(&self) -> i128 {
        self.lock().drift_ppm_nanos / PPM
    }
}

impl PhysicalClock for ManualClock {
    fn now(&self) -> Timestamp {
        let s = self.lock();
        let reading = i128::from(s.true_now.as_nanos())
            + i128::from(s.offset_nanos)
            + s.drift_ppm_nanos / PPM;
        let clamped = reading.clamp(0, i128::from(u64::MAX));
        Timestamp::from_nanos(u64::try_from(clamped).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("ManualClock")
            .field("true_now", &s.true_now)
            .field("offset_nanos", &s.offset_nanos)
            .field("drift_ppm", &s.drift_ppm)
            .field("accumulated_drift_nanos", &(s.drift_ppm_nanos / PPM))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);

    #[test]
    fn reads_true_time_without_offset_or_drift() {
        let clock = ManualClock::new(START);
        assert_eq!(clock.now(), START);
        clock.advance(Duration::from_millis(5));
        assert_eq!(clock.now(), START.saturating_add(Duration::from_millis(5)));
        assert_eq!(clock.true_now(), clock.now());
    }

    #[test]
    fn offset_shifts_readings_both_ways() {
        let clock = ManualClock::new(START);
        clock.set_offset_nanos(1_500);
        assert_eq!(clock.now().as_nanos(), START.as_nanos() + 1_500);
        clock.set_offset_nanos(-2_000);
        assert_eq!(clock.now().as_nanos(), START.as_nanos() - 2_000);
        assert_eq!(clock.true_now(), START);
        assert_eq!(clock.offset_nanos(), -2_000);
    }

    #[test]
    fn drift_accumulates_with_true_time_and_survives_rate_changes() {
        let clock = ManualClock::new(START);
        clock.set_drift_ppm(100);
        clock.advance(Duration::from_secs(10)); // +1 ms of drift
        assert_eq!(clock.accumulated_drift_nanos(), 1_000_000);
        clock.set_drift_ppm(-50);
        clock.advance(Duration::from_secs(10)); // -0.5 ms of drift
        assert_eq!(clock.accumulated_drift_nanos(), 500_000);
        let true_now = clock.true_now();
        assert_eq!(true_now, START.saturating_add(Duration::from_secs(20)));
        assert_eq!(clock.now().as_nanos(), true_now.as_nanos() + 500_000);
    }

    #[test]
    fn drift_is_exact_across_many_small_steps() {
        let clock = ManualClock::new(START);
        clock.set_drift_ppm(3);
        for _ in 0..1_000 {
            clock.advance(Duration::from_nanos(1_000)); // 0.003 ns each
        }
        assert_eq!(clock.accumulated_drift_nanos(), 3);
    }

    #[test]
    fn setting_backwards_is_a_jump_without_drift() {
        let clock = ManualClock::new(START);
        clock.set_drift_ppm(1_000);
        clock.advance(Duration::from_secs(1)); // +1 ms drift
        clock.set(START);
        assert_eq!(clock.true_now(), START);
        assert_eq!(clock.now().as_nanos(), START.as_nanos() + 1_000_000);
    }

    #[test]
    fn readings_saturate_instead_of_wrapping() {
        let clock = ManualClock::new(Timestamp::from_nanos(10));
        clock.set_offset_nanos(-100);
        assert_eq!(clock.now(), Timestamp::ZERO);
        clock.set_offset_nanos(100);
        clock.set(Timestamp::MAX);
        assert_eq!(clock.now(), Timestamp::MAX);
    }

    #[test]
    fn system_clock_reads_after_2020() {
        let now = SystemClock.now();
        assert!(
            now > "2020-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
            "{now}"
        );
    }
}
