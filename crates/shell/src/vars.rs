//! psql variables: `\set NAME VALUE`, and `:NAME`, `:'NAME'`, `:"NAME"` in statements and
//! meta-command arguments.
//!
//! As in psql, `:NAME` becomes the value as it is, `:'NAME'` a quoted SQL literal and
//! `:"NAME"` a quoted identifier; an unknown name, a `::` cast, and anything inside string
//! literals, quoted identifiers, dollar quotes or comments are left alone.

use std::collections::BTreeMap;

/// The variables of a shell session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_owned(), value.to_owned());
    }

    pub(crate) fn unset(&mut self, name: &str) {
        self.values.remove(name);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `NAME = 'value'` lines, sorted, as `\set` without arguments lists them.
    pub(crate) fn listing(&self) -> String {
        self.values
            .iter()
            .map(|(name, value)| format!("{name} = '{value}'\n"))
            .collect()
    }

    /// Substitutes variables in statement text (see the module documentation).
    pub(crate) fn interpolate_sql(&self, sql: &str) -> String {
        if self.values.is_empty() || !sql.contains(':') {
            return sql.to_owned();
        }
        let bytes = sql.as_bytes();
        let mut out = String::with_capacity(sql.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            let skip_to = match bytes[i] {
                b'\'' => Some(quoted_end(bytes, i, b'\'')),
                b'"' => Some(quoted_end(bytes, i, b'"')),
                b'-' if bytes.get(i + 1) == Some(&b'-') => Some(
                    bytes[i..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |p| i + p + 1),
                ),
                b'/' if bytes.get(i + 1) == Some(&b'*') => Some(block_comment_end(bytes, i)),
                b'$' => dollar_quote_end(bytes, i),
                b':' if bytes.get(i + 1) == Some(&b':') => Some(i + 2),
                b':' => {
                    if let Some((value, end)) = self.substitute(sql, i) {
                        out.push_str(&sql[copied..i]);
                        out.push_str(&value);
                        copied = end;
                        i = end;
                        continue;
                    }
                    None
                }
                _ => None,
            };
            i = skip_to.unwrap_or(i + 1);
        }
        out.push_str(&sql[copied..]);
        out
    }

    /// Substitutes variables in an unquoted meta-command argument.
    pub(crate) fn interpolate_arg(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut i = 0;
        let mut copied = 0;
        while let Some(at) = arg[i..].find(':').map(|p| p + i) {
            match self.substitute(arg, at) {
                Some((value, end)) => {
                    out.push_str(&arg[copied..at]);
                    out.push_str(&value);
                    copied = end;
                    i = end;
                }
                None => i = at + 1,
            }
        }
        out.push_str(&arg[copied..]);
        out
    }

    /// The replacement for a reference starting with the `:` at `at`, and where it ends.
    fn substitute(&self, text: &str, at: usize) -> Option<(String, usize)> {
        let rest = &text[at + 1..];
        let (quote, name_start) = match rest.as_bytes().first()? {
            b'\'' => (Some('\''), 1),
            b'"' => (Some('"'), 1),
            _ => (None, 0),
        };
        let name_len = rest[name_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 {
            return None;
        }
        let name = &rest[name_start..name_start + name_len];
        let value = self.get(name)?;
        let mut end = at + 1 + name_start + name_len;
        let value = match quote {
            None => value.to_owned(),
            Some(q) => {
                if !text[end..].starts_with(q) {
                    return None;
                }
                end += 1;
                if q == '\'' {
                    quote_literal(value)
                } else {
                    quote_ident(value)
                }
            }
        };
        Some((value, end))
    }
}

/// `value` as a SQL string literal.
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `value` as a quoted SQL identifier.
pub(crate) fn quote_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// The index after the quote closing the one at `start` (doubled quotes stay inside).
fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The index after the `*/` closing the (possibly nested) comment at `start`.
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
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

/// For a `$tag$` at `start`, the index after the matching closing tag.
fn dollar_quote_end(bytes: &[u8], start: usize) -> Option<usize> {
    let tag_len = bytes[start + 1..]
        .iter()
        .position(|&b| b == b'$')
        .filter(|&n| {
            bytes[start + 1..start + 1 + n]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                && !bytes.get(start + 1).is_some_and(|b| b.is_ascii_digit())
        })?;
    let tag = &bytes[start..start + tag_len + 2];
    let body = start + tag.len();
    let close = bytes[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |p| body + p + tag.len());
    Some(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        let mut v = Variables::default();
        v.set("t", "users");
        v.set("name", "O'Brien");
        v.set("n", "10");
        v
    }

    #[test]
    fn statements_get_values_literals_and_identifiers() {
        let v = vars();
        assert_eq!(
            v.interpolate_sql("select * from :t where name = :'name' limit :n"),
            "select * from users where name = 'O''Brien' limit 10"
        );
        assert_eq!(v.interpolate_sql("select :\"t\".x"), "select \"users\".x");
    }

    #[test]
    fn quotes_comments_casts_and_unknown_names_are_left_alone() {
        let v = vars();
        for sql in [
            "select ':t', \":t\"",
            "select 1::int, x::text",
            "select 1 -- :t\n",
            "select /* :t /* :n */ */ 1",
            "select $$ :t $$, $q$ :n $q$",
            "select :unknown, :'unknown'",
            "select :'t",
        ] {
            assert_eq!(v.interpolate_sql(sql), sql, "{sql}");
        }
        assert_eq!(
            v.interpolate_sql("select $1, ':t', :n"),
            "select $1, ':t', 10"
        );
    }

    #[test]
    fn arguments_and_listing() {
        let v = vars();
        assert_eq!(v.interpolate_arg("x:n:t"), "x10users");
        assert_eq!(v.interpolate_arg(":nope:"), ":nope:");
        assert_eq!(v.listing(), "n = '10'\nname = 'O'Brien'\nt = 'users'\n");
    }
}
