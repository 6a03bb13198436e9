//! Node liveness and the placement driver.
//!
//! Every node renews a liveness record in the root tablet (`/sys/live/<node>`, a
//! [`pb::NodeLiveness`] with an expiration from its clock) every `RangeSettings::liveness_ttl
//! / 3`. A node whose record expired is *suspect*; one whose record expired more than
//! `RangeSettings::dead_after` ago is *dead*.
//!
//! The placement driver is not a separate service: it runs on the node whose replica leads the
//! root tablet (which holds the meta and liveness records), and in each round
//! ([`place`]):
//!
//! - replaces every replica on a dead node by one on a live node that holds no replica of the
//!   tablet, choosing first a region, then a zone, that the tablet's other replicas do not use,
//!   then the node with the fewest replicas ([`plan_repairs`]);
//! - when no repair is needed, moves one replica from the node with the most replicas to the
//!   node with the fewest, if they differ by more than one ([`plan_rebalance`]). A leader asked
//!   to remove its own replica hands its leadership to another voter first.
//!
//! Leader counts are balanced by every node for itself ([`balance_leaders`]): liveness records
//! carry each node's leader count, and a node that leads more than the mean hands one
//! leadership to a voter on a node that leads at least two fewer (one per round, so the
//! counts settle without swinging back and forth; CockroachDB's lease rebalancing works from
//! such per-store counts too). Draining nodes are never given one. Before counts, the load
//! decides: a tablet whose requests come mostly from another node's gateway hands its
//! leadership there, and count balancing never moves a leadership away from the node whose
//! requests hold it (`follow.rs`).
//!
//! A replica moves by `RangeClient::replace_replica` (learner, snapshot, joint change; see
//! `membership.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;

use crate::dist::{RangeClient, RangeSettings};
use crate::membership::ReplicaChange;
use crate::range::{self, RangeDescriptor};
use crate::store::Store;

/// A replica to move: off node `from`, onto node `to` (either may be missing: a replica
/// added to a tablet with too few, or removed from one with too many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The tablet, as its meta record describes it.
    pub desc: RangeDescriptor,
    /// The node whose replica goes.
    pub from: Option<u64>,
    /// The node that gets one.
    pub to: Option<u64>,
}

/// What the liveness records say about a node at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Its record has not expired.
    Live,
    /// Its record expired recently.
    Suspect,
    /// Its record expired more than the dead-node timeout ago.
    Dead,
}

/// The state of `record`'s node at `now`.
pub fn node_state(record: &pb::NodeLiveness, now: Timestamp, dead_after: Duration) -> NodeState {
    let expiration = record.expiration;
    if now.as_nanos() < expiration {
        NodeState::Live
    } else if now.as_nanos() - expiration > dead_after.as_nanos() as u64 {
        NodeState::Dead
    } else {
        NodeState::Suspect
    }
}

/// Replica counts per live node, over `descs`.
fn replica_counts(descs: &[RangeDescriptor], live: &[&pb::NodeLiveness]) -> BTreeMap<u64, usize> {
    let mut counts: BTreeMap<u64, usize> = live.iter().map(|n| (n.node_id, 0)).collect();
    for d in descs {
        for r in &d.replicas {
            if let Some(c) = counts.get_mut(r) {
                *c += 1;
            }
        }
    }
    counts
}

/// The best live node for a new replica of `desc` (which keeps the replicas `keep`): one
/// without a replica of it, in a region and then a zone the kept replicas use least, with
/// the fewest replicas.
fn best_target(
    desc: &RangeDescriptor,
    keep: &[u64],
    live: &[&pb::NodeLiveness],
    nodes: &BTreeMap<u64, &pb::NodeLiveness>,
    counts: &BTreeMap<u64, usize>,
) -> Option<u64> {
    let used = |pick: fn(&pb::NodeLiveness) -> &str, candidate: &pb::NodeLiveness| {
        keep.iter()
            .filter_map(|id| nodes.get(id))
            .filter(|n| pick(n) == pick(candidate))
            .count()
    };
    live.iter()
        .filter(|n| !desc.replicas.contains(&n.node_id))
        .min_by_key(|n| {
            (
                used(|n| &n.region, n),
                used(|n| &n.zone, n),
                counts.get(&n.node_id).copied().unwrap_or(0),
                n.node_id,
            )
        })
        .map(|n| n.node_id)
}

