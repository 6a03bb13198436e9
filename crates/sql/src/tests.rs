//! End-to-end tests of sessions over the in-memory keyspace: retries, error mapping, what the
//! executor reads and writes, and concurrency.

use std::sync::Arc;

use regex::Regex;

use crate::testing::MemKv;
use crate::{ColumnInfo, Datum, Engine, Session, SqlError, SqlType, StatementResult};

pub(crate) fn setup() -> (Arc<MemKv>, Engine) {
    let kv = Arc::new(MemKv::new());
    let engine = Engine::new(kv.clone());
    (kv, engine)
}

/// Runs `sql`, expecting every statement to succeed; returns the last result.
pub(crate) async fn ok(s: &mut Session, sql: &str) -> StatementResult {
    let mut out = s.execute(sql).await;
    let last = out.pop().expect("at least one statement");
    for r in out {
        r.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    last.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub(crate) async fn fail(s: &mut Session, sql: &str) -> SqlError {
    match s.execute(sql).await.pop() {
        Some(Err(e)) => e,
        other => panic!("{sql} should fail, got {other:?}"),
    }
}

pub(crate) async fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Datum>> {
    match ok(s, sql).await {
        StatementResult::Query { rows, .. } => rows,
        other => panic!("{sql}: not a query: {other:?}"),
    }
}

fn tag(r: StatementResult) -> String {
    match r {
        StatementResult::Command { tag } => tag,
        other => panic!("not a command: {other:?}"),
    }
}

#[tokio::test]
async fn command_tags_and_result_columns() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    assert_eq!(
        tag(ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await),
        "CREATE TABLE"
    );
    assert_eq!(
        tag(ok(&mut s, "INSERT INTO t VALUES (1, 'a'), (2, 'b')").await),
        "INSERT 0 2"
    );
    assert_eq!(tag(ok(&mut s, "UPDATE t SET v = 'c'").await), "UPDATE 2");
    assert_eq!(
        tag(ok(&mut s, "DELETE FROM t WHERE id = 1").await),
        "DELETE 1"
    );
    assert_eq!(tag(ok(&mut s, "SET application_name = 'x'").await), "SET");
    assert_eq!(tag(ok(&mut s, "COMMIT").await), "COMMIT");
    assert_eq!(tag(ok(&mut s, "ROLLBACK").await), "ROLLBACK");
    let r = ok(
        &mut s,
        "SELECT id, v, id + 1, count(*) FROM t GROUP BY id, v",
    )
    .await;
    let StatementResult::Query { columns, rows } = r else {
        panic!()
    };
    let col = |n: &str, ty| ColumnInfo { name: n.into(), ty };
    assert_eq!(
        columns,
        [
            col("id", SqlType::Int4),
            col("v", SqlType::Text),
            col("?column?", SqlType::Int4),
            col("count", SqlType::Int8)
        ]
    );
    assert_eq!(
        rows,
        [[
            Datum::Int(2),
            Datum::Text("c".into()),
            Datum::Int(3),
            Datum::Int(1)
        ]]
    );
    let StatementResult::Query { columns, .. } = ok(&mut s, "SHOW DateStyle").await else {
        panic!()
    };
    assert_eq!(columns, [col("DateStyle", SqlType::Text)]);
    assert_eq!(tag(ok(&mut s, "DROP TABLE t").await), "DROP TABLE");
}

#[tokio::test]
async fn split_at_in_a_string_of_statements_keeps_its_rules() {
    // (sql/ranges/splits.slt runs such strings on a keyspace that splits.)
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE k (id INT PRIMARY KEY, v TEXT); INSERT INTO k VALUES (1, 'a'), (5, 'b')",
    )
    .await;
    // A syntax error anywhere still runs nothing; an error stops what follows.
    let out = s
        .execute("INSERT INTO k VALUES (7, 'c'); ALTER TABLE k SPLIT AT VALUES (6); SELEC")
        .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().code, "42601");
    let out = s
        .execute("ALTER TABLE nosuch SPLIT AT VALUES (1); INSERT INTO k VALUES (8, 'd')")
        .await;
    assert_eq!(out.len(), 1);
    assert!(out[0].is_err());
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM k").await,
        [[Datum::Int(2)]]
    );
}

