//! The text PostgreSQL's catalog functions produce from Meridian's descriptors: type names
//! (`format_type`), column defaults (`pg_get_expr` of `pg_attrdef.adbin`), constraint and index
//! definitions (`pg_get_constraintdef`, `pg_get_indexdef`).
//!
//! Expressions are stored as the SQL text they were written in; PostgreSQL prints them after
//! analysis, with the casts it inferred (`'x'::character varying`). Defaults are printed that
//! way for the common shapes (literals, `nextval`, function calls); CHECK conditions are
//! printed as stored.

use sqlparser::ast::{Expr, UnaryOperator, Value};

use crate::api::SqlType;
use crate::catalog::{ColumnDesc, IndexDesc, TableDesc};
use crate::types::TypeSpec;

/// The oid of `bpchar` (`CHAR(n)`).
const BPCHAR_OID: i64 = 1042;
/// The oid of `varchar`.
const VARCHAR_OID: i64 = 1043;
/// The header PostgreSQL adds to the length in a `varchar`/`numeric` type modifier.
const VARHDRSZ: i64 = 4;

/// `pg_type.oid` of a column type.
pub(super) fn type_oid(spec: TypeSpec) -> i64 {
    match spec.ty {
        SqlType::Text if spec.fixed => BPCHAR_OID,
        SqlType::Text if spec.max_len.is_some() => VARCHAR_OID,
        ty => i64::from(ty.pg_oid()),
    }
}

/// `pg_attribute.atttypmod` of a column type: the declared length or precision, -1 for none.
pub(super) fn type_modifier(spec: TypeSpec) -> i64 {
    match (spec.ty, spec.max_len, spec.numeric) {
        (SqlType::Text, Some(n), _) => i64::from(n) + VARHDRSZ,
        (SqlType::Numeric, _, Some((p, s))) => ((i64::from(p) << 16) | i64::from(s)) + VARHDRSZ,
        _ => -1,
    }
}

/// `format_type(oid, typmod)`: the SQL name of a type (`character varying(20)`); `typmod`
/// `None` is a NULL modifier, which PostgreSQL prints slightly differently for `bpchar`.
pub(crate) fn format_type(oid: i64, typmod: Option<i64>) -> String {
    let with_len = |base: &str| match typmod {
        Some(m) if m >= VARHDRSZ => format!("{base}({})", m - VARHDRSZ),
        _ => base.to_string(),
    };
    match oid {
        0 => "-".to_string(),
        16 => "boolean".into(),
        17 => "bytea".into(),
        18 => "\"char\"".into(),
        19 => "name".into(),
        20 => "bigint".into(),
        21 => "smallint".into(),
        23 => "integer".into(),
        25 => "text".into(),
        26 => "oid".into(),
        700 => "real".into(),
        701 => "double precision".into(),
        BPCHAR_OID => match typmod {
            None => "character".into(),
            Some(m) if m < VARHDRSZ => "bpchar".into(),
            Some(_) => with_len("character"),
        },
        VARCHAR_OID => with_len("character varying"),
        1082 => "date".into(),
        1114 => "timestamp without time zone".into(),
        1184 => "timestamp with time zone".into(),
        1186 => "interval".into(),
        1700 => match typmod {
            Some(m) if m >= VARHDRSZ => {
                let m = m - VARHDRSZ;
                format!("numeric({},{})", m >> 16, m & 0xffff)
            }
            _ => "numeric".into(),
        },
        2205 => "regclass".into(),
        2206 => "regtype".into(),
        2950 => "uuid".into(),
        _ => "???".into(),
    }
}

/// `pg_size_pretty(bytes)`: bytes below 10 kB, else the largest unit (kB, MB, GB, TB, PB)
/// that keeps the number below 10240, rounded half away from zero, as PostgreSQL prints it.
pub(crate) fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    // One extra bit is kept for rounding.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if half_rounded(size).abs() < LIMIT {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// An identifier as PostgreSQL quotes it in generated SQL: bare when it is lower case
/// letters, digits and underscores not starting with a digit, quoted otherwise.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string as a SQL literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A column's DEFAULT as `pg_get_expr` prints it: literals carry their type
/// (`'x'::character varying`, `'-1'::integer`), `nextval` names its sequence as a regclass.
pub(super) fn default_text(col: &ColumnDesc, stored: &str) -> String {
    let Ok(expr) = crate::plan::parse_stored_expr(stored, &col.name) else {
        return stored.to_string();
    };
    let spec = col.spec();
    let base_type = format_type(type_oid(spec), Some(-1));
    match &expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => {
                let ty = if spec.fixed {
                    "bpchar".into()
                } else {
                    base_type
                };
                format!("{}::{ty}", quote_literal(s))
            }
            _ => stored.to_string(),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => match inner.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    let ty = if n.contains(['.', 'e', 'E']) || n.parse::<i64>().is_err() {
                        "numeric"
                    } else if n.parse::<i32>().is_ok() {
                        "integer"
                    } else {
                        "bigint"
                    };
                    format!("'-{n}'::{ty}")
                }
                _ => stored.to_string(),
            },
            _ => stored.to_string(),
        },
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("nextval") => {
            // The sequence prints as a regclass does: quoted when it needs to be.
            let arg = f.args.to_string();
            let inner = arg.trim_start_matches('(').trim_end_matches(')');
            match inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                Some(seq) if !seq.contains('\'') => {
                    format!("nextval({}::regclass)", quote_literal(&quote_ident(seq)))
                }
                _ => stored.to_string(),
            }
        }
        Expr::Nested(inner) => inner.to_string(),
        _ => stored.to_string(),
    }
}

