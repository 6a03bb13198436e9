//! Prepared statements: [`Session::prepare`] plans a statement once, reporting its parameter
//! types and result columns without executing it; [`Session::execute_prepared`] runs it with
//! parameter values.
//!
//! Parameter types come from the client when it gives them, otherwise from their use, as
//! PostgreSQL infers them: `WHERE id = $1` makes `$1` the type of `id`, `$1 + 1` an integer,
//! and a parameter nothing constrains is `text`. A parameter used with two types is 42P08.
//!
//! Plans are cached per session, keyed by the statement text and parameter types, together with
//! the catalog version of every table they were planned against and the generation of its
//! statistics. Each execution reads those descriptors at its own timestamp (point reads, much
//! cheaper than planning; the statistics come from the engine's cache) and re-plans only if
//! one changed; a re-plan that changes the result columns or parameter types fails with
//! 0A000, as PostgreSQL's "cached plan must not change result type".

use std::collections::HashMap;
use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;
use sqlparser::ast::Statement;

use crate::api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
use crate::catalog::{self, TableDesc};
use crate::error::{Error, Result};
use crate::expr::{CastContext, cast_datum};
use crate::parse;
use crate::plan::{self, Plan, Tables};
use crate::session::{Session, Work};
use crate::types::TypeSpec;

/// Most cached plans a session keeps (it forgets them all when full).
const MAX_CACHED_PLANS: usize = 512;

/// A statement prepared by [`Session::prepare`].
#[derive(Debug, Clone)]
pub struct Prepared {
    sql: Arc<str>,
    pub(crate) stmt: Arc<Statement>,
    param_types: Vec<SqlType>,
    columns: Vec<ColumnInfo>,
    /// A statement the session handles itself (SET, SHOW, COMMIT, ...): no plan.
    session_command: bool,
}

impl Prepared {
    /// The statement text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The types of `$1`, `$2`, ... (element `n - 1` is `$n`).
    pub fn param_types(&self) -> &[SqlType] {
        &self.param_types
    }

    /// The result columns (empty for statements without a result set).
    pub fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    fn cache_key(&self) -> String {
        let types: Vec<&str> = self.param_types.iter().map(|t| t.pg_name()).collect();
        format!("{}\u{0}{}", types.join(","), self.sql)
    }
}

/// The key of a statement prepared by [`Session::prepare_named`].
fn named_key(sql: &str, types: &[Option<SqlType>]) -> String {
    let types: Vec<&str> = types
        .iter()
        .map(|t| t.map_or("?", SqlType::pg_name))
        .collect();
    format!("{}\u{0}{}", types.join(","), sql)
}

/// A cached plan and the catalog it is valid for.
pub(crate) struct CachedPlan {
    /// Every table or view the plan read a descriptor of: name, and its [`Version`] or `None`
    /// for names that did not exist.
    catalog: Vec<(String, Option<Version>)>,
    planned: Arc<Planned>,
}

/// A plan with its parameter types and result columns.
pub(crate) struct Planned {
    pub plan: Plan,
    pub param_types: Vec<SqlType>,
    pub columns: Vec<ColumnInfo>,
}

/// What a plan depends on of one table: its id, its descriptor's version and the generation
/// of the statistics it was planned with (0: none).
type Version = (u64, u64, u64);

/// The [`Version`] of table `t` with the statistics `stats`.
fn version(t: &TableDesc, stats: Option<&crate::stats::TableStats>) -> Version {
    (t.id, t.version, stats.map_or(0, |s| s.generation))
}

/// The descriptors a session decoded to check its cached plans, by table name: the stored
/// bytes and what they decode to.
pub(crate) type Descriptors = HashMap<String, (Vec<u8>, Arc<TableDesc>)>;

/// The most descriptors a session keeps decoded; past it, it starts over.
const MAX_DESCRIPTORS: usize = 256;

/// The descriptor of table `name` as of `ts`, for checking a cached plan: read on every check
/// (a schema change must be seen), but decoded only when its bytes differ from what `known`
/// decoded before, which is rare.
async fn checked_table(
    known: &mut Descriptors,
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<Arc<TableDesc>>> {
    let Some(bytes) = catalog::read_table_bytes(kv, name, ts).await? else {
        return Ok(None);
    };
    if let Some((seen, desc)) = known.get(name)
        && *seen == bytes
    {
        return Ok(Some(desc.clone()));
    }
    let desc = Arc::new(catalog::decode_table(name, &bytes)?);
    if known.len() >= MAX_DESCRIPTORS {
        known.clear();
    }
    known.insert(name.to_string(), (bytes, desc.clone()));
    Ok(Some(desc))
}

fn catalog_of(tables: &Tables) -> Vec<(String, Option<Version>)> {
    tables
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                t.as_ref().map(|t| version(t, t.stats.as_deref())),
            )
        })
        .collect()
}

