//! Crash safety and scale-out on a real broker process (Tansu, started by
//! `scripts/tansu.sh`; run via `bash scripts/test.sh`). The processor runs as
//! separate `cxstream run` processes that are killed (-9), stopped (SIGTERM)
//! and restarted while generated traffic is published; afterwards every
//! output is read back and checked against the generator's ground truth:
//! every unique event exactly once across silver and late, none missing,
//! per-interaction order, no PII, dead letters exactly once.

mod common;

use std::time::{Duration, Instant};

use common::tansu::{
    check_committed_to_end, log_field, serial, stopped_field, tail, wait_committed_to_end,
    Processor, Tansu,
};
use cxstream::generate::{GenConfig, Truth};
use rand::{Rng, SeedableRng};

const PARTITIONS: i32 = 4;

/// Tansu 0.6.0's group coordinator hands partitions to a joining member
/// while another member still owns them, and under cooperative-sticky never
/// tells the old owner (it keeps them for minutes); the eager protocol
/// revokes everything at each rebalance, and with the range assignor no
/// overlap was seen (roundrobin: up to 1 s). The hand-over wait (changelog
/// lease) covers any overlap that remains.
const EAGER: &[(&str, &str)] = &[("partition.assignment.strategy", "range")];

/// Group settings for a broker that answers slowly (Tansu's sqlite engine).
const SLOW_BROKER: &[(&str, &str)] = &[
    ("session.timeout.ms", "30000"),
    ("max.poll.interval.ms", "60000"),
];

/// How long a killed instance's replacement waits before it starts: the
/// test settings' session timeout (6 s), a heartbeat interval (1 s) and a
/// second of margin. See the kill test for why.
const AFTER_KILL: Duration = Duration::from_secs(8);

fn stream(interactions: usize, seed: u64) -> GenConfig {
    GenConfig {
        interactions,
        seed,
        interaction_spacing_ms: 20,
        late_pct: 1.0,
        late_delay_ms: 30_000,
        collect_truth: true,
        ..GenConfig::default()
    }
}

