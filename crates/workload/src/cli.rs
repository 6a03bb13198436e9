//! The `meridian workload` command line: flags, their parsing, and what each subcommand
//! prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::tpcc::{self, CheckConfig, InitConfig, Mix, RunConfig};

/// Where the workload connects unless told otherwise: a local Meridian node.
const DEFAULT_URL: &str = "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable";

/// `meridian workload ...`.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Single-key puts as fast as the workers can issue them, against a PostgreSQL-wire
    /// database or an etcd cluster (`--target etcd://HOST:PORT`), for replicated-write
    /// throughput and latency.
    Kv(KvArgs),
    /// The TPC-C order-entry benchmark.
    #[command(subcommand)]
    Tpcc(TpccCommand),
}

/// `meridian workload tpcc ...`.
/// Flags of `meridian workload kv`.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// Where to put keys: `postgresql://...` or `etcd://HOST:PORT`; repeat (or separate with
    /// commas) to spread the workers over several nodes.
    #[arg(long, default_value = DEFAULT_URL, value_delimiter = ',')]
    target: Vec<String>,
    /// How long to run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent workers, one connection each.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Bytes per value.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    value_size: u32,
    /// Keys are drawn uniformly from this many.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Seed of the key and value generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TpccCommand {
    /// Drop and recreate the TPC-C tables and load them (an interrupted load is simply rerun).
    Init(InitArgs),
    /// Run the transaction mix for a while and report tpmC and response times.
    Run(RunArgs),
    /// Check the consistency conditions of clause 3.3.2; exits with 1 if any is violated.
    Check(CheckArgs),
}

/// Flags of `tpcc init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Connection URL of any PostgreSQL-wire database.
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// Warehouses to load (about 50 MB each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    warehouses: u32,
    /// Parallel loading connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Rows per INSERT statement.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,
    /// Seed of the generated data (use the same one for `run`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Flags of `tpcc run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Connection URL of any PostgreSQL-wire database; give it again for each further node of
    /// a cluster, and the connections are spread round-robin over them.
    #[arg(long = "url", default_value = DEFAULT_URL, action = clap::ArgAction::Append)]
    urls: Vec<String>,
    /// Warehouses to use (at most the number loaded).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    warehouses: u32,
    /// Measured time, e.g. 60s, 5m, 1h30m (a bare number is seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Time to run before measuring.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp: Duration,
    /// Terminals [default: 10 per warehouse].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    workers: Option<u32>,
    /// Connections the terminals share [default: one per terminal].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    conns: Option<u32>,
    /// Keying and think times: true (the specification's), false (none), or a fraction that
    /// scales them.
    #[arg(long, default_value = "true", value_name = "true|false|FRACTION", value_parser = parse_wait)]
    wait: f64,
    /// Transaction weights; kinds not named get none.
    #[arg(
        long,
        default_value = "newOrder=45,payment=43,orderStatus=4,delivery=4,stockLevel=4"
    )]
    mix: Mix,
    /// Write the report as JSON to FILE (and the plot beside it as FILE's name with .svg,
    /// unless --plot says otherwise).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an SVG plot of throughput and 90th percentile latency over the run.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print a live line every SECS seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    report_every: u64,
    /// Seed of the inputs (use the one `init` used).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Flags of `tpcc check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Connection URL of any PostgreSQL-wire database.
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// Check warehouses 1..=N only [default: all loaded].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    warehouses: Option<u32>,
}

/// Runs a `meridian workload` command; the result is the process exit code.
pub async fn run(cmd: WorkloadCommand) -> anyhow::Result<i32> {
    match cmd {
        WorkloadCommand::Kv(a) => kv(a).await,
        WorkloadCommand::Tpcc(TpccCommand::Init(a)) => init(a).await,
        WorkloadCommand::Tpcc(TpccCommand::Run(a)) => run_tpcc(a).await,
        WorkloadCommand::Tpcc(TpccCommand::Check(a)) => check(a).await,
    }
}

