//! `[sinks.NAME]`: each sink's type and settings, secrets read from where they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpTarget, webhook_key};
use demarc_sink::notice::BodyFormat;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::routing::At;

/// A value written in the file, or a secret's location.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Secret {
    Text(String),
    Env { env: String },
    File { file: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkFile {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    url: Option<Spanned<Secret>>,
    format: Option<Spanned<String>>,
    secret: Option<Spanned<Secret>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout_seconds: Option<Spanned<u64>>,
    link: Option<String>,
    routing_key: Option<Spanned<Secret>>,
    topic: Option<Spanned<String>>,
    path: Option<PathBuf>,
    max_bytes: Option<Spanned<u64>>,
    keep: Option<Spanned<u32>>,
    retry_max_seconds: Option<Spanned<u64>>,
}

/// How a sink delivers.
#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook {
        target: HttpTarget,
        format: BodyFormat,
        secret: Option<Vec<u8>>,
    },
    Slack {
        target: HttpTarget,
        link: Option<String>,
    },
    PagerDuty {
        target: HttpTarget,
        routing_key: String,
        link: Option<String>,
    },
    Kafka {
        topic: String,
        format: BodyFormat,
    },
    File {
        path: PathBuf,
        format: BodyFormat,
        max_bytes: u64,
        keep: u32,
    },
    Stdout {
        format: BodyFormat,
    },
}

/// One configured sink.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub name: String,
    pub kind: SinkKind,
    pub backoff: Backoff,
}

fn resolve(
    secret: &Spanned<Secret>,
    what: &str,
    base: &Path,
    at: At<'_>,
) -> Result<String, ConfigError> {
    match secret.get_ref() {
        Secret::Text(text) => Ok(text.clone()),
        Secret::Env { env } => std::env::var(env).map_err(|_| {
            at(
                secret.span(),
                format!("{what} comes from the environment variable `{env}`, which is not set"),
            )
        }),
        Secret::File { file } => {
            let full = base.join(file);
            std::fs::read_to_string(&full)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| {
                    at(
                        secret.span(),
                        format!(
                            "{what} comes from `{}`, which cannot be read: {e}",
                            full.display()
                        ),
                    )
                })
        }
    }
}

fn secret_only(
    secret: &Spanned<Secret>,
    what: &str,
    base: &Path,
    at: At<'_>,
) -> Result<String, ConfigError> {
    if let Secret::Text(_) = secret.get_ref() {
        return Err(at(
            secret.span(),
            format!(
                "{what} is a secret and must not be written in the configuration: use \
                 {{ env = \"VARIABLE\" }} or {{ file = \"/run/secrets/…\" }}"
            ),
        ));
    }
    resolve(secret, what, base, at)
}

