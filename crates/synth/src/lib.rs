//! Deterministic generator of realistic CloudTrail and GCP Cloud Audit Log data, for
//! benchmarks, load tests and scale tests.
//!
//! The same seed yields the same bytes on every machine. The mix imitates production
//! trails: mostly read calls by assumed roles and AWS services, about one call in ten
//! failed, `requestParameters` null in about one event in ten, non-IP source addresses,
//! and a tail of events several kilobytes large (policy documents, instance launches).
//! It depends on no other demarc crate: it produces bytes as the providers write them,
//! and knows nothing of how demarc reads them.
//!
//! Normal events never match a rule of demarc's catalog (`queries/`).
//! [`CloudTrailGenerator::with_violation_rate`] replaces a fraction of them by
//! violations, each shaped to trigger exactly one named rule ([`Violation`]), and as many
//! by near misses that must trigger none: the same calls denied, and look-alikes such as
//! a `Deny` for `*` or HTTPS opened to the internet.

use serde_json::{Value, json};

mod calls;
mod gcp;
pub mod samples;
mod violations;

pub use gcp::GcpGenerator;
pub use violations::Violation;

/// Generates CloudTrail events.
#[derive(Debug)]
pub struct CloudTrailGenerator {
    rng: fastrand::Rng,
    accounts: Vec<String>,
    /// Seconds since the Unix epoch of the next event.
    clock: u64,
    /// Fraction of events replaced by a violation, and as many by a near miss.
    violation_rate: f64,
    /// Violations and near misses generated so far: they take turns through
    /// [`Violation::ALL`].
    violations: usize,
    near_misses: usize,
}

/// Who made a call, and from where.
#[derive(Debug)]
struct Caller {
    /// `userIdentity`.
    identity: Value,
    source_ip: String,
    agent: &'static str,
}

/// An injected violation: the event's `eventID` and the rule it must trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub event_id: String,
    pub rule_id: &'static str,
}

/// One API call, before the envelope every event shares.
#[derive(Debug)]
pub(crate) struct Call {
    /// The service's name, without `.amazonaws.com`.
    pub(crate) service: &'static str,
    pub(crate) name: &'static str,
    pub(crate) read_only: bool,
    pub(crate) request: Value,
    pub(crate) response: Value,
}

/// 2026-01-05T00:00:00Z: the generated trail starts here.
pub(crate) const START_SECONDS: u64 = 1_767_571_200;

const REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "sa-east-1",
];

const AGENTS: [&str; 6] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/s3.ls",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.1",
    "aws-internal/3 aws-sdk-java/1.12.670 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.402-b08",
];

