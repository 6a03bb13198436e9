//! INSERT, UPDATE and DELETE.

use std::sync::Arc;

use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Insert, ObjectName, SelectItem, SetExpr,
    TableFactor, TableObject, TableWithJoins, Update,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::bind::ExprBinder;
use super::keyrange;
use super::names::ident;
use super::scope::Scope;
use super::select::{Projection, ScanPlan, SelectPlan, bind_returning, plan_query};
use super::{BindContext, Tables, lookup_table};
use crate::api::SqlError;
use crate::catalog::{ColumnDesc, TableDesc};
use crate::expr::ScalarExpr;

/// Where inserted rows come from.
#[derive(Debug, Clone)]
pub(crate) enum InsertSource {
    /// `VALUES` rows, each with one expression per table column; `None` marks a hidden key
    /// column, generated at execution.
    Values(Vec<Vec<Option<ScalarExpr>>>),
    /// `INSERT ... SELECT`: query column `i` fills table column `targets[i]` (with an
    /// assignment cast to its type); the other columns take `defaults`.
    Query {
        plan: Box<SelectPlan>,
        targets: Vec<usize>,
        defaults: Vec<Option<ScalarExpr>>,
    },
}

/// A planned INSERT.
#[derive(Debug, Clone)]
pub(crate) struct InsertPlan {
    pub table: Arc<TableDesc>,
    pub source: InsertSource,
    pub returning: Option<Projection>,
}

/// A planned UPDATE: rows found by `scan` get `assignments` (table column, new value over
/// the old row).
#[derive(Debug, Clone)]
pub(crate) struct UpdatePlan {
    pub scan: ScanPlan,
    pub assignments: Vec<(usize, ScalarExpr)>,
    pub returning: Option<Projection>,
}

/// A planned DELETE of the rows found by `scan`.
#[derive(Debug, Clone)]
pub(crate) struct DeletePlan {
    pub scan: ScanPlan,
    pub returning: Option<Projection>,
}

/// Whether `e` is the `DEFAULT` keyword in a VALUES list or SET clause.
fn is_default_keyword(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The value a column gets when none is given: its DEFAULT expression, NULL, or (`None`) a
/// generated key.
fn default_value(col: &ColumnDesc, ctx: &BindContext<'_>) -> Result<Option<ScalarExpr>, SqlError> {
    if col.hidden {
        return Ok(None);
    }
    let Some(text) = &col.default_expr else {
        return Ok(Some(ScalarExpr::null(col.ty)));
    };
    let expr = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            SqlError::internal(format!(
                "stored DEFAULT of column {:?} does not parse: {e}",
                col.name
            ))
        })?;
    // Positions inside the stored text mean nothing to the client.
    let default_ctx = BindContext::new("", ctx.user, ctx.database);
    let scope = Scope::empty();
    ExprBinder::new(&default_ctx, &scope, "DEFAULT expressions")
        .bind_assign(&expr, col, "default expression")
        .map(Some)
}

fn column_of_relation(table: &TableDesc, name: &str) -> SqlError {
    SqlError::new(
        "42703",
        format!(
            "column \"{name}\" of relation \"{}\" does not exist",
            table.name
        ),
    )
}

fn returning(
    items: &Option<Vec<SelectItem>>,
    scope: &Scope,
    ctx: &BindContext<'_>,
) -> Result<Option<Projection>, SqlError> {
    items
        .as_ref()
        .map(|items| bind_returning(items, scope, ctx))
        .transpose()
}

