//! Volatile functions: sequences (`nextval`, `currval`, `setval`), `unique_rowid()` and
//! `random()`.
//!
//! A sequence's value lives under its own key and changes outside the statement's transaction,
//! as in PostgreSQL: `nextval` commits its increment at once (a small read-modify-write,
//! retried on conflict), so concurrent sessions never get the same value and a failed
//! statement does not give values back.

use meridian_tablet::{Mutation, Span, WriteRequest};

use super::Executor;
use crate::api::{Datum, SqlError};
use crate::catalog::{self, SequenceDesc};
use crate::error::{Error, Result};
use crate::expr::{VolatileCall, VolatileFunc};

/// Attempts of a `nextval` increment before a conflict is reported.
const MAX_ATTEMPTS: usize = 50;

impl Executor<'_> {
    /// The next number of the session's splitmix64 sequence (seeded from its id and the read
    /// timestamp of the first use).
    fn random_u64(&self) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.random == 0 {
            s.random = self.ts.as_nanos() | 1;
        }
        s.random = s.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh rowid of this session.
    pub(crate) fn next_rowid(&self) -> i64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.rowids.next(self.ts)
    }

    /// Computes a volatile call whose arguments evaluated to `args`.
    pub(crate) async fn volatile(
        &mut self,
        call: &VolatileCall,
        args: Vec<Datum>,
    ) -> Result<Datum> {
        let name = |d: &Datum| -> Result<String, SqlError> {
            match d {
                Datum::Text(s) => Ok(sequence_name(s)),
                _ => Err(SqlError::new("22004", "sequence name must not be NULL")),
            }
        };
        Ok(match call.func {
            VolatileFunc::UniqueRowId => Datum::Int(self.next_rowid()),
            VolatileFunc::Random => {
                Datum::Float((self.random_u64() >> 11) as f64 / (1u64 << 53) as f64)
            }
            VolatileFunc::RandomUuid => {
                let bits = (u128::from(self.random_u64()) << 64) | u128::from(self.random_u64());
                // Version 4, variant 10.
                let bits = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
                Datum::Uuid(bits)
            }
            VolatileFunc::Now => Datum::TimestampTz((self.ts.as_nanos() / 1000) as i64),
            VolatileFunc::ReadTimestamp => {
                Datum::Int(i64::try_from(self.ts.as_nanos()).unwrap_or(i64::MAX))
            }
            VolatileFunc::NextVal => {
                let n = name(&args[0])?;
                let v = self.nextval(&n).await?;
                Datum::Int(v)
            }
            VolatileFunc::CurrVal => {
                let n = name(&args[0])?;
                self.sequence(&n).await?;
                let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                match s.currvals.get(&n) {
                    Some(v) => Datum::Int(*v),
                    None => {
                        return Err(SqlError::new(
                            "55000",
                            format!(
                                "currval of sequence \"{n}\" is not yet defined in this session"
                            ),
                        )
                        .into());
                    }
                }
            }
            VolatileFunc::SetVal => {
                let n = name(&args[0])?;
                let Datum::Int(v) = args[1] else {
                    return Ok(Datum::Null);
                };
                let called = args.get(2) != Some(&Datum::Bool(false));
                self.setval(&n, v, called).await?;
                Datum::Int(v)
            }
        })
    }

    async fn sequence(&self, name: &str) -> Result<SequenceDesc> {
        catalog::get_sequence(self.kv, name, self.ts)
            .await?
            .ok_or_else(|| SqlError::undefined_table(name).into())
    }

    /// Takes the next value of sequence `name`.
    async fn nextval(&mut self, name: &str) -> Result<i64> {
        let key = catalog::sequence_value_key(name);
        // The sequence's descriptor as the statement's transaction sees it; its value outside
        // any transaction: nextval is never rolled back, so concurrent transactions taking
        // values never conflict on the sequence.
        let seq = self.sequence(name).await?;
        for _ in 0..MAX_ATTEMPTS {
            let ts = self.base.read_ts().await.map_err(Error::Read)?;
            let last = self.base.get(&key, ts).await.map_err(Error::Read)?;
            let next = match last {
                None => seq.start,
                Some(bytes) => {
                    let (last, called) = decode_value(&bytes)?;
                    if called { advance(&seq, last)? } else { last }
                }
            };
            let req = WriteRequest {
                read_ts: Some(ts),
                read_spans: vec![Span {
                    start: key.clone(),
                    end: None,
                }],
                conditions: vec![],
                mutations: vec![Mutation::Put {
                    key: key.clone(),
                    value: encode_value(next, true),
                }],
                lock_owner: None,
            };
            match self.base.write(req).await {
                Ok(_) => {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.currvals.insert(name.to_string(), next);
                    return Ok(next);
                }
                Err(meridian_tablet::Error::WriteConflict { .. }) => continue,
                Err(source) => {
                    return Err(Error::Write {
                        source,
                        table: None,
                    });
                }
            }
        }
        Err(SqlError::new("40001", format!("nextval of \"{name}\" kept conflicting")).into())
    }

    /// Sets sequence `name`'s value (`called`: the next `nextval` advances past it).
    async fn setval(&mut self, name: &str, v: i64, called: bool) -> Result<()> {
        let seq = self.sequence(name).await?;
        if v < seq.min || v > seq.max {
            return Err(SqlError::new(
                "22003",
                format!(
                    "setval: value {v} is out of bounds for sequence \"{name}\" ({}..{})",
                    seq.min, seq.max
                ),
            )
            .into());
        }
        let req = WriteRequest {
            read_ts: None,
            mutations: vec![Mutation::Put {
                key: catalog::sequence_value_key(name),
                value: encode_value(v, called),
            }],
            ..Default::default()
        };
        self.base.write(req).await.map_err(|source| Error::Write {
            source,
            table: None,
        })?;
        if called {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.currvals.insert(name.to_string(), v);
        }
        Ok(())
    }
}

