//! The windowed rules' windows rebuilt from Kafka. When partitions are assigned (at the
//! start, or moved here from another member), what this member has not handed to its
//! workers of their recent past is read again: from the first message whose Kafka
//! timestamp is the rules' reach (the longest `window` plus its `lateness`) before that
//! of the last message below the group's resume point, up to the resume point. It goes
//! through the workers as warm batches, ahead of anything read after the assignment:
//! it fills the windows, and nothing else comes of it (no alert, dead letter, lake row
//! or commit). When a lake filled the windows at the start, the first assignment reads
//! nothing again.
//!
//! Reading again is best effort: a partition that cannot be read is logged, and its
//! windows start from what comes next; the run goes on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demarc_model::Origin;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{KafkaSettings, Offsets, client_config};
use crate::engine::{Batch, Payload, Record};
use crate::metrics::Metrics;

/// How long reading again may hold up consumption after an assignment (the group
/// expects a poll within `max.poll.interval.ms`, five minutes by default).
const BUDGET: Duration = Duration::from_secs(120);
/// Why a span was not read to its end, when the workers did not keep up.
const NOT_TAKEN: &str = "the workers took no more of it in time (or the run is ending)";
/// How long a request to the brokers (committed offsets, a time lookup) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the windows of this member hold, and how to fill in what they lack.
pub(crate) struct Rewind {
    settings: KafkaSettings,
    /// How far back the windowed rules look, lateness included, in milliseconds.
    reach_ms: i64,
    /// A lake filled the windows at the start: the first assignment reads nothing.
    from_lake: AtomicBool,
    /// The last offset of each partition handed to the workers (read or read again).
    seen: Mutex<Offsets>,
}

/// Offsets `from..until` of one partition, to read again.
#[derive(Debug)]
struct Span {
    partition: i32,
    from: i64,
    until: i64,
    done: bool,
}

impl Rewind {
    pub fn new(settings: &KafkaSettings, reach_us: i64, from_lake: bool) -> Self {
        Self {
            settings: settings.clone(),
            reach_ms: reach_us.saturating_add(999) / 1000,
            from_lake: AtomicBool::new(from_lake),
            seen: Mutex::new(Offsets::default()),
        }
    }

