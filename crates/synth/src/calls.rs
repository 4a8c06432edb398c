//! The everyday mix of CloudTrail calls the generator draws from: which API, how
//! often, with what request and response.

use serde_json::{Value, json};

use crate::{Call, CloudTrailGenerator, format_time};

impl CloudTrailGenerator {
    /// A call of the everyday mix.
    pub(crate) fn call(&mut self, account: &str, region: &str) -> Call {
        let bucket = format!("bucket-{}", self.rng.u16(..500));
        let roll = self.rng.u16(..1000);
        let (service, name, read_only, request, response) = match roll {
            0..=199 => (
                "ec2",
                "DescribeInstances",
                true,
                json!({"instancesSet": {}, "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]}}),
                Value::Null,
            ),
            200..=299 => (
                "s3",
                "GetBucketAcl",
                true,
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "acl": ""}),
                Value::Null,
            ),
            300..=399 => (
                "sts",
                "AssumeRole",
                false,
                json!({"roleArn": format!("arn:aws:iam::{account}:role/app-backend"), "roleSessionName": format!("s-{}", self.rng.u32(..))}),
                json!({"credentials": {"accessKeyId": format!("ASIA{}", self.hex(16).to_uppercase()), "sessionToken": self.hex(360), "expiration": "Jan 5, 2026, 1:00:00 AM"}, "assumedRoleUser": {"assumedRoleId": format!("AROA{}:s", self.hex(16).to_uppercase()), "arn": format!("arn:aws:sts::{account}:assumed-role/app-backend/s")}}),
            ),
            400..=499 => (
                "kms",
                "Decrypt",
                true,
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"aws:lambda:FunctionArn": format!("arn:aws:lambda:{region}:{account}:function:fn-{}", self.rng.u8(..))}}),
                Value::Null,
            ),
            500..=579 => (
                "iam",
                "ListRoles",
                true,
                json!({"maxItems": 100}),
                Value::Null,
            ),
            580..=649 => (
                "logs",
                "CreateLogStream",
                false,
                json!({"logGroupName": format!("/aws/lambda/fn-{}", self.rng.u8(..)), "logStreamName": self.hex(32)}),
                Value::Null,
            ),
            650..=699 => (
                "cloudtrail",
                "LookupEvents",
                true,
                json!({"maxResults": 50, "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "ConsoleLogin"}]}),
                Value::Null,
            ),
            700..=739 => (
                "ec2",
                "RunInstances",
                false,
                self.run_instances_request(),
                self.run_instances_response(account, region),
            ),
            740..=769 => (
                "iam",
                "CreatePolicy",
                false,
                self.create_policy_request(),
                Value::Null,
            ),
            770..=799 => (
                "s3",
                "PutBucketAcl",
                false,
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "acl": "", "AccessControlPolicy": {"AccessControlList": {"Grant": {"Grantee": {"xsi:type": "CanonicalUser", "ID": self.hex(64)}, "Permission": "FULL_CONTROL"}}, "Owner": {"ID": self.hex(64)}}}),
                Value::Null,
            ),
            800..=829 => (
                "ec2",
                "AuthorizeSecurityGroupIngress",
                false,
                json!({"groupId": format!("sg-{}", self.hex(17)), "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}),
                json!({"requestId": self.uuid(), "_return": true}),
            ),
            830..=859 => (
                "lambda",
                "UpdateFunctionConfiguration20150331v2",
                false,
                json!({"functionName": format!("fn-{}", self.rng.u8(..)), "environment": {}, "timeout": 30}),
                json!({"functionName": "fn", "runtime": "python3.12", "memorySize": 256}),
            ),
            860..=889 => ("rds", "DescribeDBInstances", true, Value::Null, Value::Null),
            890..=909 => (
                "signin",
                "ConsoleLogin",
                false,
                Value::Null,
                json!({"ConsoleLogin": "Success"}),
            ),
            910..=939 => (
                "s3",
                "PutBucketPolicy",
                false,
                self.bucket_policy_request(&bucket),
                Value::Null,
            ),
            940..=969 => (
                "secretsmanager",
                "GetSecretValue",
                true,
                json!({"secretId": format!("arn:aws:secretsmanager:{region}:{account}:secret:db-{}", self.hex(6))}),
                Value::Null,
            ),
            _ => (
                "config",
                "PutEvaluations",
                false,
                json!({"evaluations": [{"complianceResourceType": "AWS::S3::Bucket", "complianceResourceId": bucket, "complianceType": "COMPLIANT", "orderingTimestamp": format_time(self.clock)}], "resultToken": self.hex(400), "testMode": false}),
                json!({"failedEvaluations": []}),
            ),
        };
        Call {
            service,
            name,
            read_only,
            request,
            response,
        }
    }

    fn run_instances_request(&mut self) -> Value {
        let tags: Vec<Value> = (0..self.rng.usize(2..12))
            .map(|i| json!({"key": format!("tag-{i}"), "value": self.hex(24)}))
            .collect();
        json!({
            "instancesSet": {"items": [{"imageId": format!("ami-{}", self.hex(17)), "minCount": 1, "maxCount": 1}]},
            "instanceType": "m6i.large",
            "blockDeviceMapping": {"items": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 50, "deleteOnTermination": true, "volumeType": "gp3", "encrypted": true}}]},
            "monitoring": {"enabled": false},
            "disableApiTermination": false,
            "clientToken": self.uuid(),
            "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": tags}]},
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
            "userData": "<sensitiveDataRemoved>",
        })
    }

    fn run_instances_response(&mut self, account: &str, region: &str) -> Value {
        let instances: Vec<Value> = (0..self.rng.usize(1..4))
            .map(|_| {
                json!({
                    "instanceId": format!("i-{}", self.hex(17)),
                    "imageId": format!("ami-{}", self.hex(17)),
                    "instanceState": {"code": 0, "name": "pending"},
                    "privateDnsName": format!("ip-10-0-{}-{}.{region}.compute.internal", self.rng.u8(..), self.rng.u8(..)),
                    "amiLaunchIndex": 0,
                    "productCodes": {},
                    "instanceType": "m6i.large",
                    "launchTime": 1_767_571_200_000u64,
                    "placement": {"availabilityZone": format!("{region}a"), "tenancy": "default"},
                    "monitoring": {"state": "disabled"},
                    "subnetId": format!("subnet-{}", self.hex(17)),
                    "vpcId": format!("vpc-{}", self.hex(17)),
                    "privateIpAddress": format!("10.0.{}.{}", self.rng.u8(..), self.rng.u8(..)),
                    "groupSet": {"items": [{"groupId": format!("sg-{}", self.hex(17)), "groupName": "default"}]},
                    "networkInterfaceSet": {"items": [{"networkInterfaceId": format!("eni-{}", self.hex(17)), "ownerId": account, "status": "in-use", "macAddress": "0a:1b:2c:3d:4e:5f"}]},
                })
            })
            .collect();
        json!({"requestId": self.uuid(), "reservationId": format!("r-{}", self.hex(17)), "ownerId": account, "groupSet": {}, "instancesSet": {"items": instances}})
    }

    fn create_policy_request(&mut self) -> Value {
        let statements: Vec<Value> = (0..self.rng.usize(1..20))
            .map(|i| {
                json!({
                    "Sid": format!("Stmt{i}"),
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    "Resource": [format!("arn:aws:s3:::bucket-{}/*", self.rng.u16(..500))],
                })
            })
            .collect();
        // IAM stores policy documents as JSON inside a string.
        let document = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        json!({"policyName": format!("policy-{}", self.hex(8)), "policyDocument": document, "description": "generated"})
    }

    fn bucket_policy_request(&mut self, bucket: &str) -> Value {
        let principal = if self.rng.bool() {
            json!({"AWS": format!("arn:aws:iam::{}:root", self.accounts[0])})
        } else {
            json!({"Service": "cloudtrail.amazonaws.com"})
        };
        json!({
            "bucketName": bucket,
            "Host": format!("{bucket}.s3.amazonaws.com"),
            "policy": "",
            "bucketPolicy": {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "Allow", "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}],
            },
        })
    }
}
