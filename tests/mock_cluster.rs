//! The whole pipeline on librdkafka's in-process mock cluster (no broker
//! process): generated traffic with duplicates, disorder, late events, drift
//! and malformed records, checked against the generator's ground truth.
//! (The mock keeps at most 5 MiB per partition, so the volume is kept small.)

mod common;

use std::time::Duration;

use cxstream::generate::GenConfig;
use rdkafka::mocking::MockCluster;

/// Creates every topic `plan` names with `partitions` partitions (the mock
/// cluster does not implement topic creation through the admin API).
fn create_topics<C: rdkafka::ClientContext>(
    cluster: &MockCluster<'_, C>,
    plan: &cxstream::config::SilverPlan,
    partitions: i32,
) {
    for topic in [
        &plan.runtime.input_topic,
        &plan.silver_topic,
        &plan.late_topic,
        &plan.runtime.dead_letter_topic,
        &plan.runtime.repartition_topic,
        &plan.runtime.changelog_topic,
    ] {
        cluster.create_topic(topic, partitions, 1).expect("topic");
    }
}

/// Catch-up over a pre-loaded backlog.
#[test]
fn silver_pipeline_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let plan = common::shipped_plan();
    create_topics(&cluster, &plan, 8);
    let brokers = cluster.bootstrap_servers();
    let truth = common::produce(
        &brokers,
        &plan.runtime.input_topic,
        GenConfig {
            interactions: 1200,
            seed: 11,
            collect_truth: true,
            ..GenConfig::default()
        },
    );
    let (summary, _metrics) =
        common::run_pipeline(&brokers, plan.clone(), "mock-test", Duration::from_secs(3));
    assert!(
        summary.repartitioned > 0,
        "records with wrong keys were repartitioned"
    );
    common::check_all(&brokers, &plan, &truth, &summary, false);
}

/// The idle exit waits until every partition this instance owns, input and
/// repartition, was read to its end once. Events wait on both topics (as
/// after a crash, when a dead instance had forwarded records that nobody
/// has read yet), and the idle limit is shorter than the time it takes to
/// fetch them: an instance that judged idleness by what it had read so far
/// (nothing) would exit at once, leaving them unread.
#[test]
fn idle_exit_waits_until_every_owned_partition_was_read_to_its_end() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let plan = common::shipped_plan();
    create_topics(&cluster, &plan, 4);
    let brokers = cluster.bootstrap_servers();
    let clean = |seed| GenConfig {
        interactions: 150,
        seed,
        collect_truth: true,
        malformed_pct: 0.0,
        batch_pct: 0.0,
        bad_key_pct: 0.0,
        ..GenConfig::default()
    };
    let mut truth = common::produce(&brokers, &plan.runtime.input_topic, clean(21));
    let forwarded = common::produce(&brokers, &plan.runtime.repartition_topic, clean(22));
    assert!(!forwarded.unique_events.is_empty());
    truth.unique_events.extend(forwarded.unique_events);
    let (summary, _metrics) = common::run_pipeline(
        &brokers,
        plan.clone(),
        "idle-test",
        Duration::from_millis(1),
    );
    eprintln!("{summary:?}");
    common::check_exactly_once(&truth, &common::read_outputs(&brokers, &plan));
}

