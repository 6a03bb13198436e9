#![allow(clippy::disallowed_methods)] // Tests measure real time for their deadlines.

//! A secure three-process cluster driven by the command line: certificates from `meridian
//! cert`, `meridian start --certs-dir` on each node, `meridian init` and `meridian node ls`
//! with `--certs-dir` (as root), SQL through `meridian sql --certs-dir`. Plaintext commands
//! are refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{NodeProcess, free_addr};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env("MERIDIAN_LOG", "warn")
        .output()
        .expect("run meridian")
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "meridian failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` until it succeeds (the nodes are still starting), for 30 seconds at most.
async fn eventually(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = meridian(args);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `meridian sql` over TLS as root (its client certificate) against `sql_addr`.
fn sql_args<'a>(certs: &'a str, url: &'a str, statements: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sql", "--certs-dir", certs, "--url", url, "--format", "csv"];
    for s in statements {
        args.extend(["-e", s]);
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cluster_is_formed_and_inspected_with_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs_path = dir.path().join("certs");
    let certs = certs_path.to_str().unwrap();
    for cmd in [
        vec!["cert", "create-ca", "--certs-dir", certs],
        vec!["cert", "create-node", "127.0.0.1", "--certs-dir", certs],
        vec!["cert", "create-client", "root", "--certs-dir", certs],
    ] {
        text(&meridian(&cmd));
    }

    let members: Vec<_> = (0..3).map(|_| (free_addr(), free_addr())).collect();
    let join = members
        .iter()
        .map(|(_, listen)| listen.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let _nodes: Vec<NodeProcess> = members
        .iter()
        .enumerate()
        .map(|(i, &(sql, listen))| {
            let data = dir.path().join(format!("node-{i}"));
            NodeProcess::spawn_secure(&data, sql, listen, Path::new(certs), &["--join", &join])
        })
        .collect();
    let host = members[0].1.to_string();

    let init = eventually(&["init", "--certs-dir", certs, "--host", &host]).await;
    assert!(text(&init).contains("initialised with 3 node(s)"));

    // Plaintext gRPC gets no answer from a secure node.
    let plain = meridian(&["node", "status", "--insecure", "--host", &host]);
    assert!(!plain.status.success(), "{}", text(&plain));
    let ls = eventually(&["node", "ls", "--certs-dir", certs, "--host", &host]).await;
    assert_eq!(text(&ls).matches(" live ").count(), 3, "{}", text(&ls));

    // Write through node 1, read through node 3, over TLS.
    let url = |i: usize| format!("postgresql://root@{}/defaultdb", members[i].0);
    let (first, third) = (url(0), url(2));
    for url in [&first, &third] {
        text(&eventually(&sql_args(certs, url, &["SELECT 1"])).await);
    }
    let write = meridian(&sql_args(
        certs,
        &first,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
            "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        ],
    ));
    text(&write);
    let read = meridian(&sql_args(certs, &third, &["SELECT v FROM t ORDER BY id"]));
    assert_eq!(text(&read).lines().collect::<Vec<_>>(), ["v", "one", "two"]);
}
