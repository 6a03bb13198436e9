//! Planner tests: binding, types, labels and key-range extraction, on hand-made descriptors.

use std::ops::Bound;
use std::sync::Arc;

use super::keyrange::{ByteSpan, KeyRange, KeySpan};
use super::*;
use crate::api::{Datum, SqlType};
use crate::catalog::ColumnDesc;
use crate::expr::ScalarExpr;
use crate::keys;

fn col(name: &str, ty: SqlType, nullable: bool) -> ColumnDesc {
    ColumnDesc {
        id: 0,
        name: name.into(),
        ty,
        nullable,
        max_len: None,
        fixed: false,
        default_expr: None,
        hidden: false,
        owned_sequence: None,
        numeric: None,
    }
}

/// `t(id INT PRIMARY KEY, v TEXT, f FLOAT8)` and `c(a INT, b TEXT, x INT8, PRIMARY KEY (a, b))`
/// and `fl(k FLOAT8 PRIMARY KEY)`.
fn tables() -> Tables {
    let t = TableDesc::new(
        100,
        "t".into(),
        vec![
            col("id", SqlType::Int4, false),
            col("v", SqlType::Text, true),
            col("f", SqlType::Float8, true),
        ],
        vec![0],
        1,
    )
    .unwrap();
    let c = TableDesc::new(
        101,
        "c".into(),
        vec![
            col("a", SqlType::Int4, false),
            col("b", SqlType::Text, false),
            col("x", SqlType::Int8, true),
        ],
        vec![0, 1],
        1,
    )
    .unwrap();
    let fl = TableDesc::new(
        102,
        "fl".into(),
        vec![col("k", SqlType::Float8, false)],
        vec![0],
        1,
    )
    .unwrap();
    [("t", t), ("c", c), ("fl", fl)]
        .into_iter()
        .map(|(n, d)| (n.to_string(), Some(Arc::new(d))))
        .collect()
}

fn plan(sql: &str) -> Result<Plan, SqlError> {
    let stmts = crate::parse::parse(sql)?;
    let tables = tables();
    let ctx = BindContext::new(sql, "alice", "db1", &tables);
    plan_statement(&stmts[0], &ctx)
}

fn select(sql: &str) -> QueryPlan {
    match plan(sql) {
        Ok(Plan::Query(s)) => s,
        other => panic!("{sql}: {other:?}"),
    }
}

/// The first operator of `rel` (depth first) that `pick` accepts.
fn find<'r, T>(rel: &'r Rel, pick: &dyn Fn(&'r Rel) -> Option<T>) -> Option<T> {
    if let Some(t) = pick(rel) {
        return Some(t);
    }
    rel.inputs().into_iter().find_map(|i| find(i, pick))
}

fn range(sql: &str) -> KeyRange {
    let q = select(sql);
    find(&q.rel, &|r| match r {
        Rel::Scan(s) => Some(s.range.clone()),
        _ => None,
    })
    .expect("a table scan")
}

/// The expressions of the innermost projection.
fn projection(q: &QueryPlan) -> Vec<ScalarExpr> {
    find(&q.rel, &|r| match r {
        Rel::Project { input, exprs }
            if !matches!(**input, Rel::Project { .. } | Rel::Sort { .. }) =>
        {
            Some(exprs.clone())
        }
        _ => None,
    })
    .expect("a projection")
}

fn err(sql: &str) -> SqlError {
    match plan(sql) {
        Err(e) => e,
        Ok(p) => panic!("{sql} planned: {p:?}"),
    }
}

fn i(v: i64) -> Datum {
    Datum::Int(v)
}

fn t(s: &str) -> Datum {
    Datum::Text(s.into())
}

