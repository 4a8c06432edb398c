//! AWS request semantics: who a resource policy lets in, whether an identity policy is
//! administrator access, and what a security-group change exposes.

use serde_json::Value;

use super::network::{Exposure, admin_port_open, admin_ports, covers_internet, port};
use super::{embedded, items, json_values};

/// Condition keys that confine a `*` principal to an organisation, account, network
/// or principal, when matched positively against values that pin them down.
const CONFINING_CONDITION_KEYS: &[&str] = &[
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:userid",
];

/// Whether an IAM resource policy has an `Allow` statement for any principal (`"*"`,
/// `{"AWS": "*"}`, `"*"` in a list, or a `NotPrincipal`) that no condition confines.
/// A `Deny` for `*` is a hardening and does not count. What confines follows AWS's own
/// reading of "public" (see [`confines`]).
pub fn policy_public(policy: &Value) -> bool {
    let policy = embedded(policy);
    let Some(statements) = policy.get("Statement") else {
        return false;
    };
    items(statements).into_iter().any(|statement| {
        let allows = statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("allow"));
        // `Allow` with `NotPrincipal` grants everyone but the principals named.
        let anyone = statement.get("NotPrincipal").is_some()
            || statement.get("Principal").is_some_and(|p| match p {
                Value::String(s) => s == "*",
                Value::Object(map) => map
                    .get("AWS")
                    .is_some_and(|aws| items(aws).iter().any(|v| v.as_str() == Some("*"))),
                _ => false,
            });
        let confined = statement
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|operators| {
                operators.iter().any(|(operator, keys)| {
                    keys.as_object().is_some_and(|keys| {
                        keys.iter()
                            .any(|(key, value)| confines(operator, key, &json_values(value, &[])))
                    })
                })
            });
        allows && anyone && !confined
    })
}

/// Whether one condition (`operator: {key: values}`) keeps an anonymous caller out:
/// - a positive match (`StringEquals`, `StringEqualsIgnoreCase`, `StringLike`,
///   `ArnEquals`, `ArnLike`, alone or under `ForAnyValue:`) of an organisation,
///   account, principal or network key against values that pin it down: no wildcard,
///   or a wildcard only past the account of an ARN (`arn:aws:iam::111122223333:role/*`)
///   or past the organisation of an org path (`o-a1b2c3/*`);
/// - `IpAddress` on `aws:SourceIp` with ranges that are not the whole internet.
///
/// Not confining: `…IfExists` (a caller without the key passes), `ForAllValues:` (true
/// when the key is absent), negated matches and `Null`.
fn confines(operator: &str, key: &str, values: &[String]) -> bool {
    let (qualifier, base) = operator.rsplit_once(':').unwrap_or(("", operator));
    let base = base.to_ascii_lowercase();
    if base.ends_with("ifexists") || qualifier.eq_ignore_ascii_case("ForAllValues") {
        return false;
    }
    let key = key.to_ascii_lowercase();
    if values.is_empty() {
        return false;
    }
    if base == "ipaddress" && key == "aws:sourceip" {
        return !covers_internet(values.iter().map(String::as_str));
    }
    let positive = matches!(
        base.as_str(),
        "stringequals" | "stringequalsignorecase" | "stringlike" | "arnequals" | "arnlike"
    );
    positive
        && CONFINING_CONDITION_KEYS.contains(&key.as_str())
        && values.iter().all(|v| pinned(&key, v))
}

/// Whether a condition value names a bounded set of callers.
fn pinned(key: &str, value: &str) -> bool {
    let wild = |s: &str| s.contains(['*', '?']);
    if !wild(value) {
        return !value.is_empty();
    }
    match key {
        "aws:principalarn" | "aws:sourcearn" => {
            // arn:partition:service:region:account:resource
            let fields: Vec<&str> = value.splitn(6, ':').collect();
            fields.len() == 6
                && fields[0] == "arn"
                && !wild(fields[1])
                && fields[4].len() == 12
                && fields[4].bytes().all(|b| b.is_ascii_digit())
        }
        "aws:principalorgpaths" | "aws:sourceorgpaths" => value
            .split('/')
            .next()
            .is_some_and(|org| org.starts_with("o-") && !wild(org)),
        _ => false,
    }
}

/// Whether an identity policy document allows every action on every resource: an
/// `Allow` statement whose `Action` is `*` or `*:*` (alone or in a list) and whose
/// `Resource` is `*`. The managed `AdministratorAccess` is such a policy; an inline one
/// or a new default version is the same grant.
pub fn policy_admin(policy: &Value) -> bool {
    let policy = embedded(policy);
    let Some(statements) = policy.get("Statement") else {
        return false;
    };
    let has_star = |v: Option<&Value>, stars: &[&str]| {
        v.is_some_and(|v| {
            items(v)
                .iter()
                .any(|x| x.as_str().is_some_and(|s| stars.contains(&s.trim())))
        })
    };
    items(statements).into_iter().any(|statement| {
        statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("allow"))
            && has_star(statement.get("Action"), &["*", "*:*"])
            && has_star(statement.get("Resource"), &["*"])
    })
}

