//! Ranges: which keys a tablet holds, and the meta records that say where each range lives.
//!
//! A tablet holds the keys `[start_key, end_key)` of its [`RangeDescriptor`] (an empty end
//! key: to the end of the keyspace). The root tablet (id [`ROOT_TABLET`]) starts with the whole
//! keyspace: the catalog, the meta records and, until it grows past the split threshold, the
//! tables, so that a small database is one tablet and its statements one Raft group's work. It
//! splits only at or above [`USER_START`], so the catalog and the meta records stay in it;
//! every other tablet comes from a split.
//!
//! Meta records live in the root tablet, one per range, keyed by the range's end key, so the
//! range holding `k` is the first record whose key sorts after `k`'s:
//!
//! ```text
//! /sys/meta/ 00 next_node_id          the node-id counter (be64)
//! /sys/meta/ 00 next_tablet_id        the tablet-id counter (be64)
//! /sys/meta/ 01 <end key>             RangeDescriptor of the range ending at <end key>
//! /sys/meta/ 02                       RangeDescriptor of the last range (no end key)
//! ```

use meridian_proto::v1 as pb;

pub use pb::RangeDescriptor;

/// The root tablet's id: the first tablet of every cluster.
pub const ROOT_TABLET: u64 = 1;

/// Where table data begins (`/t/<table id>/...`); the root tablet never splits below it.
pub const USER_START: &[u8] = b"/t";

/// The prefix of meta records.
pub const META_PREFIX: &[u8] = b"/sys/meta/";

const META_COUNTER: u8 = 0x00;
const META_FINITE: u8 = 0x01;
const META_LAST: u8 = 0x02;

/// The key of the tablet-id counter.
pub fn next_tablet_id_key() -> Vec<u8> {
    [META_PREFIX, &[META_COUNTER], b"next_tablet_id"].concat()
}

/// The meta record key of a range ending at `end_key` (empty: the last range).
pub fn meta_key(end_key: &[u8]) -> Vec<u8> {
    if end_key.is_empty() {
        [META_PREFIX, &[META_LAST]].concat()
    } else {
        [META_PREFIX, &[META_FINITE], end_key].concat()
    }
}

/// The span of meta records to search for the range holding `key`: its record is the first
/// one in `[start, end)`.
pub fn meta_lookup_span(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = [META_PREFIX, &[META_FINITE], key, &[0]].concat();
    (start, meta_span().1)
}

/// The meta records of ranges that end inside `desc` or where it ends: those a record of
/// `desc` replaces or makes stale.
pub fn meta_overlap_span(desc: &RangeDescriptor) -> (Vec<u8>, Vec<u8>) {
    let start = meta_lookup_span(&desc.start_key).0;
    let end = if desc.end_key.is_empty() {
        meta_span().1
    } else {
        [meta_key(&desc.end_key), vec![0]].concat()
    };
    (start, end)
}

/// Every meta record of a range.
pub fn meta_span() -> (Vec<u8>, Vec<u8>) {
    (
        [META_PREFIX, &[META_FINITE]].concat(),
        [META_PREFIX, &[META_LAST + 1]].concat(),
    )
}

/// The prefix of node liveness records (`pb::NodeLiveness`, one per node, in the root tablet).
pub const LIVENESS_PREFIX: &[u8] = b"/sys/live/";

/// The prefix of decommissioning marks (one empty record per node leaving the cluster).
pub const DECOMMISSION_PREFIX: &[u8] = b"/sys/decom/";

/// The prefix of the records of nodes that joined after `init` (`pb::ClusterMember`, one per
/// node; the members `init` formed the cluster with are in every node's stored descriptor).
pub const NODE_PREFIX: &[u8] = b"/sys/node/";

/// The key of the node-id counter (the next id a joining node gets, be64).
pub fn next_node_id_key() -> Vec<u8> {
    [META_PREFIX, &[META_COUNTER], b"next_node_id"].concat()
}

/// The key of `node`'s record under `prefix` (`LIVENESS_PREFIX`, `DECOMMISSION_PREFIX`).
pub fn node_key(prefix: &[u8], node: u64) -> Vec<u8> {
    [prefix, &node.to_be_bytes()].concat()
}

/// Every record under `prefix`.
pub fn prefix_span(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (
        prefix.to_vec(),
        meridian_storage::keycode::prefix_successor(prefix).unwrap_or_default(),
    )
}

/// A meta record's value: the range descriptor it stores.
pub fn decode_meta(value: &[u8]) -> crate::Result<RangeDescriptor> {
    use prost::Message;
    RangeDescriptor::decode(value)
        .map_err(|e| crate::Error::Internal(format!("undecodable meta record: {e}")))
}

/// Whether `desc` holds `key`.
pub fn contains(desc: &RangeDescriptor, key: &[u8]) -> bool {
    key >= desc.start_key.as_slice() && (desc.end_key.is_empty() || key < desc.end_key.as_slice())
}

