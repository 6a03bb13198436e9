//! Group commit: the replicas of one store share fsyncs of their Raft log writes, and every
//! acknowledged write is still durable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{clock, config, key};
use meridian_storage::{FjallEngine, KvEngine, MemEngine};
use meridian_tablet::range::{ROOT_TABLET, USER_START};
use meridian_tablet::{KvClient, LocalStores, Mutation, RangeSettings, WriteRequest};

const MAX_EPSILON: Duration = Duration::from_millis(5);
const TABLETS: usize = 8;
const WRITERS: usize = 32;
const WRITES: usize = 10;

fn settings() -> RangeSettings {
    RangeSettings {
        split_bytes: u64::MAX,
        merge_bytes: 0,
        interval: Duration::from_millis(20),
        placement: false,
        ..RangeSettings::default()
    }
}

/// One store on `engine`, its user keys split over `TABLETS` tablets.
async fn start(engine: Arc<dyn KvEngine>) -> LocalStores {
    let stores = LocalStores::start(
        config(ROOT_TABLET, MAX_EPSILON),
        vec![engine],
        clock(MAX_EPSILON),
        settings(),
    )
    .unwrap();
    stores.ready().await.unwrap();
    stores
}

/// `WRITERS` concurrent writers, each inserting `WRITES` rows one write at a time, spread over
/// the tablets; every write is acknowledged.
async fn write_concurrently(stores: &LocalStores) {
    let kv = stores.client();
    for t in 1..TABLETS {
        kv.split_at(&key(t * 1000)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES {
                let row = (w % TABLETS) * 1000 + (w / TABLETS) * WRITES + i;
                kv.write(WriteRequest {
                    mutations: vec![Mutation::Put {
                        key: key(row),
                        value: b"v".to_vec(),
                    }],
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn count_rows(kv: &dyn KvClient) -> usize {
    let ts = kv.read_ts().await.unwrap();
    kv.scan(USER_START, b"", ts, None).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_on_many_tablets_survive_a_crash() {
    let mem = Arc::new(MemEngine::new());
    let stores = start(mem.clone()).await;
    write_concurrently(&stores).await;
    stores.shutdown().await;
    // Whatever was not synced is lost: the acknowledged writes' log entries were.
    mem.crash();
    let stores = start(mem.clone()).await;
    let kv = stores.client();
    assert_eq!(count_rows(kv.as_ref()).await, WRITERS * WRITES);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // the elapsed time is only printed
async fn tablets_of_one_store_share_fsyncs() {
    use meridian_tablet::metrics::{LOG_FSYNCS, LOG_SYNCED_WRITES};
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn KvEngine> = Arc::new(FjallEngine::open(dir.path()).unwrap());
    let stores = start(engine).await;
    let (fsyncs, synced) = (LOG_FSYNCS.get(), LOG_SYNCED_WRITES.get());
    let started = std::time::Instant::now();
    write_concurrently(&stores).await;
    let elapsed = started.elapsed();
    let (fsyncs, synced) = (LOG_FSYNCS.get() - fsyncs, LOG_SYNCED_WRITES.get() - synced);
    println!(
        "{} writes on {TABLETS} tablets by {WRITERS} writers in {elapsed:?}: {synced} log \
         writes made durable by {fsyncs} fsyncs ({:.1} per fsync)",
        WRITERS * WRITES,
        synced as f64 / fsyncs.max(1) as f64
    );
    assert!(fsyncs > 0 && synced >= fsyncs);
    assert_eq!(count_rows(stores.client().as_ref()).await, WRITERS * WRITES);
    stores.shutdown().await;
}
