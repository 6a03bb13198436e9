//! `\d` and friends: the catalog queries psql 15 sends, so the answers match psql's wherever
//! the server has the catalog (PostgreSQL today, Meridian once it grows `pg_catalog` views).
//!
//! `\d NAME` runs psql's lookup query, then per relation found psql's queries for its kind,
//! its columns and its footers, and prints what psql prints: for a table or view the column
//! table (Column, Type, Collation, Nullable, Default) with the "Indexes:" and "Check
//! constraints:" sections, for an index its columns (Column, Type, Key?, Definition) and the
//! "primary key, btree, for table ..." line. Sections psql prints for features Meridian lacks
//! (foreign keys, triggers, policies, publications, partitions) are not produced.

use crate::input::DescribeKind;

const RELKIND_CASE: &str = "CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' \
    WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' \
    WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' \
    WHEN 'I' THEN 'partitioned index' END as \"Type\"";

/// What a describe command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One query whose result is printed under `title`; when it returns no rows and
    /// `if_empty` is set, that message goes to standard error instead (as psql does).
    Listing {
        sql: String,
        title: &'static str,
        if_empty: Option<String>,
    },
    /// `\d NAME`: `lookup` returns (oid, schema, name) rows; each is described with
    /// [`columns_query`].
    Relation { lookup: String, pattern: String },
}

/// The plan of a describe command with an optional (already interpolated) pattern.
pub(crate) fn plan(kind: DescribeKind, pattern: Option<&str>) -> Plan {
    let filter = pattern.map(NameFilter::parse);
    match kind {
        DescribeKind::Relations => match pattern {
            None => relations(&["r", "p", "v", "m", "S", "f", ""], false, None),
            Some(pattern) => Plan::Relation {
                lookup: lookup_query(filter.as_ref().expect("pattern")),
                pattern: pattern.to_owned(),
            },
        },
        DescribeKind::Tables => match &filter {
            None => relations(&["r", "p", ""], false, None),
            Some(f) => relations(&["r", "p", "t", "s", ""], false, Some(f)),
        },
        DescribeKind::Indexes => match &filter {
            None => relations(&["i", "I", ""], true, None),
            Some(f) => relations(&["i", "I", "s", ""], true, Some(f)),
        },
        DescribeKind::Databases => {
            let mut sql = "SELECT d.datname as \"Name\",\n       \
                 pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\",\n       \
                 pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\",\n       \
                 d.datcollate as \"Collate\",\n       \
                 d.datctype as \"Ctype\",\n       \
                 d.daticulocale as \"ICU Locale\",\n       \
                 CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS \"Locale Provider\",\n       \
                 pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\"\n\
                 FROM pg_catalog.pg_database d\n"
                .to_owned();
            if let Some(f) = &filter {
                sql.push_str(&format!("WHERE {}\n", f.name_match("d.datname")));
            }
            sql.push_str("ORDER BY 1;");
            Plan::Listing {
                sql,
                title: "List of databases",
                if_empty: None,
            }
        }
        DescribeKind::Schemas => {
            let mut sql = "SELECT n.nspname AS \"Name\",\n  \
                 pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"\n\
                 FROM pg_catalog.pg_namespace n\n"
                .to_owned();
            match &filter {
                None => sql
                    .push_str("WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'\n"),
                Some(f) => sql.push_str(&format!("WHERE {}\n", f.name_match("n.nspname"))),
            }
            sql.push_str("ORDER BY 1;");
            Plan::Listing {
                sql,
                title: "List of schemas",
                if_empty: None,
            }
        }
    }
}

fn relations(kinds: &[&str], indexes: bool, filter: Option<&NameFilter>) -> Plan {
    let kinds: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
    let mut sql = format!(
        "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  {RELKIND_CASE},\n  \
         pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\""
    );
    if indexes {
        sql.push_str(",\n  c2.relname as \"Table\"");
    }
    sql.push_str(
        "\nFROM pg_catalog.pg_class c\n     \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n     \
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam",
    );
    if indexes {
        sql.push_str(
            "\n     LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid\n     \
             LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid",
        );
    }
    sql.push_str(&format!("\nWHERE c.relkind IN ({})\n", kinds.join(",")));
    match filter {
        None => sql.push_str(
            "      AND n.nspname <> 'pg_catalog'\n      \
             AND n.nspname !~ '^pg_toast'\n      \
             AND n.nspname <> 'information_schema'\n  \
             AND pg_catalog.pg_table_is_visible(c.oid)\n",
        ),
        Some(f) => sql.push_str(&f.relation_conditions()),
    }
    sql.push_str("ORDER BY 1,2;");
    let if_empty = Some(match filter {
        None => "Did not find any relations.".to_owned(),
        Some(f) => format!("Did not find any relation named \"{}\".", f.original),
    });
    Plan::Listing {
        sql,
        title: "List of relations",
        if_empty,
    }
}

