//! The `cxstream` command line.

mod audit;
mod mining;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::config;
use crate::demo::DemoArgs;
use crate::generate::{GenConfig, Generator};
use crate::runtime::client::{parse_kv, producer_config, send_retrying, CountingContext};
use crate::runtime::{self, ClientSettings, RunOptions};
use crate::secret::{MaskingKey, MASKING_KEY_ENV};
use crate::signal::shutdown_signal;

#[derive(Debug, Parser)]
#[command(
    name = "cxstream",
    version,
    about = "Genesys Cloud CX events on Kafka: bronze to silver, masked, de-duplicated, ordered, with lineage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a topology against a Kafka cluster until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Check a topology file and print its plan.
    Validate {
        /// Topology file (TOML).
        file: PathBuf,
    },
    /// Write synthetic Genesys traffic to a topic or stdout.
    Generate(GenerateArgs),
    /// Run the shipped topology on an in-process mock cluster (no broker needed).
    Demo(DemoArgs),
    /// Write the activity log (or a range of it) as XES or OCEL 2.0.
    Export(mining::ExportArgs),
    /// Discover from the activity log: the directly-follows graph, variants.
    #[command(subcommand)]
    Mine(mining::MineCommand),
    /// The audit trail: keys, verification.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Topology file (TOML).
    #[arg(long)]
    pub topology: PathBuf,
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT…].
    #[arg(long)]
    pub brokers: String,
    /// Consumer group id (instances of one deployment share it); each stage
    /// consumes as `<group id>.<stage name>`.
    #[arg(long, default_value = "cxstream")]
    pub group_id: String,
    /// Run only this stage of the topology (default: every stage, in this
    /// process). Stages scale on their own: run each on its own machines.
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
    /// File holding the masking key (its bytes; one trailing newline trimmed).
    /// Otherwise the key comes from CXSTREAM_MASKING_KEY (one trailing
    /// newline trimmed too). An empty or white-space-only key is refused.
    #[arg(long)]
    pub masking_key_file: Option<PathBuf>,
    /// File holding the audit stage's signing key (Ed25519, PKCS#8 PEM);
    /// otherwise the file CXSTREAM_AUDIT_KEY_FILE names. An audit stage
    /// does not start without one (`cxstream audit keygen` writes one).
    #[arg(long, value_name = "PATH")]
    pub audit_key_file: Option<PathBuf>,
    /// librdkafka client setting, as kcat's -X (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub client: Vec<(String, String)>,
    /// Stop once no record has arrived for this long and everything is
    /// delivered (batch runs, tests), e.g. "5s".
    #[arg(long, value_parser = humantime::parse_duration)]
    pub exit_when_idle: Option<Duration>,
    /// Names this instance; with `runtime.delivery = "transactions"` the
    /// transactional id is `<runtime.transactional_id or group id>.<instance id>`.
    /// Give each instance a stable one (e.g. the pod name) so a restarted
    /// instance aborts its predecessor's open transaction at once.
    #[arg(long)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of interactions (conversations).
    #[arg(long, default_value_t = 1000)]
    pub interactions: usize,
    /// Random seed (same seed, same stream).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 5.0)]
    pub duplicate_pct: f64,
    #[arg(long, default_value_t = 10.0)]
    pub disorder_pct: f64,
    #[arg(long, default_value_t = 1.0)]
    pub late_pct: f64,
    #[arg(long, default_value_t = 0.5)]
    pub malformed_pct: f64,
    /// Percentage of records with an older SDK body, a future version, or
    /// ISO/string event times (split evenly).
    #[arg(long, default_value_t = 10.0)]
    pub drift_pct: f64,
    /// Write to this topic (with --brokers); otherwise JSON Lines to stdout.
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub brokers: Option<String>,
    /// Partitions when the topic has to be created.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub client: Vec<(String, String)>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init_tracing();
    let result = match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Run(args) => tokio_main(run(args)),
        Command::Generate(args) => tokio_main(generate(args)),
        Command::Demo(args) => tokio_main(crate::demo::run(args)),
        Command::Export(args) => mining::export(args),
        Command::Mine(cmd) => mining::mine(cmd),
        Command::Audit(cmd) => audit::audit(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn tokio_main<F: std::future::Future<Output = CliResult>>(f: F) -> CliResult {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f)
}

