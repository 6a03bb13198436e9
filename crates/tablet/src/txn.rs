//! Replicated operations beyond plain writes: the steps of two-phase commit across tablets,
//! splits and merges.
//!
//! A transaction whose writes fall in several tablets commits in three replicated steps,
//! driven by the gateway (`dist.rs`):
//!
//! 1. **Prepare** at every participant but the coordinator (below): the participant validates
//!    its share exactly as a single-tablet write is validated (conditions, nothing read
//!    changed since the snapshot) and, if it holds, keeps it *prepared* at a prepare timestamp
//!    from its leader. A prepared transaction makes the tablet refuse conflicting writes
//!    (`conflicts`) and hold back the reads of the keys it writes at or above its prepare
//!    timestamp (`holds_back`), so a later commit at any timestamp at or above it cannot change
//!    a snapshot already served.
//! 2. **Decide** at the coordinator, the tablet holding the transaction's anchor key (its first
//!    written key): the leader picks `s = max(prepare timestamps, its last timestamp + 1)`,
//!    logs the decision and answers once it is applied. Every prepare timestamp was at least
//!    `TT.now().latest` at its participant after the gateway asked to commit, so `s` is above
//!    the timestamp of every transaction acknowledged before this one began (external
//!    consistency) without being raised to the coordinator's clock. The first decision logged
//!    wins: a later Decide (a retry, or a participant's recovery asking to abort) gets the
//!    recorded one.
//! 3. **Resolve** at every participant: apply the prepared share at `s`, or drop it. A
//!    committing resolve releases the transaction's row locks at the participant when it is
//!    applied. The gateway resolves while it waits until `TT.after(s)` (commit wait), and
//!    answers its client after both, so commit wait is on the client's path but not in the
//!    locks' critical section, as with a single-tablet write.
//!
//! The coordinator's own share is not prepared: it travels with the commit decision, which
//! validates it as a prepare would and applies it at `s` in the same log entry, or records
//! "abort" when it does not hold (and answers with the refusal). That saves the coordinator a
//! prepare and a resolve, two of the protocol's log entries, and a round before the answer.
//! A gateway that gets no answer, or a refusal, asks the coordinator to decide "abort", which
//! answers with the decision of record, and acts on that.
//!
//! A participant left prepared (its gateway died) asks the coordinator to decide "abort"; the
//! answer is the decision of record, so both outcomes are safe.
//!
//! **Large transactions are prepared and resolved in pieces**, so that no Raft entry carries a
//! whole transaction (a very large entry keeps every replica's loop busy persisting, sending
//! and applying it, long enough for an election). A share larger than the gateway's piece size
//! is shipped ahead of its prepare as several **Stage** commands, each validated like a
//! prepare's write (conditions, nothing read changed since the snapshot) and kept *staged*: its
//! mutations in a node-local record, invisible, its key bounds in memory. From its first piece
//! on, a staging transaction refuses conflicting writes exactly as a prepared one does (judged
//! by each piece's first and last key written and the bounds of what it read, so a write
//! between two of its keys conflicts too), so what each piece validated still holds when the
//! transaction prepares. The **Prepare** then names how many pieces it shipped; a participant
//! missing one refuses, so a piece lost to an abort can never be skipped. After the decision,
//! **partial resolves** apply the staged pieces one by one at the commit timestamp while the
//! transaction stays prepared (so reads at or above its prepare timestamp still wait, and no
//! replica serves a snapshot holding part of it), and the final resolve ends it. Every step is
//! a log entry, so every replica makes the same decisions at the same log positions; staging
//! and applying survive leader changes and restarts as the applied state they are. A staging
//! transaction whose gateway went silent is recovered like a prepared one, with more patience
//! (other participants may still be receiving their pieces). Decisions move with their anchor
//! key when a tablet splits or is merged, and a tablet refuses to split, or to freeze for a
//! merge, while anything is prepared on it.

use std::collections::{BTreeMap, BTreeSet};

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;

use crate::kv::WriteRequest;
use crate::range::{self, RangeDescriptor};

