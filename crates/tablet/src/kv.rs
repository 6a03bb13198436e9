//! The key-value interface the layers above (SQL, later the transaction layer) use to read and
//! write a tablet's keyspace.

use async_trait::async_trait;
use meridian_clock::Timestamp;

use crate::{LockOwner, Result};

/// A precondition on one key, checked at apply time against the latest committed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key must have no live version.
    NotExists(Vec<u8>),
    /// The key must have a live version.
    Exists(Vec<u8>),
}

/// A change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Write `value` under `key`.
    Put {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete `key` (an MVCC tombstone).
    Delete {
        /// Key.
        key: Vec<u8>,
    },
}

impl Mutation {
    /// The key written or deleted.
    pub fn key(&self) -> &[u8] {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key,
        }
    }
}

/// A span of keys read by a writer: `[start, end)`, or the single key `start` when `end` is
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First key.
    pub start: Vec<u8>,
    /// Exclusive end; `None` for a point span.
    pub end: Option<Vec<u8>>,
}

impl Span {
    /// The single key `key`.
    pub fn key(key: &[u8]) -> Span {
        Span {
            start: key.to_vec(),
            end: None,
        }
    }
}

/// An atomic, optimistic write. It commits only if every condition holds and, when `read_ts`
/// is set, no key in `read_spans` got a version newer than `read_ts`; then all mutations become
/// visible at one commit timestamp. This gives serializable read-modify-write statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteRequest {
    /// The snapshot the writer read its inputs at.
    pub read_ts: Option<Timestamp>,
    /// What it read (validated against `read_ts`).
    pub read_spans: Vec<Span>,
    /// Preconditions.
    pub conditions: Vec<Condition>,
    /// Changes.
    pub mutations: Vec<Mutation>,
    /// The transaction committing, when it took row locks (the leader lets it pass its own
    /// locks and releases them once the write commits or fails for a reason other than a
    /// conflict, after which the transaction may write again); `None` for a plain write,
    /// which waits for every lock on the keys it changes.
    pub lock_owner: Option<LockOwner>,
}

impl WriteRequest {
    /// Puts `value` under `key` provided nothing wrote `key` after `read_ts`: a
    /// read-modify-write of one key.
    pub fn put_if_unchanged(read_ts: Timestamp, key: Vec<u8>, value: Vec<u8>) -> Self {
        WriteRequest {
            read_ts: Some(read_ts),
            read_spans: vec![Span {
                start: key.clone(),
                end: None,
            }],
            conditions: Vec::new(),
            mutations: vec![Mutation::Put { key, value }],
            lock_owner: None,
        }
    }
}

/// A key-value pair returned by a scan.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// See [`KvClient::get_compared`]: whether a key's value `new` (`None`: absent) gives a reader
/// the same result as the value `old` it read.
pub type SameResult = std::sync::Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>) -> bool + Send + Sync>;

