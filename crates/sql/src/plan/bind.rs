//! The expression binder: parsed expressions to typed [`ScalarExpr`]s.
//!
//! Type resolution follows PostgreSQL's rules closely enough for the supported types: string
//! literals and NULL start as type `unknown` and take the type their context needs (a
//! malformed literal fails with 22P02 at bind time, positioned at the literal); integers widen
//! implicitly to larger integers and to float8; everything else needs an explicit cast.
//! Constant subexpressions are folded.

use sqlparser::ast::{BinaryOperator, CastKind, Expr, InTarget, Spanned, UnaryOperator, Value};

use super::BindContext;
use super::aggregate::AggState;
pub(crate) use super::coerce::{Bound, assign};
use super::coerce::{
    arithmetic, bind_number, bind_value, common_type, comparable_pair, compare, concat,
    explicit_cast, implicit, to_bool,
};
use super::names::ident;
use super::scope::{Frame, Lookup, Scope, not_found};
use super::window::WindowState;
use crate::api::{Datum, SqlError, SqlType};
use crate::catalog::ColumnDesc;
use crate::expr::{ArithOp, CmpOp, ScalarExpr};
use crate::types::is_numeric;

/// Stack left below which a recursive step first grows the stack (see `stacker`).
pub(crate) const STACK_RED_ZONE: usize = 128 * 1024;
/// How much stack a growth adds.
pub(crate) const STACK_GROWTH: usize = 2 * 1024 * 1024;

/// Binds expressions in one scope.
pub(crate) struct ExprBinder<'a> {
    pub ctx: &'a BindContext<'a>,
    pub scope: &'a Scope,
    /// The enclosing queries, when binding inside a subquery.
    pub outer: Option<&'a Frame<'a>>,
    /// Set while binding the output of an aggregate query: aggregate calls are collected here
    /// and column references must match GROUP BY expressions.
    pub agg: Option<AggState>,
    /// The clause being bound, for "aggregate functions are not allowed in ..." errors.
    pub clause: &'static str,
    /// Set while binding a select list or ORDER BY: window calls are collected here.
    pub windows: Option<WindowState>,
}

