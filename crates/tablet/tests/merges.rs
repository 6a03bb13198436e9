//! Merges: small, cold neighbouring tablets become one by themselves without losing a row or an
//! acknowledged write; a merge that cannot happen now leaves both tablets serving and happens
//! once it can; gateways with stale routes find the merged tablet.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{eventually, key, put, range_of};
use meridian_clock::Timestamp;
use meridian_storage::{KeyRange, KvEngine, MemEngine, ScanOrder, Space};
use meridian_tablet::range::{ROOT_TABLET, USER_START};
use meridian_tablet::{
    Error, KvClient, LocalStores, Mutation, RangeClient, RangeDescriptor, RangeSettings,
    ReplicaEndpoint, Resolver, Store, StoreEndpoint, TabletOp, WriteRequest,
};

const MAX_EPSILON: Duration = Duration::from_millis(5);

/// Merges of tablets that took at most 1 KiB/s over 300 ms windows, up to 1 MiB together.
fn settings() -> RangeSettings {
    RangeSettings {
        split_bytes: 1 << 30,
        merge_bytes: 1 << 20,
        merge_cold_window: Duration::from_millis(300),
        merge_cold_rate: 1 << 10,
        recovery_ticks: 20,
        interval: Duration::from_millis(20),
        placement: false,
        ..RangeSettings::default()
    }
}

/// No merges but those a test asks for.
fn manual() -> RangeSettings {
    RangeSettings {
        merge_bytes: 0,
        ..settings()
    }
}

/// `n` stores on memory engines, the root tablet on the first three (or all, if fewer).
async fn start(
    n: usize,
    settings: RangeSettings,
    max_epsilon: Duration,
) -> (LocalStores, Vec<Arc<dyn KvEngine>>) {
    let engines: Vec<Arc<dyn KvEngine>> = (0..n)
        .map(|_| Arc::new(MemEngine::new()) as Arc<dyn KvEngine>)
        .collect();
    let stores = restart(&engines, settings, max_epsilon).await;
    (stores, engines)
}

/// The two halves of a keyspace split at row 50 (a boundary merges may remove).
type Halves = (RangeDescriptor, RangeDescriptor);

/// `n` stores, split at row 50, with rows `rows` written: the stores, their engines and the
/// halves.
async fn split(
    n: usize,
    settings: RangeSettings,
    max_epsilon: Duration,
    rows: std::ops::Range<usize>,
) -> (LocalStores, Vec<Arc<dyn KvEngine>>, Halves) {
    let (stores, engines) = start(n, settings, max_epsilon).await;
    let kv = stores.client();
    let (left, right) = kv.split_at(&key(50)).await.unwrap().unwrap();
    load(kv.as_ref(), rows).await;
    (stores, engines, (left, right))
}

/// Stores on `engines` as they are.
async fn restart(
    engines: &[Arc<dyn KvEngine>],
    settings: RangeSettings,
    max_epsilon: Duration,
) -> LocalStores {
    let stores = LocalStores::start_replicated(
        common::config(ROOT_TABLET, max_epsilon),
        engines.to_vec(),
        common::clock(max_epsilon),
        settings,
        3,
    )
    .unwrap();
    stores.ready().await.unwrap();
    stores
}

fn write(mutations: Vec<Mutation>) -> WriteRequest {
    WriteRequest {
        mutations,
        ..Default::default()
    }
}

/// Rows `rows`, each `v<i>`, ten to a write.
async fn load(kv: &dyn KvClient, rows: std::ops::Range<usize>) {
    for chunk in rows.collect::<Vec<_>>().chunks(10) {
        let mutations = chunk.iter().map(|&i| put(key(i), &format!("v{i}")));
        kv.write(write(mutations.collect())).await.unwrap();
    }
}

/// The value of `k` at `ts`, as text.
async fn value_at(kv: &dyn KvClient, k: &[u8], ts: Timestamp) -> Option<String> {
    let value = kv.get(k, ts).await.unwrap()?;
    Some(String::from_utf8(value).unwrap())
}

