//! The delivery contract against Apache Kafka itself: `demarc run` processes in one
//! consumer group, fed by a producer that batches as real ones do, killed and
//! restarted mid-stream. Every alert that `demarc backfill` finds in the events the
//! broker acknowledged must be delivered, none outside them; and an offset is committed
//! only once the alerts of everything below it are durable.
//!
//! The broker is started by the harness (`demarc_tests::kafka`); when it cannot start
//! these tests fail, they never skip. They run one at a time: each starts its own broker
//! and demarc processes, and two at once on a two-core machine would test the machine.
//!
//! SIGKILL keeps the page cache, so "durable before commit" here means "written before
//! commit": a missing fsync cannot fail these tests (that needs a power cut).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use demarc_tests::demarc::{Expected, Member, MemberSettings, reference_alerts};
use demarc_tests::kafka::Kafka;
use demarc_tests::produce::{Place, Produced, SteadyProducer, events};

const TOPIC: &str = "cloudtrail";
const PARTITIONS: i32 = 6;
const DEAD_LETTER_TOPIC: &str = "demarc-dead-letter";
/// Events per second: with the producer's linger, several records per batch.
const RATE: u32 = 1_500;

/// One test at a time (see the module doc); a failed test does not block the next.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn broker() -> Kafka {
    let kafka = Kafka::start().unwrap_or_else(|e| panic!("Apache Kafka did not start: {e}"));
    kafka.create_topic(TOPIC, PARTITIONS).expect("topic");
    kafka
        .create_topic(DEAD_LETTER_TOPIC, 1)
        .expect("dead-letter topic");
    kafka
}

fn settings(kafka: &Kafka, group: &str, instance: Option<&str>) -> MemberSettings {
    MemberSettings {
        brokers: kafka.bootstrap.clone(),
        group: group.to_owned(),
        topic: TOPIC.to_owned(),
        instance: instance.map(str::to_owned),
        batch_records: 500,
        batch_wait_ms: 50,
        workers: 1,
    }
}

