//! Any byte string, and any JSON value in any envelope, is normalized, skipped or
//! rejected — never a panic — and the counters always add up.

use demarc_model::Origin;
use demarc_normalize::{ColumnTest, Options, RowFilter, normalize_bytes};
use proptest::prelude::*;
use serde_json::Value;

fn check(input: &[u8]) {
    let out = normalize_bytes(input, &Origin::file("prop"), Options::default());
    let stats = &out.stats;
    assert_eq!(stats.events_out as usize, out.rows());
    assert_eq!(stats.rejected_total() as usize, out.rejects.len());
    assert_eq!(stats.events_in, stats.events_out + stats.rejected_total());
    for reject in &out.rejects {
        assert!(!reject.detail.is_empty());
        assert!(reject.excerpt.len() <= demarc_normalize::EXCERPT_BYTES);
    }
}

/// JSON values biased towards the keys the normalizer looks at, so that generated
/// values reach the event paths rather than stopping at "unrecognized".
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("Records".to_owned()),
        Just("eventID".to_owned()),
        Just("eventTime".to_owned()),
        Just("eventName".to_owned()),
        Just("userIdentity".to_owned()),
        Just("requestParameters".to_owned()),
        Just("responseElements".to_owned()),
        Just("additionalEventData".to_owned()),
        Just("readOnly".to_owned()),
        Just("resources".to_owned()),
        Just("detail-type".to_owned()),
        Just("detail".to_owned()),
        Just("entries".to_owned()),
        Just("protoPayload".to_owned()),
        Just("@type".to_owned()),
        Just("insertId".to_owned()),
        Just("timestamp".to_owned()),
        Just("logName".to_owned()),
        Just("message".to_owned()),
        Just("data".to_owned()),
        Just("status".to_owned()),
        Just("code".to_owned()),
        "[a-zA-Z@-]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from("2026-03-02T10:00:01Z")),
        Just(Value::from(
            "type.googleapis.com/google.cloud.audit.AuditLog"
        )),
        Just(Value::from("AWS API Call via CloudTrail")),
        Just(Value::from("ConsoleLogin")),
        Just(Value::from(
            "projects/p/logs/cloudaudit.googleapis.com%2Fpolicy"
        )),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A filter like the rules': operation sets, a pattern, the caller type and outcome.
fn row_filter() -> std::sync::Arc<RowFilter> {
    let set = |column: &str, values: &[&str]| {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        (column.to_owned(), ColumnTest::OneOf(values))
    };
    let pattern = ColumnTest::Matches {
        pattern: r"(^|\.)SetIamPolicy$".to_owned(),
        flags: Some("i".to_owned()),
    };
    let filter = RowFilter::new(vec![
        vec![
            set("provider", &["aws"]),
            set("operation", &["ConsoleLogin"]),
        ],
        vec![set("provider", &["gcp"]), ("operation".to_owned(), pattern)],
        vec![set("actor_type", &["Root"]), set("outcome", &["success"])],
    ]);
    std::sync::Arc::new(filter.expect("every alternative tests something"))
}

