//! A bounded randomized test of the frontend message decoder (the frame checks and pgwire's
//! decoders, through `meridian_pgwire::fuzzing::decode_frontend`): thousands of seeded cases
//! of random bytes, valid message streams, and valid streams with bytes flipped, cut or
//! inserted. None may panic; valid streams must decode completely. A failure prints its seed.
//! The fuzz target in `crates/pgwire/fuzz` runs the same entry point without a bound.

use bytes::BytesMut;
use meridian_pgwire::fuzzing::decode_frontend;
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;

const CASES: u64 = 4000;
const MAX: usize = 1 << 16;

/// SplitMix64: small, seedable, good enough to spread cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Fewer than `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Fewer than `max` characters of SQL-ish text.
    fn text(&mut self, max: usize) -> String {
        const CHARS: &[&str] = &["a", "Z", "0", " ", ";", "'", "é", "✓", "$1", "\n"];
        let n = self.below(max);
        (0..n).map(|_| CHARS[self.below(CHARS.len())]).collect()
    }
}

/// A valid stream: a startup packet, then `n` random well-formed messages.
fn valid_stream(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let user = format!("u{}", rng.text(8));
    frontend::startup_message([("user", user.as_str()), ("database", "db")], &mut buf).unwrap();
    for _ in 0..n {
        let name = rng.text(6);
        let sql = rng.text(40);
        match rng.below(9) {
            0 => frontend::query(&sql, &mut buf).unwrap(),
            1 => {
                let types: Vec<u32> = (0..rng.below(4)).map(|_| rng.next() as u32).collect();
                frontend::parse(&name, &sql, types, &mut buf).unwrap();
            }
            2 => {
                let values: Vec<Option<Vec<u8>>> = (0..rng.below(4))
                    .map(|_| (rng.below(3) > 0).then(|| rng.bytes(10)))
                    .collect();
                frontend::bind(
                    "",
                    &name,
                    [0i16, 1].into_iter().take(rng.below(3)),
                    values,
                    |value, out| match value {
                        Some(bytes) => {
                            out.extend_from_slice(&bytes);
                            Ok(IsNull::No)
                        }
                        None => Ok(IsNull::Yes),
                    },
                    [1i16].into_iter().take(rng.below(2)),
                    &mut buf,
                )
                .map_err(|_| "bind")
                .unwrap();
            }
            3 => frontend::describe(if rng.below(2) == 0 { b'S' } else { b'P' }, &name, &mut buf)
                .unwrap(),
            4 => frontend::execute(&name, rng.next() as i32, &mut buf).unwrap(),
            5 => frontend::close(b'S', &name, &mut buf).unwrap(),
            6 => frontend::sync(&mut buf),
            7 => frontend::flush(&mut buf),
            _ => frontend::CopyData::new(&rng.bytes(20)[..])
                .unwrap()
                .write(&mut buf),
        }
    }
    buf.to_vec()
}

fn run(seed: u64, input: &[u8]) -> meridian_pgwire::fuzzing::DecodeOutcome {
    let result = std::panic::catch_unwind(|| decode_frontend(input, MAX));
    match result {
        Ok(outcome) => outcome,
        Err(_) => panic!("seed {seed}: decoding panicked on {input:?}"),
    }
}

#[test]
fn random_bytes_never_panic() {
    for seed in 0..CASES {
        let mut rng = Rng(seed);
        let mut input = rng.bytes(200);
        // Half the cases start like a startup packet, so the typed phase is reached.
        if seed % 2 == 0 && input.len() >= 8 {
            let body_len = (8 + rng.below(40)).min(input.len()) as u32;
            input[..4].copy_from_slice(&body_len.to_be_bytes());
            input[4..8].copy_from_slice(&[0, 3, 0, 0]);
        }
        run(seed, &input);
    }
}

#[test]
fn valid_streams_decode_completely() {
    for seed in 0..CASES / 4 {
        let mut rng = Rng(seed);
        let n = rng.below(12);
        let input = valid_stream(&mut rng, n);
        let outcome = run(seed, &input);
        assert_eq!(outcome.refused, None, "seed {seed}: {input:?}");
        assert_eq!(outcome.messages, n + 1, "seed {seed}: {input:?}");
    }
}

#[test]
fn mutated_streams_never_panic() {
    let mut refused = 0;
    for seed in 0..CASES {
        let mut rng = Rng(seed ^ 0xdead_beef);
        let n = 1 + rng.below(8);
        let mut input = valid_stream(&mut rng, n);
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len());
            match rng.below(4) {
                0 => input[at] ^= 1 << rng.below(8),
                1 => input[at] = rng.next() as u8,
                2 => input.truncate(at),
                _ => input.insert(at, rng.next() as u8),
            }
            if input.is_empty() {
                break;
            }
        }
        refused += usize::from(run(seed, &input).refused.is_some());
    }
    // The mutations are not all harmless: the checks must have refused many streams.
    assert!(refused > CASES as usize / 4, "only {refused} refused");
}

/// Regression: the fuzz target found that a cancel request longer than 16 bytes passed the
/// frame checks while pgwire decoded only 16 of its bytes, leaving the rest behind.
#[test]
fn fuzz_findings_stay_fixed() {
    let crash: &[u8] = &[
        0x00, 0x00, 0x00, 0x38, 0x04, 0xd2, 0x16, 0x2e, 0x00, 0x03, 0x00, 0x05, 0x0a, 0x02, 0x01,
        0x60, 0x08, 0x78, 0x03, 0x00, 0x00, 0x00, 0x14, 0x00, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
        0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
        0x78, 0x14, 0x00, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x00, 0x00, 0x03,
        0x00,
    ];
    let outcome = run(0, crash);
    assert_eq!(outcome.refused, Some("08P01"));
    assert_eq!(outcome.messages, 0);
}
