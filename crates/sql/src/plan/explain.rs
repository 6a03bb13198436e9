//! The text of EXPLAIN: one line per operator, the root first, inputs indented below it.
//! Expressions are printed with the names of the columns they read; scans and joins whose
//! tables have statistics end with the rows they are estimated to yield. EXPLAIN ANALYZE appends
//! what each operator did to its line (a [`Note`]; see `exec/analyze.rs`).

use std::ops::Bound;

use sqlparser::ast::{AnalyzeFormat, AnalyzeFormatKind, Expr, UtilityOption, Value};

use super::ddl::DropPlan;
use super::dml::InsertSource;
use super::keyrange::{KeyRange, KeySpan, key_columns};
use super::rel::{Access, JoinKind, Rel, ScanPlan};
use super::window::WindowFunc;
use super::{AggCall, Plan, UserPlan};
use crate::api::{Datum, SqlError};
use crate::expr::{ScalarExpr, SubqueryKind};

/// EXPLAIN ANALYZE of a statement: run it, then print its plan with what each operator did.
#[derive(Debug)]
pub(crate) struct AnalyzePlan {
    pub plan: Plan,
    /// Operator times (`TIMING`, on unless turned off).
    pub timing: bool,
    /// The closing lines, peak memory and execution time (`SUMMARY`, on unless turned off).
    pub summary: bool,
    /// The ids of the tablets each scan read (`VERBOSE`).
    pub verbose: bool,
}

/// EXPLAIN without ANALYZE: print the plan of a statement without running it.
#[derive(Debug)]
pub(crate) struct ExplainPlan {
    pub plan: Plan,
    /// With each scan, the tablets whose ranges it would read (`VERBOSE`).
    pub verbose: bool,
}

/// What EXPLAIN's options ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExplainOptions {
    pub analyze: bool,
    pub timing: bool,
    pub summary: bool,
    pub verbose: bool,
}

/// EXPLAIN's options, in either syntax (`EXPLAIN ANALYZE ...`, `EXPLAIN (ANALYZE, TIMING OFF)
/// ...`), as PostgreSQL takes them: ANALYZE, TIMING and SUMMARY are obeyed; VERBOSE adds the
/// tablets each scan reads; COSTS, BUFFERS, SETTINGS, WAL, SERIALIZE, MEMORY and GENERIC_PLAN
/// are accepted and change nothing; FORMAT must be TEXT.
pub(crate) fn explain_options(
    analyze: bool,
    format: Option<&AnalyzeFormatKind>,
    options: Option<&[UtilityOption]>,
) -> Result<ExplainOptions, SqlError> {
    let text_only = |what: &str| {
        SqlError::unsupported(format!(
            "EXPLAIN format {what} is not supported; only TEXT is"
        ))
    };
    if let Some(AnalyzeFormatKind::Keyword(f) | AnalyzeFormatKind::Assignment(f)) = format
        && *f != AnalyzeFormat::TEXT
    {
        return Err(text_only(&f.to_string()));
    }
    let mut out = ExplainOptions {
        analyze,
        timing: true,
        summary: true,
        verbose: false,
    };
    let mut timing_given = false;
    for o in options.unwrap_or_default() {
        let name = o.name.value.to_ascii_lowercase();
        match name.as_str() {
            "analyze" => out.analyze = option_bool(&name, o.arg.as_ref())?,
            "timing" => {
                out.timing = option_bool(&name, o.arg.as_ref())?;
                timing_given = true;
            }
            "summary" => out.summary = option_bool(&name, o.arg.as_ref())?,
            "verbose" => out.verbose = option_bool(&name, o.arg.as_ref())?,
            "costs" | "buffers" | "settings" | "wal" | "memory" | "generic_plan" => {
                option_bool(&name, o.arg.as_ref())?;
            }
            "serialize" => {}
            "format" => match o.arg.as_ref() {
                Some(Expr::Identifier(id)) if id.value.eq_ignore_ascii_case("text") => {}
                Some(other) => return Err(text_only(&other.to_string())),
                None => {
                    return Err(SqlError::new(
                        "42601",
                        "EXPLAIN option FORMAT requires a value",
                    ));
                }
            },
            _ => {
                return Err(SqlError::new(
                    "42601",
                    format!("unrecognized EXPLAIN option \"{name}\""),
                ));
            }
        }
    }
    if timing_given && out.timing && !out.analyze {
        return Err(SqlError::new(
            "22023",
            "EXPLAIN option TIMING requires ANALYZE",
        ));
    }
    Ok(out)
}

