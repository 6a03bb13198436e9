//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT` in PostgreSQL's text and CSV formats.
//!
//! `COPY t [(cols)] FROM STDIN` answers [`StatementResult::CopyIn`] (or, with the data inline
//! after the statement as in a dump, loads it at once); the wire server then
//! collects the client's data and hands it to [`Session::copy_in`], which parses it (`parse`)
//! and inserts the rows as one statement: in the open transaction block, or in an implicit
//! one that commits them together. Values are text and convert to each column's type as a
//! string literal would. `COPY t [(cols)] TO STDOUT` and `COPY (query) TO STDOUT` answer
//! [`StatementResult::CopyOut`] with the formatted lines. The binary format is not supported.

use sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};

use crate::api::{Datum, SqlError, StatementResult};
use crate::session::Session;
use crate::txn;

/// Rows per INSERT statement when loading COPY data.
const BATCH_ROWS: usize = 500;

/// How COPY data is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// CSV (quoted fields) rather than PostgreSQL's text format (backslash escapes).
    pub csv: bool,
    /// Field separator: tab for text, comma for CSV unless given.
    pub delimiter: char,
    /// The string that stands for NULL: `\N` for text, the empty unquoted string for CSV.
    pub null: String,
    /// CSV: the first line is a header (skipped on input, written on output).
    pub header: bool,
    /// CSV quote character.
    pub quote: char,
    /// CSV escape character (inside quotes; defaults to the quote character).
    pub escape: char,
}

impl CopyFormat {
    fn text() -> CopyFormat {
        CopyFormat {
            csv: false,
            delimiter: '\t',
            null: "\\N".to_string(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }
}

/// A `COPY ... FROM STDIN` waiting for its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIn {
    /// The target table.
    pub table: String,
    /// The target columns, in the order the data lists them (all visible columns if none were
    /// named).
    pub columns: Vec<String>,
    /// The data's layout.
    pub format: CopyFormat,
}

/// The format options of a COPY statement.
fn format_of(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyFormat, SqlError> {
    let mut f = CopyFormat::text();
    let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
    for o in options {
        match o {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "text" => f.csv = false,
                "csv" => f.csv = true,
                "binary" => {
                    return Err(SqlError::unsupported(
                        "COPY in binary format is not supported yet",
                    ));
                }
                other => {
                    return Err(SqlError::new(
                        "22023",
                        format!("COPY format \"{other}\" not recognized"),
                    ));
                }
            },
            // Freezing rows is a heap optimisation with nothing to do here.
            CopyOption::Freeze(_) | CopyOption::Encoding(_) => {}
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Header(h) => f.header = *h,
            CopyOption::Quote(c) => quote = Some(*c),
            CopyOption::Escape(c) => escape = Some(*c),
            other => {
                return Err(SqlError::unsupported(format!(
                    "COPY option {other} is not supported yet"
                )));
            }
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => {
                return Err(SqlError::unsupported(
                    "COPY in binary format is not supported yet",
                ));
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            CopyLegacyOption::Header => f.header = true,
            CopyLegacyOption::Csv(csv) => {
                f.csv = true;
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => f.header = true,
                        CopyLegacyCsvOption::Quote(q) => quote = Some(*q),
                        CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "COPY option {other} is not supported yet"
                            )));
                        }
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    if f.csv {
        f.delimiter = ',';
        f.null = String::new();
    } else if f.header {
        return Err(SqlError::new(
            "0A000",
            "COPY HEADER available only in CSV mode",
        ));
    }
    if let Some(d) = delimiter {
        f.delimiter = d;
    }
    if let Some(n) = null {
        f.null = n;
    }
    f.quote = quote.unwrap_or('"');
    f.escape = escape.unwrap_or(f.quote);
    if f.delimiter == '\n' || f.delimiter == '\r' || (!f.csv && f.delimiter == '\\') {
        return Err(SqlError::new(
            "22023",
            "COPY delimiter cannot be newline, carriage return or backslash",
        ));
    }
    Ok(f)
}

/// What a COPY statement asks for, before any data moves.
pub(crate) enum CopyPlan {
    /// FROM STDIN into a table; with the data when it was written inline after the statement
    /// (as in a dump: the lines up to `\.`).
    In(CopyIn, Option<String>),
    /// TO STDOUT: the query whose rows to write, and the format.
    Out { query: String, format: CopyFormat },
}

/// Plans a COPY statement: checks the direction, target and options. Table and column names
/// are checked when data arrives (FROM) or when the query runs (TO).
pub(crate) fn plan(stmt: &Statement) -> Result<CopyPlan, SqlError> {
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        payload,
    } = stmt
    else {
        return Err(SqlError::internal("not a COPY statement"));
    };
    let format = format_of(options, legacy_options)?;
    match (to, target) {
        (false, CopyTarget::Stdin) => {
            let CopySource::Table {
                table_name,
                columns,
            } = source
            else {
                return Err(SqlError::syntax("COPY FROM needs a table"));
            };
            Ok(CopyPlan::In(
                CopyIn {
                    table: crate::plan::table_name(table_name)?,
                    columns: columns.iter().map(crate::plan::ident).collect(),
                    format,
                },
                payload.as_ref().map(|p| p.data.clone()),
            ))
        }
        (true, CopyTarget::Stdout) => {
            let query = match source {
                CopySource::Query(q) => q.to_string(),
                CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let cols = if columns.is_empty() {
                        "*".to_string()
                    } else {
                        columns
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    format!("SELECT {cols} FROM {table_name}")
                }
            };
            Ok(CopyPlan::Out { query, format })
        }
        _ => Err(SqlError::new(
            "42501",
            "COPY to or from a file or program on the server is not allowed; use STDIN or \
             STDOUT (psql's \\copy)",
        )),
    }
}

