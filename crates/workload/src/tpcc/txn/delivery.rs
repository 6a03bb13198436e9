//! Delivery (clause 2.7): for each district of the warehouse, deliver the oldest undelivered
//! order: delete it from NEW_ORDER, set its carrier and its lines' delivery date, and add its
//! amount to the customer's balance. It runs directly in one transaction (the specification
//! also allows deferring it to a queue).

use std::time::SystemTime;

use tokio_postgres::{Client, Statement};

use super::{INT, NUM, Outcome, PgResult, Session, TS, Terminal, int, prepare};
use crate::error::Result;
use crate::pgtypes::Numeric;
use crate::rand::TpccRng;
use crate::tpcc::DISTRICTS_PER_WAREHOUSE;

/// A Delivery input.
#[derive(Clone, Debug)]
pub struct Input {
    /// Home warehouse.
    pub w_id: i32,
    /// Carrier, uniform 1..=10.
    pub carrier_id: i32,
}

/// Generates an input as clause 2.7.1 says.
pub fn generate(r: &mut TpccRng, t: &Terminal) -> Input {
    Input {
        w_id: t.w_id,
        carrier_id: r.int(1, 10),
    }
}

/// The Delivery statements.
pub(crate) struct Statements {
    oldest: Statement,
    delete_new_order: Statement,
    order_customer: Statement,
    set_carrier: Statement,
    set_delivered: Statement,
    amount: Statement,
    credit_customer: Statement,
}

impl Statements {
    pub(crate) async fn prepare(c: &Client) -> Result<Statements> {
        Ok(Statements {
            oldest: prepare(
                c,
                "SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 \
                 ORDER BY no_o_id LIMIT 1",
                &[INT, INT],
            )
            .await?,
            delete_new_order: prepare(
                c,
                "DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3",
                &[INT, INT, INT],
            )
            .await?,
            order_customer: prepare(
                c,
                "SELECT o_c_id FROM oorder WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3",
                &[INT, INT, INT],
            )
            .await?,
            set_carrier: prepare(
                c,
                "UPDATE oorder SET o_carrier_id = $4 \
                 WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3",
                &[INT, INT, INT, INT],
            )
            .await?,
            set_delivered: prepare(
                c,
                "UPDATE order_line SET ol_delivery_d = $4 \
                 WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                &[INT, INT, INT, TS],
            )
            .await?,
            amount: prepare(
                c,
                "SELECT sum(ol_amount) FROM order_line \
                 WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                &[INT, INT, INT],
            )
            .await?,
            credit_customer: prepare(
                c,
                "UPDATE customer SET c_balance = c_balance + $4, \
                 c_delivery_cnt = c_delivery_cnt + 1 \
                 WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                &[INT, INT, INT, NUM],
            )
            .await?,
        })
    }
}

/// Runs the body inside an open transaction.
pub(crate) async fn execute(s: &Session, input: &Input) -> PgResult<Outcome> {
    let (c, st) = (&s.client, &s.st.delivery);
    let w = input.w_id;
    let now = SystemTime::now();
    for d in 1..=DISTRICTS_PER_WAREHOUSE {
        // A district with no undelivered order is skipped (clause 2.7.4.2).
        let Some(oldest) = c.query_opt(&st.oldest, &[&w, &d]).await? else {
            continue;
        };
        let o_id = int(&oldest, 0)?;
        c.execute(&st.delete_new_order, &[&w, &d, &o_id]).await?;
        let c_id = int(&c.query_one(&st.order_customer, &[&w, &d, &o_id]).await?, 0)?;
        c.execute(&st.set_carrier, &[&w, &d, &o_id, &input.carrier_id])
            .await?;
        c.execute(&st.set_delivered, &[&w, &d, &o_id, &now]).await?;
        let amount: Option<Numeric> = c
            .query_one(&st.amount, &[&w, &d, &o_id])
            .await?
            .try_get(0)?;
        let amount = amount.unwrap_or(Numeric::cents(0));
        c.execute(&st.credit_customer, &[&w, &d, &c_id, &amount])
            .await?;
    }
    Ok(Outcome::Committed)
}
