//! Running a topology: builds each stage from its plan and runs it on the
//! Kafka runtime. The command line, the demo, the benchmark and the tests
//! start jobs here, so the runtime itself stays generic over stages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::audit::note::NoteSigner;
use crate::audit::stage::Audit;
use crate::config::{AuditPlan, GoldPlan, ProcessPlan, SilverPlan, StagePlan};
use crate::gold::stage::Gold;
use crate::http::{self, Health, HttpError};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::process::stage::Process;
use crate::runtime::{self, RunOptions, RuntimeError};
use crate::secret::MaskingKey;
use crate::silver::{RunSummary, Silver};

/// Runs the silver stage `plan` until `stop` is set (or the idle condition
/// holds); the totals come from `metrics`.
pub async fn silver(
    plan: Arc<SilverPlan>,
    opts: RunOptions,
    key: &MaskingKey,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<RunSummary, RuntimeError> {
    tracing::info!(stage = %plan.runtime.stage, chain = %plan.chain.join(" -> "), "Silver stage.");
    let runtime_plan = Arc::new(plan.runtime.clone());
    let stage = Silver::new(Pipeline::new(plan, key, metrics.clone()));
    let outcome = runtime::run(runtime_plan, opts, stage, metrics.clone(), stop, on_ready).await?;
    let mut summary = RunSummary::from_metrics(&metrics, outcome.elapsed);
    summary.stop = Some(outcome.stop);
    summary.metrics_addr = outcome.metrics_addr;
    Ok(summary)
}

/// Runs the gold stage `plan` until `stop` is set (or the idle condition
/// holds).
pub async fn gold(
    plan: Arc<GoldPlan>,
    opts: RunOptions,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<GoldSummary, RuntimeError> {
    tracing::info!(stage = %plan.runtime.stage, "Gold stage.");
    let runtime_plan = Arc::new(plan.runtime.clone());
    let stage = Gold::new(plan, &metrics);
    let outcome = runtime::run(runtime_plan, opts, stage, metrics.clone(), stop, on_ready).await?;
    Ok(GoldSummary::from_metrics(&metrics, outcome.elapsed))
}

/// Runs the process-mining stage `plan` until `stop` is set (or the idle
/// condition holds).
pub async fn process(
    plan: Arc<ProcessPlan>,
    opts: RunOptions,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<ProcessSummary, RuntimeError> {
    tracing::info!(stage = %plan.runtime.stage, "Process-mining stage.");
    let runtime_plan = Arc::new(plan.runtime.clone());
    let stage = Process::new(plan, &metrics);
    runtime::run(runtime_plan, opts, stage, metrics.clone(), stop, on_ready).await?;
    Ok(ProcessSummary {
        silver_events_read: metrics.records_read.with_label_values(&["input"]).get(),
        activities: metrics.out("activities"),
    })
}

/// Runs the audit stage `plan` until `stop` is set (or the idle condition
/// holds), signing checkpoints with `signer`.
pub async fn audit(
    plan: Arc<AuditPlan>,
    opts: RunOptions,
    signer: Arc<NoteSigner>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<AuditSummary, RuntimeError> {
    tracing::info!(stage = %plan.runtime.stage, signer = %plan.chain.key_name, "Audit stage.");
    check_audit_partitions(&plan, &opts)?;
    let runtime_plan = Arc::new(plan.runtime.clone());
    let stage = Audit::new(plan, signer, &metrics);
    runtime::run(runtime_plan, opts, stage, metrics.clone(), stop, on_ready).await?;
    Ok(AuditSummary {
        silver_events_read: metrics.records_read.with_label_values(&["input"]).get(),
        records: metrics.out("events"),
        checkpoints: metrics.out("checkpoints"),
    })
}

/// One writer per audit partition: the audit partition is the input
/// partition, so the events topic must have (or be created with) the
/// input's partition count, and must never grow partitions.
fn check_audit_partitions(plan: &AuditPlan, opts: &RunOptions) -> Result<(), RuntimeError> {
    let settings =
        crate::runtime::ClientSettings::new(&opts.brokers, &plan.runtime, &opts.overrides);
    let timeout = Duration::from_secs(15);
    let count = |t: &str| crate::runtime::client::partition_count(&settings, t, timeout);
    let Some(input) = count(&plan.runtime.input_topic)? else {
        // The runtime waits for its input and creates the outputs with
        // its partition count.
        return match plan.runtime.partitions {
            Some(n) => Err(RuntimeError::Setup(format!(
                "the audit stage `{}` sets topics.partitions = {n}: its events topic must have its input's partition count; remove the setting",
                plan.runtime.stage
            ))),
            None => Ok(()),
        };
    };
    let want = plan.runtime.partitions.unwrap_or(input);
    match count(&plan.events_topic)? {
        Some(n) if n != input => Err(RuntimeError::Setup(format!(
            "the audit topic `{}` has {n} partitions and its input `{}` {input}: the audit partition must be the input partition (never add partitions to an audit topic)",
            plan.events_topic, plan.runtime.input_topic
        ))),
        None if want != input => Err(RuntimeError::Setup(format!(
            "the audit stage `{}` would create `{}` with {want} partitions, its input has {input}; remove topics.partitions",
            plan.runtime.stage, plan.events_topic
        ))),
        _ => Ok(()),
    }
}

/// An audit run's totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditSummary {
    pub silver_events_read: u64,
    pub records: u64,
    pub checkpoints: u64,
}

/// A process-mining run's totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSummary {
    pub silver_events_read: u64,
    pub activities: u64,
}

/// A gold run's totals.
#[derive(Debug, Clone, Default)]
pub struct GoldSummary {
    pub elapsed: Duration,
    pub silver_events_read: u64,
    pub results: u64,
    pub late: u64,
    pub dead_letters: u64,
}

impl GoldSummary {
    fn from_metrics(m: &Metrics, elapsed: Duration) -> Self {
        GoldSummary {
            elapsed,
            silver_events_read: Metrics::sum(&m.records_read)
                - m.records_read.with_label_values(&["repartition"]).get(),
            results: m.out("queue_kpis"),
            late: m.out("late"),
            dead_letters: m.out(crate::metrics::OUT_DEAD_LETTER),
        }
    }
}

/// How one stage of [`stages`] ended.
#[derive(Debug)]
pub struct StageRun {
    pub stage: String,
    pub result: Result<StageSummary, RuntimeError>,
}

/// A stage's totals, by kind.
#[derive(Debug, Clone)]
pub enum StageSummary {
    Silver(RunSummary),
    Gold(GoldSummary),
    Process(ProcessSummary),
    Audit(AuditSummary),
}

/// Runs `stages` in this process, concurrently, until `stop` is set (or
/// each is idle, with `opts.exit_when_idle`). Each stage consumes as its
/// own group (`<opts.group_id>.<stage>`) and counts in its own metrics,
/// labelled `stage`; with `metrics_addr`, one endpoint serves them all, and
/// `/readyz` is ready once every stage is. A stage that fails stops the
/// others (each flushes and commits what it has). `on_ready` gets the bound
/// address.
pub async fn stages(
    stages: Vec<StagePlan>,
    opts: RunOptions,
    key: &MaskingKey,
    audit_key: Option<Arc<NoteSigner>>,
    stop: Arc<AtomicBool>,
    metrics_addr: Option<SocketAddr>,
    on_ready: Option<Box<dyn FnOnce(Option<SocketAddr>) + Send>>,
) -> Result<Vec<StageRun>, HttpError> {
    let metrics: Vec<Arc<Metrics>> = stages
        .iter()
        .map(|s| Arc::new(Metrics::for_stage(s.name())))
        .collect();
    let health: Vec<Arc<Health>> = stages.iter().map(|_| Arc::default()).collect();
    let server = match metrics_addr {
        Some(addr) => {
            let http_stop = stop.clone();
            let shutdown = async move {
                while !http_stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            Some(http::serve(addr, metrics.clone(), health.clone(), shutdown).await?)
        }
        None => None,
    };
    if let Some(f) = on_ready {
        f(server.as_ref().map(|(a, _)| *a));
    }
    let mut running = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for ((stage, m), h) in stages.into_iter().zip(metrics).zip(health) {
        let opts = RunOptions {
            metrics_addr: None,
            health: Some(h),
            ..opts.clone()
        };
        let (key, stop, audit_key) = (key.clone(), stop.clone(), audit_key.clone());
        let name = stage.name().to_string();
        let task = running.spawn(async move {
            let name = stage.name().to_string();
            let result = match stage {
                StagePlan::Silver(plan) => {
                    silver(Arc::new(plan), opts, &key, m, stop.clone(), None)
                        .await
                        .map(StageSummary::Silver)
                }
                StagePlan::Gold(plan) => gold(Arc::new(plan), opts, m, stop.clone(), None)
                    .await
                    .map(StageSummary::Gold),
                StagePlan::Process(plan) => process(Arc::new(plan), opts, m, stop.clone(), None)
                    .await
                    .map(StageSummary::Process),
                StagePlan::Audit(plan) => match audit_key {
                    Some(signer) => audit(Arc::new(plan), opts, signer, m, stop.clone(), None)
                        .await
                        .map(StageSummary::Audit),
                    None => Err(RuntimeError::Setup(format!(
                        "the audit stage `{name}` signs checkpoints and has no signing key: set {}",
                        crate::audit::keys::WHAT_TO_SET
                    ))),
                },
            };
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            StageRun {
                stage: name,
                result,
            }
        });
        names.insert(task.id(), name);
    }
    let mut runs = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(run) => runs.push(run),
            // A panicking stage task: the others stop too.
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                runs.push(StageRun {
                    stage: names.get(&e.id()).cloned().unwrap_or_default(),
                    result: Err(RuntimeError::Join(e.to_string())),
                });
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some((_, task)) = server {
        let _ = task.await;
    }
    Ok(runs)
}
