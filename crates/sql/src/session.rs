//! The engine and its sessions: statement dispatch, autocommit retries and session commands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_tablet::KvClient;
use sqlparser::ast::{Expr, ObjectName, Reset, Set, Statement, UnaryOperator, Value};

use crate::api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::{Error, Result};
use crate::exec::{self, ExecContext, SessionState};
use crate::parse;
use crate::plan::{self, BindContext, Tables};
use crate::prepared::{CachedPlan, Prepared};
use crate::stats::Statistics;
use crate::txn::{self, TxnStatus};
use crate::vars::SessionVars;

/// How often an autocommit statement is attempted before a retryable error (a write conflict,
/// a moved leader) is reported to the client.
const MAX_ATTEMPTS: u32 = 10;

/// The SQL engine of a node: shared by all its sessions, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) kv: Arc<dyn KvClient>,
    /// The node's clock, for `SHOW CLOCK` (absent in engines over a bare keyspace).
    clock: Option<Arc<meridian_clock::TrueTime>>,
    next_session: AtomicU64,
    /// Table statistics: the planner's cache of them, and their automatic collection.
    pub(crate) stats: Statistics,
}

impl Engine {
    /// An engine storing its catalog and tables in `kv`.
    pub fn new(kv: Arc<dyn KvClient>) -> Engine {
        Engine::build(kv, None)
    }

    /// An engine over `kv` on a node whose clock is `clock` (shown by `SHOW CLOCK`).
    pub fn with_clock(kv: Arc<dyn KvClient>, clock: Arc<meridian_clock::TrueTime>) -> Engine {
        Engine::build(kv, Some(clock))
    }

    fn build(kv: Arc<dyn KvClient>, clock: Option<Arc<meridian_clock::TrueTime>>) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                stats: Statistics::new(kv.clone()),
                kv,
                clock,
                next_session: AtomicU64::new(1),
            }),
        }
    }

    /// Turns the automatic collection of table statistics on (the default) or off. Off,
    /// statistics change only by `ANALYZE`, so plans stay the same however many rows
    /// statements write (as test suites with plan goldens need).
    pub fn set_automatic_statistics(&self, on: bool) {
        self.inner.stats.set_automatic(on);
    }

    /// The password verifier of SQL user `user` (PostgreSQL's `SCRAM-SHA-256$...` text) as of
    /// now, or `None` when there is no such user or it has no password. The wire server checks
    /// logins against it.
    pub async fn password_verifier(
        &self,
        user: &str,
    ) -> std::result::Result<Option<String>, SqlError> {
        let kv = self.inner.kv.as_ref();
        let ts = kv
            .read_ts()
            .await
            .map_err(|e| SqlError::from(Error::Read(e)))?;
        let verifier = crate::users::get(kv, user, ts)
            .await
            .map_err(SqlError::from)?;
        Ok(verifier.filter(|v| !v.is_empty()))
    }

    /// A new session for `user` connected to `database`. The database name is accepted as
    /// given: until CREATE DATABASE exists, all databases share one namespace.
    pub fn session(&self, user: &str, database: &str) -> Session {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        Session {
            autocommit: Arc::new(txn::Recording::new(self.inner.kv.clone())),
            engine: self.clone(),
            id,
            user: user.to_string(),
            database: database.to_string(),
            vars: SessionVars::default(),
            state: Arc::new(Mutex::new(SessionState::new(id))),
            backoff_seed: id,
            plans: HashMap::new(),
            descriptors: HashMap::new(),
            named: HashMap::new(),
            shapes: Default::default(),
            block: txn::Block::default(),
        }
    }
}

/// One client's connection state. Outside a transaction block every statement runs in its own
/// implicit transaction (autocommit, retried on conflicts); inside one (`BEGIN`) statements
/// share a snapshot and commit together (see `txn/`).
pub struct Session {
    pub(crate) engine: Engine,
    id: u64,
    pub(crate) user: String,
    pub(crate) database: String,
    vars: SessionVars,
    pub(crate) state: Arc<Mutex<SessionState>>,
    backoff_seed: u64,
    /// Plans of prepared statements, by statement text and parameter types.
    pub(crate) plans: HashMap<String, CachedPlan>,
    /// Table descriptors decoded to check those plans (see `prepared.rs`).
    pub(crate) descriptors: crate::prepared::Descriptors,
    /// Statements prepared for the wire protocol, by text and declared parameter types.
    pub(crate) named: HashMap<String, Prepared>,
    /// Shapes of simple statements met so far (see `autoparam.rs`).
    pub(crate) shapes: crate::autoparam::Shapes,
    /// The open transaction block, if any.
    pub(crate) block: txn::Block,
    /// The keyspace of autocommit statements, recording their commit timestamps.
    autocommit: Arc<txn::Recording>,
}

