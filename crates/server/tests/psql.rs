//! The real `psql` (PostgreSQL 15's client, installed by ops/install-deps.sh) against a node:
//! its describe commands (`\d`, `\dt`, `\di`, `\dv`, `\dn`, `\l`) send their pg_catalog
//! queries and print what Meridian answers, and a multi-statement script runs to the end.

use std::process::Command;

use meridian_server::{Node, NodeConfig};

/// Runs psql with `args` against `node`; returns stdout, failing the test on a non-zero exit.
fn psql(node: &Node, args: &[&str]) -> String {
    let addr = node.sql_addr();
    let out = Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["-U", "root", "-d", "defaultdb"])
        .args(args)
        .output()
        .expect("psql runs (ops/install-deps.sh installs it)");
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
