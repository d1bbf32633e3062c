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
    let process = t.process().expect("process");
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

    let media = silver.media_filter.clone().unwrap_or_default();
    let late = common::process::silver_late(&common::read_all(&tansu.brokers, &silver.late_topic));
    let expected = common::process::expected(&truth, &media, &late);
    let records = common::read_all(&tansu.brokers, &process.activities_topic);
    common::check_no_pii_in(&truth, &records, "activity");
    let rep = common::process::check(&records, &expected);
    let missing = common::process::missing_cases(&records, &expected);
    eprintln!(
        "process after 5 kills: {} activity records over {} cases ({} closed), {} written late; {} missing cases",
        rep.records,
        rep.cases,
        rep.closed,
        rep.late,
        missing.len()
    );
    let shown: Vec<&String> = rep.mismatches.iter().take(5).collect();
    assert!(
        rep.mismatches.is_empty(),
        "{} mismatches, e.g. {shown:#?}",
        rep.mismatches.len()
    );
    assert!(
        missing.is_empty(),
        "cases without records: {}",
        missing.len()
    );
}
