//! Reading a whole topic, one partition at a time, from its beginning to
//! its end: what `export`, `mine` and `audit verify` do with the topics
//! they read.
//!
//! A partition is read until the consumer reports its end (partition EOF):
//! the high watermark a broker lists can lag behind the records it
//! delivers (Tansu 0.6.0 lists less than its last batch holds), and
//! transaction markers take offsets no consumer sees.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::runtime::restore::QuietContext;

/// What went wrong; messages name the topic or setting.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("Kafka client: {0}")]
    Client(String),
    #[error("topic `{0}` does not exist on the cluster")]
    NoTopic(String),
    #[error("broker: {what}: {detail}")]
    Broker { what: String, detail: String },
    #[error("partition {partition} of `{topic}` stopped delivering at offset {at} before its end (high watermark {end}; no record for {secs} s)")]
    Stalled {
        topic: String,
        partition: i32,
        at: i64,
        end: i64,
        secs: u64,
    },
}

/// Whether to go on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// One partition: (id, low watermark, high watermark).
pub type Range = (i32, i64, i64);

/// A topic opened for reading.
pub struct TopicReader {
    consumer: BaseConsumer<QuietContext>,
    topic: String,
    ranges: Vec<Range>,
    stall: Duration,
}

fn broker(what: &str) -> impl FnOnce(KafkaError) -> ReadError + '_ {
    move |e| ReadError::Broker {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

impl TopicReader {
    /// Opens `topic` on `brokers` with librdkafka settings `client`; a
    /// partition that delivers nothing for `stall` before its end is an
    /// error.
    pub fn open(
        brokers: &str,
        client: &[(String, String)],
        topic: &str,
        stall: Duration,
    ) -> Result<TopicReader, ReadError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            // assign() only: the group never joins or commits.
            .set("group.id", "cxstream-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("allow.auto.create.topics", "false")
            // Tansu holds every fetch for the full wait.
            .set("fetch.wait.max.ms", "10")
            .set("queued.max.messages.kbytes", "65536");
        for (k, v) in client {
            c.set(k, v);
        }
        let consumer: BaseConsumer<QuietContext> = c
            .create_with_context(QuietContext { what: "reader" })
            .map_err(|e| ReadError::Client(e.to_string()))?;
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(broker("reading topic metadata"))?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            return Err(ReadError::NoTopic(topic.to_string()));
        }
        let mut ranges = Vec::new();
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(broker("reading partition offsets"))?;
            ranges.push((p, low, high));
        }
        ranges.sort_unstable();
        Ok(TopicReader {
            consumer,
            topic: topic.to_string(),
            ranges,
            stall,
        })
    }

    /// The partitions and their watermarks, by id.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Records the watermarks count (a lower bound: see the module doc).
    pub fn total(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(_, l, h)| u64::try_from(h - l).unwrap_or(0))
            .sum()
    }

    /// Reads partition `range` from its low watermark to its end, handing
    /// each record's (offset, value) to `f` until it says stop.
    pub fn read_partition<E: From<ReadError>>(
        &self,
        range: Range,
        mut f: impl FnMut(i64, Option<&[u8]>) -> Result<Flow, E>,
    ) -> Result<(), E> {
        let (p, low, high) = range;
        if high <= low {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, p, Offset::Offset(low))
            .map_err(broker("choosing the partition"))?;
        self.consumer
            .assign(&tpl)
            .map_err(broker("assigning the partition"))?;
        let mut last = Instant::now();
        let mut at = low;
        loop {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    at = m.offset() + 1;
                    if f(m.offset(), m.payload())? == Flow::Stop {
                        return Ok(());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(q))) if q == p => return Ok(()),
                Some(Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "fetch error; retrying");
                }
                None => {
                    if last.elapsed() > self.stall {
                        return Err(ReadError::Stalled {
                            topic: self.topic.clone(),
                            partition: p,
                            at,
                            end: high,
                            secs: self.stall.as_secs(),
                        }
                        .into());
                    }
                }
            }
        }
    }
}
