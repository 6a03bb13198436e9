//! Binding and planning: parsed statements become [`Plan`]s over resolved table descriptors.
//!
//! Planning is synchronous. The session first reads the descriptors of every table a
//! statement names ([`referenced_tables`]) at the statement's snapshot, with the tables'
//! statistics attached (`crate::stats`), then hands them to
//! [`plan_statement`] in a [`Tables`] map, so the binder never does I/O and the plan matches the
//! catalog version the execution reads at.
//!
//! * `bind.rs`: expressions (name resolution, operators, functions, constant folding);
//! * `coerce.rs`: literal typing and casts (PostgreSQL's implicit/assignment/explicit rules);
//! * `aggregate.rs`: aggregate calls and GROUP BY;
//! * `select.rs`: SELECT (projection, WHERE, ORDER BY, LIMIT);
//! * `dml.rs`: INSERT, UPDATE, DELETE;
//! * `ddl.rs`: CREATE TABLE, DROP TABLE;
//! * `keyrange.rs`: primary-key range extraction from WHERE;
//! * `from.rs`, `join.rs`, `access.rs`: FROM clauses, join order and method, index choice;
//!   `equiv.rs`: conditions implied through equalities between columns; `pushdown.rs`:
//!   conditions pushed into planned joins and derived tables; `estimate.rs`: row estimates
//!   from table statistics;
//! * `explain.rs`: the text form of plans shown by EXPLAIN.

pub(crate) mod access;
mod aggregate;
mod alter;
mod bind;
mod bind_array;
mod bind_catalog;
mod bind_func;
pub(crate) mod coerce;
mod ddl;
mod dml;
mod equiv;
mod estimate;
mod explain;
mod from;
mod join;
pub(crate) mod keyrange;
mod names;
mod pushdown;
mod query;
mod rel;
mod scope;
mod select;
mod subquery;
mod table_func;
mod users;
mod visit;
pub(crate) mod window;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sqlparser::ast::{
    FromTable, ObjectName, ObjectType, Query, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins,
};
use sqlparser::tokenizer::Location;

pub(crate) use aggregate::{AggCall, AggFunc, AggregatePlan};
pub(crate) use alter::{AlterPlan, TruncatePlan};
pub(crate) use ddl::{
    CreateIndexPlan, CreateSequencePlan, CreateTablePlan, CreateViewPlan, DropPlan,
};
pub(crate) use dml::{
    ConflictAction, DeletePlan, InsertPlan, InsertSource, OnConflictPlan, UpdatePlan,
    parse_stored_expr,
};
pub(crate) use explain::{AnalyzePlan, ExplainPlan, explain_noted, explain_options};
pub(crate) use names::{ident, relation_name, table_name};
pub(crate) use rel::{
    Access, JoinKind, JoinPlan, LimitCounts, Lookup, QueryPlan, Rel, ScanPlan, SetOpKind, SortKey,
};
pub(crate) use select::Projection;
pub(crate) use table_func::rows as table_function_rows;
pub(crate) use users::UserPlan;
pub(crate) use visit::{joined_tables, param_types};

use crate::api::{SqlError, SqlType};
use crate::catalog::TableDesc;

/// Descriptors of the tables a statement names, by folded name; `None` for names that do not
/// exist (an error only if the statement needs them).
pub(crate) type Tables = HashMap<String, Option<Arc<TableDesc>>>;

/// A common table expression in scope (`WITH name AS (...)`).
#[derive(Debug, Clone)]
pub(crate) struct Cte {
    pub name: String,
    pub query: Arc<Query>,
    pub columns: Vec<String>,
}

/// What the binder needs besides the statement: the catalog snapshot, the statement text (for
/// error positions) and the session facts that functions like `current_user` return. It also
/// collects what planning discovers: table names missing from the snapshot (the session loads
/// them and plans again) and the types of `$n` parameters.
pub(crate) struct BindContext<'a> {
    sql: &'a str,
    /// Character offset of the start of each line of `sql`.
    line_starts: Vec<u32>,
    /// The session's user.
    pub user: &'a str,
    /// The session's database.
    pub database: &'a str,
    /// Descriptors read so far.
    pub tables: &'a Tables,
    /// Relation names the statement uses that `tables` does not answer yet.
    pub missing: RefCell<BTreeSet<String>>,
    /// CTEs in scope, innermost last.
    pub ctes: RefCell<Vec<Cte>>,
    /// Types of `$1`, `$2`, ...: given by the client or inferred from their use.
    pub params: RefCell<Vec<Option<SqlType>>>,
    next_subquery: Cell<usize>,
}