async fn init(a: InitArgs) -> anyhow::Result<i32> {
    let cfg = InitConfig {
        url: a.url,
        warehouses: a.warehouses,
        concurrency: a.concurrency as usize,
        batch_size: a.batch_size as usize,
        seed: a.seed,
        progress: true,
    };
    eprintln!(
        "loading TPC-C: {} warehouse(s), {} connections, {} rows per INSERT",
        cfg.warehouses, cfg.concurrency, cfg.batch_size
    );
    let r = tpcc::init(&cfg).await?;
    let secs = r.elapsed.as_secs_f64();
    println!(
        "loaded {} rows in {secs:.1}s ({:.0} rows/s)",
        r.rows,
        r.rows as f64 / secs.max(1e-9)
    );
    Ok(0)
}

async fn run_tpcc(a: RunArgs) -> anyhow::Result<i32> {
    let workers = a.workers.map_or(10 * a.warehouses as usize, |w| w as usize);
    let mut urls = a.urls.into_iter();
    let cfg = RunConfig {
        url: urls.next().unwrap_or_else(|| DEFAULT_URL.to_string()),
        more_urls: urls.collect(),
        warehouses: a.warehouses,
        duration: a.duration,
        ramp: a.ramp,
        workers,
        conns: a.conns.map_or(workers, |c| c as usize),
        wait: a.wait,
        mix: a.mix,
        seed: a.seed,
        report_every: (a.report_every > 0).then(|| Duration::from_secs(a.report_every)),
    };
    let report = tpcc::run(&cfg).await?;
    print!("{}", report.to_text());
    if let Some(json) = &a.json {
        report.write_json(json)?;
        println!("report: {}", json.display());
    }
    if let Some(svg) = a.plot.clone().or_else(|| a.json.as_deref().map(svg_beside)) {
        crate::plot::write_svg(&report, &svg)?;
        println!("plot:   {}", svg.display());
    }
    let completed: u64 = report.txns.iter().map(|t| t.count).sum();
    Ok(if completed == 0 { 1 } else { 0 })
}

async fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let report = tpcc::check(&CheckConfig {
        url: a.url,
        warehouses: a.warehouses,
    })
    .await?;
    print!("{}", report.to_text());
    Ok(if report.passed() { 0 } else { 1 })
}

/// `report.json` → `report.svg`.
fn svg_beside(json: &Path) -> PathBuf {
    json.with_extension("svg")
}

/// `true` is 1 (the specification's times), `false` is 0, a number scales the times.
fn parse_wait(s: &str) -> Result<f64, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Ok(1.0),
        "false" | "off" | "no" => Ok(0.0),
        other => match other.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => Ok(f),
            _ => Err(format!(
                "expected true, false or a non-negative fraction, got {s:?}"
            )),
        },
    }
}

/// `90`, `90s`, `500ms`, `5m`, `1h30m`.
async fn kv(a: KvArgs) -> anyhow::Result<i32> {
    let report = crate::kv::run(crate::kv::KvConfig {
        targets: a.target,
        duration: a.duration,
        concurrency: a.concurrency as usize,
        value_size: a.value_size as usize,
        keys: a.keys,
        seed: a.seed,
    })
    .await?;
    println!(
        "kv: {} puts in {:?} ({} errors): {:.0} puts/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms",
        report.ops,
        a.duration,
        report.errors,
        report.ops_per_sec,
        report.p50_ms,
        report.p90_ms,
        report.p99_ms,
        report.max_ms
    );
    if let Some(path) = a.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(0)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 90s, 5m or 1h30m, got {s:?}");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn waits() {
        assert_eq!(parse_wait("true"), Ok(1.0));
        assert_eq!(parse_wait("false"), Ok(0.0));
        assert_eq!(parse_wait("0.1"), Ok(0.1));
        assert!(parse_wait("-1").is_err());
        assert!(parse_wait("sometimes").is_err());
    }

    #[test]
    fn svg_goes_beside_the_json() {
        assert_eq!(
            svg_beside(Path::new("/tmp/r/run.json")),
            PathBuf::from("/tmp/r/run.svg")
        );
    }
}
