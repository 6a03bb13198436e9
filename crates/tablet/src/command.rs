//! Encoding of tablet commands (the payload of Raft log entries) to and from protobuf.

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use prost::Message;

use crate::kv::{Condition, Mutation, Span, WriteRequest};
use crate::txn::TabletOp;
use crate::{Error, LockOwner, Result};

/// The protobuf form of a write request, with `commit_ts` left 0 (the leader assigns it).
pub fn write_to_proto(req: &WriteRequest) -> pb::WriteCommand {
    pb::WriteCommand {
        commit_ts: 0,
        read_ts: req.read_ts.map_or(0, Timestamp::as_nanos),
        read_spans: spans_to_proto(&req.read_spans),
        conditions: req
            .conditions
            .iter()
            .map(|c| match c {
                Condition::NotExists(k) => pb::Condition {
                    kind: pb::condition::Kind::NotExists as i32,
                    key: k.clone(),
                },
                Condition::Exists(k) => pb::Condition {
                    kind: pb::condition::Kind::Exists as i32,
                    key: k.clone(),
                },
            })
            .collect(),
        mutations: req
            .mutations
            .iter()
            .map(|m| match m {
                Mutation::Put { key, value } => pb::Mutation {
                    kind: pb::mutation::Kind::Put as i32,
                    key: key.clone(),
                    value: value.clone(),
                },
                Mutation::Delete { key } => pb::Mutation {
                    kind: pb::mutation::Kind::Delete as i32,
                    key: key.clone(),
                    value: Vec::new(),
                },
            })
            .collect(),
        lock_owner: req
            .lock_owner
            .as_ref()
            .map_or_else(Vec::new, |o| o.id.clone()),
        lock_priority: req.lock_owner.as_ref().map_or(0, |o| o.priority.as_nanos()),
    }
}

/// The write request a protobuf write carries (its `commit_ts` is ignored). Unknown enum values
/// (from a newer or corrupt peer) are an error, never a guess.
pub fn write_from_proto(cmd: pb::WriteCommand) -> Result<WriteRequest> {
    let bad = |what: &str, v: i32| Error::Internal(format!("unknown {what} kind {v} in a write"));
    let conditions = cmd
        .conditions
        .into_iter()
        .map(|c| match pb::condition::Kind::try_from(c.kind) {
            Ok(pb::condition::Kind::NotExists) => Ok(Condition::NotExists(c.key)),
            Ok(pb::condition::Kind::Exists) => Ok(Condition::Exists(c.key)),
            Err(_) => Err(bad("condition", c.kind)),
        })
        .collect::<Result<_>>()?;
    let mutations = cmd
        .mutations
        .into_iter()
        .map(|m| match pb::mutation::Kind::try_from(m.kind) {
            Ok(pb::mutation::Kind::Put) => Ok(Mutation::Put {
                key: m.key,
                value: m.value,
            }),
            Ok(pb::mutation::Kind::Delete) => Ok(Mutation::Delete { key: m.key }),
            Err(_) => Err(bad("mutation", m.kind)),
        })
        .collect::<Result<_>>()?;
    Ok(WriteRequest {
        read_ts: (cmd.read_ts != 0).then(|| Timestamp::from_nanos(cmd.read_ts)),
        read_spans: spans_from_proto(cmd.read_spans),
        conditions,
        mutations,
        lock_owner: (!cmd.lock_owner.is_empty()).then(|| LockOwner {
            id: cmd.lock_owner,
            priority: Timestamp::from_nanos(cmd.lock_priority),
        }),
    })
}

/// Builds the log entry payload for a write proposed with commit timestamp `commit_ts`.
pub(crate) fn encode_write(proposal_id: u64, commit_ts: Timestamp, req: &WriteRequest) -> Vec<u8> {
    let write = pb::WriteCommand {
        commit_ts: commit_ts.as_nanos(),
        lock_owner: Vec::new(),
        lock_priority: 0,
        ..write_to_proto(req)
    };
    pb::TabletCommand {
        proposal_id,
        command: Some(pb::tablet_command::Command::Write(write)),
    }
    .encode_to_vec()
}

