//! Faults against Apache Kafka itself: a missing topic, a wrong password, a full disk,
//! a fenced member. Each must end `demarc run` soon, non-zero, saying why, instead of
//! a process that looks healthy and consumes nothing (or hangs).
//!
//! The broker is started by the harness, as in `kafka_delivery.rs`; one test at a time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{DEAD_LETTER_TOPIC, RATE, TOPIC, broker, one_at_a_time, settings, wait_consumed};
use demarc_tests::demarc::Member;
use demarc_tests::kafka::Kafka;
use demarc_tests::produce::{SteadyProducer, events};

/// A configuration for `topic`, alerts to a file.
fn config(kafka: &Kafka, dir: &std::path::Path, name: &str, topic: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"demarc-e2e-{name}\"\ntopics = [\"{topic}\"]\n\
             [dead_letter]\ntopic = \"{DEAD_LETTER_TOPIC}\"\n\
             [alerts]\nstdout = false\nfile = \"{}\"\n[metrics]\nlisten = \"off\"\n",
            kafka.bootstrap,
            dir.join(format!("{name}-alerts.jsonl")).display()
        ),
    )
    .expect("write config");
    path
}

fn demarc(args: &[&str], config: &std::path::Path) -> std::process::Command {
    let mut command =
        std::process::Command::new(demarc_tests::demarc::binary().expect("demarc binary"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null());
    command
}

#[test]
fn a_missing_topic_fails_validate_connect_and_ends_run_with_the_reason() {
    let _serial = one_at_a_time();
    let kafka = broker();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = config(&kafka, dir.path(), "good", TOPIC);
    let out = demarc(&["validate", "--connect"], &good)
        .output()
        .expect("validate runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let missing = config(&kafka, dir.path(), "missing", "no-such-topic");
    let out = demarc(&["validate", "--connect"], &missing)
        .output()
        .expect("validate runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("the topic `no-such-topic` does not exist"),
        "{stderr}"
    );

    // `demarc run` on it: gone within a minute, saying why, not consuming nothing.
    let child = demarc(&["run"], &missing)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demarc run starts");
    let (status, stderr) = exit_of(child, Duration::from_secs(60), "run on a missing topic");
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("the topic `no-such-topic` does not exist: create it"),
        "{stderr}"
    );
}

/// A configuration for the broker's SASL/PLAIN listener, the password from the
/// environment.
fn sasl_config(kafka: &Kafka, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("sasl.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"demarc-e2e-sasl\"\ntopics = [\"{TOPIC}\"]\n\
             [kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
             \"sasl.mechanism\" = \"PLAIN\"\n\"sasl.username\" = \"{}\"\n\
             \"sasl.password\" = {{ env = \"DEMARC_KAFKA_PASSWORD\" }}\n\
             [dead_letter]\ntopic = \"{DEAD_LETTER_TOPIC}\"\n\
             [alerts]\nstdout = false\nfile = \"{}\"\n[metrics]\nlisten = \"off\"\n",
            kafka.sasl_bootstrap,
            demarc_tests::kafka::SASL_USER,
            dir.join("sasl-alerts.jsonl").display()
        ),
    )
    .expect("write config");
    path
}

/// Waits up to `limit` for `child` to exit: its status and standard error.
fn exit_of(
    mut child: std::process::Child,
    limit: Duration,
    what: &str,
) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (status, stderr)
}

#[test]
fn a_wrong_password_ends_the_process_with_the_reason_and_the_right_one_connects() {
    let _serial = one_at_a_time();
    let kafka = broker();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = sasl_config(&kafka, dir.path());

    let out = demarc(&["validate", "--connect"], &config)
        .env("DEMARC_KAFKA_PASSWORD", demarc_tests::kafka::SASL_PASSWORD)
        .output()
        .expect("validate runs");
    assert!(
        out.status.success(),
        "the right password is refused:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let child = demarc(&["run"], &config)
        .env("DEMARC_KAFKA_PASSWORD", "not-the-password")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demarc run starts");
    let (status, stderr) = exit_of(child, Duration::from_secs(90), "run with a wrong password");
    assert!(!status.success(), "{status}: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error:") && last.contains("Invalid username or password"),
        "the last line does not say the password was refused:\n{stderr}"
    );
}

/// A member whose alert file is on a full disk, joining a group mid-stream (so that a
/// rebalance may be pending when it fails), must exit non-zero within seconds, each
/// time; and a member fenced by another with its static id must exit with the reason
/// instead of looking healthy.
#[test]
fn a_full_disk_and_a_fenced_member_end_the_process_within_seconds() {
    let _serial = one_at_a_time();
    let kafka = broker();
    let group = "demarc-e2e-faults";
    let dir = tempfile::tempdir().expect("tempdir");
    let events = Arc::new(events(90_000, 0.01, 9));
    let producer = SteadyProducer::start(kafka.client(), TOPIC, Arc::clone(&events), RATE);
    let mut a = Member::start(dir.path(), "a", settings(&kafka, group, Some("demarc-a")))
        .expect("member a");
    wait_consumed(&mut a);

    // C's alert file cannot be written: writes fail with ENOSPC, syncs with EINVAL.
    std::os::unix::fs::symlink("/dev/full", dir.path().join("alerts-c.jsonl")).expect("symlink");
    let mut c = Member::start(dir.path(), "c", settings(&kafka, group, None)).expect("member c");
    for round in 1..=4 {
        let started = Instant::now();
        let status = c
            .wait_exit(Duration::from_secs(60))
            .expect("wait")
            .unwrap_or_else(|| {
                panic!(
                    "round {round}: C still runs 60 s after its disk filled:\n{}",
                    c.log_text()
                )
            });
        assert!(!status.success(), "round {round}: C exited {status}");
        let log = c.log_text();
        assert!(
            log.lines()
                .any(|l| l.starts_with("error: cannot") && l.contains("alerts-c.jsonl")),
            "round {round}: the log does not say why:\n{log}"
        );
        eprintln!(
            "round {round}: C exited {status} after {:?}",
            started.elapsed()
        );
        if round < 4 {
            c.restart().expect("restart c");
        }
    }
    assert!(a.running(), "A went down with C:\n{}", a.log_text());

    // D takes A's static id: the broker fences A, which must stop and say so.
    let mut d = Member::start(dir.path(), "d", settings(&kafka, group, Some("demarc-a")))
        .expect("member d");
    let status = a
        .wait_exit(Duration::from_secs(60))
        .expect("wait")
        .unwrap_or_else(|| panic!("A still runs 60 s after it was fenced:\n{}", a.log_text()));
    assert!(!status.success(), "A exited {status}");
    assert!(
        a.log_text().to_lowercase().contains("fenced"),
        "A's log does not say it was fenced:\n{}",
        a.log_text()
    );
    wait_consumed(&mut d);
    producer.finish().expect("every event acknowledged");
    let status = d.terminate().expect("terminate d");
    assert!(status.success(), "d exited {status}:\n{}", d.log_text());
}
