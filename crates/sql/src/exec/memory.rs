//! Per-statement memory accounting.
//!
//! The operators that retain rows while they work (sorts, joins, hash aggregation, DISTINCT,
//! window buffers, set operations) take a [`Reservation`] from the statement's
//! [`MemoryPool`] and grow it by every row, key or state they keep. The pool's limit is the
//! session's `meridian.query_memory_limit`; a reservation that would take the statement past
//! it fails the statement with 53200, naming the operator, instead of letting it grow without
//! bound. A reservation is returned to the pool when the operator finishes (its output then
//! belongs to the operator above, which accounts for what it keeps), so the pool holds what
//! the operators at work at one moment retain. Nothing spills to disk.
//!
//! Sizes are estimates from the values themselves (a row's vector, its datums, their text,
//! bytes and digits; a hash table's keys and slots), not allocator counts: the same rows
//! always count the same, whatever the allocator does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::analyze::Profile;
use crate::api::{Datum, SqlError};

/// What a hash table spends per entry besides its key: the hash, the slot and the value it
/// maps to, roughly.
const HASH_ENTRY: usize = 32;

/// The memory one statement's operators may hold.
#[derive(Debug, Clone)]
pub(crate) struct MemoryPool(Arc<Pool>);

#[derive(Debug)]
struct Pool {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryPool {
    /// A pool of `limit` bytes.
    pub(crate) fn new(limit: usize) -> MemoryPool {
        MemoryPool(Arc::new(Pool {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }))
    }

    /// The limit, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.0.limit
    }

    /// The most the statement's operators held at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    /// An empty reservation for `operator` (its name as EXPLAIN prints it), reporting its
    /// peak to `report` (the profile and the plan node of EXPLAIN ANALYZE) when dropped.
    pub(crate) fn reserve(
        &self,
        operator: &'static str,
        report: Option<(Arc<Profile>, usize)>,
    ) -> Reservation {
        Reservation {
            pool: self.clone(),
            operator,
            bytes: 0,
            peak: 0,
            report,
        }
    }
}

/// Memory one operator holds, counted against its statement's pool until dropped.
pub(crate) struct Reservation {
    pool: MemoryPool,
    operator: &'static str,
    bytes: usize,
    peak: usize,
    report: Option<(Arc<Profile>, usize)>,
}

impl Reservation {
    /// Counts `bytes` more, or fails with 53200 when the statement would exceed its limit.
    pub(crate) fn grow(&mut self, bytes: usize) -> Result<(), SqlError> {
        let pool = &self.pool.0;
        let used = pool.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > pool.limit {
            pool.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(out_of_memory(
                self.operator,
                pool.limit,
                used - bytes,
                bytes,
            ));
        }
        pool.peak.fetch_max(used, Ordering::Relaxed);
        self.bytes += bytes;
        self.peak = self.peak.max(self.bytes);
        Ok(())
    }

    /// Counts `row`, kept whole.
    pub(crate) fn grow_row(&mut self, row: &[Datum]) -> Result<(), SqlError> {
        self.grow(row_bytes(row))
    }

    /// Counts every row of `rows`.
    pub(crate) fn grow_rows(&mut self, rows: &[Vec<Datum>]) -> Result<(), SqlError> {
        self.grow(rows.iter().map(|r| row_bytes(r)).sum())
    }

    /// Counts one entry of a hash table keyed by `key`.
    pub(crate) fn grow_key(&mut self, key: &[u8]) -> Result<(), SqlError> {
        self.grow(key_bytes(key))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.0.used.fetch_sub(self.bytes, Ordering::Relaxed);
        if let Some((profile, node)) = &self.report {
            profile.memory(*node, self.peak);
        }
    }
}

/// The bytes a row holds: its vector, its datums, and the text, bytes or digits they own.
pub(crate) fn row_bytes(row: &[Datum]) -> usize {
    std::mem::size_of::<Vec<Datum>>() + row.iter().map(datum_bytes).sum::<usize>()
}

/// The bytes a datum holds, inline and on the heap.
pub(crate) fn datum_bytes(d: &Datum) -> usize {
    let heap = match d {
        Datum::Text(s) => s.len(),
        Datum::Bytea(b) => b.len(),
        Datum::Numeric(n, _) => (n.integer_digits() + n.fraction_digits()) as usize,
        _ => 0,
    };
    std::mem::size_of::<Datum>() + heap
}

/// The bytes of one hash table entry keyed by `key`.
pub(crate) fn key_bytes(key: &[u8]) -> usize {
    std::mem::size_of::<Vec<u8>>() + key.len() + HASH_ENTRY
}

/// A size as PostgreSQL prints memory: in whole kB, rounded up (`0kB` only for nothing).
pub(crate) fn pretty_kb(bytes: usize) -> String {
    format!("{}kB", bytes.div_ceil(1024))
}

/// 53200: `operator` asked for `more` bytes while the statement held `used` of `limit`.
fn out_of_memory(operator: &str, limit: usize, used: usize, more: usize) -> SqlError {
    let limit_text = crate::vars::format_memory(limit);
    SqlError::new(
        "53200",
        format!("out of memory: {operator} exceeded the query memory limit of {limit_text}"),
    )
    .with_detail(format!(
        "The statement's operators held {} when {operator} asked for {} more.",
        pretty_kb(used),
        pretty_kb(more)
    ))
    .with_hint(
        "Raise the limit (SET meridian.query_memory_limit = '1GB') or have the query keep \
         fewer rows.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_return_their_bytes() {
        let pool = MemoryPool::new(1000);
        let mut a = pool.reserve("Sort", None);
        a.grow(600).unwrap();
        let mut b = pool.reserve("Hash join", None);
        let e = b.grow(500).unwrap_err();
        assert_eq!(e.code, "53200");
        assert!(e.message.contains("Hash join"), "{}", e.message);
        assert!(e.message.contains("1000B"), "{}", e.message);
        // The failed request took nothing; what fits still does.
        b.grow(400).unwrap();
        drop(a);
        b.grow(500).unwrap();
        assert_eq!(pool.peak(), 1000);
        drop(b);
        pool.reserve("Sort", None).grow(1000).unwrap();
    }

    #[test]
    fn sizes_count_what_values_own() {
        let short = vec![Datum::Int(1), Datum::Text("a".into())];
        let long = vec![Datum::Int(1), Datum::Text("a".repeat(1000))];
        assert_eq!(row_bytes(&long) - row_bytes(&short), 999);
        assert!(key_bytes(b"abc") > 3);
        assert_eq!(pretty_kb(0), "0kB");
        assert_eq!(pretty_kb(1), "1kB");
        assert_eq!(pretty_kb(2048), "2kB");
    }
}
