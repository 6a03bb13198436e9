//! Secure mode: TLS on the SQL port and SCRAM-SHA-256 passwords, with tokio-postgres over
//! rustls, a hand-driven client, and psql.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meridian_pgwire::{PgServerConfig, StaticUsers};
use meridian_security::{
    CertsDir, ClientIdentity, client_config, create_ca, create_client, create_node,
};
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::fake::{Fake, TestServer};
use crate::raw::{Msg, Raw};

pub const PASSWORD: &str = "correct horse battery staple";

/// A CA and a node certificate for localhost in `dir`.
pub fn make_certs(dir: &Path) -> CertsDir {
    let certs = CertsDir::new(dir);
    create_ca(&certs, &certs.default_ca_key(), false).unwrap();
    create_node(
        &certs,
        &certs.default_ca_key(),
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        false,
    )
    .unwrap();
    certs
}

/// A server in secure mode, or (with `insecure`) in insecure mode with TLS available. The
/// only user is `alice`, with [`PASSWORD`].
pub async fn start(certs: &CertsDir, insecure: bool) -> TestServer {
    let users = StaticUsers::new().with_password("alice", PASSWORD).unwrap();
    let config = PgServerConfig {
        insecure,
        tls: Some(Arc::new(meridian_security::server_config(certs).unwrap())),
        users: Some(Arc::new(users)),
        ..PgServerConfig::default()
    };
    TestServer::start_config(Fake::new(true), config).await
}

async fn connect_tls(
    server: &TestServer,
    certs: &CertsDir,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let url = format!(
        "postgresql://{user}:{password}@localhost:{}/defaultdb?sslmode=require&connect_timeout=10",
        server.addr.port()
    );
    let tls = MakeRustlsConnect::new(client_config(certs, &ClientIdentity::Anonymous).unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn the_right_password_over_tls_opens_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, false).await;
    let client = connect_tls(&server, &certs, "alice", PASSWORD)
        .await
        .unwrap();
    let row = client.query_one("select who", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "alice");
    assert_eq!(row.get::<_, &str>(1), "defaultdb");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_28p01() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, false).await;
    for (user, password) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("ghost", PASSWORD),
        ("ghost", "anything"),
    ] {
        let err = connect_tls(&server, &certs, user, password)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user}/{password} connected"));
        assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err}");
        assert_eq!(
            err.as_db_error().unwrap().message(),
            format!("password authentication failed for user \"{user}\"")
        );
    }
    // The server is fine afterwards.
    connect_tls(&server, &certs, "alice", PASSWORD)
        .await
        .unwrap();
}

/// Connects as `user` with `password` (none when empty), presenting `client.<cert_user>.crt`.
async fn connect_with_certificate(
    server: &TestServer,
    certs: &CertsDir,
    cert_user: &str,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let login = if password.is_empty() {
        user.to_owned()
    } else {
        format!("{user}:{password}")
    };
    let url = format!(
        "postgresql://{login}@localhost:{}/defaultdb?sslmode=require&connect_timeout=10",
        server.addr.port()
    );
    let identity = ClientIdentity::User(cert_user.to_owned());
    let tls = MakeRustlsConnect::new(client_config(certs, &identity).unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn a_client_certificate_naming_the_user_stands_in_for_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    create_client(&certs, &certs.default_ca_key(), "root", false).unwrap();
    let users = StaticUsers::new().with_password("alice", PASSWORD).unwrap();
    let config = PgServerConfig {
        insecure: false,
        tls: Some(Arc::new(
            meridian_security::sql_server_config(&certs).unwrap(),
        )),
        users: Some(Arc::new(users)),
        ..PgServerConfig::default()
    };
    let server = TestServer::start_config(Fake::new(true), config).await;
    let client = connect_with_certificate(&server, &certs, "root", "root", "")
        .await
        .unwrap();
    let row = client.query_one("select who", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "root");
    // The certificate names root, not alice: alice still needs her password.
    let err = connect_with_certificate(&server, &certs, "root", "alice", "wrong")
        .await
        .err()
        .unwrap_or_else(|| panic!("root's certificate logged alice in"));
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err}");
    connect_with_certificate(&server, &certs, "root", "alice", PASSWORD)
        .await
        .unwrap();
    // Without a certificate the same server takes passwords.
    connect_tls(&server, &certs, "alice", PASSWORD)
        .await
        .unwrap();
    // `meridian sql --certs-dir` presents the user's certificate.
    let url = format!(
        "postgresql://root@localhost:{}/defaultdb",
        server.addr.port()
    );
    let (code, out, err) = shell_with(meridian_shell::ShellOptions {
        url,
        certs_dir: Some(certs.path().to_owned()),
        ..Default::default()
    })
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("root,defaultdb"), "{out}");
}

#[tokio::test]
async fn secure_mode_refuses_connections_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, false).await;
    let url = format!(
        "postgresql://alice:{}@127.0.0.1:{}/defaultdb?sslmode=disable",
        urlencode(PASSWORD),
        server.addr.port()
    );
    let err = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .err()
        .expect("a plain connection is refused");
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    );
}

#[tokio::test]
async fn insecure_mode_offers_tls_and_trusts_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, true).await;
    let client = connect_tls(&server, &certs, "anyone", "").await.unwrap();
    client.simple_query("select ints").await.unwrap();
    let plain = server.client().await;
    plain.simple_query("select ints").await.unwrap();
}

