//! The relational plan: a tree of operators, each producing rows (vectors of datums) from the
//! rows of its inputs. Expressions in an operator read their input's row by position
//! ([`ScalarExpr::Column`]).

use std::sync::Arc;

use super::aggregate::AggregatePlan;
use super::keyrange::KeyRange;
use super::window::WindowPlan;
use crate::api::{ColumnInfo, SqlType};
use crate::catalog::{IndexDesc, TableDesc};
use crate::expr::ScalarExpr;

/// A relational operator.
#[derive(Debug, Clone)]
pub(crate) enum Rel {
    /// Rows of expressions without input (`VALUES`; a SELECT without FROM reads one empty
    /// row).
    Values {
        rows: Vec<Vec<ScalarExpr>>,
        width: usize,
    },
    /// A set-returning function in FROM (`generate_series`, `unnest`): one column, computed
    /// from `args` each time the operator runs (they may read outer values).
    Function {
        func: super::table_func::TableFunc,
        args: Vec<ScalarExpr>,
    },
    /// Reads a table through its primary index or a secondary index; produces full table rows
    /// (in descriptor column order).
    Scan(Box<ScanPlan>),
    /// Rows for which `predicate` is true.
    Filter {
        input: Box<Rel>,
        predicate: ScalarExpr,
    },
    /// One output column per expression.
    Project {
        input: Box<Rel>,
        exprs: Vec<ScalarExpr>,
    },
    /// A join; output rows are a left row followed by a right row.
    Join(Box<JoinPlan>),
    /// GROUP BY and aggregate calls; output rows are group values then aggregate values.
    Aggregate {
        input: Box<Rel>,
        plan: AggregatePlan,
    },
    /// Window functions; output rows are the input row followed by one value per function.
    Window { input: Box<Rel>, plan: WindowPlan },
    /// Rows with duplicates removed: equal in every column, or (DISTINCT ON) in the `on`
    /// columns, keeping the first row of each group.
    Distinct {
        input: Box<Rel>,
        on: Option<Vec<usize>>,
    },
    /// Rows in order.
    Sort { input: Box<Rel>, keys: Vec<SortKey> },
    /// OFFSET and LIMIT: constants, or (`counts`) expressions of parameters evaluated when the
    /// statement runs (then `limit` and `offset` are unused).
    Limit {
        input: Box<Rel>,
        limit: Option<u64>,
        offset: u64,
        counts: Option<Box<LimitCounts>>,
    },
    /// UNION / INTERSECT / EXCEPT, with or without ALL.
    SetOp {
        op: SetOpKind,
        all: bool,
        left: Box<Rel>,
        right: Box<Rel>,
    },
}

/// LIMIT and OFFSET given by parameters (`LIMIT $1`).
#[derive(Debug, Clone)]
pub(crate) struct LimitCounts {
    pub limit: Option<ScalarExpr>,
    pub offset: Option<ScalarExpr>,
}

/// A set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOpKind {
    Union,
    Intersect,
    Except,
}

impl SetOpKind {
    /// The SQL keyword.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SetOpKind::Union => "UNION",
            SetOpKind::Intersect => "INTERSECT",
            SetOpKind::Except => "EXCEPT",
        }
    }
}

/// One sort key: a position in the input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub column: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Which index a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The primary index (the rows themselves).
    Primary,
    /// The secondary index at this position of the table's index list.
    Index(usize),
}

/// Reading one table.
#[derive(Debug, Clone)]
pub(crate) struct ScanPlan {
    /// The table.
    pub table: Arc<TableDesc>,
    /// The index read.
    pub access: Access,
    /// The ranges of the index that can hold matching rows (recomputed at execution when
    /// `dynamic`).
    pub range: KeyRange,
    /// The range depends on parameters or outer values, known only at execution (a condition
    /// on the index's leading key column holds one).
    pub dynamic: bool,
    /// With `dynamic`: the condition fixes every key column (by `=` or `IN`), so the range
    /// computed per execution is a set of point lookups.
    pub lookups: bool,
    /// The condition (without subqueries) rows must satisfy; re-checked on every row read.
    pub filter: Option<ScalarExpr>,
    /// A secondary index holds every column the statement reads, so rows need no lookup in
    /// the primary index (the other columns read as NULL).
    pub covering: bool,
    /// The rows the scan yields (after `filter`), estimated from the table's statistics;
    /// `None` without statistics.
    pub estimate: Option<f64>,
}

impl ScanPlan {
    /// The secondary index read, if any.
    pub(crate) fn index(&self) -> Option<&IndexDesc> {
        match self.access {
            Access::Primary => None,
            Access::Index(i) => self.table.indexes.get(i),
        }
    }
}

/// How a join treats rows without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    /// Only matching pairs.
    Inner,
    /// Every left row, with NULLs for the right side when nothing matches.
    Left,
    /// Every row of both sides.
    Full,
}

/// A join of two inputs. Pairs match when every `left_keys[i]` equals `right_keys[i]` (NULL
/// never equals) and `residual` is true; with keys the executor hashes one side (the right
/// unless `build_left`), without it compares every pair.
#[derive(Debug, Clone)]
pub(crate) struct JoinPlan {
    pub kind: JoinKind,
    pub left: Rel,
    pub right: Rel,
    /// Equality keys over left rows.
    pub left_keys: Vec<ScalarExpr>,
    /// Equality keys over right rows.
    pub right_keys: Vec<ScalarExpr>,
    /// The rest of the join condition, over a left row followed by a right row.
    pub residual: Option<ScalarExpr>,
    /// Instead of reading the whole right side: look up each left row's keys in the right
    /// table's index (the right side is then a scan of that table).
    pub lookup: Option<Lookup>,
    /// An inner hash join hashes the left side, estimated smaller, and probes it with the
    /// right side's rows.
    pub build_left: bool,
    /// The rows the join yields, estimated from statistics; `None` without statistics.
    pub estimate: Option<f64>,
}