/// What brings every tablet back to `factor` live voters, at most one move per tablet:
///
/// - a replica on a dead node, or on a node `leaving` the cluster (decommissioning), moves to
///   a live node that is staying (a learner there is just removed);
/// - a tablet with a learner is left alone (a replica is being added) unless the learner is in
///   `stale` (seen for a long time: an addition that was interrupted), which is removed, or
///   one of its voters is gone, which the learner replaces;
/// - a tablet with too many voters loses one, one with too few (and a live node to spare)
///   gains one.
///
/// A tablet that lost its quorum cannot change its members and is skipped.
pub fn plan_repairs(
    descs: &[RangeDescriptor],
    records: &[pb::NodeLiveness],
    now: Timestamp,
    dead_after: Duration,
    factor: usize,
    leaving: &BTreeSet<u64>,
    stale: &BTreeSet<(u64, u64)>,
) -> Vec<Move> {
    let nodes: BTreeMap<u64, &pb::NodeLiveness> = records.iter().map(|n| (n.node_id, n)).collect();
    let state = |id: &u64| {
        nodes
            .get(id)
            .map(|n| node_state(n, now, dead_after))
            // A node that never recorded its liveness is not known to be dead.
            .unwrap_or(NodeState::Suspect)
    };
    let live: Vec<&pb::NodeLiveness> = records
        .iter()
        .filter(|n| {
            node_state(n, now, dead_after) == NodeState::Live && !leaving.contains(&n.node_id)
        })
        .collect();
    let mut counts = replica_counts(descs, &live);
    let mut moves = Vec::new();
    let mut push = |desc: &RangeDescriptor, from: Option<u64>, to: Option<u64>| {
        moves.push(Move {
            desc: desc.clone(),
            from,
            to,
        });
    };
    for desc in descs {
        let voters: Vec<u64> = desc
            .replicas
            .iter()
            .copied()
            .filter(|r| !desc.learners.contains(r))
            .collect();
        let dead: Vec<u64> = voters
            .iter()
            .copied()
            .filter(|r| state(r) == NodeState::Dead)
            .collect();
        if dead.len() * 2 >= voters.len() && !dead.is_empty() {
            tracing::warn!(tablet = desc.tablet_id, replicas = ?desc.replicas, ?dead,
                "tablet lost its quorum; its replicas cannot be replaced");
            continue;
        }
        let gone = |r: &u64| state(r) == NodeState::Dead || leaving.contains(r);
        if let Some(&learner) = desc
            .learners
            .iter()
            .find(|l| gone(l) || stale.contains(&(desc.tablet_id, **l)))
        {
            push(desc, Some(learner), None);
            continue;
        }
        if let Some(&learner) = desc.learners.first() {
            // A replica is being added. If a voter is gone meanwhile (the addition may have been
            // replacing it, and its driver died with it), the learner takes its place.
            if let Some(&from) = voters.iter().find(|r| gone(r)) {
                push(desc, Some(from), Some(learner));
            }
            continue;
        }
        if let Some(&from) = voters.iter().find(|r| gone(r)) {
            let keep: Vec<u64> = voters.iter().copied().filter(|r| *r != from).collect();
            if let Some(to) = best_target(desc, &keep, &live, &nodes, &counts) {
                *counts.entry(to).or_default() += 1;
                push(desc, Some(from), Some(to));
            }
        } else if voters.len() > factor {
            // The voter on the node with the most replicas goes.
            let from = voters
                .iter()
                .copied()
                .max_by_key(|r| (counts.get(r).copied().unwrap_or(0), *r));
            if let Some(c) = from.and_then(|f| counts.get_mut(&f)) {
                *c = c.saturating_sub(1);
            }
            push(desc, from, None);
        } else if voters.len() < factor
            && let Some(to) = best_target(desc, &voters, &live, &nodes, &counts)
        {
            *counts.entry(to).or_default() += 1;
            push(desc, None, Some(to));
        }
    }
    moves
}

