//! CloudTrail and GCP Cloud Audit Logs, in every envelope they arrive in, to Arrow
//! `RecordBatch`es of the one normalized schema (`demarc_model::schema`).
//!
//! Pure and synchronous: bytes in, rows, skips and rejects out. It must not depend on
//! tokio, Kafka, DataFusion or the file system, so that the streaming and backfill paths
//! share it unchanged, and so that it can be fuzzed and benchmarked alone.
//!
//! Envelopes are recognised from content, never from file names: gzip (magic bytes),
//! NDJSON, a JSON array, an S3 `{"Records":[…]}` file, an EventBridge event, a CloudTrail
//! event, a GCP `LogEntry`, an `{"entries":[…]}` listing, and Pub/Sub messages (push
//! envelope or bare) whose `data` is any of these. Nothing panics on input: every byte
//! string is either normalized, skipped with a counted reason, or rejected with a reason,
//! its position and an excerpt.

mod builder;
mod cloudtrail;
mod document;
mod event;
mod filter;
mod gcp;
mod gzip;
mod head;
mod lenient;
mod ndjson;
mod outcome;
mod pubsub;
mod scan;
mod time;

use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use demarc_model::{Origin, Position};

use crate::builder::EventBatchBuilder;
use crate::document::Document;
pub use crate::filter::{AlternativeTests, ColumnTest, RowFilter};
use crate::gzip::{KEPT_GZIP_BUFFER, gunzip};
pub use crate::ndjson::looks_like_ndjson;
use crate::ndjson::{is_ndjson, lines};
pub use crate::outcome::{EXCERPT_BYTES, LenientReason, Reject, RejectReason, SkipReason, Stats};

/// Limits and switches of a [`Normalizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Events larger than this are rejected as `oversize`. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Inputs larger than this after decompression are rejected as `oversize`; this
    /// bounds what one gzip member can expand to. Default 1 GiB.
    pub max_input_bytes: usize,
    /// Keep each event's original JSON in the `raw` column. Default on.
    pub keep_raw: bool,
    /// Only events whose time is at or after this (microseconds since the epoch); the
    /// others are skipped as `outside_time_range`. Default: no bound.
    pub since_us: Option<i64>,
    /// Only events whose time is before this (microseconds since the epoch).
    pub until_us: Option<i64>,
    /// Build rows only for the events this keeps; the others are checked as usual
    /// (a missing id or a bad time is still rejected), counted in
    /// [`Stats::events_unmatched`], and get no row. Default: every event gets a row.
    pub row_filter: Option<Arc<RowFilter>>,
    /// Every event gets a row, and each row is marked with whether this filter keeps it
    /// ([`Normalizer::take_marked_batch`]): a lake gets every row whole, the rules only
    /// the marked ones. Default: no marks.
    pub mark_rows: Option<Arc<RowFilter>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_event_bytes: 1 << 20,
            max_input_bytes: 1 << 30,
            keep_raw: true,
            since_us: None,
            until_us: None,
            row_filter: None,
            mark_rows: None,
        }
    }
}

/// Nesting of envelopes (gzip in Pub/Sub in an array …) beyond anything a real delivery
/// path produces.
const MAX_DEPTH: u8 = 6;

/// Turns input records into rows of the normalized schema.
///
/// Feed it with [`Normalizer::push`]; take rows with [`Normalizer::take_batch`] whenever
/// [`Normalizer::pending_rows`] reaches the batch size you want, and rejects with
/// [`Normalizer::take_rejects`].
#[derive(Debug, Default)]
pub struct Normalizer {
    options: Options,
    builder: EventBatchBuilder,
    rejects: Vec<Reject>,
    stats: Stats,
    /// Decompression output, reused across inputs.
    gzip_buffer: Buffer,
    /// Whether [`Options::mark_rows`] keeps each pending row, in row order.
    marks: Vec<bool>,
    /// Ordinal of the next outcome (row, skip or reject) inside the current top-level
    /// document; with the line it makes every position unique.
    next_index: u32,
}

