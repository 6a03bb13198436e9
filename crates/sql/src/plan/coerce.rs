//! Type coercion of bound expressions: untyped literals, implicit, assignment and explicit
//! casts, and the operand typing of operators (PostgreSQL's rules for the supported types).

use sqlparser::ast::{DataType, Value};

use crate::api::{Datum, SqlError, SqlType};
use crate::catalog::ColumnDesc;
use crate::expr::{ArithOp, CastContext, CmpOp, ScalarExpr, can_cast, cast_datum, parse_text};
use crate::types::{self, TypeSpec, is_numeric, wider_int};

/// A bound expression that may still be an untyped literal.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// The expression (an unknown literal is a Text or NULL literal here).
    pub expr: ScalarExpr,
    /// True for a string literal, NULL or parameter whose type the context decides.
    pub unknown: bool,
    /// For an untyped parameter `$n`: `n - 1`.
    pub param: Option<usize>,
    /// Where the expression starts in the statement.
    pub pos: Option<u32>,
}

impl Bound {
    pub(crate) fn known(expr: ScalarExpr, pos: Option<u32>) -> Bound {
        Bound {
            expr,
            unknown: false,
            param: None,
            pos,
        }
    }

    /// The type, with unknown literals resolved to text.
    pub(crate) fn ty(&self) -> SqlType {
        self.expr.ty()
    }

    /// The type's name for error messages (`unknown` for untyped literals).
    pub(crate) fn type_name(&self) -> &'static str {
        if self.unknown {
            "unknown"
        } else {
            self.ty().pg_name()
        }
    }
}

/// Binds a literal.
pub(crate) fn bind_value(v: &Value, pos: Option<u32>) -> Result<Bound, SqlError> {
    let unknown = |d| {
        Ok(Bound {
            expr: ScalarExpr::Literal(d, SqlType::Text),
            unknown: true,
            param: None,
            pos,
        })
    };
    match v {
        Value::Number(n, _) => bind_number(n, pos),
        Value::SingleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::UnicodeStringLiteral(s)
        | Value::NationalStringLiteral(s) => unknown(Datum::Text(s.clone())),
        Value::DollarQuotedString(s) => unknown(Datum::Text(s.value.clone())),
        Value::Boolean(b) => Ok(Bound::known(
            ScalarExpr::Literal(Datum::Bool(*b), SqlType::Bool),
            pos,
        )),
        Value::Null => unknown(Datum::Null),
        Value::Placeholder(p) => Err(SqlError::unsupported(format!(
            "parameter {p} is not supported yet"
        ))),
        other => Err(SqlError::unsupported(format!(
            "literal is not supported yet: {other}"
        ))),
    }
}

/// A numeric literal: int4 if it fits, else int8, else (with a fraction or exponent, or too
/// large) numeric, as in PostgreSQL.
pub(crate) fn bind_number(n: &str, pos: Option<u32>) -> Result<Bound, SqlError> {
    let lit = |d, ty| Ok(Bound::known(ScalarExpr::Literal(d, ty), pos));
    if let Ok(v) = n.parse::<i32>() {
        return lit(Datum::Int(v.into()), SqlType::Int4);
    }
    if let Ok(v) = n.parse::<i64>() {
        return lit(Datum::Int(v), SqlType::Int8);
    }
    match crate::expr::numeric::parse(n) {
        Ok(d) => lit(d, SqlType::Numeric),
        Err(_) => Err(SqlError::out_of_range(format!(
            "\"{n}\" is out of range for type numeric"
        ))),
    }
}

