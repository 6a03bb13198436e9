//! Transactions much larger than the piece size: shipped to each tablet in many Raft entries
//! ahead of their prepare and applied piece by piece after their decision (`txn.rs`), yet
//! atomic, never seen in part, and all-or-nothing through leader changes, a stopped node and a
//! vanished gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{KvEngine, MemEngine};
use meridian_tablet::metrics::TXN_PIECES_STAGED;
use meridian_tablet::range::{ROOT_TABLET, USER_START};
use meridian_tablet::{
    Condition, KvClient, LocalStores, Mutation, RangeClient, RangeSettings, Replica, ReplicaConfig,
    Span, TabletOp, WriteRequest,
};

mod common;

use common::{eventually, key, put};

const MAX_EPSILON: Duration = Duration::from_millis(5);

/// Small pieces, so that a transaction of a few hundred rows takes dozens of them.
const PIECE: u64 = 1024;

fn clock() -> Arc<TrueTime> {
    common::clock(MAX_EPSILON)
}

fn settings() -> RangeSettings {
    RangeSettings {
        split_bytes: u64::MAX,
        // The tablets these tests split stay apart.
        merge_bytes: 0,
        recovery_ticks: 20,
        interval: Duration::from_millis(20),
        txn_piece_bytes: PIECE,
        ..RangeSettings::default()
    }
}

async fn start_with(config: ReplicaConfig) -> LocalStores {
    let engines: Vec<Arc<dyn KvEngine>> = (0..3)
        .map(|_| Arc::new(MemEngine::new()) as Arc<dyn KvEngine>)
        .collect();
    let stores = LocalStores::start(config, engines, clock(), settings()).unwrap();
    stores.ready().await.unwrap();
    stores
}

async fn start() -> LocalStores {
    start_with(common::config(ROOT_TABLET, MAX_EPSILON)).await
}

/// A value of about 40 bytes naming its version.
fn value(version: &str, i: usize) -> String {
    format!("{version}-{i:05}-{}", "x".repeat(24))
}

/// Rows `0..n` at `version`, as one transaction that read each row first (as an INSERT checks
/// its keys) at `read_ts`.
fn big_write(n: usize, version: &str, read_ts: Option<Timestamp>) -> WriteRequest {
    WriteRequest {
        read_ts,
        read_spans: (0..n)
            .map(|i| Span {
                start: key(i),
                end: None,
            })
            .collect(),
        mutations: (0..n).map(|i| put(key(i), &value(version, i))).collect(),
        ..Default::default()
    }
}

/// Every row at a fresh snapshot.
async fn rows(kv: &dyn KvClient) -> Vec<(Vec<u8>, Vec<u8>)> {
    let ts = kv.read_ts().await.unwrap();
    kv.scan(USER_START, b"/t/2", ts, None).await.unwrap()
}

/// The one version every row is at (panics if the rows hold a mix: part of a transaction).
fn version_of(rows: &[(Vec<u8>, Vec<u8>)], n: usize) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    assert_eq!(rows.len(), n, "a reader saw {} of {n} rows", rows.len());
    let version = |v: &[u8]| {
        String::from_utf8_lossy(v)
            .split('-')
            .next()
            .unwrap()
            .to_string()
    };
    let first = version(&rows[0].1);
    for (k, v) in rows {
        assert_eq!(
            version(v),
            first,
            "a reader saw part of a transaction at {}",
            String::from_utf8_lossy(k)
        );
    }
    Some(first)
}

/// The tablets take another large write of the `n` rows after a disturbance, and every row
/// reads it.
async fn writes_on(kv: &dyn KvClient, n: usize) {
    kv.write(big_write(n, "v3", None)).await.unwrap();
    assert_eq!(version_of(&rows(kv).await, n).as_deref(), Some("v3"));
}

