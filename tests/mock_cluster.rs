//! The whole pipeline on librdkafka's in-process mock cluster (no broker
//! process): generated traffic with duplicates, disorder, late events, drift
//! and malformed records, checked against the generator's ground truth.
//! (The mock keeps at most 5 MiB per partition, so the volume is kept small.)

mod common;

use std::time::Duration;

use cxstream::generate::GenConfig;
use rdkafka::mocking::MockCluster;

/// Catch-up over a pre-loaded backlog.
#[test]
fn silver_pipeline_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let plan = common::shipped_plan();
    for topic in [
        &plan.input_topic,
        &plan.silver_topic,
        &plan.late_topic,
        &plan.dead_letter_topic,
        &plan.repartition_topic,
        &plan.changelog_topic,
    ] {
        cluster.create_topic(topic, 8, 1).expect("topic");
    }
    let brokers = cluster.bootstrap_servers();
    let truth = common::produce(
        &brokers,
        &plan.input_topic,
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
