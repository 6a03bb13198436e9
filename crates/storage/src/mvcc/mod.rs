//! Multi-version storage of user keys in the [`Space::Data`] space.
//!
//! Every write creates a version `(user key, timestamp)`; reads at timestamp `t` see, per
//! key, the newest version at or below `t`. Layout:
//!
//! ```text
//! storage key = escape(user key) ++ 00 01 ++ be64(u64::MAX - ts)    versions newest first
//! value       = 01 ++ bytes   (live)
//!             | 00            (tombstone: the key was deleted at ts)
//! ```
//!
//! The escaped user key is order preserving and self-delimiting (see [`crate::keycode`]), so
//! storage key order is user key order first, then newest version first, and no key's
//! versions interleave with another's, even when one key is a prefix of the other.

mod batch;
mod cache;
mod gc;

use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

use meridian_clock::Timestamp;

pub use batch::{MvccBatch, delete_applied_index, put_applied_index};
pub use cache::VersionCache;
pub use gc::GcStats;

use crate::engine::{KeyRange, KvEngine, ScanOrder, Space};
use crate::error::{Error, Result};
use crate::keycode::{Decoder, escape_into};

const LIVE: u8 = 0x01;
const TOMBSTONE: u8 = 0x00;

/// Versions of one key skipped in a row before a scan seeks instead (see
/// [`Mvcc::each_visible`]); small under test so that the seeks run in every test.
const RESEEK_AFTER: usize = if cfg!(test) { 2 } else { 16 };

/// The MVCC view of an engine's [`Space::Data`] space. Cheap to clone.
#[derive(Clone)]
pub struct Mvcc {
    engine: Arc<dyn KvEngine>,
}

