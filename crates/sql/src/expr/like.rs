//! `LIKE` / `ILIKE` pattern matching: `%` matches any sequence, `_` any one character, and the
//! escape character (backslash unless `ESCAPE` says otherwise) makes the next one literal.

use crate::api::SqlError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Many,
}

fn tokenize(pattern: &str, escape: Option<char>) -> Result<Vec<Tok>, SqlError> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => out.push(Tok::Lit(n)),
                None => {
                    return Err(SqlError::new(
                        "22025",
                        "LIKE pattern must not end with escape character",
                    ));
                }
            }
        } else if c == '%' {
            if out.last() != Some(&Tok::Many) {
                out.push(Tok::Many);
            }
        } else if c == '_' {
            out.push(Tok::One);
        } else {
            out.push(Tok::Lit(c));
        }
    }
    Ok(out)
}

/// Whether `s` matches `pattern`. `escape` is the `ESCAPE` clause (`None`: backslash; empty:
/// no escape character).
pub(crate) fn like(
    s: &str,
    pattern: &str,
    escape: Option<&str>,
    case_insensitive: bool,
) -> Result<bool, SqlError> {
    let escape = match escape {
        None => Some('\\'),
        Some(e) => {
            let mut it = e.chars();
            match (it.next(), it.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(SqlError::new("22019", "invalid escape string")
                        .with_hint("Escape string must be empty or one character."));
                }
            }
        }
    };
    let (s, pattern) = if case_insensitive {
        (s.to_lowercase(), pattern.to_lowercase())
    } else {
        (s.to_string(), pattern.to_string())
    };
    let toks = tokenize(&pattern, escape)?;
    let text: Vec<char> = s.chars().collect();
    Ok(matches(&text, &toks))
}

/// Greedy matching with backtracking to the last `%`: linear for patterns with one `%`,
/// O(n·m) in the worst case, never exponential.
fn matches(text: &[char], toks: &[Tok]) -> bool {
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match toks.get(pi) {
            Some(Tok::Many) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::One) => {
                ti += 1;
                pi += 1;
            }
            Some(Tok::Lit(c)) if *c == text[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[pi..].iter().all(|t| *t == Tok::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str, p: &str) -> bool {
        like(s, p, None, false).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(m("hello", "h%"));
        assert!(m("hello", "%llo"));
        assert!(m("hello", "h_llo"));
        assert!(m("hello", "%"));
        assert!(m("", "%"));
        assert!(!m("", "_"));
        assert!(m("hello", "%l%l%"));
        assert!(!m("hello", "h_lo"));
        assert!(!m("hello", "Hello"));
        assert!(m("abcabcabd", "%abd"));
        assert!(m("aaa", "%a%a%a%"));
        assert!(!m("aa", "%a%a%a%"));
        assert!(m("ünï", "_n_"));
    }

    #[test]
    fn escapes_and_case() {
        assert!(m("50%", "50\\%"));
        assert!(!m("500", "50\\%"));
        assert!(like("a_b", "a#_b", Some("#"), false).unwrap());
        assert!(!like("axb", "a#_b", Some("#"), false).unwrap());
        assert!(like("a\\b", "a\\b", Some(""), false).unwrap());
        assert!(like("HeLLo", "hello", None, true).unwrap());
        assert_eq!(like("a", "a\\", None, false).unwrap_err().code, "22025");
        assert_eq!(like("a", "a", Some("xy"), false).unwrap_err().code, "22019");
    }
}
