//! The gold stage in process, for BENCHMARKS.md: generated traffic goes
//! through silver's chain once (untimed), then gold's task ingests every
//! silver and late record in a loop, with a checkpoint (windows advanced,
//! results encoded, table changes serialized) every 1,000 records, as the
//! runtime does at each commit. Prints events per CPU-second of this
//! thread, then the state memory of open interactions and of windows.
//!
//! `cargo build --release --example gold_profile`, then
//! `target/release/examples/gold_profile [seconds]`.
use std::sync::Arc;
use std::time::Instant;

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::gold::stage::Gold;
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::pipeline::{Output as SilverOut, Pipeline, RecordIn, Role};
use cxstream::secret::MaskingKey;
use cxstream::stage::{Output, Stage, StageTask};
use cxstream::state::tables::Change;

/// mimalloc, counting the bytes live (for the state sizes).
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Bytes allocated and not freed.
fn live() -> i64 {
    i64::try_from(GLOBAL.allocated()).unwrap_or(i64::MAX)
}

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rec(value: &[u8], offset: i64, role: Role) -> RecordIn<'_> {
    RecordIn {
        value,
        source: SourceRef {
            topic: Arc::from("silver"),
            partition: 0,
            offset,
        },
        role,
        header_token: None,
        header_hops: None,
        record_timestamp_ms: None,
        ticket: 1,
    }
}

/// The silver records (value, came through the late port) of `interactions`
/// generated conversations.
fn silver_records(interactions: usize, seed: u64) -> Vec<(Vec<u8>, bool)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(
        config::parse(&text, "genesys-silver.toml")
            .expect("valid")
            .into_silver()
            .expect("silver"),
    );
    let key = MaskingKey::from_bytes("bench-key").expect("key");
    let p = Pipeline::new(plan, &key, Arc::new(Metrics::new()));
    let mut task = p.new_task(0, 1);
    let mut out = Vec::new();
    let mut recs = Vec::new();
    let now = Instant::now();
    let gen = Generator::new(GenConfig {
        interactions,
        seed,
        interaction_spacing_ms: 300,
        malformed_pct: 0.0,
        ..GenConfig::default()
    });
    for (i, r) in gen.enumerate() {
        let mut input = rec(&r.value, i as i64, Role::Input);
        input.record_timestamp_ms = Some(r.stream_time_ms);
        p.ingest(&input, &mut task, now, &mut out);
        for o in out.drain(..) {
            match o {
                SilverOut::Silver(e) => recs.push((e.value, false)),
                SilverOut::Late(e) => recs.push((e.value, true)),
                _ => {}
            }
        }
    }
    p.flush(&mut task, &mut out);
    for o in out.drain(..) {
        if let SilverOut::Silver(e) = o {
            recs.push((e.value, false));
        }
    }
    recs
}

fn gold() -> Gold {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let t = config::parse(&text, "genesys-silver.toml").expect("valid");
    Gold::new(Arc::new(t.gold().expect("gold").clone()), &Metrics::new())
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let recs = silver_records(2_000, 3);
    let late = recs.iter().filter(|(_, l)| *l).count();
    let g = gold();
    let started = Instant::now();
    let cpu0 = thread_cpu_ns();
    let (mut n, mut results, mut rounds) = (0u64, 0usize, 0u32);
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut changes: Vec<Change> = Vec::new();
    while started.elapsed().as_secs_f64() < secs {
        let mut task = g.new_task(0, 1);
        let now = Instant::now();
        for (i, (v, is_late)) in recs.iter().enumerate() {
            let role = if *is_late {
                Role::CoInput(0)
            } else {
                Role::Input
            };
            g.ingest(&mut task, &rec(v, i as i64, role), now, &mut out);
            out.clear();
            if i % 1_000 == 999 {
                g.checkpoint(&mut task, &mut out);
                results += out.len();
                out.clear();
                task.take_changes(&mut changes);
                changes.clear();
            }
        }
        g.checkpoint(&mut task, &mut out);
        results += out.len();
        out.clear();
        task.take_changes(&mut changes);
        changes.clear();
        n += recs.len() as u64;
        rounds += 1;
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    println!(
        "gold: {n} silver records ({late} late per round) in {rounds} rounds, {} results/round, {:.0} records per CPU-second",
        results / rounds.max(1) as usize,
        n as f64 / cpu
    );

    // State memory. Open interactions: the legs side alone (queues homed
    // on another partition, so nothing is aggregated here).
    let many = silver_records(20_000, 4);
    let before = live();
    let mut legs_side = g.new_task(0, 2);
    let mut forwards = Vec::new();
    let now = Instant::now();
    for (i, (v, _)) in many.iter().enumerate() {
        g.ingest(
            &mut legs_side,
            &rec(v, i as i64, Role::Input),
            now,
            &mut out,
        );
        for o in out.drain(..) {
            if let Output::Forward(f) = o {
                forwards.push(f.payload.unwrap_or_default());
            }
        }
    }
    let mid = live();
    let payload_kib: u64 = forwards.iter().map(|p| p.capacity() as u64).sum::<u64>() / 1024;
    let interactions = legs_side.interactions.len();
    let events = legs_side.events_kept();
    // Windows: every contribution set applied to a task of the other side.
    let mut windows_side = g.new_task(1, 2);
    let mid2 = live();
    for (i, p) in forwards.iter().enumerate() {
        g.ingest(
            &mut windows_side,
            &rec(p, i as i64, Role::Repartition),
            now,
            &mut out,
        );
        out.clear();
    }
    let after = live();
    let (windows, sets) = windows_side.windows.sizes();
    println!(
        "state: {interactions} open interactions ({events} leg events) take {} KiB (forwarded payloads aside): {:.0} B per interaction, {:.0} B per leg event",
        (mid - before - (payload_kib as i64) * 1024) / 1024,
        (mid - before - (payload_kib as i64) * 1024) as f64 / interactions.max(1) as f64,
        (mid - before - (payload_kib as i64) * 1024) as f64 / events.max(1) as f64
    );
    println!(
        "state: {windows} windows and {sets} (queue, interaction) contribution sets take {} KiB: {:.0} B per contribution set, including each window's member ids",
        (after - mid2) / 1024,
        (after - mid2) as f64 / sets.max(1) as f64
    );
    drop((legs_side, windows_side));
}
