//! The header of an imported rule: the Sigma title, level and ATT&CK tags, a category
//! and layer from demarc's vocabulary, and the attribution the Detection Rule License
//! asks for.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use demarc_model::{Category, SrmLayer};
use rsigma_parser::{Level, SigmaRule};

use crate::Options;
use crate::expr::{Atom, Expr};
use crate::mapping::Source;

const DRL: &str =
    "Detection Rule License (DRL) 1.1, https://github.com/SigmaHQ/Detection-Rule-License";

fn severity(level: Option<Level>) -> &'static str {
    match level {
        Some(Level::Informational) => "info",
        Some(Level::Low) => "low",
        Some(Level::High) => "high",
        Some(Level::Critical) => "critical",
        Some(Level::Medium) | None => "medium",
    }
}

/// ATT&CK technique ids from `attack.t1078.004` tags.
fn techniques(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .filter(|t| {
            let (main, sub) = t.split_once('.').unwrap_or((t, ""));
            main.len() == 4
                && main.bytes().all(|b| b.is_ascii_digit())
                && (sub.is_empty() || (sub.len() == 3 && sub.bytes().all(|b| b.is_ascii_digit())))
        })
        .map(|t| format!("T{t}"))
        .collect()
}

/// The category, from words of the title first, then ATT&CK tactics; and why.
fn category(rule: &SigmaRule) -> (Category, String) {
    let title = rule.title.to_lowercase();
    let words: [(&[&str], Category); 7] = [
        (&["root"], Category::RootActivity),
        (
            &[
                "cloudtrail",
                "logging",
                "log ",
                "logs",
                "flow log",
                "guardduty",
                "sink",
                "trail",
                "config recorder",
                "security hub",
            ],
            Category::LoggingDisabled,
        ),
        (
            &["mfa", "password policy", "login profile"],
            Category::IdentityWeakened,
        ),
        (
            &[
                "access key",
                "secret",
                "credential",
                "token",
                "service account key",
            ],
            Category::CredentialExposure,
        ),
        (
            &["kms", "encrypt", "key version"],
            Category::EncryptionWeakened,
        ),
        (
            &[
                "firewall",
                "security group",
                "ingress",
                "network acl",
                "vpn",
            ],
            Category::NetworkExposure,
        ),
        (
            &["public", "shared", "sharing", "snapshot", "export"],
            Category::PublicExposure,
        ),
    ];
    for (keys, category) in words {
        if let Some(word) = keys.iter().find(|k| title.contains(*k)) {
            return (category, format!("the title's `{}`", word.trim()));
        }
    }
    let tactics: [(&str, Category); 8] = [
        ("attack.privilege-escalation", Category::PrivilegeEscalation),
        ("attack.persistence", Category::PrivilegeEscalation),
        ("attack.credential-access", Category::CredentialExposure),
        ("attack.exfiltration", Category::PublicExposure),
        ("attack.collection", Category::PublicExposure),
        ("attack.defense-impairment", Category::LoggingDisabled),
        ("attack.defense-evasion", Category::LoggingDisabled),
        ("attack.initial-access", Category::IdentityWeakened),
    ];
    for (tag, category) in tactics {
        if rule.tags.iter().any(|t| t == tag) {
            return (category, format!("the ATT&CK tactic `{}`", &tag[7..]));
        }
    }
    (
        Category::PrivilegeEscalation,
        "nothing in the rule (the default)".to_owned(),
    )
}

fn layer(category: Category) -> SrmLayer {
    match category {
        Category::PublicExposure => SrmLayer::Data,
        Category::LoggingDisabled => SrmLayer::Logging,
        Category::EncryptionWeakened => SrmLayer::Encryption,
        Category::NetworkExposure => SrmLayer::Network,
        Category::IdentityWeakened
        | Category::PrivilegeEscalation
        | Category::RootActivity
        | Category::CredentialExposure => SrmLayer::Identity,
    }
}

fn raw_fields(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::And(parts) | Expr::Or(parts) | Expr::AtLeast(_, parts) => {
            parts.iter().for_each(|p| raw_fields(p, out));
        }
        Expr::Not(part) => raw_fields(part, out),
        Expr::Atom(Atom { field, target, .. }) if target.raw => {
            out.insert(field.clone().unwrap_or_else(|| "keywords".to_owned()));
        }
        Expr::Atom(_) => {}
    }
}

/// A prose line of the header: `> ` keeps any colon in it from reading as a key.
fn prose(out: &mut String, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("-- >\n");
        } else {
            let _ = writeln!(out, "-- > {line}");
        }
    }
}

pub fn rule_file(
    file: &Path,
    id: &str,
    rule: &SigmaRule,
    source: Source,
    formula: &Expr,
    condition: &str,
    options: &Options,
) -> String {
    let (category, why) = match options.category {
        Some(c) => (c, "the import's --category".to_owned()),
        None => category(rule),
    };
    let attack = techniques(&rule.tags);
    let mut out = String::new();
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = writeln!(out, "-- id: {id}");
    let _ = writeln!(out, "-- title: {}", one_line(&rule.title));
    let _ = writeln!(out, "-- severity: {}", severity(rule.level));
    let _ = writeln!(out, "-- category: {category}");
    let _ = writeln!(out, "-- srm-layer: {}", layer(category));
    out.push_str("-- service-models: iaas, paas, saas\n");
    let _ = writeln!(
        out,
        "-- attack: {}",
        if attack.is_empty() {
            "none".to_owned()
        } else {
            attack.join(", ")
        }
    );
    out.push_str("-- dedup: account_id, actor_principal, operation\n");
    let _ = writeln!(
        out,
        "-- summary: {{actor_principal}} called {{operation}} of {{service}} in account {{account_id}} (Sigma rule: {})",
        one_line(&rule.title)
    );
    out.push_str("--\n");
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    prose(
        &mut out,
        &format!(
            "Imported by `demarc sigma import` from the Sigma rule {} (file {name}).",
            rule.id.as_deref().unwrap_or("without an id")
        ),
    );
    if let Some(author) = &rule.author {
        prose(&mut out, &format!("Author {}.", one_line(author)));
    }
    prose(
        &mut out,
        &format!("Licence {}.", rule.license.as_deref().unwrap_or(DRL)),
    );
    if let Some(date) = &rule.date {
        prose(
            &mut out,
            &format!(
                "Written {date}{}.",
                rule.modified
                    .as_ref()
                    .map(|m| format!(", modified {m}"))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(description) = &rule.description {
        prose(&mut out, description);
    }
    for reference in &rule.references {
        prose(&mut out, &format!("Reference {reference}"));
    }
    if !rule.falsepositives.is_empty() {
        prose(
            &mut out,
            &format!("False positives {}", rule.falsepositives.join("; ")),
        );
    }
    prose(
        &mut out,
        &format!("Category {category} inferred from {why}; review it before deploying."),
    );
    let mut raw = BTreeSet::new();
    raw_fields(formula, &mut raw);
    if !raw.is_empty() {
        prose(
            &mut out,
            &format!(
                "Reads the raw event (kept unless --no-raw or keep_raw = false) for {}.",
                raw.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let _ = write!(
        out,
        "SELECT event_id, time, account_id, region, actor_principal, operation, service, resource\n\
         FROM events\n\
         WHERE provider = '{}'\n  AND {condition}\n",
        source.provider()
    );
    out
}
