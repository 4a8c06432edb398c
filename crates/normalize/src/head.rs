//! The few fields of a CloudTrail record that decide whether it needs a row, read
//! before the whole record is.
//!
//! With a row filter, most records of an archive are only checked and counted, and
//! reading every field of [`Document`] for them is wasted. [`Head`] has the same keys
//! as [`Document`], so the same records parse and the same ones fail (broken JSON, a key
//! given twice), but it keeps only the id, time, source, name, error code and caller
//! type, and skips the values of every other key. A record the filter keeps, or one
//! whose head does not parse, is read again as a [`Document`], whose errors are the
//! ones reported.
//!
//! [`Document`]: crate::document::Document

use demarc_model::schema::{outcome, provider};
use serde::Deserialize;

use crate::cloudtrail::Identified;
use crate::document::{AuditLog, AwsResource, MonitoredResource, SessionContext};
use crate::filter::RowKeys;
use crate::lenient::{First, Obj, Present, Text};

/// A CloudTrail record's head: the keys of [`crate::document::Document`], most of them
/// skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Head<'a> {
    #[serde(rename = "Records")]
    _records: Present,
    #[serde(rename = "detail-type")]
    _detail_type: Present,
    #[serde(rename = "detail")]
    _detail: Present,
    #[serde(rename = "entries")]
    _entries: Present,
    #[serde(rename = "message")]
    _message: Present,
    #[serde(rename = "data")]
    _data: Present,
    #[serde(rename = "attributes")]
    _attributes: Present,
    #[serde(rename = "messageId")]
    _message_id: Present,
    #[serde(rename = "message_id")]
    _message_id_snake: Present,
    #[serde(rename = "publishTime")]
    _publish_time: Present,
    #[serde(rename = "digestStartTime")]
    _digest_start_time: Present,
    #[serde(rename = "logFiles")]
    _log_files: Present,

    #[serde(rename = "eventVersion")]
    _event_version: Present,
    #[serde(rename = "eventTime", borrow)]
    pub event_time: Text<'a>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Text<'a>,
    #[serde(rename = "eventSource", borrow)]
    pub event_source: Text<'a>,
    #[serde(rename = "eventName", borrow)]
    pub event_name: Text<'a>,
    #[serde(rename = "eventType")]
    _event_type: Present,
    #[serde(rename = "awsRegion")]
    _aws_region: Present,
    #[serde(rename = "sourceIPAddress")]
    _source_ip_address: Present,
    #[serde(rename = "userAgent")]
    _user_agent: Present,
    #[serde(rename = "userIdentity", borrow)]
    pub user_identity: Obj<IdentityHead<'a>>,
    #[serde(rename = "requestParameters")]
    _request_parameters: Present,
    #[serde(rename = "responseElements")]
    _response_elements: Present,
    #[serde(rename = "additionalEventData")]
    _additional_event_data: Present,
    #[serde(rename = "errorCode", borrow)]
    pub error_code: Text<'a>,
    #[serde(rename = "errorMessage")]
    _error_message: Present,
    #[serde(rename = "readOnly")]
    _read_only: Present,
    #[serde(rename = "recipientAccountId")]
    _recipient_account_id: Present,
    #[serde(rename = "resources", borrow)]
    _resources: First<Obj<AwsResource<'a>>>,

    #[serde(rename = "logName")]
    _log_name: Present,
    #[serde(rename = "timestamp")]
    _timestamp: Present,
    #[serde(rename = "insertId")]
    _insert_id: Present,
    #[serde(rename = "resource", borrow)]
    _resource: Obj<MonitoredResource<'a>>,
    #[serde(rename = "protoPayload", borrow)]
    _proto_payload: Obj<AuditLog<'a>>,
    #[serde(rename = "textPayload")]
    _text_payload: Present,
    #[serde(rename = "jsonPayload")]
    _json_payload: Present,
}

/// `userIdentity`, with the keys of [`crate::document::UserIdentity`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IdentityHead<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Text<'a>,
    #[serde(rename = "principalId")]
    _principal_id: Present,
    #[serde(rename = "arn")]
    _arn: Present,
    #[serde(rename = "accountId")]
    _account_id: Present,
    #[serde(rename = "invokedBy")]
    _invoked_by: Present,
    #[serde(rename = "userName")]
    _user_name: Present,
    #[serde(rename = "sessionContext")]
    _session_context: Obj<SessionContext>,
}

impl<'a> Head<'a> {
    /// Whether the head is enough to decide: a console sign-in's outcome may be only in
    /// its response, which the head skips.
    pub fn decides(&self) -> bool {
        self.event_name.as_deref() != Some("ConsoleLogin")
    }

    /// The columns a [`crate::RowFilter`] tests, as the whole record gives them (for
    /// any record but a console sign-in).
    pub fn keys(&self) -> RowKeys<'_> {
        RowKeys {
            provider: provider::AWS,
            service: self.event_source.as_deref(),
            actor_type: self.user_identity.get().and_then(|i| i.kind.as_deref()),
            operation: self.event_name.as_deref(),
            outcome: if self.error_code.as_deref().is_some() {
                outcome::FAILURE
            } else {
                outcome::SUCCESS
            },
        }
    }

    /// The record's id and time, or why it is rejected, as the whole record gives
    /// them; `text` is the record's JSON.
    pub fn identify(
        &mut self,
        text: &str,
    ) -> Result<Identified<'a>, crate::cloudtrail::EventError> {
        crate::cloudtrail::identify_parts(
            std::mem::take(&mut self.event_id),
            std::mem::take(&mut self.event_time),
            text,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Document, UserIdentity};

    /// The keys a derived struct reads, as serde hands them to the deserializer.
    fn keys_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        struct Capture(Vec<&'static str>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Capture {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0 = fields.to_vec();
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut capture = Capture(Vec::new());
        let _ = T::deserialize(&mut capture);
        let mut keys = capture.0;
        keys.sort_unstable();
        keys
    }

    #[test]
    fn the_head_has_the_keys_of_the_whole_record() {
        let keys = keys_of::<Document<'_>>();
        assert!(keys.len() > 30, "{keys:?}");
        assert_eq!(keys_of::<Head<'_>>(), keys);
        assert_eq!(keys_of::<IdentityHead<'_>>(), keys_of::<UserIdentity<'_>>());
    }

    #[test]
    fn a_key_given_twice_fails_the_head_as_it_fails_the_record() {
        for json in [
            r#"{"eventName":"A","awsRegion":"x","awsRegion":"y"}"#,
            r#"{"eventName":"A","userIdentity":{"arn":"a","arn":"b"}}"#,
            r#"{"eventName":"A","resources":[{"ARN":"a","ARN":"b"}]}"#,
        ] {
            assert!(sonic_rs::from_str::<Document<'_>>(json).is_err(), "{json}");
            assert!(sonic_rs::from_str::<Head<'_>>(json).is_err(), "{json}");
        }
        let fine = r#"{"eventName":"A","userIdentity":{"type":"Root"},"errorCode":"X"}"#;
        let head = sonic_rs::from_str::<Head<'_>>(fine).expect("parses");
        let keys = head.keys();
        assert_eq!(keys.actor_type, Some("Root"));
        assert_eq!(keys.outcome, outcome::FAILURE);
    }
}