/// Two stages of one topology in one process (as `cxstream run` runs a
/// topology): each reads its own input, writes its own ports, counts in its
/// own metrics and commits as its own group, `<group id>.<stage>`.
#[test]
fn two_stages_run_in_one_process_each_as_its_own_group() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    // The shipped silver stage, and a second one like it (without gold).
    let shipped = &shipped[..shipped
        .find("\n[[stages]]\nname = \"gold\"")
        .unwrap_or(shipped.len())];
    let block = &shipped[shipped.find("\n[[stages]]\n").expect("a stage") + 1..];
    let eu = block
        .replacen("name = \"silver\"", "name = \"eu\"", 1)
        .replace("genesys.bronze.events", "genesys.bronze.eu")
        .replace("cx.silver.events", "cx.eu.events")
        .replace("cx.silver.late", "cx.eu.late")
        .replace("\"cx.dlq\"", "\"cx.eu.dlq\"")
        .replace(
            "cx.internal.genesys-silver.",
            "cx.internal.genesys-silver.eu.",
        );
    let text = format!("{shipped}\n{eu}");
    let topology = cxstream::config::parse(&text, "two-stages.toml").expect("topology");
    assert_eq!(topology.stage_names(), ["silver", "eu"]);
    let plans: Vec<cxstream::config::SilverPlan> = topology
        .stages
        .iter()
        .filter_map(|s| match s {
            cxstream::config::StagePlan::Silver(p) => Some(p.clone()),
            _ => None,
        })
        .collect();

    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let truths: Vec<_> = plans
        .iter()
        .zip([31, 32])
        .map(|(plan, seed)| {
            create_topics(&cluster, plan, 4);
            common::produce(
                &brokers,
                &plan.runtime.input_topic,
                GenConfig {
                    interactions: 200,
                    seed,
                    collect_truth: true,
                    ..GenConfig::default()
                },
            )
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let key = cxstream::secret::MaskingKey::from_bytes("test-masking-key").expect("key");
    let opts = cxstream::runtime::RunOptions {
        brokers: brokers.clone(),
        group_id: "two".into(),
        overrides: common::test_overrides(),
        metrics_addr: None,
        health: None,
        exit_when_idle: Some(Duration::from_secs(3)),
        instance_id: None,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = rt
        .block_on(cxstream::run::stages(
            topology.stages.clone(),
            opts,
            &key,
            None,
            stop,
            None,
            None,
        ))
        .expect("stages run");
    assert_eq!(runs.len(), 2);
    for (plan, truth) in plans.iter().zip(&truths) {
        let name = &plan.runtime.stage;
        let run = runs
            .iter()
            .find(|r| &r.stage == name)
            .expect("each stage ran");
        let summary = match &run.result {
            Ok(cxstream::run::StageSummary::Silver(s)) => s,
            Ok(other) => panic!("stage {name} is silver, yet summed up as {other:?}"),
            Err(e) => panic!("stage {name}: {e}"),
        };
        eprintln!("[{name}] {summary:?}");
        // Each stage's metrics count its own input only.
        common::check_accounting(truth, summary);
        let ends = common::check_outputs(&brokers, plan, truth, None);
        common::tansu::check_committed_to_end(
            &brokers,
            &plan.runtime.group_id("two"),
            &plan.runtime.input_topic,
            &ends,
        );
    }
}

/// One in-process instance of the runtime, stopped by its flag (as SIGTERM
/// stops `cxstream run`).
struct Instance {
    name: &'static str,
    metrics: std::sync::Arc<cxstream::metrics::Metrics>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<cxstream::silver::RunSummary>,
}

impl Instance {
    fn start(
        brokers: &str,
        plan: &cxstream::config::SilverPlan,
        group: &str,
        name: &'static str,
    ) -> Self {
        Self::start_with(brokers, plan, group, name, &[])
    }

    /// As [`Instance::start`], with extra client settings (`-X`).
    fn start_with(
        brokers: &str,
        plan: &cxstream::config::SilverPlan,
        group: &str,
        name: &'static str,
        extra: &[(&str, &str)],
    ) -> Self {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        // CXSTREAM_LOG=debug shows the instances' logs (e.g. rebalances).
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CXSTREAM_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let metrics = Arc::new(cxstream::metrics::Metrics::new());
        let stop = Arc::new(AtomicBool::new(false));
        let opts = cxstream::runtime::RunOptions {
            brokers: brokers.to_string(),
            group_id: group.to_string(),
            // The runtime's defaults: cooperative-sticky assignment.
            overrides: common::test_overrides()
                .into_iter()
                .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            metrics_addr: None,
            health: None,
            exit_when_idle: None,
            instance_id: Some(name.to_string()),
        };
        let (m2, s2) = (metrics.clone(), stop.clone());
        let plan = Arc::new(plan.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio");
            let key = cxstream::secret::MaskingKey::from_bytes("test-masking-key").expect("key");
            rt.block_on(cxstream::run::silver(plan, opts, &key, m2, s2, None))
                .expect("instance run")
        });
        Instance {
            name,
            metrics,
            stop,
            thread,
        }
    }

    fn moved(&self, kind: &str) -> u64 {
        self.metrics
            .partitions_moved
            .with_label_values(&[kind])
            .get()
    }

    fn owned(&self) -> i64 {
        self.metrics.assigned_partitions.get()
    }

    fn stop(self) -> cxstream::silver::RunSummary {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let name = self.name;
        let s = self.thread.join().expect("instance thread");
        eprintln!("[{name}] stopped: {s:?}");
        s
    }
}

/// Waits until `cond` holds (at most `limit`).
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scale-out with the runtime's default assignor (cooperative-sticky) on a
/// broker whose group coordinator implements the protocol (librdkafka's
/// mock): a second instance joins while the first processes, the first
/// stops mid-stream, a third joins. Partitions that stay are never revoked
/// (no stop-the-world), every partition ends up processed, and every unique
/// event appears exactly once across silver and late.
#[test]
fn scale_out_with_cooperative_sticky_moves_only_what_moves() {
    const PARTITIONS: i32 = 8;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let plan = common::shipped_plan();
    create_topics(&cluster, &plan, PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let group = "scale-coop";
    let producer = common::produce_paced(
        &brokers,
        &plan.runtime.input_topic,
        GenConfig {
            interactions: 1_500,
            seed: 77,
            interaction_spacing_ms: 20,
            collect_truth: true,
            ..GenConfig::default()
        },
        // ~17,000 records over ~35 s: the stream outlasts every step below.
        500.0,
    );
    let a = Instance::start(&brokers, &plan, group, "a");
    wait_until(
        "a restored every partition",
        Duration::from_secs(60),
        || a.metrics.restores.get() >= PARTITIONS as u64,
    );
    std::thread::sleep(Duration::from_secs(1));

    let b = Instance::start(&brokers, &plan, group, "b");
    wait_until(
        "b took over part of the partitions",
        Duration::from_secs(60),
        || {
            let (ao, bo) = (a.owned(), b.owned());
            bo > 0 && ao + bo == i64::from(PARTITIONS) && b.metrics.restores.get() >= bo as u64
        },
    );
    // Incremental: a gave up exactly the partitions b took and was never
    // handed any back (an eager rebalance revokes all 8 and reassigns).
    assert_eq!(a.moved("assigned"), PARTITIONS as u64, "a re-assigned");
    assert_eq!(
        a.moved("revoked") as i64,
        b.owned(),
        "a revoked more than moved"
    );
    assert_eq!(a.moved("lost"), 0);
    std::thread::sleep(Duration::from_secs(1));

    let b_before = b.moved("assigned");
    let a_summary = a.stop();
    let c = Instance::start(&brokers, &plan, group, "c");
    wait_until(
        "b and c own every partition",
        Duration::from_secs(60),
        || b.owned() + c.owned() == i64::from(PARTITIONS) && c.owned() > 0,
    );
    // b kept what it had and only took partitions over.
    assert_eq!(b.moved("lost"), 0);
    assert!(b.moved("assigned") >= b_before, "b");
    assert!(
        b.moved("revoked") <= b.moved("assigned") - b_before,
        "b gave up more than it took ({} revoked, {} newly assigned)",
        b.moved("revoked"),
        b.moved("assigned") - b_before
    );
    assert!(a_summary.silver > 0, "a processed before it stopped");

    let truth = producer.join().expect("producer");
    common::tansu::wait_committed_to_end(
        &brokers,
        &plan.runtime.group_id(group),
        &plan.runtime.input_topic,
        &plan.runtime.repartition_topic,
        PARTITIONS,
        Duration::from_secs(120),
    );
    let (bs, cs) = (b.stop(), c.stop());
    assert!(
        bs.silver > 0 && cs.silver > 0,
        "both processed: b {bs:?}, c {cs:?}"
    );
    let ends = common::check_outputs(&brokers, &plan, &truth, None);
    common::tansu::check_committed_to_end(
        &brokers,
        &plan.runtime.group_id(group),
        &plan.runtime.input_topic,
        &ends,
    );
}

/// Backpressure: while the broker refuses every produce, the instance stops
/// reading once `runtime.max_in_flight` records wait for acknowledgements
/// (consumption paused, memory bounded), then resumes by itself when the
/// broker accepts produces again, and loses nothing. The input is many
/// times the bound, so a bound that did not hold would show.
#[test]
fn slow_outputs_pause_consumption_and_it_resumes_by_itself() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    const MAX_IN_FLIGHT: usize = 100;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let mut plan = common::shipped_plan();
    plan.reorder = None;
    plan.runtime.max_in_flight = MAX_IN_FLIGHT;
    // No reorder buffer, so each event read is an output produced at once
    // (events held in a reorder buffer are bounded by its `max_buffered`,
    // not by this limit), and one partition: no watermark markers. About 3,800
    // records (4.2 MB: the mock keeps at most 5 MiB per partition, so the
    // silver topic, whose records are larger, gets 4 partitions).
    for topic in [
        &plan.runtime.input_topic,
        &plan.late_topic,
        &plan.runtime.dead_letter_topic,
        &plan.runtime.repartition_topic,
        &plan.runtime.changelog_topic,
    ] {
        cluster.create_topic(topic, 1, 1).expect("topic");
    }
    cluster
        .create_topic(&plan.silver_topic, 4, 1)
        .expect("silver topic");
    let brokers = cluster.bootstrap_servers();
    // Small input batches: a fetch returns whole batches, however small
    // the fetch size asked for.
    let truth = common::produce_with(
        &brokers,
        &plan.runtime.input_topic,
        GenConfig {
            interactions: 350,
            seed: 21,
            // In order (no reorder buffer to order it).
            disorder_pct: 0.0,
            late_pct: 0.0,
            collect_truth: true,
            ..GenConfig::default()
        },
        &[("batch.size", "16384")],
    );
    assert!(truth.events_sent > 3_000, "{} events", truth.events_sent);
    let group = "backpressure";
    // Every produce request fails (retriably) until cleared: nothing the
    // instance writes is acknowledged, so its outputs stay in flight.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 5_000],
    );
    // Small fetches and a short local queue: what one poll round can read
    // beyond the limit is librdkafka's prefetch (about 100 records here),
    // not the whole partition.
    let a = Instance::start_with(
        &brokers,
        &plan,
        group,
        "a",
        &[
            ("max.partition.fetch.bytes", "32768"),
            ("queued.min.messages", "50"),
        ],
    );
    wait_until("consumption paused", Duration::from_secs(60), || {
        a.metrics.paused.get() == 1
    });
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(a.metrics.produce_unacknowledged.get());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        a.metrics.paused.get(),
        1,
        "still paused while nothing is acknowledged"
    );
    let read_while_paused = a.metrics.events_in.get();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        a.metrics.events_in.get(),
        read_while_paused,
        "nothing is read while paused"
    );
    eprintln!(
        "paused after {read_while_paused} of {} events, {peak} records unacknowledged (limit {MAX_IN_FLIGHT})",
        truth.events_sent
    );
    // Reading stopped near the limit, far from the input's end.
    assert!(
        read_while_paused < truth.events_sent / 4,
        "read {read_while_paused} of {} events while nothing was acknowledged",
        truth.events_sent
    );
    assert!(
        peak >= MAX_IN_FLIGHT as i64 && peak <= (4 * MAX_IN_FLIGHT) as i64,
        "{peak} records unacknowledged with a limit of {MAX_IN_FLIGHT}"
    );
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    wait_until("consumption resumed", Duration::from_secs(120), || {
        a.metrics.paused.get() == 0
    });
    common::tansu::wait_committed_to_end(
        &brokers,
        &plan.runtime.group_id(group),
        &plan.runtime.input_topic,
        &plan.runtime.repartition_topic,
        1,
        Duration::from_secs(120),
    );
    let summary = a.stop();
    // Nothing is planted late here, so there is no late set to check.
    common::check_accounting(&truth, &summary);
    common::check_outputs(&brokers, &plan, &truth, None);
}

