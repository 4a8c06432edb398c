//! The dead-letter topic: each rejected message whole, so that it can be replayed once
//! fixed, with the first reason and where it came from in headers.
//!
//! - A message too large for the producer or the topic goes as a marked excerpt (its
//!   first bytes, as many as fit, then 64 KiB, then 1 KiB if the topic still refuses),
//!   with headers giving its original size and its source topic, partition and offset
//!   to fetch it whole from.
//! - Letters are produced as they come, at most [`WINDOW`] awaiting the broker; a full
//!   producer queue waits for the oldest instead of failing.
//! - A letter the topic refuses for another reason is sent again, up to [`ATTEMPTS`]
//!   times (librdkafka itself retries within `message.timeout.ms`, 30 s by default
//!   here); only then does the run stop, with the reason, and `/health` says it
//!   meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::{KafkaSettings, apply_settings};
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// Letters awaiting the broker's answer at once.
const WINDOW: usize = 1000;
/// Sends of one letter refused for a reason other than its size, before the run stops.
pub const ATTEMPTS: u32 = 3;
/// librdkafka's default `message.max.bytes`.
const PRODUCER_MAX_BYTES: usize = 1_000_000;
/// Room left for the record's framing and headers when a letter is cut to fit.
const FRAMING_BYTES: usize = 4096;

/// How much of a letter's payload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Whole,
    /// The first this many bytes.
    First(usize),
}

impl Cut {
    /// The next smaller cut after the topic refused this one as too large.
    fn smaller(self, payload: usize) -> Option<Self> {
        let now = match self {
            Self::Whole => payload,
            Self::First(n) => n,
        };
        [64 << 10, 1 << 10]
            .into_iter()
            .find(|&n| n < now)
            .map(Self::First)
    }
}

/// The dead-letter output of a Kafka run.
pub(crate) struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
    runtime: tokio::runtime::Runtime,
    /// The largest message the producer takes (`message.max.bytes`).
    max_bytes: usize,
    metrics: Arc<Metrics>,
    backoff: Duration,
}