/// A reusable byte buffer whose `Debug` shows its size, not its bytes.
#[derive(Default)]
struct Buffer(Vec<u8>);

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} bytes)", self.0.len())
    }
}

/// Where in the input the document being read sits.
#[derive(Clone, Copy)]
struct Cursor<'o> {
    origin: &'o Origin,
    line: u64,
    depth: u8,
    /// Set inside a decoded Pub/Sub payload: every event there is reported at the line
    /// of the message that carried it.
    pinned_line: bool,
}

impl Cursor<'_> {
    fn deeper(self) -> Self {
        Self {
            depth: self.depth.saturating_add(1),
            ..self
        }
    }
}

impl Normalizer {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// Normalizes one input record: a whole file's bytes, or one message payload.
    pub fn push(&mut self, input: &[u8], origin: &Origin) {
        let cursor = self.start(input, origin, 1);
        self.input(input, cursor);
    }

    /// Normalizes a run of whole lines cut from a larger NDJSON input (decompressed),
    /// which starts at line `first_line` of it: every line is read as its own
    /// document, whatever the first one looks like, and positions name the line in
    /// the whole input. Each call counts as one input in [`Stats`].
    pub fn push_lines(&mut self, lines: &[u8], origin: &Origin, first_line: u64) {
        let cursor = self.start(lines, origin, first_line.max(1));
        self.ndjson(lines, cursor);
    }

    /// Rejects a whole input as `oversize` without reading it: one of `size` bytes,
    /// over [`Options::max_input_bytes`], that its reader did not load. `head` is its
    /// beginning, for the excerpt.
    pub fn reject_oversize_input(&mut self, origin: &Origin, size: u64, head: &[u8]) {
        let cursor = self.start(&[], origin, 1);
        self.stats.bytes += size;
        let detail = format!(
            "input of {size} bytes is over the {}-byte limit",
            self.options.max_input_bytes
        );
        self.reject(RejectReason::Oversize, detail, cursor, head);
    }

