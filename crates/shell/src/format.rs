//! Result display: psql's aligned table (border 1, ASCII lines) and expanded (`\x`) formats,
//! CSV as `psql --csv` writes it, and tab-separated values.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use crate::client::ResultSet;

/// How result rows are displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// psql's aligned table, with a `(N rows)` footer.
    #[default]
    Table,
    /// Comma-separated values with a header line, quoted as `psql --csv` does.
    Csv,
    /// Tab-separated values with a header line; tab, newline, carriage return and backslash in
    /// values are written `\t`, `\n`, `\r` and `\\`; NULL is an empty field.
    Tsv,
    /// A JSON array of objects, one per row, keyed by column name (see `json.rs`).
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" | "aligned" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "tsv" => Ok(OutputFormat::Tsv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!(
                "unknown output format {other:?} (expected table, csv, tsv or json)"
            )),
        }
    }
}

/// Renders a result set. `expanded` applies to the table format only.
pub fn render(set: &ResultSet, format: OutputFormat, expanded: bool) -> String {
    match format {
        OutputFormat::Table if expanded => expanded_table(set),
        OutputFormat::Table => aligned_table(set),
        OutputFormat::Csv => csv(set),
        OutputFormat::Tsv => tsv(set),
        OutputFormat::Json => crate::json::render(set),
    }
}

/// [`render`] with a title, which the aligned table centres above itself as psql does
/// (`List of relations`); other formats leave it out.
pub fn render_titled(set: &ResultSet, title: &str, format: OutputFormat, expanded: bool) -> String {
    let body = render(set, format, expanded);
    if format != OutputFormat::Table || expanded {
        return body;
    }
    let table_width = body.lines().nth(1).map_or(0, width);
    let pad = table_width.saturating_sub(width(title)) / 2;
    format!("{}{title}\n{body}", " ".repeat(pad))
}

/// Type OIDs psql right-aligns: int2, int4, int8, float4, float8, numeric, oid, xid, xid8,
/// cid and money.
fn is_numeric(type_oid: u32) -> bool {
    matches!(
        type_oid,
        21 | 23 | 20 | 700 | 701 | 1700 | 26 | 28 | 5069 | 29 | 790
    )
}

fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// The lines of a value; NULL shows as empty.
fn value_lines(value: Option<&str>) -> Vec<&str> {
    value.unwrap_or("").split('\n').collect()
}

fn max_width(lines: &[&str]) -> usize {
    lines.iter().map(|l| width(l)).max().unwrap_or(0)
}