/// The result columns of a plan.
fn plan_columns(plan: &Plan) -> Vec<ColumnInfo> {
    match plan {
        Plan::Query(q) => q.columns.clone(),
        Plan::Insert(i) => i
            .returning
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default(),
        Plan::Update(u) => u
            .returning
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default(),
        Plan::Delete(d) => d
            .returning
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default(),
        Plan::Explain(_) | Plan::ExplainAnalyze(_) => vec![ColumnInfo {
            name: "QUERY PLAN".to_string(),
            ty: SqlType::Text,
        }],
        Plan::CreateTable(_)
        | Plan::CreateIndex(_)
        | Plan::CreateView(_)
        | Plan::CreateSequence(_)
        | Plan::Drop(_)
        | Plan::User(_)
        | Plan::Alter(_)
        | Plan::Truncate(_) => vec![],
    }
}

/// Whether the session handles `stmt` itself, without planning.
fn is_session_command(stmt: &Statement) -> bool {
    crate::txn::is_control(stmt)
        || matches!(
            stmt,
            Statement::Set(_)
                | Statement::Reset(_)
                | Statement::ShowVariable { .. }
                | Statement::ShowTables { .. }
                | Statement::Vacuum(_)
                | Statement::Analyze(_)
                | Statement::Copy { .. }
                | Statement::Deallocate { .. }
        )
}

/// Converts a parameter value to its declared type (text values are parsed, numbers checked
/// against the type's range).
pub(crate) fn coerce_param(d: Datum, ty: SqlType, n: usize) -> Result<Datum, SqlError> {
    let from = match &d {
        Datum::Null => return Ok(Datum::Null),
        Datum::Bool(_) => SqlType::Bool,
        Datum::Int(_) => SqlType::Int8,
        Datum::Float(_) => SqlType::Float8,
        Datum::Text(_) => SqlType::Text,
        Datum::Timestamp(_) => SqlType::Timestamp,
        Datum::Numeric(..) => SqlType::Numeric,
        Datum::Date(_) => SqlType::Date,
        Datum::TimestampTz(_) => SqlType::TimestampTz,
        Datum::Interval(_) => SqlType::Interval,
        Datum::Uuid(_) => SqlType::Uuid,
        Datum::Bytea(_) => SqlType::Bytea,
    };
    if from == ty {
        return Ok(d);
    }
    if !crate::expr::can_cast(from, ty, CastContext::Explicit) {
        return Err(SqlError::datatype_mismatch(format!(
            "parameter ${} is of type {} but a {} was supplied",
            n + 1,
            ty.pg_name(),
            from.pg_name()
        )));
    }
    cast_datum(d, from, TypeSpec::plain(ty), CastContext::Explicit)
}