async fn read_all(kv: &dyn KvClient) -> Vec<(Vec<u8>, Vec<u8>)> {
    let ts = kv.read_ts().await.unwrap();
    kv.scan(USER_START, b"", ts, None).await.unwrap()
}

/// Every row of `rows` is there, with its value.
async fn assert_rows(kv: &dyn KvClient, rows: std::ops::Range<usize>) {
    let expected: Vec<(Vec<u8>, Vec<u8>)> = rows
        .map(|i| (key(i), format!("v{i}").into_bytes()))
        .collect();
    assert_eq!(read_all(kv).await, expected);
}

async fn range_count(kv: &RangeClient) -> usize {
    kv.ranges().await.unwrap().len()
}

/// Every store that has a replica of `tablet`.
fn holders(stores: &LocalStores, tablet: u64) -> Vec<u64> {
    stores
        .stores()
        .iter()
        .filter(|s| s.replica(tablet).is_some())
        .map(|s| s.id())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_cold_neighbours_merge_by_themselves_and_every_row_stays_readable() {
    let (stores, engines, (left, right)) = split(3, settings(), MAX_EPSILON, 0..100).await;
    let kv = stores.client();
    // Busy halves stay apart; once both are cold, they become one.
    eventually(
        "the two tablets merge",
        Duration::from_secs(20),
        async || range_count(&kv).await == 1,
    )
    .await;
    let merged = kv.ranges().await.unwrap().remove(0);
    assert_eq!(merged.tablet_id, left.tablet_id);
    assert!(merged.start_key.is_empty() && merged.end_key.is_empty());
    assert!(merged.generation > left.generation.max(right.generation));
    assert_rows(kv.as_ref(), 0..100).await;
    // The right tablet's replicas retired everywhere; the left one's hold its keys now.
    eventually(
        "every store retired the right tablet",
        Duration::from_secs(10),
        async || holders(&stores, right.tablet_id).is_empty(),
    )
    .await;
    for store in stores.stores() {
        let r = store.replica(left.tablet_id).unwrap();
        assert_eq!(r.descriptor().end_key, Vec::<u8>::new());
        r.check_key(&key(99)).unwrap();
    }
    // Writes go on, in both halves' keys.
    load(kv.as_ref(), 100..120).await;
    assert_rows(kv.as_ref(), 0..120).await;

    // After a restart, one tablet holds everything and the right one does not come back.
    stores.shutdown().await;
    let stores = restart(&engines, settings(), MAX_EPSILON).await;
    let kv = stores.client();
    assert_eq!(range_count(&kv).await, 1);
    assert!(holders(&stores, right.tablet_id).is_empty());
    assert_rows(kv.as_ref(), 0..120).await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_among_concurrent_writers_loses_no_acknowledged_write() {
    let (stores, engines) = start(3, manual(), MAX_EPSILON).await;
    let kv = stores.client();
    kv.split_at(&key(50)).await.unwrap().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (kv, stop) = (kv.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut failed = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                // One key in each half, and every third write both at once (two-phase
                // commit, which also keeps transactions prepared on the right tablet).
                let low = format!("/t/1/0000{w}/{n:06}").into_bytes();
                let high = format!("/t/1/9{w}/{n:06}").into_bytes();
                let value = format!("w{w}n{n}");
                let keys = match n % 3 {
                    0 => vec![low],
                    1 => vec![high],
                    _ => vec![low, high],
                };
                let req = write(keys.iter().map(|k| put(k.clone(), &value)).collect());
                match kv.write(req).await {
                    Ok(_) => acknowledged.extend(keys.into_iter().map(|k| (k, value.clone()))),
                    Err(e) => failed.push(e.to_string()),
                }
                n += 1;
            }
            (acknowledged, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Merge while they write; a freeze refused (a transaction prepared on the right tablet)
    // or a plan gone stale is tried again.
    let merge = async {
        loop {
            let left = range_of(&kv, &key(0)).await;
            let right = range_of(&kv, &key(50)).await;
            if left.tablet_id == right.tablet_id {
                return left;
            }
            match kv.merge(&left, &right).await {
                Ok(merged) => return merged,
                Err(e) => {
                    assert!(!matches!(e, Error::Ambiguous { .. }), "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    let merged = tokio::time::timeout(Duration::from_secs(30), merge)
        .await
        .expect("the merge went through");
    assert!(merged.start_key.is_empty() && merged.end_key.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for w in writers {
        let (a, f) = w.await.unwrap();
        acknowledged.extend(a);
        failed.extend(f);
    }
    assert!(
        acknowledged.len() > 100,
        "{} writes acknowledged",
        acknowledged.len()
    );
    assert!(
        failed.is_empty(),
        "writes failed during the merge: {failed:?}"
    );
    let ts = kv.read_ts().await.unwrap();
    for (k, v) in &acknowledged {
        let found = kv.get(k, ts).await.unwrap();
        assert_eq!(found.as_deref(), Some(v.as_bytes()), "key {k:?}");
    }
    assert_eq!(range_count(&kv).await, 1);
    for r in stores.replicas() {
        assert_eq!(r.prepared_count(), 0, "tablet {}", r.tablet_id());
    }
    // Every replica holds the same versions: none took a write the others did not.
    let versions = |engine: &Arc<dyn KvEngine>| {
        engine
            .iter(Space::Data, KeyRange::all(), ScanOrder::Forward)
            .unwrap()
            .map(|kv| kv.unwrap())
            .collect::<Vec<_>>()
    };
    eventually("the replicas agree", Duration::from_secs(10), async || {
        let first = versions(&engines[0]);
        engines[1..].iter().all(|e| versions(e) == first)
    })
    .await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_waits_while_a_transaction_is_prepared_on_the_right_tablet() {
    // Recovery settles a transaction left prepared after about three seconds.
    let settings = RangeSettings {
        recovery_ticks: 300,
        ..settings()
    };
    let (stores, _, (left, right)) = split(3, settings, MAX_EPSILON, 0..100).await;
    let kv = stores.client();
    let r = stores
        .replicas()
        .into_iter()
        .find(|r| r.tablet_id() == right.tablet_id && r.is_leader())
        .expect("the right tablet has a leader");
    // A gateway prepared its share on the right tablet and vanished.
    r.op(TabletOp::Prepare {
        txn_id: b"t1".to_vec(),
        anchor: key(1),
        write: write(vec![put(key(60), "prepared")]),
        staged: 0,
    })
    .await
    .unwrap();
    // A merge asked for now is refused, and the right tablet goes on serving.
    let err = kv.merge(&left, &right).await.unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(stores.replicas().iter().all(|r| !r.is_frozen()));
    kv.write(write(vec![put(key(70), "after")])).await.unwrap();
    // Cold now, but busy: they stay apart while the transaction is prepared.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.prepared_count(), 1);
    assert_eq!(range_count(&kv).await, 2);
    // Recovery aborts the transaction; then the merge happens.
    eventually("the tablets merge", Duration::from_secs(20), async || {
        range_count(&kv).await == 1
    })
    .await;
    let ts = kv.read_ts().await.unwrap();
    assert_eq!(
        value_at(kv.as_ref(), &key(60), ts).await.as_deref(),
        Some("v60")
    );
    assert_eq!(
        value_at(kv.as_ref(), &key(70), ts).await.as_deref(),
        Some("after")
    );
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablets_on_different_nodes_stay_apart_until_their_replicas_meet() {
    let (stores, _, (left, right)) = split(4, settings(), MAX_EPSILON, 0..100).await;
    let kv = stores.client();
    kv.replace_replica(&right, Some(3), 4).await.unwrap();
    eventually(
        "the right tablet moved",
        Duration::from_secs(10),
        async || range_of(&kv, &key(50)).await.replicas == vec![1, 2, 4],
    )
    .await;
    // Cold for several windows, but on different nodes: no merge.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(range_count(&kv).await, 2);
    let moved = range_of(&kv, &key(50)).await;
    let err = kv.merge(&left, &moved).await.unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(stores.replicas().iter().all(|r| !r.is_frozen()));
    // Back on the left tablet's nodes, the merge happens.
    kv.replace_replica(&moved, Some(4), 3).await.unwrap();
    eventually("the tablets merge", Duration::from_secs(20), async || {
        range_count(&kv).await == 1
    })
    .await;
    assert_rows(kv.as_ref(), 0..100).await;
    eventually(
        "every store retired the right tablet",
        Duration::from_secs(10),
        async || holders(&stores, right.tablet_id).is_empty(),
    )
    .await;
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_planned_on_a_stale_range_is_called_off_and_unfreezes_the_right_tablet() {
    let (stores, _, (left, right)) = split(3, manual(), MAX_EPSILON, 0..100).await;
    let kv = stores.client();
    // The left tablet splits after the plan was made: the right one freezes, the takeover is
    // refused, and the freeze is lifted.
    kv.split_at(&key(20)).await.unwrap().unwrap();
    let err = kv.merge(&left, &right).await.unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    eventually(
        "every replica is unfrozen",
        Duration::from_secs(5),
        async || stores.replicas().iter().all(|r| !r.is_frozen()),
    )
    .await;
    let write_right = kv.write(write(vec![put(key(60), "again")]));
    tokio::time::timeout(Duration::from_secs(2), write_right)
        .await
        .expect("the right tablet takes writes at once")
        .unwrap();
    assert_eq!(range_count(&kv).await, 3);
    // Planned on the current ranges, it goes through.
    let left = range_of(&kv, &key(20)).await;
    let right = range_of(&kv, &key(50)).await;
    let merged = kv.merge(&left, &right).await.unwrap();
    assert_eq!((merged.start_key, merged.end_key), (key(20), Vec::new()));
    assert_eq!(range_count(&kv).await, 2);
    let ts = kv.read_ts().await.unwrap();
    assert_eq!(
        value_at(kv.as_ref(), &key(60), ts).await.as_deref(),
        Some("again")
    );
    stores.shutdown().await;
}

/// Endpoints on the stores of this process (a second gateway's view).
struct Endpoints(Vec<Arc<Store>>);

impl Resolver for Endpoints {
    fn endpoints(&self, desc: &RangeDescriptor) -> Vec<Arc<dyn ReplicaEndpoint>> {
        desc.replicas
            .iter()
            .filter_map(|id| self.0.iter().find(|s| s.id() == *id))
            .map(|s| Arc::new(StoreEndpoint::new(s.clone(), desc.tablet_id)) as _)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_routing_to_the_merged_away_tablet_looks_the_range_up_again() {
    let (stores, _, (left, right)) = split(3, manual(), MAX_EPSILON, 0..100).await;
    let kv = stores.client();
    let other = RangeClient::new(
        Arc::new(Endpoints(stores.stores().to_vec())),
        common::clock(MAX_EPSILON),
        vec![1, 2, 3],
        Duration::from_secs(10),
    );
    // The other gateway caches the right tablet's range.
    let ts = other.read_ts().await.unwrap();
    assert_eq!(value_at(&other, &key(60), ts).await.as_deref(), Some("v60"));
    kv.merge(&left, &right).await.unwrap();
    eventually(
        "every store retired the right tablet",
        Duration::from_secs(10),
        async || holders(&stores, right.tablet_id).is_empty(),
    )
    .await;
    // The right tablet's replicas are gone: they answer so, and the gateway finds the
    // merged tablet at once.
    let gone = StoreEndpoint::new(stores.stores()[0].clone(), right.tablet_id);
    let err = gone.get(&key(60), ts).await.unwrap_err();
    assert!(matches!(err, Error::RangeMerging { .. }), "{err}");
    let quick = Duration::from_secs(2);
    let ts = other.read_ts().await.unwrap();
    let k60 = key(60);
    let read = tokio::time::timeout(quick, other.get(&k60, ts));
    assert_eq!(
        read.await.expect("no hang").unwrap().as_deref(),
        Some(&b"v60"[..])
    );
    let write_right = other.write(write(vec![put(key(61), "new")]));
    tokio::time::timeout(quick, write_right)
        .await
        .expect("no hang")
        .unwrap();
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merged_tablet_assigns_timestamps_above_any_the_right_tablet_served() {
    // A wide uncertainty bound lets a reader ask for a snapshot well ahead of the clock.
    let epsilon = Duration::from_secs(1);
    let (stores, _, (left, right)) = split(3, manual(), epsilon, 40..60).await;
    let kv = stores.client();
    // The right tablet makes its snapshot 1.5 s ahead of the clock final and serves it.
    let ahead = Timestamp::from_nanos(kv.now().unwrap().latest.as_nanos() + 1_500_000_000);
    assert_eq!(
        value_at(kv.as_ref(), &key(55), ahead).await.as_deref(),
        Some("v55")
    );
    kv.merge(&left, &right).await.unwrap();
    // A write to the right tablet's keys now commits above that snapshot: the merged tablet
    // must not change what the right one served.
    let ts = kv.write(write(vec![put(key(56), "later")])).await.unwrap();
    assert!(ts > ahead, "committed at {ts}, at or below {ahead}");
    assert_eq!(
        value_at(kv.as_ref(), &key(56), ahead).await.as_deref(),
        Some("v56")
    );
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_tablet_takes_no_change_and_serves_reads_only_up_to_its_freeze() {
    let (stores, _, (left, right)) = split(3, manual(), MAX_EPSILON, 40..60).await;
    let kv = stores.client();
    let leader = || {
        stores
            .replicas()
            .into_iter()
            .find(|r| r.tablet_id() == right.tablet_id && r.is_leader())
    };
    let r = leader().expect("the right tablet has a leader");
    let freeze = TabletOp::Freeze {
        left: left.clone(),
        right_generation: right.generation,
    };
    let frozen = r.op(freeze.clone()).await.unwrap();
    let at = frozen.ts;
    assert_eq!(frozen.range.as_ref(), Some(&right));
    // Asked again, the freeze answers the same; a freeze for another merge is refused.
    assert_eq!(r.op(freeze).await.unwrap(), frozen);
    let other = TabletOp::Freeze {
        left: RangeDescriptor {
            generation: left.generation + 1,
            ..left.clone()
        },
        right_generation: right.generation,
    };
    let err = r.op(other).await.unwrap_err();
    assert!(matches!(err, Error::RangeMerging { .. }), "{err}");
    // No writes, two-phase steps or splits; reads up to the freeze only.
    let merging = |e: Error| assert!(matches!(e, Error::RangeMerging { .. }), "{e}");
    merging(r.write(write(vec![put(key(55), "x")])).await.unwrap_err());
    let prepare = TabletOp::Prepare {
        txn_id: b"t".to_vec(),
        anchor: key(55),
        write: write(vec![put(key(56), "x")]),
        staged: 0,
    };
    merging(r.op(prepare).await.unwrap_err());
    let split = TabletOp::Split {
        key: key(57),
        new_tablet_id: 99,
        sticky: false,
    };
    merging(r.op(split).await.unwrap_err());
    let endpoint: &dyn ReplicaEndpoint = &r;
    let found = endpoint.get(&key(55), at).await.unwrap().0;
    assert_eq!(found.as_deref(), Some(&b"v55"[..]));
    merging(endpoint.get(&key(55), at.next()).await.unwrap_err());
    // The freeze is in the log: a new leader is frozen too.
    r.transfer_leadership();
    eventually(
        "another replica leads",
        Duration::from_secs(10),
        async || leader().is_some_and(|l| l.replica_id() != r.replica_id()),
    )
    .await;
    let new = leader().unwrap();
    assert!(new.is_frozen());
    merging(new.write(write(vec![put(key(55), "x")])).await.unwrap_err());
    // Lifted, the tablet takes writes again.
    new.op(TabletOp::Unfreeze {
        left_tablet: left.tablet_id,
    })
    .await
    .unwrap();
    eventually(
        "every replica is unfrozen",
        Duration::from_secs(5),
        async || stores.replicas().iter().all(|r| !r.is_frozen()),
    )
    .await;
    let ts = kv.write(write(vec![put(key(55), "y")])).await.unwrap();
    assert!(ts > at);
    stores.shutdown().await;
}
