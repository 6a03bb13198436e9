use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::Error;

fn enc(v: &KeyDatum, dir: Direction) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_key(&mut buf, v, dir);
    buf
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn expected_order(a: &KeyDatum, b: &KeyDatum, dir: Direction) -> Ordering {
    match dir {
        Direction::Asc => a.cmp(b),
        Direction::Desc => b.cmp(a),
    }
}

#[test]
fn strings_sort_before_their_extensions() {
    let words = ["", "a", "a\0", "a\0\0", "a\u{1}", "ab", "b", "\u{ff}"];
    for dir in [Direction::Asc, Direction::Desc] {
        let encoded: Vec<_> = words
            .iter()
            .map(|w| enc(&KeyDatum::String((*w).into()), dir))
            .collect();
        for pair in encoded.windows(2) {
            let want = if dir == Direction::Asc {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            assert_eq!(pair[0].cmp(&pair[1]), want, "{pair:?}");
        }
    }
}

#[test]
fn null_is_first_ascending_and_last_descending() {
    let null = KeyDatum::Null;
    let min = KeyDatum::Int(i64::MIN);
    assert!(enc(&null, Direction::Asc) < enc(&min, Direction::Asc));
    assert!(enc(&null, Direction::Desc) > enc(&min, Direction::Desc));
    let mut d = Decoder::new(&[0xFF]);
    assert!(d.peek_null(Direction::Desc).unwrap());
    assert!(!d.peek_null(Direction::Asc).unwrap());
    assert!(d.decode_null(Direction::Desc).unwrap());
    assert!(d.is_empty());
}

#[test]
fn small_integers_are_short() {
    for (v, len) in [
        (0, 1),
        (1, 2),
        (-1, 1),
        (255, 2),
        (256, 3),
        (-256, 2),
        (-257, 3),
    ] {
        assert_eq!(enc(&KeyDatum::Int(v), Direction::Asc).len(), len, "{v}");
    }
    assert_eq!(enc(&KeyDatum::Int(i64::MIN), Direction::Asc).len(), 9);
    assert_eq!(enc(&KeyDatum::Int(i64::MAX), Direction::Asc).len(), 9);
}

#[test]
fn typed_integer_decoders_check_width() {
    let mut buf = Vec::new();
    encode_i64(&mut buf, i64::from(i16::MAX) + 1, Direction::Asc);
    assert!(Decoder::new(&buf).decode_i16(Direction::Asc).is_err());
    assert_eq!(
        Decoder::new(&buf).decode_i32(Direction::Asc).unwrap(),
        i32::from(i16::MAX) + 1
    );
    buf.clear();
    encode_i16(&mut buf, -7, Direction::Desc);
    encode_i32(&mut buf, i32::MIN, Direction::Desc);
    let mut d = Decoder::new(&buf);
    assert_eq!(d.decode_i16(Direction::Desc).unwrap(), -7);
    assert_eq!(d.decode_i32(Direction::Desc).unwrap(), i32::MIN);
    assert!(d.is_empty());
}

#[test]
fn non_canonical_integers_are_rejected() {
    // 1 written with two significant bytes, and -1 written with one.
    for bytes in [
        [tag::INT_ZERO + 2, 0x00, 0x01],
        [tag::INT_ZERO - 2, 0xFF, 0x00],
    ] {
        assert!(
            Decoder::new(&bytes).decode_i64(Direction::Asc).is_err(),
            "{bytes:?}"
        );
    }
    // Eight bytes whose sign disagrees with the tag.
    let mut positive_tag = vec![tag::INT_MAX, 0x80];
    positive_tag.extend([0; 7]);
    assert!(
        Decoder::new(&positive_tag)
            .decode_i64(Direction::Asc)
            .is_err()
    );
}

#[test]
fn floats_normalise_zero_and_nan() {
    let asc = Direction::Asc;
    assert_eq!(
        enc(&KeyDatum::Float(-0.0), asc),
        enc(&KeyDatum::Float(0.0), asc)
    );
    let odd_nan = f64::from_bits(0xFFF8_0000_0000_0001);
    assert!(odd_nan.is_nan());
    assert_eq!(
        enc(&KeyDatum::Float(odd_nan), asc),
        enc(&KeyDatum::Float(f64::NAN), asc)
    );
    assert!(enc(&KeyDatum::Float(f64::INFINITY), asc) < enc(&KeyDatum::Float(f64::NAN), asc));
    assert!(enc(&KeyDatum::Float(f64::NEG_INFINITY), asc) < enc(&KeyDatum::Float(f64::MIN), asc));
}

#[test]
fn decimals_parse_normalise_and_print() {
    let cases = [
        ("-123.4500", "-123.45"),
        ("0.000", "0"),
        ("-0", "0"),
        ("+7", "7"),
        ("1500", "1500"),
        ("1.5e3", "1500"),
        ("15E-3", "0.015"),
        (".5", "0.5"),
        ("5.", "5"),
        ("000120.0100", "120.01"),
    ];
    for (input, printed) in cases {
        assert_eq!(dec(input).to_string(), printed, "{input}");
    }
    for bad in [
        "",
        "-",
        ".",
        "1..2",
        "1e",
        "1e+",
        "abc",
        "1.2.3",
        "--1",
        "1e1234567890",
    ] {
        assert!(
            matches!(bad.parse::<Decimal>(), Err(Error::InvalidDecimal { .. })),
            "{bad:?}"
        );
    }
    assert!("1e131071".parse::<Decimal>().is_ok());
    assert!("1e131072".parse::<Decimal>().is_err());
    assert!("1e-16383".parse::<Decimal>().is_ok());
    assert!("1e-16384".parse::<Decimal>().is_err());
    assert_eq!(Decimal::from(-1200), dec("-1.2e3"));
    assert_eq!(Decimal::from(0), Decimal::ZERO);
    assert_eq!(dec("1.0"), dec("1.00"));
    assert_eq!(dec("-2.5").neg(), dec("2.5"));
    assert!(dec("0").neg().is_zero() && !dec("0").neg().is_negative());
}

#[test]
fn decimal_encoding_orders_numerically() {
    let ordered = [
        "-1000", "-999.99", "-10", "-9.9", "-1.01", "-1", "-0.5", "-0.05", "0", "0.001", "0.01",
        "0.0101", "0.1", "1", "1.000001", "1.1", "9", "10", "10.5", "99", "100", "1e10",
    ];
    for dir in [Direction::Asc, Direction::Desc] {
        for w in ordered.windows(2) {
            let (a, b) = (KeyDatum::Decimal(dec(w[0])), KeyDatum::Decimal(dec(w[1])));
            assert_eq!(a.cmp(&b), Ordering::Less, "{w:?}");
            assert_eq!(
                enc(&a, dir).cmp(&enc(&b, dir)),
                expected_order(&a, &b, dir),
                "{w:?}"
            );
        }
    }
}

#[test]
fn prefix_successor_bounds_prefix_scans() {
    assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
    assert_eq!(prefix_successor(&[0xFF]), None);
    assert_eq!(prefix_successor(b""), None);
}

#[test]
fn wrong_type_and_truncation_are_errors() {
    let mut buf = Vec::new();
    encode_string(&mut buf, "hello", Direction::Asc);
    assert!(Decoder::new(&buf).decode_bytes(Direction::Asc).is_err());
    assert!(Decoder::new(&buf).decode_i64(Direction::Asc).is_err());
    assert!(Decoder::new(&buf).decode_string(Direction::Desc).is_err());
    assert!(
        Decoder::new(&buf[..buf.len() - 1])
            .decode_string(Direction::Asc)
            .is_err()
    );
    assert!(Decoder::new(&[]).peek_null(Direction::Asc).is_err());
    // Invalid UTF-8 inside a string.
    let bad = [tag::STRING, 0xC3, 0x28, ESCAPE, TERMINATOR];
    assert!(Decoder::new(&bad).decode_string(Direction::Asc).is_err());
}

// ---- property tests ----

fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
        0..8,
    )
}

