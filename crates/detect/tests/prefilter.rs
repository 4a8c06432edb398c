//! Rules are skipped on batches where none of their column tests can pass, and skipping
//! never changes what they find.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};
use demarc_synth::{CloudTrailGenerator, GcpGenerator};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn queries() -> RuleSet {
    RuleSet::from_dir(&repo().join("queries"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The MFA rule of `queries/`, its `WHERE` clause replaced.
fn mfa_rule_with(where_clause: &str) -> String {
    let text = std::fs::read_to_string(repo().join("queries/aws-mfa-device-removed.sql"))
        .expect("rule is readable");
    let start = text.find("WHERE").expect("a WHERE clause");
    format!("{}{where_clause}\n", &text[..start])
}

async fn prefilter_of(sql: String) -> String {
    let rules = RuleSet::from_sources(vec![(PathBuf::from("q.sql"), sql)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rules
        .prefilter("aws-mfa-device-removed")
        .expect("the rule")
        .to_string()
}

#[tokio::test]
async fn the_tests_are_read_from_the_rules_where_clause() {
    let rules = queries().await;
    // Read off the rule's SQL: provider, service, two operations and the outcome.
    assert_eq!(
        rules
            .prefilter("aws-mfa-device-removed")
            .expect("the rule")
            .to_string(),
        "operation in ('DeactivateMFADevice', 'DeleteVirtualMFADevice') and \
         outcome in ('success') and provider in ('aws') and service in ('iam.amazonaws.com')"
    );
    // Every rule of `queries/` names its provider, so each runs only on batches that
    // hold events of its cloud. (Windowed rules run over their windows, which keep
    // only the rows their tests pass, and name their provider there.)
    for rule in rules.rules().iter().filter(|r| r.window.is_none()) {
        let prefilter = rules
            .prefilter(&rule.meta.id)
            .expect("the rule")
            .to_string();
        assert!(
            prefilter.contains("provider in ('aws')") || prefilter.contains("provider in ('gcp')"),
            "{}: {prefilter}",
            rule.meta.id
        );
    }
    // The windowed rules' tests reach the normalizer too: it still builds rows only for
    // events some rule may read, a failed call among them but not a successful one.
    let filter = rules.row_filter().expect("a row filter").to_string();
    for test in ["outcome in ('failure')", "operation in ('GetObject')"] {
        assert!(filter.contains(test), "{test}: {filter}");
    }
}

#[tokio::test]
async fn only_tests_every_returned_row_passed_are_used() {
    // `OR` of equalities on one column: a set of values.
    assert_eq!(
        prefilter_of(mfa_rule_with(
            "WHERE (operation = 'A' OR operation = 'B') AND outcome = 'success'"
        ))
        .await,
        "operation in ('A', 'B') and outcome in ('success')"
    );
    // `OR` across columns, `NOT IN`, `<>` and functions say nothing about one column.
    assert_eq!(
        prefilter_of(mfa_rule_with(
            "WHERE (operation = 'A' OR service = 'x') AND region NOT IN ('r') \
             AND account_id <> 'a' AND lower(operation) = 'b'"
        ))
        .await,
        ""
    );
    // Tests on the output of a subquery's projection are not tests on the table.
    let text = std::fs::read_to_string(repo().join("queries/aws-mfa-device-removed.sql"))
        .expect("rule is readable");
    let start = text.find("SELECT").expect("a SELECT");
    let nested = format!(
        "{}SELECT event_id, time, account_id, region, actor_principal, operation, resource \
         FROM (SELECT event_id, time, account_id, region, actor_principal, \
         'DeleteVirtualMFADevice' AS operation, resource FROM events WHERE provider = 'aws') \
         WHERE operation = 'DeleteVirtualMFADevice'\n",
        &text[..start]
    );
    let found = prefilter_of(nested).await;
    assert!(!found.contains("operation"), "{found}");
    // Rows of an aggregate are not rows of the table: a count over no row is one row.
    let grouped = format!(
        "{}SELECT min(event_id) AS event_id, min(time) AS time, account_id, min(region) AS \
         region, min(actor_principal) AS actor_principal, min(operation) AS operation, \
         min(resource) AS resource FROM events WHERE provider = 'aws' GROUP BY account_id\n",
        &text[..start]
    );
    assert_eq!(prefilter_of(grouped).await, "");
}

/// `n` generated events of both clouds, a tenth of them violations, normalized.
fn generated(n: usize) -> RecordBatch {
    let mut aws = CloudTrailGenerator::new(3).with_violation_rate(0.1);
    let mut gcp = GcpGenerator::new(4);
    let mut normalizer = Normalizer::new(Options::default());
    for i in 0..n {
        let event = if i % 4 == 0 { gcp.entry() } else { aws.event() };
        normalizer.push(
            event.to_string().as_bytes(),
            &Origin::kafka("t", 0, i as i64),
        );
    }
    assert!(normalizer.take_rejects().is_empty());
    normalizer.take_batch().expect("rows")
}

#[tokio::test]
async fn skipping_rules_changes_no_alert() {
    let batch = generated(4_000);
    let with = queries().await;
    let without = queries().await.with_prefilters(false);
    let mut skipped = 0;
    let mut alerts = 0;
    // Small batches, where most rules have nothing to look at.
    for start in (0..batch.num_rows()).step_by(50) {
        let slice = batch.slice(start, 50.min(batch.num_rows() - start));
        skipped += with.runnable(&slice).iter().filter(|run| !**run).count();
        let ids = |alerts: Vec<demarc_model::Alert>| {
            let mut ids: Vec<String> = alerts.into_iter().map(|a| a.alert_id).collect();
            ids.sort();
            ids
        };
        let a = ids(with.alerts(slice.clone(), "t").await.expect("alerts"));
        let b = ids(without.alerts(slice, "t").await.expect("alerts"));
        assert_eq!(a, b);
        alerts += a.len();
    }
    assert!(alerts >= 50, "only {alerts} alerts");
    assert!(skipped > 0, "no rule was ever skipped");
    assert!(without.runnable(&batch).iter().all(|run| *run));
}

#[tokio::test]
async fn row_filters_read_ors_of_ands_patterns_and_like() {
    let rule = |id: &str, where_clause: &str| {
        let text = std::fs::read_to_string(repo().join("queries/aws-mfa-device-removed.sql"))
            .expect("rule is readable")
            .replace("aws-mfa-device-removed", id);
        let start = text.find("WHERE").expect("a WHERE clause");
        (
            PathBuf::from(format!("{id}.sql")),
            format!("{}{where_clause}\n", &text[..start]),
        )
    };
    let filter = |sources| async move {
        RuleSet::from_sources(sources)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .row_filter()
            .map(|f| f.to_string())
    };
    // An OR of ANDs becomes one alternative per branch; a test the normalizer cannot
    // make (a function of the request) leaves its branch wider, never narrower.
    assert_eq!(
        filter(vec![rule(
            "a",
            "WHERE provider = 'aws' AND ((service = 's' AND operation IN ('A', 'B')) \
             OR (operation = 'C' AND json_get_str(request, 'x') = 'y'))"
        )])
        .await
        .as_deref(),
        Some(
            "(provider in ('aws') and service in ('s') and operation in ('A', 'B')) or \
             (provider in ('aws') and operation in ('C'))"
        )
    );
    // Patterns: regexp_like (with its flags) and LIKE, as regular expressions. (The
    // planner turns this regexp_like into `ILIKE 'Put%'`.)
    let patterns = filter(vec![rule(
        "b",
        "WHERE regexp_like(operation, '^Put', 'i') AND service LIKE 's3.%'",
    )])
    .await
    .expect("a filter");
    assert!(
        patterns.contains("operation ~ '(?i)^Put(?s:.*)$'"),
        "{patterns}"
    );
    assert!(
        patterns.contains(r"service ~ '^s3\.(?s:.*)$'"),
        "{patterns}"
    );
    // A rule that may return any event of a cloud: every event needs its row.
    assert_eq!(
        filter(vec![
            rule("c", "WHERE operation = 'A'"),
            rule("d", "WHERE provider = 'aws' AND region = 'r'"),
        ])
        .await,
        Some("(operation in ('A')) or (provider in ('aws'))".to_owned())
    );
    assert_eq!(
        filter(vec![
            rule("c", "WHERE operation = 'A'"),
            rule("d", "WHERE region = 'r' OR operation = 'B'"),
        ])
        .await,
        None
    );
}
