//! Kafka client settings, topic administration, output size limits, and the
//! producer helpers that test traffic and the demo use (`producer_config`,
//! `send_retrying`, `CountingContext`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::RuntimeError;
use crate::config::RuntimePlan;

/// The group consumer's defaults (besides `group.id`); the topology's
/// `[kafka]` table and `-X` override them. `cxstream-bench` gives its raw
/// pass-through exactly these.
pub const GROUP_CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("enable.partition.eof", "true"),
    ("statistics.interval.ms", "5000"),
    ("queued.max.messages.kbytes", "8192"),
    // Tansu 0.6.0 holds every fetch for the full wait even when data is
    // there: 100 ms halved a raw pass-through's throughput and added ~150 ms
    // of latency per hop (BENCHMARKS.md). Brokers that answer as soon as data
    // arrives only see more empty fetches while idle.
    ("fetch.wait.max.ms", "10"),
    // When the local queue is full (queued.max.messages.kbytes) librdkafka
    // stops fetching for this long; the default (1 s) starved the pipeline,
    // which drains 8 MB in tens of milliseconds: it waited for input ~90 % of
    // the time (9-18k events/s, BENCHMARKS.md).
    ("fetch.queue.backoff.ms", "5"),
];

/// The repartition reader's defaults (besides `group.id`).
pub const SIDE_CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.partition.eof", "true"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("queued.max.messages.kbytes", "8192"),
    ("fetch.wait.max.ms", "10"),
    ("fetch.queue.backoff.ms", "5"),
];

/// The producer's defaults in replay mode (transactions mode adds its id
/// and timeouts).
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.messages", "200000"),
    ("queue.buffering.max.kbytes", "131072"),
    ("message.timeout.ms", "0"),
    ("statistics.interval.ms", "0"),
];

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub brokers: String,
    /// Pass-through settings: the topology's `[kafka]` table, then `-X`
    /// overrides (later wins).
    pub extra: Vec<(String, String)>,
}

impl ClientSettings {
    pub fn new(brokers: &str, plan: &RuntimePlan, overrides: &[(String, String)]) -> Self {
        let mut extra: Vec<(String, String)> = plan
            .kafka
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        extra.extend(overrides.iter().cloned());
        Self {
            brokers: brokers.to_string(),
            extra,
        }
    }

    /// Base config: brokers plus pass-through settings.
    pub fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", "cxstream");
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// `defaults` are applied first, so pass-through settings can override them.
    pub fn with_defaults(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", "cxstream");
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

/// Partition count of a topic, `None` if it does not exist.
pub fn partition_count(
    settings: &ClientSettings,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, RuntimeError> {
    let consumer: BaseConsumer = settings
        .with_defaults(&[("allow.auto.create.topics", "false")])
        .create()
        .map_err(RuntimeError::client("metadata client"))?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(RuntimeError::broker("fetching topic metadata"))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as i32)),
        _ => Ok(None),
    }
}

/// Creates `topics` that are missing, with `partitions` partitions; returns
/// once they exist. Topics that already exist are left as they are.
pub async fn ensure_topics(
    settings: &ClientSettings,
    topics: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<(), RuntimeError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .base()
        .create()
        .map_err(RuntimeError::client("admin client"))?;
    let mut missing = Vec::new();
    for t in topics {
        if partition_count(settings, t, Duration::from_secs(10))?.is_none() {
            missing.push(*t);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(RuntimeError::broker("creating topics"))?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, partitions, "Created topic."),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(RuntimeError::Broker {
                    what: format!("creating topic {name}"),
                    source: KafkaError::AdminOp(code),
                })
            }
        }
    }
    // Wait until metadata shows them (brokers create asynchronously).
    for _ in 0..100 {
        let mut all = true;
        for t in &missing {
            if partition_count(settings, t, Duration::from_secs(5))?.is_none() {
                all = false;
            }
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(RuntimeError::Setup(format!(
        "topics {missing:?} were created but do not show in metadata after 10 s"
    )))
}

/// librdkafka's default `message.max.bytes`.
pub const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The most bytes one record may take on each output, from the producer's
/// `message.max.bytes` and each topic's `max.message.bytes` (the lower
/// wins). Records over it are dead-lettered (see [`super::dead_letter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLimits {
    /// Per output port, in port order.
    pub ports: Vec<usize>,
    pub dead_letter: usize,
    pub repartition: usize,
}

impl OutputLimits {
    /// Every output (of `ports` ports) at `n` bytes.
    pub fn all(ports: usize, n: usize) -> Self {
        OutputLimits {
            ports: vec![n; ports],
            dead_letter: n,
            repartition: n,
        }
    }
}

/// The topics whose limits apply: the stage's ports (in port order), its
/// dead-letter and repartition topics.
#[derive(Debug, Clone)]
pub struct OutputTopics {
    pub ports: Vec<String>,
    pub dead_letter: String,
    pub repartition: String,
}

/// The limits the loop applies: the producer's from the start, each topic's
/// once the brokers have described it. Describing never delays start-up
/// (brokers without DescribeConfigs, like librdkafka's mock cluster, make it
/// wait for a timeout).
#[derive(Debug, Clone)]
pub struct Limits {
    initial: Arc<OutputLimits>,
    described: Arc<OnceLock<OutputLimits>>,
}