#[test]
fn statements_are_cut_outside_quotes_and_comments() {
    use crate::ranges::statements;
    assert_eq!(statements("a; b;; c;"), ["a", " b", " c"]);
    assert_eq!(statements("x 'it''s;'; y"), ["x 'it''s;'", " y"]);
    assert_eq!(statements("x \"a;b\"; y"), ["x \"a;b\"", " y"]);
    assert_eq!(statements("x $t$ ; $ $t$; y"), ["x $t$ ; $ $t$", " y"]);
    assert_eq!(statements("x $1; y"), ["x $1", " y"]);
    assert_eq!(statements("x -- ;\n; y"), ["x -- ;\n", " y"]);
    assert_eq!(
        statements("x /* /* ; */ ; */; y"),
        ["x /* /* ; */ ; */", " y"]
    );
    assert_eq!(statements("x 'open ;"), ["x 'open ;"]);
    assert_eq!(
        statements("é /* ü */; ü $é$;$é$; ß"),
        ["é /* ü */", " ü $é$;$é$", " ß"]
    );
    assert_eq!(statements("x $$ a;"), ["x $$ a;"]);
}

#[tokio::test]
async fn statement_strings_stop_at_the_first_error() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    assert!(s.execute("").await.is_empty());
    assert!(s.execute(" ; ").await.len() <= 1);
    let out = s.execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)").await;
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[1].is_ok());
    assert_eq!(out[2].as_ref().unwrap_err().code, "23505");
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t").await,
        [[Datum::Int(1)]]
    );
    // A syntax error anywhere runs nothing.
    let out = s.execute("INSERT INTO t VALUES (5); SELEC").await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().code, "42601");
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t").await,
        [[Datum::Int(1)]]
    );
}

#[tokio::test]
async fn duplicate_key_error_names_constraint_and_key() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE c (a INT, b TEXT, PRIMARY KEY (a, b)); INSERT INTO c VALUES (1, 'x')",
    )
    .await;
    let e = fail(&mut s, "INSERT INTO c VALUES (1, 'x')").await;
    assert_eq!(e.code, "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"c_pkey\""
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Key (a, b)=(1, x) already exists.")
    );
    let e = fail(&mut s, "INSERT INTO c VALUES (2, 'y'), (2, 'y')").await;
    assert_eq!(
        e.detail.as_deref(),
        Some("Key (a, b)=(2, y) already exists.")
    );
    let e = fail(&mut s, "INSERT INTO c (a) VALUES (3)").await;
    assert_eq!(e.code, "23502");
    assert_eq!(e.detail.as_deref(), Some("Failing row contains (3, null)."));
}

#[tokio::test]
async fn write_conflicts_are_retried_then_reported() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY, n INT); INSERT INTO t VALUES (1, 0)",
    )
    .await;

    let before = kv.write_attempts();
    kv.inject_write_conflicts(3);
    ok(&mut s, "UPDATE t SET n = n + 1 WHERE id = 1").await;
    assert_eq!(
        kv.write_attempts() - before,
        4,
        "three conflicts, then success"
    );
    assert_eq!(rows(&mut s, "SELECT n FROM t").await, [[Datum::Int(1)]]);

    let before = kv.write_attempts();
    kv.inject_write_conflicts(1000);
    let e = fail(&mut s, "UPDATE t SET n = n + 1 WHERE id = 1").await;
    assert_eq!(e.code, "40001");
    assert_eq!(kv.write_attempts() - before, 10);
    kv.inject_write_conflicts(0);
    assert_eq!(rows(&mut s, "SELECT n FROM t").await, [[Datum::Int(1)]]);
}

/// A write whose outcome is unknown must not be replayed (it may have committed).
#[tokio::test]
async fn ambiguous_writes_are_not_retried() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let before = kv.write_attempts();
    kv.inject_unavailable(1);
    let e = fail(&mut s, "INSERT INTO t VALUES (1)").await;
    assert_eq!(e.code, "40003");
    assert_eq!(kv.write_attempts() - before, 1);
}

#[tokio::test]
async fn point_lookups_do_not_scan() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    ok(&mut s, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')").await;
    let (gets, scans) = kv.reads();
    assert_eq!(
        rows(&mut s, "SELECT v FROM t WHERE id = 2").await,
        [[Datum::Text("b".into())]]
    );
    let (gets2, scans2) = kv.reads();
    assert_eq!(scans2, scans, "a point lookup must not scan");
    // The first statement of its shape plans it (a catalog read) before running.
    assert_eq!(gets2 - gets, 3, "two catalog reads and one row read");
    assert_eq!(
        rows(&mut s, "SELECT v FROM t WHERE id = 3").await,
        [[Datum::Text("c".into())]]
    );
    let (gets3, scans3) = kv.reads();
    assert_eq!(scans3, scans);
    assert_eq!(gets3 - gets2, 2, "one catalog read and one row read");
    ok(&mut s, "UPDATE t SET v = 'z' WHERE id IN (1, 3)").await;
    assert_eq!(kv.reads().1, scans, "point updates do not scan either");
    assert_eq!(rows(&mut s, "SELECT v FROM t WHERE id > 1").await.len(), 2);
    assert_eq!(kv.reads().1, scans + 1);
}

