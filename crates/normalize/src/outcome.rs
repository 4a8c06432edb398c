//! What happened to input that did not become a row: skips (recognised, deliberately not
//! normalized) and rejects (unusable, sent to the dead-letter output), with counters.

use std::collections::BTreeMap;

use demarc_model::Position;
use serde::Serialize;

macro_rules! reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The reason as counted in reports and metrics.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

reasons!(
    /// Why a piece of input was deliberately not normalized. Skips are counted, not
    /// sent to the dead-letter output.
    SkipReason {
        /// An empty input or blank document.
        Empty => "empty",
        /// A CloudTrail digest file (integrity validation, no events).
        CloudTrailDigest => "cloudtrail_digest",
        /// An EventBridge event that is not a CloudTrail event.
        EventBridgeOther => "eventbridge_other",
        /// An S3, SQS or SNS notification (`Records` with an `aws:` event source).
        AwsNotification => "aws_notification",
        /// A GCP log entry that is not a Cloud Audit Log (text or JSON payload, other
        /// protobuf payloads).
        GcpNonAudit => "gcp_non_audit",
        /// An event whose time is outside the range asked for (`--since`, `--until`).
        OutsideTimeRange => "outside_time_range",
    }
);

reasons!(
    /// What an event was accepted in spite of: each is a leniency towards how exporters
    /// write audit logs, counted per event normalized.
    LenientReason {
        /// A time with a space instead of `T` (`2026-03-02 10:00:01Z`).
        TimeSpaceSeparator => "time_space_separator",
        /// A time without a zone, read as UTC (`2026-03-02T10:00:01`).
        TimeWithoutZone => "time_without_zone",
        /// A GCP `protoPayload` without `@type`, read as an `AuditLog` because it has
        /// the shape of one (`serviceName` and `methodName`).
        GcpPayloadWithoutType => "gcp_payload_without_type",
        /// A CloudTrail event without `eventID`, given an id derived from its content.
        DerivedEventId => "derived_event_id",
    }
);

/// The leniencies one event needed, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Leniencies(u8);

impl Leniencies {
    pub fn with(self, reason: LenientReason) -> Self {
        Self(self.0 | 1 << (reason as u8))
    }

    pub fn iter(self) -> impl Iterator<Item = LenientReason> {
        LenientReason::ALL
            .iter()
            .copied()
            .filter(move |r| self.0 & (1 << (*r as u8)) != 0)
    }
}

reasons!(
    /// Why a piece of input could not be normalized.
    RejectReason {
        /// Not valid JSON (or not valid UTF-8).
        InvalidJson => "invalid_json",
        /// Valid JSON that a field-level rule refused (duplicate keys, …).
        MalformedEvent => "malformed_event",
        /// JSON that is no envelope demarc knows.
        UnrecognizedEnvelope => "unrecognized_envelope",
        /// An event without a timestamp.
        MissingTime => "missing_time",
        /// An event whose timestamp cannot be read.
        BadTime => "bad_time",
        /// An event without an id (CloudTrail `eventID`, GCP `insertId`).
        MissingId => "missing_id",
        /// An event or input over the configured size limit.
        Oversize => "oversize",
        /// A gzip stream that cannot be decompressed.
        BadGzip => "bad_gzip",
        /// A Pub/Sub message whose `data` is not base64.
        BadBase64 => "bad_base64",
        /// Envelopes, or JSON arrays and objects, nested deeper than any real audit log.
        TooDeep => "too_deep",
    }
);

/// One rejected piece of input, as written to the dead-letter output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    pub reason: RejectReason,
    /// What exactly is wrong, for a person.
    pub detail: String,
    pub position: Position,
    /// The first bytes (at most [`EXCERPT_BYTES`]) of the rejected input, as text.
    pub excerpt: String,
}

/// Size of [`Reject::excerpt`].
pub const EXCERPT_BYTES: usize = 1024;

pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let end = bytes.len().min(EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    // A multi-byte character cut at the limit shows as one replacement character.
    if end < bytes.len() && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text
}

/// Counters of what a [`crate::Normalizer`] has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Input records (files, messages) given to the normalizer.
    pub inputs: u64,
    /// Bytes of input, before decompression.
    pub bytes: u64,
    /// Events found: `events_out` + events rejected.
    pub events_in: u64,
    /// Events normalized: a row each, but for `events_unmatched`.
    pub events_out: u64,
    /// Events normalized that no loaded rule could return, so no row was built for
    /// them (only with a row filter: no lake written). Left out of JSON when zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_unmatched: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Events normalized in spite of how they were written, by leniency (an event may
    /// count under several). Left out of JSON when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub lenient: BTreeMap<LenientReason, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Stats {
    pub(crate) fn lenient(&mut self, leniencies: Leniencies) {
        for reason in leniencies.iter() {
            *self.lenient.entry(reason).or_default() += 1;
        }
    }

    pub(crate) fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Adds another normalizer's counters (parallel workers).
    pub fn merge(&mut self, other: &Stats) {
        self.inputs += other.inputs;
        self.bytes += other.bytes;
        self.events_in += other.events_in;
        self.events_out += other.events_out;
        self.events_unmatched += other.events_unmatched;
        add(&mut self.skipped, &other.skipped);
        add(&mut self.rejected, &other.rejected);
        add(&mut self.lenient, &other.lenient);
    }

    /// What was counted since `before`, an earlier copy of these counters.
    pub fn since(&self, before: &Stats) -> Stats {
        Stats {
            inputs: self.inputs - before.inputs,
            bytes: self.bytes - before.bytes,
            events_in: self.events_in - before.events_in,
            events_out: self.events_out - before.events_out,
            events_unmatched: self.events_unmatched - before.events_unmatched,
            skipped: subtract(&self.skipped, &before.skipped),
            rejected: subtract(&self.rejected, &before.rejected),
            lenient: subtract(&self.lenient, &before.lenient),
        }
    }
}

fn add<K: Ord + Copy>(counts: &mut BTreeMap<K, u64>, more: &BTreeMap<K, u64>) {
    for (key, n) in more {
        *counts.entry(*key).or_default() += n;
    }
}

/// `after - before`, key by key, leaving out the keys that did not grow.
fn subtract<K: Ord + Copy>(
    after: &BTreeMap<K, u64>,
    before: &BTreeMap<K, u64>,
) -> BTreeMap<K, u64> {
    after
        .iter()
        .map(|(key, n)| (*key, n - before.get(key).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_capped_and_keeps_valid_text() {
        let long = "é".repeat(EXCERPT_BYTES);
        let text = excerpt(long.as_bytes());
        assert!(text.len() <= EXCERPT_BYTES);
        assert!(text.chars().all(|c| c == 'é'));
        assert_eq!(excerpt(b"{\"a\":1}"), "{\"a\":1}");
    }

    #[test]
    fn reasons_serialize_as_counted() {
        for reason in RejectReason::ALL {
            let json = serde_json::to_string(reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        for reason in SkipReason::ALL {
            let json = serde_json::to_string(reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
