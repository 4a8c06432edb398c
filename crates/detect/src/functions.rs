//! Domain functions for rules, where plain SQL over JSON text would be unreadable:
//! structural matching of IAM policies, security-group and firewall rules, GCP IAM
//! policy changes and log routing. Each takes JSON text (a `request`, `response` or
//! `additional` column) and never fails on odd input: JSON that does not parse, or has
//! another shape, simply does not match.
//!
//! | function | returns |
//! |---|---|
//! | `json_values(json, 'a.b.c')` | every value at the path, descending through arrays at any step, so one object and an array of objects read alike (XML-derived CloudTrail fields) |
//! | `aws_policy_public(policy)` | an `Allow` statement grants `*` and no condition confines it (AWS's reading of "public") |
//! | `aws_acl_public(request)` | a `PutBucketAcl` grants everyone: a public canned ACL, or a grant to AllUsers or AuthenticatedUsers in the body or a header |
//! | `aws_policy_admin(policy)` | an `Allow` statement grants every action on every resource |
//! | `aws_trail_narrowed(request)` | a CloudTrail change stops recording management writes, other regions or global services |
//! | `aws_shares_outside(request, account_id, 'id, …')` | a snapshot, image or DB-snapshot sharing adds an account that is neither this one nor a listed one |
//! | `aws_trust_outside(policy, account_id, 'id, …')` | a role trust policy lets `*` (unconfined) or an account neither this one nor a listed one assume the role |
//! | `aws_ingress_admin_open(request)` | a security-group change opens an admin port (or all traffic) to the whole internet, its CIDR blocks counted together |
//! | `gcp_firewall_admin_open(request[, operation])` | a GCE ingress firewall opens an admin port (or all) to the whole internet, with the API's defaults for fields left out |
//! | `gcp_iam_changes(additional, request, response)` | the binding deltas of a `SetIamPolicy` call, or every member of the whole new policy when the service logs no delta (JSON text, for the `gcp_adds_*` functions) |
//! | `gcp_adds_member(additional, member, …)` | an IAM binding delta ADDs one of the members |
//! | `gcp_adds_role(additional, role, …)` | an IAM binding delta ADDs one of the roles |
//! | `gcp_adds_any(additional)` | an IAM binding delta ADDs anything |
//! | `gcp_adds_outsider(additional, actor, 'domain, …')` | an ADD to a user, group or domain outside the actor's domain and the listed ones |
//! | `gcp_audit_logging_reduced(additional)` | an audit-config delta REMOVEs logging or exempts members |
//! | `gcp_sink_excludes_audit(request[, operation])` | a sink or exclusion change drops the audit logs, judged on the fields it modifies |

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListBuilder, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use serde_json::Value;

mod aws;
mod gcp;
mod logging;
mod network;

pub use aws::{
    acl_public, aws_ingress_admin_open, policy_admin, policy_public, shares_outside,
    trail_narrowed, trust_outside,
};
pub use gcp::{
    BindingDelta, audit_logging_reduced, binding_deltas, gcp_firewall_admin_open, iam_changes,
    outsider,
};
pub use logging::sink_excludes_audit;
pub use network::{ADMIN_PORTS, covers_internet};

