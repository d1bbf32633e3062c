//! End-to-end benchmark against a real broker (`cxstream bench`).
//!
//! One run pre-loads a generated bronze topic once, then measures each
//! variant in its own child process (`cxstream bench-run`, hidden), so CPU
//! time and peak RSS are per variant:
//!
//! * `passthrough`: a minimal rdkafka consume → produce loop with exactly the
//!   runtime's client settings ([`CONSUMER_DEFAULTS`], [`PRODUCER_DEFAULTS`],
//!   plus the same `-X` overrides), no processing;
//! * `replay`, `transactions`: the full silver pipeline ([`crate::runtime::run`],
//!   the shipped topology with fresh topic names and group id) in each
//!   `runtime.delivery` mode.
//!
//! **Throughput phase**: every variant reads the same pre-loaded topic from
//! the beginning. Throughput is measured from the first record read to the
//! last input record taken in; the "tail" (until the last output is
//! delivered: the reorder buffer's last events, released by its idle
//! timeout, and their delivery) is printed apart, because it is a fixed cost
//! per end of stream, not a rate. CPU seconds are `utime + stime` of the
//! child from the first record read to the last output delivered (tail
//! included; from `/proc/self/stat`); peak RSS is `VmHWM` of the child at
//! exit.
//!
//! **Latency phase**: a fresh topic with one partition is fed at a fixed rate
//! (default 5,000 events/s) with an in-order stream (no duplicates, no
//! disorder, no late or malformed records) while the variant runs; the
//! pipeline's topology copy has `allowed_lateness = 0`, so the reorder hold
//! is zero by construction. A reader in the same process consumes the output
//! topic and the input topic, matches each output with its input record (by
//! offset for the pass-through, by the lineage hop's source offset for the
//! pipeline) and records `receive time − input CreateTime` (set when the
//! load generator called `produce`) for every input produced after a 2 s
//! warm-up. That is: load producer → broker → processor → broker → reader.
//! For the pipeline the latency is also split at the silver record's own
//! CreateTime (set when the processor called `produce`): input hop plus
//! processing, and output hop; and the processor's own share (record read →
//! handed to the producer) is read from its
//! `cxstream_processing_latency_seconds` histogram over the same window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::config::{self, Delivery, Plan};
use crate::generate::{GenConfig, Generator};
use crate::metrics::{Metrics, OUT_DEAD_LETTER, OUT_LATE, OUT_SILVER};
use crate::runtime::{self, client, ClientSettings, RunOptions, RuntimeError};
use crate::secret::MaskingKey;

/// The runtime's own client defaults: the pass-through uses exactly these.
pub use crate::runtime::client::{GROUP_CONSUMER_DEFAULTS as CONSUMER_DEFAULTS, PRODUCER_DEFAULTS};

/// The shipped topology, the base of every pipeline variant.
const SHIPPED_TOPOLOGY: &str = include_str!("../topologies/genesys-silver.toml");

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

fn kafka(what: &'static str) -> impl FnOnce(KafkaError) -> BenchError {
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

/// One child's result (one JSON line on its stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub variant: String,
    pub phase: String,
    /// Input records read in the measured interval.
    pub records: u64,
    /// Input bytes (record values) read.
    pub bytes: u64,
    /// First record read → last output delivered.
    pub seconds: f64,
    /// First record read → last input record taken in (decoded and
    /// processed; for the pipeline, events still held by the reorder buffer
    /// come out in the tail after it). Throughput is measured on this.
    #[serde(default)]
    pub input_seconds: f64,
    /// Child CPU (user + system) over the same interval.
    pub cpu_seconds: f64,
    /// `VmHWM` at exit, KiB.
    pub peak_rss_kib: u64,
    /// Largest `VmRSS` sampled while records flowed, KiB.
    pub max_rss_kib: u64,
    /// Dedup fingerprints held at the end (pipeline only).
    pub dedup_keys: u64,
    pub latency_samples: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Pipeline only, latency phase: input CreateTime → the silver record's
    /// CreateTime (set when the processor called `produce`), i.e. the input
    /// hop plus processing.
    #[serde(default)]
    pub to_produce_p50_ms: Option<f64>,
    #[serde(default)]
    pub to_produce_p99_ms: Option<f64>,
    /// Pipeline only: the silver record's CreateTime → read back by the
    /// reader (the output hop: producer batching, broker, reader fetch).
    #[serde(default)]
    pub from_produce_p50_ms: Option<f64>,
    #[serde(default)]
    pub from_produce_p99_ms: Option<f64>,
    /// Pipeline only: `cxstream_processing_latency_seconds` over the measured
    /// window (record read → output handed to the producer), as the upper
    /// bounds of the histogram buckets holding p50 and p99.
    #[serde(default)]
    pub processing_p50_le_ms: Option<f64>,
    #[serde(default)]
    pub processing_p99_le_ms: Option<f64>,
    /// Set when the variant failed; the other fields are then partial.
    pub error: Option<String>,
}

