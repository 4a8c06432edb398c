//! Column builders for the normalized event schema.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use demarc_model::schema::{TIME_ZONE, event_schema};
use demarc_model::{Origin, Position};

/// One normalized event, borrowing from the input where it can.
#[derive(Debug, Default)]
pub(crate) struct EventRow<'a> {
    pub time_us: i64,
    pub provider: &'static str,
    pub event_id: Cow<'a, str>,
    pub event_type: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub service: Option<Cow<'a, str>>,
    pub operation: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
    pub actor_principal: Option<Cow<'a, str>>,
    pub actor_type: Option<Cow<'a, str>>,
    pub actor_invoked_by: Option<Cow<'a, str>>,
    pub mfa: Option<bool>,
    pub src_ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub outcome: &'static str,
    pub error_code: Option<Cow<'a, str>>,
    pub error_message: Option<Cow<'a, str>>,
    pub read_only: Option<bool>,
    pub request: Option<Cow<'a, str>>,
    pub response: Option<Cow<'a, str>>,
    pub additional: Option<Cow<'a, str>>,
    pub raw: Option<&'a str>,
}

/// The string columns of the event schema.
const TEXTS: usize = 21;

/// Accumulates rows column by column until [`EventBatchBuilder::finish`].
#[derive(Debug)]
pub(crate) struct EventBatchBuilder {
    rows: usize,
    /// Values and bytes of each string column in the last batch (see [`Self::texts`]).
    last: Option<[(usize, usize); TEXTS]>,
    time: TimestampMicrosecondBuilder,
    provider: StringBuilder,
    event_id: StringBuilder,
    event_type: StringBuilder,
    account_id: StringBuilder,
    region: StringBuilder,
    service: StringBuilder,
    operation: StringBuilder,
    resource: StringBuilder,
    actor_principal: StringBuilder,
    actor_type: StringBuilder,
    actor_invoked_by: StringBuilder,
    mfa: BooleanBuilder,
    src_ip: StringBuilder,
    user_agent: StringBuilder,
    outcome: StringBuilder,
    error_code: StringBuilder,
    error_message: StringBuilder,
    read_only: BooleanBuilder,
    request: StringBuilder,
    response: StringBuilder,
    additional: StringBuilder,
    raw: StringBuilder,
    src: StringBuilder,
    src_partition: Int32Builder,
    src_offset: Int64Builder,
    src_line: Int64Builder,
    src_index: Int32Builder,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self {
            rows: 0,
            last: None,
            time: TimestampMicrosecondBuilder::new().with_timezone(TIME_ZONE),
            provider: StringBuilder::new(),
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            account_id: StringBuilder::new(),
            region: StringBuilder::new(),
            service: StringBuilder::new(),
            operation: StringBuilder::new(),
            resource: StringBuilder::new(),
            actor_principal: StringBuilder::new(),
            actor_type: StringBuilder::new(),
            actor_invoked_by: StringBuilder::new(),
            mfa: BooleanBuilder::new(),
            src_ip: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            outcome: StringBuilder::new(),
            error_code: StringBuilder::new(),
            error_message: StringBuilder::new(),
            read_only: BooleanBuilder::new(),
            request: StringBuilder::new(),
            response: StringBuilder::new(),
            additional: StringBuilder::new(),
            raw: StringBuilder::new(),
            src: StringBuilder::new(),
            src_partition: Int32Builder::new(),
            src_offset: Int64Builder::new(),
            src_line: Int64Builder::new(),
            src_index: Int32Builder::new(),
        }
    }
}

impl EventBatchBuilder {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn append(&mut self, row: &EventRow<'_>, position: &Position) {
        if self.rows == 0 {
            self.make_room();
        }
        self.rows += 1;
        self.time.append_value(row.time_us);
        self.provider.append_value(row.provider);
        self.event_id.append_value(&row.event_id);
        self.event_type.append_option(row.event_type.as_deref());
        self.account_id.append_option(row.account_id.as_deref());
        self.region.append_option(row.region.as_deref());
        self.service.append_option(row.service.as_deref());
        self.operation.append_option(row.operation.as_deref());
        self.resource.append_option(row.resource.as_deref());
        self.actor_principal
            .append_option(row.actor_principal.as_deref());
        self.actor_type.append_option(row.actor_type.as_deref());
        self.actor_invoked_by
            .append_option(row.actor_invoked_by.as_deref());
        self.mfa.append_option(row.mfa);
        self.src_ip.append_option(row.src_ip.as_deref());
        self.user_agent.append_option(row.user_agent.as_deref());
        self.outcome.append_value(row.outcome);
        self.error_code.append_option(row.error_code.as_deref());
        self.error_message
            .append_option(row.error_message.as_deref());
        self.read_only.append_option(row.read_only);
        self.request.append_option(row.request.as_deref());
        self.response.append_option(row.response.as_deref());
        self.additional.append_option(row.additional.as_deref());
        self.raw.append_option(row.raw);
        let Origin {
            source,
            partition,
            offset,
        } = &position.origin;
        self.src.append_value(source);
        self.src_partition.append_option(*partition);
        self.src_offset.append_option(*offset);
        self.src_line
            .append_value(i64::try_from(position.line).unwrap_or(i64::MAX));
        self.src_index
            .append_value(i32::try_from(position.index).unwrap_or(i32::MAX));
    }

