//! Execution of plans over a [`KvClient`] at one read timestamp.
//!
//! Execution is row-at-a-time over vectors of [`crate::Datum`] rows: each operator of a
//! [`Rel`] tree materializes its result (`run.rs`), except the subtrees `vector/` runs on
//! Arrow record batches (a table scan with the filters, projections and aggregation above it,
//! when `meridian.vectorize` is on and everything in the subtree has a kernel), which hand
//! the same rows on. Expressions are evaluated synchronously;
//! the subqueries they contain are computed first by the [`Executor`] (`eval.rs`). Every key
//! range or key a statement reads is recorded in [`Executor::spans`], so a write can carry them
//! for validation.
//!
//! * `run.rs`: the operators; `scan.rs`: table and index reads; `join.rs`: hash, nested-loop
//!   and lookup joins; `setop.rs`, `window.rs`, `aggregate.rs`;
//! * `dml.rs`, `ddl.rs`, `index.rs` (index maintenance and backfill): writes;
//! * `vector/`: columnar execution of scans, filters, projections and aggregation;
//! * `memory.rs`: what the operators that retain rows hold, against the statement's limit;
//!   `analyze.rs`: EXPLAIN ANALYZE, which runs a statement with a [`Profile`] of its operators.

mod aggregate;
mod alter;
mod analyze;
mod ddl;
mod dml;
mod eval;
mod index;
mod join;
mod memory;
mod rowid;
mod run;
mod scan;
mod sequence;
mod setop;
mod users;
pub(crate) mod vector;
mod window;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use meridian_clock::Timestamp;
use meridian_tablet::{KvClient, KvPair, Span};

pub(crate) use analyze::Profile;
pub(crate) use memory::MemoryPool;
pub(crate) use rowid::RowIdGen;

use crate::api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
use crate::error::Result;
use crate::expr::{Env, ScalarExpr, SubqueryValue};
use crate::plan::{Plan, Rel};

/// A boxed future, for the executor's recursion over plan trees.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A row.
pub(crate) type Row = Vec<Datum>;

/// `[start, end)` of keys.
type ByteRange = (Vec<u8>, Vec<u8>);

/// Rows an operator may produce before the statement fails with 53200 (out of memory): a
/// guard for the operators that do not account their memory (scans, filters, projections).
const MAX_ROWS: usize = 20_000_000;

/// Per-session state statements read and change.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// Values of hidden `rowid` keys and `unique_rowid()`.
    pub rowids: RowIdGen,
    /// The value `nextval` last returned in this session, per sequence (for `currval`).
    pub currvals: HashMap<String, i64>,
    /// State of `random()` (splitmix64).
    pub random: u64,
}

impl SessionState {
    /// The state of session number `id`.
    pub(crate) fn new(id: u64) -> SessionState {
        SessionState {
            rowids: RowIdGen::new(id),
            currvals: HashMap::new(),
            random: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }
}

/// Everything a statement's execution needs.
pub(crate) struct ExecContext<'a> {
    /// The keyspace as the statement's transaction sees it.
    pub kv: &'a dyn KvClient,
    /// The keyspace outside any transaction, for what is not transactional (sequences).
    pub base: &'a dyn KvClient,
    /// The snapshot all reads of the statement use; writes are validated against it.
    pub read_ts: Timestamp,
    /// The session's state that statements change (rowids, sequence values).
    pub state: &'a Arc<Mutex<SessionState>>,
    /// Values of `$1`, `$2`, ...
    pub params: &'a [Datum],
    /// The memory the statement's operators may hold (`meridian.query_memory_limit`).
    pub memory: MemoryPool,
    /// Under EXPLAIN ANALYZE: where the operators record what they did.
    pub profile: Option<Arc<Profile>>,
    /// Plans run on Arrow batches where they can (`meridian.vectorize`, `vector/`).
    pub vectorize: bool,
    /// The rows the statement's writes changed, per table (for the tables' statistics).
    pub written: Vec<(Arc<crate::catalog::TableDesc>, u64)>,
}

/// Reads of one statement: at one timestamp, with the caches that make repeated subqueries
/// cheap, recording what was read.
pub(crate) struct Executor<'a> {
    pub kv: &'a dyn KvClient,
    /// See [`ExecContext::base`].
    pub base: &'a dyn KvClient,
    pub ts: Timestamp,
    pub params: &'a [Datum],
    pub state: Arc<Mutex<SessionState>>,
    /// Every key and range read so far.
    pub spans: Vec<Span>,
    /// Values of uncorrelated subqueries, and of correlated ones by their outer values.
    subqueries: HashMap<(usize, Vec<u8>), SubqueryValue>,
    /// Ranges already read by this statement. A transaction may move its snapshot forward
    /// while the statement runs (after a row lock, see `txn/buffer.rs`), but only after
    /// checking that nothing it read changed, so what is cached here stays what it would read.
    ranges: HashMap<ByteRange, Arc<Vec<KvPair>>>,
    /// The table whose rows this statement reads in order to change them (UPDATE, DELETE):
    /// its rows are read by primary key with [`KvClient::get_for_update`], which takes their
    /// locks inside a transaction block.
    pub lock_table: Option<u64>,
    /// Every row read by primary key is read for update (`SELECT ... FOR UPDATE`).
    pub lock_all: bool,
    /// The statement reads one table by primary key and its result depends only on these
    /// columns of it (see [`compared_columns`]): its rows are read with
    /// [`KvClient::get_compared`].
    pub compared: Option<(u64, Arc<Vec<usize>>)>,
    /// See [`ExecContext::memory`].
    memory: MemoryPool,
    /// See [`ExecContext::profile`].
    profile: Option<Arc<Profile>>,
    /// The profile key of the operator running now ([`analyze::STATEMENT`] outside them).
    node: usize,
    /// See [`ExecContext::vectorize`].
    vectorize: bool,
}

