//! INSERT (with ON CONFLICT), UPDATE (with FROM) and DELETE (with USING).
//!
//! UPDATE and DELETE read their target rows through a relational plan whose rows are the
//! target table's row followed by the rows of any FROM / USING tables, planned like a SELECT
//! (so the WHERE clause narrows the target's key range and may pick an index).

use std::sync::Arc;

use sqlparser::ast::{
    AssignmentTarget, ConflictTarget, Delete, Expr, FromTable, Insert, ObjectName,
    OnConflictAction, OnInsert, SelectItem, SetExpr, TableFactor, TableWithJoins, Update,
    UpdateTableFromKind,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::access::conjuncts;
use super::bind::ExprBinder;
use super::from::{FromClause, bind_dml_from};
use super::join;
use super::names::ident;
use super::query::plan_query;
use super::rel::{Access, QueryPlan, Rel};
use super::scope::Scope;
use super::select::{Projection, bind_returning};
use super::{BindContext, lookup_base_table};
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
        plan: Box<QueryPlan>,
        targets: Vec<usize>,
        defaults: Vec<Option<ScalarExpr>>,
    },
}

/// What `ON CONFLICT` does with a row that would violate a unique constraint.
#[derive(Debug, Clone)]
pub(crate) enum ConflictAction {
    /// Skip the row.
    Nothing,
    /// Update the existing row: assignments over `[existing row, excluded row]`, applied only
    /// where `filter` holds.
    Update {
        assignments: Vec<(usize, ScalarExpr)>,
        filter: Option<ScalarExpr>,
    },
}

/// `ON CONFLICT [target] DO ...`.
#[derive(Debug, Clone)]
pub(crate) struct OnConflictPlan {
    /// The unique constraints whose conflicts are handled (empty: all of them).
    pub arbiters: Vec<Access>,
    pub action: ConflictAction,
}

/// A planned INSERT.
#[derive(Debug, Clone)]
pub(crate) struct InsertPlan {
    pub table: Arc<TableDesc>,
    pub source: InsertSource,
    pub on_conflict: Option<OnConflictPlan>,
    pub returning: Option<Projection>,
    /// CHECK constraints: name and condition over table rows.
    pub checks: Vec<(String, ScalarExpr)>,
}

/// A planned UPDATE: every row of `source` (target row, then FROM rows) gets `assignments`
/// (target column, new value over the source row). RETURNING reads the new target row followed
/// by the FROM rows.
#[derive(Debug, Clone)]
pub(crate) struct UpdatePlan {
    pub table: Arc<TableDesc>,
    pub source: Rel,
    pub assignments: Vec<(usize, ScalarExpr)>,
    pub returning: Option<Projection>,
    pub checks: Vec<(String, ScalarExpr)>,
}

/// A planned DELETE of the target rows of `source`.
#[derive(Debug, Clone)]
pub(crate) struct DeletePlan {
    pub table: Arc<TableDesc>,
    pub source: Rel,
    pub returning: Option<Projection>,
}

/// Whether `e` is the `DEFAULT` keyword in a VALUES list or SET clause.
pub(crate) fn is_default_keyword(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The value a column gets when none is given: its DEFAULT expression, NULL, or (`None`) a
/// generated key.
pub(crate) fn default_value(
    col: &ColumnDesc,
    ctx: &BindContext<'_>,
) -> Result<Option<ScalarExpr>, SqlError> {
    if col.hidden {
        return Ok(None);
    }
    let Some(text) = &col.default_expr else {
        return Ok(Some(ScalarExpr::null(col.ty)));
    };
    let expr = parse_stored_expr(text, &col.name)?;
    // Positions inside the stored text mean nothing to the client.
    let stored = ctx.stored();
    let scope = Scope::empty();
    let bound = ExprBinder::new(&stored, &scope, "DEFAULT expressions").bind_assign(
        &expr,
        col,
        "default expression",
    )?;
    Ok(Some(bound))
}

/// Parses an expression stored in the catalog (a DEFAULT or CHECK).
pub(crate) fn parse_stored_expr(text: &str, what: &str) -> Result<Expr, SqlError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            SqlError::internal(format!("stored expression of {what:?} does not parse: {e}"))
        })
}

