//! Membership changes: replicas added by snapshot, removed replicas deleting their state, and
//! the placement driver replacing the replicas of a dead store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{clock, config, eventually, key, range_of};
use meridian_storage::{KvEngine, MemEngine, Mvcc};
use meridian_tablet::range::{ROOT_TABLET, USER_START};
use meridian_tablet::{
    KvClient, LocalStores, Mutation, RangeSettings, ReplicaConfig, WriteRequest,
};

const MAX_EPSILON: Duration = Duration::from_millis(5);

fn settings(dead_after: Duration) -> RangeSettings {
    RangeSettings {
        split_bytes: u64::MAX,
        recovery_ticks: 20,
        interval: Duration::from_millis(20),
        liveness_ttl: Duration::from_millis(300),
        dead_after,
        rebalance: false,
        ..RangeSettings::default()
    }
}

fn replica_config() -> ReplicaConfig {
    config(ROOT_TABLET, MAX_EPSILON)
}

/// `n` stores on memory engines, the root tablet on the first three.
async fn start(n: usize, settings: RangeSettings) -> (LocalStores, Vec<Arc<dyn KvEngine>>) {
    let engines: Vec<Arc<dyn KvEngine>> = (0..n)
        .map(|_| Arc::new(MemEngine::new()) as Arc<dyn KvEngine>)
        .collect();
    let stores = LocalStores::start_replicated(
        replica_config(),
        engines.clone(),
        clock(MAX_EPSILON),
        settings,
        3,
    )
    .unwrap();
    stores.ready().await.unwrap();
    (stores, engines)
}

async fn load(kv: &dyn KvClient, rows: std::ops::Range<usize>) {
    for chunk in rows.collect::<Vec<_>>().chunks(50) {
        let mutations = chunk
            .iter()
            .map(|i| Mutation::Put {
                key: key(*i),
                value: format!("v{i}").into_bytes(),
            })
            .collect();
        kv.write(WriteRequest {
            mutations,
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

async fn count_rows(kv: &dyn KvClient) -> usize {
    let ts = kv.read_ts().await.unwrap();
    kv.scan(USER_START, b"", ts, None).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_by_snapshot_holds_the_data_and_the_replaced_one_deletes_its_own() {
    // Nobody is ever declared dead here: the test moves the replica itself.
    let (stores, engines) = start(4, settings(Duration::from_secs(3600))).await;
    let kv = stores.client();
    load(kv.as_ref(), 0..400).await;
    // The upper tablet is made by a split: its log has none of the rows written before.
    kv.split_at(&key(200)).await.unwrap();
    load(kv.as_ref(), 400..450).await;
    let right = range_of(&stores.client(), &key(300)).await;
    assert_eq!(right.replicas, vec![1, 2, 3]);

    let snapshots = meridian_tablet::metrics::SNAPSHOTS_APPLIED.get();
    kv.replace_replica(&right, Some(3), 4).await.unwrap();
    assert!(meridian_tablet::metrics::SNAPSHOTS_APPLIED.get() > snapshots);

    eventually(
        "the meta record shows the new replicas",
        Duration::from_secs(10),
        async || range_of(&stores.client(), &key(300)).await.replicas == vec![1, 2, 4],
    )
    .await;
    let moved = range_of(&stores.client(), &key(300)).await;
    assert!(moved.generation > right.generation);
    let new = stores.stores()[3]
        .replica(right.tablet_id)
        .expect("store 4 holds the tablet");
    assert!(new.is_initialized());
    assert_eq!(new.descriptor().replicas, vec![1, 2, 4]);

    // Store 4's engine holds every row of the tablet (from the snapshot and the log since).
    let ts = kv.read_ts().await.unwrap();
    let expected = kv.scan(&right.start_key, b"", ts, None).await.unwrap();
    assert_eq!(expected.len(), 250);
    eventually(
        "store 4 applied everything",
        Duration::from_secs(10),
        async || {
            Mvcc::new(engines[3].clone())
                .scan(&right.start_key, &[], ts, None)
                .unwrap()
                == expected
        },
    )
    .await;
    // Store 3 left the group and deleted the tablet's data.
    eventually(
        "store 3 dropped its replica",
        Duration::from_secs(10),
        async || stores.stores()[2].replica(right.tablet_id).is_none(),
    )
    .await;
    assert!(
        Mvcc::new(engines[2].clone())
            .scan(&right.start_key, &[], ts, None)
            .unwrap()
            .is_empty()
    );
    // Store 3 still holds the lower tablet.
    assert!(stores.stores()[2].replica(ROOT_TABLET).is_some());

    // The new replica is a voter: with stores 1 and 2 down to one of them, 4 makes the quorum.
    stores.stores()[0].shutdown().await;
    load(kv.as_ref(), 450..460).await;
    assert_eq!(count_rows(kv.as_ref()).await, 460);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicas_of_a_dead_store_are_replaced_and_the_tablets_keep_working() {
    let (stores, _engines) = start(4, settings(Duration::from_millis(1500))).await;
    let kv = stores.client();
    load(kv.as_ref(), 0..300).await;
    kv.split_at(&key(100)).await.unwrap();
    kv.split_at(&key(200)).await.unwrap();
    let before = kv.ranges().await.unwrap();
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|d| d.replicas == vec![1, 2, 3]));

    // Store 2 dies. Once it has been dead past the timeout, every tablet gets a replica on 4.
    stores.stores()[1].shutdown().await;
    load(kv.as_ref(), 300..320).await;
    eventually(
        "every tablet is fully replicated again",
        Duration::from_secs(40),
        async || {
            let ranges = kv.ranges().await.unwrap();
            ranges.len() == 3 && ranges.iter().all(|d| d.replicas == vec![1, 3, 4])
        },
    )
    .await;
    for r in kv.ranges().await.unwrap() {
        let replica = stores.stores()[3]
            .replica(r.tablet_id)
            .expect("store 4 holds a replica of every tablet");
        assert!(replica.is_initialized());
    }
    // Another store dies: stores 1 (or 3) and 4 are a majority of every tablet.
    stores.stores()[0].shutdown().await;
    load(kv.as_ref(), 320..340).await;
    assert_eq!(count_rows(kv.as_ref()).await, 340);
    stores.shutdown().await;
}
