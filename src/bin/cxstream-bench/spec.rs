//! What is measured and against what: the variants and phases, the names
//! of a variant's topics and group and its topology, the arguments of one
//! child, the generated inputs, and the Kafka plumbing the parent and the
//! children share.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::BaseProducer;
use serde::{Deserialize, Serialize};

use cxstream::config::{self, Delivery, SilverPlan};
use cxstream::generate::GenConfig;
use cxstream::runtime::{client, ClientSettings, RuntimeError};

/// The hidden subcommand that runs one variant (this executable, as a
/// child process of the benchmark).
pub const CHILD_COMMAND: &str = "bench-run";

/// The shipped topology, the base of every pipeline variant.
const SHIPPED_TOPOLOGY: &str = include_str!("../../../topologies/genesys-silver.toml");

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("Kafka error while {what}: {source}")]
    Kafka {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("topology: {0}")]
    Config(#[from] config::ConfigError),
    #[error("masking key: {0}")]
    Key(String),
    #[error("{0}")]
    Failed(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn kafka(what: &'static str) -> impl FnOnce(KafkaError) -> BenchError {
    move |source| BenchError::Kafka { what, source }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Passthrough,
    Replay,
    Transactions,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Passthrough => "passthrough",
            Variant::Replay => "replay",
            Variant::Transactions => "transactions",
        }
    }
}

/// Which phase a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Throughput,
    Latency,
}

/// Names of one variant's topics and group.
#[derive(Debug, Clone)]
pub struct Names {
    pub input: String,
    pub prefix: String,
}

impl Names {
    pub(crate) fn plan(
        &self,
        delivery: Delivery,
        zero_lateness: bool,
    ) -> Result<SilverPlan, BenchError> {
        let mut plan = config::parse(SHIPPED_TOPOLOGY, "genesys-silver.toml")?
            .into_silver()
            .ok_or_else(|| BenchError::Failed("the shipped topology has no silver stage".into()))?;
        let p = &self.prefix;
        plan.runtime.input_topic = self.input.clone();
        plan.silver_topic = format!("{p}.silver");
        plan.late_topic = format!("{p}.late");
        plan.runtime.dead_letter_topic = format!("{p}.dlq");
        plan.runtime.repartition_topic = format!("{p}.repartition");
        plan.runtime.changelog_topic = format!("{p}.changelog");
        plan.runtime.delivery = delivery;
        if zero_lateness {
            if let Some(r) = plan.reorder.as_mut() {
                r.allowed_lateness = Duration::ZERO;
            }
        }
        Ok(plan)
    }
    pub(crate) fn output(&self) -> String {
        format!("{}.silver", self.prefix)
    }
    pub(crate) fn group(&self) -> String {
        format!("{}.group", self.prefix)
    }
}

/// Arguments of one child run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub variant: Variant,
    pub phase: Phase,
    pub brokers: String,
    pub overrides: Vec<(String, String)>,
    pub names: Names,
    /// Throughput: input records to expect. Latency: events to send.
    pub records: u64,
    /// Throughput: the pre-loaded input's value bytes.
    pub input_bytes: u64,
    pub rate: f64,
    pub seed: u64,
}

/// What `cxstream-bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub brokers: String,
    pub overrides: Vec<(String, String)>,
    /// Generated input records (throughput phase).
    pub events: u64,
    pub partitions: i32,
    pub variants: Vec<Variant>,
    /// Latency phase: events/s and measured events (0 = skip the phase).
    pub rate: f64,
    pub latency_events: u64,
    pub seed: u64,
}

/// Generator settings for the throughput input: the generator's realistic
/// default mix (duplicates, disorder, late, malformed, multi-event records,
/// missing keys, version drift).
pub fn throughput_gen(events: u64, seed: u64) -> GenConfig {
    GenConfig {
        interactions: (events / 10).max(1) as usize,
        seed,
        collect_truth: false,
        ..GenConfig::default()
    }
}

/// Generator settings for the latency input: an in-order stream, nothing
/// to drop or hold (so any latency is processing and transport).
pub fn latency_gen(events: u64, seed: u64) -> GenConfig {
    GenConfig {
        interactions: (events / 10).max(1) as usize,
        seed,
        duplicate_pct: 0.0,
        disorder_pct: 0.0,
        late_pct: 0.0,
        malformed_pct: 0.0,
        batch_pct: 0.0,
        bad_key_pct: 0.0,
        collect_truth: false,
        ..GenConfig::default()
    }
}

pub(crate) fn load_producer(
    settings: &ClientSettings,
    linger_ms: &str,
) -> Result<BaseProducer, BenchError> {
    settings
        .with_defaults(&[
            ("partitioner", "murmur2_random"),
            ("linger.ms", linger_ms),
            ("queue.buffering.max.messages", "500000"),
            ("enable.idempotence", "true"),
        ])
        .create()
        .map_err(kafka("creating the load producer"))
}

pub(crate) fn tokio_rt() -> Result<tokio::runtime::Runtime, BenchError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Creates `topics` with `partitions` partitions (replication: broker default).
pub fn create_topics(
    brokers: &str,
    overrides: &[(String, String)],
    topics: &[&str],
    partitions: i32,
) -> Result<(), BenchError> {
    let st = ClientSettings {
        brokers: brokers.to_string(),
        extra: overrides.to_vec(),
    };
    tokio_rt()?.block_on(client::ensure_topics(&st, topics, partitions, -1))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_topology_renames_every_topic() {
        let names = Names {
            input: "in".into(),
            prefix: "b.x".into(),
        };
        let plan = names.plan(Delivery::Transactions, true).expect("plan");
        assert_eq!(plan.runtime.input_topic, "in");
        assert_eq!(plan.silver_topic, "b.x.silver");
        assert_eq!(plan.runtime.changelog_topic, "b.x.changelog");
        assert_eq!(plan.runtime.delivery, Delivery::Transactions);
        assert_eq!(
            plan.reorder.map(|r| r.allowed_lateness),
            Some(Duration::ZERO)
        );
    }
}
