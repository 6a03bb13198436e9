//! The part of PostgreSQL's `pg_catalog` that psql's `\dt`, `\di`, `\dn` and `\l` read.
//!
//! Each table is a view computed when a statement names it: the catalog (tables, views,
//! indexes) as of the statement's timestamp becomes a `VALUES` list, so the statement plans and
//! runs as over any view. Object ids are derived from Meridian's table ids (`table_oid`), stable
//! for the life of a table. Columns are the ones those commands use; other columns and tables
//! do not exist yet.

use std::fmt::Write as _;

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;

use crate::api::SqlType;
use crate::catalog::{self, ColumnDesc, TableDesc};
use crate::error::Result;

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

/// The tables this module provides (names without the `pg_catalog.` qualifier).
const TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_am",
    "pg_index",
    "pg_database",
];

/// The oid of a table or view.
fn table_oid(t: &TableDesc) -> i64 {
    100_000 + 100 * i64::try_from(t.id).unwrap_or(0)
}

/// The oid of an index of `t` (the primary key is index 1).
fn index_oid(t: &TableDesc, index_id: u32) -> i64 {
    table_oid(t) + i64::from(index_id)
}

/// One column of a virtual table: its name and SQL type.
type Col = (&'static str, SqlType);

/// A SQL literal of `ty` for a value (`None`: NULL).
enum V {
    I(i64),
    T(String),
    B(bool),
    Null,
}

fn literal(v: &V, ty: SqlType) -> String {
    let body = match v {
        V::I(i) => i.to_string(),
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
    use SqlType::{Bool, Int4, Int8, Text};
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(name);
    if !TABLES.contains(&bare) {
        return Ok(None);
    }
    let mut tables = Vec::new();
    if matches!(bare, "pg_class" | "pg_index") {
        for t in catalog::list_tables(kv, ts).await? {
            if let Some(desc) = catalog::get_table(kv, &t, ts).await? {
                tables.push(desc);
            }
        }
    }
    let (cols, rows): (Vec<Col>, Vec<Vec<V>>) = match bare {
        "pg_namespace" => (
            vec![("oid", Int8), ("nspname", Text), ("nspowner", Int8)],
            [
                (PG_CATALOG_OID, "pg_catalog"),
                (PUBLIC_OID, "public"),
                (INFORMATION_SCHEMA_OID, "information_schema"),
            ]
            .into_iter()
            .map(|(oid, n)| vec![V::I(oid), V::T(n.into()), V::I(OWNER_OID)])
            .collect(),
        ),
        "pg_am" => (
            vec![("oid", Int8), ("amname", Text)],
            vec![
                vec![V::I(HEAP_AM), V::T("heap".into())],
                vec![V::I(BTREE_AM), V::T("btree".into())],
            ],
        ),
        "pg_class" => {
            let mut rows = Vec::new();
            for t in &tables {
                let kind = if t.is_view() { "v" } else { "r" };
                let am = if t.is_view() { V::I(0) } else { V::I(HEAP_AM) };
                rows.push(vec![
                    V::I(table_oid(t)),
                    V::T(t.name.clone()),
                    V::I(PUBLIC_OID),
                    V::T(kind.into()),
                    V::I(OWNER_OID),
                    am,
                    V::B(!t.is_view()),
                ]);
                if t.is_view() {
                    continue;
                }
                // A table without a declared key is keyed by its hidden rowid: no visible
                // primary key index, as PostgreSQL would have none.
                let mut indexes = Vec::new();
                if !t.has_hidden_key() {
                    indexes.push((1, t.pkey_name()));
                }
                indexes.extend(t.indexes.iter().map(|ix| (ix.id, ix.name.clone())));
                for (id, name) in indexes {
                    rows.push(vec![
                        V::I(index_oid(t, id)),
                        V::T(name),
                        V::I(PUBLIC_OID),
                        V::T("i".into()),
                        V::I(OWNER_OID),
                        V::I(BTREE_AM),
                        V::B(false),
                    ]);
                }
            }
            (
                vec![
                    ("oid", Int8),
                    ("relname", Text),
                    ("relnamespace", Int8),
                    ("relkind", Text),
                    ("relowner", Int8),
                    ("relam", Int8),
                    ("relhasindex", Bool),
                ],
                rows,
            )
        }
        "pg_index" => {
            let mut rows = Vec::new();
            for t in tables.iter().filter(|t| !t.is_view()) {
                // A table without a declared key is keyed by its hidden rowid: no visible
                // primary key index, as PostgreSQL would have none.
                if !t.has_hidden_key() {
                    rows.push(vec![
                        V::I(index_oid(t, 1)),
                        V::I(table_oid(t)),
                        V::B(true),
                        V::B(true),
                    ]);
                }
                for ix in &t.indexes {
                    rows.push(vec![
                        V::I(index_oid(t, ix.id)),
                        V::I(table_oid(t)),
                        V::B(ix.unique),
                        V::B(false),
                    ]);
                }
            }
            (
                vec![
                    ("indexrelid", Int8),
                    ("indrelid", Int8),
                    ("indisunique", Bool),
                    ("indisprimary", Bool),
                ],
                rows,
            )
        }
        _ => {
            // pg_database: every database name shares one namespace, so the session's
            // database and the conventional one are listed.
            let mut names = vec!["defaultdb".to_string()];
            if database != "defaultdb" {
                names.push(database.to_string());
            }
            (
                vec![
                    ("oid", Int8),
                    ("datname", Text),
                    ("datdba", Int8),
                    ("encoding", Int4),
                    ("datcollate", Text),
                    ("datctype", Text),
                    ("daticulocale", Text),
                    ("datlocprovider", Text),
                    ("datacl", Text),
                ],
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| {
                        vec![
                            V::I(16_384 + i as i64),
                            V::T(n),
                            V::I(OWNER_OID),
                            V::I(6), // UTF8
                            V::T("C".into()),
                            V::T("C".into()),
                            V::Null,
                            V::T("c".into()),
                            V::Null,
                        ]
                    })
                    .collect(),
            )
        }
    };
    let columns = cols
        .iter()
        .enumerate()
        .map(|(i, (n, ty))| ColumnDesc::plain(i as u32 + 1, (*n).to_string(), *ty))
        .collect();
    let mut desc = TableDesc::new(0, name.to_string(), columns, vec![0], 1)?;
    desc.view = Some(view_sql(&cols, &rows));
    Ok(Some(desc))
}
