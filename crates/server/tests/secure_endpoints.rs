//! Secure mode's HTTP endpoint and certificate reloads. A secure node serves `/health`,
//! `/ready` and `/metrics` over TLS with its `node.crt` and nothing over plain HTTP. Reloading
//! its certificates makes every listener present the new `node.crt` to new connections; a
//! reload that finds a broken file changes nothing. A cluster moves to a new CA by reloads
//! alone, and its nodes reconnect to each other with the new certificates.

#![allow(clippy::disallowed_methods)] // Tests measure real time for their deadlines.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_security::rustls::pki_types::CertificateDer;
use meridian_security::{
    CertsDir, ClientIdentity, certificate_fingerprint, create_ca, create_client, create_node,
    load_certs,
};
use meridian_server::{LocalCluster, Node, NodeConfig, node_status};
use support::{
    connect_tls, http_get, http_status, https_get, make_certs, root_dialer, secure, tls_handshake,
    values,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

/// A PostgreSQL SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A node's TLS listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Sql,
    Grpc,
    Http,
}

const LISTENERS: [Listener; 3] = [Listener::Sql, Listener::Grpc, Listener::Http];

/// The fingerprint of the certificate `node` presents to a new TLS connection on `listener`
/// (a client trusting the `ca.crt` of `certs`, as root on the gRPC port, which requires a
/// client certificate).
async fn presented(node: &Node, listener: Listener, certs: &CertsDir) -> String {
    let (addr, identity, alpn): (_, _, &[u8]) = match listener {
        Listener::Sql => (node.sql_addr(), ClientIdentity::Anonymous, b"postgresql"),
        Listener::Grpc => (
            node.listen_addr(),
            ClientIdentity::User("root".into()),
            b"h2",
        ),
        Listener::Http => (node.http_addr(), ClientIdentity::Anonymous, b"http/1.1"),
    };
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    if listener == Listener::Sql {
        tcp.write_all(&SSL_REQUEST).await.unwrap();
        let mut answer = [0u8];
        tcp.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"S", "the SQL port offers no TLS");
    }
    let tls = tls_handshake(tcp, certs, &identity, alpn)
        .await
        .unwrap_or_else(|e| panic!("{listener:?}: {e}"));
    let shown = &tls.get_ref().1.peer_certificates().unwrap()[0];
    certificate_fingerprint(shown)
}

/// The fingerprint of the certificate in `path`.
fn fingerprint_of(path: &std::path::Path) -> String {
    let cert: CertificateDer<'_> = load_certs(path).unwrap().remove(0);
    certificate_fingerprint(&cert)
}

/// Issues `node.crt` again (a new key and serial, the same CA and host); its fingerprint.
fn reissue(certs: &CertsDir) -> String {
    create_node(certs, &certs.default_ca_key(), &["127.0.0.1".into()], true).unwrap();
    fingerprint_of(&certs.node_cert())
}

/// Every listener of `node` presents the certificate with `fingerprint`, and serves: a query
/// over TLS as root, the node status over gRPC, `/health` over HTTPS.
async fn serves_with(node: &Node, certs: &CertsDir, fingerprint: &str) {
    for listener in LISTENERS {
        assert_eq!(
            presented(node, listener, certs).await,
            fingerprint,
            "{listener:?}"
        );
    }
    let sql = connect_tls(node.sql_addr(), certs).await;
    assert_eq!(values(&sql, "SELECT 'ok'").await, ["ok"]);
    node_status(&node.listen_addr().to_string(), &root_dialer(certs))
        .await
        .unwrap();
    let health = https_get(node.http_addr(), "/health", certs).await;
    assert_eq!(http_status(&health), 200, "{health}");
}

