//! `demarc backfill` as a user runs it: archives in; alerts, dead letters, a report and
//! a Parquet lake out.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use common::{demarc, repo};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("file written")).expect("JSON")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
    out
}

/// The value of `key=` in the path's Hive partition folders.
fn partition(path: &Path, key: &str) -> String {
    path.components()
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(|c| c.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {}", path.display()))
        .to_owned()
}

#[test]
fn samples_alert_and_fill_the_lake() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (lake, report_path) = (dir.path().join("lake"), dir.path().join("report.json"));
    let output = demarc(&[
        "backfill",
        "testdata/samples",
        "--lake",
        text(&lake),
        "--report",
        text(&report_path),
    ]);
    succeeded(&output);
    let report = read_json(&report_path);
    let alerts = json_lines(&output.stdout);
    assert_eq!(report["alerts"].as_u64(), Some(alerts.len() as u64));
    let rules: BTreeSet<&str> = alerts
        .iter()
        .filter_map(|a| a["rule_id"].as_str())
        .collect();
    for expected in [
        "aws-cloudtrail-logging-stopped",
        "aws-security-group-admin-port-open",
        "aws-console-login-without-mfa",
        "aws-admin-policy-attached",
    ] {
        assert!(
            rules.contains(expected),
            "{expected} missing from {rules:?}"
        );
    }
    for alert in &alerts {
        assert_eq!(
            alert["alert_id"].as_str().map(str::len),
            Some(32),
            "{alert}"
        );
        assert!(
            !alert["event_ids"].as_array().is_none_or(Vec::is_empty),
            "{alert}"
        );
        assert!(
            alert["source"][0]["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("testdata/samples/"))
        );
    }

    // Every event is in the lake once, under the partition of its own provider, date
    // and hour; the path carries `provider`, the files do not.
    let mut rows = 0;
    let parquet = files_under(&lake.join("events"), "parquet");
    assert!(!parquet.is_empty());
    for path in &parquet {
        let file = std::fs::File::open(path).expect("lake file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("Parquet")
            .build()
            .expect("reader");
        let (date, hour) = (partition(path, "date"), partition(path, "hour"));
        assert!(["aws", "gcp"].contains(&partition(path, "provider").as_str()));
        for batch in reader {
            let batch = batch.expect("batch");
            assert!(batch.column_by_name("provider").is_none());
            let time = batch
                .column_by_name("time")
                .expect("time")
                .as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                let at = chrono::DateTime::from_timestamp_micros(time.value(row)).expect("time");
                assert_eq!(
                    at.format("%Y-%m-%d").to_string(),
                    date,
                    "{}",
                    path.display()
                );
                assert_eq!(at.format("%H").to_string(), hour, "{}", path.display());
            }
            rows += batch.num_rows() as u64;
        }
    }
    assert_eq!(Some(rows), report["events_out"].as_u64());
    assert!(rows > 700);

    // The lake's alerts are the printed ones, filed under their event's date.
    let mut lake_alerts = 0;
    for path in files_under(&lake.join("alerts"), "jsonl") {
        let date = partition(&path, "date");
        for alert in json_lines(&std::fs::read(&path).expect("alerts file")) {
            assert!(
                alert["event_time"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&date))
            );
            lake_alerts += 1;
        }
    }
    assert_eq!(lake_alerts, alerts.len());
    assert!(
        files_under(&lake, "partial").is_empty(),
        "no temporary file is left behind"
    );
}

