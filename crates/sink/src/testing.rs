//! Alerts for the unit tests.

use demarc_model::{Alert, Category, Origin, Position, Severity, SrmLayer};

/// An alert of `rule` with one event, everything else plain.
pub(crate) fn alert(rule: &str, severity: Severity) -> Alert {
    Alert {
        alert_id: format!("{:0>32}", rule.len()),
        rule_id: rule.into(),
        title: format!("{rule} title"),
        category: Category::PublicExposure,
        severity,
        srm_layer: SrmLayer::Data,
        attack: vec!["T1530".into()],
        summary: "bucket b made public".into(),
        event_ids: vec!["e1".into()],
        event_time: "2026-11-29T10:00:00Z".into(),
        detected_at: "2026-11-29T10:00:01Z".into(),
        provider: "aws".into(),
        account_id: Some("111122223333".into()),
        region: Some("us-east-1".into()),
        actor: Some("arn:aws:iam::111122223333:user/mallory".into()),
        resource: Some("arn:aws:s3:::b".into()),
        source: vec![Position {
            origin: Origin::file("f.json"),
            line: 1,
            index: 0,
        }],
        dedup: [("resource".to_owned(), Some("arn:aws:s3:::b".to_owned()))]
            .into_iter()
            .collect(),
        dedup_key: "d".repeat(32),
    }
}
