//! Scalar functions evaluated per row, and their signatures. Functions whose value is fixed for
//! the whole statement (`version()`, `current_database()`, ...) are replaced by constants when
//! binding instead.

use std::cmp::Ordering;

use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{CmpOp, Env, ScalarExpr, array, cmp_datums};
use crate::types::{check_int_range, int_out_of_range, is_integer, is_numeric};

/// Which end(s) `trim` works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrimSide {
    Both,
    Leading,
    Trailing,
}

/// A scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// `text ~ pattern` (and `~*` when case-insensitive): a regular-expression match.
    RegexMatch {
        case_insensitive: bool,
    },
    Lower,
    Upper,
    /// Characters.
    Length,
    /// Bytes.
    OctetLength,
    /// `substr(s, from [, count])`, 1-based.
    Substr,
    /// `trim([chars from] s)` and `btrim`/`ltrim`/`rtrim`.
    Trim(TrimSide),
    Replace,
    /// `concat(a, ...)`: NULLs are skipped.
    Concat,
    /// `concat_ws(sep, a, ...)`: NULLs are skipped.
    ConcatWs,
    Left,
    Right,
    Repeat,
    Reverse,
    /// `strpos(s, sub)` / `position(sub in s)`: 1-based, 0 if absent.
    Strpos,
    Lpad,
    Rpad,
    Initcap,
    Ascii,
    Chr,
    SplitPart,
    StartsWith,
    Abs,
    Ceil,
    Floor,
    /// `round(x)` / `round(x, digits)`, half away from zero.
    Round,
    /// `trunc(x)` / `trunc(x, digits)`.
    Trunc,
    Sqrt,
    Power,
    Exp,
    Ln,
    Log10,
    Mod,
    Sign,
    Pi,
    /// `coalesce(a, b, ...)`: the first non-NULL argument (later ones are not evaluated).
    Coalesce,
    /// `nullif(a, b)`: NULL if `a = b`, else `a`.
    Nullif,
    /// `greatest(...)` / `least(...)`: NULLs are ignored.
    Greatest,
    Least,
    /// `date_trunc(unit, timestamp)`.
    DateTrunc,
    /// `date_part(field, x)`: float8.
    DatePart,
    /// `extract(field FROM x)`: numeric.
    Extract,
    /// `format_type(type oid, typmod)`: a type's SQL name; the modifier may be NULL.
    FormatType,
    /// `pg_size_pretty(bytes)`.
    SizePretty,
    /// `array_to_string(arr, sep)` (arrays are text, see `array.rs`).
    ArrayToString,
    /// `array_upper(arr, dim)` / `array_length(arr, dim)`.
    ArrayUpper,
    /// `arr[i]`.
    ArrayElement,
    /// `ARRAY[a, b, ...]`.
    ArrayBuild,
    /// `x op ANY (arr)` / `x op ALL (arr)`: arguments `x` and the array.
    ArrayQuantified {
        op: CmpOp,
        all: bool,
    },
}

/// A resolved call: the function, the types its arguments are converted to, its result type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signature {
    pub func: Func,
    pub args: Vec<SqlType>,
    pub ret: SqlType,
}

/// How a function's arguments must look.
enum Shape {
    /// Fixed parameter types.
    Fixed(Vec<SqlType>),
    /// Any number (at least one) of one common type, unified by the binder.
    Common,
    /// Any number of any types (converted to text when evaluated).
    AnyText,
}

