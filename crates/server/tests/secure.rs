//! Secure mode: a node started with a certificates directory and without `--insecure` takes
//! SQL connections only over TLS, from `root` with its client certificate and from users made
//! with `CREATE USER ... PASSWORD` with their password (the real `psql`, `sslmode=require`).

use std::path::Path;
use std::process::{Command, Output};

use meridian_pgwire::security::CertsDir;
use meridian_server::{Node, NodeConfig};

mod support;

/// A CA, a node certificate for 127.0.0.1 and root's client certificate in `dir`.
fn make_certs(dir: &Path) -> CertsDir {
    support::make_certs(dir, &["127.0.0.1"], &["root"])
}

/// Runs psql as `user` against `node` over TLS, checking the node's certificate; with a
/// password, or (`None`) with the user's client certificate.
fn psql(node: &Node, certs: &CertsDir, user: &str, password: Option<&str>, sql: &str) -> Output {
    let addr = node.sql_addr();
    let mut conninfo = format!(
        "host={} port={} user={user} dbname=defaultdb sslmode=verify-full sslrootcert={}",
        addr.ip(),
        addr.port(),
        certs.ca_cert().display()
    );
    if password.is_none() {
        conninfo.push_str(&format!(
            " sslcert={} sslkey={}",
            certs.client_cert(user).display(),
            certs.client_key(user).display()
        ));
    }
    Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &conninfo,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password.unwrap_or(""))
        .env_remove("PGSSLMODE")
        .output()
        .expect("psql runs (ops/install-deps.sh installs it)")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_nodes_take_client_certificates_and_passwords_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("certs"));
    let mut config = NodeConfig::new(dir.path().join("data"));
    config.insecure = false;
    config.certs_dir = Some(certs.path().to_owned());
    let node = Node::start(config).await.unwrap();

    // root has no password: its certificate logs it in, and it makes a user.
    let made = psql(
        &node,
        &certs,
        "root",
        None,
        "CREATE USER alice WITH PASSWORD 'correct horse'",
    );
    assert_eq!(stdout(&made), "CREATE ROLE");
    let who = psql(
        &node,
        &certs,
        "alice",
        Some("correct horse"),
        "SELECT current_user",
    );
    assert_eq!(stdout(&who), "alice");

    // A wrong password, an unknown user and root without its certificate all get 28P01's
    // message; the server keeps serving.
    for (user, password) in [("alice", "wrong"), ("mallory", "x"), ("root", "guess")] {
        let out = psql(&node, &certs, user, Some(password), "SELECT 1");
        assert!(!out.status.success(), "{user} logged in");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{err}"
        );
    }

    // Users change their own password; the old one stops working.
    let changed = psql(
        &node,
        &certs,
        "alice",
        Some("correct horse"),
        "ALTER USER alice WITH PASSWORD 'battery staple'",
    );
    assert_eq!(stdout(&changed), "ALTER ROLE");
    let old = psql(&node, &certs, "alice", Some("correct horse"), "SELECT 1");
    assert!(!old.status.success());
    let new = psql(&node, &certs, "alice", Some("battery staple"), "SELECT 1");
    assert_eq!(stdout(&new), "1");

    // Plain connections are refused.
    let addr = node.sql_addr();
    let plain = Command::new("psql")
        .args(["-X", "-d"])
        .arg(format!(
            "host={} port={} user=alice dbname=defaultdb sslmode=disable",
            addr.ip(),
            addr.port()
        ))
        .args(["-c", "SELECT 1"])
        .env("PGPASSWORD", "battery staple")
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("connection requires TLS"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    node.shutdown().await;
}

#[tokio::test]
async fn secure_mode_needs_a_certificates_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.insecure = false;
    let err = Node::start(config)
        .await
        .err()
        .unwrap_or_else(|| panic!("a secure node started without certificates"));
    assert!(format!("{err:#}").contains("--certs-dir"), "{err:#}");

    let mut config = NodeConfig::new(dir.path());
    config.insecure = false;
    config.certs_dir = Some(dir.path().join("nowhere"));
    let err = Node::start(config)
        .await
        .err()
        .unwrap_or_else(|| panic!("a secure node started with missing certificates"));
    assert!(
        format!("{err:#}").contains("cannot load the certificates"),
        "{err:#}"
    );
}
