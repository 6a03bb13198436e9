#![allow(clippy::disallowed_methods)] // Tests measure real time for their deadlines.

//! A secure three-process cluster driven by the command line: certificates from `meridian
//! cert`, `meridian start --certs-dir` on each node, `meridian init` and `meridian node ls`
//! with `--certs-dir` (as root), SQL through `meridian sql --certs-dir`. Plaintext commands
//! are refused. SIGHUP makes a running node reload its certificates.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_security::rustls::pki_types::ServerName;
use meridian_security::{
    CertsDir, ClientIdentity, certificate_fingerprint, client_config, load_certs,
};
use support::{NodeProcess, free_addr};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env("MERIDIAN_LOG", "warn")
        .output()
        .expect("run meridian")
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "meridian failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` until it succeeds (the nodes are still starting), for 30 seconds at most.
async fn eventually(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = meridian(args);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `meridian sql` over TLS as root (its client certificate) against `sql_addr`.
fn sql_args<'a>(certs: &'a str, url: &'a str, statements: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sql", "--certs-dir", certs, "--url", url, "--format", "csv"];
    for s in statements {
        args.extend(["-e", s]);
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cluster_is_formed_and_inspected_with_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs_path = dir.path().join("certs");
    let certs = certs_path.to_str().unwrap();
    for cmd in [
        vec!["cert", "create-ca", "--certs-dir", certs],
        vec!["cert", "create-node", "127.0.0.1", "--certs-dir", certs],
        vec!["cert", "create-client", "root", "--certs-dir", certs],
    ] {
        text(&meridian(&cmd));
    }

    let members: Vec<_> = (0..3).map(|_| (free_addr(), free_addr())).collect();
    let join = members
        .iter()
        .map(|(_, listen)| listen.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let _nodes: Vec<NodeProcess> = members
        .iter()
        .enumerate()
        .map(|(i, &(sql, listen))| {
            let data = dir.path().join(format!("node-{i}"));
            NodeProcess::spawn_secure(&data, sql, listen, Path::new(certs), &["--join", &join])
        })
        .collect();
    let host = members[0].1.to_string();

    let init = eventually(&["init", "--certs-dir", certs, "--host", &host]).await;
    assert!(text(&init).contains("initialised with 3 node(s)"));

    // Plaintext gRPC gets no answer from a secure node.
    let plain = meridian(&["node", "status", "--insecure", "--host", &host]);
    assert!(!plain.status.success(), "{}", text(&plain));
    let ls = eventually(&["node", "ls", "--certs-dir", certs, "--host", &host]).await;
    assert_eq!(text(&ls).matches(" live ").count(), 3, "{}", text(&ls));

    // Write through node 1, read through node 3, over TLS.
    let url = |i: usize| format!("postgresql://root@{}/defaultdb", members[i].0);
    let (first, third) = (url(0), url(2));
    for url in [&first, &third] {
        text(&eventually(&sql_args(certs, url, &["SELECT 1"])).await);
    }
    let write = meridian(&sql_args(
        certs,
        &first,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
            "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        ],
    ));
    text(&write);
    let read = meridian(&sql_args(certs, &third, &["SELECT v FROM t ORDER BY id"]));
    assert_eq!(text(&read).lines().collect::<Vec<_>>(), ["v", "one", "two"]);
}

/// The fingerprint of the certificate the HTTPS endpoint at `addr` presents to a client
/// trusting the `ca.crt` of `certs`; `None` while it does not answer.
async fn presented(addr: SocketAddr, certs: &CertsDir) -> Option<String> {
    let mut config = client_config(certs, &ClientIdentity::Anonymous).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::from(addr.ip()), tcp)
        .await
        .ok()?;
    let shown = &tls.get_ref().1.peer_certificates()?[0];
    Some(certificate_fingerprint(shown))
}

fn fingerprint_of(path: &Path) -> String {
    certificate_fingerprint(&load_certs(path).unwrap()[0])
}

/// Waits up to 30 seconds until the node at `addr` presents the certificate `fingerprint`.
async fn wait_presenting(addr: SocketAddr, certs: &CertsDir, fingerprint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while presented(addr, certs).await.as_deref() != Some(fingerprint) {
        assert!(
            Instant::now() < deadline,
            "the node at {addr} never presented {fingerprint}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificates_and_a_broken_set_is_logged_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let certs_path = dir.path().join("certs");
    let certs = certs_path.to_str().unwrap();
    let create_node = ["cert", "create-node", "127.0.0.1", "--certs-dir", certs];
    for cmd in [
        &["cert", "create-ca", "--certs-dir", certs][..],
        &create_node,
    ] {
        text(&meridian(cmd));
    }
    let dir_certs = CertsDir::new(&certs_path);
    let (node, log) =
        NodeProcess::spawn_secure_logged(&dir.path().join("data"), &certs_path, &["--single-node"]);
    let first = fingerprint_of(&dir_certs.node_cert());
    wait_presenting(node.http_addr, &dir_certs, &first).await;

    text(&meridian(&[&create_node[..], &["--overwrite"]].concat()));
    let second = fingerprint_of(&dir_certs.node_cert());
    assert_ne!(first, second);
    node.signal("HUP");
    wait_presenting(node.http_addr, &dir_certs, &second).await;

    // A truncated certificate: the reload fails, says why, and the node keeps the one it had.
    std::fs::write(dir_certs.node_cert(), "-----BEGIN CERTIFICATE-----\n").unwrap();
    node.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    let logged = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log.recv_timeout(left).expect("the failed reload is logged");
        if line.contains("cannot reload the certificates") {
            break line;
        }
    };
    assert!(logged.contains("node.crt"), "{logged}");
    assert_eq!(
        presented(node.http_addr, &dir_certs).await.as_deref(),
        Some(second.as_str())
    );
    node.stop();
}