impl Session {
    /// Executes every statement of `sql` in order (a simple-query string may hold several
    /// statements separated by `;`), stopping after the first error, which is the last element.
    /// A syntax error anywhere in the string yields a single 42601 error and runs nothing.
    pub async fn execute(&mut self, sql: &str) -> Vec<Result<StatementResult, SqlError>> {
        let mut results = match self.execute_shaped(sql).await {
            Some(results) => results,
            None => self.execute_ordinary(sql).await,
        };
        if let Err(e) = self.settle_reads().await
            && let Some(last) = results.last_mut()
            && last.is_ok()
        {
            *last = Err(e);
        }
        results
    }

    /// Waits until every version that the session's finished reads saw (autocommit statements,
    /// and blocks that committed) has a timestamp in the past on every clock (`TT.after`),
    /// before the session answers its client.
    ///
    /// A write is visible at its tablet as soon as it applies, before its commit wait ends. A
    /// client that saw it and then reads through another node, whose clock may read lower
    /// within the bound, could otherwise get a timestamp below the write and not see it. A
    /// statement that wrote needs no wait (its commit timestamp is above what it read, and it
    /// was waited out), nor does one that read only versions older than `TT.now().earliest`,
    /// which is nearly every read. An engine without a clock (over a bare keyspace) does not
    /// wait.
    pub(crate) async fn settle_reads(&mut self) -> Result<(), SqlError> {
        let seen = self
            .autocommit
            .take_seen()
            .max(std::mem::take(&mut self.block.seen));
        let Some(clock) = &self.engine.inner.clock else {
            return Ok(());
        };
        if seen == meridian_clock::Timestamp::ZERO {
            return Ok(());
        }
        match clock.commit_wait(seen).await {
            Ok(waited) => {
                crate::metrics::observe_read_wait(waited);
                Ok(())
            }
            Err(e) => Err(Error::Read(meridian_tablet::Error::Clock(e)).into_sql()),
        }
    }

