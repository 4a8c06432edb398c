//! `demarc sql`, `demarc lake compact` and `demarc rules backtest` through the binary,
//! over a lake `demarc backfill` wrote from the bundled samples.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/samples");
const RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../queries/aws-cloudtrail-logging-stopped.sql"
);

fn demarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(args)
        .output()
        .expect("demarc runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn backfill(lake: &Path, alerts: &Path) {
    stdout(&demarc(&[
        "backfill",
        SAMPLES,
        "--lake",
        &lake.to_string_lossy(),
        "--alerts",
        &alerts.to_string_lossy(),
    ]));
}

fn csv(lake: &Path, sql: &str) -> String {
    stdout(&demarc(&[
        "sql",
        "--lake",
        &lake.to_string_lossy(),
        "--format",
        "csv",
        sql,
    ]))
}

fn ids(path: &Path, rule: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("alert"))
        .filter(|a| a["rule_id"] == rule)
        .map(|a| a["alert_id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn the_lake_of_a_backfill_answers_queries_compacts_and_backtests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    let alerts = dir.path().join("alerts.jsonl");
    backfill(&lake, &alerts);

    // The samples' 831 events and 38 alerts (README), by provider.
    assert_eq!(csv(&lake, "SELECT count(*) AS n FROM events"), "n\n831\n");
    assert_eq!(csv(&lake, "SELECT count(*) AS n FROM alerts"), "n\n38\n");
    let by_provider = csv(
        &lake,
        "SELECT provider, count(*) AS n FROM events GROUP BY provider ORDER BY provider",
    );
    assert!(by_provider.starts_with("provider,n\naws,"), "{by_provider}");
    assert!(by_provider.contains("\ngcp,"), "{by_provider}");

    // A second backfill of the same files is a replay: every event twice, until the
    // lake is compacted.
    backfill(&lake, &dir.path().join("again.jsonl"));
    assert_eq!(csv(&lake, "SELECT count(*) AS n FROM events"), "n\n1662\n");
    let out = stdout(&demarc(&["lake", "compact", &lake.to_string_lossy()]));
    // 831 events and 38 alerts written twice.
    assert!(
        out.contains("869 duplicate rows and alerts removed"),
        "{out}"
    );
    assert_eq!(csv(&lake, "SELECT count(*) AS n FROM events"), "n\n831\n");
    assert_eq!(csv(&lake, "SELECT count(*) AS n FROM alerts"), "n\n38\n");
    let files = csv(
        &lake,
        "SELECT count(DISTINCT provider || date || hour) AS partitions FROM events",
    );
    let partitions: usize = files.lines().nth(1).expect("row").parse().expect("n");
    let mut parquet = 0;
    let mut stack = vec![lake.join("events")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(path.extension().and_then(|e| e.to_str()), Some("parquet"));
                parquet += 1;
            }
        }
    }
    assert_eq!(
        parquet, partitions,
        "one file per partition after compaction"
    );

    // The backtest of a rule gives the backfill's alerts for it, with the same ids.
    let backtested = dir.path().join("backtest.jsonl");
    let out = stdout(&demarc(&[
        "rules",
        "backtest",
        RULE,
        "--lake",
        &lake.to_string_lossy(),
        "--alerts",
        &backtested.to_string_lossy(),
    ]));
    assert!(
        out.starts_with(
            "aws-cloudtrail-logging-stopped (high, logging-disabled) over the whole lake: 3 alerts"
        ),
        "{out}"
    );
    assert!(
        out.contains("alerts per day:") && out.contains("top actors:"),
        "{out}"
    );
    let rule = "aws-cloudtrail-logging-stopped";
    assert_eq!(ids(&backtested, rule), ids(&alerts, rule));
    assert_eq!(ids(&backtested, rule).len(), 3);
}

#[test]
fn mistakes_are_refused_with_the_place_in_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().to_string_lossy().into_owned();
    let out = demarc(&["sql", "--lake", &lake, "SELECT actor_princpal FROM events"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("line 1, column 8") && error.contains("|        ^^^^^^^^^^^^^^"),
        "{error}"
    );
    let out = demarc(&["sql", "--lake", &lake, "DROP TABLE events"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DDL not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty lake has empty tables.
    assert_eq!(
        stdout(&demarc(&[
            "sql",
            "--lake",
            &lake,
            "--format",
            "json",
            "SELECT count(*) AS n FROM events"
        ])),
        "{\"n\":0}\n"
    );
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `demarc sql … | head`: the reader closes the pipe after the first bytes, long
    // before the 2 MB of output are written (a pipe holds 64 KiB).
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().to_string_lossy().into_owned();
    for format in ["table", "csv", "json", "parquet"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demarc"))
            .args(["sql", "--lake", &lake, "--format", format])
            .arg("SELECT unnest(range(0, 300000)) AS n")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("demarc runs");
        let mut first = [0u8; 16];
        child
            .stdout
            .take()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("the output begins");
        let out = child.wait_with_output().expect("demarc ends");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{format}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
