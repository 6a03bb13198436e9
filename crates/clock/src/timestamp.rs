//! Timestamps: nanoseconds since the Unix epoch, totally ordered.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A point in time, as nanoseconds since the Unix epoch (UTC). Commit timestamps, read
/// timestamps and TrueTime bounds are all `Timestamp`s; their total order is the order of
/// transactions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The smallest timestamp (the Unix epoch).
    pub const ZERO: Timestamp = Timestamp(0);
    /// The largest representable timestamp.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `nanos` nanoseconds after the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The next timestamp (saturating at [`Timestamp::MAX`]).
    pub const fn next(self) -> Self {
        Timestamp(self.0.saturating_add(1))
    }

    /// The previous timestamp (saturating at [`Timestamp::ZERO`]).
    pub const fn prev(self) -> Self {
        Timestamp(self.0.saturating_sub(1))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - d`, saturating at zero.
    pub fn saturating_sub(self, d: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// The duration from `earlier` to `self`, zero if `earlier` is not earlier.
    pub fn duration_since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Big-endian bytes: byte order equals timestamp order.
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Inverse of [`Timestamp::to_be_bytes`].
    pub const fn from_be_bytes(b: [u8; 8]) -> Self {
        Timestamp(u64::from_be_bytes(b))
    }

    /// The timestamp as a UTC date-time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        let secs = (self.0 / 1_000_000_000) as i64;
        let nanos = (self.0 % 1_000_000_000) as u32;
        DateTime::from_timestamp(secs, nanos).unwrap_or_default()
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}={})", self.0, self)
    }
}

/// Formats as RFC 3339 with nanoseconds in UTC, e.g. `2026-11-25T12:04:37.123456789Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.9fZ"))
    }
}

/// Error parsing a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {input:?}: expected RFC 3339 (e.g. 2026-11-25T12:00:00.000000001Z) or integer nanoseconds since the Unix epoch"
)]
pub struct ParseTimestampError {
    input: String,
}

/// Parses RFC 3339 (any offset; converted to UTC) or a plain integer of nanoseconds since the
/// Unix epoch (optionally with a fractional part, as CockroachDB's decimal timestamps).
impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseTimestampError {
            input: s.to_string(),
        };
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse::<u64>().map(Timestamp).map_err(|_| err());
        }
        if let Some((int, frac)) = t.split_once('.')
            && !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            return int.parse::<u64>().map(Timestamp).map_err(|_| err());
        }
        let dt = DateTime::parse_from_rfc3339(t).map_err(|_| err())?;
        let nanos = dt.timestamp_nanos_opt().ok_or_else(err)?;
        u64::try_from(nanos).map(Timestamp).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let t = Timestamp::from_nanos(1_764_072_277_123_456_789);
        let s = t.to_string();
        assert_eq!(s, "2025-11-25T12:04:37.123456789Z");
        assert_eq!(s.parse::<Timestamp>().unwrap(), t);
        assert_eq!("1764072277123456789".parse::<Timestamp>().unwrap(), t);
        assert_eq!(
            "2025-11-25T13:04:37.123456789+01:00"
                .parse::<Timestamp>()
                .unwrap(),
            t
        );
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("1969-12-31T23:59:59Z".parse::<Timestamp>().is_err());
    }

    #[test]
    fn order_and_arithmetic() {
        let a = Timestamp::from_nanos(10);
        assert!(a < a.next());
        assert_eq!(a.next().prev(), a);
        assert_eq!(Timestamp::MAX.next(), Timestamp::MAX);
        assert_eq!(Timestamp::ZERO.prev(), Timestamp::ZERO);
        assert_eq!(Timestamp::from_be_bytes(a.to_be_bytes()), a);
        assert!(
            Timestamp::from_nanos(256).to_be_bytes() > Timestamp::from_nanos(255).to_be_bytes()
        );
    }
}
