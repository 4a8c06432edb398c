//! Failure paths through the binary: an output that fails mid-run ends the streaming
//! job, non-zero and soon; the metrics endpoint outlives clients that connect and never
//! speak; a backfill whose rule fails on some events says so and ends non-zero.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{demarc, free_port, get, repo};

/// Waits up to `limit` for `child` to exit; kills it and fails the test if it does not.
fn exits_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("{what}: still running after {limit:?}\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// `demarc demo | head -2`, many times: the pipeline fails on its closed stdout, at
/// whatever point of the group's first rebalance that falls, and the process must end
/// non-zero within seconds each time.
#[test]
fn closed_stdout_ends_the_process_non_zero_within_seconds() {
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demarc"))
            // Slow enough that alerts are still coming when stdout closes.
            .args(["demo", "--rate", "100"])
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("demarc runs");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Round 0 closes before the first alert; the others after some.
        for _ in 0..(round % 3) {
            lines.next().expect("an alert line").expect("text");
        }
        drop(lines);
        let status = exits_within(&mut child, Duration::from_secs(30), "closed stdout");
        let stderr = stderr_of(&mut child);
        assert!(
            !status.success(),
            "round {round}: exited {status}\n{stderr}"
        );
        assert!(
            stderr.contains("error:") && stderr.contains("pipe"),
            "round {round}: {stderr}"
        );
    }
}

/// 300 connections that never send a request, from a process allowed 256 open files:
/// without header timeouts and a cap on connections the endpoint runs out of file
/// descriptors and never answers again.
#[test]
fn metrics_answer_while_many_connections_hang_half_open() {
    let port = free_port();
    let mut child = Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg(env!("CARGO_BIN_EXE_demarc"))
        .args(["demo", "--follow", "--rate", "2000", "--metrics"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit runs demarc");
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/metrics").is_none() {
        assert!(
            Instant::now() < deadline,
            "the metrics endpoint never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut idle = Vec::new();
    for _ in 0..300 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() >= 200, "only {} connections opened", idle.len());
    // Held open the whole time; the endpoint must drop them and answer others.
    let deadline = Instant::now() + Duration::from_secs(40);
    let answer = loop {
        if let Some(text) = get(port, "/metrics")
            && text.contains("demarc_messages_total")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics did not answer within 40 s while {} connections hung",
            idle.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"));
    drop(idle);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = exits_within(&mut child, Duration::from_secs(60), "SIGTERM");
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "{status}: {stderr}");
}

/// `demarc backfill` with a rule that fails on every batch (it plans, but cannot cast a
/// region to a number): the other rules' alerts are written, and the failure is in the
/// summary, the report and the dead letters; the run ends non-zero, so that a script
/// notices the alerts it is missing.
#[test]
fn a_backfill_whose_rule_fails_writes_the_rest_reports_it_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let stopped = "aws-cloudtrail-logging-stopped.sql";
    std::fs::copy(repo().join("queries").join(stopped), rules.join(stopped)).expect("copy rule");
    std::fs::write(
        rules.join("t-casts.sql"),
        "-- id: t-casts\n-- title: casts regions\n-- severity: high\n\
         -- category: logging-disabled\n-- srm-layer: identity\n-- service-models: iaas\n\
         -- attack: T1562\n-- dedup: event_id\n-- summary: t-casts on {event_id}\n\
         SELECT event_id FROM events WHERE CAST(region AS INT) > 1\n",
    )
    .expect("write rule");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let output = demarc(&[
        "backfill",
        "testdata/samples/aws-stratus-red-team",
        "--rules",
        &path("rules"),
        "--alerts",
        &path("alerts.jsonl"),
        "--report",
        &path("report.json"),
        "--dead-letter",
        &path("dead.jsonl"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("rule t-casts failed on"), "{stderr}");
    assert!(
        stderr.contains("1 rule(s) failed on") && stderr.contains("(t-casts)"),
        "{stderr}"
    );

    let alerts = std::fs::read_to_string(dir.path().join("alerts.jsonl")).expect("alerts");
    assert!(
        alerts
            .lines()
            .any(|l| l.contains("aws-cloudtrail-logging-stopped")),
        "the other rule alerted: {alerts}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON");
    let failed = report["rule_failures"]["t-casts"].as_u64().unwrap_or(0);
    assert!(failed >= 1, "{report}");
    assert_eq!(
        report["rule_failures"].as_object().map(|o| o.len()),
        Some(1)
    );
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|l: &serde_json::Value| l["reason"] == "rule_failed")
        .collect();
    assert_eq!(letters.len() as u64, failed, "{dead}");
    assert!(letters.iter().all(|l| l["rule"] == "t-casts"), "{dead}");
}
