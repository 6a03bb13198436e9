//! `tpcc run`: terminals (workers) issuing the transaction mix over a shared set of
//! connections for a fixed time, with keying and think times when asked.
//!
//! Each terminal has a home warehouse and district (terminal i serves warehouse
//! `i / 10 % W + 1`, district `i % 10 + 1`), its own random stream from the seed, and loops:
//! pick a kind from the mix, generate the input, wait the keying time, run the transaction on
//! a pooled connection (retrying serialization failures), record it, wait the think time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_postgres::error::SqlState;

use crate::conn::Target;
use crate::error::{Error, Result, SqlContext, describe};
use crate::pgtypes::AnyInt;
use crate::rand::{NuRandC, TpccRng};
use crate::report::RunReport;
use crate::stats::{Ended, Recorder};
use crate::tpcc::DISTRICTS_PER_WAREHOUSE;
use crate::tpcc::mix::Mix;
use crate::tpcc::txn::{self, Input, Outcome, Session, Terminal};

/// How long a run waits for transactions in flight at the end before abandoning them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What `run` does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Connection URL.
    pub url: String,
    /// Further URLs (other nodes of a cluster): connections are opened round-robin over `url`
    /// and these, as a load balancer in front of the nodes would spread them.
    pub more_urls: Vec<String>,
    /// Warehouses the terminals use (at most the number loaded).
    pub warehouses: u32,
    /// Measured time.
    pub duration: Duration,
    /// Time run before measuring, to warm caches.
    pub ramp: Duration,
    /// Terminals; the specification has 10 per warehouse.
    pub workers: usize,
    /// Connections the terminals share.
    pub conns: usize,
    /// Scale of keying and think times: 0 none, 1 the specification's.
    pub wait: f64,
    /// Relative weights of the transactions.
    pub mix: Mix,
    /// Seed of the inputs and of the NURand constants (same as `init`'s).
    pub seed: u64,
    /// Print a live line this often (None: never).
    pub report_every: Option<Duration>,
}

impl RunConfig {
    /// A configuration with the command line's defaults: 10 terminals per warehouse on as
    /// many connections, no waiting, the standard mix.
    pub fn new(url: impl Into<String>, warehouses: u32, duration: Duration) -> RunConfig {
        let workers = 10 * warehouses as usize;
        RunConfig {
            url: url.into(),
            more_urls: Vec::new(),
            warehouses,
            duration,
            ramp: Duration::ZERO,
            workers,
            conns: workers,
            wait: 0.0,
            mix: Mix::standard(),
            seed: 0,
            report_every: None,
        }
    }
}

/// Runs the workload and returns its report.
pub async fn run(cfg: &RunConfig) -> Result<RunReport> {
    if cfg.warehouses == 0 || cfg.workers == 0 || cfg.conns == 0 {
        return Err(Error::Config(
            "warehouses, workers and conns must be at least 1".into(),
        ));
    }
    if !cfg.wait.is_finite() || cfg.wait < 0.0 {
        return Err(Error::Config(
            "--wait must be true, false or a fraction".into(),
        ));
    }
    let targets = std::iter::once(&cfg.url)
        .chain(&cfg.more_urls)
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let first = targets[0].connect().await?;
    ensure_loaded(&first, cfg.warehouses).await?;
    drop(first);

    let mut sessions = Vec::with_capacity(cfg.conns);
    for target in targets.iter().cycle().take(cfg.conns) {
        sessions.push(Session::open(target).await?);
    }
    let pool = Arc::new(Pool {
        sessions: Mutex::new(sessions),
        permits: Semaphore::new(cfg.conns),
        targets,
        // Replacements go on round the targets where the first connections stopped.
        next: AtomicUsize::new(cfg.conns),
    });

    let start = Instant::now();
    let end = start + cfg.ramp + cfg.duration;
    let recorder = Arc::new(Recorder::new(start, cfg.ramp, cfg.duration));
    let c = NuRandC::for_run(NuRandC::for_load(cfg.seed), cfg.seed);
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..cfg.workers {
        let terminal = Terminal {
            w_id: (i / DISTRICTS_PER_WAREHOUSE as usize % cfg.warehouses as usize) as i32 + 1,
            d_id: (i % DISTRICTS_PER_WAREHOUSE as usize) as i32 + 1,
            warehouses: cfg.warehouses as i32,
        };
        let worker = Worker {
            terminal,
            rng: TpccRng::new(cfg.seed, i as u64, c),
            backoff: TpccRng::new(cfg.seed, (1 << 32) | i as u64, c),
            mix: cfg.mix,
            wait: cfg.wait,
            end,
            pool: pool.clone(),
            recorder: recorder.clone(),
        };
        workers.spawn(worker.run());
    }

    let sampler = tokio::spawn(sample(recorder.clone(), end, cfg.report_every));
    let drained = tokio::time::timeout(
        end.saturating_duration_since(Instant::now()) + DRAIN_TIMEOUT,
        async { while workers.join_next().await.is_some() {} },
    )
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    let _ = sampler.await;

    let mut report = RunReport {
        warehouses: cfg.warehouses,
        duration_secs: cfg.duration.as_secs_f64(),
        ramp_secs: cfg.ramp.as_secs_f64(),
        workers: cfg.workers,
        conns: cfg.conns,
        wait: cfg.wait,
        seed: cfg.seed,
        ..RunReport::default()
    };
    recorder.finish(&mut report);
    report.derive();
    Ok(report)
}

