//! What a child runs: the pass-through loop and the pipeline, each with the
//! runtime's own client settings, and the throughput phase over the
//! pre-loaded input. (The latency phase is in `latency.rs`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use cxstream::config::{Delivery, SilverPlan};
use cxstream::metrics::{Metrics, OUT_DEAD_LETTER, OUT_LATE, OUT_SILVER};
use cxstream::procfs::{proc_cpu_seconds, proc_status_kib};
// The runtime's own client defaults: the pass-through uses exactly these.
use cxstream::runtime::client::{GROUP_CONSUMER_DEFAULTS as CONSUMER_DEFAULTS, PRODUCER_DEFAULTS};
use cxstream::runtime::{client, ClientSettings, RunOptions};
use cxstream::secret::MaskingKey;

use crate::report::Report;
use crate::spec::{kafka, tokio_rt, BenchError, ChildSpec, Variant};

/// Samples CPU and RSS while records flow; `mark` is called on progress.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    first: Option<(Instant, f64)>,
    last: Option<(Instant, f64)>,
    last_input: Option<Instant>,
    pub(crate) max_rss: u64,
}

impl Clock {
    fn progress(&mut self, now: Instant) {
        let cpu = proc_cpu_seconds().unwrap_or(0.0);
        if self.first.is_none() {
            self.first = Some((now, cpu));
        }
        self.last = Some((now, cpu));
    }
    pub(crate) fn sample_rss(&mut self) {
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

pub(crate) fn settings(spec: &ChildSpec) -> ClientSettings {
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
pub(crate) fn passthrough(
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

fn outputs(m: &Metrics) -> u64 {
    m.out(OUT_SILVER)
        + m.out(OUT_LATE)
        + m.out(OUT_DEAD_LETTER)
        + Metrics::sum(&m.duplicates)
        + m.filtered.get()
        + m.handed_over.get()
}

pub(crate) fn delivery(v: Variant) -> Delivery {
    match v {
        Variant::Transactions => Delivery::Transactions,
        _ => Delivery::Replay,
    }
}

/// Runs the pipeline until `stop` is set or (with `idle`) it has been idle
/// that long; `watch` is called every 5 ms with the metrics.
pub(crate) fn run_pipeline(
    spec: &ChildSpec,
    plan: SilverPlan,
    idle: Option<Duration>,
    stop: Arc<AtomicBool>,
    mut watch: impl FnMut(&Metrics) + Send,
) -> Result<(), BenchError> {
    let key = MaskingKey::from_bytes("cxstream-bench-masking-key")
        .map_err(|e| BenchError::Key(e.to_string()))?;
    let metrics = Arc::new(Metrics::new());
    let opts = RunOptions {
        brokers: spec.brokers.clone(),
        group_id: spec.names.group(),
        overrides: spec.overrides.clone(),
        metrics_addr: None,
        health: None,
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
        let r = rt.block_on(cxstream::run::silver(
            Arc::new(plan),
            opts,
            &key,
            metrics.clone(),
            stop,
            None,
        ));
        done.store(true, Ordering::Relaxed);
        r.map(|_| ()).map_err(BenchError::from)
    })
}

/// The full pipeline over the pre-loaded input (throughput phase).
pub(crate) fn pipeline(spec: &ChildSpec, report: &mut Report) -> Result<(), BenchError> {
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
