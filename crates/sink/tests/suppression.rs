//! Suppression windows and snoozes, through a real HTTP receiver and a file sink, with
//! the store surviving a restart of the routing stage.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Receiver, alert, status, wait_for};
use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpKind, HttpSink, HttpTarget};
use demarc_sink::local::FileSink;
use demarc_sink::metrics::RouteMetrics;
use demarc_sink::notice::BodyFormat;
use demarc_sink::route::Routes;
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, Suppression};
use demarc_sink::store::Store;

fn sinks(url: &str, file: &Path) -> Vec<SinkSpec> {
    vec![
        SinkSpec {
            name: "hook".into(),
            transport: Box::new(HttpSink::new(
                HttpTarget {
                    url: url.to_owned(),
                    timeout: Duration::from_secs(2),
                    headers: Vec::new(),
                },
                HttpKind::Webhook {
                    format: BodyFormat::Ocsf,
                    secret: None,
                },
            )),
            keeps_snoozed: false,
            backoff: Backoff::default(),
        },
        SinkSpec {
            name: "archive".into(),
            transport: Box::new(FileSink::new(file, BodyFormat::Demarc, 1 << 20, 2)),
            keeps_snoozed: true,
            backoff: Backoff::default(),
        },
    ]
}

fn start(store: &Path, url: &str, file: &Path, window: Duration) -> (Routing, RouteMetrics) {
    let metrics = RouteMetrics::default();
    let routing = Routing::start(
        RoutingConfig {
            store: store.to_owned(),
            capacity: 10_000,
            routes: Routes {
                routes: Vec::new(),
                default: vec![0, 1],
            },
            suppression: Suppression {
                default: window,
                rules: Vec::new(),
            },
            sinks: sinks(url, file),
            grace: Duration::from_secs(2),
        },
        metrics.clone(),
    )
    .expect("routing starts");
    (routing, metrics)
}

fn bodies(receiver: &Receiver) -> Vec<serde_json::Value> {
    receiver
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect()
}