/// psql's query finding the relations `\d NAME` describes.
fn lookup_query(filter: &NameFilter) -> String {
    format!(
        "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE {}\
         ORDER BY 2, 3;",
        filter.relation_conditions().trim_start_matches("  AND ")
    )
}

/// The digits of an OID as the server printed it (anything else is dropped, so that the
/// queries below stay well-formed whatever the server sends).
fn oid_digits(oid: &str) -> String {
    oid.chars().filter(char::is_ascii_digit).collect()
}

/// A reduced form of psql's query for what kind of relation this OID is: its `relkind`.
pub(crate) fn kind_query(oid: &str) -> String {
    format!(
        "SELECT c.relkind, c.relhasindex, c.relchecks\nFROM pg_catalog.pg_class c\nWHERE c.oid = '{}';",
        oid_digits(oid)
    )
}

/// What psql calls a relation of `relkind` in the title of `\d NAME`.
pub(crate) fn relation_title(relkind: &str, schema: &str, name: &str) -> String {
    let kind = match relkind {
        "v" => "View",
        "m" => "Materialized view",
        "i" => "Index",
        "I" => "Partitioned index",
        "S" => "Sequence",
        "f" => "Foreign table",
        "p" => "Partitioned table",
        "t" => "TOAST table",
        _ => "Table",
    };
    format!("{kind} \"{schema}.{name}\"")
}

/// psql's query for the indexes of a table: (name, primary, unique, clustered, valid,
/// definition, constraint definition, constraint type, deferrable, deferred, replica
/// identity, tablespace).
pub(crate) fn indexes_query(oid: &str) -> String {
    let oid = oid_digits(oid);
    format!(
        "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, \
         pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),\n  \
         pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, condeferred, \
         i.indisreplident, c2.reltablespace\n\
         FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i\n  \
         LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = \
         i.indexrelid AND contype IN ('p','u','x'))\n\
         WHERE c.oid = '{oid}' AND c.oid = i.indrelid AND i.indexrelid = c2.oid\n\
         ORDER BY i.indisprimary DESC, c2.relname;"
    )
}

/// psql's query for the CHECK constraints of a table: (name, definition).
pub(crate) fn checks_query(oid: &str) -> String {
    format!(
        "SELECT r.conname, pg_catalog.pg_get_constraintdef(r.oid, true)\n\
         FROM pg_catalog.pg_constraint r\n\
         WHERE r.conrelid = '{}' AND r.contype = 'c'\n\
         ORDER BY 1;",
        oid_digits(oid)
    )
}

/// psql's query for the columns of an index: (name, type, key?, definition).
pub(crate) fn index_columns_query(oid: &str) -> String {
    let oid = oid_digits(oid);
    format!(
        "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  \
         CASE WHEN a.attnum <= (SELECT i.indnkeyatts FROM pg_catalog.pg_index i WHERE \
         i.indexrelid = '{oid}') THEN 'yes' ELSE 'no' END AS is_key,\n  \
         pg_catalog.pg_get_indexdef(a.attrelid, a.attnum, TRUE) AS indexdef\n\
         FROM pg_catalog.pg_attribute a\n\
         WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped\n\
         ORDER BY a.attnum;"
    )
}

/// A reduced form of psql's query for the footer of an index: (unique, primary, clustered,
/// valid, access method, table, predicate).
pub(crate) fn index_info_query(oid: &str) -> String {
    format!(
        "SELECT i.indisunique, i.indisprimary, i.indisclustered, i.indisvalid, a.amname, \
         c2.relname, pg_catalog.pg_get_expr(i.indpred, i.indrelid, true)\n\
         FROM pg_catalog.pg_index i, pg_catalog.pg_class c, pg_catalog.pg_class c2, \
         pg_catalog.pg_am a\n\
         WHERE i.indexrelid = c.oid AND c.oid = '{}' AND c.relam = a.oid\n\
         AND i.indrelid = c2.oid;",
        oid_digits(oid)
    )
}

/// One row of a catalog query, NULLs as empty strings (as psql reads them).
pub(crate) type Row = Vec<Option<String>>;

fn cell(row: &Row, i: usize) -> &str {
    row.get(i).and_then(Option::as_deref).unwrap_or_default()
}

fn is_true(row: &Row, i: usize) -> bool {
    matches!(cell(row, i), "t" | "true")
}

