//! Random tables and their rows: small value domains (so that joins and comparisons match
//! often), columns with anything from no NULLs to nine in ten, a primary key and a secondary
//! index per table.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::ast::Ty;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    /// The declared type, e.g. `NUMERIC(8,2)`.
    pub decl: &'static str,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// Column 0 is the primary key `id`.
    pub columns: Vec<Column>,
    /// Columns of the secondary index, with DESC flags.
    pub index: Vec<(usize, bool)>,
    /// One SQL literal per column (`NULL` for NULL).
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub tables: Vec<Table>,
    /// Whether the setup ends with ANALYZE, so that queries are planned with statistics.
    pub analyze: bool,
}

/// Text values: ASCII in mixed case, LIKE's special characters, blanks, the empty string and
/// one multi-byte character without case (a non-ASCII letter with case would meet the
/// documented case-mapping difference, see `meridian_sql`'s crate docs).
pub const TEXTS: &[&str] = &[
    "",
    "a",
    "A",
    "ab",
    "abc",
    "b",
    "ba",
    "B%",
    "a_c",
    "hello",
    "Hello World",
    " pad ",
    "x",
    "zz",
    "日",
    "10",
    "a b",
];

pub const NUMERICS: &[&str] = &[
    "0", "1.5", "-2.25", "3.125", "10", "0.01", "-0.5", "99.99", "2.50", "7", "-3", "1.005",
];

pub fn int4(rng: &mut StdRng) -> String {
    rng.random_range(-5..=20).to_string()
}

pub fn int8(rng: &mut StdRng) -> String {
    if rng.random_bool(0.7) {
        rng.random_range(-5..=20).to_string()
    } else {
        let v: i64 = rng.random_range(3_000_000_000..9_000_000_000_000);
        if rng.random_bool(0.3) { -v } else { v }.to_string()
    }
}

pub fn numeric(rng: &mut StdRng) -> String {
    if rng.random_bool(0.6) {
        NUMERICS.choose(rng).unwrap().to_string()
    } else {
        let scale = rng.random_range(0..=3);
        let v: i64 = rng.random_range(-5000..5000);
        if scale == 0 {
            v.to_string()
        } else {
            let p = 10i64.pow(scale);
            let sign = if v < 0 { "-" } else { "" };
            format!(
                "{sign}{}.{:0w$}",
                v.abs() / p,
                v.abs() % p,
                w = scale as usize
            )
        }
    }
}

/// Floats: mostly eighths, which binary represents exactly (so their sums are exact), and a
/// few large and small values.
pub fn float(rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        ["1000000", "0.001", "-1e10"]
            .choose(rng)
            .unwrap()
            .to_string()
    } else {
        let v = rng.random_range(-80..=80) as f64 / 8.0;
        format!("{v}")
    }
}

pub fn text(rng: &mut StdRng) -> String {
    format!("'{}'", TEXTS.choose(rng).unwrap())
}

pub fn date(rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        ["'2000-02-29'", "'1999-12-31'", "'2024-12-31'"]
            .choose(rng)
            .unwrap()
            .to_string()
    } else {
        format!("'2024-01-{:02}'", rng.random_range(1..=28))
    }
}

/// A random value of `ty` as a literal that both systems read as that type in an INSERT.
pub fn value(rng: &mut StdRng, ty: Ty) -> String {
    match ty {
        Ty::Int4 => int4(rng),
        Ty::Int8 => int8(rng),
        Ty::Numeric => numeric(rng),
        Ty::Float => float(rng),
        Ty::Text => text(rng),
        Ty::Bool => if rng.random_bool(0.5) {
            "TRUE"
        } else {
            "FALSE"
        }
        .to_string(),
        Ty::Date => date(rng),
    }
}

