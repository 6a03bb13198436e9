//! The SQL layer's metrics, registered in the process's default Prometheus registry.

use std::sync::LazyLock;
use std::time::Duration;

use meridian_tablet::metrics::counter;
use prometheus::{HistogramVec, IntCounter, IntCounterVec};
use sqlparser::ast::Statement;

use crate::api::SqlError;

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    let opts = prometheus::Opts::new(name, help);
    prometheus::register_int_counter_vec!(opts.clone(), &[label])
        .unwrap_or_else(|_| IntCounterVec::new(opts, &[label]).expect("valid metric name"))
}

static STATEMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "meridian_sql_statements_total",
        "SQL statements executed, by kind.",
        "kind",
    )
});

static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "meridian_sql_errors_total",
        "SQL statements that failed, by SQLSTATE class (the code's first two characters).",
        "class",
    )
});

static LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = prometheus::histogram_opts!(
        "meridian_sql_statement_duration_seconds",
        "Time to execute a SQL statement (retries included), by kind.",
        prometheus::exponential_buckets(0.0001, 2.5, 14).expect("valid buckets")
    );
    prometheus::register_histogram_vec!(opts.clone(), &["kind"])
        .unwrap_or_else(|_| HistogramVec::new(opts, &["kind"]).expect("valid histogram"))
});

static READ_WAIT: LazyLock<prometheus::Histogram> = LazyLock::new(|| {
    let opts = prometheus::histogram_opts!(
        "meridian_sql_read_wait_seconds",
        "Time a session waited, before answering, for versions its reads saw to be past on \
         every clock (counted only when it waited).",
        prometheus::exponential_buckets(0.00005, 2.5, 10).expect("valid buckets")
    );
    prometheus::register_histogram!(opts.clone())
        .unwrap_or_else(|_| prometheus::Histogram::with_opts(opts).expect("valid histogram"))
});

/// Records a wait of [`crate::Session`]'s reads for what they saw (none when `waited` is zero).
pub(crate) fn observe_read_wait(waited: Duration) {
    if !waited.is_zero() {
        READ_WAIT.observe(waited.as_secs_f64());
    }
}

/// Statement attempts repeated after a retryable error (autocommit statements only).
pub(crate) static RETRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_sql_statement_retries_total",
        "Autocommit statement attempts repeated after a write conflict or a leader change.",
    )
});

/// Transaction blocks committed.
pub(crate) static COMMITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_txn_commits_total",
        "Transaction blocks (and COPY loads) committed.",
    )
});

/// Transaction blocks whose COMMIT failed (a conflict: 40001, or another error).
pub(crate) static COMMIT_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_txn_commit_failures_total",
        "Transaction blocks whose COMMIT failed (conflicts are SQLSTATE 40001).",
    )
});

/// Measures durations for the latency histogram and EXPLAIN ANALYZE. Only metrics and
/// EXPLAIN ANALYZE's output read it, never a decision of the protocol, so it may use the real
/// clock.
pub(crate) struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // observation only; see the type's docs
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The kind label of a statement.
pub(crate) fn kind(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Query(_) => "select",
        Statement::Insert(_) => "insert",
        Statement::Update(_) => "update",
        Statement::Delete(_) => "delete",
        Statement::Copy { .. } => "copy",
        s if crate::txn::is_control(s) => "transaction",
        Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::CreateView { .. }
        | Statement::CreateSequence { .. }
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_) => "ddl",
        _ => "other",
    }
}

/// Records one statement's outcome and duration.
pub(crate) fn observe(kind: &str, elapsed: Duration, result: Result<(), &SqlError>) {
    STATEMENTS.with_label_values(&[kind]).inc();
    LATENCY
        .with_label_values(&[kind])
        .observe(elapsed.as_secs_f64());
    if let Err(e) = result {
        ERRORS
            .with_label_values(&[&e.code[..2.min(e.code.len())]])
            .inc();
    }
}

/// Registers every metric of the SQL layer, so that `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&STATEMENTS);
    LazyLock::force(&ERRORS);
    LazyLock::force(&LATENCY);
    LazyLock::force(&RETRIES);
    LazyLock::force(&COMMITS);
    LazyLock::force(&COMMIT_FAILURES);
}
