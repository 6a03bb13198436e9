//! The TPC-C benchmark: schema, population, the five transactions, the driver and the
//! consistency check.

pub mod check;
pub mod load;
pub mod mix;
pub mod run;
pub mod schema;
pub mod smoke;
pub mod txn;

pub use check::{CheckConfig, CheckReport, check};
pub use load::{InitConfig, InitReport, init};
pub use mix::{Mix, TxnKind};
pub use run::{RunConfig, run};
pub use smoke::{SmokeReport, init_run_check, init_run_check_with};

/// Items in the ITEM table, and stock rows per warehouse.
pub const ITEMS: i32 = 100_000;

/// Districts per warehouse.
pub const DISTRICTS_PER_WAREHOUSE: i32 = 10;

/// Customers (and initial orders) per district.
pub const CUSTOMERS_PER_DISTRICT: i32 = 3000;
