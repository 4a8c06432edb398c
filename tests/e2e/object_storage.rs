//! `demarc backfill` of archives where they live, against real servers on loopback: an
//! S3-compatible server (moto) and a GCS emulator (fake-gcs-server), with a proxy in
//! front that throttles, refuses and records requests.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use demarc_tests::demarc::{binary, repo};
use demarc_tests::store::{self, Faults, Proxy};

/// What a backfill did.
struct Run {
    ok: bool,
    stderr: String,
    /// Alert id → rule.
    alerts: BTreeMap<String, String>,
    report: serde_json::Value,
}

/// `demarc backfill ARGS` with the test store's credentials.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(binary().expect("the demarc binary"));
    command
        .arg("backfill")
        .args(args)
        .envs(store::CREDENTIALS)
        .env_remove("AWS_PROFILE")
        .env_remove("DEMARC_STORE_ENDPOINT");
    command
}

fn backfill(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    backfill_into(args, &dir.path().join("alerts.jsonl"))
}

/// A backfill writing its alerts to `alerts`.
fn backfill_into(args: &[&str], alerts: &Path) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out = command(args)
        .arg("--alerts")
        .arg(alerts)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("demarc runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(alerts).unwrap_or_default();
    let lines = text.lines().count();
    let alerts: BTreeMap<String, String> = text
        .lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).expect("alerts are JSON");
            let id = alert["alert_id"].as_str().expect("an alert id").to_owned();
            let rule = alert["rule_id"].as_str().unwrap_or_default().to_owned();
            (id, rule)
        })
        .collect();
    assert_eq!(lines, alerts.len(), "an alert written twice:\n{text}");
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no report; stderr:\n{stderr}"));
    Run {
        ok: out.status.success(),
        stderr,
        alerts,
        report,
    }
}

/// The bundled samples as objects under `samples/`.
fn samples() -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("testdata/samples");
    store::files_under(&dir)
        .expect("the samples")
        .into_iter()
        .map(|(key, path)| {
            (
                format!("samples/{key}"),
                std::fs::read(path).expect("a sample"),
            )
        })
        .collect()
}

fn local_samples() -> Run {
    let local = backfill(&[repo()
        .join("testdata/samples")
        .to_str()
        .expect("a UTF-8 path")]);
    assert!(local.ok, "{}", local.stderr);
    assert!(
        local.alerts.len() > 20,
        "the samples raise alerts: {}",
        local.stderr
    );
    local
}

#[test]
fn s3_backfill_through_throttling_raises_the_alerts_of_the_local_run() {
    let local = local_samples();
    let moto = store::moto().expect("moto's S3 server");
    store::s3_upload(&moto, "archive", &samples()).expect("upload");
    // Every third request is answered 503 SlowDown, as a throttled bucket does.
    let proxy = Proxy::start(
        moto.addr,
        Faults {
            slow_down_every: 3,
            ..Faults::default()
        },
    )
    .expect("proxy");
    let remote = backfill(&["s3://archive/samples", "--endpoint", &proxy.endpoint()]);
    assert!(remote.ok, "{}", remote.stderr);
    assert_eq!(remote.alerts, local.alerts);
    assert_eq!(remote.report["events_in"], local.report["events_in"]);
    assert_eq!(remote.report["skipped"], local.report["skipped"]);
    let slowed = proxy.slowed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(slowed > 5, "the proxy slowed {slowed} requests down");
}

#[test]
fn gcs_backfill_raises_the_alerts_of_the_local_run() {
    let local = local_samples();
    let gcs = store::fake_gcs().expect("fake-gcs-server");
    store::gcs_upload(&gcs, "archive", &samples()).expect("upload");
    let remote = backfill(&[
        "gs://archive/samples/",
        "--endpoint",
        &gcs.endpoint(),
        "--no-sign-request",
    ]);
    assert!(remote.ok, "{}", remote.stderr);
    assert_eq!(remote.alerts, local.alerts);
    assert_eq!(remote.report["events_in"], local.report["events_in"]);
}