#[tokio::test]
async fn drop_table_removes_every_key() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    let baseline = kv.live_keys().len();
    ok(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY); CREATE TABLE u (v TEXT)",
    )
    .await;
    ok(
        &mut s,
        "INSERT INTO t VALUES (1), (2), (3); INSERT INTO u VALUES ('a'), ('b')",
    )
    .await;
    ok(&mut s, "DROP TABLE t, u").await;
    let left: Vec<Vec<u8>> = kv.live_keys();
    // Only the table id counter remains (it was created by the first CREATE TABLE).
    assert_eq!(left.len(), baseline + 1, "{left:?}");
    assert_eq!(left[0], crate::catalog::TABLE_ID_COUNTER_KEY);
}

/// No lost updates: every increment that reported success is in the final value. Under
/// contention an increment may give up with 40001 after its retries; it must then have
/// changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_serializable() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE c (id INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0)",
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut s = engine.session("root", "db");
        tasks.push(tokio::spawn(async move {
            let mut done = 0i64;
            for _ in 0..25 {
                match s
                    .execute("UPDATE c SET n = n + 1 WHERE id = 1")
                    .await
                    .pop()
                    .unwrap()
                {
                    Ok(_) => done += 1,
                    Err(e) => assert_eq!(e.code, "40001", "{e}"),
                }
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 0);
    assert_eq!(rows(&mut s, "SELECT n FROM c").await, [[Datum::Int(total)]]);
}

/// Concurrent CREATE TABLEs never share a table id (which would mix their rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_get_distinct_ids() {
    let (_, engine) = setup();
    let mut tasks = Vec::new();
    for i in 0..6i64 {
        let mut s = engine.session("root", "db");
        tasks.push(tokio::spawn(async move {
            match s
                .execute(&format!("CREATE TABLE t{i} (id INT PRIMARY KEY)"))
                .await
                .pop()
                .unwrap()
            {
                Ok(_) => {
                    let values: Vec<String> = (0..=i).map(|v| format!("({v})")).collect();
                    ok(
                        &mut s,
                        &format!("INSERT INTO t{i} VALUES {}", values.join(", ")),
                    )
                    .await;
                    true
                }
                Err(e) => {
                    assert_eq!(e.code, "40001", "{e}");
                    false
                }
            }
        }));
    }
    let mut created = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() {
            created.push(i as i64);
        }
    }
    assert!(!created.is_empty());
    let mut s = engine.session("root", "db");
    for i in created {
        assert_eq!(
            rows(&mut s, &format!("SELECT count(*) FROM t{i}")).await,
            [[Datum::Int(i + 1)]],
            "table t{i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_name_yield_one_table() {
    let (_, engine) = setup();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut s = engine.session("root", "db");
        tasks.push(tokio::spawn(async move {
            s.execute("CREATE TABLE same (id INT PRIMARY KEY)")
                .await
                .pop()
                .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert!(e.code == "42P07" || e.code == "40001", "{e}"),
        }
    }
    assert_eq!(created, 1);
}

#[test]
fn execute_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    let fut = s.execute("SELECT 1");
    assert_send(&fut);
}

#[tokio::test]
async fn positions_point_into_the_statement() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let e = fail(&mut s, "SELECT id,\n  nosuch FROM t").await;
    assert_eq!((e.code, e.position), ("42703", Some(14)));
    let e = fail(&mut s, "SELECT 1; SELECT * FROM nosuch").await;
    assert_eq!((e.code, e.position), ("42P01", Some(25)));
}

/// Concurrent inserts of one value into a UNIQUE column: exactly one wins, the index and the
/// rows agree afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_unique_inserts_admit_one_row() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(
        &mut s,
        "CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE)",
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut s = engine.session("root", "db");
        tasks.push(tokio::spawn(async move {
            let sql = format!("INSERT INTO u VALUES ({i}, 'same@x')");
            match s.execute(&sql).await.pop().unwrap() {
                Ok(_) => 1,
                Err(e) => {
                    assert!(e.code == "23505" || e.code == "40001", "{e}");
                    0
                }
            }
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap();
    }
    assert_eq!(won, 1);
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM u").await,
        [[Datum::Int(1)]]
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM u WHERE email = 'same@x'").await,
        [[Datum::Int(1)]]
    );
}

/// An index created while the table holds rows finds them (backfill), and later writes keep
/// it exact: every index entry matches a row and every row has its entry.
#[tokio::test]
async fn index_entries_match_rows_after_mixed_writes() {
    let (kv, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, g INT, v TEXT)").await;
    for i in 0..50 {
        ok(
            &mut s,
            &format!("INSERT INTO t VALUES ({i}, {}, 'v{i}')", i % 7),
        )
        .await;
    }
    ok(&mut s, "CREATE INDEX t_g ON t (g DESC) INCLUDE (v)").await;
    ok(&mut s, "UPDATE t SET g = g + 1 WHERE id % 3 = 0").await;
    ok(&mut s, "DELETE FROM t WHERE id % 5 = 0").await;
    ok(&mut s, "UPDATE t SET v = 'w' || v WHERE g = 2").await;
    for g in 0..8 {
        let via_index = rows(
            &mut s,
            &format!("SELECT id, v FROM t WHERE g = {g} ORDER BY id"),
        )
        .await;
        let via_scan = rows(
            &mut s,
            &format!("SELECT id, v FROM t WHERE g + 0 = {g} ORDER BY id"),
        )
        .await;
        assert_eq!(via_index, via_scan, "g = {g}");
    }
    // One index entry per row: keys under the table are rows + entries.
    let rows_left = 50 - 10;
    let table_keys = kv
        .live_keys()
        .into_iter()
        .filter(|k| k.starts_with(b"/t/"))
        .count();
    assert_eq!(table_keys, 2 * rows_left);
}

#[tokio::test]
async fn users_keep_verifiers_and_only_root_manages_them() {
    let (_, engine) = setup();
    let mut root = engine.session("root", "db");
    assert_eq!(engine.password_verifier("root").await.unwrap(), None);
    assert_eq!(engine.password_verifier("alice").await.unwrap(), None);
    assert_eq!(
        tag(ok(&mut root, "CREATE USER alice WITH PASSWORD 'first'").await),
        "CREATE ROLE"
    );
    let verifier = engine.password_verifier("alice").await.unwrap().unwrap();
    let creds = meridian_security::ScramCredentials::parse(&verifier).unwrap();
    assert!(creds.matches_password("first"));

    // A user changes its own password, but manages no one else.
    let mut alice = engine.session("alice", "db");
    ok(&mut alice, "ALTER USER alice WITH PASSWORD 'second'").await;
    let verifier = engine.password_verifier("alice").await.unwrap().unwrap();
    let creds = meridian_security::ScramCredentials::parse(&verifier).unwrap();
    assert!(creds.matches_password("second") && !creds.matches_password("first"));
    for sql in [
        "CREATE USER bob",
        "DROP USER alice",
        "ALTER USER root WITH PASSWORD 'x'",
    ] {
        assert_eq!(fail(&mut alice, sql).await.code, "42501", "{sql}");
    }

    ok(&mut root, "ALTER USER root WITH PASSWORD 'rootpw'").await;
    assert!(engine.password_verifier("root").await.unwrap().is_some());
    ok(&mut root, "ALTER USER alice PASSWORD NULL").await;
    assert_eq!(engine.password_verifier("alice").await.unwrap(), None);
    ok(&mut root, "DROP USER alice").await;
    assert_eq!(fail(&mut root, "DROP USER alice").await.code, "42704");
}

/// The text lines of an EXPLAIN.
pub(crate) async fn plan_lines(s: &mut Session, sql: &str) -> Vec<String> {
    rows(s, sql)
        .await
        .into_iter()
        .map(|r| match &r[..] {
            [Datum::Text(l)] => l.clone(),
            other => panic!("{sql}: not a plan line: {other:?}"),
        })
        .collect()
}

/// Asserts that each line matches its pattern (times vary; everything else is exact).
fn assert_lines(lines: &[String], patterns: &[&str]) {
    assert_eq!(lines.len(), patterns.len(), "{lines:#?}");
    for (l, p) in lines.iter().zip(patterns) {
        let re = regex::Regex::new(&format!("^{p}$")).unwrap();
        assert!(re.is_match(l), "{l:?} does not match {p:?} in {lines:#?}");
    }
}

#[tokio::test]
async fn explain_analyze_runs_the_statement_and_reports_each_operator() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    ok(&mut s, "CREATE TABLE u (id INT PRIMARY KEY, t_id INT)").await;
    ok(&mut s, "INSERT INTO t VALUES (1, 'c'), (2, 'b'), (3, 'a')").await;
    ok(&mut s, "INSERT INTO u VALUES (10, 1), (11, 3), (12, 3)").await;

    let time = r"time=\d+\.\d{3}";
    let lines = plan_lines(&mut s, "EXPLAIN ANALYZE SELECT v FROM t ORDER BY v").await;
    assert_lines(
        &lines,
        &[
            &format!(r"Sort: v NULLS LAST \(actual {time} rows=3 loops=1; memory: [1-9]\d*kB\)"),
            &format!(r"  Project: v \(vectorized\) \(actual {time} rows=3 loops=1\)"),
            &format!(
                r"    Scan: t, full scan \(vectorized\) \(actual {time} rows=3 loops=1; read: tablets=1 spans=1 keys=3 bytes=39\)"
            ),
            r"Peak Memory: [1-9]\d*kB \(limit 256MB\)",
            r"Execution Time: \d+\.\d{3} ms",
        ],
    );

    // Without timing and summary the output is exact; the right side of the join never runs
    // for a left side without rows.
    let lines = plan_lines(
        &mut s,
        "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) \
         SELECT t.v FROM u JOIN t ON t.id = u.t_id WHERE u.id > 100",
    )
    .await;
    assert!(
        lines.iter().any(|l| l.ends_with("(never executed)")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains("time=")), "{lines:#?}");
    assert!(lines[0].contains("(actual rows=0 loops=1)"), "{lines:#?}");

    // A grouped join: rows per operator are exact.
    let lines = plan_lines(
        &mut s,
        "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) \
         SELECT t.v, count(*) FROM u JOIN t ON t.id = u.t_id GROUP BY t.v",
    )
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("  Aggregate: count(*) GROUP BY v (actual rows=2 loops=1; memory: ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("join") && l.contains("(actual rows=3 loops=1")),
        "{lines:#?}"
    );

    // Writes happen, as in PostgreSQL, and the first line counts them.
    let lines = plan_lines(
        &mut s,
        "EXPLAIN ANALYZE INSERT INTO t VALUES (4, 'd'), (5, 'e')",
    )
    .await;
    assert!(
        Regex::new(&format!(r"^Insert: t \(actual {time} rows=2 loops=1\)$"))
            .unwrap()
            .is_match(&lines[0]),
        "{lines:#?}"
    );
    let lines = plan_lines(
        &mut s,
        "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) UPDATE t SET v = 'z' WHERE id >= 4 RETURNING id",
    )
    .await;
    assert_eq!(lines[0], "Update: t SET v = 'z' (actual rows=2 loops=1)");
    assert_eq!(
        rows(&mut s, "SELECT id FROM t WHERE v = 'z' ORDER BY id").await,
        vec![vec![Datum::Int(4)], vec![Datum::Int(5)]]
    );
    ok(&mut s, "EXPLAIN ANALYZE DELETE FROM t WHERE id >= 4").await;
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t").await,
        vec![vec![Datum::Int(3)]]
    );
}

