//! Hash aggregation: groups keyed by the memcomparable encoding of their GROUP BY values, in
//! order of first appearance. The groups, and what DISTINCT aggregates and `string_agg` keep,
//! count against the statement's memory.

use std::collections::{HashMap, HashSet};

use meridian_storage::keycode::Decimal;

use super::memory::{Reservation, key_bytes, row_bytes};

use crate::api::{Datum, SqlError, SqlType};
use crate::expr::{Env, cmp_datums, is_true};
use crate::keys::hash_key;
use crate::plan::{AggCall, AggFunc, AggregatePlan};
use crate::types::int_out_of_range;

/// The running state of one aggregate call in one group.
#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    SumInt(Option<i64>),
    SumFloat(Option<f64>),
    /// Exact sum and the largest display scale seen.
    SumNumeric(Option<(Decimal, u16)>),
    Avg {
        sum: f64,
        count: i64,
    },
    AvgNumeric {
        sum: Decimal,
        scale: u16,
        count: i64,
    },
    MinMax(Option<Datum>),
    StringAgg(Option<String>),
}

/// The running state of one aggregate call.
pub(crate) struct Accumulator {
    acc: Acc,
    seen: Option<HashSet<Vec<u8>>>,
    /// Bytes held besides the state itself: DISTINCT keys and `string_agg` text.
    held: usize,
}

