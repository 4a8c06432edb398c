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
