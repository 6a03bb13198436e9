//! Each checker accepts a correct history and names the operations of a broken one.

use std::collections::BTreeMap;

use super::*;

fn write(client: usize, invoked: u64, completed: u64, ts: u64, key: &str, v: Value) -> Op {
    Op {
        client,
        invoked,
        completed,
        outcome: Outcome::Committed,
        commit_ts: Some(ts),
        read_ts: None,
        reads: vec![],
        writes: vec![(key.to_string(), v)],
    }
}

fn read(client: usize, invoked: u64, completed: u64, ts: u64, key: &str, v: Option<Value>) -> Op {
    Op {
        client,
        invoked,
        completed,
        outcome: Outcome::Committed,
        commit_ts: None,
        read_ts: Some(ts),
        reads: vec![(key.to_string(), v)],
        writes: vec![],
    }
}

fn history(ops: Vec<Op>) -> History {
    History { ops }
}

#[test]
fn real_time_order_must_be_timestamp_order() {
    // Acknowledged at 10, the next write began at 11: it needs a larger timestamp.
    let ok = history(vec![
        write(0, 0, 10, 100, "k", 1),
        write(1, 11, 20, 150, "k", 2),
    ]);
    assert_eq!(ok.check_external_consistency(), Ok(()));
    let bad = history(vec![
        write(0, 0, 10, 100, "k", 1),
        write(1, 11, 20, 90, "k", 2),
    ]);
    assert!(matches!(
        bad.check_external_consistency(),
        Err(Violation::ExternalConsistency {
            first: 0,
            second: 1,
            ..
        })
    ));
    // Overlapping operations may be ordered either way.
    let overlapping = history(vec![
        write(0, 0, 10, 100, "k", 1),
        write(1, 5, 20, 90, "k", 2),
    ]);
    assert_eq!(overlapping.check_external_consistency(), Ok(()));
    // A read that starts after an acknowledged write reads at or above its timestamp.
    let stale = history(vec![
        write(0, 0, 10, 100, "k", 1),
        read(1, 11, 12, 99, "k", None),
    ]);
    assert!(stale.check_external_consistency().is_err());
    let fresh = history(vec![
        write(0, 0, 10, 100, "k", 1),
        read(1, 11, 12, 100, "k", Some(1)),
    ]);
    assert_eq!(fresh.check_external_consistency(), Ok(()));
    // Aborted operations impose nothing.
    let mut aborted = write(1, 11, 20, 90, "k", 2);
    aborted.outcome = Outcome::Aborted;
    assert_eq!(
        history(vec![write(0, 0, 10, 100, "k", 1), aborted]).check_external_consistency(),
        Ok(())
    );
}

#[test]
fn reads_see_exactly_the_writes_at_or_before_their_timestamp() {
    let initial: BTreeMap<Key, Value> = [("k".to_string(), 0)].into();
    let writes = vec![write(0, 0, 1, 100, "k", 1), write(0, 2, 3, 200, "k", 2)];
    let with = |r: Op| {
        let mut ops = writes.clone();
        ops.push(r);
        history(ops)
    };
    for (ts, seen) in [(50, 0), (100, 1), (150, 1), (200, 2), (999, 2)] {
        assert_eq!(
            with(read(1, 0, 1, ts, "k", Some(seen))).check_snapshot_reads(&initial),
            Ok(()),
            "read at {ts}"
        );
    }
    assert!(matches!(
        with(read(1, 0, 1, 150, "k", Some(2))).check_snapshot_reads(&initial),
        Err(Violation::SnapshotRead {
            expected: Some(1),
            seen: Some(2),
            ..
        })
    ));
    assert!(
        with(read(1, 0, 1, 99, "k", Some(1)))
            .check_snapshot_reads(&initial)
            .is_err()
    );
    // A key never written and absent initially reads as absent.
    assert_eq!(
        with(read(1, 0, 1, 99, "other", None)).check_snapshot_reads(&initial),
        Ok(())
    );
    // The value of a write whose outcome is unknown may be seen.
    let mut unknown = write(2, 0, 5, 0, "k", 7);
    unknown.outcome = Outcome::Unknown;
    unknown.commit_ts = None;
    let mut ops = writes.clone();
    ops.push(unknown);
    ops.push(read(1, 0, 1, 150, "k", Some(7)));
    assert_eq!(history(ops).check_snapshot_reads(&initial), Ok(()));
}

#[test]
fn the_final_state_keeps_the_last_committed_write() {
    let h = history(vec![
        write(0, 0, 1, 100, "a", 1),
        write(0, 2, 3, 200, "a", 2),
        write(1, 0, 1, 50, "b", 9),
    ]);
    let good: BTreeMap<Key, Value> = [("a".to_string(), 2), ("b".to_string(), 9)].into();
    assert_eq!(h.check_final_state(&good), Ok(()));
    let lost: BTreeMap<Key, Value> = [("a".to_string(), 1), ("b".to_string(), 9)].into();
    assert!(matches!(
        h.check_final_state(&lost),
        Err(Violation::LostWrite { .. })
    ));
    let missing: BTreeMap<Key, Value> = [("a".to_string(), 2)].into();
    assert!(h.check_final_state(&missing).is_err());
}

#[test]
fn bank_snapshots_keep_the_total() {
    assert_eq!(check_bank_totals(100, &[100, 100]), Ok(()));
    assert_eq!(
        check_bank_totals(100, &[100, 90, 100]),
        Err(Violation::BankTotal {
            snapshot: 1,
            found: 90,
            expected: 100
        })
    );
}

#[test]
fn a_committed_write_without_timestamp_is_malformed() {
    let mut w = write(0, 0, 1, 1, "k", 1);
    w.commit_ts = None;
    w.read_ts = None;
    let h = history(vec![w]);
    assert!(matches!(
        h.check_final_state(&BTreeMap::new()),
        Err(Violation::Malformed(_))
    ));
}
