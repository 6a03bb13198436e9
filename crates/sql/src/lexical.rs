//! A lexical look at statement text, without parsing it.
//!
//! [`scan`] says how many statements a text holds and whether it uses parameter placeholders
//! (the wire protocol needs both before running anything); [`parameterize`] turns the literals
//! of a single query or DML statement into parameters, so that statements differing only in
//! their constants share one plan (see `autoparam.rs`). Both respect string literals (`'...'`,
//! `E'...'`), quoted identifiers, dollar quoting and comments (`--`, nested `/* */`), and
//! never fail: unterminated constructs run to the end.

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Number of non-empty statements (text other than whitespace, comments and `;`).
    pub statements: usize,
    /// Whether a `$n` parameter placeholder appears outside literals and comments.
    pub has_placeholders: bool,
}

/// Scans `sql`; see the module documentation.
pub fn scan(sql: &str) -> Shape {
    let bytes = sql.as_bytes();
    let mut shape = Shape::default();
    let mut in_statement = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let prev_is_ident = i > 0 && is_ident_byte(bytes[i - 1]);
        let next = bytes.get(i + 1).copied();
        if let Some(end) = comment_end(bytes, i) {
            i = end;
            continue;
        }
        match c {
            b';' => {
                if in_statement {
                    shape.statements += 1;
                    in_statement = false;
                }
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        in_statement = true;
        i = match c {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && !(i > 1 && is_ident_byte(bytes[i - 2]));
                skip_quoted(bytes, i + 1, b'\'', escapes)
            }
            b'"' => skip_quoted(bytes, i + 1, b'"', false),
            b'$' if !prev_is_ident => match next {
                Some(d) if d.is_ascii_digit() => {
                    shape.has_placeholders = true;
                    i + 1
                }
                _ => match dollar_tag(bytes, i) {
                    Some(tag) => skip_dollar_quoted(bytes, i + tag.len(), tag),
                    None => i + 1,
                },
            },
            _ => i + 1,
        };
    }
    if in_statement {
        shape.statements += 1;
    }
    shape
}

/// Statements whose literals [`parameterize`] replaces (by their first word): queries and DML.
const PARAMETERIZED_STATEMENTS: &[&str] =
    &["select", "insert", "update", "delete", "upsert", "with"];

/// Longest text [`parameterize`] looks at; longer statements (bulk inserts) rarely repeat with
/// the same shape.
const MAX_PARAMETERIZED_TEXT: usize = 8 << 10;

/// Most literals [`parameterize`] replaces in one statement.
const MAX_PARAMETERIZED_LITERALS: usize = 256;

/// After `ORDER BY`, `GROUP BY` (at the clause's depth), these words end the clause.
const CLAUSE_ENDS: &[&str] = &[
    "limit",
    "offset",
    "fetch",
    "having",
    "window",
    "union",
    "intersect",
    "except",
    "for",
    "returning",
];

/// A literal [`parameterize`] replaced by a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Literal<'a> {
    /// A numeric constant as written (`42`, `1.5`, `1e3`).
    Number(&'a str),
    /// The value of a standard string constant (`'it''s'` is `it's`).
    Text(std::borrow::Cow<'a, str>),
}

/// A statement's text with its literals replaced by parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parameterized<'a> {
    /// The text with the n-th replaced literal written `$n`.
    pub text: String,
    /// What statements of one shape share: `text`, then each parameter's kind (`i` int4, `l`
    /// int8, `n` numeric, `t` a string, whose type its use decides).
    pub key: String,
    /// The replaced literals, `$1` first.
    pub literals: Vec<Literal<'a>>,
}

impl Parameterized<'_> {
    /// The types the parameters' literals fix, `$1` first (read from the key, so every
    /// statement of a shape declares the same): a number's type by its magnitude, `None` for
    /// a string, whose type its use decides.
    pub(crate) fn declared_types(&self) -> Vec<Option<crate::api::SqlType>> {
        use crate::api::SqlType;
        self.key[self.text.len() + 1..]
            .chars()
            .map(|kind| match kind {
                'i' => Some(SqlType::Int4),
                'l' => Some(SqlType::Int8),
                'n' => Some(SqlType::Numeric),
                _ => None,
            })
            .collect()
    }
}

/// The type class of a numeric literal, as PostgreSQL types it: int4 if it fits, else int8,
/// else (with a fraction or exponent, or too large) numeric.
fn number_kind(n: &str) -> char {
    if n.parse::<i32>().is_ok() {
        'i'
    } else if n.parse::<i64>().is_ok() {
        'l'
    } else {
        'n'
    }
}

