//! `tpcc init`: create the tables and populate them as clause 4.3.3.1 of the specification
//! says, with multi-row INSERTs (not COPY, which not every database has).
//!
//! The population is cut into units (a range of items, a warehouse and its districts, a range
//! of stock, one district's customers, one district's orders), each with its own random stream
//! derived from the seed, so the data is the same whatever order the parallel loaders take the
//! units in.
//!
//! `init` is idempotent by dropping and recreating the tables: an interrupted load is simply
//! started again from scratch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_postgres::Client;

use crate::conn::Target;
use crate::error::{Error, Result, SqlContext};
use crate::pgtypes::Numeric;
use crate::rand::{NuRandC, TpccRng, last_name};
use crate::tpcc::schema;
use crate::tpcc::{CUSTOMERS_PER_DISTRICT, DISTRICTS_PER_WAREHOUSE, ITEMS};

/// Items and stock rows per unit of work.
const CHUNK: i32 = 10_000;

/// Orders per district that were delivered before the run starts (ids below this one).
pub const FIRST_UNDELIVERED_ORDER: i32 = 2101;

/// What `init` does.
#[derive(Clone, Debug)]
pub struct InitConfig {
    /// Connection URL.
    pub url: String,
    /// Number of warehouses to load.
    pub warehouses: u32,
    /// Parallel loading connections.
    pub concurrency: usize,
    /// Rows per INSERT statement.
    pub batch_size: usize,
    /// Seed of the random data (and of the NURand constants, which `run` must share).
    pub seed: u64,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl InitConfig {
    /// A configuration with the defaults of the command line.
    pub fn new(url: impl Into<String>, warehouses: u32) -> InitConfig {
        InitConfig {
            url: url.into(),
            warehouses,
            concurrency: 4,
            batch_size: 200,
            seed: 0,
            progress: false,
        }
    }
}

/// What `init` did.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// Rows inserted.
    pub rows: u64,
    /// Wall time of schema creation and load.
    pub elapsed: Duration,
}

/// One unit of the population.
#[derive(Clone, Copy, Debug)]
enum Unit {
    Items { from: i32 },
    Warehouse { w: i32 },
    Stock { w: i32, from: i32 },
    Customers { w: i32, d: i32 },
    Orders { w: i32, d: i32 },
}

impl Unit {
    /// A random stream number unique to the unit.
    fn stream(self) -> u64 {
        let (kind, a, b) = match self {
            Unit::Items { from } => (1u64, 0, from),
            Unit::Warehouse { w } => (2, w, 0),
            Unit::Stock { w, from } => (3, w, from),
            Unit::Customers { w, d } => (4, w, d),
            Unit::Orders { w, d } => (5, w, d),
        };
        (kind << 56) | ((a as u64) << 24) | b as u64
    }
}

/// Creates the schema and loads `warehouses` warehouses.
pub async fn init(cfg: &InitConfig) -> Result<InitReport> {
    if cfg.warehouses == 0 || cfg.concurrency == 0 || cfg.batch_size == 0 {
        return Err(Error::Config(
            "warehouses, concurrency and batch size must be at least 1".into(),
        ));
    }
    let target = Target::parse(&cfg.url)?;
    let started = Instant::now();
    let first = target.connect().await?;
    schema::recreate(&first).await?;

    let units = units(cfg.warehouses as i32);
    let bar = progress_bar(cfg, estimated_rows(cfg.warehouses));
    let queue = Arc::new(Mutex::new(units));
    let loader = Arc::new(Loader::new(cfg));
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = Some(first);
    for _ in 0..cfg.concurrency {
        let client = match first.take() {
            Some(c) => c,
            None => target.connect().await?,
        };
        let (queue, loader, bar) = (queue.clone(), loader.clone(), bar.clone());
        tasks.spawn(async move {
            let mut rows = 0u64;
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                let Some(unit) = next else { break };
                rows += loader.load(&client, unit, &bar).await?;
            }
            Ok::<u64, Error>(rows)
        });
    }
    let mut rows = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(n)) => rows += n,
            // Dropping the JoinSet on return aborts the other loaders.
            Ok(Err(e)) => {
                bar.abandon();
                return Err(e);
            }
            Err(e) => return Err(Error::Config(format!("a loader task failed: {e}"))),
        }
    }
    bar.finish_and_clear();
    Ok(InitReport {
        rows,
        elapsed: started.elapsed(),
    })
}

