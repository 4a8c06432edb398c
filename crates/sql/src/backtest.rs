//! A rule run over the lake's history before it is deployed: the alerts it would have
//! raised, with the same engine and the same ids as a backfill.
//!
//! The rule's SQL first runs over the whole `events` table (in parallel, pruned by
//! partitions and statistics) to find the events it matches; those events are then put
//! through the rule engine exactly as the streaming and backfill jobs do, which builds
//! the alerts (ids, dedup keys, summaries).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use demarc_detect::RuleSet;
use demarc_model::{Alert, event_schema};
use futures::StreamExt;

use crate::{EVENTS_TABLE, Error, Lake, Result};

/// The whole `events` table, under the view of the backtest's window.
const ALL_EVENTS: &str = "all_events";

/// What a rule would have raised.
#[derive(Debug, Default)]
pub struct Backtest {
    /// Without duplicates (a replayed event in the lake gives the same alert), in time
    /// order.
    pub alerts: Vec<Alert>,
    /// Matched events that were in the lake more than once.
    pub duplicates: u64,
}

/// Runs the one rule of `rules` over the events of the lake at `root` from `since`
/// (included) to `until` (excluded); `None`: no bound.
pub async fn backtest(
    place: impl Into<demarc_lake::Place>,
    rules: &RuleSet,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Backtest> {
    let [rule] = rules.rules() else {
        return Err(Error::Usage(format!(
            "a backtest runs one rule; {} were given",
            rules.rules().len()
        )));
    };
    let schema = event_schema();
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let literal = |t: DateTime<Utc>| {
        format!(
            "TIMESTAMP '{}'",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    };
    let bounds: Vec<String> = [
        since.map(|t| format!("time >= {}", literal(t))),
        until.map(|t| format!("time < {}", literal(t))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let window = if bounds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", bounds.join(" AND "))
    };
    // The rule reads `events`: here the lake's events since `since`, in the schema the
    // rule engine plans against.
    let lake = Lake::open(place)?;
    let ctx = lake.context();
    rules.allow().register(ctx).map_err(Error::Engine)?;
    if let Some(all) = ctx.deregister_table(EVENTS_TABLE).map_err(Error::Engine)? {
        ctx.register_table(ALL_EVENTS, all).map_err(Error::Engine)?;
    }
    let window = lake
        .plan(&format!(
            "SELECT {} FROM {ALL_EVENTS} {window}",
            columns.join(", ")
        ))
        .await?;
    ctx.register_table(EVENTS_TABLE, window.into_view())
        .map_err(Error::Engine)?;
    let rule_sql = rule.sql.trim().trim_end_matches(';');
    let sql = format!(
        "SELECT * FROM {EVENTS_TABLE} WHERE event_id IN (SELECT event_id FROM (\n{rule_sql}\n) AS matched)"
    );
    let mut stream = lake.stream(&sql).await?;
    let detected_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut seen = BTreeSet::new();
    let mut out = Backtest::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|error| Error::Query {
            sql: sql.clone(),
            error,
        })?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = arrow::array::RecordBatch::try_new(schema.clone(), batch.columns().to_vec())?;
        for alert in rules.alerts(batch, &detected_at).await? {
            if seen.insert(alert.alert_id.clone()) {
                out.alerts.push(alert);
            } else {
                out.duplicates += 1;
            }
        }
    }
    out.alerts
        .sort_by(|a, b| (&a.event_time, &a.alert_id).cmp(&(&b.event_time, &b.alert_id)));
    Ok(out)
}
