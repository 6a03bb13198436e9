//! The public surface of the SQL layer used by the wire protocol servers and tests.
//! (Signatures fixed here; implementations live in the rest of the crate.)

use std::fmt;

use meridian_storage::keycode::Decimal;

/// SQL data types supported by Meridian, with their PostgreSQL OIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// BOOLEAN (oid 16).
    Bool,
    /// SMALLINT (oid 21).
    Int2,
    /// INT / INTEGER (oid 23).
    Int4,
    /// BIGINT (oid 20).
    Int8,
    /// DOUBLE PRECISION / FLOAT (oid 701).
    Float8,
    /// TEXT / VARCHAR (oid 25).
    Text,
    /// TIMESTAMP without time zone (oid 1114).
    Timestamp,
    /// NUMERIC / DECIMAL, exact (oid 1700).
    Numeric,
    /// DATE (oid 1082).
    Date,
    /// TIMESTAMP WITH TIME ZONE (oid 1184).
    TimestampTz,
    /// INTERVAL (oid 1186).
    Interval,
    /// UUID (oid 2950).
    Uuid,
    /// BYTEA (oid 17).
    Bytea,
}

impl SqlType {
    /// The PostgreSQL type OID.
    pub fn pg_oid(self) -> u32 {
        match self {
            SqlType::Bool => 16,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Int8 => 20,
            SqlType::Float8 => 701,
            SqlType::Text => 25,
            SqlType::Timestamp => 1114,
            SqlType::Numeric => 1700,
            SqlType::Date => 1082,
            SqlType::TimestampTz => 1184,
            SqlType::Interval => 1186,
            SqlType::Uuid => 2950,
            SqlType::Bytea => 17,
        }
    }

    /// The PostgreSQL type name, as `format_type` prints it.
    pub fn pg_name(self) -> &'static str {
        match self {
            SqlType::Bool => "boolean",
            SqlType::Int2 => "smallint",
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Float8 => "double precision",
            SqlType::Text => "text",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::Numeric => "numeric",
            SqlType::Date => "date",
            SqlType::TimestampTz => "timestamp with time zone",
            SqlType::Interval => "interval",
            SqlType::Uuid => "uuid",
            SqlType::Bytea => "bytea",
        }
    }
}

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// NULL of any type.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// SMALLINT, INT and BIGINT values (the column type says which).
    Int(i64),
    /// DOUBLE PRECISION.
    Float(f64),
    /// TEXT.
    Text(String),
    /// TIMESTAMP: microseconds since 1970-01-01 00:00:00 (no time zone).
    Timestamp(i64),
    /// NUMERIC: the exact value and its display scale (the number of fraction digits it prints
    /// with: `1.50` is `(1.5, 2)`).
    Numeric(Decimal, u16),
    /// DATE: days since 1970-01-01.
    Date(i32),
    /// TIMESTAMPTZ: microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// INTERVAL.
    Interval(Interval),
    /// UUID, as a 128-bit number (big-endian byte order).
    Uuid(u128),
    /// BYTEA.
    Bytea(Vec<u8>),
}

/// An INTERVAL: months, days and microseconds are kept apart, as in PostgreSQL (a month and a
/// day have no fixed length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Months (years are 12 months).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

impl Datum {
    /// The value in PostgreSQL's text output format (`None` for NULL), exactly as psql shows it:
    /// booleans `t`/`f`, floats in shortest round-trip form (`Infinity`, `NaN`), timestamps
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`, numerics with their display scale.
    pub fn to_pg_text(&self) -> Option<String> {
        crate::datum_text::to_pg_text(self)
    }
}

/// Name and type of a result column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Column name as PostgreSQL would label it (`?column?` for unnamed expressions).
    pub name: String,
    /// Its type.
    pub ty: SqlType,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementResult {
    /// A statement returning rows (SELECT, ... RETURNING).
    Query {
        /// Result columns.
        columns: Vec<ColumnInfo>,
        /// Rows; each has one datum per column.
        rows: Vec<Vec<Datum>>,
    },
    /// A statement without a result set.
    Command {
        /// The PostgreSQL command tag, e.g. `INSERT 0 2`, `CREATE TABLE`, `DELETE 1`.
        tag: String,
    },
    /// `COPY ... FROM STDIN`: the client sends the data next; pass it to
    /// [`crate::Session::copy_in`].
    CopyIn(crate::copy::CopyIn),
    /// `COPY ... TO STDOUT`: the data, one formatted line (with its newline) per element.
    CopyOut {
        /// Number of rows.
        rows: u64,
        /// The lines.
        lines: Vec<Vec<u8>>,
    },
}

/// An error to report to a SQL client, with its PostgreSQL SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Five-character SQLSTATE, e.g. `42P01`.
    pub code: &'static str,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
    /// 1-based character position in the statement text, when known.
    pub position: Option<u32>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERROR: {} (SQLSTATE {})", self.message, self.code)
    }
}

impl std::error::Error for SqlError {}
