//! Meridian's SQL layer: PostgreSQL-dialect SQL over the keyspace of [`meridian_tablet::KvClient`].
//!
//! ```text
//!  Session::execute(sql)
//!     │ parse.rs      sqlparser (PostgreSQL dialect) -> statements; syntax errors are 42601
//!     │ session.rs    SET/SHOW/transaction commands; everything else, per attempt:
//!     │                 read_ts -> catalog.rs: descriptors of the named tables (point gets)
//!     │ plan/         bind names and types, fold constants, extract primary-key ranges
//!     │ exec/         scan (point gets / paged range scans) -> filter -> aggregate ->
//!     │               project -> distinct -> sort -> limit; DML builds one conditional write
//!     ▼
//!  KvClient: read_ts / get / scan / write(read_ts, read_spans, conditions, mutations)
//! ```
//!
//! Read first: `api.rs` (the public types: [`Datum`], [`StatementResult`], [`SqlError`]), then
//! `session.rs` (statement flow and retries), `plan/select.rs` and `plan/bind.rs` (binding),
//! `plan/keyrange.rs` (what a WHERE clause turns into), `exec/dml.rs` (how writes stay
//! serializable), and `keys.rs` / `catalog.rs` (the layout below).
//!
//! # Keys
//!
//! ```text
//!  /sys/catalog/next_table_id                          -> next table id (u64, big-endian)
//!  /sys/catalog/tables/<name>                          -> TableDescriptor (protobuf)
//!  /t/<table_id>/<index_id = 1>/<pk columns...>        -> non-key columns, in order
//! ```
//!
//! System keys sort before table data (`/sys` < `/t`). After `/t/`, ids and key columns use the
//! ascending memcomparable encoding of `meridian_storage::keycode` (the `/` between them are
//! notation, not bytes), so a primary-key range is a byte range. Row values are the keycode
//! encodings of the non-key columns concatenated; a value shorter than the column list reads
//! the missing trailing columns as NULL. Tables without a primary key get a hidden `rowid`
//! INT8 key filled from the read timestamp and a per-session counter.
//!
//! # Consistency
//!
//! Every statement is its own transaction (autocommit). It reads at one timestamp; a write
//! carries that timestamp and the spans the statement read (the table's descriptor key, and
//! the ranges or points UPDATE/DELETE scanned), plus NotExists conditions on new primary keys.
//! The tablet commits it only if nothing read changed since, so statements are serializable;
//! on a write conflict the session re-runs the whole statement, up to 10 times, then reports
//! 40001. SQLSTATEs for tablet errors are chosen in `error.rs`.
//!
//! # Supported
//!
//! * `CREATE TABLE [IF NOT EXISTS]` with BOOL, INT2/SMALLINT, INT4/INT/INTEGER, INT8/BIGINT,
//!   FLOAT/REAL/DOUBLE PRECISION (all float8), TEXT/VARCHAR(n)/STRING, TIMESTAMP; PRIMARY KEY
//!   (column or composite), NOT NULL, NULL, DEFAULT (constant expressions); `DROP TABLE [IF
//!   EXISTS] a, b`.
//! * `INSERT ... VALUES | SELECT` with DEFAULT and column lists, `UPDATE`, `DELETE`, each with
//!   `RETURNING` (returned as a row set, so the wire command tag is `SELECT n`).
//! * `SELECT` over one table or none: expressions (arithmetic with overflow checks, `||`,
//!   comparisons, AND/OR/NOT with three-valued logic, `IS [NOT] NULL/TRUE/FALSE/DISTINCT FROM`,
//!   IN lists, BETWEEN, `[NOT] [I]LIKE`, CASE, casts), `count/sum/min/max/avg` with DISTINCT, GROUP
//!   BY, HAVING, DISTINCT, ORDER BY (expressions, positions, aliases, NULLS FIRST/LAST),
//!   LIMIT/OFFSET; functions `version()`, `current_database()`, `current_user`,
//!   `current_schema`, `lower`, `upper`, `length`, `abs`, `coalesce`, `nullif`.
//! * `EXPLAIN` (plan text showing point lookups and key ranges), `SHOW TABLES`, `SET`/`SHOW`/
//!   `RESET` of session variables; `COMMIT`/`ROLLBACK` outside a transaction are no-ops.
//!
//! # Testing
//!
//! The `testing` feature exposes `testing::MemKv`, an in-memory `KvClient`
//! with the tablet's write semantics (and failure injection), for tests of this and higher
//! layers. The sqllogictest files under the repository's `sql/` run against a single-replica
//! tablet (`tests/slt.rs`).
//!
//! # Not yet
//!
//! Multi-statement transactions (`BEGIN` fails with 0A000), joins, subqueries, UNION, WITH,
//! secondary indexes and UNIQUE/CHECK/FOREIGN KEY constraints, ALTER TABLE, NUMERIC (decimal
//! literals are float8, `avg` returns float8 and `sum(int8)` int8 instead of numeric), DATE,
//! TIMESTAMPTZ and INTERVAL, prepared-statement parameters, collations other than byte order
//! (C). Execution is row-at-a-time over vectors of rows on the gateway; Arrow record batches
//! and distributed execution come with the SQL engine work. `-0` is stored as `0`.

mod api;
mod catalog;
mod datum_text;
mod error;
mod exec;
mod expr;
mod keys;
mod parse;
mod plan;
mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod types;
mod vars;

pub use api::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
pub use session::{Engine, Session};

#[cfg(test)]
mod tests;
