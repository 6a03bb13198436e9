//! Prepared statements through the public API: parameter type inference, result columns
//! without execution, execution with values, and plan caching across schema changes.

use std::sync::Arc;

use meridian_sql::testing::MemKv;
use meridian_sql::{ColumnInfo, Datum, Engine, Session, SqlType, StatementResult};

fn session() -> (Arc<MemKv>, Session) {
    let kv = Arc::new(MemKv::new());
    let s = Engine::new(kv.clone()).session("root", "db");
    (kv, s)
}

async fn run(s: &mut Session, sql: &str) {
    for r in s.execute(sql).await {
        r.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn rows(r: StatementResult) -> Vec<Vec<Datum>> {
    match r {
        StatementResult::Query { rows, .. } => rows,
        other => panic!("not a query: {other:?}"),
    }
}

#[tokio::test]
async fn parameter_types_are_inferred_from_their_use() {
    let (_, mut s) = session();
    run(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT, n INT8)",
    )
    .await;
    let p = s
        .prepare("SELECT v, n + $2 FROM t WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(p.param_types(), [SqlType::Int4, SqlType::Int8]);
    assert_eq!(
        p.columns(),
        [
            ColumnInfo {
                name: "v".into(),
                ty: SqlType::Text
            },
            ColumnInfo {
                name: "?column?".into(),
                ty: SqlType::Int8
            }
        ]
    );
    let p = s
        .prepare("INSERT INTO t VALUES ($1, $2, $3)")
        .await
        .unwrap();
    assert_eq!(
        p.param_types(),
        [SqlType::Int4, SqlType::Text, SqlType::Int8]
    );
    assert!(p.columns().is_empty());
    let p = s.prepare("SELECT $1").await.unwrap();
    assert_eq!(p.param_types(), [SqlType::Text]);
    let p = s
        .prepare_typed("SELECT $1 + 1", &[Some(SqlType::Int8)])
        .await
        .unwrap();
    assert_eq!(p.param_types(), [SqlType::Int8]);
    assert_eq!(p.columns()[0].ty, SqlType::Int8);
    let e = s
        .prepare("SELECT 1 FROM t WHERE id = $1 AND v = $1")
        .await
        .unwrap_err();
    assert_eq!(e.code, "42P08");
    let e = s.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(e.code, "42601");
}

#[tokio::test]
async fn prepared_statements_execute_with_values() {
    let (_, mut s) = session();
    run(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    let ins = s.prepare("INSERT INTO t VALUES ($1, $2)").await.unwrap();
    for (id, v) in [(1, "a"), (2, "b"), (3, "c")] {
        let r = s
            .execute_prepared(&ins, vec![Datum::Int(id), Datum::Text(v.into())])
            .await
            .unwrap();
        assert_eq!(
            r,
            StatementResult::Command {
                tag: "INSERT 0 1".into()
            }
        );
    }
    let sel = s.prepare("SELECT v FROM t WHERE id = $1").await.unwrap();
    let r = s.execute_prepared(&sel, vec![Datum::Int(2)]).await.unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Text("b".into())]]);
    // A text value converts to the parameter's type; NULL matches nothing.
    let r = s
        .execute_prepared(&sel, vec![Datum::Text("3".into())])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Text("c".into())]]);
    let r = s.execute_prepared(&sel, vec![Datum::Null]).await.unwrap();
    assert!(rows(r).is_empty());
    let e = s
        .execute_prepared(&sel, vec![Datum::Text("x".into())])
        .await
        .unwrap_err();
    assert_eq!(e.code, "22P02");
    let e = s.execute_prepared(&sel, vec![]).await.unwrap_err();
    assert_eq!(e.code, "08P01");
    // Parameters in ranges, IN lists and subqueries.
    let range = s
        .prepare("SELECT id FROM t WHERE id >= $1 AND id < $2 AND v IN ($3, 'c') ORDER BY id")
        .await
        .unwrap();
    let r = s
        .execute_prepared(
            &range,
            vec![Datum::Int(1), Datum::Int(9), Datum::Text("a".into())],
        )
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(1)], vec![Datum::Int(3)]]);
    let page = s
        .prepare("SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2")
        .await
        .unwrap();
    assert_eq!(page.param_types(), [SqlType::Int8, SqlType::Int8]);
    let r = s
        .execute_prepared(&page, vec![Datum::Int(1), Datum::Int(1)])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(2)]]);
    let e = s
        .execute_prepared(&page, vec![Datum::Int(-1), Datum::Int(0)])
        .await
        .unwrap_err();
    assert_eq!(e.code, "2201W");
    let upd = s
        .prepare("UPDATE t SET v = $2 WHERE id = $1 RETURNING id, v")
        .await
        .unwrap();
    let r = s
        .execute_prepared(&upd, vec![Datum::Int(1), Datum::Text("z".into())])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(1), Datum::Text("z".into())]]);
}

