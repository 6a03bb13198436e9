//! Recording a run as it goes: latency histograms and counters per transaction kind for the
//! measured interval, and rolling windows for the live line and the time series.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::{RunReport, SeriesPoint, TxnReport};
use crate::tpcc::mix::TxnKind;

/// Latencies are recorded in microseconds, up to an hour, to three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant bounds: 1 µs to 1 h at 3 significant digits")
}

/// How one transaction ended, as far as the counters care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Committed.
    Committed,
    /// Rolled back on purpose (New-Order's unused item).
    RolledBack,
    /// Failed with SQLSTATE 40003: the database does not know whether it committed.
    CommitUnknown,
    /// Failed with any other error (including exhausted retries).
    Error,
}

/// Counters and latencies of one transaction kind.
#[derive(Clone)]
struct KindStats {
    latency: Histogram<u64>,
    errors: u64,
    retries: u64,
    rollbacks: u64,
    commit_unknown: u64,
}

impl KindStats {
    fn new() -> KindStats {
        KindStats {
            latency: histogram(),
            errors: 0,
            retries: 0,
            rollbacks: 0,
            commit_unknown: 0,
        }
    }

    fn record(&mut self, latency: Duration, ended: Ended, retries: u32) {
        self.retries += u64::from(retries);
        match ended {
            Ended::Committed => {}
            Ended::RolledBack => self.rollbacks += 1,
            Ended::CommitUnknown => {
                self.commit_unknown += 1;
                self.errors += 1;
            }
            Ended::Error => self.errors += 1,
        }
        // Only transactions that completed (committed or rolled back on purpose) have a
        // response time the specification counts.
        if matches!(ended, Ended::Committed | Ended::RolledBack) {
            self.latency
                .saturating_record(latency.as_micros().max(1) as u64);
        }
    }
}

/// Per-kind counters for an interval.
#[derive(Clone)]
struct Window {
    kinds: Vec<KindStats>,
    since: Instant,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            kinds: TxnKind::ALL.iter().map(|_| KindStats::new()).collect(),
            since: now,
        }
    }
}

struct Inner {
    total: Window,
    second: Window,
    line: Window,
    series: Vec<SeriesPoint>,
    error_samples: Vec<String>,
}

/// Distinct error messages kept for the report.
const ERROR_SAMPLES: usize = 5;

/// Collects the results of all workers.
pub struct Recorder {
    start: Instant,
    measure_from: Instant,
    measure_to: Instant,
    inner: Mutex<Inner>,
}

/// What the live line shows.
pub struct LiveLine {
    /// Seconds since the start.
    pub elapsed: f64,
    /// Whether the run is still in its ramp.
    pub ramping: bool,
    /// New-Orders per minute over the window.
    pub tpmc: f64,
    /// Transactions per second over the window.
    pub txn_per_sec: f64,
    /// New-Order p50, p90 and p99 in milliseconds.
    pub new_order_ms: [f64; 3],
    /// Errors and retries over the window.
    pub errors: u64,
    /// Retries over the window.
    pub retries: u64,
}

impl Recorder {
    /// A recorder for a run starting at `start`, measured from `start + ramp` for `duration`.
    pub fn new(start: Instant, ramp: Duration, duration: Duration) -> Recorder {
        Recorder {
            start,
            measure_from: start + ramp,
            measure_to: start + ramp + duration,
            inner: Mutex::new(Inner {
                total: Window::new(start + ramp),
                second: Window::new(start),
                line: Window::new(start),
                series: Vec::new(),
                error_samples: Vec::new(),
            }),
        }
    }

