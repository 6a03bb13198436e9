//! A private PostgreSQL 15 server for the run: Debian's binaries (`ops/install-deps.sh`
//! installs the `postgresql` package), a fresh cluster in a temporary directory, listening on a
//! free port of 127.0.0.1, stopped when dropped. As root, the server runs as the `postgres`
//! user (PostgreSQL refuses to run as root), as `benches/lib.sh` does.
//!
//! The cluster is created with `--no-locale` (the C collation: text compares and sorts by
//! bytes, as in Meridian) and UTF-8.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `bin args...`, as the `postgres` user when we are root.
fn run(bin: &str, args: &[&str]) -> Result<(), String> {
    let path = Path::new(BIN_DIR).join(bin);
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("running {}: {e}", path.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed ({}):\n{}{}",
            path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Postgres {
    /// Creates and starts the cluster.
    pub fn start() -> Result<Postgres, String> {
        for bin in ["initdb", "pg_ctl", "postgres"] {
            if !Path::new(BIN_DIR).join(bin).exists() {
                return Err(format!(
                    "PostgreSQL 15 is not installed ({BIN_DIR}/{bin} is missing): run \
                     `bash ops/install-deps.sh` (as root), which installs Debian's `postgresql` \
                     package"
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("meridian-difftest-pg")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_root() {
            // The postgres user creates the data directory and the socket inside it.
            let status = Command::new("chown")
                .args(["postgres:postgres", &dir.path().to_string_lossy()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("chown postgres {} failed", dir.path().display()));
            }
        }
        let data = data_dir(dir.path());
        let data_s = data.to_string_lossy().to_string();
        run(
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let port = free_port()?;
        let log = dir.path().join("server.log").to_string_lossy().to_string();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        run(
            "pg_ctl",
            &["-D", &data_s, "-l", &log, "-w", "-o", &opts, "start"],
        )?;
        Ok(Postgres { dir, port })
    }

    pub async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        let conn = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
        tokio::spawn(connection);
        Ok(client)
    }
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = data_dir(self.dir.path()).to_string_lossy().to_string();
        if let Err(e) = run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]) {
            eprintln!("difftest: stopping PostgreSQL: {e}");
        }
    }
}
