//! Helpers shared by the node-level tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use meridian_security::rustls::pki_types::ServerName;
use meridian_security::{
    CertsDir, ClientIdentity, client_config, create_ca, create_client, create_node,
};
use meridian_server::{NodeConfig, NodeDialer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A tokio-postgres client on the SQL address `addr` (user root, database defaultdb), its
/// connection driven by a spawned task.
pub async fn connect(addr: SocketAddr) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A CA, a node certificate for `hosts`, and client certificates of `users` in `dir`.
pub fn make_certs(dir: &Path, hosts: &[&str], users: &[&str]) -> CertsDir {
    let certs = CertsDir::new(dir);
    let ca_key = certs.default_ca_key();
    create_ca(&certs, &ca_key, false).unwrap();
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    create_node(&certs, &ca_key, &hosts, false).unwrap();
    for user in users {
        create_client(&certs, &ca_key, user, false).unwrap();
    }
    certs
}

/// Secure mode with the certificates of `certs`.
pub fn secure(config: &mut NodeConfig, certs: &CertsDir) {
    config.insecure = false;
    config.certs_dir = Some(certs.path().to_owned());
}

/// The operator's gRPC dialer: root's client certificate.
pub fn root_dialer(certs: &CertsDir) -> NodeDialer {
    NodeDialer::tls(certs.path(), &ClientIdentity::User("root".into())).unwrap()
}

/// A SQL session of `root` at `addr` over TLS, logged in with root's client certificate.
pub async fn connect_tls(addr: SocketAddr, certs: &CertsDir) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=root dbname=defaultdb sslmode=require connect_timeout=10",
        addr.ip(),
        addr.port()
    );
    let config = client_config(certs, &ClientIdentity::User("root".into())).unwrap();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let (client, conn) = tokio_postgres::connect(&url, tls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The response (status line, headers, body) to `GET path` over plain HTTP at `addr`.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    get(TcpStream::connect(addr).await.unwrap(), path).await
}

/// The response to `GET path` over HTTPS at `addr`, trusting the `ca.crt` of `certs` (as a
/// Prometheus scrape with `ca_file` does).
pub async fn https_get(addr: SocketAddr, path: &str, certs: &CertsDir) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tls_handshake(tcp, certs, &ClientIdentity::Anonymous, b"http/1.1")
        .await
        .unwrap();
    get(tls, path).await
}

/// The status code of an HTTP response.
pub fn http_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

async fn get(mut stream: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    if let Err(e) = stream.read_to_end(&mut out).await {
        // The whole response is there when a TLS peer closes without a close_notify.
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    String::from_utf8(out).unwrap()
}

/// Completes a TLS handshake over `tcp` as a client trusting the `ca.crt` of `certs`,
/// presenting `identity` and offering the ALPN protocol `alpn`; the server must name the IP
/// address dialled.
pub async fn tls_handshake(
    tcp: TcpStream,
    certs: &CertsDir,
    identity: &ClientIdentity,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut config = client_config(certs, identity).unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::from(tcp.peer_addr()?.ip());
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The first column of every row `sql` returns, as text (`NULL` for NULL).
pub async fn values(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .collect()
}

/// Every column of every row `sql` returns, as text (`None` for NULL).
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// The commit timestamp (nanoseconds) of the session's last write, from `SHOW LAST COMMIT
/// TIMESTAMP`; `None` before the session wrote anything.
pub async fn last_commit_nanos(client: &tokio_postgres::Client) -> Option<u64> {
    let row = rows(client, "SHOW LAST COMMIT TIMESTAMP").await.remove(0);
    row[1].as_deref().map(|n| n.parse().unwrap())
}

/// The system clock shifted by an adjustable offset.
#[derive(Debug, Default)]
pub struct SkewedClock {
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl SkewedClock {
    /// A clock `offset` ahead of (or behind) the system clock.
    pub fn new(offset: std::time::Duration, ahead: bool) -> SkewedClock {
        let c = SkewedClock::default();
        c.set_offset(offset, ahead);
        c
    }

    /// Moves the clock to `offset` ahead of (or behind) the system clock.
    pub fn set_offset(&self, offset: std::time::Duration, ahead: bool) {
        let n = offset.as_nanos() as i64;
        self.offset_nanos.store(
            if ahead { n } else { -n },
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl meridian_clock::PhysicalClock for SkewedClock {
    #[allow(clippy::disallowed_methods)] // built on the system clock
    fn now(&self) -> meridian_clock::Timestamp {
        let real = meridian_clock::SystemClock.now().as_nanos() as i64;
        meridian_clock::Timestamp::from_nanos(
            (real + self.offset_nanos.load(std::sync::atomic::Ordering::SeqCst)) as u64,
        )
    }
}
