//! Delivery to a real HTTP receiver on loopback: failures of every kind retried in
//! order until each alert arrives once, signed; refusals kept for the dead-letter
//! output.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::{Receiver, Reply, alert, status, wait_for};
use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpKind, HttpSink, HttpTarget, webhook_key};
use demarc_sink::metrics::RouteMetrics;
use demarc_sink::notice::BodyFormat;
use demarc_sink::route::Routes;
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, Suppression};
use hmac::{KeyInit, Mac};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook(url: String) -> SinkSpec {
    SinkSpec {
        name: "hook".into(),
        transport: Box::new(HttpSink::new(
            HttpTarget {
                url,
                timeout: Duration::from_secs(1),
                headers: vec![("x-team".into(), "soc".into())],
            },
            HttpKind::Webhook {
                format: BodyFormat::Demarc,
                secret: Some(webhook_key(SECRET).expect("key")),
            },
        )),
        keeps_snoozed: false,
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        },
    }
}

fn start(store: &Path, sinks: Vec<SinkSpec>, suppression: Suppression) -> (Routing, RouteMetrics) {
    let metrics = RouteMetrics::default();
    let default = (0..sinks.len()).collect();
    let routing = Routing::start(
        RoutingConfig {
            store: store.to_owned(),
            capacity: 100_000,
            routes: Routes {
                routes: Vec::new(),
                default,
            },
            suppression,
            sinks,
            grace: Duration::from_secs(1),
        },
        metrics.clone(),
    )
    .expect("routing starts");
    (routing, metrics)
}

/// Checks a Standard Webhooks signature independently of the sink's code.
fn verifies(request: &common::Request) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("key");
    let (Some(id), Some(ts), Some(sig)) = (
        request.headers.get("webhook-id"),
        request.headers.get("webhook-timestamp"),
        request.headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap_or(0);
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&request.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (0..300).contains(&age) && sig.split(' ').any(|s| s == format!("v1,{expected}"))
}

#[test]
fn every_alert_arrives_once_in_order_through_errors_hangs_refusals_and_throttling() {
    // 500s, then hangs past the 1 s timeout, then 30 s of refused connections, then
    // 429 with Retry-After, then 200 — with a few more 500s later on.
    let receiver = Receiver::start(|n| match n {
        0..=19 => status(500),
        20..=22 => Reply::Hang(Duration::from_millis(2500)),
        23 => Reply::Refuse(Duration::from_secs(30)),
        24..=28 => Reply::Status {
            status: 429,
            body: "slow down".into(),
            headers: vec![("retry-after".into(), "1".into())],
        },
        n if n % 97 == 0 => status(503),
        _ => status(200),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut routing, metrics) = start(
        &dir.path().join("alerts.db"),
        vec![webhook(receiver.url())],
        Suppression::default(),
    );
    let alerts: Vec<_> = (0..1000)
        .map(|n| alert("aws-s3-public", n, &format!("b{n}")))
        .collect();
    for chunk in alerts.chunks(100) {
        let refs: Vec<_> = chunk.iter().collect();
        routing.route(&refs, &mut || true).expect("spooled");
    }
    assert!(
        wait_for(Duration::from_secs(180), || {
            routing.tick().expect("tick");
            routing.depth() == 0
        }),
        "the spool did not drain: {} left",
        routing.depth()
    );
    routing.tick().expect("tick");
    let requests = receiver.requests();
    // Every request, whatever its answer, carries a valid signature.
    assert!(requests.iter().all(verifies), "a signature does not verify");
    assert!(
        requests
            .iter()
            .all(|r| r.headers.get("x-team").map(String::as_str) == Some("soc"))
    );
    let order = receiver.delivered_ids();
    let expected: Vec<String> = alerts.iter().map(|a| a.alert_id.clone()).collect();
    assert_eq!(order.len(), 1000, "distinct alerts delivered");
    assert_eq!(order, expected, "delivered in the order routed");
    // The body is the alert.
    let first: serde_json::Value =
        serde_json::from_slice(&requests.last().expect("some").body).expect("json");
    assert_eq!(first["rule_id"], "aws-s3-public");
    assert_eq!(first["notice"], "new");
    let retries = metrics
        .retries
        .get_or_create(&vec![("sink", "hook".to_owned())])
        .get();
    assert!(retries >= 28, "retries counted: {retries}");
    assert!(routing.rejected(10).expect("read").is_empty());
    routing.finish();
}

#[test]
fn a_400_is_kept_with_its_body_for_the_dead_letter_output_and_a_408_is_retried() {
    let receiver = Receiver::start(|n| match n {
        0 => Reply::Status {
            status: 400,
            body: "{\"error\":\"unknown field severity\"}".into(),
            headers: Vec::new(),
        },
        1 | 2 => status(408),
        _ => status(204),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut routing, metrics) = start(
        &dir.path().join("alerts.db"),
        vec![webhook(receiver.url())],
        Suppression::default(),
    );
    let (a, b) = (alert("r", 1, "x"), alert("r", 2, "y"));
    routing.route(&[&a, &b], &mut || true).expect("spooled");
    assert!(wait_for(Duration::from_secs(30), || routing.depth() == 0));
    let refused = routing.rejected(10).expect("read");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, Some(400));
    assert_eq!(
        refused[0].response,
        "{\"error\":\"unknown field severity\"}"
    );
    assert_eq!(refused[0].sink, "hook");
    let notice: serde_json::Value = serde_json::from_slice(&refused[0].notice).expect("json");
    assert_eq!(notice["alert_id"], a.alert_id);
    // The next one waited through two 408s and arrived.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[3].headers["webhook-id"], b.alert_id);
    assert_eq!(requests[3].answered, Some(204));
    let label = vec![("sink", "hook".to_owned())];
    assert_eq!(metrics.refused.get_or_create(&label).get(), 1);
    assert_eq!(metrics.delivered.get_or_create(&label).get(), 1);
    routing.forget_rejected(&[refused[0].seq]).expect("forget");
    assert!(routing.rejected(10).expect("read").is_empty());
    routing.finish();
}