fn validate(file: &std::path::Path) -> CliResult {
    let topology = config::load(file)?;
    println!("{}: valid", file.display());
    println!("topology: {}", topology.name);
    for stage in &topology.stages {
        print_stage(stage);
    }
    Ok(())
}

/// One stage's plan, as `validate` prints it.
fn print_stage(stage: &config::StagePlan) {
    let rt = stage.runtime();
    println!("stage {} (kind {}):", rt.stage, stage.kind());
    println!("  group:       <group id>.{}", rt.stage);
    println!("  input:       {}", rt.input_topic);
    for co in &rt.co_inputs {
        println!("  input:       {co} (co-partitioned)");
    }
    match stage {
        config::StagePlan::Silver(plan) => print_silver(plan),
        config::StagePlan::Gold(plan) => print_gold(plan),
        config::StagePlan::Process(plan) => print_process(plan),
        config::StagePlan::Audit(plan) => print_audit(plan),
    }
    println!("  dead letter: {}", rt.dead_letter_topic);
    println!("  repartition: {}", rt.repartition_topic);
    println!("  changelog:   {}", rt.changelog_topic);
    println!(
        "  delivery:    {}, commit every {:?}, at most {} outputs in flight",
        rt.delivery.name(),
        rt.commit_interval,
        rt.max_in_flight
    );
    println!(
        "  dead letters: by reference (first {} bytes) when a record would not fit",
        rt.dead_letter_prefix
    );
}

fn print_audit(plan: &config::AuditPlan) {
    let c = &plan.chain;
    println!(
        "  events:      {} (one record per state change, keyed by interaction id)",
        plan.events_topic
    );
    println!(
        "  checkpoints: {} (signed by `{}`, origin {}/{}/<partition>)",
        plan.checkpoints_topic, c.key_name, c.origin, plan.events_topic
    );
    println!(
        "  cadence:     a checkpoint after {} records or {:?} with new records; ended chains kept {:?}",
        c.checkpoint_every, c.checkpoint_interval, c.ended_retention
    );
}

fn print_gold(plan: &config::GoldPlan) {
    let w = &plan.windows;
    let d = |ms: i64| {
        humantime::format_duration(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ))
        .to_string()
    };
    println!("  port queue_kpis: {} (json)", plan.kpis_topic);
    println!("  port late:   {} (json)", plan.late_topic);
    println!(
        "  windows:     {} tumbling, by event time; first result at end + grace {}{}, corrections for {}",
        w.sizes_ms.iter().map(|s| d(*s)).collect::<Vec<_>>().join(", "),
        d(w.grace_ms),
        if plan.grace_set { "" } else { " (the silver lateness)" },
        d(w.horizon_ms)
    );
    let k = &w.kpi;
    println!(
        "  kpis:        service level target {}, short abandon within {}, short abandons {} the denominator, flow-outs {}",
        d(k.service_level_target_ms),
        d(k.short_abandon_threshold_ms),
        if k.exclude_short_abandons { "out of" } else { "in" },
        if k.include_flow_outs { "in it" } else { "not in it" }
    );
}

