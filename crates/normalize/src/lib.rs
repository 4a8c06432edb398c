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
mod gcp;
mod lenient;
mod outcome;
mod time;

use std::io::Read;

use arrow::array::RecordBatch;
use base64::Engine;
use demarc_model::{Origin, Position};

use crate::builder::{EventBatchBuilder, EventRow};
use crate::document::Document;
pub use crate::outcome::{EXCERPT_BYTES, Reject, RejectReason, SkipReason, Stats};

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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_event_bytes: 1 << 20,
            max_input_bytes: 1 << 30,
            keep_raw: true,
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
    fn at(&self, index: usize) -> Position {
        Position {
            origin: self.origin.clone(),
            line: self.line,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }

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

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Normalizes one input record: a whole file's bytes, or one message payload.
    pub fn push(&mut self, input: &[u8], origin: &Origin) {
        self.stats.inputs += 1;
        self.stats.bytes += input.len() as u64;
        let cursor = Cursor {
            origin,
            line: 1,
            depth: 0,
            pinned_line: false,
        };
        self.input(input, cursor);
    }

    /// Rows normalized since the last [`Normalizer::take_batch`].
    pub fn pending_rows(&self) -> usize {
        self.builder.len()
    }

    /// The pending rows as one batch, or `None` if there are none.
    pub fn take_batch(&mut self) -> Option<RecordBatch> {
        (self.builder.len() > 0).then(|| self.builder.finish())
    }

    /// Rejects since the last call, in input order.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn reject(&mut self, reason: RejectReason, detail: String, position: Position, input: &[u8]) {
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
            return self.reject(RejectReason::TooDeep, detail, cursor.at(0), bytes);
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return match self.gunzip(bytes) {
                Ok(plain) => self.input(&plain, cursor.deeper()),
                Err((reason, detail)) => self.reject(reason, detail, cursor.at(0), bytes),
            };
        }
        if bytes.len() > self.options.max_input_bytes {
            let detail = format!(
                "input of {} bytes is over the {}-byte limit",
                bytes.len(),
                self.options.max_input_bytes
            );
            return self.reject(RejectReason::Oversize, detail, cursor.at(0), bytes);
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            self.stats.skip(SkipReason::Empty);
            return;
        };
        let leading_lines = memchr::memchr_iter(b'\n', &bytes[..start]).count() as u64;
        let cursor = Cursor {
            line: if cursor.pinned_line {
                cursor.line
            } else {
                cursor.line + leading_lines
            },
            ..cursor
        };
        let body = &bytes[start..];
        if is_ndjson(body) {
            self.ndjson(body, cursor);
        } else {
            self.document(body, cursor);
        }
    }

    fn gunzip(&self, bytes: &[u8]) -> Result<Vec<u8>, (RejectReason, String)> {
        let limit = self.options.max_input_bytes;
        let mut plain = Vec::with_capacity(bytes.len().saturating_mul(8).min(limit));
        let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(limit as u64 + 1);
        decoder
            .read_to_end(&mut plain)
            .map_err(|e| (RejectReason::BadGzip, format!("gzip stream is corrupt: {e}")))?;
        if plain.len() > limit {
            return Err((
                RejectReason::Oversize,
                format!("gzip input expands past the {limit}-byte limit"),
            ));
        }
        Ok(plain)
    }

    fn ndjson(&mut self, body: &[u8], cursor: Cursor<'_>) {
        let mut line_no = cursor.line;
        for line in body.split(|b| *b == b'\n') {
            let trimmed = line.trim_ascii();
            if !trimmed.is_empty() {
                let line_cursor = Cursor {
                    line: if cursor.pinned_line { cursor.line } else { line_no },
                    ..cursor
                };
                self.document(trimmed, line_cursor);
            }
            line_no += 1;
        }
    }

    /// One JSON document: an array of documents, or an object.
    fn document(&mut self, bytes: &[u8], cursor: Cursor<'_>) {
        if bytes.first() == Some(&b'[') {
            let items = match sonic_rs::from_slice::<lenient::Items<'_>>(bytes) {
                Ok(lenient::Items::Array(items)) => items,
                // A document that starts with `[` and parses is an array.
                Ok(_) => Vec::new(),
                Err(e) => {
                    let (reason, detail) = json_error(&e);
                    return self.reject(reason, detail, cursor.at(0), bytes);
                }
            };
            for (index, item) in items.iter().enumerate() {
                self.element(item.as_bytes(), cursor.deeper(), index);
            }
            return;
        }
        match sonic_rs::from_slice::<Document<'_>>(bytes) {
            Ok(doc) => self.dispatch(doc, bytes, cursor, 0),
            Err(e) => {
                let (reason, detail) = json_error(&e);
                self.reject(reason, detail, cursor.at(0), bytes);
            }
        }
    }

    /// One element of an array or `entries` list: any document but another array.
    fn element(&mut self, bytes: &[u8], cursor: Cursor<'_>, index: usize) {
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, cursor.at(index));
        }
        if bytes.first() != Some(&b'{') {
            let detail = "array element is not a JSON object".to_owned();
            return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
        }
        match sonic_rs::from_slice::<Document<'_>>(bytes) {
            Ok(doc) => self.dispatch(doc, bytes, cursor, index),
            Err(e) => {
                let (reason, detail) = json_error(&e);
                self.reject(reason, detail, cursor.at(index), bytes);
            }
        }
    }

    fn oversize(&mut self, bytes: &[u8], position: Position) {
        let detail = format!(
            "event of {} bytes is over the {}-byte limit",
            bytes.len(),
            self.options.max_event_bytes
        );
        self.reject(RejectReason::Oversize, detail, position, bytes);
    }

    fn dispatch(&mut self, doc: Document<'_>, bytes: &[u8], cursor: Cursor<'_>, index: usize) {
        if doc.digest_start_time.0 && doc.log_files.0 {
            self.stats.skip(SkipReason::CloudTrailDigest);
            return;
        }
        match doc.records {
            lenient::Items::Array(ref items) => {
                for (i, item) in items.iter().enumerate() {
                    self.cloudtrail_element(item.as_bytes(), cursor.at(i));
                }
                return;
            }
            lenient::Items::NotArray(kind) => {
                let detail = format!("`Records` is a {kind}, not an array");
                return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
            }
            lenient::Items::Absent => {}
        }
        if let Some(detail_type) = doc.detail_type.as_deref() {
            if !detail_type.ends_with("via CloudTrail") {
                self.stats.skip(SkipReason::EventBridgeOther);
                return;
            }
            return match doc.detail.0.as_deref() {
                Some(detail) if detail.starts_with('{') => {
                    self.cloudtrail_element(detail.as_bytes(), cursor.at(index));
                }
                _ => {
                    let detail = "EventBridge event has no `detail` object".to_owned();
                    self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
                }
            };
        }
        match doc.entries {
            lenient::Items::Array(ref items) => {
                for (i, item) in items.iter().enumerate() {
                    self.element(item.as_bytes(), cursor.deeper(), i);
                }
                return;
            }
            lenient::Items::NotArray(kind) => {
                let detail = format!("`entries` is a {kind}, not an array");
                return self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
            }
            lenient::Items::Absent => {}
        }
        if doc.proto_payload.0.is_some() {
            if !gcp::is_audit_log(&doc) {
                self.stats.skip(SkipReason::GcpNonAudit);
                return;
            }
            return self.event(doc, bytes, cursor.at(index), gcp::to_row);
        }
        if let Some(message) = doc.message.0.as_deref() {
            return self.pubsub_push(message, bytes, cursor, index);
        }
        if doc.is_pubsub_message() {
            let data = doc.data.0.unwrap_or_default();
            return self.pubsub_data(&data, bytes, cursor, index);
        }
        if doc.looks_like_cloudtrail() {
            return self.event(doc, bytes, cursor.at(index), cloudtrail::to_row);
        }
        if doc.looks_like_gcp_entry() {
            self.stats.skip(SkipReason::GcpNonAudit);
            return;
        }
        let detail = "JSON object is not a CloudTrail event, GCP log entry or known envelope".to_owned();
        self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
    }

    /// An element of `Records` or an EventBridge `detail`: a CloudTrail event by position.
    fn cloudtrail_element(&mut self, bytes: &[u8], position: Position) {
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, position);
        }
        match sonic_rs::from_slice::<Document<'_>>(bytes) {
            Ok(doc) => self.event(doc, bytes, position, cloudtrail::to_row),
            Err(e) => {
                let (reason, detail) = json_error(&e);
                let detail = if bytes.first() == Some(&b'{') {
                    detail
                } else {
                    "CloudTrail record is not a JSON object".to_owned()
                };
                self.reject(reason, detail, position, bytes);
            }
        }
    }

    fn event<'a>(
        &mut self,
        doc: Document<'a>,
        bytes: &'a [u8],
        position: Position,
        to_row: fn(Document<'a>, Option<&'a str>) -> Result<EventRow<'a>, cloudtrail::EventError>,
    ) {
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, position);
        }
        // sonic-rs validated the document, so the bytes are UTF-8.
        let raw = if self.options.keep_raw {
            std::str::from_utf8(bytes).ok()
        } else {
            None
        };
        match to_row(doc, raw) {
            Ok(row) => {
                self.stats.events_in += 1;
                self.stats.events_out += 1;
                self.builder.append(&row, &position);
            }
            Err((reason, detail)) => self.reject(reason, detail, position, bytes),
        }
    }

    /// A Pub/Sub push request: `{"message": {"data": …}, "subscription": …}`.
    fn pubsub_push(&mut self, message: &str, bytes: &[u8], cursor: Cursor<'_>, index: usize) {
        let data = sonic_rs::from_str::<lenient::Obj<PubSubMessage<'_>>>(message)
            .ok()
            .and_then(|m| m.0)
            .and_then(|m| m.data.0);
        match data {
            Some(data) => self.pubsub_data(&data, bytes, cursor, index),
            None => {
                let detail = "`message` has no base64 `data`".to_owned();
                self.reject(RejectReason::UnrecognizedEnvelope, detail, cursor.at(index), bytes);
            }
        }
    }

    fn pubsub_data(&mut self, data: &str, bytes: &[u8], cursor: Cursor<'_>, index: usize) {
        match BASE64.decode(data.trim()) {
            Ok(payload) => {
                let inner = Cursor {
                    pinned_line: true,
                    ..cursor.deeper()
                };
                self.input(&payload, inner);
            }
            Err(e) => {
                let detail = format!("Pub/Sub `data` is not base64: {e}");
                self.reject(RejectReason::BadBase64, detail, cursor.at(index), bytes);
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PubSubMessage<'a> {
    #[serde(borrow)]
    data: lenient::Text<'a>,
}

/// Standard or URL-safe alphabet, padded or not: Pub/Sub clients differ.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

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

/// Several JSON documents, one per line, rather than one (possibly pretty-printed)
/// document: the first line is a complete JSON value and more follows it.
fn is_ndjson(body: &[u8]) -> bool {
    let Some(newline) = memchr::memchr(b'\n', body) else {
        return false;
    };
    let first = body[..newline].trim_ascii();
    let rest_has_content = body[newline..].iter().any(|b| !b.is_ascii_whitespace());
    rest_has_content
        && !first.is_empty()
        && sonic_rs::from_slice::<serde::de::IgnoredAny>(first).is_ok()
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
