//! Transaction blocks of a session: `BEGIN` / `START TRANSACTION`, `COMMIT`, `ROLLBACK`,
//! `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`, with PostgreSQL's states and
//! errors (a failed statement aborts the block until `ROLLBACK`, 25P02 in between).
//!
//! `buffer.rs` holds the mechanism: the snapshot, the write buffer and validated commit (read
//! it first for why this is serializable).

mod buffer;

use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;
use sqlparser::ast::{Ident, Statement, TransactionAccessMode, TransactionMode};

use buffer::Mark;
pub(crate) use buffer::{Recording, TxnKv};

use crate::api::{SqlError, StatementResult};
use crate::catalog::TableDesc;
use crate::error::Error;

/// Where a session is with respect to transaction blocks (what ReadyForQuery reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// No transaction block: every statement commits on its own.
    Idle,
    /// Inside a transaction block.
    InBlock,
    /// Inside a transaction block that failed: only `ROLLBACK` (or `ROLLBACK TO SAVEPOINT`)
    /// is accepted.
    Failed,
}

/// An open transaction block.
pub(crate) struct Txn {
    pub kv: Arc<TxnKv>,
    pub failed: bool,
    pub read_only: bool,
    savepoints: Vec<(String, Mark)>,
    /// Rows the block's statements wrote, per table (counted toward statistics at COMMIT).
    pub written: Vec<(Arc<TableDesc>, u64)>,
}

impl Txn {
    /// A read-only block whose snapshot is the past timestamp `ts` (`AS OF SYSTEM TIME`).
    pub(crate) fn at(base: Arc<dyn KvClient>, ts: Timestamp) -> Txn {
        Txn {
            kv: Arc::new(TxnKv::at(base, ts)),
            failed: false,
            read_only: true,
            savepoints: Vec::new(),
            written: Vec::new(),
        }
    }

    /// A new block; `priority` is the age it claims for row locks (see [`Block::retry_age`]).
    fn new(base: Arc<dyn KvClient>, read_only: bool, priority: Option<Timestamp>) -> Txn {
        Txn {
            kv: Arc::new(TxnKv::new(base, priority)),
            failed: false,
            read_only,
            savepoints: Vec::new(),
            written: Vec::new(),
        }
    }

    /// The index of the newest savepoint called `name` (names compare as identifiers do).
    fn find(&self, name: &Ident) -> Result<usize, SqlError> {
        let wanted = crate::plan::ident(name);
        self.savepoints
            .iter()
            .rposition(|(n, _)| *n == wanted)
            .ok_or_else(|| SqlError::new("3B001", format!("savepoint \"{wanted}\" does not exist")))
    }
}

/// 25P02: what every statement but ROLLBACK gets in a failed transaction block.
pub(crate) fn aborted() -> SqlError {
    SqlError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// 25P01 for savepoint commands outside a transaction block.
fn no_block(what: &str) -> SqlError {
    SqlError::new(
        "25P01",
        format!("{what} can only be used in transaction blocks"),
    )
}

fn tag(t: &str) -> StatementResult {
    StatementResult::Command { tag: t.to_string() }
}

/// The timestamp an `AS OF SYSTEM TIME` literal names, given the current time `now`: a negative
/// interval (`'-5s'`, `'-1 minute'`) before now, a number of nanoseconds since the Unix epoch,
/// or a timestamp (`'2026-12-05 01:00:00'`, RFC 3339). Future timestamps are refused.
pub(crate) fn resolve_as_of(literal: &str, now: Timestamp) -> Result<Timestamp, SqlError> {
    let invalid =
        |why: &str| SqlError::new("22023", format!("AS OF SYSTEM TIME: {why}: {literal:?}"));
    let text = literal.trim();
    let ts = if text.starts_with('-') || text.starts_with('+') {
        let micros = match compact_duration_micros(text) {
            Some(m) => m,
            None => {
                let iv = crate::expr::datetime::parse_interval(text)
                    .map_err(|_| invalid("not a negative interval"))?;
                i128::from(iv.micros)
                    + i128::from(iv.days) * 86_400_000_000
                    + i128::from(iv.months) * 30 * 86_400_000_000
            }
        };
        if micros >= 0 {
            return Err(invalid("the interval must be negative"));
        }
        let back = u64::try_from(-micros * 1000).map_err(|_| invalid("too far in the past"))?;
        Timestamp::from_nanos(now.as_nanos().saturating_sub(back))
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Nanoseconds (a fractional part, CockroachDB's logical clock, is ignored).
        let whole = text.split('.').next().unwrap_or(text);
        Timestamp::from_nanos(whole.parse().map_err(|_| invalid("not a timestamp"))?)
    } else if let Ok(ts) = text.parse::<Timestamp>() {
        ts
    } else {
        match crate::expr::parse_text(text, crate::api::SqlType::TimestampTz) {
            Ok(crate::api::Datum::TimestampTz(us)) if us >= 0 => {
                Timestamp::from_nanos(u64::try_from(us).unwrap_or(0).saturating_mul(1000))
            }
            _ => return Err(invalid("not a timestamp")),
        }
    };
    if ts > now {
        return Err(invalid("the timestamp is in the future"));
    }
    Ok(ts)
}

/// A Go-style duration (`-5s`, `-1h30m`, `-250ms`; units h, m, s, ms, us, µs, ns) in
/// microseconds, or `None` when `text` is not one.
fn compact_duration_micros(text: &str) -> Option<i128> {
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let micros_per = match &rest[..unit_len] {
            "h" => 3_600_000_000.0,
            "m" => 60_000_000.0,
            "s" => 1_000_000.0,
            "ms" => 1_000.0,
            "us" | "µs" => 1.0,
            "ns" => 0.001,
            _ => return None,
        };
        total += value * micros_per;
        rest = &rest[unit_len..];
    }
    Some(sign * total.round() as i128)
}

/// Whether a transaction-control statement.
pub(crate) fn is_control(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
    )
}