/// The units of a load, the largest (orders, stock) spread out so that parallel loaders stay
/// busy to the end.
fn units(warehouses: i32) -> VecDeque<Unit> {
    let mut v = VecDeque::new();
    for w in 1..=warehouses {
        for d in 1..=DISTRICTS_PER_WAREHOUSE {
            v.push_back(Unit::Orders { w, d });
            v.push_back(Unit::Customers { w, d });
            v.push_back(Unit::Stock {
                w,
                from: (d - 1) * CHUNK + 1,
            });
        }
        v.push_back(Unit::Warehouse { w });
    }
    for from in (1..=ITEMS).step_by(CHUNK as usize) {
        v.push_back(Unit::Items { from });
    }
    v
}

/// Rows a load of `warehouses` inserts, counting ten order lines per order (the mean).
pub fn estimated_rows(warehouses: u32) -> u64 {
    let per_district = 3 * CUSTOMERS_PER_DISTRICT as u64 // customer, history, oorder
        + 10 * CUSTOMERS_PER_DISTRICT as u64 // order_line
        + (CUSTOMERS_PER_DISTRICT - FIRST_UNDELIVERED_ORDER + 1) as u64 // new_order
        + 1; // district
    ITEMS as u64
        + u64::from(warehouses) * (1 + ITEMS as u64 + DISTRICTS_PER_WAREHOUSE as u64 * per_district)
}

