//! Statistics end to end: ANALYZE and SHOW STATISTICS, automatic collection, and plans
//! following them.

use meridian_clock::Timestamp;

use super::*;
use crate::api::{Datum, StatementResult};
use crate::session::Session;
use crate::tests::{fail, ok, plan_lines, rows, setup};

#[test]
fn statistics_round_trip_through_protobuf() {
    let s = TableStats {
        row_count: 12,
        columns: vec![ColumnStats {
            column_id: 3,
            distinct: 4,
            nulls: 2,
            avg_size: 9,
        }],
        collected_at: Timestamp::from_nanos(77),
        automatic: true,
        generation: 5,
    };
    let (id, back) = decode(&encode(101, &s)).unwrap();
    assert_eq!((id, back), (101, s));
    assert!(stats_key(101).as_slice() < crate::keys::TABLE_DATA_PREFIX);
}

#[test]
fn staleness_grows_with_the_table() {
    assert!(!stale(0, STALE_MIN_ROWS - 1));
    assert!(stale(0, STALE_MIN_ROWS));
    assert!(!stale(10_000, 2_000));
    assert!(stale(10_000, 2_500));
}

/// `SHOW STATISTICS FOR TABLE t` without the creation time: (statistics name, column, rows,
/// distinct values, NULLs).
async fn statistics(s: &mut Session, table: &str) -> Vec<(String, String, i64, i64, i64)> {
    let sql = format!("SHOW STATISTICS FOR TABLE {table}");
    let StatementResult::Query { columns, rows } = ok(s, &sql).await else {
        panic!("{sql}: not a query");
    };
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "statistics_name",
            "column_names",
            "created",
            "row_count",
            "distinct_count",
            "null_count",
            "avg_size"
        ]
    );
    rows.into_iter()
        .map(|r| match &r[..] {
            [
                Datum::Text(name),
                Datum::Text(col),
                Datum::TimestampTz(_),
                Datum::Int(n),
                Datum::Int(d),
                Datum::Int(nulls),
                Datum::Int(_),
            ] => (name.clone(), col.clone(), *n, *d, *nulls),
            other => panic!("{sql}: unexpected row {other:?}"),
        })
        .collect()
}

fn stat(name: &str, col: &str, n: i64, d: i64, nulls: i64) -> (String, String, i64, i64, i64) {
    (name.into(), col.into(), n, d, nulls)
}

#[tokio::test]
async fn analyze_counts_rows_distinct_values_and_nulls() {
    let (_, engine) = setup();
    engine.set_automatic_statistics(false);
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY, g INT, note TEXT)",
    )
    .await;
    ok(
        &mut s,
        "INSERT INTO t SELECT x, x % 7, CASE WHEN x % 4 = 0 THEN NULL ELSE 'n' || (x % 3) END \
         FROM generate_series(1, 100) AS g(x)",
    )
    .await;
    assert_eq!(statistics(&mut s, "t").await, []);
    ok(&mut s, "ANALYZE t").await;
    assert_eq!(
        statistics(&mut s, "t").await,
        [
            stat("__analyze__", "{id}", 100, 100, 0),
            stat("__analyze__", "{g}", 100, 7, 0),
            stat("__analyze__", "{note}", 100, 3, 25),
        ]
    );
    // A later ANALYZE (of every table) replaces them.
    ok(&mut s, "DELETE FROM t WHERE id > 10").await;
    ok(&mut s, "ANALYZE").await;
    assert_eq!(
        statistics(&mut s, "t").await,
        [
            stat("__analyze__", "{id}", 10, 10, 0),
            stat("__analyze__", "{g}", 10, 7, 0),
            stat("__analyze__", "{note}", 10, 3, 2),
        ]
    );
    assert_eq!(fail(&mut s, "ANALYZE nosuch").await.code, "42P01");
    assert_eq!(
        fail(&mut s, "SHOW STATISTICS FOR TABLE nosuch").await.code,
        "42P01"
    );
    assert_eq!(fail(&mut s, "SHOW STATISTICS t").await.code, "42601");
}

#[tokio::test]
async fn drop_table_deletes_its_statistics() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)",
    )
    .await;
    ok(&mut s, "ANALYZE t").await;
    let has_stats = |kv: &crate::testing::MemKv| {
        kv.live_keys()
            .iter()
            .any(|k| k.starts_with(super::STATS_PREFIX))
    };
    assert!(has_stats(&kv));
    ok(&mut s, "DROP TABLE t").await;
    assert!(!has_stats(&kv));
}

