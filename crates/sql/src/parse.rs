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
/// `AS OF SYSTEM TIME` is refused here; see [`parse_with_as_of`].
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let (stmts, as_of) = parse_with_as_of(sql)?;
    if as_of.iter().any(Option::is_some) {
        return Err(SqlError::unsupported(
            "AS OF SYSTEM TIME is not supported in this context",
        ));
    }
    Ok(stmts)
}

/// [`parse`], also accepting CockroachDB's `AS OF SYSTEM TIME <literal>` clause (after a
/// SELECT's FROM list, or after `BEGIN`): each statement comes with the clause's literal, if it
/// had one.
pub(crate) fn parse_with_as_of(
    sql: &str,
) -> Result<(Vec<Statement>, Vec<Option<String>>), SqlError> {
    let (without_as_of, clauses) = strip_as_of(sql);
    let (text, upserts) = rewrite_upserts(&without_as_of);
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
    let mut as_of = vec![None; stmts.len()];
    for (i, literal) in clauses {
        match as_of.get_mut(i) {
            Some(slot) => *slot = Some(literal),
            None => return Err(SqlError::syntax("AS OF SYSTEM TIME outside a statement")),
        }
    }
    Ok((stmts, as_of))
}

/// Blanks out every `AS OF SYSTEM TIME <literal>` clause (keeping byte offsets) and returns
/// the literals with the index of the statement each belongs to.
fn strip_as_of(sql: &str) -> (std::borrow::Cow<'_, str>, Vec<(usize, String)>) {
    use sqlparser::tokenizer::{Token, Tokenizer};
    if !sql.to_ascii_lowercase().contains("system") {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    };
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let offset = byte_offsets(sql);
    let word = |i: usize, w: &str| {
        matches!(tokens.get(i).map(|t| &t.token),
            Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
    };
    let mut out = sql.to_string();
    let mut found = Vec::new();
    let mut statement = 0;
    let mut i = 0;
    while i < tokens.len() {
        if matches!(tokens[i].token, Token::SemiColon) {
            statement += 1;
        } else if word(i, "as") && word(i + 1, "of") && word(i + 2, "system") && word(i + 3, "time")
        {
            // The literal: a string, a number, or a negative number.
            let (literal, last) = match tokens.get(i + 4).map(|t| &t.token) {
                Some(Token::SingleQuotedString(s)) => (Some(s.clone()), i + 4),
                Some(Token::Number(n, _)) => (Some(n.clone()), i + 4),
                Some(Token::Minus) => match tokens.get(i + 5).map(|t| &t.token) {
                    Some(Token::Number(n, _)) => (Some(format!("-{n}")), i + 5),
                    _ => (None, i),
                },
                _ => (None, i),
            };
            if let (Some(literal), Some(from), Some(to)) = (
                literal,
                offset(tokens[i].span.start),
                offset(tokens[last].span.end),
            ) && out.get(from..to).is_some()
            {
                out.replace_range(from..to, &" ".repeat(to - from));
                found.push((statement, literal));
                i = last + 1;
                continue;
            }
        }
        i += 1;
    }
    (std::borrow::Cow::Owned(out), found)
}

/// Converts tokenizer locations (1-based lines and character columns) to byte offsets of
/// `sql`.
fn byte_offsets(sql: &str) -> impl Fn(sqlparser::tokenizer::Location) -> Option<usize> + '_ {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    move |loc| {
        let line = usize::try_from(loc.line).ok()?;
        let col = usize::try_from(loc.column).ok()?;
        let start = *line_starts.get(line.checked_sub(1)?)?;
        let rest = &sql[start..];
        // A location just past the end of the line (a token's end) is the line's length.
        match rest.char_indices().nth(col.checked_sub(1)?) {
            Some((b, _)) => Some(start + b),
            None => Some(start + rest.len()),
        }
    }
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
/// (sqlparser takes only TRUE and FALSE there, and the bare option means true); `CREATE USER`
/// becomes `CREATE ROLE` (sqlparser reads `CREATE USER` as Snowflake's statement; in
/// PostgreSQL it is `CREATE ROLE` with `LOGIN`, which every Meridian user has).
fn rewrite_upserts(sql: &str) -> (std::borrow::Cow<'_, str>, Vec<usize>) {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let lower = sql.to_ascii_lowercase();
    if !["upsert", "vacuum", "copy", "user"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return (std::borrow::Cow::Borrowed(sql), vec![]);
    };
    // The byte offset of a token's start (columns count characters).
    let offset = byte_offsets(sql);
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
    // The previous word began the statement and was CREATE.
    let mut after_create = false;
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
        let create = std::mem::take(&mut after_create);
        match &t.token {
            Token::SemiColon => {
                statement += 1;
                at_start = true;
                copy = false;
                continue;
            }
            Token::Word(w)
                if create && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("user") =>
            {
                if let Some(b) = offset(t.span.start).filter(|b| sql.get(*b..b + 4).is_some()) {
                    out.replace_range(b..b + 4, "ROLE");
                }
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
                } else if w.value.eq_ignore_ascii_case("create") {
                    after_create = true;
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
