//! Domain functions for rules, where plain SQL over JSON text would be unreadable:
//! structural matching of IAM policies, security-group and firewall rules, and GCP
//! IAM policy deltas. Each takes JSON text (a `request` or `additional` column) and
//! never fails on odd input: JSON that does not parse, or has another shape, simply
//! does not match.
//!
//! | function | returns |
//! |---|---|
//! | `json_values(json, 'a.b.c')` | every value at the path, descending through arrays at any step, so one object and an array of objects read alike (XML-derived CloudTrail fields) |
//! | `aws_policy_public(policy)` | an `Allow` statement grants `*` with no org/account condition |
//! | `aws_ingress_admin_open(request)` | an EC2 ingress rule opens an admin port (or all traffic) to `0.0.0.0/0` or `::/0` |
//! | `gcp_firewall_admin_open(request)` | a GCE ingress firewall opens an admin port (or all) to the world |
//! | `gcp_adds_member(additional, member, …)` | an IAM binding delta ADDs one of the members |
//! | `gcp_adds_role(additional, role, …)` | an IAM binding delta ADDs one of the roles |
//! | `gcp_adds_any(additional)` | an IAM binding delta ADDs anything |
//! | `gcp_adds_outsider(additional, actor, 'domain, …')` | an ADD to a user, group or domain outside the actor's domain and the listed ones |
//! | `gcp_audit_logging_reduced(additional)` | an audit-config delta REMOVEs logging or exempts members |
//! | `gcp_sink_excludes_audit(request)` | an updated log sink is disabled or filters audit logs out |

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use serde_json::Value;

/// Ports whose exposure to the internet the catalog calls administrative.
pub const ADMIN_PORTS: &[u16] = &[
    21, 22, 23, 445, 3306, 3389, 5432, 5985, 5986, 6379, 9200, 27017,
];

/// Condition keys that confine a `*` principal to an organisation, account, network
/// or principal: a statement carrying one is not an exposure to anyone.
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

/// Registers every domain function in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(JsonValues::new()));
    let predicates: [(&'static str, Predicate); 8] = [
        ("aws_policy_public", |a| {
            arg_json(a, 0).is_some_and(|v| policy_public(&v))
        }),
        ("aws_ingress_admin_open", |a| {
            arg_json(a, 0).is_some_and(|v| aws_ingress_admin_open(&v))
        }),
        ("gcp_firewall_admin_open", |a| {
            arg_json(a, 0).is_some_and(|v| gcp_firewall_admin_open(&v))
        }),
        ("gcp_adds_member", |a| {
            let wanted = rest(a, 1);
            binding_adds(a).any(|d| wanted.iter().any(|w| w.eq_ignore_ascii_case(&d.member)))
        }),
        ("gcp_adds_role", |a| {
            let wanted = rest(a, 1);
            binding_adds(a).any(|d| wanted.contains(&d.role.as_str()))
        }),
        ("gcp_adds_any", |a| binding_adds(a).next().is_some()),
        ("gcp_adds_outsider", |a| {
            let actor = a.get(1).copied().flatten().unwrap_or("");
            let listed = a.get(2).copied().flatten().unwrap_or("");
            binding_adds(a).any(|d| outsider(&d.member, actor, listed))
        }),
        ("gcp_audit_logging_reduced", |a| {
            arg_json(a, 0).is_some_and(|v| audit_logging_reduced(&v))
        }),
    ];
    for (name, f) in predicates {
        ctx.register_udf(ScalarUDF::new_from_impl(BoolFunction::new(name, f)));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(BoolFunction::new(
        "gcp_sink_excludes_audit",
        |a| arg_json(a, 0).is_some_and(|v| sink_excludes_audit(&v)),
    )));
}

/// A row's text arguments to a boolean function.
type Predicate = fn(&[Option<&str>]) -> bool;

fn arg_json(args: &[Option<&str>], i: usize) -> Option<Value> {
    serde_json::from_str(args.get(i).copied().flatten()?).ok()
}

fn rest<'a>(args: &[Option<&'a str>], from: usize) -> Vec<&'a str> {
    args.iter().skip(from).filter_map(|a| *a).collect()
}

fn binding_adds(args: &[Option<&str>]) -> impl Iterator<Item = BindingDelta> {
    arg_json(args, 0)
        .map(|v| binding_deltas(&v))
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.action.eq_ignore_ascii_case("ADD"))
}

/// A boolean function of text arguments; null JSON is `false`, never null, so that the
/// rule's conjunction stays free of nulls.
#[derive(Debug)]
struct BoolFunction {
    name: &'static str,
    signature: Signature,
    f: Predicate,
}

impl BoolFunction {
    fn new(name: &'static str, f: Predicate) -> Self {
        Self {
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
            f,
        }
    }
}

