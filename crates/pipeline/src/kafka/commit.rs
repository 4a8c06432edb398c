//! Offsets committed once what they cover is durable.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{Context, Offsets};
use crate::complete::Acknowledge;
use crate::engine::Position;
use crate::{Error, Result};

/// Offsets committed to the group once durable.
pub(super) struct KafkaCommit {
    pub(super) consumer: Arc<BaseConsumer<Context>>,
    /// The highest offsets committed so far, and whether a background commit has been
    /// sent since the last commit that was waited for.
    pub(super) sent: Offsets,
    pub(super) unconfirmed: bool,
}

impl KafkaCommit {
    /// Commits `offsets` of the partitions this member owns. Another member's
    /// partitions are left alone: their offsets here are from before a revoke, and
    /// committing them would move that member's commits backwards.
    fn commit(&self, offsets: &Offsets, wait: bool) -> Result<()> {
        let owned = self
            .consumer
            .assignment()
            .map_err(Error::kafka("read the partition assignment"))?;
        let mut list = TopicPartitionList::new();
        for ((topic, partition), last) in &offsets.0 {
            if owned.find_partition(topic, *partition).is_none() {
                continue;
            }
            list.add_partition_offset(topic, *partition, Offset::Offset(last + 1))
                .map_err(Error::kafka("list the offsets to commit"))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        let context = self.consumer.context();
        if wait {
            let started = Instant::now();
            self.consumer
                .commit(&list, CommitMode::Sync)
                .map_err(Error::kafka("commit offsets"))?;
            context
                .metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        } else {
            // Sent in the background, in order: the completion stage goes on with the
            // next batches instead of waiting a round trip. The outcome arrives in
            // `commit_callback`.
            if let Ok(mut sent) = context.commits_sent.lock() {
                sent.push_back(Instant::now());
            }
            self.consumer
                .commit(&list, CommitMode::Async)
                .map_err(Error::kafka("commit offsets"))?;
        }
        Ok(())
    }
}

impl Acknowledge<Offsets> for KafkaCommit {
    fn acknowledge(&mut self, position: &Offsets, wait: bool) -> Result<()> {
        self.sent.merge(position.clone());
        let result = self.commit(position, wait);
        // A commit waited for confirms every earlier one (offsets only grow).
        self.unconfirmed = !wait || (self.unconfirmed && result.is_err());
        result
    }

    /// Background commits may still be on their way: commit the same offsets once more
    /// and wait for the answer, so that a clean stop leaves nothing to read again.
    fn finish(&mut self) -> Result<()> {
        if self.unconfirmed {
            self.commit(&self.sent, true)?;
            self.unconfirmed = false;
        }
        Ok(())
    }
}
