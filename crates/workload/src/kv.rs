//! `meridian workload kv`: single-key puts, as fast as a fixed number of workers can issue
//! them, against a PostgreSQL-wire database (an upsert into a two-column table) or an etcd
//! cluster (etcd's `Put`), so that replicated-write throughput and latency can be compared side
//! by side with the same keys, value size and concurrency.

#![allow(clippy::disallowed_methods)] // a benchmark driver measures with the real clocks

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use meridian_proto::etcdserverpb::PutRequest;
use meridian_proto::etcdserverpb::kv_client::KvClient;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::conn::Target;

/// What a run does.
#[derive(Debug, Clone)]
pub struct KvConfig {
    /// `postgresql://...` URLs or `etcd://host:port` endpoints; workers take them in turn.
    pub targets: Vec<String>,
    /// Measured time.
    pub duration: Duration,
    /// Concurrent workers, each with its own connection.
    pub concurrency: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Keys are drawn uniformly from `0..keys`.
    pub keys: u64,
    /// Seed of the key and value generator.
    pub seed: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct KvReport {
    /// What was measured (the targets).
    pub target: String,
    /// Puts acknowledged.
    pub ops: u64,
    /// Puts that failed (errors, including retryable conflicts).
    pub errors: u64,
    /// Acknowledged puts per second.
    pub ops_per_sec: f64,
    /// Latency percentiles of acknowledged puts, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

enum Conn {
    Sql(tokio_postgres::Client, tokio_postgres::Statement),
    Etcd(KvClient<tonic::transport::Channel>),
}

const UPSERT: &str =
    "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";

async fn open(target: &str) -> anyhow::Result<Conn> {
    if let Some(endpoint) = target.strip_prefix("etcd://") {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await?;
        return Ok(Conn::Etcd(KvClient::new(channel)));
    }
    let client = Target::parse(target)?.connect().await?;
    let stmt = client.prepare(UPSERT).await?;
    Ok(Conn::Sql(client, stmt))
}

impl Conn {
    async fn put(&mut self, key: u64, value: &[u8]) -> anyhow::Result<()> {
        match self {
            Conn::Sql(client, stmt) => {
                client.execute(&*stmt, &[&(key as i64), &value]).await?;
            }
            Conn::Etcd(kv) => {
                kv.put(PutRequest {
                    key: format!("k{key:012}").into_bytes(),
                    value: value.to_vec(),
                    ..Default::default()
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// Creates the table the SQL targets write (no-op for etcd).
pub async fn prepare(target: &str) -> anyhow::Result<()> {
    if target.starts_with("etcd://") {
        return Ok(());
    }
    let client = Target::parse(target)?.connect().await?;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS kv (k BIGINT PRIMARY KEY, v BYTEA NOT NULL)")
        .await?;
    Ok(())
}

/// Runs the workload and reports what was measured.
pub async fn run(config: KvConfig) -> anyhow::Result<KvReport> {
    anyhow::ensure!(!config.targets.is_empty(), "no target to put keys into");
    prepare(&config.targets[0]).await?;
    let mut conns = Vec::with_capacity(config.concurrency);
    for w in 0..config.concurrency {
        conns.push(open(&config.targets[w % config.targets.len()]).await?);
    }
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut tasks = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let (hist, errors, config) = (hist.clone(), errors.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed ^ (w as u64 + 1));
            let mut local = Histogram::<u64>::new(3).expect("histogram bounds");
            let mut value = vec![0u8; config.value_size];
            while Instant::now() < deadline {
                let key = rng.random_range(0..config.keys);
                rng.fill(value.as_mut_slice());
                let t = Instant::now();
                match conn.put(key, &value).await {
                    Ok(()) => {
                        let _ = local.record(t.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            hist.lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(&local)
                .ok();
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = hist.lock().unwrap_or_else(|e| e.into_inner());
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(KvReport {
        target: config.targets.join(","),
        ops: h.len(),
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        ops_per_sec: h.len() as f64 / elapsed,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: h.max() as f64 / 1000.0,
    })
}
