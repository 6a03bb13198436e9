//! A tablet replica's node-local records in the engine's `Meta` space, next to the applied
//! index the storage crate keeps there (prefix `01`):
//!
//! ```text
//! 02 be64(tablet)                  RangeDescriptor   the replica's current range
//! 03 be64(tablet) <txn id>         PreparedTxn       a transaction prepared here (2PC)
//! 04 be64(tablet) <txn id>         TxnDecision       a decision this tablet coordinated
//! 05 be64(tablet)                  be64              approximate bytes written
//! 06                               (empty)           the store was bootstrapped
//! 07 be64(tablet)                  MergeFreeze       the tablet is frozen for a merge
//! 08 be64(tablet) be32(len) <txn id> be32(seq)
//!                                  StagedPiece       a staged piece of a large transaction
//! ```
//!
//! All of them change only when a Raft entry is applied, in the apply batch, so they describe
//! exactly the applied prefix of the log.

use meridian_proto::v1 as pb;
use meridian_storage::{KeyRange, KvEngine, ScanOrder, Space, WriteBatch};
use prost::Message;

use crate::{Error, Result};

const DESCRIPTOR: u8 = 0x02;
const PREPARED: u8 = 0x03;
const DECISION: u8 = 0x04;
const SIZE: u8 = 0x05;
const BOOTSTRAPPED: u8 = 0x06;
const FREEZE: u8 = 0x07;
const STAGED: u8 = 0x08;

fn key(tag: u8, tablet: u64, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + rest.len());
    k.push(tag);
    k.extend_from_slice(&tablet.to_be_bytes());
    k.extend_from_slice(rest);
    k
}

/// Whether the store on `engine` was bootstrapped (it may hold no replica now).
pub(crate) fn is_bootstrapped(engine: &dyn KvEngine) -> Result<bool> {
    Ok(engine.get(Space::Meta, &[BOOTSTRAPPED])?.is_some())
}

pub(crate) fn mark_bootstrapped(batch: &mut WriteBatch) {
    batch.put(Space::Meta, vec![BOOTSTRAPPED], Vec::new());
}

/// The key prefixes of every record of `tablet`.
pub(crate) fn record_prefixes(tablet: u64) -> [Vec<u8>; 6] {
    [DESCRIPTOR, PREPARED, DECISION, SIZE, FREEZE, STAGED].map(|tag| key(tag, tablet, &[]))
}

fn decode<M: Message + Default>(what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Internal(format!("undecodable {what} record: {e}")))
}

/// Every record under `prefix`, in key order.
fn load_all<M: Message + Default>(
    engine: &dyn KvEngine,
    prefix: &[u8],
    what: &str,
) -> Result<Vec<M>> {
    let mut out = Vec::new();
    for item in engine.iter(Space::Meta, KeyRange::prefix(prefix), ScanOrder::Forward)? {
        let (_, v) = item?;
        out.push(decode(what, &v)?);
    }
    Ok(out)
}

/// Every range descriptor stored on this engine (one per local replica).
pub(crate) fn load_descriptors(engine: &dyn KvEngine) -> Result<Vec<pb::RangeDescriptor>> {
    load_all(engine, &[DESCRIPTOR], "range descriptor")
}

