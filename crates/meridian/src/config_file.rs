//! `meridian start --config FILE`: a TOML file equivalent to the flags of `meridian start`.
//!
//! Every key is the long name of a flag (`data-dir = "/var/lib/meridian"`, `join = ["h:p",
//! ...]`, `insecure = true`, `range-max-bytes = 67108864`). The file is turned into flags that
//! come before the ones on the command line, so a flag given there wins over the file. Unknown
//! keys and values of the wrong kind are errors naming the key.

use anyhow::{Context, bail};
use clap::{ArgAction, Command};

/// The arguments with any `--config FILE` of `start` expanded: the file's flags are inserted
/// right after `start`, before the command line's own flags.
pub fn expand(args: Vec<String>, start: &Command) -> anyhow::Result<Vec<String>> {
    let Some(pos) = args.iter().position(|a| a == "start") else {
        return Ok(args);
    };
    let mut path = None;
    let mut i = pos + 1;
    while i < args.len() {
        if args[i] == "--config" {
            path = args.get(i + 1).cloned();
            break;
        }
        if let Some(p) = args[i].strip_prefix("--config=") {
            path = Some(p.to_string());
            break;
        }
        i += 1;
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the configuration file {path}"))?;
    let flags = flags_from_toml(&text, start).with_context(|| format!("in {path}"))?;
    let mut out = args[..=pos].to_vec();
    out.extend(flags);
    out.extend_from_slice(&args[pos + 1..]);
    Ok(out)
}

/// The flags a TOML document stands for, checked against `start`'s arguments.
pub fn flags_from_toml(text: &str, start: &Command) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let Some(arg) = start
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            bail!("unknown setting {key:?} (settings are the long flags of `meridian start`)");
        };
        if key == "config" {
            bail!("a configuration file cannot name another one");
        }
        let flag = format!("--{key}");
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        match value {
            toml::Value::Boolean(b) if switch => {
                if *b {
                    flags.push(flag);
                }
            }
            toml::Value::Boolean(b) => flags.push(format!("{flag}={b}")),
            _ if switch => bail!("{key} is true or false"),
            toml::Value::String(s) => flags.push(format!("{flag}={s}")),
            toml::Value::Integer(n) => flags.push(format!("{flag}={n}")),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s.clone()),
                        _ => bail!("{key} is a list of strings"),
                    }
                }
                flags.push(format!("{flag}={}", parts.join(",")));
            }
            _ => bail!("{key} has a value of an unsupported kind"),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Command {
        use clap::CommandFactory;
        crate::Cli::command()
            .find_subcommand("start")
            .expect("start subcommand")
            .clone()
    }

    #[test]
    fn keys_become_flags_before_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            r#"
