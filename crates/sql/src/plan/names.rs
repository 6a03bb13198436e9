//! Names: identifier case folding, table names, result column labels and statement kinds.

use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart, Statement, Value};

use super::BindContext;
use crate::api::SqlError;
use crate::types;

/// An identifier as PostgreSQL stores it: unquoted names fold to lower case (ASCII only, as
/// PostgreSQL does), quoted names are kept exactly.
pub(crate) fn ident(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_ascii_lowercase()
    }
}

/// The identifiers of an object name (function-style parts are rejected).
pub(crate) fn parts(name: &ObjectName) -> Result<Vec<&Ident>, SqlError> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Ok(id),
            ObjectNamePart::Function(_) => Err(SqlError::syntax(format!("invalid name: {name}"))),
        })
        .collect()
}

/// The folded table name of `name`. A `public.` schema qualifier is accepted (every table lives
/// in the one namespace for now); other schemas do not exist.
pub(crate) fn table_name(name: &ObjectName) -> Result<String, SqlError> {
    let p = parts(name)?;
    match p.as_slice() {
        [t] => Ok(ident(t)),
        [schema, t] if ident(schema) == "public" => Ok(ident(t)),
        [schema, _] => Err(SqlError::new(
            "3F000",
            format!("schema \"{}\" does not exist", ident(schema)),
        )),
        _ => Err(SqlError::unsupported(format!(
            "cross-database references are not implemented: {name}"
        ))),
    }
}

/// The name under which a relation that is read is looked up: [`table_name`], except that
/// `pg_catalog.x` names PostgreSQL's catalog table `x` (see `syscat.rs`).
pub(crate) fn relation_name(name: &ObjectName) -> Result<String, SqlError> {
    let p = parts(name)?;
    match p.as_slice() {
        [schema, t] if ident(schema) == "pg_catalog" => Ok(format!("pg_catalog.{}", ident(t))),
        _ => table_name(name),
    }
}

/// The position of the last part of `name` in the statement.
pub(crate) fn object_position(name: &ObjectName, ctx: &BindContext<'_>) -> Option<u32> {
    match name.0.last()? {
        ObjectNamePart::Identifier(id) => ctx.position(id.span.start),
        ObjectNamePart::Function(_) => None,
    }
}

/// The label PostgreSQL gives a result column computed by `e` (its `FigureColname`), and
/// whether it is a weak guess (`?column?`, or a cast's type name).
pub(crate) fn column_label(e: &Expr) -> String {
    label(e)
        .map(|(s, _)| s)
        .unwrap_or_else(|| "?column?".to_string())
}

/// Returns the label and its strength: 2 for names taken from columns and functions, 1 for
/// type names of casts.
fn label(e: &Expr) -> Option<(String, u8)> {
    match e {
        Expr::Identifier(id) => Some((ident(id), 2)),
        Expr::CompoundIdentifier(ids) => ids.last().map(|id| (ident(id), 2)),
        Expr::Function(f) => {
            let name = f.name.0.last().and_then(|p| match p {
                ObjectNamePart::Identifier(id) => Some(ident(id)),
                ObjectNamePart::Function(_) => None,
            })?;
            // `current_user` and friends parse as argument-less functions; they are labelled by
            // their name too.
            Some((name, 2))
        }
        Expr::Nested(inner) => label(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match label(expr) {
            Some((s, 2)) => Some((s, 2)),
            _ => types::resolve(data_type)
                .ok()
                .map(|spec| (types::internal_name(spec).to_string(), 1)),
        },
        Expr::TypedString(ts) => types::resolve(&ts.data_type)
            .ok()
            .map(|spec| (types::internal_name(spec).to_string(), 1)),
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => Some(("bool".to_string(), 1)),
        Expr::Case { .. } => Some(("case".to_string(), 1)),
        _ => None,
    }
}

/// A short name of a statement's kind for "not supported" messages (`CREATE INDEX`).
pub(crate) fn statement_kind(stmt: &Statement) -> String {
    const SECOND: &[&str] = &[
        "TABLE",
        "INDEX",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "SEQUENCE",
        "FUNCTION",
        "TYPE",
        "ROLE",
        "USER",
        "EXTENSION",
        "TRIGGER",
        "DOMAIN",
        "PROCEDURE",
        "POLICY",
        "MATERIALIZED",
        "UNIQUE",
    ];
    let text = stmt.to_string();
    let mut words = text.split_whitespace().map(|w| w.to_ascii_uppercase());
    let first = words.next().unwrap_or_default();
    match words.next() {
        Some(w) if SECOND.contains(&w.as_str()) => format!("{first} {w}"),
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn expr(s: &str) -> Expr {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(s)
            .unwrap()
            .parse_expr()
            .unwrap()
    }

    #[test]
    fn labels_follow_postgresql() {
        assert_eq!(column_label(&expr("a")), "a");
        assert_eq!(column_label(&expr("t.Bee")), "bee");
        assert_eq!(column_label(&expr("\"Bee\"")), "Bee");
        assert_eq!(column_label(&expr("count(*)")), "count");
        assert_eq!(column_label(&expr("a + 1")), "?column?");
        assert_eq!(column_label(&expr("1::bigint")), "int8");
        assert_eq!(column_label(&expr("a::bigint")), "a");
        assert_eq!(column_label(&expr("CAST('x' AS varchar(3))")), "varchar");
        assert_eq!(column_label(&expr("true")), "bool");
        assert_eq!(column_label(&expr("'x'")), "?column?");
        assert_eq!(column_label(&expr("CASE WHEN a THEN 1 END")), "case");
        assert_eq!(column_label(&expr("current_user")), "current_user");
        assert_eq!(column_label(&expr("(version())")), "version");
    }

    #[test]
    fn table_names_fold_and_accept_public() {
        let name = |s: &str| ObjectName::from(s.split('.').map(Ident::new).collect::<Vec<_>>());
        assert_eq!(table_name(&name("Foo")).unwrap(), "foo");
        assert_eq!(table_name(&name("public.foo")).unwrap(), "foo");
        assert_eq!(table_name(&name("other.foo")).unwrap_err().code, "3F000");
        let quoted = ObjectName::from(vec![Ident::with_quote('"', "Foo")]);
        assert_eq!(table_name(&quoted).unwrap(), "Foo");
    }
}
