//! Running actions against a connection and printing what comes back.

use std::io::Write;
use std::time::Duration;

use crate::client::{Column, Connection, ResultSet, ServerError, StatementOutput};
use crate::describe::{
    Plan, check_footers, checks_query, columns_query, index_columns_query, index_footer,
    index_footers, index_info_query, indexes_query, kind_query, plan, relation_title,
};
use crate::error::{Error, Result};
use crate::format::{OutputFormat, render, render_titled};
use crate::input::{Action, Arg, DescribeKind, HELP, LineHandler, MetaCommand};
use crate::vars::Variables;

/// How deeply `\i` may nest (a file that includes itself stops here).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Display settings, changed by options and meta-commands.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settings {
    pub format: OutputFormat,
    pub expanded: bool,
    pub timing: bool,
    pub echo: bool,
}

/// What to do after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// `\q`: leave with exit code 0.
    Quit,
    /// Stop with this exit code (an error in a script, or the connection was lost).
    Exit(i32),
}

pub(crate) struct Shell<'a> {
    conn: Connection,
    settings: Settings,
    /// Interactive sessions go on after errors; scripts stop at the first one.
    interactive: bool,
    out: &'a mut (dyn Write + Send),
    err: &'a mut (dyn Write + Send),
    /// `\set` variables.
    vars: Variables,
    /// Where query results go after `\o FILE`.
    redirect: Option<std::fs::File>,
    /// How many `\i` files are being run.
    include_depth: usize,
}

