//! Load-based splits: a leader measures how many requests its tablet serves, and a tablet that
//! stays busy splits where its load divides in half (as CockroachDB's
//! `kv.range_split.by_load_enabled`).
//!
//! Every leader replica keeps a [`LoadTracker`]. Each request it serves (reads, scans, writes,
//! 2PC steps, lock and refresh requests) counts once, and one key it touched may enter a small
//! reservoir sample. The upkeep loop ([`maybe_split`], from `dist::maintain`) turns the count
//! into a decayed rate every round; a tablet whose rate stayed above
//! `RangeSettings::split_qps` for `RangeSettings::split_qps_after` splits at the sampled key
//! that divides the samples most evenly ([`split_key`]), moved forward to the first key the
//! tablet holds there, so a split never separates a key's versions. When no key divides the
//! load well enough (all of it on one row, say), the tablet does not split, and waits another
//! full period before it looks again.
//!
//! Merges must not undo such a split: a tablet measured above a quarter of the threshold is
//! not merged with a neighbour, so two tablets merge only when together they serve less than
//! half of it (what CockroachDB's merge queue asks of a merged range's load: a tablet merged
//! nearer the threshold splits again at the next rise, and the two would take turns). The left
//! half of a load split also keeps its right boundary for `RangeSettings::load_merge_delay`.
//! `merge.rs` asks [`LoadTracker::keeps_apart`] and [`LoadTracker::cooling`].
//!
//! The tracker is reset when the replica gains or loses leadership, and when its range
//! changes (a split or a merge): what it measured was another tablet's load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use meridian_clock::Timestamp;

use crate::dist::{RangeClient, RangeSettings};
use crate::range::{self, RangeDescriptor};
use crate::replica::Replica;
use crate::{Error, Result};

/// Keys the reservoir keeps.
const SAMPLE_SLOTS: usize = 32;

/// Fewer samples than this in the tablet's range say too little to split on.
const MIN_SAMPLES: usize = 8;

/// The time constant of the decayed rate and of the sample's memory: requests older than a
/// few of these hardly count.
const DECAY: Duration = Duration::from_secs(1);

/// A split key is good when each side has at least this share of the samples (eighths).
const MIN_SIDE_EIGHTHS: usize = 3;

/// What a leader measures of its load. Recording a request is one atomic increment, plus, for
/// the few requests the reservoir picks, a copy of one key into a slot whose buffer is reused;
/// a slot busy with another copy is skipped rather than waited for.
pub(crate) struct LoadTracker {
    /// Requests recorded (never reset: measurements count from a baseline).
    requests: AtomicU64,
    /// The reservoir's baseline: requests at or below it are forgotten. It follows
    /// `requests` with the decay, so the sample reflects the last few seconds.
    forgotten: AtomicU64,
    /// Mixed into the reservoir's choices, so that trackers do not choose alike.
    seed: u64,
    slots: [Mutex<Vec<u8>>; SAMPLE_SLOTS],
    /// Whether the last measurement was above a quarter of the threshold (see `keeps_apart`).
    busy: AtomicBool,
    /// Touched by the upkeep loop and on resets only.
    measure: Mutex<Measure>,
    /// Where the requests come from (see `follow.rs`).
    origins: crate::follow::Origins,
}

#[derive(Debug, Default)]
struct Measure {
    /// The last observation: when, and `requests` then.
    last: Option<(Timestamp, u64)>,
    /// Requests per second, decayed (`None` before the first complete interval).
    rate: Option<f64>,
    /// Since when the rate has been above the threshold.
    above_since: Option<Timestamp>,
    /// The range generation measured; another one means the range changed.
    generation: u64,
    /// When this replica last split its tablet by load (kept across resets).
    split_at: Option<Timestamp>,
}

