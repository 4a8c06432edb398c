//! GCP log routing: whether a change to a log sink or exclusion drops the audit logs,
//! judged on what the change modified.

use serde_json::Value;

use super::{items, update_mask};

/// Whether a Cloud Logging change stops audit logs from reaching a sink:
/// - `CreateSink` / `UpdateSink`: the sink disabled, its filter negating the audit
///   logs, or an enabled exclusion dropping them. An update changes only the fields
///   its `updateMask` names, or `destination`, `filter` and `includeChildren` when it
///   names none (the API's rule), so a sink whose untouched filter is shown in the
///   request does not count;
/// - `CreateExclusion` / `UpdateExclusion` (on the `_Default` sink of a project,
///   folder or organisation): an enabled exclusion dropping the audit logs.
///
/// `operation` names the call, else the request's `@type` does.
pub fn sink_excludes_audit(request: &Value, operation: Option<&str>) -> bool {
    let call = operation
        .or_else(|| request.get("@type").and_then(Value::as_str))
        .unwrap_or("");
    let creates = call.contains("Create");
    let mask = update_mask(request);
    let changed = |field: &str| {
        creates
            || if mask.is_empty() {
                [
                    "destination",
                    "filter",
                    "includechildren",
                    "include_children",
                ]
                .contains(&field)
            } else {
                mask.iter()
                    .any(|m| m == field || m.replace('_', "") == field)
            }
    };
    if let Some(exclusion) = request.get("exclusion") {
        return (creates || mask.is_empty() || changed("filter") || changed("disabled"))
            && exclusion_drops_audit(exclusion);
    }
    let Some(sink) = request.get("sink") else {
        return false;
    };
    if changed("disabled") && sink.get("disabled").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    let filter = sink.get("filter").and_then(Value::as_str).unwrap_or("");
    if changed("filter") && negates_audit(filter) {
        return true;
    }
    changed("exclusions")
        && sink
            .get("exclusions")
            .is_some_and(|exclusions| items(exclusions).into_iter().any(exclusion_drops_audit))
}

/// An enabled exclusion whose filter matches the audit logs: it names them without
/// negating them, or it matches every entry.
fn exclusion_drops_audit(exclusion: &Value) -> bool {
    let enabled = exclusion.get("disabled").and_then(Value::as_bool) != Some(true);
    let filter = exclusion
        .get("filter")
        .and_then(Value::as_str)
        .unwrap_or("");
    enabled && ((mentions_audit(filter) && !negates_audit(filter)) || matches_everything(filter))
}

fn mentions_audit(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("cloudaudit") || text.contains("google.cloud.audit.auditlog")
}

/// A filter that is only a severity floor audit logs pass (they are `NOTICE`, `INFO`
/// or, when a call fails, `ERROR`): `severity >= DEFAULT` matches every entry.
fn matches_everything(filter: &str) -> bool {
    let compact: String = filter
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.is_empty() {
        return false;
    }
    let Some(level) = compact
        .strip_prefix("SEVERITY>=")
        .or_else(|| compact.strip_prefix("SEVERITY>"))
    else {
        return false;
    };
    let inclusive = compact.starts_with("SEVERITY>=");
    let rank = |l: &str| {
        ["DEFAULT", "DEBUG", "INFO", "NOTICE"]
            .iter()
            .position(|x| *x == l)
    };
    match rank(level.trim_matches('"')) {
        Some(r) => inclusive || r < 2,
        None => false,
    }
}

/// A Logging-query token: a parenthesis or a term with its comparison.
#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Term(String),
}

