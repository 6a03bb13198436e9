//! Aggregate calls (`count`, `sum`, `min`, `max`, `avg`) and GROUP BY.
//!
//! An aggregate query produces one row per group, laid out as `[group values..., aggregate
//! values...]`; the select list, HAVING and ORDER BY of such a query are bound against that
//! row (see [`super::bind::ExprBinder::agg`]).

use sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget,
};

use super::bind::ExprBinder;
use super::coerce::implicit;
use super::rel::Rel;
use crate::api::{SqlError, SqlType};
use crate::expr::ScalarExpr;
use crate::types::is_numeric;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFunc {
    /// `count(*)`: rows.
    CountStar,
    /// `count(x)`: non-NULL values.
    Count,
    /// `sum(x)`: int8 for int2/int4, numeric for int8 and numeric, float8 for floats.
    Sum,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `avg(x)`: numeric for integers and numerics, float8 for floats.
    Avg,
    /// `string_agg(text, separator)`: the values joined, each after the separator of its row.
    StringAgg,
}

impl AggFunc {
    /// The SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::StringAgg => "string_agg",
        }
    }
}

/// One aggregate call of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument, bound against the input rows (`None` for `count(*)`).
    pub arg: Option<ScalarExpr>,
    /// `string_agg`'s separator, bound against the input rows.
    pub separator: Option<Box<ScalarExpr>>,
    /// `DISTINCT`: aggregate each distinct value once.
    pub distinct: bool,
    /// `FILTER (WHERE ...)`: only rows where it is true take part.
    pub filter: Option<ScalarExpr>,
    /// Result type.
    pub ty: SqlType,
}

impl AggCall {
    /// The expressions the call reads from its input rows.
    pub(crate) fn exprs(&self) -> impl Iterator<Item = &ScalarExpr> {
        self.arg
            .iter()
            .chain(self.separator.as_deref())
            .chain(self.filter.iter())
    }
}

/// Aggregation collected while binding an aggregate query.
#[derive(Debug, Clone, Default)]
pub(crate) struct AggState {
    /// GROUP BY expressions, bound against the input rows.
    pub groups: Vec<ScalarExpr>,
    /// Aggregate calls found so far.
    pub aggs: Vec<AggCall>,
}

impl AggState {
    /// The aggregation of `input`, whose columns have the types `input_types`. The executor
    /// evaluates group keys and aggregate arguments row by row on its own, without computing
    /// subqueries or volatile calls first; a key or argument holding one is therefore computed
    /// by a projection below, as an extra column, and read from there.
    pub(crate) fn into_rel(self, input: Rel, input_types: &[SqlType]) -> Rel {
        let AggState {
            mut groups,
            mut aggs,
        } = self;
        let width = input_types.len();
        let mut lifted: Vec<ScalarExpr> = Vec::new();
        let mut lift = |e: &mut ScalarExpr| {
            if e.has_subquery() {
                let col = ScalarExpr::Column(width + lifted.len(), e.ty());
                lifted.push(std::mem::replace(e, col));
            }
        };
        groups.iter_mut().for_each(&mut lift);
        for a in &mut aggs {
            a.arg.iter_mut().for_each(&mut lift);
            a.separator.as_deref_mut().into_iter().for_each(&mut lift);
            a.filter.iter_mut().for_each(&mut lift);
        }
        let input = if lifted.is_empty() {
            input
        } else {
            let mut exprs: Vec<ScalarExpr> = input_types
                .iter()
                .enumerate()
                .map(|(i, ty)| ScalarExpr::Column(i, *ty))
                .collect();
            exprs.extend(lifted);
            Rel::Project {
                input: Box::new(input),
                exprs,
            }
        };
        Rel::Aggregate {
            input: Box::new(input),
            plan: AggregatePlan { groups, aggs },
        }
    }

    /// Adds `call` (or finds an identical earlier one) and returns its index.
    pub(crate) fn add(&mut self, call: AggCall) -> usize {
        if let Some(i) = self.aggs.iter().position(|c| *c == call) {
            return i;
        }
        self.aggs.push(call);
        self.aggs.len() - 1
    }
}

/// The aggregation step of a query plan.
#[derive(Debug, Clone)]
pub(crate) struct AggregatePlan {
    /// GROUP BY expressions over input rows (empty: one group, even for no input).
    pub groups: Vec<ScalarExpr>,
    /// Aggregate calls over input rows.
    pub aggs: Vec<AggCall>,
}

/// Whether `name` (folded) is an aggregate function.
pub(crate) fn is_aggregate(name: &str) -> bool {
    matches!(name, "count" | "sum" | "min" | "max" | "avg" | "string_agg")
}

