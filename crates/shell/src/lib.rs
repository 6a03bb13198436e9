//! `meridian sql`: an interactive SQL shell for Meridian, or any PostgreSQL-wire endpoint.
//!
//! ```text
//!  -e / -f / stdin / rustyline ──lines──▶ input.rs (LineHandler: statements, \meta)
//!    (complete.rs: Tab)                        │ Action
//!                                              ▼
//!              vars.rs (:var) ──▶ shell.rs (run, print, \i, \o, exit code) ──▶ client.rs ──▶ server
//!                                              │          describe.rs (\d: psql's catalog queries)
//!                                  format.rs (psql table, \x, csv, tsv), json.rs
//! ```
//!
//! Read first: [`run`] and [`ShellOptions`] here, then `shell.rs`, then `input.rs` (all line
//! handling, as pure functions) and `splitter.rs` (statement boundaries).
//!
//! # What it does
//! - Connects to the URL (`postgresql://user:password@host:port/db` or a `key=value` string;
//!   `PGPASSWORD` is honoured) with cleartext, MD5 or SCRAM-SHA-256 passwords, over TLS with
//!   `sslmode=require` or [`ShellOptions::certs_dir`] (verified against
//!   [`ShellOptions::ca_cert`], the directory's `ca.crt` or `$PGSSLROOTCERT` when given, and
//!   presenting the directory's `client.<user>.crt` when it has one), and runs each statement with the simple query protocol. The protocol client is
//!   its own (`client.rs`) because tokio-postgres's `simple_query` drops command tags and
//!   column types, which psql-like output needs.
//! - Non-interactive modes (`-e`, `-f`, or stdin not a terminal) stop at the first error and
//!   exit with 1; errors print to stderr as `ERROR: message`, `SQLSTATE: code` and optional
//!   `DETAIL:`/`HINT:` lines. A connection that cannot be made or is lost exits with 2.
//! - Interactive mode: persistent history (`$MERIDIAN_SQL_HISTORY`, else
//!   `$HOME/.meridian_sql_history`), statements over several lines up to a `;` outside quotes
//!   and comments (prompt `defaultdb> `, then `        -> `), Ctrl-C clears the pending
//!   statement, Ctrl-D or `\q` leaves, Tab completes SQL keywords, meta-commands and table
//!   names (from `information_schema.tables`, read at start; keywords only when the server
//!   cannot answer that query).
//! - Meta-commands: `\q`, `\?`, `\timing`, `\x`, `\i FILE`, `\o [FILE]`, `\set [NAME
//!   [VALUE]]`, `\unset`, `\echo`, and `\d [NAME]`, `\dt`, `\di`, `\dn`, `\l` (with psql
//!   patterns), which send the catalog queries psql 15 sends; a server without those catalogs
//!   answers with an error, which is printed. Against PostgreSQL 15 and Meridian the output is
//!   psql's, byte for byte, except that `\d NAME` leaves out the sections about features
//!   Meridian lacks (foreign keys, triggers, policies, publications, partitions) and `+` adds
//!   no columns.
//!   Variables are substituted as `:NAME`, `:'NAME'` and `:"NAME"` in statements and
//!   meta-command arguments.
//! - Output as psql's aligned table (`(N rows)` footer, numbers right-aligned), expanded
//!   records (`\x`), CSV, TSV or JSON (an array of objects per result).
//! - `meridian-sql` (`src/bin`) runs the shell on its own.
//!
//! # Not supported yet
//! - `\c`, `\copy`, `\pset`, `\g`, `\watch` and the describe commands other than those
//!   above; they answer "not supported yet".
//! - `sslmode=prefer` (the default) does not try TLS; COPY FROM STDIN,
//!   interactive password prompts, and
//!   cancelling a running statement (Ctrl-C while a statement runs ends the shell).
//! - `-e` and `-f` together run all `-e` strings first, then the file.

mod client;
mod complete;
mod describe;
mod error;
mod format;
mod input;
mod json;
mod shell;
mod splitter;
mod tls;
mod vars;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub use error::{Error, Result};
pub use format::OutputFormat;
pub use splitter::{StatementSplitter, split_statements};

use client::Connection;
use input::LineHandler;
use shell::{Flow, Settings, Shell};

