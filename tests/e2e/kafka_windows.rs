//! A windowed rule across a SIGKILL, against Apache Kafka: `demarc run` with a lake
//! consumes the first failures of a password-guessing sequence, is killed, and the
//! rest of the sequence arrives while it is down. Restarted, it reads the window's span
//! back from the lake, and the success still alerts, naming every event.

mod common;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use common::{TOPIC, broker, one_at_a_time, settings, wait_consumed};
use demarc_tests::demarc::Member;
use demarc_tests::kafka::Kafka;
use demarc_tests::produce::produce_one;

const RULE: &str = "aws-console-brute-force-then-success";

/// A console sign-in `minutes_ago` before now, failed or not.
fn login(id: &str, minutes_ago: i64, ok: bool) -> String {
    let time = (Utc::now() - chrono::Duration::minutes(minutes_ago))
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut identity = serde_json::json!({
        "type": "IAMUser", "principalId": "AIDAQEXAMPLEALICE001",
        "accountId": "111122223333", "userName": "alice"
    });
    if ok {
        identity["arn"] = "arn:aws:iam::111122223333:user/alice".into();
    }
    let mut event = serde_json::json!({
        "eventVersion": "1.08", "userIdentity": identity, "eventTime": time,
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": "Mozilla/5.0", "requestParameters": null,
        "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }},
        "additionalEventData": {"MFAUsed": "No"},
        "eventID": id, "eventType": "AwsConsoleSignIn", "recipientAccountId": "111122223333"
    });
    if !ok {
        event["errorMessage"] = "Failed authentication".into();
    }
    event.to_string()
}

fn send(kafka: &Kafka, id: &str, minutes_ago: i64, ok: bool) {
    produce_one(
        kafka.client(),
        TOPIC,
        "alice",
        login(id, minutes_ago, ok).as_bytes(),
    )
    .expect("produced");
}

fn wait_for(member: &mut Member, what: &str, done: impl Fn(&mut Member) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(member) {
        assert!(
            member.running(),
            "the member exited:\n{}",
            member.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            member.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn brute_force_alerts(member: &Member) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&member.alerts)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["rule_id"] == RULE)
        .collect()
}

#[test]
fn a_sequence_cut_by_a_sigkill_still_alerts_after_the_restart() {
    let _one = one_at_a_time();
    let kafka = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    let mut member_settings = settings(&kafka, "demarc-e2e-windows", None);
    member_settings.extra = format!("[lake]\npath = \"{}\"\nflush_seconds = 1\n", lake.display());
    let mut member = Member::start(dir.path(), "windows", member_settings).expect("member");

    // Six failures, consumed, in the lake and committed (the lake flushes before the
    // commit), then SIGKILL.
    for i in 0..6 {
        send(&kafka, &format!("kill-f{i}"), 12 - i, false);
    }
    wait_consumed(&mut member);
    wait_for(&mut member, "the six failures", |m| m.messages() >= Some(6));
    let committed = |kafka: &Kafka| -> i64 {
        kafka
            .committed("demarc-e2e-windows", TOPIC, common::PARTITIONS)
            .expect("committed offsets")
            .values()
            .filter(|offset| **offset >= 0)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(&kafka) < 6 {
        assert!(
            Instant::now() < deadline,
            "not committed:\n{}",
            member.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    member.kill().expect("SIGKILL");

    // The rest of the sequence while it is down: four failures and the success.
    for i in 6..10 {
        send(&kafka, &format!("kill-f{i}"), 12 - i, false);
    }
    send(&kafka, "kill-ok", 1, true);
    member.restart().expect("restart");
    wait_for(&mut member, "the alert", |m| {
        !brute_force_alerts(m).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let alerts = brute_force_alerts(&member);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let ids = alerts[0]["event_ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 11, "{ids:?}");
    assert!(member.log_text().contains("history read from the lake"));
    let status = member.terminate().expect("terminate");
    assert!(status.success(), "{}", member.log_text());
}
