//! Drives a real single-node raft-rs `RawNode` over `RaftLogStore` and `Mvcc`, restarting it
//! from the engine, to check that the store gives raft-rs what it needs to recover.

use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_storage::engine::{Durability, FjallEngine, KvEngine, MemEngine};
use meridian_storage::mvcc::Mvcc;
use meridian_storage::raftlog::RaftLogStore;
use raft::prelude::{ConfState, Entry, EntryType};
use raft::{Config, RawNode, Storage};

const GROUP: u64 = 1;

struct Node {
    raw: RawNode<RaftLogStore>,
    store: RaftLogStore,
    mvcc: Mvcc,
    /// Durability of state machine writes (the log is always synced).
    apply_durability: Durability,
}

impl Node {
    fn start(engine: Arc<dyn KvEngine>, apply_durability: Durability) -> Node {
        let store = RaftLogStore::open(engine.clone(), GROUP).unwrap();
        if !store.is_initialized() {
            store
                .initialize(ConfState::from((vec![1], vec![])))
                .unwrap();
        }
        let mvcc = Mvcc::new(engine);
        let config = Config {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 3,
            applied: mvcc.applied_index(GROUP).unwrap(),
            ..Config::default()
        };
        let raw = RawNode::new(&config, store.clone(), &raft::default_logger()).unwrap();
        let mut node = Node {
            raw,
            store,
            mvcc,
            apply_durability,
        };
        node.raw.campaign().unwrap();
        node.drain();
        node
    }

    fn put(&mut self, key: &str, value: &str) {
        self.raw
            .propose(vec![], format!("{key}={value}").into_bytes())
            .unwrap();
        self.drain();
    }

    /// Handles Readys in raft-rs's order until there are none.
    fn drain(&mut self) {
        while self.raw.has_ready() {
            let mut ready = self.raw.ready();
            // A single node sends no messages and receives no snapshots.
            assert!(ready.messages().is_empty() && ready.snapshot().get_metadata().index == 0);
            let committed = ready.take_committed_entries();
            self.apply(&committed);
            self.store
                .persist(ready.entries(), ready.hs(), Durability::Sync)
                .unwrap();
            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                let mut hs = self.store.hard_state();
                hs.commit = commit;
                self.store
                    .persist(&[], Some(&hs), Durability::Sync)
                    .unwrap();
            }
            let committed = light.take_committed_entries();
            self.apply(&committed);
            self.raw.advance_apply();
        }
    }

    /// Applies entries to the MVCC store, each entry's index serving as its timestamp, with
    /// the applied index in the same atomic write.
    fn apply(&self, entries: &[Entry]) {
        let Some(last) = entries.last() else { return };
        let mut batch = self.mvcc.batch();
        for e in entries {
            assert_eq!(e.get_entry_type(), EntryType::EntryNormal);
            if let Some((k, v)) = std::str::from_utf8(&e.data).unwrap().split_once('=') {
                batch.put(k.as_bytes(), Timestamp::from_nanos(e.index), v.as_bytes());
            }
        }
        batch.set_applied_index(GROUP, last.index);
        batch.commit(self.apply_durability).unwrap();
    }

    fn read(&self, key: &str) -> Option<String> {
        self.mvcc
            .get(key.as_bytes(), Timestamp::MAX)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }
}

#[test]
fn node_restarts_from_fjall() {
    let dir = tempfile::tempdir().unwrap();
    let last_index = {
        let mut node = Node::start(
            Arc::new(FjallEngine::open(dir.path()).unwrap()),
            Durability::Sync,
        );
        node.put("a", "1");
        node.put("b", "2");
        node.put("a", "3");
        assert_eq!(node.read("a").as_deref(), Some("3"));
        node.store.last_index().unwrap()
    };
    let mut node = Node::start(
        Arc::new(FjallEngine::open(dir.path()).unwrap()),
        Durability::Sync,
    );
    // Everything before the restart is still there, and the new term's entries follow it.
    assert!(node.store.last_index().unwrap() > last_index);
    assert_eq!(
        node.mvcc.applied_index(GROUP).unwrap(),
        node.store.hard_state().commit
    );
    assert_eq!(node.read("a").as_deref(), Some("3"));
    assert_eq!(node.read("b").as_deref(), Some("2"));
    node.put("c", "4");
    assert_eq!(node.read("c").as_deref(), Some("4"));
    assert_eq!(node.raw.raft.term, 2);
}

#[test]
fn unsynced_applies_are_replayed_from_the_log_after_a_crash() {
    let mem = Arc::new(MemEngine::new());
    let mut node = Node::start(mem.clone(), Durability::NoSync);
    node.put("x", "1");
    node.put("y", "2");
    let commit = node.store.hard_state().commit;
    assert_eq!(node.mvcc.applied_index(GROUP).unwrap(), commit);
    drop(node);
    // The log was synced but the applied data was not: after the crash the applied index
    // and the data it covers are gone together.
    mem.crash();
    let engine: Arc<dyn KvEngine> = mem.clone();
    assert!(Mvcc::new(engine).applied_index(GROUP).unwrap() < commit);
    let node = Node::start(mem.clone(), Durability::NoSync);
    assert!(node.mvcc.applied_index(GROUP).unwrap() >= commit);
    assert_eq!(node.read("x").as_deref(), Some("1"));
    assert_eq!(node.read("y").as_deref(), Some("2"));
}
