//! The catalog: table descriptors stored in the keyspace itself.
//!
//! ```text
//!  /sys/catalog/next_table_id        -> u64, big-endian: the next table id to hand out
//!  /sys/catalog/tables/<name>        -> TableDescriptor (protobuf): a table or a view
//!  /sys/catalog/indexes/<name>       -> name of the table owning index <name>
//!  /sys/catalog/sequences/<name>     -> SequenceDescriptor (protobuf)
//!  /sys/catalog/stats/<table id>     -> TableStatistics (protobuf; see `stats/`)
//!  /sys/sequence_values/<name>       -> i64, big-endian: the sequence's last value
//! ```
//!
//! Indexes are part of their table's descriptor; the index name keys make index names unique
//! among all relations (as in PostgreSQL, where tables, views and indexes share a namespace)
//! and let `DROP INDEX` find the table.
//!
//! Names map straight to descriptors, so resolving a table is one point read at the
//! statement's snapshot; DDL is transactional because it is an ordinary conditional write. The
//! counter is read and rewritten by every CREATE TABLE with the counter key in the write's read
//! spans, so two concurrent CREATE TABLEs cannot both take the same id: the second one fails
//! validation with a write conflict and is retried. Ids are never reused, so a dropped table's
//! key range is never read again by a new table.
//!
//! All system keys start with `/sys/`, which sorts before the `/t/` prefix of table data
//! (`s` < `t`).

use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_proto::v1::{
    CheckConstraint, ColumnDescriptor, IndexDescriptor, SequenceDescriptor, TableDescriptor,
};
use meridian_tablet::KvClient;
use prost::Message;

use crate::api::SqlType;
use crate::error::{Error, Result};
use crate::types::{self, TypeSpec};

/// Prefix of the name -> descriptor keys.
pub(crate) const TABLES_PREFIX: &[u8] = b"/sys/catalog/tables/";
/// The table id counter.
pub(crate) const TABLE_ID_COUNTER_KEY: &[u8] = b"/sys/catalog/next_table_id";
/// The first id given to a user table; smaller ids are reserved for system tables.
pub(crate) const FIRST_TABLE_ID: u64 = 100;

/// A column of a table descriptor, with its type resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnDesc {
    /// Stable column id (never reused within a table).
    pub id: u32,
    /// Name (already case-folded as PostgreSQL does).
    pub name: String,
    /// Type.
    pub ty: SqlType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// `VARCHAR(n)` limit.
    pub max_len: Option<u32>,
    /// SQL text of the DEFAULT expression.
    pub default_expr: Option<String>,
    /// A system-added column (`rowid`), not expanded by `*`.
    pub hidden: bool,
    /// The sequence of a SERIAL column, dropped with the table.
    pub owned_sequence: Option<String>,
    /// `NUMERIC(precision, scale)`.
    pub numeric: Option<(u16, u16)>,
    /// `CHAR(n)`: blank-padded to `max_len`.
    pub fixed: bool,
}

impl ColumnDesc {
    /// A nullable column of type `ty` without length limit, default or constraints.
    pub(crate) fn plain(id: u32, name: String, ty: SqlType) -> ColumnDesc {
        ColumnDesc {
            id,
            name,
            ty,
            nullable: true,
            max_len: None,
            fixed: false,
            default_expr: None,
            hidden: false,
            owned_sequence: None,
            numeric: None,
        }
    }

    /// The column's type with its length limit.
    pub(crate) fn spec(&self) -> TypeSpec {
        TypeSpec {
            ty: self.ty,
            max_len: self.max_len,
            numeric: self.numeric,
            fixed: self.fixed,
        }
    }
}

/// A secondary index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexDesc {
    /// The `<index_id>` of its keys (the primary index is 1).
    pub id: u32,
    /// Name (unique among all relations).
    pub name: String,
    /// Rejects two rows with equal, non-NULL key columns.
    pub unique: bool,
    /// Key columns (positions into the table's columns) and whether each is DESC.
    pub columns: Vec<(usize, bool)>,
    /// INCLUDE / STORING columns kept in the entry's value.
    pub stored: Vec<usize>,
}