/// A lookup join: the right side's scan reads, for each left row, the index entries whose
/// leading columns equal the left row's key values.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    /// The index looked up.
    pub access: Access,
    /// `key_exprs[i]` (over left rows) gives the value of the index's `i`-th key column.
    pub key_exprs: Vec<ScalarExpr>,
}

impl Rel {
    /// The number of columns of the rows this operator produces.
    pub(crate) fn width(&self) -> usize {
        match self {
            Rel::Values { width, .. } => *width,
            Rel::Function { .. } => 1,
            Rel::Scan(s) => s.table.columns.len(),
            Rel::Project { exprs, .. } => exprs.len(),
            Rel::Join(j) => j.left.width() + j.right.width(),
            Rel::Aggregate { plan, .. } => plan.groups.len() + plan.aggs.len(),
            Rel::Window { input, plan } => input.width() + plan.funcs.len(),
            Rel::Filter { input, .. }
            | Rel::Distinct { input, .. }
            | Rel::Sort { input, .. }
            | Rel::Limit { input, .. } => input.width(),
            Rel::SetOp { left, .. } => left.width(),
        }
    }

    /// The operators this one reads.
    pub(crate) fn inputs(&self) -> Vec<&Rel> {
        match self {
            Rel::Values { .. } | Rel::Function { .. } | Rel::Scan(_) => vec![],
            Rel::Join(j) => vec![&j.left, &j.right],
            Rel::SetOp { left, right, .. } => vec![left, right],
            Rel::Filter { input, .. }
            | Rel::Project { input, .. }
            | Rel::Aggregate { input, .. }
            | Rel::Window { input, .. }
            | Rel::Distinct { input, .. }
            | Rel::Sort { input, .. }
            | Rel::Limit { input, .. } => vec![input],
        }
    }

    /// The rows this operator yields, estimated from the statistics of the tables below it;
    /// `None` when its scans and joins have none.
    pub(crate) fn estimate(&self) -> Option<f64> {
        match self {
            Rel::Scan(s) => s.estimate,
            Rel::Join(j) => j.estimate,
            Rel::Filter { input, .. } => input.estimate().map(|e| e * super::estimate::OTHER_SEL),
            Rel::Aggregate { input, plan } if plan.groups.is_empty() => {
                input.estimate().map(|_| 1.0)
            }
            Rel::Limit { input, limit, .. } => input
                .estimate()
                .map(|e| limit.map_or(e, |l| e.min(l as f64))),
            Rel::Project { input, .. }
            | Rel::Aggregate { input, .. }
            | Rel::Window { input, .. }
            | Rel::Distinct { input, .. }
            | Rel::Sort { input, .. } => input.estimate(),
            Rel::Values { .. } | Rel::Function { .. } | Rel::SetOp { .. } => None,
        }
    }

    /// The scan this operator is, possibly under a projection: the scan and the projection's
    /// expressions.
    pub(crate) fn as_scan(&self) -> Option<(&ScanPlan, Option<&[ScalarExpr]>)> {
        match self {
            Rel::Scan(s) => Some((s, None)),
            Rel::Project { input, exprs } => match input.as_ref() {
                Rel::Scan(s) => Some((s, Some(exprs))),
                _ => None,
            },
            _ => None,
        }
    }

    /// A projection of this operator's rows. When this operator is itself a projection that
    /// only rearranges columns (column references and constants), the two merge into one.
    pub(crate) fn project(self, mut exprs: Vec<ScalarExpr>) -> Rel {
        match self {
            Rel::Project {
                input,
                exprs: inner,
            } if inner
                .iter()
                .all(|e| matches!(e, ScalarExpr::Column(..) | ScalarExpr::Literal(..))) =>
            {
                for e in &mut exprs {
                    substitute(e, &inner);
                }
                Rel::Project { input, exprs }
            }
            other => Rel::Project {
                input: Box::new(other),
                exprs,
            },
        }
    }

    /// `input` with rows filtered by `predicate` (merged into a scan's own filter when the
    /// predicate has no subquery).
    pub(crate) fn filtered(self, predicate: ScalarExpr) -> Rel {
        Rel::Filter {
            input: Box::new(self),
            predicate,
        }
    }

    /// This operator filtered by all of `conds` (itself when there are none).
    pub(crate) fn filtered_all(self, conds: Vec<ScalarExpr>) -> Rel {
        match super::access::and_all(conds) {
            Some(p) => self.filtered(p),
            None => self,
        }
    }

    /// Keeps only the first `width` columns (no-op when that is all of them).
    pub(crate) fn truncated(self, width: usize, types: &[SqlType]) -> Rel {
        if self.width() == width {
            return self;
        }
        let exprs = (0..width)
            .map(|i| ScalarExpr::Column(i, types[i]))
            .collect();
        Rel::Project {
            input: Box::new(self),
            exprs,
        }
    }
}

/// Replaces every column reference of `e` by the expression it reads in `inner`.
fn substitute(e: &mut ScalarExpr, inner: &[ScalarExpr]) {
    if let ScalarExpr::Column(i, _) = e {
        if let Some(x) = inner.get(*i) {
            *e = x.clone();
        }
        return;
    }
    e.for_each_child_mut(&mut |c| substitute(c, inner));
}

/// A planned query: its operators and its result columns.
#[derive(Debug, Clone)]
pub(crate) struct QueryPlan {
    pub rel: Rel,
    pub columns: Vec<ColumnInfo>,
    /// `FOR UPDATE` / `FOR SHARE`: rows read by primary key are read for update (locked
    /// inside a transaction block).
    pub locking: bool,
}
