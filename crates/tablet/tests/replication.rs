//! Three replicas of one tablet in one process, exchanging Raft messages through the in-memory
//! transport: replication, leader failover, catch-up, restart without double apply, and
//! timestamps that keep increasing across leaders.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{KvEngine, MemEngine};
use meridian_tablet::{
    Condition, ConditionFailure, Error, KvClient, LocalGroup, Mutation, Replica, ReplicaConfig,
    WriteRequest,
};

mod common;

const MAX_EPSILON: Duration = Duration::from_millis(20);

fn clock() -> Arc<TrueTime> {
    common::clock(MAX_EPSILON)
}

fn config() -> ReplicaConfig {
    common::config(7, MAX_EPSILON)
}

fn put(key: &str, value: &str) -> WriteRequest {
    WriteRequest {
        mutations: vec![Mutation::Put {
            key: key.into(),
            value: value.into(),
        }],
        ..Default::default()
    }
}

fn insert(key: &str, value: &str) -> WriteRequest {
    WriteRequest {
        conditions: vec![Condition::NotExists(key.into())],
        ..put(key, value)
    }
}

fn engines(n: usize) -> Vec<Arc<MemEngine>> {
    (0..n).map(|_| Arc::new(MemEngine::new())).collect()
}

fn dyn_engines(engines: &[Arc<MemEngine>]) -> Vec<Arc<dyn KvEngine>> {
    engines
        .iter()
        .map(|e| e.clone() as Arc<dyn KvEngine>)
        .collect()
}

