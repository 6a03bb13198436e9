//! Window functions: `ROW_NUMBER`, `RANK`, `DENSE_RANK`, `NTILE`, `LAG`, `LEAD`,
//! `FIRST_VALUE`, `LAST_VALUE`, `PERCENT_RANK`, `CUME_DIST`, and the aggregates, over
//! `(PARTITION BY ... ORDER BY ... [frame])`.
//!
//! While a select list is bound, each window call gets a placeholder column
//! `WINDOW_BASE + k`; once the row the window operator receives is known (the FROM row, or the
//! aggregate row of an aggregate query), [`place`] renumbers the placeholders to the columns
//! the operator appends.

use sqlparser::ast::{
    Function, FunctionArg, FunctionArgExpr, FunctionArguments, WindowFrameBound, WindowFrameUnits,
    WindowType,
};

use super::aggregate::{self, AggCall};
use super::bind::ExprBinder;
use super::coerce::Bound;
use super::query::sort_desc;
use crate::api::{Datum, SqlError, SqlType};
use crate::expr::ScalarExpr;

/// Placeholder column positions of window results while binding.
pub(crate) const WINDOW_BASE: usize = 1 << 40;

/// A window function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WindowFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    /// `lag(x [, offset [, default]])` (negative offsets look ahead, like `lead`).
    Lag,
    Lead,
    FirstValue,
    LastValue,
    /// An aggregate over the frame.
    Agg(AggCall),
}

/// One end of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameBound {
    UnboundedPreceding,
    Preceding(u64),
    CurrentRow,
    Following(u64),
    UnboundedFollowing,
}

/// The rows of the partition a function sees for the current row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowFrame {
    /// `ROWS` counts rows; `RANGE` (with only unbounded and current-row ends supported) treats
    /// ORDER BY peers as one.
    pub rows: bool,
    pub start: FrameBound,
    pub end: FrameBound,
}

impl WindowFrame {
    /// The default: `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`.
    pub(crate) const DEFAULT: WindowFrame = WindowFrame {
        rows: false,
        start: FrameBound::UnboundedPreceding,
        end: FrameBound::CurrentRow,
    };
}

/// One window function call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowCall {
    pub func: WindowFunc,
    /// Arguments (for LAG/LEAD/NTILE/FIRST_VALUE/LAST_VALUE), over the operator's input.
    pub args: Vec<ScalarExpr>,
    pub partition: Vec<ScalarExpr>,
    /// ORDER BY keys: expression, DESC, NULLS FIRST.
    pub order: Vec<(ScalarExpr, bool, bool)>,
    pub frame: WindowFrame,
    pub ty: SqlType,
}

/// Window calls collected while binding a select list.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowState {
    calls: Vec<WindowCall>,
}

impl WindowState {
    /// Whether there are no window calls.
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Adds `call` (or finds an identical one); its placeholder column.
    fn add(&mut self, call: WindowCall) -> usize {
        if let Some(i) = self.calls.iter().position(|c| *c == call) {
            return WINDOW_BASE + i;
        }
        self.calls.push(call);
        WINDOW_BASE + self.calls.len() - 1
    }

    /// The input columns the calls read.
    pub(crate) fn columns(&self, out: &mut Vec<usize>) {
        for c in &self.calls {
            let agg_args = match &c.func {
                WindowFunc::Agg(a) => a.exprs().collect(),
                _ => Vec::new(),
            };
            for e in c
                .args
                .iter()
                .chain(&c.partition)
                .chain(c.order.iter().map(|(e, _, _)| e))
                .chain(agg_args)
            {
                e.columns(out);
            }
        }
    }

    /// The plan of a window operator whose input rows have `base` columns.
    pub(crate) fn into_plan(self, _base: usize) -> WindowPlan {
        WindowPlan { funcs: self.calls }
    }
}

/// The window operator: one appended column per function.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowPlan {
    pub funcs: Vec<WindowCall>,
}

/// Renumbers window placeholders in `e` to the columns appended after `base` input columns.
pub(crate) fn place(e: &mut ScalarExpr, base: usize) {
    e.remap_columns(&|c| {
        if c >= WINDOW_BASE {
            base + (c - WINDOW_BASE)
        } else {
            c
        }
    });
}

fn frame_bound(b: &WindowFrameBound, start: bool) -> Result<FrameBound, SqlError> {
    let offset = |e: &Option<Box<sqlparser::ast::Expr>>| -> Result<Option<u64>, SqlError> {
        match e.as_deref() {
            None => Ok(None),
            Some(sqlparser::ast::Expr::Value(v)) => match &v.value {
                sqlparser::ast::Value::Number(n, _) => n
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| SqlError::new("22013", "frame offset must not be negative")),
                _ => Err(SqlError::unsupported(
                    "frame offsets must be integer constants",
                )),
            },
            Some(_) => Err(SqlError::unsupported(
                "frame offsets must be integer constants",
            )),
        }
    };
    Ok(match b {
        WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
        WindowFrameBound::Preceding(e) => match offset(e)? {
            None if start => FrameBound::UnboundedPreceding,
            None => return Err(SqlError::syntax("frame end cannot be UNBOUNDED PRECEDING")),
            Some(n) => FrameBound::Preceding(n),
        },
        WindowFrameBound::Following(e) => match offset(e)? {
            None if !start => FrameBound::UnboundedFollowing,
            None => {
                return Err(SqlError::syntax(
                    "frame start cannot be UNBOUNDED FOLLOWING",
                ));
            }
            Some(n) => FrameBound::Following(n),
        },
    })
}