fn progress_bar(cfg: &InitConfig, total: u64) -> ProgressBar {
    if !cfg.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {human_pos}/~{human_len} rows  {per_sec}  eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Generates and inserts the rows of units.
struct Loader {
    seed: u64,
    c: NuRandC,
    batch_size: usize,
    /// The load's timestamp literal, for C_SINCE, H_DATE, O_ENTRY_D and OL_DELIVERY_D.
    now: String,
}

impl Loader {
    fn new(cfg: &InitConfig) -> Loader {
        Loader {
            seed: cfg.seed,
            c: NuRandC::for_load(cfg.seed),
            batch_size: cfg.batch_size,
            now: format!(
                "'{}'",
                chrono::Utc::now()
                    .naive_utc()
                    .format("%Y-%m-%d %H:%M:%S%.6f")
            ),
        }
    }

    async fn load(&self, client: &Client, unit: Unit, bar: &ProgressBar) -> Result<u64> {
        let mut rng = TpccRng::new(self.seed, unit.stream(), self.c);
        let mut batches = Batches::new(client, self.batch_size, bar);
        match unit {
            Unit::Items { from } => self.items(&mut rng, &mut batches, from).await?,
            Unit::Warehouse { w } => self.warehouse(&mut rng, &mut batches, w).await?,
            Unit::Stock { w, from } => self.stock(&mut rng, &mut batches, w, from).await?,
            Unit::Customers { w, d } => self.customers(&mut rng, &mut batches, w, d).await?,
            Unit::Orders { w, d } => self.orders(&mut rng, &mut batches, w, d).await?,
        }
        batches.finish().await
    }

    async fn items(&self, r: &mut TpccRng, b: &mut Batches<'_>, from: i32) -> Result<()> {
        let to = (from + CHUNK - 1).min(ITEMS);
        for i in from..=to {
            let row = format!(
                "({i},{},{},{},{})",
                r.int(1, 10_000),
                q(&r.astring(14, 24)),
                Numeric::cents(r.uniform(100, 10_000)),
                q(&r.data_with_original()),
            );
            b.push(Table::Item, row).await?;
        }
        Ok(())
    }

    async fn warehouse(&self, r: &mut TpccRng, b: &mut Batches<'_>, w: i32) -> Result<()> {
        // W_TAX in [0.0000, 0.2000], W_YTD = 300,000.00.
        let row = format!(
            "({w},{},{},{},300000.00)",
            q(&r.astring(6, 10)),
            self.address(r),
            Numeric {
                units: r.uniform(0, 2000),
                scale: 4
            },
        );
        b.push(Table::Warehouse, row).await?;
        for d in 1..=DISTRICTS_PER_WAREHOUSE {
            let row = format!(
                "({d},{w},{},{},{},30000.00,3001)",
                q(&r.astring(6, 10)),
                self.address(r),
                Numeric {
                    units: r.uniform(0, 2000),
                    scale: 4
                },
            );
            b.push(Table::District, row).await?;
        }
        Ok(())
    }

    /// Street 1, street 2, city, state and zip as SQL literals.
    fn address(&self, r: &mut TpccRng) -> String {
        format!(
            "{},{},{},{},{}",
            q(&r.astring(10, 20)),
            q(&r.astring(10, 20)),
            q(&r.astring(10, 20)),
            q(&letters(r, 2)),
            q(&r.zip()),
        )
    }

    async fn stock(&self, r: &mut TpccRng, b: &mut Batches<'_>, w: i32, from: i32) -> Result<()> {
        let to = (from + CHUNK - 1).min(ITEMS);
        for i in from..=to {
            let mut row = format!("({i},{w},{}", r.int(10, 100));
            for _ in 0..10 {
                row.push(',');
                row.push_str(&q(&r.astring(24, 24)));
            }
            row.push_str(&format!(",0,0,0,{})", q(&r.data_with_original())));
            b.push(Table::Stock, row).await?;
        }
        Ok(())
    }

    async fn customers(&self, r: &mut TpccRng, b: &mut Batches<'_>, w: i32, d: i32) -> Result<()> {
        for c in 1..=CUSTOMERS_PER_DISTRICT {
            // The first 1000 customers carry every last name once; the rest are NURand.
            let last = if c <= 1000 {
                last_name((c - 1) as u32)
            } else {
                r.last_name()
            };
            let credit = if r.uniform(1, 10) == 1 { "BC" } else { "GC" };
            let row = format!(
                "({c},{d},{w},{},'OE',{},{},{},{},'{credit}',50000.00,{},-10.00,10.00,1,0,{})",
                q(&r.astring(8, 16)),
                q(&last),
                self.address(r),
                q(&r.nstring(16, 16)),
                self.now,
                Numeric {
                    units: r.uniform(0, 5000),
                    scale: 4
                },
                q(&r.astring(300, 500)),
            );
            b.push(Table::Customer, row).await?;
            let history = format!(
                "({c},{d},{w},{d},{w},{},10.00,{})",
                self.now,
                q(&r.astring(12, 24))
            );
            b.push(Table::History, history).await?;
        }
        Ok(())
    }

    async fn orders(&self, r: &mut TpccRng, b: &mut Batches<'_>, w: i32, d: i32) -> Result<()> {
        let customers = r.permutation(CUSTOMERS_PER_DISTRICT);
        for (o, c) in (1..=CUSTOMERS_PER_DISTRICT).zip(customers) {
            let delivered = o < FIRST_UNDELIVERED_ORDER;
            let ol_cnt = r.int(5, 15);
            let carrier = if delivered {
                r.int(1, 10).to_string()
            } else {
                "NULL".into()
            };
            let row = format!("({o},{d},{w},{c},{},{carrier},{ol_cnt},1)", self.now);
            b.push(Table::Order, row).await?;
            for n in 1..=ol_cnt {
                let (delivery, amount) = if delivered {
                    (self.now.as_str(), Numeric::cents(0))
                } else {
                    ("NULL", Numeric::cents(r.uniform(1, 999_999)))
                };
                let row = format!(
                    "({o},{d},{w},{n},{},{w},{delivery},5,{amount},{})",
                    r.int(1, ITEMS),
                    q(&r.astring(24, 24)),
                );
                b.push(Table::OrderLine, row).await?;
            }
            if !delivered {
                b.push(Table::NewOrder, format!("({o},{d},{w})")).await?;
            }
        }
        Ok(())
    }
}

/// `n` random upper-case letters (a state code).
fn letters(r: &mut TpccRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + r.uniform(0, 25) as u8))
        .collect()
}

/// A string as an SQL literal.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The tables rows are batched for, with their INSERT heads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Table {
    Item,
    Warehouse,
    District,
    Stock,
    Customer,
    History,
    Order,
    OrderLine,
    NewOrder,
}

impl Table {
    const ALL: [Table; 9] = [
        Table::Item,
        Table::Warehouse,
        Table::District,
        Table::Stock,
        Table::Customer,
        Table::History,
        Table::Order,
        Table::OrderLine,
        Table::NewOrder,
    ];

