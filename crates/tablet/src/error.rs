//! Errors of the tablet layer.

use meridian_clock::Timestamp;

/// Result alias of the tablet layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading from or writing to a tablet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write's precondition did not hold at apply time; nothing was written.
    #[error("condition failed on key {key:?}: {kind}")]
    ConditionFailed {
        /// The key whose condition failed.
        key: Vec<u8>,
        /// Which condition (for example "key exists").
        kind: ConditionFailure,
    },
    /// A key the writer read at `read_ts` was overwritten by a later commit before this write
    /// applied; nothing was written and the whole operation may be retried.
    #[error("write conflict: data read at {read_ts} changed before commit")]
    WriteConflict {
        /// The snapshot the writer read at.
        read_ts: Timestamp,
    },
    /// This replica is not the leader of its group.
    #[error("replica {replica} of tablet {tablet} is not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// Tablet id.
        tablet: u64,
        /// This replica's id.
        replica: u64,
        /// The leader this replica believes in, if any.
        leader: Option<u64>,
    },
    /// The tablet could not serve the request in time (no leader, no quorum, shutting down).
    #[error("tablet {tablet} unavailable: {reason}")]
    Unavailable {
        /// Tablet id.
        tablet: u64,
        /// Why.
        reason: String,
    },
    /// A write was proposed but its outcome is unknown (leadership changed or the request
    /// timed out after proposing): it may or may not have committed. Not safe to retry blindly.
    #[error(
        "result of the write to tablet {tablet} is ambiguous: it may or may not have committed"
    )]
    Ambiguous {
        /// Tablet id.
        tablet: u64,
    },
    /// The node's clock is outside its uncertainty bound; it must not assign timestamps.
    /// The request names keys the tablet does not hold (it split, or the caller's routing is
    /// stale); `range` is the tablet's current range.
    #[error(
        "tablet {tablet} does not hold the requested keys (it holds {})",
        describe(range)
    )]
    RangeMismatch {
        /// The tablet that refused.
        tablet: u64,
        /// Its current range.
        range: Box<crate::RangeDescriptor>,
    },
    /// The tablet is frozen for a merge into its left neighbour, or was merged into it and is
    /// gone: it takes no writes and serves no reads above the merge point. Nothing was done;
    /// look the range up again (the merged tablet will hold the keys).
    #[error("tablet {tablet} is merging into its left neighbour; look the range up again")]
    RangeMerging {
        /// The tablet that refused.
        tablet: u64,
    },
    /// The tablet refused a range change planned on a state it is no longer in (a merge planned
    /// on an older range, or while transactions are prepared); nothing changed. Plan again
    /// later.
    #[error("tablet {tablet} refused: {reason}")]
    Refused {
        /// The tablet.
        tablet: u64,
        /// Why.
        reason: String,
    },
    /// The tablet's leader is a replica this router does not know, or none of the replicas it
    /// knows answered for a while: the tablet's replicas may have changed since its range was
    /// looked up. Look it up again.
    #[error(
        "tablet {tablet}: the replicas this gateway knows are not answering as its current ones"
    )]
    ReplicasChanged {
        /// Tablet id.
        tablet: u64,
        /// The leader's replica (node) id, when one named it; 0 when unknown.
        leader: u64,
    },
    /// A transaction across tablets was aborted (a participant refused to prepare, or recovery
    /// aborted it); nothing of it is visible.
    #[error("transaction aborted: {reason}")]
    TxnAborted {
        /// Why.
        reason: String,
    },
    /// A write asked to commit at a timestamp the leader already passed (it assigned `min` or
    /// served a read there); nothing was written. Retry above `min`.
    #[error("tablet {tablet} cannot commit at the requested timestamp; it is at {min}")]
    CommitTsTooLow {
        /// The tablet.
        tablet: u64,
        /// The largest timestamp it assigned.
        min: Timestamp,
    },
    /// A transaction's writes buffered at its gateway (with what it read, kept for validation)
    /// would take more than the limit; nothing was written. Never crosses the wire.
    #[error(
        "the transaction would buffer {bytes} bytes of writes and reads, over its limit of {limit}"
    )]
    TxnTooLarge {
        /// What it would hold.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    #[error(transparent)]
    Clock(#[from] meridian_clock::ClockError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] meridian_storage::Error),
    /// Raft reported an error.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which write precondition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionFailure {
    /// The key had to be absent but exists.
    Exists,
    /// The key had to exist but is absent.
    Missing,
}

impl std::fmt::Display for ConditionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConditionFailure::Exists => "key already exists",
            ConditionFailure::Missing => "key does not exist",
        })
    }
}

fn describe(r: &crate::RangeDescriptor) -> String {
    let end = if r.end_key.is_empty() {
        "the end".to_string()
    } else {
        crate::range::pretty_key(&r.end_key)
    };
    format!("[{}, {end})", crate::range::pretty_key(&r.start_key))
}

impl Error {
    /// True when retrying the same operation (with a fresh read timestamp) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::WriteConflict { .. }
                | Error::NotLeader { .. }
                | Error::Unavailable { .. }
                | Error::RangeMismatch { .. }
                | Error::RangeMerging { .. }
                | Error::TxnAborted { .. }
                | Error::CommitTsTooLow { .. }
        )
    }
}