/// The CHECK constraints of `table`, bound over its rows.
pub(crate) fn bind_checks(
    table: &Arc<TableDesc>,
    ctx: &BindContext<'_>,
) -> Result<Vec<(String, ScalarExpr)>, SqlError> {
    let stored = ctx.stored();
    let scope = Scope::table(&table.name, table);
    table
        .checks
        .iter()
        .map(|c| {
            let e = parse_stored_expr(&c.expr, &c.name)?;
            let b = ExprBinder::new(&stored, &scope, "check constraints").bind_bool(&e, "CHECK")?;
            Ok((c.name.clone(), b))
        })
        .collect()
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
pub(crate) fn plan_insert(ins: &Insert, ctx: &BindContext<'_>) -> Result<InsertPlan, SqlError> {
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
    let sqlparser::ast::TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::unsupported(
            "INSERT INTO TABLE FUNCTION is not supported",
        ));
    };
    let table = lookup_base_table(name, ctx, "insert into")?;
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
            SetExpr::Values(values)
                if q.order_by.is_none() && q.limit_clause.is_none() && q.with.is_none() =>
            {
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
                let plan = plan_query(q, ctx, None)?;
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
                    targets: targets.clone(),
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
    let scope = Scope::table(&visible, &table);
    let on_conflict = match &ins.on {
        None => None,
        Some(OnInsert::OnConflict(oc)) => {
            Some(plan_on_conflict(&table, &targets, &visible, oc, ctx)?)
        }
        Some(_) => {
            return Err(SqlError::unsupported(
                "ON DUPLICATE KEY UPDATE is not supported; use ON CONFLICT",
            ));
        }
    };
    Ok(InsertPlan {
        returning: returning(&ins.returning, &scope, ctx)?,
        checks: bind_checks(&table, ctx)?,
        table,
        source,
        on_conflict,
    })
}

