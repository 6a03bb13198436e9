//! The report of a run: tpmC, efficiency, and per-transaction counts and latencies, as text and
//! as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};

/// The most New-Orders per minute one warehouse can produce with keying and think times on
/// (clause 5.2.5 gives ten terminals per warehouse; 12.86 is the usual figure).
pub const MAX_TPMC_PER_WAREHOUSE: f64 = 12.86;

/// The per-warehouse maximum CockroachDB's `workload tpcc` divides by.
pub const MAX_TPMC_PER_WAREHOUSE_CRDB: f64 = 12.605;

/// `tpmc` as a percentage of what `warehouses` can produce at `per_warehouse` each.
pub fn efficiency(tpmc: f64, warehouses: u32, per_warehouse: f64) -> f64 {
    if warehouses == 0 {
        return 0.0;
    }
    tpmc / (per_warehouse * f64::from(warehouses)) * 100.0
}

/// One transaction kind's results over the measured interval.
#[derive(Clone, Debug, Serialize)]
pub struct TxnReport {
    /// `newOrder`, `payment`, ...
    pub name: String,
    /// Completed transactions (committed, or rolled back on purpose).
    pub count: u64,
    /// Transactions that failed (after retries), including `commit_unknown`.
    pub errors: u64,
    /// Retries after serialization failures or deadlocks.
    pub retries: u64,
    /// Rollbacks on purpose (New-Order's unused item).
    pub rollbacks: u64,
    /// Failures with SQLSTATE 40003 (statement completion unknown).
    pub commit_unknown: u64,
    /// Mean response time.
    pub avg_ms: f64,
    /// Percentiles of the response time.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Longest response time.
    pub max_ms: f64,
    /// The specification's limit on the 90th percentile.
    pub p90_limit_ms: f64,
    /// Whether the 90th percentile is within the limit.
    pub p90_pass: bool,
}

/// One second of the run.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesPoint {
    /// Seconds since the start (ramp included).
    pub elapsed_secs: f64,
    /// New-Orders per minute in that second.
    pub tpmc: f64,
    /// Transactions of all kinds per second.
    pub txn_per_sec: f64,
    /// 90th percentile of New-Order response times in that second.
    pub new_order_p90_ms: f64,
    /// 90th percentile of all response times in that second.
    pub all_p90_ms: f64,
}

/// The result of `tpcc run`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// Warehouses the terminals used.
    pub warehouses: u32,
    /// Measured seconds (after the ramp).
    pub duration_secs: f64,
    /// Ramp seconds, not measured.
    pub ramp_secs: f64,
    /// Terminals.
    pub workers: usize,
    /// Connections they shared.
    pub conns: usize,
    /// Scale of keying and think times (0 = none, 1 = the specification's).
    pub wait: f64,
    /// Seed of the inputs.
    pub seed: u64,
    /// New-Orders per minute over the measured interval.
    pub tpmc: f64,
    /// tpmC / (12.86 × warehouses), in percent.
    pub efficiency_pct: f64,
    /// tpmC / (12.605 × warehouses), in percent.
    pub efficiency_crdb_pct: f64,
    /// Per-kind results, in the order newOrder, payment, orderStatus, delivery, stockLevel.
    pub txns: Vec<TxnReport>,
    /// Every 90th percentile within its limit.
    pub passed: bool,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
    /// Throughput and latency second by second.
    pub series: Vec<SeriesPoint>,
}

impl RunReport {
    /// Fills in the figures derived from the per-kind results.
    pub fn derive(&mut self) {
        self.efficiency_pct = efficiency(self.tpmc, self.warehouses, MAX_TPMC_PER_WAREHOUSE);
        self.efficiency_crdb_pct =
            efficiency(self.tpmc, self.warehouses, MAX_TPMC_PER_WAREHOUSE_CRDB);
        self.passed = self.txns.iter().all(|t| t.p90_pass);
    }

    /// Errors of all kinds.
    pub fn errors(&self) -> u64 {
        self.txns.iter().map(|t| t.errors).sum()
    }

    /// Retries of all kinds.
    pub fn retries(&self) -> u64 {
        self.txns.iter().map(|t| t.retries).sum()
    }