impl IndexDesc {
    /// Whether an entry holds column `c` (as a key column, a primary key column or a stored
    /// column of `table`).
    pub(crate) fn holds(&self, table: &TableDesc, c: usize) -> bool {
        self.columns.iter().any(|(k, _)| *k == c)
            || table.pk.contains(&c)
            || self.stored.contains(&c)
    }
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckDesc {
    /// Constraint name (`<table>_<column>_check` unless named).
    pub name: String,
    /// SQL text of the condition.
    pub expr: String,
}

/// A table descriptor, validated and with derived lookups.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableDesc {
    /// Table id: the `<table_id>` of its keys.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Columns in declaration order; rows are vectors in this order.
    pub columns: Vec<ColumnDesc>,
    /// Positions of the primary key columns, in key order.
    pub pk: Vec<usize>,
    /// Schema version.
    pub version: u64,
    /// Positions of the columns stored in the row value (not in the key), in order.
    pub non_key: Vec<usize>,
    /// Secondary indexes.
    pub indexes: Vec<IndexDesc>,
    /// The id the next index gets.
    pub next_index_id: u32,
    /// For a view: the SQL text of its query.
    pub view: Option<String>,
    /// CHECK constraints.
    pub checks: Vec<CheckDesc>,
    /// The planner's statistics of the table, when it has any. Not part of the stored
    /// descriptor: the session attaches them when it loads descriptors for planning (see
    /// `stats/`).
    pub stats: Option<Arc<crate::stats::TableStats>>,
}

impl TableDesc {
    /// Builds and validates a descriptor.
    pub(crate) fn new(
        id: u64,
        name: String,
        columns: Vec<ColumnDesc>,
        pk: Vec<usize>,
        version: u64,
    ) -> Result<TableDesc> {
        if pk.is_empty() || pk.iter().any(|&i| i >= columns.len()) {
            return Err(Error::Corrupt(format!(
                "table {name:?}: invalid primary key {pk:?}"
            )));
        }
        let non_key = (0..columns.len()).filter(|i| !pk.contains(i)).collect();
        Ok(TableDesc {
            id,
            name,
            columns,
            pk,
            version,
            non_key,
            indexes: Vec::new(),
            next_index_id: 2,
            view: None,
            checks: Vec::new(),
            stats: None,
        })
    }

    /// Recomputes the derived lookups after the columns or primary key changed.
    pub(crate) fn rebuild(mut t: TableDesc) -> Result<TableDesc> {
        if t.pk.is_empty() || t.pk.iter().any(|&i| i >= t.columns.len()) {
            return Err(Error::Corrupt(format!(
                "table {:?}: invalid primary key {:?}",
                t.name, t.pk
            )));
        }
        t.non_key = (0..t.columns.len()).filter(|i| !t.pk.contains(i)).collect();
        Ok(t)
    }