/// The shipped topology, its input topic created on `tansu` with
/// [`PARTITIONS`] partitions, and `cfg`'s stream published into it at `rate`
/// records/s on a thread (joined for the ground truth).
fn paced_input(
    tansu: &Tansu,
    cfg: GenConfig,
    rate: f64,
) -> (cxstream::config::Plan, std::thread::JoinHandle<Truth>) {
    let plan = common::shipped_plan();
    tansu.create_topic(&plan.input_topic, PARTITIONS);
    let producer = common::produce_paced(&tansu.brokers, &plan.input_topic, cfg, rate);
    (plan, producer)
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn kill_9_five_times_during_200k_events() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (plan, producer) = paced_input(&tansu, stream(18_000, 909), 3_000.0);
    let group = "crash";
    let idle = Duration::from_secs(10);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let started = Instant::now();
    let mut proc = Processor::start(&tansu.brokers, group, "run-0", idle);
    for i in 1..=5 {
        // Each kill hits an instance that is processing: it has restored
        // the state of every partition and run for a random while. (Killing
        // instances that have not joined yet piles up dead group members,
        // which Tansu 0.6.0 can wait on indefinitely.)
        proc.wait_for_log(
            "State restored.",
            PARTITIONS as usize,
            Duration::from_secs(120),
        );
        sleep(Duration::from_millis(rng.gen_range(1_000..5_000)));
        eprintln!("kill #{i} at {:.1?}", started.elapsed());
        proc.kill9();
        // Tansu 0.6.0 has no session timer: a dead member is expired only
        // when a live one talks to the coordinator after its session
        // timeout. A member that joins 3-6 s after the kill can be handed
        // an empty assignment for good (the dead leader's empty sync is
        // taken as final), so the replacement starts once the dead
        // member's session (6 s) and a heartbeat (1 s) have passed. A
        // real deployment restarts slower than that (a pod reschedule).
        sleep(AFTER_KILL);
        proc = Processor::start(&tansu.brokers, group, &format!("run-{i}"), idle);
    }
    let truth = producer.join().expect("producer");
    eprintln!("producer done at {:.1?}", started.elapsed());
    let (status, log) = proc.wait(Duration::from_secs(300));
    assert!(
        status.success(),
        "last instance failed:\n{}",
        tail(&log, 30)
    );
    assert!(
        log.contains("State restored."),
        "the restarted instance restored state:\n{}",
        tail(&log, 30)
    );
    eprintln!("done at {:.1?}", started.elapsed());
    assert!(
        truth.events_sent >= 200_000,
        "{} events sent",
        truth.events_sent
    );
    common::check_outputs(&tansu.brokers, &plan, &truth, Some(false));
    check_committed_to_end(&tansu.brokers, group, &plan.input_topic, PARTITIONS);
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn two_instances_one_killed_and_restarted_a_third_joins() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (plan, producer) = paced_input(&tansu, stream(9_000, 4242), 6_000.0);
    let group = "scale";
    // The instances run until stopped: an instance that exits when idle
    // could leave while a partition is being handed to it.
    let run_on = Duration::from_secs(3_600);
    let a = Processor::start_with(&tansu.brokers, group, "a", run_on, EAGER);
    let b = Processor::start_with(&tansu.brokers, group, "b", run_on, EAGER);
    // Killed while processing: once it has written output.
    a.wait_for_first_output(Duration::from_secs(120));
    a.kill9();
    let killed = Instant::now();
    sleep(Duration::from_secs(1));
    let a2 = Processor::start_with(&tansu.brokers, group, "a-restarted", run_on, EAGER);
    // The third joins once the killed member's session has run out (see
    // AFTER_KILL): b's heartbeats then let Tansu expire it.
    sleep(AFTER_KILL.saturating_sub(killed.elapsed()));
    let c = Processor::start_with(&tansu.brokers, group, "c", run_on, EAGER);
    let truth = producer.join().expect("producer");
    // Done when the group has committed the input and the repartition topic
    // to their ends (whichever instance owns what by then).
    wait_committed_to_end(
        &tansu.brokers,
        group,
        &plan.input_topic,
        &plan.repartition_topic,
        PARTITIONS,
        Duration::from_secs(300),
    );
    let mut restored = 0;
    for p in [b, a2, c] {
        let name = p.name.clone();
        let (status, log) = p.terminate();
        assert!(status.success(), "[{name}] failed:\n{}", tail(&log, 30));
        let own = log.matches("State restored.").count();
        restored += own;
        let read: u64 = stopped_field(&log, "events_in")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("[{name}] no stop summary:\n{}", tail(&log, 30)));
        eprintln!("[{name}] restored {own} partitions, read {read} events");
        if name != "b" {
            // The joiners took over partitions and processed them.
            assert!(own >= 1, "[{name}] restored no partition");
            assert!(read > 0, "[{name}] read nothing");
        }
    }
    assert!(
        restored >= PARTITIONS as usize,
        "partitions restored: {restored}"
    );
    // Partitions move without their reorder buffers being flushed (the
    // next owner re-reads those events), so only really delayed events are
    // late, however often partitions moved.
    common::check_outputs(&tansu.brokers, &plan, &truth, Some(false));
    check_committed_to_end(&tansu.brokers, group, &plan.input_topic, PARTITIONS);
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn broker_restart_mid_stream() {
    let _serial = serial();
    let mut tansu = Tansu::start_with("sqlite");
    // Tansu's sqlite engine answers a fetch by reading the partition from
    // the fetch offset to its end, and serves every storage call (group
    // heartbeats too) one at a time: the load stays small, and the session
    // timeout is long enough that a busy broker does not expire the member.
    let (plan, producer) = paced_input(&tansu, stream(1_500, 31), 1_500.0);
    let group = "broker-restart";
    let proc = Processor::start_with(
        &tansu.brokers,
        group,
        "p",
        Duration::from_secs(15),
        SLOW_BROKER,
    );
    // Restarted mid-stream, once the instance is writing output.
    proc.wait_for_first_output(Duration::from_secs(120));
    eprintln!("restarting the broker");
    tansu.restart(Duration::from_secs(3));
    let truth = producer.join().expect("producer");
    let (status, log) = proc.wait(Duration::from_secs(300));
    assert!(status.success(), "instance failed:\n{}", tail(&log, 30));
    common::check_outputs(&tansu.brokers, &plan, &truth, None);
    check_committed_to_end(&tansu.brokers, group, &plan.input_topic, PARTITIONS);
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn sigterm_flushes_buffers_and_loses_nothing() {
    let _serial = serial();
    let tansu = Tansu::start();
    let (plan, producer) = paced_input(&tansu, stream(5_000, 8), 4_000.0);
    let group = "sigterm";
    let idle = Duration::from_secs(10);
    let first = Processor::start(&tansu.brokers, group, "first", idle);
    // Stopped mid-stream, with state restored everywhere and output flowing.
    first.wait_for_log(
        "State restored.",
        PARTITIONS as usize,
        Duration::from_secs(120),
    );
    first.wait_for_first_output(Duration::from_secs(120));
    let (status, log) = first.terminate();
    assert!(
        status.success(),
        "SIGTERM exit: {status:?}\n{}",
        tail(&log, 30)
    );
    // Everything it read was delivered (buffers flushed, acknowledged)
    // before it exited. (Its own accounting need not add up: events it
    // forwarded may still be on the repartition topic, for the next owner.)
    assert_eq!(
        log_field(&log, "Buffers flushed at stop.", "records_not_acknowledged").as_deref(),
        Some("0"),
        "stop:\n{}",
        tail(&log, 30)
    );
    let read: u64 = stopped_field(&log, "events_in")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(read > 0, "the first instance read something before SIGTERM");
    let second = Processor::start(&tansu.brokers, group, "second", idle);
    let truth = producer.join().expect("producer");
    let (status, log) = second.wait(Duration::from_secs(600));
    assert!(status.success(), "second instance:\n{}", tail(&log, 30));
    common::check_outputs(&tansu.brokers, &plan, &truth, None);
    check_committed_to_end(&tansu.brokers, group, &plan.input_topic, PARTITIONS);
}

/// Restore at scale: a partition whose changelog holds 1,000,000 dedup
/// fingerprints (plus the state of a real run) is restored, and a full
/// replay of its input (a new group, from the beginning) emits nothing
/// twice. Prints the restore time (measured, not asserted).
#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn restore_of_one_million_dedup_keys() {
    use cxstream::state::Delta;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let _serial = serial();
    let tansu = Tansu::start();
    let mut plan = common::shipped_plan();
    if let Some(d) = plan.dedup.as_mut() {
        d.max_keys = 2_000_000;
    }
    tansu.create_topic(&plan.input_topic, 1);
    let truth = common::produce(&tansu.brokers, &plan.input_topic, stream(300, 12));
    let (first, _) = common::run_pipeline(
        &tansu.brokers,
        plan.clone(),
        "million-a",
        Duration::from_secs(4),
    );
    assert!(first.silver > 0);

    // Append 1,000,000 more fingerprints to partition 0's changelog.
    let producer: BaseProducer = common::settings(&tansu.brokers)
        .with_defaults(&[("linger.ms", "20"), ("message.max.bytes", "2000000")])
        .create()
        .expect("producer");
    let mut delta = Delta::default();
    let mut written = 0u64;
    for k in 0..1_000_000u128 {
        delta.record_emitted("synthetic", 0, (k << 64) | 0x5eed, None);
        if delta.pending() >= cxstream::state::MAX_ENTRIES_PER_RECORD || k == 999_999 {
            let value = delta.take_record("synthetic-owner");
            let rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&plan.changelog_topic)
                .partition(0)
                .key(&b"0"[..])
                .payload(&value[..]);
            cxstream::cli::send_retrying(&producer, rec).expect("changelog record");
            written += 1;
        }
    }
    // The synthetic writer hands the partition over, as an instance does
    // when it stops (the restore below must not wait for its lease).
    let release = cxstream::state::owner_record("synthetic-owner", true);
    let rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&plan.changelog_topic)
        .partition(0)
        .key(&b"0"[..])
        .payload(&release[..]);
    cxstream::cli::send_retrying(&producer, rec).expect("release record");
    producer.flush(Duration::from_secs(60)).expect("flush");
    eprintln!("changelog: {written} records holding 1,000,000 fingerprints");

    let (second, metrics) = common::run_pipeline(
        &tansu.brokers,
        plan.clone(),
        "million-b",
        Duration::from_secs(4),
    );
    let took = metrics.restore_seconds.get_sample_sum();
    eprintln!(
        "restore of {} fingerprints: {took:.2} s; replay: {second:?}",
        1_000_000 + first.silver * 2
    );
    assert!(
        metrics.dedup_keys.get() >= 1_000_000,
        "{} keys held",
        metrics.dedup_keys.get()
    );
    assert_eq!(
        second.silver + second.late,
        0,
        "nothing emitted twice: {second:?}"
    );
    assert_eq!(second.dead_letters, 0, "no dead letter twice: {second:?}");
    assert!(second.accounted(), "{second:?}");
    let out = common::read_outputs(&tansu.brokers, &plan);
    common::check_exactly_once(&truth, &out);
    assert_eq!(out.dead.len() as u64, truth.malformed_records);
}
