//! The bank workload on a three-node cluster whose table spans four tablets: transfers commit
//! across tablets (two-phase commit), clocks are offset within the uncertainty bound, and the
//! node leading the most tablets is stopped mid-run and later restarted, or has its clock
//! fenced (as when it leaves its bound). Every snapshot read sums to the total, the final state
//! keeps it, writes go on, the restarted node catches up, and the fenced node hands its
//! tablets over.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use meridian_server::LocalCluster;

mod support;
use support::SkewedClock;

const ACCOUNTS: i64 = 16;
const INITIAL: i64 = 1_000;

/// A connection to the first node of `addrs` (from `start`) that accepts one.
async fn connect_any(addrs: &[SocketAddr], start: usize) -> tokio_postgres::Client {
    for i in 0..addrs.len() * 50 {
        let addr = addrs[(start + i) % addrs.len()];
        let url = format!(
            "host={} port={} user=root dbname=defaultdb connect_timeout=2",
            addr.ip(),
            addr.port()
        );
        if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no node accepts connections");
}

enum Outcome {
    Committed,
    Retry,
    /// The connection broke: reconnect elsewhere.
    Broken,
}

fn classify(e: &tokio_postgres::Error) -> Outcome {
    match e.code().map(|c| c.code()) {
        // Serialization failures and ambiguous commits (a transfer conserves the total
        // whether or not it committed) are retried; so is a tablet changing leaders.
        Some("40001" | "40003" | "58000") => Outcome::Retry,
        // The node shuts down (57P01) or the connection dropped.
        Some("57P01") | None => Outcome::Broken,
        Some(other) => panic!("unexpected error {other}: {e}"),
    }
}

async fn transfer(client: &mut tokio_postgres::Client, from: i64, to: i64, amount: i64) -> Outcome {
    let txn = match client.transaction().await {
        Ok(t) => t,
        Err(e) => return classify(&e),
    };
    let r = txn
        .batch_execute(&format!(
            "UPDATE bank SET bal = bal - {amount} WHERE id = {from}; \
             UPDATE bank SET bal = bal + {amount} WHERE id = {to}"
        ))
        .await;
    if let Err(e) = r {
        return classify(&e);
    }
    match txn.commit().await {
        Ok(()) => Outcome::Committed,
        Err(e) => classify(&e),
    }
}

async fn sum(client: &tokio_postgres::Client, sql: &str) -> Result<i64, tokio_postgres::Error> {
    let rows = client.simple_query(sql).await?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .expect("a sum"))
}

