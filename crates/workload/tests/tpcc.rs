//! TPC-C end to end: `init` with one warehouse, `check`, a short `run` without keying or think
//! times, and `check` again, against a Meridian node started in this process (always run),
//! and against any PostgreSQL-wire database named by `MERIDIAN_TPCC_PG_URL` (an ignored test,
//! run on demand, e.g. against a private PostgreSQL 15 started as in `benches/tpcc.sh`):
//!
//! ```sh
//! MERIDIAN_TPCC_PG_URL=postgresql://postgres@127.0.0.1:55432/postgres \
//!     cargo test -p meridian-workload --test tpcc -- --ignored --nocapture
//! ```

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
async fn tpcc_init_run_check_on_an_in_process_meridian_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = meridian_server::Node::start(meridian_server::NodeConfig::new(dir.path()))
        .await
        .unwrap();
    let url = node.postgres_url();
    // A test build is slow, so the rare transactions are weighed up for every kind to complete
    // within the run; the standard mix runs in the benchmark (benches/tpcc.sh).
    let mut config = tpcc::RunConfig::new(&url, 1, Duration::from_secs(15));
    config.mix = "newOrder=30,payment=30,orderStatus=15,delivery=10,stockLevel=15"
        .parse()
        .unwrap();
    let r = tpcc::init_run_check_with(config)
        .await
        .unwrap_or_else(|e| panic!("TPC-C against Meridian at {url}: {e}"));
    println!("{}", r.run.to_text());
    println!("{}", r.after.to_text());
    assert_sound(&r);

    // Connections go round-robin over every URL given: an unreachable second one fails the
    // run before it starts.
    let mut spread = tpcc::RunConfig::new(&url, 1, Duration::from_secs(1));
    spread.more_urls = vec!["postgresql://root@127.0.0.1:1/defaultdb".into()];
    let err = tpcc::run(&spread)
        .await
        .expect_err("the second URL is connected to");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a database: set MERIDIAN_TPCC_PG_URL and run with --ignored"]
async fn tpcc_init_run_check_on_the_database_at_meridian_tpcc_pg_url() {
    let url = std::env::var("MERIDIAN_TPCC_PG_URL")
        .expect("MERIDIAN_TPCC_PG_URL names the database to run against");
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
