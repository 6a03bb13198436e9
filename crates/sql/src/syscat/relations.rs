//! The catalog tables computed from the table descriptors: relations (`pg_class`), indexes
//! (`pg_index`), columns (`pg_attribute`), defaults (`pg_attrdef`) and constraints
//! (`pg_constraint`).

use std::sync::Arc;

use super::deparse::{
    check_definition, default_text, index_definition, primary_index, primary_key_definition,
    type_modifier, type_oid,
};
use super::{
    BTREE_AM, Col, Contents, DEFAULT_COLLATION_OID, HEAP_AM, OWNER_OID, PUBLIC_OID, V, attnum,
    check_oid, index_oid, table_oid,
};
use crate::api::SqlType::{self, Bool, Float8, Int2, Int4, Int8, Text};
use crate::catalog::{ColumnDesc, IndexDesc, TableDesc};

/// The tables this file computes (names without the `pg_catalog.` qualifier).
pub(super) const TABLES: &[&str] = &[
    "pg_class",
    "pg_index",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_stats",
];

/// The rows of catalog table `name` for the relations `tables`.
pub(super) fn contents(name: &str, tables: &[Arc<TableDesc>]) -> Option<Contents> {
    let mut rows = Vec::new();
    let cols = match name {
        "pg_class" => {
            tables.iter().for_each(|t| class_rows(t, &mut rows));
            CLASS_COLS
        }
        "pg_index" => {
            for t in tables {
                for ix in visible_indexes(t) {
                    rows.push(index_row(t, &ix));
                }
            }
            INDEX_COLS
        }
        "pg_attribute" => {
            tables.iter().for_each(|t| attribute_rows(t, &mut rows));
            ATTRIBUTE_COLS
        }
        "pg_attrdef" => {
            for t in tables {
                for (c, col) in t.columns.iter().enumerate() {
                    if let (Some(d), false) = (&col.default_expr, col.hidden) {
                        let n = attnum(t, c);
                        rows.push(vec![
                            // Distinct within pg_attrdef; nothing looks a default up by oid.
                            V::I(table_oid(t) + 100 - n),
                            V::I(table_oid(t)),
                            V::I(n),
                            V::T(default_text(col, d)),
                        ]);
                    }
                }
            }
            ATTRDEF_COLS
        }
        "pg_constraint" => {
            tables.iter().for_each(|t| constraint_rows(t, &mut rows));
            CONSTRAINT_COLS
        }
        "pg_stats" => {
            tables.iter().for_each(|t| stats_rows(t, &mut rows));
            STATS_COLS
        }
        _ => return None,
    };
    Some(Contents {
        cols: cols.to_vec(),
        rows,
    })
}

/// The indexes of `t` PostgreSQL would show: its primary key unless the table is keyed by its
/// hidden rowid (PostgreSQL would have no index then), and its secondary indexes.
fn visible_indexes(t: &TableDesc) -> Vec<IndexDesc> {
    if t.is_view() {
        return vec![];
    }
    let mut out = Vec::with_capacity(t.indexes.len() + 1);
    if !t.has_hidden_key() {
        out.push(primary_index(t));
    }
    out.extend(t.indexes.iter().cloned());
    out
}

const CLASS_COLS: &[Col] = &[
    ("oid", Int8),
    ("relname", Text),
    ("relnamespace", Int8),
    ("reltype", Int8),
    ("reloftype", Int8),
    ("relowner", Int8),
    ("relam", Int8),
    ("relfilenode", Int8),
    ("reltablespace", Int8),
    ("relpages", Int4),
    ("reltuples", Float8),
    ("relallvisible", Int4),
    ("reltoastrelid", Int8),
    ("relhasindex", Bool),
    ("relisshared", Bool),
    ("relpersistence", Text),
    ("relkind", Text),
    ("relnatts", Int2),
    ("relchecks", Int2),
    ("relhasrules", Bool),
    ("relhastriggers", Bool),
    ("relhassubclass", Bool),
    ("relrowsecurity", Bool),
    ("relforcerowsecurity", Bool),
    ("relispopulated", Bool),
    ("relreplident", Text),
    ("relispartition", Bool),
    ("relrewrite", Int8),
    ("relacl", Text),
    ("reloptions", Text),
    ("relpartbound", Text),
    ("meridian_viewdef", Text),
];