    /// The string columns, in a fixed order.
    fn texts(&mut self) -> [&mut StringBuilder; TEXTS] {
        [
            &mut self.provider,
            &mut self.event_id,
            &mut self.event_type,
            &mut self.account_id,
            &mut self.region,
            &mut self.service,
            &mut self.operation,
            &mut self.resource,
            &mut self.actor_principal,
            &mut self.actor_type,
            &mut self.actor_invoked_by,
            &mut self.src_ip,
            &mut self.user_agent,
            &mut self.outcome,
            &mut self.error_code,
            &mut self.error_message,
            &mut self.request,
            &mut self.response,
            &mut self.additional,
            &mut self.raw,
            &mut self.src,
        ]
    }

    /// Gives each string column of a new batch room for a quarter more values and bytes
    /// than the last batch had: batches are cut on an estimate, so the next one is
    /// about as large, and its columns fill without growing (each growth copies the
    /// column so far into memory the process may not have touched yet). Done at the
    /// first row rather than at [`Self::finish`], once the caller may have dropped the
    /// last batch and its memory can be used again.
    fn make_room(&mut self) {
        let Some(last) = self.last.take() else {
            return;
        };
        for (builder, (values, bytes)) in self.texts().into_iter().zip(last) {
            *builder = StringBuilder::with_capacity(values + values / 4, bytes + bytes / 4);
        }
    }

    /// The bytes of the largest string column so far (the original JSON, when kept, or
    /// the request or response): Arrow's 32-bit offsets end at 2 GiB.
    pub fn largest_column_bytes(&self) -> usize {
        [&self.raw, &self.request, &self.response, &self.additional]
            .iter()
            .map(|b| b.values_slice().len())
            .max()
            .unwrap_or(0)
    }

    /// The rows so far as one batch; the builder starts empty again, and makes room for
    /// a batch like this one at its next row (see [`Self::make_room`]).
    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        self.last = Some(self.texts().map(|b| (b.len(), b.values_slice().len())));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.provider.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.account_id.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.operation.finish()),
            Arc::new(self.resource.finish()),
            Arc::new(self.actor_principal.finish()),
            Arc::new(self.actor_type.finish()),
            Arc::new(self.actor_invoked_by.finish()),
            Arc::new(self.mfa.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.error_code.finish()),
            Arc::new(self.error_message.finish()),
            Arc::new(self.read_only.finish()),
            Arc::new(self.request.finish()),
            Arc::new(self.response.finish()),
            Arc::new(self.additional.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.src.finish()),
            Arc::new(self.src_partition.finish()),
            Arc::new(self.src_offset.finish()),
            Arc::new(self.src_line.finish()),
            Arc::new(self.src_index.finish()),
        ];
        RecordBatch::try_new(event_schema(), columns)
            .expect("the builder's columns follow the event schema in order, type and nullability")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(builder: &mut EventBatchBuilder, rows: usize) {
        let raw = "{\"eventName\":\"PutBucketPolicy\"}".repeat(8);
        let position = Position {
            origin: Origin::file("f.json"),
            line: 1,
            index: 0,
        };
        for i in 0..rows {
            let row = EventRow {
                event_id: Cow::Owned(format!("id-{i}")),
                raw: Some(&raw),
                ..EventRow::default()
            };
            builder.append(&row, &position);
        }
    }

    #[test]
    fn a_batch_as_large_as_the_last_fills_without_growing_its_columns() {
        let mut builder = EventBatchBuilder::default();
        fill(&mut builder, 1000);
        let first = builder.finish();
        fill(&mut builder, 1);
        let room = (
            builder.raw.values_capacity(),
            builder.event_id.offsets_capacity(),
        );
        assert!(
            room.0 >= 1000 * 256,
            "room for the raw bytes of the last batch at the first row: {room:?}"
        );
        fill(&mut builder, 1099);
        assert_eq!(
            (
                builder.raw.values_capacity(),
                builder.event_id.offsets_capacity()
            ),
            room,
            "a batch a tenth larger needs no growth"
        );
        let second = builder.finish();
        assert_eq!((first.num_rows(), second.num_rows()), (1000, 1100));
        assert_eq!(second.column(1).len(), 1100);
    }
}