impl PartialEq for BoolFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for BoolFunction {}
impl std::hash::Hash for BoolFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for BoolFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let columns = text_columns(self.name, &args)?;
        let strings: Vec<_> = columns.iter().map(|c| c.as_string::<i32>()).collect();
        let mut row_args = Vec::with_capacity(strings.len());
        let values: BooleanArray = (0..args.number_rows)
            .map(|row| {
                row_args.clear();
                row_args.extend(
                    strings
                        .iter()
                        .map(|s| s.is_valid(row).then(|| s.value(row))),
                );
                Some(row_args[0].is_some() && (self.f)(&row_args))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}

/// Every argument as a `Utf8` array of the batch's length.
fn text_columns(name: &str, args: &ScalarFunctionArgs) -> DfResult<Vec<ArrayRef>> {
    if args.args.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "{name} needs at least one argument"
        )));
    }
    args.args
        .iter()
        .map(|a| {
            let array = a.to_array(args.number_rows)?;
            Ok(arrow::compute::cast(&array, &DataType::Utf8)?)
        })
        .collect()
}

/// `json_values(json, 'a.b.c')`: a list of the values at the path.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonValues {
    signature: Signature,
}

impl JsonValues {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonValues {
    fn name(&self) -> &str {
        "json_values"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let columns = text_columns(self.name(), &args)?;
        let (json, path) = (columns[0].as_string::<i32>(), columns[1].as_string::<i32>());
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..args.number_rows {
            if json.is_valid(row)
                && path.is_valid(row)
                && let Ok(value) = serde_json::from_str::<Value>(json.value(row))
            {
                let steps: Vec<&str> = path.value(row).split('.').collect();
                for found in json_values(&value, &steps) {
                    out.values().append_value(found);
                }
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A value, with a string holding a JSON object or array read as that JSON (CloudTrail
/// keeps some policy documents as escaped text).
fn embedded(value: &Value) -> Cow<'_, Value> {
    if let Value::String(text) = value {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(parsed) = serde_json::from_str(text)
        {
            return Cow::Owned(parsed);
        }
    }
    Cow::Borrowed(value)
}

/// One value or each element of an array.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The values at `path` below `value`. Arrays met on the way, and at the end, are
/// descended into; strings are returned as they are, other scalars and containers as
/// JSON text; nulls are left out.
pub fn json_values(value: &Value, path: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    collect(value, path, &mut out);
    out
}

fn collect(value: &Value, path: &[&str], out: &mut Vec<String>) {
    let value = embedded(value);
    match (value.as_ref(), path.split_first()) {
        (Value::Array(items), _) => {
            for item in items {
                collect(item, path, out);
            }
        }
        (Value::Object(map), Some((step, rest))) => {
            if let Some(child) = map.get(*step) {
                collect(child, rest, out);
            }
        }
        (_, Some(_)) | (Value::Null, None) => {}
        (Value::String(s), None) => out.push(s.clone()),
        (other, None) => out.push(other.to_string()),
    }
}

/// Whether an IAM resource policy has an `Allow` statement for any principal (`"*"`,
/// `{"AWS": "*"}`, `"*"` in a list, or a `NotPrincipal`) that no condition confines to
/// an organisation, account, network or principal: a positive match (`StringEquals`,
/// `StringLike`, `ArnEquals`, `ArnLike`, also under `ForAnyValue:`/`ForAllValues:`) of
/// one of those keys against values without `*`. A negated match (`StringNotEquals`)
/// or a `Null` test does not confine. A `Deny` for `*` is a hardening and does not
/// count.
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
                    confining_operator(operator)
                        && keys.as_object().is_some_and(|keys| {
                            keys.iter().any(|(key, value)| {
                                CONFINING_CONDITION_KEYS
                                    .contains(&key.to_ascii_lowercase().as_str())
                                    && !json_values(value, &[]).iter().any(|v| v.contains('*'))
                            })
                        })
                })
            });
        allows && anyone && !confined
    })
}

/// Whether a CIDR block is the whole address space: a prefix length of 0, whatever
/// the address bits (`0.0.0.0/0`, `::/0`, and also `10.1.2.3/0`).
/// Condition operators that confine a key to the values given.
fn confining_operator(operator: &str) -> bool {
    let operator = operator
        .rsplit_once(':')
        .map_or(operator, |(_, op)| op)
        .trim_end_matches("IfExists");
    matches!(
        operator.to_ascii_lowercase().as_str(),
        "stringequals" | "stringequalsignorecase" | "stringlike" | "arnequals" | "arnlike"
    )
}

fn world(cidr: &str) -> bool {
    cidr.trim()
        .rsplit_once('/')
        .is_some_and(|(_, prefix)| prefix.trim().parse::<u8>() == Ok(0))
}

