//! Real sample files cut into single events, one message each, as EventBridge or a log
//! router would deliver them to Kafka.

use std::io::{Error, ErrorKind, Read};

use serde_json::Value;

/// One message: the account or project as key (related events stay in one
/// partition), one event as value.
pub type Message = (String, String);

/// Splits a file of audit logs (a `Records` file, an `entries` listing, a JSON array,
/// NDJSON; gzip or not) into single events, in file order.
pub fn split_events(bytes: &[u8]) -> std::io::Result<Vec<Message>> {
    let invalid = |e: serde_json::Error| Error::new(ErrorKind::InvalidData, e);
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(bytes).read_to_string(&mut out)?;
        out
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|e| Error::new(ErrorKind::InvalidData, e))?
    };
    // One JSON document (pretty-printed or not), or else one per line.
    let documents: Vec<Value> = match serde_json::from_str(&text) {
        Ok(document) => vec![document],
        Err(whole) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|_| invalid(whole))?,
    };
    let mut events = Vec::new();
    for document in documents {
        let items = match document {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("Records").or_else(|| map.remove("entries"))
            {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => vec![Value::Object(map)],
            },
            other => vec![other],
        };
        for item in items {
            let key = item
                .get("recipientAccountId")
                .or_else(|| item.pointer("/resource/labels/project_id"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            events.push((key, serde_json::to_string(&item).map_err(invalid)?));
        }
    }
    Ok(events)
}

/// The repository's samples with violations, as messages in file order: the attack
/// detonations (Stratus Red Team CloudTrail, by file name) and the GCP export. Read
/// from the source tree, for tests.
pub fn attack_samples() -> std::io::Result<Vec<Message>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/samples");
    let mut files = std::fs::read_dir(root.join("aws-stratus-red-team"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort();
    files.push(root.join(
        "gcp-export/cloudaudit.googleapis.com/activity/2026/03/02/10:00:00_10:59:59_S0.json",
    ));
    let mut messages = Vec::new();
    for file in files {
        messages.extend(split_events(&std::fs::read(file)?)?);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_files_ndjson_and_listings_become_single_events() {
        let records =
            br#"{"Records":[{"eventName":"A","recipientAccountId":"1"},{"eventName":"B"}]}"#;
        let events = split_events(records).expect("records");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0, "1");
        assert_eq!(events[1].0, "unknown");
        let ndjson = b"{\"a\":1}\n\n{\"resource\":{\"labels\":{\"project_id\":\"p\"}}}\n";
        let events = split_events(ndjson).expect("ndjson");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].0, "p");
        let listing = br#"{"entries":[{"x":1},{"x":2},{"x":3}]}"#;
        assert_eq!(split_events(listing).expect("entries").len(), 3);
        assert!(split_events(b"{oops").is_err());
    }
}
