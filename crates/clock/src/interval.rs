//! TrueTime intervals.

use std::fmt;
use std::time::Duration;

use crate::Timestamp;

/// A closed interval `[earliest, latest]` guaranteed to contain true time when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtInterval {
    /// No earlier than this.
    pub earliest: Timestamp,
    /// No later than this.
    pub latest: Timestamp,
}

impl TtInterval {
    /// The interval `[mid - epsilon, mid + epsilon]`, saturating at the ends of time.
    pub fn around(mid: Timestamp, epsilon: Duration) -> Self {
        TtInterval {
            earliest: mid.saturating_sub(epsilon),
            latest: mid.saturating_add(epsilon),
        }
    }

    /// Half the width of the interval, rounded up (the "epsilon" of the TrueTime paper).
    pub fn epsilon(&self) -> Duration {
        let width = self
            .latest
            .as_nanos()
            .saturating_sub(self.earliest.as_nanos());
        Duration::from_nanos(width.div_ceil(2))
    }

    /// The middle of the interval, rounded down.
    pub fn midpoint(&self) -> Timestamp {
        let width = self
            .latest
            .as_nanos()
            .saturating_sub(self.earliest.as_nanos());
        Timestamp::from_nanos(self.earliest.as_nanos() + width / 2)
    }

    /// Whether `t` lies in the interval (both ends included).
    pub fn contains(&self, t: Timestamp) -> bool {
        self.earliest <= t && t <= self.latest
    }
}

/// Formats as `[earliest, latest]` in RFC 3339.
impl fmt::Display for TtInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.earliest, self.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    #[test]
    fn around_epsilon_midpoint_and_contains() {
        let i = TtInterval::around(ts(1_000), Duration::from_nanos(7));
        assert_eq!((i.earliest, i.latest), (ts(993), ts(1_007)));
        assert_eq!(i.epsilon(), Duration::from_nanos(7));
        assert_eq!(i.midpoint(), ts(1_000));
        assert!(i.contains(ts(993)) && i.contains(ts(1_007)) && i.contains(ts(1_000)));
        assert!(!i.contains(ts(992)) && !i.contains(ts(1_008)));
    }

    #[test]
    fn odd_width_rounds_epsilon_up() {
        let i = TtInterval {
            earliest: ts(10),
            latest: ts(13),
        };
        assert_eq!(i.epsilon(), Duration::from_nanos(2));
        assert_eq!(i.midpoint(), ts(11));
    }

    #[test]
    fn around_saturates() {
        let i = TtInterval::around(ts(3), Duration::from_nanos(10));
        assert_eq!(i.earliest, Timestamp::ZERO);
        let j = TtInterval::around(Timestamp::MAX, Duration::from_nanos(10));
        assert_eq!(j.latest, Timestamp::MAX);
    }

    #[test]
    fn displays_both_ends() {
        let i = TtInterval {
            earliest: ts(0),
            latest: ts(1_000_000_000),
        };
        assert_eq!(
            i.to_string(),
            "[1970-01-01T00:00:00.000000000Z, 1970-01-01T00:00:01.000000000Z]"
        );
    }
}
