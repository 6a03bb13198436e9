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
}

impl Txn {
    fn new(base: Arc<dyn KvClient>, read_only: bool) -> Txn {
        Txn {
            kv: Arc::new(TxnKv::new(base)),
            failed: false,
            read_only,
            savepoints: Vec::new(),
        }
    }

    /// The index of the newest savepoint called `name` (names compare as identifiers do).
    fn find(&self, name: &Ident) -> Result<usize, SqlError> {
        let wanted = ident_text(name);
        self.savepoints
            .iter()
            .rposition(|(n, _)| *n == wanted)
            .ok_or_else(|| SqlError::new("3B001", format!("savepoint \"{wanted}\" does not exist")))
    }
}

/// An identifier as PostgreSQL folds it (unquoted names are case-insensitive).
fn ident_text(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
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
    matches!(
        stmt,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowTables { .. }
            | Statement::Set(_)
            | Statement::Reset(_)
            | Statement::Analyze(_)
    ) || is_control(stmt)
}

/// 25006 for a write in a READ ONLY transaction.
pub(crate) fn read_only_violation(stmt: &Statement) -> SqlError {
    let first = stmt.to_string();
    let verb = first.split_whitespace().next().unwrap_or("this statement");
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
    /// The commit timestamp of the session's last committed write (autocommit or block).
    pub last_commit: Option<Timestamp>,
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
        self.txn = Some(Txn::new(base, false));
    }

    /// Commits the block [`Block::begin`] opened.
    pub(crate) async fn commit_implicit(&mut self) -> Result<(), SqlError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        match txn.kv.commit().await {
            Ok(ts) => {
                crate::metrics::COMMITS.inc();
                if ts.is_some() {
                    self.last_commit = ts;
                }
                Ok(())
            }
            Err(source) => {
                crate::metrics::COMMIT_FAILURES.inc();
                Err(Error::Write {
                    source,
                    table: None,
                }
                .into_sql())
            }
        }
    }

    /// Marks the open block failed (after a statement in it failed).
    pub(crate) fn fail(&mut self) {
        if let Some(t) = &mut self.txn {
            t.failed = true;
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
                    self.txn = Some(Txn::new(base.clone(), read_only));
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
                self.txn = Some(Txn::new(base.clone(), read_only));
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
                txn.savepoints.push((ident_text(name), txn.kv.mark()));
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
