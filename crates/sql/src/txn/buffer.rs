//! Explicit transactions (`BEGIN` ... `COMMIT`) on the tablet layer's validated writes.
//!
//! A transaction reads every statement at one snapshot, its read timestamp (taken at its first
//! statement, as PostgreSQL takes its snapshot), and buffers its writes here, at the gateway.
//! Reads see the buffer over the snapshot (a transaction reads its own writes). Every key and
//! range the transaction reads is recorded. `COMMIT` sends one [`WriteRequest`] carrying the
//! read timestamp, all the recorded read spans and all buffered mutations: the tablet commits it
//! only if nothing the transaction read changed after its read timestamp, atomically at one
//! commit timestamp, after commit wait. That is backward-validated optimistic concurrency: the
//! committed history is equivalent to running each transaction alone at its commit timestamp,
//! so transactions are serializable and, with commit wait, externally consistent. A conflict
//! is SQLSTATE 40001 at `COMMIT`, which the client retries.
//!
//! Preconditions of statements (a new primary or unique key must not exist) are checked when
//! the statement runs, against the snapshot and the buffer, so a duplicate key is reported by
//! the statement that causes it, as in PostgreSQL; the keys checked become read spans, so a
//! concurrent insert of the same key after the snapshot makes the commit fail with 40001.
//!
//! Rows the transaction reads in order to change them (an UPDATE or DELETE by primary key) are
//! read with [`KvClient::get_for_update`]: the row's lock is taken at its tablet's leader first
//! (wound-wait, `meridian_tablet::LockTable`), so a contended row makes transactions queue
//! rather than fail at commit. If the row changed since the snapshot, the transaction moves its
//! snapshot forward: it checks that nothing it read so far changed up to a fresh timestamp
//! (`KvClient::refresh`) and reads everything from then on at that timestamp. Reads before the
//! move are exactly what a read at the new snapshot returns, so the transaction stays one
//! consistent snapshot and commit validation is unchanged. Locks are released when the
//! transaction commits, rolls back or is dropped.
//!
//! A statement that reads one row by primary key for some of its columns (`SELECT w_tax FROM
//! warehouse WHERE w_id = $1`) reads it with [`KvClient::get_compared`]: the transaction keeps
//! the value and a comparison of the columns the statement used. When such a row changes after
//! the snapshot (COMMIT fails with a conflict, or the snapshot moves after a row lock), the
//! transaction reads it again at a newer timestamp; if the columns it used are unchanged, its
//! results are what a read at the newer timestamp gives, so it moves its snapshot there (after
//! the usual check of everything else it read) and commits from it. Otherwise 40001 as before.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use meridian_clock::Timestamp;
use meridian_tablet::{
    Condition, ConditionFailure, Error, KvClient, KvPair, LockOwner, Mutation, Result, SameResult,
    Span, WriteRequest,
};

use crate::keys::next_key;

/// A transaction's view of the keyspace: the buffer of its writes over its snapshot.
///
/// It implements [`KvClient`], so the planner and executor run unchanged inside a transaction:
/// `read_ts` is the transaction's snapshot, reads merge the buffer, and `write` buffers (after
/// checking the request's conditions) instead of committing.
pub(crate) struct TxnKv {
    base: Arc<dyn KvClient>,
    buf: Mutex<Buffer>,
    /// The most the buffer may hold, in bytes as [`Buffer::bytes`] counts them
    /// (`meridian.txn_memory_limit`).
    limit: AtomicUsize,
    /// A read-only view at a fixed snapshot (`AS OF SYSTEM TIME`): never locks or moves.
    fixed: bool,
    /// The age the transaction claims for row locks when older than its first snapshot (a
    /// retry of a transaction that lost a conflict keeps the loser's age).
    age: Option<Timestamp>,
    /// The newest version its reads from the snapshot saw.
    seen: Seen,
}

/// The newest version a reader's reads saw (see [`KvClient::get_seen`]): before it answers
/// its client, a read-only reader waits until `TT.after` it, since a write is visible where it
/// applied before its own commit wait ends. A reader that commits a write needs no more: its
/// commit timestamp is above everything it read, and it waits that out.
#[derive(Default)]
pub(crate) struct Seen(AtomicU64);

impl Seen {
    fn note(&self, ts: Timestamp) {
        self.0.fetch_max(ts.as_nanos(), Ordering::Relaxed);
    }

