//! The Kafka runtime: topics, the processing loop, offsets and metrics
//! serving. Everything Kafka-specific lives under this module; the operators
//! and [`crate::pipeline`] know nothing of it.

pub mod client;
pub mod dead_letter;
pub mod engine;
pub mod restore;
pub mod rewind;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

use crate::config::Plan;
use crate::http::{self, Health, HttpError};
use crate::metrics::{Metrics, OUT_DEAD_LETTER, OUT_LATE, OUT_SILVER};
use crate::pipeline::Pipeline;
use crate::secret::MaskingKey;
use crate::silver::Silver;
use crate::stage::Stage;
pub use client::ClientSettings;
pub use engine::StopReason;

/// Runtime errors. None of them quotes event data.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot create the Kafka {what}: {source}")]
    Client {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka error while {what}: {source}")]
    Broker {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("input topic `{0}` does not exist (or has no partitions) on the brokers; create it or fix input.topic")]
    MissingInput(String),
    #[error("{0}")]
    Setup(String),
    #[error(
        "delivery failed permanently ({0}); stopped without committing past the affected records"
    )]
    Delivery(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the processing thread failed: {0}")]
    Join(String),
    #[error("transaction failed ({0}); stopped: the open transaction is aborted and a restart restores state from the last committed one")]
    Transaction(String),
}

impl RuntimeError {
    pub(crate) fn client(what: &'static str) -> impl FnOnce(KafkaError) -> Self {
        move |source| RuntimeError::Client { what, source }
    }
    pub(crate) fn broker(what: &str) -> impl FnOnce(KafkaError) -> Self + '_ {
        move |source| RuntimeError::Broker {
            what: what.to_string(),
            source,
        }
    }
}

/// What `run` needs besides the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plan: Arc<Plan>,
    pub brokers: String,
    pub group_id: String,
    /// `-X key=value` client overrides.
    pub overrides: Vec<(String, String)>,
    /// `None`: no HTTP endpoint.
    pub metrics_addr: Option<SocketAddr>,
    pub exit_when_idle: Option<Duration>,
    /// Names this instance (transactions mode: the transactional id is
    /// `<runtime.transactional_id or group id>.<instance id>`). `None`: a
    /// random one.
    pub instance_id: Option<String>,
}

/// Totals of one run, read from the metrics.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub events_in: u64,
    pub silver: u64,
    pub late: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub filtered: u64,
    /// Events left buffered in partitions that moved away (see
    /// `cxstream_events_handed_over_total`).
    pub handed_over: u64,
    pub repartitioned: u64,
    /// Events read back from the repartition topic (processed here).
    pub repartitioned_in: u64,
    pub elapsed: Duration,
    pub stop: Option<StopReason>,
    pub metrics_addr: Option<SocketAddr>,
}

impl RunSummary {
    pub fn from_metrics(m: &Metrics, elapsed: Duration) -> Self {
        Self {
            events_in: m.events_in.get(),
            silver: m.out(OUT_SILVER),
            late: m.out(OUT_LATE),
            dead_letters: m.out(OUT_DEAD_LETTER),
            duplicates: Metrics::sum(&m.duplicates),
            filtered: m.filtered.get(),
            handed_over: m.handed_over.get(),
            repartitioned: m.repartitioned.get(),
            repartitioned_in: m.repartitioned_in.get(),
            elapsed,
            stop: None,
            metrics_addr: None,
        }
    }

    /// True when every event that came in (from the input, or back from
    /// the repartition topic) ended in exactly one place: an output, a
    /// drop, the next owner of a partition that moved away, or the
    /// repartition topic (see [`crate::metrics`]).
    pub fn accounted(&self) -> bool {
        self.events_in + self.repartitioned_in
            == self.silver
                + self.late
                + self.dead_letters
                + self.duplicates
                + self.filtered
                + self.handed_over
                + self.repartitioned
    }
}

