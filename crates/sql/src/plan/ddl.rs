//! CREATE TABLE and DROP TABLE.

use std::sync::Arc;

use sqlparser::ast::{
    ColumnDef, ColumnOption, CreateTable, CreateTableOptions, ObjectType, Statement,
    TableConstraint,
};

use super::bind::ExprBinder;
use super::names::{ident, table_name};
use super::scope::Scope;
use super::{BindContext, Tables};
use crate::api::{SqlError, SqlType};
use crate::catalog::{ColumnDesc, TableDesc};
use crate::types;

/// A planned CREATE TABLE; the table id is assigned when it executes.
#[derive(Debug, Clone)]
pub(crate) struct CreateTablePlan {
    pub name: String,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDesc>,
    pub pk: Vec<usize>,
}

impl CreateTablePlan {
    /// The descriptor of the new table once it has an id.
    pub(crate) fn descriptor(&self, id: u64) -> Result<TableDesc, crate::error::Error> {
        TableDesc::new(
            id,
            self.name.clone(),
            self.columns.clone(),
            self.pk.clone(),
            1,
        )
    }
}

/// A planned DROP TABLE of existing tables (missing ones were skipped under IF EXISTS).
#[derive(Debug, Clone)]
pub(crate) struct DropTablePlan {
    pub tables: Vec<Arc<TableDesc>>,
}

/// Plans CREATE TABLE.
pub(crate) fn plan_create_table(
    ct: &CreateTable,
    ctx: &BindContext<'_>,
) -> Result<CreateTablePlan, SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::unsupported(
            "CREATE TABLE ... AS is not supported yet",
        ));
    }
    if ct.or_replace
        || ct.temporary
        || ct.external
        || ct.like.is_some()
        || ct.clone.is_some()
        || ct.inherits.is_some()
        || ct.partition_of.is_some()
        || ct.partition_by.is_some()
        || ct.on_commit.is_some()
        || ct.table_options != CreateTableOptions::None
    {
        return Err(SqlError::unsupported(
            "this form of CREATE TABLE is not supported yet",
        ));
    }
    let name = table_name(&ct.name)?;
    let mut columns: Vec<ColumnDesc> = Vec::with_capacity(ct.columns.len() + 1);
    let mut pk: Option<Vec<usize>> = None;
    let mut explicit_null: Vec<bool> = Vec::with_capacity(ct.columns.len());
    let multiple_pk = || {
        SqlError::new(
            "42P16",
            format!("multiple primary keys for table \"{name}\" are not allowed"),
        )
    };

    for (i, def) in ct.columns.iter().enumerate() {
        let col_name = ident(&def.name);
        if columns.iter().any(|c| c.name == col_name) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{col_name}\" specified more than once"),
            )
            .with_position(ctx.position(def.name.span.start)));
        }
        let (col, is_pk, null) = column(def, &name, ctx)?;
        explicit_null.push(null);
        if is_pk {
            if pk.is_some() {
                return Err(multiple_pk());
            }
            pk = Some(vec![i]);
        }
        columns.push(col);
    }

    for c in &ct.constraints {
        match c {
            TableConstraint::PrimaryKey(p) => {
                if pk.is_some() {
                    return Err(multiple_pk());
                }
                let mut key = Vec::with_capacity(p.columns.len());
                for ic in &p.columns {
                    let sqlparser::ast::Expr::Identifier(id) = &ic.column.expr else {
                        return Err(SqlError::unsupported(
                            "expressions in PRIMARY KEY are not supported",
                        ));
                    };
                    let n = ident(id);
                    let idx = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                        SqlError::new(
                            "42703",
                            format!("column \"{n}\" named in key does not exist"),
                        )
                        .with_position(ctx.position(id.span.start))
                    })?;
                    if key.contains(&idx) {
                        return Err(SqlError::new(
                            "42701",
                            format!("column \"{n}\" appears twice in primary key constraint"),
                        )
                        .with_position(ctx.position(id.span.start)));
                    }
                    key.push(idx);
                }
                pk = Some(key);
            }
            TableConstraint::Unique(_) => {
                return Err(SqlError::unsupported(
                    "UNIQUE constraints are not supported yet",
                ));
            }
            TableConstraint::ForeignKey(_) => {
                return Err(SqlError::unsupported(
                    "FOREIGN KEY constraints are not supported yet",
                ));
            }
            TableConstraint::Check(_) => {
                return Err(SqlError::unsupported(
                    "CHECK constraints are not supported yet",
                ));
            }
            _ => {
                return Err(SqlError::unsupported(
                    "this table constraint is not supported yet",
                ));
            }
        }
    }

    let pk = match pk {
        Some(pk) => {
            for &i in &pk {
                if explicit_null[i] {
                    return Err(conflicting_null(&columns[i].name, &name));
                }
                columns[i].nullable = false;
            }
            pk
        }
        None => {
            columns.push(hidden_rowid(&columns));
            vec![columns.len() - 1]
        }
    };
    for (i, c) in columns.iter_mut().enumerate() {
        c.id = i as u32 + 1;
    }
    Ok(CreateTablePlan {
        name,
        if_not_exists: ct.if_not_exists,
        columns,
        pk,
    })
}