/// Converts an unknown literal to `ty` at bind time; an untyped parameter takes the type.
fn resolve_literal(b: &Bound, to: TypeSpec, ctx: CastContext) -> Result<ScalarExpr, SqlError> {
    if let Some(n) = b.param {
        let p = ScalarExpr::Param(n, to.ty);
        // A length limit or a NUMERIC precision and scale still applies to the value.
        return Ok(if to.max_len.is_none() && to.numeric.is_none() {
            p
        } else {
            ScalarExpr::Cast {
                expr: Box::new(p),
                to,
                explicit: ctx == CastContext::Explicit,
            }
        });
    }
    let ScalarExpr::Literal(d, _) = &b.expr else {
        // An untyped value computed when the statement runs (an array element) converts as
        // a literal would, then.
        return Ok(ScalarExpr::Cast {
            expr: Box::new(b.expr.clone()),
            to,
            explicit: true,
        });
    };
    let d = match d {
        Datum::Null => Datum::Null,
        Datum::Text(s) => {
            let parsed = parse_text(s, to.ty).map_err(|e| e.with_position(b.pos))?;
            cast_datum(parsed, to.ty, to, ctx).map_err(|e| e.with_position(b.pos))?
        }
        other => other.clone(),
    };
    Ok(ScalarExpr::Literal(d, to.ty))
}

/// Coerces `b` to `to` in `ctx`; `Ok(None)` when no such cast is allowed.
fn coerce(b: Bound, to: TypeSpec, ctx: CastContext) -> Result<Option<ScalarExpr>, SqlError> {
    if b.unknown {
        return resolve_literal(&b, to, ctx).map(Some);
    }
    let from = b.ty();
    if from == to.ty && to.max_len.is_none() && to.numeric.is_none() {
        return Ok(Some(b.expr));
    }
    if !can_cast(from, to.ty, ctx) {
        return Ok(None);
    }
    let explicit = ctx == CastContext::Explicit;
    let cast = ScalarExpr::Cast {
        expr: Box::new(b.expr),
        to,
        explicit,
    };
    // A constant that fails to convert reports its error now, at its position.
    if cast.is_constant() {
        let d = cast.eval_const().map_err(|e| e.with_position(b.pos))?;
        return Ok(Some(ScalarExpr::Literal(d, to.ty)));
    }
    Ok(Some(cast))
}

/// An implicit cast to `ty` (the caller established that one exists).
pub(crate) fn implicit(b: Bound, ty: SqlType) -> Result<ScalarExpr, SqlError> {
    let name = b.type_name();
    coerce(b, TypeSpec::plain(ty), CastContext::Implicit)?.ok_or_else(|| {
        SqlError::datatype_mismatch(format!("cannot convert {name} to {}", ty.pg_name()))
    })
}

/// `CAST(b AS data_type)`.
pub(crate) fn explicit_cast(b: Bound, data_type: &DataType) -> Result<ScalarExpr, SqlError> {
    let spec = types::resolve(data_type)?;
    let from = b.type_name();
    coerce(b, spec, CastContext::Explicit)?.ok_or_else(|| {
        SqlError::new(
            "42846",
            format!("cannot cast type {from} to {}", types::display_name(spec)),
        )
    })
}

/// An assignment to `col`: PostgreSQL's 42804 when the types do not convert.
pub(crate) fn assign(b: Bound, col: &ColumnDesc, what: &str) -> Result<ScalarExpr, SqlError> {
    let from = b.type_name();
    let pos = b.pos;
    coerce(b, col.spec(), CastContext::Assignment)?.ok_or_else(|| {
        SqlError::datatype_mismatch(format!(
            "column \"{}\" is of type {} but {what} is of type {from}",
            col.name,
            types::display_name(col.spec())
        ))
        .with_hint("You will need to rewrite or cast the expression.")
        .with_position(pos)
    })
}

/// A condition: booleans pass, unknown literals parse as booleans, anything else is 42804.
pub(crate) fn to_bool(b: Bound, what: &str) -> Result<ScalarExpr, SqlError> {
    if b.unknown {
        return resolve_literal(&b, TypeSpec::plain(SqlType::Bool), CastContext::Implicit);
    }
    if b.ty() != SqlType::Bool {
        return Err(SqlError::datatype_mismatch(format!(
            "argument of {what} must be type boolean, not type {}",
            b.ty().pg_name()
        ))
        .with_position(b.pos));
    }
    Ok(b.expr)
}

