//! One JSON object of any kind demarc reads, parsed in a single pass.
//!
//! A document may be an envelope (S3 `Records` file, EventBridge event, `entries` list,
//! Pub/Sub message), a CloudTrail event or a GCP LogEntry. Their top-level keys do not
//! collide, so one struct with the union of the fields classifies the document and, for
//! an event, carries everything the row needs without a second parse. Every field is
//! lenient (see [`crate::lenient`]), so parsing fails only on broken JSON.

use serde::Deserialize;

use crate::lenient::{First, Flag, Items, Obj, Present, Raw, Text};
use crate::{Cursor, Normalizer, RejectReason, json_error};

impl Normalizer {
    /// Parses one object document, rejecting it if it is not UTF-8 or not JSON. The
    /// text is validated as UTF-8 once, here, and handed back for the `raw` column.
    pub(crate) fn parse_document<'a>(
        &mut self,
        bytes: &'a [u8],
        cursor: Cursor<'_>,
    ) -> Option<(Document<'a>, &'a str)> {
        let text = self.utf8(bytes, cursor)?;
        Some((self.parse_text(text, cursor)?, text))
    }

    /// The document as text, or `None` having rejected it as not UTF-8.
    pub(crate) fn utf8<'a>(&mut self, bytes: &'a [u8], cursor: Cursor<'_>) -> Option<&'a str> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                let detail = format!("not UTF-8: {e}");
                self.reject(RejectReason::InvalidJson, detail, cursor, bytes);
                None
            }
        }
    }

    /// The document parsed, or `None` having rejected it as not JSON.
    pub(crate) fn parse_text<'a>(
        &mut self,
        text: &'a str,
        cursor: Cursor<'_>,
    ) -> Option<Document<'a>> {
        match sonic_rs::from_str::<Document<'_>>(text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                let (reason, detail) = json_error(&e);
                self.reject(reason, detail, cursor, text.as_bytes());
                None
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Document<'a> {
    // Envelopes.
    #[serde(rename = "Records", borrow)]
    pub records: Items<'a>,
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Text<'a>,
    #[serde(borrow)]
    pub detail: Raw<'a>,
    #[serde(borrow)]
    pub entries: Items<'a>,
    #[serde(borrow)]
    pub message: Raw<'a>,
    #[serde(borrow)]
    pub data: Text<'a>,
    pub attributes: Present,
    #[serde(rename = "messageId")]
    pub message_id: Present,
    #[serde(rename = "message_id")]
    pub message_id_snake: Present,
    #[serde(rename = "publishTime")]
    pub publish_time: Present,
    #[serde(rename = "digestStartTime")]
    pub digest_start_time: Present,
    #[serde(rename = "logFiles")]
    pub log_files: Present,

    // CloudTrail event.
    #[serde(rename = "eventVersion")]
    pub event_version: Present,
    #[serde(rename = "eventTime", borrow)]
    pub event_time: Text<'a>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Text<'a>,
    #[serde(rename = "eventSource", borrow)]
    pub event_source: Text<'a>,
    #[serde(rename = "eventName", borrow)]
    pub event_name: Text<'a>,
    #[serde(rename = "eventType", borrow)]
    pub event_type: Text<'a>,
    #[serde(rename = "awsRegion", borrow)]
    pub aws_region: Text<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    pub source_ip_address: Text<'a>,
    #[serde(rename = "userAgent", borrow)]
    pub user_agent: Text<'a>,
    #[serde(rename = "userIdentity", borrow)]
    pub user_identity: Obj<UserIdentity<'a>>,
    #[serde(rename = "requestParameters", borrow)]
    pub request_parameters: Raw<'a>,
    #[serde(rename = "responseElements", borrow)]
    pub response_elements: Raw<'a>,
    #[serde(rename = "additionalEventData", borrow)]
    pub additional_event_data: Raw<'a>,
    #[serde(rename = "errorCode", borrow)]
    pub error_code: Text<'a>,
    #[serde(rename = "errorMessage", borrow)]
    pub error_message: Text<'a>,
    #[serde(rename = "readOnly")]
    pub read_only: Flag,
    #[serde(rename = "recipientAccountId", borrow)]
    pub recipient_account_id: Text<'a>,
    #[serde(borrow)]
    pub resources: First<Obj<AwsResource<'a>>>,

    // GCP LogEntry.
    #[serde(rename = "logName", borrow)]
    pub log_name: Text<'a>,
    #[serde(borrow)]
    pub timestamp: Text<'a>,
    #[serde(rename = "insertId", borrow)]
    pub insert_id: Text<'a>,
    #[serde(borrow)]
    pub resource: Obj<MonitoredResource<'a>>,
    #[serde(rename = "protoPayload", borrow)]
    pub proto_payload: Obj<AuditLog<'a>>,
    #[serde(rename = "textPayload")]
    pub text_payload: Present,
    #[serde(rename = "jsonPayload")]
    pub json_payload: Present,
}

