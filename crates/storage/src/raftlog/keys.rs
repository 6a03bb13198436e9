//! Key layout and encoding of Raft log state.
//!
//! ```text
//! RaftLog space:    be64(group) ++ be64(index)  -> Entry (protobuf)
//! RaftState space:  be64(group) ++ 01           -> HardState (protobuf)
//!                   be64(group) ++ 02           -> ConfState (protobuf)
//!                   be64(group) ++ 03           -> be64(truncated index) ++ be64(truncated term)
//! ```
//!
//! Big-endian group ids and indexes keep each group's entries contiguous and in index order.

use protobuf::Message;

use crate::engine::KeyRange;
use crate::error::{Error, Result};

const HARD_STATE: u8 = 0x01;
const CONF_STATE: u8 = 0x02;
const TRUNCATED: u8 = 0x03;

/// The key of entry `index` of group `group_id`.
pub(super) fn entry_key(group_id: u64, index: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&group_id.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The index in an entry key of group `group_id`.
pub(super) fn entry_index(group_id: u64, key: &[u8]) -> Result<u64> {
    match key.split_at_checked(8) {
        Some((group, index)) if group == group_id.to_be_bytes() && index.len() == 8 => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(index);
            Ok(u64::from_be_bytes(bytes))
        }
        _ => Err(Error::corrupt(format!(
            "raft log of group {group_id}: bad entry key {key:02x?}"
        ))),
    }
}

/// Entries `[low, high)` of group `group_id`.
pub(super) fn entry_range(group_id: u64, low: u64, high: u64) -> KeyRange {
    KeyRange::half_open(entry_key(group_id, low), entry_key(group_id, high))
}

/// Every entry of group `group_id`.
pub(super) fn all_entries(group_id: u64) -> KeyRange {
    KeyRange::prefix(&group_id.to_be_bytes())
}

fn state_key(group_id: u64, tag: u8) -> [u8; 9] {
    let mut key = [tag; 9];
    key[..8].copy_from_slice(&group_id.to_be_bytes());
    key
}

pub(super) fn hard_state_key(group_id: u64) -> [u8; 9] {
    state_key(group_id, HARD_STATE)
}

pub(super) fn conf_state_key(group_id: u64) -> [u8; 9] {
    state_key(group_id, CONF_STATE)
}

pub(super) fn truncated_key(group_id: u64) -> [u8; 9] {
    state_key(group_id, TRUNCATED)
}

/// Encodes the truncated state: the index and term of the last entry removed from the log.
pub(super) fn encode_truncated(index: u64, term: u64) -> [u8; 16] {
    entry_key(index, term)
}

pub(super) fn decode_truncated(group_id: u64, v: &[u8]) -> Result<(u64, u64)> {
    let bytes: [u8; 16] = v.try_into().map_err(|_| {
        Error::corrupt(format!(
            "raft log of group {group_id}: truncated state has {} bytes",
            v.len()
        ))
    })?;
    let mut index = [0; 8];
    let mut term = [0; 8];
    index.copy_from_slice(&bytes[..8]);
    term.copy_from_slice(&bytes[8..]);
    Ok((u64::from_be_bytes(index), u64::from_be_bytes(term)))
}

/// Serialises a protobuf message.
pub(super) fn encode<M: Message>(m: &M) -> Result<Vec<u8>> {
    m.write_to_bytes().map_err(|e| Error::Raft(e.into()))
}

/// Parses a protobuf message, describing failures as corruption of `what`.
pub(super) fn decode<M: Message>(group_id: u64, what: &str, bytes: &[u8]) -> Result<M> {
    M::parse_from_bytes(bytes).map_err(|e| {
        Error::corrupt(format!(
            "raft log of group {group_id}: cannot parse {what}: {e}"
        ))
    })
}
