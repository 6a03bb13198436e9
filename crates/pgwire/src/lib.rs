//! Meridian's PostgreSQL wire protocol server.
//!
//! `meridian-pgwire` lets any PostgreSQL client (psql, libpq, JDBC, tokio-postgres, ...) talk to a
//! Meridian node. It is built on the [`pgwire`] crate: pgwire decodes and encodes the protocol
//! messages, this crate supplies the handlers that turn them into calls on a [`SqlBackend`] (the
//! SQL engine, or a fake in tests) and turn the backend's [`StatementResult`]s and [`SqlError`]s
//! back into protocol messages.
//!
//! ```text
//!  client ──TCP──▶ serve() ──one task per connection──▶ conn.rs: SSLRequest → TLS (rustls)
//!                                                        │ frames.rs + layout.rs: size, version,
//!                                                        │   layout and UTF-8 checks
//!                                                        ▼ pgwire's decoder
//!                  startup.rs  (TLS requirement, trust or SCRAM via auth.rs) Startup
//!                  simple.rs   (Query)                     ─▶ SqlBackend::execute_cancellable
//!                  extended.rs (Parse/Bind/Describe/Execute) ─▶ SqlBackend::prepare,
//!                  decode.rs   (Bind parameters → Datums)       execute_prepared
//!                  cancel.rs   (CancelRequest → the running statement's CancellationToken)
//!                  encode.rs   (rows → RowDescription/DataRow), error.rs (SqlError → ErrorResponse)
//! ```
//!
//! Read first: `backend.rs` ([`SqlBackend`], the trait the server runs on), then `server.rs`
//! ([`serve`]) and `conn.rs` (one connection), then `startup.rs`, `simple.rs` and `extended.rs`.
//!
//! # What works
//! - Startup. With [`PgServerConfig::tls`] set, an SSLRequest is answered `S` and the
//!   connection continues over TLS (a direct TLS handshake with ALPN `postgresql` works too);
//!   without it, `N`. GSS encryption is refused. Insecure mode ([`PgServerConfig::insecure`])
//!   trusts every user; secure mode refuses connections without TLS (FATAL `28000`) and
//!   authenticates with SCRAM-SHA-256 against a [`UserStore`] ([`CatalogUsers`] on a node;
//!   no channel binding), or with a client certificate signed by the server's CA whose common
//!   name is the user (when the TLS configuration asks for one). A wrong
//!   password, an unknown user and a malformed SCRAM message all end in FATAL `28P01`
//!   `password authentication failed for user "..."` and a closed connection. The session is
//!   opened with [`SqlBackend::open_session`]; the usual `ParameterStatus` values are reported
//!   (`server_version` from [`PgServerConfig`], `server_encoding`/`client_encoding` UTF8,
//!   `DateStyle` `ISO, MDY`, `TimeZone` UTC, ...).
//! - The simple query protocol, including several statements per query string, empty queries,
//!   NULLs, and errors carrying SQLSTATE, detail, hint and position.
//! - The extended query protocol: Parse, Bind, Describe, Execute (with row limits and
//!   `PortalSuspended`), Close, Flush and Sync, with text or binary parameter and result
//!   formats. Parse prepares the statement with [`SqlBackend::prepare`], which reports the
//!   parameter types (declared by the client, or inferred by the backend from their use) and
//!   result columns, so Describe never runs anything; Bind decodes every parameter value
//!   (`decode.rs`: PostgreSQL's binary layouts of bool, int2/4/8, float4/8, text, varchar,
//!   numeric, date, timestamp[tz], interval, uuid, bytea; text values go to the backend as text)
//!   and Execute runs [`SqlBackend::execute_prepared`]. A backend that does not prepare gets the
//!   older path: statements without parameters only, Describe through
//!   [`SqlBackend::describe`] or by running the portal early (it runs exactly once either way).
//! - COPY (`copy.rs`): `FROM STDIN` collects the client's CopyData (up to 1 GiB per statement)
//!   and hands it to [`SqlBackend::copy_in`] at CopyDone; `TO STDOUT` streams the lines the
//!   backend formatted. Both work from the simple and the extended protocol (psql's `\copy`,
//!   tokio-postgres `copy_in`/`copy_out`, pgbench's loader).
//! - ReadyForQuery carries the session's transaction status ([`SqlBackend::transaction_status`]:
//!   `I`, `T`, or `E` in a failed block), after simple queries and at Sync.
//! - Cancel requests: the right (pid, secret key) cancels the [`CancellationToken`] passed to
//!   [`SqlBackend::execute_cancellable`] for the statement running on that connection; the
//!   default implementation abandons `execute` and answers `57014`.
//! - Robustness: messages longer than [`PgServerConfig::max_message_size`] (64 MiB by
//!   default), protocol versions other than 3.x, malformed messages and invalid UTF-8 (in
//!   startup parameters and every string of a message) are answered with a FATAL error
//!   (`08P01`, `0A000`, `22021`) and the connection is closed; other connections are not
//!   affected. [`fuzzing::decode_frontend`] is the decoder's fuzzing entry point, run by the
//!   bounded randomized test `tests/it/decoder.rs` and by the cargo-fuzz target in `fuzz/`
//!   (`cd crates/pgwire/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode_frontend --
//!   -max_total_time=60`).
//! - Graceful shutdown: [`serve`] stops accepting, lets running statements finish within
//!   [`PgServerConfig::shutdown_grace`], then closes every connection.
//!
//! # Not supported yet
//! - COPY in binary format, LISTEN/NOTIFY, SCRAM channel binding (`SCRAM-SHA-256-PLUS`).
//! - A row-returning statement always completes with the tag `SELECT n` (the backend's
//!   [`StatementResult::Query`] carries no tag, so `INSERT ... RETURNING` also says `SELECT n`).

mod auth;
mod backend;
mod cancel;
mod config;
mod conn;
mod copy;
mod decode;
mod encode;
mod error;
mod extended;
mod frames;
pub mod fuzzing;
mod layout;
mod server;
mod session;
mod simple;
mod startup;
mod state;

pub use auth::{CatalogUsers, StaticUsers, UserStore};
pub use backend::{SqlBackend, StatementInfo, query_canceled};
pub use config::{DEFAULT_MAX_MESSAGE_SIZE, PgServerConfig};
pub use error::{Error, Result};
/// The certificates and credentials the secure-mode configuration is built from.
pub use meridian_security as security;
pub use meridian_security::ScramCredentials;
pub use meridian_sql::{
    ColumnInfo, CopyFormat, CopyIn, Datum, SqlError, SqlType, StatementResult, TxnStatus,
};
pub use server::serve;
pub use tokio_util::sync::CancellationToken;
