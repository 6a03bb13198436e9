use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::engine::{Durability, FjallEngine, KvIter, MemEngine};

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn mem() -> (Mvcc, Arc<MemEngine>) {
    let engine = Arc::new(MemEngine::new());
    (Mvcc::new(engine.clone()), engine)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn reads_see_newest_version_at_or_below_read_ts() {
    let (m, _) = mem();
    m.put(b"k", ts(10), b"v10").unwrap();
    m.put(b"k", ts(20), b"v20").unwrap();
    m.delete(b"k", ts(30)).unwrap();
    m.put(b"k", ts(40), b"v40").unwrap();
    let cases: [(u64, Option<&[u8]>); 9] = [
        (0, None),
        (9, None),
        (10, Some(b"v10")),
        (15, Some(b"v10")),
        (20, Some(b"v20")),
        (29, Some(b"v20")),
        (30, None),
        (39, None),
        (u64::MAX, Some(b"v40")),
    ];
    for (read, want) in cases {
        assert_eq!(
            m.get(b"k", ts(read)).unwrap().as_deref(),
            want,
            "read at {read}"
        );
    }
    assert_eq!(m.get(b"other", ts(100)).unwrap(), None);
    assert_eq!(m.newest_version(b"k").unwrap(), Some((ts(40), true)));
    m.delete(b"k", ts(50)).unwrap();
    assert_eq!(m.newest_version(b"k").unwrap(), Some((ts(50), false)));
    assert_eq!(m.newest_version(b"kk").unwrap(), None);
}

#[test]
fn empty_values_and_extreme_timestamps_round_trip() {
    let (m, _) = mem();
    m.put(b"", ts(0), b"").unwrap();
    m.put(b"\0", Timestamp::MAX, b"max").unwrap();
    assert_eq!(m.get(b"", ts(0)).unwrap(), Some(vec![]));
    assert_eq!(m.get(b"\0", Timestamp::MAX.prev()).unwrap(), None);
    assert_eq!(m.get(b"\0", Timestamp::MAX).unwrap(), Some(b"max".to_vec()));
    let all = m.scan(b"", b"", Timestamp::MAX, None).unwrap();
    assert_eq!(all, vec![(vec![], vec![]), (vec![0], b"max".to_vec())]);
}

#[test]
fn keys_that_are_prefixes_of_each_other_stay_apart() {
    let (m, _) = mem();
    // Versions of "a" must not be confused with "a\0", "a\0\0" or "ab", whose encodings
    // share bytes with it.
    for (i, k) in [&b"a"[..], b"a\0", b"a\0\0", b"a\x01", b"ab", b"b"]
        .iter()
        .enumerate()
    {
        m.put(k, ts(10), &[b'0' + i as u8]).unwrap();
        m.put(k, ts(20 + i as u64), b"late").unwrap();
    }
    assert_eq!(m.get(b"a", ts(15)).unwrap(), Some(b"0".to_vec()));
    assert_eq!(m.get(b"a\0", ts(15)).unwrap(), Some(b"1".to_vec()));
    assert_eq!(m.get(b"a\0", ts(20)).unwrap(), Some(b"1".to_vec()));
    assert_eq!(m.get(b"a\0", ts(21)).unwrap(), Some(b"late".to_vec()));
    assert_eq!(m.newest_version(b"a").unwrap(), Some((ts(20), true)));
    let keys: Vec<_> = m
        .scan(b"a", b"b", ts(15), None)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [&b"a"[..], b"a\0", b"a\0\0", b"a\x01", b"ab"]);
    assert_eq!(m.max_version_ts(b"a", b"a\0").unwrap(), Some(ts(20)));
    assert_eq!(m.max_version_ts(b"a\0", b"a\x01").unwrap(), Some(ts(22)));
}

