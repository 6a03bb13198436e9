//! Payment (clause 2.5): add the amount to the warehouse's and district's year-to-date
//! totals, take it from the customer's balance (appending to C_DATA for bad credit), and
//! record it in HISTORY. 15% of payments are for a customer of another warehouse, 60% find the
//! customer by last name.

use std::time::SystemTime;

use tokio_postgres::{Client, Statement};

use super::{CustomerKey, INT, NUM, Outcome, PgResult, Session, TEXT, TS, Terminal, prepare};
use crate::error::Result;
use crate::pgtypes::Numeric;
use crate::rand::TpccRng;

/// A Payment input.
#[derive(Clone, Debug)]
pub struct Input {
    /// Home warehouse.
    pub w_id: i32,
    /// District of the payment, uniform 1..=10.
    pub d_id: i32,
    /// The customer's warehouse: the home one 85% of the time.
    pub c_w_id: i32,
    /// The customer's district.
    pub c_d_id: i32,
    /// The customer.
    pub customer: CustomerKey,
    /// 1.00 ..= 5000.00, in cents.
    pub amount_cents: i64,
}

/// Generates an input as clause 2.5.1 says.
pub fn generate(r: &mut TpccRng, t: &Terminal) -> Input {
    let d_id = r.int(1, 10);
    let (c_w_id, c_d_id) = if r.uniform(1, 100) <= 85 || t.warehouses <= 1 {
        (t.w_id, d_id)
    } else {
        (t.remote_warehouse(r), r.int(1, 10))
    };
    Input {
        w_id: t.w_id,
        d_id,
        c_w_id,
        c_d_id,
        customer: CustomerKey::generate(r),
        amount_cents: r.uniform(100, 500_000),
    }
}

/// The Payment statements.
pub(crate) struct Statements {
    warehouse: Statement,
    district: Statement,
    customer: Statement,
    customer_data: Statement,
    pay: Statement,
    pay_bad_credit: Statement,
    insert_history: Statement,
}

impl Statements {
    pub(crate) async fn prepare(c: &Client) -> Result<Statements> {
        const WHERE_CUSTOMER: &str = "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3";
        Ok(Statements {
            // Each update returns the address the terminal shows, saving a round trip.
            warehouse: prepare(
                c,
                "UPDATE warehouse SET w_ytd = w_ytd + $2 WHERE w_id = $1 \
                 RETURNING w_name, w_street_1, w_street_2, w_city, w_state, w_zip",
                &[INT, NUM],
            )
            .await?,
            district: prepare(
                c,
                "UPDATE district SET d_ytd = d_ytd + $3 WHERE d_w_id = $1 AND d_id = $2 \
                 RETURNING d_name, d_street_1, d_street_2, d_city, d_state, d_zip",
                &[INT, INT, NUM],
            )
            .await?,
            customer: prepare(
                c,
                &format!(
                    "SELECT c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, \
                     c_zip, c_phone, c_since, c_credit, c_credit_lim, c_discount, c_balance \
                     FROM customer {WHERE_CUSTOMER}"
                ),
                &[INT, INT, INT],
            )
            .await?,
            customer_data: prepare(
                c,
                &format!("SELECT c_data FROM customer {WHERE_CUSTOMER}"),
                &[INT, INT, INT],
            )
            .await?,
            pay: prepare(
                c,
                &format!(
                    "UPDATE customer SET c_balance = c_balance - $4, \
                     c_ytd_payment = c_ytd_payment + $4, c_payment_cnt = c_payment_cnt + 1 \
                     {WHERE_CUSTOMER}"
                ),
                &[INT, INT, INT, NUM],
            )
            .await?,
            pay_bad_credit: prepare(
                c,
                &format!(
                    "UPDATE customer SET c_balance = c_balance - $4, \
                     c_ytd_payment = c_ytd_payment + $4, c_payment_cnt = c_payment_cnt + 1, \
                     c_data = $5 {WHERE_CUSTOMER}"
                ),
                &[INT, INT, INT, NUM, TEXT],
            )
            .await?,
            insert_history: prepare(
                c,
                "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, \
                 h_amount, h_data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[INT, INT, INT, INT, INT, TS, NUM, TEXT],
            )
            .await?,
        })
    }
}

/// Runs the body inside an open transaction.
pub(crate) async fn execute(s: &Session, input: &Input) -> PgResult<Outcome> {
    let (c, st) = (&s.client, &s.st.payment);
    let (w, d) = (input.w_id, input.d_id);
    let amount = Numeric::cents(input.amount_cents);
    let w_name: String = c
        .query_one(&st.warehouse, &[&w, &amount])
        .await?
        .try_get(0)?;
    let d_name: String = c
        .query_one(&st.district, &[&w, &d, &amount])
        .await?
        .try_get(0)?;

    let (cw, cd) = (input.c_w_id, input.c_d_id);
    let Some(c_id) = super::customer_id(s, cw, cd, &input.customer).await? else {
        // Every last name exists in every district of a correctly loaded database; a missing
        // one means there is nothing to pay, which is not an error of the database.
        return Ok(Outcome::RolledBack);
    };
    let customer = c.query_one(&st.customer, &[&cw, &cd, &c_id]).await?;
    let credit: String = customer.try_get(10)?;
    if credit == "BC" {
        let old: String = c
            .query_one(&st.customer_data, &[&cw, &cd, &c_id])
            .await?
            .try_get(0)?;
        let data: String = format!("{c_id} {cd} {cw} {d} {w} {amount}|{old}")
            .chars()
            .take(500)
            .collect();
        c.execute(&st.pay_bad_credit, &[&cw, &cd, &c_id, &amount, &data])
            .await?;
    } else {
        c.execute(&st.pay, &[&cw, &cd, &c_id, &amount]).await?;
    }
    let h_data = format!("{w_name}    {d_name}");
    let now = SystemTime::now();
    c.execute(
        &st.insert_history,
        &[&c_id, &cd, &cw, &d, &w, &now, &amount, &h_data],
    )
    .await?;
    Ok(Outcome::Committed)
}
