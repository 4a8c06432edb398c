use super::*;

#[test]
fn ndjson_is_told_from_a_prefix() {
    let line = br#"{"eventID":"a","eventTime":"2026-01-01T00:00:00Z"}"#;
    let mut ndjson = line.to_vec();
    ndjson.extend_from_slice(b"\n");
    ndjson.extend_from_slice(line);
    ndjson.extend_from_slice(b"\n{\"eventID\":\"tru");
    assert!(looks_like_ndjson(&ndjson));
    // A pretty-printed document cut short is not.
    assert!(!looks_like_ndjson(
        b"{\n  \"Records\": [\n    {\n      \"eventID\": \"a\",\n"
    ));
    assert!(!looks_like_ndjson(line));
    assert!(!looks_like_ndjson(b"  \n "));
}

#[test]
fn lines_cut_from_a_larger_input_keep_their_line_numbers() {
    let mut normalizer = Normalizer::new(Options::default());
    let origin = Origin::file("big.ndjson");
    let input = b"{\"eventID\":\"a\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\"}\n\n{\"broken\n";
    normalizer.push_lines(input, &origin, 41);
    let rejects = normalizer.take_rejects();
    let lines: Vec<u64> = rejects.iter().map(|r| r.position.line).collect();
    assert_eq!(lines, [43]);
    let batch = normalizer.take_batch().expect("one event");
    // A run that starts with a broken line is still read line by line.
    normalizer.push_lines(b"{\"cut\n{\"also\": \n", &origin, 7);
    let lines: Vec<u64> = normalizer
        .take_rejects()
        .iter()
        .map(|r| r.position.line)
        .collect();
    assert_eq!(lines, [7, 8]);
    let src_line = batch
        .column_by_name("src_line")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
        .map(|c| c.value(0));
    assert_eq!(src_line, Some(41));
}

#[test]
fn events_outside_the_time_range_are_skipped_and_counted() {
    let at = |id: &str, time: &str| {
        format!(
            "{{\"eventID\":\"{id}\",\"eventTime\":\"{time}\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\"}}\n"
        )
    };
    let input = [
        at("before", "2026-01-04T23:59:59Z"),
        at("first", "2026-01-05T00:00:00Z"),
        at("last", "2026-01-05T23:59:59.999Z"),
        at("after", "2026-01-06T00:00:00Z"),
    ]
    .concat();
    let day = |d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 1, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros())
    };
    let mut normalizer = Normalizer::new(Options {
        since_us: day(5),
        until_us: day(6),
        ..Options::default()
    });
    normalizer.push(input.as_bytes(), &Origin::file("day.ndjson"));
    let batch = normalizer.take_batch().expect("the day's events");
    let ids = batch
        .column_by_name("event_id")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .map(|c| c.iter().flatten().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(ids, Some(vec!["first".to_owned(), "last".to_owned()]));
    let stats = normalizer.stats();
    assert_eq!(stats.skipped.get(&SkipReason::OutsideTimeRange), Some(&2));
    assert!(normalizer.take_rejects().is_empty());
}

/// The values of a string column of a batch.
fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .map(|c| c.iter().map(|v| v.map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn exported_times_and_events_without_an_id_are_accepted_and_counted() {
    let records = r#"{"Records":[
        {"eventTime":"2026-03-02 10:00:01.123456789","eventSource":"s3.amazonaws.com","eventName":"PutBucketAcl"},
        {"eventID":"e2","eventTime":"2026-03-02T10:00:02","eventSource":"s3.amazonaws.com","eventName":"GetObject"},
        {"eventTime":"2026-03-02T10:00:03Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"x"}
    ]}"#;
    let normalize = || {
        normalize_bytes(
            records.as_bytes(),
            &Origin::file("r.json"),
            Options::default(),
        )
    };
    let out = normalize();
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let batch = out.batch.expect("rows");
    let ids = strings(&batch, "event_id");
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1].as_deref(), Some("e2"));
    for id in [&ids[0], &ids[2]] {
        let id = id.as_deref().expect("an id");
        assert!(id.starts_with("sha256:") && id.len() == 7 + 32, "{id}");
    }
    assert_ne!(ids[0], ids[2], "different events, different ids");
    // The same bytes read again: the same ids.
    assert_eq!(strings(&normalize().batch.expect("rows"), "event_id"), ids);
    let counted = |r| out.stats.lenient.get(&r).copied();
    assert_eq!(counted(LenientReason::DerivedEventId), Some(2));
    assert_eq!(counted(LenientReason::TimeWithoutZone), Some(2));
    assert_eq!(counted(LenientReason::TimeSpaceSeparator), Some(1));
    assert_eq!(counted(LenientReason::GcpPayloadWithoutType), None);
    let time = batch
        .column_by_name("time")
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
        })
        .map(|c| c.value(0));
    let expected = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:01.123456Z")
        .map(|t| t.timestamp_micros())
        .ok();
    assert_eq!(time, expected);
}

#[test]
fn a_gcp_payload_without_its_type_is_read_by_its_shape() {
    let entry = |payload: &str| {
        format!(
            r#"{{"insertId":"i","timestamp":"2026-03-02T10:00:01Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{payload}}}"#
        )
    };
    let shaped = entry(
        r#"{"serviceName":"iam.googleapis.com","methodName":"google.iam.admin.v1.CreateServiceAccountKey"}"#,
    );
    let out = normalize_bytes(shaped.as_bytes(), &Origin::file("g"), Options::default());
    assert_eq!(out.rows(), 1, "{:?}", out.rejects);
    assert_eq!(
        out.stats.lenient.get(&LenientReason::GcpPayloadWithoutType),
        Some(&1)
    );
    let batch = out.batch.expect("a row");
    assert_eq!(strings(&batch, "provider"), [Some("gcp".to_owned())]);
    // Without both fields, or with another type, it is not an audit log.
    for payload in [
        r#"{"methodName":"m"}"#,
        r#"{"@type":"type.googleapis.com/google.cloud.other","serviceName":"s","methodName":"m"}"#,
    ] {
        let out = normalize_bytes(
            entry(payload).as_bytes(),
            &Origin::file("g"),
            Options::default(),
        );
        assert_eq!(out.rows(), 0);
        assert_eq!(out.stats.skipped.get(&SkipReason::GcpNonAudit), Some(&1));
        assert!(out.stats.lenient.is_empty());
    }
}

#[test]
fn an_array_holding_text_that_is_not_utf8_is_rejected_not_a_panic() {
    let out = normalize_bytes(b"[\"\x80\"]", &Origin::file("bad"), Options::default());
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].reason, RejectReason::InvalidJson);
    assert!(
        out.rejects[0].detail.starts_with("not UTF-8"),
        "{:?}",
        out.rejects
    );
}