/// One replica move from the live node with the most replicas to the one with the fewest, when
/// they differ by more than one. Only when every node is live.
pub fn plan_rebalance(
    descs: &[RangeDescriptor],
    records: &[pb::NodeLiveness],
    now: Timestamp,
    dead_after: Duration,
) -> Option<Move> {
    let live: Vec<&pb::NodeLiveness> = records
        .iter()
        .filter(|n| node_state(n, now, dead_after) == NodeState::Live)
        .collect();
    if live.len() != records.len() {
        return None;
    }
    let nodes: BTreeMap<u64, &pb::NodeLiveness> = records.iter().map(|n| (n.node_id, n)).collect();
    let counts = replica_counts(descs, &live);
    let (&most, &max) = counts
        .iter()
        .max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id)))?;
    let (_, &min) = counts.iter().min_by_key(|(id, c)| (**c, **id))?;
    if max <= min + 1 {
        return None;
    }
    descs
        .iter()
        .filter(|d| d.replicas.contains(&most))
        .find_map(|d| {
            let keep: Vec<u64> = d.replicas.iter().copied().filter(|r| *r != most).collect();
            let to = best_target(d, &keep, &live, &nodes, &counts)?;
            // Only a move that keeps the tablet's spread over localities.
            let spread = |ids: &[u64]| {
                ids.iter()
                    .filter_map(|id| nodes.get(id))
                    .map(|n| (n.region.as_str(), n.zone.as_str()))
                    .collect::<BTreeSet<_>>()
                    .len()
            };
            let mut after = keep.clone();
            after.push(to);
            (counts.get(&to).copied().unwrap_or(0) + 1 < max
                && spread(&after) >= spread(&d.replicas))
            .then(|| Move {
                desc: d.clone(),
                from: Some(most),
                to: Some(to),
            })
        })
}

/// Renews the liveness record of every running store in `stores`.
pub async fn heartbeat(stores: &[Arc<Store>], client: &RangeClient, settings: &RangeSettings) {
    for store in stores.iter().filter(|s| !s.is_stopped()) {
        let record = pb::NodeLiveness {
            node_id: store.id(),
            expiration: 0,
            region: settings.region.clone(),
            zone: settings.zone.clone(),
            leaders: leaders(store).len() as u32,
            draining: store.is_draining(),
        };
        if let Err(e) = client.heartbeat(record, settings.liveness_ttl).await {
            tracing::debug!(node = store.id(), error = %e, "liveness heartbeat failed");
        }
    }
}

/// The initialized replicas of `store` that lead their tablet.
fn leaders(store: &Store) -> Vec<crate::Replica> {
    store
        .replicas()
        .into_iter()
        .filter(|r| r.is_initialized() && r.is_leader())
        .collect()
}

/// A leadership to hand over: the tablet, and the node whose voter takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderMove {
    pub tablet: u64,
    pub to: u64,
}

/// Whether the node of record `n` may be given a leadership at `now`: live and not draining.
fn may_lead(n: &pb::NodeLiveness, now: Timestamp, dead_after: Duration) -> bool {
    !n.draining && node_state(n, now, dead_after) == NodeState::Live
}

/// Leader balancing, as node `me` decides it for itself: when it leads more tablets than the
/// mean of the live nodes that may lead (not draining; its own count is `led`'s length, the
/// records give the others'), one of its tablets (`led`: each with its voters) goes to the
/// voter on the node that leads fewest, if that node leads at least two fewer than `me` (so
/// that a move never just swaps the imbalance, and the counts settle within one of each
/// other wherever the voters allow).
pub fn plan_leader_move(
    me: u64,
    led: &[(u64, Vec<u64>)],
    records: &[pb::NodeLiveness],
    now: Timestamp,
    dead_after: Duration,
) -> Option<LeaderMove> {
    let leading = led.len() as u64;
    let counts: BTreeMap<u64, u64> = records
        .iter()
        .filter(|n| n.node_id != me && may_lead(n, now, dead_after))
        .map(|n| (n.node_id, u64::from(n.leaders)))
        .chain([(me, leading)])
        .collect();
    let total: u64 = counts.values().sum();
    // leading > mean, in integers.
    if leading * counts.len() as u64 <= total {
        return None;
    }
    led.iter()
        .flat_map(|(tablet, voters)| {
            voters
                .iter()
                .filter(|v| **v != me)
                .filter_map(|v| counts.get(v).map(|c| (*c, *v, *tablet)))
        })
        .filter(|(count, _, _)| count + 2 <= leading)
        .min()
        .map(|(_, to, tablet)| LeaderMove { tablet, to })
}