impl<'a> Shell<'a> {
    pub(crate) fn new(
        conn: Connection,
        settings: Settings,
        interactive: bool,
        out: &'a mut (dyn Write + Send),
        err: &'a mut (dyn Write + Send),
    ) -> Shell<'a> {
        Shell {
            conn,
            settings,
            interactive,
            out,
            err,
            vars: Variables::default(),
            redirect: None,
            include_depth: 0,
        }
    }

    /// Where query results are written: the `\o` file, or standard output.
    fn results(&mut self) -> &mut dyn Write {
        match &mut self.redirect {
            Some(file) => file,
            None => self.out,
        }
    }

    /// A meta-command argument with variables substituted (unless it was single-quoted).
    fn resolve(&self, arg: &Arg) -> String {
        if arg.literal {
            arg.text.clone()
        } else {
            self.vars.interpolate_arg(&arg.text)
        }
    }

    /// The table names to offer for completion; empty when the server cannot list them.
    pub(crate) async fn table_names(&mut self) -> Vec<String> {
        match self.conn.query(crate::complete::TABLES_QUERY).await {
            Ok(response) if response.error.is_none() => response
                .outputs
                .into_iter()
                .filter_map(|o| match o {
                    StatementOutput::Rows(set, _) => Some(set.rows),
                    _ => None,
                })
                .flatten()
                .filter_map(|row| row.into_iter().next().flatten())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn out(&mut self) -> &mut (dyn Write + Send) {
        self.out
    }

    pub(crate) fn err(&mut self) -> &mut (dyn Write + Send) {
        self.err
    }

    /// Runs every statement and meta-command of `text`, the last statement even without `;`.
    pub(crate) async fn run_script(&mut self, text: &str) -> Result<Flow> {
        let mut lines = LineHandler::new();
        for line in text.lines() {
            for action in lines.feed(line) {
                let flow = self.perform(action).await?;
                if flow != Flow::Continue {
                    return Ok(flow);
                }
            }
        }
        match lines.finish() {
            Some(action) => self.perform(action).await,
            None => Ok(Flow::Continue),
        }
    }

    pub(crate) async fn perform(&mut self, action: Action) -> Result<Flow> {
        let flow = match action {
            Action::Run(sql) => {
                let sql = self.vars.interpolate_sql(&sql);
                self.run_sql(&sql).await?
            }
            Action::Meta(command) => self.meta(command).await?,
        };
        self.out.flush()?;
        if let Some(file) = &mut self.redirect {
            file.flush()?;
        }
        Ok(flow)
    }

    async fn run_sql(&mut self, sql: &str) -> Result<Flow> {
        if self.settings.echo {
            writeln!(self.out, "{sql}")?;
        }
        // Real elapsed time is what `\timing` reports.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let response = match self.conn.query(sql).await {
            Ok(response) => response,
            Err(Error::ConnectionLost) => {
                writeln!(self.err, "meridian sql: connection to server was lost")?;
                return Ok(Flow::Exit(2));
            }
            Err(err) => return Err(err),
        };
        let elapsed = started.elapsed();
        for notice in &response.notices {
            writeln!(self.err, "{}:  {}", notice.severity, notice.message)?;
        }
        let (format, expanded) = (self.settings.format, self.settings.expanded);
        for output in &response.outputs {
            let results = self.results();
            match output {
                StatementOutput::Rows(set, _) => {
                    results.write_all(render(set, format, expanded).as_bytes())?;
                }
                StatementOutput::Command(tag) => writeln!(results, "{tag}")?,
                StatementOutput::CopyOut(data) => results.write_all(data)?,
                StatementOutput::Empty => {}
            }
        }
        if let Some(error) = &response.error {
            self.results().flush()?;
            write_error(self.err, error)?;
        }
        if self.settings.timing {
            writeln!(self.out, "Time: {}", format_timing(elapsed))?;
        }
        Ok(match response.error {
            Some(_) if !self.interactive => Flow::Exit(1),
            _ => Flow::Continue,
        })
    }

    async fn meta(&mut self, command: MetaCommand) -> Result<Flow> {
        match command {
            MetaCommand::Include(file) => return self.include(&file).await,
            MetaCommand::Output(file) => return self.output(file.as_ref()),
            MetaCommand::Set(args) => return self.set(&args),
            MetaCommand::Unset(name) => {
                let name = self.resolve(&name);
                self.vars.unset(&name);
            }
            MetaCommand::Echo(args) => {
                let words: Vec<String> = args.iter().map(|a| self.resolve(a)).collect();
                writeln!(self.out, "{}", words.join(" "))?;
            }
            MetaCommand::Describe { kind, pattern, .. } => {
                let pattern = pattern.map(|p| self.resolve(&p));
                return self.describe(kind, pattern.as_deref()).await;
            }
            MetaCommand::Quit => return Ok(Flow::Quit),
            MetaCommand::Help => self.out.write_all(HELP.as_bytes())?,
            MetaCommand::Timing(value) => {
                self.settings.timing = value.unwrap_or(!self.settings.timing);
                writeln!(self.out, "Timing is {}.", on_off(self.settings.timing))?;
            }
            MetaCommand::Expanded(value) => {
                self.settings.expanded = value.unwrap_or(!self.settings.expanded);
                writeln!(
                    self.out,
                    "Expanded display is {}.",
                    on_off(self.settings.expanded)
                )?;
            }
            MetaCommand::Unsupported { command, reason } => {
                writeln!(self.err, "{command}: not supported yet: {reason}")?;
                return Ok(self.after_error());
            }
            MetaCommand::Invalid(message) => {
                writeln!(self.err, "{message}")?;
                return Ok(self.after_error());
            }
        }
        Ok(Flow::Continue)
    }

    /// `\i FILE`: runs the file as a script, in the current mode.
    async fn include(&mut self, file: &Arg) -> Result<Flow> {
        let path = self.resolve(file);
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            writeln!(
                self.err,
                "{path}: \\i nested more than {MAX_INCLUDE_DEPTH} deep"
            )?;
            return Ok(self.after_error());
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) => {
                writeln!(self.err, "{path}: {e}")?;
                return Ok(self.after_error());
            }
        };
        self.include_depth += 1;
        let flow = Box::pin(self.run_script(&text)).await;
        self.include_depth -= 1;
        flow
    }

    /// `\o [FILE]`: results to a file (truncated first), or back to standard output.
    fn output(&mut self, file: Option<&Arg>) -> Result<Flow> {
        if let Some(old) = &mut self.redirect {
            old.flush()?;
        }
        self.redirect = None;
        let Some(file) = file else {
            return Ok(Flow::Continue);
        };
        let path = self.resolve(file);
        match std::fs::File::create(&path) {
            Ok(f) => {
                self.redirect = Some(f);
                Ok(Flow::Continue)
            }
            Err(e) => {
                writeln!(self.err, "{path}: {e}")?;
                Ok(self.after_error())
            }
        }
    }

    /// `\set`: lists the variables, or sets one to its arguments joined (as psql does).
    fn set(&mut self, args: &[Arg]) -> Result<Flow> {
        let Some((name, values)) = args.split_first() else {
            let listing = self.vars.listing();
            self.out.write_all(listing.as_bytes())?;
            return Ok(Flow::Continue);
        };
        let name = self.resolve(name);
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            writeln!(self.err, "\\set: invalid variable name: \"{name}\"")?;
            return Ok(self.after_error());
        }
        let value: String = values.iter().map(|v| self.resolve(v)).collect();
        self.vars.set(&name, &value);
        Ok(Flow::Continue)
    }

    /// Runs a catalog query: its rows, or the flow after the error it printed.
    async fn catalog_query(&mut self, sql: &str) -> Result<std::result::Result<ResultSet, Flow>> {
        let response = match self.conn.query(sql).await {
            Ok(response) => response,
            Err(Error::ConnectionLost) => {
                writeln!(self.err, "meridian sql: connection to server was lost")?;
                return Ok(Err(Flow::Exit(2)));
            }
            Err(err) => return Err(err),
        };
        if let Some(error) = &response.error {
            write_error(self.err, error)?;
            return Ok(Err(self.after_error()));
        }
        let set = response
            .outputs
            .into_iter()
            .find_map(|o| match o {
                StatementOutput::Rows(set, _) => Some(set),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Ok(set))
    }

    /// `\d` and friends, with psql's catalog queries (see `describe.rs`).
    async fn describe(&mut self, kind: DescribeKind, pattern: Option<&str>) -> Result<Flow> {
        let (format, expanded) = (self.settings.format, self.settings.expanded);
        match plan(kind, pattern) {
            Plan::Listing {
                sql,
                title,
                if_empty,
            } => {
                let set = match self.catalog_query(&sql).await? {
                    Ok(set) => set,
                    Err(flow) => return Ok(flow),
                };
                match if_empty {
                    Some(message) if set.rows.is_empty() => writeln!(self.err, "{message}")?,
                    _ => {
                        let text = render_titled(&set, title, format, expanded);
                        self.results().write_all(text.as_bytes())?;
                    }
                }
            }
            Plan::Relation { lookup, pattern } => {
                let found = match self.catalog_query(&lookup).await? {
                    Ok(set) => set,
                    Err(flow) => return Ok(flow),
                };
                if found.rows.is_empty() {
                    writeln!(self.err, "Did not find any relation named \"{pattern}\".")?;
                    return Ok(self.after_error());
                }
                for row in found.rows {
                    let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                    let (oid, schema, name) = (cell(0), cell(1), cell(2));
                    if let Err(flow) = self.describe_relation(&oid, &schema, &name).await? {
                        return Ok(flow);
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// `\d NAME` for one relation: psql's title, column table and footers for its kind.
    async fn describe_relation(
        &mut self,
        oid: &str,
        schema: &str,
        name: &str,
    ) -> Result<std::result::Result<(), Flow>> {
        let (format, expanded) = (self.settings.format, self.settings.expanded);
        macro_rules! rows {
            ($sql:expr) => {
                match self.catalog_query(&$sql).await? {
                    Ok(set) => set,
                    Err(flow) => return Ok(Err(flow)),
                }
            };
        }
        let kind = rows!(kind_query(oid))
            .rows
            .into_iter()
            .next()
            .unwrap_or_default();
        let flag = |i: usize| kind.get(i).cloned().flatten().unwrap_or_default();
        let (relkind, has_index, checks) = (flag(0), flag(1), flag(2));
        let (table, footers) = if relkind == "i" {
            let columns = rows!(index_columns_query(oid));
            let info = rows!(index_info_query(oid));
            let footer = info.rows.first().map(|r| index_footer(r, schema));
            (index_column_table(columns), footer.into_iter().collect())
        } else {
            let columns = column_table(rows!(columns_query(oid)));
            let mut footers = Vec::new();
            if matches!(has_index.as_str(), "t" | "true") {
                footers.extend(index_footers(&rows!(indexes_query(oid)).rows));
            }
            if !matches!(checks.as_str(), "" | "0") {
                footers.extend(check_footers(&rows!(checks_query(oid)).rows));
            }
            (columns, footers)
        };
        let title = relation_title(&relkind, schema, name);
        let mut text = render_titled(&table, &title, format, expanded);
        if format == OutputFormat::Table && !expanded {
            // psql's description of a relation has no "(N rows)" footer; its own footers
            // follow the rows.
            text = drop_footer(&text);
            if !footers.is_empty() {
                text = format!(
                    "{}\n{}\n\n",
                    text.trim_end_matches('\n'),
                    footers.join("\n")
                );
            }
        }
        self.results().write_all(text.as_bytes())?;
        Ok(Ok(()))
    }

    fn after_error(&self) -> Flow {
        if self.interactive {
            Flow::Continue
        } else {
            Flow::Exit(1)
        }
    }
}

/// A result set of text columns called `header` holding `rows`.
fn text_table(header: &[&str], rows: Vec<Vec<Option<String>>>) -> ResultSet {
    const TEXT: u32 = 25;
    ResultSet {
        columns: header
            .iter()
            .map(|name| Column {
                name: (*name).to_owned(),
                type_oid: TEXT,
            })
            .collect(),
        rows,
    }
}

/// psql's column table of `\d INDEX` from the rows of the index column query (name, type,
/// key?, definition).
fn index_column_table(columns: ResultSet) -> ResultSet {
    text_table(&["Column", "Type", "Key?", "Definition"], columns.rows)
}

/// psql's column table of `\d NAME` from the rows of the column query: (name, type,
/// default, not null, collation, identity, generated).
fn column_table(columns: ResultSet) -> ResultSet {
    let rows = columns
        .rows
        .into_iter()
        .map(|r| {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let default = match (cell(5).as_str(), cell(6).as_str()) {
                ("a", _) => "generated always as identity".to_owned(),
                ("d", _) => "generated by default as identity".to_owned(),
                (_, "s") => format!("generated always as ({}) stored", cell(2)),
                _ => cell(2),
            };
            let not_null = matches!(cell(3).as_str(), "t" | "true");
            vec![
                Some(cell(0)),
                Some(cell(1)),
                Some(cell(4)),
                Some(if not_null {
                    "not null".to_owned()
                } else {
                    String::new()
                }),
                Some(default),
            ]
        })
        .collect();
    text_table(
        &["Column", "Type", "Collation", "Nullable", "Default"],
        rows,
    )
}

/// An aligned table without its `(N rows)` line (the blank line after it stays).
fn drop_footer(table: &str) -> String {
    let body = table.trim_end_matches('\n');
    match body.rfind('\n') {
        Some(at) if body[at + 1..].starts_with('(') => format!("{}\n\n", &body[..at]),
        _ => table.to_owned(),
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

/// Writes a server error as `ERROR: message`, `SQLSTATE: code`, then DETAIL and HINT lines
/// when present.
pub(crate) fn write_error(out: &mut dyn Write, error: &ServerError) -> std::io::Result<()> {
    let severity = if error.severity.is_empty() {
        "ERROR"
    } else {
        &error.severity
    };
    writeln!(out, "{severity}: {}", error.message)?;
    writeln!(out, "SQLSTATE: {}", error.code)?;
    if let Some(detail) = &error.detail {
        writeln!(out, "DETAIL: {detail}")?;
    }
    if let Some(hint) = &error.hint {
        writeln!(out, "HINT: {hint}")?;
    }
    Ok(())
}

/// psql's `\timing` text: milliseconds with three decimals, and from one second on the
/// duration as `[d ][hh:]mm:ss.fff` too.
pub(crate) fn format_timing(elapsed: Duration) -> String {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        return format!("{ms:.3} ms");
    }
    let total_secs = ms / 1000.0;
    let days = (total_secs / 86_400.0).floor();
    let hours = ((total_secs - days * 86_400.0) / 3600.0).floor();
    let minutes = ((total_secs - days * 86_400.0 - hours * 3600.0) / 60.0).floor();
    let seconds = total_secs - days * 86_400.0 - hours * 3600.0 - minutes * 60.0;
    if days > 0.0 {
        format!("{ms:.3} ms ({days:.0} d {hours:02.0}:{minutes:02.0}:{seconds:06.3})")
    } else if hours > 0.0 {
        format!("{ms:.3} ms ({hours:02.0}:{minutes:02.0}:{seconds:06.3})")
    } else {
        format!("{ms:.3} ms ({minutes:02.0}:{seconds:06.3})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_reads_like_psql() {
        assert_eq!(format_timing(Duration::from_micros(374)), "0.374 ms");
        assert_eq!(
            format_timing(Duration::from_micros(1_234_567)),
            "1234.567 ms (00:01.235)"
        );
        assert_eq!(
            format_timing(Duration::from_secs(3 * 3600 + 62)),
            "10862000.000 ms (03:01:02.000)"
        );
        assert_eq!(
            format_timing(Duration::from_secs(86_400 + 5)),
            "86405000.000 ms (1 d 00:00:05.000)"
        );
    }

    #[test]
    fn relation_tables_lose_their_footer() {
        assert_eq!(drop_footer(" a \n---\n 1\n(1 row)\n\n"), " a \n---\n 1\n\n");
        assert_eq!(drop_footer("x\n"), "x\n");
    }

    #[test]
    fn errors_print_sqlstate_and_optional_lines() {
        let mut out = Vec::new();
        let err = ServerError {
            severity: "ERROR".into(),
            code: "42P01".into(),
            message: "relation \"t\" does not exist".into(),
            detail: None,
            hint: Some("create it first".into()),
            position: Some(15),
        };
        write_error(&mut out, &err).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ERROR: relation \"t\" does not exist\nSQLSTATE: 42P01\nHINT: create it first\n"
        );
    }
}
