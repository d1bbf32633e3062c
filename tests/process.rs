//! The process-mining stage on Tansu, killed (-9) five times during the
//! stream: every case's activities equal those derived from the
//! generator's truth, numbered 1..n once each (none written twice, none
//! lost). The uninterrupted run is part of `tests/gold.rs` (the whole
//! shipped topology).

mod common;

use std::time::Duration;

use common::tansu::{serial, Processor, Tansu};
use cxstream::generate::GenConfig;

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn the_activity_log_survives_five_kill_9_exactly_once() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (path, t) = common::isolated_topology("proc-k");
    let silver = t.silver().expect("silver");
    assert!(
        t.process().is_some(),
        "the shipped topology runs process mining"
    );
    tansu.create_topic(&silver.runtime.input_topic, 4);
    let cfg = GenConfig {
        interactions: 11_000,
        seed: 2029,
        interaction_spacing_ms: 300,
        late_pct: 1.0,
        late_delay_ms: 600_000,
        collect_truth: true,
        ..GenConfig::default()
    };
    let producer = common::produce_paced(&tansu.brokers, &silver.runtime.input_topic, cfg, 6_000.0);
    let idle = Duration::from_secs(8);
    let start = |stage: &str, name: &str| {
        Processor::start_topology(
            &path,
            Some(stage),
            &tansu.brokers,
            "proc-k",
            name,
            idle,
            &[],
        )
    };
    let silver_proc = start("silver", "silver");
    let mut p = start("process", "process-0");
    for i in 1..=5 {
        p.wait_for_metric("cxstream_checkpoints_total", 2.0, Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(1_500 + 700 * i));
        eprintln!("kill #{i}");
        p.kill9();
        p = start("process", &format!("process-{i}"));
    }
    let truth = producer.join().expect("producer");
    let (status, log) = silver_proc.wait(Duration::from_secs(600));
    assert!(status.success(), "silver: {log}");
    let (status, log) = p.wait(Duration::from_secs(600));
    assert!(status.success(), "process: {log}");

    common::process::check_topic(&tansu.brokers, &t, &truth, "process after 5 kills");
}
