//! Expressions over whole batches with Arrow kernels, and the conversions between Arrow
//! arrays and [`Datum`]s.
//!
//! A kernel that fails, or that would give a value the row path rejects (integer overflow,
//! division by zero, a float that overflows), does not report anything itself: the batch is
//! evaluated again row by row with [`ScalarExpr::eval`], which gives the row path's answer,
//! error and all. That also covers errors the row path never meets because AND and OR stop
//! early (`x <> 0 AND 10 / x > 1`): the row evaluation skips them as the row path does.

use std::sync::Arc;

use arrow_arith::arity::try_binary;
use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{ArrowError, DataType};

use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{ArithOp, CmpOp, Env, ScalarExpr};
use crate::types::check_int_range;

/// The classes of values that have a column type here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    /// SMALLINT, INT, BIGINT: all [`Datum::Int`], as `Int64`.
    Int,
    Float,
    Text,
}

/// The Arrow class of `ty`, if it has one.
pub(super) fn kind(ty: SqlType) -> Option<Kind> {
    match ty {
        SqlType::Bool => Some(Kind::Bool),
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => Some(Kind::Int),
        SqlType::Float8 => Some(Kind::Float),
        SqlType::Text => Some(Kind::Text),
        _ => None,
    }
}

/// Whether the row path's comparison of values of these classes is one Arrow compares alike
/// (integers and floats compare as floats).
fn comparable(a: Kind, b: Kind) -> bool {
    a == b || matches!((a, b), (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int))
}

/// Whether [`eval`] evaluates `e` with kernels: column references, constants, parameters,
/// comparisons, AND/OR/NOT, IS [NOT] NULL, integer and float arithmetic, and IN lists of
/// constants, over Boolean, integer, float and text values; and any expression that reads no
/// column (a parameter cast to a column's type, `$1 * 2`), evaluated once per batch as the row
/// path would evaluate it.
pub(super) fn supported(e: &ScalarExpr) -> bool {
    use ScalarExpr::*;
    let Some(k) = kind(e.ty()) else {
        return false;
    };
    if e.is_row_independent() {
        return true;
    }
    match e {
        // Constants and parameters read no column: accepted above.
        Column(..) => true,
        Not(x) => kind(x.ty()) == Some(Kind::Bool) && supported(x),
        And(l, r) | Or(l, r) => {
            kind(l.ty()) == Some(Kind::Bool)
                && kind(r.ty()) == Some(Kind::Bool)
                && supported(l)
                && supported(r)
        }
        IsNull { expr, .. } => supported(expr),
        Compare { left, right, .. } => {
            matches!((kind(left.ty()), kind(right.ty())), (Some(a), Some(b)) if comparable(a, b))
                && supported(left)
                && supported(right)
        }
        InList { expr, list, .. } => {
            let Some(a) = kind(expr.ty()) else {
                return false;
            };
            supported(expr)
                && list.iter().all(|item| {
                    item.is_row_independent()
                        && !item.has_subquery()
                        && kind(item.ty()).is_some_and(|b| comparable(a, b))
                        && supported(item)
                })
        }
        Arith {
            op,
            left,
            right,
            ty,
        } => {
            let (Some(a), Some(b)) = (kind(left.ty()), kind(right.ty())) else {
                return false;
            };
            let operands = match k {
                Kind::Int => a == Kind::Int && b == Kind::Int && *ty != SqlType::Float8,
                Kind::Float => {
                    *op != ArithOp::Mod
                        && matches!(a, Kind::Int | Kind::Float)
                        && matches!(b, Kind::Int | Kind::Float)
                }
                _ => false,
            };
            operands && supported(left) && supported(right)
        }
        _ => false,
    }
}

/// An error of the row path, at the row of the batch where the row path meets it.
#[derive(Debug)]
pub(super) struct Failed {
    pub row: usize,
    pub err: SqlError,
}

/// The kernels could not give the row path's values (see the module docs).
struct Fallback;

impl From<ArrowError> for Fallback {
    fn from(_: ArrowError) -> Fallback {
        Fallback
    }
}