/// The type all of `items` convert to implicitly (PostgreSQL's `select_common_type` for the
/// supported types): unknown literals adopt the others' type, integers widen, integers and
/// floats meet at float8; all-unknown is text.
pub(crate) fn common_type(items: &[&Bound]) -> Option<SqlType> {
    let mut acc: Option<SqlType> = None;
    for b in items.iter().filter(|b| !b.unknown) {
        let t = b.ty();
        acc = Some(match acc {
            None => t,
            Some(a) if a == t => a,
            Some(a) if datetime_rank(a).is_some() && datetime_rank(t).is_some() => {
                if datetime_rank(a) >= datetime_rank(t) {
                    a
                } else {
                    t
                }
            }
            Some(a) if is_numeric(a) && is_numeric(t) => {
                if a == SqlType::Float8 || t == SqlType::Float8 {
                    SqlType::Float8
                } else if a == SqlType::Numeric || t == SqlType::Numeric {
                    SqlType::Numeric
                } else {
                    wider_int(a, t)
                }
            }
            Some(_) => return None,
        });
    }
    Some(acc.unwrap_or(SqlType::Text))
}

/// Rank of the date/time types that convert into each other implicitly.
fn datetime_rank(t: SqlType) -> Option<u8> {
    match t {
        SqlType::Date => Some(0),
        SqlType::Timestamp => Some(1),
        SqlType::TimestampTz => Some(2),
        _ => None,
    }
}

/// The operand and result types of date/time arithmetic `l op r` (an untyped literal side takes
/// the type PostgreSQL would give it), or `None` if this is not date/time arithmetic.
fn datetime_types(
    op: ArithOp,
    l: Option<SqlType>,
    r: Option<SqlType>,
) -> Option<(SqlType, SqlType, SqlType)> {
    use SqlType::*;
    let stamp = |t: SqlType| matches!(t, Timestamp | TimestampTz);
    let int = |t: SqlType| crate::types::is_integer(t);
    // Untyped literals: an interval next to a timestamp or interval; next to a date, an integer
    // for `+` and a date for `-`.
    let guess = |other: SqlType| match (other, op) {
        (Date, ArithOp::Add) => Int4,
        (Date, _) => Date,
        _ => Interval,
    };
    let (l, r) = match (l, r) {
        (Some(l), Some(r)) => (l, r),
        (Some(l), None) if stamp(l) || l == Date || l == Interval => (l, guess(l)),
        (None, Some(r)) if stamp(r) || r == Date || r == Interval => (guess(r), r),
        _ => return None,
    };
    Some(match (l, op, r) {
        (Date, ArithOp::Add, i) if int(i) => (Date, i, Date),
        (i, ArithOp::Add, Date) if int(i) => (i, Date, Date),
        (Date, ArithOp::Sub, i) if int(i) => (Date, i, Date),
        (Date, ArithOp::Sub, Date) => (Date, Date, Int4),
        (Date, ArithOp::Add | ArithOp::Sub, Interval) => (Date, Interval, Timestamp),
        (Interval, ArithOp::Add, Date) => (Interval, Date, Timestamp),
        (t, ArithOp::Add | ArithOp::Sub, Interval) if stamp(t) => (t, Interval, t),
        (Interval, ArithOp::Add, t) if stamp(t) => (Interval, t, t),
        (a, ArithOp::Sub, b) if stamp(a) && (stamp(b) || b == Date) || a == Date && stamp(b) => {
            let t = if a == TimestampTz || b == TimestampTz {
                TimestampTz
            } else {
                Timestamp
            };
            (t, t, Interval)
        }
        (Interval, ArithOp::Add | ArithOp::Sub, Interval) => (Interval, Interval, Interval),
        (Interval, ArithOp::Mul | ArithOp::Div, n) if is_numeric(n) => (Interval, n, Interval),
        (n, ArithOp::Mul, Interval) if is_numeric(n) => (n, Interval, Interval),
        _ => return None,
    })
}

