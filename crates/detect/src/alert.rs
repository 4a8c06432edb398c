//! A rule's matches turned into alerts: the contract of `demarc_model::Alert`.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use demarc_model::{Alert, Origin, Position};
use sha2::{Digest, Sha256};

use crate::rule::{RuleFile, placeholders};
use crate::{Error, Result};

/// The events of one batch by id, to fill alerts with what rules do not return.
pub(crate) struct EventIndex<'b> {
    batch: &'b RecordBatch,
    rows: HashMap<&'b str, usize>,
}

impl<'b> EventIndex<'b> {
    pub fn new(batch: &'b RecordBatch) -> Result<Self> {
        let ids = string_column(batch, "event_id")?;
        let rows = (0..ids.len()).map(|row| (ids.value(row), row)).collect();
        Ok(Self { batch, rows })
    }

    fn text(&self, column: &str, row: usize) -> Result<Option<String>> {
        let array = string_column(self.batch, column)?;
        Ok(array.is_valid(row).then(|| array.value(row).to_owned()))
    }

    fn display(&self, column: &str, row: usize) -> Result<String> {
        let array = self
            .batch
            .column_by_name(column)
            .ok_or_else(|| Error::Schema(format!("the events have no `{column}` column")))?;
        format_value(array.as_ref(), row)
    }
}

