//! Mirrors raft-rs's `MemStorage` tests (src/storage.rs), each run on a freshly written store
//! and again on a store reopened from the same engine, plus durability tests.

use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, Storage, StorageError};

use super::*;
use crate::engine::{Durability, FjallEngine, KeyRange, MemEngine, WriteBatch};

fn new_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn new_snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().mut_conf_state().voters = voters;
    s
}

fn size_of(e: &Entry) -> u64 {
    u64::from(e.compute_size())
}

fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// Two stores whose log holds exactly `ents` (contiguous, starting after index 0 or a
/// snapshot): one as written, one reopened from its engine. Each has its own engine, since
/// two live handles on one group would have diverging caches.
fn stores_with(ents: &[Entry]) -> [RaftLogStore; 2] {
    let build = |reopen: bool| {
        let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
        let store = RaftLogStore::open(engine.clone(), 1).unwrap();
        if let Some(first) = ents.first().filter(|e| e.index > 1) {
            // Truncate the log just before the first entry, with term 0 there so that
            // `term(first - 1)` is distinguishable.
            store
                .apply_snapshot(&new_snapshot(first.index - 1, 0, vec![1]))
                .unwrap();
        }
        store.persist(ents, None, Durability::NoSync).unwrap();
        if reopen {
            RaftLogStore::open(engine, 1).unwrap()
        } else {
            store
        }
    };
    [build(false), build(true)]
}

#[test]
fn storage_term() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    let cases = [
        (1, Err(store_err(StorageError::Compacted))),
        // MemStorage answers Compacted here; this store keeps the term of the entry before
        // the first one.
        (2, Ok(0)),
        (3, Ok(3)),
        (4, Ok(4)),
        (5, Ok(5)),
        (6, Err(store_err(StorageError::Unavailable))),
    ];
    for store in stores_with(&ents) {
        for (idx, want) in &cases {
            assert_eq!(&store.term(*idx), want, "term({idx})");
        }
    }
}

#[test]
fn storage_entries() {
    let ents = [
        new_entry(3, 3),
        new_entry(4, 4),
        new_entry(5, 5),
        new_entry(6, 6),
    ];
    let max = u64::MAX;
    let (s1, s2, s3) = (size_of(&ents[1]), size_of(&ents[2]), size_of(&ents[3]));
    let cases = vec![
        (2, 6, max, Err(store_err(StorageError::Compacted))),
        (3, 4, max, Ok(vec![new_entry(3, 3)])),
        (4, 5, max, Ok(vec![new_entry(4, 4)])),
        (4, 6, max, Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
        (4, 7, max, Ok(ents[1..].to_vec())),
        // Even with max_size 0 the first entry is returned.
        (4, 7, 0, Ok(vec![new_entry(4, 4)])),
        (4, 7, s1 + s2, Ok(ents[1..3].to_vec())),
        (4, 7, s1 + s2 + s3 / 2, Ok(ents[1..3].to_vec())),
        (4, 7, s1 + s2 + s3 - 1, Ok(ents[1..3].to_vec())),
        (4, 7, s1 + s2 + s3, Ok(ents[1..].to_vec())),
        (5, 5, max, Ok(vec![])),
        // Where MemStorage panics, this store answers Unavailable.
        (4, 8, max, Err(store_err(StorageError::Unavailable))),
        (5, 4, max, Err(store_err(StorageError::Unavailable))),
    ];
    for store in stores_with(&ents) {
        for (i, (lo, hi, max_size, want)) in cases.iter().enumerate() {
            assert_eq!(&store.entries(*lo, *hi, *max_size, ctx()), want, "case {i}");
        }
        // No limit at all.
        assert_eq!(store.entries(3, 7, None, ctx()).unwrap(), ents.to_vec());
    }
}

#[test]
fn storage_last_index() {
    for store in stores_with(&[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]) {
        assert_eq!(store.last_index(), Ok(5));
        store
            .persist(&[new_entry(6, 5)], None, Durability::NoSync)
            .unwrap();
        assert_eq!(store.last_index(), Ok(6));
    }
}

#[test]
fn storage_first_index() {
    for store in stores_with(&[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]) {
        assert_eq!(store.first_index(), Ok(3));
        store.compact(4).unwrap();
        assert_eq!(store.first_index(), Ok(4));
    }
}

#[test]
fn storage_compact() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    // (compact index, first index, term of the first entry, entries left)
    let cases = [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)];
    for (idx, windex, wterm, wlen) in cases {
        let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
        let store = RaftLogStore::open(engine.clone(), 1).unwrap();
        store.apply_snapshot(&new_snapshot(2, 2, vec![1])).unwrap();
        store.persist(&ents, None, Durability::NoSync).unwrap();
        store.compact(idx).unwrap();
        for store in [store, RaftLogStore::open(engine, 1).unwrap()] {
            let index = store.first_index().unwrap();
            assert_eq!(index, windex, "compact({idx})");
            let first = store.entries(index, index + 1, 1, ctx()).unwrap();
            assert_eq!(first[0].term, wterm, "compact({idx})");
            let last = store.last_index().unwrap();
            assert_eq!(
                store.entries(index, last + 1, 100, ctx()).unwrap().len(),
                wlen
            );
            // The term just before the first entry survives compaction.
            assert_eq!(store.term(index - 1), Ok(index - 1));
        }
    }
}