#[test]
fn scans_respect_bounds_limits_and_tombstones() {
    let (m, _) = mem();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")] {
        m.put(k.as_bytes(), ts(10), v.as_bytes()).unwrap();
    }
    m.delete(b"b", ts(20)).unwrap();
    m.put(b"c", ts(30), b"3'").unwrap();
    m.put(b"f", ts(40), b"6").unwrap();
    assert_eq!(
        m.scan(b"a", b"", ts(25), None).unwrap(),
        pairs(&[("a", "1"), ("c", "3"), ("d", "4"), ("e", "5")])
    );
    assert_eq!(
        m.scan(b"b", b"e", ts(35), None).unwrap(),
        pairs(&[("c", "3'"), ("d", "4")])
    );
    // A deleted key does not count against the limit.
    assert_eq!(
        m.scan(b"a", b"", ts(25), Some(2)).unwrap(),
        pairs(&[("a", "1"), ("c", "3")])
    );
    assert_eq!(m.scan(b"a", b"", ts(25), Some(0)).unwrap(), vec![]);
    assert_eq!(
        m.scan(b"", b"", ts(15), None).unwrap(),
        pairs(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")])
    );
    assert_eq!(m.scan(b"e", b"b", ts(50), None).unwrap(), vec![]);
    assert_eq!(m.scan(b"a", b"z", ts(5), None).unwrap(), vec![]);
    assert_eq!(m.max_version_ts(b"a", b"c").unwrap(), Some(ts(20)));
    assert_eq!(m.max_version_ts(b"a", b"").unwrap(), Some(ts(40)));
    assert_eq!(m.max_version_ts(b"g", b"").unwrap(), None);
}

#[test]
fn reads_tell_the_newest_version_they_saw_deletions_included() {
    let (m, _) = mem();
    m.put(b"a", ts(10), b"1").unwrap();
    m.put(b"b", ts(10), b"2").unwrap();
    m.delete(b"b", ts(20)).unwrap();
    m.put(b"c", ts(30), b"3").unwrap();
    assert_eq!(
        m.get_seen(b"a", ts(50)).unwrap(),
        (Some(b"1".to_vec()), ts(10))
    );
    // A deletion is a version the reader saw: it reads "no row" because of it.
    assert_eq!(m.get_seen(b"b", ts(50)).unwrap(), (None, ts(20)));
    assert_eq!(
        m.get_seen(b"b", ts(15)).unwrap(),
        (Some(b"2".to_vec()), ts(10))
    );
    assert_eq!(m.get_seen(b"c", ts(25)).unwrap(), (None, Timestamp::ZERO));
    assert_eq!(m.get_seen(b"z", ts(50)).unwrap(), (None, Timestamp::ZERO));
    let (rows, seen) = m.scan_seen(b"a", b"c", ts(50), None).unwrap();
    assert_eq!((rows, seen), (pairs(&[("a", "1")]), ts(20)));
    // Versions above the read timestamp, and keys past the limit, are not seen.
    assert_eq!(m.scan_seen(b"a", b"", ts(25), None).unwrap().1, ts(20));
    assert_eq!(m.scan_seen(b"a", b"", ts(50), Some(1)).unwrap().1, ts(10));
    assert_eq!(
        m.scan_seen(b"a", b"", ts(5), None).unwrap().1,
        Timestamp::ZERO
    );
}

#[test]
fn first_key_finds_the_next_key_with_versions_within_bounds() {
    let (m, _) = mem();
    m.put(b"b", ts(10), b"1").unwrap();
    m.put(b"b", ts(20), b"2").unwrap();
    m.put(b"ba", ts(10), b"3").unwrap();
    m.delete(b"d", ts(30)).unwrap();
    let first = |start: &str, end: &str| {
        m.first_key(start.as_bytes(), end.as_bytes())
            .unwrap()
            .map(|k| String::from_utf8(k).unwrap())
    };
    assert_eq!(first("a", "").as_deref(), Some("b"));
    assert_eq!(first("b", "").as_deref(), Some("b"));
    // A key that extends another is a key of its own, after all the shorter key's versions.
    assert_eq!(first("b\0", "").as_deref(), Some("ba"));
    // Tombstones count: the deleted key still has versions.
    assert_eq!(first("c", "").as_deref(), Some("d"));
    assert_eq!(first("a", "b"), None);
    assert_eq!(first("e", ""), None);
}

