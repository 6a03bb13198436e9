//! Plans shared by statements that differ only in their constants.
//!
//! Clients of the simple query protocol (psql, `pgbench -M simple`, drivers that inline their
//! values) send each statement as text with its constants written in. Parsing and planning
//! such a statement costs more than running it when it reads or writes one row, so a session
//! turns the constants of a query or DML statement into parameters
//! ([`lexical::parameterize`](crate::lexical::parameterize)), plans the parameterized text once
//! per shape, and runs every statement of that shape as that prepared statement with its own
//! constants as the parameter values. Numbers keep their literal types (int4, int8 or numeric
//! by magnitude, which is part of the shape); strings take the type their use gives them, as
//! an untyped literal does.
//!
//! The plan is checked against the catalog at each run, as a prepared statement's is, and
//! planned again when a table it used changed. A shape whose parameterized text does not plan
//! while the statement itself runs (a constant the planner needs as written) is remembered and
//! takes the ordinary path from then on; a statement that fails either way is not remembered,
//! so the error it reports is always the ordinary path's.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast::Statement;

use crate::api::{Datum, SqlError, SqlType, StatementResult};
use crate::error::{Error, Result};
use crate::expr::ScalarExpr;
use crate::lexical::{self, Literal, Parameterized};
use crate::parse;
use crate::plan::coerce::bind_number;
use crate::prepared::coerce_param;
use crate::session::{Session, Work};

/// Most shapes a session remembers (it forgets them all when full).
const MAX_SHAPES: usize = 512;

/// What a session knows of one shape.
pub(crate) enum Shape {
    /// Its statements run as this parameterized statement.
    Parameterized(Arc<Shaped>),
    /// Its statements take the ordinary path.
    Ordinary,
}

/// A parameterized statement shared by the statements of one shape.
pub(crate) struct Shaped {
    /// The plan cache's key for it.
    key: String,
    /// The parameterized text.
    sql: String,
    pub(crate) stmt: Statement,
    /// Parameter types as the literals fix them (`None`: a string, typed by its use).
    declared: Vec<Option<SqlType>>,
}

/// The shapes a session has met, by [`Parameterized::key`].
#[derive(Default)]
pub(crate) struct Shapes(HashMap<String, Shape>);

impl Shapes {
    fn remember(&mut self, key: String, shape: Shape) {
        if self.0.len() >= MAX_SHAPES {
            self.0.clear();
        }
        self.0.insert(key, shape);
    }
}

impl Session {
    /// Runs `sql` as a statement of its shape when it has one ([`lexical::parameterize`]) and
    /// the shape's parameterized statement plans; `None` leaves `sql` to the ordinary path.
    pub(crate) async fn execute_shaped(
        &mut self,
        sql: &str,
    ) -> Option<Vec<Result<StatementResult, SqlError>>> {
        if self.block.txn.as_ref().is_some_and(|t| t.failed) {
            return None;
        }
        let shape = lexical::parameterize(sql)?;
        let shaped = match self.shapes.0.get(&shape.key) {
            Some(Shape::Ordinary) => return None,
            Some(Shape::Parameterized(s)) => s.clone(),
            None => match self.prepare_shape(&shape).await {
                Ok(s) => {
                    self.shapes
                        .remember(shape.key.clone(), Shape::Parameterized(s.clone()));
                    s
                }
                Err(e) => {
                    // Whether the statement itself runs decides if the shape is remembered.
                    let results = self.execute_ordinary(sql).await;
                    if !e.is_retryable() && results.iter().all(|r| r.is_ok()) {
                        self.shapes.remember(shape.key, Shape::Ordinary);
                    }
                    return Some(results);
                }
            },
        };
        // A constant that is no value of its type (`1e999999`) is the ordinary path's error.
        let values = literal_values(&shape.literals)?;
        let started = crate::metrics::Stopwatch::start();
        let r = self.retrying(Work::Shaped(&shaped, &values)).await;
        crate::metrics::observe(
            crate::metrics::kind(&shaped.stmt),
            started.elapsed(),
            r.as_ref().map(|_| ()),
        );
        Some(vec![r])
    }

    /// Parses and plans the parameterized text of a shape, caching its plan.
    async fn prepare_shape(&mut self, shape: &Parameterized<'_>) -> Result<Arc<Shaped>> {
        let mut stmts = parse::parse(&shape.text).map_err(Error::Sql)?;
        let (Some(stmt), true) = (stmts.pop(), stmts.is_empty()) else {
            return Err(Error::Internal("not one statement".to_string()));
        };
        if !matches!(
            stmt,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
        ) {
            return Err(Error::Internal("not a query or DML".to_string()));
        }
        let shaped = Shaped {
            key: format!("shape\u{0}{}", shape.key),
            sql: shape.text.clone(),
            stmt,
            declared: shape.declared_types(),
        };
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(Error::Read)?;
        self.current_plan(
            kv.as_ref(),
            ts,
            &shaped.key,
            &shaped.stmt,
            &shaped.sql,
            &shaped.declared,
        )
        .await?;
        Ok(Arc::new(shaped))
    }

    /// One attempt of a statement of a parameterized shape with its constants `values`.
    pub(crate) async fn run_shaped(
        &mut self,
        s: &Shaped,
        values: &[Datum],
    ) -> Result<StatementResult> {
        let kv = self.kv();
        let ts = kv.read_ts().await.map_err(Error::Read)?;
        let planned = self
            .current_plan(kv.as_ref(), ts, &s.key, &s.stmt, &s.sql, &s.declared)
            .await
            // Positions would point into the parameterized text.
            .map_err(|e| match e {
                Error::Sql(e) => Error::Sql(SqlError {
                    position: None,
                    ..e
                }),
                e => e,
            })?;
        let params = values
            .iter()
            .zip(&planned.param_types)
            .enumerate()
            .map(|(n, (d, ty))| coerce_param(d.clone(), *ty, n))
            .collect::<Result<Vec<_>, _>>()?;
        self.execute_plan(kv.as_ref(), ts, &params, &planned.plan)
            .await
    }
}

/// The values of a shape's literals: numbers as their literal types, strings as text (which
/// the planned parameter type converts, as it would the untyped literal).
fn literal_values(literals: &[Literal<'_>]) -> Option<Vec<Datum>> {
    literals
        .iter()
        .map(|l| match l {
            Literal::Number(n) => match bind_number(n, None).ok()?.expr {
                ScalarExpr::Literal(d, _) => Some(d),
                _ => None,
            },
            Literal::Text(t) => Some(Datum::Text(t.to_string())),
        })
        .collect()
}
