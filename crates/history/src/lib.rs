//! Histories of transactions as clients observed them, and checkers for the invariants of
//! DESIGN.md section 4, used by tests (and later by the simulation):
//!
//! * [`History::check_external_consistency`]: if T1 was acknowledged before T2 began (in real
//!   time), T1's commit timestamp is smaller than T2's (invariant 1).
//! * [`History::check_snapshot_reads`]: a read at timestamp `t` sees exactly the writes with
//!   commit timestamp `<= t`: the value of each key it read is the one the committed write
//!   with the largest timestamp `<= t` left (invariant 1, second half; with single-key writes
//!   this makes a register workload linearizable in timestamp order).
//! * [`History::check_final_state`]: no acknowledged write is lost: the final value of each key
//!   is the one the committed write with the largest timestamp left (invariant 3).
//! * [`check_bank_totals`]: every snapshot of a bank sums to the same total (invariant 2).
//!
//! Times are whatever monotonic clock the recorder uses, in nanoseconds; timestamps are the
//! database's commit and read timestamps, in nanoseconds. Operations whose outcome the client
//! does not know (an ambiguous commit) may or may not have happened: the checkers accept
//! either.

use std::collections::BTreeMap;

/// A key of the recorded workload.
pub type Key = String;
/// A value of the recorded workload (values written are unique per key, so a read names the
/// write it saw).
pub type Value = i64;

/// How an operation ended for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged as committed.
    Committed,
    /// Refused (an error that guarantees nothing was written).
    Aborted,
    /// Unknown: the client lost the answer of a commit.
    Unknown,
}

/// One transaction (or statement) as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client that ran it (for reports).
    pub client: usize,
    /// When the client sent it.
    pub invoked: u64,
    /// When the client got the answer.
    pub completed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The commit timestamp of a committed write.
    pub commit_ts: Option<u64>,
    /// The timestamp it read at, for reads.
    pub read_ts: Option<u64>,
    /// What it read: each key and the value it saw (`None`: absent).
    pub reads: Vec<(Key, Option<Value>)>,
    /// What it wrote.
    pub writes: Vec<(Key, Value)>,
}

/// A broken invariant, with the operations that show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// T1 completed before T2 was invoked, yet T2's timestamp is not larger.
    #[error(
        "external consistency: op {first} (client {first_client}) was acknowledged at {first_done} \
         with timestamp {first_ts}, before op {second} (client {second_client}) began at \
         {second_start}, which got timestamp {second_ts}"
    )]
    ExternalConsistency {
        first: usize,
        first_client: usize,
        first_done: u64,
        first_ts: u64,
        second: usize,
        second_client: usize,
        second_start: u64,
        second_ts: u64,
    },
    /// A read at `read_ts` saw a value other than the latest committed one at that time.
    #[error(
        "snapshot read: op {op} read {key:?} = {seen:?} at {read_ts}, but the writes committed \
         at or before it leave {expected:?}"
    )]
    SnapshotRead {
        op: usize,
        key: Key,
        read_ts: u64,
        seen: Option<Value>,
        expected: Option<Value>,
    },
    /// The final state lacks the latest committed write of a key.
    #[error(
        "lost write: {key:?} is finally {found:?}, but the last committed write left {expected:?}"
    )]
    LostWrite {
        key: Key,
        found: Option<Value>,
        expected: Option<Value>,
    },
    /// A snapshot of the bank summed to a different total.
    #[error("bank: snapshot {snapshot} sums to {found}, not {expected}")]
    BankTotal {
        snapshot: usize,
        found: i64,
        expected: i64,
    },
    /// The history itself is malformed (a committed write without a timestamp, ...).
    #[error("malformed history: {0}")]
    Malformed(String),
}

/// Per key: the committed writes as `(commit_ts, value)` sorted by timestamp, and the values of
/// writes whose outcome is unknown.
type Writes<'h> = (
    BTreeMap<&'h str, Vec<(u64, Value)>>,
    BTreeMap<&'h str, Vec<Value>>,
);

/// A recorded history.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every operation, in any order.
    pub ops: Vec<Op>,
}