/// The previous significant token, as far as [`parameterize`] needs it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev<'a> {
    Start,
    /// A word (keyword or name; a quoted name is the empty word).
    Word(&'a str),
    /// An operator (a run of operator characters) or one punctuation character.
    Op(&'a str),
    Literal,
}

impl Prev<'_> {
    fn is_word(&self, w: &str) -> bool {
        matches!(self, Prev::Word(x) if x.eq_ignore_ascii_case(w))
    }
}

/// A clause whose integer constants are positions (`ORDER BY 2`, `GROUP BY 1`, `DISTINCT ON
/// (1)`), where no literal is replaced.
#[derive(Clone, Copy)]
struct Ordinals {
    /// Parenthesis depth of the clause's items.
    depth: usize,
    /// `DISTINCT ON (...)`: ends with its parenthesis only.
    parenthesized: bool,
}

/// Replaces the literals of one query or DML statement (`SELECT`, `INSERT`, `UPDATE`,
/// `DELETE`, `UPSERT`, `WITH`) by parameters `$1`, `$2`, ...; `None` for anything else: other
/// statements, several statements, text with placeholders of its own, or over the size limits.
///
/// Only literals whose meaning a typed parameter keeps are replaced: numbers (typed by
/// magnitude in the key, so `1` and `1.5` never share a plan), except in `ORDER BY`, `GROUP BY`
/// and `DISTINCT ON`, where an integer is a position; and standard strings after a comparison
/// operator or directly in an `IN` list or `VALUES` row, which take their type from their use
/// as a parameter does. Typed constants (`DATE '...'`, `'...'::regclass`, `1::text`), escape
/// strings, strings as function arguments and everything else stay in the text (so in the
/// key).
pub(crate) fn parameterize(sql: &str) -> Option<Parameterized<'_>> {
    if sql.len() > MAX_PARAMETERIZED_TEXT {
        return None;
    }
    let bytes = sql.as_bytes();
    let mut text = String::with_capacity(sql.len() + 8);
    let mut kinds = String::new();
    let mut literals = Vec::new();
    // Text before `copied` is in `text` already.
    let mut copied = 0;
    let mut prev = Prev::Start;
    // Whether each open parenthesis holds a list of values (`IN (...)`, `VALUES (...)`).
    let mut parens: Vec<bool> = Vec::new();
    let mut ordinals: Option<Ordinals> = None;
    let mut ended = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if let Some(end) = comment_end(bytes, i) {
            i = end;
            continue;
        }
        match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b';' => {
                ended = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        // One statement, which starts with a word.
        if ended || (prev == Prev::Start && !c.is_ascii_alphabetic()) {
            return None;
        }
        let start = i;
        let number_start =
            c.is_ascii_digit() || (c == b'.' && next.is_some_and(|d| d.is_ascii_digit()));
        if number_start && (start == 0 || !is_ident_byte(bytes[start - 1])) {
            i = number_end(bytes, i)?;
            let token = &sql[start..i];
            let kind = number_kind(token);
            // `-2147483648` is one int4 constant, not the negation of an int8 one.
            let negated = kind != 'i' && matches!(prev, Prev::Op(op) if op.ends_with('-'));
            if negated {
                return None;
            }
            if ordinals.is_none() && !is_cast_at(bytes, i) {
                literals.push(Literal::Number(token));
                kinds.push(kind);
                push_parameter(&mut text, &sql[copied..start], literals.len());
                copied = i;
            }
            prev = Prev::Literal;
            continue;
        }
        match c {
            b'\'' => {
                let prefixed = start > 0 && is_ident_byte(bytes[start - 1]);
                if prefixed {
                    // `E'...'`, `B'...'`, `X'...'`, `N'...'`: left as they are.
                    let escapes = matches!(bytes[start - 1], b'e' | b'E');
                    i = skip_quoted(bytes, i + 1, b'\'', escapes);
                    prev = Prev::Literal;
                    continue;
                }
                i = quoted_end(bytes, i + 1, b'\'', false)?;
                let in_list = parens.last().copied().unwrap_or(false);
                let replace = ordinals.is_none()
                    && !is_cast_at(bytes, i)
                    && match prev {
                        Prev::Op(op) => {
                            matches!(op, "=" | "<" | ">" | "<=" | ">=" | "<>" | "!=")
                                || (matches!(op, "(" | ",") && in_list)
                        }
                        _ => false,
                    };
                if replace {
                    let body = &sql[start + 1..i - 1];
                    literals.push(Literal::Text(if body.contains('\'') {
                        std::borrow::Cow::Owned(body.replace("\'\'", "\'"))
                    } else {
                        std::borrow::Cow::Borrowed(body)
                    }));
                    kinds.push('t');
                    push_parameter(&mut text, &sql[copied..start], literals.len());
                    copied = i;
                }
                prev = Prev::Literal;
            }
            b'"' => {
                i = skip_quoted(bytes, i + 1, b'"', false);
                prev = Prev::Word("");
            }
            b'$' => {
                if next.is_some_and(|d| d.is_ascii_digit()) {
                    return None;
                }
                let tag = dollar_tag(bytes, i)?;
                i = skip_dollar_quoted(bytes, i + tag.len(), tag);
                prev = Prev::Literal;
            }
            b'(' => {
                let list = match prev {
                    Prev::Word(w) => {
                        w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("values")
                    }
                    Prev::Op(op) => matches!(op, "(" | ","),
                    _ => false,
                };
                parens.push(list);
                prev = Prev::Op("(");
                i += 1;
            }
            b')' => {
                parens.pop();
                if ordinals.is_some_and(|o| parens.len() < o.depth) {
                    ordinals = None;
                }
                prev = Prev::Op(")");
                i += 1;
            }
            c if is_ident_byte(c) => {
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                if prev == Prev::Start
                    && !PARAMETERIZED_STATEMENTS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(word))
                {
                    return None;
                }
                if word.eq_ignore_ascii_case("by")
                    && (prev.is_word("order") || prev.is_word("group"))
                {
                    ordinals = Some(Ordinals {
                        depth: parens.len(),
                        parenthesized: false,
                    });
                } else if word.eq_ignore_ascii_case("on") && prev.is_word("distinct") {
                    ordinals = Some(Ordinals {
                        depth: parens.len() + 1,
                        parenthesized: true,
                    });
                } else if let Some(o) = ordinals
                    && !o.parenthesized
                    && parens.len() == o.depth
                    && CLAUSE_ENDS.iter().any(|w| w.eq_ignore_ascii_case(word))
                {
                    ordinals = None;
                }
                prev = Prev::Word(word);
            }
            c if is_operator_byte(c) => {
                while i < bytes.len() && is_operator_byte(bytes[i]) {
                    // A comment starts a new token.
                    if i > start && matches!(&bytes[i..], [b'-', b'-', ..] | [b'/', b'*', ..]) {
                        break;
                    }
                    i += 1;
                }
                prev = Prev::Op(&sql[start..i]);
            }
            _ => {
                // Other punctuation (`,`, `.`, `[`, `]`, `:`; ASCII, since other bytes are
                // parts of words): one byte.
                i += 1;
                prev = Prev::Op(&sql[start..i]);
            }
        }
    }
    if prev == Prev::Start || literals.len() > MAX_PARAMETERIZED_LITERALS {
        return None;
    }
    text.push_str(&sql[copied..]);
    let mut key = String::with_capacity(text.len() + 1 + kinds.len());
    key.push_str(&text);
    key.push('\0');
    key.push_str(&kinds);
    Some(Parameterized {
        text,
        key,
        literals,
    })
}