fn conflicting_null(col: &str, table: &str) -> SqlError {
    SqlError::syntax(format!(
        "conflicting NULL/NOT NULL declarations for column \"{col}\" of table \"{table}\""
    ))
}

/// A column definition; also returns whether it declared PRIMARY KEY and whether it declared
/// an explicit NULL (which a table-level PRIMARY KEY then rejects).
fn column(
    def: &ColumnDef,
    table: &str,
    ctx: &BindContext<'_>,
) -> Result<(ColumnDesc, bool, bool), SqlError> {
    let spec = types::resolve(&def.data_type)?;
    let mut col = ColumnDesc {
        id: 0,
        name: ident(&def.name),
        ty: spec.ty,
        nullable: true,
        max_len: spec.max_len,
        default_expr: None,
        hidden: false,
    };
    let (mut null, mut not_null, mut is_pk) = (false, false, false);
    for opt in &def.options {
        match &opt.option {
            ColumnOption::Null => null = true,
            ColumnOption::NotNull => not_null = true,
            ColumnOption::PrimaryKey(_) => is_pk = true,
            ColumnOption::Default(e) => {
                // Validate now: a constant expression that converts to the column type.
                let scope = Scope::empty();
                ExprBinder::new(ctx, &scope, "DEFAULT expressions").bind_assign(
                    e,
                    &col,
                    "default expression",
                )?;
                col.default_expr = Some(e.to_string());
            }
            ColumnOption::Unique(_) => {
                return Err(SqlError::unsupported(
                    "UNIQUE constraints are not supported yet",
                ));
            }
            ColumnOption::ForeignKey(_) => {
                return Err(SqlError::unsupported(
                    "FOREIGN KEY constraints are not supported yet",
                ));
            }
            ColumnOption::Check(_) => {
                return Err(SqlError::unsupported(
                    "CHECK constraints are not supported yet",
                ));
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "column option is not supported yet: {other}"
                )));
            }
        }
    }
    if null && (not_null || is_pk) {
        return Err(conflicting_null(&col.name, table));
    }
    col.nullable = !not_null && !is_pk;
    Ok((col, is_pk, null))
}

/// The hidden key of a table without a primary key: `rowid` (or `rowid_N` if taken).
fn hidden_rowid(columns: &[ColumnDesc]) -> ColumnDesc {
    let mut name = "rowid".to_string();
    let mut n = 0;
    while columns.iter().any(|c| c.name == name) {
        n += 1;
        name = format!("rowid_{n}");
    }
    ColumnDesc {
        id: 0,
        name,
        ty: SqlType::Int8,
        nullable: false,
        max_len: None,
        default_expr: None,
        hidden: true,
    }
}

/// Plans DROP TABLE.
pub(crate) fn plan_drop(stmt: &Statement, tables: &Tables) -> Result<DropTablePlan, SqlError> {
    let Statement::Drop {
        object_type,
        if_exists,
        names,
        temporary,
        table,
        ..
    } = stmt
    else {
        return Err(SqlError::internal("plan_drop on another statement"));
    };
    if *object_type != ObjectType::Table || *temporary || table.is_some() {
        return Err(SqlError::unsupported(format!(
            "DROP {object_type} is not supported yet"
        )));
    }
    let mut out: Vec<Arc<TableDesc>> = Vec::with_capacity(names.len());
    for n in names {
        let name = table_name(n)?;
        match tables.get(&name) {
            Some(Some(t)) => {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t.clone());
                }
            }
            _ if *if_exists => {}
            _ => {
                return Err(SqlError::new(
                    "42P01",
                    format!("table \"{name}\" does not exist"),
                ));
            }
        }
    }
    Ok(DropTablePlan { tables: out })
}
