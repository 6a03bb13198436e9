//! EXPLAIN ANALYZE: the statement runs with a [`Profile`] shared by its executors, which
//! records for each plan operator how often it ran (loops), the rows it produced over all
//! runs, the time it took with its inputs, the most memory it held (`memory.rs`) and, for
//! scans, what it read from the keyspace. The plan is then printed as EXPLAIN prints it, each
//! operator's line followed by those numbers, and a summary: the statement's peak memory
//! against its limit and the execution time.
//!
//! ```text
//!  Sort: v NULLS LAST (actual time=0.210 rows=3 loops=1; memory: 1kB)
//!    Scan: t, full scan (actual time=0.150 rows=3 loops=1; read: tablets=1 spans=1 keys=3 bytes=75)
//!  Peak Memory: 1kB (limit 256MB)
//!  Execution Time: 0.300 ms
//! ```
//!
//! Operators are known by their address in the plan tree, which outlives the run and the
//! printing. The statement really runs: EXPLAIN ANALYZE of an INSERT, UPDATE or DELETE writes,
//! as in PostgreSQL, and its first line counts the rows written (or returned). Reads outside any
//! operator (ON CONFLICT probes) are shown on that line. The tablets a scan touched are counted
//! after the run from the spans it read and the range directory (with `VERBOSE`, listed by id);
//! a keyspace without a directory is one tablet. Plain `EXPLAIN (VERBOSE)` lists with each
//! scan the tablets its planned key spans reach ([`scan_tablets`]). Subquery plans are not
//! printed (EXPLAIN shows them as `(subquery)`); their work counts in the time of the operator
//! that evaluates them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_tablet::Span;
use meridian_tablet::range::{self, RangeDescriptor};

use super::ExecContext;
use super::memory::pretty_kb;
use crate::api::{ColumnInfo, Datum, SqlType, StatementResult};
use crate::error::Result;
use crate::plan::keyrange::{ByteSpan, KeyRange};
use crate::plan::{AnalyzePlan, Plan, Rel, ScanPlan, explain_noted};

/// The profile key of the reads a statement makes outside its operators.
pub(crate) const STATEMENT: usize = 0;

/// The profile key of operator `rel`.
pub(crate) fn node_id(rel: &Rel) -> usize {
    std::ptr::from_ref(rel) as usize
}

/// What the operators of one statement did.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    nodes: Mutex<HashMap<usize, NodeStats>>,
}

/// What one operator did, over all its runs.
#[derive(Debug, Default)]
struct NodeStats {
    loops: u64,
    rows: u64,
    elapsed: Duration,
    /// Key spans read from the keyspace (reads the statement's cache answered are not here).
    spans: Vec<Span>,
    keys: u64,
    bytes: u64,
    /// The most memory one run held.
    memory: Option<usize>,
}

impl Profile {
    fn with(&self, node: usize, f: impl FnOnce(&mut NodeStats)) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        f(nodes.entry(node).or_default());
    }

    /// `node` ran once more, producing `rows` rows in `elapsed`.
    pub(crate) fn ran(&self, node: usize, rows: usize, elapsed: Duration) {
        self.with(node, |s| {
            s.loops += 1;
            s.rows += rows as u64;
            s.elapsed += elapsed;
        });
    }

    /// `node` read `span` from the keyspace: `keys` pairs of `bytes` bytes in all.
    pub(crate) fn read(&self, node: usize, span: Span, keys: usize, bytes: usize) {
        self.with(node, |s| {
            s.spans.push(span);
            s.keys += keys as u64;
            s.bytes += bytes as u64;
        });
    }

    /// One run of `node` held at most `peak` bytes.
    pub(crate) fn memory(&self, node: usize, peak: usize) {
        self.with(node, |s| s.memory = Some(s.memory.unwrap_or(0).max(peak)));
    }
}

