//! Tab completion for the interactive shell: SQL keywords, table names, meta-commands.
//!
//! Table names come from `information_schema.tables`, which PostgreSQL has and Meridian will
//! have; when the query fails the shell completes keywords only.

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// The query that lists the tables to complete.
pub(crate) const TABLES_QUERY: &str = "SELECT table_name FROM information_schema.tables \
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1";

/// SQL keywords offered for completion.
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ALL",
    "ALTER",
    "AND",
    "ANALYZE",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASE",
    "CAST",
    "CHECK",
    "COLUMN",
    "COMMIT",
    "CONSTRAINT",
    "COPY",
    "COUNT",
    "CREATE",
    "CROSS",
    "DATABASE",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "ELSE",
    "END",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FLOAT",
    "FOREIGN",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "IF",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTEGER",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "KEY",
    "LEFT",
    "LIKE",
    "LIMIT",
    "NOT",
    "NULL",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PASSWORD",
    "PRECISION",
    "PRIMARY",
    "REFERENCES",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "SCHEMA",
    "SELECT",
    "SET",
    "SHOW",
    "SMALLINT",
    "TABLE",
    "TEXT",
    "THEN",
    "TIMESTAMP",
    "TO",
    "TRANSACTION",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USER",
    "USING",
    "VALUES",
    "VARCHAR",
    "VIEW",
    "WHEN",
    "WHERE",
    "WITH",
];

/// Meta-commands offered for completion.
const META_COMMANDS: &[&str] = &[
    "\\?", "\\d", "\\di", "\\dn", "\\dt", "\\echo", "\\i", "\\l", "\\o", "\\q", "\\set",
    "\\timing", "\\unset", "\\x",
];

/// The completion state: the table names known so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct SqlHelper {
    tables: Vec<String>,
}

impl SqlHelper {
    pub(crate) fn set_tables(&mut self, tables: Vec<String>) {
        self.tables = tables;
    }

    /// The candidates for the word `prefix`: meta-commands for `\...`; otherwise keywords
    /// (in the case of the prefix: lower case unless it starts with a capital) and tables.
    pub(crate) fn candidates(&self, prefix: &str) -> Vec<String> {
        if prefix.starts_with('\\') {
            return META_COMMANDS
                .iter()
                .filter(|m| m.starts_with(prefix))
                .map(|m| (*m).to_owned())
                .collect();
        }
        if prefix.is_empty() {
            return Vec::new();
        }
        let upper = prefix.to_ascii_uppercase();
        let lower_case = !prefix.starts_with(|c: char| c.is_ascii_uppercase());
        let keywords = KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| {
            if lower_case {
                k.to_ascii_lowercase()
            } else {
                (*k).to_owned()
            }
        });
        let tables = self
            .tables
            .iter()
            .filter(|t| t.starts_with(prefix) || t.starts_with(&prefix.to_ascii_lowercase()))
            .cloned();
        let mut all: Vec<String> = tables.chain(keywords).collect();
        all.dedup();
        all
    }
}

/// Where the word ending at `pos` starts.
fn word_start(line: &str, pos: usize) -> usize {
    line[..pos]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\\'))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let candidates = self
            .candidates(&line[start..pos])
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

impl Validator for SqlHelper {}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_follow_the_case_typed() {
        let h = SqlHelper::default();
        assert_eq!(h.candidates("sel"), ["select"]);
        assert_eq!(h.candidates("SEL"), ["SELECT"]);
        assert_eq!(h.candidates("Wh"), ["WHEN", "WHERE"]);
        assert!(h.candidates("").is_empty());
        assert!(h.candidates("zzz").is_empty());
    }

    #[test]
    fn tables_and_meta_commands_complete() {
        let mut h = SqlHelper::default();
        h.set_tables(vec!["orders".into(), "order_items".into(), "users".into()]);
        assert_eq!(h.candidates("ord"), ["orders", "order_items", "order"]);
        assert_eq!(h.candidates("us"), ["users", "user", "using"]);
        assert_eq!(h.candidates("\\d"), ["\\d", "\\di", "\\dn", "\\dt"]);
    }

    #[test]
    fn words_start_after_separators() {
        assert_eq!(word_start("select * from ord", 17), 14);
        assert_eq!(word_start("sel", 3), 0);
        assert_eq!(word_start("x,\\dt", 5), 2);
        assert_eq!(word_start("select é", 9), 7);
    }
}