/// Registers every domain function in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(JsonValues::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(RowFunction::new(
        "gcp_iam_changes",
        RowFn::Text(|a| {
            let json = |i: usize| arg_json(a, i);
            let (additional, request, response) = (json(0), json(1), json(2));
            Some(iam_changes(additional.as_ref(), request.as_ref(), response.as_ref()).to_string())
        }),
    )));
    let predicates: [(&'static str, Predicate); 14] = [
        ("aws_acl_public", |a| {
            arg_json(a, 0).is_some_and(|v| acl_public(&v))
        }),
        ("aws_shares_outside", |a| {
            let own = a.get(1).copied().flatten().unwrap_or("");
            let listed = a.get(2).copied().flatten().unwrap_or("");
            arg_json(a, 0).is_some_and(|v| shares_outside(&v, own, listed))
        }),
        ("aws_trust_outside", |a| {
            let own = a.get(1).copied().flatten().unwrap_or("");
            let listed = a.get(2).copied().flatten().unwrap_or("");
            arg_json(a, 0).is_some_and(|v| trust_outside(&v, own, listed))
        }),
        ("aws_trail_narrowed", |a| {
            arg_json(a, 0).is_some_and(|v| trail_narrowed(&v))
        }),
        ("aws_policy_public", |a| {
            arg_json(a, 0).is_some_and(|v| policy_public(&v))
        }),
        ("aws_policy_admin", |a| {
            arg_json(a, 0).is_some_and(|v| policy_admin(&v))
        }),
        ("aws_ingress_admin_open", |a| {
            arg_json(a, 0).is_some_and(|v| aws_ingress_admin_open(&v))
        }),
        ("gcp_firewall_admin_open", |a| {
            let operation = a.get(1).copied().flatten();
            arg_json(a, 0).is_some_and(|v| gcp_firewall_admin_open(&v, operation))
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
        ("gcp_sink_excludes_audit", |a| {
            let operation = a.get(1).copied().flatten();
            arg_json(a, 0).is_some_and(|v| sink_excludes_audit(&v, operation))
        }),
    ];
    for (name, f) in predicates {
        ctx.register_udf(ScalarUDF::new_from_impl(RowFunction::new(
            name,
            RowFn::Bool(f),
        )));
    }
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

/// The fields a request's `updateMask` names, lower case (`"filter,exclusions"` or
/// `{"paths": [...]}`); empty when it names none.
fn update_mask(request: &Value) -> Vec<String> {
    let Some(mask) = request.get("updateMask") else {
        return Vec::new();
    };
    let listed = match mask {
        Value::String(s) => s.split(',').map(str::to_owned).collect(),
        other => json_values(other, &["paths"]),
    };
    listed
        .iter()
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

/// What a row function computes from a row's text arguments.
#[derive(Debug, Clone, Copy)]
enum RowFn {
    /// A test; null JSON is `false`, never null, so that the rule's conjunction stays
    /// free of nulls.
    Bool(Predicate),
    /// JSON text out.
    Text(fn(&[Option<&str>]) -> Option<String>),
}

/// A scalar function of text arguments, evaluated row by row.
#[derive(Debug)]
struct RowFunction {
    name: &'static str,
    signature: Signature,
    f: RowFn,
}

impl RowFunction {
    fn new(name: &'static str, f: RowFn) -> Self {
        Self {
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
            f,
        }
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowFunction {}
impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.f {
            RowFn::Bool(_) => DataType::Boolean,
            RowFn::Text(_) => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let columns = text_columns(self.name, &args)?;
        let strings: Vec<_> = columns.iter().map(|c| c.as_string::<i32>()).collect();
        let mut row_args = Vec::with_capacity(strings.len());
        let mut each_row = |f: &mut dyn FnMut(&[Option<&str>])| {
            for row in 0..args.number_rows {
                row_args.clear();
                row_args.extend(
                    strings
                        .iter()
                        .map(|s| s.is_valid(row).then(|| s.value(row))),
                );
                f(&row_args);
            }
        };
        let values: ArrayRef = match self.f {
            RowFn::Bool(test) => {
                let mut out = Vec::with_capacity(args.number_rows);
                each_row(&mut |a| out.push(Some(a[0].is_some() && test(a))));
                Arc::new(BooleanArray::from(out))
            }
            RowFn::Text(make) => {
                let mut out = Vec::with_capacity(args.number_rows);
                each_row(&mut |a| out.push(make(a)));
                Arc::new(StringArray::from(out))
            }
        };
        Ok(ColumnarValue::Array(values))
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

#[cfg(test)]
mod tests;
