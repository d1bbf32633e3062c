//! The Kafka runtime: topics, the processing loop, offsets and metrics
//! serving. Everything Kafka-specific lives under this module; the operators
//! and [`crate::pipeline`] know nothing of it.

pub mod client;
pub mod dead_letter;
pub mod engine;
pub mod restore;
pub mod restore_tables;
pub mod rewind;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

use crate::config::RuntimePlan;
use crate::http::{self, Health, HttpError};
use crate::metrics::Metrics;
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
    #[error("input topic `{0}` does not exist (or has no partitions) on the brokers; create it or fix the stage's `inputs`")]
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

/// What `run` needs besides the stage and its plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub brokers: String,
    /// The deployment's group id: the stage's consumer group is
    /// `<group id>.<stage>` ([`RuntimePlan::group_id`]).
    pub group_id: String,
    /// `-X key=value` client overrides.
    pub overrides: Vec<(String, String)>,
    /// `None`: no HTTP endpoint (or the caller serves one for several
    /// stages, with `health`).
    pub metrics_addr: Option<SocketAddr>,
    /// Where the run reports readiness; `None`: its own.
    pub health: Option<Arc<Health>>,
    pub exit_when_idle: Option<Duration>,
    /// Names this instance (transactions mode: the transactional id is
    /// `<runtime.transactional_id or group id>.<instance id>`). `None`: a
    /// random one.
    pub instance_id: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub stop: StopReason,
    pub elapsed: Duration,
    pub metrics_addr: Option<SocketAddr>,
}

/// Prepares topics, serves metrics and runs the loop until `stop` is set (or
/// the idle condition holds). Blocking Kafka work runs on its own thread.
pub async fn run<S: Stage>(
    plan: Arc<RuntimePlan>,
    opts: RunOptions,
    stage: S,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<RunOutcome, RuntimeError> {
    let started = Instant::now();
    let group_id = plan.group_id(&opts.group_id);
    let client = ClientSettings::new(&opts.brokers, &plan, &opts.overrides);

    let health = opts.health.clone().unwrap_or_default();
    let http_stop = stop.clone();
    let served = match opts.metrics_addr {
        Some(addr) => {
            let shutdown = async move {
                while !http_stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            Some(http::serve(addr, vec![metrics.clone()], vec![health.clone()], shutdown).await?)
        }
        None => None,
    };
    let metrics_addr = served.as_ref().map(|(a, _)| *a);
    if let Some(f) = on_ready {
        f(metrics_addr);
    }

    let partitions = wait_for_input(&client, &plan.input_topic, &stop).await?;

    if !plan.co_inputs.is_empty() && stage.state_model() != crate::stage::StateModel::Checkpointed {
        // Emitted state is rebuilt from the outputs' tail, which tells one
        // input's offsets only.
        return Err(RuntimeError::Setup(format!(
            "stage `{}` reads {} inputs; only stages with checkpointed state can read more than one",
            plan.stage,
            plan.co_inputs.len() + 1
        )));
    }
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
    for co in &plan.co_inputs {
        let n = wait_for_input(&client, co, &stop).await?;
        if n != partitions {
            return Err(RuntimeError::Setup(format!(
                "the input `{co}` has {n} partitions but `{}` has {partitions}; a stage's inputs are co-partitioned and must have the same count",
                plan.input_topic
            )));
        }
    }
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
        group_id: group_id.clone(),
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
        topology = %plan.topology,
        stage = %plan.stage,
        input = %plan.input_topic,
        partitions,
        group = %group_id,
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
    Ok(RunOutcome {
        stop: result?,
        elapsed: started.elapsed(),
        metrics_addr,
    })
}

/// How long a stage waits for an input topic that does not exist yet (an
/// upstream stage of the same topology creates it as it starts).
const INPUT_WAIT: Duration = Duration::from_secs(60);

/// The partition count of input `topic`, waiting up to [`INPUT_WAIT`] for
/// it to appear.
async fn wait_for_input(
    client: &ClientSettings,
    topic: &str,
    stop: &AtomicBool,
) -> Result<i32, RuntimeError> {
    let deadline = Instant::now() + INPUT_WAIT;
    let mut said = false;
    loop {
        let (c, t) = (client.clone(), topic.to_string());
        let n = tokio::task::spawn_blocking(move || {
            client::partition_count(&c, &t, Duration::from_secs(15))
        })
        .await
        .map_err(|e| RuntimeError::Join(e.to_string()))??;
        if let Some(n) = n {
            return Ok(n);
        }
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            return Err(RuntimeError::MissingInput(topic.to_string()));
        }
        if !said {
            tracing::info!(
                topic,
                wait_s = INPUT_WAIT.as_secs(),
                "Input topic does not exist yet; waiting for it (an upstream stage creates it)."
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