const TYPES: &[(Ty, &str, &str)] = &[
    (Ty::Int4, "INT", "i"),
    (Ty::Int8, "BIGINT", "b"),
    (Ty::Numeric, "NUMERIC", "n"),
    (Ty::Numeric, "NUMERIC(8,2)", "m"),
    (Ty::Float, "DOUBLE PRECISION", "f"),
    (Ty::Text, "TEXT", "s"),
    (Ty::Bool, "BOOLEAN", "p"),
    (Ty::Date, "DATE", "d"),
];

fn table(rng: &mut StdRng, name: String) -> Table {
    let mut columns = vec![Column {
        name: "id".into(),
        ty: Ty::Int4,
        decl: "INT",
    }];
    // Every table has an INT and a TEXT column, so that joins always find a partner.
    let mut picks = vec![TYPES[0], TYPES[5]];
    for _ in 0..rng.random_range(2..=4) {
        picks.push(*TYPES.choose(rng).unwrap());
    }
    for (i, (ty, decl, prefix)) in picks.into_iter().enumerate() {
        columns.push(Column {
            name: format!("{prefix}{}", i + 1),
            ty,
            decl,
        });
    }
    let index_col = rng.random_range(1..columns.len());
    let mut index = vec![(index_col, rng.random_bool(0.3))];
    if rng.random_bool(0.3) {
        let other = rng.random_range(1..columns.len());
        if other != index_col {
            index.push((other, rng.random_bool(0.3)));
        }
    }
    let null_rates: Vec<f64> = columns
        .iter()
        .map(|_| *[0.0, 0.1, 0.3, 0.6, 0.9].choose(rng).unwrap())
        .collect();
    let n = *[0, 1, 3, 10, 25, 40].choose(rng).unwrap();
    let mut rows = Vec::new();
    let mut id = 0;
    for _ in 0..n {
        id += rng.random_range(1..=3);
        let mut row = vec![id.to_string()];
        for (c, rate) in columns.iter().zip(&null_rates).skip(1) {
            row.push(if rng.random_bool(*rate) {
                "NULL".to_string()
            } else {
                value(rng, c.ty)
            });
        }
        rows.push(row);
    }
    Table {
        name,
        columns,
        index,
        rows,
    }
}

pub fn schema(rng: &mut StdRng) -> Schema {
    Schema {
        tables: (1..=3).map(|i| table(rng, format!("t{i}"))).collect(),
        analyze: false,
    }
}

impl Table {
    /// CREATE TABLE, CREATE INDEX and (if there are rows) one INSERT.
    pub fn setup_sql(&self) -> Vec<String> {
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pk = if i == 0 { " PRIMARY KEY" } else { "" };
                format!("{} {}{pk}", c.name, c.decl)
            })
            .collect();
        let mut out = vec![format!("CREATE TABLE {} ({})", self.name, cols.join(", "))];
        if !self.index.is_empty() {
            let keys: Vec<String> = self
                .index
                .iter()
                .map(|(c, desc)| {
                    let dir = if *desc { " DESC" } else { "" };
                    format!("{}{dir}", self.columns[*c].name)
                })
                .collect();
            out.push(format!(
                "CREATE INDEX {}_idx ON {} ({})",
                self.name,
                self.name,
                keys.join(", ")
            ));
        }
        out.extend(self.insert_sql());
        out
    }

    /// One INSERT of every row, if there are any.
    fn insert_sql(&self) -> Option<String> {
        if !self.rows.is_empty() {
            let rows: Vec<String> = self
                .rows
                .iter()
                .map(|r| format!("({})", r.join(", ")))
                .collect();
            return Some(format!(
                "INSERT INTO {} VALUES {}",
                self.name,
                rows.join(", ")
            ));
        }
        None
    }
}

impl Schema {
    pub fn setup_sql(&self) -> Vec<String> {
        let mut out: Vec<String> = self.tables.iter().flat_map(|t| t.setup_sql()).collect();
        if self.analyze {
            out.push("ANALYZE".to_string());
        }
        out
    }

    pub fn drop_sql(&self) -> String {
        let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
        format!("DROP TABLE IF EXISTS {}", names.join(", "))
    }
}
