//! `tpcc check`: the consistency conditions of clause 3.3.2, each an SQL query counting the
//! rows that violate it (so zero means the condition holds).
//!
//! Conditions 1 to 10 and 12 are checked. Condition 11 ((count of ORDER) - (count of NEW-ORDER)
//! = 2100 per district) holds only until the first Delivery, so it is not one a database must
//! keep through a run, and it is left out.

use serde::Serialize;

use crate::conn::Target;
use crate::error::{Error, Result};
use crate::pgtypes::AnyInt;

/// What `check` does.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Connection URL.
    pub url: String,
    /// Check only warehouses `1..=n` (None: all).
    pub warehouses: Option<u32>,
}

/// One condition's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Condition {
    /// Clause number, e.g. `3.3.2.1`.
    pub clause: String,
    /// What must hold.
    pub description: String,
    /// Violating rows (warehouses, districts, orders or customers, as the clause counts).
    pub violations: i64,
    /// The query failed (the condition then counts as failed).
    pub error: Option<String>,
}

impl Condition {
    /// Whether the condition holds.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.violations == 0
    }
}

/// The result of `check`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The conditions, in clause order.
    pub conditions: Vec<Condition>,
}

impl CheckReport {
    /// Whether every condition holds.
    pub fn passed(&self) -> bool {
        self.conditions.iter().all(Condition::passed)
    }

    /// One line per condition.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.conditions {
            let verdict = match (&c.error, c.violations) {
                (Some(e), _) => format!("FAIL (query failed: {e})"),
                (None, 0) => "PASS".to_string(),
                (None, n) => format!("FAIL ({n} violating rows)"),
            };
            s.push_str(&format!(
                "{:<9} {:<58} {verdict}\n",
                c.clause, c.description
            ));
        }
        s.push_str(if self.passed() {
            "consistency: PASS\n"
        } else {
            "consistency: FAIL\n"
        });
        s
    }
}