impl Func {
    /// The function called `name` with `n` arguments, and how its arguments must look.
    fn shape(name: &str, arg_types: &[Option<SqlType>]) -> Option<(Func, Shape, Option<SqlType>)> {
        use SqlType::{Float8, Int4, Int8, Text};
        let n = arg_types.len();
        // The type of a numeric argument: integers and numerics keep their type, everything
        // else is float8.
        let num = |i: usize| -> SqlType {
            match arg_types.get(i).copied().flatten() {
                Some(t) if is_integer(t) || t == SqlType::Numeric => t,
                _ => Float8,
            }
        };
        // Rounding functions work on numeric or float8.
        let real = |i: usize| -> SqlType {
            match arg_types.get(i).copied().flatten() {
                Some(SqlType::Numeric) => SqlType::Numeric,
                _ => Float8,
            }
        };
        let text_fn = |f, params: Vec<SqlType>, ret| Some((f, Shape::Fixed(params), Some(ret)));
        match (name, n) {
            ("textregexeq", 2) => text_fn(
                Func::RegexMatch {
                    case_insensitive: false,
                },
                vec![Text, Text],
                SqlType::Bool,
            ),
            ("texticregexeq", 2) => text_fn(
                Func::RegexMatch {
                    case_insensitive: true,
                },
                vec![Text, Text],
                SqlType::Bool,
            ),
            ("lower", 1) => text_fn(Func::Lower, vec![Text], Text),
            ("upper", 1) => text_fn(Func::Upper, vec![Text], Text),
            ("octet_length" | "length", 1) if arg_types[0] == Some(SqlType::Bytea) => {
                text_fn(Func::OctetLength, vec![SqlType::Bytea], Int4)
            }
            ("length" | "char_length" | "character_length", 1) => {
                text_fn(Func::Length, vec![Text], Int4)
            }
            ("octet_length", 1) => text_fn(Func::OctetLength, vec![Text], Int4),
            ("date_trunc", 2) => {
                let t = match arg_types[1] {
                    Some(SqlType::TimestampTz) => SqlType::TimestampTz,
                    _ => SqlType::Timestamp,
                };
                Some((Func::DateTrunc, Shape::Fixed(vec![Text, t]), Some(t)))
            }
            ("date_part" | "extract", 2) => {
                let t = match arg_types[1] {
                    Some(t @ (SqlType::TimestampTz | SqlType::Date | SqlType::Interval)) => t,
                    _ => SqlType::Timestamp,
                };
                let (f, ret) = if name == "extract" {
                    (Func::Extract, SqlType::Numeric)
                } else {
                    (Func::DatePart, Float8)
                };
                Some((f, Shape::Fixed(vec![Text, t]), Some(ret)))
            }
            ("substr" | "substring", 2) => text_fn(Func::Substr, vec![Text, Int8], Text),
            ("substr" | "substring", 3) => text_fn(Func::Substr, vec![Text, Int8, Int8], Text),
            ("btrim" | "trim", 1 | 2) => text_fn(Func::Trim(TrimSide::Both), vec![Text; n], Text),
            ("ltrim", 1 | 2) => text_fn(Func::Trim(TrimSide::Leading), vec![Text; n], Text),
            ("rtrim", 1 | 2) => text_fn(Func::Trim(TrimSide::Trailing), vec![Text; n], Text),
            ("replace", 3) => text_fn(Func::Replace, vec![Text; 3], Text),
            ("concat", 1..) => Some((Func::Concat, Shape::AnyText, Some(Text))),
            ("concat_ws", 2..) => Some((Func::ConcatWs, Shape::AnyText, Some(Text))),
            ("left", 2) => text_fn(Func::Left, vec![Text, Int8], Text),
            ("right", 2) => text_fn(Func::Right, vec![Text, Int8], Text),
            ("repeat", 2) => text_fn(Func::Repeat, vec![Text, Int8], Text),
            ("reverse", 1) => text_fn(Func::Reverse, vec![Text], Text),
            ("strpos", 2) => text_fn(Func::Strpos, vec![Text, Text], Int4),
            ("lpad", 2 | 3) => {
                let mut p = vec![Text, Int8];
                if n == 3 {
                    p.push(Text);
                }
                text_fn(Func::Lpad, p, Text)
            }
            ("rpad", 2 | 3) => {
                let mut p = vec![Text, Int8];
                if n == 3 {
                    p.push(Text);
                }
                text_fn(Func::Rpad, p, Text)
            }
            ("initcap", 1) => text_fn(Func::Initcap, vec![Text], Text),
            ("ascii", 1) => text_fn(Func::Ascii, vec![Text], Int4),
            ("chr", 1) => text_fn(Func::Chr, vec![Int8], Text),
            ("split_part", 3) => text_fn(Func::SplitPart, vec![Text, Text, Int8], Text),
            ("starts_with", 2) => text_fn(Func::StartsWith, vec![Text, Text], SqlType::Bool),
            ("abs", 1) => Some((Func::Abs, Shape::Fixed(vec![num(0)]), Some(num(0)))),
            ("ceil" | "ceiling", 1) => {
                Some((Func::Ceil, Shape::Fixed(vec![real(0)]), Some(real(0))))
            }
            ("floor", 1) => Some((Func::Floor, Shape::Fixed(vec![real(0)]), Some(real(0)))),
            ("round", 1) => Some((Func::Round, Shape::Fixed(vec![real(0)]), Some(real(0)))),
            // With a number of digits, only the NUMERIC forms exist (as in PostgreSQL, where
            // `round(10, 1)` is `round(10::numeric, 1)`).
            ("round", 2) => Some((
                Func::Round,
                Shape::Fixed(vec![SqlType::Numeric, Int4]),
                Some(SqlType::Numeric),
            )),
            ("trunc", 1) => Some((Func::Trunc, Shape::Fixed(vec![real(0)]), Some(real(0)))),
            ("trunc", 2) => Some((
                Func::Trunc,
                Shape::Fixed(vec![SqlType::Numeric, Int4]),
                Some(SqlType::Numeric),
            )),
            ("sqrt", 1) => Some((Func::Sqrt, Shape::Fixed(vec![Float8]), Some(Float8))),
            ("power" | "pow", 2) => Some((
                Func::Power,
                Shape::Fixed(vec![Float8, Float8]),
                Some(Float8),
            )),
            ("exp", 1) => Some((Func::Exp, Shape::Fixed(vec![Float8]), Some(Float8))),
            ("ln", 1) => Some((Func::Ln, Shape::Fixed(vec![Float8]), Some(Float8))),
            ("log" | "log10", 1) => Some((Func::Log10, Shape::Fixed(vec![Float8]), Some(Float8))),
            ("mod", 2) if arg_types.contains(&Some(SqlType::Numeric)) => Some((
                Func::Mod,
                Shape::Fixed(vec![SqlType::Numeric, SqlType::Numeric]),
                Some(SqlType::Numeric),
            )),
            ("mod", 2) => {
                let t = crate::types::wider_int(
                    arg_types[0].filter(|t| is_integer(*t)).unwrap_or(Int4),
                    arg_types[1].filter(|t| is_integer(*t)).unwrap_or(Int4),
                );
                Some((Func::Mod, Shape::Fixed(vec![t, t]), Some(t)))
            }
            ("sign", 1) => Some((Func::Sign, Shape::Fixed(vec![real(0)]), Some(real(0)))),
            ("pi", 0) => Some((Func::Pi, Shape::Fixed(vec![]), Some(Float8))),
            ("format_type", 2) => text_fn(Func::FormatType, vec![Int8, Int4], Text),
            ("pg_size_pretty", 1) => text_fn(Func::SizePretty, vec![Int8], Text),
            ("array_to_string", 2) => text_fn(Func::ArrayToString, vec![Text, Text], Text),
            ("array_upper" | "array_length", 2) => {
                text_fn(Func::ArrayUpper, vec![Text, Int4], Int4)
            }
            ("coalesce", 1..) => Some((Func::Coalesce, Shape::Common, None)),
            ("nullif", 2) => Some((Func::Nullif, Shape::Common, None)),
            ("greatest", 1..) => Some((Func::Greatest, Shape::Common, None)),
            ("least", 1..) => Some((Func::Least, Shape::Common, None)),
            _ => None,
        }
    }