/// Runs `a`'s statement under a profile and prints its plan with what each operator did.
pub(crate) async fn explain_analyze(
    cx: &mut ExecContext<'_>,
    a: &AnalyzePlan,
) -> Result<StatementResult> {
    let profile = Arc::new(Profile::default());
    cx.profile = Some(profile.clone());
    let watch = crate::metrics::Stopwatch::start();
    let result = super::execute_statement(cx, &a.plan).await;
    let elapsed = watch.elapsed();
    cx.profile = None;
    let result = result?;
    let directory = crate::ranges::directory(cx.base).await?;
    let nodes = std::mem::take(&mut *profile.nodes.lock().unwrap_or_else(|p| p.into_inner()));
    let marks = super::vectorized_marks(&a.plan, cx.vectorize);
    let shown = Shown {
        timing: a.timing,
        verbose: a.verbose,
    };
    let noted = |r: &Rel| {
        let stats = nodes.get(&node_id(r));
        let reads = matches!(r, Rel::Scan(_)) || stats.is_some_and(|s| !s.spans.is_empty());
        marks(r) + &note(stats, reads, &directory, shown)
    };
    let mut lines = explain_noted(&a.plan, &noted);
    if !matches!(a.plan, Plan::Query(_)) {
        // The first line is the write itself, which ran once.
        let statement = nodes.get(&STATEMENT);
        let stats = NodeStats {
            loops: 1,
            rows: written(&result),
            elapsed,
            spans: statement.map(|s| s.spans.clone()).unwrap_or_default(),
            keys: statement.map_or(0, |s| s.keys),
            bytes: statement.map_or(0, |s| s.bytes),
            memory: None,
        };
        let reads = !stats.spans.is_empty();
        if let Some(first) = lines.first_mut() {
            first.push_str(&note(Some(&stats), reads, &directory, shown));
        }
    }
    if a.summary {
        lines.push(format!(
            "Peak Memory: {} (limit {})",
            pretty_kb(cx.memory.peak()),
            crate::vars::format_memory(cx.memory.limit())
        ));
        lines.push(format!("Execution Time: {:.3} ms", millis(elapsed)));
    }
    Ok(StatementResult::Query {
        columns: vec![ColumnInfo {
            name: "QUERY PLAN".to_string(),
            ty: SqlType::Text,
        }],
        rows: lines.into_iter().map(|l| vec![Datum::Text(l)]).collect(),
    })
}