const TRAIL: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01";

/// A CloudTrail log file as S3 holds it: gzip, `{"Records": […]}`.
fn log_file(events: &[(&str, &str)]) -> Vec<u8> {
    let records: Vec<serde_json::Value> = events
        .iter()
        .map(|(id, time)| {
            serde_json::json!({
                "eventVersion": "1.09", "eventID": id, "eventTime": time,
                "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
                "eventType": "AwsApiCall", "awsRegion": "us-east-1",
                "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.7",
                "userIdentity": {"type": "IAMUser", "accountId": "111122223333",
                    "arn": "arn:aws:iam::111122223333:user/mallory"},
                "requestParameters": {"name": "arn:aws:cloudtrail:us-east-1:111122223333:trail/main"},
                "responseElements": null
            })
        })
        .collect();
    let json = serde_json::json!({ "Records": records }).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

/// Days 4 to 8 of January; each day's file holds an event of that noon and one of the
/// evening before, delivered after midnight.
fn trail_days() -> Vec<(String, Vec<u8>)> {
    (4..=8)
        .map(|day| {
            let key = format!("{TRAIL}/{day:02}/111122223333_CloudTrail_us-east-1_202601{day:02}T1200Z_k{day}.json.gz");
            let noon = format!("2026-01-{day:02}T12:00:00Z");
            let evening = format!("2026-01-{:02}T23:58:00Z", day - 1);
            let events = [
                (format!("noon-{day}"), noon),
                (format!("evening-{}", day - 1), evening),
            ];
            let refs: Vec<(&str, &str)> = events.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            (key, log_file(&refs))
        })
        .collect()
}

#[test]
fn a_day_lists_its_days_only_and_a_refused_object_is_named() {
    let moto = store::moto().expect("moto's S3 server");
    store::s3_upload(&moto, "trail", &trail_days()).expect("upload");
    let proxy = Proxy::start(
        moto.addr,
        Faults {
            refuse: Some("20260105T1200Z".into()),
            ..Faults::default()
        },
    )
    .expect("proxy");
    let day = [
        "s3://trail/",
        "--since",
        "2026-01-05",
        "--until",
        "2026-01-06",
    ];
    // A dry run lists the day and the next, and reads nothing.
    let listing = command(&[&day[..], &["--endpoint", &moto.endpoint(), "--dry-run"]].concat())
        .output()
        .expect("demarc runs");
    let listed = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let keys: Vec<&str> = listed.lines().collect();
    assert_eq!(keys.len(), 2, "{listed}");
    assert!(keys[0].ends_with("20260105T1200Z_k5.json.gz"), "{listed}");
    assert!(keys[1].ends_with("20260106T1200Z_k6.json.gz"), "{listed}");
    let direct = backfill(&[&day[..], &["--endpoint", &moto.endpoint()]].concat());
    assert!(direct.ok, "{}", direct.stderr);
    // The noon of the 5th from its own folder, the evening of the 5th from the 6th's.
    assert_eq!(direct.report["events_in"], 2, "{}", direct.stderr);
    assert_eq!(direct.report["skipped"]["outside_time_range"], 2);
    assert_eq!(direct.alerts.len(), 2);

    let refused = backfill(&[&day[..], &["--endpoint", &proxy.endpoint()]].concat());
    assert!(!refused.ok, "a refused object fails the run");
    let key = format!(
        "s3://trail/{TRAIL}/05/111122223333_CloudTrail_us-east-1_20260105T1200Z_k5.json.gz"
    );
    assert!(refused.stderr.contains(&key), "{}", refused.stderr);
    assert!(
        refused.report["unreadable_files"].get(&key).is_some(),
        "{}",
        refused.report
    );
    // The rest was read: the evening of the 5th, in the 6th's file.
    assert_eq!(refused.alerts.len(), 1);

    // Only the days of the range (and the day after) were listed or read.
    let requests = proxy.requests();
    let touched = |day: &str| {
        requests.iter().any(|r| {
            r.contains(&format!("2026%2F01%2F{day}")) || r.contains(&format!("2026/01/{day}"))
        })
    };
    assert!(touched("05") && touched("06"), "{requests:#?}");
    for other in ["04", "07", "08"] {
        assert!(!touched(other), "day {other} was listed: {requests:#?}");
    }
    assert!(requests.len() < 15, "{requests:#?}");

    // With a checkpoint, the refused object is read again when the same command is
    // started again (after the store lets it through): the alerts of a run without
    // failures, none twice.
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join("day.checkpoint");
    let alerts = dir.path().join("alerts.jsonl");
    let checkpointed = [
        &day[..],
        &["--checkpoint", checkpoint.to_str().expect("UTF-8")],
    ]
    .concat();
    let first = backfill_into(
        &[&checkpointed[..], &["--endpoint", &proxy.endpoint()]].concat(),
        &alerts,
    );
    assert!(
        !first.ok && first.stderr.contains("run the same command again"),
        "{}",
        first.stderr
    );
    let again = backfill_into(
        &[&checkpointed[..], &["--endpoint", &moto.endpoint()]].concat(),
        &alerts,
    );
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(again.alerts, direct.alerts);
}

#[test]
fn a_bucket_url_without_a_bucket_is_refused_before_anything_is_read() {
    let run = Command::new(binary().expect("the demarc binary"))
        .args([
            "backfill",
            "s3:///AWSLogs",
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .output()
        .expect("demarc runs");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("names no bucket"), "{stderr}");
}

/// `SELECT count(*), count(DISTINCT provider || event_id) FROM events` of a lake.
fn lake_rows(lake: &str, endpoint: &str) -> (u64, u64) {
    query_pair(
        lake,
        &["--endpoint", endpoint],
        "SELECT count(*) AS n, count(DISTINCT provider || event_id) AS d FROM events",
    )
}

/// A query's one row of two numbers, over the lake at `lake` (a folder or a bucket
/// reached with the options `store`).
fn query_pair(lake: &str, store: &[&str], sql: &str) -> (u64, u64) {
    let rows = store::sql_rows(lake, store, sql).expect("demarc sql");
    let row: Vec<u64> = rows
        .first()
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    assert_eq!(row.len(), 2, "{rows:?}");
    (row[0], row[1])
}

#[test]
fn a_run_killed_halfway_resumes_to_the_alerts_and_lake_of_an_uninterrupted_one() {
    let mut generator = demarc_synth::CloudTrailGenerator::new(7).with_violation_rate(0.02);
    let objects: Vec<(String, Vec<u8>)> = (0..120)
        .map(|i| {
            let key = format!("AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/05/f{i:04}.json");
            (key, generator.records_file(150))
        })
        .collect();
    let moto = store::moto().expect("moto's S3 server");
    store::s3_upload(&moto, "big", &objects).expect("upload");
    let dir = tempfile::tempdir().expect("tempdir");

    let whole_lake = dir.path().join("whole-lake");
    let whole = backfill_into(
        &[
            "s3://big/",
            "--endpoint",
            &moto.endpoint(),
            "--lake",
            whole_lake.to_str().expect("UTF-8"),
        ],
        &dir.path().join("whole.jsonl"),
    );
    assert!(whole.ok, "{}", whole.stderr);
    assert!(whole.alerts.len() > 50, "{}", whole.stderr);
    let events = whole.report["events_in"].as_u64().expect("events");
    let whole_lake = whole_lake.to_str().expect("UTF-8");
    assert_eq!(lake_rows(whole_lake, &moto.endpoint()), (events, events));

    // A slow link, so that the run is still going when it is killed.
    let slow = Proxy::start(
        moto.addr,
        Faults {
            delay: Duration::from_millis(60),
            ..Faults::default()
        },
    )
    .expect("proxy");
    // The lake in a bucket: what the killed run wrote after its checkpoint is removed.
    store::s3_upload(&moto, "lakes", &[]).expect("the lake's bucket");
    let lake = "s3://lakes/resumed";
    let alerts = dir.path().join("alerts.jsonl");
    let checkpoint = dir.path().join("run.checkpoint");
    let endpoint = slow.endpoint();
    let args = [
        "s3://big/",
        "--endpoint",
        &endpoint,
        "--fetch-ahead",
        "2",
        "--threads",
        "1",
        // Small batches, so that checkpoints come every few objects.
        "--batch-rows",
        "300",
        "--lake",
        lake,
        "--checkpoint",
        checkpoint.to_str().expect("UTF-8"),
        "--checkpoint-every",
        "1s",
    ];
    let mut child = command(&args)
        .arg("--alerts")
        .arg(&alerts)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("demarc runs");
    let done = |path: &Path| -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["inputs_done"].as_u64())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while done(&checkpoint) < 30 {
        assert!(Instant::now() < deadline, "no checkpoint past 30 inputs");
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed between checkpoints: the outputs are ahead of the checkpoint.
    std::thread::sleep(Duration::from_millis(600));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let at_kill = done(&checkpoint);
    assert!(at_kill < 120, "killed after the end: {at_kill}");

    let resumed = backfill_into(&args, &alerts);
    assert!(resumed.ok, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("resuming: "), "{}", resumed.stderr);
    assert!(resumed.report["resumed_inputs"].as_u64().unwrap_or(0) >= at_kill);
    assert_eq!(resumed.alerts, whole.alerts);
    assert_eq!(lake_rows(lake, &moto.endpoint()), (events, events));

    // Done is done.
    let again = command(&args)
        .arg("--alerts")
        .arg(&alerts)
        .output()
        .expect("demarc runs");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && stderr.contains("nothing to do"),
        "{stderr}"
    );
}

#[test]
fn a_lake_in_a_bucket_holds_what_a_local_one_does_and_is_queried_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = repo().join("testdata/samples");
    let samples = samples.to_str().expect("UTF-8");
    let local_lake = dir.path().join("lake");
    let local_lake = local_lake.to_str().expect("UTF-8");
    let local = backfill(&[samples, "--lake", local_lake]);
    assert!(local.ok, "{}", local.stderr);

    let moto = store::moto().expect("moto's S3 server");
    store::s3_upload(&moto, "lakes", &[]).expect("the lake's bucket");
    let remote = backfill(&[
        samples,
        "--lake",
        "s3://lakes/audit",
        "--endpoint",
        &moto.endpoint(),
    ]);
    assert!(remote.ok, "{}", remote.stderr);
    assert_eq!(remote.alerts, local.alerts);

    let events = "SELECT count(*), count(DISTINCT event_id) FROM events";
    let alerts = "SELECT count(*), count(DISTINCT alert_id) FROM alerts";
    let hours = "SELECT count(DISTINCT date || hour), count(DISTINCT provider) FROM events";
    for sql in [events, alerts, hours] {
        let here = query_pair(local_lake, &[], sql);
        let there = query_pair("s3://lakes/audit", &["--endpoint", &moto.endpoint()], sql);
        assert_eq!(there, here, "{sql}");
        assert!(here.0 > 0, "{sql}");
    }
    // Only whole files, under the prefix.
    let (status, listing) =
        store::http(moto.addr, "GET", "/lakes?list-type=2", &[], b"").expect("list the bucket");
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(status, 200, "{listing}");
    assert!(
        listing.contains("<Key>audit/events/provider=aws/date="),
        "{listing}"
    );
    assert!(listing.contains("<Key>audit/alerts/date="), "{listing}");
    assert!(!listing.contains(".partial"), "{listing}");
}
