//! Arithmetic and comparison with PostgreSQL's overflow, division and ordering rules.

use std::cmp::Ordering;

use meridian_storage::keycode::Decimal;

use crate::api::{Datum, SqlError, SqlType};
use crate::types::{check_int_range, int_out_of_range};

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    /// The operator as written in SQL.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// Whether `left op right` holds given `left.cmp(right)`.
    pub(crate) fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::NotEq => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::LtEq => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::GtEq => ord != Ordering::Less,
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    /// The operator as written in SQL.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

/// Applies `op`; `ty` is the result type (an integer type, or Float8).
pub(crate) fn arith(op: ArithOp, l: Datum, r: Datum, ty: SqlType) -> Result<Datum, SqlError> {
    match (l, r) {
        (Datum::Null, _) | (_, Datum::Null) => Ok(Datum::Null),
        (a, b) if is_datetime(&a) || is_datetime(&b) => super::datetime::arith(op, a, b),
        (a, b) if ty == SqlType::Numeric => {
            let (a, sa) = as_numeric(a)?;
            let (b, sb) = as_numeric(b)?;
            super::numeric::arith(op, &a, sa, &b, sb)
        }
        (Datum::Int(a), Datum::Int(b)) if ty != SqlType::Float8 => {
            int_arith(op, a, b, ty).map(Datum::Int)
        }
        (a, b) => match (as_f64(&a), as_f64(&b)) {
            (Some(a), Some(b)) => float_arith(op, a, b).map(Datum::Float),
            _ => Err(SqlError::internal(format!("arithmetic on {a:?} and {b:?}"))),
        },
    }
}

/// Whether `d` takes part in date/time arithmetic.
fn is_datetime(d: &Datum) -> bool {
    matches!(
        d,
        Datum::Date(_) | Datum::Timestamp(_) | Datum::TimestampTz(_) | Datum::Interval(_)
    )
}

fn as_f64(d: &Datum) -> Option<f64> {
    match d {
        Datum::Int(v) => Some(*v as f64),
        Datum::Float(v) => Some(*v),
        Datum::Numeric(v, _) => Some(v.to_f64()),
        _ => None,
    }
}

/// An operand of numeric arithmetic (integers convert exactly).
fn as_numeric(d: Datum) -> Result<(Decimal, u16), SqlError> {
    match d {
        Datum::Numeric(v, s) => Ok((v, s)),
        Datum::Int(v) => Ok((Decimal::from(v), 0)),
        other => Err(SqlError::internal(format!(
            "numeric arithmetic on {other:?}"
        ))),
    }
}

fn int_arith(op: ArithOp, a: i64, b: i64, ty: SqlType) -> Result<i64, SqlError> {
    let v = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Sub => a.checked_sub(b),
        ArithOp::Mul => a.checked_mul(b),
        ArithOp::Div => {
            if b == 0 {
                return Err(SqlError::division_by_zero());
            }
            a.checked_div(b)
        }
        ArithOp::Mod => {
            if b == 0 {
                return Err(SqlError::division_by_zero());
            }
            // i64::MIN % -1 overflows in Rust; mathematically (and in PostgreSQL) it is 0.
            Some(if b == -1 { 0 } else { a % b })
        }
    };
    check_int_range(v.ok_or_else(|| int_out_of_range(ty))?, ty)
}

fn float_arith(op: ArithOp, a: f64, b: f64) -> Result<f64, SqlError> {
    let v = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => {
            if b == 0.0 {
                return Err(SqlError::division_by_zero());
            }
            a / b
        }
        ArithOp::Mod => {
            return Err(SqlError::undefined_operator(
                "%",
                Some("double precision"),
                "double precision",
            ));
        }
    };
    // PostgreSQL reports overflow when finite inputs give an infinite result, and underflow
    // when a product or quotient of non-zero finite values rounds to zero.
    if v.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(SqlError::out_of_range("value out of range: overflow"));
    }
    let underflow = match op {
        ArithOp::Mul => v == 0.0 && a != 0.0 && b != 0.0,
        ArithOp::Div => v == 0.0 && a != 0.0 && !b.is_infinite(),
        _ => false,
    };
    if underflow {
        return Err(SqlError::out_of_range("value out of range: underflow"));
    }
    Ok(v)
}

