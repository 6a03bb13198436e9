use std::ops::Bound;
use std::sync::Arc;

use super::*;

fn engines() -> Vec<(Arc<dyn KvEngine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let fjall = FjallEngine::open(dir.path()).unwrap();
    vec![
        (Arc::new(MemEngine::new()), None),
        (Arc::new(fjall), Some(dir)),
    ]
}

fn keys(pairs: &[KvPair]) -> Vec<&[u8]> {
    pairs.iter().map(|(k, _)| k.as_slice()).collect()
}

fn fill(engine: &dyn KvEngine) {
    let mut b = WriteBatch::new();
    for k in [&b"a"[..], b"ab", b"b", b"b\0", b"c"] {
        b.put(Space::Data, k, [k, b"-v"].concat());
    }
    b.put(Space::Meta, b"a", b"meta");
    engine.write(b, Durability::NoSync).unwrap();
}

#[test]
fn puts_gets_and_deletes_per_space() {
    for (engine, _dir) in engines() {
        fill(&*engine);
        assert_eq!(
            engine.get(Space::Data, b"ab").unwrap(),
            Some(b"ab-v".to_vec())
        );
        assert_eq!(
            engine.get(Space::Meta, b"a").unwrap(),
            Some(b"meta".to_vec())
        );
        assert_eq!(engine.get(Space::RaftLog, b"a").unwrap(), None);
        let mut b = WriteBatch::new();
        b.delete(Space::Data, b"ab");
        b.put(Space::Data, b"a", b"new");
        b.delete(Space::Data, b"missing");
        engine.write(b, Durability::Sync).unwrap();
        assert_eq!(engine.get(Space::Data, b"ab").unwrap(), None);
        assert_eq!(
            engine.get(Space::Data, b"a").unwrap(),
            Some(b"new".to_vec())
        );
        // Later operations on a key in one batch win.
        let mut b = WriteBatch::new();
        b.put(Space::Data, b"z", b"1");
        b.delete(Space::Data, b"z");
        b.put(Space::Data, b"y", b"1");
        b.put(Space::Data, b"y", b"2");
        engine.write(b, Durability::NoSync).unwrap();
        assert_eq!(engine.get(Space::Data, b"z").unwrap(), None);
        assert_eq!(engine.get(Space::Data, b"y").unwrap(), Some(b"2".to_vec()));
    }
}

#[test]
fn ranges_respect_bounds_and_order() {
    for (engine, _dir) in engines() {
        fill(&*engine);
        let all = engine.scan(Space::Data, KeyRange::all(), None).unwrap();
        assert_eq!(keys(&all), [&b"a"[..], b"ab", b"b", b"b\0", b"c"]);
        let some = engine
            .scan(Space::Data, KeyRange::half_open(b"ab", b"c"), None)
            .unwrap();
        assert_eq!(keys(&some), [&b"ab"[..], b"b", b"b\0"]);
        let limited = engine.scan(Space::Data, KeyRange::all(), Some(2)).unwrap();
        assert_eq!(keys(&limited), [&b"a"[..], b"ab"]);
        let prefix = engine
            .scan(Space::Data, KeyRange::prefix(b"b"), None)
            .unwrap();
        assert_eq!(keys(&prefix), [&b"b"[..], b"b\0"]);
        let excl = KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Included(b"b".to_vec()),
        };
        let rev: Vec<_> = engine
            .iter(Space::Data, excl, ScanOrder::Reverse)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(rev, [b"b".to_vec(), b"ab".to_vec()]);
        let last = engine
            .first(Space::Data, KeyRange::all(), ScanOrder::Reverse)
            .unwrap();
        assert_eq!(last.map(|(k, _)| k), Some(b"c".to_vec()));
        // Empty and inverted ranges are empty, not errors or panics.
        for range in [
            KeyRange::half_open(b"c", b"a"),
            KeyRange::half_open(b"b", b"b"),
            KeyRange {
                start: Bound::Excluded(b"b".to_vec()),
                end: Bound::Excluded(b"b".to_vec()),
            },
        ] {
            assert!(range.is_empty());
            assert!(engine.scan(Space::Data, range, None).unwrap().is_empty());
        }
    }
}

#[test]
fn iterators_see_a_snapshot() {
    for (engine, _dir) in engines() {
        fill(&*engine);
        let mut iter = engine
            .iter(Space::Data, KeyRange::all(), ScanOrder::Forward)
            .unwrap();
        assert_eq!(iter.next().unwrap().unwrap().0, b"a");
        let mut b = WriteBatch::new();
        b.put(Space::Data, b"aa", b"later");
        b.delete(Space::Data, b"c");
        engine.write(b, Durability::NoSync).unwrap();
        let rest: Vec<_> = iter.map(|r| r.unwrap().0).collect();
        assert_eq!(
            rest,
            [
                b"ab".to_vec(),
                b"b".to_vec(),
                b"b\0".to_vec(),
                b"c".to_vec()
            ]
        );
        assert_eq!(
            engine.get(Space::Data, b"aa").unwrap(),
            Some(b"later".to_vec())
        );
    }
}

#[test]
fn mem_engine_crash_keeps_only_synced_writes() {
    let engine = MemEngine::new();
    let put = |k: &[u8], d| {
        let mut b = WriteBatch::new();
        b.put(Space::Data, k, b"v");
        b.put(Space::Meta, k, b"v");
        engine.write(b, d).unwrap();
    };
    put(b"1", Durability::NoSync);
    put(b"2", Durability::Sync);
    put(b"3", Durability::NoSync);
    put(b"4", Durability::NoSync);
    assert_eq!(engine.unsynced_batches(), 2);
    engine.crash();
    assert_eq!(engine.unsynced_batches(), 0);
    for space in [Space::Data, Space::Meta] {
        let after = engine.scan(space, KeyRange::all(), None).unwrap();
        assert_eq!(keys(&after), [&b"1"[..], b"2"], "{space:?}");
    }
    // An empty synced batch makes earlier writes durable too.
    put(b"5", Durability::NoSync);
    engine.write(WriteBatch::new(), Durability::Sync).unwrap();
    engine.crash();
    assert_eq!(engine.get(Space::Data, b"5").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn fjall_engine_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = FjallEngine::open(dir.path()).unwrap();
        fill(&engine);
        let mut b = WriteBatch::new();
        b.put(Space::RaftState, b"hs", b"1");
        b.delete(Space::Data, b"b");
        engine.write(b, Durability::Sync).unwrap();
    }
    let engine = FjallEngine::open(dir.path()).unwrap();
    let all = engine.scan(Space::Data, KeyRange::all(), None).unwrap();
    assert_eq!(keys(&all), [&b"a"[..], b"ab", b"b\0", b"c"]);
    assert_eq!(
        engine.get(Space::RaftState, b"hs").unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(
        engine.get(Space::Meta, b"a").unwrap(),
        Some(b"meta".to_vec())
    );
}

#[test]
fn key_range_contains_matches_bounds() {
    let r = KeyRange::half_open(b"b", b"d");
    assert!(!r.contains(b"a") && r.contains(b"b") && r.contains(b"c\xff") && !r.contains(b"d"));
    let p = KeyRange::prefix(b"\xff");
    assert_eq!(p.end, Bound::Unbounded);
    assert!(p.contains(b"\xff\x00") && !p.contains(b"\xfe"));
}
