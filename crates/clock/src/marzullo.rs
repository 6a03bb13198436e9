//! Marzullo's algorithm: the smallest interval consistent with the most sources.
//!
//! Each source gives a closed interval `[lo, hi]` it claims contains the true value (here, the
//! offset of true time from the local clock). Sorting the endpoints and sweeping them while
//! counting open intervals finds the points covered by the most intervals; the agreement is
//! the stretch between a start and the next end where that count peaks, which is exactly the
//! intersection of the intervals that cover it.
//!
//! Values are `i128` so that offsets (which may be negative) and timestamps both fit.

/// The interval the largest number of sources agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// Lowest agreed value.
    pub lo: i128,
    /// Highest agreed value.
    pub hi: i128,
    /// How many sources contain all of `[lo, hi]`; no value is covered by more sources.
    pub count: usize,
    /// Indices of those sources, ascending.
    pub members: Vec<usize>,
}

/// An agreement reached by a strict majority of the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Majority {
    /// What the majority agrees on.
    pub agreement: Agreement,
    /// Indices of the sources that disagree (their interval does not contain the agreement),
    /// ascending. Empty intervals (`lo > hi`) are always rejected.
    pub rejected: Vec<usize>,
}

/// A stretch `[lo, hi]` covered by `count` intervals, where the coverage peaks locally.
#[derive(Debug, Clone, Copy)]
struct Peak {
    lo: i128,
    hi: i128,
    count: usize,
}

/// Every local peak of coverage, left to right. Intervals with `lo > hi` are empty and ignored.
fn peaks(intervals: &[(i128, i128)]) -> Vec<Peak> {
    const START: u8 = 0;
    const END: u8 = 1;
    let mut events: Vec<(i128, u8)> = intervals
        .iter()
        .filter(|(lo, hi)| lo <= hi)
        .flat_map(|&(lo, hi)| [(lo, START), (hi, END)])
        .collect();
    // Starts sort before ends at the same value: closed intervals that touch do overlap.
    events.sort_unstable();

    let mut peaks = Vec::new();
    let mut open = 0usize;
    for (i, &(value, kind)) in events.iter().enumerate() {
        if kind == START {
            open += 1;
            // A start followed directly by an end opens a stretch no further interval joins:
            // coverage is highest there until that end.
            if let Some(&(next, END)) = events.get(i + 1) {
                peaks.push(Peak {
                    lo: value,
                    hi: next,
                    count: open,
                });
            }
        } else {
            open -= 1;
        }
    }
    peaks
}

/// The peaks with the highest coverage.
fn highest(peaks: Vec<Peak>) -> Vec<Peak> {
    let best = peaks.iter().map(|p| p.count).max().unwrap_or(0);
    peaks.into_iter().filter(|p| p.count == best).collect()
}

fn agreement(intervals: &[(i128, i128)], peak: Peak) -> Agreement {
    let members: Vec<usize> = intervals
        .iter()
        .enumerate()
        .filter(|(_, (lo, hi))| *lo <= peak.lo && peak.hi <= *hi)
        .map(|(i, _)| i)
        .collect();
    debug_assert_eq!(members.len(), peak.count, "a peak's cover is its members");
    Agreement {
        lo: peak.lo,
        hi: peak.hi,
        count: peak.count,
        members,
    }
}

/// The smallest interval consistent with the largest number of `intervals`, or `None` when
/// there are no non-empty intervals.
///
/// When several disjoint stretches tie for the most sources, the narrowest is returned, and of
/// equally narrow ones the lowest; the answer therefore depends only on the set of intervals,
/// not their order.
pub fn marzullo(intervals: &[(i128, i128)]) -> Option<Agreement> {
    let best = highest(peaks(intervals))
        .into_iter()
        .min_by_key(|p| (p.hi.abs_diff(p.lo), p.lo))?;
    Some(agreement(intervals, best))
}

