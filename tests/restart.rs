//! The first thing a user tries: psql creates a table and rows, the node restarts gracefully on
//! the same data directory, and the rows are still there.

mod support;

use std::process::Command;

use support::{NodeProcess, free_addr};

fn psql(addr: std::net::SocketAddr, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-U",
            "root",
        ])
        .args(["-d", "defaultdb", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "psql failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_rows_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let node = NodeProcess::start(dir.path(), addr).await;
    let out = psql(
        addr,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1,'a'),(2,'b'); SELECT * FROM t ORDER BY id",
    );
    let expected = " id | v \n----+---\n  1 | a\n  2 | b\n(2 rows)\n\n";
    // psql 15 prints every statement's result of a multi-statement -c string.
    assert_eq!(out, format!("CREATE TABLE\nINSERT 0 2\n{expected}"));
    node.stop();

    let node = NodeProcess::start(dir.path(), addr).await;
    assert_eq!(psql(addr, "SELECT * FROM t ORDER BY id"), expected);
    node.stop();
}
