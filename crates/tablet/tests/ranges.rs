//! Many tablets over one keyspace: splits (asked for and by size), routing through the meta
//! records, writes across tablets by two-phase commit, and recovery of transactions whose
//! gateway went silent.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{KvEngine, MemEngine};
use meridian_tablet::range::{ROOT_TABLET, USER_START};
use meridian_tablet::{
    Condition, Error, KvClient, LocalStores, LockOwner, RangeSettings, ReplicaConfig, Span,
    TabletOp, WriteRequest,
};

mod common;

use common::{eventually, key, put};

const MAX_EPSILON: Duration = Duration::from_millis(5);

fn clock() -> Arc<TrueTime> {
    common::clock(MAX_EPSILON)
}

fn config() -> ReplicaConfig {
    common::config(ROOT_TABLET, MAX_EPSILON)
}

fn settings(split_bytes: u64) -> RangeSettings {
    RangeSettings {
        split_bytes,
        recovery_ticks: 20,
        interval: Duration::from_millis(20),
        ..RangeSettings::default()
    }
}

async fn start(replicas: usize, split_bytes: u64) -> LocalStores {
    let engines: Vec<Arc<dyn KvEngine>> = (0..replicas)
        .map(|_| Arc::new(MemEngine::new()) as Arc<dyn KvEngine>)
        .collect();
    let stores = LocalStores::start(config(), engines, clock(), settings(split_bytes)).unwrap();
    stores.ready().await.unwrap();
    stores
}

