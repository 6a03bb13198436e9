//! `meridian sql` (meridian-shell) against the server: the same output as psql, and the exit
//! codes of scripts.

use meridian_shell::{OutputFormat, ShellOptions, run_with_io};

use crate::fake::{Fake, TestServer};
use crate::psql::psql;

async fn shell(server: &TestServer, opts: ShellOptions) -> (i32, String, String) {
    let opts = ShellOptions {
        url: server.url("defaultdb"),
        ..opts
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with_io(opts, false, &mut out, &mut err).await.unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn execute(statements: &[&str]) -> ShellOptions {
    ShellOptions {
        execute: statements.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn table_output_matches_psql() {
    let server = TestServer::start(Fake::new(false)).await;
    for sql in [
        "select ints",
        "select types",
        "select many 12",
        "insert into t",
        "select who",
    ] {
        let (code, out, err) = shell(&server, execute(&[sql])).await;
        assert_eq!(code, 0, "{sql}: {err}");
        let Some(reference) = psql(&server, sql).await else {
            println!("SKIPPED comparison with psql: psql is not installed");
            assert!(out.contains("(2 rows)") || !out.is_empty());
            continue;
        };
        assert_eq!(out, String::from_utf8_lossy(&reference.stdout), "{sql}");
    }
}

#[tokio::test]
async fn a_failing_script_stops_with_exit_code_1() {
    let server = TestServer::start(Fake::new(false)).await;
    let (code, out, err) =
        shell(&server, execute(&["select ints", "insert; fail", "insert"])).await;
    assert_eq!(code, 1);
    assert!(out.starts_with(" a |  b  \n"), "{out}");
    assert!(out.ends_with("(2 rows)\n\nINSERT 0 3\n"), "{out}");
    assert_eq!(
        err,
        "ERROR: relation \"nope\" does not exist\nSQLSTATE: 42P01\nDETAIL: some detail\nHINT: some hint\n"
    );
    assert_eq!(server.fake.executed(), ["select ints", "insert", "fail"]);
}

#[tokio::test]
async fn files_run_statements_and_meta_commands() {
    let server = TestServer::start(Fake::new(false)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sql");
    std::fs::write(&path, "select\n  ints;\n\\x\nselect ints\n").unwrap();
    let opts = ShellOptions {
        file: Some(path),
        ..Default::default()
    };
    let (code, out, err) = shell(&server, opts).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("(2 rows)\n\nExpanded display is on.\n-[ RECORD 1 ]\na | 1\nb | one\n"),
        "{out}"
    );

    let opts = ShellOptions {
        file: Some(dir.path().join("missing.sql")),
        ..Default::default()
    };
    let (code, _, err) = shell(&server, opts).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("meridian sql: ") && err.contains("missing.sql"),
        "{err}"
    );
}

#[tokio::test]
async fn unsupported_meta_commands_fail_scripts_clearly() {
    let server = TestServer::start(Fake::new(false)).await;
    let (code, _, err) = shell(&server, execute(&["\\dt"])).await;
    assert_eq!(code, 1);
    assert!(err.starts_with("\\dt: not supported yet"), "{err}");
    let (code, _, err) = shell(&server, execute(&["\\bogus"])).await;
    assert_eq!(code, 1);
    assert!(err.starts_with("invalid command \\bogus"), "{err}");
}

#[tokio::test]
async fn csv_tsv_echo_and_timing() {
    let server = TestServer::start(Fake::new(false)).await;
    let opts = ShellOptions {
        format: Some(OutputFormat::Csv),
        echo: true,
        ..execute(&["select ints;"])
    };
    let (code, out, _) = shell(&server, opts).await;
    assert_eq!(code, 0);
    assert_eq!(out, "select ints\na,b\n1,one\n2,\n");

    let opts = ShellOptions {
        format: Some(OutputFormat::Tsv),
        ..execute(&["\\timing on", "select ints"])
    };
    let (code, out, _) = shell(&server, opts).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["Timing is on.", "a\tb", "1\tone", "2\t"]);
    assert!(
        lines[4].starts_with("Time: ") && lines[4].ends_with(" ms"),
        "{out}"
    );
}

#[tokio::test]
async fn a_refused_session_exits_with_2() {
    let server = TestServer::start(Fake::new(false)).await;
    let opts = ShellOptions {
        url: server.url("nodb"),
        execute: vec!["select ints".to_owned()],
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with_io(opts, false, &mut out, &mut err).await.unwrap();
    assert_eq!(code, 2);
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("FATAL: database \"nodb\" does not exist (SQLSTATE 3D000)"),
        "{err}"
    );
}
