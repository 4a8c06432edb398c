//! The Kafka topic alert sink: each notice as one record keyed by the alert's dedup
//! key, through an idempotent producer whose writes all in-sync replicas acknowledge.
//! A record is confirmed once the broker acknowledged it; one the broker refuses is
//! retried by the delivery thread, in order.

use std::time::Duration;

use demarc_sink::deliver::{Outcome, Transport};
use demarc_sink::notice::BodyFormat;
use demarc_sink::store::Spooled;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::KafkaSettings;
use super::dead_letters::{check_topics, producer_config};
use crate::{Error, Result};

/// Notices sent to the broker at once.
const BATCH: usize = 200;

/// A Kafka topic of alerts.
pub struct AlertTopic {
    producer: FutureProducer,
    topic: String,
    format: BodyFormat,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for AlertTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertTopic")
            .field("topic", &self.topic)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl AlertTopic {
    /// A producer to `topic` with the run's Kafka settings (brokers, security).
    pub fn new(settings: &KafkaSettings, topic: &str, format: BodyFormat) -> Result<Self> {
        let producer: FutureProducer = producer_config(settings).create().map_err(Error::kafka(
            "create the alert topic producer (check [kafka.properties])",
        ))?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            format,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(Error::Thread)?,
        })
    }

    /// Checks that the topic exists and this client may see it.
    pub fn check_topic(&self, timeout: Duration) -> Result<()> {
        check_topics(
            self.producer.client(),
            std::slice::from_ref(&self.topic),
            "alert topic",
            timeout,
        )
    }

    async fn produce(&self, notices: &[Spooled]) -> Vec<Outcome> {
        let mut pending = Vec::with_capacity(notices.len());
        for spooled in notices {
            let notice = &spooled.notice;
            let body = self.format.render(notice);
            let id = notice.message_id();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "demarc.alert_id",
                    value: Some(id.as_str()),
                })
                .insert(Header {
                    key: "demarc.rule",
                    value: Some(notice.alert.rule_id.as_str()),
                });
            let record = FutureRecord::to(&self.topic)
                .key(notice.alert.dedup_key.as_str())
                .payload(&body)
                .headers(headers);
            match self.producer.send_result(record) {
                Ok(future) => pending.push(Pending::Sent(future)),
                Err((error, _)) => {
                    // The queue is full or the record is refused locally: what was sent
                    // is awaited, and this one retried.
                    pending.push(Pending::Failed(error));
                    break;
                }
            }
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for sent in pending {
            let outcome = match sent {
                Pending::Sent(future) => match future.await {
                    Ok(Ok(_)) => Outcome::Delivered,
                    Ok(Err((error, _))) => Outcome::Retry {
                        reason: format!("topic `{}`: {error}", self.topic),
                        after: None,
                    },
                    Err(_) => Outcome::Retry {
                        reason: format!("topic `{}`: the producer dropped the record", self.topic),
                        after: None,
                    },
                },
                Pending::Failed(error) => Outcome::Retry {
                    reason: format!("topic `{}`: {error}", self.topic),
                    after: None,
                },
            };
            let retry = matches!(outcome, Outcome::Retry { .. });
            outcomes.push(outcome);
            if retry {
                break;
            }
        }
        outcomes
    }
}

enum Pending {
    Sent(rdkafka::producer::DeliveryFuture),
    Failed(rdkafka::error::KafkaError),
}

impl Transport for AlertTopic {
    fn batch(&self) -> usize {
        BATCH
    }

    fn send(&mut self, notices: &[Spooled]) -> Vec<Outcome> {
        let this = &*self;
        this.runtime.block_on(this.produce(notices))
    }
}