/// The values of `e` over every row of `batch`, or the row path's first error.
pub(super) fn eval(e: &ScalarExpr, batch: &RecordBatch, env: &Env<'_>) -> Result<ArrayRef, Failed> {
    match kernel(e, batch, env) {
        Ok(a) => Ok(a),
        Err(Fallback) => by_rows(e, batch, env),
    }
}

/// [`eval`] row by row, as the row path evaluates.
fn by_rows(e: &ScalarExpr, batch: &RecordBatch, env: &Env<'_>) -> Result<ArrayRef, Failed> {
    let k = kind(e.ty()).ok_or_else(|| Failed {
        row: 0,
        err: SqlError::internal(format!("no column type for {:?}", e.ty())),
    })?;
    let mut values = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let r = row_of(batch, row);
        values.push(e.eval(&r, env).map_err(|err| Failed { row, err })?);
    }
    array_of(k, values.iter()).map_err(|err| Failed { row: 0, err })
}

/// Row `i` of `batch` as the row path holds it.
pub(super) fn row_of(batch: &RecordBatch, i: usize) -> Vec<Datum> {
    batch.columns().iter().map(|c| datum_at(c, i)).collect()
}

/// The value at `i` of `a`.
pub(super) fn datum_at(a: &ArrayRef, i: usize) -> Datum {
    if a.is_null(i) {
        return Datum::Null;
    }
    match a.data_type() {
        DataType::Boolean => Datum::Bool(a.as_boolean().value(i)),
        DataType::Int64 => Datum::Int(a.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Datum::Float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Datum::Text(a.as_string::<i32>().value(i).to_string()),
        _ => Datum::Null,
    }
}

/// An array of `kind` holding `values` (NULLs and values of that class).
pub(super) fn array_of<'d>(
    kind: Kind,
    values: impl ExactSizeIterator<Item = &'d Datum>,
) -> Result<ArrayRef, SqlError> {
    let mut b = Builder::new(kind, values.len());
    for v in values {
        b.push(v)?;
    }
    Ok(b.finish())
}

/// A column being built.
pub(super) enum Builder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
}