/// Builds the log entry payload for a garbage collection below `horizon`.
/// Encodes a command with its proposal id.
pub(crate) fn encode(proposal_id: u64, command: pb::tablet_command::Command) -> Vec<u8> {
    pb::TabletCommand {
        proposal_id,
        command: Some(command),
    }
    .encode_to_vec()
}

/// The log command for `op`, at timestamp `ts` (the prepare, decision, split or freeze
/// timestamp the leader assigned; unused by the others). `None` for the operations that are not
/// replicated.
pub(crate) fn op_command(op: &TabletOp, ts: Timestamp) -> Option<pb::tablet_command::Command> {
    use pb::tablet_command::Command;
    Some(match op {
        TabletOp::Prepare {
            txn_id,
            anchor,
            write,
            staged,
        } => Command::Prepare(pb::PrepareCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            write: Some(pb::WriteCommand {
                commit_ts: ts.as_nanos(),
                lock_owner: Vec::new(),
                lock_priority: 0,
                ..write_to_proto(write)
            }),
            staged_pieces: *staged,
        }),
        TabletOp::Stage {
            txn_id,
            anchor,
            seq,
            write,
        } => Command::Stage(pb::StageCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            seq: *seq,
            write: Some(pb::WriteCommand {
                lock_owner: Vec::new(),
                lock_priority: 0,
                ..write_to_proto(write)
            }),
        }),
        TabletOp::Decide {
            txn_id,
            anchor,
            commit,
            write,
            ..
        } => Command::Decide(pb::DecideCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            commit: *commit,
            commit_ts: ts.as_nanos(),
            write: write.as_ref().map(|w| pb::WriteCommand {
                commit_ts: ts.as_nanos(),
                lock_owner: Vec::new(),
                lock_priority: 0,
                ..write_to_proto(w)
            }),
            expires: 0,
        }),
        TabletOp::Resolve {
            txn_id,
            commit_ts,
            pieces,
        } => Command::Resolve(resolve_command(txn_id, *commit_ts, *pieces)),
        TabletOp::Forget { txn_ids } => Command::Forget(pb::ForgetCommand {
            txn_id: Vec::new(),
            txn_ids: txn_ids.clone(),
        }),
        TabletOp::Split {
            key,
            new_tablet_id,
            sticky,
        } => Command::Split(pb::SplitCommand {
            split_key: key.clone(),
            new_tablet_id: *new_tablet_id,
            split_ts: ts.as_nanos(),
            sticky: *sticky,
        }),
        TabletOp::Freeze { .. }
        | TabletOp::Unfreeze { .. }
        | TabletOp::Merge { .. }
        | TabletOp::AbortMerge { .. } => return merge_command(op, ts).map(Command::from),
        TabletOp::Refresh { .. }
        | TabletOp::ChangeReplicas { .. }
        | TabletOp::CreateReplica(_)
        | TabletOp::Lock { .. }
        | TabletOp::Unlock { .. }
        | TabletOp::WaitApplied { .. } => {
            return None;
        }
    })
}

