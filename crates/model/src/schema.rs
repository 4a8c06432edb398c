//! The normalized event schema: one Arrow schema for CloudTrail and GCP Cloud Audit Logs,
//! aligned with OCSF API Activity (class 6003). `docs/schema.md` documents every column
//! with its source paths; a change here is a schema migration and bumps
//! [`EVENT_SCHEMA_VERSION`].

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the normalized event schema. Stored in the Arrow schema metadata under
/// [`SCHEMA_VERSION_KEY`] and therefore in every Parquet file demarc writes.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Schema metadata key holding [`EVENT_SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "demarc.schema_version";

/// Timezone of the `time` column: UTC, written as an offset so that every Arrow reader
/// understands it without a timezone database.
pub const TIME_ZONE: &str = "+00:00";

/// Column names, in schema order.
pub mod column {
    pub const TIME: &str = "time";
    pub const PROVIDER: &str = "provider";
    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_TYPE: &str = "event_type";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const REGION: &str = "region";
    pub const SERVICE: &str = "service";
    pub const OPERATION: &str = "operation";
    pub const RESOURCE: &str = "resource";
    pub const ACTOR_PRINCIPAL: &str = "actor_principal";
    pub const ACTOR_TYPE: &str = "actor_type";
    pub const ACTOR_INVOKED_BY: &str = "actor_invoked_by";
    pub const MFA: &str = "mfa";
    pub const SRC_IP: &str = "src_ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const OUTCOME: &str = "outcome";
    pub const ERROR_CODE: &str = "error_code";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const READ_ONLY: &str = "read_only";
    pub const REQUEST: &str = "request";
    pub const RESPONSE: &str = "response";
    pub const ADDITIONAL: &str = "additional";
    pub const RAW: &str = "raw";
    pub const SRC: &str = "src";
    pub const SRC_PARTITION: &str = "src_partition";
    pub const SRC_OFFSET: &str = "src_offset";
    pub const SRC_LINE: &str = "src_line";
    pub const SRC_INDEX: &str = "src_index";
}

/// Values of the `provider` column.
pub mod provider {
    pub const AWS: &str = "aws";
    pub const GCP: &str = "gcp";
}

/// Values of the `outcome` column.
pub mod outcome {
    pub const SUCCESS: &str = "success";
    pub const FAILURE: &str = "failure";
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use column::*;
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let fields = vec![
        Field::new(
            TIME,
            DataType::Timestamp(TimeUnit::Microsecond, Some(TIME_ZONE.into())),
            false,
        ),
        text(PROVIDER, false),
        text(EVENT_ID, false),
        text(EVENT_TYPE, true),
        text(ACCOUNT_ID, true),
        text(REGION, true),
        text(SERVICE, true),
        text(OPERATION, true),
        text(RESOURCE, true),
        text(ACTOR_PRINCIPAL, true),
        text(ACTOR_TYPE, true),
        text(ACTOR_INVOKED_BY, true),
        Field::new(MFA, DataType::Boolean, true),
        text(SRC_IP, true),
        text(USER_AGENT, true),
        text(OUTCOME, false),
        text(ERROR_CODE, true),
        text(ERROR_MESSAGE, true),
        Field::new(READ_ONLY, DataType::Boolean, true),
        text(REQUEST, true),
        text(RESPONSE, true),
        text(ADDITIONAL, true),
        text(RAW, true),
        text(SRC, false),
        Field::new(SRC_PARTITION, DataType::Int32, true),
        Field::new(SRC_OFFSET, DataType::Int64, true),
        Field::new(SRC_LINE, DataType::Int64, false),
        Field::new(SRC_INDEX, DataType::Int32, false),
    ];
    let metadata = [(
        SCHEMA_VERSION_KEY.to_owned(),
        EVENT_SCHEMA_VERSION.to_string(),
    )]
    .into_iter()
    .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
});

/// The normalized event schema (shared; cloning the `Arc` is free).
pub fn event_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_carries_its_version() {
        let schema = event_schema();
        assert_eq!(
            schema
                .metadata()
                .get(SCHEMA_VERSION_KEY)
                .map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn required_columns_are_not_nullable() {
        let schema = event_schema();
        for name in [
            column::TIME,
            column::PROVIDER,
            column::EVENT_ID,
            column::OUTCOME,
            column::SRC,
            column::SRC_LINE,
            column::SRC_INDEX,
        ] {
            let field = schema.field_with_name(name).expect("column exists");
            assert!(!field.is_nullable(), "{name} must not be nullable");
        }
    }

    #[test]
    fn column_names_are_unique() {
        let schema = event_schema();
        let mut names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let total = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), total);
    }
}