insecure = true
single-node = false
data-dir = "/tmp/n1"
join = ["127.0.0.1:26258", "127.0.0.2:26258"]
range-max-bytes = 1048576
range-split-qps = 500
raft-quiesce = false
request-timeout = 30
"#,
        )
        .unwrap();
        let args: Vec<String> = [
            "meridian",
            "start",
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            "/tmp/override",
        ]
        .map(String::from)
        .to_vec();
        let out = expand(args, &start()).unwrap();
        assert_eq!(&out[..2], ["meridian", "start"]);
        assert!(out.contains(&"--insecure".to_string()));
        assert!(!out.iter().any(|a| a == "--single-node"));
        assert!(out.contains(&"--join=127.0.0.1:26258,127.0.0.2:26258".to_string()));
        assert!(out.contains(&"--raft-quiesce=false".to_string()));
        assert!(out.contains(&"--range-max-bytes=1048576".to_string()));
        assert!(out.contains(&"--range-split-qps=500".to_string()));
        // The command line's own flag comes last, so it wins.
        let file = out.iter().position(|a| a == "--data-dir=/tmp/n1").unwrap();
        let cli = out.iter().position(|a| a == "/tmp/override").unwrap();
        assert!(file < cli);
        // And clap accepts the result, the later value winning.
        use clap::Parser;
        let parsed = crate::Cli::try_parse_from(&out).unwrap();
        let crate::Command::Start(a) = parsed.command else {
            panic!("not start")
        };
        assert_eq!(a.data_dir, std::path::PathBuf::from("/tmp/override"));
        assert!(a.insecure && !a.raft_quiesce && a.range_max_bytes == 1 << 20);
        assert_eq!(a.request_timeout, 30);
        assert_eq!(a.range_split_qps, 500);
    }

    /// `meridian start --insecure --data-dir /tmp/n1` and `flag=value`, parsed.
    fn parse_start(flag: &str, value: &str) -> Result<crate::Cli, clap::Error> {
        use clap::Parser;
        let flag = format!("{flag}={value}");
        crate::Cli::try_parse_from([
            "meridian",
            "start",
            "--insecure",
            "--data-dir",
            "/tmp/n1",
            &flag,
        ])
    }

    /// The arguments of a parsed `meridian start`.
    fn start_args(cli: crate::Cli) -> crate::StartArgs {
        let crate::Command::Start(a) = cli.command else {
            panic!("not start")
        };
        a
    }

    #[test]
    fn load_split_thresholds_out_of_range_are_refused_with_the_reason() {
        let parse = |v: &str| parse_start("--range-split-qps", v);
        for (bad, reason) in [
            ("-1", "not a whole number"),
            ("fast", "not a whole number"),
            ("5", "too low"),
            ("2000000", "more than a tablet ever serves"),
        ] {
            let err = parse(bad)
                .err()
                .expect("a bad threshold is refused")
                .to_string();
            assert!(
                err.contains("--range-split-qps") && err.contains(reason),
                "{bad}: {err}"
            );
        }
        for (good, qps) in [("0", 0), ("10", 10), ("2500", 2500)] {
            assert_eq!(start_args(parse(good).unwrap()).range_split_qps, qps);
        }
        // Off by default (see ARCHITECTURE.md, splits by load).
        use clap::Parser;
        let cli =
            crate::Cli::try_parse_from(["meridian", "start", "--insecure", "--data-dir", "x"]);
        assert_eq!(start_args(cli.unwrap()).range_split_qps, 0);
        // From a file, the same check names the setting.
        let flags = flags_from_toml("range-split-qps = 3", &start()).unwrap();
        let mut args = vec![
            "meridian".to_owned(),
            "start".to_owned(),
            "--insecure".to_owned(),
        ];
        args.extend(flags);
        args.extend(["--data-dir".to_owned(), "x".to_owned()]);
        let err = crate::Cli::try_parse_from(&args).err().unwrap().to_string();
        assert!(
            err.contains("--range-split-qps") && err.contains("too low"),
            "{err}"
        );
    }

    #[test]
    fn leader_follow_thresholds_are_checked_and_on_by_default() {
        let parse = |v: &str| parse_start("--leader-follow-qps", v);
        for (bad, reason) in [("3", "too low"), ("x", "not a whole number")] {
            let err = parse(bad).err().expect("refused").to_string();
            assert!(
                err.contains("--leader-follow-qps") && err.contains(reason),
                "{bad}: {err}"
            );
        }
        assert_eq!(start_args(parse("0").unwrap()).leader_follow_qps, 0);
        assert_eq!(start_args(parse("50").unwrap()).leader_follow_qps, 50);
        use clap::Parser;
        let cli =
            crate::Cli::try_parse_from(["meridian", "start", "--insecure", "--data-dir", "x"]);
        assert_eq!(start_args(cli.unwrap()).leader_follow_qps, 10);
    }

    #[test]
    fn request_timeouts_out_of_range_are_refused() {
        let parse = |v: &str| parse_start("--request-timeout", v);
        for bad in ["0", "3601", "ten"] {
            let err = parse(bad)
                .err()
                .expect("an out-of-range timeout is refused");
            assert!(
                err.to_string().contains("--request-timeout"),
                "{bad}: {err}"
            );
        }
        assert_eq!(start_args(parse("60").unwrap()).request_timeout, 60);
    }

    #[test]
    fn bad_files_are_errors_naming_the_key() {
        let err = |text: &str| flags_from_toml(text, &start()).unwrap_err().to_string();
        assert!(err("data_dir = \"x\"").contains("unknown setting \"data_dir\""));
        assert!(err("insecure = \"yes\"").contains("insecure is true or false"));
        assert!(err("join = [1, 2]").contains("join is a list of strings"));
        assert!(err("config = \"other.toml\"").contains("cannot name another"));
        assert!(err("= oops").contains("not valid TOML"));
        let missing = expand(
            ["meridian", "start", "--config", "/nonexistent/x.toml"]
                .map(String::from)
                .to_vec(),
            &start(),
        )
        .unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read the configuration file"));
    }
}
