//! GCP request semantics: IAM policy changes (deltas or whole policies), firewall
//! exposure, audit-config changes.

use serde_json::{Value, json};

use super::network::{Exposure, admin_port_open, admin_ports};
use super::{items, json_values, update_mask};

/// Whether a Compute firewall change makes an enabled ingress rule that opens an admin
/// port to the whole internet. Fields left out take the API's defaults where the call
/// sets the whole rule (`insert`, `update`; `operation` names the call, else the
/// request's `@type` does): the direction is `INGRESS`, and with no `sourceRanges`,
/// `sourceTags` or `sourceServiceAccounts` the source is `0.0.0.0/0`. A `patch` changes
/// only what it names. Source ranges count together (`0.0.0.0/1` with `128.0.0.0/1`);
/// protocols may be names or IANA numbers, ports single or ranges, none meaning all.
pub fn gcp_firewall_admin_open(request: &Value, operation: Option<&str>) -> bool {
    let call = operation
        .or_else(|| request.get("@type").and_then(Value::as_str))
        .unwrap_or("");
    let whole = call.ends_with(".insert") || call.ends_with(".update");
    let ingress = request
        .get("direction")
        .and_then(Value::as_str)
        .is_none_or(|d| d.eq_ignore_ascii_case("INGRESS"));
    let disabled = request.get("disabled").and_then(Value::as_bool) == Some(true);
    if !ingress || disabled {
        return false;
    }
    let mut sources = json_values(request, &["sourceRanges"]);
    let sourced = ["sourceRanges", "sourceTags", "sourceServiceAccounts"]
        .iter()
        .any(|k| request.get(*k).is_some_and(|v| !items(v).is_empty()));
    if whole && !sourced {
        sources.push("0.0.0.0/0".to_owned());
    }
    let exposures: Vec<Exposure> = ["alloweds", "allowed"]
        .iter()
        .filter_map(|k| request.get(*k))
        .flat_map(items)
        .map(|rule| {
            let protocol = rule
                .get("IPProtocol")
                .or_else(|| rule.get("ipProtocol"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default();
            let ranges = json_values(rule, &["ports"]);
            let mut ports = Vec::new();
            if ranges.is_empty() {
                ports = admin_ports(&protocol, None);
            }
            for range in &ranges {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(from), Ok(to)) = (from.trim().parse(), to.trim().parse()) {
                    ports.extend(admin_ports(&protocol, Some((from, to))));
                }
            }
            Exposure {
                ports,
                sources: sources.clone(),
            }
        })
        .collect();
    admin_port_open(&exposures)
}

/// One entry of a GCP IAM policy delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingDelta {
    pub action: String,
    pub role: String,
    pub member: String,
}

/// Every `bindingDeltas` entry found anywhere in `additional` (services put the policy
/// delta under `serviceData.policyDelta`, `metadata.policyDelta` or service-specific
/// keys such as `metadata.datasetChange`).
pub fn binding_deltas(additional: &Value) -> Vec<BindingDelta> {
    let mut out = Vec::new();
    find_key(additional, "bindingDeltas", &mut |deltas| {
        for d in items(deltas) {
            let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            out.push(BindingDelta {
                action: text("action"),
                role: text("role"),
                member: text("member"),
            });
        }
    });
    out
}

pub(super) fn find_key(value: &Value, key: &str, found: &mut dyn FnMut(&Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    found(v);
                } else {
                    find_key(v, key, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_key(v, key, found)),
        _ => {}
    }
}

fn domain_of(identity: &str) -> Option<String> {
    identity
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Whether an added member is a user, group or Workspace domain outside the actor's
/// own domain and the listed domains (comma- or space-separated). Service accounts,
/// `allUsers` and the like are other rules' business.
pub fn outsider(member: &str, actor: &str, listed: &str) -> bool {
    let Some((kind, id)) = member.split_once(':') else {
        return false;
    };
    let domain = match kind {
        "user" | "group" => domain_of(id),
        "domain" => Some(id.trim().to_ascii_lowercase()),
        _ => None,
    };
    let Some(domain) = domain else { return false };
    let mut inside = listed
        .split([',', ' ', '\n', '\t'])
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .chain(domain_of(actor));
    !inside.any(|d| d == domain)
}

/// Whether an audit-config delta turns data-access logging off (a REMOVE of a log
/// type) or exempts members from it (an ADD carrying `exemptedMember`).
pub fn audit_logging_reduced(additional: &Value) -> bool {
    let mut reduced = false;
    find_key(additional, "auditConfigDeltas", &mut |deltas| {
        for d in items(deltas) {
            let action = d.get("action").and_then(Value::as_str).unwrap_or("");
            let exempts = d
                .get("exemptedMember")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty());
            // A REMOVE carrying `exemptedMember` ends an exemption: more logging.
            if (action.eq_ignore_ascii_case("REMOVE") && !exempts)
                || (action.eq_ignore_ascii_case("ADD") && exempts)
            {
                reduced = true;
            }
        }
    });
    reduced
}

/// The IAM grants of a `SetIamPolicy` call, as binding deltas: those the service
/// logged (`additional`; a `policyDelta` without binding deltas granted nothing), else, for services that log only the whole new policy
/// (Cloud Run, Cloud Functions, Compute images and disks, Pub/Sub…), every member of
/// that policy as an `ADD` (from `request.policy`, else the `response`), unless the
/// request's `updateMask` leaves the bindings out. A member of the new policy is
/// granted whether or not it was before: the state after the call is what exposes.
pub fn iam_changes(
    additional: Option<&Value>,
    request: Option<&Value>,
    response: Option<&Value>,
) -> Value {
    // A service that logs a policy delta logs every binding it changed: a delta with
    // only audit-config changes, or none, granted nothing.
    let mut delta_logged = false;
    if let Some(additional) = additional {
        find_key(additional, "policyDelta", &mut |_| delta_logged = true);
    }
    let logged = additional.map(binding_deltas).unwrap_or_default();
    let deltas = if logged.is_empty() && !delta_logged {
        whole_policy_grants(request, response)
    } else {
        logged
    };
    let deltas: Vec<Value> = deltas
        .into_iter()
        .map(|d| json!({"action": d.action, "role": d.role, "member": d.member}))
        .collect();
    json!({ "bindingDeltas": deltas })
}

fn whole_policy_grants(request: Option<&Value>, response: Option<&Value>) -> Vec<BindingDelta> {
    let mask = request.map(update_mask).unwrap_or_default();
    if !mask.is_empty()
        && !mask
            .iter()
            .any(|p| p == "bindings" || p == "policy.bindings")
    {
        return Vec::new();
    }
    let policy = request
        .and_then(|r| r.get("policy"))
        .filter(|p| p.get("bindings").is_some())
        .or_else(|| {
            response.and_then(|r| {
                r.get("policy")
                    .filter(|p| p.get("bindings").is_some())
                    .or_else(|| r.get("bindings").map(|_| r))
            })
        });
    let Some(policy) = policy else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for binding in policy.get("bindings").map(items).unwrap_or_default() {
        let role = binding.get("role").and_then(Value::as_str).unwrap_or("");
        for member in json_values(binding, &["members"]) {
            out.push(BindingDelta {
                action: "ADD".to_owned(),
                role: role.to_owned(),
                member,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
