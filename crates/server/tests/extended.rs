//! The extended query protocol against a real node, as drivers use it: tokio-postgres prepares
//! statements with parameters (types inferred by the server), binds values in binary, reads
//! binary results, and runs prepared statements inside transaction blocks.

use meridian_server::{Node, NodeConfig};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters_in_binary() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = support::connect(node.sql_addr()).await;
    client
        .batch_execute(
            "CREATE TABLE item (id INT PRIMARY KEY, name TEXT, price FLOAT, qty BIGINT, \
             small SMALLINT, ok BOOL, cost NUMERIC(10, 2), day DATE)",
        )
        .await
        .unwrap();

    let insert = client
        .prepare(
            "INSERT INTO item (id, name, price, qty, small, ok) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        [
            Type::INT4,
            Type::TEXT,
            Type::FLOAT8,
            Type::INT8,
            Type::INT2,
            Type::BOOL
        ]
    );
    assert!(insert.columns().is_empty());
    for i in 0..5i32 {
        let name = format!("item-{i}");
        let n = client
            .execute(
                &insert,
                &[
                    &i,
                    &name,
                    &(f64::from(i) * 1.5),
                    &(i64::from(i) << 33),
                    &(i as i16),
                    &(i % 2 == 0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    // NULL parameters.
    client
        .execute(
            &insert,
            &[
                &9i32,
                &None::<String>,
                &None::<f64>,
                &None::<i64>,
                &None::<i16>,
                &None::<bool>,
            ],
        )
        .await
        .unwrap();

    let select = client
        .prepare("SELECT id, name, price, qty, small, ok FROM item WHERE id >= $1 AND id < $2 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(select.params(), [Type::INT4, Type::INT4]);
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT4,
            Type::TEXT,
            Type::FLOAT8,
            Type::INT8,
            Type::INT2,
            Type::BOOL
        ]
    );
    let rows = client.query(&select, &[&1i32, &3i32]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(rows[0].get::<_, String>(1), "item-1");
    assert_eq!(rows[0].get::<_, f64>(2), 1.5);
    assert_eq!(rows[0].get::<_, i64>(3), 1 << 33);
    assert_eq!(rows[0].get::<_, i16>(4), 1);
    assert!(!rows[0].get::<_, bool>(5));
    assert_eq!(rows[1].get::<_, i32>(0), 2);
    let nulls = client.query(&select, &[&9i32, &10i32]).await.unwrap();
    assert_eq!(nulls[0].get::<_, Option<String>>(1), None);
    assert_eq!(nulls[0].get::<_, Option<f64>>(2), None);

    // A parameter in an expression, in LIMIT, and an aggregate.
    let row = client
        .query_one(
            "SELECT count(*), sum(qty) FROM item WHERE name LIKE $1",
            &[&"item-%"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    let limited = client
        .query("SELECT id FROM item ORDER BY id LIMIT $1", &[&2i64])
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);

    // A type the client declares is taken as given: an int8 parameter compared with an int4
    // column.
    let typed = client
        .prepare_typed("SELECT name FROM item WHERE id = $1", &[Type::INT8])
        .await
        .unwrap();
    assert_eq!(typed.params(), [Type::INT8]);
    let row = client.query_one(&typed, &[&3i64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "item-3");

    // Errors from execution carry their SQLSTATE and leave the connection usable.
    let err = client
        .execute(&insert, &[&1i32, &"dup", &0.0f64, &0i64, &0i16, &true])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let err = client
        .prepare("SELECT * FROM nosuch WHERE id = $1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(
        client.query(&select, &[&0i32, &1i32]).await.unwrap().len(),
        1
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_inside_transaction_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let mut client = support::connect(node.sql_addr()).await;
    client
        .batch_execute("CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL)")
        .await
        .unwrap();
    let txn = client.transaction().await.unwrap();
    let ins = txn
        .prepare("INSERT INTO acct VALUES ($1, $2)")
        .await
        .unwrap();
    for i in 0..3i32 {
        txn.execute(&ins, &[&i, &100i64]).await.unwrap();
    }
    // The block reads its own writes through a prepared statement.
    let sum = txn
        .query_one("SELECT sum(bal) FROM acct WHERE id < $1", &[&10i32])
        .await
        .unwrap();
    assert_eq!(sum.get::<_, rust_decimal_free::Sum>(0).0, 300);
    txn.rollback().await.unwrap();
    let count = client
        .query_one("SELECT count(*) FROM acct", &[])
        .await
        .unwrap();
    assert_eq!(count.get::<_, i64>(0), 0);
    node.shutdown().await;
}

/// `sum(bigint)` is NUMERIC, which tokio-postgres has no Rust type for without extra crates:
/// read it through its text form.
mod rust_decimal_free {
    use tokio_postgres::types::{FromSql, Type};

    pub struct Sum(pub i64);

    impl<'a> FromSql<'a> for Sum {
        fn from_sql(
            _: &Type,
            raw: &'a [u8],
        ) -> Result<Sum, Box<dyn std::error::Error + Sync + Send>> {
            // Binary NUMERIC: ndigits, weight, sign, dscale, then base-10000 digits.
            let word = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
            let (ndigits, weight) = (word(0) as usize, i64::from(word(2)));
            let mut v: i64 = 0;
            for i in 0..ndigits {
                v += i64::from(word(8 + 2 * i)) * 10_000i64.pow((weight - i as i64) as u32);
            }
            Ok(Sum(if word(4) == 0x4000 { -v } else { v }))
        }

        fn accepts(ty: &Type) -> bool {
            *ty == Type::NUMERIC
        }
    }
}

/// EXPLAIN ANALYZE and the query memory limit through the wire protocol: the plan comes back as
/// rows of one `QUERY PLAN` column, in the simple and the extended protocol; a statement over
/// the limit fails with 53200 and the same statement under a larger limit succeeds, while the
/// connection and the node go on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_and_memory_limit_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = support::connect(node.sql_addr()).await;
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); \
             INSERT INTO t SELECT x, repeat('v', 50) || x FROM generate_series(1, 3000) AS g(x)",
        )
        .await
        .unwrap();

    let plan = support::values(&client, "EXPLAIN ANALYZE SELECT v FROM t ORDER BY v DESC").await;
    assert!(plan[0].starts_with("Sort: v DESC"), "{plan:#?}");
    assert!(plan[0].contains("rows=3000 loops=1"), "{plan:#?}");
    assert!(
        plan.iter()
            .any(|l| l.contains("Scan: t, full scan") && l.contains("keys=3000")),
        "{plan:#?}"
    );
    assert!(
        plan.last().unwrap().starts_with("Execution Time: "),
        "{plan:#?}"
    );

    let explain = client
        .prepare("EXPLAIN ANALYZE SELECT v FROM t WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(explain.params(), [Type::INT4]);
    assert_eq!(explain.columns()[0].name(), "QUERY PLAN");
    let lines: Vec<String> = client
        .query(&explain, &[&7i32])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Scan: t,") && l.contains("rows=1 loops=1; read: tablets=1")),
        "{lines:#?}"
    );

    // The write under EXPLAIN ANALYZE happens.
    support::values(&client, "EXPLAIN ANALYZE DELETE FROM t WHERE id > 2000").await;
    assert_eq!(
        support::values(&client, "SELECT count(*) FROM t").await,
        ["2000"]
    );

    let sort = "SELECT v FROM t ORDER BY v DESC";
    client
        .batch_execute("SET meridian.query_memory_limit = '64kB'")
        .await
        .unwrap();
    let err = client.query(sort, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::OUT_OF_MEMORY), "{err:?}");
    let message = err.as_db_error().unwrap().message();
    assert!(
        message.contains("Sort") && message.contains("64kB"),
        "{message}"
    );
    assert_eq!(support::values(&client, "SELECT 1").await, ["1"]);
    client
        .batch_execute("SET meridian.query_memory_limit = '64MB'")
        .await
        .unwrap();
    assert_eq!(client.query(sort, &[]).await.unwrap().len(), 2000);
    // Another connection is served as well, under the default limit.
    let other = support::connect(node.sql_addr()).await;
    assert_eq!(other.query(sort, &[]).await.unwrap().len(), 2000);
}
