//! `\d` and friends: the catalog queries psql 15 sends, so the answers match psql's wherever
//! the server has the catalog (PostgreSQL today, Meridian once it grows `pg_catalog` views).
//!
//! `\d NAME` runs psql's lookup query, then a column query per relation found, and prints
//! psql's column table (Column, Type, Collation, Nullable, Default); the index, constraint and
//! footer sections of psql's full output are not produced.

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

/// psql's query for the columns of the relation with this OID.
pub(crate) fn columns_query(oid: &str) -> String {
    let oid: String = oid.chars().filter(char::is_ascii_digit).collect();
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