/// A decimal as (mantissa, scale), i.e. mantissa / 10^scale, with a textual form.
fn arb_scaled_decimal() -> impl Strategy<Value = (i64, u32)> {
    (
        prop_oneof![any::<i64>(), -1000i64..1000, Just(0)],
        0u32..=10,
    )
}

fn scaled_to_string(m: i64, scale: u32) -> String {
    let digits = format!("{:0>width$}", m.unsigned_abs(), width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if m < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

fn arb_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        arb_scaled_decimal().prop_map(|(m, s)| dec(&scaled_to_string(m, s))),
        (
            any::<bool>(),
            prop::collection::vec(0u8..10, 1..30),
            -40i32..40
        )
            .prop_map(|(neg, digits, e)| {
                let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                dec(&format!("{}0.{text}e{e}", if neg { "-" } else { "" }))
            }),
    ]
}

/// Generates a value of the type with index `ty` (NULL included as a possibility).
fn arb_of_type(ty: u8) -> BoxedStrategy<KeyDatum> {
    let value = match ty {
        0 => any::<bool>().prop_map(KeyDatum::Bool).boxed(),
        1 => prop_oneof![
            any::<i64>(),
            -300i64..300,
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1)
        ]
        .prop_map(KeyDatum::Int)
        .boxed(),
        2 => arb_float().prop_map(KeyDatum::Float).boxed(),
        3 => arb_decimal().prop_map(KeyDatum::Decimal).boxed(),
        4 => arb_bytes().prop_map(KeyDatum::Bytes).boxed(),
        5 => "[a\\x00\\x01\\u{ff}é]{0,6}|.{0,6}"
            .prop_map(KeyDatum::String)
            .boxed(),
        6 => any::<i32>().prop_map(KeyDatum::Date).boxed(),
        _ => any::<i64>().prop_map(KeyDatum::Timestamp).boxed(),
    };
    prop_oneof![1 => Just(KeyDatum::Null), 8 => value].boxed()
}

