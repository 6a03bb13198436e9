//! Binding the catalog functions and object-identifier types psql's describe queries use.
//!
//! Functions that look an object up by oid (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_viewdef`) and casts between oids and names (`'t'::regclass`, `c.oid::regclass`)
//! are bound as lookups ([`SubqueryKind::Lookup`]) in a query over the catalog views of
//! `syscat/`: the query runs once per statement, and each call finds its row by key. Functions
//! about features Meridian does not have (comments, rules, triggers, publications, per-table
//! sizes) return their "none" value. Oids are `int8`; `regclass`, `regnamespace` and `regrole`
//! read as the name from an oid and as the oid from a name; `regtype` reads as `format_type`.

use sqlparser::ast::{
    DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Statement, Value,
};

use super::bind::ExprBinder;
use super::coerce::{Bound, explicit_cast, implicit};
use super::names::ident;
use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{CmpOp, Func, ScalarExpr, SubqueryKind};
use crate::types::is_integer;

/// The catalog queries lookups read: key columns, then the value.
const CONSTRAINT_DEFS: &str = "SELECT oid, meridian_condef FROM pg_catalog.pg_constraint";
const INDEX_DEFS: &str = "SELECT indexrelid, meridian_indexdef FROM pg_catalog.pg_index";
const INDEX_DEFS_PRETTY: &str =
    "SELECT indexrelid, meridian_indexdef_pretty FROM pg_catalog.pg_index";
const INDEX_COLUMNS: &str = "SELECT attrelid, attnum, attname FROM pg_catalog.pg_attribute";
const VIEW_DEFS: &str = "SELECT oid, meridian_viewdef FROM pg_catalog.pg_class";
const VIEW_DEFS_BY_NAME: &str = "SELECT relname, meridian_viewdef FROM pg_catalog.pg_class";
const RELATION_NAMES: &str = "SELECT oid, relname FROM pg_catalog.pg_class";
const RELATION_OIDS: &str = "SELECT relname, oid FROM pg_catalog.pg_class";
const NAMESPACE_NAMES: &str = "SELECT oid, nspname FROM pg_catalog.pg_namespace";
const ROLE_NAMES: &str = "SELECT oid, rolname FROM pg_catalog.pg_roles";

/// The arguments of a call written as a plain list of expressions.
fn plain_args(f: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// `e::ty`.
fn explicit(e: ScalarExpr, ty: SqlType) -> ScalarExpr {
    ScalarExpr::Cast {
        expr: Box::new(e),
        to: crate::types::TypeSpec::plain(ty),
        explicit: true,
    }
}

/// The relation name a `regclass` literal names: an optional `public.` or `pg_catalog.`
/// qualifier dropped, unquoted parts folded to lower case.
fn regclass_name(text: &str) -> String {
    let folded: Vec<String> = text
        .split('.')
        .map(
            |p| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => p.to_ascii_lowercase(),
            },
        )
        .collect();
    match folded.as_slice() {
        [schema, name] if schema == "public" => name.clone(),
        [schema, name] if schema == "pg_catalog" => format!("pg_catalog.{name}"),
        _ => folded.join("."),
    }
}

/// The object-identifier types a cast can name, and `T[]` (arrays are text).
enum CatalogType {
    Oid,
    RegClass,
    RegType,
    RegNamespace,
    RegRole,
    /// A type Meridian holds as text: `name`, `"char"`, arrays.
    Text,
    /// A `pg_catalog.`-qualified ordinary type.
    Qualified(DataType),
}

fn catalog_type(dt: &DataType) -> Option<CatalogType> {
    let name = match dt {
        DataType::Array(_) => return Some(CatalogType::Text),
        DataType::Regclass => return Some(CatalogType::RegClass),
        DataType::Custom(name, modifiers) if modifiers.is_empty() => name,
        _ => return None,
    };
    let parts: Vec<&Ident> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Some(id),
            ObjectNamePart::Function(_) => None,
        })
        .collect::<Option<_>>()?;
    let (qualified, last) = match parts.as_slice() {
        [last] => (false, *last),
        [schema, last] if ident(schema) == "pg_catalog" => (true, *last),
        _ => return None,
    };
    Some(match ident(last).as_str() {
        "oid" => CatalogType::Oid,
        "regclass" => CatalogType::RegClass,
        "regtype" => CatalogType::RegType,
        "regnamespace" => CatalogType::RegNamespace,
        "regrole" => CatalogType::RegRole,
        "name" | "char" => CatalogType::Text,
        _ if qualified => CatalogType::Qualified(DataType::Custom(
            ObjectName(vec![ObjectNamePart::Identifier(last.clone())]),
            vec![],
        )),
        _ => return None,
    })
}