/// Plans an INSERT.
pub(crate) fn plan_insert(
    ins: &Insert,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<InsertPlan, SqlError> {
    if ins.on.is_some() {
        return Err(SqlError::unsupported(
            "INSERT ... ON CONFLICT is not supported yet",
        ));
    }
    if ins.or.is_some()
        || ins.ignore
        || ins.overwrite
        || ins.partitioned.is_some()
        || !ins.after_columns.is_empty()
        || !ins.assignments.is_empty()
        || ins.replace_into
        || ins.insert_alias.is_some()
        || ins.format_clause.is_some()
        || ins.settings.is_some()
    {
        return Err(SqlError::unsupported(
            "this form of INSERT is not supported",
        ));
    }
    let TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::unsupported(
            "INSERT INTO TABLE FUNCTION is not supported",
        ));
    };
    let table = lookup_table(name, ctx, tables)?;
    let targets = insert_targets(&table, &ins.columns, ctx)?;
    let defaults = table
        .columns
        .iter()
        .map(|c| default_value(c, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let empty = Scope::empty();

    let source = match ins.source.as_deref() {
        None => InsertSource::Values(vec![defaults]),
        Some(q) => match q.body.as_ref() {
            SetExpr::Values(values) if q.order_by.is_none() && q.limit_clause.is_none() => {
                let width = values.rows.first().map_or(0, |r| r.content.len());
                let mut rows = Vec::with_capacity(values.rows.len());
                for r in &values.rows {
                    if r.content.len() != width {
                        return Err(SqlError::syntax("VALUES lists must all be the same length"));
                    }
                    check_width(width, targets.len())?;
                    let mut row = defaults.clone();
                    for (e, &col) in r.content.iter().zip(&targets) {
                        let c = &table.columns[col];
                        row[col] = if is_default_keyword(e) {
                            default_value(c, ctx)?
                        } else {
                            Some(ExprBinder::new(ctx, &empty, "VALUES").bind_assign(
                                e,
                                c,
                                "expression",
                            )?)
                        };
                    }
                    rows.push(row);
                }
                InsertSource::Values(rows)
            }
            _ => {
                let plan = plan_query(q, ctx, tables)?;
                check_width(plan.columns.len(), targets.len())?;
                for (out, &col) in plan.columns.iter().zip(&targets) {
                    let c = &table.columns[col];
                    if !crate::expr::can_cast(out.ty, c.ty, crate::expr::CastContext::Assignment) {
                        return Err(SqlError::datatype_mismatch(format!(
                            "column \"{}\" is of type {} but expression is of type {}",
                            c.name,
                            crate::types::display_name(c.spec()),
                            out.ty.pg_name()
                        ))
                        .with_hint("You will need to rewrite or cast the expression."));
                    }
                }
                InsertSource::Query {
                    plan: Box::new(plan),
                    targets,
                    defaults,
                }
            }
        },
    };
    let visible = ins
        .table_alias
        .as_ref()
        .map(|a| ident(&a.alias))
        .unwrap_or_else(|| table.name.clone());
    let scope = Scope::table(visible, table.clone());
    Ok(InsertPlan {
        returning: returning(&ins.returning, &scope, ctx)?,
        table,
        source,
    })
}

fn check_width(values: usize, targets: usize) -> Result<(), SqlError> {
    if values > targets {
        return Err(SqlError::syntax(
            "INSERT has more expressions than target columns",
        ));
    }
    if values < targets {
        return Err(SqlError::syntax(
            "INSERT has more target columns than expressions",
        ));
    }
    Ok(())
}

/// The table columns an INSERT fills, in the order its values come: the listed columns, or
/// every visible column.
fn insert_targets(
    table: &TableDesc,
    columns: &[ObjectName],
    ctx: &BindContext<'_>,
) -> Result<Vec<usize>, SqlError> {
    if columns.is_empty() {
        return Ok((0..table.columns.len())
            .filter(|&i| !table.columns[i].hidden)
            .collect());
    }
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let id =
            c.0.last()
                .and_then(|p| p.as_ident())
                .ok_or_else(|| SqlError::syntax(format!("invalid column name {c}")))?;
        let name = ident(id);
        let pos = ctx.position(id.span.start);
        let i = table
            .column_index(&name)
            .ok_or_else(|| column_of_relation(table, &name).with_position(pos))?;
        if out.contains(&i) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{name}\" specified more than once"),
            )
            .with_position(pos));
        }
        out.push(i);
    }
    Ok(out)
}

