//! Set-returning functions in FROM: `generate_series(start, stop [, step])` over integers and
//! `unnest(array)` (arrays are text, see `expr/array.rs`).
//!
//! Their arguments are bound in the enclosing query's scope, so inside a subquery they may read
//! the outer row (`FROM generate_series(1, t.n)` in a correlated subquery); they are evaluated
//! each time the FROM item runs.

use sqlparser::ast::{FunctionArg, FunctionArgExpr, ObjectName, TableAlias, TableFunctionArgs};

use super::BindContext;
use super::bind::ExprBinder;
use super::coerce::implicit;
use super::from::Source;
use super::names::{ident, parts};
use super::rel::Rel;
use super::scope::{Frame, Scope};
use crate::api::{SqlError, SqlType};
use crate::types::{is_integer, wider_int};

/// A set-returning function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableFunc {
    /// `generate_series(start, stop [, step])`.
    GenerateSeries,
    /// `unnest(array)`.
    Unnest,
}

impl TableFunc {
    /// The SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TableFunc::GenerateSeries => "generate_series",
            TableFunc::Unnest => "unnest",
        }
    }
}

/// Binds `name(args) [AS alias [(column)]]` in FROM.
pub(super) fn bind(
    name: &ObjectName,
    args: &TableFunctionArgs,
    alias: Option<&TableAlias>,
    ctx: &BindContext<'_>,
    outer: Option<&Frame<'_>>,
) -> Result<(Source, Scope), SqlError> {
    let fname = match parts(name)?.as_slice() {
        [f] => ident(f),
        [schema, f] if ident(schema) == "pg_catalog" => ident(f),
        _ => {
            return Err(SqlError::unsupported(format!(
                "function {name} in FROM is not supported"
            )));
        }
    };
    let scope = Scope::empty();
    let mut binder = ExprBinder::new(ctx, &scope, "functions in FROM").with_outer(outer);
    let bound = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => binder.bind(e),
            _ => Err(SqlError::unsupported(format!(
                "this argument form of {fname}() is not supported"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = bound.iter().map(|b| b.type_name()).collect();
    let (func, ty, args) = match (fname.as_str(), bound.len()) {
        ("generate_series", 2 | 3) => {
            let known: Vec<SqlType> = bound
                .iter()
                .filter(|b| !b.unknown)
                .map(|b| b.ty())
                .collect();
            if !known.iter().all(|t| is_integer(*t)) {
                return Err(SqlError::undefined_function(&fname, &names));
            }
            // generate_series has int4 and int8 forms; smaller integers widen to int4.
            let ty = match known.into_iter().fold(SqlType::Int4, wider_int) {
                SqlType::Int8 => SqlType::Int8,
                _ => SqlType::Int4,
            };
            let args = bound
                .into_iter()
                .map(|b| implicit(b, ty))
                .collect::<Result<Vec<_>, _>>()?;
            (TableFunc::GenerateSeries, ty, args)
        }
        ("unnest", 1) => {
            let b = bound.into_iter().next().map(|b| implicit(b, SqlType::Text));
            let arg = b.ok_or_else(|| SqlError::internal("unnest without argument"))??;
            if arg.ty() != SqlType::Text {
                return Err(SqlError::undefined_function(&fname, &names));
            }
            (TableFunc::Unnest, SqlType::Text, vec![arg])
        }
        _ => return Err(SqlError::undefined_function(&fname, &names)),
    };
    // The column is named by the alias's column list, else by the alias, else by the
    // function, as in PostgreSQL.
    let qualifier = alias.map_or_else(|| fname.clone(), |a| ident(&a.name));
    let column = alias
        .and_then(|a| a.columns.first())
        .map(|c| ident(&c.name))
        .unwrap_or_else(|| qualifier.clone());
    if alias.is_some_and(|a| a.columns.len() > 1) {
        return Err(SqlError::syntax(format!(
            "too many column aliases specified for function {fname}"
        )));
    }
    let scope = Scope::named(Some(&qualifier), &[column], &[ty]);
    Ok((Source::Rel(Rel::Function { func, args }), scope))
}

/// The rows of `func` over evaluated arguments; `limit` bounds how many it may produce.
pub(crate) fn rows(
    func: TableFunc,
    args: &[crate::api::Datum],
    limit: usize,
) -> Result<Vec<Vec<crate::api::Datum>>, SqlError> {
    use crate::api::Datum;
    if args.contains(&Datum::Null) {
        return Ok(vec![]);
    }
    let too_many = || {
        SqlError::new(
            "53200",
            format!(
                "out of memory: {} would produce more than {limit} rows",
                func.name()
            ),
        )
    };
    match func {
        TableFunc::Unnest => {
            let Datum::Text(t) = &args[0] else {
                return Err(SqlError::internal("unnest of a non-text value"));
            };
            Ok(crate::expr::array::parse(t)?
                .into_iter()
                .map(|e| vec![e.map_or(Datum::Null, Datum::Text)])
                .collect())
        }
        TableFunc::GenerateSeries => {
            let int = |d: &Datum| match d {
                Datum::Int(i) => Ok(*i),
                other => Err(SqlError::internal(format!("generate_series of {other:?}"))),
            };
            let (start, stop) = (int(&args[0])?, int(&args[1])?);
            let step = match args.get(2) {
                Some(s) => int(s)?,
                None => 1,
            };
            if step == 0 {
                return Err(SqlError::new("22023", "step size cannot equal zero"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= stop) || (step < 0 && i >= stop) {
                if out.len() >= limit {
                    return Err(too_many());
                }
                out.push(vec![Datum::Int(i)]);
                match i.checked_add(step) {
                    Some(next) => i = next,
                    None => break,
                }
            }
            Ok(out)
        }
    }
}
