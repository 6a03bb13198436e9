//! SQL types: resolution of type names written in statements, the catalog's protobuf type
//! codes, and per-type facts (integer ranges, PostgreSQL's internal names).

use meridian_proto::v1::ColumnType;
use sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, ObjectNamePart, TimezoneInfo};

use crate::api::{SqlError, SqlType};

/// A column or cast target type as written: the type and, for `VARCHAR(n)`, its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSpec {
    /// The SQL type.
    pub ty: SqlType,
    /// Maximum length in characters (`VARCHAR(n)`), if any.
    pub max_len: Option<u32>,
    /// Precision and scale of `NUMERIC(p, s)`, if given.
    pub numeric: Option<(u16, u16)>,
    /// `CHAR(n)`: values are blank-padded to `max_len`.
    pub fixed: bool,
}

impl TypeSpec {
    pub(crate) fn plain(ty: SqlType) -> TypeSpec {
        TypeSpec {
            ty,
            max_len: None,
            numeric: None,
            fixed: false,
        }
    }
}

/// `NUMERIC`, `NUMERIC(p)` or `NUMERIC(p, s)`.
fn numeric_spec(info: &ExactNumberInfo) -> Result<TypeSpec, SqlError> {
    let check = |p: u64, s: u64| -> Result<(u16, u16), SqlError> {
        if !(1..=1000).contains(&p) {
            return Err(SqlError::new(
                "22023",
                format!("NUMERIC precision {p} must be between 1 and 1000"),
            ));
        }
        if s > p {
            return Err(SqlError::new(
                "22023",
                format!("NUMERIC scale {s} must be between 0 and precision {p}"),
            ));
        }
        Ok((p as u16, s as u16))
    };
    let numeric = match info {
        ExactNumberInfo::None => None,
        ExactNumberInfo::Precision(p) => Some(check(*p, 0)?),
        ExactNumberInfo::PrecisionAndScale(p, s) => {
            let s = u64::try_from(*s)
                .map_err(|_| SqlError::unsupported("negative NUMERIC scales are not supported"))?;
            Some(check(*p, s)?)
        }
    };
    Ok(TypeSpec {
        ty: SqlType::Numeric,
        max_len: None,
        numeric,
        fixed: false,
    })
}

/// Resolves a type written in a statement. Unknown names fail with 42704, types PostgreSQL
/// has but Meridian does not yet with 0A000.
pub(crate) fn resolve(dt: &DataType) -> Result<TypeSpec, SqlError> {
    use SqlType::*;
    let plain = |ty| Ok(TypeSpec::plain(ty));
    match dt {
        DataType::SmallInt(_) | DataType::Int2(_) => plain(Int2),
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => plain(Int4),
        DataType::BigInt(_) | DataType::Int8(_) => plain(Int8),
        DataType::Bool | DataType::Boolean => plain(Bool),
        DataType::Float(_)
        | DataType::Float4
        | DataType::Float8
        | DataType::Real
        | DataType::Double(_)
        | DataType::DoublePrecision => plain(Float8),
        DataType::Text | DataType::String(_) => plain(Text),
        DataType::Varchar(len) | DataType::CharacterVarying(len) | DataType::CharVarying(len) => {
            let max_len = match len {
                None => None,
                Some(CharacterLength::IntegerLength { length, .. }) => {
                    if *length == 0 {
                        return Err(SqlError::syntax(
                            "length for type varchar must be at least 1",
                        ));
                    }
                    Some(
                        u32::try_from(*length)
                            .ok()
                            .filter(|l| *l <= 10_485_760)
                            .ok_or_else(|| {
                                SqlError::syntax("length for type varchar cannot exceed 10485760")
                            })?,
                    )
                }
                Some(CharacterLength::Max) => return Err(SqlError::undefined_type("max")),
            };
            Ok(TypeSpec {
                ty: Text,
                max_len,
                numeric: None,
                fixed: false,
            })
        }
        DataType::Char(len) | DataType::Character(len) => {
            let n = match len {
                None => 1,
                Some(CharacterLength::IntegerLength { length, .. }) => u32::try_from(*length)
                    .ok()
                    .filter(|l| (1..=10_485_760).contains(l))
                    .ok_or_else(|| {
                        SqlError::syntax("length for type char must be between 1 and 10485760")
                    })?,
                Some(CharacterLength::Max) => return Err(SqlError::undefined_type("max")),
            };
            Ok(TypeSpec {
                ty: Text,
                max_len: Some(n),
                numeric: None,
                fixed: true,
            })
        }
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            plain(Timestamp)
        }
        DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => {
            numeric_spec(info)
        }
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => plain(TimestampTz),
        DataType::Date => plain(Date),
        DataType::Interval { .. } => plain(Interval),
        DataType::Uuid => plain(Uuid),
        DataType::Bytea => plain(Bytea),
        DataType::Custom(name, modifiers) if modifiers.is_empty() && name.0.len() == 1 => {
            let ObjectNamePart::Identifier(ident) = &name.0[0] else {
                return Err(SqlError::undefined_type(&name.to_string()));
            };
            match ident.value.to_ascii_lowercase().as_str() {
                "int2" => plain(Int2),
                "int4" => plain(Int4),
                "int8" => plain(Int8),
                "float8" | "float4" => plain(Float8),
                "bool" => plain(Bool),
                "text" | "string" | "varchar" => plain(Text),
                "timestamp" => plain(Timestamp),
                "numeric" | "decimal" => plain(Numeric),
                "date" => plain(Date),
                "timestamptz" => plain(TimestampTz),
                "interval" => plain(Interval),
                "uuid" => plain(Uuid),
                "bytea" => plain(Bytea),
                other => Err(unsupported_or_unknown(other)),
            }
        }
        other => Err(unsupported_or_unknown(
            &other.to_string().to_ascii_lowercase(),
        )),
    }
}

