//! The catalog tables that do not depend on the user's tables: namespaces, access methods,
//! types, collations, databases and roles (from the users, see `users.rs`), and the tables psql reads that are always empty in
//! Meridian (no row-level security policies, extended statistics, publications, inheritance,
//! triggers or rules).

use super::relations::storage;
use super::{
    Col, Contents, DEFAULT_COLLATION_OID, INFORMATION_SCHEMA_OID, OWNER_OID, PG_CATALOG_OID,
    PUBLIC_OID, V,
};
use crate::api::SqlType::{self, Bool, Int2, Int4, Int8, Text};

/// The oid of `pg_default`, the tablespace everything is in.
const DEFAULT_TABLESPACE_OID: i64 = 1663;

/// The rows of catalog table `name`; `None` when it is not one of these.
pub(super) fn contents(name: &str, database: &str) -> Option<Contents> {
    let (cols, rows): (&[Col], Vec<Vec<V>>) = match name {
        "pg_namespace" => (
            &[
                ("oid", Int8),
                ("nspname", Text),
                ("nspowner", Int8),
                ("nspacl", Text),
            ],
            [
                (PG_CATALOG_OID, "pg_catalog"),
                (PUBLIC_OID, "public"),
                (INFORMATION_SCHEMA_OID, "information_schema"),
            ]
            .into_iter()
            .map(|(oid, n)| vec![V::I(oid), V::text(n), V::I(OWNER_OID), V::Null])
            .collect(),
        ),
        "pg_am" => (
            &[("oid", Int8), ("amname", Text), ("amtype", Text)],
            vec![
                vec![V::I(super::HEAP_AM), V::text("heap"), V::text("t")],
                vec![V::I(super::BTREE_AM), V::text("btree"), V::text("i")],
            ],
        ),
        "pg_type" => (TYPE_COLS, type_rows()),
        "pg_collation" => (
            &[
                ("oid", Int8),
                ("collname", Text),
                ("collnamespace", Int8),
                ("collowner", Int8),
                ("collprovider", Text),
                ("collisdeterministic", Bool),
                ("collencoding", Int4),
                ("collcollate", Text),
                ("collctype", Text),
            ],
            [
                (DEFAULT_COLLATION_OID, "default", "d", V::Null),
                (950, "C", "c", V::text("C")),
                (951, "POSIX", "c", V::text("POSIX")),
            ]
            .into_iter()
            .map(|(oid, name, provider, locale)| {
                let ctype = match &locale {
                    V::T(s) => V::T(s.clone()),
                    _ => V::Null,
                };
                vec![
                    V::I(oid),
                    V::text(name),
                    V::I(PG_CATALOG_OID),
                    V::I(OWNER_OID),
                    V::text(provider),
                    V::B(true),
                    V::I(-1),
                    locale,
                    ctype,
                ]
            })
            .collect(),
        ),
        "pg_database" => (DATABASE_COLS, database_rows(database)),
        "pg_tablespace" => (
            &[
                ("oid", Int8),
                ("spcname", Text),
                ("spcowner", Int8),
                ("spcacl", Text),
                ("spcoptions", Text),
            ],
            [(DEFAULT_TABLESPACE_OID, "pg_default"), (1664, "pg_global")]
                .into_iter()
                .map(|(oid, n)| vec![V::I(oid), V::text(n), V::I(OWNER_OID), V::Null, V::Null])
                .collect(),
        ),
        _ => (empty_table(name)?, vec![]),
    };
    Some(Contents {
        cols: cols.to_vec(),
        rows,
    })
}

const ROLE_COLS: &[Col] = &[
    ("oid", Int8),
    ("rolname", Text),
    ("rolsuper", Bool),
    ("rolinherit", Bool),
    ("rolcreaterole", Bool),
    ("rolcreatedb", Bool),
    ("rolcanlogin", Bool),
    ("rolreplication", Bool),
    ("rolconnlimit", Int4),
    ("rolpassword", Text),
    ("rolvaliduntil", Text),
    ("rolbypassrls", Bool),
    ("rolconfig", Text),
];

