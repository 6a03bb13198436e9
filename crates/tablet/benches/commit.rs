//! Commit latency and throughput of the three commit paths, on one store over fjall (real
//! fsync) with the system clock at 1 ms of uncertainty:
//!
//! * `1pc`: a write within one tablet (one Raft write);
//! * `refresh`: a write in one tablet after reading another (a refresh of the read there, then
//!   one Raft write);
//! * `2pc`: a write to two tablets (prepare in both, decide, resolve in both).
//!
//! Each path is measured one write at a time (latency) and as 16 concurrent writes
//! (throughput). After each, the average commit wait is printed, from the tablet layer's
//! commit-wait histogram (every commit waits once: the write, or the 2PC decision).
//!
//! Run with `cargo bench -p meridian-tablet --bench commit`.

#![allow(clippy::disallowed_methods)] // a benchmark times with the real clock

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meridian_clock::{SystemClock, TrueTime, TrueTimeConfig};
use meridian_storage::{FjallEngine, KvEngine};
use meridian_tablet::range::ROOT_TABLET;
use meridian_tablet::{
    KvClient, LocalStores, Mutation, RangeClient, RangeSettings, ReplicaConfig, Span, WriteRequest,
};

const CONCURRENCY: usize = 16;

fn put(key: String) -> Mutation {
    Mutation::Put {
        key: key.into_bytes(),
        value: vec![7; 100],
    }
}

/// A write for path `path`, number `n`.
async fn write(kv: &RangeClient, path: &str, n: u64) {
    let (a, b) = (format!("/t/a/{n:012}"), format!("/t/b/{n:012}"));
    let req = match path {
        "1pc" => WriteRequest {
            mutations: vec![put(a)],
            ..Default::default()
        },
        "refresh" => WriteRequest {
            read_ts: Some(kv.read_ts().await.expect("read timestamp")),
            read_spans: vec![Span {
                start: b.into_bytes(),
                end: None,
            }],
            mutations: vec![put(a)],
            ..Default::default()
        },
        _ => WriteRequest {
            mutations: vec![put(a), put(b)],
            ..Default::default()
        },
    };
    kv.write(req).await.expect("write commits");
}

fn commit_wait() -> (f64, u64) {
    let h = &*meridian_tablet::metrics::COMMIT_WAIT;
    (h.get_sample_sum(), h.get_sample_count())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(TrueTime::new(
        Arc::new(SystemClock),
        TrueTimeConfig {
            local_uncertainty: Duration::from_millis(1),
            max_epsilon: Duration::from_millis(20),
            ..TrueTimeConfig::default()
        },
    ));
    let engine: Arc<dyn KvEngine> = Arc::new(FjallEngine::open(dir.path()).expect("engine"));
    let config = ReplicaConfig {
        tick_interval: Duration::from_millis(50),
        ..ReplicaConfig::single(ROOT_TABLET, Duration::from_millis(20))
    };
    // The local clock re-synchronises every 200 ms, as a node's does each second: without it
    // the drift allowance would grow epsilon (and commit wait) through the run.
    let syncing = clock.clone();
    rt.spawn(async move {
        loop {
            syncing.sync_local();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let stores = rt.block_on(async {
        let s = LocalStores::start(
            config,
            vec![engine],
            clock.clone(),
            RangeSettings::default(),
        )
        .expect("store");
        s.ready().await.expect("ready");
        s.client().split_at(b"/t/b").await.expect("split");
        s
    });
    let kv = stores.client();
    let mut n = 0u64;
    for path in ["1pc", "refresh", "2pc"] {
        let mut group = c.benchmark_group(format!("commit/{path}"));
        group.sample_size(30);
        let before = commit_wait();
        let mut commits = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function("one at a time", |b| {
            b.iter(|| {
                n += 1;
                commits += 1;
                rt.block_on(write(&kv, path, n));
            })
        });
        group.throughput(Throughput::Elements(CONCURRENCY as u64));
        group.bench_function("16 concurrent", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    rt.block_on(async {
                        let tasks: Vec<_> = (0..CONCURRENCY)
                            .map(|_| {
                                n += 1;
                                commits += 1;
                                let (kv, m) = (kv.clone(), n);
                                tokio::spawn(async move { write(&kv, path, m).await })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("writer");
                        }
                    });
                }
                t.elapsed()
            })
        });
        group.finish();
        let after = commit_wait();
        let waits = after.1 - before.1;
        if waits > 0 {
            eprintln!(
                "commit/{path}: {commits} commits, {waits} commit waits of {:.3} ms on average",
                (after.0 - before.0) / waits as f64 * 1e3
            );
        }
    }
    rt.block_on(stores.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
