//! End-to-end tests against a real Kafka-protocol broker process (Tansu),
//! started through `scripts/tansu.sh` (run via `bash scripts/test.sh`).

mod common;

use std::time::{Duration, Instant};

use common::tansu::{serial, Tansu};
use cxstream::generate::GenConfig;

/// The acceptance run: ≥100,000 events with duplicates, disorder, late
/// events (1% delayed by ≥30 s of event time), drift, mis-keyed and
/// malformed records, published while the processor runs.
#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn silver_pipeline_end_to_end_on_tansu() {
    let _serial = serial();
    let tansu = Tansu::start();
    let plan = common::shipped_plan();
    tansu.create_topic(&plan.runtime.input_topic, 4);
    let cfg = GenConfig {
        interactions: 11_000,
        seed: 2026,
        // Denser event time than the default (one new conversation every
        // 20 ms), published at 4,000 records/s: event time runs ~40x
        // faster than the wall clock.
        interaction_spacing_ms: 20,
        late_pct: 1.0,
        late_delay_ms: 30_000,
        collect_truth: true,
        ..GenConfig::default()
    };
    // The size precondition, before the slow part.
    let planned = common::stream_counts(&cfg).unique_event_count;
    assert!(planned >= 100_000, "{planned} unique events planned");
    let producer = common::produce_paced(&tansu.brokers, &plan.runtime.input_topic, cfg, 4_000.0);
    let started = Instant::now();
    let (summary, _m) =
        common::run_pipeline(&tansu.brokers, plan.clone(), "e2e", Duration::from_secs(5));
    let truth = producer.join().expect("producer thread");
    eprintln!("pipeline: {summary:?} in {:.1?}", started.elapsed());
    assert_eq!(truth.unique_events.len() as u64, planned);
    // Late events: precision only (each one really delayed). How many
    // delayed events go late depends on the watermark's lag, i.e. on timing
    // on a loaded machine; the exact late set is checked in process
    // (tests/late_oracle.rs).
    common::check_all(&tansu.brokers, &plan, &truth, &summary, false);
}

/// Catch-up over a pre-loaded backlog: the same guarantees, and no event is
/// sent to the late topic that was not really delayed.
#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn catch_up_over_a_backlog_on_tansu() {
    let _serial = serial();
    let tansu = Tansu::start();
    let plan = common::shipped_plan();
    tansu.create_topic(&plan.runtime.input_topic, 4);
    let truth = common::produce(
        &tansu.brokers,
        &plan.runtime.input_topic,
        GenConfig {
            interactions: 3_000,
            seed: 77,
            collect_truth: true,
            ..GenConfig::default()
        },
    );
    let (summary, _m) = common::run_pipeline(
        &tansu.brokers,
        plan.clone(),
        "catch-up",
        Duration::from_secs(5),
    );
    common::check_all(&tansu.brokers, &plan, &truth, &summary, false);
}
