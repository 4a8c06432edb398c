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

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    DEAD_LETTER_TOPIC, PARTITIONS, RATE, TOPIC, broker, one_at_a_time, settings, wait_consumed,
    wait_member,
};
use demarc_tests::demarc::{Expected, Member, reference_alerts};
use demarc_tests::kafka::Kafka;
use demarc_tests::produce::{Place, Produced, SteadyProducer, events, produce_one};

/// The union of the members' alert files.
fn delivered(members: &[&Member]) -> BTreeSet<String> {
    members.iter().flat_map(|m| m.alert_ids()).collect()
}

/// The reference alerts of the acknowledged events (and of `extra` messages produced
/// one by one), with where each event went.
fn expected(
    events: &[(String, String)],
    produced: &Produced,
    extra: &[Poison],
    dir: &std::path::Path,
) -> (BTreeMap<String, Expected>, Vec<Place>) {
    // Batches of several records, so that restarts resume from commits inside them.
    assert!(
        produced.records_per_batch >= 3.0,
        "the producer sent {:.1} records per batch: too few for commits to fall inside batches",
        produced.records_per_batch
    );
    let placed = &produced.placed;
    let mut values: Vec<&str> = placed.iter().map(|(i, _)| events[*i].1.as_str()).collect();
    let mut places: Vec<Place> = placed.iter().map(|(_, p)| *p).collect();
    for poison in extra {
        if let Ok(text) = std::str::from_utf8(&poison.value) {
            values.push(text);
            places.push(poison.place);
        }
    }
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

/// A message demarc must reject, and where the broker put it.
struct Poison {
    name: &'static str,
    value: Vec<u8>,
    place: Place,
}

/// The poison messages: not JSON; gzip cut short; and a CloudTrail file of over 1 MB
/// (more than the dead-letter topic takes) holding violations, one broken event and
/// ordinary events.
fn poison_values() -> Vec<(&'static str, Vec<u8>)> {
    use std::io::Write as _;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(
        events(20, 0.0, 31)
            .into_iter()
            .map(|e| e.1)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    )
    .expect("gzip");
    let gzip = gzip.finish().expect("gzip");
    let truncated = gzip[..gzip.len() / 2].to_vec();

    let mut records: Vec<String> = events(20, 0.5, 32).into_iter().map(|e| e.1).collect();
    records.push("{\"eventVersion\": \"1.08\", \"eventTime\": \"yesterday\"}".to_owned());
    let filler = events(2000, 0.0, 33);
    let mut size: usize = records.iter().map(String::len).sum();
    for (_, value) in filler {
        if size > 1_200_000 {
            break;
        }
        size += value.len() + 1;
        records.push(value);
    }
    let big = format!("{{\"Records\":[{}]}}", records.join(","));
    assert!(big.len() > 1_200_000, "{} bytes", big.len());
    vec![
        ("not-json", b"this is not JSON at all".to_vec()),
        ("truncated-gzip", truncated),
        ("big", big.into_bytes()),
    ]
}

/// Every poison message is on the dead-letter topic: whole, or the big one as a marked
/// excerpt of its first bytes, each with its source position.
fn assert_dead_lettered(kafka: &Kafka, poison: &[Poison]) {
    use rdkafka::message::{Headers as _, Message as _};
    let letters = kafka
        .read_all(DEAD_LETTER_TOPIC, Duration::from_secs(3))
        .expect("dead letters");
    let header = |m: &rdkafka::message::OwnedMessage, name: &str| -> Option<String> {
        m.headers()?
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    for p in poison {
        let found = letters.iter().find(|m| {
            header(m, "demarc.source.partition") == Some(p.place.partition.to_string())
                && header(m, "demarc.source.offset") == Some(p.place.offset.to_string())
        });
        let Some(letter) = found else {
            panic!(
                "poison message {} at {:?} is not on the dead-letter topic ({} letters there)",
                p.name,
                p.place,
                letters.len()
            );
        };
        let payload = letter.payload().unwrap_or_default();
        if header(letter, "demarc.truncated").is_some() {
            assert_eq!(p.name, "big", "only the big message is cut");
            assert!(p.value.starts_with(payload) && payload.len() >= 900_000);
            assert_eq!(
                header(letter, "demarc.original.bytes"),
                Some(p.value.len().to_string())
            );
        } else {
            assert_eq!(payload, p.value.as_slice(), "{} whole", p.name);
        }
    }
}

/// Waits until the group's commits reach the end of every partition: lag 0.
fn assert_lag_reaches_zero(kafka: &Kafka, group: &str) {
    let highs = kafka
        .high_watermarks(TOPIC, PARTITIONS)
        .expect("high watermarks");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let committed = kafka
            .committed(group, TOPIC, PARTITIONS)
            .unwrap_or_default();
        // A partition nothing was produced to has no commit and no lag.
        if highs
            .iter()
            .all(|(p, high)| *high == 0 || committed.get(p).is_some_and(|c| c >= high))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lag never reached 0: committed {committed:?}, ends {highs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What was durable when a member had just been killed: the group's commits, read
/// first, then the alert files.
struct Snapshot {
    committed: BTreeMap<i32, i64>,
    alerts: BTreeSet<String>,
}

/// Also: poison messages among the events (not JSON, a truncated gzip, a CloudTrail file
/// of over 1 MB with violations and a broken event) reach the dead-letter topic, the
/// violations in the big one alert, and the group's lag reaches 0.
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
    let mut poison_left = poison_values();
    let mut poison = Vec::new();
    for kill in 0..10u64 {
        if kill % 3 == 1
            && let Some((name, value)) = poison_left.pop()
        {
            let place = produce_one(kafka.client(), TOPIC, name, &value).expect("poison");
            poison.push(Poison { name, value, place });
        }
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
    assert_eq!(poison.len(), 3, "every poison message produced");
    let produced = producer.finish().expect("every event acknowledged");
    let (expected, places) = expected(&events, &produced, &poison, dir.path());

    let lost = lost(&kafka, group, &[&a, &b], &expected, &places);
    assert!(lost.is_none(), "{}", lost.unwrap_or_default());
    assert_lag_reaches_zero(&kafka, group);
    assert_dead_lettered(&kafka, &poison);
    let status_a = a.terminate().expect("terminate a");
    let status_b = b.terminate().expect("terminate b");
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
    let (expected, places) = expected(&events, &produced, &[], dir.path());

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

/// `demarc run` with its lake in a bucket (an S3-compatible server on loopback): every
/// event it consumed is in the lake once, and the alerts too, after a graceful stop.
#[test]
fn a_streaming_lake_in_a_bucket_holds_every_event_consumed_once() {
    let _serial = one_at_a_time();
    let kafka = broker();
    let moto = demarc_tests::store::moto().expect("moto's S3 server");
    demarc_tests::store::s3_upload(&moto, "stream-lake", &[]).expect("the lake's bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut member_settings = settings(&kafka, "demarc-e2e-lake", None);
    member_settings.extra = "[lake]\npath = \"s3://stream-lake/run\"\nflush_seconds = 1\n".into();
    member_settings.env = demarc_tests::store::CREDENTIALS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .chain([("DEMARC_STORE_ENDPOINT".to_owned(), moto.endpoint())])
        .collect();
    let events = Arc::new(events(6_000, 0.01, 23));
    let producer = SteadyProducer::start(kafka.client(), TOPIC, Arc::clone(&events), RATE);
    let mut member = Member::start(dir.path(), "lake", member_settings).expect("member");
    wait_consumed(&mut member);
    let produced = producer.finish().expect("every event acknowledged");
    let total = produced.placed.len() as u64;
    wait_member(
        &mut member,
        "every event consumed",
        Duration::from_secs(120),
        |m| m.messages() == Some(total),
    );
    let status = member.terminate().expect("terminate");
    assert!(status.success(), "{}", member.log_text());
    let alerts = member.alert_ids();
    assert!(!alerts.is_empty(), "no alert:\n{}", member.log_text());

    let endpoint = moto.endpoint();
    let query = |sql: &str| -> String {
        let rows =
            demarc_tests::store::sql_rows("s3://stream-lake/run", &["--endpoint", &endpoint], sql);
        rows.expect("demarc sql").join("\n")
    };
    assert_eq!(
        query("SELECT count(*), count(DISTINCT event_id) FROM events"),
        format!("{total},{total}")
    );
    let n = alerts.len();
    assert_eq!(
        query("SELECT count(*), count(DISTINCT alert_id) FROM alerts"),
        format!("{n},{n}")
    );
}
