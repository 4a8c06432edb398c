//! Raw input records and where they came from. Every normalized row and every reject
//! carries a [`Position`], so that an analyst can go back to the exact bytes, and so
//! that a source position is committed only once what it covers is durable.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where one input record (a file, or one Kafka message) came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// File path, object URL or Kafka topic.
    pub source: Arc<str>,
    /// Kafka partition; `None` for files.
    pub partition: Option<i32>,
    /// Kafka offset; `None` for files.
    pub offset: Option<i64>,
}

impl Origin {
    /// A file or object, named by its path or URL.
    pub fn file(path: impl Into<Arc<str>>) -> Self {
        Self {
            source: path.into(),
            partition: None,
            offset: None,
        }
    }

    /// One Kafka message.
    pub fn kafka(topic: impl Into<Arc<str>>, partition: i32, offset: i64) -> Self {
        Self {
            source: topic.into(),
            partition: Some(partition),
            offset: Some(offset),
        }
    }
}

/// The position of one event (or one rejected piece of input) inside an input record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    #[serde(flatten)]
    pub origin: Origin,
    /// 1-based line of the record where the JSON document holding the event starts:
    /// the NDJSON line, or the first non-blank line of a record that is one document.
    /// Inside a Pub/Sub payload, the line of the message that carried it.
    pub line: u64,
    /// 0-based ordinal of the outcome (row, skip or reject) within that document: for
    /// a `Records` file or an `entries` list, the element's index; 0 for a document
    /// that is the event itself.
    pub index: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Origin {
            source,
            partition,
            offset,
        } = &self.origin;
        match (partition, offset) {
            (Some(p), Some(o)) => write!(f, "{source}[{p}]@{o}")?,
            _ => write!(f, "{source}")?,
        }
        write!(f, ":{} #{}", self.line, self.index)
    }
}

/// One input record as a source hands it to the normalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub origin: Origin,
    /// The bytes as received: any envelope the normalizer knows, possibly gzip-compressed.
    pub payload: Vec<u8>,
    /// When the source says the record was produced (Kafka message timestamp), in
    /// milliseconds since the Unix epoch.
    pub produced_at_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_display_names_file_line_and_index() {
        let pos = Position {
            origin: Origin::file("logs/a.json"),
            line: 3,
            index: 7,
        };
        assert_eq!(pos.to_string(), "logs/a.json:3 #7");
    }

    #[test]
    fn position_display_names_topic_partition_and_offset() {
        let pos = Position {
            origin: Origin::kafka("cloudtrail", 2, 41),
            line: 1,
            index: 0,
        };
        assert_eq!(pos.to_string(), "cloudtrail[2]@41:1 #0");
    }

    #[test]
    fn position_serializes_flat() {
        let pos = Position {
            origin: Origin::kafka("t", 0, 5),
            line: 1,
            index: 2,
        };
        let json = serde_json::to_value(&pos).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"source":"t","partition":0,"offset":5,"line":1,"index":2})
        );
    }
}