    /// The report as the table printed at the end of a run.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let wait = match self.wait {
            0.0 => "off".to_string(),
            1.0 => "on".to_string(),
            w => format!("×{w}"),
        };
        let _ = writeln!(
            s,
            "TPC-C: {} warehouse(s), {:.0}s measured after a {:.0}s ramp, {} terminals on {} \
             connections, keying/think time {wait}, seed {}",
            self.warehouses,
            self.duration_secs,
            self.ramp_secs,
            self.workers,
            self.conns,
            self.seed
        );
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  90th limit",
            "transaction",
            "count",
            "errors",
            "retries",
            "avg(ms)",
            "p50(ms)",
            "p90(ms)",
            "p95(ms)",
            "p99(ms)",
            "max(ms)",
            "rollbacks"
        );
        for t in &self.txns {
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>7} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9}  {} ({:.0}s)",
                t.name,
                t.count,
                t.errors,
                t.retries,
                t.avg_ms,
                t.p50_ms,
                t.p90_ms,
                t.p95_ms,
                t.p99_ms,
                t.max_ms,
                t.rollbacks,
                if t.p90_pass { "PASS" } else { "FAIL" },
                t.p90_limit_ms / 1000.0
            );
        }
        let _ = writeln!(
            s,
            "tpmC {:.1}  efficiency {:.1}% (of 12.86 tpmC per warehouse), {:.1}% (of 12.605)",
            self.tpmc, self.efficiency_pct, self.efficiency_crdb_pct
        );
        let commit_unknown: u64 = self.txns.iter().map(|t| t.commit_unknown).sum();
        let _ = writeln!(
            s,
            "errors {} (of which {} statement completion unknown, 40003)  retries {}",
            self.errors(),
            commit_unknown,
            self.retries()
        );
        for e in &self.error_samples {
            let _ = writeln!(s, "  error: {e}");
        }
        let failed = self.errors();
        let _ = writeln!(
            s,
            "result: {}{}",
            if self.passed {
                "PASS (every 90th percentile response time within its limit)"
            } else {
                "FAIL (a 90th percentile response time over its limit, or no transaction of a kind completed)"
            },
            if failed > 0 {
                format!(", but {failed} transaction(s) failed")
            } else {
                String::new()
            }
        );
        s
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &std::path::Path) -> Result<()> {
        let out = |message: String| Error::Output {
            path: path.display().to_string(),
            message,
        };
        let json = serde_json::to_string_pretty(self).map_err(|e| out(e.to_string()))?;
        std::fs::write(path, json + "\n").map_err(|e| out(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_is_tpmc_over_the_warehouses_maximum() {
        assert!((efficiency(12.86, 1, MAX_TPMC_PER_WAREHOUSE) - 100.0).abs() < 1e-9);
        assert!((efficiency(1286.0, 100, MAX_TPMC_PER_WAREHOUSE) - 100.0).abs() < 1e-9);
        assert!((efficiency(643.0, 100, MAX_TPMC_PER_WAREHOUSE) - 50.0).abs() < 1e-9);
        assert!((efficiency(12.605, 1, MAX_TPMC_PER_WAREHOUSE_CRDB) - 100.0).abs() < 1e-9);
        // Without think time one warehouse far exceeds its nominal maximum.
        assert!((efficiency(25_720.0, 1, MAX_TPMC_PER_WAREHOUSE) - 200_000.0).abs() < 1e-6);
        assert_eq!(efficiency(100.0, 0, MAX_TPMC_PER_WAREHOUSE), 0.0);
    }

    #[test]
    fn derive_fills_efficiency_and_verdict() {
        let txn = |name: &str, p90_pass| TxnReport {
            name: name.into(),
            count: 1,
            errors: 0,
            retries: 0,
            rollbacks: 0,
            commit_unknown: 0,
            avg_ms: 1.0,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p95_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
            p90_limit_ms: 5000.0,
            p90_pass,
        };
        let mut r = RunReport {
            warehouses: 10,
            tpmc: 128.6,
            txns: vec![txn("newOrder", true), txn("payment", true)],
            ..RunReport::default()
        };
        r.derive();
        assert!((r.efficiency_pct - 100.0).abs() < 1e-9);
        assert!(r.passed);
        r.txns[1].p90_pass = false;
        r.derive();
        assert!(!r.passed);
        assert!(r.to_text().contains("FAIL"));
    }
}
