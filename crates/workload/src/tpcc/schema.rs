//! The TPC-C tables: the schema file, and dropping and creating them.

use tokio_postgres::Client;

use crate::error::{Result, SqlContext};

/// `sql/tpcc/schema.sql`: the nine tables and the secondary indexes the transactions use.
pub const SCHEMA_SQL: &str = include_str!("../../../../sql/tpcc/schema.sql");

/// The tables, in the order `init` drops them.
pub const TABLES: [&str; 9] = [
    "order_line",
    "new_order",
    "oorder",
    "history",
    "customer",
    "district",
    "stock",
    "item",
    "warehouse",
];

/// The statements of the schema file: comment lines removed, split where a line ends with `;`.
pub fn statements() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in SCHEMA_SQL.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_string();
            out.push(stmt);
            current.clear();
        }
    }
    out
}

/// Drops the TPC-C tables if they exist and creates them empty, with their indexes. Each
/// statement is sent on its own, so that a database that runs one statement per query
/// string works too.
pub async fn recreate(client: &Client) -> Result<()> {
    for table in TABLES {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .context(format!("dropping table {table}"))?;
    }
    for stmt in statements() {
        let head = stmt
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches(" (");
        client
            .batch_execute(&stmt)
            .await
            .context(format!("creating the schema ({head})"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_nine_tables_and_the_indexes() {
        let stmts = statements();
        let tables = stmts
            .iter()
            .filter(|s| s.starts_with("CREATE TABLE"))
            .count();
        let indexes = stmts
            .iter()
            .filter(|s| s.starts_with("CREATE INDEX"))
            .count();
        assert_eq!(tables, 9);
        assert_eq!(indexes, 2);
        for t in TABLES {
            assert!(
                stmts
                    .iter()
                    .any(|s| s.starts_with(&format!("CREATE TABLE {t} ("))),
                "{t} missing"
            );
        }
        // Only SQL that any PostgreSQL-wire database is expected to run.
        for forbidden in ["REFERENCES", "FOREIGN KEY", " CHAR(", "FOR UPDATE"] {
            assert!(
                !stmts.iter().any(|s| s.contains(forbidden)),
                "{forbidden} in the schema"
            );
        }
    }
}