/// The alert id: a hash of the rule id and the sorted event ids, so that a replay of
/// the same events yields the same id.
pub fn alert_id(rule_id: &str, event_ids: &[String]) -> String {
    let mut sorted: Vec<&str> = event_ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    for id in sorted {
        hasher.update(b"\n");
        hasher.update(id.as_bytes());
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The suppression key: a hash of the rule id and its `dedup` values, in the rule's
/// column order (a null differs from every text, the empty one included).
pub fn dedup_key(rule_id: &str, values: &[(&str, Option<&str>)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    for (column, value) in values {
        hasher.update(b"\n");
        hasher.update(column.as_bytes());
        match value {
            Some(v) => {
                hasher.update(b"=");
                hasher.update(v.as_bytes());
            }
            None => hasher.update(b"\0"),
        }
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One alert per matched row.
pub(crate) fn alerts(
    rule: &RuleFile,
    matched: &[RecordBatch],
    events: &EventIndex<'_>,
    detected_at: &str,
) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for batch in matched {
        let ids = string_column(batch, "event_id")?;
        for row in 0..batch.num_rows() {
            if ids.is_null(row) {
                return Err(Error::Schema(format!(
                    "rule `{}` returned a null event_id",
                    rule.meta.id
                )));
            }
            let event_id = ids.value(row);
            let Some(&event_row) = events.rows.get(event_id) else {
                return Err(Error::Schema(format!(
                    "rule `{}` returned event id `{event_id}`, which is not in the batch",
                    rule.meta.id
                )));
            };
            // A windowed rule names every event of what it found in `event_ids`.
            let mut event_ids = vec![event_id.to_owned()];
            if let Some(list) = batch
                .column_by_name("event_ids")
                .and_then(|c| c.as_list_opt::<i32>())
                && list.is_valid(row)
            {
                let values = list.value(row);
                if let Some(values) = values.as_string_opt::<i32>() {
                    event_ids.extend(values.iter().flatten().map(str::to_owned));
                }
            }
            event_ids.sort_unstable();
            event_ids.dedup();
            let mut source = Vec::with_capacity(event_ids.len());
            for id in &event_ids {
                let Some(&row) = events.rows.get(id.as_str()) else {
                    return Err(Error::Schema(format!(
                        "rule `{}` returned event id `{id}` in `event_ids`, which is not among \
                         its events",
                        rule.meta.id
                    )));
                };
                source.push(position(events, row)?);
            }
            let mut dedup = Vec::with_capacity(rule.meta.dedup.len());
            for column in &rule.meta.dedup {
                // The rule's own output first (it may compute the column), then the event.
                let value = match batch.column_by_name(column) {
                    Some(array) if array.is_null(row) => None,
                    Some(array) => Some(format_value(array.as_ref(), row)?),
                    None => match events.batch.column_by_name(column) {
                        Some(array) if array.is_null(event_row) => None,
                        Some(_) => Some(events.display(column, event_row)?),
                        None => {
                            return Err(Error::Schema(format!(
                                "rule `{}`: dedup column `{column}` is neither returned nor an \
                                 event column",
                                rule.meta.id
                            )));
                        }
                    },
                };
                dedup.push((column.clone(), value));
            }
            let mut pairs: Vec<(&str, Option<&str>)> = dedup
                .iter()
                .map(|(c, v)| (c.as_str(), v.as_deref()))
                .collect();
            // A rule without dedup columns: every event is a thing of its own.
            if pairs.is_empty() {
                pairs.push(("event_id", Some(event_id)));
            }
            let dedup_key = dedup_key(&rule.meta.id, &pairs);
            out.push(Alert {
                alert_id: alert_id(&rule.meta.id, &event_ids),
                rule_id: rule.meta.id.clone(),
                title: rule.meta.title.clone(),
                category: rule.meta.category,
                severity: rule.meta.severity,
                srm_layer: rule.meta.srm_layer,
                attack: rule.meta.attack.clone(),
                summary: render(&rule.meta.summary, batch, row)?,
                event_ids,
                event_time: events.display("time", event_row)?,
                detected_at: detected_at.to_owned(),
                provider: events.text("provider", event_row)?.unwrap_or_default(),
                account_id: events.text("account_id", event_row)?,
                region: events.text("region", event_row)?,
                actor: events.text("actor_principal", event_row)?,
                resource: events.text("resource", event_row)?,
                source,
                dedup: dedup.into_iter().collect(),
                dedup_key,
            });
        }
    }
    Ok(out)
}

/// The summary template with each `{column}` replaced by the row's value (`-` for
/// null).
fn render(template: &str, batch: &RecordBatch, row: usize) -> Result<String> {
    let mut text = template.to_owned();
    for name in placeholders(template) {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| Error::Schema(format!("summary column `{name}` is not returned")))?;
        let value = format_value(array.as_ref(), row)?;
        text = text.replacen(&format!("{{{name}}}"), &value, 1);
        text = text.replacen(&format!("{{ {name} }}"), &value, 1);
    }
    Ok(text)
}

fn format_value(array: &dyn Array, row: usize) -> Result<String> {
    if array.is_null(row) {
        return Ok("-".to_owned());
    }
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())
        .map_err(|e| Error::Schema(e.to_string()))?;
    Ok(formatter.value(row).to_string())
}

fn position(events: &EventIndex<'_>, row: usize) -> Result<Position> {
    let batch = events.batch;
    let int = |name: &str| -> Result<Option<i64>> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| Error::Schema(format!("the events have no `{name}` column")))?;
        let value = arrow::compute::cast(array, &arrow::datatypes::DataType::Int64)
            .map_err(|e| Error::Schema(e.to_string()))?;
        let value = value.as_primitive::<arrow::datatypes::Int64Type>();
        Ok(value.is_valid(row).then(|| value.value(row)))
    };
    Ok(Position {
        origin: Origin {
            source: events.text("src", row)?.unwrap_or_default().into(),
            partition: int("src_partition")?.and_then(|p| i32::try_from(p).ok()),
            offset: int("src_offset")?,
        },
        line: int("src_line")?
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0),
        index: int("src_index")?
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0),
    })
}

fn string_column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b arrow::array::StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Schema(format!("no text column `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_separate_rules_values_and_nulls() {
        let key = |rule, v: Option<&str>| dedup_key(rule, &[("resource", v)]);
        assert_eq!(key("r1", Some("b")), key("r1", Some("b")));
        assert_ne!(key("r1", Some("b")), key("r2", Some("b")));
        assert_ne!(key("r1", Some("b")), key("r1", Some("c")));
        assert_ne!(key("r1", Some("")), key("r1", None));
        assert_eq!(key("r1", Some("b")).len(), 32);
    }

    #[test]
    fn alert_ids_ignore_event_order_and_separate_rules() {
        let a = alert_id("r1", &["e2".into(), "e1".into()]);
        let b = alert_id("r1", &["e1".into(), "e2".into()]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id("r2", &["e1".into(), "e2".into()]));
        // The separator keeps ("r1", "e1e2") apart from ("r1e1", "e2").
        assert_ne!(
            alert_id("r1", &["e1e2".into()]),
            alert_id("r1e1", &["e2".into()])
        );
    }
}
