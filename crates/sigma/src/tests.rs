use std::path::Path;

use super::*;

fn one(yaml: &str) -> Result<Imported, ImportError> {
    let mut all = import(Path::new("rules/r.yml"), yaml, &Options::default());
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().expect("one")
}

const BASE: &str = "title: 'Bucket policy changed: public'
id: 0b9f8e8e-0000-4000-8000-000000000001
status: test
author: Someone, Someone Else
date: 2024-01-01
tags:
    - attack.exfiltration
    - attack.t1530
logsource:
    product: aws
    service: cloudtrail
level: high
";

#[test]
fn selections_filters_and_modifiers_become_sql() {
    let rule = one(&format!(
        "{BASE}detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName|startswith:
            - 'PutBucket'
            - 'DeleteBucket'
        requestParameters.policy|contains|all: ['\"\\*\"', 'Allow']
    filter:
        userIdentity.arn|re: '.*:role/Admin.*'
        errorCode: null
    condition: selection and not filter
"
    ))
    .expect("imports");
    assert_eq!(rule.id, "sigma-r");
    let sql = rule.rule.split("WHERE ").nth(1).expect("a WHERE");
    assert_eq!(
        sql.trim(),
        "provider = 'aws'\n  AND ((lower(service) = 's3.amazonaws.com' AND (operation ILIKE \
         'PutBucket%' ESCAPE '\\' OR operation ILIKE 'DeleteBucket%' ESCAPE '\\') AND \
         (coalesce(json_as_text(request, 'policy'), nullif(json_get_json(request, 'policy'), \
         'null')) ILIKE '%\"*\"%' ESCAPE '\\' AND coalesce(json_as_text(request, 'policy'), \
         nullif(json_get_json(request, 'policy'), 'null')) ILIKE '%Allow%' ESCAPE '\\')) AND \
         NOT coalesce((regexp_like(coalesce(json_as_text(raw, 'userIdentity', 'arn'), \
         nullif(json_get_json(raw, 'userIdentity', 'arn'), 'null')), '.*:role/Admin.*') AND \
         error_code IS NULL), false))"
    );
    // The header keeps the Sigma metadata and attribution.
    for line in [
        "-- title: Bucket policy changed: public",
        "-- severity: high",
        "-- category: public-exposure",
        "-- attack: T1530",
        "-- > Author Someone, Someone Else.",
        "-- > Licence Detection Rule License (DRL) 1.1, https://github.com/SigmaHQ/Detection-Rule-License.",
        "-- > Reads the raw event (kept unless --no-raw or keep_raw = false) for userIdentity.arn.",
    ] {
        assert!(
            rule.rule.lines().any(|l| l == line),
            "{line}\n{}",
            rule.rule
        );
    }
    assert_eq!(rule.positives.len(), 2);
    assert_eq!(rule.negatives.len(), 2);
    let positive: serde_json::Value =
        serde_json::from_str(&rule.positives[0].1).expect("JSON event");
    assert_eq!(positive["eventSource"], "s3.amazonaws.com");
    assert_eq!(positive["eventName"], "PutBucket");
    let policy = positive["requestParameters"]["policy"]
        .as_str()
        .expect("policy");
    assert!(
        policy.contains("\"*\"") && policy.contains("Allow"),
        "{policy}"
    );
    // The second positive flips the case of the values the test ignores case for.
    let flipped: serde_json::Value =
        serde_json::from_str(&rule.positives[1].1).expect("JSON event");
    assert_eq!(flipped["eventSource"], "S3.AMAZONAWS.COM");
}

#[test]
fn what_cannot_be_compiled_is_an_error_naming_the_rule_and_field() {
    let with = |detection: &str| {
        one(&format!("{BASE}detection:\n{detection}"))
            .expect_err("an error")
            .to_string()
    };
    let e = with("    selection:\n        EventName: x\n    condition: selection\n");
    assert!(
        e.starts_with("rules/r.yml: rule `Bucket policy changed: public`: `EventName` is not a CloudTrail record field"),
        "{e}"
    );
    let e =
        with("    selection:\n        eventName|re: '(?<!Get)Object'\n    condition: selection\n");
    assert!(
        e.contains("field `eventName`: the `re` pattern cannot run"),
        "{e}"
    );
    let e = with(
        "    selection:\n        sourceIPAddress|cidr: 10.0.0.0/8\n    condition: selection\n",
    );
    assert!(
        e.contains("field `sourceIPAddress`: the modifier `cidr` is not supported"),
        "{e}"
    );
    let e = one(&BASE.replace("service: cloudtrail", "service: s3").replace(
        "level: high\n",
        "level: high\ndetection:\n    s:\n        eventName: x\n    condition: s\n",
    ))
    .expect_err("logsource")
    .to_string();
    assert!(
        e.contains("logsource product `aws`, service `s3` is not one demarc reads"),
        "{e}"
    );
}

#[test]
fn quantified_conditions_and_keywords() {
    let rule = one(&format!(
        "{BASE}detection:
    selection_a:
        eventName: A
    selection_b:
        eventName: B
    keywords:
        - 'needle'
    condition: 1 of selection_* or keywords
"
    ))
    .expect("imports");
    assert!(
        rule.rule.contains("((lower(operation) = 'a' OR lower(operation) = 'b') OR raw ILIKE '%needle%' ESCAPE '\\')"),
        "{}",
        rule.rule
    );
}
