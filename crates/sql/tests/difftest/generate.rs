//! The random query generator: typed expression trees over the columns in scope, selects with
//! joins, filters, grouping, DISTINCT, ORDER BY ... LIMIT, set operations and subqueries.
//!
//! It keeps to queries whose answer is defined by the SQL alone: LIMIT and OFFSET only under an
//! ORDER BY of every output column; scalar subqueries that return at most one row (an
//! aggregate, or a primary-key lookup); division only by non-zero constants or `NULLIF(x, 0)`;
//! multiplication by small constants, so integers do not overflow; no casts that can fail on
//! the data; FULL and RIGHT joins only on equalities (PostgreSQL plans no other FULL JOIN).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::ast::{Cat, Expr, FromItem, OrderKey, Query, Select, Source, Tail, Ty};
use crate::schema::{self, Schema};

/// Columns a query can name, with their types.
#[derive(Clone, Default)]
struct Scope {
    cols: Vec<(String, Ty)>,
}

/// What leaves an expression may use.
#[derive(Clone)]
struct Ctx {
    scope: Scope,
    /// In a grouped select: the grouping expressions and the scope aggregates range over.
    grouped: Option<Vec<Expr>>,
    /// How many more levels of subquery may nest.
    sub_depth: u32,
}

pub struct Gen<'a> {
    pub rng: &'a mut StdRng,
    schema: &'a Schema,
    aliases: u32,
    items: usize,
}

const CATS: &[Cat] = &[
    Cat::Int,
    Cat::Int,
    Cat::Numeric,
    Cat::Float,
    Cat::Text,
    Cat::Text,
    Cat::Bool,
    Cat::Date,
];

fn neg_paren(lit: String) -> String {
    if lit.starts_with('-') {
        format!("({lit})")
    } else {
        lit
    }
}