    /// A batch covering `position` went to the workers.
    pub fn handed_over(&self, position: &Offsets) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.merge_ref(position);
        }
    }

    /// Reads again what the windows lack of `assigned` (just assigned to `consumer`),
    /// handing it to `send` in warm batches: `send(batch, deadline)` is false when no
    /// worker took the batch by the deadline, or the run is ending.
    pub fn rebuild<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
        metrics: &Metrics,
        send: &mut dyn FnMut(Batch<Offsets>, Instant) -> bool,
    ) {
        let started = Instant::now();
        let resume = match consumer.committed_offsets(assigned.clone(), REQUEST_TIMEOUT) {
            Ok(resume) => resume,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "cannot read the committed offsets of the assigned partitions: the \
                     windowed rules' windows start empty for them"
                );
                return;
            }
        };
        let from_lake = self.from_lake.swap(false, Ordering::Relaxed);
        let mut wanted: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            for element in resume.elements() {
                let Offset::Offset(until) = element.offset() else {
                    // Nothing committed: nothing was read before.
                    continue;
                };
                let key = (Arc::<str>::from(element.topic()), element.partition());
                let next = seen.0.get(&key).map_or(0, |last| last + 1);
                if from_lake {
                    // Below the commit, everything is in the lake the windows came from.
                    seen.note(&key.0, key.1, until - 1);
                    continue;
                }
                if until <= next {
                    continue;
                }
                wanted.entry(key.0.to_string()).or_default().push(Span {
                    partition: key.1,
                    from: next,
                    until,
                    done: false,
                });
            }
        }
        let deadline = started + BUDGET;
        for (topic, spans) in wanted {
            match self.read_topic(&topic, spans, deadline, send) {
                Ok((read, described)) => {
                    metrics.window_replayed.inc_by(read);
                    tracing::info!(
                        messages = read,
                        partitions = %described,
                        seconds = started.elapsed().as_secs_f64(),
                        "windowed rules: read the span their windows look back over again"
                    );
                }
                Err(problem) => tracing::warn!(
                    %topic,
                    %problem,
                    "windowed rules: cannot read the span their windows look back over \
                     again; a sequence begun before this assignment may go unreported"
                ),
            }
        }
    }

    /// Reads the spans of one topic again; how many messages were read, and which
    /// offsets, for the log.
    fn read_topic(
        &self,
        topic: &str,
        mut spans: Vec<Span>,
        deadline: Instant,
        send: &mut dyn FnMut(Batch<Offsets>, Instant) -> bool,
    ) -> Result<(u64, String), String> {
        let reader = self.reader()?;
        self.find_starts(&reader, topic, &mut spans, deadline)?;
        spans.retain(|s| s.from < s.until);
        if spans.is_empty() {
            return Ok((0, String::new()));
        }
        let described = spans
            .iter()
            .map(|s| format!("{topic}[{}]@{}..{}", s.partition, s.from, s.until))
            .collect::<Vec<_>>()
            .join(" ");
        assign(&reader, topic, spans.iter().map(|s| (s.partition, s.from)))?;
        let name: Arc<str> = topic.into();
        let mut batch = warm_batch();
        let mut read = 0u64;
        while spans.iter().any(|s| !s.done) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "out of time after {read} messages ({described}); read {} of it",
                    spans
                        .iter()
                        .filter(|s| s.done)
                        .map(|s| s.partition.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            let message = match reader.poll(Duration::from_millis(100)) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    spans
                        .iter_mut()
                        .filter(|s| s.partition == p)
                        .for_each(|s| s.done = true);
                    continue;
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "reading the windows' span again");
                    continue;
                }
                Some(Ok(message)) => message,
            };
            let Some(span) = spans
                .iter_mut()
                .find(|s| s.partition == message.partition())
            else {
                continue;
            };
            let offset = message.offset();
            if span.done || offset >= span.until {
                span.done = true;
                continue;
            }
            span.done = offset + 1 >= span.until;
            read += 1;
            batch.push(Record {
                origin: Origin::kafka(Arc::clone(&name), span.partition, offset),
                key: message.key().map(<[u8]>::to_vec),
                payload: Payload::Bytes(message.payload().map(<[u8]>::to_vec).unwrap_or_default()),
                produced_ms: message.timestamp().to_millis(),
                received: None,
            });
            let full = batch.len() >= self.settings.batch_records
                || batch.bytes >= self.settings.batch_bytes;
            if full && !send(std::mem::replace(&mut batch, warm_batch()), deadline) {
                return Err(NOT_TAKEN.into());
            }
        }
        if !batch.is_empty() && !send(batch, deadline) {
            return Err(NOT_TAKEN.into());
        }
        if let Ok(mut seen) = self.seen.lock() {
            for span in &spans {
                seen.note(&name, span.partition, span.until - 1);
            }
        }
        Ok((read, described))
    }

    /// Moves each span's start to the first message within the reach of the last one
    /// below its end (never before what was handed over already).
    fn find_starts(
        &self,
        reader: &BaseConsumer,
        topic: &str,
        spans: &mut [Span],
        deadline: Instant,
    ) -> Result<(), String> {
        // The Kafka timestamp of the last message below each resume point.
        assign(
            reader,
            topic,
            spans.iter().map(|s| (s.partition, s.until - 1)),
        )?;
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let now = chrono::Utc::now().timestamp_millis();
        let give_up = deadline.min(Instant::now() + REQUEST_TIMEOUT);
        while last.len() < spans.len() && Instant::now() < give_up {
            match reader.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let at = message.timestamp().to_millis().unwrap_or(now);
                    last.entry(message.partition()).or_insert(at);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    last.entry(p).or_insert(now);
                }
                _ => {}
            }
        }
        let mut times = TopicPartitionList::new();
        for span in spans.iter() {
            let at = last.get(&span.partition).copied().unwrap_or(now);
            times
                .add_partition_offset(
                    topic,
                    span.partition,
                    Offset::Offset(at.saturating_sub(self.reach_ms)),
                )
                .map_err(|e| e.to_string())?;
        }
        let starts = reader
            .offsets_for_times(times, REQUEST_TIMEOUT)
            .map_err(|e| format!("look up offsets by time: {e}"))?;
        for span in spans.iter_mut() {
            let found = starts
                .find_partition(topic, span.partition)
                .map(|e| e.offset());
            let start = match found {
                Some(Offset::Offset(o)) => o,
                // No answer by time (a broker that cannot look up by time): the whole
                // partition as retained.
                _ => {
                    let (low, _) = reader
                        .fetch_watermarks(topic, span.partition, REQUEST_TIMEOUT)
                        .map_err(|e| format!("read the watermarks: {e}"))?;
                    tracing::warn!(
                        %topic,
                        partition = span.partition,
                        "the broker gave no offset for a time: the windows' span is read \
                         from the start of the partition"
                    );
                    low
                }
            };
            span.from = span.from.max(start);
        }
        Ok(())
    }

    /// A consumer outside the group, reading only what it is assigned. (librdkafka
    /// wants a group id to assign partitions; it joins no group and commits nothing.)
    fn reader(&self) -> Result<BaseConsumer, String> {
        let mut config = client_config(&self.settings);
        config
            .remove("group.instance.id")
            .set("group.id", format!("{}.windows", self.settings.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest");
        config
            .create()
            .map_err(|e| format!("create a Kafka consumer: {e}"))
    }
}

/// Assigns `reader` the partitions of `topic` at the given offsets.
fn assign(
    reader: &BaseConsumer,
    topic: &str,
    at: impl Iterator<Item = (i32, i64)>,
) -> Result<(), String> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in at {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| e.to_string())?;
    }
    reader
        .assign(&list)
        .map_err(|e| format!("assign the partitions: {e}"))
}

fn warm_batch() -> Batch<Offsets> {
    Batch {
        warm: true,
        ..Batch::default()
    }
}