pub(super) fn sink_plan(
    name: &Spanned<String>,
    sink: &SinkFile,
    base: &Path,
    at: At<'_>,
) -> Result<SinkPlan, ConfigError> {
    let label = format!("sinks.{}", name.get_ref());
    if name.get_ref().is_empty()
        || !name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(at(
            name.span(),
            format!(
                "sink name `{}`: use letters, digits, `-` and `_`",
                name.get_ref()
            ),
        ));
    }
    let kind = sink.kind.get_ref().as_str();
    let format = match &sink.format {
        None => BodyFormat::Demarc,
        Some(f) => match f.get_ref().as_str() {
            "demarc" => BodyFormat::Demarc,
            "ocsf" => BodyFormat::Ocsf,
            other => {
                return Err(at(
                    f.span(),
                    format!("{label}.format: `{other}` is not a format; expected demarc or ocsf"),
                ));
            }
        },
    };
    if sink.format.is_some() && matches!(kind, "slack" | "pagerduty") {
        return Err(at(
            sink.kind.span(),
            format!("{label}: a {kind} sink has its own format; remove `format`"),
        ));
    }
    let timeout = match &sink.timeout_seconds {
        None => Duration::from_secs(10),
        Some(t) if (1..=300).contains(t.get_ref()) => Duration::from_secs(*t.get_ref()),
        Some(t) => {
            return Err(at(
                t.span(),
                format!("{label}.timeout_seconds must be between 1 and 300 (default 10)"),
            ));
        }
    };
    let backoff = match &sink.retry_max_seconds {
        None => Backoff::default(),
        Some(t) if (1..=3600).contains(t.get_ref()) => Backoff {
            cap: Duration::from_secs(*t.get_ref()),
            ..Backoff::default()
        },
        Some(t) => {
            return Err(at(
                t.span(),
                format!("{label}.retry_max_seconds must be between 1 and 3600 (default 60)"),
            ));
        }
    };
    let url = |default: Option<&str>, secret: bool| -> Result<String, ConfigError> {
        match (&sink.url, default) {
            (Some(u), _) if secret => secret_only(u, &format!("{label}.url"), base, at),
            (Some(u), _) => resolve(u, &format!("{label}.url"), base, at),
            (None, Some(d)) => Ok(d.to_owned()),
            (None, None) => Err(at(
                sink.kind.span(),
                format!("{label}: a {kind} sink needs `url`"),
            )),
        }
    };
    let target = |url: String| -> Result<HttpTarget, ConfigError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            let span = sink.url.as_ref().map_or(sink.kind.span(), Spanned::span);
            return Err(at(
                span,
                format!("{label}.url must start with https:// or http://"),
            ));
        }
        Ok(HttpTarget {
            url,
            timeout,
            headers: sink.headers.clone().into_iter().collect(),
        })
    };
    let kind = match kind {
        "webhook" => SinkKind::Webhook {
            target: target(url(None, false)?)?,
            format,
            secret: match &sink.secret {
                None => None,
                Some(s) => {
                    let text = secret_only(s, &format!("{label}.secret"), base, at)?;
                    Some(
                        webhook_key(&text)
                            .map_err(|e| at(s.span(), format!("{label}.secret: {e}")))?,
                    )
                }
            },
        },
        // A Slack incoming-webhook URL is itself the credential.
        "slack" => SinkKind::Slack {
            target: target(url(None, true)?)?,
            link: sink.link.clone(),
        },
        "pagerduty" => SinkKind::PagerDuty {
            target: target(url(Some("https://events.pagerduty.com/v2/enqueue"), false)?)?,
            routing_key: match &sink.routing_key {
                Some(k) => secret_only(k, &format!("{label}.routing_key"), base, at)?,
                None => {
                    return Err(at(
                        sink.kind.span(),
                        format!(
                            "{label}: a pagerduty sink needs `routing_key = {{ env = \"…\" }}`"
                        ),
                    ));
                }
            },
            link: sink.link.clone(),
        },
        "kafka" => match &sink.topic {
            Some(t) if !t.get_ref().trim().is_empty() => SinkKind::Kafka {
                topic: t.get_ref().trim().to_owned(),
                format,
            },
            _ => {
                return Err(at(
                    sink.kind.span(),
                    format!("{label}: a kafka sink needs `topic`"),
                ));
            }
        },
        "file" => SinkKind::File {
            path: match &sink.path {
                Some(p) => base.join(p),
                None => {
                    return Err(at(
                        sink.kind.span(),
                        format!("{label}: a file sink needs `path`"),
                    ));
                }
            },
            format,
            max_bytes: match &sink.max_bytes {
                None => 100 << 20,
                Some(b) if *b.get_ref() >= 4096 => *b.get_ref(),
                Some(b) => {
                    return Err(at(
                        b.span(),
                        format!("{label}.max_bytes must be at least 4096 (default 104857600)"),
                    ));
                }
            },
            keep: match &sink.keep {
                None => 5,
                Some(k) if (1..=1000).contains(k.get_ref()) => *k.get_ref(),
                Some(k) => {
                    return Err(at(
                        k.span(),
                        format!("{label}.keep must be between 1 and 1000 (default 5)"),
                    ));
                }
            },
        },
        "stdout" => SinkKind::Stdout { format },
        other => {
            return Err(at(
                sink.kind.span(),
                format!(
                    "{label}.type: `{other}` is not a sink type; expected webhook, slack, pagerduty, kafka, file or stdout"
                ),
            ));
        }
    };
    Ok(SinkPlan {
        name: name.get_ref().clone(),
        kind,
        backoff,
    })
}