impl ExprBinder<'_> {
    /// Binds `f(...) OVER (...)`.
    pub(super) fn bind_window_call(
        &mut self,
        name: &str,
        f: &Function,
        pos: Option<u32>,
    ) -> Result<Bound, SqlError> {
        if self.windows.is_none() {
            return Err(SqlError::new(
                "42P20",
                format!("window functions are not allowed in {}", self.clause),
            ));
        }
        let spec = match &f.over {
            Some(WindowType::WindowSpec(s)) => s,
            _ => return Err(SqlError::unsupported("named windows are not supported")),
        };
        if spec.window_name.is_some() {
            return Err(SqlError::unsupported("named windows are not supported"));
        }
        // Arguments and window clauses are bound in this binder's row (aggregates allowed in
        // an aggregate query); window calls may not nest.
        let saved = self.windows.take();
        let result = self.bind_window_parts(name, f, spec);
        self.windows = saved;
        let (func, args, partition, order, frame, ty) = result?;
        let call = WindowCall {
            func,
            args,
            partition,
            order,
            frame,
            ty,
        };
        let col = self
            .windows
            .as_mut()
            .ok_or_else(|| SqlError::internal("window state vanished"))?
            .add(call);
        Ok(Bound::known(ScalarExpr::Column(col, ty), pos))
    }

    #[allow(clippy::type_complexity)]
    fn bind_window_parts(
        &mut self,
        name: &str,
        f: &Function,
        spec: &sqlparser::ast::WindowSpec,
    ) -> Result<
        (
            WindowFunc,
            Vec<ScalarExpr>,
            Vec<ScalarExpr>,
            Vec<(ScalarExpr, bool, bool)>,
            WindowFrame,
            SqlType,
        ),
        SqlError,
    > {
        let partition = spec
            .partition_by
            .iter()
            .map(|e| self.bind_typed(e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            let desc = sort_desc(o)?;
            order.push((
                self.bind_typed(&o.expr)?,
                desc,
                o.options.nulls_first.unwrap_or(desc),
            ));
        }
        let frame = match &spec.window_frame {
            None => WindowFrame::DEFAULT,
            Some(wf) => {
                let rows = match wf.units {
                    WindowFrameUnits::Rows => true,
                    WindowFrameUnits::Range => false,
                    WindowFrameUnits::Groups => {
                        return Err(SqlError::unsupported("GROUPS frames are not supported"));
                    }
                };
                let start = frame_bound(&wf.start_bound, true)?;
                let end = match &wf.end_bound {
                    Some(b) => frame_bound(b, false)?,
                    None => FrameBound::CurrentRow,
                };
                let offset = |b: FrameBound| {
                    matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_))
                };
                if !rows && (offset(start) || offset(end)) {
                    return Err(SqlError::unsupported(
                        "RANGE frames with offsets are not supported",
                    ));
                }
                WindowFrame { rows, start, end }
            }
        };
        if aggregate::is_aggregate(name) {
            let call = aggregate::bind_call(name, f, self)?;
            let ty = call.ty;
            return Ok((WindowFunc::Agg(call), vec![], partition, order, frame, ty));
        }
        let args: Vec<Bound> = match &f.args {
            FunctionArguments::None => vec![],
            FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => self.bind(e),
                    _ => Err(SqlError::unsupported(format!(
                        "this argument form of {name}() is not supported"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported(
                    "subquery arguments are not supported",
                ));
            }
        };
        let types: Vec<String> = args.iter().map(|b| b.type_name().to_string()).collect();
        let missing = || {
            let t: Vec<&str> = types.iter().map(String::as_str).collect();
            SqlError::undefined_function(name, &t)
        };
        let int = |b: Bound| super::coerce::implicit(b, SqlType::Int8);
        let (func, args, ty) = match (name, args.len()) {
            ("row_number", 0) => (WindowFunc::RowNumber, vec![], SqlType::Int8),
            ("rank", 0) => (WindowFunc::Rank, vec![], SqlType::Int8),
            ("dense_rank", 0) => (WindowFunc::DenseRank, vec![], SqlType::Int8),
            ("percent_rank", 0) => (WindowFunc::PercentRank, vec![], SqlType::Float8),
            ("cume_dist", 0) => (WindowFunc::CumeDist, vec![], SqlType::Float8),
            ("ntile", 1) => {
                let a = args
                    .into_iter()
                    .map(|b| super::coerce::implicit(b, SqlType::Int4))
                    .collect::<Result<Vec<_>, _>>()?;
                (WindowFunc::Ntile, a, SqlType::Int4)
            }
            ("lag" | "lead", 1..=3) => {
                let mut it = args.into_iter();
                let value = it.next().ok_or_else(missing)?;
                let ty = if value.unknown {
                    SqlType::Text
                } else {
                    value.ty()
                };
                let value = super::coerce::implicit(value, ty)?;
                let mut out = vec![value];
                if let Some(off) = it.next() {
                    out.push(int(off)?);
                } else {
                    out.push(ScalarExpr::Literal(Datum::Int(1), SqlType::Int8));
                }
                if let Some(d) = it.next() {
                    out.push(super::coerce::implicit(d, ty)?);
                }
                let func = if name == "lag" {
                    WindowFunc::Lag
                } else {
                    WindowFunc::Lead
                };
                (func, out, ty)
            }
            ("first_value" | "last_value", 1) => {
                let v = args.into_iter().next().ok_or_else(missing)?;
                let ty = if v.unknown { SqlType::Text } else { v.ty() };
                let func = if name == "first_value" {
                    WindowFunc::FirstValue
                } else {
                    WindowFunc::LastValue
                };
                (func, vec![super::coerce::implicit(v, ty)?], ty)
            }
            _ => return Err(missing()),
        };
        Ok((func, args, partition, order, frame, ty))
    }
}
