//! The whole benchmark in one call, for tests: load, check, run, check again. A test that
//! starts a database in-process (a Meridian node, say) passes its URL here.

use std::time::Duration;

use crate::error::Result;
use crate::report::RunReport;
use crate::tpcc::{CheckConfig, CheckReport, InitConfig, InitReport, RunConfig, check, init, run};

/// What [`init_run_check`] observed.
#[derive(Debug)]
pub struct SmokeReport {
    /// The load.
    pub init: InitReport,
    /// The consistency check right after the load.
    pub before: CheckReport,
    /// The run.
    pub run: RunReport,
    /// The consistency check after the run.
    pub after: CheckReport,
}

/// Loads `warehouses` warehouses at `url`, checks them, runs the standard mix for `duration`
/// with no keying or think time (10 terminals per warehouse, seed 0), and checks again.
/// Errors are those of the tool (no connection, a failed load); the transactions' own errors
/// and the checks' verdicts are in the report for the caller to assert on.
pub async fn init_run_check(url: &str, warehouses: u32, duration: Duration) -> Result<SmokeReport> {
    init_run_check_with(RunConfig::new(url, warehouses, duration)).await
}

/// [`init_run_check`] with the run configured by the caller (a short test may weigh the rare
/// transactions up so that each kind completes).
pub async fn init_run_check_with(run_config: RunConfig) -> Result<SmokeReport> {
    let (url, warehouses) = (run_config.url.as_str(), run_config.warehouses);
    let init = init(&InitConfig::new(url, warehouses)).await?;
    let check_cfg = CheckConfig {
        url: url.to_string(),
        warehouses: Some(warehouses),
    };
    let before = check(&check_cfg).await?;
    let run = run(&run_config).await?;
    let after = check(&check_cfg).await?;
    Ok(SmokeReport {
        init,
        before,
        run,
        after,
    })
}