/// `object[key]`, whatever the case of the key's first letter (EC2's newer APIs are
/// logged with `CidrIpv4`, the older ones with `cidrIp`).
fn field<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        let mut chars = key.chars();
        let first = chars.next()?;
        let flipped: String = if first.is_ascii_lowercase() {
            first.to_ascii_uppercase().to_string() + chars.as_str()
        } else {
            first.to_ascii_lowercase().to_string() + chars.as_str()
        };
        object.get(flipped)
    })
}

fn text(value: Option<&Value>) -> String {
    value
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default()
}

/// The port range of a permission: both ends, one, or none (every port).
fn port_range(p: &Value) -> Option<(i64, i64)> {
    match (port(field(p, "fromPort")), port(field(p, "toPort"))) {
        (Some(from), Some(to)) => Some((from, to)),
        (Some(one), None) | (None, Some(one)) => Some((one, one)),
        (None, None) => None,
    }
}

/// Whether a security-group change opens an admin port to the whole internet, the
/// sources of the whole request counted together (two halves of IPv4 are the
/// internet):
/// - `AuthorizeSecurityGroupIngress`: the permissions in `ipPermissions.items` (one
///   object or a list) or the legacy top-level fields;
/// - `ModifySecurityGroupRules`: rules set to a protocol and port range. The request
///   does not say whether a rule is ingress or egress, and the default egress rule is
///   every protocol to `0.0.0.0/0`, so here only a rule naming an admin port counts.
pub fn aws_ingress_admin_open(request: &Value) -> bool {
    let mut exposures = Vec::new();
    let mut permissions: Vec<&Value> = Vec::new();
    if let Some(list) = request.get("ipPermissions") {
        for p in items(list) {
            match p.get("items") {
                Some(inner) => permissions.extend(items(inner)),
                None => permissions.push(p),
            }
        }
    }
    if request.get("cidrIp").is_some() || request.get("ipProtocol").is_some() {
        permissions.push(request);
    }
    for p in permissions {
        let sources = [
            "cidrIp",
            "ipRanges.cidrIp",
            "ipRanges.items.cidrIp",
            "ipv6Ranges.cidrIpv6",
            "ipv6Ranges.items.cidrIpv6",
        ]
        .iter()
        .flat_map(|path| json_values(p, &path.split('.').collect::<Vec<_>>()))
        .collect();
        exposures.push(Exposure {
            ports: admin_ports(&text(field(p, "ipProtocol")), port_range(p)),
            sources,
        });
    }
    let modify = field(request, "modifySecurityGroupRulesRequest").unwrap_or(request);
    if let Some(updates) = field(modify, "securityGroupRule") {
        for update in items(updates) {
            let Some(rule) = field(update, "securityGroupRule") else {
                continue;
            };
            let protocol = text(field(rule, "ipProtocol"));
            if protocol.trim() == "-1" || protocol.eq_ignore_ascii_case("all") {
                continue;
            }
            let Some(range) = port_range(rule) else {
                continue;
            };
            let sources = ["cidrIpv4", "cidrIpv6"]
                .iter()
                .filter_map(|k| field(rule, k).and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            exposures.push(Exposure {
                ports: admin_ports(&protocol, Some(range)),
                sources,
            });
        }
    }
    admin_port_open(&exposures)
}

/// Whether a CloudTrail change narrows what a trail records:
/// - `PutEventSelectors` with basic selectors of which none records management
///   writes (`includeManagementEvents` left true, its default, with `readWriteType`
///   `All`, the default, or `WriteOnly`);
/// - `PutEventSelectors` with advanced selectors of which none selects management
///   events without confining them to read-only calls;
/// - `UpdateTrail` turning off `isMultiRegionTrail` or `includeGlobalServiceEvents`.
pub fn trail_narrowed(request: &Value) -> bool {
    let off = |key: &str| {
        request
            .get(key)
            .is_some_and(|v| v == &Value::Bool(false) || v.as_str() == Some("false"))
    };
    if off("isMultiRegionTrail") || off("includeGlobalServiceEvents") {
        return true;
    }
    if let Some(selectors) = request.get("eventSelectors") {
        return !items(selectors).into_iter().any(|s| {
            let management = !s
                .get("includeManagementEvents")
                .is_some_and(|v| v == &Value::Bool(false) || v.as_str() == Some("false"));
            let writes = s
                .get("readWriteType")
                .and_then(Value::as_str)
                .is_none_or(|t| {
                    t.eq_ignore_ascii_case("All") || t.eq_ignore_ascii_case("WriteOnly")
                });
            management && writes
        });
    }
    if let Some(selectors) = request.get("advancedEventSelectors") {
        return !items(selectors).into_iter().any(|s| {
            let fields: Vec<&Value> = s.get("fieldSelectors").map(items).unwrap_or_default();
            let equals = |name: &str, value: &str| {
                fields.iter().any(|f| {
                    f.get("field").and_then(Value::as_str) == Some(name)
                        && json_values(f, &["equals"])
                            .iter()
                            .any(|v| v.eq_ignore_ascii_case(value))
                })
            };
            equals("eventCategory", "Management") && !equals("readOnly", "true")
        });
    }
    false
}

/// The groups whose grant makes a bucket public.
const PUBLIC_GROUPS: [&str; 2] = [
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
];

/// Whether an S3 `PutBucketAcl` request grants access to everyone: a public canned ACL
/// (`x-amz-acl` `public-read`, `public-read-write`, `authenticated-read`), a grant in
/// the ACL body to the AllUsers or AuthenticatedUsers group (`Grant` one object or a
/// list), or such a grant in an `x-amz-grant-*` header (`uri="…/AllUsers"`).
pub fn acl_public(request: &Value) -> bool {
    let canned = json_values(request, &["x-amz-acl"]).iter().any(|acl| {
        ["public-read", "public-read-write", "authenticated-read"].contains(&acl.trim())
    });
    let body = json_values(
        request,
        &[
            "AccessControlPolicy",
            "AccessControlList",
            "Grant",
            "Grantee",
            "URI",
        ],
    )
    .iter()
    .any(|uri| PUBLIC_GROUPS.contains(&uri.trim()));
    let headers = [
        "x-amz-grant-read",
        "x-amz-grant-write",
        "x-amz-grant-read-acp",
        "x-amz-grant-write-acp",
        "x-amz-grant-full-control",
    ]
    .iter()
    .flat_map(|h| json_values(request, &[h]))
    .any(|grantees| {
        grantees.split(',').any(|grantee| {
            grantee
                .trim()
                .strip_prefix("uri=")
                .is_some_and(|uri| PUBLIC_GROUPS.contains(&uri.trim().trim_matches('"')))
        })
    });
    canned || body || headers
}

/// The account of an AWS principal: a 12-digit id, or the account field of an ARN.
fn account_of(principal: &str) -> Option<&str> {
    let principal = principal.trim();
    let id = if principal.starts_with("arn:") {
        principal.split(':').nth(4)?
    } else {
        principal
    };
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// Whether `id` is the account itself or one of the listed (comma- or space-separated).
fn trusted(id: &str, own: &str, listed: &str) -> bool {
    id == own.trim() || listed.split([',', ' ', '\n', '\t']).any(|t| t.trim() == id)
}

/// Whether a snapshot, image or database-snapshot sharing adds an account that is
/// neither the account itself nor a listed one (`all` is another rule's business).
pub fn shares_outside(request: &Value, own: &str, listed: &str) -> bool {
    [
        "createVolumePermission.add.items.userId",
        "launchPermission.add.items.userId",
        "valuesToAdd",
    ]
    .iter()
    .flat_map(|path| json_values(request, &path.split('.').collect::<Vec<_>>()))
    .filter(|id| !id.eq_ignore_ascii_case("all"))
    .any(|id| !trusted(id.trim(), own, listed))
}

/// Whether a role trust policy lets anyone, or an account that is neither the account
/// itself nor a listed one, assume the role: an `Allow` of `sts:AssumeRole*` (or
/// `sts:*`, `*`) to `*` that no condition confines (see [`policy_public`];
/// `sts:ExternalId` confines no one), or to an AWS principal of such an account.
pub fn trust_outside(policy: &Value, own: &str, listed: &str) -> bool {
    let policy = assume_statements(policy);
    if policy_public(&policy) {
        return true;
    }
    let Some(statements) = policy.get("Statement") else {
        return false;
    };
    items(statements).into_iter().any(|statement| {
        statement
            .get("Principal")
            .and_then(|p| p.get("AWS"))
            .is_some_and(|aws| {
                items(aws)
                    .into_iter()
                    .filter_map(Value::as_str)
                    .any(|p| p != "*" && account_of(p).is_some_and(|id| !trusted(id, own, listed)))
            })
    })
}

/// The `Allow` statements of a policy whose actions include assuming a role.
fn assume_statements(policy: &Value) -> Value {
    let policy = embedded(policy);
    let assumes = |statement: &&Value| {
        let allows = statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("allow"));
        allows
            && statement.get("Action").is_some_and(|actions| {
                items(actions)
                    .into_iter()
                    .filter_map(Value::as_str)
                    .any(|a| {
                        let a = a.to_ascii_lowercase();
                        a == "*" || a == "sts:*" || a.starts_with("sts:assumerole")
                    })
            })
    };
    let kept: Vec<Value> = policy
        .get("Statement")
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .filter(assumes)
        .cloned()
        .collect();
    serde_json::json!({ "Statement": kept })
}

#[cfg(test)]
mod tests;
