//! Row-at-a-time against vectorized execution (`meridian.vectorize`): a grouped aggregation
//! over 200,000 rows of an embedded engine on the in-memory keyspace (one node, no network),
//! `SELECT g, count(*), sum(x) FROM t GROUP BY g` with 100 groups, and the same with a filter.
//!
//! Run with `cargo bench -p meridian-sql --bench vectorize`; figures in `benches/README.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian_sql::{Engine, Session, StatementResult};

const ROWS: usize = 200_000;

fn run(rt: &tokio::runtime::Runtime, session: &mut Session, sql: &str) -> StatementResult {
    let mut results = rt.block_on(session.execute(sql));
    match results.pop() {
        Some(Ok(r)) => r,
        other => panic!("{sql}: {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Engine::new(Arc::new(meridian_sql::testing::MemKv::new()));
    let mut session = engine.session("root", "defaultdb");
    run(
        &rt,
        &mut session,
        "CREATE TABLE t (id INT PRIMARY KEY, g INT, x INT)",
    );
    for start in (0..ROWS).step_by(20_000) {
        let sql = format!(
            "INSERT INTO t SELECT i, i % 100, CASE WHEN i % 10 = 0 THEN NULL ELSE i % 1000 END \
             FROM generate_series({}, {}) AS s(i)",
            start + 1,
            start + 20_000
        );
        run(&rt, &mut session, &sql);
    }
    let queries = [
        ("group_by", "SELECT g, count(*), sum(x) FROM t GROUP BY g"),
        (
            "filter_group_by",
            "SELECT g, count(*), sum(x) FROM t WHERE x > 100 AND g <> 7 GROUP BY g",
        ),
    ];
    let mut group = c.benchmark_group("vectorize");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, sql) in queries {
        for mode in ["off", "on"] {
            run(
                &rt,
                &mut session,
                &format!("SET meridian.vectorize = {mode}"),
            );
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| black_box(run(&rt, &mut session, sql)));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
