#![allow(clippy::disallowed_methods)] // Tests measure real time for their deadlines.

//! A real three-process cluster on loopback: `meridian start --join` on each node, then
//! `meridian init`. Every node serves SQL (forwarding to the tablet's leader); killing the
//! leader with SIGKILL loses no acknowledged write, writes continue through the survivors, and
//! the killed node catches up after a restart.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use meridian_server::NodeDialer;
use support::{NodeProcess, free_addr, query_text};

struct Member {
    dir: tempfile::TempDir,
    sql: SocketAddr,
    listen: SocketAddr,
}

fn spawn(m: &Member, join: &str) -> NodeProcess {
    NodeProcess::spawn(m.dir.path(), m.sql, m.listen, &["--join", join])
}

/// Inserts `id` through `client`, retrying errors that say the write did not happen.
async fn insert(client: &tokio_postgres::Client, id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!("INSERT INTO t VALUES ({id}, 'v{id}')"))
        .await
}

async fn ids(client: &tokio_postgres::Client) -> BTreeSet<i64> {
    query_text(client, "SELECT id FROM t")
        .await
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

/// `meridian node ls` against `m`.
fn node_ls(m: &Member) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["node", "ls", "--insecure", "--host", &m.listen.to_string()])
        .output()
        .unwrap()
}

async fn leader_of(members: &[Member]) -> Option<u64> {
    for m in members {
        if let Ok(s) =
            meridian_server::node_status(&m.listen.to_string(), &NodeDialer::plaintext()).await
            && let Some(t) = s.tablets.first()
            && t.leader_id != 0
        {
            return Some(t.leader_id);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster_survives_leader_sigkill() {
    let members: Vec<Member> = (0..3)
        .map(|_| Member {
            dir: tempfile::tempdir().unwrap(),
            sql: free_addr(),
            listen: free_addr(),
        })
        .collect();
    let join = members
        .iter()
        .map(|m| m.listen.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Option<NodeProcess>> =
        members.iter().map(|m| Some(spawn(m, &join))).collect();

    // Initialise through node 1 (retrying until its gRPC port is up).
    let mut initialised = false;
    for _ in 0..100 {
        let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args([
                "init",
                "--insecure",
                "--host",
                &members[0].listen.to_string(),
            ])
            .output()
            .unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("initialised with 3 node(s)"), "{text}");
            initialised = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(initialised, "meridian init never succeeded");
    for n in nodes.iter().flatten() {
        n.wait_ready().await;
    }
    // Node ids follow listen-address order; find each member's id.
    let mut ids_by_member = Vec::new();
    for m in &members {
        ids_by_member.push(
            meridian_server::node_status(&m.listen.to_string(), &NodeDialer::plaintext())
                .await
                .unwrap()
                .node_id,
        );
    }

    let c1 = nodes[0].as_ref().unwrap().connect().await;
    c1.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    let mut acked = BTreeSet::new();
    for id in 0..20 {
        insert(&c1, id).await.unwrap();
        acked.insert(id);
    }
    // Every node answers, whichever holds the leader.
    for n in nodes.iter().flatten() {
        let c = n.connect().await;
        assert_eq!(ids(&c).await, acked);
    }

    // `meridian node ls` lists the three members, all live.
    let ls = node_ls(&members[0]);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let text = String::from_utf8_lossy(&ls.stdout);
    assert_eq!(text.matches(" live ").count(), 3, "{text}");

    // Kill the leader's process.
    let leader = leader_of(&members).await.expect("a leader is known");
    let victim = ids_by_member.iter().position(|id| *id == leader).unwrap();
    nodes[victim].take().unwrap().kill();
    // Now one member does not answer, and `node ls` says so with its exit code.
    let survivor_ls = node_ls(&members[(victim + 1) % 3]);
    let text = String::from_utf8_lossy(&survivor_ls.stdout);
    assert!(!survivor_ls.status.success(), "{text}");
    assert_eq!(text.matches(" unreachable ").count(), 1, "{text}");
    assert_eq!(text.matches(" live ").count(), 2, "{text}");
    let survivor = (victim + 1) % 3;
    let c = nodes[survivor].as_ref().unwrap().connect().await;
    // Writes continue through a survivor once a new leader is elected.
    let mut next = 100;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut after_failover = 0;
    while after_failover < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes did not resume after the leader died"
        );
        match insert(&c, next).await {
            Ok(()) => {
                acked.insert(next);
                after_failover += 1;
            }
            // Ambiguous outcomes (40003) are possible while the old leader dies; they are not
            // acknowledged, so the checker below tolerates either outcome for them.
            Err(e) => eprintln!("insert {next} during failover: {e}"),
        }
        next += 1;
    }
    let present = ids(&c).await;
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");

    // The killed node restarts from its data directory and catches up.
    let restarted = spawn(&members[victim], &join);
    restarted.wait_ready().await;
    let cr = restarted.connect().await;
    assert!(ids(&cr).await.is_superset(&acked));
    let caught_up = async {
        loop {
            let s = meridian_server::node_status(
                &members[victim].listen.to_string(),
                &NodeDialer::plaintext(),
            )
            .await;
            let other = meridian_server::node_status(
                &members[survivor].listen.to_string(),
                &NodeDialer::plaintext(),
            )
            .await;
            if let (Ok(s), Ok(o)) = (s, other)
                && s.tablets[0].applied_index >= o.tablets[0].commit_index
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), caught_up)
        .await
        .expect("restarted node caught up");
    nodes[victim] = Some(restarted);
    for n in nodes.into_iter().flatten() {
        n.stop();
    }
}
