//! `demarc validate`, `demarc demo` and the metrics endpoint, through the binary.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{demarc, free_port, get, repo};

fn validate(path: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["validate", "--config", path])
        .current_dir(repo())
        .env("DEMARC_KAFKA_USERNAME", "demarc")
        .env("DEMARC_KAFKA_PASSWORD", "not-a-real-password")
        .env("POD_NAME", "demarc-0")
        .env(
            "DEMARC_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/x",
        )
        .env("PAGERDUTY_ROUTING_KEY", "not-a-real-key")
        .output()
        .expect("demarc runs")
}

#[test]
fn example_configs_validate() {
    for path in [
        "deploy/demarc.toml",
        "deploy/demarc-sasl.toml",
        "deploy/demarc-routing.toml",
        "deploy/k8s/demarc.toml",
    ] {
        let out = validate(path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("valid"), "{path}: {stdout}");
    }
}

#[test]
fn bad_configs_fail_with_file_line_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[kafka]\nbrokers = \"k:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n[batch]\nmax_wait_ms = \"fast\"\n",
            ":6:",
            "max_wait_ms",
        ),
        (
            "[kafka]\nbrokers = \"k:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n[kafka.properties]\n\"fetch.wait.max.mss\" = 10\n",
            ":6: librdkafka refuses `fetch.wait.max.mss`",
            "No such configuration property",
        ),
        // Fine for the consumer, refused by the idempotent dead-letter producer.
        (
            "[kafka]\nbrokers = \"k:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n[kafka.properties]\n\"client.id\" = \"x\"\n\"max.in.flight.requests.per.connection\" = 10\n",
            ":7: [kafka.properties] `max.in.flight.requests.per.connection`",
            "dead-letter producer",
        ),
        (
            "[kafka]\nbrokers = \"k:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n[kafka.properties]\n\"ssl.key.password\" = \"x\"\n",
            ":6:",
            "env = ",
        ),
        (
            "[kafka]\nbrokers = \"k:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n[rules]\nallow_refresh_seconds = 0\n",
            ":6:",
            "rules.allow_refresh_seconds must be between 1 and 3600",
        ),
    ];
    for (n, (text, place, fix)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{n}.toml"));
        std::fs::write(&path, text).expect("write");
        let out = demarc(&["validate", "--config", path.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {n} accepted");
        assert!(
            stderr.contains(&format!("bad{n}.toml")),
            "case {n}: {stderr}"
        );
        assert!(stderr.contains(place), "case {n}: {stderr}");
        assert!(stderr.contains(fix), "case {n}: {stderr}");
    }
}

#[test]
fn demo_streams_the_samples_into_alerts() {
    let out = demarc(&["demo", "--rate", "2000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Alerts the bundled samples hold (see testdata/samples/README.md), as they fire.
    for rule in [
        "aws-security-group-admin-port-open",
        "aws-cloudtrail-logging-stopped",
        "gcp-firewall-admin-port-open",
        "gcp-iam-public-binding",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ALERT") && l.contains(rule)),
            "no {rule} alert:\n{stdout}"
        );
    }
    assert!(stderr.contains("latency p50"), "{stderr}");
    assert!(stderr.contains(" 0 rejected"), "{stderr}");
}

#[test]
fn metrics_and_health_are_served_and_sigterm_exits_cleanly() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["demo", "--follow", "--rate", "2000", "--metrics"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demarc runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        assert!(Instant::now() < deadline, "no alert counted in /metrics");
        if let Some(text) = get(port, "/metrics")
            && text.contains("demarc_alerts_total{rule=\"gcp-iam-public-binding\"}")
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(metrics.starts_with("HTTP/1.0 200") || metrics.starts_with("HTTP/1.1 200"));
    for name in [
        "demarc_messages_total",
        "demarc_events_total",
        "demarc_alert_latency_seconds_bucket",
        "demarc_alert_processing_seconds_bucket",
        "demarc_batch_records_count",
        "demarc_commit_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    // Without a lake, most sample events match no rule and get no row.
    let unmatched: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("demarc_events_unmatched_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no demarc_events_unmatched_total:\n{metrics}"));
    assert!(unmatched > 0.0, "{metrics}");
    // The alert counted above was timed, from the producer and from its receipt.
    for histogram in [
        "demarc_alert_latency_seconds",
        "demarc_alert_processing_seconds",
    ] {
        let count = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{histogram}_count ")))
            .and_then(|n| n.trim().parse::<f64>().ok());
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "{histogram} observed nothing:\n{metrics}"
        );
    }
    let health = get(port, "/health").expect("health");
    assert!(
        health.contains(" 200 ") && health.ends_with("ok\n"),
        "{health}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("exits");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
}

/// A public bucket policy on `bucket`, as CloudTrail logs it.
fn public_policy_event(id: &str, bucket: &str) -> String {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                         "accountId": "111122223333", "userName": "alice"},
        "eventTime": "2026-11-30T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {
            "bucketName": bucket,
            "bucketPolicy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*")}]},
            "policy": ""
        },
        "responseElements": null,
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    })
    .to_string()
}

