//! What a sink receives: an alert, or the follow-up that closes its suppression window,
//! perhaps marked as snoozed; and the bodies each kind of sink sends for it (the demarc
//! alert, an OCSF Detection Finding, a Slack message, a PagerDuty event).

use demarc_model::{Alert, Severity};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The OCSF version the Detection Finding form follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// Whether a notice opens a suppression window or reports how it closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The first alert of its dedup key in a window (or with no window).
    New,
    /// The window closed with repeats: `count` alerts in all, the first included.
    Update,
}

/// The snooze an alert fell under: it goes to file sinks only, marked with this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnoozeMark {
    pub id: i64,
    pub reason: String,
    pub by: String,
    /// RFC 3339 time the snooze ends.
    pub until: String,
}

/// An alert on its way to one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    #[serde(flatten)]
    pub alert: Alert,
    pub notice: Kind,
    /// Alerts of the dedup key in the window, the first included (updates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// RFC 3339 time of the last repeat in the window (updates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed: Option<SnoozeMark>,
}

impl Notice {
    pub fn new(alert: Alert) -> Self {
        Self {
            alert,
            notice: Kind::New,
            count: None,
            last_seen: None,
            snoozed: None,
        }
    }

    /// The message id receivers deduplicate on: the alert id, and for the follow-up of
    /// a window the alert id with `.update` (a second message about the same alert).
    pub fn message_id(&self) -> String {
        match self.notice {
            Kind::New => self.alert.alert_id.clone(),
            Kind::Update => format!("{}.update", self.alert.alert_id),
        }
    }

    /// One line for people: the summary, with the repeat count of an update.
    pub fn headline(&self) -> String {
        match (self.notice, self.count) {
            (Kind::Update, Some(n)) => format!(
                "{} ({n} alerts of this kind in the suppression window)",
                self.alert.summary
            ),
            _ => self.alert.summary.clone(),
        }
    }
}

/// The body a sink sends for its notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// The demarc alert contract (`docs/alert.schema.json`) plus the notice fields.
    #[default]
    Demarc,
    /// An OCSF Detection Finding (class 2004).
    Ocsf,
}

impl BodyFormat {
    pub fn render(self, notice: &Notice) -> Vec<u8> {
        let value = match self {
            Self::Demarc => serde_json::to_value(notice),
            Self::Ocsf => Ok(ocsf(notice)),
        };
        // A Value or an Alert always serializes: its keys are strings.
        serde_json::to_vec(&value.unwrap_or(Value::Null)).unwrap_or_default()
    }
}

fn epoch_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The notice as an OCSF Detection Finding (class 2004, category Findings): activity
/// Create for a new alert, Update with `count` for the follow-up of a window.
pub fn ocsf(notice: &Notice) -> Value {
    let alert = &notice.alert;
    let activity_id = match notice.notice {
        Kind::New => 1,
        Kind::Update => 2,
    };
    let severity_id = match alert.severity {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    };
    let detected = epoch_ms(&alert.detected_at).unwrap_or(0);
    let event_time = epoch_ms(&alert.event_time);
    let mut finding = json!({
        "uid": alert.alert_id,
        "title": alert.title,
        "desc": alert.summary,
        "created_time": detected,
        "types": [alert.category.as_str()],
        "analytic": {"uid": alert.rule_id, "name": alert.rule_id, "type_id": 1, "type": "Rule"},
    });
    if let Some(map) = finding.as_object_mut() {
        if let Some(t) = event_time {
            map.insert("first_seen_time".into(), t.into());
        }
        if let Some(t) = notice.last_seen.as_deref().and_then(epoch_ms) {
            map.insert("last_seen_time".into(), t.into());
        }
        if !alert.attack.is_empty() {
            let attacks: Vec<Value> = alert
                .attack
                .iter()
                .map(|t| json!({"technique": {"uid": t}}))
                .collect();
            map.insert("attacks".into(), attacks.into());
        }
    }
    // Resource details need a uid or a name: only an alert with a resource has one.
    let resources: Vec<Value> = alert
        .resource
        .iter()
        .map(|r| {
            let mut resource = json!({"type": "cloud resource", "uid": r, "name": r});
            if let Some(account) = &alert.account_id {
                resource["owner"] = json!({"account": {"uid": account}});
            }
            resource
        })
        .collect();
    let (status_id, status) = match (&notice.snoozed, notice.notice) {
        (Some(_), _) => (3, "Suppressed"),
        (None, _) => (1, "New"),
    };
    let mut finding_event = json!({
        "activity_id": activity_id,
        "activity_name": if activity_id == 1 { "Create" } else { "Update" },
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 2004 * 100 + activity_id,
        "severity_id": severity_id,
        "severity": alert.severity.as_str(),
        "status_id": status_id,
        "status": status,
        "time": detected,
        "message": notice.headline(),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": notice.message_id(),
            "correlation_uid": alert.dedup_key,
            "product": {"name": "demarc", "vendor_name": "demarc", "version": env!("CARGO_PKG_VERSION")},
            "log_provider": alert.provider,
        },
        "finding_info": finding,
        "unmapped": {
            "srm_layer": alert.srm_layer.as_str(),
            "provider": alert.provider,
            "region": alert.region,
            "event_ids": alert.event_ids,
            "dedup": alert.dedup,
        },
    });
    if let Some(map) = finding_event.as_object_mut() {
        if let Some(n) = notice.count {
            map.insert("count".into(), n.into());
        }
        if !resources.is_empty() {
            map.insert("resources".into(), resources.into());
        }
        // The actor of the triggering event, as evidence (a top-level actor needs a
        // profile).
        if let Some(actor) = &alert.actor {
            map.insert(
                "evidences".into(),
                json!([{"actor": {"user": {"name": actor, "uid": actor}}}]),
            );
        }
        if let Some(account) = &alert.account_id
            && let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("tenant_uid".into(), account.clone().into());
        }
        if let Some(mark) = &notice.snoozed {
            map.insert(
                "status_detail".into(),
                format!(
                    "snoozed by {} until {} (snooze {}): {}",
                    mark.by, mark.until, mark.id, mark.reason
                )
                .into(),
            );
        }
    }
    finding_event
}