impl<'a> BindContext<'a> {
    /// A context for statements parsed from `sql`.
    pub(crate) fn new(
        sql: &'a str,
        user: &'a str,
        database: &'a str,
        tables: &'a Tables,
    ) -> BindContext<'a> {
        let mut line_starts = vec![0u32];
        for (i, c) in sql.chars().enumerate() {
            if c == '\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        BindContext {
            sql,
            line_starts,
            user,
            database,
            tables,
            missing: RefCell::new(BTreeSet::new()),
            ctes: RefCell::new(Vec::new()),
            params: RefCell::new(Vec::new()),
            next_subquery: Cell::new(0),
        }
    }

    /// A context for expressions stored in the catalog (defaults, CHECK constraints, views):
    /// positions in their text mean nothing to the client.
    pub(crate) fn stored(&self) -> BindContext<'a> {
        BindContext::new("", self.user, self.database, self.tables)
    }

    /// The 1-based character position of a parser location, as PostgreSQL reports positions.
    pub(crate) fn position(&self, loc: Location) -> Option<u32> {
        if loc.line == 0 || loc.column == 0 {
            return None;
        }
        let start = *self.line_starts.get(usize::try_from(loc.line - 1).ok()?)?;
        let pos = u64::from(start) + loc.column;
        (pos <= self.sql.chars().count() as u64 + 1).then_some(pos as u32)
    }

    /// A fresh subquery id.
    pub(crate) fn next_subquery_id(&self) -> usize {
        let id = self.next_subquery.get();
        self.next_subquery.set(id + 1);
        id
    }

    /// Records (or checks) the type of parameter `$n` (0-based `n`): the first use decides.
    pub(crate) fn param_type(&self, n: usize, ty: Option<SqlType>) -> Option<SqlType> {
        let mut params = self.params.borrow_mut();
        if params.len() <= n {
            params.resize(n + 1, None);
        }
        if params[n].is_none() {
            params[n] = ty;
        }
        params[n]
    }
}

/// A planned statement.
#[derive(Debug)]
pub(crate) enum Plan {
    Query(QueryPlan),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    CreateTable(CreateTablePlan),
    CreateIndex(CreateIndexPlan),
    CreateView(CreateViewPlan),
    CreateSequence(CreateSequencePlan),
    Drop(DropPlan),
    /// ALTER TABLE; `None` when IF [NOT] EXISTS made it a no-op.
    Alter(Option<AlterPlan>),
    Truncate(TruncatePlan),
    /// CREATE / ALTER / DROP USER.
    User(UserPlan),
    /// EXPLAIN of a plan, printed when executed (the session's settings say which operators
    /// run vectorized).
    Explain(Box<ExplainPlan>),
    /// EXPLAIN ANALYZE: the statement, run when the plan is executed.
    ExplainAnalyze(Box<AnalyzePlan>),
}

/// Plans a statement that reads or writes tables (everything except session commands, which the
/// session handles itself).
pub(crate) fn plan_statement(stmt: &Statement, ctx: &BindContext<'_>) -> Result<Plan, SqlError> {
    match stmt {
        Statement::Query(q) => query::plan_query(q, ctx, None).map(Plan::Query),
        Statement::Insert(ins) => dml::plan_insert(ins, ctx).map(Plan::Insert),
        Statement::Update(upd) => dml::plan_update(upd, ctx).map(Plan::Update),
        Statement::Delete(del) => dml::plan_delete(del, ctx).map(Plan::Delete),
        Statement::CreateTable(ct) => ddl::plan_create_table(ct, ctx).map(Plan::CreateTable),
        Statement::CreateIndex(ci) => ddl::plan_create_index(ci, ctx).map(Plan::CreateIndex),
        Statement::CreateView(cv) => ddl::plan_create_view(cv, ctx).map(Plan::CreateView),
        Statement::CreateSequence {
            temporary: false,
            if_not_exists,
            name,
            sequence_options,
        } => ddl::plan_create_sequence(name, *if_not_exists, sequence_options, ctx)
            .map(Plan::CreateSequence),
        Statement::CreateRole(c) => users::plan_create(c, ctx).map(Plan::User),
        Statement::AlterRole { name, operation } => {
            users::plan_alter(name, operation, ctx).map(Plan::User)
        }
        Statement::Drop {
            object_type: ObjectType::User | ObjectType::Role,
            if_exists,
            names,
            ..
        } => users::plan_drop(names, *if_exists, ctx).map(Plan::User),
        Statement::Drop { .. } => ddl::plan_drop(stmt, ctx).map(Plan::Drop),
        Statement::AlterTable(at) => alter::plan_alter(at, ctx).map(Plan::Alter),
        Statement::Truncate(t) => alter::plan_truncate(t, ctx).map(Plan::Truncate),
        Statement::Explain {
            statement,
            analyze,
            format,
            options,
            ..
        } => {
            let o = explain::explain_options(*analyze, format.as_ref(), options.as_deref())?;
            let inner = plan_statement(statement, ctx)?;
            if !o.analyze {
                return Ok(Plan::Explain(Box::new(ExplainPlan {
                    plan: inner,
                    verbose: o.verbose,
                })));
            }
            // As in PostgreSQL, only statements that produce or change rows can be analyzed.
            if !matches!(
                inner,
                Plan::Query(_) | Plan::Insert(_) | Plan::Update(_) | Plan::Delete(_)
            ) {
                return Err(SqlError::new(
                    "42601",
                    "EXPLAIN ANALYZE takes a SELECT, VALUES, INSERT, UPDATE or DELETE",
                ));
            }
            Ok(Plan::ExplainAnalyze(Box::new(AnalyzePlan {
                plan: inner,
                timing: o.timing,
                summary: o.summary,
                verbose: o.verbose,
            })))
        }
        other => Err(SqlError::unsupported(format!(
            "statement is not supported yet: {}",
            names::statement_kind(other)
        ))),
    }
}