/// A `pg_class` row.
struct ClassRow {
    oid: i64,
    /// Rows, as the table's statistics counted them.
    tuples: Option<u64>,
    name: String,
    kind: &'static str,
    am: i64,
    columns: usize,
    checks: usize,
    has_index: bool,
    viewdef: Option<String>,
}

fn class_row(r: ClassRow) -> Vec<V> {
    let count = |n: usize| V::I(i64::try_from(n).unwrap_or(i64::MAX));
    vec![
        V::I(r.oid),
        V::T(r.name),
        V::I(PUBLIC_OID),
        V::I(0),
        V::I(0),
        V::I(OWNER_OID),
        V::I(r.am),
        V::I(0),
        V::I(0),
        V::I(0),
        // -1: never counted, as PostgreSQL says before a table is first analyzed.
        r.tuples.map_or(V::I(-1), |n| V::F(n as f64)),
        V::I(0),
        V::I(0),
        V::B(r.has_index),
        V::B(false),
        V::text("p"),
        V::text(r.kind),
        count(r.columns),
        count(r.checks),
        V::B(false),
        V::B(false),
        V::B(false),
        V::B(false),
        V::B(false),
        V::B(true),
        V::text(if r.kind == "i" { "n" } else { "d" }),
        V::B(false),
        V::I(0),
        V::Null,
        V::Null,
        V::Null,
        r.viewdef.map_or(V::Null, V::T),
    ]
}

/// The number of columns PostgreSQL would list for `t` (its rowid is not one).
fn visible_columns(t: &TableDesc) -> usize {
    t.columns.iter().filter(|c| !c.hidden).count()
}

fn class_rows(t: &TableDesc, rows: &mut Vec<Vec<V>>) {
    let indexes = visible_indexes(t);
    rows.push(class_row(ClassRow {
        oid: table_oid(t),
        tuples: t.stats.as_ref().map(|s| s.row_count),
        name: t.name.clone(),
        kind: if t.is_view() { "v" } else { "r" },
        am: if t.is_view() { 0 } else { HEAP_AM },
        columns: visible_columns(t),
        checks: t.checks.len(),
        has_index: !indexes.is_empty(),
        viewdef: t.view.clone(),
    }));
    for ix in indexes {
        rows.push(class_row(ClassRow {
            oid: index_oid(t, ix.id),
            tuples: None,
            name: ix.name.clone(),
            kind: "i",
            am: BTREE_AM,
            columns: ix.columns.len() + ix.stored.len(),
            checks: 0,
            has_index: false,
            viewdef: None,
        }));
    }
}

const INDEX_COLS: &[Col] = &[
    ("indexrelid", Int8),
    ("indrelid", Int8),
    ("indnatts", Int2),
    ("indnkeyatts", Int2),
    ("indisunique", Bool),
    ("indnullsnotdistinct", Bool),
    ("indisprimary", Bool),
    ("indisexclusion", Bool),
    ("indimmediate", Bool),
    ("indisclustered", Bool),
    ("indisvalid", Bool),
    ("indcheckxmin", Bool),
    ("indisready", Bool),
    ("indislive", Bool),
    ("indisreplident", Bool),
    ("indkey", Text),
    ("indcollation", Text),
    ("indclass", Text),
    ("indoption", Text),
    ("indexprs", Text),
    ("indpred", Text),
    ("meridian_indexdef", Text),
    ("meridian_indexdef_pretty", Text),
];

fn index_row(t: &TableDesc, ix: &IndexDesc) -> Vec<V> {
    let count = |n: usize| V::I(i64::try_from(n).unwrap_or(i64::MAX));
    let all: Vec<usize> = ix
        .columns
        .iter()
        .map(|(c, _)| *c)
        .chain(ix.stored.iter().copied())
        .collect();
    let vector = |f: &dyn Fn(usize) -> String| all.iter().map(|&c| f(c)).collect::<Vec<_>>();
    let collation = |c: usize| {
        let textual = t.columns[c].ty == SqlType::Text;
        (if textual { DEFAULT_COLLATION_OID } else { 0 }).to_string()
    };
    // INDOPTION_DESC | INDOPTION_NULLS_FIRST for DESC key columns, as PostgreSQL's default.
    let options: Vec<&str> = ix
        .columns
        .iter()
        .map(|(_, desc)| if *desc { "3" } else { "0" })
        .collect();
    vec![
        V::I(index_oid(t, ix.id)),
        V::I(table_oid(t)),
        count(all.len()),
        count(ix.columns.len()),
        V::B(ix.unique),
        V::B(false),
        V::B(ix.id == 1),
        V::B(false),
        V::B(true),
        V::B(false),
        V::B(true),
        V::B(false),
        V::B(true),
        V::B(true),
        V::B(false),
        V::T(vector(&|c| attnum(t, c).to_string()).join(" ")),
        V::T(vector(&collation).join(" ")),
        V::T(vector(&|_| "0".to_string()).join(" ")),
        V::T(options.join(" ")),
        V::Null,
        V::Null,
        V::T(index_definition(t, ix, false)),
        V::T(index_definition(t, ix, true)),
    ]
}

