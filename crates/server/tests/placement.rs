//! The placement driver on real in-process clusters (three replicas per tablet).
//!
//! - Five nodes lose one for longer than the dead-node timeout: its replicas are rebuilt on the
//!   other nodes, every tablet is back to three live replicas, no acknowledged row is lost, and
//!   the cluster then survives losing a second node. The dead node, restarted, deletes the
//!   replicas it no longer owns.
//! - A node started after `init` joins by itself, takes its share of the replicas, serves SQL
//!   and keeps its id across a restart; join requests are idempotent per token.
//! - Four nodes: one is decommissioned (every replica moves off it, and it can then stop
//!   without any tablet noticing), another is drained (it hands over every leadership).
//! - Leaderships spread over the nodes by count, and a tablet whose requests all come through
//!   one node's SQL gateway moves its leadership there and keeps it.

use std::collections::BTreeSet;
use std::time::Duration;

use meridian_server::LocalCluster;

mod support;
use support::connect;

/// The tests of this file run one at a time: each runs a cluster of four or five nodes, and two
/// at once on a small machine slow each other past the timeouts they wait with.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The replica node ids of every range, from SHOW RANGES (empty if it failed).
async fn ranges(c: &tokio_postgres::Client) -> Vec<BTreeSet<u64>> {
    members(c).await.into_values().collect()
}

/// Every range's id and replica node ids, from SHOW RANGES (empty if it failed).
async fn members(c: &tokio_postgres::Client) -> std::collections::BTreeMap<u64, BTreeSet<u64>> {
    let Ok(messages) = c.simple_query("SHOW RANGES").await else {
        return Default::default();
    };
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                let id = row.get("range_id")?.parse().expect("a range id");
                let replicas = row
                    .get("replicas")?
                    .trim_matches(|ch| ch == '{' || ch == '}')
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("a node id"))
                    .collect();
                Some((id, replicas))
            }
            _ => None,
        })
        .collect()
}