/// Makes two operands of a comparison comparable.
pub(crate) fn comparable_pair(
    l: Bound,
    r: Bound,
    op: &str,
) -> Result<(ScalarExpr, ScalarExpr), SqlError> {
    let ty = common_type(&[&l, &r])
        .ok_or_else(|| SqlError::undefined_operator(op, Some(l.type_name()), r.type_name()))?;
    // Integers of different widths compare directly (they share one representation).
    let target = |b: &Bound| {
        if types::is_integer(ty) && !b.unknown {
            b.ty()
        } else {
            ty
        }
    };
    let (lt, rt) = (target(&l), target(&r));
    Ok((implicit(l, lt)?, implicit(r, rt)?))
}

/// `l op r` for a comparison operator.
pub(crate) fn compare(op: CmpOp, l: Bound, r: Bound) -> Result<ScalarExpr, SqlError> {
    let (l, r) = comparable_pair(l, r, op.symbol())?;
    Ok(ScalarExpr::Compare {
        op,
        left: Box::new(l),
        right: Box::new(r),
    })
}

/// `l op r` for an arithmetic operator.
pub(crate) fn arithmetic(op: ArithOp, l: Bound, r: Bound) -> Result<ScalarExpr, SqlError> {
    let sym = op.symbol();
    if l.unknown && r.unknown {
        return Err(SqlError::new("42725", format!("operator is not unique: unknown {sym} unknown"))
            .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts."));
    }
    let mismatch = |l: &Bound, r: &Bound| {
        SqlError::undefined_operator(sym, Some(l.type_name()), r.type_name())
    };
    let known = |b: &Bound| (!b.unknown).then(|| b.ty());
    if let Some((lt, rt, ty)) = datetime_types(op, known(&l), known(&r)) {
        let (l, r) = (implicit(l, lt)?, implicit(r, rt)?);
        return Ok(ScalarExpr::Arith {
            op,
            left: Box::new(l),
            right: Box::new(r),
            ty,
        });
    }
    let (lt, rt) = match (l.unknown, r.unknown) {
        (true, _) => (r.ty(), r.ty()),
        (_, true) => (l.ty(), l.ty()),
        _ => (l.ty(), r.ty()),
    };
    if !is_numeric(lt) || !is_numeric(rt) {
        return Err(mismatch(&l, &r));
    }
    let float = lt == SqlType::Float8 || rt == SqlType::Float8;
    if float && op == ArithOp::Mod {
        return Err(mismatch(&l, &r));
    }
    let numeric = !float && (lt == SqlType::Numeric || rt == SqlType::Numeric);
    let ty = if float {
        SqlType::Float8
    } else if numeric {
        SqlType::Numeric
    } else {
        wider_int(lt, rt)
    };
    // Integer operands keep their own width (the result type decides overflow); a float or
    // numeric operation converts both sides.
    let (lt, rt) = if float || numeric { (ty, ty) } else { (lt, rt) };
    let (l, r) = (implicit(l, lt)?, implicit(r, rt)?);
    Ok(ScalarExpr::Arith {
        op,
        left: Box::new(l),
        right: Box::new(r),
        ty,
    })
}

/// `l || r`: text with anything (the non-text side converts to text); at least one side must be
/// text or an unknown literal.
pub(crate) fn concat(l: Bound, r: Bound) -> Result<ScalarExpr, SqlError> {
    let texty = |b: &Bound| b.unknown || b.ty() == SqlType::Text;
    if !texty(&l) && !texty(&r) {
        return Err(SqlError::undefined_operator(
            "||",
            Some(l.type_name()),
            r.type_name(),
        ));
    }
    let to_text = |b: Bound| -> Result<ScalarExpr, SqlError> {
        coerce(b, TypeSpec::plain(SqlType::Text), CastContext::Assignment)?
            .ok_or_else(|| SqlError::internal("every type converts to text"))
    };
    Ok(ScalarExpr::Concat(
        Box::new(to_text(l)?),
        Box::new(to_text(r)?),
    ))
}
