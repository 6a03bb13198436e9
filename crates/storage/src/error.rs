//! The crate's error type.

/// Errors returned by the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded engine (fjall) failed: I/O error, poisoned journal, locked directory.
    #[error("storage engine: {0}")]
    Engine(#[from] fjall::Error),

    /// Stored or encoded bytes are not what the reader expects. This is either a bug (a value
    /// read with the wrong type) or on-disk corruption; it is never caused by user input that
    /// went through the encoders.
    #[error("corrupt data: {what}")]
    Corrupt {
        /// What was being decoded and what was wrong with it.
        what: String,
    },

    /// A decimal literal could not be parsed or is outside the supported range.
    #[error("invalid decimal {input:?}: {reason}")]
    InvalidDecimal {
        /// The text that failed to parse (truncated to 64 characters).
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A Raft log append would leave a hole or overwrite compacted entries.
    #[error("raft group {group_id}: cannot append at index {index}: {reason}")]
    LogAppend {
        /// The Raft group.
        group_id: u64,
        /// The index of the first offending entry.
        index: u64,
        /// Why the append was rejected.
        reason: &'static str,
    },

    /// A Raft log was asked to compact past its last entry.
    #[error("raft group {group_id}: cannot compact to {compact_index}, last index is {last_index}")]
    CompactBeyondLog {
        /// The Raft group.
        group_id: u64,
        /// The requested compaction index.
        compact_index: u64,
        /// The last index in the log.
        last_index: u64,
    },

    /// `RaftLogStore::initialize` was called on a group that already has state.
    #[error("raft group {group_id} is already initialized")]
    AlreadyInitialized {
        /// The Raft group.
        group_id: u64,
    },

    /// An error with raft-rs's own meaning (`Compacted`, `Unavailable`, ...).
    #[error(transparent)]
    Raft(#[from] raft::Error),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt { what: what.into() }
    }
}

impl From<Error> for raft::Error {
    /// raft-rs's `Storage` trait speaks `raft::Error`; errors that are not already raft errors
    /// travel as `StorageError::Other`, which makes the Raft node refuse to make progress
    /// rather than act on a log it cannot read.
    fn from(e: Error) -> Self {
        match e {
            Error::Raft(e) => e,
            other => raft::Error::Store(raft::StorageError::Other(Box::new(other))),
        }
    }
}
