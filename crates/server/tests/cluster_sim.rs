//! Five in-process nodes over loopback gRPC with injected partitions: the tablet's leader is
//! cut off, writes continue through the majority, the isolated node stops serving, and after
//! healing it catches up; no acknowledged write is lost and every node answers the same.

use std::collections::BTreeSet;
use std::time::Duration;

use meridian_server::LocalCluster;
use support::connect;

mod support;

async fn ids(client: &tokio_postgres::Client) -> BTreeSet<i64> {
    client
        .simple_query("SELECT id FROM t")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_survive_an_isolated_leader() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 5, |_, _| {}).await.unwrap();
    let c0 = connect(cluster.node(0).sql_addr()).await;
    c0.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut acked = BTreeSet::new();
    for id in 0..10 {
        c0.batch_execute(&format!("INSERT INTO t VALUES ({id})"))
            .await
            .unwrap();
        acked.insert(id);
    }

    let leader = cluster.leader().expect("a leader");
    let leader_id = cluster.node_id(leader);
    cluster.net.isolate(leader_id, cluster.node_ids());
    let other = (leader + 1) % cluster.len();
    let c = connect(cluster.node(other).sql_addr()).await;
    let mut id = 100;
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    while acked.len() < 30 {
        let sql = format!("INSERT INTO t VALUES ({id})");
        tokio::select! {
            _ = &mut deadline => panic!("writes did not resume through the majority"),
            r = c.batch_execute(&sql) => {
                if r.is_ok() {
                    acked.insert(id);
                }
            }
        }
        id += 1;
    }
    let new_leader = cluster.leader().expect("the majority elected a leader");
    assert_ne!(new_leader, leader);

    // The isolated node's gateway cannot serve: its replica lost its lease and it reaches nobody.
    let isolated = connect(cluster.node(leader).sql_addr()).await;
    assert!(
        isolated
            .batch_execute("INSERT INTO t VALUES (-1)")
            .await
            .is_err()
    );

    cluster.net.heal();
    let present = ids(&c).await;
    assert!(
        acked.is_subset(&present),
        "lost: {:?}",
        acked.difference(&present).collect::<Vec<_>>()
    );
    assert!(!present.contains(&-1));
    // After healing every node, the old leader included, answers with the same rows.
    let converge = async {
        loop {
            let mut all_same = true;
            for i in 0..cluster.len() {
                let ci = connect(cluster.node(i).sql_addr()).await;
                match ci.simple_query("SELECT id FROM t").await {
                    Ok(_) => all_same &= ids(&ci).await == present,
                    Err(_) => all_same = false,
                }
            }
            if all_same {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), converge)
        .await
        .expect("nodes converge after healing");
    cluster.shutdown().await;
}

/// Regression: a transaction of several megabytes (a bulk COPY) committed through a gateway
/// that is not the leader failed as "ambiguous", because gRPC refused messages over 4 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_of_several_megabytes_commits_across_nodes() {
    use futures::SinkExt;
    let dir = tempfile::tempdir().unwrap();
    // A test build moves a multi-megabyte Raft entry slowly: ticks long enough that the
    // followers, busy persisting it, do not call an election meanwhile.
    let cluster = LocalCluster::start(dir.path(), 3, |_, c| {
        c.request_timeout = Duration::from_secs(60);
        c.raft_tick = Duration::from_millis(200);
    })
    .await
    .unwrap();
    let leader = cluster.leader().expect("a leader");
    let gateway = (leader + 1) % cluster.len();
    let c = connect(cluster.node(gateway).sql_addr()).await;
    c.batch_execute("CREATE TABLE big (id INT PRIMARY KEY, filler TEXT)")
        .await
        .unwrap();
    let filler = "x".repeat(160);
    let mut data = String::new();
    for id in 0..32_000 {
        data.push_str(&format!("{id}\t{filler}\n"));
    }
    assert!(data.len() > 5 << 20, "{} bytes", data.len());
    let sink = c.copy_in("COPY big FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 32_000);
    for i in 0..cluster.len() {
        let ci = connect(cluster.node(i).sql_addr()).await;
        let n = ci
            .simple_query("SELECT count(*) FROM big")
            .await
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
        assert_eq!(n.as_deref(), Some("32000"), "node {i}");
    }
    cluster.shutdown().await;
}
