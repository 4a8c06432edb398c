//! The `demarc run` configuration file (TOML), documented field by field in
//! `docs/config.md`. Every problem is reported with the file, the line and what to
//! change, before anything connects.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use demarc_pipeline::kafka::KafkaSettings;
pub use routing::{RoutingPlan, duration};
pub use rules::DEFAULT_ALLOW_REFRESH_SECONDS;
use rules::RulesFile;
use serde::Deserialize;
pub use sinks::SinkKind;
use toml::Spanned;

/// librdkafka properties whose value is a secret: they must come from an environment
/// variable or a file, never from the configuration text.
const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    // librdkafka's alias of the one above.
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "ssl_key",
];

/// librdkafka properties that demarc sets itself, because the delivery contract
/// depends on them.
const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    kafka: Kafka,
    #[serde(default)]
    batch: Batch,
    #[serde(default)]
    dead_letter: DeadLetterFile,
    #[serde(default)]
    alerts: AlertsFile,
    lake: Option<lake::LakeFile>,
    #[serde(default)]
    metrics: MetricsFile,
    #[serde(default)]
    rules: RulesFile,
    #[serde(default)]
    normalize: NormalizeFile,
    spool: Option<routing::SpoolFile>,
    #[serde(default)]
    suppression: routing::SuppressionFile,
    #[serde(default)]
    sinks: BTreeMap<Spanned<String>, sinks::SinkFile>,
    #[serde(default)]
    routes: Vec<routing::RouteFile>,
    default_route: Option<routing::DefaultRouteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kafka {
    brokers: Spanned<String>,
    group_id: Spanned<String>,
    topics: Spanned<Vec<String>>,
    #[serde(default)]
    properties: BTreeMap<Spanned<String>, Spanned<Value>>,
}

/// A librdkafka property value: text, a number, a boolean, or a secret's location.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Integer(i64),
    Bool(bool),
    Env { env: String },
    File { file: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    #[serde(default = "default_max_records")]
    max_records: Spanned<u64>,
    #[serde(default = "default_max_wait_ms")]
    max_wait_ms: Spanned<u64>,
    #[serde(default = "default_max_bytes")]
    max_bytes: Spanned<u64>,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            max_records: default_max_records(),
            max_wait_ms: default_max_wait_ms(),
            max_bytes: default_max_bytes(),
        }
    }
}

/// A batch's messages, at most (16 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

fn default_max_bytes() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_MAX_BYTES)
}

fn default_max_records() -> Spanned<u64> {
    Spanned::new(0..0, 10_000)
}

fn default_max_wait_ms() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_MAX_WAIT_MS)
}

/// Batches go to a worker only when one is idle, so a short wait costs nothing under
/// load (batches grow while the workers are busy) and keeps alerts fast when quiet.
const DEFAULT_MAX_WAIT_MS: u64 = 25;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterFile {
    #[serde(default = "default_dead_letter_topic")]
    topic: Spanned<String>,
}

impl Default for DeadLetterFile {
    fn default() -> Self {
        Self {
            topic: default_dead_letter_topic(),
        }
    }
}

fn default_dead_letter_topic() -> Spanned<String> {
    Spanned::new(0..0, "demarc-dead-letter".to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    #[serde(default = "yes")]
    stdout: bool,
    file: Option<PathBuf>,
}

impl Default for AlertsFile {
    fn default() -> Self {
        Self {
            stdout: true,
            file: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    #[serde(default = "default_listen")]
    listen: Spanned<String>,
    #[serde(default = "default_stall_seconds")]
    stall_seconds: Spanned<u64>,
}

impl Default for MetricsFile {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            stall_seconds: default_stall_seconds(),
        }
    }
}

/// `/health` turns 503 after this long with work pending and nothing completed.
pub const DEFAULT_STALL_SECONDS: u64 = 120;

fn default_stall_seconds() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_STALL_SECONDS)
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9464".to_owned())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NormalizeFile {
    workers: Option<Spanned<usize>>,
    max_event_bytes: Option<Spanned<usize>>,
}

/// A checked configuration, secrets resolved. Its `Debug` shows no property value.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[kafka]`, `[batch]` and `[dead_letter]`: the Kafka source.
    pub kafka: KafkaSettings,
    /// The line of each `[kafka.properties]` entry, to name it in errors found later.
    pub property_lines: BTreeMap<String, usize>,
    pub alerts_stdout: bool,
    pub alerts_file: Option<PathBuf>,
    pub lake: Option<lake::LakeConfig>,
    /// `None`: no metrics endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Work pending this long with nothing completed makes `/health` answer 503.
    pub stall_limit: Duration,
    pub rules_dir: Option<PathBuf>,
    /// Allow tables filling or adding to the built-in ones.
    pub allow_dir: Option<PathBuf>,
    /// How often a running job looks for changed allow tables.
    pub allow_refresh: Duration,
    pub workers: usize,
    pub max_event_bytes: usize,
    /// `[sinks]`, `[[routes]]` and the rest: where alerts go beyond `[alerts]`.
    pub routing: Option<RoutingPlan>,
}