/// The oid of a role: `root` is the bootstrap superuser (10, as in PostgreSQL); other users get
/// a number derived from their name (FNV-1a), stable for the life of the user.
fn role_oid(name: &str) -> i64 {
    if name == crate::users::ROOT {
        return OWNER_OID;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    20_000 + i64::try_from(hash % 1_000_000_000).unwrap_or(0)
}

/// `pg_roles`: every user can log in; root is the superuser and the only one who manages
/// users. Passwords show as PostgreSQL shows them, masked.
pub(super) fn roles(users: &[String]) -> Contents {
    let rows = users
        .iter()
        .map(|name| {
            let root = name == crate::users::ROOT;
            vec![
                V::I(role_oid(name)),
                V::T(name.clone()),
                V::B(root),
                V::B(true),
                V::B(root),
                V::B(root),
                V::B(true),
                V::B(false),
                V::I(-1),
                V::text("********"),
                V::Null,
                V::B(root),
                V::Null,
            ]
        })
        .collect();
    Contents {
        cols: ROLE_COLS.to_vec(),
        rows,
    }
}

/// The columns of the catalog tables that are always empty here.
fn empty_table(name: &str) -> Option<&'static [Col]> {
    Some(match name {
        "pg_policy" => &[
            ("oid", Int8),
            ("polname", Text),
            ("polrelid", Int8),
            ("polcmd", Text),
            ("polpermissive", Bool),
            ("polroles", Text),
            ("polqual", Text),
            ("polwithcheck", Text),
        ],
        "pg_statistic_ext" => &[
            ("oid", Int8),
            ("stxrelid", Int8),
            ("stxname", Text),
            ("stxnamespace", Int8),
            ("stxowner", Int8),
            ("stxstattarget", Int4),
            ("stxkeys", Text),
            ("stxkind", Text),
            ("stxexprs", Text),
        ],
        "pg_publication" => &[
            ("oid", Int8),
            ("pubname", Text),
            ("pubowner", Int8),
            ("puballtables", Bool),
            ("pubinsert", Bool),
            ("pubupdate", Bool),
            ("pubdelete", Bool),
            ("pubtruncate", Bool),
            ("pubviaroot", Bool),
        ],
        "pg_publication_namespace" => &[("oid", Int8), ("pnpubid", Int8), ("pnnspid", Int8)],
        "pg_publication_rel" => &[
            ("oid", Int8),
            ("prpubid", Int8),
            ("prrelid", Int8),
            ("prqual", Text),
            ("prattrs", Text),
        ],
        "pg_inherits" => &[
            ("inhrelid", Int8),
            ("inhparent", Int8),
            ("inhseqno", Int4),
            ("inhdetachpending", Bool),
        ],
        "pg_trigger" => &[
            ("oid", Int8),
            ("tgrelid", Int8),
            ("tgparentid", Int8),
            ("tgname", Text),
            ("tgfoid", Int8),
            ("tgtype", Int2),
            ("tgenabled", Text),
            ("tgisinternal", Bool),
            ("tgconstrrelid", Int8),
            ("tgconstrindid", Int8),
            ("tgconstraint", Int8),
            ("tgdeferrable", Bool),
            ("tginitdeferred", Bool),
            ("tgnargs", Int2),
            ("tgattr", Text),
            ("tgqual", Text),
        ],
        "pg_rewrite" => &[
            ("oid", Int8),
            ("rulename", Text),
            ("ev_class", Int8),
            ("ev_type", Text),
            ("ev_enabled", Text),
            ("is_instead", Bool),
            ("ev_qual", Text),
            ("ev_action", Text),
        ],
        "pg_description" => &[
            ("objoid", Int8),
            ("classoid", Int8),
            ("objsubid", Int4),
            ("description", Text),
        ],
        "pg_auth_members" => &[
            ("roleid", Int8),
            ("member", Int8),
            ("grantor", Int8),
            ("admin_option", Bool),
        ],
        "pg_extension" => &[
            ("oid", Int8),
            ("extname", Text),
            ("extowner", Int8),
            ("extnamespace", Int8),
            ("extrelocatable", Bool),
            ("extversion", Text),
        ],
        "pg_foreign_table" => &[("ftrelid", Int8), ("ftserver", Int8), ("ftoptions", Text)],
        _ => return None,
    })
}

const TYPE_COLS: &[Col] = &[
    ("oid", Int8),
    ("typname", Text),
    ("typnamespace", Int8),
    ("typowner", Int8),
    ("typlen", Int2),
    ("typbyval", Bool),
    ("typtype", Text),
    ("typcategory", Text),
    ("typisdefined", Bool),
    ("typdelim", Text),
    ("typrelid", Int8),
    ("typelem", Int8),
    ("typnotnull", Bool),
    ("typbasetype", Int8),
    ("typtypmod", Int4),
    ("typndims", Int4),
    ("typcollation", Int8),
];

/// The types columns can have, plus `varchar` and `bpchar` (Meridian's TEXT with a length).
fn type_rows() -> Vec<Vec<V>> {
    use SqlType::*;
    let types: [(i64, &str, SqlType, &str); 15] = [
        (16, "bool", Bool, "B"),
        (17, "bytea", Bytea, "U"),
        (20, "int8", Int8, "N"),
        (21, "int2", Int2, "N"),
        (23, "int4", Int4, "N"),
        (25, "text", Text, "S"),
        (701, "float8", Float8, "N"),
        (1042, "bpchar", Text, "S"),
        (1043, "varchar", Text, "S"),
        (1082, "date", Date, "D"),
        (1114, "timestamp", Timestamp, "D"),
        (1184, "timestamptz", TimestampTz, "D"),
        (1186, "interval", Interval, "T"),
        (1700, "numeric", Numeric, "N"),
        (2950, "uuid", Uuid, "U"),
    ];
    types
        .into_iter()
        .map(|(oid, name, ty, category)| {
            let (len, byval, _, _) = storage(ty);
            let collation = if ty == Text { DEFAULT_COLLATION_OID } else { 0 };
            vec![
                V::I(oid),
                V::text(name),
                V::I(PG_CATALOG_OID),
                V::I(OWNER_OID),
                V::I(len),
                V::B(byval),
                V::text("b"),
                V::text(category),
                V::B(true),
                V::text(","),
                V::I(0),
                V::I(0),
                V::B(false),
                V::I(0),
                V::I(-1),
                V::I(0),
                V::I(collation),
            ]
        })
        .collect()
}

const DATABASE_COLS: &[Col] = &[
    ("oid", Int8),
    ("datname", Text),
    ("datdba", Int8),
    ("encoding", Int4),
    ("datcollate", Text),
    ("datctype", Text),
    ("daticulocale", Text),
    ("datlocprovider", Text),
    ("datacl", Text),
    ("dattablespace", Int8),
];

/// Every database name shares one namespace, so the session's database and the conventional
/// one are listed.
fn database_rows(database: &str) -> Vec<Vec<V>> {
    let mut names = vec!["defaultdb".to_string()];
    if database != "defaultdb" {
        names.push(database.to_string());
    }
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                V::I(16_384 + i as i64),
                V::T(n),
                V::I(OWNER_OID),
                V::I(6), // UTF8
                V::text("C"),
                V::text("C"),
                V::Null,
                V::text("c"),
                V::Null,
                V::I(DEFAULT_TABLESPACE_OID),
            ]
        })
        .collect()
}