#[test]
fn corrupt_versions_are_errors() {
    let (m, engine) = mem();
    let mut b = crate::engine::WriteBatch::new();
    b.put(Space::Data, encode_version_key(b"k", ts(1)), vec![7u8]);
    b.put(Space::Data, b"short".to_vec(), vec![1u8]);
    engine.write(b, Durability::NoSync).unwrap();
    assert!(matches!(m.get(b"k", ts(5)), Err(Error::Corrupt { .. })));
    assert!(matches!(
        m.scan(b"", b"", ts(5), None),
        Err(Error::Corrupt { .. })
    ));
    assert!(decode_version_key(b"abc").is_err());
    let (k, t) = decode_version_key(&encode_version_key(b"x\0y", ts(9))).unwrap();
    assert_eq!((k.as_slice(), t), (&b"x\0y"[..], ts(9)));
}

#[test]
fn batch_is_atomic_with_applied_index_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = Mvcc::new(Arc::new(FjallEngine::open(dir.path()).unwrap()));
        assert_eq!(m.applied_index(7).unwrap(), 0);
        let mut b = m.batch();
        b.put(b"x", ts(5), b"x5");
        b.delete(b"y", ts(5));
        b.set_applied_index(7, 42);
        b.set_applied_index(8, 1);
        assert_eq!(b.len(), 4);
        b.commit(Durability::Sync).unwrap();
    }
    let m = Mvcc::new(Arc::new(FjallEngine::open(dir.path()).unwrap()));
    assert_eq!(m.applied_index(7).unwrap(), 42);
    assert_eq!(m.applied_index(8).unwrap(), 1);
    assert_eq!(m.applied_index(9).unwrap(), 0);
    assert_eq!(m.get(b"x", ts(5)).unwrap(), Some(b"x5".to_vec()));
    assert_eq!(m.newest_version(b"y").unwrap(), Some((ts(5), false)));
}

#[test]
fn crash_drops_unsynced_batches_whole() {
    let (m, engine) = mem();
    let mut b = m.batch();
    b.put(b"a", ts(1), b"1");
    b.set_applied_index(1, 1);
    b.commit(Durability::Sync).unwrap();
    let mut b = m.batch();
    b.put(b"a", ts(2), b"2");
    b.put(b"b", ts(2), b"2");
    b.set_applied_index(1, 2);
    b.commit(Durability::NoSync).unwrap();
    assert_eq!(m.applied_index(1).unwrap(), 2);
    engine.crash();
    assert_eq!(m.applied_index(1).unwrap(), 1);
    assert_eq!(m.get(b"a", ts(9)).unwrap(), Some(b"1".to_vec()));
    assert_eq!(m.get(b"b", ts(9)).unwrap(), None);
}

#[test]
fn gc_keeps_what_reads_at_the_horizon_see() {
    let (m, _) = mem();
    m.put(b"a", ts(10), b"a10").unwrap();
    m.put(b"a", ts(20), b"a20").unwrap();
    m.put(b"a", ts(40), b"a40").unwrap();
    m.put(b"b", ts(10), b"b10").unwrap();
    m.delete(b"b", ts(20)).unwrap();
    m.put(b"c", ts(35), b"c35").unwrap();
    m.delete(b"d", ts(5)).unwrap();
    let stats = m.gc(ts(30)).unwrap();
    assert_eq!(
        stats,
        GcStats {
            keys: 4,
            versions: 7,
            deleted: 4
        }
    );
    assert_eq!(m.get(b"a", ts(30)).unwrap(), Some(b"a20".to_vec()));
    assert_eq!(
        m.get(b"a", ts(10)).unwrap(),
        None,
        "collected below the horizon"
    );
    assert_eq!(m.get(b"b", ts(30)).unwrap(), None);
    assert_eq!(m.newest_version(b"b").unwrap(), None);
    assert_eq!(m.newest_version(b"d").unwrap(), None);
    assert_eq!(m.get(b"c", ts(35)).unwrap(), Some(b"c35".to_vec()));
    // A second pass has nothing left to do.
    assert_eq!(m.gc(ts(30)).unwrap().deleted, 0);
}

