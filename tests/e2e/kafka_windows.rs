//! Windowed rules against Apache Kafka, when what their windows held is lost:
//!
//! - `demarc run` consumes the first failures of a password-guessing sequence, is
//!   SIGKILLed, and the rest of the sequence arrives while it is down. Restarted, it
//!   reads the window's span back (from its lake when it has one, otherwise from Kafka),
//!   and the success still alerts, naming every event.
//! - Two members share the partitions; the one that consumed the first failures leaves
//!   the group, and the other, assigned its partition, reads the span again from Kafka:
//!   the success alerts there.

mod common;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use common::{TOPIC, broker, one_at_a_time, settings, wait_consumed, wait_member};
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
    wait_member(member, what, Duration::from_secs(120), done);
}

/// The offsets committed by `group`, summed over the partitions.
fn committed(kafka: &Kafka, group: &str) -> i64 {
    kafka
        .committed(group, TOPIC, common::PARTITIONS)
        .expect("committed offsets")
        .values()
        .filter(|offset| **offset >= 0)
        .sum()
}

/// Waits until `group` has committed `count` messages.
fn wait_committed(kafka: &Kafka, group: &str, count: i64, member: &Member) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(kafka, group) < count {
        assert!(
            Instant::now() < deadline,
            "not committed:\n{}",
            member.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The one brute-force alert `member` raised, checked to name eleven events.
fn one_alert_naming_eleven(member: &mut Member) {
    wait_for(member, "the alert", |m| !brute_force_alerts(m).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    let alerts = brute_force_alerts(member);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let ids = alerts[0]["event_ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 11, "{ids:?}");
}

fn brute_force_alerts(member: &Member) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&member.alerts)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["rule_id"] == RULE)
        .collect()
}

/// Six failures consumed and committed, a SIGKILL, the rest of the sequence while the
/// member is down, a restart: one alert naming the eleven events.
fn sequence_across_a_sigkill(lake: bool) {
    let _one = one_at_a_time();
    let kafka = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let group = "demarc-e2e-windows";
    let mut member_settings = settings(&kafka, group, None);
    if lake {
        // The lake flushes before the commit: committed events are in it.
        member_settings.extra = format!(
            "[lake]\npath = \"{}\"\nflush_seconds = 1\n",
            dir.path().join("lake").display()
        );
    }
    let mut member = Member::start(dir.path(), "windows", member_settings).expect("member");
    for i in 0..6 {
        send(&kafka, &format!("kill-f{i}"), 12 - i, false);
    }
    wait_consumed(&mut member);
    wait_for(&mut member, "the six failures", |m| m.messages() >= Some(6));
    wait_committed(&kafka, group, 6, &member);
    member.kill().expect("SIGKILL");

    for i in 6..10 {
        send(&kafka, &format!("kill-f{i}"), 12 - i, false);
    }
    send(&kafka, "kill-ok", 1, true);
    member.restart().expect("restart");
    one_alert_naming_eleven(&mut member);
    let log = member.log_text();
    if lake {
        assert!(log.contains("history read from the lake"), "{log}");
        assert!(
            !log.contains("read the span their windows look back over again"),
            "{log}"
        );
    } else {
        assert!(
            log.contains("read the span their windows look back over again"),
            "{log}"
        );
    }
    let status = member.terminate().expect("terminate");
    assert!(status.success(), "{}", member.log_text());
}

#[test]
fn a_sequence_cut_by_a_sigkill_alerts_after_the_restart_from_the_lake() {
    sequence_across_a_sigkill(true);
}

#[test]
fn a_sequence_cut_by_a_sigkill_alerts_after_the_restart_without_a_lake() {
    sequence_across_a_sigkill(false);
}

#[test]
fn a_sequence_whose_partition_moves_to_another_member_alerts_there() {
    let _one = one_at_a_time();
    let kafka = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let group = "demarc-e2e-windows-move";
    // Both in the group, each with its share of the partitions: b's arrival takes
    // some of a's.
    let assigned = |m: &mut Member| m.log_text().matches("partitions assigned").count();
    let mut a = Member::start(dir.path(), "a", settings(&kafka, group, None)).expect("member");
    wait_for(&mut a, "a's partitions", |m| assigned(m) >= 1);
    let mut b = Member::start(dir.path(), "b", settings(&kafka, group, None)).expect("member");
    wait_for(&mut b, "b's partitions", |m| assigned(m) >= 1);
    wait_for(&mut a, "a's share", |m| assigned(m) >= 2);
    let mut members = vec![a, b];
    for i in 0..6 {
        send(&kafka, &format!("move-f{i}"), 12 - i, false);
    }
    wait_committed(&kafka, group, 6, &members[0]);
    // The member that consumed them leaves the group; the other is assigned their
    // partition.
    let owner = members
        .iter()
        .position(|m| m.messages() >= Some(6))
        .expect("a member consumed the six failures");
    let status = members[owner].terminate().expect("terminate");
    assert!(status.success(), "{}", members[owner].log_text());
    let mut other = members.swap_remove(1 - owner);
    wait_for(&mut other, "the partition moved", |m| {
        m.log_text()
            .contains("read the span their windows look back over again")
    });
    for i in 6..10 {
        send(&kafka, &format!("move-f{i}"), 12 - i, false);
    }
    send(&kafka, "move-ok", 1, true);
    one_alert_naming_eleven(&mut other);
    let status = other.terminate().expect("terminate");
    assert!(status.success(), "{}", other.log_text());
}