impl Mvcc {
    /// MVCC over `engine`.
    pub fn new(engine: Arc<dyn KvEngine>) -> Self {
        Mvcc { engine }
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Arc<dyn KvEngine> {
        &self.engine
    }

    /// The value of `key` as of `read_ts`: the newest version at or below `read_ts`, or `None`
    /// if there is none or it is a tombstone.
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<Vec<u8>>> {
        Ok(self.get_seen(key, read_ts)?.0)
    }

    /// [`Mvcc::get`], with the timestamp of the version read (a tombstone's included;
    /// [`Timestamp::ZERO`] when the key has no version at or below `read_ts`). A reader
    /// learns from it how recent a write it observed (see `meridian_tablet::KvClient::get_seen`).
    pub fn get_seen(&self, key: &[u8], read_ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        match self.version_at(key, read_ts)? {
            Some((ts, value)) => Ok((decode_value(&value)?.map(<[u8]>::to_vec), ts)),
            None => Ok((None, Timestamp::ZERO)),
        }
    }

    /// The newest version of `key` at or below `at`: its timestamp and encoded value. Most
    /// reads want the newest version, which the engine may have cached; an older one is one
    /// seek.
    fn version_at(&self, key: &[u8], at: Timestamp) -> Result<Option<(Timestamp, Vec<u8>)>> {
        let prefix = user_key_prefix(key);
        let Some((storage_key, value)) = self.engine.first_with_prefix(Space::Data, &prefix)?
        else {
            return Ok(None);
        };
        let (_, ts) = split_storage_key(&storage_key)?;
        if ts <= at {
            return Ok(Some((ts, value)));
        }
        let range = KeyRange {
            start: Bound::Included(with_ts(&prefix, at)),
            end: Bound::Included(with_ts(&prefix, Timestamp::ZERO)),
        };
        match self.engine.first(Space::Data, range, ScanOrder::Forward)? {
            Some((storage_key, value)) => Ok(Some((split_storage_key(&storage_key)?.1, value))),
            None => Ok(None),
        }
    }

    /// The visible `(key, value)` pairs of user keys in `[start, end)` as of `read_ts`, in key
    /// order, at most `limit` of them. An empty `end` means no upper bound. Deleted keys are
    /// skipped (they do not count against `limit`).
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.scan_seen(start, end, read_ts, limit)?.0)
    }

    /// [`Mvcc::scan`], with the newest timestamp of the versions it read (the tombstones of
    /// deleted keys it skipped included; [`Timestamp::ZERO`] when it read none).
    pub fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<crate::engine::KvPair>, Timestamp)> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut seen = Timestamp::ZERO;
        if limit == 0 {
            return Ok((out, seen));
        }
        self.each_visible(start, end, read_ts, |prefix, ts, value| {
            seen = seen.max(ts);
            if let Some(v) = decode_value(value)? {
                out.push((unescape_prefix(prefix)?, v.to_vec()));
                if out.len() >= limit {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((out, seen))
    }

    /// The newest version of `key` at any timestamp: its timestamp and whether it is live
    /// (`false` for a tombstone).
    pub fn newest_version(&self, key: &[u8]) -> Result<Option<(Timestamp, bool)>> {
        let prefix = user_key_prefix(key);
        match self.engine.first_with_prefix(Space::Data, &prefix)? {
            Some((storage_key, value)) => {
                let (_, ts) = split_storage_key(&storage_key)?;
                Ok(Some((ts, decode_value(&value)?.is_some())))
            }
            None => Ok(None),
        }
    }

    /// The largest timestamp of any version (tombstones included) of any key in
    /// `[start, end)` (empty `end`: unbounded). Optimistic transactions use it to detect a
    /// write that happened after they read the range.
    pub fn max_version_ts(&self, start: &[u8], end: &[u8]) -> Result<Option<Timestamp>> {
        // Every key's newest version is the first of its versions.
        let mut max = None;
        self.each_visible(start, end, Timestamp::MAX, |_, ts, _| {
            max = max.max(Some(ts));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(max)
    }

    /// Whether any key in `[start, end)` (empty `end`: unbounded) has a version (tombstones
    /// included) with a timestamp in `(after, up_to]`.
    pub fn changed_between(
        &self,
        start: &[u8],
        end: &[u8],
        after: Timestamp,
        up_to: Timestamp,
    ) -> Result<bool> {
        // A key changed in `(after, up_to]` exactly when its newest version at or below
        // `up_to` is newer than `after`.
        let mut changed = false;
        self.each_visible(start, end, up_to, |_, ts, _| {
            changed = ts > after;
            Ok(if changed {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        Ok(changed)
    }

    /// Whether `key` has a version (a tombstone included) with a timestamp in
    /// `(after, up_to]`: [`Mvcc::changed_between`] for one key, answered from the engine's
    /// newest-version cache when nothing is newer than `up_to`.
    pub fn key_changed_between(
        &self,
        key: &[u8],
        after: Timestamp,
        up_to: Timestamp,
    ) -> Result<bool> {
        // As in `changed_between`: the version a read at `up_to` sees is newer than `after`.
        Ok(self
            .version_at(key, up_to)?
            .is_some_and(|(ts, _)| ts > after))
    }

    /// Calls `f` with `(escaped user key, timestamp, encoded value)` of the newest version at
    /// or below `at` of every user key in `[start, end)` (empty `end`: unbounded) that has
    /// one, in key order, until `f` breaks.
    ///
    /// A hot row collects thousands of versions between garbage collections, so the versions
    /// skipped (newer than `at`, or older than the one found) are not walked one by one past
    /// [`RESEEK_AFTER`] in a row: the scan seeks to the version it wants, or past the key.
    fn each_visible(
        &self,
        start: &[u8],
        end: &[u8],
        at: Timestamp,
        mut f: impl FnMut(&[u8], Timestamp, &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let range = data_range(start, end);
        let mut from = range.start;
        'seek: loop {
            let iter = self.engine.iter(
                Space::Data,
                KeyRange {
                    start: from,
                    end: range.end.clone(),
                },
                ScanOrder::Forward,
            )?;
            // The key of the versions being walked, whether one was passed to `f`, and how
            // many of its versions were skipped in a row.
            let mut current: Vec<u8> = Vec::new();
            let mut decided = false;
            let mut skipped = 0;
            for pair in iter {
                let (storage_key, value) = pair?;
                let (prefix, ts) = split_storage_key(&storage_key)?;
                if prefix != current.as_slice() {
                    current.clear();
                    current.extend_from_slice(prefix);
                    decided = false;
                    skipped = 0;
                }
                if decided || ts > at {
                    skipped += 1;
                    if skipped >= RESEEK_AFTER {
                        from = if decided {
                            // Past the oldest possible version of this key.
                            Bound::Excluded(with_ts(prefix, Timestamp::ZERO))
                        } else {
                            Bound::Included(with_ts(prefix, at))
                        };
                        continue 'seek;
                    }
                    continue;
                }
                decided = true;
                skipped = 0;
                if f(prefix, ts, &value)?.is_break() {
                    return Ok(());
                }
            }
            return Ok(());
        }
    }

    /// A user key near the middle (by bytes, all versions counted) of `[start, end)` (empty
    /// `end`: unbounded), where a range of that size could be split; `None` when the span holds
    /// fewer than two user keys. Reads the span twice.
    pub fn middle_key(&self, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut total: u64 = 0;
        for pair in self
            .engine
            .iter(Space::Data, data_range(start, end), ScanOrder::Forward)?
        {
            let (k, v) = pair?;
            total += (k.len() + v.len()) as u64;
        }
        let mut seen: u64 = 0;
        let mut first: Option<Vec<u8>> = None;
        for pair in self
            .engine
            .iter(Space::Data, data_range(start, end), ScanOrder::Forward)?
        {
            let (storage_key, v) = pair?;
            let (prefix, _) = split_storage_key(&storage_key)?;
            seen += (storage_key.len() + v.len()) as u64;
            match &first {
                None => first = Some(prefix.to_vec()),
                Some(f) if f.as_slice() != prefix && seen * 2 >= total => {
                    return Ok(Some(unescape_prefix(prefix)?));
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }

    /// The first user key in `[start, end)` (empty `end`: unbounded) that has a version,
    /// tombstones included: the row boundary at or after `start`, where a range could be split
    /// without separating a key's versions. Reads one storage key.
    pub fn first_key(&self, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut iter = self
            .engine
            .iter(Space::Data, data_range(start, end), ScanOrder::Forward)?;
        let Some(pair) = iter.next() else {
            return Ok(None);
        };
        let (storage_key, _) = pair?;
        let (prefix, _) = split_storage_key(&storage_key)?;
        Ok(Some(unescape_prefix(prefix)?))
    }

    /// Writes one version of `key` (not synced; use [`Mvcc::batch`] to choose).
    pub fn put(&self, key: &[u8], ts: Timestamp, value: &[u8]) -> Result<()> {
        let mut b = self.batch();
        b.put(key, ts, value);
        b.commit(crate::engine::Durability::NoSync)
    }

    /// Writes a tombstone for `key` at `ts` (not synced; use [`Mvcc::batch`] to choose).
    pub fn delete(&self, key: &[u8], ts: Timestamp) -> Result<()> {
        let mut b = self.batch();
        b.delete(key, ts);
        b.commit(crate::engine::Durability::NoSync)
    }
}

/// The escaped form of `key` that starts every storage key of its versions.
pub fn user_key_prefix(key: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(key.len() + 10);
    escape_into(&mut buf, key);
    buf
}

/// The storage key of version `ts` of `key`.
pub fn encode_version_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    with_ts(&user_key_prefix(key), ts)
}

/// Splits a storage key into its user key and timestamp.
pub fn decode_version_key(storage_key: &[u8]) -> Result<(Vec<u8>, Timestamp)> {
    let (prefix, ts) = split_storage_key(storage_key)?;
    Ok((unescape_prefix(prefix)?, ts))
}

/// The storage-key range holding every version of every user key in `[start, end)`
/// (empty `end`: unbounded).
pub fn data_range(start: &[u8], end: &[u8]) -> KeyRange {
    KeyRange {
        start: Bound::Included(user_key_prefix(start)),
        end: if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(user_key_prefix(end))
        },
    }
}

fn with_ts(prefix: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&(u64::MAX - ts.as_nanos()).to_be_bytes());
    key
}

/// Splits a storage key into the escaped user key and the timestamp, without unescaping.
fn split_storage_key(storage_key: &[u8]) -> Result<(&[u8], Timestamp)> {
    let Some(split) = storage_key.len().checked_sub(8) else {
        return Err(Error::corrupt(format!(
            "mvcc: storage key of {} bytes has no timestamp",
            storage_key.len()
        )));
    };
    let (prefix, ts) = storage_key.split_at(split);
    let mut inverted = [0; 8];
    inverted.copy_from_slice(ts);
    Ok((
        prefix,
        Timestamp::from_nanos(u64::MAX - u64::from_be_bytes(inverted)),
    ))
}

fn unescape_prefix(prefix: &[u8]) -> Result<Vec<u8>> {
    let mut d = Decoder::new(prefix);
    let key = d.unescape(0)?;
    if !d.is_empty() {
        return Err(Error::corrupt("mvcc: trailing bytes after user key"));
    }
    Ok(key)
}

/// Encodes a version's value.
fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(LIVE);
            out.extend_from_slice(v);
            out
        }
        None => vec![TOMBSTONE],
    }
}

/// Decodes a version's value: `None` for a tombstone.
fn decode_value(value: &[u8]) -> Result<Option<&[u8]>> {
    match value.split_first() {
        Some((&LIVE, v)) => Ok(Some(v)),
        Some((&TOMBSTONE, [])) => Ok(None),
        _ => Err(Error::corrupt(format!(
            "mvcc: bad version value tag {:?}",
            value.first()
        ))),
    }
}

#[cfg(test)]
mod tests;
