//! The five TPC-C transactions. Each file has the transaction's input, generated as its
//! clause says (`generate`), and its body (`execute`) as prepared statements; [`run_once`]
//! wraps a body in BEGIN ... COMMIT.
//!
//! Inputs are generated once per transaction and reused by its retries, as the specification
//! requires. The transactions take no row locks (`FOR UPDATE`): they rely on serializable
//! isolation, and a serialization failure is retried by the caller.

pub mod delivery;
pub mod new_order;
pub mod order_status;
pub mod payment;
pub mod stock_level;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row, Statement};

use crate::conn::Target;
use crate::error::{Result, SqlContext};
use crate::pgtypes::AnyInt;
use crate::rand::TpccRng;
use crate::tpcc::mix::TxnKind;

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// How a transaction ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Committed,
    /// Rolled back on purpose (the 1% of New-Orders with an unused item id).
    RolledBack,
}

/// The fixed part of a terminal's input: its home warehouse and district.
#[derive(Clone, Copy, Debug)]
pub struct Terminal {
    /// Home warehouse.
    pub w_id: i32,
    /// District (Stock-Level's district; the others draw theirs).
    pub d_id: i32,
    /// Warehouses in the database, for remote warehouses.
    pub warehouses: i32,
}

impl Terminal {
    /// A warehouse other than the home one, uniformly (the home one if it is the only one).
    pub fn remote_warehouse(&self, r: &mut TpccRng) -> i32 {
        if self.warehouses <= 1 {
            return self.w_id;
        }
        let w = r.int(1, self.warehouses - 1);
        if w >= self.w_id { w + 1 } else { w }
    }
}

/// How Payment and Order-Status identify a customer (clause 2.5.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerKey {
    /// By id, NURand(1023, 1, 3000).
    Id(i32),
    /// By last name, NURand(255, 0, 999): 60% of the time.
    LastName(String),
}

impl CustomerKey {
    /// 60% by last name, 40% by id.
    pub fn generate(r: &mut TpccRng) -> CustomerKey {
        if r.uniform(1, 100) <= 60 {
            CustomerKey::LastName(r.last_name())
        } else {
            CustomerKey::Id(r.customer_id())
        }
    }
}

/// A generated input of any kind.
#[derive(Clone, Debug)]
pub enum Input {
    /// New-Order.
    NewOrder(new_order::Input),
    /// Payment.
    Payment(payment::Input),
    /// Order-Status.
    OrderStatus(order_status::Input),
    /// Delivery.
    Delivery(delivery::Input),
    /// Stock-Level.
    StockLevel(stock_level::Input),
}

impl Input {
    /// Generates an input of `kind` for a terminal.
    pub fn generate(kind: TxnKind, r: &mut TpccRng, t: &Terminal) -> Input {
        match kind {
            TxnKind::NewOrder => Input::NewOrder(new_order::generate(r, t)),
            TxnKind::Payment => Input::Payment(payment::generate(r, t)),
            TxnKind::OrderStatus => Input::OrderStatus(order_status::generate(r, t)),
            TxnKind::Delivery => Input::Delivery(delivery::generate(r, t)),
            TxnKind::StockLevel => Input::StockLevel(stock_level::generate(r, t)),
        }
    }
}

/// A connection with every statement of the workload prepared on it.
pub struct Session {
    pub(crate) client: Client,
    pub(crate) st: Statements,
}

impl Session {
    /// Connects and prepares the statements.
    pub async fn open(target: &Target) -> Result<Session> {
        let client = target.connect().await?;
        let st = Statements::prepare(&client).await?;
        Ok(Session { client, st })
    }

    /// Whether the connection is gone (so the session must be replaced).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Runs one attempt of a transaction: BEGIN, the body, then COMMIT (or ROLLBACK when the body
/// rolls back on purpose or fails).
pub async fn run_once(s: &Session, input: &Input) -> PgResult<Outcome> {
    s.client.batch_execute("BEGIN").await?;
    let body = match input {
        Input::NewOrder(i) => new_order::execute(s, i).await,
        Input::Payment(i) => payment::execute(s, i).await,
        Input::OrderStatus(i) => order_status::execute(s, i).await,
        Input::Delivery(i) => delivery::execute(s, i).await,
        Input::StockLevel(i) => stock_level::execute(s, i).await,
    };
    match body {
        Ok(Outcome::Committed) => {
            s.client.batch_execute("COMMIT").await?;
            Ok(Outcome::Committed)
        }
        Ok(Outcome::RolledBack) => {
            s.client.batch_execute("ROLLBACK").await?;
            Ok(Outcome::RolledBack)
        }
        Err(e) => {
            // The transaction is already aborted on the server; the ROLLBACK only ends it, and
            // its own failure (a closed connection) adds nothing to `e`.
            let _ = s.client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Reads an integer column of any width as `i32`.
pub(crate) fn int(row: &Row, idx: usize) -> PgResult<i32> {
    Ok(row.try_get::<_, AnyInt>(idx)?.0 as i32)
}

/// Finds a customer id by key: for a last name, the one at position ceil(n / 2) among the
/// customers with that name sorted by first name (clause 2.5.2.2). `None` if no customer has
/// the name.
pub(crate) async fn customer_id(
    s: &Session,
    w_id: i32,
    d_id: i32,
    key: &CustomerKey,
) -> PgResult<Option<i32>> {
    match key {
        CustomerKey::Id(id) => Ok(Some(*id)),
        CustomerKey::LastName(last) => {
            let rows = s
                .client
                .query(&s.st.customer_by_last, &[&w_id, &d_id, last])
                .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let pick = rows.len().div_ceil(2) - 1;
            Ok(Some(int(&rows[pick], 0)?))
        }
    }
}

/// Every statement of the transactions. Parameter types are declared rather than inferred, so
/// that the Rust values bound to them are the same on any database.
pub(crate) struct Statements {
    pub customer_by_last: Statement,
    pub new_order: new_order::Statements,
    pub payment: payment::Statements,
    pub order_status: order_status::Statements,
    pub delivery: delivery::Statements,
    pub stock_level: stock_level::Statements,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Statements> {
        Ok(Statements {
            customer_by_last: prepare(
                client,
                "SELECT c_id FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 \
                 ORDER BY c_first",
                &[INT, INT, TEXT],
            )
            .await?,
            new_order: new_order::Statements::prepare(client).await?,
            payment: payment::Statements::prepare(client).await?,
            order_status: order_status::Statements::prepare(client).await?,
            delivery: delivery::Statements::prepare(client).await?,
            stock_level: stock_level::Statements::prepare(client).await?,
        })
    }
}

/// Parameter types, short for the statement tables.
pub(crate) const INT: Type = Type::INT4;
pub(crate) const NUM: Type = Type::NUMERIC;
pub(crate) const TEXT: Type = Type::VARCHAR;
pub(crate) const TS: Type = Type::TIMESTAMP;

/// Prepares one statement, naming it in the error.
pub(crate) async fn prepare(client: &Client, sql: &str, types: &[Type]) -> Result<Statement> {
    client
        .prepare_typed(sql, types)
        .await
        .context(format!("preparing {sql:?}"))
}