impl CloudTrailGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let accounts = (0..8)
            .map(|_| format!("{:012}", rng.u64(100_000_000_000..999_999_999_999)))
            .collect();
        Self {
            rng,
            accounts,
            clock: START_SECONDS,
            violation_rate: 0.0,
            violations: 0,
            near_misses: 0,
        }
    }

    /// The generator's clock, `YYYY-MM-DDTHH:MM:SSZ`: no event generated from now on is
    /// earlier.
    pub fn clock(&self) -> String {
        format_time(self.clock)
    }

    /// Replaces the fraction `rate` of events by violations, and as many by near misses.
    ///
    /// # Panics
    ///
    /// If `rate` is not between 0 and 0.5: violations and near misses together cannot be
    /// more than every event.
    pub fn with_violation_rate(mut self, rate: f64) -> Self {
        assert!(
            (0.0..=0.5).contains(&rate),
            "violation rate {rate} is not between 0 and 0.5"
        );
        self.violation_rate = rate;
        self
    }

    /// The accounts events are generated for.
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// One event, as a JSON value.
    pub fn event(&mut self) -> Value {
        self.labelled_event().0
    }

    /// One event as a Kafka message would carry it: keyed by its account
    /// (`recipientAccountId`), the JSON document as the value.
    pub fn keyed_message(&mut self) -> (String, String) {
        let event = self.event();
        let key = event["recipientAccountId"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        (key, event.to_string())
    }

    /// One event, with the rule it must trigger when it is an injected violation.
    pub fn labelled_event(&mut self) -> (Value, Option<&'static str>) {
        self.clock += self.rng.u64(0..3);
        let account = self.accounts[self.rng.usize(..self.accounts.len())].clone();
        let region = REGIONS[self.rng.usize(..REGIONS.len())];
        // No draw at rate 0, so that plain archives do not depend on this feature.
        let roll = if self.violation_rate > 0.0 {
            self.rng.f64()
        } else {
            1.0
        };
        if roll < self.violation_rate {
            let violation = Violation::ALL[self.violations % Violation::ALL.len()];
            self.violations += 1;
            let call = self.violation_call(violation, &account, region);
            return (
                self.injected(&account, region, call, None),
                Some(violation.rule_id()),
            );
        }
        if roll < 2.0 * self.violation_rate {
            // Even turns: a violation denied; odd turns: its look-alike, succeeding.
            let turn = self.near_misses;
            self.near_misses += 1;
            let violation = Violation::ALL[(turn / 2) % Violation::ALL.len()];
            let event = if turn.is_multiple_of(2) {
                let call = self.violation_call(violation, &account, region);
                let denied = if call.service == "s3" {
                    ("AccessDenied", "Access Denied")
                } else {
                    (
                        "AccessDenied",
                        "User is not authorized to perform this action",
                    )
                };
                self.injected(&account, region, call, Some(denied))
            } else {
                let call = self.lookalike_call(violation, &account, region);
                self.injected(&account, region, call, None)
            };
            return (event, None);
        }
        (self.normal(&account, region), None)
    }

    /// An event of the everyday mix.
    fn normal(&mut self, account: &str, region: &'static str) -> Value {
        let mut call = self.call(account, region);
        // Root acting, or signing in, is an alert of its own (aws-root-activity).
        let root_allowed = call.read_only && call.name != "ConsoleLogin";
        let source = format!("{}.amazonaws.com", call.service);
        let identity = self.identity(account, &source, root_allowed);
        let failed = self.rng.u8(..100) < 10;
        let source_ip = self.source_ip(&source);
        let agent = AGENTS[self.rng.usize(..AGENTS.len())];
        if self.rng.u8(..100) < 10 {
            call.request = Value::Null;
        }
        let error = failed.then(|| {
            if self.rng.bool() {
                (
                    "AccessDenied",
                    "User is not authorized to perform this action",
                )
            } else {
                (
                    "Client.UnauthorizedOperation",
                    "You are not authorized to perform this operation.",
                )
            }
        });
        let console_login = call.name == "ConsoleLogin";
        let caller = Caller {
            identity,
            source_ip,
            agent,
        };
        let mut event = self.envelope(account, region, call, caller, error);
        if console_login {
            // IAM users sign in with MFA here: without it is an alert
            // (aws-console-login-without-mfa). Federated sessions authenticate elsewhere.
            let mfa = if event["userIdentity"]["type"] == "IAMUser" {
                "Yes"
            } else {
                "No"
            };
            event["additionalEventData"] = json!({
                "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
                "MobileVersion": "No",
                "MFAUsed": mfa,
            });
        }
        event
    }

    /// A violation or near miss: a person (IAM user or assumed role) calling from the
    /// internet.
    fn injected(
        &mut self,
        account: &str,
        region: &'static str,
        call: Call,
        error: Option<(&str, &str)>,
    ) -> Value {
        let identity = if self.rng.bool() {
            self.iam_user(account)
        } else {
            self.assumed_role(account)
        };
        // IAM is global: CloudTrail records its calls in us-east-1.
        let region = if call.service == "iam" {
            "us-east-1"
        } else {
            region
        };
        let caller = Caller {
            identity,
            source_ip: self.ipv4(),
            // Every agent but the AWS-internal one.
            agent: AGENTS[self.rng.usize(..AGENTS.len() - 1)],
        };
        self.envelope(account, region, call, caller, error)
    }

    /// The fields every CloudTrail event carries, around `call`.
    fn envelope(
        &mut self,
        account: &str,
        region: &str,
        call: Call,
        caller: Caller,
        error: Option<(&str, &str)>,
    ) -> Value {
        let Caller {
            identity,
            source_ip,
            agent,
        } = caller;
        let Call {
            service,
            name,
            read_only,
            request,
            response,
        } = call;
        let mut event = json!({
            "eventVersion": if self.rng.bool() { "1.09" } else { "1.08" },
            "userIdentity": identity,
            "eventTime": format_time(self.clock),
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": agent,
            "requestParameters": request,
            "responseElements": if error.is_some() { Value::Null } else { response },
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{service}.{region}.amazonaws.com"),
            },
        });
        if let Some((code, message)) = error {
            event["errorCode"] = json!(code);
            event["errorMessage"] = json!(message);
        }
        event
    }

    /// `{"Records":[…]}` with `events` events, as CloudTrail delivers to S3.
    pub fn records_file(&mut self, events: usize) -> Vec<u8> {
        self.labelled_records_file(events).0
    }

    /// [`Self::records_file`], with a label for each injected violation in it.
    pub fn labelled_records_file(&mut self, events: usize) -> (Vec<u8>, Vec<Label>) {
        let mut labels = Vec::new();
        let records: Vec<Value> = (0..events)
            .map(|_| {
                let (event, rule_id) = self.labelled_event();
                if let Some(rule_id) = rule_id {
                    labels.push(Label {
                        event_id: event["eventID"].as_str().unwrap_or_default().to_owned(),
                        rule_id,
                    });
                }
                event
            })
            .collect();
        let body =
            serde_json::to_vec(&json!({ "Records": records })).expect("a JSON value serializes");
        (body, labels)
    }

    /// `events` events as NDJSON.
    pub fn ndjson(&mut self, events: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..events {
            serde_json::to_writer(&mut out, &self.event()).expect("a JSON value serializes");
            out.push(b'\n');
        }
        out
    }

    fn uuid(&mut self) -> String {
        let a = self.rng.u128(..);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 96) as u32,
            (a >> 80) as u16,
            (a >> 68) as u16 & 0xfff,
            ((a >> 52) as u16 & 0x3fff) | 0x8000,
            a as u64 & 0xffff_ffff_ffff
        )
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.usize(..16)]))
            .collect()
    }

    fn ipv4(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.rng.u8(1..224),
            self.rng.u8(..),
            self.rng.u8(..),
            self.rng.u8(1..255)
        )
    }

    fn source_ip(&mut self, source: &str) -> String {
        match self.rng.u8(..100) {
            0..=69 => self.ipv4(),
            70..=79 => "AWS Internal".to_owned(),
            80..=89 => source.to_owned(),
            _ => format!(
                "2600:1f18:{:x}:{:x}::{:x}",
                self.rng.u16(..),
                self.rng.u16(..),
                self.rng.u16(..)
            ),
        }
    }

    /// Who made a call of `source`; the root user only when `root_allowed`, an IAM user
    /// in its place otherwise.
    fn identity(&mut self, account: &str, source: &str, root_allowed: bool) -> Value {
        match self.rng.u8(..100) {
            0..=54 => self.assumed_role(account),
            55..=69 => self.iam_user(account),
            70..=84 => json!({ "type": "AWSService", "invokedBy": source }),
            85..=89 => json!({ "accountId": account, "invokedBy": source }),
            90..=94 => json!({
                "type": "IdentityCenterUser",
                "accountId": account,
                "onBehalfOf": { "userId": self.uuid(), "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-1234567890" },
                "credentialId": self.hex(32),
            }),
            95..=97 if root_allowed => json!({
                "type": "Root",
                "principalId": account,
                "arn": format!("arn:aws:iam::{account}:root"),
                "accountId": account,
                "accessKeyId": format!("ASIA{}", self.hex(16).to_uppercase()),
                "sessionContext": { "sessionIssuer": {}, "attributes": self.session_attributes() },
            }),
            95..=97 => self.iam_user(account),
            _ => Value::Null,
        }
    }

    /// `sessionContext.attributes`: a session started ten minutes ago, with MFA in about
    /// one case in three.
    fn session_attributes(&mut self) -> Value {
        let mfa = if self.rng.u8(..100) < 30 {
            "true"
        } else {
            "false"
        };
        json!({ "creationDate": format_time(self.clock - 600), "mfaAuthenticated": mfa })
    }

    fn assumed_role(&mut self, account: &str) -> Value {
        let role = [
            "ci-deployer",
            "app-backend",
            "data-pipeline",
            "AWSReservedSSO_Admin_0a1b2c3d",
        ][self.rng.usize(..4)];
        let session_name = format!("session-{}", self.rng.u32(..100_000));
        json!({
            "type": "AssumedRole",
            "principalId": format!("AROA{}:{session_name}", self.hex(16).to_uppercase()),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session_name}"),
            "accountId": account,
            "accessKeyId": format!("ASIA{}", self.hex(16).to_uppercase()),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": format!("AROA{}", self.hex(16).to_uppercase()),
                    "arn": format!("arn:aws:iam::{account}:role/{role}"),
                    "accountId": account,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": self.session_attributes(),
            },
        })
    }

    fn iam_user(&mut self, account: &str) -> Value {
        let user = ["alice", "bob", "carol", "deploy-bot", "backup"][self.rng.usize(..5)];
        json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{}", self.hex(16).to_uppercase()),
            "arn": format!("arn:aws:iam::{account}:user/{user}"),
            "accountId": account,
            "accessKeyId": format!("AKIA{}", self.hex(16).to_uppercase()),
            "userName": user,
            "sessionContext": { "sessionIssuer": {}, "attributes": self.session_attributes() },
        })
    }
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_time(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        let a = CloudTrailGenerator::new(7).records_file(50);
        let b = CloudTrailGenerator::new(7).records_file(50);
        assert_eq!(a, b);
        assert_ne!(a, CloudTrailGenerator::new(8).records_file(50));
    }

    #[test]
    fn time_formatting_matches_known_dates() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(START_SECONDS), "2026-01-05T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn mix_has_failures_nulls_and_large_events() {
        let mut generator = CloudTrailGenerator::new(1);
        let events: Vec<Value> = (0..5_000).map(|_| generator.event()).collect();
        let failed = events
            .iter()
            .filter(|e| e.get("errorCode").is_some())
            .count();
        let null_request = events
            .iter()
            .filter(|e| e["requestParameters"].is_null())
            .count();
        let sizes: Vec<usize> = events.iter().map(|e| e.to_string().len()).collect();
        let large = sizes.iter().filter(|s| **s > 3_000).count();
        assert!((400..600).contains(&failed), "failed calls: {failed}");
        assert!(
            null_request >= 500,
            "null requestParameters: {null_request}"
        );
        assert!(large >= 50, "events over 3 KB: {large}");
        assert!(sizes.iter().max().copied().unwrap_or_default() < 16_000);
    }
}