fn alert_ids(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .filter_map(|a| a["alert_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_replay_gives_the_same_alerts_and_a_file_read_twice_alerts_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first_path = dir.path().join("first.jsonl");
    succeeded(&demarc(&[
        "backfill",
        "testdata/samples/aws-stratus-red-team",
        "--alerts",
        text(&first_path),
    ]));
    let first = json_lines(&std::fs::read(&first_path).expect("alerts"));
    assert!(!first.is_empty());

    let report_path = dir.path().join("report.json");
    let again = demarc(&[
        "backfill",
        "testdata/samples/aws-stratus-red-team",
        "testdata/samples/aws-stratus-red-team/aws.defense-evasion.cloudtrail-stop.json",
        "--threads",
        "1",
        "--report",
        text(&report_path),
    ]);
    succeeded(&again);
    let second = json_lines(&again.stdout);
    assert_eq!(alert_ids(&first), alert_ids(&second));
    assert_eq!(second.len(), alert_ids(&second).len());
    assert_eq!(read_json(&report_path)["duplicate_alerts"], 1);
}

fn cloudtrail(id: &str, name: &str) -> Value {
    json!({"eventVersion": "1.08", "eventID": id, "eventTime": "2026-02-03T04:05:06Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": name, "awsRegion": "eu-west-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops",
            "accountId": "111122223333"},
        "requestParameters": {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/main"},
        "sourceIPAddress": "198.51.100.1", "readOnly": false, "recipientAccountId": "111122223333"})
}

/// 3,000 lines: line 2,000 stops a trail, line 2,500 is cut short.
fn big_ndjson() -> Vec<u8> {
    let mut out = Vec::new();
    for line in 1..=3000 {
        let text = match line {
            2000 => cloudtrail("stop", "StopLogging").to_string(),
            2500 => "{\"eventID\": \"cut".to_owned(),
            _ => cloudtrail(&format!("e{line}"), "DescribeTrails").to_string(),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn a_large_ndjson_file_is_streamed_and_positions_stay_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("big.ndjson");
    std::fs::write(&plain, big_ndjson()).expect("write");
    let gzip = dir.path().join("big.ndjson.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&big_ndjson()).expect("compress");
    std::fs::write(&gzip, encoder.finish().expect("compress")).expect("write");

    for input in [&plain, &gzip] {
        let (dead, report_path) = (dir.path().join("dead.jsonl"), dir.path().join("r.json"));
        let output = demarc(&[
            "backfill",
            text(input),
            "--stream-above-bytes",
            "1",
            "--chunk-bytes",
            "65536",
            "--dead-letter",
            text(&dead),
            "--report",
            text(&report_path),
        ]);
        succeeded(&output);
        let report = read_json(&report_path);
        assert_eq!(report["files"], 1, "{report}");
        assert_eq!(report["events_out"], 2999, "{report}");
        assert_eq!(report["rejected"]["invalid_json"], 1, "{report}");
        let rejects = json_lines(&std::fs::read(&dead).expect("dead letters"));
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0]["position"]["line"], 2500);
        let alerts = json_lines(&output.stdout);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["rule_id"], "aws-cloudtrail-logging-stopped");
        assert_eq!(alerts[0]["source"][0]["line"], 2000);
    }
}

/// A gzip file cut off partway (a download that stopped): the lines before the cut are
/// processed and alert, and the report says where reading stopped.
#[test]
fn a_read_error_partway_keeps_the_lines_before_it_and_says_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&big_ndjson()).expect("compress");
    let whole = encoder.finish().expect("compress");
    let cut = dir.path().join("cut.ndjson.gz");
    // Past line 2,000 (the violation), well before the end.
    std::fs::write(&cut, &whole[..whole.len() * 9 / 10]).expect("write");
    let report_path = dir.path().join("r.json");
    let output = demarc(&[
        "backfill",
        text(&cut),
        "--stream-above-bytes",
        "1",
        "--chunk-bytes",
        "65536",
        "--report",
        text(&report_path),
    ]);
    let report = read_json(&report_path);
    let error = report["unreadable_files"][text(&cut)]
        .as_str()
        .unwrap_or_else(|| panic!("the cut file is not reported: {report}"));
    let line: u64 = error
        .strip_prefix("read error at line ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {error:?}"));
    let events = report["events_out"].as_u64().expect("events_out");
    // Every whole line before the failure became an event (one of them, line 2,500, is
    // rejected), and none after it.
    assert!(line > 2000 && line <= 3000, "{error}");
    assert_eq!(events, line - 1 - u64::from(line > 2500), "{report}");
    let alerts = json_lines(&output.stdout);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["source"][0]["line"], 2000);
}

