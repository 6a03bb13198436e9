//! Write admission: while the storage engine reports its flushes or compactions behind, new
//! writes wait at the leader before they are proposed, for a bounded time; they go on as soon
//! as it catches up.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{clock, config, key, put};
use meridian_storage::{
    Durability, KeyRange, KvEngine, MemEngine, ScanOrder, Space, WriteBacklog, WriteBatch,
};
use meridian_tablet::range::ROOT_TABLET;
use meridian_tablet::{KvClient, LocalStores, RangeSettings, WriteRequest};

const MAX_EPSILON: Duration = Duration::from_millis(5);

/// A memory engine whose backlog a test sets.
struct Backlogged {
    inner: MemEngine,
    behind: AtomicBool,
}

impl KvEngine for Backlogged {
    fn get(&self, space: Space, key: &[u8]) -> meridian_storage::Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }

    fn iter(
        &self,
        space: Space,
        range: KeyRange,
        order: ScanOrder,
    ) -> meridian_storage::Result<meridian_storage::engine::KvIter> {
        self.inner.iter(space, range, order)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> meridian_storage::Result<()> {
        self.inner.write(batch, durability)
    }

    fn write_backlog(&self) -> WriteBacklog {
        if self.behind.load(Ordering::Relaxed) {
            WriteBacklog {
                sealed_memtables: 3,
                l0_tables: 0,
            }
        } else {
            WriteBacklog::default()
        }
    }
}

fn write(i: usize) -> WriteRequest {
    WriteRequest {
        mutations: vec![put(key(i), "v")],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_while_the_engine_is_behind_and_go_on_when_it_catches_up() {
    let engine = Arc::new(Backlogged {
        inner: MemEngine::new(),
        behind: AtomicBool::new(false),
    });
    let settings = RangeSettings {
        placement: false,
        ..RangeSettings::default()
    };
    let stores = LocalStores::start(
        config(ROOT_TABLET, MAX_EPSILON),
        vec![engine.clone() as Arc<dyn KvEngine>],
        clock(MAX_EPSILON),
        settings,
    )
    .unwrap();
    stores.ready().await.unwrap();
    let kv = stores.client();
    kv.write(write(1)).await.unwrap();
    let waits = meridian_tablet::metrics::ADMISSION_WAITS.get();

    // Behind: a write waits (the bound is a second), and goes through once the engine is not.
    engine.behind.store(true, Ordering::Relaxed);
    let pending = tokio::spawn({
        let kv = kv.clone();
        async move { kv.write(write(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !pending.is_finished(),
        "a write went through a backlogged engine at once"
    );
    engine.behind.store(false, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the write goes on once the engine caught up")
        .unwrap()
        .unwrap();
    assert!(meridian_tablet::metrics::ADMISSION_WAITS.get() > waits);

    // A backlog that does not clear delays writes; it never fails them.
    engine.behind.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(10), kv.write(write(3)))
        .await
        .expect("a write waits a bounded time")
        .unwrap();
    engine.behind.store(false, Ordering::Relaxed);
    let ts = kv.read_ts().await.unwrap();
    let rows = kv.scan(&key(0), &key(9), ts, None).await.unwrap();
    assert_eq!(rows.len(), 3);
    stores.shutdown().await;
}