    fn insert_head(self) -> &'static str {
        match self {
            Table::Item => "INSERT INTO item (i_id, i_im_id, i_name, i_price, i_data) VALUES ",
            Table::Warehouse => {
                "INSERT INTO warehouse (w_id, w_name, w_street_1, w_street_2, w_city, w_state, \
                 w_zip, w_tax, w_ytd) VALUES "
            }
            Table::District => {
                "INSERT INTO district (d_id, d_w_id, d_name, d_street_1, d_street_2, d_city, \
                 d_state, d_zip, d_tax, d_ytd, d_next_o_id) VALUES "
            }
            Table::Stock => {
                "INSERT INTO stock (s_i_id, s_w_id, s_quantity, s_dist_01, s_dist_02, s_dist_03, \
                 s_dist_04, s_dist_05, s_dist_06, s_dist_07, s_dist_08, s_dist_09, s_dist_10, \
                 s_ytd, s_order_cnt, s_remote_cnt, s_data) VALUES "
            }
            Table::Customer => {
                "INSERT INTO customer (c_id, c_d_id, c_w_id, c_first, c_middle, c_last, \
                 c_street_1, c_street_2, c_city, c_state, c_zip, c_phone, c_since, c_credit, \
                 c_credit_lim, c_discount, c_balance, c_ytd_payment, c_payment_cnt, \
                 c_delivery_cnt, c_data) VALUES "
            }
            Table::History => {
                "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, \
                 h_amount, h_data) VALUES "
            }
            Table::Order => {
                "INSERT INTO oorder (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, \
                 o_ol_cnt, o_all_local) VALUES "
            }
            Table::OrderLine => {
                "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, \
                 ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) VALUES "
            }
            Table::NewOrder => "INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ",
        }
    }
}

/// Pending rows per table, sent as one INSERT when `batch_size` are pending.
struct Batches<'a> {
    client: &'a Client,
    batch_size: usize,
    bar: &'a ProgressBar,
    pending: Vec<(Table, Vec<String>)>,
    rows: u64,
}

impl<'a> Batches<'a> {
    fn new(client: &'a Client, batch_size: usize, bar: &'a ProgressBar) -> Batches<'a> {
        Batches {
            client,
            batch_size,
            bar,
            pending: Table::ALL.iter().map(|&t| (t, Vec::new())).collect(),
            rows: 0,
        }
    }

    async fn push(&mut self, table: Table, row: String) -> Result<()> {
        let idx = Table::ALL.iter().position(|&t| t == table).unwrap_or(0);
        self.pending[idx].1.push(row);
        if self.pending[idx].1.len() >= self.batch_size {
            self.flush(idx).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, idx: usize) -> Result<()> {
        let (table, rows) = &mut self.pending[idx];
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(table.insert_head());
        sql.push_str(&rows.join(","));
        let n = rows.len() as u64;
        rows.clear();
        self.client
            .batch_execute(&sql)
            .await
            .context(format!("loading {:?} rows", table))?;
        self.rows += n;
        self.bar.inc(n);
        Ok(())
    }

    /// Sends what is pending and returns the rows inserted.
    async fn finish(mut self) -> Result<u64> {
        for idx in 0..self.pending.len() {
            self.flush(idx).await?;
        }
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_cover_every_row_once() {
        let units = units(2);
        let stock: Vec<_> = units
            .iter()
            .filter_map(|u| match u {
                Unit::Stock { w, from } => Some((*w, *from)),
                _ => None,
            })
            .collect();
        assert_eq!(stock.len(), 20);
        assert_eq!(
            units
                .iter()
                .filter(|u| matches!(u, Unit::Items { .. }))
                .count(),
            10
        );
        let mut streams: Vec<u64> = units.iter().map(|u| u.stream()).collect();
        streams.sort_unstable();
        streams.dedup();
        assert_eq!(
            streams.len(),
            units.len(),
            "random streams must be distinct"
        );
    }

    #[test]
    fn estimate_counts_a_warehouse() {
        // 100k items + 1 warehouse, 100k stock, 10 districts × (3000 × 3 + 30000 + 900 + 1).
        assert_eq!(estimated_rows(1), 100_000 + 1 + 100_000 + 10 * 39_901);
    }
}