/// What `meridian sql` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOptions {
    /// Where to connect: a `postgresql://` URL or a `key=value` connection string.
    pub url: String,
    /// Input given with `-e` (repeatable), run in order; each may hold several statements.
    pub execute: Vec<String>,
    /// A file of statements given with `-f`, run after the `-e` input.
    pub file: Option<PathBuf>,
    /// Result display; `None` means the aligned table.
    pub format: Option<OutputFormat>,
    /// Print each statement before running it.
    pub echo: bool,
    /// The CA certificate (`ca.crt`) to verify the server with when the URL says
    /// `sslmode=require`; `None` falls back to `$PGSSLROOTCERT`, and without either the
    /// connection is encrypted but the server is not verified (as libpq does).
    pub ca_cert: Option<PathBuf>,
    /// A certificates directory (`meridian cert`), as CockroachDB's `--certs-dir`: the
    /// connection uses TLS unless the URL says `sslmode=disable`, verifies the server with the
    /// directory's `ca.crt` (unless `ca_cert` is given) and presents `client.<user>.crt` when
    /// the directory has one, which logs the user in without a password.
    pub certs_dir: Option<PathBuf>,
}

/// Runs the shell with the process's standard input, output and error, and returns the exit
/// code: 0 on success, 1 when a statement or meta-command failed in a non-interactive mode,
/// 2 when the connection could not be made or was lost.
pub async fn run(opts: ShellOptions) -> anyhow::Result<i32> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let interactive =
        opts.execute.is_empty() && opts.file.is_none() && std::io::stdin().is_terminal();
    run_with_io(opts, interactive, &mut out, &mut err).await
}

/// [`run`] with explicit output streams. With `interactive` false and neither `-e` nor `-f`,
/// statements are read from standard input.
pub async fn run_with_io(
    opts: ShellOptions,
    interactive: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let conn = match Connection::connect(
        &opts.url,
        opts.ca_cert.as_deref(),
        opts.certs_dir.as_deref(),
    )
    .await
    {
        Ok(conn) => conn,
        Err(e) => {
            writeln!(err, "meridian sql: {e}")?;
            return Ok(2);
        }
    };
    let settings = Settings {
        format: opts.format.unwrap_or_default(),
        expanded: false,
        timing: false,
        echo: opts.echo,
    };
    let has_script = !opts.execute.is_empty() || opts.file.is_some();
    let mut shell = Shell::new(conn, settings, interactive && !has_script, out, err);
    let flow = if has_script {
        run_scripts(&mut shell, &opts).await?
    } else if interactive {
        repl(&mut shell).await?
    } else {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text).await?;
        shell.run_script(&text).await?
    };
    Ok(match flow {
        Flow::Continue | Flow::Quit => 0,
        Flow::Exit(code) => code,
    })
}

async fn run_scripts(shell: &mut Shell<'_>, opts: &ShellOptions) -> Result<Flow> {
    for text in &opts.execute {
        let flow = shell.run_script(text).await?;
        if flow != Flow::Continue {
            return Ok(flow);
        }
    }
    if let Some(path) = &opts.file {
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            Err(e) => {
                shell.out().flush()?;
                writeln!(shell.err(), "meridian sql: {}: {e}", path.display())?;
                return Ok(Flow::Exit(1));
            }
        };
        return shell.run_script(&text).await;
    }
    Ok(Flow::Continue)
}

/// The history file: `$MERIDIAN_SQL_HISTORY`, else `$HOME/.meridian_sql_history`.
fn history_path() -> Option<PathBuf> {
    match std::env::var_os("MERIDIAN_SQL_HISTORY") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".meridian_sql_history")),
    }
}

async fn repl(shell: &mut Shell<'_>) -> Result<Flow> {
    use rustyline::error::ReadlineError;

    let history = history_path();
    let mut editor =
        rustyline::Editor::<complete::SqlHelper, rustyline::history::DefaultHistory>::new()?;
    let mut helper = complete::SqlHelper::default();
    helper.set_tables(shell.table_names().await);
    editor.set_helper(Some(helper));
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    let version = shell
        .connection()
        .parameter("server_version")
        .unwrap_or("unknown")
        .to_owned();
    writeln!(
        shell.out(),
        "meridian sql (server {version})\nType \\? for help, \\q to quit.\n"
    )?;
    let mut lines = LineHandler::new();
    let flow = loop {
        let prompt = lines.prompt(shell.connection().database());
        // The line editor blocks on the terminal, so it runs off the async threads.
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(&prompt);
            (editor, line)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        editor = returned;
        match line {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let mut flow = Flow::Continue;
                for action in lines.feed(&line) {
                    flow = shell.perform(action).await?;
                    if flow != Flow::Continue {
                        break;
                    }
                }
                if flow != Flow::Continue {
                    break flow;
                }
            }
            // Ctrl-C drops the statement being typed, as in psql.
            Err(ReadlineError::Interrupted) => lines = LineHandler::new(),
            Err(ReadlineError::Eof) => {
                // Like psql, show how the session ended.
                writeln!(shell.out(), "\\q")?;
                break Flow::Quit;
            }
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(path) = &history
        && let Err(e) = editor.save_history(path)
    {
        writeln!(
            shell.err(),
            "meridian sql: could not save history to {}: {e}",
            path.display()
        )?;
    }
    Ok(flow)
}
