//! The differential tester: random schemas, data and queries run on Meridian (an in-process
//! engine on the in-memory keyspace) and on PostgreSQL 15 (a private server, `postgres.rs`),
//! with the outcomes compared (`compare.rs`). A mismatch is shrunk to a small self-contained
//! reproducer (`shrink.rs`) and printed with both results; the test fails if there is any.
//! Documented intentional differences (`known.rs`) are counted apart.
//!
//! The run is a series of rounds; each round makes a new schema of three tables with random
//! rows (`schema.rs`), then runs its share of generated queries (`generate.rs`). Every other
//! round analyzes the tables first, so its queries are planned with statistics. Everything
//! follows from the seed, printed first.
//!
//! Environment:
//! * `MERIDIAN_DIFFTEST_QUERIES` (default 1500): how many queries to run.
//! * `MERIDIAN_DIFFTEST_SEED` (default 1): the seed.
//! * `MERIDIAN_DIFFTEST_ROUND` (default 250): queries per schema.
//! * `MERIDIAN_DIFFTEST_SHRINK` (default 5): how many mismatches to shrink (the others are
//!   printed as found).
//! * `MERIDIAN_DIFFTEST_VERBOSE=1`: print every query with its outcome.
//!
//! `ops/difftest.sh` runs it with a chosen count and seed.

mod ast;
mod compare;
mod generate;
mod known;
mod postgres;
mod schema;
mod shrink;

use std::collections::BTreeMap;
use std::process::ExitCode;

use rand::SeedableRng;
use rand::rngs::StdRng;

use compare::{Outcome, Verdict};
use schema::Schema;

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// A mismatch as found.
struct Found {
    round: u64,
    number: u64,
    schema: Schema,
    query: ast::Query,
    reason: String,
    meridian: Outcome,
    postgres: Outcome,
}

#[derive(Default)]
struct Stats {
    rows: u64,
    errors: u64,
    explained: BTreeMap<&'static str, u64>,
}

fn commented(o: &Outcome) -> String {
    o.to_string()
        .lines()
        .map(|l| format!("--   {l}\n"))
        .collect()
}

fn reproducer(schema: &Schema, query: &ast::Query, m: &Outcome, p: &Outcome) -> String {
    let mut s = String::new();
    for stmt in schema.setup_sql() {
        s.push_str(&stmt);
        s.push_str(";\n");
    }
    s.push_str(&format!("{query};\n-- Meridian:\n"));
    s.push_str(&commented(m));
    s.push_str("-- PostgreSQL:\n");
    s.push_str(&commented(p));
    s
}