    /// Counts a new input and places a cursor at its start.
    fn start<'o>(&mut self, input: &[u8], origin: &'o Origin, line: u64) -> Cursor<'o> {
        self.stats.inputs += 1;
        self.stats.bytes += input.len() as u64;
        self.next_index = 0;
        Cursor {
            origin,
            line,
            depth: 0,
            pinned_line: false,
        }
    }

    /// Rows normalized since the last [`Normalizer::take_batch`].
    pub fn pending_rows(&self) -> usize {
        self.builder.len()
    }

    /// The bytes of the largest string column of the pending rows: take a batch well
    /// before 2 GiB, where Arrow's 32-bit string offsets end (one input adds at most
    /// [`Options::max_input_bytes`]).
    pub fn pending_bytes(&self) -> usize {
        self.builder.largest_column_bytes()
    }

    /// The pending rows as one batch, or `None` if there are none.
    pub fn take_batch(&mut self) -> Option<RecordBatch> {
        self.marks.clear();
        (self.builder.len() > 0).then(|| self.builder.finish())
    }

    /// The pending rows as one batch, with, under [`Options::mark_rows`], whether the
    /// filter keeps each of them; `None` if there are no rows.
    pub fn take_marked_batch(&mut self) -> Option<(RecordBatch, Option<BooleanArray>)> {
        let marks = std::mem::take(&mut self.marks);
        let batch = self.take_batch()?;
        let marks = (self.options.mark_rows.is_some() && marks.len() == batch.num_rows())
            .then(|| BooleanArray::from(marks));
        Some((batch, marks))
    }

    /// Rejects since the last call, in input order.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The position of the next outcome (row, skip or reject) of the document under
    /// `cursor`.
    fn position(&mut self, cursor: Cursor<'_>) -> Position {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        Position {
            origin: cursor.origin.clone(),
            line: cursor.line,
            index,
        }
    }

    /// Whether an event of this time is within [`Options::since_us`, `Options::until_us`).
    fn in_time_range(&self, time_us: i64) -> bool {
        self.options.since_us.is_none_or(|since| time_us >= since)
            && self.options.until_us.is_none_or(|until| time_us < until)
    }

    fn skip(&mut self, reason: SkipReason) {
        self.next_index = self.next_index.saturating_add(1);
        self.stats.skip(reason);
    }

    fn reject(&mut self, reason: RejectReason, detail: String, cursor: Cursor<'_>, input: &[u8]) {
        let position = self.position(cursor);
        self.stats.events_in += 1;
        *self.stats.rejected.entry(reason).or_default() += 1;
        self.rejects.push(Reject {
            reason,
            detail,
            position,
            excerpt: outcome::excerpt(input),
        });
    }

    fn input(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        if cursor.depth > MAX_DEPTH {
            let detail = format!("envelopes nested more than {MAX_DEPTH} deep");
            return self.reject(RejectReason::TooDeep, detail, cursor, bytes);
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            // The output buffer is reused across inputs: allocating and first touching
            // large buffers costs more than decompressing into them.
            let mut buffer = std::mem::take(&mut self.gzip_buffer.0);
            match gunzip(bytes, &mut buffer, self.options.max_input_bytes) {
                Ok(len) => self.input(&buffer[..len], cursor.deeper()),
                Err((reason, detail)) => self.reject(reason, detail, cursor, bytes),
            }
            if buffer.len() <= KEPT_GZIP_BUFFER {
                self.gzip_buffer = Buffer(buffer);
            }
            return;
        }
        if bytes.len() > self.options.max_input_bytes {
            let detail = format!(
                "input of {} bytes is over the {}-byte limit",
                bytes.len(),
                self.options.max_input_bytes
            );
            return self.reject(RejectReason::Oversize, detail, cursor, bytes);
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let Some(start) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
            return self.skip(SkipReason::Empty);
        };
        let body = &bytes[start..];
        let mut cursor = cursor;
        if !cursor.pinned_line {
            cursor.line += memchr::memchr_iter(b'\n', &bytes[..start]).count() as u64;
        }
        if is_ndjson(body) {
            self.ndjson(body, cursor);
        } else {
            self.document(body, cursor);
        }
    }

    fn ndjson(&mut self, body: &[u8], cursor: Cursor<'_>) {
        for (offset, line) in lines(body).enumerate() {
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            let mut line_cursor = cursor;
            if !cursor.pinned_line {
                line_cursor.line += offset as u64;
                self.next_index = 0;
            }
            self.document(trimmed, line_cursor);
        }
    }

    /// One JSON document: an array of documents, or an object.
    fn document(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        if self.envelope_elements(bytes, cursor) {
            return;
        }
        if scan::exceeds(bytes, scan::MAX_NESTING) {
            let detail = format!(
                "JSON nests more than {} arrays or objects deep",
                scan::MAX_NESTING
            );
            return self.reject(RejectReason::TooDeep, detail, cursor, bytes);
        }
        if bytes.first() == Some(&b'[') {
            // Checked first: sonic-rs hands out the raw text of elements unchecked, and
            // panics on text that is not UTF-8.
            let Some(text) = self.utf8(bytes, cursor) else {
                return;
            };
            let items = match sonic_rs::from_str::<lenient::Items<'_>>(text) {
                Ok(lenient::Items::Array(items)) => items,
                // A document that starts with `[` and parses is an array.
                Ok(_) => Vec::new(),
                Err(e) => {
                    let (reason, detail) = json_error(&e);
                    return self.reject(reason, detail, cursor, bytes);
                }
            };
            for item in &items {
                self.element(item.as_bytes(), cursor.deeper());
            }
            return;
        }
        if bytes.first() != Some(&b'{') {
            let detail = "JSON document is not an object or an array".to_owned();
            return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
        }
        if let Some((mut doc, text)) = self.parse_document(bytes, cursor) {
            self.dispatch(&mut doc, text, cursor);
        }
    }

    /// The shortcut for the envelopes that carry most data (a top-level array, an S3
    /// `Records` file, an `entries` listing): elements are delimited by the structural
    /// scan and each is parsed once. Returns false, having done nothing, whenever the
    /// document is not exactly such an envelope of objects; the general path then
    /// handles it, errors included.
    fn envelope_elements(&mut self, bytes: &[u8], cursor: Cursor<'_>) -> bool {
        // Element nesting is counted from the element: one level less than the
        // document for a top-level array, two for `{"Records":[…]}`.
        let (envelope, open, limit) = if bytes.first() == Some(&b'[') {
            (None, 0, scan::MAX_NESTING - 1)
        } else if let Some((envelope, open)) = scan::envelope_array(bytes) {
            (Some(envelope), open, scan::MAX_NESTING - 2)
        } else {
            return false;
        };
        let Some((spans, after)) = scan::object_elements(bytes, open, limit) else {
            return false;
        };
        let complete = match envelope {
            None => scan::only_whitespace(bytes, after),
            Some(_) => scan::closes_object(bytes, after),
        };
        if !complete {
            return false;
        }
        for (start, end) in spans {
            let element = &bytes[start..end];
            match envelope {
                Some(scan::Envelope::Records) => self.cloudtrail_element(element, cursor),
                Some(scan::Envelope::Entries) | None => self.element(element, cursor.deeper()),
            }
        }
        true
    }

    /// One element of an array or `entries` list: any object document.
    fn element(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        if bytes.first() != Some(&b'{') {
            let detail = "array element is not a JSON object".to_owned();
            return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
        }
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, cursor);
        }
        if let Some((mut doc, text)) = self.parse_document(bytes, cursor) {
            self.dispatch(&mut doc, text, cursor);
        }
    }

    fn oversize(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        let detail = format!(
            "event of {} bytes is over the {}-byte limit",
            bytes.len(),
            self.options.max_event_bytes
        );
        self.reject(RejectReason::Oversize, detail, cursor, bytes);
    }

    fn dispatch<'a>(&mut self, doc: &mut Document<'a>, text: &'a str, cursor: Cursor<'_>) {
        let bytes = text.as_bytes();
        if doc.digest_start_time.0 && doc.log_files.0 {
            return self.skip(SkipReason::CloudTrailDigest);
        }
        match &doc.records {
            lenient::Items::Array(items) => {
                for item in items {
                    self.cloudtrail_element(item.as_bytes(), cursor);
                }
                return;
            }
            lenient::Items::NotArray(kind) => {
                let detail = format!("`Records` is a {kind}, not an array");
                return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
            }
            lenient::Items::Absent => {}
        }
        if let Some(detail_type) = doc.detail_type.as_deref() {
            if !detail_type.ends_with("via CloudTrail") {
                return self.skip(SkipReason::EventBridgeOther);
            }
            return match doc.detail.0.as_deref() {
                Some(detail) => self.cloudtrail_element(detail.as_bytes(), cursor),
                None => {
                    let detail = "EventBridge event has no `detail` object".to_owned();
                    self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes)
                }
            };
        }
        match &doc.entries {
            lenient::Items::Array(items) => {
                for item in items {
                    self.element(item.as_bytes(), cursor.deeper());
                }
                return;
            }
            lenient::Items::NotArray(kind) => {
                let detail = format!("`entries` is a {kind}, not an array");
                return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
            }
            lenient::Items::Absent => {}
        }
        if doc.proto_payload.0.is_some() {
            if !gcp::is_audit_log(doc) {
                return self.skip(SkipReason::GcpNonAudit);
            }
            return self.event::<gcp::Entry>(doc, text, cursor);
        }
        if let Some(message) = doc.message.0.as_deref() {
            return self.pubsub_push(message, bytes, cursor);
        }
        if doc.is_pubsub_message() {
            let data = std::mem::take(&mut doc.data).0.unwrap_or_default();
            return self.pubsub_data(&data, bytes, cursor);
        }
        if doc.looks_like_cloudtrail() {
            return self.cloudtrail_event(doc, text, cursor);
        }
        if doc.looks_like_gcp_entry() {
            return self.skip(SkipReason::GcpNonAudit);
        }
        let detail =
            "JSON object is not a CloudTrail event, GCP log entry or known envelope".to_owned();
        self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
    }

    /// An element of `Records` or an EventBridge `detail`: a CloudTrail event by position.
    fn cloudtrail_element(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        if bytes.first() != Some(&b'{') {
            let detail = "CloudTrail record is not a JSON object".to_owned();
            return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
        }
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, cursor);
        }
        let Some(text) = self.utf8(bytes, cursor) else {
            return;
        };
        if self.unmatched_record(text, cursor) {
            return;
        }
        if let Some(mut doc) = self.parse_text(text, cursor) {
            self.cloudtrail_event(&mut doc, text, cursor);
        }
    }

    fn cloudtrail_event<'a>(&mut self, doc: &mut Document<'a>, text: &'a str, cursor: Cursor<'_>) {
        // S3, SQS and SNS notifications also come as `Records`, with `aws:`-prefixed
        // sources; they describe data, not API calls.
        if doc
            .event_source
            .as_deref()
            .is_some_and(|s| s.starts_with("aws:"))
        {
            return self.skip(SkipReason::AwsNotification);
        }
        self.event::<cloudtrail::Event>(doc, text, cursor);
    }

    /// A Pub/Sub push request: `{"message": {"data": …}, "subscription": …}`.
    fn pubsub_push(&mut self, message: &str, bytes: &[u8], cursor: Cursor<'_>) {
        match pubsub::message_data(message) {
            Some(data) => self.pubsub_data(&data, bytes, cursor),
            None => {
                let detail = "`message` has no base64 `data`".to_owned();
                self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor, bytes);
            }
        }
    }

    fn pubsub_data(&mut self, data: &str, bytes: &[u8], cursor: Cursor<'_>) {
        match pubsub::decode(data) {
            Ok(payload) => {
                let inner = Cursor {
                    pinned_line: true,
                    ..cursor.deeper()
                };
                self.input(&payload, inner);
            }
            Err(e) => {
                let detail = format!("Pub/Sub `data` is not base64: {e}");
                self.reject(RejectReason::BadBase64, detail, cursor, bytes);
            }
        }
    }
}