#[tokio::test]
async fn cached_plans_follow_schema_changes() {
    let (kv, mut s) = session();
    run(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    run(&mut s, "INSERT INTO t VALUES (1, 'a'), (2, 'b')").await;
    let by_v = s.prepare("SELECT id FROM t WHERE v = $1").await.unwrap();
    let r = s
        .execute_prepared(&by_v, vec![Datum::Text("b".into())])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(2)]]);
    // After an index is created the statement is planned again and reads through it: one
    // range scan of the index and one point read of the row, instead of a table scan.
    run(&mut s, "CREATE INDEX t_v ON t (v)").await;
    let (gets_before, scans_before) = kv.reads();
    let r = s
        .execute_prepared(&by_v, vec![Datum::Text("b".into())])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(2)]]);
    let (gets, scans) = kv.reads();
    assert_eq!(scans - scans_before, 1);
    assert!(
        gets - gets_before >= 2,
        "descriptor check and the row lookup"
    );
    // The table dropped and created again with other columns: the statement's result type
    // would change, which is an error.
    let star = s.prepare("SELECT * FROM t").await.unwrap();
    run(&mut s, "DROP TABLE t").await;
    run(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT, w INT)").await;
    let e = s.execute_prepared(&star, vec![]).await.unwrap_err();
    assert_eq!(e.code, "0A000");
    // Same columns: fine, and it reads the new table.
    run(&mut s, "INSERT INTO t VALUES (7, 'b', 0)").await;
    let r = s
        .execute_prepared(&by_v, vec![Datum::Text("b".into())])
        .await
        .unwrap();
    assert_eq!(rows(r), vec![vec![Datum::Int(7)]]);
}

#[tokio::test]
async fn session_commands_can_be_prepared() {
    let (_, mut s) = session();
    let show = s.prepare("SHOW TimeZone").await.unwrap();
    assert_eq!(show.columns().len(), 1);
    assert_eq!(show.columns()[0].name, "TimeZone");
    let r = s.execute_prepared(&show, vec![]).await.unwrap();
    assert_eq!(rows(r).len(), 1);
    let set = s.prepare("SET application_name = 'x'").await.unwrap();
    assert!(set.param_types().is_empty());
    s.execute_prepared(&set, vec![]).await.unwrap();
}

#[test]
fn prepared_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_, mut s) = session();
    let fut = s.prepare("SELECT 1");
    assert_send(&fut);
}

#[tokio::test]
async fn a_replaced_view_is_planned_again() {
    let (_, mut s) = session();
    run(
        &mut s,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);
         CREATE VIEW v AS SELECT id FROM t WHERE id = 1",
    )
    .await;
    let p = s.prepare("SELECT id FROM v").await.unwrap();
    let before = rows(s.execute_prepared(&p, vec![]).await.unwrap());
    assert_eq!(before, [[Datum::Int(1)]]);
    run(
        &mut s,
        "CREATE OR REPLACE VIEW v AS SELECT id FROM t WHERE id = 2",
    )
    .await;
    let after = rows(s.execute_prepared(&p, vec![]).await.unwrap());
    assert_eq!(after, [[Datum::Int(2)]]);
}

/// A range set by parameters is computed at each execution, vectorized or row by row, with
/// the same rows either way: ranges, empty ranges, NULL bounds, and a condition off the key.
#[tokio::test]
async fn ranges_set_by_parameters_read_the_same_rows_vectorized_or_not() {
    let (_, mut s) = session();
    run(
        &mut s,
        "CREATE TABLE r (id INT PRIMARY KEY, x INT, y DOUBLE PRECISION); \
         INSERT INTO r SELECT g, g % 7, g / 10.0 FROM generate_series(1, 3000) AS s(g)",
    )
    .await;
    let stmt = s
        .prepare("SELECT id, x FROM r WHERE id >= $1 AND id < $2 AND y > $3 ORDER BY id")
        .await
        .unwrap();
    let off_key = s
        .prepare("SELECT count(*), sum(id) FROM r WHERE x = $1 AND y < $2")
        .await
        .unwrap();
    let cases = [
        vec![Datum::Int(10), Datum::Int(2500), Datum::Float(5.0)],
        vec![Datum::Int(2500), Datum::Int(10), Datum::Float(0.0)],
        vec![Datum::Null, Datum::Int(100), Datum::Float(0.0)],
        vec![Datum::Int(-5), Datum::Int(40), Datum::Null],
        vec![Datum::Int(1), Datum::Int(4000), Datum::Float(-1.0)],
    ];
    let mut seen = Vec::new();
    for vectorize in ["on", "off"] {
        run(&mut s, &format!("SET meridian.vectorize = {vectorize}")).await;
        let mut out = Vec::new();
        for params in &cases {
            let r = s.execute_prepared(&stmt, params.clone()).await.unwrap();
            out.push(rows(r));
        }
        let r = s
            .execute_prepared(&off_key, vec![Datum::Int(3), Datum::Float(150.0)])
            .await
            .unwrap();
        out.push(rows(r));
        seen.push(out);
    }
    assert_eq!(seen[0], seen[1]);
    let counts: Vec<usize> = seen[0].iter().map(Vec::len).collect();
    assert_eq!(counts, [2449, 0, 0, 0, 3000, 1]);
    assert_eq!(seen[0][5], [[Datum::Int(214), Datum::Int(160_179)]]);
}
