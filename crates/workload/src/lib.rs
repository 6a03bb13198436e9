//! `meridian workload`: benchmark workloads for Meridian, or any PostgreSQL-wire database.
//! Today that is TPC-C (`meridian workload tpcc init|run|check`).
//!
//! ```text
//!  cli.rs (clap) ──▶ tpcc::init ── schema.rs (sql/tpcc/schema.sql) ── load.rs (multi-row INSERTs)
//!                ──▶ tpcc::run ─── run.rs: terminals ── mix.rs ── txn/*.rs (prepared statements,
//!                │                   │                              BEGIN ... COMMIT, retries)
//!                │                   └── stats.rs (hdrhistogram) ──▶ report.rs, plot.rs (SVG)
//!                ──▶ tpcc::check ── check.rs (clause 3.3.2 as SQL)
//!  rand.rs: NURand, last names, a-/n-strings on a seeded generator; pgtypes.rs: NUMERIC codec
//! ```
//!
//! Read first: [`tpcc::run::run`] and `tpcc/txn/mod.rs` (how a transaction runs), then one
//! transaction (`tpcc/txn/new_order.rs`), then `tpcc/load.rs`.
//!
//! [`tpcc::init`], [`tpcc::run`] and [`tpcc::check`] are library functions taking a
//! configuration with a URL and returning a report, so tests run them in-process against any
//! database. The tool speaks to the database only through `tokio-postgres`, with ordinary
//! PostgreSQL SQL: no COPY, no foreign keys, no stored procedures, and one `FOR UPDATE`
//! (New-Order reads its district row with it, so New-Orders of a district queue on the row
//! instead of failing serialization). The transactions are correct only at serializable
//! isolation, which each connection asks for
//! with `SET default_transaction_isolation = 'serializable'` (a database that rejects the
//! setting is taken to be serializable anyway).
//!
//! Every random choice comes from a generator seeded by `--seed` and a per-unit stream, so a
//! load is reproducible and a run's inputs are too (their interleaving is not).

// A benchmark driver measures real response times against a real database and stamps rows
// with the real date, so it reads the system clocks directly; it is no protocol code that a
// simulation would replace.
#![allow(
    clippy::disallowed_methods,
    reason = "the workload measures wall-clock response times of a real database"
)]

pub mod cli;
pub mod conn;
pub mod error;
pub mod kv;
pub mod pgtypes;
pub mod plot;
pub mod rand;
pub mod report;
pub mod stats;
pub mod tpcc;

pub use cli::WorkloadCommand;
pub use error::{Error, Result};
pub use report::RunReport;
