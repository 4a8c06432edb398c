//! A CloudTrail event (from any envelope) to a normalized row.

use std::borrow::Cow;
use std::mem::take;

use demarc_model::schema::{outcome, provider};
use serde::Deserialize;

use crate::builder::EventRow;
use crate::document::Document;
use crate::event::EventKind;
use crate::filter::RowKeys;
use crate::lenient::{Obj, Text};
use crate::outcome::{Leniencies, LenientReason, RejectReason};
use crate::time::parse_timestamp_micros;

/// Why an event cannot become a row.
pub(crate) type EventError = (RejectReason, String);

/// CloudTrail events, for [`crate::Normalizer`]'s dispatch.
pub(crate) struct Event;

impl EventKind for Event {
    fn to_row<'a>(
        doc: &mut Document<'a>,
        identified: Identified<'a>,
        raw: Option<&'a str>,
    ) -> EventRow<'a> {
        let identity = take(&mut doc.user_identity).0.unwrap_or_default();
        let session_mfa = identity
            .session_context
            .get()
            .and_then(|c| c.attributes.get())
            .and_then(|a| a.mfa_authenticated.0);

        let failed = failed(doc);
        let event_name = take(&mut doc.event_name).0.filter(|s| !s.is_empty());
        let is_console_login = event_name.as_deref() == Some("ConsoleLogin");

        let mut mfa = session_mfa;
        // A console sign-in says in its additional data whether MFA was used.
        if is_console_login
            && let Some(additional) = doc.additional_event_data.0.clone().map(json_text)
        {
            let data =
                crate::parse_nested::<Obj<ConsoleLoginData<'_>>>(&additional).and_then(|o| o.0);
            match data.as_ref().and_then(|d| d.mfa_used.as_deref()) {
                Some(used) if used.eq_ignore_ascii_case("yes") => mfa = Some(true),
                Some(used) if used.eq_ignore_ascii_case("no") => mfa = Some(false),
                _ => {}
            }
        }

        let read_only = doc
            .read_only
            .0
            .or_else(|| event_name.as_deref().and_then(infer_read_only));
        let request = take(&mut doc.request_parameters).0.map(json_text);
        let resource = take(&mut doc.resources)
            .0
            .and_then(|r| r.0)
            .and_then(|r| r.arn.0.filter(|s| !s.is_empty()))
            .or_else(|| request.as_ref().and_then(resource_from_request));

        let UserIdentityParts {
            principal,
            kind,
            account_id,
            invoked_by,
        } = identity_parts(identity);

        EventRow {
            time_us: identified.time_us,
            provider: provider::AWS,
            event_id: identified.id,
            event_type: non_empty(take(&mut doc.event_type)),
            account_id: non_empty(take(&mut doc.recipient_account_id)).or(account_id),
            region: non_empty(take(&mut doc.aws_region)),
            service: non_empty(take(&mut doc.event_source)),
            operation: event_name,
            resource,
            actor_principal: principal,
            actor_type: kind,
            actor_invoked_by: invoked_by,
            mfa,
            src_ip: non_empty(take(&mut doc.source_ip_address)),
            user_agent: non_empty(take(&mut doc.user_agent)),
            outcome: if failed {
                outcome::FAILURE
            } else {
                outcome::SUCCESS
            },
            error_code: non_empty(take(&mut doc.error_code)),
            error_message: non_empty(take(&mut doc.error_message)),
            read_only,
            request,
            response: take(&mut doc.response_elements).0.map(json_text),
            additional: take(&mut doc.additional_event_data).0.map(json_text),
            raw,
        }
    }

    /// The columns a [`crate::RowFilter`] tests, as the event's row would hold them.
    fn keys<'d>(doc: &'d Document<'_>) -> RowKeys<'d> {
        RowKeys {
            provider: provider::AWS,
            service: doc.event_source.as_deref(),
            actor_type: doc.user_identity.get().and_then(|i| i.kind.as_deref()),
            operation: doc.event_name.as_deref(),
            outcome: if failed(doc) {
                outcome::FAILURE
            } else {
                outcome::SUCCESS
            },
        }
    }

    /// The event's id (derived from `text` when it has none) and time, or why it is
    /// rejected.
    fn identify<'a>(doc: &mut Document<'a>, text: &str) -> Result<Identified<'a>, EventError> {
        identify_parts(take(&mut doc.event_id), take(&mut doc.event_time), text)
    }
}

