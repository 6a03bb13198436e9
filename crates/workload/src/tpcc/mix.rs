//! The five transactions, their mix, and the keying and think times of clause 5.2.5.

use std::str::FromStr;
use std::time::Duration;

use crate::rand::TpccRng;

/// A TPC-C transaction type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnKind {
    /// Enter an order of 5 to 15 lines (clause 2.4).
    NewOrder,
    /// Record a customer's payment (clause 2.5).
    Payment,
    /// Show a customer's last order (clause 2.6), read only.
    OrderStatus,
    /// Deliver the oldest undelivered order of each district (clause 2.7).
    Delivery,
    /// Count recently sold items low on stock (clause 2.8), read only.
    StockLevel,
}

impl TxnKind {
    /// All kinds, in the order of reports.
    pub const ALL: [TxnKind; 5] = [
        TxnKind::NewOrder,
        TxnKind::Payment,
        TxnKind::OrderStatus,
        TxnKind::Delivery,
        TxnKind::StockLevel,
    ];

    /// The name used in `--mix` and reports.
    pub fn name(self) -> &'static str {
        match self {
            TxnKind::NewOrder => "newOrder",
            TxnKind::Payment => "payment",
            TxnKind::OrderStatus => "orderStatus",
            TxnKind::Delivery => "delivery",
            TxnKind::StockLevel => "stockLevel",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Keying time (clause 5.2.5.7).
    pub fn keying_time(self) -> Duration {
        Duration::from_secs(match self {
            TxnKind::NewOrder => 18,
            TxnKind::Payment => 3,
            TxnKind::OrderStatus | TxnKind::Delivery | TxnKind::StockLevel => 2,
        })
    }

    /// Mean think time (clause 5.2.5.7).
    pub fn mean_think_secs(self) -> f64 {
        match self {
            TxnKind::NewOrder | TxnKind::Payment => 12.0,
            TxnKind::OrderStatus => 10.0,
            TxnKind::Delivery | TxnKind::StockLevel => 5.0,
        }
    }

    /// The 90th percentile response time the specification allows (clause 5.2.5.3).
    pub fn p90_limit(self) -> Duration {
        match self {
            TxnKind::StockLevel => Duration::from_secs(20),
            _ => Duration::from_secs(5),
        }
    }
}

/// Relative weights of the transaction kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 5],
}

impl Mix {
    /// The usual mix: 45% New-Order, 43% Payment and 4% each of the others, which meets the
    /// minimum percentages of clause 5.2.3.
    pub fn standard() -> Mix {
        Mix {
            weights: [45, 43, 4, 4, 4],
        }
    }

    /// The weight of a kind.
    pub fn weight(&self, kind: TxnKind) -> u32 {
        self.weights[kind.index()]
    }

    /// Picks a kind with probability proportional to its weight.
    pub fn choose(&self, r: &mut TpccRng) -> TxnKind {
        let total: u32 = self.weights.iter().sum();
        let mut pick = r.uniform(0, i64::from(total) - 1) as u32;
        for kind in TxnKind::ALL {
            let w = self.weight(kind);
            if pick < w {
                return kind;
            }
            pick -= w;
        }
        TxnKind::NewOrder
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `newOrder=45,payment=43,...`; kinds not named get weight 0.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 5];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("expected NAME=WEIGHT, got {part:?}"))?;
            let kind = TxnKind::ALL
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    format!(
                        "unknown transaction {name:?} (expected one of newOrder, payment, \
                         orderStatus, delivery, stockLevel)"
                    )
                })?;
            weights[kind.index()] = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of {name} must be a whole number, got {weight:?}"))?;
        }
        if weights.iter().sum::<u32>() == 0 {
            return Err("the mix needs at least one transaction with a positive weight".into());
        }
        Ok(Mix { weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::NuRandC;

    #[test]
    fn standard_mix_proportions() {
        let mix = Mix::standard();
        let mut r = TpccRng::new(1, 1, NuRandC::for_load(1));
        let mut counts = [0u32; 5];
        let n = 100_000;
        for _ in 0..n {
            counts[mix.choose(&mut r).index()] += 1;
        }
        for kind in TxnKind::ALL {
            let share = f64::from(counts[kind.index()]) / f64::from(n) * 100.0;
            let want = f64::from(mix.weight(kind));
            assert!((share - want).abs() < 1.0, "{}: {share:.2}%", kind.name());
        }
    }

    #[test]
    fn parses_a_mix_and_rejects_nonsense() {
        let m: Mix = "newOrder=45,payment=43,orderStatus=4,delivery=4,stockLevel=4"
            .parse()
            .expect("standard mix");
        assert_eq!(m, Mix::standard());
        let only: Mix = "payment=1".parse().expect("one kind");
        let mut r = TpccRng::new(1, 2, NuRandC::for_load(1));
        assert!((0..1000).all(|_| only.choose(&mut r) == TxnKind::Payment));
        assert!("newOrder=x".parse::<Mix>().is_err());
        assert!("bogus=1".parse::<Mix>().is_err());
        assert!("newOrder".parse::<Mix>().is_err());
        assert!("newOrder=0".parse::<Mix>().is_err());
    }
}
