//! Aggregation over batches: COUNT, SUM, AVG, MIN and MAX of integer, float, text and
//! Boolean values, grouped by columns of those types (floats excepted) or not grouped.
//!
//! Each batch is first mapped to group numbers (groups in order of first appearance, NULL keys
//! one group, as `exec/aggregate.rs` keeps them), then each aggregate's argument is evaluated
//! over the batch and folded into its groups' states row by row, in row order, so sums
//! overflow and floats round exactly where the row path's do. When several aggregates fail
//! in one batch, the error reported is the one the row path meets first (lowest row, then
//! leftmost aggregate).

use rustc_hash::FxHashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use super::expr::{Failed, Kind, datum_at, eval, kind, supported};
use crate::api::{Datum, SqlError, SqlType};
use crate::exec::memory::{Reservation, key_bytes, row_bytes};
use crate::expr::{Env, ScalarExpr};
use crate::plan::{AggCall, AggFunc, AggregatePlan};
use crate::types::int_out_of_range;

/// Whether an [`Aggregator`] computes `plan`.
pub(super) fn supported_plan(plan: &AggregatePlan) -> bool {
    let groups = plan.groups.iter().all(|g| {
        matches!(g, ScalarExpr::Column(_, ty)
            if matches!(kind(*ty), Some(Kind::Int | Kind::Text | Kind::Bool)))
    });
    groups && plan.aggs.iter().all(supported_call)
}

fn supported_call(call: &AggCall) -> bool {
    if call.distinct || call.filter.is_some() || call.separator.is_some() {
        return false;
    }
    let arg = match (&call.arg, call.func) {
        (None, AggFunc::CountStar) => return true,
        (Some(a), _) if supported(a) && !a.has_subquery() => a,
        _ => return false,
    };
    let (k, ty) = (kind(arg.ty()), call.ty);
    match call.func {
        AggFunc::Count => true,
        AggFunc::Sum => match ty {
            SqlType::Float8 => k == Some(Kind::Float),
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => k == Some(Kind::Int),
            _ => false,
        },
        AggFunc::Avg => ty == SqlType::Float8 && matches!(k, Some(Kind::Int | Kind::Float)),
        AggFunc::Min | AggFunc::Max => k.is_some() && kind(ty) == k,
        AggFunc::CountStar | AggFunc::StringAgg => false,
    }
}

/// The running state of one aggregate in one group (`exec/aggregate.rs` keeps the same).
#[derive(Debug, Clone)]
enum State {
    Count(i64),
    SumInt(Option<i64>),
    SumFloat(Option<f64>),
    Avg { sum: f64, count: i64 },
    MinMax(Option<Datum>),
}

impl State {
    fn new(call: &AggCall) -> State {
        match call.func {
            AggFunc::CountStar | AggFunc::Count => State::Count(0),
            AggFunc::Sum if call.ty == SqlType::Float8 => State::SumFloat(None),
            AggFunc::Sum => State::SumInt(None),
            AggFunc::Avg => State::Avg { sum: 0.0, count: 0 },
            _ => State::MinMax(None),
        }
    }

    fn value(&self) -> Datum {
        match self {
            State::Count(n) => Datum::Int(*n),
            State::SumInt(s) => s.map_or(Datum::Null, Datum::Int),
            State::SumFloat(s) => s.map_or(Datum::Null, Datum::Float),
            State::Avg { count: 0, .. } => Datum::Null,
            State::Avg { sum, count } => Datum::Float(sum / *count as f64),
            State::MinMax(b) => b.clone().unwrap_or(Datum::Null),
        }
    }
}

/// An aggregation in progress: batches fold into it one at a time (as the scan below produces
/// them), its groups and their states are all it holds. The result is the rows of
/// `[group values..., aggregate values...]` that `exec::aggregate::aggregate` computes over
/// rows; the groups are counted against the statement's memory limit.
pub(super) struct Aggregator<'p> {
    plan: &'p AggregatePlan,
    /// The input columns grouped by, in order.
    columns: Vec<usize>,
    /// Group ids by encoded key. FxHash rather than SipHash, whose cost showed at one hash per
    /// row: keys that collide on purpose can slow only the statement grouping them, as in
    /// PostgreSQL, whose hash aggregation is not keyed either.
    index: FxHashMap<Vec<u8>, usize>,
    keys: Vec<Vec<Datum>>,
    /// `states[aggregate][group]`.
    states: Vec<Vec<State>>,
    state_bytes: usize,
    memory: Reservation,
    // Scratch space reused across batches.
    ids: Vec<usize>,
    key: Vec<u8>,
}

impl<'p> Aggregator<'p> {
    pub(super) fn new(plan: &'p AggregatePlan, memory: Reservation) -> Result<Self, SqlError> {
        let columns = plan
            .groups
            .iter()
            .filter_map(|g| match g {
                ScalarExpr::Column(i, _) => Some(*i),
                _ => None,
            })
            .collect();
        let mut a = Aggregator {
            plan,
            columns,
            index: FxHashMap::default(),
            keys: Vec::new(),
            states: plan.aggs.iter().map(|_| Vec::new()).collect(),
            state_bytes: plan.aggs.len() * std::mem::size_of::<State>(),
            memory,
            ids: Vec::new(),
            key: Vec::new(),
        };
        if plan.groups.is_empty() {
            a.memory.grow(a.state_bytes)?;
            a.add_group();
            a.keys.push(vec![]);
        }
        Ok(a)
    }

