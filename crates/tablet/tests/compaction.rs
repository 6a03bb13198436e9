//! Raft log compaction: replicas truncate their logs below the applied index, a follower left
//! behind catches up by snapshot (data, prepared transactions and all), and replicas restart
//! from a compacted log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use meridian_clock::{Timestamp, TrueTime};
use meridian_storage::{KvEngine, MemEngine};
use meridian_tablet::{
    Condition, Error, KvClient, LocalGroup, Mutation, RAFT_INIT_INDEX, Replica, ReplicaConfig,
    ReplicaEndpoint, TabletOp, WriteRequest,
};

const MAX_EPSILON: Duration = Duration::from_millis(20);
/// The compaction threshold of these tests, in entries.
const MAX_ENTRIES: u64 = 20;
const WAIT: Duration = Duration::from_secs(20);

fn clock() -> Arc<TrueTime> {
    common::clock(MAX_EPSILON)
}

/// Three replicas' settings with a small log limit (`max_entries`; 0: never compact).
fn config(max_entries: u64) -> ReplicaConfig {
    ReplicaConfig {
        raft_log_max_entries: max_entries,
        raft_log_max_bytes: 0,
        ..common::config(9, MAX_EPSILON)
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

fn row(i: usize) -> Vec<u8> {
    format!("row{i:04}").into_bytes()
}

/// The insert of row `i` (fails if the row exists).
fn insert(i: usize) -> WriteRequest {
    WriteRequest {
        conditions: vec![Condition::NotExists(row(i))],
        mutations: vec![Mutation::Put {
            key: row(i),
            value: format!("v{i}").into_bytes(),
        }],
        ..Default::default()
    }
}

/// Inserts rows `rows` one write each (each a log entry); the last commit timestamp.
async fn insert_rows(kv: &dyn KvClient, rows: std::ops::Range<usize>) -> Timestamp {
    let mut last = Timestamp::ZERO;
    for i in rows {
        last = kv.write(insert(i)).await.unwrap();
    }
    last
}

/// Checks that `replica`'s engine holds exactly rows `0..n` at `ts`, each with its value.
fn assert_rows(replica: &Replica, n: usize, ts: Timestamp) {
    let rows = replica.mvcc().scan(b"row", b"rox", ts, None).unwrap();
    assert_eq!(
        rows.len(),
        n,
        "replica {} holds every row",
        replica.replica_id()
    );
    for (i, (k, v)) in rows.iter().enumerate() {
        assert_eq!(k, &row(i));
        assert_eq!(v, format!("v{i}").as_bytes());
    }
}

/// Waits until `replica` has applied at least `index`.
async fn wait_applied(replica: &Replica, index: u64) {
    eventually("the replica catches up", WAIT, async || {
        replica.status().applied_index >= index
    })
    .await;
}

/// The replica that leads now.
fn leader(group: &LocalGroup) -> Replica {
    group
        .replicas()
        .iter()
        .find(|r| r.status().is_leader)
        .expect("a leader")
        .clone()
}

/// A replica other than `lead`.
fn follower_of(group: &LocalGroup, lead: &Replica) -> Replica {
    group
        .replicas()
        .iter()
        .find(|r| r.replica_id() != lead.replica_id())
        .expect("a follower")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_compacts_its_log_and_keeps_every_row() {
    let engines = engines(3);
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    let last = insert_rows(&group, 0..150).await;
    let applied = leader(&group).status().applied_index;
    for r in group.replicas() {
        wait_applied(r, applied).await;
        eventually("the replica compacts its log", WAIT, async || {
            let s = r.status();
            // Far past the start, and bounded by the threshold (plus what arrived since the
            // last check).
            s.log_first_index > applied - 3 * MAX_ENTRIES && s.log_entries <= 3 * MAX_ENTRIES
        })
        .await;
        assert_rows(r, 150, last);
    }
    // Through the group: every row reads back, conditions still see them.
    let ts = group.read_ts().await.unwrap();
    assert_eq!(
        group.scan(b"row", b"rox", ts, None).await.unwrap().len(),
        150
    );
    let err = group.write(insert(0)).await.unwrap_err();
    assert!(matches!(err, Error::ConditionFailed { .. }), "{err}");
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_threshold_the_log_keeps_every_entry() {
    let engines = engines(1);
    let group = LocalGroup::start(config(0), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    insert_rows(&group, 0..50).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = group.replicas()[0].status();
    assert_eq!(s.log_first_index, RAFT_INIT_INDEX + 1);
    assert!(s.log_entries >= 50);
    group.shutdown().await;
}

/// Cuts `follower` off once it has all `lead` applied; the index it has.
async fn cut_off(group: &LocalGroup, lead: &Replica, follower: &Replica) -> u64 {
    wait_applied(follower, lead.status().applied_index).await;
    group.transport().isolate(follower.replica_id());
    follower.status().applied_index
}

/// Writes rows `rows` through the group and waits until `lead`'s log starts past `behind`, all
/// that the cut-off `follower` has: it can come back only by snapshot. Heals.
async fn compact_past(
    group: &LocalGroup,
    lead: &Replica,
    follower: &Replica,
    behind: u64,
    rows: std::ops::Range<usize>,
) -> Timestamp {
    let last = insert_rows(group, rows).await;
    eventually(
        "the leader compacts past the cut-off follower",
        WAIT,
        async || lead.status().log_first_index > behind + 1,
    )
    .await;
    assert_eq!(
        follower.status().applied_index,
        behind,
        "the follower was cut off"
    );
    group.transport().heal();
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_left_behind_catches_up_by_snapshot_and_then_leads() {
    let engines = engines(3);
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    insert_rows(&group, 0..10).await;
    let lead = leader(&group);
    let others: Vec<Replica> = group
        .replicas()
        .iter()
        .filter(|r| r.replica_id() != lead.replica_id())
        .cloned()
        .collect();
    let (follower, third) = (&others[0], &others[1]);
    let behind = cut_off(&group, &lead, follower).await;
    let last = compact_past(&group, &lead, follower, behind, 10..150).await;
    wait_applied(follower, lead.status().applied_index).await;
    // Its log starts after the snapshot, past where it was cut off.
    assert!(follower.status().log_first_index > behind + 1);
    assert_rows(follower, 150, last);

    // The old leader stops; the caught-up follower takes over and serves everything.
    lead.stop();
    group.transport().unregister(lead.replica_id());
    eventually("the follower leads", WAIT, async || {
        if follower.status().is_leader {
            return follower.read_ts().await.is_ok();
        }
        if third.status().is_leader {
            third.transfer_leadership();
        }
        false
    })
    .await;
    let ts = follower.read_ts().await.unwrap();
    assert_rows(follower, 150, ts);
    let err = follower.write(insert(7)).await.unwrap_err();
    assert!(matches!(err, Error::ConditionFailed { .. }), "{err}");
    let ts = follower.write(insert(150)).await.unwrap();
    assert_eq!(
        ReplicaEndpoint::get(follower, &row(150), ts)
            .await
            .unwrap()
            .0
            .as_deref(),
        Some(&b"v150"[..])
    );
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_restart_from_a_compacted_log() {
    let engines = engines(3);
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    insert_rows(&group, 0..100).await;
    let applied = leader(&group).status().applied_index;
    for r in group.replicas() {
        wait_applied(r, applied).await;
        eventually("the replica compacts its log", WAIT, async || {
            r.status().log_first_index > RAFT_INIT_INDEX + 50
        })
        .await;
    }
    group.shutdown().await;

    // A machine crash: whatever was not synced is gone (the last applies and compactions).
    for e in &engines {
        e.crash();
    }
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    for r in group.replicas() {
        wait_applied(r, applied).await;
        // The log starts where compaction left it, after the state machine's applied index.
        let s = r.status();
        assert!(s.log_first_index > RAFT_INIT_INDEX + 1, "{s:?}");
        assert!(s.log_first_index <= s.applied_index + 1, "{s:?}");
    }
    let ts = group.read_ts().await.unwrap();
    for r in group.replicas() {
        wait_applied(r, applied).await;
        assert_rows(r, 100, ts);
    }
    // Nothing was applied twice, and the group goes on.
    let err = group.write(insert(3)).await.unwrap_err();
    assert!(matches!(err, Error::ConditionFailed { .. }), "{err}");
    let last = insert_rows(&group, 100..160).await;
    let applied = leader(&group).status().applied_index;
    for r in group.replicas() {
        wait_applied(r, applied).await;
        assert_rows(r, 160, last);
    }
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_travels_in_a_snapshot() {
    let engines = engines(3);
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    insert_rows(&group, 0..5).await;
    let lead = leader(&group);
    let follower = follower_of(&group, &lead);
    let behind = cut_off(&group, &lead, &follower).await;
    // Prepared while the follower is away, so that only the snapshot can tell it.
    let txn = b"txn-1".to_vec();
    let prepared = lead
        .op(TabletOp::Prepare {
            txn_id: txn.clone(),
            anchor: b"coordinator".to_vec(),
            write: WriteRequest {
                mutations: vec![Mutation::Put {
                    key: b"prepared".to_vec(),
                    value: b"pv".to_vec(),
                }],
                ..Default::default()
            },
            staged: 0,
        })
        .await
        .unwrap();
    let last = compact_past(&group, &lead, &follower, behind, 5..150).await;
    wait_applied(&follower, lead.status().applied_index).await;
    assert_rows(&follower, 150, last);
    assert_eq!(
        follower.prepared_count(),
        1,
        "the snapshot carries the prepared transaction"
    );
    // Resolving it commits its write on the follower too: the snapshot carried the write.
    lead.op(TabletOp::Resolve {
        txn_id: txn,
        commit_ts: Some(prepared.ts),
        pieces: 0,
    })
    .await
    .unwrap();
    eventually("the follower applies the resolution", WAIT, async || {
        follower.prepared_count() == 0
    })
    .await;
    assert_eq!(
        follower
            .mvcc()
            .get(b"prepared", prepared.ts)
            .unwrap()
            .as_deref(),
        Some(&b"pv"[..])
    );
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_missed_a_split_gets_the_new_tablet_by_snapshot() {
    use meridian_storage::Mvcc;
    use meridian_tablet::range::ROOT_TABLET;
    use meridian_tablet::{LocalStores, RangeSettings};

    let settings = RangeSettings {
        split_bytes: u64::MAX,
        merge_bytes: 0,
        interval: Duration::from_millis(20),
        placement: false,
        ..RangeSettings::default()
    };
    let engines: Vec<Arc<dyn KvEngine>> = (0..3)
        .map(|_| Arc::new(MemEngine::new()) as Arc<dyn KvEngine>)
        .collect();
    let base = ReplicaConfig {
        raft_log_max_entries: MAX_ENTRIES,
        raft_log_max_bytes: 0,
        ..common::config(ROOT_TABLET, MAX_EPSILON)
    };
    let stores = LocalStores::start(base, engines.clone(), clock(), settings).unwrap();
    stores.ready().await.unwrap();
    let kv = stores.client();
    insert_rows(kv.as_ref(), 0..10).await;
    let root = stores.stores()[2].replica(ROOT_TABLET).unwrap();
    // The root tablet's leader must stay reachable: not on store 3.
    let leader_of_root = || {
        stores
            .replicas()
            .into_iter()
            .find(|r| r.tablet_id() == ROOT_TABLET && r.status().is_leader)
    };
    eventually(
        "the root tablet leads from store 1 or 2",
        WAIT,
        async || match leader_of_root() {
            Some(r) if r.replica_id() == 3 => {
                r.transfer_leadership();
                false
            }
            Some(_) => kv.read_ts().await.is_ok(),
            None => false,
        },
    )
    .await;
    let lead = leader_of_root().unwrap();

    // Store 3 is away while the tablet splits and its lower half's log moves on.
    wait_applied(&root, lead.status().applied_index).await;
    stores.transport().isolate(3);
    let behind = root.status().applied_index;
    kv.split_at(&row(100)).await.unwrap();
    let right = common::range_of(&kv, &row(100)).await;
    assert_ne!(right.tablet_id, ROOT_TABLET);
    assert!(stores.stores()[2].replica(right.tablet_id).is_none());
    insert_rows(kv.as_ref(), 100..110).await;
    insert_rows(kv.as_ref(), 10..60).await;
    eventually(
        "the lower half's leader compacts past store 3",
        WAIT,
        async || lead.status().log_first_index > behind + 1,
    )
    .await;
    stores.transport().heal();

    // Its replica of the lower half comes back by snapshot, without the upper half's keys;
    // the store then finds the upper half in the meta records and gets it by snapshot too.
    eventually("store 3 holds the upper half", WAIT, async || {
        stores.stores()[2]
            .replica(right.tablet_id)
            .is_some_and(|r| r.is_initialized())
    })
    .await;
    let ts = kv.read_ts().await.unwrap();
    let upper = kv.scan(&row(100), b"rox", ts, None).await.unwrap();
    assert_eq!(upper.len(), 10);
    eventually("store 3 has every row", WAIT, async || {
        let mvcc = Mvcc::new(engines[2].clone());
        mvcc.scan(b"row", b"rox", ts, None).unwrap().len() == 70
    })
    .await;
    assert!(root.descriptor().end_key == right.start_key);
    stores.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_keeps_what_a_live_follower_needs_up_to_the_hard_cap() {
    let engines = engines(3);
    let group = LocalGroup::start(config(MAX_ENTRIES), dyn_engines(&engines), clock()).unwrap();
    group.wait_for_leader().await.unwrap();
    insert_rows(&group, 0..5).await;
    let lead = leader(&group);
    let follower = follower_of(&group, &lead);
    wait_applied(&follower, lead.status().applied_index).await;
    // The follower hears nothing from the leader but is alive: it keeps asking for (pre-)votes,
    // which the leader hears.
    group
        .transport()
        .cut(lead.replica_id(), follower.replica_id());
    let matched = follower.status().applied_index;
    insert_rows(&group, 5..5 + 2 * MAX_ENTRIES as usize).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = lead.status();
    assert!(s.log_entries > MAX_ENTRIES, "{s:?}");
    assert!(
        s.log_first_index <= matched + 1,
        "the leader keeps the live follower's entries: {s:?}, follower at {matched}"
    );
    // Past four times the threshold it compacts anyway.
    let last = insert_rows(&group, 45..150).await;
    eventually(
        "the leader compacts past the live follower",
        WAIT,
        async || lead.status().log_first_index > matched + 1,
    )
    .await;
    group.transport().heal();
    wait_applied(&follower, lead.status().applied_index).await;
    assert_rows(&follower, 150, last);
    group.shutdown().await;
}
