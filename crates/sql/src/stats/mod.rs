//! Table statistics for the planner: per table its row count, and per column the number of
//! distinct non-NULL values, of NULLs and the average value size.
//!
//! ```text
//!  /sys/catalog/stats/<table id, u64 big-endian>  -> TableStatistics (protobuf)
//! ```
//!
//! * Collected by reading the whole table at one timestamp (`collect.rs`, counting distinct
//!   values with `sketch.rs`): by `ANALYZE [table]`, and in the background on the node where
//!   either (a) the rows written through it since the last collection reach
//!   [`STALE_MIN_ROWS`] plus [`STALE_FRACTION`] of the table's rows (CockroachDB's default
//!   rule; each gateway counts the INSERT, UPDATE, DELETE, COPY and TRUNCATE rows its own
//!   sessions commit), or (b) a statement joins a table that has none. No statement waits for
//!   a background collection.
//! * Stored in the catalog keyspace, so every gateway sees them. A collection reads the old
//!   statistics and the table's descriptor and writes the new ones only if neither changed
//!   meanwhile; each carries a generation, one more than the one it replaced. `DROP TABLE`
//!   deletes them.
//! * Read by planning through [`Statistics`], the engine's cache: a statement's descriptors
//!   get the statistics attached ([`TableDesc::stats`]); the cache re-reads a table's key at
//!   most every [`REFRESH`] of statement timestamps, outside the statement's transaction (a
//!   collection never conflicts with the statements that planned with the old statistics).
//! * Shown by `SHOW STATISTICS FOR TABLE t` (CockroachDB's columns), `pg_stats` and
//!   `pg_class.reltuples`.

mod collect;
mod commands;
pub(crate) mod sketch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_clock::Timestamp;
use meridian_proto::v1::{ColumnStatistics, TableStatistics};
use meridian_tablet::KvClient;
use prost::Message;
use tokio::sync::watch;

use crate::catalog::{FIRST_TABLE_ID, TableDesc};
use crate::error::{Error, Result};

/// Prefix of the statistics keys.
pub(crate) const STATS_PREFIX: &[u8] = b"/sys/catalog/stats/";
/// Rows written since the last collection that make statistics stale, besides
/// [`STALE_FRACTION`] of the table.
pub(crate) const STALE_MIN_ROWS: u64 = 500;
/// The fraction of a table's rows whose writing makes its statistics stale.
pub(crate) const STALE_FRACTION: f64 = 0.2;
/// How long (in statement timestamps) a node plans with statistics it read before reading
/// them again, to see collections made on other nodes.
const REFRESH: Duration = Duration::from_secs(10);
/// Attempts of a collection that keeps conflicting with concurrent DDL or collections.
const ATTEMPTS: u32 = 3;

/// Statistics of one table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableStats {
    pub row_count: u64,
    /// One per column the table had when collected.
    pub columns: Vec<ColumnStats>,
    /// The timestamp the table was read at.
    pub collected_at: Timestamp,
    /// Collected automatically rather than by ANALYZE.
    pub automatic: bool,
    /// 1 for the first collection of the table, one more for each later one.
    pub generation: u64,
}

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnStats {
    /// The column's stable id ([`crate::catalog::ColumnDesc::id`]).
    pub column_id: u32,
    /// Distinct non-NULL values.
    pub distinct: u64,
    pub nulls: u64,
    /// Average size in bytes of the non-NULL values.
    pub avg_size: u32,
}

impl TableStats {
    /// The statistics of the column with id `id`, if it existed when they were collected.
    pub(crate) fn column(&self, id: u32) -> Option<&ColumnStats> {
        self.columns.iter().find(|c| c.column_id == id)
    }

    fn to_proto(&self, table_id: u64) -> TableStatistics {
        TableStatistics {
            table_id,
            row_count: self.row_count,
            columns: self
                .columns
                .iter()
                .map(|c| ColumnStatistics {
                    column_id: c.column_id,
                    distinct_count: c.distinct,
                    null_count: c.nulls,
                    avg_size: c.avg_size,
                })
                .collect(),
            collected_at: self.collected_at.as_nanos(),
            automatic: self.automatic,
            generation: self.generation,
        }
    }

    fn from_proto(p: TableStatistics) -> TableStats {
        TableStats {
            row_count: p.row_count,
            columns: p
                .columns
                .into_iter()
                .map(|c| ColumnStats {
                    column_id: c.column_id,
                    distinct: c.distinct_count,
                    nulls: c.null_count,
                    avg_size: c.avg_size,
                })
                .collect(),
            collected_at: Timestamp::from_nanos(p.collected_at),
            automatic: p.automatic,
            generation: p.generation,
        }
    }
}