/// Splits COPY data into rows of fields (`None` for NULL). Lines end with `\n` (a `\r`
/// before it is dropped); a line `\.` ends the data.
pub(crate) fn parse(
    format: &CopyFormat,
    data: &[u8],
) -> Result<Vec<Vec<Option<String>>>, SqlError> {
    let text = std::str::from_utf8(data).map_err(|_| {
        SqlError::new(
            "22021",
            "invalid byte sequence for encoding \"UTF8\" in COPY data",
        )
    })?;
    if format.csv {
        parse_csv(format, text)
    } else {
        parse_text(format, text)
    }
}

fn bad_copy(line: usize, what: impl std::fmt::Display) -> SqlError {
    SqlError::new("22P04", format!("{what}")).with_detail(format!("COPY data line {line}"))
}

fn parse_text(format: &CopyFormat, text: &str) -> Result<Vec<Vec<Option<String>>>, SqlError> {
    let mut rows = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        if line.is_empty() && n + 1 == text.split('\n').count() {
            break; // the text after the last newline
        }
        let mut fields = Vec::new();
        for raw in line.split(format.delimiter) {
            if raw == format.null {
                fields.push(None);
            } else {
                fields.push(Some(unescape(raw).map_err(|e| bad_copy(n + 1, e))?));
            }
        }
        rows.push(fields);
    }
    Ok(rows)
}

/// Decodes the backslash escapes of the text format.
fn unescape(raw: &str) -> Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some('x') => {
                let mut v = 0u32;
                let mut digits = 0;
                while digits < 2
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(16))
                {
                    v = v * 16 + d;
                    chars.next();
                    digits += 1;
                }
                if digits == 0 {
                    out.push('x');
                } else {
                    out.push(char::from_u32(v).ok_or("invalid escape")?);
                }
            }
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                let mut digits = 1;
                while digits < 3
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(8))
                {
                    v = v * 8 + d;
                    chars.next();
                    digits += 1;
                }
                if v == 0 {
                    return Err("invalid byte sequence for encoding \"UTF8\": 0x00".into());
                }
                out.push(char::from_u32(v).ok_or("invalid escape")?);
            }
            Some(other) => out.push(other),
            None => return Err("unterminated backslash escape at the end of a line".into()),
        }
    }
    Ok(out)
}

fn parse_csv(format: &CopyFormat, text: &str) -> Result<Vec<Vec<Option<String>>>, SqlError> {
    let mut rows = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut first = true;
    while chars.peek().is_some() {
        // One record: fields until an unquoted newline.
        let mut fields: Vec<Option<String>> = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut at_record_start = true;
        loop {
            let Some(c) = chars.next() else {
                if !at_record_start || !field.is_empty() || quoted {
                    fields.push(csv_field(format, field, quoted));
                }
                break;
            };
            at_record_start = false;
            if c == format.quote {
                quoted = true;
                // A quoted section, until the closing quote. The escape character before a
                // quote (or before itself, when it is not the quote) stands for that character,
                // so with the default escape `""` is one quote.
                loop {
                    match chars.next() {
                        None => return Err(bad_copy(line, "unterminated CSV quoted field")),
                        Some(e)
                            if e == format.escape
                                && (chars.peek() == Some(&format.quote)
                                    || (format.escape != format.quote
                                        && chars.peek() == Some(&format.escape))) =>
                        {
                            if let Some(next) = chars.next() {
                                field.push(next);
                            }
                        }
                        Some(q) if q == format.quote => break,
                        Some('\n') => {
                            line += 1;
                            field.push('\n');
                        }
                        Some(other) => field.push(other),
                    }
                }
            } else if c == format.delimiter {
                fields.push(csv_field(format, std::mem::take(&mut field), quoted));
                quoted = false;
            } else if c == '\n' {
                fields.push(csv_field(format, std::mem::take(&mut field), quoted));
                line += 1;
                break;
            } else if c == '\r' && chars.peek() == Some(&'\n') {
                continue;
            } else {
                field.push(c);
            }
        }
        if fields.len() == 1 && fields[0].as_deref() == Some("\\.") {
            break;
        }
        if fields.is_empty() {
            continue;
        }
        if first && format.header {
            first = false;
            continue;
        }
        first = false;
        rows.push(fields);
    }
    Ok(rows)
}