/// The columns of index `ix` of `t` as `(a, b DESC)`, with `INCLUDE (c)` when it stores some.
fn index_columns(t: &TableDesc, ix: &IndexDesc) -> String {
    let keys: Vec<String> = ix
        .columns
        .iter()
        .map(|&(c, desc)| {
            let name = quote_ident(&t.columns[c].name);
            if desc { format!("{name} DESC") } else { name }
        })
        .collect();
    let mut out = format!("({})", keys.join(", "));
    if !ix.stored.is_empty() {
        let stored: Vec<String> = ix
            .stored
            .iter()
            .map(|&c| quote_ident(&t.columns[c].name))
            .collect();
        out.push_str(&format!(" INCLUDE ({})", stored.join(", ")));
    }
    out
}

/// The primary index of `t` as an index descriptor (its columns are the key, ascending).
pub(super) fn primary_index(t: &TableDesc) -> IndexDesc {
    IndexDesc {
        id: 1,
        name: t.pkey_name(),
        unique: true,
        columns: t.pk.iter().map(|&c| (c, false)).collect(),
        stored: vec![],
    }
}

/// `pg_get_indexdef(index)`: `CREATE [UNIQUE] INDEX name ON public.t USING btree (...)`;
/// the pretty form leaves out the schema of the (always visible) table.
pub(super) fn index_definition(t: &TableDesc, ix: &IndexDesc, pretty: bool) -> String {
    format!(
        "CREATE {}INDEX {} ON {}{} USING btree {}",
        if ix.unique { "UNIQUE " } else { "" },
        quote_ident(&ix.name),
        if pretty { "" } else { "public." },
        quote_ident(&t.name),
        index_columns(t, ix)
    )
}

/// `pg_get_constraintdef` of the primary key: `PRIMARY KEY (a, b)`.
pub(super) fn primary_key_definition(t: &TableDesc) -> String {
    let cols: Vec<String> =
        t.pk.iter()
            .map(|&c| quote_ident(&t.columns[c].name))
            .collect();
    format!("PRIMARY KEY ({})", cols.join(", "))
}

/// `pg_get_constraintdef` of a CHECK constraint.
pub(super) fn check_definition(expr: &str) -> String {
    format!("CHECK ({expr})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_match_postgres() {
        let cases = [
            (23, None, "integer"),
            (VARCHAR_OID, Some(24), "character varying(20)"),
            (VARCHAR_OID, Some(-1), "character varying"),
            (BPCHAR_OID, None, "character"),
            (BPCHAR_OID, Some(-1), "bpchar"),
            (BPCHAR_OID, Some(9), "character(5)"),
            (1700, Some((10 << 16 | 2) + 4), "numeric(10,2)"),
            (1700, Some(-1), "numeric"),
            (0, None, "-"),
            (99_999, None, "???"),
        ];
        for (oid, typmod, want) in cases {
            assert_eq!(
                format_type(oid, typmod),
                want,
                "format_type({oid}, {typmod:?})"
            );
        }
    }

    #[test]
    fn sizes_print_as_postgres_does() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
        assert_eq!(size_pretty(-20_000), "-20 kB");
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(quote_ident("abc_1"), "abc_1");
        assert_eq!(quote_ident("Abc"), "\"Abc\"");
        assert_eq!(quote_ident("a b"), "\"a b\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn defaults_print_with_their_types() {
        let mut col = ColumnDesc::plain(1, "c".into(), SqlType::Text);
        assert_eq!(default_text(&col, "'q'"), "'q'::text");
        col.max_len = Some(20);
        assert_eq!(default_text(&col, "'x'"), "'x'::character varying");
        col.fixed = true;
        assert_eq!(default_text(&col, "'a'"), "'a'::bpchar");
        let int = ColumnDesc::plain(2, "i".into(), SqlType::Int8);
        assert_eq!(default_text(&int, "-1"), "'-1'::integer");
        assert_eq!(default_text(&int, "5"), "5");
        assert_eq!(default_text(&int, "-1.5"), "'-1.5'::numeric");
        assert_eq!(
            default_text(&int, "nextval('t_i_seq')"),
            "nextval('t_i_seq'::regclass)"
        );
        assert_eq!(
            default_text(&int, "nextval('T_i_seq')"),
            "nextval('\"T_i_seq\"'::regclass)"
        );
        assert_eq!(default_text(&int, "now()"), "now()");
        assert_eq!(default_text(&int, "(1 + 2)"), "1 + 2");
        let date = ColumnDesc::plain(3, "d".into(), SqlType::Date);
        assert_eq!(default_text(&date, "'2020-01-01'"), "'2020-01-01'::date");
    }
}
