//! Transaction blocks over the wire: a concurrent bank workload whose transfers run in
//! `BEGIN` ... `COMMIT` blocks (retried on 40001) keeps its total in every snapshot, and a
//! lost update is impossible.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use meridian_server::{Node, NodeConfig};
use tokio_postgres::error::SqlState;

mod support;

const ACCOUNTS: i64 = 10;
const INITIAL: i64 = 1_000;

async fn connect(node: &Node) -> tokio_postgres::Client {
    support::connect(node.sql_addr()).await
}

async fn int(client: &tokio_postgres::Client, sql: &str) -> i64 {
    let v = support::values(client, sql).await;
    v.first()
        .unwrap_or_else(|| panic!("no row from {sql}"))
        .parse()
        .unwrap()
}

fn is_serialization_failure(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

/// One transfer in a transaction block; `Ok(false)` when it lost a conflict and rolled back.
async fn transfer(
    client: &mut tokio_postgres::Client,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<bool, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let step = async {
        let rows = txn
            .simple_query(&format!("SELECT bal FROM bank WHERE id = {from}"))
            .await?;
        let bal: i64 = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
                _ => None,
            })
            .unwrap_or(0);
        let amount = amount.min(bal);
        txn.batch_execute(&format!(
            "UPDATE bank SET bal = bal - {amount} WHERE id = {from}; \
             UPDATE bank SET bal = bal + {amount} WHERE id = {to}"
        ))
        .await
    };
    match step.await {
        Ok(()) => {}
        Err(e) if is_serialization_failure(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    match txn.commit().await {
        Ok(()) => Ok(true),
        Err(e) if is_serialization_failure(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_in_blocks_keep_the_total_in_every_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE bank (id INT PRIMARY KEY, bal INT NOT NULL)")
        .await
        .unwrap();
    let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {INITIAL})")).collect();
    setup
        .batch_execute(&format!("INSERT INTO bank VALUES {}", values.join(", ")))
        .await
        .unwrap();

    let committed = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..8i64 {
        let mut client = connect(&node).await;
        let (committed, conflicts) = (committed.clone(), conflicts.clone());
        workers.push(tokio::spawn(async move {
            for n in 0..15i64 {
                let from = (w * 7 + n * 3) % ACCOUNTS;
                let to = (from + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS;
                match transfer(&mut client, from, to, 10 + n).await.unwrap() {
                    true => committed.fetch_add(1, Ordering::Relaxed),
                    false => conflicts.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // Readers: every snapshot, in a block or not, sums to the total.
    let reader = {
        let client = connect(&node).await;
        tokio::spawn(async move {
            let mut sums = Vec::new();
            for _ in 0..30 {
                client.batch_execute("BEGIN READ ONLY").await.unwrap();
                sums.push(int(&client, "SELECT sum(bal) FROM bank").await);
                sums.push(int(&client, "SELECT sum(bal) FROM bank WHERE id >= 0").await);
                client.batch_execute("COMMIT").await.unwrap();
                sums.push(int(&client, "SELECT sum(bal) FROM bank").await);
            }
            sums
        })
    };
    for w in workers {
        w.await.unwrap();
    }
    let sums = reader.await.unwrap();
    meridian_history::check_bank_totals(ACCOUNTS * INITIAL, &sums).unwrap();

    assert_eq!(
        int(&setup, "SELECT sum(bal) FROM bank").await,
        ACCOUNTS * INITIAL
    );
    assert_eq!(
        int(&setup, "SELECT count(*) FROM bank WHERE bal < 0").await,
        0
    );
    let committed = committed.load(Ordering::Relaxed);
    assert!(committed > 0, "no transfer committed");
    eprintln!(
        "committed {committed}, lost to conflicts {}",
        conflicts.load(Ordering::Relaxed)
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_that_updates_a_locked_row_waits_for_it_and_then_sees_the_new_value() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let a = connect(&node).await;
    let b = Arc::new(connect(&node).await);
    a.batch_execute("CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE k = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { b.batch_execute("UPDATE c SET n = n + 10 WHERE k = 1").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second UPDATE must wait for the first block's row lock"
    );
    a.batch_execute("COMMIT").await.unwrap();
    waiting.await.unwrap().unwrap();
    // It read the committed value (as PostgreSQL's UPDATE does) and commits on top of it.
    assert_eq!(int(&b, "SELECT n FROM c WHERE k = 1").await, 11);
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(int(&a, "SELECT n FROM c WHERE k = 1").await, 11);
    node.shutdown().await;
}

/// The counter increment of TPC-C's New-Order: read the next id FOR UPDATE, then write it back
/// incremented. Returns the id and how many attempts failed with 40001 first.
async fn take_next_id(
    client: &tokio_postgres::Client,
) -> Result<(i64, u32), tokio_postgres::Error> {
    let mut failures = 0;
    loop {
        let attempt = async {
            client.batch_execute("BEGIN").await?;
            let next = client
                .query_one("SELECT n FROM c WHERE k = 1 FOR UPDATE", &[])
                .await?
                .get::<_, i32>(0);
            client
                .execute("UPDATE c SET n = $1 WHERE k = 1", &[&(next + 1)])
                .await?;
            client.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(i64::from(next))
        };
        match attempt.await {
            Ok(id) => return Ok((id, failures)),
            Err(e) if is_serialization_failure(&e) => {
                failures += 1;
                client.batch_execute("ROLLBACK").await?;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_taking_ids_with_select_for_update_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    const CLIENTS: usize = 6;
    const EACH: usize = 10;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            for _ in 0..EACH {
                taken.push(take_next_id(&client).await?);
            }
            Ok::<_, tokio_postgres::Error>(taken)
        }));
    }
    let mut ids = Vec::new();
    let mut failures = 0;
    for t in tasks {
        for (id, failed) in t.await.unwrap().unwrap_or_else(|e| panic!("{e:?}")) {
            ids.push(id);
            failures += failed;
        }
    }
    ids.sort_unstable();
    let expected: Vec<i64> = (0..(CLIENTS * EACH) as i64).collect();
    assert_eq!(ids, expected, "every id taken exactly once");
    assert_eq!(
        int(&setup, "SELECT n FROM c WHERE k = 1").await,
        (CLIENTS * EACH) as i64
    );
    // Blocks wait for the row instead of racing for it: a 40001 is rare (a younger holder
    // wounded after the deadlock timeout). Without the lock most attempts would fail.
    assert!(
        failures <= (CLIENTS * EACH / 4) as u32,
        "{failures} serialization failures for {} ids",
        CLIENTS * EACH
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_block_keeps_the_age_of_the_attempt_that_lost() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let a = connect(&node).await;
    let other = connect(&node).await;
    a.batch_execute(
        "CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    // `a` starts a block, reads row 1, and loses it to an autocommit write.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(int(&a, "SELECT n FROM c WHERE k = 1").await, 0);
    other
        .batch_execute("UPDATE c SET n = 1 WHERE k = 1")
        .await
        .unwrap();
    let err = a
        .batch_execute("UPDATE c SET n = n + 1 WHERE k = 1")
        .await
        .unwrap_err();
    assert!(is_serialization_failure(&err), "{err}");
    a.batch_execute("ROLLBACK").await.unwrap();
    // A block younger than `a`'s first attempt holds row 2.
    other
        .batch_execute("BEGIN; UPDATE c SET n = 10 WHERE k = 2")
        .await
        .unwrap();
    // `a`'s retry is older than it, so it takes the row after the grace instead of waiting
    // for it (it would wait until its lock wait gave up, as the younger one).
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        a.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE k = 2; COMMIT"),
    )
    .await
    .expect("the retry does not wait for a younger holder")
    .unwrap();
    let err = other.batch_execute("COMMIT").await.unwrap_err();
    assert!(is_serialization_failure(&err), "{err}");
    assert_eq!(
        support::values(&a, "SELECT n FROM c ORDER BY k").await,
        ["1", "1"]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_reads_never_wait_for_row_locks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let writer = connect(&node).await;
    let reader = connect(&node).await;
    writer
        .batch_execute("CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 5)")
        .await
        .unwrap();
    writer
        .batch_execute("BEGIN; UPDATE c SET n = 6 WHERE k = 1")
        .await
        .unwrap();
    let read = async {
        let autocommit = int(&reader, "SELECT n FROM c WHERE k = 1").await;
        reader.batch_execute("BEGIN READ ONLY").await.unwrap();
        let in_block = int(&reader, "SELECT n FROM c WHERE k = 1").await;
        reader.batch_execute("COMMIT").await.unwrap();
        (autocommit, in_block)
    };
    let (autocommit, in_block) = tokio::time::timeout(std::time::Duration::from_secs(1), read)
        .await
        .expect("reads do not wait for the writer's row lock");
    // They see the last committed value; the locked, uncommitted change is invisible.
    assert_eq!((autocommit, in_block), (5, 5));
    writer.batch_execute("COMMIT").await.unwrap();
    assert_eq!(int(&reader, "SELECT n FROM c WHERE k = 1").await, 6);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_block_wounds_a_younger_one_instead_of_deadlocking() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let old = connect(&node).await;
    let young = Arc::new(connect(&node).await);
    old.batch_execute(
        "CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    old.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE k = 1")
        .await
        .unwrap();
    young
        .batch_execute("BEGIN; UPDATE c SET n = n + 10 WHERE k = 2")
        .await
        .unwrap();
    // The younger block waits for the older one's row...
    let waiting = {
        let young = young.clone();
        tokio::spawn(async move {
            young
                .batch_execute("UPDATE c SET n = n + 10 WHERE k = 1")
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    // ...and the older one, needing the younger one's row, takes it at once (a deadlock under
    // plain two-phase locking).
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        old.batch_execute("UPDATE c SET n = n + 1 WHERE k = 2; COMMIT"),
    )
    .await
    .expect("the older block does not wait for the younger one")
    .unwrap();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(is_serialization_failure(&err), "{err}");
    young.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        support::values(&old, "SELECT n FROM c ORDER BY k").await,
        ["1", "1"]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_plain_reads_changed_fails_at_commit_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let a = connect(&node).await;
    let b = connect(&node).await;
    a.batch_execute(
        "CREATE TABLE c (k INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    // Write skew: `a` reads row 1 without locking it and changes row 2 because of it.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(int(&a, "SELECT n FROM c WHERE k = 1").await, 0);
    a.batch_execute("UPDATE c SET n = 5 WHERE k = 2")
        .await
        .unwrap();
    b.batch_execute("UPDATE c SET n = 7 WHERE k = 1")
        .await
        .unwrap();
    let err = a.batch_execute("COMMIT").await.unwrap_err();
    assert!(is_serialization_failure(&err), "{err}");
    assert_eq!(
        support::values(&b, "SELECT n FROM c ORDER BY k").await,
        ["7", "0"]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_clock_and_the_last_commit_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = connect(&node).await;
    let row = async |sql: &str| support::rows(&client, sql).await.remove(0);
    let clock = row("SHOW CLOCK").await;
    let (earliest, latest) = (clock[0].clone().unwrap(), clock[1].clone().unwrap());
    assert!(earliest <= latest, "{clock:?}");
    let epsilon_us: f64 = clock[2].as_deref().unwrap().parse().unwrap();
    assert!(epsilon_us > 0.0, "{clock:?}");
    assert_eq!(clock[5].as_deref(), Some("ok"));

    // No write yet in this session.
    assert_eq!(row("SHOW LAST COMMIT TIMESTAMP").await, [None, None]);
    client
        .batch_execute("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let first = support::last_commit_nanos(&client).await.unwrap();
    // The commit was acknowledged after commit wait: its timestamp is in the past now.
    let now = row("SHOW CLOCK").await[0].clone().unwrap();
    assert!(row("SHOW LAST COMMIT TIMESTAMP").await[0].clone().unwrap() < now);
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (2); COMMIT")
        .await
        .unwrap();
    let second = support::last_commit_nanos(&client).await.unwrap();
    assert!(second > first, "{second} after {first}");
    // A read-only block commits nothing and leaves it unchanged.
    client
        .batch_execute("BEGIN; SELECT * FROM t; COMMIT")
        .await
        .unwrap();
    let third = support::last_commit_nanos(&client).await.unwrap();
    assert_eq!(third, second);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_as_of_a_past_commit_timestamp_see_the_data_of_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = connect(&node).await;
    let last_commit = async || support::last_commit_nanos(&client).await.unwrap();
    client
        .batch_execute("CREATE TABLE t (k INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 10)")
        .await
        .unwrap();
    let first = last_commit().await;
    client
        .batch_execute("UPDATE t SET v = 20 WHERE k = 1; INSERT INTO t VALUES (2, 30)")
        .await
        .unwrap();
    let second = last_commit().await;
    assert!(first < second);

    let at = |ts: &u64| format!("SELECT k, v FROM t AS OF SYSTEM TIME {ts} ORDER BY k");
    let rows = async |sql: String| {
        support::rows(&client, &sql)
            .await
            .into_iter()
            .map(|r| format!("{}={}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(at(&first)).await, ["1=10"]);
    assert_eq!(rows(at(&second)).await, ["1=20", "2=30"]);
    // The same through a read-only block opened in the past, which refuses writes.
    client
        .batch_execute(&format!("BEGIN AS OF SYSTEM TIME {first}"))
        .await
        .unwrap();
    assert_eq!(rows("SELECT k, v FROM t ORDER BY k".into()).await, ["1=10"]);
    let err = client
        .batch_execute("INSERT INTO t VALUES (3, 3)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25006");
    client.batch_execute("ROLLBACK").await.unwrap();
    node.shutdown().await;
}

/// Nanoseconds since `start` on the test's monotonic clock (recording only).
#[allow(clippy::disallowed_methods)]
fn since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[allow(clippy::disallowed_methods)]
fn test_start() -> std::time::Instant {
    std::time::Instant::now()
}

/// A register workload recorded and checked: concurrent writers give two keys unique values
/// (each write's commit timestamp learned from the session), concurrent readers read both keys
/// in one snapshot with its read timestamp; the checkers find external consistency, exact
/// snapshot reads and no lost write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_register_history_passes_the_checkers() {
    use meridian_history::{History, Op, Outcome};
    use std::collections::BTreeMap;

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE reg (k TEXT PRIMARY KEY, v BIGINT); INSERT INTO reg VALUES ('a', 0), ('b', 0)")
        .await
        .unwrap();
    let start = test_start();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            let mut ops = Vec::new();
            for n in 0..10i64 {
                let key = if (w + n as usize).is_multiple_of(2) {
                    "a"
                } else {
                    "b"
                };
                let value = (w as i64 + 1) * 1000 + n;
                let invoked = since(start);
                let r = client
                    .batch_execute(&format!("UPDATE reg SET v = {value} WHERE k = '{key}'"))
                    .await;
                let completed = since(start);
                let (outcome, commit_ts) = match r {
                    Ok(()) => {
                        let nanos = support::last_commit_nanos(&client).await;
                        (Outcome::Committed, nanos)
                    }
                    Err(e) if e.code().map(|c| c.code()) == Some("40003") => {
                        (Outcome::Unknown, None)
                    }
                    Err(_) => (Outcome::Aborted, None),
                };
                ops.push(Op {
                    client: w,
                    invoked,
                    completed,
                    outcome,
                    commit_ts,
                    read_ts: None,
                    reads: vec![],
                    writes: vec![(key.to_string(), value)],
                });
            }
            ops
        }));
    }
    for r in 0..2usize {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            let mut ops = Vec::new();
            for _ in 0..20 {
                let invoked = since(start);
                let rows = client
                    .simple_query("SELECT k, v, cluster_logical_timestamp() FROM reg ORDER BY k")
                    .await
                    .unwrap();
                let completed = since(start);
                let mut reads = Vec::new();
                let mut read_ts = None;
                for m in rows {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
                        reads.push((
                            row.get(0).unwrap().to_string(),
                            Some(row.get(1).unwrap().parse().unwrap()),
                        ));
                        read_ts = Some(row.get(2).unwrap().parse::<u64>().unwrap());
                    }
                }
                ops.push(Op {
                    client: 100 + r,
                    invoked,
                    completed,
                    outcome: Outcome::Committed,
                    commit_ts: None,
                    read_ts,
                    reads,
                    writes: vec![],
                });
            }
            ops
        }));
    }
    let mut history = History::new();
    for t in tasks {
        for op in t.await.unwrap() {
            history.push(op);
        }
    }
    let committed = history
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Committed && !o.writes.is_empty())
        .count();
    assert!(committed >= 30, "only {committed} writes committed");

    let initial: BTreeMap<String, i64> = [("a".to_string(), 0), ("b".to_string(), 0)].into();
    let mut final_state = BTreeMap::new();
    for m in setup.simple_query("SELECT k, v FROM reg").await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            final_state.insert(
                r.get(0).unwrap().to_string(),
                r.get(1).unwrap().parse().unwrap(),
            );
        }
    }
    history.check_external_consistency().unwrap();
    history.check_snapshot_reads(&initial).unwrap();
    history.check_final_state(&final_state).unwrap();
    node.shutdown().await;
}
