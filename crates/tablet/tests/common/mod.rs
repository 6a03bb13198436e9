//! Helpers shared by the tablet integration tests.

// Each test file uses some of these helpers, not all.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{SystemClock, TrueTime, TrueTimeConfig};
use meridian_tablet::{Mutation, RangeClient, RangeDescriptor, ReplicaConfig};

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

/// The key of row `i` of table 1.
pub fn key(i: usize) -> Vec<u8> {
    format!("/t/1/{i:05}").into_bytes()
}

pub fn put(k: Vec<u8>, v: &str) -> Mutation {
    Mutation::Put {
        key: k,
        value: v.as_bytes().to_vec(),
    }
}

/// Waits until `f` holds (background loops do the work), at most `within`.
pub async fn eventually(what: &str, within: Duration, f: impl AsyncFn() -> bool) {
    let wait = async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(within, wait).await.is_err() {
        panic!("timed out waiting until {what}");
    }
}

/// The range holding `k`, from the meta records.
pub async fn range_of(kv: &RangeClient, k: &[u8]) -> RangeDescriptor {
    kv.ranges()
        .await
        .unwrap()
        .into_iter()
        .find(|d| k >= d.start_key.as_slice() && (d.end_key.is_empty() || k < d.end_key.as_slice()))
        .expect("a range holds every key")
}
