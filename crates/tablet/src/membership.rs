//! Changing a tablet's replicas: Raft configuration changes and the snapshots that bring a new
//! replica up to date.
//!
//! Adding a replica on node N takes three steps, driven by a gateway (`RangeClient::
//! replace_replica`) and carried out by the group's leader:
//!
//! 1. N creates an *empty* replica of the tablet: no range, no log, no configuration.
//! 2. The leader adds N as a **learner** (a simple configuration change). A learner receives
//!    the log but does not vote. Every group's log starts after [`RAFT_INIT_INDEX`] (as if a
//!    snapshot had been taken there), so an empty replica is always behind the leader's first
//!    index and the leader sends it a **snapshot**: the tablet's range, every MVCC version in
//!    it and its node-local records ([`pb::TabletSnapshot`]), built from the leader's applied
//!    state. N installs it in one atomic write with the Raft state it describes.
//! 3. Once the learner has the snapshot and is close to the commit index, the leader proposes
//!    one change with several steps (promote N, remove the replica being replaced): a **joint
//!    configuration** in which both the old and the new voter sets must agree, which the group
//!    leaves by itself once it is committed (raft-rs's automatic transition). No moment exists
//!    at which two disjoint majorities could decide.
//!
//! The same snapshot brings back a follower that fell behind the leader's first index after a
//! log compaction (`Driver::maybe_compact_log`): it already holds the tablet, and installing
//! replaces its old state of the range (and clears keys its old range had beyond the new one).
//!
//! Every change bumps the range descriptor's generation, and the leader then rewrites the
//! tablet's meta record, so gateways see the new replica set. A replica that applies its own
//! removal deletes its state; one that missed it (its node was down) finds out from the meta
//! record and does the same (`maintain`).

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use meridian_storage::engine::BatchOp;
use meridian_storage::{KeyRange, KvEngine, ScanOrder, Space, WriteBatch, mvcc};
use prost::Message as _;
use raft::prelude::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};

use crate::local;
use crate::range::RangeDescriptor;
use crate::{Error, Result};

/// The index (and term) a new group's log starts after. Any replica added later starts empty,
/// below it, and so must receive a snapshot.
pub const RAFT_INIT_INDEX: u64 = 5;

/// One step of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaChange {
    /// Add a non-voting replica on this node (it receives a snapshot and the log).
    AddLearner(u64),
    /// Make this node's replica a voter (promote a learner, or add a voter outright).
    AddVoter(u64),
    /// Remove this node's replica.
    Remove(u64),
}

impl ReplicaChange {
    /// The node the step is about.
    pub fn node(self) -> u64 {
        match self {
            ReplicaChange::AddLearner(n)
            | ReplicaChange::AddVoter(n)
            | ReplicaChange::Remove(n) => n,
        }
    }

    pub(crate) fn to_proto(self) -> pb::ReplicaChange {
        use pb::replica_change::Kind;
        let (kind, node_id) = match self {
            ReplicaChange::AddLearner(n) => (Kind::AddLearner, n),
            ReplicaChange::AddVoter(n) => (Kind::AddVoter, n),
            ReplicaChange::Remove(n) => (Kind::Remove, n),
        };
        pb::ReplicaChange {
            kind: kind as i32,
            node_id,
        }
    }

    pub(crate) fn from_proto(c: &pb::ReplicaChange) -> Result<Self> {
        use pb::replica_change::Kind;
        let kind = Kind::try_from(c.kind)
            .map_err(|_| Error::Internal(format!("unknown replica change kind {}", c.kind)))?;
        if c.node_id == 0 {
            return Err(Error::Internal("a replica change names node 0".into()));
        }
        Ok(match kind {
            Kind::AddLearner => ReplicaChange::AddLearner(c.node_id),
            Kind::AddVoter => ReplicaChange::AddVoter(c.node_id),
            Kind::Remove => ReplicaChange::Remove(c.node_id),
        })
    }
}

