//! Applying committed commands to the MVCC engine: pure steps over an engine snapshot and a
//! write buffer, unit-tested without Raft.
//!
//! All commands of one Raft apply batch go into ONE atomic engine write, together with the
//! applied index. Later commands of the batch must see the effects of earlier ones when their
//! conditions and read spans are validated, so the batch keeps an overlay of the newest version
//! it wrote per key.
//!
//! Validation is deterministic: every replica applies the same log prefix to the same state, so
//! every replica accepts or rejects a command identically.

use std::collections::BTreeMap;
use std::ops::Bound;

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use meridian_storage::{Durability, Mvcc, MvccBatch};

use crate::command::WriteView;
use crate::{ConditionFailure, Error, Result};

/// The newest version this batch wrote for a key: its timestamp and whether it is live.
type Version = (Timestamp, bool);

/// A buffer of applied commands not yet written to the engine.
pub(crate) struct ApplyBatch<'a> {
    mvcc: &'a Mvcc,
    batch: MvccBatch,
    overlay: BTreeMap<Vec<u8>, Version>,
    /// Largest commit timestamp applied in this batch.
    pub max_ts: Option<Timestamp>,
    /// Bytes of keys and values put by this batch.
    pub bytes: u64,
}

impl<'a> ApplyBatch<'a> {
    pub(crate) fn new(mvcc: &'a Mvcc) -> Self {
        ApplyBatch {
            mvcc,
            batch: mvcc.batch(),
            overlay: BTreeMap::new(),
            max_ts: None,
            bytes: 0,
        }
    }