/// Whether `desc` holds every key of `[start, end)` (`end` empty: to the end of the
/// keyspace).
pub fn contains_span(desc: &RangeDescriptor, start: &[u8], end: &[u8]) -> bool {
    if start < desc.start_key.as_slice() {
        return false;
    }
    match (desc.end_key.is_empty(), end.is_empty()) {
        (true, _) => true,
        (false, true) => false,
        (false, false) => end <= desc.end_key.as_slice(),
    }
}

/// `[start, end)` clipped to `desc` (empty `end`: unbounded); `None` when they do not
/// overlap.
pub fn clip(desc: &RangeDescriptor, start: &[u8], end: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let lo = start.max(desc.start_key.as_slice()).to_vec();
    let hi = match (end.is_empty(), desc.end_key.is_empty()) {
        (true, true) => Vec::new(),
        (true, false) => desc.end_key.clone(),
        (false, true) => end.to_vec(),
        (false, false) => end.min(desc.end_key.as_slice()).to_vec(),
    };
    (hi.is_empty() || lo < hi).then_some((lo, hi))
}

/// A descriptor for the whole keyspace, as a brand-new tablet starts.
pub fn whole_keyspace(tablet_id: u64, replicas: Vec<u64>) -> RangeDescriptor {
    RangeDescriptor {
        tablet_id,
        start_key: Vec::new(),
        end_key: Vec::new(),
        generation: 0,
        replicas,
        ..Default::default()
    }
}

/// A key for messages and logs: printable bytes as text, others as `\xNN`.
pub fn pretty_key(key: &[u8]) -> String {
    let mut out = String::new();
    for &b in key {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tablet 2's range `[start, end)` on node 1 (other modules' tests use it too).
    pub(crate) fn desc(start: &str, end: &str) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id: 2,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            generation: 1,
            replicas: vec![1],
            ..Default::default()
        }
    }

    #[test]
    fn containment_with_and_without_an_end() {
        let d = desc("b", "d");
        assert!(contains(&d, b"b") && contains(&d, b"c\xff") && !contains(&d, b"d"));
        assert!(!contains(&d, b"a"));
        let last = desc("d", "");
        assert!(contains(&last, b"\xff\xff") && !contains(&last, b"c"));
        assert!(contains_span(&d, b"b", b"d") && !contains_span(&d, b"b", b""));
        assert!(contains_span(&last, b"d", b""));
        assert_eq!(clip(&d, b"a", b""), Some((b"b".to_vec(), b"d".to_vec())));
        assert_eq!(clip(&d, b"c", b"cc"), Some((b"c".to_vec(), b"cc".to_vec())));
        assert_eq!(clip(&d, b"d", b"e"), None);
        assert_eq!(clip(&last, b"a", b""), Some((b"d".to_vec(), Vec::new())));
    }

    #[test]
    fn the_first_meta_record_after_a_key_names_its_range() {
        let mut records = [meta_key(b"/t"), meta_key(b"/t/5"), meta_key(b"")];
        records.sort();
        let find = |k: &[u8]| {
            let (lo, hi) = meta_lookup_span(k);
            records.iter().find(|r| **r >= lo && **r < hi).cloned()
        };
        assert_eq!(find(b"/sys/catalog"), Some(meta_key(b"/t")));
        assert_eq!(find(b"/t"), Some(meta_key(b"/t/5")));
        assert_eq!(find(b"/t/4/zz"), Some(meta_key(b"/t/5")));
        assert_eq!(find(b"/t/5"), Some(meta_key(b"")));
        assert_eq!(find(b"\xff\xff\xff"), Some(meta_key(b"")));
        assert!(next_tablet_id_key() < meta_span().0);
        assert!(next_node_id_key() < meta_span().0);
    }

    #[test]
    fn a_range_overlaps_the_records_ending_inside_it_or_where_it_ends() {
        let records = [
            meta_key(b"/t"),
            meta_key(b"/t/5"),
            meta_key(b"/t/5\x00"),
            meta_key(b"/t/9"),
            meta_key(b""),
        ];
        let overlapping = |d: &RangeDescriptor| {
            let (lo, hi) = meta_overlap_span(d);
            records
                .iter()
                .filter(|r| **r >= lo && **r < hi)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            overlapping(&desc("/t", "/t/9")),
            vec![meta_key(b"/t/5"), meta_key(b"/t/5\x00"), meta_key(b"/t/9")]
        );
        assert_eq!(
            overlapping(&desc("/t/5", "/t/5\x00")),
            vec![meta_key(b"/t/5\x00")]
        );
        assert_eq!(
            overlapping(&desc("/t/9", "")),
            vec![meta_key(b"")],
            "the last range"
        );
        assert_eq!(overlapping(&desc("", "/t")), vec![meta_key(b"/t")]);
    }
}
