//! Splits by load on a real in-process cluster (three nodes), with a low threshold.
//!
//! - A table of a few hundred rows hammered by clients reading and updating rows all over it
//!   ends up in at least two tablets, and every acknowledged update is what is read back.
//! - A table that takes only a trickle of requests stays in one tablet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_server::LocalCluster;

mod support;
use support::connect;

/// The tests of this file run one at a time: each runs a cluster of three nodes, and they
/// compare the process's load-split counter before and after.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ROWS: i64 = 300;

/// Requests per second above which a tablet splits: well above what the cluster's own upkeep
/// and a trickle of statements send (about 30 a second; up to 160 briefly while the cluster
/// starts and the table is loaded), well below what a few busy clients send (about 1,000 to
/// the first tablet, 500 to each half here).
const SPLIT_QPS: u64 = 200;

/// Three nodes splitting tablets above `SPLIT_QPS` for a second, a table `t` of `ROWS` rows
/// (`v` = 0), and a SQL client of the first node.
async fn start() -> (tempfile::TempDir, LocalCluster, tokio_postgres::Client) {
    if let Ok(filter) = std::env::var("MERIDIAN_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3, |_, c| {
        c.range_split_qps = SPLIT_QPS;
        c.range_split_after = Duration::from_secs(1);
    })
    .await
    .unwrap();
    let c = connect(cluster.node(0).sql_addr()).await;
    c.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        .await
        .unwrap();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(50) {
        let values: Vec<String> = chunk.iter().map(|id| format!("({id}, 0)")).collect();
        c.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
            .await
            .unwrap();
    }
    (dir, cluster, c)
}

/// How many tablets hold rows of `t` (0 if SHOW RANGES failed). A range's bounds inside the
/// table show as `/<id>`, outside it as `<before>` and `<after>`.
async fn tablets_of_t(c: &tokio_postgres::Client) -> usize {
    let Ok(ranges) = c.query("SHOW RANGES FROM TABLE t", &[]).await else {
        return 0;
    };
    let bound = |text: &str, outside: i64| match text.strip_prefix('/') {
        Some(id) => id.parse::<i64>().expect("a row id"),
        None => outside,
    };
    ranges
        .iter()
        .filter(|r| {
            let start = bound(r.get("start_key"), i64::MIN);
            let end = bound(r.get("end_key"), i64::MAX);
            (0..ROWS).any(|id| start <= id && id < end)
        })
        .count()
}

/// The SQLSTATE of a failed statement.
fn code(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// What an update may have left in a row: the value of its last acknowledged update, or of
/// any update after it whose outcome is unknown.
type Possible = BTreeMap<i64, Vec<i64>>;

/// Reads and updates the rows `id % of == which` in turn, in a scattered order, until `stop`;
/// returns what each row may hold.
async fn hammer(c: tokio_postgres::Client, which: i64, of: i64, stop: Arc<AtomicBool>) -> Possible {
    let read = c.prepare("SELECT v FROM t WHERE id = $1").await.unwrap();
    let update = c
        .prepare("UPDATE t SET v = $2 WHERE id = $1")
        .await
        .unwrap();
    let mine: Vec<i64> = (0..ROWS).filter(|id| id % of == which).collect();
    let mut possible: Possible = mine.iter().map(|id| (*id, vec![0])).collect();
    let mut round: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        // A stride coprime with the row count scatters consecutive requests over the table.
        let id = mine[(round as usize * 37) % mine.len()];
        if let Err(e) = c.query(&read, &[&id]).await {
            assert!(
                matches!(code(&e).as_str(), "40001" | "58000"),
                "read {id}: {e}"
            );
        }
        match c.execute(&update, &[&id, &round]).await {
            Ok(1) => {
                possible.insert(id, vec![round]);
            }
            Ok(n) => panic!("update {id} changed {n} rows"),
            // Refused: nothing changed.
            Err(e) if code(&e) == "40001" => {}
            // The outcome is unknown: the row may hold either value.
            Err(e) if matches!(code(&e).as_str(), "40003" | "58000") => {
                possible.get_mut(&id).unwrap().push(round);
            }
            Err(e) => panic!("update {id}: {e}"),
        }
    }
    possible
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hammered_table_splits_by_load_and_keeps_every_acknowledged_update() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, cluster, c) = start().await;
    assert_eq!(tablets_of_t(&c).await, 1);
    let splits_before = meridian_tablet::metrics::LOAD_SPLITS.get();

    const CLIENTS: i64 = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for which in 0..CLIENTS {
        let client = connect(cluster.node(0).sql_addr()).await;
        workers.push(tokio::spawn(hammer(client, which, CLIENTS, stop.clone())));
    }
    let split = async {
        while tablets_of_t(&c).await < 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), split).await;
    // The clients go on through the split for a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut possible = Possible::new();
    for w in workers {
        possible.extend(w.await.unwrap());
    }
    outcome.expect("the hammered table split into at least two tablets");
    assert!(meridian_tablet::metrics::LOAD_SPLITS.get() > splits_before);

    // Every row is there, holding what its acknowledged updates left.
    let rows = c
        .query("SELECT id, v FROM t ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, ROWS);
    for row in rows {
        let (id, v): (i64, i64) = (row.get(0), row.get(1));
        assert!(
            possible[&id].contains(&v),
            "row {id} holds {v}, not one of {:?}",
            possible[&id]
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_table_does_not_split() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, cluster, c) = start().await;
    let splits_before = meridian_tablet::metrics::LOAD_SPLITS.get();
    // A trickle of reads for several times the period a busy tablet splits after.
    for round in 0..16 {
        let id = (round * 37) % ROWS;
        c.query("SELECT v FROM t WHERE id = $1", &[&id])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(tablets_of_t(&c).await, 1);
    assert_eq!(meridian_tablet::metrics::LOAD_SPLITS.get(), splits_before);
    cluster.shutdown().await;
}