/// A merge step's command (the freeze timestamp `ts` for a freeze), shared by the log and the
/// wire; `None` for the other operations.
fn merge_command(op: &TabletOp, ts: Timestamp) -> Option<MergeStep> {
    Some(match op {
        TabletOp::Freeze {
            left,
            right_generation,
        } => MergeStep::Freeze(pb::FreezeCommand {
            left: Some(left.clone()),
            right_generation: *right_generation,
            freeze_ts: ts.as_nanos(),
        }),
        TabletOp::Unfreeze { left_tablet } => MergeStep::Unfreeze(pb::UnfreezeCommand {
            left_tablet_id: *left_tablet,
        }),
        TabletOp::Merge {
            right,
            left_generation,
            freeze_ts,
            freeze_index,
        } => MergeStep::Merge(pb::MergeCommand {
            right: Some(right.clone()),
            left_generation: *left_generation,
            freeze_ts: freeze_ts.as_nanos(),
            freeze_index: *freeze_index,
        }),
        TabletOp::AbortMerge {
            left_tablet,
            right,
            left_generation,
        } => MergeStep::AbortMerge(pb::AbortMergeCommand {
            right: Some(right.clone()),
            left_generation: *left_generation,
            left_tablet_id: *left_tablet,
        }),
        _ => return None,
    })
}

/// The protobuf messages of the merge steps, which the log and the wire both carry.
enum MergeStep {
    Freeze(pb::FreezeCommand),
    Unfreeze(pb::UnfreezeCommand),
    Merge(pb::MergeCommand),
    AbortMerge(pb::AbortMergeCommand),
}

impl From<MergeStep> for pb::tablet_command::Command {
    fn from(step: MergeStep) -> Self {
        use pb::tablet_command::Command;
        match step {
            MergeStep::Freeze(c) => Command::Freeze(c),
            MergeStep::Unfreeze(c) => Command::Unfreeze(c),
            MergeStep::Merge(c) => Command::Merge(c),
            MergeStep::AbortMerge(c) => Command::AbortMerge(c),
        }
    }
}

impl From<MergeStep> for pb::kv_op_request::Op {
    fn from(step: MergeStep) -> Self {
        use pb::kv_op_request::Op;
        match step {
            MergeStep::Freeze(c) => Op::Freeze(c),
            MergeStep::Unfreeze(c) => Op::Unfreeze(c),
            MergeStep::Merge(c) => Op::Merge(c),
            MergeStep::AbortMerge(c) => Op::AbortMerge(c),
        }
    }
}

fn spans_to_proto(spans: &[Span]) -> Vec<pb::Span> {
    spans
        .iter()
        .map(|s| pb::Span {
            start: s.start.clone(),
            end: s.end.clone().unwrap_or_default(),
        })
        .collect()
}

fn spans_from_proto(spans: Vec<pb::Span>) -> Vec<Span> {
    spans
        .into_iter()
        .map(|s| Span {
            start: s.start,
            end: (!s.end.is_empty()).then_some(s.end),
        })
        .collect()
}

fn resolve_command(txn_id: &[u8], commit_ts: Option<Timestamp>, pieces: u32) -> pb::ResolveCommand {
    pb::ResolveCommand {
        txn_id: txn_id.to_vec(),
        commit: commit_ts.is_some(),
        commit_ts: commit_ts.map_or(0, Timestamp::as_nanos),
        pieces,
    }
}