/// Plans `ON CONFLICT [(cols) | ON CONSTRAINT name] DO NOTHING | DO UPDATE SET ... [WHERE]`.
fn plan_on_conflict(
    table: &Arc<TableDesc>,
    targets: &[usize],
    visible: &str,
    oc: &sqlparser::ast::OnConflict,
    ctx: &BindContext<'_>,
) -> Result<OnConflictPlan, SqlError> {
    let no_match = || {
        SqlError::new(
            "42P10",
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
    };
    if oc.conflict_target.is_none()
        && matches!(&oc.action, OnConflictAction::DoUpdate(du) if du.assignments.is_empty())
    {
        return Ok(upsert(table, targets));
    }
    let arbiters = match &oc.conflict_target {
        None => vec![],
        Some(ConflictTarget::Columns { columns, predicate }) => {
            if predicate.is_some() {
                return Err(SqlError::unsupported(
                    "ON CONFLICT with an index predicate is not supported",
                ));
            }
            let mut cols = Vec::with_capacity(columns.len());
            for c in columns {
                let name = ident(c);
                cols.push(
                    table
                        .column_index(&name)
                        .ok_or_else(|| column_of_relation(table, &name))?,
                );
            }
            cols.sort_unstable();
            let same = |key: &[usize]| {
                let mut k = key.to_vec();
                k.sort_unstable();
                k == cols
            };
            let mut out = Vec::new();
            if !table.has_hidden_key() && same(&table.pk) {
                out.push(Access::Primary);
            }
            for (i, ix) in table.indexes.iter().enumerate() {
                let key: Vec<usize> = ix.columns.iter().map(|(c, _)| *c).collect();
                if ix.unique && same(&key) {
                    out.push(Access::Index(i));
                }
            }
            if out.is_empty() {
                return Err(no_match());
            }
            out
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let n = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(ident)
                .unwrap_or_default();
            if n == table.pkey_name() {
                vec![Access::Primary]
            } else {
                match table.index_named(&n) {
                    Some(i) if table.indexes[i].unique => vec![Access::Index(i)],
                    _ => {
                        return Err(SqlError::new(
                            "42704",
                            format!(
                                "constraint \"{n}\" for table \"{}\" does not exist",
                                table.name
                            ),
                        ));
                    }
                }
            }
        }
    };
    let action = match &oc.action {
        OnConflictAction::DoNothing => ConflictAction::Nothing,
        OnConflictAction::DoUpdate(du) => {
            if arbiters.is_empty() {
                return Err(SqlError::syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .with_hint("For example, ON CONFLICT (column_name)."));
            }
            let mut scope = Scope::table(visible, table);
            scope.extend(Scope::table("excluded", table));
            let assignments = bind_assignments(table, &du.assignments, &scope, ctx)?;
            let filter = match &du.selection {
                Some(w) => Some(ExprBinder::new(ctx, &scope, "WHERE").bind_bool(w, "WHERE")?),
                None => None,
            };
            ConflictAction::Update {
                assignments,
                filter,
            }
        }
    };
    Ok(OnConflictPlan { arbiters, action })
}

/// UPSERT: on a primary key conflict, the existing row takes the new row's values of the
/// columns the statement names (the others keep theirs), as in CockroachDB.
fn upsert(table: &TableDesc, targets: &[usize]) -> OnConflictPlan {
    let width = table.columns.len();
    let assignments = targets
        .iter()
        .copied()
        .filter(|c| !table.pk.contains(c))
        .map(|c| (c, ScalarExpr::Column(width + c, table.columns[c].ty)))
        .collect();
    OnConflictPlan {
        arbiters: vec![Access::Primary],
        action: ConflictAction::Update {
            assignments,
            filter: None,
        },
    }
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

/// The target table of an UPDATE or DELETE and the name it is referred to by.
fn target(
    twj: &TableWithJoins,
    ctx: &BindContext<'_>,
    stmt: &str,
) -> Result<(Arc<TableDesc>, String), SqlError> {
    if !twj.joins.is_empty() {
        return Err(SqlError::unsupported(format!(
            "{stmt} with joins is not supported; use FROM / USING"
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
    let what = if stmt == "UPDATE" {
        "update"
    } else {
        "delete from"
    };
    let table = lookup_base_table(name, ctx, what)?;
    let visible = alias
        .as_ref()
        .map(|a| ident(&a.name))
        .unwrap_or_else(|| table.name.clone());
    Ok((table, visible))
}

/// The rows an UPDATE or DELETE works on: the target's rows matching WHERE, joined with the
/// FROM / USING tables.
fn source(
    fc: FromClause,
    selection: Option<&Expr>,
    ctx: &BindContext<'_>,
) -> Result<Rel, SqlError> {
    let mut conds = fc.conds;
    if let Some(w) = selection {
        let f = ExprBinder::new(ctx, &fc.scope, "WHERE").bind_bool(w, "WHERE")?;
        conjuncts(f, &mut conds);
    }
    join::build(fc.units, conds, None)
}

/// Binds `SET col = expr, ...` over `scope`.
fn bind_assignments(
    table: &TableDesc,
    assignments: &[sqlparser::ast::Assignment],
    scope: &Scope,
    ctx: &BindContext<'_>,
) -> Result<Vec<(usize, ScalarExpr)>, SqlError> {
    let mut out: Vec<(usize, ScalarExpr)> = Vec::with_capacity(assignments.len());
    for a in assignments {
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
            _ => return Err(column_of_relation(table, &col_name).with_position(pos)),
        };
        if out.iter().any(|(c, _)| *c == col) {
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
            ExprBinder::new(ctx, scope, "UPDATE").bind_assign(&a.value, c, "expression")?
        };
        out.push((col, value));
    }
    Ok(out)
}

/// Plans an UPDATE.
pub(crate) fn plan_update(upd: &Update, ctx: &BindContext<'_>) -> Result<UpdatePlan, SqlError> {
    if upd.or.is_some() || !upd.order_by.is_empty() || upd.limit.is_some() || upd.output.is_some() {
        return Err(SqlError::unsupported(
            "this form of UPDATE is not supported",
        ));
    }
    let (table, visible) = target(&upd.table, ctx, "UPDATE")?;
    let extra: &[TableWithJoins] = match &upd.from {
        None => &[],
        Some(UpdateTableFromKind::AfterSet(f)) | Some(UpdateTableFromKind::BeforeSet(f)) => f,
    };
    let fc = bind_dml_from(&table, &visible, extra, ctx)?;
    let assignments = bind_assignments(&table, &upd.assignments, &fc.scope, ctx)?;
    let returning = returning(&upd.returning, &fc.scope, ctx)?;
    let checks = bind_checks(&table, ctx)?;
    let source = source(fc, upd.selection.as_ref(), ctx)?;
    Ok(UpdatePlan {
        table,
        source,
        assignments,
        returning,
        checks,
    })
}

/// Plans a DELETE.
pub(crate) fn plan_delete(del: &Delete, ctx: &BindContext<'_>) -> Result<DeletePlan, SqlError> {
    if !del.tables.is_empty()
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
    let (table, visible) = target(twj, ctx, "DELETE")?;
    let extra: &[TableWithJoins] = del.using.as_deref().unwrap_or(&[]);
    let fc = bind_dml_from(&table, &visible, extra, ctx)?;
    let returning = returning(&del.returning, &fc.scope, ctx)?;
    let source = source(fc, del.selection.as_ref(), ctx)?;
    Ok(DeletePlan {
        table,
        source,
        returning,
    })
}
