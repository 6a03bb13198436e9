//! ALTER TABLE (one operation per statement) and TRUNCATE.
//!
//! A schema change produces the table's new descriptor and, when stored rows must change, how
//! each column of a new row is computed from the old row (`rewrite`): adding a column with a
//! non-NULL default fills it in existing rows, dropping a column rewrites every row without it
//! (row values are positional). Executed as one write with the table's rows in its read spans.

use std::sync::Arc;

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, Expr, ObjectName, RenameTableNameKind,
    TableConstraint, Truncate,
};

use super::bind::ExprBinder;
use super::dml::parse_stored_expr;
use super::names::{ident, table_name};
use super::scope::Scope;
use super::{BindContext, lookup_base_table};
use crate::api::SqlError;
use crate::catalog::{CheckDesc, IndexDesc, TableDesc};
use crate::expr::ScalarExpr;

/// A planned ALTER TABLE.
#[derive(Debug, Clone)]
pub(crate) struct AlterPlan {
    /// The table as it is.
    pub old: Arc<TableDesc>,
    /// The table as it will be (version bumped; possibly renamed).
    pub new: TableDesc,
    /// When rows change: each new column's value, over the old row.
    pub rewrite: Option<Vec<ScalarExpr>>,
    /// Conditions every (new) row must satisfy: CHECK constraints added, and NOT NULL columns
    /// (as `IS NOT NULL` named by column) when NOT NULL is added.
    pub validate: Vec<(String, ScalarExpr)>,
    /// Columns whose NOT NULL must be checked on existing rows.
    pub not_null: Vec<usize>,
    /// Indexes removed (their entries are deleted).
    pub dropped_indexes: Vec<IndexDesc>,
    /// An index added (backfilled from the rows).
    pub added_index: Option<IndexDesc>,
    /// The primary key changes (ADD PRIMARY KEY replacing the hidden `rowid`): every row moves
    /// to its new key and every secondary index, whose entries end with the primary key, is
    /// rebuilt.
    pub rekey: bool,
}

/// A planned TRUNCATE.
#[derive(Debug, Clone)]
pub(crate) struct TruncatePlan {
    pub tables: Vec<Arc<TableDesc>>,
}

fn object_name_str(n: &ObjectName) -> Result<String, SqlError> {
    table_name(n)
}

/// Plans TRUNCATE.
pub(crate) fn plan_truncate(t: &Truncate, ctx: &BindContext<'_>) -> Result<TruncatePlan, SqlError> {
    if t.partitions.is_some() {
        return Err(SqlError::unsupported(
            "TRUNCATE of partitions is not supported",
        ));
    }
    let mut tables: Vec<Arc<TableDesc>> = Vec::new();
    for target in &t.table_names {
        let table = lookup_base_table(&target.name, ctx, "truncate")?;
        if !tables.iter().any(|x| x.id == table.id) {
            tables.push(table);
        }
    }
    Ok(TruncatePlan { tables })
}

/// The identity rewrite of `table`'s rows (every column from itself).
fn identity(table: &TableDesc) -> Vec<ScalarExpr> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| ScalarExpr::Column(i, c.ty))
        .collect()
}

fn no_column(table: &str, col: &str) -> SqlError {
    SqlError::new(
        "42703",
        format!("column \"{col}\" of relation \"{table}\" does not exist"),
    )
}

/// Whether a stored CHECK expression of `table` reads column `col`.
fn check_reads(
    table: &Arc<TableDesc>,
    check: &CheckDesc,
    col: usize,
    ctx: &BindContext<'_>,
) -> bool {
    let Ok(e) = parse_stored_expr(&check.expr, &check.name) else {
        return true;
    };
    let stored = ctx.stored();
    let scope = Scope::table(&table.name, table);
    match ExprBinder::new(&stored, &scope, "check constraints").bind_bool(&e, "CHECK") {
        Ok(b) => {
            let mut cols = Vec::new();
            b.columns(&mut cols);
            cols.contains(&col)
        }
        Err(_) => true,
    }
}

