//! TPC-C's random numbers and strings (specification clause 4.3.2 and 2.1.6), on a seeded
//! generator so that a load or a run can be repeated exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The syllables of a customer last name (clause 4.3.2.3), indexed by one decimal digit.
pub const SYLLABLES: [&str; 10] = [
    "BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING",
];

/// The constants C of NURand (clause 2.1.6) for the three uses of the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NuRandC {
    /// C for customer last names (A = 255).
    pub c_last: u32,
    /// C for customer ids (A = 1023).
    pub c_id: u32,
    /// C for item ids (A = 8191).
    pub ol_i_id: u32,
}

impl NuRandC {
    /// The constants the load uses, derived from the seed so that a run with the same seed
    /// can pick run-time constants that satisfy clause 2.1.6.1 against them.
    pub fn for_load(seed: u64) -> NuRandC {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5443_5043_4c4f_4144); // "TCPCLOAD"
        NuRandC {
            c_last: rng.random_range(0..=255),
            c_id: rng.random_range(0..=1023),
            ol_i_id: rng.random_range(0..=8191),
        }
    }

    /// The constants a run uses: C_ID and OL_I_ID as loaded (the specification allows it), and
    /// a C_LAST whose distance `delta` from the load's lies in 65..=119 and is neither 96 nor
    /// 112 (clause 2.1.6.1), so that the run's last names are not the load's distribution.
    pub fn for_run(load: NuRandC, seed: u64) -> NuRandC {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5443_5043_5255_4e21); // "TCPCRUN!"
        loop {
            let delta: u32 = rng.random_range(65..=119);
            if delta == 96 || delta == 112 {
                continue;
            }
            // Go up or down from the load's constant, whichever stays inside 0..=255.
            let c_last = if load.c_last + delta <= 255 {
                load.c_last + delta
            } else {
                load.c_last - delta
            };
            return NuRandC { c_last, ..load };
        }
    }

    /// Whether a pair of load and run constants satisfies clause 2.1.6.1.
    pub fn valid_run_for(self, load: NuRandC) -> bool {
        let delta = self.c_last.abs_diff(load.c_last);
        (65..=119).contains(&delta) && delta != 96 && delta != 112
    }
}

/// A seeded generator with TPC-C's distributions.
pub struct TpccRng {
    rng: StdRng,
    c: NuRandC,
}