/// The Raft configuration change for `changes`: one step is a simple change, several enter a
/// joint configuration that is left automatically.
pub(crate) fn conf_change(changes: &[ReplicaChange]) -> ConfChangeV2 {
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    for c in changes {
        let mut single = ConfChangeSingle {
            node_id: c.node(),
            ..Default::default()
        };
        single.set_change_type(match c {
            ReplicaChange::AddLearner(_) => ConfChangeType::AddLearnerNode,
            ReplicaChange::AddVoter(_) => ConfChangeType::AddNode,
            ReplicaChange::Remove(_) => ConfChangeType::RemoveNode,
        });
        cc.mut_changes().push(single);
    }
    cc
}

/// Every node with a replica in `cs` (voters, learners, and both sides of a joint
/// configuration), sorted.
pub(crate) fn members(cs: &ConfState) -> Vec<u64> {
    sorted_ids([
        &cs.voters,
        &cs.voters_outgoing,
        &cs.learners,
        &cs.learners_next,
    ])
}

/// The learners of `cs` (including those a joint configuration is turning into learners),
/// sorted.
pub(crate) fn learners(cs: &ConfState) -> Vec<u64> {
    sorted_ids([&cs.learners, &cs.learners_next])
}

fn sorted_ids<const N: usize>(lists: [&Vec<u64>; N]) -> Vec<u64> {
    let mut ids: Vec<u64> = lists.into_iter().flatten().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The snapshot data of tablet `desc` as applied now on `engine`: its data and node-local
/// records, with the replica's safe time (`closed`) and the largest timestamp its applied
/// state implies (`max_ts`).
pub(crate) fn build_snapshot(
    engine: &dyn KvEngine,
    desc: &RangeDescriptor,
    closed: Timestamp,
    max_ts: Timestamp,
) -> meridian_storage::Result<Vec<u8>> {
    let tablet = desc.tablet_id;
    let mut data = Vec::new();
    let range = mvcc::data_range(&desc.start_key, &desc.end_key);
    for item in engine.iter(Space::Data, range, ScanOrder::Forward)? {
        let (key, value) = item?;
        data.push(pb::KvPair { key, value });
    }
    let records = |e: Error| meridian_storage::Error::Corrupt {
        what: format!("tablet {tablet}'s records: {e}"),
    };
    let snap = pb::TabletSnapshot {
        range: Some(desc.clone()),
        data,
        prepared: local::load_prepared(engine, tablet).map_err(records)?,
        decisions: local::load_decisions(engine, tablet).map_err(records)?,
        approx_bytes: local::load_size(engine, tablet).map_err(records)?,
        freeze: local::load_freeze(engine, tablet).map_err(records)?,
        closed_ts: closed.as_nanos(),
        max_ts: max_ts.as_nanos(),
        staged: local::load_all_staged(engine, tablet).map_err(records)?,
    };
    Ok(snap.encode_to_vec())
}

/// Decodes snapshot data sent by a leader.
pub(crate) fn decode_snapshot(tablet: u64, data: &[u8]) -> Result<pb::TabletSnapshot> {
    let snap = pb::TabletSnapshot::decode(data)
        .map_err(|e| Error::Internal(format!("undecodable snapshot of tablet {tablet}: {e}")))?;
    match &snap.range {
        Some(r) if r.tablet_id == tablet => Ok(snap),
        _ => Err(Error::Internal(format!(
            "a snapshot sent to tablet {tablet} describes another tablet"
        ))),
    }
}

/// Adds to `batch` the removal of everything tablet `desc` keeps on `engine`: its MVCC data,
/// its node-local records and its applied index (not its Raft log: see
/// `RaftLogStore::destroy_with`).
pub(crate) fn clear_state(
    engine: &dyn KvEngine,
    desc: &RangeDescriptor,
    batch: &mut WriteBatch,
) -> Result<()> {
    let range = mvcc::data_range(&desc.start_key, &desc.end_key);
    for item in engine.iter(Space::Data, range, ScanOrder::Forward)? {
        let (key, _) = item?;
        batch.delete(Space::Data, key);
    }
    clear_records(engine, desc.tablet_id, batch)
}

/// Adds to `batch` the removal of tablet `tablet`'s node-local records and applied index (not
/// its data, nor its Raft log).
pub(crate) fn clear_records(
    engine: &dyn KvEngine,
    tablet: u64,
    batch: &mut WriteBatch,
) -> Result<()> {
    for prefix in local::record_prefixes(tablet) {
        for item in engine.iter(Space::Meta, KeyRange::prefix(&prefix), ScanOrder::Forward)? {
            let (key, _) = item?;
            batch.delete(Space::Meta, key);
        }
    }
    mvcc::delete_applied_index(batch, tablet);
    Ok(())
}

/// Adds to `batch` what installing `snap` at log index `index` writes: whatever the replica
/// held before (`old`, when it had a range: a follower the leader's log compaction left
/// behind) is replaced by the snapshot's data and records, freeze included; keys of the old
/// range outside the new one (a split this replica missed) are cleared too.
pub(crate) fn stage_install(
    engine: &dyn KvEngine,
    old: Option<&RangeDescriptor>,
    snap: &pb::TabletSnapshot,
    index: u64,
    batch: &mut WriteBatch,
) -> Result<()> {
    let range = snap.range.clone().unwrap_or_default();
    let mut puts = WriteBatch::new();
    for kv in &snap.data {
        puts.put(Space::Data, kv.key.clone(), kv.value.clone());
    }
    local::put_descriptor(&mut puts, &range);
    for p in &snap.prepared {
        local::put_prepared(&mut puts, range.tablet_id, p);
    }
    for d in &snap.decisions {
        local::put_decision(&mut puts, range.tablet_id, d);
    }
    for piece in &snap.staged {
        local::put_staged(&mut puts, range.tablet_id, piece);
    }
    local::put_size(&mut puts, range.tablet_id, snap.approx_bytes);
    if let Some(freeze) = &snap.freeze {
        local::put_freeze(&mut puts, range.tablet_id, freeze);
    }
    mvcc::put_applied_index(&mut puts, range.tablet_id, index);
    // Everything held before goes, except what is written again (one batch must not both
    // delete and put a key).
    let mut clear = WriteBatch::new();
    if let Some(old) = old {
        clear_state(engine, old, &mut clear)?;
    }
    let same_range =
        old.is_some_and(|o| o.start_key == range.start_key && o.end_key == range.end_key);
    if !same_range {
        clear_state(engine, &range, &mut clear)?;
    }
    let written: std::collections::HashSet<(Space, &[u8])> = puts
        .ops()
        .iter()
        .filter_map(|op| match op {
            BatchOp::Put { space, key, .. } => Some((*space, key.as_slice())),
            BatchOp::Delete { .. } => None,
        })
        .collect();
    let mut deleted = std::collections::HashSet::new();
    for op in clear.ops() {
        if let BatchOp::Delete { space, key } = op
            && !written.contains(&(*space, key.as_slice()))
            && deleted.insert((*space, key.clone()))
        {
            batch.delete(*space, key.clone());
        }
    }
    batch.append(puts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meridian_storage::{Durability, MemEngine, Mvcc};

    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    fn desc(start: &[u8], end: &[u8], generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id: 3,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            generation,
            replicas: vec![1, 2, 3],
            ..Default::default()
        }
    }

    fn prepared(id: &[u8], key: &[u8]) -> pb::PreparedTxn {
        pb::PreparedTxn {
            txn_id: id.to_vec(),
            anchor_key: b"anchor".to_vec(),
            write: Some(pb::WriteCommand {
                commit_ts: 77,
                mutations: vec![pb::Mutation {
                    kind: pb::mutation::Kind::Put as i32,
                    key: key.to_vec(),
                    value: b"pending".to_vec(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn decision(id: &[u8]) -> pb::TxnDecision {
        pb::TxnDecision {
            txn_id: id.to_vec(),
            anchor_key: b"b1".to_vec(),
            commit: true,
            commit_ts: 60,
        }
    }

    /// A fresh engine holding `rows` (key, timestamp; the value is the timestamp) and tablet
    /// 3's records.
    fn engine_with(
        rows: &[(&[u8], u64)],
        range: &RangeDescriptor,
        prepared_txns: &[pb::PreparedTxn],
        decisions: &[pb::TxnDecision],
        freeze: Option<&pb::MergeFreeze>,
    ) -> Arc<dyn KvEngine> {
        let engine: Arc<dyn KvEngine> = Arc::new(MemEngine::new());
        let mvcc = Mvcc::new(engine.clone());
        for (key, at) in rows {
            mvcc.put(key, ts(*at), format!("{at}").as_bytes()).unwrap();
        }
        let mut batch = WriteBatch::new();
        local::put_descriptor(&mut batch, range);
        for p in prepared_txns {
            local::put_prepared(&mut batch, 3, p);
        }
        for d in decisions {
            local::put_decision(&mut batch, 3, d);
        }
        if let Some(f) = freeze {
            local::put_freeze(&mut batch, 3, f);
        }
        local::put_size(&mut batch, 3, 1000);
        mvcc::put_applied_index(&mut batch, 3, 20);
        engine.write(batch, Durability::Sync).unwrap();
        engine
    }

    #[test]
    fn a_snapshot_replaces_a_followers_state_with_all_of_the_leaders() {
        // The leader's tablet split at `d` and was frozen for a merge since the follower last
        // heard; it holds a prepared transaction and a decision the follower never saw.
        let new = desc(b"b", b"d", 5);
        let freeze = pb::MergeFreeze {
            left: Some(desc(b"a", b"b", 2)),
            freeze_ts: 90,
            freeze_index: 40,
        };
        let leader = engine_with(
            &[(b"b1", 10), (b"b1", 30), (b"c1", 31)],
            &new,
            &[prepared(b"t-new", b"c2")],
            &[decision(b"d-new")],
            Some(&freeze),
        );
        let data = build_snapshot(leader.as_ref(), &new, ts(85), ts(95)).unwrap();
        let snap = decode_snapshot(3, &data).unwrap();
        assert_eq!(snap.freeze.as_ref(), Some(&freeze));
        assert_eq!((snap.closed_ts, snap.max_ts), (85, 95));

        // The follower: the range before the split, older versions, a transaction prepared
        // and a decision since settled, and the keys of another tablet past `f`.
        let old = desc(b"b", b"f", 3);
        let follower = engine_with(
            &[(b"b1", 10), (b"b2", 12), (b"e1", 13), (b"g1", 14)],
            &old,
            &[prepared(b"t-old", b"b3")],
            &[decision(b"d-old")],
            None,
        );
        let mut batch = WriteBatch::new();
        stage_install(follower.as_ref(), Some(&old), &snap, 45, &mut batch).unwrap();
        follower.write(batch, Durability::Sync).unwrap();

        let rows = |m: &Mvcc| m.scan(b"b", b"f", ts(100), None).unwrap();
        let mvcc = Mvcc::new(follower.clone());
        assert_eq!(rows(&mvcc), rows(&Mvcc::new(leader.clone())));
        assert_eq!(
            mvcc.get(b"b1", ts(20)).unwrap().as_deref(),
            Some(&b"10"[..])
        );
        assert_eq!(mvcc.get(b"b2", ts(100)).unwrap(), None, "old data is gone");
        assert_eq!(
            mvcc.get(b"e1", ts(100)).unwrap(),
            None,
            "split-off keys are gone"
        );
        assert_eq!(
            mvcc.get(b"g1", ts(100)).unwrap().as_deref(),
            Some(&b"14"[..]),
            "another tablet's keys stay"
        );
        let engine = follower.as_ref();
        assert_eq!(local::load_descriptor(engine, 3).unwrap(), Some(new));
        assert_eq!(
            local::load_prepared(engine, 3).unwrap(),
            vec![prepared(b"t-new", b"c2")]
        );
        assert_eq!(
            local::load_decisions(engine, 3).unwrap(),
            vec![decision(b"d-new")]
        );
        assert_eq!(local::load_freeze(engine, 3).unwrap(), Some(freeze));
        assert_eq!(local::load_size(engine, 3).unwrap(), 1000);
        assert_eq!(mvcc.applied_index(3).unwrap(), 45);
    }
}