    /// [`Session::execute`] parsing and planning every statement of `sql`.
    pub(crate) async fn execute_ordinary(
        &mut self,
        sql: &str,
    ) -> Vec<Result<StatementResult, SqlError>> {
        if let Some((table, points)) = crate::ranges::parse_split(sql) {
            return vec![self.split_table(&table, &points).await];
        }
        if let Some(pieces) = crate::ranges::pieces_with_split(sql) {
            return Box::pin(self.execute_pieces(pieces)).await;
        }
        let (stmts, as_of) = match parse::parse_with_as_of(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        // The data of COPY FROM STDIN follows the query string, so nothing can come after it.
        if stmts.iter().rev().skip(1).any(is_copy_in) {
            return vec![Err(SqlError::unsupported(
                "COPY FROM STDIN must be the last statement of a query string",
            ))];
        }
        let mut out = Vec::with_capacity(stmts.len());
        for (stmt, as_of) in stmts.iter().zip(&as_of) {
            let started = crate::metrics::Stopwatch::start();
            let r = match as_of {
                Some(literal) => self.execute_as_of(stmt, sql, literal).await,
                None => self.execute_statement(stmt, sql).await,
            };
            crate::metrics::observe(
                crate::metrics::kind(stmt),
                started.elapsed(),
                r.as_ref().map(|_| ()),
            );
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// Executes a query string statement by statement (one holding `ALTER TABLE ... SPLIT
    /// AT`, see [`crate::ranges::pieces_with_split`]), as [`Session::execute`] does: nothing
    /// runs if any statement has a syntax error, and the first error stops the rest.
    async fn execute_pieces(
        &mut self,
        pieces: Vec<&str>,
    ) -> Vec<Result<StatementResult, SqlError>> {
        for piece in &pieces {
            if crate::ranges::parse_split(piece).is_none()
                && let Err(e) = parse::parse_with_as_of(piece)
            {
                return vec![Err(e)];
            }
        }
        let mut out = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let results = self.execute(piece).await;
            let failed = results.last().is_some_and(|r| r.is_err());
            out.extend(results);
            if failed {
                break;
            }
        }
        out
    }

    /// The session's number within its engine.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) async fn execute_statement(
        &mut self,
        stmt: &Statement,
        sql: &str,
    ) -> Result<StatementResult, SqlError> {
        let command = |tag: &str| {
            Ok(StatementResult::Command {
                tag: tag.to_string(),
            })
        };
        if txn::is_control(stmt) {
            let base = self.engine.inner.kv.clone();
            let r = self.block.control(stmt, &base).await;
            self.note_committed();
            return r;
        }
        self.check_block(stmt)?;
        match stmt {
            Statement::Set(set) => self.set(set).and_then(|()| command("SET")),
            Statement::Reset(r) => {
                match &r.reset {
                    Reset::ALL => self.vars.reset_all(),
                    Reset::ConfigurationParameter(name) => self.vars.reset(&var_name(name))?,
                    Reset::SessionAuthorization => {}
                }
                command("RESET")
            }
            Statement::ShowVariable { variable }
                if variable
                    .first()
                    .is_some_and(|v| v.value.eq_ignore_ascii_case("ranges")) =>
            {
                let words: Vec<String> = variable[1..].iter().map(|i| i.value.clone()).collect();
                let kv = self.engine.inner.kv.as_ref();
                let table = crate::ranges::named_table(kv, &words).await?;
                crate::ranges::show_ranges(kv, table.as_deref()).await
            }
            Statement::ShowVariable { variable }
                if variable
                    .first()
                    .is_some_and(|v| v.value.eq_ignore_ascii_case("statistics")) =>
            {
                self.show_statistics(&variable[1..]).await
            }
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::ShowTables { .. } => self.retrying(Work::ShowTables).await,
            Statement::Copy { .. } => self.copy_statement(stmt).await,
            // Statements prepared through the wire protocol belong to the connection, which
            // drops them when it closes or a Parse reuses the name; SQL-level PREPARE does not
            // exist yet, so there is nothing else to free. Drivers (psycopg) send this after a
            // rollback.
            Statement::Deallocate { name, .. } => {
                if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                    command("DEALLOCATE ALL")
                } else {
                    command("DEALLOCATE")
                }
            }
            // Meridian's storage has no heap to vacuum (old MVCC versions are collected below
            // the GC horizon): VACUUM only checks the table.
            Statement::Vacuum(v) => {
                if self.block.txn.is_some() {
                    return Err(SqlError::new(
                        "25001",
                        "VACUUM cannot run inside a transaction block",
                    ));
                }
                self.check_table(v.table_name.as_ref()).await?;
                command("VACUUM")
            }
            Statement::Analyze(a) => {
                self.check_table(a.table_name.as_ref()).await?;
                self.analyze(a.table_name.as_ref()).await?;
                command("ANALYZE")
            }
            _ => self.retrying(Work::Statement(stmt, sql)).await,
        }
    }

    /// A statement with `AS OF SYSTEM TIME`: a SELECT read at that past timestamp (lock-free,
    /// servable by any replica whose safe time covers it), or a BEGIN opening a read-only block
    /// at it.
    async fn execute_as_of(
        &mut self,
        stmt: &Statement,
        sql: &str,
        literal: &str,
    ) -> Result<StatementResult, SqlError> {
        if self.block.txn.is_some() {
            return Err(SqlError::new(
                "25001",
                "AS OF SYSTEM TIME inside a transaction block: give it on the BEGIN instead",
            ));
        }
        let now = self
            .engine
            .inner
            .kv
            .read_ts()
            .await
            .map_err(|e| Error::Read(e).into_sql())?;
        let ts = txn::resolve_as_of(literal, now)?;
        let base = self.engine.inner.kv.clone();
        match stmt {
            Statement::StartTransaction { .. } => {
                self.block.txn = Some(txn::Txn::at(base, ts));
                Ok(StatementResult::Command {
                    tag: "BEGIN".to_string(),
                })
            }
            Statement::Query(_) => {
                self.block.txn = Some(txn::Txn::at(base, ts));
                let r = self.retrying(Work::Statement(stmt, sql)).await;
                self.block.txn = None;
                r
            }
            _ => Err(SqlError::unsupported(
                "AS OF SYSTEM TIME applies to SELECT and BEGIN only",
            )),
        }
    }