/// Reads and writes of an ordered, versioned keyspace.
#[async_trait]
pub trait KvClient: Send + Sync + 'static {
    /// A timestamp at which a snapshot read sees every write acknowledged before this call
    /// began (and that no later write will ever be assigned).
    async fn read_ts(&self) -> Result<Timestamp>;

    /// The value of `key` as of `ts`, and the newest commit timestamp among the versions the
    /// read saw: the one it returns, or the deletion that makes it answer `None`
    /// ([`Timestamp::ZERO`] when it saw none).
    ///
    /// A write is visible where it applied before its commit wait ends, so a reader that saw
    /// it must itself wait for `TT.after` that timestamp before it answers its client (see
    /// ARCHITECTURE.md, "Reads wait out what they saw"). A keyspace that cannot tell answers
    /// `ts`, which makes the reader wait as if it saw a write at its own timestamp: always
    /// safe, only slower.
    async fn get_seen(&self, key: &[u8], ts: Timestamp) -> Result<(Option<Vec<u8>>, Timestamp)>;

    /// The value of `key` as of `ts`.
    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>> {
        Ok(self.get_seen(key, ts).await?.0)
    }

    /// The values of `keys` as of `ts`, in order, with the newest version seen as in
    /// [`KvClient::get_seen`]. Implementations that reach the data over a network answer in
    /// one round trip; the default asks for each key in turn.
    async fn get_many_seen(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<(Vec<Option<Vec<u8>>>, Timestamp)> {
        let mut out = Vec::with_capacity(keys.len());
        let mut seen = Timestamp::ZERO;
        for k in keys {
            let (v, at) = self.get_seen(k, ts).await?;
            out.push(v);
            seen = seen.max(at);
        }
        Ok((out, seen))
    }

    /// The values of `keys` as of `ts`, in order.
    async fn get_many(&self, keys: &[Vec<u8>], ts: Timestamp) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(self.get_many_seen(keys, ts).await?.0)
    }

    /// Live pairs in `[start, end)` as of `ts`, in key order, at most `limit` of them, with
    /// the newest version seen as in [`KvClient::get_seen`] (deletions of keys in the span it
    /// skipped included).
    async fn scan_seen(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<(Vec<KvPair>, Timestamp)>;

    /// Live pairs in `[start, end)` as of `ts`, in key order, at most `limit` of them.
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<KvPair>> {
        Ok(self.scan_seen(start, end, ts, limit).await?.0)
    }

    /// Commits `req` and returns its commit timestamp once it is durable on a majority and
    /// `TT.after(commit_ts)` holds (commit wait).
    async fn write(&self, req: WriteRequest) -> Result<Timestamp>;

    /// The value of `key` as of `ts`, for a reader whose result depends only on part of the
    /// value. `same(old, new)` says whether a later value `new` would give the reader the
    /// same result as the value `old` it read; a transaction may then accept a change to the
    /// key after its snapshot instead of failing (a row whose other columns changed). The
    /// default reads as [`KvClient::get`] does.
    async fn get_compared(
        &self,
        key: &[u8],
        ts: Timestamp,
        same: SameResult,
    ) -> Result<Option<Vec<u8>>> {
        let _ = same;
        self.get(key, ts).await
    }

    /// The value of `key` as of `ts`, read to be changed by the transaction `owner`:
    /// implementations with a lock table take the key's lock first (see
    /// [`KvClient::lock`]); the default reads without one.
    async fn get_for_update(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>> {
        self.get(key, ts).await
    }

    /// Takes the exclusive locks on `keys` for the transaction `owner`, whose snapshot is
    /// `read_ts`, at their tablets' leaders (waiting for older transactions, wounding younger
    /// ones). Answers `None` when no key has a version newer than `read_ts`, and
    /// `Some(ts)` when one has: a snapshot at `ts` holds the newest versions, and the
    /// transaction must move to it (after [`KvClient::refresh`]) before reading them.
    /// A keyspace without a lock table (a test double) takes no locks and answers `None`: its
    /// transactions rely on validation at commit alone, which is correct, only less patient.
    async fn lock(
        &self,
        keys: &[Vec<u8>],
        owner: &LockOwner,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let _ = (keys, owner, read_ts);
        Ok(None)
    }

    /// Drops the locks the transaction `owner` holds on the tablets holding `keys` (it ended).
    /// Best effort: a lock not released lapses by itself.
    async fn unlock(&self, keys: &[Vec<u8>], owner: &[u8]) -> Result<()> {
        let _ = (keys, owner);
        Ok(())
    }

    /// Checks that nothing in `spans` got a version in `(from, to]`, after making the snapshot
    /// at `to` final where they live: what was read at `from` is still what a read at `to`
    /// sees. `WriteConflict` when something changed. The default cannot tell and always
    /// reports a conflict (the caller then starts over, which is always safe).
    async fn refresh(&self, spans: &[Span], from: Timestamp, to: Timestamp) -> Result<()> {
        let _ = (spans, to);
        Err(crate::Error::WriteConflict { read_ts: from })
    }

    /// Splits the keyspace so that a tablet starts at `key` (nothing happens when one does).
    /// A keyspace that is a single tablet cannot split and says so.
    async fn split_at(&self, key: &[u8]) -> Result<()> {
        let _ = key;
        Err(crate::Error::Internal(
            "this keyspace is a single tablet and cannot be split".into(),
        ))
    }
}
