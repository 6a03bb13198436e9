//! The columns an expression can refer to: those of the one table in FROM (or none).

use std::sync::Arc;

use sqlparser::ast::Ident;

use super::BindContext;
use super::names::ident;
use crate::api::{SqlError, SqlType};
use crate::catalog::TableDesc;

/// Name resolution scope of an expression. Rows seen by expressions bound in this scope are
/// full table rows in descriptor column order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    relation: Option<(String, Arc<TableDesc>)>,
}

impl Scope {
    /// No columns (a SELECT without FROM, INSERT values, defaults).
    pub(crate) fn empty() -> Scope {
        Scope::default()
    }

    /// The columns of `table`, referred to as `visible_name` (its alias, if it has one).
    pub(crate) fn table(visible_name: String, table: Arc<TableDesc>) -> Scope {
        Scope {
            relation: Some((visible_name, table)),
        }
    }

    /// The table in scope.
    pub(crate) fn table_desc(&self) -> Option<&Arc<TableDesc>> {
        self.relation.as_ref().map(|(_, t)| t)
    }

    /// The name the table is referred to by.
    pub(crate) fn relation_name(&self) -> Option<&str> {
        self.relation.as_ref().map(|(n, _)| n.as_str())
    }

    /// Resolves `col`, `tbl.col` or `schema.tbl.col` to a row position and type.
    pub(crate) fn resolve(
        &self,
        idents: &[Ident],
        ctx: &BindContext<'_>,
    ) -> Result<(usize, SqlType), SqlError> {
        let pos = idents.first().and_then(|i| ctx.position(i.span.start));
        let (qualifier, col) = match idents {
            [c] => (None, c),
            [t, c] => (Some(t), c),
            [s, t, c] if ident(s) == "public" => (Some(t), c),
            _ => {
                let full: Vec<String> = idents.iter().map(ident).collect();
                return Err(SqlError::syntax(format!(
                    "improper qualified name (too many dotted names): {}",
                    full.join(".")
                ))
                .with_position(pos));
            }
        };
        let col_name = ident(col);
        if let Some(q) = qualifier {
            let q = ident(q);
            if self.relation_name() != Some(q.as_str()) {
                return Err(SqlError::new(
                    "42P01",
                    format!("missing FROM-clause entry for table \"{q}\""),
                )
                .with_position(pos));
            }
        }
        let found = self
            .relation
            .as_ref()
            .and_then(|(_, t)| t.column_index(&col_name).map(|i| (i, t.columns[i].ty)));
        found.ok_or_else(|| {
            let shown = match qualifier {
                Some(q) => format!("{}.{col_name}", ident(q)),
                None => col_name.clone(),
            };
            let e = if qualifier.is_some() {
                SqlError::new("42703", format!("column {shown} does not exist"))
            } else {
                SqlError::undefined_column(&shown)
            };
            e.with_position(pos)
        })
    }
}
