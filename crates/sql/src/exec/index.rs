//! The write set of a DML statement: row and index entry puts and deletes, built so that the
//! whole statement is one conditional write.
//!
//! Every change of a row is "delete the old row's keys, put the new row's keys"; all deletes
//! are collected before puts are judged, so a statement that moves keys around (swapping two
//! primary keys, say) neither conflicts with itself nor needs an order. A put of a primary key or
//! of a unique index key that this statement does not also delete carries a NotExists
//! condition: the tablet then rejects the write if another row holds that key (23505). Two puts
//! of one such key within the statement are a duplicate as well.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meridian_clock::Timestamp;
use meridian_tablet::{Condition, Mutation, Span, WriteRequest};

use crate::api::{Datum, SqlError};
use crate::catalog::{IndexDesc, TableDesc};
use crate::keys;

/// Puts and deletes of one table's rows and index entries.
pub(crate) struct WriteSet {
    table: Arc<TableDesc>,
    deletes: BTreeSet<Vec<u8>>,
    puts: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Put keys that must not hold another row's entry (primary and unique keys).
    unique: BTreeSet<Vec<u8>>,
}

impl WriteSet {
    pub(crate) fn new(table: Arc<TableDesc>) -> WriteSet {
        WriteSet {
            table,
            deletes: BTreeSet::new(),
            puts: BTreeMap::new(),
            unique: BTreeSet::new(),
        }
    }

    /// Removes `row` and its index entries.
    pub(crate) fn delete(&mut self, row: &[Datum]) {
        let t = self.table.clone();
        self.deletes.insert(keys::row_key(&t, row));
        for ix in &t.indexes {
            self.deletes.insert(keys::index_entry(&t, ix, row).0);
        }
    }

    /// Writes `row` and its index entries; fails on a second put of a primary or unique key.
    pub(crate) fn put(&mut self, row: &[Datum]) -> Result<(), SqlError> {
        let t = self.table.clone();
        let key = keys::row_key(&t, row);
        if self.unique.contains(&key) {
            let pk: Vec<Datum> = t.pk.iter().map(|&i| row[i].clone()).collect();
            return Err(SqlError::unique_violation(&t, &pk));
        }
        self.unique.insert(key.clone());
        self.puts.insert(key, keys::row_value(&t, row));
        for ix in &t.indexes {
            let (k, v) = keys::index_entry(&t, ix, row);
            if keys::index_entry_is_unique(ix, row) {
                if self.unique.contains(&k) {
                    return Err(index_violation(&t, ix, row));
                }
                self.unique.insert(k.clone());
            }
            self.puts.insert(k, v);
        }
        Ok(())
    }

    /// Whether the statement changes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.puts.is_empty()
    }

    /// The write: unchanged entries are left alone, deleted keys that are not written again are
    /// deleted, new primary and unique keys must not exist.
    pub(crate) fn into_request(self, read_ts: Timestamp, read_spans: Vec<Span>) -> WriteRequest {
        let mut req = WriteRequest {
            read_ts: Some(read_ts),
            read_spans,
            ..Default::default()
        };
        for k in &self.deletes {
            if !self.puts.contains_key(k) {
                req.mutations.push(Mutation::Delete { key: k.clone() });
            }
        }
        for (k, v) in self.puts {
            if self.unique.contains(&k) && !self.deletes.contains(&k) {
                req.conditions.push(Condition::NotExists(k.clone()));
            }
            req.mutations.push(Mutation::Put { key: k, value: v });
        }
        req
    }
}

/// 23505 for a unique index of `table` and the row that would violate it.
pub(crate) fn index_violation(table: &TableDesc, ix: &IndexDesc, row: &[Datum]) -> SqlError {
    let values: Vec<Datum> = ix.columns.iter().map(|(c, _)| row[*c].clone()).collect();
    SqlError::unique_index_violation(table, ix, &values)
}
