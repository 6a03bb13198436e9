//! Range changes at a replica: splits, and the steps of a merge (`merge.rs` has the
//! protocol): the right tablet's freeze (and what a frozen tablet refuses) and the left
//! tablet's takeover. Every check
//! that decides whether a change applies is deterministic, so every replica decides alike; the
//! one node-local step of a takeover (the right tablet's replica on the same node) is
//! guaranteed by the merge's driver and checked here.

use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;

use super::{Applied, Driver, Msg, Replica};
use crate::apply::ApplyBatch;
use crate::local;
use crate::merge::Freeze;
use crate::range::{self, RangeDescriptor};
use crate::txn::{OpOutcome, TabletOp};
use crate::{Error, Result};

impl Driver {
    /// Splits the range (every replica at the same log index): this replica keeps the lower
    /// half and the upper half becomes a new tablet, started by the hooks once the descriptors
    /// are written. Runs in a batch of its own.
    pub(super) fn apply_split(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        sp: &pb::SplitCommand,
    ) -> Result<Applied> {
        let desc = self.shared.descriptor();
        let key = sp.split_key.as_slice();
        let inside = key > desc.start_key.as_slice()
            && (desc.end_key.is_empty() || key < desc.end_key.as_slice());
        if !inside {
            // The asker's cached range is stale (the key moved to a tablet split from this
            // one): it looks the key up again.
            return Ok(Applied::Done(Err(Error::RangeMismatch {
                tablet: desc.tablet_id,
                range: Box::new(desc),
            })));
        }
        if let Some(e) = self.shared.frozen_error() {
            return Ok(Applied::Done(Err(e)));
        }
        if self.joint() {
            return Ok(Applied::Done(Err(Error::Unavailable {
                tablet: desc.tablet_id,
                reason: "a membership change is in progress; split later".into(),
            })));
        }
        if self.has_prepared() {
            // Refused, not unavailable: a router would retry an unavailable split, proposing
            // one entry after another to a tablet whose traffic keeps some prepared.
            return Ok(Applied::Done(Err(Error::Refused {
                tablet: desc.tablet_id,
                reason: SPLIT_WHILE_PREPARED.into(),
            })));
        }
        let generation = desc.generation + 1;
        let left = RangeDescriptor {
            end_key: key.to_vec(),
            generation,
            ..desc.clone()
        };
        let right = RangeDescriptor {
            tablet_id: sp.new_tablet_id,
            start_key: key.to_vec(),
            end_key: desc.end_key.clone(),
            generation,
            replicas: desc.replicas.clone(),
            learners: desc.learners.clone(),
            sticky: sp.sticky,
        };
        let wb = batch.write_batch();
        local::put_descriptor(wb, &left);
        local::put_descriptor(wb, &right);
        // Decisions follow their anchor key.
        let engine = self.shared.mvcc.engine().clone();
        for d in local::load_decisions(engine.as_ref(), desc.tablet_id)? {
            if d.anchor_key.as_slice() >= key {
                local::delete_decision(wb, desc.tablet_id, &d.txn_id);
                local::put_decision(wb, right.tablet_id, &d);
            }
        }
        // Each half starts with half of the estimate.
        let half = self.shared.approx_bytes.load(Ordering::Relaxed) / 2;
        self.shared.approx_bytes.store(half, Ordering::Relaxed);
        local::put_size(wb, left.tablet_id, half);
        local::put_size(wb, right.tablet_id, half);
        *self.shared.desc.write().unwrap_or_else(|e| e.into_inner()) = left.clone();
        *self
            .shared
            .split_sibling
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(right.clone());
        self.shared.meta_dirty.store(true, Ordering::Release);
        // Locks on keys that moved would never be released here (their holders' commits and
        // releases go to the new tablet): drop them all, so waiters look again and find where
        // their keys went.
        self.shared.locks.clear();
        let split_ts = Timestamp::from_nanos(sp.split_ts);
        self.applied_max_ts = self.applied_max_ts.max(split_ts);
        tracing::info!(tablet = desc.tablet_id, new_tablet = right.tablet_id,
            key = %range::pretty_key(key), "tablet split");
        Ok(Applied::Split {
            left,
            right,
            split_ts,
        })
    }

    /// Whether the group is in a joint configuration (a membership change is half done).
    fn joint(&self) -> bool {
        !self
            .raw
            .raft
            .prs()
            .conf()
            .to_conf_state()
            .voters_outgoing
            .is_empty()
    }