impl Document<'_> {
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_version.0
            || self.event_id.0.is_some()
            || self.event_time.0.is_some()
            || self.event_source.0.is_some()
            || self.event_name.0.is_some()
    }

    pub fn looks_like_gcp_entry(&self) -> bool {
        self.log_name.0.is_some()
            || self.insert_id.0.is_some()
            || self.text_payload.0
            || self.json_payload.0
    }

    pub fn is_pubsub_message(&self) -> bool {
        self.data.0.is_some()
            && (self.attributes.0
                || self.message_id.0
                || self.message_id_snake.0
                || self.publish_time.0)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Text<'a>,
    #[serde(rename = "principalId", borrow)]
    pub principal_id: Text<'a>,
    #[serde(borrow)]
    pub arn: Text<'a>,
    #[serde(rename = "accountId", borrow)]
    pub account_id: Text<'a>,
    #[serde(rename = "invokedBy", borrow)]
    pub invoked_by: Text<'a>,
    #[serde(rename = "userName", borrow)]
    pub user_name: Text<'a>,
    #[serde(rename = "sessionContext")]
    pub session_context: Obj<SessionContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SessionContext {
    pub attributes: Obj<SessionAttributes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SessionAttributes {
    #[serde(rename = "mfaAuthenticated")]
    pub mfa_authenticated: Flag,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AwsResource<'a> {
    #[serde(rename = "ARN", borrow)]
    pub arn: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MonitoredResource<'a> {
    #[serde(borrow)]
    pub labels: Obj<ResourceLabels<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResourceLabels<'a> {
    #[serde(borrow)]
    pub project_id: Text<'a>,
    #[serde(borrow)]
    pub location: Text<'a>,
    #[serde(borrow)]
    pub region: Text<'a>,
    #[serde(borrow)]
    pub zone: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuditLog<'a> {
    #[serde(rename = "@type", borrow)]
    pub type_url: Text<'a>,
    #[serde(rename = "serviceName", borrow)]
    pub service_name: Text<'a>,
    #[serde(rename = "methodName", borrow)]
    pub method_name: Text<'a>,
    #[serde(rename = "resourceName", borrow)]
    pub resource_name: Text<'a>,
    #[serde(rename = "authenticationInfo", borrow)]
    pub authentication_info: Obj<AuthenticationInfo<'a>>,
    #[serde(rename = "authorizationInfo")]
    pub authorization_info: PermissionKinds,
    #[serde(rename = "requestMetadata", borrow)]
    pub request_metadata: Obj<RequestMetadata<'a>>,
    #[serde(borrow)]
    pub status: Obj<Status<'a>>,
    #[serde(borrow)]
    pub request: Raw<'a>,
    #[serde(borrow)]
    pub response: Raw<'a>,
    #[serde(rename = "serviceData", borrow)]
    pub service_data: Raw<'a>,
    #[serde(borrow)]
    pub metadata: Raw<'a>,
    #[serde(rename = "resourceLocation", borrow)]
    pub resource_location: Obj<ResourceLocation<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthenticationInfo<'a> {
    #[serde(rename = "principalEmail", borrow)]
    pub principal_email: Text<'a>,
    #[serde(rename = "principalSubject", borrow)]
    pub principal_subject: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthorizationInfo<'a> {
    #[serde(rename = "permissionType", borrow)]
    pub permission_type: Text<'a>,
}

/// What `authorizationInfo[].permissionType` says about a call, summarised while
/// parsing (no list is kept): whether any entry has a type, and whether all that have
/// one are reads (`ADMIN_READ`, `DATA_READ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PermissionKinds {
    pub any: bool,
    pub all_read: bool,
}

impl Default for PermissionKinds {
    fn default() -> Self {
        Self {
            any: false,
            all_read: true,
        }
    }
}

impl<'de> Deserialize<'de> for PermissionKinds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PermissionKinds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut kinds = PermissionKinds::default();
                while let Some(entry) = seq.next_element::<Obj<AuthorizationInfo<'de>>>()? {
                    if let Some(kind) = entry.get().and_then(|e| e.permission_type.as_deref()) {
                        kinds.any = true;
                        kinds.all_read &= kind.ends_with("_READ");
                    }
                }
                Ok(kinds)
            }
            // Anything but an array says nothing.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(PermissionKinds::default())
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
            fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(PermissionKinds::default())
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RequestMetadata<'a> {
    #[serde(rename = "callerIp", borrow)]
    pub caller_ip: Text<'a>,
    #[serde(rename = "callerSuppliedUserAgent", borrow)]
    pub caller_supplied_user_agent: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Status<'a> {
    #[serde(borrow)]
    pub code: Text<'a>,
    #[serde(borrow)]
    pub message: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResourceLocation<'a> {
    #[serde(rename = "currentLocations", borrow)]
    pub current_locations: First<Text<'a>>,
}