/// An engine that counts the pairs its iterators yield.
struct Counting {
    inner: MemEngine,
    yielded: Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn yielded(&self) -> usize {
        self.yielded.swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

impl KvEngine for Counting {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }

    fn iter(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<KvIter> {
        let yielded = self.yielded.clone();
        Ok(Box::new(self.inner.iter(space, range, order)?.inspect(
            move |_| {
                yielded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )))
    }

    fn write(&self, batch: crate::engine::WriteBatch, durability: Durability) -> Result<()> {
        self.inner.write(batch, durability)
    }
}

#[test]
fn reads_of_a_key_with_many_versions_seek_past_them() {
    let engine = Arc::new(Counting {
        inner: MemEngine::new(),
        yielded: Default::default(),
    });
    let m = Mvcc::new(engine.clone());
    m.put(b"a", ts(1), b"a").unwrap();
    for t in 1..=1000 {
        m.put(b"hot", ts(t), format!("{t}").as_bytes()).unwrap();
    }
    m.put(b"z", ts(1), b"z").unwrap();
    engine.yielded();

    // The hot key last changed at 1000: a lock check after that, a refresh across it.
    assert!(
        !m.changed_between(b"hot", b"hot\0", ts(1000), Timestamp::MAX)
            .unwrap()
    );
    assert!(
        m.changed_between(b"hot", b"hot\0", ts(999), ts(1000))
            .unwrap()
    );
    assert!(
        m.changed_between(b"hot", b"hot\0", ts(499), ts(500))
            .unwrap()
    );
    assert!(!m.changed_between(b"a", b"", ts(1000), ts(2000)).unwrap());
    assert_eq!(m.max_version_ts(b"", b"").unwrap(), Some(ts(1000)));
    assert_eq!(
        m.scan(b"", b"", ts(500), None).unwrap(),
        pairs(&[("a", "a"), ("hot", "500"), ("z", "z")])
    );
    // Walking the versions would read over 5,000 pairs.
    let read = engine.yielded();
    assert!(read < 100, "{read} pairs read");
}

/// A write in a random history: key index, timestamp, value (None = tombstone).
type Write = (u8, u64, Option<u8>);

fn key_of(k: u8) -> Vec<u8> {
    // Small keys that are prefixes of each other and contain zero bytes.
    [&b""[..], b"\0", b"a", b"a\0", b"ab", b"b"][k as usize % 6].to_vec()
}

fn apply_history(m: &Mvcc, writes: &[Write]) {
    for chunk in writes.chunks(3) {
        let mut b = m.batch();
        for &(k, t, v) in chunk {
            match v {
                Some(v) => b.put(&key_of(k), ts(t), &[v]),
                None => b.delete(&key_of(k), ts(t)),
            }
        }
        b.commit(Durability::NoSync).unwrap();
    }
}

/// Model: key -> ts -> value, last write at a (key, ts) wins.
fn model_of(writes: &[Write]) -> BTreeMap<Vec<u8>, BTreeMap<u64, Option<u8>>> {
    let mut model: BTreeMap<Vec<u8>, BTreeMap<u64, Option<u8>>> = BTreeMap::new();
    for &(k, t, v) in writes {
        model.entry(key_of(k)).or_default().insert(t, v);
    }
    model
}

fn model_read(
    model: &BTreeMap<Vec<u8>, BTreeMap<u64, Option<u8>>>,
    read: u64,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter_map(|(k, versions)| {
            let (_, v) = versions.range(..=read).next_back()?;
            v.map(|v| (k.clone(), vec![v]))
        })
        .collect()
}

fn arb_history() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec(
        (0u8..6, 0u64..40, prop::option::weighted(0.7, any::<u8>())),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reads_match_model(
        writes in arb_history(),
        read in 0u64..45,
        after in 0u64..45,
        start in 0u8..6,
        limit in 0usize..5,
    ) {
        let (m, _) = mem();
        apply_history(&m, &writes);
        let model = model_of(&writes);
        let expected = model_read(&model, read);
        prop_assert_eq!(&m.scan(b"", b"", ts(read), None).unwrap(), &expected);
        for k in 0..6 {
            let want = expected.iter().find(|(mk, _)| *mk == key_of(k)).map(|(_, v)| v.clone());
            prop_assert_eq!(m.get(&key_of(k), ts(read)).unwrap(), want);
            let newest = model.get(&key_of(k)).and_then(|v| v.iter().next_back())
                .map(|(t, v)| (ts(*t), v.is_some()));
            prop_assert_eq!(m.newest_version(&key_of(k)).unwrap(), newest);
        }
        let start_key = key_of(start);
        let bounded: Vec<_> = expected.iter().filter(|(k, _)| *k >= start_key && k.as_slice() < &b"b"[..])
            .take(limit).cloned().collect();
        prop_assert_eq!(m.scan(&start_key, b"b", ts(read), Some(limit)).unwrap(), bounded);
        let max = model.range(start_key.clone()..b"b".to_vec())
            .flat_map(|(_, v)| v.keys()).max().map(|t| ts(*t));
        prop_assert_eq!(m.max_version_ts(&start_key, b"b").unwrap(), max);
        let changed = model.range(start_key.clone()..b"b".to_vec())
            .flat_map(|(_, v)| v.keys()).any(|&t| t > after && t <= read);
        prop_assert_eq!(m.changed_between(&start_key, b"b", ts(after), ts(read)).unwrap(), changed);
        for k in 0..6 {
            let changed = model.get(&key_of(k))
                .is_some_and(|v| v.keys().any(|&t| t > after && t <= read));
            prop_assert_eq!(m.key_changed_between(&key_of(k), ts(after), ts(read)).unwrap(), changed);
        }
    }

    #[test]
    fn gc_preserves_reads_at_and_above_horizon(writes in arb_history(), horizon in 0u64..45) {
        let (m, _) = mem();
        apply_history(&m, &writes);
        let before: Vec<_> = (horizon..46).map(|r| m.scan(b"", b"", ts(r), None).unwrap()).collect();
        let versions_before = m.engine().scan(Space::Data, KeyRange::all(), None).unwrap().len();
        let stats = m.gc(ts(horizon)).unwrap();
        let after: Vec<_> = (horizon..46).map(|r| m.scan(b"", b"", ts(r), None).unwrap()).collect();
        prop_assert_eq!(before, after);
        let remaining = m.engine().scan(Space::Data, KeyRange::all(), None).unwrap();
        prop_assert_eq!(remaining.len() as u64, versions_before as u64 - stats.deleted);
        // Nothing collectable is left: per key, at most one version at or below the
        // horizon, and it is live.
        let model = model_of(&writes);
        for (k, versions) in &model {
            let at_or_below: Vec<_> = versions.range(..=horizon).collect();
            let expected_left = versions.len() - at_or_below.len()
                + usize::from(matches!(at_or_below.last(), Some((_, Some(_)))));
            let left = remaining.iter()
                .filter(|(sk, _)| decode_version_key(sk).unwrap().0 == *k).count();
            prop_assert_eq!(left, expected_left, "key {:?}", k);
        }
    }
}