/// Plans ALTER TABLE.
pub(crate) fn plan_alter(
    at: &AlterTable,
    ctx: &BindContext<'_>,
) -> Result<Option<AlterPlan>, SqlError> {
    let table = match lookup_base_table(&at.name, ctx, "alter") {
        Ok(t) => t,
        Err(e) if e.code == "42P01" && at.if_exists && ctx.missing.borrow().is_empty() => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let [op] = at.operations.as_slice() else {
        return Err(SqlError::unsupported(
            "ALTER TABLE with several operations is not supported yet",
        ));
    };
    let mut new = (*table).clone();
    new.version += 1;
    let mut plan = AlterPlan {
        old: table.clone(),
        new,
        rewrite: None,
        validate: vec![],
        not_null: vec![],
        dropped_indexes: vec![],
        added_index: None,
        rekey: false,
    };
    match op {
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            column_position: None,
            ..
        } => {
            let name = ident(&column_def.name);
            if table.column_index(&name).is_some() {
                if *if_not_exists {
                    return Ok(None);
                }
                return Err(SqlError::new(
                    "42701",
                    format!(
                        "column \"{name}\" of relation \"{}\" already exists",
                        table.name
                    ),
                ));
            }
            let parsed = super::ddl::column(column_def, &table.name, ctx)?;
            if parsed.primary_key || parsed.unique {
                return Err(SqlError::unsupported(
                    "adding a PRIMARY KEY or UNIQUE column is not supported yet",
                ));
            }
            let mut col = parsed.desc;
            col.id = table.columns.iter().map(|c| c.id).max().unwrap_or(0) + 1;
            let pos = plan.new.columns.len();
            plan.new.columns.push(col.clone());
            plan.new = TableDesc::rebuild(plan.new).map_err(|e| e.into_sql())?;
            let default = super::dml::default_value(&col, ctx)?.unwrap_or(ScalarExpr::null(col.ty));
            if !matches!(default, ScalarExpr::Literal(crate::api::Datum::Null, _)) {
                let mut rw = identity(&table);
                rw.push(default);
                plan.rewrite = Some(rw);
            }
            if !col.nullable {
                plan.not_null.push(pos);
            }
            add_checks(
                &mut plan,
                parsed
                    .checks
                    .into_iter()
                    .map(|(n, e)| (n, e, Some(pos)))
                    .collect(),
                ctx,
            )?;
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            let [col] = column_names.as_slice() else {
                return Err(SqlError::unsupported(
                    "dropping several columns at once is not supported",
                ));
            };
            let name = ident(col);
            let Some(c) = table
                .column_index(&name)
                .filter(|&c| !table.columns[c].hidden)
            else {
                if *if_exists {
                    return Ok(None);
                }
                return Err(no_column(&table.name, &name));
            };
            if table.pk.contains(&c) {
                return Err(SqlError::unsupported(
                    "dropping a primary key column is not supported",
                ));
            }
            let shift = |i: usize| if i > c { i - 1 } else { i };
            let (gone, kept): (Vec<IndexDesc>, Vec<IndexDesc>) =
                table.indexes.iter().cloned().partition(|ix| {
                    ix.columns.iter().any(|(k, _)| *k == c) || ix.stored.contains(&c)
                });
            plan.dropped_indexes = gone;
            plan.new.indexes = kept
                .into_iter()
                .map(|mut ix| {
                    ix.columns = ix.columns.iter().map(|(k, d)| (shift(*k), *d)).collect();
                    ix.stored = ix.stored.iter().map(|&k| shift(k)).collect();
                    ix
                })
                .collect();
            plan.new.checks = table
                .checks
                .iter()
                .filter(|ch| !check_reads(&table, ch, c, ctx))
                .cloned()
                .collect();
            plan.new.columns.remove(c);
            plan.new.pk = table.pk.iter().map(|&k| shift(k)).collect();
            plan.new = TableDesc::rebuild(plan.new).map_err(|e| e.into_sql())?;
            let mut rw = identity(&table);
            rw.remove(c);
            plan.rewrite = Some(rw);
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (from, to) = (ident(old_column_name), ident(new_column_name));
            let c = table
                .column_index(&from)
                .filter(|&c| !table.columns[c].hidden)
                .ok_or_else(|| no_column(&table.name, &from))?;
            if table.column_index(&to).is_some() {
                return Err(SqlError::new(
                    "42701",
                    format!(
                        "column \"{to}\" of relation \"{}\" already exists",
                        table.name
                    ),
                ));
            }
            if table
                .checks
                .iter()
                .any(|ch| check_reads(&table, ch, c, ctx))
            {
                return Err(SqlError::unsupported(
                    "renaming a column used by a CHECK constraint is not supported yet",
                ));
            }
            plan.new.columns[c].name = to;
        }
        AlterTableOperation::RenameTable { table_name } => {
            let target = match table_name {
                RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
            };
            plan.new.name = object_name_str(target)?;
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let name = ident(column_name);
            let c = table
                .column_index(&name)
                .filter(|&c| !table.columns[c].hidden)
                .ok_or_else(|| no_column(&table.name, &name))?;
            match op {
                AlterColumnOperation::SetNotNull => {
                    plan.new.columns[c].nullable = false;
                    plan.not_null.push(c);
                }
                AlterColumnOperation::DropNotNull => {
                    if table.pk.contains(&c) {
                        return Err(SqlError::new(
                            "42P16",
                            format!("column \"{name}\" is in a primary key"),
                        ));
                    }
                    plan.new.columns[c].nullable = true;
                }
                AlterColumnOperation::SetDefault { value } => {
                    let scope = Scope::empty();
                    ExprBinder::new(ctx, &scope, "DEFAULT expressions").bind_assign(
                        value,
                        &table.columns[c],
                        "default expression",
                    )?;
                    plan.new.columns[c].default_expr = Some(value.to_string());
                }
                AlterColumnOperation::DropDefault => plan.new.columns[c].default_expr = None,
                _ => {
                    return Err(SqlError::unsupported(
                        "this ALTER COLUMN operation is not supported yet",
                    ));
                }
            }
        }
        AlterTableOperation::AddConstraint { constraint, .. } => match constraint {
            TableConstraint::Check(ch) => {
                let checks = vec![(ch.name.as_ref().map(ident), (*ch.expr).clone(), None)];
                add_checks(&mut plan, checks, ctx)?;
            }
            TableConstraint::Unique(u) => {
                let (cols, _) = super::ddl::key_columns(&u.columns, &table.columns, "unique", ctx)?;
                let name = u.name.as_ref().map(ident).unwrap_or_else(|| {
                    let names: Vec<&str> = cols
                        .iter()
                        .map(|&c| table.columns[c].name.as_str())
                        .collect();
                    format!("{}_{}_key", table.name, names.join("_"))
                });
                let ix = IndexDesc {
                    id: plan.new.next_index_id,
                    name,
                    unique: true,
                    columns: cols.into_iter().map(|c| (c, false)).collect(),
                    stored: vec![],
                };
                plan.new.next_index_id += 1;
                plan.new.indexes.push(ix.clone());
                plan.added_index = Some(ix);
            }
            TableConstraint::PrimaryKey(pk) => add_primary_key(&mut plan, &pk.columns, ctx)?,
            _ => {
                return Err(SqlError::unsupported(
                    "this kind of constraint cannot be added yet",
                ));
            }
        },
        AlterTableOperation::DropConstraint {
            if_exists, name, ..
        } => {
            let n = ident(name);
            if let Some(i) = table.index_named(&n).filter(|&i| table.indexes[i].unique) {
                plan.dropped_indexes.push(plan.new.indexes.remove(i));
            } else if let Some(i) = table.checks.iter().position(|c| c.name == n) {
                plan.new.checks.remove(i);
            } else if *if_exists {
                return Ok(None);
            } else {
                return Err(SqlError::new(
                    "42704",
                    format!(
                        "constraint \"{n}\" of relation \"{}\" does not exist",
                        table.name
                    ),
                ));
            }
        }
        _ => {
            return Err(SqlError::unsupported(format!(
                "ALTER TABLE operation is not supported yet: {op}"
            )));
        }
    }
    Ok(Some(plan))
}