impl Report {
    /// The interval throughput is measured on: [`Self::input_seconds`]
    /// when known, else the whole run.
    fn rate_seconds(&self) -> f64 {
        if self.input_seconds > 0.0 {
            self.input_seconds
        } else {
            self.seconds
        }
        .max(1e-9)
    }
    pub fn events_per_s(&self) -> f64 {
        self.records as f64 / self.rate_seconds()
    }
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.rate_seconds()
    }
    pub fn cpu_s_per_million(&self) -> f64 {
        self.cpu_seconds / (self.records.max(1) as f64 / 1e6)
    }
}

/// `utime + stime` of this process in seconds, from `/proc/self/stat`
/// (USER_HZ = 100 on Linux).
pub fn proc_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, i.e. 12 and 13 after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut + st) as f64 / 100.0)
}

/// A `Vm*` field of `/proc/self/status` in KiB (e.g. `VmRSS`, `VmHWM`).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
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

/// One latency sample of the latency phase, in ms.
struct Sample {
    /// Input CreateTime → read back from the output.
    total: f64,
    /// (input CreateTime → output CreateTime, output CreateTime → read
    /// back), when the output carries its own CreateTime (the pipeline).
    split: Option<(f64, f64)>,
}

/// A histogram's cumulative bucket counts: (upper bound s, count ≤ bound).
type Buckets = Vec<(f64, u64)>;

fn buckets(h: &prometheus::Histogram) -> Buckets {
    use prometheus::core::Collector;
    h.collect()
        .iter()
        .flat_map(|mf| mf.get_metric().iter())
        .flat_map(|m| m.get_histogram().get_bucket().iter())
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect()
}

/// Cumulative counts of `end` minus those of `start` (same buckets).
fn bucket_delta(start: &[(f64, u64)], end: &[(f64, u64)]) -> Buckets {
    end.iter()
        .map(|&(le, n)| {
            let before = start.iter().find(|(l, _)| *l == le).map_or(0, |(_, c)| *c);
            (le, n.saturating_sub(before))
        })
        .collect()
}

