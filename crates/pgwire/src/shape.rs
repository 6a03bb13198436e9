//! A lexical look at statement text: how many statements it holds and whether it uses
//! parameter placeholders. The extended protocol needs both before running anything; the
//! scan respects string literals (`'...'`, `E'...'`), quoted identifiers, dollar quoting and
//! comments (`--`, nested `/* */`), and never fails: unterminated constructs run to the end.

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shape {
    /// Number of non-empty statements (text other than whitespace, comments and `;`).
    pub statements: usize,
    /// Whether a `$n` parameter placeholder appears outside literals and comments.
    pub has_placeholders: bool,
}

/// Scans `sql`; see the module documentation.
pub(crate) fn scan(sql: &str) -> Shape {
    let bytes = sql.as_bytes();
    let mut shape = Shape::default();
    let mut in_statement = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let prev_is_ident = i > 0 && is_ident_byte(bytes[i - 1]);
        let next = bytes.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = find_byte(bytes, i + 2, b'\n');
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
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

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
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
/// closing quote.
fn skip_quoted(bytes: &[u8], from: usize, quote: u8, escapes: bool) -> usize {
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
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
}