impl KafkaDeadLetters {
    pub(crate) fn new(settings: &KafkaSettings, metrics: Arc<Metrics>) -> Result<Self> {
        let max_bytes = settings
            .properties
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(PRODUCER_MAX_BYTES);
        Ok(Self {
            producer: producer(settings)?,
            topic: settings.dead_letter_topic.clone(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(Error::Thread)?,
            max_bytes,
            metrics,
            backoff: Duration::from_secs(2),
        })
    }

    /// Checks that the topic exists and this client may see it.
    pub(crate) fn check_topic(&self, timeout: Duration) -> Result<()> {
        check_topics(
            self.producer.client(),
            std::slice::from_ref(&self.topic),
            "dead-letter topic",
            timeout,
        )
    }

    /// The record of `letter` cut as `cut`.
    fn record<'a>(&'a self, letter: &'a DeadLetter, cut: Cut) -> FutureRecord<'a, Vec<u8>, [u8]> {
        let payload = letter.payload.as_deref().unwrap_or_default();
        let mut headers = headers(letter);
        let body = match cut {
            Cut::Whole => payload,
            Cut::First(n) => {
                headers.extend([
                    ("demarc.truncated", "true".to_owned()),
                    ("demarc.original.bytes", payload.len().to_string()),
                    ("demarc.excerpt.bytes", n.min(payload.len()).to_string()),
                ]);
                &payload[..n.min(payload.len())]
            }
        };
        let mut owned = OwnedHeaders::new();
        for (name, value) in &headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(&self.topic).payload(body).headers(owned);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        record
    }

    /// The first cut of `letter`: whole if it fits the producer's limit.
    fn first_cut(&self, letter: &DeadLetter) -> Cut {
        let payload = letter.payload.as_ref().map_or(0, Vec::len);
        let key = letter.key.as_ref().map_or(0, Vec::len);
        let headers: usize = headers(letter).iter().map(|(k, v)| k.len() + v.len()).sum();
        let room = self
            .max_bytes
            .saturating_sub(key + headers + FRAMING_BYTES)
            .max(1024);
        if payload <= room {
            Cut::Whole
        } else {
            Cut::First(room)
        }
    }

    async fn produce(&self, letters: &[DeadLetter]) -> Result<u64> {
        // (letter, cut, attempt) to send, and those sent, oldest first.
        let mut queue: VecDeque<(usize, Cut, u32)> = letters
            .iter()
            .enumerate()
            .map(|(i, l)| (i, self.first_cut(l), 1))
            .collect();
        let mut sent: VecDeque<(usize, Cut, u32, DeliveryFuture)> = VecDeque::new();
        while !queue.is_empty() || !sent.is_empty() {
            if let Some((i, cut, attempt)) = queue.pop_front() {
                if sent.len() < WINDOW {
                    match self.producer.send_result(self.record(&letters[i], cut)) {
                        Ok(delivery) => {
                            sent.push_back((i, cut, attempt, delivery));
                            continue;
                        }
                        Err((e, _)) if code(&e) == Some(RDKafkaErrorCode::QueueFull) => {}
                        Err((e, _)) if too_large(&e) => {
                            let len = letters[i].payload.as_ref().map_or(0, Vec::len);
                            queue.push_front((i, self.shrink(cut, len, &e)?, attempt));
                            continue;
                        }
                        Err((source, _)) => return Err(self.failed(source)),
                    }
                }
                // The window or the producer's queue is full: wait for the oldest.
                queue.push_front((i, cut, attempt));
                if sent.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
            let Some((i, cut, attempt, delivery)) = sent.pop_front() else {
                continue;
            };
            let error = match delivery.await {
                Ok(Ok(_)) => continue,
                Ok(Err((error, _))) => error,
                Err(_) => return Err(Error::Stage("the dead-letter producer was dropped".into())),
            };
            let len = letters[i].payload.as_ref().map_or(0, Vec::len);
            if too_large(&error) {
                queue.push_back((i, self.shrink(cut, len, &error)?, attempt));
            } else if attempt < ATTEMPTS {
                self.metrics.dead_letter_retries.inc();
                let problem = format!(
                    "the dead-letter topic `{}` refused a message ({error}); sending it again \
                     (attempt {} of {ATTEMPTS})",
                    self.topic,
                    attempt + 1
                );
                tracing::warn!("{problem}");
                self.metrics.set_problem(Some(problem));
                tokio::time::sleep(self.backoff * attempt).await;
                queue.push_back((i, cut, attempt + 1));
            } else {
                return Err(self.failed(error));
            }
        }
        self.metrics.set_problem(None);
        Ok(letters.len() as u64)
    }

    /// The next cut of a letter the topic refused as too large, or the failure.
    fn shrink(&self, cut: Cut, payload: usize, error: &KafkaError) -> Result<Cut> {
        cut.smaller(payload)
            .ok_or_else(|| self.failed(error.clone()))
    }

    fn failed(&self, source: KafkaError) -> Error {
        let error = Error::DeadLetter {
            topic: self.topic.clone(),
            source,
        };
        self.metrics
            .set_problem(Some(demarc_model::error_chain(&error)));
        error
    }
}

impl DeadLetters for KafkaDeadLetters {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64> {
        let this = &*self;
        this.runtime.block_on(this.produce(letters))
    }
}

impl std::fmt::Debug for KafkaDeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDeadLetters")
            .field("topic", &self.topic)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    error.rdkafka_error_code()
}

fn too_large(error: &KafkaError) -> bool {
    matches!(
        code(error),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}

/// The dead-letter producer: every write acknowledged by all in-sync replicas,
/// idempotent, and a bounded time for librdkafka's own retries.
pub(crate) fn producer(settings: &KafkaSettings) -> Result<FutureProducer> {
    producer_config(settings).create().map_err(Error::kafka(
        "create the dead-letter producer (check [kafka.properties])",
    ))
}

pub fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut client = ClientConfig::new();
    // Defaults the user may override: a refused letter stops the run after about a
    // minute and a half, not five (librdkafka's default); and a missing dead-letter
    // topic is an error, not created with the broker's defaults.
    client
        .set("message.timeout.ms", "30000")
        .set("allow.auto.create.topics", "false");
    apply_settings(&mut client, settings);
    client.set("acks", "all").set("enable.idempotence", "true");
    client
}

/// The headers of a dead letter.
fn headers(letter: &DeadLetter) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if let Some(first) = letter.rejects.first() {
        headers.extend([
            ("demarc.reason", first.reason.as_str().to_owned()),
            ("demarc.detail", first.detail.clone()),
            ("demarc.rejects", letter.rejects.len().to_string()),
            ("demarc.line", first.position.line.to_string()),
            ("demarc.index", first.position.index.to_string()),
        ]);
    }
    if let Some(failure) = &letter.rule_failure {
        headers.extend([
            ("demarc.reason", "rule_failed".to_owned()),
            ("demarc.rule", failure.rule.clone()),
            ("demarc.detail", failure.error.clone()),
        ]);
    }
    if let Some(refused) = &letter.undelivered {
        headers.extend([
            ("demarc.reason", "alert_refused".to_owned()),
            ("demarc.sink", refused.sink.clone()),
            ("demarc.alert_id", refused.alert_id.clone()),
            ("demarc.detail", refused.response.clone()),
        ]);
        if let Some(status) = refused.status {
            headers.push(("demarc.status", status.to_string()));
        }
    }
    headers.push(("demarc.source.topic", letter.origin.source.to_string()));
    if let Some(p) = letter.origin.partition {
        headers.push(("demarc.source.partition", p.to_string()));
    }
    if let Some(o) = letter.origin.offset {
        headers.push(("demarc.source.offset", o.to_string()));
    }
    headers
}