    /// The newest version of `key`, including this batch's writes.
    fn newest(&self, key: &[u8]) -> Result<Option<Version>> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(Some(*v));
        }
        Ok(self.mvcc.newest_version(key)?)
    }

    /// The largest version timestamp in `[start, end)` (`end` empty: unbounded), including this
    /// batch's writes.
    fn max_version_ts(&self, start: &[u8], end: &[u8]) -> Result<Option<Timestamp>> {
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        let overlay_max = self
            .overlay
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(_, (ts, _))| *ts)
            .max();
        let engine_max = self.mvcc.max_version_ts(start, end)?;
        Ok(overlay_max.max(engine_max))
    }

    /// Validates `write` against the current state and, if it passes, buffers its mutations.
    /// A rejected write leaves the batch unchanged and returns why.
    /// Applies a validated write at its commit timestamp, or rejects it without effect.
    pub(crate) fn apply_write(&mut self, write: &pb::WriteCommand) -> Result<Timestamp> {
        self.validate(write)?;
        let ts = Timestamp::from_nanos(write.commit_ts);
        self.apply_mutations(&write.mutations, ts)?;
        Ok(ts)
    }

    /// Checks a write's conditions and that nothing it read at its `read_ts` changed since.
    pub(crate) fn validate(&self, write: &pb::WriteCommand) -> Result<()> {
        let view = WriteView::new(write);
        for cond in &write.conditions {
            let live = self.newest(&cond.key)?.is_some_and(|(_, live)| live);
            let failure = match pb::condition::Kind::try_from(cond.kind) {
                Ok(pb::condition::Kind::NotExists) if live => Some(ConditionFailure::Exists),
                Ok(pb::condition::Kind::Exists) if !live => Some(ConditionFailure::Missing),
                Ok(_) => None,
                Err(_) => {
                    return Err(Error::Internal(format!(
                        "unknown condition kind {}",
                        cond.kind
                    )));
                }
            };
            if let Some(kind) = failure {
                return Err(Error::ConditionFailed {
                    key: cond.key.clone(),
                    kind,
                });
            }
        }
        if let Some(read_ts) = view.read_ts {
            for span in view.spans() {
                let newest = match &span.end {
                    None => self.newest(&span.start)?.map(|(ts, _)| ts),
                    Some(end) => self.max_version_ts(&span.start, end)?,
                };
                if newest.is_some_and(|ts| ts > read_ts) {
                    return Err(Error::WriteConflict { read_ts });
                }
            }
        }
        Ok(())
    }

    /// Writes `mutations` at `ts` (already validated); returns the bytes of keys and values
    /// put.
    pub(crate) fn apply_mutations(
        &mut self,
        mutations: &[pb::Mutation],
        ts: Timestamp,
    ) -> Result<u64> {
        let mut bytes = 0;
        for m in mutations {
            match pb::mutation::Kind::try_from(m.kind) {
                Ok(pb::mutation::Kind::Put) => {
                    self.batch.put(&m.key, ts, &m.value);
                    self.overlay.insert(m.key.clone(), (ts, true));
                    bytes += (m.key.len() + m.value.len()) as u64;
                }
                Ok(pb::mutation::Kind::Delete) => {
                    self.batch.delete(&m.key, ts);
                    self.overlay.insert(m.key.clone(), (ts, false));
                }
                Err(_) => return Err(Error::Internal(format!("unknown mutation kind {}", m.kind))),
            }
        }
        self.max_ts = self.max_ts.max(Some(ts));
        self.bytes += bytes;
        Ok(bytes)
    }

    /// The engine batch, for node-local records written with the data.
    pub(crate) fn write_batch(&mut self) -> &mut meridian_storage::WriteBatch {
        self.batch.write_batch()
    }

    pub(crate) fn commit(
        self,
        group: u64,
        applied_index: u64,
        durability: Durability,
    ) -> Result<()> {
        let mut batch = self.batch;
        batch.set_applied_index(group, applied_index);
        batch.commit(durability)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meridian_storage::MemEngine;

    use super::*;
    use crate::command::{decode, encode_write};
    use crate::kv::{Condition, Mutation, Span, WriteRequest};

    fn write_cmd(ts: u64, req: WriteRequest) -> pb::WriteCommand {
        match decode(&encode_write(1, Timestamp::from_nanos(ts), &req))
            .unwrap()
            .command
        {
            Some(pb::tablet_command::Command::Write(w)) => w,
            _ => unreachable!(),
        }
    }

    fn put(k: &str, v: &str) -> Mutation {
        Mutation::Put {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn mvcc() -> Mvcc {
        Mvcc::new(Arc::new(MemEngine::new()))
    }

    #[test]
    fn later_commands_in_a_batch_see_earlier_ones() {
        let mvcc = mvcc();
        let mut batch = ApplyBatch::new(&mvcc);
        let insert = |ts| {
            write_cmd(
                ts,
                WriteRequest {
                    conditions: vec![Condition::NotExists(b"k".to_vec())],
                    mutations: vec![put("k", "v")],
                    ..Default::default()
                },
            )
        };
        batch.apply_write(&insert(10)).unwrap();
        let err = batch.apply_write(&insert(11)).unwrap_err();
        assert!(matches!(
            err,
            Error::ConditionFailed {
                kind: ConditionFailure::Exists,
                ..
            }
        ));
        batch.commit(1, 5, Durability::NoSync).unwrap();
        assert_eq!(
            mvcc.get(b"k", Timestamp::from_nanos(10)).unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(mvcc.get(b"k", Timestamp::from_nanos(9)).unwrap(), None);
        assert_eq!(mvcc.applied_index(1).unwrap(), 5);
        // Survives into the next batch through the engine.
        let mut batch = ApplyBatch::new(&mvcc);
        assert!(batch.apply_write(&insert(12)).is_err());
    }

    #[test]
    fn exists_condition_and_tombstones() {
        let mvcc = mvcc();
        mvcc.put(b"k", Timestamp::from_nanos(1), b"v").unwrap();
        mvcc.delete(b"k", Timestamp::from_nanos(2)).unwrap();
        let mut batch = ApplyBatch::new(&mvcc);
        let update = write_cmd(
            5,
            WriteRequest {
                conditions: vec![Condition::Exists(b"k".to_vec())],
                mutations: vec![put("k", "w")],
                ..Default::default()
            },
        );
        let err = batch.apply_write(&update).unwrap_err();
        assert!(matches!(
            err,
            Error::ConditionFailed {
                kind: ConditionFailure::Missing,
                ..
            }
        ));
    }

    #[test]
    fn read_spans_conflict_with_newer_versions() {
        let mvcc = mvcc();
        mvcc.put(b"b", Timestamp::from_nanos(20), b"x").unwrap();
        let mut batch = ApplyBatch::new(&mvcc);
        let read_at = |read_ts, span: Span| {
            write_cmd(
                30,
                WriteRequest {
                    read_ts: Some(Timestamp::from_nanos(read_ts)),
                    read_spans: vec![span],
                    mutations: vec![put("z", "1")],
                    ..Default::default()
                },
            )
        };
        let range = || Span {
            start: b"a".to_vec(),
            end: Some(b"c".to_vec()),
        };
        let point = || Span {
            start: b"b".to_vec(),
            end: None,
        };
        let other = || Span {
            start: b"c".to_vec(),
            end: Some(b"d".to_vec()),
        };
        assert!(matches!(
            batch.apply_write(&read_at(10, range())),
            Err(Error::WriteConflict { .. })
        ));
        assert!(matches!(
            batch.apply_write(&read_at(10, point())),
            Err(Error::WriteConflict { .. })
        ));
        batch.apply_write(&read_at(20, range())).unwrap();
        batch.apply_write(&read_at(10, other())).unwrap();
        // "z" was written at 30 by this batch: a reader of "z" at 25 now conflicts.
        let z = || Span {
            start: b"y".to_vec(),
            end: None,
        };
        batch.apply_write(&read_at(25, z())).unwrap();
        let zr = Span {
            start: b"y".to_vec(),
            end: Some(b"zz".to_vec()),
        };
        assert!(matches!(
            batch.apply_write(&read_at(25, zr)),
            Err(Error::WriteConflict { .. })
        ));
    }
}