/// A replicated operation other than a plain write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabletOp {
    /// 2PC phase one at a participant.
    Prepare {
        /// The transaction.
        txn_id: Vec<u8>,
        /// A key of the coordinator tablet.
        anchor: Vec<u8>,
        /// This participant's share (what was not staged).
        write: WriteRequest,
        /// The number of pieces staged ahead (`Stage`), all of which must be here.
        staged: u32,
    },
    /// Ship piece `seq` of a large share ahead of its prepare (see the module docs).
    Stage {
        /// The transaction.
        txn_id: Vec<u8>,
        /// A key of the coordinator tablet.
        anchor: Vec<u8>,
        /// The piece's number, from 0.
        seq: u32,
        /// The piece.
        write: WriteRequest,
    },
    /// Record (or read back) the decision, at the coordinator.
    Decide {
        /// The transaction.
        txn_id: Vec<u8>,
        /// Its anchor key (routes the request; must be in the tablet).
        anchor: Vec<u8>,
        /// Commit or abort.
        commit: bool,
        /// A commit is decided at or above this (the largest prepare timestamp).
        min_commit_ts: Timestamp,
        /// With a commit: the coordinator tablet's own share, never prepared, validated as a
        /// prepare would be and applied at the commit timestamp with the decision (if it does
        /// not hold, the decision recorded is "abort").
        write: Option<WriteRequest>,
        /// With `write`: the leader does not log the request once `TT.now().latest` is past
        /// this. The gateway forgets the decision only after it, so a copy of the request
        /// delayed anywhere can never apply the share a second time once the decision is gone.
        expires: Timestamp,
    },
    /// Apply (`Some(commit_ts)`) or drop (`None`) a prepared share.
    Resolve {
        /// The transaction.
        txn_id: Vec<u8>,
        /// The commit timestamp, or `None` to abort.
        commit_ts: Option<Timestamp>,
        /// 0: resolve the whole share and end the transaction here. `n > 0` (commit only):
        /// apply the staged pieces below `n` not applied yet and keep it prepared.
        pieces: u32,
    },
    /// Drop the decisions of transactions every participant has resolved.
    Forget {
        /// The transactions.
        txn_ids: Vec<Vec<u8>>,
    },
    /// Check, at the leader and without a Raft write, that nothing read in `spans` at
    /// `read_ts` changed up to `up_to` (see `Replica::op`).
    Refresh {
        /// What was read.
        spans: Vec<crate::Span>,
        /// When.
        read_ts: Timestamp,
        /// The commit timestamp the reads must hold at.
        up_to: Timestamp,
    },
    /// Split the tablet at `key`; the upper half becomes tablet `new_tablet_id`.
    Split {
        /// The first key of the new tablet.
        key: Vec<u8>,
        /// The new tablet's id (cluster-unique, from the meta counter).
        new_tablet_id: u64,
        /// A split a user asked for: automatic merges keep the boundary.
        sticky: bool,
    },
    /// Freeze the tablet for a merge into its left neighbour (see `merge.rs`). Refused unless
    /// the tablet's generation is `right_generation`; asked again for the same merge, answers
    /// what the first freeze answered. The outcome carries the freeze timestamp, the freeze's
    /// log index and the frozen range.
    Freeze {
        /// The left neighbour, as the merge was planned on it.
        left: RangeDescriptor,
        /// The tablet's generation the merge was planned on.
        right_generation: u64,
    },
    /// Lift a freeze for a merge into tablet `left_tablet`, whose log refused the merge.
    Unfreeze {
        /// The left tablet of the merge that will not happen.
        left_tablet: u64,
    },
    /// Take over the frozen right neighbour (see `merge.rs`). The outcome carries the merged
    /// range.
    Merge {
        /// The right tablet's range, as frozen.
        right: RangeDescriptor,
        /// Refused unless the tablet's generation is this (the merge was planned on it).
        left_generation: u64,
        /// The right tablet's freeze timestamp.
        freeze_ts: Timestamp,
        /// The log index of the right tablet's freeze.
        freeze_index: u64,
    },
    /// Settle a merge of `right` into tablet `left_tablet` that may not have happened: once
    /// answered, the merge either happened or never will. Routed by the left tablet's start
    /// key; the outcome carries the range of the tablet holding it, which covers `right`'s
    /// start exactly when the merge happened.
    AbortMerge {
        /// The left tablet of the merge.
        left_tablet: u64,
        /// The right tablet's range, as frozen.
        right: RangeDescriptor,
        /// The left tablet's generation the merge was planned on.
        left_generation: u64,
    },
    /// Not for the leader, and not replicated: answer once this replica has applied the entry
    /// at `index`, durably.
    WaitApplied {
        /// The log index.
        index: u64,
    },
    /// Change the group's members (at the leader; see `membership.rs`).
    ChangeReplicas {
        /// The steps (several: one joint change).
        changes: Vec<crate::membership::ReplicaChange>,
        /// Refused unless the tablet's descriptor has this generation.
        generation: Option<u64>,
    },
    /// Not for the leader: the receiving node creates an empty replica of this range, to be
    /// filled by a snapshot.
    CreateReplica(RangeDescriptor),
    /// At the leader, without a Raft write: take the exclusive locks on `keys` for `owner`
    /// (see `locks.rs`). The outcome's timestamp is zero when no key has a version newer than
    /// `read_ts`; otherwise a timestamp at which this tablet's snapshot is final and holds the
    /// keys' newest versions.
    Lock {
        /// The keys (all in this tablet).
        keys: Vec<Vec<u8>>,
        /// The transaction.
        owner: crate::LockOwner,
        /// Its snapshot.
        read_ts: Timestamp,
    },
    /// At the leader, without a Raft write: the transaction `owner` ended; drop its locks.
    Unlock {
        /// The transaction's id.
        owner: Vec<u8>,
    },
}