/// Readers that scan every row at fresh snapshots until told to stop, each checking that it
/// sees one whole transaction or none; returns the versions they saw.
fn spawn_readers(
    kv: Arc<RangeClient>,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Option<String>>>> {
    (0..2)
        .map(|_| {
            let (kv, stop) = (kv.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // A read may fail while leadership moves; it must never see part.
                    if let Ok(ts) = kv.read_ts().await
                        && let Ok(rows) = kv.scan(USER_START, b"/t/2", ts, None).await
                    {
                        let v = version_of(&rows, n);
                        if seen.last() != Some(&v) {
                            seen.push(v);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen
            })
        })
        .collect()
}

async fn stop_readers(
    stop: &AtomicBool,
    readers: Vec<tokio::task::JoinHandle<Vec<Option<String>>>>,
) -> Vec<Option<String>> {
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.expect("a reader saw part of a transaction"));
    }
    all
}

/// The leaders on running stores.
fn leaders(stores: &LocalStores) -> Vec<Replica> {
    stores
        .stores()
        .iter()
        .filter(|s| !s.is_stopped())
        .flat_map(|s| s.replicas())
        .filter(|r| r.is_leader())
        .collect()
}

/// The leader of `tablet`, once it has one.
async fn leader_of(stores: &LocalStores, tablet: u64) -> Replica {
    eventually(
        "the tablet has a leader",
        Duration::from_secs(10),
        async || leaders(stores).iter().any(|r| r.tablet_id() == tablet),
    )
    .await;
    leaders(stores)
        .into_iter()
        .find(|r| r.tablet_id() == tablet)
        .unwrap()
}