    /// The newest version seen so far.
    pub(crate) fn get(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::Relaxed))
    }

    /// The newest version seen since the last call.
    pub(crate) fn take(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.swap(0, Ordering::Relaxed))
    }
}

/// The mutable part of a transaction. Never locked across an await.
#[derive(Default, Clone)]
struct Buffer {
    /// The snapshot; `None` until the first statement asks for it.
    read_ts: Option<Timestamp>,
    /// Buffered writes by key: `Some(value)` for a put, `None` for a delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Everything read so far (validated at commit).
    reads: Vec<Span>,
    /// Keys read by statements whose result depends only on some of their columns (see
    /// [`KvClient::get_compared`]): validated at commit like `reads`, but a change that leaves
    /// those columns alone moves the snapshot instead of failing the transaction.
    compared: Vec<Compared>,
    /// The transaction as the owner of row locks (made at its first lock).
    owner: Option<LockOwner>,
    /// The keys it locked (released when it ends).
    locked: Vec<Vec<u8>>,
    /// About how much memory `writes` takes.
    write_bytes: usize,
    /// About how much memory `reads` takes.
    read_bytes: usize,
}

/// What a buffered write or a recorded read costs beyond its keys and value: the map's and
/// the vectors' own memory, roughly.
const ENTRY_OVERHEAD: usize = 64;

/// The default of `meridian.txn_memory_limit`, for a transaction made outside a session.
const DEFAULT_LIMIT: usize = 1 << 30;

