//! A GCP Cloud Audit Log entry (`LogEntry` with an `AuditLog` payload) to a normalized row.

use std::borrow::Cow;
use std::mem::take;

use demarc_model::schema::{outcome, provider};

use crate::builder::EventRow;
use crate::cloudtrail::{EventError, Identified, identify, json_text, non_empty};
use crate::document::Document;
use crate::event::EventKind;
use crate::filter::RowKeys;
use crate::outcome::LenientReason;

/// `protoPayload.@type` of Cloud Audit Logs.
pub(crate) const AUDIT_LOG_TYPE: &str = "type.googleapis.com/google.cloud.audit.AuditLog";

/// Whether the entry's payload is an `AuditLog`: by its `@type`, or, without one, by
/// its shape (`serviceName` and `methodName`), as some exports write it.
pub(crate) fn is_audit_log(doc: &Document<'_>) -> bool {
    doc.proto_payload
        .get()
        .is_some_and(|p| match p.type_url.as_deref() {
            Some(type_url) => type_url == AUDIT_LOG_TYPE,
            None => p.service_name.as_deref().is_some() && p.method_name.as_deref().is_some(),
        })
}

/// Cloud Audit Log entries, for [`crate::Normalizer`]'s dispatch.
pub(crate) struct Entry;

impl EventKind for Entry {
    fn to_row<'a>(
        doc: &mut Document<'a>,
        identified: Identified<'a>,
        raw: Option<&'a str>,
    ) -> EventRow<'a> {
        let payload = take(&mut doc.proto_payload).0.unwrap_or_default();
        let log_kind = doc.log_name.0.as_deref().and_then(audit_log_kind);
        let labels = take(&mut doc.resource)
            .0
            .and_then(|r| r.labels.0)
            .unwrap_or_default();
        let account_id = take(&mut doc.log_name)
            .0
            .and_then(log_name_parent)
            .or_else(|| non_empty(labels.project_id));
        let region = non_empty(labels.location)
            .or_else(|| non_empty(labels.region))
            .or_else(|| non_empty(labels.zone))
            .or_else(|| {
                payload
                    .resource_location
                    .0
                    .and_then(|l| l.current_locations.0)
                    .and_then(non_empty)
            });

        let status = payload.status.0.unwrap_or_default();
        let code = non_empty(status.code).filter(|c| is_error_code(c));
        let failed = code.is_some() || log_kind == Some("policy");
        let error_code = code.map(|c| match c.parse::<u8>().ok().and_then(grpc_code_name) {
            Some(name) => Cow::Borrowed(name),
            None => c,
        });

        let read_only = match log_kind {
            Some("activity" | "system_event") => Some(false),
            // Data-access entries say in `authorizationInfo[].permissionType` whether they
            // read or wrote; without it nothing is assumed.
            Some("data_access") => {
                let kinds = payload.authorization_info;
                kinds.any.then_some(kinds.all_read)
            }
            _ => None,
        };

        let authn = payload.authentication_info.0.unwrap_or_default();
        let principal =
            non_empty(authn.principal_email).or_else(|| non_empty(authn.principal_subject));
        let actor_type = principal.as_deref().map(principal_kind).map(Cow::Borrowed);
        let metadata = payload.request_metadata.0.unwrap_or_default();

        EventRow {
            time_us: identified.time_us,
            provider: provider::GCP,
            event_id: identified.id,
            event_type: log_kind.map(Cow::Borrowed),
            account_id,
            region,
            service: non_empty(payload.service_name),
            operation: non_empty(payload.method_name),
            resource: non_empty(payload.resource_name),
            actor_principal: principal,
            actor_type,
            actor_invoked_by: None,
            mfa: None,
            src_ip: non_empty(metadata.caller_ip),
            user_agent: non_empty(metadata.caller_supplied_user_agent),
            outcome: if failed {
                outcome::FAILURE
            } else {
                outcome::SUCCESS
            },
            error_code,
            error_message: non_empty(status.message),
            read_only,
            request: payload.request.0.map(json_text),
            response: payload.response.0.map(json_text),
            additional: additional(
                payload.service_data.0.map(json_text),
                payload.metadata.0.map(json_text),
            ),
            raw,
        }
    }

    /// The entry's id and time, or why it is rejected; a payload read as an
    /// `AuditLog` by its shape (no `@type`) is counted as such.
    fn identify<'a>(doc: &mut Document<'a>, _text: &str) -> Result<Identified<'a>, EventError> {
        let names = ["insertId", "timestamp"];
        let id = take(&mut doc.insert_id);
        let mut identified = identify(id, take(&mut doc.timestamp), "GCP log entry", names, None)?;
        if doc
            .proto_payload
            .get()
            .is_some_and(|p| p.type_url.as_deref().is_none())
        {
            identified.lenient = identified
                .lenient
                .with(LenientReason::GcpPayloadWithoutType);
        }
        Ok(identified)
    }

    /// The columns a [`crate::RowFilter`] tests, as the entry's row would hold them.
    fn keys<'d>(doc: &'d Document<'_>) -> RowKeys<'d> {
        let payload = doc.proto_payload.get();
        let authn = payload.and_then(|p| p.authentication_info.get());
        let code = payload
            .and_then(|p| p.status.get())
            .and_then(|s| s.code.as_deref());
        // Denied by a VPC Service Controls or organization policy: the policy log.
        let denied_by_policy = doc.log_name.0.as_deref().and_then(audit_log_kind) == Some("policy");
        RowKeys {
            provider: provider::GCP,
            service: payload.and_then(|p| p.service_name.as_deref()),
            actor_type: authn
                .and_then(|a| {
                    a.principal_email
                        .as_deref()
                        .or(a.principal_subject.as_deref())
                })
                .map(principal_kind),
            operation: payload.and_then(|p| p.method_name.as_deref()),
            outcome: if code.is_some_and(is_error_code) || denied_by_policy {
                outcome::FAILURE
            } else {
                outcome::SUCCESS
            },
        }
    }
}