/// The value of one sample line of the metrics text, 0 when absent.
fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls `/metrics` until `done` holds of it.
fn wait_for_metrics(port: u16, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(text) = get(port, "/metrics")
            && done(&text)
        {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `demarc demo --follow` with `args`, its metrics on a free port: the child, the mock
/// cluster's address, the port, and a thread reading the rest of its stderr.
fn follow_demo(
    args: &[&str],
    log: &str,
) -> (
    std::process::Child,
    String,
    u16,
    std::thread::JoinHandle<String>,
) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["demo", "--follow", "--rate", "5000"])
        .args(args)
        .arg("--metrics")
        .arg(format!("127.0.0.1:{port}"))
        .env("DEMARC_LOG", log)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demarc runs");
    // The broker's address, from the first line.
    let mut stderr = child.stderr.take().expect("stderr");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while stderr.read(&mut byte).expect("read stderr") == 1 && byte[0] != b'\n' {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let brokers = head
        .split("mock Kafka cluster at ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no broker address in: {head}"))
        .to_owned();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    (child, brokers, port, reader)
}

/// Waits until the demo's samples are all counted and nothing moves; its metrics then.
fn settled(port: u16) -> String {
    let events = "demarc_events_total ";
    let mut last = -1.0;
    loop {
        let text = wait_for_metrics(port, "the samples", |t| metric(t, events) > 0.0);
        let now = metric(&text, events);
        if now == last {
            return text;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[test]
fn a_running_job_applies_changed_allow_tables_without_restart() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let dir = tempfile::tempdir().expect("temp dir");
    let table = dir.path().join("public_buckets.csv");
    std::fs::write(&table, "bucket,owner,reason,expires\n").expect("write table");
    let allow = dir.path().to_str().expect("UTF-8 path");
    let (mut child, brokers, port, reader) = follow_demo(
        &["--allow-refresh-seconds", "1", "--allow", allow],
        "warn,demarc_pipeline::allow=info",
    );
    let rule = "demarc_alerts_total{rule=\"aws-s3-bucket-policy-public\"} ";
    let before = settled(port);
    let alerts_before = metric(&before, rule);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let send = |id: &str, bucket: &str| {
        let payload = public_policy_event(id, bucket);
        producer
            .send(BaseRecord::to("audit-logs").key("k").payload(&payload))
            .map_err(|(e, _)| e)
            .expect("queued");
        producer.flush(Duration::from_secs(10)).expect("flushed");
    };

    // Not listed: alerts.
    send("allow-cli-1", "listed-later");
    wait_for_metrics(port, "the first alert", |t| {
        metric(t, rule) >= alerts_before + 1.0
    });

    // Listed while running: the next event on it does not alert; an unlisted bucket
    // behind it still does.
    std::fs::write(
        &table,
        "bucket,owner,reason,expires\nlisted-later,web@example.com,public website,2999-01-01\n",
    )
    .expect("rewrite table");
    wait_for_metrics(port, "the table to be re-read", |t| {
        metric(
            t,
            "demarc_allow_rows{table=\"public_buckets\",state=\"active\"} ",
        ) == 1.0
    });
    send("allow-cli-2", "listed-later");
    send("allow-cli-3", "not-listed");
    let after = wait_for_metrics(port, "the unlisted bucket's alert", |t| {
        metric(t, rule) >= alerts_before + 2.0
    });
    std::thread::sleep(Duration::from_millis(500));
    let settled = get(port, "/metrics").unwrap_or(after);
    assert_eq!(metric(&settled, rule), alerts_before + 2.0, "{settled}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(child.wait().expect("exits").success());
    let log = reader.join().expect("stderr read");
    assert!(log.contains("allow table re-read"), "{log}");
}

#[test]
fn a_sequence_split_over_batches_and_out_of_order_alerts_once_while_streaming() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let (mut child, brokers, port, reader) = follow_demo(&[], "warn");
    let rule = "demarc_alerts_total{rule=\"aws-console-brute-force-then-success\"} ";
    let before = metric(&settled(port), rule);
    let sequence: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(
            "testdata/rules/aws-console-brute-force-then-success/positive/ten-failures-then-success.json",
        ))
        .expect("fixture"),
    )
    .expect("JSON");
    let records = sequence["Records"].as_array().expect("records");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    // The success and the last five failures, then the first three, then two: three
    // batches, the earliest failures ten minutes behind the success.
    for (n, part) in [&[5, 6, 7, 8, 9, 10][..], &[0, 1, 2], &[3, 4]]
        .into_iter()
        .enumerate()
    {
        for i in part {
            let payload = records[*i].to_string();
            producer
                .send(BaseRecord::to("audit-logs").key("k").payload(&payload))
                .map_err(|(e, _)| e)
                .expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
        let held = "demarc_window_events{rule=\"aws-console-brute-force-then-success\"} ";
        let expected = [6.0, 9.0, 11.0][n];
        wait_for_metrics(port, "the window to take the part", |t| {
            metric(t, held) >= expected
        });
        if n < 2 {
            assert_eq!(
                metric(&get(port, "/metrics").unwrap_or_default(), rule),
                before
            );
        }
    }
    wait_for_metrics(port, "the alert", |t| metric(t, rule) >= before + 1.0);
    std::thread::sleep(Duration::from_millis(1000));
    let after = get(port, "/metrics").unwrap_or_default();
    assert_eq!(metric(&after, rule), before + 1.0, "{after}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(child.wait().expect("exits").success());
    drop(reader.join());
}