/// The table names a statement's top level reads or writes, as written: a first guess of the
/// descriptors to load (planning reports any others it needs in [`BindContext::missing`]).
pub(crate) fn referenced_tables(stmt: &Statement) -> Vec<&ObjectName> {
    let mut out = Vec::new();
    match stmt {
        Statement::Query(q) => query_tables(q, &mut out),
        Statement::Insert(ins) => {
            if let TableObject::TableName(name) = &ins.table {
                out.push(name);
            }
            if let Some(src) = &ins.source {
                query_tables(src, &mut out);
            }
        }
        Statement::Update(upd) => from_tables(std::slice::from_ref(&upd.table), &mut out),
        Statement::Delete(del) => match &del.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => {
                from_tables(f, &mut out)
            }
        },
        Statement::Drop { names, .. } => out.extend(names),
        Statement::CreateIndex(ci) => out.push(&ci.table_name),
        Statement::AlterTable(at) => out.push(&at.name),
        Statement::Truncate(t) => out.extend(t.table_names.iter().map(|n| &n.name)),
        Statement::Explain { statement, .. } => out.extend(referenced_tables(statement)),
        _ => {}
    }
    out
}

fn query_tables<'s>(q: &'s Query, out: &mut Vec<&'s ObjectName>) {
    if let SetExpr::Select(sel) = q.body.as_ref() {
        from_tables(&sel.from, out);
    }
}

fn from_tables<'s>(from: &'s [TableWithJoins], out: &mut Vec<&'s ObjectName>) {
    for twj in from {
        if let TableFactor::Table { name, .. } = &twj.relation {
            out.push(name);
        }
        for j in &twj.joins {
            if let TableFactor::Table { name, .. } = &j.relation {
                out.push(name);
            }
        }
    }
}

/// A relation a name refers to.
pub(crate) enum Relation {
    /// A table or a view.
    Table(Arc<TableDesc>),
    /// A CTE in scope.
    Cte(Cte),
}

/// Resolves a relation name: a CTE in scope, or a table or view of the catalog. A name the
/// snapshot does not answer yet is recorded in `missing` (and fails with 42P01 for now).
pub(crate) fn lookup_relation(
    name: &ObjectName,
    ctx: &BindContext<'_>,
) -> Result<Relation, SqlError> {
    if name.0.len() == 1 {
        let folded = table_name(name)?;
        if let Some(cte) = ctx.ctes.borrow().iter().rev().find(|c| c.name == folded) {
            return Ok(Relation::Cte(cte.clone()));
        }
    }
    lookup_table(name, ctx).map(Relation::Table)
}

/// Looks up a table or view, failing with 42P01 (positioned at the name) if it does not exist.
pub(crate) fn lookup_table(
    name: &ObjectName,
    ctx: &BindContext<'_>,
) -> Result<Arc<TableDesc>, SqlError> {
    let folded = names::relation_name(name)?;
    match ctx.tables.get(&folded) {
        Some(Some(t)) => Ok(t.clone()),
        found => {
            if found.is_none() {
                ctx.missing.borrow_mut().insert(folded.clone());
            }
            Err(SqlError::undefined_table(&folded).with_position(names::object_position(name, ctx)))
        }
    }
}

/// Looks up a table that must not be a view (the target of INSERT, UPDATE, DELETE, CREATE
/// INDEX).
pub(crate) fn lookup_base_table(
    name: &ObjectName,
    ctx: &BindContext<'_>,
    what: &str,
) -> Result<Arc<TableDesc>, SqlError> {
    let t = lookup_table(name, ctx)?;
    if t.is_view() {
        return Err(SqlError::new(
            "55000",
            format!("cannot {what} view \"{}\"", t.name),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
