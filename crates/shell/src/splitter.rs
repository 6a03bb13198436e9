//! Splits SQL text into statements at `;`, respecting string literals (`'...'`, `E'...'`),
//! quoted identifiers, dollar quoting (`$$...$$`, `$tag$...$tag$`) and comments (`--`, nested
//! `/* */`). It is incremental: the shell feeds it one line at a time and runs each statement
//! as soon as its `;` arrives.

/// Where the scanner is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum State {
    #[default]
    Normal,
    /// Inside `'...'`; `escapes` for `E'...'`, where a backslash escapes the next character.
    SingleQuote {
        escapes: bool,
    },
    DoubleQuote,
    /// Inside a dollar-quoted literal opened by this tag (`$$` or `$name$`).
    Dollar(String),
    LineComment,
    /// Inside `/* */`, at this nesting depth.
    BlockComment(u32),
}

/// An incremental statement splitter; see the module documentation.
#[derive(Debug, Default)]
pub struct StatementSplitter {
    /// Text not yet returned as a statement.
    buf: String,
    /// Where the current statement starts in `buf`.
    start: usize,
    /// How far `buf` has been scanned.
    pos: usize,
    state: State,
    /// Whether the current statement has anything besides whitespace and comments.
    has_content: bool,
}

impl StatementSplitter {
    /// A splitter with nothing pending.
    pub fn new() -> StatementSplitter {
        StatementSplitter::default()
    }

