//! Routed alerts against Apache Kafka: `demarc run` with a webhook that answers 503
//! (try again later) and a Kafka topic sink, SIGKILLed repeatedly mid-stream. No offset
//! is ever committed ahead of the alerts spooled for the webhook; once the webhook
//! answers 200, every alert the reference finds arrives there, and on the alert topic.
//! (The webhook's port is held by the test's own server throughout: a port left free
//! could be taken by another listener, whose answers would mean something else.)

mod common;

#[path = "../../crates/sink/tests/common/mod.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{PARTITIONS, RATE, TOPIC, broker, one_at_a_time, settings, wait_consumed};
use demarc_sink::store::Store;
use demarc_tests::demarc::{Member, reference_alerts};
use demarc_tests::produce::{SteadyProducer, events};
use rdkafka::message::Message;
use receiver::{Receiver, status, wait_for};

const ALERT_TOPIC: &str = "demarc-alerts";

/// The alert ids waiting in the spool for `sink`.
fn spooled(store: &std::path::Path, sink: &str) -> BTreeSet<String> {
    let store = Store::open(store).expect("the spool opens after a SIGKILL");
    store
        .next(sink, usize::MAX >> 1)
        .expect("spool")
        .into_iter()
        .map(|s| s.notice.alert.alert_id)
        .collect()
}

#[test]
fn killed_runs_commit_nothing_ahead_of_the_spool_and_every_alert_arrives_once_the_sink_is_up() {
    let _serial = one_at_a_time();
    let kafka = broker();
    kafka.create_topic(ALERT_TOPIC, 1).expect("alert topic");
    let group = "demarc-e2e-routing";
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool.db");
    let up = Arc::new(AtomicBool::new(false));
    let receiver = {
        let up = Arc::clone(&up);
        Receiver::start(move |_| status(if up.load(Ordering::Relaxed) { 200 } else { 503 }))
    };
    let mut member_settings = settings(&kafka, group, Some("demarc-routed"));
    member_settings.extra = format!(
        "[spool]\npath = \"{}\"\ngrace_seconds = 1\n\
         [suppression]\nwindow = \"0\"\n\
         [sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\
         timeout_seconds = 1\nretry_max_seconds = 1\n\
         [sinks.siem]\ntype = \"kafka\"\ntopic = \"{ALERT_TOPIC}\"\nformat = \"ocsf\"\n\
         [[routes]]\nsinks = [\"hook\", \"siem\"]\n",
        spool.display(),
        receiver.url()
    );
    let events = Arc::new(events(40_000, 0.01, 17));
    let producer = SteadyProducer::start(kafka.client(), TOPIC, Arc::clone(&events), RATE);
    let mut member = Member::start(dir.path(), "routed", member_settings).expect("member");

    // (commits, alerts spooled for the webhook) right after each kill.
    let mut snapshots: Vec<(BTreeMap<i32, i64>, BTreeSet<String>)> = Vec::new();
    for kill in 0..6u64 {
        wait_consumed(&mut member);
        std::thread::sleep(Duration::from_millis(400 + 331 * (kill % 4)));
        assert!(
            producer.running(),
            "the producer finished before kill {}",
            kill + 1
        );
        member.kill().expect("SIGKILL");
        let committed = kafka
            .committed(group, TOPIC, PARTITIONS)
            .expect("committed");
        snapshots.push((committed, spooled(&spool, "hook")));
        member.restart().expect("restart");
    }
    wait_consumed(&mut member);
    let produced = producer.finish().expect("every event acknowledged");
    let values: Vec<&str> = produced
        .placed
        .iter()
        .map(|(i, _)| events[*i].1.as_str())
        .collect();
    let places: Vec<_> = produced.placed.iter().map(|(_, p)| *p).collect();
    let expected = reference_alerts(&values, dir.path()).expect("reference alerts");
    assert!(
        expected.len() >= 20,
        "only {} reference alerts",
        expected.len()
    );

    // Commit after spool: an alert whose events all lie below the commits was spooled
    // for the webhook (which delivered nothing yet) when the commits were read.
    let mut checked = 0;
    for (n, (committed, spooled)) in snapshots.iter().enumerate() {
        for (id, e) in &expected {
            let covered = e.events.iter().all(|i| {
                committed
                    .get(&places[*i].partition)
                    .is_some_and(|&next| places[*i].offset < next)
            });
            if covered {
                checked += 1;
                assert!(
                    spooled.contains(id),
                    "after kill {}: alert {id} ({}) is below the commits {committed:?} but \
                     was not in the spool",
                    n + 1,
                    e.rule
                );
            }
        }
    }
    assert!(
        checked > 0,
        "no alert lay below a commit at any kill: nothing was checked"
    );

    // The webhook comes up: every expected alert arrives, nothing else.
    assert!(
        receiver.delivered_ids().is_empty(),
        "the webhook confirmed nothing yet"
    );
    up.store(true, Ordering::Relaxed);
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    let arrived = wait_for(Duration::from_secs(180), || {
        receiver
            .delivered_ids()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .is_superset(&want)
    });
    let got: BTreeSet<String> = receiver.delivered_ids().into_iter().collect();
    assert!(
        arrived,
        "{} of {} alerts reached the webhook; missing e.g. {:?}\n{}",
        got.intersection(&want).count(),
        want.len(),
        want.difference(&got).next(),
        member.log_text()
    );
    assert_eq!(got, want, "only the reference's alerts");
    assert!(wait_for(Duration::from_secs(30), || spooled(
        &spool, "hook"
    )
    .is_empty()
        && spooled(&spool, "siem").is_empty()));

    // The alert topic has every alert, keyed by its dedup key. A SIGKILL between the
    // broker's acknowledgement and the spool's update sends a record again: counted.
    let records = kafka
        .read_all(ALERT_TOPIC, Duration::from_secs(5))
        .expect("alert topic");
    let mut on_topic = BTreeSet::new();
    for record in &records {
        let value: serde_json::Value =
            serde_json::from_slice(record.payload().unwrap_or_default()).expect("json");
        assert_eq!(
            record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            value["metadata"]["correlation_uid"]
                .as_str()
                .map(str::to_owned)
        );
        on_topic.insert(
            value["finding_info"]["uid"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert_eq!(on_topic, want, "every alert on the topic");
    let status = member.terminate().expect("terminate");
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        member.log_text()
    );
    eprintln!(
        "{} events, {} alerts, 6 kills: {checked} (alert, kill) pairs below a commit, all \
         spooled; {} records on the alert topic ({} sent again after a kill)",
        places.len(),
        want.len(),
        records.len(),
        records.len() - on_topic.len()
    );
}
