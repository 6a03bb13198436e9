//! Commit wait at work: a node whose clock uncertainty is 50 ms acknowledges a write only once
//! its commit timestamp is certainly past, which takes at least twice the uncertainty, and the
//! external-consistency checker passes on what it recorded; with a near-zero uncertainty the
//! same writes are acknowledged much sooner. A reader that sees a write while its commit wait
//! is still running answers only once the write's timestamp is past too.

#![allow(clippy::disallowed_methods)] // the test times writes with the monotonic clock

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_clock::{PhysicalClock, SystemClock};
use meridian_history::{History, Op, Outcome};
use meridian_server::{LocalCluster, Node, NodeConfig};

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

/// How a reader in [`a_read_that_sees_a_write_answers_only_once_the_write_is_past`] reads.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// An autocommit SELECT by the simple query protocol.
    Simple,
    /// An autocommit SELECT by the extended protocol (Parse, Bind, Execute).
    Extended,
    /// A SELECT in a block; the block's COMMIT is its answer.
    Block,
}

/// A write is visible at its tablet once it applies, before its commit wait ends. A reader
/// that sees it must not answer before the write's timestamp is past on every clock: otherwise
/// its client could go on to read through a node whose clock reads lower (within the bound),
/// get a timestamp below the write, and not see what it already saw. With an uncertainty of
/// 50 ms a write's commit wait takes 100 ms, and the readers poll the row throughout it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_sees_a_write_answers_only_once_the_write_is_past() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.clock.local_uncertainty = UNCERTAINTY;
    let node = Node::start(config).await.unwrap();
    reads_answer_after_what_they_saw(node.sql_addr(), &[node.sql_addr()]).await;
    node.shutdown().await;
}

/// As above, on three nodes: the readers on the nodes that do not lead the table's tablet
/// read through the leader over gRPC, which must report what they saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_through_another_node_that_sees_a_write_answers_only_once_the_write_is_past() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3, |_, c| {
        c.clock.local_uncertainty = UNCERTAINTY;
    })
    .await
    .unwrap();
    let addrs: Vec<_> = (0..3).map(|i| cluster.node(i).sql_addr()).collect();
    reads_answer_after_what_they_saw(addrs[0], &addrs).await;
    cluster.shutdown().await;
}

const UNCERTAINTY: Duration = Duration::from_millis(50);

/// Writes a row through `writer` while a reader on each of `readers` polls it, in each of
/// the three ways of [`Reader`]; checks that the answer that first shows the new value comes
/// after the write's commit timestamp (true time is the system clock's reading).
async fn reads_answer_after_what_they_saw(writer: SocketAddr, readers: &[SocketAddr]) {
    let writer = Arc::new(support::connect(writer).await);
    writer
        .batch_execute("CREATE TABLE r (k INT PRIMARY KEY, v INT); INSERT INTO r VALUES (1, 0)")
        .await
        .unwrap();
    let mut value = 0;
    for &addr in readers {
        let reader = support::connect(addr).await;
        for how in [Reader::Simple, Reader::Extended, Reader::Block] {
            value += 1;
            let w = writer.clone();
            let write = tokio::spawn(async move {
                w.batch_execute(&format!("UPDATE r SET v = {value} WHERE k = 1"))
                    .await
                    .unwrap();
            });
            let answered_at = loop {
                if read(&reader, how).await == value {
                    break SystemClock.now().as_nanos();
                }
            };
            write.await.unwrap();
            let commit_ts = support::last_commit_nanos(&writer).await.unwrap();
            assert!(
                commit_ts < answered_at,
                "{how:?} through {addr}: the reader answered at {answered_at} with a write \
                 committed at {commit_ts}, before that time"
            );
        }
    }
}

/// The row's value, read the way `how` says.
async fn read(reader: &tokio_postgres::Client, how: Reader) -> i32 {
    const SELECT: &str = "SELECT v FROM r WHERE k = 1";
    match how {
        Reader::Simple => support::values(reader, SELECT).await[0].parse().unwrap(),
        Reader::Extended => reader.query_one(SELECT, &[]).await.unwrap().get(0),
        Reader::Block => {
            reader.batch_execute("BEGIN").await.unwrap();
            let v = support::values(reader, SELECT).await[0].parse().unwrap();
            reader.batch_execute("COMMIT").await.unwrap();
            v
        }
    }
}