    /// Resolves a call of `name` whose arguments have `arg_types` (`None`: an untyped literal).
    /// `common` is the type the binder unified the arguments to, for functions that take
    /// arguments of one common type. `None` when no such function exists.
    pub(crate) fn resolve(
        name: &str,
        arg_types: &[Option<SqlType>],
        common: impl FnOnce() -> Option<SqlType>,
    ) -> Option<Signature> {
        let (func, shape, ret) = Func::shape(name, arg_types)?;
        match shape {
            Shape::Fixed(params) => {
                let ok = params.iter().zip(arg_types).all(|(p, a)| match a {
                    None => true,
                    Some(a) => {
                        a == p
                            || (is_numeric(*a)
                                && is_numeric(*p)
                                && (is_integer(*a) || !is_integer(*p)))
                            || (is_integer(*a) && is_integer(*p))
                    }
                });
                ok.then(|| Signature {
                    func,
                    ret: ret.unwrap_or(SqlType::Text),
                    args: params,
                })
            }
            Shape::Common => {
                let t = common()?;
                if matches!(func, Func::Greatest | Func::Least) && t == SqlType::Bool {
                    return None;
                }
                // NULLIF returns its first argument, compared by `=`: integers of two widths
                // compare without a cast (int4 = int8 exists), so the first keeps its type;
                // other mixes compare in the common type, which the result then has.
                let ret = match (func, arg_types) {
                    (Func::Nullif, [Some(a), Some(b)]) if is_integer(*a) && is_integer(*b) => *a,
                    _ => t,
                };
                Some(Signature {
                    func,
                    args: vec![t; arg_types.len()],
                    ret,
                })
            }
            Shape::AnyText => Some(Signature {
                func,
                args: arg_types
                    .iter()
                    .map(|t| t.unwrap_or(SqlType::Text))
                    .collect(),
                ret: SqlType::Text,
            }),
        }
    }