    /// Records a finished transaction. Only those that finish inside the measured interval
    /// count in the report; all of them count in the live windows.
    pub fn record(
        &self,
        kind: TxnKind,
        latency: Duration,
        ended: Ended,
        retries: u32,
        finished: Instant,
        error: Option<String>,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let k = kind.index();
        if finished >= self.measure_from && finished <= self.measure_to {
            inner.total.kinds[k].record(latency, ended, retries);
            // The first few distinct messages say why a run failed.
            if let Some(msg) = error
                && inner.error_samples.len() < ERROR_SAMPLES
                && !inner.error_samples.contains(&msg)
            {
                inner.error_samples.push(msg);
            }
        }
        inner.second.kinds[k].record(latency, ended, retries);
        inner.line.kinds[k].record(latency, ended, retries);
    }

    /// Closes the current one-second window into a point of the time series.
    pub fn tick_series(&self, now: Instant) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let window = std::mem::replace(&mut inner.second, Window::new(now));
        let secs = now.duration_since(window.since).as_secs_f64().max(1e-3);
        let no = &window.kinds[TxnKind::NewOrder.index()];
        let mut all = histogram();
        for k in &window.kinds {
            let _ = all.add(&k.latency);
        }
        inner.series.push(SeriesPoint {
            elapsed_secs: now.duration_since(self.start).as_secs_f64(),
            tpmc: no.latency.len() as f64 * 60.0 / secs,
            txn_per_sec: all.len() as f64 / secs,
            new_order_p90_ms: ms(no.latency.value_at_quantile(0.90)),
            all_p90_ms: ms(all.value_at_quantile(0.90)),
        });
    }

    /// Closes the live line's window and returns what to print.
    pub fn take_line(&self, now: Instant) -> Option<LiveLine> {
        let mut inner = self.inner.lock().ok()?;
        let window = std::mem::replace(&mut inner.line, Window::new(now));
        let secs = now.duration_since(window.since).as_secs_f64().max(1e-3);
        let no = &window.kinds[TxnKind::NewOrder.index()].latency;
        let count: u64 = window.kinds.iter().map(|k| k.latency.len()).sum();
        Some(LiveLine {
            elapsed: now.duration_since(self.start).as_secs_f64(),
            ramping: now < self.measure_from,
            tpmc: no.len() as f64 * 60.0 / secs,
            txn_per_sec: count as f64 / secs,
            new_order_ms: [0.50, 0.90, 0.99].map(|q| ms(no.value_at_quantile(q))),
            errors: window.kinds.iter().map(|k| k.errors).sum(),
            retries: window.kinds.iter().map(|k| k.retries).sum(),
        })
    }

    /// The final report's measurements; the caller fills in the configuration.
    pub fn finish(&self, report: &mut RunReport) {
        let Ok(inner) = self.inner.lock() else {
            return;
        };
        let minutes = self
            .measure_to
            .duration_since(self.measure_from)
            .as_secs_f64()
            / 60.0;
        report.txns = TxnKind::ALL
            .iter()
            .map(|&kind| {
                let k = &inner.total.kinds[kind.index()];
                let h = &k.latency;
                let p90_ms = ms(h.value_at_quantile(0.90));
                let limit_ms = kind.p90_limit().as_secs_f64() * 1000.0;
                TxnReport {
                    name: kind.name().to_string(),
                    count: h.len(),
                    errors: k.errors,
                    retries: k.retries,
                    rollbacks: k.rollbacks,
                    commit_unknown: k.commit_unknown,
                    avg_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
                    p50_ms: ms(h.value_at_quantile(0.50)),
                    p90_ms,
                    p95_ms: ms(h.value_at_quantile(0.95)),
                    p99_ms: ms(h.value_at_quantile(0.99)),
                    max_ms: ms(h.max()),
                    p90_limit_ms: limit_ms,
                    // A kind that only failed has no response time to pass with.
                    p90_pass: p90_ms <= limit_ms && (!h.is_empty() || k.errors == 0),
                }
            })
            .collect();
        let new_orders = inner.total.kinds[TxnKind::NewOrder.index()].latency.len();
        report.tpmc = if minutes > 0.0 {
            new_orders as f64 / minutes
        } else {
            0.0
        };
        report.series = inner.series.clone();
        report.error_samples = inner.error_samples.clone();
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
