//! `cxstream demo`: the shipped topology on librdkafka's in-process mock
//! cluster, through the same runtime as `run`, with no broker to install.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config;
use crate::generate::{GenConfig, Generator};
use crate::metrics::Metrics;
use crate::runtime::client::{producer_config, send_retrying};
use crate::runtime::{ClientSettings, RunOptions};
use crate::secret::MaskingKey;
use crate::signal::shutdown_signal;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of interactions to generate (about 10 events each).
    #[arg(long, default_value_t = 3000)]
    pub interactions: usize,
    /// Input partitions on the mock cluster.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Address for /metrics while the demo runs (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_addr: SocketAddr,
    /// Topology to run.
    #[arg(long, default_value = "topologies/genesys-silver.toml")]
    pub topology: PathBuf,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Records per second the demo publishes while the processor runs.
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
    /// Also write the activity log's directly-follows graph here (.dot,
    /// .svg or .png; SVG and PNG need Graphviz's `dot`), as `cxstream mine
    /// dfg` would.
    #[arg(long, value_name = "FILE")]
    pub dfg: Option<PathBuf>,
}

type DemoResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub async fn run(args: DemoArgs) -> DemoResult {
    println!("cxstream demo: the shipped topology on librdkafka's in-process MOCK cluster.");
    println!("The mock cluster keeps nothing: every topic vanishes when the demo ends.");
    let topology = config::load(&args.topology)?;
    let plan = Arc::new(
        topology
            .silver()
            .cloned()
            .ok_or("the demo runs a silver stage; this topology has none")?,
    );
    let gold = topology.gold().cloned().map(Arc::new);
    let process = topology.process().cloned().map(Arc::new);
    let key = MaskingKey::ephemeral();
    println!("Masking key: an ephemeral random key for this run (tokens differ from run to run;");
    println!("`cxstream run` needs CXSTREAM_MASKING_KEY or --masking-key-file).\n");

    // Generate first, so the topics can be sized: librdkafka's mock cluster
    // keeps at most 5 MiB per partition and silently drops older records.
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("generating Genesys traffic");
    let mut gen = Generator::new(GenConfig {
        interactions: args.interactions,
        seed: args.seed,
        // A new conversation every 2 s (1,800 an hour): the default
        // 3,000 span more than an hour of event time, so gold closes at
        // least one full hour.
        interaction_spacing_ms: 2_000,
        collect_truth: true,
        ..GenConfig::default()
    });
    let input: Vec<_> = gen.by_ref().collect();
    bar.finish_and_clear();
    let bytes: u64 = input.iter().map(|r| r.value.len() as u64).sum();
    let records = input.len() as u64;
    let partitions = args.partitions.max(mock_partitions_for(bytes));

    let cluster = MockCluster::new(1)?;
    // The mock cluster does not implement topic creation through the admin
    // API, so the demo creates every topic the plan names up front.
    let mut topics = vec![
        &plan.runtime.input_topic,
        &plan.silver_topic,
        &plan.late_topic,
        &plan.runtime.dead_letter_topic,
        &plan.runtime.repartition_topic,
        &plan.runtime.changelog_topic,
    ];
    if let Some(g) = &gold {
        topics.extend([
            &g.kpis_topic,
            &g.late_topic,
            &g.runtime.repartition_topic,
            &g.runtime.changelog_topic,
        ]);
    }
    if let Some(p) = &process {
        topics.extend([
            &p.activities_topic,
            &p.runtime.repartition_topic,
            &p.runtime.changelog_topic,
        ]);
    }
    topics.sort();
    topics.dedup();
    for topic in topics {
        cluster.create_topic(topic, partitions, 1)?;
    }
    let brokers = cluster.bootstrap_servers();
    let settings = ClientSettings {
        brokers: brokers.clone(),
        extra: Vec::new(),
    };
    // Publish while the processor runs, as Genesys connectors do.
    let producer: BaseProducer = producer_config(&settings).create()?;
    let topic = plan.runtime.input_topic.clone();
    let rate = args.rate;
    let publisher = std::thread::spawn(move || -> Result<(), rdkafka::error::KafkaError> {
        let started = Instant::now();
        for (i, rec) in input.iter().enumerate() {
            let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&topic).payload(&rec.value);
            if let Some(k) = &rec.key {
                r = r.key(k);
            }
            send_retrying(&producer, r)?;
            if rate > 0.0 && i % 50 == 0 {
                let due = Duration::from_secs_f64(i as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        producer.flush(Duration::from_secs(60))
    });
    let truth = gen.into_truth();
    println!(
        "Input: {records} records ({:.1} MB) on {partitions} partitions, {} events incl. {} re-deliveries, {} malformed records, {} planted late.",
        bytes as f64 / 1e6,
        truth.events_sent,
        truth.duplicate_deliveries,
        truth.malformed_records,
        truth.planted_late.len()
    );

    let metrics = Arc::new(Metrics::for_stage(&plan.runtime.stage));
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        s2.store(true, Ordering::Relaxed);
    });
    let opts = RunOptions {
        brokers: brokers.clone(),
        group_id: "cxstream-demo".into(),
        overrides: Vec::new(),
        metrics_addr: Some(args.metrics_addr),
        health: None,
        exit_when_idle: Some(Duration::from_secs(3)),
        instance_id: None,
    };
    let on_ready: Box<dyn FnOnce(Option<SocketAddr>) + Send> = Box::new(|addr| {
        if let Some(a) = addr {
            println!("Metrics while it runs: http://{a}/metrics (also /healthz, /readyz)\n");
        }
    });
    println!(
        "Publishing {records} records at {} records/s while the processor runs…",
        args.rate
    );
    let started = Instant::now();
    let gold_metrics = gold
        .as_ref()
        .map(|g| Arc::new(Metrics::for_stage(&g.runtime.stage)));
    let gold_run = {
        let (gold, m, stop) = (gold.clone(), gold_metrics.clone(), stop.clone());
        let opts = RunOptions {
            metrics_addr: None,
            ..opts.clone()
        };
        async move {
            match (gold, m) {
                (Some(g), Some(m)) => Some(crate::run::gold(g, opts, m, stop, None).await),
                _ => None,
            }
        }
    };
    let process_run = {
        let (process, stop) = (process.clone(), stop.clone());
        let opts = RunOptions {
            metrics_addr: None,
            ..opts.clone()
        };
        async move {
            match process {
                Some(p) => {
                    let m = Arc::new(Metrics::for_stage(&p.runtime.stage));
                    Some(crate::run::process(p, opts, m, stop, None).await)
                }
                None => None,
            }
        }
    };
    let (summary, gold_summary, activities) = tokio::join!(
        crate::run::silver(
            plan.clone(),
            opts,
            &key,
            metrics.clone(),
            stop,
            Some(on_ready),
        ),
        gold_run,
        process_run
    );
    let summary = summary?;
    let gold_summary = gold_summary.transpose()?;
    let activities = activities.transpose()?;
    let busy = started.elapsed().saturating_sub(Duration::from_secs(3));
    publisher
        .join()
        .map_err(|_| "the publisher thread failed")??;

    let mut classes = BTreeMap::new();
    for (class, n) in labelled(&metrics.dead_letters) {
        classes.insert(class, n);
    }
    println!("Summary");
    println!(
        "  records read          {:>9}  (+{} repartitioned events and watermark markers)",
        metrics.records_read.with_label_values(&["input"]).get(),
        metrics
            .records_read
            .with_label_values(&["repartition"])
            .get()
    );
    println!("  events in             {:>9}", summary.events_in);
    println!("  silver                {:>9}", summary.silver);
    println!("  late                  {:>9}", summary.late);
    println!("  dead letters          {:>9}", summary.dead_letters);
    for (class, n) in &classes {
        println!("    {class:<20}{n:>9}");
    }
    println!("  duplicates dropped    {:>9}", summary.duplicates);
    println!("  filtered (media type) {:>9}", summary.filtered);
    println!(
        "  repartitioned         {:>9}  (records whose key was not their interaction)",
        summary.repartitioned
    );
    println!(
        "  accounting            {}",
        if summary.accounted() {
            "in = silver + late + dead letters + duplicates + filtered  ✓"
        } else {
            "DOES NOT ADD UP"
        }
    );
    println!(
        "  processed             {:>9.0} events/s (paced by the publisher; wall time incl. group join)",
        summary.events_in as f64 / busy.as_secs_f64().max(0.001)
    );
    println!(
        "  expected (generator)  {:>9} unique events, {} malformed",
        truth.unique_events.len(),
        truth.malformed_records
    );
    if let Some(sample) = sample_record(&brokers, &plan.silver_topic) {
        println!("\nA silver record (PII masked):\n{sample}");
    }
    if let (Some(g), Some(gs)) = (&gold, &gold_summary) {
        println!(
            "\nGold ({}): {} window results written to {}, {} silver events read.",
            g.runtime.stage, gs.results, g.kpis_topic, gs.silver_events_read
        );
        let results = read_topic(&brokers, &g.kpis_topic, partitions);
        let table = crate::gold::report::last_full_hour(&results);
        match table {
            Some(t) => println!("{t}"),
            None => println!(
                "  No full hour closed yet (the stream covers less than an hour of event time)."
            ),
        }
        if gs.dead_letters > 0 {
            return Err("gold dead-lettered silver records".into());
        }
    }
    if let (Some(p), Some(s)) = (&process, activities) {
        println!(
            "\nProcess mining ({}): {} activity records written to {} (one per activity, keyed by case), {} silver events read.",
            p.runtime.stage, s.activities, p.activities_topic, s.silver_events_read
        );
        mine(&brokers, &p.activities_topic, args.dfg.as_deref())?;
    }
    if !summary.accounted() {
        return Err("the accounting does not add up".into());
    }
    drop(cluster);
    Ok(())
}

