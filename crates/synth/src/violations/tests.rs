//! The generator's violations and near misses against a coarse mirror of the catalog's AWS
//! rules: labels name exactly what was injected, and normal events never alert.

use std::collections::{BTreeMap, HashMap};

use super::*;

/// The rule of demarc's catalog an event would trigger: a coarse mirror of the AWS
/// rules in `queries/`, enough to tell violations from near misses and normal events.
/// (The generator must not depend on the detection crate; `demarc rules test
/// --fixtures` checks the real rules against generated archives.)
fn alerting_rule(event: &Value) -> Option<&'static str> {
    if event.get("errorCode").is_some() {
        return None;
    }
    let identity = &event["userIdentity"];
    let name = event["eventName"].as_str().unwrap_or_default();
    let service = event["eventSource"].as_str().unwrap_or_default();
    let request = &event["requestParameters"];
    let text = request.to_string();
    if identity["type"] == "Root"
        && identity.get("invokedBy").is_none()
        && (name == "ConsoleLogin" || event["readOnly"] != true)
    {
        return Some("aws-root-activity");
    }
    let str_at = |path: &[&str]| {
        path.iter()
            .try_fold(request, |v, k| v.get(*k))
            .and_then(Value::as_str)
    };
    match (service.trim_end_matches(".amazonaws.com"), name) {
        ("signin", "ConsoleLogin") => (identity["type"] == "IAMUser"
            && event["additionalEventData"]["MFAUsed"] != "Yes")
            .then_some("aws-console-login-without-mfa"),
        ("cloudtrail", "StopLogging" | "DeleteTrail") => Some("aws-cloudtrail-logging-stopped"),
        ("cloudtrail", "PutEventSelectors") => text
            .contains(r#""includeManagementEvents":false"#)
            .then_some("aws-cloudtrail-selectors-exclude-management"),
        ("s3", "PutBucketAcl") => (text.contains("public-read")
            || text.contains("authenticated-read")
            || text.contains("groups/global/"))
        .then_some("aws-s3-bucket-acl-public"),
        ("s3", "PutBucketPolicy") => {
            let statements = &request["bucketPolicy"]["Statement"];
            let public = statements.as_array().into_iter().flatten().any(|s| {
                s["Effect"] == "Allow"
                    && (s["Principal"] == "*" || s["Principal"]["AWS"] == "*")
                    && s.get("Condition").is_none()
            });
            public.then_some("aws-s3-bucket-policy-public")
        }
        ("s3", n) if n.contains("PublicAccessBlock") => (n.starts_with("Delete")
            || text.contains("false"))
        .then_some("aws-s3-public-access-block-removed"),
        ("s3", "PutBucketLogging") => {
            (!text.contains("LoggingEnabled")).then_some("aws-s3-access-logging-removed")
        }
        ("kms", "DisableKey" | "ScheduleKeyDeletion")
        | ("ec2", "DisableEbsEncryptionByDefault")
        | ("s3", "DeleteBucketEncryption") => Some("aws-encryption-key-disabled"),
        ("iam", "DeactivateMFADevice" | "DeleteVirtualMFADevice") => Some("aws-mfa-device-removed"),
        ("iam", "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy") => text
            .contains("AdministratorAccess")
            .then_some("aws-admin-policy-attached"),
        ("iam", "DeleteAccountPasswordPolicy") => Some("aws-password-policy-deleted"),
        ("ec2", "AuthorizeSecurityGroupIngress") => {
            let items = &request["ipPermissions"]["items"];
            let open = items.as_array().into_iter().flatten().any(|p| {
                let from = p["fromPort"].as_u64().unwrap_or(0);
                let to = p["toPort"].as_u64().unwrap_or(65_535);
                p.to_string().contains("0.0.0.0/0")
                    && (p["ipProtocol"] == "-1"
                        || [21, 22, 23, 445, 3306, 3389, 5432, 6379]
                            .iter()
                            .any(|port| (from..=to).contains(port)))
            });
            open.then_some("aws-security-group-admin-port-open")
        }
        ("ec2", "ModifyInstanceMetadataOptions" | "ModifyInstanceMetadataDefaults") => text
            .contains(r#""HttpTokens":"optional""#)
            .then_some("aws-imdsv1-enabled"),
        ("ec2", "ModifySnapshotAttribute" | "ModifyImageAttribute") => text
            .contains(r#""group":"all""#)
            .then_some("aws-ec2-snapshot-or-image-public"),
        ("ec2", "CreateNetworkAclEntry" | "ReplaceNetworkAclEntry") => (request["egress"] == false
            && str_at(&["aclProtocol"]) == Some("-1")
            && str_at(&["cidrBlock"]) == Some("0.0.0.0/0"))
        .then_some("aws-nacl-allows-all-inbound"),
        ("ec2", "DeleteFlowLogs")
        | (
            "config",
            "StopConfigurationRecorder" | "DeleteConfigurationRecorder" | "DeleteDeliveryChannel",
        )
        | ("guardduty", "DeleteDetector") => Some("aws-logging-sources-disabled"),
        ("rds", "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute") => text
            .contains(r#""valuesToAdd":["all"]"#)
            .then_some("aws-rds-snapshot-public"),
        ("rds", _) => {
            (request["publiclyAccessible"] == true).then_some("aws-rds-publicly-accessible")
        }
        ("lambda", n) if n.contains("FunctionUrlConfig") => {
            (str_at(&["authType"]) == Some("NONE")).then_some("aws-lambda-function-url-public")
        }
        _ => None,
    }
}

/// `events` events in files of 500, parsed back, with the labels written for them.
fn archive(seed: u64, rate: f64, events: usize) -> (Vec<Value>, Vec<crate::Label>) {
    let mut generator = CloudTrailGenerator::new(seed).with_violation_rate(rate);
    let (mut records, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..events / 500 {
        let (body, file_labels) = generator.labelled_records_file(500);
        let file: Value = serde_json::from_slice(&body).expect("the file is JSON");
        records.extend(file["Records"].as_array().expect("a Records array").clone());
        labels.extend(file_labels);
    }
    (records, labels)
}

#[test]
fn labels_name_exactly_the_injected_violations() {
    let (events, labels) = archive(5, 0.02, 15_000);
    let by_id: HashMap<&str, &str> = labels
        .iter()
        .map(|l| (l.event_id.as_str(), l.rule_id))
        .collect();
    assert_eq!(by_id.len(), labels.len(), "event ids are unique");
    for event in &events {
        let id = event["eventID"].as_str().expect("an eventID");
        assert_eq!(
            alerting_rule(event),
            by_id.get(id).copied(),
            "{}",
            serde_json::to_string_pretty(event).expect("JSON")
        );
    }
    // About 2 % violations, about 2 % near misses, every kind of violation.
    assert!(
        (240..360).contains(&labels.len()),
        "labels: {}",
        labels.len()
    );
    let denied_writes = events
        .iter()
        .filter(|e| e["errorCode"] == "AccessDenied" && e["readOnly"] == false)
        .count();
    assert!(denied_writes > 100, "denied write calls: {denied_writes}");
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for label in &labels {
        *per_rule.entry(label.rule_id).or_default() += 1;
    }
    assert_eq!(per_rule.len(), Violation::ALL.len(), "{per_rule:?}");
}

#[test]
fn injected_events_carry_the_full_envelope() {
    let (events, labels) = archive(9, 0.2, 2_000);
    let labelled: Vec<&Value> = labels
        .iter()
        .map(|l| {
            events
                .iter()
                .find(|e| e["eventID"] == l.event_id.as_str())
                .expect("every label names a written event")
        })
        .collect();
    let mut last_time = String::new();
    for event in labelled {
        for field in [
            "eventVersion",
            "eventTime",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "requestID",
            "recipientAccountId",
        ] {
            assert!(event[field].is_string(), "{field} in {event}");
        }
        assert!(
            ["IAMUser", "AssumedRole"]
                .contains(&event["userIdentity"]["type"].as_str().unwrap_or_default())
        );
        assert_eq!(event["eventType"], "AwsApiCall");
        assert_eq!(event["readOnly"], false);
        assert_eq!(event["eventID"].as_str().map(str::len), Some(36));
        let time = event["eventTime"].as_str().unwrap_or_default().to_owned();
        assert!(time >= last_time, "eventTime goes forward");
        last_time = time;
    }
}

#[test]
fn normal_events_never_alert() {
    let mut generator = CloudTrailGenerator::new(11);
    for _ in 0..20_000 {
        let event = generator.event();
        assert_eq!(alerting_rule(&event), None, "{event}");
    }
}

#[test]
fn same_seed_same_violations() {
    let mut a = CloudTrailGenerator::new(3).with_violation_rate(0.05);
    let mut b = CloudTrailGenerator::new(3).with_violation_rate(0.05);
    assert_eq!(
        a.labelled_records_file(1_000),
        b.labelled_records_file(1_000)
    );
    let mut plain = CloudTrailGenerator::new(3).with_violation_rate(0.0);
    let (_, labels) = plain.labelled_records_file(1_000);
    assert!(labels.is_empty());
}