fn write_cost(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

fn read_cost(span: &Span) -> usize {
    span.start.len() + span.end.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

impl Buffer {
    /// About how much memory the buffer takes.
    fn bytes(&self) -> usize {
        self.write_bytes + self.read_bytes
    }

    /// Records a read.
    fn read(&mut self, span: Span) {
        self.read_bytes += read_cost(&span);
        self.reads.push(span);
    }

    /// Buffers a write (a delete when `value` is `None`).
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let cost = write_cost(&key, &value);
        if let Some(old) = self.writes.insert(key, value) {
            self.write_bytes = self.write_bytes.saturating_sub(old.map_or(0, |v| v.len()));
            self.write_bytes += cost - ENTRY_OVERHEAD;
        } else {
            self.write_bytes += cost;
        }
    }
}

/// A key read with [`KvClient::get_compared`]: the value read and how to compare a later one.
#[derive(Clone)]
struct Compared {
    key: Vec<u8>,
    old: Option<Vec<u8>>,
    same: SameResult,
}

/// The state a savepoint restores.
#[derive(Clone)]
pub(crate) struct Mark {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    write_bytes: usize,
    /// Nothing had been read or written yet when the mark was taken: going back to it may take
    /// a new snapshot (a restart of the transaction).
    fresh: bool,
}

impl TxnKv {
    /// A transaction over `base` that has read and written nothing yet, claiming the age
    /// `age` for row locks if given (otherwise its first snapshot's).
    pub(crate) fn new(base: Arc<dyn KvClient>, age: Option<Timestamp>) -> TxnKv {
        TxnKv {
            base,
            buf: Mutex::new(Buffer::default()),
            limit: AtomicUsize::new(DEFAULT_LIMIT),
            fixed: false,
            age,
            seen: Seen::default(),
        }
    }

    fn buf(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the most the transaction may buffer (`meridian.txn_memory_limit`).
    pub(crate) fn set_memory_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// `TxnTooLarge` when the buffer holds more than its limit (reads that recorded too much).
    fn check_limit(&self) -> Result<()> {
        let b = self.buf();
        let limit = self.limit.load(Ordering::Relaxed);
        if b.bytes() > limit {
            return Err(Error::TxnTooLarge {
                bytes: b.bytes() as u64,
                limit: limit as u64,
            });
        }
        Ok(())
    }

    /// A read-only view at the fixed snapshot `ts` (`AS OF SYSTEM TIME`).
    pub(crate) fn at(base: Arc<dyn KvClient>, ts: Timestamp) -> TxnKv {
        TxnKv {
            base,
            buf: Mutex::new(Buffer {
                read_ts: Some(ts),
                ..Buffer::default()
            }),
            limit: AtomicUsize::new(DEFAULT_LIMIT),
            fixed: true,
            age: None,
            seen: Seen::default(),
        }
    }

    /// The newest version the transaction's reads saw (see [`Seen`]).
    pub(crate) fn seen(&self) -> Timestamp {
        self.seen.get()
    }

    /// The state to restore on `ROLLBACK TO SAVEPOINT`.
    pub(crate) fn mark(&self) -> Mark {
        let b = self.buf();
        Mark {
            writes: b.writes.clone(),
            write_bytes: b.write_bytes,
            fresh: b.read_ts.is_none() && b.writes.is_empty(),
        }
    }

    /// Discards the writes made after `mark`. The reads made since are kept for validation
    /// (what was read may have shaped what the transaction still does), except when the mark
    /// was taken before the transaction read anything: then the transaction starts over from a
    /// new snapshot, which is how a client retries a transaction inside one `BEGIN` (the
    /// `SAVEPOINT cockroach_restart` protocol).
    pub(crate) fn rollback_to(&self, mark: &Mark) {
        let mut b = self.buf();
        b.writes = mark.writes.clone();
        b.write_bytes = mark.write_bytes;
        if mark.fresh {
            b.read_ts = None;
            b.reads.clear();
            b.compared.clear();
            b.read_bytes = 0;
        }
    }

    /// Commits the buffered writes as one validated write; returns the commit timestamp, or
    /// `None` for a transaction that wrote nothing (its reads were one consistent snapshot,
    /// so there is nothing to validate).
    pub(crate) async fn commit(&self) -> Result<Option<Timestamp>> {
        let mut b = std::mem::take(&mut *self.buf());
        // The buffer moves into the commit (it may be large); only the locks stay behind.
        let (owner, locked) = (b.owner.clone(), std::mem::take(&mut b.locked));
        let result = Self::commit_buffer(&self.base, b).await;
        // Decided: the leader that took the write dropped the locks it held there; the
        // others are told in the background.
        release(&self.base, owner, locked);
        result
    }

    async fn commit_buffer(base: &Arc<dyn KvClient>, b: Buffer) -> Result<Option<Timestamp>> {
        let Some(read_ts) = b.read_ts else {
            return Ok(None);
        };
        if b.writes.is_empty() {
            return Ok(None);
        }
        let mutations = b
            .writes
            .into_iter()
            .map(|(key, v)| match v {
                Some(value) => Mutation::Put { key, value },
                None => Mutation::Delete { key },
            })
            .collect();
        let reads = merge_spans(b.reads);
        let mut read_spans = reads.clone();
        read_spans.extend(b.compared.iter().map(|c| Span {
            start: c.key.clone(),
            end: None,
        }));
        let mut req = WriteRequest {
            read_ts: Some(read_ts),
            read_spans: merge_spans(read_spans),
            conditions: vec![],
            mutations,
            lock_owner: b.owner,
        };
        // A conflict on a key read for only some of its columns may be a change to the others:
        // then the transaction moves its snapshot past it and commits from there.
        let mut moves_left = if b.compared.is_empty() { 0 } else { 2 };
        loop {
            let retry = (moves_left > 0).then(|| req.clone());
            match base.write(req).await {
                Err(Error::WriteConflict { .. }) if let Some(again) = retry => {
                    moves_left -= 1;
                    let from = again.read_ts.unwrap_or(read_ts);
                    let to = base.read_ts().await?;
                    still_valid(base, &reads, &b.compared, from, to).await?;
                    req = WriteRequest {
                        read_ts: Some(to),
                        ..again
                    };
                }
                other => return other.map(Some),
            }
        }
    }

    /// The snapshot reads are served at: the transaction's, once it has one.
    fn snapshot_or(&self, ts: Timestamp) -> Timestamp {
        self.buf().read_ts.unwrap_or(ts)
    }

    /// The transaction's age as a lock owner, once it has one.
    pub(crate) fn age(&self) -> Option<Timestamp> {
        let b = self.buf();
        b.owner
            .as_ref()
            .map(|o| o.priority)
            .or(b.read_ts.map(|ts| self.age.map_or(ts, |a| a.min(ts))))
    }

    /// The transaction as a lock owner: its age is its first snapshot (or the age it claims).
    fn owner(&self, read_ts: Timestamp) -> LockOwner {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let priority = self.age.map_or(read_ts, |a| a.min(read_ts));
        self.buf()
            .owner
            .get_or_insert_with(|| {
                let seq = NEXT.fetch_add(1, Ordering::Relaxed);
                let id = [
                    read_ts.as_nanos().to_be_bytes().as_slice(),
                    &seq.to_be_bytes(),
                    &std::process::id().to_be_bytes(),
                ]
                .concat();
                LockOwner { id, priority }
            })
            .clone()
    }

    /// Moves the snapshot from `from` forward to `to`, provided nothing the transaction read
    /// changed in between (otherwise `WriteConflict`: it must start over). Afterwards every
    /// earlier read is also what a read at `to` returns, so the transaction is as if it had
    /// read everything at `to`.
    async fn advance(&self, from: Timestamp, to: Timestamp) -> Result<()> {
        let (spans, compared) = {
            let b = self.buf();
            (merge_spans(b.reads.clone()), b.compared.clone())
        };
        still_valid(&self.base, &spans, &compared, from, to).await?;
        let mut b = self.buf();
        if b.read_ts == Some(from) {
            b.read_ts = Some(to);
        }
        Ok(())
    }

    /// The buffered value of `key` (`Some(None)`: deleted here), or `None` after recording
    /// that the transaction reads it from its snapshot.
    fn buffered_or_record(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let mut b = self.buf();
        if let Some(v) = b.writes.get(key) {
            return Some(v.clone());
        }
        b.read(Span {
            start: key.to_vec(),
            end: None,
        });
        None
    }

    /// The values of `keys` in the transaction's view, recording the reads: the buffer first,
    /// the rest from the snapshot in one request.
    async fn view_get_many(&self, keys: &[Vec<u8>], ts: Timestamp) -> Result<Vec<Option<Vec<u8>>>> {
        let buffered: Vec<Option<Option<Vec<u8>>>> =
            keys.iter().map(|k| self.buffered_or_record(k)).collect();
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .zip(&buffered)
            .filter(|(_, b)| b.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let mut fetched = if missing.is_empty() {
            Vec::new()
        } else {
            let (values, seen) = self
                .base
                .get_many_seen(&missing, self.snapshot_or(ts))
                .await?;
            self.seen.note(seen);
            values
        }
        .into_iter();
        self.check_limit()?;
        Ok(buffered
            .into_iter()
            .map(|v| v.unwrap_or_else(|| fetched.next().flatten()))
            .collect())
    }

    /// The value of `key` in the transaction's view, recording the read.
    async fn view_get(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>> {
        match self.buffered_or_record(key) {
            Some(v) => Ok(v),
            None => {
                self.check_limit()?;
                let (value, seen) = self.base.get_seen(key, self.snapshot_or(ts)).await?;
                self.seen.note(seen);
                Ok(value)
            }
        }
    }
}

/// The transaction's reads keep the newest version they saw in the transaction itself
/// ([`TxnKv::seen`]); to its callers each answers its snapshot as the newest version seen, which
/// bounds what it read.
#[async_trait]
impl KvClient for TxnKv {
    async fn read_ts(&self) -> Result<Timestamp> {
        if let Some(ts) = self.buf().read_ts {
            return Ok(ts);
        }
        let ts = self.base.read_ts().await?;
        Ok(*self.buf().read_ts.get_or_insert(ts))
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        let value = self.view_get(key, ts).await?;
        Ok((value, self.snapshot_or(ts)))
    }

    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        let values = self.view_get_many(keys, ts).await?;
        Ok((values, self.snapshot_or(ts)))
    }

    async fn get_compared(
        &self,
        key: &[u8],
        ts: Timestamp,
        same: SameResult,
    ) -> Result<Option<Vec<u8>>> {
        if self.fixed {
            return self.view_get(key, ts).await;
        }
        if let Some(v) = self.buf().writes.get(key) {
            return Ok(v.clone());
        }
        let (old, seen) = self.base.get_seen(key, self.snapshot_or(ts)).await?;
        self.seen.note(seen);
        self.buf().compared.push(Compared {
            key: key.to_vec(),
            old: old.clone(),
            same,
        });
        Ok(old)
    }

    /// Takes the row's lock at its tablet's leader first. If the row changed since the
    /// snapshot, the transaction moves its snapshot to one that holds the change (when nothing
    /// else it read changed) and reads the row there: it waits for the row instead of failing
    /// at commit.
    async fn get_for_update(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>> {
        if self.fixed || self.buf().writes.contains_key(key) {
            return self.view_get(key, ts).await;
        }
        let read_ts = self.read_ts().await?;
        let owner = self.owner(read_ts);
        let keys = [key.to_vec()];
        let moved = self.base.lock(&keys, &owner, read_ts).await?;
        let [key_owned] = keys;
        self.buf().locked.push(key_owned);
        if let Some(to) = moved {
            self.advance(read_ts, to).await?;
        }
        self.view_get(key, ts).await
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        if limit == Some(0) || start >= end {
            return Ok((vec![], self.snapshot_or(ts)));
        }
        let buffered: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .buf()
            .writes
            .range(start.to_vec()..end.to_vec())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Buffered deletes can hide base rows: ask for that many more so that `limit` live
        // rows remain after merging.
        let deletes = buffered.iter().filter(|(_, v)| v.is_none()).count();
        let want = limit.map(|l| l.saturating_add(deletes));
        let (base, seen) = self
            .base
            .scan_seen(start, end, self.snapshot_or(ts), want)
            .await?;
        self.seen.note(seen);
        // When the base scan stopped at its limit, keys after its last row are unknown, so
        // buffered rows beyond it must wait for the next page.
        let bound = match want {
            Some(w) if base.len() >= w => base.last().map(|(k, _)| k.clone()),
            _ => None,
        };
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (k, v) in buffered {
            if bound.as_ref().is_some_and(|b| k > *b) {
                continue;
            }
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        let mut out: Vec<KvPair> = merged.into_iter().collect();
        // The span read ends after the last row returned when the limit cut the scan short.
        let mut read_end = end.to_vec();
        if let Some(l) = limit
            && out.len() >= l
        {
            out.truncate(l);
            if let Some((k, _)) = out.last() {
                read_end = next_key(k);
            }
        }
        self.buf().read(Span {
            start: start.to_vec(),
            end: Some(read_end),
        });
        self.check_limit()?;
        Ok((out, self.snapshot_or(ts)))
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        let ts = self.read_ts().await?;
        // One request for all the keys, which matters when the tablet's leader is on another
        // node (a bulk insert checks every new key).
        let keys: Vec<Vec<u8>> = req
            .conditions
            .iter()
            .map(|c| match c {
                Condition::NotExists(k) | Condition::Exists(k) => k.clone(),
            })
            .collect();
        let values = self.view_get_many(&keys, ts).await?;
        let checks = req.conditions.iter().zip(&values).map(|(c, v)| match c {
            Condition::NotExists(k) => (k, false, v.is_some()),
            Condition::Exists(k) => (k, true, v.is_some()),
        });
        for (key, must_exist, live) in checks {
            if live != must_exist {
                return Err(Error::ConditionFailed {
                    key: key.clone(),
                    kind: if live {
                        ConditionFailure::Exists
                    } else {
                        ConditionFailure::Missing
                    },
                });
            }
        }
        let mut b = self.buf();
        // Checked before buffering: a statement that would take the transaction past its
        // limit fails whole (and with it the block), so memory stays near the limit.
        let more: usize = req.read_spans.iter().map(read_cost).sum::<usize>()
            + req
                .mutations
                .iter()
                .map(|m| match m {
                    Mutation::Put { key, value } => key.len() + value.len() + ENTRY_OVERHEAD,
                    Mutation::Delete { key } => key.len() + ENTRY_OVERHEAD,
                })
                .sum::<usize>();
        let limit = self.limit.load(Ordering::Relaxed);
        if b.bytes().saturating_add(more) > limit {
            return Err(Error::TxnTooLarge {
                bytes: b.bytes().saturating_add(more) as u64,
                limit: limit as u64,
            });
        }
        for span in req.read_spans {
            b.read(span);
        }
        for m in req.mutations {
            match m {
                Mutation::Put { key, value } => b.write(key, Some(value)),
                Mutation::Delete { key } => b.write(key, None),
            };
        }
        Ok(ts)
    }
}

impl Drop for TxnKv {
    /// A transaction dropped without committing (`ROLLBACK`, a closed connection) releases
    /// its locks in the background.
    fn drop(&mut self) {
        let b = std::mem::take(&mut *self.buf());
        release(&self.base, b.owner, b.locked);
    }
}

/// Tells the leaders of the tablets holding `locked` that `owner` ended, in the background
/// (a lock not released lapses by itself).
fn release(base: &Arc<dyn KvClient>, owner: Option<LockOwner>, locked: Vec<Vec<u8>>) {
    let (Some(owner), false) = (owner, locked.is_empty()) else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let base = base.clone();
    rt.spawn(async move {
        if let Err(e) = base.unlock(&locked, &owner.id).await {
            tracing::debug!(error = %e, "row locks not released; they lapse");
        }
    });
}

/// The keyspace of a session's autocommit statements: the tablets themselves, remembering the
/// largest commit timestamp of the writes made through it (for `SHOW LAST COMMIT TIMESTAMP`).
/// It also keeps the newest version its reads saw (see [`Seen`]).
pub(crate) struct Recording {
    base: Arc<dyn KvClient>,
    last: Mutex<Option<Timestamp>>,
    seen: Seen,
}

impl Recording {
    pub(crate) fn new(base: Arc<dyn KvClient>) -> Recording {
        Recording {
            base,
            last: Mutex::new(None),
            seen: Seen::default(),
        }
    }

    /// The newest version read through this keyspace since the last call.
    pub(crate) fn take_seen(&self) -> Timestamp {
        self.seen.take()
    }

    /// The largest commit timestamp of a write made through this keyspace.
    pub(crate) fn last(&self) -> Option<Timestamp> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl KvClient for Recording {
    async fn read_ts(&self) -> Result<Timestamp> {
        self.base.read_ts().await
    }

    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)> {
        let read = self.base.get_seen(key, ts).await?;
        self.seen.note(read.1);
        Ok(read)
    }

    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        let read = self.base.get_many_seen(keys, ts).await?;
        self.seen.note(read.1);
        Ok(read)
    }

    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)> {
        let read = self.base.scan_seen(start, end, ts, limit).await?;
        self.seen.note(read.1);
        Ok(read)
    }

    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &LockOwner,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        self.base.lock(keys, owner, read_ts).await
    }

    async fn unlock(&self, keys: &[Vec<u8>], owner: &[u8]) -> Result<()> {
        self.base.unlock(keys, owner).await
    }

    async fn refresh(&self, spans: &[Span], from: Timestamp, to: Timestamp) -> Result<()> {
        self.base.refresh(spans, from, to).await
    }

    async fn write(&self, req: WriteRequest) -> Result<Timestamp> {
        let ts = self.base.write(req).await?;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(Some(ts));
        Ok(ts)
    }
}

/// Whether a transaction that read `spans` and the `compared` keys at `from` would read the
/// same at `to`: nothing in `spans` changed in between, and each compared key's value at `to`
/// gives the same result as the value read. `WriteConflict` otherwise.
async fn still_valid(
    base: &Arc<dyn KvClient>,
    spans: &[Span],
    compared: &[Compared],
    from: Timestamp,
    to: Timestamp,
) -> Result<()> {
    if !spans.is_empty() {
        base.refresh(spans, from, to).await?;
    }
    if compared.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = compared.iter().map(|c| c.key.clone()).collect();
    let now = base.get_many(&keys, to).await?;
    for (c, new) in compared.iter().zip(&now) {
        if !(c.same)(c.old.as_deref(), new.as_deref()) {
            return Err(Error::WriteConflict { read_ts: from });
        }
    }
    Ok(())
}

/// `spans` with duplicates removed and ranges that overlap or touch joined, so a transaction
/// that reads the same rows in many statements sends each span once.
fn merge_spans(spans: Vec<Span>) -> Vec<Span> {
    let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = spans
        .into_iter()
        .map(|s| {
            let end = s.end.unwrap_or_else(|| next_key(&s.start));
            (s.start, end)
        })
        .filter(|(s, e)| s < e)
        .collect();
    ranges.sort();
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some((_, last_end)) if s <= *last_end => {
                if e > *last_end {
                    *last_end = e;
                }
            }
            _ => out.push((s, e)),
        }
    }
    out.into_iter()
        .map(|(start, end)| {
            // A single key stays a point span (cheaper to validate).
            if end == next_key(&start) {
                Span { start, end: None }
            } else {
                Span {
                    start,
                    end: Some(end),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(k: &[u8]) -> Span {
        Span {
            start: k.to_vec(),
            end: None,
        }
    }

    fn range(s: &[u8], e: &[u8]) -> Span {
        Span {
            start: s.to_vec(),
            end: Some(e.to_vec()),
        }
    }

    #[test]
    fn spans_merge_when_they_overlap_or_touch() {
        let merged = merge_spans(vec![
            range(b"c", b"e"),
            point(b"a"),
            range(b"d", b"g"),
            point(b"a"),
            range(b"g", b"h"),
            point(b"x"),
            range(b"z", b"z"),
        ]);
        assert_eq!(merged, vec![point(b"a"), range(b"c", b"h"), point(b"x")]);
    }

    #[test]
    fn a_point_inside_a_range_is_absorbed() {
        let merged = merge_spans(vec![range(b"a", b"c"), point(b"b")]);
        assert_eq!(merged, vec![range(b"a", b"c")]);
    }
}