impl<'a> ExprBinder<'a> {
    /// A binder without aggregation.
    pub(crate) fn new(
        ctx: &'a BindContext<'a>,
        scope: &'a Scope,
        clause: &'static str,
    ) -> ExprBinder<'a> {
        ExprBinder {
            ctx,
            scope,
            outer: None,
            agg: None,
            clause,
            windows: None,
        }
    }

    /// The same binder with enclosing queries reachable.
    pub(crate) fn with_outer(mut self, outer: Option<&'a Frame<'a>>) -> ExprBinder<'a> {
        self.outer = outer;
        self
    }

    fn pos_of(&self, e: &Expr) -> Option<u32> {
        self.ctx.position(e.span().start)
    }

    /// Binds `e` and resolves an unknown literal to text.
    pub(crate) fn bind_typed(&mut self, e: &Expr) -> Result<ScalarExpr, SqlError> {
        Ok(self.bind(e)?.expr)
    }

    /// Binds a condition (`WHERE`, `HAVING`, `AND` operands...): it must be boolean.
    pub(crate) fn bind_bool(&mut self, e: &Expr, what: &str) -> Result<ScalarExpr, SqlError> {
        let b = self.bind(e)?;
        to_bool(b, what)
    }

    /// Binds a value assigned to `col` (INSERT, UPDATE, DEFAULT) with assignment casts.
    pub(crate) fn bind_assign(
        &mut self,
        e: &Expr,
        col: &ColumnDesc,
        what: &str,
    ) -> Result<ScalarExpr, SqlError> {
        let b = self.bind(e)?;
        assign(b, col, what)
    }

    /// Binds `e`.
    pub(crate) fn bind(&mut self, e: &Expr) -> Result<Bound, SqlError> {
        // Binding recurses once per level of nesting; the parser bounds the depth, and the
        // stack grows on the heap when a deep expression would overflow the thread's.
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || self.bind_expr(e))
    }

    fn bind_expr(&mut self, e: &Expr) -> Result<Bound, SqlError> {
        if let Some(hit) = self.match_group(e) {
            return Ok(hit);
        }
        let pos = self.pos_of(e);
        let b = self.bind_inner(e).map_err(|err| err.with_position(pos))?;
        Ok(Bound {
            expr: b.expr.fold(),
            ..b
        })
    }

    /// In an aggregate query, an expression equal to a GROUP BY expression reads the group's
    /// value.
    fn match_group(&mut self, e: &Expr) -> Option<Bound> {
        let groups = &self.agg.as_ref()?.groups;
        if groups.is_empty() || matches!(e, Expr::Value(_)) {
            return None;
        }
        let mut plain = ExprBinder::new(self.ctx, self.scope, self.clause).with_outer(self.outer);
        let b = plain.bind(e).ok()?;
        let i = groups.iter().position(|g| *g == b.expr)?;
        Some(Bound::known(
            ScalarExpr::Column(i, b.expr.ty()),
            self.pos_of(e),
        ))
    }

    fn bind_inner(&mut self, e: &Expr) -> Result<Bound, SqlError> {
        let pos = self.pos_of(e);
        let known = |expr| Ok(Bound::known(expr, pos));
        match e {
            Expr::Identifier(id) => match self.bind_column(std::slice::from_ref(id)) {
                Err(e) if e.code == "42703" && id.quote_style.is_none() => {
                    match self.session_value(&ident(id)) {
                        Some(v) => known(ScalarExpr::Literal(
                            Datum::Text(v.to_string()),
                            SqlType::Text,
                        )),
                        None => Err(e),
                    }
                }
                other => other,
            },
            Expr::CompoundIdentifier(ids) => self.bind_column(ids),
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => self.bind_param(p, pos),
                other => bind_value(other, pos),
            },
            Expr::Nested(inner) => self.bind(inner),
            // Text compares byte-wise (the C collation); the collations that mean that, or the
            // database default, are accepted.
            Expr::Collate { expr, collation } => {
                let name = collation.to_string().to_ascii_lowercase().replace('"', "");
                let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                if !matches!(name, "default" | "c" | "posix" | "ucs_basic") {
                    return Err(SqlError::new(
                        "42704",
                        format!("collation \"{collation}\" does not exist"),
                    )
                    .with_hint("Meridian compares text byte by byte (collation \"C\")."));
                }
                self.bind(expr)
            }
            Expr::UnaryOp { op, expr } => self.bind_unary(*op, expr, pos),
            Expr::BinaryOp { left, op, right } => self.bind_binary(left, op, right, pos),
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let inner = self.bind_typed(x)?;
                known(ScalarExpr::IsNull {
                    expr: Box::new(inner),
                    negated: matches!(e, Expr::IsNotNull(_)),
                })
            }
            Expr::IsTrue(x) | Expr::IsNotTrue(x) | Expr::IsFalse(x) | Expr::IsNotFalse(x) => {
                let (value, negated, what) = match e {
                    Expr::IsTrue(_) => (true, false, "IS TRUE"),
                    Expr::IsNotTrue(_) => (true, true, "IS NOT TRUE"),
                    Expr::IsFalse(_) => (false, false, "IS FALSE"),
                    _ => (false, true, "IS NOT FALSE"),
                };
                let inner = self.bind_bool(x, what)?;
                known(ScalarExpr::IsBool {
                    expr: Box::new(inner),
                    value,
                    negated,
                })
            }
            Expr::IsUnknown(x) | Expr::IsNotUnknown(x) => {
                let what = if matches!(e, Expr::IsUnknown(_)) {
                    "IS UNKNOWN"
                } else {
                    "IS NOT UNKNOWN"
                };
                let inner = self.bind_bool(x, what)?;
                known(ScalarExpr::IsNull {
                    expr: Box::new(inner),
                    negated: matches!(e, Expr::IsNotUnknown(_)),
                })
            }
            Expr::IsDistinctFrom(l, r) | Expr::IsNotDistinctFrom(l, r) => {
                let (l, r) = (self.bind(l)?, self.bind(r)?);
                let (l, r) = comparable_pair(l, r, "=")?;
                let negated = matches!(e, Expr::IsNotDistinctFrom(..));
                known(ScalarExpr::IsDistinct {
                    left: Box::new(l),
                    right: Box::new(r),
                    negated,
                })
            }
            Expr::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                InTarget::List(list) => self.bind_in_list(expr, list, *negated, pos),
                InTarget::Subquery(q) => self.bind_in_subquery(expr, q, *negated, pos),
                _ => Err(SqlError::unsupported("this form of IN is not supported")),
            },
            Expr::Subquery(q) => self.bind_scalar_subquery(q, pos),
            Expr::Exists { subquery, negated } => self.bind_exists(subquery, *negated, pos),
            Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.bind_quantified(left, compare_op, right, false, pos),
            Expr::AllOp {
                left,
                compare_op,
                right,
            } => self.bind_quantified(left, compare_op, right, true, pos),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.bind(expr)?;
                let lo = self.bind(low)?;
                let hi = self.bind(high)?;
                let ge = compare(CmpOp::GtEq, x.clone(), lo)?;
                let le = compare(CmpOp::LtEq, x, hi)?;
                let both = ScalarExpr::And(Box::new(ge), Box::new(le));
                known(if *negated {
                    ScalarExpr::Not(Box::new(both))
                } else {
                    both
                })
            }
            Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(SqlError::unsupported("LIKE ANY is not supported yet"));
                }
                let ci = matches!(e, Expr::ILike { .. });
                self.bind_like(expr, pattern, escape_char.as_deref(), *negated, ci, pos)
            }
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some() || matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                    return Err(SqlError::unsupported(
                        "only CAST and :: casts are supported",
                    ));
                }
                if let Some(b) = self.bind_catalog_cast(expr, data_type, pos)? {
                    return Ok(b);
                }
                let inner = self.bind(expr)?;
                known(explicit_cast(inner, data_type)?)
            }
            Expr::Array(arr) => self.bind_array_literal(&arr.elem, pos),
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.bind_subscript(root, access_chain, pos)
            }
            Expr::TypedString(ts) => {
                let lit = bind_value(&ts.value.value, pos)?;
                known(explicit_cast(lit, &ts.data_type)?)
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.bind_case(operand.as_deref(), conditions, else_result.as_deref(), pos),
            Expr::Function(f) => self.bind_function(f, pos),
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => self.bind_substring(
                expr,
                substring_from.as_deref(),
                substring_for.as_deref(),
                pos,
            ),
            Expr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters: None,
            } => self.bind_trim(expr, trim_where.as_ref(), trim_what.as_deref(), pos),
            Expr::Position { expr, r#in } => self.bind_position(expr, r#in, pos),
            Expr::Ceil { expr, field } => self.bind_ceil_floor(expr, field, false, pos),
            Expr::Extract { field, expr, .. } => {
                let f = Bound::known(
                    ScalarExpr::Literal(
                        Datum::Text(field.to_string().to_ascii_lowercase()),
                        SqlType::Text,
                    ),
                    pos,
                );
                let x = self.bind(expr)?;
                self.bind_call("extract", vec![f, x], pos)
            }
            Expr::Interval(iv) if iv.leading_field.is_none() && iv.last_field.is_none() => {
                let inner = self.bind(&iv.value)?;
                known(explicit_cast(
                    inner,
                    &sqlparser::ast::DataType::Interval {
                        fields: None,
                        precision: None,
                    },
                )?)
            }
            Expr::Floor { expr, field } => self.bind_ceil_floor(expr, field, true, pos),
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => {
                Err(SqlError::syntax("\"*\" is not allowed here"))
            }
            other => Err(SqlError::unsupported(format!(
                "expression is not supported yet: {other}"
            ))),
        }
    }

    /// `$n`: typed if the client gave (or an earlier use fixed) its type, else untyped until
    /// the context decides.
    fn bind_param(&mut self, p: &str, pos: Option<u32>) -> Result<Bound, SqlError> {
        let n = p
            .strip_prefix('$')
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|n| (1..=65_535).contains(n))
            .ok_or_else(|| SqlError::syntax(format!("syntax error at or near \"{p}\"")))?;
        let i = n - 1;
        match self.ctx.param_type(i, None) {
            Some(ty) => Ok(Bound::known(ScalarExpr::Param(i, ty), pos)),
            None => Ok(Bound {
                expr: ScalarExpr::Param(i, SqlType::Text),
                unknown: true,
                param: Some(i),
                pos,
            }),
        }
    }

    /// The SQL value functions written without parentheses (`current_user`, ...).
    pub(super) fn session_value(&self, name: &str) -> Option<&'a str> {
        match name {
            "current_user" | "session_user" | "user" | "current_role" => Some(self.ctx.user),
            "current_catalog" => Some(self.ctx.database),
            "current_schema" => Some("public"),
            _ => None,
        }
    }

    fn bind_column(&mut self, ids: &[sqlparser::ast::Ident]) -> Result<Bound, SqlError> {
        let pos = ids.first().and_then(|i| self.ctx.position(i.span.start));
        match self.scope.lookup(ids, self.ctx)? {
            Lookup::Found(idx, ty) => {
                if self.agg.is_some() {
                    let col = ids.last().map(ident).unwrap_or_default();
                    let shown = match &self.scope.cols[idx].qualifier {
                        Some(r) => format!("{r}.{col}"),
                        None => col,
                    };
                    return Err(SqlError::new(
                        "42803",
                        format!("column \"{shown}\" must appear in the GROUP BY clause or be used in an aggregate function"),
                    )
                    .with_position(pos));
                }
                Ok(Bound::known(ScalarExpr::Column(idx, ty), pos))
            }
            Lookup::Missing { qualifier_known } => {
                let mut known = qualifier_known && ids.len() > 1;
                if let Some(frame) = self.outer
                    && let Some(e) = frame.resolve(ids, self.ctx, &mut known)?
                {
                    return Ok(Bound::known(e, pos));
                }
                Err(not_found(ids, known, self.ctx))
            }
        }
    }

    fn bind_unary(
        &mut self,
        op: UnaryOperator,
        x: &Expr,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        match op {
            UnaryOperator::Not => {
                let inner = self.bind_bool(x, "NOT")?;
                Ok(Bound::known(ScalarExpr::Not(Box::new(inner)), pos))
            }
            UnaryOperator::Minus | UnaryOperator::Plus => {
                // `-2147483648` is one int4 constant in PostgreSQL, not a negated int8.
                if let (UnaryOperator::Minus, Expr::Value(v)) = (op, x)
                    && let Value::Number(n, _) = &v.value
                {
                    return bind_number(&format!("-{n}"), pos);
                }
                let inner = self.bind(x)?;
                let sym = if op == UnaryOperator::Minus { "-" } else { "+" };
                if inner.unknown || !(is_numeric(inner.ty()) || inner.ty() == SqlType::Interval) {
                    return Err(SqlError::undefined_operator(sym, None, inner.type_name()));
                }
                Ok(if op == UnaryOperator::Minus {
                    Bound::known(ScalarExpr::Neg(Box::new(inner.expr)), pos)
                } else {
                    inner
                })
            }
            other => Err(SqlError::unsupported(format!(
                "operator is not supported yet: {other}"
            ))),
        }
    }

    fn bind_binary(
        &mut self,
        l: &Expr,
        op: &BinaryOperator,
        r: &Expr,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        // `OPERATOR(pg_catalog.~)` names a built-in operator explicitly (psql writes them so).
        if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
            return match builtin_operator(parts) {
                Some(b) => self.bind_binary(l, &b, r, pos),
                None => Err(SqlError::new(
                    "42883",
                    format!("operator does not exist: {op}"),
                )),
            };
        }
        let arith = match op {
            BinaryOperator::Plus => Some(ArithOp::Add),
            BinaryOperator::Minus => Some(ArithOp::Sub),
            BinaryOperator::Multiply => Some(ArithOp::Mul),
            BinaryOperator::Divide => Some(ArithOp::Div),
            BinaryOperator::Modulo => Some(ArithOp::Mod),
            _ => None,
        };
        let cmp = match op {
            BinaryOperator::Eq => Some(CmpOp::Eq),
            BinaryOperator::NotEq => Some(CmpOp::NotEq),
            BinaryOperator::Lt => Some(CmpOp::Lt),
            BinaryOperator::LtEq => Some(CmpOp::LtEq),
            BinaryOperator::Gt => Some(CmpOp::Gt),
            BinaryOperator::GtEq => Some(CmpOp::GtEq),
            _ => None,
        };
        let expr = if let Some(a) = arith {
            let (lb, rb) = (self.bind(l)?, self.bind(r)?);
            arithmetic(a, lb, rb)?
        } else if let Some(c) = cmp {
            let (lb, rb) = (self.bind(l)?, self.bind(r)?);
            compare(c, lb, rb)?
        } else {
            match op {
                BinaryOperator::And => ScalarExpr::And(
                    Box::new(self.bind_bool(l, "AND")?),
                    Box::new(self.bind_bool(r, "AND")?),
                ),
                BinaryOperator::Or => ScalarExpr::Or(
                    Box::new(self.bind_bool(l, "OR")?),
                    Box::new(self.bind_bool(r, "OR")?),
                ),
                BinaryOperator::StringConcat => {
                    let (lb, rb) = (self.bind(l)?, self.bind(r)?);
                    concat(lb, rb)?
                }
                BinaryOperator::PGRegexMatch
                | BinaryOperator::PGRegexIMatch
                | BinaryOperator::PGRegexNotMatch
                | BinaryOperator::PGRegexNotIMatch => self.bind_regex(l, op, r, pos)?,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "operator is not supported yet: {other}"
                    )));
                }
            }
        };
        Ok(Bound::known(expr, pos))
    }

    /// `l ~ r` and its variants, as calls of `textregexeq` / `texticregexeq`. Out of
    /// `bind_binary`, whose stack frame every level of a nested expression pays for.
    #[inline(never)]
    fn bind_regex(
        &mut self,
        l: &Expr,
        op: &BinaryOperator,
        r: &Expr,
        pos: Option<u32>,
    ) -> Result<ScalarExpr, SqlError> {
        let ci = matches!(
            op,
            BinaryOperator::PGRegexIMatch | BinaryOperator::PGRegexNotIMatch
        );
        let negated = matches!(
            op,
            BinaryOperator::PGRegexNotMatch | BinaryOperator::PGRegexNotIMatch
        );
        let (lb, rb) = (self.bind(l)?, self.bind(r)?);
        let name = if ci { "texticregexeq" } else { "textregexeq" };
        let call = self.bind_call(name, vec![lb, rb], pos)?.expr;
        Ok(if negated {
            ScalarExpr::Not(Box::new(call))
        } else {
            call
        })
    }

    pub(super) fn bind_in_list(
        &mut self,
        x: &Expr,
        list: &[Expr],
        negated: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let x = self.bind(x)?;
        let items = list
            .iter()
            .map(|e| self.bind(e))
            .collect::<Result<Vec<_>, _>>()?;
        let all: Vec<&Bound> = std::iter::once(&x).chain(&items).collect();
        let ty = common_type(&all).ok_or_else(|| {
            let other = items
                .iter()
                .find(|b| !b.unknown && b.ty() != x.ty())
                .unwrap_or(&x);
            SqlError::undefined_operator("=", Some(x.type_name()), other.type_name())
        })?;
        let x = implicit(x, ty)?;
        let list = items
            .into_iter()
            .map(|b| implicit(b, ty))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bound::known(
            ScalarExpr::InList {
                expr: Box::new(x),
                list,
                negated,
            },
            pos,
        ))
    }

    fn bind_like(
        &mut self,
        x: &Expr,
        pattern: &Expr,
        escape: Option<&Expr>,
        negated: bool,
        case_insensitive: bool,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let op = match (case_insensitive, negated) {
            (false, false) => "~~",
            (false, true) => "!~~",
            (true, false) => "~~*",
            (true, true) => "!~~*",
        };
        let (xb, pb) = (self.bind(x)?, self.bind(pattern)?);
        let text_like = |b: &Bound| b.unknown || b.ty() == SqlType::Text;
        if !text_like(&xb) || !text_like(&pb) {
            return Err(SqlError::undefined_operator(
                op,
                Some(xb.type_name()),
                pb.type_name(),
            ));
        }
        let escape = match escape {
            Some(e) => {
                let b = self.bind(e)?;
                if !text_like(&b) {
                    return Err(SqlError::datatype_mismatch("ESCAPE must be of type text"));
                }
                Some(Box::new(b.expr))
            }
            None => None,
        };
        Ok(Bound::known(
            ScalarExpr::Like {
                expr: Box::new(xb.expr),
                pattern: Box::new(pb.expr),
                escape,
                negated,
                case_insensitive,
            },
            pos,
        ))
    }

    fn bind_case(
        &mut self,
        operand: Option<&Expr>,
        conditions: &[sqlparser::ast::CaseWhen],
        otherwise: Option<&Expr>,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let operand = operand.map(|o| self.bind(o)).transpose()?;
        let mut conds = Vec::with_capacity(conditions.len());
        let mut results = Vec::with_capacity(conditions.len() + 1);
        for w in conditions {
            let cond = match &operand {
                Some(op) => compare(CmpOp::Eq, op.clone(), self.bind(&w.condition)?)?,
                None => self.bind_bool(&w.condition, "CASE/WHEN")?,
            };
            conds.push(cond);
            results.push(self.bind(&w.result)?);
        }
        if let Some(e) = otherwise {
            results.push(self.bind(e)?);
        }
        let refs: Vec<&Bound> = results.iter().collect();
        let ty = common_type(&refs).ok_or_else(|| {
            let names: Vec<&str> = results.iter().map(Bound::type_name).collect();
            SqlError::datatype_mismatch(format!(
                "CASE types {} cannot be matched",
                names.join(" and ")
            ))
        })?;
        let mut results = results
            .into_iter()
            .map(|b| implicit(b, ty))
            .collect::<Result<Vec<_>, _>>()?;
        let otherwise = if otherwise.is_some() {
            results.pop().map(Box::new)
        } else {
            None
        };
        let whens = conds.into_iter().zip(results).collect();
        Ok(Bound::known(
            ScalarExpr::Case {
                whens,
                otherwise,
                ty,
            },
            pos,
        ))
    }
}

/// The built-in operator that `OPERATOR(pg_catalog.op)` (or `OPERATOR(op)`) names. Kept out of
/// `bind_binary`, whose stack frame every level of a nested expression pays for.
#[inline(never)]
fn builtin_operator(parts: &[String]) -> Option<BinaryOperator> {
    let symbol = match parts {
        [schema, s] if schema.eq_ignore_ascii_case("pg_catalog") => s.as_str(),
        [s] => s.as_str(),
        _ => return None,
    };
    Some(match symbol {
        "~" => BinaryOperator::PGRegexMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}