async fn read_all(kv: &dyn KvClient) -> Vec<(Vec<u8>, Vec<u8>)> {
    let ts = kv.read_ts().await.unwrap();
    kv.scan(USER_START, b"", ts, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_tablet_starts_with_everything_and_splits_on_request() {
    let stores = start(1, u64::MAX).await;
    let kv = stores.client();
    let ranges = kv.ranges().await.unwrap();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(ranges[0].tablet_id, ROOT_TABLET);
    assert!(ranges[0].start_key.is_empty() && ranges[0].end_key.is_empty());
    // The catalog and the meta records never leave the root tablet.
    assert!(kv.split_at(b"/sys/zzz").await.is_err());

    for i in 0..100 {
        kv.write(WriteRequest {
            mutations: vec![put(key(i), &format!("v{i}"))],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let (left, right) = kv.split_at(&key(50)).await.unwrap().expect("a new split");
    assert_eq!(left.end_key, key(50));
    assert_eq!(right.start_key, key(50));
    assert_ne!(left.tablet_id, right.tablet_id);
    // Splitting where a range already starts changes nothing.
    assert!(kv.split_at(&key(50)).await.unwrap().is_none());
    assert_eq!(kv.ranges().await.unwrap().len(), 2);

    let rows = read_all(kv.as_ref()).await;
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[0].0, key(0));
    assert_eq!(rows[99].1, b"v99");
    // A limit stops at the tablet boundary or inside the second tablet.
    let ts = kv.read_ts().await.unwrap();
    assert_eq!(
        kv.scan(&key(40), b"", ts, Some(20)).await.unwrap().len(),
        20
    );
    let many = kv
        .get_many(&[key(10), key(60), key(5000)], ts)
        .await
        .unwrap();
    assert_eq!(many[0].as_deref(), Some(&b"v10"[..]));
    assert_eq!(many[1].as_deref(), Some(&b"v60"[..]));
    assert_eq!(many[2], None);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_across_tablets_commit_atomically_or_not_at_all() {
    let stores = start(3, u64::MAX).await;
    let kv = stores.client();
    kv.split_at(&key(50)).await.unwrap();
    let write = |a: usize, b: usize, v: &str| WriteRequest {
        mutations: vec![put(key(a), v), put(key(b), v)],
        ..Default::default()
    };
    let ts = kv.write(write(1, 90, "x")).await.unwrap();
    let snap = kv.read_ts().await.unwrap();
    assert!(snap >= ts);
    assert_eq!(
        kv.get(&key(1), snap).await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        kv.get(&key(90), snap).await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
    // Before the commit timestamp, neither is visible.
    assert_eq!(kv.get(&key(1), ts.prev()).await.unwrap(), None);
    assert_eq!(kv.get(&key(90), ts.prev()).await.unwrap(), None);

    // A failed condition in one tablet aborts the share in the other: one in a participant's
    // share (its prepare is refused), and one in the coordinator's share (the tablet of the
    // first key written), which is not prepared but validated with the decision: "abort" is
    // recorded and the prepared share in the other tablet is dropped.
    for (present, a, b) in [(90, 2, 91), (1, 7, 97)] {
        let err = kv
            .write(WriteRequest {
                conditions: vec![Condition::NotExists(key(present))],
                mutations: vec![put(key(a), "y"), put(key(b), "y")],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConditionFailed { .. }), "{err}");
        let snap = kv.read_ts().await.unwrap();
        assert_eq!(kv.get(&key(a), snap).await.unwrap(), None);
        assert_eq!(kv.get(&key(b), snap).await.unwrap(), None);
    }

    // A stale read across tablets conflicts.
    let old = kv.read_ts().await.unwrap();
    kv.write(write(3, 93, "z")).await.unwrap();
    let err = kv
        .write(WriteRequest {
            read_ts: Some(old),
            read_spans: vec![Span {
                start: key(0),
                end: Some(key(100)),
            }],
            mutations: vec![put(key(4), "w"), put(key(94), "w")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
    // Changes in one tablet after reads in another: the reads are checked where they were
    // made, and the changes commit with one write.
    let snap = kv.read_ts().await.unwrap();
    let read_93 = || Span {
        start: key(93),
        end: None,
    };
    let ts = kv
        .write(WriteRequest {
            read_ts: Some(snap),
            read_spans: vec![read_93()],
            mutations: vec![put(key(5), "r")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ts > snap);
    assert_eq!(
        kv.get(&key(5), ts).await.unwrap().as_deref(),
        Some(&b"r"[..])
    );
    let old = kv.read_ts().await.unwrap();
    kv.write(WriteRequest {
        mutations: vec![put(key(93), "changed")],
        ..Default::default()
    })
    .await
    .unwrap();
    let err = kv
        .write(WriteRequest {
            read_ts: Some(old),
            read_spans: vec![read_93()],
            mutations: vec![put(key(6), "lost")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
    let now = kv.read_ts().await.unwrap();
    assert_eq!(kv.get(&key(6), now).await.unwrap(), None);
    for r in stores.replicas() {
        assert_eq!(r.prepared_count(), 0, "tablet {}", r.tablet_id());
    }
    stores.shutdown().await;
}

/// A commit across tablets is answered only once its timestamp has certainly passed, while
/// its participants release the transaction's row locks as soon as they apply their shares;
/// a commit refused at prepare keeps them (the transaction may move its snapshot and retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_across_tablets_waits_out_its_timestamp_and_frees_its_rows_as_it_applies() {
    let stores = start(1, u64::MAX).await;
    let kv = stores.client();
    let clock = clock();
    kv.split_at(&key(50)).await.unwrap();
    let keys = vec![key(1), key(90)];
    let snap = kv.read_ts().await.unwrap();
    let owner = |id: &str, priority: Timestamp| LockOwner {
        id: id.as_bytes().to_vec(),
        priority,
    };
    let older = owner("older", snap);
    let younger = owner("younger", snap.next());
    assert_eq!(kv.lock(&keys, &older, snap).await.unwrap(), None);
    let commit = |v: &str, condition: Vec<Condition>| WriteRequest {
        read_ts: Some(snap),
        conditions: condition,
        mutations: vec![put(key(1), v), put(key(90), v)],
        lock_owner: Some(older.clone()),
        ..Default::default()
    };

    // Refused at prepare (a condition fails in one tablet): the locks stay, so the younger
    // transaction waits.
    let err = kv
        .write(commit("no", vec![Condition::Exists(key(91))]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConditionFailed { .. }), "{err}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kv.lock(&keys, &younger, snap))
            .await
            .is_err(),
        "an aborted commit keeps its transaction's locks"
    );

    let ts = kv.write(commit("yes", Vec::new())).await.unwrap();
    let coordinator = stores.stores()[0]
        .replica(kv.ranges().await.unwrap()[0].tablet_id)
        .unwrap();
    // Acknowledged after commit wait.
    assert!(clock.after(ts).unwrap(), "answered before TT.after({ts:?})");
    // Both shares released the locks when they applied, without being told the block ended
    // (the lapse of an unreleased lock is seconds away).
    let moved = tokio::time::timeout(Duration::from_secs(2), kv.lock(&keys, &younger, snap))
        .await
        .expect("the committed transaction's locks are released")
        .unwrap();
    assert!(
        moved.is_some_and(|t| t >= ts),
        "the rows changed at {ts:?}: {moved:?}"
    );
    // Its decision (and the aborted attempt's) is forgotten once both shares are resolved
    // and the requests that carried the coordinator's share expired (the request timeout).
    eventually(
        "the decisions are forgotten",
        Duration::from_secs(30),
        async || coordinator.decision_count().unwrap() == 0,
    )
    .await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_that_grows_past_the_threshold_splits_and_every_row_stays_readable() {
    let stores = start(1, 16 << 10).await;
    let kv = stores.client();
    let value = "v".repeat(200);
    for chunk in (0..600).collect::<Vec<_>>().chunks(20) {
        kv.write(WriteRequest {
            mutations: chunk.iter().map(|&i| put(key(i), &value)).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    eventually(
        "the table spans several tablets",
        Duration::from_secs(20),
        async || kv.ranges().await.unwrap().len() >= 3,
    )
    .await;
    let rows = read_all(kv.as_ref()).await;
    assert_eq!(rows.len(), 600);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    // Meta records tile the keyspace.
    let ranges = kv.ranges().await.unwrap();
    assert!(ranges[0].start_key.is_empty());
    assert!(ranges.last().unwrap().end_key.is_empty());
    for w in ranges.windows(2) {
        assert_eq!(w[0].end_key, w[1].start_key);
    }
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_prepared_is_settled_by_its_coordinator() {
    let stores = start(1, u64::MAX).await;
    let kv = stores.client();
    let (left, right) = kv.split_at(&key(50)).await.unwrap().unwrap();
    let store = &stores.stores()[0];
    let (l, r) = (
        store.replica(left.tablet_id).unwrap(),
        store.replica(right.tablet_id).unwrap(),
    );
    let prepare = |txn: &[u8], k: Vec<u8>| TabletOp::Prepare {
        txn_id: txn.to_vec(),
        anchor: key(1),
        write: WriteRequest {
            mutations: vec![put(k, "p")],
            ..Default::default()
        },
        staged: 0,
    };
    // Gateway 1 prepared both shares and vanished: recovery aborts.
    let p1 = l.op(prepare(b"t1", key(1))).await.unwrap().ts;
    r.op(prepare(b"t1", key(60))).await.unwrap();
    // While prepared, conflicting writes are refused and reads above it wait.
    let err = kv
        .write(WriteRequest {
            mutations: vec![put(key(60), "other")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
    eventually("recovery aborted t1", Duration::from_secs(20), async || {
        l.prepared_count() == 0 && r.prepared_count() == 0
    })
    .await;
    let snap = kv.read_ts().await.unwrap();
    assert!(snap > p1);
    assert_eq!(kv.get(&key(60), snap).await.unwrap(), None);

    // Gateway 2 got the commit decision logged, then vanished: recovery commits.
    l.op(prepare(b"t2", key(2))).await.unwrap();
    let p2 = r.op(prepare(b"t2", key(61))).await.unwrap().ts;
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
    assert!(decided >= p2);
    eventually(
        "recovery committed t2",
        Duration::from_secs(20),
        async || l.prepared_count() == 0 && r.prepared_count() == 0,
    )
    .await;
    let snap = kv.read_ts().await.unwrap();
    assert_eq!(
        kv.get(&key(2), snap).await.unwrap().as_deref(),
        Some(&b"p"[..])
    );
    assert_eq!(
        kv.get(&key(61), snap).await.unwrap().as_deref(),
        Some(&b"p"[..])
    );
    assert_eq!(kv.get(&key(61), decided.prev()).await.unwrap(), None);
    // The decision of record stands: a late abort request gets "committed".
    let again = l
        .op(TabletOp::Decide {
            txn_id: b"t2".to_vec(),
            anchor: key(1),
            commit: false,
            min_commit_ts: Timestamp::ZERO,
            write: None,
            expires: Timestamp::ZERO,
        })
        .await
        .unwrap();
    assert_eq!(again.ts, decided);
    stores.shutdown().await;
}

/// A transaction prepared on a key holds back the reads of that key at or above its prepare
/// timestamp, and only those: reads of the other keys of its tablet are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_holds_back_reads_of_its_own_keys_only() {
    let engines: Vec<Arc<dyn KvEngine>> = vec![Arc::new(MemEngine::new())];
    let patient = RangeSettings {
        // No recovery settles the transaction while the test looks.
        recovery_ticks: 100_000,
        ..settings(u64::MAX)
    };
    let stores = LocalStores::start(config(), engines, clock(), patient).unwrap();
    stores.ready().await.unwrap();
    let kv = stores.client();
    let (left, right) = kv.split_at(&key(50)).await.unwrap().unwrap();
    let store = &stores.stores()[0];
    let (l, r) = (
        store.replica(left.tablet_id).unwrap(),
        store.replica(right.tablet_id).unwrap(),
    );
    kv.write(WriteRequest {
        mutations: vec![put(key(61), "before")],
        ..Default::default()
    })
    .await
    .unwrap();
    let prepared = r
        .op(TabletOp::Prepare {
            txn_id: b"t".to_vec(),
            anchor: key(1),
            write: WriteRequest {
                mutations: vec![put(key(60), "p")],
                ..Default::default()
            },
            staged: 0,
        })
        .await
        .unwrap()
        .ts;
    let snap = kv.read_ts().await.unwrap();
    assert!(snap > prepared);
    let soon = Duration::from_secs(5);
    let other = tokio::time::timeout(soon, kv.get(&key(61), snap))
        .await
        .expect("a key the transaction does not write is read at once")
        .unwrap();
    assert_eq!(other.as_deref(), Some(&b"before"[..]));
    let beside = tokio::time::timeout(soon, kv.scan(&key(62), &key(70), snap, None))
        .await
        .expect("a range without its keys is read at once")
        .unwrap();
    assert!(beside.is_empty());
    let held = Duration::from_millis(300);
    assert!(
        tokio::time::timeout(held, kv.get(&key(60), snap))
            .await
            .is_err(),
        "a read of the prepared key waits"
    );
    assert!(
        tokio::time::timeout(held, kv.scan(&key(55), &key(65), snap, None))
            .await
            .is_err(),
        "a range holding the prepared key waits"
    );
    // Committed, the waiting read sees it.
    let read = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get(&key(60), snap).await }
    });
    let decided = l
        .op(TabletOp::Decide {
            txn_id: b"t".to_vec(),
            anchor: key(1),
            commit: true,
            min_commit_ts: prepared,
            write: None,
            expires: Timestamp::ZERO,
        })
        .await
        .unwrap()
        .ts;
    r.op(TabletOp::Resolve {
        txn_id: b"t".to_vec(),
        commit_ts: Some(decided),
        pieces: 0,
    })
    .await
    .unwrap();
    let seen = tokio::time::timeout(soon, read)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.as_deref(), (decided <= snap).then_some(&b"p"[..]));
    stores.shutdown().await;
}

/// A commit request carrying the coordinator's own share is refused once it expired, so a copy
/// delayed past the time its decision may be forgotten can never apply the share again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_commit_request_with_the_coordinators_share_is_refused() {
    let stores = start(1, u64::MAX).await;
    let kv = stores.client();
    let replica = stores.stores()[0].replica(ROOT_TABLET).unwrap();
    let decide = |expires: Timestamp| TabletOp::Decide {
        txn_id: b"t".to_vec(),
        anchor: key(1),
        commit: true,
        min_commit_ts: Timestamp::ZERO,
        write: Some(WriteRequest {
            mutations: vec![put(key(1), "own")],
            ..Default::default()
        }),
        expires,
    };
    let now = clock().now().unwrap();
    let err = replica.op(decide(now.earliest)).await.unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert_eq!(replica.decision_count().unwrap(), 0);
    let snap = kv.read_ts().await.unwrap();
    assert_eq!(kv.get(&key(1), snap).await.unwrap(), None);
    // In time, the share is applied with the decision.
    let later = now.latest.saturating_add(Duration::from_secs(60));
    let ts = replica.op(decide(later)).await.unwrap().ts;
    assert_eq!(replica.decision_count().unwrap(), 1);
    assert_eq!(
        kv.get(&key(1), ts).await.unwrap().as_deref(),
        Some(&b"own"[..])
    );
    stores.shutdown().await;
}

/// Endpoints on the stores of this process (a second gateway's view).
struct Endpoints(Vec<Arc<meridian_tablet::Store>>);

impl meridian_tablet::Resolver for Endpoints {
    fn endpoints(
        &self,
        desc: &meridian_tablet::RangeDescriptor,
    ) -> Vec<Arc<dyn meridian_tablet::ReplicaEndpoint>> {
        desc.replicas
            .iter()
            .filter_map(|id| self.0.iter().find(|s| s.id() == *id))
            .map(|s| {
                Arc::new(meridian_tablet::StoreEndpoint::new(
                    s.clone(),
                    desc.tablet_id,
                )) as _
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_range_is_stale_splits_where_it_asks() {
    let stores = start(1, u64::MAX).await;
    let kv = stores.client();
    for i in 0..100 {
        kv.write(WriteRequest {
            mutations: vec![put(key(i), "v")],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let other = meridian_tablet::RangeClient::new(
        Arc::new(Endpoints(stores.stores().to_vec())),
        clock(),
        vec![1],
        Duration::from_secs(10),
    );
    // The other gateway caches the range holding key 70, then this one splits it away.
    let ts = other.read_ts().await.unwrap();
    assert!(other.get(&key(70), ts).await.unwrap().is_some());
    kv.split_at(&key(50)).await.unwrap().unwrap();
    // The other gateway's split at 75 reaches the old tablet, which names its new range, and
    // the split happens where it was asked for (as a size split on the new tablet's node does).
    let (left, right) = other.split_at(&key(75)).await.unwrap().unwrap();
    assert_eq!(left.start_key, key(50));
    assert_eq!(right.start_key, key(75));
    stores.shutdown().await;
}
