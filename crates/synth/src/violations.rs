//! Injected violations, each shaped like the positive fixtures of one rule of demarc's
//! catalog (`queries/`, `testdata/rules/<rule-id>/positive/`) and matching no other rule,
//! and their look-alikes, which must match none.
//!
//! The generator knows the rules only by id: when a rule changes shape, the violations
//! here must follow, and the labels they produce are what a benchmark scores recall on.
//!
//! Over 600 lines because it is one table: a violation and its look-alike per rule of
//! the catalog, side by side, so that a rule's change is followed in one place.

use serde_json::{Value, json};

use crate::{Call, CloudTrailGenerator};

/// A kind of injected violation, named after the rule it must trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    CloudTrailLoggingStopped,
    S3BucketAclPublic,
    S3BucketPolicyPublic,
    S3PublicAccessBlockRemoved,
    EncryptionKeyDisabled,
    MfaDeviceRemoved,
    SecurityGroupAdminPortOpen,
    AdminPolicyAttached,
    Imdsv1Enabled,
    Ec2SnapshotOrImagePublic,
    RdsPubliclyAccessible,
    LambdaFunctionUrlPublic,
    CloudTrailSelectorsExcludeManagement,
    LoggingSourcesDisabled,
    NaclAllowsAllInbound,
    PasswordPolicyDeleted,
    RdsSnapshotPublic,
    S3AccessLoggingRemoved,
}

impl Violation {
    /// Every kind, in the order injection takes turns through them.
    pub const ALL: [Violation; 18] = [
        Violation::CloudTrailLoggingStopped,
        Violation::S3BucketAclPublic,
        Violation::S3BucketPolicyPublic,
        Violation::S3PublicAccessBlockRemoved,
        Violation::EncryptionKeyDisabled,
        Violation::MfaDeviceRemoved,
        Violation::SecurityGroupAdminPortOpen,
        Violation::AdminPolicyAttached,
        Violation::Imdsv1Enabled,
        Violation::Ec2SnapshotOrImagePublic,
        Violation::RdsPubliclyAccessible,
        Violation::LambdaFunctionUrlPublic,
        Violation::CloudTrailSelectorsExcludeManagement,
        Violation::LoggingSourcesDisabled,
        Violation::NaclAllowsAllInbound,
        Violation::PasswordPolicyDeleted,
        Violation::RdsSnapshotPublic,
        Violation::S3AccessLoggingRemoved,
    ];

    /// The id of the rule (`queries/<id>.sql`) this violation must trigger.
    pub fn rule_id(self) -> &'static str {
        match self {
            Violation::CloudTrailLoggingStopped => "aws-cloudtrail-logging-stopped",
            Violation::S3BucketAclPublic => "aws-s3-bucket-acl-public",
            Violation::S3BucketPolicyPublic => "aws-s3-bucket-policy-public",
            Violation::S3PublicAccessBlockRemoved => "aws-s3-public-access-block-removed",
            Violation::EncryptionKeyDisabled => "aws-encryption-key-disabled",
            Violation::MfaDeviceRemoved => "aws-mfa-device-removed",
            Violation::SecurityGroupAdminPortOpen => "aws-security-group-admin-port-open",
            Violation::AdminPolicyAttached => "aws-admin-policy-attached",
            Violation::Imdsv1Enabled => "aws-imdsv1-enabled",
            Violation::Ec2SnapshotOrImagePublic => "aws-ec2-snapshot-or-image-public",
            Violation::RdsPubliclyAccessible => "aws-rds-publicly-accessible",
            Violation::LambdaFunctionUrlPublic => "aws-lambda-function-url-public",
            Violation::CloudTrailSelectorsExcludeManagement => {
                "aws-cloudtrail-selectors-exclude-management"
            }
            Violation::LoggingSourcesDisabled => "aws-logging-sources-disabled",
            Violation::NaclAllowsAllInbound => "aws-nacl-allows-all-inbound",
            Violation::PasswordPolicyDeleted => "aws-password-policy-deleted",
            Violation::RdsSnapshotPublic => "aws-rds-snapshot-public",
            Violation::S3AccessLoggingRemoved => "aws-s3-access-logging-removed",
        }
    }
}

fn call(service: &'static str, name: &'static str, request: Value, response: Value) -> Call {
    Call {
        service,
        name,
        read_only: false,
        request,
        response,
    }
}

/// `{"requestId": …, "_return": true}`, what EC2 answers to a change.
fn ec2_ok(generator: &mut CloudTrailGenerator) -> Value {
    json!({"requestId": generator.uuid(), "_return": true})
}

