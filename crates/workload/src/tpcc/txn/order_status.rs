//! Order-Status (clause 2.6), read only: a customer's balance, their most recent order and its
//! lines. 60% find the customer by last name.

use std::time::SystemTime;

use tokio_postgres::{Client, Statement};

use super::{CustomerKey, INT, Outcome, PgResult, Session, Terminal, int, prepare};
use crate::error::Result;
use crate::pgtypes::{AnyInt, Numeric};
use crate::rand::TpccRng;

/// An Order-Status input.
#[derive(Clone, Debug)]
pub struct Input {
    /// Home warehouse.
    pub w_id: i32,
    /// District, uniform 1..=10.
    pub d_id: i32,
    /// The customer.
    pub customer: CustomerKey,
}

/// Generates an input as clause 2.6.1 says.
pub fn generate(r: &mut TpccRng, t: &Terminal) -> Input {
    Input {
        w_id: t.w_id,
        d_id: r.int(1, 10),
        customer: CustomerKey::generate(r),
    }
}

/// The Order-Status statements.
pub(crate) struct Statements {
    customer: Statement,
    last_order: Statement,
    lines: Statement,
}

impl Statements {
    pub(crate) async fn prepare(c: &Client) -> Result<Statements> {
        Ok(Statements {
            customer: prepare(
                c,
                "SELECT c_balance, c_first, c_middle, c_last FROM customer \
                 WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                &[INT, INT, INT],
            )
            .await?,
            last_order: prepare(
                c,
                "SELECT o_id, o_carrier_id, o_entry_d FROM oorder \
                 WHERE o_w_id = $1 AND o_d_id = $2 AND o_c_id = $3 ORDER BY o_id DESC LIMIT 1",
                &[INT, INT, INT],
            )
            .await?,
            lines: prepare(
                c,
                "SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d \
                 FROM order_line WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                &[INT, INT, INT],
            )
            .await?,
        })
    }
}

/// Runs the body inside an open transaction.
pub(crate) async fn execute(s: &Session, input: &Input) -> PgResult<Outcome> {
    let (c, st) = (&s.client, &s.st.order_status);
    let (w, d) = (input.w_id, input.d_id);
    let Some(c_id) = super::customer_id(s, w, d, &input.customer).await? else {
        return Ok(Outcome::Committed);
    };
    let customer = c.query_one(&st.customer, &[&w, &d, &c_id]).await?;
    let _balance: Numeric = customer.try_get(0)?;
    let Some(order) = c.query_opt(&st.last_order, &[&w, &d, &c_id]).await? else {
        return Ok(Outcome::Committed);
    };
    let o_id = int(&order, 0)?;
    let _carrier: Option<AnyInt> = order.try_get(1)?;
    let _entry: Option<SystemTime> = order.try_get(2)?;
    for line in c.query(&st.lines, &[&w, &d, &o_id]).await? {
        let _amount: Numeric = line.try_get(3)?;
        let _delivered: Option<SystemTime> = line.try_get(4)?;
    }
    Ok(Outcome::Committed)
}