/// The alert ids of the OCSF findings the receiver got, in order.
fn finding_ids(receiver: &Receiver) -> Vec<String> {
    bodies(receiver)
        .iter()
        .map(|b| b["finding_info"]["uid"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn drained(routing: &mut Routing) -> bool {
    wait_for(Duration::from_secs(20), || {
        routing.tick().expect("tick");
        routing.depth() == 0
    })
}

#[test]
fn fifty_repeats_in_a_window_make_one_alert_and_one_follow_up_across_a_restart() {
    let receiver = Receiver::start(|_| status(200));
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, file) = (
        dir.path().join("alerts.db"),
        dir.path().join("alerts.jsonl"),
    );
    let window = Duration::from_secs(4);
    let repeats: Vec<_> = (0..50)
        .map(|n| alert("aws-s3-public", n, "same-bucket"))
        .collect();
    let other = alert("aws-s3-public", 99, "other-bucket");

    let (mut routing, metrics) = start(&store, &receiver.url(), &file, window);
    for a in &repeats[..25] {
        routing.route(&[a], &mut || true).expect("spooled");
    }
    routing.route(&[&other], &mut || true).expect("spooled");
    assert!(drained(&mut routing));
    let suppressed = |m: &RouteMetrics| {
        m.suppressed
            .get_or_create(&vec![("rule", "aws-s3-public".to_owned())])
            .get()
    };
    assert_eq!(suppressed(&metrics), 24);
    routing.finish();

    // A restart mid-window: the count goes on from the store.
    let (mut routing, metrics) = start(&store, &receiver.url(), &file, window);
    for a in &repeats[25..] {
        routing.route(&[a], &mut || true).expect("spooled");
    }
    assert_eq!(suppressed(&metrics), 25, "24 + 25 = 49 repeats in all");
    assert!(wait_for(Duration::from_secs(15), || {
        routing.tick().expect("tick");
        bodies(&receiver).iter().any(|b| b["activity_id"] == 2)
    }));
    assert!(drained(&mut routing));
    let sent = bodies(&receiver);
    let about = |key: &str| -> Vec<&serde_json::Value> {
        sent.iter()
            .filter(|b| b["metadata"]["correlation_uid"] == format!("{key:0>32}"))
            .collect()
    };
    let same = about("same-bucket");
    assert_eq!(same.len(), 2, "one alert and one follow-up: {same:#?}");
    assert_eq!(same[0]["activity_id"], 1);
    assert_eq!(same[0]["finding_info"]["uid"], repeats[0].alert_id);
    assert_eq!(same[1]["activity_id"], 2);
    assert_eq!(same[1]["type_uid"], 200402);
    assert_eq!(same[1]["count"], 50);
    assert_eq!(
        about("other-bucket").len(),
        1,
        "a single alert has no follow-up"
    );
    // The file sink got the same two notices.
    let file_lines = lines(&file);
    let in_file: Vec<_> = file_lines
        .iter()
        .filter(|l| l["resource"] == "arn:aws:s3:::same-bucket")
        .collect();
    assert_eq!(in_file.len(), 2);
    assert_eq!(in_file[1]["notice"], "update");
    assert_eq!(in_file[1]["count"], 50);
    routing.finish();
}

#[test]
fn snoozes_mute_all_but_file_sinks_end_when_asked_or_expired_and_survive_a_restart() {
    let receiver = Receiver::start(|_| status(200));
    let dir = tempfile::tempdir().expect("tempdir");
    let (store_path, file) = (
        dir.path().join("alerts.db"),
        dir.path().join("alerts.jsonl"),
    );
    let (mut routing, metrics) = start(&store_path, &receiver.url(), &file, Duration::ZERO);

    // Written by `demarc alerts snooze`, another process, while this one runs.
    let cli = Store::open(&store_path).expect("store");
    let now = chrono::Utc::now().timestamp_millis();
    let long = cli
        .snooze(
            "aws-s3-*",
            &[("resource".into(), "arn:aws:s3:::noisy".into())],
            "known public website bucket",
            "alice",
            now + 3_600_000,
        )
        .expect("snooze");
    let short = cli
        .snooze("gcp-*", &[], "maintenance", "bob", now + 2_500)
        .expect("snooze");
    assert_eq!(cli.snoozes(now, false).expect("list").len(), 2);
    std::thread::sleep(Duration::from_millis(1100)); // the running process reads them

    let noisy = alert("aws-s3-public", 1, "noisy");
    let quiet = alert("aws-s3-public", 2, "quiet");
    let mut gcp = alert("gcp-bucket-public", 3, "g");
    gcp.provider = "gcp".into();
    routing
        .route(&[&noisy, &quiet, &gcp], &mut || true)
        .expect("spooled");
    assert!(drained(&mut routing));
    let delivered = finding_ids(&receiver);
    assert_eq!(
        delivered,
        vec![quiet.alert_id.clone()],
        "the snoozed two are muted"
    );
    let marked: Vec<_> = lines(&file)
        .into_iter()
        .filter(|l| l.get("snoozed").is_some())
        .collect();
    assert_eq!(
        marked.len(),
        2,
        "snoozed alerts reach the file sink, marked"
    );
    assert_eq!(
        marked[0]["snoozed"]["reason"],
        "known public website bucket"
    );
    assert_eq!(marked[0]["snoozed"]["by"], "alice");
    let snoozed = |rule: &str| {
        metrics
            .snoozed
            .get_or_create(&vec![("rule", rule.to_owned())])
            .get()
    };
    assert_eq!(snoozed("aws-s3-public"), 1);
    routing.finish();

    // After a restart the long snooze still applies; the short one has expired by
    // itself.
    std::thread::sleep(Duration::from_millis(1500));
    let (mut routing, _) = start(&store_path, &receiver.url(), &file, Duration::ZERO);
    let active = cli
        .snoozes(chrono::Utc::now().timestamp_millis(), false)
        .expect("list");
    assert_eq!(active.iter().map(|s| s.id).collect::<Vec<_>>(), vec![long]);
    let (noisy2, gcp2) = (alert("aws-s3-public", 4, "noisy"), {
        let mut g = alert("gcp-bucket-public", 5, "g");
        g.provider = "gcp".into();
        g
    });
    routing
        .route(&[&noisy2, &gcp2], &mut || true)
        .expect("spooled");
    assert!(drained(&mut routing));
    let delivered = finding_ids(&receiver);
    assert_eq!(
        delivered.last(),
        Some(&gcp2.alert_id),
        "the expired snooze no longer applies"
    );
    assert!(!delivered.contains(&noisy2.alert_id));

    // Unsnoozed: applies within a second, without a restart.
    assert!(cli.unsnooze(long).expect("unsnooze"));
    assert!(!cli.unsnooze(long).expect("unsnooze"), "already ended");
    assert!(!cli.unsnooze(short).expect("unsnooze"), "already expired");
    std::thread::sleep(Duration::from_millis(1100));
    let noisy3 = alert("aws-s3-public", 6, "noisy");
    routing.route(&[&noisy3], &mut || true).expect("spooled");
    assert!(drained(&mut routing));
    let last = bodies(&receiver).last().cloned().expect("some");
    assert_eq!(last["finding_info"]["uid"], noisy3.alert_id);
    assert_eq!(
        cli.snoozes(0, true).expect("list").len(),
        2,
        "ended ones are kept"
    );
    routing.finish();
}
