//! Merges: a tablet takes over its right neighbour when both are small and cold.
//!
//! Both tablets' data live in the same node-local engines under the same keys (`store.rs`), so
//! a merge moves no data when the two tablets have their replicas on the same nodes: each of
//! the left tablet's replicas extends its range over the right tablet's keys and takes over
//! its node-local records, and the right tablet's replicas retire. Merges are made only
//! between tablets whose replica sets are equal (and have no learners); tablets placed on
//! different nodes are not merged.
//!
//! The upkeep loop ([`maybe_merge`], from `dist::maintain`) runs on the node leading the left
//! tablet, which has a replica of the right one too. It merges when [`plan`] agrees (the two
//! are neighbours, the right one does not start at a boundary a user asked for, together they
//! are under `RangeSettings::merge_bytes`, both are cold, their replicas are the same,
//! nothing is prepared on the right one, neither serves more than a quarter of the load-split
//! threshold and the left one did not split by load lately: `load.rs`). The right tablet's
//! load is known here only if it leads here; otherwise its leader refuses the freeze when its
//! load is that high. The merge itself (`RangeClient::merge`):
//!
//! 1. **Freeze** the right tablet: a `FreezeCommand` in its log, at a timestamp `f` its leader
//!    assigns above everything it assigned. From that entry on, every replica of it refuses
//!    writes, 2PC steps, splits and membership changes (`RangeMerging`, which makes gateways
//!    look the range up again) and serves reads only up to `f`: its snapshot at `f` is final
//!    and holds all it will ever hold. A freeze is refused while transactions are prepared
//!    there.
//! 2. **Wait** until every replica of the right tablet has applied the freeze, durably: then
//!    each node's engine holds the right tablet's final data and records.
//! 3. **Take over**: a `MergeCommand` in the left tablet's log. Every replica checks,
//!    deterministically, that the left tablet still has the generation the merge was planned
//!    on, ends where the right one starts and has the same replicas; then it extends its range,
//!    moves the right tablet's decisions and size to itself in one synced write, raises its
//!    timestamps above `f`, and tells its node's replica of the right tablet to retire (delete
//!    its records and log, keep the data). The merged range's generation is above both.
//! 4. **Record** the merged range: one write to the meta records replaces the right tablet's
//!    record and deletes the left one's (`RangeClient::update_meta`).
//!
//! **Calling a merge off.** A freeze must not outlive a merge that will not happen. The left
//! tablet's log decides: an `AbortMergeCommand` there answers that the merge happened (its
//! range covers the right one's start) or, if it did not, raises the left tablet's generation
//! so that the merge can never apply; only then is the right tablet unfrozen. The driver does
//! this when a step after the freeze fails, and the right tablet's leader does it for a
//! freeze that lasted three request timeouts (its driver is gone; [`settle_stale_freezes`]).
//! If the left tablet is gone (merged into its own left neighbour), the tablet now holding its
//! start key answers with its range; an unfreeze can then only apply if the right tablet's
//! replicas are still running, which they are not if the left tablet took them over (it
//! retired them on every node before its own replicas could be waited for and merged).
//!
//! **Timestamps.** The merged tablet never assigns a timestamp at or below `f`: the left
//! leader raises its oracle to `f` when it proposes the takeover, and every replica does when
//! it applies it (for a leader elected since). Reads above `f` of the right tablet's keys are
//! served only by the merged tablet, after the takeover applied there.

use std::collections::HashMap;
use std::time::Duration;

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;

use crate::dist::{RangeClient, RangeSettings};
use crate::range::{self, RangeDescriptor};
use crate::replica::Replica;
use crate::store::Store;
use crate::txn::{OpOutcome, TabletOp};
use crate::{Error, Result};

/// A tablet's freeze for a merge into its left neighbour, as its replicas keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Freeze {
    /// The left neighbour, as the merge was planned on it.
    pub left: RangeDescriptor,
    /// Above every timestamp the tablet assigned; it serves no read above it.
    pub ts: Timestamp,
    /// The log index of the freeze.
    pub index: u64,
    /// The replica's tick count when it learned of the freeze (in memory only: recovery
    /// counts from it).
    pub since_tick: u64,
}

impl Freeze {
    pub(crate) fn from_record(record: pb::MergeFreeze, tick: u64) -> Freeze {
        Freeze {
            left: record.left.unwrap_or_default(),
            ts: Timestamp::from_nanos(record.freeze_ts),
            index: record.freeze_index,
            since_tick: tick,
        }
    }

