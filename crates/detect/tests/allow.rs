//! Rules read allow tables: a listed domain or bucket stops the alert, an expired row
//! stops suppressing, and a changed file applies to the next batch without reloading
//! the rules.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_detect::{AllowLists, RuleSet, load_fixtures};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn positives(rule: &str) -> RecordBatch {
    let dir = repo().join("testdata/rules").join(rule).join("positive");
    load_fixtures(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
        .expect("positive fixtures")
}

async fn alerting_events(rules: &RuleSet, rule: &str, batch: RecordBatch) -> Vec<String> {
    let mut ids: Vec<String> = rules
        .alerts(batch, "2026-01-01T00:00:00Z")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|a| a.rule_id == rule)
        .flat_map(|a| a.event_ids)
        .collect();
    ids.sort();
    ids
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write allow table");
}

#[tokio::test]
async fn trusted_domains_mute_grants_to_them_until_their_rows_expire() {
    let rule = "gcp-iam-granted-outside-org";
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "trusted_domains.csv",
        "domain,owner,reason,expires\n",
    );
    let allow = AllowLists::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e:?}"));
    let rules = RuleSet::load(Some(&repo().join("queries")), allow)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let batch = positives(rule);
    let all = alerting_events(&rules, rule, batch.clone()).await;
    assert!(all.len() >= 3, "{all:?}");

    // The file changes while the rules stay loaded: the next batch sees it.
    write(
        dir.path(),
        "trusted_domains.csv",
        "domain,owner,reason,expires\n\
         gmail.com,secops@example.com,test,2999-01-01\n\
         contractor.dev,secops@example.com,test,2999-01-01\n\
         partner.io,secops@example.com,test,2999-01-01\n",
    );
    let refresh = rules.allow().refresh();
    assert_eq!(refresh.reloaded.len(), 1, "{refresh:?}");
    assert!(refresh.failed.is_empty() && refresh.expired.is_empty());
    assert_eq!(
        alerting_events(&rules, rule, batch.clone()).await,
        Vec::<String>::new()
    );

    // One domain's row expired: grants to it alert again, and it is reported.
    write(
        dir.path(),
        "trusted_domains.csv",
        "domain,owner,reason,expires\n\
         gmail.com,secops@example.com,test,2020-01-01\n\
         contractor.dev,secops@example.com,test,2999-01-01\n\
         partner.io,secops@example.com,test,2999-01-01\n",
    );
    let refresh = rules.allow().refresh();
    assert_eq!(refresh.expired.len(), 1, "{refresh:?}");
    assert_eq!(refresh.expired[0].values, "domain=gmail.com");
    // The fixtures name their events after the outsider they add.
    let gmail: Vec<String> = all.into_iter().filter(|id| id.contains("gmail")).collect();
    assert!(!gmail.is_empty());
    assert_eq!(alerting_events(&rules, rule, batch).await, gmail);
}

/// Every `bucketName` in the rules' positive fixtures.
fn bucket_names(rules: [&str; 2]) -> std::collections::BTreeSet<String> {
    fn walk(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value.as_str() {
                        Some(name) if key == "bucketName" => {
                            out.insert(name.to_owned());
                        }
                        _ => walk(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for rule in rules {
        let dir = repo().join("testdata/rules").join(rule).join("positive");
        for entry in std::fs::read_dir(dir).expect("fixtures").flatten() {
            let text = std::fs::read_to_string(entry.path()).expect("fixture");
            walk(
                &serde_json::from_str(&text).expect("JSON fixture"),
                &mut out,
            );
        }
    }
    out
}

#[tokio::test]
async fn known_public_buckets_are_not_reported_as_made_public() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = ["aws-s3-bucket-policy-public", "aws-s3-bucket-acl-public"];
    let builtin = RuleSet::load(
        Some(&repo().join("queries")),
        AllowLists::builtin().expect("loads"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut listed = String::from("bucket,owner,reason,expires\n");
    for rule in rules {
        let alerts = alerting_events(&builtin, rule, positives(rule)).await;
        assert!(alerts.len() >= 2, "{rule}: {alerts:?}");
    }
    for bucket in bucket_names(rules) {
        listed.push_str(&format!(
            "{bucket},web@example.com,public website,2999-01-01\n"
        ));
    }
    write(dir.path(), "public_buckets.csv", &listed);
    let allow = AllowLists::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e:?}"));
    let muted = RuleSet::load(Some(&repo().join("queries")), allow)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for rule in rules {
        assert_eq!(
            alerting_events(&muted, rule, positives(rule)).await,
            Vec::<String>::new(),
            "{rule}"
        );
    }
}

#[tokio::test]
async fn a_rule_naming_an_unknown_allow_table_fails_to_load_with_its_line() {
    let text = std::fs::read_to_string(repo().join("queries/gcp-iam-granted-outside-org.sql"))
        .expect("rule is readable")
        .replace("allow.trusted_domains", "allow.trusted_domain");
    let error = RuleSet::from_sources(vec![(PathBuf::from("q.sql"), text)])
        .await
        .expect_err("an unknown table");
    let message = error.to_string();
    assert!(
        message.contains("q.sql:") && message.contains("trusted_domain"),
        "{message}"
    );
}
