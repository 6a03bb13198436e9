//! Session variables (`SET`, `SHOW`, `RESET`): the settings PostgreSQL clients send or ask for.
//!
//! Values are stored as text, per session. Most only echo back what was set: Meridian always
//! prints dates in ISO form, floats in shortest round-trip form whatever `extra_float_digits`
//! says, and has no time-zone-dependent types yet, so `TimeZone` changes nothing. `work_mem`
//! is only echoed too: the memory a statement's operators may hold is
//! `meridian.query_memory_limit` (256MB by default, PostgreSQL's units: `64kB`, `512MB`,
//! `2GB`; a bare number is kB), one limit for the whole statement rather than PostgreSQL's
//! per-operator budget (see `exec/memory.rs`). `meridian.vectorize` (`on` by default, or
//! `off`) chooses whether plans that can run on Arrow batches do (`exec/vector/`), so the two
//! paths can be compared. A transaction block's writes and the reads it
//! validates at commit are buffered at the gateway up to `meridian.txn_memory_limit` (1GB by
//! default, same units); past it a statement fails with 53200 (see `txn/buffer.rs`).

use std::collections::BTreeMap;

use crate::api::SqlError;

/// A known setting.
struct VarDef {
    /// The name as PostgreSQL spells it (`SHOW` labels its column with it).
    name: &'static str,
    default: &'static str,
    read_only: bool,
}

const fn var(name: &'static str, default: &'static str) -> VarDef {
    VarDef {
        name,
        default,
        read_only: false,
    }
}

const fn fixed(name: &'static str, default: &'static str) -> VarDef {
    VarDef {
        name,
        default,
        read_only: true,
    }
}

const VARS: &[VarDef] = &[
    var("application_name", ""),
    var("bytea_output", "hex"),
    var("client_encoding", "UTF8"),
    var("client_min_messages", "notice"),
    var("DateStyle", "ISO, MDY"),
    var("default_transaction_isolation", "serializable"),
    var("default_transaction_read_only", "off"),
    var("enable_seqscan", "on"),
    var("escape_string_warning", "on"),
    var("extra_float_digits", "1"),
    var("geqo", "on"),
    var("idle_in_transaction_session_timeout", "0"),
    var("IntervalStyle", "postgres"),
    var("jit", "off"),
    var("lock_timeout", "0"),
    var("meridian.query_memory_limit", "256MB"),
    var("meridian.vectorize", "on"),
    var("meridian.txn_memory_limit", "1GB"),
    var("max_parallel_workers_per_gather", "2"),
    var("row_security", "on"),
    var("search_path", "\"$user\", public"),
    var("standard_conforming_strings", "on"),
    var("statement_timeout", "0"),
    var("synchronous_commit", "on"),
    var("TimeZone", "UTC"),
    var("transaction_isolation", "serializable"),
    var("work_mem", "4MB"),
    fixed("integer_datetimes", "on"),
    fixed("is_superuser", "on"),
    fixed("lc_collate", "C"),
    fixed("lc_ctype", "C"),
    fixed("max_identifier_length", "63"),
    fixed("server_encoding", "UTF8"),
    fixed("server_version", "15.0"),
    fixed("server_version_num", "150000"),
    fixed("transaction_read_only", "off"),
];

fn def(name: &str) -> Option<&'static VarDef> {
    VARS.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// One session's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionVars {
    /// Values that differ from the defaults, by lower-case name.
    set: BTreeMap<String, String>,
}