    /// Decodes a stored descriptor.
    pub(crate) fn from_proto(p: TableDescriptor) -> Result<TableDesc> {
        let columns = p
            .columns
            .into_iter()
            .map(|c| {
                let ty = types::from_proto(c.r#type).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "column {:?} has unknown type code {}",
                        c.name, c.r#type
                    ))
                })?;
                Ok(ColumnDesc {
                    id: c.id,
                    name: c.name,
                    ty,
                    nullable: c.nullable,
                    max_len: (c.max_length > 0).then_some(c.max_length),
                    fixed: c.fixed_length,
                    default_expr: (!c.default_expr.is_empty()).then_some(c.default_expr),
                    hidden: c.hidden,
                    owned_sequence: (!c.owned_sequence.is_empty()).then_some(c.owned_sequence),
                    numeric: (c.numeric_precision > 0)
                        .then_some((c.numeric_precision as u16, c.numeric_scale as u16)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pk = p.primary_key.iter().map(|&i| i as usize).collect();
        let width = columns.len();
        let mut t = if p.view_query.is_empty() {
            TableDesc::new(p.id, p.name, columns, pk, p.version)?
        } else {
            let mut t = TableDesc::new(p.id, p.name, columns, vec![0], p.version)?;
            t.pk.clear();
            t.non_key.clear();
            t.view = Some(p.view_query);
            t
        };
        let in_range = |i: u32| {
            let i = i as usize;
            if i < width {
                Ok(i)
            } else {
                Err(Error::Corrupt(format!(
                    "table {:?}: index column {i} out of range",
                    t.name
                )))
            }
        };
        for ix in p.indexes {
            if ix.columns.len() != ix.descending.len() || ix.columns.is_empty() {
                return Err(Error::Corrupt(format!(
                    "table {:?}: index {:?} is malformed",
                    t.name, ix.name
                )));
            }
            let columns = ix
                .columns
                .iter()
                .zip(&ix.descending)
                .map(|(&c, &d)| Ok((in_range(c)?, d)))
                .collect::<Result<Vec<_>>>()?;
            let stored = ix
                .stored
                .iter()
                .map(|&c| in_range(c))
                .collect::<Result<Vec<_>>>()?;
            t.indexes.push(IndexDesc {
                id: ix.id,
                name: ix.name,
                unique: ix.unique,
                columns,
                stored,
            });
        }
        t.next_index_id = p.next_index_id.max(2);
        t.checks = p
            .checks
            .into_iter()
            .map(|c| CheckDesc {
                name: c.name,
                expr: c.expr,
            })
            .collect();
        Ok(t)
    }

    /// The protobuf form stored in the catalog.
    pub(crate) fn to_proto(&self) -> TableDescriptor {
        TableDescriptor {
            id: self.id,
            name: self.name.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| ColumnDescriptor {
                    id: c.id,
                    name: c.name.clone(),
                    r#type: types::to_proto(c.ty) as i32,
                    nullable: c.nullable,
                    max_length: c.max_len.unwrap_or(0),
                    default_expr: c.default_expr.clone().unwrap_or_default(),
                    hidden: c.hidden,
                    owned_sequence: c.owned_sequence.clone().unwrap_or_default(),
                    numeric_precision: c.numeric.map_or(0, |(p, _)| u32::from(p)),
                    numeric_scale: c.numeric.map_or(0, |(_, s)| u32::from(s)),
                    fixed_length: c.fixed,
                })
                .collect(),
            primary_key: self.pk.iter().map(|&i| i as u32).collect(),
            version: self.version,
            indexes: self
                .indexes
                .iter()
                .map(|ix| IndexDescriptor {
                    id: ix.id,
                    name: ix.name.clone(),
                    unique: ix.unique,
                    columns: ix.columns.iter().map(|(c, _)| *c as u32).collect(),
                    descending: ix.columns.iter().map(|(_, d)| *d).collect(),
                    stored: ix.stored.iter().map(|&c| c as u32).collect(),
                })
                .collect(),
            next_index_id: self.next_index_id,
            view_query: self.view.clone().unwrap_or_default(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckConstraint {
                    name: c.name.clone(),
                    expr: c.expr.clone(),
                })
                .collect(),
        }
    }

    /// Whether this is a view.
    pub(crate) fn is_view(&self) -> bool {
        self.view.is_some()
    }

    /// The index called `name`.
    pub(crate) fn index_named(&self, name: &str) -> Option<usize> {
        self.indexes.iter().position(|i| i.name == name)
    }

    /// True when the primary key is the hidden `rowid` column.
    pub(crate) fn has_hidden_key(&self) -> bool {
        self.pk.len() == 1 && self.columns[self.pk[0]].hidden
    }

    /// The name of the primary key constraint (`<table>_pkey`).
    pub(crate) fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// Position of the column called `name`.
    pub(crate) fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Prefix of the sequence descriptors (sequence names share the namespace of tables).
pub(crate) const SEQUENCES_PREFIX: &[u8] = b"/sys/catalog/sequences/";
/// Prefix of sequence values: the last value handed out, 8 bytes big-endian.
pub(crate) const SEQUENCE_VALUES_PREFIX: &[u8] = b"/sys/sequence_values/";

/// A sequence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SequenceDesc {
    pub name: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
}

impl SequenceDesc {
    fn to_proto(&self) -> SequenceDescriptor {
        SequenceDescriptor {
            id: 0,
            name: self.name.clone(),
            start: self.start,
            increment: self.increment,
            min_value: self.min,
            max_value: self.max,
            cycle: self.cycle,
        }
    }
}

/// The catalog key of sequence `name`.
pub(crate) fn sequence_key(name: &str) -> Vec<u8> {
    let mut k = SEQUENCES_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key holding sequence `name`'s last value.
pub(crate) fn sequence_value_key(name: &str) -> Vec<u8> {
    let mut k = SEQUENCE_VALUES_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The stored form of a sequence descriptor.
pub(crate) fn encode_sequence(s: &SequenceDesc) -> Vec<u8> {
    s.to_proto().encode_to_vec()
}

/// Sequence `name` as of `ts`.
pub(crate) async fn get_sequence(
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<SequenceDesc>> {
    let Some(bytes) = kv.get(&sequence_key(name), ts).await.map_err(Error::Read)? else {
        return Ok(None);
    };
    let p = SequenceDescriptor::decode(bytes.as_slice())
        .map_err(|e| Error::Corrupt(format!("descriptor of sequence {name:?}: {e}")))?;
    Ok(Some(SequenceDesc {
        name: p.name,
        start: p.start,
        increment: p.increment,
        min: p.min_value,
        max: p.max_value,
        cycle: p.cycle,
    }))
}

/// Prefix of the index name -> table name keys (index names share the namespace of tables).
pub(crate) const INDEXES_PREFIX: &[u8] = b"/sys/catalog/indexes/";

/// The catalog key naming the table that owns index `name`.
pub(crate) fn index_key(name: &str) -> Vec<u8> {
    let mut k = INDEXES_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The table owning index `name` as of `ts`.
pub(crate) async fn index_owner(
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<String>> {
    let Some(bytes) = kv.get(&index_key(name), ts).await.map_err(Error::Read)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Corrupt(format!("owner of index {name:?} is not UTF-8")))
}

/// The catalog key holding the descriptor of table `name`.
pub(crate) fn table_key(name: &str) -> Vec<u8> {
    let mut k = TABLES_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The table name whose descriptor lives under `key`, if `key` is such a key.
pub(crate) fn table_name_of_key(key: &[u8]) -> Option<String> {
    let name = key.strip_prefix(TABLES_PREFIX)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Reads the descriptor of `name` as of `ts`.
pub(crate) async fn get_table(
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<Arc<TableDesc>>> {
    Ok(read_table(kv, name, ts).await?.map(Arc::new))
}

/// [`get_table`], for a caller that completes the descriptor before sharing it.
pub(crate) async fn read_table(
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<TableDesc>> {
    match read_table_bytes(kv, name, ts).await? {
        Some(bytes) => decode_table(name, &bytes).map(Some),
        None => Ok(None),
    }
}

/// The stored descriptor of table `name` as of `ts`, not decoded (see [`decode_table`]).
pub(crate) async fn read_table_bytes(
    kv: &dyn KvClient,
    name: &str,
    ts: Timestamp,
) -> Result<Option<Vec<u8>>> {
    kv.get(&table_key(name), ts).await.map_err(Error::Read)
}

/// The descriptor of table `name` stored as `bytes`.
pub(crate) fn decode_table(name: &str, bytes: &[u8]) -> Result<TableDesc> {
    let proto = TableDescriptor::decode(bytes)
        .map_err(|e| Error::Corrupt(format!("descriptor of table {name:?}: {e}")))?;
    TableDesc::from_proto(proto)
}

/// Every pair whose key starts with `prefix` (a system prefix), as of `ts`, in key order.
pub(crate) async fn scan_prefix(
    kv: &dyn KvClient,
    prefix: &[u8],
    ts: Timestamp,
) -> Result<Vec<meridian_tablet::KvPair>> {
    let end = meridian_storage::keycode::prefix_successor(prefix)
        .ok_or_else(|| Error::Internal(format!("prefix {prefix:?} has no successor")))?;
    kv.scan(prefix, &end, ts, None).await.map_err(Error::Read)
}

/// Names of all tables as of `ts`, in name order.
pub(crate) async fn list_tables(kv: &dyn KvClient, ts: Timestamp) -> Result<Vec<String>> {
    let pairs = scan_prefix(kv, TABLES_PREFIX, ts).await?;
    Ok(pairs
        .iter()
        .filter_map(|(k, _)| table_name_of_key(k))
        .collect())
}

/// The next table id as of `ts` (the value to use for a new table).
pub(crate) async fn next_table_id(kv: &dyn KvClient, ts: Timestamp) -> Result<u64> {
    match kv
        .get(TABLE_ID_COUNTER_KEY, ts)
        .await
        .map_err(Error::Read)?
    {
        None => Ok(FIRST_TABLE_ID),
        Some(bytes) => {
            let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                Error::Corrupt(format!("table id counter has {} bytes, not 8", bytes.len()))
            })?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

/// The stored form of the table id counter.
pub(crate) fn encode_counter(next: u64) -> Vec<u8> {
    next.to_be_bytes().to_vec()
}

/// The stored form of a descriptor.
pub(crate) fn encode_descriptor(desc: &TableDesc) -> Vec<u8> {
    desc.to_proto().encode_to_vec()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `t(a INT4 NOT NULL, b TEXT, c INT8 NOT NULL, PRIMARY KEY (c, a))`.
    pub(crate) fn sample() -> TableDesc {
        let col = |id, name: &str, ty, nullable| ColumnDesc {
            id,
            name: name.into(),
            ty,
            nullable,
            max_len: None,
            fixed: false,
            default_expr: None,
            hidden: false,
            owned_sequence: None,
            numeric: None,
        };
        TableDesc::new(
            100,
            "t".into(),
            vec![
                col(1, "a", SqlType::Int4, false),
                col(2, "b", SqlType::Text, true),
                col(3, "c", SqlType::Int8, false),
            ],
            vec![2, 0],
            1,
        )
        .unwrap()
    }

    #[test]
    fn descriptor_round_trips_through_protobuf() {
        let mut d = sample();
        d.columns[1].max_len = Some(12);
        d.columns[1].default_expr = Some("'x'".into());
        let bytes = encode_descriptor(&d);
        let back =
            TableDesc::from_proto(TableDescriptor::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.non_key, vec![1]);
    }

    #[test]
    fn invalid_descriptors_are_rejected() {
        let mut p = sample().to_proto();
        p.primary_key = vec![7];
        assert!(TableDesc::from_proto(p.clone()).is_err());
        p.primary_key = vec![0];
        p.columns[0].r#type = 42;
        assert!(TableDesc::from_proto(p).is_err());
    }

    #[test]
    fn system_keys_sort_before_table_data() {
        assert!(table_key("zzz").as_slice() < crate::keys::TABLE_DATA_PREFIX);
        assert!(TABLE_ID_COUNTER_KEY < crate::keys::TABLE_DATA_PREFIX);
        assert_eq!(
            table_name_of_key(&table_key("Mixed Case")).as_deref(),
            Some("Mixed Case")
        );
        assert_eq!(table_name_of_key(b"/t/abc"), None);
    }
}
