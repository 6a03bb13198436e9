//! Exit codes of `run` that need no server.

use meridian_shell::{ShellOptions, run_with_io};

/// A local port nobody listens on: bind it, then release it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn run_capture(opts: ShellOptions) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with_io(opts, false, &mut out, &mut err).await.unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn connection_refused_exits_with_2_and_says_why() {
    let port = closed_port();
    let opts = ShellOptions {
        url: format!("postgresql://anyone@127.0.0.1:{port}/defaultdb"),
        execute: vec!["select 1".to_owned()],
        ..Default::default()
    };
    let (code, out, err) = run_capture(opts).await;
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.starts_with(&format!(
            "meridian sql: could not connect to 127.0.0.1:{port}: "
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_url_exits_with_2() {
    let opts = ShellOptions {
        url: "postgresql://host:notaport/db".to_owned(),
        ..Default::default()
    };
    let (code, _, err) = run_capture(opts).await;
    assert_eq!(code, 2);
    assert!(err.contains("invalid connection URL"), "{err}");
}

#[tokio::test]
async fn tls_to_nowhere_exits_with_2() {
    let port = closed_port();
    let opts = ShellOptions {
        url: format!("postgresql://anyone@127.0.0.1:{port}/db?sslmode=require"),
        ..Default::default()
    };
    let (code, _, err) = run_capture(opts).await;
    assert_eq!(code, 2);
    assert!(err.contains("could not connect"), "{err}");
}
