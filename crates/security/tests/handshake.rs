//! Certificates generated into a temporary directory, loaded into rustls configurations, and
//! TLS handshakes between them over loopback; a node's certificates reloaded between
//! handshakes.

use std::path::Path;
use std::sync::Arc;

use meridian_security::rustls::pki_types::{CertificateDer, ServerName};
use meridian_security::{
    CertsDir, ClientAuth, ClientIdentity, NodeCerts, client_config, create_ca, create_client,
    create_node, load_certs, mutual_server_config, server_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn make_certs(root: &Path) -> CertsDir {
    let certs = CertsDir::new(root);
    let ca_key = certs.default_ca_key();
    create_ca(&certs, &ca_key, false).unwrap();
    create_node(
        &certs,
        &ca_key,
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        false,
    )
    .unwrap();
    create_client(&certs, &ca_key, "alice", false).unwrap();
    certs
}

/// The certificates each side of a handshake was shown.
#[derive(Debug)]
struct Shown {
    /// The server's certificate, as the client saw it.
    server: CertificateDer<'static>,
    /// The client's certificate, as the server saw it (none when it presented none).
    client: Option<CertificateDer<'static>>,
}

/// Serves one connection with `server`, connects with `client` to `name`, and exchanges a
/// message both ways. Returns the client's error, or the server's when the client saw none.
async fn handshake(
    server: meridian_security::rustls::ServerConfig,
    client: meridian_security::rustls::ClientConfig,
    name: &'static str,
) -> Result<Shown, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let client_cert = tls.get_ref().1.peer_certificates().map(|c| c[0].clone());
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((buf, client_cert))
    });
    let connector = TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_result = async {
        let mut tls = connector
            .connect(ServerName::try_from(name).unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(reply, b"pong");
        Ok::<_, String>(server_cert)
    }
    .await;
    let server_result = served.await.unwrap();
    let server = client_result?;
    let (ping, client) = server_result?;
    assert_eq!(&ping, b"ping");
    Ok(Shown { server, client })
}

/// The certificate in a PEM file (the first one).
fn cert_in(path: &Path) -> CertificateDer<'static> {
    load_certs(path).unwrap().remove(0)
}

