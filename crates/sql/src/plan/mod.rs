//! Binding and planning: parsed statements become [`Plan`]s over resolved table descriptors.
//!
//! Planning is synchronous. The session first reads the descriptors of every table a
//! statement names ([`referenced_tables`]) at the statement's snapshot, then hands them to
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
//! * `explain.rs`: the text form of plans shown by EXPLAIN.

mod aggregate;
mod bind;
mod coerce;
mod ddl;
mod dml;
mod explain;
pub(crate) mod keyrange;
mod names;
mod scope;
mod select;

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast::{
    FromTable, ObjectName, Query, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
};
use sqlparser::tokenizer::Location;

pub(crate) use aggregate::{AggCall, AggFunc, AggregatePlan};
pub(crate) use ddl::{CreateTablePlan, DropTablePlan};
pub(crate) use dml::{DeletePlan, InsertPlan, InsertSource, UpdatePlan};
pub(crate) use names::table_name;
pub(crate) use select::{Projection, ScanPlan, SelectPlan};

use crate::api::SqlError;
use crate::catalog::TableDesc;

/// Descriptors of the tables a statement names, by folded name; `None` for names that do not
/// exist (an error only if the statement needs them).
pub(crate) type Tables = HashMap<String, Option<Arc<TableDesc>>>;

/// What the binder needs besides the catalog: the statement text (for error positions) and the
/// session facts that functions like `current_user` return.
pub(crate) struct BindContext<'a> {
    sql: &'a str,
    /// Character offset of the start of each line of `sql`.
    line_starts: Vec<u32>,
    /// The session's user.
    pub user: &'a str,
    /// The session's database.
    pub database: &'a str,
}

impl<'a> BindContext<'a> {
    /// A context for statements parsed from `sql`.
    pub(crate) fn new(sql: &'a str, user: &'a str, database: &'a str) -> BindContext<'a> {
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
        }
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
}

/// A planned statement.
#[derive(Debug)]
pub(crate) enum Plan {
    Select(SelectPlan),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    CreateTable(CreateTablePlan),
    DropTable(DropTablePlan),
    /// EXPLAIN: the plan's text, one line per row.
    Explain(Vec<String>),
}

/// Plans a statement that reads or writes tables (everything except session commands, which the
/// session handles itself).
pub(crate) fn plan_statement(
    stmt: &Statement,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<Plan, SqlError> {
    match stmt {
        Statement::Query(q) => select::plan_query(q, ctx, tables).map(Plan::Select),
        Statement::Insert(ins) => dml::plan_insert(ins, ctx, tables).map(Plan::Insert),
        Statement::Update(upd) => dml::plan_update(upd, ctx, tables).map(Plan::Update),
        Statement::Delete(del) => dml::plan_delete(del, ctx, tables).map(Plan::Delete),
        Statement::CreateTable(ct) => ddl::plan_create_table(ct, ctx).map(Plan::CreateTable),
        Statement::Drop { .. } => ddl::plan_drop(stmt, tables).map(Plan::DropTable),
        Statement::Explain {
            statement, analyze, ..
        } => {
            if *analyze {
                return Err(SqlError::unsupported(
                    "EXPLAIN ANALYZE is not supported yet",
                ));
            }
            let inner = plan_statement(statement, ctx, tables)?;
            Ok(Plan::Explain(explain::explain(&inner)))
        }
        other => Err(SqlError::unsupported(format!(
            "statement is not supported yet: {}",
            names::statement_kind(other)
        ))),
    }
}

/// The table names a statement reads or writes, as written.
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
    }
}

/// Looks up a resolved table, failing with 42P01 (positioned at the name) if it does not exist.
pub(crate) fn lookup_table(
    name: &ObjectName,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<Arc<TableDesc>, SqlError> {
    let folded = table_name(name)?;
    match tables.get(&folded) {
        Some(Some(t)) => Ok(t.clone()),
        _ => {
            Err(SqlError::undefined_table(&folded).with_position(names::object_position(name, ctx)))
        }
    }
}

#[cfg(test)]
mod tests;
