//! The generated queries as trees: printed as SQL for both systems, and taken apart one step
//! at a time by the shrinker (`variants`).

use std::fmt;

/// The exact type of a column or expression, as the generator computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Int4,
    Int8,
    Numeric,
    Float,
    Text,
    Bool,
    Date,
}

/// A family of types that mix freely in PostgreSQL (`int4 + int8`, `int = numeric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    Int,
    Numeric,
    Float,
    Text,
    Bool,
    Date,
}

impl Ty {
    pub fn cat(self) -> Cat {
        match self {
            Ty::Int4 | Ty::Int8 => Cat::Int,
            Ty::Numeric => Cat::Numeric,
            Ty::Float => Cat::Float,
            Ty::Text => Cat::Text,
            Ty::Bool => Cat::Bool,
            Ty::Date => Cat::Date,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Ty::Int4 => "INT",
            Ty::Int8 => "BIGINT",
            Ty::Numeric => "NUMERIC",
            Ty::Float => "DOUBLE PRECISION",
            Ty::Text => "TEXT",
            Ty::Bool => "BOOLEAN",
            Ty::Date => "DATE",
        }
    }

    /// The type two numbers combine to (PostgreSQL's implicit-cast order
    /// int4 -> int8 -> numeric -> float8); `self` for other types.
    pub fn wider(self, other: Ty) -> Ty {
        let rank = |t: Ty| match t {
            Ty::Int4 => 0,
            Ty::Int8 => 1,
            Ty::Numeric => 2,
            Ty::Float => 3,
            _ => -1,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// An argument of an expression node: a value, or a subquery printed in parentheses.
#[derive(Debug, Clone)]
pub enum Arg {
    E(Expr),
    Q(Box<Query>),
}

/// An expression. A node prints as `parts[0] args[0] parts[1] ... args[n-1] parts[n]`, which
/// covers operators, function calls, CASE, IN lists and subqueries alike.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A column reference or a literal, printed as is.
    Leaf { ty: Ty, sql: String },
    Node {
        ty: Ty,
        parts: Vec<&'static str>,
        args: Vec<Arg>,
    },
}

impl Expr {
    pub fn leaf(ty: Ty, sql: impl Into<String>) -> Expr {
        Expr::Leaf {
            ty,
            sql: sql.into(),
        }
    }

    pub fn node(ty: Ty, parts: Vec<&'static str>, args: Vec<Expr>) -> Expr {
        debug_assert_eq!(parts.len(), args.len() + 1);
        Expr::Node {
            ty,
            parts,
            args: args.into_iter().map(Arg::E).collect(),
        }
    }

    /// `parts[0] args... (query) parts.last()`: a subquery after the value arguments.
    pub fn sub(ty: Ty, parts: Vec<&'static str>, args: Vec<Expr>, query: Query) -> Expr {
        debug_assert_eq!(parts.len(), args.len() + 2);
        let mut a: Vec<Arg> = args.into_iter().map(Arg::E).collect();
        a.push(Arg::Q(Box::new(query)));
        Expr::Node { ty, parts, args: a }
    }

    pub fn null(ty: Ty) -> Expr {
        Expr::leaf(ty, format!("CAST(NULL AS {})", ty.sql()))
    }

    pub fn ty(&self) -> Ty {
        match self {
            Expr::Leaf { ty, .. } | Expr::Node { ty, .. } => *ty,
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Leaf { sql, .. } => f.write_str(sql),
            Expr::Node { parts, args, .. } => {
                for (i, p) in parts.iter().enumerate() {
                    f.write_str(p)?;
                    match args.get(i) {
                        Some(Arg::E(e)) => write!(f, "{e}")?,
                        Some(Arg::Q(q)) => write!(f, "({q})")?,
                        None => {}
                    }
                }
                Ok(())
            }
        }
    }
}

/// One key of an ORDER BY, by output column number (0-based here, printed 1-based).
#[derive(Debug, Clone)]
pub struct OrderKey {
    pub col: usize,
    pub desc: bool,
    pub nulls: Option<&'static str>,
}

/// ORDER BY, LIMIT and OFFSET of a query. A LIMIT or OFFSET is generated only with an ORDER BY
/// over every output column (a total order on the printed rows), and the shrinker keeps that
/// so, so the rows a query returns never depend on the plan.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    pub order: Vec<OrderKey>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Table(String),
    Derived(Box<Query>),
}

#[derive(Debug, Clone)]
pub struct FromItem {
    pub source: Source,
    pub alias: String,
    /// `None` for the first item; the join type (`JOIN`, `LEFT JOIN`, ...) and ON conjuncts
    /// for the others (no conjunct: `CROSS JOIN`).
    pub join: Option<(&'static str, Vec<Expr>)>,
}

#[derive(Debug, Clone)]
pub struct Select {
    pub distinct: bool,
    /// Output columns, each printed `AS c<n>` with its generated number.
    pub items: Vec<(Expr, usize)>,
    pub from: Vec<FromItem>,
    pub filter: Vec<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub tail: Tail,
}

#[derive(Debug, Clone)]
pub enum Query {
    Select(Box<Select>),
    SetOp {
        op: &'static str,
        left: Box<Query>,
        right: Box<Query>,
        tail: Tail,
    },
}

impl Query {
    /// The generator's idea of the output types.
    pub fn types(&self) -> Vec<Ty> {
        match self {
            Query::Select(s) => s.items.iter().map(|(e, _)| e.ty()).collect(),
            Query::SetOp { left, right, .. } => left
                .types()
                .into_iter()
                .zip(right.types())
                .map(|(a, b)| a.wider(b))
                .collect(),
        }
    }