/// `op` as a request to another node.
pub fn op_to_proto(op: &TabletOp) -> pb::kv_op_request::Op {
    use pb::kv_op_request::Op;
    match op {
        TabletOp::Prepare {
            txn_id,
            anchor,
            write,
            staged,
        } => Op::Prepare(pb::PrepareCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            write: Some(write_to_proto(write)),
            staged_pieces: *staged,
        }),
        TabletOp::Stage {
            txn_id,
            anchor,
            seq,
            write,
        } => Op::Stage(pb::StageCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            seq: *seq,
            write: Some(write_to_proto(write)),
        }),
        TabletOp::Decide {
            txn_id,
            anchor,
            commit,
            min_commit_ts,
            write,
            expires,
        } => Op::Decide(pb::DecideCommand {
            txn_id: txn_id.clone(),
            anchor_key: anchor.clone(),
            commit: *commit,
            commit_ts: min_commit_ts.as_nanos(),
            write: write.as_ref().map(write_to_proto),
            expires: expires.as_nanos(),
        }),
        TabletOp::Resolve {
            txn_id,
            commit_ts,
            pieces,
        } => Op::Resolve(resolve_command(txn_id, *commit_ts, *pieces)),
        TabletOp::Forget { txn_ids } => Op::Forget(pb::ForgetCommand {
            txn_id: Vec::new(),
            txn_ids: txn_ids.clone(),
        }),
        TabletOp::Split {
            key,
            new_tablet_id,
            sticky,
        } => Op::Split(pb::SplitCommand {
            split_key: key.clone(),
            new_tablet_id: *new_tablet_id,
            split_ts: 0,
            sticky: *sticky,
        }),
        TabletOp::Freeze { .. }
        | TabletOp::Unfreeze { .. }
        | TabletOp::Merge { .. }
        | TabletOp::AbortMerge { .. } => match merge_command(op, Timestamp::ZERO) {
            Some(step) => step.into(),
            None => unreachable!("every merge step has a command"),
        },
        TabletOp::WaitApplied { index } => {
            Op::WaitApplied(pb::WaitAppliedRequest { index: *index })
        }
        TabletOp::Refresh {
            spans,
            read_ts,
            up_to,
        } => Op::Refresh(pb::RefreshRequest {
            spans: spans_to_proto(spans),
            read_ts: read_ts.as_nanos(),
            up_to: up_to.as_nanos(),
        }),
        TabletOp::ChangeReplicas {
            changes,
            generation,
        } => Op::ChangeReplicas(pb::ChangeReplicasRequest {
            changes: changes.iter().map(|c| c.to_proto()).collect(),
            expected_generation: *generation,
        }),
        TabletOp::CreateReplica(desc) => Op::CreateReplica(desc.clone()),
        TabletOp::Lock {
            keys,
            owner,
            read_ts,
        } => Op::Lock(pb::LockRequest {
            keys: keys.clone(),
            owner: owner.id.clone(),
            priority: owner.priority.as_nanos(),
            read_ts: read_ts.as_nanos(),
        }),
        TabletOp::Unlock { owner } => Op::Unlock(pb::UnlockRequest {
            owner: owner.clone(),
        }),
    }
}

/// A request from another node as an op.
pub fn op_from_proto(op: pb::kv_op_request::Op) -> Result<TabletOp> {
    use pb::kv_op_request::Op;
    Ok(match op {
        Op::Prepare(p) => TabletOp::Prepare {
            txn_id: p.txn_id,
            anchor: p.anchor_key,
            write: write_from_proto(p.write.unwrap_or_default())?,
            staged: p.staged_pieces,
        },
        Op::Stage(p) => TabletOp::Stage {
            txn_id: p.txn_id,
            anchor: p.anchor_key,
            seq: p.seq,
            write: write_from_proto(p.write.unwrap_or_default())?,
        },
        Op::Decide(d) => TabletOp::Decide {
            txn_id: d.txn_id,
            anchor: d.anchor_key,
            commit: d.commit,
            min_commit_ts: Timestamp::from_nanos(d.commit_ts),
            write: d.write.map(write_from_proto).transpose()?,
            expires: Timestamp::from_nanos(d.expires),
        },
        Op::Resolve(r) => TabletOp::Resolve {
            txn_id: r.txn_id,
            commit_ts: r.commit.then(|| Timestamp::from_nanos(r.commit_ts)),
            pieces: r.pieces,
        },
        Op::Forget(f) => TabletOp::Forget {
            txn_ids: forgotten(f),
        },
        Op::Split(s) => TabletOp::Split {
            key: s.split_key,
            new_tablet_id: s.new_tablet_id,
            sticky: s.sticky,
        },
        Op::Freeze(f) => TabletOp::Freeze {
            left: required(f.left, "freeze", "left range")?,
            right_generation: f.right_generation,
        },
        Op::Unfreeze(u) => TabletOp::Unfreeze {
            left_tablet: u.left_tablet_id,
        },
        Op::Merge(m) => TabletOp::Merge {
            right: required(m.right, "merge", "right range")?,
            left_generation: m.left_generation,
            freeze_ts: Timestamp::from_nanos(m.freeze_ts),
            freeze_index: m.freeze_index,
        },
        Op::AbortMerge(a) => TabletOp::AbortMerge {
            left_tablet: a.left_tablet_id,
            right: required(a.right, "abort merge", "right range")?,
            left_generation: a.left_generation,
        },
        Op::WaitApplied(w) => TabletOp::WaitApplied { index: w.index },
        Op::Refresh(r) => TabletOp::Refresh {
            spans: spans_from_proto(r.spans),
            read_ts: Timestamp::from_nanos(r.read_ts),
            up_to: Timestamp::from_nanos(r.up_to),
        },
        Op::ChangeReplicas(c) => TabletOp::ChangeReplicas {
            changes: c
                .changes
                .iter()
                .map(crate::membership::ReplicaChange::from_proto)
                .collect::<Result<_>>()?,
            generation: c.expected_generation,
        },
        Op::CreateReplica(desc) => TabletOp::CreateReplica(desc),
        Op::Lock(l) => TabletOp::Lock {
            keys: l.keys,
            owner: LockOwner {
                id: l.owner,
                priority: Timestamp::from_nanos(l.priority),
            },
            read_ts: Timestamp::from_nanos(l.read_ts),
        },
        Op::Unlock(u) => TabletOp::Unlock { owner: u.owner },
    })
}