async fn ids(c: &tokio_postgres::Client) -> BTreeSet<i64> {
    c.query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Inserts rows `ids`, retrying what a client retries (serialization failures, ambiguous
/// commits, tablets moving) until acknowledged; records the acknowledged ones.
async fn insert(c: &tokio_postgres::Client, acked: &mut BTreeSet<i64>, ids: std::ops::Range<i64>) {
    for id in ids {
        let mut attempts = 0;
        loop {
            match c
                .execute(
                    "INSERT INTO t VALUES ($1, 'x') ON CONFLICT DO NOTHING",
                    &[&id],
                )
                .await
            {
                Ok(_) => break,
                Err(e) if attempts < 50 => {
                    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                    assert!(
                        matches!(code.as_str(), "40001" | "40003" | "58000"),
                        "insert {id}: {e}"
                    );
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("insert {id} kept failing: {e:?}"),
            }
        }
        acked.insert(id);
    }
}

/// Creates table `t` with rows 0..60 in three tablets; returns the acknowledged ids.
async fn load_table(c: &tokio_postgres::Client) -> BTreeSet<i64> {
    c.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    let mut acked = BTreeSet::new();
    insert(c, &mut acked, 0..60).await;
    c.batch_execute("ALTER TABLE t SPLIT AT VALUES (20), (40)")
        .await
        .unwrap();
    acked
}

/// `n` nodes with fast liveness and `dead_after` as the dead-node timeout; the node positions by
/// id; a SQL client of node 1.
async fn start(
    n: usize,
    dead_after: Duration,
) -> (
    tempfile::TempDir,
    LocalCluster,
    std::collections::BTreeMap<u64, usize>,
    tokio_postgres::Client,
) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), n, |_, c| {
        c.dead_node_timeout = dead_after;
        c.liveness_ttl = Duration::from_millis(600);
    })
    .await
    .unwrap();
    let position: std::collections::BTreeMap<u64, usize> = (0..cluster.len())
        .map(|i| (cluster.node_id(i), i))
        .collect();
    let c = connect(cluster.node(position[&1]).sql_addr()).await;
    (dir, cluster, position, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_and_its_tablets_return_to_full_replication() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // MERIDIAN_TEST_LOG=meridian_tablet=info (a tracing filter) shows the nodes' logs.
    if let Ok(filter) = std::env::var("MERIDIAN_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    // Node 1 is the gateway throughout; the placement driver spreads the replicas over all five
    // nodes from the start.
    let (_dir, mut cluster, position, c) = start(5, Duration::from_secs(2)).await;
    let mut acked = load_table(&c).await;
    let before = ranges(&c).await;
    assert_eq!(before.len(), 3, "{before:?}");
    // (The placement driver may be moving a replica: a tablet briefly has a fourth.)
    assert!(before.iter().all(|r| r.len() >= 3), "{before:?}");

    // The node holding the most replicas (not the gateway) dies; writes go on meanwhile.
    let holds =
        |ranges: &[BTreeSet<u64>], id: u64| ranges.iter().filter(|r| r.contains(&id)).count();
    let dead = (2..=5).max_by_key(|id| holds(&before, *id)).unwrap();
    cluster.stop(position[&dead]).await;
    insert(&c, &mut acked, 100..110).await;
    let live: BTreeSet<u64> = (1..=5).filter(|id| *id != dead).collect();
    let repaired = async {
        loop {
            let now = ranges(&c).await;
            tracing::info!(?now, "ranges");
            if now.len() == before.len() && now.iter().all(|r| r.len() == 3 && r.is_subset(&live)) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // Usually seconds; a move the driver was making when the node died can leave a learner that
    // is only cleaned up after three request deadlines (`RangeSettings::learner_patience`).
    let after = tokio::time::timeout(Duration::from_secs(150), repaired)
        .await
        .expect("every tablet is back to three replicas, none on the dead node");

    // A second node goes (again not the gateway): every tablet keeps a majority.
    let second = (2..=5)
        .filter(|id| *id != dead)
        .max_by_key(|id| holds(&after, *id))
        .unwrap();
    cluster.stop(position[&second]).await;
    insert(&c, &mut acked, 200..210).await;
    let present = ids(&c).await;
    assert!(
        acked.is_subset(&present),
        "lost: {:?}",
        acked.difference(&present).collect::<Vec<_>>()
    );

    // The dead node comes back and serves as a gateway (with the current data). The replicas
    // it had were removed while it was away: it deletes them (the placement driver may give
    // it new ones, which the meta records list).
    let victim = position[&dead];
    cluster.restart(victim).await.unwrap();
    let cv = connect(cluster.node(victim).sql_addr()).await;
    assert_eq!(ids(&cv).await, present);
    let collected = async {
        loop {
            let listed = members(&c).await;
            let stale = cluster.node(victim).replicas().iter().any(|r| {
                listed
                    .get(&r.tablet_id())
                    .is_none_or(|members| !members.contains(&dead))
            });
            if !listed.is_empty() && !stale {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collected)
        .await
        .expect("the restarted node deletes the replicas it lost");
    cluster.shutdown().await;
}

/// The HTTP status of `GET /ready` at `addr`.
async fn ready_status(addr: std::net::SocketAddr) -> u16 {
    support::http_status(&support::http_get(addr, "/ready").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_node_sheds_its_replicas_and_a_drained_one_its_leaderships() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, mut cluster, position, c) = start(4, Duration::from_secs(300)).await;
    let gateway = cluster.node(position[&1]).listen_addr().to_string();
    let plaintext = meridian_server::NodeDialer::plaintext();
    let mut acked = load_table(&c).await;

    // Decommission node 2 through node 1: every tablet ends up on 1, 3 and 4.
    let leaving = 2;
    let shed = async {
        loop {
            let r = meridian_server::decommission_node(&gateway, &plaintext, leaving, true)
                .await
                .unwrap();
            assert!(r.decommissioning);
            if r.replicas == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(150), shed)
        .await
        .expect("every replica leaves the decommissioned node");
    let staying: BTreeSet<u64> = [1, 3, 4].into();
    let now = ranges(&c).await;
    assert!(
        now.iter().all(|r| r.len() == 3 && r.is_subset(&staying)),
        "{now:?}"
    );
    // It can stop now without any tablet noticing.
    cluster.stop(position[&leaving]).await;
    insert(&c, &mut acked, 100..110).await;
    // An unknown node cannot be decommissioned.
    assert!(
        meridian_server::decommission_node(&gateway, &plaintext, 99, true)
            .await
            .is_err()
    );

    // Drain node 3: it hands every leadership over and reports itself not ready.
    let drained = cluster.node(position[&3]);
    let r = meridian_server::drain_node(&drained.listen_addr().to_string(), &plaintext)
        .await
        .unwrap();
    assert_eq!(r.leaders, 0);
    assert!(drained.replicas().iter().all(|r| !r.is_leader()));
    assert_eq!(ready_status(drained.http_addr()).await, 503);
    assert_eq!(
        ready_status(cluster.node(position[&1]).http_addr()).await,
        200
    );
    // Writes go on, led elsewhere; the drained node still serves SQL as a gateway.
    insert(&c, &mut acked, 200..210).await;
    let via_drained = connect(drained.sql_addr()).await;
    let present = ids(&via_drained).await;
    assert!(
        acked.is_subset(&present),
        "lost: {:?}",
        acked.difference(&present).collect::<Vec<_>>()
    );
    assert!(drained.replicas().iter().all(|r| !r.is_leader()));
    cluster.shutdown().await;
}

/// Asks the node at `addr` to let a node with `listen_addr` and `token` join; the id it got.
async fn ask_to_join(
    addr: std::net::SocketAddr,
    listen_addr: &str,
    token: &str,
) -> Result<u64, tonic::Status> {
    let mut client = meridian_proto::v1::node_client::NodeClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let r = client
        .join(meridian_proto::v1::JoinRequest {
            listen_addr: listen_addr.into(),
            sql_addr: String::new(),
            region: String::new(),
            zone: String::new(),
            token: token.into(),
        })
        .await?;
    Ok(r.into_inner().node_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_after_init_joins_takes_replicas_and_serves() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, mut cluster, position, c) = start(3, Duration::from_secs(300)).await;
    let mut acked = load_table(&c).await;

    // A fourth node, started with the same --join list and never initialised, joins by itself
    // and gets the next id.
    let added = cluster.add_node(|_| {}).await.unwrap();
    assert_eq!(cluster.node_id(added), 4);
    let gateway = cluster.node(position[&1]).listen_addr();
    let listed = async {
        loop {
            let status = meridian_server::node_status(
                &gateway.to_string(),
                &meridian_server::NodeDialer::plaintext(),
            )
            .await
            .unwrap();
            if status.members.iter().any(|m| m.node_id == 4) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), listed)
        .await
        .expect("the other nodes list the new member");

    // The placement driver moves replicas onto it until no node holds two more than another
    // (nine replicas of three tablets: two on the new node), every tablet keeping three.
    let balanced = async {
        loop {
            let now = ranges(&c).await;
            let on_new = now.iter().filter(|r| r.contains(&4)).count();
            if now.len() == 3 && on_new == 2 && now.iter().all(|r| r.len() == 3) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(150), balanced)
        .await
        .expect("the new node takes its share of the replicas");

    // It serves SQL with every acknowledged row, and takes writes.
    let c4 = connect(cluster.node(added).sql_addr()).await;
    insert(&c4, &mut acked, 100..110).await;
    assert_eq!(ids(&c4).await, acked);

    // Restarted on its data directory, it is node 4 again.
    cluster.stop(added).await;
    cluster.restart(added).await.unwrap();
    assert_eq!(cluster.node_id(added), 4);
    let c4 = connect(cluster.node(added).sql_addr()).await;
    assert_eq!(ids(&c4).await, acked);

    // Asking again with the same token (an answer lost) gives the same id; another token a new
    // one; the address of a member that has run, or a request without a token, is refused.
    let via = cluster.node(position[&2]).listen_addr();
    let first = ask_to_join(via, "127.0.0.1:1", "token-a").await.unwrap();
    assert_eq!(first, 5);
    assert_eq!(ask_to_join(via, "127.0.0.1:1", "token-a").await.unwrap(), 5);
    assert_eq!(ask_to_join(via, "127.0.0.1:2", "token-b").await.unwrap(), 6);
    let member_addr = cluster.node(position[&3]).listen_addr().to_string();
    let refused = ask_to_join(via, &member_addr, "token-c").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    let refused = ask_to_join(via, "127.0.0.1:3", "").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderships_spread_over_the_nodes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, cluster, _position, c) = start(3, Duration::from_secs(300)).await;
    let mut acked = load_table(&c).await;
    // Seven tablets, split from the root tablet, whose leader leads each half of a split.
    c.batch_execute("ALTER TABLE t SPLIT AT VALUES (10), (30), (50), (55)")
        .await
        .unwrap();
    let counts = || -> Vec<usize> {
        (0..cluster.len())
            .map(|i| {
                cluster
                    .node(i)
                    .replicas()
                    .iter()
                    .filter(|r| r.is_leader())
                    .count()
            })
            .collect()
    };
    // Each node ends up leading two or three (within one of each other).
    let spread = async {
        loop {
            let now = counts();
            if now.iter().sum::<usize>() == 7 && now.iter().all(|n| (2..=3).contains(n)) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let now = tokio::time::timeout(Duration::from_secs(60), spread)
        .await
        .unwrap_or_else(|_| panic!("leaderships never spread: {:?}", counts()));
    tracing::info!(?now, "leaders per node");
    // Writes and reads go on.
    insert(&c, &mut acked, 100..110).await;
    assert_eq!(ids(&c).await, acked);
    cluster.shutdown().await;
}

/// The tablet holding row `id` of `t`, from SHOW RANGES FROM TABLE (bounds shown as `/<id>`
/// inside the table).
async fn tablet_of_row(c: &tokio_postgres::Client, id: i64) -> u64 {
    let ranges = c.query("SHOW RANGES FROM TABLE t", &[]).await.unwrap();
    let bound = |text: Option<&str>, outside: i64| match text.and_then(|t| t.strip_prefix('/')) {
        Some(id) => id.parse::<i64>().expect("a row id"),
        None => outside,
    };
    let row = ranges
        .iter()
        .find(|r| {
            bound(r.get("start_key"), i64::MIN) <= id && id < bound(r.get("end_key"), i64::MAX)
        })
        .expect("a range holds the row");
    row.get::<_, i64>("range_id") as u64
}

/// The position of the node whose replica of `tablet` leads it, if any does.
fn leader_of(cluster: &LocalCluster, tablet: u64) -> Option<usize> {
    (0..cluster.len()).find(|i| {
        cluster
            .node(*i)
            .replicas()
            .iter()
            .any(|r| r.tablet_id() == tablet && r.is_leader())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leadership_follows_the_gateway_its_requests_come_from() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_dir, cluster, _position, c) = start(3, Duration::from_secs(300)).await;
    let _acked = load_table(&c).await;
    let tablet = tablet_of_row(&c, 45).await;
    let leader = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(i) = leader_of(&cluster, tablet) {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the tablet has a leader");
    // Every request for the tablet comes through another node's gateway.
    let gateway = (leader + 1) % cluster.len();
    let g = connect(cluster.node(gateway).sql_addr()).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match g
                    .execute("UPDATE t SET v = $1 WHERE id = 45", &[&format!("v{n}")])
                    .await
                {
                    Ok(_) => n += 1,
                    // Leaderships move under the load; a client retries.
                    Err(e) => {
                        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                        assert!(
                            matches!(code.as_str(), "40001" | "40003" | "58000"),
                            "update: {e}"
                        );
                    }
                }
            }
            (g, n)
        })
    };
    let moved = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if leader_of(&cluster, tablet) == Some(gateway) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        moved.is_ok(),
        "the leadership stayed at position {:?}, not at the gateway {gateway}",
        leader_of(&cluster, tablet)
    );
    // It stays there while the load goes on: leader-count balancing does not take it away.
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            leader_of(&cluster, tablet),
            Some(gateway),
            "the leadership moved away"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (g, n) = load.await.unwrap();
    assert!(n > 0);
    let v: String = g
        .query_one("SELECT v FROM t WHERE id = 45", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        v,
        format!("v{}", n - 1),
        "the last acknowledged update is read back"
    );
    cluster.shutdown().await;
}