/// Prepares topics, serves metrics and runs the loop until `stop` is set (or
/// the idle condition holds). Blocking Kafka work runs on its own thread.
pub async fn run(
    opts: RunOptions,
    key: &MaskingKey,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<RunSummary, RuntimeError> {
    let started = Instant::now();
    let plan = opts.plan.clone();
    let client = ClientSettings::new(&opts.brokers, &plan, &opts.overrides);

    let health = Arc::new(Health::default());
    let http_stop = stop.clone();
    let served = match opts.metrics_addr {
        Some(addr) => {
            let shutdown = async move {
                while !http_stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            Some(http::serve(addr, metrics.clone(), health.clone(), shutdown).await?)
        }
        None => None,
    };
    let metrics_addr = served.as_ref().map(|(a, _)| *a);
    if let Some(f) = on_ready {
        f(metrics_addr);
    }

    let c2 = client.clone();
    let input = plan.input_topic.clone();
    let partitions = tokio::task::spawn_blocking(move || {
        client::partition_count(&c2, &input, Duration::from_secs(15))
    })
    .await
    .map_err(|e| RuntimeError::Join(e.to_string()))??
    .ok_or_else(|| RuntimeError::MissingInput(plan.input_topic.clone()))?;

    let stage = Silver::new(Pipeline::new(plan.clone(), key, metrics.clone()));
    let ports = stage.ports();
    let out_partitions = plan.partitions.unwrap_or(partitions);
    if plan.create_topics {
        let mut outputs: Vec<&str> = ports.iter().map(|p| p.topic.as_str()).collect();
        outputs.push(&plan.dead_letter_topic);
        client::ensure_topics(&client, &outputs, out_partitions, plan.replication_factor).await?;
        client::ensure_topics(
            &client,
            &[&plan.repartition_topic, &plan.changelog_topic],
            partitions,
            plan.replication_factor,
        )
        .await?;
    }
    let count = |t: &str| -> Result<i32, RuntimeError> {
        client::partition_count(&client, t, Duration::from_secs(15))?.ok_or_else(|| {
            RuntimeError::Setup(format!(
                "topic `{t}` does not exist; set topics.create = true or create it"
            ))
        })
    };
    for internal in [&plan.repartition_topic, &plan.changelog_topic] {
        let n = count(internal)?;
        if n != partitions {
            return Err(RuntimeError::Setup(format!(
                "the internal topic `{internal}` has {n} partitions but the input has {partitions}; they must match (delete it to let cxstream recreate it)"
            )));
        }
    }
    let limits = client::Limits::discover(
        &client,
        client::OutputTopics {
            ports: ports.iter().map(|p| p.topic.clone()).collect(),
            dead_letter: plan.dead_letter_topic.clone(),
            repartition: plan.repartition_topic.clone(),
        },
    );
    let ports = ports
        .into_iter()
        .map(|p| count(&p.topic).map(|n| (p, n)))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = engine::EngineSettings {
        plan: plan.clone(),
        client: client.clone(),
        group_id: opts.group_id.clone(),
        partitions,
        ports,
        dead_letter_partitions: count(&plan.dead_letter_topic)?,
        limits,
        exit_when_idle: opts.exit_when_idle,
        instance_id: opts
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>())),
    };
    tracing::info!(
        topology = %plan.name,
        input = %plan.input_topic,
        partitions,
        group = %opts.group_id,
        chain = %plan.chain.join(" -> "),
        "Starting."
    );
    let m2 = metrics.clone();
    let stop2 = stop.clone();
    let h2 = health.clone();
    let result = tokio::task::spawn_blocking(move || {
        let engine = engine::Engine::new(settings, stage, m2)?;
        engine.run(&stop2, &h2)
    })
    .await
    .map_err(|e| RuntimeError::Join(e.to_string()))?;
    stop.store(true, Ordering::Relaxed);
    if let Some((_, task)) = served {
        let _ = task.await;
    }
    let reason = result?;
    let mut summary = RunSummary::from_metrics(&metrics, started.elapsed());
    summary.stop = Some(reason);
    summary.metrics_addr = metrics_addr;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::RunSummary;

    /// An instance that read 10 events, forwarded 3 of them to other
    /// owners, got 2 back from the repartition topic, and dealt with the
    /// rest: its own counters add up without the other instances'.
    #[test]
    fn accounting_adds_up_per_instance_with_forwarded_events() {
        let s = RunSummary {
            events_in: 10,
            repartitioned: 3,
            repartitioned_in: 2,
            silver: 5,
            late: 1,
            dead_letters: 1,
            duplicates: 1,
            filtered: 0,
            handed_over: 1,
            ..RunSummary::default()
        };
        assert!(s.accounted());
        // One forwarded event not accounted for anywhere.
        assert!(!RunSummary {
            repartitioned: 2,
            ..s.clone()
        }
        .accounted());
        // An event read back but not counted as read back.
        assert!(!RunSummary {
            repartitioned_in: 3,
            ..s
        }
        .accounted());
    }
}