/// Watermark alignment: partition 1 holds a single early record and then
/// nothing (it turns idle only after `idle_timeout`), partition 0 the whole
/// backlog. Partition 0's events wait for partition 1's progress; instead of
/// buffering up to `max_buffered` and force-releasing events ahead of the
/// watermark, its reading pauses at the alignment limit and resumes where it
/// stopped. Nothing is lost, duplicated, disordered or wrongly late.
#[test]
fn a_partition_ahead_of_another_pauses_instead_of_force_releasing() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let mut plan = common::shipped_plan();
    if let Some(r) = plan.reorder.as_mut() {
        // Alignment limit max(1,000 / 4, min(10,000, 500)) = 500 events.
        r.max_buffered = 1_000;
    }
    create_topics(&cluster, &plan, 2);
    let brokers = cluster.bootstrap_servers();
    let truth = common::produce_partitioned(
        &brokers,
        &plan.runtime.input_topic,
        GenConfig {
            // About 3,500 records: under the mock's 5 MiB per partition.
            interactions: 300,
            seed: 31,
            collect_truth: true,
            ..GenConfig::default()
        },
        &mut |i| Some(if i == 0 { 1 } else { 0 }),
    );
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CXSTREAM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let (summary, metrics) =
        common::run_pipeline(&brokers, plan.clone(), "align", Duration::from_secs(4));
    assert!(
        metrics.hold_backs.get() >= 1,
        "partition 0 was paused while partition 1 held its watermark"
    );
    assert_eq!(metrics.partitions_held_back.get(), 0, "and resumed");
    assert_eq!(
        metrics.reorder_forced_releases.get(),
        0,
        "no event released ahead of the watermark"
    );
    common::check_all(&brokers, &plan, &truth, &summary, false);
}

