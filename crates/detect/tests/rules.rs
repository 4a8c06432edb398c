//! Every rule in `queries/` loads (header and plan), and its fixtures in
//! `testdata/rules/<rule-id>/{positive,negative}/` behave: every positive event alerts,
//! no negative event does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_detect::{MIN_FIXTURES, RuleSet, check_rule_fixtures, load_fixtures};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures(dir: &Path) -> (Option<RecordBatch>, BTreeSet<String>) {
    load_fixtures(dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The rules of `queries/` with the fixtures' allow tables (`testdata/allow/`: the
/// organisation the fixtures are written for), loaded once for all the per-rule tests.
async fn queries() -> &'static RuleSet {
    static RULES: tokio::sync::OnceCell<RuleSet> = tokio::sync::OnceCell::const_new();
    RULES
        .get_or_init(|| async {
            let allow = demarc_detect::AllowLists::load(Some(&repo().join("testdata/allow")))
                .unwrap_or_else(|e| panic!("{e:?}"));
            RuleSet::load(Some(&repo().join("queries")), allow)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .await
}

/// The rule's positives all alert, its negatives do not, and it has enough of both.
async fn check_rule(id: &str) {
    let result = check_rule_fixtures(queries().await, id, &repo().join("testdata/rules"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(result.passed(), "{id}: {}", result.problems.join("; "));
    assert!(result.positives >= MIN_FIXTURES && result.negatives >= MIN_FIXTURES);
}

// `fixtures_<rule>()` for every file in `queries/`.
include!(concat!(env!("OUT_DIR"), "/rule_tests.rs"));

#[tokio::test]
async fn every_rule_has_a_fixture_folder_and_every_folder_a_rule() {
    let rules: BTreeSet<String> = queries()
        .await
        .rules()
        .iter()
        .map(|r| r.meta.id.clone())
        .collect();
    let folders: BTreeSet<String> = std::fs::read_dir(repo().join("testdata/rules"))
        .expect("fixtures folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rules, folders);
}

#[tokio::test]
async fn a_rule_that_does_not_plan_is_reported_with_file_and_line() {
    let text = std::fs::read_to_string(repo().join("queries/aws-cloudtrail-logging-stopped.sql"))
        .expect("rule is readable");
    let broken = text.replace("operation IN", "operaton IN");
    let path = PathBuf::from("queries/broken.sql");
    let err = RuleSet::from_sources(vec![(path, broken)])
        .await
        .expect_err("unknown column");
    let message = err.to_string();
    assert!(message.contains("queries/broken.sql:14:"), "{message}");
    assert!(message.contains("operaton"), "{message}");

    let no_event_id = text.replace("SELECT event_id, time,", "SELECT time,");
    let err = RuleSet::from_sources(vec![(PathBuf::from("q.sql"), no_event_id)])
        .await
        .expect_err("no event_id");
    assert!(err.to_string().contains("must return `event_id`"), "{err}");

    let bad_summary = text.replace("{resource}", "{trail}");
    let err = RuleSet::from_sources(vec![(PathBuf::from("q.sql"), bad_summary)])
        .await
        .expect_err("unknown placeholder");
    assert!(
        err.to_string()
            .contains("q.sql:9: summary placeholder `{trail}`"),
        "{err}"
    );
}

#[tokio::test]
async fn matches_become_alerts_with_stable_ids() {
    let rules = RuleSet::from_dir(&repo().join("queries"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = repo().join("testdata/rules/aws-cloudtrail-logging-stopped/positive");
    let (batch, ids) = fixtures(&dir);
    let batch = batch.expect("rows");
    let first = rules
        .alerts(batch.clone(), "2026-03-02T10:00:05Z")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alerts: Vec<_> = first
        .iter()
        .filter(|a| a.rule_id == "aws-cloudtrail-logging-stopped")
        .collect();
    assert_eq!(alerts.len(), ids.len());
    let stop = alerts
        .iter()
        .find(|a| a.event_ids == ["pos-stop"])
        .expect("alert for the StopLogging event");
    assert_eq!(
        stop.summary,
        "arn:aws:iam::111122223333:user/alice ran StopLogging on trail \
         arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail in account 111122223333"
    );
    assert_eq!(stop.category.as_str(), "logging-disabled");
    assert_eq!(stop.event_time, "2026-03-02T10:00:00Z");
    assert_eq!(stop.account_id.as_deref(), Some("111122223333"));
    assert!(
        stop.source[0].origin.source.ends_with("stop-logging.json"),
        "{:?}",
        stop.source
    );
    let json = serde_json::to_value(stop).expect("alert serializes");
    for field in [
        "alert_id",
        "rule_id",
        "title",
        "category",
        "severity",
        "srm_layer",
        "attack",
        "summary",
        "event_ids",
        "event_time",
        "detected_at",
        "provider",
        "account_id",
        "region",
        "actor",
        "resource",
        "source",
    ] {
        assert!(json.get(field).is_some(), "alert lacks `{field}`: {json}");
    }

    // A replay of the same events yields the same alert ids.
    let again = rules
        .alerts(batch, "2026-03-03T00:00:00Z")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ids_of = |alerts: &[demarc_model::Alert]| -> BTreeSet<String> {
        alerts.iter().map(|a| a.alert_id.clone()).collect()
    };
    assert_eq!(ids_of(&first), ids_of(&again));
}

#[tokio::test]
async fn the_compiled_in_rules_are_the_queries_folder() {
    let builtin = RuleSet::builtin().await.unwrap_or_else(|e| panic!("{e}"));
    let from_dir = RuleSet::from_dir(&repo().join("queries"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ids =
        |set: &RuleSet| -> Vec<String> { set.rules().iter().map(|r| r.meta.id.clone()).collect() };
    assert_eq!(ids(&builtin), ids(&from_dir));
}

/// The bundled real detonation logs trigger the rules written for them.
#[tokio::test]
async fn real_detonation_logs_alert() {
    let rules = RuleSet::builtin().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = repo().join("testdata/samples/aws-stratus-red-team");
    let (batch, _) = fixtures(&dir);
    let alerts = rules
        .alerts(batch.expect("rows"), "2026-03-02T00:00:00Z")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let fired: BTreeSet<(String, String)> = alerts
        .iter()
        .map(|a| {
            let file = a.source[0]
                .origin
                .source
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            (a.rule_id.clone(), file)
        })
        .collect();
    // Every detonation that weakens a control alerts, and nothing else does: the
    // snapshot, AMI and RDS-snapshot detonations share with one other account (outside
    // the organisation: no trusted accounts are listed, but not public), and the
    // admin-user detonation attaches AdministratorAccess and mints an access key for
    // the user it created.
    let expected: BTreeSet<(String, String)> = [
        (
            "aws-cloudtrail-logging-stopped",
            "aws.defense-evasion.cloudtrail-stop.json",
        ),
        (
            "aws-cloudtrail-logging-stopped",
            "aws.defense-evasion.cloudtrail-delete.json",
        ),
        (
            "aws-cloudtrail-selectors-exclude-management",
            "aws.defense-evasion.cloudtrail-event-selectors.json",
        ),
        (
            "aws-logging-sources-disabled",
            "aws.defense-evasion.vpc-remove-flow-logs.json",
        ),
        (
            "aws-console-login-without-mfa",
            "aws.initial-access.console-login-without-mfa.json",
        ),
        (
            "aws-admin-policy-attached",
            "aws.persistence.iam-create-admin-user.json",
        ),
        (
            "aws-credentials-for-another-user",
            "aws.persistence.iam-create-admin-user.json",
        ),
        // The source obfuscated `0.0.0.0/0` into `208.236.235.254/0`: still a /0 block.
        (
            "aws-security-group-admin-port-open",
            "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
        ),
        (
            "aws-snapshot-shared-outside",
            "aws.exfiltration.ec2-share-ami.json",
        ),
        (
            "aws-snapshot-shared-outside",
            "aws.exfiltration.ec2-share-ebs-snapshot.json",
        ),
        (
            "aws-snapshot-shared-outside",
            "aws.exfiltration.rds-share-snapshot.json",
        ),
    ]
    .into_iter()
    .map(|(r, f)| (r.to_owned(), f.to_owned()))
    .collect();
    assert_eq!(fired, expected);
}

#[tokio::test]
async fn the_rules_table_in_the_docs_matches_the_rules() {
    let docs = std::fs::read_to_string(repo().join("docs/rules.md")).expect("docs/rules.md");
    let table = docs
        .split("## The rules")
        .nth(1)
        .expect("docs/rules.md has a `## The rules` section");
    let documented: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(str::to_owned)
        .collect();
    let actual: Vec<String> = queries()
        .await
        .rules()
        .iter()
        .map(|r| {
            let m = &r.meta;
            format!(
                "| `{}` | {} | {} | {} |",
                m.id, m.category, m.severity, m.title
            )
        })
        .collect();
    assert_eq!(documented, actual);
}

/// JSON functions run after the cheap column tests, on the rows that passed them:
/// no rule's plan computes a JSON expression below its filter for every event.
#[tokio::test]
async fn json_functions_stay_behind_the_column_filters() {
    let rules = queries().await;
    for rule in rules.rules() {
        let plan = rules
            .explain(&rule.meta.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("the rule exists");
        assert!(
            !plan.contains("__datafusion_extracted"),
            "{}:\n{plan}",
            rule.meta.id
        );
        assert!(!plan.contains("__common_expr"), "{}:\n{plan}", rule.meta.id);
    }
}

/// Every built-in rule says which evasion classes apply to it, and a failed attempt
/// (`outcome`) applies to all: each has a fixture proving it stays silent on one.
#[tokio::test]
async fn every_rule_declares_its_evasion_classes_with_outcome_among_them() {
    for rule in queries().await.rules() {
        assert!(
            rule.evasions.contains(&demarc_detect::Evasion::Outcome),
            "{}: {:?}",
            rule.meta.id,
            rule.evasions
        );
    }
}

#[tokio::test]
async fn rules_reading_the_original_json_are_known() {
    let builtin = RuleSet::builtin().await.expect("built-in rules");
    assert!(
        !builtin.reads_raw(),
        "no built-in rule reads `raw`: keeping it for them would slow every run"
    );
    let text = std::fs::read_to_string(repo().join("queries/aws-cloudtrail-logging-stopped.sql"))
        .expect("rule is readable");
    let raw = text.replace(
        "AND outcome = 'success'",
        "AND outcome = 'success' AND json_as_text(raw, 'userIdentity', 'type') = 'Root'",
    );
    assert_ne!(raw, text);
    let rules = RuleSet::from_sources(vec![(PathBuf::from("r.sql"), raw)])
        .await
        .expect("rule plans");
    assert!(rules.reads_raw());
}