impl Limits {
    /// The producer's limit now; the topics' once `output_limits` for
    /// `topics` has answered (in the background, on the current runtime).
    pub fn discover(settings: &ClientSettings, topics: OutputTopics) -> Self {
        let limits = Limits {
            initial: Arc::new(OutputLimits::all(
                topics.ports.len(),
                producer_message_max_bytes(settings),
            )),
            described: Arc::new(OnceLock::new()),
        };
        let (settings, cell) = (settings.clone(), limits.described.clone());
        tokio::spawn(async move {
            let _ = cell.set(output_limits(&settings, &topics).await);
        });
        limits
    }

    /// The limits in force.
    #[inline]
    pub fn get(&self) -> &OutputLimits {
        self.described.get().unwrap_or(&self.initial)
    }
}

/// The producer's `message.max.bytes` as configured (`[kafka]`, `-X`), else
/// librdkafka's default.
pub fn producer_message_max_bytes(settings: &ClientSettings) -> usize {
    settings
        .extra
        .iter()
        .rev()
        .find(|(k, _)| k == "message.max.bytes")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES)
}

/// Each topic's `max.message.bytes` as the brokers report it; `None` where
/// they report none (or do not implement DescribeConfigs).
pub async fn topic_max_message_bytes(
    settings: &ClientSettings,
    topics: &[&str],
) -> Vec<Option<usize>> {
    let admin: AdminClient<DefaultClientContext> = match settings.base().create() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot create an admin client to read topic size limits; using the producer's.");
            return vec![None; topics.len()];
        }
    };
    let specs: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = match admin.describe_configs(specs.iter(), &opts).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "The brokers did not describe topic configs; output size limits follow the producer's message.max.bytes.");
            return vec![None; topics.len()];
        }
    };
    let mut out = vec![None; topics.len()];
    for (slot, r) in out.iter_mut().zip(results) {
        *slot = r
            .ok()
            .and_then(|c| c.get("max.message.bytes").and_then(|e| e.value.clone()))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
    }
    out
}

/// The output limits of a stage's topics: producer and topic limits, the
/// lower.
pub async fn output_limits(settings: &ClientSettings, topics: &OutputTopics) -> OutputLimits {
    let producer = producer_message_max_bytes(settings);
    let mut names: Vec<&str> = topics.ports.iter().map(String::as_str).collect();
    names.push(&topics.dead_letter);
    names.push(&topics.repartition);
    let found = topic_max_message_bytes(settings, &names).await;
    let limit = |i: usize| {
        found
            .get(i)
            .copied()
            .flatten()
            .map_or(producer, |t| t.min(producer))
    };
    let n = topics.ports.len();
    let limits = OutputLimits {
        ports: (0..n).map(limit).collect(),
        dead_letter: limit(n),
        repartition: limit(n + 1),
    };
    tracing::info!(
        producer_message_max_bytes = producer,
        ports = ?topics.ports.iter().zip(&limits.ports).collect::<Vec<_>>(),
        dead_letter = limits.dead_letter,
        repartition = limits.repartition,
        "Output record size limits (larger records are dead-lettered)."
    );
    limits
}

/// A `-X KEY=VALUE` librdkafka setting from the command line (the key
/// trimmed; refused when it is empty or there is no `=`).
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Producer settings for writing bronze test traffic: keyed records are
/// partitioned like the Java client (murmur2), as Genesys connectors do.
pub fn producer_config(settings: &ClientSettings) -> ClientConfig {
    settings.with_defaults(&[
        ("partitioner", "murmur2_random"),
        ("linger.ms", "5"),
        ("queue.buffering.max.messages", "500000"),
        ("enable.idempotence", "true"),
    ])
}

/// Producer context that counts failed deliveries, for the producers of
/// test and demo traffic (`generate`, the demo, the tests): a record that
/// never reached the broker must not be reported as sent.
#[derive(Debug, Default)]
pub struct CountingContext {
    failed: std::sync::atomic::AtomicU64,
}

impl CountingContext {
    /// Deliveries that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl rdkafka::ClientContext for CountingContext {}

impl rdkafka::producer::ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Sends, waiting while the local queue is full.
pub fn send_retrying<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &rdkafka::producer::BaseProducer<C>,
    mut record: rdkafka::producer::BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_limit_is_the_last_setting_given_else_the_default() {
        let mut s = ClientSettings {
            brokers: "b".into(),
            extra: vec![],
        };
        assert_eq!(producer_message_max_bytes(&s), 1_000_000);
        s.extra = vec![
            ("message.max.bytes".into(), "2000000".into()),
            ("linger.ms".into(), "1".into()),
            ("message.max.bytes".into(), " 500000 ".into()),
        ];
        assert_eq!(producer_message_max_bytes(&s), 500_000);
        s.extra = vec![("message.max.bytes".into(), "lots".into())];
        assert_eq!(producer_message_max_bytes(&s), 1_000_000);
    }
}
