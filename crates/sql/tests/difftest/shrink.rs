//! Shrinking a mismatch to a small reproducer: simpler queries (`ast::variants`), then fewer
//! tables, rows, columns and indexes, keeping each step that still shows a mismatch, until
//! nothing simplifies or the attempt budget is spent.
//!
//! Query steps run on the data already loaded; data steps load the candidate schema into a
//! fresh Meridian engine and into the PostgreSQL schema `shrink` (on a connection whose
//! `search_path` names it), so the final reproducer has run from scratch on both.

use std::sync::Arc;

use meridian_sql::testing::MemKv;
use meridian_sql::{Engine, Session};

use crate::ast::{Query, variants};
use crate::compare::{self, Outcome, Verdict};
use crate::schema::{Schema, Table};

/// A fresh in-memory Meridian database holding `schema`.
pub async fn meridian_session(schema: &Schema) -> Result<Session, String> {
    let engine = Engine::new(Arc::new(MemKv::new()));
    // Plans must not change with background collections: a mismatch must replay.
    engine.set_automatic_statistics(false);
    let mut session = engine.session("root", "defaultdb");
    for sql in schema.setup_sql() {
        for r in session.execute(&sql).await {
            r.map_err(|e| format!("Meridian: {sql}: {e}"))?;
        }
    }
    Ok(session)
}

/// What kind of mismatch an outcome pair is.
fn kind(reason: &str, m: &Outcome, p: &Outcome) -> String {
    let code = |o: &Outcome| match o {
        Outcome::Error { code, .. } => code.clone(),
        Outcome::Rows { .. } => "rows".to_string(),
    };
    format!("{reason}/{}/{}", code(m), code(p))
}

pub struct Shrinker<'a> {
    /// A connection whose `search_path` is the schema `shrink`.
    pub pg: &'a tokio_postgres::Client,
    pub attempts: usize,
    pub budget: usize,
    /// The kind of the mismatch being shrunk, once seen.
    pub kind: Option<String>,
}

impl Shrinker<'_> {
    fn spent(&self) -> bool {
        self.attempts >= self.budget
    }

    /// Loads `schema` into a fresh Meridian engine and the PostgreSQL schema `shrink`.
    pub async fn load(&self, schema: &Schema) -> Option<Session> {
        let mut batch = vec![
            "DROP SCHEMA IF EXISTS shrink CASCADE".to_string(),
            "CREATE SCHEMA shrink".to_string(),
        ];
        batch.extend(schema.setup_sql());
        self.pg.batch_execute(&batch.join(";\n")).await.ok()?;
        meridian_session(schema).await.ok()
    }

    /// Whether `q` shows the mismatch being shrunk: a difference of the same kind (same
    /// reason, same error codes). A simplification can break what the generator guarantees
    /// (a scalar subquery losing the filter that kept it to one row, a divisor losing its
    /// `NULLIF`) and make the systems differ only in evaluation order; the kind rules that out.
    async fn differs(&mut self, session: &mut Session, q: &Query) -> bool {
        self.attempts += 1;
        let sql = q.to_string();
        let m = compare::meridian(session, &sql).await;
        let p = compare::postgres(self.pg, &sql).await;
        match compare::compare(q, &m, &p) {
            Verdict::Differ(reason) => {
                let kind = kind(&reason, &m, &p);
                *self.kind.get_or_insert(kind.clone()) == kind
            }
            _ => false,
        }
    }

    /// Loads `schema` and checks `q` still differs on it.
    async fn differs_on(&mut self, schema: &Schema, q: &Query) -> Option<Session> {
        let mut session = self.load(schema).await?;
        self.differs(&mut session, q).await.then_some(session)
    }

    /// The smallest schema and query found that still differ, or `None` when the mismatch
    /// does not reproduce from scratch.
    pub async fn shrink(
        &mut self,
        mut schema: Schema,
        mut query: Query,
    ) -> Option<(Schema, Query)> {
        let mut session = self.differs_on(&schema, &query).await?;
        loop {
            let mut progress = false;
            'query: while !self.spent() {
                for v in variants(&query) {
                    if self.spent() {
                        break 'query;
                    }
                    if self.differs(&mut session, &v).await {
                        query = v;
                        progress = true;
                        continue 'query;
                    }
                }
                break;
            }
            for cand in schema_steps(&schema) {
                if self.spent() {
                    break;
                }
                if let Some(s) = self.differs_on(&cand, &query).await {
                    (schema, session, progress) = (cand, s, true);
                    break;
                }
            }
            if !progress || self.spent() {
                return Some((schema, query));
            }
        }
    }
}

/// `t` without column `c` (and without the index if it used the column).
fn without_column(t: &Table, c: usize) -> Table {
    let mut t = t.clone();
    t.columns.remove(c);
    for r in &mut t.rows {
        r.remove(c);
    }
    if t.index.iter().any(|(i, _)| *i == c) {
        t.index.clear();
    }
    for (i, _) in &mut t.index {
        if *i > c {
            *i -= 1;
        }
    }
    t
}

/// One-step simplifications of the data, the biggest first: a table dropped, its rows
/// halved, quartered, ... down to one at a time, its index dropped, a column dropped.
fn schema_steps(s: &Schema) -> Vec<Schema> {
    let mut out = Vec::new();
    let with = |i: usize, t: Table| {
        let mut c = s.clone();
        c.tables[i] = t;
        c
    };
    for i in 0..s.tables.len() {
        let mut c = s.clone();
        c.tables.remove(i);
        out.push(c);
    }
    for (i, t) in s.tables.iter().enumerate() {
        let n = t.rows.len();
        let mut chunk = n.div_ceil(2);
        while chunk >= 1 && n > 0 {
            for start in (0..n).step_by(chunk) {
                let mut c = t.clone();
                c.rows.drain(start..(start + chunk).min(n));
                out.push(with(i, c));
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        if !t.index.is_empty() {
            let mut c = t.clone();
            c.index.clear();
            out.push(with(i, c));
        }
        for c in (1..t.columns.len()).rev() {
            out.push(with(i, without_column(t, c)));
        }
    }
    out
}