/// Waits until `replica` has applied a value for `key` visible at `ts`.
async fn wait_applied(replica: &Replica, key: &[u8], ts: Timestamp) -> Option<Vec<u8>> {
    let wait = async {
        loop {
            if let Some(v) = replica.mvcc().get(key, ts).unwrap() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_to_every_replica() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    let mut last = Timestamp::ZERO;
    for i in 0..20 {
        let ts = group
            .write(put(&format!("k{i:02}"), &format!("v{i}")))
            .await
            .unwrap();
        assert!(ts > last, "commit timestamps must increase");
        last = ts;
    }
    for r in group.replicas() {
        assert_eq!(
            wait_applied(r, b"k19", last).await.as_deref(),
            Some(&b"v19"[..])
        );
        let rows = r.mvcc().scan(b"k", b"l", last, None).unwrap();
        assert_eq!(rows.len(), 20, "replica {} has all rows", r.replica_id());
    }
    // Conditions are evaluated identically everywhere: a duplicate insert fails.
    group.write(insert("dup", "1")).await.unwrap();
    let err = group.write(insert("dup", "2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConditionFailed {
                kind: ConditionFailure::Exists,
                ..
            }
        ),
        "{err}"
    );
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_and_timestamps_keep_increasing() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    let first = group.wait_for_leader().await.unwrap();
    let ts1 = group.write(put("a", "1")).await.unwrap();
    let read1 = group.read_ts().await.unwrap();
    assert!(read1 > ts1);

    // Cut the leader off: the other two elect a new leader and keep accepting writes.
    let old_leader = group.replicas()[first].replica_id();
    group.transport().isolate(old_leader);
    let elected = async {
        while !group
            .replicas()
            .iter()
            .any(|r| r.status().is_leader && r.replica_id() != old_leader)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), elected)
        .await
        .expect("a new leader is elected");
    let ts2 = group.write(put("b", "2")).await.unwrap();
    assert!(
        ts2 > read1,
        "a new leader's timestamps exceed every earlier read and write"
    );
    let new_leader = group
        .replicas()
        .iter()
        .position(|r| r.status().is_leader && r.replica_id() != old_leader);
    assert!(new_leader.is_some(), "a different replica leads");
    assert_eq!(
        group
            .get(b"a", group.read_ts().await.unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );

    // Heal: the old leader steps down and catches up.
    group.transport().heal();
    let old = &group.replicas()[first];
    assert_eq!(
        wait_applied(old, b"b", ts2).await.as_deref(),
        Some(&b"2"[..])
    );
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_replicas_recover_without_applying_twice() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    let mut last = Timestamp::ZERO;
    for i in 0..10 {
        last = group.write(insert(&format!("k{i}"), "x")).await.unwrap();
    }
    for r in group.replicas() {
        wait_applied(r, b"k9", last).await.unwrap();
    }
    let applied: Vec<u64> = group
        .replicas()
        .iter()
        .map(|r| r.status().applied_index)
        .collect();
    group.shutdown().await;

    // Restart on the same engines. Anything not synced is lost (the apply batches), the synced
    // Raft log is replayed; inserts with NotExists conditions would fail if applied twice
    // and leave the data unchanged either way.
    for e in &engines {
        e.crash();
    }
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    let ts = group.read_ts().await.unwrap();
    let rows = group.scan(b"k", b"l", ts, None).await.unwrap();
    assert_eq!(rows.len(), 10);
    for (r, before) in group.replicas().iter().zip(applied) {
        let wait = async {
            while r.status().applied_index < before {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("replica caught up");
        // Each version was applied once: versions of k0 at or below `ts` are just one.
        assert_eq!(r.mvcc().get(b"k0", ts).unwrap().as_deref(), Some(&b"x"[..]));
    }
    let err = group.write(insert("k0", "y")).await.unwrap_err();
    assert!(matches!(err, Error::ConditionFailed { .. }));
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_every_acknowledged_write_and_snapshots_do_not_change() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    for i in 0..10 {
        let ts = group.write(put("counter", &i.to_string())).await.unwrap();
        // External consistency: a read that starts after the acknowledgement sees the write.
        let read = group.read_ts().await.unwrap();
        assert!(read > ts);
        assert_eq!(
            group.get(b"counter", read).await.unwrap(),
            Some(i.to_string().into_bytes())
        );
    }
    let snapshot = group.read_ts().await.unwrap();
    let before = group.scan(b"", b"", snapshot, None).await.unwrap();
    group.write(put("counter", "later")).await.unwrap();
    group.write(put("other", "x")).await.unwrap();
    assert_eq!(group.scan(b"", b"", snapshot, None).await.unwrap(), before);
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_conflict_with_newer_writes() {
    let group = LocalGroup::start(config(), dyn_engines(&engines(1)), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    group.write(put("x", "1")).await.unwrap();
    let read_ts = group.read_ts().await.unwrap();
    group.write(put("x", "2")).await.unwrap();
    let req = WriteRequest {
        read_ts: Some(read_ts),
        read_spans: vec![meridian_tablet::Span {
            start: b"x".to_vec(),
            end: None,
        }],
        ..put("x", "3")
    };
    let err = group.write(req).await.unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }) && err.is_retryable());
    let now = group.read_ts().await.unwrap();
    assert_eq!(
        group.get(b"x", now).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_never_overlap_and_a_partitioned_leader_stops_serving() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    let first = group.wait_for_leader().await.unwrap();
    group.write(put("k", "v")).await.unwrap();
    let old = group.replicas()[first].clone();
    assert!(
        old.status().lease_end.is_some(),
        "a serving leader holds a lease"
    );

    // Cut the leader off and watch its lease until it steps down.
    group.transport().isolate(old.replica_id());
    let mut old_lease_end = Timestamp::ZERO;
    let watch = async {
        loop {
            let s = old.status();
            if !s.is_leader {
                return;
            }
            old_lease_end = old_lease_end.max(s.lease_end.unwrap_or(Timestamp::ZERO));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .is_err()
    {
        panic!("isolated leader steps down: {:?}", old.status());
    }
    assert!(old_lease_end > Timestamp::ZERO);

    // Once deposed it serves neither reads nor writes.
    assert!(old.read_ts().await.is_err());
    assert!(old.write(put("k", "stale")).await.is_err());

    // The new leader took office only after the old lease had certainly ended.
    let elected = async {
        loop {
            if let Some(r) = group
                .replicas()
                .iter()
                .find(|r| r.replica_id() != old.replica_id() && r.status().is_leader)
            {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let new = tokio::time::timeout(Duration::from_secs(10), elected)
        .await
        .expect("new leader");
    let since = new
        .status()
        .leader_since
        .expect("a leader knows when it took office");
    assert!(
        since > old_lease_end,
        "leases overlap: new leader since {since}, old lease until {old_lease_end}"
    );
    let ts = group.write(put("k", "new")).await.unwrap();
    assert_eq!(
        group
            .get(b"k", group.read_ts().await.unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some(&b"new"[..])
    );
    assert!(ts > old_lease_end);
    group.shutdown().await;
}

/// Waits until every replica of `group` reports itself quiesced.
async fn wait_quiesced(group: &LocalGroup) {
    let wait = async {
        while !group.replicas().iter().all(|r| r.status().quiesced) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        let s: Vec<_> = group.replicas().iter().map(|r| r.status()).collect();
        panic!("an idle group quiesces: {s:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_group_stops_ticking_and_wakes_for_work_and_failover() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    group.write(put("a", "1")).await.unwrap();
    wait_quiesced(&group).await;
    // A write wakes the group and commits.
    let ts = group.write(put("b", "2")).await.unwrap();
    assert!(
        !group
            .replicas()
            .iter()
            .any(|r| r.status().is_leader && r.status().quiesced)
    );
    wait_quiesced(&group).await;
    // So does a read after the leader's lease lapsed while quiesced.
    let read = group.read_ts().await.unwrap();
    assert!(read >= ts);
    assert_eq!(
        group.get(b"b", read).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    wait_quiesced(&group).await;
    // The leader goes away while everyone sleeps: the next request wakes a follower, which
    // elects a new leader, and the write commits there.
    let old = group
        .replicas()
        .iter()
        .find(|r| r.status().is_leader)
        .expect("a leader")
        .replica_id();
    group.transport().isolate(old);
    group.write(put("c", "3")).await.unwrap();
    let leader = group
        .replicas()
        .iter()
        .find(|r| r.status().is_leader && r.replica_id() != old)
        .map(|r| r.replica_id());
    assert!(leader.is_some(), "a follower took over");
    group.transport().heal();
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_serve_reads_up_to_the_closed_timestamp_without_the_leader() {
    use meridian_tablet::ReplicaEndpoint;
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    let ts = group.write(put("k", "v1")).await.unwrap();
    group.write(put("k", "v2")).await.unwrap();
    let follower = group
        .replicas()
        .iter()
        .find(|r| !r.status().is_leader)
        .unwrap()
        .clone();
    // The leader closes timestamps as it goes; the follower's safe time passes the write.
    let wait = async {
        while follower.safe_ts() < ts {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the follower's safe time advances");
    // Cut off from everyone, it still answers reads at or below its safe time, locally.
    group.transport().isolate(follower.replica_id());
    let safe = follower.safe_ts();
    assert_eq!(
        ReplicaEndpoint::get(&follower, b"k", ts)
            .await
            .unwrap()
            .0
            .as_deref(),
        Some(&b"v1"[..])
    );
    assert!(ReplicaEndpoint::get(&follower, b"k", safe).await.is_ok());
    group.transport().heal();
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_hands_over_to_a_follower_without_keeping_its_lease() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    let first = group.wait_for_leader().await.unwrap();
    let ts = group.write(put("k", "v")).await.unwrap();
    let old = group.replicas()[first].clone();
    old.transfer_leadership();
    let moved = async {
        loop {
            let s = old.status();
            if !s.is_leader {
                assert!(s.lease_end.is_none(), "a former leader keeps no lease");
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), moved)
        .await
        .expect("leadership moves");
    let new = group
        .replicas()
        .iter()
        .find(|r| r.status().is_leader)
        .map(|r| r.replica_id());
    assert!(new.is_some_and(|id| id != old.replica_id()));
    // The group goes on: the old data is there and new writes commit above it.
    assert!(group.write(put("k", "w")).await.unwrap() > ts);
    group.shutdown().await;
}

/// Row locks live in the leader's memory only: a new leader starts without them, and a
/// transaction whose lock vanished is still held to its snapshot by validation at commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_vanish_with_a_leader_change_and_validation_still_decides() {
    let engines = engines(3);
    let group = LocalGroup::start(config(), dyn_engines(&engines), clock()).unwrap();
    let first = group.wait_for_leader().await.unwrap();
    group.write(put("k", "v0")).await.unwrap();
    let read_ts = group.read_ts().await.unwrap();
    let owner = meridian_tablet::LockOwner {
        id: b"txn-a".to_vec(),
        priority: read_ts,
    };
    let key = vec![b"k".to_vec()];
    assert_eq!(group.lock(&key, &owner, read_ts).await.unwrap(), None);
    // A plain write to the locked key waits for the lock.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), group.write(put("k", "other")))
            .await
            .is_err(),
        "a plain write waits while the key is locked"
    );
    // The leader moves; its successor has no locks, so the write goes through there.
    let old_leader = group.replicas()[first].replica_id();
    group.replicas()[first].transfer_leadership();
    let moved = async {
        while !group
            .replicas()
            .iter()
            .any(|r| r.status().is_leader && r.replica_id() != old_leader)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), moved)
        .await
        .expect("leadership moves");
    tokio::time::timeout(Duration::from_secs(10), group.write(put("k", "other")))
        .await
        .expect("the new leader holds no lock on the key")
        .unwrap();
    // The lock holder's commit is refused: what it read at its snapshot changed.
    let commit = WriteRequest {
        read_ts: Some(read_ts),
        read_spans: vec![meridian_tablet::Span {
            start: b"k".to_vec(),
            end: None,
        }],
        lock_owner: Some(owner),
        ..put("k", "mine")
    };
    let err = group.write(commit).await.unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
    group.shutdown().await;
}

/// A write may carry a timestamp above the clock (a new leader starts its timestamps a margin
/// above it), and it is applied, and its row locks released, before its commit wait ends. A
/// transaction that locks such a row meanwhile learns it changed and gets a timestamp at which
/// it sees the newest version, so its commit does not find the row changed again (it used to
/// get the clock's `latest`, below the version, and fail until the clock passed it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_row_written_above_the_clock_is_seen_at_the_moved_snapshot() {
    let group = Arc::new(LocalGroup::start(config(), dyn_engines(&engines(1)), clock()).unwrap());
    group.wait_for_leader().await.unwrap();
    let snapshot = clock().now().unwrap().latest;
    // The new leader's first write lands a margin (twice the uncertainty bound) above the
    // clock; its answer waits for the clock to pass it.
    let write = tokio::spawn({
        let group = group.clone();
        async move { group.write(put("k", "v1")).await }
    });
    let owner = meridian_tablet::LockOwner {
        id: b"txn".to_vec(),
        priority: snapshot,
    };
    let key = vec![b"k".to_vec()];
    // Once the write is applied (its commit wait still running), the row is locked: it
    // changed after the snapshot.
    let leader = &group.replicas()[group.wait_for_leader().await.unwrap()];
    while leader.mvcc().get(b"k", Timestamp::MAX).unwrap().is_none() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let moved = group
        .lock(&key, &owner, snapshot)
        .await
        .unwrap()
        .expect("the row changed after the snapshot");
    let written = write.await.unwrap().unwrap();
    assert!(
        moved >= written,
        "moved to {moved:?}, below the version at {written:?}"
    );
    // At the moved snapshot the row holds, and a commit that read it there goes through.
    let commit = WriteRequest {
        read_ts: Some(moved),
        read_spans: vec![meridian_tablet::Span::key(b"k")],
        lock_owner: Some(owner),
        ..put("k", "v2")
    };
    assert!(group.write(commit).await.unwrap() > moved);
    let Ok(group) = Arc::try_unwrap(group) else {
        panic!("the write task is done with the group");
    };
    group.shutdown().await;
}

/// A commit whose reads changed is refused at the leader before it is proposed (no Raft
/// entry), for a read key and a read range alike, and its transaction keeps its row locks:
/// it may move its snapshot and write again on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_commit_writes_no_log_entry_and_keeps_its_locks() {
    let group = LocalGroup::start(config(), dyn_engines(&engines(1)), clock()).unwrap();
    let leader = group.wait_for_leader().await.unwrap();
    group.write(put("a", "0")).await.unwrap();
    let read_ts = group.read_ts().await.unwrap();
    group.write(put("a", "1")).await.unwrap();
    let owner = meridian_tablet::LockOwner {
        id: b"txn".to_vec(),
        priority: read_ts,
    };
    let key = vec![b"k".to_vec()];
    assert_eq!(group.lock(&key, &owner, read_ts).await.unwrap(), None);

    let read_key = meridian_tablet::Span {
        start: b"a".to_vec(),
        end: None,
    };
    let read_range = meridian_tablet::Span {
        start: b"0".to_vec(),
        end: Some(b"b".to_vec()),
    };
    let commit = WriteRequest {
        read_ts: Some(read_ts),
        lock_owner: Some(owner),
        ..put("k", "mine")
    };
    for span in [read_key, read_range] {
        let index = group.replicas()[leader].status().commit_index;
        let err = group
            .write(WriteRequest {
                read_spans: vec![span],
                ..commit.clone()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
        assert_eq!(
            group.replicas()[leader].status().commit_index,
            index,
            "refused before it was proposed"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), group.write(put("k", "other")))
            .await
            .is_err(),
        "the lock outlives the refused commit"
    );
    // The transaction moves its snapshot and commits on its lock, which then goes.
    let now = group.read_ts().await.unwrap();
    group
        .write(WriteRequest {
            read_ts: Some(now),
            ..commit
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), group.write(put("k", "other")))
        .await
        .expect("the committed transaction's lock is released")
        .unwrap();
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tablet_grants_reads_ahead_and_later_writes_land_above() {
    let clock = clock();
    let group = LocalGroup::start(config(), dyn_engines(&engines(1)), clock.clone()).unwrap();
    let leader = &group.replicas()[group.wait_for_leader().await.unwrap()];
    // The lease is held once the leader has committed in its term.
    group.write(put("x", "1")).await.unwrap();
    // Written a moment ago: a read is granted what it asked, never past the leader's clock.
    let asked = clock.now().unwrap().latest;
    let granted = leader.read_at(asked).await.unwrap();
    assert!(granted >= asked && granted <= clock.now().unwrap().latest);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Quiet: granted ahead of the clock and final at once, so the reads of the next moment
    // find their snapshot final without asking. (The idle group let its lease lapse; the
    // first reads go through ReadIndex and wake it.)
    let mut ahead = None;
    for _ in 0..100 {
        let asked = clock.now().unwrap().latest;
        let granted = leader.read_at(asked).await.unwrap();
        if granted >= asked.saturating_add(Duration::from_millis(1)) {
            ahead = Some((asked, granted));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (asked, granted) = ahead.expect("a read on the quiet tablet was granted ahead");
    assert!(granted <= asked.saturating_add(2 * MAX_EPSILON));
    assert!(leader.safe_ts() >= granted);
    // A write after the grant lands above it, so the snapshot stays final.
    let w = group.write(put("x", "2")).await.unwrap();
    assert!(w > granted);
    assert_eq!(
        group.get(b"x", granted).await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    group.shutdown().await;
}
