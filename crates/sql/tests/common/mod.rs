//! The fixture lake both test files query: five CloudTrail events over two days (two
//! of them StopLogging), one GCP event, and `e-2` written a second time by another run
//! (a replay), with the built-in rules' alerts.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_detect::RuleSet;
use demarc_lake::Lake as LakeWriter;
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};

pub fn cloudtrail(id: &str, time: &str, name: &str, source: &str, user: &str) -> String {
    let request = if source.starts_with("cloudtrail") {
        format!(r#"{{"name":"trail-{id}"}}"#)
    } else {
        format!(r#"{{"bucketName":"bucket-{id}"}}"#)
    };
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"{id}","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}"}},"requestParameters":{request}}}"#
    )
}

pub fn events() -> Vec<String> {
    vec![
        cloudtrail("e-1", "2026-01-05T10:05:00Z", "StopLogging", "cloudtrail.amazonaws.com", "alice"),
        cloudtrail("e-2", "2026-01-05T10:10:00Z", "GetObject", "s3.amazonaws.com", "bob"),
        cloudtrail("e-3", "2026-01-05T11:20:00Z", "ListBuckets", "s3.amazonaws.com", "alice"),
        cloudtrail("e-4", "2026-01-06T09:00:00Z", "StopLogging", "cloudtrail.amazonaws.com", "carol"),
        cloudtrail("e-5", "2026-01-06T09:30:00Z", "GetObject", "s3.amazonaws.com", "bob"),
        r#"{"insertId":"g-1","timestamp":"2026-01-05T10:30:00Z","logName":"projects/acme/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"storage.googleapis.com","methodName":"storage.buckets.get","resourceName":"projects/_/buckets/b1","authenticationInfo":{"principalEmail":"dave@example.com"}},"resource":{"type":"gcs_bucket","labels":{"project_id":"acme"}}}"#.to_owned(),
    ]
}

pub fn batch(events: &[String]) -> RecordBatch {
    let mut normalizer = Normalizer::new(Options::default());
    for event in events {
        normalizer.push(event.as_bytes(), &Origin::file("fixture.json"));
    }
    assert!(normalizer.take_rejects().is_empty());
    normalizer.take_batch().expect("rows")
}

/// A lake with the fixture's events and the built-in rules' alerts on them.
pub async fn fixture_lake(dir: &Path) -> PathBuf {
    let root = dir.join("lake");
    let rules = RuleSet::builtin().await.expect("rules");
    let all = events();
    let mut lake = LakeWriter::with_encoders(root.as_path().into(), "first", 1).expect("lake");
    let rows = batch(&all);
    for alert in rules
        .alerts(rows.clone(), "2026-01-07T00:00:00Z")
        .await
        .expect("alerts")
    {
        lake.add_alert(&alert).expect("alert");
    }
    lake.add_events(&rows).expect("events");
    lake.finish().expect("flush");
    let mut replay = LakeWriter::with_encoders(root.as_path().into(), "replay", 1).expect("lake");
    replay.add_events(&batch(&all[1..2])).expect("events");
    replay.finish().expect("flush");
    root
}

/// Writes one more event (`e-9`, 2026-02-01) to the lake at `root`, as a later run
/// would: a file that did not exist when the reader started.
pub fn write_a_later_event(root: &Path) {
    let mut more = LakeWriter::with_encoders(root.into(), "later", 1).expect("lake");
    more.add_events(&batch(&[cloudtrail(
        "e-9",
        "2026-02-01T00:00:00Z",
        "GetObject",
        "s3.amazonaws.com",
        "erin",
    )]))
    .expect("events");
    more.finish().expect("flush");
}
