//! Turning input lines into actions: statements to run and meta-commands. This is the whole
//! line handling of the shell, as pure functions, shared by interactive and script input.

use crate::splitter::StatementSplitter;

/// A backslash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaCommand {
    /// `\q`: leave the shell.
    Quit,
    /// `\?`: list the meta-commands.
    Help,
    /// `\timing [on|off]`: toggle or set the display of statement durations.
    Timing(Option<bool>),
    /// `\x [on|off]`: toggle or set expanded display.
    Expanded(Option<bool>),
    /// A psql command this shell knows but cannot run yet, with the reason.
    Unsupported {
        /// The command as typed (`\dt`).
        command: String,
        /// Why it is not available.
        reason: &'static str,
    },
    /// Anything else, with the message to show.
    Invalid(String),
}

/// What a line of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this statement.
    Run(String),
    /// Run this meta-command.
    Meta(MetaCommand),
}

/// Collects lines into statements; see [`LineHandler::feed`].
#[derive(Debug, Default)]
pub struct LineHandler {
    splitter: StatementSplitter,
}

impl LineHandler {
    /// A handler with nothing pending.
    pub fn new() -> LineHandler {
        LineHandler::default()
    }

    /// Takes one line: a line starting with `\` outside any literal or comment is a
    /// meta-command (statement text typed before it stays pending, as in psql); otherwise the
    /// line is statement text, and every statement it completes with `;` is returned.
    pub fn feed(&mut self, line: &str) -> Vec<Action> {
        let trimmed = line.trim();
        if self.splitter.at_top_level() && trimmed.starts_with('\\') {
            return vec![Action::Meta(parse_meta(trimmed))];
        }
        self.splitter
            .push_line(line)
            .into_iter()
            .map(Action::Run)
            .collect()
    }

    /// At end of input: the statement still pending without its `;`, if any.
    pub fn finish(&mut self) -> Option<Action> {
        self.splitter.finish().map(Action::Run)
    }

    /// Whether part of a statement has been typed.
    pub fn is_pending(&self) -> bool {
        !self.splitter.is_empty() || !self.splitter.at_top_level()
    }

    /// The prompt for the next line: `db> `, or `-> ` aligned under it while a statement
    /// is pending.
    pub fn prompt(&self, database: &str) -> String {
        let first = format!("{database}> ");
        if self.is_pending() {
            format!("{:>width$}", "-> ", width = first.chars().count())
        } else {
            first
        }
    }
}

const DESCRIBE_REASON: &str =
    "describing objects needs catalog views that Meridian does not have yet";

/// Parses a meta-command line (starting with `\`).
pub fn parse_meta(line: &str) -> MetaCommand {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("\\");
    let arg = words.next();
    let on_off = |name: &str| match arg.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("on" | "true" | "yes" | "1") => Ok(Some(true)),
        Some("off" | "false" | "no" | "0") => Ok(Some(false)),
        Some(other) => Err(MetaCommand::Invalid(format!(
            "unrecognized value \"{other}\" for \"{name}\": Boolean expected"
        ))),
    };
    match command {
        "\\q" | "\\quit" => MetaCommand::Quit,
        "\\?" => MetaCommand::Help,
        "\\timing" => on_off("\\timing").map_or_else(|e| e, MetaCommand::Timing),
        "\\x" => on_off("\\x").map_or_else(|e| e, MetaCommand::Expanded),
        c if c.starts_with("\\d") || c.starts_with("\\l") || c == "\\z" => {
            MetaCommand::Unsupported {
                command: c.to_owned(),
                reason: DESCRIBE_REASON,
            }
        }
        c @ ("\\c" | "\\connect" | "\\conninfo" | "\\i" | "\\include" | "\\o" | "\\out" | "\\e"
        | "\\edit" | "\\g" | "\\gx" | "\\set" | "\\unset" | "\\echo" | "\\copy" | "\\h"
        | "\\help" | "\\pset" | "\\a" | "\\t" | "\\f" | "\\s" | "\\watch") => {
            MetaCommand::Unsupported {
                command: c.to_owned(),
                reason: "meridian sql does not implement it yet",
            }
        }
        other => MetaCommand::Invalid(format!("invalid command {other}\nTry \\? for help.")),
    }
}

/// The text `\?` prints.
pub const HELP: &str = "\
General
  \\q                     quit meridian sql
  \\?                     show this help

Formatting
  \\x [on|off]            toggle expanded output (one line per column)

Timing
  \\timing [on|off]       toggle the display of how long each statement took

Statements end with a semicolon and may span several lines. Describing objects
(\\d, \\dt, \\l, ...) is not supported yet.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str) -> Action {
        Action::Run(sql.to_owned())
    }

    #[test]
    fn statements_span_lines_and_the_prompt_follows() {
        let mut h = LineHandler::new();
        assert_eq!(h.prompt("defaultdb"), "defaultdb> ");
        assert!(h.feed("select 1,").is_empty());
        assert_eq!(h.prompt("defaultdb"), "        -> ");
        assert_eq!(
            h.feed("2; select 3; select"),
            [run("select 1,\n2"), run("select 3")]
        );
        assert_eq!(h.prompt("db"), " -> ");
        assert_eq!(h.feed("4;"), [run("select\n4")]);
        assert_eq!(h.prompt("defaultdb"), "defaultdb> ");
        assert!(h.feed("").is_empty());
        assert!(h.feed("-- a comment").is_empty());
        assert_eq!(h.prompt("defaultdb"), "defaultdb> ");
        assert_eq!(h.finish(), None);
    }

    #[test]
    fn a_literal_keeps_the_continuation_prompt_and_hides_backslashes() {
        let mut h = LineHandler::new();
        assert!(h.feed("select 'a").is_empty());
        assert!(h.feed("\\q").is_empty());
        assert_eq!(h.prompt("d"), "-> ");
        assert_eq!(h.feed("';"), [run("select 'a\n\\q\n'")]);
    }

    #[test]
    fn meta_commands_are_recognised_between_statements() {
        let mut h = LineHandler::new();
        assert_eq!(h.feed("  \\q  "), [Action::Meta(MetaCommand::Quit)]);
        assert!(h.feed("select 1").is_empty());
        assert_eq!(
            h.feed("\\timing"),
            [Action::Meta(MetaCommand::Timing(None))]
        );
        // The pending statement survives the meta-command.
        assert_eq!(h.finish(), Some(run("select 1")));
    }

    #[test]
    fn meta_commands_parse() {
        assert_eq!(parse_meta("\\quit"), MetaCommand::Quit);
        assert_eq!(parse_meta("\\?"), MetaCommand::Help);
        assert_eq!(parse_meta("\\timing on"), MetaCommand::Timing(Some(true)));
        assert_eq!(parse_meta("\\x OFF"), MetaCommand::Expanded(Some(false)));
        assert!(matches!(parse_meta("\\x maybe"), MetaCommand::Invalid(_)));
        for c in ["\\d", "\\dt", "\\d+ t", "\\l", "\\du", "\\c other"] {
            assert!(
                matches!(parse_meta(c), MetaCommand::Unsupported { .. }),
                "{c}"
            );
        }
        assert_eq!(
            parse_meta("\\nope"),
            MetaCommand::Invalid("invalid command \\nope\nTry \\? for help.".to_owned())
        );
    }
}