impl Accumulator {
    /// A fresh state for `call`.
    pub(crate) fn new(call: &AggCall) -> Accumulator {
        let acc = match call.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum if call.ty == SqlType::Float8 => Acc::SumFloat(None),
            AggFunc::Sum if call.ty == SqlType::Numeric => Acc::SumNumeric(None),
            AggFunc::Sum => Acc::SumInt(None),
            AggFunc::Avg if call.ty == SqlType::Numeric => Acc::AvgNumeric {
                sum: Decimal::ZERO,
                scale: 0,
                count: 0,
            },
            AggFunc::Avg => Acc::Avg { sum: 0.0, count: 0 },
            AggFunc::Min | AggFunc::Max => Acc::MinMax(None),
            AggFunc::StringAgg => Acc::StringAgg(None),
        };
        Accumulator {
            acc,
            seen: call.distinct.then(HashSet::new),
            held: 0,
        }
    }

    /// Bytes held besides the state itself (see [`key_bytes`]).
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Adds `row` (a row of the aggregate's input).
    pub(crate) fn add(
        &mut self,
        call: &AggCall,
        row: &[Datum],
        env: &Env<'_>,
    ) -> Result<(), SqlError> {
        if let Some(f) = &call.filter
            && !is_true(&f.eval(row, env)?)
        {
            return Ok(());
        }
        let v = match &call.arg {
            None => {
                if let Acc::Count(n) = &mut self.acc {
                    *n += 1;
                }
                return Ok(());
            }
            Some(e) => e.eval(row, env)?,
        };
        if v == Datum::Null {
            return Ok(());
        }
        if let Some(seen) = &mut self.seen {
            let key = hash_key(std::slice::from_ref(&v));
            let bytes = key_bytes(&key);
            if !seen.insert(key) {
                return Ok(());
            }
            self.held += bytes;
        }
        match (&mut self.acc, v) {
            (Acc::Count(n), _) => *n += 1,
            (Acc::SumInt(s), Datum::Int(x)) => {
                let sum = s
                    .unwrap_or(0)
                    .checked_add(x)
                    .ok_or_else(|| int_out_of_range(call.ty))?;
                *s = Some(sum);
            }
            (Acc::SumFloat(s), Datum::Float(x)) => {
                let prev = s.unwrap_or(0.0);
                let sum = prev + x;
                if sum.is_infinite() && prev.is_finite() && x.is_finite() {
                    return Err(SqlError::out_of_range("value out of range: overflow"));
                }
                *s = Some(sum);
            }
            (Acc::SumNumeric(s), v @ (Datum::Int(_) | Datum::Numeric(..))) => {
                let (x, xs) = numeric_operand(v);
                let (prev, ps) = s.take().unwrap_or((Decimal::ZERO, 0));
                let sum = prev
                    .checked_add(&x)
                    .ok_or_else(|| SqlError::out_of_range("value overflows numeric format"))?;
                *s = Some((sum, ps.max(xs)));
            }
            (Acc::AvgNumeric { sum, scale, count }, v @ (Datum::Int(_) | Datum::Numeric(..))) => {
                let (x, xs) = numeric_operand(v);
                *sum = sum
                    .checked_add(&x)
                    .ok_or_else(|| SqlError::out_of_range("value overflows numeric format"))?;
                *scale = (*scale).max(xs);
                *count += 1;
            }
            (Acc::Avg { sum, count }, Datum::Int(x)) => {
                *sum += x as f64;
                *count += 1;
            }
            (Acc::Avg { sum, count }, Datum::Float(x)) => {
                *sum += x;
                *count += 1;
            }
            (Acc::StringAgg(s), Datum::Text(x)) => {
                let sep = match &call.separator {
                    Some(e) => e.eval(row, env)?,
                    None => Datum::Null,
                };
                let before = s.as_ref().map_or(0, String::len);
                match (s.as_mut(), sep) {
                    (None, _) => *s = Some(x),
                    (Some(acc), Datum::Text(sep)) => {
                        acc.push_str(&sep);
                        acc.push_str(&x);
                    }
                    (Some(acc), _) => acc.push_str(&x),
                }
                self.held += s.as_ref().map_or(0, String::len) - before;
            }
            (Acc::MinMax(best), v) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let ord = cmp_datums(&v, b).unwrap_or(std::cmp::Ordering::Equal);
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
            (acc, v) => {
                return Err(SqlError::internal(format!(
                    "aggregate state {acc:?} got {v:?}"
                )));
            }
        }
        Ok(())
    }

    /// The aggregate's value over the rows added so far.
    pub(crate) fn value(&self) -> Datum {
        match &self.acc {
            Acc::Count(n) => Datum::Int(*n),
            Acc::SumInt(s) => s.map_or(Datum::Null, Datum::Int),
            Acc::SumFloat(s) => s.map_or(Datum::Null, Datum::Float),
            Acc::SumNumeric(s) => s
                .as_ref()
                .map_or(Datum::Null, |(v, sc)| Datum::Numeric(v.clone(), *sc)),
            Acc::Avg { count: 0, .. } | Acc::AvgNumeric { count: 0, .. } => Datum::Null,
            Acc::Avg { sum, count } => Datum::Float(sum / *count as f64),
            Acc::AvgNumeric { sum, scale, count } => {
                let n = Decimal::from(*count);
                let rscale = crate::expr::numeric::div_scale(sum, *scale, &n, 0);
                match sum.checked_div(&n, rscale, false) {
                    Some(q) => crate::expr::numeric::datum(q, rscale),
                    None => Datum::Null,
                }
            }
            Acc::MinMax(b) => b.clone().unwrap_or(Datum::Null),
            Acc::StringAgg(s) => s.clone().map_or(Datum::Null, Datum::Text),
        }
    }
}

/// A summand of a numeric sum: integers are exact numerics of scale 0.
fn numeric_operand(v: Datum) -> (Decimal, u16) {
    match v {
        Datum::Numeric(x, s) => (x, s),
        Datum::Int(i) => (Decimal::from(i), 0),
        _ => (Decimal::ZERO, 0),
    }
}