/// A `status.code` that is not OK (`0` or `"OK"`).
fn is_error_code(code: &str) -> bool {
    code.trim().parse::<i64>() != Ok(0) && !code.eq_ignore_ascii_case("ok")
}

/// `activity`, `data_access`, `system_event` or `policy` from a log name such as
/// `projects/p/logs/cloudaudit.googleapis.com%2Factivity`.
fn audit_log_kind(log_name: &str) -> Option<&'static str> {
    let (_, log_id) = log_name.split_once("/logs/")?;
    let kind = log_id.strip_prefix("cloudaudit.googleapis.com")?;
    let kind = kind
        .strip_prefix("%2F")
        .or_else(|| kind.strip_prefix("%2f"))
        .or_else(|| kind.strip_prefix('/'))?;
    ["activity", "data_access", "system_event", "policy"]
        .into_iter()
        .find(|k| kind == *k)
}

/// The project id of `projects/<id>/logs/…`; `organizations/<id>`, `folders/<id>` and
/// `billingAccounts/<id>` are kept whole so they cannot be mistaken for a project.
fn log_name_parent(log_name: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let parent_len = log_name.find("/logs/")?;
    let project_start = log_name
        .strip_prefix("projects/")
        .map(|_| "projects/".len());
    let range = project_start.unwrap_or(0)..parent_len;
    if range.is_empty() {
        return None;
    }
    Some(match log_name {
        Cow::Borrowed(s) => Cow::Borrowed(&s[range]),
        Cow::Owned(s) => Cow::Owned(s[range].to_owned()),
    })
}

fn principal_kind(principal: &str) -> &'static str {
    if principal.ends_with(".gserviceaccount.com") || principal.starts_with("serviceAccount:") {
        "ServiceAccount"
    } else if principal.starts_with("principal://") || principal.starts_with("principalSet://") {
        "FederatedIdentity"
    } else {
        "User"
    }
}

fn additional<'a>(
    service_data: Option<Cow<'a, str>>,
    metadata: Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    match (service_data, metadata) {
        (None, None) => None,
        (Some(s), None) => Some(Cow::Owned(format!("{{\"serviceData\":{s}}}"))),
        (None, Some(m)) => Some(Cow::Owned(format!("{{\"metadata\":{m}}}"))),
        (Some(s), Some(m)) => Some(Cow::Owned(format!(
            "{{\"serviceData\":{s},\"metadata\":{m}}}"
        ))),
    }
}

/// Canonical names of google.rpc.Code values.
fn grpc_code_name(code: u8) -> Option<&'static str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(usize::from(code)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_kind_from_encoded_and_plain_names() {
        assert_eq!(
            audit_log_kind("projects/p/logs/cloudaudit.googleapis.com%2Factivity"),
            Some("activity")
        );
        assert_eq!(
            audit_log_kind("organizations/1/logs/cloudaudit.googleapis.com/data_access"),
            Some("data_access")
        );
        assert_eq!(audit_log_kind("projects/p/logs/syslog"), None);
    }

    #[test]
    fn parent_keeps_non_project_parents_whole() {
        let parent = |s: &str| log_name_parent(Cow::Borrowed(s)).map(Cow::into_owned);
        assert_eq!(
            parent("projects/my-proj/logs/x").as_deref(),
            Some("my-proj")
        );
        assert_eq!(
            parent("organizations/123/logs/x").as_deref(),
            Some("organizations/123")
        );
        assert_eq!(parent("projects//logs/x"), None);
        assert_eq!(parent("nothing"), None);
    }

    #[test]
    fn status_codes_have_canonical_names() {
        assert_eq!(grpc_code_name(7), Some("PERMISSION_DENIED"));
        assert_eq!(grpc_code_name(16), Some("UNAUTHENTICATED"));
        assert_eq!(grpc_code_name(17), None);
    }

    #[test]
    fn principals_are_classified() {
        assert_eq!(
            principal_kind("sa@p.iam.gserviceaccount.com"),
            "ServiceAccount"
        );
        assert_eq!(principal_kind("alice@example.com"), "User");
    }
}
