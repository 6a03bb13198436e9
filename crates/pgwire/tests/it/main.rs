//! Integration tests of the PostgreSQL wire protocol server against a fake SQL backend.

mod extended;
mod fake;
mod psql;
mod raw;
mod robustness;
mod shell;
mod shutdown;
mod simple;
