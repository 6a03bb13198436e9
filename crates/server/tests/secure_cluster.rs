//! Secure mode between nodes: nodes started with a certificates directory and without
//! `--insecure` speak gRPC only over mutual TLS. A three-node cluster forms, replicates and
//! serves SQL over TLS; callers without a certificate, with one from another CA, with a SQL
//! user's certificate, or facing a node whose certificate does not name the address dialled,
//! are refused while the node keeps serving.

use meridian_security::{CertsDir, ClientIdentity, create_node};
use meridian_server::{LocalCluster, Node, NodeConfig, NodeDialer, node_status};
use support::{connect_tls, root_dialer, secure, values};

mod support;

/// A CA, a node certificate for `hosts`, and client certificates of `root` and `alice` in
/// `dir`.
fn make_certs(dir: &std::path::Path, hosts: &[&str]) -> CertsDir {
    support::make_certs(dir, hosts, &["root", "alice"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cluster_forms_and_replicates_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"]);
    // LocalCluster::start runs init through the nodes' own TLS identity; that alone fails
    // unless every node accepts the others' certificates.
    let cluster = LocalCluster::start(&dir.path().join("data"), 3, |_, c| secure(c, &certs))
        .await
        .unwrap();

    // The root tablet's three replicas are on the three nodes, so a commit needs a Raft quorum
    // across nodes; each step writes through one node and reads through another, forwarding
    // to whichever node leads.
    let steps = [
        (
            0,
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); \
             INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            2,
            ["a", "b", "c"],
        ),
        (2, "UPDATE t SET v = 'z' WHERE id = 2", 1, ["a", "z", "c"]),
    ];
    for (writer, sql, reader, expected) in steps {
        let writer = connect_tls(cluster.node(writer).sql_addr(), &certs).await;
        writer.batch_execute(sql).await.unwrap();
        let reader = connect_tls(cluster.node(reader).sql_addr(), &certs).await;
        assert_eq!(
            values(&reader, "SELECT v FROM t ORDER BY id").await,
            expected
        );
    }

    // The operator's commands reach every node with root's certificate.
    let dialer = root_dialer(&certs);
    for i in 0..cluster.len() {
        let addr = cluster.node(i).listen_addr().to_string();
        let status = node_status(&addr, &dialer).await.unwrap();
        assert_eq!(status.node_id, cluster.node_id(i));
        assert_eq!(status.members.len(), 3);
        assert!(
            status.tablets.iter().any(|t| t.tablet_id == 1),
            "node {} has no replica of the root tablet",
            status.node_id
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_node_refuses_callers_it_cannot_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"]);
    let mut config = NodeConfig::new(dir.path().join("data"));
    secure(&mut config, &certs);
    let node = Node::start(config).await.unwrap();
    let addr = node.listen_addr().to_string();

    // The calls below fail for their credentials, not because the node is unreachable.
    node_status(&addr, &root_dialer(&certs)).await.unwrap();
    let as_node = NodeDialer::tls(certs.path(), &ClientIdentity::Node).unwrap();
    node_status(&addr, &as_node).await.unwrap();

    let plaintext = node_status(&addr, &NodeDialer::plaintext()).await;
    assert!(plaintext.is_err(), "a plaintext caller got {plaintext:?}");

    // Trusting the right CA but presenting root's certificate from another CA.
    let other = make_certs(&dir.path().join("other"), &["127.0.0.1"]);
    std::fs::copy(certs.ca_cert(), other.ca_cert()).unwrap();
    // (The client may see the server's alert or only the closed connection: TLS 1.3 clients
    // finish their side of the handshake before the server checks their certificate.)
    let foreign = node_status(&addr, &root_dialer(&other)).await;
    assert!(foreign.is_err(), "a foreign certificate got {foreign:?}");

    // A SQL user's certificate is from the right CA, but the node API is not for users.
    let alice = NodeDialer::tls(certs.path(), &ClientIdentity::User("alice".into())).unwrap();
    let err = node_status(&addr, &alice).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("may not call the node API"),
        "{err:#}"
    );

    // The node keeps serving gRPC and SQL.
    node_status(&addr, &root_dialer(&certs)).await.unwrap();
    let sql = connect_tls(node.sql_addr(), &certs).await;
    assert_eq!(values(&sql, "SELECT 'ok'").await, ["ok"]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_refuse_a_node_whose_certificate_does_not_name_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"]);
    // A second node certificate from the same CA, naming only 127.0.0.2.
    let elsewhere = CertsDir::new(dir.path().join("elsewhere"));
    std::fs::create_dir_all(elsewhere.path()).unwrap();
    std::fs::copy(certs.ca_cert(), elsewhere.ca_cert()).unwrap();
    create_node(
        &elsewhere,
        &certs.default_ca_key(),
        &["127.0.0.2".to_owned()],
        false,
    )
    .unwrap();

    let mut config = NodeConfig::new(dir.path().join("data"));
    secure(&mut config, &elsewhere);
    let node = Node::start(config).await.unwrap();
    let at_wrong_name = node.listen_addr().to_string();
    let err = node_status(&at_wrong_name, &root_dialer(&certs))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("certificate not valid for name \"127.0.0.1\""),
        "{err:#}"
    );

    // The same certificate on a node dialled by the address it names is accepted.
    let mut other = NodeConfig::new(dir.path().join("data-2"));
    secure(&mut other, &elsewhere);
    other.listen_addr = "127.0.0.2:0".parse().unwrap();
    let reachable = Node::start(other).await.unwrap();
    node_status(&reachable.listen_addr().to_string(), &root_dialer(&certs))
        .await
        .unwrap();
    reachable.shutdown().await;
    node.shutdown().await;
}
