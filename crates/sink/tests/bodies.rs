//! What Slack and PagerDuty receive, through a real HTTP receiver: readable fields,
//! the link template, PagerDuty's dedup key and field limits.

mod common;

use std::time::Duration;

use common::{Receiver, alert, status, wait_for};
use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpKind, HttpSink, HttpTarget};
use demarc_sink::metrics::RouteMetrics;
use demarc_sink::route::Routes;
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, Suppression};

fn sink(name: &str, url: String, kind: HttpKind) -> SinkSpec {
    SinkSpec {
        name: name.into(),
        transport: Box::new(HttpSink::new(
            HttpTarget {
                url,
                timeout: Duration::from_secs(2),
                headers: Vec::new(),
            },
            kind,
        )),
        keeps_snoozed: false,
        backoff: Backoff::default(),
    }
}

#[test]
fn slack_and_pagerduty_get_their_own_readable_bodies() {
    let slack = Receiver::start(|_| status(200));
    let pagerduty = Receiver::start(|_| status(202));
    let dir = tempfile::tempdir().expect("tempdir");
    let link = "https://console.example/alerts/{alert_id}?account={account_id}";
    let mut routing = Routing::start(
        RoutingConfig {
            store: dir.path().join("alerts.db"),
            capacity: 100,
            routes: Routes {
                routes: Vec::new(),
                default: vec![0, 1],
            },
            suppression: Suppression::default(),
            sinks: vec![
                sink(
                    "slack",
                    slack.url(),
                    HttpKind::Slack {
                        link: Some(link.into()),
                    },
                ),
                sink(
                    "pager",
                    pagerduty.url(),
                    HttpKind::PagerDuty {
                        routing_key: "R0UT1NGK3Y".into(),
                        link: Some(link.into()),
                    },
                ),
            ],
            grace: Duration::from_secs(1),
        },
        RouteMetrics::default(),
    )
    .expect("routing");
    let mut a = alert("aws-s3-bucket-policy-public", 7, "<b&b>");
    a.summary = format!("{} {}", a.summary, "x".repeat(2000));
    routing.route(&[&a], &mut || true).expect("spooled");
    assert!(wait_for(Duration::from_secs(20), || routing.depth() == 0));
    routing.finish();

    let body: serde_json::Value =
        serde_json::from_slice(&slack.requests()[0].body).expect("slack json");
    let text = body.to_string();
    for expected in [
        "HIGH",
        "S3 bucket made public",
        "arn:aws:iam::111122223333:user/mallory",
        "111122223333",
        "aws-s3-bucket-policy-public",
        // Slack's mrkdwn escapes.
        "arn:aws:s3:::&lt;b&amp;b&gt;",
        "https://console.example/alerts/00000000000000000000000000000007?account=111122223333",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[high]"))
    );

    let body: serde_json::Value =
        serde_json::from_slice(&pagerduty.requests()[0].body).expect("pagerduty json");
    assert_eq!(body["routing_key"], "R0UT1NGK3Y");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["dedup_key"], a.dedup_key);
    assert_eq!(body["payload"]["severity"], "error");
    assert_eq!(body["payload"]["source"], "111122223333");
    assert_eq!(body["payload"]["class"], "public-exposure");
    let summary = body["payload"]["summary"].as_str().expect("summary");
    assert!(summary.len() <= 1024 && summary.starts_with("[high] S3 bucket made public"));
    assert_eq!(body["payload"]["custom_details"]["alert_id"], a.alert_id);
    assert_eq!(
        body["links"][0]["href"],
        "https://console.example/alerts/00000000000000000000000000000007?account=111122223333"
    );
}