    pub(crate) fn record(&self) -> pb::MergeFreeze {
        pb::MergeFreeze {
            left: Some(self.left.clone()),
            freeze_ts: self.ts.as_nanos(),
            freeze_index: self.index,
        }
    }

    /// Whether this is the freeze of a merge into `left` as planned.
    pub(crate) fn is_for(&self, left: &RangeDescriptor) -> bool {
        self.left.tablet_id == left.tablet_id && self.left.generation == left.generation
    }

    /// A freeze's answer: its timestamp and index, and the frozen range.
    pub(crate) fn outcome(&self, frozen: RangeDescriptor) -> OpOutcome {
        OpOutcome {
            ts: self.ts,
            range: Some(frozen),
            index: self.index,
            ..OpOutcome::default()
        }
    }
}

/// Whether `a` and `b` have their replicas on the same nodes, none of them a learner.
pub(crate) fn same_replicas(a: &RangeDescriptor, b: &RangeDescriptor) -> bool {
    let sorted = |d: &RangeDescriptor| {
        let mut ids = d.replicas.clone();
        ids.sort_unstable();
        ids
    };
    a.learners.is_empty() && b.learners.is_empty() && sorted(a) == sorted(b)
}

/// How many bytes a tablet took lately, from samples of its byte count: the last complete
/// window and the window in progress.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// When the window in progress began, and the byte count then.
    current: Option<(Timestamp, u64)>,
    /// The last complete window: bytes written and its length in nanoseconds.
    last: Option<(u64, u64)>,
}

impl Activity {
    /// Records the tablet's byte count `bytes` at `now` (windows last at least `window`), and
    /// answers whether the tablet is cold: over the last complete window and the one in
    /// progress together, it took at most `max_rate` bytes per second.
    pub(crate) fn observe(
        &mut self,
        now: Timestamp,
        bytes: u64,
        window: Duration,
        max_rate: u64,
    ) -> bool {
        let Some((start, at_start)) = self.current else {
            self.current = Some((now, bytes));
            return false;
        };
        if bytes < at_start {
            // The count went down (the tablet split and halved it): start over.
            *self = Activity {
                current: Some((now, bytes)),
                last: None,
            };
            return false;
        }
        let elapsed = now.as_nanos().saturating_sub(start.as_nanos());
        if u128::from(elapsed) >= window.as_nanos() {
            self.last = Some((bytes - at_start, elapsed));
            self.current = Some((now, bytes));
        }
        let Some((last_bytes, last_ns)) = self.last else {
            return false;
        };
        let (start, at_start) = self.current.unwrap_or((now, bytes));
        let written = u128::from(last_bytes + (bytes - at_start));
        let span = u128::from(last_ns + now.as_nanos().saturating_sub(start.as_nanos()));
        written * 1_000_000_000 <= u128::from(max_rate) * span
    }
}

/// Why two tablets are not merged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Merges are off (`RangeSettings::merge_bytes` is zero).
    Disabled,
    /// The right range does not start where the left one ends.
    NotNeighbours,
    /// The right range starts where a user asked for a split.
    Sticky,
    /// Together they are larger than the merge threshold.
    TooLarge,
    /// One of them took writes lately.
    Hot,
    /// Their replicas are not on the same nodes, or one of them is changing its replicas.
    ReplicasDiffer,
    /// A transaction is prepared on the right one, or one of them is frozen for a merge.
    Busy,
    /// One of them serves more than a quarter of the load-split threshold, or the left one
    /// split by load lately (see `load.rs`).
    Loaded,
}

/// What the merge planner knows of two neighbouring tablets.
#[derive(Debug, Clone)]
pub(crate) struct Pair<'a> {
    /// The left tablet's range.
    pub(crate) left: &'a RangeDescriptor,
    /// The right tablet's range.
    pub right: &'a RangeDescriptor,
    /// Approximate bytes written to each.
    pub bytes: (u64, u64),
    /// Whether each is cold.
    pub cold: (bool, bool),
    /// A transaction is prepared on the right one, or one of them is frozen.
    pub busy: bool,
    /// See [`Keep::Loaded`].
    pub loaded: bool,
}

