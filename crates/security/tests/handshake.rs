//! Certificates generated into a temporary directory, loaded into rustls configurations, and
//! TLS handshakes between them over loopback.

use std::path::Path;
use std::sync::Arc;

use meridian_security::rustls::pki_types::ServerName;
use meridian_security::{
    CertsDir, ClientIdentity, client_config, create_ca, create_client, create_node,
    mutual_server_config, server_config,
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

/// Serves one connection with `server`, connects with `client` to `name`, and exchanges a
/// message both ways. Returns the client's error, or the server's when the client saw none.
async fn handshake(
    server: meridian_security::rustls::ServerConfig,
    client: meridian_security::rustls::ClientConfig,
    name: &'static str,
) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    });
    let connector = TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_result = async {
        let mut tls = connector
            .connect(ServerName::try_from(name).unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(reply, b"pong");
        Ok::<_, String>(())
    }
    .await;
    let server_result = served.await.unwrap();
    client_result?;
    assert_eq!(&server_result?, b"ping");
    Ok(())
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
}