/// Fails with a clear message unless `warehouses` warehouses are loaded.
async fn ensure_loaded(client: &tokio_postgres::Client, warehouses: u32) -> Result<()> {
    let loaded = match client
        .query_one("SELECT count(*) FROM warehouse", &[])
        .await
    {
        Ok(row) => {
            row.try_get::<_, AnyInt>(0)
                .context("counting warehouses")?
                .0
        }
        Err(e) => {
            return Err(Error::NotLoaded(format!(
                "cannot read the warehouse table ({e}); run `meridian workload tpcc init` first"
            )));
        }
    };
    if loaded < i64::from(warehouses) {
        return Err(Error::NotLoaded(format!(
            "{loaded} warehouse(s) loaded but the run asks for {warehouses}; run \
             `meridian workload tpcc init --warehouses {warehouses}`"
        )));
    }
    Ok(())
}

/// Ticks the time series every second and prints the live line every `every`.
async fn sample(recorder: Arc<Recorder>, end: Instant, every: Option<Duration>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_line = Instant::now();
    if every.is_some() {
        println!(
            "{:>8} {:>10} {:>9} {:>12} {:>12} {:>12} {:>7} {:>8}",
            "elapsed", "tpmC", "txn/s", "newOrd p50", "p90(ms)", "p99(ms)", "errors", "retries"
        );
    }
    loop {
        tick.tick().await;
        let now = Instant::now();
        recorder.tick_series(now);
        if let Some(every) = every
            && now.duration_since(last_line) + Duration::from_millis(50) >= every
        {
            last_line = now;
            if let Some(l) = recorder.take_line(now) {
                println!(
                    "{:>7.0}s {:>10.1} {:>9.1} {:>12.1} {:>12.1} {:>12.1} {:>7} {:>8}{}",
                    l.elapsed,
                    l.tpmc,
                    l.txn_per_sec,
                    l.new_order_ms[0],
                    l.new_order_ms[1],
                    l.new_order_ms[2],
                    l.errors,
                    l.retries,
                    if l.ramping { "  (ramp)" } else { "" }
                );
            }
        }
        if now >= end {
            return;
        }
    }
}

/// Connections shared by the terminals: a semaphore counts the free ones.
struct Pool {
    sessions: Mutex<Vec<Session>>,
    permits: Semaphore,
    targets: Vec<Target>,
    /// Where the next connection goes (round-robin over `targets`).
    next: AtomicUsize,
}