    fn has_prepared(&self) -> bool {
        !self
            .shared
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Freezes the tablet for a merge into its left neighbour (the entry at `index`): from now
    /// on it applies no change and serves no read above the freeze timestamp. Asked again for
    /// the same merge, answers the first freeze.
    pub(super) fn apply_freeze(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        f: &pb::FreezeCommand,
        index: u64,
    ) -> Result<OpOutcome> {
        // Whatever the outcome, the leader is no longer on its way to a freeze: the tablet is
        // frozen now, or the freeze was refused.
        self.freezing = false;
        let desc = self.shared.descriptor();
        let tablet = desc.tablet_id;
        let left = f.left.clone().unwrap_or_default();
        if let Some(frozen) = self.shared.frozen() {
            return if frozen.is_for(&left) {
                Ok(frozen.outcome(desc))
            } else {
                Err(Error::RangeMerging { tablet })
            };
        }
        let refused = |reason: &str| Error::Refused {
            tablet,
            reason: reason.into(),
        };
        if desc.generation != f.right_generation {
            return Err(refused("the tablet changed since the merge was planned"));
        }
        if left.end_key.is_empty() || left.end_key != desc.start_key {
            return Err(refused("the tablet does not start where the left one ends"));
        }
        if !crate::merge::same_replicas(&left, &desc) {
            return Err(refused("the tablets' replicas differ"));
        }
        if self.joint() {
            return Err(refused("a membership change is in progress"));
        }
        if self.has_prepared() {
            return Err(refused("transactions are prepared on the tablet"));
        }
        let freeze = Freeze {
            left,
            ts: Timestamp::from_nanos(f.freeze_ts),
            index,
            since_tick: self.ticks,
        };
        local::put_freeze(batch.write_batch(), tablet, &freeze.record());
        // Every write at or below the freeze timestamp precedes the freeze in the log and is
        // applied here; none follows it. So the snapshot at the freeze timestamp is final.
        self.shared
            .safe_ts
            .fetch_max(freeze.ts.as_nanos(), Ordering::AcqRel);
        self.applied_max_ts = self.applied_max_ts.max(freeze.ts);
        // The locks guarded writes that will not happen here any more: waiters look again.
        self.shared.locks.clear();
        tracing::info!(tablet, left = freeze.left.tablet_id, freeze_ts = %freeze.ts,
            "tablet frozen for a merge into its left neighbour");
        let outcome = freeze.outcome(desc);
        *self.shared.freeze.lock().unwrap_or_else(|e| e.into_inner()) = Some(freeze);
        Ok(outcome)
    }

    /// Lifts a freeze for a merge into `left_tablet_id`, which its log refused.
    pub(super) fn apply_unfreeze(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        u: &pb::UnfreezeCommand,
    ) -> OpOutcome {
        let tablet = self.shared.tablet_id;
        let mut slot = self.shared.freeze.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|f| f.left.tablet_id == u.left_tablet_id)
        {
            *slot = None;
            local::delete_freeze(batch.write_batch(), tablet);
            tracing::info!(
                tablet,
                left = u.left_tablet_id,
                "merge called off; tablet unfrozen"
            );
        }
        OpOutcome::default()
    }

    /// Takes over the frozen right neighbour: the range grows over it, and its records (its
    /// data is this node's already, under the same keys) move here. Runs in a batch of its
    /// own, which must be durable before the right tablet's replica retires.
    pub(super) fn apply_merge(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        m: &pb::MergeCommand,
    ) -> Result<Applied> {
        let desc = self.shared.descriptor();
        let right = m.right.clone().unwrap_or_default();
        if let Err(e) = self.check_merge(&desc, &right, m.left_generation) {
            return Ok(Applied::Done(Err(e)));
        }
        self.check_local_right(&right, m.freeze_index)?;
        let engine = self.shared.mvcc.engine().clone();
        let merged = RangeDescriptor {
            end_key: right.end_key.clone(),
            // Above both, so that the merged range's meta record replaces both of theirs.
            generation: desc.generation.max(right.generation) + 1,
            ..desc.clone()
        };
        let wb = batch.write_batch();
        local::put_descriptor(wb, &merged);
        // Decisions follow their anchor key.
        for d in local::load_decisions(engine.as_ref(), right.tablet_id)? {
            local::delete_decision(wb, right.tablet_id, &d.txn_id);
            local::put_decision(wb, merged.tablet_id, &d);
        }
        let bytes = self.shared.approx_bytes.load(Ordering::Relaxed)
            + local::load_size(engine.as_ref(), right.tablet_id)?;
        self.shared.approx_bytes.store(bytes, Ordering::Relaxed);
        local::put_size(wb, merged.tablet_id, bytes);
        *self.shared.desc.write().unwrap_or_else(|e| e.into_inner()) = merged.clone();
        *self
            .shared
            .split_sibling
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.shared.meta_dirty.store(true, Ordering::Release);
        // No timestamp this tablet assigns from now on falls at or below one the right tablet
        // assigned or served (the leader raised its oracle when it proposed the merge already;
        // this covers a leader elected since).
        let freeze_ts = Timestamp::from_nanos(m.freeze_ts);
        self.oracle.observe(freeze_ts);
        self.applied_max_ts = self.applied_max_ts.max(freeze_ts);
        tracing::info!(tablet = merged.tablet_id, right = right.tablet_id,
            end = %range::pretty_key(&merged.end_key), "tablet merged with its right neighbour");
        Ok(Applied::Merge {
            merged,
            right: right.tablet_id,
        })
    }

