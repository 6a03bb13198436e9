//! Splits by load, in one process: a busy tablet splits where its load divides, and the halves
//! stay apart while busy (merges would otherwise take the cold, small halves back at once) and
//! merge again once the load is gone; a tablet whose load is all on one row does not split.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{key, put};
use meridian_tablet::range::ROOT_TABLET;
use meridian_tablet::{KvClient, LocalStores, RangeClient, RangeSettings, WriteRequest};
use tokio::task::JoinHandle;

/// Wide enough that a loaded machine's late clock synchronisations do not fail reads.
const MAX_EPSILON: Duration = Duration::from_millis(20);

/// Requests per second above which a tablet splits. The reader below sends at most 1,000 a
/// second, and a loaded machine still sends well over this. The root tablet's own upkeep load
/// (reads of the meta records: the tests' polling, five a second, and each follower's check
/// that it is still a member, twice a second) stays well under a quarter of it, which would
/// keep the root tablet from merging.
const SPLIT_QPS: u64 = 150;

/// Splits by load above `SPLIT_QPS` for `split_after`; merges of tablets that took at most
/// 1 KiB/s of writes over 300 ms windows, up to 1 MiB together, 100 ms after a split by load
/// (so that only their load keeps busy halves apart); upkeep every 100 ms.
fn settings(split_after: Duration) -> RangeSettings {
    RangeSettings {
        split_bytes: 1 << 30,
        merge_bytes: 1 << 20,
        merge_cold_window: Duration::from_millis(300),
        merge_cold_rate: 1 << 10,
        split_qps: SPLIT_QPS,
        split_qps_after: split_after,
        load_merge_delay: Duration::from_millis(100),
        interval: Duration::from_millis(100),
        placement: false,
        ..RangeSettings::default()
    }
}

/// Three stores with `settings` and rows 0..200 written, ten to a write.
async fn start(settings: RangeSettings) -> LocalStores {
    // MERIDIAN_TEST_LOG=meridian_tablet=info (a tracing filter) shows the stores' logs.
    if let Ok(filter) = std::env::var("MERIDIAN_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let stores = LocalStores::start_replicated(
        common::config(ROOT_TABLET, MAX_EPSILON),
        (0..3)
            .map(|_| Arc::new(meridian_storage::MemEngine::new()) as _)
            .collect(),
        common::clock(MAX_EPSILON),
        settings,
        3,
    )
    .unwrap();
    stores.ready().await.unwrap();
    let kv = stores.client();
    for chunk in (0..200).collect::<Vec<_>>().chunks(10) {
        let req = WriteRequest {
            mutations: chunk
                .iter()
                .map(|&i| put(key(i), &format!("v{i}")))
                .collect(),
            ..Default::default()
        };
        kv.write(req).await.unwrap();
    }
    stores
}

/// Reads of `rows` in a scattered order, at most one a millisecond, until `stop`;
/// every read that is answered finds its row. Returns how many were answered.
fn reader(kv: Arc<RangeClient>, rows: Vec<usize>, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (mut n, mut answered) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let i = rows[(n * 37) % rows.len()];
            n += 1;
            // A starved machine may delay an election past a read's patience: not a wrong
            // answer, so only answers are checked.
            let Ok(ts) = kv.read_ts().await else { continue };
            let Ok(value) = kv.get(&key(i), ts).await else {
                continue;
            };
            assert_eq!(value, Some(format!("v{i}").into_bytes()), "row {i}");
            answered += 1;
        }
        answered
    })
}

/// The ids of the tablets in the meta records (retried through elections).
async fn tablets(kv: &RangeClient) -> BTreeSet<u64> {
    loop {
        match kv.ranges().await {
            Ok(ranges) => return ranges.iter().map(|d| d.tablet_id).collect(),
            Err(e) => tracing::debug!(error = %e, "reading the meta records failed; retrying"),
        }
    }
}

/// Waits until the meta records list `n` tablets (or at least `n`, with `at_least`), polling
/// five times a second, at most `within`.
async fn until_tablets(kv: &RangeClient, n: usize, at_least: bool, within: Duration) {
    let wait = async {
        loop {
            let count = tablets(kv).await.len();
            if count == n || (at_least && count > n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    if tokio::time::timeout(within, wait).await.is_err() {
        panic!(
            "timed out waiting for {n} tablets; there are {:?}",
            tablets(kv).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_tablet_splits_by_load_and_its_halves_stay_apart_while_busy() {
    // A split waits two seconds of high load, so the halves (each with about half the load:
    // far above a quarter of the threshold) do not split again while watched.
    let stores = start(settings(Duration::from_secs(2))).await;
    let kv = stores.client();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = reader(kv.clone(), (0..200).collect(), stop.clone());
    until_tablets(&kv, 2, false, Duration::from_secs(20)).await;
    // The halves are small and took no writes: only their load keeps them apart, for far
    // longer than the cold windows and the delay after a split by load.
    let halves = tablets(&kv).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(tablets(&kv).await, halves, "busy tablets were merged");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reads.await.unwrap() > 0);
    until_tablets(&kv, 1, false, Duration::from_secs(30)).await;
    let ts = kv.read_ts().await.unwrap();
    let rows = kv.scan(&key(0), b"", ts, None).await.unwrap();
    assert_eq!(rows.len(), 200);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_whose_load_is_all_on_one_row_does_not_split() {
    let stores = start(settings(Duration::from_millis(300))).await;
    let kv = stores.client();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = reader(kv.clone(), vec![7], stop.clone());
    // Busy for several times the period a split waits for.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    // Above the threshold on average over the second and a half: enough to split, had the
    // load been divisible.
    assert!(
        reads.await.unwrap() as u64 > 2 * SPLIT_QPS,
        "too few reads to tell"
    );
    assert_eq!(tablets(&kv).await.len(), 1);
    stores.shutdown().await;
}