#[test]
fn compact_everything_and_past_the_end() {
    for store in stores_with(&[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]) {
        assert!(matches!(
            store.compact(7),
            Err(Error::CompactBeyondLog { last_index: 5, .. })
        ));
        store.compact(6).unwrap();
        assert_eq!((store.first_index(), store.last_index()), (Ok(6), Ok(5)));
        assert_eq!(store.term(5), Ok(5));
        assert_eq!(store.entries(6, 6, None, ctx()), Ok(vec![]));
        store
            .persist(&[new_entry(6, 6)], None, Durability::NoSync)
            .unwrap();
        assert_eq!(store.entries(6, 7, None, ctx()), Ok(vec![new_entry(6, 6)]));
    }
}

#[test]
fn storage_append() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    let cases: Vec<(Vec<Entry>, Option<Vec<Entry>>)> = vec![
        (ents.to_vec(), Some(ents.to_vec())),
        (
            vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)],
            Some(vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)]),
        ),
        (
            vec![
                ents[0].clone(),
                ents[1].clone(),
                ents[2].clone(),
                new_entry(6, 5),
            ],
            Some(vec![
                ents[0].clone(),
                ents[1].clone(),
                ents[2].clone(),
                new_entry(6, 5),
            ]),
        ),
        // Overwriting compacted entries is refused.
        (
            vec![new_entry(2, 3), new_entry(3, 3), new_entry(4, 5)],
            None,
        ),
        // Truncate the existing entries and append.
        (
            vec![new_entry(4, 5)],
            Some(vec![new_entry(3, 3), new_entry(4, 5)]),
        ),
        // Direct append.
        (
            vec![new_entry(6, 6)],
            Some(vec![
                ents[0].clone(),
                ents[1].clone(),
                ents[2].clone(),
                new_entry(6, 6),
            ]),
        ),
        // A gap, and a non-contiguous batch, are refused.
        (vec![new_entry(7, 6)], None),
        (vec![new_entry(5, 6), new_entry(7, 6)], None),
    ];
    for (i, (append, want)) in cases.into_iter().enumerate() {
        let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
        let [store, _] = {
            let s = RaftLogStore::open(engine.clone(), 1).unwrap();
            s.apply_snapshot(&new_snapshot(2, 2, vec![1])).unwrap();
            s.persist(&ents, None, Durability::NoSync).unwrap();
            [s.clone(), s]
        };
        let res = store.persist(&append, None, Durability::NoSync);
        let reopened = RaftLogStore::open(engine, 1).unwrap();
        match want {
            Some(want) => {
                res.unwrap();
                for s in [&store, &reopened] {
                    let last = s.last_index().unwrap();
                    assert_eq!(
                        s.entries(3, last + 1, None, ctx()).unwrap(),
                        want,
                        "case {i}"
                    );
                }
            }
            None => {
                assert!(
                    matches!(res, Err(Error::LogAppend { .. })),
                    "case {i}: {res:?}"
                );
                assert_eq!(reopened.entries(3, 6, None, ctx()).unwrap(), ents.to_vec());
            }
        }
    }
}