/// Appends the text before a replaced literal and the literal's parameter `$n`.
fn push_parameter(text: &mut String, before: &str, n: usize) {
    use std::fmt::Write as _;
    text.push_str(before);
    let _ = write!(text, "${n}");
}

/// The end of the numeric literal starting at `start` (digits, an optional fraction and an
/// optional exponent); `None` when a letter, `_` or `.` follows it (`1abc`, `1.2.3`), which
/// is left to the parser.
fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
        if bytes.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1 + sign);
        }
    }
    match bytes.get(i) {
        Some(&b) if is_ident_byte(b) || b == b'.' => None,
        _ => Some(i),
    }
}

/// Whether a `::` cast follows at `i` (after whitespace). A constant cast to a type is a
/// constant of that type, which some types resolve while planning (`'t'::regclass`), so it
/// stays in the text.
fn is_cast_at(bytes: &[u8], mut i: usize) -> bool {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    bytes[i.min(bytes.len())..].starts_with(b"::")
}

/// Characters of PostgreSQL operators.
fn is_operator_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The index after the comment (`-- ...` to the end of the line, or a nested `/* */`)
/// starting at `i`, if one does.
fn comment_end(bytes: &[u8], i: usize) -> Option<usize> {
    match (bytes[i], bytes.get(i + 1)) {
        (b'-', Some(b'-')) => Some(find_byte(bytes, i + 2, b'\n')),
        (b'/', Some(b'*')) => Some(skip_block_comment(bytes, i)),
        _ => None,
    }
}