fn arb_dir() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Asc), Just(Direction::Desc)]
}

fn arb_same_type_pair() -> impl Strategy<Value = (KeyDatum, KeyDatum)> {
    (0u8..8).prop_flat_map(|ty| (arb_of_type(ty), arb_of_type(ty)))
}

fn arb_any() -> impl Strategy<Value = KeyDatum> {
    (0u8..8).prop_flat_map(arb_of_type)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn byte_order_is_value_order((a, b) in arb_same_type_pair(), dir in arb_dir()) {
        prop_assert_eq!(enc(&a, dir).cmp(&enc(&b, dir)), expected_order(&a, &b, dir));
    }

    #[test]
    fn byte_order_is_value_order_across_types(a in arb_any(), b in arb_any(), dir in arb_dir()) {
        prop_assert_eq!(enc(&a, dir).cmp(&enc(&b, dir)), expected_order(&a, &b, dir));
    }

    #[test]
    fn decode_inverts_encode(v in arb_any(), dir in arb_dir(), trailer in arb_bytes()) {
        let mut buf = enc(&v, dir);
        let len = buf.len();
        buf.extend_from_slice(&trailer);
        let (back, rest) = decode_key(&buf, dir).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(rest, &trailer[..]);
        prop_assert_eq!(enc(&back, dir).len(), len);
    }

    #[test]
    fn typed_decoders_match_generic(v in arb_any(), dir in arb_dir()) {
        let buf = enc(&v, dir);
        let mut d = Decoder::new(&buf);
        let typed = match &v {
            KeyDatum::Null => d.decode_null(dir).map(|n| n.then_some(KeyDatum::Null)).unwrap(),
            KeyDatum::Bool(_) => d.decode_bool(dir).ok().map(KeyDatum::Bool),
            KeyDatum::Int(_) => d.decode_i64(dir).ok().map(KeyDatum::Int),
            KeyDatum::Float(_) => d.decode_f64(dir).ok().map(KeyDatum::Float),
            KeyDatum::Decimal(_) => d.decode_decimal(dir).ok().map(KeyDatum::Decimal),
            KeyDatum::Bytes(_) => d.decode_bytes(dir).ok().map(KeyDatum::Bytes),
            KeyDatum::String(_) => d.decode_string(dir).ok().map(KeyDatum::String),
            KeyDatum::Date(_) => d.decode_date(dir).ok().map(KeyDatum::Date),
            KeyDatum::Timestamp(_) => d.decode_timestamp(dir).ok().map(KeyDatum::Timestamp),
        };
        prop_assert_eq!(typed, Some(v));
        prop_assert!(d.is_empty());
    }

    #[test]
    fn decimal_order_matches_scaled_integers(a in arb_scaled_decimal(), b in arb_scaled_decimal()) {
        // Exact model: m / 10^s compared at a common scale of 10 in 128-bit arithmetic.
        let model = |(m, s): (i64, u32)| i128::from(m) * 10i128.pow(10 - s);
        let (da, db) = (dec(&scaled_to_string(a.0, a.1)), dec(&scaled_to_string(b.0, b.1)));
        prop_assert_eq!(da.cmp(&db), model(a).cmp(&model(b)));
        prop_assert_eq!(da.to_string().parse::<Decimal>().unwrap(), da.clone());
        let (ea, eb) = (enc(&KeyDatum::Decimal(da), Direction::Asc), enc(&KeyDatum::Decimal(db), Direction::Asc));
        prop_assert_eq!(ea.cmp(&eb), model(a).cmp(&model(b)));
    }

    #[test]
    fn float_order_is_total_order(a in arb_float(), b in arb_float()) {
        let norm = |f: f64| if f.is_nan() { f64::NAN } else if f == 0.0 { 0.0 } else { f };
        let (ea, eb) = (enc(&KeyDatum::Float(a), Direction::Asc), enc(&KeyDatum::Float(b), Direction::Asc));
        prop_assert_eq!(ea.cmp(&eb), norm(a).total_cmp(&norm(b)));
    }

    #[test]
    fn compound_keys_order_lexicographically(
        (schema, a, b) in prop::collection::vec((0u8..8, arb_dir()), 1..5).prop_flat_map(|schema| {
            let row = schema.iter().map(|&(ty, _)| arb_of_type(ty)).collect::<Vec<_>>();
            // Rows that share a prefix exercise the later columns.
            (Just(schema), row.clone(), row, 0usize..5)
                .prop_map(|(schema, a, mut b, shared)| {
                    let n = shared.min(a.len());
                    b[..n].clone_from_slice(&a[..n]);
                    (schema, a, b)
                })
        })
    ) {
        let encode_row = |row: &[KeyDatum]| {
            let mut buf = Vec::new();
            for (v, (_, dir)) in row.iter().zip(&schema) {
                encode_key(&mut buf, v, *dir);
            }
            buf
        };
        let model = a.iter().zip(&b).zip(&schema)
            .map(|((x, y), (_, dir))| expected_order(x, y, *dir))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        let (ea, eb) = (encode_row(&a), encode_row(&b));
        prop_assert_eq!(ea.cmp(&eb), model);
        let mut d = Decoder::new(&ea);
        for (v, (_, dir)) in a.iter().zip(&schema) {
            prop_assert_eq!(&d.decode_key(*dir).unwrap(), v);
        }
        prop_assert!(d.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40), dir in arb_dir()) {
        check_decoders_on(&bytes, dir)?;
    }

    #[test]
    fn mutated_encodings_never_panic(
        row in prop::collection::vec(arb_any(), 1..4),
        dir in arb_dir(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        for v in &row { encode_key(&mut buf, v, dir); }
        for (at, x) in flips { let i = at.index(buf.len()); buf[i] ^= x; }
        let keep = cut.index(buf.len() + 1);
        buf.truncate(keep);
        check_decoders_on(&buf, dir)?;
    }
}

/// Runs every decoder over `bytes`; they may fail but not panic, and whatever decodes must
/// re-encode to exactly the bytes it came from (encodings are canonical).
fn check_decoders_on(bytes: &[u8], dir: Direction) -> Result<(), TestCaseError> {
    if let Ok(values) = decode_all(bytes, dir) {
        let mut again = Vec::new();
        for v in &values {
            encode_key(&mut again, v, dir);
        }
        prop_assert_eq!(&again[..], bytes);
    }
    let d = Decoder::new(bytes);
    let _ = d.clone().decode_bool(dir);
    let _ = d.clone().decode_i16(dir);
    let _ = d.clone().decode_i32(dir);
    let _ = d.clone().decode_i64(dir);
    let _ = d.clone().decode_f64(dir);
    let _ = d.clone().decode_decimal(dir);
    let _ = d.clone().decode_bytes(dir);
    let _ = d.clone().decode_string(dir);
    let _ = d.clone().decode_date(dir);
    let _ = d.clone().decode_timestamp(dir);
    let _ = d.clone().decode_null(dir);
    Ok(())
}
