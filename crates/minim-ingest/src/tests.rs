//! Request-level tests of `decode_native`: a table of rejection cases, framing and
//! encoding scenarios, and proptests over arbitrary and JSON-ish input.

use std::collections::BTreeSet;
use std::io::Write;

use proptest::prelude::*;
use serde_json::Value;

use crate::*;

/// 2026-01-05T10:00:00Z
const NOW: i64 = 1_767_607_200_000;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn decode(body: &[u8], format: BodyFormat) -> Result<Decoded, DecodeError> {
    decode_native(
        body,
        format,
        ContentEncoding::Identity,
        &IngestLimits::default(),
        NOW,
    )
}

/// Every rejection code, as data: (event JSON, expected code). One test checks them all
/// and that no code in `codes::REJECTION_CODES` is left without a case.
const REJECTION_CASES: &[(&str, &str)] = &[
    (
        r#"{"event":"a","distinct_id":"u","properties":{"k":1e400}}"#,
        "malformed_json",
    ),
    (r#"["not","an","object"]"#, "invalid_event"),
    (
        r#"{"event":"a","event":"b","distinct_id":"u"}"#,
        "invalid_event",
    ),
    (r#"{"distinct_id":"u"}"#, "missing_event"),
    (r#"{"event":"","distinct_id":"u"}"#, "missing_event"),
    (r#"{"event":7,"distinct_id":"u"}"#, "missing_event"),
    (
        "{\"event\":\"LONG_NAME\",\"distinct_id\":\"u\"}",
        "event_name_too_long",
    ),
    (
        r#"{"event":"a","distinct_id":false}"#,
        "missing_distinct_id",
    ),
    (
        "{\"event\":\"a\",\"distinct_id\":\"LONG_ID\"}",
        "distinct_id_too_long",
    ),
    (
        r#"{"event":"a","distinct_id":"u","timestamp":"soon"}"#,
        "invalid_timestamp",
    ),
    (
        r#"{"event":"a","distinct_id":"u","timestamp":"2036-01-05T10:00:00Z"}"#,
        "timestamp_out_of_range",
    ),
    (
        r#"{"event":"a","distinct_id":"u","timestamp":"2016-01-05T10:00:00Z"}"#,
        "timestamp_out_of_range",
    ),
    (
        r#"{"event":"a","distinct_id":"u","insert_id":42}"#,
        "invalid_insert_id",
    ),
    (
        "{\"event\":\"a\",\"distinct_id\":\"u\",\"insert_id\":\"LONG_INSERT_ID\"}",
        "invalid_insert_id",
    ),
    (
        r#"{"event":"a","distinct_id":"u","properties":[1]}"#,
        "invalid_properties",
    ),
    (
        "{\"event\":\"a\",\"distinct_id\":\"u\",\"properties\":MANY_PROPS}",
        "too_many_properties",
    ),
    (
        r#"{"event":"a","distinct_id":"u","properties":{"":1}}"#,
        "invalid_property_key",
    ),
    (
        r#"{"event":"a","distinct_id":"u","properties":{"a":1,"a":1}}"#,
        "invalid_property_key",
    ),
    (
        "{\"event\":\"a\",\"distinct_id\":\"u\",\"properties\":{\"LONG_KEY\":1}}",
        "property_key_too_long",
    ),
    (
        "{\"event\":\"a\",\"distinct_id\":\"u\",\"properties\":{\"k\":\"LONG_VALUE\"}}",
        "property_value_too_long",
    ),
    (
        r#"{"event":"a","distinct_id":"u","properties":{"a":[[[[{}]]]]}}"#,
        "properties_too_deep",
    ),
];

fn expand_case(template: &str) -> String {
    let props: Vec<String> = (0..1001).map(|i| format!("\"p{i}\":{i}")).collect();
    template
        .replace("LONG_NAME", &"n".repeat(257))
        .replace("LONG_ID", &"i".repeat(257))
        .replace("LONG_INSERT_ID", &"x".repeat(129))
        .replace("LONG_KEY", &"k".repeat(257))
        .replace("LONG_VALUE", &"v".repeat(16 * 1024 + 1))
        .replace("MANY_PROPS", &format!("{{{}}}", props.join(",")))
}

#[test]
fn each_rejection_code_is_reported_at_its_index_between_good_neighbours() {
    let good = r#"{"event":"ok","distinct_id":"u"}"#;
    let mut covered = BTreeSet::new();
    for (template, want) in REJECTION_CASES {
        let bad = expand_case(template);
        let body = format!("[{good},{bad},{good}]");
        let d = decode(body.as_bytes(), BodyFormat::JsonArray).unwrap();
        assert_eq!(d.indices, [0, 2], "{template}");
        assert_eq!(d.rejected.len(), 1, "{template}");
        assert_eq!(
            (d.rejected[0].index, d.rejected[0].code),
            (1, *want),
            "{template}: {}",
            d.rejected[0].message
        );
        covered.insert(*want);
    }
    for code in codes::REJECTION_CODES {
        assert!(covered.contains(code), "no case for {code}");
    }
}

#[test]
fn json_array_of_events_decodes_in_order() {
    let body =
        br#"[{"event":"a","distinct_id":"1"},{"event":"b","distinct_id":2,"properties":{"x":1}}]"#;
    let d = decode(body, BodyFormat::JsonArray).unwrap();
    assert_eq!(d.indices, [0, 1]);
    assert_eq!(d.events[1].event, "b");
    assert_eq!(d.events[1].distinct_id, "2");
    assert_eq!(d.events[1].properties, r#"{"x":1}"#);
    assert!(d.rejected.is_empty());
}

#[test]
fn single_object_json_body_is_one_event() {
    let d = decode(
        br#" {"event":"a","distinct_id":"u"} "#,
        BodyFormat::JsonArray,
    )
    .unwrap();
    assert_eq!((d.events.len(), d.indices.as_slice()), (1, &[0][..]));
    let d = decode(br#"{"event":"a","distinct_id":[]}"#, BodyFormat::JsonArray).unwrap();
    assert_eq!(d.rejected[0].code, "missing_distinct_id");
}

#[test]
fn empty_array_is_zero_events_but_empty_json_body_is_malformed() {
    assert_eq!(
        decode(b"[]", BodyFormat::JsonArray).unwrap(),
        Decoded::default()
    );
    assert_eq!(
        decode(b"", BodyFormat::JsonArray).unwrap_err().code(),
        "malformed_json"
    );
    assert_eq!(decode(b"", BodyFormat::Ndjson).unwrap(), Decoded::default());
}

#[test]
fn byte_order_mark_is_ignored() {
    let d = decode(
        b"\xEF\xBB\xBF[{\"event\":\"a\",\"distinct_id\":\"u\"}]",
        BodyFormat::JsonArray,
    )
    .unwrap();
    assert_eq!(d.events.len(), 1);
    let d = decode(
        b"\xEF\xBB\xBF{\"event\":\"a\",\"distinct_id\":\"u\"}\n",
        BodyFormat::Ndjson,
    )
    .unwrap();
    assert_eq!(d.events.len(), 1);
}

#[test]
fn ndjson_bad_line_in_the_middle_keeps_its_neighbours() {
    let body = b"{\"event\":\"a\",\"distinct_id\":\"u\"}\n\n{\"event\": oops\n  \r\n{\"event\":\"c\",\"distinct_id\":\"u\"}\r\n[1]\n";
    let d = decode(body, BodyFormat::Ndjson).unwrap();
    // Blank lines take no index: the bad line is index 1, "c" index 2, [1] index 3.
    assert_eq!(d.indices, [0, 2]);
    assert_eq!(d.events[1].event, "c");
    let got: Vec<_> = d.rejected.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(got, [(1, "malformed_json"), (3, "invalid_event")]);
    assert!(!d.rejected[0].message.contains("oops"));
}

#[test]
fn ndjson_where_no_line_parses_is_malformed() {
    let err = decode(b"{oops\nnope\n\n", BodyFormat::Ndjson).unwrap_err();
    assert_eq!(err.code(), "malformed_json");
    // Lines that parse but fail validation are per-event rejections, not a bad body.
    let d = decode(b"{oops\n[1]\n", BodyFormat::Ndjson).unwrap();
    assert_eq!(d.rejected.len(), 2);
}

#[test]
fn too_many_events_rejects_the_whole_request() {
    let limits = IngestLimits {
        max_events_per_request: 2,
        ..IngestLimits::default()
    };
    let ev = r#"{"event":"a","distinct_id":"u"}"#;
    let two = format!("[{ev},{ev}]");
    let three = format!("[{ev},{ev},{ev}]");
    let run = |b: &str, f| decode_native(b.as_bytes(), f, ContentEncoding::Identity, &limits, NOW);
    assert_eq!(run(&two, BodyFormat::JsonArray).unwrap().events.len(), 2);
    assert_eq!(
        run(&three, BodyFormat::JsonArray).unwrap_err(),
        DecodeError::TooManyEvents { limit: 2 }
    );
    let nd3 = format!("{ev}\n\n{ev}\n{ev}\n");
    assert_eq!(
        run(&nd3, BodyFormat::Ndjson).unwrap_err(),
        DecodeError::TooManyEvents { limit: 2 }
    );
    assert_eq!(
        run(&format!("{ev}\n\n\n{ev}\n"), BodyFormat::Ndjson)
            .unwrap()
            .events
            .len(),
        2
    );
}

#[test]
fn body_of_100k_open_brackets_is_malformed_not_a_stack_overflow() {
    for body in [
        vec![b'['; 100_000],
        vec![b'{'; 100_000],
        [b"[{\"a\":".as_slice(), &[b'['; 100_000]].concat(),
    ] {
        assert_eq!(
            decode(&body, BodyFormat::JsonArray).unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            decode(&body, BodyFormat::Ndjson).unwrap_err().code(),
            "malformed_json"
        );
    }
    // Balanced: valid JSON, refused per event.
    let deep = [b"[".repeat(100_000), b"]".repeat(100_000)].concat();
    assert_eq!(
        decode(&deep, BodyFormat::JsonArray).unwrap().rejected[0].code,
        "invalid_event"
    );
}

#[test]
fn gzip_body_round_trips_through_decode_native() {
    let body = br#"[{"event":"a","distinct_id":"u","properties":{"k":"v"}}]"#;
    let limits = IngestLimits::default();
    let d = decode_native(
        &gzip(body),
        BodyFormat::JsonArray,
        ContentEncoding::Gzip,
        &limits,
        NOW,
    )
    .unwrap();
    assert_eq!(d.events[0].properties, r#"{"k":"v"}"#);
}

#[test]
fn gzip_bomb_through_decode_native_is_body_too_large() {
    let limits = IngestLimits {
        max_body_bytes: 1 << 20,
        ..IngestLimits::default()
    };
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let err = decode_native(
        &bomb,
        BodyFormat::JsonArray,
        ContentEncoding::Gzip,
        &limits,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err, DecodeError::BodyTooLarge { limit: 1 << 20 });
}

#[test]
fn truncated_gzip_through_decode_native_is_malformed_gzip() {
    let body = gzip(br#"[{"event":"a","distinct_id":"u"}]"#);
    let limits = IngestLimits::default();
    let err = decode_native(
        &body[..body.len() - 3],
        BodyFormat::JsonArray,
        ContentEncoding::Gzip,
        &limits,
        NOW,
    );
    assert_eq!(err.unwrap_err().code(), "malformed_gzip");
}

/// How many events `body` holds according to an independent reading, when there is one.
fn reference_count(body: &[u8], format: BodyFormat) -> Option<usize> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match format {
        BodyFormat::Ndjson => Some(
            body.split(|&b| b == b'\n')
                .filter(|l| l.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')))
                .count(),
        ),
        BodyFormat::JsonArray => match serde_json::from_slice::<Value>(body).ok()? {
            Value::Array(a) => Some(a.len()),
            Value::Object(_) => Some(1),
            _ => None,
        },
    }
}

/// The invariants of a successful decode: every index exactly once, in order, and every
/// accepted event's properties a canonical object that reads back as the input did.
fn check_accounting(body: &[u8], format: BodyFormat, d: &Decoded) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.events.len(), d.indices.len());
    let mut all: Vec<usize> = d
        .indices
        .iter()
        .copied()
        .chain(d.rejected.iter().map(|r| r.index))
        .collect();
    prop_assert!(d.indices.windows(2).all(|w| w[0] < w[1]));
    prop_assert!(d.rejected.windows(2).all(|w| w[0].index < w[1].index));
    all.sort_unstable();
    let n = all.len();
    prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
    if let Some(want) = reference_count(body, format) {
        prop_assert_eq!(n, want);
    }
    for e in &d.events {
        let v: Value = serde_json::from_str(&e.properties)
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert!(v.is_object());
        // An empty distinct_id is a cookieless event (the privacy pipeline derives it).
        prop_assert!(!e.event.is_empty());
    }
    for r in &d.rejected {
        prop_assert!(codes::REJECTION_CODES.contains(&r.code));
    }
    Ok(())
}

fn run_all_ways(body: &[u8]) -> Result<(), TestCaseError> {
    let limits = IngestLimits {
        max_events_per_request: 50,
        ..IngestLimits::default()
    };
    let gz = gzip(body);
    for format in [BodyFormat::JsonArray, BodyFormat::Ndjson] {
        for (bytes, encoding) in [
            (body, ContentEncoding::Identity),
            (&gz[..], ContentEncoding::Gzip),
        ] {
            if let Ok(d) = decode_native(bytes, format, encoding, &limits, NOW) {
                check_accounting(body, format, &d)?;
            }
        }
        // Raw bytes claimed to be gzip: must fail cleanly or decode, never panic.
        let _ = decode_native(body, format, ContentEncoding::Gzip, &limits, NOW);
    }
    Ok(())
}

/// An event object that is often valid: required fields mostly present and well typed,
/// properties arbitrary, sometimes an extra or broken field.
fn event_object() -> impl Strategy<Value = Value> {
    let name = prop_oneof![4 => "[a-z$ ]{1,8}".prop_map(Value::String), 1 => json_value()];
    let id = prop_oneof![
        3 => "[a-z0-9-]{1,8}".prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => json_value(),
    ];
    let ts = prop_oneof![
        Just(None),
        (1_700_000_000i64..1_767_607_200).prop_map(|s| Some(Value::from(s))),
        Just(Some(Value::String("2026-01-05T09:59:59.5+00:00".into()))),
        json_value().prop_map(Some),
    ];
    let props = prop_oneof![
        4 => prop::collection::vec(("[a-z$]{1,4}", json_value()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ];
    (name, id, ts, props).prop_map(|(name, id, ts, props)| {
        let mut m = serde_json::Map::new();
        m.insert("event".into(), name);
        m.insert("distinct_id".into(), id);
        if let Some(ts) = ts {
            m.insert("timestamp".into(), ts);
        }
        m.insert("properties".into(), props);
        Value::Object(m)
    })
}

/// Arbitrary JSON values, biased toward the shape of events.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event".to_owned()),
        Just("distinct_id".to_owned()),
        Just("timestamp".to_owned()),
        Just("insert_id".to_owned()),
        Just("properties".to_owned()),
        "[a-z$]{0,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (1_600_000_000i64..1_800_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z0-9 \\-:T.Z\"\\\\\u{0}\u{e9}]{0,12}".prop_map(Value::String),
        Just(Value::String("2026-01-05T09:00:00Z".into())),
    ];
    leaf.prop_recursive(7, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON equality where floats may differ in the last bit: without its `float_roundtrip`
/// feature serde_json reads numbers of 16+ significant digits up to 1 ULP off.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            // Within 4 ULPs, counted on the bit patterns so subnormals (whose spacing
            // is absolute, not relative) are compared the same way as normal numbers.
            let ulps = (x.to_bits() as i64).abs_diff(y.to_bits() as i64);
            x == y || (x.is_sign_negative() == y.is_sign_negative() && ulps <= 4)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_indices_are_accounted_for(body in prop::collection::vec(any::<u8>(), 0..512)) {
        run_all_ways(&body)?;
    }

    #[test]
    fn jsonish_strings_never_panic_and_indices_are_accounted_for(s in "[\\[\\]{}\",:0-9a-z \t\r\n]{0,256}") {
        run_all_ways(s.as_bytes())?;
    }

    #[test]
    fn event_shaped_json_never_panics_and_properties_round_trip(
        events in prop::collection::vec(prop_oneof![3 => event_object(), 1 => json_value()], 0..8),
    ) {
        let array = serde_json::to_string(&events).unwrap();
        run_all_ways(array.as_bytes())?;
        let lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let ndjson = lines.join("\n");
        run_all_ways(ndjson.as_bytes())?;

        // Reference model: accepted properties read back equal to the input object.
        let d = decode(array.as_bytes(), BodyFormat::JsonArray).unwrap();
        for (event, &i) in d.events.iter().zip(&d.indices) {
            let got: Value = serde_json::from_str(&event.properties).unwrap();
            let want = match &events[i]["properties"] {
                Value::Null => Value::Object(Default::default()),
                v => v.clone(),
            };
            prop_assert!(same_json(&got, &want), "{} vs {}", got, want);
        }
    }

    #[test]
    fn event_shaped_jsonish_text_from_fragments_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"), Just("\n"), Just(" "),
        Just("\"event\""), Just("\"distinct_id\""), Just("\"properties\""), Just("\"timestamp\""),
        Just("\"insert_id\""), Just("\"x\""), Just("\"\""), Just("1"), Just("-1.5e3"), Just("null"),
        Just("\"2026-01-05T10:00:00Z\""), Just("1767607200"), Just("\"\\ud800\""), Just("true"),
    ], 0..64)) {
        run_all_ways(parts.concat().as_bytes())?;
    }
}