/// Tablets each node leads.
fn leaders(cluster: &LocalCluster, alive: &[usize]) -> BTreeMap<usize, usize> {
    alive
        .iter()
        .map(|&i| {
            let n = cluster
                .node(i)
                .replicas()
                .iter()
                .filter(|r| r.status().is_leader)
                .count();
            (i, n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_across_tablets_keep_the_total_through_a_node_stop_and_clock_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(dir.path(), 3, |i, c| {
        c.clock.local_uncertainty = Duration::from_millis(10);
        // Offsets within the bound: node 2 runs 6 ms ahead, node 3 6 ms behind.
        let offset = Duration::from_millis(6);
        match i {
            1 => c.physical_clock = Arc::new(SkewedClock::new(offset, true)),
            2 => c.physical_clock = Arc::new(SkewedClock::new(offset, false)),
            _ => {}
        }
    })
    .await
    .unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cluster.node(i).sql_addr()).collect();
    create_bank(&addrs).await;
    let bank = Bank::start(&addrs);
    let wait_commits = async |at_least: u64| bank.wait_commits(at_least).await;
    wait_commits(40).await;

    // Stop the node that leads the most tablets; the others elect new leaders and go on.
    let led = leaders(&cluster, &[0, 1, 2]);
    let (&victim, &count) = led.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(count > 0, "no node leads a tablet: {led:?}");
    cluster.stop(victim).await;
    // A graceful stop hands the node's leaderships over first: every tablet has a leader
    // among the others as soon as the stop returns.
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let mut tablets = std::collections::BTreeSet::new();
    let mut led = std::collections::BTreeSet::new();
    for &i in &survivors {
        for r in cluster.node(i).replicas() {
            tablets.insert(r.tablet_id());
            if r.status().is_leader {
                led.insert(r.tablet_id());
            }
        }
    }
    assert_eq!(
        led, tablets,
        "tablets without a leader after a graceful stop"
    );
    let before = bank.committed();
    wait_commits(before + 40).await;

    // The node comes back and catches up with every tablet.
    cluster.restart(victim).await.unwrap();
    wait_commits(bank.committed() + 20).await;
    let (committed, sums) = bank.finish().await;

    let check = connect_any(&addrs, victim).await;
    assert_eq!(
        sum(&check, "SELECT sum(bal) FROM bank").await.unwrap(),
        ACCOUNTS * INITIAL
    );
    let caught_up = async {
        loop {
            let mut best: BTreeMap<u64, u64> = BTreeMap::new();
            for i in 0..3 {
                for r in cluster.node(i).replicas() {
                    let e = best.entry(r.tablet_id()).or_default();
                    *e = (*e).max(r.status().applied_index);
                }
            }
            let restarted = cluster.node(victim).replicas();
            let behind = restarted
                .iter()
                .any(|r| r.status().applied_index < best[&r.tablet_id()]);
            if !behind && restarted.len() == best.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), caught_up)
        .await
        .expect("the restarted node catches up on every tablet");
    eprintln!(
        "committed {committed} transfers; {} snapshot sums checked",
        sums.len()
    );
    cluster.shutdown().await;
}

/// Creates the bank table (ACCOUNTS accounts of INITIAL) and splits it into four tablets.
async fn create_bank(addrs: &[SocketAddr]) {
    let setup = connect_any(addrs, 0).await;
    setup
        .batch_execute("CREATE TABLE bank (id INT PRIMARY KEY, bal INT NOT NULL)")
        .await
        .unwrap();
    let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {INITIAL})")).collect();
    setup
        .batch_execute(&format!("INSERT INTO bank VALUES {}", values.join(", ")))
        .await
        .unwrap();
    setup
        .batch_execute("ALTER TABLE bank SPLIT AT VALUES (4), (8), (12)")
        .await
        .unwrap();
    let ranges = setup
        .simple_query("SHOW RANGES FROM TABLE bank")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(ranges, 4);
}

/// The running workload: 16 clients transferring between accounts (usually in different
/// tablets), and one reading the total in snapshots, all through the nodes at `addrs`.
struct Bank {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    reader: tokio::task::JoinHandle<Vec<i64>>,
}

impl Bank {
    fn start(addrs: &[SocketAddr]) -> Bank {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for w in 0..16i64 {
            let (addrs, stop, committed) = (addrs.to_vec(), stop.clone(), committed.clone());
            workers.push(tokio::spawn(async move {
                let mut client = connect_any(&addrs, w as usize).await;
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Accounts four apart usually live in different tablets.
                    let from = (w + n * 5) % ACCOUNTS;
                    let to = (from + 4 + n % 7) % ACCOUNTS;
                    match transfer(&mut client, from, to, 1 + n % 9).await {
                        Outcome::Committed => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Retry => {}
                        Outcome::Broken => client = connect_any(&addrs, w as usize + 1).await,
                    }
                }
            }));
        }
        let reader = {
            let (addrs, stop) = (addrs.to_vec(), stop.clone());
            tokio::spawn(async move {
                let mut client = connect_any(&addrs, 1).await;
                let mut sums = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = async {
                        client.batch_execute("BEGIN READ ONLY").await?;
                        let a = sum(&client, "SELECT sum(bal) FROM bank").await?;
                        let b = sum(&client, "SELECT sum(bal) FROM bank WHERE id >= 0").await?;
                        client.batch_execute("COMMIT").await?;
                        let c = sum(&client, "SELECT sum(bal) FROM bank").await?;
                        Ok::<_, tokio_postgres::Error>([a, b, c])
                    }
                    .await;
                    match r {
                        Ok(s) => sums.extend(s),
                        Err(e) if e.code().is_some_and(|c| c.code() != "57P01") => {
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        Err(_) => client = connect_any(&addrs, 0).await,
                    }
                }
                sums
            })
        };
        Bank {
            stop,
            committed,
            workers,
            reader,
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    async fn wait_commits(&self, at_least: u64) {
        let wait = async {
            while self.committed() < at_least {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("fewer than {at_least} transfers committed in time"));
    }

    /// Stops the clients and checks every snapshot sum; returns the transfers committed and
    /// the sums.
    async fn finish(self) -> (u64, Vec<i64>) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let sums = self.reader.await.unwrap();
        assert!(sums.len() >= 6, "only {} snapshot sums", sums.len());
        meridian_history::check_bank_totals(ACCOUNTS * INITIAL, &sums).unwrap();
        (self.committed.load(Ordering::Relaxed), sums)
    }
}

/// Waits until every tablet a replica of `nodes` holds has a leader among them.
async fn every_tablet_led_by(cluster: &LocalCluster, nodes: &[usize]) {
    let wait = async {
        loop {
            let mut tablets = std::collections::BTreeSet::new();
            let mut led = std::collections::BTreeSet::new();
            for &i in nodes {
                for r in cluster.node(i).replicas() {
                    tablets.insert(r.tablet_id());
                    if r.status().is_leader {
                        led.insert(r.tablet_id());
                    }
                }
            }
            if led == tablets {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("every tablet gets a leader among the nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_fenced_hands_its_tablets_over_and_the_bank_stays_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3, |_, _| {}).await.unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cluster.node(i).sql_addr()).collect();
    create_bank(&addrs).await;
    // The node leading the most tablets loses its clock; the clients use the other two.
    let led = leaders(&cluster, &[0, 1, 2]);
    let (&victim, _) = led.iter().max_by_key(|(_, n)| **n).unwrap();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let bank = Bank::start(&survivors.iter().map(|&i| addrs[i]).collect::<Vec<_>>());
    bank.wait_commits(30).await;
    cluster
        .node(victim)
        .clock()
        .fence("test: the clock left its uncertainty bound");
    // It assigns no timestamps any more and hands every group it led to a follower.
    every_tablet_led_by(&cluster, &survivors).await;
    let before = bank.committed();
    bank.wait_commits(before + 30).await;
    // Its own SQL gateway refuses to pick timestamps.
    let fenced = connect_any(&addrs[victim..=victim], 0).await;
    let err = fenced
        .simple_query("SELECT sum(bal) FROM bank")
        .await
        .unwrap_err();
    assert!(err.code().is_some(), "{err}");
    let (committed, sums) = bank.finish().await;
    let check = connect_any(&[addrs[survivors[0]]], 0).await;
    assert_eq!(
        sum(&check, "SELECT sum(bal) FROM bank").await.unwrap(),
        ACCOUNTS * INITIAL
    );
    eprintln!(
        "committed {committed} transfers; {} snapshot sums checked",
        sums.len()
    );
    cluster.shutdown().await;
}
