//! TrueTime: the physical clock plus a bound on how wrong it can be.
//!
//! `now()` reads the injected [`PhysicalClock`], applies the offset learned at the last sync,
//! and widens the result by epsilon:
//!
//! ```text
//! epsilon = sync uncertainty + drift bound × (physical now − physical reading at last sync)
//! ```
//!
//! so the interval grows the longer the node goes without syncing, until it passes
//! `max_epsilon` and the clock refuses to answer. Protocol code that cannot answer must not
//! assign timestamps.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::sync::{Reading, SyncPoint, agree};
use crate::{
    ClockError, MarzulloOutcome, PhysicalClock, Result, SyncSample, SyncSource, Timestamp,
    TtInterval,
};

/// Configuration of the uncertainty model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrueTimeConfig {
    /// The assumed worst-case rate error of the physical clock, in parts per million
    /// (200 ppm = 200 µs per second, Spanner's assumption). A million or more is unbounded:
    /// the clock then never answers except at the instant of a sync.
    pub drift_bound_ppm: u64,
    /// `now()` fails once epsilon exceeds this.
    pub max_epsilon: Duration,
    /// The uncertainty assumed for the local source (the OS clock disciplined by NTP/chrony).
    pub local_uncertainty: Duration,
}

impl Default for TrueTimeConfig {
    fn default() -> Self {
        TrueTimeConfig {
            drift_bound_ppm: 200,
            max_epsilon: Duration::from_millis(250),
            local_uncertainty: Duration::from_millis(1),
        }
    }
}

/// A snapshot of the clock's state, for `SHOW CLOCK` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockStatus {
    /// The physical clock's reading.
    pub physical_now: Timestamp,
    /// The interval `now()` would return if the clock were usable.
    pub interval: TtInterval,
    /// Its epsilon (sync uncertainty plus drift allowance).
    pub epsilon: Duration,
    /// The physical reading at the last sync.
    pub last_sync: Timestamp,
    /// Physical time since the last sync (zero if the clock went backwards).
    pub since_sync: Duration,
    /// How the last sync was made.
    pub source: SyncSource,
    /// The correction applied to physical readings, in nanoseconds.
    pub offset_nanos: i64,
    /// The uncertainty right after the last sync.
    pub sync_uncertainty: Duration,
    /// Why the clock is fenced, if it is.
    pub fenced: Option<String>,
    /// The error `now()` would return, if any.
    pub error: Option<ClockError>,
}

#[derive(Debug)]
struct State {
    sync: SyncPoint,
    fenced: Option<String>,
}

/// Bounded-uncertainty time: intervals guaranteed to contain true time, as long as the
/// physical clock's drift and the sync sources stay within their stated bounds.
///
/// Share it with `Arc<TrueTime>`; every method takes `&self`.
#[derive(Debug)]
pub struct TrueTime {
    clock: Arc<dyn PhysicalClock>,
    config: TrueTimeConfig,
    state: Mutex<State>,
}