/// Fills `{field}` placeholders of a link template with the alert's values
/// (`alert_id`, `rule_id`, `dedup_key`, `account_id`, `region`, `provider`), each
/// percent-encoded for a URL.
pub fn fill_link(template: &str, alert: &Alert) -> String {
    let values = [
        ("alert_id", Some(alert.alert_id.as_str())),
        ("rule_id", Some(alert.rule_id.as_str())),
        ("dedup_key", Some(alert.dedup_key.as_str())),
        ("account_id", alert.account_id.as_deref()),
        ("region", alert.region.as_deref()),
        ("provider", Some(alert.provider.as_str())),
    ];
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &percent_encode(value.unwrap_or("")));
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Slack's mrkdwn escapes: `&`, `<` and `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: a fallback text and blocks with the severity,
/// title, summary, actor, resource, account, and a link when a template is set.
pub fn slack(notice: &Notice, link: Option<&str>) -> Value {
    let alert = &notice.alert;
    let marker = match alert.severity {
        Severity::Critical => ":red_circle:",
        Severity::High => ":large_orange_circle:",
        Severity::Medium => ":large_yellow_circle:",
        Severity::Low | Severity::Info => ":white_circle:",
    };
    let mut heading = format!(
        "{marker} *{}* {}",
        alert.severity.as_str().to_uppercase(),
        slack_escape(&alert.title)
    );
    if notice.notice == Kind::Update {
        heading.push_str(" (update)");
    }
    let field = |name: &str, value: Option<&str>| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(value.unwrap_or("-")))});
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": heading}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&notice.headline())}}),
        json!({"type": "section", "fields": [
            field("Actor", alert.actor.as_deref()),
            field("Resource", alert.resource.as_deref()),
            field("Account", alert.account_id.as_deref()),
            field("Rule", Some(&alert.rule_id)),
        ]}),
    ];
    let mut context = format!(
        "{} · {} · {} · alert {}",
        alert.provider,
        alert.category.as_str(),
        alert.event_time,
        alert.alert_id
    );
    if let Some(link) = link {
        context.push_str(&format!(" · <{}|open>", fill_link(link, alert)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({
        "text": format!("[{}] {}: {}", alert.severity.as_str(), alert.title, notice.headline()),
        "blocks": blocks,
    })
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A PagerDuty Events API v2 `trigger`: `dedup_key` is the alert's suppression key, so
/// that repeats and the follow-up of a window land on one incident; the summary is cut
/// to PagerDuty's 1,024 characters.
pub fn pagerduty(notice: &Notice, routing_key: &str, link: Option<&str>) -> Value {
    let alert = &notice.alert;
    let severity = match alert.severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    };
    let summary = cut(
        &format!(
            "[{}] {}: {}",
            alert.severity,
            alert.title,
            notice.headline()
        ),
        1024,
    );
    let source = alert
        .account_id
        .clone()
        .unwrap_or_else(|| alert.provider.clone());
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": cut(&alert.dedup_key, 255),
        "payload": {
            "summary": summary,
            "source": cut(&source, 255),
            "severity": severity,
            "timestamp": alert.event_time,
            "group": alert.srm_layer.as_str(),
            "class": alert.category.as_str(),
            "custom_details": notice,
        },
    });
    if let Some(resource) = &alert.resource
        && let Some(payload) = event.get_mut("payload").and_then(Value::as_object_mut)
    {
        payload.insert("component".into(), cut(resource, 255).into());
    }
    if let Some(link) = link
        && let Some(map) = event.as_object_mut()
    {
        map.insert(
            "links".into(),
            json!([{"href": fill_link(link, alert), "text": "Open in demarc"}]),
        );
    }
    event
}