/// A field a request cannot do without.
fn required<T>(field: Option<T>, op: &str, what: &str) -> Result<T> {
    field.ok_or_else(|| Error::Internal(format!("a {op} request without its {what}")))
}

pub(crate) fn encode_gc(proposal_id: u64, horizon: Timestamp) -> Vec<u8> {
    pb::TabletCommand {
        proposal_id,
        command: Some(pb::tablet_command::Command::Gc(pb::GcCommand {
            horizon: horizon.as_nanos(),
        })),
    }
    .encode_to_vec()
}

/// Decodes a log entry payload. A payload that does not decode is corruption: entries are only
/// ever written by [`encode_write`]/[`encode_gc`].
pub(crate) fn decode(data: &[u8]) -> Result<pb::TabletCommand> {
    pb::TabletCommand::decode(data)
        .map_err(|e| Error::Internal(format!("undecodable tablet command in the raft log: {e}")))
}

/// A decoded write, borrowed views over the protobuf message.
pub(crate) struct WriteView<'a> {
    pub read_ts: Option<Timestamp>,
    pub cmd: &'a pb::WriteCommand,
}

impl<'a> WriteView<'a> {
    pub(crate) fn new(cmd: &'a pb::WriteCommand) -> Self {
        WriteView {
            read_ts: (cmd.read_ts != 0).then(|| Timestamp::from_nanos(cmd.read_ts)),
            cmd,
        }
    }

    /// Read spans as (start, optional exclusive end).
    pub(crate) fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.cmd.read_spans.iter().map(|s| Span {
            start: s.start.clone(),
            end: (!s.end.is_empty()).then(|| s.end.clone()),
        })
    }
}