    /// The function's SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::RegexMatch {
                case_insensitive: false,
            } => "textregexeq",
            Func::RegexMatch {
                case_insensitive: true,
            } => "texticregexeq",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Length => "length",
            Func::OctetLength => "octet_length",
            Func::Substr => "substr",
            Func::Trim(TrimSide::Both) => "btrim",
            Func::Trim(TrimSide::Leading) => "ltrim",
            Func::Trim(TrimSide::Trailing) => "rtrim",
            Func::Replace => "replace",
            Func::Concat => "concat",
            Func::ConcatWs => "concat_ws",
            Func::Left => "left",
            Func::Right => "right",
            Func::Repeat => "repeat",
            Func::Reverse => "reverse",
            Func::Strpos => "strpos",
            Func::Lpad => "lpad",
            Func::Rpad => "rpad",
            Func::Initcap => "initcap",
            Func::Ascii => "ascii",
            Func::Chr => "chr",
            Func::SplitPart => "split_part",
            Func::StartsWith => "starts_with",
            Func::Abs => "abs",
            Func::Ceil => "ceil",
            Func::Floor => "floor",
            Func::Round => "round",
            Func::Trunc => "trunc",
            Func::Sqrt => "sqrt",
            Func::Power => "power",
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Log10 => "log",
            Func::Mod => "mod",
            Func::Sign => "sign",
            Func::Pi => "pi",
            Func::Coalesce => "coalesce",
            Func::Nullif => "nullif",
            Func::Greatest => "greatest",
            Func::Least => "least",
            Func::DateTrunc => "date_trunc",
            Func::DatePart => "date_part",
            Func::Extract => "extract",
            Func::FormatType => "format_type",
            Func::SizePretty => "pg_size_pretty",
            Func::ArrayToString => "array_to_string",
            Func::ArrayUpper => "array_upper",
            Func::ArrayElement => "array_element",
            Func::ArrayBuild => "array",
            Func::ArrayQuantified { all: false, .. } => "any",
            Func::ArrayQuantified { all: true, .. } => "all",
        }
    }

    /// Evaluates the function on `args` over `row`.
    pub(crate) fn eval(
        self,
        args: &[ScalarExpr],
        row: &[Datum],
        env: &Env<'_>,
    ) -> Result<Datum, SqlError> {
        match self {
            Func::Coalesce => {
                for a in args {
                    let v = a.eval(row, env)?;
                    if v != Datum::Null {
                        return Ok(v);
                    }
                }
                Ok(Datum::Null)
            }
            Func::Nullif => {
                let a = args[0].eval(row, env)?;
                let b = args[1].eval(row, env)?;
                Ok(if cmp_datums(&a, &b) == Some(Ordering::Equal) {
                    Datum::Null
                } else {
                    a
                })
            }
            Func::Greatest | Func::Least => {
                let mut best = Datum::Null;
                for a in args {
                    let v = a.eval(row, env)?;
                    let better = match cmp_datums(&v, &best) {
                        None => best == Datum::Null,
                        Some(o) => {
                            (o == Ordering::Greater) == (self == Func::Greatest) && o.is_ne()
                        }
                    };
                    if better {
                        best = v;
                    }
                }
                Ok(best)
            }
            Func::FormatType => {
                let oid = args[0].eval(row, env)?;
                let typmod = args[1].eval(row, env)?;
                Ok(match oid {
                    Datum::Int(oid) => {
                        Datum::Text(crate::syscat::format_type(oid, int_arg(&typmod).ok()))
                    }
                    _ => Datum::Null,
                })
            }
            Func::ArrayQuantified { op, all } => {
                let x = args[0].eval(row, env)?;
                let arr = args[1].eval(row, env)?;
                array::quantified(&x, &arr, op, all, args[0].ty())
            }
            Func::ArrayBuild => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(array::from_datums(&values))
            }
            Func::Concat | Func::ConcatWs => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                // concat prints values with their output functions (booleans as t/f).
                let text = |d: &Datum| d.to_pg_text().unwrap_or_default();
                if self == Func::Concat {
                    return Ok(Datum::Text(values.iter().map(text).collect()));
                }
                let Some((sep, rest)) = values.split_first() else {
                    return Ok(Datum::Null);
                };
                if *sep == Datum::Null {
                    return Ok(Datum::Null);
                }
                let parts: Vec<String> = rest
                    .iter()
                    .filter(|d| **d != Datum::Null)
                    .map(text)
                    .collect();
                Ok(Datum::Text(parts.join(&text(sep))))
            }
            _ => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.contains(&Datum::Null) {
                    return Ok(Datum::Null);
                }
                let ty = args.first().map(ScalarExpr::ty).unwrap_or(SqlType::Float8);
                strict(self, &values, ty)
            }
        }
    }
}