#[test]
fn bad_rules_and_paths_fail_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rule = std::fs::read_to_string(repo().join("queries/aws-root-activity.sql")).expect("rule");
    std::fs::write(
        dir.path().join("broken.sql"),
        rule.replace("severity: high", "severity: urgent"),
    )
    .expect("write");
    let output = demarc(&["backfill", "testdata/samples", "--rules", text(dir.path())]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.sql:3:"), "{stderr}");
    assert!(stderr.contains("unknown severity `urgent`"), "{stderr}");
    assert!(output.stdout.is_empty());

    let output = demarc(&["backfill", "testdata/no-such-folder"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-folder"));

    let allow = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        allow.path().join("trusted_domains.csv"),
        "domain,owner,reason,expires\nexample.org,secops,ok,2027-01-01\nexample.net,secops,,2027-01-01\n",
    )
    .expect("write");
    let output = demarc(&[
        "backfill",
        "testdata/samples",
        "--allow",
        text(allow.path()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trusted_domains.csv:3: `reason` is empty"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// An allow table mutes what it lists, and a row past its `expires` no longer does and
/// is reported.
#[test]
fn allow_tables_mute_listed_domains_until_they_expire() {
    let fixtures = "testdata/rules/gcp-iam-granted-outside-org/positive";
    let alerts_with = |table: &str| {
        let allow = tempfile::tempdir().expect("temp dir");
        std::fs::write(allow.path().join("trusted_domains.csv"), table).expect("write");
        let output = demarc(&["backfill", fixtures, "--allow", text(allow.path())]);
        succeeded(&output);
        let alerts: Vec<String> = json_lines(&output.stdout)
            .iter()
            .filter(|a| a["rule_id"] == "gcp-iam-granted-outside-org")
            .map(|a| a["event_ids"][0].as_str().unwrap_or_default().to_owned())
            .collect();
        (alerts, String::from_utf8_lossy(&output.stderr).to_string())
    };
    let (all, _) = alerts_with("domain,owner,reason,expires\n");
    assert!(all.len() >= 3, "{all:?}");
    let (some, stderr) = alerts_with(
        "domain,owner,reason,expires\n\
         gmail.com,alice,trial,2020-01-01\n\
         partner.io,alice,vendor,2999-01-01\n\
         contractor.dev,alice,vendor,2999-01-01\n",
    );
    // The fixtures name their events after the outsider they add.
    let gmail: Vec<&String> = all.iter().filter(|id| id.contains("gmail")).collect();
    assert!(!gmail.is_empty());
    assert_eq!(some.iter().collect::<Vec<_>>(), gmail);
    assert!(
        stderr.contains(
            "trusted_domains.csv:2: allow.trusted_domains row (domain=gmail.com) expired"
        ),
        "{stderr}"
    );
}

/// The generated sample archive alerts on exactly the violations its generator
/// labelled, and on none of the near misses beside them.
#[test]
fn generated_violations_alert_and_near_misses_do_not() {
    let dir = "testdata/samples/aws-synthetic";
    let labels = std::fs::read_to_string(repo().join(dir).join("labels.tsv")).expect("labels");
    let expected: BTreeSet<(String, String)> = labels
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .map(|(event, rule)| (rule.to_owned(), event.to_owned()))
        .collect();
    assert!(expected.len() >= 8);
    let output = demarc(&["backfill", dir]);
    succeeded(&output);
    let fired: BTreeSet<(String, String)> = json_lines(&output.stdout)
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap_or_default().to_owned(),
                a["event_ids"][0].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(fired, expected);
}

/// Without a lake, only the events some rule may return become rows; with one, every
/// event does and the rules run over those events only. Either way the alerts, the
/// counts and the dead letters are those of building every row.
#[test]
fn building_only_the_rows_rules_can_use_changes_no_alert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |name: &str, extra: &[&str]| {
        let report = dir.path().join(format!("{name}.json"));
        let dead = dir.path().join(format!("{name}.dead.jsonl"));
        let mut args = vec![
            "backfill",
            "testdata/samples",
            "testdata/aws",
            "testdata/gcp",
            "--report",
            text(&report),
            "--dead-letter",
            text(&dead),
        ];
        args.extend(extra);
        let output = demarc(&args);
        succeeded(&output);
        let mut alerts = json_lines(&output.stdout);
        for alert in &mut alerts {
            alert["detected_at"] = Value::Null;
        }
        alerts.sort_by_key(|a| a["alert_id"].to_string());
        let dead = std::fs::read(&dead).unwrap_or_default();
        (alerts, read_json(&report), dead)
    };
    let (filtered, filtered_report, filtered_dead) = run("filtered", &[]);
    let (full, full_report, full_dead) = run("full", &["--no-row-filter"]);
    assert!(full.len() >= 10, "{} alerts", full.len());
    assert_eq!(filtered, full);
    // With a lake every event gets a row, and the rules run over the marked ones.
    let lake = dir.path().join("lake");
    let (marked, _, marked_dead) = run("marked", &["--lake", text(&lake)]);
    assert_eq!(marked, full);
    assert_eq!(marked_dead, full_dead);
    assert_eq!(filtered_dead, full_dead);
    assert!(!full_dead.is_empty(), "the samples hold bad input");
    for key in [
        "files",
        "bytes",
        "events_in",
        "events_out",
        "skipped",
        "rejected",
    ] {
        assert_eq!(filtered_report[key], full_report[key], "{key}");
    }
    assert_eq!(full_report["events_unmatched"], 0);
    let unmatched = filtered_report["events_unmatched"].as_u64().expect("count");
    assert!(unmatched > 100, "{filtered_report}");
}

/// A line longer than a whole chunk and than the event limit is rejected at its line,
/// and the lines after it keep their numbers.
#[test]
fn an_overlong_line_in_a_streamed_file_is_rejected_and_the_rest_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut lines = Vec::new();
    for line in 1..=200 {
        let event = match line {
            50 => {
                let mut e = cloudtrail("huge", "DescribeTrails");
                e["requestParameters"]["padding"] = json!("x".repeat(20_000));
                e
            }
            150 => cloudtrail("stop", "StopLogging"),
            _ => cloudtrail(&format!("e{line}"), "DescribeTrails"),
        };
        lines.extend_from_slice(event.to_string().as_bytes());
        lines.push(b'\n');
    }
    let input = dir.path().join("long.ndjson");
    std::fs::write(&input, lines).expect("write");
    let (dead, report_path) = (dir.path().join("dead.jsonl"), dir.path().join("r.json"));
    let output = demarc(&[
        "backfill",
        text(&input),
        "--stream-above-bytes",
        "1",
        "--chunk-bytes",
        "4096",
        "--max-event-bytes",
        "8192",
        "--dead-letter",
        text(&dead),
        "--report",
        text(&report_path),
    ]);
    succeeded(&output);
    let report = read_json(&report_path);
    assert_eq!(report["events_out"], 199, "{report}");
    assert_eq!(report["rejected"]["oversize"], 1, "{report}");
    let rejects = json_lines(&std::fs::read(&dead).expect("dead letters"));
    assert_eq!(rejects[0]["position"]["line"], 50);
    let alerts = json_lines(&output.stdout);
    assert_eq!(alerts[0]["source"][0]["line"], 150);
}

/// When standard output goes away (`demarc backfill … | head -1`), the run ends with
/// an error instead of waiting for ever.
#[test]
fn the_run_ends_when_its_output_goes_away() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = Vec::new();
    for line in 0..5_000 {
        text.extend_from_slice(
            cloudtrail(&format!("s{line}"), "StopLogging")
                .to_string()
                .as_bytes(),
        );
        text.push(b'\n');
    }
    let input = dir.path().join("many.ndjson");
    std::fs::write(&input, text).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["backfill", input.to_str().expect("utf-8"), "--threads", "1"])
        .args([
            "--stream-above-bytes",
            "1",
            "--chunk-bytes",
            "65536",
            "--batch-rows",
            "500",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("demarc runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("one alert");
    assert!(first.contains("aws-cloudtrail-logging-stopped"));
    // The reader is dropped here: the next write fails with a broken pipe.
    for _ in 0..600 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success());
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("demarc backfill did not end within a minute of its output closing");
}

/// A windowed rule in a backfill: the sequence's events are found across the archive
/// and named in one alert; a shorter sequence raises none.
#[test]
fn backfill_runs_rules_over_time() {
    let fixtures = repo().join("testdata/rules/aws-console-brute-force-then-success");
    let run = |file: PathBuf| {
        let output = demarc(&["backfill", file.to_str().expect("UTF-8")]);
        succeeded(&output);
        json_lines(&output.stdout)
            .into_iter()
            .filter(|a| a["rule_id"] == "aws-console-brute-force-then-success")
            .collect::<Vec<_>>()
    };
    let alerts = run(fixtures.join("positive/ten-failures-then-success.json"));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let ids = alerts[0]["event_ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 11, "{ids:?}");
    assert!(ids.contains(&json!("bf-a-ok")));
    assert!(run(fixtures.join("negative/nine-failures-then-success.json")).is_empty());
}
