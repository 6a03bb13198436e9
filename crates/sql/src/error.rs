//! Errors of the SQL layer.
//!
//! Two kinds of failure travel through the crate:
//!
//! * user errors, already classified with a PostgreSQL SQLSTATE: [`SqlError`], built with the
//!   constructors below (one per SQLSTATE the crate raises);
//! * failures of the layers below (the tablet's [`meridian_tablet::Error`]), stored bytes that
//!   do not decode, and broken invariants.
//!
//! [`Error`] carries both; [`Error::into_sql`] is the one place where a tablet error becomes a
//! client-visible [`SqlError`].
//!
//! SQLSTATEs chosen for the tablet layer (PostgreSQL has no exact equivalents):
//!
//! | tablet error                         | SQLSTATE | why                                       |
//! |--------------------------------------|----------|-------------------------------------------|
//! | `ConditionFailed` on a primary key   | `23505`  | unique_violation, as PostgreSQL           |
//! | `ConditionFailed` on a catalog name  | `42P07`  | duplicate_table (a concurrent CREATE won) |
//! | `WriteConflict` (retries exhausted)  | `40001`  | serialization_failure: clients retry it   |
//! | `TxnAborted` (retries exhausted)     | `40001`  | serialization_failure: a 2PC was aborted  |
//! | `NotLeader` (retries exhausted)      | `58000`  | system_error: the tablet moved            |
//! | `RangeMismatch` (retries exhausted)  | `58000`  | system_error: the range kept moving       |
//! | `RangeMerging` (retries exhausted)   | `58000`  | system_error: the range was being merged  |
//! | `Refused` (a split)                  | `58000`  | system_error: nothing was changed         |
//! | `Unavailable` while reading          | `58000`  | system_error: nothing was changed         |
//! | `Unavailable` while writing          | `40003`  | statement_completion_unknown: the write may or may not have committed |
//! | `Clock`                              | `XX000`  | internal_error: the node fenced its clock |
//! | `Storage`                            | `58030`  | io_error                                  |
//! | anything else                        | `XX000`  | internal_error                            |

use std::sync::Arc;

use meridian_tablet::ConditionFailure;

use crate::api::SqlError;
use crate::catalog::{self, TableDesc};
use crate::keys;