#[tokio::test]
async fn explain_analyze_options_and_read_only_blocks() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    for (sql, code) in [
        ("EXPLAIN (TIMING) SELECT 1", "22023"),
        ("EXPLAIN (ANALYZE, COLOR) SELECT 1", "42601"),
        ("EXPLAIN (ANALYZE maybe) SELECT 1", "42601"),
        ("EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1", "0A000"),
        ("EXPLAIN ANALYZE CREATE TABLE x (a INT)", "42601"),
    ] {
        assert_eq!(fail(&mut s, sql).await.code, code, "{sql}");
    }
    for sql in [
        "EXPLAIN (TIMING OFF) SELECT 1",
        "EXPLAIN (ANALYZE FALSE, VERBOSE, COSTS OFF) SELECT 1",
        "EXPLAIN (ANALYZE on, BUFFERS, FORMAT TEXT) SELECT 1",
        "EXPLAIN ANALYZE VERBOSE SELECT 1",
    ] {
        ok(&mut s, sql).await;
    }
    // EXPLAIN ANALYZE of a write writes, so a READ ONLY block refuses it.
    ok(&mut s, "BEGIN READ ONLY").await;
    ok(&mut s, "EXPLAIN INSERT INTO t VALUES (1)").await;
    ok(&mut s, "EXPLAIN (ANALYZE) SELECT * FROM t").await;
    assert_eq!(
        fail(&mut s, "EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)")
            .await
            .code,
        "25006"
    );
    ok(&mut s, "ROLLBACK").await;
    // Inside a read-write block the write is part of the block.
    ok(&mut s, "BEGIN").await;
    ok(&mut s, "EXPLAIN ANALYZE INSERT INTO t VALUES (1)").await;
    ok(&mut s, "ROLLBACK").await;
    assert_eq!(
        rows(&mut s, "SELECT * FROM t").await,
        Vec::<Vec<Datum>>::new()
    );
}

