//! Failures inside a batch: a rule (plain or windowed) that errors on some events must
//! cost only its own alerts for that batch, reported; everything else goes on.

use std::path::Path;
use std::sync::Arc;

use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::Options;
use demarc_pipeline::dead_letter::RejectFile;
use demarc_pipeline::{Acknowledge, Batch, Engine, Outputs, Payload, Position, Record, Settings};
use demarc_sink::{AlertSink, FileMode};

#[derive(Debug, Default)]
struct Count(u64);

impl Position for Count {
    fn merge(&mut self, later: Self) {
        self.0 += later.0;
    }
}

/// Counts what was acknowledged.
struct Acknowledged(Arc<std::sync::atomic::AtomicU64>);

impl Acknowledge<Count> for Acknowledged {
    fn acknowledge(&mut self, position: &Count, _wait: bool) -> demarc_pipeline::Result<()> {
        self.0
            .fetch_add(position.0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

const HEADER: &str = "-- title: test rule\n-- severity: high\n-- category: logging-disabled\n\
                      -- srm-layer: identity\n-- service-models: iaas\n-- attack: T1562\n-- dedup: event_id\n";

fn write_rule(dir: &Path, id: &str, sql: &str) {
    write_rule_with(dir, id, "", sql);
}

fn write_rule_with(dir: &Path, id: &str, header: &str, sql: &str) {
    std::fs::write(
        dir.join(format!("{id}.sql")),
        format!("-- id: {id}\n{HEADER}{header}-- summary: {id} on {{event_id}}\n{sql}\n"),
    )
    .expect("write rule");
}

fn event(id: &str, name: &str, request: &str) -> String {
    format!(
        "{{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\
         \"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"{name}\",\
         \"awsRegion\":\"us-east-1\",\"eventID\":\"{id}\",\"recipientAccountId\":\"111122223333\",\
         \"userIdentity\":{{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::111122223333:user/a\"}},\
         \"requestParameters\":{request}}}"
    )
}

#[test]
fn a_rule_failing_on_a_batch_costs_only_its_own_alerts_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("rules dir");
    write_rule(
        &rules_dir,
        "t-trail-deleted",
        "SELECT event_id FROM events WHERE operation = 'DeleteTrail'",
    );
    // Plans fine; fails at run time on a value that is not a number.
    write_rule(
        &rules_dir,
        "t-casts",
        "SELECT event_id FROM events WHERE CAST(json_get_str(request, 'n') AS INT) > 1",
    );
    // The same over time: it runs in the completion stage.
    write_rule_with(
        &rules_dir,
        "t-casts-over-time",
        "-- window: 15m\n",
        "SELECT event_id FROM window_events WHERE CAST(json_get_str(request, 'n') AS INT) > 1",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let rules = Arc::new(
        runtime
            .block_on(RuleSet::from_dir(&rules_dir))
            .expect("rules load"),
    );
    let engine = Engine::new(rules, Settings::new(1, Options::default()));

    let records = [
        event("e-1", "DeleteTrail", "{\"name\":\"trail\"}"),
        event("e-2", "StopLogging", "{\"n\":\"not a number\"}"),
    ];
    let mut batch = Batch::default();
    for (offset, value) in records.iter().enumerate() {
        batch.push(Record {
            origin: Origin::kafka("audit", 3, 40 + offset as i64),
            key: None,
            payload: Payload::Bytes(value.clone().into_bytes()),
            produced_ms: None,
            received: None,
        });
    }
    batch.position = Count(2);
    let alerts_path = dir.path().join("alerts.jsonl");
    let rejects_path = dir.path().join("rejects.jsonl");
    let acknowledged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let outputs = Outputs {
        routing: None,
        alerts: AlertSink::open(None, Some((&alerts_path, FileMode::Replace)), 100)
            .expect("alert file"),
        lake: None,
        dead_letters: Box::new(RejectFile::create(&rejects_path).expect("reject file")),
        acknowledge: Box::new(Acknowledged(Arc::clone(&acknowledged))),
    };
    let summary = engine
        .run_batches(vec![batch], outputs)
        .expect("a rule failing on a batch does not fail the run");

    assert_eq!(summary.alerts_by_rule.get("t-trail-deleted"), Some(&1));
    assert_eq!(summary.alerts_by_rule.get("t-casts"), None);
    assert_eq!(
        summary.rule_failures,
        [
            ("t-casts".to_owned(), 1),
            ("t-casts-over-time".to_owned(), 1)
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(acknowledged.load(std::sync::atomic::Ordering::Relaxed), 2);
    let alerts = std::fs::read_to_string(&alerts_path).expect("alerts");
    assert_eq!(alerts.lines().count(), 1, "{alerts}");

    let rejects = std::fs::read_to_string(&rejects_path).expect("rejects");
    let lines: Vec<serde_json::Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{rejects}");
    for (line, rule) in lines.iter().zip(["t-casts", "t-casts-over-time"]) {
        assert_eq!(line["reason"], "rule_failed");
        assert_eq!(line["rule"], rule);
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a number")),
            "{line}"
        );
        assert_eq!(
            line["inputs"],
            serde_json::json!([{"source": "audit", "partition": 3, "first_offset": 40, "last_offset": 41}])
        );
    }
    let metrics = engine.metrics.encode();
    for rule in ["t-casts", "t-casts-over-time"] {
        assert!(
            metrics.contains(&format!("demarc_rule_errors_total{{rule=\"{rule}\"}} 1")),
            "{metrics}"
        );
    }
}
