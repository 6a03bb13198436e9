//! Name resolution: the columns an expression can refer to, and the enclosing queries a
//! correlated subquery can reach.
//!
//! A [`Scope`] lists the columns of a FROM clause in order: row position `i` of the rows the
//! FROM clause produces is `cols[i]`. A subquery binds with a chain of [`Frame`]s, one per
//! enclosing query; a name not found locally is looked up outward, and a hit is *captured*:
//! the frame records an expression over its own row, and the subquery reads its value as
//! [`ScalarExpr::Outer`]. A name found two or more levels out is captured by every level in
//! between, so each subquery only ever reads its immediate parent's values.

use std::cell::RefCell;
use std::sync::Arc;

use sqlparser::ast::Ident;

use super::BindContext;
use super::names::ident;
use crate::api::{SqlError, SqlType};
use crate::catalog::TableDesc;
use crate::expr::ScalarExpr;

/// One column visible in a scope.
#[derive(Debug, Clone)]
pub(crate) struct ScopeColumn {
    /// The table name or alias that qualifies it (`t` in `t.a`), if any.
    pub qualifier: Option<String>,
    /// The column name.
    pub name: String,
    /// Its type.
    pub ty: SqlType,
    /// Not expanded by `*` (a hidden rowid, the copies of a `USING` column).
    pub hidden: bool,
    /// Only reachable with a qualifier (the copies of a `USING` column: the unqualified name
    /// means the merged column).
    pub qualified_only: bool,
}

/// The columns of a FROM clause, in row order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub cols: Vec<ScopeColumn>,
    /// Columns `*` lists first (the merged columns of `USING` / `NATURAL` joins, as
    /// PostgreSQL orders them); the other visible columns follow in row order.
    pub star_first: Vec<usize>,
}

/// What a name resolved to in one scope.
pub(crate) enum Lookup {
    /// Row position and type.
    Found(usize, SqlType),
    /// No such column here; `qualifier_known` says whether the qualifier (if any) names a
    /// relation of this scope.
    Missing { qualifier_known: bool },
}

impl Scope {
    /// No columns (a SELECT without FROM, VALUES, defaults).
    pub(crate) fn empty() -> Scope {
        Scope::default()
    }

    /// The columns of `table`, qualified by `visible_name` (its alias, if it has one).
    pub(crate) fn table(visible_name: &str, table: &Arc<TableDesc>) -> Scope {
        Scope {
            star_first: vec![],
            cols: table
                .columns
                .iter()
                .map(|c| ScopeColumn {
                    qualifier: Some(visible_name.to_string()),
                    name: c.name.clone(),
                    ty: c.ty,
                    hidden: c.hidden,
                    qualified_only: false,
                })
                .collect(),
        }
    }

    /// Columns called `names` with types `types`, qualified by `qualifier`.
    pub(crate) fn named(qualifier: Option<&str>, names: &[String], types: &[SqlType]) -> Scope {
        Scope {
            star_first: vec![],
            cols: names
                .iter()
                .zip(types)
                .map(|(n, t)| ScopeColumn {
                    qualifier: qualifier.map(str::to_string),
                    name: n.clone(),
                    ty: *t,
                    hidden: false,
                    qualified_only: false,
                })
                .collect(),
        }
    }

    /// Number of columns.
    pub(crate) fn len(&self) -> usize {
        self.cols.len()
    }

    /// Appends `other`'s columns.
    pub(crate) fn extend(&mut self, other: Scope) {
        let base = self.cols.len();
        self.star_first
            .extend(other.star_first.iter().map(|i| i + base));
        self.cols.extend(other.cols);
    }

    /// The columns `*` expands to, in order.
    pub(crate) fn star(&self) -> Vec<usize> {
        let mut out = self.star_first.clone();
        out.extend(
            (0..self.cols.len()).filter(|i| !self.cols[*i].hidden && !self.star_first.contains(i)),
        );
        out
    }

    /// Whether some column is qualified by `q`.
    pub(crate) fn has_qualifier(&self, q: &str) -> bool {
        self.cols.iter().any(|c| c.qualifier.as_deref() == Some(q))
    }

    /// Resolves `col`, `tbl.col` or `schema.tbl.col`.
    pub(crate) fn lookup(
        &self,
        idents: &[Ident],
        ctx: &BindContext<'_>,
    ) -> Result<Lookup, SqlError> {
        let pos = idents.first().and_then(|i| ctx.position(i.span.start));
        let (qualifier, col) = split_name(idents).map_err(|e| e.with_position(pos))?;
        let name = ident(col);
        let hits: Vec<usize> = match &qualifier {
            None => (0..self.cols.len())
                .filter(|&i| !self.cols[i].qualified_only && self.cols[i].name == name)
                .collect(),
            Some(q) => (0..self.cols.len())
                .filter(|&i| {
                    self.cols[i].qualifier.as_deref() == Some(q.as_str())
                        && self.cols[i].name == name
                })
                .collect(),
        };
        match hits.as_slice() {
            [i] => Ok(Lookup::Found(*i, self.cols[*i].ty)),
            [] => Ok(Lookup::Missing {
                qualifier_known: qualifier.as_deref().is_none_or(|q| self.has_qualifier(q)),
            }),
            _ => {
                let shown = match &qualifier {
                    Some(q) => format!("{q}.{name}"),
                    None => name,
                };
                Err(SqlError::new(
                    "42702",
                    format!("column reference \"{shown}\" is ambiguous"),
                )
                .with_position(pos))
            }
        }
    }
}