fn print_process(plan: &config::ProcessPlan) {
    use crate::process::vocabulary::Activity;
    let c = &plan.cases;
    let d = |ms: i64| {
        humantime::format_duration(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ))
        .to_string()
    };
    println!("  port activities: {} (json)", plan.activities_topic);
    println!(
        "  cases:       close at customer.end or after {} without events; closed cases kept {}",
        d(c.case_timeout_ms),
        d(c.closed_retention_ms)
    );
    let changed: Vec<String> = Activity::ALL
        .iter()
        .filter_map(|a| match c.vocabulary.name(*a) {
            None => Some(format!("{} dropped", a.default_name())),
            Some(n) if n != a.default_name() => Some(format!("{} -> {n}", a.default_name())),
            _ => None,
        })
        .collect();
    println!(
        "  vocabulary:  default{}",
        if changed.is_empty() {
            String::new()
        } else {
            format!(", {}", changed.join(", "))
        }
    );
}

fn print_silver(plan: &config::SilverPlan) {
    println!("  port silver: {} (json)", plan.silver_topic);
    println!("  port late:   {} (json)", plan.late_topic);
    println!("  chain:       {}", plan.chain.join(" -> "));
    let b = &plan.event_time_bounds;
    println!(
        "  event time:  at most {} ahead of the record, not before {} (else dead letter implausible_event_time)",
        b.max_future_skew
            .map_or("any".to_string(), |d| humantime::format_duration(d).to_string()),
        b.min_event_time_ms
            .map_or("any time".to_string(), crate::model::format_iso_ms)
    );
    if let Some(r) = &plan.reorder {
        println!(
            "  reorder:     lateness {:?}, idle {:?}, max {} buffered/partition, watermark jumps over {} need {} events",
            r.allowed_lateness,
            r.idle_timeout,
            r.max_buffered,
            humantime::format_duration(r.progress.jump),
            r.progress.quorum
        );
    }
    if let Some(d) = &plan.dedup {
        println!(
            "  dedup:       ttl {:?}, max {} keys/partition",
            d.ttl, d.max_keys
        );
    }
}

