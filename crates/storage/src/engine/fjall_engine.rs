//! [`KvEngine`] on fjall, a pure-Rust LSM tree.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use super::{BatchOp, Durability, KeyRange, KvEngine, KvIter, ScanOrder, Space, WriteBatch};
use crate::error::Result;

/// fjall's background workers, which do both flushes and compactions. fjall takes as many as
/// there are cores, up to four; on a two-core machine two long compactions then hold back
/// every flush, sealed memtables pile up and writes halt. Four leave room for a flush.
const WORKERS: usize = 4;

/// The on-disk engine: one fjall `Database` (one shared journal) with one fjall keyspace per
/// [`Space`], so a batch across spaces is one atomic journal record.
///
/// [`Durability::Sync`] fsyncs the journal (`PersistMode::SyncAll`); [`Durability::NoSync`]
/// hands the record to the OS (`PersistMode::Buffer`), which survives a process crash but not
/// a machine crash. The journal is sequential, so a lost write never precedes a kept one.
#[derive(Clone)]
pub struct FjallEngine {
    db: Database,
    spaces: [Keyspace; 4],
}

impl FjallEngine {
    /// Opens (creating if needed) the engine stored in directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let db = Database::builder(dir.as_ref())
            .worker_threads(WORKERS)
            .open()?;
        let open = |space: Space| db.keyspace(space.name(), KeyspaceCreateOptions::default);
        let spaces = [
            open(Space::Data)?,
            open(Space::RaftLog)?,
            open(Space::RaftState)?,
            open(Space::Meta)?,
        ];
        tracing::debug!(dir = %dir.as_ref().display(), "opened fjall engine");
        Ok(FjallEngine { db, spaces })
    }

    fn space(&self, space: Space) -> &Keyspace {
        &self.spaces[space.index()]
    }
}

impl std::fmt::Debug for FjallEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallEngine").finish_non_exhaustive()
    }
}

impl KvEngine for FjallEngine {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.space(space).get(key)?.map(|v| v.to_vec()))
    }

    fn iter(&self, space: Space, range: KeyRange, order: ScanOrder) -> Result<KvIter> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        // `Keyspace::range` reads at the newest sequence number as it goes; a database
        // snapshot pins the iterator to the state at this moment.
        let iter = self
            .db
            .snapshot()
            .range(self.space(space), (range.start, range.end));
        let pairs = move |guard: fjall::Guard| {
            let (k, v) = guard.into_inner()?;
            Ok((k.to_vec(), v.to_vec()))
        };
        Ok(match order {
            ScanOrder::Forward => Box::new(iter.map(pairs)),
            ScanOrder::Reverse => Box::new(iter.rev().map(pairs)),
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let mode = match durability {
            Durability::Sync => PersistMode::SyncAll,
            Durability::NoSync => PersistMode::Buffer,
        };
        if batch.is_empty() {
            // fjall skips empty batches entirely; a Sync must still cover earlier writes.
            if durability == Durability::Sync {
                self.db.persist(mode)?;
            }
            return Ok(());
        }
        let mut b = self.db.batch().durability(Some(mode));
        for op in batch.ops {
            match op {
                BatchOp::Put { space, key, value } => b.insert(self.space(space), key, value),
                BatchOp::Delete { space, key } => b.remove(self.space(space), key),
            }
        }
        b.commit()?;
        Ok(())
    }

    fn write_backlog(&self) -> super::WriteBacklog {
        self.spaces
            .iter()
            .map(|k| super::WriteBacklog {
                sealed_memtables: k.sealed_memtable_count(),
                l0_tables: k.l0_table_count(),
            })
            .fold(super::WriteBacklog::default(), |a, b| super::WriteBacklog {
                sealed_memtables: a.sealed_memtables.max(b.sealed_memtables),
                l0_tables: a.l0_tables.max(b.l0_tables),
            })
    }
}
