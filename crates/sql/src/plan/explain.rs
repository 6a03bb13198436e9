//! The text of EXPLAIN: one line per operator, the root first, children indented.

use std::ops::Bound;

use super::keyrange::{KeyRange, KeySpan};
use super::{AggCall, InsertSource, Plan, ScanPlan, SelectPlan};
use crate::api::Datum;
use crate::catalog::TableDesc;
use crate::expr::ScalarExpr;

/// The lines of EXPLAIN for `plan`.
pub(crate) fn explain(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    match plan {
        Plan::Select(s) => select(s, 0, &mut out),
        Plan::Insert(i) => {
            out.push(format!("Insert: {}", i.table.name));
            match &i.source {
                InsertSource::Values(rows) => out.push(format!(
                    "  Values: {} row{}",
                    rows.len(),
                    plural(rows.len())
                )),
                InsertSource::Query { plan, .. } => select(plan, 1, &mut out),
            }
        }
        Plan::Update(u) => {
            let names = column_names(&u.scan.table);
            let sets: Vec<String> = u
                .assignments
                .iter()
                .map(|(c, e)| format!("{} = {}", names[*c], expr(e, &names)))
                .collect();
            out.push(format!(
                "Update: {} SET {}",
                u.scan.table.name,
                sets.join(", ")
            ));
            scan(&u.scan, 1, &mut out);
        }
        Plan::Delete(d) => {
            out.push(format!("Delete: {}", d.scan.table.name));
            scan(&d.scan, 1, &mut out);
        }
        Plan::CreateTable(c) => out.push(format!("Create table: {}", c.name)),
        Plan::DropTable(d) => {
            let names: Vec<&str> = d.tables.iter().map(|t| t.name.as_str()).collect();
            out.push(format!("Drop table: {}", names.join(", ")));
        }
        Plan::Explain(lines) => out.extend(lines.iter().cloned()),
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn push(out: &mut Vec<String>, depth: usize, line: String) {
    out.push(format!("{}{}", "  ".repeat(depth), line));
}

fn select(s: &SelectPlan, mut depth: usize, out: &mut Vec<String>) {
    let input_names: Vec<String> = match &s.scan {
        Some(sc) => column_names(&sc.table),
        None => vec![],
    };
    let proj_input: Vec<String> = match &s.aggregate {
        Some(a) => a
            .groups
            .iter()
            .map(|g| expr(g, &input_names))
            .chain(a.aggs.iter().map(|c| agg(c, &input_names)))
            .collect(),
        None => input_names.clone(),
    };
    let projected: Vec<String> = s.projection.iter().map(|e| expr(e, &proj_input)).collect();
    if s.limit.is_some() || s.offset > 0 {
        let limit = s.limit.map_or("ALL".to_string(), |l| l.to_string());
        push(out, depth, format!("Limit: {limit} OFFSET {}", s.offset));
        depth += 1;
    }
    if !s.order_by.is_empty() {
        let keys: Vec<String> = s
            .order_by
            .iter()
            .map(|k| {
                let dir = if k.desc { " DESC" } else { "" };
                let nulls = if k.nulls_first {
                    " NULLS FIRST"
                } else {
                    " NULLS LAST"
                };
                format!("{}{dir}{nulls}", projected[k.column])
            })
            .collect();
        push(out, depth, format!("Sort: {}", keys.join(", ")));
        depth += 1;
    }
    if s.distinct {
        push(out, depth, "Distinct".to_string());
        depth += 1;
    }
    push(
        out,
        depth,
        format!("Project: {}", projected[..s.columns.len()].join(", ")),
    );
    depth += 1;
    if let Some(h) = &s.having {
        push(out, depth, format!("Filter: {}", expr(h, &proj_input)));
        depth += 1;
    }
    if let Some(a) = &s.aggregate {
        let groups: Vec<String> = a.groups.iter().map(|g| expr(g, &input_names)).collect();
        let aggs: Vec<String> = a.aggs.iter().map(|c| agg(c, &input_names)).collect();
        let by = if groups.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", groups.join(", "))
        };
        push(out, depth, format!("Aggregate: {}{by}", aggs.join(", ")));
        depth += 1;
    }
    match &s.scan {
        Some(sc) => scan(sc, depth, out),
        None => {
            if let Some(f) = &s.filter {
                push(out, depth, format!("Filter: {}", expr(f, &[])));
                depth += 1;
            }
            push(out, depth, "Values: 1 row".to_string());
        }
    }
}

fn scan(s: &ScanPlan, depth: usize, out: &mut Vec<String>) {
    let names = column_names(&s.table);
    let mut depth = depth;
    if let Some(f) = &s.filter {
        push(out, depth, format!("Filter: {}", expr(f, &names)));
        depth += 1;
    }
    let pk: Vec<&str> = s.table.pk.iter().map(|&i| names[i].as_str()).collect();
    let what = match &s.range {
        KeyRange::Empty => "no rows (contradiction)".to_string(),
        KeyRange::Full => "full scan".to_string(),
        KeyRange::Points(points) => {
            let tuples: Vec<String> = points.iter().map(|p| tuple(p)).collect();
            let n = points.len();
            format!(
                "point lookup{} ({}) = {}",
                plural(n),
                pk.join(", "),
                tuples.join(", ")
            )
        }
        KeyRange::Spans(spans) => {
            let parts: Vec<String> = spans.iter().map(|sp| span(sp, &pk)).collect();
            format!("range{} {}", plural(spans.len()), parts.join("; "))
        }
    };
    push(out, depth, format!("Scan: {}, {what}", s.table.name));
}

fn span(s: &KeySpan, pk: &[&str]) -> String {
    let mut parts = Vec::new();
    if !s.prefix.is_empty() {
        parts.push(format!(
            "({}) = {}",
            pk[..s.prefix.len()].join(", "),
            tuple(&s.prefix)
        ));
    }
    let col = pk.get(s.prefix.len()).copied().unwrap_or("?");
    match &s.lower {
        Bound::Included(v) => parts.push(format!("{col} >= {}", literal(v))),
        Bound::Excluded(v) => parts.push(format!("{col} > {}", literal(v))),
        Bound::Unbounded => {}
    }
    match &s.upper {
        Bound::Included(v) => parts.push(format!("{col} <= {}", literal(v))),
        Bound::Excluded(v) => parts.push(format!("{col} < {}", literal(v))),
        Bound::Unbounded => {}
    }
    parts.join(" AND ")
}

fn tuple(values: &[Datum]) -> String {
    let v: Vec<String> = values.iter().map(literal).collect();
    format!("({})", v.join(", "))
}

fn column_names(t: &TableDesc) -> Vec<String> {
    t.columns.iter().map(|c| c.name.clone()).collect()
}

fn literal(d: &Datum) -> String {
    match d {
        Datum::Null => "NULL".to_string(),
        Datum::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Datum::Timestamp(_) => format!("'{}'", d.to_pg_text().unwrap_or_default()),
        other => other.to_pg_text().unwrap_or_default(),
    }
}

fn agg(c: &AggCall, names: &[String]) -> String {
    let arg = match &c.arg {
        None => "*".to_string(),
        Some(a) => expr(a, names),
    };
    let distinct = if c.distinct { "DISTINCT " } else { "" };
    format!("{}({distinct}{arg})", c.func.name())
}

/// Renders an expression over a row whose columns are called `names`.
fn expr(e: &ScalarExpr, names: &[String]) -> String {
    use ScalarExpr::*;
    let r = |e: &ScalarExpr| expr(e, names);
    match e {
        Literal(d, _) => literal(d),
        Column(i, _) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
        Not(x) => format!("NOT {}", r(x)),
        Neg(x) => format!("-{}", r(x)),
        Arith {
            op, left, right, ..
        } => format!("({} {} {})", r(left), op.symbol(), r(right)),
        Compare { op, left, right } => format!("({} {} {})", r(left), op.symbol(), r(right)),
        And(a, b) => format!("({} AND {})", r(a), r(b)),
        Or(a, b) => format!("({} OR {})", r(a), r(b)),
        Concat(a, b) => format!("({} || {})", r(a), r(b)),
        IsNull { expr, negated } => format!(
            "({} IS {}NULL)",
            r(expr),
            if *negated { "NOT " } else { "" }
        ),
        IsBool {
            expr,
            value,
            negated,
        } => {
            format!(
                "({} IS {}{})",
                r(expr),
                if *negated { "NOT " } else { "" },
                if *value { "TRUE" } else { "FALSE" }
            )
        }
        IsDistinct {
            left,
            right,
            negated,
        } => {
            format!(
                "({} IS {}DISTINCT FROM {})",
                r(left),
                if *negated { "NOT " } else { "" },
                r(right)
            )
        }
        InList {
            expr,
            list,
            negated,
        } => {
            let items: Vec<String> = list.iter().map(r).collect();
            format!(
                "({} {}IN ({}))",
                r(expr),
                if *negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Like {
            expr,
            pattern,
            negated,
            case_insensitive,
            ..
        } => {
            let op = if *case_insensitive { "ILIKE" } else { "LIKE" };
            format!(
                "({} {}{op} {})",
                r(expr),
                if *negated { "NOT " } else { "" },
                r(pattern)
            )
        }
        Cast { expr, to, .. } => format!("{}::{}", r(expr), crate::types::internal_name(*to)),
        Case {
            whens, otherwise, ..
        } => {
            let mut s = "CASE".to_string();
            for (c, v) in whens {
                s.push_str(&format!(" WHEN {} THEN {}", r(c), r(v)));
            }
            if let Some(o) = otherwise {
                s.push_str(&format!(" ELSE {}", r(o)));
            }
            s.push_str(" END");
            s
        }
        Func { func, args, .. } => {
            let a: Vec<String> = args.iter().map(r).collect();
            format!("{}({})", func.name(), a.join(", "))
        }
    }
}
