//! Faults and latency injected into the traffic between nodes: links can be cut (partitions)
//! or delayed (simulated distance between regions). Every node-to-node path (Raft messages and
//! forwarded key-value requests) consults the [`NetworkSim`] its node was configured with;
//! client SQL connections are never affected.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

/// The state of a directed link between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Traffic flows.
    Up,
    /// Traffic is dropped.
    Down,
    /// Traffic flows after this one-way delay.
    Delay(Duration),
}

/// A shared table of link states by (from node id, to node id). Links not in the table are up.
#[derive(Debug, Default)]
pub struct NetworkSim {
    links: RwLock<HashMap<(u64, u64), Link>>,
}

impl NetworkSim {
    /// All links up.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of the link from `from` to `to`.
    pub fn link(&self, from: u64, to: u64) -> Link {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        links.get(&(from, to)).copied().unwrap_or(Link::Up)
    }

    /// Sets both directions between `a` and `b`.
    pub fn set(&self, a: u64, b: u64, link: Link) {
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        links.insert((a, b), link);
        links.insert((b, a), link);
    }

    /// Cuts `node` off from every node in `others`.
    pub fn isolate(&self, node: u64, others: impl IntoIterator<Item = u64>) {
        for other in others.into_iter().filter(|o| *o != node) {
            self.set(node, other, Link::Down);
        }
    }

    /// Every link up, no delays.
    pub fn heal(&self) {
        self.links
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// When something sent now from `from` reaches `to`: `None` if the link is down,
    /// `Some(None)` at once, `Some(Some(t))` at `t` (a delayed link).
    pub(crate) fn arrival(&self, from: u64, to: u64) -> Option<Option<tokio::time::Instant>> {
        match self.link(from, to) {
            Link::Up => Some(None),
            Link::Down => None,
            // The deadline of a sleep started now: the clock tokio's timers run on.
            Link::Delay(d) => Some(Some(tokio::time::sleep(d).deadline())),
        }
    }

    /// Waits out the link's delay; false if the link is down.
    pub(crate) async fn traverse(&self, from: u64, to: u64) -> bool {
        match self.link(from, to) {
            Link::Up => true,
            Link::Down => false,
            Link::Delay(d) => {
                tokio::time::sleep(d).await;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_default_up_and_partitions_are_symmetric() {
        let net = NetworkSim::new();
        assert_eq!(net.link(1, 2), Link::Up);
        net.isolate(1, [1, 2, 3]);
        assert_eq!(net.link(1, 2), Link::Down);
        assert_eq!(net.link(3, 1), Link::Down);
        assert_eq!(net.link(2, 3), Link::Up);
        net.set(2, 3, Link::Delay(Duration::from_millis(5)));
        assert_eq!(net.link(3, 2), Link::Delay(Duration::from_millis(5)));
        net.heal();
        assert_eq!(net.link(1, 2), Link::Up);
    }

    #[tokio::test]
    async fn a_delayed_link_says_when_what_is_sent_now_arrives() {
        let net = NetworkSim::new();
        net.set(1, 2, Link::Delay(Duration::from_millis(40)));
        net.set(1, 3, Link::Down);
        assert_eq!(
            net.arrival(1, 4),
            Some(None),
            "an undelayed link delivers at once"
        );
        assert_eq!(net.arrival(1, 3), None, "a cut link delivers nothing");
        let due = net.arrival(2, 1).flatten().expect("delayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let next = net.arrival(1, 2).flatten().expect("delayed");
        // Each send counts from its own start: delays overlap rather than add up.
        assert!(next - due >= Duration::from_millis(10));
        tokio::time::sleep_until(due).await;
        let after = net.arrival(1, 2).flatten().expect("delayed");
        assert!(after - due >= Duration::from_millis(40));
    }
}
