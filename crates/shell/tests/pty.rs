//! The interactive shell through a pseudo-terminal: prompts, multi-line input, tab completion,
//! meta-commands, Ctrl-D and history, against a tiny PostgreSQL-protocol server in a thread.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use rexpect::session::{PtySession, spawn_command};

const TIMEOUT_MS: u64 = 20_000;

/// Reads one message body after a type byte (`typed`) or a startup packet (untyped).
fn read_message(stream: &mut TcpStream, typed: bool) -> Option<(u8, Vec<u8>)> {
    let mut tag = [0u8; 1];
    if typed {
        stream.read_exact(&mut tag).ok()?;
    }
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).checked_sub(4)?];
    stream.read_exact(&mut body).ok()?;
    Some((tag[0], body))
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// RowDescription, DataRows and CommandComplete for one text or int4 column.
fn rows(column: &str, type_oid: u32, values: &[&str]) -> Vec<u8> {
    let mut desc = 1i16.to_be_bytes().to_vec();
    desc.extend(cstr(column));
    desc.extend(0u32.to_be_bytes());
    desc.extend(0i16.to_be_bytes());
    desc.extend(type_oid.to_be_bytes());
    desc.extend((-1i16).to_be_bytes());
    desc.extend((-1i32).to_be_bytes());
    desc.extend(0i16.to_be_bytes());
    let mut out = message(b'T', &desc);
    for value in values {
        let mut row = 1i16.to_be_bytes().to_vec();
        row.extend((value.len() as i32).to_be_bytes());
        row.extend(value.as_bytes());
        out.extend(message(b'D', &row));
    }
    out.extend(message(b'C', &cstr(&format!("SELECT {}", values.len()))));
    out
}

fn serve(mut stream: TcpStream) {
    let Some((_, startup)) = read_message(&mut stream, false) else {
        return;
    };
    if startup.len() == 4 {
        // SSLRequest: no TLS here.
        let _ = stream.write_all(b"N");
        let Some((_, body)) = read_message(&mut stream, false) else {
            return;
        };
        drop(body);
    }
    let mut hello = message(b'R', &0i32.to_be_bytes());
    let mut status = cstr("server_version");
    status.extend(cstr("15.0 (pty test)"));
    hello.extend(message(b'S', &status));
    hello.extend(message(b'Z', b"I"));
    let _ = stream.write_all(&hello);
    while let Some((tag, body)) = read_message(&mut stream, true) {
        if tag != b'Q' {
            return;
        }
        let query = String::from_utf8_lossy(&body[..body.len().saturating_sub(1)]);
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut reply = if query.contains("information_schema.tables") {
            rows("table_name", 25, &["orders", "users"])
        } else if query.trim_end_matches(';').trim() == "select 1" {
            rows("?column?", 23, &["1"])
        } else {
            let mut err = Vec::new();
            for (field, value) in [(b'S', "ERROR"), (b'C', "42601"), (b'M', "syntax error")] {
                err.push(field);
                err.extend(cstr(value));
            }
            err.push(0);
            message(b'E', &err)
        };
        reply.extend(message(b'Z', b"I"));
        let _ = stream.write_all(&reply);
    }
}

/// A server on a free local port, serving each connection in its own thread.
fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn shell(port: u16, history: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian-sql"));
    cmd.arg(format!(
        "postgresql://tester@127.0.0.1:{port}/defaultdb?connect_timeout=10"
    ))
    .env("MERIDIAN_SQL_HISTORY", history)
    .env("TERM", "vt100");
    let mut session = spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
    session
        .exp_string("meridian sql (server 15.0 (pty test))")
        .unwrap();
    session.exp_string("defaultdb> ").unwrap();
    session
}

#[test]
fn statements_run_over_several_lines_and_ctrl_d_quits() {
    let port = start_server();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut p = shell(port, &history);
    p.send_line("select 1;").unwrap();
    p.exp_string("(1 row)").unwrap();
    p.exp_string("defaultdb> ").unwrap();
    p.send_line("select").unwrap();
    p.exp_string("        -> ").unwrap();
    p.send_line("1;").unwrap();
    p.exp_string("(1 row)").unwrap();
    p.send_line("bogus;").unwrap();
    p.exp_string("ERROR: syntax error").unwrap();
    // Errors do not end an interactive session.
    p.exp_string("defaultdb> ").unwrap();
    p.send_line("\\x").unwrap();
    p.exp_string("Expanded display is on.").unwrap();
    p.send_line("select 1;").unwrap();
    p.exp_string("-[ RECORD 1 ]").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("\\q").unwrap();
    p.exp_eof().unwrap();
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("select 1;"), "{saved}");
    assert!(saved.contains("\\x"), "{saved}");
}

#[test]
fn tab_completes_keywords_tables_and_meta_commands() {
    let port = start_server();
    let dir = tempfile::tempdir().unwrap();
    let mut p = shell(port, &dir.path().join("history"));
    // "sel" + Tab completes to "select"; the statement then runs.
    p.send("sel\t").unwrap();
    p.flush().unwrap();
    p.exp_string("select").unwrap();
    p.send_line(" 1;").unwrap();
    p.exp_string("(1 row)").unwrap();
    p.exp_string("defaultdb> ").unwrap();
    // A table name from information_schema.tables.
    p.send("select * from ord\t").unwrap();
    p.flush().unwrap();
    p.exp_string("orders").unwrap();
    p.send_line(";").unwrap();
    p.exp_string("ERROR: syntax error").unwrap();
    p.exp_string("defaultdb> ").unwrap();
    // A meta-command.
    p.send("\\tim\t").unwrap();
    p.flush().unwrap();
    p.exp_string("\\timing").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Timing is on.").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_drops_the_statement_being_typed() {
    let port = start_server();
    let dir = tempfile::tempdir().unwrap();
    let mut p = shell(port, &dir.path().join("history"));
    p.send_line("bogus").unwrap();
    p.exp_string("        -> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("defaultdb> ").unwrap();
    // Had "bogus" survived, this would be a syntax error.
    p.send_line("select 1;").unwrap();
    p.exp_string("(1 row)").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}