impl TabletOp {
    /// The operation's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            TabletOp::Prepare { .. } => "prepare",
            TabletOp::Stage { .. } => "stage",
            TabletOp::Decide { .. } => "decide",
            TabletOp::Resolve { .. } => "resolve",
            TabletOp::Forget { .. } => "forget",
            TabletOp::Refresh { .. } => "refresh",
            TabletOp::Split { .. } => "split",
            TabletOp::ChangeReplicas { .. } => "change replicas",
            TabletOp::CreateReplica(_) => "create replica",
            TabletOp::Lock { .. } => "lock",
            TabletOp::Unlock { .. } => "unlock",
            TabletOp::Freeze { .. } => "freeze",
            TabletOp::Unfreeze { .. } => "unfreeze",
            TabletOp::Merge { .. } => "merge",
            TabletOp::AbortMerge { .. } => "abort merge",
            TabletOp::WaitApplied { .. } => "wait applied",
        }
    }
}

/// What a [`TabletOp`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpOutcome {
    /// Prepare: the prepare timestamp. Decide (commit): the commit timestamp. Split: the
    /// split's timestamp. Freeze: the freeze timestamp. Otherwise zero.
    pub ts: Timestamp,
    /// Split: the two halves.
    pub split: Option<(RangeDescriptor, RangeDescriptor)>,
    /// Freeze: the frozen range. Merge, AbortMerge: the answering tablet's range.
    pub range: Option<RangeDescriptor>,
    /// Freeze: the log index of the freeze.
    pub index: u64,
}

impl OpOutcome {
    /// An outcome carrying only a timestamp.
    pub fn at(ts: Timestamp) -> OpOutcome {
        OpOutcome {
            ts,
            ..OpOutcome::default()
        }
    }

    /// An outcome carrying only a range.
    pub fn with_range(range: RangeDescriptor) -> OpOutcome {
        OpOutcome {
            range: Some(range),
            ..OpOutcome::default()
        }
    }
}

/// A transaction prepared (or staging pieces) at this replica.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The prepare timestamp (zero while staging).
    pub ts: Timestamp,
    pub anchor: Vec<u8>,
    pub write: pb::WriteCommand,
    /// The replica's tick count when it last heard of it (in memory only; for recovery).
    pub since_tick: u64,
    /// The bounds of its staged pieces, by number.
    pub staged: Vec<pb::StagedBounds>,
    /// Still receiving pieces: not prepared yet.
    pub staging: bool,
    /// Pieces `0..resolved` are applied (partial resolves).
    pub resolved: u32,
}

impl Prepared {
    /// A transaction whose first piece just arrived.
    pub(crate) fn staging(anchor: Vec<u8>, tick: u64) -> Prepared {
        Prepared {
            ts: Timestamp::ZERO,
            anchor,
            write: pb::WriteCommand::default(),
            since_tick: tick,
            staged: Vec::new(),
            staging: true,
            resolved: 0,
        }
    }

    /// From its stored record, as known at tick `tick`.
    pub(crate) fn from_record(p: pb::PreparedTxn, tick: u64) -> (Vec<u8>, Prepared) {
        let write = p.write.unwrap_or_default();
        let prepared = Prepared {
            ts: Timestamp::from_nanos(write.commit_ts),
            anchor: p.anchor_key,
            write,
            since_tick: tick,
            staged: p.staged,
            staging: p.staging,
            resolved: p.resolved,
        };
        (p.txn_id, prepared)
    }

