use super::*;
use serde_json::json;

#[test]
fn json_values_reads_one_object_and_arrays_alike() {
    let one = json!({"Grant": {"Grantee": {"URI": "u1"}}});
    let many = json!({"Grant": [{"Grantee": {"URI": "u1"}}, {"Grantee": {"URI": "u2"}}]});
    assert_eq!(json_values(&one, &["Grant", "Grantee", "URI"]), ["u1"]);
    assert_eq!(
        json_values(&many, &["Grant", "Grantee", "URI"]),
        ["u1", "u2"]
    );
    assert_eq!(
        json_values(&json!({"a": [true, 3, null, "x"]}), &["a"]),
        ["true", "3", "x"]
    );
    assert!(json_values(&json!({"a": 1}), &["a", "b"]).is_empty());
    // A policy held as escaped JSON text is read through.
    let text = json!({"p": "{\"Statement\": {\"Effect\": \"Allow\"}}"});
    assert_eq!(json_values(&text, &["p", "Statement", "Effect"]), ["Allow"]);
}

#[test]
fn public_policy_needs_allow_anyone_and_no_confining_condition() {
    let allow = |principal: Value| json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}]});
    assert!(policy_public(&allow(json!("*"))));
    assert!(policy_public(&allow(json!({"AWS": "*"}))));
    assert!(policy_public(&allow(
        json!({"AWS": ["arn:aws:iam::1:root", "*"]})
    )));
    assert!(!policy_public(&allow(
        json!({"AWS": "arn:aws:iam::1:root"})
    )));
    assert!(!policy_public(&allow(
        json!({"Service": "logs.amazonaws.com"})
    )));
    // Deny to everyone is a hardening.
    let deny = json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}});
    assert!(!policy_public(&deny));
    // One statement object, not a list, and a policy kept as text.
    let single = json!({"Statement": {"Effect": "Allow", "Principal": "*"}});
    assert!(policy_public(&single));
    assert!(policy_public(&Value::String(single.to_string())));
    let org = json!({"Statement": [{"Effect": "Allow", "Principal": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}}]});
    assert!(!policy_public(&org));
    let ip = json!({"Statement": [{"Effect": "Allow", "Principal": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}]});
    assert!(policy_public(&ip));
    assert!(!policy_public(&json!({"Version": "2012-10-17"})));
    // Conditions that name an org key but do not confine to it.
    for condition in [
        json!({"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}}),
        json!({"Null": {"aws:PrincipalOrgID": "true"}}),
        json!({"StringLike": {"aws:PrincipalArn": "*"}}),
    ] {
        let policy =
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": condition}]});
        assert!(policy_public(&policy), "{policy}");
    }
    let vpce = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
        "Condition": {"ForAnyValue:StringEquals": {"aws:SourceVpce": ["vpce-1"]}}}]});
    assert!(!policy_public(&vpce));
    let not_principal = json!({"Statement": {"Effect": "Allow",
        "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject"}});
    assert!(policy_public(&not_principal));
    assert!(!policy_public(&json!("not a policy")));
}

fn sg(protocol: Value, from: Value, to: Value, cidr: &str) -> Value {
    json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": protocol,
        "fromPort": from, "toPort": to, "ipRanges": {"items": [{"cidrIp": cidr}]}}]}})
}

#[test]
fn ingress_opens_admin_ports_to_the_world() {
    assert!(aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(22),
        json!(22),
        "0.0.0.0/0"
    )));
    assert!(aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(0),
        json!(65535),
        "0.0.0.0/0"
    )));
    assert!(aws_ingress_admin_open(&sg(
        json!("-1"),
        Value::Null,
        Value::Null,
        "0.0.0.0/0"
    )));
    assert!(aws_ingress_admin_open(&sg(
        json!(6),
        json!("3380"),
        json!("3390"),
        "0.0.0.0/0"
    )));
    assert!(!aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(443),
        json!(443),
        "0.0.0.0/0"
    )));
    assert!(!aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(22),
        json!(22),
        "10.0.0.0/8"
    )));
    assert!(!aws_ingress_admin_open(&sg(
        json!("icmp"),
        json!(-1),
        json!(-1),
        "0.0.0.0/0"
    )));
    // IPv6 ranges, with `items` one object rather than a list.
    let v6 = json!({"ipPermissions": {"items": {"ipProtocol": "tcp", "fromPort": 3389,
        "toPort": 3389, "ipv6Ranges": {"items": {"cidrIpv6": "::/0"}}}}});
    assert!(aws_ingress_admin_open(&v6));
    // The legacy flat form.
    let flat = json!({"groupName": "web", "ipProtocol": "tcp", "fromPort": 5432,
        "toPort": 5432, "cidrIp": "0.0.0.0/0"});
    assert!(aws_ingress_admin_open(&flat));
    assert!(!aws_ingress_admin_open(&json!(null)));
    // A /0 block is the whole internet whatever its address bits.
    assert!(aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(22),
        json!(22),
        "208.236.235.254/0"
    )));
    assert!(!aws_ingress_admin_open(&sg(
        json!("tcp"),
        json!(22),
        json!(22),
        "0.0.0.0/1"
    )));
}

