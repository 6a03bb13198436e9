//! Helpers shared by the tablet integration tests.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{SystemClock, TrueTime, TrueTimeConfig};
use meridian_tablet::ReplicaConfig;

/// The system clock with `max_epsilon` as the uncertainty bound.
pub fn clock(max_epsilon: Duration) -> Arc<TrueTime> {
    let config = TrueTimeConfig {
        max_epsilon,
        ..TrueTimeConfig::default()
    };
    Arc::new(TrueTime::new(Arc::new(SystemClock), config))
}

/// Replicas of `tablet` with 10 ms ticks (fast elections) for a clock bounded by
/// `max_epsilon`.
pub fn config(tablet: u64, max_epsilon: Duration) -> ReplicaConfig {
    ReplicaConfig {
        tick_interval: Duration::from_millis(10),
        request_timeout: Duration::from_secs(10),
        ..ReplicaConfig::single(tablet, max_epsilon)
    }
}