    /// Runs `work` until it succeeds, fails with a non-retryable error, or `MAX_ATTEMPTS`
    /// are used up; waits with jittered exponential backoff in between. Each attempt starts
    /// over from a fresh read timestamp (catalog lookups and planning included).
    pub(crate) async fn retrying(&mut self, work: Work<'_>) -> Result<StatementResult, SqlError> {
        if self.block.txn.is_some() {
            // Inside a transaction block the snapshot is fixed and earlier statements' effects
            // are buffered, so a statement cannot be retried on its own; its failure fails
            // the block, as in PostgreSQL.
            match work {
                Work::Statement(stmt, _) => self.check_block(stmt)?,
                Work::Prepared(Prepared { stmt, .. }, _) => self.check_block(stmt)?,
                Work::Shaped(shaped, _) => self.check_block(&shaped.stmt)?,
                Work::ShowTables => {}
            }
            let r = self.attempt(work).await.map_err(Error::into_sql);
            if let Err(e) = &r {
                self.block.fail(e.code);
            }
            return r;
        }
        let mut n = 0;
        loop {
            n += 1;
            match self.attempt(work).await {
                Err(e) if e.is_retryable() && n < MAX_ATTEMPTS => {
                    crate::metrics::RETRIES.inc();
                    tracing::debug!(session = self.id, attempt = n, error = %e, "retrying statement");
                    tokio::time::sleep(self.backoff(n)).await;
                }
                r => return r.map_err(Error::into_sql),
            }
        }
    }

    async fn attempt(&mut self, work: Work<'_>) -> Result<StatementResult> {
        match work {
            Work::Statement(stmt, sql) => self.run_once(stmt, sql).await,
            Work::ShowTables => self.show_tables().await,
            Work::Prepared(p, params) => self.run_prepared(p, params).await,
            Work::Shaped(shaped, values) => self.run_shaped(shaped, values).await,
        }
    }

    /// 42P01 unless `name` (when given) is a table or view.
    async fn check_table(&self, name: Option<&ObjectName>) -> Result<(), SqlError> {
        let Some(name) = name else { return Ok(()) };
        let name = plan::table_name(name)?;
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(|e| Error::Read(e).into_sql())?;
        match catalog::get_table(kv.as_ref(), &name, ts)
            .await
            .map_err(Error::into_sql)?
        {
            Some(_) => Ok(()),
            None => Err(SqlError::undefined_table(&name)),
        }
    }

    /// Refuses statements a transaction block's state does not allow: anything in a failed
    /// block (25P02), writes in a READ ONLY one (25006).
    pub(crate) fn check_block(&self, stmt: &Statement) -> Result<(), SqlError> {
        match &self.block.txn {
            Some(t) if t.failed => Err(txn::aborted()),
            Some(t) if t.read_only && !txn::is_read_only(stmt) => {
                Err(txn::read_only_violation(stmt))
            }
            _ => Ok(()),
        }
    }

    /// The keyspace statements read and write: the open transaction's view, or the tablets
    /// themselves in autocommit mode.
    pub(crate) fn kv(&self) -> Arc<dyn KvClient> {
        match &self.block.txn {
            Some(t) => {
                t.kv.set_memory_limit(self.vars.txn_memory_limit());
                t.kv.clone()
            }
            None => self.autocommit.clone(),
        }
    }

    /// The commit timestamp of the session's last write (autocommit or transaction block).
    fn last_commit(&self) -> Option<meridian_clock::Timestamp> {
        self.block.last_commit.max(self.autocommit.last())
    }

    /// Where the session is with respect to transaction blocks.
    pub fn transaction_status(&self) -> TxnStatus {
        self.block.status()
    }

    /// Backoff before attempt `n + 1`: exponential from 1 ms, capped at 100 ms, with ±50%
    /// jitter from a per-session sequence (so concurrent sessions spread out).
    fn backoff(&mut self, n: u32) -> Duration {
        self.backoff_seed = splitmix64(self.backoff_seed);
        let base = 1_000u64 << n.min(7); // microseconds
        let base = base.min(100_000);
        let jitter = self.backoff_seed % base;
        Duration::from_micros(base / 2 + jitter)
    }

