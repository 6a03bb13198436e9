//! `meridian-sql`: the SQL shell on its own, for any PostgreSQL-wire endpoint.
//!
//! ```text
//! meridian-sql [URL] [-c SQL]... [-f FILE] [--format table|csv|tsv|json] [-e] [--ca-cert FILE]
//!              [--certs-dir DIR]
//! ```
//!
//! The same shell as `meridian sql` (which most people use); this binary has no other
//! dependencies and is what the pseudo-terminal tests drive.

use std::path::PathBuf;

use meridian_shell::{ShellOptions, run};

const USAGE: &str = "usage: meridian-sql [URL] [-c SQL]... [-f FILE] \
    [--format table|csv|tsv|json] [-e] [--ca-cert FILE] [--certs-dir DIR]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<ShellOptions, String> {
    let mut opts = ShellOptions {
        url: "postgresql://root@localhost:26257/defaultdb".to_owned(),
        ..ShellOptions::default()
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-c" | "--command" => opts.execute.push(value(&arg)?),
            "-f" | "--file" => opts.file = Some(PathBuf::from(value(&arg)?)),
            "--format" => opts.format = Some(value(&arg)?.parse()?),
            "--ca-cert" => opts.ca_cert = Some(PathBuf::from(value(&arg)?)),
            "--certs-dir" => opts.certs_dir = Some(PathBuf::from(value(&arg)?)),
            "-e" | "--echo" => opts.echo = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            url if !url.starts_with('-') => opts.url = url.to_owned(),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let code = run(opts).await?;
    std::process::exit(code);
}
