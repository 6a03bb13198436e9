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
    let (code, _, err) = shell(&server, execute(&["\\du"])).await;
    assert_eq!(code, 1);
    assert!(err.starts_with("\\du: not supported yet"), "{err}");
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

#[tokio::test]
async fn describe_commands_send_psqls_queries_and_print_the_servers_error() {
    let server = TestServer::start(Fake::new(false)).await;
    for command in ["\\dt", "\\di", "\\l", "\\dn", "\\d", "\\d t", "\\dt+ foo*"] {
        let (code, out, err) = shell(&server, execute(&[command])).await;
        assert_eq!(code, 1, "{command}");
        assert!(out.is_empty(), "{command}: {out}");
        assert!(
            err.starts_with("ERROR: syntax error at or near \"select ")
                && err.contains("SQLSTATE: 42601"),
            "{command}: {err}"
        );
    }
    let executed = server.fake.executed();
    assert!(
        executed[0].starts_with("select n.nspname as \"schema\", c.relname as \"name\""),
        "{executed:?}"
    );
    assert!(
        executed[2].starts_with("select d.datname as \"name\""),
        "{executed:?}"
    );
    assert!(executed[5].contains("'^(t)$'"), "{executed:?}");
    assert!(executed[6].contains("'^(foo.*)$'"), "{executed:?}");
}

#[tokio::test]
async fn include_output_set_and_echo() {
    let server = TestServer::start(Fake::new(false)).await;
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner.sql");
    let results = dir.path().join("results.txt");
    std::fs::write(&inner, "\\echo in :where\nselect :what;\n").unwrap();
    let main = dir.path().join("main.sql");
    std::fs::write(
        &main,
        format!(
            "\\set what ints\n\\set where 'the file'\n\\set\n\\o {}\n\\i {}\ninsert x;\n\\o\n\\echo back :what ':what'\nselect ints;\n",
            results.display(),
            inner.display()
        ),
    )
    .unwrap();
    let opts = ShellOptions {
        file: Some(main),
        ..Default::default()
    };
    let (code, out, err) = shell(&server, opts).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "what = 'ints'\nwhere = 'the file'\nin the file\nback ints :what\n a |  b  \n---+-----\n 1 | one\n 2 | \n(2 rows)\n\n"
    );
    assert_eq!(
        std::fs::read_to_string(&results).unwrap(),
        " a |  b  \n---+-----\n 1 | one\n 2 | \n(2 rows)\n\nINSERT 0 3\n"
    );
    assert_eq!(
        server.fake.executed(),
        ["select ints", "insert x", "select ints"]
    );

    // A missing file fails the script; a file including itself stops at the nesting limit.
    let (code, _, err) = shell(&server, execute(&["\\i /nonexistent/x.sql"])).await;
    assert_eq!(code, 1);
    assert!(err.starts_with("/nonexistent/x.sql: "), "{err}");
    let looping = dir.path().join("loop.sql");
    std::fs::write(&looping, format!("\\i {}\n", looping.display())).unwrap();
    let (code, _, err) = shell(&server, execute(&[&format!("\\i {}", looping.display())])).await;
    assert_eq!(code, 1);
    assert!(err.contains("nested more than 16 deep"), "{err}");
}

#[tokio::test]
async fn json_output() {
    let server = TestServer::start(Fake::new(false)).await;
    let opts = ShellOptions {
        format: Some(OutputFormat::Json),
        ..execute(&["select ints", "select types", "insert x"])
    };
    let (code, out, err) = shell(&server, opts).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "[\n  {\"a\": 1, \"b\": \"one\"},\n  {\"a\": 2, \"b\": null}\n]\n\
         [\n  {\"bool\": true, \"int2\": -7, \"int8\": 1099511627776, \"float8\": 2.5, \
         \"text\": \"héllo\", \"ts\": \"2024-02-29 12:34:56.789\"}\n]\nINSERT 0 3\n"
    );
}