impl<'a> Gen<'a> {
    pub fn new(rng: &'a mut StdRng, schema: &'a Schema) -> Gen<'a> {
        Gen {
            rng,
            schema,
            aliases: 0,
            items: 0,
        }
    }

    fn p(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("a{}", self.aliases)
    }

    fn cat(&mut self) -> Cat {
        *CATS.choose(self.rng).unwrap()
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    pub fn query(&mut self) -> Query {
        let ctx = Ctx {
            scope: Scope::default(),
            grouped: None,
            sub_depth: 2,
        };
        let mut q = if self.p(0.12) {
            self.set_op(&ctx)
        } else {
            let width = self.rng.random_range(1..=4);
            let cats: Vec<Cat> = (0..width).map(|_| self.cat()).collect();
            Query::Select(Box::new(self.select(&ctx, &cats, true)))
        };
        self.add_tail(&mut q);
        q
    }

    /// ORDER BY (sometimes over every column, then maybe LIMIT/OFFSET).
    fn add_tail(&mut self, q: &mut Query) {
        let width = q.types().len();
        let tail = match q {
            Query::Select(s) => &mut s.tail,
            Query::SetOp { tail, .. } => tail,
        };
        if !self.p(0.4) {
            return;
        }
        let mut cols: Vec<usize> = (0..width).collect();
        for i in (1..cols.len()).rev() {
            cols.swap(i, self.rng.random_range(0..=i));
        }
        let total = self.p(0.8);
        if !total {
            cols.truncate(1);
        }
        for col in cols {
            let desc = self.p(0.4);
            let nulls = *[None, None, Some("FIRST"), Some("LAST")]
                .choose(self.rng)
                .unwrap();
            tail.order.push(OrderKey { col, desc, nulls });
        }
        if total && self.p(0.5) {
            tail.limit = Some(self.rng.random_range(0..8));
            if self.p(0.3) {
                tail.offset = Some(self.rng.random_range(0..5));
            }
        }
    }

    fn set_op(&mut self, ctx: &Ctx) -> Query {
        let width = self.rng.random_range(1..=3);
        let cats: Vec<Cat> = (0..width).map(|_| self.cat()).collect();
        let op = *[
            "UNION",
            "UNION ALL",
            "INTERSECT",
            "INTERSECT ALL",
            "EXCEPT",
            "EXCEPT ALL",
        ]
        .choose(self.rng)
        .unwrap();
        let left = self.select(ctx, &cats, false);
        let right = self.select(ctx, &cats, false);
        Query::SetOp {
            op,
            left: Box::new(Query::Select(Box::new(left))),
            right: Box::new(Query::Select(Box::new(right))),
            tail: Tail::default(),
        }
    }

    /// A FROM item over a base table, or (sometimes, when `derived`) over a subquery.
    fn table_ref(&mut self, ctx: &Ctx, derived: bool) -> (FromItem, Scope) {
        let alias = self.alias();
        let mut scope = Scope::default();
        let source = if derived && ctx.sub_depth > 0 && self.p(0.1) {
            let inner = Ctx {
                scope: Scope::default(),
                grouped: None,
                sub_depth: ctx.sub_depth - 1,
            };
            let width = self.rng.random_range(1..=3);
            let cats: Vec<Cat> = (0..width).map(|_| self.cat()).collect();
            let s = self.select(&inner, &cats, false);
            for (e, n) in &s.items {
                scope.cols.push((format!("{alias}.c{n}"), e.ty()));
            }
            Source::Derived(Box::new(Query::Select(Box::new(s))))
        } else {
            let t = self.schema.tables.choose(self.rng).unwrap();
            for c in &t.columns {
                scope.cols.push((format!("{alias}.{}", c.name), c.ty));
            }
            Source::Table(t.name.clone())
        };
        (
            FromItem {
                source,
                alias,
                join: None,
            },
            scope,
        )
    }

    /// An equality between a column of `right` and a column of `left` of the same family.
    fn join_equality(&mut self, left: &Scope, right: &Scope) -> Option<Expr> {
        type Col = (String, Ty);
        let pairs: Vec<(&Col, &Col)> = left
            .cols
            .iter()
            .flat_map(|l| right.cols.iter().map(move |r| (l, r)))
            .filter(|(l, r)| l.1.cat() == r.1.cat() && l.1.cat() != Cat::Bool)
            .collect();
        let (l, r) = pairs.choose(self.rng)?;
        Some(Expr::node(
            Ty::Bool,
            vec!["", " = ", ""],
            vec![Expr::leaf(l.1, &l.0), Expr::leaf(r.1, &r.0)],
        ))
    }

    /// A SELECT whose output columns have the families `cats`; `top` allows the extras that
    /// only make sense at the top (DISTINCT is allowed everywhere).
    fn select(&mut self, outer: &Ctx, cats: &[Cat], top: bool) -> Select {
        let (first, mut scope) = self.table_ref(outer, true);
        let mut from = vec![first];
        let joins = *[0, 0, 0, 1, 1, 2].choose(self.rng).unwrap();
        for _ in 0..joins {
            let (mut item, right) = self.table_ref(outer, true);
            let kind = *[
                "JOIN",
                "JOIN",
                "LEFT JOIN",
                "LEFT JOIN",
                "RIGHT JOIN",
                "FULL JOIN",
            ]
            .choose(self.rng)
            .unwrap();
            let mut on: Vec<Expr> = self.join_equality(&scope, &right).into_iter().collect();
            if on.is_empty() && kind == "FULL JOIN" {
                item.join = Some(("CROSS JOIN", on));
            } else {
                if kind != "FULL JOIN" && (on.is_empty() || self.p(0.3)) {
                    let mut both = scope.clone();
                    both.cols.extend(right.cols.iter().cloned());
                    let c = Ctx {
                        scope: both,
                        grouped: None,
                        sub_depth: 0,
                    };
                    on.push(self.expr(&c, Cat::Bool, 2));
                }
                item.join = Some((kind, on));
            }
            scope.cols.extend(right.cols);
            from.push(item);
        }
        // The subquery sees its own columns and the outer query's.
        let mut all = scope.clone();
        all.cols.extend(outer.scope.cols.iter().cloned());
        let row = Ctx {
            scope: all,
            grouped: None,
            sub_depth: outer.sub_depth,
        };
        let mut filter = Vec::new();
        if self.p(0.7) {
            for _ in 0..self.rng.random_range(1..=3) {
                let d = self.rng.random_range(1..=3);
                filter.push(self.expr(&row, Cat::Bool, d));
            }
        }
        let mut group_by = Vec::new();
        let mut having = None;
        let item_ctx = if self.p(if top { 0.3 } else { 0.15 }) {
            for _ in 0..self.rng.random_range(0..=2) {
                // A column, or an expression over one (a constant would be an output column
                // number, or an error, in PostgreSQL).
                let Some((name, ty)) = row.scope.cols.choose(self.rng).cloned() else {
                    break;
                };
                let col = Ctx {
                    scope: Scope {
                        cols: vec![(name.clone(), ty)],
                    },
                    grouped: None,
                    sub_depth: 0,
                };
                let depth = if self.p(0.7) { 0 } else { 1 };
                let key = self.expr(&col, ty.cat(), depth);
                group_by.push(if key.to_string().contains(&name) {
                    key
                } else {
                    Expr::leaf(ty, name)
                });
            }
            let grouped = Ctx {
                scope: row.scope.clone(),
                grouped: Some(group_by.clone()),
                sub_depth: row.sub_depth,
            };
            if self.p(0.3) {
                having = Some(self.expr(&grouped, Cat::Bool, 2));
            }
            grouped
        } else {
            row
        };
        let mut items = Vec::new();
        for cat in cats {
            let d = self.rng.random_range(0..=3);
            let e = self.expr(&item_ctx, *cat, d);
            self.items += 1;
            items.push((e, self.items));
        }
        Select {
            distinct: self.p(0.12),
            items,
            from,
            filter,
            group_by,
            having,
            tail: Tail::default(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    /// An expression of family `cat`, at most `depth` operators deep.
    fn expr(&mut self, ctx: &Ctx, cat: Cat, depth: u32) -> Expr {
        if depth == 0 || self.p(0.2) {
            return self.leaf(ctx, cat);
        }
        // Subqueries stay out of grouped expressions, where PostgreSQL requires their outer
        // references to be grouping columns.
        if ctx.sub_depth > 0 && ctx.grouped.is_none() && self.p(0.06) {
            return self.subquery_expr(ctx, cat);
        }
        let d = depth - 1;
        match cat {
            Cat::Int => self.int_expr(ctx, d),
            Cat::Numeric => self.numeric_expr(ctx, d),
            Cat::Float => self.float_expr(ctx, d),
            Cat::Text => self.text_expr(ctx, d),
            Cat::Bool => self.bool_expr(ctx, d),
            Cat::Date => self.date_expr(ctx, d),
        }
    }

    fn literal(&mut self, cat: Cat) -> Expr {
        if self.p(0.08) {
            let ty = match cat {
                Cat::Int => Ty::Int4,
                Cat::Numeric => Ty::Numeric,
                Cat::Float => Ty::Float,
                Cat::Text => Ty::Text,
                Cat::Bool => Ty::Bool,
                Cat::Date => Ty::Date,
            };
            return Expr::null(ty);
        }
        match cat {
            Cat::Int => {
                if self.p(0.85) {
                    Expr::leaf(Ty::Int4, neg_paren(schema::int4(self.rng)))
                } else {
                    Expr::leaf(Ty::Int8, neg_paren(schema::int8(self.rng)))
                }
            }
            Cat::Numeric => Expr::leaf(Ty::Numeric, neg_paren(schema::numeric(self.rng))),
            Cat::Float => Expr::leaf(
                Ty::Float,
                format!("CAST({} AS DOUBLE PRECISION)", schema::float(self.rng)),
            ),
            Cat::Text => Expr::leaf(Ty::Text, schema::text(self.rng)),
            Cat::Bool => Expr::leaf(Ty::Bool, if self.p(0.5) { "TRUE" } else { "FALSE" }),
            Cat::Date => Expr::leaf(Ty::Date, format!("DATE {}", schema::date(self.rng))),
        }
    }

    fn leaf(&mut self, ctx: &Ctx, cat: Cat) -> Expr {
        if let Some(groups) = &ctx.grouped {
            let keys: Vec<&Expr> = groups.iter().filter(|g| g.ty().cat() == cat).collect();
            if !keys.is_empty() && self.p(0.5) {
                return (*keys.choose(self.rng).unwrap()).clone();
            }
            if self.p(0.8) {
                let row = Ctx {
                    scope: ctx.scope.clone(),
                    grouped: None,
                    sub_depth: ctx.sub_depth,
                };
                if let Some(a) = self.aggregate(&row, cat) {
                    return a;
                }
            }
            return self.literal(cat);
        }
        let cols: Vec<&(String, Ty)> = ctx.scope.cols.iter().filter(|c| c.1.cat() == cat).collect();
        if !cols.is_empty() && self.p(0.75) {
            let (name, ty) = cols.choose(self.rng).unwrap();
            return Expr::leaf(*ty, name.clone());
        }
        self.literal(cat)
    }

    /// An aggregate of family `cat` over the rows of `row`, if one exists.
    fn aggregate(&mut self, row: &Ctx, cat: Cat) -> Option<Expr> {
        let distinct = self.p(0.2);
        let call = |name: &'static str, ty: Ty, arg: Expr| {
            let open = match (name, distinct) {
                ("count", true) => "count(DISTINCT ",
                ("count", false) => "count(",
                ("sum", true) => "sum(DISTINCT ",
                ("sum", false) => "sum(",
                ("avg", true) => "avg(DISTINCT ",
                ("avg", false) => "avg(",
                ("min", _) => "min(",
                _ => "max(",
            };
            Expr::node(ty, vec![open, ")"], vec![arg])
        };
        let d = self.rng.random_range(0..=2);
        Some(match cat {
            Cat::Int => match self.rng.random_range(0..4) {
                0 => Expr::leaf(Ty::Int8, "count(*)"),
                1 => {
                    let c = self.cat();
                    let arg = self.expr(row, c, d);
                    call("count", Ty::Int8, arg)
                }
                2 => {
                    let arg = self.expr(row, Cat::Int, d);
                    if arg.ty() == Ty::Int4 {
                        call("sum", Ty::Int8, arg)
                    } else {
                        call("max", arg.ty(), arg)
                    }
                }
                _ => {
                    let arg = self.expr(row, Cat::Int, d);
                    call(if self.p(0.5) { "min" } else { "max" }, arg.ty(), arg)
                }
            },
            Cat::Numeric => {
                let which = *["sum", "avg", "min", "max"].choose(self.rng).unwrap();
                let arg_cat = if which == "avg" && self.p(0.5) {
                    Cat::Int
                } else {
                    Cat::Numeric
                };
                let arg = self.expr(row, arg_cat, d);
                call(which, Ty::Numeric, arg)
            }
            Cat::Float => {
                let which = *["sum", "avg", "min", "max"].choose(self.rng).unwrap();
                let arg = self.expr(row, Cat::Float, d);
                call(which, Ty::Float, arg)
            }
            Cat::Text | Cat::Date => {
                let which = if self.p(0.5) { "min" } else { "max" };
                let arg = self.expr(row, cat, d);
                call(which, arg.ty(), arg)
            }
            Cat::Bool => return None,
        })
    }

    /// CASE, COALESCE, NULLIF, GREATEST or LEAST over two expressions of family `cat`.
    fn conditional(&mut self, ctx: &Ctx, cat: Cat, d: u32) -> Expr {
        let a = self.expr(ctx, cat, d);
        let b = self.expr(ctx, cat, d);
        let ty = a.ty().wider(b.ty());
        match self.rng.random_range(0..6) {
            0 => {
                let c = self.expr(ctx, Cat::Bool, d);
                Expr::node(
                    ty,
                    vec!["CASE WHEN ", " THEN ", " ELSE ", " END"],
                    vec![c, a, b],
                )
            }
            1 => {
                let c = self.expr(ctx, Cat::Bool, d);
                Expr::node(ty, vec!["CASE WHEN ", " THEN ", " END"], vec![c, a])
            }
            2 => Expr::node(ty, vec!["COALESCE(", ", ", ")"], vec![a, b]),
            3 if cat != Cat::Bool => Expr::node(ty, vec!["NULLIF(", ", ", ")"], vec![a, b]),
            4 if cat != Cat::Bool => Expr::node(ty, vec!["GREATEST(", ", ", ")"], vec![a, b]),
            _ if cat != Cat::Bool => Expr::node(ty, vec!["LEAST(", ", ", ")"], vec![a, b]),
            _ => Expr::node(ty, vec!["COALESCE(", ", ", ")"], vec![a, b]),
        }
    }

    fn small_const(&mut self, nonzero: bool) -> Expr {
        let mut k = self.rng.random_range(-3..=3);
        if nonzero && k == 0 {
            k = 2;
        }
        Expr::leaf(Ty::Int4, neg_paren(k.to_string()))
    }

    fn int_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        match self.rng.random_range(0..14) {
            0 | 1 => {
                let a = self.expr(ctx, Cat::Int, d);
                let b = self.expr(ctx, Cat::Int, d);
                let op = if self.p(0.5) { " + " } else { " - " };
                Expr::node(a.ty().wider(b.ty()), vec!["(", op, ")"], vec![a, b])
            }
            2 => {
                let a = self.expr(ctx, Cat::Int, d);
                let k = self.small_const(false);
                Expr::node(a.ty(), vec!["(", " * ", ")"], vec![a, k])
            }
            3 => {
                let a = self.expr(ctx, Cat::Int, d);
                let k = self.small_const(true);
                let op = if self.p(0.5) { " / " } else { " % " };
                Expr::node(a.ty(), vec!["(", op, ")"], vec![a, k])
            }
            4 => {
                let a = self.expr(ctx, Cat::Int, d);
                let b = self.expr(ctx, Cat::Int, d);
                let ty = a.ty().wider(b.ty());
                Expr::node(ty, vec!["(", " / NULLIF(", ", 0))"], vec![a, b])
            }
            5 => {
                let a = self.expr(ctx, Cat::Int, d);
                let f = if self.p(0.5) { "abs(" } else { "(- " };
                Expr::node(a.ty(), vec![f, ")"], vec![a])
            }
            6 => {
                let a = self.expr(ctx, Cat::Text, d);
                Expr::node(Ty::Int4, vec!["length(", ")"], vec![a])
            }
            7 => {
                let a = self.expr(ctx, Cat::Text, d);
                let b = self.literal(Cat::Text);
                Expr::node(Ty::Int4, vec!["strpos(", ", ", ")"], vec![a, b])
            }
            8 => {
                let from = if self.p(0.5) {
                    Cat::Numeric
                } else {
                    Cat::Float
                };
                let a = self.expr(ctx, from, d);
                Expr::node(Ty::Int8, vec!["CAST(", " AS BIGINT)"], vec![a])
            }
            9 => {
                let a = self.expr(ctx, Cat::Date, d);
                let b = self.expr(ctx, Cat::Date, d);
                Expr::node(Ty::Int4, vec!["(", " - ", ")"], vec![a, b])
            }
            10 => {
                let a = self.expr(ctx, Cat::Int, d);
                let k = self.small_const(true);
                Expr::node(a.ty(), vec!["mod(", ", ", ")"], vec![a, k])
            }
            _ => self.conditional(ctx, Cat::Int, d),
        }
    }

    fn numeric_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        match self.rng.random_range(0..12) {
            0 | 1 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                let c = if self.p(0.5) { Cat::Int } else { Cat::Numeric };
                let b = self.expr(ctx, c, d);
                let op = *[" + ", " - ", " * "].choose(self.rng).unwrap();
                Expr::node(Ty::Numeric, vec!["(", op, ")"], vec![a, b])
            }
            2 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                let k = ["2", "3", "4", "7", "0.5", "(-8)"]
                    .choose(self.rng)
                    .unwrap();
                Expr::node(
                    Ty::Numeric,
                    vec!["(", " / ", ")"],
                    vec![a, Expr::leaf(Ty::Numeric, *k)],
                )
            }
            3 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                let k = Expr::leaf(Ty::Int4, self.rng.random_range(-1..=3).to_string());
                let f = if self.p(0.6) { "round(" } else { "trunc(" };
                Expr::node(Ty::Numeric, vec![f, ", ", ")"], vec![a, k])
            }
            4 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                let f = *[
                    "round(", "trunc(", "abs(", "ceil(", "floor(", "sign(", "(- ",
                ]
                .choose(self.rng)
                .unwrap();
                Expr::node(Ty::Numeric, vec![f, ")"], vec![a])
            }
            5 => {
                let a = self.expr(ctx, Cat::Int, d);
                Expr::node(Ty::Numeric, vec!["CAST(", " AS NUMERIC)"], vec![a])
            }
            6 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                Expr::node(Ty::Numeric, vec!["CAST(", " AS NUMERIC(20,1))"], vec![a])
            }
            7 => {
                let a = self.expr(ctx, Cat::Numeric, d);
                let b = self.expr(ctx, Cat::Numeric, d);
                Expr::node(Ty::Numeric, vec!["(", " / NULLIF(", ", 0))"], vec![a, b])
            }
            _ => self.conditional(ctx, Cat::Numeric, d),
        }
    }

    fn float_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        match self.rng.random_range(0..10) {
            0 | 1 => {
                let a = self.expr(ctx, Cat::Float, d);
                let b = self.expr(ctx, Cat::Float, d);
                let op = *[" + ", " - ", " * "].choose(self.rng).unwrap();
                Expr::node(Ty::Float, vec!["(", op, ")"], vec![a, b])
            }
            2 => {
                let a = self.expr(ctx, Cat::Float, d);
                let f = *["abs(", "floor(", "ceil(", "round(", "(- ", "sqrt(abs("]
                    .choose(self.rng)
                    .unwrap();
                let close = if f == "sqrt(abs(" { "))" } else { ")" };
                Expr::node(Ty::Float, vec![f, close], vec![a])
            }
            3 => {
                let c = if self.p(0.5) { Cat::Int } else { Cat::Numeric };
                let a = self.expr(ctx, c, d);
                Expr::node(Ty::Float, vec!["CAST(", " AS DOUBLE PRECISION)"], vec![a])
            }
            4 => {
                let a = self.expr(ctx, Cat::Float, d);
                let k = self.literal(Cat::Float);
                Expr::node(Ty::Float, vec!["(", " / NULLIF(", ", 0))"], vec![a, k])
            }
            _ => self.conditional(ctx, Cat::Float, d),
        }
    }

    fn text_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        let a = self.expr(ctx, Cat::Text, d);
        let t = Ty::Text;
        let n = |g: &mut Gen<'_>, lo: i32, hi: i32| {
            Expr::leaf(Ty::Int4, neg_paren(g.rng.random_range(lo..=hi).to_string()))
        };
        match self.rng.random_range(0..16) {
            0 | 1 => {
                let b = self.expr(ctx, Cat::Text, d);
                Expr::node(t, vec!["(", " || ", ")"], vec![a, b])
            }
            2 => {
                let f = *[
                    "lower(", "upper(", "initcap(", "reverse(", "trim(", "ltrim(", "rtrim(",
                ]
                .choose(self.rng)
                .unwrap();
                Expr::node(t, vec![f, ")"], vec![a])
            }
            3 => {
                let i = n(self, -1, 4);
                let j = n(self, 0, 4);
                Expr::node(t, vec!["substr(", ", ", ", ", ")"], vec![a, i, j])
            }
            4 => {
                let i = n(self, -2, 3);
                let f = if self.p(0.5) { "left(" } else { "right(" };
                Expr::node(t, vec![f, ", ", ")"], vec![a, i])
            }
            5 => {
                let from = self.literal(Cat::Text);
                let to = self.literal(Cat::Text);
                Expr::node(t, vec!["replace(", ", ", ", ", ")"], vec![a, from, to])
            }
            6 => {
                let i = n(self, 0, 6);
                let f = if self.p(0.5) { "lpad(" } else { "rpad(" };
                Expr::node(t, vec![f, ", ", ", 'xy')"], vec![a, i])
            }
            7 => {
                let i = n(self, 0, 3);
                Expr::node(t, vec!["repeat(", ", ", ")"], vec![a, i])
            }
            8 => {
                let b = self.expr(ctx, Cat::Text, d);
                if self.p(0.5) {
                    Expr::node(t, vec!["concat(", ", ", ")"], vec![a, b])
                } else {
                    Expr::node(t, vec!["concat_ws('-', ", ", ", ")"], vec![a, b])
                }
            }
            9 => {
                let i = n(self, 1, 3);
                Expr::node(t, vec!["split_part(", ", ' ', ", ")"], vec![a, i])
            }
            10 => {
                let c = *[Cat::Int, Cat::Numeric, Cat::Date, Cat::Bool, Cat::Float]
                    .choose(self.rng)
                    .unwrap();
                let v = self.expr(ctx, c, d);
                Expr::node(t, vec!["CAST(", " AS TEXT)"], vec![v])
            }
            11 => {
                let i = self.expr(ctx, Cat::Int, d);
                Expr::node(t, vec!["(", " || ", ")"], vec![a, i])
            }
            12 => Expr::node(t, vec!["btrim(", ", 'a ')"], vec![a]),
            _ => self.conditional(ctx, Cat::Text, d),
        }
    }

    fn date_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        if self.p(0.5) {
            let a = self.expr(ctx, Cat::Date, d);
            let k = Expr::leaf(Ty::Int4, self.rng.random_range(0..40).to_string());
            let op = if self.p(0.5) { " + " } else { " - " };
            Expr::node(Ty::Date, vec!["(", op, ")"], vec![a, k])
        } else {
            self.conditional(ctx, Cat::Date, d)
        }
    }

    /// Two expressions that compare: numbers of any family, or two of one other family.
    fn comparable(&mut self, ctx: &Ctx, d: u32) -> (Expr, Expr) {
        let c = self.cat();
        let other = match c {
            Cat::Int | Cat::Numeric | Cat::Float => *[Cat::Int, Cat::Numeric, Cat::Float, c, c]
                .choose(self.rng)
                .unwrap(),
            _ => c,
        };
        (self.expr(ctx, c, d), self.expr(ctx, other, d))
    }

    fn bool_expr(&mut self, ctx: &Ctx, d: u32) -> Expr {
        let b = Ty::Bool;
        match self.rng.random_range(0..20) {
            0..=4 => {
                let (x, y) = self.comparable(ctx, d);
                let op = *[" = ", " <> ", " < ", " <= ", " > ", " >= "]
                    .choose(self.rng)
                    .unwrap();
                Expr::node(b, vec!["(", op, ")"], vec![x, y])
            }
            5 | 6 => {
                let x = self.expr(ctx, Cat::Bool, d);
                let y = self.expr(ctx, Cat::Bool, d);
                let op = if self.p(0.5) { " AND " } else { " OR " };
                Expr::node(b, vec!["(", op, ")"], vec![x, y])
            }
            7 => {
                let x = self.expr(ctx, Cat::Bool, d);
                Expr::node(b, vec!["(NOT ", ")"], vec![x])
            }
            8 => {
                let c = self.cat();
                let x = self.expr(ctx, c, d);
                let op = if self.p(0.5) {
                    " IS NULL)"
                } else {
                    " IS NOT NULL)"
                };
                Expr::node(b, vec!["(", op], vec![x])
            }
            9 => {
                let (x, y) = self.comparable(ctx, d);
                let op = if self.p(0.5) {
                    " IS DISTINCT FROM "
                } else {
                    " IS NOT DISTINCT FROM "
                };
                Expr::node(b, vec!["(", op, ")"], vec![x, y])
            }
            10 => {
                let (x, lo) = self.comparable(ctx, d);
                let hi = self.expr(ctx, lo.ty().cat(), d);
                let op = *[" BETWEEN ", " NOT BETWEEN "].choose(self.rng).unwrap();
                Expr::node(b, vec!["(", op, " AND ", ")"], vec![x, lo, hi])
            }
            11 | 12 => {
                let c = self.cat();
                let x = self.expr(ctx, c, d);
                let n = self.rng.random_range(1..=4);
                let mut args = vec![x];
                for _ in 0..n {
                    args.push(self.literal(c));
                }
                let mut parts = vec!["("];
                parts.push(if self.p(0.3) { " NOT IN (" } else { " IN (" });
                parts.extend(std::iter::repeat_n(", ", n - 1));
                parts.push("))");
                Expr::node(b, parts, args)
            }
            13 | 14 => {
                let x = self.expr(ctx, Cat::Text, d);
                let pat = *[
                    "'a%'", "'%b'", "'_b%'", "'%'", "'a_c'", "'A%'", "'%a%'", "''", "'%\\%%'",
                    "'h_llo'", "'%o W%'",
                ]
                .choose(self.rng)
                .unwrap();
                let op = *[" LIKE ", " NOT LIKE ", " ILIKE "]
                    .choose(self.rng)
                    .unwrap();
                Expr::node(b, vec!["(", op, ")"], vec![x, Expr::leaf(Ty::Text, pat)])
            }
            15 => {
                let x = self.expr(ctx, Cat::Bool, d);
                let op = *[
                    " IS TRUE)",
                    " IS NOT TRUE)",
                    " IS FALSE)",
                    " IS NOT FALSE)",
                    " IS UNKNOWN)",
                ]
                .choose(self.rng)
                .unwrap();
                Expr::node(b, vec!["(", op], vec![x])
            }
            16 => {
                let x = self.expr(ctx, Cat::Text, d);
                let y = self.literal(Cat::Text);
                Expr::node(b, vec!["starts_with(", ", ", ")"], vec![x, y])
            }
            _ => self.conditional(ctx, Cat::Bool, d),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Subqueries

    /// A one-table SELECT of one column of family `cat`, usually correlated with `outer` by an
    /// equality, with random filters over both.
    fn sub_select(&mut self, outer: &Ctx, cat: Cat, aggregate: bool) -> Select {
        let (item, scope) = self.table_ref(outer, false);
        let mut all = scope.clone();
        all.cols.extend(outer.scope.cols.iter().cloned());
        let inner = Ctx {
            scope: all,
            grouped: None,
            sub_depth: outer.sub_depth - 1,
        };
        let mut filter = Vec::new();
        if self.p(0.6)
            && let Some(eq) = self.join_equality(&outer.scope, &scope)
        {
            filter.push(eq);
        }
        if self.p(0.5) {
            filter.push(self.expr(&inner, Cat::Bool, 2));
        }
        // An aggregate over the subquery's own columns only: one over outer columns alone
        // would belong to the outer query (SQL's rule), a case left out here (see known.rs).
        let own = Ctx {
            scope: scope.clone(),
            grouped: None,
            sub_depth: 0,
        };
        let e = if aggregate {
            self.aggregate(&own, cat)
                .unwrap_or_else(|| Expr::leaf(Ty::Int8, "count(*)"))
        } else {
            self.expr(&inner, cat, 1)
        };
        self.items += 1;
        Select {
            distinct: false,
            items: vec![(e, self.items)],
            from: vec![item],
            filter,
            group_by: Vec::new(),
            having: None,
            tail: Tail::default(),
        }
    }

    fn subquery_expr(&mut self, ctx: &Ctx, cat: Cat) -> Expr {
        if cat != Cat::Bool {
            // A scalar subquery: an aggregate (one row), or a primary-key lookup (at most one).
            if self.p(0.3)
                && let Some(key) = ctx
                    .scope
                    .cols
                    .iter()
                    .filter(|c| c.1.cat() == Cat::Int)
                    .collect::<Vec<_>>()
                    .choose(self.rng)
                    .map(|c| (*c).clone())
            {
                let mut s = self.sub_select(ctx, cat, false);
                let alias = s.from[0].alias.clone();
                if let Source::Table(_) = s.from[0].source {
                    s.filter = vec![Expr::leaf(Ty::Bool, format!("{alias}.id = {}", key.0))];
                }
                let ty = s.items[0].0.ty();
                return Expr::sub(ty, vec!["", ""], vec![], Query::Select(Box::new(s)));
            }
            let s = self.sub_select(ctx, cat, true);
            let ty = s.items[0].0.ty();
            return Expr::sub(ty, vec!["", ""], vec![], Query::Select(Box::new(s)));
        }
        match self.rng.random_range(0..3) {
            0 => {
                let c = self.cat();
                let s = self.sub_select(ctx, c, false);
                let op = if self.p(0.5) {
                    "(EXISTS "
                } else {
                    "(NOT EXISTS "
                };
                Expr::sub(Ty::Bool, vec![op, ")"], vec![], Query::Select(Box::new(s)))
            }
            1 => {
                let c = *[Cat::Int, Cat::Text, Cat::Numeric, Cat::Date]
                    .choose(self.rng)
                    .unwrap();
                let x = self.expr(ctx, c, 1);
                let s = self.sub_select(ctx, c, false);
                let op = if self.p(0.6) { " IN " } else { " NOT IN " };
                Expr::sub(
                    Ty::Bool,
                    vec!["(", op, ")"],
                    vec![x],
                    Query::Select(Box::new(s)),
                )
            }
            _ => {
                let c = *[Cat::Int, Cat::Text, Cat::Numeric]
                    .choose(self.rng)
                    .unwrap();
                let x = self.expr(ctx, c, 1);
                let s = self.sub_select(ctx, c, false);
                let op = *[" = ANY ", " < ANY ", " >= ALL ", " <> ALL "]
                    .choose(self.rng)
                    .unwrap();
                Expr::sub(
                    Ty::Bool,
                    vec!["(", op, ")"],
                    vec![x],
                    Query::Select(Box::new(s)),
                )
            }
        }
    }
}