/// Waits until `member` has consumed at least one message since it (re)started.
fn wait_consumed(member: &mut Member) {
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

/// The union of the members' alert files.
fn delivered(members: &[&Member]) -> BTreeSet<String> {
    members.iter().flat_map(|m| m.alert_ids()).collect()
}

/// The reference alerts of the acknowledged events, with where each event went.
fn expected(
    events: &[(String, String)],
    produced: &Produced,
    dir: &std::path::Path,
) -> (BTreeMap<String, Expected>, Vec<Place>) {
    // Batches of several records, so that restarts resume from commits inside them.
    assert!(
        produced.records_per_batch >= 3.0,
        "the producer sent {:.1} records per batch: too few for commits to fall inside batches",
        produced.records_per_batch
    );
    let placed = &produced.placed;
    let values: Vec<&str> = placed.iter().map(|(i, _)| events[*i].1.as_str()).collect();
    let places = placed.iter().map(|(_, p)| *p).collect();
    let expected = reference_alerts(&values, dir).expect("reference alerts");
    assert!(
        expected.len() >= 20,
        "only {} reference alerts: too few to test anything",
        expected.len()
    );
    (expected, places)
}

/// Waits until every expected alert is in one of the members' files; what is missing
/// after the deadline, with where its events were, the commits and the logs.
fn lost(
    kafka: &Kafka,
    group: &str,
    members: &[&Member],
    expected: &BTreeMap<String, Expected>,
    places: &[Place],
) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let seen = delivered(members);
        let missing: Vec<String> = expected
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            return None;
        }
        if Instant::now() > deadline {
            return Some(diagnosis(kafka, group, members, &missing, expected, places));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// No member delivered an alert the reference does not have.
fn assert_only_expected(members: &[&Member], expected: &BTreeMap<String, Expected>) {
    let all = delivered(members);
    let unexpected: Vec<&String> = all
        .iter()
        .filter(|id| !expected.contains_key(*id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} alerts the reference does not have, e.g. {:?}",
        unexpected.len(),
        unexpected.first()
    );
}

/// What to print when an alert is missing: where its events were, the commits, the logs.
fn diagnosis(
    kafka: &Kafka,
    group: &str,
    members: &[&Member],
    missing: &[String],
    expected: &BTreeMap<String, Expected>,
    places: &[Place],
) -> String {
    let mut text = format!(
        "{} alerts lost; committed offsets: {:?}\n",
        missing.len(),
        kafka.committed(group, TOPIC, PARTITIONS)
    );
    for id in missing.iter().take(20) {
        let e = &expected[id];
        text += &format!(
            "missing {} {id}: events at {:?}\n",
            e.rule,
            e.events.iter().map(|i| places[*i]).collect::<Vec<_>>()
        );
    }
    for member in members {
        text += &format!(
            "---- log of member {}:\n{}\n",
            member.name,
            member.log_text()
        );
    }
    text
}

/// What was durable when a member had just been killed: the group's commits, read
/// first, then the alert files.
struct Snapshot {
    committed: BTreeMap<i32, i64>,
    alerts: BTreeSet<String>,
}

#[test]
fn two_members_one_killed_ten_times_loses_no_alert_and_commits_only_what_is_durable() {
    let _serial = one_at_a_time();
    let kafka = broker();
    let group = "demarc-e2e-kills";
    let dir = tempfile::tempdir().expect("tempdir");
    let events = Arc::new(events(150_000, 0.005, 7));
    let producer = SteadyProducer::start(kafka.client(), TOPIC, Arc::clone(&events), RATE);

    let mut a = Member::start(dir.path(), "a", settings(&kafka, group, Some("demarc-a")))
        .expect("member a");
    let mut b = Member::start(dir.path(), "b", settings(&kafka, group, Some("demarc-b")))
        .expect("member b");
    wait_consumed(&mut b);

    let mut snapshots = Vec::new();
    for kill in 0..10u64 {
        wait_consumed(&mut a);
        // Land each kill at a different point of a batch's life.
        std::thread::sleep(Duration::from_millis(30 + 97 * (kill % 5)));
        assert!(
            producer.running(),
            "the producer finished before kill {} ({} events sent): produce more",
            kill + 1,
            producer.sent()
        );
        a.kill().expect("SIGKILL");
        // Commits first: an alert below a commit read now was durable before it.
        let committed = kafka
            .committed(group, TOPIC, PARTITIONS)
            .expect("committed offsets");
        snapshots.push(Snapshot {
            committed,
            alerts: delivered(&[&a, &b]),
        });
        a.restart().expect("restart a");
    }
    wait_consumed(&mut a);
    let produced = producer.finish().expect("every event acknowledged");
    let (expected, places) = expected(&events, &produced, dir.path());

    let lost = lost(&kafka, group, &[&a, &b], &expected, &places);
    let status_a = a.terminate().expect("terminate a");
    let status_b = b.terminate().expect("terminate b");
    assert!(lost.is_none(), "{}", lost.unwrap_or_default());
    assert!(
        status_a.success() && status_b.success(),
        "exit after SIGTERM: a {status_a}, b {status_b}\n{}{}",
        a.log_text(),
        b.log_text()
    );

    assert_only_expected(&[&a, &b], &expected);

    // Commit after durable: an expected alert whose events all lie below the committed
    // offsets of their partitions was already written when the commit was read.
    let mut checked = 0;
    for (n, snapshot) in snapshots.iter().enumerate() {
        for (id, e) in &expected {
            let covered = e.events.iter().all(|i| {
                let place = places[*i];
                snapshot
                    .committed
                    .get(&place.partition)
                    .is_some_and(|&next| place.offset < next)
            });
            if covered {
                checked += 1;
                assert!(
                    snapshot.alerts.contains(id),
                    "after kill {}: {} alert {id} (events at {:?}) is below the committed \
                     offsets {:?} but was not in any alert file",
                    n + 1,
                    e.rule,
                    e.events.iter().map(|i| places[*i]).collect::<Vec<_>>(),
                    snapshot.committed
                );
            }
        }
    }
    assert!(
        checked > 0,
        "no expected alert lay below a commit at any kill: the check proved nothing"
    );
    eprintln!(
        "{} events acknowledged ({:.1} per record batch), {} reference alerts, all delivered; \
         {checked} (alert, kill) pairs below a commit, all durable at the kill",
        places.len(),
        produced.records_per_batch,
        expected.len()
    );
}

#[test]
fn rolling_restart_loses_nothing_and_never_moves_a_commit_backwards() {
    let _serial = one_at_a_time();
    let kafka = Arc::new(broker());
    let group = "demarc-e2e-rolling";
    let dir = tempfile::tempdir().expect("tempdir");
    let events = Arc::new(events(60_000, 0.005, 8));
    let producer = SteadyProducer::start(kafka.client(), TOPIC, Arc::clone(&events), RATE);

    // Watch the group's commits the whole time: no partition may go backwards.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (kafka, watching) = (Arc::clone(&kafka), Arc::clone(&watching));
        std::thread::spawn(move || {
            let mut highest: BTreeMap<i32, i64> = BTreeMap::new();
            let mut backwards = Vec::new();
            let mut reads = 0;
            while watching.load(Ordering::Relaxed) {
                if let Ok(committed) = kafka.committed(group, TOPIC, PARTITIONS) {
                    reads += 1;
                    for (p, o) in committed {
                        let top = highest.entry(p).or_insert(o);
                        if o < *top {
                            backwards.push((p, *top, o));
                        }
                        *top = (*top).max(o);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (reads, highest, backwards)
        })
    };

    let mut a = Member::start(dir.path(), "a", settings(&kafka, group, None)).expect("a");
    wait_consumed(&mut a);
    std::thread::sleep(Duration::from_secs(2));
    // B joins: the group rebalances, A hands over what it had.
    let mut b = Member::start(dir.path(), "b", settings(&kafka, group, None)).expect("b");
    wait_consumed(&mut b);
    std::thread::sleep(Duration::from_secs(2));
    // A leaves: it drains, commits and exits; B takes its partitions.
    assert!(producer.running(), "the producer finished too early");
    let status_a = a.terminate().expect("terminate a");
    assert!(
        status_a.success(),
        "a exited with {status_a}:\n{}",
        a.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    let produced = producer.finish().expect("every event acknowledged");
    let (expected, places) = expected(&events, &produced, dir.path());

    let lost = lost(&kafka, group, &[&a, &b], &expected, &places);
    // B reads on past the last alert: let it commit the end of every partition.
    let highs = kafka
        .high_watermarks(TOPIC, PARTITIONS)
        .expect("high watermarks");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let committed = kafka
            .committed(group, TOPIC, PARTITIONS)
            .unwrap_or_default();
        if highs
            .iter()
            .all(|(p, high)| committed.get(p).is_some_and(|c| c >= high))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status_b = b.terminate().expect("terminate b");
    watching.store(false, Ordering::Relaxed);
    let (reads, highest, backwards) = watcher.join().expect("watcher");
    assert!(lost.is_none(), "{}", lost.unwrap_or_default());
    assert!(
        status_b.success(),
        "b exited with {status_b}:\n{}",
        b.log_text()
    );
    assert!(
        backwards.is_empty(),
        "committed offsets moved backwards (partition, before, after): {backwards:?}"
    );
    assert!(reads > 10, "the commits were read only {reads} times");
    // Both members stopped cleanly, so everything acknowledged is committed.
    let last = kafka
        .committed(group, TOPIC, PARTITIONS)
        .expect("committed offsets");
    for (p, next) in &highest {
        assert!(
            last.get(p).is_some_and(|o| o >= next),
            "partition {p}: the final commit {:?} is below {next}, read earlier",
            last.get(p)
        );
    }
    let uncommitted: Vec<&Place> = places
        .iter()
        .filter(|place| {
            last.get(&place.partition)
                .is_none_or(|&next| place.offset >= next)
        })
        .collect();
    assert!(
        uncommitted.is_empty(),
        "{} events not committed after both members stopped, e.g. {:?}",
        uncommitted.len(),
        uncommitted.first()
    );
    assert_only_expected(&[&a, &b], &expected);
}