/// A CSV field: the NULL string matches only unquoted fields.
fn csv_field(format: &CopyFormat, field: String, quoted: bool) -> Option<String> {
    if !quoted && field == format.null {
        None
    } else {
        Some(field)
    }
}

/// Formats result rows as COPY TO lines (each ending with `\n`).
pub(crate) fn format_rows(
    format: &CopyFormat,
    columns: &[String],
    rows: &[Vec<Datum>],
) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(rows.len() + 1);
    if format.csv && format.header {
        let names: Vec<String> = columns
            .iter()
            .map(|c| csv_quote(format, c, false))
            .collect();
        out.push(format!("{}\n", names.join(&format.delimiter.to_string())).into_bytes());
    }
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|d| match d.to_pg_text() {
                None => format.null.clone(),
                Some(v) if format.csv => csv_quote(format, &v, v == format.null),
                Some(v) => escape_text(&v, format.delimiter),
            })
            .collect();
        out.push(format!("{}\n", fields.join(&format.delimiter.to_string())).into_bytes());
    }
    out
}

fn escape_text(v: &str, delimiter: char) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' if delimiter == '\t' => s.push_str("\\t"),
            c if c == delimiter => {
                s.push('\\');
                s.push(c);
            }
            c => s.push(c),
        }
    }
    s
}

