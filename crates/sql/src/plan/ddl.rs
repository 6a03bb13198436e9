//! CREATE TABLE (with PRIMARY KEY, UNIQUE and CHECK constraints), CREATE INDEX, CREATE VIEW
//! and DROP TABLE / VIEW / INDEX.

use std::sync::Arc;

use sqlparser::ast::{
    ColumnDef, ColumnOption, CreateIndex, CreateTable, CreateTableOptions, CreateView, Expr,
    IndexColumn, ObjectType, SqlOption, Statement, TableConstraint,
};

use super::bind::ExprBinder;
use super::names::{ident, table_name};
use super::query::{plan_query, sort_desc};
use super::scope::Scope;
use super::{BindContext, lookup_base_table};
use crate::api::{SqlError, SqlType};
use crate::catalog::{CheckDesc, ColumnDesc, IndexDesc, SequenceDesc, TableDesc};
use crate::types;

/// A planned CREATE TABLE; the table id is assigned when it executes.
#[derive(Debug, Clone)]
pub(crate) struct CreateTablePlan {
    pub name: String,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDesc>,
    pub pk: Vec<usize>,
    /// UNIQUE constraints, as unique indexes (ids 2, 3, ...).
    pub indexes: Vec<IndexDesc>,
    pub checks: Vec<CheckDesc>,
    /// Sequences of SERIAL columns, created with the table.
    pub sequences: Vec<SequenceDesc>,
}

/// A planned CREATE SEQUENCE.
#[derive(Debug, Clone)]
pub(crate) struct CreateSequencePlan {
    pub seq: SequenceDesc,
    pub if_not_exists: bool,
}

impl CreateTablePlan {
    /// The descriptor of the new table once it has an id.
    pub(crate) fn descriptor(&self, id: u64) -> Result<TableDesc, crate::error::Error> {
        let mut t = TableDesc::new(
            id,
            self.name.clone(),
            self.columns.clone(),
            self.pk.clone(),
            1,
        )?;
        t.indexes = self.indexes.clone();
        t.next_index_id = 2 + self.indexes.len() as u32;
        t.checks = self.checks.clone();
        Ok(t)
    }
}

/// A planned CREATE INDEX; the index id is assigned when it executes (from the descriptor
/// read then).
#[derive(Debug, Clone)]
pub(crate) struct CreateIndexPlan {
    pub table: Arc<TableDesc>,
    pub index: IndexDesc,
    pub if_not_exists: bool,
}

/// A planned CREATE VIEW.
#[derive(Debug, Clone)]
pub(crate) struct CreateViewPlan {
    pub name: String,
    /// The view's query, as SQL text.
    pub sql: String,
    /// Its result columns.
    pub columns: Vec<ColumnDesc>,
    pub or_replace: bool,
    pub if_not_exists: bool,
}

/// What a DROP statement removes.
#[derive(Debug, Clone)]
pub(crate) enum DropPlan {
    /// Tables or views (resolved; missing ones were skipped under IF EXISTS).
    Relations {
        relations: Vec<Arc<TableDesc>>,
        views: bool,
    },
    /// Indexes by name (resolved when executing).
    Indexes { names: Vec<String>, if_exists: bool },
    /// Sequences by name (resolved when executing).
    Sequences { names: Vec<String>, if_exists: bool },
}