/// The sequence a `nextval('name')` argument names (folded like an identifier unless quoted).
fn sequence_name(s: &str) -> String {
    let s = s.strip_prefix("public.").unwrap_or(s);
    match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => s.to_ascii_lowercase(),
    }
}

/// The value after `last`, wrapping if the sequence cycles.
fn advance(seq: &SequenceDesc, last: i64) -> Result<i64, SqlError> {
    match last.checked_add(seq.increment) {
        Some(v) if v >= seq.min && v <= seq.max => Ok(v),
        _ if seq.cycle => Ok(if seq.increment > 0 { seq.min } else { seq.max }),
        _ => {
            let (what, bound) = if seq.increment > 0 {
                ("maximum", seq.max)
            } else {
                ("minimum", seq.min)
            };
            Err(SqlError::new(
                "2200H",
                format!(
                    "nextval: reached {what} value of sequence \"{}\" ({bound})",
                    seq.name
                ),
            ))
        }
    }
}

/// The stored value: 8 bytes big-endian, then 1 if it was handed out.
fn encode_value(v: i64, called: bool) -> Vec<u8> {
    let mut out = v.to_be_bytes().to_vec();
    out.push(u8::from(called));
    out
}

fn decode_value(bytes: &[u8]) -> Result<(i64, bool)> {
    let (v, flag) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::Corrupt(format!("sequence value of {} bytes", bytes.len())))?;
    Ok((i64::from_be_bytes(*v), flag.first() != Some(&0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(start: i64, increment: i64, min: i64, max: i64, cycle: bool) -> SequenceDesc {
        SequenceDesc {
            name: "s".into(),
            start,
            increment,
            min,
            max,
            cycle,
        }
    }

    #[test]
    fn sequences_advance_wrap_and_stop() {
        assert_eq!(advance(&seq(1, 1, 1, 3, false), 2).unwrap(), 3);
        assert_eq!(
            advance(&seq(1, 1, 1, 3, false), 3).unwrap_err().code,
            "2200H"
        );
        assert_eq!(advance(&seq(1, 1, 1, 3, true), 3).unwrap(), 1);
        assert_eq!(advance(&seq(-1, -2, -5, -1, true), -5).unwrap(), -1);
        assert_eq!(
            advance(&seq(1, 1, 1, i64::MAX, false), i64::MAX)
                .unwrap_err()
                .code,
            "2200H"
        );
        assert_eq!(decode_value(&encode_value(-7, false)).unwrap(), (-7, false));
        assert_eq!(sequence_name("Public.S"), "public.s");
        assert_eq!(sequence_name("\"Mixed\""), "Mixed");
        assert_eq!(sequence_name("public.abc"), "abc");
    }
}
