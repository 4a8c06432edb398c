//! `docs/alert.schema.json` describes exactly what an `Alert` serializes to.

use std::collections::BTreeSet;
use std::path::Path;

use demarc_model::{Alert, Category, Origin, Position, Severity, SrmLayer};
use serde_json::Value;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/alert.schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/alert.schema.json is readable");
    serde_json::from_str(&text).expect("the schema is JSON")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn schema_fields_and_vocabularies_match_the_alert_type() {
    let alert = Alert {
        alert_id: "0".repeat(32),
        rule_id: "r".into(),
        title: "t".into(),
        category: Category::PublicExposure,
        severity: Severity::High,
        srm_layer: SrmLayer::Data,
        attack: vec!["T1530".into()],
        summary: "s".into(),
        event_ids: vec!["e".into()],
        event_time: "2026-01-01T00:00:00Z".into(),
        detected_at: "2026-01-01T00:00:01Z".into(),
        provider: "aws".into(),
        account_id: None,
        region: None,
        actor: None,
        resource: None,
        source: vec![Position {
            origin: Origin::file("f.json"),
            line: 1,
            index: 0,
        }],
        dedup: [("resource".to_owned(), None)].into_iter().collect(),
        dedup_key: "1".repeat(32),
    };
    let json = serde_json::to_value(&alert).expect("alerts serialize");
    let schema = schema();
    let properties = &schema["properties"];
    assert_eq!(keys(&json), keys(properties));
    assert_eq!(
        strings(&schema["required"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        keys(properties)
    );
    let position = &schema["$defs"]["position"]["properties"];
    assert_eq!(keys(&json["source"][0]), keys(position));

    let vocab = |values: Vec<&str>, field: &str| {
        assert_eq!(strings(&properties[field]["enum"]), values, "{field}");
    };
    vocab(
        Category::ALL.iter().map(|c| c.as_str()).collect(),
        "category",
    );
    vocab(
        Severity::ALL.iter().map(|c| c.as_str()).collect(),
        "severity",
    );
    vocab(
        SrmLayer::ALL.iter().map(|c| c.as_str()).collect(),
        "srm_layer",
    );
}