/// The single table an UPDATE or DELETE targets, as a scope.
fn target_scope(
    twj: &TableWithJoins,
    ctx: &BindContext<'_>,
    tables: &Tables,
    stmt: &str,
) -> Result<Scope, SqlError> {
    if !twj.joins.is_empty() {
        return Err(SqlError::unsupported(format!(
            "{stmt} with joins is not supported yet"
        )));
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &twj.relation
    else {
        return Err(SqlError::unsupported(format!(
            "this {stmt} target is not supported"
        )));
    };
    let table = lookup_table(name, ctx, tables)?;
    let visible = alias
        .as_ref()
        .map(|a| ident(&a.name))
        .unwrap_or_else(|| table.name.clone());
    Ok(Scope::table(visible, table))
}

fn scan_for(
    scope: &Scope,
    selection: Option<&Expr>,
    ctx: &BindContext<'_>,
) -> Result<ScanPlan, SqlError> {
    let table = scope
        .table_desc()
        .cloned()
        .ok_or_else(|| SqlError::internal("DML scope without a table"))?;
    let filter = match selection {
        Some(w) => Some(ExprBinder::new(ctx, scope, "WHERE").bind_bool(w, "WHERE")?),
        None => None,
    };
    let range = keyrange::extract(&table, filter.as_ref());
    Ok(ScanPlan {
        table,
        range,
        filter,
    })
}

/// Plans an UPDATE.
pub(crate) fn plan_update(
    upd: &Update,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<UpdatePlan, SqlError> {
    if upd.from.is_some() {
        return Err(SqlError::unsupported(
            "UPDATE ... FROM is not supported yet",
        ));
    }
    if upd.or.is_some() || !upd.order_by.is_empty() || upd.limit.is_some() || upd.output.is_some() {
        return Err(SqlError::unsupported(
            "this form of UPDATE is not supported",
        ));
    }
    let scope = target_scope(&upd.table, ctx, tables, "UPDATE")?;
    let table = scope
        .table_desc()
        .cloned()
        .ok_or_else(|| SqlError::internal("UPDATE without a table"))?;
    let mut assignments: Vec<(usize, ScalarExpr)> = Vec::with_capacity(upd.assignments.len());
    for a in &upd.assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(SqlError::unsupported(
                "UPDATE with a column tuple is not supported yet",
            ));
        };
        let id = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .ok_or_else(|| SqlError::syntax(format!("invalid column name {name}")))?;
        let col_name = ident(id);
        let pos = ctx.position(id.span.start);
        let col = match (name.0.len(), table.column_index(&col_name)) {
            (1, Some(i)) => i,
            _ => return Err(column_of_relation(&table, &col_name).with_position(pos)),
        };
        if assignments.iter().any(|(c, _)| *c == col) {
            return Err(SqlError::syntax(format!(
                "multiple assignments to same column \"{col_name}\""
            ))
            .with_position(pos));
        }
        let c = &table.columns[col];
        let value = if is_default_keyword(&a.value) {
            default_value(c, ctx)?.ok_or_else(|| {
                SqlError::syntax(format!(
                    "column \"{col_name}\" can only be updated to DEFAULT"
                ))
            })?
        } else {
            ExprBinder::new(ctx, &scope, "UPDATE").bind_assign(&a.value, c, "expression")?
        };
        assignments.push((col, value));
    }
    let scan = scan_for(&scope, upd.selection.as_ref(), ctx)?;
    Ok(UpdatePlan {
        scan,
        assignments,
        returning: returning(&upd.returning, &scope, ctx)?,
    })
}

/// Plans a DELETE.
pub(crate) fn plan_delete(
    del: &Delete,
    ctx: &BindContext<'_>,
    tables: &Tables,
) -> Result<DeletePlan, SqlError> {
    if !del.tables.is_empty()
        || del.using.is_some()
        || !del.order_by.is_empty()
        || del.limit.is_some()
        || del.output.is_some()
    {
        return Err(SqlError::unsupported(
            "this form of DELETE is not supported",
        ));
    }
    let from = match &del.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [twj] = from.as_slice() else {
        return Err(SqlError::unsupported(
            "DELETE from several tables is not supported",
        ));
    };
    let scope = target_scope(twj, ctx, tables, "DELETE")?;
    let scan = scan_for(&scope, del.selection.as_ref(), ctx)?;
    Ok(DeletePlan {
        scan,
        returning: returning(&del.returning, &scope, ctx)?,
    })
}