    /// One attempt of a statement: read timestamp, catalog, plan, execute.
    async fn run_once(&mut self, stmt: &Statement, sql: &str) -> Result<StatementResult> {
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(Error::Read)?;
        let (planned, _) = self.plan(kv.as_ref(), ts, stmt, sql, &[]).await?;
        self.execute_plan(kv.as_ref(), ts, &[], &planned).await
    }

    /// Plans `stmt` (parsed from `sql`) against the catalog as of `ts`, with parameters of
    /// types `params` (`None`: inferred from their use).
    pub(crate) async fn plan(
        &self,
        kv: &dyn KvClient,
        ts: meridian_clock::Timestamp,
        stmt: &Statement,
        sql: &str,
        params: &[Option<SqlType>],
    ) -> Result<(plan::Plan, Tables)> {
        plan_with_catalog(
            kv,
            &self.engine.inner.stats,
            ts,
            stmt,
            sql,
            &self.user,
            &self.database,
            params,
        )
        .await
    }

    /// Executes a plan at `ts` and notes the rows it wrote (see [`Session::note_writes`]).
    pub(crate) async fn execute_plan(
        &mut self,
        kv: &dyn KvClient,
        ts: meridian_clock::Timestamp,
        params: &[Datum],
        plan: &plan::Plan,
    ) -> Result<StatementResult> {
        let mut cx = self.exec_context(kv, ts, params);
        let r = exec::execute(&mut cx, plan).await;
        let written = std::mem::take(&mut cx.written);
        drop(cx);
        if r.is_ok() {
            self.note_writes(written);
        }
        r
    }

    /// Counts rows a successful statement wrote toward its tables' statistics: at once in
    /// autocommit mode, at COMMIT inside a transaction block.
    fn note_writes(&mut self, written: Vec<(Arc<TableDesc>, u64)>) {
        match &mut self.block.txn {
            Some(t) => t.written.extend(written),
            None => {
                for (table, rows) in written {
                    self.engine.inner.stats.wrote(&table, rows);
                }
            }
        }
    }

    /// Counts the rows of the transaction blocks committed since the last call (see
    /// [`Session::note_writes`]).
    pub(crate) fn note_committed(&mut self) {
        for (table, rows) in std::mem::take(&mut self.block.committed) {
            self.engine.inner.stats.wrote(&table, rows);
        }
    }