async fn start_secure(dir: &std::path::Path, certs: &CertsDir) -> Node {
    let mut config = NodeConfig::new(dir);
    secure(&mut config, certs);
    Node::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_node_serves_its_http_endpoint_only_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"], &["root"]);
    let node = start_secure(&dir.path().join("data"), &certs).await;
    let addr = node.http_addr();

    let health = https_get(addr, "/health", &certs).await;
    assert_eq!(http_status(&health), 200, "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    let ready = https_get(addr, "/ready", &certs).await;
    assert_eq!(http_status(&ready), 200, "{ready}");
    let metrics = https_get(addr, "/metrics", &certs).await;
    assert_eq!(http_status(&metrics), 200, "{metrics}");
    assert!(metrics.contains("\nmeridian_replicas "), "{metrics}");
    assert_eq!(
        presented(&node, Listener::Http, &certs).await,
        fingerprint_of(&certs.node_cert())
    );

    // Plain HTTP gets no HTTP answer (the TLS listener drops what is not a handshake).
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Nor does a client that trusts another CA.
    let other = make_certs(&dir.path().join("other"), &["127.0.0.1"], &[]);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = tls_handshake(tcp, &other, &ClientIdentity::Anonymous, b"http/1.1")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );

    // The node goes on serving HTTPS after those.
    let health = https_get(addr, "/health", &certs).await;
    assert_eq!(http_status(&health), 200, "{health}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_node_keeps_plain_http_even_with_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"], &["root"]);
    let mut config = NodeConfig::new(dir.path().join("data"));
    config.certs_dir = Some(certs.path().to_owned());
    let node = Node::start(config).await.unwrap();
    let health = http_get(node.http_addr(), "/health").await;
    assert_eq!(http_status(&health), 200, "{health}");
    // Its SQL port still offers TLS with the node's certificate, and reloads it.
    let first = fingerprint_of(&certs.node_cert());
    assert_eq!(presented(&node, Listener::Sql, &certs).await, first);
    let second = reissue(&certs);
    node.reload_certificates().unwrap();
    assert_eq!(presented(&node, Listener::Sql, &certs).await, second);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_makes_every_listener_present_the_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"], &["root"]);
    let node = start_secure(&dir.path().join("data"), &certs).await;
    let first = fingerprint_of(&certs.node_cert());
    serves_with(&node, &certs, &first).await;

    // A newly issued certificate (new key, new serial) is not used before the reload...
    let second = reissue(&certs);
    assert_ne!(first, second);
    assert_eq!(presented(&node, Listener::Http, &certs).await, first);

    // ...and by every new connection after it.
    node.reload_certificates().unwrap();
    serves_with(&node, &certs, &second).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_finds_a_broken_certificate_leaves_the_node_serving_with_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"], &["root"]);
    let node = start_secure(&dir.path().join("data"), &certs).await;
    let in_use = fingerprint_of(&certs.node_cert());
    let cert = std::fs::read(certs.node_cert()).unwrap();

    std::fs::write(
        certs.node_cert(),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    let err = node.reload_certificates().unwrap_err();
    assert!(format!("{err:#}").contains("node.crt"), "{err:#}");
    serves_with(&node, &certs, &in_use).await;
    std::fs::write(certs.node_cert(), cert).unwrap();

    // A half-finished replacement: a new key next to the old certificate.
    let spare = make_certs(&dir.path().join("spare"), &["127.0.0.1"], &[]);
    std::fs::copy(spare.node_key(), certs.node_key()).unwrap();
    let err = node.reload_certificates().unwrap_err();
    assert!(format!("{err:#}").contains("not the key of"), "{err:#}");
    std::fs::remove_file(certs.node_key()).unwrap();
    let err = node.reload_certificates().unwrap_err();
    assert!(format!("{err:#}").contains("node.key"), "{err:#}");
    serves_with(&node, &certs, &in_use).await;
    node.shutdown().await;
}

/// Runs `sql` through `addr` until it succeeds (leaderships may be moving), for 20 seconds at
/// most.
async fn execute_eventually(addr: SocketAddr, certs: &CertsDir, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let client = connect_tls(addr, certs).await;
        match client.batch_execute(sql).await {
            Ok(()) => return,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_moves_to_a_new_ca_by_reloads_and_its_nodes_reconnect_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"), &["127.0.0.1"], &["root"]);
    let mut cluster = LocalCluster::start(&dir.path().join("data"), 3, |_, c| secure(c, &certs))
        .await
        .unwrap();
    let reload_all = |cluster: &LocalCluster| {
        for i in 0..cluster.len() {
            cluster.node(i).reload_certificates().unwrap();
        }
    };
    execute_eventually(
        cluster.node(0).sql_addr(),
        &certs,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'old ca')",
    )
    .await;

    // The new CA and the certificates it signs are made elsewhere (as an operator would).
    let next = CertsDir::new(dir.path().join("next"));
    create_ca(&next, &next.default_ca_key(), false).unwrap();
    create_node(&next, &next.default_ca_key(), &["127.0.0.1".into()], false).unwrap();
    create_client(&next, &next.default_ca_key(), "root", false).unwrap();
    // 1. Every node trusts both CAs. 2. Every node presents the new CA's certificate.
    // 3. Every node trusts only the new CA.
    let mut both = std::fs::read(certs.ca_cert()).unwrap();
    both.extend(std::fs::read(next.ca_cert()).unwrap());
    std::fs::write(certs.ca_cert(), both).unwrap();
    reload_all(&cluster);
    for (from, to) in [
        (next.node_cert(), certs.node_cert()),
        (next.node_key(), certs.node_key()),
        (next.client_cert("root"), certs.client_cert("root")),
        (next.client_key("root"), certs.client_key("root")),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    reload_all(&cluster);
    std::fs::copy(next.ca_cert(), certs.ca_cert()).unwrap();
    reload_all(&cluster);
    let new_cert = fingerprint_of(&certs.node_cert());
    for i in 0..cluster.len() {
        for listener in LISTENERS {
            assert_eq!(presented(cluster.node(i), listener, &certs).await, new_cert);
        }
    }

    // The connections between nodes were made with the old CA's certificates. Restarting node
    // 1 breaks those with it, and stopping node 2 leaves nodes 1 and 3 as the only quorum:
    // writes go on only if node 3 reconnects to node 1 with its reloaded client certificate,
    // and node 1 (which read the new files at start) is accepted by node 3's reloaded CA.
    cluster.stop(0).await;
    cluster.restart(0).await.unwrap();
    cluster.stop(1).await;
    execute_eventually(
        cluster.node(2).sql_addr(),
        &certs,
        "INSERT INTO t VALUES (2, 'new ca')",
    )
    .await;
    let sql = connect_tls(cluster.node(0).sql_addr(), &certs).await;
    assert_eq!(
        values(&sql, "SELECT v FROM t ORDER BY id").await,
        ["old ca", "new ca"]
    );
    cluster.shutdown().await;
}
