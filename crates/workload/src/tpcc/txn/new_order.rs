//! New-Order (clause 2.4): read the warehouse, district and customer, take the district's next
//! order id, insert the order, and for each line read the item, update its stock and insert
//! the order line. 1% of inputs name an unused item and are rolled back (clause 2.4.1.4).
//!
//! The district row is read `FOR UPDATE`, first: every New-Order of a district takes its next
//! order id from that row, so concurrent ones queue on its lock (as in PostgreSQL) instead of
//! racing for it. The warehouse's tax is read after it, at the snapshot the lock may have
//! moved forward, which keeps the window in which a Payment's update of the warehouse row
//! conflicts with this transaction short.

use std::time::SystemTime;

use tokio_postgres::{Client, Statement};

use super::{INT, NUM, Outcome, PgResult, Session, TEXT, TS, Terminal, int, prepare};
use crate::error::Result;
use crate::pgtypes::Numeric;
use crate::rand::TpccRng;
use crate::tpcc::ITEMS;

/// One order line's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Item, NURand(8191, 1, 100000), or an unused id for a rollback.
    pub i_id: i32,
    /// Supplying warehouse: the home one 99% of the time.
    pub supply_w_id: i32,
    /// 1..=10.
    pub quantity: i32,
}

/// A New-Order input.
#[derive(Clone, Debug)]
pub struct Input {
    /// Home warehouse.
    pub w_id: i32,
    /// District, uniform 1..=10.
    pub d_id: i32,
    /// Customer, NURand(1023, 1, 3000).
    pub c_id: i32,
    /// 5..=15 lines.
    pub lines: Vec<Line>,
}

/// Generates an input as clause 2.4.1 says.
pub fn generate(r: &mut TpccRng, t: &Terminal) -> Input {
    let d_id = r.int(1, 10);
    let c_id = r.customer_id();
    let ol_cnt = r.int(5, 15);
    let rollback = r.uniform(1, 100) == 1;
    let mut lines: Vec<Line> = (0..ol_cnt)
        .map(|_| {
            let i_id = r.item_id();
            let supply_w_id = if r.uniform(1, 100) == 1 {
                t.remote_warehouse(r)
            } else {
                t.w_id
            };
            Line {
                i_id,
                supply_w_id,
                quantity: r.int(1, 10),
            }
        })
        .collect();
    if rollback && let Some(last) = lines.last_mut() {
        last.i_id = ITEMS + 1;
    }
    // Touching stock rows in one global order makes two New-Orders less likely to wait for
    // each other in opposite orders (a deadlock, or a retry).
    lines.sort_by_key(|l| (l.supply_w_id, l.i_id));
    Input {
        w_id: t.w_id,
        d_id,
        c_id,
        lines,
    }
}

/// The New-Order statements.
pub(crate) struct Statements {
    warehouse: Statement,
    district: Statement,
    customer: Statement,
    insert_order: Statement,
    insert_new_order: Statement,
    item: Statement,
    update_stock: Statement,
    insert_line: Statement,
}

impl Statements {
    pub(crate) async fn prepare(c: &Client) -> Result<Statements> {
        Ok(Statements {
            warehouse: prepare(c, "SELECT w_tax FROM warehouse WHERE w_id = $1", &[INT]).await?,
            // The district's next order id is read and advanced in one statement, which takes
            // the row's lock first (as CockroachDB's workload does), saving a round trip.
            district: prepare(
                c,
                "UPDATE district SET d_next_o_id = d_next_o_id + 1 \
                 WHERE d_w_id = $1 AND d_id = $2 RETURNING d_next_o_id - 1, d_tax",
                &[INT, INT],
            )
            .await?,
            customer: prepare(
                c,
                "SELECT c_discount, c_last, c_credit FROM customer \
                 WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                &[INT, INT, INT],
            )
            .await?,
            insert_order: prepare(
                c,
                "INSERT INTO oorder (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, \
                 o_ol_cnt, o_all_local) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
                &[INT, INT, INT, INT, TS, INT, INT],
            )
            .await?,
            insert_new_order: prepare(
                c,
                "INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)",
                &[INT, INT, INT],
            )
            .await?,
            item: prepare(
                c,
                "SELECT i_price, i_name, i_data FROM item WHERE i_id = $1",
                &[INT],
            )
            .await?,
            // The stock row is read and changed in one statement: the new quantity follows
            // clause 2.4.2.2 (down by the ordered quantity, plus 91 when that leaves fewer
            // than 10), and RETURNING gives the columns the order line needs.
            update_stock: prepare(
                c,
                "UPDATE stock SET s_quantity = CASE WHEN s_quantity >= $3 + 10 \
                 THEN s_quantity - $3 ELSE s_quantity - $3 + 91 END, s_ytd = s_ytd + $3, \
                 s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + $4 \
                 WHERE s_w_id = $1 AND s_i_id = $2 \
                 RETURNING s_data, s_dist_01, s_dist_02, s_dist_03, s_dist_04, s_dist_05, \
                 s_dist_06, s_dist_07, s_dist_08, s_dist_09, s_dist_10",
                &[INT, INT, INT, INT],
            )
            .await?,
            insert_line: prepare(
                c,
                "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, \
                 ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)",
                &[INT, INT, INT, INT, INT, INT, INT, NUM, TEXT],
            )
            .await?,
        })
    }
}