/// Splits a Logging query into parentheses and terms; quoted text stays whole, and
/// spaces around a comparison (`logName : "…"`) do not split its term.
fn tokens(filter: &str) -> Vec<Token> {
    const COMPARISONS: [&str; 8] = [">=", "<=", "!=", "=~", "!~", ":", "=", "<"];
    let mut out = Vec::new();
    let mut term = String::new();
    let mut chars = filter.chars().peekable();
    let flush = |term: &mut String, out: &mut Vec<Token>| {
        if !term.is_empty() {
            out.push(Token::Term(std::mem::take(term)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                term.push(c);
                while let Some(q) = chars.next() {
                    term.push(q);
                    if q == '\\' {
                        if let Some(escaped) = chars.next() {
                            term.push(escaped);
                        }
                    } else if q == '"' {
                        break;
                    }
                }
            }
            // A function call (`LOG_ID("…")`, `sample(…)`) is one term.
            '(' if !term.is_empty() => {
                term.push(c);
                let mut depth = 1;
                let mut quoted = false;
                for inner in chars.by_ref() {
                    term.push(inner);
                    match inner {
                        '"' => quoted = !quoted,
                        '(' if !quoted => depth += 1,
                        ')' if !quoted => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '(' => {
                flush(&mut term, &mut out);
                out.push(Token::Open);
            }
            ')' => {
                flush(&mut term, &mut out);
                out.push(Token::Close);
            }
            c if c.is_whitespace() => {
                // A comparison after or before the space joins the two sides.
                let next: String = chars
                    .clone()
                    .skip_while(|c| c.is_whitespace())
                    .take(2)
                    .collect();
                let joins = COMPARISONS
                    .iter()
                    .chain(&[">"])
                    .any(|op| term.ends_with(op) || (!term.is_empty() && next.starts_with(op)));
                if !joins {
                    flush(&mut term, &mut out);
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            c => term.push(c),
        }
    }
    flush(&mut term, &mut out);
    out
}

/// Whether a Logging query negates a reference to the audit logs: a term or a
/// parenthesised group naming them under `NOT` or `-`, or a `!=` / `!~` comparison
/// with them.
pub(super) fn negates_audit(filter: &str) -> bool {
    let tokens = tokens(filter);
    let mut negated_next = false;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Term(t) if t.eq_ignore_ascii_case("NOT") || t == "-" => {
                negated_next = true;
                i += 1;
                continue;
            }
            Token::Term(t) => {
                let (negated, body) = match t.strip_prefix('-') {
                    Some(body) => (true, body),
                    None => (negated_next, t.as_str()),
                };
                if mentions_audit(body) && (negated || body.contains("!=") || body.contains("!~")) {
                    return true;
                }
            }
            Token::Open => {
                // The group up to its matching parenthesis.
                let mut depth = 0;
                let mut end = i;
                for (j, token) in tokens.iter().enumerate().skip(i) {
                    match token {
                        Token::Open => depth += 1,
                        Token::Close => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        Token::Term(_) => {}
                    }
                    end = j;
                }
                let mentions = tokens[i..=end]
                    .iter()
                    .any(|t| matches!(t, Token::Term(t) if mentions_audit(t)));
                if negated_next && mentions {
                    return true;
                }
            }
            Token::Close => {}
        }
        negated_next = false;
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negations_of_the_audit_logs_are_found_in_every_spelling() {
        let negated = [
            r#"NOT logName:"cloudaudit.googleapis.com""#,
            r#"-logName:"projects/p/logs/cloudaudit.googleapis.com%2Factivity""#,
            r#"logName != "projects/p/logs/cloudaudit.googleapis.com%2Factivity""#,
            r#"resource.type="gce_instance" AND NOT logName : "cloudaudit.googleapis.com""#,
            r#"NOT (logName:"cloudaudit.googleapis.com%2Factivity" OR logName:"cloudaudit.googleapis.com%2Fdata_access")"#,
            r#"-(logName:cloudaudit)"#,
            r#"NOT protoPayload."@type"="type.googleapis.com/google.cloud.audit.AuditLog""#,
            r#"NOT LOG_ID("cloudaudit.googleapis.com/activity")"#,
        ];
        for filter in negated {
            assert!(negates_audit(filter), "{filter}");
        }
        let kept = [
            r#"logName:"cloudaudit.googleapis.com""#,
            r#"NOT severity<ERROR AND logName:"cloudaudit.googleapis.com""#,
            r#"NOT (resource.type="gce_instance") AND logName:cloudaudit"#,
            r#"severity>=WARNING"#,
            "",
        ];
        for filter in kept {
            assert!(!negates_audit(filter), "{filter}");
        }
    }

    #[test]
    fn a_sink_change_counts_only_for_the_fields_it_modifies() {
        let update = |mask: Value, sink: Value| json!({"sinkName": "projects/p/sinks/siem", "sink": sink, "updateMask": mask});
        let negating = json!({"name": "siem", "filter": "NOT logName:cloudaudit"});
        let call = Some("google.logging.v2.ConfigServiceV2.UpdateSink");
        assert!(sink_excludes_audit(
            &update(json!("filter"), negating.clone()),
            call
        ));
        assert!(sink_excludes_audit(
            &update(json!({"paths": ["filter"]}), negating.clone()),
            call
        ));
        // An empty mask updates destination, filter and includeChildren.
        assert!(sink_excludes_audit(
            &update(json!(""), negating.clone()),
            call
        ));
        assert!(!sink_excludes_audit(
            &update(json!("description"), negating.clone()),
            call
        ));
        assert!(!sink_excludes_audit(
            &update(json!("destination"), negating),
            call
        ));

        let disabled = json!({"name": "siem", "disabled": true});
        assert!(sink_excludes_audit(
            &update(json!("disabled"), disabled.clone()),
            call
        ));
        assert!(!sink_excludes_audit(&update(json!(""), disabled), call));

        let excluding = |filter: &str, off: bool| json!({"name": "siem", "exclusions": [{"name": "x", "filter": filter, "disabled": off}]});
        for filter in [
            "severity >= DEFAULT",
            "logName:cloudaudit",
            "SEVERITY>=NOTICE",
        ] {
            assert!(
                sink_excludes_audit(&update(json!("exclusions"), excluding(filter, false)), call),
                "{filter}"
            );
        }
        assert!(!sink_excludes_audit(
            &update(json!("exclusions"), excluding("logName:cloudaudit", true)),
            call
        ));
        assert!(!sink_excludes_audit(
            &update(json!("exclusions"), excluding("severity>=ERROR", false)),
            call
        ));
        assert!(!sink_excludes_audit(
            &update(
                json!("exclusions"),
                excluding("NOT logName:cloudaudit", false)
            ),
            call
        ));
    }

    #[test]
    fn exclusions_on_the_default_sink_count_when_they_drop_audit_logs() {
        let create = Some("google.logging.v2.ConfigServiceV2.CreateExclusion");
        let exclusion = |filter: &str| json!({"parent": "projects/p", "exclusion": {"name": "x", "filter": filter}});
        assert!(sink_excludes_audit(
            &exclusion(r#"logName : "cloudaudit.googleapis.com""#),
            create
        ));
        assert!(!sink_excludes_audit(
            &exclusion(r#"resource.type="gce_instance" AND severity<WARNING"#),
            create
        ));
        let update = json!({"name": "projects/p/exclusions/x", "updateMask": "description",
                            "exclusion": {"name": "x", "filter": "logName:cloudaudit"}});
        assert!(!sink_excludes_audit(
            &update,
            Some("google.logging.v2.ConfigServiceV2.UpdateExclusion")
        ));
    }
}
