//! A whole node in-process: SQL over the wire, the gRPC and HTTP endpoints, restart on the same
//! data directory, and a three-replica node.

use meridian_proto::v1::NodeStatusRequest;
use meridian_proto::v1::node_client::NodeClient;
use meridian_server::{Node, NodeConfig};
use support::{http_get, values};

mod support;

async fn connect(node: &Node) -> tokio_postgres::Client {
    support::connect(node.sql_addr()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_sql_grpc_and_http_and_restarts_from_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = connect(&node).await;
    client
        .batch_execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3)")
        .await
        .unwrap();
    client
        .batch_execute("UPDATE kv SET v = v * 10 WHERE k = 'b'")
        .await
        .unwrap();
    client
        .batch_execute("DELETE FROM kv WHERE k = 'c'")
        .await
        .unwrap();
    assert_eq!(
        values(&client, "SELECT v FROM kv ORDER BY k").await,
        ["1", "20"]
    );

    let health = http_get(node.http_addr(), "/health").await;
    assert!(
        health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"),
        "{health}"
    );
    let ready = http_get(node.http_addr(), "/ready").await;
    assert!(
        ready.contains(" 200 ") && ready.ends_with("ready\n"),
        "{ready}"
    );

    let mut grpc = NodeClient::connect(format!("http://{}", node.listen_addr()))
        .await
        .unwrap();
    let status = grpc
        .status(NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.sql_addr, node.sql_addr().to_string());
    assert!(status.tt_earliest <= status.tt_latest && status.tt_earliest > 0);
    // A small database is the root tablet alone: the whole keyspace.
    assert_eq!(status.tablets.len(), 1);
    assert_eq!(status.tablets[0].leader_id, status.tablets[0].replica_id);
    assert!(status.tablets[0].start_key.is_empty() && status.tablets[0].end_key.is_empty());
    assert!(status.tablets[0].applied_index >= 5);

    drop(client);
    node.shutdown().await;
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = connect(&node).await;
    assert_eq!(
        values(&client, "SELECT k FROM kv ORDER BY k").await,
        ["a", "b"]
    );
    // The catalog's id counter survived too: a new table does not collide with the old one.
    client
        .batch_execute("CREATE TABLE other (id INT PRIMARY KEY)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO other VALUES (1)")
        .await
        .unwrap();
    assert_eq!(values(&client, "SELECT count(*) FROM kv").await, ["2"]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replica_node_replicates_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.replicas = 3;
    let node = Node::start(config).await.unwrap();
    let client = connect(&node).await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    assert_eq!(
        values(&client, "SELECT v FROM t ORDER BY id").await,
        ["a", "b"]
    );
    let local = node.local_stores().unwrap().clone();
    // Every tablet has a replica in each of the three stores; each catches up with its leader.
    let caught_up = async {
        loop {
            let replicas = local.replicas();
            let lagging = replicas.iter().any(|r| {
                let best = replicas
                    .iter()
                    .filter(|o| o.tablet_id() == r.tablet_id())
                    .map(|o| o.status().applied_index)
                    .max()
                    .unwrap_or(0);
                r.status().applied_index < best
            });
            let tablets: std::collections::BTreeSet<u64> =
                replicas.iter().map(|r| r.tablet_id()).collect();
            if !lagging && replicas.len() == 3 * tablets.len() && !tablets.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), caught_up)
        .await
        .expect("followers apply");
    drop(client);
    node.shutdown().await;

    // The data directory remembers its replica count.
    let mut wrong = NodeConfig::new(dir.path());
    wrong.replicas = 1;
    let err = Node::start(wrong)
        .await
        .err()
        .expect("replica count mismatch is refused");
    assert!(err.to_string().contains("3 replica"), "{err:#}");
}

/// The value of the first sample of `name` (with exactly these labels, if given) in a
/// Prometheus text exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name_and_labels).then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_statements_raft_work_and_report_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let client = connect(&node).await;
    let before = http_get(node.http_addr(), "/metrics").await;
    let inserts_before =
        sample(&before, "meridian_sql_statements_total{kind=\"insert\"}").unwrap_or(0.0);
    client
        .batch_execute("CREATE TABLE m (k INT PRIMARY KEY); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2)")
        .await
        .unwrap();
    assert!(client.batch_execute("SELECT * FROM nosuch").await.is_err());
    let text = http_get(node.http_addr(), "/metrics").await;
    assert!(text.contains(" 200 "), "{text}");
    // Other tests in this process may add to the counters, never subtract.
    let inserts = sample(&text, "meridian_sql_statements_total{kind=\"insert\"}").unwrap();
    assert!(
        inserts >= inserts_before + 2.0,
        "{inserts} after {inserts_before}"
    );
    assert!(sample(&text, "meridian_sql_errors_total{class=\"42\"}").unwrap() >= 1.0);
    assert!(sample(&text, "meridian_raft_proposals_total").unwrap() >= 3.0);
    assert!(sample(&text, "meridian_raft_applied_entries_total").unwrap() >= 3.0);
    assert!(sample(&text, "meridian_commit_wait_seconds_count").unwrap() >= 3.0);
    assert_eq!(sample(&text, "meridian_clock_usable"), Some(1.0));
    assert!(sample(&text, "meridian_clock_epsilon_seconds").unwrap() > 0.0);
    // Registered from the start, though nothing split by load.
    assert!(sample(&text, "meridian_load_splits_total").is_some());
    assert_eq!(sample(&text, "meridian_replicas"), Some(1.0));
    assert_eq!(sample(&text, "meridian_leaders"), Some(1.0));
    assert!(sample(&text, "meridian_raft_applied_index{tablet=\"1\"}").unwrap() >= 3.0);

    // Every metric the Grafana dashboard under ops/ plots is one the node serves.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(&manifest_dir()).join("../../ops/grafana-dashboard.json"),
    )
    .unwrap();
    let mut plotted = 0;
    for (at, _) in dashboard.match_indices("meridian_") {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            text.contains(&format!("# TYPE {base} ")),
            "the dashboard plots {name}, which /metrics does not serve"
        );
        plotted += 1;
    }
    assert!(plotted >= 10, "only {plotted} metrics in the dashboard");
    node.shutdown().await;
}

/// This package's directory, read when the test runs (cargo sets it): a test binary compiled in
/// another checkout sharing the target directory must not read that checkout's files.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests")
}