/// Leaderships one node hands over to follow the load in one round.
const MAX_FOLLOWS_PER_ROUND: usize = 4;

/// One round of leader placement for each store in `stores`: leaderships follow the nodes
/// their requests come from (`follow.rs`), then counts are balanced ([`plan_leader_move`])
/// among the tablets the load does not hold where they are.
pub async fn balance_leaders(
    stores: &[Arc<Store>],
    client: &RangeClient,
    settings: &RangeSettings,
) {
    let running: Vec<&Arc<Store>> = stores
        .iter()
        .filter(|s| !s.is_stopped() && !s.is_draining())
        .collect();
    if running.is_empty() {
        return;
    }
    let (Ok(records), Ok(now)) = (client.liveness().await, client.now()) else {
        return;
    };
    let eligible = |node: u64| {
        records
            .iter()
            .any(|n| n.node_id == node && may_lead(n, now.latest, settings.dead_after))
    };
    for store in running {
        let me = store.id();
        let replicas = leaders(store);
        let mut led: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut followed = 0;
        for r in replicas.iter().filter(|r| !r.is_frozen()) {
            let d = r.descriptor();
            let mut voters: Vec<u64> = d
                .replicas
                .iter()
                .copied()
                .filter(|id| !d.learners.contains(id))
                .collect();
            let origins = r.load().origins();
            origins.observe(now.latest);
            let rates = origins.rates();
            // A new leader counts towards this node's leaderships but is not handed on for
            // counts before its load is known.
            if rates.is_none() && settings.follow_qps > 0.0 {
                led.push((r.tablet_id(), Vec::new()));
                continue;
            }
            if let Some(rates) = rates {
                let to = (followed < MAX_FOLLOWS_PER_ROUND)
                    .then(|| {
                        crate::follow::plan_follow(
                            me,
                            &voters,
                            &rates,
                            settings.follow_qps,
                            eligible,
                        )
                    })
                    .flatten();
                if let Some(to) = to {
                    tracing::info!(
                        tablet = r.tablet_id(),
                        from = me,
                        to,
                        ?rates,
                        "placement: handing a leadership to the node its requests come from"
                    );
                    crate::metrics::LEADERSHIPS_FOLLOWED.inc();
                    r.transfer_leadership_to(to);
                    followed += 1;
                    continue;
                }
                voters
                    .retain(|v| !crate::follow::held_against(me, *v, &rates, settings.follow_qps));
            }
            led.push((r.tablet_id(), voters));
        }
        // Counts are recounted after the moves the load asked for.
        if followed > 0 {
            continue;
        }
        let Some(m) = plan_leader_move(me, &led, &records, now.latest, settings.dead_after) else {
            continue;
        };
        if let Some(r) = replicas.iter().find(|r| r.tablet_id() == m.tablet) {
            tracing::info!(
                tablet = m.tablet,
                from = store.id(),
                to = m.to,
                rates = ?r.load().origins().rates(),
                "placement: handing a leadership over to balance leader counts"
            );
            crate::metrics::LEADERSHIPS_BALANCED.inc();
            r.transfer_leadership_to(m.to);
        }
    }
}

/// What the placement driver remembers between rounds: when it first saw each learner
/// (tablet, node), so that one left behind by an interrupted addition is removed.
#[derive(Default)]
pub struct Memory {
    learners: std::sync::Mutex<BTreeMap<(u64, u64), Timestamp>>,
}

