//! The real `psql` (PostgreSQL 15's client, installed by ops/install-deps.sh) against a node:
//! its describe commands (`\d`, `\dt`, `\di`, `\dv`, `\dn`, `\l`, and `\d NAME` for a
//! table, an index and a view) send their pg_catalog queries and print what Meridian answers,
//! and a multi-statement script runs to the end.

use std::process::Command;

use meridian_server::{Node, NodeConfig};

/// Runs psql with `args` against `node`.
fn run_psql(node: &Node, args: &[&str]) -> std::process::Output {
    let addr = node.sql_addr();
    Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["-U", "root", "-d", "defaultdb"])
        .args(args)
        .output()
        .expect("psql runs (ops/install-deps.sh installs it)")
}

/// Runs psql with `args` against `node`; returns stdout, failing the test on a non-zero exit.
fn psql(node: &Node, args: &[&str]) -> String {
    let out = run_psql(node, args);
    assert!(
        out.status.success(),
        "psql {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describe_commands_and_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let script = dir.path().join("setup.sql");
    std::fs::write(
        &script,
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(10,2));\n\
         CREATE INDEX accounts_owner ON accounts (owner);\n\
         CREATE VIEW rich AS SELECT id FROM accounts WHERE balance > 1000;\n\
         BEGIN;\n\
         INSERT INTO accounts VALUES (1, 'ada', 1500.00), (2, 'bob', 20.50);\n\
         UPDATE accounts SET balance = balance + 1 WHERE id = 2;\n\
         COMMIT;\n\
         SELECT owner, balance FROM accounts ORDER BY id;\n",
    )
    .unwrap();
    let out = psql(&node, &["-f", script.to_str().unwrap()]);
    assert!(out.contains(" ada   | 1500.00"), "{out}");
    assert!(out.contains(" bob   |   21.50"), "{out}");

    let dt = psql(&node, &["-c", "\\dt"]);
    assert!(dt.contains("List of relations"), "{dt}");
    assert!(dt.contains(" public | accounts | table | root"), "{dt}");
    assert!(!dt.contains("rich"), "{dt}");

    let d = psql(&node, &["-c", "\\d"]);
    assert!(d.contains(" public | accounts | table | root"), "{d}");
    assert!(d.contains(" public | rich     | view  | root"), "{d}");

    let di = psql(&node, &["-c", "\\di"]);
    assert!(
        di.contains(" public | accounts_owner | index | root  | accounts"),
        "{di}"
    );
    assert!(
        di.contains(" public | accounts_pkey  | index | root  | accounts"),
        "{di}"
    );

    let dn = psql(&node, &["-c", "\\dn"]);
    assert!(dn.contains(" public | root"), "{dn}");

    let l = psql(&node, &["-c", "\\l"]);
    assert!(l.contains("List of databases"), "{l}");
    assert!(l.contains(" defaultdb | root  | UTF8"), "{l}");
    node.shutdown().await;
}

/// What PostgreSQL 15's psql prints for `\d order_lines`, `\d order_lines_pkey` and
/// `\d big_lines` over the schema of `psql_describes_a_table_an_index_and_a_view`, taken from
/// a PostgreSQL 15 server.
const DESCRIBED: &str = r#"                       Table "public.order_lines"
  Column  |         Type          | Collation | Nullable |   Default    
----------+-----------------------+-----------+----------+--------------
 order_id | integer               |           | not null | 
 line     | integer               |           | not null | 
 sku      | character varying(20) |           | not null | 
 qty      | integer               |           | not null | 1
 price    | numeric(10,2)         |           |          | 
 note     | text                  |           |          | 'none'::text
Indexes:
    "order_lines_pkey" PRIMARY KEY, btree (order_id, line)
    "order_lines_price" btree (price DESC)
    "order_lines_sku" UNIQUE, btree (order_id, sku)
Check constraints:
    "order_lines_qty_check" CHECK (qty > 0)

    Index "public.order_lines_pkey"
  Column  |  Type   | Key? | Definition 
----------+---------+------+------------
 order_id | integer | yes  | order_id
 line     | integer | yes  | line
primary key, btree, for table "public.order_lines"

               View "public.big_lines"
  Column  |  Type   | Collation | Nullable | Default 
----------+---------+-----------+----------+---------
 order_id | integer |           |          | 
 qty      | integer |           |          | 

"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describes_a_table_an_index_and_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    psql(
        &node,
        &[
            "-c",
            "CREATE TABLE order_lines (order_id INT NOT NULL, line INT NOT NULL, \
             sku VARCHAR(20) NOT NULL, qty INT NOT NULL DEFAULT 1 CHECK (qty > 0), \
             price NUMERIC(10,2), note TEXT DEFAULT 'none', PRIMARY KEY (order_id, line))",
            "-c",
            "CREATE UNIQUE INDEX order_lines_sku ON order_lines (order_id, sku)",
            "-c",
            "CREATE INDEX order_lines_price ON order_lines (price DESC)",
            "-c",
            "CREATE VIEW big_lines AS SELECT order_id, qty FROM order_lines WHERE qty > 10",
        ],
    );
    let described = psql(
        &node,
        &[
            "-c",
            "\\d order_lines",
            "-c",
            "\\d order_lines_pkey",
            "-c",
            "\\d big_lines",
        ],
    );
    assert_eq!(described, DESCRIBED);

    let verbose = psql(&node, &["-c", "\\d+ order_lines"]);
    for line in [
        " order_id | integer               |           | not null |              | plain    |",
        " sku      | character varying(20) |           | not null |              | extended |",
        " price    | numeric(10,2)         |           |          |              | main     |",
        "    \"order_lines_sku\" UNIQUE, btree (order_id, sku)",
        "Access method: heap",
    ] {
        assert!(verbose.contains(line), "{line:?} missing from:\n{verbose}");
    }

    let missing = run_psql(&node, &["-c", "\\d nosuch"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Did not find any relation named \"nosuch\""),
        "{stderr}"
    );
    node.shutdown().await;
}
