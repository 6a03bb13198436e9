//! Functions that are not pure: each call may return a new value or change state
//! (`nextval`, `setval`, `currval`, `unique_rowid()`, `random()`). Like subqueries, the executor
//! computes them (once per row and call) before the expression is evaluated, and evaluation
//! reads the value from [`super::Env::subqueries`].

use super::{Env, ScalarExpr};
use crate::api::{Datum, SqlError, SqlType};

/// A volatile function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VolatileFunc {
    /// `nextval(sequence)`.
    NextVal,
    /// `currval(sequence)`: the value `nextval` last returned in this session.
    CurrVal,
    /// `setval(sequence, value [, is_called])`.
    SetVal,
    /// `unique_rowid()`: a unique, roughly increasing INT8 (time and session).
    UniqueRowId,
    /// `random()`: a float8 in [0, 1).
    Random,
    /// `gen_random_uuid()`: a version 4 UUID.
    RandomUuid,
    /// `now()` / `current_timestamp`: the statement's read timestamp.
    Now,
    /// `cluster_logical_timestamp()`: the statement's read timestamp in nanoseconds since the
    /// Unix epoch (CockroachDB's name; an INT8 here, not a decimal).
    ReadTimestamp,
}

impl VolatileFunc {
    /// The SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            VolatileFunc::NextVal => "nextval",
            VolatileFunc::CurrVal => "currval",
            VolatileFunc::SetVal => "setval",
            VolatileFunc::UniqueRowId => "unique_rowid",
            VolatileFunc::Random => "random",
            VolatileFunc::RandomUuid => "gen_random_uuid",
            VolatileFunc::Now => "now",
            VolatileFunc::ReadTimestamp => "cluster_logical_timestamp",
        }
    }
}

/// A call of a volatile function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VolatileCall {
    /// Identifies the call within its statement (its value slot).
    pub id: usize,
    pub func: VolatileFunc,
    pub args: Vec<ScalarExpr>,
    pub ty: SqlType,
}

impl VolatileCall {
    /// The value the executor computed.
    pub(super) fn eval(&self, env: &Env<'_>) -> Result<Datum, SqlError> {
        match env.subqueries.and_then(|m| m.get(&self.id)) {
            Some(super::SubqueryValue::Scalar(d)) => Ok(d.clone()),
            _ => Err(SqlError::internal(format!(
                "{}() was not computed",
                self.func.name()
            ))),
        }
    }
}
