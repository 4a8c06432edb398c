//! `demarc normalize` as a user runs it: real files in, Parquet or JSONL, dead letters
//! and a report out.

mod common;

use std::path::Path;

use arrow::array::{Array, AsArray};
use common::{demarc, repo};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

#[test]
fn samples_to_parquet_with_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("events.parquet");
    let report_path = dir.path().join("report.json");
    let result = demarc(&[
        "normalize",
        "testdata/samples",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--report",
        report_path.to_str().expect("utf-8 path"),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    let report = report(&report_path);
    let events_out = report["events_out"].as_u64().expect("events_out");
    assert!(events_out > 700, "{report}");
    assert_eq!(
        report["ignored_files"], 2,
        "the samples README and the labels of the generated archive are not read: {report}"
    );
    assert_eq!(report["rejected"], serde_json::json!({}), "{report}");
    assert!(
        report["skipped"]["gcp_non_audit"].as_u64() > Some(0),
        "{report}"
    );

    let file = std::fs::File::open(&out).expect("parquet written");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("valid parquet");
    let schema = builder.schema().clone();
    assert_eq!(
        schema
            .metadata()
            .get("demarc.schema_version")
            .map(String::as_str),
        Some("1")
    );
    let mut rows = 0;
    let mut providers = std::collections::BTreeSet::new();
    for batch in builder.build().expect("reader") {
        let batch = batch.expect("batch");
        rows += batch.num_rows();
        let column = batch
            .column_by_name("provider")
            .expect("provider")
            .as_string::<i32>();
        for i in 0..column.len() {
            providers.insert(column.value(i).to_owned());
        }
    }
    assert_eq!(rows as u64, events_out);
    assert_eq!(providers.into_iter().collect::<Vec<_>>(), ["aws", "gcp"]);
    assert!(!dir.path().join("events.parquet.partial").exists());
}

#[test]
fn invalid_files_go_to_the_dead_letter_file_with_their_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("mixed.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"eventID":"a","eventTime":"2026-03-02T10:00:01Z","eventName":"StopLogging"}"#,
            "\n",
            r#"{"eventID":"b","eventTime":"#,
            "\n",
            r#"{"eventID":"c","eventName":"DeleteTrail"}"#,
            "\n",
            // As a SIEM exports it: no eventID, a space for `T`, no zone.
            r#"{"eventTime":"2026-03-02 10:00:04","eventName":"GetObject"}"#,
            "\n",
        ),
    )
    .expect("input written");
    let out = dir.path().join("events.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let result = demarc(&[
        "normalize",
        input.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--dead-letter",
        dead.to_str().expect("utf-8 path"),
    ]);
    assert!(result.status.success(), "rejects never fail the run");

    let rows = std::fs::read_to_string(&out).expect("events written");
    assert_eq!(rows.lines().count(), 2);
    assert!(rows.contains(r#""event_id":"a""#));
    assert!(rows.contains(r#""event_id":"sha256:"#), "{rows}");
    assert!(rows.contains(r#""time":"2026-03-02T10:00:04Z""#), "{rows}");

    let dead = std::fs::read_to_string(&dead).expect("dead letters written");
    let rejects: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter is JSON"))
        .collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0]["reason"], "invalid_json");
    assert_eq!(rejects[0]["position"]["line"], 2);
    assert_eq!(rejects[1]["reason"], "missing_time");
    assert_eq!(rejects[1]["position"]["line"], 3);
    assert!(
        rejects[1]["excerpt"]
            .as_str()
            .expect("excerpt")
            .contains("DeleteTrail")
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("rejected missing_time: 1"), "{stderr}");
    for leniency in [
        "derived_event_id",
        "time_space_separator",
        "time_without_zone",
    ] {
        assert!(
            stderr.contains(&format!("accepted leniently, {leniency}: 1")),
            "{stderr}"
        );
    }
}

#[test]
fn bad_paths_and_formats_fail_clearly() {
    let result = demarc(&["normalize", "no/such/dir", "--out", "/tmp/x.parquet"]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("cannot read `no/such/dir`"), "{stderr}");

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("events.csv");
    let result = demarc(&[
        "normalize",
        "testdata/aws",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("name the file *.parquet or *.jsonl"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn rules_list_and_test() {
    let list = demarc(&["rules", "list"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(
        stdout.contains("aws-cloudtrail-logging-stopped"),
        "{stdout}"
    );
    assert!(stdout.contains("logging-disabled"), "{stdout}");

    let test = demarc(&["rules", "test"]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // Each rule's row names the evasion classes its fixtures cover.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("aws-cloudtrail-logging-stopped")
                && l.ends_with("outcome, catalog-variant")),
        "{stdout}"
    );

    // A rule whose fixtures it misses fails the run.
    let dir = tempfile::tempdir().expect("temp dir");
    let rule = std::fs::read_to_string(repo().join("queries/aws-cloudtrail-logging-stopped.sql"))
        .expect("rule is readable");
    std::fs::write(
        dir.path().join("r.sql"),
        rule.replace("'DeleteTrail', ", ""),
    )
    .expect("rule written");
    let test = demarc(&[
        "rules",
        "test",
        "--rules",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(!test.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("pos-delete"), "{stdout}");

    // So does a class the rule says applies to it with no fixture for it.
    std::fs::write(
        dir.path().join("r.sql"),
        rule.replace(
            "-- evasions: outcome,",
            "-- evasions: network-coverage, outcome,",
        ),
    )
    .expect("rule written");
    let test = demarc(&[
        "rules",
        "test",
        "--rules",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(!test.status.success(), "{stdout}");
    assert!(
        stdout.contains("says `network-coverage` applies to it but no fixture exercises it"),
        "{stdout}"
    );
}
