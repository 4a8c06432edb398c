use serde_json::json;

use super::*;

#[test]
fn firewall_inserts_take_the_api_defaults_and_patches_do_not() {
    let insert = Some("v1.compute.firewalls.insert");
    let patch = Some("v1.compute.firewalls.patch");
    let ssh = json!({"name": "fw", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]});
    // No direction, no source: ingress from 0.0.0.0/0.
    assert!(gcp_firewall_admin_open(&ssh, insert));
    assert!(!gcp_firewall_admin_open(&ssh, patch));
    let typed = json!({"@type": "type.googleapis.com/compute.firewalls.update",
                       "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]});
    assert!(gcp_firewall_admin_open(&typed, None));
    let tagged =
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceTags": ["bastion"]});
    assert!(!gcp_firewall_admin_open(&tagged, insert));
    let all_tcp = json!({"sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp"}]});
    assert!(gcp_firewall_admin_open(&all_tcp, patch));
}

#[test]
fn firewall_sources_count_together_and_protocols_may_be_numbers() {
    let rule = |ranges: serde_json::Value, protocol: &str, ports: serde_json::Value| json!({"sourceRanges": ranges, "allowed": [{"IPProtocol": protocol, "ports": ports}]});
    let op = Some("v1.compute.firewalls.patch");
    assert!(gcp_firewall_admin_open(
        &rule(json!(["0.0.0.0/1", "128.0.0.0/1"]), "tcp", json!(["22"])),
        op
    ));
    assert!(gcp_firewall_admin_open(
        &rule(json!(["::/1", "8000::/1"]), "tcp", json!(["3389"])),
        op
    ));
    assert!(gcp_firewall_admin_open(
        &rule(json!(["0.0.0.0/0"]), "6", json!(["20-25"])),
        op
    ));
    assert!(!gcp_firewall_admin_open(
        &rule(json!(["0.0.0.0/1"]), "tcp", json!(["22"])),
        op
    ));
    assert!(!gcp_firewall_admin_open(
        &rule(json!(["0.0.0.0/0"]), "tcp", json!(["443"])),
        op
    ));
    let egress = json!({"direction": "EGRESS", "destinationRanges": ["0.0.0.0/0"],
                        "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]});
    assert!(!gcp_firewall_admin_open(
        &egress,
        Some("v1.compute.firewalls.insert")
    ));
    let off = json!({"disabled": true, "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}]});
    assert!(!gcp_firewall_admin_open(&off, op));
}

#[test]
fn a_whole_policy_without_a_delta_grants_its_members() {
    let deltas = |v: &Value| {
        binding_deltas(v)
            .into_iter()
            .map(|d| format!("{} {} {}", d.action, d.role, d.member))
            .collect::<Vec<_>>()
    };
    let logged = json!({"policyDelta": {"bindingDeltas": [{"action": "REMOVE", "role": "roles/viewer", "member": "user:a@x.com"}]}});
    let policy = json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers", "user:b@x.com"]}]}});
    // A logged delta is the truth; the whole policy is read only without one.
    assert_eq!(
        deltas(&iam_changes(Some(&logged), Some(&policy), None)),
        ["REMOVE roles/viewer user:a@x.com"]
    );
    assert_eq!(
        deltas(&iam_changes(Some(&json!({})), Some(&policy), None)),
        [
            "ADD roles/run.invoker allUsers",
            "ADD roles/run.invoker user:b@x.com"
        ]
    );
    let response = json!({"@type": "type.googleapis.com/google.iam.v1.Policy",
                          "bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allAuthenticatedUsers"]}]});
    assert_eq!(
        deltas(&iam_changes(
            None,
            Some(&json!({"resource": "f"})),
            Some(&response)
        )),
        ["ADD roles/cloudfunctions.invoker allAuthenticatedUsers"]
    );
    // A logged delta that changed only the audit configuration granted nothing, though
    // the whole policy in the request holds its existing bindings.
    let audit_only = json!({"serviceData": {"policyDelta": {"auditConfigDeltas": [
        {"action": "REMOVE", "service": "allServices", "logType": "DATA_READ"}]}}});
    assert!(deltas(&iam_changes(Some(&audit_only), Some(&policy), None)).is_empty());
    // A mask that leaves the bindings out changes none.
    let masked = json!({"policy": {"bindings": [{"role": "roles/owner", "members": ["user:c@x.com"]}]}, "updateMask": "auditConfigs"});
    assert!(deltas(&iam_changes(None, Some(&masked), None)).is_empty());
    let with_bindings = json!({"policy": {"bindings": [{"role": "roles/owner", "members": ["user:c@x.com"]}]}, "updateMask": {"paths": ["bindings", "etag"]}});
    assert_eq!(
        deltas(&iam_changes(None, Some(&with_bindings), None)).len(),
        1
    );
}
