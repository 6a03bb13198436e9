//! The two wire types the workload needs beyond tokio-postgres's own: NUMERIC (money and
//! rates, exact on the wire in PostgreSQL's binary format) and an integer that accepts any of
//! INT2, INT4 and INT8 (so that a database which widens `count(*)` or an INT column differently
//! still reads).

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A decimal number: `units × 10^-scale`, e.g. 12.34 is `{ units: 1234, scale: 2 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric {
    /// The value in units of the last decimal place.
    pub units: i64,
    /// Digits after the decimal point.
    pub scale: u16,
}

/// Sign words of the binary NUMERIC format.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

impl Numeric {
    /// An amount of money in cents.
    pub fn cents(units: i64) -> Numeric {
        Numeric { units, scale: 2 }
    }

    /// The value as a float, for arithmetic whose result is only displayed.
    pub fn to_f64(self) -> f64 {
        self.units as f64 / 10f64.powi(i32::from(self.scale))
    }

    /// The value in units of `scale` decimal places (truncating extra places).
    pub fn units_at(self, scale: u16) -> i64 {
        if scale >= self.scale {
            self.units
                .saturating_mul(10i64.saturating_pow(u32::from(scale - self.scale)))
        } else {
            self.units / 10i64.pow(u32::from(self.scale - scale))
        }
    }
}

impl std::fmt::Display for Numeric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let div = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = usize::from(self.scale)
        )
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        // Base-10000 digits aligned on the decimal point: pad the fraction to a multiple of
        // four decimal places, then split the integer into groups of four digits.
        let scale = u32::from(self.scale);
        let pad = (4 - scale % 4) % 4;
        let frac_groups = ((scale + pad) / 4) as i32;
        let mut m = u128::from(self.units.unsigned_abs()) * 10u128.pow(pad);
        let mut groups = Vec::new(); // least significant first
        while m > 0 {
            groups.push((m % 10_000) as i16);
            m /= 10_000;
        }
        let mut weight = groups.len() as i32 - 1 - frac_groups;
        // Trailing zero groups (least significant) are implied by the weight and dropped.
        let first_nonzero = groups.iter().position(|&g| g != 0).unwrap_or(groups.len());
        groups.drain(..first_nonzero);
        groups.reverse();
        if groups.is_empty() {
            weight = 0;
        }
        out.put_i16(i16::try_from(groups.len())?);
        out.put_i16(i16::try_from(weight)?);
        out.put_u16(if self.units < 0 {
            NUMERIC_NEG
        } else {
            NUMERIC_POS
        });
        out.put_u16(self.scale);
        for g in groups {
            out.put_i16(g);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Numeric, BoxError> {
        let word = |i: usize| -> Result<[u8; 2], BoxError> {
            raw.get(i..i + 2)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| "truncated NUMERIC value".into())
        };
        let ndigits = i16::from_be_bytes(word(0)?);
        let weight = i32::from(i16::from_be_bytes(word(2)?));
        let sign = u16::from_be_bytes(word(4)?);
        let scale = u16::from_be_bytes(word(6)?);
        if sign != NUMERIC_POS && sign != NUMERIC_NEG {
            return Err("NUMERIC NaN or infinity where a number was expected".into());
        }
        let mut units: i128 = 0;
        for i in 0..i32::from(ndigits.max(0)) {
            let digit = i128::from(i16::from_be_bytes(word(8 + 2 * i as usize)?));
            let exp = 4 * (weight - i) + i32::from(scale);
            if exp >= 0 {
                units += digit * 10i128.pow(exp as u32);
            } else {
                units += digit / 10i128.pow((-exp) as u32);
            }
        }
        if sign == NUMERIC_NEG {
            units = -units;
        }
        Ok(Numeric {
            units: i64::try_from(units).map_err(|_| "NUMERIC value out of range")?,
            scale,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// An integer read from INT2, INT4 or INT8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnyInt(pub i64);

impl<'a> FromSql<'a> for AnyInt {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<AnyInt, BoxError> {
        Ok(AnyInt(match *ty {
            Type::INT2 => i64::from(i16::from_sql(ty, raw)?),
            Type::INT4 => i64::from(i32::from_sql(ty, raw)?),
            _ => i64::from_sql(ty, raw)?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(n: Numeric) -> Numeric {
        let mut buf = BytesMut::new();
        n.to_sql(&Type::NUMERIC, &mut buf).expect("encode");
        Numeric::from_sql(&Type::NUMERIC, &buf).expect("decode")
    }

    #[test]
    fn numeric_round_trips() {
        for (units, scale) in [
            (0, 2),
            (1, 2),
            (-1000, 2),
            (30_000_000, 2),
            (1234, 4),
            (2000, 4),
            (999_999_999_999, 2),
            (-5, 0),
            (10_000, 0),
            (123_456_789, 3),
        ] {
            let n = Numeric { units, scale };
            assert_eq!(round_trip(n), n, "{n}");
        }
    }

    #[test]
    fn numeric_encodes_like_postgres() {
        // 12.34 in PostgreSQL's binary format: 2 digits, weight 0, positive, scale 2, [12, 3400].
        let mut buf = BytesMut::new();
        Numeric::cents(1234)
            .to_sql(&Type::NUMERIC, &mut buf)
            .expect("encode");
        assert_eq!(&buf[..], &[0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x0d, 0x48]);
    }

    #[test]
    fn numeric_displays_and_rescales() {
        assert_eq!(Numeric::cents(-1005).to_string(), "-10.05");
        assert_eq!(Numeric { units: 5, scale: 4 }.to_string(), "0.0005");
        assert_eq!(
            Numeric {
                units: 1234,
                scale: 4
            }
            .units_at(2),
            12
        );
        assert_eq!(Numeric::cents(7).units_at(4), 700);
    }
}