#[test]
fn firewall_opens_admin_ports_to_the_world() {
    let fw = |extra: Value| {
        let mut rule = json!({"name": "fw", "sourceRanges": ["0.0.0.0/0"],
            "alloweds": [{"IPProtocol": "tcp", "ports": ["22"]}]});
        if let (Some(rule), Some(extra)) = (rule.as_object_mut(), extra.as_object()) {
            rule.extend(extra.clone());
        }
        rule
    };
    assert!(gcp_firewall_admin_open(
        &fw(json!({})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(gcp_firewall_admin_open(
        &fw(json!({"direction": "INGRESS"})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(!gcp_firewall_admin_open(
        &fw(json!({"direction": "EGRESS"})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(!gcp_firewall_admin_open(
        &fw(json!({"disabled": true})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(!gcp_firewall_admin_open(
        &fw(json!({"sourceRanges": ["10.128.0.0/9"]})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(!gcp_firewall_admin_open(
        &fw(json!({"alloweds": [{"IPProtocol": "tcp", "ports": ["443", "8080-8090"]}]})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(gcp_firewall_admin_open(
        &fw(json!({"alloweds": [{"IPProtocol": "tcp", "ports": ["3000-3400"]}]})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(gcp_firewall_admin_open(
        &fw(json!({"alloweds": [{"IPProtocol": "all"}]})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(gcp_firewall_admin_open(
        &fw(json!({"alloweds": null, "allowed": {"IPProtocol": "tcp"}})),
        Some("v1.compute.firewalls.patch")
    ));
    assert!(!gcp_firewall_admin_open(
        &fw(json!({"alloweds": [{"IPProtocol": "icmp"}]})),
        Some("v1.compute.firewalls.patch")
    ));
}

#[test]
fn binding_deltas_are_found_wherever_the_service_puts_them() {
    let additional = json!({"serviceData": {"policyDelta": {"bindingDeltas": [
        {"action": "ADD", "role": "roles/owner", "member": "user:m@gmail.com"},
        {"action": "REMOVE", "role": "roles/viewer", "member": "allUsers"}]}},
        "metadata": {"datasetChange": {"bindingDeltas": {"action": "ADD",
        "role": "roles/bigquery.dataViewer", "member": "allAuthenticatedUsers"}}}});
    let deltas = binding_deltas(&additional);
    assert_eq!(deltas.len(), 3);
    let has =
        |role: &str, member: &str| deltas.iter().any(|d| d.role == role && d.member == member);
    assert!(has("roles/owner", "user:m@gmail.com"));
    assert!(has("roles/bigquery.dataViewer", "allAuthenticatedUsers"));
    assert!(binding_deltas(&json!({"serviceData": null})).is_empty());
}

#[test]
fn outsiders_are_users_groups_and_domains_from_elsewhere() {
    assert!(outsider("user:m@gmail.com", "alice@example.com", ""));
    assert!(!outsider("user:bob@Example.com", "alice@example.com", ""));
    assert!(!outsider(
        "group:ops@partner.io",
        "alice@example.com",
        "partner.io, x.org"
    ));
    assert!(outsider("domain:evil.test", "alice@example.com", ""));
    assert!(!outsider(
        "serviceAccount:a@p.iam.gserviceaccount.com",
        "alice@example.com",
        ""
    ));
    assert!(!outsider("allUsers", "alice@example.com", ""));
}

#[test]
fn audit_logging_reduced_by_remove_or_exemption() {
    let delta = |d: Value| json!({"serviceData": {"policyDelta": {"auditConfigDeltas": [d]}}});
    assert!(audit_logging_reduced(&delta(
        json!({"action": "REMOVE", "service": "allServices", "logType": "DATA_READ"})
    )));
    assert!(audit_logging_reduced(&delta(
        json!({"action": "ADD", "service": "allServices", "logType": "DATA_READ", "exemptedMember": "user:x@example.com"})
    )));
    assert!(!audit_logging_reduced(&delta(
        json!({"action": "ADD", "service": "allServices", "logType": "DATA_READ"})
    )));
    assert!(!audit_logging_reduced(&delta(
        json!({"action": "REMOVE", "service": "allServices", "logType": "DATA_READ", "exemptedMember": "user:x@example.com"})
    )));
}

#[test]
fn sink_updates_that_drop_audit_logs() {
    let sink = |s: Value| json!({"sinkName": "projects/p/sinks/s", "sink": s});
    assert!(sink_excludes_audit(
        &sink(json!({"disabled": true})),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(sink_excludes_audit(
        &sink(json!({"filter": "NOT logName:\"cloudaudit.googleapis.com\""})),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(sink_excludes_audit(
        &sink(
            json!({"filter": "severity>=ERROR AND -logName:projects/p/logs/cloudaudit.googleapis.com%2Factivity"})
        ),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(sink_excludes_audit(
        &sink(
            json!({"filter": "", "exclusions": [{"name": "x", "filter": "logName:cloudaudit.googleapis.com"}]})
        ),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(!sink_excludes_audit(
        &sink(
            json!({"exclusions": [{"name": "x", "disabled": true, "filter": "logName:cloudaudit.googleapis.com"}]})
        ),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(!sink_excludes_audit(
        &sink(json!({"filter": "logName:\"cloudaudit.googleapis.com\"", "disabled": false})),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(!sink_excludes_audit(
        &json!({"sinkName": "x"}),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(sink_excludes_audit(
        &sink(
            json!({"filter": "logName != \"projects/p/logs/cloudaudit.googleapis.com%2Factivity\""})
        ),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    assert!(sink_excludes_audit(
        &sink(json!({"filter": "logName!~\"cloudaudit\""})),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
    // The same comparison as an exclusion keeps the audit logs.
    assert!(!sink_excludes_audit(
        &sink(
            json!({"exclusions": [{"name": "x", "filter": "logName != \"cloudaudit.googleapis.com\""}]})
        ),
        Some("google.logging.v2.ConfigServiceV2.CreateSink")
    ));
}
