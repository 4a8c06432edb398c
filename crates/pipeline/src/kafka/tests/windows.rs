//! Windowed rules across a restart without a lake: the span their windows look back
//! over is read again from Kafka.

use super::*;

/// A console sign-in as alice from one address, `minutes_ago` before now.
fn login(id: &str, minutes_ago: i64, ok: bool) -> Event {
    let time = (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAQEXAMPLEALICE001",
                         "accountId": "111122223333", "userName": "alice"},
        "eventTime": time, "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "Mozilla/5.0",
        "requestParameters": null,
        "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }},
        "eventID": id, "eventType": "AwsConsoleSignIn", "recipientAccountId": "111122223333"
    });
    ("alice".to_owned(), event.to_string())
}

fn alerts_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an alert per line"))
        .collect()
}

#[test]
fn a_sequence_cut_by_a_restart_without_a_lake_alerts_once_the_span_is_read_again() {
    let (_cluster, brokers) = cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    // Six failures, and an event a plain rule alerts on, read and committed by a first
    // run that then stops.
    let mut first: Vec<Event> = (0..6)
        .map(|i| login(&format!("f{i}"), 12 - i, false))
        .collect();
    let plain = events();
    first.extend(plain.iter().cloned());
    produce(&brokers, &first);
    let summary = run_until(&brokers, &alerts, None, first.len() as u64);
    assert_eq!(summary.records, first.len() as u64);
    let before = alerts_of(&alerts);
    assert!(
        !before.is_empty()
            && before
                .iter()
                .all(|a| a["rule_id"] != "aws-console-brute-force-then-success"),
        "{before:#?}"
    );

    // The rest of the sequence: four failures, then the success.
    let rest: Vec<Event> = (6..10)
        .map(|i| login(&format!("f{i}"), 12 - i, false))
        .chain([login("ok", 1, true)])
        .collect();
    produce(&brokers, &rest);
    let engine = Engine::new(rules(), Settings::new(2, Options::default()));
    let sink = AlertSink::open(None, Some((&alerts, FileMode::Append)), 1000).expect("alerts");
    let shared = Arc::clone(&engine.shared);
    let until = rest.len() as u64;
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        while shared.records_done.load(Ordering::Relaxed) < until && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
    let summary = run(&settings(&brokers), &engine, sink, None, None).expect("second run");
    watcher.join().expect("watcher");
    assert_eq!(summary.records, until, "only the new messages are counted");

    let after = alerts_of(&alerts);
    let brute: Vec<_> = after
        .iter()
        .filter(|a| a["rule_id"] == "aws-console-brute-force-then-success")
        .collect();
    assert_eq!(brute.len(), 1, "{after:#?}");
    let ids = brute[0]["event_ids"].as_array().expect("event_ids");
    assert_eq!(ids.len(), 11, "the success and ten failures: {ids:?}");
    // What was read again raised nothing again.
    let ids: Vec<&str> = after
        .iter()
        .filter_map(|a| a["alert_id"].as_str())
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "an alert raised twice: {after:#?}"
    );
    let metrics = engine.metrics.encode();
    let replayed = format!("demarc_window_replayed_messages_total {}", first.len());
    assert!(
        metrics.lines().any(|l| l == replayed),
        "{replayed} missing:\n{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "demarc_events_total 5"),
        "messages read again are not counted as events:\n{metrics}"
    );
}
