//! What the end-to-end tests against Apache Kafka share: the broker and its topics,
//! one test at a time, and the members' settings.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use demarc_tests::demarc::{Member, MemberSettings};
use demarc_tests::kafka::Kafka;

pub const TOPIC: &str = "cloudtrail";
pub const PARTITIONS: i32 = 6;
pub const DEAD_LETTER_TOPIC: &str = "demarc-dead-letter";
/// Events per second: with the producer's linger, several records per batch.
pub const RATE: u32 = 1_500;

/// One test at a time (see the module doc); a failed test does not block the next.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn broker() -> Kafka {
    let kafka = Kafka::start().unwrap_or_else(|e| panic!("Apache Kafka did not start: {e}"));
    // Messages of up to 4 MB; the dead-letter topic keeps the broker's 1 MB default.
    kafka
        .create_topic_with(TOPIC, PARTITIONS, &[("max.message.bytes", "4000000")])
        .expect("topic");
    kafka
        .create_topic(DEAD_LETTER_TOPIC, 1)
        .expect("dead-letter topic");
    kafka
}

pub fn settings(kafka: &Kafka, group: &str, instance: Option<&str>) -> MemberSettings {
    MemberSettings {
        brokers: kafka.bootstrap.clone(),
        group: group.to_owned(),
        topic: TOPIC.to_owned(),
        instance: instance.map(str::to_owned),
        batch_records: 500,
        batch_wait_ms: 50,
        workers: 1,
        extra: String::new(),
        env: Vec::new(),
    }
}

/// Waits up to `limit` until `done(member)`; the test fails, showing the member's log,
/// if the member exits first or the time is up.
pub fn wait_member(
    member: &mut Member,
    what: &str,
    limit: Duration,
    done: impl Fn(&mut Member) -> bool,
) {
    let deadline = Instant::now() + limit;
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
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `member` has consumed at least one message since it (re)started.
pub fn wait_consumed(member: &mut Member) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if member.messages().is_some_and(|n| n > 0) {
            return;
        }
        assert!(
            member.running(),
            "member {} exited:\n{}",
            member.name,
            member.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "member {} consumed nothing in 90 s:\n{}",
            member.name,
            member.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