/// The rows a write affected: those it returned, or the count in its command tag.
fn written(result: &StatementResult) -> u64 {
    match result {
        StatementResult::Query { rows, .. } => rows.len() as u64,
        StatementResult::Command { tag } => tag
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// What EXPLAIN ANALYZE's options ask each operator's line to show.
#[derive(Clone, Copy)]
struct Shown {
    /// Operator times.
    timing: bool,
    /// The ids of the tablets read, after their count.
    verbose: bool,
}

/// The text after an operator's line: ` (actual time=... rows=... loops=...; read: ...;
/// memory: ...)`, or ` (never executed)`.
fn note(
    stats: Option<&NodeStats>,
    reads: bool,
    directory: &[RangeDescriptor],
    shown: Shown,
) -> String {
    let Some(s) = stats else {
        return " (never executed)".to_string();
    };
    let mut out = " (actual ".to_string();
    if shown.timing {
        out.push_str(&format!("time={:.3} ", millis(s.elapsed)));
    }
    out.push_str(&format!("rows={} loops={}", s.rows, s.loops));
    if reads {
        let touched = tablets(directory, &s.spans);
        let ids = if shown.verbose {
            format!(" ({})", tablet_ids(&touched))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "; read: tablets={}{ids} spans={} keys={} bytes={}",
            touched.len(),
            s.spans.len(),
            s.keys,
            s.bytes
        ));
    }
    if let Some(m) = s.memory {
        out.push_str(&format!("; memory: {}", pretty_kb(m)));
    }
    out.push(')');
    out
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The most tablet ids an EXPLAIN line lists.
const MAX_LISTED: usize = 16;

/// EXPLAIN (VERBOSE)'s note for a scan: the tablets whose ranges hold a key it reads, from the
/// range directory as it is now. A scan whose keys are computed per execution (the inner side
/// of a lookup join) lists those holding any key of its table or index.
pub(crate) fn scan_tablets(directory: &[RangeDescriptor], scan: &ScanPlan) -> String {
    let range = if scan.dynamic {
        &KeyRange::Full
    } else {
        &scan.range
    };
    let spans: Vec<Span> = range
        .byte_spans_for(&scan.table, scan.access)
        .into_iter()
        .map(|s| match s {
            ByteSpan::Point(k) => Span::key(&k),
            ByteSpan::Range(start, end) => Span {
                start,
                end: Some(end),
            },
        })
        .collect();
    format!(" ({})", tablet_list(directory, &tablets(directory, &spans)))
}

/// `tablets: 12, 13`, `tablets: none`, or for a keyspace without a directory `tablets: one
/// keyspace`.
fn tablet_list(directory: &[RangeDescriptor], touched: &[u64]) -> String {
    if touched.is_empty() {
        "tablets: none".into()
    } else if directory.is_empty() {
        "tablets: one keyspace".into()
    } else {
        format!("tablets: {}", tablet_ids(touched))
    }
}

/// `12, 13`: at most [`MAX_LISTED`] ids, then how many in all.
fn tablet_ids(touched: &[u64]) -> String {
    let ids: Vec<String> = touched
        .iter()
        .take(MAX_LISTED)
        .map(u64::to_string)
        .collect();
    let more = if touched.len() > MAX_LISTED {
        format!(", ... ({} in all)", touched.len())
    } else {
        String::new()
    };
    format!("{}{more}", ids.join(", "))
}

/// The tablets of `directory` that hold a key of `spans`, each once, in the order the spans
/// first reach them (a keyspace without a directory is one tablet, numbered 0 here).
fn tablets(directory: &[RangeDescriptor], spans: &[Span]) -> Vec<u64> {
    if directory.is_empty() {
        return if spans.is_empty() { vec![] } else { vec![0] };
    }
    let mut touched = Vec::new();
    let mut known = HashSet::new();
    for span in spans {
        // The directory is in key order: skip the ranges that end before the span starts.
        let first = directory.partition_point(|d| {
            !d.end_key.is_empty() && d.end_key.as_slice() <= span.start.as_slice()
        });
        for d in &directory[first..] {
            let overlaps = match &span.end {
                None => range::contains(d, &span.start),
                Some(end) => range::clip(d, &span.start, end).is_some(),
            };
            if !overlaps {
                break;
            }
            if known.insert(d.tablet_id) {
                touched.push(d.tablet_id);
            }
        }
    }
    touched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(tablet_id: u64, start: &[u8], end: &[u8]) -> RangeDescriptor {
        RangeDescriptor {
            tablet_id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..range::whole_keyspace(tablet_id, vec![1])
        }
    }

    fn span(start: &[u8], end: Option<&[u8]>) -> Span {
        Span {
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn tablets_are_listed_once_in_key_order() {
        let dir = [
            desc(1, b"", b"/t/1"),
            desc(2, b"/t/1", b"/t/5"),
            desc(3, b"/t/5", b""),
        ];
        assert_eq!(tablets(&dir, &[]), Vec::<u64>::new());
        assert_eq!(tablets(&dir, &[span(b"/t/2", Some(b"/t/3"))]), [2]);
        assert_eq!(tablets(&dir, &[span(b"/t/0", Some(b"/t/6"))]), [1, 2, 3]);
        // A span ending where a tablet starts does not touch it.
        assert_eq!(tablets(&dir, &[span(b"/t/1", Some(b"/t/5"))]), [2]);
        assert_eq!(
            tablets(&dir, &[span(b"/t/7", None), span(b"/t/8", None)]),
            [3]
        );
        assert_eq!(
            tablets(&dir, &[span(b"/t/0", None), span(b"/t/6", None)]),
            [1, 3]
        );
        assert_eq!(tablets(&[], &[span(b"/t/7", None)]), [0]);
    }

    #[test]
    fn tablet_lists_are_cut_short() {
        let dir: Vec<RangeDescriptor> = (1..=20u8)
            .map(|i| desc(u64::from(i), &[i], &[i + 1]))
            .collect();
        let all: Vec<u64> = (1..=20).collect();
        assert_eq!(
            tablet_list(&dir, &all),
            "tablets: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ... (20 in all)"
        );
        assert_eq!(tablet_list(&dir, &[7, 3]), "tablets: 7, 3");
        assert_eq!(tablet_list(&dir, &[]), "tablets: none");
        assert_eq!(tablet_list(&[], &[0]), "tablets: one keyspace");
    }
}