/// Whether to merge `pair` now, or why not. The merged tablet must stay under half the split
/// threshold, so that it does not split again at once.
pub(crate) fn plan(pair: &Pair<'_>, settings: &RangeSettings) -> std::result::Result<(), Keep> {
    if settings.merge_bytes == 0 {
        return Err(Keep::Disabled);
    }
    if pair.left.end_key.is_empty() || pair.left.end_key != pair.right.start_key {
        return Err(Keep::NotNeighbours);
    }
    if pair.right.sticky {
        return Err(Keep::Sticky);
    }
    let limit = settings.merge_bytes.min(settings.split_bytes / 2);
    if pair.bytes.0.saturating_add(pair.bytes.1) > limit {
        return Err(Keep::TooLarge);
    }
    if !(pair.cold.0 && pair.cold.1) {
        return Err(Keep::Hot);
    }
    if !same_replicas(pair.left, pair.right) {
        return Err(Keep::ReplicasDiffer);
    }
    if pair.busy {
        return Err(Keep::Busy);
    }
    if pair.loaded {
        return Err(Keep::Loaded);
    }
    Ok(())
}

/// The initialized replicas of `store`, by the start key of their range: where each tablet's
/// right neighbour is found.
pub(crate) fn by_start_key(store: &Store) -> HashMap<Vec<u8>, Replica> {
    store
        .replicas()
        .into_iter()
        .filter(|r| r.is_initialized())
        .map(|r| (r.descriptor().start_key, r))
        .collect()
}

/// One round of merge planning for `left`, a leader: samples how busy it and its right
/// neighbour's replica on this node (`right`, found in `neighbours`) are, and merges them
/// when [`plan`] agrees.
pub(crate) async fn maybe_merge(
    left: &Replica,
    neighbours: &HashMap<Vec<u8>, Replica>,
    client: &RangeClient,
    settings: &RangeSettings,
) -> Result<()> {
    let desc = left.descriptor();
    if settings.merge_bytes == 0 || desc.end_key.is_empty() {
        return Ok(());
    }
    // With the same replicas, this node holds the right neighbour too.
    let Some(right) = neighbours.get(&desc.end_key) else {
        return Ok(());
    };
    let now = client.now()?.latest;
    let (window, rate) = (settings.merge_cold_window, settings.merge_cold_rate);
    let cold = (
        left.observe_activity(now, window, rate),
        right.observe_activity(now, window, rate),
    );
    let right_desc = right.descriptor();
    let pair = Pair {
        left: &desc,
        right: &right_desc,
        bytes: (left.approx_bytes(), right.approx_bytes()),
        cold,
        busy: right.prepared_count() > 0 || left.is_frozen() || right.is_frozen(),
        // The right tablet's load is known here if it leads here; otherwise its leader
        // refuses the freeze when its load is high.
        loaded: left.load().keeps_apart()
            || left.load().cooling(now, settings.load_merge_delay)
            || (right.is_leader() && right.load().keeps_apart()),
    };
    if plan(&pair, settings).is_err() {
        return Ok(());
    }
    let bytes = pair.bytes.0 + pair.bytes.1;
    client.merge(&desc, &right_desc).await?;
    tracing::info!(
        left = desc.tablet_id,
        right = right_desc.tablet_id,
        bytes,
        "merged two small, cold tablets"
    );
    Ok(())
}

/// One round of freeze recovery on `stores`: a tablet frozen for three request timeouts at its
/// leader has lost its merge's driver; the merge is settled (see the module docs).
pub(crate) async fn settle_stale_freezes(stores: &[std::sync::Arc<Store>], client: &RangeClient) {
    for store in stores {
        for replica in store.replicas() {
            if !replica.is_leader() {
                continue;
            }
            let Some(freeze) = replica.stale_freeze() else {
                continue;
            };
            let right = replica.descriptor();
            match client.settle_merge(&freeze.left, &right).await {
                Ok(merged) => tracing::info!(
                    tablet = right.tablet_id,
                    merged = merged.is_some(),
                    "settled a merge whose driver went silent"
                ),
                Err(e) => tracing::debug!(tablet = right.tablet_id, error = %e,
                    "settling a stale freeze failed; will retry"),
            }
        }
    }
}

