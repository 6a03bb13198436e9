//! The key-value interface the layers above (SQL, later the transaction layer) use to read and
//! write a tablet's keyspace.

use async_trait::async_trait;
use meridian_clock::Timestamp;

use crate::Result;

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

/// A span of keys read by a writer: `[start, end)`, or the single key `start` when `end` is
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First key.
    pub start: Vec<u8>,
    /// Exclusive end; `None` for a point span.
    pub end: Option<Vec<u8>>,
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
        }
    }
}

/// A key-value pair returned by a scan.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// Reads and writes of an ordered, versioned keyspace.
#[async_trait]
pub trait KvClient: Send + Sync + 'static {
    /// A timestamp at which a snapshot read sees every write acknowledged before this call
    /// began (and that no later write will ever be assigned).
    async fn read_ts(&self) -> Result<Timestamp>;

    /// The value of `key` as of `ts`.
    async fn get(&self, key: &[u8], ts: Timestamp) -> Result<Option<Vec<u8>>>;

    /// The values of `keys` as of `ts`, in order. Implementations that reach the data over a
    /// network answer in one round trip; the default asks for each key in turn.
    async fn get_many(&self, keys: &[Vec<u8>], ts: Timestamp) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k, ts).await?);
        }
        Ok(out)
    }

    /// Live pairs in `[start, end)` as of `ts`, in key order, at most `limit` of them.
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<KvPair>>;

    /// Commits `req` and returns its commit timestamp once it is durable on a majority and
    /// `TT.after(commit_ts)` holds (commit wait).
    async fn write(&self, req: WriteRequest) -> Result<Timestamp>;

    /// Splits the keyspace so that a tablet starts at `key` (nothing happens when one does).
    /// A keyspace that is a single tablet cannot split and says so.
    async fn split_at(&self, key: &[u8]) -> Result<()> {
        let _ = key;
        Err(crate::Error::Internal(
            "this keyspace is a single tablet and cannot be split".into(),
        ))
    }
}
