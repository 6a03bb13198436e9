//! Running one statement on each system and comparing the outcomes.
//!
//! Rows are compared as PostgreSQL's text output, NULL apart from every string. Result column
//! types are compared by type OID. `double precision` values are compared rounded to 12
//! significant digits, since the last bits of a float sum depend on the order rows are added
//! in. Rows are compared as multisets unless the query orders by every output column. Two
//! errors agree when their SQLSTATE classes (the first two characters) do.

use std::fmt;
use std::time::Duration;

use meridian_sql::{Session, StatementResult};

use crate::ast::Query;

/// How long one statement may run on either side.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows {
        /// Type OID and name of each column.
        types: Vec<(u32, String)>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error {
        code: String,
        message: String,
    },
}

impl Outcome {
    fn error(code: &str, message: impl Into<String>) -> Outcome {
        Outcome::Error {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl Outcome {
    /// One line: the error, or the row count and column types.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Error { code, message } => format!("ERROR {code}: {message}"),
            Outcome::Rows { types, rows } => {
                let names: Vec<&str> = types.iter().map(|t| t.1.as_str()).collect();
                format!("{} row(s) of ({})", rows.len(), names.join(", "))
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Error { .. } => writeln!(f, "{}", self.summary()),
            Outcome::Rows { rows, .. } => {
                writeln!(f, "{}", self.summary())?;
                for r in rows.iter().take(30) {
                    let vals: Vec<&str> =
                        r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
                    writeln!(f, "  {}", vals.join(" | "))?;
                }
                if rows.len() > 30 {
                    writeln!(f, "  ...")?;
                }
                Ok(())
            }
        }
    }
}

/// Runs `sql` (one statement) on Meridian.
pub async fn meridian(session: &mut Session, sql: &str) -> Outcome {
    let Ok(mut results) = tokio::time::timeout(STATEMENT_TIMEOUT, session.execute(sql)).await
    else {
        return Outcome::error("57014", "timed out");
    };
    match results.pop() {
        None => Outcome::error("XX000", "no result"),
        Some(Err(e)) => Outcome::Error {
            code: e.code.to_string(),
            message: e.message,
        },
        Some(Ok(StatementResult::Query { columns, rows })) => Outcome::Rows {
            types: columns
                .iter()
                .map(|c| (c.ty.pg_oid(), c.ty.pg_name().to_string()))
                .collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|d| d.to_pg_text()).collect())
                .collect(),
        },
        Some(Ok(other)) => Outcome::error("XX000", format!("not a query result: {other:?}")),
    }
}

fn pg_error(e: tokio_postgres::Error) -> Outcome {
    match e.as_db_error() {
        Some(db) => Outcome::Error {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
        },
        None => Outcome::error("08000", e.to_string()),
    }
}

/// Runs `sql` on PostgreSQL: prepared first for the column types, then by the simple protocol
/// for the values as text.
pub async fn postgres(client: &tokio_postgres::Client, sql: &str) -> Outcome {
    let stmt = match client.prepare(sql).await {
        Ok(s) => s,
        Err(e) => return pg_error(e),
    };
    let types = stmt
        .columns()
        .iter()
        .map(|c| (c.type_().oid(), c.type_().name().to_string()))
        .collect();
    let messages = match client.simple_query(sql).await {
        Ok(m) => m,
        Err(e) => return pg_error(e),
    };
    let rows = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect();
    Outcome::Rows { types, rows }
}

const FLOAT8: u32 = 701;
/// The type OID of NUMERIC.
pub const NUMERIC: u32 = 1700;

/// A NUMERIC value's text without trailing fraction zeros (`7.50` → `7.5`, `7.00` → `7`).
pub fn strip_scale(v: &str) -> String {
    if v.contains('.') {
        v.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        v.to_string()
    }
}

/// A float's text rounded to 12 significant digits (`-0` as `0`); other text as is.
fn normalise_float(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(0.0) => "0".to_string(),
        Ok(x) if x.is_finite() => format!("{x:.11e}"),
        _ => v.to_string(),
    }
}

type Rows = Vec<Vec<Option<String>>>;

fn normalised(types: &[(u32, String)], rows: &Rows) -> Rows {
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(types)
                .map(|(v, t)| match v {
                    Some(v) if t.0 == FLOAT8 => Some(normalise_float(v)),
                    v => v.clone(),
                })
                .collect()
        })
        .collect()
}

/// Whether `a` and `b`, ordered by every column, hold the same rows and differ in order only
/// where rows tie: equal NUMERIC values printed at different scales (`7`, `7.00`) tie under
/// ORDER BY, and either order of them is right.
fn ties_reordered(types: &[(u32, String)], a: &Rows, b: &Rows) -> bool {
    let mut sa = a.clone();
    let mut sb = b.clone();
    sa.sort();
    sb.sort();
    let value = |v: &Option<String>, t: &(u32, String)| match v {
        Some(v) if t.0 == NUMERIC => Some(strip_scale(v)),
        v => v.clone(),
    };
    let tie = |x: &Vec<Option<String>>, y: &Vec<Option<String>>| {
        x.iter()
            .zip(y)
            .zip(types)
            .all(|((x, y), t)| value(x, t) == value(y, t))
    };
    sa == sb && a.len() == b.len() && a.iter().zip(b).all(|(x, y)| tie(x, y))
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Same,
    /// A documented intentional difference (the reason).
    Explained(&'static str),
    Differ(String),
}

/// Compares Meridian's outcome `m` with PostgreSQL's `p` for `query`; a difference is
/// `Explained` when it is one of the documented ones (`known.rs`).
pub fn compare(query: &Query, m: &Outcome, p: &Outcome) -> Verdict {
    match exact(query, m, p) {
        Verdict::Differ(reason) => match crate::known::explain(query, m, p) {
            Some(known) => Verdict::Explained(known),
            None => Verdict::Differ(reason),
        },
        v => v,
    }
}

/// Compares the outcomes as they are.
pub fn exact(query: &Query, m: &Outcome, p: &Outcome) -> Verdict {
    match (m, p) {
        (Outcome::Error { code: a, .. }, Outcome::Error { code: b, .. }) => {
            if a.get(..2) == b.get(..2) {
                Verdict::Same
            } else {
                Verdict::Differ(format!("error classes differ: {a} against {b}"))
            }
        }
        (Outcome::Error { .. }, Outcome::Rows { .. }) => {
            Verdict::Differ("Meridian fails, PostgreSQL answers".into())
        }
        (Outcome::Rows { .. }, Outcome::Error { .. }) => {
            Verdict::Differ("Meridian answers, PostgreSQL fails".into())
        }
        (
            Outcome::Rows {
                types: mt,
                rows: mr,
            },
            Outcome::Rows {
                types: pt,
                rows: pr,
            },
        ) => {
            let oids = |t: &[(u32, String)]| t.iter().map(|t| t.0).collect::<Vec<_>>();
            if oids(mt) != oids(pt) {
                return Verdict::Differ("result column types differ".into());
            }
            let mut a = normalised(pt, mr);
            let mut b = normalised(pt, pr);
            if !query.totally_ordered() {
                a.sort();
                b.sort();
            }
            if a == b || ties_reordered(pt, &a, &b) {
                Verdict::Same
            } else {
                Verdict::Differ("rows differ".into())
            }
        }
    }
}
