//! Arrays, held as text in PostgreSQL's array syntax (`{1,2,"a b",NULL}`).
//!
//! Meridian has no array type yet. The catalog's array columns, `ARRAY[...]`,
//! `ARRAY(SELECT ...)` and casts to `T[]` produce text in the syntax PostgreSQL prints arrays
//! in, which is also what a client reading a PostgreSQL array in text format receives; the
//! functions here read it back. An element takes the type its use asks for: `x = ANY(arr)`
//! parses the elements as `x`'s type, and `arr[i]` is an untyped value like a string literal.
//! Only one-dimensional arrays are supported.

use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{CmpOp, ValueList, parse_text};

/// The elements of an array's text (`None` for NULL elements).
pub(crate) fn parse(text: &str) -> Result<Vec<Option<String>>, SqlError> {
    let malformed = || SqlError::new("22P02", format!("malformed array literal: \"{text}\""));
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(malformed)?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next().ok_or_else(malformed)? {
                    '"' => break,
                    '\\' => value.push(chars.next().ok_or_else(malformed)?),
                    c => value.push(c),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ',' {
                break;
            }
            chars.next();
            match c {
                '{' | '}' | '"' => return Err(malformed()),
                '\\' => value.push(chars.next().ok_or_else(malformed)?),
                c if quoted && !c.is_whitespace() => return Err(malformed()),
                c => value.push(c),
            }
        }
        if !quoted {
            value.truncate(value.trim_end().len());
        }
        out.push((quoted || !value.eq_ignore_ascii_case("NULL")).then_some(value));
        match chars.next() {
            None => return Ok(out),
            Some(_) => continue,
        }
    }
}

/// The array text of `elements`, quoting those that need it as PostgreSQL does.
pub(crate) fn format(elements: &[Option<String>]) -> String {
    let items: Vec<String> = elements
        .iter()
        .map(|e| match e {
            None => "NULL".to_string(),
            Some(s) => {
                let plain = !s.is_empty()
                    && !s.eq_ignore_ascii_case("NULL")
                    && !s
                        .chars()
                        .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
                if plain {
                    s.clone()
                } else {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// The array text of `values` (NULL elements stay NULL).
pub(crate) fn from_datums(values: &[Datum]) -> Datum {
    let elements: Vec<Option<String>> = values.iter().map(Datum::to_pg_text).collect();
    Datum::Text(format(&elements))
}

fn text_of(d: &Datum) -> Result<&str, SqlError> {
    match d {
        Datum::Text(s) => Ok(s),
        other => Err(SqlError::internal(format!(
            "array text expected, got {other:?}"
        ))),
    }
}

/// `array_to_string(arr, sep)`: the non-NULL elements joined by `sep`.
pub(crate) fn to_string(arr: &Datum, sep: &Datum) -> Result<Datum, SqlError> {
    let elements = parse(text_of(arr)?)?;
    let parts: Vec<String> = elements.into_iter().flatten().collect();
    Ok(Datum::Text(parts.join(text_of(sep)?)))
}

/// `array_upper(arr, 1)` / `array_length(arr, 1)` (equal for arrays starting at 1): NULL for an
/// empty array or another dimension.
pub(crate) fn upper(arr: &Datum, dim: &Datum) -> Result<Datum, SqlError> {
    let n = parse(text_of(arr)?)?.len();
    Ok(match dim {
        Datum::Int(1) if n > 0 => Datum::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        _ => Datum::Null,
    })
}

/// `arr[i]` (1-based): NULL outside the array.
pub(crate) fn element(arr: &Datum, i: &Datum) -> Result<Datum, SqlError> {
    let Datum::Int(i) = i else {
        return Ok(Datum::Null);
    };
    let elements = parse(text_of(arr)?)?;
    Ok(usize::try_from(*i - 1)
        .ok()
        .and_then(|i| elements.into_iter().nth(i))
        .flatten()
        .map_or(Datum::Null, Datum::Text))
}

/// `x op ANY (arr)` / `x op ALL (arr)` with SQL's three-valued logic; the elements are read as
/// values of `ty`, the type of `x`.
pub(crate) fn quantified(
    x: &Datum,
    arr: &Datum,
    op: CmpOp,
    all: bool,
    ty: SqlType,
) -> Result<Datum, SqlError> {
    if *arr == Datum::Null {
        return Ok(Datum::Null);
    }
    let rows = parse(text_of(arr)?)?
        .into_iter()
        .map(|e| match e {
            None => Ok(vec![Datum::Null]),
            Some(s) => Ok(vec![parse_text(&s, ty)?]),
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    super::subquery::quantified(x.clone(), op, all, &ValueList::new(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_text_round_trips() {
        let cases: &[(&str, &[Option<&str>])] = &[
            ("{}", &[]),
            ("{1,2,3}", &[Some("1"), Some("2"), Some("3")]),
            (
                "{\"a b\",NULL,\"NULL\",\"\",\"q\\\"x\"}",
                &[Some("a b"), None, Some("NULL"), Some(""), Some("q\"x")],
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap();
            let want: Vec<Option<String>> = want.iter().map(|e| e.map(str::to_string)).collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(format(&got), *text);
        }
        assert_eq!(parse(" { 1 , 2 } ").unwrap().len(), 2);
        for bad in ["1,2", "{1", "{{1},{2}}", "{\"a\"b}"] {
            assert_eq!(parse(bad).unwrap_err().code, "22P02", "{bad}");
        }
    }

    #[test]
    fn quantified_comparisons_are_three_valued() {
        let arr = |s: &str| Datum::Text(s.into());
        let any =
            |x: i64, a: &str| quantified(&Datum::Int(x), &arr(a), CmpOp::Eq, false, SqlType::Int8);
        assert_eq!(any(2, "{1,2}").unwrap(), Datum::Bool(true));
        assert_eq!(any(3, "{1,2}").unwrap(), Datum::Bool(false));
        assert_eq!(any(3, "{1,NULL}").unwrap(), Datum::Null);
        assert_eq!(any(3, "{}").unwrap(), Datum::Bool(false));
        let all = quantified(
            &Datum::Int(3),
            &arr("{1,2}"),
            CmpOp::Gt,
            true,
            SqlType::Int8,
        );
        assert_eq!(all.unwrap(), Datum::Bool(true));
        assert_eq!(any(1, "{x}").unwrap_err().code, "22P02");
    }
}