#[test]
fn replaced_suffix_is_deleted_from_the_engine() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let store = RaftLogStore::open(engine.clone(), 1).unwrap();
    let ents: Vec<_> = (1..=5).map(|i| new_entry(i, 1)).collect();
    store.persist(&ents, None, Durability::NoSync).unwrap();
    store
        .persist(&[new_entry(3, 2)], None, Durability::NoSync)
        .unwrap();
    assert_eq!(store.last_index(), Ok(3));
    let stored = engine
        .scan(Space::RaftLog, keys::all_entries(1), None)
        .unwrap();
    assert_eq!(stored.len(), 3);
    let reopened = RaftLogStore::open(engine, 1).unwrap();
    assert_eq!((reopened.last_index(), reopened.term(3)), (Ok(3), Ok(2)));
}

#[test]
fn storage_apply_snapshot() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let store = RaftLogStore::open(engine.clone(), 1).unwrap();
    let hs = hard_state(9, 2, 0);
    let ents: Vec<_> = (1..=3).map(|i| new_entry(i, 1)).collect();
    store.persist(&ents, Some(&hs), Durability::NoSync).unwrap();

    store
        .apply_snapshot(&new_snapshot(4, 4, vec![1, 2, 3]))
        .unwrap();
    for s in [
        store.clone(),
        RaftLogStore::open(engine.clone(), 1).unwrap(),
    ] {
        assert_eq!((s.first_index(), s.last_index()), (Ok(5), Ok(4)));
        assert_eq!(s.term(4), Ok(4));
        assert_eq!(s.term(3), Err(store_err(StorageError::Compacted)));
        let state = s.initial_state().unwrap();
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(
            (
                state.hard_state.term,
                state.hard_state.vote,
                state.hard_state.commit
            ),
            (9, 2, 4)
        );
        assert!(s.is_initialized());
    }
    assert!(
        engine
            .scan(Space::RaftLog, keys::all_entries(1), None)
            .unwrap()
            .is_empty()
    );
    // Older than the first index: out of date.
    let res = store.apply_snapshot(&new_snapshot(3, 3, vec![1, 2, 3]));
    assert!(
        matches!(
            &res,
            Err(Error::Raft(raft::Error::Store(
                StorageError::SnapshotOutOfDate
            )))
        ),
        "{res:?}"
    );
}

#[test]
fn storage_snapshot_serves_declared_metadata() {
    let [store, _] = stores_with(&[new_entry(1, 1), new_entry(2, 1), new_entry(3, 2)]);
    let unavailable = Err(store_err(StorageError::SnapshotTemporarilyUnavailable));
    assert_eq!(store.snapshot(0, 2), unavailable);
    let mut meta = SnapshotMetadata {
        index: 3,
        term: 2,
        ..Default::default()
    };
    meta.mut_conf_state().voters = vec![1, 2];
    store.set_snapshot_metadata(meta.clone());
    let snap = store.snapshot(2, 2).unwrap();
    assert_eq!(snap.get_metadata(), &meta);
    assert!(snap.data.is_empty());
    assert_eq!(store.snapshot(3, 2).unwrap().get_metadata().index, 3);
    assert_eq!(store.snapshot(4, 2), unavailable);
}

#[test]
fn initialize_only_once() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let store = RaftLogStore::open(engine.clone(), 5).unwrap();
    assert!(!store.is_initialized());
    assert_eq!(
        store.initial_state().unwrap().hard_state,
        HardState::default()
    );
    assert_eq!(
        (store.first_index(), store.last_index(), store.term(0)),
        (Ok(1), Ok(0), Ok(0))
    );
    let cs = ConfState::from((vec![1, 2, 3], vec![]));
    store.initialize(cs.clone()).unwrap();
    assert!(store.is_initialized());
    assert!(matches!(
        store.initialize(cs.clone()),
        Err(Error::AlreadyInitialized { group_id: 5 })
    ));
    let reopened = RaftLogStore::open(engine.clone(), 5).unwrap();
    assert_eq!(reopened.conf_state(), cs);
    // A group with log entries but no configuration is not empty either.
    let other = RaftLogStore::open(engine, 6).unwrap();
    other
        .persist(&[new_entry(1, 1)], None, Durability::NoSync)
        .unwrap();
    assert!(matches!(
        other.initialize(cs),
        Err(Error::AlreadyInitialized { .. })
    ));
}

