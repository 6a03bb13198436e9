//! Columnar execution on Arrow record batches, for the plans where it pays: a range or full
//! scan of a table, the filters and projections above it, and an aggregation on top
//! (`meridian.vectorize`, on by default).
//!
//! The scan decodes the rows it reads (each to its values, as the row path does) and appends
//! them to Arrow column builders, [`BATCH_ROWS`] rows a batch, and applies its condition to
//! each batch; filters and projections evaluate their
//! expressions over whole batches with Arrow kernels (`expr.rs`); aggregation folds batches
//! into its groups (`agg.rs`); rows leave as the same [`Datum`]s the row path gives. Whether a
//! subtree runs here is decided from the plan alone ([`supported`], which EXPLAIN marks with
//! `(vectorized)`): every expression it evaluates and every column it reads must have a
//! kernel and a column type (Boolean, integers, DOUBLE PRECISION, TEXT); anything else
//! (NUMERIC, dates and times, casts, functions, LIKE, CASE, subqueries, DISTINCT or FILTER
//! aggregates, `string_agg`, grouping by floats or expressions) runs row-at-a-time as before.
//! Point lookups and scans whose range depends on parameters or outer values also stay on the
//! row path, as does a scan under a LIMIT that can stop it early.
//!
//! A chain streams: its scan reads the keyspace a page at a time, and each batch it fills
//! goes through the filters and projections above it and into the aggregation (or the result)
//! before the next page is read, so an aggregation over a table of any size holds its groups
//! and one page, not the table. It reads through the same [`Executor`] calls as the row path
//! (so every span read is recorded for commit validation, and ranges the statement already
//! read are reused); a kernel that fails evaluates its batch again row by row, so errors are
//! the row path's, at the same row. The aggregation counts its groups against
//! `meridian.query_memory_limit`, as the row path's does.

mod agg;
mod expr;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{DataType, Field, Schema};
use arrow_select::filter::filter_record_batch;

use super::analyze::node_id;
use super::{Executor, Row, check_rows};
use crate::api::{Datum, SqlError};
use crate::error::{Error, Result};
use crate::expr::{Env, ScalarExpr};
use crate::plan::keyrange::{ByteSpan, KeyRange};
use crate::plan::{Access, Plan, Rel, ScanPlan};
use expr::{Builder, Failed, Kind, datum_at, eval, kind};

/// Rows per batch.
pub(crate) const BATCH_ROWS: usize = 1024;

/// Whether `rel` runs vectorized when its rows are all wanted: an aggregation, filter or
/// projection over a chain of filters and projections over a table scan, every part of which
/// is supported (see the module docs).
pub(crate) fn supported(rel: &Rel) -> bool {
    match rel {
        Rel::Aggregate { input, plan } => {
            agg::supported_plan(plan) && chain(input) && reads_typed(input, &needs_of_agg(plan))
        }
        _ => chain(rel) && reads_typed(rel, &(0..rel.width()).collect::<Vec<_>>()),
    }
}

/// A filter/projection chain over a scan, with supported expressions.
fn chain(rel: &Rel) -> bool {
    let plain = |e: &ScalarExpr| expr::supported(e) && !e.has_subquery();
    match rel {
        // Point lookups (fixed now, or by parameters) are faster row by row.
        Rel::Scan(s) => {
            !s.lookups
                && (s.dynamic || !matches!(s.range, KeyRange::Points(_)))
                && s.filter.as_ref().is_none_or(&plain)
        }
        Rel::Filter { input, predicate } => plain(predicate) && chain(input),
        Rel::Project { input, exprs } => exprs.iter().all(plain) && chain(input),
        _ => false,
    }
}

/// The input columns an aggregation reads.
fn needs_of_agg(plan: &crate::plan::AggregatePlan) -> Vec<usize> {
    let mut cols = Vec::new();
    for e in plan
        .groups
        .iter()
        .chain(plan.aggs.iter().filter_map(|a| a.arg.as_ref()))
    {
        e.columns(&mut cols);
    }
    cols
}

/// Which columns of `rel`'s input a chain operator reads, given the ones its output needs.
fn input_needs(rel: &Rel, out: &[usize]) -> Vec<usize> {
    let mut cols = Vec::new();
    match rel {
        Rel::Filter { predicate, .. } => {
            cols.extend_from_slice(out);
            predicate.columns(&mut cols);
        }
        Rel::Project { exprs, .. } => exprs.iter().for_each(|e| e.columns(&mut cols)),
        _ => {}
    }
    cols
}