#[tokio::test]
async fn statistics_are_collected_after_enough_writes() {
    let (_, engine) = setup();
    let stats = engine.inner.stats.clone();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    let insert = |from: i64, to: i64| {
        format!("INSERT INTO t SELECT x, x % 10 FROM generate_series({from}, {to}) AS g(x)")
    };
    // Below the threshold (500 rows for a table without statistics) nothing is collected.
    ok(&mut s, &insert(1, 400)).await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await, []);
    ok(&mut s, &insert(401, 600)).await;
    stats.idle().await;
    assert_eq!(
        statistics(&mut s, "t").await,
        [
            stat("__auto__", "{id}", 600, 600, 0),
            stat("__auto__", "{v}", 600, 10, 0)
        ]
    );
    // Now 500 + 20% of 600 rows must change: 100 more are not enough, 600 deleted are.
    ok(&mut s, &insert(601, 700)).await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await[0].2, 600);
    ok(&mut s, "DELETE FROM t WHERE id > 100").await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await[0].2, 100);
    // Rows of a transaction block count when it commits, and not when it rolls back.
    let many = "INSERT INTO t SELECT x, 0 FROM generate_series(1000, 1600) AS g(x)";
    ok(&mut s, &format!("BEGIN; {many}; ROLLBACK")).await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await[0].2, 100);
    ok(&mut s, &format!("BEGIN; {many}; COMMIT")).await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await[0].2, 701);
    // Turned off, writes collect nothing.
    engine.set_automatic_statistics(false);
    ok(&mut s, "DELETE FROM t").await;
    stats.idle().await;
    assert_eq!(statistics(&mut s, "t").await[0].2, 701);
}

#[tokio::test]
async fn joining_a_table_without_statistics_collects_them() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY, a INT); \
         INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (1, 1), (2, 1), (3, 2)",
    )
    .await;
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM a").await,
        [[Datum::Int(2)]]
    );
    engine.inner.stats.idle().await;
    assert_eq!(
        statistics(&mut s, "a").await,
        [],
        "a lone scan asks for nothing"
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM a JOIN b ON b.a = a.id").await,
        [[Datum::Int(3)]]
    );
    engine.inner.stats.idle().await;
    assert_eq!(statistics(&mut s, "a").await[0].2, 2);
    assert_eq!(statistics(&mut s, "b").await[0].2, 3);
}

#[tokio::test]
async fn cached_plans_follow_new_statistics() {
    let (_, engine) = setup();
    engine.set_automatic_statistics(false);
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE big (id INT PRIMARY KEY, m INT); CREATE TABLE mid (id INT PRIMARY KEY); \
         INSERT INTO big SELECT x, x % 20 FROM generate_series(1, 300) AS g(x); \
         INSERT INTO mid SELECT x FROM generate_series(1, 20) AS g(x)",
    )
    .await;
    let explain = "EXPLAIN SELECT count(*) FROM big, mid WHERE big.m = mid.id";
    let p = s.prepare(explain).await.unwrap();
    let lines = |r: StatementResult| -> Vec<String> {
        match r {
            StatementResult::Query { rows, .. } => rows
                .into_iter()
                .map(|r| match &r[..] {
                    [Datum::Text(l)] => l.clone(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    let before = lines(s.execute_prepared(&p, vec![]).await.unwrap());
    assert!(
        before.iter().all(|l| !l.contains("estimated")),
        "{before:#?}"
    );
    ok(&mut s, "ANALYZE").await;
    let after = lines(s.execute_prepared(&p, vec![]).await.unwrap());
    assert_eq!(after, plan_lines(&mut s, explain).await);
    assert!(
        after
            .iter()
            .any(|l| l.contains("Scan: mid, full scan (estimated rows=20)")),
        "{after:#?}"
    );
}

/// The memory EXPLAIN ANALYZE reports for the hash join of `sql`, in kB.
async fn hash_join_memory(s: &mut Session, sql: &str) -> u64 {
    let lines = plan_lines(
        s,
        &format!("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) {sql}"),
    )
    .await;
    let line = lines
        .iter()
        .find(|l| l.contains("Hash join"))
        .unwrap_or_else(|| panic!("no hash join in {lines:#?}"));
    let kb = line
        .split("memory: ")
        .nth(1)
        .and_then(|m| m.split("kB").next())
        .and_then(|n| n.parse().ok());
    kb.unwrap_or_else(|| panic!("no memory in {line:?}"))
}

#[tokio::test]
async fn hash_joins_hold_the_smaller_side() {
    let (_, engine) = setup();
    engine.set_automatic_statistics(false);
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE small (id INT PRIMARY KEY); \
         CREATE TABLE big (id INT PRIMARY KEY, k INT, pad TEXT); \
         INSERT INTO small SELECT x FROM generate_series(1, 5) AS g(x); \
         INSERT INTO big SELECT x, x % 1000 + 1, repeat('p', 100) \
         FROM generate_series(1, 2000) AS g(x)",
    )
    .await;
    let sql = "SELECT count(pad) FROM small JOIN big ON big.k = small.id";
    // Without statistics the right side, big, is hashed.
    let before = hash_join_memory(&mut s, sql).await;
    ok(&mut s, "ANALYZE").await;
    let lines = plan_lines(&mut s, &format!("EXPLAIN {sql}")).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Hash join (inner, build left)")),
        "{lines:#?}"
    );
    // With them the five rows of small are, and the ten joined rows are the same.
    let after = hash_join_memory(&mut s, sql).await;
    assert!(
        after * 10 < before,
        "{after}kB hashing small, {before}kB hashing big"
    );
    assert_eq!(rows(&mut s, sql).await, [[Datum::Int(10)]]);
}
