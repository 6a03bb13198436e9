//! Binding function calls: aggregates (collected into the aggregate state), window functions,
//! scalar functions with PostgreSQL's argument conversion, and the functions SQL writes with
//! special syntax (`SUBSTRING(s FROM a FOR b)`, `TRIM(LEADING x FROM s)`, `POSITION(a IN b)`,
//! `CEIL`/`FLOOR`).

use sqlparser::ast::{
    CeilFloorKind, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, TrimWhereField,
};

use super::aggregate;
use super::bind::ExprBinder;
use super::coerce::{Bound, common_type, implicit};
use super::names::ident;
use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{Func, ScalarExpr, VolatileCall, VolatileFunc};

/// The string `version()` returns: PostgreSQL's shape, so tools that parse the leading
/// `PostgreSQL <major>.<minor>` see version 15.
fn version_string() -> String {
    format!(
        "PostgreSQL 15.0 (Meridian {}) on {}-{}, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

impl ExprBinder<'_> {
    /// Binds `name(args...)`.
    pub(super) fn bind_function(
        &mut self,
        f: &Function,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident)
            .unwrap_or_default();
        if f.over.is_some() {
            return self.bind_window_call(&name, f, pos);
        }
        if aggregate::is_aggregate(&name) {
            let Some(state) = self.agg.as_mut() else {
                let msg = if self.clause == "aggregate" {
                    "aggregate function calls cannot be nested".to_string()
                } else {
                    format!("aggregate functions are not allowed in {}", self.clause)
                };
                return Err(SqlError::new("42803", msg));
            };
            let group_count = state.groups.len();
            let mut inner =
                ExprBinder::new(self.ctx, self.scope, "aggregate").with_outer(self.outer);
            let call = aggregate::bind_call(&name, f, &mut inner)?;
            let ty = call.ty;
            let state = self
                .agg
                .as_mut()
                .ok_or_else(|| SqlError::internal("aggregate state vanished"))?;
            let idx = state.add(call);
            return Ok(Bound::known(ScalarExpr::Column(group_count + idx, ty), pos));
        }
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(SqlError::unsupported(
                "FILTER and WITHIN GROUP are only supported on aggregates",
            ));
        }
        let text = |s: &str| {
            Ok(Bound::known(
                ScalarExpr::Literal(Datum::Text(s.to_string()), SqlType::Text),
                pos,
            ))
        };
        if let Some(b) = self.bind_catalog_function(&name, f, pos)? {
            return Ok(b);
        }
        let args = match &f.args {
            FunctionArguments::None => {
                if let Some(b) = self.bind_volatile(&name, &[], pos)? {
                    return Ok(b);
                }
                return match self.session_value(&name) {
                    Some(v) => text(v),
                    None => Err(SqlError::undefined_column(&name)),
                };
            }
            FunctionArguments::Subquery(q) if name == "array" => {
                return self.bind_one_column(q, crate::expr::SubqueryKind::Array, pos);
            }
            FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported(
                    "a subquery as the argument list is not supported",
                ));
            }
            FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                    return Err(SqlError::syntax(format!(
                        "DISTINCT and ORDER BY are only allowed in aggregate calls, not in {name}()"
                    )));
                }
                list.args
                    .iter()
                    .map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => self.bind(e),
                        _ => Err(SqlError::unsupported(format!(
                            "this argument form of {name}() is not supported"
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if let Some(b) = self.bind_volatile(&name, &args, pos)? {
            return Ok(b);
        }
        match (name.as_str(), args.len()) {
            ("version", 0) => return text(&version_string()),
            ("current_database", 0) => return text(self.ctx.database),
            ("current_schema", 0) => return text("public"),
            // Catalog helpers psql's describe commands call (see `syscat.rs`): one owner,
            // every table visible on the search path, one encoding, no privileges arrays.
            ("pg_get_userbyid", 1) => return text("root"),
            ("pg_encoding_to_char", 1) => return text("UTF8"),
            ("pg_table_is_visible", 1) => {
                return Ok(Bound::known(
                    ScalarExpr::Literal(Datum::Bool(true), SqlType::Bool),
                    pos,
                ));
            }
            _ => {}
        }
        self.bind_call(&name, args, pos)
    }

    /// Binds a volatile function call (`nextval`, `currval`, `setval`, `unique_rowid`,
    /// `random`); `None` if `name` is not one.
    fn bind_volatile(
        &mut self,
        name: &str,
        args: &[Bound],
        pos: Option<u32>,
    ) -> Result<Option<Bound>, SqlError> {
        use SqlType::{Bool, Float8, Int8, Text};
        let (func, params, ty) = match (name, args.len()) {
            ("nextval", 1) => (VolatileFunc::NextVal, vec![Text], Int8),
            ("currval", 1) => (VolatileFunc::CurrVal, vec![Text], Int8),
            ("setval", 2) => (VolatileFunc::SetVal, vec![Text, Int8], Int8),
            ("setval", 3) => (VolatileFunc::SetVal, vec![Text, Int8, Bool], Int8),
            ("unique_rowid", 0) => (VolatileFunc::UniqueRowId, vec![], Int8),
            ("random", 0) => (VolatileFunc::Random, vec![], Float8),
            ("gen_random_uuid", 0) => (VolatileFunc::RandomUuid, vec![], SqlType::Uuid),
            ("cluster_logical_timestamp", 0) => (VolatileFunc::ReadTimestamp, vec![], Int8),
            ("now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp", 0) => {
                (VolatileFunc::Now, vec![], SqlType::TimestampTz)
            }
            ("current_date", 0) | ("localtimestamp", 0) => {
                let now = ScalarExpr::Volatile(Box::new(VolatileCall {
                    id: self.ctx.next_subquery_id(),
                    func: VolatileFunc::Now,
                    args: vec![],
                    ty: SqlType::TimestampTz,
                }));
                let to = if name == "current_date" {
                    SqlType::Date
                } else {
                    SqlType::Timestamp
                };
                return Ok(Some(Bound::known(
                    ScalarExpr::Cast {
                        expr: Box::new(now),
                        to: crate::types::TypeSpec::plain(to),
                        explicit: true,
                    },
                    pos,
                )));
            }
            _ => return Ok(None),
        };
        let args = args
            .iter()
            .cloned()
            .zip(params)
            .map(|(b, t)| {
                let compatible = b.ty() == t
                    || (crate::types::is_integer(b.ty()) && crate::types::is_integer(t));
                if !b.unknown && !compatible {
                    let names: Vec<&str> = args.iter().map(Bound::type_name).collect();
                    return Err(SqlError::undefined_function(name, &names));
                }
                implicit(b, t)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Bound::known(
            ScalarExpr::Volatile(Box::new(VolatileCall {
                id: self.ctx.next_subquery_id(),
                func,
                args,
                ty,
            })),
            pos,
        )))
    }

    /// Binds a call of the scalar function `name` on bound arguments.
    pub(super) fn bind_call(
        &mut self,
        name: &str,
        args: Vec<Bound>,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let arg_types: Vec<Option<SqlType>> =
            args.iter().map(|b| (!b.unknown).then(|| b.ty())).collect();
        let arg_names: Vec<&str> = args.iter().map(Bound::type_name).collect();
        let mut mismatch = None;
        let sig = Func::resolve(name, &arg_types, || {
            let refs: Vec<&Bound> = args.iter().collect();
            let t = common_type(&refs);
            if t.is_none() {
                mismatch = Some(SqlError::datatype_mismatch(format!(
                    "{} types {} cannot be matched",
                    name.to_ascii_uppercase(),
                    arg_names.join(" and ")
                )));
            }
            t
        });
        let Some(sig) = sig else {
            return Err(mismatch.unwrap_or_else(|| SqlError::undefined_function(name, &arg_names)));
        };
        let args = args
            .into_iter()
            .zip(&sig.args)
            .map(|(b, &t)| {
                let keeps_type = matches!(sig.func, Func::Concat | Func::ConcatWs);
                if !b.unknown && (b.ty() == t || keeps_type) {
                    Ok(b.expr)
                } else {
                    implicit(b, t)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bound::known(
            ScalarExpr::Func {
                func: sig.func,
                args,
                ty: sig.ret,
            },
            pos,
        ))
    }

    /// `SUBSTRING(s FROM a [FOR b])` / `SUBSTRING(s, a, b)`.
    pub(super) fn bind_substring(
        &mut self,
        expr: &Expr,
        from: Option<&Expr>,
        count: Option<&Expr>,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let mut args = vec![self.bind(expr)?];
        let one = Bound::known(ScalarExpr::Literal(Datum::Int(1), SqlType::Int4), pos);
        args.push(match from {
            Some(e) => self.bind(e)?,
            None => one,
        });
        if let Some(c) = count {
            args.push(self.bind(c)?);
        }
        self.bind_call("substr", args, pos)
    }

    /// `TRIM([BOTH | LEADING | TRAILING] [chars FROM] s)`.
    pub(super) fn bind_trim(
        &mut self,
        expr: &Expr,
        side: Option<&TrimWhereField>,
        what: Option<&Expr>,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let name = match side {
            None | Some(TrimWhereField::Both) => "btrim",
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
        };
        let mut args = vec![self.bind(expr)?];
        if let Some(w) = what {
            args.push(self.bind(w)?);
        }
        self.bind_call(name, args, pos)
    }

    /// `POSITION(sub IN s)`.
    pub(super) fn bind_position(
        &mut self,
        sub: &Expr,
        s: &Expr,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let args = vec![self.bind(s)?, self.bind(sub)?];
        self.bind_call("strpos", args, pos)
    }

    /// `CEIL(x)` / `FLOOR(x)` (without a `TO` unit).
    pub(super) fn bind_ceil_floor(
        &mut self,
        x: &Expr,
        field: &CeilFloorKind,
        floor: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        if !matches!(
            field,
            CeilFloorKind::DateTimeField(sqlparser::ast::DateTimeField::NoDateTime)
        ) {
            return Err(SqlError::unsupported(
                "CEIL/FLOOR with a unit is not supported",
            ));
        }
        let args = vec![self.bind(x)?];
        self.bind_call(if floor { "floor" } else { "ceil" }, args, pos)
    }
}