fn text_arg(v: &Datum) -> Result<&str, SqlError> {
    match v {
        Datum::Text(s) => Ok(s),
        other => Err(SqlError::internal(format!(
            "text argument expected, got {other:?}"
        ))),
    }
}

fn int_arg(v: &Datum) -> Result<i64, SqlError> {
    match v {
        Datum::Int(i) => Ok(*i),
        other => Err(SqlError::internal(format!(
            "integer argument expected, got {other:?}"
        ))),
    }
}

fn float_arg(v: &Datum) -> Result<f64, SqlError> {
    match v {
        Datum::Float(f) => Ok(*f),
        Datum::Int(i) => Ok(*i as f64),
        other => Err(SqlError::internal(format!(
            "number argument expected, got {other:?}"
        ))),
    }
}

/// A float result, with PostgreSQL's overflow check.
fn float(v: f64) -> Result<Datum, SqlError> {
    if v.is_infinite() {
        return Err(SqlError::out_of_range("value out of range: overflow"));
    }
    Ok(Datum::Float(v))
}

/// Functions that return NULL when any argument is NULL (the caller checked there is none).
fn strict(f: Func, v: &[Datum], ty: SqlType) -> Result<Datum, SqlError> {
    let t = |i: usize| text_arg(&v[i]);
    let n = |i: usize| int_arg(&v[i]);
    let x = |i: usize| float_arg(&v[i]);
    let text = |s: String| Ok(Datum::Text(s));
    match f {
        Func::RegexMatch { case_insensitive } => {
            // Rust's regex syntax covers the common part of PostgreSQL's (POSIX ARE):
            // anchors, classes, alternation, repetition. Back-references are not supported.
            let re = regex::RegexBuilder::new(t(1)?)
                .case_insensitive(case_insensitive)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| SqlError::new("2201B", format!("invalid regular expression: {e}")))?;
            Ok(Datum::Bool(re.is_match(t(0)?)))
        }
        Func::SizePretty => text(crate::syscat::size_pretty(n(0)?)),
        Func::ArrayToString => array::to_string(&v[0], &v[1]),
        Func::ArrayUpper => array::upper(&v[0], &v[1]),
        Func::ArrayElement => array::element(&v[0], &v[1]),
        Func::Lower => text(t(0)?.to_lowercase()),
        Func::Upper => text(t(0)?.to_uppercase()),
        Func::Length => Ok(Datum::Int(t(0)?.chars().count() as i64)),
        Func::OctetLength => Ok(Datum::Int(match &v[0] {
            Datum::Bytea(b) => b.len() as i64,
            _ => t(0)?.len() as i64,
        })),
        Func::DateTrunc => match &v[1] {
            Datum::Timestamp(ts) => Ok(Datum::Timestamp(super::datetime::trunc(t(0)?, *ts)?)),
            Datum::TimestampTz(ts) => Ok(Datum::TimestampTz(super::datetime::trunc(t(0)?, *ts)?)),
            other => Err(SqlError::internal(format!("date_trunc of {other:?}"))),
        },
        Func::DatePart => Ok(Datum::Float(super::datetime::part(t(0)?, &v[1])?)),
        Func::Extract => super::numeric::from_f64(super::datetime::part(t(0)?, &v[1])?),
        Func::Substr => {
            let s = t(0)?;
            let from = n(1)?;
            let (start, end) = match v.get(2) {
                None => (from, i64::MAX),
                Some(c) => {
                    let count = int_arg(c)?;
                    if count < 0 {
                        return Err(SqlError::new(
                            "22011",
                            "negative substring length not allowed",
                        ));
                    }
                    (from, from.saturating_add(count))
                }
            };
            let start = start.max(1);
            if end <= start {
                return text(String::new());
            }
            let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(end - start).unwrap_or(usize::MAX);
            text(s.chars().skip(skip).take(take).collect())
        }
        Func::Trim(side) => {
            let s = t(0)?;
            let chars: Vec<char> = match v.get(1) {
                Some(c) => text_arg(c)?.chars().collect(),
                None => vec![' '],
            };
            let pat = |c: char| chars.contains(&c);
            text(
                match side {
                    TrimSide::Both => s.trim_matches(pat),
                    TrimSide::Leading => s.trim_start_matches(pat),
                    TrimSide::Trailing => s.trim_end_matches(pat),
                }
                .to_string(),
            )
        }
        Func::Replace => {
            let from = t(1)?;
            if from.is_empty() {
                return text(t(0)?.to_string());
            }
            text(t(0)?.replace(from, t(2)?))
        }
        Func::Left | Func::Right => {
            let s: Vec<char> = t(0)?.chars().collect();
            let k = n(1)?;
            let len = s.len() as i64;
            let keep = if k >= 0 { k.min(len) } else { (len + k).max(0) } as usize;
            text(if f == Func::Left {
                s[..keep].iter().collect()
            } else {
                s[s.len() - keep..].iter().collect()
            })
        }
        Func::Repeat => {
            let k = n(1)?.max(0) as usize;
            let s = t(0)?;
            if s.len().saturating_mul(k) > 1 << 30 {
                return Err(SqlError::new("54000", "requested length too large"));
            }
            text(s.repeat(k))
        }
        Func::Reverse => text(t(0)?.chars().rev().collect()),
        Func::Strpos => {
            let (s, sub) = (t(0)?, t(1)?);
            Ok(Datum::Int(match s.find(sub) {
                Some(b) => s[..b].chars().count() as i64 + 1,
                None => 0,
            }))
        }
        Func::Lpad | Func::Rpad => {
            let s: Vec<char> = t(0)?.chars().collect();
            let len = n(1)?.max(0) as usize;
            if len > 1 << 28 {
                return Err(SqlError::new("54000", "requested length too large"));
            }
            let fill: Vec<char> = match v.get(2) {
                Some(c) => text_arg(c)?.chars().collect(),
                None => vec![' '],
            };
            if s.len() >= len || fill.is_empty() {
                return text(s[..len.min(s.len())].iter().collect());
            }
            let pad: String = fill.iter().cycle().take(len - s.len()).collect();
            let s: String = s.into_iter().collect();
            text(if f == Func::Lpad { pad + &s } else { s + &pad })
        }
        Func::Initcap => {
            let mut out = String::new();
            let mut start = true;
            for c in t(0)?.chars() {
                if c.is_alphanumeric() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = true;
                }
            }
            text(out)
        }
        Func::Ascii => Ok(Datum::Int(t(0)?.chars().next().map_or(0, |c| c as i64))),
        Func::Chr => {
            let code = n(0)?;
            match u32::try_from(code).ok().and_then(char::from_u32) {
                Some(c) if code != 0 => text(c.to_string()),
                _ => Err(SqlError::new(
                    "22023",
                    format!("requested character not valid: {code}"),
                )),
            }
        }
        Func::SplitPart => {
            let (s, delim, k) = (t(0)?, t(1)?, n(2)?);
            if k == 0 {
                return Err(SqlError::new("22023", "field position must not be zero"));
            }
            let parts: Vec<&str> = if delim.is_empty() {
                vec![s]
            } else {
                s.split(delim).collect()
            };
            let idx = if k > 0 {
                usize::try_from(k - 1).ok()
            } else {
                usize::try_from(parts.len() as i64 + k).ok()
            };
            text(
                idx.and_then(|i| parts.get(i))
                    .copied()
                    .unwrap_or("")
                    .to_string(),
            )
        }
        Func::StartsWith => Ok(Datum::Bool(t(0)?.starts_with(t(1)?))),
        Func::Abs => match &v[0] {
            Datum::Numeric(d, s) => Ok(Datum::Numeric(
                if d.is_negative() { d.neg() } else { d.clone() },
                *s,
            )),
            Datum::Int(i) => {
                let a = i.checked_abs().ok_or_else(|| int_out_of_range(ty))?;
                check_int_range(a, ty).map(Datum::Int)
            }
            other => Ok(Datum::Float(float_arg(other)?.abs())),
        },
        Func::Ceil | Func::Floor | Func::Round | Func::Trunc
            if matches!(v[0], Datum::Numeric(..)) =>
        {
            let Datum::Numeric(d, _) = &v[0] else {
                return Ok(Datum::Null);
            };
            let digits = match v.get(1) {
                Some(n) => int_arg(n)?.clamp(-1000, 1000) as i32,
                None => 0,
            };
            let r = match f {
                Func::Ceil => d.ceil(),
                Func::Floor => d.floor(),
                Func::Round => d.round(digits),
                _ => d.trunc(digits),
            };
            Ok(crate::expr::numeric::datum(r, digits.max(0)))
        }
        Func::Ceil => float(x(0)?.ceil()),
        Func::Floor => float(x(0)?.floor()),
        Func::Round | Func::Trunc => {
            let val = x(0)?;
            let digits = match v.get(1) {
                Some(d) => int_arg(d)?.clamp(-400, 400) as i32,
                None => 0,
            };
            let scale = 10f64.powi(digits);
            let scaled = val * scale;
            // Halves round to even, as PostgreSQL's float8 round (C's rint) does.
            let r = if f == Func::Round {
                scaled.round_ties_even()
            } else {
                scaled.trunc()
            };
            let out = if digits == 0 { r } else { r / scale };
            Ok(Datum::Float(if out.is_finite() { out } else { val }))
        }
        Func::Sqrt => {
            let a = x(0)?;
            if a < 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "cannot take square root of a negative number",
                ));
            }
            float(a.sqrt())
        }
        Func::Power => {
            let (a, b) = (x(0)?, x(1)?);
            if a == 0.0 && b < 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "zero raised to a negative power is undefined",
                ));
            }
            if a < 0.0 && b.fract() != 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            float(a.powf(b))
        }
        Func::Exp => float(x(0)?.exp()),
        Func::Ln | Func::Log10 => {
            let a = x(0)?;
            if a == 0.0 {
                return Err(SqlError::new("2201E", "cannot take logarithm of zero"));
            }
            if a < 0.0 {
                return Err(SqlError::new(
                    "2201E",
                    "cannot take logarithm of a negative number",
                ));
            }
            float(if f == Func::Ln { a.ln() } else { a.log10() })
        }
        Func::Mod if matches!(v[0], Datum::Numeric(..)) => match (&v[0], &v[1]) {
            (Datum::Numeric(a, sa), Datum::Numeric(b, sb)) => {
                crate::expr::numeric::arith(crate::expr::ArithOp::Mod, a, *sa, b, *sb)
            }
            _ => Ok(Datum::Null),
        },
        Func::Mod => {
            let (a, b) = (n(0)?, n(1)?);
            if b == 0 {
                return Err(SqlError::division_by_zero());
            }
            Ok(Datum::Int(if b == -1 { 0 } else { a % b }))
        }
        Func::Sign if matches!(v[0], Datum::Numeric(..)) => {
            let Datum::Numeric(d, _) = &v[0] else {
                return Ok(Datum::Null);
            };
            let s = if d.is_zero() {
                0
            } else if d.is_negative() {
                -1
            } else {
                1
            };
            Ok(crate::expr::numeric::datum(crate::Decimal::from(s), 0))
        }
        Func::Sign => {
            let a = x(0)?;
            Ok(Datum::Float(if a > 0.0 {
                1.0
            } else if a < 0.0 {
                -1.0
            } else {
                0.0
            }))
        }
        Func::Pi => Ok(Datum::Float(std::f64::consts::PI)),
        Func::Coalesce
        | Func::Nullif
        | Func::Greatest
        | Func::Least
        | Func::Concat
        | Func::ConcatWs
        | Func::FormatType
        | Func::ArrayBuild
        | Func::ArrayQuantified { .. } => {
            Err(SqlError::internal(format!("{} is not strict", f.name())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(d: Datum, ty: SqlType) -> ScalarExpr {
        ScalarExpr::Literal(d, ty)
    }

    fn t(s: &str) -> ScalarExpr {
        lit(Datum::Text(s.into()), SqlType::Text)
    }

    fn i(v: i64) -> ScalarExpr {
        lit(Datum::Int(v), SqlType::Int8)
    }

    fn call(f: Func, args: &[ScalarExpr]) -> Result<Datum, SqlError> {
        f.eval(args, &[], &Env::EMPTY)
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
        assert_eq!(call(Func::Coalesce, &args).unwrap(), Datum::Int(2));
    }

    #[test]
    fn text_and_numbers() {
        let text = |s: &str| Datum::Text(s.into());
        assert_eq!(call(Func::Upper, &[t("aß")]).unwrap(), text("ASS"));
        assert_eq!(call(Func::Length, &[t("äb")]).unwrap(), Datum::Int(2));
        assert_eq!(call(Func::Nullif, &[t("a"), t("a")]).unwrap(), Datum::Null);
        assert_eq!(call(Func::Nullif, &[t("a"), t("b")]).unwrap(), text("a"));
        let min4 = lit(Datum::Int(i32::MIN.into()), SqlType::Int4);
        assert_eq!(call(Func::Abs, &[min4]).unwrap_err().code, "22003");
        assert_eq!(
            call(Func::Abs, &[lit(Datum::Float(-1.5), SqlType::Float8)]).unwrap(),
            Datum::Float(1.5)
        );
        assert_eq!(
            call(Func::Substr, &[t("hello"), i(2), i(3)]).unwrap(),
            text("ell")
        );
        assert_eq!(
            call(Func::Substr, &[t("hello"), i(-1), i(3)]).unwrap(),
            text("h")
        );
        assert_eq!(
            call(Func::Substr, &[t("hello"), i(1), i(-1)])
                .unwrap_err()
                .code,
            "22011"
        );
        assert_eq!(call(Func::Left, &[t("hello"), i(-2)]).unwrap(), text("hel"));
        assert_eq!(call(Func::Right, &[t("hello"), i(2)]).unwrap(), text("lo"));
        assert_eq!(
            call(Func::Lpad, &[t("7"), i(3), t("0")]).unwrap(),
            text("007")
        );
        assert_eq!(call(Func::Rpad, &[t("hello"), i(2)]).unwrap(), text("he"));
        assert_eq!(
            call(Func::Strpos, &[t("héllo"), t("l")]).unwrap(),
            Datum::Int(3)
        );
        assert_eq!(
            call(Func::Trim(TrimSide::Both), &[t("xxaxx"), t("x")]).unwrap(),
            text("a")
        );
        assert_eq!(
            call(Func::SplitPart, &[t("a,b,c"), t(","), i(-1)]).unwrap(),
            text("c")
        );
        assert_eq!(
            call(Func::Initcap, &[t("hi THERE")]).unwrap(),
            text("Hi There")
        );
        assert_eq!(
            call(
                Func::ConcatWs,
                &[t("-"), t("a"), lit(Datum::Null, SqlType::Text), i(3)]
            )
            .unwrap(),
            text("a-3")
        );
        assert_eq!(
            call(
                Func::Greatest,
                &[i(1), lit(Datum::Null, SqlType::Int8), i(3)]
            )
            .unwrap(),
            Datum::Int(3)
        );
        assert_eq!(call(Func::Least, &[i(4), i(3)]).unwrap(), Datum::Int(3));
        let f = |v: f64| lit(Datum::Float(v), SqlType::Float8);
        // float8 halves round to even, as in PostgreSQL.
        assert_eq!(call(Func::Round, &[f(2.5)]).unwrap(), Datum::Float(2.0));
        assert_eq!(call(Func::Round, &[f(-2.5)]).unwrap(), Datum::Float(-2.0));
        assert_eq!(call(Func::Round, &[f(3.5)]).unwrap(), Datum::Float(4.0));
        assert_eq!(
            call(Func::Round, &[f(1.2345), lit(Datum::Int(2), SqlType::Int4)]).unwrap(),
            Datum::Float(1.23)
        );
        assert_eq!(call(Func::Sqrt, &[f(-1.0)]).unwrap_err().code, "2201F");
        assert_eq!(call(Func::Ln, &[f(0.0)]).unwrap_err().code, "2201E");
        assert_eq!(call(Func::Mod, &[i(7), i(0)]).unwrap_err().code, "22012");
        assert_eq!(
            call(Func::Upper, &[lit(Datum::Null, SqlType::Text)]).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn signatures() {
        let sig = Func::resolve("length", &[Some(SqlType::Text)], || None).unwrap();
        assert_eq!(sig.ret, SqlType::Int4);
        assert!(Func::resolve("length", &[Some(SqlType::Int4)], || None).is_none());
        let abs = Func::resolve("abs", &[Some(SqlType::Int2)], || None).unwrap();
        assert_eq!(abs.ret, SqlType::Int2);
        assert!(Func::resolve("nosuch", &[], || None).is_none());
        let c = Func::resolve("coalesce", &[None, Some(SqlType::Int4)], || {
            Some(SqlType::Int4)
        });
        assert_eq!(c.unwrap().ret, SqlType::Int4);
    }
}