impl LoadTracker {
    pub(crate) fn new(seed: u64) -> LoadTracker {
        LoadTracker {
            requests: AtomicU64::new(0),
            forgotten: AtomicU64::new(0),
            seed: mix(seed),
            slots: std::array::from_fn(|_| Mutex::new(Vec::new())),
            busy: AtomicBool::new(false),
            measure: Mutex::new(Measure::default()),
            origins: crate::follow::Origins::new(),
        }
    }

    /// Where the counted requests came from.
    pub(crate) fn origins(&self) -> &crate::follow::Origins {
        &self.origins
    }

    /// Counts one request, from node `origin`. If the reservoir picks it, `pick` is called with a random number
    /// to choose one key the request touched (`None`: it touched none worth sampling).
    pub(crate) fn record<'k>(&self, origin: u64, pick: impl FnOnce(u64) -> Option<&'k [u8]>) {
        self.origins.record(origin);
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let seen = n
            .saturating_sub(self.forgotten.load(Ordering::Relaxed))
            .max(1);
        let r = mix(n ^ self.seed);
        // Reservoir sampling over the requests not yet forgotten: the first fill the slots,
        // each later one replaces a random slot with probability slots / seen.
        let slot = if seen <= SAMPLE_SLOTS as u64 {
            (seen - 1) as usize
        } else {
            (r % seen) as usize
        };
        if slot >= SAMPLE_SLOTS {
            return;
        }
        let Some(key) = pick(r.rotate_left(32)) else {
            return;
        };
        if let Ok(mut kept) = self.slots[slot].try_lock() {
            kept.clear();
            kept.extend_from_slice(key);
        }
    }

    /// The sampled keys.
    pub(crate) fn samples(&self) -> Vec<Vec<u8>> {
        self.slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// Forgets everything measured (leadership changed): the rate, the sample, how long the
    /// load has been high. When this replica last split by load is kept.
    pub(crate) fn reset(&self) {
        let mut m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        *m = Measure {
            split_at: m.split_at,
            ..Measure::default()
        };
        self.forget_samples();
        self.origins.reset();
    }

    fn forget_samples(&self) {
        self.forgotten
            .store(self.requests.load(Ordering::Relaxed), Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
        for s in &self.slots {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Load splits are off: nothing keeps the tablet apart from its neighbours.
    pub(crate) fn stop(&self) {
        self.busy.store(false, Ordering::Relaxed);
    }

    /// Takes one measurement at `now` of the tablet at range generation `generation`, and
    /// answers whether its rate stayed above `split_qps` for `split_after`.
    pub(crate) fn observe(
        &self,
        now: Timestamp,
        generation: u64,
        split_qps: u64,
        split_after: Duration,
    ) -> bool {
        let mut m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        let requests = self.requests.load(Ordering::Relaxed);
        if m.generation != generation {
            *m = Measure {
                split_at: m.split_at,
                generation,
                ..Measure::default()
            };
            self.forget_samples();
        }
        let Some((then, before)) = m
            .last
            .filter(|(then, before)| *then < now && *before <= requests)
        else {
            m.last = Some((now, requests));
            return false;
        };
        m.last = Some((now, requests));
        let elapsed = (now.as_nanos() - then.as_nanos()) as f64 / 1e9;
        let current = (requests - before) as f64 / elapsed;
        // The first interval sets the rate outright, so a new leader judges its load after one
        // round rather than after a ramp.
        let keep = (-elapsed / DECAY.as_secs_f64()).exp();
        let rate = m
            .rate
            .map_or(current, |r| r * keep + current * (1.0 - keep));
        m.rate = Some(rate);
        let forgotten = self.forgotten.load(Ordering::Relaxed).min(requests);
        let remembered = ((requests - forgotten) as f64 * keep) as u64;
        self.forgotten
            .store(requests - remembered, Ordering::Relaxed);
        self.busy
            .store(rate * 4.0 > split_qps as f64, Ordering::Relaxed);
        if rate <= split_qps as f64 {
            m.above_since = None;
            return false;
        }
        let since = *m.above_since.get_or_insert(now);
        now.as_nanos() - since.as_nanos() >= split_after.as_nanos() as u64
    }

    /// The decayed rate of requests per second (`None` before the first measurement).
    pub(crate) fn rate(&self) -> Option<f64> {
        self.measure.lock().unwrap_or_else(|e| e.into_inner()).rate
    }

    /// No good split key was found at `now`: wait another full period before looking again.
    pub(crate) fn no_split(&self, now: Timestamp) {
        let mut m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        m.above_since = m.above_since.map(|_| now);
    }

    /// The tablet was split by load at `now`.
    pub(crate) fn split_done(&self, now: Timestamp) {
        self.measure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .split_at = Some(now);
    }

    /// Whether the tablet's last measured load is above a quarter of the split threshold: merged
    /// with a neighbour, it could make a tablet busy enough to split again.
    pub(crate) fn keeps_apart(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// Whether this replica split its tablet by load less than `delay` before `now`: its
    /// right boundary is where the load divided, and a merge must not remove it yet.
    pub(crate) fn cooling(&self, now: Timestamp, delay: Duration) -> bool {
        let m = self.measure.lock().unwrap_or_else(|e| e.into_inner());
        m.split_at.is_some_and(|at| {
            u128::from(now.as_nanos().saturating_sub(at.as_nanos())) < delay.as_nanos()
        })
    }
}

/// splitmix64: a cheap, well-mixed hash of a counter (randomness without an RNG's state).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where `desc`'s tablet should split so that its sampled load divides about in half, or
/// `None` when no key does. Each distinct sample is a candidate, moved forward to the first
/// key the tablet holds at or after it (`next_key(from)`: the first key with a version in
/// `[from, end)`), so the split falls on a key boundary, inside the range (never at its start),
/// and at or above `range::USER_START`. The candidate whose sides hold the most even shares
/// of the samples wins if each side holds at least three eighths.
pub(crate) fn split_key(
    samples: &[Vec<u8>],
    desc: &RangeDescriptor,
    mut next_key: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    let mut inside: Vec<&[u8]> = samples
        .iter()
        .map(Vec::as_slice)
        .filter(|k| range::contains(desc, k))
        .collect();
    if inside.len() < MIN_SAMPLES {
        return Ok(None);
    }
    inside.sort_unstable();
    let total = inside.len();
    let lowest = desc.start_key.as_slice().max(range::USER_START);
    let mut best: Option<(usize, Vec<u8>)> = None;
    let mut last_tried: Option<Vec<u8>> = None;
    for (i, sample) in inside.iter().enumerate() {
        if i > 0 && inside[i - 1] == *sample {
            continue;
        }
        let Some(key) = next_key((*sample).max(lowest))? else {
            // No key at or after this sample: none after the later ones either.
            break;
        };
        if key.as_slice() <= desc.start_key.as_slice() || last_tried.as_ref() == Some(&key) {
            continue;
        }
        let left = inside.partition_point(|k| *k < key.as_slice());
        let imbalance = total.abs_diff(2 * left);
        if best.as_ref().is_none_or(|(b, _)| imbalance < *b) {
            best = Some((imbalance, key.clone()));
        }
        last_tried = Some(key);
    }
    Ok(best.and_then(|(imbalance, key)| {
        // The smaller side is (total - imbalance) / 2 of the samples.
        ((total - imbalance) * 8 >= total * MIN_SIDE_EIGHTHS * 2).then_some(key)
    }))
}

/// One round of load measurement for `replica` (a leader), and a split by load when its load
/// stayed high; returns whether it split. Errors are logged: the next round tries again.
pub(crate) async fn maybe_split(
    replica: &Replica,
    client: &RangeClient,
    settings: &RangeSettings,
) -> bool {
    let load = replica.load();
    if settings.split_qps == 0 {
        load.stop();
        return false;
    }
    let Ok(now) = client.now().map(|t| t.latest) else {
        return false;
    };
    let desc = replica.descriptor();
    if !load.observe(
        now,
        desc.generation,
        settings.split_qps,
        settings.split_qps_after,
    ) || replica.prepared_count() > 0
    {
        return false;
    }
    match client.split_by_load(replica, &desc).await {
        Ok(true) => {
            load.split_done(now);
            crate::metrics::LOAD_SPLITS.inc();
            true
        }
        Ok(false) => {
            load.no_split(now);
            false
        }
        // Transactions were prepared meanwhile; a later round tries again.
        Err(e @ crate::Error::Refused { .. }) => {
            tracing::debug!(tablet = desc.tablet_id, error = %e, "load split refused");
            false
        }
        Err(e) => {
            tracing::warn!(tablet = desc.tablet_id, error = %e, "load split failed");
            false
        }
    }
}

impl RangeClient {
    /// Splits `desc`, the range of `replica` (its leader), where its sampled load divides in
    /// half; `false` when no key does.
    async fn split_by_load(&self, replica: &Replica, desc: &RangeDescriptor) -> Result<bool> {
        let samples = replica.load().samples();
        let mvcc = replica.mvcc().clone();
        let owned = desc.clone();
        // Each candidate is one engine seek; off the async workers all the same.
        let key = tokio::task::spawn_blocking(move || {
            split_key(&samples, &owned, |from| {
                Ok(mvcc.first_key(from, &owned.end_key)?)
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("choosing a load split key failed: {e}")))??;
        let Some(key) = key else {
            tracing::debug!(
                tablet = desc.tablet_id,
                "busy tablet, but no key divides its load; not splitting"
            );
            return Ok(false);
        };
        tracing::info!(tablet = desc.tablet_id, rate = replica.load().rate().unwrap_or(0.0),
            key = %range::pretty_key(&key), "splitting a busy tablet");
        Ok(self.split_at(&key).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::range::tests::desc;

    const SEC: u64 = 1_000_000_000;

    fn at(tenths: u64) -> Timestamp {
        Timestamp::from_nanos(100 * SEC + tenths * SEC / 10)
    }

    /// `n` requests, each touching `key(i)` for its number `i`.
    fn record(t: &LoadTracker, n: usize, key: impl Fn(usize) -> String) {
        for i in 0..n {
            let k = key(i);
            t.record(1, |_| Some(k.as_bytes()));
        }
    }

    #[test]
    fn the_rate_follows_the_requests_and_a_split_waits_for_a_sustained_period() {
        let t = LoadTracker::new(7);
        let after = Duration::from_secs(2);
        assert!(!t.observe(at(0), 1, 1000, after));
        assert_eq!(t.rate(), None);
        // 1500 requests in half a second: the first interval sets the rate outright.
        record(&t, 1500, |i| format!("/t/{i}"));
        assert!(!t.observe(at(5), 1, 1000, after));
        assert_eq!(t.rate(), Some(3000.0));
        assert!(t.keeps_apart());
        // Still above the threshold, but not for two seconds yet.
        for tenth in [10, 15, 20] {
            record(&t, 1500, |i| format!("/t/{i}"));
            assert!(!t.observe(at(tenth), 1, 1000, after), "at {tenth}");
        }
        record(&t, 1500, |i| format!("/t/{i}"));
        assert!(t.observe(at(25), 1, 1000, after));
        // No key divided the load: the next look waits another full period, busy as it stays.
        t.no_split(at(25));
        for tenth in [30, 35, 40] {
            record(&t, 1500, |i| format!("/t/{i}"));
            assert!(!t.observe(at(tenth), 1, 1000, after), "at {tenth}");
        }
        record(&t, 1500, |i| format!("/t/{i}"));
        assert!(t.observe(at(45), 1, 1000, after));
        // A quiet spell brings the rate down and starts the wait over.
        assert!(!t.observe(at(65), 1, 1000, after));
        assert!(t.rate().unwrap() < 1000.0, "{:?}", t.rate());
        assert!(!t.observe(at(85), 1, 1000, after));
        assert!(!t.keeps_apart(), "{:?}", t.rate());
        record(&t, 1500, |i| format!("/t/{i}"));
        assert!(!t.observe(at(90), 1, 1000, after));
        assert!(t.rate().unwrap() > 1000.0, "{:?}", t.rate());
    }

    #[test]
    fn leadership_changes_and_range_changes_forget_what_was_measured() {
        let t = LoadTracker::new(7);
        let after = Duration::ZERO;
        t.observe(at(0), 1, 100, after);
        record(&t, 500, |i| format!("/t/{i:03}"));
        assert!(t.observe(at(10), 1, 100, after));
        assert_eq!(t.samples().len(), SAMPLE_SLOTS);
        t.reset();
        assert_eq!(
            (t.rate(), t.samples().len(), t.keeps_apart()),
            (None, 0, false)
        );
        // The next interval measures from scratch.
        assert!(!t.observe(at(20), 1, 100, after));
        record(&t, 50, |i| format!("/t/{i:03}"));
        assert!(!t.observe(at(30), 1, 100, after));
        assert_eq!(t.rate(), Some(50.0));
        // A split (a new generation) forgets too, but remembers a split by load.
        t.split_done(at(30));
        assert!(!t.observe(at(40), 2, 100, after));
        assert_eq!((t.rate(), t.samples().len()), (None, 0));
        assert!(t.cooling(at(40), Duration::from_secs(5)));
        assert!(!t.cooling(at(90), Duration::from_secs(5)));
    }

    #[test]
    fn the_sample_follows_where_the_load_moves() {
        let t = LoadTracker::new(3);
        t.observe(at(0), 1, 100, Duration::ZERO);
        record(&t, 5000, |_| "/t/a".into());
        t.observe(at(10), 1, 100, Duration::ZERO);
        assert!(t.samples().iter().all(|k| k == b"/t/a"));
        // Seconds later, the load is elsewhere: the sample forgot the old key.
        for second in 2..6 {
            record(&t, 5000, |_| "/t/b".into());
            t.observe(at(second * 10), 1, 100, Duration::ZERO);
        }
        let old = t.samples().iter().filter(|k| *k == b"/t/a").count();
        assert!(old <= 2, "{old} of {SAMPLE_SLOTS} samples are stale");
        // A uniform load fills the sample with many different keys.
        record(&t, 100_000, |i| format!("/t/{:04}", i % 1000));
        let distinct: BTreeSet<Vec<u8>> = t.samples().into_iter().collect();
        assert!(distinct.len() > SAMPLE_SLOTS / 2, "{distinct:?}");
    }

    /// One choice of split key: the keys the tablet holds, its range, the samples (each with a
    /// count), and the expected key.
    struct Case {
        what: &'static str,
        rows: &'static [&'static str],
        range: (&'static str, &'static str),
        samples: &'static [(&'static str, usize)],
        expected: Option<&'static str>,
    }

    const ROWS: &[&str] = &[
        "/t/1/a", "/t/1/b", "/t/1/c", "/t/1/d", "/t/1/e", "/t/1/f", "/t/1/g", "/t/1/h",
    ];

    #[test]
    fn split_keys_divide_the_sampled_load_at_a_key_the_tablet_holds() {
        let cases = [
            Case {
                what: "an even load splits in the middle",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[
                    ("/t/1/a", 4),
                    ("/t/1/b", 4),
                    ("/t/1/c", 4),
                    ("/t/1/d", 4),
                    ("/t/1/e", 4),
                    ("/t/1/f", 4),
                    ("/t/1/g", 4),
                    ("/t/1/h", 4),
                ],
                expected: Some("/t/1/e"),
            },
            Case {
                what: "a skewed load splits where it divides, not at the middle row",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[
                    ("/t/1/a", 10),
                    ("/t/1/b", 8),
                    ("/t/1/c", 2),
                    ("/t/1/f", 6),
                    ("/t/1/h", 6),
                ],
                expected: Some("/t/1/c"),
            },
            Case {
                what: "keys the tablet does not hold move forward to the next one it does",
                rows: &["/t/1/a", "/t/1/c", "/t/1/e", "/t/1/g"],
                range: ("", ""),
                samples: &[("/t/1/a", 8), ("/t/1/b", 8), ("/t/1/d", 8), ("/t/1/f", 8)],
                expected: Some("/t/1/c"),
            },
            Case {
                what: "a scan starting between rows splits at the next row, after the scan's start",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[("/t/1/a", 8), ("/t/1/cz", 8), ("/t/1/e", 8), ("/t/1/g", 8)],
                expected: Some("/t/1/d"),
            },
            Case {
                what: "all load on one row: no key divides it",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[("/t/1/d", 32)],
                expected: None,
            },
            Case {
                what: "one hot row with a little load around it: still no split",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[("/t/1/c", 3), ("/t/1/d", 26), ("/t/1/e", 3)],
                expected: None,
            },
            Case {
                what: "a hot row with as much load before it is split off",
                rows: ROWS,
                range: ("/t/1/a", ""),
                samples: &[("/t/1/a", 8), ("/t/1/b", 8), ("/t/1/d", 16)],
                expected: Some("/t/1/d"),
            },
            Case {
                what: "never at the range's start",
                rows: ROWS,
                range: ("/t/1/c", "/t/1/g"),
                samples: &[("/t/1/c", 16), ("/t/1/d", 16)],
                expected: Some("/t/1/d"),
            },
            Case {
                what: "the load at the range's start alone cannot be split off",
                rows: ROWS,
                range: ("/t/1/c", "/t/1/g"),
                samples: &[("/t/1/c", 16), ("/t/1/ca", 16)],
                expected: None,
            },
            Case {
                what: "never at or past the range's end; samples outside it do not count",
                rows: ROWS,
                range: ("/t/1/a", "/t/1/c"),
                samples: &[("/t/1/a", 8), ("/t/1/b", 1), ("/t/1/c", 20), ("/t/1/d", 20)],
                expected: None,
            },
            Case {
                what: "the catalog's load is split off at the first table key, never inside",
                rows: &["/sys/catalog/a", "/sys/catalog/b", "/t/1/a", "/t/1/b"],
                range: ("", ""),
                samples: &[
                    ("/sys/catalog/a", 8),
                    ("/sys/catalog/b", 8),
                    ("/t/1/a", 8),
                    ("/t/1/b", 8),
                ],
                expected: Some("/t/1/a"),
            },
            Case {
                what: "too few samples say nothing",
                rows: ROWS,
                range: ("", ""),
                samples: &[("/t/1/a", 3), ("/t/1/e", 3)],
                expected: None,
            },
        ];
        for c in cases {
            let rows: BTreeSet<Vec<u8>> = c.rows.iter().map(|r| r.as_bytes().to_vec()).collect();
            let d = desc(c.range.0, c.range.1);
            let samples: Vec<Vec<u8>> = c
                .samples
                .iter()
                .flat_map(|(k, n)| std::iter::repeat_n(k.as_bytes().to_vec(), *n))
                .collect();
            let next_key = |from: &[u8]| {
                Ok(rows
                    .range(from.to_vec()..)
                    .find(|k| range::contains(&d, k))
                    .cloned())
            };
            let key = split_key(&samples, &d, next_key).unwrap();
            assert_eq!(
                key.as_deref(),
                c.expected.map(str::as_bytes),
                "{}: got {:?}",
                c.what,
                key.as_deref().map(range::pretty_key)
            );
        }
    }
}