/// Result alias of the SQL layer.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a statement fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A user error with its SQLSTATE.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A read from the tablet layer failed.
    #[error("read failed: {0}")]
    Read(#[source] meridian_tablet::Error),
    /// A write to the tablet layer failed. `table` is the table the statement wrote, used to
    /// report which key a failed condition was about.
    #[error("write failed: {source}")]
    Write {
        /// The tablet error.
        #[source]
        source: meridian_tablet::Error,
        /// The table the write targeted, if it was a data write.
        table: Option<Arc<TableDesc>>,
    },
    /// Stored bytes did not decode as the descriptor says they should.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A broken invariant of this crate: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// True when re-running the whole statement from a fresh snapshot may succeed and cannot
    /// apply its effects twice.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            // The tablet client already rides out elections until its own deadline, so an
            // `Unavailable` read is reported rather than retried for another round.
            Error::Read(e) => matches!(
                e,
                meridian_tablet::Error::NotLeader { .. }
                    | meridian_tablet::Error::RangeMerging { .. }
            ),
            Error::Write { source, table } => match source {
                meridian_tablet::Error::WriteConflict { .. }
                | meridian_tablet::Error::TxnAborted { .. }
                | meridian_tablet::Error::NotLeader { .. }
                | meridian_tablet::Error::RangeMerging { .. } => true,
                // A generated rowid collided with another session's: a retry draws new ids.
                meridian_tablet::Error::ConditionFailed { key, kind } => {
                    *kind == ConditionFailure::Exists
                        && table
                            .as_deref()
                            .is_some_and(|t| t.has_hidden_key() && keys::is_row_key_of(t, key))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The client-visible error. This is the only place where errors of the tablet layer are
    /// translated into SQLSTATEs (see the module docs for the table).
    pub(crate) fn into_sql(self) -> SqlError {
        use meridian_tablet::Error as T;
        match self {
            Error::Sql(e) => e,
            Error::Corrupt(what) => {
                SqlError::new("XX001", format!("stored data is corrupt: {what}"))
            }
            Error::Internal(what) => SqlError::internal(what),
            Error::Read(source) => tablet_error(source, false),
            Error::Write { source, table } => match source {
                T::ConditionFailed { key, kind } => condition_failed(&key, kind, table.as_deref()),
                other => tablet_error(other, true),
            },
        }
    }
}

fn tablet_error(source: meridian_tablet::Error, write: bool) -> SqlError {
    use meridian_tablet::Error as T;
    match source {
        T::WriteConflict { .. } => SqlError::new(
            "40001",
            "could not serialize access due to concurrent update",
        )
        .with_hint("Retry the statement."),
        T::TxnAborted { reason } => {
            SqlError::new("40001", format!("could not serialize access: {reason}"))
                .with_hint("Retry the statement.")
        }
        T::RangeMismatch { tablet, .. } => SqlError::new(
            "58000",
            format!("tablet {tablet} moved while the statement ran; it was not executed"),
        )
        .with_hint("Retry the statement."),
        T::RangeMerging { tablet } => SqlError::new(
            "58000",
            format!(
                "tablet {tablet} was being merged with its neighbour while the statement ran; \
                 it was not executed"
            ),
        )
        .with_hint("Retry the statement."),
        T::Refused { tablet, reason } => {
            SqlError::new("58000", format!("tablet {tablet} refused: {reason}"))
                .with_hint("Retry the statement.")
        }
        T::NotLeader { tablet, .. } | T::ReplicasChanged { tablet, .. } => SqlError::new(
            "58000",
            format!("tablet {tablet} is changing leaders; the statement was not executed"),
        )
        .with_hint("Retry the statement."),
        T::Unavailable { tablet, reason } if write => SqlError::new(
            "40003",
            format!(
                "tablet {tablet} unavailable ({reason}); the statement may or may not have committed"
            ),
        ),
        T::Unavailable { tablet, reason } => {
            SqlError::new("58000", format!("tablet {tablet} unavailable: {reason}"))
                .with_hint("Retry the statement.")
        }
        T::TxnTooLarge { bytes, limit } => SqlError::new(
            "53200",
            format!(
                "out of memory: the transaction would hold {bytes} bytes of buffered writes and \
                 reads, over meridian.txn_memory_limit ({limit} bytes)"
            ),
        )
        .with_hint(
            "Commit in smaller transactions, or raise the limit (SET meridian.txn_memory_limit = '4GB').",
        ),
        T::Clock(e) => SqlError::new("XX000", format!("this node cannot assign timestamps: {e}")),
        T::Storage(e) => SqlError::new("58030", format!("storage error: {e}")),
        T::ConditionFailed { key, kind } => condition_failed(&key, kind, None),
        T::Ambiguous { tablet } => SqlError::new(
            "40003",
            format!(
                "the result of the write to tablet {tablet} is unknown: it may or may not have \
                 committed"
            ),
        )
        .with_hint("Check whether the change is there before repeating it."),
        other => SqlError::internal(other.to_string()),
    }
}

/// A failed write precondition: a duplicate primary key, or a catalog name a concurrent DDL
/// statement took first.
fn condition_failed(key: &[u8], kind: ConditionFailure, table: Option<&TableDesc>) -> SqlError {
    if kind == ConditionFailure::Exists {
        if let Some(name) = catalog::table_name_of_key(key) {
            return SqlError::duplicate_table(&name);
        }
        if let Some(name) = key
            .strip_prefix(catalog::INDEXES_PREFIX)
            .or_else(|| key.strip_prefix(catalog::SEQUENCES_PREFIX))
        {
            return SqlError::duplicate_table(&String::from_utf8_lossy(name));
        }
        if let Some(t) = table
            && keys::is_row_key_of(t, key)
        {
            return match keys::decode_pk(t, key) {
                Ok(values) => SqlError::unique_violation(t, &values),
                Err(e) => SqlError::internal(format!("undecodable duplicate key: {e}")),
            };
        }
        if let Some(t) = table
            && let Some((ix, values)) = keys::index_of_key(t, key)
        {
            return SqlError::unique_index_violation(t, ix, &values);
        }
    }
    SqlError::internal(format!(
        "unexpected failed condition on key {key:?}: {kind}"
    ))
}

impl From<meridian_storage::Error> for Error {
    fn from(e: meridian_storage::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl From<Error> for SqlError {
    fn from(e: Error) -> Self {
        e.into_sql()
    }
}

/// Constructors, one per SQLSTATE (or family) the SQL layer raises.
impl SqlError {
    /// An error with `code` and `message`, no detail, hint or position.
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> SqlError {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> SqlError {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the 1-based character position in the statement text, unless one is set already
    /// (the innermost, most precise position wins).
    pub fn with_position(mut self, position: Option<u32>) -> SqlError {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    /// 42601 syntax_error.
    pub(crate) fn syntax(message: impl Into<String>) -> SqlError {
        SqlError::new("42601", message)
    }

    /// 0A000 feature_not_supported.
    pub(crate) fn unsupported(what: impl Into<String>) -> SqlError {
        SqlError::new("0A000", what)
    }

    /// XX000 internal_error: a bug in Meridian.
    pub(crate) fn internal(what: impl Into<String>) -> SqlError {
        SqlError::new("XX000", format!("internal error: {}", what.into()))
    }

    /// 42P01 undefined_table.
    pub(crate) fn undefined_table(name: &str) -> SqlError {
        SqlError::new("42P01", format!("relation \"{name}\" does not exist"))
    }

    /// 42P07 duplicate_table.
    pub(crate) fn duplicate_table(name: &str) -> SqlError {
        SqlError::new("42P07", format!("relation \"{name}\" already exists"))
    }

    /// 42703 undefined_column.
    pub(crate) fn undefined_column(name: &str) -> SqlError {
        SqlError::new("42703", format!("column \"{name}\" does not exist"))
    }

    /// 42704 undefined_object, for an unknown type name.
    pub(crate) fn undefined_type(name: &str) -> SqlError {
        SqlError::new("42704", format!("type \"{name}\" does not exist"))
    }

    /// 42883 undefined_function, for an operator without a matching signature.
    pub(crate) fn undefined_operator(op: &str, left: Option<&str>, right: &str) -> SqlError {
        let sig = match left {
            Some(l) => format!("{l} {op} {right}"),
            None => format!("{op} {right}"),
        };
        SqlError::new("42883", format!("operator does not exist: {sig}")).with_hint(
            "No operator matches the given name and argument types. You might need to add explicit type casts.",
        )
    }

    /// 42883 undefined_function.
    pub(crate) fn undefined_function(name: &str, arg_types: &[&str]) -> SqlError {
        SqlError::new(
            "42883",
            format!("function {name}({}) does not exist", arg_types.join(", ")),
        )
        .with_hint(
            "No function matches the given name and argument types. You might need to add explicit type casts.",
        )
    }

    /// 42804 datatype_mismatch.
    pub(crate) fn datatype_mismatch(message: impl Into<String>) -> SqlError {
        SqlError::new("42804", message)
    }

    /// 22P02 invalid_text_representation.
    pub(crate) fn invalid_text(type_name: &str, input: &str) -> SqlError {
        SqlError::new(
            "22P02",
            format!("invalid input syntax for type {type_name}: \"{input}\""),
        )
    }

    /// 22003 numeric_value_out_of_range.
    pub(crate) fn out_of_range(message: impl Into<String>) -> SqlError {
        SqlError::new("22003", message)
    }

    /// 22012 division_by_zero.
    pub(crate) fn division_by_zero() -> SqlError {
        SqlError::new("22012", "division by zero")
    }

    /// 23502 not_null_violation, with PostgreSQL's "Failing row contains" detail.
    pub(crate) fn not_null_violation(column: &str, table: &str, row_text: &str) -> SqlError {
        SqlError::new(
            "23502",
            format!("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"),
        )
        .with_detail(format!("Failing row contains {row_text}."))
    }

    /// 23505 unique_violation on the unique index `ix` of `table`, whose key columns hold
    /// `values`.
    pub(crate) fn unique_index_violation(
        table: &TableDesc,
        ix: &crate::catalog::IndexDesc,
        values: &[crate::Datum],
    ) -> SqlError {
        let cols: Vec<&str> = ix
            .columns
            .iter()
            .map(|(c, _)| table.columns[*c].name.as_str())
            .collect();
        let vals: Vec<String> = values
            .iter()
            .map(|d| d.to_pg_text().unwrap_or_else(|| "null".to_string()))
            .collect();
        SqlError::new(
            "23505",
            format!(
                "duplicate key value violates unique constraint \"{}\"",
                ix.name
            ),
        )
        .with_detail(format!(
            "Key ({})=({}) already exists.",
            cols.join(", "),
            vals.join(", ")
        ))
    }

    /// 23514 check_violation, with PostgreSQL's "Failing row contains" detail.
    pub(crate) fn check_violation(table: &str, constraint: &str, row_text: &str) -> SqlError {
        SqlError::new(
            "23514",
            format!("new row for relation \"{table}\" violates check constraint \"{constraint}\""),
        )
        .with_detail(format!("Failing row contains {row_text}."))
    }

    /// 23505 unique_violation on the primary key of `table`, whose key columns hold `values`.
    pub(crate) fn unique_violation(table: &TableDesc, values: &[crate::Datum]) -> SqlError {
        let cols: Vec<&str> = table
            .pk
            .iter()
            .map(|&i| table.columns[i].name.as_str())
            .collect();
        let vals: Vec<String> = values
            .iter()
            .map(|d| d.to_pg_text().unwrap_or_else(|| "null".to_string()))
            .collect();
        SqlError::new(
            "23505",
            format!(
                "duplicate key value violates unique constraint \"{}\"",
                table.pkey_name()
            ),
        )
        .with_detail(format!(
            "Key ({})=({}) already exists.",
            cols.join(", "),
            vals.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_conflict_maps_to_serialization_failure() {
        let e = Error::Write {
            source: meridian_tablet::Error::WriteConflict {
                read_ts: meridian_clock::Timestamp::from_nanos(5),
            },
            table: None,
        };
        assert!(e.is_retryable());
        assert_eq!(e.into_sql().code, "40001");
    }

    #[test]
    fn unavailable_is_reported_not_retried() {
        let unavailable = || meridian_tablet::Error::Unavailable {
            tablet: 1,
            reason: "no quorum".into(),
        };
        let w = Error::Write {
            source: unavailable(),
            table: None,
        };
        assert!(!w.is_retryable(), "an ambiguous write must not be replayed");
        assert_eq!(w.into_sql().code, "40003");
        let r = Error::Read(unavailable());
        assert!(!r.is_retryable());
        assert_eq!(r.into_sql().code, "58000");
        let moved = Error::Read(meridian_tablet::Error::NotLeader {
            tablet: 1,
            replica: 2,
            leader: Some(3),
        });
        assert!(moved.is_retryable());
        // Regression: an ambiguous write was reported as an internal error (XX000).
        let ambiguous = Error::Write {
            source: meridian_tablet::Error::Ambiguous { tablet: 1 },
            table: None,
        };
        assert!(!ambiguous.is_retryable());
        assert_eq!(ambiguous.into_sql().code, "40003");
    }

    #[test]
    fn failed_catalog_condition_is_duplicate_table() {
        let key = catalog::table_key("accounts");
        let e = Error::Write {
            source: meridian_tablet::Error::ConditionFailed {
                key,
                kind: ConditionFailure::Exists,
            },
            table: None,
        };
        let s = e.into_sql();
        assert_eq!(s.code, "42P07");
        assert_eq!(s.message, "relation \"accounts\" already exists");
    }

    #[test]
    fn display_carries_sqlstate() {
        let e = SqlError::division_by_zero();
        assert_eq!(e.to_string(), "ERROR: division by zero (SQLSTATE 22012)");
    }
}
