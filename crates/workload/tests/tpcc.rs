//! TPC-C end to end against a real PostgreSQL-wire database: `init` with one warehouse,
//! `check`, a 10-second `run` without keying or think times, and `check` again.
//!
//! SKIPPED WHEN `MERIDIAN_TPCC_PG_URL` IS UNSET (and only then): the test needs a database to
//! talk to, e.g. a private PostgreSQL 15 started as in `benches/tpcc.sh`:
//!
//! ```sh
//! MERIDIAN_TPCC_PG_URL=postgresql://postgres@127.0.0.1:55432/postgres \
//!     cargo test -p meridian-workload --test tpcc -- --nocapture
//! ```
//!
//! The variable may point at a Meridian node as well. A test that starts a node in-process
//! calls `meridian_workload::tpcc::init_run_check` with the node's URL and makes the same
//! assertions as [`assert_sound`].

use std::time::Duration;

use meridian_workload::tpcc::{self, CheckConfig, SmokeReport};

/// What a correct database and a correct workload produce.
fn assert_sound(r: &SmokeReport) {
    // Order lines vary around ten per order; every other count is fixed by the specification.
    let fixed = 100_000 + 1 + 100_000 + 10 * (1 + 3000 * 3 + 900);
    assert!(
        r.init.rows > fixed + 10 * 3000 * 5 && r.init.rows < fixed + 10 * 3000 * 15,
        "loaded {} rows",
        r.init.rows
    );
    assert!(r.before.passed(), "after init:\n{}", r.before.to_text());
    assert_eq!(r.before.conditions.len(), 11);
    assert!(r.run.tpmc > 0.0);
    for t in &r.run.txns {
        assert!(t.count > 0, "no {} completed", t.name);
        // Serialization failures are retried until the run ends, so any error is a bug.
        assert_eq!(t.errors, 0, "{} failed: {:?}", t.name, r.run.error_samples);
    }
    assert!(!r.run.series.is_empty(), "no time series recorded");
    assert!(r.after.passed(), "after the run:\n{}", r.after.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpcc_init_run_check_skipped_if_meridian_tpcc_pg_url_unset() {
    let Ok(url) = std::env::var("MERIDIAN_TPCC_PG_URL") else {
        eprintln!("skipped: MERIDIAN_TPCC_PG_URL is not set");
        return;
    };
    let r = tpcc::init_run_check(&url, 1, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("TPC-C against {url}: {e}"));
    println!("{}", r.run.to_text());
    println!("{}", r.after.to_text());
    assert_sound(&r);
}

#[tokio::test]
async fn a_refused_connection_is_an_error_not_a_panic() {
    // Port 1 on loopback: nothing listens there.
    let err = tpcc::check(&CheckConfig {
        url: "postgresql://postgres@127.0.0.1:1/postgres".into(),
        warehouses: None,
    })
    .await
    .expect_err("nothing listens on port 1");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}