impl SessionVars {
    /// `SET name = value`. Unknown names fail with 42704 unless they contain a dot (custom
    /// settings, as PostgreSQL allows); read-only ones with 55P02.
    pub(crate) fn set(&mut self, name: &str, value: String) -> Result<(), SqlError> {
        let key = name.to_ascii_lowercase();
        match def(&key) {
            Some(d) if d.read_only => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{key}\" cannot be changed"),
                ));
            }
            Some(_) => {}
            None if key.contains('.') => {}
            None => return Err(unrecognized(&key)),
        }
        let value = normalize(&key, value)?;
        self.set.insert(key, value);
        Ok(())
    }

    /// `RESET name` / `SET name TO DEFAULT`.
    pub(crate) fn reset(&mut self, name: &str) -> Result<(), SqlError> {
        let key = name.to_ascii_lowercase();
        match def(&key) {
            Some(d) if d.read_only => Err(SqlError::new(
                "55P02",
                format!("parameter \"{key}\" cannot be changed"),
            )),
            Some(_) => {
                self.set.remove(&key);
                Ok(())
            }
            None if key.contains('.') => {
                self.set.remove(&key);
                Ok(())
            }
            None => Err(unrecognized(&key)),
        }
    }

    /// `RESET ALL`.
    pub(crate) fn reset_all(&mut self) {
        self.set.clear();
    }

    /// `SHOW name`: the column label and the value.
    pub(crate) fn show(&self, name: &str, user: &str) -> Result<(String, String), SqlError> {
        let key = name.to_ascii_lowercase();
        if key == "session_authorization" {
            return Ok(("session_authorization".to_string(), user.to_string()));
        }
        if let Some(v) = self.set.get(&key) {
            let label = def(&key).map_or(key.clone(), |d| d.name.to_string());
            return Ok((label, v.clone()));
        }
        match def(&key) {
            Some(d) => Ok((d.name.to_string(), d.default.to_string())),
            None => Err(unrecognized(&key)),
        }
    }

    /// The bytes a statement's operators may hold (`meridian.query_memory_limit`).
    pub(crate) fn query_memory_limit(&self) -> usize {
        let value = self
            .set
            .get("meridian.query_memory_limit")
            .map_or(DEFAULT_QUERY_MEMORY, |v| {
                parse_memory(v).unwrap_or(DEFAULT_QUERY_MEMORY)
            });
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    /// Whether plans run on Arrow batches where they can (`meridian.vectorize`).
    pub(crate) fn vectorize(&self) -> bool {
        self.set.get("meridian.vectorize").is_none_or(|v| v == "on")
    }

    /// The bytes a transaction block may buffer at the gateway, its writes and the reads it
    /// validates at commit (`meridian.txn_memory_limit`).
    pub(crate) fn txn_memory_limit(&self) -> usize {
        let value = self
            .set
            .get("meridian.txn_memory_limit")
            .map_or(DEFAULT_TXN_MEMORY, |v| {
                parse_memory(v).unwrap_or(DEFAULT_TXN_MEMORY)
            });
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    /// `SHOW ALL`: (name, setting) for every known setting, in name order.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = VARS
            .iter()
            .map(|d| {
                (
                    d.name.to_string(),
                    self.set
                        .get(&d.name.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_else(|| d.default.to_string()),
                )
            })
            .collect();
        out.extend(
            self.set
                .iter()
                .filter(|(k, _)| def(k).is_none())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out.sort_by_key(|(k, _)| k.to_ascii_lowercase());
        out
    }
}

/// The default of `meridian.query_memory_limit`: 256MB.
const DEFAULT_QUERY_MEMORY: u64 = 256 << 20;
/// The default of `meridian.txn_memory_limit`: 1GB.
const DEFAULT_TXN_MEMORY: u64 = 1 << 30;

/// The units of memory settings, as PostgreSQL spells them, largest first.
const MEMORY_UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("kB", 1 << 10),
    ("B", 1),
];

/// The range `meridian.query_memory_limit` accepts, in bytes: 64kB (PostgreSQL's least
/// `work_mem`) to 1TB.
const QUERY_MEMORY_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 40);

/// A memory size as PostgreSQL's memory settings read it: a whole number and a unit (`B`,
/// `kB`, `MB`, `GB`, `TB`; letter case is not checked), kB when there is none.
fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim();
    let scale = if unit.is_empty() {
        1 << 10
    } else {
        MEMORY_UNITS
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(unit))?
            .1
    };
    number.checked_mul(scale)
}

/// A number of bytes in the largest unit that divides it (`268435456` is `256MB`).
pub(crate) fn format_memory(bytes: usize) -> String {
    let bytes = bytes as u64;
    let (unit, scale) = MEMORY_UNITS
        .iter()
        .find(|(_, s)| bytes.is_multiple_of(*s) && bytes >= *s)
        .copied()
        .unwrap_or(("B", 1));
    format!("{}{unit}", bytes / scale)
}