/// The transactions a forget names (one the old way, any number the new).
pub(crate) fn forgotten(f: pb::ForgetCommand) -> Vec<Vec<u8>> {
    let mut ids = f.txn_ids;
    if !f.txn_id.is_empty() {
        ids.push(f.txn_id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forget_names_its_one_transaction_or_its_batch() {
        let old = pb::ForgetCommand {
            txn_id: b"a".to_vec(),
            txn_ids: Vec::new(),
        };
        assert_eq!(forgotten(old), [b"a".to_vec()]);
        let batch = pb::ForgetCommand {
            txn_id: Vec::new(),
            txn_ids: vec![b"b".to_vec(), b"c".to_vec()],
        };
        assert_eq!(forgotten(batch), [b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn merge_steps_cross_the_wire_intact() {
        let range = |tablet: u64| pb::RangeDescriptor {
            tablet_id: tablet,
            start_key: b"/t/a".to_vec(),
            end_key: b"/t/m".to_vec(),
            generation: 4,
            replicas: vec![1, 2, 3],
            ..Default::default()
        };
        let ops = [
            TabletOp::Split {
                key: b"/t/c".to_vec(),
                new_tablet_id: 9,
                sticky: true,
            },
            TabletOp::Freeze {
                left: range(2),
                right_generation: 7,
            },
            TabletOp::Unfreeze { left_tablet: 2 },
            TabletOp::Merge {
                right: range(3),
                left_generation: 4,
                freeze_ts: Timestamp::from_nanos(11),
                freeze_index: 12,
            },
            TabletOp::AbortMerge {
                left_tablet: 2,
                right: range(3),
                left_generation: 4,
            },
            TabletOp::WaitApplied { index: 13 },
            TabletOp::Stage {
                txn_id: b"t".to_vec(),
                anchor: b"/t/a".to_vec(),
                seq: 3,
                write: WriteRequest {
                    read_ts: Some(Timestamp::from_nanos(4)),
                    mutations: vec![Mutation::Delete {
                        key: b"/t/b".to_vec(),
                    }],
                    ..Default::default()
                },
            },
            TabletOp::Prepare {
                txn_id: b"t".to_vec(),
                anchor: b"/t/a".to_vec(),
                write: WriteRequest::default(),
                staged: 4,
            },
            TabletOp::Resolve {
                txn_id: b"t".to_vec(),
                commit_ts: Some(Timestamp::from_nanos(8)),
                pieces: 2,
            },
        ];
        for op in ops {
            assert_eq!(op_from_proto(op_to_proto(&op)).unwrap(), op);
        }
        // The log carries the freeze timestamp the leader assigned.
        let freeze = TabletOp::Freeze {
            left: range(2),
            right_generation: 7,
        };
        match op_command(&freeze, Timestamp::from_nanos(5)) {
            Some(pb::tablet_command::Command::Freeze(f)) => assert_eq!(f.freeze_ts, 5),
            other => panic!("{other:?}"),
        }
        assert!(op_command(&TabletOp::WaitApplied { index: 1 }, Timestamp::ZERO).is_none());
        let incomplete = pb::kv_op_request::Op::Merge(pb::MergeCommand::default());
        assert!(op_from_proto(incomplete).is_err());
    }

    #[test]
    fn write_round_trip() {
        let req = WriteRequest {
            read_ts: Some(Timestamp::from_nanos(5)),
            read_spans: vec![
                Span {
                    start: b"a".to_vec(),
                    end: None,
                },
                Span {
                    start: b"b".to_vec(),
                    end: Some(b"c".to_vec()),
                },
            ],
            conditions: vec![Condition::NotExists(b"k".to_vec())],
            mutations: vec![
                Mutation::Put {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                },
                Mutation::Delete { key: b"d".to_vec() },
            ],
            lock_owner: None,
        };
        let bytes = encode_write(7, Timestamp::from_nanos(9), &req);
        let cmd = decode(&bytes).unwrap();
        assert_eq!(cmd.proposal_id, 7);
        let Some(pb::tablet_command::Command::Write(w)) = &cmd.command else {
            panic!("not a write")
        };
        let view = WriteView::new(w);
        assert_eq!(w.commit_ts, 9);
        assert_eq!(view.read_ts, Some(Timestamp::from_nanos(5)));
        assert_eq!(view.spans().collect::<Vec<_>>(), req.read_spans);
        assert_eq!(w.mutations.len(), 2);
        assert_eq!(write_from_proto(w.clone()).unwrap(), req);
        let mut bad = w.clone();
        bad.mutations[0].kind = 42;
        assert!(write_from_proto(bad).is_err());
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