    /// What a statement reading and writing `kv` at `ts` with parameter values `params`
    /// executes with.
    pub(crate) fn exec_context<'s>(
        &'s self,
        kv: &'s dyn KvClient,
        ts: meridian_clock::Timestamp,
        params: &'s [Datum],
    ) -> ExecContext<'s> {
        ExecContext {
            kv,
            base: self.engine.inner.kv.as_ref(),
            read_ts: ts,
            state: &self.state,
            params,
            memory: exec::MemoryPool::new(self.vars.query_memory_limit()),
            profile: None,
            vectorize: self.vars.vectorize(),
            written: Vec::new(),
        }
    }

    async fn show_tables(&mut self) -> Result<StatementResult> {
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(Error::Read)?;
        let names = catalog::list_tables(kv.as_ref(), ts).await?;
        Ok(StatementResult::Query {
            columns: vec![ColumnInfo {
                name: "table_name".to_string(),
                ty: SqlType::Text,
            }],
            rows: names.into_iter().map(|n| vec![Datum::Text(n)]).collect(),
        })
    }

    fn set(&mut self, set: &Set) -> Result<(), SqlError> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = var_name(variable);
                match values.as_slice() {
                    [Expr::Identifier(id)]
                        if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") =>
                    {
                        self.vars.reset(&name)
                    }
                    _ => {
                        let quote = name.eq_ignore_ascii_case("search_path");
                        let rendered: Vec<String> =
                            values.iter().map(|v| render_value(v, quote)).collect();
                        self.vars.set(&name, rendered.join(", "))
                    }
                }
            }
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.vars
                        .set(&var_name(&a.name), render_value(&a.value, false))?;
                }
                Ok(())
            }
            Set::SetTimeZone { value, .. } => match value {
                Expr::Identifier(id)
                    if id.value.eq_ignore_ascii_case("local")
                        || id.value.eq_ignore_ascii_case("default") =>
                {
                    self.vars.reset("TimeZone")
                }
                v => self.vars.set("TimeZone", render_value(v, false)),
            },
            Set::SetNames { charset_name, .. } => {
                self.vars.set("client_encoding", charset_name.value.clone())
            }
            // Every statement is already serializable; SET TRANSACTION outside a transaction
            // block has no effect in PostgreSQL either.
            Set::SetTransaction { .. } => Ok(()),
            other => Err(SqlError::unsupported(format!(
                "this form of SET is not supported: {other}"
            ))),
        }
    }

    /// `ALTER TABLE <table> SPLIT AT <points>`: splits the table's data so that a tablet starts
    /// at each point (a prefix of the primary key).
    async fn split_table(
        &mut self,
        table: &str,
        points: &str,
    ) -> Result<StatementResult, SqlError> {
        if self.block.txn.is_some() {
            return Err(SqlError::new(
                "25001",
                "ALTER TABLE ... SPLIT AT cannot run inside a transaction block",
            ));
        }
        let stmts = parse::parse(points)?;
        let [stmt] = stmts.as_slice() else {
            return Err(SqlError::new(
                "42601",
                "SPLIT AT takes one query giving the split points",
            ));
        };
        let StatementResult::Query { columns, rows } = self.execute_statement(stmt, points).await?
        else {
            return Err(SqlError::new("42601", "SPLIT AT takes a query"));
        };
        let kv = self.engine.inner.kv.clone();
        let desc = crate::ranges::current_table(kv.as_ref(), table).await?;
        let keys = crate::ranges::split_keys(&desc, &columns, rows)?;
        crate::ranges::split_at(kv.as_ref(), &desc, keys).await
    }

    /// `SHOW CLOCK`: the node's TrueTime interval now, its epsilon, how it was last synced,
    /// and whether it may assign timestamps.
    fn show_clock(&self) -> Result<StatementResult, SqlError> {
        let Some(clock) = &self.engine.inner.clock else {
            return Err(SqlError::unsupported("this engine has no clock to show"));
        };
        let s = clock.status();
        let usable = match clock.now() {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("fenced: {e}"),
        };
        let text = |n: &str| ColumnInfo {
            name: n.to_string(),
            ty: SqlType::Text,
        };
        Ok(StatementResult::Query {
            columns: vec![
                text("earliest"),
                text("latest"),
                ColumnInfo {
                    name: "epsilon_us".to_string(),
                    ty: SqlType::Float8,
                },
                text("sync_source"),
                ColumnInfo {
                    name: "since_sync_ms".to_string(),
                    ty: SqlType::Float8,
                },
                text("status"),
            ],
            rows: vec![vec![
                Datum::Text(s.interval.earliest.to_string()),
                Datum::Text(s.interval.latest.to_string()),
                Datum::Float(s.epsilon.as_secs_f64() * 1e6),
                Datum::Text(format!("{:?}", s.source)),
                Datum::Float(s.since_sync.as_secs_f64() * 1e3),
                Datum::Text(usable),
            ]],
        })
    }

    fn show(&self, variable: &[sqlparser::ast::Ident]) -> Result<StatementResult, SqlError> {
        let parts: Vec<String> = variable.iter().map(|i| i.value.clone()).collect();
        // Multi-word names (`SHOW TIME ZONE`) and dotted custom names arrive as separate
        // identifiers.
        let spaced = parts.join(" ");
        let name = match spaced.to_ascii_lowercase().as_str() {
            "all" | "time zone" | "transaction isolation level" | "last commit timestamp" => spaced,
            _ => parts.join("."),
        };
        let text_col = |n: &str| ColumnInfo {
            name: n.to_string(),
            ty: SqlType::Text,
        };
        if name.eq_ignore_ascii_case("all") {
            let rows = self
                .vars
                .all()
                .into_iter()
                .map(|(k, v)| vec![Datum::Text(k), Datum::Text(v)])
                .collect();
            return Ok(StatementResult::Query {
                columns: vec![text_col("name"), text_col("setting")],
                rows,
            });
        }
        match name.to_ascii_lowercase().as_str() {
            "clock" => return self.show_clock(),
            "last commit timestamp" => {
                let ts = self.last_commit();
                return Ok(StatementResult::Query {
                    columns: vec![
                        text_col("last_commit_timestamp"),
                        ColumnInfo {
                            name: "nanos".to_string(),
                            ty: SqlType::Int8,
                        },
                    ],
                    rows: vec![vec![
                        ts.map_or(Datum::Null, |t| Datum::Text(t.to_string())),
                        ts.map_or(Datum::Null, |t| {
                            Datum::Int(i64::try_from(t.as_nanos()).unwrap_or(i64::MAX))
                        }),
                    ]],
                });
            }
            _ => {}
        }
        let name = match name.to_ascii_lowercase().as_str() {
            "time zone" => "TimeZone".to_string(),
            "transaction isolation level" => "transaction_isolation".to_string(),
            _ => name,
        };
        let (label, value) = self.vars.show(&name, &self.user)?;
        Ok(StatementResult::Query {
            columns: vec![text_col(&label)],
            rows: vec![vec![Datum::Text(value)]],
        })
    }
}