#[test]
fn equality_on_the_whole_key_is_a_point_lookup() {
    assert_eq!(
        range("SELECT * FROM t WHERE id = 1"),
        KeyRange::Points(vec![vec![i(1)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE 1 = id AND v = 'x'"),
        KeyRange::Points(vec![vec![i(1)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id = 1 + 1"),
        KeyRange::Points(vec![vec![i(2)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id IN (3, 1, 3)"),
        KeyRange::Points(vec![vec![i(1)], vec![i(3)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id = '7'"),
        KeyRange::Points(vec![vec![i(7)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id::int8 = 5"),
        KeyRange::Points(vec![vec![i(5)]])
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id = 3000000000"),
        KeyRange::Points(vec![vec![i(3_000_000_000)]])
    );
    assert_eq!(
        range("SELECT * FROM c WHERE b = 'q' AND a = 2"),
        KeyRange::Points(vec![vec![i(2), t("q")]])
    );
    assert_eq!(
        range("SELECT * FROM c WHERE a IN (2, 1) AND b IN ('y', 'x')"),
        KeyRange::Points(vec![
            vec![i(1), t("x")],
            vec![i(1), t("y")],
            vec![i(2), t("x")],
            vec![i(2), t("y")]
        ])
    );
    // An integer constant compared with a float key is converted to float8 when binding.
    assert_eq!(
        range("SELECT * FROM fl WHERE k = 1"),
        KeyRange::Points(vec![vec![Datum::Float(1.0)]])
    );
    // Equality intersected with a range.
    assert_eq!(
        range("SELECT * FROM t WHERE id IN (1, 5, 9) AND id > 3"),
        KeyRange::Points(vec![vec![i(5)], vec![i(9)]])
    );
}

#[test]
fn ranges_and_prefixes() {
    let span = |prefix: Vec<Datum>, lower, upper| {
        KeyRange::Spans(vec![KeySpan {
            prefix,
            lower,
            upper,
        }])
    };
    assert_eq!(
        range("SELECT * FROM t WHERE id > 1 AND id <= 5"),
        span(vec![], Bound::Excluded(i(1)), Bound::Included(i(5)))
    );
    assert_eq!(
        range("SELECT * FROM t WHERE id BETWEEN 2 AND 4 AND id >= 3"),
        span(vec![], Bound::Included(i(3)), Bound::Included(i(4)))
    );
    assert_eq!(
        range("SELECT * FROM t WHERE 10 > id"),
        span(vec![], Bound::Unbounded, Bound::Excluded(i(10)))
    );
    assert_eq!(
        range("SELECT * FROM c WHERE a = 1"),
        span(vec![i(1)], Bound::Unbounded, Bound::Unbounded)
    );
    assert_eq!(
        range("SELECT * FROM c WHERE a = 1 AND b >= 'm'"),
        span(vec![i(1)], Bound::Included(t("m")), Bound::Unbounded)
    );
    assert_eq!(
        range("SELECT * FROM c WHERE a > 1"),
        span(vec![], Bound::Excluded(i(1)), Bound::Unbounded)
    );
}

#[test]
fn what_cannot_narrow_the_scan() {
    for sql in [
        "SELECT * FROM t",
        "SELECT * FROM t WHERE id = 1 OR id = 2",
        "SELECT * FROM t WHERE id + 0 = 1",
        "SELECT * FROM t WHERE id <> 1",
        "SELECT * FROM t WHERE v = 'x'",
        "SELECT * FROM t WHERE NOT (id = 1)",
        "SELECT * FROM c WHERE b = 'x'",
        "SELECT * FROM t WHERE id::float8 = 1",
    ] {
        assert_eq!(range(sql), KeyRange::Full, "{sql}");
    }
}

#[test]
fn contradictions_read_nothing() {
    for sql in [
        "SELECT * FROM t WHERE id = 1 AND id = 2",
        "SELECT * FROM t WHERE id > 5 AND id < 3",
        "SELECT * FROM t WHERE id > 5 AND id < 5",
        "SELECT * FROM t WHERE id = NULL",
        "SELECT * FROM t WHERE id IS NULL",
        "SELECT * FROM t WHERE id IN (NULL)",
        "SELECT * FROM t WHERE false",
        "SELECT * FROM t WHERE id = 1 AND NULL",
    ] {
        assert_eq!(range(sql), KeyRange::Empty, "{sql}");
    }
    assert_eq!(
        range("SELECT * FROM t WHERE id >= 5 AND id <= 5"),
        KeyRange::Spans(vec![KeySpan {
            prefix: vec![],
            lower: Bound::Included(i(5)),
            upper: Bound::Included(i(5)),
        }])
    );
}

#[test]
fn huge_in_products_fall_back_to_a_prefix_range() {
    let many: Vec<String> = (0..100).map(|n| n.to_string()).collect();
    let strs: Vec<String> = (0..20).map(|n| format!("'{n}'")).collect();
    let sql = format!(
        "SELECT * FROM c WHERE a IN ({}) AND b IN ({})",
        many.join(","),
        strs.join(",")
    );
    match range(&sql) {
        KeyRange::Spans(spans) => {
            assert_eq!(spans.len(), 100);
            assert!(
                spans
                    .iter()
                    .all(|s| s.prefix.len() == 1 && s.lower == Bound::Unbounded)
            );
        }
        other => panic!("expected prefix spans, got {other:?}"),
    }
}

/// The byte ranges contain exactly the keys whose values satisfy the predicate.
#[test]
fn byte_spans_contain_exactly_the_matching_keys() {
    let tables = tables();
    let table = tables["t"].clone().unwrap();
    type Case = (&'static str, fn(i64) -> bool);
    let cases: &[Case] = &[
        ("id > -2 AND id <= 3", |v| v > -2 && v <= 3),
        ("id >= 0", |v| v >= 0),
        ("id < 0", |v| v < 0),
        ("id BETWEEN -1 AND 1", |v| (-1..=1).contains(&v)),
        ("id IN (-3, 4)", |v| v == -3 || v == 4),
        ("id = 300", |v| v == 300),
    ];
    for (pred, matches) in cases {
        let r = range(&format!("SELECT * FROM t WHERE {pred}"));
        let spans = r.byte_spans(&table);
        for v in [-300i64, -256, -3, -2, -1, 0, 1, 2, 3, 4, 255, 256, 300] {
            let key = keys::pk_key(&table, &[i(v)]);
            let inside = spans.iter().any(|s| match s {
                ByteSpan::Point(k) => *k == key,
                ByteSpan::Range(a, b) => a <= &key && &key < b,
            });
            assert_eq!(inside, matches(v), "{pred} at {v}");
        }
    }
}

#[test]
fn composite_prefix_spans_cover_all_suffixes() {
    let tables = tables();
    let table = tables["c"].clone().unwrap();
    let spans = range("SELECT * FROM c WHERE a = 1 AND b > 'b'").byte_spans(&table);
    let inside = |a: i64, b: &str| {
        let key = keys::pk_key(&table, &[i(a), t(b)]);
        spans
            .iter()
            .any(|s| matches!(s, ByteSpan::Range(x, y) if x <= &key && &key < y))
    };
    assert!(inside(1, "c") && inside(1, "ba") && inside(1, "zzz"));
    assert!(!inside(1, "b") && !inside(1, "a") && !inside(0, "z") && !inside(2, "c"));
}

#[test]
fn labels() {
    let s = select(
        "SELECT id, id + 1, 1::bigint, 'x', true, id::bigint, v AS name, CASE WHEN true THEN 1 END, current_user, version() FROM t",
    );
    let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "?column?",
            "int8",
            "?column?",
            "bool",
            "id",
            "name",
            "case",
            "current_user",
            "version"
        ]
    );
    let types: Vec<SqlType> = s.columns.iter().map(|c| c.ty).collect();
    use SqlType::*;
    assert_eq!(
        types,
        [Int4, Int4, Int8, Text, Bool, Int8, Text, Int4, Text, Text]
    );
    let s = select("SELECT count(*), sum(id), avg(id), min(v), max(f), sum(f), count(v) FROM t");
    let types: Vec<SqlType> = s.columns.iter().map(|c| c.ty).collect();
    assert_eq!(types, [Int8, Int8, Numeric, Text, Float8, Float8, Int8]);
    assert_eq!(s.columns[0].name, "count");
}

#[test]
fn session_functions_are_constants() {
    let s = select("SELECT current_user, current_database(), current_schema");
    let lit = |s: &str| ScalarExpr::Literal(t(s), SqlType::Text);
    assert_eq!(projection(&s), [lit("alice"), lit("db1"), lit("public")]);
}

#[test]
fn binder_errors_carry_sqlstate_and_position() {
    let e = err("SELECT nosuch FROM t");
    assert_eq!((e.code, e.position), ("42703", Some(8)));
    let e = err("SELECT id FROM nosuch");
    assert_eq!((e.code, e.position), ("42P01", Some(16)));
    let e = err("SELECT id FROM t WHERE id = 'abc'");
    assert_eq!((e.code, e.position), ("22P02", Some(29)));
    assert_eq!(err("SELECT id + v FROM t").code, "42883");
    assert_eq!(err("SELECT id FROM t WHERE id").code, "42804");
    assert_eq!(err("SELECT v, count(*) FROM t").code, "42803");
    assert_eq!(err("SELECT id FROM t WHERE count(*) > 0").code, "42803");
    assert_eq!(err("SELECT * FROM t, LATERAL (SELECT 1) x").code, "0A000");
    assert_eq!(
        err("SELECT id FROM t, c WHERE a = id AND x = nosuch").code,
        "42703"
    );
    assert_eq!(err("SELECT x FROM t AS x, c AS x").code, "42712");
    assert_eq!(
        err("SELECT id FROM t JOIN t AS u USING (id) WHERE v = 'a'").code,
        "42702"
    );
    assert_eq!(err("INSERT INTO t VALUES (1, 2, 3, 4)").code, "42601");
    assert_eq!(err("INSERT INTO t (id) VALUES (true)").code, "42804");
    assert_eq!(err("UPDATE t SET nosuch = 1").code, "42703");
    assert_eq!(err("CREATE TABLE x (a INT, a INT)").code, "42701");
    assert_eq!(err("CREATE TABLE x (a nosuchtype)").code, "42704");
    assert_eq!(err("DROP TABLE nosuch").code, "42P01");
}

#[test]
fn create_table_without_primary_key_gets_hidden_rowid() {
    let Ok(Plan::CreateTable(p)) = plan("CREATE TABLE x (a INT NOT NULL, rowid TEXT)") else {
        panic!()
    };
    assert_eq!(p.columns.len(), 3);
    let key = &p.columns[p.pk[0]];
    assert_eq!(
        (key.name.as_str(), key.ty, key.hidden, key.nullable),
        ("rowid_1", SqlType::Int8, true, false)
    );
    let ids: Vec<u32> = p.columns.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let Ok(Plan::CreateTable(p)) =
        plan("CREATE TABLE y (a INT, b VARCHAR(4) DEFAULT 'x', PRIMARY KEY (b, a))")
    else {
        panic!()
    };
    assert_eq!(p.pk, vec![1, 0]);
    assert!(
        p.columns.iter().all(|c| !c.nullable),
        "key columns become NOT NULL"
    );
    assert_eq!(p.columns[1].max_len, Some(4));
    assert_eq!(p.columns[1].default_expr.as_deref(), Some("'x'"));
    assert_eq!(err("CREATE TABLE z (a INT DEFAULT 'nope')").code, "22P02");
    assert_eq!(
        err("CREATE TABLE z (a INT NULL, PRIMARY KEY (a))").code,
        "42601"
    );
}

#[test]
fn order_by_resolves_positions_aliases_and_hidden_keys() {
    let s = select("SELECT id AS k, v FROM t ORDER BY 2 DESC, k, f");
    assert_eq!(s.columns.len(), 2);
    assert_eq!(
        projection(&s).len(),
        3,
        "f is projected as a hidden sort key"
    );
    let keys: Vec<(usize, bool, bool)> = find(&s.rel, &|r| match r {
        Rel::Sort { keys, .. } => Some(
            keys.iter()
                .map(|k| (k.column, k.desc, k.nulls_first))
                .collect(),
        ),
        _ => None,
    })
    .expect("a sort");
    assert_eq!(
        keys,
        [(1, true, true), (0, false, false), (2, false, false)]
    );
}

#[test]
fn joins_push_conditions_into_scans_and_hash_on_equalities() {
    let q = select("SELECT v, x FROM c, t WHERE id = a AND b = 'q' AND id = 1");
    let join = find(&q.rel, &|r| match r {
        Rel::Join(j) => Some(j.clone()),
        _ => None,
    })
    .expect("a join");
    assert_eq!(join.left_keys.len(), 1, "id = a is a hash (or lookup) key");
    assert!(join.residual.is_none());
    // Both scans are narrowed: t to a point, c to a point through the pushed equalities.
    let lines = super::explain::explain(
        &plan("SELECT v, x FROM c, t WHERE id = a AND b = 'q' AND id = 1").unwrap(),
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Scan: t, point lookup (id) = (1)")),
        "{lines:#?}"
    );
}

#[test]
fn correlated_subqueries_capture_outer_columns() {
    let q = select("SELECT id, (SELECT count(*) FROM c WHERE c.a = t.id) FROM t");
    let p = projection(&q);
    let ScalarExpr::Subquery(sq) = &p[1] else {
        panic!("{p:?}")
    };
    assert_eq!(sq.captures, [ScalarExpr::Column(0, SqlType::Int4)]);
    let inner = find(&sq.plan, &|r| match r {
        Rel::Scan(s) => Some(s.dynamic),
        _ => None,
    });
    assert_eq!(
        inner,
        Some(true),
        "the key range depends on the outer value"
    );
    assert_eq!(err("SELECT (SELECT a, b FROM c) FROM t").code, "42601");
    assert_eq!(
        err("SELECT id FROM t GROUP BY id HAVING (SELECT v) > 'a'").code,
        "42803"
    );
}

/// `big(id INT PRIMARY KEY, m INT, even BOOL, v TEXT)` with indexes on `even` and on `v`,
/// `mid(id INT PRIMARY KEY, s INT)` and `small(id INT PRIMARY KEY, tag TEXT)`; with
/// statistics of 10000, 100 and 10 rows when `stats`.
fn sized_tables(stats: bool) -> Tables {
    use crate::catalog::IndexDesc;
    use crate::stats::{ColumnStats, TableStats};
    let table = |id, name: &str, cols: &[(&str, SqlType)], rows: u64, distinct: &[u64]| {
        let columns = cols
            .iter()
            .enumerate()
            .map(|(i, (n, ty))| ColumnDesc {
                id: i as u32 + 1,
                ..col(n, *ty, i > 0)
            })
            .collect();
        let mut d = TableDesc::new(id, name.into(), columns, vec![0], 1).unwrap();
        d.stats = stats.then(|| {
            Arc::new(TableStats {
                row_count: rows,
                columns: distinct
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| ColumnStats {
                        column_id: i as u32 + 1,
                        distinct: n,
                        nulls: 0,
                        avg_size: 8,
                    })
                    .collect(),
                collected_at: meridian_clock::Timestamp::from_nanos(1),
                automatic: false,
                generation: 1,
            })
        });
        d
    };
    let int = SqlType::Int4;
    let mut big = table(
        100,
        "big",
        &[
            ("id", int),
            ("m", int),
            ("even", SqlType::Bool),
            ("v", SqlType::Text),
        ],
        10_000,
        &[10_000, 100, 2, 5_000],
    );
    for (id, name, c) in [(2, "big_even", 2), (3, "big_v", 3)] {
        big.indexes.push(IndexDesc {
            id,
            name: name.into(),
            unique: false,
            columns: vec![(c, false)],
            stored: vec![],
        });
    }
    let mid = table(101, "mid", &[("id", int), ("s", int)], 100, &[100, 10]);
    let small = table(
        102,
        "small",
        &[("id", int), ("tag", SqlType::Text)],
        10,
        &[10, 3],
    );
    [big, mid, small]
        .into_iter()
        .map(|d| (d.name.clone(), Some(Arc::new(d))))
        .collect()
}

fn explain_sized(sql: &str, stats: bool) -> Vec<String> {
    let stmts = crate::parse::parse(sql).unwrap();
    let tables = sized_tables(stats);
    let ctx = BindContext::new(sql, "alice", "db1", &tables);
    super::explain::explain(&plan_statement(&stmts[0], &ctx).unwrap())
}

/// The tables scanned, in the order of the plan's lines (the join order for left-deep joins).
fn scanned(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("Scan: "))
        .map(|l| l.split([',', '@']).next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn statistics_reorder_joins_and_hash_the_smaller_side() {
    let sql = "SELECT count(*) FROM big, mid, small WHERE big.m = mid.id AND mid.s = small.id";
    // By shape every table is as large, so the FROM order stands and the right side is hashed.
    let lines = explain_sized(sql, false);
    assert_eq!(scanned(&lines), ["big", "mid", "small"], "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("estimated") && !l.contains("build left")),
        "{lines:#?}"
    );
    // With statistics the smallest table comes first and each join hashes its left side, the
    // smaller one; estimates follow the join keys' distinct counts.
    let lines = explain_sized(sql, true);
    assert_eq!(scanned(&lines), ["small", "mid", "big"], "{lines:#?}");
    let joins: Vec<&String> = lines.iter().filter(|l| l.contains("join")).collect();
    assert_eq!(joins.len(), 2, "{lines:#?}");
    assert!(
        joins[0].contains("Hash join (inner, build left): id = m (estimated rows=10000)"),
        "{lines:#?}"
    );
    assert!(
        joins[1].contains("Hash join (inner, build left): id = s (estimated rows=100)"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start() == "Scan: small, full scan (estimated rows=10)"),
        "{lines:#?}"
    );
}

#[test]
fn statistics_choose_between_indexes_and_the_table() {
    // By shape an equality on an indexed column always reads the index.
    let scan = |sql: &str, stats: bool| {
        explain_sized(sql, stats)
            .into_iter()
            .find(|l| l.contains("Scan: "))
            .unwrap()
            .trim_start()
            .to_string()
    };
    let half = "SELECT * FROM big WHERE even = true";
    assert!(scan(half, false).starts_with("Scan: big@big_even, range"));
    // Half of the table, each row fetched through the index: reading the table is cheaper.
    assert_eq!(
        scan(half, true),
        "Scan: big, full scan (estimated rows=5000)"
    );
    // A selective equality keeps its index.
    assert_eq!(
        scan("SELECT * FROM big WHERE v = 'x'", true),
        "Scan: big@big_v, range (v) = ('x') (estimated rows=2)"
    );
    // Of two indexes fixing one column each, shape takes the first, statistics the one with
    // more distinct values.
    let both = "SELECT * FROM big WHERE even = true AND v = 'x'";
    assert!(scan(both, false).starts_with("Scan: big@big_even"));
    assert!(scan(both, true).starts_with("Scan: big@big_v"));
}

#[test]
fn a_parameter_carries_over_join_equalities() {
    let q = select("SELECT t.v, c.b FROM t JOIN c ON c.a = t.id WHERE t.id = $1");
    let mut dynamic = Vec::new();
    let mut stack = vec![&q.rel];
    while let Some(r) = stack.pop() {
        if let Rel::Scan(s) = r {
            dynamic.push((s.table.name.clone(), s.dynamic));
        }
        stack.extend(r.inputs());
    }
    dynamic.sort();
    assert_eq!(
        dynamic,
        [("c".to_string(), true), ("t".to_string(), true)],
        "both scans take their key range from the parameter"
    );
}

#[test]
fn a_parameter_off_the_key_leaves_the_range_fixed() {
    let scan_of = |sql: &str| {
        let q = select(sql);
        let mut stack = vec![&q.rel];
        while let Some(r) = stack.pop() {
            if let Rel::Scan(s) = r {
                return (s.dynamic, s.range.clone());
            }
            stack.extend(r.inputs());
        }
        panic!("no scan in {sql}");
    };
    let (dynamic, range) = scan_of("SELECT * FROM t WHERE v = $1");
    assert!(
        !dynamic,
        "a condition off the key does not make the range dynamic"
    );
    assert!(matches!(range, KeyRange::Full));
    assert!(scan_of("SELECT * FROM t WHERE id = $1").0);
    assert!(scan_of("SELECT * FROM t WHERE id > $1 AND v = $2").0);
}

#[test]
fn ranges_set_by_parameters_run_vectorized_and_lookups_do_not() {
    let vectorized = |sql: &str| crate::exec::vector::supported(&select(sql).rel);
    assert!(vectorized("SELECT v FROM t WHERE id > $1 AND f < $2"));
    assert!(vectorized("SELECT v FROM t WHERE id BETWEEN $1 AND $2"));
    assert!(vectorized("SELECT v FROM t WHERE v = $1"));
    assert!(!vectorized("SELECT v FROM t WHERE id = $1"));
    assert!(!vectorized("SELECT v FROM t WHERE id IN ($1, $2)"));
    assert!(!vectorized("SELECT v FROM t WHERE id = 3"));
    // c's key is (a, b): fixing a alone leaves a range.
    assert!(vectorized("SELECT x FROM c WHERE a = $1"));
    assert!(!vectorized("SELECT x FROM c WHERE a = $1 AND b = $2"));
}