/// Unary minus.
pub(crate) fn negate(d: Datum, ty: SqlType) -> Result<Datum, SqlError> {
    match d {
        Datum::Null => Ok(Datum::Null),
        Datum::Int(v) => {
            let n = v.checked_neg().ok_or_else(|| int_out_of_range(ty))?;
            check_int_range(n, ty).map(Datum::Int)
        }
        Datum::Float(v) => Ok(Datum::Float(-v)),
        Datum::Numeric(v, s) => Ok(Datum::Numeric(v.neg(), s)),
        Datum::Interval(i) => Ok(Datum::Interval(super::datetime::negate(&i)?)),
        other => Err(SqlError::internal(format!("negation of {other:?}"))),
    }
}

/// PostgreSQL's float order: every NaN equals every other NaN and is greater than every
/// number; `-0` equals `0`.
fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Compares two values of comparable types; `None` if either is NULL. Text compares by bytes
/// (the C collation), which is also the order of the key encoding.
pub(crate) fn cmp_datums(a: &Datum, b: &Datum) -> Option<Ordering> {
    Some(match (a, b) {
        (Datum::Null, _) | (_, Datum::Null) => return None,
        (Datum::Bool(x), Datum::Bool(y)) => x.cmp(y),
        (Datum::Int(x), Datum::Int(y)) => x.cmp(y),
        (Datum::Float(x), Datum::Float(y)) => cmp_f64(*x, *y),
        (Datum::Int(x), Datum::Float(y)) => cmp_f64(*x as f64, *y),
        (Datum::Float(x), Datum::Int(y)) => cmp_f64(*x, *y as f64),
        (Datum::Text(x), Datum::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Datum::Timestamp(x), Datum::Timestamp(y)) => x.cmp(y),
        (Datum::Numeric(x, _), Datum::Numeric(y, _)) => x.cmp(y),
        (Datum::Date(x), Datum::Date(y)) => x.cmp(y),
        (Datum::TimestampTz(x), Datum::TimestampTz(y)) => x.cmp(y),
        (Datum::Interval(x), Datum::Interval(y)) => {
            super::datetime::interval_micros(x).cmp(&super::datetime::interval_micros(y))
        }
        (Datum::Uuid(x), Datum::Uuid(y)) => x.cmp(y),
        (Datum::Bytea(x), Datum::Bytea(y)) => x.cmp(y),
        (Datum::Numeric(x, _), Datum::Int(y)) => x.cmp(&Decimal::from(*y)),
        (Datum::Int(x), Datum::Numeric(y, _)) => Decimal::from(*x).cmp(y),
        (Datum::Numeric(x, _), Datum::Float(y)) => cmp_f64(x.to_f64(), *y),
        (Datum::Float(x), Datum::Numeric(y, _)) => cmp_f64(*x, y.to_f64()),
        // The binder never compares values of different kinds; order them by kind so that
        // sorting stays total even if it did.
        _ => kind(a).cmp(&kind(b)),
    })
}

fn kind(d: &Datum) -> u8 {
    match d {
        Datum::Null => 0,
        Datum::Bool(_) => 1,
        Datum::Int(_) | Datum::Float(_) | Datum::Numeric(..) => 2,
        Datum::Text(_) => 3,
        Datum::Timestamp(_) | Datum::TimestampTz(_) | Datum::Date(_) => 4,
        Datum::Interval(_) => 5,
        Datum::Uuid(_) => 6,
        Datum::Bytea(_) => 7,
    }
}