/// Parses JSON found inside an event (a field value, or JSON text inside a string),
/// after the nesting guard: such text may not have been measured with its document.
pub(crate) fn parse_nested<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Option<T> {
    if scan::exceeds(text.as_bytes(), scan::MAX_NESTING) {
        return None;
    }
    sonic_rs::from_str(text).ok()
}

fn json_error(error: &sonic_rs::Error) -> (RejectReason, String) {
    use sonic_rs::error::Category;
    let reason = match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => RejectReason::InvalidJson,
        _ => RejectReason::MalformedEvent,
    };
    let message = error.to_string();
    let first_line = message.lines().next().unwrap_or_default();
    (reason, first_line.to_owned())
}

/// Normalizes one input completely: the convenience for tests and one-shot callers.
pub fn normalize_bytes(input: &[u8], origin: &Origin, options: Options) -> Normalized {
    let mut normalizer = Normalizer::new(options);
    normalizer.push(input, origin);
    Normalized {
        batch: normalizer.take_batch(),
        rejects: normalizer.take_rejects(),
        stats: normalizer.stats().clone(),
    }
}

/// Everything one input produced.
#[derive(Debug)]
pub struct Normalized {
    pub batch: Option<RecordBatch>,
    pub rejects: Vec<Reject>,
    pub stats: Stats,
}

impl Normalized {
    pub fn rows(&self) -> usize {
        self.batch.as_ref().map_or(0, RecordBatch::num_rows)
    }
}

#[cfg(test)]
mod tests;
