//! The consumer's context: the open batch and its hand-over to the workers, lag from
//! the statistics, and the rebalance protocol (commit before a revoke; rebuild the
//! windowed rules' windows after an assignment).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;

use super::Offsets;
use super::refusals::{HasRefusals, Refusals};
use super::rewind::Rewind;
use crate::engine::{Batch, Dispatcher, Offer};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// The consumer's context: lag from the statistics, and the revoke protocol.
pub(super) struct Context {
    pub(super) metrics: Arc<Metrics>,
    pub(super) shared: Arc<crate::Shared>,
    pub(super) batcher: Mutex<Batcher>,
    /// When each background commit still unanswered was sent, oldest first.
    pub(super) commits_sent: Mutex<VecDeque<Instant>>,
    /// An error no retry mends (authentication, authorization, a fenced member): the
    /// run stops with it.
    pub(super) refusals: Refusals,
    /// With windowed rules: what their windows hold, and how to read again what they
    /// lack when partitions are assigned.
    pub(super) rewind: Option<Rewind>,
}

impl HasRefusals for Context {
    fn refusals(&self) -> &Refusals {
        &self.refusals
    }
}

pub(super) struct Batcher {
    pub(super) batch: Batch<Offsets>,
    pub(super) dispatcher: Option<Dispatcher<Offsets>>,
}

/// What became of the open batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Handed {
    /// Taken (or there was nothing to hand over).
    Taken,
    /// Every worker is busy: the batch stays open and keeps growing.
    Busy,
    /// The workers are gone: the pipeline is failing.
    Gone,
}

impl Context {
    pub(super) fn lock_batcher(&self) -> Result<std::sync::MutexGuard<'_, Batcher>> {
        self.batcher
            .lock()
            .map_err(|_| Error::Stage("a pipeline thread panicked".into()))
    }

    /// Hands the open batch to a worker. With `wait`, blocks until one takes it;
    /// without, hands it over only if a worker is idle.
    pub(super) fn dispatch(&self, wait: bool) -> Handed {
        let Ok(mut b) = self.batcher.lock() else {
            return Handed::Gone;
        };
        if b.batch.is_empty() {
            return Handed::Taken;
        }
        if b.dispatcher.is_none() {
            return Handed::Gone;
        }
        let batch = std::mem::take(&mut b.batch);
        if wait {
            drop(b);
            return if self.send(batch) {
                Handed::Taken
            } else {
                Handed::Gone
            };
        }
        let Some(dispatcher) = b.dispatcher.as_mut() else {
            return Handed::Gone;
        };
        let position = self.rewind.as_ref().map(|_| batch.position.clone());
        match dispatcher.offer(batch) {
            Offer::Taken => {
                if let (Some(rewind), Some(position)) = (&self.rewind, position) {
                    rewind.handed_over(&position);
                }
                Handed::Taken
            }
            Offer::Busy(batch) => {
                b.batch = batch;
                Handed::Busy
            }
            Offer::Gone => Handed::Gone,
        }
    }
}

impl Context {
    /// Hands `batch` to a worker, waiting for one; false if the workers are gone. Not
    /// blocked under the lock: the dispatcher is taken out while a worker is awaited,
    /// and put back after.
    fn send(&self, batch: Batch<Offsets>) -> bool {
        let Some(mut dispatcher) = self
            .batcher
            .lock()
            .ok()
            .and_then(|mut b| b.dispatcher.take())
        else {
            return false;
        };
        if let Some(rewind) = &self.rewind {
            rewind.handed_over(&batch.position);
        }
        let taken = dispatcher.send(batch);
        if let Ok(mut b) = self.batcher.lock() {
            b.dispatcher = Some(dispatcher);
        }
        taken
    }

    /// Hands `batch` to a worker as soon as one is idle, until `deadline`; false if
    /// none took it by then, or the workers are gone, or the run is stopping.
    fn send_until(&self, mut batch: Batch<Offsets>, deadline: Instant) -> bool {
        loop {
            {
                let Ok(mut b) = self.batcher.lock() else {
                    return false;
                };
                let Some(dispatcher) = b.dispatcher.as_mut() else {
                    return false;
                };
                match dispatcher.offer(batch) {
                    Offer::Taken => return true,
                    Offer::Busy(back) => batch = back,
                    Offer::Gone => return false,
                }
            }
            if Instant::now() >= deadline || self.shared.stopping() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(super) fn fatal(&self) -> Option<String> {
        self.refusals.first()
    }
}

impl ClientContext for Context {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.metrics.consumer_errors.inc();
        self.refusals.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&vec![
                            ("topic", topic.clone()),
                            ("partition", partition.to_string()),
                        ])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        let sent = self
            .commits_sent
            .lock()
            .ok()
            .and_then(|mut q| q.pop_front());
        if let Some(sent) = sent {
            self.metrics
                .commit_seconds
                .observe(sent.elapsed().as_secs_f64());
        }
        if let Err(error) = result {
            // These offsets stay where they were; the next commit covers them, or the
            // messages are read again after a restart, with the same alert ids.
            self.metrics.commit_failures.inc();
            tracing::warn!(%error, "offset commit failed");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(partitions = %describe(partitions), "partitions assigned");
            if let Some(rewind) = &self.rewind {
                // What was read before goes to the workers first: its offsets count
                // as held, and the span read again comes after it, before anything
                // read from now on.
                self.dispatch(true);
                rewind.rebuild(
                    consumer,
                    partitions,
                    &self.metrics,
                    &mut |batch, deadline| self.send_until(batch, deadline),
                );
            }
            self.shared.assigned.store(true, Ordering::Relaxed);
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(partitions = %describe(partitions), "partitions revoked");
            // Finish what was read from these partitions and commit it before another
            // member takes them over; otherwise it would read them again.
            self.dispatch(true);
            if !self.shared.wait_idle(Duration::from_secs(60)) {
                tracing::warn!(
                    partitions = %describe(partitions),
                    "partitions released before their batches were committed; the next \
                     owner reads them again"
                );
            }
        }
    }
}

/// `topic[0,1,2] other[0]`, for the log.
fn describe(partitions: &TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for element in partitions.elements() {
        by_topic
            .entry(element.topic().to_owned())
            .or_default()
            .push(element.partition());
    }
    let parts: Vec<String> = by_topic
        .into_iter()
        .map(|(topic, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{topic}[{}]", ps.join(","))
        })
        .collect();
    parts.join(" ")
}
