//! Commit wait at work: a node whose clock uncertainty is 50 ms acknowledges a write only once
//! its commit timestamp is certainly past, which takes at least twice the uncertainty, and the
//! external-consistency checker passes on what it recorded; with a near-zero uncertainty the
//! same writes are acknowledged much sooner.

#![allow(clippy::disallowed_methods)] // the test times writes with the monotonic clock

use std::time::{Duration, Instant};

use meridian_clock::{PhysicalClock, SystemClock};
use meridian_history::{History, Op, Outcome};
use meridian_server::{Node, NodeConfig};

mod support;

/// Runs `n` single-row writes on a fresh node with the given clock uncertainty; returns each
/// write's latency and checks each acknowledgement came after its commit timestamp.
async fn writes(uncertainty: Duration, n: usize) -> (Vec<Duration>, History) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.clock.local_uncertainty = uncertainty;
    let node = Node::start(config).await.unwrap();
    let client = support::connect(node.sql_addr()).await;
    client
        .batch_execute("CREATE TABLE r (k INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut history = History::new();
    for i in 0..n {
        let invoked = start.elapsed().as_nanos() as u64;
        let t = Instant::now();
        client
            .batch_execute(&format!("UPSERT INTO r VALUES (1, {i})"))
            .await
            .unwrap();
        let latency = t.elapsed();
        // The acknowledgement came after the commit timestamp in real time.
        let acked_at = SystemClock.now().as_nanos();
        let commit_ts = support::last_commit_nanos(&client).await.unwrap();
        assert!(
            commit_ts < acked_at,
            "acknowledged before its commit timestamp"
        );
        latencies.push(latency);
        history.push(Op {
            client: 0,
            invoked,
            completed: start.elapsed().as_nanos() as u64,
            outcome: Outcome::Committed,
            commit_ts: Some(commit_ts),
            read_ts: None,
            reads: vec![],
            writes: vec![("r/1".to_string(), i as i64)],
        });
    }
    node.shutdown().await;
    (latencies, history)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_wait_takes_twice_the_uncertainty_and_no_longer_than_needed() {
    let epsilon = Duration::from_millis(50);
    let (slow, history) = writes(epsilon, 10).await;
    history.check_external_consistency().unwrap();
    for l in &slow {
        assert!(*l >= 2 * epsilon, "a write was acknowledged after {l:?}");
    }
    let (fast, history) = writes(Duration::from_micros(100), 10).await;
    history.check_external_consistency().unwrap();
    let (slow, fast) = (median(slow), median(fast));
    eprintln!("median write latency: {slow:?} at epsilon 50 ms, {fast:?} at 0.1 ms");
    assert!(
        fast + epsilon < slow,
        "commit wait did not shrink with the uncertainty: {fast:?} vs {slow:?}"
    );
}