    /// Its stored record.
    pub(crate) fn record(&self, txn_id: &[u8]) -> pb::PreparedTxn {
        pb::PreparedTxn {
            txn_id: txn_id.to_vec(),
            anchor_key: self.anchor.clone(),
            write: Some(self.write.clone()),
            staged: self.staged.clone(),
            staging: self.staging,
            resolved: self.resolved,
        }
    }
}

/// The bounds of what a staged piece writes and reads (see `pb::StagedBounds`).
pub(crate) fn bounds(w: &pb::WriteCommand) -> pb::StagedBounds {
    let mut b = pb::StagedBounds::default();
    for m in &w.mutations {
        if !b.writes || m.key < b.write_first {
            b.write_first = m.key.clone();
        }
        if !b.writes || m.key > b.write_last {
            b.write_last = m.key.clone();
        }
        b.writes = true;
    }
    let reads = w
        .read_spans
        .iter()
        .map(|s| (s.start.as_slice(), span_end(&s.start, &s.end)))
        .chain(
            w.conditions
                .iter()
                .map(|c| (c.key.as_slice(), successor(&c.key))),
        );
    for (start, end) in reads {
        if !b.reads || start < b.read_start.as_slice() {
            b.read_start = start.to_vec();
        }
        // An empty end is the end of the keyspace and stays so.
        let unbounded = b.reads && b.read_end.is_empty();
        if !unbounded && (!b.reads || end.is_empty() || end > b.read_end) {
            b.read_end = end;
        }
        b.reads = true;
    }
    b
}

/// The exclusive end of a span as stored (`end` empty: the single key `start`).
fn span_end(start: &[u8], end: &[u8]) -> Vec<u8> {
    if end.is_empty() {
        successor(start)
    } else {
        end.to_vec()
    }
}

fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

/// Whether `w` reads or writes a key inside what a staged piece with bounds `b` writes, or
/// writes a key inside what it reads.
fn overlaps_bounds(w: &pb::WriteCommand, b: &pb::StagedBounds) -> bool {
    let in_writes =
        |k: &[u8]| b.writes && k >= b.write_first.as_slice() && k <= b.write_last.as_slice();
    let in_reads = |k: &[u8]| {
        b.reads
            && k >= b.read_start.as_slice()
            && (b.read_end.is_empty() || k < b.read_end.as_slice())
    };
    if b.writes
        && w.read_spans.iter().any(|s| {
            let end = span_end(&s.start, &s.end);
            s.start.as_slice() <= b.write_last.as_slice()
                && end.as_slice() > b.write_first.as_slice()
        })
    {
        return true;
    }
    w.conditions.iter().any(|c| in_writes(&c.key))
        || w.mutations
            .iter()
            .any(|m| in_writes(&m.key) || in_reads(&m.key))
}

/// The transactions prepared at a replica, by transaction id.
#[derive(Debug, Default)]
pub(crate) struct PreparedSet {
    by_id: BTreeMap<Vec<u8>, Prepared>,
}

impl PreparedSet {
    pub(crate) fn get(&self, txn_id: &[u8]) -> Option<&Prepared> {
        self.by_id.get(txn_id)
    }

    pub(crate) fn insert(&mut self, txn_id: Vec<u8>, p: Prepared) {
        self.by_id.insert(txn_id, p);
    }