/// Total order for ORDER BY: `desc` reverses values, `nulls_first` places NULLs.
pub(crate) fn cmp_for_sort(a: &Datum, b: &Datum, desc: bool, nulls_first: bool) -> Ordering {
    match (a, b) {
        (Datum::Null, Datum::Null) => Ordering::Equal,
        (Datum::Null, _) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, Datum::Null) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = cmp_datums(a, b).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> Datum {
        Datum::Int(v)
    }

    #[test]
    fn integer_overflow_follows_the_result_type() {
        assert_eq!(
            arith(ArithOp::Add, i(2147483647), i(1), SqlType::Int4)
                .unwrap_err()
                .message,
            "integer out of range"
        );
        assert_eq!(
            arith(ArithOp::Add, i(2147483647), i(1), SqlType::Int8).unwrap(),
            i(2147483648)
        );
        assert_eq!(
            arith(ArithOp::Mul, i(i64::MAX), i(2), SqlType::Int8)
                .unwrap_err()
                .message,
            "bigint out of range"
        );
        assert_eq!(
            arith(ArithOp::Sub, i(-32768), i(1), SqlType::Int2)
                .unwrap_err()
                .message,
            "smallint out of range"
        );
        assert_eq!(
            arith(ArithOp::Div, i(i64::MIN), i(-1), SqlType::Int8)
                .unwrap_err()
                .code,
            "22003"
        );
        assert_eq!(
            negate(i(-2147483648), SqlType::Int4).unwrap_err().code,
            "22003"
        );
    }

    #[test]
    fn division_and_modulo() {
        assert_eq!(
            arith(ArithOp::Div, i(7), i(2), SqlType::Int4).unwrap(),
            i(3)
        );
        assert_eq!(
            arith(ArithOp::Div, i(-7), i(2), SqlType::Int4).unwrap(),
            i(-3)
        );
        assert_eq!(
            arith(ArithOp::Mod, i(-7), i(2), SqlType::Int4).unwrap(),
            i(-1)
        );
        assert_eq!(
            arith(ArithOp::Mod, i(i64::MIN), i(-1), SqlType::Int8).unwrap(),
            i(0)
        );
        assert_eq!(
            arith(ArithOp::Div, i(1), i(0), SqlType::Int4)
                .unwrap_err()
                .code,
            "22012"
        );
        assert_eq!(
            arith(ArithOp::Mod, i(1), i(0), SqlType::Int4)
                .unwrap_err()
                .code,
            "22012"
        );
        assert_eq!(
            arith(
                ArithOp::Div,
                Datum::Float(1.0),
                Datum::Float(0.0),
                SqlType::Float8
            )
            .unwrap_err()
            .code,
            "22012"
        );
        assert_eq!(
            arith(ArithOp::Div, Datum::Null, i(0), SqlType::Int4).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn float_overflow_and_underflow() {
        let f = Datum::Float;
        assert_eq!(
            arith(ArithOp::Mul, f(1e300), f(1e300), SqlType::Float8)
                .unwrap_err()
                .message,
            "value out of range: overflow"
        );
        assert_eq!(
            arith(ArithOp::Mul, f(1e-300), f(1e-300), SqlType::Float8)
                .unwrap_err()
                .message,
            "value out of range: underflow"
        );
        assert_eq!(
            arith(ArithOp::Add, f(f64::INFINITY), f(1.0), SqlType::Float8).unwrap(),
            f(f64::INFINITY)
        );
        assert_eq!(
            arith(ArithOp::Add, i(1), f(0.5), SqlType::Float8).unwrap(),
            f(1.5)
        );
    }

    #[test]
    fn ordering() {
        assert_eq!(
            cmp_datums(&Datum::Float(f64::NAN), &Datum::Float(f64::INFINITY)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_datums(&Datum::Float(f64::NAN), &Datum::Float(f64::NAN)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_datums(&Datum::Float(-0.0), &Datum::Float(0.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp_datums(&i(1), &Datum::Null), None);
        assert_eq!(
            cmp_datums(&Datum::Text("B".into()), &Datum::Text("a".into())),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_for_sort(&Datum::Null, &i(1), false, false),
            Ordering::Greater
        );
        assert_eq!(
            cmp_for_sort(&Datum::Null, &i(1), true, true),
            Ordering::Less
        );
        assert_eq!(cmp_for_sort(&i(2), &i(1), true, true), Ordering::Less);
        assert!(CmpOp::LtEq.holds(Ordering::Equal) && !CmpOp::Lt.holds(Ordering::Equal));
        assert_eq!(CmpOp::Lt.flip(), CmpOp::Gt);
    }
}