fn footer(rows: usize) -> String {
    if rows == 1 {
        "(1 row)\n".to_owned()
    } else {
        format!("({rows} rows)\n")
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn aligned_table(set: &ResultSet) -> String {
    let mut out = String::new();
    let ncols = set.columns.len();
    if ncols == 0 {
        out.push_str("--\n");
        out.push_str(&footer(set.rows.len()));
        out.push('\n');
        return out;
    }
    let headers: Vec<Vec<&str>> = set
        .columns
        .iter()
        .map(|c| c.name.split('\n').collect())
        .collect();
    let cells: Vec<Vec<Vec<&str>>> = set
        .rows
        .iter()
        .map(|row| {
            (0..ncols)
                .map(|j| value_lines(row.get(j).and_then(Option::as_deref)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..ncols)
        .map(|j| {
            cells
                .iter()
                .map(|row| max_width(&row[j]))
                .chain(std::iter::once(max_width(&headers[j])))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let right: Vec<bool> = set.columns.iter().map(|c| is_numeric(c.type_oid)).collect();

    // Header: centred names, a `+` where a name continues on the next line.
    let header_lines = headers.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..header_lines {
        for (j, name) in headers.iter().enumerate() {
            out.push(' ');
            match name.get(line) {
                Some(text) => {
                    let space = widths[j] - width(text);
                    pad(&mut out, space / 2);
                    out.push_str(text);
                    pad(&mut out, space.div_ceil(2));
                }
                None => pad(&mut out, widths[j]),
            }
            out.push(if line + 1 < name.len() { '+' } else { ' ' });
            if j + 1 < ncols {
                out.push('|');
            }
        }
        out.push('\n');
    }

    // Separator: `-` under each column, `+` between columns.
    for (j, w) in widths.iter().enumerate() {
        out.push_str(&"-".repeat(w + 2));
        if j + 1 < ncols {
            out.push('+');
        }
    }
    out.push('\n');

    for row in &cells {
        let lines = row.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..lines {
            for (j, value) in row.iter().enumerate() {
                let last = j + 1 == ncols;
                let continues = line + 1 < value.len();
                out.push(' ');
                match value.get(line) {
                    Some(text) => {
                        let space = widths[j] - width(text);
                        if right[j] {
                            pad(&mut out, space);
                            out.push_str(text);
                        } else {
                            out.push_str(text);
                            // psql leaves no trailing blanks after the last column.
                            if !last || continues {
                                pad(&mut out, space);
                            }
                        }
                    }
                    None if !last => pad(&mut out, widths[j]),
                    None => {}
                }
                if continues {
                    out.push('+');
                } else if !last {
                    out.push(' ');
                }
                if !last {
                    out.push('|');
                }
            }
            out.push('\n');
        }
    }
    out.push_str(&footer(set.rows.len()));
    out.push('\n');
    out
}

fn expanded_table(set: &ResultSet) -> String {
    let mut out = String::new();
    if set.rows.is_empty() {
        out.push_str(&footer(0));
        out.push('\n');
        return out;
    }
    let names: Vec<Vec<&str>> = set
        .columns
        .iter()
        .map(|c| c.name.split('\n').collect())
        .collect();
    let values: Vec<Vec<Vec<&str>>> = set
        .rows
        .iter()
        .map(|row| {
            (0..set.columns.len())
                .map(|j| value_lines(row.get(j).and_then(Option::as_deref)))
                .collect()
        })
        .collect();
    let hwidth = names.iter().map(|n| max_width(n)).max().unwrap_or(0);
    let dwidth = values
        .iter()
        .flat_map(|row| row.iter().map(|v| max_width(v)))
        .max()
        .unwrap_or(0);
    for (i, row) in values.iter().enumerate() {
        out.push_str(&record_line(i + 1, hwidth, dwidth));
        for (name, value) in names.iter().zip(row) {
            for line in 0..name.len().max(value.len()) {
                let n = name.get(line).copied().unwrap_or("");
                out.push_str(n);
                pad(&mut out, hwidth - width(n));
                out.push(if line + 1 < name.len() { '+' } else { ' ' });
                out.push_str("| ");
                if let Some(v) = value.get(line) {
                    out.push_str(v);
                    if line + 1 < value.len() {
                        pad(&mut out, dwidth - width(v));
                        out.push('+');
                    }
                }
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out
}

/// `-[ RECORD n ]` padded with `-` to the record's width, with a `+` over the column divider
/// when the label is short enough, as psql draws it.
fn record_line(n: usize, hwidth: usize, dwidth: usize) -> String {
    let mut line = format!("-[ RECORD {n} ]");
    let label = line.len();
    line.push_str(&"-".repeat(hwidth.saturating_sub(label)));
    let mut over = label as isize - hwidth as isize;
    for c in ['-', '+', '-'] {
        if over <= 0 {
            line.push(c);
        }
        over -= 1;
    }
    let used = over.max(0) as usize;
    line.push_str(&"-".repeat(dwidth.saturating_sub(used)));
    line.push('\n');
    line
}

fn csv(set: &ResultSet) -> String {
    let mut out = String::new();
    let header: Vec<String> = set.columns.iter().map(|c| csv_field(&c.name)).collect();
    let _ = writeln!(out, "{}", header.join(","));
    for row in &set.rows {
        let fields: Vec<String> = row
            .iter()
            .map(|v| v.as_deref().map_or_else(String::new, csv_field))
            .collect();
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

/// Quotes a CSV field when it holds a comma, quote, CR or LF, or is exactly `\.` (which COPY
/// would read as end of data).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value == "\\." {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn tsv(set: &ResultSet) -> String {
    let mut out = String::new();
    let header: Vec<String> = set.columns.iter().map(|c| tsv_field(&c.name)).collect();
    let _ = writeln!(out, "{}", header.join("\t"));
    for row in &set.rows {
        let fields: Vec<String> = row
            .iter()
            .map(|v| v.as_deref().map_or_else(String::new, tsv_field))
            .collect();
        let _ = writeln!(out, "{}", fields.join("\t"));
    }
    out
}

fn tsv_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Column;

    const INT4: u32 = 23;
    const TEXT: u32 = 25;
    const FLOAT8: u32 = 701;

    fn set(columns: &[(&str, u32)], rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: columns
                .iter()
                .map(|(name, type_oid)| Column {
                    name: (*name).to_owned(),
                    type_oid: *type_oid,
                })
                .collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_owned)).collect())
                .collect(),
        }
    }

    // The expected texts below are psql 15's output for the same results.

    #[test]
    fn aligned_table_matches_psql() {
        let s = set(
            &[("a", INT4), ("b", TEXT), ("c", INT4), ("num", INT4)],
            &[
                &[Some("1"), Some("one"), None, Some("12345")],
                &[Some("22"), Some("twotwotwo"), Some("3"), None],
            ],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, false),
            " a  |     b     | c |  num  \n\
             ----+-----------+---+-------\n\
             \x20 1 | one       |   | 12345\n\
             \x2022 | twotwotwo | 3 |      \n\
             (2 rows)\n\n"
        );
    }

    #[test]
    fn multi_line_values_and_names_match_psql() {
        let s = set(
            &[("m", TEXT), ("n", INT4), ("last", TEXT)],
            &[&[Some("line1\nline2"), Some("5"), Some("a\nbb\nccc")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, false),
            "   m   | n | last \n\
             -------+---+------\n\
             \x20line1+| 5 | a   +\n\
             \x20line2 |   | bb  +\n\
             \x20      |   | ccc\n\
             (1 row)\n\n"
        );
        let s = set(
            &[("multi\nhead", TEXT), ("b", INT4)],
            &[&[Some("x\ny"), Some("1")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, false),
            " multi+| b \n head  |   \n-------+---\n x    +| 1\n y     | \n(1 row)\n\n"
        );
    }

    #[test]
    fn wide_characters_use_display_width() {
        let s = set(
            &[("wide col", TEXT), ("f", FLOAT8)],
            &[&[Some("héllo 日本"), Some("1.5")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, false),
            "  wide col  |  f  \n------------+-----\n héllo 日本 | 1.5\n(1 row)\n\n"
        );
    }

    #[test]
    fn empty_results_match_psql() {
        let s = set(&[("a", INT4)], &[]);
        assert_eq!(
            render(&s, OutputFormat::Table, false),
            " a \n---\n(0 rows)\n\n"
        );
        assert_eq!(render(&s, OutputFormat::Table, true), "(0 rows)\n\n");
        let s = set(&[], &[&[]]);
        assert_eq!(render(&s, OutputFormat::Table, false), "--\n(1 row)\n\n");
    }

    #[test]
    fn expanded_display_matches_psql() {
        let s = set(
            &[("a", INT4), ("longer_name", TEXT), ("c", INT4)],
            &[
                &[Some("1"), Some("one"), None],
                &[Some("22"), Some("two\nlines"), Some("3")],
            ],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, true),
            "-[ RECORD 1 ]------\n\
             a           | 1\n\
             longer_name | one\n\
             c           | \n\
             -[ RECORD 2 ]------\n\
             a           | 22\n\
             longer_name | two  +\n\
             \x20           | lines\n\
             c           | 3\n\n"
        );
        let s = set(
            &[("a_very_long_column_name", INT4), ("b", INT4)],
            &[&[Some("1"), Some("2")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, true),
            "-[ RECORD 1 ]-----------+--\na_very_long_column_name | 1\nb                       | 2\n\n"
        );
        let s = set(&[("a", INT4), ("b", INT4)], &[&[Some("1"), Some("2")]]);
        assert_eq!(
            render(&s, OutputFormat::Table, true),
            "-[ RECORD 1 ]\na | 1\nb | 2\n\n"
        );
        let s = set(
            &[("multi\nname", TEXT), ("b", INT4)],
            &[&[Some("x\ny"), Some("2")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Table, true),
            "-[ RECORD 1 ]\nmulti+| x+\nname  | y\nb     | 2\n\n"
        );
    }

    #[test]
    fn csv_matches_psql() {
        let s = set(
            &[
                ("a", INT4),
                ("b", TEXT),
                ("c", TEXT),
                ("d", TEXT),
                ("e", TEXT),
                ("f", TEXT),
            ],
            &[&[
                Some("1"),
                Some("x,y"),
                None,
                Some(""),
                Some("q\"q"),
                Some(" sp"),
            ]],
        );
        assert_eq!(
            render(&s, OutputFormat::Csv, false),
            "a,b,c,d,e,f\n1,\"x,y\",,,\"q\"\"q\", sp\n"
        );
        let s = set(&[("a", TEXT)], &[&[Some("two\nlines")], &[Some("\\.")]]);
        assert_eq!(
            render(&s, OutputFormat::Csv, false),
            "a\n\"two\nlines\"\n\"\\.\"\n"
        );
    }

    #[test]
    fn tsv_escapes_separators() {
        let s = set(
            &[("a", INT4), ("b", TEXT)],
            &[&[Some("1"), Some("t\tab\nnl\\")], &[None, Some("x")]],
        );
        assert_eq!(
            render(&s, OutputFormat::Tsv, false),
            "a\tb\n1\tt\\tab\\nnl\\\\\n\tx\n"
        );
    }

    #[test]
    fn formats_parse_from_their_names() {
        assert_eq!("CSV".parse::<OutputFormat>(), Ok(OutputFormat::Csv));
        assert_eq!("table".parse::<OutputFormat>(), Ok(OutputFormat::Table));
        assert_eq!("json".parse::<OutputFormat>(), Ok(OutputFormat::Json));
        assert!("xml".parse::<OutputFormat>().is_err());
    }

    #[test]
    fn titles_are_centred_like_psql() {
        let s = set(
            &[
                ("Schema", TEXT),
                ("Name", TEXT),
                ("Type", TEXT),
                ("Owner", TEXT),
            ],
            &[&[Some("public"), Some("t"), Some("table"), Some("postgres")]],
        );
        assert_eq!(
            render_titled(&s, "List of relations", OutputFormat::Table, false),
            "        List of relations\n \
             Schema | Name | Type  |  Owner   \n\
             --------+------+-------+----------\n \
             public | t    | table | postgres\n\
             (1 row)\n\n"
        );
        assert_eq!(
            render_titled(&s, "List of relations", OutputFormat::Csv, false),
            render(&s, OutputFormat::Csv, false)
        );
    }
}