/// Whether nothing is prepared or staged on any running replica.
fn no_transaction_left(stores: &LocalStores) -> bool {
    stores
        .stores()
        .iter()
        .filter(|s| !s.is_stopped())
        .flat_map(|s| s.replicas())
        .all(|r| r.prepared_count() == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_much_larger_than_a_piece_commits_in_one_tablet() {
    let stores = start().await;
    let kv = stores.client();
    let n = 400;
    let before = TXN_PIECES_STAGED.get();
    let snap = kv.read_ts().await.unwrap();
    let mut req = big_write(n, "v1", Some(snap));
    // Conditions travel in the pieces too.
    req.conditions = vec![Condition::NotExists(key(n + 1))];
    let ts = kv.write(req).await.unwrap();
    // Its rows, keys and values alone take about 20 pieces.
    assert!(TXN_PIECES_STAGED.get() - before >= 20);
    assert_eq!(
        version_of(&rows(kv.as_ref()).await, n).as_deref(),
        Some("v1")
    );
    let at = |ts: Timestamp| {
        let kv = kv.clone();
        async move { kv.scan(USER_START, b"/t/2", ts, None).await.unwrap() }
    };
    assert_eq!(at(ts).await.len(), n);
    assert!(at(ts.prev()).await.is_empty());
    // Every replica applied all of it, and nothing stays staged or prepared.
    eventually(
        "no transaction is left",
        Duration::from_secs(10),
        async || no_transaction_left(&stores),
    )
    .await;
    for r in stores.replicas() {
        eventually(
            "every replica applied it",
            Duration::from_secs(10),
            async || r.mvcc().get(&key(n - 1), ts).unwrap().is_some(),
        )
        .await;
    }

    // A large transaction whose reads changed after its snapshot commits nothing.
    let stale = kv.read_ts().await.unwrap();
    kv.write(WriteRequest {
        mutations: vec![put(key(n / 2), &value("v1", n / 2))],
        ..Default::default()
    })
    .await
    .unwrap();
    let err = kv.write(big_write(n, "v2", Some(stale))).await.unwrap_err();
    assert!(
        matches!(err, meridian_tablet::Error::WriteConflict { .. }),
        "{err}"
    );
    // A failed condition aborts it too.
    let mut req = big_write(n, "v3", None);
    req.conditions = vec![Condition::NotExists(key(3))];
    let err = kv.write(req).await.unwrap_err();
    assert!(
        matches!(err, meridian_tablet::Error::ConditionFailed { .. }),
        "{err}"
    );
    assert_eq!(
        version_of(&rows(kv.as_ref()).await, n).as_deref(),
        Some("v1")
    );
    eventually(
        "aborted pieces are dropped",
        Duration::from_secs(10),
        async || no_transaction_left(&stores),
    )
    .await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_across_tablets_is_atomic_and_never_seen_in_part() {
    let stores = start().await;
    let kv = stores.client();
    let n = 400;
    kv.write(big_write(n, "v1", None)).await.unwrap();
    kv.split_at(&key(130)).await.unwrap();
    kv.split_at(&key(270)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(kv.clone(), n, stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let snap = kv.read_ts().await.unwrap();
    let before = TXN_PIECES_STAGED.get();
    let ts = kv.write(big_write(n, "v2", Some(snap))).await.unwrap();
    assert!(TXN_PIECES_STAGED.get() - before >= 20);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = stop_readers(&stop, readers).await;
    // The readers saw the old rows, then the new ones, never a mix.
    assert!(seen.contains(&Some("v1".into())), "{seen:?}");
    assert!(seen.contains(&Some("v2".into())), "{seen:?}");
    assert!(seen.iter().all(|v| v.is_some()), "{seen:?}");
    // One commit timestamp across the three tablets.
    let at_commit = kv.scan(USER_START, b"/t/2", ts, None).await.unwrap();
    assert_eq!(version_of(&at_commit, n).as_deref(), Some("v2"));
    let before_commit = kv.scan(USER_START, b"/t/2", ts.prev(), None).await.unwrap();
    assert_eq!(version_of(&before_commit, n).as_deref(), Some("v1"));
    eventually(
        "no transaction is left",
        Duration::from_secs(10),
        async || no_transaction_left(&stores),
    )
    .await;
    stores.shutdown().await;
}

/// Runs a large transaction (rows `0..n` to `version`, across two tablets) while `disturb`
/// runs once pieces are arriving; checks that readers never saw part of it and that it ended
/// all or nothing, and returns whether it committed.
async fn large_commit_while(
    stores: &LocalStores,
    n: usize,
    version: &str,
    disturb: impl AsyncFnOnce(),
) -> bool {
    let kv = stores.client();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(kv.clone(), n, stop.clone());
    let writer = {
        let kv = kv.clone();
        let req = big_write(n, version, None);
        tokio::spawn(async move { kv.write(req).await })
    };
    let before = TXN_PIECES_STAGED.get();
    eventually("pieces are arriving", Duration::from_secs(10), async || {
        TXN_PIECES_STAGED.get() > before + 3
    })
    .await;
    disturb().await;
    let result = writer.await.unwrap();
    // Whatever the writer heard (an error may be ambiguous), the rows end all old or all new.
    eventually(
        "no transaction is left",
        Duration::from_secs(30),
        async || no_transaction_left(stores),
    )
    .await;
    stop_readers(&stop, readers).await;
    let now = version_of(&rows(kv.as_ref()).await, n);
    let committed = now.as_deref() == Some(version);
    if result.is_ok() {
        assert!(committed, "an acknowledged transaction is missing");
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_change_during_a_large_commit_leaves_all_of_it_or_none() {
    let stores = start().await;
    let kv = stores.client();
    let n = 300;
    kv.write(big_write(n, "v1", None)).await.unwrap();
    let (left, _) = kv.split_at(&key(150)).await.unwrap().unwrap();
    // The left tablet's leader hands over while pieces arrive, and again later.
    let move_leader = async || {
        for _ in 0..2 {
            for r in leaders(&stores) {
                if r.tablet_id() == left.tablet_id {
                    r.transfer_leadership();
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    large_commit_while(&stores, n, "v2", move_leader).await;
    // The tablets work on.
    writes_on(kv.as_ref(), n).await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_during_a_large_commit_leaves_all_of_it_or_none() {
    let stores = start().await;
    let kv = stores.client();
    let n = 300;
    kv.write(big_write(n, "v1", None)).await.unwrap();
    let (_, right) = kv.split_at(&key(150)).await.unwrap().unwrap();
    // The node leading the right tablet stops while pieces arrive.
    let stop_leader = async || {
        let leader = leader_of(&stores, right.tablet_id).await;
        let store = stores
            .stores()
            .iter()
            .find(|s| {
                s.replica(right.tablet_id)
                    .is_some_and(|r| r.replica_id() == leader.replica_id())
            })
            .unwrap()
            .clone();
        store.shutdown().await;
    };
    large_commit_while(&stores, n, "v2", stop_leader).await;
    // The other two nodes go on with a new leader.
    writes_on(kv.as_ref(), n).await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_whose_gateway_vanished_is_settled_by_recovery() {
    let stores = start().await;
    let kv = stores.client();
    let (left, right) = kv.split_at(&key(50)).await.unwrap().unwrap();
    let (l, r) = (
        leader_of(&stores, left.tablet_id).await,
        leader_of(&stores, right.tablet_id).await,
    );
    let piece = |txn: &[u8], seq: u32, from: usize| TabletOp::Stage {
        txn_id: txn.to_vec(),
        anchor: key(1),
        seq,
        write: WriteRequest {
            mutations: (from..from + 5)
                .map(|i| put(key(i), &value(&String::from_utf8_lossy(txn), i)))
                .collect(),
            ..Default::default()
        },
    };
    let prepare = |txn: &[u8], staged: u32| TabletOp::Prepare {
        txn_id: txn.to_vec(),
        anchor: key(1),
        write: WriteRequest::default(),
        staged,
    };

    // Gateway 1 shipped some pieces and vanished: recovery aborts, dropping them.
    l.op(piece(b"t1", 0, 0)).await.unwrap();
    r.op(piece(b"t1", 0, 60)).await.unwrap();
    r.op(piece(b"t1", 1, 65)).await.unwrap();
    assert_eq!(r.staged_pieces(b"t1"), 2);
    // A piece out of order is refused; staging blocks writes within its bounds.
    assert!(r.op(piece(b"t1", 3, 80)).await.is_err());
    let err = kv
        .write(WriteRequest {
            mutations: vec![put(key(62), "other")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, meridian_tablet::Error::WriteConflict { .. }),
        "{err}"
    );
    eventually("recovery aborted t1", Duration::from_secs(30), async || {
        l.prepared_count() == 0 && r.prepared_count() == 0
    })
    .await;
    // Its prepare now finds a piece missing and refuses.
    assert!(r.op(prepare(b"t1", 2)).await.is_err());
    let snap = kv.read_ts().await.unwrap();
    assert_eq!(kv.get(&key(60), snap).await.unwrap(), None);
    eventually(
        "the late prepare is dropped",
        Duration::from_secs(30),
        async || r.prepared_count() == 0,
    )
    .await;

    // Gateway 2 shipped everything, prepared, got "commit" logged and vanished: recovery
    // applies every piece, and readers wait for all of it.
    l.op(piece(b"t2", 0, 0)).await.unwrap();
    l.op(piece(b"t2", 1, 5)).await.unwrap();
    r.op(piece(b"t2", 0, 60)).await.unwrap();
    l.op(prepare(b"t2", 2)).await.unwrap();
    let p2 = r.op(prepare(b"t2", 1)).await.unwrap().ts;
    let decided = l
        .op(TabletOp::Decide {
            txn_id: b"t2".to_vec(),
            anchor: key(1),
            commit: true,
            min_commit_ts: p2,
            write: None,
            expires: Timestamp::ZERO,
        })
        .await
        .unwrap()
        .ts;
    // One piece applied by a partial resolve: still prepared, nothing served above it.
    l.op(TabletOp::Resolve {
        txn_id: b"t2".to_vec(),
        commit_ts: Some(decided),
        pieces: 1,
    })
    .await
    .unwrap();
    assert_eq!(l.prepared_count(), 1);
    eventually(
        "recovery committed t2",
        Duration::from_secs(30),
        async || l.prepared_count() == 0 && r.prepared_count() == 0,
    )
    .await;
    let snap = kv.read_ts().await.unwrap();
    for i in (0..10).chain(60..65) {
        assert_eq!(
            kv.get(&key(i), snap).await.unwrap(),
            Some(value("t2", i).into_bytes()),
            "row {i}"
        );
        assert_eq!(kv.get(&key(i), decided.prev()).await.unwrap(), None);
    }
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_commit_keeps_its_leaders() {
    // Production's tick (50 ms): an election timeout of half a second to a second.
    let config = ReplicaConfig {
        tick_interval: Duration::from_millis(50),
        ..common::config(ROOT_TABLET, MAX_EPSILON)
    };
    let stores = start_with(config).await;
    let kv = stores.client();
    kv.set_txn_piece_bytes(64 << 10);
    let n = 12_000;
    let big = |version: &str| WriteRequest {
        mutations: (0..n)
            .map(|i| Mutation::Put {
                key: key(i),
                value: format!("{version}-{}", "y".repeat(120)).into_bytes(),
            })
            .collect(),
        ..Default::default()
    };
    kv.write(big("v0")).await.unwrap();
    let (_, right) = kv.split_at(&key(n / 2)).await.unwrap().unwrap();
    leader_of(&stores, right.tablet_id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let terms = |stores: &LocalStores| {
        let mut t: Vec<(u64, u64, u64)> = leaders(stores)
            .iter()
            .map(|r| (r.tablet_id(), r.replica_id(), r.status().term))
            .collect();
        t.sort();
        t
    };
    let before = terms(&stores);
    assert_eq!(before.len(), 2, "{before:?}");
    // About 1.6 MB across two tablets, each a few dozen pieces.
    let watch = {
        let stop = Arc::new(AtomicBool::new(false));
        let replicas = stores.replicas();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut leaderless = 0;
            while !s.load(Ordering::Relaxed) {
                let tablets: std::collections::BTreeSet<u64> =
                    replicas.iter().map(|r| r.tablet_id()).collect();
                for t in tablets {
                    if !replicas.iter().any(|r| r.tablet_id() == t && r.is_leader()) {
                        leaderless += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            leaderless
        });
        (stop, task)
    };
    kv.write(big("v1")).await.unwrap();
    watch.0.store(true, Ordering::Relaxed);
    let leaderless = watch.1.await.unwrap();
    // No election happened: the same replicas lead in the same terms, and no tablet was ever
    // seen without a leader.
    assert_eq!(terms(&stores), before);
    assert_eq!(leaderless, 0);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_is_refused_at_once_while_transactions_are_prepared() {
    let stores = start().await;
    let kv = stores.client();
    let (_, right) = kv.split_at(&key(50)).await.unwrap().unwrap();
    let r = leader_of(&stores, right.tablet_id).await;
    // A transaction prepared on the right tablet, its gateway gone.
    r.op(TabletOp::Prepare {
        txn_id: b"t".to_vec(),
        anchor: key(1),
        write: WriteRequest {
            mutations: vec![put(key(70), "x")],
            ..Default::default()
        },
        staged: 0,
    })
    .await
    .unwrap();
    // The split is refused at once (not retried until the request deadline, proposing one
    // split entry after another).
    let err = kv.split_at(&key(80)).await.unwrap_err();
    assert!(
        matches!(err, meridian_tablet::Error::Refused { .. }),
        "{err}"
    );
    // Once recovery has settled the transaction, the split goes through.
    eventually(
        "recovery settles the transaction",
        Duration::from_secs(30),
        async || r.prepared_count() == 0,
    )
    .await;
    let (_, upper) = kv.split_at(&key(80)).await.unwrap().unwrap();
    assert_eq!(upper.start_key, key(80));
}
