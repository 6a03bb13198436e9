//! JSON output: a result set as an array of objects, one per row, keyed by column name.
//!
//! Numbers (integer, float and numeric columns) are JSON numbers when their text is a finite
//! number (`NaN` and `Infinity` stay strings), booleans are `true`/`false`, NULL is `null`,
//! and every other value is a JSON string of its text form.

use std::fmt::Write as _;

use crate::client::ResultSet;

const BOOL: u32 = 16;
const NUMBERS: [u32; 7] = [20, 21, 23, 26, 700, 701, 1700];

/// The rows of `set` as a JSON array, one object per line.
pub(crate) fn render(set: &ResultSet) -> String {
    if set.rows.is_empty() {
        return "[]\n".to_owned();
    }
    let keys: Vec<String> = set.columns.iter().map(|c| string(&c.name)).collect();
    let mut out = String::from("[\n");
    for (i, row) in set.rows.iter().enumerate() {
        out.push_str("  {");
        for (j, column) in set.columns.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            let value = row.get(j).and_then(Option::as_deref);
            let _ = write!(out, "{}: {}", keys[j], value_of(column.type_oid, value));
        }
        out.push('}');
        if i + 1 < set.rows.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

fn value_of(type_oid: u32, value: Option<&str>) -> String {
    let Some(text) = value else {
        return "null".to_owned();
    };
    if type_oid == BOOL {
        match text {
            "t" | "true" => return "true".to_owned(),
            "f" | "false" => return "false".to_owned(),
            _ => {}
        }
    }
    if NUMBERS.contains(&type_oid) && is_json_number(text) {
        return text.to_owned();
    }
    string(text)
}

/// Whether `text` is a number in JSON's grammar (which PostgreSQL's text forms of finite
/// numbers are, apart from a leading `+` or `.`).
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    let int_start = i;
    if !digits(&mut i) || (b[int_start] == b'0' && i - int_start > 1) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// A JSON string literal.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Column;

    fn set(columns: &[(&str, u32)], rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: columns
                .iter()
                .map(|(name, oid)| Column {
                    name: (*name).to_owned(),
                    type_oid: *oid,
                })
                .collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_owned)).collect())
                .collect(),
        }
    }

    #[test]
    fn rows_become_objects_with_typed_values() {
        let s = set(
            &[("a", 23), ("b", 25), ("ok", 16), ("x", 701)],
            &[
                &[Some("1"), Some("one"), Some("t"), Some("2.5")],
                &[Some("-20"), None, Some("f"), Some("NaN")],
            ],
        );
        assert_eq!(
            render(&s),
            "[\n  {\"a\": 1, \"b\": \"one\", \"ok\": true, \"x\": 2.5},\n  \
             {\"a\": -20, \"b\": null, \"ok\": false, \"x\": \"NaN\"}\n]\n"
        );
        assert_eq!(render(&set(&[("a", 23)], &[])), "[]\n");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn only_json_numbers_stay_unquoted() {
        for ok in ["0", "-1", "10", "1.5", "1e10", "-2.5E-3"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+1", "Infinity", "1e", "1x", "0x10",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
