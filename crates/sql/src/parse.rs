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

/// Parses every statement of `sql`. `UPSERT INTO t ...` (CockroachDB's statement, which
/// sqlparser does not know) parses as `INSERT INTO t ...` marked with [`upsert_marker`].
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let (text, upserts) = rewrite_upserts(sql);
    let parser = Parser::new(&PostgreSqlDialect {}).with_recursion_limit(RECURSION_LIMIT);
    let mut stmts = parser
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| syntax_error(sql, e))?;
    for i in upserts {
        if let Some(Statement::Insert(ins)) = stmts.get_mut(i) {
            if ins.on.is_some() {
                return Err(SqlError::syntax("UPSERT does not take ON CONFLICT"));
            }
            ins.on = Some(upsert_marker());
        }
    }
    Ok(stmts)
}

/// The ON CONFLICT clause that marks an UPSERT: DO UPDATE with no target and no assignments,
/// which SQL itself cannot express. The planner turns it into "on a primary key conflict, set
/// every inserted column".
pub(crate) fn upsert_marker() -> sqlparser::ast::OnInsert {
    sqlparser::ast::OnInsert::OnConflict(sqlparser::ast::OnConflict {
        conflict_target: None,
        action: sqlparser::ast::OnConflictAction::DoUpdate(sqlparser::ast::DoUpdate {
            assignments: vec![],
            selection: None,
        }),
    })
}

/// Rewrites what sqlparser does not parse as PostgreSQL means it, keeping every byte offset
/// (so error positions stay right): a leading `UPSERT` keyword of a statement becomes `INSERT`
/// (the indexes of those statements are returned), and the options of `VACUUM` (`FULL`,
/// `FREEZE`, `VERBOSE`, `ANALYZE`, or a parenthesized list), which sqlparser would read as a
/// table name, are blanked out; in `COPY` options, `FREEZE on` and `HEADER on` lose the `on`
/// (sqlparser takes only TRUE and FALSE there, and the bare option means true).
fn rewrite_upserts(sql: &str) -> (std::borrow::Cow<'_, str>, Vec<usize>) {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("upsert") && !lower.contains("vacuum") && !lower.contains("copy") {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // The byte offset of a token's start (columns count characters).
    let offset = |loc: sqlparser::tokenizer::Location| -> Option<usize> {
        let line = usize::try_from(loc.line).ok()?;
        let col = usize::try_from(loc.column).ok()?;
        let start = *line_starts.get(line.checked_sub(1)?)?;
        sql[start..]
            .char_indices()
            .nth(col.checked_sub(1)?)
            .map(|(b, _)| start + b)
    };
    let mut out = sql.to_string();
    let blank = |out: &mut String, from: usize, len: usize| {
        if out.get(from..from + len).is_some() {
            out.replace_range(from..from + len, &" ".repeat(len));
        }
    };
    let mut upserts = Vec::new();
    let mut statement = 0;
    let mut at_start = true;
    // After VACUUM: still reading its options; the depth of a parenthesized option list.
    let mut vacuum_options = false;
    let mut depth = 0usize;
    // In a COPY statement; the previous word was FREEZE or HEADER.
    let mut copy = false;
    let mut after_flag = false;
    for t in tokens {
        if matches!(t.token, Token::Whitespace(_)) {
            continue;
        }
        if vacuum_options {
            let len = t.token.to_string().len();
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth > 0 => depth -= 1,
                Token::Word(w)
                    if depth == 0
                        && w.quote_style.is_none()
                        && ["full", "freeze", "verbose", "analyze", "analyse"]
                            .contains(&w.value.to_ascii_lowercase().as_str()) => {}
                _ if depth > 0 => {}
                _ => vacuum_options = false,
            }
            if vacuum_options {
                if let Some(b) = offset(t.span.start) {
                    blank(&mut out, b, len);
                }
                continue;
            }
        }
        if copy {
            let flag = after_flag;
            after_flag = false;
            if let Token::Word(w) = &t.token
                && w.quote_style.is_none()
            {
                let v = w.value.to_ascii_lowercase();
                if flag && v == "on" {
                    if let Some(b) = offset(t.span.start) {
                        blank(&mut out, b, 2);
                    }
                    continue;
                }
                after_flag = v == "freeze" || v == "header";
            }
        }
        match &t.token {
            Token::SemiColon => {
                statement += 1;
                at_start = true;
                copy = false;
                continue;
            }
            Token::Word(w) if at_start && w.quote_style.is_none() => {
                if w.value.eq_ignore_ascii_case("upsert") {
                    if let Some(b) = offset(t.span.start).filter(|b| sql.get(*b..b + 6).is_some()) {
                        out.replace_range(b..b + 6, "INSERT");
                        upserts.push(statement);
                    }
                } else if w.value.eq_ignore_ascii_case("vacuum") {
                    vacuum_options = true;
                } else if w.value.eq_ignore_ascii_case("copy") {
                    copy = true;
                }
            }
            _ => {}
        }
        at_start = false;
    }
    (std::borrow::Cow::Owned(out), upserts)
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
    let tables = crate::plan::Tables::new();
    BindContext::new(sql, "", "", &tables).position(loc)
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