    pub(crate) fn remove(&mut self, txn_id: &[u8]) -> Option<Prepared> {
        self.by_id.remove(txn_id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get_mut(&mut self, txn_id: &[u8]) -> Option<&mut Prepared> {
        self.by_id.get_mut(txn_id)
    }

    /// The smallest prepare timestamp: no read at or above it may be served.
    pub(crate) fn min_ts(&self) -> Option<Timestamp> {
        self.by_id
            .values()
            .filter(|p| !p.staging)
            .map(|p| p.ts)
            .min()
    }

    /// Whether a transaction prepared at or below `ts` writes a key `reads` covers (spans as in
    /// [`crate::Span`], an empty end reaching the end of the keyspace): a read of those keys
    /// at `ts` waits until it is resolved, and a read of other keys need not, since resolving
    /// it changes nothing else.
    pub(crate) fn holds_back(&self, ts: Timestamp, reads: &[crate::Span]) -> bool {
        let covered = |k: &[u8]| {
            reads.iter().any(|s| match &s.end {
                None => s.start == k,
                Some(end) => k >= s.start.as_slice() && (end.is_empty() || k < end.as_slice()),
            })
        };
        let meets = |first: &[u8], last: &[u8]| {
            reads.iter().any(|s| match &s.end {
                None => first <= s.start.as_slice() && s.start.as_slice() <= last,
                Some(end) => {
                    s.start.as_slice() <= last && (end.is_empty() || end.as_slice() > first)
                }
            })
        };
        self.by_id
            .values()
            .filter(|p| !p.staging && p.ts <= ts)
            .any(|p| {
                p.write.mutations.iter().any(|m| covered(&m.key))
                    || p.staged
                        .iter()
                        .any(|b| b.writes && meets(&b.write_first, &b.write_last))
            })
    }

    /// Transactions prepared at or before tick `tick`, or still staging at or before tick
    /// `staging_tick`: (id, anchor).
    pub(crate) fn older_than(&self, tick: u64, staging_tick: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.by_id
            .iter()
            .filter(|(_, p)| p.since_tick <= if p.staging { staging_tick } else { tick })
            .map(|(id, p)| (id.clone(), p.anchor.clone()))
            .collect()
    }

    /// Whether `w` conflicts with a prepared or staging transaction other than `except`: it
    /// reads what one writes, or writes what one reads or writes.
    pub(crate) fn conflicts(&self, w: &pb::WriteCommand, except: Option<&[u8]>) -> bool {
        self.by_id
            .iter()
            .filter(|(id, _)| except != Some(id.as_slice()))
            .any(|(_, p)| {
                overlaps(w, &p.write)
                    || overlaps(&p.write, w)
                    || p.staged.iter().any(|b| overlaps_bounds(w, b))
            })
    }
}

/// Whether `a` reads or writes a key `b` writes, or writes a key `b` reads.
fn overlaps(a: &pb::WriteCommand, b: &pb::WriteCommand) -> bool {
    let b_writes: BTreeSet<&[u8]> = b.mutations.iter().map(|m| m.key.as_slice()).collect();
    if b_writes.is_empty() {
        return false;
    }
    let hits_writes = |start: &[u8], end: &[u8]| {
        if end.is_empty() {
            b_writes.contains(start)
        } else {
            b_writes.range(start..end).next().is_some()
        }
    };
    a.read_spans.iter().any(|s| hits_writes(&s.start, &s.end))
        || a.conditions.iter().any(|c| hits_writes(&c.key, &[]))
        || a.mutations.iter().any(|m| hits_writes(&m.key, &[]))
}

/// Whether every key `w` touches lies in `desc`.
pub(crate) fn write_in_range(desc: &RangeDescriptor, w: &pb::WriteCommand) -> bool {
    w.mutations.iter().all(|m| range::contains(desc, &m.key))
        && w.conditions.iter().all(|c| range::contains(desc, &c.key))
        && w.read_spans.iter().all(|s| {
            if s.end.is_empty() {
                range::contains(desc, &s.start)
            } else {
                range::contains_span(desc, &s.start, &s.end)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(reads: &[(&str, &str)], writes: &[&str]) -> pb::WriteCommand {
        pb::WriteCommand {
            read_spans: reads
                .iter()
                .map(|(s, e)| pb::Span {
                    start: s.as_bytes().to_vec(),
                    end: e.as_bytes().to_vec(),
                })
                .collect(),
            mutations: writes
                .iter()
                .map(|k| pb::Mutation {
                    kind: pb::mutation::Kind::Put as i32,
                    key: k.as_bytes().to_vec(),
                    value: vec![],
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn prepared_transactions_block_what_overlaps_them() {
        let mut set = PreparedSet::default();
        set.insert(
            b"t1".to_vec(),
            Prepared {
                ts: Timestamp::from_nanos(10),
                anchor: b"a".to_vec(),
                write: cmd(&[("r", "")], &["w"]),
                since_tick: 0,
                staged: Vec::new(),
                staging: false,
                resolved: 0,
            },
        );
        // Reads of its write, writes of its read or write conflict.
        assert!(set.conflicts(&cmd(&[("w", "")], &[]), None));
        assert!(set.conflicts(&cmd(&[("a", "z")], &[]), None));
        assert!(set.conflicts(&cmd(&[], &["r"]), None));
        assert!(set.conflicts(&cmd(&[], &["w"]), None));
        // Reading what it reads, or touching other keys, does not.
        assert!(!set.conflicts(&cmd(&[("r", "")], &["x"]), None));
        assert!(!set.conflicts(&cmd(&[("x", "y")], &[]), None));
        // Its own retry does not conflict with itself.
        assert!(!set.conflicts(&cmd(&[], &["w"]), Some(b"t1")));
        assert_eq!(set.older_than(5, 5).len(), 1);
    }

    #[test]
    fn staged_pieces_block_what_falls_within_their_bounds() {
        let mut set = PreparedSet::default();
        let mut big = Prepared::staging(b"a".to_vec(), 3);
        big.staged
            .push(bounds(&cmd(&[("p", ""), ("q", "r")], &["c", "f", "d"])));
        set.insert(b"big".to_vec(), big);
        // Writes and reads between its first and last written key conflict, written or not.
        assert!(set.conflicts(&cmd(&[], &["e"]), None));
        assert!(set.conflicts(&cmd(&[("a", "c\0")], &[]), None));
        assert!(set.conflicts(&cmd(&[("f", "")], &[]), None));
        // Writes of what it read, up to the end of its last span.
        assert!(set.conflicts(&cmd(&[], &["p"]), None));
        assert!(set.conflicts(&cmd(&[], &["qq"]), None));
        // Outside its bounds, or reads of what it read, do not.
        assert!(!set.conflicts(&cmd(&[], &["b", "g", "r"]), None));
        assert!(!set.conflicts(&cmd(&[("p", "r")], &[]), None));
        assert!(!set.conflicts(&cmd(&[], &["e"]), Some(b"big")));
        // A staging transaction holds back no read, and waits longer for recovery.
        assert_eq!(set.min_ts(), None);
        assert!(set.older_than(10, 2).is_empty());
        assert_eq!(set.older_than(10, 3).len(), 1);
    }

    #[test]
    fn a_prepared_transaction_holds_back_reads_of_what_it_writes_at_or_above_its_timestamp() {
        let span = |start: &str, end: Option<&str>| crate::Span {
            start: start.as_bytes().to_vec(),
            end: end.map(|e| e.as_bytes().to_vec()),
        };
        let mut set = PreparedSet::default();
        let mut prepared = Prepared::staging(b"a".to_vec(), 0);
        prepared.staging = false;
        prepared.ts = Timestamp::from_nanos(10);
        prepared.write = cmd(&[("r", "")], &["w"]);
        prepared.staged.push(bounds(&cmd(&[], &["c", "f"])));
        set.insert(b"t".to_vec(), prepared);
        let at = |n| Timestamp::from_nanos(n);
        // Its written key, a range holding it, an unbounded range, a staged piece's bounds.
        assert!(set.holds_back(at(10), &[span("w", None)]));
        assert!(set.holds_back(at(11), &[span("x", None), span("v", Some("wa"))]));
        assert!(set.holds_back(at(10), &[span("s", Some(""))]));
        assert!(set.holds_back(at(10), &[span("d", None)]));
        assert!(set.holds_back(at(10), &[span("a", Some("c\0"))]));
        // Below its timestamp, what it only read, and keys beside what it writes are free.
        assert!(!set.holds_back(at(9), &[span("w", None)]));
        assert!(!set.holds_back(at(10), &[span("r", None)]));
        assert!(!set.holds_back(at(10), &[span("x", None), span("g", Some("w"))]));
        assert!(!set.holds_back(at(10), &[span("a", Some("c"))]));
        // A transaction still staging holds back nothing.
        set.get_mut(b"t").unwrap().staging = true;
        assert!(!set.holds_back(at(10), &[span("w", None)]));
    }

    #[test]
    fn a_write_is_in_range_only_if_every_key_and_span_is() {
        let desc = RangeDescriptor {
            tablet_id: 2,
            start_key: b"b".to_vec(),
            end_key: b"d".to_vec(),
            generation: 1,
            replicas: vec![1],
            ..Default::default()
        };
        assert!(write_in_range(&desc, &cmd(&[("b", "d")], &["c"])));
        assert!(!write_in_range(&desc, &cmd(&[("b", "e")], &["c"])));
        assert!(!write_in_range(&desc, &cmd(&[], &["d"])));
        assert!(!write_in_range(&desc, &cmd(&[("a", "")], &[])));
    }
}