/// The table columns a chain reads, given the columns its output needs.
fn scan_needs(rel: &Rel, out: &[usize]) -> Vec<usize> {
    match rel {
        Rel::Scan(s) => {
            let mut cols = out.to_vec();
            if let Some(f) = &s.filter {
                f.columns(&mut cols);
            }
            cols
        }
        Rel::Filter { input, .. } | Rel::Project { input, .. } => {
            scan_needs(input, &input_needs(rel, out))
        }
        _ => out.to_vec(),
    }
}

/// The scan at the bottom of a chain.
fn scan_of(rel: &Rel) -> Option<&ScanPlan> {
    match rel {
        Rel::Scan(s) => Some(s),
        Rel::Filter { input, .. } | Rel::Project { input, .. } => scan_of(input),
        _ => None,
    }
}

/// Whether every table column the chain reads for `needs` has a column type here.
fn reads_typed(rel: &Rel, needs: &[usize]) -> bool {
    let Some(scan) = scan_of(rel) else {
        return false;
    };
    scan_needs(rel, needs).iter().all(|&c| {
        scan.table
            .columns
            .get(c)
            .is_some_and(|col| kind(col.ty).is_some())
    })
}

/// The operators of `plan` that run vectorized when `on` (EXPLAIN marks them): the subtrees
/// [`supported`] accepts where the executor asks for all their rows.
pub(crate) fn marks(plan: &Plan, on: bool) -> HashSet<usize> {
    let mut out = HashSet::new();
    if !on {
        return out;
    }
    match plan {
        Plan::Query(q) => mark(&q.rel, false, &mut out),
        Plan::Insert(i) => {
            if let crate::plan::InsertSource::Query { plan, .. } = &i.source {
                mark(&plan.rel, false, &mut out);
            }
        }
        Plan::Update(u) => mark(&u.source, false, &mut out),
        Plan::Delete(d) => mark(&d.source, false, &mut out),
        Plan::ExplainAnalyze(a) => out = marks(&a.plan, on),
        _ => {}
    }
    out
}

/// Marks the vectorized operators of `rel`; `limited` when its parent wants only some rows
/// (see `Executor::run`'s `want`).
fn mark(rel: &Rel, limited: bool, out: &mut HashSet<usize>) {
    if (!limited || matches!(rel, Rel::Aggregate { .. })) && supported(rel) {
        mark_all(rel, out);
        return;
    }
    match rel {
        Rel::Values { .. } | Rel::Function { .. } | Rel::Scan(_) => {}
        Rel::Filter { input, predicate } => {
            let passes = matches!(&**input, Rel::Scan(s)
                if s.filter.as_ref().is_some_and(|f| super::run::implies(f, predicate)));
            mark(input, limited && passes, out);
        }
        Rel::Project { input, .. } => mark(input, limited, out),
        Rel::Limit { input, .. } => mark(input, true, out),
        Rel::Aggregate { input, .. }
        | Rel::Window { input, .. }
        | Rel::Distinct { input, .. }
        | Rel::Sort { input, .. } => mark(input, false, out),
        Rel::SetOp { left, right, .. } => {
            mark(left, false, out);
            mark(right, false, out);
        }
        Rel::Join(top) => {
            let mut j = top;
            loop {
                if !(j.lookup.is_some() && j.right.as_scan().is_some()) {
                    mark(&j.right, false, out);
                }
                match &j.left {
                    Rel::Join(inner) => j = inner,
                    leftmost => {
                        mark(leftmost, false, out);
                        break;
                    }
                }
            }
        }
    }
}

fn mark_all(rel: &Rel, out: &mut HashSet<usize>) {
    out.insert(node_id(rel));
    match rel {
        Rel::Aggregate { input, .. } | Rel::Filter { input, .. } | Rel::Project { input, .. } => {
            mark_all(input, out);
        }
        _ => {}
    }
}

/// Where a streamed chain's batches go.
type Sink<'a> = dyn FnMut(RecordBatch) -> Result<()> + Send + 'a;

/// Rows per page read from the keyspace by a streamed scan.
const SCAN_PAGE: usize = 4 * BATCH_ROWS;

