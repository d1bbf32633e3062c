//! Running a topology: builds its stage and runs it on the Kafka runtime.
//! The command line, the demo, the benchmark and the tests start jobs here,
//! so the runtime itself stays generic over stages.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::SilverPlan;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
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