/// A problem in a configuration file, with where it is.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and checks `path`; secrets are read from where it says.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names it in errors and anchors
    /// relative paths of secret files.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| ConfigError {
            path: path.to_owned(),
            line: (span.end > 0).then(|| line_of(text, span.start)),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            // The message says what is wrong; the line shows where.
            let line = text
                .get(..span.start)
                .and_then(|before| text.lines().nth(before.matches('\n').count()))
                .map(str::trim)
                .filter(|l| !l.is_empty());
            let message = match line {
                Some(line) => format!("{} (in `{line}`)", e.message().trim_end()),
                None => e.message().trim_end().to_owned(),
            };
            at(span, message)
        })?;

        let brokers = file.kafka.brokers.get_ref().trim().to_owned();
        if brokers.is_empty() {
            return Err(at(
                file.kafka.brokers.span(),
                "kafka.brokers is empty: give `host:port[,host:port…]`".into(),
            ));
        }
        let group_id = file.kafka.group_id.get_ref().trim().to_owned();
        if group_id.is_empty() {
            return Err(at(
                file.kafka.group_id.span(),
                "kafka.group_id is empty: every demarc process of one deployment shares one group id".into(),
            ));
        }
        let topics = file.kafka.topics.get_ref().clone();
        if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
            return Err(at(
                file.kafka.topics.span(),
                "kafka.topics must list at least one topic, none empty".into(),
            ));
        }

        let mut properties = BTreeMap::new();
        let mut property_lines = BTreeMap::new();
        for (name, value) in &file.kafka.properties {
            let key = name.get_ref().as_str();
            if OWNED_PROPERTIES.contains(&key) {
                return Err(at(
                    name.span(),
                    format!(
                        "`{key}` is set by demarc (brokers and group_id are fields of [kafka]; \
                         offsets are committed by demarc after the alerts are durable): remove it"
                    ),
                ));
            }
            let secret = SECRET_PROPERTIES.contains(&key);
            let resolved = match value.get_ref() {
                Value::Text(_) | Value::Integer(_) | Value::Bool(_) if secret => {
                    return Err(at(
                        value.span(),
                        format!(
                            "`{key}` is a secret and must not be written in the configuration: \
                             use {{ env = \"VARIABLE\" }} or {{ file = \"/run/secrets/…\" }}"
                        ),
                    ));
                }
                Value::Text(s) => s.clone(),
                Value::Integer(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Env { env } => std::env::var(env).map_err(|_| {
                    at(
                        value.span(),
                        format!(
                            "`{key}` comes from the environment variable `{env}`, which is not set"
                        ),
                    )
                })?,
                Value::File { file: secret_file } => {
                    let full = path
                        .parent()
                        .map_or_else(|| secret_file.clone(), |dir| dir.join(secret_file));
                    let content = std::fs::read_to_string(&full).map_err(|e| {
                        at(
                            value.span(),
                            format!(
                                "`{key}` comes from `{}`, which cannot be read: {e}",
                                full.display()
                            ),
                        )
                    })?;
                    content.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            // librdkafka checks the name and the value now, so that the error names
            // this line; the value is not repeated (it may be a secret).
            let mut alone = rdkafka::ClientConfig::new();
            alone.set(key, &resolved);
            if let Err(error) = alone.create_native_config() {
                let why = match &error {
                    rdkafka::error::KafkaError::ClientConfig(_, description, _, _) => {
                        description.clone()
                    }
                    other => other.to_string(),
                };
                return Err(at(
                    name.span(),
                    format!(
                        "librdkafka refuses `{key}`: {why} (see librdkafka's CONFIGURATION.md)"
                    ),
                ));
            }
            property_lines.insert(key.to_owned(), line_of(text, name.span().start));
            properties.insert(key.to_owned(), resolved);
        }

        let batch_records = *file.batch.max_records.get_ref();
        if !(1..=1_000_000).contains(&batch_records) {
            return Err(at(
                file.batch.max_records.span(),
                "batch.max_records must be between 1 and 1000000 (default 10000)".into(),
            ));
        }
        let batch_wait_ms = *file.batch.max_wait_ms.get_ref();
        if !(1..=60_000).contains(&batch_wait_ms) {
            return Err(at(
                file.batch.max_wait_ms.span(),
                "batch.max_wait_ms must be between 1 and 60000 (default 25)".into(),
            ));
        }

        let batch_bytes = *file.batch.max_bytes.get_ref();
        if !((64 << 10)..=(256 << 20)).contains(&batch_bytes) {
            return Err(at(
                file.batch.max_bytes.span(),
                format!(
                    "batch.max_bytes must be between 65536 and 268435456 (default \
                     {DEFAULT_MAX_BYTES}); it bounds memory with the worker count"
                ),
            ));
        }

        let dead_letter_topic = file.dead_letter.topic.get_ref().trim().to_owned();
        if dead_letter_topic.is_empty() || topics.contains(&dead_letter_topic) {
            return Err(at(
                file.dead_letter.topic.span(),
                "dead_letter.topic must be a topic name other than the input topics".into(),
            ));
        }

        // A pattern that also matches the dead-letter topic would read demarc's own dead
        // letters back, and reject them again, for ever.
        for topic in topics.iter().filter(|t| t.starts_with('^')) {
            let pattern = regex::Regex::new(topic).map_err(|e| {
                at(
                    file.kafka.topics.span(),
                    format!("kafka.topics: `{topic}` is not a valid pattern: {e}"),
                )
            })?;
            if pattern.is_match(&dead_letter_topic) {
                return Err(at(
                    file.kafka.topics.span(),
                    format!(
                        "kafka.topics: the pattern `{topic}` also matches the dead-letter topic \
                         `{dead_letter_topic}`, whose messages demarc would read back: narrow \
                         the pattern or rename dead_letter.topic"
                    ),
                ));
            }
        }

        let routing = routing::Sections {
            spool: file.spool,
            suppression: file.suppression,
            sinks: file.sinks,
            routes: file.routes,
            default_route: file.default_route,
            alerts_stdout: file.alerts.stdout,
        }
        .plan(path.parent().unwrap_or(Path::new("")), &at)?;

        if !file.alerts.stdout && file.alerts.file.is_none() && routing.is_none() {
            return Err(ConfigError {
                path: path.to_owned(),
                line: None,
                message:
                    "[alerts] sends alerts nowhere: set `stdout = true`, `file = \"…\"` or [sinks]"
                        .into(),
            });
        }

        let lake = file.lake.map(|l| l.check(&at)).transpose()?;

        let listen = file.metrics.listen.get_ref().trim();
        let metrics_listen = if listen.is_empty() || listen == "off" {
            None
        } else {
            Some(listen.parse::<SocketAddr>().map_err(|_| {
                at(
                    file.metrics.listen.span(),
                    format!(
                        "metrics.listen `{listen}` is not an address: give `IP:PORT` such as \
                         `0.0.0.0:9464`, or `off`"
                    ),
                )
            })?)
        };

        let stall_seconds = *file.metrics.stall_seconds.get_ref();
        if !(5..=86_400).contains(&stall_seconds) {
            return Err(at(
                file.metrics.stall_seconds.span(),
                format!(
                    "metrics.stall_seconds must be between 5 and 86400 (default \
                     {DEFAULT_STALL_SECONDS})"
                ),
            ));
        }

        let allow_refresh = file
            .rules
            .allow_refresh()
            .map_err(|(span, message)| at(span, message))?;

        let workers = match &file.normalize.workers {
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
            Some(n) if (1..=256).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                return Err(at(
                    n.span(),
                    "normalize.workers must be between 1 and 256 (default: one per core)".into(),
                ));
            }
        };
        let default_event_bytes = demarc_normalize::Options::default().max_event_bytes;
        let max_event_bytes = match &file.normalize.max_event_bytes {
            None => default_event_bytes,
            Some(n) if *n.get_ref() >= 1024 => *n.get_ref(),
            Some(n) => {
                return Err(at(
                    n.span(),
                    format!(
                        "normalize.max_event_bytes must be at least 1024 (default {default_event_bytes})"
                    ),
                ));
            }
        };

        Ok(Self {
            kafka: KafkaSettings {
                brokers,
                group_id,
                topics,
                properties,
                batch_records: usize::try_from(batch_records).unwrap_or(usize::MAX),
                batch_bytes: usize::try_from(batch_bytes).unwrap_or(usize::MAX),
                batch_wait: Duration::from_millis(batch_wait_ms),
                dead_letter_topic,
            },
            property_lines,
            alerts_stdout: file.alerts.stdout,
            alerts_file: file.alerts.file,
            lake,
            metrics_listen,
            stall_limit: Duration::from_secs(stall_seconds),
            rules_dir: file.rules.dir,
            allow_dir: file.rules.allow,
            allow_refresh,
            workers,
            max_event_bytes,
            routing,
        })
    }

    /// A configuration for brokers that need no settings (the demo's mock cluster).
    pub fn plain(brokers: &str, group_id: &str, topics: Vec<String>) -> Self {
        Self {
            kafka: KafkaSettings {
                brokers: brokers.to_owned(),
                group_id: group_id.to_owned(),
                topics,
                properties: BTreeMap::new(),
                batch_records: 10_000,
                batch_bytes: DEFAULT_MAX_BYTES as usize,
                batch_wait: Duration::from_millis(DEFAULT_MAX_WAIT_MS),
                dead_letter_topic: "demarc-dead-letter".to_owned(),
            },
            property_lines: BTreeMap::new(),
            alerts_stdout: true,
            alerts_file: None,
            lake: None,
            metrics_listen: None,
            stall_limit: Duration::from_secs(DEFAULT_STALL_SECONDS),
            rules_dir: None,
            allow_dir: None,
            allow_refresh: Duration::from_secs(DEFAULT_ALLOW_REFRESH_SECONDS),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_event_bytes: demarc_normalize::Options::default().max_event_bytes,
            routing: None,
        }
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

mod lake;
mod routing;
mod rules;
mod sinks;
#[cfg(test)]
mod tests;