const ATTRIBUTE_COLS: &[Col] = &[
    ("attrelid", Int8),
    ("attname", Text),
    ("atttypid", Int8),
    ("attstattarget", Int4),
    ("attlen", Int2),
    ("attnum", Int2),
    ("attndims", Int4),
    ("attcacheoff", Int4),
    ("atttypmod", Int4),
    ("attbyval", Bool),
    ("attalign", Text),
    ("attstorage", Text),
    ("attcompression", Text),
    ("attnotnull", Bool),
    ("atthasdef", Bool),
    ("atthasmissing", Bool),
    ("attidentity", Text),
    ("attgenerated", Text),
    ("attisdropped", Bool),
    ("attislocal", Bool),
    ("attinhcount", Int4),
    ("attcollation", Int8),
    ("attacl", Text),
    ("attoptions", Text),
    ("attfdwoptions", Text),
    ("attmissingval", Text),
];

/// `pg_type.typlen`, `typbyval`, `typalign` and `typstorage` of a column type.
pub(super) fn storage(ty: SqlType) -> (i64, bool, &'static str, &'static str) {
    match ty {
        SqlType::Bool => (1, true, "c", "p"),
        SqlType::Int2 => (2, true, "s", "p"),
        SqlType::Int4 | SqlType::Date => (4, true, "i", "p"),
        SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp | SqlType::TimestampTz => {
            (8, true, "d", "p")
        }
        SqlType::Interval => (16, false, "d", "p"),
        SqlType::Uuid => (16, false, "c", "p"),
        SqlType::Numeric => (-1, false, "i", "m"),
        SqlType::Text | SqlType::Bytea => (-1, false, "i", "x"),
    }
}

/// A `pg_attribute` row: column `col` of relation `rel`, numbered `num`.
fn attribute_row(rel: i64, num: i64, col: &ColumnDesc, in_index: bool) -> Vec<V> {
    let spec = col.spec();
    let (len, byval, align, storage) = storage(col.ty);
    let collation = if col.ty == SqlType::Text {
        DEFAULT_COLLATION_OID
    } else {
        0
    };
    vec![
        V::I(rel),
        V::T(col.name.clone()),
        V::I(type_oid(spec)),
        V::I(-1),
        V::I(len),
        V::I(num),
        V::I(0),
        V::I(-1),
        V::I(type_modifier(spec)),
        V::B(byval),
        V::text(align),
        V::text(storage),
        V::text(""),
        V::B(!col.nullable && !in_index),
        V::B(col.default_expr.is_some() && !in_index),
        V::B(false),
        V::text(""),
        V::text(""),
        V::B(false),
        V::B(true),
        V::I(0),
        V::I(collation),
        V::Null,
        V::Null,
        V::Null,
        V::Null,
    ]
}

fn attribute_rows(t: &TableDesc, rows: &mut Vec<Vec<V>>) {
    for (c, col) in t.columns.iter().enumerate() {
        if !col.hidden {
            rows.push(attribute_row(table_oid(t), attnum(t, c), col, false));
        }
    }
    // An index has one attribute per key column, then one per stored (INCLUDE) column.
    for ix in visible_indexes(t) {
        let cols = ix
            .columns
            .iter()
            .map(|(c, _)| *c)
            .chain(ix.stored.iter().copied());
        for (n, c) in cols.enumerate() {
            let num = i64::try_from(n).unwrap_or(0) + 1;
            rows.push(attribute_row(index_oid(t, ix.id), num, &t.columns[c], true));
        }
    }
}

const ATTRDEF_COLS: &[Col] = &[
    ("oid", Int8),
    ("adrelid", Int8),
    ("adnum", Int2),
    ("adbin", Text),
];

