//! Errors that retrying does not mend (a wrong password, a fenced member, a topic
//! gone): kept by the client's context, so that the run stops and says why.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// Why the brokers refuse `consumer`, if they do: its error events are served by a
/// poll (before a subscription, a poll reads no message).
pub(crate) fn refusal<C: ConsumerContext + HasRefusals>(
    consumer: &BaseConsumer<C>,
) -> Option<String> {
    for _ in 0..10 {
        if let Some(problem) = consumer.context().refusals().first() {
            return Some(problem);
        }
        let _ = consumer.poll(Duration::from_millis(10));
    }
    consumer.context().refusals().first()
}

/// A context that keeps the fatal errors of its client.
pub(crate) trait HasRefusals {
    fn refusals(&self) -> &Refusals;
}

impl HasRefusals for Refusals {
    fn refusals(&self) -> &Refusals {
        self
    }
}

/// The first error of a client that retrying does not mend, kept to be said.
#[derive(Debug, Default)]
pub(crate) struct Refusals(Mutex<Option<String>>);

impl Refusals {
    pub(crate) fn first(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.clone())
    }

    /// Keeps `error` if it is fatal; whether it was.
    fn note(&self, error: &rdkafka::error::KafkaError, reason: &str) -> bool {
        if !is_fatal(error) {
            return false;
        }
        tracing::error!(%error, reason, "Kafka client error that retrying does not mend");
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert_with(|| format!("Kafka refused this client: {reason} ({error})"));
        }
        true
    }
}

impl ClientContext for Refusals {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !self.note(&error, reason) {
            tracing::warn!(%error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for Refusals {}

/// Errors that retrying does not mend: the process must stop and say why, not look
/// healthy while consuming nothing.
pub(super) fn is_fatal(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::Fatal
                | Code::Authentication
                | Code::SaslAuthenticationFailed
                | Code::TopicAuthorizationFailed
                | Code::GroupAuthorizationFailed
                | Code::ClusterAuthorizationFailed
                | Code::FencedInstanceId
                | Code::UnknownTopicOrPartition
                | Code::UnknownTopic
        )
    )
}