    /// The deterministic conditions of a takeover: this tablet is not frozen itself, has the
    /// generation the merge was planned on, ends where `right` starts, and has the same
    /// replicas, with no membership change under way.
    fn check_merge(
        &self,
        desc: &RangeDescriptor,
        right: &RangeDescriptor,
        left_generation: u64,
    ) -> Result<()> {
        let tablet = desc.tablet_id;
        if let Some(e) = self.shared.frozen_error() {
            return Err(e);
        }
        let refused = |reason: &str| {
            Err(Error::Refused {
                tablet,
                reason: reason.into(),
            })
        };
        if desc.generation != left_generation {
            return refused("the tablet changed since the merge was planned");
        }
        if desc.end_key.is_empty() || desc.end_key != right.start_key {
            return refused("the right tablet does not start where this one ends");
        }
        if !crate::merge::same_replicas(desc, right) {
            return refused("the tablets' replicas differ");
        }
        if self.joint() {
            return refused("a membership change is in progress");
        }
        Ok(())
    }

    /// This node's replica of `right` applied everything up to its freeze, so that its data and
    /// records in the engine here are final. The merge's driver waited for that, durably, on
    /// every replica before it proposed the merge; taking over without it would lose data, so
    /// this replica stops instead.
    fn check_local_right(&self, right: &RangeDescriptor, freeze_index: u64) -> Result<()> {
        let engine = self.shared.mvcc.engine();
        let applied = self.shared.mvcc.applied_index(right.tablet_id)?;
        let frozen_for_this = local::load_freeze(engine.as_ref(), right.tablet_id)?
            .and_then(|f| f.left)
            .is_some_and(|left| left.tablet_id == self.shared.tablet_id);
        if applied >= freeze_index && frozen_for_this {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "tablet {} cannot take over tablet {}: this node's replica of it has not applied \
                 its freeze (index {freeze_index}; applied {applied})",
                self.shared.tablet_id, right.tablet_id
            )))
        }
    }

    /// Settles a merge of `right` that may not have happened: if it did, nothing changes;
    /// otherwise the generation grows when it is still the one the merge was planned on, so
    /// that the merge can never apply. Answers the tablet's range.
    pub(super) fn apply_abort_merge(
        &mut self,
        batch: &mut ApplyBatch<'_>,
        a: &pb::AbortMergeCommand,
    ) -> OpOutcome {
        let mut desc = self.shared.descriptor();
        let right_start = a.right.as_ref().map(|r| r.start_key.as_slice());
        let merged = right_start.is_some_and(|k| range::contains(&desc, k));
        if !merged && desc.generation == a.left_generation {
            desc.generation += 1;
            local::put_descriptor(batch.write_batch(), &desc);
            *self.shared.desc.write().unwrap_or_else(|e| e.into_inner()) = desc.clone();
            self.shared.meta_dirty.store(true, Ordering::Release);
            tracing::info!(
                tablet = desc.tablet_id,
                "a merge with the right neighbour is called off"
            );
        }
        OpOutcome::with_range(desc)
    }

    /// `RangeMerging` while the tablet is frozen for a merge, or this leader is freezing it:
    /// it assigns no timestamp and applies no change.
    pub(super) fn not_freezing(&self) -> Result<()> {
        match self.shared.frozen_error() {
            Some(e) => Err(e),
            None if self.freezing => Err(Error::RangeMerging {
                tablet: self.shared.tablet_id,
            }),
            None => Ok(()),
        }
    }

    /// Whether this leader applied every entry of the leaders before it (their freezes, for
    /// one).
    pub(super) fn applied_earlier_terms(&self) -> bool {
        self.raw.raft.raft_log.applied >= self.term_start
    }

    /// What a freeze or a merge means for an op about to be proposed: `Ok(None)` to go on,
    /// `Ok(Some(answer))` when it is answered without a proposal, or why it is refused. A
    /// frozen tablet takes nothing but the steps that settle its merge.
    pub(super) fn admit_op(&mut self, op: &TabletOp) -> Result<Option<OpOutcome>> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let tablet = self.shared.tablet_id;
        match op {
            TabletOp::Freeze { left, .. } => {
                if let Some(frozen) = self.shared.frozen() {
                    // A retried freeze gets the first one's answer.
                    return if frozen.is_for(left) {
                        Ok(Some(frozen.outcome(self.shared.descriptor())))
                    } else {
                        Err(Error::RangeMerging { tablet })
                    };
                }
                self.not_freezing()?;
                if !self.applied_earlier_terms() {
                    return Err(Error::Unavailable {
                        tablet,
                        reason: "the leader is applying its predecessors' entries".into(),
                    });
                }
                let prepared = !self
                    .shared
                    .prepared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
                if prepared {
                    return Err(Error::Refused {
                        tablet,
                        reason: "transactions are prepared on the tablet".into(),
                    });
                }
                Ok(None)
            }
            // Answered by the tablet that took the left one over: its log is the left one's
            // continuation, and its range tells whether the merge happened (see `merge.rs`).
            TabletOp::AbortMerge { left_tablet, .. } if *left_tablet != tablet => {
                Ok(Some(OpOutcome::with_range(self.shared.descriptor())))
            }
            TabletOp::AbortMerge { .. } | TabletOp::Unfreeze { .. } => Ok(None),
            TabletOp::Merge { freeze_ts, .. } => {
                self.not_freezing()?;
                // Writes proposed from now on may land after the merge in the log, in the
                // right tablet's keys: they must commit above anything it assigned.
                self.oracle.observe(*freeze_ts);
                Ok(None)
            }
            TabletOp::Split { .. } => {
                self.not_freezing()?;
                if self.has_prepared() {
                    return Err(Error::Refused {
                        tablet,
                        reason: SPLIT_WHILE_PREPARED.into(),
                    });
                }
                Ok(None)
            }
            _ => self.not_freezing().map(|()| None),
        }
    }
}