    pub fn tail(&self) -> &Tail {
        match self {
            Query::Select(s) => &s.tail,
            Query::SetOp { tail, .. } => tail,
        }
    }

    /// Whether the printed rows come in an order both systems must agree on: an ORDER BY
    /// naming every output column.
    pub fn totally_ordered(&self) -> bool {
        let width = self.types().len();
        let order = &self.tail().order;
        (0..width).all(|c| order.iter().any(|k| k.col == c))
    }
}

impl fmt::Display for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.order.iter().enumerate() {
            f.write_str(if i == 0 { " ORDER BY " } else { ", " })?;
            write!(f, "{}", k.col + 1)?;
            if k.desc {
                f.write_str(" DESC")?;
            }
            if let Some(n) = k.nulls {
                write!(f, " NULLS {n}")?;
            }
        }
        if let Some(l) = self.limit {
            write!(f, " LIMIT {l}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " OFFSET {o}")?;
        }
        Ok(())
    }
}

fn conjunction(f: &mut fmt::Formatter<'_>, es: &[Expr]) -> fmt::Result {
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            f.write_str(" AND ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        if self.distinct {
            f.write_str("DISTINCT ")?;
        }
        for (i, (e, n)) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e} AS c{n}")?;
        }
        for item in &self.from {
            match &item.join {
                None => f.write_str(" FROM ")?,
                Some((_, on)) if on.is_empty() => f.write_str(" CROSS JOIN ")?,
                Some((kind, _)) => write!(f, " {kind} ")?,
            }
            match &item.source {
                Source::Table(t) => write!(f, "{t} AS {}", item.alias)?,
                Source::Derived(q) => write!(f, "({q}) AS {}", item.alias)?,
            }
            if let Some((_, on)) = &item.join
                && !on.is_empty()
            {
                f.write_str(" ON ")?;
                conjunction(f, on)?;
            }
        }
        if !self.filter.is_empty() {
            f.write_str(" WHERE ")?;
            conjunction(f, &self.filter)?;
        }
        for (i, g) in self.group_by.iter().enumerate() {
            f.write_str(if i == 0 { " GROUP BY " } else { ", " })?;
            write!(f, "{g}")?;
        }
        if let Some(h) = &self.having {
            write!(f, " HAVING {h}")?;
        }
        write!(f, "{}", self.tail)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Select(s) => write!(f, "{s}"),
            Query::SetOp {
                op,
                left,
                right,
                tail,
            } => write!(f, "({left}) {op} ({right}){tail}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One-step simplifications, for the shrinker. Every variant keeps the LIMIT rule of `Tail`.

/// Every query one simplification away from `q`, roughly the biggest cuts first.
pub fn variants(q: &Query) -> Vec<Query> {
    match q {
        Query::Select(s) => select_variants(s)
            .into_iter()
            .map(|s| Query::Select(Box::new(s)))
            .collect(),
        Query::SetOp {
            op,
            left,
            right,
            tail,
        } => {
            let mut out = vec![(**left).clone(), (**right).clone()];
            for tail in tail_variants(tail) {
                out.push(Query::SetOp {
                    op,
                    left: left.clone(),
                    right: right.clone(),
                    tail,
                });
            }
            for l in variants(left) {
                out.push(Query::SetOp {
                    op,
                    left: Box::new(l),
                    right: right.clone(),
                    tail: tail.clone(),
                });
            }
            for r in variants(right) {
                out.push(Query::SetOp {
                    op,
                    left: left.clone(),
                    right: Box::new(r),
                    tail: tail.clone(),
                });
            }
            out
        }
    }
}

fn tail_variants(t: &Tail) -> Vec<Tail> {
    let mut out = Vec::new();
    if !t.order.is_empty() {
        out.push(Tail::default());
    }
    if t.limit.is_some() || t.offset.is_some() {
        out.push(Tail {
            order: t.order.clone(),
            limit: None,
            offset: None,
        });
    }
    out
}

/// `v` with element `i` removed.
fn without<T: Clone>(v: &[T], i: usize) -> Vec<T> {
    let mut v = v.to_vec();
    v.remove(i);
    v
}

fn select_variants(s: &Select) -> Vec<Select> {
    let mut out = Vec::new();
    let with = |f: &dyn Fn(&mut Select)| {
        let mut c = s.clone();
        f(&mut c);
        c
    };
    // Drop a joined table, keep only its ON conditions' effect out.
    for i in 1..s.from.len() {
        out.push(with(&|c| {
            c.from.remove(i);
        }));
    }
    if s.from.len() > 1 && s.from[0].join.is_none() {
        // Drop the first table: the second becomes the first.
        out.push(with(&|c| {
            c.from.remove(0);
            c.from[0].join = None;
        }));
    }
    for tail in tail_variants(&s.tail) {
        out.push(with(&|c| c.tail = tail.clone()));
    }
    if !s.filter.is_empty() {
        out.push(with(&|c| c.filter.clear()));
    }
    for i in 0..s.filter.len() {
        out.push(with(&|c| c.filter = without(&s.filter, i)));
    }
    if s.having.is_some() {
        out.push(with(&|c| c.having = None));
    }
    if s.distinct {
        out.push(with(&|c| c.distinct = false));
    }
    if !s.group_by.is_empty() {
        out.push(with(&|c| c.group_by.clear()));
    }
    for i in 0..s.group_by.len() {
        out.push(with(&|c| c.group_by = without(&s.group_by, i)));
    }
    if s.items.len() > 1 {
        for i in 0..s.items.len() {
            out.push(with(&|c| {
                c.items.remove(i);
                c.tail.order.retain(|k| k.col != i);
                for k in &mut c.tail.order {
                    if k.col > i {
                        k.col -= 1;
                    }
                }
            }));
        }
    }
    for (i, item) in s.from.iter().enumerate() {
        if let Some((kind, on)) = &item.join {
            if *kind != "JOIN" && !on.is_empty() {
                out.push(with(&|c| c.from[i].join = Some(("JOIN", on.clone()))));
            }
            for j in 0..on.len() {
                out.push(with(&|c| c.from[i].join = Some((kind, without(on, j)))));
            }
            for (j, e) in on.iter().enumerate() {
                for v in expr_variants(e) {
                    let mut c = s.clone();
                    if let Some((_, on)) = &mut c.from[i].join {
                        on[j] = v;
                    }
                    out.push(c);
                }
            }
        }
        if let Source::Derived(q) = &item.source {
            for v in variants(q) {
                let mut c = s.clone();
                c.from[i].source = Source::Derived(Box::new(v));
                out.push(c);
            }
        }
    }
    for (i, (e, n)) in s.items.iter().enumerate() {
        for v in expr_variants(e) {
            out.push(with(&|c| c.items[i] = (v.clone(), *n)));
        }
    }
    for (i, e) in s.filter.iter().enumerate() {
        for v in expr_variants(e) {
            out.push(with(&|c| c.filter[i] = v.clone()));
        }
    }
    if let Some(h) = &s.having {
        for v in expr_variants(h) {
            out.push(with(&|c| c.having = Some(v.clone())));
        }
    }
    out
}

/// Simpler expressions in place of `e`: one of its arguments of the same type family, NULL,
/// or `e` with one argument simplified.
pub fn expr_variants(e: &Expr) -> Vec<Expr> {
    let Expr::Node { ty, parts, args } = e else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in args {
        if let Arg::E(c) = a
            && c.ty().cat() == ty.cat()
        {
            out.push(c.clone());
        }
    }
    out.push(Expr::null(*ty));
    for (i, a) in args.iter().enumerate() {
        let replaced: Vec<Arg> = match a {
            Arg::E(c) => expr_variants(c).into_iter().map(Arg::E).collect(),
            Arg::Q(q) => variants(q)
                .into_iter()
                .map(|q| Arg::Q(Box::new(q)))
                .collect(),
        };
        for r in replaced {
            let mut args = args.clone();
            args[i] = r;
            out.push(Expr::Node {
                ty: *ty,
                parts: parts.clone(),
                args,
            });
        }
    }
    out
}