impl CloudTrailGenerator {
    /// The call of a violation, succeeding unless the caller adds an error.
    pub(crate) fn violation_call(
        &mut self,
        violation: Violation,
        account: &str,
        region: &str,
    ) -> Call {
        let bucket = format!("bucket-{}", self.rng.u16(..500));
        let host = format!("{bucket}.s3.{region}.amazonaws.com");
        match violation {
            Violation::CloudTrailLoggingStopped => call(
                "cloudtrail",
                if self.rng.u8(..4) == 0 {
                    "DeleteTrail"
                } else {
                    "StopLogging"
                },
                json!({"name": format!("arn:aws:cloudtrail:{region}:{account}:trail/management-events")}),
                Value::Null,
            ),
            Violation::S3BucketAclPublic => {
                let canned = ["public-read", "public-read-write"][self.rng.usize(..2)];
                call(
                    "s3",
                    "PutBucketAcl",
                    json!({"bucketName": bucket, "Host": host, "acl": [""], "x-amz-acl": [canned]}),
                    Value::Null,
                )
            }
            Violation::S3BucketPolicyPublic => call(
                "s3",
                "PutBucketPolicy",
                json!({
                    "bucketName": bucket,
                    "Host": host,
                    "policy": [""],
                    "bucketPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}],
                    },
                }),
                Value::Null,
            ),
            Violation::S3PublicAccessBlockRemoved => call(
                "s3",
                "DeleteBucketPublicAccessBlock",
                json!({"bucketName": bucket, "Host": host, "publicAccessBlock": [""]}),
                Value::Null,
            ),
            Violation::EncryptionKeyDisabled => {
                let key = format!("arn:aws:kms:{region}:{account}:key/{}", self.uuid());
                if self.rng.bool() {
                    call("kms", "DisableKey", json!({"keyId": key}), Value::Null)
                } else {
                    call(
                        "kms",
                        "ScheduleKeyDeletion",
                        json!({"keyId": key, "pendingWindowInDays": 7}),
                        json!({"keyId": key, "deletionDate": "Jan 12, 2026, 12:00:00 AM", "keyState": "PendingDeletion", "pendingWindowInDays": 7}),
                    )
                }
            }
            Violation::MfaDeviceRemoved => {
                let user = ["alice", "bob", "carol"][self.rng.usize(..3)];
                call(
                    "iam",
                    "DeactivateMFADevice",
                    json!({"userName": user, "serialNumber": format!("arn:aws:iam::{account}:mfa/{user}")}),
                    Value::Null,
                )
            }
            Violation::SecurityGroupAdminPortOpen => {
                let port = if self.rng.u8(..4) == 0 { 3389 } else { 22 };
                call(
                    "ec2",
                    "AuthorizeSecurityGroupIngress",
                    self.ingress_request(port),
                    self.ingress_response(port),
                )
            }
            Violation::AdminPolicyAttached => {
                let user = ["deploy-bot", "backup", "carol"][self.rng.usize(..3)];
                call(
                    "iam",
                    "AttachUserPolicy",
                    json!({"userName": user, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                    Value::Null,
                )
            }
            Violation::Imdsv1Enabled => self.metadata_options("optional"),
            Violation::Ec2SnapshotOrImagePublic => {
                let snapshot = format!("snap-{}", self.hex(17));
                call(
                    "ec2",
                    "ModifySnapshotAttribute",
                    json!({"snapshotId": snapshot, "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"group": "all"}]}}}),
                    ec2_ok(self),
                )
            }
            Violation::RdsPubliclyAccessible => self.modify_db_instance(true),
            Violation::LambdaFunctionUrlPublic => self.function_url(account, region, "NONE"),
            Violation::CloudTrailSelectorsExcludeManagement => self.event_selectors(false),
            Violation::LoggingSourcesDisabled => call(
                "config",
                "StopConfigurationRecorder",
                json!({"configurationRecorderName": "default"}),
                Value::Null,
            ),
            Violation::NaclAllowsAllInbound => {
                let acl = format!("acl-{}", self.hex(17));
                call(
                    "ec2",
                    "CreateNetworkAclEntry",
                    json!({"networkAclId": acl, "ruleNumber": 100, "egress": false, "ruleAction": "allow", "icmpTypeCode": {}, "portRange": {}, "aclProtocol": "-1", "cidrBlock": "0.0.0.0/0"}),
                    ec2_ok(self),
                )
            }
            Violation::PasswordPolicyDeleted => call(
                "iam",
                "DeleteAccountPasswordPolicy",
                Value::Null,
                Value::Null,
            ),
            Violation::RdsSnapshotPublic => self.db_snapshot_attribute(json!(["all"])),
            Violation::S3AccessLoggingRemoved => call(
                "s3",
                "PutBucketLogging",
                json!({"bucketName": bucket, "Host": host, "logging": [""], "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}}),
                Value::Null,
            ),
        }
    }

    /// A change close to `violation` that weakens nothing, and must not alert.
    pub(crate) fn lookalike_call(
        &mut self,
        violation: Violation,
        account: &str,
        region: &str,
    ) -> Call {
        let bucket = format!("bucket-{}", self.rng.u16(..500));
        let host = format!("{bucket}.s3.{region}.amazonaws.com");
        match violation {
            Violation::CloudTrailLoggingStopped => call(
                "cloudtrail",
                "StartLogging",
                json!({"name": format!("arn:aws:cloudtrail:{region}:{account}:trail/management-events")}),
                Value::Null,
            ),
            Violation::S3BucketAclPublic => call(
                "s3",
                "PutBucketAcl",
                json!({"bucketName": bucket, "Host": host, "acl": [""], "x-amz-acl": ["private"]}),
                Value::Null,
            ),
            Violation::S3BucketPolicyPublic => {
                // Either a hardening (a Deny for everyone) or a statement for `*` that a
                // condition confines to the organisation.
                let statement = if self.rng.bool() {
                    json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")], "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                } else {
                    json!({"Sid": "OrgRead", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*"), "Condition": {"StringEquals": {"aws:PrincipalOrgID": format!("o-{}", self.hex(10))}}})
                };
                call(
                    "s3",
                    "PutBucketPolicy",
                    json!({"bucketName": bucket, "Host": host, "policy": [""], "bucketPolicy": {"Version": "2012-10-17", "Statement": [statement]}}),
                    Value::Null,
                )
            }
            Violation::S3PublicAccessBlockRemoved => call(
                "s3",
                "PutBucketPublicAccessBlock",
                json!({"bucketName": bucket, "Host": host, "publicAccessBlock": [""], "PublicAccessBlockConfiguration": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}}),
                Value::Null,
            ),
            Violation::EncryptionKeyDisabled => call(
                "kms",
                "EnableKey",
                json!({"keyId": format!("arn:aws:kms:{region}:{account}:key/{}", self.uuid())}),
                Value::Null,
            ),
            Violation::MfaDeviceRemoved => {
                let user = ["alice", "bob", "carol"][self.rng.usize(..3)];
                call(
                    "iam",
                    "EnableMFADevice",
                    json!({"userName": user, "serialNumber": format!("arn:aws:iam::{account}:mfa/{user}"), "authenticationCode1": "HIDDEN_DUE_TO_SECURITY_REASONS", "authenticationCode2": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                    Value::Null,
                )
            }
            Violation::SecurityGroupAdminPortOpen => call(
                "ec2",
                "AuthorizeSecurityGroupIngress",
                self.ingress_request(443),
                self.ingress_response(443),
            ),
            Violation::AdminPolicyAttached => {
                let user = ["deploy-bot", "backup", "carol"][self.rng.usize(..3)];
                call(
                    "iam",
                    "AttachUserPolicy",
                    json!({"userName": user, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
                    Value::Null,
                )
            }
            Violation::Imdsv1Enabled => self.metadata_options("required"),
            Violation::Ec2SnapshotOrImagePublic => {
                let snapshot = format!("snap-{}", self.hex(17));
                let partner = format!("{:012}", self.rng.u64(100_000_000_000..999_999_999_999));
                call(
                    "ec2",
                    "ModifySnapshotAttribute",
                    json!({"snapshotId": snapshot, "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": partner}]}}}),
                    ec2_ok(self),
                )
            }
            Violation::RdsPubliclyAccessible => self.modify_db_instance(false),
            Violation::LambdaFunctionUrlPublic => self.function_url(account, region, "AWS_IAM"),
            Violation::CloudTrailSelectorsExcludeManagement => self.event_selectors(true),
            Violation::LoggingSourcesDisabled => call(
                "config",
                "StartConfigurationRecorder",
                json!({"configurationRecorderName": "default"}),
                Value::Null,
            ),
            Violation::NaclAllowsAllInbound => {
                let acl = format!("acl-{}", self.hex(17));
                call(
                    "ec2",
                    "CreateNetworkAclEntry",
                    json!({"networkAclId": acl, "ruleNumber": 110, "egress": false, "ruleAction": "allow", "icmpTypeCode": {}, "portRange": {"from": 443, "to": 443}, "aclProtocol": "6", "cidrBlock": "0.0.0.0/0"}),
                    ec2_ok(self),
                )
            }
            Violation::PasswordPolicyDeleted => call(
                "iam",
                "UpdateAccountPasswordPolicy",
                json!({"minimumPasswordLength": 14, "requireSymbols": true, "requireNumbers": true, "requireUppercaseCharacters": true, "requireLowercaseCharacters": true, "allowUsersToChangePassword": true, "maxPasswordAge": 90, "passwordReusePrevention": 24}),
                Value::Null,
            ),
            Violation::RdsSnapshotPublic => self.db_snapshot_attribute(json!([account])),
            Violation::S3AccessLoggingRemoved => call(
                "s3",
                "PutBucketLogging",
                json!({"bucketName": bucket, "Host": host, "logging": [""], "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "LoggingEnabled": {"TargetBucket": "access-logs", "TargetPrefix": format!("{bucket}/")}}}),
                Value::Null,
            ),
        }
    }

    fn ingress_request(&mut self, port: u16) -> Value {
        json!({
            "groupId": format!("sg-{}", self.hex(17)),
            "ipPermissions": {"items": [{
                "ipProtocol": "tcp",
                "fromPort": port,
                "toPort": port,
                "groups": {},
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                "ipv6Ranges": {},
                "prefixListIds": {},
            }]},
        })
    }

    fn ingress_response(&mut self, port: u16) -> Value {
        json!({
            "requestId": self.uuid(),
            "_return": true,
            "securityGroupRuleSet": {"items": [{
                "securityGroupRuleId": format!("sgr-{}", self.hex(17)),
                "isEgress": false,
                "ipProtocol": "tcp",
                "fromPort": port,
                "toPort": port,
                "cidrIpv4": "0.0.0.0/0",
            }]},
        })
    }

    fn metadata_options(&mut self, tokens: &str) -> Call {
        let instance = format!("i-{}", self.hex(17));
        call(
            "ec2",
            "ModifyInstanceMetadataOptions",
            json!({"ModifyInstanceMetadataOptionsRequest": {"InstanceId": instance, "HttpTokens": tokens, "HttpEndpoint": "enabled"}}),
            json!({"ModifyInstanceMetadataOptionsResponse": {"requestId": self.uuid(), "instanceId": instance, "instanceMetadataOptions": {"state": "pending", "httpTokens": tokens, "httpPutResponseHopLimit": 1, "httpEndpoint": "enabled"}}}),
        )
    }

    fn modify_db_instance(&mut self, public: bool) -> Call {
        let db = format!("orders-db-{}", self.rng.u8(..50));
        call(
            "rds",
            "ModifyDBInstance",
            json!({"dBInstanceIdentifier": db, "publiclyAccessible": public, "applyImmediately": true, "allowMajorVersionUpgrade": false}),
            json!({"dBInstanceIdentifier": db, "dBInstanceClass": "db.t3.medium", "engine": "postgres", "dBInstanceStatus": "available", "multiAZ": false, "pendingModifiedValues": {}}),
        )
    }

    fn function_url(&mut self, account: &str, region: &str, auth: &str) -> Call {
        let function = format!(
            "arn:aws:lambda:{region}:{account}:function:fn-{}",
            self.rng.u8(..)
        );
        call(
            "lambda",
            "CreateFunctionUrlConfig20211031",
            json!({"functionName": function, "authType": auth, "invokeMode": "BUFFERED"}),
            json!({"functionUrl": format!("https://{}.lambda-url.{region}.on.aws/", self.hex(32)), "functionArn": function, "authType": auth, "invokeMode": "BUFFERED", "creationTime": "2026-01-05T00:00:00.000000Z"}),
        )
    }

    fn event_selectors(&mut self, management: bool) -> Call {
        let bucket = format!("bucket-{}", self.rng.u16(..500));
        call(
            "cloudtrail",
            "PutEventSelectors",
            json!({"trailName": "management-events", "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": management, "dataResources": [{"type": "AWS::S3::Object", "values": [format!("arn:aws:s3:::{bucket}/")]}], "excludeManagementEventSources": []}]}),
            Value::Null,
        )
    }

    fn db_snapshot_attribute(&mut self, values_to_add: Value) -> Call {
        let snapshot = format!("orders-db-2026-01-{:02}", self.rng.u8(1..29));
        call(
            "rds",
            "ModifyDBSnapshotAttribute",
            json!({"dBSnapshotIdentifier": snapshot, "attributeName": "restore", "valuesToAdd": values_to_add}),
            json!({"dBSnapshotIdentifier": snapshot, "dBSnapshotAttributes": [{"attributeName": "restore", "attributeValues": values_to_add}]}),
        )
    }
}

#[cfg(test)]
mod tests {
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
            ("iam", "DeactivateMFADevice" | "DeleteVirtualMFADevice") => {
                Some("aws-mfa-device-removed")
            }
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
            ("ec2", "CreateNetworkAclEntry" | "ReplaceNetworkAclEntry") => (request["egress"]
                == false
                && str_at(&["aclProtocol"]) == Some("-1")
                && str_at(&["cidrBlock"]) == Some("0.0.0.0/0"))
            .then_some("aws-nacl-allows-all-inbound"),
            ("ec2", "DeleteFlowLogs")
            | (
                "config",
                "StopConfigurationRecorder"
                | "DeleteConfigurationRecorder"
                | "DeleteDeliveryChannel",
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
}