/// The conditions: clause, description, and the query counting violations in one warehouse,
/// `{w}`. Each runs once per warehouse, so that what a query joins and groups stays the size of
/// one warehouse however many are loaded.
const CONDITIONS: [(&str, &str, &str); 11] = [
    (
        "3.3.2.1",
        "W_YTD = sum(D_YTD) per warehouse",
        "SELECT count(*) FROM warehouse w \
         LEFT JOIN (SELECT d_w_id, sum(d_ytd) AS s FROM district WHERE d_w_id = {w} GROUP BY d_w_id) d \
         ON d.d_w_id = w.w_id \
         WHERE w.w_id = {w} AND (d.s IS NULL OR w.w_ytd <> d.s)",
    ),
    (
        "3.3.2.2",
        "D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID) per district",
        "SELECT count(*) FROM district d WHERE d.d_w_id = {w} AND (\
         d.d_next_o_id - 1 <> (SELECT max(o.o_id) FROM oorder o \
           WHERE o.o_w_id = d.d_w_id AND o.o_d_id = d.d_id) \
         OR d.d_next_o_id - 1 <> (SELECT max(n.no_o_id) FROM new_order n \
           WHERE n.no_w_id = d.d_w_id AND n.no_d_id = d.d_id))",
    ),
    (
        "3.3.2.3",
        "max(NO_O_ID) - min(NO_O_ID) + 1 = rows in NEW_ORDER",
        "SELECT count(*) FROM (SELECT no_w_id, no_d_id, \
           max(no_o_id) - min(no_o_id) + 1 AS span, count(*) AS n \
           FROM new_order WHERE no_w_id = {w} GROUP BY no_w_id, no_d_id) t \
         WHERE t.span <> t.n",
    ),
    (
        "3.3.2.4",
        "sum(O_OL_CNT) = rows in ORDER_LINE per district",
        "SELECT count(*) FROM \
           (SELECT o_w_id, o_d_id, sum(o_ol_cnt) AS s FROM oorder WHERE o_w_id = {w} \
            GROUP BY o_w_id, o_d_id) o \
         LEFT JOIN (SELECT ol_w_id, ol_d_id, count(*) AS n FROM order_line \
            WHERE ol_w_id = {w} GROUP BY ol_w_id, ol_d_id) l \
         ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id \
         WHERE l.n IS NULL OR o.s <> l.n",
    ),
    (
        "3.3.2.5",
        "O_CARRIER_ID is null iff the order is in NEW_ORDER",
        "SELECT count(*) FROM oorder o WHERE o.o_w_id = {w} AND (\
         (o.o_carrier_id IS NULL AND NOT EXISTS (SELECT 1 FROM new_order n \
           WHERE n.no_w_id = o.o_w_id AND n.no_d_id = o.o_d_id AND n.no_o_id = o.o_id)) \
         OR (o.o_carrier_id IS NOT NULL AND EXISTS (SELECT 1 FROM new_order n \
           WHERE n.no_w_id = o.o_w_id AND n.no_d_id = o.o_d_id AND n.no_o_id = o.o_id)))",
    ),
    (
        "3.3.2.6",
        "O_OL_CNT = rows in ORDER_LINE per order",
        "SELECT count(*) FROM oorder o \
         LEFT JOIN (SELECT ol_w_id, ol_d_id, ol_o_id, count(*) AS n FROM order_line \
            WHERE ol_w_id = {w} GROUP BY ol_w_id, ol_d_id, ol_o_id) l \
         ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id \
         WHERE o.o_w_id = {w} AND (l.n IS NULL OR o.o_ol_cnt <> l.n)",
    ),
    (
        "3.3.2.7",
        "OL_DELIVERY_D is null iff O_CARRIER_ID is null",
        "SELECT count(*) FROM oorder o JOIN order_line l \
         ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id \
         WHERE o.o_w_id = {w} AND l.ol_w_id = {w} AND (\
         (o.o_carrier_id IS NULL AND l.ol_delivery_d IS NOT NULL) \
         OR (o.o_carrier_id IS NOT NULL AND l.ol_delivery_d IS NULL))",
    ),
    (
        "3.3.2.8",
        "W_YTD = sum(H_AMOUNT) per warehouse",
        "SELECT count(*) FROM warehouse w \
         LEFT JOIN (SELECT h_w_id, sum(h_amount) AS s FROM history WHERE h_w_id = {w} GROUP BY h_w_id) h \
         ON h.h_w_id = w.w_id \
         WHERE w.w_id = {w} AND (h.s IS NULL OR w.w_ytd <> h.s)",
    ),
    (
        "3.3.2.9",
        "D_YTD = sum(H_AMOUNT) per district",
        "SELECT count(*) FROM district d \
         LEFT JOIN (SELECT h_w_id, h_d_id, sum(h_amount) AS s FROM history \
            WHERE h_w_id = {w} GROUP BY h_w_id, h_d_id) h \
         ON h.h_w_id = d.d_w_id AND h.h_d_id = d.d_id \
         WHERE d.d_w_id = {w} AND (h.s IS NULL OR d.d_ytd <> h.s)",
    ),
    (
        "3.3.2.10",
        "C_BALANCE = sum(delivered OL_AMOUNT) - sum(H_AMOUNT)",
        "SELECT count(*) FROM (SELECT * FROM customer WHERE c_w_id = {w}) c \
         LEFT JOIN (SELECT o.o_w_id, o.o_d_id, o.o_c_id, sum(l.ol_amount) AS s \
            FROM oorder o JOIN order_line l \
            ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id \
            WHERE l.ol_delivery_d IS NOT NULL AND o.o_w_id = {w} AND l.ol_w_id = {w} \
            GROUP BY o.o_w_id, o.o_d_id, o.o_c_id) dl \
         ON dl.o_w_id = c.c_w_id AND dl.o_d_id = c.c_d_id AND dl.o_c_id = c.c_id \
         LEFT JOIN (SELECT h_c_w_id, h_c_d_id, h_c_id, sum(h_amount) AS s FROM history \
            WHERE h_c_w_id = {w} GROUP BY h_c_w_id, h_c_d_id, h_c_id) h \
         ON h.h_c_w_id = c.c_w_id AND h.h_c_d_id = c.c_d_id AND h.h_c_id = c.c_id \
         WHERE c.c_balance <> COALESCE(dl.s, 0) - COALESCE(h.s, 0)",
    ),
    (
        "3.3.2.12",
        "C_BALANCE + C_YTD_PAYMENT = sum(delivered OL_AMOUNT)",
        "SELECT count(*) FROM (SELECT * FROM customer WHERE c_w_id = {w}) c \
         LEFT JOIN (SELECT o.o_w_id, o.o_d_id, o.o_c_id, sum(l.ol_amount) AS s \
            FROM oorder o JOIN order_line l \
            ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id \
            WHERE l.ol_delivery_d IS NOT NULL AND o.o_w_id = {w} AND l.ol_w_id = {w} \
            GROUP BY o.o_w_id, o.o_d_id, o.o_c_id) dl \
         ON dl.o_w_id = c.c_w_id AND dl.o_d_id = c.c_d_id AND dl.o_c_id = c.c_id \
         WHERE c.c_balance + c.c_ytd_payment <> COALESCE(dl.s, 0)",
    ),
];

/// The server's SQLSTATE and message for a failed query, else the client's error.
fn query_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Runs every condition's query. A query that fails makes its condition fail; only a missing
/// database (no connection, no warehouse table) is an error of the check itself.
pub async fn check(cfg: &CheckConfig) -> Result<CheckReport> {
    let target = Target::parse(&cfg.url)?;
    let client = target.connect().await?;
    let loaded = match client
        .query_one("SELECT count(*) FROM warehouse", &[])
        .await
    {
        Ok(row) => row.try_get::<_, AnyInt>(0).map(|n| n.0).unwrap_or(0),
        Err(e) => {
            return Err(Error::NotLoaded(format!(
                "cannot read the warehouse table ({e}); run `meridian workload tpcc init` first"
            )));
        }
    };
    if loaded == 0 {
        return Err(Error::NotLoaded(
            "no warehouses loaded; run `meridian workload tpcc init` first".into(),
        ));
    }
    let max_w = cfg.warehouses.map_or(loaded, i64::from);
    let mut conditions = Vec::with_capacity(CONDITIONS.len());
    for (clause, description, sql) in CONDITIONS {
        let (mut violations, mut error) = (0, None);
        for w in 1..=max_w {
            let sql = sql.replace("{w}", &w.to_string());
            match client.query_one(&sql, &[]).await {
                Ok(row) => match row.try_get::<_, AnyInt>(0) {
                    Ok(n) => violations += n.0,
                    Err(e) => error = Some(e.to_string()),
                },
                Err(e) => error = Some(query_error(&e)),
            }
            if error.is_some() {
                break;
            }
        }
        conditions.push(Condition {
            clause: clause.into(),
            description: description.into(),
            violations,
            error,
        });
    }
    Ok(CheckReport { conditions })
}