/// 0A000 for PostgreSQL types Meridian does not support yet, 42704 for names PostgreSQL does not
/// know either.
fn unsupported_or_unknown(name: &str) -> SqlError {
    const KNOWN: &[&str] = &[
        "time",
        "json",
        "jsonb",
        "bpchar",
        "serial",
        "bigserial",
        "smallserial",
        "money",
        "inet",
        "cidr",
        "bit",
        "oid",
        "xml",
    ];
    let base = name.split(['(', ' ', '[']).next().unwrap_or(name);
    if KNOWN.contains(&base) || name.contains("with time zone") || name.ends_with("[]") {
        SqlError::unsupported(format!("type {name} is not supported yet"))
    } else {
        SqlError::undefined_type(name)
    }
}

/// The catalog's protobuf code of a type.
pub(crate) fn to_proto(ty: SqlType) -> ColumnType {
    match ty {
        SqlType::Bool => ColumnType::Bool,
        SqlType::Int2 => ColumnType::Int2,
        SqlType::Int4 => ColumnType::Int4,
        SqlType::Int8 => ColumnType::Int8,
        SqlType::Float8 => ColumnType::Float8,
        SqlType::Text => ColumnType::Text,
        SqlType::Timestamp => ColumnType::Timestamp,
        SqlType::Numeric => ColumnType::Numeric,
        SqlType::Date => ColumnType::Date,
        SqlType::TimestampTz => ColumnType::Timestamptz,
        SqlType::Interval => ColumnType::Interval,
        SqlType::Uuid => ColumnType::Uuid,
        SqlType::Bytea => ColumnType::Bytea,
    }
}

/// The type of a protobuf code; `None` for codes this version does not know.
pub(crate) fn from_proto(code: i32) -> Option<SqlType> {
    Some(match ColumnType::try_from(code).ok()? {
        ColumnType::Bool => SqlType::Bool,
        ColumnType::Int2 => SqlType::Int2,
        ColumnType::Int4 => SqlType::Int4,
        ColumnType::Int8 => SqlType::Int8,
        ColumnType::Float8 => SqlType::Float8,
        ColumnType::Text => SqlType::Text,
        ColumnType::Timestamp => SqlType::Timestamp,
        ColumnType::Numeric => SqlType::Numeric,
        ColumnType::Date => SqlType::Date,
        ColumnType::Timestamptz => SqlType::TimestampTz,
        ColumnType::Interval => SqlType::Interval,
        ColumnType::Uuid => SqlType::Uuid,
        ColumnType::Bytea => SqlType::Bytea,
        ColumnType::Unspecified => return None,
    })
}

/// PostgreSQL's internal type name (`pg_type.typname`), which it uses to label the result
/// column of a cast of a constant (`SELECT 1::bigint` is labelled `int8`).
pub(crate) fn internal_name(spec: TypeSpec) -> &'static str {
    match spec.ty {
        SqlType::Bool => "bool",
        SqlType::Int2 => "int2",
        SqlType::Int4 => "int4",
        SqlType::Int8 => "int8",
        SqlType::Float8 => "float8",
        SqlType::Text if spec.max_len.is_some() => "varchar",
        SqlType::Text => "text",
        SqlType::Timestamp => "timestamp",
        SqlType::Numeric => "numeric",
        SqlType::Date => "date",
        SqlType::TimestampTz => "timestamptz",
        SqlType::Interval => "interval",
        SqlType::Uuid => "uuid",
        SqlType::Bytea => "bytea",
    }
}