impl<'a> Executor<'a> {
    pub(crate) fn new(cx: &ExecContext<'a>) -> Executor<'a> {
        Executor {
            kv: cx.kv,
            base: cx.base,
            ts: cx.read_ts,
            params: cx.params,
            state: cx.state.clone(),
            spans: Vec::new(),
            subqueries: HashMap::new(),
            ranges: HashMap::new(),
            lock_table: None,
            lock_all: false,
            compared: None,
            memory: cx.memory.clone(),
            profile: cx.profile.clone(),
            node: analyze::STATEMENT,
            vectorize: cx.vectorize,
        }
    }

    /// The environment of the statement's top level.
    pub(crate) fn env(&self) -> Env<'a> {
        Env {
            params: self.params,
            outer: &[],
            subqueries: None,
        }
    }

    /// Runs `rel` at the top level of the statement.
    pub(crate) async fn query(&mut self, rel: &Rel) -> Result<Vec<Row>> {
        let env = self.env();
        self.run(rel, env, None).await
    }

    /// An empty reservation of statement memory for the running operator, which EXPLAIN
    /// ANALYZE calls `operator`.
    pub(crate) fn reserve(&self, operator: &'static str) -> memory::Reservation {
        let report = self.profile.clone().map(|p| (p, self.node));
        self.memory.reserve(operator, report)
    }

    /// The value of `key`, read at the statement's snapshot and recorded as read.
    pub(crate) async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read_key(key, false).await
    }

    /// [`Executor::get`], reading for update when `for_update` (inside a transaction block
    /// the row's lock is taken first, see [`KvClient::get_for_update`]).
    pub(crate) async fn read_key(
        &mut self,
        key: &[u8],
        for_update: bool,
    ) -> Result<Option<Vec<u8>>> {
        let how = if for_update {
            Read::ForUpdate
        } else {
            Read::Plain
        };
        self.read_key_as(key, how).await
    }

    /// The value of `key`, read as `how` says and recorded as read.
    pub(crate) async fn read_key_as(&mut self, key: &[u8], how: Read) -> Result<Option<Vec<u8>>> {
        let read = match how {
            Read::Plain => self.kv.get(key, self.ts).await,
            Read::ForUpdate => self.kv.get_for_update(key, self.ts).await,
            Read::Compared(same) => self.kv.get_compared(key, self.ts, same).await,
        };
        let value = read.map_err(crate::error::Error::Read)?;
        let span = Span {
            start: key.to_vec(),
            end: None,
        };
        if let Some(p) = &self.profile {
            let bytes = value.as_ref().map_or(0, |v| key.len() + v.len());
            p.read(self.node, span.clone(), usize::from(value.is_some()), bytes);
        }
        self.spans.push(span);
        Ok(value)
    }
}

/// How a row is read by key.
pub(crate) enum Read {
    /// At the snapshot, recorded for validation.
    Plain,
    /// For update: locked first inside a transaction block.
    ForUpdate,
    /// At the snapshot, for a result that depends only on what the comparison looks at.
    Compared(meridian_tablet::SameResult),
}

/// For a query that reads one table by primary key, filters and projects it and nothing else
/// (`SELECT a, b FROM t WHERE k = $1`): the table and the columns its result depends on. A
/// later change to the row's other columns leaves the result as it was, so a transaction
/// need not fail over it. `None` for any other shape, and for expressions with subqueries or
/// volatile calls.
pub(crate) fn compared_columns(rel: &Rel) -> Option<(u64, Arc<Vec<usize>>)> {
    let Rel::Project { input, exprs } = rel else {
        return None;
    };
    let (scan, predicate) = match &**input {
        Rel::Scan(s) => (s, None),
        Rel::Filter { input, predicate } => match &**input {
            Rel::Scan(s) => (s, Some(predicate)),
            _ => return None,
        },
        _ => return None,
    };
    if scan.access != crate::plan::Access::Primary {
        return None;
    }
    let mut columns = std::collections::BTreeSet::new();
    for e in exprs.iter().chain(predicate).chain(scan.filter.as_ref()) {
        if !column_refs(e, &mut columns) {
            return None;
        }
    }
    Some((scan.table.id, Arc::new(columns.into_iter().collect())))
}