/// psql's "Indexes:" section from the rows of [`indexes_query`].
pub(crate) fn index_footers(rows: &[Row]) -> Vec<String> {
    if rows.is_empty() {
        return vec![];
    }
    let mut out = vec!["Indexes:".to_owned()];
    for r in rows {
        let mut line = format!("    \"{}\"", cell(r, 0));
        if cell(r, 7) == "x" {
            line.push_str(&format!(" {}", cell(r, 6)));
        } else {
            if is_true(r, 1) {
                line.push_str(" PRIMARY KEY,");
            } else if is_true(r, 2) {
                line.push_str(if cell(r, 7) == "u" {
                    " UNIQUE CONSTRAINT,"
                } else {
                    " UNIQUE,"
                });
            }
            // Everything after "USING" is echoed verbatim.
            let def = cell(r, 5);
            let def = def.find(" USING ").map_or(def, |at| &def[at + 7..]);
            line.push_str(&format!(" {def}"));
            if is_true(r, 8) {
                line.push_str(" DEFERRABLE");
            }
            if is_true(r, 9) {
                line.push_str(" INITIALLY DEFERRED");
            }
        }
        if is_true(r, 3) {
            line.push_str(" CLUSTER");
        }
        if !is_true(r, 4) {
            line.push_str(" INVALID");
        }
        if is_true(r, 10) {
            line.push_str(" REPLICA IDENTITY");
        }
        out.push(line);
    }
    out
}

/// psql's "Check constraints:" section from the rows of [`checks_query`].
pub(crate) fn check_footers(rows: &[Row]) -> Vec<String> {
    if rows.is_empty() {
        return vec![];
    }
    let mut out = vec!["Check constraints:".to_owned()];
    out.extend(
        rows.iter()
            .map(|r| format!("    \"{}\" {}", cell(r, 0), cell(r, 1))),
    );
    out
}

/// psql's footer of an index (`primary key, btree, for table "public.t"`) from the row of
/// [`index_info_query`]; `schema` is the index's.
pub(crate) fn index_footer(row: &Row, schema: &str) -> String {
    let mut line = String::new();
    if is_true(row, 1) {
        line.push_str("primary key, ");
    } else if is_true(row, 0) {
        line.push_str("unique, ");
    }
    line.push_str(&format!(
        "{}, for table \"{schema}.{}\"",
        cell(row, 4),
        cell(row, 5)
    ));
    if !cell(row, 6).is_empty() {
        line.push_str(&format!(", predicate ({})", cell(row, 6)));
    }
    if is_true(row, 2) {
        line.push_str(", clustered");
    }
    if !is_true(row, 3) {
        line.push_str(", invalid");
    }
    line
}

/// psql's query for the columns of the relation with this OID.
pub(crate) fn columns_query(oid: &str) -> String {
    let oid = oid_digits(oid);
    format!(
        "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  \
         (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)\n   \
         FROM pg_catalog.pg_attrdef d\n   \
         WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),\n  \
         a.attnotnull,\n  \
         (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t\n   \
         WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,\n  \
         a.attidentity,\n  a.attgenerated\n\
         FROM pg_catalog.pg_attribute a\n\
         WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped\n\
         ORDER BY a.attnum;"
    )
}

/// A psql name pattern, `[schema.]name`, with `*` and `?` wildcards; unquoted parts are
/// folded to lower case, double-quoted parts are taken as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameFilter {
    original: String,
    schema: Option<String>,
    name: String,
}

impl NameFilter {
    fn parse(pattern: &str) -> NameFilter {
        let mut parts = vec![String::new()];
        let mut quoted = false;
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let part = parts.last_mut().expect("never empty");
            match c {
                '"' if quoted && chars.next_if_eq(&'"').is_some() => part.push('"'),
                '"' => quoted = !quoted,
                '.' if !quoted => parts.push(String::new()),
                '*' if !quoted => part.push_str(".*"),
                '?' if !quoted => part.push('.'),
                c if !quoted => push_escaped(part, c.to_lowercase()),
                c => push_escaped(part, std::iter::once(c)),
            }
        }
        let name = parts.pop().expect("never empty");
        NameFilter {
            original: pattern.to_owned(),
            schema: parts.pop(),
            name,
        }
    }

    /// `column` matches the name part.
    fn name_match(&self, column: &str) -> String {
        regex_match(column, &self.name)
    }

    fn relation_conditions(&self) -> String {
        let mut sql = format!("  AND {}\n", regex_match("c.relname", &self.name));
        match &self.schema {
            Some(schema) => sql.push_str(&format!("  AND {}\n", regex_match("n.nspname", schema))),
            None => sql.push_str("  AND pg_catalog.pg_table_is_visible(c.oid)\n"),
        }
        sql
    }
}

fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        if "|()[]{}^$+\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