/// Whether the call failed: it has an `errorCode`, or it is a console sign-in whose
/// response says so (a failed sign-in may carry no `errorCode`).
fn failed(doc: &Document<'_>) -> bool {
    if doc.error_code.as_deref().is_some() {
        return true;
    }
    if doc.event_name.as_deref() != Some("ConsoleLogin") {
        return false;
    }
    let Some(response) = doc.response_elements.0.clone().map(json_text) else {
        return false;
    };
    let login = crate::parse_nested::<Obj<ConsoleLoginResponse<'_>>>(&response).and_then(|o| o.0);
    let result = login.as_ref().and_then(|l| l.console_login.as_deref());
    result.is_some_and(|r| r.eq_ignore_ascii_case("failure"))
}

/// A CloudTrail event's id and time from its `eventID` and `eventTime`; an event
/// without `eventID` gets one derived from its JSON `text` (see [`derived_id`]).
pub(crate) fn identify_parts<'a>(
    id: Text<'a>,
    time: Text<'_>,
    text: &str,
) -> Result<Identified<'a>, EventError> {
    let names = ["eventID", "eventTime"];
    identify(id, time, "CloudTrail event", names, Some(text))
}

/// The id of an event that has none: `sha256:` and the first 32 hex digits (128 bits)
/// of the SHA-256 of its JSON text, so that the same bytes read again get the same id,
/// and alerts on them the same alert ids.
pub(crate) fn derived_id(text: &str) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut id = String::with_capacity(7 + 32);
    id.push_str("sha256:");
    for byte in &digest[..16] {
        let _ = write!(id, "{byte:02x}");
    }
    id
}

/// An event's id and time, and the leniencies reading them needed.
#[derive(Debug)]
pub(crate) struct Identified<'a> {
    pub id: Cow<'a, str>,
    pub time_us: i64,
    pub lenient: Leniencies,
}

struct UserIdentityParts<'a> {
    principal: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    invoked_by: Option<Cow<'a, str>>,
}

fn identity_parts(identity: crate::document::UserIdentity<'_>) -> UserIdentityParts<'_> {
    let invoked_by = non_empty(identity.invoked_by);
    let principal = non_empty(identity.arn)
        .or_else(|| non_empty(identity.principal_id))
        .or_else(|| non_empty(identity.user_name))
        .or_else(|| invoked_by.clone());
    UserIdentityParts {
        principal,
        kind: non_empty(identity.kind),
        account_id: non_empty(identity.account_id),
        invoked_by,
    }
}

/// The id and time every event needs, or why the event is rejected; `names` are the
/// provider's field names (id, time) for the message.
pub(crate) fn identify<'a>(
    id: Text<'a>,
    time: Text<'_>,
    what: &str,
    [id_name, time_name]: [&str; 2],
    derive_from: Option<&str>,
) -> Result<Identified<'a>, EventError> {
    let mut lenient = Leniencies::default();
    let id = match (id.0.filter(|s| !s.is_empty()), derive_from) {
        (Some(id), _) => id,
        (None, Some(text)) => {
            lenient = lenient.with(LenientReason::DerivedEventId);
            Cow::Owned(derived_id(text))
        }
        (None, None) => {
            return Err((
                RejectReason::MissingId,
                format!("{what} has no `{id_name}`"),
            ));
        }
    };
    let Some(time) = time.as_deref() else {
        return Err((
            RejectReason::MissingTime,
            format!("{what} has no `{time_name}`"),
        ));
    };
    let (time_us, time_lenient) = parse_timestamp_micros(time)
        .map_err(|e| (RejectReason::BadTime, format!("`{time_name}` {e}")))?;
    for reason in time_lenient.iter() {
        lenient = lenient.with(reason);
    }
    Ok(Identified {
        id,
        time_us,
        lenient,
    })
}

