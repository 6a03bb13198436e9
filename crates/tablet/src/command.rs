//! Encoding of tablet commands (the payload of Raft log entries) to and from protobuf.

use meridian_clock::Timestamp;
use meridian_proto::v1 as pb;
use prost::Message;

use crate::kv::{Condition, Mutation, Span, WriteRequest};
use crate::{Error, Result};

/// The protobuf form of a write request, with `commit_ts` left 0 (the leader assigns it).
pub fn write_to_proto(req: &WriteRequest) -> pb::WriteCommand {
    pb::WriteCommand {
        commit_ts: 0,
        read_ts: req.read_ts.map_or(0, Timestamp::as_nanos),
        read_spans: req
            .read_spans
            .iter()
            .map(|s| pb::Span {
                start: s.start.clone(),
                end: s.end.clone().unwrap_or_default(),
            })
            .collect(),
        conditions: req
            .conditions
            .iter()
            .map(|c| match c {
                Condition::NotExists(k) => pb::Condition {
                    kind: pb::condition::Kind::NotExists as i32,
                    key: k.clone(),
                },
                Condition::Exists(k) => pb::Condition {
                    kind: pb::condition::Kind::Exists as i32,
                    key: k.clone(),
                },
            })
            .collect(),
        mutations: req
            .mutations
            .iter()
            .map(|m| match m {
                Mutation::Put { key, value } => pb::Mutation {
                    kind: pb::mutation::Kind::Put as i32,
                    key: key.clone(),
                    value: value.clone(),
                },
                Mutation::Delete { key } => pb::Mutation {
                    kind: pb::mutation::Kind::Delete as i32,
                    key: key.clone(),
                    value: Vec::new(),
                },
            })
            .collect(),
    }
}

/// The write request a protobuf write carries (its `commit_ts` is ignored). Unknown enum values
/// (from a newer or corrupt peer) are an error, never a guess.
pub fn write_from_proto(cmd: pb::WriteCommand) -> Result<WriteRequest> {
    let bad = |what: &str, v: i32| Error::Internal(format!("unknown {what} kind {v} in a write"));
    let conditions = cmd
        .conditions
        .into_iter()
        .map(|c| match pb::condition::Kind::try_from(c.kind) {
            Ok(pb::condition::Kind::NotExists) => Ok(Condition::NotExists(c.key)),
            Ok(pb::condition::Kind::Exists) => Ok(Condition::Exists(c.key)),
            Err(_) => Err(bad("condition", c.kind)),
        })
        .collect::<Result<_>>()?;
    let mutations = cmd
        .mutations
        .into_iter()
        .map(|m| match pb::mutation::Kind::try_from(m.kind) {
            Ok(pb::mutation::Kind::Put) => Ok(Mutation::Put {
                key: m.key,
                value: m.value,
            }),
            Ok(pb::mutation::Kind::Delete) => Ok(Mutation::Delete { key: m.key }),
            Err(_) => Err(bad("mutation", m.kind)),
        })
        .collect::<Result<_>>()?;
    Ok(WriteRequest {
        read_ts: (cmd.read_ts != 0).then(|| Timestamp::from_nanos(cmd.read_ts)),
        read_spans: cmd
            .read_spans
            .into_iter()
            .map(|s| Span {
                start: s.start,
                end: (!s.end.is_empty()).then_some(s.end),
            })
            .collect(),
        conditions,
        mutations,
    })
}

/// Builds the log entry payload for a write proposed with commit timestamp `commit_ts`.
pub(crate) fn encode_write(proposal_id: u64, commit_ts: Timestamp, req: &WriteRequest) -> Vec<u8> {
    let write = pb::WriteCommand {
        commit_ts: commit_ts.as_nanos(),
        ..write_to_proto(req)
    };
    pb::TabletCommand {
        proposal_id,
        command: Some(pb::tablet_command::Command::Write(write)),
    }
    .encode_to_vec()
}

/// Builds the log entry payload for a garbage collection below `horizon`.
pub(crate) fn encode_gc(proposal_id: u64, horizon: Timestamp) -> Vec<u8> {
    pb::TabletCommand {
        proposal_id,
        command: Some(pb::tablet_command::Command::Gc(pb::GcCommand {
            horizon: horizon.as_nanos(),
        })),
    }
    .encode_to_vec()
}

/// Decodes a log entry payload. A payload that does not decode is corruption: entries are only
/// ever written by [`encode_write`]/[`encode_gc`].
pub(crate) fn decode(data: &[u8]) -> Result<pb::TabletCommand> {
    pb::TabletCommand::decode(data)
        .map_err(|e| Error::Internal(format!("undecodable tablet command in the raft log: {e}")))
}

/// A decoded write, borrowed views over the protobuf message.
pub(crate) struct WriteView<'a> {
    pub commit_ts: Timestamp,
    pub read_ts: Option<Timestamp>,
    pub cmd: &'a pb::WriteCommand,
}

impl<'a> WriteView<'a> {
    pub(crate) fn new(cmd: &'a pb::WriteCommand) -> Self {
        WriteView {
            commit_ts: Timestamp::from_nanos(cmd.commit_ts),
            read_ts: (cmd.read_ts != 0).then(|| Timestamp::from_nanos(cmd.read_ts)),
            cmd,
        }
    }

    /// Read spans as (start, optional exclusive end).
    pub(crate) fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.cmd.read_spans.iter().map(|s| Span {
            start: s.start.clone(),
            end: (!s.end.is_empty()).then(|| s.end.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_round_trip() {
        let req = WriteRequest {
            read_ts: Some(Timestamp::from_nanos(5)),
            read_spans: vec![
                Span {
                    start: b"a".to_vec(),
                    end: None,
                },
                Span {
                    start: b"b".to_vec(),
                    end: Some(b"c".to_vec()),
                },
            ],
            conditions: vec![Condition::NotExists(b"k".to_vec())],
            mutations: vec![
                Mutation::Put {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                },
                Mutation::Delete { key: b"d".to_vec() },
            ],
        };
        let bytes = encode_write(7, Timestamp::from_nanos(9), &req);
        let cmd = decode(&bytes).unwrap();
        assert_eq!(cmd.proposal_id, 7);
        let Some(pb::tablet_command::Command::Write(w)) = &cmd.command else {
            panic!("not a write")
        };
        let view = WriteView::new(w);
        assert_eq!(view.commit_ts, Timestamp::from_nanos(9));
        assert_eq!(view.read_ts, Some(Timestamp::from_nanos(5)));
        assert_eq!(view.spans().collect::<Vec<_>>(), req.read_spans);
        assert_eq!(w.mutations.len(), 2);
        assert_eq!(write_from_proto(w.clone()).unwrap(), req);
        let mut bad = w.clone();
        bad.mutations[0].kind = 42;
        assert!(write_from_proto(bad).is_err());
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