fn regex_match(column: &str, regex: &str) -> String {
    format!(
        "{column} OPERATOR(pg_catalog.~) '^({})$' COLLATE pg_catalog.default",
        regex.replace('\'', "''")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing_sql(kind: DescribeKind, pattern: Option<&str>) -> String {
        match plan(kind, pattern) {
            Plan::Listing { sql, .. } => sql,
            other => panic!("{other:?}"),
        }
    }

    /// The exact text psql 15 sends for `\dt` (captured with `psql -E`).
    #[test]
    fn dt_is_psqls_query() {
        assert_eq!(
            listing_sql(DescribeKind::Tables, None),
            "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as \"Type\",\n  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\nWHERE c.relkind IN ('r','p','')\n      AND n.nspname <> 'pg_catalog'\n      AND n.nspname !~ '^pg_toast'\n      AND n.nspname <> 'information_schema'\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;"
        );
    }

    #[test]
    fn patterns_become_anchored_regexes() {
        let sql = listing_sql(DescribeKind::Tables, Some("Foo*"));
        assert!(
            sql.contains("WHERE c.relkind IN ('r','p','t','s','')\n  AND c.relname OPERATOR(pg_catalog.~) '^(foo.*)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;"),
            "{sql}"
        );
        let f = NameFilter::parse("s.\"MixedCase\"?");
        assert_eq!(f.schema.as_deref(), Some("s"));
        assert_eq!(f.name, "MixedCase.");
        assert_eq!(NameFilter::parse("a$b(c)").name, "a\\$b\\(c\\)");
        assert_eq!(NameFilter::parse("it's").name, "it's");
        assert!(regex_match("x", "it's").contains("'^(it''s)$'"));
    }

    #[test]
    fn d_name_looks_up_then_lists_columns() {
        let Plan::Relation { lookup, .. } = plan(DescribeKind::Relations, Some("t")) else {
            panic!("not a relation plan");
        };
        assert_eq!(
            lookup,
            "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;"
        );
        assert!(columns_query("16384; drop").contains("a.attrelid = '16384'"));
    }

    /// A catalog row written as psql prints one unaligned: cells separated by `|`.
    fn row(cells: &str) -> Row {
        cells.split('|').map(|c| Some(c.to_owned())).collect()
    }

    /// Footers as psql 15 prints them for the same catalog rows.
    #[test]
    fn footers_read_like_psqls() {
        let indexes = [
            "t_pkey|t|t|f|t|CREATE UNIQUE INDEX t_pkey ON t USING btree (a, b)|PRIMARY KEY (a, b)|p|f|f|f|0",
            "t_c|f|f|f|t|CREATE INDEX t_c ON t USING btree (c DESC)|||||f|0",
            "t_d|f|t|f|t|CREATE UNIQUE INDEX t_d ON t USING btree (d)|||||f|0",
            "t_e|f|t|f|f|CREATE UNIQUE INDEX t_e ON t USING btree (e)|UNIQUE (e)|u|t|f|f|0",
        ]
        .map(row);
        assert_eq!(
            index_footers(&indexes),
            [
                "Indexes:",
                "    \"t_pkey\" PRIMARY KEY, btree (a, b)",
                "    \"t_c\" btree (c DESC)",
                "    \"t_d\" UNIQUE, btree (d)",
                "    \"t_e\" UNIQUE CONSTRAINT, btree (e) DEFERRABLE INVALID",
            ]
        );
        assert!(index_footers(&[]).is_empty());
        assert_eq!(
            check_footers(&[row("t_c_check|CHECK (c > 0)")]),
            ["Check constraints:", "    \"t_c_check\" CHECK (c > 0)"]
        );
        assert_eq!(
            index_footer(&row("t|t|f|t|btree|t|"), "public"),
            "primary key, btree, for table \"public.t\""
        );
        assert_eq!(
            index_footer(&row("t|f|f|t|btree|t|(d > 0)"), "public"),
            "unique, btree, for table \"public.t\", predicate ((d > 0))"
        );
        assert_eq!(
            relation_title("i", "public", "t_pkey"),
            "Index \"public.t_pkey\""
        );
        assert_eq!(relation_title("r", "public", "t"), "Table \"public.t\"");
        assert!(indexes_query("1; x").contains("c.oid = '1'"));
    }

    #[test]
    fn databases_and_schemas_have_their_titles() {
        for (kind, title) in [
            (DescribeKind::Databases, "List of databases"),
            (DescribeKind::Schemas, "List of schemas"),
            (DescribeKind::Indexes, "List of relations"),
        ] {
            let Plan::Listing { title: t, sql, .. } = plan(kind, None) else {
                panic!("not a listing");
            };
            assert_eq!(t, title);
            assert!(sql.ends_with("ORDER BY 1;") || sql.ends_with("ORDER BY 1,2;"));
        }
    }
}