/// Whether `stmt` only reads (allowed in a READ ONLY transaction).
pub(crate) fn is_read_only(stmt: &Statement) -> bool {
    if let Statement::Query(q) = stmt {
        // SELECT ... FOR UPDATE is refused in read-only blocks, as in PostgreSQL.
        return q.locks.is_empty();
    }
    matches!(
        stmt,
        Statement::ShowVariable { .. }
            | Statement::ShowTables { .. }
            | Statement::Set(_)
            | Statement::Reset(_)
            | Statement::Analyze(_)
    ) || is_control(stmt)
        || matches!(stmt, Statement::Explain { statement, .. } if !explain_runs(stmt) || is_read_only(statement))
}

/// Whether an EXPLAIN runs its statement (EXPLAIN ANALYZE in either syntax), so that it
/// writes what the statement writes.
fn explain_runs(stmt: &Statement) -> bool {
    let Statement::Explain {
        analyze,
        format,
        options,
        ..
    } = stmt
    else {
        return false;
    };
    crate::plan::explain_options(*analyze, format.as_ref(), options.as_deref())
        .is_ok_and(|o| o.analyze)
}

/// 25006 for a write in a READ ONLY transaction.
pub(crate) fn read_only_violation(stmt: &Statement) -> SqlError {
    let first = stmt.to_string();
    let verb = match stmt {
        Statement::Query(_) => "SELECT FOR UPDATE",
        _ => first.split_whitespace().next().unwrap_or("this statement"),
    };
    SqlError::new(
        "25006",
        format!(
            "cannot execute {} in a read-only transaction",
            verb.to_uppercase()
        ),
    )
}

/// A session's transaction block, if any, and the commit timestamp of its last transaction.
#[derive(Default)]
pub(crate) struct Block {
    pub txn: Option<Txn>,
    /// The commit timestamp of the session's last committed block (autocommit writes are
    /// recorded by the session's [`Recording`] keyspace).
    pub last_commit: Option<Timestamp>,
    /// The age, for row locks, of the session's last block if it failed with a serialization
    /// error: the next block (the client retrying it) claims the same age, as wound-wait
    /// requires of a restarted transaction. Otherwise a retried transaction is the youngest
    /// again every time and an older one can wound it over and over.
    retry_age: Option<Timestamp>,
    /// The rows committed blocks wrote, per table, until the session counts them toward
    /// statistics.
    pub committed: Vec<(Arc<TableDesc>, u64)>,
    /// The newest version read by the blocks committed since the session last answered its
    /// client, which it waits out first (see `buffer.rs`, [`buffer::Seen`]).
    pub seen: Timestamp,
}

impl Block {
    pub(crate) fn status(&self) -> TxnStatus {
        match &self.txn {
            None => TxnStatus::Idle,
            Some(t) if t.failed => TxnStatus::Failed,
            Some(_) => TxnStatus::InBlock,
        }
    }

    /// Opens a read-write block (for statements that must be atomic across several writes,
    /// such as COPY outside a block).
    pub(crate) fn begin(&mut self, base: Arc<dyn KvClient>) {
        self.txn = Some(Txn::new(base, false, self.retry_age));
    }