impl Memory {
    /// Records the learners of `descs` at `now`; returns those seen for longer than `patience`
    /// (left over from an interrupted addition).
    fn stale_learners(
        &self,
        descs: &[RangeDescriptor],
        now: Timestamp,
        patience: Duration,
    ) -> BTreeSet<(u64, u64)> {
        let mut seen = self.learners.lock().unwrap_or_else(|e| e.into_inner());
        let current: BTreeSet<(u64, u64)> = descs
            .iter()
            .flat_map(|d| d.learners.iter().map(move |l| (d.tablet_id, *l)))
            .collect();
        seen.retain(|k, _| current.contains(k));
        for k in &current {
            seen.entry(*k).or_insert(now);
        }
        seen.iter()
            .filter(|(_, first)| {
                now.as_nanos().saturating_sub(first.as_nanos()) > patience.as_nanos() as u64
            })
            .map(|(k, _)| *k)
            .collect()
    }
}

/// One round of the placement driver, if a store in `stores` leads the root tablet: repairs
/// first, else one rebalancing move.
pub async fn place(
    stores: &[Arc<Store>],
    client: &RangeClient,
    settings: &RangeSettings,
    memory: &Memory,
) {
    let leads_root = stores
        .iter()
        .any(|s| !s.is_stopped() && s.replica(range::ROOT_TABLET).is_some_and(|r| r.is_leader()));
    if !leads_root {
        return;
    }
    let read = (
        client.liveness().await,
        client.ranges().await,
        client.decommissioning().await,
    );
    let (records, descs, leaving) = match read {
        (Ok(r), Ok(d), Ok(l)) => (r, d, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::warn!(error = %e, "placement: cannot read liveness or meta records");
            return;
        }
    };
    let Ok(now) = client.now() else { return };
    let repairs = plan_repairs(
        &descs,
        &records,
        now.latest,
        settings.dead_after,
        settings.replication,
        &leaving,
        &memory.stale_learners(&descs, now.latest, settings.learner_patience),
    );
    let moves = if repairs.is_empty() && leaving.is_empty() && settings.rebalance {
        plan_rebalance(&descs, &records, now.latest, settings.dead_after)
            .into_iter()
            .collect()
    } else {
        repairs
    };
    for m in moves {
        let tablet = m.desc.tablet_id;
        tracing::info!(tablet, from = ?m.from, to = ?m.to, "placement: moving a replica");
        let result = match (m.from, m.to) {
            (from, Some(to)) => client.replace_replica(&m.desc, from, to).await,
            (Some(from), None) => {
                client
                    .change_replicas(&m.desc, vec![ReplicaChange::Remove(from)], true)
                    .await
            }
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => crate::metrics::REPLICAS_REPLACED.inc(),
            Err(e) => tracing::warn!(tablet, from = ?m.from, to = ?m.to, error = %e,
                "placement: moving a replica failed"),
        }
    }
}