pub(crate) fn load_descriptor(
    engine: &dyn KvEngine,
    tablet: u64,
) -> Result<Option<pb::RangeDescriptor>> {
    match engine.get(Space::Meta, &key(DESCRIPTOR, tablet, &[]))? {
        Some(v) => Ok(Some(decode("range descriptor", &v)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_descriptor(batch: &mut WriteBatch, desc: &pb::RangeDescriptor) {
    batch.put(
        Space::Meta,
        key(DESCRIPTOR, desc.tablet_id, &[]),
        desc.encode_to_vec(),
    );
}

pub(crate) fn load_prepared(engine: &dyn KvEngine, tablet: u64) -> Result<Vec<pb::PreparedTxn>> {
    load_all(engine, &key(PREPARED, tablet, &[]), "prepared transaction")
}

pub(crate) fn put_prepared(batch: &mut WriteBatch, tablet: u64, txn: &pb::PreparedTxn) {
    batch.put(
        Space::Meta,
        key(PREPARED, tablet, &txn.txn_id),
        txn.encode_to_vec(),
    );
}

pub(crate) fn delete_prepared(batch: &mut WriteBatch, tablet: u64, txn_id: &[u8]) {
    batch.delete(Space::Meta, key(PREPARED, tablet, txn_id));
}

pub(crate) fn load_decision(
    engine: &dyn KvEngine,
    tablet: u64,
    txn_id: &[u8],
) -> Result<Option<pb::TxnDecision>> {
    match engine.get(Space::Meta, &key(DECISION, tablet, txn_id))? {
        Some(v) => Ok(Some(decode("transaction decision", &v)?)),
        None => Ok(None),
    }
}

pub(crate) fn load_decisions(engine: &dyn KvEngine, tablet: u64) -> Result<Vec<pb::TxnDecision>> {
    load_all(engine, &key(DECISION, tablet, &[]), "transaction decision")
}

pub(crate) fn put_decision(batch: &mut WriteBatch, tablet: u64, d: &pb::TxnDecision) {
    batch.put(
        Space::Meta,
        key(DECISION, tablet, &d.txn_id),
        d.encode_to_vec(),
    );
}

pub(crate) fn delete_decision(batch: &mut WriteBatch, tablet: u64, txn_id: &[u8]) {
    batch.delete(Space::Meta, key(DECISION, tablet, txn_id));
}

pub(crate) fn load_size(engine: &dyn KvEngine, tablet: u64) -> Result<u64> {
    Ok(engine
        .get(Space::Meta, &key(SIZE, tablet, &[]))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

pub(crate) fn put_size(batch: &mut WriteBatch, tablet: u64, bytes: u64) {
    batch.put(
        Space::Meta,
        key(SIZE, tablet, &[]),
        bytes.to_be_bytes().to_vec(),
    );
}

pub(crate) fn load_freeze(engine: &dyn KvEngine, tablet: u64) -> Result<Option<pb::MergeFreeze>> {
    match engine.get(Space::Meta, &key(FREEZE, tablet, &[]))? {
        Some(v) => Ok(Some(decode("merge freeze", &v)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_freeze(batch: &mut WriteBatch, tablet: u64, freeze: &pb::MergeFreeze) {
    batch.put(
        Space::Meta,
        key(FREEZE, tablet, &[]),
        freeze.encode_to_vec(),
    );
}

pub(crate) fn delete_freeze(batch: &mut WriteBatch, tablet: u64) {
    batch.delete(Space::Meta, key(FREEZE, tablet, &[]));
}

fn staged_key(tablet: u64, txn_id: &[u8], seq: u32) -> Vec<u8> {
    let len = u32::try_from(txn_id.len()).unwrap_or(u32::MAX);
    let rest = [&len.to_be_bytes()[..], txn_id, &seq.to_be_bytes()].concat();
    key(STAGED, tablet, &rest)
}

/// Every staged piece of `tablet` (for a snapshot).
pub(crate) fn load_all_staged(engine: &dyn KvEngine, tablet: u64) -> Result<Vec<pb::StagedPiece>> {
    load_all(engine, &key(STAGED, tablet, &[]), "staged piece")
}

pub(crate) fn load_staged(
    engine: &dyn KvEngine,
    tablet: u64,
    txn_id: &[u8],
    seq: u32,
) -> Result<Option<pb::StagedPiece>> {
    match engine.get(Space::Meta, &staged_key(tablet, txn_id, seq))? {
        Some(v) => Ok(Some(decode("staged piece", &v)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_staged(batch: &mut WriteBatch, tablet: u64, piece: &pb::StagedPiece) {
    batch.put(
        Space::Meta,
        staged_key(tablet, &piece.txn_id, piece.seq),
        piece.encode_to_vec(),
    );
}

pub(crate) fn delete_staged(batch: &mut WriteBatch, tablet: u64, txn_id: &[u8], seq: u32) {
    batch.delete(Space::Meta, staged_key(tablet, txn_id, seq));
}
