//! Detection-rule metadata and the alert contract (aligned with OCSF Detection Finding,
//! class 2004). Field names here are part of the contract downstream tools route on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::record::Position;

/// A value outside one of the closed vocabularies below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; expected one of: {expected}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in rule headers and alerts.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        kind: $kind,
                        value: value.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

vocabulary!(
    /// How urgent an alert is. Ordered: `Info < Low < … < Critical`.
    Severity, "severity" {
        Info => "info",
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

vocabulary!(
    /// The customer-side control that was weakened (see DETECTIONS.md). Every alert
    /// carries exactly one.
    Category, "category" {
        PublicExposure => "public-exposure",
        IdentityWeakened => "identity-weakened",
        LoggingDisabled => "logging-disabled",
        EncryptionWeakened => "encryption-weakened",
        NetworkExposure => "network-exposure",
        PrivilegeEscalation => "privilege-escalation",
        RootActivity => "root-activity",
        CredentialExposure => "credential-exposure",
    }
);

vocabulary!(
    /// The Shared-Responsibility layer a rule guards.
    SrmLayer, "srm-layer" {
        Identity => "identity",
        Data => "data",
        Configuration => "configuration",
        Logging => "logging",
        Network => "network",
        Encryption => "encryption",
    }
);

vocabulary!(
    /// Cloud service model a rule applies to.
    ServiceModel, "service model" {
        Iaas => "iaas",
        Paas => "paas",
        Saas => "saas",
    }
);

/// Metadata from a rule file's comment header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub category: Category,
    pub srm_layer: SrmLayer,
    pub service_models: Vec<ServiceModel>,
    /// ATT&CK technique ids, e.g. `T1562.008`.
    pub attack: Vec<String>,
    /// Columns whose values identify "the same thing" for suppression.
    pub dedup: Vec<String>,
    /// One-line template with `{column}` placeholders.
    pub summary: String,
}

/// One detection, as delivered to sinks. `alert_id` is a hash of the rule id and the
/// sorted event ids, so that replaying the same events yields the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub rule_id: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub srm_layer: SrmLayer,
    pub attack: Vec<String>,
    pub summary: String,
    pub event_ids: Vec<String>,
    /// RFC 3339 time of the (first) triggering event.
    pub event_time: String,
    /// RFC 3339 time the alert was produced.
    pub detected_at: String,
    pub provider: String,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub actor: Option<String>,
    pub resource: Option<String>,
    /// Provenance of the triggering events.
    pub source: Vec<Position>,
    /// The values of the rule's `dedup` columns for this alert (`null` for a null).
    #[serde(default)]
    pub dedup: std::collections::BTreeMap<String, Option<String>>,
    /// What makes two alerts "the same thing": a hash of the rule id and the `dedup`
    /// values. Suppression windows, PagerDuty incidents and Kafka keys use it.
    #[serde(default)]
    pub dedup_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_round_trips_through_text() {
        for category in Category::ALL {
            assert_eq!(category.as_str().parse::<Category>(), Ok(*category));
        }
    }

    #[test]
    fn unknown_category_lists_the_vocabulary() {
        let err = "public".parse::<Category>().expect_err("not a category");
        let message = err.to_string();
        assert!(message.contains("unknown category `public`"), "{message}");
        assert!(message.contains("public-exposure"), "{message}");
    }

    #[test]
    fn severity_orders_by_urgency() {
        assert!(Severity::Info < Severity::Low);
        assert!(Severity::High < Severity::Critical);
    }

    #[test]
    fn vocabulary_serializes_as_written_in_rules() {
        let json = serde_json::to_string(&Category::LoggingDisabled).expect("serializes");
        assert_eq!(json, "\"logging-disabled\"");
    }
}