/// Checks that each of `topics` exists and can be described by this client.
pub(crate) fn check_topics<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topics: &[String],
    what: &str,
    timeout: Duration,
) -> Result<()> {
    for topic in topics {
        let metadata = client
            .fetch_metadata(Some(topic), timeout)
            .map_err(Error::kafka(format!(
                "read the metadata of the {what} `{topic}` (are the brokers reachable?)"
            )))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let problem = match found {
            None => Some("is not in the brokers' metadata".to_owned()),
            Some(t) => match t.error() {
                Some(e) => Some(match RDKafkaErrorCode::from(e) {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                        "does not exist: create it".to_owned()
                    }
                    RDKafkaErrorCode::TopicAuthorizationFailed => {
                        "is not authorized for this client: grant it access".to_owned()
                    }
                    other => format!("is not usable: {other}"),
                }),
                None if t.partitions().is_empty() => Some("has no partitions".to_owned()),
                None => None,
            },
        };
        if let Some(problem) = problem {
            return Err(Error::Config(format!("the {what} `{topic}` {problem}")));
        }
    }
    Ok(())
}

/// Checks, with the brokers, what `demarc run` needs from them: the source topics
/// (when named, not patterns) and the dead-letter topic exist and are visible, and the
/// dead-letter producer can be built. A refusal (a wrong password) is said as such.
pub fn check_connection(settings: &KafkaSettings, timeout: Duration) -> Result<()> {
    let consumer: BaseConsumer<super::Refusals> = super::consumer_config(settings)
        .create_with_context(super::Refusals::default())
        .map_err(Error::kafka(
            "create the Kafka consumer (check [kafka.properties])",
        ))?;
    let checked = check_topics(
        consumer.client(),
        &super::named_topics(settings),
        "topic",
        timeout,
    );
    if let Err(error) = checked {
        return Err(super::refusal(&consumer).map_or(error, Error::Fatal));
    }
    let letters = KafkaDeadLetters::new(settings, Arc::new(Metrics::new()))?;
    letters.check_topic(timeout)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_get_smaller_until_one_kib() {
        assert_eq!(Cut::Whole.smaller(2 << 20), Some(Cut::First(64 << 10)));
        assert_eq!(
            Cut::First(900_000).smaller(2 << 20),
            Some(Cut::First(64 << 10))
        );
        assert_eq!(
            Cut::First(64 << 10).smaller(2 << 20),
            Some(Cut::First(1 << 10))
        );
        assert_eq!(Cut::First(1 << 10).smaller(2 << 20), None);
        // A small letter refused as too large is cut below its size.
        assert_eq!(Cut::Whole.smaller(10_000), Some(Cut::First(1 << 10)));
    }
}