/// Splits a column reference into its qualifier and column name.
pub(crate) fn split_name(idents: &[Ident]) -> Result<(Option<String>, &Ident), SqlError> {
    match idents {
        [c] => Ok((None, c)),
        [t, c] => Ok((Some(ident(t)), c)),
        [s, t, c] if ident(s) == "public" => Ok((Some(ident(t)), c)),
        _ => {
            let full: Vec<String> = idents.iter().map(ident).collect();
            Err(SqlError::syntax(format!(
                "improper qualified name (too many dotted names): {}",
                full.join(".")
            )))
        }
    }
}

/// The error for a name found nowhere.
pub(crate) fn not_found(
    idents: &[Ident],
    qualifier_known: bool,
    ctx: &BindContext<'_>,
) -> SqlError {
    let pos = idents.first().and_then(|i| ctx.position(i.span.start));
    let Ok((qualifier, col)) = split_name(idents) else {
        return SqlError::syntax("improper qualified name").with_position(pos);
    };
    let name = ident(col);
    let e = match qualifier {
        Some(q) if !qualifier_known => SqlError::new(
            "42P01",
            format!("missing FROM-clause entry for table \"{q}\""),
        ),
        Some(q) => SqlError::new("42703", format!("column {q}.{name} does not exist")),
        None => SqlError::undefined_column(&name),
    };
    e.with_position(pos)
}

/// An enclosing query, seen from a subquery being bound.
pub(crate) struct Frame<'a> {
    /// The enclosing query's scope.
    pub scope: &'a Scope,
    /// When the subquery sits in an aggregate query's output (select list, HAVING, ORDER BY):
    /// the GROUP BY expressions, since only those exist in that query's rows there.
    pub groups: Option<&'a [ScalarExpr]>,
    /// Expressions over the enclosing row that the subquery reads (as `Outer(i)`).
    pub captures: RefCell<Vec<ScalarExpr>>,
    /// The next query out.
    pub parent: Option<&'a Frame<'a>>,
}

impl<'a> Frame<'a> {
    /// A frame for a subquery of the query with `scope`.
    pub(crate) fn new(
        scope: &'a Scope,
        groups: Option<&'a [ScalarExpr]>,
        parent: Option<&'a Frame<'a>>,
    ) -> Frame<'a> {
        Frame {
            scope,
            groups,
            captures: RefCell::new(Vec::new()),
            parent,
        }
    }

    /// Records that the subquery reads `e` (an expression over this frame's row) and
    /// returns how the subquery refers to it.
    fn capture(&self, e: ScalarExpr) -> ScalarExpr {
        let ty = e.ty();
        let mut caps = self.captures.borrow_mut();
        let i = match caps.iter().position(|c| *c == e) {
            Some(i) => i,
            None => {
                caps.push(e);
                caps.len() - 1
            }
        };
        ScalarExpr::Outer(i, ty)
    }

    /// Resolves a name in this frame or further out. `Ok(None)`: found nowhere;
    /// `qualifier_known` is set when some level knows the qualifier.
    pub(crate) fn resolve(
        &self,
        idents: &[Ident],
        ctx: &BindContext<'_>,
        qualifier_known: &mut bool,
    ) -> Result<Option<ScalarExpr>, SqlError> {
        match self.scope.lookup(idents, ctx)? {
            Lookup::Found(i, ty) => {
                let col = ScalarExpr::Column(i, ty);
                let local = match self.groups {
                    None => col,
                    Some(groups) => match groups.iter().position(|g| *g == col) {
                        Some(g) => ScalarExpr::Column(g, ty),
                        None => {
                            let name = idents.last().map(ident).unwrap_or_default();
                            return Err(SqlError::new(
                                "42803",
                                format!(
                                    "subquery uses ungrouped column \"{name}\" from outer query"
                                ),
                            ));
                        }
                    },
                };
                Ok(Some(self.capture(local)))
            }
            Lookup::Missing { qualifier_known: k } => {
                *qualifier_known |= k && idents.len() > 1;
                match self.parent {
                    None => Ok(None),
                    Some(p) => Ok(p
                        .resolve(idents, ctx, qualifier_known)?
                        .map(|e| self.capture(e))),
                }
            }
        }
    }
}
