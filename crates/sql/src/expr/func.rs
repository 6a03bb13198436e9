//! Scalar functions evaluated per row. Functions whose value is fixed for the whole statement
//! (`version()`, `current_database()`, ...) are replaced by constants when binding instead.

use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{ScalarExpr, cmp_datums};
use crate::types::{check_int_range, int_out_of_range};

/// A scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// `lower(text)`.
    Lower,
    /// `upper(text)`.
    Upper,
    /// `length(text)` / `char_length(text)`: characters.
    Length,
    /// `abs(number)`.
    Abs,
    /// `coalesce(a, b, ...)`: the first non-NULL argument (later ones are not evaluated).
    Coalesce,
    /// `nullif(a, b)`: NULL if `a = b`, else `a`.
    Nullif,
}

impl Func {
    /// Evaluates the function on `args` over `row`.
    pub(crate) fn eval(self, args: &[ScalarExpr], row: &[Datum]) -> Result<Datum, SqlError> {
        match self {
            Func::Coalesce => {
                for a in args {
                    let v = a.eval(row)?;
                    if v != Datum::Null {
                        return Ok(v);
                    }
                }
                Ok(Datum::Null)
            }
            Func::Nullif => {
                let a = args[0].eval(row)?;
                let b = args[1].eval(row)?;
                Ok(if cmp_datums(&a, &b) == Some(std::cmp::Ordering::Equal) {
                    Datum::Null
                } else {
                    a
                })
            }
            Func::Lower | Func::Upper | Func::Length => match args[0].eval(row)? {
                Datum::Text(s) => Ok(match self {
                    Func::Lower => Datum::Text(s.to_lowercase()),
                    Func::Upper => Datum::Text(s.to_uppercase()),
                    _ => Datum::Int(s.chars().count() as i64),
                }),
                _ => Ok(Datum::Null),
            },
            Func::Abs => match args[0].eval(row)? {
                Datum::Int(v) => {
                    let ty = args[0].ty();
                    let a = v.checked_abs().ok_or_else(|| int_out_of_range(ty))?;
                    check_int_range(a, ty).map(Datum::Int)
                }
                Datum::Float(v) => Ok(Datum::Float(v.abs())),
                _ => Ok(Datum::Null),
            },
        }
    }

    /// The function's SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Length => "length",
            Func::Abs => "abs",
            Func::Coalesce => "coalesce",
            Func::Nullif => "nullif",
        }
    }

    /// The function called `name`, if it exists.
    pub(crate) fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" | "character_length" => Func::Length,
            "abs" => Func::Abs,
            "coalesce" => Func::Coalesce,
            "nullif" => Func::Nullif,
            _ => return None,
        })
    }

    /// The result type for arguments of `arg_types` (already unified for COALESCE/NULLIF), or
    /// `None` if the function does not accept them.
    pub(crate) fn return_type(self, arg_types: &[SqlType]) -> Option<SqlType> {
        match (self, arg_types) {
            (Func::Lower | Func::Upper, [SqlType::Text]) => Some(SqlType::Text),
            (Func::Length, [SqlType::Text]) => Some(SqlType::Int4),
            (Func::Abs, [t]) if crate::types::is_numeric(*t) => Some(*t),
            (Func::Coalesce, [first, ..]) => Some(*first),
            (Func::Nullif, [a, _]) => Some(*a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(d: Datum, ty: SqlType) -> ScalarExpr {
        ScalarExpr::Literal(d, ty)
    }

    #[test]
    fn coalesce_is_lazy() {
        let div0 = ScalarExpr::Arith {
            op: crate::expr::ArithOp::Div,
            left: Box::new(lit(Datum::Int(1), SqlType::Int4)),
            right: Box::new(lit(Datum::Int(0), SqlType::Int4)),
            ty: SqlType::Int4,
        };
        let args = [
            lit(Datum::Null, SqlType::Int4),
            lit(Datum::Int(2), SqlType::Int4),
            div0,
        ];
        assert_eq!(Func::Coalesce.eval(&args, &[]).unwrap(), Datum::Int(2));
    }

    #[test]
    fn text_and_numbers() {
        let t = |s: &str| lit(Datum::Text(s.into()), SqlType::Text);
        assert_eq!(
            Func::Upper.eval(&[t("aß")], &[]).unwrap(),
            Datum::Text("ASS".into())
        );
        assert_eq!(Func::Length.eval(&[t("äb")], &[]).unwrap(), Datum::Int(2));
        assert_eq!(
            Func::Nullif.eval(&[t("a"), t("a")], &[]).unwrap(),
            Datum::Null
        );
        assert_eq!(
            Func::Nullif.eval(&[t("a"), t("b")], &[]).unwrap(),
            Datum::Text("a".into())
        );
        let min4 = lit(Datum::Int(i32::MIN.into()), SqlType::Int4);
        assert_eq!(Func::Abs.eval(&[min4], &[]).unwrap_err().code, "22003");
        assert_eq!(
            Func::Abs
                .eval(&[lit(Datum::Float(-1.5), SqlType::Float8)], &[])
                .unwrap(),
            Datum::Float(1.5)
        );
        assert_eq!(Func::lookup("char_length"), Some(Func::Length));
        assert_eq!(Func::Length.return_type(&[SqlType::Int4]), None);
    }
}