    fn add_group(&mut self) {
        for (s, call) in self.states.iter_mut().zip(&self.plan.aggs) {
            s.push(State::new(call));
        }
    }

    /// Folds the rows of `batch` into their groups.
    pub(super) fn add(&mut self, batch: &RecordBatch, env: &Env<'_>) -> Result<(), SqlError> {
        let n = batch.num_rows();
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        if self.columns.is_empty() {
            ids.resize(n, 0);
        } else {
            let arrays: Vec<&ArrayRef> = self.columns.iter().map(|&c| batch.column(c)).collect();
            for row in 0..n {
                self.key.clear();
                for a in &arrays {
                    key_part(a, row, &mut self.key);
                }
                let id = match self.index.get(self.key.as_slice()) {
                    Some(&id) => id,
                    None => {
                        let values: Vec<Datum> = arrays.iter().map(|a| datum_at(a, row)).collect();
                        self.memory
                            .grow(key_bytes(&self.key) + row_bytes(&values) + self.state_bytes)?;
                        self.keys.push(values);
                        self.add_group();
                        self.index.insert(self.key.clone(), self.keys.len() - 1);
                        self.keys.len() - 1
                    }
                };
                ids.push(id);
            }
        }
        let mut first: Option<Failed> = None;
        for (call, groups) in self.plan.aggs.iter().zip(self.states.iter_mut()) {
            if let Some(f) = fold(call, groups, &ids, batch, env)
                && first.as_ref().is_none_or(|e| f.row < e.row)
            {
                first = Some(f);
            }
        }
        self.ids = ids;
        match first {
            Some(f) => Err(f.err),
            None => Ok(()),
        }
    }

    /// The result rows, groups in order of first appearance.
    pub(super) fn finish(self) -> Vec<Vec<Datum>> {
        let states = self.states;
        self.keys
            .into_iter()
            .enumerate()
            .map(|(g, mut row)| {
                row.extend(states.iter().map(|s| s[g].value()));
                row
            })
            .collect()
    }
}

/// Appends the grouping encoding of `a[row]` to `key`: equal values (NULLs included) and
/// only those encode equally.
fn key_part(a: &ArrayRef, row: usize, key: &mut Vec<u8>) {
    if a.is_null(row) {
        key.push(0);
        return;
    }
    key.push(1);
    match a.data_type() {
        DataType::Int64 => key.extend(a.as_primitive::<Int64Type>().value(row).to_be_bytes()),
        DataType::Boolean => key.push(u8::from(a.as_boolean().value(row))),
        DataType::Utf8 => {
            let s = a.as_string::<i32>().value(row).as_bytes();
            key.extend((s.len() as u64).to_be_bytes());
            key.extend(s);
        }
        _ => {}
    }
}

/// Folds `call` over `batch` into `groups` (row `r` belongs to group `ids[r]`); the row path's
/// first error, if any.
fn fold(
    call: &AggCall,
    groups: &mut [State],
    ids: &[usize],
    batch: &RecordBatch,
    env: &Env<'_>,
) -> Option<Failed> {
    let Some(arg) = &call.arg else {
        for &g in ids {
            if let State::Count(c) = &mut groups[g] {
                *c += 1;
            }
        }
        return None;
    };
    let (values, failed) = match eval(arg, batch, env) {
        Ok(v) => (v, None),
        // The rows before the failing one still count: an earlier one may fail here first.
        Err(f) => match eval(arg, &batch.slice(0, f.row), env) {
            Ok(v) => (v, Some(f)),
            Err(earlier) => return Some(earlier),
        },
    };
    for (row, &g) in ids.iter().enumerate().take(values.len()) {
        if values.is_null(row) {
            continue;
        }
        if let Err(err) = add(call, &mut groups[g], &values, row) {
            return Some(Failed { row, err });
        }
    }
    failed
}

/// Adds the non-NULL `values[row]` to `state`.
fn add(call: &AggCall, state: &mut State, values: &ArrayRef, row: usize) -> Result<(), SqlError> {
    match state {
        State::Count(c) => *c += 1,
        State::SumInt(s) => {
            let x = values.as_primitive::<Int64Type>().value(row);
            let sum = s
                .unwrap_or(0)
                .checked_add(x)
                .ok_or_else(|| int_out_of_range(call.ty))?;
            *s = Some(sum);
        }
        State::SumFloat(s) => {
            let x = values.as_primitive::<Float64Type>().value(row);
            let prev = s.unwrap_or(0.0);
            let sum = prev + x;
            if sum.is_infinite() && prev.is_finite() && x.is_finite() {
                return Err(SqlError::out_of_range("value out of range: overflow"));
            }
            *s = Some(sum);
        }
        State::Avg { sum, count } => {
            *sum += match values.data_type() {
                DataType::Int64 => values.as_primitive::<Int64Type>().value(row) as f64,
                _ => values.as_primitive::<Float64Type>().value(row),
            };
            *count += 1;
        }
        State::MinMax(best) => {
            let v = datum_at(values, row);
            let replace = match best {
                None => true,
                Some(b) => {
                    let ord = crate::expr::cmp_datums(&v, b).unwrap_or(std::cmp::Ordering::Equal);
                    if call.func == AggFunc::Min {
                        ord.is_lt()
                    } else {
                        ord.is_gt()
                    }
                }
            };
            if replace {
                *best = Some(v);
            }
        }
    }
    Ok(())
}