/// Runs the body inside an open transaction.
pub(crate) async fn execute(s: &Session, input: &Input) -> PgResult<Outcome> {
    let (c, st) = (&s.client, &s.st.new_order);
    let (w, d) = (input.w_id, input.d_id);
    let district = c.query_one(&st.district, &[&w, &d]).await?;
    let o_id = int(&district, 0)?;
    let d_tax: Numeric = district.try_get(1)?;
    let w_tax: Numeric = c.query_one(&st.warehouse, &[&w]).await?.try_get(0)?;
    let customer = c.query_one(&st.customer, &[&w, &d, &input.c_id]).await?;
    let discount: Numeric = customer.try_get(0)?;

    let all_local = i32::from(input.lines.iter().all(|l| l.supply_w_id == w));
    let ol_cnt = input.lines.len() as i32;
    let now = SystemTime::now();
    c.execute(
        &st.insert_order,
        &[&o_id, &d, &w, &input.c_id, &now, &ol_cnt, &all_local],
    )
    .await?;
    c.execute(&st.insert_new_order, &[&o_id, &d, &w]).await?;

    let mut total_cents = 0i64;
    for (n, line) in input.lines.iter().enumerate() {
        let Some(item) = c.query_opt(&st.item, &[&line.i_id]).await? else {
            // The unused item id: the input is invalid and the order is rolled back.
            return Ok(Outcome::RolledBack);
        };
        let price: Numeric = item.try_get(0)?;
        let i_data: String = item.try_get(2)?;
        let remote = i32::from(line.supply_w_id != w);
        let stock = c
            .query_one(
                &st.update_stock,
                &[&line.supply_w_id, &line.i_id, &line.quantity, &remote],
            )
            .await?;
        let s_data: String = stock.try_get(0)?;
        let dist_info: String = stock.try_get(d as usize)?;
        let amount = Numeric::cents(price.units_at(2) * i64::from(line.quantity));
        total_cents += amount.units;
        // Brand or generic (clause 2.4.2.2) is shown on the terminal only; computing it keeps
        // the client's work what the specification describes.
        let _brand_generic = i_data.contains("ORIGINAL") && s_data.contains("ORIGINAL");
        let number = n as i32 + 1;
        c.execute(
            &st.insert_line,
            &[
                &o_id,
                &d,
                &w,
                &number,
                &line.i_id,
                &line.supply_w_id,
                &line.quantity,
                &amount,
                &dist_info,
            ],
        )
        .await?;
    }
    let _total = total_cents as f64 / 100.0
        * (1.0 - discount.to_f64())
        * (1.0 + w_tax.to_f64() + d_tax.to_f64());
    Ok(Outcome::Committed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::NuRandC;

    #[test]
    fn about_one_percent_roll_back_and_one_percent_of_lines_are_remote() {
        let t = Terminal {
            w_id: 3,
            d_id: 1,
            warehouses: 5,
        };
        let mut r = TpccRng::new(5, 5, NuRandC::for_load(5));
        let (mut rollbacks, mut lines, mut remote) = (0, 0, 0);
        for _ in 0..20_000 {
            let i = generate(&mut r, &t);
            assert!((5..=15).contains(&i.lines.len()));
            rollbacks += usize::from(i.lines.iter().any(|l| l.i_id > ITEMS));
            lines += i.lines.len();
            remote += i.lines.iter().filter(|l| l.supply_w_id != 3).count();
            assert!(i.lines.iter().all(|l| (1..=5).contains(&l.supply_w_id)));
        }
        assert!((120..=280).contains(&rollbacks), "{rollbacks} rollbacks");
        let share = remote as f64 / lines as f64;
        assert!((0.007..0.013).contains(&share), "{share} remote");
    }
}