pub(crate) fn non_empty(text: Text<'_>) -> Option<Cow<'_, str>> {
    text.0.filter(|s| !s.is_empty())
}

/// Older events carry no `readOnly`; the API naming convention is unambiguous for these
/// prefixes and nothing else is guessed.
fn infer_read_only(event_name: &str) -> Option<bool> {
    const READ_PREFIXES: [&str; 5] = ["Get", "List", "Describe", "Head", "Lookup"];
    READ_PREFIXES
        .iter()
        .any(|p| {
            event_name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .then_some(true)
}

/// JSON text for a request or response column. Some producers store the object as a
/// JSON string (`"{\"bucketName\":…}"`); that string is unwrapped when it holds an object
/// or an array, so that rules see one shape.
pub(crate) fn json_text(raw: Cow<'_, str>) -> Cow<'_, str> {
    if !raw.starts_with('"') {
        return raw;
    }
    let Ok(inner) = sonic_rs::from_str::<String>(&raw) else {
        return raw;
    };
    let trimmed = inner.trim_start();
    let is_container = trimmed.starts_with('{') || trimmed.starts_with('[');
    if is_container && crate::parse_nested::<serde::de::IgnoredAny>(&inner).is_some() {
        Cow::Owned(inner)
    } else {
        raw
    }
}

/// The resource an API call acts on, from the request parameters of calls whose event
/// carries no `resources` list. The keys are the identifiers AWS APIs use for their
/// primary resource, most specific first.
fn resource_from_request<'a>(request: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    match request {
        Cow::Borrowed(text) => first_identifier(text),
        Cow::Owned(text) => first_identifier(text).map(|id| Cow::Owned(id.into_owned())),
    }
}

fn first_identifier(request: &str) -> Option<Cow<'_, str>> {
    crate::parse_nested::<FirstIdentifier<'_>>(request)?
        .0
        .map(|(_, id)| id)
}

/// Request keys naming the resource an API call acts on, most specific first.
const RESOURCE_KEYS: [&str; 27] = [
    "bucketName",
    "trailName",
    "userName",
    "roleName",
    "groupName",
    "policyArn",
    "keyId",
    "groupId",
    "snapshotId",
    "imageId",
    "dBInstanceIdentifier",
    "dBClusterIdentifier",
    "dBSnapshotIdentifier",
    "dBClusterSnapshotIdentifier",
    "functionName",
    "detectorId",
    "configurationRecorderName",
    "deliveryChannelName",
    "secretId",
    "logGroupName",
    "topicArn",
    "queueUrl",
    "tableName",
    "stackName",
    "instanceId",
    "networkAclId",
    "name",
];

/// The non-empty string value of the highest-ranked [`RESOURCE_KEYS`] key at the top
/// level of an object, with its rank; values of other keys are skipped unread.
#[derive(Debug, Default)]
struct FirstIdentifier<'a>(Option<(usize, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstIdentifier<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = FirstIdentifier<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut best: Option<(usize, Cow<'a, str>)> = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let rank = key
                        .as_deref()
                        .and_then(|k| RESOURCE_KEYS.iter().position(|r| *r == k))
                        .filter(|rank| best.as_ref().is_none_or(|(b, _)| rank < b));
                    match rank {
                        Some(rank) => {
                            let value = map.next_value::<Text<'de>>()?;
                            if let Some(id) = value.0.filter(|v| !v.is_empty()) {
                                best = Some((rank, id));
                            }
                        }
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(FirstIdentifier(best))
            }
        }
        deserializer.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsoleLoginResponse<'a> {
    #[serde(rename = "ConsoleLogin", borrow)]
    console_login: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsoleLoginData<'a> {
    #[serde(rename = "MFAUsed", borrow)]
    mfa_used: Text<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_holding_objects_are_unwrapped() {
        assert_eq!(json_text(r#""{\"a\":1}""#.into()), r#"{"a":1}"#);
        assert_eq!(json_text(r#""plain text""#.into()), r#""plain text""#);
        assert_eq!(json_text(r#""{not json""#.into()), r#""{not json""#);
        assert_eq!(json_text(r#"{"a":1}"#.into()), r#"{"a":1}"#);
    }

    #[test]
    fn read_only_is_inferred_only_from_unambiguous_prefixes() {
        assert_eq!(infer_read_only("GetBucketAcl"), Some(true));
        assert_eq!(infer_read_only("DescribeInstances"), Some(true));
        assert_eq!(infer_read_only("Getaway"), None);
        assert_eq!(infer_read_only("PutBucketAcl"), None);
    }

    #[test]
    fn resource_prefers_specific_identifiers() {
        fn resource(text: &str) -> Option<Cow<'_, str>> {
            resource_from_request(&Cow::Borrowed(text))
        }
        assert_eq!(
            resource(r#"{"name":"x","bucketName":"b","acl":[1]}"#).as_deref(),
            Some("b")
        );
        assert_eq!(resource(r#"{"name":"trail"}"#).as_deref(), Some("trail"));
        assert_eq!(resource(r#"{"other":1}"#), None);
        assert_eq!(resource(r#""text""#), None);
    }
}