/// Issue 13: a valid event whose silver record outgrows the output's size
/// limit, and a junk record too large to dead-letter whole, in the middle of
/// ordinary traffic. Both are dead-lettered (the first as `too_large` at the
/// output stage, the second by reference), the run goes on to the end, and
/// every other event is in silver or late exactly once. The processor's
/// clients get `message.max.bytes=100000` so the records stay small.
#[test]
fn records_too_large_for_their_output_are_dead_lettered_and_the_run_goes_on() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let cluster = MockCluster::new(1).expect("mock cluster");
    let plan = common::shipped_plan();
    create_topics(&cluster, &plan, 4);
    let brokers = cluster.bootstrap_servers();
    let mut truth = common::produce(
        &brokers,
        &plan.runtime.input_topic,
        GenConfig {
            interactions: 300,
            seed: 13,
            collect_truth: true,
            ..GenConfig::default()
        },
    );
    let conv = "5e1c0a4b-1d2e-4f3a-8b9c-0d1e2f3a4b5c";
    let mut big: serde_json::Value =
        serde_json::from_str(include_str!("golden/input/06-acd-start.json")).expect("fixture");
    big["detail"]["topicName"] = format!("v2.detail.events.conversation.{conv}.acd.start").into();
    big["detail"]["eventBody"]["conversationId"] = conv.into();
    big["detail"]["eventBody"]["futureField"] = "x".repeat(150_000).into();
    big["detail"]["metadata"]["CorrelationId"] = "c0ffee00-0000-4000-8000-000000000013".into();
    let big = serde_json::to_vec(&big).expect("json");
    let junk = vec![b'#'; 150_000];
    let producer: BaseProducer = common::settings(&brokers)
        .base()
        .create()
        .expect("producer");
    for (key, value) in [(conv.as_bytes(), &big), (b"junk".as_slice(), &junk)] {
        producer
            .send(
                BaseRecord::to(&plan.runtime.input_topic)
                    .key(key)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    truth.malformed_records += 2;

    let (summary, metrics) = common::run_pipeline_with(
        &brokers,
        plan.clone(),
        "mock-too-large",
        Duration::from_secs(3),
        &[("message.max.bytes", "100000")],
    );
    assert_eq!(
        metrics.dead_letters.with_label_values(&["too_large"]).get(),
        1
    );
    // Exactly once, order, no PII, every dead letter (the reference's hash
    // and prefix against the input), accounting.
    common::check_all(&brokers, &plan, &truth, &summary, false);

    let dead = common::read_all(&brokers, &plan.runtime.dead_letter_topic);
    let header = |d: &common::Rec, h: &str| {
        String::from_utf8_lossy(d.headers.get(h).map_or(&b""[..], |v| v)).into_owned()
    };
    let too_large: Vec<_> = dead
        .iter()
        .filter(|d| header(d, "cx.error.class") == "too_large")
        .collect();
    assert_eq!(too_large.len(), 1);
    let d = too_large[0];
    assert_eq!(header(d, "cx.error.stage"), "output");
    assert_eq!(header(d, "cx.dlq.truncated"), "true");
    let size: usize = header(d, "cx.original.size").parse().expect("size");
    assert!(size > 100_000, "the silver record's size: {size}");
    assert!(
        d.value.len() <= 1024 && d.value.starts_with(b"{"),
        "a masked prefix"
    );
    assert_eq!(
        header(d, "cx.lineage.token"),
        "c0ffee00-0000-4000-8000-000000000013"
    );
    let by_ref: Vec<_> = dead
        .iter()
        .filter(|d| {
            header(d, "cx.error.stage") == "decode" && d.headers.contains_key("cx.dlq.truncated")
        })
        .collect();
    assert_eq!(by_ref.len(), 1, "the junk record, by reference");
    assert_eq!(header(by_ref[0], "cx.original.size"), "150000");
    let silver = common::read_all(&brokers, &plan.silver_topic);
    assert!(
        silver
            .iter()
            .all(|r| r.key.as_deref() != Some(conv.as_bytes())),
        "the oversized event is not in silver"
    );
}