/// Adds the input columns `e` refers to; false when its value depends on more than its input
/// row and parameters.
fn column_refs(e: &ScalarExpr, out: &mut std::collections::BTreeSet<usize>) -> bool {
    match e {
        ScalarExpr::Column(i, _) => {
            out.insert(*i);
            true
        }
        ScalarExpr::Subquery(_) | ScalarExpr::Volatile(_) | ScalarExpr::Outer(..) => false,
        other => other.children().into_iter().all(|c| column_refs(c, out)),
    }
}

/// Whether a later value of the row at `key` of `table` shows the same `columns` as the value
/// read: both absent, or both present with identical values in those columns (identical
/// down to how they print: `0` and `-0`, `1.0` and `1.00` differ).
pub(crate) fn same_columns(
    table: Arc<crate::catalog::TableDesc>,
    key: Vec<u8>,
    columns: Arc<Vec<usize>>,
) -> meridian_tablet::SameResult {
    Arc::new(move |old, new| match (old, new) {
        (None, None) => true,
        (Some(o), Some(n)) if o == n => true,
        (Some(o), Some(n)) => {
            match (
                crate::keys::decode_row(&table, &key, o),
                crate::keys::decode_row(&table, &key, n),
            ) {
                (Ok(a), Ok(b)) => columns.iter().all(|&c| match (a.get(c), b.get(c)) {
                    (Some(x), Some(y)) => x == y && format!("{x:?}") == format!("{y:?}"),
                    _ => false,
                }),
                _ => false,
            }
        }
        _ => false,
    })
}

/// Fails with 53200 when an operator's rows exceed the limit.
pub(crate) fn check_rows(n: usize) -> Result<(), SqlError> {
    if n > MAX_ROWS {
        return Err(SqlError::new(
            "53200",
            format!(
                "out of memory: an operator of this statement produced more than {MAX_ROWS} rows"
            ),
        ));
    }
    Ok(())
}

/// Executes `plan`.
pub(crate) async fn execute(cx: &mut ExecContext<'_>, plan: &Plan) -> Result<StatementResult> {
    match plan {
        Plan::ExplainAnalyze(a) => analyze::explain_analyze(cx, a).await,
        other => execute_statement(cx, other).await,
    }
}

/// Executes `plan`, which is not EXPLAIN ANALYZE (whose statement this runs).
async fn execute_statement(cx: &mut ExecContext<'_>, plan: &Plan) -> Result<StatementResult> {
    match plan {
        Plan::Query(q) => {
            let mut ex = Executor::new(cx);
            ex.lock_all = q.locking;
            if !q.locking {
                ex.compared = compared_columns(&q.rel);
            }
            let rows = ex.query(&q.rel).await?;
            Ok(StatementResult::Query {
                columns: q.columns.clone(),
                rows,
            })
        }
        Plan::Insert(p) => dml::insert(cx, p).await,
        Plan::Update(p) => dml::update(cx, p).await,
        Plan::Delete(p) => dml::delete(cx, p).await,
        Plan::CreateTable(p) => ddl::create_table(cx, p).await,
        Plan::CreateIndex(p) => ddl::create_index(cx, p).await,
        Plan::CreateView(p) => ddl::create_view(cx, p).await,
        Plan::CreateSequence(p) => ddl::create_sequence(cx, p).await,
        Plan::Drop(p) => ddl::drop(cx, p).await,
        Plan::Alter(None) => Ok(StatementResult::Command {
            tag: "ALTER TABLE".to_string(),
        }),
        Plan::Alter(Some(p)) => alter::alter(cx, p).await,
        Plan::Truncate(p) => alter::truncate(cx, p).await,
        Plan::User(p) => users::execute(cx, p).await,
        Plan::ExplainAnalyze(_) => {
            Err(SqlError::internal("EXPLAIN ANALYZE of EXPLAIN ANALYZE was planned").into())
        }
        Plan::Explain(e) => {
            let marks = vectorized_marks(&e.plan, cx.vectorize);
            let directory = if e.verbose {
                crate::ranges::directory(cx.base).await?
            } else {
                Vec::new()
            };
            let noted = |r: &Rel| match r {
                Rel::Scan(s) if e.verbose => marks(r) + &analyze::scan_tablets(&directory, s),
                _ => marks(r),
            };
            let lines = crate::plan::explain_noted(&e.plan, &noted);
            Ok(StatementResult::Query {
                columns: vec![ColumnInfo {
                    name: "QUERY PLAN".to_string(),
                    ty: SqlType::Text,
                }],
                rows: lines.into_iter().map(|l| vec![Datum::Text(l)]).collect(),
            })
        }
    }
}

/// EXPLAIN's note for the operators of `plan` that run vectorized when `on`.
pub(crate) fn vectorized_marks(plan: &Plan, on: bool) -> impl Fn(&Rel) -> String + use<> {
    let marked = vector::marks(plan, on);
    move |r: &Rel| {
        if marked.contains(&analyze::node_id(r)) {
            " (vectorized)".to_string()
        } else {
            String::new()
        }
    }
}