/// A port number from a JSON number or numeric string.
fn port(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether a protocol (name or IANA number) and port range expose an admin port;
/// `None` ports mean every port.
fn exposes_admin(protocol: &str, ports: Option<(i64, i64)>) -> bool {
    match protocol.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" => true,
        "tcp" | "udp" | "sctp" | "6" | "17" | "132" => match ports {
            None => true,
            Some((from, to)) => {
                // -1 in EC2 means every port.
                from == -1
                    || to == -1
                    || ADMIN_PORTS
                        .iter()
                        .any(|&p| (from..=to).contains(&i64::from(p)))
            }
        },
        _ => false,
    }
}

/// `AuthorizeSecurityGroupIngress`: any permission (in `ipPermissions.items`, one
/// object or a list, or the legacy top-level fields) that opens an admin port, or every
/// protocol, to `0.0.0.0/0` or `::/0`.
pub fn aws_ingress_admin_open(request: &Value) -> bool {
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
    permissions.into_iter().any(|p| {
        let open = ["cidrIp", "ipRanges.cidrIp", "ipRanges.items.cidrIp"]
            .iter()
            .chain(&["ipv6Ranges.cidrIpv6", "ipv6Ranges.items.cidrIpv6"])
            .flat_map(|path| json_values(p, &path.split('.').collect::<Vec<_>>()))
            .any(|cidr| world(&cidr));
        let protocol = p
            .get("ipProtocol")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default();
        let ports = match (port(p.get("fromPort")), port(p.get("toPort"))) {
            (Some(from), Some(to)) => Some((from, to)),
            (Some(one), None) | (None, Some(one)) => Some((one, one)),
            (None, None) => None,
        };
        open && exposes_admin(&protocol, ports)
    })
}

/// `compute.firewalls.insert|patch|update`: an enabled ingress rule (the default
/// direction) from `0.0.0.0/0` or `::/0` that allows an admin port, or all.
pub fn gcp_firewall_admin_open(request: &Value) -> bool {
    let ingress = request
        .get("direction")
        .and_then(Value::as_str)
        .is_none_or(|d| d.eq_ignore_ascii_case("INGRESS"));
    let disabled = request.get("disabled").and_then(Value::as_bool) == Some(true);
    let from_world = json_values(request, &["sourceRanges"])
        .iter()
        .any(|c| world(c));
    if !ingress || disabled || !from_world {
        return false;
    }
    ["alloweds", "allowed"]
        .iter()
        .filter_map(|k| request.get(*k))
        .flat_map(items)
        .any(|rule| {
            let protocol = rule
                .get("IPProtocol")
                .or_else(|| rule.get("ipProtocol"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default();
            let ranges = json_values(rule, &["ports"]);
            if ranges.is_empty() {
                return exposes_admin(&protocol, None);
            }
            ranges.iter().any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                match (from.trim().parse(), to.trim().parse()) {
                    (Ok(from), Ok(to)) => exposes_admin(&protocol, Some((from, to))),
                    _ => false,
                }
            })
        })
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

fn find_key(value: &Value, key: &str, found: &mut dyn FnMut(&Value)) {
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

/// `ConfigServiceV2.UpdateSink`: whether the sink in the request is disabled, its
/// filter negates a reference to the audit logs (`NOT logName:…cloudaudit…` or
/// `-logName:…`), or an enabled exclusion matches them.
pub fn sink_excludes_audit(request: &Value) -> bool {
    let Some(sink) = request.get("sink") else {
        return false;
    };
    if sink.get("disabled").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    let filter = sink.get("filter").and_then(Value::as_str).unwrap_or("");
    if negates_audit(filter) {
        return true;
    }
    sink.get("exclusions").is_some_and(|exclusions| {
        items(exclusions).into_iter().any(|e| {
            let enabled = e.get("disabled").and_then(Value::as_bool) != Some(true);
            let filter = e.get("filter").and_then(Value::as_str).unwrap_or("");
            enabled && mentions_audit(filter) && !negates_audit(filter)
        })
    })
}

fn mentions_audit(filter: &str) -> bool {
    filter.to_ascii_lowercase().contains("cloudaudit")
}

/// Whether a Logging-query term about the audit logs is negated: by `NOT`, by `-`, or
/// by a `!=` / `!~` comparison.
fn negates_audit(filter: &str) -> bool {
    let spaced = filter
        .replace(['(', ')'], " ")
        .replace("!=", " != ")
        .replace("!~", " !~ ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    tokens.iter().enumerate().any(|(i, token)| {
        let before = |n: usize| i.checked_sub(n).map(|j| tokens[j]);
        mentions_audit(token)
            && (token.starts_with('-')
                || before(1).is_some_and(|t| t.eq_ignore_ascii_case("NOT"))
                || before(1).is_some_and(|t| t == "!=" || t == "!~"))
    })
}

#[cfg(test)]
mod tests;
