//! The gold stage on Tansu, behind silver, over generated traffic with
//! disorder, duplicates and late events (beyond silver's lateness and
//! gold's grace): for every (queue, window) the latest revision equals the
//! figures recomputed from the generator's ground truth of legs, revisions
//! strictly increase per key, and every window the final watermark closed
//! has a result. Once uninterrupted (the whole shipped topology; the
//! process-mining log is checked against the truth too), once with gold
//! killed (-9) five times during the stream.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::gold::{compare, latest, recompute, Report, Rules};
use common::tansu::{serial, Processor, Tansu};
use cxstream::config::Topology;
use cxstream::generate::{GenConfig, Truth};

fn topology(prefix: &str) -> (PathBuf, Topology) {
    let (path, t) = common::isolated_topology(prefix);
    assert!(t.gold().is_some(), "the shipped topology runs gold");
    (path, t)
}

fn traffic(seed: u64) -> GenConfig {
    GenConfig {
        interactions: 11_000,
        seed,
        // A new conversation every 300 ms: about an hour of event time,
        // so four quarters and an hour per queue close during the stream.
        interaction_spacing_ms: 300,
        // 1 % of events 10 min late: beyond silver's 5 s lateness (they go
        // to silver's late topic) and gold's 5 s grace (corrections of
        // windows already written).
        late_pct: 1.0,
        late_delay_ms: 600_000,
        collect_truth: true,
        ..GenConfig::default()
    }
}

/// Reads gold's outputs and checks them against the truth.
fn check(tansu: &Tansu, t: &Topology, truth: &Truth) -> Report {
    let gold = t.gold().expect("gold");
    let silver = t.silver().expect("silver");
    let media = silver.media_filter.clone().unwrap_or_default();
    let rules = Rules::default();
    let expected = recompute(&truth.legs, &media, &gold.windows.sizes_ms, &rules);
    let records = common::read_all(&tansu.brokers, &gold.kpis_topic);
    let (got, n) = latest(&records);
    let closed_by = truth
        .unique_events
        .iter()
        .map(|k| k.event_time_ms)
        .max()
        .expect("events");
    let rep = compare(&expected, &got, &rules, gold.windows.grace_ms, closed_by);
    let late_in = common::read_all(&tansu.brokers, &silver.late_topic).len();
    eprintln!(
        "gold: {n} records, {} windows written ({} corrected after their first result), {} closed windows expected, {} matched; {late_in} silver late events; {} legs in the truth",
        rep.windows_written,
        rep.corrected,
        rep.windows_expected,
        rep.matched,
        truth.legs.len()
    );
    let shown: Vec<&String> = rep.mismatches.iter().take(10).collect();
    assert!(
        rep.mismatches.is_empty(),
        "{} mismatches, e.g. {shown:#?}",
        rep.mismatches.len()
    );
    assert!(rep.windows_expected > 100, "{rep:?}");
    assert!(late_in > 0, "the traffic had no late events");
    assert!(rep.corrected > 0, "no late correction happened: {rep:?}");
    // Nothing was older than the 48 h horizon, and gold refused nothing.
    assert!(common::read_all(&tansu.brokers, &gold.late_topic).is_empty());
    let gold_dead: Vec<_> = common::read_all(&tansu.brokers, &gold.runtime.dead_letter_topic)
        .into_iter()
        .filter(|r| r.headers.get("cx.error.stage").map(Vec::as_slice) == Some(b"gold".as_slice()))
        .collect();
    assert!(
        gold_dead.is_empty(),
        "gold dead letters: {}",
        gold_dead.len()
    );
    rep
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn gold_figures_and_the_activity_log_equal_the_truth() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (path, t) = topology("gold-a");
    let silver = t.silver().expect("silver");
    tansu.create_topic(&silver.runtime.input_topic, 4);
    // CXSTREAM_GOLD_SEED varies the traffic.
    let seed = std::env::var("CXSTREAM_GOLD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2027);
    let cfg = traffic(seed);
    let planned = common::stream_counts(&cfg).unique_event_count;
    assert!(planned >= 100_000, "{planned} unique events planned");
    let truth = common::produce(&tansu.brokers, &silver.runtime.input_topic, cfg);
    let started = Instant::now();
    let proc = Processor::start_topology(
        &path,
        None,
        &tansu.brokers,
        "gold-a",
        "both",
        Duration::from_secs(8),
        &[],
    );
    let (status, log) = proc.wait(Duration::from_secs(600));
    assert!(status.success(), "{log}");
    eprintln!(
        "silver, gold and process over {planned} events: {:.1?}",
        started.elapsed()
    );
    check(&tansu, &t, &truth);
    check_activities(&tansu, &t, &truth);
}

/// The activity log against the truth (`tests/common/process.rs`).
fn check_activities(tansu: &Tansu, t: &Topology, truth: &Truth) {
    let rep = common::process::check_topic(&tansu.brokers, t, truth, "process");
    assert!(
        rep.late > 0,
        "no activity was written late: the traffic had no late events"
    );
    assert!(rep.closed > 1_000, "{rep:?}");
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn gold_survives_five_kill_9_with_the_same_figures() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (path, t) = topology("gold-k");
    let silver = t.silver().expect("silver");
    tansu.create_topic(&silver.runtime.input_topic, 4);
    let cfg = traffic(2028);
    let producer = common::produce_paced(&tansu.brokers, &silver.runtime.input_topic, cfg, 6_000.0);
    let idle = Duration::from_secs(8);
    let silver_proc = Processor::start_topology(
        &path,
        Some("silver"),
        &tansu.brokers,
        "gold-k",
        "silver",
        idle,
        &[],
    );
    let gold = |name: &str| {
        Processor::start_topology(
            &path,
            Some("gold"),
            &tansu.brokers,
            "gold-k",
            name,
            idle,
            &[],
        )
    };
    let mut g = gold("gold-0");
    for i in 1..=5 {
        // Killed once it has written results, mid-stream.
        g.wait_for_metric("cxstream_checkpoints_total", 2.0, Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(1_500 + 700 * i));
        eprintln!("kill #{i}");
        g.kill9();
        g = gold(&format!("gold-{i}"));
    }
    let truth = producer.join().expect("producer");
    let (status, log) = silver_proc.wait(Duration::from_secs(600));
    assert!(status.success(), "silver: {log}");
    let (status, log) = g.wait(Duration::from_secs(600));
    assert!(status.success(), "gold: {log}");
    check(&tansu, &t, &truth);
}
