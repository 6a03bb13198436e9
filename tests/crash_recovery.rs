//! Durability through a crash: every write acknowledged before `SIGKILL` is present after a
//! restart on the same data directory, and nothing that was never attempted appears.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use support::{NodeProcess, free_addr, query_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let node = NodeProcess::start(dir.path(), addr).await;
    let setup = node.connect().await;
    setup
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, writer INT, v TEXT)")
        .await
        .unwrap();

    // Four writers insert disjoint ids as fast as they can; each records what was acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let client = node.connect().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let id = i * 4 + w;
                let sql = format!("INSERT INTO t VALUES ({id}, {w}, 'row {id}')");
                if client.simple_query(&sql).await.is_err() {
                    break;
                }
                acked.lock().unwrap().insert(id);
            }
        }));
    }
    // Let a few hundred writes land, then kill the node in the middle of the stream.
    let wait_for_writes = async {
        while acked.lock().unwrap().len() < 300 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), wait_for_writes)
        .await
        .expect("writers made no progress");
    node.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let node = NodeProcess::start(dir.path(), addr).await;
    let client = node.connect().await;
    let rows = query_text(&client, "SELECT id, writer, v FROM t ORDER BY id").await;
    let present: BTreeSet<i64> = rows
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "acknowledged rows lost after crash: {lost:?}"
    );
    for r in &rows {
        let id: i64 = r[0].as_deref().unwrap().parse().unwrap();
        assert_eq!(r[1].as_deref().unwrap().parse::<i64>().unwrap(), id % 4);
        assert_eq!(r[2].as_deref(), Some(format!("row {id}").as_str()));
    }
    // At most one unacknowledged in-flight write per writer can have committed.
    assert!(
        present.len() <= acked.len() + 4,
        "{} present, {} acked",
        present.len(),
        acked.len()
    );

    // The node keeps working after recovery: new writes and a duplicate-key error.
    client
        .batch_execute("INSERT INTO t VALUES (-1, 0, 'after')")
        .await
        .unwrap();
    let err = client
        .batch_execute("INSERT INTO t VALUES (-1, 0, 'again')")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"));
    node.stop();
}
