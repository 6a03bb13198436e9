//! COPY over the wire, as drivers and psql use it: tokio-postgres streams data in with
//! `COPY ... FROM STDIN` (extended protocol) and reads it back with `COPY ... TO STDOUT`;
//! psql's `\copy` uses the simple protocol. A bad row loads nothing.

use std::process::Command;

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use meridian_server::{Node, NodeConfig};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_with_tokio_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = support::connect(node.sql_addr()).await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, qty BIGINT)")
        .await
        .unwrap();

    let sink = client
        .copy_in("COPY t (id, name, qty) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    // Rows split across CopyData messages at arbitrary points.
    let mut data = String::new();
    for i in 0..1000 {
        data.push_str(&format!("{i}\tname {i}\t{}\n", i * 10));
    }
    for chunk in data.as_bytes().chunks(777) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 1000);
    let n = support::values(&client, "SELECT count(*), sum(qty) FROM t").await;
    assert_eq!(n, ["1000"]);

    // A bad row makes the whole COPY fail and load nothing.
    let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"5000\ta\t1\nnot-a-number\tb\t2\n"))
        .await
        .unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P02", "{err}");
    assert_eq!(
        support::values(&client, "SELECT count(*) FROM t WHERE id >= 5000").await,
        ["0"]
    );

    let stream = client
        .copy_out(
            "COPY (SELECT id, name FROM t WHERE id < 3 ORDER BY id) TO STDOUT WITH (FORMAT csv)",
        )
        .await
        .unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), b"0,name 0\n1,name 1\n2,name 2\n");
    // The connection is in a clean state afterwards.
    assert_eq!(support::values(&client, "SELECT 1").await, ["1"]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copy_from_a_file_and_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = support::connect(node.sql_addr()).await;
    client
        .batch_execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "k,v\n1,one\n2,\"two, too\"\n").unwrap();
    let addr = node.sql_addr();
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["-U", "root", "-d", "defaultdb", "-c"])
        .arg(format!(
            "\\copy kv FROM '{}' WITH (FORMAT csv, HEADER)",
            csv.display()
        ))
        .args(["-c", "\\copy (SELECT k, v FROM kv ORDER BY k) TO STDOUT"])
        .output()
        .expect("psql runs (ops/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\tone\n2\ttwo, too\n"
    );
    node.shutdown().await;
}
