//! The contract every demarc crate speaks: the normalized audit-event schema, the raw
//! record with its provenance, and the alert and rule-metadata types.
//!
//! This crate holds types and the Arrow schema only. It must not depend on any other
//! demarc crate, on tokio, Kafka or DataFusion: everything else depends on it, so it has
//! to stay small, synchronous and cheap to compile.

pub mod alert;
pub mod record;
pub mod schema;

pub use alert::{Alert, Category, RuleMeta, ServiceModel, Severity, SrmLayer, UnknownValue};
pub use record::{Origin, Position, RawRecord};
pub use schema::{EVENT_SCHEMA_VERSION, column, event_schema};

/// An error and its causes, on one line; a cause whose text the line already holds
/// (clients that repeat their source in their message) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A span such as `90s`, `15m`, `1h` or `2d` (`None` for anything else; `0` is not a
/// span here: callers that allow "none" check for it first).
pub fn parse_span(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}