/// The timestamp order of a transaction: its commit timestamp if it wrote, else its read one.
fn ts_of(op: &Op) -> Option<u64> {
    op.commit_ts.or(op.read_ts)
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records an operation.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Committed operations with a timestamp, with their indexes.
    fn committed(&self) -> Vec<(usize, &Op)> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.outcome == Outcome::Committed && ts_of(o).is_some())
            .collect()
    }

    /// Invariant 1: for committed T1, T2 with `completed(T1) < invoked(T2)`, `ts(T1) <
    /// ts(T2)` (a write's timestamp is its commit timestamp, a read-only operation's its read
    /// timestamp). A read must also see a write acknowledged before it began, so a read may
    /// not have a timestamp below such a write's.
    pub fn check_external_consistency(&self) -> Result<(), Violation> {
        let ops = self.committed();
        let mut by_completion: Vec<&(usize, &Op)> = ops.iter().collect();
        by_completion.sort_by_key(|(_, o)| o.completed);
        let mut by_invocation: Vec<&(usize, &Op)> = ops.iter().collect();
        by_invocation.sort_by_key(|(_, o)| o.invoked);
        // Sweep: the largest timestamp among operations completed before each invocation.
        let mut done = 0;
        let mut max: Option<(u64, usize, &Op)> = None;
        for (i2, o2) in by_invocation {
            while done < by_completion.len() && by_completion[done].1.completed < o2.invoked {
                let (i1, o1) = *by_completion[done];
                let t1 = ts_of(o1).unwrap_or(0);
                if max.is_none_or(|(t, _, _)| t1 > t) {
                    max = Some((t1, i1, o1));
                }
                done += 1;
            }
            let t2 = ts_of(o2).unwrap_or(0);
            if let Some((t1, i1, o1)) = max {
                // A write must come strictly after; a read may share the timestamp of what it
                // follows (it sees writes at its own timestamp).
                let ok = if o2.commit_ts.is_some() {
                    t1 < t2
                } else {
                    t1 <= t2
                };
                if !ok {
                    return Err(Violation::ExternalConsistency {
                        first: i1,
                        first_client: o1.client,
                        first_done: o1.completed,
                        first_ts: t1,
                        second: *i2,
                        second_client: o2.client,
                        second_start: o2.invoked,
                        second_ts: t2,
                    });
                }
            }
        }
        Ok(())
    }

    /// The committed writes of each key as `(commit_ts, value)`, sorted by timestamp, and the
    /// values of writes whose outcome is unknown.
    fn writes(&self) -> Result<Writes<'_>, Violation> {
        let mut committed: BTreeMap<&str, Vec<(u64, Value)>> = BTreeMap::new();
        let mut unknown: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            for (k, v) in &op.writes {
                match op.outcome {
                    Outcome::Committed => {
                        let ts = op.commit_ts.ok_or_else(|| {
                            Violation::Malformed(format!(
                                "op {i} committed writes without a commit timestamp"
                            ))
                        })?;
                        committed.entry(k).or_default().push((ts, *v));
                    }
                    Outcome::Unknown => unknown.entry(k).or_default().push(*v),
                    Outcome::Aborted => {}
                }
            }
        }
        for w in committed.values_mut() {
            w.sort();
        }
        Ok((committed, unknown))
    }

    /// Invariant 1, reads: every committed read at `read_ts` saw, for each key, the value of
    /// the committed write with the largest timestamp `<= read_ts` (or `initial` of the key
    /// when there is none), or a write whose outcome is unknown.
    pub fn check_snapshot_reads(&self, initial: &BTreeMap<Key, Value>) -> Result<(), Violation> {
        let (committed, unknown) = self.writes()?;
        for (i, op) in self.ops.iter().enumerate() {
            let (Outcome::Committed, Some(read_ts)) = (op.outcome, op.read_ts) else {
                continue;
            };
            for (key, seen) in &op.reads {
                let expected = committed
                    .get(key.as_str())
                    .and_then(|w| w.iter().rev().find(|(ts, _)| *ts <= read_ts))
                    .map(|(_, v)| *v)
                    .or_else(|| initial.get(key).copied());
                let maybe =
                    seen.is_some_and(|s| unknown.get(key.as_str()).is_some_and(|u| u.contains(&s)));
                if *seen != expected && !maybe {
                    return Err(Violation::SnapshotRead {
                        op: i,
                        key: key.clone(),
                        read_ts,
                        seen: *seen,
                        expected,
                    });
                }
            }
        }
        Ok(())
    }

    /// Invariant 3: the final value of each key written is the value of its committed write
    /// with the largest timestamp (or a write whose outcome is unknown).
    pub fn check_final_state(&self, final_state: &BTreeMap<Key, Value>) -> Result<(), Violation> {
        let (committed, unknown) = self.writes()?;
        for (key, writes) in &committed {
            let expected = writes.last().map(|(_, v)| *v);
            let found = final_state.get(*key).copied();
            let maybe = found.is_some_and(|f| unknown.get(key).is_some_and(|u| u.contains(&f)));
            if found != expected && !maybe {
                return Err(Violation::LostWrite {
                    key: (*key).to_string(),
                    found,
                    expected,
                });
            }
        }
        Ok(())
    }
}

/// Invariant 2 for a bank workload: every snapshot (a consistent read of all the accounts)
/// sums to `total`.
pub fn check_bank_totals(total: i64, snapshots: &[i64]) -> Result<(), Violation> {
    match snapshots.iter().position(|s| *s != total) {
        Some(i) => Err(Violation::BankTotal {
            snapshot: i,
            found: snapshots[i],
            expected: total,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
