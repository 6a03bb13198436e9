//! Property tests of Marzullo's algorithm on small random intervals.

use meridian_clock::marzullo::{intersect_majority, marzullo};
use proptest::prelude::*;

fn intervals() -> impl Strategy<Value = Vec<(i128, i128)>> {
    prop::collection::vec(
        (-40i128..40, 0i128..30).prop_map(|(lo, w)| (lo, lo + w)),
        1..10,
    )
}

/// Intervals with a permutation of their indices.
fn permuted() -> impl Strategy<Value = (Vec<(i128, i128)>, Vec<usize>)> {
    intervals().prop_flat_map(|v| {
        let order: Vec<usize> = (0..v.len()).collect();
        (Just(v), Just(order).prop_shuffle())
    })
}

/// How many intervals contain `half / 2` (half-integer points see the gaps between integers).
fn coverage(intervals: &[(i128, i128)], half: i128) -> usize {
    intervals
        .iter()
        .filter(|(lo, hi)| 2 * lo <= half && half <= 2 * hi)
        .count()
}

const HALF_POINTS: std::ops::RangeInclusive<i128> = -90..=150;

proptest! {
    #[test]
    fn agreement_is_the_intersection_of_exactly_its_members(v in intervals()) {
        let a = marzullo(&v).expect("non-empty input has an agreement");
        prop_assert!(a.lo <= a.hi);
        prop_assert_eq!(a.count, a.members.len());
        let containing: Vec<usize> =
            (0..v.len()).filter(|&i| v[i].0 <= a.lo && a.hi <= v[i].1).collect();
        prop_assert_eq!(&a.members, &containing);
        // The smallest interval consistent with its members is their intersection.
        prop_assert_eq!(a.lo, a.members.iter().map(|&i| v[i].0).max().unwrap());
        prop_assert_eq!(a.hi, a.members.iter().map(|&i| v[i].1).min().unwrap());
    }

    #[test]
    fn no_point_is_covered_more_than_count(v in intervals()) {
        let a = marzullo(&v).unwrap();
        for half in HALF_POINTS {
            prop_assert!(coverage(&v, half) <= a.count, "point {}/2", half);
        }
        prop_assert_eq!(coverage(&v, 2 * a.lo), a.count);
    }

    #[test]
    fn result_does_not_depend_on_order((v, order) in permuted()) {
        let shuffled: Vec<(i128, i128)> = order.iter().map(|&i| v[i]).collect();
        let a = marzullo(&v).unwrap();
        let b = marzullo(&shuffled).unwrap();
        prop_assert_eq!((a.lo, a.hi, a.count), (b.lo, b.hi, b.count));
        let mut mapped: Vec<usize> = b.members.iter().map(|&i| order[i]).collect();
        mapped.sort_unstable();
        prop_assert_eq!(&a.members, &mapped);

        let ma = intersect_majority(&v);
        let mb = intersect_majority(&shuffled);
        prop_assert_eq!(ma.is_some(), mb.is_some());
        if let (Some(ma), Some(mb)) = (ma, mb) {
            let mut mapped: Vec<usize> = mb.rejected.iter().map(|&i| order[i]).collect();
            mapped.sort_unstable();
            prop_assert_eq!(&ma.rejected, &mapped);
        }
    }

    #[test]
    fn majority_partitions_sources_or_explains_its_absence(v in intervals()) {
        let best = marzullo(&v).unwrap();
        match intersect_majority(&v) {
            Some(m) => {
                prop_assert!(m.agreement.count * 2 > v.len());
                prop_assert_eq!(&m.agreement, &best);
                let mut all = m.agreement.members.clone();
                all.extend(&m.rejected);
                all.sort_unstable();
                prop_assert_eq!(all, (0..v.len()).collect::<Vec<_>>());
            }
            None if best.count * 2 > v.len() => {
                // A majority exists twice over: some point outside the agreement is covered
                // by as many sources.
                let elsewhere = HALF_POINTS
                    .filter(|&h| h < 2 * best.lo || h > 2 * best.hi)
                    .any(|h| coverage(&v, h) == best.count);
                prop_assert!(elsewhere);
            }
            None => {}
        }
    }
}