impl Builder {
    pub(super) fn new(kind: Kind, capacity: usize) -> Builder {
        match kind {
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Int => Builder::Int(Int64Builder::with_capacity(capacity)),
            Kind::Float => Builder::Float(Float64Builder::with_capacity(capacity)),
            Kind::Text => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    /// Appends `v`, which must be NULL or of the builder's class.
    pub(super) fn push(&mut self, v: &Datum) -> Result<(), SqlError> {
        match (self, v) {
            (Builder::Bool(b), Datum::Null) => b.append_null(),
            (Builder::Int(b), Datum::Null) => b.append_null(),
            (Builder::Float(b), Datum::Null) => b.append_null(),
            (Builder::Text(b), Datum::Null) => b.append_null(),
            (Builder::Bool(b), Datum::Bool(x)) => b.append_value(*x),
            (Builder::Int(b), Datum::Int(x)) => b.append_value(*x),
            (Builder::Float(b), Datum::Float(x)) => b.append_value(*x),
            (Builder::Text(b), Datum::Text(x)) => b.append_value(x),
            (_, v) => {
                return Err(SqlError::internal(format!(
                    "value {v:?} in a column of another type"
                )));
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// `e` over `batch` with kernels.
fn kernel(e: &ScalarExpr, batch: &RecordBatch, env: &Env<'_>) -> Result<ArrayRef, Fallback> {
    use ScalarExpr::*;
    let n = batch.num_rows();
    Ok(match e {
        Column(i, _) => batch.columns().get(*i).cloned().ok_or(Fallback)?,
        Literal(..) | Param(..) | Outer(..) => constant(e, n, env)?,
        Not(x) => Arc::new(not(&boolean(kernel(x, batch, env)?)?)?),
        And(l, r) => {
            let (l, r) = (kernel(l, batch, env)?, kernel(r, batch, env)?);
            Arc::new(and_kleene(&boolean(l)?, &boolean(r)?)?)
        }
        Or(l, r) => {
            let (l, r) = (kernel(l, batch, env)?, kernel(r, batch, env)?);
            Arc::new(or_kleene(&boolean(l)?, &boolean(r)?)?)
        }
        IsNull { expr, negated } => {
            let a = kernel(expr, batch, env)?;
            Arc::new(if *negated {
                is_not_null(&a)?
            } else {
                is_null(&a)?
            })
        }
        Compare { op, left, right } => {
            let (l, r) = (kernel(left, batch, env)?, kernel(right, batch, env)?);
            Arc::new(compare(*op, l, r)?)
        }
        InList {
            expr,
            list,
            negated,
        } => {
            let x = kernel(expr, batch, env)?;
            let mut any: Option<BooleanArray> = None;
            for item in list {
                let eq = compare(CmpOp::Eq, x.clone(), constant(item, n, env)?)?;
                any = Some(match any {
                    None => eq,
                    Some(a) => or_kleene(&a, &eq)?,
                });
            }
            let any = any.ok_or(Fallback)?;
            Arc::new(if *negated { not(&any)? } else { any })
        }
        Arith {
            op,
            left,
            right,
            ty,
        } => {
            let (l, r) = (kernel(left, batch, env)?, kernel(right, batch, env)?);
            if *ty == SqlType::Float8 {
                let (l, r) = (floats(&l)?, floats(&r)?);
                let op = *op;
                Arc::new(try_binary::<_, _, _, Float64Type>(
                    &l,
                    &r,
                    |a: f64, b: f64| float_op(op, a, b),
                )?)
            } else {
                let (l, r) = (ints(&l)?, ints(&r)?);
                let (op, ty) = (*op, *ty);
                Arc::new(try_binary::<_, _, _, Int64Type>(l, r, |a: i64, b: i64| {
                    int_op(op, a, b, ty)
                })?)
            }
        }
        _ if e.is_row_independent() => constant(e, n, env)?,
        _ => return Err(Fallback),
    })
}

/// A row-independent expression's value, repeated `n` times.
fn constant(e: &ScalarExpr, n: usize, env: &Env<'_>) -> Result<ArrayRef, Fallback> {
    let v = match e {
        ScalarExpr::Literal(d, _) => d.clone(),
        _ => e.eval(&[], env).map_err(|_| Fallback)?,
    };
    let k = kind(e.ty()).ok_or(Fallback)?;
    array_of(k, std::iter::repeat_n(&v, n)).map_err(|_| Fallback)
}

fn boolean(a: ArrayRef) -> Result<BooleanArray, Fallback> {
    a.as_boolean_opt().cloned().ok_or(Fallback)
}

fn ints(a: &ArrayRef) -> Result<&Int64Array, Fallback> {
    a.as_primitive_opt::<Int64Type>().ok_or(Fallback)
}

/// `a` as floats: integers convert as the row path converts them (`as f64`).
fn floats(a: &ArrayRef) -> Result<Float64Array, Fallback> {
    match a.data_type() {
        DataType::Float64 => Ok(a.as_primitive::<Float64Type>().clone()),
        DataType::Int64 => Ok(a.as_primitive::<Int64Type>().unary(|v| v as f64)),
        _ => Err(Fallback),
    }
}

/// Floats as PostgreSQL orders them under Arrow's total order: every NaN is the one positive
/// NaN (greater than every number, equal to itself) and `-0` is `0`.
fn normalized(a: &Float64Array) -> Float64Array {
    a.unary(|v| {
        if v.is_nan() {
            f64::NAN
        } else if v == 0.0 {
            0.0
        } else {
            v
        }
    })
}

/// `l op r`, NULL where either is NULL.
fn compare(op: CmpOp, l: ArrayRef, r: ArrayRef) -> Result<BooleanArray, Fallback> {
    use arrow_ord::cmp;
    let (l, r): (ArrayRef, ArrayRef) =
        if *l.data_type() == DataType::Float64 || *r.data_type() == DataType::Float64 {
            (
                Arc::new(normalized(&floats(&l)?)),
                Arc::new(normalized(&floats(&r)?)),
            )
        } else {
            (l, r)
        };
    Ok(match op {
        CmpOp::Eq => cmp::eq(&l, &r)?,
        CmpOp::NotEq => cmp::neq(&l, &r)?,
        CmpOp::Lt => cmp::lt(&l, &r)?,
        CmpOp::LtEq => cmp::lt_eq(&l, &r)?,
        CmpOp::Gt => cmp::gt(&l, &r)?,
        CmpOp::GtEq => cmp::gt_eq(&l, &r)?,
    })
}

fn refused() -> ArrowError {
    ArrowError::ComputeError("left to the row path".to_string())
}

/// Integer arithmetic as `expr/ops.rs` does it; anything it would reject is refused (and the
/// row path then reports it).
fn int_op(op: ArithOp, a: i64, b: i64, ty: SqlType) -> Result<i64, ArrowError> {
    let v = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Sub => a.checked_sub(b),
        ArithOp::Mul => a.checked_mul(b),
        ArithOp::Div if b == 0 => None,
        ArithOp::Div => a.checked_div(b),
        ArithOp::Mod if b == 0 => None,
        ArithOp::Mod => Some(if b == -1 { 0 } else { a % b }),
    };
    v.and_then(|v| check_int_range(v, ty).ok())
        .ok_or_else(refused)
}

/// Float arithmetic as `expr/ops.rs` does it, refusing division by zero, overflow and
/// underflow.
fn float_op(op: ArithOp, a: f64, b: f64) -> Result<f64, ArrowError> {
    let v = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div if b == 0.0 => return Err(refused()),
        ArithOp::Div => a / b,
        ArithOp::Mod => return Err(refused()),
    };
    let overflow = v.is_infinite() && a.is_finite() && b.is_finite();
    let underflow = match op {
        ArithOp::Mul => v == 0.0 && a != 0.0 && b != 0.0,
        ArithOp::Div => v == 0.0 && a != 0.0 && !b.is_infinite(),
        _ => false,
    };
    if overflow || underflow {
        return Err(refused());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeSpec;
    use meridian_storage::keycode::Decimal;

    /// `y > $1` where `$1` is NUMERIC, as a statement of the simple query protocol sharing its
    /// plan with others of its shape is planned: the parameter, cast to the column's type.
    fn float_above_numeric_param() -> ScalarExpr {
        ScalarExpr::Compare {
            op: CmpOp::Gt,
            left: Box::new(ScalarExpr::Column(0, SqlType::Float8)),
            right: Box::new(ScalarExpr::Cast {
                expr: Box::new(ScalarExpr::Param(0, SqlType::Numeric)),
                to: TypeSpec::plain(SqlType::Float8),
                explicit: false,
            }),
        }
    }

    #[test]
    fn an_expression_that_reads_no_column_is_a_constant_of_the_batch() {
        let e = float_above_numeric_param();
        assert!(supported(&e));
        let ys: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.2), Some(0.7), None]));
        let batch = RecordBatch::try_from_iter([("y", ys)]).unwrap();
        let params = [Datum::Numeric("0.5".parse::<Decimal>().unwrap(), 1)];
        let env = Env {
            params: &params,
            ..Env::EMPTY
        };
        let by_kernels = kernel(&e, &batch, &env).map_err(|_| "no kernel").unwrap();
        let by_rows = by_rows(&e, &batch, &env).unwrap();
        let values = |a: &ArrayRef| (0..a.len()).map(|i| datum_at(a, i)).collect::<Vec<_>>();
        assert_eq!(
            values(&by_kernels),
            [Datum::Bool(false), Datum::Bool(true), Datum::Null]
        );
        assert_eq!(values(&by_kernels), values(&by_rows));
        // A volatile function reads no column but is not a constant.
        let random = ScalarExpr::Volatile(Box::new(crate::expr::VolatileCall {
            id: 0,
            func: crate::expr::VolatileFunc::Random,
            args: vec![],
            ty: SqlType::Float8,
        }));
        assert!(!supported(&random));
    }
}
