//! The contract every demarc crate speaks: the normalized audit-event schema, the raw
//! record with its provenance, and the alert and rule-metadata types.
//!
//! This crate holds types and the Arrow schema only. It must not depend on any other
//! demarc crate, on tokio, Kafka or DataFusion: everything else depends on it, so it has
//! to stay small, synchronous and cheap to compile.

pub mod alert;
pub mod record;
pub mod schema;

pub use alert::{Alert, Category, RuleMeta, ServiceModel, Severity, SrmLayer};
pub use record::{Origin, Position, RawRecord};
pub use schema::{EVENT_SCHEMA_VERSION, column, event_schema};