/// Deletes the replicas in `stores` that their tablet's meta record no longer lists (removed
/// while their node was down, so they never applied their removal), and frozen ones whose keys
/// the meta records give to the tablet that merged them while this node holds no replica of
/// the left tablet to retire them (it was moved away before it applied the merge). First,
/// creates the replicas a store should hold of tablets whose split one of its replicas learned
/// of only through a snapshot (`Store::adopt_dropped`).
pub async fn collect_removed(stores: &[Arc<Store>], client: &RangeClient) {
    for store in stores.iter().filter(|s| !s.is_stopped()) {
        store.adopt_dropped(client).await;
        for replica in store.replicas() {
            if !replica.is_initialized() || (replica.is_leader() && !replica.is_frozen()) {
                continue;
            }
            let desc = replica.descriptor();
            let record = match client.meta_record(&desc.start_key).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(tablet = desc.tablet_id, store = store.id(), error = %e,
                        "cannot check whether a replica is still a member");
                    continue;
                }
            };
            // As new as this replica's own range, or newer, and without it: removed.
            if record.tablet_id == desc.tablet_id
                && record.generation >= desc.generation
                && !record.replicas.contains(&store.id())
            {
                tracing::info!(
                    tablet = desc.tablet_id,
                    store = store.id(),
                    "replica was removed from its group while away; deleting it"
                );
                replica.destroy();
            } else if let Some(freeze) = replica.freeze()
                && record.tablet_id != desc.tablet_id
                && record.generation > desc.generation
                && range::contains(&record, &desc.start_key)
                && store.replica(freeze.left.tablet_id).is_none()
            {
                // Only a merge gives a tablet's keys to another one (at a newer generation).
                // The left tablet's replica here would retire this one when it applies the
                // merge; there is none, so nothing here holds the keys.
                tracing::info!(
                    tablet = desc.tablet_id,
                    store = store.id(),
                    merged_into = record.tablet_id,
                    "replica of a merged tablet left behind; deleting it"
                );
                replica.destroy();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, expiration: u64, region: &str) -> pb::NodeLiveness {
        pb::NodeLiveness {
            node_id: id,
            expiration,
            region: region.into(),
            ..Default::default()
        }
    }

    fn desc(tablet: u64, replicas: &[u64]) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id: tablet,
            replicas: replicas.to_vec(),
            ..Default::default()
        }
    }

    const SEC: u64 = 1_000_000_000;

    /// The repairs with a 60 s dead-node timeout, three replicas, nothing leaving or stale.
    fn repairs(
        descs: &[RangeDescriptor],
        records: &[pb::NodeLiveness],
        now: Timestamp,
    ) -> Vec<Move> {
        plan_repairs(
            descs,
            records,
            now,
            Duration::from_secs(60),
            3,
            &BTreeSet::new(),
            &BTreeSet::new(),
        )
    }

    #[test]
    fn a_dead_node_is_replaced_on_the_least_loaded_live_node() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records = [
            node(1, 200 * SEC, ""),
            node(2, 200 * SEC, ""),
            node(3, 10 * SEC, ""), // dead for 90 s
            node(4, 200 * SEC, ""),
            node(5, 200 * SEC, ""),
        ];
        let descs = [
            desc(1, &[1, 2, 3]),
            desc(2, &[1, 2, 3]),
            desc(3, &[2, 4, 5]),
        ];
        let moves = repairs(&descs, &records, now);
        assert_eq!(moves.len(), 2);
        assert!(moves.iter().all(|m| m.from == Some(3)));
        // Nodes 4 and 5 hold one replica each; the two repairs go to different nodes.
        let targets: BTreeSet<u64> = moves.iter().filter_map(|m| m.to).collect();
        assert_eq!(targets, BTreeSet::from([4, 5]));
    }

    #[test]
    fn a_recently_expired_node_is_only_suspect() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records = [
            node(1, 200 * SEC, ""),
            node(2, 200 * SEC, ""),
            node(3, 90 * SEC, ""),
            node(4, 200 * SEC, ""),
        ];
        let descs = [desc(1, &[1, 2, 3])];
        assert!(repairs(&descs, &records, now).is_empty());
        assert_eq!(
            node_state(&records[2], now, Duration::from_secs(60)),
            NodeState::Suspect
        );
        let later = Timestamp::from_nanos(151 * SEC);
        assert_eq!(repairs(&descs, &records, later).len(), 1);
    }

    #[test]
    fn a_tablet_without_quorum_is_left_alone() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records = [
            node(1, 200 * SEC, ""),
            node(2, SEC, ""),
            node(3, SEC, ""),
            node(4, 200 * SEC, ""),
        ];
        let descs = [desc(1, &[1, 2, 3])];
        assert!(repairs(&descs, &records, now).is_empty());
    }

    #[test]
    fn repairs_prefer_a_region_the_tablet_does_not_use() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records = [
            node(1, 200 * SEC, "us"),
            node(2, 200 * SEC, "eu"),
            node(3, SEC, "ap"),
            node(4, 200 * SEC, "us"),
            node(5, 200 * SEC, "ap"),
        ];
        // Node 4 holds fewer replicas, but node 5 is in the region the tablet lost.
        let descs = [
            desc(1, &[1, 2, 3]),
            desc(2, &[1, 2, 5]),
            desc(3, &[2, 5, 1]),
        ];
        let moves = repairs(&descs[..1], &records, now);
        assert_eq!(moves[0].to, Some(5));
        let moves = repairs(&descs, &records, now);
        assert_eq!(moves[0].to, Some(5));
    }

    #[test]
    fn too_many_replicas_lose_one_and_too_few_gain_one() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records: Vec<_> = (1..=4).map(|i| node(i, 200 * SEC, "")).collect();
        let descs = [
            desc(1, &[1, 2, 3, 4]),
            desc(2, &[1, 2]),
            desc(3, &[1, 2, 3]),
        ];
        let moves = repairs(&descs, &records, now);
        assert_eq!(moves.len(), 2, "{moves:?}");
        assert_eq!((moves[0].desc.tablet_id, moves[0].to), (1, None));
        assert!(moves[0].from.is_some());
        assert_eq!((moves[1].desc.tablet_id, moves[1].from), (2, None));
        assert!(matches!(moves[1].to, Some(3 | 4)));
    }

    #[test]
    fn a_learner_is_left_alone_unless_stale_or_dead() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records: Vec<_> = (1..=4).map(|i| node(i, 200 * SEC, "")).collect();
        let adding = RangeDescriptor {
            learners: vec![4],
            ..desc(1, &[1, 2, 3, 4])
        };
        let none = BTreeSet::new();
        let plan = |records: &[pb::NodeLiveness], stale: &BTreeSet<(u64, u64)>| {
            plan_repairs(
                std::slice::from_ref(&adding),
                records,
                now,
                Duration::from_secs(60),
                3,
                &none,
                stale,
            )
        };
        // Being added: nothing to do (it is not a fourth voter).
        assert!(plan(&records, &BTreeSet::new()).is_empty());
        // A voter dies meanwhile: the learner replaces it.
        let mut voter_dead = records.clone();
        voter_dead[2].expiration = SEC;
        let m = plan(&voter_dead, &BTreeSet::new());
        assert_eq!((m[0].from, m[0].to), (Some(3), Some(4)));
        // Left over from an interrupted addition, or on a dead node: removed.
        let stale = BTreeSet::from([(1, 4)]);
        let m = plan(&records, &stale);
        assert_eq!((m[0].from, m[0].to), (Some(4), None));
        let mut dead = records.clone();
        dead[3].expiration = SEC;
        let m = plan(&dead, &BTreeSet::new());
        assert_eq!((m[0].from, m[0].to), (Some(4), None));
        // The driver's memory calls a learner stale only after a while.
        let memory = Memory::default();
        assert!(
            memory
                .stale_learners(std::slice::from_ref(&adding), now, Duration::from_secs(60))
                .is_empty()
        );
        let later = Timestamp::from_nanos(now.as_nanos() + 61 * SEC);
        assert_eq!(
            memory.stale_learners(
                std::slice::from_ref(&adding),
                later,
                Duration::from_secs(60)
            ),
            stale
        );
    }

    #[test]
    fn replicas_leave_a_decommissioning_node_for_staying_ones() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records: Vec<_> = (1..=5).map(|i| node(i, 200 * SEC, "")).collect();
        let descs = [
            desc(1, &[1, 2, 3]),
            desc(2, &[2, 3, 4]),
            desc(3, &[1, 3, 5]),
        ];
        let leaving = BTreeSet::from([3, 4]);
        let moves = plan_repairs(
            &descs,
            &records,
            now,
            Duration::from_secs(60),
            3,
            &leaving,
            &BTreeSet::new(),
        );
        assert_eq!(moves.len(), 3, "{moves:?}");
        for m in &moves {
            let from = m.from.unwrap();
            let to = m.to.unwrap();
            assert!(leaving.contains(&from), "{m:?}");
            assert!(
                !leaving.contains(&to) && !m.desc.replicas.contains(&to),
                "{m:?}"
            );
        }
    }

    #[test]
    fn a_node_leading_above_the_mean_hands_one_to_a_voter_leading_two_fewer() {
        let counted = |id: u64, leaders: u32, draining: bool| pb::NodeLiveness {
            leaders,
            draining,
            ..node(id, 10_000, "r")
        };
        // Live, not draining nodes with these leader counts.
        let leading = |counts: &[(u64, u32)]| -> Vec<pb::NodeLiveness> {
            counts
                .iter()
                .map(|&(id, n)| counted(id, n, false))
                .collect()
        };
        let now = Timestamp::from_nanos(5_000);
        let dead_after = Duration::from_secs(1);
        let led = |tablets: std::ops::Range<u64>| -> Vec<(u64, Vec<u64>)> {
            tablets.map(|t| (t, vec![1, 2, 3])).collect()
        };
        // Node 1 leads 6, nodes 2 and 3 lead 0 and 1: one goes to node 2.
        let records = leading(&[(1, 6), (2, 0), (3, 1)]);
        assert_eq!(
            plan_leader_move(1, &led(10..16), &records, now, dead_after),
            Some(LeaderMove { tablet: 10, to: 2 })
        );
        // Counts within one of each other: nothing moves.
        let records = leading(&[(1, 2), (2, 2), (3, 1)]);
        assert_eq!(
            plan_leader_move(1, &led(10..12), &records, now, dead_after),
            None
        );
        let records = leading(&[(1, 3), (2, 2), (3, 2)]);
        assert_eq!(
            plan_leader_move(1, &led(10..13), &records, now, dead_after),
            None
        );
        // Less than one above the mean, but two above a node: one moves there.
        let records = leading(&[(1, 3), (2, 3), (3, 1)]);
        assert_eq!(
            plan_leader_move(1, &led(10..13), &records, now, dead_after),
            Some(LeaderMove { tablet: 10, to: 3 })
        );
        // At or below the mean: nothing moves.
        let records = leading(&[(1, 1), (2, 5), (3, 0)]);
        assert_eq!(
            plan_leader_move(1, &led(10..11), &records, now, dead_after),
            None
        );
        // A draining or dead node gets nothing, and does not count in the mean.
        let records = [
            counted(1, 4, false),
            counted(2, 0, true),
            node(3, 1_000, "r"),
            counted(4, 4, false),
        ];
        let tablets: Vec<(u64, Vec<u64>)> = (10..14).map(|t| (t, vec![1, 2, 3, 4])).collect();
        assert_eq!(
            plan_leader_move(1, &tablets, &records, now, dead_after),
            None
        );
        // Only a voter of the tablet can take it: node 4 leads least but holds no replica of
        // tablet 10, so node 3 takes tablet 10 or node 4 tablet 11.
        let records = leading(&[(1, 6), (2, 3), (3, 1), (4, 0)]);
        let tablets = vec![(10, vec![1, 2, 3]), (11, vec![1, 2, 4])];
        let mut many: Vec<(u64, Vec<u64>)> = (12..16).map(|t| (t, vec![1, 2, 3])).collect();
        many.extend(tablets);
        assert_eq!(
            plan_leader_move(1, &many, &records, now, dead_after),
            Some(LeaderMove { tablet: 11, to: 4 })
        );
    }

    #[test]
    fn rebalancing_moves_a_replica_to_the_emptiest_node() {
        let now = Timestamp::from_nanos(100 * SEC);
        let records: Vec<_> = (1..=4).map(|i| node(i, 200 * SEC, "")).collect();
        let descs = [
            desc(1, &[1, 2, 3]),
            desc(2, &[1, 2, 3]),
            desc(3, &[1, 2, 3]),
        ];
        let m = plan_rebalance(&descs, &records, now, Duration::from_secs(60))
            .expect("node 4 holds nothing");
        assert_eq!((m.from, m.to), (Some(1), Some(4)));
        // Balanced within one replica: nothing to do.
        let balanced = [
            desc(1, &[1, 2, 3]),
            desc(2, &[2, 3, 4]),
            desc(3, &[1, 3, 4]),
        ];
        assert_eq!(
            plan_rebalance(&balanced, &records, now, Duration::from_secs(60)),
            None
        );
        // Not while a node is down.
        let mut down = records.clone();
        down[3].expiration = 90 * SEC;
        assert_eq!(
            plan_rebalance(&descs, &down, now, Duration::from_secs(60)),
            None
        );
    }
}
