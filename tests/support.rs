//! Helpers for tests that run `meridian` as a real process.

#![allow(dead_code, clippy::disallowed_methods)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A free loopback address for a node (see `meridian_server::free_addr`).
pub fn free_addr() -> SocketAddr {
    meridian_server::free_addr().expect("a free loopback port")
}

/// A `meridian start` process.
pub struct NodeProcess {
    pub child: Child,
    pub sql_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl NodeProcess {
    /// Starts `meridian start --single-node` on `data_dir` and waits until it accepts SQL.
    pub async fn start(data_dir: &Path, sql_addr: SocketAddr) -> NodeProcess {
        let node = Self::spawn(data_dir, sql_addr, free_addr(), &["--single-node"]);
        node.wait_ready().await;
        node
    }

    /// Starts `meridian start --insecure` with `extra` arguments, without waiting for
    /// anything.
    pub fn spawn(
        data_dir: &Path,
        sql_addr: SocketAddr,
        listen_addr: SocketAddr,
        extra: &[&str],
    ) -> NodeProcess {
        Self::spawn_with(
            data_dir,
            sql_addr,
            listen_addr,
            &["--insecure"],
            extra,
            Stdio::inherit(),
        )
    }

    /// Starts `meridian start --certs-dir DIR` (secure mode) with `extra` arguments, without
    /// waiting for anything.
    pub fn spawn_secure(
        data_dir: &Path,
        sql_addr: SocketAddr,
        listen_addr: SocketAddr,
        certs_dir: &Path,
        extra: &[&str],
    ) -> NodeProcess {
        let certs = certs_dir.to_str().expect("a UTF-8 certificates directory");
        Self::spawn_with(
            data_dir,
            sql_addr,
            listen_addr,
            &["--certs-dir", certs],
            extra,
            Stdio::inherit(),
        )
    }

    /// [`Self::spawn_secure`], with the node's log lines (warnings and errors) sent to the
    /// receiver as they come.
    pub fn spawn_secure_logged(
        data_dir: &Path,
        certs_dir: &Path,
        extra: &[&str],
    ) -> (NodeProcess, mpsc::Receiver<String>) {
        let certs = certs_dir.to_str().expect("a UTF-8 certificates directory");
        let mut node = Self::spawn_with(
            data_dir,
            free_addr(),
            free_addr(),
            &["--certs-dir", certs],
            extra,
            Stdio::piped(),
        );
        let stderr = node.child.stderr.take().expect("a piped stderr");
        let (lines, receiver) = mpsc::channel();
        // Read all along, so that the node never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
        (node, receiver)
    }

    fn spawn_with(
        data_dir: &Path,
        sql_addr: SocketAddr,
        listen_addr: SocketAddr,
        security: &[&str],
        extra: &[&str],
        stderr: Stdio,
    ) -> NodeProcess {
        let http_addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("start")
            .args(security)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--sql-addr", &sql_addr.to_string()])
            .args(["--listen-addr", &listen_addr.to_string()])
            .args(["--http-addr", &http_addr.to_string()])
            .args(extra)
            .env("MERIDIAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn meridian");
        NodeProcess {
            child,
            sql_addr,
            http_addr,
        }
    }

    /// Waits until the node answers SQL.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(client) = self.try_connect().await
                && client.simple_query("SELECT 1").await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node on {} did not become ready",
                self.sql_addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let url = format!(
            "host={} port={} user=root dbname=defaultdb",
            self.sql_addr.ip(),
            self.sql_addr.port()
        );
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A connected client.
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.try_connect().await.expect("connect to node")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().expect("kill node");
        self.child.wait().expect("reap node");
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("reap node");
        assert!(status.success(), "node exited with {status}");
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rows of a simple query, as text.
pub async fn query_text(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .expect("query")
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
