//! GCP Cloud Audit Log entries, as exported to GCS or Pub/Sub.

use serde_json::{Value, json};

use crate::format_time;

/// Generates GCP `LogEntry` objects with an `AuditLog` payload.
#[derive(Debug)]
pub struct GcpGenerator {
    rng: fastrand::Rng,
    projects: Vec<String>,
    clock: u64,
}

const ZONES: [&str; 5] = [
    "us-central1-a",
    "us-east1-b",
    "europe-west1-d",
    "europe-west4-a",
    "asia-northeast1-c",
];

const AGENTS: [&str; 3] = [
    "google-cloud-sdk gcloud/467.0.0 command/gcloud.compute.instances.list",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-google/5.21.0",
    "google-api-go-client/0.5 GoogleCloudConsole",
];

impl GcpGenerator {
    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
        let projects = (0..6)
            .map(|i| format!("prod-{i}-{:06}", rng.u32(..1_000_000)))
            .collect();
        Self {
            rng,
            projects,
            clock: crate::START_SECONDS,
        }
    }

    /// The generator's clock, `YYYY-MM-DDTHH:MM:SSZ`: no entry generated from now on is
    /// earlier.
    pub fn clock(&self) -> String {
        crate::format_time(self.clock)
    }

    /// One log entry, as a JSON value.
    pub fn entry(&mut self) -> Value {
        self.clock += self.rng.u64(0..3);
        let project = self.projects[self.rng.usize(..self.projects.len())].clone();
        let zone = ZONES[self.rng.usize(..ZONES.len())];
        let (service, method, resource, kind, request, response) = self.call(&project, zone);
        let principal = self.principal(&project);
        let failed = self.rng.u8(..100) < 10;
        let nanos = self.rng.u32(..1_000_000_000);
        let time = format_time(self.clock).replace('Z', &format!(".{nanos:09}Z"));
        let agent = AGENTS[self.rng.usize(..AGENTS.len())];
        let mut payload = json!({
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": if failed { json!({"code": 7, "message": "PERMISSION_DENIED"}) } else { json!({}) },
            "authenticationInfo": {"principalEmail": principal},
            "requestMetadata": {
                "callerIp": self.caller_ip(),
                "callerSuppliedUserAgent": agent,
                "requestAttributes": {"time": time, "auth": {}},
                "destinationAttributes": {},
            },
            "serviceName": service,
            "methodName": method,
            "authorizationInfo": [{
                "resource": resource,
                "permission": format!("{}.{}", service.split('.').next().unwrap_or(service), method.rsplit('.').next().unwrap_or(method)),
                "granted": !failed,
                "resourceAttributes": {},
                "permissionType": if kind == "data_access" { "DATA_READ" } else { "ADMIN_WRITE" },
            }],
            "resourceName": resource,
            "resourceLocation": {"currentLocations": [zone]},
        });
        if !request.is_null() {
            payload["request"] = request;
        }
        if !response.is_null() && !failed {
            payload["response"] = response;
        }
        json!({
            "protoPayload": payload,
            "insertId": format!("{:x}", self.rng.u64(..)),
            "resource": {"type": "gce_instance", "labels": {"project_id": project, "zone": zone, "instance_id": self.rng.u64(..).to_string()}},
            "timestamp": time,
            "severity": if failed { "ERROR" } else { "NOTICE" },
            "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2F{kind}"),
            "receiveTimestamp": time,
        })
    }

    /// `entries` entries as NDJSON, as Cloud Logging exports them to GCS.
    pub fn ndjson(&mut self, entries: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..entries {
            serde_json::to_writer(&mut out, &self.entry()).expect("a JSON value serializes");
            out.push(b'\n');
        }
        out
    }

    fn principal(&mut self, project: &str) -> String {
        match self.rng.u8(..10) {
            0..=5 => format!(
                "{}@{project}.iam.gserviceaccount.com",
                ["deployer", "gke-node", "dataflow", "scheduler"][self.rng.usize(..4)]
            ),
            6..=8 => format!(
                "{}@example.com",
                ["alice", "bob", "carol"][self.rng.usize(..3)]
            ),
            _ => format!(
                "service-{}@compute-system.iam.gserviceaccount.com",
                self.rng.u64(100_000_000_000..999_999_999_999)
            ),
        }
    }

    fn caller_ip(&mut self) -> String {
        match self.rng.u8(..10) {
            0..=6 => format!(
                "{}.{}.{}.{}",
                self.rng.u8(1..224),
                self.rng.u8(..),
                self.rng.u8(..),
                self.rng.u8(1..255)
            ),
            7 => "gce-internal-ip".to_owned(),
            8 => "private".to_owned(),
            _ => format!("2001:db8:{:x}::{:x}", self.rng.u16(..), self.rng.u16(..)),
        }
    }

    /// (serviceName, methodName, resourceName, log kind, request, response)
    fn call(
        &mut self,
        project: &str,
        zone: &str,
    ) -> (
        &'static str,
        &'static str,
        String,
        &'static str,
        Value,
        Value,
    ) {
        let instance = format!("vm-{}", self.rng.u16(..300));
        let bucket = format!("bucket-{}", self.rng.u16(..300));
        match self.rng.u8(..100) {
            0..=29 => (
                "compute.googleapis.com",
                "v1.compute.instances.list",
                format!("projects/{project}/zones/{zone}/instances"),
                "data_access",
                Value::Null,
                Value::Null,
            ),
            30..=44 => (
                "storage.googleapis.com",
                "storage.objects.get",
                format!(
                    "projects/_/buckets/{bucket}/objects/data/{}.parquet",
                    self.rng.u32(..)
                ),
                "data_access",
                Value::Null,
                Value::Null,
            ),
            45..=54 => (
                "compute.googleapis.com",
                "v1.compute.instances.insert",
                format!("projects/{project}/zones/{zone}/instances/{instance}"),
                "activity",
                json!({"@type": "type.googleapis.com/compute.instances.insert", "name": instance, "machineType": format!("zones/{zone}/machineTypes/e2-standard-4"), "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12", "diskSizeGb": "50"}}], "networkInterfaces": [{"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}], "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}], "labels": {"team": "data", "env": "prod"}}),
                json!({"@type": "type.googleapis.com/operation", "id": self.rng.u64(..).to_string(), "name": format!("operation-{}", self.rng.u64(..)), "operationType": "insert", "status": "RUNNING", "progress": "0", "zone": zone, "targetLink": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instances/{instance}")}),
            ),
            55..=64 => (
                "iam.googleapis.com",
                "google.iam.admin.v1.ListServiceAccounts",
                format!("projects/{project}"),
                "data_access",
                json!({"@type": "type.googleapis.com/google.iam.admin.v1.ListServiceAccountsRequest", "name": format!("projects/{project}")}),
                Value::Null,
            ),
            65..=74 => (
                "cloudresourcemanager.googleapis.com",
                "SetIamPolicy",
                format!("projects/{project}"),
                "activity",
                json!({"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": project, "policy": {"bindings": [{"role": "roles/viewer", "members": ["user:alice@example.com"]}, {"role": "roles/logging.viewer", "members": ["group:sre@example.com"]}], "etag": "BwX1234="}}),
                json!({"@type": "type.googleapis.com/google.iam.v1.Policy", "bindings": [{"role": "roles/viewer", "members": ["user:alice@example.com"]}], "etag": "BwX5678="}),
            ),
            75..=84 => (
                "bigquery.googleapis.com",
                "google.cloud.bigquery.v2.JobService.InsertJob",
                format!("projects/{project}/jobs/job_{}", self.rng.u64(..)),
                "data_access",
                json!({"@type": "type.googleapis.com/google.cloud.bigquery.v2.InsertJobRequest", "job": {"jobConfig": {"type": "QUERY", "queryConfig": {"query": "SELECT user_id, COUNT(*) FROM `analytics.events` WHERE day = CURRENT_DATE() GROUP BY 1", "priority": "QUERY_INTERACTIVE"}}}}),
                Value::Null,
            ),
            85..=92 => (
                "storage.googleapis.com",
                "storage.setIamPermissions",
                format!("projects/_/buckets/{bucket}"),
                "activity",
                Value::Null,
                Value::Null,
            ),
            _ => (
                "logging.googleapis.com",
                "google.logging.v2.ConfigServiceV2.UpdateSink",
                format!("projects/{project}/sinks/audit-export"),
                "activity",
                json!({"@type": "type.googleapis.com/google.logging.v2.UpdateSinkRequest", "sinkName": format!("projects/{project}/sinks/audit-export"), "sink": {"destination": "storage.googleapis.com/audit-archive", "filter": "logName:\"cloudaudit.googleapis.com\""}}),
                Value::Null,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        assert_eq!(
            GcpGenerator::new(3).ndjson(20),
            GcpGenerator::new(3).ndjson(20)
        );
    }

    #[test]
    fn about_one_in_ten_fails() {
        let mut generator = GcpGenerator::new(1);
        let failed = (0..2_000)
            .filter(|_| generator.entry()["protoPayload"]["status"]["code"] == 7)
            .count();
        assert!((150..250).contains(&failed), "failed: {failed}");
    }
}
