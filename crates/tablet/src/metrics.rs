//! The tablet layer's metrics, registered in the process's default Prometheus registry (a
//! node's `/metrics` endpoint serves them; several nodes in one process share them).

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounter, register_histogram, register_int_counter};

/// Measures durations for logs of slow work. Only logs and metrics read it, never a decision
/// of the protocol, so it may use the real clock.
pub(crate) struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // observation only; see the type's docs
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    pub(crate) fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// A counter registered in the default registry (shared by the crates that record metrics).
pub fn counter(name: &str, help: &str) -> IntCounter {
    // Registration fails only for a duplicate name, which these unique statics cannot cause;
    // an unregistered counter still counts.
    register_int_counter!(name, help)
        .unwrap_or_else(|_| IntCounter::new(name, help).expect("valid metric name"))
}

/// Writes proposed to Raft by a leader.
pub static PROPOSALS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_proposals_total",
        "Writes proposed to Raft by tablet leaders on this node.",
    )
});

/// Pieces of large transactions shipped ahead of their prepare (see `txn.rs`).
pub static TXN_PIECES_STAGED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_txn_pieces_staged_total",
        "Pieces of large transactions that gateways on this node shipped to tablets ahead of \
         their prepare, each its own Raft entry.",
    )
});

/// Committed log entries applied to the MVCC engine.
pub static APPLIED_ENTRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_applied_entries_total",
        "Committed Raft log entries applied to the storage engine on this node.",
    )
});

/// Writes refused at apply time because data they read changed (retryable conflicts).
pub static WRITE_CONFLICTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_write_conflicts_total",
        "Writes refused at apply time because data they read changed since their snapshot.",
    )
});

/// Raft snapshots built by leaders for new replicas.
pub static SNAPSHOTS_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_snapshots_sent_total",
        "Raft snapshots built by tablet leaders on this node for new or lagging replicas.",
    )
});

/// Raft log compactions (see `ReplicaConfig::raft_log_max_entries`).
pub static LOG_COMPACTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_log_compactions_total",
        "Raft log compactions by tablet replicas on this node.",
    )
});

/// fsyncs of Raft log writes (group commits; see `logsync.rs`).
pub static LOG_FSYNCS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_log_fsyncs_total",
        "fsyncs that made tablet replicas' Raft log writes durable on this node.",
    )
});

/// Raft log writes made durable by those fsyncs (each fsync covers one or more).
pub static LOG_SYNCED_WRITES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_log_synced_writes_total",
        "Raft log writes (one per replica Ready) made durable by group-commit fsyncs.",
    )
});

/// Raft snapshots installed by replicas.
pub static SNAPSHOTS_APPLIED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_raft_snapshots_applied_total",
        "Raft snapshots installed by tablet replicas on this node.",
    )
});

/// Replicas replaced by the placement driver.
pub static REPLICAS_REPLACED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_replicas_replaced_total",
        "Replicas on dead nodes replaced by the placement driver running on this node.",
    )
});

/// Leaderships handed over by leader balancing.
/// Leaderships handed to the node a tablet's requests come from (see `follow.rs`).
pub static LEADERSHIPS_FOLLOWED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_leaderships_followed_total",
        "Leaderships this node handed to the node whose gateway sends most of the tablet's requests.",
    )
});

pub static LEADERSHIPS_BALANCED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_leaderships_balanced_total",
        "Leaderships this node handed to another node to balance leader counts.",
    )
});

/// Tablets split because their load stayed high (see `load.rs`).
pub static LOAD_SPLITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_load_splits_total",
        "Tablets whose leaders on this node split them because their request rate stayed \
         above the load-split threshold.",
    )
});

/// How long acknowledged writes waited for `TT.after(commit_ts)` after being applied.
pub static COMMIT_WAIT: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = prometheus::histogram_opts!(
        "meridian_commit_wait_seconds",
        "Commit wait of acknowledged writes: time from apply until TT.after(commit timestamp).",
        vec![
            0.0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5
        ]
    );
    register_histogram!(opts.clone())
        .unwrap_or_else(|_| Histogram::with_opts(opts).expect("valid histogram"))
});

/// Lock requests and writes that had to wait for another transaction's row lock.
pub static LOCK_WAITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_lock_waits_total",
        "Lock requests and writes at tablet leaders on this node that waited for a row lock.",
    )
});

/// Writes that waited for the storage engine's flushes and compactions (write admission).
pub static ADMISSION_WAITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_admission_waits_total",
        "Writes at tablet leaders on this node that waited for the storage engine to catch up.",
    )
});

/// Time writes spent waiting in write admission.
pub static ADMISSION_WAIT_SECONDS: LazyLock<prometheus::Counter> = LazyLock::new(|| {
    let (name, help) = (
        "meridian_admission_wait_seconds_total",
        "Time writes at tablet leaders on this node waited for the storage engine to catch up.",
    );
    prometheus::register_counter!(name, help)
        .unwrap_or_else(|_| prometheus::Counter::new(name, help).expect("valid metric name"))
});

/// Younger transactions wounded by older ones that needed their locks (wound-wait).
pub static LOCK_WOUNDS_INFLICTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_lock_wounds_total",
        "Row locks taken from a younger transaction by an older one (wound-wait).",
    )
});

/// Requests refused because their transaction had been wounded.
pub static LOCK_WOUNDS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "meridian_lock_wounded_requests_total",
        "Lock requests and commits refused because an older transaction wounded theirs.",
    )
});

/// Registers every metric of this module, so that `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&PROPOSALS);
    LazyLock::force(&APPLIED_ENTRIES);
    LazyLock::force(&WRITE_CONFLICTS);
    LazyLock::force(&COMMIT_WAIT);
    LazyLock::force(&SNAPSHOTS_SENT);
    LazyLock::force(&SNAPSHOTS_APPLIED);
    LazyLock::force(&LOG_COMPACTIONS);
    LazyLock::force(&LOG_FSYNCS);
    LazyLock::force(&LOG_SYNCED_WRITES);
    LazyLock::force(&REPLICAS_REPLACED);
    LazyLock::force(&LEADERSHIPS_BALANCED);
    LazyLock::force(&LEADERSHIPS_FOLLOWED);
    LazyLock::force(&LOAD_SPLITS);
    LazyLock::force(&LOCK_WAITS);
    LazyLock::force(&ADMISSION_WAITS);
    LazyLock::force(&ADMISSION_WAIT_SECONDS);
    LazyLock::force(&LOCK_WOUNDS_INFLICTED);
    LazyLock::force(&LOCK_WOUNDS);
}
