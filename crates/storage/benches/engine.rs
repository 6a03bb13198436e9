//! Engine micro-benchmarks: batched puts (with and without fsync) and point gets, on fjall
//! and on the in-memory engine as a floor. Keys are 16 random bytes, values 100 bytes,
//! batches 1000 puts, mirroring the engine comparison in the project's dependency notes.
//!
//! Run with `cargo bench -p meridian-storage --bench engine`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use meridian_clock::Timestamp;
use meridian_storage::engine::{Durability, FjallEngine, KvEngine, MemEngine, Space, WriteBatch};
use meridian_storage::mvcc::Mvcc;

const BATCH: usize = 1000;
const PRELOAD: usize = 100_000;

/// A deterministic pseudo-random stream (splitmix64), so runs are comparable.
struct Keys(u64);

impl Keys {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn key(&mut self) -> Vec<u8> {
        let mut k = self.next_u64().to_be_bytes().to_vec();
        k.extend_from_slice(&self.next_u64().to_be_bytes());
        k
    }
}

fn batch(keys: &mut Keys) -> WriteBatch {
    let mut b = WriteBatch::new();
    for _ in 0..BATCH {
        b.put(Space::Data, keys.key(), vec![0x5A; 100]);
    }
    b
}

fn engines() -> Vec<(&'static str, Arc<dyn KvEngine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let fjall = FjallEngine::open(dir.path()).expect("open fjall");
    vec![
        ("fjall", Arc::new(fjall), Some(dir)),
        ("mem", Arc::new(MemEngine::new()), None),
    ]
}

fn puts(c: &mut Criterion) {
    let mut group = c.benchmark_group("put_batch_1000");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (mode, durability) in [("nosync", Durability::NoSync), ("sync", Durability::Sync)] {
        // Fresh engines per mode, so one mode's data does not weigh on the other.
        for (name, engine, _dir) in engines() {
            let mut keys = Keys(1);
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter_batched(
                    || batch(&mut keys),
                    |wb| engine.write(wb, durability).expect("write"),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

fn gets(c: &mut Criterion) {
    let mut group = c.benchmark_group("point_get");
    group.throughput(Throughput::Elements(1));
    for (name, engine, _dir) in engines() {
        let mut keys = Keys(2);
        for _ in 0..PRELOAD / BATCH {
            engine
                .write(batch(&mut keys), Durability::NoSync)
                .expect("preload");
        }
        let mut probe = Keys(2);
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                // Cycle through the preloaded keys.
                if n == PRELOAD {
                    probe = Keys(2);
                    n = 0;
                }
                n += 1;
                black_box(engine.get(Space::Data, &probe.key()).expect("get"))
            });
        });
    }
    group.finish();
}

fn mvcc_gets(c: &mut Criterion) {
    let mut group = c.benchmark_group("mvcc_get");
    group.throughput(Throughput::Elements(1));
    for (name, engine, _dir) in engines() {
        let mvcc = Mvcc::new(engine);
        let mut keys = Keys(3);
        let stored: Vec<_> = (0..PRELOAD / 10).map(|_| keys.key()).collect();
        for chunk in stored.chunks(BATCH) {
            let mut b = mvcc.batch();
            for (i, k) in chunk.iter().enumerate() {
                // Three versions per key; reads see the middle one.
                for ts in [10, 20, 30] {
                    b.put(k, Timestamp::from_nanos(ts + i as u64 % 2), &[0x5A; 100]);
                }
            }
            b.commit(Durability::NoSync).expect("preload");
        }
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % stored.len();
                black_box(
                    mvcc.get(&stored[i], Timestamp::from_nanos(25))
                        .expect("get"),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, puts, gets, mvcc_gets);
criterion_main!(benches);
