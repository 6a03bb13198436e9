//! The part of PostgreSQL's `pg_catalog` that psql's describe commands read: `\d`, `\dt`,
//! `\di`, `\dv`, `\dn`, `\l`, and `\d NAME` / `\d+ NAME` for tables, views and indexes.
//!
//! Each table is a view computed when a statement names it: the catalog (tables, views,
//! indexes, columns, defaults, constraints, statistics) as of the statement's timestamp becomes a `VALUES`
//! list, so the statement plans and runs as over any view.
//!
//! ```text
//!  relations.rs  pg_class, pg_index, pg_attribute, pg_attrdef, pg_constraint (from descriptors),
//!                pg_stats (from the tables' statistics)
//!  fixed.rs      pg_namespace, pg_am, pg_type, pg_collation, pg_database, pg_roles, and the
//!                tables psql reads that are always empty here (pg_policy, pg_inherits, ...)
//!  deparse.rs    format_type, and the definitions pg_get_expr / pg_get_indexdef /
//!                pg_get_constraintdef print
//! ```
//!
//! Object ids are derived from Meridian's table ids, stable for the life of a table: a table
//! owns the block of 100 oids from [`table_oid`], its indexes are `+ index id` (the primary key
//! is index 1) and its CHECK constraints `+ 50 + n`. Oids are `int8` columns. Arrays
//! (`pg_constraint.conkey`, `pg_policy.polroles`) are text in PostgreSQL's array syntax, and
//! `int2vector`s (`pg_index.indkey`) are space-separated text, as PostgreSQL prints them.
//!
//! The functions that look objects up by oid are bound as subqueries over hidden columns of
//! these tables (`meridian_*`, not listed by `*`): `pg_get_indexdef` reads
//! `pg_index.meridian_indexdef`, `pg_get_constraintdef` `pg_constraint.meridian_condef`,
//! `pg_get_viewdef` `pg_class.meridian_viewdef` (see `plan/bind_catalog.rs`).

mod deparse;
mod fixed;
mod relations;

use std::fmt::Write as _;
use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;

use crate::api::SqlType;
use crate::catalog::{self, ColumnDesc, TableDesc};
use crate::error::Result;

pub(crate) use deparse::{format_type, size_pretty};

/// The oid of `pg_catalog`'s namespace, as in PostgreSQL.
const PG_CATALOG_OID: i64 = 11;
/// The oid of `public`, as in PostgreSQL.
const PUBLIC_OID: i64 = 2200;
/// The oid of `information_schema`.
const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// The owner of everything: the bootstrap superuser's oid.
const OWNER_OID: i64 = 10;
/// Access methods: heap tables and btree indexes.
const HEAP_AM: i64 = 2;
const BTREE_AM: i64 = 403;
/// The database's default collation, and `C`.
const DEFAULT_COLLATION_OID: i64 = 100;
/// The offset of a table's first CHECK constraint in its oid block.
const CHECK_OID_OFFSET: i64 = 50;

/// Columns whose names start with this are hidden: `*` does not list them.
pub(crate) const HIDDEN_PREFIX: &str = "meridian_";

/// The oid of a table or view.
fn table_oid(t: &TableDesc) -> i64 {
    100_000 + 100 * i64::try_from(t.id).unwrap_or(0)
}

/// The oid of an index of `t` (the primary key is index 1).
fn index_oid(t: &TableDesc, index_id: u32) -> i64 {
    table_oid(t) + i64::from(index_id)
}

/// The oid of the `n`th CHECK constraint of `t`.
fn check_oid(t: &TableDesc, n: usize) -> i64 {
    table_oid(t) + CHECK_OID_OFFSET + i64::try_from(n).unwrap_or(0)
}

/// `pg_attribute.attnum` of the column at position `c` of `t`: hidden columns (a table's
/// `rowid`) are not numbered, as PostgreSQL has no such column.
fn attnum(t: &TableDesc, c: usize) -> i64 {
    let n = t.columns[..c].iter().filter(|col| !col.hidden).count();
    i64::try_from(n).unwrap_or(0) + 1
}

/// One column of a virtual table: its name and SQL type.
type Col = (&'static str, SqlType);

/// A value of a virtual table's row.
enum V {
    I(i64),
    F(f64),
    T(String),
    B(bool),
    Null,
}

impl V {
    fn text(s: &str) -> V {
        V::T(s.to_string())
    }
}

/// A virtual table's columns and rows.
struct Contents {
    cols: Vec<Col>,
    rows: Vec<Vec<V>>,
}

fn literal(v: &V, ty: SqlType) -> String {
    let body = match v {
        V::I(i) => i.to_string(),
        // Display never uses an exponent, so this is a valid numeric literal.
        V::F(f) if f.is_finite() => f.to_string(),
        V::F(_) => "NULL".to_string(),
        V::T(s) => format!("'{}'", s.replace('\'', "''")),
        V::B(b) => b.to_string(),
        V::Null => "NULL".to_string(),
    };
    format!(
        "CAST({body} AS {})",
        crate::types::internal_name(crate::types::TypeSpec::plain(ty))
    )
}

/// The view text of a table with `cols` holding `rows`.
fn view_sql(cols: &[Col], rows: &[Vec<V>]) -> String {
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    if rows.is_empty() {
        let nulls: Vec<String> = cols
            .iter()
            .map(|(n, ty)| format!("{} AS {n}", literal(&V::Null, *ty)))
            .collect();
        return format!("SELECT {} WHERE false", nulls.join(", "));
    }
    let mut sql = String::from("SELECT * FROM (VALUES ");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (j, (v, (_, ty))) in row.iter().zip(cols).enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&literal(v, *ty));
        }
        sql.push(')');
    }
    let _ = write!(sql, ") AS v({})", names.join(", "));
    sql
}

/// The catalog table `name` as a view descriptor, or `None` when `name` is not one.
pub(crate) async fn virtual_table(
    kv: &dyn KvClient,
    ts: Timestamp,
    name: &str,
    database: &str,
) -> Result<Option<TableDesc>> {
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(name);
    let contents = if relations::TABLES.contains(&bare) {
        let mut stats = crate::stats::read_all(kv, ts).await?;
        let mut tables = Vec::new();
        for t in catalog::list_tables(kv, ts).await? {
            if let Some(mut desc) = catalog::read_table(kv, &t, ts).await? {
                desc.stats = stats.remove(&desc.id).map(Arc::new);
                tables.push(Arc::new(desc));
            }
        }
        relations::contents(bare, &tables)
    } else if bare == "pg_roles" {
        Some(fixed::roles(&crate::users::list(kv, ts).await?))
    } else {
        fixed::contents(bare, database)
    };
    let Some(Contents { cols, rows }) = contents else {
        return Ok(None);
    };
    let columns = cols
        .iter()
        .enumerate()
        .map(|(i, (n, ty))| {
            let mut c = ColumnDesc::plain(i as u32 + 1, (*n).to_string(), *ty);
            c.hidden = n.starts_with(HIDDEN_PREFIX);
            c
        })
        .collect();
    let mut desc = TableDesc::new(0, name.to_string(), columns, vec![0], 1)?;
    desc.view = Some(view_sql(&cols, &rows));
    Ok(Some(desc))
}
