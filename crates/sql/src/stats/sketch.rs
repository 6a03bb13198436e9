//! Counting distinct values in one pass with bounded memory: exactly while a column has few
//! distinct values, with a HyperLogLog sketch (Flajolet et al., 2007) beyond that.
//!
//! Values are counted by a 64-bit hash of their key encoding, so equal values (`1.0` and
//! `1.00` as NUMERIC) count once. The exact phase keeps the hashes themselves (a collision
//! among a few thousand 64-bit hashes is vanishingly unlikely), so small tables get exact
//! counts, which tests and users can check. Past [`EXACT_LIMIT`] hashes the set turns into
//! 2^[`PRECISION`] registers, whose estimate has a standard error of about 0.8%.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Most distinct hashes kept exactly (at most about 64 KiB per column).
const EXACT_LIMIT: usize = 4096;
/// log2 of the number of HyperLogLog registers.
const PRECISION: u32 = 14;
const REGISTERS: usize = 1 << PRECISION;

/// The hash a value is counted by: SipHash with fixed keys over its key encoding, so the same
/// value hashes the same in every process.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A distinct-value counter for one column.
#[derive(Debug, Default)]
pub(crate) struct DistinctCounter {
    /// The hashes seen, while there are at most [`EXACT_LIMIT`] of them.
    exact: HashSet<u64>,
    /// HyperLogLog registers (empty while counting exactly): the most leading zeros (plus
    /// one) seen among the hashes that fall in each.
    registers: Vec<u8>,
}

impl DistinctCounter {
    /// Counts a value by its hash.
    pub(crate) fn add(&mut self, hash: u64) {
        if self.registers.is_empty() {
            self.exact.insert(hash);
            if self.exact.len() > EXACT_LIMIT {
                self.registers = vec![0; REGISTERS];
                for h in std::mem::take(&mut self.exact) {
                    self.observe(h);
                }
            }
        } else {
            self.observe(hash);
        }
    }

    fn observe(&mut self, hash: u64) {
        let index = (hash >> (64 - PRECISION)) as usize;
        // The remaining bits, with a guard bit so that a run of zeros ends within them.
        let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// The number of distinct values counted (an estimate once past [`EXACT_LIMIT`]).
    pub(crate) fn estimate(&self) -> u64 {
        if self.registers.is_empty() {
            return self.exact.len() as u64;
        }
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        // Small cardinalities: linear counting over the empty registers is more accurate.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        (estimate.round() as u64).max(EXACT_LIMIT as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(values: impl Iterator<Item = u64>) -> u64 {
        let mut c = DistinctCounter::default();
        for v in values {
            c.add(hash_bytes(&v.to_be_bytes()));
        }
        c.estimate()
    }

    #[test]
    fn small_counts_are_exact() {
        assert_eq!(count(std::iter::empty()), 0);
        assert_eq!(count((0..100).map(|i| i % 7)), 7);
        assert_eq!(count(0..EXACT_LIMIT as u64), EXACT_LIMIT as u64);
    }

    #[test]
    fn large_counts_are_within_a_few_percent() {
        for n in [5_000u64, 20_000, 200_000] {
            // Every value twice: repeats must not count.
            let est = count((0..2 * n).map(|i| i / 2)) as f64;
            let error = (est - n as f64).abs() / n as f64;
            assert!(error < 0.03, "{n} distinct values estimated as {est}");
        }
    }
}