/// Plans `stmt` against the catalog as of `ts`: loads the descriptors its top level names,
/// plans, and when planning needed more (subqueries, views, CTE bodies name other tables),
/// loads those and plans again. `params` are the parameter types the client gave. Returns the
/// plan, the descriptors it was planned with and the parameter types.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn plan_with_catalog(
    kv: &dyn KvClient,
    stats: &Statistics,
    ts: meridian_clock::Timestamp,
    stmt: &Statement,
    sql: &str,
    user: &str,
    database: &str,
    params: &[Option<SqlType>],
) -> Result<(plan::Plan, Tables)> {
    let mut tables = Tables::new();
    let mut wanted: Vec<String> = plan::referenced_tables(stmt)
        .into_iter()
        .filter_map(|n| plan::relation_name(n).ok())
        .collect();
    loop {
        for name in wanted.drain(..) {
            if let std::collections::hash_map::Entry::Vacant(slot) = tables.entry(name) {
                // PostgreSQL's catalog tables come first, as pg_catalog does on its search path.
                let desc = match crate::syscat::virtual_table(kv, ts, slot.key(), database).await? {
                    Some(v) => Some(Arc::new(v)),
                    None => match catalog::read_table(kv, slot.key(), ts).await? {
                        Some(t) => Some(Arc::new(stats.attach(t, ts).await)),
                        None => None,
                    },
                };
                slot.insert(desc);
            }
        }
        let (planned, missing) = {
            let ctx = BindContext::new(sql, user, database, &tables);
            *ctx.params.borrow_mut() = params.to_vec();
            let r = plan::plan_statement(stmt, &ctx);
            (r, ctx.missing.into_inner())
        };
        wanted = missing
            .into_iter()
            .filter(|n| !tables.contains_key(n))
            .collect();
        if wanted.is_empty() {
            let planned = planned.map_err(Error::Sql)?;
            // A join of a table without statistics is planned by shape; collect them for the
            // next statements.
            for t in plan::joined_tables(&planned) {
                stats.request(&t);
            }
            return Ok((planned, tables));
        }
    }
}

fn is_copy_in(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Copy { to: false, .. })
}

/// Work retried as a unit.
#[derive(Clone, Copy)]
pub(crate) enum Work<'q> {
    /// A statement (with the text it was parsed from, for error positions).
    Statement(&'q Statement, &'q str),
    /// `SHOW TABLES`.
    ShowTables,
    /// A prepared statement with its parameter values.
    Prepared(&'q crate::prepared::Prepared, &'q [Datum]),
    /// A statement of a parameterized shape with its constants.
    Shaped(&'q crate::autoparam::Shaped, &'q [Datum]),
}

/// The name of a setting as written (`a.b` for custom settings).
fn var_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// The text stored for a SET value: strings without quotes, unquoted identifiers folded to
/// lower case, booleans as on/off.
fn render_value(e: &Expr, quote_idents: bool) -> String {
    match e {
        Expr::Identifier(id) if id.quote_style.is_some() && quote_idents => {
            format!("\"{}\"", id.value)
        }
        Expr::Identifier(id) if id.quote_style.is_some() => id.value.clone(),
        Expr::Identifier(id) => id.value.to_ascii_lowercase(),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
            other => other.to_string(),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => format!("-{}", render_value(expr, quote_idents)),
        other => other.to_string(),
    }
}

/// One step of the splitmix64 sequence.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
