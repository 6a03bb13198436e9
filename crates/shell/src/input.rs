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
    /// `\i FILE` (`\include`): run the statements and meta-commands of a file.
    Include(Arg),
    /// `\o [FILE]`: send query results to a file, or back to standard output.
    Output(Option<Arg>),
    /// `\set [NAME [VALUE ...]]`: list the variables, or set one (the values joined).
    Set(Vec<Arg>),
    /// `\unset NAME`: remove a variable.
    Unset(Arg),
    /// `\echo [TEXT ...]`: print the arguments, separated by spaces.
    Echo(Vec<Arg>),
    /// `\d`, `\dt`, `\di`, `\l`, `\dn` and `\d NAME`, answered with psql's catalog queries.
    Describe {
        /// Which listing.
        kind: DescribeKind,
        /// The `+` form (accepted; the listing is the same).
        verbose: bool,
        /// A name or pattern (`*` and `?` wildcards), if given.
        pattern: Option<Arg>,
    },
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

/// An argument of a meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The text, without quotes when `literal`.
    pub text: String,
    /// Written in single quotes: taken as it is, without variable interpolation.
    pub literal: bool,
}

impl Arg {
    /// An unquoted argument.
    pub fn plain(text: &str) -> Arg {
        Arg {
            text: text.to_owned(),
            literal: false,
        }
    }
}

/// The describe meta-commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescribeKind {
    /// `\d` without a name: tables, views, sequences; with a name: that relation's columns.
    Relations,
    /// `\dt`: tables.
    Tables,
    /// `\di`: indexes.
    Indexes,
    /// `\l`: databases.
    Databases,
    /// `\dn`: schemas.
    Schemas,
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

/// Splits meta-command arguments at whitespace; a single-quoted argument may hold spaces
/// (`''` is a quote inside it) and is marked literal. Returns `None` for an unterminated quote.
pub fn split_args(text: &str) -> Option<Vec<Arg>> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Some(args);
        };
        if first == '\'' {
            chars.next();
            let mut arg = String::new();
            loop {
                match chars.next()? {
                    '\'' if chars.next_if_eq(&'\'').is_some() => arg.push('\''),
                    '\'' => break,
                    c => arg.push(c),
                }
            }
            args.push(Arg {
                text: arg,
                literal: true,
            });
        } else {
            let mut arg = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.push(c);
            }
            args.push(Arg::plain(&arg));
        }
    }
}

/// Parses a meta-command line (starting with `\`).
pub fn parse_meta(line: &str) -> MetaCommand {
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let Some(args) = split_args(rest) else {
        return MetaCommand::Invalid(format!("{command}: unterminated quoted string"));
    };
    let arg = args.first().map(|a| a.text.as_str());
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
        "\\i" | "\\include" => match args.into_iter().next() {
            Some(file) => MetaCommand::Include(file),
            None => MetaCommand::Invalid(format!("{command}: missing required argument")),
        },
        "\\o" | "\\out" => MetaCommand::Output(args.into_iter().next()),
        "\\set" => MetaCommand::Set(args),
        "\\unset" => match args.into_iter().next() {
            Some(name) => MetaCommand::Unset(name),
            None => MetaCommand::Invalid("\\unset: missing required argument".to_owned()),
        },
        "\\echo" => MetaCommand::Echo(args),
        c if describe_kind(c).is_some() => {
            let (kind, verbose) = describe_kind(c).expect("checked");
            MetaCommand::Describe {
                kind,
                verbose,
                pattern: args.into_iter().next(),
            }
        }
        c if c.starts_with("\\d") || c.starts_with("\\l") || c == "\\z" => {
            MetaCommand::Unsupported {
                command: c.to_owned(),
                reason: "meridian sql implements \\d, \\dt, \\di, \\l and \\dn",
            }
        }
        c @ ("\\c" | "\\connect" | "\\conninfo" | "\\e" | "\\edit" | "\\g" | "\\gx" | "\\copy"
        | "\\h" | "\\help" | "\\pset" | "\\a" | "\\t" | "\\f" | "\\s" | "\\watch" | "\\ir"
        | "\\qecho") => MetaCommand::Unsupported {
            command: c.to_owned(),
            reason: "meridian sql does not implement it yet",
        },
        other => MetaCommand::Invalid(format!("invalid command {other}\nTry \\? for help.")),
    }
}

