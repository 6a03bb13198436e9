//! Stock-Level (clause 2.8), read only: how many distinct items of the district's last 20
//! orders have stock below a threshold.

use tokio_postgres::{Client, Statement};

use super::{INT, Outcome, PgResult, Session, Terminal, int, prepare};
use crate::error::Result;
use crate::pgtypes::AnyInt;
use crate::rand::TpccRng;

/// A Stock-Level input.
#[derive(Clone, Debug)]
pub struct Input {
    /// Home warehouse.
    pub w_id: i32,
    /// The terminal's own district.
    pub d_id: i32,
    /// Uniform 10..=20.
    pub threshold: i32,
}

/// Generates an input as clause 2.8.1 says.
pub fn generate(r: &mut TpccRng, t: &Terminal) -> Input {
    Input {
        w_id: t.w_id,
        d_id: t.d_id,
        threshold: r.int(10, 20),
    }
}

/// The Stock-Level statements.
pub(crate) struct Statements {
    next_order: Statement,
    low_stock: Statement,
}

impl Statements {
    pub(crate) async fn prepare(c: &Client) -> Result<Statements> {
        Ok(Statements {
            next_order: prepare(
                c,
                "SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2",
                &[INT, INT],
            )
            .await?,
            low_stock: prepare(
                c,
                "SELECT count(DISTINCT s_i_id) FROM order_line, stock \
                 WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id < $3 AND ol_o_id >= $4 \
                 AND s_w_id = $1 AND s_i_id = ol_i_id AND s_quantity < $5",
                &[INT, INT, INT, INT, INT],
            )
            .await?,
        })
    }
}

/// Runs the body inside an open transaction.
pub(crate) async fn execute(s: &Session, input: &Input) -> PgResult<Outcome> {
    let (c, st) = (&s.client, &s.st.stock_level);
    let (w, d) = (input.w_id, input.d_id);
    let next = int(&c.query_one(&st.next_order, &[&w, &d]).await?, 0)?;
    let _low: AnyInt = c
        .query_one(
            &st.low_stock,
            &[&w, &d, &next, &(next - 20), &input.threshold],
        )
        .await?
        .try_get(0)?;
    Ok(Outcome::Committed)
}