/// Checks `WITH (...)` storage parameters. They tune PostgreSQL's heap pages and vacuum, which
/// Meridian's storage does not have, so known ones are accepted (and ignored) and unknown ones
/// refused, as PostgreSQL refuses them.
fn check_storage_options(options: &CreateTableOptions) -> Result<(), SqlError> {
    let list = match options {
        CreateTableOptions::None => return Ok(()),
        CreateTableOptions::With(list) => list,
        _ => {
            return Err(SqlError::unsupported(
                "this form of CREATE TABLE is not supported yet",
            ));
        }
    };
    for option in list {
        let SqlOption::KeyValue { key, .. } = option else {
            return Err(SqlError::syntax(format!(
                "invalid storage parameter: {option}"
            )));
        };
        let name = key.to_string().to_ascii_lowercase();
        let known = name == "fillfactor"
            || name == "parallel_workers"
            || name == "user_catalog_table"
            || name.starts_with("autovacuum_")
            || name.starts_with("toast.")
            || name.starts_with("toast_");
        if !known {
            return Err(SqlError::new(
                "22023",
                format!("unrecognized parameter \"{name}\""),
            ));
        }
    }
    Ok(())
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
    check_storage_options(&ct.table_options)?;
    if ct.or_replace
        || ct.temporary
        || ct.external
        || ct.like.is_some()
        || ct.clone.is_some()
        || ct.inherits.is_some()
        || ct.partition_of.is_some()
        || ct.partition_by.is_some()
        || ct.on_commit.is_some()
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

    let mut uniques: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    let mut sequences: Vec<SequenceDesc> = Vec::new();
    let mut check_exprs: Vec<(Option<String>, Expr, Option<usize>)> = Vec::new();
    for (i, def) in ct.columns.iter().enumerate() {
        let col_name = ident(&def.name);
        if columns.iter().any(|c| c.name == col_name) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{col_name}\" specified more than once"),
            )
            .with_position(ctx.position(def.name.span.start)));
        }
        let parsed = column(def, &name, ctx)?;
        if let Some(seq) = serial_sequence(&parsed.desc) {
            sequences.push(seq);
        }
        explicit_null.push(parsed.explicit_null);
        if parsed.primary_key {
            if pk.is_some() {
                return Err(multiple_pk());
            }
            pk = Some(vec![i]);
        }
        if parsed.unique {
            uniques.push((None, vec![i]));
        }
        for (cname, e) in parsed.checks {
            check_exprs.push((cname, e, Some(i)));
        }
        columns.push(parsed.desc);
    }

    for c in &ct.constraints {
        match c {
            TableConstraint::PrimaryKey(p) => {
                if pk.is_some() {
                    return Err(multiple_pk());
                }
                pk = Some(key_columns(&p.columns, &columns, "primary key", ctx)?.0);
            }
            TableConstraint::Unique(u) => {
                let cols = key_columns(&u.columns, &columns, "unique", ctx)?.0;
                uniques.push((u.name.as_ref().map(ident), cols));
            }
            TableConstraint::Check(c) => {
                check_exprs.push((c.name.as_ref().map(ident), (*c.expr).clone(), None));
            }
            TableConstraint::ForeignKey(_) => {
                return Err(SqlError::unsupported(
                    "FOREIGN KEY constraints are not supported yet",
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
    let mut taken: Vec<String> = vec![format!("{name}_pkey")];
    let mut indexes = Vec::new();
    for (given, cols) in uniques {
        // A UNIQUE constraint equal to the primary key adds nothing.
        if cols == pk {
            continue;
        }
        let base = given.unwrap_or_else(|| {
            let names: Vec<&str> = cols.iter().map(|&c| columns[c].name.as_str()).collect();
            format!("{name}_{}_key", names.join("_"))
        });
        let index_name = unique_name(&base, &taken);
        taken.push(index_name.clone());
        indexes.push(IndexDesc {
            id: 2 + indexes.len() as u32,
            name: index_name,
            unique: true,
            columns: cols.into_iter().map(|c| (c, false)).collect(),
            stored: vec![],
        });
    }
    let checks = bind_new_checks(&name, &columns, &pk, check_exprs, &mut taken, ctx)?;
    Ok(CreateTablePlan {
        name,
        if_not_exists: ct.if_not_exists,
        columns,
        pk,
        indexes,
        checks,
        sequences,
    })
}

/// The sequence of a SERIAL column.
fn serial_sequence(col: &ColumnDesc) -> Option<SequenceDesc> {
    let name = col.owned_sequence.clone()?;
    let max = match col.ty {
        SqlType::Int2 => i64::from(i16::MAX),
        SqlType::Int4 => i64::from(i32::MAX),
        _ => i64::MAX,
    };
    Some(SequenceDesc {
        name,
        start: 1,
        increment: 1,
        min: 1,
        max,
        cycle: false,
    })
}

/// The integer type of a SERIAL type name.
fn serial_type(dt: &sqlparser::ast::DataType) -> Option<SqlType> {
    let sqlparser::ast::DataType::Custom(name, mods) = dt else {
        return None;
    };
    if !mods.is_empty() || name.0.len() != 1 {
        return None;
    }
    match name.0[0].as_ident()?.value.to_ascii_lowercase().as_str() {
        "serial" | "serial4" => Some(SqlType::Int4),
        "bigserial" | "serial8" => Some(SqlType::Int8),
        "smallserial" | "serial2" => Some(SqlType::Int2),
        _ => None,
    }
}

/// `base`, or `base1`, `base2`, ... if taken.
fn unique_name(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_string();
    }
    (1..)
        .map(|n| format!("{base}{n}"))
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| base.to_string())
}

/// Validates CHECK constraints of a new table and names them as PostgreSQL does
/// (`<table>_<column>_check`, or `<table>_check` when several columns are involved).
pub(super) fn bind_new_checks(
    table: &str,
    columns: &[ColumnDesc],
    pk: &[usize],
    exprs: Vec<(Option<String>, Expr, Option<usize>)>,
    taken: &mut Vec<String>,
    ctx: &BindContext<'_>,
) -> Result<Vec<CheckDesc>, SqlError> {
    if exprs.is_empty() {
        return Ok(vec![]);
    }
    let desc = Arc::new(
        TableDesc::new(0, table.to_string(), columns.to_vec(), pk.to_vec(), 1)
            .map_err(|e| e.into_sql())?,
    );
    let scope = Scope::table(table, &desc);
    let mut out = Vec::new();
    for (given, e, col) in exprs {
        let bound = ExprBinder::new(ctx, &scope, "check constraints").bind_bool(&e, "CHECK")?;
        let mut cols = Vec::new();
        bound.columns(&mut cols);
        let name = match given {
            Some(n) => n,
            None => {
                let c = col.or(if cols.len() == 1 { Some(cols[0]) } else { None });
                let base = match c {
                    Some(c) => format!("{table}_{}_check", columns[c].name),
                    None => format!("{table}_check"),
                };
                unique_name(&base, taken)
            }
        };
        taken.push(name.clone());
        out.push(CheckDesc {
            name,
            expr: e.to_string(),
        });
    }
    Ok(out)
}

/// The columns of a key (PRIMARY KEY, UNIQUE, CREATE INDEX) and their DESC flags.
pub(super) fn key_columns(
    cols: &[IndexColumn],
    columns: &[ColumnDesc],
    what: &str,
    ctx: &BindContext<'_>,
) -> Result<(Vec<usize>, Vec<bool>), SqlError> {
    let mut key = Vec::with_capacity(cols.len());
    let mut desc = Vec::with_capacity(cols.len());
    for ic in cols {
        let Expr::Identifier(id) = &ic.column.expr else {
            return Err(SqlError::unsupported(format!(
                "expressions in {what} keys are not supported"
            )));
        };
        let n = ident(id);
        let idx = columns
            .iter()
            .position(|c| c.name == n && !c.hidden)
            .ok_or_else(|| {
                SqlError::new(
                    "42703",
                    format!("column \"{n}\" named in key does not exist"),
                )
                .with_position(ctx.position(id.span.start))
            })?;
        if key.contains(&idx) && what != "index" {
            return Err(SqlError::new(
                "42701",
                format!("column \"{n}\" appears twice in {what} constraint"),
            )
            .with_position(ctx.position(id.span.start)));
        }
        key.push(idx);
        desc.push(sort_desc(&ic.column)?);
    }
    Ok((key, desc))
}

fn conflicting_null(col: &str, table: &str) -> SqlError {
    SqlError::syntax(format!(
        "conflicting NULL/NOT NULL declarations for column \"{col}\" of table \"{table}\""
    ))
}

/// A parsed column definition.
pub(super) struct ParsedColumn {
    pub desc: ColumnDesc,
    pub primary_key: bool,
    pub unique: bool,
    pub explicit_null: bool,
    pub checks: Vec<(Option<String>, Expr)>,
}

/// A column definition.
pub(super) fn column(
    def: &ColumnDef,
    table: &str,
    ctx: &BindContext<'_>,
) -> Result<ParsedColumn, SqlError> {
    let serial = serial_type(&def.data_type);
    let spec = match serial {
        Some(ty) => crate::types::TypeSpec::plain(ty),
        None => types::resolve(&def.data_type)?,
    };
    let mut col = ColumnDesc {
        id: 0,
        name: ident(&def.name),
        ty: spec.ty,
        nullable: true,
        max_len: spec.max_len,
        fixed: spec.fixed,
        default_expr: None,
        hidden: false,
        owned_sequence: None,
        numeric: spec.numeric,
    };
    if serial.is_some() {
        let seq = format!("{table}_{}_seq", col.name);
        col.default_expr = Some(format!("nextval('{seq}')"));
        col.owned_sequence = Some(seq);
    }
    let (mut null, mut not_null, mut is_pk, mut unique) = (false, false, false, false);
    let mut checks = Vec::new();
    for opt in &def.options {
        match &opt.option {
            ColumnOption::Null => null = true,
            ColumnOption::NotNull => not_null = true,
            ColumnOption::PrimaryKey(_) => is_pk = true,
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Default(e) => {
                // Validate now: an expression without columns that converts to the column type.
                let scope = Scope::empty();
                ExprBinder::new(ctx, &scope, "DEFAULT expressions").bind_assign(
                    e,
                    &col,
                    "default expression",
                )?;
                col.default_expr = Some(e.to_string());
            }
            ColumnOption::Check(c) => checks.push((c.name.as_ref().map(ident), (*c.expr).clone())),
            ColumnOption::ForeignKey(_) => {
                return Err(SqlError::unsupported(
                    "FOREIGN KEY constraints are not supported yet",
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
    col.nullable = !not_null && !is_pk && serial.is_none();
    Ok(ParsedColumn {
        desc: col,
        primary_key: is_pk,
        unique,
        explicit_null: null,
        checks,
    })
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
        fixed: false,
        default_expr: None,
        hidden: true,
        owned_sequence: None,
        numeric: None,
    }
}

/// Plans CREATE [UNIQUE] INDEX.
pub(crate) fn plan_create_index(
    ci: &CreateIndex,
    ctx: &BindContext<'_>,
) -> Result<CreateIndexPlan, SqlError> {
    if ci.predicate.is_some() {
        return Err(SqlError::unsupported(
            "partial indexes are not supported yet",
        ));
    }
    if ci.using.is_some() || !ci.with.is_empty() || !ci.index_options.is_empty() {
        return Err(SqlError::unsupported(
            "index methods and storage parameters are not supported",
        ));
    }
    let table = lookup_base_table(&ci.table_name, ctx, "create an index on")?;
    let (cols, desc) = key_columns(&ci.columns, &table.columns, "index", ctx)?;
    let name = match &ci.name {
        Some(n) => table_name(n)?,
        None => {
            let names: Vec<&str> = cols
                .iter()
                .map(|&c| table.columns[c].name.as_str())
                .collect();
            let base = format!("{}_{}_idx", table.name, names.join("_"));
            let taken: Vec<String> = table.indexes.iter().map(|i| i.name.clone()).collect();
            unique_name(&base, &taken)
        }
    };
    let mut stored = Vec::new();
    for id in &ci.include {
        let n = ident(id);
        let c = table
            .column_index(&n)
            .filter(|&c| !table.columns[c].hidden)
            .ok_or_else(|| SqlError::undefined_column(&n))?;
        if !stored.contains(&c) && !cols.contains(&c) {
            stored.push(c);
        }
    }
    Ok(CreateIndexPlan {
        index: IndexDesc {
            id: 0,
            name,
            unique: ci.unique,
            columns: cols.into_iter().zip(desc).collect(),
            stored,
        },
        table,
        if_not_exists: ci.if_not_exists,
    })
}

/// Plans CREATE [OR REPLACE] VIEW.
pub(crate) fn plan_create_view(
    cv: &CreateView,
    ctx: &BindContext<'_>,
) -> Result<CreateViewPlan, SqlError> {
    if cv.materialized || cv.or_alter || cv.options != CreateTableOptions::None {
        return Err(SqlError::unsupported(
            "this form of CREATE VIEW is not supported",
        ));
    }
    let name = table_name(&cv.name)?;
    let plan = plan_query(&cv.query, ctx, None)?;
    if cv.columns.len() > plan.columns.len() {
        return Err(SqlError::syntax(
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let mut columns = Vec::with_capacity(plan.columns.len());
    for (i, c) in plan.columns.iter().enumerate() {
        let name = cv
            .columns
            .get(i)
            .map(|v| ident(&v.name))
            .unwrap_or_else(|| c.name.clone());
        if columns.iter().any(|d: &ColumnDesc| d.name == name) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{name}\" specified more than once"),
            ));
        }
        columns.push(ColumnDesc::plain(i as u32 + 1, name, c.ty));
    }
    Ok(CreateViewPlan {
        name,
        sql: cv.query.to_string(),
        columns,
        or_replace: cv.or_replace,
        if_not_exists: cv.if_not_exists,
    })
}

/// Plans DROP TABLE / VIEW / INDEX.
pub(crate) fn plan_drop(stmt: &Statement, ctx: &BindContext<'_>) -> Result<DropPlan, SqlError> {
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
    if *temporary || table.is_some() {
        return Err(SqlError::unsupported("this form of DROP is not supported"));
    }
    let views = match object_type {
        ObjectType::Table => false,
        ObjectType::View => true,
        ObjectType::Sequence => {
            return Ok(DropPlan::Sequences {
                names: names.iter().map(table_name).collect::<Result<_, _>>()?,
                if_exists: *if_exists,
            });
        }
        ObjectType::Index => {
            return Ok(DropPlan::Indexes {
                names: names.iter().map(table_name).collect::<Result<_, _>>()?,
                if_exists: *if_exists,
            });
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "DROP {other} is not supported yet"
            )));
        }
    };
    let mut out: Vec<Arc<TableDesc>> = Vec::with_capacity(names.len());
    for n in names {
        let name = table_name(n)?;
        match ctx.tables.get(&name) {
            Some(Some(t)) => {
                if t.is_view() != views {
                    let (what, hint) = if views {
                        ("a view", "Use DROP TABLE to remove a table.")
                    } else {
                        ("a table", "Use DROP VIEW to remove a view.")
                    };
                    return Err(
                        SqlError::new("42809", format!("\"{name}\" is not {what}")).with_hint(hint)
                    );
                }
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t.clone());
                }
            }
            None => {
                ctx.missing.borrow_mut().insert(name.clone());
                return Err(SqlError::undefined_table(&name));
            }
            Some(None) if *if_exists => {}
            Some(None) => {
                let what = if views { "view" } else { "table" };
                return Err(SqlError::new(
                    "42P01",
                    format!("{what} \"{name}\" does not exist"),
                ));
            }
        }
    }
    Ok(DropPlan::Relations {
        relations: out,
        views,
    })
}