impl ExprBinder<'_> {
    /// The value column of `query` (`SELECT k1, ..., kn, value FROM ...`, over the catalog)
    /// in the row whose keys equal `keys`.
    fn bind_lookup(
        &mut self,
        query: &str,
        keys: Vec<Bound>,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let stmts = crate::parse::parse(query)?;
        let Some(Statement::Query(q)) = stmts.first() else {
            return Err(SqlError::internal(format!(
                "catalog lookup {query:?} is not a query"
            )));
        };
        let (plan, captures) = self.plan_subquery(q)?;
        let (value, key_cols) = plan
            .columns
            .split_last()
            .filter(|(_, k)| k.len() == keys.len())
            .ok_or_else(|| SqlError::internal(format!("catalog lookup {query:?} is malformed")))?;
        let value_ty = value.ty;
        let keys = keys
            .into_iter()
            .zip(key_cols)
            .map(|(k, c)| implicit(k, c.ty))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.subquery(
            plan.rel,
            captures,
            SubqueryKind::Lookup { keys },
            value_ty,
            pos,
        ))
    }

    /// A constant of type `ty`, after binding `args` (so that they are still checked).
    fn constant_after(
        &mut self,
        args: &[&Expr],
        value: Datum,
        ty: SqlType,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        for a in args {
            self.bind(a)?;
        }
        Ok(Bound::known(ScalarExpr::Literal(value, ty), pos))
    }

    /// The catalog functions psql calls; `None` when `name` is not one of them.
    pub(super) fn bind_catalog_function(
        &mut self,
        name: &str,
        f: &Function,
        pos: Option<u32>,
    ) -> Result<Option<Bound>, SqlError> {
        let Some(args) = plain_args(f) else {
            return Ok(None);
        };
        let none = |b: &mut Self, value, ty| b.constant_after(&args, value, ty, pos).map(Some);
        match (name, args.len()) {
            // Comments, rules, triggers, extended statistics and publications do not exist.
            ("col_description" | "shobj_description", 2)
            | ("obj_description", 1 | 2)
            | ("pg_get_statisticsobjdef_columns", 1)
            | ("pg_get_ruledef" | "pg_get_triggerdef", 1 | 2)
            | ("pg_get_partkeydef", 1) => none(self, Datum::Null, SqlType::Text),
            ("pg_relation_is_publishable" | "pg_is_other_temp_schema", 1) => {
                none(self, Datum::Bool(false), SqlType::Bool)
            }
            // Sizes on disk are not tracked per table (data of all tables shares one store).
            (
                "pg_table_size"
                | "pg_relation_size"
                | "pg_total_relation_size"
                | "pg_indexes_size"
                | "pg_database_size",
                1,
            ) => none(self, Datum::Null, SqlType::Int8),
            // Every user may use every object.
            ("has_database_privilege" | "has_table_privilege" | "has_schema_privilege", 2 | 3) => {
                none(self, Datum::Bool(true), SqlType::Bool)
            }
            // Stored expressions are kept as the text they print as.
            ("pg_get_expr", 2 | 3) => {
                let e = self.bind(args[0])?;
                for a in &args[1..] {
                    self.bind(a)?;
                }
                Ok(Some(Bound::known(implicit(e, SqlType::Text)?, pos)))
            }
            ("pg_get_constraintdef", 1 | 2) => {
                let oid = self.bind(args[0])?;
                self.bind_lookup(CONSTRAINT_DEFS, vec![oid], pos).map(Some)
            }
            ("pg_get_indexdef", 1) => {
                let oid = self.bind(args[0])?;
                self.bind_lookup(INDEX_DEFS, vec![oid], pos).map(Some)
            }
            ("pg_get_indexdef", 3) => self.bind_index_column(&args, pos).map(Some),
            ("pg_get_viewdef", 1 | 2) => {
                // A string literal resolves to the variant taking the view's name, as in
                // PostgreSQL.
                let by_name = matches!(args[0], Expr::Value(v)
                    if matches!(v.value, Value::SingleQuotedString(_)));
                let key = self.bind(args[0])?;
                let query = if by_name {
                    VIEW_DEFS_BY_NAME
                } else {
                    VIEW_DEFS
                };
                self.bind_lookup(query, vec![key], pos).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `pg_get_indexdef(index, column, pretty)`: column 0 is the whole definition, column n
    /// the n-th column's name.
    fn bind_index_column(&mut self, args: &[&Expr], pos: Option<u32>) -> Result<Bound, SqlError> {
        let (oid, column) = (self.bind(args[0])?, self.bind(args[1])?);
        let pretty = super::coerce::to_bool(self.bind(args[2])?, "pg_get_indexdef")?;
        // attnum is an int2, which an int4 argument only converts to explicitly.
        let column = explicit(implicit(column, SqlType::Int4)?, SqlType::Int2);
        let plain = self.bind_lookup(INDEX_DEFS, vec![oid.clone()], pos)?;
        let pretty_def = self.bind_lookup(INDEX_DEFS_PRETTY, vec![oid.clone()], pos)?;
        let whole = ScalarExpr::Case {
            whens: vec![(pretty, pretty_def.expr)],
            otherwise: Some(Box::new(plain.expr)),
            ty: SqlType::Text,
        };
        let key = Bound::known(column.clone(), pos);
        let one = self.bind_lookup(INDEX_COLUMNS, vec![oid, key], pos)?;
        let is_whole = ScalarExpr::Compare {
            op: CmpOp::Eq,
            left: Box::new(column),
            right: Box::new(ScalarExpr::Literal(Datum::Int(0), SqlType::Int2)),
        };
        Ok(Bound::known(
            ScalarExpr::Case {
                whens: vec![(is_whole, whole)],
                otherwise: Some(Box::new(one.expr)),
                ty: SqlType::Text,
            },
            pos,
        ))
    }

    /// The name of the object `oid` identifies according to `query`, or the oid as text when
    /// there is none (as PostgreSQL prints an unknown regclass).
    fn bind_oid_name(
        &mut self,
        query: &str,
        oid: Bound,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        let number = explicit(implicit(oid.clone(), SqlType::Int8)?, SqlType::Text);
        let name = self.bind_lookup(query, vec![oid], pos)?;
        Ok(Bound::known(
            ScalarExpr::Func {
                func: Func::Coalesce,
                args: vec![name.expr, number],
                ty: SqlType::Text,
            },
            pos,
        ))
    }

    /// Casts to the object-identifier types, to `pg_catalog.`-qualified types and to arrays;
    /// `None` for other casts.
    pub(super) fn bind_catalog_cast(
        &mut self,
        expr: &Expr,
        dt: &DataType,
        pos: Option<u32>,
    ) -> Result<Option<Bound>, SqlError> {
        let Some(target) = catalog_type(dt) else {
            return Ok(None);
        };
        let inner = self.bind(expr)?;
        let from_int = !inner.unknown && is_integer(inner.ty());
        let b = match target {
            CatalogType::Oid => Bound::known(explicit_cast(inner, &DataType::Int8(None))?, pos),
            CatalogType::Text => Bound::known(explicit_cast(inner, &DataType::Text)?, pos),
            CatalogType::Qualified(dt) => Bound::known(explicit_cast(inner, &dt)?, pos),
            CatalogType::RegClass if from_int => self.bind_oid_name(RELATION_NAMES, inner, pos)?,
            CatalogType::RegClass => {
                let key = match &inner.expr {
                    ScalarExpr::Literal(Datum::Text(s), _) if inner.unknown => Bound::known(
                        ScalarExpr::Literal(Datum::Text(regclass_name(s)), SqlType::Text),
                        pos,
                    ),
                    _ => inner,
                };
                self.bind_lookup(RELATION_OIDS, vec![key], pos)?
            }
            CatalogType::RegNamespace if from_int => {
                self.bind_oid_name(NAMESPACE_NAMES, inner, pos)?
            }
            CatalogType::RegRole if from_int => self.bind_oid_name(ROLE_NAMES, inner, pos)?,
            CatalogType::RegType if from_int => {
                let oid = implicit(inner, SqlType::Int8)?;
                Bound::known(
                    ScalarExpr::Func {
                        func: Func::FormatType,
                        args: vec![oid, ScalarExpr::null(SqlType::Int4)],
                        ty: SqlType::Text,
                    },
                    pos,
                )
            }
            CatalogType::RegNamespace | CatalogType::RegRole | CatalogType::RegType => {
                return Err(SqlError::unsupported(format!(
                    "casting {} to {dt} is not supported yet",
                    inner.type_name()
                )));
            }
        };
        Ok(Some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::regclass_name;

    #[test]
    fn regclass_literals_name_relations() {
        assert_eq!(regclass_name("T"), "t");
        assert_eq!(regclass_name("public.t"), "t");
        assert_eq!(regclass_name("\"My T\""), "My T");
        assert_eq!(regclass_name("pg_catalog.pg_class"), "pg_catalog.pg_class");
    }
}