/// Index of the first `needle` at or after `from`, or the end of the text.
fn find_byte(bytes: &[u8], from: usize, needle: u8) -> usize {
    bytes[from.min(bytes.len())..]
        .iter()
        .position(|&b| b == needle)
        .map_or(bytes.len(), |p| from + p)
}

/// Skips a (nested) block comment starting at `start` (`/*`); returns the index after it.
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied()) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Skips a quoted literal whose opening quote precedes `from`; a doubled quote stands for
/// itself, and with `escapes` a backslash escapes the next byte. Returns the index after the
/// closing quote, or the end of the text if it is not closed.
fn skip_quoted(bytes: &[u8], from: usize, quote: u8, escapes: bool) -> usize {
    quoted_end(bytes, from, quote, escapes).unwrap_or(bytes.len())
}

/// [`skip_quoted`], `None` when the literal is not closed.
fn quoted_end(bytes: &[u8], from: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The dollar-quote opening tag (`$$` or `$name$`) at `start`, if there is one.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'$' {
            return Some(&bytes[start..=i]);
        }
        let valid = if i == start + 1 {
            b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
        } else {
            is_ident_byte(b) && b != b'$'
        };
        if !valid {
            return None;
        }
        i += 1;
    }
    None
}

/// Skips the body of a dollar-quoted literal starting at `from` up to and including the
/// closing `tag`.
fn skip_dollar_quoted(bytes: &[u8], from: usize, tag: &[u8]) -> usize {
    bytes[from..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |p| from + p + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(statements: usize, has_placeholders: bool) -> Shape {
        Shape {
            statements,
            has_placeholders,
        }
    }

    #[test]
    fn counts_statements_and_placeholders() {
        let cases: &[(&str, Shape)] = &[
            ("", shape(0, false)),
            (" ;; ", shape(0, false)),
            ("-- only a comment", shape(0, false)),
            ("/* a /* nested */ comment */", shape(0, false)),
            ("SELECT 1", shape(1, false)),
            ("SELECT 1;", shape(1, false)),
            ("SELECT 1; SELECT 2", shape(2, false)),
            ("SELECT 1; -- trailing", shape(1, false)),
            ("SELECT ';' AS x", shape(1, false)),
            ("SELECT 'it''s; fine'", shape(1, false)),
            ("SELECT E'a\\'; b'", shape(1, false)),
            ("SELECT \"a;b\" FROM t", shape(1, false)),
            ("SELECT $$ ; $1 $$", shape(1, false)),
            ("SELECT $tag$ ; $$ ; $tag$; SELECT 2", shape(2, false)),
            ("SELECT /* ; $1 */ 1", shape(1, false)),
            ("SELECT 1 -- ; $1\n", shape(1, false)),
            ("SELECT * FROM t WHERE a = $1", shape(1, true)),
            ("SELECT a$1 FROM t", shape(1, false)),
            ("SELECT '$1'", shape(1, false)),
            ("SELECT 'unterminated; SELECT 2", shape(1, false)),
            ("SELECT 1 /* unterminated ; SELECT 2", shape(1, false)),
            ("SELECT $", shape(1, false)),
            ("SELECT 'é'; SELECT $1", shape(2, true)),
        ];
        for (sql, expected) in cases {
            assert_eq!(scan(sql), *expected, "{sql:?}");
        }
    }

    /// The parameterized text and its kinds, or `None`.
    fn shape_of(sql: &str) -> Option<(String, String)> {
        parameterize(sql).map(|p| {
            let kinds = p.key.rsplit('\0').next().unwrap_or_default().to_string();
            assert_eq!(p.key, format!("{}\0{kinds}", p.text));
            assert_eq!(p.literals.len(), kinds.len());
            (p.text, kinds)
        })
    }

    fn same(sql: &str, text: &str, kinds: &str) {
        assert_eq!(
            shape_of(sql),
            Some((text.to_string(), kinds.to_string())),
            "{sql:?}"
        );
    }

    #[test]
    fn numbers_become_parameters_typed_by_magnitude() {
        same(
            "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
            "i",
        );
        same(
            "UPDATE t SET a = a + 3000000000, b = 1.5 WHERE k = 1e3",
            "UPDATE t SET a = a + $1, b = $2 WHERE k = $3",
            "lnn",
        );
        same("select 99999999999999999999", "select $1", "n");
        same(
            "SELECT .5, 5., x1, t.c2 FROM t2",
            "SELECT $1, $2, x1, t.c2 FROM t2",
            "nn",
        );
        same("SELECT -5, - 2147483647", "SELECT -$1, - $2", "ii");
        same(
            "SELECT a[1] FROM t LIMIT 10 OFFSET 2",
            "SELECT a[$1] FROM t LIMIT $2 OFFSET $3",
            "iii",
        );
        same(
            "SELECT 1::text, 2 :: int, 3",
            "SELECT 1::text, 2 :: int, $1",
            "i",
        );
        // The parameters of one shape are the same literals in the same places.
        let a = parameterize("SELECT * FROM t WHERE k = 7 AND v = 'x'").unwrap();
        let b = parameterize("SELECT * FROM t WHERE k = 123456 AND v = 'it''s'").unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(
            a.literals,
            vec![Literal::Number("7"), Literal::Text("x".into())]
        );
        assert_eq!(
            b.literals,
            vec![Literal::Number("123456"), Literal::Text("it's".into())]
        );
    }

    #[test]
    fn an_int8_constant_after_a_minus_is_not_parameterized() {
        // `-2147483648` is an int4 constant; `-$1` with an int8 `$1` would be an int8.
        assert_eq!(shape_of("SELECT -2147483648"), None);
        assert_eq!(shape_of("SELECT 1 -2147483648"), None);
        assert_eq!(shape_of("SELECT x =-9223372036854775808 FROM t"), None);
    }

    #[test]
    fn positions_stay_in_the_text() {
        same(
            "SELECT a, 5 FROM t GROUP BY 1, a + 2 HAVING count(*) > 3 ORDER BY 2 DESC, 1 LIMIT 4",
            "SELECT a, $1 FROM t GROUP BY 1, a + 2 HAVING count(*) > $2 ORDER BY 2 DESC, 1 LIMIT $3",
            "iii",
        );
        same(
            "SELECT DISTINCT ON (1) a, 2 FROM t",
            "SELECT DISTINCT ON (1) a, $1 FROM t",
            "i",
        );
        same(
            "SELECT (SELECT b FROM u ORDER BY 1 LIMIT 1), 7 FROM t",
            "SELECT (SELECT b FROM u ORDER BY 1 LIMIT $1), $2 FROM t",
            "ii",
        );
        same(
            "SELECT sum(a) OVER (ORDER BY b ROWS 2 PRECEDING), 3 FROM t",
            "SELECT sum(a) OVER (ORDER BY b ROWS 2 PRECEDING), $1 FROM t",
            "i",
        );
    }

    #[test]
    fn strings_are_parameterized_where_their_use_types_them() {
        same(
            "SELECT * FROM t WHERE a = 'x' AND b <> 'y' AND c IN ('p', 'q')",
            "SELECT * FROM t WHERE a = $1 AND b <> $2 AND c IN ($3, $4)",
            "tttt",
        );
        same(
            "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b') RETURNING a",
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a",
            "itit",
        );
        // Typed, escaped, dollar-quoted, function arguments, LIKE patterns: left alone.
        same(
            "SELECT f('a'), DATE '2020-01-01', E'\\n', $$x$$, b LIKE 'c%' FROM t WHERE d = 'e'",
            "SELECT f('a'), DATE '2020-01-01', E'\\n', $$x$$, b LIKE 'c%' FROM t WHERE d = $1",
            "t",
        );
        same(
            "SELECT '--' || x FROM t WHERE y = '/*' -- 'z'\n",
            "SELECT '--' || x FROM t WHERE y = $1 -- 'z'\n",
            "t",
        );
    }

    #[test]
    fn only_single_queries_and_dml_are_parameterized() {
        for sql in [
            "",
            "  ",
            "CREATE TABLE t (a INT DEFAULT 1)",
            "SET x = 1",
            "SELECT 1; SELECT 2",
            "SELECT * FROM t WHERE a = $1",
            "(SELECT 1)",
            "SELECT 'unterminated",
            "SELECT 1abc",
            "SELECT 1.2.3",
            "EXPLAIN SELECT 1",
        ] {
            assert_eq!(shape_of(sql), None, "{sql:?}");
        }
        same("  select 1 ; ", "  select $1 ; ", "i");
        same(
            "with x as (select 1) select * from x",
            "with x as (select $1) select * from x",
            "i",
        );
        same("SELECT now()", "SELECT now()", "");
        let long = format!("SELECT {}", "1, ".repeat(300));
        assert_eq!(shape_of(&long), None);
    }
}