#[tokio::test]
async fn a_client_trusting_the_ca_connects_by_name_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    for name in ["localhost", "127.0.0.1"] {
        handshake(
            server_config(&certs).unwrap(),
            client_config(&certs, &ClientIdentity::Anonymous).unwrap(),
            name,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_name_the_certificate_does_not_cover_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let err = handshake(
        server_config(&certs).unwrap(),
        client_config(&certs, &ClientIdentity::Anonymous).unwrap(),
        "elsewhere.example.com",
    )
    .await
    .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("a"));
    let other = make_certs(&dir.path().join("b"));
    let err = handshake(
        server_config(&certs).unwrap(),
        client_config(&other, &ClientIdentity::Anonymous).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn mutual_tls_accepts_node_and_user_certificates_and_refuses_none() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    for identity in [ClientIdentity::Node, ClientIdentity::User("alice".into())] {
        handshake(
            mutual_server_config(&certs).unwrap(),
            client_config(&certs, &identity).unwrap(),
            "localhost",
        )
        .await
        .unwrap_or_else(|e| panic!("{identity:?}: {e}"));
    }
    let err = handshake(
        mutual_server_config(&certs).unwrap(),
        client_config(&certs, &ClientIdentity::Anonymous).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(!err.is_empty());
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("a"));
    let other = make_certs(&dir.path().join("b"));
    // Trust `certs`' CA for the server, but present a client certificate from `other`.
    let mixed = CertsDir::new(dir.path().join("mixed"));
    std::fs::create_dir_all(mixed.path()).unwrap();
    std::fs::copy(certs.ca_cert(), mixed.ca_cert()).unwrap();
    std::fs::copy(other.client_cert("alice"), mixed.client_cert("alice")).unwrap();
    std::fs::copy(other.client_key("alice"), mixed.client_key("alice")).unwrap();
    let result = handshake(
        mutual_server_config(&certs).unwrap(),
        client_config(&mixed, &ClientIdentity::User("alice".into())).unwrap(),
        "localhost",
    )
    .await;
    assert!(result.is_err());
}

#[test]
fn missing_and_malformed_files_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let certs = CertsDir::new(dir.path());
    let err = server_config(&certs).unwrap_err().to_string();
    assert!(err.contains("node.crt"), "{err}");
    std::fs::write(certs.node_cert(), "not a certificate").unwrap();
    std::fs::write(certs.node_key(), "not a key").unwrap();
    let err = server_config(&certs).unwrap_err().to_string();
    assert!(err.contains("node.crt") && err.contains("no PEM"), "{err}");
    // A truncated file: the message names the line that is missing, in words.
    std::fs::write(certs.node_cert(), "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let err = server_config(&certs).unwrap_err().to_string();
    assert!(
        err.contains("node.crt") && err.contains("no \"-----END CERTIFICATE-----\" line"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reloaded_certificate_is_presented_by_new_handshakes_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let node = NodeCerts::load(&certs).unwrap();
    let (server, client) = (
        node.server_config(ClientAuth::Required).unwrap(),
        node.client_config().unwrap(),
    );
    let first = cert_in(&certs.node_cert());
    let shown = handshake(server.clone(), client.clone(), "localhost")
        .await
        .unwrap();
    assert_eq!(shown.server, first);
    assert_eq!(shown.client.as_ref(), Some(&first));

    // A new certificate (and key) in the directory changes nothing until the reload.
    create_node(&certs, &certs.default_ca_key(), &["localhost".into()], true).unwrap();
    let second = cert_in(&certs.node_cert());
    assert_ne!(first, second);
    let shown = handshake(server.clone(), client.clone(), "localhost")
        .await
        .unwrap();
    assert_eq!(shown.server, first);

    node.reload().unwrap();
    assert_eq!(node.certificate(), second);
    // The configurations built before the reload present the new certificate, as a server
    // and as a client.
    let shown = handshake(server, client, "localhost").await.unwrap();
    assert_eq!(shown.server, second);
    assert_eq!(shown.client, Some(second));
}

#[tokio::test]
async fn a_failed_reload_keeps_the_certificates_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"));
    // The same hosts, signed by the same CA in `spare`, and by another CA in `foreign`.
    let spare = CertsDir::new(dir.path().join("spare"));
    std::fs::create_dir_all(spare.path()).unwrap();
    std::fs::copy(certs.ca_cert(), spare.ca_cert()).unwrap();
    create_node(
        &spare,
        &certs.default_ca_key(),
        &["localhost".into()],
        false,
    )
    .unwrap();
    let foreign = make_certs(&dir.path().join("foreign"));

    let node = NodeCerts::load(&certs).unwrap();
    let server = node.server_config(ClientAuth::Optional).unwrap();
    let trusting = client_config(&certs, &ClientIdentity::Anonymous).unwrap();
    let client = || trusting.clone();
    let in_use = node.certificate();
    let (good_cert, good_key) = (
        std::fs::read(certs.node_cert()).unwrap(),
        std::fs::read(certs.node_key()).unwrap(),
    );
    let corruptions: [(&str, &dyn Fn(), &str); 5] = [
        (
            "a corrupt certificate",
            &|| std::fs::write(certs.node_cert(), "-----BEGIN CERT").unwrap(),
            "node.crt",
        ),
        (
            "a missing key",
            &|| std::fs::remove_file(certs.node_key()).unwrap(),
            "node.key",
        ),
        (
            "another certificate's key",
            &|| {
                std::fs::copy(spare.node_key(), certs.node_key()).unwrap();
            },
            "not the key of",
        ),
        (
            "a certificate of another CA",
            &|| {
                std::fs::copy(foreign.node_cert(), certs.node_cert()).unwrap();
                std::fs::copy(foreign.node_key(), certs.node_key()).unwrap();
            },
            "not accepted by",
        ),
        (
            "an empty CA file",
            &|| std::fs::write(certs.ca_cert(), "").unwrap(),
            "ca.crt",
        ),
    ];
    let ca = std::fs::read(certs.ca_cert()).unwrap();
    for (what, corrupt, expected) in corruptions {
        corrupt();
        let err = node.reload().unwrap_err().to_string();
        assert!(err.contains(expected), "{what}: {err}");
        assert_eq!(node.certificate(), in_use, "{what}");
        let shown = handshake(server.clone(), client(), "localhost")
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(shown.server, in_use, "{what}");
        std::fs::write(certs.node_cert(), &good_cert).unwrap();
        std::fs::write(certs.node_key(), &good_key).unwrap();
        std::fs::write(certs.ca_cert(), &ca).unwrap();
    }
}

#[tokio::test]
async fn a_reloaded_ca_decides_which_peers_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("a"));
    let other = make_certs(&dir.path().join("b"));
    let node = NodeCerts::load(&certs).unwrap();
    let as_server = node.server_config(ClientAuth::Required).unwrap();
    let as_client = node.client_config().unwrap();
    // A client trusting this node, with a certificate of the other CA.
    let mixed = CertsDir::new(dir.path().join("mixed"));
    std::fs::create_dir_all(mixed.path()).unwrap();
    std::fs::copy(certs.ca_cert(), mixed.ca_cert()).unwrap();
    std::fs::copy(other.client_cert("alice"), mixed.client_cert("alice")).unwrap();
    std::fs::copy(other.client_key("alice"), mixed.client_key("alice")).unwrap();
    let foreign_client = || client_config(&mixed, &ClientIdentity::User("alice".into())).unwrap();
    // Before: neither a client nor a server of the other CA is accepted.
    assert!(
        handshake(as_server.clone(), foreign_client(), "localhost")
            .await
            .is_err()
    );
    let foreign_server = || server_config(&other).unwrap();
    let err = handshake(foreign_server(), as_client.clone(), "localhost")
        .await
        .unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");

    // Both CAs in ca.crt, as while a cluster moves to a new CA.
    let mut both = std::fs::read(certs.ca_cert()).unwrap();
    both.extend(std::fs::read(other.ca_cert()).unwrap());
    std::fs::write(certs.ca_cert(), both).unwrap();
    node.reload().unwrap();
    handshake(as_server, foreign_client(), "localhost")
        .await
        .unwrap();
    handshake(foreign_server(), as_client, "localhost")
        .await
        .unwrap();
}
