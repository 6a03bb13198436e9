//! Time-master synchronisation between nodes: a node with a skewed clock learns true time from
//! its masters (ignoring a lying minority), fences itself when they disagree with no majority,
//! and recovers when they agree again.

#![allow(clippy::disallowed_methods)] // The skewed test clock is built on the system clock.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{PhysicalClock, SystemClock};
use meridian_proto::v1::TimeRequest;
use meridian_proto::v1::node_client::NodeClient;
use meridian_server::{Node, NodeConfig};

mod support;
use support::SkewedClock;

async fn start(dir: &std::path::Path, clock: Arc<SkewedClock>, masters: Vec<String>) -> Node {
    let mut config = NodeConfig::new(dir);
    config.physical_clock = clock;
    config.time_masters = masters;
    config.clock_sync_interval = Duration::from_millis(50);
    Node::start(config).await.unwrap()
}

/// Whether the node's TrueTime interval contains the real time right now.
async fn interval_contains_real_time(node: &Node) -> Result<bool, tonic::Status> {
    let mut client = NodeClient::connect(format!("http://{}", node.listen_addr()))
        .await
        .unwrap();
    let before = SystemClock.now();
    let t = client.time(TimeRequest {}).await?.into_inner();
    let after = SystemClock.now();
    Ok(t.earliest <= after.as_nanos() && before.as_nanos() <= t.latest)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let wait = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("{what}"));
}

async fn insert(node: &Node, sql: &str) -> Result<(), tokio_postgres::Error> {
    let addr = node.sql_addr();
    let url = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute(sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_majority_of_masters_and_fences_without_one() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let clocks: Vec<Arc<SkewedClock>> = (0..4).map(|_| Arc::new(SkewedClock::default())).collect();
    // Masters 1 and 2 are right; master 3 is ten seconds ahead.
    clocks[2].set_offset(Duration::from_secs(10), true);
    let mut masters = Vec::new();
    for i in 0..3 {
        masters.push(start(dirs[i].path(), clocks[i].clone(), Vec::new()).await);
    }
    let addrs: Vec<String> = masters
        .iter()
        .map(|m| m.listen_addr().to_string())
        .collect();
    // The node's own clock is three seconds behind.
    clocks[3].set_offset(Duration::from_secs(3), false);
    let node = start(dirs[3].path(), clocks[3].clone(), addrs).await;

    eventually("the node's interval contains true time", async || {
        interval_contains_real_time(&node).await.unwrap_or(false)
    })
    .await;
    insert(&node, "CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    insert(&node, "INSERT INTO t VALUES (1)").await.unwrap();

    // Master 1 jumps twenty seconds back: no two masters agree any more.
    clocks[0].set_offset(Duration::from_secs(20), false);
    eventually("the node fences its clock", async || {
        interval_contains_real_time(&node).await.is_err()
    })
    .await;
    let err = insert(&node, "INSERT INTO t VALUES (2)").await.unwrap_err();
    let msg = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("clock") || msg.contains("time masters"),
        "{err:?}"
    );

    // Master 1 recovers: the majority agrees again and the node serves writes.
    clocks[0].set_offset(Duration::ZERO, true);
    eventually("the node unfences", async || {
        interval_contains_real_time(&node).await.unwrap_or(false)
    })
    .await;
    insert(&node, "INSERT INTO t VALUES (3)").await.unwrap();

    node.shutdown().await;
    for m in masters {
        m.shutdown().await;
    }
}