/// Aggregates `rows` into rows of `[group values..., aggregate values...]`. Without GROUP BY
/// there is exactly one output row, even for no input. `memory` counts the groups.
pub(crate) fn aggregate(
    plan: &AggregatePlan,
    rows: &[Vec<Datum>],
    env: &Env<'_>,
    memory: &mut Reservation,
) -> Result<Vec<Vec<Datum>>, SqlError> {
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Datum>, Vec<Accumulator>)> = Vec::new();
    let new_accs = || plan.aggs.iter().map(Accumulator::new).collect::<Vec<_>>();
    let state_bytes = plan.aggs.len() * std::mem::size_of::<Accumulator>();
    if plan.groups.is_empty() {
        memory.grow(state_bytes)?;
        groups.push((vec![], new_accs()));
    }
    for row in rows {
        let slot = if plan.groups.is_empty() {
            0
        } else {
            let values = plan
                .groups
                .iter()
                .map(|g| g.eval(row, env))
                .collect::<Result<Vec<_>, _>>()?;
            let key = hash_key(&values);
            match index.get(&key) {
                Some(&i) => i,
                None => {
                    memory.grow(key_bytes(&key) + row_bytes(&values) + state_bytes)?;
                    groups.push((values, new_accs()));
                    index.insert(key, groups.len() - 1);
                    groups.len() - 1
                }
            }
        };
        for (acc, call) in groups[slot].1.iter_mut().zip(&plan.aggs) {
            let before = acc.held();
            acc.add(call, row, env)?;
            memory.grow(acc.held() - before)?;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(mut values, accs)| {
            values.extend(accs.iter().map(Accumulator::value));
            values
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SqlType;
    use crate::exec::MemoryPool;
    use crate::expr::ScalarExpr;

    fn aggregate(
        plan: &AggregatePlan,
        rows: &[Vec<Datum>],
        env: &Env<'_>,
    ) -> Result<Vec<Vec<Datum>>, SqlError> {
        let pool = MemoryPool::new(usize::MAX);
        super::aggregate(plan, rows, env, &mut pool.reserve("Aggregate", None))
    }

    fn call(func: AggFunc, ty: SqlType, distinct: bool) -> AggCall {
        let arg = (func != AggFunc::CountStar).then_some(ScalarExpr::Column(1, SqlType::Int4));
        AggCall {
            separator: None,
            func,
            arg,
            distinct,
            filter: None,
            ty,
        }
    }

    #[test]
    fn grouped_aggregates_skip_nulls() {
        let plan = AggregatePlan {
            groups: vec![ScalarExpr::Column(0, SqlType::Text)],
            aggs: vec![
                call(AggFunc::CountStar, SqlType::Int8, false),
                call(AggFunc::Count, SqlType::Int8, false),
                call(AggFunc::Sum, SqlType::Int8, false),
                call(AggFunc::Avg, SqlType::Float8, false),
                call(AggFunc::Max, SqlType::Int4, false),
                call(AggFunc::Count, SqlType::Int8, true),
            ],
        };
        let t = |s: &str| Datum::Text(s.into());
        let rows = vec![
            vec![t("a"), Datum::Int(1)],
            vec![t("b"), Datum::Null],
            vec![t("a"), Datum::Int(1)],
            vec![t("a"), Datum::Null],
            vec![t("a"), Datum::Int(4)],
        ];
        let out = aggregate(&plan, &rows, &Env::EMPTY).unwrap();
        assert_eq!(
            out,
            vec![
                vec![
                    t("a"),
                    Datum::Int(4),
                    Datum::Int(3),
                    Datum::Int(6),
                    Datum::Float(2.0),
                    Datum::Int(4),
                    Datum::Int(2)
                ],
                vec![
                    t("b"),
                    Datum::Int(1),
                    Datum::Int(0),
                    Datum::Null,
                    Datum::Null,
                    Datum::Null,
                    Datum::Int(0)
                ],
            ]
        );
    }

    #[test]
    fn no_group_by_gives_one_row_for_empty_input() {
        let plan = AggregatePlan {
            groups: vec![],
            aggs: vec![
                call(AggFunc::CountStar, SqlType::Int8, false),
                call(AggFunc::Sum, SqlType::Int8, false),
            ],
        };
        assert_eq!(
            aggregate(&plan, &[], &Env::EMPTY).unwrap(),
            vec![vec![Datum::Int(0), Datum::Null]]
        );
    }

    #[test]
    fn integer_sum_overflow_is_an_error() {
        let plan = AggregatePlan {
            groups: vec![],
            aggs: vec![call(AggFunc::Sum, SqlType::Int8, false)],
        };
        let rows = vec![
            vec![Datum::Null, Datum::Int(i64::MAX)],
            vec![Datum::Null, Datum::Int(1)],
        ];
        assert_eq!(
            aggregate(&plan, &rows, &Env::EMPTY).unwrap_err().code,
            "22003"
        );
    }
}
