//! psql 15 against the server: startup, SSL refusal, simple queries and errors as a person
//! would see them.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::fake::{Fake, TestServer};

const PSQL: &str = "/usr/bin/psql";

/// Runs `psql -c sql` against the server; `None` when psql is not installed.
pub async fn psql(server: &TestServer, sql: &str) -> Option<Output> {
    let binary = if Path::new(PSQL).exists() {
        PSQL
    } else {
        which("psql")?
    };
    let port = server.addr.port().to_string();
    let run = tokio::process::Command::new(binary)
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "anyone",
            "-d",
            "defaultdb",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "psql-test")
        .env_remove("PGPASSWORD")
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

fn which(name: &'static str) -> Option<&'static str> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .any(|dir| dir.join(name).is_file())
        .then_some(name)
}

#[tokio::test]
async fn psql_shows_rows_commands_and_errors() {
    let server = TestServer::start(Fake::new(false)).await;
    let Some(out) = psql(&server, "select ints").await else {
        println!("SKIPPED: psql is not installed");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stdout, " a |  b  \n---+-----\n 1 | one\n 2 | \n(2 rows)\n\n",
        "stderr: {stderr}"
    );

    let out = psql(&server, "insert into t").await.unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "INSERT 0 3\n");

    let out = psql(&server, "fail").await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("ERROR:  relation \"nope\" does not exist\n"),
        "{stderr}"
    );
    assert!(stderr.contains("DETAIL:  some detail"), "{stderr}");
    assert!(stderr.contains("HINT:  some hint"), "{stderr}");
}