/// The upper bound of the first bucket holding quantile `q` of the
/// observations (`None` without observations or beyond the last bucket).
fn bucket_quantile(cumulative: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    cumulative
        .iter()
        .find(|(_, n)| *n >= rank)
        .map(|(le, _)| *le)
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

fn load_producer(settings: &ClientSettings, linger_ms: &str) -> Result<BaseProducer, BenchError> {
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

/// Writes the throughput input; returns (records, value bytes).
pub fn preload(
    settings: &ClientSettings,
    topic: &str,
    events: u64,
    seed: u64,
) -> Result<(u64, u64), BenchError> {
    let producer = load_producer(settings, "5")?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for rec in Generator::new(throughput_gen(events, seed)) {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&rec.value);
        if let Some(k) = &rec.key {
            r = r.key(k);
        }
        client::send_retrying(&producer, r).map_err(kafka("pre-loading the input"))?;
        n += 1;
        bytes += rec.value.len() as u64;
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(kafka("flushing the pre-load"))?;
    Ok((n, bytes))
}

/// Names of one variant's topics and group.
#[derive(Debug, Clone)]
pub struct Names {
    pub input: String,
    pub prefix: String,
}

impl Names {
    fn plan(&self, delivery: Delivery, zero_lateness: bool) -> Result<Plan, BenchError> {
        let mut plan = config::parse(SHIPPED_TOPOLOGY, "genesys-silver.toml")?;
        let p = &self.prefix;
        plan.input_topic = self.input.clone();
        plan.silver_topic = format!("{p}.silver");
        plan.late_topic = format!("{p}.late");
        plan.dead_letter_topic = format!("{p}.dlq");
        plan.repartition_topic = format!("{p}.repartition");
        plan.changelog_topic = format!("{p}.changelog");
        plan.delivery = delivery;
        if zero_lateness {
            if let Some(r) = plan.reorder.as_mut() {
                r.allowed_lateness = Duration::ZERO;
            }
        }
        Ok(plan)
    }
    fn output(&self) -> String {
        format!("{}.silver", self.prefix)
    }
    fn group(&self) -> String {
        format!("{}.group", self.prefix)
    }
}

/// Samples CPU and RSS while records flow; `mark` is called on progress.
#[derive(Debug, Default)]
struct Clock {
    first: Option<(Instant, f64)>,
    last: Option<(Instant, f64)>,
    last_input: Option<Instant>,
    max_rss: u64,
}

impl Clock {
    fn progress(&mut self, now: Instant) {
        let cpu = proc_cpu_seconds().unwrap_or(0.0);
        if self.first.is_none() {
            self.first = Some((now, cpu));
        }
        self.last = Some((now, cpu));
    }
    fn sample_rss(&mut self) {
        self.max_rss = self.max_rss.max(proc_status_kib("VmRSS").unwrap_or(0));
    }
    fn fill(&self, r: &mut Report) {
        if let (Some((t0, c0)), Some((t1, c1))) = (self.first, self.last) {
            r.seconds = (t1 - t0).as_secs_f64();
            r.cpu_seconds = c1 - c0;
            r.input_seconds = self
                .last_input
                .map_or(r.seconds, |t| t.saturating_duration_since(t0).as_secs_f64());
        }
        r.max_rss_kib = self.max_rss;
        r.peak_rss_kib = proc_status_kib("VmHWM").unwrap_or(0);
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

/// Runs one child's measurement in this process.
pub fn run_child(spec: &ChildSpec) -> Report {
    let mut report = Report {
        variant: spec.variant.name().into(),
        phase: match spec.phase {
            Phase::Throughput => "throughput".into(),
            Phase::Latency => "latency".into(),
        },
        ..Report::default()
    };
    let result = match (spec.variant, spec.phase) {
        (Variant::Passthrough, Phase::Throughput) => passthrough(spec, None, &mut report),
        (Variant::Passthrough, Phase::Latency) => latency(spec, &mut report),
        (_, Phase::Throughput) => pipeline(spec, &mut report),
        (_, Phase::Latency) => latency(spec, &mut report),
    };
    if let Err(e) = result {
        report.error = Some(e.to_string());
    }
    report
}

fn settings(spec: &ChildSpec) -> ClientSettings {
    ClientSettings {
        brokers: spec.brokers.clone(),
        extra: spec.overrides.clone(),
    }
}

fn consumer_config(spec: &ChildSpec, group: &str) -> ClientConfig {
    let mut d: Vec<(&str, &str)> = CONSUMER_DEFAULTS.to_vec();
    d.push(("group.id", group));
    settings(spec).with_defaults(&d)
}

/// The pass-through loop: consume, produce to the same partition of the
/// output topic with the same key, value and timestamp, store the offset,
/// commit every second (the topology's `commit_interval`). Stops after
/// `spec.records` records (throughput) or when `stop` is set (latency).
fn passthrough(
    spec: &ChildSpec,
    stop: Option<&AtomicBool>,
    report: &mut Report,
) -> Result<(), BenchError> {
    let consumer: BaseConsumer = consumer_config(spec, &spec.names.group())
        .create()
        .map_err(kafka("creating the consumer"))?;
    consumer
        .subscribe(&[&spec.names.input])
        .map_err(kafka("subscribing"))?;
    let producer: BaseProducer = settings(spec)
        .with_defaults(PRODUCER_DEFAULTS)
        .create()
        .map_err(kafka("creating the producer"))?;
    let output = spec.names.output();
    let mut clock = Clock::default();
    let mut last_commit = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed))
            || (stop.is_none() && report.records >= spec.records)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "timed out after {} of {} records",
                report.records, spec.records
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&output)
                    .partition(m.partition())
                    .payload(payload);
                if let Some(k) = m.key() {
                    r = r.key(k);
                }
                if let Some(ts) = m.timestamp().to_millis() {
                    r = r.timestamp(ts);
                }
                client::send_retrying(&producer, r).map_err(kafka("producing"))?;
                producer.poll(Duration::ZERO);
                let _ = consumer.store_offset_from_message(&m);
                report.records += 1;
                report.bytes += payload.len() as u64;
                if report.records == 1 {
                    clock.progress(Instant::now());
                }
                if report.records % 4096 == 0 {
                    clock.sample_rss();
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => return Err(kafka("consuming")(e)),
        }
        if last_commit.elapsed() >= Duration::from_secs(1) {
            let _ = consumer.commit_consumer_state(CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(kafka("flushing"))?;
    clock.progress(Instant::now());
    clock.sample_rss();
    clock.fill(report);
    Ok(())
}

fn tokio_rt() -> Result<tokio::runtime::Runtime, BenchError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn outputs(m: &Metrics) -> u64 {
    m.out(OUT_SILVER)
        + m.out(OUT_LATE)
        + m.out(OUT_DEAD_LETTER)
        + Metrics::sum(&m.duplicates)
        + m.filtered.get()
        + m.handed_over.get()
}

fn delivery(v: Variant) -> Delivery {
    match v {
        Variant::Transactions => Delivery::Transactions,
        _ => Delivery::Replay,
    }
}

/// Runs the pipeline until `stop` is set or (with `idle`) it has been idle
/// that long; `watch` is called every 5 ms with the metrics.
fn run_pipeline(
    spec: &ChildSpec,
    plan: Plan,
    idle: Option<Duration>,
    stop: Arc<AtomicBool>,
    mut watch: impl FnMut(&Metrics) + Send,
) -> Result<(), BenchError> {
    let key = MaskingKey::from_bytes("cxstream-bench-masking-key")
        .map_err(|e| BenchError::Key(e.to_string()))?;
    let metrics = Arc::new(Metrics::new());
    let opts = RunOptions {
        plan: Arc::new(plan),
        brokers: spec.brokers.clone(),
        group_id: spec.names.group(),
        overrides: spec.overrides.clone(),
        metrics_addr: None,
        exit_when_idle: idle,
        instance_id: None,
    };
    let done = AtomicBool::new(false);
    let rt = tokio_rt()?;
    std::thread::scope(|s| {
        let m2 = metrics.clone();
        let done = &done;
        s.spawn(move || {
            while !done.load(Ordering::Relaxed) {
                watch(&m2);
                std::thread::sleep(Duration::from_millis(5));
            }
            watch(&m2);
        });
        let r = rt.block_on(runtime::run(opts, &key, metrics.clone(), stop, None));
        done.store(true, Ordering::Relaxed);
        r.map(|_| ()).map_err(BenchError::from)
    })
}

/// The full pipeline over the pre-loaded input (throughput phase).
fn pipeline(spec: &ChildSpec, report: &mut Report) -> Result<(), BenchError> {
    let plan = spec.names.plan(delivery(spec.variant), false)?;
    let mut clock = Clock::default();
    let mut seen = 0u64;
    let mut dedup_keys = 0u64;
    let mut events = 0u64;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    // `CXSTREAM_BENCH_TIMELINE=MS`: a progress line on stderr every MS ms.
    let timeline = std::env::var("CXSTREAM_BENCH_TIMELINE")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let started = Instant::now();
    let mut last_line = started;
    let result = run_pipeline(spec, plan, Some(Duration::from_secs(3)), stop, |m| {
        let out = outputs(m);
        if (clock.first.is_none() && m.events_in.get() > 0) || out != seen {
            seen = out;
            clock.progress(Instant::now());
            clock.sample_rss();
        }
        if m.events_in.get() != events {
            clock.last_input = Some(Instant::now());
        }
        events = m.events_in.get();
        dedup_keys = dedup_keys.max(m.dedup_keys.get().max(0) as u64);
        if let Some(every) = timeline {
            if last_line.elapsed() >= every {
                last_line = Instant::now();
                eprintln!(
                    "timeline {:>7.2} s: events in {:>8}, outputs {:>8}, buffered {:>7}, rss {:>5} MB",
                    started.elapsed().as_secs_f64(),
                    events,
                    out,
                    m.reorder_buffered.get(),
                    proc_status_kib("VmRSS").unwrap_or(0) / 1024,
                );
            }
        }
        if Instant::now() > deadline {
            s2.store(true, Ordering::Relaxed);
        }
    });
    report.records = spec.records;
    report.bytes = spec.input_bytes;
    report.dedup_keys = dedup_keys;
    clock.fill(report);
    result?;
    if events == 0 || seen < events {
        return Err(BenchError::Failed(format!(
            "{seen} of {events} events accounted for before exit"
        )));
    }
    Ok(())
}

/// The latency phase: a paced in-order load, the variant, and a reader on
/// its silver output, all in this process.
fn latency(spec: &ChildSpec, report: &mut Report) -> Result<(), BenchError> {
    let st = settings(spec);
    let input = spec.names.input.clone();
    let output = spec.names.output();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // Records produced at or after this time (epoch ms) are measured.
    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let lat_plan = match spec.variant {
        Variant::Passthrough => None,
        v => Some(spec.names.plan(delivery(v), true)?),
    };
    let (samples, result, processing) = std::thread::scope(|s| {
        // Reader: the output topic's only partition and the input's, from
        // the beginning. Each output is matched with the input record it came
        // from (the pass-through keeps offsets; the pipeline's silver record
        // names its source offset in its lineage hop) and its latency is the
        // reader's receive time minus that input record's CreateTime (the
        // moment the load generator called `produce`).
        let reader = s.spawn(|| -> Result<Vec<Sample>, BenchError> {
            let c: BaseConsumer = st
                .with_defaults(&[
                    ("group.id", &format!("{}.reader", spec.names.prefix)),
                    ("enable.auto.commit", "false"),
                    ("fetch.wait.max.ms", "5"),
                    ("fetch.error.backoff.ms", "5"),
                ])
                .create()
                .map_err(kafka("creating the reader"))?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&output, 0, Offset::Beginning)
                .map_err(kafka("assigning the reader"))?;
            tpl.add_partition_offset(&input, 0, Offset::Beginning)
                .map_err(kafka("assigning the reader"))?;
            c.assign(&tpl).map_err(kafka("assigning the reader"))?;
            let mut created: std::collections::HashMap<i64, i64> = Default::default();
            // (source offset, receive time, output CreateTime)
            let mut received: Vec<(i64, i64, Option<i64>)> = Vec::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                match c.poll(Duration::from_millis(20)) {
                    Some(Ok(m)) => {
                        let now = crate::model::now_ms();
                        idle_since = None;
                        if m.topic() == input {
                            if let Some(ts) = m.timestamp().to_millis() {
                                created.insert(m.offset(), ts);
                            }
                            continue;
                        }
                        let source = if spec.variant == Variant::Passthrough {
                            Some(m.offset())
                        } else {
                            m.payload().and_then(source_offset)
                        };
                        if let Some(o) = source {
                            received.push((o, now, m.timestamp().to_millis()));
                        }
                        if measure_from.load(Ordering::Relaxed) == u64::MAX {
                            // First output seen: measure inputs from 2 s on.
                            measure_from.store(now as u64 + 2000, Ordering::Relaxed);
                        }
                    }
                    Some(Err(_)) | None => {
                        if stop.load(Ordering::Relaxed) {
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_secs(2) {
                                let from = measure_from.load(Ordering::Relaxed);
                                return Ok(received
                                    .iter()
                                    .filter_map(|(o, at, out_ts)| {
                                        let ts = *created.get(o)?;
                                        (ts as u64 >= from).then(|| Sample {
                                            total: (at - ts) as f64,
                                            split: out_ts
                                                .map(|p| ((p - ts) as f64, (at - p) as f64)),
                                        })
                                    })
                                    .collect());
                            }
                        }
                    }
                }
            }
        });
        // Load: paced in-order stream.
        let load = s.spawn(|| -> Result<(), BenchError> {
            let producer = load_producer(&st, "0")?;
            let started = Instant::now();
            let mut measuring_since: Option<Instant> = None;
            let window = Duration::from_secs_f64(spec.records as f64 / spec.rate);
            for rec in Generator::new(latency_gen(1_000_000, spec.seed)) {
                let n = sent.load(Ordering::Relaxed);
                let due = started + Duration::from_secs_f64(n as f64 / spec.rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let mut r: BaseRecord<'_, [u8], [u8]> =
                    BaseRecord::to(&input).partition(0).payload(&rec.value);
                if let Some(k) = &rec.key {
                    r = r.key(k);
                }
                client::send_retrying(&producer, r).map_err(kafka("producing the load"))?;
                producer.poll(Duration::ZERO);
                sent.fetch_add(1, Ordering::Relaxed);
                let from = measure_from.load(Ordering::Relaxed);
                if from != u64::MAX && crate::model::now_ms() as u64 >= from {
                    let t = *measuring_since.get_or_insert_with(Instant::now);
                    if t.elapsed() >= window {
                        break;
                    }
                }
                if started.elapsed() > Duration::from_secs(120) || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            producer
                .flush(Duration::from_secs(30))
                .map_err(kafka("flushing the load"))?;
            Ok(())
        });
        // The variant itself, on this thread.
        let mut clock = Clock::default();
        // Processing-latency histogram at the start and end of the window.
        let mut processing: (Option<Buckets>, Buckets) = (None, Vec::new());
        let result = match lat_plan {
            None => {
                let stop_pt = AtomicBool::new(false);
                std::thread::scope(|s2| {
                    let h = s2.spawn(|| {
                        let mut r = Report::default();
                        passthrough(spec, Some(&stop_pt), &mut r).map(|_| r)
                    });
                    let _ = load.join();
                    std::thread::sleep(Duration::from_secs(2));
                    stop_pt.store(true, Ordering::Relaxed);
                    match h.join() {
                        Ok(Ok(r)) => {
                            report.peak_rss_kib = r.peak_rss_kib;
                            Ok(())
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(BenchError::Failed("pass-through thread panicked".into())),
                    }
                })
            }
            Some(plan) => {
                let pstop = Arc::new(AtomicBool::new(false));
                let p2 = pstop.clone();
                std::thread::scope(|s2| {
                    s2.spawn(move || {
                        let _ = load.join();
                        std::thread::sleep(Duration::from_secs(2));
                        p2.store(true, Ordering::Relaxed);
                    });
                    let r = run_pipeline(spec, plan, None, pstop.clone(), |m| {
                        clock.sample_rss();
                        let from = measure_from.load(Ordering::Relaxed);
                        if from != u64::MAX && crate::model::now_ms() as u64 >= from {
                            let now = buckets(&m.processing_latency);
                            processing.0.get_or_insert_with(|| now.clone());
                            processing.1 = now;
                        }
                    });
                    // Ends the load at once if the pipeline failed early.
                    stop.store(true, Ordering::Relaxed);
                    r
                })
            }
        };
        stop.store(true, Ordering::Relaxed);
        let samples = match reader.join() {
            Ok(r) => r,
            Err(_) => Err(BenchError::Failed("reader thread panicked".into())),
        };
        clock.sample_rss();
        report.max_rss_kib = clock.max_rss;
        (samples, result, processing)
    });
    result?;
    let samples = samples?;
    let mut lat: Vec<f64> = samples.iter().map(|s| s.total).collect();
    lat.sort_by(f64::total_cmp);
    let (mut to, mut from): (Vec<f64>, Vec<f64>) = samples.iter().filter_map(|s| s.split).unzip();
    to.sort_by(f64::total_cmp);
    from.sort_by(f64::total_cmp);
    if spec.variant != Variant::Passthrough {
        report.to_produce_p50_ms = percentile(&to, 50.0);
        report.to_produce_p99_ms = percentile(&to, 99.0);
        report.from_produce_p50_ms = percentile(&from, 50.0);
        report.from_produce_p99_ms = percentile(&from, 99.0);
        if let Some(start) = &processing.0 {
            let window = bucket_delta(start, &processing.1);
            report.processing_p50_le_ms = bucket_quantile(&window, 0.50).map(|s| s * 1000.0);
            report.processing_p99_le_ms = bucket_quantile(&window, 0.99).map(|s| s * 1000.0);
        }
    }
    report.records = sent.load(Ordering::Relaxed);
    report.latency_samples = lat.len() as u64;
    report.latency_p50_ms = percentile(&lat, 50.0);
    report.latency_p99_ms = percentile(&lat, 99.0);
    report.latency_max_ms = lat.last().copied();
    report.peak_rss_kib = proc_status_kib("VmHWM").unwrap_or(0);
    if lat.is_empty() {
        return Err(BenchError::Failed(
            "no output record was read back in the measured window".into(),
        ));
    }
    Ok(())
}

/// The input offset a silver record came from: its first lineage hop's
/// `source_offset`.
fn source_offset(silver: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(silver).ok()?;
    v.get("lineage")?
        .get("hops")?
        .get(0)?
        .get("source_offset")?
        .as_i64()
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

/// What `cxstream bench` runs.
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

/// Runs every variant in its own child process (this executable's hidden
/// `bench-run` subcommand) and collects their reports; a failed child is a
/// report with `error` set, not an error of the whole run.
pub fn orchestrate(opts: &BenchOptions) -> Result<Vec<Report>, BenchError> {
    let run = format!("bench.{:08x}", rand::random::<u32>());
    let st = ClientSettings {
        brokers: opts.brokers.clone(),
        extra: opts.overrides.clone(),
    };
    let input = format!("{run}.bronze");
    create_topics(&opts.brokers, &opts.overrides, &[&input], opts.partitions)?;
    let t = Instant::now();
    let (records, bytes) = preload(&st, &input, opts.events, opts.seed)?;
    eprintln!(
        "bench: pre-loaded {records} records ({:.1} MB) into {input} ({} partitions) in {:.1?}",
        bytes as f64 / 1e6,
        opts.partitions,
        t.elapsed()
    );
    let mut reports = Vec::new();
    for v in &opts.variants {
        let names = Names {
            input: input.clone(),
            prefix: format!("{run}.{}", v.name()),
        };
        if *v == Variant::Passthrough {
            create_topics(
                &opts.brokers,
                &opts.overrides,
                &[&names.output()],
                opts.partitions,
            )?;
        }
        reports.push(child(
            opts,
            &ChildSpec {
                variant: *v,
                phase: Phase::Throughput,
                brokers: opts.brokers.clone(),
                overrides: opts.overrides.clone(),
                names,
                records,
                input_bytes: bytes,
                rate: opts.rate,
                seed: opts.seed,
            },
        ));
    }
    if opts.latency_events > 0 {
        for v in &opts.variants {
            let prefix = format!("{run}.{}.lat", v.name());
            let names = Names {
                input: format!("{prefix}.bronze"),
                prefix,
            };
            create_topics(
                &opts.brokers,
                &opts.overrides,
                &[&names.input, &names.output()],
                1,
            )?;
            reports.push(child(
                opts,
                &ChildSpec {
                    variant: *v,
                    phase: Phase::Latency,
                    brokers: opts.brokers.clone(),
                    overrides: opts.overrides.clone(),
                    names,
                    records: opts.latency_events,
                    input_bytes: 0,
                    rate: opts.rate,
                    seed: opts.seed,
                },
            ));
        }
    }
    Ok(reports)
}

/// The `bench-run` arguments for `spec`.
pub fn child_args(spec: &ChildSpec) -> Vec<String> {
    let mut a = vec![
        "bench-run".to_string(),
        "--variant".into(),
        spec.variant.name().into(),
        "--phase".into(),
        match spec.phase {
            Phase::Throughput => "throughput".into(),
            Phase::Latency => "latency".into(),
        },
        "--brokers".into(),
        spec.brokers.clone(),
        "--input".into(),
        spec.names.input.clone(),
        "--prefix".into(),
        spec.names.prefix.clone(),
        "--records".into(),
        spec.records.to_string(),
        "--input-bytes".into(),
        spec.input_bytes.to_string(),
        "--rate".into(),
        spec.rate.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
    ];
    for (k, v) in &spec.overrides {
        a.push("-X".into());
        a.push(format!("{k}={v}"));
    }
    a
}

fn child(_opts: &BenchOptions, spec: &ChildSpec) -> Report {
    let label = format!("{} {:?}", spec.variant.name(), spec.phase);
    eprintln!("bench: running {label}...");
    let failed = |e: String| Report {
        variant: spec.variant.name().into(),
        phase: format!("{:?}", spec.phase).to_lowercase(),
        error: Some(e),
        ..Report::default()
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return failed(format!("cannot find this executable: {e}")),
    };
    // CXSTREAM_BENCH_CHILD_WRAPPER="heaptrack -o /tmp/replay" runs each
    // child under a profiler (words split on whitespace).
    let wrapper: Vec<String> = std::env::var("CXSTREAM_BENCH_CHILD_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = std::process::Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    cmd.args(child_args(spec))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    if std::env::var_os("CXSTREAM_LOG").is_none() {
        cmd.env("CXSTREAM_LOG", "warn,librdkafka=error,rdkafka=error");
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return failed(format!("cannot start the child: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Report>(l).ok())
    {
        Some(r) => r,
        None => failed(format!(
            "the child exited with {} and no report",
            out.status
        )),
    }
}

/// A human-readable summary of `reports`, with the pipeline / pass-through
/// throughput ratios.
pub fn summary(reports: &[Report]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<13} {:<10} {:>9} {:>9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "variant",
        "phase",
        "records",
        "events/s",
        "tail s",
        "MB/s",
        "cpu s/M",
        "peak RSS",
        "max RSS",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(s, "{:<13} {:<10} FAILED: {e}", r.variant, r.phase);
            continue;
        }
        let thr = r.phase == "throughput";
        let _ = writeln!(
            s,
            "{:<13} {:<10} {:>9} {:>9} {:>6} {:>7} {:>8} {:>6} MB {:>6} MB {:>8} {:>8} {:>8}",
            r.variant,
            r.phase,
            r.records,
            if thr {
                format!("{:.0}", r.events_per_s())
            } else {
                "-".into()
            },
            if thr {
                format!("{:.1}", (r.seconds - r.input_seconds).max(0.0))
            } else {
                "-".into()
            },
            if thr {
                format!("{:.1}", r.mb_per_s())
            } else {
                "-".into()
            },
            if thr {
                format!("{:.2}", r.cpu_s_per_million())
            } else {
                "-".into()
            },
            r.peak_rss_kib / 1024,
            r.max_rss_kib / 1024,
            ms(r.latency_p50_ms),
            ms(r.latency_p99_ms),
            ms(r.latency_max_ms),
        );
    }
    let thr = |v: &str| {
        reports
            .iter()
            .find(|r| r.variant == v && r.phase == "throughput" && r.error.is_none())
            .map(Report::events_per_s)
    };
    for r in reports
        .iter()
        .filter(|r| r.phase == "latency" && r.error.is_none())
    {
        if r.to_produce_p50_ms.is_none() {
            continue;
        }
        let le = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("<= {x}"));
        let _ = writeln!(
            s,
            "{} latency split (p50 / p99 ms): input -> processor's produce call {} / {}; produce call -> reader {} / {}; inside the processor (read -> produce, histogram bucket) {} / {}",
            r.variant,
            ms(r.to_produce_p50_ms),
            ms(r.to_produce_p99_ms),
            ms(r.from_produce_p50_ms),
            ms(r.from_produce_p99_ms),
            le(r.processing_p50_le_ms),
            le(r.processing_p99_le_ms),
        );
    }
    if let Some(base) = thr("passthrough") {
        for v in ["replay", "transactions"] {
            if let Some(p) = thr(v) {
                let _ = writeln!(s, "ratio {v} / passthrough throughput: {:.2}", p / base);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_offset_is_read_from_the_first_lineage_hop() {
        let silver = br#"{"event_id":"e","lineage":{"token":"t","hops":[{"source_offset":41},{"source_offset":7}]}}"#;
        assert_eq!(source_offset(silver), Some(41));
        assert_eq!(source_offset(br#"{"lineage":{"hops":[]}}"#), None);
        assert_eq!(source_offset(b"not json"), None);
    }

    #[test]
    fn processing_quantiles_come_from_the_window_of_the_histogram() {
        let h = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("t", "t").buckets(vec![0.001, 0.01, 0.1]),
        )
        .expect("histogram");
        // Before the window: slow observations that must not count.
        for _ in 0..50 {
            h.observe(0.05);
        }
        let start = buckets(&h);
        for _ in 0..98 {
            h.observe(0.0005);
        }
        h.observe(0.005);
        h.observe(0.005);
        let window = bucket_delta(&start, &buckets(&h));
        assert_eq!(window, vec![(0.001, 98), (0.01, 100), (0.1, 100)]);
        assert_eq!(bucket_quantile(&window, 0.5), Some(0.001));
        assert_eq!(bucket_quantile(&window, 0.99), Some(0.01));
        assert_eq!(bucket_quantile(&bucket_delta(&start, &start), 0.5), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn proc_readers_parse_this_process() {
        assert!(proc_cpu_seconds().is_some());
        assert!(proc_status_kib("VmRSS").is_some_and(|k| k > 0));
    }

    #[test]
    fn variant_topology_renames_every_topic() {
        let names = Names {
            input: "in".into(),
            prefix: "b.x".into(),
        };
        let plan = names.plan(Delivery::Transactions, true).expect("plan");
        assert_eq!(plan.input_topic, "in");
        assert_eq!(plan.silver_topic, "b.x.silver");
        assert_eq!(plan.changelog_topic, "b.x.changelog");
        assert_eq!(plan.delivery, Delivery::Transactions);
        assert_eq!(
            plan.reorder.map(|r| r.allowed_lateness),
            Some(Duration::ZERO)
        );
    }
}
