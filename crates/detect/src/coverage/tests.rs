use std::path::{Path, PathBuf};

use super::*;
use crate::AllowLists;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

const CATALOG: &str = r#"
[[control]]
id = "bucket-policy"
provider = "aws"
control = "Bucket policies allow no anonymous principal"
category = "public-exposure"
srm-layer = "data"
service-models = ["paas", "saas"]
service = "s3"
operations = ["PutBucketPolicy"]
condition = "principal *"

[[control]]
id = "trail-on"
provider = "aws"
control = "Trails keep recording"
category = "logging-disabled"
srm-layer = "logging"
service-models = ["iaas"]
service = "cloudtrail"
operations = ["StopLogging"]
condition = "any"
planned = true
"#;

fn rule(id: &str, extra: &str, sql: &str) -> (PathBuf, String) {
    (
        PathBuf::from(format!("rules/{id}.sql")),
        format!(
            "-- id: {id}\n-- title: t\n-- severity: high\n-- category: public-exposure\n\
             -- srm-layer: data\n-- service-models: paas\n-- attack: T1530\n\
             -- dedup: account_id\n-- summary: s\n{extra}{sql}\n"
        ),
    )
}

const POLICY_SQL: &str = "SELECT event_id, account_id FROM events WHERE operation = \
    'PutBucketPolicy' AND NOT EXISTS (SELECT 1 FROM allow.public_buckets b WHERE b.bucket \
    = events.resource)";

async fn rules(sources: Vec<(PathBuf, String)>, allow: &Path) -> RuleSet {
    let allow = AllowLists::load(Some(allow)).expect("allow tables load");
    RuleSet::from_sources_with(sources, allow)
        .await
        .expect("rules load")
}

fn catalog(dir: &Path) -> Catalog {
    write(dir, "catalog/aws.toml", CATALOG);
    Catalog::load(Some(&dir.join("catalog"))).expect("catalog loads")
}