/// The top variants of the activity log (`cxstream mine variants`) and,
/// if asked, its directly-follows graph (`cxstream mine dfg`).
fn mine(brokers: &str, topic: &str, dfg: Option<&std::path::Path>) -> DemoResult {
    let src = crate::export::Source {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        client: Vec::new(),
        selection: crate::mining::Selection::default(),
        linger: 10_000,
        quiet: true,
        stall: Duration::from_secs(20),
    };
    let (variants, _) = crate::export::variants(&src, Duration::from_secs(120))?;
    println!("The most frequent journeys (`cxstream mine variants`):");
    print!("{}", variants.report(3));
    if let Some(out) = dfg {
        let (g, _) = crate::export::dfg(&src)?;
        // The main paths: edges of at least 2 % of the cases.
        let min_count = g.cases / 50;
        crate::export::write_graph(&g, out, min_count)?;
        println!(
            "Wrote the directly-follows graph ({} activities, {} edges over {} cases; edges under {min_count} left out) to {}.",
            g.activities.len(),
            g.edges.len(),
            g.cases,
            out.display()
        );
    }
    Ok(())
}

/// Every record (key, value) of `topic`, from its beginning to its end
/// (its high watermarks when the read starts).
fn read_topic(brokers: &str, topic: &str, partitions: i32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(consumer) = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cxstream-demo-report")
        .set("enable.auto.commit", "false")
        .create::<BaseConsumer>()
    else {
        return Vec::new();
    };
    let mut tpl = TopicPartitionList::new();
    let mut want: BTreeMap<i32, i64> = BTreeMap::new();
    for p in 0..partitions {
        if let Ok((_, high)) = consumer.fetch_watermarks(topic, p, Duration::from_secs(5)) {
            if high > 0 {
                want.insert(p, high);
                let _ = tpl.add_partition_offset(topic, p, Offset::Beginning);
            }
        }
    }
    if want.is_empty() || consumer.assign(&tpl).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !want.is_empty() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if let (Some(k), Some(v)) = (m.key(), m.payload()) {
                out.push((k.to_vec(), v.to_vec()));
            }
            if want
                .get(&m.partition())
                .is_some_and(|h| m.offset() + 1 >= *h)
            {
                want.remove(&m.partition());
            }
        }
    }
    out
}

