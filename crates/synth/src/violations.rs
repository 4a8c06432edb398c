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
                // Shared with another account of the organisation: neither public nor
                // outside (the generated accounts are its accounts).
                let partner = self.accounts[self.rng.usize(..self.accounts.len())].clone();
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
mod tests;