impl TrueTime {
    /// TrueTime over `clock`, synced to the local source now (offset zero, uncertainty
    /// `config.local_uncertainty`).
    pub fn new(clock: Arc<dyn PhysicalClock>, config: TrueTimeConfig) -> Self {
        let sync = SyncPoint::local(clock.now(), config.local_uncertainty);
        TrueTime {
            clock,
            config,
            state: Mutex::new(State { sync, fenced: None }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TrueTimeConfig {
        &self.config
    }

    /// The physical clock, for code that measures elapsed time with it.
    pub fn physical_clock(&self) -> &Arc<dyn PhysicalClock> {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update replaces whole fields, so a panic elsewhere cannot leave them torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the physical clock under the lock, so that a concurrent sync cannot date itself
    /// after the reading.
    fn read(&self, state: &State) -> (Reading, Option<ClockError>) {
        let physical = self.clock.now();
        let reading = state.sync.read(physical, self.config.drift_bound_ppm);
        let error = if let Some(reason) = &state.fenced {
            Some(ClockError::Fenced {
                reason: reason.clone(),
            })
        } else if physical < state.sync.at {
            Some(ClockError::ClockWentBackwards {
                now: physical,
                last_sync: state.sync.at,
            })
        } else if reading.epsilon > self.config.max_epsilon {
            Some(ClockError::UncertaintyTooLarge {
                epsilon: reading.epsilon,
                max: self.config.max_epsilon,
            })
        } else {
            None
        };
        (reading, error)
    }

    fn usable_reading(&self) -> Result<Reading> {
        let state = self.lock();
        match self.read(&state) {
            (reading, None) => Ok(reading),
            (_, Some(error)) => Err(error),
        }
    }

    /// An interval containing true time at some moment during the call.
    ///
    /// Fails when the clock is fenced, the physical clock was stepped back since the last
    /// sync, or epsilon exceeds `max_epsilon`. Successive intervals need not be monotonic: a
    /// re-sync can move them.
    pub fn now(&self) -> Result<TtInterval> {
        self.usable_reading().map(|r| r.interval)
    }

    /// The current epsilon, failing exactly when [`TrueTime::now`] would.
    pub fn epsilon(&self) -> Result<Duration> {
        self.usable_reading().map(|r| r.epsilon)
    }

    /// Whether `t` has definitely passed: `t < now().earliest`.
    pub fn after(&self, t: Timestamp) -> Result<bool> {
        Ok(t < self.now()?.earliest)
    }

    /// Whether `t` has definitely not yet arrived: `t > now().latest`.
    pub fn before(&self, t: Timestamp) -> Result<bool> {
        Ok(t > self.now()?.latest)
    }

    /// Waits until `t` has definitely passed (`after(t)`), returning how long that took on
    /// the physical clock.
    ///
    /// Sleeps (on the physical clock's timer) for as long as `earliest` still has to move,
    /// then re-checks, since drift, a slow clock or a re-sync can leave it short. Fails as soon
    /// as the clock becomes unusable. There is no deadline: waiting for a `t` far in the future waits that
    /// long, so callers that need one wrap this in `tokio::time::timeout`.
    pub async fn commit_wait(&self, t: Timestamp) -> Result<Duration> {
        let start = self.clock.now();
        loop {
            let earliest = self.now()?.earliest;
            if t < earliest {
                return Ok(self.clock.now().duration_since(start));
            }
            let remaining = t.duration_since(earliest) + Duration::from_nanos(1);
            self.clock.sleep(remaining).await;
        }
    }

    /// Re-syncs to the local source: the physical clock is taken as correct to within
    /// `local_uncertainty`, any learned offset is dropped, and the drift term restarts.
    pub fn sync_local(&self) {
        let mut state = self.lock();
        state.sync = SyncPoint::local(self.clock.now(), self.config.local_uncertainty);
    }

    /// Records one exchange with a time source: the offset becomes the midpoint of the
    /// source's interval minus the midpoint of the local round trip, and the uncertainty half
    /// the round trip plus the source's epsilon. Fails, changing nothing, on a malformed
    /// sample.
    ///
    /// The sample replaces the previous sync even if it is less precise: the previous sync may
    /// be what is wrong.
    pub fn record_sync(&self, sample: SyncSample) -> Result<()> {
        let mut state = self.lock();
        state.sync = SyncPoint::from_sample(&sample, self.clock.now())?;
        Ok(())
    }

    /// Records what a strict majority of `samples` agree on (see [`crate::marzullo`]),
    /// reporting which sources agreed and which were rejected as liars. Fails, changing
    /// nothing, if any sample is malformed or no majority agrees.
    pub fn record_marzullo(&self, samples: &[SyncSample]) -> Result<MarzulloOutcome> {
        let mut state = self.lock();
        let (sync, outcome) = agree(samples, self.clock.now(), self.config.drift_bound_ppm)?;
        state.sync = sync;
        Ok(outcome)
    }

    /// Fences the clock: `now()` and everything built on it fail with
    /// [`ClockError::Fenced`] until [`TrueTime::unfence`]. Syncing does not unfence.
    pub fn fence(&self, reason: impl Into<String>) {
        self.lock().fenced = Some(reason.into());
    }

    /// Lifts a fence.
    pub fn unfence(&self) {
        self.lock().fenced = None;
    }

    /// A snapshot of the clock's state; never fails.
    pub fn status(&self) -> ClockStatus {
        let state = self.lock();
        let (reading, error) = self.read(&state);
        ClockStatus {
            physical_now: reading.physical,
            interval: reading.interval,
            epsilon: reading.epsilon,
            last_sync: state.sync.at,
            since_sync: reading.since_sync,
            source: state.sync.source.clone(),
            offset_nanos: state.sync.offset_nanos,
            sync_uncertainty: state.sync.uncertainty,
            fenced: state.fenced.clone(),
            error,
        }
    }
}
