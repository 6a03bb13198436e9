//! Running actions against a connection and printing what comes back.

use std::io::Write;
use std::time::Duration;

use crate::client::{Connection, ServerError, StatementOutput};
use crate::error::{Error, Result};
use crate::format::{OutputFormat, render};
use crate::input::{Action, HELP, LineHandler, MetaCommand};

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
            Action::Run(sql) => self.run_sql(&sql).await?,
            Action::Meta(command) => self.meta(command)?,
        };
        self.out.flush()?;
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
        for output in &response.outputs {
            match output {
                StatementOutput::Rows(set, _) => {
                    let text = render(set, self.settings.format, self.settings.expanded);
                    self.out.write_all(text.as_bytes())?;
                }
                StatementOutput::Command(tag) => writeln!(self.out, "{tag}")?,
                StatementOutput::CopyOut(data) => self.out.write_all(data)?,
                StatementOutput::Empty => {}
            }
        }
        if let Some(error) = &response.error {
            self.out.flush()?;
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

    fn meta(&mut self, command: MetaCommand) -> Result<Flow> {
        match command {
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

    fn after_error(&self) -> Flow {
        if self.interactive {
            Flow::Continue
        } else {
            Flow::Exit(1)
        }
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
