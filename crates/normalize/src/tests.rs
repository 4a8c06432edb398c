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