async fn run(args: RunArgs) -> CliResult {
    let topology = config::load(&args.topology)?;
    let stages: Vec<config::StagePlan> = match &args.stage {
        Some(name) => match topology.stage(name) {
            Some(s) => vec![s.clone()],
            None => {
                return Err(format!(
                    "--stage {name}: {} has no such stage; its stages: {}",
                    args.topology.display(),
                    topology.stage_names().join(", ")
                )
                .into())
            }
        },
        None => topology.stages.clone(),
    };
    let key = MaskingKey::load(
        args.masking_key_file.as_deref(),
        std::env::var(MASKING_KEY_ENV).ok(),
    )?;
    let audit_key = match stages.iter().find_map(|s| match s {
        config::StagePlan::Audit(a) => Some(a),
        _ => None,
    }) {
        Some(a) => match crate::audit::keys::load_signer(
            args.audit_key_file.as_deref(),
            std::env::var(crate::audit::keys::AUDIT_KEY_FILE_ENV).ok(),
            &a.chain.key_name,
        )? {
            Some(k) => Some(Arc::new(k)),
            None => {
                return Err(format!(
                    "the audit stage `{}` signs checkpoints: set {}",
                    a.runtime.stage,
                    crate::audit::keys::WHAT_TO_SET
                )
                .into())
            }
        },
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Stop requested: flushing buffers and committing.");
        s2.store(true, Ordering::Relaxed);
    });
    let opts = RunOptions {
        brokers: args.brokers,
        group_id: args.group_id,
        overrides: args.client,
        metrics_addr: None,
        health: None,
        exit_when_idle: args.exit_when_idle,
        instance_id: args.instance_id,
    };
    let on_ready: Box<dyn FnOnce(Option<SocketAddr>) + Send> = Box::new(|addr| {
        if let Some(a) = addr {
            tracing::info!(addr = %a, "Serving /metrics, /healthz, /readyz.");
        }
    });
    let runs = crate::run::stages(
        stages,
        opts,
        &key,
        audit_key,
        stop,
        Some(args.metrics_addr),
        Some(on_ready),
    )
    .await?;
    let mut failed = None;
    for run in runs {
        match run.result {
            Ok(crate::run::StageSummary::Silver(s)) => log_silver_summary(&run.stage, &s),
            Ok(crate::run::StageSummary::Process(s)) => tracing::info!(
                stage = %run.stage,
                silver_events_read = s.silver_events_read,
                activities = s.activities,
                "Stopped."
            ),
            Ok(crate::run::StageSummary::Audit(s)) => tracing::info!(
                stage = %run.stage,
                silver_events_read = s.silver_events_read,
                records = s.records,
                checkpoints = s.checkpoints,
                "Stopped."
            ),
            Ok(crate::run::StageSummary::Gold(s)) => tracing::info!(
                stage = %run.stage,
                silver_events_read = s.silver_events_read,
                results = s.results,
                late = s.late,
                dead_letters = s.dead_letters,
                "Stopped."
            ),
            Err(e) => {
                tracing::error!(stage = %run.stage, error = %e, "Stage stopped with an error.");
                failed.get_or_insert(format!("stage {}: {e}", run.stage));
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn log_silver_summary(stage: &str, s: &crate::silver::RunSummary) {
    tracing::info!(
        stage,
        events_in = s.events_in,
        silver = s.silver,
        late = s.late,
        dead_letters = s.dead_letters,
        duplicates = s.duplicates,
        filtered = s.filtered,
        handed_over = s.handed_over,
        repartitioned = s.repartitioned,
        repartitioned_in = s.repartitioned_in,
        accounted = s.accounted(),
        "Stopped."
    );
}

async fn generate(args: GenerateArgs) -> CliResult {
    let drift = args.drift_pct / 4.0;
    let mut cfg = GenConfig {
        interactions: args.interactions,
        seed: args.seed,
        duplicate_pct: args.duplicate_pct,
        disorder_pct: args.disorder_pct,
        late_pct: args.late_pct,
        malformed_pct: args.malformed_pct,
        collect_truth: false,
        ..GenConfig::default()
    };
    cfg.version_mix.iso_time_pct = drift;
    cfg.version_mix.numeric_string_time_pct = drift;
    cfg.version_mix.old_sdk_pct = drift;
    cfg.version_mix.future_pct = drift;
    let gen = Generator::new(cfg);
    let started = Instant::now();
    let mut sent = 0u64;
    let pace = |sent: u64| {
        if args.rate > 0.0 {
            let due = Duration::from_secs_f64(sent as f64 / args.rate);
            let el = started.elapsed();
            if due > el {
                std::thread::sleep(due - el);
            }
        }
    };
    match (&args.topic, &args.brokers) {
        (Some(topic), Some(brokers)) => {
            let settings = ClientSettings {
                brokers: brokers.clone(),
                extra: args.client.clone(),
            };
            let exists =
                runtime::client::partition_count(&settings, topic, Duration::from_secs(10))?;
            if exists.is_none() {
                runtime::client::ensure_topics(&settings, &[topic], args.partitions, -1).await?;
            }
            let producer: BaseProducer<CountingContext> =
                producer_config(&settings).create_with_context(CountingContext::default())?;
            for rec in gen {
                let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&rec.value);
                if let Some(k) = &rec.key {
                    r = r.key(k);
                }
                send_retrying(&producer, r)?;
                sent += 1;
                pace(sent);
            }
            producer.flush(Duration::from_secs(60))?;
            let failed = producer.context().failed();
            if failed > 0 {
                return Err(format!(
                    "{failed} of {sent} records could not be delivered to {topic}"
                )
                .into());
            }
            eprintln!(
                "generated {sent} records to {topic} in {:.1?}",
                started.elapsed()
            );
        }
        (None, None) => {
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            for rec in gen {
                w.write_all(&rec.value)?;
                w.write_all(b"\n")?;
                sent += 1;
                pace(sent);
            }
            w.flush()?;
        }
        _ => return Err("--topic and --brokers go together (or neither, for stdout)".into()),
    }
    Ok(())
}