/// The name of a type as PostgreSQL prints it in error messages (`character varying(10)`).
pub(crate) fn display_name(spec: TypeSpec) -> String {
    match (spec.ty, spec.max_len, spec.numeric) {
        (SqlType::Text, Some(n), _) if spec.fixed => format!("character({n})"),
        (SqlType::Text, Some(n), _) => format!("character varying({n})"),
        (SqlType::Numeric, _, Some((p, s))) => format!("numeric({p},{s})"),
        (ty, _, _) => ty.pg_name().to_string(),
    }
}

/// True for the integer types.
pub(crate) fn is_integer(ty: SqlType) -> bool {
    matches!(ty, SqlType::Int2 | SqlType::Int4 | SqlType::Int8)
}

/// True for the integer, numeric and floating-point types.
pub(crate) fn is_numeric(ty: SqlType) -> bool {
    is_integer(ty) || ty == SqlType::Float8 || ty == SqlType::Numeric
}

/// Checks that `v` fits the integer type `ty`, failing with PostgreSQL's 22003 message.
pub(crate) fn check_int_range(v: i64, ty: SqlType) -> Result<i64, SqlError> {
    let ok = match ty {
        SqlType::Int2 => i16::try_from(v).is_ok(),
        SqlType::Int4 => i32::try_from(v).is_ok(),
        _ => true,
    };
    if ok { Ok(v) } else { Err(int_out_of_range(ty)) }
}

/// PostgreSQL's 22003 error for an integer result outside `ty`.
pub(crate) fn int_out_of_range(ty: SqlType) -> SqlError {
    SqlError::out_of_range(match ty {
        SqlType::Int2 => "smallint out of range",
        SqlType::Int4 => "integer out of range",
        _ => "bigint out of range",
    })
}

/// The wider of two integer types (PostgreSQL resolves `int2 + int4` to `int4`).
pub(crate) fn wider_int(a: SqlType, b: SqlType) -> SqlType {
    let rank = |t| match t {
        SqlType::Int2 => 0,
        SqlType::Int4 => 1,
        _ => 2,
    };
    if rank(a) >= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::Ident;
    use sqlparser::ast::ObjectName;

    use super::*;

    #[test]
    fn resolves_the_documented_names() {
        assert_eq!(resolve(&DataType::Int(None)).unwrap().ty, SqlType::Int4);
        assert_eq!(resolve(&DataType::Real).unwrap().ty, SqlType::Float8);
        assert_eq!(
            resolve(&DataType::DoublePrecision).unwrap().ty,
            SqlType::Float8
        );
        let v = resolve(&DataType::Varchar(Some(CharacterLength::IntegerLength {
            length: 10,
            unit: None,
        })))
        .unwrap();
        assert_eq!(
            v,
            TypeSpec {
                ty: SqlType::Text,
                max_len: Some(10),
                numeric: None,
                fixed: false,
            }
        );
        assert_eq!(display_name(v), "character varying(10)");
        let c = resolve(&DataType::Char(Some(CharacterLength::IntegerLength {
            length: 3,
            unit: None,
        })))
        .unwrap();
        assert!(c.fixed);
        assert_eq!(display_name(c), "character(3)");
        assert_eq!(
            resolve(&DataType::Character(None)).unwrap().max_len,
            Some(1)
        );
        let custom = |n: &str| DataType::Custom(ObjectName::from(vec![Ident::new(n)]), vec![]);
        assert_eq!(resolve(&custom("int8")).unwrap().ty, SqlType::Int8);
        assert_eq!(resolve(&custom("STRING")).unwrap().ty, SqlType::Text);
        assert_eq!(resolve(&custom("nosuchtype")).unwrap_err().code, "42704");
        assert_eq!(resolve(&custom("serial")).unwrap_err().code, "0A000");
        assert_eq!(resolve(&DataType::Date).unwrap().ty, SqlType::Date);
        assert_eq!(resolve(&custom("json")).unwrap_err().code, "0A000");
    }

    #[test]
    fn proto_round_trip() {
        for ty in [
            SqlType::Bool,
            SqlType::Int2,
            SqlType::Int4,
            SqlType::Int8,
            SqlType::Float8,
            SqlType::Text,
            SqlType::Timestamp,
            SqlType::Numeric,
            SqlType::Date,
            SqlType::TimestampTz,
            SqlType::Interval,
            SqlType::Uuid,
            SqlType::Bytea,
        ] {
            assert_eq!(from_proto(to_proto(ty) as i32), Some(ty));
        }
        assert_eq!(from_proto(0), None);
        assert_eq!(from_proto(99), None);
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(check_int_range(32767, SqlType::Int2).unwrap(), 32767);
        assert_eq!(
            check_int_range(32768, SqlType::Int2).unwrap_err().message,
            "smallint out of range"
        );
        assert_eq!(
            check_int_range(1 << 31, SqlType::Int4).unwrap_err().code,
            "22003"
        );
        assert_eq!(wider_int(SqlType::Int2, SqlType::Int4), SqlType::Int4);
    }
}