impl Pool {
    /// The database the next new connection goes to.
    fn target(&self) -> &Target {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// Takes a free session, replacing it first if its connection was lost.
    async fn take(&self) -> Result<Session> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Config("connection pool closed".into()))?;
        permit.forget();
        let session = self.sessions.lock().ok().and_then(|mut s| s.pop());
        match session {
            Some(s) if !s.is_closed() => Ok(s),
            _ => match Session::open(self.target()).await {
                Ok(s) => Ok(s),
                Err(e) => {
                    // The slot stays usable: the next taker tries to connect again.
                    self.permits.add_permits(1);
                    Err(e)
                }
            },
        }
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut s) = self.sessions.lock() {
            s.push(session);
        }
        self.permits.add_permits(1);
    }
}

/// One terminal.
struct Worker {
    terminal: Terminal,
    rng: TpccRng,
    /// Draws retry backoffs, apart from `rng` so that the inputs do not depend on timing.
    backoff: TpccRng,
    mix: Mix,
    wait: f64,
    end: Instant,
    pool: Arc<Pool>,
    recorder: Arc<Recorder>,
}

impl Worker {
    async fn run(mut self) {
        while Instant::now() < self.end {
            let kind = self.mix.choose(&mut self.rng);
            let input = Input::generate(kind, &mut self.rng, &self.terminal);
            if !self
                .pause(kind.keying_time().as_secs_f64() * self.wait)
                .await
            {
                return;
            }
            let done = self.execute(&input).await;
            self.recorder.record(
                kind,
                done.latency,
                done.ended,
                done.retries,
                Instant::now(),
                done.error,
            );
            let think = self.rng.think_time(kind.mean_think_secs()) * self.wait;
            if !self.pause(think).await {
                return;
            }
        }
    }

    /// Sleeps `secs` unless that passes the end of the run; false if the run is over.
    async fn pause(&self, secs: f64) -> bool {
        if secs <= 0.0 {
            return Instant::now() < self.end;
        }
        let until = Instant::now() + Duration::from_secs_f64(secs);
        if until >= self.end {
            tokio::time::sleep_until(self.end.into()).await;
            return false;
        }
        tokio::time::sleep_until(until.into()).await;
        true
    }

    /// Runs one transaction to completion: retries serialization failures and deadlocks
    /// (SQLSTATE 40001, 40P01) with the same input, after a short random backoff so that
    /// conflicting terminals do not meet again at once. Retries go on until the run ends: an
    /// abort is the database keeping transactions serializable, and its cost shows where the
    /// specification judges it, in the response time, which runs from the first attempt to the
    /// last answer.
    async fn execute(&mut self, input: &Input) -> Attempted {
        let started = Instant::now();
        let mut session = match self.pool.take().await {
            Ok(s) => s,
            Err(e) => {
                // No connection: count the error, and back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Attempted {
                    ended: Ended::Error,
                    retries: 0,
                    latency: started.elapsed(),
                    error: Some(e.to_string()),
                };
            }
        };
        let mut retries = 0;
        let (ended, error) = loop {
            match txn::run_once(&session, input).await {
                Ok(Outcome::Committed) => break (Ended::Committed, None),
                Ok(Outcome::RolledBack) => break (Ended::RolledBack, None),
                Err(e) => match e.code() {
                    Some(c)
                        if (*c == SqlState::T_R_SERIALIZATION_FAILURE
                            || *c == SqlState::T_R_DEADLOCK_DETECTED)
                            && Instant::now() < self.end =>
                    {
                        retries += 1;
                        let cap_ms = 1i64 << retries.min(4); // up to 16 ms
                        let ms = self.backoff.uniform(0, cap_ms);
                        tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                    }
                    Some(c) if *c == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN => {
                        break (Ended::CommitUnknown, Some(describe(&e)));
                    }
                    _ => {
                        if session.is_closed() {
                            // Replace the connection now so the pool keeps its size.
                            if let Ok(s) = Session::open(self.pool.target()).await {
                                session = s;
                            }
                        }
                        break (Ended::Error, Some(describe(&e)));
                    }
                },
            }
        };
        let latency = started.elapsed();
        self.pool.give_back(session);
        Attempted {
            ended,
            retries,
            latency,
            error,
        }
    }
}

/// The end of one transaction, retries included.
struct Attempted {
    ended: Ended,
    retries: u32,
    latency: Duration,
    error: Option<String>,
}