impl RangeClient {
    /// Merges `right` into `left`, its left neighbour with the same replicas, as planned on
    /// these descriptors (see the module docs), and records the merged range in the meta
    /// records. A merge refused or failed after the freeze is called off; either way the right
    /// tablet is not left frozen.
    pub async fn merge(
        &self,
        left: &RangeDescriptor,
        right: &RangeDescriptor,
    ) -> Result<RangeDescriptor> {
        let freeze = TabletOp::Freeze {
            left: left.clone(),
            right_generation: right.generation,
        };
        let frozen = match self.op_on_tablet(right, freeze).await {
            Ok(outcome) => outcome,
            Err(e @ Error::Ambiguous { .. }) => {
                // The freeze may have applied.
                self.call_off(left, right).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let Some(frozen_range) = frozen.range.clone() else {
            return Err(Error::Internal(
                "a freeze answered without its range".into(),
            ));
        };
        let take_over = self.take_over(left, &frozen_range, frozen.ts, frozen.index);
        let merged = match tokio::time::timeout(self.deadline() * 2, take_over).await {
            Ok(Ok(merged)) => merged,
            Ok(Err(e)) => {
                tracing::info!(left = left.tablet_id, right = right.tablet_id, error = %e,
                    "merge failed after the freeze; calling it off");
                self.call_off(left, &frozen_range).await?;
                return Err(e);
            }
            Err(_) => {
                self.call_off(left, &frozen_range).await?;
                return Err(Error::Unavailable {
                    tablet: left.tablet_id,
                    reason: "the merge did not complete in time".into(),
                });
            }
        };
        self.evict(right.tablet_id);
        self.update_meta(std::slice::from_ref(&merged)).await?;
        self.install(merged.clone());
        Ok(merged)
    }

    /// Steps 2 and 3: waits until every replica of the frozen right tablet applied the freeze,
    /// then has the left tablet take it over; answers the merged range.
    async fn take_over(
        &self,
        left: &RangeDescriptor,
        frozen: &RangeDescriptor,
        freeze_ts: Timestamp,
        freeze_index: u64,
    ) -> Result<RangeDescriptor> {
        let endpoints = self.endpoints(frozen);
        if endpoints.len() != frozen.replicas.len() {
            return Err(Error::Unavailable {
                tablet: frozen.tablet_id,
                reason: "not every replica of the tablet is reachable".into(),
            });
        }
        let waits = endpoints.iter().map(|e| {
            e.op(TabletOp::WaitApplied {
                index: freeze_index,
            })
        });
        for result in futures::future::join_all(waits).await {
            result?;
        }
        let op = TabletOp::Merge {
            right: frozen.clone(),
            left_generation: left.generation,
            freeze_ts,
            freeze_index,
        };
        self.op_on_tablet(left, op)
            .await?
            .range
            .ok_or_else(|| Error::Internal("a merge answered without its range".into()))
    }

    /// Calls off a merge of `right` into `left` (see [`RangeClient::settle_merge`]), reporting
    /// only a failure to do so.
    async fn call_off(&self, left: &RangeDescriptor, right: &RangeDescriptor) -> Result<()> {
        self.settle_merge(left, right).await.map(drop)
    }

    /// Settles a merge of `right` into `left` that may not have happened: the left tablet's
    /// log answers whether it did (and if not, makes sure it never will); then the right
    /// tablet is unfrozen, or the merged range recorded. Answers the merged range if the merge
    /// happened.
    pub(crate) async fn settle_merge(
        &self,
        left: &RangeDescriptor,
        right: &RangeDescriptor,
    ) -> Result<Option<RangeDescriptor>> {
        let abort = TabletOp::AbortMerge {
            left_tablet: left.tablet_id,
            right: right.clone(),
            left_generation: left.generation,
        };
        let answer = self
            .with_range(&left.start_key, |c| {
                let abort = abort.clone();
                async move { c.router.op(abort).await }
            })
            .await?;
        let Some(range) = answer.range else {
            return Err(Error::Internal(
                "an abort of a merge answered without a range".into(),
            ));
        };
        if range::contains(&range, &right.start_key) {
            self.update_meta(std::slice::from_ref(&range)).await?;
            return Ok(Some(range));
        }
        self.op_on_tablet(
            right,
            TabletOp::Unfreeze {
                left_tablet: left.tablet_id,
            },
        )
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(tablet: u64, start: &str, end: &str, replicas: &[u64]) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id: tablet,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            generation: 1,
            replicas: replicas.to_vec(),
            ..Default::default()
        }
    }

    fn settings() -> RangeSettings {
        RangeSettings {
            split_bytes: 1000,
            merge_bytes: 300,
            ..RangeSettings::default()
        }
    }

    /// One planning decision: the pair's right tablet (its left one ends at `/t/m`, unless
    /// `last`), sizes, coldness and business, the merge threshold, and the verdict.
    struct Case {
        right: RangeDescriptor,
        last: bool,
        bytes: (u64, u64),
        cold: (bool, bool),
        busy: bool,
        loaded: bool,
        merge_bytes: u64,
        expected: std::result::Result<(), Keep>,
    }

    #[test]
    fn small_cold_neighbours_with_the_same_replicas_merge_and_nothing_else_does() {
        let right = desc(3, "/t/m", "", &[3, 2, 1]);
        let case = |expected| Case {
            right: right.clone(),
            last: false,
            bytes: (100, 200),
            cold: (true, true),
            busy: false,
            loaded: false,
            merge_bytes: 300,
            expected,
        };
        let cases = [
            case(Ok(())),
            Case {
                merge_bytes: 0,
                ..case(Err(Keep::Disabled))
            },
            Case {
                right: desc(3, "/t/n", "", &[1, 2, 3]),
                ..case(Err(Keep::NotNeighbours))
            },
            Case {
                last: true,
                ..case(Err(Keep::NotNeighbours))
            },
            Case {
                right: RangeDescriptor {
                    sticky: true,
                    ..right.clone()
                },
                ..case(Err(Keep::Sticky))
            },
            Case {
                bytes: (100, 201),
                ..case(Err(Keep::TooLarge))
            },
            // Never above half the split threshold, whatever the merge threshold says.
            Case {
                bytes: (300, 201),
                merge_bytes: 5000,
                ..case(Err(Keep::TooLarge))
            },
            Case {
                cold: (false, true),
                ..case(Err(Keep::Hot))
            },
            Case {
                cold: (true, false),
                ..case(Err(Keep::Hot))
            },
            Case {
                right: desc(3, "/t/m", "", &[1, 2, 4]),
                ..case(Err(Keep::ReplicasDiffer))
            },
            Case {
                right: RangeDescriptor {
                    learners: vec![4],
                    replicas: vec![1, 2, 3, 4],
                    ..right.clone()
                },
                ..case(Err(Keep::ReplicasDiffer))
            },
            Case {
                busy: true,
                ..case(Err(Keep::Busy))
            },
            Case {
                loaded: true,
                ..case(Err(Keep::Loaded))
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let left = desc(2, "/t/a", if c.last { "" } else { "/t/m" }, &[1, 2, 3]);
            let pair = Pair {
                left: &left,
                right: &c.right,
                bytes: c.bytes,
                cold: c.cold,
                busy: c.busy,
                loaded: c.loaded,
            };
            let s = RangeSettings {
                merge_bytes: c.merge_bytes,
                ..settings()
            };
            assert_eq!(plan(&pair, &s), c.expected, "case {i}");
        }
    }

    #[test]
    fn a_tablet_is_cold_after_a_full_window_of_few_writes() {
        const SEC: u64 = 1_000_000_000;
        let at = |s: u64| Timestamp::from_nanos(100 * SEC + s * SEC / 10);
        let window = Duration::from_secs(1);
        let mut a = Activity::default();
        // Nothing is known before a whole window was seen.
        assert!(!a.observe(at(0), 1000, window, 100));
        assert!(!a.observe(at(5), 1000, window, 100));
        // A window with 50 bytes: cold at 100 bytes per second.
        assert!(a.observe(at(10), 1050, window, 100));
        // 200 bytes in the window in progress: 250 bytes in 1.5 s is too many.
        assert!(!a.observe(at(15), 1250, window, 100));
        // That window ends hot, and the next one must make up for it.
        assert!(!a.observe(at(20), 1250, window, 100));
        assert!(a.observe(at(35), 1250, window, 100));
        // A split halves the count: everything is forgotten.
        assert!(!a.observe(at(40), 600, window, 100));
        assert!(!a.observe(at(45), 600, window, 100));
        assert!(a.observe(at(50), 600, window, 100));
    }

    #[test]
    fn freezes_answer_the_merge_they_were_made_for() {
        let left = desc(2, "/t/a", "/t/m", &[1]);
        let freeze = Freeze {
            left: left.clone(),
            ts: Timestamp::from_nanos(7),
            index: 9,
            since_tick: 0,
        };
        assert!(freeze.is_for(&left));
        let later = RangeDescriptor {
            generation: 2,
            ..left.clone()
        };
        assert!(!freeze.is_for(&later));
        let back = Freeze::from_record(freeze.record(), 0);
        assert_eq!(back, freeze);
        let outcome = freeze.outcome(desc(3, "/t/m", "", &[1]));
        assert_eq!((outcome.ts, outcome.index), (Timestamp::from_nanos(7), 9));
    }
}