/// Binds an aggregate call; `binder` binds its argument against the input rows.
pub(crate) fn bind_call(
    name: &str,
    f: &Function,
    binder: &mut ExprBinder<'_>,
) -> Result<AggCall, SqlError> {
    if !f.within_group.is_empty() {
        return Err(SqlError::unsupported("WITHIN GROUP is not supported"));
    }
    let filter = match &f.filter {
        Some(e) => Some(binder.bind_bool(e, "FILTER")?),
        None => None,
    };
    let FunctionArguments::List(list) = &f.args else {
        return Err(SqlError::undefined_function(name, &[]));
    };
    if !list.clauses.is_empty() {
        return Err(SqlError::unsupported(
            "ORDER BY inside aggregate calls is not supported yet",
        ));
    }
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "count" => {
            if distinct {
                return Err(SqlError::syntax("syntax error at or near \"*\""));
            }
            return Ok(AggCall {
                func: AggFunc::CountStar,
                arg: None,
                separator: None,
                distinct: false,
                filter,
                ty: SqlType::Int8,
            });
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => binder.bind_typed(e)?,
        [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(sep)),
        ] if name == "string_agg" => {
            let text = |b| implicit(b, SqlType::Text);
            let arg = text(binder.bind(e)?)?;
            let separator = text(binder.bind(sep)?)?;
            return Ok(AggCall {
                func: AggFunc::StringAgg,
                arg: Some(arg),
                separator: Some(Box::new(separator)),
                distinct,
                filter,
                ty: SqlType::Text,
            });
        }
        [] if name == "count" => {
            return Err(SqlError::new(
                "42809",
                "count(*) must be used to call a parameterless aggregate function",
            ));
        }
        args => {
            return Err(SqlError::undefined_function(name, &vec!["?"; args.len()]));
        }
    };
    let at = arg.ty();
    let (func, ty) = match name {
        "count" => (AggFunc::Count, Some(SqlType::Int8)),
        // As PostgreSQL: sum(int2/int4) is int8, sum(int8) and sum(numeric) numeric, avg of
        // integers and numerics numeric, of floats float8.
        "sum" => (
            AggFunc::Sum,
            match at {
                SqlType::Int2 | SqlType::Int4 => Some(SqlType::Int8),
                SqlType::Int8 | SqlType::Numeric => Some(SqlType::Numeric),
                SqlType::Float8 => Some(SqlType::Float8),
                _ => None,
            },
        ),
        "avg" => (
            AggFunc::Avg,
            match at {
                SqlType::Float8 => Some(SqlType::Float8),
                t if is_numeric(t) => Some(SqlType::Numeric),
                _ => None,
            },
        ),
        "min" => (AggFunc::Min, (at != SqlType::Bool).then_some(at)),
        "string_agg" => return Err(SqlError::undefined_function(name, &[at.pg_name()])),
        _ => (AggFunc::Max, (at != SqlType::Bool).then_some(at)),
    };
    let ty = ty.ok_or_else(|| SqlError::undefined_function(name, &[at.pg_name()]))?;
    Ok(AggCall {
        func,
        arg: Some(arg),
        separator: None,
        distinct,
        filter,
        ty,
    })
}

/// Whether `e` calls an aggregate function outside any nested aggregate's argument.
pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    let any = |es: &[&Expr]| es.iter().any(|e| contains_aggregate(e));
    match e {
        Expr::Function(f) => {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(super::names::ident)
                .unwrap_or_default();
            if is_aggregate(&name) && f.over.is_none() {
                return true;
            }
            match &f.args {
                FunctionArguments::List(list) => list.args.iter().any(|a| {
                    matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if contains_aggregate(e))
                }),
                _ => false,
            }
        }
        Expr::BinaryOp { left, right, .. } => any(&[left, right]),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::Cast { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotFalse(expr)
        | Expr::IsUnknown(expr)
        | Expr::IsNotUnknown(expr) => contains_aggregate(expr),
        Expr::IsDistinctFrom(l, r) | Expr::IsNotDistinctFrom(l, r) => any(&[l, r]),
        Expr::In {
            expr,
            target: InTarget::List(list),
            ..
        } => contains_aggregate(expr) || list.iter().any(contains_aggregate),
        Expr::Between {
            expr, low, high, ..
        } => any(&[expr, low, high]),
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
            any(&[expr, pattern])
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || conditions
                    .iter()
                    .any(|w| contains_aggregate(&w.condition) || contains_aggregate(&w.result))
                || else_result.as_deref().is_some_and(contains_aggregate)
        }
        // Calls with their own syntax in the grammar (`substr(max(s), 1, 2)` is one).
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            contains_aggregate(expr)
                || substring_from.as_deref().is_some_and(contains_aggregate)
                || substring_for.as_deref().is_some_and(contains_aggregate)
        }
        Expr::Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => {
            contains_aggregate(expr)
                || trim_what.as_deref().is_some_and(contains_aggregate)
                || trim_characters
                    .as_ref()
                    .is_some_and(|cs| cs.iter().any(contains_aggregate))
        }
        Expr::Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => {
            any(&[expr, overlay_what, overlay_from])
                || overlay_for.as_deref().is_some_and(contains_aggregate)
        }
        Expr::Ceil { expr, .. }
        | Expr::Floor { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Collate { expr, .. }
        | Expr::In { expr, .. } => contains_aggregate(expr),
        Expr::Position { expr, r#in } => any(&[expr, r#in]),
        Expr::AtTimeZone {
            timestamp,
            time_zone,
        } => any(&[timestamp, time_zone]),
        Expr::SimilarTo { expr, pattern, .. } => any(&[expr, pattern]),
        Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => any(&[left, right]),
        Expr::Tuple(es) => es.iter().any(contains_aggregate),
        _ => false,
    }
}
