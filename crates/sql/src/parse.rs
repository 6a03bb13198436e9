//! Parsing SQL text with sqlparser's PostgreSQL dialect, turning its errors into 42601 with a
//! PostgreSQL-style message and position.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::api::SqlError;
use crate::plan::BindContext;

/// Nesting depth limit of the parser (deeper input fails with 54001 instead of overflowing the
/// stack).
const RECURSION_LIMIT: usize = 200;

/// Parses every statement of `sql`.
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let parser = Parser::new(&PostgreSqlDialect {}).with_recursion_limit(RECURSION_LIMIT);
    parser
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| syntax_error(sql, e))
}

/// Converts a parser error. sqlparser reports `... at Line: L, Column: C`; the position is
/// converted to PostgreSQL's 1-based character offset, and `found: X` becomes PostgreSQL's
/// `syntax error at or near "X"`, keeping sqlparser's expectation as the detail.
fn syntax_error(sql: &str, e: ParserError) -> SqlError {
    let raw = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return SqlError::new("54001", "statement is too complex (nesting too deep)");
        }
    };
    let (text, position) = match raw.rsplit_once(" at Line: ") {
        Some((text, loc)) => (text.to_string(), location(sql, loc)),
        None => (raw.clone(), None),
    };
    let message = match text.rsplit_once("found: ") {
        Some((_, "EOF")) => "syntax error at end of input".to_string(),
        Some((_, found)) => format!("syntax error at or near \"{found}\""),
        None => format!("syntax error: {}", lowercase_first(&text)),
    };
    SqlError::syntax(message)
        .with_detail(text)
        .with_position(position)
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Parses `L, Column: C` into a character position.
fn location(sql: &str, loc: &str) -> Option<u32> {
    let (line, col) = loc.split_once(", Column: ")?;
    let loc = sqlparser::tokenizer::Location {
        line: line.trim().parse().ok()?,
        column: col.trim().parse().ok()?,
    };
    BindContext::new(sql, "", "").position(loc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_statements() {
        assert_eq!(parse("SELECT 1; SELECT 2;").unwrap().len(), 2);
        assert_eq!(parse("").unwrap().len(), 0);
    }

    #[test]
    fn syntax_errors_have_postgres_shape() {
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(e.code, "42601");
        assert_eq!(e.message, "syntax error at or near \"SELEC\"");
        assert_eq!(e.position, Some(1));
        let e = parse("SELECT 1 +").unwrap_err();
        assert_eq!(e.message, "syntax error at end of input");
        let e = parse("SELECT 1;\nSELECT FROM WHERE").unwrap_err();
        assert_eq!(e.code, "42601");
        assert!(
            e.position.unwrap() > 10,
            "position {:?} should be on the second line",
            e.position
        );
        let e = parse("SELECT 'abc").unwrap_err();
        assert_eq!(e.code, "42601");
    }

    #[test]
    fn deep_nesting_is_rejected_not_a_crash() {
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let e = parse(&sql).unwrap_err();
        assert_eq!(e.code, "54001");
    }
}