    /// Appends one line (a newline is added) and returns the statements it completes, trimmed
    /// and without their `;`. Statements made only of comments are dropped.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        self.buf.push_str(line);
        self.buf.push('\n');
        let statements = self.scan();
        // Forget the returned statements so that the buffer holds only pending text.
        self.buf.drain(..self.start);
        self.pos -= self.start;
        self.start = 0;
        statements
    }

    /// Takes the pending statement that has no `;` yet (at end of input), if it has content.
    pub fn finish(&mut self) -> Option<String> {
        let pending = std::mem::take(self).pending_statement();
        pending.filter(|s| !s.is_empty())
    }

    /// Whether no statement text is pending (only whitespace or comments, if anything).
    pub fn is_empty(&self) -> bool {
        !self.has_content
    }

    /// Whether the scanner is outside literals and comments, so that a line starting with a
    /// backslash is a meta-command rather than statement text.
    pub fn at_top_level(&self) -> bool {
        matches!(self.state, State::Normal)
    }

    fn pending_statement(self) -> Option<String> {
        self.has_content
            .then(|| self.buf[self.start..].trim().to_owned())
    }

    fn scan(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let bytes = self.buf.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            match &mut self.state {
                State::Normal => match c {
                    b'-' if next == Some(b'-') => {
                        self.state = State::LineComment;
                        i += 2;
                    }
                    b'/' if next == Some(b'*') => {
                        self.state = State::BlockComment(1);
                        i += 2;
                    }
                    b';' => {
                        if self.has_content {
                            out.push(self.buf[self.start..i].trim().to_owned());
                        }
                        self.has_content = false;
                        self.start = i + 1;
                        i += 1;
                    }
                    c if c.is_ascii_whitespace() => i += 1,
                    b'\'' => {
                        let escapes = i > 0
                            && matches!(bytes[i - 1], b'e' | b'E')
                            && !(i > 1 && is_ident_byte(bytes[i - 2]));
                        self.state = State::SingleQuote { escapes };
                        self.has_content = true;
                        i += 1;
                    }
                    b'"' => {
                        self.state = State::DoubleQuote;
                        self.has_content = true;
                        i += 1;
                    }
                    b'$' if !(i > 0 && is_ident_byte(bytes[i - 1])) => {
                        self.has_content = true;
                        match dollar_tag(bytes, i) {
                            Some(tag) => {
                                i += tag.len();
                                self.state = State::Dollar(tag);
                            }
                            None => i += 1,
                        }
                    }
                    _ => {
                        self.has_content = true;
                        i += 1;
                    }
                },
                State::SingleQuote { escapes } => {
                    if *escapes && c == b'\\' {
                        i += 2;
                    } else if c == b'\'' {
                        if next == Some(b'\'') {
                            i += 2;
                        } else {
                            self.state = State::Normal;
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                State::DoubleQuote => {
                    if c == b'"' {
                        if next == Some(b'"') {
                            i += 2;
                        } else {
                            self.state = State::Normal;
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                State::Dollar(tag) => {
                    if bytes[i..].starts_with(tag.as_bytes()) {
                        i += tag.len();
                        self.state = State::Normal;
                    } else {
                        i += 1;
                    }
                }
                State::LineComment => {
                    if c == b'\n' {
                        self.state = State::Normal;
                    }
                    i += 1;
                }
                State::BlockComment(depth) => {
                    if c == b'/' && next == Some(b'*') {
                        *depth += 1;
                        i += 2;
                    } else if c == b'*' && next == Some(b'/') {
                        *depth -= 1;
                        if *depth == 0 {
                            self.state = State::Normal;
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        // An escape at the very end may step past the buffer; resume at its end.
        self.pos = i.min(bytes.len());
        out
    }
}

/// Splits complete text: the statements ended by `;`, then the unterminated rest, if any.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut splitter = StatementSplitter::new();
    let mut statements: Vec<String> = text.lines().flat_map(|l| splitter.push_line(l)).collect();
    statements.extend(splitter.finish());
    statements
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The dollar-quote opening tag at `start` (`$$` or `$name$`), if there is one.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<String> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'$' {
            return Some(String::from_utf8_lossy(&bytes[start..=i]).into_owned());
        }
        let valid = if i == start + 1 {
            b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
        } else {
            is_ident_byte(b)
        };
        if !valid {
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_literals_and_comments() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("select 1", &["select 1"]),
            ("select 1;", &["select 1"]),
            ("select 1; select 2;", &["select 1", "select 2"]),
            (";;  ;", &[]),
            ("select ';' as x;", &["select ';' as x"]),
            ("select 'it''s; ok';", &["select 'it''s; ok'"]),
            ("select E'a\\'; b';", &["select E'a\\'; b'"]),
            ("select 'a\\'; select 2;", &["select 'a\\'", "select 2"]),
            ("select \"a;\"\"b\" from t;", &["select \"a;\"\"b\" from t"]),
            ("select $$;$$; select 2;", &["select $$;$$", "select 2"]),
            ("select $fn$ $$ ; $fn$;", &["select $fn$ $$ ; $fn$"]),
            ("select a$b; select 2", &["select a$b", "select 2"]),
            ("select $1;", &["select $1"]),
            ("select 1 -- ; not here\n;", &["select 1 -- ; not here"]),
            (
                "select /* ; /* nested ; */ still ; */ 1;",
                &["select /* ; /* nested ; */ still ; */ 1"],
            ),
            ("-- only a comment\n;", &[]),
            ("/* c */;select 1;", &["select 1"]),
            (
                "select 'multi\nline;\nliteral';",
                &["select 'multi\nline;\nliteral'"],
            ),
            (
                "select 'unterminated; select 2",
                &["select 'unterminated; select 2"],
            ),
            (
                "select 'é'; select '日本';",
                &["select 'é'", "select '日本'"],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(split_statements(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn statements_complete_line_by_line() {
        let mut s = StatementSplitter::new();
        assert!(s.push_line("select 1,").is_empty());
        assert!(!s.is_empty());
        assert_eq!(s.push_line("  2; select"), ["select 1,\n  2"]);
        assert!(!s.is_empty());
        assert!(s.push_line("'a;").is_empty());
        assert!(!s.at_top_level());
        assert_eq!(s.push_line("b';"), ["select\n'a;\nb'"]);
        assert!(s.is_empty());
        assert!(s.at_top_level());
        assert!(s.push_line("/* open").is_empty());
        assert!(!s.at_top_level());
        assert!(s.is_empty());
        assert!(s.push_line("close */").is_empty());
        assert!(s.at_top_level());
        assert_eq!(s.finish(), None);
        assert!(s.push_line("select 3").is_empty());
        assert_eq!(s.finish().as_deref(), Some("select 3"));
        assert!(s.is_empty());
    }
}
