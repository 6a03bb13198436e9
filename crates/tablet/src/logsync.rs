//! Group commit of Raft log writes: the replicas of one store share its engine, and so its
//! journal; one fsync makes every write issued before it durable. Each replica writes its
//! Ready's entries and hard state unsynced, then waits in [`LogSync::sync`]: the first waiter
//! runs an fsync (on a blocking thread, so the replicas' tasks keep running), and every replica
//! that wrote meanwhile is covered by the next one, which a waiter starts as soon as the
//! running one ends. A replica still sends its votes and append acknowledgements, and applies
//! its entries, only after its own writes are durable (`Driver::on_ready`): the batching only
//! lets many groups share the fsync (CockroachDB and TiKV batch their Raft log writes across
//! groups for the same reason).
//!
//! ```text
//!   replica A: write ─ sync ─┐           ┌─ acknowledge
//!   replica B:   write ─ sync┼─ fsync ───┤─ acknowledge
//!   replica C:       write ─ sync ───────┴─ (next fsync) ─ acknowledge
//! ```

use std::sync::{Arc, Mutex};

use meridian_storage::{Durability, KvEngine, WriteBatch};
use tokio::sync::Notify;

use crate::{Error, Result};

/// Makes a store's unsynced writes durable, one fsync for all the writers waiting.
pub struct LogSync {
    engine: Arc<dyn KvEngine>,
    state: Mutex<State>,
    /// Woken when an fsync ends.
    synced: Notify,
}

#[derive(Default)]
struct State {
    /// Tickets handed out: a writer takes one after its write.
    issued: u64,
    /// Every write whose ticket is at or below this is durable.
    durable: u64,
    /// An fsync is running.
    running: bool,
    /// An fsync failed: nothing written since can be trusted to become durable.
    failed: Option<String>,
    /// fsyncs run, and the writers they covered (for tests and benchmarks).
    syncs: u64,
    covered: u64,
}

impl std::fmt::Debug for LogSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (syncs, covered) = self.counts();
        f.debug_struct("LogSync")
            .field("syncs", &syncs)
            .field("covered", &covered)
            .finish_non_exhaustive()
    }
}

impl LogSync {
    /// Group commit for writes to `engine`.
    pub fn new(engine: Arc<dyn KvEngine>) -> Arc<LogSync> {
        Arc::new(LogSync {
            engine,
            state: Mutex::new(State::default()),
            synced: Notify::new(),
        })
    }

    /// Whether this syncs `engine`.
    pub fn is_for(&self, engine: &Arc<dyn KvEngine>) -> bool {
        Arc::ptr_eq(&self.engine, engine)
    }

    /// How many fsyncs ran, and how many [`LogSync::sync`] calls they made durable.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.syncs, s.covered)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once every write the caller made to the engine before calling is durable.
    pub async fn sync(&self) -> Result<()> {
        let ticket = {
            let mut s = self.lock();
            s.issued += 1;
            s.issued
        };
        loop {
            // Registered before the state is checked, so that an fsync ending in between
            // still wakes this waiter.
            let woken = self.synced.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let target = {
                let mut s = self.lock();
                if let Some(e) = &s.failed {
                    return Err(Error::Internal(format!("the log fsync failed: {e}")));
                }
                if s.durable >= ticket {
                    return Ok(());
                }
                if s.running {
                    None
                } else {
                    // This waiter runs the next fsync, for every ticket issued so far: each
                    // one's write came before this fsync starts.
                    s.running = true;
                    Some(s.issued)
                }
            };
            let Some(target) = target else {
                woken.await;
                continue;
            };
            // Should this future be dropped while the fsync runs, another waiter takes over.
            let guard = RunningGuard(self);
            let engine = self.engine.clone();
            let result = tokio::task::spawn_blocking(move || {
                engine.write(WriteBatch::new(), Durability::Sync)
            })
            .await;
            std::mem::forget(guard);
            {
                let mut s = self.lock();
                s.running = false;
                match result {
                    Ok(Ok(())) => {
                        s.syncs += 1;
                        s.covered += target - s.durable;
                        crate::metrics::LOG_FSYNCS.inc();
                        crate::metrics::LOG_SYNCED_WRITES.inc_by(target - s.durable);
                        s.durable = target;
                    }
                    Ok(Err(e)) => s.failed = Some(e.to_string()),
                    Err(e) => s.failed = Some(format!("the fsync task failed: {e}")),
                }
            }
            self.synced.notify_waiters();
        }
    }
}

/// Ends the running fsync's claim if its waiter goes away before it completes.
struct RunningGuard<'a>(&'a LogSync);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
        self.0.synced.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use meridian_storage::{MemEngine, Space};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_fsync_covers_the_writers_waiting_and_each_write_is_durable_when_synced() {
        let mem = Arc::new(MemEngine::new());
        let engine: Arc<dyn KvEngine> = mem.clone();
        let sync = LogSync::new(engine.clone());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let (engine, sync) = (engine.clone(), sync.clone());
            tasks.push(tokio::spawn(async move {
                let mut batch = WriteBatch::new();
                batch.put(Space::RaftLog, i.to_be_bytes().to_vec(), vec![1]);
                engine.write(batch, Durability::NoSync).unwrap();
                sync.sync().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (syncs, covered) = sync.counts();
        assert_eq!(covered, 64);
        assert!((1..=64).contains(&syncs));
        assert_eq!(mem.unsynced_batches(), 0);
        mem.crash();
        for i in 0..64u32 {
            assert!(
                engine
                    .get(Space::RaftLog, &i.to_be_bytes())
                    .unwrap()
                    .is_some(),
                "write {i} survived the crash"
            );
        }
    }
}