/// Plans CREATE SEQUENCE.
pub(crate) fn plan_create_sequence(
    name: &sqlparser::ast::ObjectName,
    if_not_exists: bool,
    options: &[sqlparser::ast::SequenceOptions],
    ctx: &BindContext<'_>,
) -> Result<CreateSequencePlan, SqlError> {
    use sqlparser::ast::SequenceOptions as O;
    let name = table_name(name)?;
    let value = |e: &Expr, what: &str| -> Result<i64, SqlError> {
        let scope = Scope::empty();
        let b = ExprBinder::new(ctx, &scope, "CREATE SEQUENCE").bind_typed(e)?;
        match b.eval_const()? {
            crate::api::Datum::Int(v) => Ok(v),
            _ => Err(SqlError::syntax(format!("{what} must be an integer"))),
        }
    };
    let (mut increment, mut min, mut max, mut start, mut cycle) = (1i64, None, None, None, false);
    for o in options {
        match o {
            O::IncrementBy(e, _) => increment = value(e, "INCREMENT")?,
            O::MinValue(Some(e)) => min = Some(value(e, "MINVALUE")?),
            O::MaxValue(Some(e)) => max = Some(value(e, "MAXVALUE")?),
            O::MinValue(None) | O::MaxValue(None) | O::Cache(_) | O::OwnedBy(None) => {}
            O::StartWith(e, _) => start = Some(value(e, "START")?),
            O::Cycle(no) => cycle = !no,
            O::DataType(_) | O::OwnedBy(Some(_)) => {
                return Err(SqlError::unsupported(
                    "this sequence option is not supported",
                ));
            }
        }
    }
    if increment == 0 {
        return Err(SqlError::new("22023", "INCREMENT must not be zero"));
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { i64::MIN });
    let max = max.unwrap_or(if increment > 0 { i64::MAX } else { -1 });
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if min >= max {
        return Err(SqlError::new(
            "22023",
            format!("MINVALUE ({min}) must be less than MAXVALUE ({max})"),
        ));
    }
    if start < min || start > max {
        return Err(SqlError::new(
            "22023",
            format!("START value ({start}) cannot be outside the sequence's range ({min}..{max})"),
        ));
    }
    Ok(CreateSequencePlan {
        seq: SequenceDesc {
            name,
            start,
            increment,
            min,
            max,
            cycle,
        },
        if_not_exists,
    })
}
