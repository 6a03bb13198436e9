//! The crate's error type.

use std::time::Duration;

use crate::Timestamp;

/// Why TrueTime cannot give a trustworthy answer, or why a sync was refused.
///
/// Every variant means "do not assign timestamps from this clock right now"; none of them is a
/// bug in the caller except [`ClockError::InvalidSample`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The uncertainty has grown past the configured maximum (the node has not synced for too
    /// long, or its last sync was poor).
    #[error("clock uncertainty {epsilon:?} exceeds the maximum of {max:?}; the clock must re-sync")]
    UncertaintyTooLarge {
        /// The current uncertainty (half the width of the interval).
        epsilon: Duration,
        /// The configured maximum, `TrueTimeConfig::max_epsilon`.
        max: Duration,
    },

    /// The node fenced its clock (for example after disagreeing with the cluster) and must not
    /// assign timestamps until it is unfenced.
    #[error("clock is fenced: {reason}")]
    Fenced {
        /// Why the clock was fenced, as given to `TrueTime::fence`.
        reason: String,
    },

    /// The physical clock reads earlier than the local time of the last sync, so it was stepped
    /// backwards and the offset learned at that sync no longer applies.
    #[error(
        "physical clock went backwards: it reads {now} but the last sync was at {last_sync}; \
         the clock must re-sync"
    )]
    ClockWentBackwards {
        /// The physical reading.
        now: Timestamp,
        /// The physical reading recorded at the last sync.
        last_sync: Timestamp,
    },

    /// A sync sample is malformed (its round trip or source interval is inverted, it lies in
    /// the local clock's future, or it implies an offset beyond ±292 years).
    #[error("invalid sync sample {index}: {reason}")]
    InvalidSample {
        /// The position of the sample in the slice given (0 for a single sample).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// The time sources do not agree: no single interval is consistent with a strict majority.
    #[error(
        "no majority of the {sources} time sources agrees on one interval \
         (the largest consistent group has {agreeing})"
    )]
    NoMajority {
        /// The size of the largest group of sources that agree with each other.
        agreeing: usize,
        /// How many sources were consulted.
        sources: usize,
    },
}

/// `Result` with [`ClockError`].
pub type Result<T> = std::result::Result<T, ClockError>;