fn unrecognized(name: &str) -> SqlError {
    SqlError::new(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

/// Checks and canonicalizes the values Meridian interprets.
fn normalize(key: &str, value: String) -> Result<String, SqlError> {
    let invalid = |hint: &str| {
        SqlError::new(
            "22023",
            format!("invalid value for parameter \"{key}\": \"{value}\""),
        )
        .with_hint(hint.to_string())
    };
    match key {
        "client_encoding" => {
            let v = value.to_ascii_uppercase().replace(['-', '_'], "");
            if v == "UTF8" || v == "UNICODE" {
                Ok("UTF8".to_string())
            } else {
                Err(SqlError::unsupported(format!(
                    "client encoding \"{value}\" is not supported; only UTF8 is"
                )))
            }
        }
        "datestyle" => {
            let v = value.to_ascii_uppercase();
            if !v.split(',').any(|p| p.trim() == "ISO") {
                return Err(SqlError::unsupported(format!(
                    "DateStyle \"{value}\" is not supported; only ISO is"
                )));
            }
            let order = ["MDY", "DMY", "YMD"]
                .into_iter()
                .find(|o| v.contains(o))
                .unwrap_or("MDY");
            Ok(format!("ISO, {order}"))
        }
        "extra_float_digits" => match value.trim().parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid("Value must be an integer between -15 and 3.")),
        },
        "meridian.query_memory_limit" | "meridian.txn_memory_limit" => match parse_memory(&value) {
            Some(n) if QUERY_MEMORY_RANGE.contains(&n) => {
                Ok(format_memory(usize::try_from(n).unwrap_or(usize::MAX)))
            }
            Some(_) => Err(invalid("The limit must be between 64kB and 1TB.")),
            None => Err(invalid(
                "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".",
            )),
        },
        "meridian.vectorize" => match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok("on".to_string()),
            "off" | "false" | "no" | "0" => Ok("off".to_string()),
            _ => Err(SqlError::new(
                "22023",
                format!("parameter \"{key}\" requires a Boolean value"),
            )),
        },
        "transaction_isolation" | "default_transaction_isolation" => {
            // Every transaction is serializable; weaker requests are upgraded, as in CockroachDB.
            Ok("serializable".to_string())
        }
        _ => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorize_is_a_boolean_setting() {
        let mut v = SessionVars::default();
        assert!(v.vectorize());
        v.set("meridian.vectorize", "OFF".into()).unwrap();
        assert!(!v.vectorize());
        assert_eq!(v.show("meridian.vectorize", "u").unwrap().1, "off");
        assert_eq!(
            v.set("meridian.vectorize", "sometimes".into())
                .unwrap_err()
                .code,
            "22023"
        );
        v.set("meridian.vectorize", "true".into()).unwrap();
        assert!(v.vectorize());
    }

    #[test]
    fn set_show_reset() {
        let mut v = SessionVars::default();
        assert_eq!(
            v.show("datestyle", "u").unwrap(),
            ("DateStyle".into(), "ISO, MDY".into())
        );
        v.set("application_name", "psql".into()).unwrap();
        assert_eq!(v.show("APPLICATION_NAME", "u").unwrap().1, "psql");
        v.set("DateStyle", "ISO".into()).unwrap();
        assert_eq!(v.show("DateStyle", "u").unwrap().1, "ISO, MDY");
        v.reset("application_name").unwrap();
        assert_eq!(v.show("application_name", "u").unwrap().1, "");
        v.set("myapp.flag", "x".into()).unwrap();
        assert_eq!(v.show("myapp.flag", "u").unwrap().1, "x");
        v.reset_all();
        assert_eq!(v.show("myapp.flag", "u").unwrap_err().code, "42704");
        assert_eq!(v.show("session_authorization", "alice").unwrap().1, "alice");
    }

    #[test]
    fn memory_limit_takes_postgresql_units() {
        let mut v = SessionVars::default();
        assert_eq!(v.query_memory_limit(), 256 << 20);
        assert_eq!(
            v.show("meridian.query_memory_limit", "u").unwrap(),
            ("meridian.query_memory_limit".into(), "256MB".into())
        );
        v.set("meridian.query_memory_limit", "1024 kB".into())
            .unwrap();
        assert_eq!(v.show("meridian.query_memory_limit", "u").unwrap().1, "1MB");
        assert_eq!(v.query_memory_limit(), 1 << 20);
        v.set("meridian.query_memory_limit", "65536".into())
            .unwrap();
        assert_eq!(v.query_memory_limit(), 64 << 20);
        v.set("Meridian.Query_Memory_Limit", "100000B".into())
            .unwrap();
        assert_eq!(
            v.show("meridian.query_memory_limit", "u").unwrap().1,
            "100000B"
        );
        for bad in ["1kB", "2TB", "12 parsecs", "", "-5MB"] {
            let e = v
                .set("meridian.query_memory_limit", bad.into())
                .unwrap_err();
            assert_eq!(e.code, "22023", "{bad}");
        }
        v.reset("meridian.query_memory_limit").unwrap();
        assert_eq!(v.query_memory_limit(), 256 << 20);
    }

    #[test]
    fn invalid_settings() {
        let mut v = SessionVars::default();
        assert_eq!(
            v.set("no_such_thing", "1".into()).unwrap_err().code,
            "42704"
        );
        assert_eq!(v.show("no_such_thing", "u").unwrap_err().code, "42704");
        assert_eq!(
            v.set("server_version", "16".into()).unwrap_err().code,
            "55P02"
        );
        assert_eq!(
            v.set("extra_float_digits", "9".into()).unwrap_err().code,
            "22023"
        );
        assert_eq!(
            v.set("client_encoding", "LATIN1".into()).unwrap_err().code,
            "0A000"
        );
        v.set("client_encoding", "utf-8".into()).unwrap();
        assert_eq!(v.show("client_encoding", "u").unwrap().1, "UTF8");
        assert!(
            v.all()
                .iter()
                .any(|(k, val)| k == "client_encoding" && val == "UTF8")
        );
    }
}
