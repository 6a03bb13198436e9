//! A Python application's view: `tests/psycopg_client.py` drives a node with psycopg 3
//! (server-side prepared statements, binary results, transactions, COPY). `ops/install-deps.sh`
//! installs psycopg.

use std::process::Command;

use meridian_server::{Node, NodeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_drives_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let script = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
    )
    .join("../../tests/psycopg_client.py");
    let url = node.postgres_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&script)
            .arg(&url)
            .output()
            .expect("python3 runs (ops/install-deps.sh installs it and psycopg)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "psycopg client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    node.shutdown().await;
}