#[test]
fn groups_sharing_an_engine_are_independent() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let stores: Vec<_> = [1u64, 2, 256, u64::MAX]
        .iter()
        .map(|&g| RaftLogStore::open(engine.clone(), g).unwrap())
        .collect();
    for (n, s) in stores.iter().enumerate() {
        let ents: Vec<_> = (1..=n as u64 + 2)
            .map(|i| new_entry(i, s.group_id()))
            .collect();
        let hs = hard_state(s.group_id(), 0, 0);
        s.persist(&ents, Some(&hs), Durability::NoSync).unwrap();
    }
    stores[1].compact(3).unwrap();
    for (n, s) in stores.iter().enumerate() {
        let s = RaftLogStore::open(engine.clone(), s.group_id()).unwrap();
        assert_eq!(s.last_index(), Ok(n as u64 + 2));
        assert_eq!(s.first_index(), Ok(if n == 1 { 3 } else { 1 }));
        assert_eq!(s.hard_state().term, s.group_id());
        assert_eq!(s.term(2), Ok(s.group_id()));
    }
}

#[test]
fn staged_writes_of_many_groups_commit_together() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let a = RaftLogStore::open(engine.clone(), 1).unwrap();
    let b = RaftLogStore::open(engine.clone(), 2).unwrap();
    let mut batch = WriteBatch::new();
    let hs = hard_state(0, 0, 1);
    let sa = a.stage(&mut batch, &[new_entry(1, 1)], Some(&hs)).unwrap();
    let sb = b
        .stage(&mut batch, &[new_entry(1, 1), new_entry(2, 1)], None)
        .unwrap();
    // Nothing is visible before the batch is written and the staged state committed.
    assert_eq!((a.last_index(), b.last_index()), (Ok(0), Ok(0)));
    engine.write(batch, Durability::Sync).unwrap();
    sa.commit();
    sb.commit();
    assert_eq!((a.last_index(), b.last_index()), (Ok(1), Ok(2)));
    assert_eq!(a.hard_state().commit, 1);
    assert_eq!(b.entries(1, 3, None, ctx()).unwrap().len(), 2);
}

#[test]
fn crash_loses_only_unsynced_ready_writes() {
    let mem = Arc::new(MemEngine::new());
    let engine: Arc<dyn KvEngine> = mem.clone();
    let store = RaftLogStore::open(engine.clone(), 1).unwrap();
    store
        .initialize(ConfState::from((vec![1], vec![])))
        .unwrap();
    let hs = hard_state(1, 0, 2);
    store
        .persist(
            &[new_entry(1, 1), new_entry(2, 1)],
            Some(&hs),
            Durability::Sync,
        )
        .unwrap();
    let mut hs3 = hs.clone();
    hs3.commit = 3;
    store
        .persist(&[new_entry(3, 1)], Some(&hs3), Durability::NoSync)
        .unwrap();
    store.compact(2).unwrap();
    mem.crash();
    let s = RaftLogStore::open(engine, 1).unwrap();
    assert_eq!((s.first_index(), s.last_index()), (Ok(1), Ok(2)));
    assert_eq!(s.hard_state(), hs);
    assert!(s.is_initialized());
}

#[test]
fn corrupt_state_is_an_error_on_open() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let mut batch = WriteBatch::new();
    batch.put(Space::RaftState, keys::hard_state_key(1), vec![0xFF, 0xFF]);
    batch.put(Space::RaftState, keys::truncated_key(2), vec![1, 2, 3]);
    // An entry stored under the wrong index.
    batch.put(
        Space::RaftLog,
        keys::entry_key(3, 7),
        keys::encode(&new_entry(8, 1)).unwrap(),
    );
    // A commit index past the end of the log.
    let hs = hard_state(0, 0, 5);
    batch.put(
        Space::RaftState,
        keys::hard_state_key(4),
        keys::encode(&hs).unwrap(),
    );
    engine.write(batch, Durability::NoSync).unwrap();
    for group in 1..=4 {
        let res = RaftLogStore::open(engine.clone(), group);
        assert!(
            matches!(res, Err(Error::Corrupt { .. })),
            "group {group}: {res:?}"
        );
    }
    // Corruption met by raft-rs calls surfaces as a storage error, not a panic.
    let store = RaftLogStore::open(engine.clone(), 9).unwrap();
    store
        .persist(
            &(1..=3).map(|i| new_entry(i, 1)).collect::<Vec<_>>(),
            None,
            Durability::NoSync,
        )
        .unwrap();
    let mut batch = WriteBatch::new();
    batch.delete(Space::RaftLog, keys::entry_key(9, 2));
    engine.write(batch, Durability::NoSync).unwrap();
    assert!(matches!(
        store.entries(1, 4, None, ctx()),
        Err(raft::Error::Store(StorageError::Other(_)))
    ));
    assert!(matches!(
        store.term(2),
        Err(raft::Error::Store(StorageError::Other(_)))
    ));
}