#[tokio::test]
async fn a_transaction_over_its_memory_limit_fails_with_53200() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    ok(&mut s, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)").await;
    ok(&mut s, "SET meridian.txn_memory_limit = '64kB'").await;
    ok(&mut s, "BEGIN").await;
    ok(
        &mut s,
        "INSERT INTO t SELECT x, 'row' FROM generate_series(1, 100) AS g(x)",
    )
    .await;
    let e = fail(
        &mut s,
        "INSERT INTO t SELECT x, repeat('v', 100) FROM generate_series(101, 2000) AS g(x)",
    )
    .await;
    assert_eq!(e.code, "53200", "{e}");
    assert!(e.message.contains("meridian.txn_memory_limit"), "{e}");
    // The block failed whole; the session goes on serving.
    assert_eq!(fail(&mut s, "SELECT 1").await.code, "25P02");
    ok(&mut s, "ROLLBACK").await;
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t").await,
        vec![vec![Datum::Int(0)]]
    );
    // Under a larger limit the same block commits.
    ok(&mut s, "SET meridian.txn_memory_limit = '64MB'").await;
    ok(&mut s, "BEGIN").await;
    ok(
        &mut s,
        "INSERT INTO t SELECT x, repeat('v', 100) FROM generate_series(1, 2000) AS g(x)",
    )
    .await;
    ok(&mut s, "COMMIT").await;
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t").await,
        vec![vec![Datum::Int(2000)]]
    );
}