/// The key of table `table_id`'s statistics.
pub(crate) fn stats_key(table_id: u64) -> Vec<u8> {
    let mut k = STATS_PREFIX.to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

fn decode(bytes: &[u8]) -> Result<(u64, TableStats)> {
    let p = TableStatistics::decode(bytes)
        .map_err(|e| Error::Corrupt(format!("table statistics: {e}")))?;
    Ok((p.table_id, TableStats::from_proto(p)))
}

/// The stored form of `stats`.
fn encode(table_id: u64, stats: &TableStats) -> Vec<u8> {
    stats.to_proto(table_id).encode_to_vec()
}

/// Table `table_id`'s statistics as of `ts`.
pub(crate) async fn read(
    kv: &dyn KvClient,
    table_id: u64,
    ts: Timestamp,
) -> Result<Option<TableStats>> {
    match kv
        .get(&stats_key(table_id), ts)
        .await
        .map_err(Error::Read)?
    {
        Some(bytes) => decode(&bytes).map(|(_, s)| Some(s)),
        None => Ok(None),
    }
}

/// The statistics of every table as of `ts`, by table id.
pub(crate) async fn read_all(kv: &dyn KvClient, ts: Timestamp) -> Result<HashMap<u64, TableStats>> {
    let pairs = crate::catalog::scan_prefix(kv, STATS_PREFIX, ts).await?;
    pairs.iter().map(|(_, v)| decode(v)).collect()
}

/// Whether a relation can have statistics: a stored table (not a view, not a `pg_catalog`
/// table).
fn collectable(table: &TableDesc) -> bool {
    table.id >= FIRST_TABLE_ID && !table.is_view()
}

/// Whether statistics of a table of `row_count` rows are stale after `written` rows were
/// written.
fn stale(row_count: u64, written: u64) -> bool {
    written as f64 >= STALE_MIN_ROWS as f64 + STALE_FRACTION * row_count as f64
}

/// The engine's statistics: a cache of the stored statistics, the rows written per table
/// since the last collection, and the background collections.
#[derive(Clone)]
pub(crate) struct Statistics(Arc<Shared>);

struct Shared {
    /// The keyspace outside any transaction.
    kv: Arc<dyn KvClient>,
    /// Whether collections start by themselves.
    automatic: AtomicBool,
    tables: Mutex<HashMap<u64, Entry>>,
    /// Background collections running.
    running: watch::Sender<usize>,
}

/// What the engine knows about one table's statistics.
#[derive(Default)]
struct Entry {
    stats: Option<Arc<TableStats>>,
    /// The newest timestamp the stored statistics were read at.
    checked: Option<Timestamp>,
    /// Rows written through this engine since the statistics were collected.
    written: u64,
    /// A collection of this engine is running.
    collecting: bool,
    /// A join asked for a collection (made once per engine while the table has none).
    requested: bool,
}

impl Statistics {
    /// Statistics stored in `kv`, collected automatically.
    pub(crate) fn new(kv: Arc<dyn KvClient>) -> Statistics {
        Statistics(Arc::new(Shared {
            kv,
            automatic: AtomicBool::new(true),
            tables: Mutex::new(HashMap::new()),
            running: watch::channel(0).0,
        }))
    }

    /// Turns automatic collection on or off (ANALYZE works either way).
    pub(crate) fn set_automatic(&self, on: bool) {
        self.0.automatic.store(on, Ordering::Relaxed);
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // The map stays consistent even if a holder panicked: every update is one assignment.
        self.0
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The statistics to plan a statement reading at `ts` with: the cached ones, read again
    /// when older than [`REFRESH`]. A failed read plans with what is cached (statistics only
    /// guide the planner).
    pub(crate) async fn lookup(&self, table: &TableDesc, ts: Timestamp) -> Option<Arc<TableStats>> {
        if !collectable(table) {
            return None;
        }
        if let Some(e) = self.tables().get(&table.id)
            && e.checked.is_some_and(|c| ts <= c.saturating_add(REFRESH))
        {
            return e.stats.clone();
        }
        let stored = read(self.0.kv.as_ref(), table.id, ts).await;
        let mut tables = self.tables();
        let e = tables.entry(table.id).or_default();
        match stored {
            Ok(stored) => {
                // A collection of this engine may have finished meanwhile: keep the newer.
                if let Some(s) = stored
                    && e.stats
                        .as_ref()
                        .is_none_or(|c| c.generation <= s.generation)
                {
                    e.stats = Some(Arc::new(s));
                }
                e.checked = e.checked.max(Some(ts));
            }
            Err(err) => {
                tracing::debug!(table = %table.name, error = %err, "reading table statistics failed");
            }
        }
        e.stats.clone()
    }

    /// `table` with its statistics attached.
    pub(crate) async fn attach(&self, mut table: TableDesc, ts: Timestamp) -> TableDesc {
        table.stats = self.lookup(&table, ts).await;
        table
    }

    /// Records that a statement committed `rows` changed rows of `table`; starts a
    /// background collection when that makes the table's statistics stale.
    pub(crate) fn wrote(&self, table: &Arc<TableDesc>, rows: u64) {
        if rows == 0 || !collectable(table) {
            return;
        }
        let automatic = self.0.automatic.load(Ordering::Relaxed);
        let start = {
            let mut tables = self.tables();
            let e = tables.entry(table.id).or_default();
            e.written = e.written.saturating_add(rows);
            let row_count = e.stats.as_ref().map_or(0, |s| s.row_count);
            let start = automatic && !e.collecting && stale(row_count, e.written);
            if start {
                e.collecting = true;
            }
            start
        };
        if start {
            self.spawn(table.clone(), false);
        }
    }

    /// Starts a background collection of `table` if it has no statistics and none was asked
    /// for yet (a statement joins it).
    pub(crate) fn request(&self, table: &Arc<TableDesc>) {
        if table.stats.is_some() || !collectable(table) || !self.0.automatic.load(Ordering::Relaxed)
        {
            return;
        }
        {
            let mut tables = self.tables();
            let e = tables.entry(table.id).or_default();
            if e.stats.is_some() || e.requested || e.collecting {
                return;
            }
            e.requested = true;
            e.collecting = true;
        }
        self.spawn(table.clone(), true);
    }

    /// Runs a collection of `table` in the background (the caller set `collecting`).
    /// `missing`: asked for because the table has no statistics; otherwise because rows were
    /// written, which stored statistics from another node may already cover.
    fn spawn(&self, table: Arc<TableDesc>, missing: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.finished(table.id, None, 0);
            return;
        };
        self.0.running.send_modify(|n| *n += 1);
        let this = self.clone();
        runtime.spawn(async move {
            let written = this.tables().get(&table.id).map_or(0, |e| e.written);
            let r = this.collect_in_background(&table, missing, written).await;
            match r {
                Ok(stats) => this.finished(table.id, stats, written),
                Err(e) => {
                    tracing::info!(table = %table.name, error = %e, "automatic statistics collection failed");
                    this.finished(table.id, None, 0);
                }
            }
            this.0.running.send_modify(|n| *n -= 1);
        });
    }

    async fn collect_in_background(
        &self,
        table: &TableDesc,
        missing: bool,
        written: u64,
    ) -> Result<Option<Arc<TableStats>>> {
        let kv = self.0.kv.as_ref();
        if !missing {
            // Another node may have collected since this one last looked.
            let ts = kv.read_ts().await.map_err(Error::Read)?;
            if let Some(s) = read(kv, table.id, ts).await?
                && !stale(s.row_count, written)
            {
                let s = Arc::new(s);
                let mut tables = self.tables();
                let e = tables.entry(table.id).or_default();
                e.stats = Some(s);
                e.checked = e.checked.max(Some(ts));
                e.collecting = false;
                return Ok(None);
            }
        }
        self.collect(table, true).await
    }

    /// Collects `table`'s statistics now (`ANALYZE`): `None` when the table is gone or is no
    /// longer the table of that name.
    pub(crate) async fn analyze(&self, table: &TableDesc) -> Result<Option<Arc<TableStats>>> {
        if !collectable(table) {
            return Ok(None);
        }
        let written = self.tables().get(&table.id).map_or(0, |e| e.written);
        let stats = self.collect(table, false).await?;
        let mut tables = self.tables();
        let e = tables.entry(table.id).or_default();
        if let Some(s) = &stats {
            e.stats = Some(s.clone());
            e.written = e.written.saturating_sub(written);
        }
        Ok(stats)
    }

    /// Collects and stores `table`'s statistics, retrying conflicts.
    async fn collect(&self, table: &TableDesc, automatic: bool) -> Result<Option<Arc<TableStats>>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match collect::collect(self.0.kv.as_ref(), &table.name, table.id, automatic).await {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    tracing::debug!(table = %table.name, error = %e, "retrying statistics collection");
                }
                r => return r.map(|s| s.map(Arc::new)),
            }
        }
    }

    /// Ends a background collection: `stats` were collected after `written` rows had been
    /// written.
    fn finished(&self, table_id: u64, stats: Option<Arc<TableStats>>, written: u64) {
        let mut tables = self.tables();
        let e = tables.entry(table_id).or_default();
        e.collecting = false;
        if let Some(s) = stats {
            e.stats = Some(s);
            e.written = e.written.saturating_sub(written);
        }
    }

    /// Waits until no background collection runs.
    #[cfg(test)]
    pub(crate) async fn idle(&self) {
        let mut rx = self.0.running.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests;
