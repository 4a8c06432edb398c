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