/// The agreement of a strict majority (`count > n / 2` of all `n` intervals), with the
/// sources that disagree.
///
/// Returns `None` when the best agreement has no majority, and also when two disjoint
/// stretches each have the most sources: then the majority is not consistent with itself and
/// there is no telling which side holds the truth.
pub fn intersect_majority(intervals: &[(i128, i128)]) -> Option<Majority> {
    let best = highest(peaks(intervals));
    let [peak] = best.as_slice() else {
        return None;
    };
    if peak.count * 2 <= intervals.len() {
        return None;
    }
    let agreement = agreement(intervals, *peak);
    let rejected = (0..intervals.len())
        .filter(|i| agreement.members.binary_search(i).is_err())
        .collect();
    Some(Majority {
        agreement,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        intervals: &'static [(i128, i128)],
        /// `(lo, hi, members)` expected from `marzullo`.
        best: Option<(i128, i128, &'static [usize])>,
        /// `rejected` expected from `intersect_majority`, or `None` for no majority.
        majority_rejects: Option<&'static [usize]>,
    }

    const CASES: &[Case] = &[
        Case {
            name: "no intervals",
            intervals: &[],
            best: None,
            majority_rejects: None,
        },
        Case {
            name: "one interval",
            intervals: &[(3, 9)],
            best: Some((3, 9, &[0])),
            majority_rejects: Some(&[]),
        },
        Case {
            name: "all overlap",
            intervals: &[(8, 12), (11, 13), (10, 12)],
            best: Some((11, 12, &[0, 1, 2])),
            majority_rejects: Some(&[]),
        },
        Case {
            name: "one liar far away",
            intervals: &[(8, 12), (11, 13), (14, 15)],
            best: Some((11, 12, &[0, 1])),
            majority_rejects: Some(&[2]),
        },
        Case {
            name: "liar listed first",
            intervals: &[(100, 101), (8, 12), (11, 13), (10, 14)],
            best: Some((11, 12, &[1, 2, 3])),
            majority_rejects: Some(&[0]),
        },
        Case {
            name: "touching endpoints overlap at a point",
            intervals: &[(0, 5), (5, 10)],
            best: Some((5, 5, &[0, 1])),
            majority_rejects: Some(&[]),
        },
        Case {
            name: "two disjoint pairs: no majority",
            intervals: &[(0, 2), (1, 3), (10, 12), (11, 13)],
            best: Some((1, 2, &[0, 1])),
            majority_rejects: None,
        },
        Case {
            name: "tie picks the narrowest",
            intervals: &[(0, 4), (20, 21)],
            best: Some((20, 21, &[1])),
            majority_rejects: None,
        },
        Case {
            name: "equally narrow tie picks the lowest",
            intervals: &[(20, 21), (0, 1)],
            best: Some((0, 1, &[1])),
            majority_rejects: None,
        },
        Case {
            name: "a wide source bridges two majorities: ambiguous",
            intervals: &[(0, 10), (0, 1), (2, 3)],
            best: Some((0, 1, &[0, 1])),
            majority_rejects: None,
        },
        Case {
            name: "nested intervals",
            intervals: &[(-50, 50), (-10, 10), (-1, 1)],
            best: Some((-1, 1, &[0, 1, 2])),
            majority_rejects: Some(&[]),
        },
        Case {
            name: "empty interval is ignored and rejected",
            intervals: &[(5, 1), (0, 3), (2, 6)],
            best: Some((2, 3, &[1, 2])),
            majority_rejects: Some(&[0]),
        },
        Case {
            name: "half is not a majority",
            intervals: &[(0, 2), (1, 3), (10, 12), (20, 22)],
            best: Some((1, 2, &[0, 1])),
            majority_rejects: None,
        },
        Case {
            name: "majority of five with two liars",
            intervals: &[(0, 10), (40, 41), (5, 15), (-20, -19), (8, 9)],
            best: Some((8, 9, &[0, 2, 4])),
            majority_rejects: Some(&[1, 3]),
        },
        Case {
            name: "the widest interval does not overflow",
            intervals: &[(i128::MIN, i128::MAX)],
            best: Some((i128::MIN, i128::MAX, &[0])),
            majority_rejects: Some(&[]),
        },
        Case {
            name: "extreme values do not overflow",
            intervals: &[(i128::MIN, i128::MAX), (i128::MAX, i128::MAX)],
            best: Some((i128::MAX, i128::MAX, &[0, 1])),
            majority_rejects: Some(&[]),
        },
    ];

    #[test]
    fn table() {
        for case in CASES {
            let got = marzullo(case.intervals);
            let got = got.map(|a| {
                assert_eq!(a.count, a.members.len(), "{}", case.name);
                (a.lo, a.hi, a.members)
            });
            let want = case.best.map(|(lo, hi, m)| (lo, hi, m.to_vec()));
            assert_eq!(got, want, "marzullo: {}", case.name);

            let majority = intersect_majority(case.intervals);
            let got = majority.as_ref().map(|m| m.rejected.as_slice());
            assert_eq!(
                got, case.majority_rejects,
                "intersect_majority: {}",
                case.name
            );
            if let Some(m) = majority {
                assert!(
                    m.agreement.count * 2 > case.intervals.len(),
                    "{}",
                    case.name
                );
            }
        }
    }
}