/// Adds CHECK constraints to the new descriptor and to the conditions existing rows are
/// validated against.
/// ADD PRIMARY KEY on a table created without one: the key columns become NOT NULL, the hidden
/// `rowid` key column goes, and rows and indexes are rewritten under the new key (`rekey`).
fn add_primary_key(
    plan: &mut AlterPlan,
    columns: &[sqlparser::ast::IndexColumn],
    ctx: &BindContext<'_>,
) -> Result<(), SqlError> {
    let table = plan.old.clone();
    if !table.has_hidden_key() {
        return Err(SqlError::new(
            "42P16",
            format!(
                "multiple primary keys for table \"{}\" are not allowed",
                table.name
            ),
        ));
    }
    let (cols, _) = super::ddl::key_columns(columns, &table.columns, "primary key", ctx)?;
    let hidden = table.pk[0];
    let shift = |i: usize| if i > hidden { i - 1 } else { i };
    let mut new = plan.new.clone();
    for &c in &cols {
        new.columns[c].nullable = false;
    }
    new.columns.remove(hidden);
    new.pk = cols.iter().map(|&c| shift(c)).collect();
    new.indexes = table
        .indexes
        .iter()
        .cloned()
        .map(|mut ix| {
            ix.columns = ix.columns.iter().map(|(k, d)| (shift(*k), *d)).collect();
            ix.stored = ix.stored.iter().map(|&k| shift(k)).collect();
            ix
        })
        .collect();
    plan.new = TableDesc::rebuild(new).map_err(|e| e.into_sql())?;
    plan.not_null = plan.new.pk.clone();
    let mut rw = identity(&table);
    rw.remove(hidden);
    plan.rewrite = Some(rw);
    plan.rekey = true;
    Ok(())
}

fn add_checks(
    plan: &mut AlterPlan,
    exprs: Vec<(Option<String>, Expr, Option<usize>)>,
    ctx: &BindContext<'_>,
) -> Result<(), SqlError> {
    if exprs.is_empty() {
        return Ok(());
    }
    let mut taken: Vec<String> = plan.new.checks.iter().map(|c| c.name.clone()).collect();
    taken.extend(plan.new.indexes.iter().map(|i| i.name.clone()));
    let checks = super::ddl::bind_new_checks(
        &plan.new.name,
        &plan.new.columns,
        &plan.new.pk,
        exprs,
        &mut taken,
        ctx,
    )?;
    let desc = Arc::new(plan.new.clone());
    let scope = Scope::table(&desc.name, &desc);
    for c in &checks {
        let e = parse_stored_expr(&c.expr, &c.name)?;
        let bound = ExprBinder::new(ctx, &scope, "check constraints").bind_bool(&e, "CHECK")?;
        plan.validate.push((c.name.clone(), bound));
    }
    plan.new.checks.extend(checks);
    Ok(())
}