#[tokio::test]
async fn maps_rules_fixtures_and_allow_rows_onto_the_catalog() {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = catalog(dir.path());
    write(
        dir.path(),
        "allow/public_buckets.csv",
        "bucket,owner,reason,expires\nsite,web,the website,2999-01-01\nold,web,gone,2001-01-01\n",
    );
    let rules = rules(
        vec![
            rule(
                "policy",
                "-- evasions: outcome, policy-semantics\n-- controls: bucket-policy\n",
                POLICY_SQL,
            ),
            rule("loose", "", "SELECT event_id, account_id FROM events"),
        ],
        &dir.path().join("allow"),
    )
    .await;
    for (side, name) in [
        ("positive", "plain.json"),
        ("positive", "policy-semantics--if-exists.json"),
        ("negative", "policy-semantics--source-ip.json"),
        ("negative", "api-defaults--x.json"),
    ] {
        write(dir.path(), &format!("fixtures/policy/{side}/{name}"), "{}");
    }
    let report = report(
        &rules,
        &catalog,
        &Fixtures::Dir(dir.path().join("fixtures")),
        "rules",
    )
    .expect("report");

    let s = &report.summary;
    assert_eq!((s.controls, s.watched), (2, 1));
    assert_eq!(s.unwatched, ["trail-on"]);
    assert_eq!(s.rules_outside_catalog, ["loose"]);
    assert_eq!(s.classes_without_fixture, ["policy/outcome"]);
    assert_eq!((s.muting_rows, s.expired_rows), (1, 1));

    // The policy control counts in paas and saas; the trail control in iaas only.
    let cells: Vec<(String, String, usize, usize)> = report
        .grid
        .iter()
        .map(|c| {
            (
                c.srm_layer.to_string(),
                c.service_model.to_string(),
                c.watched.len(),
                c.controls.len(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("data".into(), "paas".into(), 1, 1),
            ("data".into(), "saas".into(), 1, 1),
            ("logging".into(), "iaas".into(), 0, 1),
        ]
    );

    let policy = &report.rules[0];
    assert_eq!(policy.providers, ["aws"]);
    assert_eq!(policy.allow_tables, ["public_buckets"]);
    assert_eq!(policy.muted_by, 1, "the expired row mutes nothing");
    assert_eq!(
        policy.fixtures,
        Some(FixtureCount {
            positive: 2,
            negative: 2
        })
    );
    let classes: Vec<(&str, bool, Option<FixtureCount>)> = policy
        .evasions
        .iter()
        .map(|c| (c.class.as_str(), c.declared, c.fixtures))
        .collect();
    assert_eq!(
        classes,
        [
            (
                "api-defaults",
                false,
                Some(FixtureCount {
                    positive: 0,
                    negative: 1
                })
            ),
            (
                "policy-semantics",
                true,
                Some(FixtureCount {
                    positive: 1,
                    negative: 1
                })
            ),
            ("outcome", true, Some(FixtureCount::default())),
        ]
    );
    let loose = &report.rules[1];
    assert!(loose.providers.is_empty() && loose.allow_tables.is_empty());
    assert_eq!(loose.fixtures, Some(FixtureCount::default()));

    let muting: Vec<(&str, bool, &[String])> = report
        .allow
        .iter()
        .map(|a| {
            (
                a.entry.values[0].1.as_str(),
                a.entry.expired,
                a.rules.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        muting,
        [
            ("site", false, &["policy".to_owned()][..]),
            ("old", true, &["policy".to_owned()][..]),
        ]
    );

    // Every view names what the report holds.
    let text = table(&report);
    assert!(
        text.contains("2 rules (rules) watch 1 of 2 catalog controls; 1 without a rule"),
        "{text}"
    );
    assert!(text.contains("trail-on"), "{text}");
    assert!(
        text.contains("declared without a fixture: policy/outcome"),
        "{text}"
    );
    let page = html(&report);
    assert!(page.contains("<td class=\"num missing\">!</td>"), "{page}");
    assert!(page.contains("site"), "{page}");
    assert_eq!(page.matches("<tr class=\"gap\">").count(), 1);
}

#[tokio::test]
async fn a_rule_naming_an_unknown_control_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = catalog(dir.path());
    write(dir.path(), "allow/.keep", "");
    let rules = rules(
        vec![rule(
            "policy",
            "-- controls: bucket-policy, bucket-polcy\n",
            POLICY_SQL,
        )],
        &dir.path().join("allow"),
    )
    .await;
    let errors = report(&rules, &catalog, &Fixtures::Unknown, "rules").expect_err("unknown id");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 10);
    assert!(
        errors[0]
            .to_string()
            .starts_with("rules/policy.sql:10: control `bucket-polcy` is not in the catalog"),
        "{}",
        errors[0]
    );
}

#[test]
fn catalog_problems_name_file_line_and_what_to_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = CATALOG
        .replace(
            "category = \"logging-disabled\"",
            "category = \"logging-off\"",
        )
        .replace(
            "provider = \"aws\"\ncontrol = \"Bucket",
            "provider = \"azure\"\ncontrol = \"Bucket",
        );
    write(dir.path(), "catalog/a.toml", &bad);
    write(
        dir.path(),
        "catalog/b.toml",
        &CATALOG[..CATALOG
            .find("[[control]]\nid = \"trail-on\"")
            .expect("second")],
    );
    write(
        dir.path(),
        "catalog/c.toml",
        "[[control]]\nid = \"x\"\ncolour = \"red\"\n",
    );
    let errors = Catalog::load(Some(&dir.path().join("catalog"))).expect_err("problems");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    assert!(
        text[0].contains("a.toml:4: provider `azure` is not one of: aws, gcp"),
        "{text:#?}"
    );
    assert!(
        text[1].contains("a.toml:17: unknown category `logging-off`"),
        "{text:#?}"
    );
    assert!(
        text[2].contains("b.toml:2: control id `bucket-policy` is already used at"),
        "{text:#?}"
    );
    assert!(
        text[3].contains("c.toml:3:") && text[3].contains("colour"),
        "{text:#?}"
    );
}

#[tokio::test]
async fn the_built_in_rules_watch_every_catalog_control_not_marked_planned() {
    let catalog = Catalog::builtin().expect("the built-in catalog loads");
    let rules = RuleSet::builtin().await.expect("built-in rules");
    for rule in rules.rules() {
        assert!(
            !rule.controls.is_empty(),
            "{} names no catalog control in its `-- controls:` header",
            rule.meta.id
        );
    }
    let report = report(&rules, &catalog, &Fixtures::Builtin, "built in").expect("report");
    for c in &report.controls {
        assert_eq!(
            c.rules.is_empty(),
            c.control.planned,
            "{}: planned = {} but watched by {:?}; `planned` marks exactly the controls no \
             built-in rule watches",
            c.control.id,
            c.control.planned,
            c.rules
        );
    }
    // The built-in fixtures pass `rules test`, so no declared class lacks one.
    assert!(report.summary.classes_without_fixture.is_empty());
    assert!(
        report
            .rules
            .iter()
            .all(|r| r.fixtures.is_some_and(|f| f.positive > 0 && f.negative > 0))
    );
}