    /// Commits the block [`Block::begin`] opened.
    pub(crate) async fn commit_implicit(&mut self) -> Result<(), SqlError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let seen = txn.kv.seen();
        match txn.kv.commit().await {
            Ok(ts) => {
                crate::metrics::COMMITS.inc();
                self.seen = self.seen.max(seen);
                if ts.is_some() {
                    self.last_commit = ts;
                }
                self.retry_age = None;
                self.committed.extend(txn.written);
                Ok(())
            }
            Err(source) => {
                crate::metrics::COMMIT_FAILURES.inc();
                let e = Error::Write {
                    source,
                    table: None,
                }
                .into_sql();
                self.note_failure(&txn, e.code);
                Err(e)
            }
        }
    }

    /// Marks the open block failed (after a statement in it failed with SQLSTATE `code`).
    pub(crate) fn fail(&mut self, code: &str) {
        if let Some(mut t) = self.txn.take() {
            t.failed = true;
            self.note_failure(&t, code);
            self.txn = Some(t);
        }
    }

    /// Remembers the age of a block that lost a serialization conflict for its retry.
    fn note_failure(&mut self, txn: &Txn, code: &str) {
        if code == "40001" {
            self.retry_age = txn.kv.age().or(self.retry_age);
        }
    }

    /// Runs a transaction-control statement.
    pub(crate) async fn control(
        &mut self,
        stmt: &Statement,
        base: &Arc<dyn KvClient>,
    ) -> Result<StatementResult, SqlError> {
        match stmt {
            Statement::StartTransaction { modes, .. } => {
                if self.txn.is_none() {
                    // PostgreSQL warns and goes on when a block is already open.
                    let read_only = modes.iter().any(|m| {
                        matches!(
                            m,
                            TransactionMode::AccessMode(TransactionAccessMode::ReadOnly)
                        )
                    });
                    self.txn = Some(Txn::new(base.clone(), read_only, self.retry_age));
                }
                Ok(tag("BEGIN"))
            }
            Statement::Commit { chain: true, .. } | Statement::Rollback { chain: true, .. } => {
                // AND CHAIN ends the block and opens a new one with the same modes.
                let Some(read_only) = self.txn.as_ref().map(|t| t.read_only) else {
                    let what = if matches!(stmt, Statement::Commit { .. }) {
                        "COMMIT AND CHAIN"
                    } else {
                        "ROLLBACK AND CHAIN"
                    };
                    return Err(no_block(what));
                };
                let ended = match stmt {
                    Statement::Commit { end, modifier, .. } => {
                        let plain = Statement::Commit {
                            chain: false,
                            end: *end,
                            modifier: *modifier,
                        };
                        Box::pin(self.control(&plain, base)).await
                    }
                    _ => {
                        self.txn = None;
                        Ok(tag("ROLLBACK"))
                    }
                };
                self.txn = Some(Txn::new(base.clone(), read_only, self.retry_age));
                ended
            }
            Statement::Commit { .. } => {
                let Some(txn) = self.txn.take() else {
                    return Ok(tag("COMMIT"));
                };
                if txn.failed {
                    // As in PostgreSQL: COMMIT of a failed block rolls it back.
                    return Ok(tag("ROLLBACK"));
                }
                self.txn = Some(txn);
                self.commit_implicit().await.map(|()| tag("COMMIT"))
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.txn = None;
                Ok(tag("ROLLBACK"))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let txn = self
                    .txn
                    .as_mut()
                    .ok_or_else(|| no_block("ROLLBACK TO SAVEPOINT"))?;
                let at = txn.find(name)?;
                txn.savepoints.truncate(at + 1);
                txn.kv.rollback_to(&txn.savepoints[at].1);
                txn.failed = false;
                Ok(tag("ROLLBACK"))
            }
            Statement::Savepoint { name } => {
                let txn = self.txn.as_mut().ok_or_else(|| no_block("SAVEPOINT"))?;
                if txn.failed {
                    return Err(aborted());
                }
                txn.savepoints
                    .push((crate::plan::ident(name), txn.kv.mark()));
                Ok(tag("SAVEPOINT"))
            }
            Statement::ReleaseSavepoint { name } => {
                let txn = self
                    .txn
                    .as_mut()
                    .ok_or_else(|| no_block("RELEASE SAVEPOINT"))?;
                if txn.failed {
                    return Err(aborted());
                }
                let at = txn.find(name)?;
                txn.savepoints.truncate(at);
                Ok(tag("RELEASE"))
            }
            other => Err(SqlError::internal(format!(
                "not a transaction-control statement: {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_literals() {
        let now = Timestamp::from_nanos(10_000_000_000_000);
        let back = |lit: &str| now.as_nanos() - resolve_as_of(lit, now).unwrap().as_nanos();
        assert_eq!(back("-5s"), 5_000_000_000);
        assert_eq!(back("-1h30m"), 5_400_000_000_000);
        assert_eq!(back("-250ms"), 250_000_000);
        assert_eq!(back("-1 minute"), 60_000_000_000);
        assert_eq!(
            resolve_as_of("1234", now).unwrap(),
            Timestamp::from_nanos(1234)
        );
        assert_eq!(
            resolve_as_of("1234.0000000001", now).unwrap(),
            Timestamp::from_nanos(1234)
        );
        assert_eq!(
            resolve_as_of("1970-01-01 00:00:01", now).unwrap(),
            Timestamp::from_nanos(1_000_000_000)
        );
        for bad in [
            "+5s",
            "-0s",
            "99999999999999999999",
            "soon",
            "2999-01-01",
            "-5x",
        ] {
            assert_eq!(resolve_as_of(bad, now).unwrap_err().code, "22023", "{bad}");
        }
    }
}
