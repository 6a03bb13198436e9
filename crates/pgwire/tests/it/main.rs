//! Integration tests of the PostgreSQL wire protocol server against a fake SQL backend.

mod cancel;
mod decoder;
mod extended;
mod fake;
mod psql;
mod raw;
mod robustness;
mod secure;
mod shell;
mod shutdown;
mod simple;
