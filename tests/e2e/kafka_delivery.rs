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
use demarc_tests::produce::{Place, Produced, SteadyProducer, events, produce_one};

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
    // Messages of up to 4 MB; the dead-letter topic keeps the broker's 1 MB default.
    kafka
        .create_topic_with(TOPIC, PARTITIONS, &[("max.message.bytes", "4000000")])
        .expect("topic");
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
    let started = Instant::now();
    let mut child = demarc(&["run"], &missing)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demarc run starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("demarc run on a missing topic still ran after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
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