const CONSTRAINT_COLS: &[Col] = &[
    ("oid", Int8),
    ("conname", Text),
    ("connamespace", Int8),
    ("contype", Text),
    ("condeferrable", Bool),
    ("condeferred", Bool),
    ("convalidated", Bool),
    ("conrelid", Int8),
    ("contypid", Int8),
    ("conindid", Int8),
    ("conparentid", Int8),
    ("confrelid", Int8),
    ("confupdtype", Text),
    ("confdeltype", Text),
    ("confmatchtype", Text),
    ("conislocal", Bool),
    ("coninhcount", Int4),
    ("connoinherit", Bool),
    ("conkey", Text),
    ("confkey", Text),
    ("conbin", Text),
    ("meridian_condef", Text),
];

/// A `pg_constraint` row.
struct ConstraintRow<'a> {
    oid: i64,
    name: &'a str,
    kind: &'static str,
    table: &'a TableDesc,
    index: i64,
    columns: Vec<i64>,
    expr: Option<&'a str>,
    definition: String,
}

fn constraint_row(r: ConstraintRow<'_>) -> Vec<V> {
    let keys: Vec<String> = r.columns.iter().map(i64::to_string).collect();
    vec![
        V::I(r.oid),
        V::text(r.name),
        V::I(PUBLIC_OID),
        V::text(r.kind),
        V::B(false),
        V::B(false),
        V::B(true),
        V::I(table_oid(r.table)),
        V::I(0),
        V::I(r.index),
        V::I(0),
        V::I(0),
        V::text(" "),
        V::text(" "),
        V::text(" "),
        V::B(true),
        V::I(0),
        V::B(false),
        if keys.is_empty() {
            V::Null
        } else {
            V::T(format!("{{{}}}", keys.join(",")))
        },
        V::Null,
        r.expr.map_or(V::Null, V::text),
        V::T(r.definition),
    ]
}

/// The primary key (sharing its index's oid: the constraint is the index) and the CHECK
/// constraints of `t`. A CHECK's columns are not recorded, so its `conkey` is NULL.
fn constraint_rows(t: &TableDesc, rows: &mut Vec<Vec<V>>) {
    if t.is_view() {
        return;
    }
    if !t.has_hidden_key() {
        let pkey = t.pkey_name();
        rows.push(constraint_row(ConstraintRow {
            oid: index_oid(t, 1),
            name: &pkey,
            kind: "p",
            table: t,
            index: index_oid(t, 1),
            columns: t.pk.iter().map(|&c| attnum(t, c)).collect(),
            expr: None,
            definition: primary_key_definition(t),
        }));
    }
    for (n, check) in t.checks.iter().enumerate() {
        rows.push(constraint_row(ConstraintRow {
            oid: check_oid(t, n),
            name: &check.name,
            kind: "c",
            table: t,
            index: 0,
            columns: vec![],
            expr: Some(&check.expr),
            definition: check_definition(&check.expr),
        }));
    }
}

const STATS_COLS: &[Col] = &[
    ("schemaname", Text),
    ("tablename", Text),
    ("attname", Text),
    ("inherited", Bool),
    ("null_frac", Float8),
    ("avg_width", Int4),
    ("n_distinct", Float8),
    ("most_common_vals", Text),
    ("most_common_freqs", Text),
    ("histogram_bounds", Text),
    ("correlation", Float8),
];

/// The `pg_stats` rows of `t`: one per visible column its statistics cover. `n_distinct` is
/// always the count itself (PostgreSQL also allows a negative fraction of the rows); there
/// are no most common values, histograms or correlations.
fn stats_rows(t: &TableDesc, rows: &mut Vec<Vec<V>>) {
    let Some(stats) = &t.stats else { return };
    for col in t.columns.iter().filter(|c| !c.hidden) {
        let Some(cs) = stats.column(col.id) else {
            continue;
        };
        let null_frac = if stats.row_count == 0 {
            0.0
        } else {
            cs.nulls as f64 / stats.row_count as f64
        };
        rows.push(vec![
            V::text("public"),
            V::T(t.name.clone()),
            V::T(col.name.clone()),
            V::B(false),
            V::F(null_frac),
            V::I(i64::from(cs.avg_size)),
            V::F(cs.distinct as f64),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
        ]);
    }
}