/// Why a split is refused while transactions are prepared on the tablet (they would span the
/// two halves); the upkeep loop tries again in a later round.
const SPLIT_WHILE_PREPARED: &str = "transactions are prepared on the tablet; split later";

impl Replica {
    /// Answers once this replica has applied the entry at `index`, durably (a merge's driver
    /// asks every replica of the right tablet for its freeze).
    pub(super) async fn wait_applied(&self, index: u64) -> Result<OpOutcome> {
        let wait = async {
            while self.status().applied_index < index {
                tokio::time::sleep(WAIT_APPLIED_POLL).await;
            }
        };
        if tokio::time::timeout(self.request_timeout, wait)
            .await
            .is_err()
        {
            return Err(self.unavailable(&format!("entry {index} not applied in time")));
        }
        // The apply batch is in the engine's journal; make it, and all before it, durable.
        self.shared.mvcc.engine().write(
            meridian_storage::WriteBatch::new(),
            meridian_storage::Durability::Sync,
        )?;
        Ok(OpOutcome::default())
    }

    /// Stops a replica whose tablet was merged into its left neighbour and deletes its records
    /// and log; its data stays (the merged tablet's, when this node holds it).
    pub fn retire(&self) {
        let _ = self.tx.send(Msg::Retire);
    }

    /// Whether the tablet is frozen for a merge into its left neighbour.
    pub fn is_frozen(&self) -> bool {
        self.shared.frozen().is_some()
    }

    pub(crate) fn freeze(&self) -> Option<Freeze> {
        self.shared.frozen()
    }

    /// The tablet's freeze, once it has lasted three request timeouts here: long past what the
    /// merge's driver takes, so the driver is gone and the merge must be settled (see
    /// `merge.rs`).
    pub(crate) fn stale_freeze(&self) -> Option<Freeze> {
        let patience =
            (3 * self.request_timeout.as_nanos() / self.tick_interval.as_nanos().max(1)) as u64;
        let now = self.shared.ticks.load(Ordering::Relaxed);
        self.shared
            .frozen()
            .filter(|f| now.saturating_sub(f.since_tick) >= patience)
    }

    /// Records the tablet's byte count at `now` and answers whether it is cold (see
    /// [`Activity::observe`]).
    pub(crate) fn observe_activity(
        &self,
        now: Timestamp,
        window: Duration,
        cold_rate: u64,
    ) -> bool {
        let bytes = self.approx_bytes();
        self.shared
            .activity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(now, bytes, window, cold_rate)
    }
}

/// How often a wait for an applied index looks again.
const WAIT_APPLIED_POLL: Duration = Duration::from_millis(5);