fn csv_quote(format: &CopyFormat, v: &str, force: bool) -> String {
    let needs = force
        || v.contains(format.delimiter)
        || v.contains(format.quote)
        || v.contains('\n')
        || v.contains('\r');
    if !needs {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push(format.quote);
    for c in v.chars() {
        if c == format.quote || c == format.escape {
            s.push(format.escape);
        }
        s.push(c);
    }
    s.push(format.quote);
    s
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Session {
    /// Runs a COPY statement: `CopyIn` for FROM STDIN (the data comes next, through
    /// [`Session::copy_in`]), `CopyOut` with the formatted rows for TO STDOUT.
    pub(crate) async fn copy_statement(
        &mut self,
        stmt: &Statement,
    ) -> Result<StatementResult, SqlError> {
        match plan(stmt)? {
            CopyPlan::In(mut copy, inline) => {
                // Check the table and columns now, as PostgreSQL does before asking for data.
                let columns = Box::pin(self.table_columns(&copy.table)).await?;
                if copy.columns.is_empty() {
                    copy.columns = columns;
                } else if let Some(c) = copy.columns.iter().find(|c| !columns.contains(c)) {
                    return Err(SqlError::new(
                        "42703",
                        format!(
                            "column \"{c}\" of relation \"{}\" does not exist",
                            copy.table
                        ),
                    ));
                }
                match inline {
                    Some(data) => {
                        let n = Box::pin(self.copy_in(&copy, data.as_bytes())).await?;
                        Ok(StatementResult::Command {
                            tag: format!("COPY {n}"),
                        })
                    }
                    None => Ok(StatementResult::CopyIn(copy)),
                }
            }
            CopyPlan::Out { query, format } => {
                let mut results = Box::pin(self.execute(&query)).await;
                let Some(result) = results.pop() else {
                    return Err(SqlError::internal("COPY query produced no result"));
                };
                let StatementResult::Query { columns, rows } = result? else {
                    return Err(SqlError::syntax("COPY query must return rows"));
                };
                let names: Vec<String> = columns.into_iter().map(|c| c.name).collect();
                Ok(StatementResult::CopyOut {
                    rows: rows.len() as u64,
                    lines: format_rows(&format, &names, &rows),
                })
            }
        }
    }

    /// The visible columns of table `name`, in order.
    async fn table_columns(&mut self, name: &str) -> Result<Vec<String>, SqlError> {
        let sql = format!("SELECT * FROM {} LIMIT 0", quote_ident(name));
        let p = self.prepare(&sql).await?;
        Ok(p.columns().iter().map(|c| c.name.clone()).collect())
    }

    /// Loads the data of a `COPY ... FROM STDIN` ([`StatementResult::CopyIn`]) into its table
    /// and returns the number of rows. All rows commit together: in the open transaction block,
    /// or in an implicit one. Any error loads nothing (and fails an open block).
    pub async fn copy_in(&mut self, copy: &CopyIn, data: &[u8]) -> Result<u64, SqlError> {
        if let Some(t) = &self.block.txn {
            if t.failed {
                return Err(txn::aborted());
            }
            if t.read_only {
                return Err(SqlError::new(
                    "25006",
                    "cannot execute COPY FROM in a read-only transaction",
                ));
            }
        }
        let implicit = self.block.txn.is_none();
        if implicit {
            self.block.begin(self.engine.inner.kv.clone());
        }
        let r = self.load(copy, data).await;
        if implicit {
            let committed = match r {
                Ok(n) => self.block.commit_implicit().await.map(|()| n),
                Err(e) => {
                    self.block.txn = None;
                    Err(e)
                }
            };
            self.note_committed();
            return committed;
        }
        if let Err(e) = &r {
            self.block.fail(e.code);
        }
        r
    }

    async fn load(&mut self, copy: &CopyIn, data: &[u8]) -> Result<u64, SqlError> {
        let rows = parse(&copy.format, data)?;
        let width = copy.columns.len();
        if let Some((n, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
            let what = if r.len() < width {
                "missing data for a column"
            } else {
                "extra data after last expected column"
            };
            return Err(bad_copy(n + 1, what));
        }
        let cols: Vec<String> = copy.columns.iter().map(|c| quote_ident(c)).collect();
        let table = quote_ident(&copy.table);
        for chunk in rows.chunks(BATCH_ROWS) {
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
            let mut n = 0;
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..width {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            let params: Vec<Datum> = chunk
                .iter()
                .flat_map(|r| r.iter().map(|f| f.clone().map_or(Datum::Null, Datum::Text)))
                .collect();
            self.execute_named(&sql, &[], params).await?;
        }
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> CopyFormat {
        CopyFormat {
            csv: true,
            delimiter: ',',
            null: String::new(),
            ..CopyFormat::text()
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_format_fields_nulls_and_escapes() {
        let rows = parse(
            &CopyFormat::text(),
            b"1\ta\\tb\t\\N\n2\tx\\\\y\\n\t\r\n\\.\nignored\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a\tb"), None],
                vec![s("2"), s("x\\y\n"), s("")],
            ]
        );
        assert_eq!(
            parse(&CopyFormat::text(), b"").unwrap(),
            Vec::<Vec<Option<String>>>::new()
        );
        assert_eq!(
            parse(&CopyFormat::text(), b"\\101\\x41\n").unwrap(),
            vec![vec![s("AA")]]
        );
        assert_eq!(
            parse(&CopyFormat::text(), b"a\\\n").unwrap_err().code,
            "22P04"
        );
        assert_eq!(
            parse(&CopyFormat::text(), &[0xff]).unwrap_err().code,
            "22021"
        );
    }

    #[test]
    fn csv_quotes_nulls_and_headers() {
        let rows = parse(
            &csv(),
            b"1,\"a,b\",\n2,\"\",\"say \"\"hi\"\"\"\n3,\"two\nlines\",x",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a,b"), None],
                vec![s("2"), s(""), s("say \"hi\"")],
                vec![s("3"), s("two\nlines"), s("x")],
            ]
        );
        let header = CopyFormat {
            header: true,
            ..csv()
        };
        assert_eq!(
            parse(&header, b"id,name\r\n1,a\r\n").unwrap(),
            vec![vec![s("1"), s("a")]]
        );
        assert_eq!(parse(&csv(), b"\"open").unwrap_err().code, "22P04");
    }

    #[test]
    fn formatting_round_trips() {
        let rows = vec![
            vec![Datum::Int(1), Datum::Text("a\tb\\c".into()), Datum::Null],
            vec![
                Datum::Int(2),
                Datum::Text("x,\"y\"".into()),
                Datum::Text(String::new()),
            ],
        ];
        let names = vec!["id".to_string(), "v".to_string(), "w".to_string()];
        for format in [CopyFormat::text(), csv()] {
            let data: Vec<u8> = format_rows(&format, &names, &rows).concat();
            let back = parse(&format, &data).unwrap();
            assert_eq!(
                back,
                vec![
                    vec![s("1"), s("a\tb\\c"), None],
                    vec![s("2"), s("x,\"y\""), s("")],
                ],
                "{format:?}"
            );
        }
    }
}