/// Partitions needed so that no mock partition exceeds ~3 MB of input (the
/// mock keeps 5 MiB per partition; outputs are about as large as the input).
fn mock_partitions_for(bytes: u64) -> i32 {
    i32::try_from(bytes.div_ceil(3_000_000))
        .unwrap_or(i32::MAX)
        .max(1)
}

fn labelled(v: &prometheus::IntCounterVec) -> Vec<(String, u64)> {
    use prometheus::core::Collector;
    v.collect()
        .iter()
        .flat_map(|mf| mf.get_metric().iter())
        .map(|m| {
            let label = m
                .get_label()
                .first()
                .map(|l| l.value().to_string())
                .unwrap_or_default();
            (label, m.get_counter().get_value() as u64)
        })
        .collect()
}

/// Reads one acd.end (or any) silver record, pretty-printed.
fn sample_record(brokers: &str, topic: &str) -> Option<String> {
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // librdkafka wants a group id even for assign(); this one never joins.
        .set("group.id", "cxstream-demo-sample")
        .set("enable.auto.commit", "false")
        .create()
        .ok()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).ok()?;
    consumer.assign(&tpl).ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut fallback = None;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload()?).ok()?;
            let pretty = serde_json::to_string_pretty(&v).ok()?;
            if v["event_type"] == "acw" {
                return Some(pretty);
            }
            fallback.get_or_insert(pretty);
        }
    }
    fallback
}