#[tokio::test]
async fn operators_over_the_memory_limit_fail_with_53200() {
    let (_, engine) = setup();
    let mut s = engine.session("root", "db");
    let series = "generate_series(1, 5000)";
    let cases = [
        (
            "Sort",
            format!("SELECT x FROM {series} AS g(x) ORDER BY x DESC"),
        ),
        (
            "Hash join",
            format!("SELECT count(*) FROM {series} AS a(x) JOIN {series} AS b(y) ON a.x = b.y"),
        ),
        (
            "Aggregate",
            format!("SELECT x, count(*) FROM {series} AS g(x) GROUP BY x"),
        ),
        (
            "Distinct",
            format!("SELECT DISTINCT x FROM {series} AS g(x)"),
        ),
        (
            "Window",
            format!("SELECT x, row_number() OVER (ORDER BY x) FROM {series} AS g(x)"),
        ),
        (
            "UNION",
            format!("SELECT x FROM {series} AS g(x) UNION SELECT y FROM {series} AS h(y)"),
        ),
    ];
    ok(&mut s, "SET meridian.query_memory_limit = '64kB'").await;
    for (operator, sql) in &cases {
        let e = fail(&mut s, sql).await;
        assert_eq!(e.code, "53200", "{sql}: {e}");
        assert!(
            e.message.contains(operator) && e.message.contains("64kB"),
            "{sql}: {e}"
        );
        // The session goes on serving.
        assert_eq!(rows(&mut s, "SELECT 1").await, vec![vec![Datum::Int(1)]]);
    }
    ok(&mut s, "SET meridian.query_memory_limit = '64MB'").await;
    for (_, sql) in &cases {
        ok(&mut s, sql).await;
    }
    // EXPLAIN ANALYZE shows what the statement held against its limit.
    let lines = plan_lines(&mut s, &format!("EXPLAIN ANALYZE {}", cases[0].1)).await;
    let peak = lines
        .iter()
        .find_map(|l| l.strip_prefix("Peak Memory: "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        peak.ends_with("kB (limit 64MB)") && !peak.starts_with("0kB"),
        "{peak}"
    );
    // The limit is per session.
    let mut other = engine.session("root", "db");
    ok(&mut other, &cases[0].1).await;
}