/// The value of a Boolean EXPLAIN option (none: true), as PostgreSQL reads it.
fn option_bool(name: &str, arg: Option<&Expr>) -> Result<bool, SqlError> {
    let word = match arg {
        None => return Ok(true),
        Some(Expr::Identifier(id)) => id.value.to_ascii_lowercase(),
        Some(Expr::Value(v)) => match &v.value {
            Value::Boolean(b) => return Ok(*b),
            Value::Number(n, _) => n.clone(),
            Value::SingleQuotedString(s) => s.to_ascii_lowercase(),
            _ => String::new(),
        },
        Some(_) => String::new(),
    };
    match word.as_str() {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err(SqlError::new(
            "42601",
            format!("{name} requires a Boolean value"),
        )),
    }
}

/// Text appended to an operator's line (EXPLAIN ANALYZE's measurements).
pub(crate) type Note<'n> = &'n dyn Fn(&Rel) -> String;

/// The lines of EXPLAIN for `plan`.
#[cfg(test)]
pub(crate) fn explain(plan: &Plan) -> Vec<String> {
    explain_noted(plan, &|_| String::new())
}

/// The lines of EXPLAIN for `plan`, each operator's line followed by its `note`.
pub(crate) fn explain_noted(plan: &Plan, note: Note<'_>) -> Vec<String> {
    let mut out = Vec::new();
    match plan {
        Plan::Query(q) => rel(&q.rel, 0, &mut out, note),
        Plan::Insert(i) => {
            out.push(format!("Insert: {}", i.table.name));
            match &i.source {
                InsertSource::Values(rows) => out.push(format!(
                    "  Values: {} row{}",
                    rows.len(),
                    plural(rows.len())
                )),
                InsertSource::Query { plan, .. } => rel(&plan.rel, 1, &mut out, note),
            }
        }
        Plan::Update(u) => {
            let names = names(&u.source);
            let sets: Vec<String> = u
                .assignments
                .iter()
                .map(|(c, e)| format!("{} = {}", u.table.columns[*c].name, expr(e, &names)))
                .collect();
            out.push(format!("Update: {} SET {}", u.table.name, sets.join(", ")));
            rel(&u.source, 1, &mut out, note);
        }
        Plan::Delete(d) => {
            out.push(format!("Delete: {}", d.table.name));
            rel(&d.source, 1, &mut out, note);
        }
        Plan::CreateTable(c) => out.push(format!("Create table: {}", c.name)),
        Plan::CreateIndex(c) => out.push(format!(
            "Create index: {} on {}",
            c.index.name, c.table.name
        )),
        Plan::CreateView(c) => out.push(format!("Create view: {}", c.name)),
        Plan::CreateSequence(c) => out.push(format!("Create sequence: {}", c.seq.name)),
        Plan::User(u) => out.push(match u {
            UserPlan::Create { name, .. } => format!("Create user: {name}"),
            UserPlan::SetPassword { name, .. } => format!("Set password: {name}"),
            UserPlan::Drop { names, .. } => format!("Drop users: {}", names.join(", ")),
        }),
        Plan::Drop(DropPlan::Sequences { names, .. }) => {
            out.push(format!("Drop sequence: {}", names.join(", ")));
        }
        Plan::Drop(DropPlan::Relations { relations, views }) => {
            let names: Vec<&str> = relations.iter().map(|t| t.name.as_str()).collect();
            let what = if *views { "view" } else { "table" };
            out.push(format!("Drop {what}: {}", names.join(", ")));
        }
        Plan::Drop(DropPlan::Indexes { names, .. }) => {
            out.push(format!("Drop index: {}", names.join(", ")));
        }
        Plan::Alter(a) => out.push(format!(
            "Alter table: {}",
            a.as_ref().map_or("(no change)", |a| a.old.name.as_str())
        )),
        Plan::Truncate(t) => {
            let names: Vec<&str> = t.tables.iter().map(|t| t.name.as_str()).collect();
            out.push(format!("Truncate: {}", names.join(", ")));
        }
        Plan::Explain(inner) => out.extend(explain_noted(&inner.plan, note)),
        Plan::ExplainAnalyze(a) => out.extend(explain_noted(&a.plan, note)),
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn push(out: &mut Vec<String>, depth: usize, line: String) {
    out.push(format!("{}{}", "  ".repeat(depth), line));
}

/// The names of the columns `r` produces.
fn names(r: &Rel) -> Vec<String> {
    match r {
        Rel::Values { width, .. } => (1..=*width).map(|i| format!("column{i}")).collect(),
        Rel::Function { func, .. } => vec![func.name().to_string()],
        Rel::Scan(s) => s.table.columns.iter().map(|c| c.name.clone()).collect(),
        Rel::Filter { input, .. }
        | Rel::Distinct { input, .. }
        | Rel::Sort { input, .. }
        | Rel::Limit { input, .. } => names(input),
        Rel::Project { input, exprs } => {
            let inner = names(input);
            exprs.iter().map(|e| expr(e, &inner)).collect()
        }
        Rel::Join(j) => {
            let mut n = names(&j.left);
            n.extend(names(&j.right));
            n
        }
        Rel::Aggregate { input, plan } => {
            let inner = names(input);
            plan.groups
                .iter()
                .map(|g| expr(g, &inner))
                .chain(plan.aggs.iter().map(|a| agg(a, &inner)))
                .collect()
        }
        Rel::Window { input, plan } => {
            let mut n = names(input);
            let inner = n.clone();
            n.extend(plan.funcs.iter().map(|f| window(f, &inner)));
            n
        }
        Rel::SetOp { left, .. } => names(left),
    }
}

fn rel(r: &Rel, depth: usize, out: &mut Vec<String>, note: Note<'_>) {
    let noted = note(r);
    match r {
        Rel::Values { rows, .. } => push(
            out,
            depth,
            format!("Values: {} row{}{noted}", rows.len(), plural(rows.len())),
        ),
        Rel::Function { func, args, .. } => {
            let a: Vec<String> = args.iter().map(|e| expr(e, &[])).collect();
            push(
                out,
                depth,
                format!("Function: {}({}){noted}", func.name(), a.join(", ")),
            );
        }
        Rel::Scan(s) => scan(s, depth, out, &noted),
        Rel::Filter { input, predicate } => {
            let n = names(input);
            push(
                out,
                depth,
                format!("Filter: {}{noted}", expr(predicate, &n)),
            );
            rel(input, depth + 1, out, note);
        }
        Rel::Project { input, exprs } => {
            let n = names(input);
            let e: Vec<String> = exprs.iter().map(|e| expr(e, &n)).collect();
            push(out, depth, format!("Project: {}{noted}", e.join(", ")));
            rel(input, depth + 1, out, note);
        }
        Rel::Join(j) => {
            let kind = match j.kind {
                JoinKind::Inner => "inner",
                JoinKind::Left => "left",
                JoinKind::Full => "full",
            };
            let ln = names(&j.left);
            let rn = names(&j.right);
            let mut all = ln.clone();
            all.extend(rn.iter().cloned());
            let mut conds: Vec<String> = j
                .left_keys
                .iter()
                .zip(&j.right_keys)
                .map(|(l, r)| format!("{} = {}", expr(l, &ln), expr(r, &rn)))
                .collect();
            if let Some(res) = &j.residual {
                conds.push(expr(res, &all));
            }
            let on = if conds.is_empty() {
                String::new()
            } else {
                format!(": {}", conds.join(" AND "))
            };
            let method = match (&j.lookup, j.left_keys.is_empty()) {
                (Some(l), _) => {
                    let via = match (j.right.as_scan(), l.access) {
                        (Some((s, _)), Access::Index(i)) => {
                            format!(" via {}@{}", s.table.name, s.table.indexes[i].name)
                        }
                        (Some((s, _)), Access::Primary) => format!(" via {}", s.table.name),
                        _ => String::new(),
                    };
                    format!("Lookup join ({kind}){via}")
                }
                (None, false) if j.build_left => format!("Hash join ({kind}, build left)"),
                (None, false) => format!("Hash join ({kind})"),
                (None, true) => format!("Nested loop join ({kind})"),
            };
            let est = estimated(j.estimate);
            push(out, depth, format!("{method}{on}{est}{noted}"));
            rel(&j.left, depth + 1, out, note);
            rel(&j.right, depth + 1, out, note);
        }
        Rel::Aggregate { input, plan } => {
            let n = names(input);
            let groups: Vec<String> = plan.groups.iter().map(|g| expr(g, &n)).collect();
            let aggs: Vec<String> = plan.aggs.iter().map(|c| agg(c, &n)).collect();
            let by = if groups.is_empty() {
                String::new()
            } else {
                format!(" GROUP BY {}", groups.join(", "))
            };
            push(
                out,
                depth,
                format!("Aggregate: {}{by}{noted}", aggs.join(", ")),
            );
            rel(input, depth + 1, out, note);
        }
        Rel::Window { input, plan } => {
            let n = names(input);
            let f: Vec<String> = plan.funcs.iter().map(|f| window(f, &n)).collect();
            push(out, depth, format!("Window: {}{noted}", f.join(", ")));
            rel(input, depth + 1, out, note);
        }
        Rel::Distinct { input, on } => {
            let line = match on {
                None => "Distinct".to_string(),
                Some(cols) => {
                    let n = names(input);
                    let c: Vec<&str> = cols.iter().map(|&i| n[i].as_str()).collect();
                    format!("Distinct on ({})", c.join(", "))
                }
            };
            push(out, depth, format!("{line}{noted}"));
            rel(input, depth + 1, out, note);
        }
        Rel::Sort { input, keys } => {
            let n = names(input);
            let k: Vec<String> = keys
                .iter()
                .map(|k| {
                    let dir = if k.desc { " DESC" } else { "" };
                    let nulls = if k.nulls_first {
                        " NULLS FIRST"
                    } else {
                        " NULLS LAST"
                    };
                    format!("{}{dir}{nulls}", n[k.column])
                })
                .collect();
            push(out, depth, format!("Sort: {}{noted}", k.join(", ")));
            rel(input, depth + 1, out, note);
        }
        Rel::Limit {
            input,
            limit,
            offset,
            counts,
        } => {
            let line = match counts {
                None => {
                    let l = limit.map_or("ALL".to_string(), |l| l.to_string());
                    format!("Limit: {l} OFFSET {offset}")
                }
                Some(c) => {
                    let show = |e: &Option<ScalarExpr>, none: &str| {
                        e.as_ref().map_or(none.to_string(), |e| expr(e, &[]))
                    };
                    format!(
                        "Limit: {} OFFSET {}",
                        show(&c.limit, "ALL"),
                        show(&c.offset, "0")
                    )
                }
            };
            push(out, depth, format!("{line}{noted}"));
            rel(input, depth + 1, out, note);
        }
        Rel::SetOp {
            op,
            all,
            left,
            right,
        } => {
            let all = if *all { " ALL" } else { "" };
            push(out, depth, format!("{}{all}{noted}", op.name()));
            rel(left, depth + 1, out, note);
            rel(right, depth + 1, out, note);
        }
    }
}

fn scan(s: &ScanPlan, depth: usize, out: &mut Vec<String>, note: &str) {
    let names: Vec<String> = s.table.columns.iter().map(|c| c.name.clone()).collect();
    let mut depth = depth;
    if let Some(f) = &s.filter {
        push(out, depth, format!("Filter: {}", expr(f, &names)));
        depth += 1;
    }
    let key: Vec<&str> = key_columns(&s.table, s.access)
        .into_iter()
        .map(|(c, _)| names[c].as_str())
        .collect();
    let what = match &s.range {
        _ if s.dynamic => "key range computed per execution".to_string(),
        KeyRange::Empty => "no rows (contradiction)".to_string(),
        KeyRange::Full => "full scan".to_string(),
        KeyRange::Points(points) => {
            let tuples: Vec<String> = points.iter().map(|p| tuple(p)).collect();
            let n = points.len();
            // Equal keys of a non-unique index are a range of entries each.
            let what = if s.index().is_some_and(|ix| !ix.unique) {
                "range"
            } else {
                "point lookup"
            };
            format!(
                "{what}{} ({}) = {}",
                plural(n),
                key.join(", "),
                tuples.join(", ")
            )
        }
        KeyRange::Spans(spans) => {
            let parts: Vec<String> = spans.iter().map(|sp| span(sp, &key)).collect();
            format!("range{} {}", plural(spans.len()), parts.join("; "))
        }
    };
    let target = match s.index() {
        Some(ix) => format!(
            "{}@{}{}",
            s.table.name,
            ix.name,
            if s.covering { " (covering)" } else { "" }
        ),
        None => s.table.name.clone(),
    };
    let est = estimated(s.estimate);
    push(out, depth, format!("Scan: {target}, {what}{est}{note}"));
}

/// ` (estimated rows=N)` for an operator whose rows statistics estimate, else nothing.
fn estimated(rows: Option<f64>) -> String {
    match rows {
        None => String::new(),
        // Something may be there unless nothing can be (a contradiction, an empty table).
        Some(r) => format!(
            " (estimated rows={})",
            if r > 0.0 { r.round().max(1.0) } else { 0.0 }
        ),
    }
}

fn span(s: &KeySpan, key: &[&str]) -> String {
    let mut parts = Vec::new();
    if !s.prefix.is_empty() {
        parts.push(format!(
            "({}) = {}",
            key[..s.prefix.len()].join(", "),
            tuple(&s.prefix)
        ));
    }
    let col = key.get(s.prefix.len()).copied().unwrap_or("?");
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

fn literal(d: &Datum) -> String {
    match d {
        Datum::Null => "NULL".to_string(),
        Datum::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Datum::Timestamp(_)
        | Datum::TimestampTz(_)
        | Datum::Date(_)
        | Datum::Interval(_)
        | Datum::Uuid(_)
        | Datum::Bytea(_) => format!("'{}'", d.to_pg_text().unwrap_or_default()),
        other => other.to_pg_text().unwrap_or_default(),
    }
}

fn agg(c: &AggCall, names: &[String]) -> String {
    let arg = match &c.arg {
        None => "*".to_string(),
        Some(a) => expr(a, names),
    };
    let distinct = if c.distinct { "DISTINCT " } else { "" };
    let filter = match &c.filter {
        Some(f) => format!(" FILTER (WHERE {})", expr(f, names)),
        None => String::new(),
    };
    format!("{}({distinct}{arg}){filter}", c.func.name())
}

fn window(w: &super::window::WindowCall, names: &[String]) -> String {
    let f = match &w.func {
        WindowFunc::Agg(a) => agg(a, names),
        other => {
            let args: Vec<String> = w.args.iter().map(|a| expr(a, names)).collect();
            let name = match other {
                WindowFunc::RowNumber => "row_number",
                WindowFunc::Rank => "rank",
                WindowFunc::DenseRank => "dense_rank",
                WindowFunc::PercentRank => "percent_rank",
                WindowFunc::CumeDist => "cume_dist",
                WindowFunc::Ntile => "ntile",
                WindowFunc::Lag => "lag",
                WindowFunc::Lead => "lead",
                WindowFunc::FirstValue => "first_value",
                WindowFunc::LastValue => "last_value",
                WindowFunc::Agg(_) => "agg",
            };
            format!("{name}({})", args.join(", "))
        }
    };
    let mut over = Vec::new();
    if !w.partition.is_empty() {
        let p: Vec<String> = w.partition.iter().map(|e| expr(e, names)).collect();
        over.push(format!("PARTITION BY {}", p.join(", ")));
    }
    if !w.order.is_empty() {
        let o: Vec<String> = w
            .order
            .iter()
            .map(|(e, desc, _)| format!("{}{}", expr(e, names), if *desc { " DESC" } else { "" }))
            .collect();
        over.push(format!("ORDER BY {}", o.join(", ")));
    }
    format!("{f} OVER ({})", over.join(" "))
}

/// Renders an expression over a row whose columns are called `names`.
pub(crate) fn expr(e: &ScalarExpr, names: &[String]) -> String {
    use ScalarExpr::*;
    let r = |e: &ScalarExpr| expr(e, names);
    match e {
        Literal(d, _) => literal(d),
        Column(i, _) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
        Param(i, _) => format!("${}", i + 1),
        Outer(i, _) => format!("outer#{i}"),
        Subquery(s) => match &s.kind {
            SubqueryKind::Scalar => "(subquery)".to_string(),
            SubqueryKind::Exists => "EXISTS (subquery)".to_string(),
            SubqueryKind::Array => "ARRAY(subquery)".to_string(),
            SubqueryKind::Lookup { keys } => {
                let k: Vec<String> = keys.iter().map(&r).collect();
                format!("(subquery)[{}]", k.join(", "))
            }
            SubqueryKind::Quantified { left, op, all } => format!(
                "({} {} {} (subquery))",
                r(left),
                op.symbol(),
                if *all { "ALL" } else { "ANY" }
            ),
        },
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
        } => format!(
            "({} IS {}{})",
            r(expr),
            if *negated { "NOT " } else { "" },
            if *value { "TRUE" } else { "FALSE" }
        ),
        IsDistinct {
            left,
            right,
            negated,
        } => format!(
            "({} IS {}DISTINCT FROM {})",
            r(left),
            if *negated { "NOT " } else { "" },
            r(right)
        ),
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
        Volatile(v) => {
            let a: Vec<String> = v.args.iter().map(r).collect();
            format!("{}({})", v.func.name(), a.join(", "))
        }
    }
}