#[tokio::test]
async fn secure_mode_needs_tls_and_users() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = PgServerConfig {
        insecure: false,
        ..PgServerConfig::default()
    };
    let err = meridian_pgwire::serve(
        listener,
        Arc::new(Fake::new(false)),
        config,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("TLS"), "{err}");
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "%20")
}

/// Asks for TLS with an SSLRequest and completes the handshake.
async fn raw_tls(server: &TestServer, certs: &CertsDir) -> Raw {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"S");
    let config = client_config(certs, &ClientIdentity::Anonymous).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = meridian_security::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    Raw::from_stream(connector.connect(name, tcp).await.unwrap())
}

/// Runs a SCRAM exchange by hand; returns what the server sent after the client's proof.
async fn raw_scram(raw: &mut Raw, user: &str, password: &str) -> Vec<Msg> {
    raw.startup(&[("user", user), ("database", "defaultdb")])
        .await;
    // AuthenticationSASL (code 10) decodes as `Other(b'R')`.
    assert_eq!(raw.recv().await, Msg::Other(b'R'));
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    raw.send(|b| frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), b).unwrap())
        .await;
    let continue_data = raw.recv_auth_data().await;
    scram.update(&continue_data).unwrap();
    raw.send(|b| frontend::sasl_response(scram.message(), b).unwrap())
        .await;
    raw.until_closed().await
}

#[tokio::test]
async fn a_failed_password_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, false).await;
    for user in ["alice", "ghost"] {
        let mut raw = raw_tls(&server, &certs).await;
        let messages = raw_scram(&mut raw, user, "nope").await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0].code(), Some("28P01"), "{messages:?}");
    }
    let mut raw = raw_tls(&server, &certs).await;
    raw.startup(&[("user", "alice"), ("database", "defaultdb")])
        .await;
    assert_eq!(raw.recv().await, Msg::Other(b'R'));
    // Garbage instead of a SCRAM client-first message.
    raw.send(|b| frontend::sasl_initial_response(SCRAM_SHA_256, b"garbage", b).unwrap())
        .await;
    let messages = raw.until_closed().await;
    assert_eq!(messages[0].code(), Some("28P01"), "{messages:?}");
    // A password message after startup is a protocol violation.
    let trusting = start(&certs, true).await;
    let (mut raw, _) = Raw::connect(trusting.addr).await;
    raw.send(|b| frontend::password_message(b"hello", b).unwrap())
        .await;
    let messages = raw.until_closed().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].code(), Some("08P01"), "{messages:?}");
}

/// psql with sslmode=require and a password from PGPASSWORD; `None` without psql.
async fn psql(server: &TestServer, user: &str, password: &str) -> Option<std::process::Output> {
    let binary = ["/usr/bin/psql", "/usr/local/bin/psql"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let conninfo = format!(
        "host=localhost port={} user={user} dbname=defaultdb sslmode=require",
        server.addr.port()
    );
    let run = tokio::process::Command::new(binary)
        .args(["-X", "-A", "-t", "-d", &conninfo, "-c", "select who"])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .kill_on_drop(true)
        .output();
    Some(
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("psql finishes")
            .expect("psql runs"),
    )
}

#[tokio::test]
async fn psql_connects_with_sslmode_require_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let server = start(&certs, false).await;
    let Some(out) = psql(&server, "alice", PASSWORD).await else {
        println!("SKIPPED: psql is not installed");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice|defaultdb\n");

    let out = psql(&server, "alice", "wrong").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed for user \"alice\""),
        "{stderr}"
    );
}

async fn shell(url: String, ca_cert: Option<std::path::PathBuf>) -> (i32, String, String) {
    shell_with(meridian_shell::ShellOptions {
        url,
        ca_cert,
        ..Default::default()
    })
    .await
}

/// Runs `select who` in the shell with `opts`, printing CSV.
async fn shell_with(opts: meridian_shell::ShellOptions) -> (i32, String, String) {
    let opts = meridian_shell::ShellOptions {
        execute: vec!["select who".to_owned()],
        format: Some(meridian_shell::OutputFormat::Csv),
        ..opts
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = meridian_shell::run_with_io(opts, false, &mut out, &mut err)
        .await
        .unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn the_shell_connects_with_tls_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("a"));
    let other = make_certs(&dir.path().join("b"));
    let server = start(&certs, false).await;
    let url = |password: &str| {
        format!(
            "postgresql://alice:{}@localhost:{}/defaultdb?sslmode=require",
            urlencode(password),
            server.addr.port()
        )
    };
    // Verified against the CA.
    let (code, out, err) = shell(url(PASSWORD), Some(certs.ca_cert())).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "user,database\nalice,defaultdb\n");
    // Encrypted without verification, as libpq's sslmode=require.
    let (code, _, err) = shell(url(PASSWORD), None).await;
    assert_eq!(code, 0, "{err}");
    // A server whose certificate another CA signed is refused.
    let (code, _, err) = shell(url(PASSWORD), Some(other.ca_cert())).await;
    assert_eq!(code, 2);
    assert!(err.contains("TLS: invalid peer certificate"), "{err}");
    // A wrong password.
    let (code, _, err) = shell(url("nope"), Some(certs.ca_cert())).await;
    assert_eq!(code, 2);
    assert!(err.contains("28P01"), "{err}");
    // A server without TLS.
    let plain = TestServer::start(Fake::new(false)).await;
    let (code, _, err) = shell(
        format!(
            "postgresql://anyone@localhost:{}/defaultdb?sslmode=require",
            plain.addr.port()
        ),
        None,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("does not accept TLS"), "{err}");
}