impl Executor<'_> {
    /// The rows of `rel`, which [`supported`] accepts, computed on batches.
    pub(crate) async fn run_vectorized(&mut self, rel: &Rel, env: Env<'_>) -> Result<Vec<Row>> {
        if let Rel::Aggregate { input, plan } = rel {
            let watch = crate::metrics::Stopwatch::start();
            let outer = std::mem::replace(&mut self.node, node_id(rel));
            let rows = self.aggregate_stream(input, plan, env).await;
            self.node = outer;
            if let (Ok(rows), Some(p)) = (&rows, &self.profile) {
                p.ran(node_id(rel), rows.len(), watch.elapsed());
            }
            return rows;
        }
        let all: Vec<usize> = (0..rel.width()).collect();
        let mut rows = Vec::new();
        let mut collect = |b: RecordBatch| {
            for i in 0..b.num_rows() {
                rows.push(b.columns().iter().map(|c| datum_at(c, i)).collect());
            }
            Ok(check_rows(rows.len())?)
        };
        self.stream(rel, env, &all, &mut collect).await?;
        Ok(rows)
    }

    /// Aggregates the chain `input` batch by batch as its scan reads them: what the
    /// aggregation holds is its groups, not its input.
    async fn aggregate_stream(
        &mut self,
        input: &Rel,
        plan: &crate::plan::AggregatePlan,
        env: Env<'_>,
    ) -> Result<Vec<Row>> {
        let mut agg = agg::Aggregator::new(plan, self.reserve("Aggregate"))?;
        let mut fold = |b: RecordBatch| Ok(agg.add(&b, &env)?);
        self.stream(input, env, &needs_of_agg(plan), &mut fold)
            .await?;
        Ok(agg.finish())
    }

    /// Runs the chain `rel` (filters and projections over a scan), whose output columns
    /// `needs` are read (the others are NULL), handing each batch of its output to `sink` as
    /// soon as the scan has read it. Each operator's rows go to the profile; as the operators
    /// run interleaved, each is given the time of the whole chain (its consumer's included).
    async fn stream(
        &mut self,
        rel: &Rel,
        env: Env<'_>,
        needs: &[usize],
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let watch = crate::metrics::Stopwatch::start();
        // The chain's operators from the top down, then its scan.
        let mut ops = Vec::new();
        let mut cur = rel;
        let mut cur_needs = needs.to_vec();
        while let Rel::Filter { input, .. } | Rel::Project { input, .. } = cur {
            ops.push(cur);
            cur_needs = input_needs(cur, &cur_needs);
            cur = input;
        }
        let Rel::Scan(scan) = cur else {
            return Err(SqlError::internal("an operator without a vectorized form").into());
        };
        // Rows out of each operator (`ops`' order), then out of the scan.
        let mut counts = vec![0usize; ops.len() + 1];
        let mut through = |b: RecordBatch| -> Result<()> {
            counts[ops.len()] += b.num_rows();
            let mut b = b;
            for (i, op) in ops.iter().enumerate().rev() {
                b = match op {
                    Rel::Filter { predicate, .. } => filter(&b, predicate, &env)?,
                    Rel::Project { exprs, .. } => project(&b, exprs, &env)?,
                    _ => unreachable!("only filters and projections are collected"),
                };
                counts[i] += b.num_rows();
            }
            sink(b)
        };
        let outer = std::mem::replace(&mut self.node, node_id(cur));
        let scanned = self.scan_stream(scan, env, &cur_needs, &mut through).await;
        self.node = outer;
        scanned?;
        if let Some(p) = &self.profile {
            for (level, rows) in ops.iter().copied().chain([cur]).zip(counts) {
                p.ran(node_id(level), rows, watch.elapsed());
            }
        }
        Ok(())
    }

    /// The rows of `plan` in batches, its condition applied, handed to `sink` as they are
    /// read; reads as `Executor::scan` does when all rows are wanted, page by page.
    async fn scan_stream(
        &mut self,
        plan: &ScanPlan,
        env: Env<'_>,
        needs: &[usize],
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let mut needs = needs.to_vec();
        if let Some(f) = &plan.filter {
            f.columns(&mut needs);
        }
        let kinds: Vec<Option<Kind>> = plan
            .table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| if needs.contains(&i) { kind(c.ty) } else { None })
            .collect();
        let mut batch = Batch::new(&kinds);
        // The range of this execution; the condition stays the plan's (batches evaluate its
        // parameters), as the pages below apply it.
        let (range, _) = crate::exec::scan::run_range(plan, &env)?;
        let filter = plan.filter.as_ref();
        for span in &range.byte_spans_for(&plan.table, plan.access) {
            match span {
                ByteSpan::Point(key) => {
                    let for_update = self.locks(&plan.table, plan.access);
                    if let Some(value) = self.read_key(key, for_update).await?
                        && let Some(row) = self.entry_row(plan, key, &value).await?
                    {
                        batch.push(&row)?;
                    }
                }
                ByteSpan::Range(start, end) => {
                    let cached = self.ranges.get(&(start.clone(), end.clone())).cloned();
                    if let Some(all) = cached {
                        self.push_entries(plan, &all, &mut batch, &env, sink)
                            .await?;
                    } else {
                        self.scan_pages(plan, start, end, &kinds, &mut batch, &env, sink)
                            .await?;
                    }
                    self.spans.push(meridian_tablet::Span {
                        start: start.clone(),
                        end: Some(end.clone()),
                    });
                }
            }
            if batch.rows == BATCH_ROWS {
                sink(batch.finish(filter, &env)?)?;
            }
        }
        if batch.rows > 0 {
            sink(batch.finish(filter, &env)?)?;
        }
        Ok(())
    }

    /// Reads `[start, end)` of `plan`'s index page by page into `batch` (whose rows are
    /// handed to `sink` in order, the scan's condition applied). Where an entry holds its
    /// whole row (the primary index, a covering index) and the range is longer than a page,
    /// pages are decoded on a blocking thread while the next one is read and the batches
    /// before it go through the operators above, so reading, decoding and aggregating share
    /// the machine's cores.
    #[allow(clippy::too_many_arguments)]
    async fn scan_pages(
        &mut self,
        plan: &ScanPlan,
        start: &[u8],
        end: &[u8],
        kinds: &[Option<Kind>],
        batch: &mut Batch,
        env: &Env<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let filter = plan.filter.as_ref();
        let whole_rows = plan.access == Access::Primary || plan.covering;
        let kinds: Arc<[Option<Kind>]> = kinds.into();
        let (mut rows, mut bytes) = (0, 0);
        let mut from = Some(start.to_vec());
        let mut pending: Option<tokio::task::JoinHandle<Result<Vec<RecordBatch>>>> = None;
        loop {
            let page = self.next_page(&mut from, end, SCAN_PAGE).await?;
            let Some(page) = page else {
                if let Some(decoding) = pending.take() {
                    drain(decoding, filter, env, sink).await?;
                }
                break;
            };
            let first = rows == 0;
            rows += page.len();
            if self.profile.is_some() {
                bytes += page.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            }
            if first && from.is_none() {
                // The whole range in one page: decoded here, and kept for the statement's
                // later reads of it, as the row path keeps the ranges it reads.
                let page = Arc::new(page);
                self.push_entries(plan, &page, batch, env, sink).await?;
                self.ranges.insert((start.to_vec(), end.to_vec()), page);
                break;
            }
            if !whole_rows {
                self.push_entries(plan, &page, batch, env, sink).await?;
                continue;
            }
            // Rows batched before this range go first, in order.
            if first && batch.rows > 0 {
                sink(batch.finish(filter, env)?)?;
            }
            let (table, access, kinds) = (plan.table.clone(), plan.access, kinds.clone());
            let next =
                tokio::task::spawn_blocking(move || decode_page(&table, access, &kinds, &page));
            if let Some(decoding) = pending.replace(next) {
                drain(decoding, filter, env, sink).await?;
            }
        }
        if let Some(p) = &self.profile {
            let span = meridian_tablet::Span {
                start: start.to_vec(),
                end: Some(end.to_vec()),
            };
            p.read(self.node, span, rows, bytes);
        }
        Ok(())
    }

    /// Decodes the entries `pairs` of `plan`'s index here, one by one, into `batch`, handing
    /// each full batch to `sink` with the scan's condition applied.
    async fn push_entries(
        &mut self,
        plan: &ScanPlan,
        pairs: &[meridian_tablet::KvPair],
        batch: &mut Batch,
        env: &Env<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        for (key, value) in pairs {
            if let Some(row) = self.entry_row(plan, key, value).await? {
                batch.push(&row)?;
                if batch.rows == BATCH_ROWS {
                    sink(batch.finish(plan.filter.as_ref(), env)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Hands the batches a page's decoding produced to `sink`, the scan's condition applied.
async fn drain(
    decoding: tokio::task::JoinHandle<Result<Vec<RecordBatch>>>,
    filter: Option<&ScalarExpr>,
    env: &Env<'_>,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let batches = decoding
        .await
        .map_err(|e| SqlError::internal(format!("decoding a page of rows failed: {e}")))??;
    for b in batches {
        sink(filtered(b, filter, env)?)?;
    }
    Ok(())
}

/// `b` with the scan's condition applied.
fn filtered(b: RecordBatch, filter: Option<&ScalarExpr>, env: &Env<'_>) -> Result<RecordBatch> {
    match filter {
        Some(f) => filter_batch(&b, f, env),
        None => Ok(b),
    }
}

/// Decodes `pairs`, entries of `table`'s index `access` that hold whole rows, into batches of
/// the columns `kinds` marks, [`BATCH_ROWS`] rows each (the scan's condition not applied).
fn decode_page(
    table: &crate::catalog::TableDesc,
    access: Access,
    kinds: &[Option<Kind>],
    pairs: &[meridian_tablet::KvPair],
) -> Result<Vec<RecordBatch>> {
    let mut batch = Batch::new(kinds);
    let mut out = Vec::with_capacity(pairs.len().div_ceil(BATCH_ROWS));
    for (key, value) in pairs {
        match access {
            // Straight into the column builders, the columns not read skipped.
            Access::Primary => {
                crate::keys::decode_row_with(table, key, value, |i, d| {
                    match &mut batch.builders[i] {
                        Some(b) => Ok(b.push(&d)?),
                        None => Ok(()),
                    }
                })?;
                batch.rows += 1;
            }
            Access::Index(i) => batch.push(&crate::keys::decode_index_entry(
                table,
                &table.indexes[i],
                key,
                value,
            )?)?,
        }
        if batch.rows == BATCH_ROWS {
            out.push(batch.take()?);
        }
    }
    if batch.rows > 0 {
        out.push(batch.take()?);
    }
    Ok(out)
}

/// A batch of scanned rows being built: one builder per column read.
struct Batch {
    builders: Vec<Option<Builder>>,
    rows: usize,
}

impl Batch {
    fn new(kinds: &[Option<Kind>]) -> Batch {
        Batch {
            builders: kinds
                .iter()
                .map(|k| k.map(|k| Builder::new(k, BATCH_ROWS)))
                .collect(),
            rows: 0,
        }
    }

    fn push(&mut self, row: &[Datum]) -> Result<(), SqlError> {
        for (b, v) in self.builders.iter_mut().zip(row) {
            if let Some(b) = b {
                b.push(v)?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch built so far, `filter` applied; the builders start over.
    fn finish(&mut self, filter: Option<&ScalarExpr>, env: &Env<'_>) -> Result<RecordBatch> {
        filtered(self.take()?, filter, env)
    }

    /// The batch built so far; the builders start over.
    fn take(&mut self) -> Result<RecordBatch> {
        let n = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| match b {
                Some(b) => b.finish(),
                None => new_null_array(&DataType::Null, n),
            })
            .collect();
        Ok(record_batch(columns, n)?)
    }
}

/// A record batch of `columns`, `rows` long (also without columns).
fn record_batch(columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch, SqlError> {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| SqlError::internal(format!("batch: {e}")))
}

/// The rows of `b` for which `predicate` is true.
fn filter_batch(b: &RecordBatch, predicate: &ScalarExpr, env: &Env<'_>) -> Result<RecordBatch> {
    filter(b, predicate, env).map_err(Error::from)
}

fn filter(b: &RecordBatch, predicate: &ScalarExpr, env: &Env<'_>) -> Result<RecordBatch, SqlError> {
    let mask = eval(predicate, b, env).map_err(|f| f.err)?;
    let mask = arrow_array::cast::AsArray::as_boolean_opt(&mask)
        .ok_or_else(|| SqlError::internal("a condition that is not Boolean"))?;
    filter_record_batch(b, mask).map_err(|e| SqlError::internal(format!("filter: {e}")))
}

/// `exprs` over `b`; the error the row path meets first (lowest row, then leftmost
/// expression) if any fails.
fn project(b: &RecordBatch, exprs: &[ScalarExpr], env: &Env<'_>) -> Result<RecordBatch, SqlError> {
    let mut columns = Vec::with_capacity(exprs.len());
    let mut first: Option<Failed> = None;
    for e in exprs {
        match eval(e, b, env) {
            Ok(a) => columns.push(a),
            Err(f) => {
                if first.as_ref().is_none_or(|x| f.row < x.row) {
                    first = Some(f);
                }
            }
        }
    }
    if let Some(f) = first {
        return Err(f.err);
    }
    record_batch(columns, b.num_rows())
}
