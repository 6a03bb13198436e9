//! TPC-C end to end against a real PostgreSQL-wire database: `init` with one warehouse, a
//! 10-second `run` without think times, and `check` before and after the run.
//!
//! SKIPPED WHEN `MERIDIAN_TPCC_PG_URL` IS UNSET (and only then): the test needs a database to
//! talk to, e.g. a private PostgreSQL 15 started as in `benches/tpcc.sh`:
//!
//! ```sh
//! MERIDIAN_TPCC_PG_URL=postgresql://postgres@127.0.0.1:55432/postgres \
//!     cargo test -p meridian-workload --test tpcc -- --nocapture
//! ```
//!
//! The same URL variable can point at a Meridian node; [`init_run_check`] is the whole test
//! and takes only a URL, so a test that starts a node in-process can call the library the
//! same way.

use std::time::Duration;

use meridian_workload::tpcc::{self, CheckConfig, InitConfig, RunConfig};

/// Loads one warehouse, checks it, runs the standard mix for `secs` seconds with no keying
/// or think time, and checks again.
async fn init_run_check(url: &str, secs: u64) {
    let loaded = tpcc::init(&InitConfig::new(url, 1))
        .await
        .unwrap_or_else(|e| panic!("init against {url}: {e}"));
    // Order lines vary around ten per order; everything else is fixed by the specification.
    let fixed = 100_000 + 1 + 100_000 + 10 * (1 + 3000 * 3 + 900);
    assert!(
        loaded.rows > fixed + 10 * 3000 * 5 && loaded.rows < fixed + 10 * 3000 * 15,
        "loaded {} rows",
        loaded.rows
    );

    let check = CheckConfig {
        url: url.to_string(),
        warehouses: None,
    };
    let before = tpcc::check(&check).await.expect("check after init");
    assert!(before.passed(), "after init:\n{}", before.to_text());

    let mut cfg = RunConfig::new(url, 1, Duration::from_secs(secs));
    cfg.seed = 0;
    let report = tpcc::run(&cfg).await.expect("run");
    println!("{}", report.to_text());
    let new_orders = &report.txns[0];
    assert_eq!(new_orders.name, "newOrder");
    assert!(new_orders.count > 0, "no New-Order completed");
    assert!(report.tpmc > 0.0);
    for t in &report.txns {
        assert!(t.count > 0, "no {} completed", t.name);
        assert_eq!(t.errors, 0, "{} failed: {:?}", t.name, report.error_samples);
    }
    assert!(!report.series.is_empty(), "no time series recorded");

    let after = tpcc::check(&check).await.expect("check after run");
    println!("{}", after.to_text());
    assert!(after.passed(), "after the run:\n{}", after.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpcc_init_run_check_skipped_if_meridian_tpcc_pg_url_unset() {
    let Ok(url) = std::env::var("MERIDIAN_TPCC_PG_URL") else {
        eprintln!("skipped: MERIDIAN_TPCC_PG_URL is not set");
        return;
    };
    init_run_check(&url, 10).await;
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