/// The describe command `command` names, and whether it is the `+` form.
fn describe_kind(command: &str) -> Option<(DescribeKind, bool)> {
    let (base, verbose) = match command.strip_suffix('+') {
        Some(base) => (base, true),
        None => (command, false),
    };
    let kind = match base {
        "\\d" => DescribeKind::Relations,
        "\\dt" => DescribeKind::Tables,
        "\\di" => DescribeKind::Indexes,
        "\\l" | "\\list" => DescribeKind::Databases,
        "\\dn" => DescribeKind::Schemas,
        _ => return None,
    };
    Some((kind, verbose))
}

/// The text `\?` prints.
pub const HELP: &str = "\
General
  \\q                     quit meridian sql
  \\?                     show this help

Input/Output
  \\i FILE                run the statements and meta-commands of FILE
  \\o [FILE]              send query results to FILE, or back to standard output
  \\echo [TEXT]           print TEXT

Variables
  \\set [NAME [VALUE]]    set a variable, or list them all; use as :NAME,
                         :'NAME' (a quoted literal) or :\"NAME\" (an identifier)
  \\unset NAME            remove a variable

Informational (psql's catalog queries; + is accepted)
  \\d [NAME]              list tables, views and sequences, or describe NAME
  \\dt [PATTERN]          list tables
  \\di [PATTERN]          list indexes
  \\dn [PATTERN]          list schemas
  \\l                     list databases

Formatting
  \\x [on|off]            toggle expanded output (one line per column)

Timing
  \\timing [on|off]       toggle the display of how long each statement took

Statements end with a semicolon and may span several lines. Tab completes SQL
keywords, table names and meta-commands.
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
    fn arguments_split_on_whitespace_outside_quotes() {
        let args = split_args("  a 'b c' 'it''s'  :x ").unwrap();
        let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(texts, ["a", "b c", "it's", ":x"]);
        assert_eq!(
            args.iter().map(|a| a.literal).collect::<Vec<_>>(),
            [false, true, true, false]
        );
        assert_eq!(split_args("").unwrap(), []);
        assert!(split_args("'open").is_none());
    }

    #[test]
    fn meta_commands_parse() {
        assert_eq!(parse_meta("\\quit"), MetaCommand::Quit);
        assert_eq!(parse_meta("\\?"), MetaCommand::Help);
        assert_eq!(parse_meta("\\timing on"), MetaCommand::Timing(Some(true)));
        assert_eq!(parse_meta("\\x OFF"), MetaCommand::Expanded(Some(false)));
        assert!(matches!(parse_meta("\\x maybe"), MetaCommand::Invalid(_)));
        for c in ["\\du", "\\c other", "\\df", "\\g"] {
            assert!(
                matches!(parse_meta(c), MetaCommand::Unsupported { .. }),
                "{c}"
            );
        }
        assert_eq!(
            parse_meta("\\d+ t"),
            MetaCommand::Describe {
                kind: DescribeKind::Relations,
                verbose: true,
                pattern: Some(Arg::plain("t")),
            }
        );
        assert_eq!(
            parse_meta("\\dt"),
            MetaCommand::Describe {
                kind: DescribeKind::Tables,
                verbose: false,
                pattern: None,
            }
        );
        assert!(matches!(
            parse_meta("\\l"),
            MetaCommand::Describe {
                kind: DescribeKind::Databases,
                ..
            }
        ));
        assert_eq!(
            parse_meta("\\i  script.sql "),
            MetaCommand::Include(Arg::plain("script.sql"))
        );
        assert!(matches!(parse_meta("\\i"), MetaCommand::Invalid(_)));
        assert_eq!(parse_meta("\\o"), MetaCommand::Output(None));
        assert_eq!(
            parse_meta("\\set x 'a  b' c"),
            MetaCommand::Set(vec![
                Arg::plain("x"),
                Arg {
                    text: "a  b".into(),
                    literal: true
                },
                Arg::plain("c"),
            ])
        );
        assert!(matches!(
            parse_meta("\\echo 'unterminated"),
            MetaCommand::Invalid(_)
        ));
        assert_eq!(
            parse_meta("\\nope"),
            MetaCommand::Invalid("invalid command \\nope\nTry \\? for help.".to_owned())
        );
    }
}