/// Normalizing with the row filter gives the rows of the full path that the filter
/// keeps, the same rejects and the same counters.
fn check_filtered(input: &[u8]) {
    let origin = Origin::file("prop");
    let full = normalize_bytes(input, &origin, Options::default());
    let options = Options {
        row_filter: Some(row_filter()),
        ..Options::default()
    };
    let filtered = normalize_bytes(input, &origin, options);
    let rejects = |out: &demarc_normalize::Normalized| -> Vec<String> {
        out.rejects.iter().map(|r| format!("{r:?}")).collect()
    };
    assert_eq!(rejects(&filtered), rejects(&full));
    let unmatched = filtered.stats.events_unmatched;
    assert_eq!(filtered.rows() as u64 + unmatched, full.rows() as u64);
    let counted = demarc_normalize::Stats {
        events_unmatched: 0,
        ..filtered.stats.clone()
    };
    assert_eq!(counted, full.stats);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_row_filter_changes_only_which_rows_are_built(
        value in json_value(),
        other in json_value(),
        cut in any::<prop::sample::Index>(),
    ) {
        let one = serde_json::to_string(&value).expect("serializes");
        let two = serde_json::to_string(&other).expect("serializes");
        check_filtered(one.as_bytes());
        let records = format!("{{\"Records\":[{one},{two},{one}]}}");
        check_filtered(records.as_bytes());
        // Broken somewhere inside: the same rejects, whichever part is read.
        let broken = &records.as_bytes()[..cut.index(records.len())];
        check_filtered(broken);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = serde_json::to_vec(&value).expect("serializes");
        check(&text);
        // The same value as one NDJSON line among others, and gzip-compressed.
        let mut lines = text.clone();
        lines.extend_from_slice(b"\n{\"eventID\":\"x\"}\n");
        lines.extend_from_slice(&text);
        check(&lines);
    }

    #[test]
    fn arbitrary_json_in_pubsub_never_panics(value in json_value()) {
        use base64::Engine as _;
        let text = serde_json::to_vec(&value).expect("serializes");
        let data = base64::engine::general_purpose::STANDARD.encode(&text);
        let push = serde_json::json!({"message": {"data": data, "messageId": "1"}});
        check(&serde_json::to_vec(&push).expect("serializes"));
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let in_records = format!("{{\"Records\":{}}}", "[".repeat(10_000));
    let in_field = format!(
        "{{\"eventID\":\"e\",\"eventTime\":\"2026-03-02T10:00:01Z\",\"x\":{}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    for text in [closed, in_records, in_field] {
        check(text.as_bytes());
        let out = normalize_bytes(text.as_bytes(), &Origin::file("deep"), Options::default());
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(out.rejects[0].reason.as_str(), "too_deep");
    }
    // Real events nest far less than the limit and pass.
    let ok = format!(
        "{{\"eventID\":\"e\",\"eventTime\":\"2026-03-02T10:00:01Z\",\"x\":{}1{}}}",
        "[".repeat(90),
        "]".repeat(90)
    );
    let out = normalize_bytes(ok.as_bytes(), &Origin::file("deep"), Options::default());
    assert_eq!(out.rows(), 1, "{:?}", out.rejects);
}

#[test]
fn nested_pubsub_beyond_the_depth_limit_is_rejected() {
    use base64::Engine as _;
    let mut payload =
        serde_json::json!({"eventID": "e", "eventTime": "2026-03-02T10:00:01Z"}).to_string();
    for _ in 0..10 {
        let data = base64::engine::general_purpose::STANDARD.encode(payload.as_bytes());
        payload = serde_json::json!({"message": {"data": data}}).to_string();
    }
    let out = normalize_bytes(
        payload.as_bytes(),
        &Origin::file("deep"),
        Options::default(),
    );
    assert_eq!(out.rows(), 0);
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].reason.as_str(), "too_deep");
}

#[test]
fn oversize_events_are_rejected_and_the_rest_kept() {
    let small = serde_json::json!({"eventID": "a", "eventTime": "2026-03-02T10:00:01Z"});
    let big = serde_json::json!({"eventID": "b", "eventTime": "2026-03-02T10:00:01Z", "requestParameters": {"x": "y".repeat(2_000)}});
    let file = serde_json::json!({"Records": [small, big]}).to_string();
    let options = Options {
        max_event_bytes: 1_000,
        ..Options::default()
    };
    let out = normalize_bytes(file.as_bytes(), &Origin::file("big"), options);
    assert_eq!(out.rows(), 1);
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].reason.as_str(), "oversize");
    assert_eq!(out.rejects[0].position.index, 1);
    assert_eq!(
        out.rejects[0].excerpt.len(),
        demarc_normalize::EXCERPT_BYTES
    );
}

#[test]
fn gzip_bombs_stop_at_the_input_limit() {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&vec![b' '; 4 << 20])
        .expect("in-memory write");
    let bomb = encoder.finish().expect("in-memory write");
    let options = Options {
        max_input_bytes: 1 << 20,
        ..Options::default()
    };
    let out = normalize_bytes(&bomb, &Origin::file("bomb"), options);
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].reason.as_str(), "oversize");
}

#[test]
fn corrupt_gzip_is_rejected() {
    let out = normalize_bytes(
        &[0x1f, 0x8b, 8, 0, 1, 2, 3],
        &Origin::file("gz"),
        Options::default(),
    );
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].reason.as_str(), "bad_gzip");
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    use std::io::Write as _;
    let gzip = |text: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).expect("in-memory write");
        encoder.finish().expect("in-memory write")
    };
    let mut input = gzip("{\"eventID\":\"a\",\"eventTime\":\"2026-03-02T10:00:01Z\"}\n");
    input.extend(gzip(
        "{\"eventID\":\"b\",\"eventTime\":\"2026-03-02T10:00:02Z\"}\n",
    ));
    let out = normalize_bytes(&input, &Origin::file("members"), Options::default());
    assert_eq!(out.rows(), 2, "{:?}", out.rejects);
}
