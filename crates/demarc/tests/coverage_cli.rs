//! `demarc coverage` from the command line: the map of the loaded rules onto the
//! control catalog, and its errors.

mod common;

use common::{demarc, repo};

fn stdout(args: &[&str]) -> String {
    let out = demarc(args);
    assert!(
        out.status.success(),
        "demarc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn failure(args: &[&str]) -> String {
    let out = demarc(args);
    assert!(!out.status.success(), "demarc {args:?} should fail");
    String::from_utf8(out.stderr).expect("UTF-8")
}

#[test]
fn the_table_and_the_json_report_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_file = dir.path().join("coverage.json");
    stdout(&[
        "coverage",
        "--format",
        "json",
        "--out",
        json_file.to_str().expect("UTF-8"),
    ]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_file).expect("report written")).expect("JSON");
    let s = &json["summary"];
    let table = stdout(&["coverage"]);
    let headline = format!(
        "{} rules (built in) watch {} of {} catalog controls; {} without a rule. Fixtures: \
         built in.",
        s["rules"],
        s["watched"],
        s["controls"],
        s["unwatched"].as_array().expect("unwatched").len()
    );
    assert!(table.starts_with(&headline), "{table}");
    for id in s["unwatched"].as_array().expect("unwatched") {
        let id = id.as_str().expect("id");
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(id) && l.trim_end().ends_with(" -")),
            "{id} is listed without a rule:\n{table}"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("aws-vpc-flow-logs")
                && l.trim_end().ends_with("aws-logging-sources-disabled")),
        "{table}"
    );
}

#[test]
fn rules_from_a_folder_are_mapped_with_the_fixtures_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rule = std::fs::read_to_string(repo().join("queries/aws-cloudtrail-logging-stopped.sql"))
        .expect("rule is readable");
    std::fs::write(dir.path().join("r.sql"), &rule).expect("rule written");
    let rules = dir.path().to_str().expect("UTF-8");

    let table = stdout(&["coverage", "--rules", rules]);
    assert!(
        table.starts_with("1 rules (") && table.contains("Fixtures: unknown."),
        "{table}"
    );
    let fixtures = repo().join("testdata/rules");
    let json: serde_json::Value = serde_json::from_str(&stdout(&[
        "coverage",
        "--rules",
        rules,
        "--fixtures",
        fixtures.to_str().expect("UTF-8"),
        "--format",
        "json",
    ]))
    .expect("JSON");
    let rule_row = &json["rules"][0];
    assert_eq!(rule_row["id"], "aws-cloudtrail-logging-stopped");
    let files = |side: &str| {
        std::fs::read_dir(fixtures.join("aws-cloudtrail-logging-stopped").join(side))
            .expect("fixtures")
            .count()
    };
    assert_eq!(rule_row["fixtures"]["positive"], files("positive"));
    assert_eq!(rule_row["fixtures"]["negative"], files("negative"));
    assert_eq!(json["summary"]["watched"], 1);

    // A control id the catalog does not have names the rule's file and line.
    let line = rule
        .lines()
        .position(|l| l.starts_with("-- controls:"))
        .expect("a controls line")
        + 1;
    std::fs::write(
        dir.path().join("r.sql"),
        rule.replace("aws-cloudtrail-logging", "aws-cloudtrail-loging"),
    )
    .expect("rule written");
    let stderr = failure(&["coverage", "--rules", rules]);
    assert!(
        stderr.contains(&format!(
            "r.sql:{line}: control `aws-cloudtrail-loging` is not in the catalog"
        )),
        "{stderr}"
    );
}

#[test]
fn a_bad_catalog_names_its_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[control]]\nid = \"x\"\nprovider = \"aws\"\ncontrol = \"c\"\ncategory = \"public\"\n\
         srm-layer = \"data\"\nservice-models = [\"iaas\"]\nservice = \"s3\"\n\
         operations = [\"PutBucketAcl\"]\ncondition = \"any\"\n",
    )
    .expect("catalog written");
    let stderr = failure(&["coverage", "--catalog", dir.path().to_str().expect("UTF-8")]);
    assert!(
        stderr.contains("mine.toml:5: unknown category `public`; expected one of:"),
        "{stderr}"
    );
}