impl Session {
    /// Prepares `sql` (exactly one statement): plans it against the current catalog and
    /// reports its parameter types (inferred from their use) and result columns, without
    /// executing it.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared, SqlError> {
        self.prepare_typed(sql, &[]).await
    }

    /// Like [`Session::prepare`], with the types of the first parameters given by the client
    /// (`None`: infer it).
    pub async fn prepare_typed(
        &mut self,
        sql: &str,
        param_types: &[Option<SqlType>],
    ) -> Result<Prepared, SqlError> {
        let mut stmts = parse::parse(sql)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(stmt) = stmts.pop() else {
            return Err(SqlError::syntax("cannot prepare an empty statement"));
        };
        if is_session_command(&stmt) {
            let columns = match &stmt {
                Statement::ShowTables { .. } => vec![ColumnInfo {
                    name: "table_name".to_string(),
                    ty: SqlType::Text,
                }],
                Statement::ShowVariable { .. } => match self.execute_statement(&stmt, sql).await? {
                    StatementResult::Query { columns, .. } => columns,
                    _ => vec![],
                },
                _ => vec![],
            };
            return Ok(Prepared {
                sql: sql.into(),
                stmt: Arc::new(stmt),
                param_types: vec![],
                columns,
                session_command: true,
            });
        }
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(|e| Error::Read(e).into_sql())?;
        let (planned, tables) = self
            .plan(kv.as_ref(), ts, &stmt, sql, param_types)
            .await
            .map_err(Error::into_sql)?;
        let planned = Planned {
            param_types: plan::param_types(&planned, param_types)?,
            columns: plan_columns(&planned),
            plan: planned,
        };
        let prepared = Prepared {
            sql: sql.into(),
            stmt: Arc::new(stmt),
            param_types: planned.param_types.clone(),
            columns: planned.columns.clone(),
            session_command: false,
        };
        self.cache(prepared.cache_key(), &tables, planned);
        Ok(prepared)
    }

    /// Caches `planned` under `key`, valid while the tables it was planned against stay as
    /// they are in `tables`.
    pub(crate) fn cache(&mut self, key: String, tables: &Tables, planned: Planned) -> Arc<Planned> {
        if self.plans.len() >= MAX_CACHED_PLANS {
            self.plans.clear();
        }
        let planned = Arc::new(planned);
        self.plans.insert(
            key,
            CachedPlan {
                catalog: catalog_of(tables),
                planned: planned.clone(),
            },
        );
        planned
    }

    /// The plan cached under `key` if every table it was planned against is unchanged at
    /// `ts`; else `stmt` planned anew (and cached) with parameters of types `given` (`None`:
    /// inferred from their use).
    pub(crate) async fn current_plan(
        &mut self,
        kv: &dyn KvClient,
        ts: Timestamp,
        key: &str,
        stmt: &Statement,
        sql: &str,
        given: &[Option<SqlType>],
    ) -> Result<Arc<Planned>> {
        if let Some(cached) = self.plans.get(key) {
            let mut valid = true;
            for (name, planned) in &cached.catalog {
                let now = match checked_table(&mut self.descriptors, kv, name, ts).await? {
                    Some(t) => {
                        let stats = self.engine.inner.stats.lookup(&t, ts).await;
                        Some(version(&t, stats.as_deref()))
                    }
                    None => None,
                };
                if now != *planned {
                    valid = false;
                    break;
                }
            }
            if valid {
                return Ok(cached.planned.clone());
            }
        }
        let (plan, tables) = self.plan(kv, ts, stmt, sql, given).await?;
        let planned = Planned {
            param_types: plan::param_types(&plan, given)?,
            columns: plan_columns(&plan),
            plan,
        };
        Ok(self.cache(key.to_string(), &tables, planned))
    }

    /// Prepares `sql` for a wire protocol Parse (`types`: the types the client declared) and
    /// remembers it by its text and declared types, for [`Session::execute_named`]. Parsing
    /// the same text again prepares it anew, so a client that re-parses after a schema
    /// change gets a fresh statement.
    pub async fn prepare_named(
        &mut self,
        sql: &str,
        types: &[Option<SqlType>],
    ) -> Result<Prepared, SqlError> {
        let p = self.prepare_typed(sql, types).await?;
        if self.named.len() >= MAX_CACHED_PLANS {
            self.named.clear();
        }
        self.named.insert(named_key(sql, types), p.clone());
        Ok(p)
    }

    /// Executes the statement [`Session::prepare_named`] prepared from `sql` and `types`
    /// (preparing it again if it was evicted) with `params`.
    pub async fn execute_named(
        &mut self,
        sql: &str,
        types: &[Option<SqlType>],
        params: Vec<Datum>,
    ) -> Result<StatementResult, SqlError> {
        let p = match self.named.get(&named_key(sql, types)) {
            Some(p) => p.clone(),
            None => self.prepare_named(sql, types).await?,
        };
        self.execute_prepared(&p, params).await
    }

    /// Executes a prepared statement with `params` (`$1` first), retrying write conflicts like
    /// [`Session::execute`].
    pub async fn execute_prepared(
        &mut self,
        p: &Prepared,
        params: Vec<Datum>,
    ) -> Result<StatementResult, SqlError> {
        let started = crate::metrics::Stopwatch::start();
        let r = self.execute_prepared_inner(p, params).await;
        crate::metrics::observe(
            crate::metrics::kind(&p.stmt),
            started.elapsed(),
            r.as_ref().map(|_| ()),
        );
        let settled = self.settle_reads().await;
        r.and_then(|res| settled.map(|()| res))
    }

    /// [`Session::execute_prepared`] without the metrics.
    async fn execute_prepared_inner(
        &mut self,
        p: &Prepared,
        params: Vec<Datum>,
    ) -> Result<StatementResult, SqlError> {
        if params.len() != p.param_types.len() {
            return Err(SqlError::new(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    params.len(),
                    p.param_types.len()
                ),
            ));
        }
        if p.session_command {
            let stmt = p.stmt.clone();
            let sql = p.sql.clone();
            return self.execute_statement(&stmt, &sql).await;
        }
        let params = params
            .into_iter()
            .zip(&p.param_types)
            .enumerate()
            .map(|(n, (d, ty))| coerce_param(d, *ty, n))
            .collect::<Result<Vec<_>, _>>()?;
        self.retrying(Work::Prepared(p, &params)).await
    }

    /// One attempt of a prepared statement: the cached plan if the catalog it was planned
    /// against is unchanged at this attempt's timestamp, else a new plan.
    pub(crate) async fn run_prepared(
        &mut self,
        p: &Prepared,
        params: &[Datum],
    ) -> Result<StatementResult> {
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(Error::Read)?;
        let given: Vec<Option<SqlType>> = p.param_types.iter().map(|t| Some(*t)).collect();
        let planned = self
            .current_plan(kv.as_ref(), ts, &p.cache_key(), &p.stmt, &p.sql, &given)
            .await?;
        if planned.param_types != p.param_types || planned.columns != p.columns {
            return Err(SqlError::unsupported("cached plan must not change result type").into());
        }
        self.execute_plan(kv.as_ref(), ts, params, &planned.plan)
            .await
    }
}
