//! Meridian's PostgreSQL wire protocol server.
//!
//! `meridian-pgwire` lets any PostgreSQL client (psql, libpq, JDBC, tokio-postgres, ...) talk to a
//! Meridian node. It is built on the [`pgwire`] crate: pgwire decodes and encodes the protocol
//! messages, this crate supplies the handlers that turn them into calls on a [`SqlBackend`] (the
//! SQL engine, or a fake in tests) and turn the backend's [`StatementResult`]s and [`SqlError`]s
//! back into protocol messages.
//!
//! ```text
//!  client ──TCP──▶ serve() ──one task per connection──▶ pgwire::tokio::process_socket
//!                                                          │
//!                  startup.rs  (any user, ParameterStatus) │  Startup
//!                  simple.rs   (Query)                     ├─▶ SqlBackend::execute
//!                  extended.rs (Parse/Bind/Describe/Execute)┘    SqlBackend::describe
//!                  encode.rs   (rows → RowDescription/DataRow), error.rs (SqlError → ErrorResponse)
//! ```
//!
//! Read first: `backend.rs` ([`SqlBackend`], the trait the server runs on), then `server.rs`
//! ([`serve`]), then `simple.rs` and `extended.rs`.
//!
//! # What works
//! - Startup without TLS or passwords: SSL and GSS encryption requests are refused (`N`), every
//!   user and database is accepted and handed to [`SqlBackend::open_session`]. The usual
//!   `ParameterStatus` values are reported (`server_version` from [`PgServerConfig`],
//!   `server_encoding`/`client_encoding` UTF8, `DateStyle` `ISO, MDY`, `TimeZone` UTC, ...).
//! - The simple query protocol, including several statements per query string, empty queries,
//!   NULLs, and errors carrying SQLSTATE, detail, hint and position.
//! - The extended query protocol for statements **without parameters**: Parse, Bind, Describe,
//!   Execute (with row limits and `PortalSuspended`), Close, Flush and Sync, with text or binary
//!   result formats. Describe of a prepared *statement* needs [`SqlBackend::describe`]; a backend
//!   that cannot describe answers it with SQLSTATE `0A000`. Describe of a *portal* uses
//!   `describe` when available and otherwise runs the portal at that point and keeps its result
//!   for the following Execute (the statement runs exactly once either way).
//! - Graceful shutdown: [`serve`] stops accepting, lets running statements finish within
//!   [`PgServerConfig::shutdown_grace`], then closes every connection.
//!
//! # Not supported yet
//! - TLS and password authentication ([`PgServerConfig::insecure`] must be `true`).
//! - Statements with parameters (`$1`) in the extended protocol: rejected at Parse with
//!   SQLSTATE `0A000` "extended query protocol with parameters is not supported yet".
//! - Transactions: ReadyForQuery always reports idle (`I`).
//! - COPY, cancel requests (accepted and ignored), LISTEN/NOTIFY.
//! - A row-returning statement always completes with the tag `SELECT n` (the backend's
//!   [`StatementResult::Query`] carries no tag, so `INSERT ... RETURNING` also says `SELECT n`).

mod backend;
mod config;
mod encode;
mod error;
mod extended;
mod server;
mod session;
mod shape;
mod simple;
mod startup;
mod state;

pub use backend::SqlBackend;
pub use config::PgServerConfig;
pub use error::{Error, Result};
pub use meridian_sql::{ColumnInfo, Datum, SqlError, SqlType, StatementResult};
pub use server::serve;
