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