impl TpccRng {
    /// A generator for one unit of work: `seed` is the run's or load's seed, `stream` tells
    /// units apart so that each draws an independent, repeatable sequence however they are
    /// scheduled.
    pub fn new(seed: u64, stream: u64, c: NuRandC) -> TpccRng {
        // SplitMix-style mixing, so that neighbouring streams get unrelated seeds.
        let mixed = (seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(stream);
        TpccRng {
            rng: StdRng::seed_from_u64(mixed),
            c,
        }
    }

    /// A uniform integer in `lo..=hi`.
    pub fn uniform(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// A uniform `i32` in `lo..=hi`.
    pub fn int(&mut self, lo: i32, hi: i32) -> i32 {
        self.rng.random_range(lo..=hi)
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// NURand(A, x, y) = (((random(0, A) | random(x, y)) + C) % (y - x + 1)) + x, with the C
    /// that belongs to A (clause 2.1.6).
    pub fn nurand(&mut self, a: i64, x: i64, y: i64) -> i64 {
        let c = match a {
            255 => self.c.c_last,
            1023 => self.c.c_id,
            8191 => self.c.ol_i_id,
            _ => 0,
        };
        (((self.uniform(0, a) | self.uniform(x, y)) + i64::from(c)) % (y - x + 1)) + x
    }

    /// A customer id for a transaction: NURand(1023, 1, 3000).
    pub fn customer_id(&mut self) -> i32 {
        self.nurand(1023, 1, 3000) as i32
    }

    /// An item id for a transaction: NURand(8191, 1, 100000).
    pub fn item_id(&mut self) -> i32 {
        self.nurand(8191, 1, 100_000) as i32
    }

    /// A last name for a transaction or for customers 1001..=3000 of the load:
    /// the name of NURand(255, 0, 999).
    pub fn last_name(&mut self) -> String {
        last_name(self.nurand(255, 0, 999) as u32)
    }

    /// A random a-string (clause 4.3.2.2): `lo..=hi` alphanumeric characters. The
    /// specification asks for at least 128 different characters; letters and digits keep the
    /// text safe in SQL literals and in any encoding, which is what matters here.
    pub fn astring(&mut self, lo: usize, hi: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let len = self.rng.random_range(lo..=hi);
        (0..len)
            .map(|_| char::from(CHARS[self.rng.random_range(0..CHARS.len())]))
            .collect()
    }

    /// A random n-string: `lo..=hi` decimal digits.
    pub fn nstring(&mut self, lo: usize, hi: usize) -> String {
        let len = self.rng.random_range(lo..=hi);
        (0..len)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }

    /// A zip code: four random digits followed by "11111" (clause 4.3.2.7).
    pub fn zip(&mut self) -> String {
        format!("{}11111", self.nstring(4, 4))
    }

    /// Data of an item or stock row: an a-string of 26..=50 characters, with "ORIGINAL" at a
    /// random position in 10% of rows (clause 4.3.3.1).
    pub fn data_with_original(&mut self) -> String {
        let mut s = self.astring(26, 50);
        if self.uniform(1, 10) == 1 {
            let at = self.rng.random_range(0..=s.len() - 8);
            s.replace_range(at..at + 8, "ORIGINAL");
        }
        s
    }

    /// A random permutation of `1..=n`, for the customers of the initial orders.
    pub fn permutation(&mut self, n: i32) -> Vec<i32> {
        let mut v: Vec<i32> = (1..=n).collect();
        // Fisher-Yates, spelled out so that the sequence depends only on this generator.
        for i in (1..v.len()).rev() {
            let j = self.rng.random_range(0..=i);
            v.swap(i, j);
        }
        v
    }

    /// A negative exponential think time with the given mean, capped at ten times the mean as
    /// clause 5.2.5.4 allows.
    pub fn think_time(&mut self, mean_secs: f64) -> f64 {
        let r = self.unit().max(f64::MIN_POSITIVE);
        (-r.ln() * mean_secs).min(10.0 * mean_secs)
    }
}

/// The last name of number `n` in `0..=999`: the syllables of its three decimal digits.
pub fn last_name(n: u32) -> String {
    let n = n % 1000;
    let mut s = String::with_capacity(15);
    for d in [n / 100, (n / 10) % 10, n % 10] {
        s.push_str(SYLLABLES[d as usize]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> TpccRng {
        TpccRng::new(42, 7, NuRandC::for_load(42))
    }

    #[test]
    fn nurand_stays_in_range_and_reaches_both_ends() {
        let mut r = rng();
        for (a, x, y) in [(255, 0, 999), (1023, 1, 3000), (8191, 1, 100_000)] {
            let (mut min, mut max) = (i64::MAX, i64::MIN);
            for _ in 0..200_000 {
                let v = r.nurand(a, x, y);
                assert!((x..=y).contains(&v), "NURand({a},{x},{y}) gave {v}");
                min = min.min(v);
                max = max.max(v);
            }
            // The distribution covers the whole range, not only a part of it.
            assert!(min - x < (y - x) / 100, "min {min} for A={a}");
            assert!(y - max < (y - x) / 100, "max {max} for A={a}");
        }
    }

    #[test]
    fn nurand_is_not_uniform() {
        // With C fixed, values whose low bits are set are more likely; the most frequent
        // customer id is drawn far more often than 1/3000 of the time.
        let mut r = rng();
        let mut counts = vec![0u32; 3001];
        for _ in 0..300_000 {
            counts[r.customer_id() as usize] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0);
        assert!(max > 3 * 100, "most frequent id drawn only {max} times");
    }

    #[test]
    fn last_names_follow_the_syllable_table() {
        // The specification's own examples (clause 4.3.2.3).
        assert_eq!(last_name(371), "PRICALLYOUGHT");
        assert_eq!(last_name(40), "BARPRESBAR");
        assert_eq!(last_name(0), "BARBARBAR");
        assert_eq!(last_name(999), "EINGEINGEING");
        assert_eq!(last_name(123), "OUGHTABLEPRI");
        let mut r = rng();
        for _ in 0..1000 {
            let name = r.last_name();
            assert!(name.len() <= 16 && name.len() >= 9, "{name}");
        }
    }

    #[test]
    fn run_constants_satisfy_the_delta_rule() {
        for seed in 0..500 {
            let load = NuRandC::for_load(seed);
            let run = NuRandC::for_run(load, seed);
            assert!(run.valid_run_for(load), "seed {seed}: {load:?} {run:?}");
            assert!(run.c_last <= 255);
        }
    }

    #[test]
    fn same_seed_same_stream_same_sequence() {
        let mut a = TpccRng::new(9, 3, NuRandC::for_load(9));
        let mut b = TpccRng::new(9, 3, NuRandC::for_load(9));
        let mut c = TpccRng::new(9, 4, NuRandC::for_load(9));
        let xa: Vec<i64> = (0..20).map(|_| a.uniform(0, 1_000_000)).collect();
        let xb: Vec<i64> = (0..20).map(|_| b.uniform(0, 1_000_000)).collect();
        let xc: Vec<i64> = (0..20).map(|_| c.uniform(0, 1_000_000)).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn strings_have_the_asked_shape() {
        let mut r = rng();
        let mut original = 0;
        for _ in 0..10_000 {
            let s = r.astring(6, 10);
            assert!((6..=10).contains(&s.len()));
            assert!(r.zip().ends_with("11111"));
            let d = r.data_with_original();
            assert!((26..=50).contains(&d.len()));
            original += usize::from(d.contains("ORIGINAL"));
        }
        assert!(
            (800..1200).contains(&original),
            "{original} of 10000 ORIGINAL"
        );
        let mut p = r.permutation(3000);
        p.sort_unstable();
        assert_eq!(p, (1..=3000).collect::<Vec<_>>());
    }
}