#[test]
fn fjall_log_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hs = hard_state(3, 1, 4);
    {
        let engine: Arc<dyn KvEngine> = Arc::new(FjallEngine::open(dir.path()).unwrap());
        let store = RaftLogStore::open(engine, 7).unwrap();
        store
            .initialize(ConfState::from((vec![1, 2], vec![3])))
            .unwrap();
        let ents: Vec<_> = (1..=6).map(|i| new_entry(i, 1 + i / 3)).collect();
        store.persist(&ents, Some(&hs), Durability::Sync).unwrap();
        store.compact(3).unwrap();
        store
            .persist(&[new_entry(6, 3)], None, Durability::Sync)
            .unwrap();
    }
    let engine: Arc<dyn KvEngine> = Arc::new(FjallEngine::open(dir.path()).unwrap());
    let store = RaftLogStore::open(engine.clone(), 7).unwrap();
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state, hs);
    assert_eq!(
        (
            state.conf_state.voters.clone(),
            state.conf_state.learners.clone()
        ),
        (vec![1, 2], vec![3])
    );
    assert_eq!((store.first_index(), store.last_index()), (Ok(3), Ok(6)));
    assert_eq!(store.term(2), Ok(1));
    assert_eq!(store.term(6), Ok(3));
    let terms: Vec<_> = store
        .entries(3, 7, None, ctx())
        .unwrap()
        .iter()
        .map(|e| e.term)
        .collect();
    assert_eq!(terms, [2, 2, 2, 3]);
    assert!(
        engine
            .scan(Space::RaftLog, KeyRange::all(), None)
            .unwrap()
            .len()
            == 4
    );
}

#[test]
fn extreme_indexes_are_errors_not_overflows() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let store = RaftLogStore::open(engine, 1).unwrap();
    store
        .apply_snapshot(&new_snapshot(u64::MAX - 1, 1, vec![1]))
        .unwrap();
    store
        .persist(&[new_entry(u64::MAX, 1)], None, Durability::NoSync)
        .unwrap();
    assert_eq!(store.last_index(), Ok(u64::MAX));
    assert_eq!(store.entries(u64::MAX, u64::MAX, None, ctx()), Ok(vec![]));
    assert!(
        store
            .persist(
                &[new_entry(u64::MAX, 2), new_entry(0, 2)],
                None,
                Durability::NoSync
            )
            .is_err()
    );
    store.compact(u64::MAX).unwrap();
    assert_eq!(store.first_index(), Ok(u64::MAX));
}

#[test]
fn log_size_follows_appends_replacements_compaction_and_snapshots() {
    let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
    let store = RaftLogStore::open(engine.clone(), 1).unwrap();
    assert_eq!(store.log_size(), (0, 0));
    let entry = |index: u64, term: u64, len: usize| Entry {
        data: vec![7; len].into(),
        ..new_entry(index, term)
    };
    let stored = |e: &Entry| e.write_to_bytes().unwrap().len() as u64;
    let ents: Vec<_> = (1..=6).map(|i| entry(i, 1, 100 * i as usize)).collect();
    store.persist(&ents, None, Durability::NoSync).unwrap();
    let total: u64 = ents.iter().map(stored).sum();
    assert_eq!(store.log_size(), (6, total));
    // Reopening weighs the stored entries again.
    assert_eq!(
        RaftLogStore::open(engine.clone(), 1).unwrap().log_size(),
        (6, total)
    );
    // A conflicting suffix from 5 on is replaced by one small entry.
    let replacement = entry(5, 2, 10);
    store
        .persist(std::slice::from_ref(&replacement), None, Durability::NoSync)
        .unwrap();
    let total = total - stored(&ents[4]) - stored(&ents[5]) + stored(&replacement);
    assert_eq!(store.log_size(), (5, total));
    store.compact(3).unwrap();
    let total = total - stored(&ents[0]) - stored(&ents[1]);
    assert_eq!(store.log_size(), (3, total));
    assert_eq!(
        RaftLogStore::open(engine.clone(), 1).unwrap().log_size(),
        (3, total)
    );
    store.apply_snapshot(&new_snapshot(9, 3, vec![1])).unwrap();
    assert_eq!(store.log_size(), (0, 0));
    assert_eq!(store.last_log_index(), 9);
}