async fn run_both(
    session: &mut meridian_sql::Session,
    pg: &tokio_postgres::Client,
    sql: &str,
) -> (Outcome, Outcome) {
    let m = compare::meridian(session, sql).await;
    let p = compare::postgres(pg, sql).await;
    (m, p)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let queries = env_num("MERIDIAN_DIFFTEST_QUERIES", 1500);
    let seed = env_num("MERIDIAN_DIFFTEST_SEED", 1);
    let per_round = env_num("MERIDIAN_DIFFTEST_ROUND", 250).max(1);
    let shrink_max = env_num("MERIDIAN_DIFFTEST_SHRINK", 5) as usize;
    let verbose = std::env::var("MERIDIAN_DIFFTEST_VERBOSE").is_ok_and(|v| v == "1");
    eprintln!("difftest: seed {seed}, {queries} queries, {per_round} per schema");

    let server = match postgres::Postgres::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("difftest: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pg = server.connect().await.expect("PostgreSQL connection");
    let scratch = server.connect().await.expect("PostgreSQL connection");
    let timeout = format!(
        "SET statement_timeout = {}",
        compare::STATEMENT_TIMEOUT.as_millis()
    );
    pg.batch_execute(&timeout).await.expect("SET");
    scratch
        .batch_execute(&format!("{timeout}; SET search_path TO shrink"))
        .await
        .expect("SET");

    let mut stats = Stats::default();
    let mut found = Vec::new();
    let mut done = 0;
    let mut round: u64 = 0;
    while done < queries {
        let mut rng =
            StdRng::seed_from_u64(seed.wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let mut schema = schema::schema(&mut rng);
        // Every other round plans with statistics (join order, hash side, index choice).
        schema.analyze = round % 2 == 1;
        let mut setup = vec![schema.drop_sql()];
        setup.extend(schema.setup_sql());
        pg.batch_execute(&setup.join(";\n"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL setup of round {round}: {e}"));
        let mut session = shrink::meridian_session(&schema)
            .await
            .unwrap_or_else(|e| panic!("setup of round {round}: {e}"));
        let n = per_round.min(queries - done);
        for number in 0..n {
            let query = generate::Gen::new(&mut rng, &schema).query();
            let sql = query.to_string();
            let (m, p) = run_both(&mut session, &pg, &sql).await;
            let verdict = compare::compare(&query, &m, &p);
            if verbose {
                eprintln!("[{round}.{number}] {sql}\n{verdict:?}\n{m}");
            }
            match verdict {
                Verdict::Same if matches!(p, Outcome::Rows { .. }) => stats.rows += 1,
                Verdict::Same => stats.errors += 1,
                Verdict::Explained(r) => *stats.explained.entry(r).or_default() += 1,
                Verdict::Differ(reason) => {
                    eprintln!(
                        "difftest: MISMATCH [{round}.{number}] {reason}: {sql}\n  Meridian: {}\n  PostgreSQL: {}",
                        m.summary(),
                        p.summary()
                    );
                    found.push(Found {
                        round,
                        number,
                        schema: schema.clone(),
                        query,
                        reason,
                        meridian: m,
                        postgres: p,
                    });
                }
            }
        }
        done += n;
        eprintln!(
            "difftest: round {round}: {done} queries run, {} mismatches so far",
            found.len()
        );
        round += 1;
    }

    for f in found.iter().take(shrink_max) {
        let mut shrinker = shrink::Shrinker {
            pg: &scratch,
            attempts: 0,
            budget: 3000,
            kind: None,
        };
        let header = format!(
            "-- mismatch [{}.{}] (seed {seed}): {}",
            f.round, f.number, f.reason
        );
        match shrinker.shrink(f.schema.clone(), f.query.clone()).await {
            Some((schema, query)) => {
                let mut session = shrinker.load(&schema).await.expect("reloads");
                let (m, p) = run_both(&mut session, &scratch, &query.to_string()).await;
                eprintln!(
                    "\n{header}, shrunk in {} attempts:\n{}",
                    shrinker.attempts,
                    reproducer(&schema, &query, &m, &p)
                );
            }
            None => eprintln!(
                "\n{header}, not reproduced from scratch:\n{}",
                reproducer(&f.schema, &f.query, &f.meridian, &f.postgres)
            ),
        }
    }

    let explained: u64 = stats.explained.values().sum();
    eprintln!(
        "\ndifftest: seed {seed}: {queries} queries: {} with equal rows, {} failing alike, \
         {explained} documented differences, {} mismatches",
        stats.rows,
        stats.errors,
        found.len()
    );
    for (reason, n) in &stats.explained {
        eprintln!("difftest:   {n} x {reason}");
    }
    // A generator whose queries mostly fail would compare nothing.
    let floor = queries * 6 / 10;
    if stats.rows < floor {
        eprintln!(
            "difftest: FAILED: only {} queries returned rows on both (at least {floor} expected)",
            stats.rows
        );
        return ExitCode::FAILURE;
    }
    if !found.is_empty() {
        eprintln!(
            "difftest: FAILED: {} mismatches (replay: MERIDIAN_DIFFTEST_SEED={seed} \
             MERIDIAN_DIFFTEST_QUERIES={queries})",
            found.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
