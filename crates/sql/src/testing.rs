//! An in-memory [`KvClient`] for tests, with the tablet's write semantics: conditions are
//! checked against the newest committed state, then every read span is validated against the
//! write's read timestamp (any newer version, tombstones included, is a conflict), then all
//! mutations apply at one new commit timestamp. Timestamps are a counter, not a clock.
//!
//! It can also inject failures, to test the SQL layer's retry and error mapping.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use meridian_clock::Timestamp;
use meridian_tablet::{
    Condition, ConditionFailure, Error, KvClient, KvPair, Mutation, Result, WriteRequest,
};

/// A committed version: its timestamp and value (`None` for a tombstone).
type Version = (Timestamp, Option<Vec<u8>>);

#[derive(Default)]
struct State {
    /// Versions of each key, oldest first; `None` is a tombstone.
    versions: BTreeMap<Vec<u8>, Vec<Version>>,
    /// The last commit timestamp.
    now: u64,
    /// Writes still to fail with a write conflict.
    inject_conflicts: usize,
    /// Writes still to fail with `Unavailable`.
    inject_unavailable: usize,
    /// Writes attempted, successful or not.
    write_attempts: usize,
    /// Point reads served.
    gets: usize,
    /// Scans served.
    scans: usize,
}

impl State {
    fn newest(&self, key: &[u8]) -> Option<&Version> {
        self.versions.get(key).and_then(|v| v.last())
    }

    /// The value of `key` as of `ts` and the version's timestamp (a tombstone's included).
    fn at(&self, key: &[u8], ts: Timestamp) -> (Option<Vec<u8>>, Timestamp) {
        let version = self
            .versions
            .get(key)
            .and_then(|versions| versions.iter().rev().find(|(t, _)| *t <= ts));
        match version {
            Some((t, v)) => (v.clone(), *t),
            None => (None, Timestamp::ZERO),
        }
    }
}

/// An in-memory, single-process keyspace.
#[derive(Default)]
pub struct MemKv {
    state: Mutex<State>,
}

impl MemKv {
    /// An empty keyspace.
    pub fn new() -> MemKv {
        MemKv::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `n` writes fail with a write conflict.
    pub fn inject_write_conflicts(&self, n: usize) {
        self.state().inject_conflicts = n;
    }

    /// Makes the next `n` writes fail with `Unavailable`.
    pub fn inject_unavailable(&self, n: usize) {
        self.state().inject_unavailable = n;
    }

    /// Writes attempted so far.
    pub fn write_attempts(&self) -> usize {
        self.state().write_attempts
    }

    /// (point reads, scans) served so far.
    pub fn reads(&self) -> (usize, usize) {
        let s = self.state();
        (s.gets, s.scans)
    }

    /// Every live key as of now (for assertions about what a statement left behind).
    pub fn live_keys(&self) -> Vec<Vec<u8>> {
        let s = self.state();
        s.versions
            .iter()
            .filter(|(_, v)| v.last().is_some_and(|(_, val)| val.is_some()))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[async_trait]
impl KvClient for MemKv {
    async fn read_ts(&self) -> Result<Timestamp> {
        Ok(Timestamp::from_nanos(self.state().now))
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        let mut s = self.state();
        s.gets += 1;
        Ok(s.at(key, ts))
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        let mut s = self.state();
        s.scans += 1;
        let mut out = Vec::new();
        let mut seen = Timestamp::ZERO;
        if start >= end {
            return Ok((out, seen));
        }
        for (k, _) in s
            .versions
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
        {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (v, at) = s.at(k, ts);
            seen = seen.max(at);
            if let Some(v) = v {
                out.push((k.clone(), v));
            }
        }
        Ok((out, seen))
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        let mut s = self.state();
        s.write_attempts += 1;
        if s.inject_unavailable > 0 {
            s.inject_unavailable -= 1;
            return Err(Error::Unavailable {
                tablet: 1,
                reason: "injected".into(),
            });
        }
        if s.inject_conflicts > 0 {
            s.inject_conflicts -= 1;
            return Err(Error::WriteConflict {
                read_ts: req.read_ts.unwrap_or_default(),
            });
        }
        for c in &req.conditions {
            let (key, must_exist) = match c {
                Condition::NotExists(k) => (k, false),
                Condition::Exists(k) => (k, true),
            };
            let live = s.newest(key).is_some_and(|(_, v)| v.is_some());
            if live != must_exist {
                let kind = if live {
                    ConditionFailure::Exists
                } else {
                    ConditionFailure::Missing
                };
                return Err(Error::ConditionFailed {
                    key: key.clone(),
                    kind,
                });
            }
        }
        if let Some(read_ts) = req.read_ts {
            for span in &req.read_spans {
                let newest = match &span.end {
                    None => s.newest(&span.start).map(|(t, _)| *t),
                    Some(end) if span.start < *end => s
                        .versions
                        .range::<[u8], _>((
                            Bound::Included(span.start.as_slice()),
                            Bound::Excluded(end.as_slice()),
                        ))
                        .filter_map(|(_, v)| v.last().map(|(t, _)| *t))
                        .max(),
                    Some(_) => None,
                };
                if newest.is_some_and(|t| t > read_ts) {
                    return Err(Error::WriteConflict { read_ts });
                }
            }
        }
        s.now += 1;
        let ts = Timestamp::from_nanos(s.now);
        for m in req.mutations {
            let (key, value) = match m {
                Mutation::Put { key, value } => (key, Some(value)),
                Mutation::Delete { key } => (key, None),
            };
            s.versions.entry(key).or_default().push((ts, value));
        }
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use meridian_tablet::Span;

    use super::*;

    fn put(k: &[u8]) -> Mutation {
        Mutation::Put {
            key: k.to_vec(),
            value: b"v".to_vec(),
        }
    }

    #[tokio::test]
    async fn conditions_and_read_spans_are_enforced() {
        let kv = MemKv::new();
        let t0 = kv.read_ts().await.unwrap();
        kv.write(WriteRequest {
            mutations: vec![put(b"a")],
            ..Default::default()
        })
        .await
        .unwrap();
        let dup = WriteRequest {
            conditions: vec![Condition::NotExists(b"a".to_vec())],
            mutations: vec![put(b"a")],
            ..Default::default()
        };
        assert!(matches!(
            kv.write(dup).await,
            Err(Error::ConditionFailed {
                kind: ConditionFailure::Exists,
                ..
            })
        ));
        let stale = WriteRequest {
            read_ts: Some(t0),
            read_spans: vec![Span {
                start: b"a".to_vec(),
                end: Some(b"b".to_vec()),
            }],
            mutations: vec![put(b"z")],
            ..Default::default()
        };
        assert!(matches!(
            kv.write(stale).await,
            Err(Error::WriteConflict { .. })
        ));
        let t1 = kv.read_ts().await.unwrap();
        assert_eq!(kv.get(b"a", t0).await.unwrap(), None);
        assert_eq!(kv.get(b"a", t1).await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.scan(b"", b"\xff", t1, Some(10)).await.unwrap().len(), 1);
    }
}
