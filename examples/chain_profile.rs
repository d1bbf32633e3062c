//! Runs the whole in-process chain over generated events in a loop, for a
//! profiler: `cargo build --release --example chain_profile` then
//! `perf record -g target/release/examples/chain_profile [seconds]`.
//! Prints events per CPU-second of this thread.
//!
//! `chain_profile --dump FILE` instead runs the generator's full mix
//! (duplicates, disorder, late, malformed, multi-event records, wrong keys,
//! version drift) once through two partitions' tasks, repartitioned events
//! travelling from the first to the second with their hops, and writes
//! every output to FILE, one line each, wall-clock `processed_at` values
//! blanked: a byte-level record of the chain's behaviour to compare two
//! builds with (`cmp`).
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role};
use cxstream::secret::MaskingKey;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn pipeline() -> Pipeline {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(
        config::parse(&text, "genesys-silver.toml")
            .expect("valid topology")
            .into_silver()
            .expect("a silver stage"),
    );
    let key = MaskingKey::from_bytes("bench-key").expect("key");
    Pipeline::new(plan, &key, Arc::new(Metrics::new()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice() {
        if flag == "--dump" {
            dump(path);
            return;
        }
    }
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let recs: Vec<(Vec<u8>, i64)> = Generator::new(GenConfig {
        interactions: 2_000,
        seed: 3,
        duplicate_pct: 0.0,
        malformed_pct: 0.0,
        batch_pct: 0.0,
        collect_truth: false,
        ..GenConfig::default()
    })
    .map(|r| (r.value, r.stream_time_ms))
    .collect();
    let bytes: usize = recs.iter().map(|(v, _)| v.len()).sum();
    let p = pipeline();
    let started = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut n = 0u64;
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut round = 0i64;
    while started.elapsed().as_secs_f64() < secs {
        let mut task = p.new_task(0, 1);
        let now = Instant::now();
        for (i, (v, ts)) in recs.iter().enumerate() {
            let rec = RecordIn {
                value: v,
                source: SourceRef {
                    topic: Arc::from("bronze"),
                    partition: 0,
                    offset: round * 1_000_000 + i as i64,
                },
                role: Role::Input,
                header_token: None,
                header_hops: None,
                // As a connector stamps it (the plausibility check runs).
                record_timestamp_ms: Some(*ts),
                ticket: i as u64,
            };
            p.ingest(&rec, &mut task, now, &mut out);
            out.clear();
        }
        p.flush(&mut task, &mut out);
        out.clear();
        n += recs.len() as u64;
        round += 1;
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    println!(
        "{} records ({} B avg), {:.0} records per CPU-second",
        n,
        bytes / recs.len(),
        n as f64 / cpu
    );
}

/// Replaces every `"processed_at":"<24 chars>"` value with `<t>`.
fn blank_processed_at(text: &str) -> String {
    const KEY: &str = "\"processed_at\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        out.push_str("<t>");
        rest = tail.get(24..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Appends one line per output to `lines`; forwarded events' bytes and
/// hops header go to `forwards` (`value` is the record they came from).
fn record(
    tag: &str,
    outs: &mut Vec<Output>,
    forwards: &mut Vec<(Vec<u8>, Vec<u8>)>,
    value: &[u8],
    lines: &mut Vec<String>,
) {
    for o in outs.drain(..) {
        let line = match o {
            Output::Silver(e) | Output::Late(e) => format!(
                "{tag} {} key={} token={} late={:?} ticket={} t={} fp={:x} id={:?} {}",
                if e.late_reason.is_some() {
                    "late"
                } else {
                    "silver"
                },
                e.key,
                e.lineage_token,
                e.late_reason,
                e.ticket,
                e.event_time_ms,
                e.content_fp,
                e.id_fp,
                blank_processed_at(&String::from_utf8_lossy(&e.value)),
            ),
            Output::DeadLetter(d) => format!(
                "{tag} dead class={} stage={} range={:?} token={:?} ticket={} {}",
                d.class, d.stage, d.range, d.lineage_token, d.ticket, d.message
            ),
            Output::Forward(f) => {
                let hops = serde_json::to_vec(&f.hops).unwrap_or_default();
                let bytes = value.get(f.range.clone()).unwrap_or_default().to_vec();
                let line = format!(
                    "{tag} forward home={} key={} range={:?} token={} ticket={} hops={}",
                    f.home,
                    f.key,
                    f.range,
                    f.lineage_token,
                    f.ticket,
                    blank_processed_at(&String::from_utf8_lossy(&hops)),
                );
                forwards.push((bytes, hops));
                line
            }
            Output::Done { ticket } => format!("{tag} done ticket={ticket}"),
        };
        lines.push(line);
    }
}

fn dump(path: &str) {
    let recs: Vec<(Vec<u8>, i64)> = Generator::new(GenConfig {
        interactions: 3_000,
        seed: 11,
        collect_truth: false,
        ..GenConfig::default()
    })
    .map(|r| (r.value, r.stream_time_ms))
    .collect();
    let p = pipeline();
    let mut first = p.new_task(0, 2);
    let mut second = p.new_task(1, 2);
    let now = Instant::now();
    let mut lines = Vec::new();
    let mut out = Vec::new();
    // Each task's watermark follows its own records: the other partition
    // announces itself idle (p0), and p1 reads no input of its own.
    p.on_marker(&mut first, 1, 0, true, now, &mut out);
    second.mark_end_of_partition();
    p.on_marker(&mut second, 0, 0, true, now, &mut out);
    let mut forwards = Vec::new();
    for (i, (v, ts)) in recs.iter().enumerate() {
        let rec = RecordIn {
            value: v,
            source: SourceRef {
                topic: Arc::from("genesys.bronze.events"),
                partition: 0,
                offset: i as i64,
            },
            role: Role::Input,
            header_token: None,
            header_hops: None,
            // The generator's stream time, as a connector stamps it.
            record_timestamp_ms: Some(*ts),
            ticket: i as u64,
        };
        let units = p.ingest(&rec, &mut first, now, &mut out);
        lines.push(format!("p0 record {i} units={units}"));
        record("p0", &mut out, &mut forwards, v, &mut lines);
    }
    p.flush(&mut first, &mut out);
    record("p0", &mut out, &mut forwards, &[], &mut lines);
    for (j, (bytes, hops)) in std::mem::take(&mut forwards).iter().enumerate() {
        let rec = RecordIn {
            value: bytes,
            source: SourceRef {
                topic: Arc::from("cx.internal.genesys-silver.repartition"),
                partition: 1,
                offset: j as i64,
            },
            role: Role::Repartition,
            header_token: None,
            header_hops: Some(hops),
            record_timestamp_ms: None,
            ticket: 1_000_000 + j as u64,
        };
        p.ingest(&rec, &mut second, now, &mut out);
        record("p1", &mut out, &mut forwards, bytes, &mut lines);
    }
    p.flush(&mut second, &mut out);
    record("p1", &mut out, &mut forwards, &[], &mut lines);
    let metrics = p.metrics().render();
    let mut f = std::fs::File::create(path).expect("dump file");
    for l in &lines {
        writeln!(f, "{l}").expect("write");
    }
    writeln!(f, "{metrics}").expect("write");
    println!(
        "{} records, {} output lines -> {path}",
        recs.len(),
        lines.len()
    );
}
