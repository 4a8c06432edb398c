use serde_json::{Value, json};

use super::*;

fn statement(condition: Value) -> Value {
    json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::b/*", "Condition": condition}]})
}

/// The truth table of what confines an anonymous caller, one condition at a time.
#[test]
fn conditions_confine_anyone_only_when_a_caller_without_the_key_fails_them() {
    let public = [
        // A caller without the key passes an …IfExists test.
        json!({"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}),
        json!({"ArnLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/x"}}),
        // ForAllValues is true when the key is absent.
        json!({"ForAllValues:StringEquals": {"aws:PrincipalOrgPaths": ["o-a1b2c3d4e5/r-ab12/"]}}),
        // Negations and Null tests let everyone else in.
        json!({"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}),
        json!({"Null": {"aws:PrincipalOrgID": "false"}}),
        // Values that pin nothing down.
        json!({"StringLike": {"aws:PrincipalOrgID": "o-*"}}),
        json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/deployer"}}),
        json!({"StringLike": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/x", "*"]}}),
        json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
        json!({"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}),
        // Keys that are not about who the caller is.
        json!({"Bool": {"aws:SecureTransport": "true"}}),
        json!({"StringEquals": {"s3:prefix": "public/"}}),
    ];
    for condition in public {
        assert!(policy_public(&statement(condition.clone())), "{condition}");
    }
    let confined = [
        json!({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}),
        json!({"StringEquals": {"aws:principalorgid": ["o-a1b2c3d4e5", "o-f6g7h8i9j0"]}}),
        json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-ab12/ou-*"}}),
        json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}),
        json!({"ArnLike": {"aws:SourceArn": "arn:aws-us-gov:iam::111122223333:*"}}),
        json!({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}),
        json!({"StringEquals": {"aws:SourceVpc": "vpc-111bbb22"}}),
        json!({"StringEquals": {"aws:SourceAccount": "111122223333"}}),
        json!({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}),
    ];
    for condition in confined {
        assert!(!policy_public(&statement(condition.clone())), "{condition}");
    }
    // One confining condition among others is enough.
    assert!(!policy_public(&statement(json!({
        "Bool": {"aws:SecureTransport": "true"},
        "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}
    }))));
}

#[test]
fn public_needs_an_allow_for_anyone() {
    let with = |effect: &str, principal: Value| json!({"Statement": {"Effect": effect, "Principal": principal, "Action": "s3:*"}});
    assert!(policy_public(&with("Allow", json!("*"))));
    assert!(policy_public(&with(
        "Allow",
        json!({"AWS": ["arn:aws:iam::1:root", "*"]})
    )));
    assert!(!policy_public(&with("Deny", json!("*"))));
    assert!(!policy_public(&with(
        "Allow",
        json!({"Service": "cloudfront.amazonaws.com"})
    )));
    assert!(!policy_public(&with(
        "Allow",
        json!({"AWS": "arn:aws:iam::1:root"})
    )));
    let not_principal =
        json!({"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}}});
    assert!(policy_public(&not_principal));
    // As CloudTrail sometimes logs it: the document as escaped text.
    assert!(policy_public(&Value::String(
        with("Allow", json!("*")).to_string()
    )));
}

#[test]
fn admin_policies_allow_every_action_on_every_resource() {
    let doc = |effect: &str, action: Value, resource: Value| json!({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": resource}]});
    assert!(policy_admin(&doc("Allow", json!("*"), json!("*"))));
    assert!(policy_admin(&doc(
        "Allow",
        json!(["s3:GetObject", "*:*"]),
        json!(["*"])
    )));
    assert!(policy_admin(&Value::String(
        doc("Allow", json!("*"), json!("*")).to_string()
    )));
    assert!(!policy_admin(&doc("Deny", json!("*"), json!("*"))));
    assert!(!policy_admin(&doc("Allow", json!("s3:*"), json!("*"))));
    assert!(!policy_admin(&doc(
        "Allow",
        json!("*"),
        json!("arn:aws:s3:::b/*")
    )));
    assert!(!policy_admin(&json!({"Version": "2012-10-17"})));
}

#[test]
fn security_group_changes_open_admin_ports_by_coverage() {
    let ingress = |ranges: Value, protocol: &str, from: i64, to: i64| {
        json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": protocol,
            "fromPort": from, "toPort": to, "ipRanges": {"items": ranges}}]}})
    };
    assert!(aws_ingress_admin_open(&ingress(
        json!([{"cidrIp": "0.0.0.0/0"}]),
        "tcp",
        22,
        22
    )));
    assert!(aws_ingress_admin_open(&ingress(
        json!([{"cidrIp": "0.0.0.0/1"}, {"cidrIp": "128.0.0.0/1"}]),
        "6",
        20,
        25
    )));
    assert!(!aws_ingress_admin_open(&ingress(
        json!([{"cidrIp": "0.0.0.0/1"}]),
        "tcp",
        22,
        22
    )));
    assert!(!aws_ingress_admin_open(&ingress(
        json!([{"cidrIp": "0.0.0.0/0"}]),
        "tcp",
        443,
        443
    )));
    // Two permissions of one request: each half on another port is no single port open.
    let split = json!({"ipPermissions": {"items": [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/1"}]}},
        {"ipProtocol": "tcp", "fromPort": 3389, "toPort": 3389, "ipRanges": {"items": [{"cidrIp": "128.0.0.0/1"}]}}
    ]}});
    assert!(!aws_ingress_admin_open(&split));
    let v6 = json!({"ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 3389, "toPort": 3389,
        "ipv6Ranges": {"items": [{"cidrIpv6": "::/1"}, {"cidrIpv6": "8000::/1"}]}}]}});
    assert!(aws_ingress_admin_open(&v6));

    let modify = |rule: Value| {
        json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-1", "SecurityGroupRule":
            {"SecurityGroupRuleId": "sgr-1", "SecurityGroupRule": rule, "tag": 1}}})
    };
    assert!(aws_ingress_admin_open(&modify(json!(
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "CidrIpv4": "0.0.0.0/0"}
    ))));
    // Every protocol to everyone is also the default egress rule: not counted here.
    assert!(!aws_ingress_admin_open(&modify(json!(
        {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"}
    ))));
    assert!(!aws_ingress_admin_open(&modify(json!(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/8"}
    ))));
}

#[test]
fn trails_are_narrowed_when_management_writes_or_coverage_go() {
    let basic = |selectors: Value| json!({"trailName": "t", "eventSelectors": selectors});
    assert!(trail_narrowed(&basic(
        json!([{"readWriteType": "ReadOnly", "includeManagementEvents": true}])
    )));
    assert!(trail_narrowed(&basic(
        json!([{"includeManagementEvents": false}])
    )));
    assert!(!trail_narrowed(&basic(json!([{"readWriteType": "All"}]))));
    assert!(!trail_narrowed(&basic(json!([
        {"readWriteType": "ReadOnly"}, {"readWriteType": "WriteOnly", "includeManagementEvents": true}
    ]))));
    let advanced = |fields: Value| json!({"trailName": "t", "advancedEventSelectors": [{"fieldSelectors": fields}]});
    assert!(trail_narrowed(&advanced(
        json!([{"field": "eventCategory", "equals": ["Data"]}])
    )));
    assert!(trail_narrowed(&advanced(json!([
        {"field": "eventCategory", "equals": ["Management"]}, {"field": "readOnly", "equals": ["true"]}
    ]))));
    assert!(!trail_narrowed(&advanced(
        json!([{"field": "eventCategory", "equals": ["Management"]}])
    )));
    assert!(trail_narrowed(
        &json!({"name": "t", "isMultiRegionTrail": false})
    ));
    assert!(trail_narrowed(
        &json!({"name": "t", "includeGlobalServiceEvents": false})
    ));
    assert!(!trail_narrowed(&json!({"name": "t", "s3BucketName": "b"})));
}

#[test]
fn sharing_counts_accounts_outside_the_organisation() {
    let snapshot = |ids: &[&str]| {
        let items: Vec<Value> = ids.iter().map(|id| json!({"userId": id})).collect();
        json!({"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": items}}})
    };
    let trusted = "444455556666, 777788889999";
    assert!(shares_outside(
        &snapshot(&["210987654321"]),
        "111122223333",
        trusted
    ));
    assert!(!shares_outside(
        &snapshot(&["444455556666"]),
        "111122223333",
        trusted
    ));
    assert!(!shares_outside(
        &snapshot(&["111122223333"]),
        "111122223333",
        ""
    ));
    let rds = json!({"attributeName": "restore", "valuesToAdd": ["all", "777788889999"]});
    assert!(!shares_outside(&rds, "111122223333", trusted));
    let removal =
        json!({"createVolumePermission": {"remove": {"items": [{"userId": "210987654321"}]}}});
    assert!(!shares_outside(&removal, "111122223333", trusted));
}

#[test]
fn trust_policies_open_to_anyone_or_to_outside_accounts() {
    let trust = |principal: Value, condition: Value| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal,
               "Action": "sts:AssumeRole", "Condition": condition}]})
    };
    let own = "111122223333";
    let listed = "444455556666";
    assert!(trust_outside(&trust(json!("*"), json!({})), own, listed));
    // An external id is a shared secret, not a bound on who asks.
    assert!(trust_outside(
        &trust(
            json!({"AWS": "*"}),
            json!({"StringEquals": {"sts:ExternalId": "x"}})
        ),
        own,
        listed
    ));
    assert!(!trust_outside(
        &trust(
            json!("*"),
            json!({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})
        ),
        own,
        listed
    ));
    assert!(trust_outside(
        &trust(
            json!({"AWS": ["arn:aws:iam::444455556666:root", "210987654321"]}),
            json!({})
        ),
        own,
        listed
    ));
    assert!(!trust_outside(
        &trust(
            json!({"AWS": "arn:aws:iam::444455556666:role/deployer"}),
            json!({})
        ),
        own,
        listed
    ));
    assert!(!trust_outside(
        &trust(json!({"Service": "ec2.amazonaws.com"}), json!({})),
        own,
        listed
    ));
    // As CloudTrail logs it: the document as JSON text; a Deny opens nothing.
    let deny =
        json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}]});
    assert!(!trust_outside(
        &Value::String(deny.to_string()),
        own,
        listed
    ));
    let s3 =
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]});
    assert!(!trust_outside(&s3, own, listed));
}

#[test]
fn acls_are_public_by_canned_acl_grant_or_header() {
    assert!(acl_public(&json!({"x-amz-acl": ["public-read"]})));
    assert!(acl_public(&json!({"x-amz-acl": "authenticated-read"})));
    assert!(!acl_public(&json!({"x-amz-acl": ["private"]})));
    let grant = |uri: &str| json!({"AccessControlPolicy": {"AccessControlList": {"Grant": {"Grantee": {"URI": uri}, "Permission": "READ"}}}});
    assert!(acl_public(&grant(
        "http://acs.amazonaws.com/groups/global/AllUsers"
    )));
    assert!(!acl_public(&grant(
        "http://acs.amazonaws.com/groups/s3/LogDelivery"
    )));
    assert!(acl_public(
        &json!({"x-amz-grant-read": "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""})
    ));
    assert!(acl_public(&json!({"x-amz-grant-full-control": [
        "id=\"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be\", uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
    ]})));
    assert!(!acl_public(
        &json!({"x-amz-grant-write": "uri=\"http://acs.amazonaws.com/groups/s3/LogDelivery\""})
    ));
}
